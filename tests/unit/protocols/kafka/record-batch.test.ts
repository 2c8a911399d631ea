/**
 * Record batches v2: what the broker writes reads back unchanged with a valid
 * CRC-32C; a flipped byte is caught by the CRC; compressed batches as clients
 * write them (gzip, snappy raw and in the Java client's framing, LZ4 frames)
 * decompress to their records.
 */
import zlib from 'node:zlib';
import fc from 'fast-check';
import { compressFrameSync } from 'lz4-napi';
import { compressSync as snappy } from 'snappy';
import { crc32c } from '@node-rs/crc32';
import { describe, expect, it } from 'vitest';
import { BatchError, buildBatch, checkCrc, readRecords, splitBatches } from '../../../../src-main/protocols/kafka/codec/record-batch.js';

const bytes = fc.option(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), { nil: null });
const recordsArb = fc.array(
  fc.record({
    key: bytes,
    value: bytes,
    gap: fc.integer({ min: 1, max: 3 }),
    dt: fc.integer({ min: 0, max: 100_000 }),
    headers: fc.array(fc.tuple(fc.string({ maxLength: 10 }), bytes), { maxLength: 3 }),
  }),
  { minLength: 1, maxLength: 30 },
);

function layout(rs: Array<{ key: Buffer | null; value: Buffer | null; gap: number; dt: number; headers: Array<[string, Buffer | null]> }>, base: number) {
  let offset = base;
  return rs.map((r, i) => {
    if (i > 0) offset += r.gap;
    return { offset, timestamp: 1_700_000_000_000 + r.dt, key: r.key, value: r.value, headers: r.headers };
  });
}

describe('Kafka record batches', () => {
  it('read back what was written, offsets, timestamps, keys, values and headers', () => {
    fc.assert(
      fc.property(recordsArb, fc.nat({ max: 1_000_000 }), (rs, base) => {
        const records = layout(rs, base);
        const batch = buildBatch(base, records);
        const [{ header, bytes: b }] = splitBatches(batch) as [ReturnType<typeof splitBatches>[number]];
        checkCrc(b, header);
        expect(Number(header.baseOffset)).toBe(base);
        expect(header.recordCount).toBe(records.length);
        expect(header.lastOffsetDelta).toBe(records[records.length - 1]!.offset - base);
        const back = readRecords(b, header, 1 << 20);
        expect(back.map((r) => ({ offset: base + r.offsetDelta, timestamp: r.timestamp, key: r.key, value: r.value, headers: r.headers }))).toEqual(records);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a batch whose bytes do not match its CRC', () => {
    const batch = buildBatch(0, [{ offset: 0, timestamp: 1, key: null, value: Buffer.from('hello'), headers: [] }]);
    batch[batch.length - 2] = batch[batch.length - 2]! ^ 0xff;
    const [{ header, bytes: b }] = splitBatches(batch) as [ReturnType<typeof splitBatches>[number]];
    expect(() => checkCrc(b, header)).toThrow(BatchError);
  });

  it.each([
    ['gzip', 1, (d: Buffer) => zlib.gzipSync(d)],
    ['snappy', 2, (d: Buffer) => snappy(d)],
    ['snappy (xerial framing)', 2, (d: Buffer) => {
      const block = snappy(d);
      const head = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);
      const len = Buffer.alloc(4);
      len.writeInt32BE(block.length, 0);
      return Buffer.concat([head, len, block]);
    }],
    ['lz4', 3, (d: Buffer) => compressFrameSync(d)],
  ] as const)('reads %s-compressed records', (_name, codec, compress) => {
    const records = layout([1, 2, 3].map((i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(`value ${i}`.repeat(20)), gap: 1, dt: i, headers: [['h', Buffer.from('x')]] as Array<[string, Buffer | null]> })), 10);
    const plain = buildBatch(10, records);
    const body = compress(plain.subarray(61));
    const batch = Buffer.concat([plain.subarray(0, 61), body]);
    batch.writeInt32BE(batch.length - 12, 8);
    batch.writeInt16BE(codec, 21);
    batch.writeUInt32BE(crc32c(batch.subarray(21)) >>> 0, 17);
    const [{ header, bytes: b }] = splitBatches(batch) as [ReturnType<typeof splitBatches>[number]];
    checkCrc(b, header);
    expect(readRecords(b, header, 1 << 20).map((r) => r.value!.toString())).toEqual(records.map((r) => r.value!.toString()));
  });
});
