/**
 * Record headers as Kafka has them, through the Kafka listener: a key given
 * several times keeps every value in order (kafkajs), a null value stays null
 * (kcat writes one; kafkajs cannot), and a consumer reads them back so; the broker's own browse shows
 * each key's last value. Headers without repeats or nulls are stored as before.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Kafka, logLevel, type IHeaders } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWireBroker, type WireBroker } from './helpers.js';

let broker: WireBroker;
let kafka: Kafka;
beforeAll(async () => {
  broker = await startWireBroker();
  kafka = new Kafka({ clientId: 'headers-test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
});
afterAll(() => broker?.stop());

describe('Kafka headers through the listener', () => {
  it('keeps repeated keys in order for consumers; browse shows the last value of each key', async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'headed', numPartitions: 1 }] });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: 'headed',
      messages: [
        { value: 'repeated', headers: { trace: ['hop-1', 'hop-2', 'hop-3'], tenant: 'acme' } },
        { value: 'plain', headers: { tenant: 'acme', region: 'eu' } },
      ],
    });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: 'headed-readers', maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic: 'headed', fromBeginning: true });
    const got = new Map<string, IHeaders>();
    await consumer.run({ eachMessage: async ({ message }) => void got.set(message.value!.toString(), message.headers ?? {}) });
    await expect.poll(() => got.size).toBe(2);
    await consumer.disconnect();

    const text = (v: unknown) => (Array.isArray(v) ? v.map((x) => (x === null ? null : String(x))) : v === null ? null : String(v));
    const read = (value: string) => Object.fromEntries(Object.entries(got.get(value)!).map(([k, v]) => [k, text(v)]));
    expect(read('repeated')).toEqual({ trace: ['hop-1', 'hop-2', 'hop-3'], tenant: 'acme' });
    expect(read('plain')).toEqual({ tenant: 'acme', region: 'eu' });

    const browsed = broker.host.live().browseTopic('headed').records;
    const shown = (i: number) => Object.fromEntries(Object.entries(browsed[i]!.headers).map(([k, v]) => [k, v.toString()]));
    expect(shown(0)).toEqual({ trace: 'hop-3', tenant: 'acme' });
    expect(shown(1)).toEqual({ tenant: 'acme', region: 'eu' });
    // The browse filter sees the same map.
    const filtered = broker.host.live().browseTopic('headed', { filter: { header: { name: 'trace', value: 'hop-3' } } }).records;
    expect(filtered.map((r) => r.value!.toString())).toEqual(['repeated']);
  });

  it.skipIf(!existsSync('/usr/bin/kcat'))('keeps a null header value null, beside a repeated key (kcat)', async () => {
    await new Promise<void>((resolve, reject) => {
      const child = execFile('/usr/bin/kcat', ['-b', broker.bootstrap, '-P', '-t', 'nulled', '-H', 'tombstone', '-H', 'hop=1', '-H', 'hop=2'], { timeout: 30_000 }, (error) => (error ? reject(error) : resolve()));
      child.stdin!.end('with a null header\n');
    });
    const consumer = kafka.consumer({ groupId: 'nulled-readers', maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic: 'nulled', fromBeginning: true });
    let headers: IHeaders | undefined;
    await consumer.run({ eachMessage: async ({ message }) => void (headers = message.headers) });
    await expect.poll(() => headers !== undefined).toBe(true);
    await consumer.disconnect();
    expect(headers!.tombstone).toBeNull();
    expect((headers!.hop as Buffer[]).map(String)).toEqual(['1', '2']);
    const [record] = broker.host.live().browseTopic('nulled').records;
    expect(Object.fromEntries(Object.entries(record!.headers).map(([k, v]) => [k, v.toString()]))).toEqual({ tombstone: '', hop: '2' });
  });
});
