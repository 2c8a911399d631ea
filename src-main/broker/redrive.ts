/**
 * Re-drive jobs: persistent, resumable, rate-limited moves of dead letters.
 *
 * The engine moves messages (each move deletes from the source and inserts
 * into the target in the same transaction); this module owns the job rows,
 * pacing and resume, on the shared job machinery (ids, states, progress
 * events, cancel, retention, the audit row). A batch of moves and the job's
 * new cursor and counters are written in ONE transaction, so after a crash
 * the job resumes exactly after the last committed batch: no message is
 * moved twice or lost.
 */
import { isFinal, Jobs, type FinalJobState } from '../jobs/jobs.js';
import type { SqliteDatabase } from '../storage/database.js';
import type { GroupCommit } from '../storage/group-commit.js';
import { prepareStatements } from '../storage/statements.js';
import { decodeJson, encodeJson } from './codec.js';
import { BrokerError } from './errors.js';
import type { EngineFilter, FieldTable, JobState, RedriveJob } from './types.js';

export type RedriveSelection = { kind: 'ids'; ids: string[] } | { kind: 'all' } | { kind: 'filter'; filter: EngineFilter };

export interface RedriveJobState {
  id: string;
  connectionId: string;
  source: string;
  target: { exchange: string; routingKey: string } | null;
  selection: RedriveSelection;
  edit: { body?: Buffer; headers?: FieldTable } | null;
  rate: number | null;
  state: JobState;
  moved: number;
  failed: number;
  total: number;
  /** ids: index of the next id; all/filter: last source seq examined. */
  cursor: number;
  /** all/filter: highest source seq that belongs to the selection (taken at start). */
  upper: number;
  auditId: number;
  startedAt: number;
  finishedAt: number | null;
  /** Why the job failed (a fatal error), else null; the view adds why messages were not moved. */
  error: string | null;
  /** Why messages were not moved, with how many each: kept with the job, so the result says why. */
  failures: Map<string, number>;
}

/** Counts a message that was not moved, and why. */
export function noteFailure(job: RedriveJobState, reason: string): void {
  job.failed++;
  job.failures.set(reason, (job.failures.get(reason) ?? 0) + 1);
}

/** Why messages were not moved, most frequent first, with how many: `queue "x" does not exist (100)`. */
export function failureText(job: Pick<RedriveJobState, 'source' | 'failed' | 'failures'>): string | null {
  if (job.failed === 0 || job.failures.size === 0) return null;
  const reasons = [...job.failures].sort((a, b) => b[1] - a[1]);
  const shown = reasons.slice(0, 5).map(([reason, n]) => `${reason} (${n})`);
  if (reasons.length > shown.length) shown.push(`${reasons.length - shown.length} other reasons`);
  return `${job.failed} not moved, left in ${JSON.stringify(job.source)}: ${shown.join('; ')}`;
}

export interface RedriveHost {
  db: SqliteDatabase;
  gc: GroupCommit;
  now: () => number;
  /** Moves up to `max` messages of the job (inside a transaction); returns true when the selection is exhausted. */
  step: (job: RedriveJobState, max: number) => boolean;
  emit: (job: RedriveJob) => void;
  insertAudit: (entry: { connectionId: string; action: string; source: string; target: string; count: number; selection: string; state: string }) => number;
  updateAudit: (id: number, count: number, state: string) => void;
}

const BATCH = 1000;
const PACE_MS = 100;

interface JobRow {
  id: string;
  connection_id: string;
  source: string;
  target: string | null;
  selection: string;
  edit: string | null;
  rate: number | null;
  state: JobState;
  moved: number;
  failed: number;
  total: number;
  cursor: number;
  upper: number;
  audit_id: number | null;
  started_at: number;
  finished_at: number | null;
  error: string | null;
  failures: string | null;
}

export function describeTarget(target: RedriveJobState['target']): string {
  return target ? `${target.exchange}/${target.routingKey}` : 'origin';
}

export function describeSelection(sel: RedriveSelection): string {
  if (sel.kind === 'ids') return `${sel.ids.length} message id${sel.ids.length === 1 ? '' : 's'}`;
  if (sel.kind === 'all') return 'all messages';
  return `messages matching ${JSON.stringify(sel.filter)}`;
}

/**
 * The broker's re-drive jobs on the shared job machinery (../jobs/jobs.ts):
 * ids, final states, throttled progress, cancel, retention and the audit
 * row come from there; rows, resume and pacing are the broker's own.
 */
export class RedriveJobs {
  private readonly jobs: Jobs<RedriveJobState, RedriveJob>;
  private readonly timers = new Map<string, NodeJS.Timeout | NodeJS.Immediate>();
  private readonly tokens = new Map<string, number>();
  private closed = false;
  private readonly st;

  constructor(private readonly host: RedriveHost) {
    this.st = prepareStatements(host.db, {
      insert: `INSERT INTO redrive_jobs (id, connection_id, source, target, selection, edit, rate, state, moved, failed, total, cursor, upper, audit_id, started_at, finished_at, error)
               VALUES (@id, @connection_id, @source, @target, @selection, @edit, @rate, @state, @moved, @failed, @total, @cursor, @upper, @audit_id, @started_at, @finished_at, @error)`,
      progress: 'UPDATE redrive_jobs SET state = ?, moved = ?, failed = ?, total = ?, cursor = ?, finished_at = ?, error = ?, failures = ?, audit_id = ? WHERE id = ?',
      all: 'SELECT * FROM redrive_jobs ORDER BY started_at DESC, id',
      forget: 'DELETE FROM redrive_jobs WHERE id IN (SELECT value FROM json_each(?))',
    });
    this.jobs = new Jobs<RedriveJobState, RedriveJob>({
      view,
      emit: (v) => host.emit(v),
      now: host.now,
      describe: (job) => ({
        connectionId: job.connectionId,
        action: 'redrive',
        source: job.source,
        target: describeTarget(job.target),
        count: job.moved,
        selection: describeSelection(job.selection),
      }),
      // The job's final row and its audit row are written in one transaction:
      // after a crash before it, the job resumes and ends (and is audited) again.
      audit: (entry, job) => {
        this.host.gc.run(() => {
          // A job started by an earlier version has its audit row already: it is brought up to date.
          if (job.auditId) this.host.updateAudit(job.auditId, entry.count, entry.state);
          else job.auditId = this.host.insertAudit(entry);
          this.persist(job);
        });
        this.host.gc.flush();
      },
      forget: (ids) => {
        this.host.gc.run(() => this.st.forget.run(JSON.stringify(ids)));
      },
    });
  }

  /** Loads every job; unfinished ones start again where they stopped. */
  load(): void {
    const loaded: RedriveJobState[] = [];
    for (const row of this.st.all.all() as JobRow[]) {
      loaded.push({
        id: row.id,
        connectionId: row.connection_id,
        source: row.source,
        target: row.target ? (JSON.parse(row.target) as RedriveJobState['target']) : null,
        selection: decodeJson<RedriveSelection>(row.selection),
        edit: row.edit ? decodeJson<RedriveJobState['edit']>(row.edit) : null,
        rate: row.rate,
        state: row.state,
        moved: row.moved,
        failed: row.failed,
        total: row.total,
        cursor: row.cursor,
        upper: row.upper,
        auditId: row.audit_id ?? 0,
        startedAt: row.started_at,
        finishedAt: row.finished_at,
        error: row.error,
        failures: new Map(row.failures ? (JSON.parse(row.failures) as Array<[string, number]>) : []),
      });
    }
    this.jobs.load(loaded);
  }

  resumeUnfinished(): void {
    for (const job of this.jobs.jobs()) {
      if (job.state === 'pending' || job.state === 'running') {
        job.state = 'running';
        this.watch(job);
        this.schedule(job, 0);
      }
    }
  }

  create(spec: Omit<RedriveJobState, 'id' | 'state' | 'moved' | 'failed' | 'cursor' | 'auditId' | 'startedAt' | 'finishedAt' | 'error' | 'failures'>): RedriveJobState {
    const job: RedriveJobState = {
      ...spec,
      id: this.jobs.newId(),
      state: 'running',
      moved: 0,
      failed: 0,
      cursor: 0,
      auditId: 0,
      startedAt: this.host.now(),
      finishedAt: null,
      error: null,
      failures: new Map(),
    };
    this.host.gc.run(() => {
      this.st.insert.run({
        id: job.id,
        connection_id: job.connectionId,
        source: job.source,
        target: job.target ? JSON.stringify(job.target) : null,
        selection: encodeJson(job.selection),
        edit: job.edit ? encodeJson(job.edit) : null,
        rate: job.rate,
        state: job.state,
        moved: 0,
        failed: 0,
        total: job.total,
        cursor: 0,
        upper: job.upper,
        audit_id: null,
        started_at: job.startedAt,
        finished_at: null,
        error: null,
      });
    });
    // The job row is durable before anything moves: a crash right after
    // start still resumes it.
    this.host.gc.flush();
    this.jobs.add(job).publishNow();
    this.watch(job);
    this.schedule(job, 0);
    return job;
  }

  get(id: string): RedriveJob {
    const v = this.jobs.get(id);
    if (!v) throw notFound(id);
    return v;
  }

  list(): RedriveJob[] {
    return this.jobs.list();
  }

  /** Stops the job at once: what moved stays moved, the rest stays in the dead-letter queue. */
  cancel(id: string): RedriveJob {
    const v = this.jobs.cancel(id);
    if (!v) throw notFound(id);
    return v;
  }

  /** Jobs running on a queue that is being deleted fail rather than spin. */
  failForSource(source: string, reason: string): void {
    for (const job of this.jobs.jobs()) if (job.source === source && job.state === 'running') this.end(job, 'failed', reason);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) {
      clearTimeout(t as NodeJS.Timeout);
      clearImmediate(t as NodeJS.Immediate);
    }
    this.timers.clear();
    this.jobs.dispose();
  }

  /** A cancel ends the job at once: a batch runs inside one synchronous transaction, so none is half done. */
  private watch(job: RedriveJobState): void {
    this.jobs.control(job.id)?.onCancel(() => this.end(job, 'cancelled'));
  }

  private schedule(job: RedriveJobState, delayMs: number): void {
    if (this.closed) return;
    const run = () => {
      this.timers.delete(job.id);
      this.pump(job);
    };
    // Referenced on purpose: a running re-drive is work in progress and keeps
    // the process alive; close() stops it (the job resumes on the next open).
    const t = delayMs > 0 ? setTimeout(run, delayMs) : setImmediate(run);
    this.timers.set(job.id, t);
  }

  private persist(job: RedriveJobState): void {
    const failures = job.failures.size > 0 ? JSON.stringify([...job.failures]) : null;
    this.st.progress.run(job.state, job.moved, job.failed, job.total, job.cursor, job.finishedAt, job.error, failures, job.auditId || null, job.id);
  }

  private pump(job: RedriveJobState): void {
    if (this.closed || job.state !== 'running') return;
    let max = BATCH;
    if (job.rate !== null) {
      // Token bucket refilled every PACE_MS; the fraction carries over, so
      // 3 msg/s moves 0,0,0,1,0,0,1… per tick and averages exactly 3.
      const t = (this.tokens.get(job.id) ?? 0) + (job.rate * PACE_MS) / 1000;
      max = Math.min(BATCH, Math.floor(t));
      this.tokens.set(job.id, Math.min(t - max, BATCH));
    }
    let done = false;
    if (max > 0) {
      try {
        done = this.host.gc.run(() => {
          const d = this.host.step(job, max);
          this.persist(job);
          return d;
        }, max);
        this.host.gc.flush();
      } catch (err) {
        // The store failed: the engine has stopped, and the job resumes from its last committed batch when it reopens.
        if (this.closed) return;
        this.end(job, 'failed', err instanceof Error ? err.message : String(err));
        return;
      }
    }
    if (done) {
      this.end(job, 'completed');
      return;
    }
    this.jobs.control(job.id)?.progress();
    this.schedule(job, job.rate !== null ? PACE_MS : 0);
  }

  private end(job: RedriveJobState, state: FinalJobState, error?: string): void {
    if (isFinal(job.state)) return;
    const t = this.timers.get(job.id);
    if (t) {
      clearTimeout(t as NodeJS.Timeout);
      clearImmediate(t as NodeJS.Immediate);
      this.timers.delete(job.id);
    }
    this.tokens.delete(job.id);
    job.error = error ?? null;
    if (state === 'completed') job.total = Math.max(job.total, job.moved + job.failed);
    this.jobs.control(job.id)?.finish(state);
  }
}

function notFound(id: string): BrokerError {
  return new BrokerError('NOT_FOUND', `re-drive job ${JSON.stringify(id)} does not exist`, 'id');
}

function view(job: RedriveJobState): RedriveJob {
  return {
    id: job.id,
    connectionId: job.connectionId,
    source: job.source,
    target: describeTarget(job.target),
    state: job.state,
    moved: job.moved,
    total: job.total,
    failed: job.failed,
    ratePerSecond: job.rate,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    error: [job.error, failureText(job)].filter((x) => x !== null).join('; ') || null,
  };
}
