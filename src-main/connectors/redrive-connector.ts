/**
 * What every connection that runs its re-drives itself (RabbitMQ, SQS, Redis,
 * Pub/Sub) answers the same way: looking a job up, cancelling one (and waiting
 * a moment for it to stop), listing them, following them, and the connection's
 * audit rows. A connector extends it and starts its jobs on `this.jobs`.
 */
import type { AuditEntry, RedriveJob } from '../contract/types.js';
import { redriveJobs } from '../jobs/redrives.js';
import type { Unsubscribe } from './connector.js';
import type { ConnectorDeps } from './deps.js';

/** How long a cancel waits for the job to reach a final state before answering with where it is. */
const CANCEL_WAIT_MS = 5_000;

export abstract class RedriveConnector<V extends RedriveJob = RedriveJob> {
  abstract readonly id: string;
  protected readonly jobs: ReturnType<typeof redriveJobs<V>>;

  protected constructor(
    protected readonly deps: ConnectorDeps,
    /** Prefix of the jobs' ids, telling the kind apart in logs and audit rows (`rr-`, `ps-`). */
    idPrefix: string,
  ) {
    this.jobs = redriveJobs<V>({ idPrefix, audit: deps.audit, log: deps.logger });
  }

  async getRedrive(id: string): Promise<V | null> {
    return this.jobs.get(id);
  }

  async cancelRedrive(id: string): Promise<V | null> {
    return this.jobs.cancelAndWait(id, CANCEL_WAIT_MS);
  }

  async listRedrives(): Promise<V[]> {
    return this.jobs.list();
  }

  /** Waits for a job to end (tests and scripts use it; the UI follows onRedrive). */
  async waitForRedrive(id: string): Promise<V | null> {
    return this.jobs.settled(id);
  }

  async listAudit(limit: number): Promise<AuditEntry[]> {
    return this.deps.audit.list(this.id, limit);
  }

  onRedrive(listener: (job: V) => void): Unsubscribe {
    return this.jobs.subscribe(listener);
  }
}
