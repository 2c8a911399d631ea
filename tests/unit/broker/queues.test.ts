import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { BrokerError, type Delivery } from '../../../src-main/broker/index.js';
import { memEngine, b, publishAll, settle, collector, waitFor } from './helpers.js';

function bodies(e: ReturnType<typeof memEngine>, q: string): string[] {
  return e.browse(q, { limit: 10_000, includeUnacked: true }).messages.map((m) => m.body.toString());
}

describe('declarations', () => {
  it('has the default exchanges', () => {
    const e = memEngine();
    const names = e.listExchanges().map((x) => x.name);
    expect(names).toEqual(expect.arrayContaining(['', 'amq.direct', 'amq.fanout', 'amq.topic', 'amq.headers']));
    expect(() => e.deleteExchange('amq.direct')).toThrow(BrokerError);
    expect(() => e.declareExchange('amq.custom', { type: 'direct' })).toThrow(/reserved/);
    expect(e.declareExchange('amq.topic', { type: 'topic' }).name).toBe('amq.topic');
    e.close();
  });

  it('redeclare with different flags or known args is PRECONDITION_FAILED; unknown args kept', () => {
    const e = memEngine();
    const info = e.declareQueue('q', { arguments: { 'x-message-ttl': 1000, 'x-custom': { a: [1] } } });
    expect(info.arguments).toEqual({ 'x-message-ttl': 1000, 'x-custom': { a: [1] } });
    expect(e.declareQueue('q', { arguments: { 'x-message-ttl': 1000 } }).name).toBe('q');
    const err = (() => {
      try {
        e.declareQueue('q', { arguments: { 'x-message-ttl': 2000 } });
      } catch (x) {
        return x as BrokerError;
      }
      return null;
    })();
    expect(err?.code).toBe('PRECONDITION_FAILED');
    expect(err?.message).toContain('x-message-ttl');
    expect(() => e.declareQueue('q', { durable: false, arguments: { 'x-message-ttl': 1000 } })).toThrow(/durable/);
    expect(() => e.declareExchange('amq.direct', { type: 'fanout' })).toThrow(/type/);
    e.close();
  });

  it('validates known arguments and names the field', () => {
    const e = memEngine();
    const check = (args: Record<string, unknown>, field: string, text: RegExp) => {
      try {
        e.declareQueue('bad', { arguments: args });
        throw new Error('expected failure');
      } catch (x) {
        const err = x as BrokerError;
        expect(err.code).toBe('INVALID_ARGUMENT');
        expect(err.field).toBe(field);
        expect(err.message).toMatch(text);
      }
    };
    check({ 'x-max-length': 'ten' }, 'arguments.x-max-length', /expected a non-negative integer, got "ten"/);
    check({ 'x-message-ttl': -1 }, 'arguments.x-message-ttl', /non-negative/);
    check({ 'x-expires': 0 }, 'arguments.x-expires', /positive/);
    check({ 'x-overflow': 'drop-tail' }, 'arguments.x-overflow', /drop-head/);
    check({ 'x-max-priority': 300 }, 'arguments.x-max-priority', /255/);
    check({ 'x-single-active-consumer': 'yes' }, 'arguments.x-single-active-consumer', /true or false/);
    check({ 'x-dead-letter-routing-key': 'k' }, 'arguments.x-dead-letter-routing-key', /x-dead-letter-exchange/);
    check({ 'x-retry-delays': [1000, 'x'] }, 'arguments.x-retry-delays', /list/);
    expect(e.listQueues().find((q) => q.name === 'bad')).toBeUndefined();
    e.close();
  });

  it('server-named queues, delete ifEmpty/ifUnused, purge', async () => {
    const e = memEngine();
    const q = e.declareQueue('');
    expect(q.name).toMatch(/^amq\.gen-/);
    e.declareQueue('p');
    await publishAll(e, 'p', ['a', 'b', 'c']);
    expect(() => e.deleteQueue('p', { ifEmpty: true })).toThrow(/holds 3/);
    const tag = e.consume('p', { prefetch: 1 }, () => undefined);
    await settle(e);
    expect(() => e.deleteQueue('p', { ifUnused: true })).toThrow(/consumer/);
    expect(e.purgeQueue('p')).toEqual({ messageCount: 2 });
    expect(e.getQueue('p')).toMatchObject({ messages: 1, ready: 0, unacked: 1 });
    e.cancel(tag);
    expect(e.getQueue('p')).toMatchObject({ messages: 1, ready: 1, unacked: 0 });
    expect(e.deleteQueue('p')).toEqual({ messageCount: 1 });
    expect(() => e.getQueue('p')).toThrow(/does not exist/);
    e.close();
  });
});

describe('routing', () => {
  it('direct, fanout, topic, exchange-to-exchange, default exchange', async () => {
    const e = memEngine();
    for (const q of ['q1', 'q2', 'q3']) e.declareQueue(q);
    e.declareExchange('fan', { type: 'fanout' });
    e.declareExchange('top', { type: 'topic' });
    e.declareExchange('dir', { type: 'direct' });
    e.bind({ source: 'fan', destination: 'q1' });
    e.bind({ source: 'fan', destination: 'top', destinationType: 'exchange' });
    e.bind({ source: 'top', destination: 'q2', routingKey: 'order.*' });
    e.bind({ source: 'top', destination: 'q3', routingKey: 'order.#' });
    e.bind({ source: 'dir', destination: 'q3', routingKey: 'x' });
    expect((await e.publish({ exchange: 'fan', routingKey: 'order.created', body: b('1') })).routedQueues.sort()).toEqual(['q1', 'q2', 'q3']);
    expect((await e.publish({ exchange: 'top', routingKey: 'order', body: b('2') })).routedQueues).toEqual(['q3']);
    expect((await e.publish({ exchange: 'dir', routingKey: 'x', body: b('3') })).routedQueues).toEqual(['q3']);
    expect((await e.publish({ exchange: '', routingKey: 'q2', body: b('4') })).routedQueues).toEqual(['q2']);
    expect(e.listBindings().filter((x) => x.source === '').map((x) => x.destination)).toEqual(['q1', 'q2', 'q3']);
    e.unbind({ source: 'top', destination: 'q3', routingKey: 'order.#' });
    expect((await e.publish({ exchange: 'top', routingKey: 'order', body: b('5') })).routedQueues).toEqual([]);
    expect(() => e.bind({ source: '', destination: 'q1', routingKey: 'q1' })).toThrow(/default exchange/);
    await expect(e.publish({ exchange: 'nope', routingKey: '', body: b('x') })).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'exchange' });
    e.close();
  });

  it('mandatory unroutable messages are returned; alternate-exchange catches them', async () => {
    const e = memEngine();
    const returned: string[] = [];
    e.events.on('returned', (r) => returned.push(r.body.toString()));
    e.declareExchange('main', { type: 'direct', arguments: { 'alternate-exchange': 'ae' } });
    e.declareExchange('plain', { type: 'direct' });
    e.declareExchange('ae', { type: 'fanout' });
    e.declareQueue('unrouted');
    e.bind({ source: 'ae', destination: 'unrouted' });
    const r1 = await e.publish({ exchange: 'plain', routingKey: 'nowhere', body: b('lost'), mandatory: true });
    expect(r1).toEqual({ routedQueues: [], returned: true });
    expect(returned).toEqual(['lost']);
    const r2 = await e.publish({ exchange: 'main', routingKey: 'nowhere', body: b('caught'), mandatory: true });
    expect(r2).toEqual({ routedQueues: ['unrouted'], returned: false });
    const r3 = await e.publish({ exchange: 'plain', routingKey: 'nowhere', body: b('dropped') });
    expect(r3.returned).toBe(false);
    expect(bodies(e, 'unrouted')).toEqual(['caught']);
    e.close();
  });

  it('internal exchanges refuse direct publishes; auto-delete exchanges go with their last binding', async () => {
    const e = memEngine();
    e.declareExchange('int', { type: 'fanout', internal: true });
    await expect(e.publish({ exchange: 'int', routingKey: '', body: b('x') })).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
    e.declareExchange('ad', { type: 'fanout', autoDelete: true });
    e.declareQueue('q');
    e.bind({ source: 'ad', destination: 'q' });
    e.unbind({ source: 'ad', destination: 'q' });
    expect(e.listExchanges().some((x) => x.name === 'ad')).toBe(false);
    e.close();
  });
});

describe('publish validation', () => {
  it('rejects bad input without storing anything', async () => {
    const e = memEngine({ maxBodyBytes: 10 });
    e.declareQueue('q');
    await expect(e.publish({ exchange: '', routingKey: 'q', body: b('01234567890') })).rejects.toMatchObject({ code: 'TOO_LARGE', field: 'body' });
    await expect(e.publish({ exchange: '', routingKey: 'q', body: b('x'), properties: { priority: 300 } })).rejects.toMatchObject({ field: 'properties.priority' });
    await expect(e.publish({ exchange: '', routingKey: 'q', body: b('x'), properties: { expiration: '1s' } })).rejects.toMatchObject({ field: 'properties.expiration' });
    await expect(e.publish({ exchange: '', routingKey: 'q', body: 'str' as unknown as Buffer })).rejects.toMatchObject({ field: 'body' });
    expect(e.getQueue('q').messages).toBe(0);
    e.close();
  });

  it('reply-to, correlation-id and headers pass untouched', async () => {
    const e = memEngine();
    e.declareQueue('q');
    const properties = { replyTo: 'amq.rabbitmq.reply-to', correlationId: 'c-1', headers: { n: 1, s: 'x', buf: Buffer.from([1, 2]), big: 2n ** 60n, nested: { a: [true, null] } }, contentType: 'application/json' };
    await e.publish({ exchange: '', routingKey: 'q', body: b('{}'), properties });
    const c = collector();
    e.consume('q', { noAck: true }, c.on);
    await settle(e);
    expect(c.deliveries[0]!.properties).toEqual(properties);
    e.close();
  });

  it('publishMany expands placeholders per copy', async () => {
    const e = memEngine();
    e.declareQueue('q');
    const r = await e.publishMany({ exchange: '', routingKey: 'q', body: b('{"n":{{i}},"id":"{{uuid}}","at":"{{now}}"}'), properties: { headers: { seq: 'h-{{i}}' } }, count: 5 });
    expect(r).toMatchObject({ published: 5, routed: { q: 5 }, returned: 0, rejected: 0, deduplicated: 0, confirmed: true });
    const msgs = e.browse('q', { limit: 10 }).messages;
    expect(msgs.map((m) => JSON.parse(m.body.toString()).n)).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(msgs.map((m) => JSON.parse(m.body.toString()).id)).size).toBe(5);
    expect(msgs.map((m) => m.properties.headers?.seq)).toEqual(['h-1', 'h-2', 'h-3', 'h-4', 'h-5']);
    expect(Number.isNaN(Date.parse(JSON.parse(msgs[0]!.body.toString()).at))).toBe(false);
    const ret = await e.publishMany({ exchange: 'amq.direct', routingKey: 'none', body: b('x'), mandatory: true, count: 3 });
    expect(ret.returned).toBe(3);
    e.close();
  });

  it('publishMany gives each copy its own message-id and correlation-id from placeholders', async () => {
    const e = memEngine();
    e.declareQueue('q');
    await e.publishMany({ exchange: '', routingKey: 'q', body: b('x'), properties: { messageId: 'order-{{i}}', correlationId: 'c-{{i}}', replyTo: 'r-{{i}}' }, count: 3 });
    const msgs = e.browse('q', { limit: 10 }).messages;
    expect(msgs.map((m) => m.properties.messageId)).toEqual(['order-1', 'order-2', 'order-3']);
    expect(msgs.map((m) => m.properties.correlationId)).toEqual(['c-1', 'c-2', 'c-3']);
    // reply-to is an address and travels untouched.
    expect(msgs.map((m) => m.properties.replyTo)).toEqual(['r-{{i}}', 'r-{{i}}', 'r-{{i}}']);
    e.close();
  });
});

describe('consuming', () => {
  it('delivers FIFO and acks remove', async () => {
    const e = memEngine();
    e.declareQueue('q');
    await publishAll(e, 'q', ['1', '2', '3', '4']);
    const c = collector();
    e.consume('q', { prefetch: 0 }, (d) => {
      c.on(d);
      e.ack(d.deliveryTag);
    });
    await settle(e);
    expect(c.bodies()).toEqual(['1', '2', '3', '4']);
    expect(c.deliveries.every((d) => !d.redelivered && d.deliveryCount === 1)).toBe(true);
    expect(e.getQueue('q')).toMatchObject({ messages: 0, bytes: 0 });
    e.close();
  });

  it('priorities: higher first, FIFO within a priority', async () => {
    const e = memEngine();
    e.declareQueue('pq', { arguments: { 'x-max-priority': 5 } });
    const items: Array<[string, number | undefined]> = [['a', 1], ['b', undefined], ['c', 5], ['d', 1], ['e', 9], ['f', 5], ['g', 0]];
    for (const [body, priority] of items) await e.publish({ exchange: '', routingKey: 'pq', body: b(body), properties: priority === undefined ? {} : { priority } });
    const c = collector();
    e.consume('pq', { noAck: true }, c.on);
    await settle(e);
    // 9 is capped to the max (5) and keeps its arrival order among the 5s.
    expect(c.bodies()).toEqual(['c', 'e', 'f', 'a', 'd', 'b', 'g']);
    e.close();
  });

  it('priority order holds for random inputs', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 1, maxLength: 40 }), async (prios) => {
        const e = memEngine();
        e.declareQueue('pq', { arguments: { 'x-max-priority': 10 } });
        for (let i = 0; i < prios.length; i++) await e.publish({ exchange: '', routingKey: 'pq', body: b(String(i)), properties: { priority: prios[i]! } });
        const got = await e.get('pq', { count: prios.length, ackMode: 'ack' });
        const expected = prios.map((p, i) => ({ p: Math.min(p, 10), i })).sort((x, y) => y.p - x.p || x.i - y.i).map((x) => String(x.i));
        expect(got.map((m) => m.body.toString())).toEqual(expected);
        e.close();
      }),
      { numRuns: 40 },
    );
  });

  it('nack with requeue puts the message back in its original place, marked redelivered', async () => {
    const e = memEngine();
    e.declareQueue('q');
    await publishAll(e, 'q', ['1', '2', '3', '4', '5']);
    const seen: Delivery[] = [];
    e.consume('q', { prefetch: 2 }, (d) => seen.push(d));
    await settle(e);
    expect(seen.map((d) => d.body.toString())).toEqual(['1', '2']);
    e.nack(seen[1]!.deliveryTag, { requeue: true });
    e.ack(seen[0]!.deliveryTag);
    await settle(e);
    // "2" is back ahead of 3, 4, 5.
    expect(seen.slice(2).map((d) => [d.body.toString(), d.redelivered, d.deliveryCount])).toEqual([
      ['2', true, 2],
      ['3', false, 1],
    ]);
    e.close();
  });

  it('requeue keeps position: property over random ack/nack sequences', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.boolean(), { minLength: 1, maxLength: 30 }), async (decisions) => {
        const e = memEngine();
        e.declareQueue('q');
        const n = decisions.length;
        await publishAll(e, 'q', Array.from({ length: n }, (_, i) => String(i)));
        // Take everything unacked, then requeue the chosen ones in random order.
        const ds: Delivery[] = [];
        const tag = e.consume('q', { prefetch: 0 }, (d) => ds.push(d));
        await settle(e);
        e.cancel(tag);
        // cancel requeued all: the queue order is the original order again.
        expect(bodies(e, 'q')).toEqual(Array.from({ length: n }, (_, i) => String(i)));
        const ds2: Delivery[] = [];
        e.consume('q', { prefetch: 0 }, (d) => ds2.push(d));
        await settle(e);
        decisions.forEach((requeue, i) => (requeue ? e.nack(ds2[i]!.deliveryTag, { requeue: true }) : e.ack(ds2[i]!.deliveryTag)));
        await settle(e);
        const kept = decisions.map((r, i) => (r ? String(i) : null)).filter((x): x is string => x !== null);
        // Redeliveries arrive in original order.
        expect(ds2.slice(n).map((d) => d.body.toString())).toEqual(kept);
        e.close();
      }),
      { numRuns: 30 },
    );
  });

  it('prefetch caps unacked deliveries per consumer', async () => {
    const e = memEngine();
    e.declareQueue('q');
    await publishAll(e, 'q', Array.from({ length: 10 }, (_, i) => String(i)));
    const c = collector();
    e.consume('q', { prefetch: 3 }, c.on);
    await settle(e);
    expect(c.deliveries.length).toBe(3);
    expect(e.getQueue('q')).toMatchObject({ ready: 7, unacked: 3 });
    e.ack(c.deliveries[1]!.deliveryTag, { multiple: true });
    await settle(e);
    expect(c.deliveries.length).toBe(5);
    expect(() => e.ack(c.deliveries[0]!.deliveryTag)).toThrow(/unknown delivery tag/);
    e.close();
  });

  it('competing consumers: round-robin, each message exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 60 }), fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 4 }), async (n, prefetches) => {
        const e = memEngine();
        e.declareQueue('q');
        const got = new Map<string, number>();
        const per = prefetches.map(() => 0);
        prefetches.forEach((prefetch, i) =>
          e.consume('q', { prefetch }, (d) => {
            got.set(d.body.toString(), (got.get(d.body.toString()) ?? 0) + 1);
            per[i]!++;
            // Ack asynchronously so prefetch windows matter.
            setImmediate(() => e.ack(d.deliveryTag));
          }),
        );
        await publishAll(e, 'q', Array.from({ length: n }, (_, i) => String(i)));
        await waitFor(() => got.size === n);
        await settle(e);
        expect([...got.values()].every((v) => v === 1)).toBe(true);
        expect(e.getQueue('q').messages).toBe(0);
        e.close();
      }),
      { numRuns: 25 },
    );
  });

  it('round-robin spreads evenly', async () => {
    const e = memEngine();
    e.declareQueue('q');
    const a = collector();
    const c2 = collector();
    e.consume('q', { prefetch: 0, noAck: true }, a.on);
    e.consume('q', { prefetch: 0, noAck: true }, c2.on);
    await publishAll(e, 'q', Array.from({ length: 10 }, (_, i) => String(i)));
    await settle(e);
    expect(a.bodies()).toEqual(['0', '2', '4', '6', '8']);
    expect(c2.bodies()).toEqual(['1', '3', '5', '7', '9']);
    e.close();
  });

  it('cancel returns unacked messages; closeOwner too; exclusive consumers and queues', async () => {
    const e = memEngine();
    e.declareQueue('q');
    await publishAll(e, 'q', ['a', 'b']);
    const c = collector();
    e.consume('q', { prefetch: 0, owner: 'conn-1' }, c.on);
    await settle(e);
    expect(e.getQueue('q').unacked).toBe(2);
    e.closeOwner('conn-1');
    expect(e.getQueue('q')).toMatchObject({ ready: 2, unacked: 0, consumers: 0 });
    const m = e.browse('q', { limit: 10 }).messages;
    expect(m.map((x) => [x.body.toString(), x.redelivered])).toEqual([
      ['a', true],
      ['b', true],
    ]);
    e.consume('q', { exclusive: true }, () => undefined);
    expect(() => e.consume('q', {}, () => undefined)).toThrow(BrokerError);
    e.declareQueue('ex', { exclusive: true, owner: 'conn-2' });
    expect(() => e.consume('ex', { owner: 'conn-3' }, () => undefined)).toThrow(/exclusive/);
    expect(() => e.declareQueue('ex', { exclusive: true, owner: 'conn-3' })).toThrow(expect.objectContaining({ code: 'RESOURCE_LOCKED' }));
    e.closeOwner('conn-2');
    expect(() => e.getQueue('ex')).toThrow(/does not exist/);
    e.close();
  });

  it('auto-delete queue goes when its last consumer is cancelled', async () => {
    const e = memEngine();
    e.declareQueue('ad', { autoDelete: true });
    const t = e.consume('ad', {}, () => undefined);
    e.cancel(t);
    expect(e.listQueues().some((q) => q.name === 'ad')).toBe(false);
    e.close();
  });

  it('single active consumer: only the first gets messages until it leaves', async () => {
    const e = memEngine();
    e.declareQueue('sac', { arguments: { 'x-single-active-consumer': true } });
    const a = collector();
    const c2 = collector();
    const ta = e.consume('sac', { prefetch: 1 }, a.on);
    e.consume('sac', { prefetch: 1 }, c2.on);
    await publishAll(e, 'sac', ['1', '2', '3']);
    await settle(e);
    expect(a.bodies()).toEqual(['1']);
    expect(c2.bodies()).toEqual([]);
    e.cancel(ta);
    await settle(e);
    expect(c2.bodies()).toEqual(['1']);
    expect(c2.deliveries[0]!.redelivered).toBe(true);
    e.close();
  });

  it('get: ack, requeue (original place, redelivered) and reject', async () => {
    const e = memEngine();
    e.declareExchange('dlx', { type: 'fanout' });
    e.declareQueue('dlq');
    e.bind({ source: 'dlx', destination: 'dlq' });
    e.declareQueue('q', { arguments: { 'x-dead-letter-exchange': 'dlx' } });
    await publishAll(e, 'q', ['1', '2', '3', '4']);
    const g1 = await e.get('q', { count: 2, ackMode: 'requeue' });
    expect(g1.map((m) => [m.body.toString(), m.redelivered])).toEqual([
      ['1', false],
      ['2', false],
    ]);
    const g2 = await e.get('q', { count: 1, ackMode: 'ack' });
    expect(g2.map((m) => [m.body.toString(), m.redelivered, m.deliveryCount])).toEqual([['1', true, 2]]);
    const g3 = await e.get('q', { count: 1, ackMode: 'reject' });
    expect(g3[0]!.body.toString()).toBe('2');
    expect(bodies(e, 'q')).toEqual(['3', '4']);
    expect(bodies(e, 'dlq')).toEqual(['2']);
    const dl = e.browse('dlq', { limit: 1 }).messages[0]!;
    expect((dl.properties.headers?.['x-death'] as Array<Record<string, unknown>>)[0]).toMatchObject({ reason: 'rejected', queue: 'q', count: 1 });
    expect(await e.get('q', { count: 10, ackMode: 'ack' })).toHaveLength(2);
    expect(await e.get('q', { count: 1, ackMode: 'ack' })).toEqual([]);
    e.close();
  });

  it('noAck deliveries leave the queue at once', async () => {
    const e = memEngine();
    e.declareQueue('q');
    await publishAll(e, 'q', ['a', 'b', 'c']);
    const c = collector();
    e.consume('q', { noAck: true }, c.on);
    await settle(e);
    expect(c.bodies()).toEqual(['a', 'b', 'c']);
    expect(e.getQueue('q')).toMatchObject({ messages: 0, unacked: 0 });
    e.close();
  });
});
