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
