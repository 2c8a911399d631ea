/**
 * The broker host: the one owner of the embedded broker's lifecycle. It opens
 * the engine, and when the store cannot be written (a full disk, an I/O
 * error) it reopens the engine from what was committed, as a restarted
 * broker would, and says so with a 'reopened' event carrying the new engine.
 * Whoever serves the broker (the embedded connection, a protocol listener)
 * asks the host for the engine at each call rather than keeping one: after a
 * reopen the old engine stays stopped.
 *
 * Events of the engine ('record', 'redrive', 'alarm', 'failed') are relayed
 * from whichever engine is current, so a subscription made here survives a
 * reopen.
 */
import type { Logger } from '../ground/logger.js';
import { TypedEmitter } from './emitter.js';
import { Engine } from './engine.js';
import type { BrokerError } from './errors.js';
import type { DiskAlarm, RedriveJob, TopicRecordEvent } from './types.js';

export interface BrokerHostOptions {
  /** Directory holding brokerdeck.db; null keeps everything in memory (tests), which cannot be reopened. */
  dataDir: string | null;
  logger: Logger;
  /** See EngineOptions.diskFreeLimit. */
  diskFreeLimit?: number;
}

export interface BrokerHostEvents {
  /** A new engine replaced one whose store failed; calls go to it from now on. */
  reopened: [Engine];
  /** The store failed: the current engine has stopped, and a reopen is under way (unless in memory). */
  failed: [Error];
  record: [TopicRecordEvent];
  redrive: [RedriveJob];
  alarm: [DiskAlarm | null];
}

/** After a storage failure the engine is reopened at once; if it fails again within this window, a second later. */
const REFAIL_WINDOW_MS = 10_000;
const REOPEN_RETRY_MS = 1_000;

export class BrokerHost {
  readonly events = new TypedEmitter<BrokerHostEvents>();
  private current: Engine;
  private error: string | null = null;
  private reopenTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private recentFailures: number[] = [];

  /** Opens the engine of `dataDir` (a restart: what is not durable is dropped). */
  static open(options: BrokerHostOptions): BrokerHost {
    return new BrokerHost(options);
  }

  private constructor(private readonly options: BrokerHostOptions) {
    this.current = this.openEngine(false);
    options.logger.info('embedded broker opened', { dataDir: options.dataDir ?? 'memory' });
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

  /** Why the broker is not serving (its store failed, or could not be reopened), or null. */
  get storeError(): string | null {
    return this.error;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Stops reopening and closes the engine. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.reopenTimer = null;
    this.current.close();
    this.events.removeAllListeners();
  }

  private openEngine(keepTransient: boolean): Engine {
    const { dataDir, logger, diskFreeLimit } = this.options;
    const e = Engine.open({ dataDir, keepTransient, ...(diskFreeLimit !== undefined ? { diskFreeLimit } : {}) });
    e.events.on('record', (event) => this.events.emit('record', event));
    e.events.on('redrive', (job) => this.events.emit('redrive', job));
    const onAlarm = (alarm: DiskAlarm | null) => {
      if (alarm) logger.warn('the embedded broker refuses publishing: its disk is nearly full', { dataDir, free: alarm.free, limit: alarm.limit });
      else logger.info('the embedded broker takes publishes again: its disk has room', { dataDir });
      this.events.emit('alarm', alarm);
    };
    e.events.on('alarm', onAlarm);
    if (e.diskAlarm) onAlarm(e.diskAlarm);
    e.events.on('failed', (err) => {
      this.error = err.message;
      logger.error('the embedded broker could not write its data; it reopens from what was saved', { dataDir: dataDir ?? 'memory', error: err.message });
      this.events.emit('failed', err);
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
    const { dataDir, logger } = this.options;
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
          logger.warn('the stopped embedded broker did not close cleanly', { dataDir, error: (error as Error).message });
        }
        try {
          this.current = this.openEngine(true);
          this.error = null;
          logger.info('embedded broker reopened', { dataDir });
          this.events.emit('reopened', this.current);
        } catch (error) {
          this.error = `could not reopen the embedded broker's data: ${(error as Error).message}`;
          logger.error('the embedded broker could not be reopened; trying again', { dataDir, error: (error as Error).message });
          this.reopen(failed);
        }
      },
      this.recentFailures.length > 1 ? REOPEN_RETRY_MS : 0,
    );
  }
}
