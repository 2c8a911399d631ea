/**
 * What the admin APIs change outlives a restart: partitions added, topic
 * configs altered, a log start offset moved and group offsets deleted over
 * the wire are all there when the broker opens its data folder again, and
 * keyed records produced after the restart still hash over the new count.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Admin } from '@platformatic/kafka';
import { afterAll, describe, expect, it } from 'vitest';
import { BrokerHost } from '../../../src-main/broker/host.js';
import { silentLogger } from '../../../src-main/ground/logger.js';
import { partitionForKey } from '../../../src-main/ground/murmur2.js';
import { createKafkaListener } from '../../../src-main/protocols/kafka/server.js';

const dir = mkdtempSync(join(tmpdir(), 'bd-kafka-admin-durable-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function open() {
  const host = BrokerHost.open({ dataDir: dir, logger: silentLogger });
  const listener = createKafkaListener(host, { port: 0 }, silentLogger);
  const port = await listener.listen();
  const admin = new Admin({ clientId: 'durable-admin', bootstrapBrokers: [`127.0.0.1:${port}`], retries: 0 });
  return {
    host,
    admin,
    async close() {
      await admin.close();
      await listener.close(1000);
      host.close();
    },
  };
}

describe('Kafka admin changes across a restart', () => {
  it('keeps added partitions, altered configs, the moved log start and deleted group offsets', async () => {
    const first = await open();
    await first.admin.createTopics({ topics: ['durable'], partitions: 2, replicas: 1 });
    await first.host.live().produce('durable', Array.from({ length: 6 }, (_, i) => ({ value: `v${i}`, partition: 0 })));
    await first.host.live().commitOffsets('durable-group', [
      { topic: 'durable', partition: 0, offset: 6 },
      { topic: 'durable', partition: 1, offset: 0 },
    ]);
    await first.admin.createPartitions({ topics: [{ name: 'durable', count: 4 }] });
    await first.admin.incrementalAlterConfigs({
      resources: [
        {
          resourceType: 2,
          resourceName: 'durable',
          configs: [
            { name: 'retention.ms', configOperation: 0, value: '7200000' },
            { name: 'max.message.bytes', configOperation: 0, value: '123456' },
          ],
        },
      ],
    });
    await first.admin.deleteRecords({ topics: [{ name: 'durable', partitions: [{ partition: 0, offset: 4n }] }] });
    await first.admin.deleteConsumerGroupOffsets({ groupId: 'durable-group', topics: [{ name: 'durable', partitionIndexes: [1] }] });
    await first.close();

    const second = await open();
    try {
      const t = second.host.live().listTopics().find((x) => x.name === 'durable')!;
      expect(t.partitions.map((p) => [p.partition, p.startOffset, p.endOffset])).toEqual([
        [0, 4, 6],
        [1, 0, 0],
        [2, 0, 0],
        [3, 0, 0],
      ]);
      expect(t.retentionMs).toBe(7_200_000);
      const [described] = await second.admin.describeConfigs({ resources: [{ resourceType: 2, resourceName: 'durable', configurationKeys: ['retention.ms', 'max.message.bytes'] }] });
      expect(Object.fromEntries(described!.configs.map((c) => [c.name, c.value]))).toEqual({ 'retention.ms': '7200000', 'max.message.bytes': '123456' });
      const group = second.host.live().listGroups().find((g) => g.groupId === 'durable-group')!;
      expect(group.partitions.filter((p) => p.committed !== null).map((p) => [p.partition, p.committed])).toEqual([[0, 6]]);
      expect(second.host.live().fetch('durable', 0, { offset: 0 }).records.map((r) => r.value!.toString())).toEqual(['v4', 'v5']);
      const placed = await second.host.live().produce('durable', [{ key: 'k-1', value: 'x' }, { key: 'k-2', value: 'y' }, { key: 'k-3', value: 'z' }]);
      expect(placed.map((p) => p.partition)).toEqual(['k-1', 'k-2', 'k-3'].map((k) => partitionForKey(Buffer.from(k), 4)));
    } finally {
      await second.close();
    }
  });
});
