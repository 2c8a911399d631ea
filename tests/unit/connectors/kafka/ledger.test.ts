/**
 * The re-drive ledger's memory of what was re-driven, as a job fills it:
 * offsets acknowledged out of order (each producer lane's batches are spread
 * over a partition), looked up as the job reads on. Its commits to the
 * cluster are tested with a real broker in the Kafka dead-letter suite.
 */
import { describe, expect, it } from 'vitest';
import type { Admin } from '@platformatic/kafka';
import { decodeRanges, encodeRanges, RedriveLedger } from '../../../../src-main/connectors/kafka/ledger.js';
import { silentLogger } from '../../../../src-main/ground/logger.js';

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('re-drive ledger', () => {
  it('answers whether an offset was re-driven, for offsets added in any order', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const next = random(seed);
      // Only memory is used here; nothing talks to a cluster.
      const ledger = new RedriveLedger(null as unknown as Admin, 'orders.DLT', silentLogger);
      const added = new Set<number>();
      for (let i = 0; i < 600; i++) {
        const offset = Math.floor(next() * 400);
        ledger.add(0, offset);
        added.add(offset);
        if (i % 100 === 0) for (let o = 0; o < 420; o++) expect(ledger.has(0, o), `seed ${seed}, offset ${o}`).toBe(added.has(o));
      }
      for (let o = 0; o < 420; o++) expect(ledger.has(0, o), `seed ${seed}, offset ${o}`).toBe(added.has(o));
      expect(ledger.has(1, 0)).toBe(false);
    }
  });

  it('takes a batch of offsets at once as it takes them one by one', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const next = random(seed);
      const one = new RedriveLedger(null as unknown as Admin, 'orders.DLT', silentLogger);
      const many = new RedriveLedger(null as unknown as Admin, 'orders.DLT', silentLogger);
      for (let batch = 0; batch < 40; batch++) {
        // Batches of a lane: offsets spread over the partitions, some already added, a few out of order.
        const records = Array.from({ length: 1 + Math.floor(next() * 60) }, () => ({ partition: Math.floor(next() * 3), offset: Math.floor(next() * 500) }));
        for (const r of records) one.add(r.partition, r.offset);
        many.addAll(records);
        for (let p = 0; p < 3; p++) for (let o = 0; o < 510; o += 7) expect(many.has(p, o), `seed ${seed}, batch ${batch}, ${p}:${o}`).toBe(one.has(p, o));
      }
      for (let p = 0; p < 3; p++) for (let o = 0; o < 510; o++) expect(many.has(p, o), `seed ${seed}, ${p}:${o}`).toBe(one.has(p, o));
    }
  });

  it('writes ranges in a form it reads back', () => {
    const ranges: Array<[number, number]> = [
      [3, 3],
      [5, 90],
      [1_000_000, 1_000_007],
    ];
    expect(decodeRanges(encodeRanges(ranges))).toEqual(ranges);
    expect(decodeRanges('not ours')).toEqual([]);
  });
});
