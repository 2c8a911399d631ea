/**
 * Dead letters on a real Redis, through the core: pending entries delivered
 * too often (made by a real consumer reading and claiming), dead-letter
 * streams whose entries name their origin, and processing lists; each
 * re-driven exactly once (checked with XRANGE, XPENDING, LRANGE), with cancel,
 * rate limit and the audit row.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessageView } from '../../../src-main/contract/types.js';
import { useRedisServer } from '../../redis/servers.js';
import { rawClient, redisCore, settled, unique, type RedisCore } from './helpers.js';

const server = useRedisServer();
let rc: RedisCore;
let redis: Redis;

beforeAll(async () => {
  if (!server.server) return;
  rc = await redisCore(server.server.url, { deadLetterAfterDeliveries: 3, deadLetterDeliveries: { strict: 2 }, deadLetterPattern: '{stream}-failed' });
  redis = rawClient(server.server.url) as Redis;
});
afterAll(async () => {
  await rc?.close();
  redis?.disconnect();
});

const call = ((op: string, input: Record<string, unknown>) => rc.core.callUnchecked(op, { connectionId: rc.connectionId, ...input })) as <T = any>(op: string, input: Record<string, unknown>) => Promise<T>;

/** A stream with `n` entries and a group whose consumer read them all once and then claimed the first `dead` twice more. */
async function deliveredTooOften(stream: string, group: string, n: number, dead: number, deliveries = 3): Promise<string[]> {
  const ids: string[] = [];
  for (let k = 0; k < n; k++) ids.push(await redis.xadd(stream, '*', 'value', JSON.stringify({ order: k }), 'customer', `c-${k}`) as string);
  await redis.xgroup('CREATE', stream, group, '0');
  await redis.xreadgroup('GROUP', group, 'worker-a', 'COUNT', n, 'STREAMS', stream, '>');
  // Each XCLAIM is a redelivery: the consumer failed and another picked the entry up again.
  for (let d = 1; d < deliveries; d++) await redis.xclaim(stream, group, d % 2 ? 'worker-b' : 'worker-a', 0, ...ids.slice(0, dead));
  return ids;
}

async function pendingIds(stream: string, group: string): Promise<string[]> {
  return ((await redis.xpending(stream, group, '-', '+', 1_000)) as Array<[string, string, number, number]>).map(([id]) => id);
}

describe('pending entries delivered too often', () => {
  it('are listed, browsed with their delivery counts, and re-driven exactly once', async (ctx) => {
    server.require(ctx);
    const stream = unique('orders');
    const ids = await deliveredTooOften(stream, 'billing', 6, 2);
    const source = `${stream}#billing`;
    await expect.poll(async () => (await call<any[]>('deadletters/list', {})).find((d) => d.queue === source)).toEqual({ queue: source, count: 2, sources: [stream] });
    expect(await call('queues/get', { queue: source })).toMatchObject({ messages: 2, deadLetterFor: [stream], arguments: { type: 'pending', deadLetterAfterDeliveries: 3 } });
    const page = await call<any>('queues/messages', { queue: source, limit: 50 });
    expect(page.messages.map((m: MessageView) => [m.id, m.deliveryCount, m.body, m.consumerTag])).toEqual([
      [ids[0], 3, '{"order":0}', 'worker-a'],
      [ids[1], 3, '{"order":1}', 'worker-a'],
    ]);
    expect(page.messages[0].properties.headers).toEqual({
      customer: 'c-0',
      // Why and where it died, as the Dead letters view reads it.
      'x-death': [{ reason: expect.stringContaining('delivered 3 times to group billing'), queue: stream, count: 3, time: Number(ids[0]!.split('-')[0]), exchange: '', 'routing-keys': [stream] }],
    });

    const lengthBefore = await redis.xlen(stream);
    const { id } = await call<{ id: string }>('redrives/start', { source, messageIds: [ids[0]] });
    expect(await settled(rc.core, id)).toMatchObject({ state: 'completed', moved: 1, failed: 0, source, target: stream });
    expect(await pendingIds(stream, 'billing')).toEqual(ids.slice(1));
    const [copy] = await redis.xrevrange(stream, '+', '-', 'COUNT', 1);
    expect(copy![1]).toEqual(['value', '{"order":0}', 'customer', 'c-0']);
    expect(await redis.xlen(stream)).toBe(lengthBefore + 1);

    // The same entry again: it is no longer pending, so nothing is copied twice (asked for one, moved none, none failed).
    const again = await call<{ id: string }>('redrives/start', { source, messageIds: [ids[0]] });
    expect(await settled(rc.core, again.id)).toMatchObject({ state: 'completed', total: 1, moved: 0, failed: 0 });
    expect(await redis.xlen(stream)).toBe(lengthBefore + 1);

    // The rest of what is dead (one entry; the four read once are not dead).
    const all = await call<{ id: string }>('redrives/start', { source, all: true });
    expect(await settled(rc.core, all.id)).toMatchObject({ state: 'completed', moved: 1 });
    expect(await pendingIds(stream, 'billing')).toEqual(ids.slice(2));
    expect(await redis.xlen(stream)).toBe(lengthBefore + 2);
    // The copies are new entries, delivered to the group again.
    const redelivered = (await redis.xreadgroup('GROUP', 'billing', 'worker-c', 'COUNT', 10, 'STREAMS', stream, '>')) as Array<[string, Array<[string, string[]]>]>;
    expect(redelivered[0]![1].map(([, f]) => f[1])).toEqual(['{"order":0}', '{"order":1}']);

    const audit = await call<any[]>('audit/list', { limit: 10 });
    expect(audit.filter((a) => a.source === source).map((a) => [a.action, a.count, a.state])).toEqual(
      expect.arrayContaining([
        ['redrive', 1, 'completed'],
        ['redrive', 0, 'completed'],
      ]),
    );
  });

  it('can be claimed by another consumer (XCLAIM), each claim a delivery', async (ctx) => {
    server.require(ctx);
    const stream = unique('claim');
    const ids = await deliveredTooOften(stream, 'g', 3, 1, 2);
    await redis.xack(stream, 'g', ids[2]!);
    const groupId = `${stream}#g`;
    // Delivered a moment ago: an idle time of an hour leaves it alone.
    expect(await call('groups/claim', { groupId, consumer: 'rescuer', ids: [ids[0]], minIdleMs: 3_600_000 })).toEqual({ claimed: [], notClaimed: [ids[0]] });
    expect(await call('groups/claim', { groupId, consumer: 'rescuer', ids: [ids[0], ids[2]] })).toEqual({ claimed: [ids[0]], notClaimed: [ids[2]] });
    const [entry] = (await redis.xpending(stream, 'g', ids[0]!, ids[0]!, 1)) as Array<[string, string, number, number]>;
    expect([entry![1], entry![3]]).toEqual(['rescuer', 3]);
    // Now delivered three times: a dead letter.
    expect(await call('queues/get', { queue: groupId })).toMatchObject({ messages: 1 });
    await expect(call('groups/claim', { groupId, consumer: 'x', ids: ['nope'] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'ids.0' });
  });

  it('take a group\'s own threshold and re-drive to another stream when asked', async (ctx) => {
    server.require(ctx);
    const stream = unique('strict');
    const target = unique('retry');
    const ids = await deliveredTooOften(stream, 'strict', 3, 1, 2);
    expect(await call('queues/get', { queue: `${stream}#strict` })).toMatchObject({ messages: 1, arguments: { deadLetterAfterDeliveries: 2 } });
    const { id } = await call<{ id: string }>('redrives/start', { source: `${stream}#strict`, all: true, target: { exchange: '', routingKey: target } });
    expect(await settled(rc.core, id)).toMatchObject({ state: 'completed', moved: 1, target });
    expect((await redis.xrange(target, '-', '+')).map(([, f]) => f)).toEqual([['value', '{"order":0}', 'customer', 'c-0']]);
    expect(await pendingIds(stream, 'strict')).toEqual(ids.slice(1));
  });
});

describe('dead-letter streams', () => {
  it('are found by name, show their origin, and go back to it exactly once without the dead-letter fields', async (ctx) => {
    server.require(ctx);
    const origin = unique('payments');
    await redis.xadd(origin, '*', 'value', 'ok');
    for (const dlq of [`${origin}:dlq`, `${origin}-failed`]) {
      for (let k = 0; k < 3; k++) await redis.xadd(dlq, '*', 'origin-stream', origin, 'origin-id', `1-${k}`, 'reason', 'timeout', 'value', `${dlq}-${k}`);
    }
    const list = await call<any[]>('deadletters/list', {});
    expect(list).toEqual(expect.arrayContaining([{ queue: `${origin}:dlq`, count: 3, sources: [origin] }, { queue: `${origin}-failed`, count: 3, sources: [origin] }]));
    const page = await call<any>('queues/messages', { queue: `${origin}:dlq`, limit: 2 });
    expect(page.messages.map((m: MessageView) => m.body)).toEqual([`${origin}:dlq-0`, `${origin}:dlq-1`]);
    expect(page.messages[0].properties.headers).toMatchObject({ 'origin-stream': origin, reason: 'timeout', 'x-death': [{ reason: 'timeout', queue: origin, count: 1 }] });
    const second = await call<any>('queues/messages', { queue: `${origin}:dlq`, limit: 2, position: 2 });
    expect(second.messages.map((m: MessageView) => m.body)).toEqual([`${origin}:dlq-2`]);

    const { id } = await call<{ id: string }>('redrives/start', { source: `${origin}:dlq`, all: true });
    expect(await settled(rc.core, id)).toMatchObject({ state: 'completed', moved: 3, failed: 0 });
    expect(await redis.xlen(`${origin}:dlq`)).toBe(0);
    expect((await redis.xrange(origin, '-', '+')).map(([, f]) => f)).toEqual([['value', 'ok'], ...[0, 1, 2].map((k) => ['value', `${origin}:dlq-${k}`])]);

    // One chosen entry of the other, by filter: only it moves.
    const byFilter = await call<{ id: string }>('redrives/start', { source: `${origin}-failed`, all: true, filter: { q: 'failed-1' } });
    expect(await settled(rc.core, byFilter.id)).toMatchObject({ state: 'completed', moved: 1 });
    expect((await redis.xrange(`${origin}-failed`, '-', '+')).map(([, f]) => f[7])).toEqual([`${origin}-failed-0`, `${origin}-failed-2`]);
    expect(await redis.xlen(origin)).toBe(5);
  });

  it('a cancelled, rate-limited re-drive loses and doubles nothing', async (ctx) => {
    server.require(ctx);
    const origin = unique('bulk');
    const dlq = `dlq:${origin}`;
    const p = redis.pipeline();
    for (let k = 0; k < 2_000; k++) p.xadd(dlq, '*', 'value', String(k));
    await p.exec();
    const { id } = await call<{ id: string }>('redrives/start', { source: dlq, all: true, ratePerSecond: 200 });
    await expect.poll(async () => (await call<any>('redrives/get', { id })).moved, { interval: 20 }).toBeGreaterThan(0);
    const cancelled = await call<any>('redrives/cancel', { id });
    expect(cancelled.state).toBe('cancelled');
    const moved = await redis.xlen(origin);
    expect(cancelled.moved).toBe(moved);
    expect(moved).toBeLessThan(2_000);
    expect(moved + (await redis.xlen(dlq))).toBe(2_000);
    const left = new Set((await redis.xrange(dlq, '-', '+')).map(([, f]) => f[1]));
    const there = (await redis.xrange(origin, '-', '+')).map(([, f]) => f[1]!);
    expect(there.filter((v) => left.has(v))).toEqual([]);
    expect(new Set(there).size).toBe(there.length);
  });

  it('purges: a dead-letter stream trimmed to nothing, a group\'s dead pending entries acknowledged', async (ctx) => {
    server.require(ctx);
    const stream = unique('purge');
    const ids = await deliveredTooOften(stream, 'g', 4, 2);
    await redis.xadd(`${stream}:dlq`, '*', 'value', 'x');
    await redis.xadd(`${stream}:dlq`, '*', 'value', 'y');
    expect(await call('queues/purge', { queue: `${stream}:dlq` })).toEqual({ messageCount: 2 });
    expect(await redis.xlen(`${stream}:dlq`)).toBe(0);
    expect(await call('queues/purge', { queue: `${stream}#g` })).toEqual({ messageCount: 2 });
    expect(await pendingIds(stream, 'g')).toEqual(ids.slice(2));
    expect(await redis.xlen(stream)).toBe(4);
    await expect(call('queues/purge', { queue: stream })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'queue' });
  });

  it('refuses what it cannot do, naming the field', async (ctx) => {
    server.require(ctx);
    const lone = unique('lonely');
    await redis.xadd(lone, '*', 'value', 'x');
    await expect(call('redrives/start', { source: unique('nothing'), all: true })).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'source' });
    await expect(call('redrives/start', { source: lone, all: true, target: { exchange: 'x', routingKey: 'y' } })).rejects.toMatchObject({ field: 'target.exchange' });
    await redis.set(`${lone}-string`, 'v');
    await expect(call('redrives/start', { source: lone, all: true, target: { exchange: '', routingKey: `${lone}-string` } })).rejects.toMatchObject({ field: 'target.routingKey' });
    // A stream whose entries name no origin, and whose name names none: each entry fails, none is lost.
    const { id } = await call<{ id: string }>('redrives/start', { source: lone, all: true });
    expect(await settled(rc.core, id)).toMatchObject({ state: 'completed', moved: 0, failed: 1, error: expect.stringContaining('give a target') });
    expect(await redis.xlen(lone)).toBe(1);
  });
});

describe('without Lua scripts', () => {
  it('re-drives with MULTI/EXEC where the ACL refuses scripts, still exactly once', async (ctx) => {
    const s = server.require(ctx);
    const user = unique('noscript');
    await redis.call('ACL', 'SETUSER', user, 'on', '>pw-1', '~*', '&*', '+@all', '-@scripting');
    const limited = await redisCore(s.url.replace('redis://', `redis://${user}:pw-1@`), { deadLetterAfterDeliveries: 3 });
    try {
      const stream = unique('noscript');
      const ids = await deliveredTooOften(stream, 'g', 4, 2);
      const before = await redis.xlen(stream);
      const { id } = await limited.core.call('redrives/start', { connectionId: limited.connectionId, source: `${stream}#g`, all: true });
      expect(await settled(limited.core, id)).toMatchObject({ state: 'completed', moved: 2, failed: 0 });
      expect(await redis.xlen(stream)).toBe(before + 2);
      expect(await pendingIds(stream, 'g')).toEqual(ids.slice(2));
      const list = unique('nsl');
      await redis.rpush(`${list}:processing`, 'a', 'b', 'c');
      const page = await limited.core.call('queues/messages', { connectionId: limited.connectionId, queue: `${list}:processing` });
      const one = await limited.core.call('redrives/start', { connectionId: limited.connectionId, source: `${list}:processing`, messageIds: [page.messages[0]!.id] });
      expect(await settled(limited.core, one.id)).toMatchObject({ state: 'completed', moved: 1 });
      expect(await redis.lrange(`${list}:processing`, 0, -1)).toEqual(['a', 'b']);
      expect(await redis.lrange(list, 0, -1)).toEqual(['c']);
      // Lag and ordinals are found without scripts too.
      const g = await limited.core.call('groups/get', { connectionId: limited.connectionId, groupId: `${stream}#g` });
      expect(g.totalLag).toBe(2);
      const at = await limited.core.call('topics/messages', { connectionId: limited.connectionId, topic: stream, offset: 3, limit: 1 });
      expect(at.messages.map((m) => m.position)).toEqual([ids[3]]);
    } finally {
      await limited.close();
      await redis.call('ACL', 'DELUSER', user);
    }
  });
});

describe('lists used as queues', () => {
  it('browses from the head without popping, filters, publishes with LPUSH, and re-drives a processing list', async (ctx) => {
    server.require(ctx);
    const list = unique('jobs');
    const processing = `${list}:processing`;
    await call('publish', { routingKey: list, body: '{"job":{{i}}}', count: 10 });
    expect(await redis.llen(list)).toBe(10);
    // A real worker takes three into its processing list and dies.
    for (let k = 0; k < 3; k++) await redis.lmove(list, processing, 'RIGHT', 'LEFT');
    const head = await call<any>('queues/messages', { queue: list, limit: 3 });
    expect(head.messages.map((m: MessageView) => [m.position, m.body])).toEqual([
      [0, '{"job":4}'],
      [1, '{"job":5}'],
      [2, '{"job":6}'],
    ]);
    expect(head.total).toBe(7);
    const later = await call<any>('queues/messages', { queue: list, limit: 3, position: 5 });
    expect(later.messages.map((m: MessageView) => m.body)).toEqual(['{"job":9}', '{"job":10}']);
    const filtered = await call<any>('queues/messages', { queue: list, jsonPath: '$.job', jsonEquals: '8' });
    expect(filtered).toMatchObject({ matched: 1, scanned: 7 });
    expect(await redis.llen(list)).toBe(7);

    const queues = await call<any[]>('queues/list', {});
    expect(queues.find((q) => q.name === processing)).toMatchObject({ messages: 3, deadLetterFor: [list] });
    expect(await call<any[]>('deadletters/list', {})).toEqual(expect.arrayContaining([{ queue: processing, count: 3, sources: [list] }]));
    // Each list's length is sampled into the history the backlog chart reads.
    await expect.poll(async () => (await call<any>('metrics/history', { kind: 'queue', name: list })).samples.some((x: any) => x.messages === 7 && x.ready === 7)).toBe(true);

    // One chosen element first, then the rest.
    const dead = await call<any>('queues/messages', { queue: processing });
    expect(dead.messages.map((m: MessageView) => m.body)).toEqual(['{"job":1}', '{"job":2}', '{"job":3}']);
    const one = await call<{ id: string }>('redrives/start', { source: processing, messageIds: [dead.messages[1].id] });
    expect(await settled(rc.core, one.id)).toMatchObject({ state: 'completed', moved: 1 });
    expect(await redis.lrange(processing, 0, -1)).toEqual(['{"job":3}', '{"job":1}']);
    const rest = await call<{ id: string }>('redrives/start', { source: processing, all: true });
    expect(await settled(rc.core, rest.id)).toMatchObject({ state: 'completed', moved: 2 });
    expect(await redis.exists(processing)).toBe(0);
    const back = await redis.lrange(list, 0, -1);
    expect(back.length).toBe(10);
    expect([...back].sort()).toEqual(Array.from({ length: 10 }, (_, k) => `{"job":${k + 1}}`).sort());
  });

  it('a read-only connection browses but refuses to re-drive or publish', async (ctx) => {
    const s = server.require(ctx);
    const ro = await redisCore(s.url, { readOnly: true });
    try {
      const list = unique('ro');
      await redis.lpush(`${list}:processing`, 'a');
      expect((await ro.core.call('queues/messages', { connectionId: ro.connectionId, queue: `${list}:processing` })).messages).toHaveLength(1);
      await expect(ro.core.call('redrives/start', { connectionId: ro.connectionId, source: `${list}:processing`, all: true })).rejects.toMatchObject({ code: 'FORBIDDEN' });
      await expect(ro.core.call('publish', { connectionId: ro.connectionId, routingKey: list, body: 'x' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    } finally {
      await ro.close();
    }
  });
});
