/**
 * One virtual host of the embedded broker: its engine (own exchanges, queues,
 * topics and database) and that engine's lifecycle. When the store cannot be
 * written (a full disk, an I/O error) the engine is reopened from what was
 * committed, as a restarted broker would, and the host is told with
 * 'reopened'. Whoever serves the vhost asks for the engine at each call rather
 * than keeping one: after a reopen the old engine stays stopped.
 */
import type { Logger } from '../ground/logger.js';
import { Engine } from './engine.js';
import type { BrokerError } from './errors.js';
import type { DiskAlarm, RedriveJob, TopicRecordEvent } from './types.js';

/** After a storage failure the engine is reopened at once; if it fails again within this window, a second later. */
const REFAIL_WINDOW_MS = 10_000;
const REOPEN_RETRY_MS = 1_000;

export interface VirtualHostOptions {
  name: string;
  /** Directory holding this vhost's brokerdeck.db; null keeps it in memory (tests), which cannot be reopened. */
  dataDir: string | null;
  logger: Logger;
  diskFreeLimit?: number;
}

/** What a vhost tells its host; the host relays it with the vhost's name. */
export interface VirtualHostSink {
  reopened(engine: Engine): void;
  failed(error: Error): void;
  record(event: TopicRecordEvent): void;
  redrive(job: RedriveJob): void;
  alarm(alarm: DiskAlarm | null): void;
}

export class VirtualHost {
  private current: Engine;
  private error: string | null = null;
  private reopenTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private recentFailures: number[] = [];

  constructor(
    private readonly options: VirtualHostOptions,
    private readonly sink: VirtualHostSink,
  ) {
    this.current = this.openEngine(false);
  }

  get name(): string {
    return this.options.name;
  }

  get dataDir(): string | null {
    return this.options.dataDir;
  }

  /** The current engine, which may have stopped (see storeError). */
  get engine(): Engine {
    return this.current;
  }

  /** The engine, unless its store failed: then even reads are refused, because its memory is ahead of its data. */
  live(): Engine {
    const failure: BrokerError | null = this.current.storeFailure;
    if (failure) throw failure;
    return this.current;
  }

  /** Why the vhost is not serving (its store failed, or could not be reopened), or null. */
  get storeError(): string | null {
    return this.error;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.reopenTimer = null;
    this.current.close();
  }

  private openEngine(keepTransient: boolean): Engine {
    const { dataDir, logger, diskFreeLimit, name: vhost } = this.options;
    const e = Engine.open({ dataDir, keepTransient, ...(diskFreeLimit !== undefined ? { diskFreeLimit } : {}) });
    e.events.on('record', (event) => this.sink.record(event));
    e.events.on('redrive', (job) => this.sink.redrive(job));
    const onAlarm = (alarm: DiskAlarm | null) => {
      if (alarm) logger.warn('the embedded broker refuses publishing: its disk is nearly full', { vhost, dataDir, free: alarm.free, limit: alarm.limit });
      else logger.info('the embedded broker takes publishes again: its disk has room', { vhost, dataDir });
      this.sink.alarm(alarm);
    };
    e.events.on('alarm', onAlarm);
    if (e.diskAlarm) onAlarm(e.diskAlarm);
    e.events.on('failed', (err) => {
      this.error = err.message;
      logger.error('the embedded broker could not write its data; it reopens from what was saved', { vhost, dataDir: dataDir ?? 'memory', error: err.message });
      this.sink.failed(err);
      this.reopen(e);
    });
    return e;
  }

  /**
   * Replaces a stopped engine with one opened from the database: what was committed is
   * there (transient queues and messages too, as the process goes on), what was not is
   * not (and was never confirmed). A database in memory has nothing to reopen from, so
   * it stays stopped. Until a reopen succeeds, every call fails with the cause.
   */
  private reopen(failed: Engine): void {
    const { dataDir, logger, name: vhost } = this.options;
    if (dataDir === null || this.closed) return;
    const now = Date.now();
    this.recentFailures = [...this.recentFailures.filter((t) => now - t < REFAIL_WINDOW_MS), now];
    this.reopenTimer = setTimeout(
      () => {
        this.reopenTimer = null;
        if (this.closed) return;
        try {
          failed.close();
        } catch (error) {
          // Closing may try to copy the log into a file that cannot grow; what is committed stays in the log.
          logger.warn('the stopped embedded broker did not close cleanly', { vhost, dataDir, error: (error as Error).message });
        }
        try {
          this.current = this.openEngine(true);
          this.error = null;
          logger.info('embedded broker reopened', { vhost, dataDir });
          this.sink.reopened(this.current);
        } catch (error) {
          this.error = `could not reopen the embedded broker's data: ${(error as Error).message}`;
          logger.error('the embedded broker could not be reopened; trying again', { vhost, dataDir, error: (error as Error).message });
          this.reopen(failed);
        }
      },
      this.recentFailures.length > 1 ? REOPEN_RETRY_MS : 0,
    );
  }
}
