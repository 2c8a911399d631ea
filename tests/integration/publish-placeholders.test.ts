/**
 * One placeholder meaning for every connection: the same publish with {{i}}
 * and {{uuid}} in the body, string and number-typed headers and the message
 * id goes through the core to the embedded broker, a real RabbitMQ (read back
 * with plain amqplib, message_id included) and a real Kafka topic, and every
 * copy must arrive with its own expanded values. The same publishes run as
 * jobs end with the same counts, and a cancelled Kafka produce job has
 * appended exactly what it reports.
 */
import { randomUUID } from 'node:crypto';
import type { PublishJob } from '../../src-main/contract/types.js';
import type { ConsumeMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCore, type Core } from '../../src-main/core/core.js';
import { useKafkaBroker } from '../kafka/broker.js';
import { prepareBroker } from './rabbitmq/broker.js';

const COUNT = 5;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const request = {
  body: '{"id":"{{uuid}}","n":{{i}}}',
  properties: { messageId: 'order-{{i}}', headers: { seq: { $number: '{{i}}' }, tag: 't-{{i}}', fixed: 7 } },
  count: COUNT,
};

/** What every connection must show for copies 1..COUNT. */
function checkCopies(copies: Array<{ body: string; messageId?: string | undefined; headers: Record<string, unknown> }>): void {
  expect(copies).toHaveLength(COUNT);
  const bodies = copies.map((c) => JSON.parse(c.body) as { id: string; n: number });
  expect(bodies.map((b) => b.n).sort()).toEqual([1, 2, 3, 4, 5]);
  for (const b of bodies) expect(b.id).toMatch(UUID);
  expect(new Set(bodies.map((b) => b.id)).size).toBe(COUNT);
  for (const c of copies) {
    const n = (JSON.parse(c.body) as { n: number }).n;
    if (c.messageId !== undefined) expect(c.messageId).toBe(`order-${n}`);
    expect(c.headers.tag).toBe(`t-${n}`);
  }
}

const rabbit = await prepareBroker();
const kafka = useKafkaBroker();

describe('publish placeholders on every connection', { timeout: 120_000 }, () => {
  let core: Core;

  beforeAll(async () => {
    core = await startCore({ dataDir: null, version: '0.0.0-test' });
  });

  afterAll(async () => {
    await core?.close();
    if (rabbit.ok) await rabbit.cleanup();
  });

  it('the embedded broker expands each copy, number-typed headers as numbers', async () => {
    const queue = `placeholders-${randomUUID().slice(0, 8)}`;
    await core.call('queues/declare', { connectionId: 'local', queue, durable: false });
    const r = await core.call('publish', { connectionId: 'local', routingKey: queue, ...request });
    expect(r.published).toBe(COUNT);
    const page = await core.call('queues/messages', { connectionId: 'local', queue, limit: 100 });
    checkCopies(page.messages.map((m) => ({ body: m.body ?? '', messageId: m.properties.messageId, headers: m.properties.headers ?? {} })));
    expect(page.messages.map((m) => m.properties.headers?.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(page.messages.every((m) => m.properties.headers?.fixed === 7)).toBe(true);
  });

  it.skipIf(!rabbit.ok)(`RabbitMQ receives expanded copies, distinct message ids${rabbit.ok ? '' : ` (skipped: ${rabbit.reason})`}`, async () => {
    if (!rabbit.ok) return;
    const { id } = await core.call('connections/create', rabbit.config({ name: 'placeholders' }));
    const model = await rabbit.connect();
    try {
      const ch = await model.createChannel();
      const queue = `placeholders-${randomUUID().slice(0, 8)}`;
      await ch.assertQueue(queue, { durable: false });
      const r = await core.call('publish', { connectionId: id, routingKey: queue, ...request });
      expect(r).toMatchObject({ published: COUNT, returned: 0, rejected: 0 });
      const got: ConsumeMessage[] = [];
      await ch.consume(queue, (m) => m && got.push(m), { noAck: true });
      await expect.poll(() => got.length).toBe(COUNT);
      checkCopies(got.map((m) => ({ body: m.content.toString('utf8'), messageId: m.properties.messageId as string, headers: m.properties.headers ?? {} })));
      expect(new Set(got.map((m) => m.properties.messageId)).size).toBe(COUNT);
      // amqplib decodes an AMQP integer as a JS number: the header left as a number, not text.
      expect(got.map((m) => m.properties.headers?.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(got.every((m) => m.properties.headers?.fixed === 7)).toBe(true);
    } finally {
      await model.close();
    }
  });

  it('Kafka receives expanded keys, values and headers', async (ctx) => {
    const broker = kafka.require(ctx);
    const { id } = await core.call('connections/create', { kind: 'kafka', name: 'placeholders', brokers: broker.brokers });
    const topic = `placeholders-${randomUUID().slice(0, 8)}`;
    await core.call('topics/create', { connectionId: id, topic, partitions: 1 });
    const r = await core.call('topics/produce', { connectionId: id, topic, key: 'k-{{i}}', value: request.body, headers: { tag: 't-{{i}}' }, count: COUNT });
    expect(r.published).toBe(COUNT);
    const page = await core.call('topics/messages', { connectionId: id, topic, limit: 100, seek: 'earliest' });
    checkCopies(page.messages.map((m) => ({ body: m.value ?? '', headers: m.headers })));
    expect(page.messages.map((m) => m.key)).toEqual(['k-1', 'k-2', 'k-3', 'k-4', 'k-5']);
  });

  /** Resolves with the job's final state, from the publishJobs stream. */
  function ended(id: string, seen: PublishJob[] = []): Promise<PublishJob> {
    return new Promise((resolve) => {
      const off = core.subscribe('publishJobs', { id }, (job) => {
        seen.push(job);
        if (['completed', 'cancelled', 'failed'].includes(job.state)) {
          off();
          resolve(job);
        }
      });
    });
  }

  it('runs a publish job on the embedded broker to the same result', async () => {
    const queue = `placeholders-job-${randomUUID().slice(0, 8)}`;
    await core.call('queues/declare', { connectionId: 'local', queue, durable: false });
    const job = await core.call('publish/start', { connectionId: 'local', routingKey: queue, ...request, count: 1_000 });
    const final = job.state === 'completed' ? job : await ended(job.id);
    expect(final).toMatchObject({ state: 'completed', total: 1_000, confirmed: 1_000, result: { published: 1_000, routed: { [queue]: 1_000 } } });
  });

  it('runs a produce job on Kafka with progress, and a cancelled one appended what it reports', async (ctx) => {
    const broker = kafka.require(ctx);
    const { id } = await core.call('connections/create', { kind: 'kafka', name: 'produce jobs', brokers: broker.brokers });
    const topic = `produce-job-${randomUUID().slice(0, 8)}`;
    await core.call('topics/create', { connectionId: id, topic, partitions: 1 });
    const job = await core.call('topics/produceStart', { connectionId: id, topic, value: 'v-{{i}}', count: 10_000 });
    expect(job).toMatchObject({ kind: 'publish', total: 10_000 });
    const final = job.state === 'completed' ? job : await ended(job.id);
    expect(final).toMatchObject({ state: 'completed', confirmed: 10_000, result: { published: 10_000 } });

    const seen: PublishJob[] = [];
    const big = await core.call('topics/produceStart', { connectionId: id, topic, value: 'w-{{i}}', count: 1_000_000 });
    const end = ended(big.id, seen);
    await expect.poll(() => seen.some((e) => e.confirmed > 0)).toBe(true);
    await core.call('publish/cancel', { id: big.id });
    const cancelled = await end;
    expect(cancelled.state).toBe('cancelled');
    const appended = cancelled.result!.published;
    expect(appended).toBeGreaterThan(0);
    expect(appended).toBeLessThan(1_000_000);
    const t = await core.call('topics/get', { connectionId: id, topic });
    expect(t.partitions[0]!.endOffset).toBe(10_000 + appended);
  });

  it('refuses a number-typed header that does not expand to a number, naming it', async () => {
    await expect(
      core.call('publish', { connectionId: 'local', routingKey: 'nowhere', body: 'x', properties: { headers: { seq: { $number: 'n-{{i}}' } } }, count: 2 }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'properties.headers.seq' });
  });
});
