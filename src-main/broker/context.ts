/**
 * What the parts of the embedded broker share: the store, the topology
 * (exchanges, queues), the consumers and their unacked deliveries, and the
 * services each part calls (streams, metrics, re-drive jobs, audit log).
 *
 * The Engine (engine.ts) creates one EngineContext and hands it to plain
 * functions grouped by concern (exchanges/, queues/, publish.ts, …); none of
 * them keeps state of its own. Two operations are called from below the
 * module that defines them and so are reached through the context instead of
 * an import (the modules import one another in one direction only):
 * `enqueue` (publish.ts; dead-lettering re-enqueues) and `scheduleDispatch`
 * (queues/dispatch.ts; the store hands a requeued message back).
 *
 * Rules the parts rely on:
 * - Message rows of queue `qid` are the id range (qid·SEQ_SPAN, (qid+1)·SEQ_SPAN);
 *   a queue's sequence is `id - q.base`.
 * - Rows in `pendingInserts` and ids in `pendingDeletes` are not in SQLite
 *   yet: anything that reads message rows calls `applyPending` first (the
 *   FIFO read path in queues/store.ts serves pending rows from memory).
 * - A queue whose counters changed is added to `dirty`; its row is written
 *   right before the next commit.
 * - `topologyVersion` changes with every exchange, queue or binding change
 *   (it keys the cache of dead-letter sources).
 */
import type { SqliteDatabase } from '../storage/database.js';
import type { GroupCommit } from '../storage/group-commit.js';
import type { DynamicStatements, StatementSet } from '../storage/statements.js';
import type { QueueArgs } from './args.js';
import type { AuditLog } from './audit.js';
import { StoredDataError } from './codec.js';
import type { TypedEmitter } from './emitter.js';
import type { Envelope } from './envelope.js';
import { BrokerError, invalid, notFound, shown } from './errors.js';
import type { CompiledFilter } from '../ground/filter.js';
import type { MetricsHistory } from './metrics.js';
import type { RedriveJobs } from './redrive.js';
import type { SQL } from './queues/sql.js';
import type { Streams } from './streams.js';
import type { TopicMatcher } from './topic.js';
import type { BindingInfo, Delivery, EngineEvents, ExchangeInfo, ExchangeType, FieldTable, QueueRates, SharedPrefetch } from './types.js';

// ---- queue state ------------------------------------------------------------------

/** One priority level's delivery state (non-priority queues have one). */
export interface Level {
  /** Highest seq of this level already taken from disk for delivery. */
  cursor: number;
  /** Ready messages of this level (beyond the cursor + requeued). */
  ready: number;
  /** Seqs put back by nack/cancel: delivered before anything past the cursor. Sorted. */
  requeued: number[];
}

export interface Unacked {
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

export interface Consumer {
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
  /** A prefetch limit shared with other consumers (basic.qos global=true); see queues/dispatch.ts. */
  shared?: SharedPrefetch;
}

export interface Totals {
  publish: number;
  deliver: number;
  ack: number;
  redeliver: number;
}

export interface QueueState {
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

// ---- exchange state ---------------------------------------------------------------

export interface BindingState extends BindingInfo {
  argsKey: string;
  /** The compiled pattern of a topic exchange's binding (see exchanges/topic.ts). */
  topic: TopicMatcher | null;
}

/** How one exchange type picks bindings: one module each under exchanges/. */
export interface ExchangeKind {
  readonly type: ExchangeType;
  /** Indexes a binding just added to `ex.bindings`. */
  bind(ex: ExchangeState, b: BindingState): void;
  /** Forgets a binding just removed from `ex.bindings`. */
  unbind(ex: ExchangeState, b: BindingState): void;
  /** The bindings a message with this routing key and these headers follows. */
  match(ex: ExchangeState, rk: string, headers: FieldTable | undefined): readonly BindingState[];
}

export interface ExchangeState extends ExchangeInfo {
  kind: ExchangeKind;
  alternateExchange: string | undefined;
  builtin: boolean;
  bindings: BindingState[];
  /** Direct exchanges: bindings by routing key. */
  direct: Map<string, BindingState[]>;
}

export type Outcome = 'ok' | 'rejected' | 'dedup';

/** Where and as what a re-driven message goes (its body aside). */
export interface MovePlan {
  targets: QueueState[];
  env: Envelope;
}

// ---- the context -----------------------------------------------------------------------

export interface EngineContext {
  readonly db: SqliteDatabase;
  readonly gc: GroupCommit;
  readonly st: StatementSet<keyof typeof SQL>;
  readonly dyn: DynamicStatements;
  readonly now: () => number;
  readonly events: TypedEmitter<EngineEvents>;
  readonly maxBodyBytes: number;
  readonly maxCallBytes: number;

  readonly exchanges: Map<string, ExchangeState>;
  readonly queues: Map<string, QueueState>;
  readonly byQid: Map<number, QueueState>;
  topologyVersion: number;
  dlCache: { version: number; map: Map<string, string[]> } | null;
  nextQid: number;

  readonly consumers: Map<string, Consumer>;
  readonly byOwner: Map<string, Set<Consumer>>;
  /** Unacked deliveries by delivery tag. */
  readonly tags: Map<number, Unacked>;
  nextTag: number;
  /** Queues with deliveries to make on the next dispatch turn. */
  readonly toDispatch: Set<QueueState>;
  dispatchScheduled: boolean;
  /** Deliveries handed over at publish time, passed to consumers on the next dispatch turn. */
  direct: Array<[Consumer, Delivery]>;

  /** Queues whose counters changed since the last commit. */
  readonly dirty: Set<QueueState>;
  /**
   * Rows already gone logically (acked, consumed without ack, dead-lettered)
   * but not yet deleted: deleted as id ranges right before each commit (and
   * before any read that could see them). Consumption is mostly in order,
   * so thousands of acks become a handful of range deletes.
   */
  pendingDeletes: number[];
  /**
   * Messages published while their FIFO queue has a consumer (handed
   * straight to it, or queued behind others) are inserted at the next commit
   * rather than at once; one acked before that commit is never written at
   * all (its insert and delete cancel out). takeReady serves the next FIFO
   * message from here; every other path that reads message rows applies
   * these first.
   */
  pendingInserts: Map<number, unknown[]>;
  delayedTotal: number;

  readonly streams: Streams;
  readonly metrics: MetricsHistory;
  readonly redrives: RedriveJobs;
  readonly audit: AuditLog;
  /** Compiled browse and re-drive filters by their canonical JSON. */
  readonly filters: Map<string, CompiledFilter | null>;
  /** The last re-drive move plan; valid within one re-drive batch (see redrive-moves.ts). */
  moveMemo: { job: object; props: string | null; persistent: number; plan: MovePlan | string } | null;

  closed: boolean;
  /** Set when the store could not be written; see Engine.storeFailed. */
  failure: BrokerError | null;

  /** publish.ts's enqueue: puts a message into a queue (dedup, overflow, delay, TTL). */
  enqueue(q: QueueState, env: Envelope, delayMs?: number, checkDedup?: boolean): Outcome;
  /** queues/dispatch.ts's scheduleDispatch: delivers to the queue's consumers on the next turn. */
  scheduleDispatch(q: QueueState): void;
}

// ---- small helpers ---------------------------------------------------------------------

/** Runs timer-driven work; a storage failure it runs into has already stopped the engine and is not thrown again. */
export function unlessStoreFailed(ctx: EngineContext, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (!ctx.failure) throw err;
  }
}

/** A stored message whose properties no version wrote (a damaged row): the error names it and its queue. */
export function unreadable(q: { name: string }, row: { id: number; due?: number }, err: unknown): unknown {
  if (!(err instanceof StoredDataError)) return err;
  const id = row.due === undefined ? String(row.id) : `d${row.id}`;
  return new BrokerError('PRECONDITION_FAILED', `message ${id} of queue ${JSON.stringify(q.name)}: its ${err.message}`, 'queue');
}

/** Binary search in a sorted number array: index if found, else -(insertion point) - 1. */
export function bsearch(a: number[], x: number): number {
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

export function insertSorted(a: number[], x: number): void {
  const i = bsearch(a, x);
  if (i < 0) a.splice(-i - 1, 0, x);
}

/**
 * A message is expired once its expiry time has passed. A TTL of 0 gives
 * expiry == enqueue time; such a message is only kept when a consumer was
 * ready to take it at once (see insertMessage in publish.ts), so it is not
 * expired in the millisecond it arrived.
 */
export function isExpired(row: { exp: number | null; enq: number }, now: number): boolean {
  if (row.exp === null) return false;
  return row.exp < now || (row.exp === now && row.exp !== row.enq);
}

export function checkName(value: unknown, field: string, what: string): string {
  if (typeof value !== 'string') throw invalid(field, `expected a ${what} name (string), got ${shown(value)}`);
  if (Buffer.byteLength(value) > 255) throw invalid(field, `${what} names are at most 255 bytes`);
  return value;
}

export function checkInt(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(field, `expected an integer from ${min} to ${max}, got ${shown(value)}`);
  }
  return value;
}


export function findQueue(ctx: EngineContext, name: unknown, field = 'queue'): QueueState {
  const q = typeof name === 'string' ? ctx.queues.get(name) : undefined;
  if (!q) throw notFound('queue', String(name), field);
  return q;
}

export function findExchange(ctx: EngineContext, name: unknown, field: string): ExchangeState {
  const ex = typeof name === 'string' ? ctx.exchanges.get(name) : undefined;
  if (!ex) throw notFound('exchange', String(name), field);
  return ex;
}
