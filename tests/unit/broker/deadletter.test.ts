import { describe, it, expect } from 'vitest';
import type { Delivery, FieldTable } from '../../../src-main/broker/index.js';
import { memEngine, clock, b, publishAll, settle, collector } from './helpers.js';

type Engine = ReturnType<typeof memEngine>;

function bodies(e: Engine, q: string): string[] {
  return e.browse(q, { limit: 10_000, includeUnacked: true }).messages.map((m) => m.body.toString());
}

function headersOf(e: Engine, q: string, i = 0): FieldTable {
  return e.browse(q, { limit: 1000 }).messages[i]!.properties.headers ?? {};
}

function dlxSetup(e: Engine, dlqName = 'dlq'): void {
  e.declareExchange('dlx', { type: 'fanout' });
  e.declareQueue(dlqName);
  e.bind({ source: 'dlx', destination: dlqName });
}

describe('TTL', () => {
  it('x-message-ttl expires messages at the head and dead-letters them with reason expired', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    dlxSetup(e);
    e.declareQueue('q', { arguments: { 'x-message-ttl': 1000, 'x-dead-letter-exchange': 'dlx' } });
    await e.publish({ exchange: '', routingKey: 'q', body: b('old'), properties: { expiration: '60000' } });
    c.advance(600);
    await e.publish({ exchange: '', routingKey: 'q', body: b('young') });
    c.advance(400);
    e.tick();
    expect(bodies(e, 'q')).toEqual(['young']);
    expect(bodies(e, 'dlq')).toEqual(['old']);
    const h = headersOf(e, 'dlq');
    // Died at the tick, now: time is AMQP seconds.
    expect(h['x-death']).toEqual([
      { count: 1, reason: 'expired', queue: 'q', time: Math.floor(c.now() / 1000), exchange: '', 'routing-keys': ['q'], 'original-expiration': '60000' },
    ]);
    expect(h).toMatchObject({ 'x-first-death-queue': 'q', 'x-first-death-reason': 'expired', 'x-first-death-exchange': '', 'x-last-death-queue': 'q', 'x-last-death-reason': 'expired' });
    // expiration is removed when dead-lettered
    expect(e.browse('dlq', { limit: 1 }).messages[0]!.properties.expiration).toBeUndefined();
    c.advance(600);
    e.tick();
    expect(bodies(e, 'q')).toEqual([]);
    e.close();
  });

  it('per-message expiration; consumers never get expired messages', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.declareQueue('q');
    await e.publish({ exchange: '', routingKey: 'q', body: b('short'), properties: { expiration: '100' } });
    await e.publish({ exchange: '', routingKey: 'q', body: b('long'), properties: { expiration: '10000' } });
    c.advance(150);
    const got = collector();
    e.consume('q', { noAck: true }, got.on);
    await settle(e);
    expect(got.bodies()).toEqual(['long']);
    e.close();
  });

  it('TTL 0 delivers only to a waiting consumer', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.declareQueue('q', { arguments: { 'x-message-ttl': 0 } });
    await e.publish({ exchange: '', routingKey: 'q', body: b('nobody') });
    expect(e.getQueue('q').messages).toBe(0);
    const got = collector();
    e.consume('q', { noAck: true }, got.on);
    await e.publish({ exchange: '', routingKey: 'q', body: b('someone') });
    await settle(e);
    expect(got.bodies()).toEqual(['someone']);
    e.close();
  });

  it('x-expires deletes an unused queue', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.declareQueue('tmp', { arguments: { 'x-expires': 5000 } });
    await publishAll(e, 'tmp', ['x']);
    c.advance(4000);
    e.declareQueue('tmp', { arguments: { 'x-expires': 5000 } }); // redeclare counts as use
    c.advance(4000);
    e.tick();
    expect(e.getQueue('tmp').messages).toBe(1);
    const t = e.consume('tmp', {}, () => undefined);
    c.advance(10_000);
    e.tick();
    expect(e.getQueue('tmp').consumers).toBe(1);
    e.cancel(t);
    c.advance(5000);
    e.tick();
    expect(e.listQueues().some((q) => q.name === 'tmp')).toBe(false);
    e.close();
  });
});

describe('max length', () => {
  it('drop-head dead-letters the oldest with reason maxlen', async () => {
    const e = memEngine();
    dlxSetup(e);
    e.declareQueue('q', { arguments: { 'x-max-length': 2, 'x-dead-letter-exchange': 'dlx' } });
    await publishAll(e, 'q', ['1', '2', '3', '4']);
    expect(bodies(e, 'q')).toEqual(['3', '4']);
    expect(bodies(e, 'dlq')).toEqual(['1', '2']);
    expect((headersOf(e, 'dlq')['x-death'] as FieldTable[])[0]).toMatchObject({ reason: 'maxlen', queue: 'q', count: 1 });
    e.close();
  });

  it('x-max-length-bytes counts body bytes', async () => {
    const e = memEngine();
    e.declareQueue('q', { arguments: { 'x-max-length-bytes': 10 } });
    await publishAll(e, 'q', ['aaaa', 'bbbb', 'cccc']);
    expect(bodies(e, 'q')).toEqual(['bbbb', 'cccc']);
    expect(e.getQueue('q').bytes).toBe(8);
    e.close();
  });

  it('reject-publish refuses new messages; reject-publish-dlx also dead-letters them', async () => {
    const e = memEngine();
    dlxSetup(e);
    e.declareQueue('r', { arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish', 'x-dead-letter-exchange': 'dlx' } });
    e.declareQueue('rd', { arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish-dlx', 'x-dead-letter-exchange': 'dlx' } });
    e.declareExchange('both', { type: 'fanout' });
    e.bind({ source: 'both', destination: 'r' });
    e.bind({ source: 'both', destination: 'rd' });
    expect((await e.publish({ exchange: 'both', routingKey: '', body: b('1') })).routedQueues.sort()).toEqual(['r', 'rd']);
    const res = await e.publish({ exchange: 'both', routingKey: '', body: b('2') });
    expect(res.rejected?.sort()).toEqual(['r', 'rd']);
    expect(res.routedQueues).toEqual([]);
    expect(bodies(e, 'r')).toEqual(['1']);
    expect(bodies(e, 'rd')).toEqual(['1']);
    expect(bodies(e, 'dlq')).toEqual(['2']);
    // Unacked messages do not count toward the limit.
    const t = e.consume('r', { prefetch: 1 }, () => undefined);
    await settle(e);
    expect((await e.publish({ exchange: '', routingKey: 'r', body: b('3') })).routedQueues).toEqual(['r']);
    e.cancel(t);
    e.close();
  });
});

describe('dead-letter chains, x-death and cycles', () => {
  it('builds x-death newest first, increments and moves repeated (queue, reason) to the front', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    // work --reject--> retry (TTL) --expired--> work ...
    e.declareExchange('work.dlx', { type: 'direct' });
    e.declareExchange('retry.dlx', { type: 'direct' });
    e.declareQueue('work', { arguments: { 'x-dead-letter-exchange': 'work.dlx', 'x-dead-letter-routing-key': 'retry' } });
    e.declareQueue('retry', { arguments: { 'x-message-ttl': 100, 'x-dead-letter-exchange': 'retry.dlx', 'x-dead-letter-routing-key': 'work' } });
    e.bind({ source: 'work.dlx', destination: 'retry', routingKey: 'retry' });
    e.bind({ source: 'retry.dlx', destination: 'work', routingKey: 'work' });
    await e.publish({ exchange: '', routingKey: 'work', body: b('job'), properties: { headers: { CC: ['audit'] } } });
    const t0 = Math.floor(c.now() / 1000);
    for (let round = 1; round <= 2; round++) {
      const [m] = await e.get('work', { count: 1, ackMode: 'reject' });
      expect(m).toBeDefined();
      c.advance(1000);
      e.tick();
    }
    const h = headersOf(e, 'work');
    const deaths = h['x-death'] as FieldTable[];
    expect(deaths).toEqual([
      { count: 2, reason: 'expired', queue: 'retry', time: t0 + 1, exchange: 'work.dlx', 'routing-keys': ['retry'] },
      { count: 2, reason: 'rejected', queue: 'work', time: t0, exchange: '', 'routing-keys': ['work', 'audit'] },
    ]);
    expect(h).toMatchObject({
      'x-first-death-queue': 'work',
      'x-first-death-reason': 'rejected',
      'x-first-death-exchange': '',
      'x-last-death-queue': 'retry',
      'x-last-death-reason': 'expired',
      'x-last-death-exchange': 'work.dlx',
    });
    e.close();
  });

  it('drops a message caught in an automatic (no rejection) cycle', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.declareExchange('to-b', { type: 'fanout' });
    e.declareExchange('to-a', { type: 'fanout' });
    e.declareQueue('a', { arguments: { 'x-message-ttl': 10, 'x-dead-letter-exchange': 'to-b' } });
    e.declareQueue('b', { arguments: { 'x-message-ttl': 10, 'x-dead-letter-exchange': 'to-a' } });
    e.bind({ source: 'to-b', destination: 'b' });
    e.bind({ source: 'to-a', destination: 'a' });
    await publishAll(e, 'a', ['loop']);
    c.advance(20);
    e.tick(); // a -> b
    expect(bodies(e, 'b')).toEqual(['loop']);
    c.advance(20);
    e.tick(); // b -> a would be a cycle: dropped
    expect(bodies(e, 'a')).toEqual([]);
    expect(bodies(e, 'b')).toEqual([]);
    e.close();
  });

  it('a missing dead-letter exchange drops the message', async () => {
    const e = memEngine();
    e.declareQueue('q', { arguments: { 'x-dead-letter-exchange': 'ghost' } });
    await publishAll(e, 'q', ['x']);
    await e.get('q', { count: 1, ackMode: 'reject' });
    expect(e.getQueue('q').messages).toBe(0);
    e.close();
  });

  it('reports dead-letter queues and their sources', () => {
    const e = memEngine();
    dlxSetup(e);
    e.declareQueue('q1', { arguments: { 'x-dead-letter-exchange': 'dlx' } });
    e.declareQueue('q2', { arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'dlq' } });
    expect(e.listDeadLetterQueues()).toEqual([{ queue: 'dlq', count: 0, sources: ['q1', 'q2'] }]);
    expect(e.getQueue('dlq').deadLetterFor).toEqual(['q1', 'q2']);
    e.close();
  });
});

describe('delivery limit and retries', () => {
  it('x-delivery-limit dead-letters with reason delivery_limit once exceeded', async () => {
    const e = memEngine();
    dlxSetup(e);
    e.declareQueue('q', { arguments: { 'x-delivery-limit': 2, 'x-dead-letter-exchange': 'dlx' } });
    await publishAll(e, 'q', ['m']);
    const counts: number[] = [];
    e.consume('q', { prefetch: 1 }, (d: Delivery) => {
      counts.push(d.deliveryCount);
      setImmediate(() => e.nack(d.deliveryTag, { requeue: true }));
    });
    for (let i = 0; i < 10; i++) await settle(e);
    expect(counts).toEqual([1, 2, 3]);
    expect(bodies(e, 'dlq')).toEqual(['m']);
    expect((headersOf(e, 'dlq')['x-death'] as FieldTable[])[0]).toMatchObject({ reason: 'delivery_limit', queue: 'q' });
    e.close();
  });

  it('x-retry-delays redelivers after each delay, then dead-letters', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    dlxSetup(e);
    e.declareQueue('q', { arguments: { 'x-retry-delays': [1000, 5000], 'x-dead-letter-exchange': 'dlx' } });
    await publishAll(e, 'q', ['job']);
    const seen: Array<[number, unknown]> = [];
    e.consume('q', { prefetch: 1 }, (d) => {
      seen.push([c.now(), d.properties.headers?.['x-retry-count']]);
      e.reject(d.deliveryTag, { requeue: false });
    });
    await settle(e);
    const t0 = c.now();
    expect(e.getQueue('q')).toMatchObject({ messages: 0, delayed: 1 });
    expect(e.browse('q', { limit: 5 }).messages[0]).toMatchObject({ state: 'delayed', dueAt: t0 + 1000 });
    c.advance(999);
    e.tick();
    await settle(e);
    expect(seen).toHaveLength(1);
    c.advance(1);
    e.tick();
    await settle(e);
    expect(seen).toHaveLength(2);
    c.advance(5000);
    e.tick();
    await settle(e);
    expect(seen).toEqual([
      [t0, undefined],
      [t0 + 1000, 1],
      [t0 + 6000, 2],
    ]);
    expect(bodies(e, 'dlq')).toEqual(['job']);
    expect((headersOf(e, 'dlq')['x-death'] as FieldTable[])[0]).toMatchObject({ reason: 'rejected', queue: 'q', count: 1 });
    e.close();
  });
});

describe('delayed messages (x-delay)', () => {
  it('stay invisible until due, then land at the tail', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.declareQueue('q');
    await e.publish({ exchange: '', routingKey: 'q', body: b('later'), properties: { headers: { 'x-delay': 2000 } } });
    await publishAll(e, 'q', ['now']);
    expect(e.getQueue('q')).toMatchObject({ messages: 1, ready: 1, delayed: 1 });
    const page = e.browse('q', { limit: 10 });
    expect(page.messages.map((m) => [m.body.toString(), m.state])).toEqual([
      ['now', 'ready'],
      ['later', 'delayed'],
    ]);
    expect(await e.get('q', { count: 5, ackMode: 'ack' })).toHaveLength(1);
    c.advance(2000);
    e.tick();
    expect(e.getQueue('q')).toMatchObject({ messages: 1, delayed: 0 });
    expect((await e.get('q', { count: 5, ackMode: 'ack' })).map((m) => m.body.toString())).toEqual(['later']);
    e.close();
  });
});

describe('deduplication', () => {
  it('queue-level: a duplicate is dropped while the original is in the queue', async () => {
    const e = memEngine();
    e.declareQueue('d', { arguments: { 'x-message-deduplication': true } });
    const r1 = await e.publish({ exchange: '', routingKey: 'd', body: b('1'), properties: { messageId: 'm-1' } });
    const r2 = await e.publish({ exchange: '', routingKey: 'd', body: b('2'), properties: { messageId: 'm-1' } });
    const r3 = await e.publish({ exchange: '', routingKey: 'd', body: b('3'), properties: { headers: { 'x-deduplication-header': 'k' } } });
    const r4 = await e.publish({ exchange: '', routingKey: 'd', body: b('4'), properties: { headers: { 'x-deduplication-header': 'k' } } });
    expect(r1.routedQueues).toEqual(['d']);
    expect(r2).toMatchObject({ routedQueues: [], deduplicated: ['d'] });
    expect(r3.routedQueues).toEqual(['d']);
    expect(r4.deduplicated).toEqual(['d']);
    await e.get('d', { count: 1, ackMode: 'ack' });
    expect((await e.publish({ exchange: '', routingKey: 'd', body: b('5'), properties: { messageId: 'm-1' } })).routedQueues).toEqual(['d']);
    expect(bodies(e, 'd')).toEqual(['3', '5']);
    e.close();
  });

  it('cache window (x-cache-ttl) and a named header', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.declareQueue('d', { arguments: { 'x-message-deduplication': true, 'x-cache-ttl': 1000, 'x-deduplication-header': 'order-id' } });
    const pub = (id: string) => e.publish({ exchange: '', routingKey: 'd', body: b(id), properties: { headers: { 'order-id': id } } });
    expect((await pub('A')).routedQueues).toEqual(['d']);
    await e.get('d', { count: 1, ackMode: 'ack' });
    expect((await pub('A')).deduplicated).toEqual(['d']); // still in the window after consumption
    c.advance(1001);
    expect((await pub('A')).routedQueues).toEqual(['d']);
    e.close();
  });
});
