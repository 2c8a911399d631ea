/**
 * Re-driving dead-lettered messages on a RabbitMQ, one job at a time per call.
 *
 * The rule that keeps every message: a dead-lettered copy is acked only after
 * RabbitMQ confirmed its re-published copy, routed (published `mandatory`, so
 * an unroutable copy comes back as a return rather than vanishing). Whatever
 * goes wrong — the connection drops, the target disappears, a copy is nacked
 * or returned — the dead-lettered copy is still unacked, and RabbitMQ puts it
 * back in the dead-letter queue when the job's channel closes. The price is
 * at-least-once: a crash between a confirm and its ack leaves both copies,
 * which consumers can drop by `message-id`.
 *
 * Each job has two connections of its own (named after the job, so an
 * operator can see and close them): one reads with manual acks, the other
 * publishes with confirms. On the server each connection is processed apart,
 * so reading and writing proceed side by side. It looks only at the messages that were in the
 * queue when it started, so copies that die again and come back to the
 * dead-letter queue during the job are not re-driven in a loop.
 */
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Message, Options } from 'amqplib';
import type { MessageFilter } from '../../contract/operations.js';
import type { RedriveJob } from '../../contract/types.js';
import type { Logger } from '../../ground/logger.js';
import type { FinalJobState, JobControl, Jobs } from '../../jobs/jobs.js';
import { startingRedrive, type TrackedRedrive } from '../../jobs/redrives.js';
import { closeQuietly, openChannel, openConfirmChannel, packWrites, serverText } from './amqp.js';
import { hasFilter, matches, messageKey, Selection, toView } from './messages.js';
import { passThroughAvailable, rawCopy, RawPublisher, rawPropertiesOf, readRawProperties, type CopyPlan, type RawCopy } from './passthrough.js';

export const REDRIVE_NOTICE =
  'A re-drive publishes each message with publisher confirms and acks the dead-lettered copy only after RabbitMQ confirmed the new one, ' +
  'so a failure (connection lost, target missing, message refused or unroutable) leaves the message in the dead-letter queue. ' +
  'If the connection is lost between a confirm and its ack, the message exists twice: give messages a message-id so consumers can drop the duplicate. ' +
  'Re-driven copies keep their body, properties and headers, with x-redriven-count, x-redriven-from and x-redriven-at added.';

/**
 * Unacked deliveries the job may have at once (being published, or kept
 * back). A persistent copy is confirmed only once RabbitMQ has synced it to
 * disk, which takes a while, so throughput is about this window divided by
 * that delay: the window is large, within a memory budget. RabbitMQ confirms
 * persistent copies in bursts, as its message store syncs; 10,000 moved 1 KiB
 * messages a little faster than 5,000 in some runs, but a job holds its whole
 * window invisible to browsing and to other consumers (a rate-limited job for
 * minutes), so the window stays at 5,000.
 */
const MAX_WINDOW = 5_000;
const MIN_WINDOW = 100;
const WINDOW_BYTES = 64 * 1024 * 1024;
/** A delivery gap this long with nothing in flight makes the job ask whether the queue is drained. */
const IDLE_MS = 750;
/** Idle checks in a row that find messages the queue will not deliver before the job gives up. */
const IDLE_CHECKS = 8;
/** Idle checks in a row that find nothing ready and nothing arrived before the queue counts as drained. */
const DRAINED_CHECKS = 4;
/** How long a finishing job waits for confirms still outstanding. */
const CONFIRM_WAIT_MS = 30_000;

export interface RedriveTarget {
  exchange: string;
  routingKey: string;
}

export interface RedrivePlan {
  source: string;
  target: RedriveTarget | null;
  messageIds: string[] | null;
  filter: MessageFilter | null;
  edit: { body?: string | undefined; headers?: Record<string, unknown> | undefined } | null;
  ratePerSecond: number | null;
  /** Queues whose dead-lettering reaches the source: where a message goes back to, read from its x-death. */
  deadLetterSources: string[];
  /** The source's average message size, when known: sizes the window to the memory budget. */
  averageMessageBytes: number | null;
}

/** A job's two connections (read, write) being opened, each opened or failed. */
export type RedriveConnections = Promise<[PromiseSettledResult<ChannelModel>, PromiseSettledResult<ChannelModel>]>;

/** Opens a job's two connections side by side, named after the job so an operator can see and close them. */
export function openRedriveConnections(jobId: string, open: (name: string) => Promise<ChannelModel>): RedriveConnections {
  return Promise.allSettled([open(`Brokerdeck re-drive ${jobId} (read)`), open(`Brokerdeck re-drive ${jobId} (write)`)]) as RedriveConnections;
}

/** Closes whichever of a job's connections opened (the job did not start). */
export async function closeOpened(connections: RedriveConnections): Promise<void> {
  const opened = await connections;
  await Promise.all(opened.map((c) => (c.status === 'fulfilled' ? closeQuietly(c.value) : undefined)));
}

export interface RedriveContext {
  /** The job's id, taken before its connections were opened (they carry it in their names). */
  id: string;
  /** The job's connections, opened beside the checks before the job (see openRedriveConnections); the job closes them. */
  connections: RedriveConnections;
  connectionId: string;
  username: string;
  scrub(text: string): string;
  logger: Logger;
}

export function targetLabel(target: RedriveTarget | null): string {
  if (!target) return 'original queue (from x-death)';
  return `${target.exchange === '' ? '(default exchange)' : target.exchange} → ${target.routingKey === '' ? '(empty routing key)' : target.routingKey}`;
}

function selectionLabel(plan: RedrivePlan): string {
  const parts: string[] = [];
  parts.push(plan.messageIds ? `${plan.messageIds.length} selected` : 'all');
  if (plan.filter && hasFilter(plan.filter)) parts.push(`filter ${JSON.stringify(plan.filter)}`);
  if (plan.edit) parts.push('edited');
  if (plan.ratePerSecond) parts.push(`≤ ${plan.ratePerSecond}/s`);
  return parts.join(', ');
}

/**
 * Where a message goes back to when no target is given: straight to the queue
 * it was dead-lettered from, through the default exchange. Re-publishing to
 * its original exchange instead would also copy it to every other queue bound
 * there, which had already received and processed it.
 *
 * The newest x-death entry naming a queue that dead-letters into the source
 * is the hop that brought it here; without one, the first queue it died in.
 */
export function originalQueue(headers: Record<string, unknown> | undefined, deadLetterSources: readonly string[]): string | null {
  const raw = headers?.['x-death'];
  const entries = Array.isArray(raw) ? raw.filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null) : [];
  const queueOf = (e: Record<string, unknown>) => (typeof e.queue === 'string' ? e.queue : Buffer.isBuffer(e.queue) ? e.queue.toString('utf8') : null);
  for (const e of entries) {
    const q = queueOf(e);
    if (q && deadLetterSources.includes(q)) return q;
  }
  const first = headers?.['x-first-death-queue'];
  if (typeof first === 'string' && first) return first;
  if (Buffer.isBuffer(first)) return first.toString('utf8');
  for (const e of entries) {
    const q = queueOf(e);
    if (q) return q;
  }
  return null;
}

/**
 * The publish options that reproduce a message: every property and header,
 * plus the re-drive record. Two things cannot be kept as they are: CC/BCC
 * headers would route extra copies (the re-drive chooses the destination),
 * and RabbitMQ refuses a user-id other than the publishing user's, so a
 * foreign one moves to `x-original-user-id`.
 */
export function republish(
  m: Message,
  source: string,
  username: string,
  edit: RedrivePlan['edit'],
): { body: Buffer; options: Options.Publish } {
  const p = m.properties;
  const headers: Record<string, unknown> = { ...(p.headers ?? {}) };
  delete headers.CC;
  delete headers.BCC;
  const previous = headers['x-redriven-count'];
  headers['x-redriven-count'] = (typeof previous === 'number' ? previous : 0) + 1;
  headers['x-redriven-from'] = source;
  headers['x-redriven-at'] = { '!': 'timestamp', value: Math.floor(Date.now() / 1000) };
  if (p.userId !== undefined && p.userId !== username) headers['x-original-user-id'] = String(p.userId);
  // Defined, not assigned: an edited header named __proto__ stays a header.
  for (const [k, v] of Object.entries(edit?.headers ?? {})) Object.defineProperty(headers, k, { value: v, enumerable: true, writable: true, configurable: true });
  const options: Options.Publish = { mandatory: true, headers };
  if (p.contentType !== undefined) options.contentType = p.contentType;
  if (p.contentEncoding !== undefined) options.contentEncoding = p.contentEncoding;
  if (p.deliveryMode !== undefined) options.deliveryMode = p.deliveryMode;
  if (p.priority !== undefined) options.priority = p.priority;
  if (p.correlationId !== undefined) options.correlationId = p.correlationId;
  if (p.replyTo !== undefined) options.replyTo = p.replyTo;
  if (p.expiration !== undefined) options.expiration = p.expiration;
  if (p.messageId !== undefined) options.messageId = p.messageId;
  if (p.timestamp !== undefined) options.timestamp = p.timestamp;
  if (p.type !== undefined) options.type = p.type;
  if (p.appId !== undefined) options.appId = p.appId;
  if (p.userId !== undefined && p.userId === username) options.userId = p.userId;
  const body = edit?.body !== undefined ? Buffer.from(edit.body, 'utf8') : m.content;
  return { body, options };
}

/** A delivery the job took on, in delivery-tag order, until it is acked or kept back for good. */
interface Entry {
  m: ConsumeMessage;
  state: 'open' | 'confirmed' | 'kept';
}

/** The copies in flight to one exchange and routing key, where a return is matched. */
interface Route {
  exchange: string;
  routingKey: string;
  key: string;
  copies: Set<Outstanding>;
}

interface Outstanding {
  entry: Entry;
  route: Route;
  body: Buffer;
  returned: boolean;
}

/**
 * One re-drive, on the connection's job registry (ids, final states,
 * throttled progress, cancel, retention and the audit row come from there).
 */
export class RedriveRun {
  readonly job: TrackedRedrive;
  readonly finished: Promise<void>;
  private readonly control: JobControl<TrackedRedrive>;
  private readonly plan: RedrivePlan;
  private readonly ctx: RedriveContext;
  private readonly selection: Selection | null;
  private readonly filter: MessageFilter | null;
  private fatal: Error | null = null;
  /** Set once the job closes its own channels, whose 'close' events are then no failure. */
  private closing = false;
  private waiter: (() => void) | null = null;
  private problems = new Map<string, number>();

  // Delivery bookkeeping.
  private depth = 0;
  /** The consumer prefetch: never more than the messages the job looks at. */
  private window = MIN_WINDOW;
  private seen = 0;
  private readonly pending: Entry[] = [];
  /** Every delivery taken on and not yet acked or kept back, oldest first (from `head`). */
  private order: Entry[] = [];
  private head = 0;
  /** The lowest delivery tag kept back: acking "multiple" up to a tag above it would ack it too. */
  private keptMin = Infinity;
  private flushScheduled = false;
  /** The publishing socket is full until its next 'drain'. */
  private blocked = false;
  private consumeChannel: Channel | null = null;
  private inflight = 0;
  private readonly outstanding = new Map<string, Route>();
  /** The route of the last copy sent: most jobs send every copy the same way. */
  private lastRoute: Route | null = null;
  private consumerTag: string | null = null;
  /** Messages kept back (not selected, or failed) per consumer: they hold that consumer's prefetch until the job ends. */
  private readonly keptBack = new Map<string, number>();
  private tokens = 0;
  private lastRefill = 0;
  /**
   * Set when the job neither filters, selects nor edits: messages then pass
   * through as bytes (passthrough.ts), their headers never decoded.
   */
  private raw: RawPublisher | null = null;
  private readonly copyPlan: CopyPlan;

  constructor(jobs: Jobs<TrackedRedrive, RedriveJob>, plan: RedrivePlan, ctx: RedriveContext) {
    this.plan = plan;
    this.ctx = ctx;
    this.selection = plan.messageIds ? new Selection(plan.messageIds) : null;
    this.filter = plan.filter && hasFilter(plan.filter) ? plan.filter : null;
    this.copyPlan = { source: plan.source, username: ctx.username, deadLetterSources: plan.deadLetterSources };
    this.job = startingRedrive(ctx.id, {
      connectionId: ctx.connectionId,
      source: plan.source,
      target: targetLabel(plan.target),
      total: plan.messageIds?.length ?? 0,
      ratePerSecond: plan.ratePerSecond,
      selection: selectionLabel(plan),
    });
    this.control = jobs.add(this.job);
    this.control.onCancel(() => this.wake());
    this.finished = this.control.run(() => this.run());
  }

  private get cancelRequested(): boolean {
    return this.control.cancelled;
  }

  /** Progress, throttled by the job registry; the final state goes out at once, and nothing after it. */
  private progress(): void {
    this.control.progress();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Waits for a delivery, a confirm, a cancel or a failure; false when `ms` passed first. */
  private waitEvent(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (this.waiter === done) this.waiter = null;
        resolve(false);
      }, ms);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.waiter = done;
    });
  }

  private problem(text: string): void {
    this.problems.set(text, (this.problems.get(text) ?? 0) + 1);
  }

  private fail(error: Error): void {
    if (this.closing) return;
    if (!this.fatal) this.fatal = error;
    this.wake();
  }

  private async run(): Promise<void> {
    let model: ChannelModel | null = null;
    let publisher: ChannelModel | null = null;
    let consume: Channel | null = null;
    let publish: ConfirmChannel | null = null;
    try {
      // Both connections were opened side by side (each handshake is several round trips), beside the checks before the job.
      const [read, write] = await this.ctx.connections;
      // Kept even when the other failed, so `finally` closes it.
      if (read.status === 'fulfilled') model = read.value;
      if (write.status === 'fulfilled') publisher = write.value;
      if (read.status === 'rejected') throw read.reason;
      if (write.status === 'rejected') throw write.reason;
      if (!model || !publisher) throw new Error('the connections to RabbitMQ could not be opened');
      for (const c of [model, publisher]) {
        c.on('close', (err?: Error) => {
          this.fail(new Error(`the connection to RabbitMQ was closed${err ? `: ${serverText(err)}` : ''}`));
        });
      }
      [consume, publish] = await Promise.all([openChannel(model), openConfirmChannel(publisher)]);
      const consumeChannel = consume;
      this.consumeChannel = consume;
      const publishChannel = publish;
      consumeChannel.on('close', () => this.fail(new Error(`the channel reading "${this.plan.source}" was closed`)));
      consumeChannel.on('error', (e: Error) => this.fail(new Error(serverText(e))));
      publishChannel.on('error', (e: Error) => this.fail(new Error(serverText(e))));
      publishChannel.on('close', () => this.fail(new Error('the publishing channel was closed')));
      publishChannel.on('return', (m: Message) => this.onReturn(m));
      publishChannel.on('drain', () => {
        this.blocked = false;
        this.wake();
      });
      if (!this.filter && !this.selection && !this.plan.edit && passThroughAvailable(model, publishChannel) && readRawProperties(model)) {
        this.raw = new RawPublisher(publishChannel, () => {
          this.blocked = true;
        });
      }

      const declared = await consumeChannel.checkQueue(this.plan.source);
      this.depth = declared.messageCount;
      if (!this.selection) this.job.total = this.depth;
      this.control.running();
      const bySize = this.plan.averageMessageBytes ? Math.floor(WINDOW_BYTES / Math.max(1, this.plan.averageMessageBytes)) : MAX_WINDOW;
      this.window = Math.max(1, Math.min(this.depth, Math.max(MIN_WINDOW, Math.min(MAX_WINDOW, bySize))));
      await consumeChannel.prefetch(this.window);
      if (this.depth > 0) await this.startConsumer(consumeChannel);

      let idleChecks = 0;
      for (;;) {
        if (this.fatal || this.cancelRequested) break;
        if (this.selection && this.selection.remaining === 0) break;
        if (this.mustRotate()) await this.rotate(consumeChannel);
        const next = this.pending.shift();
        if (!next) {
          if (this.seen >= this.depth) break;
          const woke = await this.waitEvent(IDLE_MS);
          if (!woke && this.pending.length === 0 && this.inflight === 0 && !this.fatal && !this.cancelRequested) {
            // Another consumer may have taken what this job counted on; the
            // queue is done when nothing is ready any more. Messages RabbitMQ
            // has handed to this job's consumer but that are still on their way
            // are not ready either (on a busy server or a slow link they take
            // seconds), so that takes a few checks in a row with nothing arriving.
            const seenBefore = this.seen;
            const now = await consumeChannel.checkQueue(this.plan.source);
            if (this.seen > seenBefore) continue;
            idleChecks++;
            if (now.messageCount === 0) {
              if (idleChecks >= DRAINED_CHECKS) break;
            } else if (idleChecks >= IDLE_CHECKS) {
              throw new Error(
                `"${this.plan.source}" still has ${now.messageCount} ready messages but stopped delivering them (a single-active-consumer queue with another active consumer?)`,
              );
            }
          }
          continue;
        }
        idleChecks = 0;
        const waiting = this.handle(next, consumeChannel, publishChannel);
        if (waiting) await waiting;
      }
      await this.settle();
      if (this.fatal) throw this.fatal;
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
    } finally {
      await this.settle();
      // Acks still batched go out before the channel closes: a confirmed
      // copy whose original stayed unacked would be a needless duplicate.
      this.flushAcks();
      this.closing = true;
      // What Nagle's algorithm holds back (the last acks) goes out now, not after the server's delayed ACK.
      for (const c of [model, publisher]) if (c) packWrites(c, false);
      // Closing hands every unacked message back to the dead-letter queue:
      // the ones kept back, failed or never confirmed. The reading channel
      // closes before its connection (closing it ends the consumer too): its
      // close follows the last acks through the channel's own write buffer,
      // while a connection's close could overtake them. The publishing
      // connection has nothing left to send and closes at once. No ack goes
      // out once `closing` is set, so the two close side by side.
      await Promise.all([closeQuietly(publisher), closeQuietly(consume).then(() => closeQuietly(model))]);
      this.finish();
    }
  }

  /** Waits (bounded) for confirms still outstanding, unless the connection is gone. */
  private async settle(): Promise<void> {
    const until = Date.now() + CONFIRM_WAIT_MS;
    while (this.inflight > 0 && !this.fatal && Date.now() < until) await this.waitEvent(100);
  }

  private finish(): void {
    if (this.control.final) return;
    const problems = [...this.problems].map(([text, n]) => `${n} × ${text}`);
    let state: FinalJobState;
    if (this.fatal) {
      state = 'failed';
      problems.unshift(this.ctx.scrub(this.fatal.message));
    } else if (this.cancelRequested) state = 'cancelled';
    else state = 'completed';
    if (this.selection && this.selection.remaining > 0 && !this.fatal && !this.cancelRequested) {
      problems.push(`${this.selection.remaining} selected message(s) were no longer in "${this.plan.source}"`);
    }
    if (!this.selection && this.seen < this.depth && !this.fatal && !this.cancelRequested) {
      problems.push(`${this.depth - this.seen} of the ${this.depth} messages counted at the start never reached the re-drive (another consumer took them, or they expired)`);
    }
    if (state !== 'completed' || this.job.failed > 0) {
      problems.push(`messages not re-driven stay in "${this.plan.source}"`);
    }
    this.job.error = problems.length > 0 ? problems.join('; ') : null;
    this.control.finish(state);
    this.ctx.logger.info('re-drive finished', {
      jobId: this.job.id,
      state: this.job.state,
      moved: this.job.moved,
      failed: this.job.failed,
      source: this.plan.source,
    });
  }

  private async startConsumer(ch: Channel): Promise<void> {
    const ok = await ch.consume(this.plan.source, (m) => this.onDelivery(m), { noAck: false });
    this.consumerTag = ok.consumerTag;
  }

  private onDelivery(m: ConsumeMessage | null): void {
    if (m === null) {
      // RabbitMQ cancels a consumer when its queue is deleted, and in a cluster when the node a
      // classic queue lives on goes down.
      this.fail(new Error(`RabbitMQ cancelled the re-drive's consumer: "${this.plan.source}" was deleted, or the node it lives on went down`));
      return;
    }
    // Beyond what was there at the start: left unacked, it returns when the channel closes.
    if (this.seen >= this.depth || this.cancelRequested) return;
    this.seen++;
    const entry: Entry = { m, state: 'open' };
    this.order.push(entry);
    this.pending.push(entry);
    this.wake();
  }

  private onReturn(m: Message): void {
    const route = this.outstanding.get(`${m.fields.exchange}\u0000${m.fields.routingKey}`);
    if (!route) return;
    for (const o of route.copies) {
      if (!o.returned && o.body.equals(m.content)) {
        o.returned = true;
        return;
      }
    }
  }

  /**
   * A message that stays where it is. It keeps its consumer's prefetch busy,
   * so after half of it is kept back the job starts a fresh consumer (the
   * kept messages stay unacked on the channel and return at its close).
   */
  private keepBack(entry: Entry, ch: Channel): Promise<void> | undefined {
    this.countKeptBack(entry);
    return this.mustRotate() ? this.rotate(ch) : undefined;
  }

  private mustRotate(): boolean {
    const tag = this.consumerTag;
    return tag !== null && this.seen < this.depth && (this.keptBack.get(tag) ?? 0) >= this.window / 2;
  }

  private async rotate(ch: Channel): Promise<void> {
    const tag = this.consumerTag;
    if (tag === null) return;
    this.consumerTag = null;
    await ch.cancel(tag);
    await this.startConsumer(ch);
  }

  private async rateLimit(): Promise<void> {
    const rate = this.plan.ratePerSecond;
    if (!rate) return;
    // A token bucket holding a tenth of a second's worth, so high rates are
    // not held back by timer granularity.
    const capacity = Math.max(1, rate / 10);
    for (;;) {
      const now = Date.now();
      if (this.lastRefill === 0) {
        this.lastRefill = now;
        this.tokens = 1;
      }
      this.tokens = Math.min(capacity, this.tokens + ((now - this.lastRefill) * rate) / 1000);
      this.lastRefill = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      if (this.cancelRequested || this.fatal) return;
      await new Promise((r) => setTimeout(r, Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / rate))));
    }
  }

  /**
   * Decides one delivery and publishes its copy. It stays synchronous unless
   * it has to wait (rate limit, a full window or socket, a consumer to
   * replace), so a batch of deliveries goes out as a batch of publishes in
   * one turn of the event loop.
   */
  private handle(entry: Entry, consume: Channel, publish: ConfirmChannel): Promise<void> | undefined {
    const m = entry.m;
    if (this.filter) {
      const view = toView(m, { id: '' });
      if (!matches(view, this.filter)) return this.keepBack(entry, consume);
    }
    if (this.selection && !this.selection.take(messageKey(m.properties.messageId, m.content), m.properties.messageId)) {
      return this.keepBack(entry, consume);
    }
    let copy: RawCopy | null = null;
    const raw = this.raw ? rawPropertiesOf(m) : null;
    if (raw) {
      try {
        copy = rawCopy(raw, this.copyPlan, Math.floor(Date.now() / 1000));
      } catch (error) {
        this.job.failed++;
        this.problem((error as Error).message);
        this.progress();
        return this.keepBack(entry, consume);
      }
    }
    let exchange: string;
    let routingKey: string;
    if (this.plan.target) ({ exchange, routingKey } = this.plan.target);
    else {
      const queue = copy ? copy.originalQueue : originalQueue(m.properties.headers as Record<string, unknown> | undefined, this.plan.deadLetterSources);
      if (!queue) {
        this.job.failed++;
        this.problem('no x-death header names the queue it came from: choose a target exchange and routing key');
        this.progress();
        return this.keepBack(entry, consume);
      }
      exchange = '';
      routingKey = queue;
    }
    if (this.plan.ratePerSecond || this.inflight >= this.window || this.blocked) {
      return (async () => {
        await this.rateLimit();
        while ((this.inflight >= this.window || this.blocked) && !this.fatal && !this.cancelRequested) await this.waitEvent(100);
        if (this.fatal || this.cancelRequested) return;
        this.send(entry, exchange, routingKey, publish, copy);
      })();
    }
    this.send(entry, exchange, routingKey, publish, copy);
    return undefined;
  }

  private send(entry: Entry, exchange: string, routingKey: string, publish: ConfirmChannel, copy: RawCopy | null): void {
    const { body, options } = copy ? { body: entry.m.content, options: null } : republish(entry.m, this.plan.source, this.ctx.username, this.plan.edit);
    let route = this.lastRoute;
    if (!route || route.exchange !== exchange || route.routingKey !== routingKey) {
      const key = `${exchange}\u0000${routingKey}`;
      route = this.outstanding.get(key) ?? { exchange, routingKey, key, copies: new Set() };
      this.outstanding.set(key, route);
      this.lastRoute = route;
    }
    const out: Outstanding = { entry, route, body, returned: false };
    route.copies.add(out);
    this.inflight++;
    try {
      const confirmed = (err: unknown) => this.onConfirm(out, err);
      if (copy && this.raw) this.raw.publish(exchange, routingKey, copy.properties, body, confirmed);
      else {
        // Copies queued as bytes go first, so the confirms keep publish order.
        this.raw?.flush();
        // false: the socket buffer is full; the next publish waits for 'drain'.
        if (!publish.publish(exchange, routingKey, body, options!, confirmed)) this.blocked = true;
      }
    } catch (error) {
      this.inflight--;
      this.fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private onConfirm(out: Outstanding, err: unknown): void {
    this.inflight--;
    const route = out.route;
    route.copies.delete(out);
    if (route.copies.size === 0 && route !== this.lastRoute) this.outstanding.delete(route.key);
    if (this.control.final) return;
    if (!err && !out.returned) {
      out.entry.state = 'confirmed';
      // Progress goes out with the acks.
      this.scheduleFlush();
      this.wake();
      return;
    }
    const where = () => (route.exchange === '' ? `queue "${route.routingKey}"` : `exchange "${route.exchange}" with routing key "${route.routingKey}"`);
    if (err) {
      // A nack, or the channel closed before the confirm: either way the
      // dead-lettered copy was not acked and stays.
      if (!this.fatal && /nack/i.test(String((err as Error).message))) {
        this.job.failed++;
        this.problem(`RabbitMQ refused the copy for ${where()} (nack)`);
        this.countKeptBack(out.entry);
      }
    } else if (out.returned) {
      this.job.failed++;
      this.problem(route.exchange === '' ? `${where()} does not exist (unroutable)` : `nothing is bound to ${where()} (unroutable)`);
      this.countKeptBack(out.entry);
    }
    this.progress();
    this.wake();
  }

  /** Kept back for the rest of the job (not selected, or failed): it returns to the queue when the channel closes. */
  private countKeptBack(entry: Entry): void {
    entry.state = 'kept';
    this.keptMin = Math.min(this.keptMin, entry.m.fields.deliveryTag);
    const tag = entry.m.fields.consumerTag;
    this.keptBack.set(tag, (this.keptBack.get(tag) ?? 0) + 1);
    // Confirmed deliveries queued behind this one can go now.
    this.scheduleFlush();
  }

  /**
   * Acks are sent in batches, once per turn of the event loop: a single
   * "multiple" ack covers a run of confirmed deliveries when no kept-back
   * delivery lies below it, which saves RabbitMQ most of the ack work.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flushAcks();
    });
  }

  private flushAcks(): void {
    const consume = this.consumeChannel;
    if (!consume || this.closing) return;
    const run: Entry[] = [];
    while (this.head < this.order.length) {
      const e = this.order[this.head]!;
      if (e.state === 'open') break;
      if (e.state === 'confirmed') run.push(e);
      this.head++;
    }
    if (this.head > 4_096 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
    // Confirmed deliveries behind one still in flight wait for it, so a
    // batch stays a contiguous run; the ones behind a kept-back delivery are
    // acked one by one.
    const last = run[run.length - 1];
    if (!last) return;
    try {
      if (this.keptMin < last.m.fields.deliveryTag) {
        for (const e of run) consume.ack(e.m);
      } else {
        consume.ack(last.m, true);
      }
      this.job.moved += run.length;
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
    }
    this.progress();
  }
}
