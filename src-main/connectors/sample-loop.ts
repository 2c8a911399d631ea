import type { QueueInfo, StatsSnapshot } from '../contract/types.js';

/**
 * A connection's background sampling, so charts have history before anyone
 * opens them. The next sample is taken only after the previous one finished:
 * every `intervalMs` while the broker answers quickly, spaced out when it
 * answers slowly (never more than a third of the time spent sampling, as with
 * a vhost of thousands of queues), and `afterFailureMs` after a failed one.
 */
export class SampleLoop {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly sample: () => Promise<unknown>,
    private readonly intervalMs: number,
    private readonly afterFailureMs: number,
  ) {}

  /** Starts sampling, the first sample after `delay` ms; nothing when the interval is 0 (sampling off). */
  start(delay = 0): void {
    if (this.intervalMs > 0) this.schedule(delay);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      const started = Date.now();
      this.sample().then(
        () => this.schedule(Math.max(this.intervalMs - (Date.now() - started), (Date.now() - started) * 2, 50)),
        () => this.schedule(Math.max(this.afterFailureMs, this.intervalMs)),
      );
    }, delay);
    this.timer.unref?.();
  }
}

/** The last sample of a connection's queues, and when it was taken. */
export interface QueueSnapshot {
  at: number;
  queues: QueueInfo[];
}

/**
 * A connection's samples of its queues: one at a time (concurrent callers
 * share the one under way), the last one kept to answer stats() and to fill
 * in what a cheaper listing lacks.
 */
export class QueueSamples {
  private sampling: Promise<QueueInfo[]> | null = null;
  private last: QueueSnapshot | null = null;

  /** `read` lists every queue (and records the history it feeds). */
  constructor(private readonly read: () => Promise<QueueSnapshot>) {}

  get snapshot(): QueueSnapshot | null {
    return this.last;
  }

  /** Keeps a listing taken another way as the last sample. */
  remember(at: number, queues: QueueInfo[]): void {
    this.last = { at, queues };
  }

  sample(): Promise<QueueInfo[]> {
    if (!this.sampling) {
      this.sampling = this.read()
        .then((s) => {
          this.last = s;
          return s.queues;
        })
        .finally(() => {
          this.sampling = null;
        });
    }
    return this.sampling;
  }

  /** A sample begun after this call: one already under way may miss what the caller just did. */
  async fresh(): Promise<QueueInfo[]> {
    await this.settled();
    return this.sample();
  }

  /** Waits for a sample under way, whatever its outcome. */
  async settled(): Promise<void> {
    if (this.sampling) await this.sampling.catch(() => {});
  }

  /** The last sample when it is under 900 ms old, else a new one. */
  async stats(connectionId: string): Promise<StatsSnapshot> {
    const s = this.last;
    if (s && Date.now() - s.at < 900) return { connectionId, at: s.at, queues: s.queues, groups: [] };
    const queues = await this.sample();
    return { connectionId, at: this.last?.at ?? Date.now(), queues, groups: [] };
  }
}
