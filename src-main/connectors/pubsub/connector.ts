/**
 * Google Cloud Pub/Sub as a connection, over @google-cloud/pubsub's generated
 * clients. Topics are topics (one partition each: Pub/Sub has no partitions or
 * offsets; a publish's ordering key is the record's key); subscriptions are queues,
 * with their settings, an estimated backlog charted in the metrics history, browse,
 * get, dead letters and re-drive.
 *
 * Subscriptions are queues rather than consumer groups: a group's lag is offsets
 * per partition, which Pub/Sub does not have; what a subscription has not yet
 * delivered and acknowledged is its backlog, which is a queue's depth.
 *
 * Pub/Sub has no peek: a message is shown only by pulling it, and Brokerdeck hands
 * every message it pulled back at once (modifyAckDeadline 0), so nothing is lost and
 * a subscriber receives it next. On a subscription with a dead-letter policy each
 * pull counts a delivery attempt, and a message pulled maxDeliveryAttempts times goes
 * to the dead-letter topic: browsing such a subscription is refused unless the person
 * accepts that for one request (`allowDeliveryAttemptRisk=true`) or for the connection.
 */
import { ApiError } from '../../contract/errors.js';
import type { PubsubConnectionConfig } from '../../contract/operations.js';
import type {
  BrowsePage,
  Capability,
  ConnectionInfo,
  ConnectionStatus,
  DeadLetterQueueInfo,
  HistorySeries,
  MessageView,
  PublishResult,
  QueueInfo,
  StatsSnapshot,
  TopicInfo,
} from '../../contract/types.js';
import { compileMessageFilter } from '../../ground/filter.js';
import { compileRecord, type RecordTemplate } from '../../ground/placeholders.js';
import { MetricsHistory } from '../../metrics/history.js';
import type { Args, Connector, PublishControl } from '../connector.js';
import type { ConnectorDeps } from '../deps.js';
import {
  closeClients,
  createClients,
  ensureCredentials,
  fullSubscription,
  fullTopic,
  mapLimit,
  shortName,
  targetOf,
  toApiError,
  type PubsubClients,
} from './client.js';
import { checkAttributes, matchesFilter, PUBLISH_MAX_BYTES, PUBLISH_MAX_MESSAGES, publishSize, toView, type PubsubMessage } from './messages.js';
import { PubsubRedriveRun, REDRIVE_NOTICE, type PubsubRedriveJob } from './redrive.js';
import {
  acknowledge,
  BACKLOG_MAX,
  pullUpTo,
  release,
  toQueueInfo,
  toTopicInfo,
  uncountable,
  type Backlog,
  type Subscription,
  type Topic,
} from './subscriptions.js';
import { RedriveConnector } from '../redrive-connector.js';
import { QueueSamples, SampleLoop } from '../sample-loop.js';

export const QUEUE_METRICS = ['messages', 'ready', 'unacked', 'delayed'] as const;

const CAPABILITIES: Capability[] = ['queues', 'topics', 'publish', 'redrive', 'get'];

export const PEEK_NOTICE =
  'Pub/Sub has no peek: Brokerdeck shows a message by pulling it and handing it back at once (ack deadline 0), so a subscriber receives it next. ' +
  'On a subscription with a dead-letter policy each pull counts as a delivery attempt (deliveryAttempt rises), and a message pulled maxDeliveryAttempts times goes to the dead-letter topic, ' +
  'so browsing such a subscription is refused unless you accept that ("Browse anyway", allowDeliveryAttemptRisk=true, or the connection\'s setting). ' +
  'Backlogs are counted the same way (up to 1,000 per subscription), and not on such subscriptions unless the connection accepts it.';

const PUBLISH_NOTICE =
  "Producing publishes to a topic: headers become attributes (at most 100, names not starting with goog), the record's key becomes the ordering key " +
  '(delivered in order on subscriptions with message ordering on). A topic has one partition. Publishing to a "queue" names the topic in routingKey.';

/** At most this many messages are read by one browse: each is held until the read ends. */
export const BROWSE_MAX = BACKLOG_MAX;

export interface PubsubConnectorOptions {
  /** How often subscriptions' backlogs are sampled into the history (ms; 10 s on an emulator, 60 s on Google Cloud); 0 turns sampling off. */
  sampleIntervalMs?: number;
  /** Parallel pull-publish-acknowledge loops of a re-drive. */
  redriveWorkers?: number;
  /** Messages pulled per request by a re-drive. */
  redriveBatch?: number;
  /**
   * How long a listing or lookup may take, retries included (ms). The client library retries
   * an unreachable server until then: short for an emulator, which answers at once when it runs.
   */
  callTimeoutMs?: number;
}

export class PubsubConnector extends RedriveConnector implements Connector {
  readonly id: string;
  readonly metricsHistory = new MetricsHistory({ metrics: QUEUE_METRICS });
  private readonly clients: PubsubClients | null;
  private readonly target: string;
  private readonly project: string;
  private readonly options: Required<PubsubConnectorOptions>;
  private readonly configError: ApiError | null = null;
  private readOnly: boolean;
  private status: ConnectionStatus = 'connecting';
  private lastError: string | null = null;
  private closed = false;
  private readonly sampler: SampleLoop;
  private readonly samples: QueueSamples;
  /** Credentials loaded before the first call (see ensureCredentials); null until asked, or after a failure. */
  private credentialsReady: Promise<void> | null = null;
  /** Pulls that hold a subscription's messages (a count, a browse), one at a time per subscription. */
  private readonly reading = new Map<string, Promise<unknown>>();

  constructor(
    id: string,
    private readonly config: PubsubConnectionConfig,
    deps: ConnectorDeps,
    options: PubsubConnectorOptions = {},
  ) {
    super(deps, 'ps-');
    this.id = id;
    this.readOnly = config.readOnly;
    this.project = config.projectId;
    this.target = targetOf(config);
    this.options = {
      // Each sample pulls and hands back every subscription's messages: seldom on Google Cloud, where pulls are billed.
      sampleIntervalMs: options.sampleIntervalMs ?? (config.emulatorHost ? 10_000 : 60_000),
      redriveWorkers: options.redriveWorkers ?? 4,
      redriveBatch: options.redriveBatch ?? 250,
      callTimeoutMs: options.callTimeoutMs ?? (config.emulatorHost ? 5_000 : 30_000),
    };
    let clients: PubsubClients | null = null;
    try {
      clients = createClients(config);
    } catch (error) {
      // A key file that cannot be used still gives a connection that says why.
      this.configError = error instanceof ApiError ? error : new ApiError('INVALID_ARGUMENT', (error as Error).message, 'keyFile');
      this.status = 'error';
      this.lastError = this.configError.message;
    }
    this.clients = clients;
    this.samples = new QueueSamples(async () => {
      const queues = await this.readAll();
      const at = Date.now();
      for (const q of queues) {
        if (typeof q.arguments.backlog === 'string' && q.arguments.backlog.startsWith('not counted')) continue;
        this.metricsHistory.record('queue', q.name, { messages: q.messages, ready: q.ready, unacked: q.unacked, delayed: q.delayed }, at);
      }
      return { at, queues };
    });
    this.sampler = new SampleLoop(() => this.samples.sample(), this.options.sampleIntervalMs, 30_000);
    if (clients) this.sampler.start();
  }

  // ---------------------------------------------------------------- connection

  info(): ConnectionInfo {
    return {
      id: this.id,
      kind: 'pubsub',
      name: this.config.name,
      status: this.status,
      readOnly: this.readOnly,
      target: this.target,
      ...(this.lastError ? { error: this.lastError } : {}),
      capabilities: [...CAPABILITIES],
      notices: { peek: PEEK_NOTICE, redrive: REDRIVE_NOTICE, publish: PUBLISH_NOTICE },
    };
  }

  setReadOnly(readOnly: boolean): void {
    this.readOnly = readOnly;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.sampler.stop();
    await this.jobs.cancelAll(5_000);
    this.jobs.dispose();
    await this.samples.settled();
    if (this.clients) await closeClients(this.clients);
  }

  private writable(what: string): void {
    if (this.readOnly) throw new ApiError('FORBIDDEN', `connection "${this.id}" is read-only: turn read-only off to ${what}`, 'connectionId');
  }

  private get c(): PubsubClients {
    if (this.configError || !this.clients) throw this.configError ?? new ApiError('UNAVAILABLE', `connection "${this.id}" has no client`);
    return this.clients;
  }

  private get emulator(): boolean {
    return this.config.emulatorHost !== undefined;
  }

  /** Every call goes through here: its outcome sets the connection's status. */
  private async call<T>(fn: (c: PubsubClients) => Promise<T>, notFound?: { what: string; field: string }): Promise<T> {
    if (this.closed) throw new ApiError('UNAVAILABLE', `connection "${this.id}" is closed`);
    const c = this.c;
    try {
      if (!this.credentialsReady) {
        this.credentialsReady = ensureCredentials(c, this.config).catch((error: unknown) => {
          this.credentialsReady = null;
          throw error;
        });
      }
      await this.credentialsReady;
      const out = await fn(c);
      this.status = 'connected';
      this.lastError = null;
      return out;
    } catch (error) {
      const e = toApiError(error, this.target, this.config, notFound);
      if (e.code === 'UNAVAILABLE' || e.code === 'UNAUTHORIZED' || e.code === 'FORBIDDEN' || (e.code === 'NOT_FOUND' && /^project /.test(e.message))) {
        this.status = 'error';
        this.lastError = e.message;
      }
      throw e;
    }
  }

  private warn(what: string): (error: unknown) => void {
    return (error) => this.deps.logger.warn(what, { connectionId: this.id, error: String((error as Error)?.message ?? error) });
  }

  /**
   * Runs `fn` once no other count or browse of the same subscription holds its messages:
   * two at once would each see only what the other had not pulled (the UI asks for a
   * subscription's count and its first page together).
   */
  private exclusive<T>(path: string, fn: () => Promise<T>): Promise<T> {
    const before = this.reading.get(path) ?? Promise.resolve();
    const run = before.catch(() => {}).then(fn);
    const tail = run.catch(() => {});
    this.reading.set(path, tail);
    void tail.then(() => {
      if (this.reading.get(path) === tail) this.reading.delete(path);
    });
    return run;
  }

  // ---------------------------------------------------------------- listing

  private async allTopics(): Promise<Topic[]> {
    return this.call(async (c) => (await c.publisher.listTopics({ project: `projects/${this.project}` }, { autoPaginate: true, timeout: this.options.callTimeoutMs }))[0]);
  }

  private async allSubscriptions(): Promise<Subscription[]> {
    return this.call(async (c) => (await c.subscriber.listSubscriptions({ project: `projects/${this.project}` }, { autoPaginate: true, timeout: this.options.callTimeoutMs }))[0]);
  }

  private async subscription(name: string, field = 'queue'): Promise<Subscription> {
    return this.call(
      async (c) => (await c.subscriber.getSubscription({ subscription: fullSubscription(this.project, name) }, { timeout: this.options.callTimeoutMs }))[0],
      { what: `subscription "${name}"`, field },
    );
  }

  /** Which subscriptions dead-letter into each topic (full topic path → short subscription names). */
  private deadLetterSources(subs: Subscription[]): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const s of subs) {
      const t = s.deadLetterPolicy?.deadLetterTopic;
      if (!t) continue;
      const list = out.get(t) ?? [];
      list.push(shortName(s.name, this.project));
      out.set(t, list);
    }
    for (const list of out.values()) list.sort();
    return out;
  }

  /** Counts a subscription's backlog by pulling without acknowledging (see subscriptions.ts). */
  private async backlogOf(s: Subscription): Promise<Backlog> {
    const why = uncountable(s, this.config.allowDeliveryAttemptRisk);
    if (why) return { count: 0, capped: false, unknown: why };
    const path = s.name!;
    return this.exclusive(path, async () => {
      const { messages, ackIds } = await this.call((c) => pullUpTo(c.subscriber, path, BACKLOG_MAX, { emulator: this.emulator }));
      await release(this.c.subscriber, path, ackIds, this.warn('counted Pub/Sub messages could not be handed back; they will be after their ack deadline'));
      return { count: messages.length, capped: messages.length >= BACKLOG_MAX, unknown: null };
    });
  }

  private async readAll(): Promise<QueueInfo[]> {
    const subs = await this.allSubscriptions();
    const sources = this.deadLetterSources(subs);
    const backlogs = await mapLimit(subs, 4, async (s) => {
      try {
        return await this.backlogOf(s);
      } catch (error) {
        // Deleted between the listing and the count, or a pull refused: the subscription still shows.
        return { count: 0, capped: false, unknown: `could not be counted: ${(error as Error).message}` };
      }
    });
    const out = subs.map((s, i) => toQueueInfo(s, this.project, backlogs[i]!, sources.get(s.topic ?? '') ?? []));
    return out.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  }

  // ---------------------------------------------------------------- subscriptions as queues

  /** Fresh: a sample already under way began before this call and may miss what the caller just did. */
  async listQueues(): Promise<QueueInfo[]> {
    return this.samples.fresh();
  }

  async getQueue(queue: string): Promise<QueueInfo> {
    const s = await this.subscription(queue);
    const subs = await this.allSubscriptions();
    const backlog = await this.backlogOf(s);
    return toQueueInfo(s, this.project, backlog, this.deadLetterSources(subs).get(s.topic ?? '') ?? []);
  }

  /**
   * Creates a subscription: `arguments.topic` names its topic; ackDeadlineSeconds, filter,
   * enableMessageOrdering, messageRetentionSeconds, deadLetterTopic with maxDeliveryAttempts,
   * and minimumBackoffSeconds/maximumBackoffSeconds (a retry policy) are taken when given.
   */
  async declareQueue(a: Args<'queues/declare'>): Promise<QueueInfo> {
    this.writable('create subscriptions');
    const g = a.arguments as Record<string, unknown>;
    if (typeof g.topic !== 'string' || g.topic === '') throw new ApiError('INVALID_ARGUMENT', 'arguments.topic: name the topic the subscription receives from', 'arguments.topic');
    const num = (k: string) => (g[k] === undefined ? undefined : Number(g[k]));
    const request: Subscription = { name: fullSubscription(this.project, a.queue), topic: fullTopic(this.project, g.topic) };
    if (num('ackDeadlineSeconds') !== undefined) request.ackDeadlineSeconds = num('ackDeadlineSeconds')!;
    if (typeof g.filter === 'string') request.filter = g.filter;
    if (g.enableMessageOrdering !== undefined) request.enableMessageOrdering = g.enableMessageOrdering === true || g.enableMessageOrdering === 'true';
    if (num('messageRetentionSeconds') !== undefined) request.messageRetentionDuration = { seconds: num('messageRetentionSeconds')! };
    if (typeof g.deadLetterTopic === 'string' && g.deadLetterTopic) {
      request.deadLetterPolicy = { deadLetterTopic: fullTopic(this.project, g.deadLetterTopic), maxDeliveryAttempts: num('maxDeliveryAttempts') ?? 5 };
    }
    if (num('minimumBackoffSeconds') !== undefined || num('maximumBackoffSeconds') !== undefined) {
      request.retryPolicy = { minimumBackoff: { seconds: num('minimumBackoffSeconds') ?? 10 }, maximumBackoff: { seconds: num('maximumBackoffSeconds') ?? 600 } };
    }
    await this.call((c) => c.subscriber.createSubscription(request), { what: `subscription "${a.queue}"`, field: 'queue' });
    return this.getQueue(a.queue);
  }

  async deleteQueue(a: Args<'queues/delete'>): Promise<{ messageCount: number }> {
    this.writable('delete subscriptions');
    if (a.ifUnused) throw new ApiError('INVALID_ARGUMENT', 'ifUnused: Pub/Sub does not say whether a subscription has subscribers', 'ifUnused');
    const q = await this.getQueue(a.queue);
    if (a.ifEmpty && q.messages > 0) throw new ApiError('PRECONDITION_FAILED', `subscription "${a.queue}" is not empty (at least ${q.messages} messages)`, 'queue');
    await this.call((c) => c.subscriber.deleteSubscription({ subscription: fullSubscription(this.project, a.queue) }), { what: `subscription "${a.queue}"`, field: 'queue' });
    this.metricsHistory.forget('queue', a.queue);
    return { messageCount: q.messages };
  }

  /** Seeks the subscription to now: every message published before is acknowledged. */
  async purgeQueue(a: Args<'queues/purge'>): Promise<{ messageCount: number }> {
    this.writable('purge subscriptions');
    const q = await this.getQueue(a.queue);
    const now = Date.now();
    await this.call(
      (c) => c.subscriber.seek({ subscription: fullSubscription(this.project, a.queue), time: { seconds: Math.floor(now / 1000), nanos: (now % 1000) * 1e6 } }),
      { what: `subscription "${a.queue}"`, field: 'queue' },
    );
    return { messageCount: q.messages };
  }

  // ---------------------------------------------------------------- reading messages

  /** Refuses a pull that counts delivery attempts toward a dead-letter policy, unless accepted. */
  private deliveryAttemptGuard(s: Subscription, name: string, accepted: boolean | undefined, field = 'allowDeliveryAttemptRisk'): void {
    if (accepted || this.config.allowDeliveryAttemptRisk) return;
    const p = s.deadLetterPolicy;
    if (!p?.deadLetterTopic) return;
    throw new ApiError(
      'PRECONDITION_FAILED',
      `subscription "${name}" has a dead-letter policy: a message delivered ${p.maxDeliveryAttempts || 5} times goes to topic "${shortName(p.deadLetterTopic, this.project)}". ` +
        'Pub/Sub shows a message only by pulling it, and each pull counts as a delivery attempt. Accept that for this read with allowDeliveryAttemptRisk=true ' +
        '("Browse anyway"), or for the whole connection with its allowDeliveryAttemptRisk setting.',
      field,
    );
  }

  private pullable(s: Subscription, name: string): void {
    const why = uncountable(s, true);
    if (why) throw new ApiError('INVALID_ARGUMENT', `subscription "${name}" cannot be read: ${why}`, 'queue');
  }

  /**
   * Pulls up to `position + limit` messages (at most BROWSE_MAX), answers from `position`
   * on, and hands them all back. Pub/Sub delivers in no fixed order (in order per ordering
   * key where the subscription orders), so two reads can differ; there is no cursor.
   */
  async browseQueue(a: Args<'queues/messages'>): Promise<BrowsePage<MessageView>> {
    const filter = compileMessageFilter(a, 'queue');
    const s = await this.subscription(a.queue);
    this.pullable(s, a.queue);
    // The UI's "Peek anyway" sends allowQuorumPeek for any queue whose read has a cost: the same consent.
    this.deliveryAttemptGuard(s, a.queue, a.allowDeliveryAttemptRisk || a.allowQuorumPeek);
    if (a.cursor) throw new ApiError('INVALID_ARGUMENT', `cursor: Pub/Sub subscriptions cannot be paged by cursor; give a position below ${BROWSE_MAX}`, 'cursor');
    const start = a.position ?? 0;
    if (start >= BROWSE_MAX) {
      throw new ApiError('INVALID_ARGUMENT', `position: a Pub/Sub subscription can only be read within its first ${BROWSE_MAX} messages (each read holds them)`, 'position');
    }
    const want = Math.min(start + a.limit, BROWSE_MAX);
    return this.exclusive(s.name!, async () => {
      const { messages, ackIds } = await this.call((c) => pullUpTo(c.subscriber, s.name!, want, { emulator: this.emulator }));
      try {
        const views = messages.map((m, i) => ({ m, v: toView(m, a.queue, i) })).slice(start);
        const matched = views.filter(({ m, v }) => matchesFilter(filter, m, v)).map(({ v }) => v);
        return { messages: matched, nextCursor: null, scanned: views.length, matched: matched.length, complete: messages.length < want };
      } finally {
        await release(this.c.subscriber, s.name!, ackIds, this.warn('browsed Pub/Sub messages could not be handed back; they will be after their ack deadline'));
      }
    });
  }

  /** Pulls messages: `ack` acknowledges them, `requeue` hands them back; Pub/Sub has no reject (a nack is a requeue). */
  async getMessages(a: Args<'queues/getMessages'>): Promise<MessageView[]> {
    if (a.ackMode === 'reject') {
      throw new ApiError('INVALID_ARGUMENT', 'ackMode: Pub/Sub has no reject; a message goes to the dead-letter topic only after maxDeliveryAttempts deliveries', 'ackMode');
    }
    if (a.ackMode === 'ack') this.writable('take messages');
    const s = await this.subscription(a.queue);
    this.pullable(s, a.queue);
    if (a.ackMode === 'requeue') this.deliveryAttemptGuard(s, a.queue, a.allowQuorumPeek, 'allowQuorumPeek');
    return this.exclusive(s.name!, async () => {
      const { messages, ackIds } = await this.call((c) => pullUpTo(c.subscriber, s.name!, a.count, { emulator: this.emulator }));
      const views = messages.map((m, i) => toView(m, a.queue, i));
      if (a.ackMode === 'requeue') await release(this.c.subscriber, s.name!, ackIds, this.warn('Pub/Sub messages could not be handed back'));
      else await this.call((c) => acknowledge(c.subscriber, s.name!, ackIds));
      return views;
    });
  }

  // ---------------------------------------------------------------- topics

  async listTopics(): Promise<TopicInfo[]> {
    const [topics, subs] = await Promise.all([this.allTopics(), this.allSubscriptions()]);
    const byTopic = new Map<string, string[]>();
    for (const s of subs) {
      const list = byTopic.get(s.topic ?? '') ?? [];
      list.push(shortName(s.name, this.project));
      byTopic.set(s.topic ?? '', list);
    }
    const sources = this.deadLetterSources(subs);
    return topics
      .map((t) => toTopicInfo(t, this.project, (byTopic.get(t.name ?? '') ?? []).sort(), sources.get(t.name ?? '') ?? []))
      .sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  }

  async getTopic(topic: string): Promise<TopicInfo> {
    const path = fullTopic(this.project, topic);
    const [t] = await this.call((c) => c.publisher.getTopic({ topic: path }, { timeout: this.options.callTimeoutMs }), { what: `topic "${topic}"`, field: 'topic' });
    const [names] = await this.call((c) => c.publisher.listTopicSubscriptions({ topic: path }, { autoPaginate: true, timeout: this.options.callTimeoutMs }), { what: `topic "${topic}"`, field: 'topic' });
    const subs = await this.allSubscriptions();
    return toTopicInfo(t, this.project, names.map((n) => shortName(n, this.project)).sort(), this.deadLetterSources(subs).get(path) ?? []);
  }

  async createTopic(a: Args<'topics/create'>): Promise<TopicInfo> {
    this.writable('create topics');
    if (a.partitions !== 1) throw new ApiError('INVALID_ARGUMENT', 'partitions: a Pub/Sub topic has no partitions; leave partitions at 1', 'partitions');
    if (a.retentionBytes !== undefined && a.retentionBytes !== -1) throw new ApiError('INVALID_ARGUMENT', 'retentionBytes: Pub/Sub retains by time only (retentionMs)', 'retentionBytes');
    const request: Topic = { name: fullTopic(this.project, a.topic) };
    if (a.retentionMs !== undefined && a.retentionMs > 0) request.messageRetentionDuration = { seconds: Math.floor(a.retentionMs / 1000) };
    if (a.configs && Object.keys(a.configs).length > 0) {
      const labels: Record<string, string> = {};
      for (const [k, v] of Object.entries(a.configs)) {
        if (!k.startsWith('label.')) throw new ApiError('INVALID_ARGUMENT', `configs.${k}: a Pub/Sub topic takes labels only, as label.<name>`, `configs.${k}`);
        labels[k.slice(6)] = v;
      }
      request.labels = labels;
    }
    await this.call((c) => c.publisher.createTopic(request), { what: `topic "${a.topic}"`, field: 'topic' });
    return this.getTopic(a.topic);
  }

  async deleteTopic(a: Args<'topics/delete'>): Promise<void> {
    this.writable('delete topics');
    await this.call((c) => c.publisher.deleteTopic({ topic: fullTopic(this.project, a.topic) }), { what: `topic "${a.topic}"`, field: 'topic' });
  }

  async browseTopic(a: Args<'topics/messages'>): Promise<BrowsePage<never>> {
    const t = await this.getTopic(a.topic);
    const subs = String(t.config.subscriptions ?? '');
    throw new ApiError(
      'INVALID_ARGUMENT',
      `topic: a Pub/Sub topic keeps no messages to read; browse one of its subscriptions${subs ? ` (${subs})` : ' (it has none)'}`,
      'topic',
    );
  }

  /**
   * Publishes `count` copies in requests of up to 1,000 messages and 9 MB. Copies with an ordering
   * key go one request after another (Pub/Sub keeps the order of a key as published);
   * the others several at a time.
   */
  async produce(a: Args<'topics/produce'>, template?: RecordTemplate, control?: PublishControl): Promise<PublishResult> {
    this.writable('publish');
    if (a.partition !== undefined && a.partition !== 0) throw new ApiError('INVALID_ARGUMENT', 'partition: a Pub/Sub topic has one partition (0)', 'partition');
    checkAttributes(a.headers);
    if (!template) throw new ApiError('INTERNAL', 'produce needs the compiled record');
    const path = fullTopic(this.project, a.topic);
    await this.call((c) => c.publisher.getTopic({ topic: path }, { timeout: this.options.callTimeoutMs }), { what: `topic "${a.topic}"`, field: 'topic' });
    const now = Date.now();
    const messageOf = (i: number): PubsubMessage => {
      const copy = template.copy(i, now);
      const m: PubsubMessage = { data: copy.value ?? Buffer.alloc(0), attributes: Object.fromEntries(copy.headers) };
      if (copy.key && copy.key.length > 0) m.orderingKey = copy.key.toString('utf8');
      if ((!copy.value || copy.value.length === 0) && copy.headers.length === 0) {
        throw new ApiError('INVALID_ARGUMENT', 'value: Pub/Sub refuses a message with neither data nor attributes', 'value');
      }
      return m;
    };
    const first = messageOf(0);
    const ordered = first.orderingKey !== undefined;
    // Copies of one produce are alike in size: the first says how many fit in a request.
    const perRequest = Math.max(1, Math.min(PUBLISH_MAX_MESSAGES, Math.floor(PUBLISH_MAX_BYTES / publishSize(first))));
    const batches = Math.ceil(a.count / perRequest);
    const ids: string[][] = new Array(batches);
    let published = 0;
    await mapLimit(
      Array.from({ length: batches }, (_, b) => b),
      ordered ? 1 : 8,
      async (b) => {
        if (control?.signal.aborted) return;
        const from = b * perRequest;
        const messages = Array.from({ length: Math.min(perRequest, a.count - from) }, (_, k) => (from + k === 0 ? first : messageOf(from + k)));
        const [r] = await this.call((c) => c.publisher.publish({ topic: path, messages }, { timeout: 60_000, isBundling: false }), { what: `topic "${a.topic}"`, field: 'topic' });
        ids[b] = r.messageIds ?? [];
        published += ids[b]!.length;
        control?.progress(published, published);
      },
    );
    const positions = ids.flat().map((id) => ({ partition: 0, id: a.topic, position: id }));
    return { published, routed: { [a.topic]: published }, returned: 0, rejected: 0, deduplicated: 0, confirmed: true, positions };
  }

  /** The publish of the queue-shaped form: routingKey names the topic (a subscription cannot be published to). */
  async publish(a: Args<'publish'>): Promise<PublishResult> {
    if (a.exchange !== '') throw new ApiError('INVALID_ARGUMENT', 'exchange: Pub/Sub has no exchanges; leave exchange empty and name the topic in routingKey', 'exchange');
    if (a.routingKey === '') throw new ApiError('INVALID_ARGUMENT', 'routingKey: name the topic to publish to', 'routingKey');
    const topics = await this.allTopics();
    if (!topics.some((t) => t.name === fullTopic(this.project, a.routingKey))) {
      const subs = await this.allSubscriptions();
      const sub = subs.find((s) => s.name === fullSubscription(this.project, a.routingKey));
      throw sub
        ? new ApiError(
            'INVALID_ARGUMENT',
            `routingKey: "${a.routingKey}" is a subscription, which cannot be published to; publish to its topic "${shortName(sub.topic, this.project)}" (every subscription of it receives the message)`,
            'routingKey',
          )
        : new ApiError('NOT_FOUND', `topic "${a.routingKey}" does not exist`, 'routingKey');
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(a.properties.headers ?? {})) headers[k] = typeof v === 'string' ? v : JSON.stringify(v);
    const value = a.bodyEncoding === 'utf8' ? { text: a.body } : { bytes: Buffer.from(a.body, 'base64') };
    const key = a.messageGroupId ?? null;
    const args = { topic: a.routingKey, key, value: a.body, valueEncoding: a.bodyEncoding, headers, count: a.count } as unknown as Args<'topics/produce'>;
    return this.produce(args, compileRecord(key, value, checkAttributes(headers, 'properties.headers')));
  }

  // ---------------------------------------------------------------- dead letters and re-drive

  /** Subscriptions of topics that are some subscription's dead-letter topic. */
  async listDeadLetters(): Promise<DeadLetterQueueInfo[]> {
    const queues = await this.listQueues();
    return queues.filter((q) => q.deadLetterFor.length > 0).map((q) => ({ queue: q.name, count: q.messages, sources: q.deadLetterFor }));
  }

  async startRedrive(a: Args<'redrives/start'>): Promise<{ id: string }> {
    this.writable('re-drive messages');
    if (a.edit) throw new ApiError('INVALID_ARGUMENT', 'edit: Pub/Sub messages cannot be edited on the way; publish an edited copy instead', 'edit');
    if (a.useMoveTask) throw new ApiError('INVALID_ARGUMENT', 'useMoveTask: Pub/Sub has no message-move task (that is SQS)', 'useMoveTask');
    const filter = a.filter ? compileMessageFilter(a.filter, 'queue', 'filter.') : null;
    const source = await this.subscription(a.source, 'source');
    this.pullable(source, a.source);
    const subs = await this.allSubscriptions();
    const sourceSubs = this.deadLetterSources(subs).get(source.topic ?? '') ?? [];
    // Each source subscription's topic: where its dead letters go back to.
    const topicOf = new Map<string, string>();
    for (const s of subs) topicOf.set(shortName(s.name, this.project), s.topic ?? '');
    let targetTopic: string | null = null;
    let label: string;
    if (a.target) {
      if (a.target.exchange !== '') throw new ApiError('INVALID_ARGUMENT', 'target.exchange: Pub/Sub has no exchanges; name the target topic in target.routingKey', 'target.exchange');
      if (a.target.routingKey === '') throw new ApiError('INVALID_ARGUMENT', 'target.routingKey: name the topic to publish to', 'target.routingKey');
      targetTopic = fullTopic(this.project, a.target.routingKey);
      await this.call((c) => c.publisher.getTopic({ topic: targetTopic! }), { what: `topic "${a.target.routingKey}"`, field: 'target.routingKey' });
      label = a.target.routingKey;
    } else {
      const topics = [...new Set(sourceSubs.map((n) => topicOf.get(n) ?? ''))].filter(Boolean);
      if (sourceSubs.length === 0) {
        throw new ApiError('INVALID_ARGUMENT', `target: no subscription dead-letters into "${a.source}"'s topic; name the topic to publish its messages to`, 'target');
      }
      label = topics.length === 1 ? shortName(topics[0], this.project) : "each message's source topic";
    }
    if (targetTopic !== null && targetTopic === source.topic) throw new ApiError('INVALID_ARGUMENT', 'target: the target is the dead-letter topic itself', 'target');
    const partial = (a.messageIds?.length ?? 0) > 0 || filter !== null;
    if (partial) this.deliveryAttemptGuard(source, a.source, a.allowDeliveryAttemptRisk, 'allowDeliveryAttemptRisk');
    let approximateCount = 0;
    if (!a.messageIds?.length) {
      try {
        approximateCount = (await this.backlogOf(source)).count;
      } catch {
        // The job counts what it moves; the total follows.
      }
    }
    const run = new PubsubRedriveRun(
      this.jobs,
      {
        project: this.project,
        source: a.source,
        sourcePath: source.name!,
        target: label,
        targetTopic,
        topicOf,
        defaultTopic: sourceSubs.length === 1 ? (topicOf.get(sourceSubs[0]!) ?? null) : null,
        messageIds: a.all ? null : (a.messageIds ?? null),
        filter,
        ratePerSecond: a.ratePerSecond ?? null,
        approximateCount,
        workers: source.enableMessageOrdering ? 1 : this.options.redriveWorkers,
        batch: this.options.redriveBatch,
        emulator: this.emulator,
        othersReading: () => this.reading.get(source.name!),
      },
      this.c,
      this.id,
      this.deps.logger,
    );
    this.deps.logger.info('re-drive started', { connectionId: this.id, jobId: run.job.id, source: a.source, target: label });
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

export type { PubsubRedriveJob };
