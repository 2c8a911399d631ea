/**
 * Reading Kafka's record batches, message format v2 (implementation.html, "Record Batch"):
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

export const BATCH_HEADER_BYTES = 61;
export const CRC_START = 21;

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
  const r = new RecordReader(block);
  const out: BatchRecord[] = [];
  const base = Number(header.baseTimestamp);
  try {
    for (let i = 0; i < header.recordCount; i++) {
      const length = r.varint();
      if (length < 0 || length > r.remaining) throw new RecordError(`record ${i} claims ${length} bytes`);
      const end = r.offset + length;
      const rr = new RecordReader(block, r.offset, end);
      rr.int8();
      const timestamp = base + Number(rr.varlong());
      const offsetDelta = rr.varint();
      const key = varBytes(rr);
      const value = varBytes(rr);
      const n = rr.varint();
      if (n < 0 || n > rr.remaining) throw new RecordError(`record ${i} claims ${n} headers`);
      const headers: Array<[string, Buffer | null]> = [];
      for (let h = 0; h < n; h++) {
        const k = varBytes(rr);
        if (k === null) throw new RecordError('a header key is null');
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

function varBytes(r: RecordReader): Buffer | null {
  const n = r.varint();
  if (n < 0) return null;
  return r.bytesOf(n);
}

class RecordError extends Error {}

/** Reads the varints and byte ranges of records (Kafka's zig-zag varint and varlong). */
class RecordReader {
  offset: number;
  constructor(
    private readonly buf: Buffer,
    offset = 0,
    private readonly end = buf.length,
  ) {
    this.offset = offset;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private byte(): number {
    if (this.offset >= this.end) throw new RecordError(`truncated at byte ${this.offset}`);
    return this.buf[this.offset++]!;
  }

  int8(): number {
    const b = this.byte();
    return b > 127 ? b - 256 : b;
  }

  /** Zig-zag varint of at most 32 bits. */
  varint(): number {
    let u = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      u += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (u > 0xffffffff) throw new RecordError('varint exceeds 32 bits');
        return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
      }
    }
    throw new RecordError('varint longer than 5 bytes');
  }

  /** Zig-zag varlong of at most 64 bits. */
  varlong(): bigint {
    let value = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const b = this.byte();
      value |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return (value >> 1n) ^ -(value & 1n);
    }
    throw new RecordError('varlong longer than 10 bytes');
  }

  bytesOf(n: number): Buffer {
    if (n < 0 || this.offset + n > this.end) throw new RecordError(`truncated bytes at byte ${this.offset} (needs ${n}, ${this.end - this.offset} left)`);
    const at = this.offset;
    this.offset += n;
    return this.buf.subarray(at, at + n);
  }
}
