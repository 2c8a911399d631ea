/**
 * Fetch responses read straight into Brokerdeck's records. The client
 * library reads every record into an object of its own (its timestamp delta
 * a BigInt, each field through growable buffers) that Brokerdeck then copies
 * into a RawRecord; for re-drives and scans of whole topics that reading was
 * the largest cost after the sending. Here the uncompressed batches of a
 * response are read once, in place: key, value and header bytes are views of
 * the response's buffer.
 *
 * The rest stays the library's: the request (its Fetch v13–v17 writers),
 * the connection to the leader (TLS, SASL, framing), and the reading of
 * compressed batches (its decompressors). Reads are `read_committed`, as the
 * library's consumer reads: records of aborted transactions are left out
 * using the response's aborted-transaction list, as Kafka's Java consumer
 * does, and control batches are skipped.
 */
import { fetchV13, fetchV14, fetchV15, fetchV16, fetchV17, Reader, readRecordsBatch, ResponseError, type Connection } from '@platformatic/kafka';
import type { EncodedHeaders, RawHeader, RawRecord } from './records.js';
import { collectRecords } from './records.js';

const FETCH = 1;
const WRITERS = { 13: fetchV13, 14: fetchV14, 15: fetchV15, 16: fetchV16, 17: fetchV17 } as const;
type Version = keyof typeof WRITERS;
const READ_COMMITTED = 1;

const BATCH_HEADER = 61;
const COMPRESSION = 0x07;
const LOG_APPEND_TIME = 0x08;
const TRANSACTIONAL = 0x10;
const CONTROL = 0x20;

/** The highest Fetch version both the library writes and the broker takes (13 and up: topics by id), or null. */
export function fetchVersion(apis: Array<{ apiKey: number; minVersion: number; maxVersion: number }>): Version | null {
  const fetch = apis.find((a) => a.apiKey === FETCH);
  if (!fetch) return null;
  for (let v = 17; v >= 13; v--) if (v >= fetch.minVersion && v <= fetch.maxVersion) return v as Version;
  return null;
}

export interface FetchAsk {
  partition: number;
  offset: number;
  maxBytes: number;
  leaderEpoch: number;
}

export interface FetchedRaw {
  partition: number;
  errorCode: number;
  highWatermark: number;
  lastStable: number;
  logStart: number;
  records: RawRecord[];
  /** Where the next read of this partition starts. */
  next: number;
}

/** A batch or record that does not hold together. */
export class CorruptRecordsError extends Error {
  constructor(what: string) {
    super(`the broker sent a record batch that cannot be read: ${what}`);
    this.name = 'CorruptRecordsError';
  }
}

/**
 * One Fetch of `asks` from one topic on a connection to their leader; a
 * response with a top-level or partition error other than
 * OFFSET_OUT_OF_RANGE is thrown as the library's ResponseError (with the
 * partitions read), so callers handle errors as they would the library's.
 */
export function directFetch(
  connection: Connection,
  version: Version,
  topicId: string,
  asks: FetchAsk[],
  options: { maxWaitMs: number; maxBytes: number },
): Promise<FetchedRaw[]> {
  const from = new Map(asks.map((a) => [a.partition, a.offset]));
  const parse = (_correlationId: number, apiKey: number, apiVersion: number, reader: Reader): FetchedRaw[] => {
    const errors: Array<[string, [number, null]]> = [];
    reader.readInt32(); // throttle time
    const errorCode = reader.readInt16();
    if (errorCode !== 0) errors.push(['', [errorCode, null]]);
    reader.readInt32(); // session id
    const out: FetchedRaw[] = [];
    reader.readArray((r, i) => {
      r.readUUID();
      r.readArray((r, j) => {
        const partition = r.readInt32();
        const code = r.readInt16();
        const highWatermark = Number(r.readInt64());
        const lastStable = Number(r.readInt64());
        const logStart = Number(r.readInt64());
        const aborted = r.readArray((r) => ({ producerId: r.readInt64(), firstOffset: Number(r.readInt64()) }));
        r.readInt32(); // preferred read replica
        const size = r.readUnsignedVarInt() - 1;
        const start = from.get(partition) ?? 0;
        const records: RawRecord[] = [];
        let next = start;
        if (size > 0) {
          next = readBatches(r.buffer.slice(r.position, r.position + size), partition, start, aborted, records);
          r.skip(size);
        }
        if (code !== 0 && code !== 1) errors.push([`/responses/${i}/partitions/${j}`, [code, null]]);
        out.push({ partition, errorCode: code, highWatermark, lastStable: lastStable >= 0 ? lastStable : highWatermark, logStart, records, next });
      });
    });
    if (errors.length > 0) throw new ResponseError(apiKey, apiVersion, Object.fromEntries(errors), { responses: out });
    return out;
  };
  const request = () =>
    WRITERS[version].createRequest(
      options.maxWaitMs,
      1,
      options.maxBytes,
      READ_COMMITTED,
      0,
      -1,
      [
        {
          topicId,
          partitions: asks.map((a) => ({ partition: a.partition, currentLeaderEpoch: a.leaderEpoch, fetchOffset: BigInt(a.offset), lastFetchedEpoch: -1, partitionMaxBytes: a.maxBytes })),
        },
      ],
      [],
      '',
    );
  return new Promise((resolve, reject) => {
    connection.send(FETCH, version, request, parse, true, true, (error: Error | null, result: unknown) => (error ? reject(error) : resolve(result as FetchedRaw[])));
  });
}

// The record being read: its buffer and position (module state, so reading allocates nothing).
const NOTHING = Buffer.alloc(0);
let buf: Buffer = NOTHING;
let pos = 0;
let end = 0;

function varint(): number {
  let result = 0;
  let shift = 0;
  let byte: number;
  do {
    if (pos >= end) throw new CorruptRecordsError('a varint runs past its record');
    byte = buf[pos++]!;
    if (shift < 28) result |= (byte & 0x7f) << shift;
    else result += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80 && shift < 35);
  result >>>= 0;
  return (result >>> 1) ^ -(result & 1);
}

function varlong(): number {
  let result = 0;
  let shift = 0;
  let byte: number;
  do {
    if (pos >= end) throw new CorruptRecordsError('a varint runs past its record');
    byte = buf[pos++]!;
    result += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80 && shift < 70);
  return result % 2 === 1 ? -(result + 1) / 2 : result / 2;
}

function bytes(): Buffer | null {
  const n = varint();
  if (n < 0) return null;
  if (pos + n > end) throw new CorruptRecordsError(`a field of ${n} bytes runs past its record`);
  const b = buf.subarray(pos, pos + n);
  pos += n;
  return b;
}

/** Moves past a field; its length, or -1 for null. */
function skipBytes(): number {
  const n = varint();
  if (n < 0) return -1;
  if (pos + n > end) throw new CorruptRecordsError(`a field of ${n} bytes runs past its record`);
  pos += n;
  return n;
}

/**
 * A record read in place. Its headers stay bytes of the response (each name
 * and value with its varint length, as a record batch holds them) until
 * something asks for `headers`: a re-drive writes those bytes back as they
 * are (see `EncodedHeaders`), and only filters and views decode them.
 */
export class FetchedRecord implements RawRecord, EncodedHeaders {
  private decoded: RawHeader[] | null = null;

  constructor(
    public partition: number,
    public offset: number,
    public timestamp: number,
    public key: Buffer | null,
    public value: Buffer | null,
    readonly headerData: Buffer,
    readonly headersStart: number,
    readonly headersEnd: number,
    readonly headerCount: number,
  ) {}

  get headers(): RawHeader[] {
    return (this.decoded ??= decodeHeaders(this));
  }

  set headers(headers: RawHeader[]) {
    this.decoded = headers;
  }
}

/** Header entries as a record holds them, decoded (names and values are views of the same bytes). */
export function decodeHeaders(h: EncodedHeaders): RawHeader[] {
  const out: RawHeader[] = new Array(h.headerCount);
  const saved = [buf, pos, end] as const;
  buf = h.headerData;
  pos = h.headersStart;
  end = h.headersEnd;
  try {
    for (let i = 0; i < h.headerCount; i++) {
      const k = bytes();
      if (k === null) throw new CorruptRecordsError('a header name is null');
      out[i] = [k, bytes()];
    }
  } finally {
    [buf, pos, end] = saved;
  }
  return out;
}

/** Whether `data` holds `name` at `at` (header names are short: compared here rather than through a native call), from the end, where names of a family differ. */
function sameBytes(data: Buffer, at: number, name: Buffer): boolean {
  for (let i = name.length - 1; i >= 0; i--) if (data[at + i] !== name[i]) return false;
  return true;
}

/** The one-entry memory of `lastHeaderText`: header values such as a topic name repeat from record to record. */
let lastText: { bytes: Buffer; text: string } | null = null;

/** A zigzag varint at `at.p`, which it moves past it. */
function zigzagAt(data: Buffer, limit: number, at: { p: number }): number {
  let z = 0;
  let shift = 0;
  let byte: number;
  do {
    if (at.p >= limit || shift > 28) throw new CorruptRecordsError('a header runs past its record');
    byte = data[at.p++]!;
    z |= (byte & 0x7f) << shift;
    shift += 7;
  } while (byte & 0x80);
  return (z >>> 1) ^ -(z & 1);
}

/**
 * The value, as UTF-8 text, of the last header of a record read in place
 * whose name is one of `names` and whose value is not null; null when there
 * is none. Reads the bytes where they are, without decoding the headers.
 */
export function lastHeaderText(r: FetchedRecord, names: readonly Buffer[]): string | null {
  // Read with a cursor of its own (no shared reader to save and restore): this runs once per record a re-drive moves.
  const data = r.headerData;
  const limit = r.headersEnd;
  const at = { p: r.headersStart };
  let found = -1;
  let foundEnd = -1;
  for (let i = 0; i < r.headerCount; i++) {
    const kLen = zigzagAt(data, limit, at);
    const kStart = at.p;
    at.p += kLen;
    const vLen = zigzagAt(data, limit, at);
    let p = at.p;
    const vStart = p;
    if (vLen > 0) p += vLen;
    if (p > limit || kLen < 0) throw new CorruptRecordsError('a header runs past its record');
    at.p = p;
    if (vLen >= 0) {
      for (let j = 0; j < names.length; j++) {
        const name = names[j]!;
        if (name.length === kLen && sameBytes(data, kStart, name)) {
          found = vStart;
          foundEnd = vStart + vLen;
          break;
        }
      }
    }
  }
  if (found < 0) return null;
  const last = lastText;
  const n = foundEnd - found;
  if (last && last.bytes.length === n && sameBytes(data, found, last.bytes)) return last.text;
  const text = data.toString('utf8', found, foundEnd);
  if (n <= 255) lastText = { bytes: Buffer.from(data.subarray(found, foundEnd)), text };
  return text;
}

/**
 * Appends the data records at or after `from` of a partition's record bytes
 * to `out`, leaving out aborted transactions, and returns the offset after
 * the last whole batch (control and aborted batches included), so a reader
 * always moves forward. A batch cut off at the end of the bytes (the broker
 * fills up to the size asked) is left for the next read.
 */
export function readBatches(data: Buffer, partition: number, from: number, aborted: Array<{ producerId: bigint; firstOffset: number }>, out: RawRecord[]): number {
  let next = from;
  const pendingAborts = [...aborted].sort((a, b) => a.firstOffset - b.firstOffset);
  const abortedProducers = new Set<bigint>();
  let at = 0;
  while (data.length - at >= BATCH_HEADER) {
    const size = 12 + data.readInt32BE(at + 8);
    if (size < BATCH_HEADER) throw new CorruptRecordsError(`a batch of partition ${partition} claims ${size} bytes`);
    if (at + size > data.length) break;
    const base = Number(data.readBigInt64BE(at));
    const attributes = data.readInt16BE(at + 21);
    const last = base + data.readInt32BE(at + 23);
    const producerId = data.readBigInt64BE(at + 43);
    if (last + 1 > next) next = last + 1;
    while (pendingAborts.length > 0 && pendingAborts[0]!.firstOffset <= last) abortedProducers.add(pendingAborts.shift()!.producerId);
    const batchStart = at;
    at += size;
    if ((attributes & CONTROL) !== 0) {
      // The marker ending the producer's transaction (a producer has one open at a time).
      abortedProducers.delete(producerId);
      continue;
    }
    if ((attributes & TRANSACTIONAL) !== 0 && abortedProducers.has(producerId)) continue;
    if (last < from) continue;
    if ((attributes & COMPRESSION) !== 0) {
      collectRecords(partition, [readRecordsBatch(Reader.from(data.subarray(batchStart, at)))], from, out);
      continue;
    }
    const firstTs = Number(data.readBigInt64BE(batchStart + 27));
    const maxTs = Number(data.readBigInt64BE(batchStart + 35));
    const logAppend = (attributes & LOG_APPEND_TIME) !== 0;
    const count = data.readInt32BE(batchStart + 57);
    buf = data;
    pos = batchStart + BATCH_HEADER;
    const batchEnd = at;
    for (let i = 0; i < count; i++) {
      end = batchEnd;
      const length = varint();
      if (length < 0 || pos + length > batchEnd) throw new CorruptRecordsError(`record ${i} of a batch of partition ${partition} claims ${length} bytes`);
      end = pos + length;
      pos++; // attributes
      const timestampDelta = varlong();
      const offset = base + varint();
      if (offset < from) {
        pos = end;
        continue;
      }
      const key = bytes();
      const value = bytes();
      const n = varint();
      if (n < 0 || n > end - pos) throw new CorruptRecordsError(`record ${i} of a batch of partition ${partition} claims ${n} headers`);
      // Checked here, decoded only when asked for (FetchedRecord).
      const headersStart = pos;
      for (let h = 0; h < n; h++) {
        if (skipBytes() < 0) throw new CorruptRecordsError('a header name is null');
        skipBytes();
      }
      const headersEnd = pos;
      pos = end;
      out.push(new FetchedRecord(partition, offset, logAppend ? maxTs : firstTs + timestampDelta, key, value, data, headersStart, headersEnd, n));
    }
  }
  buf = NOTHING;
  return next;
}
