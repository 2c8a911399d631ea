/**
 * Browsing, peeking and publishing against a real RabbitMQ: queues of every
 * type with their policies and dead-letter sources, peeks that leave queues as
 * they were, the quorum delivery-limit guard, streams by offset, publishes
 * that report confirms and returns, statistics and their history.
 */
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitConnector } from '../../../src-main/connectors/rabbitmq/index.js';
import { eventually, prepareBroker, testDeps } from './broker.js';

const env = await prepareBroker();
const title = env.ok ? 'RabbitMQ: browse, peek, publish' : `RabbitMQ: browse, peek, publish (skipped: ${env.reason})`;

async function fill(ch: ConfirmChannel, queue: string, n: number, prefix = 'm'): Promise<void> {
  for (let i = 0; i < n; i++) {
    ch.sendToQueue(queue, Buffer.from(JSON.stringify({ n: i, tag: `${prefix}-${i}` })), {
      messageId: `${prefix}-${i}`,
      contentType: 'application/json',
      persistent: true,
      headers: { seq: i },
    });
  }
  await ch.waitForConfirms();
}

/** Takes every message of a queue (acking), in order. */
async function drain(model: ChannelModel, queue: string): Promise<string[]> {
  const ch = await model.createChannel();
  const out: string[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (!m) break;
    out.push(String(m.properties.messageId));
  }
  await ch.close();
  return out;
}

describe.skipIf(!env.ok)(title, { timeout: 60_000 }, () => {
  if (!env.ok) {
    // Registered (and skipped with the describe) so the report names the reason.
    it(`RabbitMQ is not available: ${env.reason}`, () => {});
    return;
  }
  const b = env;
  const deps = testDeps();
  let raw: ChannelModel;
  let ch: ConfirmChannel;
  let rabbit: RabbitConnector;
  let quorumPeeker: RabbitConnector;

  beforeAll(async () => {
    raw = await b.connect();
    ch = await raw.createConfirmChannel();
    rabbit = new RabbitConnector('c-browse', b.config(), deps);
    quorumPeeker = new RabbitConnector('c-quorum-ok', b.config({ allowQuorumPeek: true }), deps, { sampleIntervalMs: 0 });
  });

  afterAll(async () => {
    await rabbit?.close();
    await quorumPeeker?.close();
    await raw?.close().catch(() => {});
    await b.cleanup();
  });

  it('lists queues of every type with counts, arguments, policies and dead-letter sources from arguments and from policies', async () => {
    await ch.assertExchange('dlx-args', 'fanout', { durable: true });
    await ch.assertExchange('dlx-policy', 'direct', { durable: true });
    await ch.assertQueue('dlq-args', { durable: true });
    await ch.assertQueue('dlq-policy', { durable: true });
    await ch.bindQueue('dlq-args', 'dlx-args', '');
    await ch.bindQueue('dlq-policy', 'dlx-policy', 'parked');
    await ch.assertQueue('work-args', { durable: true, arguments: { 'x-dead-letter-exchange': 'dlx-args' } });
    await ch.assertQueue('work-policy', { durable: true });
    await ch.assertQueue('work-quorum', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await ch.assertQueue('work-stream', { durable: true, arguments: { 'x-queue-type': 'stream' } });
    await b.api('PUT', `/api/policies/${encodeURIComponent(b.vhost)}/dl-by-policy`, {
      pattern: '^work-policy$',
      'apply-to': 'queues',
      definition: { 'dead-letter-exchange': 'dlx-policy', 'dead-letter-routing-key': 'parked' },
    });
    await fill(ch, 'work-args', 3);

    const queues = await eventually(
      () => rabbit.listQueues(),
      (qs) => qs.find((q) => q.name === 'work-policy')?.policy?.name === 'dl-by-policy' && qs.find((q) => q.name === 'work-args')?.messages === 3,
    );
    const byName = new Map(queues.map((q) => [q.name, q]));
    expect(byName.get('work-quorum')?.type).toBe('quorum');
    expect(byName.get('work-stream')?.type).toBe('stream');
    expect(byName.get('work-args')).toMatchObject({ type: 'classic', messages: 3, ready: 3, unacked: 0, delayed: 0, consumers: 0 });
    expect(byName.get('work-args')?.arguments).toMatchObject({ 'x-dead-letter-exchange': 'dlx-args' });
    expect(byName.get('work-policy')?.policy).toEqual({
      name: 'dl-by-policy',
      definition: { 'dead-letter-exchange': 'dlx-policy', 'dead-letter-routing-key': 'parked' },
    });
    expect(byName.get('dlq-args')?.deadLetterFor).toEqual(['work-args']);
    expect(byName.get('dlq-policy')?.deadLetterFor).toEqual(['work-policy']);
    expect(byName.get('work-args')?.deadLetterFor).toEqual([]);

    const dead = await rabbit.listDeadLetters();
    expect(dead).toEqual(
      expect.arrayContaining([
        { queue: 'dlq-args', count: 0, sources: ['work-args'] },
        { queue: 'dlq-policy', count: 0, sources: ['work-policy'] },
      ]),
    );
    const single = await rabbit.getQueue('dlq-policy');
    expect(single.deadLetterFor).toEqual(['work-policy']);
    await expect(rabbit.getQueue('no-such-queue')).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: `queue "no-such-queue" does not exist in vhost "${b.vhost}"`,
    });

    const exchanges = await rabbit.listExchanges();
    expect(exchanges.find((e) => e.name === 'dlx-policy')).toMatchObject({ type: 'direct', durable: true });
    const bindings = await rabbit.listBindings();
    expect(bindings).toContainEqual({ source: 'dlx-policy', destination: 'dlq-policy', destinationType: 'queue', routingKey: 'parked', arguments: {} });
    const policies = await rabbit.listPolicies();
    expect(policies.map((p) => p.name)).toContain('dl-by-policy');
    const vhosts = await rabbit.listVhosts();
    expect(vhosts.map((v) => v.name)).toContain(b.vhost);
  });

  it('peeks a classic queue without changing its depth or order, and says the messages were redelivered', async () => {
    await ch.assertQueue('peek-classic', { durable: true });
    await fill(ch, 'peek-classic', 50, 'p');

    const first = await rabbit.browseQueue({ queue: 'peek-classic', limit: 20, includeUnacked: true, allowQuorumPeek: false });
    expect(first.messages.map((m) => m.properties.messageId)).toEqual(Array.from({ length: 20 }, (_, i) => `p-${i}`));
    expect(first).toMatchObject({ scanned: 20, matched: 20, nextCursor: '20' });
    expect(first.messages[0]).toMatchObject({ position: 0, bodyEncoding: 'utf8', routingKey: 'peek-classic', state: 'ready' });
    expect(JSON.parse(first.messages[3]!.body)).toEqual({ n: 3, tag: 'p-3' });
    expect(first.messages[3]!.properties.headers).toEqual({ seq: 3 });

    const second = await rabbit.browseQueue({ queue: 'peek-classic', limit: 20, cursor: first.nextCursor!, includeUnacked: true, allowQuorumPeek: false });
    expect(second.messages.map((m) => m.properties.messageId)).toEqual(Array.from({ length: 20 }, (_, i) => `p-${i + 20}`));
    // The first page's messages came back: now marked redelivered, same ids.
    const again = await rabbit.browseQueue({ queue: 'peek-classic', limit: 5, includeUnacked: true, allowQuorumPeek: false });
    expect(again.messages.every((m) => m.redelivered)).toBe(true);
    expect(again.messages.map((m) => m.id)).toEqual(first.messages.slice(0, 5).map((m) => m.id));

    const filtered = await rabbit.browseQueue({ queue: 'peek-classic', limit: 50, jsonPath: '$.n', jsonEquals: '7', includeUnacked: true, allowQuorumPeek: false });
    expect(filtered.scanned).toBe(50);
    expect(filtered.matched).toBe(1);
    expect(filtered.messages[0]?.properties.messageId).toBe('p-7');
    expect(filtered.nextCursor).toBeNull();

    const declared = await ch.checkQueue('peek-classic');
    expect(declared.messageCount).toBe(50);
    expect(await drain(raw, 'peek-classic')).toEqual(Array.from({ length: 50 }, (_, i) => `p-${i}`));
  });

  it('refuses to peek a quorum queue with a delivery limit (argument or policy) unless the connection allows it', async () => {
    await ch.assertQueue('quorum-limited', { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 2 } });
    await ch.assertQueue('quorum-policy', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await b.api('PUT', `/api/policies/${encodeURIComponent(b.vhost)}/limit-by-policy`, {
      pattern: '^quorum-policy$',
      'apply-to': 'queues',
      definition: { 'delivery-limit': 3 },
    });
    await fill(ch, 'quorum-limited', 5, 'q');
    await fill(ch, 'quorum-policy', 5, 'qp');

    await expect(rabbit.browseQueue({ queue: 'quorum-limited', limit: 10, includeUnacked: true, allowQuorumPeek: false })).rejects.toMatchObject({
      code: 'PRECONDITION_FAILED',
      message: expect.stringMatching(/delivery limit of 2/),
    });
    // Refused at once, before the queue's own statistics show the new policy.
    await expect(rabbit.browseQueue({ queue: 'quorum-policy', limit: 10, includeUnacked: true, allowQuorumPeek: false })).rejects.toMatchObject({
      code: 'PRECONDITION_FAILED',
      message: expect.stringMatching(/delivery limit of 3/),
    });
    await expect(rabbit.getMessages({ queue: 'quorum-limited', count: 1, ackMode: 'requeue', allowQuorumPeek: false })).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });

    // Nothing was delivered: a consumer sees delivery count 0 on every message.
    const probe = await raw.createChannel();
    const m = await probe.get('quorum-limited', { noAck: false });
    expect(m && m.properties.headers?.['x-delivery-count']).toBeFalsy();
    await probe.close();

    const allowed = await quorumPeeker.browseQueue({ queue: 'quorum-limited', limit: 10, includeUnacked: true, allowQuorumPeek: false });
    expect(allowed.messages.map((x) => x.properties.messageId)).toEqual(['q-0', 'q-1', 'q-2', 'q-3', 'q-4']);
    // A quorum queue takes returned messages back through its log; the peek waits until they count again.
    expect((await ch.checkQueue('quorum-limited')).messageCount).toBe(5);

    // Or one request at a time, when the person accepts that each message's delivery count goes up by one.
    const consented = await rabbit.browseQueue({ queue: 'quorum-policy', limit: 10, includeUnacked: true, allowQuorumPeek: true });
    expect(consented.messages.map((x) => x.properties.messageId)).toEqual(['qp-0', 'qp-1', 'qp-2', 'qp-3', 'qp-4']);
    expect((await ch.checkQueue('quorum-policy')).messageCount).toBe(5);
    const requeued = await rabbit.getMessages({ queue: 'quorum-policy', count: 1, ackMode: 'requeue', allowQuorumPeek: true });
    expect(requeued.map((x) => x.properties.messageId)).toEqual(['qp-0']);
    const after = await raw.createChannel();
    const counted = await after.get('quorum-policy', { noAck: false });
    // The consent was needed: RabbitMQ counted those returns as delivery attempts.
    expect(Number(counted && counted.properties.headers?.['x-delivery-count'])).toBeGreaterThanOrEqual(1);
    await after.close();
  });

  it('reads a stream by offset, page by page, without side effects', async () => {
    await ch.assertQueue('events', { durable: true, arguments: { 'x-queue-type': 'stream' } });
    await fill(ch, 'events', 30, 's');
    const page1 = await rabbit.browseQueue({ queue: 'events', limit: 10, includeUnacked: true, allowQuorumPeek: false });
    expect(page1.messages.map((m) => m.properties.messageId)).toEqual(Array.from({ length: 10 }, (_, i) => `s-${i}`));
    expect(page1.messages.map((m) => m.position)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(page1.nextCursor).toBe('10');
    const page2 = await rabbit.browseQueue({ queue: 'events', limit: 10, cursor: page1.nextCursor!, includeUnacked: true, allowQuorumPeek: false });
    expect(page2.messages.map((m) => m.properties.messageId)).toEqual(Array.from({ length: 10 }, (_, i) => `s-${i + 10}`));
    const tail = await rabbit.browseQueue({ queue: 'events', limit: 100, position: 25, includeUnacked: true, allowQuorumPeek: false });
    expect(tail.messages.map((m) => m.properties.messageId)).toEqual(['s-25', 's-26', 's-27', 's-28', 's-29']);
    expect(tail.nextCursor).toBeNull();
    // Reading again gives the same messages, not redelivered.
    const again = await rabbit.browseQueue({ queue: 'events', limit: 10, includeUnacked: true, allowQuorumPeek: false });
    expect(again.messages.map((m) => m.id)).toEqual(page1.messages.map((m) => m.id));
    expect(again.messages.some((m) => m.redelivered)).toBe(false);
    await expect(rabbit.getMessages({ queue: 'events', count: 1, ackMode: 'ack', allowQuorumPeek: false })).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
  });

  it('publishes with confirms: routed, returned as unroutable when mandatory finds no queue, and errors for a missing exchange', async () => {
    await ch.assertQueue('pub-target', { durable: true });
    const routed = await rabbit.publish({
      exchange: '',
      routingKey: 'pub-target',
      body: 'aGVsbG8=',
      bodyEncoding: 'base64',
      properties: { messageId: 'pub-1', headers: { a: 1, b: 'two' }, deliveryMode: 2, contentType: 'text/plain', priority: 3 },
      count: 25,
      mandatory: true,
    });
    expect(routed).toEqual({ published: 25, routed: { 'pub-target': 25 }, returned: 0, rejected: 0, deduplicated: 0, confirmed: true });
    const got = await raw.createChannel();
    const m = await got.get('pub-target', { noAck: true });
    expect(m && m.content.toString()).toBe('hello');
    expect(m && m.properties).toMatchObject({ messageId: 'pub-1', headers: { a: 1, b: 'two' }, deliveryMode: 2, contentType: 'text/plain', priority: 3 });
    await got.close();

    await ch.assertExchange('nowhere', 'topic', { durable: false });
    const lost = await rabbit.publish({ exchange: 'nowhere', routingKey: 'a.b', body: 'x', bodyEncoding: 'utf8', properties: {}, count: 10, mandatory: true });
    expect(lost).toMatchObject({ published: 10, returned: 10, routed: {}, confirmed: true });
    const viaDefault = await rabbit.publish({ exchange: '', routingKey: 'no-queue-here', body: 'x', bodyEncoding: 'utf8', properties: {}, count: 1, mandatory: true });
    expect(viaDefault.returned).toBe(1);

    await expect(
      rabbit.publish({ exchange: 'missing-exchange', routingKey: 'x', body: 'x', bodyEncoding: 'utf8', properties: {}, count: 1, mandatory: true }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND', message: `exchange "missing-exchange" does not exist in vhost "${b.vhost}"` });
  });

  it('reports nacks from a queue that rejects publishes when full', async () => {
    await ch.assertQueue('bounded', { durable: true, arguments: { 'x-max-length': 5, 'x-overflow': 'reject-publish' } });
    const result = await rabbit.publish({ exchange: '', routingKey: 'bounded', body: 'x', bodyEncoding: 'utf8', properties: {}, count: 8, mandatory: true });
    expect(result).toMatchObject({ published: 8, rejected: 3, routed: { bounded: 5 }, confirmed: false });
  });

  it('gets messages as the management UI does: requeue keeps, reject dead-letters, ack removes', async () => {
    await ch.assertExchange('get-dlx', 'fanout', { durable: true });
    await ch.assertQueue('get-dlq', { durable: true });
    await ch.bindQueue('get-dlq', 'get-dlx', '');
    await ch.assertQueue('get-q', { durable: true, arguments: { 'x-dead-letter-exchange': 'get-dlx' } });
    await fill(ch, 'get-q', 6, 'g');
    const requeued = await rabbit.getMessages({ queue: 'get-q', count: 2, ackMode: 'requeue', allowQuorumPeek: false });
    expect(requeued.map((m) => m.properties.messageId)).toEqual(['g-0', 'g-1']);
    // RabbitMQ puts them back once it has processed the closed channel: its counts follow shortly after.
    const count = async (queue: string) => (await ch.checkQueue(queue)).messageCount;
    await expect.poll(() => count('get-q')).toBe(6);
    const rejected = await rabbit.getMessages({ queue: 'get-q', count: 2, ackMode: 'reject', allowQuorumPeek: false });
    expect(rejected.map((m) => m.properties.messageId)).toEqual(['g-0', 'g-1']);
    const acked = await rabbit.getMessages({ queue: 'get-q', count: 1, ackMode: 'ack', allowQuorumPeek: false });
    expect(acked.map((m) => m.properties.messageId)).toEqual(['g-2']);
    await expect.poll(() => count('get-q')).toBe(3);
    await expect.poll(() => count('get-dlq')).toBe(2);

    const dead = await rabbit.browseQueue({ queue: 'get-dlq', limit: 10, includeUnacked: true, allowQuorumPeek: false });
    const death = (dead.messages[0]!.properties.headers!['x-death'] as Array<Record<string, unknown>>)[0]!;
    expect(death).toMatchObject({ queue: 'get-q', reason: 'rejected', count: 1, exchange: '', 'routing-keys': ['get-q'] });
    expect(Math.abs((death.time as number) - Date.now())).toBeLessThan(120_000);
  });

  it('declares, binds, purges and deletes, with errors that name what is missing', async () => {
    const q = await rabbit.declareQueue({ queue: 'made-here', durable: true, exclusive: false, autoDelete: false, arguments: { 'x-max-length': 100 } });
    expect(q).toMatchObject({ name: 'made-here', type: 'classic', arguments: { 'x-max-length': 100 } });
    await expect(
      rabbit.declareQueue({ queue: 'made-here', durable: true, exclusive: false, autoDelete: false, arguments: { 'x-max-length': 7 } }),
    ).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
    await rabbit.declareExchange({ exchange: 'made-ex', type: 'topic', durable: true, autoDelete: false, internal: false, arguments: {} });
    await rabbit.createBinding({ source: 'made-ex', destination: 'made-here', destinationType: 'queue', routingKey: 'a.#', arguments: {} });
    const published = await rabbit.publish({ exchange: 'made-ex', routingKey: 'a.b.c', body: 'x', bodyEncoding: 'utf8', properties: {}, count: 4, mandatory: true });
    expect(published.routed).toEqual({ 'made-ex': 4 });
    expect(await rabbit.purgeQueue({ queue: 'made-here' })).toEqual({ messageCount: 4 });
    await rabbit.deleteBinding({ source: 'made-ex', destination: 'made-here', destinationType: 'queue', routingKey: 'a.#', arguments: {} });
    await expect(
      rabbit.deleteBinding({ source: 'made-ex', destination: 'made-here', destinationType: 'queue', routingKey: 'a.#', arguments: {} }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(
      rabbit.createBinding({ source: 'no-ex', destination: 'made-here', destinationType: 'queue', routingKey: '', arguments: {} }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND', message: `exchange "no-ex" does not exist in vhost "${b.vhost}"` });
    await rabbit.deleteExchange({ exchange: 'made-ex', ifUnused: false });
    await expect(rabbit.deleteExchange({ exchange: 'made-ex', ifUnused: false })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await rabbit.deleteQueue({ queue: 'made-here', ifUnused: false, ifEmpty: false })).toEqual({ messageCount: 0 });
    await expect(rabbit.purgeQueue({ queue: 'made-here' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: `queue "made-here" does not exist in vhost "${b.vhost}"`,
    });
  });

  it('shows consumers with their prefetch and unacked counts, and samples backlog into stats and history', async () => {
    await ch.assertQueue('busy', { durable: true });
    await fill(ch, 'busy', 20, 'b');
    const consumerCh = await raw.createChannel();
    await consumerCh.prefetch(7);
    await consumerCh.consume('busy', () => {}, { noAck: false });

    const consumers = await eventually(
      () => rabbit.listConsumers('busy'),
      (cs) => cs.length === 1 && cs[0]!.unacked === 7,
    );
    expect(consumers[0]).toMatchObject({ queue: 'busy', prefetch: 7, ackRequired: true, unacked: 7 });

    const stats = await eventually(
      () => rabbit.stats(),
      (s) => {
        const q = s.queues.find((x) => x.name === 'busy');
        return q?.unacked === 7 && q.ready === 13 && q.consumers === 1;
      },
    );
    expect(stats.connectionId).toBe('c-browse');
    expect(stats.queues.find((q) => q.name === 'busy')).toMatchObject({ ready: 13, unacked: 7, consumers: 1 });
    expect(stats.groups).toEqual([]);

    const series = await eventually(
      () => rabbit.history({ kind: 'queue', name: 'busy', range: 'hour' }),
      (h) => h.samples.some((s) => s.unacked === 7 && s.ready === 13 && s.consumers === 1),
    );
    expect(series.resource).toEqual({ kind: 'queue', name: 'busy' });
    const last = series.samples[series.samples.length - 1]!;
    expect(last).toMatchObject({ ready: 13, unacked: 7, consumers: 1 });
    expect(Object.keys(last).sort()).toEqual(['ack', 'consumers', 'deliver', 'messages', 'publish', 'ready', 'redeliver', 't', 'unacked', 'utilisation']);
    const day = await rabbit.history({ kind: 'queue', name: 'busy', range: 'day' });
    expect(day.samples.length).toBeGreaterThan(0);
    await consumerCh.close();
  });
});
