/**
 * Pacing a long job: a rate limit shared by its workers (at most `rate` items a
 * second, spread evenly rather than in bursts) and a sleep that ends early when
 * the job is cancelled. Every re-drive that moves messages one by one or in
 * batches paces itself with these.
 */

/** Resolves after `ms`, or at once when `signal` is (or becomes) aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** At most `rate` items a second (null: no limit), shared by every worker that takes from it. */
export class RateLimit {
  private next = 0;
  constructor(private readonly rate: number | null) {}

  /** Waits until `n` more items may go. */
  async take(n: number, signal?: AbortSignal): Promise<void> {
    if (!this.rate || n === 0) return;
    const now = Date.now();
    const start = Math.max(now, this.next);
    this.next = start + (n * 1000) / this.rate;
    const wait = start - now;
    if (wait > 0) await sleep(wait, signal);
  }
}
