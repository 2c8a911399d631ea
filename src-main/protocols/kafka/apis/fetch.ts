/**
 * Fetch and ListOffsets.
 *
 * Fetch long-polls as Kafka's does: it answers once `min.bytes` are there or
 * `max.wait.ms` has passed, whichever comes first, woken by appends. It
 * returns at most `max.bytes` per partition and in all, except that the first
 * partition with data always gets at least one record, so that a consumer
 * whose limit is smaller than a record still makes progress (KIP-74).
 * Batches produced over Kafka are sent as they were stored, compressed or
 * not (stored-batches.ts); other records are encoded into a batch. Fetch
 * sessions (KIP-227) are not kept: session id 0 asks the client for full
 * fetches, which every client supports.
 */
import type { Engine } from '../../../broker/engine.js';
import { headerListOf } from '../../../broker/record-headers.js';
import type { StoredBatchInfo } from '../../../broker/stored-batches.js';
import type { TopicRecord } from '../../../broker/types.js';
import type { Encodable } from '../codec/primitives.js';
import { BATCH_HEADER_BYTES, buildBatch, type HeaderPairs } from '../codec/record-batch.js';
import { ERR } from '../errors.js';
import type { FetchRequest } from '../generated/FetchRequest.js';
import type { FetchResponse, PartitionData } from '../generated/FetchResponse.js';
import type { ListOffsetsRequest } from '../generated/ListOffsetsRequest.js';
import type { ListOffsetsResponse } from '../generated/ListOffsetsResponse.js';
import { topicNameById } from './cluster.js';
import { committedView } from './transactions.js';
import type { ApiTable, RequestContext } from '../context.js';

const READ_CHUNK = 500;
/** Per-record bytes of a v2 record beyond key, value and headers (length, attributes, deltas), at most. */
const RECORD_OVERHEAD = 21;
/** Encoded batches kept for fetches to come, in all (per listener). */
const CACHE_BYTES = 64 * 1024 * 1024;

function recordSize(r: TopicRecord, headers: HeaderPairs): number {
  let n = RECORD_OVERHEAD + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  for (const [k, v] of headers) n += 10 + Buffer.byteLength(k) + (v?.length ?? 0);
  return n;
}

const NO_HEADERS: HeaderPairs = [];

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

/** The record's headers as produced over Kafka (repeated keys, null values, in order), else its header map. */
function headersOf(r: TopicRecord): HeaderPairs {
  const list = headerListOf(r.headers);
  if (list) return list;
  if (isEmpty(r.headers)) return NO_HEADERS;
  return Object.entries(r.headers).map(([k, v]) => [k, typeof v === 'string' ? Buffer.from(v, 'utf8') : v] as const);
}

/** One partition's records from an offset, encoded as a batch. */
interface Read {
  batch: Buffer;
  /** The offset after its last record. */
  next: number;
  /** It stopped at the byte budget (more records were there). */
  full: boolean;
  count: number;
}

/** A partition as fetches see it: its offsets and stored bytes. */
interface PartitionView {
  partition: number;
  startOffset: number;
  endOffset: number;
  bytes: number;
}

/** Records from `offset` up to `budget` bytes (at least one when `atLeastOne`), as one batch. */
function readPartition(engine: Engine, topic: string, p: PartitionView, offset: number, budget: number, atLeastOne: boolean): Read | null {
  const { partition, endOffset: end } = p;
  // Rows to ask for at once: as many as the budget holds at the partition's average record size, plus one.
  const average = p.bytes / Math.max(1, end - p.startOffset) + RECORD_OVERHEAD;
  const taken: TopicRecord[] = [];
  const headerLists: HeaderPairs[] = [];
  let bytes = BATCH_HEADER_BYTES;
  let pos = offset;
  let full = false;
  while (pos < end && !full) {
    const want = Math.max(1, Math.min(READ_CHUNK * 4, end - pos, Math.ceil(Math.max(0, budget - bytes) / average) + 1));
    const { records, nextOffset } = engine.fetch(topic, partition, { offset: pos, limit: want });
    if (records.length === 0) break;
    for (const r of records) {
      const headers = headersOf(r);
      const size = recordSize(r, headers);
      if (bytes + size > budget && !(atLeastOne && taken.length === 0)) {
        full = true;
        break;
      }
      taken.push(r);
      headerLists.push(headers);
      bytes += size;
    }
    pos = nextOffset;
  }
  if (taken.length === 0) return null;
  return { batch: buildBatch(taken[0]!.offset, taken, headerLists), next: taken[taken.length - 1]!.offset + 1, full, count: taken.length };
}

/**
 * Encoded batches by partition and offset: what a fetch read (another
 * consumer may read the same range), and what a consumer that is behind will
 * ask for next, encoded ahead while it takes in the last answer — Kafka's
 * consumer fetches one partition again only once it has the previous
 * answer, so that time would otherwise be lost. An entry is used only while
 * the partition's records version is the one it was read at (retention,
 * DeleteRecords and compaction change it).
 */
class BatchCache {
  private readonly entries = new Map<string, Read & { version: number; budget: number }>();
  private bytes = 0;
  private readonly pending = new Set<string>();

  constructor(private readonly limit: number) {}

  private static key(topic: string, partition: number, offset: number): string {
    return `${partition}\0${offset}\0${topic}`;
  }

  get(topic: string, partition: number, offset: number, version: number, end: number, budget: number, atLeastOne: boolean): Read | null {
    const k = BatchCache.key(topic, partition, offset);
    const e = this.entries.get(k);
    if (!e) return null;
    const fits = e.batch.length <= budget || (atLeastOne && e.count === 1);
    // As good as reading again: the same partition state, within this budget, and not cut short by a smaller one or by the end of that time.
    if (e.version !== version || !fits || (e.full ? e.budget < budget && e.batch.length < budget / 2 : e.next < end)) {
      this.drop(k, e);
      return null;
    }
    // Most recently used last.
    this.entries.delete(k);
    this.entries.set(k, e);
    return e;
  }

  put(topic: string, partition: number, offset: number, version: number, budget: number, read: Read): void {
    if (read.batch.length > this.limit / 4) return;
    const k = BatchCache.key(topic, partition, offset);
    const old = this.entries.get(k);
    if (old) this.drop(k, old);
    this.entries.set(k, { ...read, version, budget });
    this.bytes += read.batch.length;
    for (const [key, e] of this.entries) {
      if (this.bytes <= this.limit) break;
      this.drop(key, e);
    }
  }

  private drop(k: string, e: Read): void {
    if (this.entries.delete(k)) this.bytes -= e.batch.length;
  }

  /** Encodes the batch a consumer will ask for next, once the current answer is on its way. */
  readAhead(engine: Engine, topic: string, partition: number, offset: number, budget: number): void {
    // (The partition is looked up again when the read runs: it may have changed by then.)
    const k = BatchCache.key(topic, partition, offset);
    if (this.entries.has(k) || this.pending.has(k) || this.pending.size >= 8) return;
    this.pending.add(k);
    setImmediate(() => {
      this.pending.delete(k);
      try {
        if (this.entries.has(k)) return;
        const t = engine.topicInfo(topic);
        const p = t?.partitions[partition];
        if (!p || offset < p.startOffset || offset >= p.endOffset) return;
        const version = engine.recordsVersion(topic, partition);
        const read = readPartition(engine, topic, p, offset, budget, true);
        if (read) this.put(topic, partition, offset, version, budget, read);
      } catch {
        // The engine closed or the topic went: the fetch will read it itself, or find it gone.
      }
    });
  }
}

const caches = new WeakMap<object, BatchCache>();

function cacheOf(server: object): BatchCache {
  let c = caches.get(server);
  if (!c) caches.set(server, (c = new BatchCache(CACHE_BYTES)));
  return c;
}

/**
 * A partition's batches from `offset` up to `budget` bytes where some were
 * stored as produced (stored-batches.ts): those are sent as they are, the
 * records between them (produced another way) encoded from their rows.
 */
function storedBatches(engine: Engine, topic: string, p: PartitionView, offset: number, budget: number, atLeastOne: boolean, plan: StoredBatchInfo[]): Buffer | null {
  const parts: Buffer[] = [];
  let used = 0;
  let pos = offset;
  let i = 0;
  // Stored batches taken one after another, read in one query.
  let run: { first: number; last: number; next: number } | null = null;
  const flush = () => {
    if (run) parts.push(...engine.storedBatchBytes(topic, p.partition, run.first, run.last));
    run = null;
  };
  while (pos < p.endOffset) {
    while (i < plan.length && plan[i]!.last < pos) i++;
    if (i === plan.length && plan.length > 0) {
      plan = engine.storedBatchPlan(topic, p.partition, pos);
      i = 0;
    }
    const m = plan[i];
    if (m && m.base <= pos) {
      if (used + m.size > budget && !(atLeastOne && used === 0)) break;
      if (run && run.next === i) {
        run.last = m.base;
        run.next = i + 1;
      } else {
        flush();
        run = { first: m.base, last: m.base, next: i + 1 };
      }
      used += m.size;
      pos = m.last + 1;
      i++;
      continue;
    }
    flush();
    const read = readPartition(engine, topic, { ...p, endOffset: m ? m.base : p.endOffset }, pos, budget - used, atLeastOne && used === 0);
    if (!read) break;
    parts.push(read.batch);
    used += read.batch.length;
    pos = read.next;
    if (read.full) break;
  }
  flush();
  if (parts.length === 0) return null;
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, used);
}

/**
 * A partition's batch from `offset`: as stored where its records came in
 * over Kafka, else cached, or read and encoded now; a consumer behind the end
 * gets the next one encoded ahead.
 */
function partitionBatch(server: object, engine: Engine, topic: string, p: PartitionView, offset: number, budget: number, atLeastOne: boolean, uncached = false): Buffer | null {
  const plan = engine.storedBatchPlan(topic, p.partition, offset);
  if (plan.length > 0) return storedBatches(engine, topic, p, offset, budget, atLeastOne, plan);
  // Cut short of the partition's end (read_committed): the cache and the read ahead go to the end.
  if (uncached) return readPartition(engine, topic, p, offset, budget, atLeastOne)?.batch ?? null;
  const cache = cacheOf(server);
  const { partition, endOffset: end } = p;
  const version = engine.recordsVersion(topic, partition);
  let read = cache.get(topic, partition, offset, version, end, budget, atLeastOne);
  if (!read) {
    read = readPartition(engine, topic, p, offset, budget, atLeastOne);
    if (read && read.full) cache.put(topic, partition, offset, version, budget, read);
  }
  if (!read) return null;
  if (read.next < end && budget >= 64 * 1024) cache.readAhead(engine, topic, partition, read.next, budget);
  return read.batch;
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
        // read_committed: up to the last stable offset, with the aborted transactions there (transactions.ts).
        const committed = ctx.version >= 4 && req.isolationLevel === 1 ? committedView(ctx.server, t.name, p.partition, p.endOffset) : null;
        const stable = committed?.lso ?? p.endOffset;
        const base = { partitionIndex: fp.partition, highWatermark: BigInt(p.endOffset), lastStableOffset: BigInt(stable), logStartOffset: BigInt(p.startOffset), abortedTransactions: null, preferredReadReplica: -1 };
        const offset = Number(fp.fetchOffset);
        if (offset < p.startOffset || offset > p.endOffset) {
          errors = true;
          return { ...base, errorCode: ERR.OFFSET_OUT_OF_RANGE, records: null };
        }
        const budget = Math.min(fp.partitionMaxBytes, maxBytes - total);
        const view = stable < p.endOffset ? { ...p, endOffset: stable } : p;
        const batch = offset < stable && (budget > 0 || total === 0) ? partitionBatch(ctx.server, engine, t.name, view, offset, budget, total === 0, view !== p) : null;
        total += batch?.length ?? 0;
        const abortedTransactions = committed ? committed.aborted(offset, stable).map((a) => ({ producerId: a.producerId, firstOffset: BigInt(a.firstOffset) })) : null;
        return { ...base, abortedTransactions, errorCode: 0, records: batch ?? Buffer.alloc(0) };
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
        // Latest is the last stable offset for read_committed (isolation level 1, from v2).
        if (ts === -1 || ts === -5) offset = ctx.version >= 2 && req.isolationLevel === 1 ? committedView(ctx.server, t.name, p.partition, p.endOffset).lso : p.endOffset;
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
