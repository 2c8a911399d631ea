/**
 * Kafka's record batch, message format v2: writing batches (a fetch's
 * answer), sized exactly before they are written. The format, and reading
 * batches, are in ground/kafka-batch.ts.
 */
import { crc32c } from '@node-rs/crc32';
import { BATCH_HEADER_BYTES, CRC_START } from '../../../ground/kafka-batch.js';
import { Writer } from './primitives.js';

// Reading batches is shared with the embedded broker, which reads the batches it keeps (ground/kafka-batch.ts).
export { BATCH_HEADER_BYTES, BatchError, checkCrc, readHeader, readRecords, recordsBlock, splitBatches, type BatchHeader, type BatchRecord, type Compression } from '../../../ground/kafka-batch.js';

export type HeaderPairs = ReadonlyArray<readonly [string, Buffer | null]>;

/** A record to write into a batch: its offset, time, key and value. */
export interface BatchRecordInput {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
}

/** A record with its headers in order. */
export interface BatchInput extends BatchRecordInput {
  headers: HeaderPairs;
}

/** Zigzag of a signed integer up to 2^52 in magnitude, as a non-negative number. */
function zigzag(v: number): number {
  return v >= 0 ? v * 2 : -v * 2 - 1;
}

/** Bytes of an unsigned varint. */
function uvarintSize(u: number): number {
  let n = 1;
  while (u >= 0x80) {
    u = Math.floor(u / 128);
    n++;
  }
  return n;
}

function putUvarint(b: Buffer, at: number, u: number): number {
  while (u >= 0x80) {
    b[at++] = (u % 128) | 0x80;
    u = Math.floor(u / 128);
  }
  b[at++] = u;
  return at;
}

function putVarBytes(b: Buffer, at: number, v: Buffer | null): number {
  if (v === null) return putUvarint(b, at, 1);
  at = putUvarint(b, at, v.length * 2);
  v.copy(b, at);
  return at + v.length;
}

/**
 * Writes one uncompressed batch (for records that did not arrive as a batch,
 * such as those published from the app). Offsets are relative to the first.
 * Every size is known before a byte is written, so the batch is written once,
 * into a buffer of exactly its size.
 */
export function buildBatch(baseOffset: number, records: readonly BatchInput[]): Buffer;
/** The same, with each record's headers given beside it. */
export function buildBatch(baseOffset: number, records: readonly BatchRecordInput[], headerLists: readonly HeaderPairs[]): Buffer;
export function buildBatch(baseOffset: number, records: readonly BatchRecordInput[], headerLists?: readonly HeaderPairs[]): Buffer {
  const headersAt = (i: number): HeaderPairs => (headerLists ? headerLists[i]! : (records[i] as BatchInput).headers);
  const first = records[0]!;
  let baseTs = first.timestamp;
  let maxTs = first.timestamp;
  for (const r of records) {
    if (r.timestamp < baseTs) baseTs = r.timestamp;
    if (r.timestamp > maxTs) maxTs = r.timestamp;
  }
  // Pass 1: each record's body length (everything after its length varint).
  const lengths = new Array<number>(records.length);
  const headerKeys: Array<Buffer[] | null> = new Array(records.length);
  let total = BATCH_HEADER_BYTES;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const headers = headersAt(i);
    let n = 1 + uvarintSize(zigzag(r.timestamp - baseTs)) + uvarintSize(zigzag(r.offset - baseOffset));
    n += r.key === null ? 1 : uvarintSize(r.key.length * 2) + r.key.length;
    n += r.value === null ? 1 : uvarintSize(r.value.length * 2) + r.value.length;
    n += uvarintSize(headers.length * 2);
    if (headers.length > 0) {
      const keys = headers.map(([k]) => Buffer.from(k, 'utf8'));
      headerKeys[i] = keys;
      headers.forEach(([, v], h) => {
        const k = keys[h]!;
        n += uvarintSize(k.length * 2) + k.length + (v === null ? 1 : uvarintSize(v.length * 2) + v.length);
      });
    } else {
      headerKeys[i] = null;
    }
    lengths[i] = n;
    total += uvarintSize(n * 2) + n;
  }
  // Pass 2: the records, straight into place.
  const out = Buffer.allocUnsafe(total);
  let at = BATCH_HEADER_BYTES;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    at = putUvarint(out, at, lengths[i]! * 2);
    out[at++] = 0;
    at = putUvarint(out, at, zigzag(r.timestamp - baseTs));
    at = putUvarint(out, at, zigzag(r.offset - baseOffset));
    at = putVarBytes(out, at, r.key);
    at = putVarBytes(out, at, r.value);
    const headers = headersAt(i);
    at = putUvarint(out, at, headers.length * 2);
    const keys = headerKeys[i];
    if (keys) {
      for (let h = 0; h < keys.length; h++) {
        at = putVarBytes(out, at, keys[h]!);
        at = putVarBytes(out, at, headers[h]![1]);
      }
    }
  }
  if (at !== total) throw new Error(`record batch size miscounted: ${at} of ${total} bytes written`);
  out.writeBigInt64BE(BigInt(baseOffset), 0);
  out.writeInt32BE(total - 12, 8);
  out.writeInt32BE(0, 12); // partition leader epoch
  out.writeInt8(2, 16); // magic
  out.writeInt16BE(0, 21); // attributes: no compression, create time
  out.writeInt32BE(records[records.length - 1]!.offset - baseOffset, 23);
  out.writeBigInt64BE(BigInt(baseTs), 27);
  out.writeBigInt64BE(BigInt(maxTs), 35);
  out.writeBigInt64BE(-1n, 43); // producer id
  out.writeInt16BE(-1, 51); // producer epoch
  out.writeInt32BE(-1, 53); // base sequence
  out.writeInt32BE(records.length, 57);
  out.writeUInt32BE(crc32c(out.subarray(CRC_START)) >>> 0, 17);
  return out;
}

/** Sets a stored batch's base offset (its CRC does not cover it), returning a copy. */
export function withBaseOffset(bytes: Buffer, baseOffset: number): Buffer {
  const copy = Buffer.from(bytes);
  copy.writeBigInt64BE(BigInt(baseOffset), 0);
  return copy;
}
