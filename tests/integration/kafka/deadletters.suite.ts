/**
 * Dead-letter topics: recognised by name (and by a pattern per connection),
 * each record's origin and error read from Spring Kafka's and Kafka
 * Connect's headers, and re-drives: selected records, offset ranges and
 * filters, to the original topic or a chosen one, exactly once (a second run
 * skips what the first re-drove), with progress, cancel and audit.
 */
import { Producer } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import type { KafkaConnector, KafkaRedriveJob } from '../../../src-main/connectors/kafka/index.js';
import type { KafkaBrokerHandle, KafkaTestBroker } from '../../kafka/broker.js';
import { browseAll } from './browse.suite.js';
import { connect, createTopic, eventually, kcatAvailable, kcatRead, testDeps, topicName } from './helpers.js';

type BrowseArgs = Parameters<KafkaConnector['browseTopic']>[0];

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function int64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(n));
  return b;
}

/** Records as Spring Kafka's DeadLetterPublishingRecoverer writes them (binary partition and offset). */
export function springHeaders(topic: string, partition: number, offset: number, message: string): Map<Buffer, Buffer> {
  return new Map<Buffer, Buffer>([
    [Buffer.from('trace-id'), Buffer.from(`trace-${offset}`)],
    [Buffer.from('kafka_dlt-original-topic'), Buffer.from(topic)],
    [Buffer.from('kafka_dlt-original-partition'), int32(partition)],
    [Buffer.from('kafka_dlt-original-offset'), int64(offset)],
    [Buffer.from('kafka_dlt-original-timestamp'), int64(1_700_000_000_000 + offset)],
    [Buffer.from('kafka_dlt-original-timestamp-type'), Buffer.from('CreateTime')],
    [Buffer.from('kafka_dlt-original-consumer-group'), Buffer.from('orders-service')],
    [Buffer.from('kafka_dlt-exception-fqcn'), Buffer.from('org.springframework.kafka.listener.ListenerExecutionFailedException')],
    [Buffer.from('kafka_dlt-exception-cause-fqcn'), Buffer.from('java.lang.IllegalStateException')],
    [Buffer.from('kafka_dlt-exception-message'), Buffer.from(message)],
    [Buffer.from('kafka_dlt-exception-stacktrace'), Buffer.from('java.lang.IllegalStateException: ' + message + '\n\tat com.example.Orders.handle(Orders.java:42)')],
  ]);
}

export async function writeSpringDeadLetters(broker: KafkaTestBroker, dlt: string, original: string, count: number, partitions: number, extra: (i: number) => string = () => ''): Promise<void> {
  const producer = new Producer({ clientId: 'spring-like', bootstrapBrokers: broker.brokers, acks: -1, idempotent: true });
  try {
    const batch = 500;
    for (let start = 0; start < count; start += batch) {
      const messages = [];
      for (let i = start; i < Math.min(count, start + batch); i++) {
        messages.push({
          topic: dlt,
          partition: i % partitions,
          key: Buffer.from(`order-${i}`),
          value: Buffer.from(JSON.stringify({ order: i, note: extra(i) })),
          headers: springHeaders(original, i % 3, 1000 + i, `order ${i} failed${extra(i) ? ': ' + extra(i) : ''}`),
        });
      }
      await producer.send({ messages });
    }
  } finally {
    await producer.close();
  }
}

async function settle(c: KafkaConnector, id: string, timeoutMs = 60_000): Promise<KafkaRedriveJob> {
  return eventually(async () => {
    const job = await c.getRedrive(id);
    return job && ['completed', 'failed', 'cancelled'].includes(job.state) ? job : null;
  }, timeoutMs, 100);
}

export function deadLettersSuite(kafka: KafkaBrokerHandle): void {
  describe('dead-letter topics', () => {
    it('recognises dead-letter topics and reads where each record came from and why', { timeout: 60_000 }, async (ctx) => {
      const broker = kafka.require(ctx);
      const base = topicName('orders');
      const spring = `${base}.DLT`;
      const dashed = `${base}-dlt`;
      const connectDlq = `dlq-sink-${base}`;
      const custom = `failed.${base}`;
      await Promise.all([createTopic(broker, base, 3), createTopic(broker, spring, 2), createTopic(broker, dashed, 1), createTopic(broker, connectDlq, 1), createTopic(broker, custom, 1)]);
      await writeSpringDeadLetters(broker, spring, base, 4, 2);
      const producer = new Producer({ clientId: 'connect-like', bootstrapBrokers: broker.brokers, acks: -1 });
      await producer.send({
        messages: [
          {
            topic: connectDlq,
            partition: 0,
            value: Buffer.from('not json'),
            headers: new Map([
              [Buffer.from('__connect.errors.topic'), Buffer.from(base)],
              [Buffer.from('__connect.errors.partition'), Buffer.from('2')],
              [Buffer.from('__connect.errors.offset'), Buffer.from('77')],
              [Buffer.from('__connect.errors.connector.name'), Buffer.from('jdbc-sink')],
              [Buffer.from('__connect.errors.task.id'), Buffer.from('0')],
              [Buffer.from('__connect.errors.stage'), Buffer.from('VALUE_CONVERTER')],
              [Buffer.from('__connect.errors.exception.class.name'), Buffer.from('org.apache.kafka.connect.errors.DataException')],
              [Buffer.from('__connect.errors.exception.message'), Buffer.from('Converting byte[] to Kafka Connect data failed')],
            ]),
          },
        ],
      });
      await producer.close();

      const c = connect(broker, { deadLetterPattern: '^failed\\.(.+)$' });
      try {
        const topics = await c.listTopics();
        const by = (n: string) => topics.find((t) => t.name === n)!;
        expect(by(base).deadLetterFor).toBeUndefined();
        expect(by(spring).deadLetterFor).toEqual([base]);
        expect(by(dashed).deadLetterFor).toEqual([base]);
        expect(by(connectDlq).deadLetterFor).toEqual([base]);
        expect(by(custom).deadLetterFor).toEqual([base]);

        const dlqs = await c.listDeadLetters();
        expect(dlqs.find((d) => d.queue === spring)).toEqual({ queue: spring, count: 4, sources: [base] });
        expect(dlqs.map((d) => d.queue)).not.toContain(base);

        const page = await c.browseTopic({ topic: spring, partition: 0, limit: 10 });
        const first = page.messages[0]!;
        expect(first.deadLetter).toMatchObject({
          source: 'spring',
          topic: base,
          partition: 0,
          offset: 1000,
          timestamp: 1_700_000_001_000,
          consumerGroup: 'orders-service',
          exceptionClass: 'org.springframework.kafka.listener.ListenerExecutionFailedException',
          causeClass: 'java.lang.IllegalStateException',
          exceptionMessage: 'order 0 failed',
        });
        expect(first.deadLetter!.stacktrace).toContain('Orders.java:42');
        // Spring's binary numbers are shown as numbers.
        expect(first.headers['kafka_dlt-original-partition']).toBe('0');
        expect(first.headers['kafka_dlt-original-offset']).toBe('1000');

        const fromConnect = (await c.browseTopic({ topic: connectDlq, limit: 10 })).messages[0]!;
        expect(fromConnect.deadLetter).toMatchObject({
          source: 'connect',
          topic: base,
          partition: 2,
          offset: 77,
          connector: 'jdbc-sink',
          stage: 'VALUE_CONVERTER',
          exceptionClass: 'org.apache.kafka.connect.errors.DataException',
        });
      } finally {
        await c.close();
      }
    });

    it('re-drives selected records to the original topic exactly once, keeping key and headers', { timeout: 90_000 }, async (ctx) => {
      const broker = kafka.require(ctx);
      const base = topicName('payments');
      const dlt = `${base}.DLT`;
      await Promise.all([createTopic(broker, base, 3), createTopic(broker, dlt, 2)]);
      await writeSpringDeadLetters(broker, dlt, base, 20, 2, (i) => (i % 5 === 0 ? 'timeout' : 'bad data'));
      const deps = testDeps();
      const c = connect(broker, {}, {}, deps);
      const events: KafkaRedriveJob[] = [];
      const off = c.onRedrive((j) => events.push(j));
      try {
        // Records 0, 2 and 4 sit in partition 0 at offsets 0, 1, 2; record 1 is partition 1 offset 0.
        const { id } = await c.startRedrive({ source: dlt, messageIds: ['0:0', '0:1', '1:0'] });
        const job = await settle(c, id);
        expect(job).toMatchObject({ state: 'completed', moved: 3, failed: 0, skipped: 0, total: 3, target: base, source: dlt });

        const landed = await browseAll(c, { topic: base, limit: 100 } as BrowseArgs);
        expect(landed.records.map((r) => r.key).sort()).toEqual(['order-0', 'order-1', 'order-2']);
        for (const r of landed.records) {
          expect(r.headers['trace-id']).toBe(`trace-${1000 + Number(r.key!.slice(6))}`);
          expect(r.headers['kafka_dlt-exception-fqcn']).toContain('ListenerExecutionFailedException');
          expect(r.headers['x-redriven-job']).toBe(id);
          expect(r.headers['x-redriven-from']).toMatch(new RegExp(`^${dlt.replace(/\./g, '\\.')}:\\d:\\d+$`));
          expect(JSON.parse(r.value!)).toMatchObject({ order: Number(r.key!.slice(6)) });
        }
        // Keyed records land where the Java producer would put them.
        const { javaPartition } = await import('../../../src-main/connectors/kafka/index.js');
        for (const r of landed.records) expect(r.partition).toBe(javaPartition(Buffer.from(r.key!), 3));

        // The same selection again: the ledger says they were re-driven; nothing is written twice.
        const again = await settle(c, (await c.startRedrive({ source: dlt, messageIds: ['0:0', '0:1', '1:0'] })).id);
        expect(again).toMatchObject({ state: 'completed', moved: 0, skipped: 3 });
        expect((await browseAll(c, { topic: base, limit: 100 } as BrowseArgs)).records).toHaveLength(3);

        // Everything matching a filter: the "timeout" ones (0, 5, 10, 15); 0 was re-driven already.
        const filtered = await settle(c, (await c.startRedrive({ source: dlt, all: true, filter: { q: 'timeout' } })).id);
        expect(filtered).toMatchObject({ state: 'completed', moved: 3, skipped: 1 });

        // An offset range of partition 1 (records 1, 3, 5, 7 at offsets 0–3): 1 and 5 are done.
        const range = await settle(c, (await c.startRedrive({ source: dlt, messageIds: ['1:0-3'] })).id);
        expect(range).toMatchObject({ state: 'completed', moved: 2, skipped: 2 });

        const keys = (await browseAll(c, { topic: base, limit: 100 } as BrowseArgs)).records.map((r) => r.key);
        expect(keys.sort()).toEqual(['order-0', 'order-1', 'order-10', 'order-15', 'order-2', 'order-3', 'order-5', 'order-7'].sort());
        expect(new Set(keys).size).toBe(keys.length);
        if (kcatAvailable) {
          const seen = await kcatRead(broker, base);
          expect(seen.map((m) => m.key).sort()).toEqual([...keys].sort());
        }

        // Progress events (throttled) and an audit row per job, in its final state.
        expect(events.filter((e) => e.id === id).at(-1)).toMatchObject({ state: 'completed', moved: 3 });
        const audit = await c.listAudit(50);
        expect(audit.find((a) => a.id === id)).toMatchObject({ action: 'redrive', source: dlt, target: base, count: 3, state: 'completed', selection: '0:0, 0:1, 1:0' });
        expect(audit.filter((a) => a.state === 'completed')).toHaveLength(4);
        // The DLT itself is untouched.
        expect((await browseAll(c, { topic: dlt, limit: 100 } as BrowseArgs)).records).toHaveLength(20);
      } finally {
        off();
        await c.close();
      }
    });

    it('re-drives to a chosen topic with a new key, edits one record, and can be cancelled', { timeout: 90_000 }, async (ctx) => {
      const broker = kafka.require(ctx);
      const base = topicName('shipments');
      const dlt = `${base}-dlt`;
      const other = topicName('elsewhere');
      await Promise.all([createTopic(broker, base, 1), createTopic(broker, dlt, 1), createTopic(broker, other, 2)]);
      await writeSpringDeadLetters(broker, dlt, base, 3_000, 1);
      const c = connect(broker);
      try {
        const moved = await settle(c, (await c.startRedrive({ source: dlt, messageIds: ['0:5'], target: { exchange: other, routingKey: 'fixed-key' } })).id);
        expect(moved).toMatchObject({ state: 'completed', moved: 1, target: other });
        const edited = await settle(c, (await c.startRedrive({ source: dlt, messageIds: ['0:6'], target: { exchange: other, routingKey: '' }, edit: { body: '{"fixed":true}', headers: { 'trace-id': 'edited' } } })).id);
        expect(edited).toMatchObject({ state: 'completed', moved: 1 });
        const there = (await browseAll(c, { topic: other, limit: 10 } as BrowseArgs)).records;
        expect(there.find((r) => r.key === 'fixed-key')).toBeTruthy();
        const e = there.find((r) => r.key === 'order-6')!;
        expect(e.value).toBe('{"fixed":true}');
        expect(e.headers['trace-id']).toBe('edited');

        // Held by its rate (2,998 records at 100 a second take 30 s) until it is cancelled.
        const { id } = await c.startRedrive({ source: dlt, all: true, ratePerSecond: 100 });
        await eventually(async () => ((await c.getRedrive(id))?.moved ?? 0) > 0, 60_000, 50);
        const cancelling = await c.cancelRedrive(id);
        expect(cancelling?.id).toBe(id);
        const done = await settle(c, id);
        expect(done.state).toBe('cancelled');
        expect(done.moved).toBeGreaterThan(0);
        expect(done.moved).toBeLessThan(2_998);
        // A final state never changes.
        await new Promise((r) => setTimeout(r, 300));
        expect((await c.getRedrive(id))?.state).toBe('cancelled');
        const inBase = (await browseAll(c, { topic: base, limit: 5_000 } as BrowseArgs)).records;
        expect(inBase).toHaveLength(done.moved);
      } finally {
        await c.close();
      }
    });

    it('fails records that name no original topic, clearly', async (ctx) => {
      const broker = kafka.require(ctx);
      const dlt = `dlq-${topicName('nowhere')}-x`;
      await createTopic(broker, dlt, 1);
      const c = connect(broker);
      try {
        await c.produce({ topic: dlt, value: 'orphan', valueEncoding: 'utf8', headers: {}, count: 2 });
        const job = await settle(c, (await c.startRedrive({ source: dlt, all: true })).id);
        expect(job).toMatchObject({ state: 'failed', moved: 0, failed: 2 });
        // Each reason once, with how many records it kept back (the name's own original, "nowhere-…-x", does not exist).
        expect(job.error).toMatch(/^2 × (the record names no original topic \(no kafka_dlt-original-topic or __connect\.errors\.topic header\): choose a target topic|target topic "(.+)": topic "\2" does not exist)$/);
        await expect(c.startRedrive({ source: dlt, all: true, target: { exchange: 'no-such-topic-anywhere', routingKey: '' } })).rejects.toMatchObject({
          code: 'NOT_FOUND',
          field: 'target.exchange',
          message: 're-drive target: topic "no-such-topic-anywhere" does not exist',
        });
        await expect(c.startRedrive({ source: dlt, messageIds: ['3:1'] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        await expect(c.startRedrive({ source: dlt, messageIds: ['zero'] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      } finally {
        await c.close();
      }
    });
  });
}
