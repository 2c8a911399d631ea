/**
 * kafkajs's admin client, unchanged, against the Kafka listener's topic
 * administration: partitions added (never removed) with keyed records then
 * hashed over the new count, topic configs altered (the older AlterConfigs,
 * which kafkajs speaks) and read back, and records deleted before an offset,
 * gone for fetch, ListOffsets and the broker's own browse.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionForKey } from '../../../src-main/ground/murmur2.js';
import { startWireBroker, type WireBroker } from './helpers.js';

let broker: WireBroker;
let kafka: Kafka;

beforeAll(async () => {
  broker = await startWireBroker();
  kafka = new Kafka({ clientId: 'kafkajs-admin-test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 2, initialRetryTime: 100 } });
});
afterAll(() => broker?.stop());

const topicOf = (name: string) => broker.host.live().listTopics().find((t) => t.name === name)!;

describe('kafkajs admin against the Kafka listener', () => {
  it('adds partitions, refuses a decrease or the same count, validates only when asked, and keyed records follow murmur2 over the new count', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: 'grow', numPartitions: 2 }] });
      const producer = kafka.producer();
      await producer.connect();
      const keys = Array.from({ length: 40 }, (_, i) => `account-${i}`);
      await producer.send({ topic: 'grow', messages: keys.map((k) => ({ key: k, value: `before ${k}` })) });
      const before = topicOf('grow').partitions.map((p) => p.endOffset);

      await admin.createPartitions({ validateOnly: true, topicPartitions: [{ topic: 'grow', count: 6 }] });
      expect(topicOf('grow').partitions).toHaveLength(2);

      await admin.createPartitions({ topicPartitions: [{ topic: 'grow', count: 5 }] });
      expect(topicOf('grow').partitions).toHaveLength(5);
      expect(topicOf('grow').partitions.slice(0, 2).map((p) => p.endOffset)).toEqual(before);
      const meta = await admin.fetchTopicMetadata({ topics: ['grow'] });
      expect(meta.topics[0]!.partitions.map((p) => p.partitionId).sort()).toEqual([0, 1, 2, 3, 4]);

      await expect(admin.createPartitions({ topicPartitions: [{ topic: 'grow', count: 3 }] })).rejects.toMatchObject({ type: 'INVALID_PARTITIONS' });
      await expect(admin.createPartitions({ topicPartitions: [{ topic: 'grow', count: 5 }] })).rejects.toMatchObject({ type: 'INVALID_PARTITIONS' });
      await expect(admin.createPartitions({ topicPartitions: [{ topic: 'no-such-topic', count: 5 }] })).rejects.toMatchObject({ type: 'UNKNOWN_TOPIC_OR_PARTITION' });
      expect(topicOf('grow').partitions).toHaveLength(5);

      // The producer learns the new count from metadata and hashes over it, as the broker would.
      const fresh = kafka.producer();
      await fresh.connect();
      const sent = await fresh.send({ topic: 'grow', messages: keys.map((k) => ({ key: k, value: `after ${k}` })) });
      expect(sent.every((r) => r.errorCode === 0)).toBe(true);
      await fresh.disconnect();
      await producer.disconnect();
      const engine = broker.host.live();
      const placed = new Map<string, number>();
      for (let p = 0; p < 5; p++) {
        for (const r of engine.fetch('grow', p, { offset: 0, limit: 1000 }).records) {
          if (r.value!.toString().startsWith('after ')) placed.set(r.key!.toString(), p);
        }
      }
      expect(placed.size).toBe(keys.length);
      for (const k of keys) expect(placed.get(k)).toBe(partitionForKey(Buffer.from(k), 5));
      expect(new Set(placed.values()).size).toBeGreaterThan(2);
    } finally {
      await admin.disconnect();
    }
  });

  it('alters topic configs with AlterConfigs, and DescribeConfigs shows them', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: 'tuned', numPartitions: 1 }] });
      const describe = async () => {
        const res = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: 'tuned' }] });
        return Object.fromEntries(res.resources[0]!.configEntries.map((c) => [c.configName, { value: c.configValue, isDefault: c.isDefault }]));
      };
      await admin.alterConfigs({ validateOnly: true, resources: [{ type: 2, name: 'tuned', configEntries: [{ name: 'retention.ms', value: '60000' }] }] });
      expect((await describe())['retention.ms']).toEqual({ value: '-1', isDefault: true });

      await admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: 'tuned', configEntries: [{ name: 'retention.ms', value: '60000' }, { name: 'max.message.bytes', value: '500000' }] }] });
      let configs = await describe();
      expect(configs['retention.ms']).toEqual({ value: '60000', isDefault: false });
      expect(configs['max.message.bytes']).toEqual({ value: '500000', isDefault: false });
      expect(topicOf('tuned').retentionMs).toBe(60_000);

      // AlterConfigs replaces the whole set: what is not named returns to its default.
      await admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: 'tuned', configEntries: [{ name: 'retention.bytes', value: '1048576' }] }] });
      configs = await describe();
      expect(configs['retention.ms']).toEqual({ value: '-1', isDefault: true });
      expect(configs['retention.bytes']).toEqual({ value: '1048576', isDefault: false });
      expect(configs['max.message.bytes']!.isDefault).toBe(true);

      await expect(admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: 'tuned', configEntries: [{ name: 'cleanup.policy', value: 'compress' }] }] })).rejects.toMatchObject({ type: 'INVALID_CONFIG' });
      await expect(admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: 'tuned', configEntries: [{ name: 'retention.ms', value: 'soon' }] }] })).rejects.toMatchObject({ type: 'INVALID_CONFIG' });
      await expect(admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: 'nowhere', configEntries: [{ name: 'retention.ms', value: '1' }] }] })).rejects.toMatchObject({ type: 'UNKNOWN_TOPIC_OR_PARTITION' });
      expect(topicOf('tuned').retentionBytes).toBe(1_048_576);
    } finally {
      await admin.disconnect();
    }
  });

  it('deletes records before an offset: gone for fetch, ListOffsets earliest and browse; past the end is OFFSET_OUT_OF_RANGE', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: 'trimmed', numPartitions: 2 }] });
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({ topic: 'trimmed', messages: Array.from({ length: 10 }, (_, i) => ({ partition: 0, value: `r${i}` })) });
      await producer.send({ topic: 'trimmed', messages: Array.from({ length: 3 }, (_, i) => ({ partition: 1, value: `s${i}` })) });
      await producer.disconnect();

      // kafkajs looks the leader up in the metadata it has: it must know the topic first.
      await admin.fetchTopicMetadata({ topics: ['trimmed'] });
      await admin.deleteTopicRecords({ topic: 'trimmed', partitions: [{ partition: 0, offset: '4' }] });
      const offsets = await admin.fetchTopicOffsets('trimmed');
      expect(offsets.find((o) => o.partition === 0)).toMatchObject({ low: '4', high: '10' });
      expect(offsets.find((o) => o.partition === 1)).toMatchObject({ low: '0', high: '3' });
      const engine = broker.host.live();
      expect(topicOf('trimmed').partitions[0]).toMatchObject({ startOffset: 4, endOffset: 10 });
      expect(engine.browseTopic('trimmed', { partition: 0 }).records.map((r) => r.value!.toString())).toEqual(['r4', 'r5', 'r6', 'r7', 'r8', 'r9']);

      const consumer = kafka.consumer({ groupId: 'trimmed-readers', maxWaitTimeInMs: 100 });
      await consumer.connect();
      await consumer.subscribe({ topic: 'trimmed', fromBeginning: true });
      const got: string[] = [];
      await consumer.run({ eachMessage: async ({ message }) => void got.push(message.value!.toString()) });
      await expect.poll(() => got.length).toBe(9);
      await consumer.disconnect();
      expect(got.filter((v) => v.startsWith('r'))).toEqual(['r4', 'r5', 'r6', 'r7', 'r8', 'r9']);

      const beyond = await admin.deleteTopicRecords({ topic: 'trimmed', partitions: [{ partition: 1, offset: '4' }] }).then(
        () => null,
        (e: { cause?: { partitions?: Array<{ partition: number; error: { type: string } }> } }) => e.cause?.partitions?.map((p) => [p.partition, p.error.type]),
      );
      expect(beyond).toEqual([[1, 'OFFSET_OUT_OF_RANGE']]);
      expect(topicOf('trimmed').partitions[1]!.startOffset).toBe(0);
      // -1: up to the high watermark.
      await admin.deleteTopicRecords({ topic: 'trimmed', partitions: [{ partition: 1, offset: '-1' }] });
      expect(topicOf('trimmed').partitions[1]).toMatchObject({ startOffset: 3, endOffset: 3, bytes: 0 });
    } finally {
      await admin.disconnect();
    }
  });
});
