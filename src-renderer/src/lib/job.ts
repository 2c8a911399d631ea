/**
 * What a re-drive job did, told apart: moved, skipped (and why), failed (and
 * why), and asked for but no longer there. A job that ended "completed" having
 * moved nothing is not a success, and one that skipped records is finished,
 * not half done: the outcome, not the state alone, decides the colour.
 */
import type { RedriveJob } from '@contract/types';
import { FINAL_JOB_STATES } from '@contract/types';

export type JobOutcome = 'running' | 'success' | 'partial' | 'nothing' | 'cancelled' | 'failed';

export interface JobFigures {
  moved: number;
  skipped: number;
  failed: number;
  /** Asked for but not found when the job reached them (consumed, purged or re-driven elsewhere meanwhile). */
  missing: number;
  total: number;
  /** moved + skipped + failed (+ missing once finished): what the job has dealt with. */
  handled: number;
}

export function jobFigures(job: RedriveJob): JobFigures {
  const moved = job.moved;
  const skipped = job.skipped ?? 0;
  const failed = job.failed;
  const final = FINAL_JOB_STATES.includes(job.state);
  const missing = final && job.state === 'completed' ? Math.max(0, job.total - moved - skipped - failed) : 0;
  return { moved, skipped, failed, missing, total: job.total, handled: moved + skipped + failed + missing };
}

export function jobOutcome(job: RedriveJob): JobOutcome {
  if (!FINAL_JOB_STATES.includes(job.state)) return 'running';
  if (job.state === 'failed') return 'failed';
  if (job.state === 'cancelled') return 'cancelled';
  const f = jobFigures(job);
  if (f.moved === 0 && f.total > 0) return 'nothing';
  if (f.failed || f.skipped || f.missing) return 'partial';
  return 'success';
}

/** Shares of the bar, in percent of the total, in the order drawn: moved, skipped, failed, missing. */
export function jobSegments(job: RedriveJob): Array<{ part: 'moved' | 'skipped' | 'failed' | 'missing'; percent: number; count: number }> {
  const f = jobFigures(job);
  if (f.total === 0) return [];
  const parts = [
    { part: 'moved' as const, count: f.moved },
    { part: 'skipped' as const, count: f.skipped },
    { part: 'failed' as const, count: f.failed },
    { part: 'missing' as const, count: f.missing },
  ];
  return parts.filter((p) => p.count > 0).map((p) => ({ ...p, percent: Math.min(100, (p.count / f.total) * 100) }));
}
