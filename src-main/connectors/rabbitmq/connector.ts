/**
 * An external RabbitMQ as a connection: the same operations the embedded
 * broker answers, over AMQP 0-9-1 (amqplib) for everything that touches
 * messages and the management HTTP API for what AMQP cannot tell (lists,
 * counts, rates, policies, queue types).
 *
 * One long-lived AMQP connection serves the connection's operations, each on a
 * short-lived channel of its own, so a channel error (a 404, a 406) never
 * affects anything else. Each re-drive opens connections of its own. The
 * shared plumbing is in base.ts, reading messages in browse.ts, publishing in
 * publish.ts; this class adds topology, declarations, re-drive and statistics.
 */
import { ApiError } from '../../contract/errors.js';
import type {
  BindingInfo,
  ConsumerInfo,
  DeadLetterQueueInfo,
  ExchangeInfo,
  HistorySeries,
  MessageProperties,
  PolicyInfo,
  PublishResult,
  QueueInfo,
  StatsSnapshot,
  VhostInfo,
} from '../../contract/types.js';
import type { Args, Connector, PublishControl } from '../connector.js';
import { publishCopies } from './publish.js';
import { checkShortstr } from './names.js';
import { decodeBytes } from '../encoding.js';
import { compileMessage, type MessageTemplate } from '../../ground/placeholders.js';
import { openAmqp } from './amqp.js';
import {
  apiPath,
  QUEUE_COLUMNS,
  type MgmtChannel,
  type MgmtConsumer,
  type MgmtExchange,
  type MgmtOverview,
  type MgmtPolicy,
  type MgmtQueue,
  type MgmtVhost,
} from './management.js';
import { compileQueueFilter } from './messages.js';
import { closeOpened, openRedriveConnections, RedriveRun, type RedriveConnections, type RedrivePlan } from './redrive.js';
import { deadLetterSources, toQueueInfo } from './topology.js';
import { RabbitBrowse } from './browse.js';
export { QUEUE_METRICS, type RabbitConnectionInfo, type RabbitConnectorOptions, type RabbitNotices } from './base.js';
export type { ConsumerInfo, PolicyInfo, VhostInfo } from '../../contract/types.js';

export class RabbitConnector extends RabbitBrowse implements Connector {
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
    this.samples.remember(at, infos);
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
    const known = new Map((this.samples.snapshot?.queues ?? []).map((q) => [q.name, q.deadLetterFor]));
    const policies = this.topologyCache?.policies ?? [];
    return (answer.items ?? [])
      .map((q) => toQueueInfo(this.withCurrentPolicy(q, policies), known.get(q.name) ?? []))
      .sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  }

  async getQueue(queue: string): Promise<QueueInfo> {
    checkShortstr(queue, 'queue');
    return (await this.queueDetails(queue)).info;
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
    // The job's own connections open beside the checks below (each handshake is several round
    // trips, the checks are management API calls); when a check fails they are closed again.
    const id = this.jobs.newId();
    const opening = openRedriveConnections(id, (name) => openAmqp(this.r, { timeoutMs: this.options.connectTimeoutMs, name, bulk: true }));
    try {
      return await this.planRedrive(a, id, opening);
    } catch (error) {
      // Closed before the error is given, so nothing of the job is left open.
      await closeOpened(opening);
      throw error;
    }
  }

  private async planRedrive(a: Args<'redrives/start'>, id: string, opening: RedriveConnections): Promise<{ id: string }> {
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
      id,
      connections: opening,
      connectionId: this.id,
      username: this.r.username,
      scrub: this.r.scrub,
      logger: this.deps.logger,
    });
    this.deps.logger.info('re-drive started', { connectionId: this.id, jobId: run.job.id, source: a.source, target: run.job.target });
    return { id: run.job.id };
  }

  // ---------------------------------------------------------------- statistics

  async stats(): Promise<StatsSnapshot> {
    return this.samples.stats(this.id);
  }

  async history(a: Args<'metrics/history'>): Promise<HistorySeries> {
    // RabbitMQ has no consumer groups: their series is empty rather than an error.
    return this.metricsHistory.series(a.kind, a.name, a.range);
  }
}

function toExchangeInfo(e: MgmtExchange): ExchangeInfo {
  return { name: e.name, type: e.type, durable: e.durable ?? true, autoDelete: e.auto_delete ?? false, internal: e.internal ?? false, arguments: e.arguments ?? {} };
}
