/**
 * Redis connector benchmarks against a real redis-server on loopback
 * (REDIS_URL, or one started with tests/redis/redis.mjs and stopped at the
 * end): browsing a stream of 1,000,000 entries (the first page, a page at
 * ordinal 900,000 and 500,000, by cursor and by id), beside ioredis reading the
 * same page with a bare XRANGE; and re-driving 10,000 dead entries (from a
 * dead-letter stream, and pending entries delivered too often), beside ioredis
 * doing the same moves as pipelined MULTI/XADD/XDEL/EXEC blocks.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisConnector } from '../../src-main/connectors/redis/index.js';
import type { RedisConnectionConfig } from '../../src-main/contract/operations.js';
import { silentLogger } from '../../src-main/ground/logger.js';
import { startRedis, stopRedis } from '../redis/control.js';
import type { BenchResult as Result } from './bench-result.js';

const ENTRIES = 1_000_000;
const DEAD = 10_000;
const PAGE = 100;

function config(url: string): RedisConnectionConfig {
  return { kind: 'redis', name: 'bench', url, cluster: false, deadLetterAfterDeliveries: 3, readOnly: false };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

async function median(times: number, fn: () => Promise<unknown>): Promise<number> {
  const all: number[] = [];
  for (let i = 0; i < times; i++) all.push((await timed(fn)).ms);
  all.sort((a, b) => a - b);
  return all[Math.floor(all.length / 2)]!;
}

async function fillStream(redis: Redis, key: string, n: number, fields: (i: number) => string[]): Promise<void> {
  for (let start = 0; start < n; start += 10_000) {
    const p = redis.pipeline();
    for (let i = start; i < Math.min(n, start + 10_000); i++) p.xadd(key, `${i + 1}-0`, ...fields(i));
    await p.exec();
  }
}

const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;

export async function run(): Promise<Result[]> {
  const stateFile = join(tmpdir(), 'brokerdeck-redis', `bench-${process.pid}.json`);
  let url = process.env.REDIS_URL;
  let owned = false;
  if (!url) {
    const started = await startRedis(stateFile);
    if ('reason' in started) return [{ name: 'redis benchmarks', value: 0, unit: 'skipped', notes: `no Redis server: ${started.reason}` }];
    url = started.url;
    owned = true;
  }
  const redis = new Redis(url);
  const connector = new RedisConnector('bench', config(url), { logger: silentLogger, audit: { record: () => {}, list: () => [] } }, { sampleIntervalMs: 0 });
  const results: Result[] = [];
  const prefix = `bench-${Date.now().toString(36)}`;
  try {
    // ---- browse over 1,000,000 entries
    const big = `${prefix}:big`;
    const fill = await timed(() => fillStream(redis, big, ENTRIES, (i) => ['value', `{"i":${i},"status":"${i % 10 === 0 ? 'failed' : 'ok'}"}`, 'kind', i % 2 ? 'odd' : 'even']));
    results.push({ name: 'stream fill (pipelined XADD, not the connector)', value: Math.round(ENTRIES / (fill.ms / 1000)), unit: 'entries/s' });
    const page = (extra: Record<string, unknown>) => connector.browseTopic({ topic: big, limit: PAGE, ...extra } as never);
    results.push({ name: `browse: first page of ${PAGE}`, value: round(await median(7, () => page({}))), unit: 'ms', target: '< 50' });
    const cold900 = await timed(() => page({ offset: 900_000 }));
    if (cold900.value.messages[0]?.position !== '900001-0') throw new Error(`ordinal 900,000 read ${cold900.value.messages[0]?.position}`);
    results.push({ name: `browse: page of ${PAGE} at ordinal 900,000, first time (walks 100,000 ids from the end on the server)`, value: round(cold900.ms), unit: 'ms', target: '< 1000' });
    results.push({ name: `browse: next page by ordinal (900,100, from the remembered place)`, value: round(await median(7, () => page({ offset: 900_100 }))), unit: 'ms', target: '< 50' });
    const cold500 = await timed(() => page({ offset: 500_000 }));
    results.push({ name: `browse: page of ${PAGE} at ordinal 500,000, first time (the farthest from both ends)`, value: round(cold500.ms), unit: 'ms', target: '< 2000' });
    const cursor = cold900.value.nextCursor!;
    results.push({ name: `browse: next page by cursor at 900,000`, value: round(await median(7, () => page({ cursor }))), unit: 'ms', target: '< 50' });
    results.push({ name: `browse: page by entry id at 900,000`, value: round(await median(7, () => page({ position: '900001-0' }))), unit: 'ms', target: '< 50' });
    results.push({ name: `browse: first page of ${PAGE}, again after the others`, value: round(await median(7, () => page({}))), unit: 'ms', target: '< 50' });
    results.push({ name: `raw ioredis XRANGE ${PAGE} from the start (same run)`, value: round(await median(7, () => redis.xrangeBuffer(big, '-', '+', 'COUNT', PAGE))), unit: 'ms' });
    results.push({ name: `raw ioredis XRANGE ${PAGE} at id 900001-0 (same run)`, value: round(await median(7, () => redis.xrangeBuffer(big, '900001-0', '+', 'COUNT', PAGE))), unit: 'ms' });
    const filtered = await timed(() => page({ offset: 0, headerName: 'kind', headerValue: 'even', q: '"i":999990,', limit: 100 }));
    results.push({
      name: 'browse: filtered scan, one page (2 s budget)',
      value: Math.round(filtered.value.scanned / (filtered.ms / 1000)),
      unit: 'entries scanned/s',
      notes: `${filtered.value.scanned} scanned, ${filtered.value.matched} matched`,
    });
    await redis.del(big);

    // ---- re-drive 10,000 entries of a dead-letter stream
    const origin = `${prefix}:orders`;
    const dlq = `${origin}:dlq`;
    await fillStream(redis, dlq, DEAD, (i) => ['origin-stream', origin, 'reason', 'timeout', 'value', `{"order":${i}}`]);
    const job = await connector.startRedrive({ source: dlq, all: true } as never);
    const done = await timed(() => connector.waitForRedrive(job.id));
    const moved = done.value?.moved ?? 0;
    if (moved !== DEAD || (await redis.xlen(origin)) !== DEAD || (await redis.xlen(dlq)) !== 0) throw new Error(`dead-letter stream re-drive moved ${moved}: ${JSON.stringify(done.value)}`);
    results.push({ name: `re-drive ${DEAD} entries of a dead-letter stream (XADD + XDEL, one atomic step each)`, value: Math.round(DEAD / (done.ms / 1000)), unit: 'entries/s', target: '>= 10000', pass: DEAD / (done.ms / 1000) >= 10_000 });

    // ---- the same moves, by ioredis alone: pipelined MULTI/XADD/XDEL/EXEC blocks of 500
    const rawOrigin = `${prefix}:raw`;
    const rawDlq = `${rawOrigin}:dlq`;
    await fillStream(redis, rawDlq, DEAD, (i) => ['origin-stream', rawOrigin, 'reason', 'timeout', 'value', `{"order":${i}}`]);
    const raw = await timed(async () => {
      let from = '-';
      for (;;) {
        const entries = await redis.xrange(rawDlq, from, '+', 'COUNT', 500);
        if (entries.length === 0) break;
        from = `(${entries[entries.length - 1]![0]}`;
        const p = redis.pipeline();
        for (const [id, fields] of entries) {
          p.call('MULTI');
          p.xadd(rawOrigin, '*', ...fields.slice(4));
          p.xdel(rawDlq, id);
          p.call('EXEC');
        }
        await p.exec();
      }
    });
    results.push({ name: `raw ioredis: the same ${DEAD} moves as pipelined MULTI/XADD/XDEL/EXEC (same run)`, value: Math.round(DEAD / (raw.ms / 1000)), unit: 'entries/s', notes: `target holds ${await redis.xlen(rawOrigin)}` });

    // ---- re-drive 10,000 pending entries delivered three times
    const pend = `${prefix}:pending`;
    await fillStream(redis, pend, DEAD, (i) => ['value', `{"order":${i}}`]);
    await redis.xgroup('CREATE', pend, 'g', '0');
    await redis.xreadgroup('GROUP', 'g', 'w1', 'COUNT', DEAD, 'STREAMS', pend, '>');
    for (const consumer of ['w2', 'w3']) {
      for (let start = 1; start <= DEAD; start += 1_000) {
        const ids = Array.from({ length: Math.min(1_000, DEAD - start + 1) }, (_, k) => `${start + k}-0`);
        await redis.xclaim(pend, 'g', consumer, 0, ...ids, 'JUSTID');
        await redis.xclaim(pend, 'g', consumer, 0, ...ids);
      }
    }
    const pjob = await connector.startRedrive({ source: `${pend}#g`, all: true } as never);
    const pdone = await timed(() => connector.waitForRedrive(pjob.id));
    const pending = ((await redis.xpending(pend, 'g')) as [number])[0];
    if (pdone.value?.moved !== DEAD || pending !== 0 || (await redis.xlen(pend)) !== 2 * DEAD) throw new Error(`pending re-drive: ${JSON.stringify(pdone.value)}, ${pending} left pending`);
    results.push({ name: `re-drive ${DEAD} pending entries delivered 3 times (XADD + XACK, one atomic step each)`, value: Math.round(DEAD / (pdone.ms / 1000)), unit: 'entries/s', target: '>= 10000', pass: DEAD / (pdone.ms / 1000) >= 10_000 });
  } finally {
    await connector.close();
    for (const k of await redis.keys(`${prefix}*`).catch(() => [] as string[])) await redis.del(k);
    redis.disconnect();
    if (owned) await stopRedis(stateFile);
  }
  return results;
}
