/**
 * Publishing to a topic: N copies of a record template (placeholders expand
 * as ground/placeholders defines, in key, value and header values); an explicit partition or the
 * Java client's default partitioner for keyed records (murmur2, so a key
 * lands where a Java producer would put it); keyless records go round-robin.
 * The producer is idempotent with acks=all. Every record's offset is
 * reported: a produce request appends each partition's records contiguously,
 * so offsets follow from each partition's base offset.
 */
import zlib from 'node:zlib';
import type { Producer } from '@platformatic/kafka';
import { partitionForKey } from '../../ground/murmur2.js';
import { compileRecord, type RecordTemplate } from '../../ground/placeholders.js';
import { ApiError } from '../../contract/errors.js';
import type { PublishResult } from '../../contract/types.js';
import type { Args, PublishControl } from '../connector.js';
import { decodeBytes } from '../encoding.js';

/**
 * Records per produce request, and bytes: a million copies never sit in memory
 * at once, and no partition's batch nears the broker's default
 * message.max.bytes (1 MiB), which applies to a whole batch.
 */
const CHUNK_RECORDS = 2_000;
export const CHUNK_BYTES = 768 * 1024;
/** Offsets listed in a result; beyond this only the count is returned. */
export const MAX_REPORTED_OFFSETS = 100_000;

export type Compression = NonNullable<Args<'topics/produce'>['compression']>;

/** Node's zlib has zstd from 22.15 / 23.8 on; the client compresses with it. */
export const zstdAvailable = typeof (zlib as unknown as { zstdCompressSync?: unknown }).zstdCompressSync === 'function';

export function checkCompression(c: Compression | undefined): void {
  if (c === 'zstd' && !zstdAvailable) {
    throw new ApiError('INVALID_ARGUMENT', `zstd compression needs Node.js 22.15 or later (this is ${process.version}): choose gzip, snappy or lz4`, 'compression');
  }
}

/** Java's default for keyed records: `toPositive(murmur2(key)) % partitions`. */
export function javaPartition(key: Uint8Array, partitions: number): number {
  return partitionForKey(key, partitions);
}

export interface OutRecord {
  topic: string;
  partition: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Array<[Buffer, Buffer]>;
  timestamp?: bigint;
}

/**
 * Sends records in order and returns each one's offset. Partitions are
 * decided before sending, so the client's own partitioner never runs.
 */
export async function sendRecords(producer: Producer, records: OutRecord[], compression: Compression | undefined): Promise<number[]> {
  if (records.length === 0) return [];
  const result = await producer.send({
    messages: records.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      ...(r.key !== null ? { key: r.key } : {}),
      ...(r.value !== null ? { value: r.value } : {}),
      // A Map keyed by distinct Buffer objects keeps duplicate header names, as Kafka allows.
      headers: new Map(r.headers),
      ...(r.timestamp !== undefined ? { timestamp: r.timestamp } : {}),
    })),
    acks: -1,
    ...(compression && compression !== 'none' ? { compression } : {}),
    autocreateTopics: false,
  });
  const base = new Map<string, number>();
  for (const o of result.offsets ?? []) base.set(`${o.topic}\u0000${o.partition}`, Number(o.offset));
  const seen = new Map<string, number>();
  return records.map((r) => {
    const k = `${r.topic}\u0000${r.partition}`;
    const i = seen.get(k) ?? 0;
    seen.set(k, i + 1);
    const b = base.get(k);
    return b === undefined ? -1 : b + i;
  });
}

/** The record template of a produce call, as the core compiles it (ground/placeholders defines the expansion). */
export function recordTemplate(a: Args<'topics/produce'>): RecordTemplate {
  const value = a.value === null ? null : a.valueEncoding === 'utf8' ? { text: a.value } : { bytes: decodeBytes(a.value, a.valueEncoding, 'value') };
  return compileRecord(a.key ?? null, value, a.headers);
}

/**
 * Produces `a.count` copies of the template in chunks. With a job's `control`,
 * progress is reported after each chunk the broker acknowledged, and a cancel
 * stops before the next record (what was sent stays sent).
 */
export async function produce(
  producer: Producer,
  partitions: number,
  a: Args<'topics/produce'>,
  template: RecordTemplate = recordTemplate(a),
  control?: PublishControl,
): Promise<PublishResult> {
  checkCompression(a.compression);
  if (a.partition !== undefined && a.partition >= partitions) {
    throw new ApiError('INVALID_ARGUMENT', `topic "${a.topic}" has ${partitions} partition${partitions === 1 ? '' : 's'} (0–${partitions - 1}); there is no partition ${a.partition}`, 'partition');
  }
  const first = template.copy(1);
  // A key that is the same for every copy lands on one partition, computed once.
  const fixedPartition = a.partition ?? (!template.varies && first.key ? javaPartition(first.key, partitions) : null);
  let roundRobin = Math.floor(Math.random() * partitions);

  const offsets: Array<{ partition: number; offset: number }> = [];
  let published = 0;
  let chunk: OutRecord[] = [];
  let chunkBytes = 0;
  const flush = async () => {
    const got = await sendRecords(producer, chunk, a.compression);
    for (let i = 0; i < chunk.length; i++) {
      if (offsets.length < MAX_REPORTED_OFFSETS) offsets.push({ partition: chunk[i]!.partition, offset: got[i]! });
    }
    published += chunk.length;
    chunk = [];
    chunkBytes = 0;
    control?.progress(published, published);
  };
  for (let i = 1; i <= a.count && !control?.signal.aborted; i++) {
    const c = i === 1 ? first : template.copy(i);
    const headers: Array<[Buffer, Buffer]> = c.headers.map(([name, value]) => [Buffer.from(name, 'utf8'), Buffer.from(value, 'utf8')]);
    const partition = fixedPartition ?? (c.key ? javaPartition(c.key, partitions) : roundRobin++ % partitions);
    chunk.push({ topic: a.topic, partition, key: c.key, value: c.value, headers });
    chunkBytes += (c.key?.length ?? 0) + (c.value?.length ?? 0) + headers.reduce((n, [hk, hv]) => n + hk.length + hv.length + 8, 0) + 32;
    if (chunk.length >= CHUNK_RECORDS || chunkBytes >= CHUNK_BYTES) await flush();
  }
  if (chunk.length > 0) await flush();
  return { published, routed: {}, returned: 0, rejected: 0, deduplicated: 0, confirmed: true, offsets };
}
