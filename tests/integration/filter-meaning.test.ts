/**
 * One filter meaning for every connection: the same messages (bodies, routing
 * keys or record keys, headers, properties, times) go to the embedded
 * broker's queues and topics, a real RabbitMQ queue and a real Kafka topic,
 * and the same filters, run through each connection's browse operation in
 * the core, must find the same messages. The meaning is written down in the
 * README ("Filters").
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCore, type Core } from '../../src-main/core/core.js';
import type { MessageFilter } from '../../src-main/contract/operations.js';
import { useKafkaBroker } from '../kafka/broker.js';
import { prepareBroker } from './rabbitmq/broker.js';

type Label = 'm1' | 'm2' | 'm3' | 'm4' | 'm5' | 'm6';

interface Sample {
  label: Label;
  /** utf8 text, or base64 when `binary`. */
  body: string;
  binary?: boolean;
  /** Routing key (queues) and record key (topics). */
  key: string;
  headers: Record<string, string | number>;
  properties: Record<string, string>;
  /** Published after the time boundary T. */
  late: boolean;
}

const SAMPLES: Sample[] = [
  { label: 'm1', body: '{"id":1,"order":{"status":"shipped","total":42}}', key: 'order.created', headers: { tenant: 'a', attempt: 1 }, properties: { contentType: 'application/json', messageId: 'ORD-1' }, late: false },
  { label: 'm2', body: 'ORDER-2 cancelled by the customer', key: 'order.cancelled', headers: { tenant: 'b' }, properties: { contentType: 'text/plain', messageId: 'm-2', correlationId: 'order' }, late: false },
  { label: 'm3', body: '{"id":3,"order":{"status":"pending","total":"42"}}', key: 'invoice.created', headers: { tenant: 'a', attempt: 3 }, properties: { contentType: 'application/json', type: 'invoice' }, late: false },
  { label: 'm4', body: 'payment for an order', key: 'payment.ORDER', headers: { Tenant: 'A' }, properties: { appId: 'billing' }, late: true },
  { label: 'm5', body: Buffer.concat([Buffer.from([0, 0xff, 0xfe]), Buffer.from('order-5'), Buffer.from([0])]).toString('base64'), binary: true, key: 'order.binary', headers: {}, properties: {}, late: true },
  { label: 'm6', body: '{"id":6,"note":"Order"}', key: 'orders', headers: { flag: 'yes' }, properties: {}, late: true },
];

interface Case {
  name: string;
  filter: (t: number) => MessageFilter;
  expected: Label[];
  /** Properties exist on queue messages only. */
  queuesOnly?: boolean;
}

const ALL: Label[] = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'];
const CASES: Case[] = [
  { name: 'no filter', filter: () => ({}), expected: ALL },
  { name: 'q is a case-sensitive body substring', filter: () => ({ q: 'order' }), expected: ['m1', 'm3', 'm4', 'm5'] },
  { name: 'q in upper case', filter: () => ({ q: 'ORDER' }), expected: ['m2'] },
  { name: 'q with JSON punctuation', filter: () => ({ q: '"status":"shipped"' }), expected: ['m1'] },
  { name: 'q inside a binary body', filter: () => ({ q: 'order-5' }), expected: ['m5'] },
  { name: 'q does not search keys or properties', filter: () => ({ q: 'invoice' }), expected: [] },
  { name: 'key is a case-sensitive substring', filter: () => ({ key: 'order' }), expected: ['m1', 'm2', 'm5', 'm6'] },
  { name: 'key in full', filter: () => ({ key: 'order.created' }), expected: ['m1'] },
  { name: 'jsonPath present', filter: () => ({ jsonPath: '$.order.status' }), expected: ['m1', 'm3'] },
  { name: 'jsonPath equals text', filter: () => ({ jsonPath: '$.order.status', jsonEquals: 'shipped' }), expected: ['m1'] },
  { name: 'jsonPath equals a number, as text or number', filter: () => ({ jsonPath: 'order.total', jsonEquals: '42' }), expected: ['m1', 'm3'] },
  { name: 'jsonPath contains', filter: () => ({ jsonPath: '$.order', jsonContains: 'pend' }), expected: ['m3'] },
  { name: 'header present (name is case-sensitive)', filter: () => ({ headerName: 'tenant' }), expected: ['m1', 'm2', 'm3'] },
  { name: 'header equals', filter: () => ({ headerName: 'tenant', headerValue: 'a' }), expected: ['m1', 'm3'] },
  { name: 'header equals a number as text', filter: () => ({ headerName: 'attempt', headerValue: '3' }), expected: ['m3'] },
  { name: 'from', filter: (t) => ({ from: t }), expected: ['m4', 'm5', 'm6'] },
  { name: 'to', filter: (t) => ({ to: t - 1 }), expected: ['m1', 'm2', 'm3'] },
  { name: 'every part must match', filter: () => ({ q: 'order', headerName: 'tenant', headerValue: 'a', key: 'order.' }), expected: ['m1'] },
  { name: 'property in AMQP spelling', filter: () => ({ propertyName: 'content_type', propertyValue: 'application/json' }), expected: ['m1', 'm3'], queuesOnly: true },
  { name: 'property present', filter: () => ({ propertyName: 'appId' }), expected: ['m4'], queuesOnly: true },
  { name: 'property equals', filter: () => ({ propertyName: 'messageId', propertyValue: 'ORD-1' }), expected: ['m1'], queuesOnly: true },
];

/** Body text as the browse answers show it (utf8 text, or base64) → label. */
const BY_BODY = new Map(SAMPLES.map((s) => [s.body, s.label]));

function labelOf(body: string | null): Label | '?' {
  return (body !== null && BY_BODY.get(body)) || '?';
}

/** Waits until the wall clock passes the next whole second (AMQP timestamps are seconds); returns that boundary. */
async function secondBoundary(): Promise<number> {
  const t = Math.ceil((Date.now() + 1) / 1000) * 1000;
  while (Date.now() < t) await new Promise((r) => setTimeout(r, Math.max(1, t - Date.now())));
  return t;
}

interface Target {
  browse(filter: MessageFilter): Promise<Label[] | string>;
  queue: boolean;
}

async function publishQueue(core: Core, connectionId: string, queue: string, late: boolean): Promise<void> {
  for (const s of SAMPLES.filter((x) => x.late === late)) {
    const r = await core.call('publish', {
      connectionId,
      exchange: 'amq.topic',
      routingKey: s.key,
      body: s.body,
      bodyEncoding: s.binary ? 'base64' : 'utf8',
      properties: { ...s.properties, headers: s.headers, timestamp: Math.floor(Date.now() / 1000) },
    });
    expect(r.returned, `${s.label} reached ${queue}`).toBe(0);
  }
}

async function queueTarget(core: Core, connectionId: string): Promise<{ target: Target; t: number }> {
  const queue = `filter-meaning-${randomUUID().slice(0, 8)}`;
  await core.call('queues/declare', { connectionId, queue, durable: false });
  await core.call('bindings/create', { connectionId, source: 'amq.topic', destination: queue, routingKey: '#' });
  await publishQueue(core, connectionId, queue, false);
  const t = await secondBoundary();
  await publishQueue(core, connectionId, queue, true);
  return {
    t,
    target: {
      queue: true,
      async browse(filter) {
        try {
          const page = await core.call('queues/messages', { connectionId, queue, limit: 100, ...filter });
          return page.messages.map((m) => labelOf(m.body) as Label);
        } catch (error) {
          return `error: ${(error as Error).message}`;
        }
      },
    },
  };
}

async function topicTarget(core: Core, connectionId: string): Promise<{ target: Target; t: number }> {
  const topic = `filter-meaning-${randomUUID().slice(0, 8)}`;
  await core.call('topics/create', { connectionId, topic, partitions: 1 });
  const produce = async (late: boolean) => {
    for (const s of SAMPLES.filter((x) => x.late === late)) {
      await core.call('topics/produce', {
        connectionId,
        topic,
        key: s.key,
        value: s.body,
        valueEncoding: s.binary ? 'base64' : 'utf8',
        headers: Object.fromEntries(Object.entries(s.headers).map(([k, v]) => [k, String(v)])),
      });
    }
  };
  await produce(false);
  const t = await secondBoundary();
  await produce(true);
  return {
    t,
    target: {
      queue: false,
      async browse(filter) {
        try {
          const page = await core.call('topics/messages', { connectionId, topic, limit: 100, seek: 'earliest', ...filter });
          return page.messages.map((m) => labelOf(m.value) as Label);
        } catch (error) {
          return `error: ${(error as Error).message}`;
        }
      },
    },
  };
}

/** Runs every case; returns the disagreements as readable lines. */
async function disagreements(target: Target, t: number): Promise<string[]> {
  const out: string[] = [];
  for (const c of CASES) {
    if (c.queuesOnly && !target.queue) continue;
    const got = await target.browse(c.filter(t));
    const sorted = typeof got === 'string' ? got : [...got].sort();
    if (JSON.stringify(sorted) !== JSON.stringify([...c.expected].sort())) out.push(`${c.name} ${JSON.stringify(c.filter(t))}: expected ${JSON.stringify(c.expected)}, got ${JSON.stringify(sorted)}`);
  }
  return out;
}

const rabbit = await prepareBroker();
const kafka = useKafkaBroker();

describe('one filter meaning on every connection', { timeout: 120_000 }, () => {
  let core: Core;

  beforeAll(async () => {
    core = await startCore({ dataDir: null, version: '0.0.0-test' });
  });

  afterAll(async () => {
    await core?.close();
    if (rabbit.ok) await rabbit.cleanup();
  });

  it('the embedded broker, queues', async () => {
    const { target, t } = await queueTarget(core, 'local');
    expect(await disagreements(target, t)).toEqual([]);
  });

  it('the embedded broker, topics', async () => {
    const { target, t } = await topicTarget(core, 'local');
    expect(await disagreements(target, t)).toEqual([]);
  });

  it.skipIf(!rabbit.ok)(`RabbitMQ, queues${rabbit.ok ? '' : ` (skipped: ${rabbit.reason})`}`, async () => {
    if (!rabbit.ok) return;
    const { id } = await core.call('connections/create', rabbit.config({ name: 'filter meaning' }));
    const { target, t } = await queueTarget(core, id);
    expect(await disagreements(target, t)).toEqual([]);
  });

  it('Kafka, topics', async (ctx) => {
    const broker = kafka.require(ctx);
    const { id } = await core.call('connections/create', { kind: 'kafka', name: 'filter meaning', brokers: broker.brokers });
    const { target, t } = await topicTarget(core, id);
    expect(await disagreements(target, t)).toEqual([]);
  });
});
