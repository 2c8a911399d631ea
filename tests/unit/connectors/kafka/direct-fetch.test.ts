/**
 * Reading a partition's record bytes as a Fetch response carries them: plain
 * batches (written by the embedded broker's listener and by the re-drive's
 * writer), compressed ones (written by the client library), transactions
 * committed and aborted with their control markers, a batch cut off at the
 * end, and bytes that do not hold together.
 */
import { createRecordsBatch, Reader, readRecordsBatch } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { CorruptRecordsError, FetchedRecord, lastHeaderText, readBatches } from '../../../../src-main/connectors/kafka/direct-fetch.js';
import { encodeBatch, type DirectRecord } from '../../../../src-main/connectors/kafka/direct-produce.js';
import type { RawRecord } from '../../../../src-main/connectors/kafka/records.js';
import { buildBatch, withBaseOffset } from '../../../../src-main/protocols/kafka/codec/record-batch.js';

const b = (s: string) => Buffer.from(s, 'utf8');

function records(n: number, start = 0): DirectRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    topic: 't',
    partition: 0,
    key: (start + i) % 4 === 0 ? null : b(`k${start + i}`),
    value: (start + i) % 5 === 0 ? null : b(`value ${start + i} `.repeat((start + i) % 50)),
    headers: [[b('h'), b(`${start + i}`)], [b('nothing'), null]],
    extra: [],
  }));
}

/** A batch of the re-drive's writer, placed at `base` with the given attributes and producer id (the CRC is not checked by readers). */
function batchAt(base: number, rs: DirectRecord[], opts: { producerId?: bigint; transactional?: boolean; control?: boolean } = {}): Buffer {
  const batch = withBaseOffset(encodeBatch(rs, 1_700_000_000_000, { producerId: opts.producerId ?? -1n, producerEpoch: 0 }, 0), base);
  let attributes = 0;
  if (opts.transactional) attributes |= 0x10;
  if (opts.control) attributes |= 0x20;
  batch.writeInt16BE(attributes, 21);
  return batch;
}

function read(data: Buffer, from = 0, aborted: Array<{ producerId: bigint; firstOffset: number }> = []): { out: RawRecord[]; next: number } {
  const out: RawRecord[] = [];
  const next = readBatches(data, 3, from, aborted, out);
  return { out, next };
}

describe('direct fetch: reading record batches', () => {
  it('reads plain batches exactly as the library does, from an offset inside the first', () => {
    const data = Buffer.concat([batchAt(100, records(30)), batchAt(130, records(20, 30))]);
    const { out, next } = read(data, 105);
    expect(next).toBe(150);
    expect(out.map((r) => r.offset)).toEqual(Array.from({ length: 45 }, (_, i) => 105 + i));
    // The library's reader of the same bytes, record by record.
    const lib: RawRecord[] = [];
    const reader = Reader.from(data);
    while (reader.remaining > 0) {
      const batch = readRecordsBatch(reader);
      for (const r of batch.records) {
        const offset = Number(batch.firstOffset) + r.offsetDelta;
        if (offset >= 105) lib.push({ partition: 3, offset, timestamp: Number(batch.firstTimestamp) + Number(r.timestampDelta), key: r.key?.length ? r.key : null, value: r.value ?? null, headers: r.headers as RawRecord['headers'] });
      }
    }
    expect(out.map((r) => [r.offset, r.timestamp, r.key?.toString() ?? null, r.value?.toString() ?? null, r.headers.map(([k, v]) => [k.toString(), v?.toString() ?? null])])).toEqual(
      lib.map((r) => [r.offset, r.timestamp, r.key?.toString() ?? null, r.value?.length ? r.value.toString() : null, r.headers.map(([k, v]) => [k.toString(), v?.length ? v.toString() : null])]),
    );
  });

  it('finds the last header of a name in place, skipping null values, as the decoded headers would', () => {
    const rs: DirectRecord[] = [
      { topic: 't', partition: 0, key: null, value: null, headers: [[b('a'), b('one')], [b('kafka_dlt-original-topic'), b('orders')], [b('b'), null]], extra: [] },
      { topic: 't', partition: 0, key: null, value: null, headers: [[b('__connect.errors.topic'), b('first')], [b('kafka_dlt-original-topic'), b('second')], [b('kafka_dlt-original-topic'), null]], extra: [] },
      { topic: 't', partition: 0, key: null, value: null, headers: [[b('other'), b('x')]], extra: [] },
      { topic: 't', partition: 0, key: null, value: null, headers: [], extra: [] },
    ];
    const { out } = read(batchAt(0, rs));
    const names = [b('kafka_dlt-original-topic'), b('__connect.errors.topic')];
    expect(out.map((r) => lastHeaderText(r as FetchedRecord, names))).toEqual(['orders', 'second', null, null]);
    expect(out[1]!.headers.map(([k, v]) => [k.toString(), v?.toString() ?? null])).toEqual([
      ['__connect.errors.topic', 'first'],
      ['kafka_dlt-original-topic', 'second'],
      ['kafka_dlt-original-topic', null],
    ]);
  });

  it('reads the listener’s batches, with timestamps per record', () => {
    const batch = buildBatch(7, [
      { offset: 7, timestamp: 1000, key: b('a'), value: b('x'), headers: [['h', b('1')]] },
      { offset: 8, timestamp: 1000 + 2 ** 40, key: null, value: null, headers: [] },
    ]);
    const { out, next } = read(batch);
    expect(next).toBe(9);
    expect(out.map((r) => [r.offset, r.timestamp, r.key?.toString() ?? null])).toEqual([
      [7, 1000, 'a'],
      [8, 1000 + 2 ** 40, null],
    ]);
  });

  it('reads compressed batches through the library', () => {
    for (const compression of ['gzip', 'snappy', 'lz4'] as const) {
      const messages = Array.from({ length: 12 }, (_, i) => ({ topic: 't', partition: 0, key: b(`k${i}`), value: b(`v${i}`.repeat(100)), headers: new Map([[b('h'), b(String(i))]]), timestamp: 5000n }));
      const batch = withBaseOffset(Buffer.from(createRecordsBatch(messages, { compression }).buffer), 40);
      const { out, next } = read(Buffer.concat([batch, batchAt(52, records(3))]), 45);
      expect(next, compression).toBe(55);
      expect(out.map((r) => r.offset), compression).toEqual([45, 46, 47, 48, 49, 50, 51, 52, 53, 54]);
      expect(out[0]!.value?.toString(), compression).toBe('v5'.repeat(100));
      expect(out[0]!.headers.map(([k, v]) => [k.toString(), v?.toString()]), compression).toEqual([['h', '5']]);
    }
  });

  it('leaves out aborted transactions and control batches, keeps committed ones', () => {
    const data = Buffer.concat([
      batchAt(0, records(2), { producerId: 7n, transactional: true }), // 0-1 committed below
      batchAt(2, records(2, 2), { producerId: 9n, transactional: true }), // 2-3 aborted
      batchAt(4, records(1, 4), { producerId: 7n, transactional: true, control: true }), // 4 commit marker
      batchAt(5, records(1, 5), { producerId: 9n, transactional: true, control: true }), // 5 abort marker
      batchAt(6, records(2, 6), { producerId: 9n, transactional: true }), // 6-7 a later transaction of 9, committed
      batchAt(8, records(2, 8)), // 8-9 not transactional
    ]);
    const { out, next } = read(data, 0, [{ producerId: 9n, firstOffset: 2 }]);
    expect(next).toBe(10);
    expect(out.map((r) => r.offset)).toEqual([0, 1, 6, 7, 8, 9]);
  });

  it('leaves a batch cut off at the end for the next read', () => {
    const whole = Buffer.concat([batchAt(0, records(5)), batchAt(5, records(5, 5))]);
    const { out, next } = read(whole.subarray(0, whole.length - 10));
    expect(out.map((r) => r.offset)).toEqual([0, 1, 2, 3, 4]);
    expect(next).toBe(5);
    expect(read(Buffer.alloc(0), 17).next).toBe(17);
  });

  it('refuses bytes that do not hold together, naming what is wrong', () => {
    const good = batchAt(0, records(3));
    const longRecord = Buffer.from(good);
    longRecord[61] = 0x7e; // the first record's length: far past the batch
    expect(() => read(longRecord)).toThrow(CorruptRecordsError);
    const shortBatch = Buffer.from(good);
    shortBatch.writeInt32BE(10, 8);
    expect(() => read(shortBatch)).toThrow(/claims 22 bytes/);
    const manyHeaders = batchAt(0, [{ topic: 't', partition: 0, key: null, value: null, headers: [], extra: [] }]);
    manyHeaders[manyHeaders.length - 1] = 0x7e; // header count 63, with no bytes left
    expect(() => read(manyHeaders)).toThrow(/headers/);
  });
});
