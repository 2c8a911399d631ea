import { describe, it, expect } from 'vitest';
import { Engine } from '../../../src-main/broker/index.js';
import { b, tempDir, settle, collector, clock, waitFor } from './helpers.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const t = tempDir();
  try {
    await fn(t.dir);
  } finally {
    t.cleanup();
  }
}

describe('durability across close/open', () => {
  it('keeps durable definitions and persistent messages; drops transient ones', () =>
    withDir(async (dir) => {
      let e = Engine.open({ dataDir: dir, timers: false });
      e.declareQueue('durable', { durable: true, arguments: { 'x-max-priority': 3 } });
      e.declareQueue('transient', { durable: false });
      e.declareExchange('dx', { type: 'topic', durable: true });
      e.declareExchange('tx', { type: 'fanout', durable: false });
      e.bind({ source: 'dx', destination: 'durable', routingKey: 'a.#' });
      e.bind({ source: 'tx', destination: 'durable' });
      await e.publish({ exchange: 'dx', routingKey: 'a.b', body: b('p1'), properties: { deliveryMode: 2, priority: 1 } });
      await e.publish({ exchange: 'dx', routingKey: 'a.b', body: b('t1'), properties: { deliveryMode: 1 } });
      await e.publish({ exchange: 'dx', routingKey: 'a.b', body: b('p2'), properties: { deliveryMode: 2, priority: 3 } });
      await e.publish({ exchange: '', routingKey: 'durable', body: b('d1'), properties: { deliveryMode: 2, headers: { 'x-delay': 60_000 } } });
      await e.publish({ exchange: '', routingKey: 'transient', body: b('x'), properties: { deliveryMode: 2 } });
      e.close();

      e = Engine.open({ dataDir: dir, timers: false });
      expect(e.listQueues().map((q) => q.name)).toEqual(['durable']);
      expect(e.listExchanges().map((x) => x.name)).toContain('dx');
      expect(e.listExchanges().map((x) => x.name)).not.toContain('tx');
      expect(e.listBindings().filter((x) => x.source !== '')).toEqual([{ source: 'dx', destination: 'durable', destinationType: 'queue', routingKey: 'a.#', arguments: {} }]);
      expect(e.getQueue('durable')).toMatchObject({ messages: 2, ready: 2, delayed: 1, bytes: 4 });
      const got = await e.get('durable', { count: 10, ackMode: 'ack' });
      expect(got.map((m) => m.body.toString())).toEqual(['p2', 'p1']);
      // Still routable after restart.
      expect((await e.publish({ exchange: 'dx', routingKey: 'a.c', body: b('p3'), properties: { deliveryMode: 2 } })).routedQueues).toEqual(['durable']);
      e.close();
    }));

  it('reopened after a store failure (keepTransient), keeps transient definitions and messages too, but not exclusive queues', () =>
    withDir(async (dir) => {
      let e = Engine.open({ dataDir: dir, timers: false });
      e.declareQueue('transient', { durable: false });
      e.declareQueue('mine', { durable: false, exclusive: true, owner: 'conn-1' });
      e.declareExchange('tx', { type: 'fanout', durable: false });
      e.bind({ source: 'tx', destination: 'transient' });
      await e.publish({ exchange: 'tx', routingKey: '', body: b('t1'), properties: { deliveryMode: 1 } });
      await e.publish({ exchange: 'tx', routingKey: '', body: b('p1'), properties: { deliveryMode: 2 } });
      await e.publish({ exchange: '', routingKey: 'transient', body: b('later'), properties: { deliveryMode: 1, headers: { 'x-delay': 60_000 } } });
      e.close();

      e = Engine.open({ dataDir: dir, timers: false, keepTransient: true });
      expect(e.listQueues().map((q) => [q.name, q.durable])).toEqual([['transient', false]]);
      expect(e.listExchanges().find((x) => x.name === 'tx')).toMatchObject({ durable: false });
      expect(e.getQueue('transient')).toMatchObject({ messages: 2, ready: 2, delayed: 1 });
      expect((await e.publish({ exchange: 'tx', routingKey: '', body: b('t2') })).routedQueues).toEqual(['transient']);
      const got = await e.get('transient', { count: 10, ackMode: 'ack' });
      expect(got.map((m) => m.body.toString())).toEqual(['t1', 'p1', 't2']);
      e.close();

      // A restart after that drops them as usual.
      e = Engine.open({ dataDir: dir, timers: false });
      expect(e.listQueues()).toEqual([]);
      e.close();
    }));

  it('unacked messages come back after a restart, marked redelivered, in order', () =>
    withDir(async (dir) => {
      let e = Engine.open({ dataDir: dir, timers: false });
      e.declareQueue('q');
      for (const x of ['1', '2', '3', '4']) await e.publish({ exchange: '', routingKey: 'q', body: b(x), properties: { deliveryMode: 2 } });
      const c = collector();
      e.consume('q', { prefetch: 2 }, c.on);
      await settle(e);
      e.ack(c.deliveries[0]!.deliveryTag);
      e.close();
      e = Engine.open({ dataDir: dir, timers: false });
      expect(e.getQueue('q')).toMatchObject({ messages: 3, ready: 3, unacked: 0 });
      const c2 = collector();
      e.consume('q', { noAck: true }, c2.on);
      await settle(e);
      expect(c2.deliveries.map((d) => [d.body.toString(), d.redelivered, d.deliveryCount])).toEqual([
        ['2', true, 2],
        ['3', false, 1],
        ['4', false, 1],
      ]);
      e.close();
    }));

  it('keeps topics, records and committed offsets', () =>
    withDir(async (dir) => {
      let e = Engine.open({ dataDir: dir, timers: false });
      e.createTopic('t', { partitions: 2, retentionMs: 86_400_000 });
      await e.produce('t', [{ value: b('a'), partition: 1 }, { value: b('b'), partition: 1 }]);
      await e.commitOffsets('g', [{ topic: 't', partition: 1, offset: 1 }]);
      e.close();
      e = Engine.open({ dataDir: dir, timers: false });
      expect(e.listTopics()[0]).toMatchObject({ name: 't', retentionMs: 86_400_000, messages: 2 });
      expect((await e.produce('t', [{ value: b('c'), partition: 1 }]))[0]).toEqual({ partition: 1, offset: 2 });
      expect(e.listGroups()[0]).toMatchObject({ groupId: 'g', state: 'Empty', totalLag: 2 });
      e.close();
    }));

  it('a publish resolves only after its commit; flush commits at once', () =>
    withDir(async (dir) => {
      // A commit interval no test outlasts: nothing but flush() can commit the publish.
      const e = Engine.open({ dataDir: dir, timers: false, groupCommitMs: 600_000 });
      e.declareQueue('q');
      let confirmed = false;
      const p = e.publish({ exchange: '', routingKey: 'q', body: b('x'), properties: { deliveryMode: 2 } }).then(() => (confirmed = true));
      await new Promise((r) => setTimeout(r, 5));
      expect(confirmed).toBe(false);
      e.flush();
      await p;
      expect(confirmed).toBe(true);
      e.close();
      expect(() => e.declareQueue('z')).toThrow(/closed/);
    }));

  it('keeps the minute metric series across a restart', () =>
    withDir(async (dir) => {
      const c = clock(1_700_000_000_000);
      let e = Engine.open({ dataDir: dir, timers: false, now: c.now });
      e.declareQueue('q');
      for (let i = 0; i < 3; i++) {
        await e.publish({ exchange: '', routingKey: 'q', body: b('x'), properties: { deliveryMode: 2 } });
        c.advance(60_000);
        e.tick();
      }
      const hour = e.history({ kind: 'queue', name: 'q' }, 'hour');
      expect(hour.samples.length).toBe(3);
      expect(hour.samples.at(-1)).toMatchObject({ messages: 3, ready: 3 });
      e.close();
      e = Engine.open({ dataDir: dir, timers: false, now: c.now });
      const day = e.history({ kind: 'queue', name: 'q' }, 'day');
      expect(day.intervalMs).toBe(60_000);
      expect(day.samples.map((s) => s.messages)).toEqual([1, 2, 3]);
      expect(e.history({ kind: 'queue', name: 'q' }, 'hour').samples).toEqual([]);
      e.close();
    }));
  it('messages queued behind a busy consumer are stored by their commit, as published', () =>
    withDir(async (dir) => {
      let e = Engine.open({ dataDir: dir, timers: false });
      e.declareQueue('q', { durable: true });
      const c = collector();
      e.consume('q', { prefetch: 1 }, c.on);
      const bodies = ['m1', 'm2', 'm3', 'm4'].map(b);
      const confirms = bodies.map((body) => e.publish({ exchange: '', routingKey: 'q', body, properties: { deliveryMode: 2 } }));
      // The publisher's buffers are its own again once publish returns.
      for (const body of bodies) body.fill(0x78);
      await Promise.all(confirms);
      await settle(e);
      expect(c.bodies()).toEqual(['m1']);
      e.ack(c.deliveries[0]!.deliveryTag);
      await settle(e);
      expect(c.bodies()).toEqual(['m1', 'm2']);
      e.close();

      e = Engine.open({ dataDir: dir, timers: false });
      expect(e.getQueue('q').messages).toBe(3);
      const got = await e.get('q', { count: 10, ackMode: 'ack' });
      expect(got.map((m) => [m.body.toString(), m.redelivered])).toEqual([
        ['m2', true],
        ['m3', false],
        ['m4', false],
      ]);
      e.close();
    }));
});

describe('metrics', () => {
  it('computes rates per second and emits stats', async () => {
    const c = clock();
    const e = Engine.open({ dataDir: null, timers: false, now: c.now });
    e.declareQueue('q');
    e.createTopic('t', { partitions: 1 });
    await e.commitOffsets('g', [{ topic: 't', partition: 0, offset: 0 }]);
    const snaps: number[] = [];
    e.events.on('stats', (s) => snaps.push(s.queues[0]!.rates.publish));
    for (let i = 0; i < 20; i++) await e.publish({ exchange: '', routingKey: 'q', body: b('x') });
    await e.get('q', { count: 5, ackMode: 'ack' });
    c.advance(2000);
    e.tick();
    expect(snaps).toEqual([10]);
    expect(e.getQueue('q').rates).toEqual({ publish: 10, deliver: 2.5, ack: 2.5, redeliver: 0 });
    const s = e.stats();
    expect(s.queues.map((q) => q.name)).toEqual(['q']);
    expect(s.groups.map((g) => g.groupId)).toEqual(['g']);
    expect(e.history({ kind: 'group', name: 'g' }, 'hour').samples[0]).toMatchObject({ lag: 0, timeLagMs: 0 });
    e.close();
  });
});

describe('background timers', () => {
  it('deliver delayed messages and emit stats without manual ticks', async () => {
    const e = Engine.open({ dataDir: null });
    e.declareQueue('q');
    const stats: number[] = [];
    e.events.on('stats', (s) => stats.push(s.at));
    let deliveredAt = 0;
    const c = collector();
    e.consume('q', { noAck: true }, (d) => {
      deliveredAt = Date.now();
      c.on(d);
    });
    const publishedAt = Date.now();
    await e.publish({ exchange: '', routingKey: 'q', body: b('later'), properties: { headers: { 'x-delay': 150 } } });
    await waitFor(() => c.deliveries.length > 0, 30_000);
    expect(c.bodies()).toEqual(['later']);
    // Not before its delay (with a millisecond of timer rounding), however late the machine delivers it.
    expect(deliveredAt - publishedAt).toBeGreaterThanOrEqual(149);
    await waitFor(() => stats.length > 0, 30_000);
    e.close();
  });
});
