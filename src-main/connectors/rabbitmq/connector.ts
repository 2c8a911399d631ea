/**
 * An external RabbitMQ as a connection: the same operations the embedded
 * broker answers, over AMQP 0-9-1 (amqplib) for everything that touches
 * messages and the management HTTP API for what AMQP cannot tell (lists,
 * counts, rates, policies, queue types).
 *
 * One long-lived AMQP connection serves the connection's operations, each on a
 * short-lived channel of its own, so a channel error (a 404, a 406) never
 * affects anything else. Each re-drive opens connections of its own.
 */
import type { Channel, ChannelModel } from 'amqplib';
import { ApiError } from '../../contract/errors.js';
import type { RabbitConnectionConfig } from '../../contract/operations.js';
import type {
  AuditEntry,
  BindingInfo,
  BrowsePage,
  Capability,
  ConnectionInfo,
  ConnectionStatus,
  ConsumerInfo,
  DeadLetterQueueInfo,
  ExchangeInfo,
  HistorySeries,
  MessageProperties,
  MessageView,
  PolicyInfo,
  PublishResult,
  QueueInfo,
  RedriveJob,
  StatsSnapshot,
  VhostInfo,
} from '../../contract/types.js';
import type { Args, Connector, PublishControl, Unsubscribe } from '../connector.js';
import { PUBLISH_NOTICE, publishCopies } from './publish.js';
import { checkShortstr } from './names.js';
import { decodeBytes } from '../encoding.js';
import { compileMessage, type MessageTemplate } from '../../ground/placeholders.js';
import { redriveJobs } from '../../jobs/redrives.js';
import { MetricsHistory } from '../../metrics/history.js';
import type { ConnectorDeps } from '../deps.js';
import { classifyOpenError, closeQuietly, openAmqp, openChannel, toApiError } from './amqp.js';
import { resolveRabbit, type ResolvedRabbit } from './config.js';
import {
  apiPath,
  ManagementClient,
  ManagementError,
  QUEUE_COLUMNS,
  type MgmtBinding,
  type MgmtChannel,
  type MgmtConsumer,
  type MgmtExchange,
  type MgmtOverview,
  type MgmtPolicy,
  type MgmtQueue,
  type MgmtVhost,
} from './management.js';
import { compileQueueFilter, IdAssigner, matches, messageKey, toView } from './messages.js';
import { DEFAULT_LIMITS, holdFromHead, PEEK_NOTICE, quorumRefusal, readStream, SCAN_ALL_HOLD_MS, SCAN_ALL_MAX, SCAN_ALL_NOTICE, scanFromHead, type PeekLimits } from './peek.js';
import { REDRIVE_NOTICE, RedriveRun, type RedrivePlan } from './redrive.js';
import { INSECURE_TLS_WARNING } from './test-connection.js';
import { deadLetterSources, deliveryLimit, matchingPolicy, policyDefinition, queueType, toQueueInfo, utilisation, type Topology } from './topology.js';

interface TopologyParts {
  exchanges: MgmtExchange[];
  bindings: MgmtBinding[];
  policies: MgmtPolicy[];
}

export const QUEUE_METRICS = ['messages', 'ready', 'unacked', 'consumers', 'publish', 'deliver', 'ack', 'redeliver', 'utilisation'] as const;

const CAPABILITIES: Capability[] = ['queues', 'exchanges', 'publish', 'redrive', 'get', 'vhosts', 'policies'];

export interface RabbitNotices {
  peek: string;
  redrive: string;
  insecureTls?: string;
  publish: string;
}

export type RabbitConnectionInfo = ConnectionInfo & { notices: RabbitNotices; vhost: string };

export type { ConsumerInfo, PolicyInfo, VhostInfo } from '../../contract/types.js';

export interface RabbitConnectorOptions {
  /** How often queue statistics are sampled into the history (ms); 0 turns sampling off. */
  sampleIntervalMs?: number;
  connectTimeoutMs?: number;
  managementTimeoutMs?: number;
  peekLimits?: Partial<PeekLimits>;
}

const TOPOLOGY_TTL_MS = 5_000;

function rate(x: { rate?: number } | undefined): number {
  return typeof x?.rate === 'number' ? x.rate : 0;
}

export class RabbitConnector implements Connector {
  readonly id: string;
  readonly metricsHistory = new MetricsHistory({ metrics: QUEUE_METRICS });
  private readonly config: RabbitConnectionConfig;
  private readonly deps: ConnectorDeps;
  private readonly r: ResolvedRabbit;
  private readonly mgmt: ManagementClient;
  private readonly options: Required<Omit<RabbitConnectorOptions, 'peekLimits'>> & { peekLimits: PeekLimits };
  private readOnly: boolean;
  private status: ConnectionStatus = 'connecting';
  private lastError: string | null = null;
  private blocked: string | null = null;
  private model: ChannelModel | null = null;
  private opening: Promise<ChannelModel> | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private reconnectDelay = 1_000;
  private closed = false;
  private serverVersion: string | null = null;
  private sampleTimer: NodeJS.Timeout | null = null;
  private sampling: Promise<QueueInfo[]> | null = null;
  private snapshot: { at: number; queues: QueueInfo[] } | null = null;
  private topologyCache: (TopologyParts & { at: number }) | null = null;
  private readonly jobs: ReturnType<typeof redriveJobs>;
  private readonly queueLocks = new Map<string, Promise<unknown>>();

  constructor(id: string, config: RabbitConnectionConfig, deps: ConnectorDeps, options: RabbitConnectorOptions = {}) {
    this.id = id;
    this.config = config;
    this.deps = deps;
    this.r = resolveRabbit(config);
    this.readOnly = config.readOnly;
    this.jobs = redriveJobs({ idPrefix: 'rd-', audit: deps.audit, log: deps.logger });
    this.options = {
      sampleIntervalMs: options.sampleIntervalMs ?? 1_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      managementTimeoutMs: options.managementTimeoutMs ?? 10_000,
      peekLimits: { ...DEFAULT_LIMITS, ...options.peekLimits },
    };
    this.mgmt = new ManagementClient({ ...this.r.management, tls: this.r.tls, timeoutMs: this.options.managementTimeoutMs });
    if (this.r.insecure) deps.logger.warn('TLS certificate verification is off for a RabbitMQ connection', { connectionId: id, target: this.r.target });
    void this.amqp().catch(() => {});
    if (this.options.sampleIntervalMs > 0) this.scheduleSample(0);
  }

  // ---------------------------------------------------------------- connection

  info(): RabbitConnectionInfo {
    const error = this.blocked ? `RabbitMQ is blocking publishers: ${this.blocked}` : this.lastError;
    return {
      id: this.id,
      kind: 'rabbitmq',
      name: this.config.name,
      status: this.status,
      readOnly: this.readOnly,
      target: this.r.target,
      vhost: this.r.vhost,
      ...(error ? { error } : {}),
      capabilities: [...CAPABILITIES],
      notices: {
        peek: PEEK_NOTICE,
        redrive: REDRIVE_NOTICE,
        publish: PUBLISH_NOTICE,
        ...(this.r.insecure ? { insecureTls: INSECURE_TLS_WARNING } : {}),
      },
    };
  }

  setReadOnly(readOnly: boolean): void {
    this.readOnly = readOnly;
  }

  private writable(what: string): void {
    if (this.readOnly) throw new ApiError('FORBIDDEN', `connection "${this.id}" is read-only: turn read-only off to ${what}`, 'connectionId');
  }

  /** The shared AMQP connection, opened (or re-opened) on demand. */
  private amqp(): Promise<ChannelModel> {
    if (this.closed) return Promise.reject(new ApiError('UNAVAILABLE', `connection "${this.id}" is closed`));
    if (this.model) return Promise.resolve(this.model);
    if (!this.opening) {
      this.status = 'connecting';
      this.opening = this.connect().finally(() => {
        this.opening = null;
      });
    }
    return this.opening;
  }

  private async connect(): Promise<ChannelModel> {
    let model: ChannelModel;
    try {
      model = await openAmqp(this.r, { timeoutMs: this.options.connectTimeoutMs, name: `Brokerdeck ${this.config.name}` });
    } catch (error) {
      const c = classifyOpenError(error, this.r);
      this.status = 'error';
      this.lastError = c.message;
      this.deps.logger.warn('RabbitMQ connection failed', { connectionId: this.id, target: this.r.target, problem: c.problem, error: c.message });
      this.scheduleReconnect();
      throw new ApiError('UNAVAILABLE', c.message);
    }
    if (this.closed) {
      await closeQuietly(model);
      throw new ApiError('UNAVAILABLE', `connection "${this.id}" is closed`);
    }
    this.model = model;
    this.status = 'connected';
    this.lastError = null;
    this.blocked = null;
    this.reconnectDelay = 1_000;
    const props = model.connection.serverProperties as unknown as Record<string, unknown>;
    if (typeof props?.version === 'string') this.serverVersion = props.version;
    model.on('blocked', (reason: string) => {
      this.blocked = String(reason);
    });
    model.on('unblocked', () => {
      this.blocked = null;
    });
    model.on('close', (err?: Error) => {
      if (this.model !== model) return;
      this.model = null;
      if (this.closed) return;
      this.status = 'disconnected';
      this.lastError = err ? this.r.scrub(`the connection was closed: ${err.message}`) : 'the connection was closed';
      this.deps.logger.warn('RabbitMQ connection closed', { connectionId: this.id, target: this.r.target, error: this.lastError });
      this.scheduleReconnect();
    });
    return model;
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, 30_000);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closed && !this.model) void this.amqp().catch(() => {});
    }, delay);
    this.reconnectTimer.unref?.();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.jobs.cancelAll(10_000);
    this.closed = true;
    this.status = 'disconnected';
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.sampleTimer) clearTimeout(this.sampleTimer);
    this.reconnectTimer = null;
    this.sampleTimer = null;
    const model = this.model ?? (this.opening ? await this.opening.catch(() => null) : null);
    this.model = null;
    await closeQuietly(model);
    this.mgmt.close();
  }

  private get serverMajor(): number {
    const m = /^(\d+)\./.exec(this.serverVersion ?? '');
    return m ? Number(m[1]) : 3;
  }

  private async withChannel<T>(fn: (ch: Channel) => Promise<T>, notFound?: string): Promise<T> {
    const model = await this.amqp();
    let ch: Channel;
    try {
      ch = await openChannel(model);
    } catch (error) {
      throw toApiError(error, this.r.scrub);
    }
    try {
      return await fn(ch);
    } catch (error) {
      throw toApiError(error, this.r.scrub, notFound);
    } finally {
      await closeQuietly(ch);
    }
  }

  // ---------------------------------------------------------------- management

  private mgmtError(error: unknown, notFound?: string): ApiError {
    if (error instanceof ApiError) return error;
    if (error instanceof ManagementError) {
      const text = this.r.scrub(error.message);
      switch (error.failure) {
        case 'not_found':
          return new ApiError('NOT_FOUND', notFound ?? text);
        case 'auth':
          return new ApiError('FORBIDDEN', `${text} — the management API user needs the "management" (or "monitoring") tag and access to vhost "${this.r.vhost}"`);
        case 'http':
          return new ApiError(error.status && error.status >= 500 ? 'UNAVAILABLE' : 'INVALID_ARGUMENT', text);
        default:
          return new ApiError('UNAVAILABLE', `${text}. Browsing and statistics need the management plugin (rabbitmq-plugins enable rabbitmq_management).`);
      }
    }
    return new ApiError('INTERNAL', this.r.scrub(String((error as Error)?.message ?? error)));
  }

  private async api<T>(path: string, notFound?: string): Promise<T> {
    try {
      return await this.mgmt.get<T>(path);
    } catch (error) {
      throw this.mgmtError(error, notFound);
    }
  }

  private vhostMissing(): string {
    return `vhost "${this.r.vhost}" does not exist`;
  }

  private queueMissing(queue: string): string {
    return `queue "${queue}" does not exist in vhost "${this.r.vhost}"`;
  }

  private exchangeMissing(exchange: string): string {
    return `exchange "${exchange}" does not exist in vhost "${this.r.vhost}"`;
  }

  private async mgmtQueues(columns = QUEUE_COLUMNS): Promise<MgmtQueue[]> {
    return this.api<MgmtQueue[]>(`${apiPath('queues', this.r.vhost)}?columns=${columns}`, this.vhostMissing());
  }

  private async mgmtQueue(queue: string): Promise<MgmtQueue> {
    try {
      return await this.api<MgmtQueue>(`${apiPath('queues', this.r.vhost, queue)}?columns=${QUEUE_COLUMNS}`, this.queueMissing(queue));
    } catch (error) {
      // In a cluster the management API answers 404 for a classic queue whose node is down; AMQP
      // tells that apart (UNAVAILABLE, naming the node) from a queue that does not exist.
      if (error instanceof ApiError && error.code === 'NOT_FOUND') await this.withChannel((ch) => ch.checkQueue(queue), this.queueMissing(queue));
      throw error;
    }
  }

  private async topologyParts(fresh: boolean): Promise<TopologyParts> {
    const cached = this.topologyCache;
    if (!fresh && cached && Date.now() - cached.at < TOPOLOGY_TTL_MS) return cached;
    const [exchanges, bindings, policies] = await Promise.all([
      this.api<MgmtExchange[]>(`${apiPath('exchanges', this.r.vhost)}?columns=name,type,durable,auto_delete,internal,arguments,policy`, this.vhostMissing()),
      this.api<MgmtBinding[]>(apiPath('bindings', this.r.vhost), this.vhostMissing()),
      // Users without the policymaker tag may not list policies; the queues' own view of them then has to do.
      this.mgmt.get<MgmtPolicy[]>(apiPath('policies', this.r.vhost)).catch(() => [] as MgmtPolicy[]),
    ]);
    this.topologyCache = { at: Date.now(), exchanges, bindings, policies };
    return this.topologyCache;
  }

  /**
   * The management API shows a queue's policy only from its next statistics
   * round on; until then the policy list says which one applies, so a policy
   * just created (often the one that sets up dead-lettering) shows at once.
   */
  private withCurrentPolicy(q: MgmtQueue, policies: readonly MgmtPolicy[]): MgmtQueue {
    if (q.policy || Object.keys(policyDefinition(q)).length > 0 || policies.length === 0) return q;
    const p = matchingPolicy(q.name, queueType(q), policies);
    return p ? { ...q, policy: p.name, effective_policy_definition: p.definition } : q;
  }

  private toQueueInfos(queues: MgmtQueue[], parts: TopologyParts): QueueInfo[] {
    const current = queues.map((q) => this.withCurrentPolicy(q, parts.policies));
    const topology: Topology = { queues: current, exchanges: parts.exchanges, bindings: parts.bindings };
    const sources = deadLetterSources(topology);
    return current.map((q) => toQueueInfo(q, sources.get(q.name) ?? [])).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private record(queues: MgmtQueue[], at: number): void {
    for (const q of queues) {
      this.metricsHistory.record(
        'queue',
        q.name,
        {
          messages: q.messages ?? 0,
          ready: q.messages_ready ?? 0,
          unacked: q.messages_unacknowledged ?? 0,
          consumers: q.consumers ?? 0,
          publish: rate(q.message_stats?.publish_details),
          deliver: rate(q.message_stats?.deliver_get_details),
          ack: rate(q.message_stats?.ack_details),
          redeliver: rate(q.message_stats?.redeliver_details),
          utilisation: utilisation(q),
        },
        at,
      );
    }
  }

  /** One sample of every queue: feeds the history and answers stats(). Concurrent callers share it. */
  private sample(): Promise<QueueInfo[]> {
    if (!this.sampling) {
      this.sampling = (async () => {
        const [queues, parts] = await Promise.all([this.mgmtQueues(), this.topologyParts(false)]);
        const at = Date.now();
        this.record(queues, at);
        const infos = this.toQueueInfos(queues, parts);
        this.snapshot = { at, queues: infos };
        return infos;
      })().finally(() => {
        this.sampling = null;
      });
    }
    return this.sampling;
  }

  /**
   * Samples on a timer so charts have history before anyone opens them. The
   * next sample is scheduled only after the previous one finished, spaced
   * out when the server answers slowly (a vhost with thousands of queues)
   * and backed off while the management API is failing.
   */
  private scheduleSample(delay: number): void {
    if (this.closed) return;
    this.sampleTimer = setTimeout(() => {
      const started = Date.now();
      this.sample().then(
        () => this.scheduleSample(Math.max(this.options.sampleIntervalMs - (Date.now() - started), (Date.now() - started) * 2, 50)),
        () => this.scheduleSample(Math.max(5_000, this.options.sampleIntervalMs)),
      );
    }, delay);
    this.sampleTimer.unref?.();
  }

  // ---------------------------------------------------------------- browse

  async listVhosts(): Promise<VhostInfo[]> {
    const vhosts = await this.api<MgmtVhost[]>('/api/vhosts?columns=name,description,messages');
    return vhosts.map((v) => ({ name: v.name, description: v.description ?? '', messages: v.messages ?? 0 }));
  }

  async overview(): Promise<MgmtOverview> {
    return this.api<MgmtOverview>('/api/overview');
  }

  async listPolicies(): Promise<PolicyInfo[]> {
    const policies = await this.api<MgmtPolicy[]>(apiPath('policies', this.r.vhost), this.vhostMissing());
    return policies.map((p) => ({ name: p.name, pattern: p.pattern, applyTo: p['apply-to'], priority: p.priority, definition: p.definition }));
  }

  /** Creates or replaces a policy (PUT /api/policies/{vhost}/{name}); RabbitMQ's refusal (an unknown key, a bad value) comes back as its text. */
  async declarePolicy(a: Args<'policies/declare'>): Promise<PolicyInfo> {
    this.writable('declare policies');
    try {
      new RegExp(a.pattern);
    } catch (error) {
      throw new ApiError('INVALID_ARGUMENT', `pattern is not a regular expression: ${(error as Error).message}`, 'pattern');
    }
    try {
      await this.mgmt.put(apiPath('policies', this.r.vhost, a.name), { pattern: a.pattern, 'apply-to': a.applyTo, priority: a.priority, definition: a.definition });
    } catch (error) {
      const e = this.mgmtError(error, this.vhostMissing());
      throw e.code === 'INVALID_ARGUMENT' ? new ApiError('INVALID_ARGUMENT', e.message, 'definition') : e;
    }
    this.topologyCache = null;
    return { name: a.name, pattern: a.pattern, applyTo: a.applyTo, priority: a.priority, definition: a.definition };
  }

  async deletePolicy(name: string): Promise<void> {
    this.writable('delete policies');
    try {
      await this.mgmt.delete(apiPath('policies', this.r.vhost, name));
    } catch (error) {
      throw this.mgmtError(error, `policy "${name}" does not exist in vhost "${this.r.vhost}"`);
    }
    this.topologyCache = null;
  }

  /** Consumers of this vhost, with their prefetch and their channel's unacked count. */
  async listConsumers(queue?: string): Promise<ConsumerInfo[]> {
    const [consumers, channels] = await Promise.all([
      this.api<MgmtConsumer[]>(apiPath('consumers', this.r.vhost), this.vhostMissing()),
      this.api<MgmtChannel[]>(
        `${apiPath('vhosts', this.r.vhost, 'channels')}?columns=name,prefetch_count,global_prefetch_count,messages_unacknowledged,connection_details.name`,
        this.vhostMissing(),
      ),
    ]);
    const byName = new Map(channels.map((c) => [c.name, c]));
    return consumers
      .filter((c) => queue === undefined || c.queue?.name === queue)
      .map((c) => {
        const ch = byName.get(c.channel_details?.name ?? '');
        return {
          queue: c.queue?.name ?? '',
          consumerTag: c.consumer_tag,
          prefetch: c.prefetch_count ?? 0,
          channelPrefetch: ch?.global_prefetch_count ?? 0,
          ackRequired: c.ack_required ?? true,
          exclusive: c.exclusive ?? false,
          active: c.active ?? true,
          activityStatus: c.activity_status ?? null,
          unacked: ch?.messages_unacknowledged ?? 0,
          channel: c.channel_details?.name ?? '',
          connection: c.channel_details?.connection_name ?? null,
          user: c.channel_details?.user ?? null,
          arguments: c.arguments ?? {},
        };
      });
  }

  async listExchanges(): Promise<ExchangeInfo[]> {
    const { exchanges } = await this.topologyParts(true);
    return exchanges.map(toExchangeInfo);
  }

  /** One exchange, read alone (the management API names the default exchange `amq.default`). */
  async getExchange(exchange: string): Promise<ExchangeInfo> {
    checkShortstr(exchange, 'exchange');
    const path = `${apiPath('exchanges', this.r.vhost, exchange === '' ? 'amq.default' : exchange)}?columns=name,type,durable,auto_delete,internal,arguments`;
    return toExchangeInfo(await this.api<MgmtExchange>(path, this.exchangeMissing(exchange)));
  }

  async declareExchange(a: Args<'exchanges/declare'>): Promise<ExchangeInfo> {
    checkShortstr(a.exchange, 'exchange');
    this.writable('declare exchanges');
    await this.withChannel((ch) =>
      ch.assertExchange(a.exchange, a.type, { durable: a.durable, autoDelete: a.autoDelete, internal: a.internal, arguments: a.arguments }),
    );
    this.topologyCache = null;
    return { name: a.exchange, type: a.type, durable: a.durable, autoDelete: a.autoDelete, internal: a.internal, arguments: a.arguments };
  }

  async deleteExchange(a: Args<'exchanges/delete'>): Promise<void> {
    checkShortstr(a.exchange, 'exchange');
    this.writable('delete exchanges');
    // RabbitMQ deletes a missing exchange without complaint; the user should hear it was not there.
    await this.withChannel((ch) => ch.checkExchange(a.exchange), this.exchangeMissing(a.exchange));
    await this.withChannel((ch) => ch.deleteExchange(a.exchange, { ifUnused: a.ifUnused }), this.exchangeMissing(a.exchange));
    this.topologyCache = null;
  }

  async listBindings(): Promise<BindingInfo[]> {
    const { bindings } = await this.topologyParts(true);
    // The default exchange's bindings (one per queue) are implicit and cannot
    // be changed, so they are left out of the list.
    return bindings
      .filter((b) => b.source !== '')
      .map((b) => ({
        source: b.source,
        destination: b.destination,
        destinationType: b.destination_type,
        routingKey: b.routing_key,
        arguments: b.arguments ?? {},
      }));
  }

  async createBinding(a: Args<'bindings/create'>): Promise<BindingInfo> {
    checkShortstr(a.source, 'source');
    checkShortstr(a.destination, 'destination');
    checkShortstr(a.routingKey, 'routingKey');
    this.writable('create bindings');
    await this.withChannel((ch) =>
      a.destinationType === 'queue'
        ? ch.bindQueue(a.destination, a.source, a.routingKey, a.arguments)
        : ch.bindExchange(a.destination, a.source, a.routingKey, a.arguments),
    );
    this.topologyCache = null;
    return { source: a.source, destination: a.destination, destinationType: a.destinationType, routingKey: a.routingKey, arguments: a.arguments };
  }

  async deleteBinding(a: Args<'bindings/delete'>): Promise<void> {
    checkShortstr(a.source, 'source');
    checkShortstr(a.destination, 'destination');
    checkShortstr(a.routingKey, 'routingKey');
    this.writable('delete bindings');
    const { bindings } = await this.topologyParts(true);
    const exists = bindings.some(
      (b) =>
        b.source === a.source &&
        b.destination === a.destination &&
        b.destination_type === a.destinationType &&
        b.routing_key === a.routingKey &&
        JSON.stringify(b.arguments ?? {}) === JSON.stringify(a.arguments),
    );
    if (!exists) {
      throw new ApiError(
        'NOT_FOUND',
        `no binding from exchange "${a.source}" to ${a.destinationType} "${a.destination}" with routing key "${a.routingKey}" in vhost "${this.r.vhost}"`,
      );
    }
    await this.withChannel((ch) =>
      a.destinationType === 'queue'
        ? ch.unbindQueue(a.destination, a.source, a.routingKey, a.arguments)
        : ch.unbindExchange(a.destination, a.source, a.routingKey, a.arguments),
    );
    this.topologyCache = null;
  }

  async listQueues(): Promise<QueueInfo[]> {
    const [queues, parts] = await Promise.all([this.mgmtQueues(), this.topologyParts(true)]);
    const at = Date.now();
    const infos = this.toQueueInfos(queues, parts);
    this.snapshot = { at, queues: infos };
    return infos;
  }

  /**
   * One page of the queues, by name, from the management API's paginated list
   * with only the columns shown: one request, so a vhost of thousands of queues
   * shows its first rows long before the whole list (which also needs every
   * binding) arrives. The management API orders pages by name itself; asking it
   * to sort costs more than the page. Dead-letter sources can be on any page:
   * they come from the last full sample when there is one, and the whole list
   * (`queues/list` without paging) has them all.
   */
  async listQueuesPage(page: number, pageSize: number): Promise<QueueInfo[]> {
    const path = `${apiPath('queues', this.r.vhost)}?page=${page}&page_size=${pageSize}&columns=${QUEUE_COLUMNS}`;
    const answer = await this.api<{ items?: MgmtQueue[] }>(path, this.vhostMissing()).catch((error: unknown) => {
      // A page past the last is an HTTP 400 "Page out of range": as a list, it is empty.
      if (error instanceof ApiError && /page out of range/i.test(error.message)) return { items: [] };
      throw error;
    });
    const known = new Map((this.snapshot?.queues ?? []).map((q) => [q.name, q.deadLetterFor]));
    const policies = this.topologyCache?.policies ?? [];
    return (answer.items ?? [])
      .map((q) => toQueueInfo(this.withCurrentPolicy(q, policies), known.get(q.name) ?? []))
      .sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  }

  async getQueue(queue: string): Promise<QueueInfo> {
    checkShortstr(queue, 'queue');
    return (await this.queueDetails(queue)).info;
  }

  /** A queue as the management API shows it, and as the contract does (with its dead-letter sources). */
  private async queueDetails(queue: string): Promise<{ raw: MgmtQueue; info: QueueInfo }> {
    const [raw, all, parts] = await Promise.all([
      this.mgmtQueue(queue),
      this.mgmtQueues('name,type,arguments,policy,effective_policy_definition'),
      this.topologyParts(false),
    ]);
    const current = all.map((x) => this.withCurrentPolicy(x, parts.policies));
    const sources = deadLetterSources({ queues: current, exchanges: parts.exchanges, bindings: parts.bindings });
    return { raw, info: toQueueInfo(this.withCurrentPolicy(raw, parts.policies), sources.get(raw.name) ?? []) };
  }

  async declareQueue(a: Args<'queues/declare'>): Promise<QueueInfo> {
    checkShortstr(a.queue, 'queue');
    this.writable('declare queues');
    const ok = await this.withChannel((ch) =>
      ch.assertQueue(a.queue, { durable: a.durable, exclusive: a.exclusive, autoDelete: a.autoDelete, arguments: a.arguments }),
    );
    try {
      return await this.getQueue(a.queue);
    } catch {
      // The management API can lag a declaration by a moment; the declare answer is enough to show.
      return toQueueInfo(
        {
          name: ok.queue,
          durable: a.durable,
          auto_delete: a.autoDelete,
          exclusive: a.exclusive,
          arguments: a.arguments,
          messages: ok.messageCount,
          messages_ready: ok.messageCount,
          consumers: ok.consumerCount,
        },
        [],
      );
    }
  }

  async deleteQueue(a: Args<'queues/delete'>): Promise<{ messageCount: number }> {
    checkShortstr(a.queue, 'queue');
    this.writable('delete queues');
    const notFound = this.queueMissing(a.queue);
    await this.withChannel((ch) => ch.checkQueue(a.queue), notFound);
    const ok = await this.withChannel((ch) => ch.deleteQueue(a.queue, { ifUnused: a.ifUnused, ifEmpty: a.ifEmpty }), notFound);
    this.metricsHistory.forget('queue', a.queue);
    return { messageCount: ok.messageCount };
  }

  async purgeQueue(a: Args<'queues/purge'>): Promise<{ messageCount: number }> {
    checkShortstr(a.queue, 'queue');
    this.writable('purge queues');
    const ok = await this.withChannel((ch) => ch.purgeQueue(a.queue), this.queueMissing(a.queue));
    return { messageCount: ok.messageCount };
  }

  /** Peeks are serialised per queue: two at once would each see only what the other left. */
  private async exclusive<T>(queue: string, fn: () => Promise<T>): Promise<T> {
    const before = this.queueLocks.get(queue) ?? Promise.resolve();
    const mine = before.then(fn, fn);
    const tail = mine.catch(() => {});
    this.queueLocks.set(queue, tail);
    try {
      return await mine;
    } finally {
      if (this.queueLocks.get(queue) === tail) this.queueLocks.delete(queue);
    }
  }

  /**
   * A quorum queue's delivery limit from its arguments, the policy the
   * management API reports and the policy list itself (which is current even
   * when the queue's statistics are not yet).
   */
  private async deliveryLimitOf(q: MgmtQueue): Promise<number | null> {
    if (queueType(q) !== 'quorum') return null;
    const lists = await Promise.all(
      ['policies', 'operator-policies'].map((kind) =>
        // Users without the policymaker tag may not read policies: the queue's own view then has to do.
        this.mgmt.get<MgmtPolicy[]>(apiPath(kind, this.r.vhost)).catch(() => [] as MgmtPolicy[]),
      ),
    );
    const matched = lists.map((list) => matchingPolicy(q.name, 'quorum', list)).filter((p): p is MgmtPolicy => p !== null);
    return deliveryLimit(q, this.serverMajor, matched.map((p) => p.definition));
  }

  private async quorumGuard(q: MgmtQueue, allowedThisTime: boolean): Promise<void> {
    if (this.config.allowQuorumPeek || allowedThisTime) return;
    const limit = await this.deliveryLimitOf(q);
    if (limit !== null) throw quorumRefusal(q.name, limit);
  }

  /**
   * Classic and quorum queues: the first messages of the queue (at most
   * PEEK_MAX_MESSAGES; `cursor`/`position` page inside that window). Streams:
   * from `cursor` (an offset) or `position`, else from the first offset.
   * Filters apply to the messages read: `scanned` is how many were read,
   * `matched` how many passed.
   */
  async browseQueue(a: Args<'queues/messages'>): Promise<BrowsePage<MessageView>> {
    checkShortstr(a.queue, 'queue');
    compileQueueFilter(a);
    const q = await this.mgmtQueue(a.queue);
    const type = queueType(q);
    const model = await this.amqp();
    const notFound = this.queueMissing(a.queue);
    const limits = this.options.peekLimits;
    const startAt = (): number => {
      if (a.cursor !== undefined && a.cursor !== '') {
        if (!/^\d+$/.test(a.cursor)) throw new ApiError('INVALID_ARGUMENT', 'cursor must be the value of nextCursor from a previous page', 'cursor');
        return Number(a.cursor);
      }
      return a.position ?? 0;
    };

    if (type === 'stream') {
      const start = a.cursor || a.position !== undefined ? startAt() : 'first';
      const read = await readStream(model, a.queue, start, a.limit, limits, this.r.scrub, notFound);
      const ids = new IdAssigner();
      const views = read.messages.map(({ offset, message }) =>
        toView(message, { id: ids.next(messageKey(message.properties.messageId, message.content)), position: offset }),
      );
      const matched = views.filter((v) => matches(v, a));
      const full = read.messages.length >= Math.min(a.limit, limits.maxMessages);
      return { messages: matched, nextCursor: full ? String(read.next) : null, scanned: views.length, matched: matched.length };
    }

    if (type === 'quorum') await this.quorumGuard(q, a.allowQuorumPeek);
    const start = startAt();
    if (a.scanAll) return this.scanQueue(a, start, type === 'quorum');
    const reachable = limits.maxMessages;
    if (start >= limits.maxMessages) {
      throw new ApiError(
        'INVALID_ARGUMENT',
        `a ${type} queue can only be peeked within its first ${limits.maxMessages} messages (RabbitMQ has no way to read further without taking them); ` +
          'scanAll=true reads further, taking and handing back every message up to where it stops',
        'cursor',
      );
    }
    const want = Math.min(start + a.limit, limits.maxMessages);
    return this.exclusive(a.queue, async () => {
      const held = await holdFromHead(model, a.queue, want, limits, this.r.scrub, notFound);
      try {
        const ids = new IdAssigner();
        const all = held.messages.map((m, i) => toView(m, { id: ids.next(messageKey(m.properties.messageId, m.content)), position: i }));
        const window = all.slice(start);
        const matched = window.filter((v) => matches(v, a));
        const more = held.messages.length === want && held.more && want < limits.maxMessages;
        const total = held.messages.length > 0 ? held.depth : (q.messages_ready ?? 0);
        // The end of the queue was reached only when nothing followed the last message read.
        const complete = held.messages.length === 0 || !held.more;
        return { messages: matched, nextCursor: more ? String(want) : null, scanned: window.length, matched: matched.length, total, complete, reachable };
      } finally {
        // Only a quorum queue takes returns back asynchronously enough to be worth waiting for.
        await held.release(type === 'quorum');
      }
    });
  }

  /**
   * A browse past the first 1,000 messages (`scanAll`): reads from the head with a
   * consumer that never acks, keeps only the matches (up to `limit`) and hands
   * everything back at the end. The cursor is a position from the head.
   */
  private async scanQueue(a: Args<'queues/messages'>, start: number, quorum: boolean): Promise<BrowsePage<MessageView>> {
    const model = await this.amqp();
    const maxRead = start + (a.scanLimit ?? SCAN_ALL_MAX);
    return this.exclusive(a.queue, async () => {
      const ids = new IdAssigner();
      const found: MessageView[] = [];
      let scanned = 0;
      let last = start - 1;
      const r = await scanFromHead(
        model,
        a.queue,
        {
          skip: start,
          maxRead,
          maxHoldMs: SCAN_ALL_HOLD_MS,
          visit: (m, position) => {
            scanned++;
            last = position;
            const v = toView(m, { id: ids.next(messageKey(m.properties.messageId, m.content)), position });
            if (matches(v, a)) found.push(v);
            return found.length < a.limit;
          },
        },
        this.r.scrub,
        this.queueMissing(a.queue),
        quorum,
      );
      const complete = r.reachedEnd;
      return {
        messages: found,
        nextCursor: complete ? null : String(last + 1),
        scanned,
        matched: found.length,
        total: r.depth,
        complete,
        reachable: r.depth,
        cost: SCAN_ALL_NOTICE,
      };
    });
  }

  /** The management UI's "Get messages": ack removes them, reject dead-letters (or drops) them, requeue hands them back. */
  async getMessages(a: Args<'queues/getMessages'>): Promise<MessageView[]> {
    checkShortstr(a.queue, 'queue');
    if (a.ackMode !== 'requeue') this.writable(a.ackMode === 'ack' ? 'take messages' : 'reject messages');
    const q = await this.mgmtQueue(a.queue);
    const type = queueType(q);
    if (type === 'stream') {
      throw new ApiError('PRECONDITION_FAILED', `queue "${a.queue}" is a stream: its messages are read by offset and never removed; browse it instead`, 'queue');
    }
    if (type === 'quorum' && a.ackMode === 'requeue') await this.quorumGuard(q, a.allowQuorumPeek);
    const model = await this.amqp();
    const limits = { ...this.options.peekLimits, maxMessages: Math.max(this.options.peekLimits.maxMessages, 10_000) };
    return this.exclusive(a.queue, async () => {
      const held = await holdFromHead(model, a.queue, a.count, limits, this.r.scrub, this.queueMissing(a.queue));
      try {
        const ids = new IdAssigner();
        const views = held.messages.map((m, i) => toView(m, { id: ids.next(messageKey(m.properties.messageId, m.content)), position: i }));
        for (const m of held.messages) {
          if (a.ackMode === 'ack') held.channel.ack(m);
          else if (a.ackMode === 'reject') held.channel.nack(m, false, false);
        }
        return views;
      } finally {
        await held.release(a.ackMode === 'requeue' && type === 'quorum');
      }
    });
  }

  // ---------------------------------------------------------------- publish

  async publish(a: Args<'publish'>, given?: MessageTemplate<MessageProperties>, control?: PublishControl): Promise<PublishResult> {
    checkShortstr(a.exchange, 'exchange');
    checkShortstr(a.routingKey, 'routingKey');
    this.writable('publish');
    let template = given;
    if (!template) {
      let body: Buffer;
      try {
        body = decodeBytes(a.body, a.bodyEncoding);
      } catch (error) {
        throw new ApiError('INVALID_ARGUMENT', (error as Error).message, 'body');
      }
      template = compileMessage(body, a.properties);
    }
    const model = await this.amqp();
    return publishCopies({ model, scrub: this.r.scrub, exchangeMissing: a.exchange === '' ? undefined : this.exchangeMissing(a.exchange) }, a, template, control);
  }

  // ---------------------------------------------------------------- dead letters and re-drive

  async listDeadLetters(): Promise<DeadLetterQueueInfo[]> {
    const queues = await this.listQueues();
    return queues.filter((q) => q.deadLetterFor.length > 0).map((q) => ({ queue: q.name, count: q.messages, sources: q.deadLetterFor }));
  }

  async startRedrive(a: Args<'redrives/start'>): Promise<{ id: string }> {
    checkShortstr(a.source, 'source');
    this.writable('re-drive messages');
    if (a.filter) compileQueueFilter(a.filter, 'filter.');
    const { raw: q, info: source } = await this.queueDetails(a.source);
    if (source.type === 'stream') {
      throw new ApiError(
        'PRECONDITION_FAILED',
        `queue "${a.source}" is a stream: its messages cannot be acked away, so a re-drive could only copy them; publish copies instead`,
        'source',
      );
    }
    const keepsBack = (a.messageIds !== undefined && a.messageIds.length > 0) || a.filter !== undefined;
    const limit = keepsBack && !this.config.allowQuorumPeek ? await this.deliveryLimitOf(q) : null;
    if (limit !== null) {
      throw new ApiError(
        'PRECONDITION_FAILED',
        `queue "${a.source}" is a quorum queue with a delivery limit of ${limit}: re-driving a selection reads past the other messages and hands them back, ` +
          'which counts as a delivery attempt and can dead-letter or drop them. Re-drive all messages, or turn on "allow quorum peek" for this connection.',
        'source',
      );
    }
    if (a.target && a.target.exchange !== '') {
      await this.withChannel((ch) => ch.checkExchange(a.target!.exchange), this.exchangeMissing(a.target.exchange));
    } else if (a.target) {
      // Through the default exchange the routing key names the queue: one that does not exist would take nothing.
      const queue = a.target.routingKey;
      await this.withChannel((ch) => ch.checkQueue(queue), `re-drive target: ${this.queueMissing(queue)}`).catch((error: unknown) => {
        throw error instanceof ApiError && error.code === 'NOT_FOUND' ? new ApiError('NOT_FOUND', error.message, 'target.routingKey') : error;
      });
    }
    const plan: RedrivePlan = {
      source: a.source,
      target: a.target ? { exchange: a.target.exchange, routingKey: a.target.routingKey } : null,
      messageIds: a.all ? null : (a.messageIds ?? null),
      filter: a.filter ?? null,
      edit: a.edit ?? null,
      ratePerSecond: a.ratePerSecond ?? null,
      deadLetterSources: source.deadLetterFor,
      averageMessageBytes: q.messages && q.message_bytes ? q.message_bytes / q.messages : null,
    };
    const run = new RedriveRun(this.jobs, plan, {
      connectionId: this.id,
      username: this.r.username,
      openConnection: (name) => openAmqp(this.r, { timeoutMs: this.options.connectTimeoutMs, name, bulk: true }),
      scrub: this.r.scrub,
      logger: this.deps.logger,
    });
    this.deps.logger.info('re-drive started', { connectionId: this.id, jobId: run.job.id, source: a.source, target: run.job.target });
    return { id: run.job.id };
  }

  async getRedrive(id: string): Promise<RedriveJob | null> {
    return this.jobs.get(id);
  }

  /** Asks the job to stop and waits (briefly) for it to hand back what it holds, so the answer shows the final state. */
  async cancelRedrive(id: string): Promise<RedriveJob | null> {
    if (!this.jobs.cancel(id)) return null;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.jobs.settled(id), new Promise((r) => (timer = setTimeout(r, 5_000)))]);
    clearTimeout(timer);
    return this.jobs.get(id);
  }

  async listRedrives(): Promise<RedriveJob[]> {
    return this.jobs.list();
  }

  /** Waits for a job to end (tests and the CLI use it; the UI follows onRedrive). */
  async waitForRedrive(id: string): Promise<RedriveJob | null> {
    return this.jobs.settled(id);
  }

  async listAudit(limit: number): Promise<AuditEntry[]> {
    return this.deps.audit.list(this.id, limit);
  }

  onRedrive(listener: (job: RedriveJob) => void): Unsubscribe {
    return this.jobs.subscribe(listener);
  }

  // ---------------------------------------------------------------- statistics

  async stats(): Promise<StatsSnapshot> {
    const s = this.snapshot;
    if (s && Date.now() - s.at < 900) return { connectionId: this.id, at: s.at, queues: s.queues, groups: [] };
    const queues = await this.sample();
    return { connectionId: this.id, at: this.snapshot?.at ?? Date.now(), queues, groups: [] };
  }

  async history(a: Args<'metrics/history'>): Promise<HistorySeries> {
    // RabbitMQ has no consumer groups: their series is empty rather than an error.
    return this.metricsHistory.series(a.kind, a.name, a.range);
  }
}

function toExchangeInfo(e: MgmtExchange): ExchangeInfo {
  return { name: e.name, type: e.type, durable: e.durable ?? true, autoDelete: e.auto_delete ?? false, internal: e.internal ?? false, arguments: e.arguments ?? {} };
}
