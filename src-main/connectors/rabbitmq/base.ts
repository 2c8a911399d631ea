/**
 * What every part of a RabbitMQ connection shares: the one long-lived AMQP
 * connection (opened on demand, re-opened with back-off), a short-lived
 * channel per operation, the management API client and its error mapping,
 * the queue statistics sampled into the history, and the per-queue lock that
 * keeps two peeks of one queue apart. The operations are in browse.ts (reading
 * messages) and connector.ts (topology, publishing, re-drive, statistics).
 */
import type { Channel, ChannelModel } from 'amqplib';
import { ApiError } from '../../contract/errors.js';
import type { RabbitConnectionConfig } from '../../contract/operations.js';
import type {
  Capability,
  ConnectionInfo,
  ConnectionStatus,
  ConsumerInfo,
  PolicyInfo,
  QueueInfo,
  VhostInfo,
} from '../../contract/types.js';
import { PUBLISH_NOTICE } from './publish.js';
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
  type MgmtExchange,
  type MgmtPolicy,
  type MgmtQueue,
} from './management.js';
import { DEFAULT_LIMITS, PEEK_NOTICE, quorumRefusal, type PeekLimits } from './peek.js';
import { REDRIVE_NOTICE } from './redrive.js';
import { INSECURE_TLS_WARNING } from './test-connection.js';
import { deadLetterSources, deliveryLimit, matchingPolicy, policyDefinition, queueType, toQueueInfo, utilisation, type Topology } from './topology.js';
import { RedriveConnector } from '../redrive-connector.js';
import { QueueSamples, SampleLoop } from '../sample-loop.js';

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

export class RabbitBase extends RedriveConnector {
  readonly id: string;
  readonly metricsHistory = new MetricsHistory({ metrics: QUEUE_METRICS });
  protected readonly config: RabbitConnectionConfig;
  protected readonly r: ResolvedRabbit;
  protected readonly mgmt: ManagementClient;
  protected readonly options: Required<Omit<RabbitConnectorOptions, 'peekLimits'>> & { peekLimits: PeekLimits };
  protected readOnly: boolean;
  protected status: ConnectionStatus = 'connecting';
  protected lastError: string | null = null;
  protected blocked: string | null = null;
  protected model: ChannelModel | null = null;
  protected opening: Promise<ChannelModel> | null = null;
  protected reconnectTimer: NodeJS.Timeout | null = null;
  protected reconnectDelay = 1_000;
  protected closed = false;
  protected serverVersion: string | null = null;
  protected readonly sampler: SampleLoop;
  /** Every queue, sampled on a timer: the history, stats() and the dead-letter sources a page of the list lacks. */
  protected readonly samples: QueueSamples;
  protected topologyCache: (TopologyParts & { at: number }) | null = null;
  protected readonly queueLocks = new Map<string, Promise<unknown>>();

  constructor(id: string, config: RabbitConnectionConfig, deps: ConnectorDeps, options: RabbitConnectorOptions = {}) {
    super(deps, 'rd-');
    this.id = id;
    this.config = config;
    this.r = resolveRabbit(config);
    this.readOnly = config.readOnly;
    this.options = {
      sampleIntervalMs: options.sampleIntervalMs ?? 1_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      managementTimeoutMs: options.managementTimeoutMs ?? 10_000,
      peekLimits: { ...DEFAULT_LIMITS, ...options.peekLimits },
    };
    this.mgmt = new ManagementClient({ ...this.r.management, tls: this.r.tls, timeoutMs: this.options.managementTimeoutMs });
    if (this.r.insecure) deps.logger.warn('TLS certificate verification is off for a RabbitMQ connection', { connectionId: id, target: this.r.target });
    void this.amqp().catch(() => {});
    this.samples = new QueueSamples(async () => {
      const [queues, parts] = await Promise.all([this.mgmtQueues(), this.topologyParts(false)]);
      const at = Date.now();
      this.record(queues, at);
      return { at, queues: this.toQueueInfos(queues, parts) };
    });
    // Backed off for 5 s while the management API is failing.
    this.sampler = new SampleLoop(() => this.samples.sample(), this.options.sampleIntervalMs, 5_000);
    this.sampler.start();
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

  protected writable(what: string): void {
    if (this.readOnly) throw new ApiError('FORBIDDEN', `connection "${this.id}" is read-only: turn read-only off to ${what}`, 'connectionId');
  }

  /** The shared AMQP connection, opened (or re-opened) on demand. */
  protected amqp(): Promise<ChannelModel> {
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

  protected async connect(): Promise<ChannelModel> {
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

  protected scheduleReconnect(): void {
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
    this.sampler.stop();
    this.reconnectTimer = null;
    const model = this.model ?? (this.opening ? await this.opening.catch(() => null) : null);
    this.model = null;
    await closeQuietly(model);
    this.mgmt.close();
  }

  protected get serverMajor(): number {
    const m = /^(\d+)\./.exec(this.serverVersion ?? '');
    return m ? Number(m[1]) : 3;
  }

  protected async withChannel<T>(fn: (ch: Channel) => Promise<T>, notFound?: string): Promise<T> {
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

  protected mgmtError(error: unknown, notFound?: string): ApiError {
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

  protected async api<T>(path: string, notFound?: string): Promise<T> {
    try {
      return await this.mgmt.get<T>(path);
    } catch (error) {
      throw this.mgmtError(error, notFound);
    }
  }

  protected vhostMissing(): string {
    return `vhost "${this.r.vhost}" does not exist`;
  }

  protected queueMissing(queue: string): string {
    return `queue "${queue}" does not exist in vhost "${this.r.vhost}"`;
  }

  protected exchangeMissing(exchange: string): string {
    return `exchange "${exchange}" does not exist in vhost "${this.r.vhost}"`;
  }

  protected async mgmtQueues(columns = QUEUE_COLUMNS): Promise<MgmtQueue[]> {
    return this.api<MgmtQueue[]>(`${apiPath('queues', this.r.vhost)}?columns=${columns}`, this.vhostMissing());
  }

  protected async mgmtQueue(queue: string): Promise<MgmtQueue> {
    try {
      return await this.api<MgmtQueue>(`${apiPath('queues', this.r.vhost, queue)}?columns=${QUEUE_COLUMNS}`, this.queueMissing(queue));
    } catch (error) {
      // In a cluster the management API answers 404 for a classic queue whose node is down; AMQP
      // tells that apart (UNAVAILABLE, naming the node) from a queue that does not exist.
      if (error instanceof ApiError && error.code === 'NOT_FOUND') await this.withChannel((ch) => ch.checkQueue(queue), this.queueMissing(queue));
      throw error;
    }
  }

  protected async topologyParts(fresh: boolean): Promise<TopologyParts> {
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
  protected withCurrentPolicy(q: MgmtQueue, policies: readonly MgmtPolicy[]): MgmtQueue {
    if (q.policy || Object.keys(policyDefinition(q)).length > 0 || policies.length === 0) return q;
    const p = matchingPolicy(q.name, queueType(q), policies);
    return p ? { ...q, policy: p.name, effective_policy_definition: p.definition } : q;
  }

  protected toQueueInfos(queues: MgmtQueue[], parts: TopologyParts): QueueInfo[] {
    const current = queues.map((q) => this.withCurrentPolicy(q, parts.policies));
    const topology: Topology = { queues: current, exchanges: parts.exchanges, bindings: parts.bindings };
    const sources = deadLetterSources(topology);
    return current.map((q) => toQueueInfo(q, sources.get(q.name) ?? [])).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  protected record(queues: MgmtQueue[], at: number): void {
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

  /** A queue as the management API shows it, and as the contract does (with its dead-letter sources). */
  protected async queueDetails(queue: string): Promise<{ raw: MgmtQueue; info: QueueInfo }> {
    const [raw, all, parts] = await Promise.all([
      this.mgmtQueue(queue),
      this.mgmtQueues('name,type,arguments,policy,effective_policy_definition'),
      this.topologyParts(false),
    ]);
    const current = all.map((x) => this.withCurrentPolicy(x, parts.policies));
    const sources = deadLetterSources({ queues: current, exchanges: parts.exchanges, bindings: parts.bindings });
    const info = toQueueInfo(this.withCurrentPolicy(raw, parts.policies), sources.get(raw.name) ?? []);
    // The management API's counts lag the queue by up to its statistics interval (5 s): a message
    // dead-lettered a moment ago is not counted yet. A passive declare answers the ready count and
    // the consumers at once, so a view opened right then shows what is there. (A stream has no such count.)
    if (info.type !== 'stream') {
      const ok = await this.withChannel((ch) => ch.checkQueue(queue)).catch(() => null);
      // Only ever upwards: while a peek holds messages in flight the declare counts them out, and the statistics still in.
      if (ok) {
        info.ready = Math.max(info.ready, ok.messageCount);
        info.messages = Math.max(info.messages, ok.messageCount + info.unacked);
        info.consumers = ok.consumerCount;
      }
    }
    return { raw, info };
  }

  /** Peeks are serialised per queue: two at once would each see only what the other left. */
  protected async exclusive<T>(queue: string, fn: () => Promise<T>): Promise<T> {
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
  protected async deliveryLimitOf(q: MgmtQueue): Promise<number | null> {
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

  protected async quorumGuard(q: MgmtQueue, allowedThisTime: boolean): Promise<void> {
    if (this.config.allowQuorumPeek || allowedThisTime) return;
    const limit = await this.deliveryLimitOf(q);
    if (limit !== null) throw quorumRefusal(q.name, limit);
  }

}
