import { defineConfig } from 'vitest/config';

/** `npm run bench`: runs every tests/bench/*.bench.ts once, in order, and writes bench-results/. Never part of `npm test`. */
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['tests/bench/run-benchmarks.test.ts'],
    testTimeout: 30 * 60_000,
    hookTimeout: 30 * 60_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
