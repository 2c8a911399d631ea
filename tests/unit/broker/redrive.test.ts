import { describe, it, expect } from 'vitest';
import { Engine, type FieldTable, type RedriveJob } from '../../../src-main/broker/index.js';
import { memEngine, b, tempDir, waitFor } from './helpers.js';

type E = ReturnType<typeof memEngine>;

/** orders --reject--> dlx --> orders.dlq, with n dead letters in it. */
async function withDeadLetters(e: E, n: number): Promise<void> {
  e.declareExchange('dlx', { type: 'fanout' });
  e.declareQueue('orders.dlq');
  e.bind({ source: 'dlx', destination: 'orders.dlq' });
  e.declareQueue('orders', { arguments: { 'x-dead-letter-exchange': 'dlx' } });
  e.declareExchange('shop', { type: 'direct' });
  e.bind({ source: 'shop', destination: 'orders', routingKey: 'order.created' });
  await Promise.all(Array.from({ length: n }, (_, i) => e.publish({ exchange: 'shop', routingKey: 'order.created', body: b(`order-${i}`), properties: { deliveryMode: 2, messageId: `id-${i}` } })));
  await e.get('orders', { count: n, ackMode: 'reject' });
}

function bodies(e: E, q: string): string[] {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const p = e.browse(q, { limit: 1000, includeUnacked: true, ...(cursor ? { cursor } : {}) });
    out.push(...p.messages.map((m) => m.body.toString()));
    cursor = p.nextCursor ?? undefined;
  } while (cursor);
  return out;
}

async function finished(e: E, id: string): Promise<RedriveJob> {
  await waitFor(() => ['completed', 'cancelled', 'failed'].includes(e.getRedrive(id).state), 60_000);
  return e.getRedrive(id);
}

describe('re-drive', () => {
  it('moves every dead letter back to the queue it died in, exactly once', async () => {
    const e = memEngine();
    await withDeadLetters(e, 50);
    expect(e.listDeadLetterQueues()).toEqual([{ queue: 'orders.dlq', count: 50, sources: ['orders'] }]);
    const events: RedriveJob[] = [];
    e.events.on('redrive', (j) => events.push(j));
    const { id } = e.startRedrive({ source: 'orders.dlq', all: true });
    const job = await finished(e, id);
    expect(job).toMatchObject({ state: 'completed', moved: 50, failed: 0, total: 50, target: 'origin', source: 'orders.dlq', connectionId: 'local' });
    expect(bodies(e, 'orders.dlq')).toEqual([]);
    expect(bodies(e, 'orders')).toEqual(Array.from({ length: 50 }, (_, i) => `order-${i}`));
    const m = e.browse('orders', { limit: 1 }).messages[0]!;
    expect(m.exchange).toBe('shop');
    expect(m.routingKey).toBe('order.created');
    expect(m.properties.headers?.['x-redriven-count']).toBe(1);
    expect(m.properties.messageId).toBe('id-0');
    expect((m.properties.headers?.['x-death'] as FieldTable[])[0]).toMatchObject({ queue: 'orders', reason: 'rejected' });
    expect(events.at(-1)).toMatchObject({ id, state: 'completed', moved: 50 });
    const audit = e.listAudit(10).find((a) => a.action === 'redrive')!;
    expect(audit).toMatchObject({ source: 'orders.dlq', target: 'origin', count: 50, selection: 'all messages', state: 'completed' });
    // A second round increments x-redriven-count.
    await e.get('orders', { count: 1, ackMode: 'reject' });
    const again = e.startRedrive({ source: 'orders.dlq', all: true });
    await finished(e, again.id);
    const last = e.browse('orders', { limit: 100 }).messages.at(-1)!;
    expect(last.properties.headers?.['x-redriven-count']).toBe(2);
    e.close();
  });

  it('dead letters sharing properties, from two origins, each go back where they died', async () => {
    const e = memEngine();
    e.declareExchange('dlx', { type: 'fanout' });
    e.declareQueue('dlq');
    e.bind({ source: 'dlx', destination: 'dlq' });
    for (const q of ['a', 'b']) e.declareQueue(q, { arguments: { 'x-dead-letter-exchange': 'dlx' } });
    for (let i = 0; i < 6; i++) {
      const q = i % 4 < 2 ? 'a' : 'b';
      await e.publish({ exchange: '', routingKey: q, body: b(`m${i}`), properties: { deliveryMode: 2 } });
      await e.get(q, { count: 1, ackMode: 'reject' });
    }
    const { id } = e.startRedrive({ source: 'dlq', all: true });
    expect(await finished(e, id)).toMatchObject({ state: 'completed', moved: 6, failed: 0 });
    expect(bodies(e, 'a')).toEqual(['m0', 'm1', 'm4', 'm5']);
    expect(bodies(e, 'b')).toEqual(['m2', 'm3']);
    for (const q of ['a', 'b']) {
      for (const m of e.browse(q, { limit: 10 }).messages) {
        expect(m.properties.headers?.['x-redriven-count']).toBe(1);
        expect((m.properties.headers?.['x-death'] as FieldTable[])[0]).toMatchObject({ queue: q, reason: 'rejected' });
        expect(m.properties.deliveryMode).toBe(2);
      }
    }
    e.close();
  });

  it('selected ids, a chosen target, and a single edited message', async () => {
    const e = memEngine();
    await withDeadLetters(e, 5);
    e.declareQueue('manual');
    const ids = e.browse('orders.dlq', { limit: 10 }).messages.map((m) => m.id);
    const r1 = e.startRedrive({ source: 'orders.dlq', messageIds: [ids[1]!, ids[3]!, '999999'], target: { exchange: '', routingKey: 'manual' } });
    expect(await finished(e, r1.id)).toMatchObject({ moved: 2, failed: 1, total: 3, target: '/manual' });
    expect(bodies(e, 'manual')).toEqual(['order-1', 'order-3']);
    expect(() => e.startRedrive({ source: 'orders.dlq', messageIds: [ids[0]!, ids[2]!], edit: { body: 'x' } })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', field: 'edit' }));
    const r2 = e.startRedrive({ source: 'orders.dlq', messageIds: [ids[0]!], edit: { body: 'fixed', headers: { patched: true } } });
    await finished(e, r2.id);
    const fixed = e.browse('orders', { limit: 10 }).messages.find((m) => m.body.toString() === 'fixed')!;
    expect(fixed.properties.headers?.patched).toBe(true);
    expect(bodies(e, 'orders.dlq')).toEqual(['order-2', 'order-4']);
    expect(() => e.startRedrive({ source: 'nope', all: true })).toThrow(expect.objectContaining({ code: 'NOT_FOUND', field: 'source' }));
    expect(() => e.startRedrive({ source: 'orders.dlq' })).toThrow(expect.objectContaining({ field: 'messageIds' }));
    e.close();
  });

  it('selects by filter', async () => {
    const e = memEngine();
    await withDeadLetters(e, 20);
    const { id } = e.startRedrive({ source: 'orders.dlq', filter: { q: 'order-1' } });
    const job = await finished(e, id);
    expect(job).toMatchObject({ moved: 11, total: 11 }); // order-1, order-10..19
    expect(bodies(e, 'orders.dlq')).toEqual(Array.from({ length: 9 }, (_, i) => `order-${i === 0 ? 0 : i + 1}`));
    e.close();
  });

  it('rate limits and can be cancelled; nothing is lost or doubled', async () => {
    const e = memEngine();
    await withDeadLetters(e, 100);
    const { id } = e.startRedrive({ source: 'orders.dlq', all: true, ratePerSecond: 50 });
    await waitFor(() => e.getRedrive(id).moved >= 10);
    const mid = e.getRedrive(id);
    expect(mid.state).toBe('running');
    expect(mid.moved).toBeLessThan(100);
    const cancelled = e.cancelRedrive(id);
    expect(cancelled.state).toBe('cancelled');
    await new Promise((r) => setTimeout(r, 150));
    const moved = e.getRedrive(id).moved;
    expect(moved).toBe(cancelled.moved);
    const back = bodies(e, 'orders');
    const left = bodies(e, 'orders.dlq');
    expect(back.length).toBe(moved);
    expect([...back, ...left].sort()).toEqual(Array.from({ length: 100 }, (_, i) => `order-${i}`).sort());
    expect(e.listRedrives()[0]!.id).toBe(id);
    e.close();
  });

  it('resumes an unfinished job after a restart', async () => {
    const tmp = tempDir();
    try {
      let e = Engine.open({ dataDir: tmp.dir, timers: false });
      await withDeadLetters(e, 60);
      const { id } = e.startRedrive({ source: 'orders.dlq', all: true, ratePerSecond: 40 });
      await waitFor(() => e.getRedrive(id).moved > 0);
      e.close();
      e = Engine.open({ dataDir: tmp.dir, timers: false });
      const at = e.getRedrive(id);
      expect(at.state).toBe('running');
      expect(at.moved).toBeGreaterThan(0);
      expect(bodies(e, 'orders').length + bodies(e, 'orders.dlq').length).toBe(60);
      e.close();
      // Resume without pacing by reopening fast: the job keeps its rate, so wait for it.
      e = Engine.open({ dataDir: tmp.dir, timers: false });
      const job = await finished(e, id);
      expect(job).toMatchObject({ state: 'completed', moved: 60, failed: 0 });
      expect(bodies(e, 'orders').sort()).toEqual(Array.from({ length: 60 }, (_, i) => `order-${i}`).sort());
      expect(bodies(e, 'orders.dlq')).toEqual([]);
      e.close();
    } finally {
      tmp.cleanup();
    }
  });

  it('leaves messages whose origin is gone, and fails when the source is deleted', async () => {
    const e = memEngine();
    await withDeadLetters(e, 3);
    e.deleteQueue('orders');
    const r = e.startRedrive({ source: 'orders.dlq', all: true });
    expect(await finished(e, r.id)).toMatchObject({ state: 'completed', moved: 0, failed: 3 });
    expect(bodies(e, 'orders.dlq')).toHaveLength(3);
    const slow = e.startRedrive({ source: 'orders.dlq', all: true, ratePerSecond: 1 });
    e.deleteQueue('orders.dlq');
    expect(await finished(e, slow.id)).toMatchObject({ state: 'failed' });
    expect(e.getRedrive(slow.id).error).toMatch(/deleted/);
    expect(() => e.getRedrive('nope')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    e.close();
  });

  it('refuses up front a target queue that does not exist, naming it', async () => {
    const e = memEngine();
    await withDeadLetters(e, 3);
    let error: unknown;
    try {
      e.startRedrive({ source: 'orders.dlq', all: true, target: { exchange: '', routingKey: 'no-such-queue' } });
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'NOT_FOUND', field: 'target.routingKey', message: 're-drive target: queue "no-such-queue" does not exist' });
    expect(e.listRedrives()).toEqual([]);
    expect(bodies(e, 'orders.dlq')).toHaveLength(3);
    e.close();
  });

  it('says why messages were not moved, and keeps saying it after a restart', async () => {
    const { dir, cleanup } = tempDir();
    try {
      let e = Engine.open({ dataDir: dir, timers: false });
      await withDeadLetters(e, 4);
      e.deleteQueue('orders');
      const origin = e.startRedrive({ source: 'orders.dlq', all: true });
      expect(await finished(e, origin.id)).toMatchObject({
        state: 'completed',
        moved: 0,
        failed: 4,
        error: '4 not moved, left in "orders.dlq": its original queue "orders" does not exist (4)',
      });
      // An exchange that routes the key nowhere, and ids that are not there.
      e.declareExchange('nowhere', { type: 'direct' });
      const routed = e.startRedrive({ source: 'orders.dlq', all: true, target: { exchange: 'nowhere', routingKey: 'k' } });
      expect((await finished(e, routed.id)).error).toBe('4 not moved, left in "orders.dlq": exchange "nowhere" routes routing key "k" to no queue (4)');
      e.declareQueue('elsewhere', { arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
      const ids = e.browse('orders.dlq').messages.map((m) => m.id);
      const some = e.startRedrive({ source: 'orders.dlq', messageIds: [...ids, '12345'], target: { exchange: '', routingKey: 'elsewhere' } });
      const done = await finished(e, some.id);
      expect(done).toMatchObject({ state: 'completed', moved: 1, failed: 4 });
      expect(done.error).toBe(
        '4 not moved, left in "orders.dlq": queue "elsewhere" is full (x-max-length or x-max-length-bytes with x-overflow reject-publish) (3); no longer in "orders.dlq" (1)',
      );
      e.close();
      e = Engine.open({ dataDir: dir, timers: false });
      expect(e.getRedrive(origin.id).error).toBe('4 not moved, left in "orders.dlq": its original queue "orders" does not exist (4)');
      expect(e.getRedrive(some.id)).toMatchObject({ failed: 4, error: done.error });
      expect(bodies(e, 'orders.dlq')).toHaveLength(3);
      e.close();
    } finally {
      cleanup();
    }
  });
});
