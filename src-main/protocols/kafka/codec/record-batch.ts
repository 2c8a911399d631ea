/**
 * Kafka's record batch, message format v2 (implementation.html, "Record Batch"):
 *
 *   baseOffset: int64
 *   batchLength: int32                 bytes after this field
 *   partitionLeaderEpoch: int32
 *   magic: int8                        2
 *   crc: uint32                        CRC-32C of everything after it
 *   attributes: int16                  bits 0-2 compression (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd),
 *                                      3 timestamp type, 4 transactional, 5 control
 *   lastOffsetDelta: int32
 *   baseTimestamp: int64
 *   maxTimestamp: int64
 *   producerId: int64
 *   producerEpoch: int16
 *   baseSequence: int32
 *   recordCount: int32
 *   records: [Record]                  compressed as one block when compression is set
 *
 *   Record: length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
 *           keyLength varint (−1 null), key, valueLength varint (−1 null), value,
 *           headerCount varint, [headerKeyLength varint, headerKey, headerValueLength varint, headerValue]
 *
 * Compressed batches are read through well-kept libraries: zlib (gzip), snappy
 * (raw, or in the xerial framing the Java client writes), lz4-napi (LZ4 frames)
 * and fzstd (Zstandard).
 */
import zlib from 'node:zlib';
import { crc32c } from '@node-rs/crc32';
import { decompress as zstdDecompress } from 'fzstd';
import { decompressFrameSync as lz4Decompress } from 'lz4-napi';
import { uncompressSync as snappyUncompress } from 'snappy';
import { ProtocolError, Reader, Writer } from './primitives.js';

export const BATCH_HEADER_BYTES = 61;
const CRC_START = 21;

export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
const COMPRESSIONS: Compression[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/** A batch could not be read; `code` is Kafka's error for it. */
export class BatchError extends Error {
  constructor(
    readonly code: 'CORRUPT_MESSAGE' | 'UNSUPPORTED_FOR_MESSAGE_FORMAT' | 'UNSUPPORTED_COMPRESSION_TYPE' | 'INVALID_RECORD',
    message: string,
  ) {
    super(message);
    this.name = 'BatchError';
  }
}

export interface BatchHeader {
  baseOffset: bigint;
  /** Bytes of the whole batch, header included. */
  size: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  compression: Compression;
  transactional: boolean;
  control: boolean;
  lastOffsetDelta: number;
  baseTimestamp: bigint;
  maxTimestamp: bigint;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

export interface BatchRecord {
  offsetDelta: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Array<[string, Buffer | null]>;
}

/** Splits a produce request's `records` bytes into batches; a trailing partial batch is an error. */
export function splitBatches(data: Buffer): Array<{ header: BatchHeader; bytes: Buffer }> {
  const out: Array<{ header: BatchHeader; bytes: Buffer }> = [];
  let at = 0;
  while (at < data.length) {
    if (data.length - at < 17) throw new BatchError('CORRUPT_MESSAGE', `record batch truncated at byte ${at}`);
    const magic = data.readInt8(at + 16);
    if (magic !== 2) throw new BatchError('UNSUPPORTED_FOR_MESSAGE_FORMAT', `message format v${magic} is not supported; record batches (v2) are`);
    const length = data.readInt32BE(at + 8);
    const size = 12 + length;
    if (length < BATCH_HEADER_BYTES - 12 || at + size > data.length) throw new BatchError('CORRUPT_MESSAGE', `record batch at byte ${at} claims ${size} bytes, ${data.length - at} are there`);
    const bytes = data.subarray(at, at + size);
    out.push({ header: readHeader(bytes), bytes });
    at += size;
  }
  return out;
}

export function readHeader(b: Buffer): BatchHeader {
  const attributes = b.readInt16BE(21);
  const codec = attributes & 7;
  if (codec >= COMPRESSIONS.length) throw new BatchError('UNSUPPORTED_COMPRESSION_TYPE', `unknown compression codec ${codec}`);
  return {
    baseOffset: b.readBigInt64BE(0),
    size: 12 + b.readInt32BE(8),
    partitionLeaderEpoch: b.readInt32BE(12),
    magic: b.readInt8(16),
    crc: b.readUInt32BE(17),
    attributes,
    compression: COMPRESSIONS[codec]!,
    transactional: (attributes & 0x10) !== 0,
    control: (attributes & 0x20) !== 0,
    lastOffsetDelta: b.readInt32BE(23),
    baseTimestamp: b.readBigInt64BE(27),
    maxTimestamp: b.readBigInt64BE(35),
    producerId: b.readBigInt64BE(43),
    producerEpoch: b.readInt16BE(51),
    baseSequence: b.readInt32BE(53),
    recordCount: b.readInt32BE(57),
  };
}

export function checkCrc(bytes: Buffer, header: BatchHeader): void {
  const actual = crc32c(bytes.subarray(CRC_START)) >>> 0;
  if (actual !== header.crc) throw new BatchError('CORRUPT_MESSAGE', `record batch CRC is ${header.crc}, its bytes give ${actual}`);
}

const XERIAL = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);

function unsnappy(data: Buffer): Buffer {
  if (data.length >= 16 && data.subarray(0, 8).equals(XERIAL)) {
    // The Java client's xerial framing: a 16-byte header, then blocks of [int32 length][snappy data].
    const parts: Buffer[] = [];
    let at = 16;
    while (at + 4 <= data.length) {
      const n = data.readInt32BE(at);
      at += 4;
      if (n < 0 || at + n > data.length) throw new BatchError('CORRUPT_MESSAGE', 'snappy block exceeds the batch');
      parts.push(snappyUncompress(data.subarray(at, at + n)) as Buffer);
      at += n;
    }
    return Buffer.concat(parts);
  }
  return snappyUncompress(data) as Buffer;
}

/** The records block of a batch, decompressed. */
export function recordsBlock(bytes: Buffer, header: BatchHeader, maxBytes: number): Buffer {
  const data = bytes.subarray(BATCH_HEADER_BYTES);
  try {
    switch (header.compression) {
      case 'none':
        return data;
      case 'gzip':
        return zlib.gunzipSync(data, { maxOutputLength: maxBytes });
      case 'snappy':
        return unsnappy(data);
      case 'lz4':
        return lz4Decompress(data);
      case 'zstd':
        return Buffer.from(zstdDecompress(data));
    }
  } catch (error) {
    if (error instanceof BatchError) throw error;
    throw new BatchError('CORRUPT_MESSAGE', `${header.compression} data could not be decompressed: ${(error as Error).message}`);
  }
}

/** Every record of a batch. */
export function readRecords(bytes: Buffer, header: BatchHeader, maxBytes: number): BatchRecord[] {
  const block = recordsBlock(bytes, header, maxBytes);
  const r = new Reader(block);
  const out: BatchRecord[] = [];
  const base = Number(header.baseTimestamp);
  try {
    for (let i = 0; i < header.recordCount; i++) {
      const length = r.varint();
      if (length < 0 || length > r.remaining) throw new ProtocolError(`record ${i} claims ${length} bytes`);
      const end = r.offset + length;
      const rr = new Reader(block, r.offset, end);
      rr.int8();
      const timestamp = base + Number(rr.varlong());
      const offsetDelta = rr.varint();
      const key = varBytes(rr);
      const value = varBytes(rr);
      const n = rr.varint();
      if (n < 0 || n > rr.remaining) throw new ProtocolError(`record ${i} claims ${n} headers`);
      const headers: Array<[string, Buffer | null]> = [];
      for (let h = 0; h < n; h++) {
        const k = varBytes(rr);
        if (k === null) throw new ProtocolError('a header key is null');
        headers.push([k.toString('utf8'), varBytes(rr)]);
      }
      r.offset = end;
      out.push({ offsetDelta, timestamp, key, value, headers });
    }
  } catch (error) {
    throw new BatchError('CORRUPT_MESSAGE', `record batch could not be read: ${(error as Error).message}`);
  }
  return out;
}

function varBytes(r: Reader): Buffer | null {
  const n = r.varint();
  if (n < 0) return null;
  return r.bytesOf(n);
}

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
