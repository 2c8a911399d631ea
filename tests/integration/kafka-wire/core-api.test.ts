/**
 * Records produced over the Kafka wire are Brokerdeck's records: the core's API
 * (as the app and headless mode use it) browses them with their keys and
 * headers, publishes into the same topic for a Kafka consumer to read, and
 * shows the consumer group formed over the wire with its lag.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListenerInfo } from '../../../src-main/contract/types.js';
import { startCore, type Core } from '../../../src-main/core/core.js';

const L = { connectionId: 'local' };
let core: Core;
let kafka: Kafka;

beforeAll(async () => {
  core = await startCore({ dataDir: null, version: '9.9.9', diskFreeLimit: 0, listeners: { kafka: { port: 0 } } });
  const listener = ((await core.call('listeners/list', {})) as ListenerInfo[]).find((l) => l.protocol === 'kafka')!;
  kafka = new Kafka({ clientId: 'core-api-test', brokers: [`127.0.0.1:${listener.port}`], logLevel: logLevel.NOTHING });
});
afterAll(() => core?.close());

describe('records produced over the Kafka wire, in the core API', () => {
  it('are browsed, published to and consumed with lag shown', async () => {
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    await producer.send({ topic: 'payments', messages: [1, 2, 3].map((i) => ({ key: `p${i}`, value: JSON.stringify({ amount: i }), headers: { origin: 'wire' } })) });
    await producer.disconnect();

    const page = await core.call('topics/messages', { ...L, topic: 'payments', limit: 10 });
    expect(page.messages.map((m) => [m.key, m.value, m.headers.origin])).toEqual([
      ['p1', '{"amount":1}', 'wire'],
      ['p2', '{"amount":2}', 'wire'],
      ['p3', '{"amount":3}', 'wire'],
    ]);

    await core.call('topics/produce', { ...L, topic: 'payments', key: 'p4', value: '{"amount":4}', headers: { origin: 'app' } });

    const seen: Array<{ key: string; value: string; origin: string }> = [];
    const consumer = kafka.consumer({ groupId: 'ledger' });
    await consumer.connect();
    await consumer.subscribe({ topic: 'payments', fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void seen.push({ key: message.key!.toString(), value: message.value!.toString(), origin: message.headers!.origin!.toString() }) });
    await expect.poll(() => seen.length).toBe(4);
    expect(seen[3]).toEqual({ key: 'p4', value: '{"amount":4}', origin: 'app' });

    // The member's assignment (the consumer protocol's bytes) shows, and the commits bring its lag to 0.
    await expect.poll(async () => (await core.call('groups/get', { ...L, groupId: 'ledger' })).partitions.reduce((s, p) => s + (p.committed ?? 0), 0)).toBe(4);
    const group = await core.call('groups/get', { ...L, groupId: 'ledger' });
    expect(group.members.map((m) => m.assignments)).toEqual([[{ topic: 'payments', partition: 0 }]]);
    expect(group.totalLag).toBe(0);
    await consumer.disconnect();
  });
});
