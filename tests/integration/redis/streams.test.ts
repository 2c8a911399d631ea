/**
 * Streams through the core against a real Redis: listing by SCAN, browsing by
 * cursor, ordinal, id and time without consuming anything, the shared filters,
 * publishing with ids and trimming, consumer groups and their lag left by a
 * real ioredis consumer, live tail, and Pub/Sub channels.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordView } from '../../../src-main/contract/types.js';
import { useRedisServer } from '../../redis/servers.js';
import { rawClient, redisCore, unique, type RedisCore } from './helpers.js';

const server = useRedisServer();
let rc: RedisCore;
let redis: Redis;

beforeAll(async () => {
  if (!server.server) return;
  rc = await redisCore(server.server.url);
  redis = rawClient(server.server.url) as Redis;
});
afterAll(async () => {
  await rc?.close();
  redis?.disconnect();
});

const call = ((op: string, input: Record<string, unknown>) => rc.core.callUnchecked(op, { connectionId: rc.connectionId, ...input })) as <T = any>(op: string, input: Record<string, unknown>) => Promise<T>;

/** Adds `n` entries `{ value: {"i":k}, kind }` with ids 1000+k ms, 1,000 per pipeline. */
async function fill(stream: string, n: number): Promise<void> {
  for (let start = 0; start < n; start += 1_000) {
    const p = redis.pipeline();
    for (let k = start; k < Math.min(n, start + 1_000); k++) p.xadd(stream, `${1_000 + k}-0`, 'value', JSON.stringify({ i: k }), 'kind', k % 2 === 0 ? 'even' : 'odd');
    await p.exec();
  }
}

describe('streams as topics', () => {
  it('lists every stream found by SCAN … TYPE with its length, ids and groups', async (ctx) => {
    server.require(ctx);
    const stream = unique('list');
    await fill(stream, 3);
    await redis.xgroup('CREATE', stream, 'g1', '0');
    await redis.set(unique('not-a-stream'), 'x');
    const topics = await call<any[]>('topics/list', {});
    const t = topics.find((x) => x.name === stream);
    expect(t).toMatchObject({ messages: 3, partitions: [{ partition: 0, startOffset: 0, endOffset: 3 }], config: { 'first-entry-id': '1000-0', 'last-entry-id': '1002-0', groups: 1 } });
    expect(topics.every((x) => x.config.type === 'stream' || x.config.type === 'pubsub')).toBe(true);
    await expect(call('topics/get', { topic: unique('missing') })).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'topic' });
  });

  it('pages through 2,500 entries by cursor, in order, none twice, and moves nothing', async (ctx) => {
    server.require(ctx);
    const stream = unique('paging');
    await fill(stream, 2_500);
    await redis.xgroup('CREATE', stream, 'workers', '0');
    await redis.xreadgroup('GROUP', 'workers', 'c1', 'COUNT', 10, 'STREAMS', stream, '>');
    const before = { len: await redis.xlen(stream), pending: await redis.xpending(stream, 'workers'), groups: await redis.xinfo('GROUPS', stream) };
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: any = await call('topics/messages', { topic: stream, limit: 700, ...(cursor ? { cursor } : {}) });
      seen.push(...page.messages.map((m: RecordView) => m.position));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(4);
    expect(seen).toEqual(Array.from({ length: 2_500 }, (_, k) => `${1_000 + k}-0`));
    expect({ len: await redis.xlen(stream), pending: await redis.xpending(stream, 'workers'), groups: await redis.xinfo('GROUPS', stream) }).toEqual(before);
  });

  it('starts at an ordinal, an entry id, a time, or the latest entries', async (ctx) => {
    server.require(ctx);
    const stream = unique('starts');
    await fill(stream, 1_500);
    const at = async (input: Record<string, unknown>) => (await call<any>('topics/messages', { topic: stream, limit: 3, ...input })).messages as RecordView[];
    expect((await at({ offset: 1_234 })).map((m) => [m.offset, m.position])).toEqual([
      [1_234, '2234-0'],
      [1_235, '2235-0'],
      [1_236, '2236-0'],
    ]);
    expect((await at({ offset: 17 })).map((m) => m.position)).toEqual(['1017-0', '1018-0', '1019-0']);
    expect((await at({ offset: 1_499 })).map((m) => m.position)).toEqual(['2499-0']);
    expect(await at({ offset: 1_500 })).toEqual([]);
    expect((await at({ position: '1500-0' })).map((m) => m.position)).toEqual(['1500-0', '1501-0', '1502-0']);
    expect((await at({ timestamp: 2_000 })).map((m) => [m.position, m.timestamp])).toEqual([
      ['2000-0', 2_000],
      ['2001-0', 2_001],
      ['2002-0', 2_002],
    ]);
    expect((await at({ seek: 'latest' })).map((m) => m.position)).toEqual(['2497-0', '2498-0', '2499-0']);
    await expect(at({ position: 'nope' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'position' });
    await expect(at({ partition: 1 })).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'partition' });
  });

  it('shows a value field as the value and the other fields as headers; other entries as a JSON object', async (ctx) => {
    server.require(ctx);
    const stream = unique('shape');
    await redis.xadd(stream, '*', 'value', '{"order":7}', 'key', 'o-7', 'trace', 'abc');
    await redis.xadd(stream, '*', 'name', 'ann', 'age', '41');
    await redis.xadd(stream, '*', 'data', Buffer.from([0xff, 0x00, 0x01]));
    const [a, b, c] = (await call<any>('topics/messages', { topic: stream })).messages as RecordView[];
    expect(a).toMatchObject({ value: '{"order":7}', valueEncoding: 'utf8', key: 'o-7', headers: { key: 'o-7', trace: 'abc' } });
    expect(JSON.parse(b!.value!)).toEqual({ name: 'ann', age: '41' });
    expect(b!.headers).toEqual({});
    expect(c).toMatchObject({ value: Buffer.from([0xff, 0x00, 0x01]).toString('base64'), valueEncoding: 'base64' });
  });

  it('filters by body text, JSON path, header, key and time, counting what it scanned', async (ctx) => {
    server.require(ctx);
    const stream = unique('filters');
    await fill(stream, 300);
    const page = async (f: Record<string, unknown>) => call<any>('topics/messages', { topic: stream, limit: 1_000, ...f });
    const q = await page({ q: '"i":29' });
    expect(q.messages.map((m: RecordView) => JSON.parse(m.value!).i)).toEqual([29, 290, 291, 292, 293, 294, 295, 296, 297, 298, 299]);
    expect(q.scanned).toBe(300);
    expect((await page({ jsonPath: '$.i', jsonEquals: '42' })).messages.map((m: RecordView) => m.position)).toEqual(['1042-0']);
    const odd = await page({ headerName: 'kind', headerValue: 'odd' });
    expect(odd.matched).toBe(150);
    const timed = await page({ from: 1_100, to: 1_104 });
    expect(timed.messages.map((m: RecordView) => m.timestamp)).toEqual([1_100, 1_101, 1_102, 1_103, 1_104]);
    // The time range narrows the ids read: only those five were scanned.
    expect(timed.scanned).toBe(5);
    // A filtered scan pages by cursor as well.
    const first = await call<any>('topics/messages', { topic: stream, limit: 100, headerName: 'kind', headerValue: 'even' });
    const second = await call<any>('topics/messages', { topic: stream, limit: 100, headerName: 'kind', headerValue: 'even', cursor: first.nextCursor });
    expect([...first.messages, ...second.messages].map((m: RecordView) => JSON.parse(m.value!).i)).toEqual(Array.from({ length: 150 }, (_, k) => k * 2));
    await expect(page({ propertyName: 'type' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'propertyName' });
  });

  it('publishes with XADD: value, key and headers as fields, an explicit id, and trimming', async (ctx) => {
    server.require(ctx);
    const stream = unique('produce');
    const r = await call<any>('topics/produce', { topic: stream, value: '{"n":{{i}}}', key: 'k', headers: { source: 'test' }, count: 5 });
    expect(r).toMatchObject({ published: 5, routed: { [stream]: 5 } });
    const entries = await redis.xrange(stream, '-', '+');
    expect(entries.map(([, f]) => f)).toEqual(Array.from({ length: 5 }, (_, k) => ['value', `{"n":${k + 1}}`, 'key', 'k', 'source', 'test']));
    expect(r.ids).toEqual(entries.map(([id]) => id));
    const exact = await call<any>('topics/produce', { topic: stream, value: null, headers: { a: '1', b: '2' }, position: '99999999999999-5' });
    expect(exact.ids).toEqual(['99999999999999-5']);
    expect(await redis.xrange(stream, '99999999999999-5', '+')).toEqual([['99999999999999-5', ['a', '1', 'b', '2']]]);
    await expect(call('topics/produce', { topic: stream, value: 'x', position: '1-1' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'position' });
    await call('topics/produce', { topic: stream, value: 'last', trim: { maxLen: 2, exact: true } });
    expect(await redis.xlen(stream)).toBe(2);
    await expect(call('topics/produce', { topic: stream, value: 'x', trim: {} })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'trim.maxLen' });
    await redis.set(`${stream}-string`, 'x');
    await expect(call('topics/produce', { topic: `${stream}-string`, value: 'x' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'topic' });
  });

  it('creates and deletes an empty stream', async (ctx) => {
    server.require(ctx);
    const stream = unique('created');
    await call('topics/create', { topic: stream });
    expect(await redis.type(stream)).toBe('stream');
    expect(await redis.xlen(stream)).toBe(0);
    await expect(call('topics/create', { topic: stream })).rejects.toMatchObject({ code: 'CONFLICT' });
    await call('topics/delete', { topic: stream });
    expect(await redis.exists(stream)).toBe(0);
  });

  it('tails new entries as they are added', async (ctx) => {
    server.require(ctx);
    const stream = unique('tail');
    await redis.xadd(stream, '*', 'value', 'before');
    const got: string[] = [];
    const stop = rc.core.subscribeUnchecked('tail', { connectionId: rc.connectionId, topic: stream }, (r) => got.push((r as RecordView).value!));
    try {
      // The tail starts from "now": entries keep coming until it has seen some.
      let n = 0;
      await expect
        .poll(async () => {
          await redis.xadd(stream, '*', 'value', `live-${n++}`);
          return got.length;
        })
        .toBeGreaterThan(1);
      expect(got).not.toContain('before');
      expect(got.every((v) => v.startsWith('live-'))).toBe(true);
      const ordered = got.map((v) => Number(v.slice(5)));
      expect(ordered).toEqual([...ordered].sort((a, b) => a - b));
    } finally {
      stop();
    }
  });
});

describe('consumer groups', () => {
  it('shows the lag, pending entries and consumers a real consumer leaves, and charts the lag', async (ctx) => {
    server.require(ctx);
    const stream = unique('lag');
    await fill(stream, 100);
    await redis.xgroup('CREATE', stream, 'billing', '0');
    // A consumer reads 30 and acknowledges 10 of them.
    const read = (await redis.xreadgroup('GROUP', 'billing', 'worker-1', 'COUNT', 30, 'STREAMS', stream, '>')) as Array<[string, Array<[string, string[]]>]>;
    const ids = read[0]![1].map(([id]) => id);
    await redis.xack(stream, 'billing', ...ids.slice(0, 10));
    const g = await call<any>('groups/get', { groupId: `${stream}#billing` });
    expect(g).toMatchObject({
      groupId: `${stream}#billing`,
      state: 'Stable',
      stream,
      group: 'billing',
      pending: 20,
      lastDeliveredId: '1029-0',
      totalLag: 70,
      partitions: [{ topic: stream, partition: 0, committed: 30, end: 100, lag: 70 }],
      members: [{ memberId: 'worker-1' }],
      consumers: [{ name: 'worker-1', pending: 20 }],
    });
    expect(g.partitions[0].timeLagMs).toBeGreaterThan(0);
    const all = await call<any[]>('groups/list', {});
    expect(all.map((x) => x.groupId)).toContain(`${stream}#billing`);
    await expect.poll(async () => (await call<any>('metrics/history', { kind: 'group', name: `${stream}#billing` })).samples.some((s: any) => s.lag === 70)).toBe(true);
    await expect(call('groups/get', { groupId: `${stream}#nobody` })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('counts the lag itself where Redis cannot (an entry deleted in the undelivered range)', async (ctx) => {
    server.require(ctx);
    const stream = unique('lag-nil');
    await fill(stream, 50);
    await redis.xgroup('CREATE', stream, 'g', '0');
    await redis.xreadgroup('GROUP', 'g', 'c', 'COUNT', 5, 'STREAMS', stream, '>');
    await redis.xdel(stream, '1020-0');
    const raw = (await redis.xinfo('GROUPS', stream)) as unknown[][];
    expect(raw[0]![raw[0]!.indexOf('lag') + 1]).toBeNull();
    const g = await call<any>('groups/get', { groupId: `${stream}#g` });
    expect(g).toMatchObject({ totalLag: 44, lagCounted: true });
  });

  it('previews and applies a reset (XGROUP SETID) to an ordinal, a time, the start and the end', async (ctx) => {
    server.require(ctx);
    const stream = unique('reset');
    await fill(stream, 50);
    await redis.xgroup('CREATE', stream, 'g', '0');
    await redis.xreadgroup('GROUP', 'g', 'c', 'COUNT', 30, 'STREAMS', stream, '>');
    const groupId = `${stream}#g`;
    const preview = await call<any>('groups/previewReset', { groupId, to: 'offset', offset: 10 });
    expect(preview).toMatchObject({ canApply: true, applied: false, changes: [{ topic: stream, partition: 0, current: 30, target: 10, end: 50, lagBefore: 20, lagAfter: 40 }] });
    const lastDelivered = async () => {
      const g = (await redis.xinfo('GROUPS', stream)) as unknown[][];
      return g[0]![g[0]!.indexOf('last-delivered-id') + 1];
    };
    expect(await lastDelivered()).toBe('1029-0');
    await call('groups/resetOffsets', { groupId, to: 'offset', offset: 10 });
    expect(await lastDelivered()).toBe('1009-0');
    expect((await call<any>('groups/get', { groupId })).totalLag).toBe(40);
    await call('groups/resetOffsets', { groupId, to: 'timestamp', timestamp: 1_045 });
    expect(await lastDelivered()).toBe('1044-0');
    expect((await call<any>('groups/get', { groupId })).totalLag).toBe(5);
    await call('groups/resetOffsets', { groupId, to: 'latest' });
    expect((await call<any>('groups/get', { groupId })).totalLag).toBe(0);
    await call('groups/resetOffsets', { groupId, to: 'earliest' });
    expect((await call<any>('groups/get', { groupId })).totalLag).toBe(50);
    // Pending entries stay pending: SETID moves only where the group reads next.
    expect(((await redis.xpending(stream, 'g')) as [number])[0]).toBe(30);
    await expect(call('groups/previewReset', { groupId, to: 'latest', topic: 'other' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'topic' });
  });

  it('deletes a group', async (ctx) => {
    server.require(ctx);
    const stream = unique('gdel');
    await fill(stream, 1);
    await redis.xgroup('CREATE', stream, 'gone', '0');
    await call('groups/delete', { groupId: `${stream}#gone` });
    expect(await redis.xinfo('GROUPS', stream)).toEqual([]);
  });
});

describe('Pub/Sub channels', () => {
  it('lists subscribed channels as channel:<name> topics, publishes to subscribers and tails them', async (ctx) => {
    const s = server.require(ctx);
    const channel = unique('news');
    const subscriber = rawClient(s.url) as Redis;
    const received: string[] = [];
    subscriber.on('message', (_c, m) => received.push(m));
    await subscriber.subscribe(channel);
    const tailed: RecordView[] = [];
    const stop = rc.core.subscribeUnchecked('tail', { connectionId: rc.connectionId, topic: `channel:${channel}` }, (r) => tailed.push(r as RecordView));
    try {
      await expect.poll(async () => (await call<any[]>('topics/list', {})).find((t) => t.name === `channel:${channel}`)?.config.subscribers).toBe(2);
      const page = await call<any>('topics/messages', { topic: `channel:${channel}` });
      expect(page).toMatchObject({ messages: [], complete: true, cost: expect.stringContaining('keeps no messages') });
      const r = await call<any>('topics/produce', { topic: `channel:${channel}`, value: 'hello {{i}}', count: 2 });
      expect(r).toMatchObject({ published: 2, routed: { [`channel:${channel}`]: 4 } });
      await expect.poll(() => received).toEqual(['hello 1', 'hello 2']);
      await expect.poll(() => tailed.map((t) => t.value)).toEqual(['hello 1', 'hello 2']);
      expect(tailed[0]).toMatchObject({ key: channel, headers: { channel } });
    } finally {
      stop();
      subscriber.disconnect();
    }
  });
});
