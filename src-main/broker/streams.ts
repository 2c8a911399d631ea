/**
 * Streams (the Kafka model): topics of partitions, each an append-only log
 * of records with offsets, and consumer groups' committed offsets. Group
 * membership (members, generations, assignments) lives in the group
 * coordinator (group-coordinator.ts), for the app's consumers and Kafka
 * clients alike; this file asks it who is in a group.
 *
 * Record rows use the same rowid scheme as messages: id = pid * 2^36 +
 * offset, so a partition is one contiguous, ordered rowid range and reading
 * from an offset is a single range seek.
 */
import { isUtf8 } from 'node:buffer';
import type { SqliteDatabase } from '../storage/database.js';
import { consumerAssignment, type GroupCoordinator, type GroupDescription } from './group-coordinator.js';
import type { GroupCommit } from '../storage/group-commit.js';
import { MAX_QID, SEQ_SPAN } from '../storage/migrations.js';
import { Compactor, DEFAULT_DELETE_RETENTION_MS, DEFAULT_DIRTY_RATIO, type CompactablePartition, type CompactionStats } from './compaction.js';
import { prepareStatements } from '../storage/statements.js';
import { StoredBatches, type StoredBatchInfo } from './stored-batches.js';
import type { BatchRecord } from '../ground/kafka-batch.js';
import { encodeJson } from './codec.js';
import { BrokerError, invalid, notFound, shown } from './errors.js';
import { compileFilter, type CompiledFilter, type FilterSubject } from '../ground/filter.js';
import { partitionForKey } from '../ground/murmur2.js';
import { checkCallSize, checkMessageSize } from './limits.js';
import { expand } from '../ground/placeholders.js';
import { checkHeaderList, headerListOf, kafkaHeaders, storedHeaders, type HeaderList } from './record-headers.js';
import type {
  BrowseTopicOptions,
  BrowseTopicPage,
  FetchOptions,
  FetchResult,
  GroupInfo,
  GroupMemberInfo,
  GroupOffsetChange,
  GroupPartitionLag,
  GroupResetPlan,
  GroupResetRequest,
  JoinGroupResult,
  LeaveGroupResult,
  OffsetCommit,
  ProduceOptions,
  ProduceRecord,
  RecordHeaders,
  TopicInfo,
  TopicOptions,
  TopicPartitionRef,
  TopicRecord,
  TopicRecordEvent,
} from './types.js';

export interface StreamContext {
  db: SqliteDatabase;
  gc: GroupCommit;
  now: () => number;
  emitRecord: (event: TopicRecordEvent) => void;
  wantsRecords: () => boolean;
  /** Largest record (key + value), bytes; see limits.ts. */
  maxMessageBytes: number;
  /** Most key + value bytes one produce call may store. */
  maxCallBytes: number;
  audit: (action: string, source: string, target: string, count: number, selection: string) => void;
  /** Where group membership lives: the group coordinator (group-coordinator.ts). */
  coordinated: Pick<GroupCoordinator, 'ids' | 'known' | 'forget' | 'describe' | 'joinDirect' | 'leaveDirect' | 'dropTopic' | 'directMembers'>;
}

/** A partition as the topic store keeps it in memory (what compaction reads of it, too). */
type PartitionState = CompactablePartition;

interface TopicState {
  tid: number;
  name: string;
  partitions: PartitionState[];
  retentionMs: number | null;
  retentionBytes: number | null;
  /** Kafka's topic-level max.message.bytes (a record batch's size on the wire); null: the listener's default. */
  maxMessageBytes: number | null;
  /** Kafka's cleanup.policy as set ("compact", "delete", "compact,delete"); null: "delete". */
  cleanupPolicy: string | null;
  /** The policy includes compact (compaction.ts). */
  compact: boolean;
  /** min.compaction.lag.ms; null: 0. */
  minCompactionLagMs: number | null;
  /** delete.retention.ms; null: one day. */
  deleteRetentionMs: number | null;
  /** min.cleanable.dirty.ratio; null: 0.5. */
  minCleanableDirtyRatio: number | null;
  rr: number;
}

/** A topic's settings (TopicConfigChange): null returns one to its default, undefined leaves it. */
export interface TopicConfigChange {
  retentionMs?: number | null;
  retentionBytes?: number | null;
  maxMessageBytes?: number | null;
  cleanupPolicy?: string | null;
  minCompactionLagMs?: number | null;
  deleteRetentionMs?: number | null;
  minCleanableDirtyRatio?: number | null;
}

/** The items of a cleanup.policy value, checked; "delete" for null. */
export function cleanupPolicyItems(policy: string | null, field = 'cleanupPolicy'): Array<'compact' | 'delete'> {
  if (policy === null) return ['delete'];
  if (typeof policy !== 'string') throw invalid(field, `expected "delete", "compact" or "compact,delete", got ${shown(policy)}`);
  const items = policy
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  const bad = items.find((x) => x !== 'compact' && x !== 'delete');
  if (bad !== undefined || items.length === 0) throw invalid(field, `expected "delete", "compact" or "compact,delete", got ${shown(policy)}`);
  return [...new Set(items)] as Array<'compact' | 'delete'>;
}

function hasDelete(t: TopicState): boolean {
  return t.cleanupPolicy === null || cleanupPolicyItems(t.cleanupPolicy).includes('delete');
}

/** A record row as scanRows returns it: id, ts, key, value, headers, size, and the stored batch holding its key, value and headers (stored-batches.ts), or null. */
type RawRow = [number, number, Buffer | null, Buffer | null, string | null, number, number | null];

/** Rows written by one statement where a produced batch has that many records (appendBatch). */
const ROWS_PER_INSERT = 32;
/** Values per row of the records table's inserts. */
const ROW_VALUES = 7;

/** An empty blob: the value column of a row whose value is in its stored batch (NULL there means a null value). */
const IN_BATCH = Buffer.alloc(0);

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;
const SCAN_CHUNK = 2000;


function optionalLimit(v: number | null | undefined, field: string): number | null {
  if (v === undefined || v === null || v === -1) return null;
  if (!Number.isInteger(v) || v < 0) throw invalid(field, `expected a non-negative integer or -1 (unlimited), got ${shown(v)}`);
  return v;
}

function byteSize(v: unknown): number {
  return typeof v === 'string' ? Buffer.byteLength(v) : Buffer.isBuffer(v) ? v.length : 0;
}

function toBuffer(v: Buffer | string | null | undefined): Buffer | null {
  if (v === undefined || v === null) return null;
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

/** A group's committed offset of one partition, as group_offsets holds it. */
type CommittedRow = { topic: string; partition: number; committed: number };

export class Streams {
  private readonly topics = new Map<string, TopicState>();
  private readonly usedPids = new Set<number>();
  private readonly st;
  private readonly compactor: Compactor;
  /** Record batches as Kafka clients produced them (stored-batches.ts). */
  private readonly batches: StoredBatches;
  /** The values of appendBatch's multi-row insert, reused. */
  private readonly rowArgs: unknown[] = new Array(ROWS_PER_INSERT * ROW_VALUES).fill(null);
  /** A partition's records version: new whenever rows before its end are deleted (retention, DeleteRecords, compaction). */
  private readonly versions = new WeakMap<PartitionState, number>();
  private lastVersion = 0;

  constructor(private readonly ctx: StreamContext) {
    this.batches = new StoredBatches(ctx.db);
    this.compactor = new Compactor(ctx.db, ctx.gc, (p) => {
      // Records went from the middle: no stored batch of records may be sent for them (a compacted topic has none; see setTopicConfig); transaction markers stay.
      ctx.gc.run(() => this.batches.materialize(p.pid));
      this.removed(p as PartitionState);
    });
    this.st = prepareStatements(ctx.db, {
      insertTopic: 'INSERT INTO topics (tid, name, partitions, retention_ms, retention_bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      deleteTopic: 'DELETE FROM topics WHERE tid = ?',
      insertPartition: 'INSERT INTO partitions (pid, tid, partition, start_offset, next_offset, bytes) VALUES (?, ?, ?, 0, 0, 0)',
      deletePartitions: 'DELETE FROM partitions WHERE tid = ?',
      savePartition: 'UPDATE partitions SET start_offset = ?, next_offset = ?, bytes = ? WHERE pid = ?',
      insertRecord: 'INSERT INTO records (id, ts, key, value, headers, size, batch) VALUES (?, ?, ?, ?, ?, ?, ?)',
      // Rows of a produced batch, ROWS_PER_INSERT at a time: one statement instead of many (half the time per row).
      insertRecords: `INSERT INTO records (id, ts, key, value, headers, size, batch) VALUES ${Array(ROWS_PER_INSERT).fill('(?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      deleteRecords: 'DELETE FROM records WHERE id >= ? AND id < ?',
      scanRecords: 'SELECT id, ts, key, value, headers, size FROM records WHERE id >= ? AND id < ? ORDER BY id LIMIT ?',
      // The same as arrays: no object per row on the hot read path.
      scanRows: 'SELECT id, ts, key, value, headers, size, batch FROM records WHERE id >= ? AND id < ? ORDER BY id LIMIT ?',
      scanSizes: 'SELECT id, ts, size FROM records WHERE id >= ? AND id < ? ORDER BY id LIMIT ?',
      seekTime: 'SELECT id FROM records WHERE id >= ? AND id < ? AND ts >= ? ORDER BY id LIMIT 1',
      recordTs: 'SELECT ts FROM records WHERE id = ?',
      upsertOffset:
        'INSERT INTO group_offsets (group_id, topic, partition, committed, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (group_id, topic, partition) DO UPDATE SET committed = excluded.committed, updated_at = excluded.updated_at',
      groupOffsets: 'SELECT topic, partition, committed FROM group_offsets WHERE group_id = ? ORDER BY topic, partition',
      groupIds: 'SELECT DISTINCT group_id FROM group_offsets',
      deleteTopicOffsets: 'DELETE FROM group_offsets WHERE topic = ?',
      deleteGroupOffsets: 'DELETE FROM group_offsets WHERE group_id = ?',
      deleteGroupPartitionOffset: 'DELETE FROM group_offsets WHERE group_id = ? AND topic = ? AND partition = ?',
      setPartitionCount: 'UPDATE topics SET partitions = ? WHERE tid = ?',
      setTopicConfig:
        'UPDATE topics SET retention_ms = ?, retention_bytes = ?, max_message_bytes = ?, cleanup_policy = ?, min_compaction_lag_ms = ?, delete_retention_ms = ?, min_cleanable_dirty_ratio = ? WHERE tid = ?',
      rangeBytes: 'SELECT coalesce(sum(size), 0) AS bytes FROM records WHERE id >= ? AND id < ?',
    });
    this.st.scanRows.raw(true);
  }

  // ---- lifecycle -----------------------------------------------------------

  load(): void {
    const topics = this.ctx.db
      .prepare('SELECT tid, name, retention_ms, retention_bytes, max_message_bytes, cleanup_policy, min_compaction_lag_ms, delete_retention_ms, min_cleanable_dirty_ratio FROM topics ORDER BY tid')
      .all() as Array<{
      tid: number;
      name: string;
      retention_ms: number | null;
      retention_bytes: number | null;
      max_message_bytes: number | null;
      cleanup_policy: string | null;
      min_compaction_lag_ms: number | null;
      delete_retention_ms: number | null;
      min_cleanable_dirty_ratio: number | null;
    }>;
    const parts = this.ctx.db.prepare('SELECT pid, tid, partition, start_offset, next_offset, bytes FROM partitions ORDER BY tid, partition').all() as Array<{
      pid: number;
      tid: number;
      partition: number;
      start_offset: number;
      next_offset: number;
      bytes: number;
    }>;
    const byTid = new Map<number, TopicState>();
    for (const t of topics) {
      const state: TopicState = {
        tid: t.tid,
        name: t.name,
        partitions: [],
        retentionMs: t.retention_ms,
        retentionBytes: t.retention_bytes,
        maxMessageBytes: t.max_message_bytes,
        cleanupPolicy: t.cleanup_policy,
        compact: t.cleanup_policy !== null && t.cleanup_policy.split(',').some((x) => x.trim() === 'compact'),
        minCompactionLagMs: t.min_compaction_lag_ms,
        deleteRetentionMs: t.delete_retention_ms,
        minCleanableDirtyRatio: t.min_cleanable_dirty_ratio,
        rr: 0,
      };
      this.topics.set(t.name, state);
      byTid.set(t.tid, state);
    }
    for (const p of parts) {
      this.usedPids.add(p.pid);
      byTid.get(p.tid)?.partitions.push({ pid: p.pid, partition: p.partition, start: p.start_offset, next: p.next_offset, bytes: p.bytes, dirty: false });
    }
  }

  /** Inside the group commit, right before COMMIT. */
  saveDirty(): void {
    for (const t of this.topics.values()) {
      for (const p of t.partitions) {
        if (!p.dirty) continue;
        this.st.savePartition.run(p.start, p.next, p.bytes, p.pid);
        p.dirty = false;
      }
    }
  }

  // ---- topics --------------------------------------------------------------

  createTopic(name: string, options: TopicOptions): TopicInfo {
    if (typeof name !== 'string' || !TOPIC_NAME.test(name) || name === '.' || name === '..') {
      throw invalid('name', `topic names are 1–249 characters of a–z, A–Z, 0–9, ".", "_" and "-"; got ${shown(name)}`);
    }
    const n = options?.partitions;
    if (!Number.isInteger(n) || n < 1 || n > 10_000) throw invalid('partitions', `expected an integer from 1 to 10000, got ${shown(n)}`);
    const retentionMs = optionalLimit(options.retentionMs, 'retentionMs');
    const retentionBytes = optionalLimit(options.retentionBytes, 'retentionBytes');
    if (this.topics.has(name)) throw new BrokerError('CONFLICT', `topic ${JSON.stringify(name)} already exists`, 'name');
    const pids = this.allocatePids(n);
    const tid = (this.ctx.db.prepare('SELECT coalesce(max(tid), 0) + 1 AS t FROM topics').get() as { t: number }).t;
    const state: TopicState = { tid, name, partitions: [], retentionMs, retentionBytes, maxMessageBytes: null, cleanupPolicy: null, compact: false, minCompactionLagMs: null, deleteRetentionMs: null, minCleanableDirtyRatio: null, rr: 0 };
    this.ctx.gc.run(() => {
      this.st.insertTopic.run(tid, name, n, retentionMs, retentionBytes, this.ctx.now());
      pids.forEach((pid, partition) => this.st.insertPartition.run(pid, tid, partition));
    });
    pids.forEach((pid, partition) => {
      this.usedPids.add(pid);
      state.partitions.push({ pid, partition, start: 0, next: 0, bytes: 0, dirty: false });
    });
    this.topics.set(name, state);
    return this.info(state);
  }

  deleteTopic(name: string): void {
    const t = this.topic(name);
    this.ctx.gc.run(() => {
      for (const p of t.partitions) {
        this.st.deleteRecords.run(p.pid * SEQ_SPAN, (p.pid + 1) * SEQ_SPAN);
        this.batches.dropPartition(p.pid);
      }
      this.st.deletePartitions.run(t.tid);
      this.st.deleteTopic.run(t.tid);
      this.st.deleteTopicOffsets.run(name);
      this.ctx.audit('delete-topic', name, '', t.partitions.reduce((s, p) => s + p.next - p.start, 0), 'topic');
    });
    this.topics.delete(name);
    for (const p of t.partitions) this.usedPids.delete(p.pid);
    this.ctx.coordinated.dropTopic(name);
  }

  listTopics(): TopicInfo[] {
    return [...this.topics.values()].sort((a, b) => a.name.localeCompare(b.name)).map((t) => this.info(t));
  }

  hasTopic(name: string): boolean {
    return this.topics.has(name);
  }

  /** One topic's description, or null: what `listTopics()` says of it, without describing every topic. */
  topicInfo(name: string): TopicInfo | null {
    const t = this.topics.get(name);
    return t ? this.info(t) : null;
  }

  private info(t: TopicState): TopicInfo {
    const partitions = t.partitions.map((p) => ({ partition: p.partition, startOffset: p.start, endOffset: p.next, bytes: p.bytes }));
    return {
      name: t.name,
      partitions,
      messages: partitions.reduce((s, p) => s + p.endOffset - p.startOffset, 0),
      bytes: partitions.reduce((s, p) => s + p.bytes, 0),
      retentionMs: t.retentionMs,
      retentionBytes: t.retentionBytes,
      config: {
        'retention.ms': t.retentionMs ?? -1,
        'retention.bytes': t.retentionBytes ?? -1,
        'cleanup.policy': t.cleanupPolicy ?? 'delete',
        ...(t.maxMessageBytes !== null ? { 'max.message.bytes': t.maxMessageBytes } : {}),
        ...(t.compact || t.minCompactionLagMs !== null ? { 'min.compaction.lag.ms': t.minCompactionLagMs ?? 0 } : {}),
        ...(t.compact || t.deleteRetentionMs !== null ? { 'delete.retention.ms': t.deleteRetentionMs ?? DEFAULT_DELETE_RETENTION_MS } : {}),
        ...(t.compact || t.minCleanableDirtyRatio !== null ? { 'min.cleanable.dirty.ratio': t.minCleanableDirtyRatio ?? DEFAULT_DIRTY_RATIO } : {}),
      },
    };
  }

  /**
   * Grows a topic to `count` partitions, as Kafka's CreatePartitions does:
   * the new ones start empty at offset 0, the others keep their records.
   * Keyed records produced afterwards hash over the new count.
   */
  addPartitions(name: string, count: number): TopicInfo {
    const t = this.topic(name);
    const have = t.partitions.length;
    if (!Number.isInteger(count) || count <= have || count > 10_000) {
      throw invalid('partitions', `topic ${JSON.stringify(name)} has ${have} partition${have === 1 ? '' : 's'}: expected a larger count, up to 10000, got ${shown(count)}`);
    }
    const pids = this.allocatePids(count - have);
    this.ctx.gc.run(() => {
      pids.forEach((pid, i) => this.st.insertPartition.run(pid, t.tid, have + i));
      this.st.setPartitionCount.run(count, t.tid);
      this.ctx.audit('add-partitions', name, '', count - have, `topic, ${have} → ${count} partitions`);
    });
    pids.forEach((pid, i) => {
      this.usedPids.add(pid);
      t.partitions.push({ pid, partition: have + i, start: 0, next: 0, bytes: 0, dirty: false });
    });
    return this.info(t);
  }

  /**
   * Changes a topic's settings: a value replaces, null returns to the
   * default (keep forever; the listener's batch limit; cleanup.policy
   * "delete"; no compaction lag; tombstones kept a day), undefined leaves it.
   * Retention and compaction take effect in the background.
   */
  setTopicConfig(name: string, change: TopicConfigChange): TopicInfo {
    const t = this.topic(name);
    let cleanupPolicy = t.cleanupPolicy;
    if (change.cleanupPolicy !== undefined) cleanupPolicy = change.cleanupPolicy === null ? null : cleanupPolicyItems(change.cleanupPolicy).join(',');
    if (cleanupPolicy === 'delete') cleanupPolicy = null;
    const minCompactionLagMs = change.minCompactionLagMs === undefined ? t.minCompactionLagMs : optionalLimit(change.minCompactionLagMs, 'minCompactionLagMs');
    const deleteRetentionMs = change.deleteRetentionMs === undefined ? t.deleteRetentionMs : optionalLimit(change.deleteRetentionMs, 'deleteRetentionMs');
    let minCleanableDirtyRatio = t.minCleanableDirtyRatio;
    if (change.minCleanableDirtyRatio !== undefined) {
      const v = change.minCleanableDirtyRatio;
      if (v !== null && (typeof v !== 'number' || !(v >= 0 && v <= 1))) throw invalid('minCleanableDirtyRatio', `expected a number from 0 to 1, got ${shown(v)}`);
      minCleanableDirtyRatio = v;
    }
    const retentionMs = change.retentionMs === undefined ? t.retentionMs : optionalLimit(change.retentionMs, 'retentionMs');
    const retentionBytes = change.retentionBytes === undefined ? t.retentionBytes : optionalLimit(change.retentionBytes, 'retentionBytes');
    let maxMessageBytes = t.maxMessageBytes;
    if (change.maxMessageBytes !== undefined) {
      const v = change.maxMessageBytes;
      if (v !== null && (!Number.isInteger(v) || v < 0 || v > 2 ** 31 - 1)) throw invalid('maxMessageBytes', `expected an integer from 0 to 2147483647, got ${shown(v)}`);
      maxMessageBytes = v;
    }
    const compact = cleanupPolicy !== null && cleanupPolicy.split(',').includes('compact');
    this.ctx.gc.run(() => {
      this.st.setTopicConfig.run(retentionMs, retentionBytes, maxMessageBytes, cleanupPolicy, minCompactionLagMs, deleteRetentionMs, minCleanableDirtyRatio, t.tid);
      // Compaction removes records from inside batches: rows that point at stored batches get their values, and the batches go.
      if (compact && !t.compact) for (const p of t.partitions) this.batches.materialize(p.pid);
    });
    t.retentionMs = retentionMs;
    t.retentionBytes = retentionBytes;
    t.maxMessageBytes = maxMessageBytes;
    if (cleanupPolicy !== t.cleanupPolicy || minCompactionLagMs !== t.minCompactionLagMs || deleteRetentionMs !== t.deleteRetentionMs) {
      // Compaction starts over on the new settings (tombstones wait delete.retention.ms from the next pass).
      for (const p of t.partitions) this.compactor.forget(p);
    }
    t.cleanupPolicy = cleanupPolicy;
    t.compact = compact;
    t.minCompactionLagMs = minCompactionLagMs;
    t.deleteRetentionMs = deleteRetentionMs;
    t.minCleanableDirtyRatio = minCleanableDirtyRatio;
    return this.info(t);
  }

  /**
   * Deletes a partition's records before `offset` (Kafka's DeleteRecords):
   * the log start offset moves there, and nothing before it can be read
   * again. An offset at or before the current start changes nothing; one
   * past the end is refused. Resolves with the log start offset once durable.
   */
  deleteRecordsBefore(topic: string, partition: number, offset: number): Promise<number> {
    const t = this.topic(topic);
    const p = this.partitionOf(t, partition, 'partition');
    if (!Number.isInteger(offset) || offset < 0 || offset > p.next) {
      throw invalid('offset', `partition ${partition} of topic ${JSON.stringify(topic)} holds offsets ${p.start}–${p.next}: cannot delete before ${shown(offset)}`);
    }
    if (offset <= p.start) return Promise.resolve(p.start);
    const from = p.start;
    this.ctx.gc.run(() => {
      const lo = p.pid * SEQ_SPAN + from;
      const hi = p.pid * SEQ_SPAN + offset;
      const { bytes } = this.st.rangeBytes.get(lo, hi) as { bytes: number };
      this.st.deleteRecords.run(lo, hi);
      this.batches.dropBefore(p.pid, offset);
      p.bytes = Math.max(0, p.bytes - bytes);
      p.start = offset;
      this.removed(p);
      p.dirty = true;
      this.ctx.audit('delete-records', topic, '', offset - from, `partition ${partition}, before offset ${offset}`);
    });
    return this.ctx.gc.whenCommitted().then(() => p.start);
  }

  private topic(name: string, field = 'topic'): TopicState {
    const t = typeof name === 'string' ? this.topics.get(name) : undefined;
    if (!t) throw notFound('topic', String(name), field);
    return t;
  }

  private partitionOf(t: TopicState, partition: number, field: string): PartitionState {
    if (!Number.isInteger(partition) || partition < 0 || partition >= t.partitions.length) {
      throw invalid(field, `topic ${JSON.stringify(t.name)} has partitions 0–${t.partitions.length - 1}, got ${shown(partition)}`);
    }
    return t.partitions[partition]!;
  }

  private allocatePids(n: number): number[] {
    const out: number[] = [];
    for (let pid = 1; out.length < n && pid <= MAX_QID; pid++) if (!this.usedPids.has(pid)) out.push(pid);
    if (out.length < n) throw new BrokerError('PRECONDITION_FAILED', `no room for ${n} more partitions (limit ${MAX_QID} in total)`, 'partitions');
    return out;
  }

  // ---- produce / fetch -------------------------------------------------------

  produce(topic: string, records: ProduceRecord[], options: ProduceOptions = {}): Promise<Array<{ partition: number; offset: number }>> {
    const t = this.topic(topic);
    if (!Array.isArray(records) || records.length === 0) throw invalid('records', 'expected a non-empty list of records');
    const now = this.ctx.now();
    // Sizes first, before anything is copied or expanded.
    let total = 0;
    records.forEach((r, i) => {
      const size = byteSize(r?.key) + byteSize(r?.value);
      checkMessageSize(size, this.ctx.maxMessageBytes, `records[${i}]`);
      total += size;
    });
    if (total > this.ctx.maxCallBytes) checkCallSize(records.length, Math.ceil(total / records.length), this.ctx.maxCallBytes, 'records');
    // Validate and normalise everything first: a failed call stores nothing.
    const prepared = records.map((r, i) => {
      const field = `records[${i}]`;
      if (r === null || typeof r !== 'object') throw invalid(field, `expected a record object, got ${shown(r)}`);
      const checkBytes = (v: unknown, f: string) => {
        if (v !== null && v !== undefined && typeof v !== 'string' && !Buffer.isBuffer(v)) throw invalid(f, `expected bytes, a string or null, got ${shown(v)}`);
      };
      checkBytes(r.value, `${field}.value`);
      checkBytes(r.key, `${field}.key`);
      let key = r.key ?? null;
      let value = r.value ?? null;
      let headers: RecordHeaders = {};
      let list: HeaderList | undefined;
      if (r.headers !== undefined) {
        if (r.headers === null || typeof r.headers !== 'object') throw invalid(`${field}.headers`, `expected an object, got ${shown(r.headers)}`);
        for (const [k, v] of Object.entries(r.headers)) {
          if (typeof v !== 'string' && !Buffer.isBuffer(v)) throw invalid(`${field}.headers.${k}`, `expected a string or bytes, got ${shown(v)}`);
        }
        // Copied with fromEntries: a header named __proto__ stays an ordinary key.
        headers = Object.fromEntries(Object.entries(r.headers));
        const given = r.headers === null ? undefined : headerListOf(r.headers);
        if (given !== undefined) list = checkHeaderList(given, `${field}.headers`);
      }
      if (options.placeholders) {
        const n = i + 1;
        const sub = (v: Buffer | string | null): Buffer | string | null =>
          v === null ? null : typeof v === 'string' ? expand(v, n, now) : v.indexOf('{{') >= 0 ? Buffer.from(expand(v.toString('utf8'), n, now), 'utf8') : v;
        key = sub(key);
        value = sub(value);
        headers = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, typeof v === 'string' ? expand(v, n, now) : v]));
      }
      const keyBuf = toBuffer(key);
      const valueBuf = toBuffer(value);
      if (keyBuf === null && t.compact) throw invalid(`${field}.key`, `Compacted topic cannot accept message without key in topic ${JSON.stringify(t.name)} (cleanup.policy ${t.cleanupPolicy})`);
      let partition: number;
      if (r.partition !== undefined) partition = this.partitionOf(t, r.partition, `${field}.partition`).partition;
      else if (keyBuf !== null) partition = partitionForKey(keyBuf, t.partitions.length);
      else partition = t.rr++ % t.partitions.length;
      if (r.timestamp !== undefined && (!Number.isInteger(r.timestamp) || r.timestamp < 0)) throw invalid(`${field}.timestamp`, `expected ms since the epoch, got ${shown(r.timestamp)}`);
      const headerText = list ? encodeJson(list) : Object.keys(headers).length ? encodeJson(headers) : null;
      if (list) headers = kafkaHeaders(list);
      const size = (keyBuf?.length ?? 0) + (valueBuf?.length ?? 0) + (headerText?.length ?? 0);
      return { partition, ts: r.timestamp ?? now, key: keyBuf, value: valueBuf, headers, headerText, size };
    });
    const out: Array<{ partition: number; offset: number }> = [];
    const touched = new Set<PartitionState>();
    this.ctx.gc.run(() => {
      for (const r of prepared) {
        const p = t.partitions[r.partition]!;
        const offset = p.next;
        this.st.insertRecord.run(p.pid * SEQ_SPAN + offset, r.ts, r.key, r.value, r.headerText, r.size, null);
        p.next++;
        p.bytes += r.size;
        p.dirty = true;
        touched.add(p);
        out.push({ partition: r.partition, offset });
      }
      if (t.retentionBytes !== null && hasDelete(t)) for (const p of touched) this.trimBytes(p, t.retentionBytes);
    }, prepared.length);
    const commit = this.ctx.gc.whenCommitted();
    if (this.ctx.wantsRecords()) {
      void commit.then(() => {
        prepared.forEach((r, i) => {
          const o = out[i]!;
          this.ctx.emitRecord({ topic, record: { partition: o.partition, offset: o.offset, timestamp: r.ts, key: r.key, value: r.value, headers: r.headers } });
        });
      });
    }
    return commit.then(() => out);
  }

  /**
   * Appends a Kafka control batch (a transaction marker, transactions.ts) at
   * the partition's end: it takes an offset like a record, but is kept only
   * as a stored batch, with no row, so browsing, filters and re-drives step
   * over its offset as over a compacted one, and fetches send it as it is.
   */
  appendControl(topic: string, partition: number, batch: Buffer): number {
    const p = this.partitionOf(this.topic(topic), partition, 'partition');
    const offset = p.next;
    this.ctx.gc.run(() => {
      this.batches.insert(p.pid, offset, 1, batch);
      p.next++;
      p.dirty = true;
    });
    return offset;
  }

  /** A partition's log start and end offsets and whether its topic is compacted, or null when there is no such partition. */
  partitionRange(topic: string, partition: number): { start: number; next: number; compact: boolean } | null {
    const t = this.topics.get(topic);
    const p = t?.partitions[partition];
    return p ? { start: p.start, next: p.next, compact: t!.compact } : null;
  }

  /**
   * Deletes the records at the given offsets (base, count): those of an
   * aborted Kafka transaction whose fetches are encoded from rows, which do
   * not say which producer wrote them (transactions.ts; Kafka's cleaner
   * removes aborted records too). Offsets stay; they become gaps.
   */
  deleteRecordRanges(topic: string, partition: number, ranges: ReadonlyArray<readonly [number, number]>): void {
    const p = this.topics.get(topic)?.partitions[partition];
    if (!p || ranges.length === 0) return;
    this.ctx.gc.run(() => {
      for (const [base, count] of ranges) {
        const lo = p.pid * SEQ_SPAN + Math.max(base, p.start);
        const hi = p.pid * SEQ_SPAN + Math.min(base + count, p.next);
        if (hi <= lo) continue;
        const { bytes } = this.st.rangeBytes.get(lo, hi) as { bytes: number };
        this.st.deleteRecords.run(lo, hi);
        p.bytes = Math.max(0, p.bytes - bytes);
      }
      p.dirty = true;
    });
    this.removed(p);
  }

  /**
   * The partition's stored batches (stored-batches.ts) from the one holding
   * `offset` on, up to the end: where each begins and ends, and its size.
   */
  storedBatchPlan(topic: string, partition: number, offset: number): StoredBatchInfo[] {
    const p = this.partitionOf(this.topic(topic), partition, 'partition');
    return this.batches.plan(p.pid, offset, p.next);
  }

  /** The bytes of the partition's stored batches whose first offsets are `firstBase`…`lastBase`, in order. */
  storedBatchBytes(topic: string, partition: number, firstBase: number, lastBase: number): Buffer[] {
    const p = this.partitionOf(this.topic(topic), partition, 'partition');
    return this.batches.bytes(p.pid, firstBase, lastBase);
  }

  /**
   * Appends the records of one Kafka record batch, as the listener's Produce
   * read and checked them, to one partition: append() without its per-record
   * checks and copies (keys and values are bytes or null already, headers an
   * ordered list). With `batch`, its bytes are kept and the rows point at
   * them (stored-batches.ts). `time`: every record's time (the topic's
   * LogAppendTime), else each its own (now where it is negative). A record
   * too large, or without a key on a compacted topic, throws here, and
   * nothing is stored.
   */
  appendBatch(topic: string, partition: number, records: readonly BatchRecord[], batch: Buffer | null, time: number | null): { base: number; committed: Promise<void> } {
    const t = this.topic(topic);
    const p = this.partitionOf(t, partition, 'partition');
    if (records.length === 0) throw invalid('records', 'expected a non-empty list of records');
    const now = this.ctx.now();
    let total = 0;
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      const size = (r.key?.length ?? 0) + (r.value?.length ?? 0);
      checkMessageSize(size, this.ctx.maxMessageBytes, `records[${i}]`);
      if (r.key === null && t.compact) throw invalid(`records[${i}].key`, `Compacted topic cannot accept message without key in topic ${JSON.stringify(t.name)} (cleanup.policy ${t.cleanupPolicy})`);
      total += size;
    }
    if (total > this.ctx.maxCallBytes) checkCallSize(records.length, Math.ceil(total / records.length), this.ctx.maxCallBytes, 'records');
    // Compacted topics keep no batches (compaction removes records from inside them).
    const byReference = batch !== null && !t.compact;
    const base = p.next;
    const first = p.pid * SEQ_SPAN + base;
    this.ctx.gc.run(() => {
      let bytes = 0;
      const args = this.rowArgs;
      let filled = 0;
      for (let i = 0; i < records.length; i++) {
        const r = records[i]!;
        let size = (r.key?.length ?? 0) + (r.value?.length ?? 0);
        let text: string | null = null;
        if (byReference) for (const [k, v] of r.headers) size += Buffer.byteLength(k) + (v?.length ?? 0);
        else if (r.headers.length > 0) size += (text = encodeJson(r.headers)).length;
        bytes += size;
        const at = filled * ROW_VALUES;
        args[at] = first + i;
        args[at + 1] = time ?? (r.timestamp < 0 ? now : r.timestamp);
        args[at + 2] = r.key;
        args[at + 3] = byReference ? (r.value === null ? null : IN_BATCH) : r.value;
        args[at + 4] = text;
        args[at + 5] = size;
        args[at + 6] = byReference ? first : null;
        if (++filled === ROWS_PER_INSERT) {
          this.st.insertRecords.run(args);
          filled = 0;
        }
      }
      for (let j = 0; j < filled; j++) this.st.insertRecord.run(args.slice(j * ROW_VALUES, (j + 1) * ROW_VALUES));
      args.fill(null);
      if (byReference) this.batches.insert(p.pid, base, records.length, batch);
      p.next = base + records.length;
      p.bytes += bytes;
      p.dirty = true;
      if (t.retentionBytes !== null && hasDelete(t)) this.trimBytes(p, t.retentionBytes);
    }, records.length);
    const committed = this.ctx.gc.whenCommitted();
    if (this.ctx.wantsRecords()) {
      void committed.then(() => {
        records.forEach((r, i) => {
          const timestamp = time ?? (r.timestamp < 0 ? now : r.timestamp);
          this.ctx.emitRecord({ topic, record: { partition, offset: base + i, timestamp, key: r.key, value: r.value, headers: kafkaHeaders(r.headers) } });
        });
      });
    }
    return { base, committed };
  }

  /** Kafka's ListOffsets by timestamp: the first offset whose record time is ≥ ts. */
  private offsetForTime(p: PartitionState, ts: number): number {
    const row = this.st.seekTime.get(p.pid * SEQ_SPAN + p.start, p.pid * SEQ_SPAN + p.next, ts) as { id: number } | undefined;
    return row ? row.id - p.pid * SEQ_SPAN : p.next;
  }

  private subject(key: Buffer | null, value: Buffer | null, time: number, headersOf: () => RecordHeaders): FilterSubject {
    let headers: Record<string, unknown> | undefined;
    return {
      body: value,
      text: value !== null && isUtf8(value) && value.indexOf(0) < 0,
      properties: () => ({}),
      headers: () => (headers ??= headersOf()),
      key,
      time,
    };
  }

  /** Reads from one partition; with a filter, scans at most maxScan records. */
  private scan(p: PartitionState, from: number, limit: number, filter: CompiledFilter | null, maxScan: number): FetchResult {
    const records: TopicRecord[] = [];
    let pos = Math.max(from, p.start);
    let scanned = 0;
    const hi = p.pid * SEQ_SPAN + p.next;
    while (records.length < limit && pos < p.next && scanned < maxScan) {
      const n = filter ? Math.min(SCAN_CHUNK, maxScan - scanned) : limit - records.length;
      const rows = this.st.scanRows.all(p.pid * SEQ_SPAN + pos, hi, n) as RawRow[];
      if (rows.length === 0) {
        pos = p.next;
        break;
      }
      const base = p.pid * SEQ_SPAN;
      for (const r of rows) {
        scanned++;
        const offset = r[0] - base;
        pos = offset + 1;
        let key = r[2];
        let value = r[3];
        let list: HeaderList | null = null;
        if (r[6] !== null) {
          const kept = this.batches.record(p.pid, r[6], offset);
          key = kept.key;
          value = kept.value;
          list = kept.headers;
        }
        const text = r[4];
        const headersOf = (): RecordHeaders => (list ? (list.length ? kafkaHeaders(list) : {}) : text === null ? {} : storedHeaders(text));
        if (filter && !filter.all(this.subject(key, value, r[1], headersOf))) continue;
        records.push({ partition: p.partition, offset, timestamp: r[1], key, value, headers: headersOf() });
        if (records.length >= limit) break;
      }
    }
    return { records, nextOffset: pos, scanned, matched: records.length };
  }

  fetch(topic: string, partition: number, options: FetchOptions = {}): FetchResult {
    const t = this.topic(topic);
    const p = this.partitionOf(t, partition, 'partition');
    const limit = checkLimit(options.limit ?? 100);
    const filter = compileFilter(options.filter);
    let from = p.start;
    if (options.offset !== undefined) {
      if (!Number.isInteger(options.offset) || options.offset < 0) throw invalid('offset', `expected a non-negative integer, got ${shown(options.offset)}`);
      from = options.offset;
    } else if (options.timestamp !== undefined) {
      from = this.offsetForTime(p, options.timestamp);
    }
    return this.scan(p, from, limit, filter, options.maxScan ?? (filter ? 200_000 : Number.MAX_SAFE_INTEGER));
  }

  /**
   * Reads across partitions, merged by timestamp. The cursor holds every
   * partition's next offset, so paging is exact; `scanned` counts records
   * passed over (offsets advanced).
   */
  browseTopic(topic: string, options: BrowseTopicOptions = {}): BrowseTopicPage {
    const t = this.topic(topic);
    const limit = checkLimit(options.limit ?? 100);
    const filter = compileFilter(options.filter);
    const parts = options.partition !== undefined ? [this.partitionOf(t, options.partition, 'partition')] : t.partitions;
    let positions: number[];
    if (options.cursor) {
      positions = decodeCursor(options.cursor, parts.length);
    } else {
      positions = parts.map((p) =>
        options.offset !== undefined ? Math.max(options.offset, p.start) : options.timestamp !== undefined ? this.offsetForTime(p, options.timestamp) : p.start,
      );
    }
    const budget = Math.max(1, Math.floor((options.maxScan ?? 200_000) / parts.length));
    const candidates: Array<{ r: TopicRecord; i: number }> = [];
    const reached: number[] = [];
    parts.forEach((p, i) => {
      const res = this.scan(p, positions[i]!, limit, filter, filter ? budget : Number.MAX_SAFE_INTEGER);
      for (const r of res.records) candidates.push({ r, i });
      reached.push(res.nextOffset);
    });
    candidates.sort((a, b) => a.r.timestamp - b.r.timestamp || a.r.partition - b.r.partition || a.r.offset - b.r.offset);
    const taken = candidates.slice(0, limit);
    const next = positions.slice();
    const tookFrom = new Set<number>();
    for (const c of taken) {
      next[c.i] = c.r.offset + 1;
      tookFrom.add(c.i);
    }
    // A partition that contributed nothing but scanned ahead (filtered-out
    // records, or records all newer than the page) may skip what it found
    // nothing in; one whose matches were left out stays where it is.
    parts.forEach((_p, i) => {
      if (tookFrom.has(i)) return;
      if (!candidates.some((c) => c.i === i)) next[i] = Math.max(next[i]!, reached[i]!);
    });
    let scanned = 0;
    parts.forEach((p, i) => (scanned += Math.max(0, next[i]! - Math.max(positions[i]!, p.start))));
    const more = parts.some((p, i) => next[i]! < p.next);
    return { records: taken.map((c) => c.r), nextCursor: more ? encodeCursor(next) : null, scanned, matched: taken.length };
  }

  // ---- retention -------------------------------------------------------------

  private trimBytes(p: PartitionState, limit: number): void {
    while (p.bytes > limit && p.start < p.next) {
      const rows = this.st.scanSizes.all(p.pid * SEQ_SPAN + p.start, p.pid * SEQ_SPAN + p.next, 1000) as Array<{ id: number; size: number }>;
      if (rows.length === 0) break;
      let cut = p.start;
      for (const r of rows) {
        if (p.bytes <= limit) break;
        p.bytes -= r.size;
        cut = r.id - p.pid * SEQ_SPAN + 1;
      }
      this.st.deleteRecords.run(p.pid * SEQ_SPAN + p.start, p.pid * SEQ_SPAN + cut);
      this.batches.dropBefore(p.pid, cut);
      p.start = cut;
      p.dirty = true;
      this.removed(p);
    }
  }

  private trimTime(p: PartitionState, cutoff: number): void {
    for (;;) {
      const rows = this.st.scanSizes.all(p.pid * SEQ_SPAN + p.start, p.pid * SEQ_SPAN + p.next, 1000) as Array<{ id: number; ts: number; size: number }>;
      let cut = p.start;
      let stop = rows.length === 0;
      for (const r of rows) {
        if (r.ts >= cutoff) {
          stop = true;
          break;
        }
        p.bytes -= r.size;
        cut = r.id - p.pid * SEQ_SPAN + 1;
      }
      if (cut > p.start) {
        this.st.deleteRecords.run(p.pid * SEQ_SPAN + p.start, p.pid * SEQ_SPAN + cut);
        this.batches.dropBefore(p.pid, cut);
        p.start = cut;
        p.dirty = true;
        this.removed(p);
      }
      if (stop || rows.length < 1000) return;
    }
  }

  /** Deletes whole records past retention (time and size), on topics whose cleanup.policy includes delete. */
  applyRetention(): void {
    const now = this.ctx.now();
    for (const t of this.topics.values()) {
      if (t.retentionMs === null && t.retentionBytes === null) continue;
      if (!hasDelete(t)) continue;
      const work = t.partitions.filter((p) => p.start < p.next);
      if (work.length === 0) continue;
      this.ctx.gc.run(() => {
        for (const p of work) {
          if (t.retentionMs !== null) this.trimTime(p, now - t.retentionMs);
          if (t.retentionBytes !== null) this.trimBytes(p, t.retentionBytes);
        }
      });
    }
  }

  /** Bounded compaction work for compacted topics (compaction.ts); the engine calls it every tick. */
  compact(budget?: number): void {
    const topics: TopicState[] = [];
    for (const t of this.topics.values()) if (t.compact) topics.push(t);
    if (topics.length === 0) return;
    this.compactor.step(topics, this.ctx.now(), budget);
  }

  /** Passes finished and records removed by compaction since the engine opened. */
  compactionStats(): CompactionStats {
    return { ...this.compactor.stats };
  }

  /**
   * A number that changes whenever records of the partition are deleted
   * (retention, DeleteRecords, compaction), and differs between partitions
   * (a topic deleted and created again included): a reader that cached
   * records can tell whether they are still there. -1 for no such partition.
   */
  recordsVersion(topic: string, partition: number): number {
    const p = this.topics.get(topic)?.partitions[partition];
    if (!p) return -1;
    let v = this.versions.get(p);
    if (v === undefined) this.versions.set(p, (v = ++this.lastVersion));
    return v;
  }

  private removed(p: PartitionState): void {
    this.versions.set(p, ++this.lastVersion);
  }

  // ---- consumer groups ---------------------------------------------------------

  joinGroup(groupId: string, memberId: string, topics: string[]): JoinGroupResult {
    checkName(groupId, 'groupId');
    checkName(memberId, 'memberId');
    if (!Array.isArray(topics) || topics.some((x) => typeof x !== 'string')) throw invalid('topics', `expected a list of topic names, got ${shown(topics)}`);
    const r = this.ctx.coordinated.joinDirect(groupId, memberId, topics, this.partitionCount);
    return { groupId, memberId, generation: r.generation, assignments: r.assignments, members: r.members };
  }

  leaveGroup(groupId: string, memberId: string): LeaveGroupResult {
    const r = this.ctx.coordinated.leaveDirect(groupId, memberId, this.partitionCount);
    return { groupId, generation: r.generation, members: r.members };
  }

  private readonly partitionCount = (topic: string): number | undefined => this.topics.get(topic)?.partitions.length;

  commitOffsets(groupId: string, offsets: OffsetCommit[]): Promise<void> {
    checkName(groupId, 'groupId');
    if (!Array.isArray(offsets)) throw invalid('offsets', `expected a list of { topic, partition, offset }, got ${shown(offsets)}`);
    offsets.forEach((o, i) => {
      const t = this.topic(o?.topic, `offsets[${i}].topic`);
      this.partitionOf(t, o.partition, `offsets[${i}].partition`);
      if (!Number.isInteger(o.offset) || o.offset < 0) throw invalid(`offsets[${i}].offset`, `expected a non-negative integer, got ${shown(o.offset)}`);
    });
    const now = this.ctx.now();
    this.ctx.gc.run(() => {
      for (const o of offsets) this.st.upsertOffset.run(groupId, o.topic, o.partition, o.offset, now);
    });
    return this.ctx.gc.whenCommitted();
  }

  listGroups(): GroupInfo[] {
    const ids = new Set<string>(this.ctx.coordinated.known());
    for (const r of this.st.groupIds.all() as Array<{ group_id: string }>) ids.add(r.group_id);
    return [...ids].sort().map((id) => this.groupInfo(id));
  }

  /** One group as listGroups shows it, without describing every other group; undefined when no such group exists. */
  findGroup(groupId: string): GroupInfo | undefined {
    // The committed offsets are read once: they say whether the group exists (as hasGroup does) and describe it.
    const rows = this.st.groupOffsets.all(groupId) as CommittedRow[];
    return this.knownGroup(groupId) || rows.length > 0 ? this.groupInfo(groupId, rows) : undefined;
  }

  groupInfo(groupId: string, rows = this.st.groupOffsets.all(groupId) as CommittedRow[]): GroupInfo {
    const direct = this.ctx.coordinated.directMembers(groupId);
    const committed = new Map<string, number>();
    for (const r of rows) committed.set(`${r.topic}\0${r.partition}`, r.committed);
    const keys = new Set(committed.keys());
    for (const m of direct) for (const a of m.assignments) keys.add(`${a.topic}\0${a.partition}`);
    const wireMembers = this.coordinatedMembers(groupId);
    if (wireMembers?.protocolType === 'consumer') for (const m of wireMembers.members) for (const a of consumerAssignment(m.assignment)) keys.add(`${a.topic}\0${a.partition}`);
    const now = this.ctx.now();
    const partitions: GroupPartitionLag[] = [];
    for (const key of [...keys].sort()) {
      const [topic, ps] = key.split('\0') as [string, string];
      const t = this.topics.get(topic);
      const p = t?.partitions[Number(ps)];
      if (!t || !p) continue;
      const c = committed.get(key);
      const from = Math.max(c ?? p.start, p.start);
      const lag = Math.max(0, p.next - from);
      let timeLagMs = 0;
      if (lag > 0) {
        const row = this.st.recordTs.get(p.pid * SEQ_SPAN + from) as { ts: number } | undefined;
        if (row) timeLagMs = Math.max(0, now - row.ts);
      }
      partitions.push({ topic, partition: p.partition, committed: c ?? null, end: p.next, lag, timeLagMs });
    }
    const members = direct;
    // Members of Kafka clients: their assignments are the leader's bytes, read when they are the consumer protocol's.
    const wire = wireMembers;
    if (wire) for (const m of wire.members) members.push({ memberId: m.memberId, assignments: wire.protocolType === 'consumer' ? consumerAssignment(m.assignment) : [] });
    return {
      groupId,
      // A group with members is active (Stable here) whether or not the coordinator is rebalancing it.
      state: members.length > 0 ? 'Stable' : 'Empty',
      generation: this.ctx.coordinated.describe(groupId)?.generation ?? 0,
      members,
      partitions,
      totalLag: partitions.reduce((s, p) => s + p.lag, 0),
    };
  }

  /**
   * What resetting a group's offsets would change, partition by partition,
   * as `kafka-consumer-groups --reset-offsets --dry-run` shows it. Targets are
   * clamped to the partition's log (start … end); a timestamp resolves to the
   * first record at or after it, or the end when there is none.
   */
  planGroupReset(req: GroupResetRequest): GroupResetPlan {
    checkName(req.groupId, 'groupId');
    if (req.to === 'timestamp' && !(Number.isInteger(req.timestamp) && req.timestamp! >= 0)) throw invalid('timestamp', 'to "timestamp" needs a timestamp (epoch ms)');
    if (req.to === 'offset' && !(Number.isInteger(req.offset) && req.offset! >= 0)) throw invalid('offset', 'to "offset" needs a non-negative offset');
    if (req.partitions && req.topic === undefined) throw invalid('partitions', 'partitions need a topic');
    const committed = this.st.groupOffsets.all(req.groupId) as CommittedRow[];
    if (!this.knownGroup(req.groupId) && committed.length === 0 && req.topic === undefined) throw notFound('consumer group', req.groupId, 'groupId');
    let rows: Array<{ topic: string; partition: number; committed: number | null }>;
    if (req.topic !== undefined) {
      const t = this.topic(req.topic);
      const wanted = req.partitions ?? t.partitions.map((p) => p.partition);
      wanted.forEach((p, i) => this.partitionOf(t, p, `partitions[${i}]`));
      rows = wanted.map((p) => ({ topic: t.name, partition: p, committed: committed.find((c) => c.topic === t.name && c.partition === p)?.committed ?? null }));
    } else {
      rows = committed.filter((c) => this.topics.get(c.topic)?.partitions[c.partition]);
    }
    if (rows.length === 0) throw invalid('topic', `consumer group ${JSON.stringify(req.groupId)} has no committed offsets: name a topic to reset`);
    const changes: GroupOffsetChange[] = rows.map((r) => {
      const p = this.topics.get(r.topic)!.partitions[r.partition]!;
      let target: number;
      if (req.to === 'earliest') target = p.start;
      else if (req.to === 'latest') target = p.next;
      else if (req.to === 'offset') target = Math.min(Math.max(req.offset!, p.start), p.next);
      else {
        const row = this.st.seekTime.get(p.pid * SEQ_SPAN + p.start, p.pid * SEQ_SPAN + p.next, req.timestamp!) as { id: number } | undefined;
        target = row ? row.id - p.pid * SEQ_SPAN : p.next;
      }
      const from = Math.max(r.committed ?? p.start, p.start);
      return { topic: r.topic, partition: r.partition, current: r.committed, target, end: p.next, lagBefore: Math.max(0, p.next - from), lagAfter: Math.max(0, p.next - target) };
    });
    const members = this.activeMembers(req.groupId);
    const canApply = members === 0;
    return {
      groupId: req.groupId,
      state: members > 0 ? 'Stable' : 'Empty',
      canApply,
      ...(canApply ? {} : { reason: `consumer group ${JSON.stringify(req.groupId)} has ${members} active member${members === 1 ? '' : 's'}: stop its consumers before resetting its offsets` }),
      changes,
      applied: false,
    };
  }

  /** Applies planGroupReset(); refused while the group has members, as Kafka refuses it for an active group. */
  async resetGroupOffsets(req: GroupResetRequest): Promise<GroupResetPlan> {
    const plan = this.planGroupReset(req);
    if (!plan.canApply) throw new BrokerError('PRECONDITION_FAILED', plan.reason!, 'groupId');
    await this.commitOffsets(
      req.groupId,
      plan.changes.map((c) => ({ topic: c.topic, partition: c.partition, offset: c.target })),
    );
    this.ctx.audit('reset-offsets', req.groupId, req.topic ?? '', plan.changes.length, `group, to ${req.to}${req.to === 'timestamp' ? ` ${req.timestamp}` : req.to === 'offset' ? ` ${req.offset}` : ''}`);
    return { ...plan, applied: true };
  }

  /** Deletes a group and its committed offsets; refused while it has members (Kafka's NON_EMPTY_GROUP). */
  deleteGroup(groupId: string): Promise<void> {
    checkName(groupId, 'groupId');
    if (!this.hasGroup(groupId)) return Promise.reject(notFound('consumer group', groupId, 'groupId'));
    const members = this.activeMembers(groupId);
    if (members > 0) return Promise.reject(new BrokerError('PRECONDITION_FAILED', `consumer group ${JSON.stringify(groupId)} has ${members} active member${members === 1 ? '' : 's'}: stop its consumers before deleting it`, 'groupId'));
    this.ctx.gc.run(() => this.st.deleteGroupOffsets.run(groupId));
    this.ctx.coordinated.forget(groupId);
    this.ctx.audit('delete-group', groupId, '', 0, 'group');
    return this.ctx.gc.whenCommitted();
  }

  /** Deletes a group's committed offsets of the given partitions (Kafka's OffsetDelete); the caller checks subscriptions. */
  deleteGroupPartitionOffsets(groupId: string, partitions: TopicPartitionRef[]): Promise<void> {
    checkName(groupId, 'groupId');
    this.ctx.gc.run(() => {
      for (const p of partitions) this.st.deleteGroupPartitionOffset.run(groupId, p.topic, p.partition);
    });
    return this.ctx.gc.whenCommitted();
  }

  hasGroup(groupId: string): boolean {
    return this.knownGroup(groupId) || this.st.groupOffsets.all(groupId).length > 0;
  }

  /** A group the coordinator has seen members in (it stays known, empty, until deleted). */
  private knownGroup(groupId: string): boolean {
    return (this.ctx.coordinated.describe(groupId)?.generation ?? 0) > 0;
  }

  /** The coordinator's view of a group while it has members, else null. */
  private coordinatedMembers(groupId: string): GroupDescription | null {
    const d = this.ctx.coordinated.describe(groupId);
    return d && d.members.length > 0 ? d : null;
  }

  /** Members of both kinds: an active group refuses offset resets and deletion, as Kafka does. */
  private activeMembers(groupId: string): number {
    return this.ctx.coordinated.directMembers(groupId).length + (this.coordinatedMembers(groupId)?.members.length ?? 0);
  }
}

function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw invalid('limit', `expected an integer from 1 to 100000, got ${shown(limit)}`);
  return limit;
}

function checkName(v: unknown, field: string): void {
  if (typeof v !== 'string' || v.length === 0 || v.length > 255) throw invalid(field, `expected a non-empty string of at most 255 characters, got ${shown(v)}`);
}

function encodeCursor(positions: number[]): string {
  return 't:' + positions.join(',');
}

function decodeCursor(cursor: string, n: number): number[] {
  const parts = cursor.startsWith('t:') ? cursor.slice(2).split(',') : [];
  const out = parts.map(Number);
  if (out.length !== n || out.some((x) => !Number.isInteger(x) || x < 0)) throw invalid('cursor', 'not a cursor from a previous page of this topic (and partition selection)');
  return out;
}

