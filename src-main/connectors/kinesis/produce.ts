/**
 * Publishing to a Kinesis stream: each copy of the record template becomes a
 * record whose partition key is the record key (a random one when there is no
 * key) and whose data is the value. A partition (shard index) or an explicit
 * hash key picks the shard instead of the key's MD5. Copies go out with PutRecords,
 * at most 500 records and 5 MiB per request, one request at a time so records of
 * one key keep their order. Records Kinesis refuses one by one (throughput
 * exceeded, internal failure) are sent again a few times; those still refused are
 * reported per copy. Each record's shard and sequence number are reported.
 */
import { randomUUID } from 'node:crypto';
import { PutRecordsCommand, type KinesisClient, type PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { ApiError } from '../../contract/errors.js';
import type { PublishResult } from '../../contract/types.js';
import type { RecordTemplate } from '../../ground/placeholders.js';
import type { Args, PublishControl } from '../connector.js';
import type { ShardEntry } from './shards.js';

type Call = <T>(fn: () => Promise<T>, notFound?: { what: string; field: string }) => Promise<T>;

export const PUT_RECORDS_MAX = 500;
const PUT_RECORDS_BYTES = 5 * 1024 * 1024;
const RECORD_BYTES = 1024 * 1024;
/** Positions listed in a result; beyond this only the count is returned. */
export const MAX_REPORTED_POSITIONS = 100_000;
const MAX_REPORTED_FAILURES = 1_000;
/** Sends of records Kinesis refused one by one, after the first. */
const RESENDS = 3;

export interface ProduceContext {
  client: KinesisClient;
  call: Call;
  /** The stream's shards, listed again when `fresh` (a record went to a shard not in the last listing). */
  shards: (stream: string, fresh?: boolean) => Promise<ShardEntry[]>;
  /** Waits before a resend; the pause lets a throttled shard recover. */
  pause: (ms: number) => Promise<void>;
}

interface Pending {
  copy: number;
  entry: PutRecordsRequestEntry;
  bytes: number;
}

export async function produceRecords(ctx: ProduceContext, a: Args<'topics/produce'>, template: RecordTemplate, control?: PublishControl): Promise<PublishResult> {
  if (Object.keys(a.headers).length > 0) throw new ApiError('INVALID_ARGUMENT', 'headers: a Kinesis record has no headers, only a partition key (key) and data (value)', 'headers');
  if (a.compression && a.compression !== 'none') throw new ApiError('INVALID_ARGUMENT', 'compression: Kinesis stores the data as given: compress it before, or leave compression out', 'compression');
  if (a.partition !== undefined && a.explicitHashKey !== undefined) {
    throw new ApiError('INVALID_ARGUMENT', 'explicitHashKey: give a partition or an explicit hash key, not both', 'explicitHashKey');
  }
  const stream = a.topic;
  let shards = await ctx.shards(stream, true);
  let explicitHashKey = a.explicitHashKey;
  if (a.partition !== undefined) {
    const shard = shards[a.partition];
    if (!shard) {
      throw new ApiError('INVALID_ARGUMENT', `stream "${stream}" has ${shards.length} shard${shards.length === 1 ? '' : 's'} (partitions 0–${shards.length - 1}); there is no partition ${a.partition}`, 'partition');
    }
    if (shard.sequenceEnd !== null) throw new ApiError('INVALID_ARGUMENT', `partition ${a.partition} (${shard.id}) is closed: it takes no new records`, 'partition');
    // The shard's first hash key sends every record to it.
    explicitHashKey = shard.hashStart.toString();
  }

  const positions: NonNullable<PublishResult['positions']> = [];
  const failures: NonNullable<PublishResult['failures']> = [];
  let failedCount = 0;
  let published = 0;
  let batch: Pending[] = [];
  let batchBytes = 0;

  const indexOf = async (shardId: string): Promise<number> => {
    let found = shards.find((s) => s.id === shardId);
    if (!found) {
      shards = await ctx.shards(stream, true);
      found = shards.find((s) => s.id === shardId);
    }
    return found?.index ?? -1;
  };

  const flush = async () => {
    let pending = batch;
    batch = [];
    batchBytes = 0;
    const placed = new Map<number, { id: string; position: string }>();
    for (let attempt = 0; pending.length > 0; attempt++) {
      const entries = pending.map((p) => p.entry);
      const r = await ctx.call(() => ctx.client.send(new PutRecordsCommand({ StreamName: stream, Records: entries })), { what: `stream "${stream}"`, field: 'topic' });
      const results = r.Records ?? [];
      const again: Pending[] = [];
      for (let k = 0; k < pending.length; k++) {
        const p = pending[k]!;
        const res = results[k];
        if (res?.SequenceNumber && res.ShardId) placed.set(p.copy, { id: res.ShardId, position: res.SequenceNumber });
        else if (attempt < RESENDS && (res?.ErrorCode === 'ProvisionedThroughputExceededException' || res?.ErrorCode === 'InternalFailure')) again.push(p);
        else {
          failedCount++;
          if (failures.length < MAX_REPORTED_FAILURES) failures.push({ copy: p.copy, code: res?.ErrorCode ?? 'Unknown', message: res?.ErrorMessage ?? 'no result for this record' });
        }
      }
      pending = again;
      if (pending.length > 0) await ctx.pause(100 * 2 ** attempt);
    }
    for (const copy of [...placed.keys()].sort((x, y) => x - y)) {
      const at = placed.get(copy)!;
      published++;
      if (positions.length < MAX_REPORTED_POSITIONS) positions.push({ partition: await indexOf(at.id), id: at.id, position: at.position });
    }
    control?.progress(published + failedCount, published);
  };

  for (let i = 1; i <= a.count && !control?.signal.aborted; i++) {
    const c = template.copy(i);
    const key = c.key ? c.key.toString('utf8') : randomUUID();
    if (key.length === 0 || key.length > 256) throw new ApiError('INVALID_ARGUMENT', `key: a Kinesis partition key has 1 to 256 characters, copy ${i} has ${key.length}`, 'key');
    const data = c.value ?? Buffer.alloc(0);
    const bytes = Buffer.byteLength(key, 'utf8') + data.length;
    if (bytes > RECORD_BYTES) throw new ApiError('INVALID_ARGUMENT', `value: a Kinesis record (partition key and data) is at most 1 MiB, copy ${i} has ${bytes} bytes`, 'value');
    const entry: PutRecordsRequestEntry = { PartitionKey: key, Data: data, ...(explicitHashKey !== undefined ? { ExplicitHashKey: explicitHashKey } : {}) };
    if (batch.length > 0 && batchBytes + bytes > PUT_RECORDS_BYTES) await flush();
    batch.push({ copy: i, entry, bytes });
    batchBytes += bytes;
    if (batch.length >= PUT_RECORDS_MAX) await flush();
  }
  if (batch.length > 0) await flush();
  return {
    published,
    routed: { [stream]: published },
    returned: 0,
    rejected: failedCount,
    deduplicated: 0,
    confirmed: true,
    positions,
    ...(failedCount > 0 ? { failures } : {}),
  };
}
