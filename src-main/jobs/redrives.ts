/**
 * The job registry of a connection's re-drives when the connection keeps
 * them in memory (RabbitMQ, Kafka): each job is the contract's `RedriveJob`
 * (or a kind's extension of it) plus the line its audit row gives the
 * selection. The embedded broker stores its jobs and builds its registry in
 * broker/redrive.ts, on the same machinery.
 */
import type { AuditEntry, RedriveJob } from '../contract/types.js';
import { Jobs, type JobLog } from './jobs.js';

/** A re-drive as its connection tracks it: the public view and how its audit row describes the selection. */
export type TrackedRedrive<V extends RedriveJob = RedriveJob> = V & { selection: string };

/** What a connection says about a re-drive it is starting; the rest of its record starts the same for every kind. */
export type RedriveStart<V extends RedriveJob = RedriveJob> = Omit<TrackedRedrive<V>, 'id' | 'state' | 'moved' | 'failed' | 'startedAt' | 'finishedAt' | 'error'>;

/** A re-drive's record as it starts: pending, nothing moved or failed yet, started now. */
export function startingRedrive<V extends RedriveJob = RedriveJob>(id: string, start: RedriveStart<V>): TrackedRedrive<V> {
  return { id, state: 'pending', moved: 0, failed: 0, startedAt: Date.now(), finishedAt: null, error: null, ...start } as TrackedRedrive<V>;
}

export interface RedriveJobsOptions {
  /** `rd-` (RabbitMQ), `kr-` (Kafka). */
  idPrefix: string;
  audit: { record(entry: AuditEntry): void };
  log: JobLog;
}

export function redriveJobs<V extends RedriveJob = RedriveJob>(options: RedriveJobsOptions): Jobs<TrackedRedrive<V>, V> {
  return new Jobs<TrackedRedrive<V>, V>({
    idPrefix: options.idPrefix,
    log: options.log,
    view: (job) => {
      const { selection: _selection, ...view } = job;
      return view as unknown as V;
    },
    describe: (job) => ({ connectionId: job.connectionId, action: 'redrive', source: job.source, target: job.target, count: job.moved, selection: job.selection }),
    audit: (entry) => options.audit.record(entry),
    failed: (job, error) => {
      const text = error instanceof Error ? error.message : String(error);
      job.error = job.error ? `${text}; ${job.error}` : text;
    },
  });
}
