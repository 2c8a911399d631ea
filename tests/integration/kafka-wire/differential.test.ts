/**
 * The same kafkajs scenario against a real Kafka (tests/kafka) and against
 * the embedded broker's listener; what the client observes must be the same:
 * the partitions and offsets keyed records get, the end offsets, what a group
 * consumes and commits, offsets by time, the group's state after its member
 * leaves, and the errors for an existing and a missing topic.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useKafkaBroker } from '../../kafka/broker.js';
import { startWireBroker, type WireBroker } from './helpers.js';

const real = useKafkaBroker();
let ours: WireBroker;
beforeAll(async () => {
  ours = await startWireBroker();
});
afterAll(() => ours?.stop());

async function scenario(bootstrap: string) {
  const kafka = new Kafka({ clientId: 'differential', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const topic = 'diff-orders';
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  const createdAgain = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
  const before = Date.now() - 1000;
  // Idempotent: a send retried on a loaded machine (a request that timed out) is not appended twice, on either broker.
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const sends = [];
  for (let i = 0; i < 6; i++) {
    const res = await producer.send({ topic, acks: -1, messages: Array.from({ length: 5 }, (_, j) => ({ key: `customer-${(i * 5 + j) % 7}`, value: `order ${i * 5 + j}`, headers: { n: String(i * 5 + j) } })) });
    sends.push(res.map((r) => ({ partition: r.partition, errorCode: r.errorCode, baseOffset: r.baseOffset })).sort((a, b) => a.partition - b.partition));
  }
  await producer.disconnect();
  const ends = (await admin.fetchTopicOffsets(topic)).map((o) => ({ partition: o.partition, low: o.low, high: o.high })).sort((a, b) => a.partition - b.partition);
  const byTime = (await admin.fetchTopicOffsetsByTimestamp(topic, before)).map((o) => ({ partition: o.partition, offset: o.offset })).sort((a, b) => a.partition - b.partition);

  const consumed: Array<{ partition: number; offset: string; key: string; value: string; n: string }> = [];
  const consumer = kafka.consumer({ groupId: 'diff-group', sessionTimeout: 10_000, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ partition, message }) => void consumed.push({ partition, offset: message.offset, key: message.key!.toString(), value: message.value!.toString(), n: message.headers!.n!.toString() }) });
  // A rebalance on a loaded machine (a heartbeat late) hands records out again, on either broker (at least once): each counts once.
  const distinct = () => [...new Map(consumed.map((c) => [`${c.partition}:${c.offset}`, c])).values()];
  await expect.poll(() => distinct().length).toBe(30);
  await consumer.disconnect();
  const committed = (await admin.fetchOffsets({ groupId: 'diff-group', topics: [topic] }))[0]!.partitions.map((p) => ({ partition: p.partition, offset: p.offset })).sort((a, b) => a.partition - b.partition);
  const group = (await admin.describeGroups(['diff-group'])).groups[0]!;
  const missing = await admin.deleteTopics({ topics: ['diff-missing'], timeout: 2000 }).then(
    () => 'deleted',
    (e: { type?: string; errors?: Array<{ type?: string }> }) => e.type ?? e.errors?.[0]?.type ?? 'error',
  );
  await admin.disconnect();
  return {
    created,
    createdAgain,
    sends,
    ends,
    byTime,
    consumed: distinct().sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset)),
    committed,
    group: { state: group.state, members: group.members.length, protocolType: group.protocolType },
    missing,
  };
}

describe('kafkajs observes the same from the Kafka listener as from a real Kafka', () => {
  it('topics, keyed produce, offsets, a group consuming and committing, errors', async (ctx) => {
    const kafka = real.require(ctx);
    const expected = await scenario(kafka.brokers[0]!);
    const actual = await scenario(ours.bootstrap);
    expect(actual).toEqual(expected);
  }, 240_000);
});
