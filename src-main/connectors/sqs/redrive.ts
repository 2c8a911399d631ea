/**
 * Re-drive on SQS, two ways, both as jobs of the shared machinery (progress,
 * cancel, audit row):
 *
 * **Brokerdeck's own move** (any selection, any target, a rate limit). Workers
 * receive up to 10 messages at a time from the dead-letter queue with a visibility
 * timeout that hides them while they move, send the selected ones to the target
 * with SendMessageBatch (body, every message attribute, and `x-redriven-count`
 * raised by one), and delete each from the dead-letter queue only after its send
 * succeeded; that delete runs while the worker receives and sends its next batch. A send that fails leaves its message in the dead-letter queue (made
 * visible again at once). So nothing is lost; a message is duplicated only if the
 * process dies, or the delete fails, between a successful send and its delete: the
 * copy in the dead-letter queue reappears when its visibility timeout ends. FIFO
 * messages keep their group id and their deduplication id, so such a second send
 * within SQS's five-minute deduplication window is dropped by SQS itself; a FIFO
 * dead-letter queue is moved by one worker, in order, which keeps the order within
 * each message group.
 *
 * Messages that are not selected (a filter, chosen ids) are held invisible until
 * the job ends, so no worker reads them twice, and then made visible again: each
 * such read raises their receive count, which is why a selection on a dead-letter
 * queue that itself has a redrive policy is refused unless the person accepts it.
 *
 * **SQS's own message-move task** (StartMessageMoveTask) when the whole queue moves
 * to its source or another queue: SQS moves the messages itself (at most 500 a
 * second), the job follows ListMessageMoveTasks and cancel calls
 * CancelMessageMoveTask.
 */
import {
  CancelMessageMoveTaskCommand,
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  StartMessageMoveTaskCommand,
  type Message,
  type MessageAttributeValue,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { RedriveJob } from '../../contract/types.js';
import type { CompiledFilter } from '../../ground/filter.js';
import type { JobControl, Jobs } from '../../jobs/jobs.js';
import { startingRedrive, type TrackedRedrive } from '../../jobs/redrives.js';
import type { Logger } from '../../ground/logger.js';
import { MAX_ATTRIBUTES, matchesFilter, REDRIVEN_COUNT, toView } from './messages.js';
import { RateLimit, sleep } from '../../jobs/pace.js';

export const REDRIVE_NOTICE =
  'Each message is sent to the target (with its attributes and x-redriven-count) before it is deleted from the dead-letter queue, so nothing is lost. ' +
  'A message can be duplicated only if Brokerdeck stops between a send and its delete; FIFO messages keep their deduplication id, so SQS drops such a copy within five minutes. ' +
  "When the whole queue goes back to its source, SQS's own message-move task can do it instead (at most 500 messages a second).";

/** How long a received message stays hidden while it moves; a crash makes it visible again after this. */
const MOVE_VISIBILITY_S = 60;
/**
 * Empty receives in a row after which a worker takes the queue as drained: a short poll
 * asks only some of SQS's servers, so an empty answer is followed by a long poll (one
 * second), which asks them all, as AWS documents; unless the job has already received
 * as many messages as the queue held and SQS counts none left (see `drained`).
 */
const EMPTY_RECEIVES = 2;

export type SqsRedriveJob = TrackedRedrive<RedriveJob>;

export interface SqsRedrivePlan {
  source: string;
  sourceUrl: string;
  target: string;
  targetUrl: string;
  targetFifo: boolean;
  sourceFifo: boolean;
  /** MessageIds chosen; null: every message (that passes the filter). */
  messageIds: string[] | null;
  filter: CompiledFilter | null;
  ratePerSecond: number | null;
  /** What SQS says the dead-letter queue holds now: the job's total when it moves everything. */
  approximateCount: number;
  workers: number;
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The message's attributes for the copy, with the move counted. */
function copyAttributes(m: Message): Record<string, MessageAttributeValue> {
  const attrs: Record<string, MessageAttributeValue> = { ...(m.MessageAttributes ?? {}) };
  const before = Number(attrs[REDRIVEN_COUNT]?.StringValue ?? '0') || 0;
  // At SQS's limit of 10 attributes a new one cannot be added: the copy keeps the sender's.
  if (attrs[REDRIVEN_COUNT] || Object.keys(attrs).length < MAX_ATTRIBUTES) attrs[REDRIVEN_COUNT] = { DataType: 'Number', StringValue: String(before + 1) };
  return attrs;
}

export class SqsRedriveRun {
  readonly control: JobControl<SqsRedriveJob>;
  private readonly rate: RateLimit;
  /** Unselected messages held invisible until the end: receipt handles. */
  private readonly held: string[] = [];
  private readonly wanted: Set<string> | null;
  private readonly seen = new Set<string>();
  private duplicateRisk = 0;
  private drainCheck: Promise<boolean> | null = null;

  constructor(
    jobs: Jobs<SqsRedriveJob, RedriveJob>,
    private readonly plan: SqsRedrivePlan,
    private readonly client: SQSClient,
    connectionId: string,
    private readonly logger: Logger,
  ) {
    this.wanted = plan.messageIds ? new Set(plan.messageIds) : null;
    this.rate = new RateLimit(plan.ratePerSecond);
    const selection = plan.messageIds ? `${plan.messageIds.length} chosen messages` : plan.filter ? 'messages matching a filter' : 'all messages';
    this.control = jobs.add(startingRedrive(jobs.newId(), {
      connectionId,
      source: plan.source,
      target: plan.target,
      total: plan.messageIds ? plan.messageIds.length : plan.approximateCount,
      ratePerSecond: plan.ratePerSecond,
      selection,
    }));
    void this.control.run(() => this.work());
  }

  get job(): SqsRedriveJob {
    return this.control.job;
  }

  private async work(): Promise<void> {
    this.control.running();
    try {
      const workers = Array.from({ length: this.plan.sourceFifo ? 1 : this.plan.workers }, () => this.worker());
      await Promise.all(workers);
    } finally {
      await this.release(this.held.splice(0));
      if (this.duplicateRisk > 0) {
        const note = `${this.duplicateRisk} messages were sent to ${this.plan.target} but could not be deleted from ${this.plan.source}: they will appear in both`;
        this.job.error = this.job.error ? `${this.job.error}; ${note}` : note;
      }
      if (!this.wanted && this.job.moved + this.job.failed > this.job.total) this.job.total = this.job.moved + this.job.failed;
    }
  }

  private done(): boolean {
    return this.control.cancelled || (this.wanted !== null && this.wanted.size === 0);
  }

  private async worker(): Promise<void> {
    let empty = 0;
    // A batch's delete runs while the worker receives and sends the next batch, so one
    // round trip of the three leaves the loop. One delete at a time per worker, and each
    // has ended before its worker does (and so before the job does).
    let deleting: Promise<void> = Promise.resolve();
    try {
      while (!this.done()) {
        const r = await this.client.send(
          new ReceiveMessageCommand({
            QueueUrl: this.plan.sourceUrl,
            MaxNumberOfMessages: 10,
            VisibilityTimeout: MOVE_VISIBILITY_S,
            // After an empty answer, wait a second: a long poll asks every server, a short one only some.
            WaitTimeSeconds: empty > 0 ? 1 : 0,
            MessageSystemAttributeNames: ['All'],
            MessageAttributeNames: ['All'],
          }),
          // Not aborted on cancel: messages SQS already handed out would stay hidden for the whole
          // visibility timeout; the answer comes within a second and what it holds is put back below.
        );
        const messages = r.Messages ?? [];
        if (messages.length === 0) {
          if (++empty >= EMPTY_RECEIVES || (await this.drained())) return;
          continue;
        }
        empty = 0;
        const move: Message[] = [];
        const keep: string[] = [];
        for (const m of messages) {
          const id = m.MessageId ?? '';
          const fresh = !this.seen.has(id);
          this.seen.add(id);
          if (this.control.cancelled) keep.push(m.ReceiptHandle!);
          else if (this.selected(m) && fresh) {
            this.wanted?.delete(id);
            move.push(m);
          } else keep.push(m.ReceiptHandle!);
        }
        if (this.control.cancelled) {
          await this.release(keep);
          return;
        }
        this.held.push(...keep);
        if (move.length > 0) {
          deleting = (await this.move(move, deleting)).deleted;
          // A FIFO queue hands out no more of a group while any of it is in flight: its delete ends first.
          if (this.plan.sourceFifo) await deleting;
        }
      }
    } finally {
      await deleting;
    }
  }

  /**
   * Whether an empty short poll may end the job without the one-second long poll that
   * confirms it: only once the job has received at least as many messages as the queue
   * held when it began, and SQS counts none visible now. Asked once for all workers at a time.
   */
  private drained(): Promise<boolean> {
    if (this.seen.size < this.plan.approximateCount || this.plan.approximateCount === 0) return Promise.resolve(false);
    this.drainCheck ??= this.client
      .send(new GetQueueAttributesCommand({ QueueUrl: this.plan.sourceUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesDelayed'] }))
      .then(
        (r) => Number(r.Attributes?.ApproximateNumberOfMessages ?? '1') === 0 && Number(r.Attributes?.ApproximateNumberOfMessagesDelayed ?? '0') === 0,
        () => false,
      )
      .finally(() => (this.drainCheck = null));
    return this.drainCheck;
  }

  private selected(m: Message): boolean {
    if (this.wanted && !this.wanted.has(m.MessageId ?? '')) return false;
    // Without a filter no view is built: a re-drive of everything looks at no body.
    return this.plan.filter === null || matchesFilter(this.plan.filter, toView(m, this.plan.source, 0));
  }

  /** Sends a batch; answers with the delete of what was sent, started once `previousDelete` has ended. */
  private async move(messages: Message[], previousDelete: Promise<void>): Promise<{ deleted: Promise<void> }> {
    await this.rate.take(messages.length, this.control.signal);
    if (this.control.cancelled) {
      await this.release(messages.map((m) => m.ReceiptHandle!));
      return { deleted: previousDelete };
    }
    const entries: SendMessageBatchRequestEntry[] = messages.map((m, i) => {
      const e: SendMessageBatchRequestEntry = { Id: String(i), MessageBody: m.Body ?? '', MessageAttributes: copyAttributes(m) };
      if (this.plan.targetFifo) {
        e.MessageGroupId = m.Attributes?.MessageGroupId ?? 'brokerdeck-redrive';
        e.MessageDeduplicationId = m.Attributes?.MessageDeduplicationId ?? m.MessageId!;
      }
      return e;
    });
    let sent: Message[] = [];
    const unsent: Message[] = [];
    try {
      const r = await this.client.send(new SendMessageBatchCommand({ QueueUrl: this.plan.targetUrl, Entries: entries }));
      const ok = new Set((r.Successful ?? []).map((s) => s.Id));
      messages.forEach((m, i) => (ok.has(String(i)) ? sent : unsent).push(m));
      const first = r.Failed?.[0];
      if (first) this.note(`${r.Failed!.length} messages could not be sent to ${this.plan.target} (${first.Code}: ${first.Message ?? ''}); they stay in ${this.plan.source}`);
    } catch (error) {
      sent = [];
      unsent.push(...messages);
      this.note(`sending to ${this.plan.target} failed: ${(error as Error).message}; those messages stay in ${this.plan.source}`);
    }
    this.job.moved += sent.length;
    this.job.failed += unsent.length;
    await this.release(unsent.map((m) => m.ReceiptHandle!));
    this.control.progress();
    await previousDelete;
    // The copies are in the target: only now are the originals deleted.
    return { deleted: sent.length > 0 ? this.deleteSent(sent) : Promise.resolve() };
  }

  /** Deletes moved originals; never throws: a failed delete is counted as a copy in both queues. */
  private async deleteSent(sent: Message[]): Promise<void> {
    try {
      const d = await this.client.send(
        new DeleteMessageBatchCommand({ QueueUrl: this.plan.sourceUrl, Entries: sent.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }),
      );
      this.duplicateRisk += d.Failed?.length ?? 0;
    } catch (error) {
      this.duplicateRisk += sent.length;
      this.logger.warn('an SQS re-drive could not delete moved messages', { jobId: this.job.id, error: String(error) });
    }
  }

  private note(text: string): void {
    if (!this.job.error) this.job.error = text;
  }

  /** Makes held messages visible again at once. */
  private async release(handles: string[]): Promise<void> {
    await Promise.all(
      chunks(handles, 10).map((batch) =>
        this.client
          .send(
            new ChangeMessageVisibilityBatchCommand({
              QueueUrl: this.plan.sourceUrl,
              Entries: batch.map((h, i) => ({ Id: String(i), ReceiptHandle: h, VisibilityTimeout: 0 })),
            }),
          )
          .catch((error: unknown) => this.logger.warn('held SQS messages could not be made visible again; they will be after their visibility timeout', { error: String(error) })),
      ),
    );
  }
}

export interface MoveTaskPlan {
  source: string;
  sourceArn: string;
  target: string;
  /** Absent: SQS moves each message back to the queue it was dead-lettered from. */
  targetArn?: string;
  ratePerSecond: number | null;
  approximateCount: number;
  pollMs?: number;
}

/** SQS's own message-move task, followed as a job. */
export class SqsMoveTaskRun {
  readonly control: JobControl<SqsRedriveJob>;
  private handle: string | null = null;

  constructor(
    jobs: Jobs<SqsRedriveJob, RedriveJob>,
    private readonly plan: MoveTaskPlan,
    private readonly client: SQSClient,
    connectionId: string,
  ) {
    this.control = jobs.add(startingRedrive(jobs.newId(), {
      connectionId,
      source: plan.source,
      target: plan.target,
      total: plan.approximateCount,
      ratePerSecond: plan.ratePerSecond,
      selection: "all messages, by SQS's message-move task",
    }));
    this.control.onCancel(() => {
      if (this.handle) void this.client.send(new CancelMessageMoveTaskCommand({ TaskHandle: this.handle })).catch(() => {});
    });
  }

  /** Starts the task (its refusal is the caller's error, before any job runs) and then follows it. */
  async start(): Promise<void> {
    try {
      const r = await this.client.send(
        new StartMessageMoveTaskCommand({
          SourceArn: this.plan.sourceArn,
          ...(this.plan.targetArn ? { DestinationArn: this.plan.targetArn } : {}),
          ...(this.plan.ratePerSecond ? { MaxNumberOfMessagesPerSecond: Math.max(1, Math.min(500, Math.floor(this.plan.ratePerSecond))) } : {}),
        }),
      );
      this.handle = r.TaskHandle ?? null;
    } catch (error) {
      this.job.error = (error as Error).message;
      this.control.finish('failed');
      throw error;
    }
    void this.control.run(() => this.follow());
  }

  get job(): SqsRedriveJob {
    return this.control.job;
  }

  private async follow(): Promise<void> {
    this.control.running();
    for (;;) {
      const r = await this.client.send(new ListMessageMoveTasksCommand({ SourceArn: this.plan.sourceArn, MaxResults: 10 }));
      const task = (r.Results ?? []).find((t) => t.TaskHandle === this.handle) ?? r.Results?.[0];
      if (task) {
        this.job.moved = task.ApproximateNumberOfMessagesMoved ?? this.job.moved;
        if (task.ApproximateNumberOfMessagesToMove !== undefined) this.job.total = Math.max(this.job.moved, task.ApproximateNumberOfMessagesToMove);
        this.control.progress();
        if (task.Status === 'COMPLETED') {
          this.job.total = this.job.moved;
          this.control.finish('completed');
          return;
        }
        if (task.Status === 'CANCELLED') {
          this.control.finish('cancelled');
          return;
        }
        if (task.Status === 'FAILED') {
          this.job.error = task.FailureReason ?? 'the message-move task failed';
          this.control.finish('failed');
          return;
        }
      }
      await sleep(this.plan.pollMs ?? 500);
    }
  }
}
