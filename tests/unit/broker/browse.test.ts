import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { Engine as BrokerEngine } from '../../../src-main/broker/index.js';
import { memEngine, clock, b, settle, collector, waitFor, tempDir } from './helpers.js';

type Engine = ReturnType<typeof memEngine>;

async function fill(e: Engine, q: string, n: number, make: (i: number) => string = (i) => `msg-${i}`): Promise<void> {
  await e.publishMany({ exchange: '', routingKey: q, body: b('{{i}}'), count: 1 }).catch(() => undefined);
  await e.purgeQueue(q);
  const ps: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) ps.push(e.publish({ exchange: '', routingKey: q, body: b(make(i)), properties: i % 3 === 0 ? { headers: { kind: i % 2 ? 'odd' : 'even' }, correlationId: `c-${i}` } : {} }));
  await Promise.all(ps);
}

describe('browse', () => {
  it('pages with a keyset cursor, never consuming', async () => {
    const e = memEngine();
    e.declareQueue('q');
    await fill(e, 'q', 25);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = e.browse('q', { limit: 10, ...(cursor ? { cursor } : {}) });
      seen.push(...page.messages.map((m) => m.body.toString()));
      cursor = page.nextCursor ?? undefined;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => `msg-${i}`));
    expect(e.getQueue('q').messages).toBe(25);
    e.close();
  });

  it('jumps to a position (exact without holes, close with holes)', async () => {
    const e = memEngine();
    e.declareQueue('q');
    await fill(e, 'q', 1000);
    const page = e.browse('q', { limit: 3, position: 900 });
    expect(page.messages.map((m) => [m.body.toString(), m.position])).toEqual([
      ['msg-900', 900],
      ['msg-901', 901],
      ['msg-902', 902],
    ]);
    // Consume the first 100 (head moves: still exact).
    await e.get('q', { count: 100, ackMode: 'ack' });
    expect(e.browse('q', { limit: 1, position: 800 }).messages[0]!.body.toString()).toBe('msg-900');
    // Punch holes in the middle: positions become an interpolation.
    const ids = e.browse('q', { limit: 50, position: 100 }).messages.map((m) => m.id);
    e.declareQueue('sink');
    const job = e.startRedrive({ source: 'q', messageIds: ids, target: { exchange: '', routingKey: 'sink' } });
    await waitFor(() => e.getRedrive(job.id).state !== 'running');
    expect(e.getRedrive(job.id).moved).toBe(50);
    expect(e.getQueue('q').messages).toBe(850);
    const p = e.browse('q', { limit: 1, position: 700 }).messages[0]!;
    const actual = Number(p.body.toString().slice(4)) - 100 - 50; // rank among survivors
    expect(Math.abs(actual - 700)).toBeLessThanOrEqual(50);
    e.close();
  });

  it('filters by body substring, JSON path, header, property and time; counts scanned and matched', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.declareQueue('q');
    for (let i = 0; i < 50; i++) {
      c.advance(10);
      await e.publish({
        exchange: '',
        routingKey: 'q',
        body: b(JSON.stringify({ order: { id: i, status: i % 5 === 0 ? 'shipped' : 'open', items: [{ sku: `S${i}` }] } })),
        properties: { headers: { tenant: i % 2 ? 'a' : 'b' }, contentType: i < 10 ? 'application/json' : 'text/plain' },
      });
    }
    const t0 = c.now() - 500;
    const q = e.browse('q', { limit: 100, filter: { q: '"status":"shipped"' } });
    expect(q.matched).toBe(10);
    expect(q.scanned).toBe(50);
    const j = e.browse('q', { limit: 100, filter: { jsonPath: '$.order.status', jsonEquals: 'shipped' } });
    expect(j.messages.map((m) => JSON.parse(m.body.toString()).order.id)).toEqual([0, 5, 10, 15, 20, 25, 30, 35, 40, 45]);
    expect(e.browse('q', { limit: 100, filter: { jsonPath: 'order.items[0].sku', jsonEquals: 'S7' } }).matched).toBe(1);
    expect(e.browse('q', { limit: 100, filter: { jsonPath: '$.order.id', jsonEquals: '7' } }).matched).toBe(1);
    expect(e.browse('q', { limit: 100, filter: { jsonPath: '$.order', jsonContains: 'S4' } }).matched).toBe(11);
    expect(e.browse('q', { limit: 100, filter: { header: { name: 'tenant', value: 'a' } } }).matched).toBe(25);
    expect(e.browse('q', { limit: 100, filter: { property: { name: 'content_type', value: 'application/json' } } }).matched).toBe(10);
    expect(e.browse('q', { limit: 100, filter: { from: t0 + 10, to: t0 + 100 } }).matched).toBe(10);
    expect(() => e.browse('q', { filter: { property: { name: 'colour', value: 'x' } } })).toThrow(/unknown property/);
    e.close();
  });

  it('stops after the scan budget and continues from the cursor', async () => {
    const e = memEngine();
    e.declareQueue('q');
    await fill(e, 'q', 300, (i) => (i === 250 ? 'needle' : `hay-${i}`));
    const first = e.browse('q', { limit: 10, filter: { q: 'needle' }, maxScan: 100 });
    expect(first).toMatchObject({ scanned: 100, matched: 0 });
    expect(first.nextCursor).not.toBeNull();
    const second = e.browse('q', { limit: 10, filter: { q: 'needle' }, maxScan: 100, cursor: first.nextCursor! });
    expect(second).toMatchObject({ scanned: 100, matched: 0 });
    const third = e.browse('q', { limit: 10, filter: { q: 'needle' }, maxScan: 100, cursor: second.nextCursor! });
    expect(third.matched).toBe(1);
    expect(third.messages[0]!.body.toString()).toBe('needle');
    expect(third.nextCursor).toBeNull();
    e.close();
  });

  it('finds substrings in binary bodies too', async () => {
    const e = memEngine();
    e.declareQueue('q');
    await e.publish({ exchange: '', routingKey: 'q', body: Buffer.concat([Buffer.from([0, 255, 0]), b('hidden*[x]?')]) });
    await e.publish({ exchange: '', routingKey: 'q', body: b('text with *[x]? glob chars') });
    expect(e.browse('q', { filter: { q: '*[x]?' } }).matched).toBe(2);
    expect(e.browse('q', { filter: { q: 'hidden' } }).matched).toBe(1);
    e.close();
  });

  it('shows unacked messages only when asked, with their consumer', async () => {
    const e = memEngine();
    e.declareQueue('q');
    await fill(e, 'q', 4);
    const c = collector();
    const tag = e.consume('q', { prefetch: 2 }, c.on);
    await settle(e);
    expect(e.browse('q').messages.map((m) => m.body.toString())).toEqual(['msg-2', 'msg-3']);
    const all = e.browse('q', { includeUnacked: true }).messages;
    expect(all.map((m) => [m.state, m.consumerTag ?? null])).toEqual([
      ['unacked', tag],
      ['unacked', tag],
      ['ready', null],
      ['ready', null],
    ]);
    e.close();
  });

  it('pages over filters partition the matches exactly (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.boolean(), { minLength: 0, maxLength: 120 }), fc.integer({ min: 1, max: 17 }), fc.integer({ min: 1, max: 40 }), async (marks, limit, maxScan) => {
        const e = memEngine();
        e.declareQueue('q');
        await Promise.all(marks.map((m, i) => e.publish({ exchange: '', routingKey: 'q', body: b(m ? `x-hit-${i}` : `x-${i}`) })));
        const found: string[] = [];
        let scanned = 0;
        let cursor: string | undefined;
        for (let guard = 0; guard < 1000; guard++) {
          const page = e.browse('q', { limit, maxScan, filter: { q: 'hit' }, ...(cursor ? { cursor } : {}) });
          found.push(...page.messages.map((m) => m.body.toString()));
          scanned += page.scanned;
          if (!page.nextCursor) break;
          cursor = page.nextCursor;
        }
        expect(found).toEqual(marks.map((m, i) => (m ? `x-hit-${i}` : null)).filter((x) => x !== null));
        expect(scanned).toBe(marks.length);
        e.close();
      }),
      { numRuns: 60 },
    );
  });

  describe('a priority queue', () => {
    /** Publishes `prios.length` messages (body = index, hit marked) and returns the order a consumer gets them in. */
    async function prioQueue(e: Engine, prios: number[], hits: boolean[] = [], durable = false): Promise<string[]> {
      e.declareQueue('pq', { durable, arguments: { 'x-max-priority': 5 } });
      for (let i = 0; i < prios.length; i++) await e.publish({ exchange: '', routingKey: 'pq', body: b(hits[i] ? `hit-${i}` : `m-${i}`), properties: { priority: prios[i]!, ...(durable ? { deliveryMode: 2 } : {}) } });
      return prios
        .map((p, i) => ({ p: Math.min(p, 5), i }))
        .sort((x, y) => y.p - x.p || x.i - y.i)
        .map(({ i }) => (hits[i] ? `hit-${i}` : `m-${i}`));
    }

    it('is listed in the order consumers get it, with exact positions, page by page and by jumping', async () => {
      const e = memEngine();
      const order = await prioQueue(e, Array.from({ length: 40 }, (_, i) => (i * 7) % 9));
      const seen: Array<[string, number | undefined]> = [];
      let cursor: string | undefined;
      do {
        const page = e.browse('pq', { limit: 6, ...(cursor ? { cursor } : {}) });
        seen.push(...page.messages.map((m) => [m.body.toString(), m.position] as [string, number | undefined]));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      expect(seen).toEqual(order.map((body, i) => [body, i]));
      for (const at of [0, 5, 17, 39]) expect(e.browse('pq', { limit: 2, position: at }).messages.map((m) => [m.body.toString(), m.position])).toEqual(order.slice(at, at + 2).map((body, i) => [body, at + i]));
      // What browsing showed first is what a consumer gets first.
      const got = await e.get('pq', { count: 40, ackMode: 'ack' });
      expect(got.map((m) => m.body.toString())).toEqual(order);
      e.close();
    });

    it('keeps a requeued message in its place and skips unacked ones unless asked', async () => {
      const e = memEngine();
      const order = await prioQueue(e, [1, 3, 3, 0, 5, 1]);
      const c = collector();
      const tag = e.consume('pq', { prefetch: 2 }, c.on);
      await settle(e);
      expect(c.bodies()).toEqual(order.slice(0, 2));
      expect(e.browse('pq').messages.map((m) => [m.body.toString(), m.position])).toEqual(order.slice(2).map((body, i) => [body, i + 2]));
      expect(e.browse('pq', { includeUnacked: true }).messages.map((m) => [m.body.toString(), m.state])).toEqual(order.map((body, i) => [body, i < 2 ? 'unacked' : 'ready']));
      e.cancel(tag);
      await settle(e);
      expect(e.browse('pq').messages.map((m) => m.body.toString())).toEqual(order);
      e.close();
    });

    it('filters in delivery order with the same positions, across scan budgets (property)', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 0, max: 7 }), fc.boolean()), { maxLength: 80 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 30 }), async (items, limit, maxScan) => {
          const e = memEngine();
          const order = await prioQueue(e, items.map(([p]) => p), items.map(([, hit]) => hit));
          const found: Array<[string, number | undefined]> = [];
          let scanned = 0;
          let cursor: string | undefined;
          for (let guard = 0; guard < 1000; guard++) {
            const page = e.browse('pq', { limit, maxScan, filter: { q: 'hit' }, ...(cursor ? { cursor } : {}) });
            found.push(...page.messages.map((m) => [m.body.toString(), m.position] as [string, number | undefined]));
            scanned += page.scanned;
            if (!page.nextCursor) break;
            cursor = page.nextCursor;
          }
          expect(found).toEqual(order.map((body, i) => [body, i] as [string, number]).filter(([body]) => body.startsWith('hit')));
          expect(scanned).toBe(items.length);
          e.close();
        }),
        { numRuns: 60 },
      );
    });

    it('keeps that order after a restart', async () => {
      const { dir, cleanup } = tempDir();
      let e = BrokerEngine.open({ dataDir: dir, timers: false });
      const order = await prioQueue(e, [2, 0, 4, 4, 1, 5, 2], [], true);
      e.close();
      e = BrokerEngine.open({ dataDir: dir, timers: false });
      expect(e.browse('pq').messages.map((m) => [m.body.toString(), m.position])).toEqual(order.map((body, i) => [body, i]));
      expect(e.browse('pq', { position: 4, limit: 1 }).messages[0]!.body.toString()).toBe(order[4]);
      e.close();
      cleanup();
    });

    it('refuses a cursor of another kind of queue', async () => {
      const e = memEngine();
      await prioQueue(e, [1, 2]);
      expect(() => e.browse('pq', { cursor: 'm:3' })).toThrow(/cursor/);
      expect(() => e.browse('pq', { cursor: 'p:9:0' })).toThrow(/cursor/);
      e.declareQueue('q');
      expect(() => e.browse('q', { cursor: 'p:1:0' })).toThrow(/cursor/);
      e.close();
    });
  });
});
