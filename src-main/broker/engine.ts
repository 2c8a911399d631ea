/**
 * The embedded durable broker engine: AMQP-model exchanges and queues,
 * Kafka-model streams, dead-lettering, delays, retries, dedup, re-drive and
 * metrics, on one SQLite database.
 *
 * Memory model: message bodies live only in SQLite. Per queue the engine
 * keeps counters, one delivery cursor per priority level, the (small) list
 * of requeued sequence numbers and the unacked set; consumers are fed by
 * reading batches from SQLite. Unacked state is never written to disk: after
 * a restart every stored message is ready again, and the persisted
 * `delivered_upto` mark tells which of them had been handed out (so they come
 * back marked redelivered), as AMQP requires for unacknowledged messages of
 * a closed connection.
 */
import { randomBytes } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { openDatabase, type SqliteDatabase } from '../storage/database.js';
import { GroupCommit } from '../storage/group-commit.js';
import { MAX_QID, migrate, SEQ_SPAN } from '../storage/migrations.js';
import { DynamicStatements, prepareStatements } from '../storage/statements.js';
import { checkTable, EQUIVALENCE_ARGS, inequivalent, parseExchangeArgs, parseQueueArgs, type QueueArgs } from './args.js';
import { canonicalJson, decodeJson, decodeProps, encodeJson, fieldEquals, StoredDataError } from './codec.js';
import { TypedEmitter } from './emitter.js';
import { deathProps, type DeathReason, envelopeOf, isCycle, isRecord, isText, makeEnvelope, movableEnvelope, normalizeProps, unreadableProps, type Envelope } from './envelope.js';
import { BrokerError, invalid, notFound, shown } from './errors.js';
import { compileFilter, globContains, type CompiledFilter, type FilterSubject } from '../ground/filter.js';
import { headersMatch } from './headers-match.js';
import { checkCallSize, checkMessageSize, MAX_CALL_BYTES, MAX_MESSAGE_BYTES, mib } from './limits.js';
import { MetricsHistory } from './metrics.js';
import { bufferHasPlaceholders, expand, expandHeaders, hasPlaceholders, headersHavePlaceholders } from '../ground/placeholders.js';

/** String properties in which publish-many expands placeholders per copy. */
const PLACEHOLDER_PROPERTIES = ['messageId', 'correlationId', 'type', 'appId'] as const;
import { describeSelection, describeTarget, noteFailure, RedriveJobs, type RedriveJobState, type RedriveSelection } from './redrive.js';
import { Streams } from './streams.js';
import { compileTopic, type TopicMatcher } from './topic.js';
import type {
  DiskAlarm,
  AuditEntry,
  BindingInfo,
  BindingSpec,
  BrowsedMessage,
  BrowseOptions,
  BrowsePage,
  BrowseTopicOptions,
  BrowseTopicPage,
  ConsumeOptions,
  DeadLetterQueueInfo,
  Delivery,
  DestinationType,
  EngineEvents,
  EngineOptions,
  ExchangeInfo,
  ExchangeOptions,
  ExchangeType,
  FetchOptions,
  FetchResult,
  FieldTable,
  GetOptions,
  GroupInfo,
  ConsumerSummary,
  GroupResetPlan,
  GroupResetRequest,
  HistorySeries,
  JoinGroupResult,
  LeaveGroupResult,
  MessageProperties,
  MessageState,
  OffsetCommit,
  ProduceOptions,
  ProduceRecord,
  PublishManyRequest,
  PublishManyResult,
  PublishRequest,
  PublishResult,
  QueueInfo,
  QueueOptions,
  QueueRates,
  RedriveJob,
  RedriveRequest,
  StatsSnapshot,
  TopicInfo,
  TopicOptions,
} from './types.js';

// ---- internal state -----------------------------------------------------------

interface MsgRow {
  id: number;
  prio: number | null;
  enq: number;
  exp: number | null;
  exchange: string;
  rk: string;
  props: string | null;
  body: Buffer;
  size: number;
  bin: number;
  redelivered: number;
  returns: number;
  persistent: number;
  dedup: string | null;
}

interface DelayedRow {
  id: number;
  qid: number;
  due: number;
  enq: number;
  exchange: string;
  rk: string;
  props: string | null;
  body: Buffer;
  size: number;
  bin: number;
  redelivered: number;
  returns: number;
  persistent: number;
  dedup: string | null;
}

/** One priority level's delivery state (non-priority queues have one). */
interface Level {
  /** Highest seq of this level already taken from disk for delivery. */
  cursor: number;
  /** Ready messages of this level (beyond the cursor + requeued). */
  ready: number;
  /** Seqs put back by nack/cancel: delivered before anything past the cursor. Sorted. */
  requeued: number[];
}

interface Unacked {
  tag: number;
  id: number;
  seq: number;
  prio: number | null;
  size: number;
  returns: number;
  redelivered: boolean;
  queue: QueueState;
  consumer: Consumer;
}

interface Consumer {
  tag: string;
  queue: QueueState;
  prefetch: number;
  noAck: boolean;
  exclusive: boolean;
  owner: string | null;
  unacked: Map<number, Unacked>;
  onDelivery: (d: Delivery) => void;
  onCancel: ((reason: string) => void) | null;
  active: boolean;
}

interface Totals {
  publish: number;
  deliver: number;
  ack: number;
  redeliver: number;
}

interface QueueState {
  qid: number;
  base: number;
  name: string;
  durable: boolean;
  autoDelete: boolean;
  exclusive: boolean;
  owner: string | null;
  arguments: FieldTable;
  args: QueueArgs;
  /** Rows in `messages` (ready + unacked). */
  count: number;
  bytes: number;
  nextSeq: number;
  deliveredUpto: number;
  /** delivered_upto as found at open: rows at or below it were in flight. */
  recoveredUpto: number;
  levels: Level[];
  prio: boolean;
  unacked: Map<number, Unacked>;
  unackedBytes: number;
  delayed: number;
  delayedBytes: number;
  consumers: Consumer[];
  rr: number;
  lastUsed: number;
  hadConsumer: boolean;
  /** Some stored message may carry an expiry time. */
  expiring: boolean;
  totals: Totals;
  prevTotals: Totals;
  rates: QueueRates;
  deleted: boolean;
}

interface BindingState extends BindingInfo {
  argsKey: string;
  topic: TopicMatcher | null;
}

interface ExchangeState extends ExchangeInfo {
  alternateExchange: string | undefined;
  builtin: boolean;
  bindings: BindingState[];
  direct: Map<string, BindingState[]>;
}

type Outcome = 'ok' | 'rejected' | 'dedup';

/** Where and as what a re-driven message goes (its body aside). */
interface MovePlan {
  targets: QueueState[];
  env: Envelope;
}

const BUILTIN_EXCHANGES: ReadonlyArray<[string, ExchangeType]> = [
  ['', 'direct'],
  ['amq.direct', 'direct'],
  ['amq.fanout', 'fanout'],
  ['amq.topic', 'topic'],
  ['amq.headers', 'headers'],
  ['amq.match', 'headers'],
];

/** RabbitMQ's default `disk_free_limit`: 50 MB. */
const DEFAULT_DISK_FREE_LIMIT = 50_000_000;

/** Bytes in decimal units (MB = 1,000,000 bytes), as RabbitMQ states its disk limit. */
function mb(bytes: number): string {
  const [unit, size] = bytes >= 1e12 ? ['TB', 1e12] : bytes >= 1e9 ? ['GB', 1e9] : ['MB', 1e6];
  const n = bytes / size;
  return `${n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US')} ${unit}`;
}

/**
 * Message columns in a fixed order. Hot reads use better-sqlite3's raw
 * (array) mode and build the row object here: measured ~2x faster than
 * letting the addon create a 14-property object per row.
 */
const MSG_COLS = 'id, prio, enq, exp, exchange, rk, props, body, size, bin, redelivered, returns, persistent, dedup';
type RawRow = [number, number | null, number, number | null, string, string, string | null, Buffer, number, number, number, number, number, string | null];

function toRow(a: unknown[]): MsgRow {
  const r = a as RawRow;
  return { id: r[0], prio: r[1], enq: r[2], exp: r[3], exchange: r[4], rk: r[5], props: r[6], body: r[7], size: r[8], bin: r[9], redelivered: r[10], returns: r[11], persistent: r[12], dedup: r[13] };
}

function toRows(list: unknown[]): MsgRow[] {
  const out = new Array<MsgRow>(list.length);
  for (let i = 0; i < list.length; i++) out[i] = toRow(list[i] as unknown[]);
  return out;
}
const DISPATCH_BATCH = 512;
/** A filtered browse reads this many candidate rows per statement. */
const SCAN_FETCH = 256;

/**
 * End (sequence, inclusive) of the next id range a filtered browse scans from
 * `lo`: a JavaScript filter (JSON path, header) costs more per row, so its
 * ranges are shorter; none runs past what the scan budget has left.
 */
function scanChunkEnd(lo: number, filter: CompiledFilter, budgetLeft: number): number {
  const span = filter.js ? 2_000 : 50_000;
  return Math.min(lo + Math.max(1, Math.min(span, Math.floor(budgetLeft))), SEQ_SPAN - 1);
}
const MAINTENANCE_MS = 100;

const SQL = {
  insertMsg: 'INSERT INTO messages (id, prio, enq, exp, exchange, rk, props, body, size, bin, redelivered, returns, persistent, dedup) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)',
  deleteMsg: 'DELETE FROM messages WHERE id = ?',
  deleteSpan: 'DELETE FROM messages WHERE id >= ? AND id <= ?',
  getMsg: `SELECT ${MSG_COLS} FROM messages WHERE id = ?`,
  readFifo: `SELECT ${MSG_COLS} FROM messages WHERE id > ? AND id < ? ORDER BY id LIMIT ?`,
  readPrio: `SELECT ${MSG_COLS} FROM messages WHERE prio = ? AND id > ? AND id < ? ORDER BY id LIMIT ?`,
  markReturned: 'UPDATE messages SET redelivered = 1, returns = ? WHERE id = ?',
  deleteRange: 'DELETE FROM messages WHERE id > ? AND id < ?',
  firstId: 'SELECT id FROM messages WHERE id > ? AND id < ? ORDER BY id LIMIT 1',
  lastId: 'SELECT id FROM messages WHERE id > ? AND id < ? ORDER BY id DESC LIMIT 1',
  countRange: 'SELECT count(*) AS n FROM messages WHERE id > ? AND id <= ?',
  firstPrio: 'SELECT id FROM messages WHERE prio = ? AND id > ? AND id < ? ORDER BY id LIMIT 1',
  nthPrio: 'SELECT id FROM messages WHERE prio = ? AND id > ? AND id < ? ORDER BY id LIMIT 1 OFFSET ?',
  countPrio: 'SELECT count(*) AS n FROM messages WHERE prio = ? AND id > ? AND id <= ?',
  dedupInQueue: 'SELECT 1 AS x FROM messages WHERE dedup = ? AND id > ? AND id < ? LIMIT 1',
  dedupInDelayed: 'SELECT 1 AS x FROM delayed WHERE qid = ? AND dedup = ? LIMIT 1',
  insertDelayed: 'INSERT INTO delayed (qid, due, enq, exchange, rk, props, body, size, bin, redelivered, returns, persistent, dedup) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)',
  deleteDelayed: 'DELETE FROM delayed WHERE id = ?',
  dueDelayed: 'SELECT * FROM delayed WHERE due <= ? ORDER BY due, id LIMIT ?',
  delayedPage: 'SELECT * FROM delayed WHERE qid = ? AND id > ? ORDER BY id LIMIT ?',
  deleteDelayedQueue: 'DELETE FROM delayed WHERE qid = ?',
  dedupGet: 'SELECT expires_at FROM dedup_cache WHERE qid = ? AND key = ?',
  dedupPut: 'INSERT OR REPLACE INTO dedup_cache (qid, key, expires_at) VALUES (?, ?, ?)',
  dedupExpire: 'DELETE FROM dedup_cache WHERE expires_at <= ?',
  dedupDeleteQueue: 'DELETE FROM dedup_cache WHERE qid = ?',
  dedupCount: 'SELECT count(*) AS n FROM dedup_cache WHERE qid = ?',
  dedupEvict: 'DELETE FROM dedup_cache WHERE qid = ? AND key IN (SELECT key FROM dedup_cache WHERE qid = ? ORDER BY expires_at LIMIT ?)',
  insertQueue:
    'INSERT INTO queues (qid, name, durable, auto_delete, exclusive, arguments, created_at, msg_count, msg_bytes, next_seq, delivered_upto) VALUES (?,?,?,?,?,?,?,0,0,1,0)',
  deleteQueue: 'DELETE FROM queues WHERE qid = ?',
  saveQueue: 'UPDATE queues SET msg_count = ?, msg_bytes = ?, next_seq = ?, delivered_upto = ? WHERE qid = ?',
  upsertExchange: 'INSERT OR REPLACE INTO exchanges (name, type, durable, auto_delete, internal, arguments) VALUES (?,?,?,?,?,?)',
  deleteExchange: 'DELETE FROM exchanges WHERE name = ?',
  insertBinding: 'INSERT OR IGNORE INTO bindings (source, destination, destination_type, routing_key, args_key, arguments) VALUES (?,?,?,?,?,?)',
  deleteBinding: 'DELETE FROM bindings WHERE source = ? AND destination_type = ? AND destination = ? AND routing_key = ? AND args_key = ?',
  insertAudit: 'INSERT INTO audit (at, connection_id, action, source, target, count, selection, state) VALUES (?,?,?,?,?,?,?,?)',
  updateAudit: 'UPDATE audit SET count = ?, state = ? WHERE id = ?',
  listAudit: 'SELECT * FROM audit ORDER BY id DESC LIMIT ?',
  pruneAudit: 'DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET 10000)',
} as const;

/** A stored message whose properties no version wrote (a damaged row): the error names it and its queue. */
function unreadable(q: { name: string }, row: { id: number; due?: number }, err: unknown): unknown {
  if (!(err instanceof StoredDataError)) return err;
  const id = row.due === undefined ? String(row.id) : `d${row.id}`;
  return new BrokerError('PRECONDITION_FAILED', `message ${id} of queue ${JSON.stringify(q.name)}: its ${err.message}`, 'queue');
}

/** Binary search in a sorted number array: index if found, else -(insertion point) - 1. */
function bsearch(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = a[mid]!;
    if (v === x) return mid;
    if (v < x) lo = mid + 1;
    else hi = mid - 1;
  }
  return -lo - 1;
}

function insertSorted(a: number[], x: number): void {
  const i = bsearch(a, x);
  if (i < 0) a.splice(-i - 1, 0, x);
}

/**
 * A message is expired once its expiry time has passed. A TTL of 0 gives
 * expiry == enqueue time; such a message is only kept when a consumer was
 * ready to take it at once (see insertMessage), so it is not expired in the
 * millisecond it arrived.
 */
function isExpired(row: { exp: number | null; enq: number }, now: number): boolean {
  if (row.exp === null) return false;
  return row.exp < now || (row.exp === now && row.exp !== row.enq);
}

function checkName(value: unknown, field: string, what: string): string {
  if (typeof value !== 'string') throw invalid(field, `expected a ${what} name (string), got ${shown(value)}`);
  if (Buffer.byteLength(value) > 255) throw invalid(field, `${what} names are at most 255 bytes`);
  return value;
}

function checkInt(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(field, `expected an integer from ${min} to ${max}, got ${shown(value)}`);
  }
  return value;
}

// ---- the engine -------------------------------------------------------------------

export class Engine {
  /** 'stats' (1 Hz), 'redrive' (progress ≤ 4/s and final state), 'record' (appended topic records), 'returned' (mandatory returns). */
  readonly events = new TypedEmitter<EngineEvents>();

  private readonly db: SqliteDatabase;
  private readonly gc: GroupCommit;
  private readonly st;
  private readonly dyn: DynamicStatements;
  private readonly now: () => number;
  private readonly maxBodyBytes: number;
  private readonly maxCallBytes: number;
  private readonly exchanges = new Map<string, ExchangeState>();
  private readonly queues = new Map<string, QueueState>();
  private readonly byQid = new Map<number, QueueState>();
  private readonly consumers = new Map<string, Consumer>();
  private readonly byOwner = new Map<string, Set<Consumer>>();
  private readonly tags = new Map<number, Unacked>();
  private readonly dirty = new Set<QueueState>();
  private readonly toDispatch = new Set<QueueState>();
  private readonly streams: Streams;
  private readonly metrics: MetricsHistory;
  private readonly redrives: RedriveJobs;
  private readonly filters = new Map<string, CompiledFilter | null>();
  /**
   * Rows already gone logically (acked, consumed without ack, dead-lettered)
   * but not yet deleted: deleted as id ranges right before each commit (and
   * before any read that could see them). Consumption is mostly in order,
   * so thousands of acks become a handful of range deletes.
   */
  private pendingDeletes: number[] = [];
  /** moveOne's last plan; valid within one re-drive batch. */
  private moveMemo: { job: RedriveJobState; props: string | null; persistent: number; plan: MovePlan | string } | null = null;
  /**
   * Messages published while their FIFO queue has a consumer (handed
   * straight to it, or queued behind others) are inserted at the next commit
   * rather than at once; one acked before that commit is never written at
   * all (its insert and delete cancel out). takeReady serves the next FIFO
   * message from here; every other path that reads message rows applies
   * these first.
   */
  private pendingInserts = new Map<number, unknown[]>();
  /** Deliveries handed over at publish time, passed to consumers on the next dispatch turn. */
  private direct: Array<[Consumer, Delivery]> = [];
  private nextTag = 1;
  private nextQid = 1;
  private delayedTotal = 0;
  private dispatchScheduled = false;
  private closed = false;
  /** Set when the store could not be written; see storeFailed. */
  private failure: BrokerError | null = null;
  private readonly dataDir: string | null;
  private diskFreeLimit: number;
  private alarm: DiskAlarm | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  private topologyVersion = 0;
  private dlCache: { version: number; map: Map<string, string[]> } | null = null;
  private lastSample: number;
  private lastSlowTick = 0;

  /** Queues with a dedup cache window (only then is the cache swept). */
  private get dedupCaches(): number {
    let n = 0;
    for (const q of this.queues.values()) if (q.args.dedup && q.args.cacheTtl !== undefined) n++;
    return n;
  }

  static open(options: EngineOptions): Engine {
    if (!options || (options.dataDir !== null && typeof options.dataDir !== 'string')) {
      throw invalid('dataDir', `expected a directory path or null (in memory), got ${shown(options?.dataDir)}`);
    }
    for (const k of ['maxBodyBytes', 'maxCallBytes'] as const) {
      if (options[k] !== undefined && (!Number.isInteger(options[k]) || options[k] < 1)) throw invalid(k, `expected a positive integer, got ${shown(options[k])}`);
    }
    if (options.diskFreeLimit !== undefined) checkInt(options.diskFreeLimit, 'diskFreeLimit', 0, Number.MAX_SAFE_INTEGER);
    const db = openDatabase(options.dataDir, options.synchronous ? { synchronous: options.synchronous } : {});
    try {
      migrate(db);
      return new Engine(db, options);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  private constructor(db: SqliteDatabase, options: EngineOptions) {
    this.db = db;
    this.now = options.now ?? Date.now;
    this.maxBodyBytes = options.maxBodyBytes ?? MAX_MESSAGE_BYTES;
    this.maxCallBytes = options.maxCallBytes ?? MAX_CALL_BYTES;
    this.dataDir = options.dataDir;
    this.diskFreeLimit = options.diskFreeLimit ?? DEFAULT_DISK_FREE_LIMIT;
    this.st = prepareStatements(db, SQL);
    for (const k of ['getMsg', 'readFifo', 'readPrio'] as const) this.st[k].raw(true);
    this.dyn = new DynamicStatements(db);
    this.gc = new GroupCommit(db, {
      intervalMs: options.groupCommitMs ?? 2,
      maxOps: options.groupCommitMaxOps ?? 4000,
      // A full batch waits one turn so queued deliveries (and their acks)
      // run first: rows acked by then are never written.
      hardMaxOps: 4 * (options.groupCommitMaxOps ?? 4000),
      beforeCommit: () => this.saveCounters(),
      // Pending rows belong to other calls: stored outside this unit's
      // savepoint, so its rollback cannot take them along.
      beforeUnit: () => this.applyPending(),
      onError: (err) => this.storeFailed(err),
      checkpointEveryMs: options.dataDir === null ? 0 : 250,
    });
    this.streams = new Streams({
      db,
      gc: this.gc,
      now: this.now,
      emitRecord: (e) => this.events.emit('record', e),
      wantsRecords: () => this.events.listenerCount('record') > 0,
      maxMessageBytes: this.maxBodyBytes,
      maxCallBytes: this.maxCallBytes,
      audit: (action, source, target, count, selection) => this.audit(action, source, target, count, selection, 'completed'),
    });
    this.metrics = new MetricsHistory(this.gc, db);
    this.redrives = new RedriveJobs({
      db,
      gc: this.gc,
      now: this.now,
      step: (job, max) => this.redriveStep(job, max),
      emit: (job) => this.events.emit('redrive', job),
      insertAudit: (e) => this.insertAudit(e.connectionId, e.action, e.source, e.target, e.count, e.selection, e.state),
      updateAudit: (id, count, state) => {
        this.st.updateAudit.run(count, state, id);
      },
    });
    this.lastSample = this.now();
    this.checkDisk();
    this.load(options.keepTransient === true);
    this.streams.load();
    this.redrives.load();
    this.redrives.resumeUnfinished();
    if (options.timers !== false) {
      const maintenance = setInterval(() => this.unlessStoreFailed(() => this.tick()), MAINTENANCE_MS);
      maintenance.unref();
      this.timers.push(maintenance);
    }
  }

  // ---- lifecycle -----------------------------------------------------------------

  /** Commits pending writes, stops timers and re-drive pacing, closes the database. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.redrives.close();
    for (const c of this.consumers.values()) c.active = false;
    this.gc.close();
    this.db.close();
    this.events.removeAllListeners();
  }

  /** Commits the pending group commit now. */
  flush(): void {
    this.assertOpen();
    this.gc.flush();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Why the engine stopped taking writes (the store failed), or null. */
  get storeFailure(): BrokerError | null {
    return this.failure;
  }

  /** Resolves when scheduled deliveries have run and their writes are committed (tests, shutdown). */
  async idle(): Promise<void> {
    for (let i = 0; i < 1000 && (this.dispatchScheduled || this.toDispatch.size > 0 || this.direct.length > 0); i++) await new Promise<void>((r) => setImmediate(r));
    if (!this.closed) await this.gc.whenCommitted();
  }

  private assertOpen(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new BrokerError('PRECONDITION_FAILED', 'the broker engine is closed');
  }

  /** The disk alarm, while the data folder's disk has less free space than the limit. */
  get diskAlarm(): DiskAlarm | null {
    return this.alarm;
  }

  /** Changes the free-space limit (bytes; 0: no check) and checks the disk at once. */
  setDiskFreeLimit(bytes: number): DiskAlarm | null {
    this.assertOpen();
    checkInt(bytes, 'diskFreeLimit', 0, Number.MAX_SAFE_INTEGER);
    this.diskFreeLimit = bytes;
    this.checkDisk();
    return this.alarm;
  }

  /** Reads the free space of the data folder's disk (once a second from tick) and turns the alarm on or off. */
  private checkDisk(): void {
    let next: DiskAlarm | null = null;
    if (this.dataDir !== null && this.diskFreeLimit > 0) {
      let free: number | null = null;
      try {
        const fs = statfsSync(this.dataDir);
        free = Number(fs.bavail) * Number(fs.bsize);
      } catch {
        // A folder that cannot be asked is not taken for a full disk: writes will tell.
      }
      if (free !== null && free < this.diskFreeLimit) {
        next = { free, limit: this.diskFreeLimit, message: `disk alarm: ${mb(free)} free on the disk of ${this.dataDir}, below the limit of ${mb(this.diskFreeLimit)}; publishing is refused until there is room (consuming and acking go on)` };
      }
    }
    const changed = (next === null) !== (this.alarm === null);
    this.alarm = next;
    if (changed) this.events.emit('alarm', next);
  }

  /** Publishing while the disk alarm is on is refused, as RabbitMQ blocks publishers. */
  private assertRoom(): void {
    if (this.alarm) throw new BrokerError('UNAVAILABLE', this.alarm.message);
  }

  /** Runs timer-driven work; a storage failure it runs into has already stopped the engine and is not thrown again. */
  private unlessStoreFailed(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (!this.failure) throw err;
    }
  }

  /**
   * The database could not be written (disk full, an I/O error): the last
   * batch is rolled back, so memory is ahead of the disk. The engine stops
   * as a crashed broker would (consumers cancelled, timers and re-drives
   * stopped, every later call refused with the cause) and says so with a
   * 'failed' event, after the current call has unwound; reopening it goes
   * on from what was committed, as after a restart. No confirm was given
   * for anything lost.
   */
  private storeFailed(err: Error): BrokerError {
    if (this.failure) return this.failure;
    const code = (err as { code?: unknown }).code;
    this.failure = new BrokerError('UNAVAILABLE', `the embedded broker could not write its data (${typeof code === 'string' ? `${code}: ` : ''}${err.message}); the writes of the last few milliseconds were not saved and it reopens from what was`);
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
    this.redrives.close();
    const consumers = [...this.consumers.values()];
    for (const c of consumers) c.active = false;
    const failure = this.failure;
    setImmediate(() => {
      for (const c of consumers) c.onCancel?.(failure.message);
      this.events.emit('failed', failure);
    });
    return failure;
  }

  /** Builds the in-memory state from the database; `keepTransient`: see EngineOptions. */
  private load(keepTransient: boolean): void {
    const db = this.db;
    db.transaction(() => {
      // Exchanges: transient ones do not survive a restart; built-ins always exist.
      if (!keepTransient) db.prepare('DELETE FROM exchanges WHERE durable = 0').run();
      const exRows = db.prepare('SELECT * FROM exchanges').all() as Array<{ name: string; type: ExchangeType; durable: number; auto_delete: number; internal: number; arguments: string }>;
      for (const r of exRows) {
        const args = decodeJson<FieldTable>(r.arguments);
        this.exchanges.set(r.name, this.newExchange(r.name, r.type, r.durable === 1, r.auto_delete === 1, r.internal === 1, args, false));
      }
      for (const [name, type] of BUILTIN_EXCHANGES) {
        if (!this.exchanges.has(name)) {
          this.st.upsertExchange.run(name, type, 1, 0, 0, '{}');
          this.exchanges.set(name, this.newExchange(name, type, true, false, false, {}, true));
        } else this.exchanges.get(name)!.builtin = true;
      }

      // Queues: transient and exclusive queues end with the process.
      const qRows = db.prepare('SELECT * FROM queues ORDER BY qid').all() as Array<{
        qid: number;
        name: string;
        durable: number;
        auto_delete: number;
        exclusive: number;
        arguments: string;
        msg_count: number;
        msg_bytes: number;
        next_seq: number;
        delivered_upto: number;
      }>;
      for (const r of qRows) {
        if ((r.durable === 0 && !keepTransient) || r.exclusive === 1) {
          this.st.deleteRange.run(r.qid * SEQ_SPAN, (r.qid + 1) * SEQ_SPAN);
          this.st.deleteDelayedQueue.run(r.qid);
          this.st.dedupDeleteQueue.run(r.qid);
          this.st.deleteQueue.run(r.qid);
          continue;
        }
        const args = decodeJson<FieldTable>(r.arguments);
        const q = this.newQueue(r.qid, r.name, r.durable === 1, r.auto_delete === 1, false, null, args, parseQueueArgs(args));
        q.count = r.msg_count;
        q.bytes = r.msg_bytes;
        q.nextSeq = r.next_seq;
        q.deliveredUpto = r.delivered_upto;
        q.recoveredUpto = r.delivered_upto;
        this.queues.set(q.name, q);
        this.byQid.set(q.qid, q);
        this.nextQid = Math.max(this.nextQid, q.qid + 1);
      }

      // Non-persistent messages do not survive a restart (the partial index
      // finds them without touching persistent rows).
      const transient = keepTransient ? [] : (db.prepare('SELECT id, size FROM messages WHERE persistent = 0').all() as Array<{ id: number; size: number }>);
      for (const t of transient) {
        const q = this.byQid.get(Math.floor(t.id / SEQ_SPAN));
        if (!q) continue;
        q.count--;
        q.bytes -= t.size;
        this.dirty.add(q);
      }
      if (transient.length) db.prepare('DELETE FROM messages WHERE persistent = 0').run();
      db.prepare(`DELETE FROM delayed WHERE ${keepTransient ? '' : 'persistent = 0 OR '}qid NOT IN (SELECT qid FROM queues)`).run();
      for (const r of db.prepare('SELECT qid, count(*) AS n, sum(size) AS b FROM delayed GROUP BY qid').all() as Array<{ qid: number; n: number; b: number }>) {
        const q = this.byQid.get(r.qid);
        if (!q) continue;
        q.delayed = r.n;
        q.delayedBytes = r.b;
        this.delayedTotal += r.n;
      }
      for (const q of this.queues.values()) {
        if (q.prio) {
          const counts = db.prepare('SELECT prio, count(*) AS n FROM messages WHERE prio IS NOT NULL AND id > ? AND id < ? GROUP BY prio').all(q.base, q.base + SEQ_SPAN) as Array<{
            prio: number;
            n: number;
          }>;
          for (const c of counts) if (q.levels[c.prio]) q.levels[c.prio]!.ready = c.n;
        } else q.levels[0]!.ready = q.count;
        q.expiring = q.args.messageTtl !== undefined || q.count > 0;
      }

      const bRows = db.prepare('SELECT * FROM bindings').all() as Array<{
        source: string;
        destination: string;
        destination_type: DestinationType;
        routing_key: string;
        args_key: string;
        arguments: string;
      }>;
      for (const b of bRows) {
        const src = this.exchanges.get(b.source);
        const destOk = b.destination_type === 'queue' ? this.queues.has(b.destination) : this.exchanges.has(b.destination);
        if (!src || !destOk) {
          this.st.deleteBinding.run(b.source, b.destination_type, b.destination, b.routing_key, b.args_key);
          continue;
        }
        this.attachBinding(src, {
          source: b.source,
          destination: b.destination,
          destinationType: b.destination_type,
          routingKey: b.routing_key,
          arguments: decodeJson<FieldTable>(b.arguments),
          argsKey: b.args_key,
          topic: src.type === 'topic' ? compileTopic(b.routing_key) : null,
        });
      }
      this.st.dedupExpire.run(this.now());
      this.saveCounters();
    })();
  }

  private newExchange(name: string, type: ExchangeType, durable: boolean, autoDelete: boolean, internal: boolean, args: FieldTable, builtin: boolean): ExchangeState {
    return {
      name,
      type,
      durable,
      autoDelete,
      internal,
      arguments: args,
      alternateExchange: parseExchangeArgs(args).alternateExchange,
      builtin,
      bindings: [],
      direct: new Map(),
    };
  }

  private newQueue(qid: number, name: string, durable: boolean, autoDelete: boolean, exclusive: boolean, owner: string | null, args: FieldTable, parsed: QueueArgs): QueueState {
    const levels = parsed.maxPriority !== undefined ? parsed.maxPriority + 1 : 1;
    const zero = (): Totals => ({ publish: 0, deliver: 0, ack: 0, redeliver: 0 });
    return {
      qid,
      base: qid * SEQ_SPAN,
      name,
      durable,
      autoDelete,
      exclusive,
      owner,
      arguments: args,
      args: parsed,
      count: 0,
      bytes: 0,
      nextSeq: 1,
      deliveredUpto: 0,
      recoveredUpto: 0,
      levels: Array.from({ length: levels }, () => ({ cursor: 0, ready: 0, requeued: [] })),
      prio: parsed.maxPriority !== undefined,
      unacked: new Map(),
      unackedBytes: 0,
      delayed: 0,
      delayedBytes: 0,
      consumers: [],
      rr: 0,
      lastUsed: this.now(),
      hadConsumer: false,
      expiring: parsed.messageTtl !== undefined,
      totals: zero(),
      prevTotals: zero(),
      rates: { publish: 0, deliver: 0, ack: 0, redeliver: 0 },
      deleted: false,
    };
  }

  /** Runs inside every group commit, right before COMMIT. */
  private saveCounters(): void {
    this.applyPending();
    for (const q of this.dirty) {
      if (!q.deleted) this.st.saveQueue.run(q.count, q.bytes, q.nextSeq, q.deliveredUpto, q.qid);
    }
    this.dirty.clear();
    this.streams.saveDirty();
  }

  // ---- exchanges ---------------------------------------------------------------------

  declareExchange(name: string, options: ExchangeOptions): ExchangeInfo {
    this.assertOpen();
    checkName(name, 'name', 'exchange');
    if (!options || !['direct', 'fanout', 'topic', 'headers'].includes(options.type)) {
      throw invalid('type', `expected "direct", "fanout", "topic" or "headers", got ${shown(options?.type)}`);
    }
    const args = checkTable(options.arguments, 'arguments');
    const parsed = parseExchangeArgs(args);
    const durable = options.durable ?? true;
    const autoDelete = options.autoDelete ?? false;
    const internal = options.internal ?? false;
    const existing = this.exchanges.get(name);
    if (existing) {
      if (existing.type !== options.type) throw inequivalent('exchange', name, 'type', options.type, existing.type);
      if (existing.durable !== durable) throw inequivalent('exchange', name, 'durable', durable, existing.durable);
      if (existing.autoDelete !== autoDelete) throw inequivalent('exchange', name, 'autoDelete', autoDelete, existing.autoDelete);
      if (existing.internal !== internal) throw inequivalent('exchange', name, 'internal', internal, existing.internal);
      if (!fieldEquals(existing.arguments['alternate-exchange'], args['alternate-exchange'])) {
        throw inequivalent('exchange', name, 'arguments.alternate-exchange', args['alternate-exchange'], existing.arguments['alternate-exchange']);
      }
      return this.exchangeInfo(existing);
    }
    if (name === '' || name.startsWith('amq.')) {
      throw new BrokerError('PRECONDITION_FAILED', `exchange names starting with "amq." (and the default exchange "") are reserved; choose another name`, 'name');
    }
    void parsed;
    this.gc.run(() => this.st.upsertExchange.run(name, options.type, durable ? 1 : 0, autoDelete ? 1 : 0, internal ? 1 : 0, encodeJson(args)));
    const ex = this.newExchange(name, options.type, durable, autoDelete, internal, args, false);
    this.exchanges.set(name, ex);
    this.topologyVersion++;
    return this.exchangeInfo(ex);
  }

  deleteExchange(name: string, options: { ifUnused?: boolean } = {}): void {
    this.assertOpen();
    const ex = this.exchange(name, 'name');
    if (ex.builtin) throw new BrokerError('PRECONDITION_FAILED', `the built-in exchange ${JSON.stringify(name)} cannot be deleted`, 'name');
    const inbound = this.bindingsTo('exchange', name);
    if (options.ifUnused && (ex.bindings.length > 0 || inbound.length > 0)) {
      throw new BrokerError('PRECONDITION_FAILED', `exchange ${JSON.stringify(name)} is in use (${ex.bindings.length + inbound.length} bindings); delete without ifUnused to remove it anyway`, 'ifUnused');
    }
    this.gc.run(() => {
      for (const b of [...ex.bindings, ...inbound]) this.removeBinding(b, false);
      this.st.deleteExchange.run(name);
      this.audit('delete-exchange', name, '', 0, 'exchange', 'completed');
    });
    this.exchanges.delete(name);
    this.topologyVersion++;
  }

  listExchanges(): ExchangeInfo[] {
    return [...this.exchanges.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((e) => this.exchangeInfo(e));
  }

  private exchangeInfo(e: ExchangeState): ExchangeInfo {
    return { name: e.name, type: e.type, durable: e.durable, autoDelete: e.autoDelete, internal: e.internal, arguments: { ...e.arguments } };
  }

  private exchange(name: unknown, field: string): ExchangeState {
    const ex = typeof name === 'string' ? this.exchanges.get(name) : undefined;
    if (!ex) throw notFound('exchange', String(name), field);
    return ex;
  }

  // ---- queues ---------------------------------------------------------------------------

  declareQueue(name: string, options: QueueOptions = {}): QueueInfo {
    this.assertOpen();
    checkName(name, 'name', 'queue');
    const args = checkTable(options.arguments, 'arguments');
    const parsed = parseQueueArgs(args);
    if (parsed.dlx !== undefined && parsed.dlx !== '' && parsed.dlx.startsWith('amq.') && !this.exchanges.has(parsed.dlx)) {
      // RabbitMQ accepts a missing DLX (messages are then dropped); only reserved names are refused.
      throw invalid('arguments.x-dead-letter-exchange', `${JSON.stringify(parsed.dlx)} is a reserved exchange name that does not exist`);
    }
    const durable = options.durable ?? true;
    const exclusive = options.exclusive ?? false;
    const autoDelete = options.autoDelete ?? false;
    const owner = options.owner ?? null;
    let qname = name;
    if (qname === '') qname = `amq.gen-${randomBytes(16).toString('base64url')}`;
    else if (qname.startsWith('amq.') && !this.queues.has(qname)) {
      throw new BrokerError('PRECONDITION_FAILED', 'queue names starting with "amq." are reserved; choose another name (or "" for a server-named queue)', 'name');
    }
    const existing = this.queues.get(qname);
    if (existing) {
      if (existing.exclusive && existing.owner !== null && existing.owner !== owner) {
        throw new BrokerError('RESOURCE_LOCKED', `queue ${JSON.stringify(qname)} is exclusive to another connection`, 'name');
      }
      if (existing.durable !== durable) throw inequivalent('queue', qname, 'durable', durable, existing.durable);
      if (existing.exclusive !== exclusive) throw inequivalent('queue', qname, 'exclusive', exclusive, existing.exclusive);
      if (existing.autoDelete !== autoDelete) throw inequivalent('queue', qname, 'autoDelete', autoDelete, existing.autoDelete);
      for (const k of EQUIVALENCE_ARGS) {
        if (!fieldEquals(args[k], existing.arguments[k])) throw inequivalent('queue', qname, `arguments.${k}`, args[k], existing.arguments[k]);
      }
      existing.lastUsed = this.now();
      return this.queueInfo(existing);
    }
    const qid = this.allocateQid();
    const q = this.newQueue(qid, qname, durable, autoDelete, exclusive, owner, args, parsed);
    this.gc.run(() => this.st.insertQueue.run(qid, qname, durable ? 1 : 0, autoDelete ? 1 : 0, exclusive ? 1 : 0, encodeJson(args), this.now()));
    this.queues.set(qname, q);
    this.byQid.set(qid, q);
    this.topologyVersion++;
    return this.queueInfo(q);
  }

  private allocateQid(): number {
    if (this.nextQid <= MAX_QID) return this.nextQid++;
    for (let qid = 1; qid <= MAX_QID; qid++) if (!this.byQid.has(qid)) return qid;
    throw new BrokerError('PRECONDITION_FAILED', `too many queues (limit ${MAX_QID})`, 'name');
  }

  deleteQueue(name: string, options: { ifUnused?: boolean; ifEmpty?: boolean } = {}): { messageCount: number } {
    this.assertOpen();
    const q = this.queue(name, 'name');
    if (options.ifUnused && q.consumers.length > 0) {
      throw new BrokerError('PRECONDITION_FAILED', `queue ${JSON.stringify(name)} has ${q.consumers.length} consumer(s); cancel them or delete without ifUnused`, 'ifUnused');
    }
    if (options.ifEmpty && q.count + q.delayed > 0) {
      throw new BrokerError('PRECONDITION_FAILED', `queue ${JSON.stringify(name)} holds ${q.count + q.delayed} message(s); purge it or delete without ifEmpty`, 'ifEmpty');
    }
    const messageCount = q.count + q.delayed;
    this.gc.run(() => {
      this.dropQueue(q, 'deleted');
      this.audit('delete-queue', name, '', messageCount, 'queue', 'completed');
    });
    return { messageCount };
  }

  /** Removes a queue and everything in it (inside a transaction). */
  private dropQueue(q: QueueState, reason: string): void {
    // Pending deletes must not outlive the queue: its qid (and ids) may be reused.
    this.applyPending();
    this.st.deleteRange.run(q.base, q.base + SEQ_SPAN);
    this.st.deleteDelayedQueue.run(q.qid);
    this.st.dedupDeleteQueue.run(q.qid);
    this.st.deleteQueue.run(q.qid);
    for (const b of this.bindingsTo('queue', q.name)) this.removeBinding(b, true);
    q.deleted = true;
    const cancelled: Consumer[] = [];
    for (const c of q.consumers) {
      c.active = false;
      for (const u of c.unacked.values()) this.tags.delete(u.tag);
      c.unacked.clear();
      this.consumers.delete(c.tag);
      if (c.owner) this.byOwner.get(c.owner)?.delete(c);
      if (c.onCancel) cancelled.push(c);
    }
    q.consumers = [];
    this.queues.delete(q.name);
    this.byQid.delete(q.qid);
    this.delayedTotal -= q.delayed;
    this.dirty.delete(q);
    this.metrics.forget('queue', q.name);
    this.redrives.failForSource(q.name, `source queue ${JSON.stringify(q.name)} was deleted`);
    this.topologyVersion++;
    if (cancelled.length) queueMicrotask(() => cancelled.forEach((c) => c.onCancel?.(reason)));
  }

  purgeQueue(name: string): { messageCount: number } {
    this.assertOpen();
    const q = this.queue(name, 'name');
    const messageCount = this.ready(q) + q.delayed;
    this.gc.run(() => {
      this.applyPending();
      if (q.unacked.size === 0) this.st.deleteRange.run(q.base, q.base + SEQ_SPAN);
      else {
        // Keep unacked rows: delete the ranges between them.
        let lo = q.base;
        for (const id of [...q.unacked.keys()].sort((a, b) => a - b)) {
          this.st.deleteRange.run(lo, id);
          lo = id;
        }
        this.st.deleteRange.run(lo, q.base + SEQ_SPAN);
      }
      this.st.deleteDelayedQueue.run(q.qid);
      this.audit('purge', name, '', messageCount, 'queue', 'completed');
    });
    q.count = q.unacked.size;
    q.bytes = q.unackedBytes;
    for (const L of q.levels) {
      L.ready = 0;
      L.requeued = [];
      L.cursor = q.nextSeq - 1;
    }
    this.delayedTotal -= q.delayed;
    q.delayed = 0;
    q.delayedBytes = 0;
    this.dirty.add(q);
    return { messageCount };
  }

  listQueues(): QueueInfo[] {
    return [...this.queues.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((q) => this.queueInfo(q));
  }

  getQueue(name: string): QueueInfo {
    return this.queueInfo(this.queue(name, 'name'));
  }

  private queue(name: unknown, field = 'queue'): QueueState {
    const q = typeof name === 'string' ? this.queues.get(name) : undefined;
    if (!q) throw notFound('queue', String(name), field);
    return q;
  }

  private ready(q: QueueState): number {
    return q.count - q.unacked.size;
  }

  private queueInfo(q: QueueState): QueueInfo {
    return {
      name: q.name,
      // Accepted for compatibility; both behave as this engine's queues.
      type: q.arguments['x-queue-type'] === 'quorum' ? 'quorum' : 'classic',
      durable: q.durable,
      autoDelete: q.autoDelete,
      exclusive: q.exclusive,
      arguments: { ...q.arguments },
      messages: q.count,
      ready: this.ready(q),
      unacked: q.unacked.size,
      delayed: q.delayed,
      bytes: q.bytes,
      consumers: q.consumers.length,
      deadLetterFor: this.deadLetterSources().get(q.name) ?? [],
      rates: { ...q.rates },
    };
  }

  /** target queue → queues whose dead letters can reach it (cached per topology version). */
  private deadLetterSources(): Map<string, string[]> {
    if (this.dlCache && this.dlCache.version === this.topologyVersion) return this.dlCache.map;
    const map = new Map<string, string[]>();
    for (const q of this.queues.values()) {
      const dlxName = q.args.dlx;
      if (dlxName === undefined) continue;
      const dlx = this.exchanges.get(dlxName);
      if (!dlx) continue;
      let targets: Set<QueueState>;
      if (q.args.dlrk !== undefined && dlx.type !== 'headers') targets = this.route(dlx, q.args.dlrk, undefined);
      else if (dlx.name === '') targets = new Set();
      else targets = this.reachable(dlx);
      for (const t of targets) map.set(t.name, [...(map.get(t.name) ?? []), q.name]);
    }
    for (const v of map.values()) v.sort();
    this.dlCache = { version: this.topologyVersion, map };
    return map;
  }

  private reachable(ex: ExchangeState, seen = new Set<string>(), out = new Set<QueueState>()): Set<QueueState> {
    if (seen.has(ex.name)) return out;
    seen.add(ex.name);
    for (const b of ex.bindings) {
      if (b.destinationType === 'queue') {
        const q = this.queues.get(b.destination);
        if (q) out.add(q);
      } else {
        const d = this.exchanges.get(b.destination);
        if (d) this.reachable(d, seen, out);
      }
    }
    if (ex.alternateExchange !== undefined) {
      const ae = this.exchanges.get(ex.alternateExchange);
      if (ae) this.reachable(ae, seen, out);
    }
    return out;
  }

  listDeadLetterQueues(): DeadLetterQueueInfo[] {
    const out: DeadLetterQueueInfo[] = [];
    for (const [name, sources] of this.deadLetterSources()) {
      const q = this.queues.get(name);
      if (q) out.push({ queue: name, count: q.count + q.delayed, sources });
    }
    return out.sort((a, b) => (a.queue < b.queue ? -1 : 1));
  }

  // ---- bindings ----------------------------------------------------------------------------

  private bindingKey(spec: BindingSpec): { source: ExchangeState; destinationType: DestinationType; routingKey: string; args: FieldTable; argsKey: string } {
    if (!spec || typeof spec !== 'object') throw invalid('binding', `expected { source, destination, destinationType, routingKey }, got ${shown(spec)}`);
    checkName(spec.source, 'source', 'exchange');
    checkName(spec.destination, 'destination', 'destination');
    const destinationType = spec.destinationType ?? 'queue';
    if (destinationType !== 'queue' && destinationType !== 'exchange') throw invalid('destinationType', `expected "queue" or "exchange", got ${shown(destinationType)}`);
    const routingKey = spec.routingKey ?? '';
    if (typeof routingKey !== 'string' || Buffer.byteLength(routingKey) > 255) throw invalid('routingKey', `expected a string of at most 255 bytes, got ${shown(routingKey)}`);
    const args = checkTable(spec.arguments, 'arguments');
    if (spec.source === '') throw new BrokerError('PRECONDITION_FAILED', 'the default exchange routes by queue name and cannot be bound or unbound', 'source');
    const source = this.exchange(spec.source, 'source');
    if (destinationType === 'queue') this.queue(spec.destination, 'destination');
    else this.exchange(spec.destination, 'destination');
    if (source.type === 'headers') {
      const m = args['x-match'];
      if (m !== undefined && m !== 'all' && m !== 'any' && m !== 'all-with-x' && m !== 'any-with-x') {
        throw invalid('arguments.x-match', `expected "all", "any", "all-with-x" or "any-with-x", got ${shown(m)}`);
      }
    }
    return { source, destinationType, routingKey, args, argsKey: canonicalJson(args) };
  }

  bind(spec: BindingSpec): BindingInfo {
    this.assertOpen();
    const k = this.bindingKey(spec);
    const found = k.source.bindings.find((b) => b.destination === spec.destination && b.destinationType === k.destinationType && b.routingKey === k.routingKey && b.argsKey === k.argsKey);
    if (found) return this.bindingInfo(found);
    const b: BindingState = {
      source: spec.source,
      destination: spec.destination,
      destinationType: k.destinationType,
      routingKey: k.routingKey,
      arguments: k.args,
      argsKey: k.argsKey,
      topic: k.source.type === 'topic' ? compileTopic(k.routingKey) : null,
    };
    this.gc.run(() => this.st.insertBinding.run(b.source, b.destination, b.destinationType, b.routingKey, b.argsKey, encodeJson(b.arguments)));
    this.attachBinding(k.source, b);
    this.topologyVersion++;
    return this.bindingInfo(b);
  }

  unbind(spec: BindingSpec): void {
    this.assertOpen();
    const k = this.bindingKey(spec);
    const found = k.source.bindings.find((b) => b.destination === spec.destination && b.destinationType === k.destinationType && b.routingKey === k.routingKey && b.argsKey === k.argsKey);
    if (!found) return;
    this.gc.run(() => this.removeBinding(found, true));
  }

  private attachBinding(ex: ExchangeState, b: BindingState): void {
    ex.bindings.push(b);
    if (ex.type === 'direct') {
      const list = ex.direct.get(b.routingKey);
      if (list) list.push(b);
      else ex.direct.set(b.routingKey, [b]);
    }
  }

  /** Deletes a binding (inside a transaction); an auto-delete source goes with its last binding. */
  private removeBinding(b: BindingState, autoDelete: boolean): void {
    this.st.deleteBinding.run(b.source, b.destinationType, b.destination, b.routingKey, b.argsKey);
    const ex = this.exchanges.get(b.source);
    if (!ex) return;
    ex.bindings = ex.bindings.filter((x) => x !== b);
    if (ex.type === 'direct') {
      const list = ex.direct.get(b.routingKey)?.filter((x) => x !== b) ?? [];
      if (list.length) ex.direct.set(b.routingKey, list);
      else ex.direct.delete(b.routingKey);
    }
    this.topologyVersion++;
    if (autoDelete && ex.autoDelete && !ex.builtin && ex.bindings.length === 0) {
      for (const inbound of this.bindingsTo('exchange', ex.name)) this.removeBinding(inbound, true);
      this.st.deleteExchange.run(ex.name);
      this.exchanges.delete(ex.name);
    }
  }

  private bindingsTo(type: DestinationType, name: string): BindingState[] {
    const out: BindingState[] = [];
    for (const ex of this.exchanges.values()) for (const b of ex.bindings) if (b.destinationType === type && b.destination === name) out.push(b);
    return out;
  }

  listBindings(): BindingInfo[] {
    const out: BindingInfo[] = [];
    // RabbitMQ lists the default exchange's implicit binding of every queue.
    for (const q of [...this.queues.keys()].sort()) out.push({ source: '', destination: q, destinationType: 'queue', routingKey: q, arguments: {} });
    const rest: BindingInfo[] = [];
    for (const ex of this.exchanges.values()) for (const b of ex.bindings) rest.push(this.bindingInfo(b));
    rest.sort((a, b) => a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination) || a.routingKey.localeCompare(b.routingKey));
    return out.concat(rest);
  }

  private bindingInfo(b: BindingState): BindingInfo {
    return { source: b.source, destination: b.destination, destinationType: b.destinationType, routingKey: b.routingKey, arguments: { ...b.arguments } };
  }

  // ---- routing ------------------------------------------------------------------------------

  private route(ex: ExchangeState, rk: string, headers: FieldTable | undefined): Set<QueueState> {
    const out = new Set<QueueState>();
    if (ex.name === '') {
      // Default exchange: the queue named by the routing key (the hot path).
      const q = this.queues.get(rk);
      if (q) out.add(q);
      return out;
    }
    this.routeInto(ex, rk, headers, out, new Set());
    return out;
  }

  private routeKeys(ex: ExchangeState, rk: string, extra: string[], headers: FieldTable | undefined): Set<QueueState> {
    const out = this.route(ex, rk, headers);
    for (const k of extra) for (const q of this.route(ex, k, headers)) out.add(q);
    return out;
  }

  private routeInto(ex: ExchangeState, rk: string, headers: FieldTable | undefined, out: Set<QueueState>, visited: Set<string>): number {
    if (visited.has(ex.name)) return 0;
    visited.add(ex.name);
    const before = out.size;
    if (ex.name === '') {
      const q = this.queues.get(rk);
      if (q) out.add(q);
      return out.size - before;
    }
    let matched: BindingState[];
    switch (ex.type) {
      case 'direct':
        matched = ex.direct.get(rk) ?? [];
        break;
      case 'fanout':
        matched = ex.bindings;
        break;
      case 'topic':
        matched = ex.bindings.filter((b) => b.topic!(rk));
        break;
      case 'headers':
        matched = ex.bindings.filter((b) => headersMatch(b.arguments, headers));
        break;
    }
    for (const b of matched) {
      if (b.destinationType === 'queue') {
        const q = this.queues.get(b.destination);
        if (q) out.add(q);
      } else {
        const d = this.exchanges.get(b.destination);
        if (d) this.routeInto(d, rk, headers, out, visited);
      }
    }
    if (out.size === before && ex.alternateExchange !== undefined) {
      const ae = this.exchanges.get(ex.alternateExchange);
      if (ae) this.routeInto(ae, rk, headers, out, visited);
    }
    return out.size - before;
  }

  // ---- publishing ------------------------------------------------------------------------------

  private preparePublish(req: PublishRequest): { ex: ExchangeState; env: Envelope; delayMs: number; mandatory: boolean; ccKeys: string[] } {
    let ccKeys: string[] = [];
    if (!req || typeof req !== 'object') throw invalid('request', `expected { exchange, routingKey, body }, got ${shown(req)}`);
    const exName = req.exchange ?? '';
    checkName(exName, 'exchange', 'exchange');
    const ex = this.exchange(exName, 'exchange');
    if (ex.internal) throw new BrokerError('PRECONDITION_FAILED', `exchange ${JSON.stringify(exName)} is internal: it only receives from other exchanges`, 'exchange');
    const rk = req.routingKey ?? '';
    if (typeof rk !== 'string' || Buffer.byteLength(rk) > 255) throw invalid('routingKey', `expected a string of at most 255 bytes, got ${shown(rk)}`);
    let body: Buffer;
    const rawBody: unknown = req.body;
    if (Buffer.isBuffer(rawBody)) body = rawBody;
    else if (rawBody instanceof Uint8Array) body = Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength);
    else throw invalid('body', `expected bytes (a Buffer), got ${shown(req.body)}`);
    checkMessageSize(body.length, this.maxBodyBytes);
    const props = normalizeProps(req.properties);
    if (props.headers && ('BCC' in props.headers || 'CC' in props.headers)) {
      // Sender-selected distribution: CC and BCC add routing keys; BCC is
      // removed from the message (RabbitMQ).
      const extra: string[] = [];
      for (const h of ['CC', 'BCC']) {
        const v = props.headers[h];
        if (v === undefined) continue;
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalid(`properties.headers.${h}`, `expected a list of routing keys (strings), got ${shown(v)}`);
        extra.push(...(v as string[]));
      }
      if ('BCC' in props.headers) {
        const { BCC: _bcc, ...rest } = props.headers;
        props.headers = rest;
      }
      ccKeys = extra;
    }
    const d = props.headers?.['x-delay'];
    const delayMs = typeof d === 'number' && Number.isFinite(d) && d > 0 ? Math.floor(d) : typeof d === 'bigint' && d > 0n ? Number(d) : 0;
    return { ex, env: makeEnvelope(exName, rk, body, props), delayMs, mandatory: req.mandatory === true, ccKeys };
  }

  /**
   * Publishes one message. Resolves after the group commit that stored it
   * (a publisher confirm); `returned` is true when mandatory and unroutable.
   */
  publish(req: PublishRequest): Promise<PublishResult> {
    try {
      this.assertOpen();
      this.assertRoom();
      const { ex, env, delayMs, mandatory, ccKeys } = this.preparePublish(req);
      const targets = this.routeKeys(ex, env.rk, ccKeys, env.props.headers);
      // One plain queue means one INSERT: atomic without a savepoint.
      const result = this.isSimple(targets, delayMs)
        ? this.gc.write(() => this.publishTo(targets, env, delayMs, mandatory))
        : this.gc.run(() => this.publishTo(targets, env, delayMs, mandatory));
      if (result.returned) this.emitReturned(env);
      return this.gc.whenCommitted().then(() => result);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private isSimple(targets: Set<QueueState>, delayMs: number): boolean {
    if (targets.size > 1 || delayMs > 0) return false;
    for (const q of targets) {
      const a = q.args;
      if (a.dedup || a.maxLength !== undefined || a.maxLengthBytes !== undefined || a.messageTtl === 0) return false;
    }
    return true;
  }

  private publishTo(targets: Set<QueueState>, env: Envelope, delayMs: number, mandatory: boolean): PublishResult {
    const res: PublishResult = { routedQueues: [], returned: false };
    for (const q of targets) {
      const o = this.enqueue(q, env, delayMs);
      if (o === 'ok') res.routedQueues.push(q.name);
      else if (o === 'rejected') (res.rejected ??= []).push(q.name);
      else (res.deduplicated ??= []).push(q.name);
    }
    if (targets.size === 0 && mandatory) res.returned = true;
    return res;
  }

  private emitReturned(env: Envelope): void {
    if (this.events.listenerCount('returned') === 0) return;
    this.events.emit('returned', { exchange: env.exchange, routingKey: env.rk, body: env.body, properties: env.props, replyCode: 312, replyText: 'NO_ROUTE' });
  }

  /**
   * Publishes `count` copies, expanding {{i}}, {{uuid}} and {{now}} in the
   * body (UTF-8) and in string header values per copy. Resolves after the
   * commit holding the last copy.
   */
  async publishMany(req: PublishManyRequest): Promise<PublishManyResult> {
    this.assertOpen();
    this.assertRoom();
    const count = req?.count;
    if (!Number.isInteger(count) || count < 1 || count > 10_000_000) throw invalid('count', `expected an integer from 1 to 10000000, got ${shown(count)}`);
    const prepared = this.preparePublish(req);
    const { ex, mandatory, delayMs, ccKeys } = prepared;
    const base = prepared.env;
    const bodyTemplate = bufferHasPlaceholders(base.body) ? base.body.toString('utf8') : null;
    const headerTemplate = headersHavePlaceholders(base.props.headers) ? base.props.headers! : null;
    // Ids are per copy too: `order-{{i}}` as message-id gives each copy its own id.
    const propTemplates = PLACEHOLDER_PROPERTIES.filter((k) => typeof base.props[k] === 'string' && hasPlaceholders(base.props[k] as string));
    // Worst case growth: {{uuid}} (8 chars) becomes 36; refuse up front rather than half-way.
    const perCopy = base.body.length + (bodyTemplate === null ? 0 : (bodyTemplate.match(/\{\{(i|uuid|now)\}\}/g) ?? []).length * 28);
    if (perCopy > this.maxBodyBytes) {
      throw new BrokerError('TOO_LARGE', `body would exceed the limit of ${this.maxBodyBytes} bytes (${mib(this.maxBodyBytes)}) once placeholders are expanded`, 'body');
    }
    checkCallSize(count, perCopy, this.maxCallBytes);
    const out: PublishManyResult = { published: 0, routed: {}, returned: 0, rejected: 0, deduplicated: 0, confirmed: true };
    // Queue names are the user's: counted in a Map, so "constructor" or "__proto__" is just a name.
    const routed = new Map<string, number>();
    for (let i = 1; i <= count; i++) {
      if (this.closed) throw new BrokerError('PRECONDITION_FAILED', `the broker engine closed after ${out.published} of ${count} copies`);
      let env = base;
      if (bodyTemplate !== null || headerTemplate !== null || propTemplates.length > 0) {
        const now = this.now();
        const body = bodyTemplate !== null ? Buffer.from(expand(bodyTemplate, i, now), 'utf8') : base.body;
        let props = headerTemplate !== null ? { ...base.props, headers: expandHeaders(headerTemplate, i, now) } : base.props;
        if (propTemplates.length > 0) {
          props = { ...props };
          for (const k of propTemplates) props[k] = expand(base.props[k] as string, i, now);
        }
        env = makeEnvelope(base.exchange, base.rk, body, props);
      }
      const targets = this.routeKeys(ex, env.rk, ccKeys, env.props.headers);
      const r = this.isSimple(targets, delayMs)
        ? this.gc.write(() => this.publishTo(targets, env, delayMs, mandatory))
        : this.gc.run(() => this.publishTo(targets, env, delayMs, mandatory));
      out.published++;
      for (const q of r.routedQueues) routed.set(q, (routed.get(q) ?? 0) + 1);
      if (r.returned) {
        out.returned++;
        this.emitReturned(env);
      }
      out.rejected += r.rejected?.length ?? 0;
      out.deduplicated += r.deduplicated?.length ?? 0;
      // Let timers, consumers and commits run during large batches.
      if (i % 5000 === 0) await new Promise<void>((r2) => setImmediate(r2));
    }
    out.routed = Object.fromEntries(routed);
    await this.gc.whenCommitted();
    return out;
  }

  /** Dedup key: the queue's named header, else the message's x-deduplication-header, else its message-id. */
  private dedupKey(q: QueueState, env: Envelope): string | null {
    const h = env.props.headers;
    const pick = (v: unknown): string | null =>
      v === undefined || v === null ? null : typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('base64') : canonicalJson(v);
    if (q.args.dedupHeader !== undefined && h && Object.hasOwn(h, q.args.dedupHeader)) {
      const v = pick(h[q.args.dedupHeader]);
      if (v !== null) return v;
    }
    if (h) {
      const v = pick(h['x-deduplication-header']);
      if (v !== null) return v;
    }
    return env.props.messageId ?? null;
  }

  private isFull(q: QueueState, size: number): boolean {
    const { maxLength, maxLengthBytes } = q.args;
    if (maxLength !== undefined && this.ready(q) >= maxLength) return true;
    if (maxLengthBytes !== undefined && q.bytes - q.unackedBytes + size > maxLengthBytes) return true;
    return false;
  }

  /** Puts a message into a queue, applying dedup, overflow, delay and TTL (inside a transaction). */
  private enqueue(q: QueueState, env: Envelope, delayMs = 0, checkDedup = true): Outcome {
    const now = this.now();
    let dedup: string | null = null;
    if (q.args.dedup && checkDedup) {
      const key = this.dedupKey(q, env);
      if (key !== null) {
        if (q.args.cacheTtl !== undefined) {
          const row = this.st.dedupGet.get(q.qid, key) as { expires_at: number } | undefined;
          if (row && row.expires_at > now) return 'dedup';
          if (q.args.cacheSize !== undefined && !row) {
            const n = (this.st.dedupCount.get(q.qid) as { n: number }).n;
            if (n >= q.args.cacheSize) this.st.dedupEvict.run(q.qid, q.qid, n - q.args.cacheSize + 1);
          }
          this.st.dedupPut.run(q.qid, key, now + q.args.cacheTtl);
        } else {
          this.applyPending();
          if (this.st.dedupInQueue.get(key, q.base, q.base + SEQ_SPAN) || this.st.dedupInDelayed.get(q.qid, key)) return 'dedup';
          dedup = key;
        }
      }
    }
    if (q.args.overflow !== 'drop-head' && this.isFull(q, env.size)) {
      if (q.args.overflow === 'reject-publish-dlx') this.deadLetter(q, env, 'maxlen');
      return 'rejected';
    }
    if (delayMs > 0) {
      this.st.insertDelayed.run(q.qid, now + delayMs, now, env.exchange, env.rk, env.propsJson, env.body, env.size, env.bin, env.redelivered ? 1 : 0, env.returns, env.persistent ? 1 : 0, dedup);
      q.delayed++;
      q.delayedBytes += env.size;
      this.delayedTotal++;
      q.totals.publish++;
      return 'ok';
    }
    this.insertMessage(q, env, now, dedup);
    if (q.args.overflow === 'drop-head') this.enforceMaxLength(q);
    return 'ok';
  }

  private insertMessage(q: QueueState, env: Envelope, now: number, dedup: string | null): void {
    let exp: number | null = q.args.messageTtl !== undefined ? now + q.args.messageTtl : null;
    if (env.expiration !== null) exp = exp === null ? now + env.expiration : Math.min(exp, now + env.expiration);
    if (exp !== null && exp <= now && !this.hasCredit(q)) {
      // TTL 0 and nobody ready to take it: it expires on arrival (RabbitMQ).
      q.totals.publish++;
      this.deadLetter(q, env, 'expired');
      return;
    }
    const seq = q.nextSeq++;
    const prio = q.prio ? Math.min(env.priority, q.levels.length - 1) : null;
    const params = [q.base + seq, prio, now, exp, env.exchange, env.rk, env.propsJson, env.body, env.size, env.bin, env.redelivered ? 1 : 0, env.returns, env.persistent ? 1 : 0, dedup];
    q.count++;
    q.bytes += env.size;
    const L = q.levels[prio ?? 0]!;
    const c = !q.prio && L.ready === 0 && L.cursor === seq - 1 && q.consumers.length > 0 ? this.pickConsumer(q) : null;
    if (!c) {
      if (!q.prio && q.consumers.length > 0) {
        // A consumer will most likely take it within the batch: keep it in
        // memory (takeReady serves it from there) and store it at the commit
        // unless it is acknowledged first. Copied, as below.
        params[7] = Buffer.from(env.body);
        this.pendingInserts.set(q.base + seq, params);
      } else this.st.insertMsg.run(...params);
      L.ready++;
      q.totals.publish++;
      if (exp !== null) q.expiring = true;
      this.dirty.add(q);
      if (q.consumers.length > 0) this.scheduleDispatch(q);
      return;
    }
    // Nothing queued ahead and a consumer has room: hand it over from memory
    // instead of reading it back. It is stored at the commit unless
    // acknowledged before it. The body is copied: the publisher's buffer is
    // not ours to keep.
    const body = Buffer.from(env.body);
    params[7] = body;
    this.pendingInserts.set(q.base + seq, params);
    L.cursor = seq;
    q.totals.publish++;
    if (exp !== null) q.expiring = true;
    this.dirty.add(q);
    const row: MsgRow = {
      id: q.base + seq,
      prio,
      enq: now,
      exp,
      exchange: env.exchange,
      rk: env.rk,
      props: env.propsJson,
      body,
      size: env.size,
      bin: env.bin,
      redelivered: env.redelivered ? 1 : 0,
      returns: env.returns,
      persistent: env.persistent ? 1 : 0,
      dedup,
    };
    this.direct.push([c, this.deliver(q, c, row)]);
    this.scheduleDispatch(q);
  }


  /** x-overflow drop-head: dead-letter from the head until within limits. */
  private enforceMaxLength(q: QueueState): void {
    const { maxLength, maxLengthBytes } = q.args;
    if (maxLength === undefined && maxLengthBytes === undefined) return;
    while ((maxLength !== undefined && this.ready(q) > maxLength) || (maxLengthBytes !== undefined && q.bytes - q.unackedBytes > maxLengthBytes)) {
      const [row] = this.takeReady(q, 1);
      if (!row) break;
      this.deadLetter(q, movableEnvelope(row), 'maxlen');
      this.dropRow(q, row);
    }
  }

  // ---- dead-lettering ------------------------------------------------------------------------------

  /**
   * Dead-letters a message that died in `q` (the caller removes it from q),
   * with x-death as RabbitMQ keeps it (see deathProps). Cycles without a
   * rejection in them are dropped, as RabbitMQ's detect_cycles does.
   */
  private deadLetter(q: QueueState, m: Envelope, reason: DeathReason): void {
    const dlxName = q.args.dlx;
    if (dlxName === undefined) return;
    const dlx = this.exchanges.get(dlxName);
    if (!dlx) return;
    const { props, routingKeys, deaths } = deathProps(m, q.name, reason, this.now(), q.args.dlrk !== undefined);
    const headers = props.headers!;
    const keys = q.args.dlrk !== undefined ? [q.args.dlrk] : routingKeys;
    const targets = new Set<QueueState>();
    for (const k of keys) this.routeInto(dlx, k, headers, targets, new Set());
    if (targets.size === 0) return;
    const env = makeEnvelope(dlxName, keys[0]!, m.body, props, { bin: m.bin });
    env.persistent = m.persistent;
    for (const t of targets) {
      if (reason !== 'rejected' && isCycle(t.name, deaths)) continue;
      this.enqueue(t, env);
    }
  }

  /** Deletes a row that is no longer ready or unacked (taken, or unacked and forgotten). */
  private dropRow(q: QueueState, row: { id: number; size: number }): void {
    this.pendingDeletes.push(row.id);
    q.count--;
    q.bytes -= row.size;
    this.dirty.add(q);
  }

  /** Applies pending inserts and deletes (inside the open batch). */
  private applyPending(): void {
    if (this.pendingInserts.size > 0) {
      const inserts = this.pendingInserts;
      this.pendingInserts = new Map();
      if (this.pendingDeletes.length > 0) this.pendingDeletes = this.pendingDeletes.filter((id) => !inserts.delete(id));
      const insert = () => {
        for (const params of inserts.values()) this.st.insertMsg.run(...params);
      };
      if (this.db.inTransaction) insert();
      else this.gc.write(insert, 0);
    }
    const ids = this.pendingDeletes;
    if (ids.length === 0) return;
    this.pendingDeletes = [];
    const run = () => {
      ids.sort((a, b) => a - b);
      let lo = ids[0]!;
      let hi = lo;
      for (let i = 1; i <= ids.length; i++) {
        const id = ids[i];
        if (id === hi + 1) {
          hi = id;
          continue;
        }
        if (id === hi) continue;
        if (lo === hi) this.st.deleteMsg.run(lo);
        else this.st.deleteSpan.run(lo, hi);
        if (id !== undefined) lo = hi = id;
      }
    };
    if (this.db.inTransaction) run();
    else this.gc.write(run, 0);
  }

  private msg(id: number): MsgRow | undefined {
    if (this.pendingInserts.size > 0) this.applyPending();
    const a = this.st.getMsg.get(id) as unknown[] | undefined;
    return a ? toRow(a) : undefined;
  }

  // ---- reading ready messages ---------------------------------------------------------------------

  /** Takes up to n ready messages in delivery order: priority high→low, requeued first, then FIFO. */
  private takeReady(q: QueueState, n: number): MsgRow[] {
    const out: MsgRow[] = [];
    for (let p = q.levels.length - 1; p >= 0 && out.length < n; p--) {
      const L = q.levels[p]!;
      while (L.ready > 0 && out.length < n) {
        if (L.requeued.length > 0) {
          const seq = L.requeued.shift()!;
          L.ready--;
          const row = this.msg(q.base + seq);
          if (row) out.push(row);
          continue;
        }
        if (this.pendingInserts.size > 0) {
          if (!q.prio) {
            const params = this.pendingInserts.get(q.base + L.cursor + 1);
            if (params) {
              // Not stored yet: hand it over from memory; it stays pending.
              out.push(toRow(params));
              L.cursor++;
              L.ready--;
              continue;
            }
          }
          this.applyPending();
        }
        const want = Math.min(n - out.length, L.ready);
        const rows = toRows(q.prio ? this.st.readPrio.all(p, q.base + L.cursor, q.base + SEQ_SPAN, want) : this.st.readFifo.all(q.base + L.cursor, q.base + SEQ_SPAN, want));
        if (rows.length === 0) {
          // Counter and rows disagree (should not happen): trust the rows.
          L.ready = 0;
          if (!q.prio) {
            q.count = q.unacked.size;
            q.bytes = q.unackedBytes;
            this.dirty.add(q);
          }
          break;
        }
        for (const row of rows) out.push(row);
        L.cursor = rows[rows.length - 1]!.id - q.base;
        L.ready -= rows.length;
      }
    }
    return out;
  }

  private peekHead(q: QueueState): MsgRow | undefined {
    if (this.pendingInserts.size > 0) this.applyPending();
    for (let p = q.levels.length - 1; p >= 0; p--) {
      const L = q.levels[p]!;
      if (L.ready <= 0) continue;
      if (L.requeued.length > 0) return this.msg(q.base + L.requeued[0]!);
      const rows = toRows(q.prio ? this.st.readPrio.all(p, q.base + L.cursor, q.base + SEQ_SPAN, 1) : this.st.readFifo.all(q.base + L.cursor, q.base + SEQ_SPAN, 1));
      return rows[0];
    }
    return undefined;
  }

  /** Puts a taken message back in its original place. */
  private returnToReady(q: QueueState, seq: number, prio: number | null): void {
    const L = q.levels[prio ?? 0]!;
    insertSorted(L.requeued, seq);
    L.ready++;
    this.scheduleDispatch(q);
  }

  /** Removes a ready row that was not taken (re-drive, targeted delete). */
  private removeReady(q: QueueState, row: MsgRow): void {
    const seq = row.id - q.base;
    const L = q.levels[row.prio ?? 0]!;
    const i = bsearch(L.requeued, seq);
    if (i >= 0) L.requeued.splice(i, 1);
    L.ready--;
    this.dropRow(q, row);
  }

  /** Returns an unacked or taken message to the queue: redelivered, one more return; dead-letters past x-delivery-limit. */
  private requeue(q: QueueState, id: number, seq: number, prio: number | null, returns: number): void {
    const n = returns + 1;
    if (q.args.deliveryLimit !== undefined && n > q.args.deliveryLimit) {
      const row = this.msg(id);
      if (row) {
        this.deadLetter(q, movableEnvelope(row), 'delivery_limit');
        this.dropRow(q, row);
      }
      return;
    }
    this.st.markReturned.run(n, id);
    this.returnToReady(q, seq, prio);
  }

  /** A message rejected without requeue: retry after the next x-retry-delays step, else dead-letter. */
  private rejectNoRequeue(q: QueueState, id: number, returns: number, read?: { row: MsgRow; env: Envelope }): void {
    const row = read?.row ?? this.msg(id);
    if (!row) return;
    const env = read?.env ?? this.storedEnvelope(q, row);
    const delays = q.args.retryDelays;
    if (delays) {
      const headers = env.props.headers ?? {};
      const done = Number(headers['x-retry-count'] ?? 0) || 0;
      if (done < delays.length) {
        const props = { ...env.props, headers: { ...headers, 'x-retry-count': done + 1 } };
        const retry = makeEnvelope(env.exchange, env.rk, env.body, props, { redelivered: true, returns: returns + 1, bin: env.bin });
        retry.persistent = env.persistent;
        this.dropRow(q, row);
        this.enqueue(q, retry, Math.max(1, delays[done]!), false);
        return;
      }
    }
    this.deadLetter(q, env, 'rejected');
    this.dropRow(q, row);
  }

  // ---- consumers --------------------------------------------------------------------------------------

  /**
   * Starts delivering messages of `queue` to `onDelivery`. Competing
   * consumers get messages round-robin; `prefetch` caps each consumer's
   * unacked deliveries (0 = unlimited).
   */
  consume(queue: string, options: ConsumeOptions, onDelivery: (d: Delivery) => void): string {
    this.assertOpen();
    const q = this.queue(queue);
    if (typeof onDelivery !== 'function') throw invalid('onDelivery', 'expected a function');
    const prefetch = options?.prefetch ?? 0;
    checkInt(prefetch, 'prefetch', 0, 65535);
    const owner = options?.owner ?? null;
    if (q.exclusive && q.owner !== null && owner !== q.owner) {
      throw new BrokerError('RESOURCE_LOCKED', `queue ${JSON.stringify(queue)} is exclusive to another connection`, 'queue');
    }
    if (q.consumers.some((c) => c.exclusive)) throw new BrokerError('RESOURCE_LOCKED', `queue ${JSON.stringify(queue)} has an exclusive consumer`, 'queue');
    if (options?.exclusive && q.consumers.length > 0) {
      throw new BrokerError('RESOURCE_LOCKED', `queue ${JSON.stringify(queue)} already has ${q.consumers.length} consumer(s); an exclusive consumer must be the only one`, 'exclusive');
    }
    const tag = options?.consumerTag || `amq.ctag-${randomBytes(16).toString('base64url')}`;
    if (typeof tag !== 'string') throw invalid('consumerTag', `expected a string, got ${shown(tag)}`);
    if (this.consumers.has(tag)) throw new BrokerError('CONFLICT', `consumer tag ${JSON.stringify(tag)} is already in use`, 'consumerTag');
    const c: Consumer = {
      tag,
      queue: q,
      prefetch,
      noAck: options?.noAck ?? false,
      exclusive: options?.exclusive ?? false,
      owner,
      unacked: new Map(),
      onDelivery,
      onCancel: options?.onCancel ?? null,
      active: true,
    };
    this.consumers.set(tag, c);
    if (owner) {
      let set = this.byOwner.get(owner);
      if (!set) this.byOwner.set(owner, (set = new Set()));
      set.add(c);
    }
    q.consumers.push(c);
    q.hadConsumer = true;
    q.lastUsed = this.now();
    this.scheduleDispatch(q);
    return tag;
  }

  /** The consumers of one queue or of all, in the order they subscribed. */
  listConsumers(queue?: string): ConsumerSummary[] {
    if (queue !== undefined) this.queue(queue);
    const out: ConsumerSummary[] = [];
    for (const c of this.consumers.values()) {
      if (queue !== undefined && c.queue.name !== queue) continue;
      out.push({ queue: c.queue.name, consumerTag: c.tag, prefetch: c.prefetch, noAck: c.noAck, exclusive: c.exclusive, active: c.active, unacked: c.unacked.size, owner: c.owner });
    }
    return out;
  }

  /** Stops a consumer; its unacked messages go back to their original places, marked redelivered. */
  cancel(consumerTag: string): void {
    this.assertOpen();
    const c = this.consumers.get(consumerTag);
    if (!c) throw new BrokerError('NOT_FOUND', `no consumer with tag ${JSON.stringify(consumerTag)}`, 'consumerTag');
    this.gc.run(() => {
      this.applyPending();
      this.removeConsumer(c);
    });
  }

  /** Cancels every consumer of an owner (a closed connection/channel) and deletes its exclusive queues. */
  closeOwner(owner: string): void {
    this.assertOpen();
    this.gc.run(() => {
      this.applyPending();
      for (const c of [...(this.byOwner.get(owner) ?? [])]) this.removeConsumer(c);
      for (const q of [...this.queues.values()]) if (q.exclusive && q.owner === owner) this.dropQueue(q, 'owner closed');
    });
    this.byOwner.delete(owner);
  }

  private removeConsumer(c: Consumer): void {
    const q = c.queue;
    c.active = false;
    this.consumers.delete(c.tag);
    if (c.owner) this.byOwner.get(c.owner)?.delete(c);
    const i = q.consumers.indexOf(c);
    if (i >= 0) q.consumers.splice(i, 1);
    if (q.rr >= q.consumers.length) q.rr = 0;
    for (const u of [...c.unacked.values()]) {
      this.forget(u);
      this.requeue(q, u.id, u.seq, u.prio, u.returns);
    }
    q.lastUsed = this.now();
    if (q.autoDelete && q.consumers.length === 0 && q.hadConsumer && !q.deleted) this.dropQueue(q, 'auto-delete');
    else this.scheduleDispatch(q);
  }

  private hasCredit(q: QueueState): boolean {
    if (q.args.singleActiveConsumer) {
      const c = q.consumers[0];
      return !!c && this.consumerHasCredit(c);
    }
    return q.consumers.some((c) => this.consumerHasCredit(c));
  }

  private consumerHasCredit(c: Consumer): boolean {
    return c.active && (c.noAck || c.prefetch === 0 || c.unacked.size < c.prefetch);
  }

  private credit(q: QueueState): number {
    const list = q.args.singleActiveConsumer ? q.consumers.slice(0, 1) : q.consumers;
    let total = 0;
    for (const c of list) {
      if (!c.active) continue;
      if (c.noAck || c.prefetch === 0) return Infinity;
      total += Math.max(0, c.prefetch - c.unacked.size);
    }
    return total;
  }

  private pickConsumer(q: QueueState): Consumer | null {
    if (q.args.singleActiveConsumer) {
      const c = q.consumers[0];
      return c && this.consumerHasCredit(c) ? c : null;
    }
    const n = q.consumers.length;
    for (let k = 0; k < n; k++) {
      const i = (q.rr + k) % n;
      const c = q.consumers[i]!;
      if (this.consumerHasCredit(c)) {
        q.rr = (i + 1) % n;
        return c;
      }
    }
    return null;
  }

  private scheduleDispatch(q: QueueState): void {
    if (q.consumers.length === 0 || this.closed) return;
    this.toDispatch.add(q);
    if (!this.dispatchScheduled) {
      this.dispatchScheduled = true;
      setImmediate(() => this.unlessStoreFailed(() => this.runDispatch()));
    }
  }

  private runDispatch(): void {
    this.dispatchScheduled = false;
    if (this.closed || this.failure) return;
    if (this.direct.length > 0) {
      const batch = this.direct;
      this.direct = [];
      this.invoke(batch);
    }
    const list = [...this.toDispatch];
    this.toDispatch.clear();
    for (const q of list) if (!q.deleted) this.dispatch(q);
  }

  private dispatch(q: QueueState): void {
    // Bounded per turn so one busy queue cannot starve the event loop.
    for (let round = 0; round < 8; round++) {
      const credit = this.credit(q);
      const ready = this.ready(q);
      if (credit <= 0 || ready <= 0) return;
      const n = Math.min(credit, ready, DISPATCH_BATCH);
      // Reads weigh nothing toward the batch size; only writes do.
      const batch = this.gc.write(() => this.collectDeliveries(q, n), 0);
      this.invoke(batch);
      if (this.closed || q.deleted) return;
    }
    this.scheduleDispatch(q);
  }

  private invoke(batch: Array<[Consumer, Delivery]>): void {
    for (const [c, d] of batch) {
      if (!c.active) continue;
      try {
        c.onDelivery(d);
      } catch {
        // A throwing handler must not stop delivery to others; its
        // message stays unacked until acked, nacked or cancelled.
      }
    }
  }

  private collectDeliveries(q: QueueState, n: number): Array<[Consumer, Delivery]> {
    const out: Array<[Consumer, Delivery]> = [];
    const now = this.now();
    const rows = this.takeReady(q, n);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      if (isExpired(row, now)) {
        this.deadLetter(q, movableEnvelope(row), 'expired');
        this.dropRow(q, row);
        continue;
      }
      const c = this.pickConsumer(q);
      if (!c) {
        for (let j = i; j < rows.length; j++) this.returnToReady(q, rows[j]!.id - q.base, rows[j]!.prio);
        break;
      }
      out.push([c, this.deliver(q, c, row)]);
    }
    return out;
  }

  private deliver(q: QueueState, c: Consumer, row: MsgRow): Delivery {
    const seq = row.id - q.base;
    const recovered = row.redelivered === 0 && seq <= q.recoveredUpto;
    const returns = row.returns + (recovered ? 1 : 0);
    const redelivered = row.redelivered === 1 || recovered;
    if (seq > q.deliveredUpto) {
      q.deliveredUpto = seq;
      this.dirty.add(q);
    }
    const properties = this.deliveredProps(row);
    if (q.args.deliveryLimit !== undefined && returns > 0) properties.headers = { ...(properties.headers ?? {}), 'x-delivery-count': returns };
    q.totals.deliver++;
    if (redelivered) q.totals.redeliver++;
    const tag = this.nextTag++;
    if (c.noAck) this.dropRow(q, row);
    else {
      const u: Unacked = { tag, id: row.id, seq, prio: row.prio, size: row.size, returns, redelivered, queue: q, consumer: c };
      c.unacked.set(tag, u);
      q.unacked.set(row.id, u);
      q.unackedBytes += row.size;
      this.tags.set(tag, u);
    }
    return {
      deliveryTag: tag,
      consumerTag: c.tag,
      queue: q.name,
      messageId: String(row.id),
      exchange: row.exchange,
      routingKey: row.rk,
      body: row.body,
      properties,
      redelivered,
      deliveryCount: returns + 1,
    };
  }

  /** A damaged row still reaches its consumer, with a header saying what is wrong, rather than stopping its queue. */
  private deliveredProps(row: MsgRow): MessageProperties {
    try {
      return decodeProps(row.props, row.persistent === 1);
    } catch (err) {
      if (!(err instanceof StoredDataError)) throw err;
      return unreadableProps(row, err);
    }
  }

  private forget(u: Unacked): void {
    u.consumer.unacked.delete(u.tag);
    u.queue.unacked.delete(u.id);
    u.queue.unackedBytes -= u.size;
    this.tags.delete(u.tag);
    if (u.consumer.active) this.scheduleDispatch(u.queue);
  }

  private settleList(deliveryTag: number, multiple: boolean | undefined): Unacked[] {
    const u = this.tags.get(deliveryTag);
    if (!u) throw new BrokerError('PRECONDITION_FAILED', `unknown delivery tag ${shown(deliveryTag)} (already settled, or its consumer is gone)`, 'deliveryTag');
    if (!multiple) return [u];
    const out: Unacked[] = [];
    const scope = u.consumer.owner ? [...(this.byOwner.get(u.consumer.owner) ?? [u.consumer])] : [u.consumer];
    for (const c of scope) {
      for (const [t, x] of c.unacked) {
        if (t > deliveryTag) break;
        out.push(x);
      }
    }
    return out;
  }

  /** Acknowledges a delivery (with multiple: every earlier one of the same consumer/owner too). */
  ack(deliveryTag: number, options: { multiple?: boolean } = {}): void {
    this.assertOpen();
    const list = this.settleList(deliveryTag, options.multiple);
    this.gc.write(() => {
      for (const u of list) {
        this.forget(u);
        this.dropRow(u.queue, u);
        u.queue.totals.ack++;
      }
    }, list.length);
  }

  /** Negative acknowledgement: requeue (default) to the original place, or dead-letter / retry. */
  nack(deliveryTag: number, options: { requeue?: boolean; multiple?: boolean } = {}): void {
    this.assertOpen();
    const list = this.settleList(deliveryTag, options.multiple);
    const requeue = options.requeue ?? true;
    this.gc.run(() => {
      this.applyPending();
      // Read before settling anything: a message that cannot be read fails the call with nothing changed.
      const read = requeue ? [] : list.map((u) => this.msg(u.id)).map((row, i) => (row ? { row, env: this.storedEnvelope(list[i]!.queue, row) } : undefined));
      list.forEach((u, i) => {
        this.forget(u);
        if (requeue) this.requeue(u.queue, u.id, u.seq, u.prio, u.returns);
        else if (read[i]) this.rejectNoRequeue(u.queue, u.id, u.returns, read[i]);
      });
    }, list.length);
  }

  reject(deliveryTag: number, options: { requeue?: boolean } = {}): void {
    this.nack(deliveryTag, { requeue: options.requeue ?? true, multiple: false });
  }

  /**
   * Management-style get: takes up to `count` ready messages and acks them
   * ('ack'), puts them back in place marked redelivered ('requeue'), or
   * rejects them without requeue ('reject': retry delays, else dead-letter
   * with reason "rejected").
   */
  async get(queue: string, options: GetOptions): Promise<BrowsedMessage[]> {
    this.assertOpen();
    const q = this.queue(queue);
    const count = options?.count ?? 1;
    checkInt(count, 'count', 1, 100_000);
    const mode = options?.ackMode;
    if (mode !== 'ack' && mode !== 'requeue' && mode !== 'reject') throw invalid('ackMode', `expected "ack", "requeue" or "reject", got ${shown(mode)}`);
    const out = this.gc.run(() => {
      this.applyPending();
      const now = this.now();
      // Everything is taken and read before anything is removed or dead-lettered:
      // a message that cannot be read puts every taken one back where it was and
      // the call fails, so nothing leaves the queue without reaching the caller.
      const taken: MsgRow[] = [];
      const read: Array<{ row: MsgRow; env: Envelope; msg: BrowsedMessage | null }> = [];
      try {
        for (let live = 0; live < count; ) {
          const rows = this.takeReady(q, count - live);
          if (rows.length === 0) break;
          for (const row of rows) taken.push(row);
          for (const row of rows) {
            const env = this.storedEnvelope(q, row);
            if (isExpired(row, now)) read.push({ row, env, msg: null });
            else {
              const msg = this.browsed(q, row, 'ready', null, env.props);
              delete msg.position;
              read.push({ row, env, msg });
              live++;
            }
          }
        }
      } catch (err) {
        for (const row of taken) this.returnToReady(q, row.id - q.base, row.prio);
        throw err;
      }
      const res: BrowsedMessage[] = [];
      const back: Array<[number, number, number | null, number]> = [];
      for (const { row, env, msg } of read) {
        if (!msg) {
          this.deadLetter(q, env, 'expired');
          this.dropRow(q, row);
          continue;
        }
        res.push(msg);
        q.totals.deliver++;
        if (msg.redelivered) q.totals.redeliver++;
        const seq = row.id - q.base;
        if (seq > q.deliveredUpto) {
          q.deliveredUpto = seq;
          this.dirty.add(q);
        }
        const returns = msg.deliveryCount - 1;
        if (mode === 'ack') {
          this.dropRow(q, row);
          q.totals.ack++;
        } else if (mode === 'reject') this.rejectNoRequeue(q, row.id, returns, { row, env });
        else back.push([row.id, seq, row.prio, returns]);
      }
      // Requeue after taking, so a requeued message is not taken twice.
      for (const [id, seq, prio, returns] of back) this.requeue(q, id, seq, prio, returns);
      return res;
    }, count);
    q.lastUsed = this.now();
    await this.gc.whenCommitted();
    return out;
  }

  // ---- browsing ---------------------------------------------------------------------------------------------

  /** A stored message as an envelope; one whose properties cannot be read is refused with its id and queue. */
  private storedEnvelope(q: QueueState, row: MsgRow | DelayedRow): Envelope {
    try {
      return envelopeOf(row);
    } catch (err) {
      throw unreadable(q, row, err);
    }
  }

  private browsed(q: QueueState, row: MsgRow, state: MessageState, position: number | null, props?: MessageProperties): BrowsedMessage {
    const seq = row.id - q.base;
    const u = q.unacked.get(row.id);
    const recovered = row.redelivered === 0 && seq <= q.recoveredUpto;
    const m: BrowsedMessage = {
      id: String(row.id),
      exchange: row.exchange,
      routingKey: row.rk,
      body: row.body,
      properties: props ?? this.storedEnvelope(q, row).props,
      redelivered: u ? u.redelivered : row.redelivered === 1 || recovered,
      deliveryCount: u ? u.returns + 1 : row.returns + (recovered ? 1 : 0) + 1,
      enqueuedAt: row.enq,
      size: row.size,
      state: u ? 'unacked' : state,
    };
    if (position !== null) m.position = position;
    if (u) m.consumerTag = u.consumer.tag;
    return m;
  }

  private browsedDelayed(q: QueueState, row: DelayedRow, position: number): BrowsedMessage {
    return {
      id: `d${row.id}`,
      position,
      exchange: row.exchange,
      routingKey: row.rk,
      body: row.body,
      properties: this.storedEnvelope(q, row).props,
      redelivered: row.redelivered === 1,
      deliveryCount: row.returns + 1,
      enqueuedAt: row.enq,
      size: row.size,
      state: 'delayed',
      dueAt: row.due,
    };
  }

  private subject(row: { body: Buffer; bin: number; props: string | null; persistent: number; enq: number }): FilterSubject {
    let props: MessageProperties | undefined;
    const properties = () => (props ??= decodeProps(row.props, row.persistent === 1));
    return { body: row.body, text: row.bin === 0, properties, headers: () => properties().headers, time: row.enq };
  }

  private compiled(filter: BrowseOptions['filter']): CompiledFilter | null {
    if (!filter) return null;
    const key = canonicalJson(filter);
    if (this.filters.has(key)) return this.filters.get(key)!;
    const c = compileFilter(filter);
    if (this.filters.size > 100) this.filters.clear();
    this.filters.set(key, c);
    return c;
  }

  /** SQL for a filtered range read: the body substring and time range run inside SQLite. */
  private filterSql(f: CompiledFilter): { where: string; params: unknown[] } {
    const parts: string[] = [];
    const params: unknown[] = [];
    if (f.needle) {
      // GLOB over the text is a tight byte loop in SQLite (~3x faster than
      // instr on a BLOB); rows that are not clean UTF-8 (bin = 1) use instr.
      parts.push('(CASE WHEN bin = 0 THEN CAST(body AS TEXT) GLOB ? ELSE instr(body, ?) > 0 END)');
      params.push(globContains(f.needle.toString('utf8')), f.needle);
    }
    if (f.from !== null) {
      parts.push('enq >= ?');
      params.push(f.from);
    }
    if (f.to !== null) {
      parts.push('enq <= ?');
      params.push(f.to);
    }
    return { where: parts.length ? ` AND ${parts.join(' AND ')}` : '', params };
  }

  /**
   * Lists messages without consuming them, in the order consumers get them:
   * enqueue order, or for a priority queue the highest priority first and
   * enqueue order within each (see browseLevels); delayed messages last.
   * Keyset paging over the per-queue sequence: the cursor is the last
   * sequence returned, never an OFFSET.
   *
   * `position` jumps to a 0-based rank. Ranks come from sequence arithmetic:
   * exact while the queue has no holes (the usual case, as messages leave
   * from the head); with holes (out-of-order acks, deletes in the middle)
   * the rank is interpolated between head and tail, off by at most the
   * number of holes.
   *
   * With a filter, the scan stops after `maxScan` rows or `timeBudgetMs` and
   * returns a cursor to continue; `scanned` counts rows examined, `matched`
   * the matches returned.
   */
  browse(queue: string, options: BrowseOptions = {}): BrowsePage {
    this.assertOpen();
    const q = this.queue(queue);
    const limit = options.limit ?? 100;
    checkInt(limit, 'limit', 1, 100_000);
    const filter = this.compiled(options.filter);
    const includeUnacked = options.includeUnacked ?? false;
    const maxScan = options.maxScan ?? 200_000;
    if (typeof maxScan !== 'number' || !(maxScan >= 1)) throw invalid('maxScan', `expected a positive number, got ${shown(maxScan)}`);
    const timeBudget = options.timeBudgetMs ?? 250;
    const started = performance.now();
    this.applyPending();
    const end = q.base + SEQ_SPAN;

    const head = this.st.firstId.get(q.base, end) as { id: number } | undefined;
    const tail = this.st.lastId.get(q.base, end) as { id: number } | undefined;
    const headSeq = head ? head.id - q.base : q.nextSeq;
    const tailSeq = tail ? tail.id - q.base : q.nextSeq - 1;
    const span = Math.max(1, tailSeq - headSeq + 1);
    const gapless = q.count === span;
    const rank = (seq: number) => (gapless ? seq - headSeq : Math.round(((seq - headSeq) * q.count) / span));

    let phase: 'm' | 'd' = 'm';
    let after = 0;
    let delayedSkip = 0;
    // Priority queues: where to start among the levels (browseLevels).
    const from: { level: number | null; position: number | null } = { level: null, position: null };
    if (options.cursor !== undefined && options.cursor !== null && options.cursor !== '') {
      const c = String(options.cursor);
      const m = /^d:(\d+)$/.exec(c) ?? (q.prio ? /^p:(\d+):(\d+)$/.exec(c) : /^m:(\d+)$/.exec(c));
      if (!m || (m.length === 3 && Number(m[1]) >= q.levels.length)) throw invalid('cursor', 'not a cursor returned by a previous browse of this queue');
      if (c.startsWith('d:')) phase = 'd';
      if (m.length === 3) from.level = Number(m[1]);
      after = Number(m[m.length - 1]);
    } else if (options.position !== undefined) {
      checkInt(options.position, 'position', 0, Number.MAX_SAFE_INTEGER);
      if (options.position >= q.count) {
        phase = 'd';
        delayedSkip = options.position - q.count;
      } else if (q.prio) from.position = options.position;
      else after = headSeq - 1 + (gapless ? options.position : Math.floor((options.position * span) / q.count));
    }

    const messages: BrowsedMessage[] = [];
    let scanned = 0;
    let nextCursor: string | null = null;

    if (phase === 'm' && q.prio) {
      const page = this.browseLevels(q, { level: from.level, after, position: from.position }, { limit, filter, includeUnacked, maxScan, deadline: started + timeBudget }, messages);
      scanned = page.scanned;
      if (page.exhausted) {
        phase = 'd';
        after = 0;
      } else nextCursor = page.nextCursor;
    } else if (phase === 'm') {
      let exhausted = false;
      if (!filter) {
        while (messages.length < limit) {
          const need = limit - messages.length;
          const rows = toRows(this.st.readFifo.all(q.base + after, end, need));
          for (const row of rows) {
            after = row.id - q.base;
            scanned++;
            if (!includeUnacked && q.unacked.has(row.id)) continue;
            messages.push(this.browsed(q, row, 'ready', rank(after)));
          }
          if (rows.length < need) {
            exhausted = true;
            break;
          }
        }
      } else {
        const { where, params } = this.filterSql(filter);
        const stmt = this.dyn.get(`SELECT ${MSG_COLS} FROM messages WHERE id > ? AND id <= ?${where} ORDER BY id LIMIT ?`, true);
        this.mapped(() => {
          for (;;) {
            if (messages.length >= limit) break;
            const first = this.st.firstId.get(q.base + after, end) as { id: number } | undefined;
            if (!first) {
              exhausted = true;
              break;
            }
            if (scanned >= maxScan || performance.now() - started > timeBudget) {
              nextCursor = `m:${after}`;
              break;
            }
            const lo = first.id - q.base - 1;
            const hi = scanChunkEnd(lo, filter, maxScan - scanned);
            let pos = lo;
            let stopAt: number | null = null;
            for (;;) {
              const rows = toRows(stmt.all(q.base + pos, q.base + hi, ...params, SCAN_FETCH));
              for (const row of rows) {
                pos = row.id - q.base;
                if (!includeUnacked && q.unacked.has(row.id)) continue;
                if (filter.js && !filter.js(this.subject(row))) continue;
                messages.push(this.browsed(q, row, 'ready', rank(pos)));
                if (messages.length >= limit) {
                  stopAt = pos;
                  break;
                }
              }
              if (stopAt !== null || rows.length < SCAN_FETCH) break;
            }
            const upto = stopAt ?? hi;
            scanned += gapless ? Math.max(0, Math.min(upto, tailSeq) - Math.max(lo, headSeq - 1)) : (this.st.countRange.get(q.base + lo, q.base + upto) as { n: number }).n;
            after = upto;
          }
        });
      }
      if (exhausted) {
        phase = 'd';
        after = 0;
      } else if (nextCursor === null) {
        const more = this.st.firstId.get(q.base + after, end) !== undefined || q.delayed > 0;
        nextCursor = more ? `m:${after}` : null;
      }
    }

    if (phase === 'd' && nextCursor === null) {
      let position = q.count;
      while (messages.length < limit) {
        const rows = this.st.delayedPage.all(q.qid, after, 500) as DelayedRow[];
        for (const row of rows) {
          after = row.id;
          scanned++;
          if (delayedSkip > 0) {
            delayedSkip--;
            position++;
            continue;
          }
          if (filter && !filter.all(this.subject(row))) {
            position++;
            continue;
          }
          messages.push(this.browsedDelayed(q, row, position++));
          if (messages.length >= limit) break;
        }
        if (messages.length >= limit) {
          const more = (this.st.delayedPage.all(q.qid, after, 1) as DelayedRow[]).length > 0;
          nextCursor = more ? `d:${after}` : null;
          break;
        }
        if (rows.length < 500) break;
      }
    }
    return { messages, nextCursor, scanned, matched: messages.length };
  }

  /**
   * Runs a long scan with the file read through a memory map instead of
   * copying each page into SQLite's cache: about a quarter less CPU over 1M
   * rows. Unmapped afterwards so scanned pages leave the resident set.
   */
  private mapped(scan: () => void): void {
    this.db.pragma('mmap_size = 1099511627776');
    try {
      scan();
    } finally {
      this.db.pragma('mmap_size = 0');
    }
  }

  /**
   * The stored part of a priority queue's browse, in the order consumers get
   * it: the highest level first, then by sequence within a level (a requeued
   * message keeps its place, as it is delivered before anything newer).
   * Ranks are exact: the rows of the levels above plus the rows before it in
   * its own level. The cursor is `p:<level>:<sequence>`.
   */
  private browseLevels(
    q: QueueState,
    from: { level: number | null; after: number; position: number | null },
    o: { limit: number; filter: CompiledFilter | null; includeUnacked: boolean; maxScan: number; deadline: number },
    messages: BrowsedMessage[],
  ): { exhausted: boolean; nextCursor: string | null; scanned: number } {
    const end = q.base + SEQ_SPAN;
    // Rows per level: ready (requeued included) plus delivered and not yet settled.
    const rows = q.levels.map((L) => L.ready);
    for (const u of q.unacked.values()) rows[u.prio ?? 0]! += 1;
    const above = (level: number) => rows.reduce((n, r, p) => (p > level ? n + r : n), 0);
    const count = (level: number, lo: number, hi: number) => (this.st.countPrio.get(level, q.base + lo, q.base + hi) as { n: number }).n;

    let level = q.levels.length - 1;
    let after = 0;
    /** Rank of the first row of `level` after `after`. */
    let rank = 0;
    if (from.position !== null) {
      let k = from.position;
      while (level > 0 && k >= rows[level]!) k -= rows[level--]!;
      const at = this.st.nthPrio.get(level, q.base, end, k) as { id: number } | undefined;
      if (at) {
        after = at.id - q.base - 1;
        rank = from.position;
      } else rank = above(level);
    } else if (from.level !== null) {
      level = from.level;
      after = from.after;
      rank = above(level) + count(level, 0, after);
    }

    let scanned = 0;
    let nextCursor: string | null = null;
    const { limit, filter } = o;
    const keep = (row: MsgRow) => o.includeUnacked || !q.unacked.has(row.id);
    const nextLevel = () => {
      level--;
      after = 0;
      rank = above(level);
    };
    if (!filter) {
      for (; level >= 0 && messages.length < limit; nextLevel()) {
        let more = true;
        while (more && messages.length < limit) {
          const need = limit - messages.length;
          const list = toRows(this.st.readPrio.all(level, q.base + after, end, need));
          for (const row of list) {
            after = row.id - q.base;
            scanned++;
            const r = rank++;
            if (keep(row)) messages.push(this.browsed(q, row, 'ready', r));
          }
          more = list.length === need;
        }
        if (messages.length >= limit) break;
      }
    } else {
      const { where, params } = this.filterSql(filter);
      const stmt = this.dyn.get(`SELECT ${MSG_COLS} FROM messages WHERE prio = ? AND id > ? AND id <= ?${where} ORDER BY id LIMIT ?`, true);
      this.mapped(() => {
        levels: for (; level >= 0; nextLevel()) {
          for (;;) {
            if (messages.length >= limit) break levels;
            const first = this.st.firstPrio.get(level, q.base + after, end) as { id: number } | undefined;
            if (!first) break;
            if (scanned >= o.maxScan || performance.now() > o.deadline) {
              nextCursor = `p:${level}:${after}`;
              break levels;
            }
            const lo = first.id - q.base - 1;
            const hi = scanChunkEnd(lo, filter, o.maxScan - scanned);
            // `counted`: rows of this level up to it are in `rank` and `scanned`.
            let counted = lo;
            let pos = lo;
            let stopAt: number | null = null;
            for (;;) {
              const list = toRows(stmt.all(level, q.base + pos, q.base + hi, ...params, SCAN_FETCH));
              for (const row of list) {
                pos = row.id - q.base;
                if (!keep(row) || (filter.js && !filter.js(this.subject(row)))) continue;
                const before = count(level, counted, pos - 1);
                rank += before;
                scanned += before + 1;
                counted = pos;
                messages.push(this.browsed(q, row, 'ready', rank++));
                if (messages.length >= limit) {
                  stopAt = pos;
                  break;
                }
              }
              if (stopAt !== null || list.length < SCAN_FETCH) break;
            }
            const upto = stopAt ?? hi;
            const rest = count(level, counted, upto);
            rank += rest;
            scanned += rest;
            after = upto;
          }
        }
      });
    }
    if (level < 0) return { exhausted: true, nextCursor: null, scanned };
    if (nextCursor === null) {
      let more = q.delayed > 0;
      for (let p = level; p >= 0 && !more; p--) more = this.st.firstPrio.get(p, q.base + (p === level ? after : 0), end) !== undefined;
      nextCursor = more ? `p:${level}:${after}` : null;
    }
    return { exhausted: false, nextCursor, scanned };
  }

  // ---- streams -----------------------------------------------------------------------------------------------

  createTopic(name: string, options: TopicOptions): TopicInfo {
    this.assertOpen();
    return this.streams.createTopic(name, options);
  }

  deleteTopic(name: string): void {
    this.assertOpen();
    this.streams.deleteTopic(name);
  }

  listTopics(): TopicInfo[] {
    return this.streams.listTopics();
  }

  /** Appends records; resolves with their partition and offset after the commit. */
  produce(topic: string, records: ProduceRecord[], options: ProduceOptions = {}): Promise<Array<{ partition: number; offset: number }>> {
    try {
      this.assertOpen();
      this.assertRoom();
      return this.streams.produce(topic, records, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  fetch(topic: string, partition: number, options: FetchOptions = {}): FetchResult {
    this.assertOpen();
    return this.streams.fetch(topic, partition, options);
  }

  browseTopic(topic: string, options: BrowseTopicOptions = {}): BrowseTopicPage {
    this.assertOpen();
    return this.streams.browseTopic(topic, options);
  }

  joinGroup(groupId: string, memberId: string, topics: string[]): JoinGroupResult {
    this.assertOpen();
    return this.streams.joinGroup(groupId, memberId, topics);
  }

  leaveGroup(groupId: string, memberId: string): LeaveGroupResult {
    this.assertOpen();
    return this.streams.leaveGroup(groupId, memberId);
  }

  commitOffsets(groupId: string, offsets: OffsetCommit[]): Promise<void> {
    try {
      this.assertOpen();
      return this.streams.commitOffsets(groupId, offsets);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  listGroups(): GroupInfo[] {
    return this.streams.listGroups();
  }

  planGroupReset(req: GroupResetRequest): GroupResetPlan {
    this.assertOpen();
    return this.streams.planGroupReset(req);
  }

  resetGroupOffsets(req: GroupResetRequest): Promise<GroupResetPlan> {
    try {
      this.assertOpen();
      return this.streams.resetGroupOffsets(req);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  deleteGroup(groupId: string): Promise<void> {
    try {
      this.assertOpen();
      return this.streams.deleteGroup(groupId);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  // ---- re-drive ------------------------------------------------------------------------------------------------

  /**
   * Starts moving dead letters out of `source`: to the queue each came from
   * (its latest x-death entry) or to `target`. Returns at once; follow with
   * getRedrive() or the 'redrive' event.
   */
  startRedrive(req: RedriveRequest): { id: string } {
    this.assertOpen();
    if (!req || typeof req !== 'object') throw invalid('request', `expected { source, messageIds | all | filter }, got ${shown(req)}`);
    const q = this.queue(req.source, 'source');
    let selection: RedriveSelection;
    if (req.messageIds !== undefined) {
      if (!Array.isArray(req.messageIds) || req.messageIds.length === 0 || req.messageIds.some((x) => typeof x !== 'string')) {
        throw invalid('messageIds', `expected a non-empty list of message ids (strings), got ${shown(req.messageIds)}`);
      }
      selection = { kind: 'ids', ids: [...req.messageIds] };
    } else if (req.filter !== undefined) {
      if (!this.compiled(req.filter)) selection = { kind: 'all' };
      else selection = { kind: 'filter', filter: req.filter };
    } else if (req.all === true) selection = { kind: 'all' };
    else throw invalid('messageIds', 'give messageIds (one or more), all: true, or a filter');
    let edit: RedriveJobState['edit'] = null;
    if (req.edit !== undefined && req.edit !== null) {
      if (selection.kind !== 'ids' || selection.ids.length !== 1) throw invalid('edit', 'edit applies to exactly one message: give one messageId');
      edit = {};
      if (req.edit.body !== undefined) {
        if (typeof req.edit.body !== 'string' && !Buffer.isBuffer(req.edit.body)) throw invalid('edit.body', `expected a string or bytes, got ${shown(req.edit.body)}`);
        edit.body = typeof req.edit.body === 'string' ? Buffer.from(req.edit.body, 'utf8') : req.edit.body;
        checkMessageSize(edit.body.length, this.maxBodyBytes, 'edit.body');
      }
      if (req.edit.headers !== undefined) edit.headers = checkTable(req.edit.headers, 'edit.headers');
    }
    let target: RedriveJobState['target'] = null;
    if (req.target !== undefined && req.target !== null) {
      const ex = this.exchange(req.target.exchange, 'target.exchange');
      if (ex.internal) throw new BrokerError('PRECONDITION_FAILED', `exchange ${JSON.stringify(ex.name)} is internal`, 'target.exchange');
      if (typeof req.target.routingKey !== 'string') throw invalid('target.routingKey', `expected a string, got ${shown(req.target.routingKey)}`);
      // Through the default exchange the routing key names the queue: one that does not exist would take nothing.
      if (ex.name === '' && !this.queues.has(req.target.routingKey)) {
        throw new BrokerError('NOT_FOUND', `re-drive target: queue ${JSON.stringify(req.target.routingKey)} does not exist`, 'target.routingKey');
      }
      target = { exchange: ex.name, routingKey: req.target.routingKey };
    }
    let rate: number | null = null;
    if (req.ratePerSecond !== undefined && req.ratePerSecond !== null) {
      if (typeof req.ratePerSecond !== 'number' || !(req.ratePerSecond > 0) || req.ratePerSecond > 1_000_000) {
        throw invalid('ratePerSecond', `expected a number above 0 and at most 1000000, got ${shown(req.ratePerSecond)}`);
      }
      rate = req.ratePerSecond;
    }
    const upper = q.nextSeq - 1;
    let total: number;
    if (selection.kind === 'ids') total = selection.ids.length;
    else if (selection.kind === 'all') total = q.count;
    else total = this.countMatches(q, this.compiled(selection.filter)!, upper);
    // Make every message published before the job durable before it starts.
    this.gc.flush();
    const job = this.redrives.create({ connectionId: req.connectionId ?? 'local', source: q.name, target, selection, edit, rate, total, upper });
    return { id: job.id };
  }

  private countMatches(q: QueueState, f: CompiledFilter, upper: number): number {
    this.applyPending();
    const { where, params } = this.filterSql(f);
    const stmt = this.dyn.get(`SELECT ${MSG_COLS} FROM messages WHERE id > ? AND id <= ?${where} ORDER BY id LIMIT ?`, true);
    let after = 0;
    let n = 0;
    for (;;) {
      const rows = toRows(stmt.all(q.base + after, q.base + upper, ...params, 1000));
      for (const row of rows) {
        after = row.id - q.base;
        if (!f.js || f.js(this.subject(row))) n++;
      }
      if (rows.length < 1000) return n;
    }
  }

  getRedrive(id: string): RedriveJob {
    return this.redrives.get(id);
  }

  cancelRedrive(id: string): RedriveJob {
    return this.redrives.cancel(id);
  }

  listRedrives(): RedriveJob[] {
    return this.redrives.list();
  }

  /** One batch of a re-drive job (inside the job's transaction). */
  private redriveStep(job: RedriveJobState, max: number): boolean {
    const q = this.queues.get(job.source);
    if (!q) throw new Error(`source queue ${JSON.stringify(job.source)} no longer exists`);
    this.applyPending();
    this.moveMemo = null;
    if (job.selection.kind === 'ids') {
      const ids = job.selection.ids;
      const stop = Math.min(ids.length, job.cursor + max);
      for (let k = job.cursor; k < stop; k++) {
        const raw = ids[k]!;
        const id = /^\d+$/.test(raw) ? Number(raw) : NaN;
        const row = Number.isSafeInteger(id) && id > q.base && id < q.base + SEQ_SPAN ? this.msg(id) : undefined;
        const why = row ? this.moveOne(q, job, row) : `no longer in ${JSON.stringify(q.name)}`;
        if (why === null) job.moved++;
        else noteFailure(job, why);
      }
      job.cursor = stop;
      return stop >= ids.length;
    }
    const f = job.selection.kind === 'filter' ? this.compiled(job.selection.filter) : null;
    const rows = toRows((f
      ? this.dyn.get(`SELECT ${MSG_COLS} FROM messages WHERE id > ? AND id <= ?${this.filterSql(f).where} ORDER BY id LIMIT ?`, true).all(q.base + job.cursor, q.base + job.upper, ...this.filterSql(f).params, max)
      : this.st.readFifo.all(q.base + job.cursor, q.base + job.upper + 1, max)) as unknown[]);
    for (const row of rows) {
      job.cursor = row.id - q.base;
      if (f?.js && !f.js(this.subject(row))) continue;
      const why = this.moveOne(q, job, row);
      if (why === null) job.moved++;
      else noteFailure(job, why);
    }
    return rows.length < max;
  }

  /**
   * Moves one dead letter: insert into the target(s) and delete from the source, atomically;
   * null when moved, else why it stays.
   * Dead letters of one incident mostly share their properties text; the
   * decoded, updated and re-encoded properties and the targets depend only
   * on that text (within one batch), so they are worked out once per run of
   * equal texts.
   */
  private moveOne(q: QueueState, job: RedriveJobState, row: MsgRow): string | null {
    if (q.unacked.has(row.id)) return 'being delivered to a consumer (unacked)';
    let plan: MovePlan | string;
    const memo = this.moveMemo;
    if (memo && memo.job === job && memo.props === row.props && memo.persistent === row.persistent) plan = memo.plan;
    else {
      plan = this.planMove(job, row);
      this.moveMemo = job.edit ? null : { job, props: row.props, persistent: row.persistent, plan };
    }
    if (typeof plan === 'string') return plan;
    const { targets } = plan;
    const body = job.edit?.body ?? row.body;
    const env: Envelope = { ...plan.env, body, size: body.length, bin: job.edit?.body !== undefined ? isText(body) : row.bin };
    // Every target would refuse it (full, reject-publish): it stays where it is.
    if (targets.every((t) => t.args.overflow !== 'drop-head' && this.isFull(t, env.size))) {
      return `${targets.length === 1 ? `queue ${JSON.stringify(targets[0]!.name)} is` : 'every target queue is'} full (x-max-length or x-max-length-bytes with x-overflow ${targets[0]!.args.overflow ?? 'reject-publish'})`;
    }
    for (const t of targets) this.enqueue(t, env);
    this.removeReady(q, row);
    return null;
  }

  /** Where and as what a dead letter goes, or why it cannot go anywhere. */
  private planMove(job: RedriveJobState, row: MsgRow): MovePlan | string {
    let props: MessageProperties;
    try {
      props = decodeProps(row.props, row.persistent === 1);
    } catch (err) {
      if (err instanceof StoredDataError) return `its ${err.message}`;
      throw err;
    }
    // Spread, not Object.assign: an edited header named __proto__ stays a header.
    const headers: FieldTable = { ...(props.headers ?? {}), 'x-redriven-count': (Number(props.headers?.['x-redriven-count']) || 0) + 1, ...job.edit?.headers };
    props.headers = headers;
    let targets: QueueState[];
    let exchange: string;
    let rk: string;
    if (job.target) {
      const ex = this.exchanges.get(job.target.exchange);
      if (!ex) return `exchange ${JSON.stringify(job.target.exchange)} does not exist`;
      targets = [...this.route(ex, job.target.routingKey, headers)];
      exchange = job.target.exchange;
      rk = job.target.routingKey;
      if (targets.length === 0) {
        return ex.name === '' ? `queue ${JSON.stringify(rk)} does not exist` : `exchange ${JSON.stringify(ex.name)} routes routing key ${JSON.stringify(rk)} to no queue`;
      }
    } else {
      // Back where it died: x-death[0] is the most recent death. It goes
      // straight into that queue (not through an exchange), keeping the
      // exchange and routing key it originally had.
      const death = Array.isArray(headers['x-death']) ? (headers['x-death'] as unknown[]).find(isRecord) : undefined;
      if (typeof death?.queue !== 'string') return 'no x-death header names the queue it came from: choose a target exchange and routing key';
      const origin = this.queues.get(death.queue);
      if (!origin) return `its original queue ${JSON.stringify(death.queue)} does not exist`;
      targets = [origin];
      exchange = typeof death.exchange === 'string' ? death.exchange : '';
      const keys = death['routing-keys'];
      rk = Array.isArray(keys) && typeof keys[0] === 'string' ? keys[0] : origin.name;
    }
    const env = makeEnvelope(exchange, rk, row.body, props, { bin: row.bin });
    env.persistent = row.persistent === 1;
    return { targets, env };
  }

  // ---- audit -----------------------------------------------------------------------------------------------------

  private insertAudit(connectionId: string, action: string, source: string, target: string, count: number, selection: string, state: string): number {
    const r = this.st.insertAudit.run(this.now(), connectionId, action, source, target, count, selection, state);
    return Number(r.lastInsertRowid);
  }

  private audit(action: string, source: string, target: string, count: number, selection: string, state: string): void {
    this.insertAudit('local', action, source, target, count, selection, state);
    this.st.pruneAudit.run();
  }

  /** Newest first. */
  listAudit(limit = 200): AuditEntry[] {
    checkInt(limit, 'limit', 1, 10_000);
    const rows = this.st.listAudit.all(limit) as Array<{
      id: number;
      at: number;
      connection_id: string;
      action: string;
      source: string;
      target: string;
      count: number;
      selection: string;
      state: string;
    }>;
    return rows.map((r) => ({
      id: String(r.id),
      at: r.at,
      connectionId: r.connection_id,
      action: r.action,
      source: r.source,
      target: r.target,
      count: r.count,
      selection: r.selection,
      state: r.state,
    }));
  }

  // ---- maintenance and metrics -------------------------------------------------------------------------------------

  /**
   * Runs due work now: delayed and retried messages that are due, TTL
   * expiry at queue heads, x-expires, dedup cache expiry, stream retention,
   * and (once a second by the engine clock) a metrics sample. Timers call it
   * every 100 ms; tests with a fake clock call it directly.
   */
  tick(): void {
    if (this.closed || this.failure) return;
    const now = this.now();
    this.processDelayed(now);
    this.expireHeads(now);
    this.expireQueues(now);
    if (now - this.lastSlowTick >= 1000 || now < this.lastSlowTick) {
      this.lastSlowTick = now;
      this.checkDisk();
      if (this.dedupCaches > 0) this.gc.run(() => this.st.dedupExpire.run(now));
      this.streams.applyRetention();
    }
    if (now - this.lastSample >= 1000) this.sample(now);
  }

  private processDelayed(now: number): void {
    while (this.delayedTotal > 0) {
      const rows = this.st.dueDelayed.all(now, 500) as DelayedRow[];
      if (rows.length === 0) return;
      this.gc.run(() => {
        for (const r of rows) {
          this.st.deleteDelayed.run(r.id);
          const q = this.byQid.get(r.qid);
          if (!q) continue;
          q.delayed--;
          q.delayedBytes -= r.size;
          this.delayedTotal--;
          q.totals.publish--; // counted when it was published
          this.enqueue(q, movableEnvelope(r), 0, false);
        }
      }, rows.length);
      if (rows.length < 500) return;
    }
  }

  private expireHeads(now: number): void {
    for (const q of this.queues.values()) {
      if (!q.expiring || q.deleted) continue;
      if (this.ready(q) === 0) {
        if (q.args.messageTtl === undefined && q.unacked.size === 0) q.expiring = false;
        continue;
      }
      const head = this.peekHead(q);
      if (!head || !isExpired(head, now)) continue;
      this.gc.run(() => {
        for (let n = 0; n < 5000; n++) {
          const h = n === 0 ? head : this.peekHead(q);
          if (!h || !isExpired(h, now)) break;
          const [row] = this.takeReady(q, 1);
          if (!row) break;
          this.deadLetter(q, movableEnvelope(row), 'expired');
          this.dropRow(q, row);
        }
      });
    }
  }

  private expireQueues(now: number): void {
    for (const q of [...this.queues.values()]) {
      const ttl = q.args.expires;
      if (ttl === undefined || q.consumers.length > 0 || now - q.lastUsed < ttl) continue;
      this.gc.run(() => this.dropQueue(q, 'expired'));
    }
  }

  private sample(now: number): void {
    const dt = (now - this.lastSample) / 1000;
    this.lastSample = now;
    for (const q of this.queues.values()) {
      const t = q.totals;
      const p = q.prevTotals;
      q.rates = {
        publish: Math.max(0, (t.publish - p.publish) / dt),
        deliver: Math.max(0, (t.deliver - p.deliver) / dt),
        ack: Math.max(0, (t.ack - p.ack) / dt),
        redeliver: Math.max(0, (t.redeliver - p.redeliver) / dt),
      };
      q.prevTotals = { ...t };
    }
    const snapshot = this.stats();
    this.metrics.record(now, snapshot.queues, snapshot.groups);
    if (this.events.listenerCount('stats') > 0) this.events.emit('stats', snapshot);
  }

  /** Snapshot of every queue and consumer group. */
  stats(): StatsSnapshot {
    this.assertOpen();
    return { at: this.now(), queues: this.listQueues(), groups: this.streams.listGroups() };
  }

  /** 'hour': 1 s samples (memory); 'day': 1 min samples (persisted). */
  history(resource: { kind: 'queue' | 'group'; name: string }, range: 'hour' | 'day' = 'hour'): HistorySeries {
    this.assertOpen();
    if (!resource || (resource.kind !== 'queue' && resource.kind !== 'group')) throw invalid('kind', `expected "queue" or "group", got ${shown(resource?.kind)}`);
    if (typeof resource.name !== 'string') throw invalid('name', `expected a name, got ${shown(resource.name)}`);
    if (range !== 'hour' && range !== 'day') throw invalid('range', `expected "hour" or "day", got ${shown(range)}`);
    return this.metrics.history(resource.kind, resource.name, range, this.now());
  }
}

/**
 * RabbitMQ's cycle rule: dead-lettering into a queue that already appears
 * in x-death is a cycle unless some death between now and that entry (both
 * included) was a rejection by a client.
 */
export { describeSelection, describeTarget, TypedEmitter };
