/**
 * The cluster tests: a three-node RabbitMQ cluster and a three-broker Kafka
 * cluster started on this machine (one project each, so running one file
 * starts only its cluster), nodes stopped and started under the connectors.
 *
 *   npm run test:cluster          everything (vitest run --config tests/cluster/vitest.config.ts)
 *   --config tests/cluster/vitest.slice.config.ts   the short slice `npm test` runs: small counts, one fault per broker kind
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // Stopping the clusters at the end of the run must not be cut short.
    teardownTimeout: 180_000,
    pool: 'forks',
    // Six servers share the machine with the tests: one file at a time.
    fileParallelism: false,
    provide: { clusterSlice: false },
    projects: [
      { extends: true, test: { name: 'rabbitmq-cluster', include: ['tests/cluster/rabbitmq*.test.ts'], globalSetup: ['tests/cluster/setup-rabbitmq.ts'] } },
      { extends: true, test: { name: 'kafka-cluster', include: ['tests/cluster/kafka*.test.ts'], globalSetup: ['tests/cluster/setup-kafka.ts'] } },
    ],
  },
});
