/**
 * Browsing: paging with cursors per partition and merged in timestamp order,
 * seeking by offset, time and to the latest records, the core's filters
 * (key, value text, header, JSON path, time range), a filter over 100,000
 * records that finds exactly the matching ones, and the live tail.
 */
import { describe, expect, it } from 'vitest';
import type { KafkaConnector } from '../../../src-main/connectors/kafka/index.js';
import type { KafkaRecordView } from '../../../src-main/connectors/kafka/records.js';
import type { KafkaBrokerHandle } from '../../kafka/broker.js';
import { connect, createTopic, eventually, topicName } from './helpers.js';

type BrowseArgs = Parameters<KafkaConnector['browseTopic']>[0];

/** Follows the cursor to the end; returns every match and the totals. */
export async function browseAll(c: KafkaConnector, args: BrowseArgs): Promise<{ records: KafkaRecordView[]; scanned: number; matched: number; pages: number }> {
  const records: KafkaRecordView[] = [];
  let scanned = 0;
  let matched = 0;
  let pages = 0;
  let cursor: string | undefined;
  for (;;) {
    const page = await c.browseTopic({ ...args, ...(cursor ? { cursor } : {}) });
    pages++;
    records.push(...(page.messages as KafkaRecordView[]));
    scanned += page.scanned;
    matched += page.matched;
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
    if (pages > 10_000) throw new Error('too many pages');
  }
  return { records, scanned, matched, pages };
}

export function browseSuite(kafka: KafkaBrokerHandle): void {
  describe('browsing', () => {
    it('pages through one partition with a cursor, and seeks by offset, time and to the latest', async (ctx) => {
      const broker = kafka.require(ctx);
      const name = topicName('paging');
      await createTopic(broker, name, 2);
      const c = connect(broker);
      try {
        await c.produce({ topic: name, value: 'first-{{i}}', valueEncoding: 'utf8', headers: {}, count: 20, partition: 0 });
        const middle = Date.now();
        await new Promise((r) => setTimeout(r, 20));
        await c.produce({ topic: name, value: 'second-{{i}}', valueEncoding: 'utf8', headers: {}, count: 15, partition: 0 });

        const all = await browseAll(c, { topic: name, partition: 0, limit: 10 });
        expect(all.pages).toBe(4);
        expect(all.records.map((r) => r.offset)).toEqual(Array.from({ length: 35 }, (_, i) => i));
        expect(all.records[0]!.value).toBe('first-1');
        expect(all.records[34]!.value).toBe('second-15');
        expect(all.scanned).toBe(35);

        const fromOffset = await c.browseTopic({ topic: name, partition: 0, offset: 30, limit: 100 });
        expect(fromOffset.messages.map((m) => m.offset)).toEqual([30, 31, 32, 33, 34]);
        expect(fromOffset.nextCursor).toBeNull();

        const fromTime = await c.browseTopic({ topic: name, partition: 0, timestamp: middle + 1, limit: 100 });
        expect(fromTime.messages[0]!.value).toBe('second-1');
        expect(fromTime.messages).toHaveLength(15);

        const latest = await c.browseTopic({ topic: name, partition: 0, seek: 'latest', limit: 3 });
        expect(latest.messages.map((m) => m.offset)).toEqual([32, 33, 34]);

        await expect(c.browseTopic({ topic: name, partition: 5, limit: 1 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(c.browseTopic({ topic: name, partition: 1, limit: 1, cursor: all.records.length ? 'k1.bad' : '' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      } finally {
        await c.close();
      }
    });

    it('merges partitions in timestamp order', async (ctx) => {
      const broker = kafka.require(ctx);
      const name = topicName('merged');
      await createTopic(broker, name, 3);
      const c = connect(broker);
      try {
        for (let i = 0; i < 12; i++) {
          await c.produce({ topic: name, value: `m${i}`, valueEncoding: 'utf8', headers: {}, count: 1, partition: i % 3 });
          await new Promise((r) => setTimeout(r, 3));
        }
        const merged = await browseAll(c, { topic: name, limit: 5 });
        expect(merged.records.map((r) => r.value)).toEqual(Array.from({ length: 12 }, (_, i) => `m${i}`));
        const ts = merged.records.map((r) => r.timestamp);
        expect([...ts].sort((a, b) => a - b)).toEqual(ts);
        expect(new Set(merged.records.map((r) => r.partition))).toEqual(new Set([0, 1, 2]));
      } finally {
        await c.close();
      }
    });

    it('filters on key, value text, header, JSON path and time range', async (ctx) => {
      const broker = kafka.require(ctx);
      const name = topicName('filters');
      await createTopic(broker, name, 2);
      const c = connect(broker);
      try {
        await c.produce({ topic: name, key: 'user-{{i}}', value: '{"status":"ok","n":{{i}}}', valueEncoding: 'utf8', headers: { kind: 'normal' }, count: 20 });
        const t1 = Date.now();
        await new Promise((r) => setTimeout(r, 20));
        await c.produce({ topic: name, key: 'admin-{{i}}', value: '{"status":"failed","n":{{i}},"error":"boom"}', valueEncoding: 'utf8', headers: { kind: 'alert' }, count: 5 });

        const count = async (f: Partial<BrowseArgs>) => (await browseAll(c, { topic: name, limit: 100, ...f } as BrowseArgs)).records;
        expect(await count({ key: 'admin-' })).toHaveLength(5);
        expect(await count({ q: 'boom' })).toHaveLength(5);
        expect(await count({ headerName: 'kind', headerValue: 'alert' })).toHaveLength(5);
        expect(await count({ headerName: 'kind' })).toHaveLength(25);
        expect(await count({ jsonPath: '$.status', jsonEquals: '"failed"' })).toHaveLength(5);
        expect(await count({ jsonPath: 'n', jsonEquals: '3' })).toHaveLength(2);
        expect(await count({ from: t1 + 1 })).toHaveLength(5);
        expect(await count({ to: t1 })).toHaveLength(20);
        const both = await browseAll(c, { topic: name, limit: 100, key: 'user-', q: '"n":1' } as BrowseArgs);
        expect(both.records.map((r) => r.key).sort()).toEqual(['user-1', 'user-10', 'user-11', 'user-12', 'user-13', 'user-14', 'user-15', 'user-16', 'user-17', 'user-18', 'user-19'].sort());
        expect(both.scanned).toBe(25);
        await expect(c.browseTopic({ topic: name, limit: 1, propertyName: 'contentType' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      } finally {
        await c.close();
      }
    });

    it('finds exactly the matching records among 100,000', { timeout: 180_000 }, async (ctx) => {
      const broker = kafka.require(ctx);
      const name = topicName('filter-100k');
      await createTopic(broker, name, 4);
      const c = connect(broker, {}, { browseBudgetMs: 1_000 });
      try {
        // Every 97th record is an error; {{i}} makes each value different.
        const total = 100_000;
        let produced = 0;
        for (let batch = 0; batch < 10; batch++) {
          await c.produce({ topic: name, key: 'k{{i}}', value: `{"seq":${batch},"i":{{i}},"level":"info","text":"all good here"}`, valueEncoding: 'utf8', headers: {}, count: 9_000 });
          await c.produce({ topic: name, key: 'k{{i}}', value: `{"seq":${batch},"i":{{i}},"level":"error","text":"needle-${batch}-{{i}}"}`, valueEncoding: 'utf8', headers: {}, count: 1_000 });
          produced += 10_000;
        }
        expect(produced).toBe(total);
        const started = Date.now();
        const found = await browseAll(c, { topic: name, limit: 500, q: 'needle-' } as BrowseArgs);
        const seconds = (Date.now() - started) / 1000;
        expect(found.scanned).toBe(total);
        expect(found.matched).toBe(10_000);
        expect(found.records).toHaveLength(10_000);
        expect(new Set(found.records.map((r) => `${r.partition}:${r.offset}`)).size).toBe(10_000);
        expect(found.records.every((r) => r.value!.includes('"level":"error"'))).toBe(true);
        // A rarer needle: a single record among 100,000.
        const one = await browseAll(c, { topic: name, limit: 10, q: 'needle-7-500"' } as BrowseArgs);
        expect(one.records).toHaveLength(1);
        expect(one.scanned).toBe(total);
        ctx.annotate(`scanned ${total} records in ${seconds.toFixed(2)} s (${Math.round(total / seconds)} records/s, ${found.pages} pages)`);
      } finally {
        await c.close();
      }
    });

    it('tails new records live', async (ctx) => {
      const broker = kafka.require(ctx);
      const name = topicName('tail');
      await createTopic(broker, name, 2);
      const c = connect(broker);
      const seen: Array<{ topic: string; partition: number; value: string | null }> = [];
      const stop = c.tail(name, undefined, (r) => seen.push({ topic: r.topic, partition: r.partition, value: r.value }));
      const stopOne = c.tail(name, 1, () => {});
      try {
        // The tail is live once it shows a record produced after it started: probe until it does.
        await eventually(async () => {
          await c.produce({ topic: name, value: 'probe', valueEncoding: 'utf8', headers: {}, count: 1, partition: 0 });
          return eventually(async () => seen.some((s) => s.value === 'probe'), 1_000, 50).catch(() => false);
        }, 60_000, 0);
        await c.produce({ topic: name, value: 'live-{{i}}', valueEncoding: 'utf8', headers: {}, count: 6 });
        const live = () => seen.filter((s) => s.value?.startsWith('live-'));
        await eventually(async () => live().length >= 6);
        expect(live().map((s) => s.value).sort()).toEqual(['live-1', 'live-2', 'live-3', 'live-4', 'live-5', 'live-6']);
        expect(seen.every((s) => s.topic === name)).toBe(true);
      } finally {
        stop();
        stopOne();
        await c.close();
      }
    });
  });
}
