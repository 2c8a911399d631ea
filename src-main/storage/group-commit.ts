/**
 * Group commit: one write transaction stays open and collects every write of
 * the next few milliseconds; then it commits once and resolves every promise
 * that waited for those writes.
 *
 * Writes run immediately inside the open transaction, so the same connection
 * reads its own writes (a consumer can be fed from SQLite a message published
 * a microsecond ago) while durability is paid once per batch. Each unit of
 * work runs in a SAVEPOINT: if it throws, only its own writes roll back and
 * the rest of the batch still commits ("a failed call stores nothing").
 *
 * A crash before COMMIT loses the whole batch, but no promise of that batch
 * had resolved, so no confirm was ever given for it. A storage failure (disk
 * full, I/O error) does the same without the crash: the batch is rolled back,
 * its waiters are rejected, `onError` is told, and no further write is taken,
 * because the owner's in-memory state no longer matches the database.
 *
 * With a `durability` (storage/wal-sync.ts), "committed" and "durable" part:
 * COMMIT only hands the batch to the OS, and the batch's waiters resolve once
 * a sync started after its COMMIT has returned. One sync runs at a time; the
 * batches committed meanwhile share the next one; a batch nobody waits for
 * (acks, deletes) starts none, and the next sync covers it. Their writes are
 * visible (and delivered) at once; only their waiters wait. A sync that fails is a
 * storage failure like a failed COMMIT, and its batches' waiters are rejected,
 * although their writes may be in the file (a process that reopens it may find
 * them: refused, not necessarily absent).
 */
import type { Statement } from 'better-sqlite3';
import { BackgroundCheckpointer } from './checkpointer.js';
import { durabilityOf, type SqliteDatabase } from './database.js';
import { sqliteBinding } from './native.js';
import type { Durability } from './wal-sync.js';

export interface GroupCommitOptions {
  /** Longest a write waits for its commit, ms. */
  intervalMs?: number;
  /** Commit as soon as a batch holds this many units of work. */
  maxOps?: number;
  /**
   * Set above maxOps, a due batch (full, or its interval elapsed) commits
   * from a setImmediate, after work already queued that way (deliveries
   * whose acks cancel pending writes), and synchronously only once it holds
   * this many ops. Unset: commits at once (maxOps) or from the timer.
   */
  hardMaxOps?: number;
  /** Runs inside the transaction right before COMMIT (counters, cursors). */
  beforeCommit?: () => void;
  /** Runs inside the transaction before an outermost run() opens its savepoint. */
  beforeUnit?: () => void;
  /** Runs after a successful COMMIT, before waiters resolve. */
  afterCommit?: () => void;
  /**
   * Copies the write-ahead log into the database after a commit at most this
   * often, ms (0: never; the database's own automatic checkpoint is then
   * expected). Done here rather than by SQLite inside COMMIT, where a
   * checkpoint that cannot write (a full disk) makes a COMMIT that did take
   * effect report an error.
   */
  checkpointEveryMs?: number;
  /**
   * Run those checkpoints from a worker thread (checkpointer.ts) rather than
   * after COMMIT on this one, for a database in a file. Default true.
   */
  checkpointInBackground?: boolean;
  /**
   * The store failed (at COMMIT, or a write that failed for want of disk): the
   * batch is lost, and its waiters and every later write are refused with the
   * error this returns (the SQLite error itself when it returns nothing).
   */
  onError?: (err: Error) => Error | void;
  /**
   * Makes committed batches durable before their waiters resolve (WAL with
   * `synchronous = NORMAL` plus a background fdatasync). Unset: what the
   * database was opened for (database.ts, durabilityOf); null: a COMMIT is
   * taken as durable.
   */
  durability?: Durability | null;
}

/**
 * SQLite errors that mean the database could not be written (as opposed to a
 * constraint or a caller's mistake): after one of them SQLite may have rolled
 * the whole transaction back on its own.
 */
export function isStorageFailure(err: unknown): err is Error {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'string' && /^SQLITE_(IOERR|FULL|CORRUPT|NOTADB|CANTOPEN|READONLY|PROTOCOL|NOMEM)/.test(code);
}

interface Waiter {
  /** Handed out by whenCommitted(): someone waits for this batch. */
  awaited: boolean;
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

function makeWaiter(): Waiter {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A batch nobody awaits must not surface as an unhandled rejection.
  promise.catch(() => undefined);
  return { awaited: false, promise, resolve, reject };
}

export class GroupCommit {
  private readonly begin: Statement;
  private readonly commit: Statement;
  private readonly rollback: Statement;
  private readonly checkpoint: Statement;
  private readonly checkpointEveryMs: number;
  private lastCheckpoint = 0;
  private readonly background: BackgroundCheckpointer | null = null;
  /** The last checkpoint that could not write, if the latest one failed (the log keeps the data meanwhile). */
  checkpointError: Error | null = null;
  private readonly savepoint: <T>(fn: () => T) => T;
  private readonly intervalMs: number;
  private readonly maxOps: number;
  private readonly hardMaxOps: number;
  private immediate: NodeJS.Immediate | null = null;
  private ops = 0;
  private waiter: Waiter | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** The storage failure that stopped this writer, if any. */
  failure: Error | null = null;
  private committing = false;
  private depth = 0;
  /** Commits done so far; tests and benches read it. */
  commits = 0;
  /** With a durability: the commits made durable so far (a prefix of `commits`). */
  synced = 0;
  private syncing = false;
  /** Committed batches whose waiters wait for their sync, oldest first. */
  private readonly unsynced: Array<{ seq: number; waiter: Waiter }> = [];
  private readonly durability: Durability | null;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly options: GroupCommitOptions = {},
  ) {
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
    this.checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
    this.checkpointEveryMs = options.checkpointEveryMs ?? 0;
    if (this.checkpointEveryMs > 0 && !db.memory && db.name !== '' && options.checkpointInBackground !== false) {
      this.background = new BackgroundCheckpointer({ file: db.name, everyMs: this.checkpointEveryMs, pageSize: Number(db.pragma('page_size', { simple: true })), binding: sqliteBinding() });
    }
    this.durability = options.durability === undefined ? durabilityOf(db) : options.durability;
    this.intervalMs = options.intervalMs ?? 2;
    this.maxOps = options.maxOps ?? 2000;
    this.hardMaxOps = Math.max(this.maxOps, options.hardMaxOps ?? this.maxOps);
    // better-sqlite3 turns a transaction function called inside an open
    // transaction into SAVEPOINT / RELEASE / ROLLBACK TO.
    const tx = db.transaction((fn: () => unknown) => fn());
    this.savepoint = <T>(fn: () => T): T => tx(fn) as T;
  }

  get pendingOps(): number {
    return this.ops;
  }

  /** Runs `fn` atomically inside the current batch. */
  run<T>(fn: () => T, weight = 1): T {
    return this.unit(() => this.savepoint(fn), weight, true);
  }

  /**
   * Like run() but without a savepoint, for hot paths whose writes cannot
   * fail half-way for a caller's reason (input was validated first, and a
   * single statement is atomic on its own).
   */
  write<T>(fn: () => T, weight = 1): T {
    return this.unit(fn, weight, false);
  }

  /** One unit of work in the open batch; `atomic`: run()'s, whose outermost unit gets the beforeUnit hook. */
  private unit<T>(body: () => T, weight: number, atomic: boolean): T {
    this.assertWritable();
    let result: T;
    try {
      if (!this.db.inTransaction) this.begin.run();
      if (atomic && this.depth === 0) this.options.beforeUnit?.();
      this.depth++;
      try {
        result = body();
      } finally {
        this.depth--;
      }
    } catch (err) {
      this.rethrow(err);
    }
    this.ops += weight;
    if (!this.waiter) this.waiter = makeWaiter();
    this.afterUnit();
    return result;
  }

  /** A storage failure stops the writer (and is thrown as the owner words it); anything else is the caller's and passes through. */
  private rethrow(err: unknown): never {
    if (!isStorageFailure(err)) throw err;
    this.fail(err);
    throw this.failure;
  }

  private assertWritable(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new Error('database is closed');
  }

  /** Stops taking writes after a storage failure: rolls the open batch back and rejects its waiters. */
  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err; // set first: the owner's handler may call back in
    this.failure = this.options.onError?.(err) ?? err;
    this.cancelScheduled();
    try {
      if (this.db.inTransaction) this.rollback.run();
    } catch {
      // SQLite may already have rolled it back.
    }
    const waiter = this.waiter;
    this.waiter = null;
    this.ops = 0;
    waiter?.reject(this.failure);
  }

  /** Drops a commit that was scheduled (timer or next turn). */
  private cancelScheduled(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }

  private afterUnit(): void {
    // Never commit from inside a nested unit: its outer savepoint is open.
    if (this.ops >= this.maxOps && !this.committing && this.depth === 0) {
      if (this.ops >= this.hardMaxOps) this.flush();
      else this.flushSoon();
    } else this.schedule();
  }

  private flushSoon(): void {
    if (this.immediate || this.closed) return;
    this.immediate = setImmediate(() => {
      this.immediate = null;
      this.flush();
    });
  }

  /** Resolves once everything written so far is committed (and, with a durability, synced). */
  whenCommitted(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.db.inTransaction && this.ops === 0) {
      if (this.synced === this.commits || !this.durability) return Promise.resolve();
      // Committed, not yet synced: wait for the sync that covers the last commit.
      const last = this.unsynced[this.unsynced.length - 1];
      if (last?.seq === this.commits) return last.waiter.promise;
      const waiter = makeWaiter();
      this.unsynced.push({ seq: this.commits, waiter });
      this.startSync();
      return waiter.promise;
    }
    if (!this.waiter) this.waiter = makeWaiter();
    this.waiter.awaited = true;
    this.schedule();
    return this.waiter.promise;
  }

  /** Commits the open batch now. */
  flush(): void {
    if (this.depth > 0 || this.committing) {
      this.schedule();
      return;
    }
    this.cancelScheduled();
    if (this.failure) return;
    const waiter = this.waiter;
    this.waiter = null;
    this.ops = 0;
    if (!this.db.inTransaction) {
      if (waiter?.awaited && this.durability && this.synced < this.commits) {
        this.unsynced.push({ seq: this.commits, waiter });
        this.startSync();
      } else waiter?.resolve();
      return;
    }
    this.committing = true;
    try {
      this.options.beforeCommit?.();
      this.commit.run();
      this.commits++;
    } catch (err) {
      // Whatever failed (the disk, or a hook's write), the batch is lost and the
      // owner's memory is ahead of the database.
      const e = err instanceof Error ? err : new Error(String(err));
      this.waiter = waiter;
      this.fail(e);
      return;
    } finally {
      this.committing = false;
    }
    this.maybeCheckpoint();
    this.options.afterCommit?.();
    if (!this.durability) {
      this.synced = this.commits;
      waiter?.resolve();
      return;
    }
    if (waiter?.awaited) this.unsynced.push({ seq: this.commits, waiter });
    this.startSync();
  }

  /**
   * Starts a sync covering every commit so far, unless one is under way (its
   * end starts the next) or nobody waits for one: batches of acks and deletes
   * alone need not be durable before anything, and a later sync covers them.
   */
  private startSync(): void {
    const durability = this.durability;
    if (!durability || this.syncing || this.synced === this.commits || this.unsynced.length === 0) return;
    const upTo = this.commits;
    this.syncing = true;
    durability.sync((err) => {
      this.syncing = false;
      if (err) {
        // Unless close() has synced these commits meanwhile.
        if (this.synced < upTo) this.syncFailed(err);
        return;
      }
      this.synced = Math.max(this.synced, upTo);
      this.resolveSynced();
      if (!this.closed) this.startSync();
    });
  }

  private resolveSynced(): void {
    let n = 0;
    while (n < this.unsynced.length && this.unsynced[n]!.seq <= this.synced) n++;
    for (const { waiter } of this.unsynced.splice(0, n)) waiter.resolve();
  }

  /** The committed batches may not be on disk: a storage failure; their waiters are refused. */
  private syncFailed(err: Error): void {
    this.fail(err);
    const failure = this.failure ?? err;
    for (const { waiter } of this.unsynced.splice(0)) waiter.reject(failure);
  }

  private maybeCheckpoint(): void {
    if (this.checkpointEveryMs <= 0) return;
    const now = performance.now();
    if (now - this.lastCheckpoint < this.checkpointEveryMs) return;
    this.lastCheckpoint = now;
    const background = this.background;
    if (background && !background.needsMainCheckpoint()) {
      this.checkpointError = background.error;
      return;
    }
    try {
      this.checkpoint.run();
      this.checkpointError = null;
      background?.mainCheckpointed();
    } catch (err) {
      // The commit stands: its pages are in the log, which is copied over next time.
      this.checkpointError = err instanceof Error ? err : new Error(String(err));
    }
  }

  close(): void {
    if (this.closed) return;
    if (!this.failure) this.flush();
    this.closed = true;
    this.background?.close();
    const durability = this.durability;
    if (!durability) return;
    // What was committed is made durable now (beside a sync under way, if any), and its waiters resolve.
    if (this.synced < this.commits) {
      try {
        durability.syncNow();
        this.synced = this.commits;
        this.resolveSynced();
      } catch (err) {
        this.syncFailed(err instanceof Error ? err : new Error(String(err)));
      }
    }
    durability.close();
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.hardMaxOps > this.maxOps) this.flushSoon();
      else this.flush();
    }, this.intervalMs);
  }
}
