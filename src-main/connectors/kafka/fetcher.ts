/**
 * Reads records straight from partition leaders with Kafka's Fetch API (no
 * consumer group, nothing committed), so browsing, filtering and re-drives
 * look at a topic without changing anything on the cluster. Also answers the
 * offset questions every reader has: log start, end, and "first offset at or
 * after this time".
 */
import type { Admin, ClusterMetadata, Consumer } from '@platformatic/kafka';
import { ApiError } from '../../contract/errors.js';
import { errorChain } from './client.js';
import { directFetch, fetchVersion } from './direct-fetch.js';
import { collectRecords, type RawRecord } from './records.js';

type FetchResponse = Awaited<ReturnType<Consumer['fetch']>>;
export type ApiVersions = Awaited<ReturnType<Consumer['listApis']>>;

export interface TopicMeta {
  name: string;
  id: string;
  partitions: Array<{ leader: number; leaderEpoch: number; replicas: number[]; isr: number[] }>;
}

export interface PartitionFetch {
  partition: number;
  offset: number;
  maxBytes: number;
}

export interface FetchedPartition {
  partition: number;
  records: RawRecord[];
  /** Where the next read of this partition starts. */
  next: number;
  highWatermark: number;
  lastStable: number;
  logStart: number;
  /** The offset asked for is below the log start (deleted by retention) or past the end. */
  outOfRange: boolean;
}

const METADATA_TTL_MS = 30_000;
/** Fetch API error codes a reader recovers from by refreshing metadata. */
const STALE_LEADER = new Set(['NOT_LEADER_OR_FOLLOWER', 'FENCED_LEADER_EPOCH', 'UNKNOWN_LEADER_EPOCH', 'LEADER_NOT_AVAILABLE', 'UNKNOWN_TOPIC_ID', 'REPLICA_NOT_AVAILABLE', 'OFFSET_NOT_AVAILABLE']);
/**
 * Failures to reach the broker a fetch went to. In a cluster that broker may have stopped after
 * handing its partitions to others: fresh metadata names the new leaders (the cached one is kept
 * for METADATA_TTL_MS, so without a refresh reads would fail that long).
 */
const UNREACHABLE_LEADER = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'PLT_KFK_NETWORK']);

export class Fetcher {
  private readonly topics = new Map<string, { meta: TopicMeta; at: number }>();
  /** The brokers' ApiVersions answer, asked once; null while a failed question waits to be asked again. */
  private apiVersions: Promise<ApiVersions | null> | null = null;

  constructor(
    private readonly admin: Admin,
    private readonly consumer: Consumer,
  ) {}

  /**
   * The APIs and versions the brokers take (as the bootstrap broker answers), asked once for the
   * connection; null when the question failed, and then asked again by the next caller (who reads
   * and writes through the library meanwhile).
   */
  apis(): Promise<ApiVersions | null> {
    this.apiVersions ??= this.consumer.listApis().then(
      (apis) => apis,
      () => {
        this.apiVersions = null;
        return null;
      },
    );
    return this.apiVersions;
  }

  forget(topic?: string): void {
    if (topic === undefined) this.topics.clear();
    else this.topics.delete(topic);
  }

  async cluster(topics: string[] = []): Promise<ClusterMetadata> {
    return this.admin.metadata({ topics, forceUpdate: true });
  }

  async topic(name: string, refresh = false): Promise<TopicMeta> {
    const cached = this.topics.get(name);
    if (cached && !refresh && Date.now() - cached.at < METADATA_TTL_MS) return cached.meta;
    let md: ClusterMetadata;
    try {
      md = await this.admin.metadata({ topics: [name], forceUpdate: true, autocreateTopics: false });
    } catch (error) {
      if (errorChain(error).some((e) => e.apiId === 'UNKNOWN_TOPIC_OR_PARTITION' || e.apiId === 'INVALID_TOPIC_EXCEPTION' || /^Unknown topic /.test(e.message ?? ''))) {
        throw new ApiError('NOT_FOUND', `topic "${name}" does not exist`, 'topic');
      }
      throw error;
    }
    const t = md.topics.get(name);
    if (!t) throw new ApiError('NOT_FOUND', `topic "${name}" does not exist`, 'topic');
    const meta: TopicMeta = {
      name,
      id: t.id,
      partitions: t.partitions.map((p) => ({ leader: p.leader, leaderEpoch: p.leaderEpoch, replicas: p.replicas, isr: p.isr })),
    };
    this.topics.set(name, { meta, at: Date.now() });
    return meta;
  }

  async partitionCount(topic: string): Promise<number> {
    return (await this.topic(topic)).partitions.length;
  }

  /**
   * Offsets per partition for a timestamp: -2 the log start, -1 the end
   * (high watermark), any other value the first offset whose timestamp is at
   * or after it (the end when there is none).
   */
  async offsets(topic: string, partitions: number[], timestamp: number): Promise<Map<number, number>> {
    const result = await this.admin.listOffsets({
      topics: [{ name: topic, partitions: partitions.map((p) => ({ partitionIndex: p, timestamp: BigInt(timestamp) })) }],
    });
    const out = new Map<number, number>();
    const needEnd: number[] = [];
    for (const t of result) {
      for (const p of t.partitions) {
        const offset = Number(p.offset);
        if (offset < 0) needEnd.push(p.partitionIndex);
        else out.set(p.partitionIndex, offset);
      }
    }
    if (needEnd.length > 0) {
      const ends = await this.offsets(topic, needEnd, -1);
      for (const [p, o] of ends) out.set(p, o);
    }
    return out;
  }

  /** Low and high watermarks of many topics at once. */
  async watermarks(topics: Array<{ name: string; partitions: number }>): Promise<Map<string, Array<{ low: number; high: number }>>> {
    const request = (timestamp: bigint) =>
      this.admin.listOffsets({
        topics: topics.filter((t) => t.partitions > 0).map((t) => ({ name: t.name, partitions: Array.from({ length: t.partitions }, (_, i) => ({ partitionIndex: i, timestamp })) })),
      });
    const out = new Map<string, Array<{ low: number; high: number }>>();
    if (topics.every((t) => t.partitions === 0)) return out;
    const [lows, highs] = await Promise.all([request(-2n), request(-1n)]);
    for (const t of topics) out.set(t.name, Array.from({ length: t.partitions }, () => ({ low: 0, high: 0 })));
    for (const t of lows) for (const p of t.partitions) out.get(t.name)![p.partitionIndex]!.low = Number(p.offset);
    for (const t of highs) for (const p of t.partitions) out.get(t.name)![p.partitionIndex]!.high = Number(p.offset);
    return out;
  }

  /**
   * One Fetch per leader for the partitions asked. `maxWaitMs` 0 answers at
   * once with what is there; the live tail waits for new records instead.
   */
  async fetch(topic: string, requests: PartitionFetch[], options: { maxWaitMs?: number; maxBytes?: number } = {}): Promise<Map<number, FetchedPartition>> {
    for (let attempt = 0; ; attempt++) {
      const meta = await this.topic(topic, attempt > 0);
      const byLeader = new Map<number, PartitionFetch[]>();
      for (const r of requests) {
        const p = meta.partitions[r.partition];
        if (!p) throw new ApiError('NOT_FOUND', `topic "${topic}" has no partition ${r.partition}`, 'partition');
        const list = byLeader.get(p.leader) ?? [];
        list.push(r);
        byLeader.set(p.leader, list);
      }
      try {
        const out = new Map<number, FetchedPartition>();
        await Promise.all(
          [...byLeader].map(async ([node, list]) => {
            const apis = await this.apis();
            const version = apis ? fetchVersion(apis) : null;
            if (version !== null) {
              const connection = (await this.consumer.connectToBrokers([node])).get(node);
              if (!connection) throw new ApiError('UNAVAILABLE', `broker ${node}, the leader of ${topic}, is not in the cluster's metadata`);
              const asks = list.map((r) => ({ partition: r.partition, offset: r.offset, maxBytes: r.maxBytes, leaderEpoch: meta.partitions[r.partition]!.leaderEpoch ?? -1 }));
              for (const p of await directFetch(connection, version, meta.id, asks, { maxWaitMs: options.maxWaitMs ?? 0, maxBytes: options.maxBytes ?? 16 * 1024 * 1024 })) {
                const outOfRange = p.errorCode === 1;
                const asked = list.find((r) => r.partition === p.partition);
                if (!asked) continue;
                out.set(p.partition, { partition: p.partition, records: p.records, next: outOfRange ? asked.offset : p.next, highWatermark: p.highWatermark, lastStable: p.lastStable, logStart: p.logStart, outOfRange });
              }
              return;
            }
            let response: FetchResponse;
            try {
              response = await this.consumer.fetch({
                node,
                maxWaitTime: options.maxWaitMs ?? 0,
                minBytes: 1,
                maxBytes: options.maxBytes ?? 16 * 1024 * 1024,
                topics: [
                  {
                    topicId: meta.id,
                    partitions: list.map((r) => ({
                      partition: r.partition,
                      // The leader epoch read with the metadata: a broker that is no longer the
                      // leader answers FENCED_LEADER_EPOCH (and the metadata is refreshed) instead of
                      // serving the read as a follower, whose high watermark lags the leader's, so the
                      // newest records would be missing without any error.
                      currentLeaderEpoch: meta.partitions[r.partition]!.leaderEpoch ?? -1,
                      fetchOffset: BigInt(r.offset),
                      lastFetchedEpoch: -1,
                      partitionMaxBytes: r.maxBytes,
                    })),
                  },
                ],
              });
            } catch (error) {
              // Partition errors come back with the whole response: an offset out of range
              // (retention deleted it) is an answer, not a failure.
              const withResponse = errorChain(error).find((e) => (e as { response?: FetchResponse }).response) as { response?: FetchResponse } | undefined;
              const ids = errorChain(error).map((e) => e.apiId);
              if (withResponse?.response && ids.every((id) => id === undefined || id === 'OFFSET_OUT_OF_RANGE')) response = withResponse.response;
              else throw error;
            }
            for (const t of response.responses) {
              for (const p of t.partitions) {
                const asked = list.find((r) => r.partition === p.partitionIndex);
                if (!asked) continue;
                const records: RawRecord[] = [];
                const outOfRange = p.errorCode === 1;
                const next = outOfRange ? asked.offset : collectRecords(p.partitionIndex, p.records, asked.offset, records);
                const high = Number(p.highWatermark);
                const lastStable = Number(p.lastStableOffset) >= 0 ? Number(p.lastStableOffset) : high;
                out.set(p.partitionIndex, { partition: p.partitionIndex, records, next, highWatermark: high, lastStable, logStart: Number(p.logStartOffset), outOfRange });
              }
            }
          }),
        );
        return out;
      } catch (error) {
        const ids = errorChain(error).map((e) => e.apiId ?? '');
        const unreachable = errorChain(error).some((e) => UNREACHABLE_LEADER.has(e.code ?? ''));
        if (attempt < 2 && (unreachable || ids.some((id) => STALE_LEADER.has(id)))) {
          this.forget(topic);
          await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
          continue;
        }
        if (errorChain(error).some((e) => e.code === 'PLT_KFK_UNSUPPORTED_COMPRESSION' || /zstd is not supported/.test(e.message ?? ''))) {
          throw new ApiError(
            'UNAVAILABLE',
            `topic "${topic}" holds zstd-compressed records, which this Node.js (${process.version}) cannot decompress: zstd needs Node.js 22.15 or later`,
          );
        }
        throw error;
      }
    }
  }
}
