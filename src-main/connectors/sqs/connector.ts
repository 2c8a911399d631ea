/**
 * Amazon SQS as a connection, over the AWS SDK v3. Queues (standard and FIFO)
 * answer the same operations as the other kinds' queues: list with their counts
 * and attributes, browse, get, publish, purge, dead letters and re-drive; their
 * backlog is sampled into the metrics history for the charts.
 *
 * SQS has no peek: a message is shown only by receiving it, which hides it for a
 * visibility timeout and raises its ApproximateReceiveCount. Browsing therefore
 * receives with a short visibility timeout, makes every message it read visible
 * again at once, and is refused on a queue whose redrive policy a read could
 * trigger (the message would go to the dead-letter queue once received
 * maxReceiveCount times), unless the person accepts that for one request
 * (`allowReceiveCountRisk=true`) or for the connection (its setting of that name),
 * as RabbitMQ's quorum-queue peek is refused without `allowQuorumPeek`.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListDeadLetterSourceQueuesCommand,
  ListQueuesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
  type Message,
  type SendMessageBatchRequestEntry,
} from '@aws-sdk/client-sqs';
import { randomUUID } from 'node:crypto';
import { ApiError } from '../../contract/errors.js';
import type { SqsConnectionConfig } from '../../contract/operations.js';
import type {
  BrowsePage,
  Capability,
  ConnectionInfo,
  DeadLetterQueueInfo,
  HistorySeries,
  MessageView,
  PublishResult,
  QueueInfo,
  StatsSnapshot,
} from '../../contract/types.js';
import { compileMessageFilter } from '../../ground/filter.js';
import { MetricsHistory } from '../../metrics/history.js';
import type { Args, Connector } from '../connector.js';
import type { ConnectorDeps } from '../deps.js';
import { mapLimit, targetOf, toApiError } from '../aws/client.js';
import { AwsConnectionState } from '../aws/connection.js';
import { attributesFrom, matchesFilter, queueNameOf, toView } from './messages.js';
import { isFifo, parseRedrivePolicy, toQueueInfo, type QueueAttributes } from './queues.js';
import { REDRIVE_NOTICE, SqsMoveTaskRun, SqsRedriveRun, type SqsRedriveJob } from './redrive.js';
import { RedriveConnector } from '../redrive-connector.js';
import { QueueSamples, SampleLoop } from '../sample-loop.js';

export const QUEUE_METRICS = ['messages', 'ready', 'unacked', 'delayed'] as const;

const CAPABILITIES: Capability[] = ['queues', 'publish', 'redrive', 'get'];

export const PEEK_NOTICE =
  'SQS has no peek: Brokerdeck shows a message by receiving it with a short visibility timeout and making it visible again at once. ' +
  'Each read raises the message\'s receive count; on a queue with a redrive policy a message received maxReceiveCount times goes to the dead-letter queue, ' +
  'so browsing such a queue is refused unless you accept that ("Browse anyway", allowReceiveCountRisk=true).';

const PUBLISH_NOTICE =
  'Publishing sends to one queue (the routing key names it), in batches of 10. Headers become message attributes (at most 10); ' +
  'AMQP properties other than headers are not kept by SQS. A FIFO queue needs a message group id; without a deduplication id and without ' +
  'content-based deduplication each message gets a random one.';

/** At most this many messages are read by one browse: each is held in flight until the read ends. */
export const BROWSE_MAX = 1_000;
/** How long a browsed message stays hidden if Brokerdeck cannot make it visible again (it stops): seconds. */
const BROWSE_VISIBILITY_S = 20;

export interface SqsConnectorOptions {
  /** How often queue attributes are sampled into the history (ms); 0 turns sampling off. */
  sampleIntervalMs?: number;
  /** Parallel receive-send-delete loops of a re-drive (a FIFO dead-letter queue always has one). */
  redriveWorkers?: number;
  /** How often a message-move task's progress is read (ms). */
  moveTaskPollMs?: number;
}

interface QueueEntry {
  name: string;
  url: string;
}

export class SqsConnector extends RedriveConnector implements Connector {
  readonly id: string;
  readonly metricsHistory = new MetricsHistory({ metrics: QUEUE_METRICS });
  private readonly client: SQSClient;
  /** Re-drives run on a client of their own with more sockets, so they never starve browsing. */
  private readonly bulk: SQSClient;
  private readonly state: AwsConnectionState;
  private readonly options: Required<SqsConnectorOptions>;
  private readonly urls = new Map<string, string>();
  private readonly sampler: SampleLoop;
  private readonly samples: QueueSamples;

  constructor(
    id: string,
    private readonly config: SqsConnectionConfig,
    deps: ConnectorDeps,
    options: SqsConnectorOptions = {},
  ) {
    super(deps, 'sq-');
    this.id = id;
    this.state = new AwsConnectionState(id, targetOf(config, 'sqs'), config.readOnly);
    this.options = {
      sampleIntervalMs: options.sampleIntervalMs ?? 2_000,
      redriveWorkers: options.redriveWorkers ?? 32,
      moveTaskPollMs: options.moveTaskPollMs ?? 500,
    };
    // A configuration the SDK cannot use (no region anywhere) still gives a connection that says why.
    this.client = new SQSClient(this.state.clientConfig(config, { maxSockets: 16 }));
    // Each re-drive worker has a receive or a send and a delete in flight.
    this.bulk = this.state.configError ? this.client : new SQSClient(this.state.clientConfig(config, { maxSockets: 96 }));
    this.samples = new QueueSamples(async () => {
      const queues = await this.readAll();
      const at = Date.now();
      this.record(queues, at);
      return { at, queues };
    });
    this.sampler = new SampleLoop(() => this.samples.sample(), this.options.sampleIntervalMs, 10_000);
    if (this.state.status !== 'error') this.sampler.start();
  }

  // ---------------------------------------------------------------- connection

  info(): ConnectionInfo {
    return {
      id: this.id,
      kind: 'sqs',
      name: this.config.name,
      ...this.state.infoFields(),
      target: this.state.target,
      capabilities: [...CAPABILITIES],
      notices: { peek: PEEK_NOTICE, redrive: REDRIVE_NOTICE, publish: PUBLISH_NOTICE },
    };
  }

  setReadOnly(readOnly: boolean): void {
    this.state.readOnly = readOnly;
  }

  async close(): Promise<void> {
    this.state.closed = true;
    this.sampler.stop();
    await this.jobs.cancelAll(5_000);
    this.jobs.dispose();
    this.client.destroy();
    if (this.bulk !== this.client) this.bulk.destroy();
  }

  private writable(what: string): void {
    this.state.writable(what);
  }

  /** Every call goes through here: its outcome sets the connection's status. */
  private call<T>(fn: () => Promise<T>, notFound?: { what: string; field: string }): Promise<T> {
    return this.state.call(fn, notFound);
  }

  // ---------------------------------------------------------------- queues

  private async queueEntries(): Promise<QueueEntry[]> {
    const out: QueueEntry[] = [];
    let token: string | undefined;
    do {
      const r = await this.call(() => this.client.send(new ListQueuesCommand({ MaxResults: 1000, ...(token ? { NextToken: token } : {}) })));
      for (const url of r.QueueUrls ?? []) {
        const name = queueNameOf(url);
        this.urls.set(name, url);
        out.push({ name, url });
      }
      token = r.NextToken;
    } while (token);
    return out;
  }

  private async urlOf(queue: string, field = 'queue'): Promise<string> {
    const known = this.urls.get(queue);
    if (known) return known;
    const r = await this.call(() => this.client.send(new GetQueueUrlCommand({ QueueName: queue })), { what: `queue "${queue}"`, field });
    if (!r.QueueUrl) throw new ApiError('NOT_FOUND', `queue "${queue}" does not exist`, field);
    this.urls.set(queue, r.QueueUrl);
    return r.QueueUrl;
  }

  private async attributesOf(queue: string, url: string, field = 'queue'): Promise<QueueAttributes> {
    try {
      const r = await this.call(() => this.client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] })), {
        what: `queue "${queue}"`,
        field,
      });
      return (r.Attributes ?? {}) as QueueAttributes;
    } catch (error) {
      // A queue deleted and made again has a new URL only if its account or region changed; forget the cached one anyway.
      if (error instanceof ApiError && error.code === 'NOT_FOUND') this.urls.delete(queue);
      throw error;
    }
  }

  /** Every queue's attributes (8 requests at a time), with which queues dead-letter into which. */
  private async readAll(): Promise<QueueInfo[]> {
    const entries = await this.queueEntries();
    const attrs = await mapLimit(entries, 8, async (e) => {
      try {
        return await this.attributesOf(e.name, e.url);
      } catch (error) {
        if (error instanceof ApiError && error.code === 'NOT_FOUND') return null;
        throw error;
      }
    });
    const sources = new Map<string, string[]>();
    entries.forEach((e, i) => {
      const policy = parseRedrivePolicy(attrs[i]?.RedrivePolicy);
      if (!policy) return;
      const list = sources.get(policy.deadLetterQueue) ?? [];
      list.push(e.name);
      sources.set(policy.deadLetterQueue, list);
    });
    const out: QueueInfo[] = [];
    entries.forEach((e, i) => {
      const a = attrs[i];
      if (a) out.push(toQueueInfo(e.name, e.url, a, (sources.get(e.name) ?? []).sort()));
    });
    return out.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  }

  private record(queues: QueueInfo[], at: number): void {
    for (const q of queues) this.metricsHistory.record('queue', q.name, { messages: q.messages, ready: q.ready, unacked: q.unacked, delayed: q.delayed }, at);
  }

  /** Fresh: a sample already under way began before this call and may miss what the caller just did. */
  async listQueues(): Promise<QueueInfo[]> {
    return this.samples.fresh();
  }

  async getQueue(queue: string): Promise<QueueInfo> {
    const url = await this.urlOf(queue);
    const attrs = await this.attributesOf(queue, url);
    // Which queues dead-letter here: SQS answers that itself.
    const sources: string[] = [];
    try {
      let token: string | undefined;
      do {
        const r = await this.client.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: url, MaxResults: 1000, ...(token ? { NextToken: token } : {}) }));
        sources.push(...(r.queueUrls ?? []).map(queueNameOf));
        token = r.NextToken;
      } while (token);
    } catch {
      // Without the permission for it, the list stays empty; the queue itself still shows.
    }
    return toQueueInfo(queue, url, attrs, sources.sort());
  }

  async declareQueue(a: Args<'queues/declare'>): Promise<QueueInfo> {
    this.writable('create queues');
    const attributes: Record<string, string> = {};
    for (const [k, v] of Object.entries(a.arguments)) {
      if (v === null || v === undefined) continue;
      attributes[k] = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
    }
    if (a.queue.endsWith('.fifo')) attributes.FifoQueue = 'true';
    const r = await this.call(() => this.client.send(new CreateQueueCommand({ QueueName: a.queue, Attributes: attributes })));
    if (r.QueueUrl) this.urls.set(a.queue, r.QueueUrl);
    return this.getQueue(a.queue);
  }

  async deleteQueue(a: Args<'queues/delete'>): Promise<{ messageCount: number }> {
    this.writable('delete queues');
    if (a.ifUnused) throw new ApiError('INVALID_ARGUMENT', 'ifUnused: SQS does not know whether a queue has consumers', 'ifUnused');
    const q = await this.getQueue(a.queue);
    if (a.ifEmpty && q.messages > 0) throw new ApiError('PRECONDITION_FAILED', `queue "${a.queue}" is not empty (about ${q.messages} messages)`, 'queue');
    const url = await this.urlOf(a.queue);
    await this.call(() => this.client.send(new DeleteQueueCommand({ QueueUrl: url })), { what: `queue "${a.queue}"`, field: 'queue' });
    this.urls.delete(a.queue);
    this.metricsHistory.forget('queue', a.queue);
    return { messageCount: q.messages };
  }

  async purgeQueue(a: Args<'queues/purge'>): Promise<{ messageCount: number }> {
    this.writable('purge queues');
    const q = await this.getQueue(a.queue);
    const url = await this.urlOf(a.queue);
    await this.call(() => this.client.send(new PurgeQueueCommand({ QueueUrl: url })), { what: `queue "${a.queue}"`, field: 'queue' });
    return { messageCount: q.ready + q.unacked + q.delayed };
  }

  // ---------------------------------------------------------------- reading messages

  /** Refuses a read that could push messages to a dead-letter queue, unless accepted. */
  private receiveCountGuard(queue: string, attrs: QueueAttributes, accepted: boolean | undefined, field = 'allowReceiveCountRisk'): void {
    if (accepted || this.config.allowReceiveCountRisk) return;
    const policy = parseRedrivePolicy(attrs.RedrivePolicy);
    if (!policy) return;
    throw new ApiError(
      'PRECONDITION_FAILED',
      `queue "${queue}" has a redrive policy: a message received ${policy.maxReceiveCount} times goes to "${policy.deadLetterQueue}". ` +
        'SQS shows a message only by receiving it, and each read counts as a receive. Accept that for this read with allowReceiveCountRisk=true ' +
        '("Browse anyway"), or for the whole connection with its allowReceiveCountRisk setting.',
      field,
    );
  }

  /**
   * Receives up to `want` messages, each hidden for `visibility` seconds, several
   * receives at a time; stops early when SQS has nothing more to give (two empty
   * answers in a row, the second after a one-second long poll, which asks every server).
   */
  private async receiveUpTo(url: string, want: number, visibility: number, expected: number): Promise<Message[]> {
    const out: Message[] = [];
    const ids = new Set<string>();
    let empty = 0;
    // Once SQS's own count is reached, one empty answer ends the read; before, a long poll makes sure.
    while (out.length < want && empty < (out.length >= expected ? 1 : 2)) {
      const lanes = Math.max(1, Math.min(10, Math.ceil((want - out.length) / 10)));
      const answers = await Promise.all(
        Array.from({ length: lanes }, (_, lane) =>
          this.call(() =>
            this.client.send(
              new ReceiveMessageCommand({
                QueueUrl: url,
                MaxNumberOfMessages: Math.min(10, Math.max(1, want - out.length - lane * 10)),
                VisibilityTimeout: visibility,
                WaitTimeSeconds: empty > 0 ? 1 : 0,
                MessageSystemAttributeNames: ['All'],
                MessageAttributeNames: ['All'],
              }),
            ),
          ),
        ),
      );
      const got = answers.flatMap((r) => r.Messages ?? []);
      if (got.length === 0) empty++;
      else empty = 0;
      for (const m of got) {
        if (m.MessageId && ids.has(m.MessageId)) continue;
        if (m.MessageId) ids.add(m.MessageId);
        out.push(m);
      }
    }
    return out;
  }

  private async release(url: string, messages: Message[]): Promise<void> {
    const batches: Message[][] = [];
    for (let i = 0; i < messages.length; i += 10) batches.push(messages.slice(i, i + 10));
    await mapLimit(batches, 16, (batch) =>
      this.client
        .send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: url,
            Entries: batch.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 })),
          }),
        )
        .catch((error: unknown) => {
          this.deps.logger.warn('browsed SQS messages could not be made visible again; they will be after their visibility timeout', {
            connectionId: this.id,
            error: String(error),
          });
        }),
    );
  }

  /**
   * Reads up to `position + limit` messages (at most BROWSE_MAX), answers from
   * `position` on, and makes them all visible again. SQS returns them in no fixed
   * order (a FIFO queue: in order within each group), so two reads of a standard
   * queue can order them differently; there is never a cursor to a next page.
   */
  async browseQueue(a: Args<'queues/messages'>): Promise<BrowsePage<MessageView>> {
    const filter = compileMessageFilter(a, 'queue');
    const url = await this.urlOf(a.queue);
    const attrs = await this.attributesOf(a.queue, url);
    // The UI's "Peek anyway" sends allowQuorumPeek for any queue whose read has a cost: the same consent.
    this.receiveCountGuard(a.queue, attrs, a.allowReceiveCountRisk || a.allowQuorumPeek);
    if (a.cursor) throw new ApiError('INVALID_ARGUMENT', `cursor: SQS queues cannot be paged by cursor; give a position below ${BROWSE_MAX}`, 'cursor');
    const start = a.position ?? 0;
    if (start >= BROWSE_MAX) {
      throw new ApiError('INVALID_ARGUMENT', `position: an SQS queue can only be read within its first ${BROWSE_MAX} messages (each read holds them in flight)`, 'position');
    }
    // A later page is read from the head again: SQS has no positions, so a page is the same read, further along.
    const want = Math.min(start + a.limit, BROWSE_MAX);
    const held = await this.receiveUpTo(url, want, BROWSE_VISIBILITY_S, Number(attrs.ApproximateNumberOfMessages ?? 0));
    try {
      const views = held.map((m, i) => toView(m, a.queue, i)).slice(start);
      const matched = views.filter((v) => matchesFilter(filter, v));
      return { messages: matched, nextCursor: null, scanned: views.length, matched: matched.length };
    } finally {
      await this.release(url, held);
    }
  }

  /** Receives messages: `ack` deletes them, `requeue` makes them visible again; SQS has no reject. */
  async getMessages(a: Args<'queues/getMessages'>): Promise<MessageView[]> {
    if (a.ackMode === 'reject') {
      throw new ApiError('INVALID_ARGUMENT', "ackMode: SQS has no reject; a message goes to the dead-letter queue only by being received maxReceiveCount times", 'ackMode');
    }
    if (a.ackMode === 'ack') this.writable('take messages');
    const url = await this.urlOf(a.queue);
    const attrs = await this.attributesOf(a.queue, url);
    if (a.ackMode === 'requeue') this.receiveCountGuard(a.queue, attrs, a.allowQuorumPeek, 'allowQuorumPeek');
    const held = await this.receiveUpTo(url, a.count, BROWSE_VISIBILITY_S, Number(attrs.ApproximateNumberOfMessages ?? 0));
    const views = held.map((m, i) => toView(m, a.queue, i));
    if (a.ackMode === 'requeue') {
      await this.release(url, held);
      return views;
    }
    const batches: Message[][] = [];
    for (let i = 0; i < held.length; i += 10) batches.push(held.slice(i, i + 10));
    await mapLimit(batches, 8, (batch) =>
      this.call(() =>
        this.client.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: batch.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) })),
      ),
    );
    return views;
  }

  // ---------------------------------------------------------------- publish

  async publish(a: Args<'publish'>): Promise<PublishResult> {
    this.writable('publish');
    if (a.exchange !== '') {
      throw new ApiError('INVALID_ARGUMENT', 'exchange: SQS has no exchanges; leave exchange empty and name the queue in routingKey', 'exchange');
    }
    if (a.routingKey === '') throw new ApiError('INVALID_ARGUMENT', 'routingKey: name the queue to send to', 'routingKey');
    if (a.bodyEncoding === 'base64') {
      throw new ApiError('INVALID_ARGUMENT', 'bodyEncoding: an SQS message body is text; send binary data base64-encoded as utf8 text', 'bodyEncoding');
    }
    if (a.body.length === 0) throw new ApiError('INVALID_ARGUMENT', 'body: SQS refuses an empty message body', 'body');
    const attributes = attributesFrom(a.properties);
    const queue = a.routingKey;
    const url = await this.urlOf(queue, 'routingKey');
    const attrs = await this.attributesOf(queue, url, 'routingKey');
    const fifo = isFifo(attrs);
    if (fifo && !a.messageGroupId) throw new ApiError('INVALID_ARGUMENT', `messageGroupId: queue "${queue}" is a FIFO queue: give a message group id`, 'messageGroupId');
    if (fifo && a.delaySeconds) {
      throw new ApiError('INVALID_ARGUMENT', `delaySeconds: a FIFO queue has no per-message delay (set the queue's DelaySeconds instead)`, 'delaySeconds');
    }
    if (!fifo && (a.messageGroupId || a.deduplicationId)) {
      // SQS accepts a group id on a standard queue (fair queues); a deduplication id it refuses.
      if (a.deduplicationId) throw new ApiError('INVALID_ARGUMENT', `deduplicationId: queue "${queue}" is a standard queue, which does not deduplicate`, 'deduplicationId');
    }
    const contentDedup = attrs.ContentBasedDeduplication === 'true';
    const entry = (i: number): SendMessageBatchRequestEntry => {
      const e: SendMessageBatchRequestEntry = { Id: String(i % 10), MessageBody: a.body };
      if (Object.keys(attributes).length > 0) e.MessageAttributes = attributes;
      if (a.delaySeconds !== undefined) e.DelaySeconds = a.delaySeconds;
      if (a.messageGroupId) e.MessageGroupId = a.messageGroupId;
      if (fifo) {
        // Copies of one publish are distinct messages: the given id is numbered after the first.
        if (a.deduplicationId) e.MessageDeduplicationId = i === 0 ? a.deduplicationId : `${a.deduplicationId}-${i}`.slice(0, 128);
        else if (!contentDedup) e.MessageDeduplicationId = randomUUID();
      }
      return e;
    };
    const batches = Math.ceil(a.count / 10);
    let published = 0;
    let firstFailure: string | null = null;
    // A FIFO queue keeps the order of one group only if its batches go one after another.
    await mapLimit(
      Array.from({ length: batches }, (_, b) => b),
      fifo ? 1 : 16,
      async (b) => {
        if (firstFailure) return;
        const entries = Array.from({ length: Math.min(10, a.count - b * 10) }, (_, k) => entry(b * 10 + k));
        const r = await this.call(() => this.client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries })));
        published += r.Successful?.length ?? 0;
        const f = r.Failed?.[0];
        if (f && !firstFailure) firstFailure = `${f.Code}: ${f.Message ?? ''}`;
      },
    );
    if (firstFailure) {
      throw new ApiError('INVALID_ARGUMENT', `SQS refused the message (${firstFailure}); ${published} of ${a.count} were sent before`, 'body');
    }
    return { published, routed: { [queue]: published }, returned: 0, rejected: 0, deduplicated: 0, confirmed: true };
  }

  // ---------------------------------------------------------------- dead letters and re-drive

  async listDeadLetters(): Promise<DeadLetterQueueInfo[]> {
    const queues = await this.listQueues();
    return queues.filter((q) => q.deadLetterFor.length > 0).map((q) => ({ queue: q.name, count: q.messages, sources: q.deadLetterFor }));
  }

  async startRedrive(a: Args<'redrives/start'>): Promise<{ id: string }> {
    this.writable('re-drive messages');
    if (a.edit) throw new ApiError('INVALID_ARGUMENT', 'edit: SQS messages cannot be edited on the way; publish an edited copy instead', 'edit');
    const filter = a.filter ? compileMessageFilter(a.filter, 'queue', 'filter.') : null;
    const source = await this.getQueue(a.source);
    const sourceUrl = await this.urlOf(a.source, 'source');
    const sourceAttrs = await this.attributesOf(a.source, sourceUrl, 'source');
    let target: string;
    if (a.target) {
      if (a.target.exchange !== '') throw new ApiError('INVALID_ARGUMENT', 'target.exchange: SQS has no exchanges; name the target queue in target.routingKey', 'target.exchange');
      target = a.target.routingKey;
    } else if (source.deadLetterFor.length === 1) target = source.deadLetterFor[0]!;
    else if (source.deadLetterFor.length === 0) {
      throw new ApiError('INVALID_ARGUMENT', `target: no queue dead-letters into "${a.source}"; name the queue to move its messages to`, 'target');
    } else {
      throw new ApiError('INVALID_ARGUMENT', `target: ${source.deadLetterFor.length} queues dead-letter into "${a.source}" (${source.deadLetterFor.join(', ')}); name one`, 'target');
    }
    if (target === a.source) throw new ApiError('INVALID_ARGUMENT', 'target: the target is the dead-letter queue itself', 'target');
    const targetUrl = await this.urlOf(target, 'target.routingKey');
    const targetAttrs = await this.attributesOf(target, targetUrl, 'target.routingKey');
    const approximateCount = source.ready + source.delayed;

    if (a.useMoveTask) {
      if (!a.all || a.messageIds?.length || filter) {
        throw new ApiError('INVALID_ARGUMENT', "useMoveTask: SQS's message-move task moves a whole queue: use it with all: true and no filter", 'useMoveTask');
      }
      const run = new SqsMoveTaskRun(
        this.jobs,
        {
          source: a.source,
          sourceArn: sourceAttrs.QueueArn ?? '',
          target,
          // Back to each message's own source when that is where it goes; else the named queue.
          ...(a.target || source.deadLetterFor.length !== 1 ? { targetArn: targetAttrs.QueueArn ?? '' } : {}),
          ratePerSecond: a.ratePerSecond ?? null,
          approximateCount,
          pollMs: this.options.moveTaskPollMs,
        },
        this.bulk,
        this.id,
      );
      try {
        await run.start();
      } catch (error) {
        throw toApiError(error, this.state.target, { what: `queue "${a.source}"`, field: 'source' });
      }
      this.deps.logger.info('SQS message-move task started', { connectionId: this.id, jobId: run.job.id, source: a.source, target });
      return { id: run.job.id };
    }

    const partial = (a.messageIds?.length ?? 0) > 0 || filter !== null;
    if (partial && !a.allowReceiveCountRisk) {
      this.receiveCountGuard(a.source, sourceAttrs, false, 'allowReceiveCountRisk');
    }
    const run = new SqsRedriveRun(
      this.jobs,
      {
        source: a.source,
        sourceUrl,
        target,
        targetUrl,
        sourceFifo: isFifo(sourceAttrs),
        targetFifo: isFifo(targetAttrs),
        messageIds: a.all ? null : (a.messageIds ?? null),
        filter,
        ratePerSecond: a.ratePerSecond ?? null,
        approximateCount,
        workers: this.options.redriveWorkers,
      },
      this.bulk,
      this.id,
      this.deps.logger,
    );
    this.deps.logger.info('re-drive started', { connectionId: this.id, jobId: run.job.id, source: a.source, target });
    return { id: run.job.id };
  }

  // ---------------------------------------------------------------- statistics

  async stats(): Promise<StatsSnapshot> {
    return this.samples.stats(this.id);
  }

  async history(a: Args<'metrics/history'>): Promise<HistorySeries> {
    return this.metricsHistory.series(a.kind, a.name, a.range);
  }
}

export type { SqsRedriveJob };
