/**
 * Fetch and ListOffsets.
 *
 * Fetch long-polls as Kafka's does: it answers once `min.bytes` are there or
 * `max.wait.ms` has passed, whichever comes first, woken by appends. It
 * returns at most `max.bytes` per partition and in all, except that the first
 * partition with data always gets at least one record, so that a consumer
 * whose limit is smaller than a record still makes progress (KIP-74). Fetch
 * sessions (KIP-227) are not kept: session id 0 asks the client for full
 * fetches, which every client supports.
 */
import type { Engine } from '../../../broker/engine.js';
import { headerListOf } from '../../../broker/record-headers.js';
import type { TopicRecord } from '../../../broker/types.js';
import type { Encodable } from '../codec/primitives.js';
import { buildBatch } from '../codec/record-batch.js';
import { ERR } from '../errors.js';
import type { FetchRequest } from '../generated/FetchRequest.js';
import type { FetchResponse, PartitionData } from '../generated/FetchResponse.js';
import type { ListOffsetsRequest } from '../generated/ListOffsetsRequest.js';
import type { ListOffsetsResponse } from '../generated/ListOffsetsResponse.js';
import { topicNameById } from './cluster.js';
import type { ApiTable, RequestContext } from '../context.js';

const READ_CHUNK = 500;
/** Per-record bytes of a v2 record beyond key, value and headers (length, attributes, deltas), at most. */
const RECORD_OVERHEAD = 21;

function recordSize(r: TopicRecord): number {
  let n = RECORD_OVERHEAD + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  for (const [k, v] of headersOf(r)) n += 10 + Buffer.byteLength(k) + (v?.length ?? 0);
  return n;
}

/** The record's headers as produced over Kafka (repeated keys, null values, in order), else its header map. */
function headersOf(r: TopicRecord): Array<[string, Buffer | null]> {
  return headerListOf(r.headers) ?? Object.entries(r.headers).map(([k, v]) => [k, typeof v === 'string' ? Buffer.from(v, 'utf8') : v]);
}

/** Records from `offset` up to `budget` bytes (at least one when `atLeastOne`), as one batch. */
function readPartition(engine: Engine, topic: string, partition: number, offset: number, end: number, budget: number, atLeastOne: boolean): Buffer | null {
  const taken: TopicRecord[] = [];
  let bytes = 61;
  let pos = offset;
  while (pos < end) {
    const { records, nextOffset } = engine.fetch(topic, partition, { offset: pos, limit: Math.min(READ_CHUNK, end - pos) });
    if (records.length === 0) break;
    let full = false;
    for (const r of records) {
      const size = recordSize(r);
      if (bytes + size > budget && !(atLeastOne && taken.length === 0)) {
        full = true;
        break;
      }
      taken.push(r);
      bytes += size;
    }
    if (full) break;
    pos = nextOffset;
  }
  if (taken.length === 0) return null;
  return buildBatch(
    taken[0]!.offset,
    taken.map((r) => ({ offset: r.offset, timestamp: r.timestamp, key: r.key, value: r.value, headers: headersOf(r) })),
  );
}

function collect(ctx: RequestContext, req: FetchRequest): { body: Encodable<FetchResponse>; bytes: number; errors: boolean } {
  const engine = ctx.server.engine();
  const topics = new Map(engine.listTopics().map((t) => [t.name, t]));
  let total = 0;
  let errors = false;
  const maxBytes = ctx.version >= 3 ? req.maxBytes : Number.MAX_SAFE_INTEGER;
  const responses = req.topics.map((ft) => {
    const name = ctx.version >= 13 ? topicNameById(ctx.server, ft.topicId) : ft.topic;
    if (ctx.version >= 13) ft.topic = name ?? '';
    const t = name === null ? undefined : topics.get(name);
    return {
      topic: name ?? '',
      topicId: ft.topicId,
      partitions: ft.partitions.map((fp): Encodable<PartitionData> => {
        const p = t?.partitions[fp.partition];
        if (!t || !p) {
          errors = true;
          return { partitionIndex: fp.partition, errorCode: ctx.version >= 13 && !t ? ERR.UNKNOWN_TOPIC_ID : ERR.UNKNOWN_TOPIC_OR_PARTITION, highWatermark: -1n, lastStableOffset: -1n, logStartOffset: -1n, abortedTransactions: null, records: null };
        }
        const base = { partitionIndex: fp.partition, highWatermark: BigInt(p.endOffset), lastStableOffset: BigInt(p.endOffset), logStartOffset: BigInt(p.startOffset), abortedTransactions: null, preferredReadReplica: -1 };
        const offset = Number(fp.fetchOffset);
        if (offset < p.startOffset || offset > p.endOffset) {
          errors = true;
          return { ...base, errorCode: ERR.OFFSET_OUT_OF_RANGE, records: null };
        }
        const budget = Math.min(fp.partitionMaxBytes, maxBytes - total);
        const batch = offset < p.endOffset && (budget > 0 || total === 0) ? readPartition(engine, t.name, p.partition, offset, p.endOffset, budget, total === 0) : null;
        total += batch?.length ?? 0;
        return { ...base, errorCode: 0, records: batch ?? Buffer.alloc(0) };
      }),
    };
  });
  return { body: { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses }, bytes: total, errors };
}

async function fetch(ctx: RequestContext, req: FetchRequest): Promise<Encodable<FetchResponse>> {
  const deadline = Date.now() + Math.max(0, req.maxWaitMs);
  for (;;) {
    const res = collect(ctx, req);
    const left = deadline - Date.now();
    if (res.bytes >= Math.max(1, req.minBytes) || res.errors || left <= 0 || ctx.connection.isClosed) return res.body;
    await ctx.server.waitForRecords(left);
  }
}

function listOffsets(ctx: RequestContext, req: ListOffsetsRequest): Encodable<ListOffsetsResponse> {
  const engine = ctx.server.engine();
  const topics = new Map(engine.listTopics().map((t) => [t.name, t]));
  return {
    throttleTimeMs: 0,
    topics: req.topics.map((lt) => ({
      name: lt.name,
      partitions: lt.partitions.map((lp) => {
        const t = topics.get(lt.name);
        const p = t?.partitions[lp.partitionIndex];
        if (!t || !p) return { partitionIndex: lp.partitionIndex, errorCode: ERR.UNKNOWN_TOPIC_OR_PARTITION, timestamp: -1n, offset: -1n, oldStyleOffsets: [] };
        const ts = Number(lp.timestamp);
        let offset: number;
        let timestamp = -1;
        if (ts === -1 || ts === -5) offset = p.endOffset;
        else if (ts === -2 || ts === -4) offset = p.startOffset;
        else if (ts === -3) {
          // The record with the largest timestamp (KIP-734): the last one here, where time only grows.
          const last = p.endOffset > p.startOffset ? engine.fetch(t.name, p.partition, { offset: p.endOffset - 1, limit: 1 }).records[0] : undefined;
          offset = last ? last.offset : -1;
          timestamp = last ? last.timestamp : -1;
        } else {
          const hit = engine.fetch(t.name, p.partition, { timestamp: ts, limit: 1 }).records[0];
          offset = hit ? hit.offset : -1;
          timestamp = hit ? hit.timestamp : -1;
        }
        return { partitionIndex: lp.partitionIndex, errorCode: 0, timestamp: BigInt(timestamp), offset: BigInt(offset), oldStyleOffsets: offset >= 0 ? [BigInt(offset)] : [], leaderEpoch: 0 };
      }),
    })),
  };
}

export const fetchApis: ApiTable = {
  1: { min: 0, max: 17, handle: fetch },
  2: { min: 0, max: 10, handle: listOffsets },
};
