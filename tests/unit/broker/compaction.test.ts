import { describe, it, expect } from 'vitest';
import type { Engine } from '../../../src-main/broker/index.js';
import { memEngine, clock, b, tempDir } from './helpers.js';

/** Every record of a partition as "offset key=value" (value "∅" for a tombstone). */
function log(e: Engine, topic: string, partition = 0): string[] {
  return e.fetch(topic, partition, { offset: 0, limit: 10_000 }).records.map((r) => `${r.offset} ${r.key?.toString() ?? '-'}=${r.value?.toString() ?? '∅'}`);
}

/** Ticks until compaction has finished `passes` passes (each tick does bounded work). */
function tickUntilPasses(e: Engine, passes: number, maxTicks = 10_000): void {
  for (let i = 0; i < maxTicks && e.compactionStats().passes < passes; i++) e.tick();
  expect(e.compactionStats().passes).toBeGreaterThanOrEqual(passes);
}

async function produceKeyed(e: Engine, topic: string, pairs: Array<[string, string | null]>): Promise<void> {
  await e.produce(
    topic,
    pairs.map(([k, v]) => ({ key: k, value: v === null ? null : b(v), partition: 0 })),
  );
}

describe('topic compaction', () => {
  it('keeps the latest record per key with offsets unchanged, then drops tombstones after delete.retention.ms', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.createTopic('c', { partitions: 1 });
    e.setTopicConfig('c', { cleanupPolicy: 'compact', deleteRetentionMs: 60_000 });
    await produceKeyed(e, 'c', [
      ['a', 'a1'],
      ['b', 'b1'],
      ['a', 'a2'],
      ['c', 'c1'],
      ['b', null],
      ['a', 'a3'],
      ['d', 'd1'],
    ]);
    tickUntilPasses(e, 1);
    expect(log(e, 'c')).toEqual(['3 c=c1', '4 b=∅', '5 a=a3', '6 d=d1']);
    const t = e.listTopics()[0]!;
    expect(t.partitions[0]).toMatchObject({ startOffset: 0, endOffset: 7 });
    expect(t.config).toMatchObject({ 'cleanup.policy': 'compact', 'delete.retention.ms': 60_000, 'min.compaction.lag.ms': 0 });

    // The tombstone stays until delete.retention.ms after the pass that first covered it.
    c.advance(59_000);
    for (let i = 0; i < 50; i++) e.tick();
    expect(log(e, 'c')).toContain('4 b=∅');
    c.advance(2_000);
    tickUntilPasses(e, 2);
    expect(log(e, 'c')).toEqual(['3 c=c1', '5 a=a3', '6 d=d1']);
    // Reading from a removed offset starts at the next record.
    expect(e.fetch('c', 0, { offset: 0, limit: 1 }).records[0]!.offset).toBe(3);
    e.close();
  });

  it('leaves records within min.compaction.lag.ms alone, and compacts them once they are older', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.createTopic('lag', { partitions: 1 });
    e.setTopicConfig('lag', { cleanupPolicy: 'compact', minCompactionLagMs: 10_000 });
    await produceKeyed(e, 'lag', [
      ['k', 'old'],
      ['k', 'older?'],
    ]);
    c.advance(20_000);
    await produceKeyed(e, 'lag', [
      ['k', 'new'],
      ['j', 'x'],
    ]);
    tickUntilPasses(e, 1);
    // Only the part before the head (records older than the lag) was cleaned: its own older "k" went.
    expect(log(e, 'lag')).toEqual(['1 k=older?', '2 k=new', '3 j=x']);
    c.advance(20_000);
    await produceKeyed(e, 'lag', [['z', 'z']]);
    c.advance(20_000);
    await produceKeyed(e, 'lag', Array.from({ length: 6 }, (_, i): [string, string] => [`f${i}`, 'fill']));
    tickUntilPasses(e, 2);
    expect(log(e, 'lag').slice(0, 3)).toEqual(['2 k=new', '3 j=x', '4 z=z']);
    e.close();
  });

  it('never removes the last record, so a consumer before it always has something to read', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.createTopic('end', { partitions: 1 });
    e.setTopicConfig('end', { cleanupPolicy: 'compact', deleteRetentionMs: 0 });
    await produceKeyed(e, 'end', [
      ['a', '1'],
      ['a', null],
    ]);
    tickUntilPasses(e, 1);
    expect(log(e, 'end')).toEqual(['1 a=∅']);
    // Nothing due until a record follows the tombstone: no passes in the meantime.
    const passes = e.compactionStats().passes;
    for (let i = 0; i < 20; i++) e.tick();
    expect(e.compactionStats().passes).toBe(passes);
    await produceKeyed(e, 'end', [['b', '2']]);
    tickUntilPasses(e, passes + 1);
    expect(log(e, 'end')).toEqual(['2 b=2']);
    e.close();
  });

  it('waits for min.cleanable.dirty.ratio of the log to be dirty', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.createTopic('ratio', { partitions: 1 });
    e.setTopicConfig('ratio', { cleanupPolicy: 'compact' });
    await produceKeyed(e, 'ratio', Array.from({ length: 10 }, (_, i): [string, string] => [`k${i}`, 'v1']));
    tickUntilPasses(e, 1);
    // One superseding record in eleven: below Kafka's default ratio (0.5), no pass.
    await produceKeyed(e, 'ratio', [['k0', 'v2']]);
    for (let i = 0; i < 20; i++) e.tick();
    expect(e.compactionStats().passes).toBe(1);
    expect(log(e, 'ratio')[0]).toBe('0 k0=v1');
    expect(() => e.setTopicConfig('ratio', { minCleanableDirtyRatio: 2 })).toThrow(expect.objectContaining({ field: 'minCleanableDirtyRatio' }));
    e.setTopicConfig('ratio', { minCleanableDirtyRatio: 0.05 });
    expect(e.listTopics()[0]!.config).toMatchObject({ 'min.cleanable.dirty.ratio': 0.05 });
    tickUntilPasses(e, 2);
    expect(log(e, 'ratio')[0]).toBe('1 k1=v1');
    e.close();
  });

  it('refuses records without a key on a compacted topic, naming the field', async () => {
    const e = memEngine();
    e.createTopic('k', { partitions: 1 });
    e.setTopicConfig('k', { cleanupPolicy: 'compact,delete' });
    await expect(e.produce('k', [{ key: 'x', value: 'ok' }, { value: 'no key' }])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'records[1].key' });
    expect(e.listTopics()[0]!.messages).toBe(0);
    expect(() => e.setTopicConfig('k', { cleanupPolicy: 'shred' })).toThrow(expect.objectContaining({ field: 'cleanupPolicy' }));
    e.setTopicConfig('k', { cleanupPolicy: null });
    await e.produce('k', [{ value: 'no key' }]);
    e.close();
  });

  it('does bounded work per tick', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.createTopic('big', { partitions: 1 });
    e.setTopicConfig('big', { cleanupPolicy: 'compact' });
    for (let i = 0; i < 5; i++) await produceKeyed(e, 'big', Array.from({ length: 4000 }, (_, j): [string, string] => [`k${j % 10}`, `v${i}`]));
    e.tick();
    // 20,000 records: one tick cannot finish the pass.
    expect(e.compactionStats().passes).toBe(0);
    tickUntilPasses(e, 1);
    expect(log(e, 'big').length).toBe(10);
    e.close();
  });

  it('browses a compacted topic across gaps, page by page', async () => {
    const c = clock();
    const e = memEngine({ now: c.now });
    e.createTopic('br', { partitions: 2 });
    e.setTopicConfig('br', { cleanupPolicy: 'compact' });
    for (let i = 0; i < 4; i++) {
      c.advance(10);
      await e.produce('br', ['a', 'b', 'c', 'd'].map((k) => ({ key: k, value: b(`${k}${i}`), partition: k < 'c' ? 0 : 1 })));
    }
    tickUntilPasses(e, 2);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const res = e.browseTopic('br', { limit: 1, ...(cursor ? { cursor } : {}) });
      seen.push(...res.records.map((r) => `${r.partition}:${r.offset}:${r.value!.toString()}`));
      if (!res.nextCursor) break;
      cursor = res.nextCursor;
    }
    expect(seen.sort()).toEqual(['0:6:a3', '0:7:b3', '1:6:c3', '1:7:d3']);
    e.close();
  });

  it('keeps the policy and settings across a restart, and compacts again after it', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const c = clock();
      let e = memEngine({ dataDir: dir, now: c.now });
      e.createTopic('p', { partitions: 1 });
      e.setTopicConfig('p', { cleanupPolicy: 'compact', deleteRetentionMs: 5_000, minCompactionLagMs: 1 });
      await produceKeyed(e, 'p', [
        ['a', '1'],
        ['a', '2'],
        ['b', '1'],
      ]);
      e.close();
      e = memEngine({ dataDir: dir, now: c.now });
      expect(e.listTopics()[0]!.config).toMatchObject({ 'cleanup.policy': 'compact', 'delete.retention.ms': 5_000, 'min.compaction.lag.ms': 1 });
      c.advance(10);
      tickUntilPasses(e, 1);
      expect(log(e, 'p')).toEqual(['1 a=2', '2 b=1']);
      e.close();
    } finally {
      cleanup();
    }
  });
});
