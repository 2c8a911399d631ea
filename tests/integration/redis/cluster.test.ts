/**
 * A Redis Cluster of three masters (tests/redis/redis.mjs start-cluster, about
 * three seconds): keys on every node are found, browsed and published to, and
 * dead letters are re-driven exactly once, atomically where both keys share a
 * slot (`{hash tag}`) and copy-then-delete where they do not.
 */
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useRedisServer } from '../../redis/servers.js';
import { rawClient, redisCore, settled, unique, type RedisCore } from './helpers.js';

const cluster = useRedisServer({ cluster: true });
let rc: RedisCore;
let redis: Cluster;

beforeAll(async () => {
  if (!cluster.server) return;
  rc = await redisCore(cluster.server.url, { cluster: true, deadLetterAfterDeliveries: 2 });
  redis = rawClient(cluster.server.url, true) as Cluster;
});
afterAll(async () => {
  await rc?.close();
  redis?.disconnect();
});

const call = ((op: string, input: Record<string, unknown>) => rc.core.callUnchecked(op, { connectionId: rc.connectionId, ...input })) as <T = any>(op: string, input: Record<string, unknown>) => Promise<T>;

describe('a Redis Cluster', () => {
  it('finds streams on every master, browses, publishes and re-drives across slots exactly once', async (ctx) => {
    cluster.require(ctx);
    const info = await call<any>('connections/get', {});
    expect(info.target).toMatch(/\(cluster\)$/);
    const base = unique('c');
    const streams = Array.from({ length: 12 }, (_, k) => `${base}-${k}`);
    for (const s of streams) await call('topics/produce', { topic: s, value: `v-${s}`, count: 3 });
    const nodes = await Promise.all(redis.nodes('master').map(async (n) => (await n.call('DBSIZE')) as number));
    expect(nodes.filter((n) => n > 0).length).toBeGreaterThan(1);
    const topics = await call<any[]>('topics/list', {});
    expect(topics.filter((t) => t.name.startsWith(base)).map((t) => [t.name, t.messages])).toEqual([...streams].sort().map((s) => [s, 3]));
    const page = await call<any>('topics/messages', { topic: streams[5], offset: 1, limit: 5 });
    expect(page.messages.map((m: any) => [m.offset, m.value])).toEqual([
      [1, `v-${streams[5]}`],
      [2, `v-${streams[5]}`],
    ]);

    // Pending entries delivered twice, re-driven within their own stream (one slot: atomic).
    const orders = `${base}-orders`;
    for (let k = 0; k < 4; k++) await redis.xadd(orders, '*', 'value', `o${k}`);
    await redis.xgroup('CREATE', orders, 'g', '0');
    const read = (await redis.xreadgroup('GROUP', 'g', 'w', 'COUNT', 4, 'STREAMS', orders, '>')) as Array<[string, Array<[string, string[]]>]>;
    await redis.xclaim(orders, 'g', 'w2', 0, read[0]![1][0]![0]);
    const lag = await call<any>('groups/get', { groupId: `${orders}#g` });
    expect(lag).toMatchObject({ pending: 4, totalLag: 0 });
    const pend = await call<{ id: string }>('redrives/start', { source: `${orders}#g`, all: true });
    expect(await settled(rc.core, pend.id)).toMatchObject({ state: 'completed', moved: 1 });
    expect(await redis.xlen(orders)).toBe(5);

    // A dead-letter stream on another slot than its origin: copied first, then deleted.
    const dlq = `${orders}:dlq`;
    for (let k = 0; k < 5; k++) await redis.xadd(dlq, '*', 'origin-stream', orders, 'value', `dead-${k}`);
    const moved = await call<{ id: string }>('redrives/start', { source: dlq, all: true });
    expect(await settled(rc.core, moved.id)).toMatchObject({ state: 'completed', moved: 5, failed: 0 });
    expect(await redis.xlen(dlq)).toBe(0);
    expect((await redis.xrange(orders, '-', '+')).map(([, f]) => f[1]).slice(5)).toEqual(['dead-0', 'dead-1', 'dead-2', 'dead-3', 'dead-4']);

    // A processing list on another slot than its list.
    const list = `${base}-jobs`;
    await redis.rpush(`${list}:processing`, 'a', 'b');
    const lists = await call<{ id: string }>('redrives/start', { source: `${list}:processing`, all: true });
    expect(await settled(rc.core, lists.id)).toMatchObject({ state: 'completed', moved: 2 });
    expect(await redis.lrange(list, 0, -1)).toEqual(['a', 'b']);
    expect(await redis.exists(`${list}:processing`)).toBe(0);
  });
});
