import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { murmur2, toPositive, partitionForKey } from '../../../src-main/broker/index.js';
import { memEngine } from '../broker/helpers.js';

// Pairs from Kafka's UtilsTest (Java client), hashes of the UTF-8 bytes.
const VECTORS: Array<[string, number]> = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
  ['', 275646681],
];

describe('Kafka murmur2 partitioner', () => {
  it.each(VECTORS)('murmur2(%j) = %i', (s, h) => {
    expect(murmur2(Buffer.from(s, 'utf8'))).toBe(h);
  });

  it('partition = toPositive(murmur2) % n', () => {
    for (const [s, h] of VECTORS) {
      for (const n of [1, 3, 7, 12, 100]) expect(partitionForKey(Buffer.from(s), n)).toBe((h & 0x7fffffff) % n);
    }
    expect(toPositive(-1)).toBe(0x7fffffff);
    expect(toPositive(-2147483648)).toBe(0);
  });

  it('always returns a 32-bit signed int and a partition in range', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 500 }), (bytes, n) => {
        const h = murmur2(bytes);
        expect(h | 0).toBe(h);
        const p = partitionForKey(bytes, n);
        expect(p).toBeGreaterThanOrEqual(0);
        expect(p).toBeLessThan(n);
      }),
    );
  });

  it('keyed records land on the Java client partition', async () => {
    const e = memEngine();
    e.createTopic('t', { partitions: 12 });
    const res = await e.produce('t', VECTORS.map(([k]) => ({ key: Buffer.from(k), value: Buffer.from('v') })));
    res.forEach((r, i) => expect(r.partition).toBe((VECTORS[i]![1] & 0x7fffffff) % 12));
    e.close();
  });
});
