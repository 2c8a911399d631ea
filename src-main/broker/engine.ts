/**
 * The embedded durable broker engine: AMQP-model exchanges and queues,
 * Kafka-model streams, dead-lettering, delays, retries, dedup, re-drive and
 * metrics, on one SQLite database.
 *
 * This class is the broker's face: it opens the store, owns the lifecycle
 * (close, a store failure, the disk alarm, the maintenance tick, statistics)
 * and checks that it is open before handing each call to the module that
 * does the work, all of them sharing one EngineContext (context.ts):
 *
 *   exchanges/   declaring, binding, routing; one module per exchange type
 *   publish.ts   publishing: routing into queues, TTL, overflow, delays
 *   queues/      the queue store and its SQL, queues, consumers, dispatch and
 *                acks, dead-lettering, dedup, browsing, expiry
 *   redrive-moves.ts  moving dead letters (the jobs themselves: redrive.ts)
 *   streams.ts   topics, records and consumer groups; stored-batches.ts
 *                keeps record batches as Kafka clients produced them
 *   audit.ts, disk-alarm.ts, metrics.ts, load.ts
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
import { openDatabase, type SqliteDatabase } from '../storage/database.js';
import { GroupCommit } from '../storage/group-commit.js';
import { migrate } from '../storage/migrations.js';
import { DynamicStatements, prepareStatements } from '../storage/statements.js';
import { AuditLog } from './audit.js';
import { checkInt, unlessStoreFailed, type EngineContext } from './context.js';
import { DEFAULT_DISK_FREE_LIMIT, DiskMonitor } from './disk-alarm.js';
import { TypedEmitter } from './emitter.js';
import { GroupCoordinator } from './group-coordinator.js';
import { BrokerError, invalid, shown } from './errors.js';
import * as exchanges from './exchanges/exchanges.js';
import { MAX_CALL_BYTES, MAX_MESSAGE_BYTES } from './limits.js';
import { load } from './load.js';
import { MetricsHistory } from './metrics.js';
import * as publishing from './publish.js';
import * as browsing from './queues/browse.js';
import { basicGet, type BasicGetOptions } from './queues/basic-get.js';
import * as consumers from './queues/consumers.js';
import { listDeadLetterQueues } from './queues/dead-letter.js';
import { scheduleDispatch } from './queues/dispatch.js';
import { expireHeads, expireQueues, processDelayed } from './queues/expiry.js';
import { sweepDedup } from './queues/dedup.js';
import * as queues from './queues/queues.js';
import { RAW_STATEMENTS, SQL } from './queues/sql.js';
import { applyPending, saveCounters } from './queues/store.js';
import { describeSelection, describeTarget, RedriveJobs } from './redrive.js';
import { redriveStep, startRedrive } from './redrive-moves.js';
import { Streams, type TopicConfigChange } from './streams.js';
import { Transactions } from './transactions.js';
import type { StoredBatchInfo } from './stored-batches.js';
import type { BatchRecord } from '../ground/kafka-batch.js';
import type {
  AuditEntry,
  BindingInfo,
  BindingSpec,
  BrowsedMessage,
  BrowseOptions,
  BrowsePage,
  BrowseTopicOptions,
  BrowseTopicPage,
  ConsumeOptions,
  ConsumerSummary,
  DeadLetterQueueInfo,
  Delivery,
  DiskAlarm,
  EngineEvents,
  EngineOptions,
  ExchangeInfo,
  ExchangeOptions,
  FetchOptions,
  FetchResult,
  GetOptions,
  GroupInfo,
  GroupResetPlan,
  GroupResetRequest,
  HistorySeries,
  JoinGroupResult,
  LeaveGroupResult,
  OffsetCommit,
  ProduceOptions,
  ProduceRecord,
  PublishManyRequest,
  PublishManyResult,
  PublishRequest,
  PublishResult,
  QueueInfo,
  QueueOptions,
  RedriveJob,
  RedriveRequest,
  SharedPrefetch,
  StatsSnapshot,
  TopicInfo,
  TopicOptions,
  TopicPartitionRef,
} from './types.js';

const MAINTENANCE_MS = 100;

export class Engine {
  /** 'stats' (1 Hz), 'redrive' (progress ≤ 4/s and final state), 'record' (appended topic records), 'returned' (mandatory returns). */
  readonly events = new TypedEmitter<EngineEvents>();
  /**
   * Kafka's classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) for a
   * wire listener to drive; its session and rebalance timeouts run on the engine's tick.
   */
  readonly groupCoordinator: GroupCoordinator;
  /** Kafka transactions (transactions.ts): the coordinator's state and the partitions' transaction indexes, for the wire listener. */
  readonly transactions: Transactions;

  private readonly ctx: EngineContext;
  private readonly db: SqliteDatabase;
  private readonly gc: GroupCommit;
  private readonly streams: Streams;
  private readonly metrics: MetricsHistory;
  private readonly redrives: RedriveJobs;
  private readonly disk: DiskMonitor;
  private readonly timers: NodeJS.Timeout[] = [];
  private lastSample: number;
  private lastSlowTick = 0;

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
    const now = options.now ?? Date.now;
    this.groupCoordinator = new GroupCoordinator(now);
    const maxBodyBytes = options.maxBodyBytes ?? MAX_MESSAGE_BYTES;
    const maxCallBytes = options.maxCallBytes ?? MAX_CALL_BYTES;
    const st = prepareStatements(db, SQL);
    for (const k of RAW_STATEMENTS) st[k].raw(true);
    // The group commit calls back into the context, which is made just below.
    let ctx: EngineContext;
    this.gc = new GroupCommit(db, {
      intervalMs: options.groupCommitMs ?? 2,
      maxOps: options.groupCommitMaxOps ?? 4000,
      // A full batch waits one turn so queued deliveries (and their acks)
      // run first: rows acked by then are never written.
      hardMaxOps: 4 * (options.groupCommitMaxOps ?? 4000),
      beforeCommit: () => saveCounters(ctx),
      // Pending rows belong to other calls: stored outside this unit's
      // savepoint, so its rollback cannot take them along.
      beforeUnit: () => applyPending(ctx),
      onError: (err) => this.storeFailed(err),
      checkpointEveryMs: options.dataDir === null ? 0 : 250,
    });
    const audit = new AuditLog(db, now);
    this.streams = new Streams({
      db,
      gc: this.gc,
      now,
      emitRecord: (e) => this.events.emit('record', e),
      wantsRecords: () => this.events.listenerCount('record') > 0,
      maxMessageBytes: maxBodyBytes,
      maxCallBytes,
      audit: (action, source, target, count, selection) => audit.record(action, source, target, count, selection, 'completed'),
      coordinated: this.groupCoordinator,
    });
    this.transactions = new Transactions({ db, gc: this.gc, now, streams: this.streams, changed: () => this.events.emit('transaction') });
    this.metrics = new MetricsHistory(this.gc, db);
    this.redrives = new RedriveJobs({
      db,
      gc: this.gc,
      now,
      step: (job, max) => redriveStep(ctx, job, max),
      emit: (job) => this.events.emit('redrive', job),
      insertAudit: (e) => audit.insert(e.connectionId, e.action, e.source, e.target, e.count, e.selection, e.state),
      updateAudit: (id, count, state) => audit.update(id, count, state),
    });
    ctx = {
      db,
      gc: this.gc,
      st,
      dyn: new DynamicStatements(db),
      now,
      events: this.events,
      maxBodyBytes,
      maxCallBytes,
      exchanges: new Map(),
      queues: new Map(),
      byQid: new Map(),
      topologyVersion: 0,
      dlCache: null,
      nextQid: 1,
      consumers: new Map(),
      byOwner: new Map(),
      tags: new Map(),
      nextTag: 1,
      toDispatch: new Set(),
      dispatchScheduled: false,
      direct: [],
      dirty: new Set(),
      pendingDeletes: [],
      pendingInserts: new Map(),
      delayedTotal: 0,
      streams: this.streams,
      metrics: this.metrics,
      redrives: this.redrives,
      audit,
      filters: new Map(),
      moveMemo: null,
      closed: false,
      failure: null,
      enqueue: (q, env, delayMs, checkDedup) => publishing.enqueue(ctx, q, env, delayMs, checkDedup),
      scheduleDispatch: (q) => scheduleDispatch(ctx, q),
    };
    this.ctx = ctx;
    this.disk = new DiskMonitor(options.dataDir, options.diskFreeLimit ?? DEFAULT_DISK_FREE_LIMIT, (alarm) => this.events.emit('alarm', alarm));
    this.lastSample = now();
    this.disk.check();
    load(ctx, options.keepTransient === true);
    this.streams.load();
    this.transactions.load();
    this.redrives.load();
    this.redrives.resumeUnfinished();
    if (options.timers !== false) {
      const maintenance = setInterval(() => unlessStoreFailed(ctx, () => this.tick()), MAINTENANCE_MS);
      maintenance.unref();
      this.timers.push(maintenance);
    }
  }

  // ---- lifecycle -----------------------------------------------------------------

  /** Commits pending writes, stops timers and re-drive pacing, closes the database. */
  close(): void {
    if (this.ctx.closed) return;
    this.ctx.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.redrives.close();
    for (const c of this.ctx.consumers.values()) c.active = false;
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
    return this.ctx.closed;
  }

  /** Why the engine stopped taking writes (the store failed), or null. */
  get storeFailure(): BrokerError | null {
    return this.ctx.failure;
  }

  /** Resolves when scheduled deliveries have run and their writes are committed (tests, shutdown). */
  async idle(): Promise<void> {
    const ctx = this.ctx;
    for (let i = 0; i < 1000 && (ctx.dispatchScheduled || ctx.toDispatch.size > 0 || ctx.direct.length > 0); i++) await new Promise<void>((r) => setImmediate(r));
    if (!ctx.closed) await this.gc.whenCommitted();
  }

  private assertOpen(): void {
    if (this.ctx.failure) throw this.ctx.failure;
    if (this.ctx.closed) throw new BrokerError('PRECONDITION_FAILED', 'the broker engine is closed');
  }

  /** The disk alarm, while the data folder's disk has less free space than the limit. */
  get diskAlarm(): DiskAlarm | null {
    return this.disk.alarm;
  }

  /** Changes the free-space limit (bytes; 0: no check) and checks the disk at once. */
  setDiskFreeLimit(bytes: number): DiskAlarm | null {
    this.assertOpen();
    checkInt(bytes, 'diskFreeLimit', 0, Number.MAX_SAFE_INTEGER);
    this.disk.limit = bytes;
    this.disk.check();
    return this.disk.alarm;
  }

  /** Publishing while the disk alarm is on is refused, as RabbitMQ blocks publishers. */
  private assertRoom(): void {
    const alarm = this.disk.alarm;
    if (alarm) throw new BrokerError('UNAVAILABLE', alarm.message);
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
    const ctx = this.ctx;
    if (ctx.failure) return ctx.failure;
    const code = (err as { code?: unknown }).code;
    ctx.failure = new BrokerError('UNAVAILABLE', `the embedded broker could not write its data (${typeof code === 'string' ? `${code}: ` : ''}${err.message}); the writes of the last few milliseconds were not saved and it reopens from what was`);
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
    this.redrives.close();
    const cancelled = [...ctx.consumers.values()];
    for (const c of cancelled) c.active = false;
    const failure = ctx.failure;
    setImmediate(() => {
      for (const c of cancelled) c.onCancel?.(failure.message);
      this.events.emit('failed', failure);
    });
    return failure;
  }

  // ---- exchanges and bindings ------------------------------------------------------------

  declareExchange(name: string, options: ExchangeOptions): ExchangeInfo {
    this.assertOpen();
    return exchanges.declareExchange(this.ctx, name, options);
  }

  deleteExchange(name: string, options: { ifUnused?: boolean } = {}): void {
    this.assertOpen();
    exchanges.deleteExchange(this.ctx, name, options);
  }

  listExchanges(): ExchangeInfo[] {
    return exchanges.listExchanges(this.ctx);
  }

  bind(spec: BindingSpec): BindingInfo {
    this.assertOpen();
    return exchanges.bind(this.ctx, spec);
  }

  unbind(spec: BindingSpec): void {
    this.assertOpen();
    exchanges.unbind(this.ctx, spec);
  }

  listBindings(): BindingInfo[] {
    return exchanges.listBindings(this.ctx);
  }

  // ---- queues ---------------------------------------------------------------------------

  declareQueue(name: string, options: QueueOptions = {}): QueueInfo {
    this.assertOpen();
    return queues.declareQueue(this.ctx, name, options);
  }

  deleteQueue(name: string, options: { ifUnused?: boolean; ifEmpty?: boolean } = {}): { messageCount: number } {
    this.assertOpen();
    return queues.deleteQueue(this.ctx, name, options);
  }

  purgeQueue(name: string): { messageCount: number } {
    this.assertOpen();
    return queues.purgeQueue(this.ctx, name);
  }

  listQueues(): QueueInfo[] {
    return queues.listQueues(this.ctx);
  }

  getQueue(name: string): QueueInfo {
    return queues.getQueue(this.ctx, name);
  }

  listDeadLetterQueues(): DeadLetterQueueInfo[] {
    return listDeadLetterQueues(this.ctx);
  }

  // ---- publishing ------------------------------------------------------------------------

  /**
   * Publishes one message. Resolves after the group commit that stored it
   * (a publisher confirm); `returned` is true when mandatory and unroutable.
   */
  publish(req: PublishRequest): Promise<PublishResult> {
    try {
      this.assertOpen();
      this.assertRoom();
      return publishing.publish(this.ctx, req);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Publishes `count` copies, expanding {{i}}, {{uuid}} and {{now}} in the
   * body (UTF-8) and in string header values per copy. Resolves after the
   * commit holding the last copy.
   */
  async publishMany(req: PublishManyRequest): Promise<PublishManyResult> {
    this.assertOpen();
    this.assertRoom();
    return publishing.publishMany(this.ctx, req);
  }

  // ---- consumers -------------------------------------------------------------------------

  /**
   * Starts delivering messages of `queue` to `onDelivery`. Competing
   * consumers get messages round-robin; `prefetch` caps each consumer's
   * unacked deliveries (0 = unlimited).
   */
  consume(queue: string, options: ConsumeOptions, onDelivery: (d: Delivery) => void): string {
    this.assertOpen();
    return consumers.consume(this.ctx, queue, options, onDelivery);
  }

  /** Changes a prefetch limit shared by consumers (AMQP's basic.qos global=true); they get more at once if it grew. */
  setSharedPrefetch(shared: SharedPrefetch, limit: number): void {
    this.assertOpen();
    consumers.setSharedPrefetch(this.ctx, shared, limit);
  }

  /** The consumers of one queue or of all, in the order they subscribed. */
  listConsumers(queue?: string): ConsumerSummary[] {
    return consumers.listConsumers(this.ctx, queue);
  }

  /** Stops a consumer; its unacked messages go back to their original places, marked redelivered. */
  cancel(consumerTag: string): void {
    this.assertOpen();
    consumers.cancel(this.ctx, consumerTag);
  }

  /** Cancels every consumer of an owner (a closed connection/channel) and deletes its exclusive queues. */
  closeOwner(owner: string): void {
    this.assertOpen();
    consumers.closeOwner(this.ctx, owner);
  }

  /** Acknowledges a delivery (with multiple: every earlier one of the same consumer/owner too). */
  ack(deliveryTag: number, options: { multiple?: boolean } = {}): void {
    this.assertOpen();
    consumers.ack(this.ctx, deliveryTag, options);
  }

  /** Negative acknowledgement: requeue (default) to the original place, or dead-letter / retry. */
  nack(deliveryTag: number, options: { requeue?: boolean; multiple?: boolean } = {}): void {
    this.assertOpen();
    consumers.nack(this.ctx, deliveryTag, options);
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
    return consumers.get(this.ctx, queue, options);
  }

  /**
   * AMQP's basic.get: takes the next ready message (null when there is none).
   * Without noAck it stays unacked, held for `owner`, until ack, nack or
   * closeOwner(owner), like a consumer's delivery.
   */
  basicGet(queue: string, options: BasicGetOptions): { delivery: Delivery; messageCount: number } | null {
    this.assertOpen();
    return basicGet(this.ctx, queue, options);
  }

  // ---- browsing ----------------------------------------------------------------------------

  /** Lists messages without consuming them, in the order consumers get them (see queues/browse.ts). */
  browse(queue: string, options: BrowseOptions = {}): BrowsePage {
    this.assertOpen();
    return browsing.browse(this.ctx, queue, options);
  }

  // ---- streams -----------------------------------------------------------------------------

  createTopic(name: string, options: TopicOptions): TopicInfo {
    this.assertOpen();
    return this.streams.createTopic(name, options);
  }

  deleteTopic(name: string): void {
    this.assertOpen();
    this.streams.deleteTopic(name);
    this.transactions.topicDeleted(name);
  }

  listTopics(): TopicInfo[] {
    return this.streams.listTopics();
  }

  topicInfo(name: string): TopicInfo | null {
    return this.streams.topicInfo(name);
  }

  addPartitions(name: string, count: number): TopicInfo {
    this.assertOpen();
    return this.streams.addPartitions(name, count);
  }

  setTopicConfig(name: string, change: TopicConfigChange): TopicInfo {
    this.assertOpen();
    return this.streams.setTopicConfig(name, change);
  }

  deleteRecordsBefore(topic: string, partition: number, offset: number): Promise<number> {
    try {
      this.assertOpen();
      return this.streams.deleteRecordsBefore(topic, partition, offset);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  deleteGroupPartitionOffsets(groupId: string, partitions: TopicPartitionRef[]): Promise<void> {
    try {
      this.assertOpen();
      return this.streams.deleteGroupPartitionOffsets(groupId, partitions);
    } catch (err) {
      return Promise.reject(err);
    }
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

  /**
   * Appends the records of one Kafka record batch to a partition, as read by
   * the Kafka listener (Streams.appendBatch): a bad record or a full disk
   * throws here and nothing is stored; otherwise the first offset now, and a
   * promise of the commit (the listener takes a connection's next Produce
   * while one waits for its commit).
   */
  appendBatch(topic: string, partition: number, records: readonly BatchRecord[], batch: Buffer | null, time: number | null): { base: number; committed: Promise<void> } {
    this.assertOpen();
    this.assertRoom();
    return this.streams.appendBatch(topic, partition, records, batch, time);
  }

  fetch(topic: string, partition: number, options: FetchOptions = {}): FetchResult {
    this.assertOpen();
    return this.streams.fetch(topic, partition, options);
  }

  /** A partition's record batches kept as Kafka clients produced them, from the one holding `offset` (stored-batches.ts). */
  storedBatchPlan(topic: string, partition: number, offset: number): StoredBatchInfo[] {
    this.assertOpen();
    return this.streams.storedBatchPlan(topic, partition, offset);
  }

  /** The bytes of a partition's stored batches whose first offsets are `firstBase`…`lastBase`, in order. */
  storedBatchBytes(topic: string, partition: number, firstBase: number, lastBase: number): Buffer[] {
    this.assertOpen();
    return this.streams.storedBatchBytes(topic, partition, firstBase, lastBase);
  }

  /** Compaction's progress since the engine opened: passes finished, records removed. */
  compactionStats(): { passes: number; removed: number } {
    return this.streams.compactionStats();
  }

  /** Changes whenever records of the partition are deleted (retention, DeleteRecords, compaction); see Streams.recordsVersion. */
  recordsVersion(topic: string, partition: number): number {
    return this.streams.recordsVersion(topic, partition);
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

  /** One group (its members, committed offsets and lag), or undefined when it does not exist. */
  findGroup(groupId: string): GroupInfo | undefined {
    return this.streams.findGroup(groupId);
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

  // ---- re-drive ------------------------------------------------------------------------------

  /**
   * Starts moving dead letters out of `source`: to the queue each came from
   * (its latest x-death entry) or to `target`. Returns at once; follow with
   * getRedrive() or the 'redrive' event.
   */
  startRedrive(req: RedriveRequest): { id: string } {
    this.assertOpen();
    return startRedrive(this.ctx, req);
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

  // ---- audit -----------------------------------------------------------------------------------

  /** Newest first. */
  listAudit(limit = 200): AuditEntry[] {
    checkInt(limit, 'limit', 1, 10_000);
    return this.ctx.audit.list(limit);
  }

  // ---- maintenance and metrics -------------------------------------------------------------------

  /**
   * Runs due work now: delayed and retried messages that are due, TTL
   * expiry at queue heads, x-expires, dedup cache expiry, stream retention,
   * a bounded step of topic compaction,
   * and (once a second by the engine clock) a metrics sample. Timers call it
   * every 100 ms; tests with a fake clock call it directly.
   */
  tick(): void {
    const ctx = this.ctx;
    if (ctx.closed || ctx.failure) return;
    const now = ctx.now();
    processDelayed(ctx, now);
    expireHeads(ctx, now);
    expireQueues(ctx, now);
    this.groupCoordinator.tick();
    this.streams.compact();
    this.transactions.tick();
    if (now - this.lastSlowTick >= 1000 || now < this.lastSlowTick) {
      this.lastSlowTick = now;
      this.disk.check();
      sweepDedup(ctx, now);
      this.streams.applyRetention();
      this.transactions.prune();
    }
    if (now - this.lastSample >= 1000) this.sample(now);
  }

  private sample(now: number): void {
    const dt = (now - this.lastSample) / 1000;
    this.lastSample = now;
    for (const q of this.ctx.queues.values()) {
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
    return { at: this.ctx.now(), queues: this.listQueues(), groups: this.streams.listGroups() };
  }

  /** 'hour': 1 s samples (memory); 'day': 1 min samples (persisted). */
  history(resource: { kind: 'queue' | 'group'; name: string }, range: 'hour' | 'day' = 'hour'): HistorySeries {
    this.assertOpen();
    if (!resource || (resource.kind !== 'queue' && resource.kind !== 'group')) throw invalid('kind', `expected "queue" or "group", got ${shown(resource?.kind)}`);
    if (typeof resource.name !== 'string') throw invalid('name', `expected a name, got ${shown(resource.name)}`);
    if (range !== 'hour' && range !== 'day') throw invalid('range', `expected "hour" or "day", got ${shown(range)}`);
    return this.metrics.history(resource.kind, resource.name, range, this.ctx.now());
  }
}

export { describeSelection, describeTarget, TypedEmitter };
