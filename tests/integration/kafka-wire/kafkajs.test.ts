/**
 * kafkajs, unchanged, against the Kafka listener: keyed records land in the
 * partitions Kafka's default partitioner (murmur2) picks, a group of two
 * consumers shares the partitions and rebalances when one joins and when one
 * leaves without losing a record, committed offsets show in the broker's own
 * group view, and topics are created and deleted by the admin client.
 */
import { Kafka, logLevel, type Consumer, type EachMessagePayload } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionForKey } from '../../../src-main/ground/murmur2.js';
import { startWireBroker, type WireBroker } from './helpers.js';

let broker: WireBroker;
let kafka: Kafka;

beforeAll(async () => {
  broker = await startWireBroker();
  kafka = new Kafka({ clientId: 'kafkajs-test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100 } });
});
afterAll(() => broker?.stop());

describe('kafkajs against the Kafka listener', () => {
  it('creates, lists and deletes topics with the admin client', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      expect(await admin.createTopics({ topics: [{ topic: 'admin-made', numPartitions: 3 }] })).toBe(true);
      expect(await admin.listTopics()).toContain('admin-made');
      const meta = await admin.fetchTopicMetadata({ topics: ['admin-made'] });
      expect(meta.topics[0]!.partitions).toHaveLength(3);
      await expect(admin.createTopics({ topics: [{ topic: 'admin-made', numPartitions: 1 }] })).resolves.toBe(false);
      await admin.deleteTopics({ topics: ['admin-made'] });
      expect(await admin.listTopics()).not.toContain('admin-made');
    } finally {
      await admin.disconnect();
    }
  });

  it('puts keyed records in the partitions of Kafka murmur2 partitioner, and reads offsets by time', async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'keyed', numPartitions: 6 }] });
    const producer = kafka.producer();
    await producer.connect();
    const before = Date.now();
    const keys = Array.from({ length: 60 }, (_, i) => `customer-${i}`);
    const sent = await producer.send({ topic: 'keyed', messages: keys.map((k) => ({ key: k, value: `order of ${k}`, headers: { source: 'test' } })) });
    expect(sent.every((r) => r.errorCode === 0)).toBe(true);
    await producer.disconnect();
    const engine = broker.host.live();
    for (let p = 0; p < 6; p++) {
      for (const r of engine.fetch('keyed', p, { limit: 100 }).records) {
        expect(partitionForKey(r.key!, 6)).toBe(p);
        expect(r.value!.toString()).toBe(`order of ${r.key!.toString()}`);
        expect(r.headers.source?.toString()).toBe('test');
      }
    }
    expect(engine.listTopics().find((t) => t.name === 'keyed')!.messages).toBe(60);
    const offsets = await admin.fetchTopicOffsetsByTimestamp('keyed', before);
    expect(offsets.map((o) => Number(o.offset)).every((o) => o === 0)).toBe(true);
    const latest = await admin.fetchTopicOffsets('keyed');
    expect(latest.reduce((s, o) => s + Number(o.high), 0)).toBe(60);
    await admin.disconnect();
  });

  it('shares partitions in a group of two that rebalances as members join and leave, losing no record', async () => {
    const topic = 'orders';
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    const seen = new Map<string, string[]>();
    const assigned = new Map<string, number>();
    const start = async (name: string): Promise<Consumer> => {
      const c = kafka.consumer({ groupId: 'billing', sessionTimeout: 10_000, heartbeatInterval: 500, rebalanceTimeout: 10_000 });
      c.on(c.events.GROUP_JOIN, (e) => assigned.set(name, (e.payload.memberAssignment[topic] ?? []).length));
      await c.connect();
      await c.subscribe({ topic, fromBeginning: true });
      await c.run({
        eachMessage: async ({ message }: EachMessagePayload) => {
          const v = message.value!.toString();
          seen.set(v, [...(seen.get(v) ?? []), name]);
        },
      });
      return c;
    };
    const send = (from: number, n: number) => producer.send({ topic, messages: Array.from({ length: n }, (_, i) => ({ key: `k${(from + i) % 13}`, value: `m${from + i}` })) });

    const a = await start('a');
    await expect.poll(() => assigned.get('a')).toBe(4);
    await send(0, 40);
    await expect.poll(() => seen.size).toBe(40);

    const b = await start('b');
    await expect.poll(() => [assigned.get('a'), assigned.get('b')]).toEqual([2, 2]);
    // The broker's group view reads the members' assignments from the consumer protocol.
    await expect.poll(() => broker.host.live().listGroups().find((g) => g.groupId === 'billing')?.members.map((m) => m.assignments.length)).toEqual([2, 2]);
    await send(40, 40);
    await expect.poll(() => seen.size).toBe(80);
    expect(new Set([...seen.values()].flat())).toEqual(new Set(['a', 'b']));

    await b.disconnect();
    await expect.poll(() => assigned.get('a')).toBe(4);
    await send(80, 40);
    await expect.poll(() => seen.size).toBe(120);

    // The group formed over the wire is the broker's group: its committed offsets reach the ends.
    await expect.poll(() => broker.host.live().listGroups().find((g) => g.groupId === 'billing')?.totalLag).toBe(0);
    const group = broker.host.live().listGroups().find((g) => g.groupId === 'billing')!;
    expect(group.partitions.map((p) => p.committed ?? 0).reduce((s, c) => s + c, 0)).toBe(120);
    await a.disconnect();
    await producer.disconnect();
  });
});
