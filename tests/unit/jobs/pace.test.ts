/**
 * Pacing: a rate limit spreads items evenly across the workers that share it,
 * and a cancelled job's sleep ends at once.
 */
import { describe, expect, it } from 'vitest';
import { RateLimit, sleep } from '../../../src-main/jobs/pace.js';

describe('pacing a job', () => {
  it('lets no more than the rate through, across workers', async () => {
    const limit = new RateLimit(200);
    const started = Date.now();
    // Three workers taking 20 items each: 60 items at 200/s need at least 300 ms minus the first slot.
    await Promise.all([0, 1, 2].map(async () => {
      for (let i = 0; i < 4; i++) await limit.take(5);
    }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(270);
  });

  it('does not wait without a rate, and a cancel ends a sleep at once', async () => {
    const free = new RateLimit(null);
    const t0 = Date.now();
    await free.take(1_000_000);
    expect(Date.now() - t0).toBeLessThan(1_000);

    const ctl = new AbortController();
    const slow = new RateLimit(1);
    await slow.take(1, ctl.signal);
    const waiting = slow.take(1_000, ctl.signal);
    ctl.abort();
    await waiting;
    const already = new AbortController();
    already.abort();
    await sleep(3_600_000, already.signal);
  });
});
