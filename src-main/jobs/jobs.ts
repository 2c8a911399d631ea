/**
 * Long jobs (re-drives today; exports and imports later): one machinery for
 * the embedded broker and every connector. The work itself (moving rows in a
 * transaction, acking after a confirm, producing with acks=all) stays with
 * whoever runs it; what every job shares is here, written once:
 *
 * - **An id and a state.** States are the contract's `JobState`. A job goes
 *   from 'pending' to 'running' and ends in one of `FINAL_JOB_STATES`, which
 *   it never leaves: `finish()` is the only way there and acts once, so a
 *   late confirm, a second cancel or a failure after the end changes nothing.
 * - **Throttled progress.** `progress()` publishes at most once per
 *   `progressMs` (250 ms by default, held within 100 ms–1 s), and the latest
 *   state follows the last change within that time (a trailing update). The
 *   final state goes out at once, and nothing after it.
 * - **Cancel.** `cancel()` asks the work to stop (`cancelled`, `signal`,
 *   `onCancel`); the work decides when it has stopped, and ends as
 *   'cancelled'. A cancel after the end is a no-op.
 * - **Cleanup in `finally`.** Work started with `run()` is followed by a
 *   `finally` that ends a job the work left unfinished: 'failed' with the
 *   error it threw, else 'cancelled' if asked to stop, else 'completed'.
 * - **The audit row**, written once per job, when it ends, through
 *   `options.audit` (the embedded broker writes the job's final row in the
 *   same transaction). A failure to write it is logged, never thrown into
 *   the work, when a logger is given.
 * - **Retention**, the same for every connection: see `RETENTION`.
 *
 * This layer sits below the broker and the connectors and imports only the
 * contract.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { FINAL_JOB_STATES, type AuditEntry, type JobState } from '../contract/types.js';

/** The states a job ends in. */
export type FinalJobState = Exclude<JobState, 'pending' | 'running'>;

export function isFinal(state: JobState): state is FinalJobState {
  return FINAL_JOB_STATES.includes(state);
}

/** What the machinery reads and writes on a job; the rest of the object is the work's own. */
export interface Tracked {
  id: string;
  state: JobState;
  startedAt: number;
  finishedAt?: number | null;
}

/**
 * Which finished jobs are kept, for every connection alike: the newest
 * `keepLast` whatever their age, and beyond those any that ended less than
 * `keepForMs` ago, but never more than `max` in all. Unfinished jobs are
 * always kept. What a job did stays in the audit log after it is forgotten.
 */
export interface Retention {
  keepLast: number;
  keepForMs: number;
  max: number;
}

export const RETENTION: Readonly<Retention> = Object.freeze({ keepLast: 100, keepForMs: 24 * 60 * 60 * 1000, max: 500 });

export const DEFAULT_PROGRESS_MS = 250;

/** Ids of the finished jobs that `retention` no longer keeps. */
export function expired(jobs: Iterable<Tracked>, now: number, retention: Retention = RETENTION): string[] {
  const ended = (j: Tracked) => j.finishedAt ?? j.startedAt;
  const finished = [...jobs].filter((j) => isFinal(j.state)).sort((a, b) => ended(b) - ended(a) || b.startedAt - a.startedAt);
  const out: string[] = [];
  finished.forEach((j, i) => {
    const kept = i < retention.max && (i < retention.keepLast || now - ended(j) < retention.keepForMs);
    if (!kept) out.push(j.id);
  });
  return out;
}

export interface JobLog {
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface JobsOptions<T extends Tracked, V> {
  /** The public view of a job: a fresh object each time (it goes to listeners and callers). */
  view(job: T): V;
  /** What the audit row says of a job; the machinery adds the job's id, start time and final state. */
  describe(job: T): Omit<AuditEntry, 'id' | 'at' | 'state'>;
  /** Writes a job's audit row: called exactly once per job, when it ends. */
  audit(entry: AuditEntry, job: T): void;
  /** Every published view, besides the subscribers (the embedded broker's event emitter). */
  emit?(view: V): void;
  /** Jobs that retention forgets, for whoever stores them. */
  forget?(ids: string[]): void;
  /** Records why a job failed when its work threw before ending it (each kind of job keeps its error its own way). */
  failed?(job: T, error: unknown): void;
  /** Without one, a failure to write the audit row is thrown from `finish()` once the job is ended and published. */
  log?: JobLog;
  /** Prefix of new ids (`rd-`, `kr-`), so an id says which kind of connection runs it. */
  idPrefix?: string;
  progressMs?: number;
  retention?: Retention;
  now?: () => number;
}

/** What a job's handle uses of its registry. */
interface JobsInternals<T extends Tracked> {
  entry(id: string): Entry<T> | undefined;
  publish(job: T, force: boolean): void;
  finish(job: T, state: FinalJobState): boolean;
  fail(job: T, error: unknown): void;
}

interface Entry<T extends Tracked> {
  control: JobControl<T>;
  lastPublished: number;
  trailing: NodeJS.Timeout | null;
  done: Promise<void>;
  resolveDone: () => void;
  /** The work given to run(), cleanup included. */
  work: Promise<void> | null;
}

/** Listeners a job's cancel signal may have at once before Node warns of a leak: a few per worker. */
const JOB_SIGNAL_LISTENERS = 256;

/** The handle a job's work holds: its state, its cancel request and its progress. */
export class JobControl<T extends Tracked> {
  private readonly abort = new AbortController();
  private readonly cancelHooks: Array<() => void> = [];

  /** @internal */
  constructor(
    readonly job: T,
    private readonly jobs: JobsInternals<T>,
  ) {
    // Every worker of a job waits on this signal (a paced sleep, a request in flight), each
    // listener removed when its wait ends: more than Node's default of 10 at once is no leak.
    setMaxListeners(JOB_SIGNAL_LISTENERS, this.abort.signal);
  }

  get cancelled(): boolean {
    return this.abort.signal.aborted;
  }

  /** Aborted when the job is asked to stop. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get final(): boolean {
    return isFinal(this.job.state);
  }

  /** Resolves once the job has ended (its cleanup may still be running: see `Jobs.settled`). */
  get done(): Promise<void> {
    return this.jobs.entry(this.job.id)?.done ?? Promise.resolve();
  }

  /** Runs `fn` when the job is asked to stop (at once if it already was). */
  onCancel(fn: () => void): void {
    if (this.cancelled) fn();
    else this.cancelHooks.push(fn);
  }

  /** @internal Asks the work to stop, once; nothing once the job has ended. */
  requestCancel(): void {
    if (this.final || this.cancelled) return;
    this.abort.abort();
    for (const fn of this.cancelHooks.splice(0)) fn();
  }

  /** 'pending' → 'running', published at once. */
  running(): void {
    if (this.job.state !== 'pending') return;
    this.job.state = 'running';
    this.jobs.publish(this.job, true);
  }

  /** Publishes the job's state now, or within the throttle interval. */
  progress(): void {
    this.jobs.publish(this.job, false);
  }

  /** Publishes the job's state now. */
  publishNow(): void {
    this.jobs.publish(this.job, true);
  }

  /** Ends the job (once: false when it had already ended). */
  finish(state: FinalJobState): boolean {
    return this.jobs.finish(this.job, state);
  }

  /**
   * Runs the job's work; whatever the work leaves unfinished is ended in
   * `finally`: 'failed' with what it threw, else 'cancelled' if asked to
   * stop, else 'completed'.
   */
  run(work: (control: JobControl<T>) => Promise<void>): Promise<void> {
    const e = this.jobs.entry(this.job.id);
    const running = (async () => {
      let thrown: unknown = undefined;
      let threw = false;
      try {
        await work(this);
      } catch (error) {
        threw = true;
        thrown = error;
      } finally {
        if (!this.final) {
          if (threw) this.jobs.fail(this.job, thrown);
          this.finish(this.cancelled ? 'cancelled' : threw ? 'failed' : 'completed');
        }
      }
    })();
    if (e) e.work = running;
    return running;
  }
}

export class Jobs<T extends Tracked, V> implements JobsInternals<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly listeners = new Set<(view: V) => void>();
  private readonly progressMs: number;
  private readonly retention: Retention;
  private readonly now: () => number;

  constructor(private readonly options: JobsOptions<T, V>) {
    this.progressMs = Math.min(1000, Math.max(100, options.progressMs ?? DEFAULT_PROGRESS_MS));
    this.retention = options.retention ?? RETENTION;
    this.now = options.now ?? Date.now;
  }

  /** A new job id. */
  newId(): string {
    return `${this.options.idPrefix ?? ''}${randomUUID()}`;
  }

  /** Registers a new job and applies retention. */
  add(job: T): JobControl<T> {
    const control = this.register(job);
    this.prune();
    return control;
  }

  /** Registers jobs read back from storage, finished or not, and applies retention once. */
  load(jobs: Iterable<T>): void {
    for (const job of jobs) this.register(job);
    this.prune();
  }

  private register(job: T): JobControl<T> {
    if (this.entries.has(job.id)) throw new Error(`job ${JSON.stringify(job.id)} is registered twice`);
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const control = new JobControl<T>(job, this);
    this.entries.set(job.id, { control, lastPublished: 0, trailing: null, done, resolveDone, work: null });
    if (isFinal(job.state)) resolveDone();
    return control;
  }

  control(id: string): JobControl<T> | null {
    return this.entries.get(id)?.control ?? null;
  }

  get(id: string): V | null {
    const e = this.entries.get(id);
    return e ? this.options.view(e.control.job) : null;
  }

  /** Newest first. */
  list(): V[] {
    return [...this.entries.values()]
      .map((e) => e.control.job)
      .sort((a, b) => b.startedAt - a.startedAt)
      .map((j) => this.options.view(j));
  }

  jobs(): T[] {
    return [...this.entries.values()].map((e) => e.control.job);
  }

  /** Asks a job to stop; its view as it is now (the work ends it), or null when unknown. */
  cancel(id: string): V | null {
    const e = this.entries.get(id);
    if (!e) return null;
    e.control.requestCancel();
    return this.options.view(e.control.job);
  }

  /**
   * Asks a job to stop and waits, at most `waitMs`, for it to hand back what it holds,
   * so that the answer shows its final state; null when unknown.
   */
  async cancelAndWait(id: string, waitMs: number): Promise<V | null> {
    if (!this.cancel(id)) return null;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.settled(id), new Promise((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
    const e = this.entries.get(id);
    return e ? this.options.view(e.control.job) : null;
  }

  /** Resolves with the job's final view once it has ended and its work's cleanup has run; null when unknown. */
  async settled(id: string): Promise<V | null> {
    const e = this.entries.get(id);
    if (!e) return null;
    await Promise.allSettled([e.done, e.work]);
    return this.options.view(e.control.job);
  }

  subscribe(listener: (view: V) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Asks every unfinished job to stop and waits for them, at most `waitMs` when given. */
  async cancelAll(waitMs?: number): Promise<void> {
    const open = [...this.entries.values()].filter((e) => !isFinal(e.control.job.state));
    for (const e of open) this.cancel(e.control.job.id);
    const all = Promise.allSettled(open.flatMap((e) => [e.done, e.work]));
    if (waitMs === undefined) await all;
    else {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all, new Promise((r) => (timer = setTimeout(r, waitMs)))]);
      clearTimeout(timer);
    }
  }

  /** Stops pending progress timers (the owner is closing; stored jobs resume elsewhere). */
  dispose(): void {
    for (const e of this.entries.values()) this.clearTrailing(e);
  }

  /** @internal */
  entry(id: string): Entry<T> | undefined {
    return this.entries.get(id);
  }

  /** @internal */
  fail(job: T, error: unknown): void {
    this.options.failed?.(job, error);
  }

  /** @internal */
  publish(job: T, force: boolean): void {
    const e = this.entries.get(job.id);
    // The final state is published by finish(), and nothing after it.
    if (!e || isFinal(job.state)) return;
    const now = Date.now();
    const wait = this.progressMs - (now - e.lastPublished);
    if (!force && wait > 0) {
      if (!e.trailing) {
        e.trailing = setTimeout(() => {
          e.trailing = null;
          if (!isFinal(job.state)) this.publish(job, true);
        }, wait);
        e.trailing.unref?.();
      }
      return;
    }
    this.clearTrailing(e);
    e.lastPublished = now;
    this.send(this.options.view(job));
  }

  /** @internal */
  finish(job: T, state: FinalJobState): boolean {
    const e = this.entries.get(job.id);
    if (!e || isFinal(job.state)) return false;
    if (!isFinal(state)) throw new Error(`"${state}" is not a final job state`);
    job.state = state;
    job.finishedAt = this.now();
    let auditError: unknown = null;
    try {
      this.options.audit({ ...this.options.describe(job), id: job.id, at: job.startedAt, state }, job);
    } catch (error) {
      if (this.options.log) this.options.log.error('writing the audit row of a job failed', { jobId: job.id, error: String(error) });
      else auditError = error ?? new Error('writing the audit row failed');
    }
    this.clearTrailing(e);
    e.lastPublished = Date.now();
    this.send(this.options.view(job));
    e.resolveDone();
    this.prune();
    if (auditError !== null) throw auditError;
    return true;
  }

  private send(view: V): void {
    this.options.emit?.(view);
    for (const l of this.listeners) {
      try {
        l(view);
      } catch (error) {
        this.options.log?.warn('a job listener failed', { error: String(error) });
      }
    }
  }

  private clearTrailing(e: Entry<T>): void {
    if (e.trailing) clearTimeout(e.trailing);
    e.trailing = null;
  }

  private prune(): void {
    const gone = expired(this.jobs(), this.now(), this.retention);
    if (gone.length === 0) return;
    for (const id of gone) {
      const e = this.entries.get(id);
      if (e) this.clearTrailing(e);
      this.entries.delete(id);
    }
    this.options.forget?.(gone);
  }
}
