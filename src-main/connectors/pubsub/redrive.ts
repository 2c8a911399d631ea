/**
 * Re-drive on Pub/Sub, as a job of the shared machinery (progress, cancel,
 * audit row). Workers pull batches from the dead-letter subscription, publish each
 * selected message to its target topic — the one named, else the topic of the
 * subscription it was dead-lettered from (Pub/Sub's CloudPubSubDeadLetterSourceSubscription
 * attribute; without it, the only subscription dead-lettering there) — and acknowledge
 * the dead copy only after Pub/Sub confirmed the publish (answered with its message
 * ids). A publish that fails leaves its messages in the dead-letter subscription
 * (handed back at once). So nothing is lost; a message is duplicated only if the
 * process dies, or the acknowledgement fails, between a confirmed publish and its
 * acknowledgement.
 *
 * Messages that wait (for the rate limit, or unselected until the job ends) are held
 * with an ack deadline of 600 s, Pub/Sub's longest; unselected ones (a filter, chosen
 * ids) are handed back when the job ends, so no worker reads them twice.
 *
 * The copy keeps the data, the ordering key and the attributes, without the four
 * CloudPubSubDeadLetter* attributes (Pub/Sub sets them again if it dead-letters the
 * copy) and with `x-redriven-count` raised by one.
 */
import type { RedriveJob } from '../../contract/types.js';
import type { CompiledFilter } from '../../ground/filter.js';
import type { Logger } from '../../ground/logger.js';
import type { JobControl, Jobs } from '../../jobs/jobs.js';
import { startingRedrive, type TrackedRedrive } from '../../jobs/redrives.js';
import { fullSubscription, shortName, type PubsubClients } from './client.js';
import { DEAD_LETTER_ATTRIBUTES, matchesFilter, publishBatches, REDRIVEN_COUNT, toView, type PubsubMessage, type ReceivedMessage } from './messages.js';
import { acknowledge, extend, pullOnce, release } from './subscriptions.js';
import { RateLimit } from '../../jobs/pace.js';

export const REDRIVE_NOTICE =
  "Each message is published to its source topic (the topic of the subscription named in its CloudPubSubDeadLetterSourceSubscription attribute) or to the topic you name, " +
  'and acknowledged in the dead-letter subscription only after Pub/Sub confirmed the publish, so nothing is lost. ' +
  'A message can be duplicated only if Brokerdeck stops between a publish and its acknowledgement. ' +
  'Publishing to a topic delivers to every subscription of that topic, not only the one the message was dead-lettered from.';

/** How long a pulled message stays held while it moves (Pub/Sub's maximum); a crash hands it back after this. */
const HOLD_S = 600;

export type PubsubRedriveJob = TrackedRedrive<RedriveJob>;

export interface PubsubRedrivePlan {
  project: string;
  source: string;
  sourcePath: string;
  /** The job's target as shown. */
  target: string;
  /** The topic named by the person (full path); null: each message's source topic. */
  targetTopic: string | null;
  /** Each subscription's topic (short subscription name → full topic path). */
  topicOf: Map<string, string>;
  /** The topic of the only subscription dead-lettering here, for messages without the source attribute. */
  defaultTopic: string | null;
  messageIds: string[] | null;
  filter: CompiledFilter | null;
  ratePerSecond: number | null;
  approximateCount: number;
  workers: number;
  batch: number;
  emulator: boolean;
  /** A count or browse of the source holding its messages right now (they come back when it ends), if any. */
  othersReading: () => Promise<unknown> | undefined;
}

/** The copy to publish: data, ordering key, attributes without Pub/Sub's dead-letter ones, the move counted. */
export function copyOf(m: PubsubMessage): PubsubMessage {
  const attributes: Record<string, string> = {};
  const dead = new Set<string>(Object.values(DEAD_LETTER_ATTRIBUTES));
  for (const [k, v] of Object.entries(m.attributes ?? {})) if (!dead.has(k)) attributes[k] = v;
  attributes[REDRIVEN_COUNT] = String((Number(attributes[REDRIVEN_COUNT] ?? '0') || 0) + 1);
  const out: PubsubMessage = { data: m.data ?? Buffer.alloc(0), attributes };
  if (m.orderingKey) out.orderingKey = m.orderingKey;
  return out;
}

export class PubsubRedriveRun {
  readonly control: JobControl<PubsubRedriveJob>;
  private readonly rate: RateLimit;
  /** Unselected messages held until the end: ack ids. */
  private readonly held: string[] = [];
  private readonly wanted: Set<string> | null;
  /** Message ids seen, and whether each was moved (a copy Pub/Sub hands out again is then acknowledged). */
  private readonly seen = new Map<string, 'moved' | 'held'>();
  private duplicateRisk = 0;

  constructor(
    jobs: Jobs<PubsubRedriveJob, RedriveJob>,
    private readonly plan: PubsubRedrivePlan,
    private readonly clients: PubsubClients,
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

  get job(): PubsubRedriveJob {
    return this.control.job;
  }

  private async work(): Promise<void> {
    this.control.running();
    try {
      await Promise.all(Array.from({ length: Math.max(1, this.plan.workers) }, () => this.worker()));
    } finally {
      await this.handBack(this.held.splice(0));
      if (this.duplicateRisk > 0) {
        const note = `${this.duplicateRisk} messages were published but could not be acknowledged in ${this.plan.source}: they will appear in both`;
        this.job.error = this.job.error ? `${this.job.error}; ${note}` : note;
      }
      if (!this.wanted && this.job.moved + this.job.failed > this.job.total) this.job.total = this.job.moved + this.job.failed;
      if (!this.wanted && !this.control.cancelled) this.job.total = this.job.moved + this.job.failed;
    }
  }

  private done(): boolean {
    return this.control.cancelled || (this.wanted !== null && this.wanted.size === 0);
  }

  private async worker(): Promise<void> {
    let empty = 0;
    const sub = this.clients.subscriber;
    while (!this.done()) {
      // Not aborted on cancel: what Pub/Sub hands out is handed back below rather than held for the ack deadline.
      const got = await pullOnce(sub, this.plan.sourcePath, this.plan.batch, !this.plan.emulator && empty > 0);
      if (got.length === 0) {
        // Empty only because a count or browse holds the messages for a moment: wait for them.
        const other = this.plan.othersReading();
        if (other) {
          await other;
          empty = 0;
          continue;
        }
        if (++empty >= 2) return;
        continue;
      }
      empty = 0;
      if (this.control.cancelled) {
        await this.handBack(got.map((r) => r.ackId!));
        return;
      }
      const move: ReceivedMessage[] = [];
      const keep: string[] = [];
      const again: string[] = [];
      for (const r of got) {
        const id = r.message?.messageId ?? '';
        const before = this.seen.get(id);
        if (before === 'moved') again.push(r.ackId!);
        else if (before === 'held') keep.push(r.ackId!);
        else if (this.selected(r)) {
          this.wanted?.delete(id);
          this.seen.set(id, 'moved');
          move.push(r);
        } else {
          this.seen.set(id, 'held');
          keep.push(r.ackId!);
        }
      }
      // Held until the job ends, or waiting for the rate limit: beyond the subscription's ack deadline.
      // Without a rate limit a move takes milliseconds, well within the deadline (10 s at least).
      const hold = this.plan.ratePerSecond ? [...keep, ...move.map((r) => r.ackId!)] : keep;
      if (hold.length > 0) await extend(sub, this.plan.sourcePath, hold, HOLD_S);
      this.held.push(...keep);
      // A moved message Pub/Sub handed out again (at-least-once delivery): its copy is already published.
      if (again.length > 0) await acknowledge(sub, this.plan.sourcePath, again).catch(() => {});
      if (move.length > 0) await this.move(move);
    }
  }

  private selected(r: ReceivedMessage): boolean {
    const id = r.message?.messageId ?? '';
    if (this.wanted && !this.wanted.has(id)) return false;
    return matchesFilter(this.plan.filter, r, toView(r, this.plan.source, 0));
  }

  /** Where a message goes back to: the named topic, else its source subscription's topic. */
  private topicFor(r: ReceivedMessage): string | null {
    if (this.plan.targetTopic) return this.plan.targetTopic;
    const a = r.message?.attributes ?? {};
    const sub = a[DEAD_LETTER_ATTRIBUTES.subscription];
    if (sub) {
      const project = a[DEAD_LETTER_ATTRIBUTES.project] || this.plan.project;
      const key = shortName(fullSubscription(project, sub.replace(/^projects\/[^/]+\/subscriptions\//, '')), this.plan.project);
      const topic = this.plan.topicOf.get(key);
      if (topic) return topic;
      return null;
    }
    return this.plan.defaultTopic;
  }

  private async move(messages: ReceivedMessage[]): Promise<void> {
    await this.rate.take(messages.length, this.control.signal);
    if (this.control.cancelled) {
      for (const r of messages) this.seen.delete(r.message?.messageId ?? '');
      await this.handBack(messages.map((r) => r.ackId!));
      return;
    }
    const byTopic = new Map<string, ReceivedMessage[]>();
    const nowhere: ReceivedMessage[] = [];
    for (const r of messages) {
      const t = this.topicFor(r);
      if (!t) nowhere.push(r);
      else byTopic.set(t, [...(byTopic.get(t) ?? []), r]);
    }
    if (nowhere.length > 0) {
      const sub = nowhere[0]!.message?.attributes?.[DEAD_LETTER_ATTRIBUTES.subscription];
      this.note(
        sub
          ? `${nowhere.length} messages came from subscription "${sub}", which no longer exists here; name a target topic for them`
          : `${nowhere.length} messages carry no CloudPubSubDeadLetterSourceSubscription attribute and several subscriptions dead-letter here; name a target topic for them`,
      );
      this.job.failed += nowhere.length;
      for (const r of nowhere) this.seen.set(r.message?.messageId ?? '', 'held');
      await this.handBack(nowhere.map((r) => r.ackId!));
    }
    const requests: Array<[string, ReceivedMessage[]]> = [];
    for (const [topic, all] of byTopic) for (const group of publishBatches(all, (m) => m.message ?? {})) requests.push([topic, group]);
    for (const [topic, group] of requests) {
      let published = false;
      try {
        const [r] = await this.clients.publisher.publish({ topic, messages: group.map((m) => copyOf(m.message ?? {})) }, { timeout: 60_000, isBundling: false });
        published = (r.messageIds?.length ?? 0) === group.length;
        if (!published) this.note(`Pub/Sub confirmed ${r.messageIds?.length ?? 0} of ${group.length} messages published to ${shortName(topic, this.plan.project)}`);
      } catch (error) {
        this.note(`publishing to ${shortName(topic, this.plan.project)} failed: ${(error as Error).message}; those messages stay in ${this.plan.source}`);
      }
      if (!published) {
        this.job.failed += group.length;
        for (const m of group) this.seen.set(m.message?.messageId ?? '', 'held');
        await this.handBack(group.map((m) => m.ackId!));
        continue;
      }
      // The copies are confirmed in the target: only now are the originals acknowledged.
      try {
        await acknowledge(this.clients.subscriber, this.plan.sourcePath, group.map((m) => m.ackId!));
      } catch (error) {
        this.duplicateRisk += group.length;
        this.logger.warn('a Pub/Sub re-drive could not acknowledge moved messages', { jobId: this.job.id, error: String(error) });
      }
      this.job.moved += group.length;
    }
    this.control.progress();
  }

  private note(text: string): void {
    if (!this.job.error) this.job.error = text;
  }

  private async handBack(ackIds: string[]): Promise<void> {
    await release(this.clients.subscriber, this.plan.sourcePath, ackIds, (error) =>
      this.logger.warn('held Pub/Sub messages could not be handed back; they will be after their ack deadline', { error: String(error) }),
    );
  }
}
