import { describe, it, expect } from 'vitest';
import { memEngine, clock, b } from './helpers.js';

describe('streams', () => {
  it('creates topics, appends with offsets, fetches by offset and timestamp', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.createTopic('orders', { partitions: 3 });
    expect(() => e.createTopic('orders', { partitions: 1 })).toThrow(expect.objectContaining({ code: 'CONFLICT' }));
    expect(() => e.createTopic('bad name', { partitions: 1 })).toThrow(expect.objectContaining({ field: 'name' }));
    const offsets: Array<{ partition: number; offset: number }> = [];
    for (let i = 0; i < 6; i++) {
      c.advance(100);
      offsets.push(...(await e.produce('orders', [{ value: b(`v${i}`), partition: 1, headers: { h: 'x', raw: Buffer.from([1]) } }])));
    }
    expect(offsets.map((o) => o.offset)).toEqual([0, 1, 2, 3, 4, 5]);
    const f = e.fetch('orders', 1, { offset: 2, limit: 2 });
    expect(f.records.map((r) => r.value!.toString())).toEqual(['v2', 'v3']);
    expect(f.nextOffset).toBe(4);
    expect(f.records[0]!.headers).toEqual({ h: 'x', raw: Buffer.from([1]) });
    const byTime = e.fetch('orders', 1, { timestamp: c.now() - 150, limit: 10 });
    expect(byTime.records.map((r) => r.offset)).toEqual([4, 5]);
    const t = e.listTopics()[0]!;
    expect(t.partitions.map((p) => p.endOffset)).toEqual([0, 6, 0]);
    expect(t.messages).toBe(6);
    expect(() => e.fetch('orders', 3, {})).toThrow(/partitions 0–2/);
    e.close();
  });

  it('spreads keyless records round-robin and keeps a key on one partition', async () => {
    const e = memEngine();
    e.createTopic('t', { partitions: 4 });
    const keyless = await e.produce('t', Array.from({ length: 8 }, (_, i) => ({ value: b(String(i)) })));
    expect(keyless.map((o) => o.partition)).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
    const keyed = await e.produce('t', Array.from({ length: 5 }, () => ({ key: 'customer-42', value: b('x') })));
    expect(new Set(keyed.map((o) => o.partition)).size).toBe(1);
    e.close();
  });

  it('retention deletes whole old records by time and by size', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.createTopic('r', { partitions: 1, retentionMs: 1000, retentionBytes: 30 });
    for (let i = 0; i < 5; i++) {
      await e.produce('r', [{ value: b('0123456789') }]);
      c.advance(300);
    }
    // size: at most 30 bytes → the 3 newest
    let p = e.listTopics()[0]!.partitions[0]!;
    expect([p.startOffset, p.endOffset, p.bytes]).toEqual([2, 5, 30]);
    c.advance(400); // now = 1900: cutoff 900 removes the records written at 0, 300 and 600
    e.tick();
    p = e.listTopics()[0]!.partitions[0]!;
    expect(p.startOffset).toBe(3);
    expect(e.fetch('r', 0, { offset: 0 }).records.map((r) => r.offset)).toEqual([3, 4]);
    c.advance(1000);
    e.tick();
    expect(e.listTopics()[0]!.partitions[0]).toMatchObject({ startOffset: 5, endOffset: 5, bytes: 0 });
    e.close();
  });

  it('browses across partitions by time with an exact cursor, with filters', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.createTopic('t', { partitions: 3 });
    for (let i = 0; i < 30; i++) {
      c.advance(1);
      await e.produce('t', [{ key: `k${i}`, value: b(JSON.stringify({ i, even: i % 2 === 0 })) }]);
    }
    const seen: number[] = [];
    let cursor: string | undefined;
    do {
      const page = e.browseTopic('t', { limit: 7, ...(cursor ? { cursor } : {}) });
      seen.push(...page.records.map((r) => JSON.parse(r.value!.toString()).i));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => i));
    const filtered = e.browseTopic('t', { limit: 100, filter: { jsonPath: '$.even', jsonEquals: true } });
    expect(filtered.records.length).toBe(15);
    expect(e.browseTopic('t', { limit: 100, filter: { key: 'k1' } }).records.length).toBe(11);
    e.close();
  });

  it('consumer groups: range assignment, commits, lag and time lag', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.createTopic('a', { partitions: 5 });
    e.createTopic('b', { partitions: 2 });
    const j1 = e.joinGroup('g', 'm-1', ['a', 'b']);
    expect(j1.assignments).toEqual([
      { topic: 'a', partition: 0 },
      { topic: 'a', partition: 1 },
      { topic: 'a', partition: 2 },
      { topic: 'a', partition: 3 },
      { topic: 'a', partition: 4 },
      { topic: 'b', partition: 0 },
      { topic: 'b', partition: 1 },
    ]);
    const j2 = e.joinGroup('g', 'm-2', ['a']);
    expect(j2.members).toEqual([
      { memberId: 'm-1', assignments: [{ topic: 'a', partition: 0 }, { topic: 'a', partition: 1 }, { topic: 'a', partition: 2 }, { topic: 'b', partition: 0 }, { topic: 'b', partition: 1 }] },
      { memberId: 'm-2', assignments: [{ topic: 'a', partition: 3 }, { topic: 'a', partition: 4 }] },
    ]);
    for (let i = 0; i < 4; i++) {
      await e.produce('a', [{ value: b(String(i)), partition: 0 }]);
      c.advance(1000);
    }
    await e.commitOffsets('g', [{ topic: 'a', partition: 0, offset: 1 }]);
    let g = e.listGroups().find((x) => x.groupId === 'g')!;
    const p0 = g.partitions.find((p) => p.topic === 'a' && p.partition === 0)!;
    expect(p0).toEqual({ topic: 'a', partition: 0, committed: 1, end: 4, lag: 3, timeLagMs: 3000 });
    expect(g.partitions.find((p) => p.topic === 'a' && p.partition === 1)).toMatchObject({ committed: null, lag: 0, timeLagMs: 0 });
    expect(g.state).toBe('Stable');
    expect(g.totalLag).toBe(3);
    await e.commitOffsets('g', [{ topic: 'a', partition: 0, offset: 4 }]);
    e.leaveGroup('g', 'm-1');
    e.leaveGroup('g', 'm-2');
    g = e.listGroups().find((x) => x.groupId === 'g')!;
    expect(g.state).toBe('Empty');
    // One group alone, as the list shows it; a group that never existed is undefined.
    expect(e.findGroup('g')).toEqual(g);
    expect(e.findGroup('never-joined')).toBeUndefined();
    expect(g.partitions).toEqual([{ topic: 'a', partition: 0, committed: 4, end: 4, lag: 0, timeLagMs: 0 }]);
    await expect(e.commitOffsets('g', [{ topic: 'zz', partition: 0, offset: 1 }])).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'offsets[0].topic' });
    e.close();
  });

  it('emits record events after commit (live tail) and expands placeholders', async () => {
    const e = memEngine();
    e.createTopic('t', { partitions: 1 });
    const events: string[] = [];
    e.events.on('record', (ev) => events.push(`${ev.topic}:${ev.record.offset}:${ev.record.value?.toString()}`));
    await e.produce('t', [{ value: 'n={{i}}' }, { value: 'n={{i}}' }], { placeholders: true });
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual(['t:0:n=1', 't:1:n=2']);
    e.deleteTopic('t');
    expect(e.listTopics()).toEqual([]);
    e.close();
  });

  it('previews and applies a group offset reset, refuses it while the group is active, and deletes the group', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.createTopic('r', { partitions: 2 });
    const t0 = c.now();
    for (let i = 0; i < 10; i++) {
      c.advance(1000);
      await e.produce('r', [{ value: b(String(i)), partition: i % 2 }]);
    }
    // partition 0 holds offsets 0–4 at t0+1000, +3000, …; partition 1 at t0+2000, +4000, …
    await e.commitOffsets('g', [{ topic: 'r', partition: 0, offset: 5 }, { topic: 'r', partition: 1, offset: 2 }]);
    const plan = e.planGroupReset({ groupId: 'g', to: 'earliest' });
    expect(plan).toMatchObject({ groupId: 'g', state: 'Empty', canApply: true, applied: false });
    expect(plan.changes).toEqual([
      { topic: 'r', partition: 0, current: 5, target: 0, end: 5, lagBefore: 0, lagAfter: 5 },
      { topic: 'r', partition: 1, current: 2, target: 0, end: 5, lagBefore: 3, lagAfter: 5 },
    ]);
    // A preview changes nothing.
    expect(e.listGroups()[0]!.totalLag).toBe(3);
    expect(e.planGroupReset({ groupId: 'g', to: 'timestamp', timestamp: t0 + 3500 }).changes.map((x) => x.target)).toEqual([2, 1]);
    expect(e.planGroupReset({ groupId: 'g', to: 'timestamp', timestamp: t0 + 99_000 }).changes.map((x) => x.target)).toEqual([5, 5]);
    expect(e.planGroupReset({ groupId: 'g', to: 'offset', offset: 99, topic: 'r', partitions: [1] }).changes).toEqual([
      { topic: 'r', partition: 1, current: 2, target: 5, end: 5, lagBefore: 3, lagAfter: 0 },
    ]);
    expect(() => e.planGroupReset({ groupId: 'g', to: 'offset' })).toThrow(expect.objectContaining({ field: 'offset' }));
    expect(() => e.planGroupReset({ groupId: 'nope', to: 'latest' })).toThrow(expect.objectContaining({ code: 'NOT_FOUND', field: 'groupId' }));
    expect(() => e.planGroupReset({ groupId: 'g', to: 'latest', topic: 'r', partitions: [7] })).toThrow(expect.objectContaining({ field: 'partitions[0]' }));

    const applied = await e.resetGroupOffsets({ groupId: 'g', to: 'earliest', topic: 'r', partitions: [0] });
    expect(applied.applied).toBe(true);
    expect(e.listGroups()[0]!.partitions.map((p) => [p.partition, p.committed, p.lag])).toEqual([[0, 0, 5], [1, 2, 3]]);
    expect(e.listAudit().some((a) => a.action === 'reset-offsets' && a.source === 'g')).toBe(true);

    e.joinGroup('g', 'm-1', ['r']);
    const busy = e.planGroupReset({ groupId: 'g', to: 'latest' });
    expect(busy.canApply).toBe(false);
    expect(busy.reason).toMatch(/1 active member/);
    await expect(e.resetGroupOffsets({ groupId: 'g', to: 'latest' })).rejects.toMatchObject({ code: 'PRECONDITION_FAILED', field: 'groupId' });
    await expect(e.deleteGroup('g')).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
    e.leaveGroup('g', 'm-1');
    await e.deleteGroup('g');
    expect(e.listGroups()).toEqual([]);
    await expect(e.deleteGroup('g')).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'groupId' });
    e.close();
  });
});
