/**
 * The same amqplib scenario against the real RabbitMQ on this machine
 * (127.0.0.1:5672, guest/guest) and against the embedded broker's AMQP
 * listener; what the client observes must be the same: reply codes and
 * texts, redelivered flags, message counts, x-death, returns.
 */
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startBroker, type TestBroker } from './server.js';

const RABBIT = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

async function reachable(): Promise<boolean> {
  const u = new URL(RABBIT);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port || 5672) }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

const rabbitUp = await reachable();

let embedded: TestBroker;
beforeAll(async () => {
  embedded = await startBroker();
});
afterAll(async () => {
  await embedded?.stop();
});

function errorOf(ch: Channel): Promise<string> {
  return new Promise((resolve) => ch.once('error', (e: Error) => resolve(e.message)));
}

/** Runs the scenario against one broker and returns what the client saw, names made independent of the run. */
async function scenario(url: string): Promise<Record<string, unknown>> {
  const id = randomBytes(4).toString('hex');
  const n = (s: string) => `diff-${id}-${s}`;
  const plain = (s: string) => s.split(id).join('ID');
  const seen: Record<string, unknown> = {};
  const c: ChannelModel = await amqp.connect(url);
  c.on('error', () => {});
  try {
    const ch = await c.createConfirmChannel();
    await ch.assertExchange(n('dlx'), 'fanout', { durable: false, autoDelete: false });
    const dlq = (await ch.assertQueue(n('dlq'), { durable: false })).queue;
    await ch.bindQueue(dlq, n('dlx'), '');
    const work = (await ch.assertQueue(n('work'), { durable: false, arguments: { 'x-dead-letter-exchange': n('dlx') } })).queue;
    seen.declareOk = await ch.checkQueue(work).then((q) => ({ messageCount: q.messageCount, consumerCount: q.consumerCount }));
    for (const body of ['one', 'two', 'three']) {
      await new Promise<void>((resolve, reject) => ch.sendToQueue(work, Buffer.from(body), { persistent: true, headers: { k: body } }, (e) => (e ? reject(e) : resolve())));
    }
    seen.afterPublish = (await ch.checkQueue(work)).messageCount;
    const g = await ch.get(work);
    seen.get = g && { body: g.content.toString(), messageCount: g.fields.messageCount, redelivered: g.fields.redelivered, deliveryTag: g.fields.deliveryTag };
    if (g) ch.nack(g, false, true);
    const deliveries: ConsumeMessage[] = [];
    await ch.prefetch(10);
    await ch.consume(work, (m) => m && deliveries.push(m));
    for (let i = 0; i < 3000 && deliveries.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    seen.delivered = deliveries.map((m) => ({ body: m.content.toString(), redelivered: m.fields.redelivered, tag: m.fields.deliveryTag, persistent: m.properties.deliveryMode, headers: m.properties.headers }));
    ch.ack(deliveries[0]!);
    ch.reject(deliveries[1]!, false);
    ch.nack(deliveries[2]!, false, false);
    const dead: ConsumeMessage[] = [];
    await ch.consume(dlq, (m) => m && dead.push(m), { noAck: true });
    for (let i = 0; i < 3000 && dead.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    seen.dead = dead.map((m) => {
      const deaths = (m.properties.headers?.['x-death'] as unknown as Array<Record<string, unknown>>) ?? [];
      return {
        body: m.content.toString(),
        redelivered: m.fields.redelivered,
        exchange: plain(m.fields.exchange),
        xDeath: deaths.map((d) => ({ ...d, queue: plain(String(d.queue)), exchange: d.exchange, time: typeof d.time, 'routing-keys': (d['routing-keys'] as string[]).map(plain) })),
        first: plain(String(m.properties.headers?.['x-first-death-queue'])),
        reason: m.properties.headers?.['x-first-death-reason'],
      };
    });
    const returned = new Promise<Record<string, unknown>>((resolve) => ch.once('return', (m: ConsumeMessage) => resolve({ ...m.fields, exchange: plain(m.fields.exchange), routingKey: plain(m.fields.routingKey) })));
    await new Promise<void>((resolve, reject) => ch.publish(n('dlx'), 'k', Buffer.from('x'), { mandatory: true }, (e) => (e ? reject(e) : resolve())));
    await ch.unbindQueue(dlq, n('dlx'), '');
    await new Promise<void>((resolve, reject) => ch.publish(n('dlx'), 'k', Buffer.from('x'), { mandatory: true }, (e) => (e ? reject(e) : resolve())));
    seen.returned = await returned;

    const errors: Record<string, string> = {};
    const e1 = await c.createChannel();
    const p1 = errorOf(e1);
    await e1.checkQueue(n('missing')).catch(() => {});
    errors.passiveMissing = plain(await p1);
    const e2 = await c.createChannel();
    const p2 = errorOf(e2);
    e2.ack({ fields: { deliveryTag: 42 } } as unknown as ConsumeMessage);
    errors.unknownTag = await p2;
    const e3 = await c.createChannel();
    const p3 = errorOf(e3);
    await e3.assertQueue(work, { durable: true, arguments: { 'x-dead-letter-exchange': n('dlx') } }).catch(() => {});
    errors.inequivalent = plain(await p3);
    const e4 = await c.createChannel();
    const p4 = errorOf(e4);
    e4.publish(n('nope'), 'k', Buffer.from('x'));
    errors.missingExchange = plain(await p4);
    const e5 = await c.createChannel();
    const p5 = errorOf(e5);
    await e5.assertQueue('amq.reserved').catch(() => {});
    errors.reserved = await p5;
    seen.errors = errors;

    const cleanup = await c.createChannel();
    await cleanup.deleteQueue(work);
    await cleanup.deleteQueue(dlq);
    await cleanup.deleteExchange(n('dlx'));
    seen.deleteMissing = await cleanup.deleteQueue(n('never-was')).then((r) => r.messageCount, (e: Error) => e.message);
  } finally {
    await c.close().catch(() => {});
  }
  return seen;
}

describe.skipIf(!rabbitUp)('the embedded broker answers amqplib as RabbitMQ does', () => {
  test('one scenario, both brokers, the same observations', async () => {
    const rabbit = await scenario(RABBIT);
    const ours = await scenario(embedded.url);
    expect(ours).toEqual(rabbit);
    if (process.env.AMQP_DIFF_PRINT) console.log(JSON.stringify(ours, null, 1));
  });
});

test.skipIf(rabbitUp)('RabbitMQ is not reachable on 127.0.0.1:5672: the differential test is skipped', () => {
  expect(rabbitUp).toBe(false);
});
