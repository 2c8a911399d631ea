/**
 * A Kinesis stream's shards as a topic's partitions: a shard's partition number
 * is its index in ListShards order (closed parents included, as long as the
 * stream keeps them), and the shard a record goes to is found as Kinesis finds
 * it: the MD5 digest of the partition key read as a 128-bit big-endian unsigned
 * integer (or the explicit hash key), in the hash-key range of an open shard.
 */
import { createHash } from 'node:crypto';
import { ListShardsCommand, type KinesisClient, type Shard, type StreamDescriptionSummary } from '@aws-sdk/client-kinesis';
import type { PartitionInfo, TopicInfo } from '../../contract/types.js';

export interface ShardEntry {
  /** Index in ListShards order: the partition number. */
  index: number;
  id: string;
  parentShardId: string | null;
  adjacentParentShardId: string | null;
  hashStart: bigint;
  hashEnd: bigint;
  sequenceStart: string;
  /** Set once the shard is closed (split or merged): it takes no new records. */
  sequenceEnd: string | null;
}

export const MAX_HASH_KEY = (1n << 128n) - 1n;

/** The hash key Kinesis derives from a partition key: MD5 of its UTF-8 bytes as a 128-bit big-endian integer. */
export function hashKeyOf(partitionKey: string): bigint {
  return BigInt(`0x${createHash('md5').update(partitionKey, 'utf8').digest('hex')}`);
}

/** The open shard whose hash-key range holds `hashKey`. */
export function shardForHashKey(shards: readonly ShardEntry[], hashKey: bigint): ShardEntry | undefined {
  return shards.find((s) => s.sequenceEnd === null && s.hashStart <= hashKey && hashKey <= s.hashEnd);
}

export function shardForKey(shards: readonly ShardEntry[], partitionKey: string, explicitHashKey?: string): ShardEntry | undefined {
  return shardForHashKey(shards, explicitHashKey !== undefined ? BigInt(explicitHashKey) : hashKeyOf(partitionKey));
}

function entry(s: Shard, index: number): ShardEntry {
  return {
    index,
    id: s.ShardId ?? '',
    parentShardId: s.ParentShardId ?? null,
    adjacentParentShardId: s.AdjacentParentShardId ?? null,
    hashStart: BigInt(s.HashKeyRange?.StartingHashKey ?? '0'),
    hashEnd: BigInt(s.HashKeyRange?.EndingHashKey ?? MAX_HASH_KEY.toString()),
    sequenceStart: s.SequenceNumberRange?.StartingSequenceNumber ?? '',
    sequenceEnd: s.SequenceNumberRange?.EndingSequenceNumber ?? null,
  };
}

/** Pages of ListShards; a page token stands alone (the stream is named on the first call only). */
const MAX_SHARD_PAGES = 100;

export async function listShards(client: KinesisClient, stream: string, call: <T>(fn: () => Promise<T>) => Promise<T>): Promise<ShardEntry[]> {
  const shards: Shard[] = [];
  let token: string | undefined;
  for (let page = 0; page < MAX_SHARD_PAGES; page++) {
    const input = token ? { NextToken: token, MaxResults: 1000 } : { StreamName: stream, MaxResults: 1000 };
    const r = await call(() => client.send(new ListShardsCommand(input)));
    shards.push(...(r.Shards ?? []));
    if (!r.NextToken || r.NextToken === token || (r.Shards ?? []).length === 0) break;
    token = r.NextToken;
  }
  return shards.map(entry);
}

export function partitionInfo(s: ShardEntry): PartitionInfo {
  return {
    partition: s.index,
    startOffset: 0,
    endOffset: 0,
    bytes: 0,
    id: s.id,
    shard: {
      open: s.sequenceEnd === null,
      parentShardId: s.parentShardId,
      adjacentParentShardId: s.adjacentParentShardId,
      hashKeyRange: { start: s.hashStart.toString(), end: s.hashEnd.toString() },
      sequenceRange: { start: s.sequenceStart, end: s.sequenceEnd },
    },
  };
}

/** A stream as a topic: its settings as the topic's configuration, its shards as partitions. Kinesis keeps no record counts. */
export function topicInfo(summary: StreamDescriptionSummary, shards: readonly ShardEntry[]): TopicInfo {
  const open = shards.filter((s) => s.sequenceEnd === null).length;
  return {
    name: summary.StreamName ?? '',
    partitions: shards.map(partitionInfo),
    messages: 0,
    bytes: 0,
    countsUnknown: true,
    config: {
      arn: summary.StreamARN ?? null,
      status: summary.StreamStatus ?? null,
      mode: summary.StreamModeDetails?.StreamMode ?? null,
      'retention.hours': summary.RetentionPeriodHours ?? null,
      'retention.ms': summary.RetentionPeriodHours !== undefined ? summary.RetentionPeriodHours * 3_600_000 : null,
      encryption: summary.EncryptionType ?? null,
      keyId: summary.KeyId ?? null,
      openShards: summary.OpenShardCount ?? open,
      closedShards: shards.length - open,
      consumers: summary.ConsumerCount ?? null,
      createdAt: summary.StreamCreationTimestamp ? summary.StreamCreationTimestamp.toISOString() : null,
      enhancedMetrics: (summary.EnhancedMonitoring ?? []).flatMap((m) => m.ShardLevelMetrics ?? []).join(', ') || null,
    },
  };
}
