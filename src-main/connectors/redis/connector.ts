/**
 * Redis as a connection: streams as topics (one partition each) with their
 * consumer groups, lag and pending entries; lists used as queues; Pub/Sub
 * channels as `channel:<name>` topics; dead letters (pending entries delivered
 * too often, dead-letter streams, processing lists) and their re-drive. Lengths
 * and lags are sampled into the metrics history for the charts.
 *
 * One ioredis client (a Cluster in cluster mode) serves every call; a live tail
 * holds a connection of its own. Keys are found with SCAN … TYPE, never KEYS,
 * and the lists of keys are kept for KEYS_TTL_MS between samples.
 */
import { Cluster, Redis } from 'ioredis';
import { ApiError } from '../../contract/errors.js';
import type { RedisConnectionConfig } from '../../contract/operations.js';
import type {
  BrowsePage,
  Capability,
  ConnectionInfo,
  ConnectionStatus,
  DeadLetterQueueInfo,
  GroupInfo,
  GroupOffsetsPreview,
  HistorySeries,
  MessageView,
  PublishResult,
  QueueInfo,
  RecordView,
  StatsSnapshot,
  TopicInfo,
} from '../../contract/types.js';
import { compileMessageFilter } from '../../ground/filter.js';
import { compileMessage, compileRecord, type MessageTemplate, type RecordTemplate } from '../../ground/placeholders.js';
import { MetricsHistory } from '../../metrics/history.js';
import type { MessageProperties } from '../../contract/types.js';
import type { Args, Connector, PublishControl, Unsubscribe } from '../connector.js';
import type { ConnectorDeps } from '../deps.js';
import { classify, createClient, scanKeys, targetOf, toApiError, type RedisClient } from './client.js';
import { deadPending, deathHeader, naming, originOf, streamEntryDeath, threshold, type Naming } from './deadletters.js';
import { Groups, type RedisGroupInfo, type SetIdPlan } from './groups.js';
import { browseList, listQueueInfo } from './lists.js';
import { channelInfo, channelOf, isChannelTopic, listChannels, publish as publishChannel, tailChannel } from './pubsub.js';
import { entryMessage, toEntry, type RawEntry } from './records.js';
import { defineScripts, REDRIVE_NOTICE, RedisRedriveRun, type RedisRedriveJob } from './redrive.js';
import { BROWSE_BUDGET_MS, Streams, topicInfo, type StreamFacts } from './streams.js';
import { RedriveConnector } from '../redrive-connector.js';

const CAPABILITIES: Capability[] = ['topics', 'groups', 'queues', 'publish', 'redrive', 'positions'];
const METRICS = ['messages', 'ready', 'unacked', 'delayed', 'lag', 'timeLagMs', 'pending'] as const;
const KEYS_TTL_MS = 10_000;
const MAX_KEYS = 10_000;

export const BROWSE_NOTICE =
  'Browsing reads with XRANGE and LRANGE: nothing is consumed, acknowledged or popped, and no consumer group moves. ' +
  'A stream entry with a field named value, data, body or payload shows that field as its value and the others as headers; otherwise its value is the JSON object of its fields.';
export const PUBLISH_NOTICE =
  'A stream gets one entry per copy (XADD): the value in a field named value, the key in key, each header in a field of its name. ' +
  'A list gets the body with LPUSH (consumers take from the other end). A channel:<name> topic is published to with PUBLISH.';

export interface RedisConnectorOptions {
  /** How often lengths and lags are sampled into the history (ms); 0 turns sampling off. */
  sampleIntervalMs?: number;
  browseBudgetMs?: number;
}

export class RedisConnector extends RedriveConnector implements Connector {
  readonly id: string;
  readonly client: RedisClient;
  private readonly target: string;
  private readonly streams: Streams;
  private readonly groups: Groups;
  private readonly naming: Naming;
  private readonly metrics = new MetricsHistory({ metrics: METRICS });
  private readonly options: Required<RedisConnectorOptions>;
  private readonly tails = new Set<() => void>();
  private readOnly: boolean;
  private status: ConnectionStatus = 'connecting';
  private lastError: string | undefined;
  private closed = false;
  private connecting: Promise<void> | null = null;
  /** The connection's last error event: a refused login shows there, while the command itself only sees a closed connection. */
  private clientError: { at: number; error: unknown } | null = null;
  private readonly configError: ApiError | null = null;
  private keyCache = new Map<string, { at: number; keys: string[] }>();
  private sampler: NodeJS.Timeout | null = null;
  private sampling: Promise<StatsSnapshot> | null = null;
  private lastStats: StatsSnapshot | null = null;

  constructor(
    id: string,
    private readonly config: RedisConnectionConfig,
    deps: ConnectorDeps,
    options: RedisConnectorOptions = {},
  ) {
    super(deps, 'rr-');
    this.id = id;
    this.readOnly = config.readOnly;
    this.target = targetOf(config);
    this.options = { sampleIntervalMs: options.sampleIntervalMs ?? 2_000, browseBudgetMs: options.browseBudgetMs ?? BROWSE_BUDGET_MS };
    let client: RedisClient;
    try {
      client = createClient(config);
    } catch (error) {
      // A configuration that cannot be used (a URL whose path is no database number) still gives a
      // connection that says why; its placeholder client is never connected (op() refuses first).
      this.configError = error instanceof ApiError ? error : new ApiError('INVALID_ARGUMENT', String((error as Error).message), 'url');
      this.status = 'error';
      this.lastError = this.configError.message;
      client = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null });
    }
    this.client = client;
    defineScripts(this.client);
    this.client.on('error', (error: unknown) => {
      this.clientError = { at: Date.now(), error };
      const c = classify(error, this.target);
      if (this.status !== 'error' || this.lastError !== c.message) this.deps.logger.warn('Redis connection error', { connectionId: this.id, error: c.message });
      this.status = 'error';
      this.lastError = c.message;
    });
    this.client.on('ready', () => {
      this.status = 'connected';
      this.lastError = undefined;
    });
    this.streams = new Streams(this.client);
    this.groups = new Groups(this.client);
    this.naming = naming(config.deadLetterPattern);
    if (this.options.sampleIntervalMs > 0 && !this.configError) this.scheduleSample(0, 0);
  }

  info(): ConnectionInfo {
    return {
      id: this.id,
      kind: 'redis',
      name: this.config.name,
      status: this.status,
      readOnly: this.readOnly,
      target: this.target,
      ...(this.lastError ? { error: this.lastError } : {}),
      capabilities: [...CAPABILITIES],
      notices: { redrive: REDRIVE_NOTICE, peek: BROWSE_NOTICE, publish: PUBLISH_NOTICE },
    };
  }

  setReadOnly(readOnly: boolean): void {
    this.readOnly = readOnly;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sampler) clearTimeout(this.sampler);
    for (const stop of [...this.tails]) stop();
    await this.jobs.cancelAll(5_000);
    this.jobs.dispose();
    this.client.disconnect();
    this.status = 'disconnected';
  }

  private writable(what: string): void {
    if (this.readOnly) throw new ApiError('FORBIDDEN', `connection "${this.id}" is read-only: turn read-only off to ${what}`, 'connectionId');
  }

  private connect(): Promise<void> {
    const s = this.client.status;
    if (s === 'ready') return Promise.resolve();
    if (s === 'wait') {
      this.connecting ??= this.client.connect().finally(() => {
        this.connecting = null;
      });
      return this.connecting;
    }
    return Promise.resolve();
  }

  /** Every call goes through here: its outcome keeps the connection's status, its failure names what was being done. */
  private async op<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new ApiError('UNAVAILABLE', `connection "${this.id}" is closed`);
    if (this.configError) throw this.configError;
    try {
      await this.connect();
      const out = await fn();
      this.status = 'connected';
      this.lastError = undefined;
      return out;
    } catch (error) {
      let cause = error;
      const recent = this.clientError && Date.now() - this.clientError.at < 30_000 ? this.clientError.error : null;
      if (recent && classify(error, this.target).problem === 'unreachable' && ['auth_failed', 'forbidden', 'tls_error'].includes(classify(recent, this.target).problem ?? '')) cause = recent;
      const e = toApiError(cause, this.target, what);
      if (e.code === 'UNAVAILABLE' || e.code === 'UNAUTHORIZED' || e.code === 'FORBIDDEN') {
        this.status = 'error';
        this.lastError = e.message;
      }
      throw e;
    }
  }

  private async keys(type: 'stream' | 'list', fresh = false): Promise<string[]> {
    const cached = this.keyCache.get(type);
    if (!fresh && cached && Date.now() - cached.at < KEYS_TTL_MS) return cached.keys;
    const { keys, truncated } = await scanKeys(this.client, type, MAX_KEYS);
    if (truncated) this.deps.logger.warn(`more than ${MAX_KEYS} ${type} keys: only the first are listed`, { connectionId: this.id });
    this.keyCache.set(type, { at: Date.now(), keys });
    return keys;
  }

  private async typeOf(key: string): Promise<string> {
    return this.client.type(key);
  }

  // ---------------------------------------------------------------- topics (streams and channels)

  /** The sources of a dead-letter stream: its name's stream, and the origins its latest entries name. */
  private async deadLetterSources(name: string): Promise<string[] | undefined> {
    const fromName = this.naming.sourceOf(name);
    if (!fromName) return undefined;
    const sources = new Set<string>();
    const latest = (await this.client.xrevrangeBuffer(name, '+', '-', 'COUNT', 20)) as unknown as RawEntry[];
    for (const raw of latest) {
      const o = originOf(toEntry(raw));
      if (o.stream) sources.add(o.stream);
    }
    if (sources.size === 0) sources.add(fromName);
    return [...sources].sort();
  }

  private async topicsFor(facts: StreamFacts[]): Promise<TopicInfo[]> {
    return Promise.all(facts.map(async (f) => topicInfo(f, await this.deadLetterSources(f.name))));
  }

  async listTopics(): Promise<TopicInfo[]> {
    return this.op('listing streams', async () => {
      const facts = await this.streams.facts(await this.keys('stream', true));
      const [topics, channels] = await Promise.all([this.topicsFor(facts), listChannels(this.client).catch(() => [] as TopicInfo[])]);
      return [...topics, ...channels];
    });
  }

  async getTopic(topic: string): Promise<TopicInfo> {
    return this.op(`reading "${topic}"`, async () => {
      const type = await this.typeOf(topic);
      if (type === 'none' && isChannelTopic(topic)) return channelInfo(this.client, channelOf(topic));
      await this.streams.requireStream(topic);
      const [facts] = await this.streams.facts([topic]);
      if (!facts) throw new ApiError('NOT_FOUND', `stream "${topic}" does not exist`, 'topic');
      return (await this.topicsFor([facts]))[0]!;
    });
  }

  /** An empty stream: XGROUP CREATE … MKSTREAM makes the key, and the group is removed again. */
  async createTopic(a: Args<'topics/create'>): Promise<TopicInfo> {
    this.writable('create streams');
    if (a.partitions !== 1) throw new ApiError('INVALID_ARGUMENT', 'partitions: a Redis stream has one partition', 'partitions');
    await this.op(`creating stream "${a.topic}"`, async () => {
      if ((await this.typeOf(a.topic)) !== 'none') throw new ApiError('CONFLICT', `key "${a.topic}" already exists`, 'topic');
      await this.client.call('XGROUP', 'CREATE', a.topic, 'brokerdeck-create', '$', 'MKSTREAM');
      await this.client.call('XGROUP', 'DESTROY', a.topic, 'brokerdeck-create');
      this.keyCache.delete('stream');
    });
    return this.getTopic(a.topic);
  }

  async deleteTopic(a: Args<'topics/delete'>): Promise<void> {
    this.writable('delete streams');
    await this.op(`deleting stream "${a.topic}"`, async () => {
      await this.streams.requireStream(a.topic);
      await this.client.del(a.topic);
      this.keyCache.delete('stream');
    });
  }

  async browseTopic(a: Args<'topics/messages'>): Promise<BrowsePage<RecordView>> {
    return this.op(`browsing "${a.topic}"`, async () => {
      if (isChannelTopic(a.topic) && (await this.typeOf(a.topic)) === 'none') {
        return { messages: [], nextCursor: null, scanned: 0, matched: 0, complete: true, cost: 'Redis Pub/Sub keeps no messages: only a live tail shows them as they are published' };
      }
      return this.streams.browse(a, this.options.browseBudgetMs);
    });
  }

  async produce(a: Args<'topics/produce'>, template?: RecordTemplate, control?: PublishControl): Promise<PublishResult> {
    this.writable('publish');
    const t = template ?? compileRecord(a.key ?? null, a.value === null ? null : a.valueEncoding === 'base64' ? { bytes: Buffer.from(a.value, 'base64') } : { text: a.value }, a.headers);
    return this.op(`publishing to "${a.topic}"`, async () => {
      if (isChannelTopic(a.topic) && (await this.typeOf(a.topic)) === 'none') {
        const channel = channelOf(a.topic);
        let received = 0;
        let published = 0;
        for (let i = 1; i <= a.count && !control?.signal.aborted; i++) {
          received += await publishChannel(this.client, channel, t.copy(i).value ?? Buffer.alloc(0));
          published++;
          if (i % 100 === 0) control?.progress(published, published);
        }
        return { published, routed: { [a.topic]: received }, returned: 0, rejected: 0, deduplicated: 0, confirmed: true };
      }
      const r = await this.streams.produce(a, t, control);
      this.keyCache.delete('stream');
      return r;
    });
  }

  tail(topic: string, partition: number | undefined, listener: (record: RecordView & { topic: string }) => void): Unsubscribe {
    if (this.closed || this.configError) {
      this.deps.logger.warn('live tail not started', { connectionId: this.id, topic, error: this.configError?.message ?? 'the connection is closed' });
      return () => {};
    }
    const onError = (error: unknown) => this.deps.logger.warn('live tail interrupted; retrying', { connectionId: this.id, topic, error: classify(error, this.target).message });
    const stop = isChannelTopic(topic) ? tailChannel(this.client, topic, listener, onError) : this.streams.tail(topic, listener, onError);
    const off = () => {
      if (this.tails.delete(off)) stop();
    };
    this.tails.add(off);
    return off;
  }

  // ---------------------------------------------------------------- consumer groups

  async listGroups(): Promise<GroupInfo[]> {
    return this.op('listing consumer groups', async () => this.groups.describe(await this.streams.facts(await this.keys('stream'))));
  }

  async getGroup(groupId: string): Promise<RedisGroupInfo> {
    return this.op(`reading group "${groupId}"`, async () => {
      const g = await this.groups.resolve(groupId);
      const [found] = await this.groups.describe(await this.streams.facts([g.stream]), g);
      if (!found) throw new ApiError('NOT_FOUND', `consumer group "${groupId}" does not exist`, 'groupId');
      return found;
    });
  }

  /** Where a reset would put the group (XGROUP SETID), as a preview: nothing changes. */
  private async setIdPlan(a: Args<'groups/previewReset'>): Promise<{ info: RedisGroupInfo; plan: SetIdPlan; preview: GroupOffsetsPreview }> {
    const g = await this.groups.resolve(a.groupId);
    if (a.topic !== undefined && a.topic !== g.stream) throw new ApiError('INVALID_ARGUMENT', `topic: group "${a.groupId}" reads stream "${g.stream}" only`, 'topic');
    if (a.partitions && a.partitions.some((p) => p !== 0)) throw new ApiError('INVALID_ARGUMENT', 'partitions: a stream has one partition (0)', 'partitions');
    const [facts] = await this.streams.facts([g.stream]);
    const [info] = await this.groups.describe(facts ? [facts] : [], g);
    if (!facts || !info) throw new ApiError('NOT_FOUND', `consumer group "${a.groupId}" does not exist`, 'groupId');
    const length = facts.length;
    let plan: SetIdPlan;
    if (a.to === 'earliest') plan = { id: '0', entriesRead: 0, lagAfter: length };
    else if (a.to === 'latest') plan = { id: facts.lastGeneratedId, entriesRead: facts.entriesAdded, lagAfter: 0 };
    else if (a.to === 'offset') {
      const n = Math.min(a.offset!, length);
      const shape = await this.streams.shape(g.stream);
      const at = n === 0 ? null : await this.streams.idAt(g.stream, n - 1, shape);
      plan = { id: at ?? (n === 0 ? '0' : facts.lastGeneratedId), entriesRead: null, lagAfter: length - n };
    } else {
      const ts = a.timestamp!;
      const before = ts === 0 ? '0' : `${ts - 1}-18446744073709551615`;
      const behind = (await this.client.xrevrange(g.stream, before, '-', 'COUNT', 1))[0]?.[0];
      const lag = behind ? await this.groups.countAfterId(g.stream, behind) : length;
      plan = { id: behind ?? '0', entriesRead: null, lagAfter: lag };
    }
    const end = facts.entriesAdded ?? length;
    const preview: GroupOffsetsPreview = {
      groupId: a.groupId,
      state: info.state,
      canApply: true,
      changes: [{ topic: g.stream, partition: 0, current: info.entriesRead, target: length - plan.lagAfter, end, lagBefore: info.totalLag, lagAfter: plan.lagAfter }],
      applied: false,
    };
    return { info, plan, preview };
  }

  async previewGroupOffsets(a: Args<'groups/previewReset'>): Promise<GroupOffsetsPreview> {
    return this.op(`previewing a reset of group "${a.groupId}"`, async () => (await this.setIdPlan(a)).preview);
  }

  /** XGROUP SETID: moves the group's last-delivered id; its pending entries stay pending. */
  async resetGroupOffsets(a: Args<'groups/resetOffsets'>): Promise<GroupOffsetsPreview> {
    this.writable('reset consumer groups');
    return this.op(`resetting group "${a.groupId}"`, async () => {
      const { info, plan, preview } = await this.setIdPlan(a);
      await this.client.call('XGROUP', 'SETID', info.stream, info.group, plan.id, ...(plan.entriesRead !== null ? ['ENTRIESREAD', String(plan.entriesRead)] : []));
      return { ...preview, applied: true };
    });
  }

  /** XCLAIM … JUSTID would not count a delivery; a claim here does, as a consumer's own claim would. */
  async claimPending(a: Args<'groups/claim'>): Promise<{ claimed: string[]; notClaimed: string[] }> {
    this.writable('claim pending entries');
    return this.op(`claiming entries of group "${a.groupId}"`, async () => {
      const g = await this.groups.resolve(a.groupId);
      const claimed = new Set<string>();
      for (let i = 0; i < a.ids.length; i += 1_000) {
        const got = (await this.client.call('XCLAIM', g.stream, g.group, a.consumer, String(a.minIdleMs), ...a.ids.slice(i, i + 1_000))) as Array<[string, unknown] | null>;
        for (const e of got) if (e) claimed.add(String(e[0]));
      }
      return { claimed: a.ids.filter((id) => claimed.has(id)), notClaimed: a.ids.filter((id) => !claimed.has(id)) };
    });
  }

  async deleteGroup(groupId: string): Promise<void> {
    this.writable('delete consumer groups');
    await this.op(`deleting group "${groupId}"`, async () => {
      const g = await this.groups.resolve(groupId);
      await this.groups.destroy(g.stream, g.group);
    });
  }

  // ---------------------------------------------------------------- queues (lists and dead-letter sources)

  private async listInfos(lists: string[]): Promise<QueueInfo[]> {
    const lengths = await Promise.all(lists.map((l) => this.client.llen(l).catch(() => -1)));
    const out: QueueInfo[] = [];
    lists.forEach((l, i) => {
      if (lengths[i]! < 0) return;
      const source = this.naming.processingSourceOf(l) ?? this.naming.sourceOf(l);
      out.push(listQueueInfo(l, lengths[i]!, source ? [source] : []));
    });
    return out;
  }

  async listQueues(): Promise<QueueInfo[]> {
    return this.op('listing lists', async () => this.listInfos(await this.keys('list', true)));
  }

  /** A dead-letter source as a queue: a list, a dead-letter stream, or a group's dead pending entries (`<stream>#<group>`). */
  async getQueue(queue: string): Promise<QueueInfo> {
    return this.op(`reading "${queue}"`, async () => {
      const type = await this.typeOf(queue);
      if (type === 'list') return (await this.listInfos([queue]))[0]!;
      if (type === 'stream') {
        const [f] = await this.streams.facts([queue]);
        const info = listQueueInfo(queue, f?.length ?? 0, (await this.deadLetterSources(queue)) ?? []);
        info.arguments = { type: 'stream' };
        return info;
      }
      if (type !== 'none') throw new ApiError('INVALID_ARGUMENT', `queue: key "${queue}" holds a ${type}, not a list or stream`, 'queue');
      const g = await this.groups.resolve(queue, 'queue').catch(() => {
        throw new ApiError('NOT_FOUND', `"${queue}" is neither a list, a stream, nor a consumer group (<stream>#<group>)`, 'queue');
      });
      const dead = await deadPending(this.client, g.stream, g.group, threshold(this.config, g.stream, g.group), 0, 0);
      const info = listQueueInfo(queue, dead.total, [g.stream]);
      info.arguments = { type: 'pending', stream: g.stream, group: g.group, deadLetterAfterDeliveries: threshold(this.config, g.stream, g.group) };
      info.ready = 0;
      info.unacked = dead.total;
      return info;
    });
  }

  async browseQueue(a: Args<'queues/messages'>): Promise<BrowsePage<MessageView>> {
    return this.op(`browsing "${a.queue}"`, async () => {
      const type = await this.typeOf(a.queue);
      if (type === 'list') return browseList(this.client, a, this.options.browseBudgetMs);
      if (type === 'stream') {
        const { queue: _q, position: _p, includeUnacked: _u, allowQuorumPeek: _a, scanAll: _s, scanLimit: _l, allowReceiveCountRisk: _r, ...rest } = a;
        const page = await this.streams.browse({ ...rest, topic: a.queue, ...(a.cursor ? {} : { offset: a.position ?? 0 }) }, this.options.browseBudgetMs);
        const base = a.position ?? 0;
        const fromName = this.naming.sourceOf(a.queue);
        return {
          ...page,
          messages: page.messages.map((r, i) => {
            const m = entryMessage({ id: r.position!, fields: [] }, a.queue, r.offset ?? base + i);
            const death = streamEntryDeath(r.headers, fromName, r.timestamp);
            const headers: Record<string, unknown> = { ...r.headers, ...(r.key !== null ? { key: r.key } : {}), ...(death ? { 'x-death': death } : {}) };
            return { ...m, body: r.value ?? '', bodyEncoding: r.valueEncoding, size: r.size, properties: { headers } };
          }),
        };
      }
      if (type !== 'none') throw new ApiError('INVALID_ARGUMENT', `queue: key "${a.queue}" holds a ${type}, not a list or stream`, 'queue');
      const g = await this.groups.resolve(a.queue, 'queue');
      const filter = compileMessageFilter(a, 'queue');
      const min = threshold(this.config, g.stream, g.group);
      const start = a.cursor ? Number(a.cursor) : (a.position ?? 0);
      if (!Number.isSafeInteger(start) || start < 0) throw new ApiError('INVALID_ARGUMENT', 'cursor: not a cursor of this dead-letter list (start again without one)', 'cursor');
      const dead = await deadPending(this.client, g.stream, g.group, min, start, a.limit);
      const raws = await Promise.all(dead.entries.map((p) => this.client.xrangeBuffer(g.stream, p.id, p.id) as unknown as Promise<RawEntry[]>));
      const messages: MessageView[] = [];
      dead.entries.forEach((p, i) => {
        const raw = raws[i]![0];
        const m = raw
          ? entryMessage(toEntry(raw), g.stream, start + i)
          : entryMessage({ id: p.id, fields: [] }, g.stream, start + i, { body: '', size: 0 });
        m.redelivered = true;
        m.deliveryCount = p.deliveries;
        m.state = 'unacked';
        m.consumerTag = p.consumer;
        m.properties.headers = { ...m.properties.headers, 'x-death': deathHeader(`delivered ${p.deliveries} times to group ${g.group}, never acknowledged (last: ${p.consumer})`, g.stream, p.deliveries, m.enqueuedAt) };
        m.attributes = { 'stream-entry-id': p.id, group: g.group, consumer: p.consumer, deliveries: String(p.deliveries), 'idle-ms': String(p.idleMs), ...(raw ? {} : { missing: 'the entry was deleted or trimmed from the stream' }) };
        const view = { body: m.body ? Buffer.from(m.body, m.bodyEncoding === 'base64' ? 'base64' : 'utf8') : null, text: m.bodyEncoding === 'utf8', properties: () => ({}), headers: () => m.properties.headers, key: null, time: m.enqueuedAt };
        if (!filter || filter.all(view)) messages.push(m);
      });
      const next = start + dead.entries.length;
      return { messages, nextCursor: next < dead.total ? String(next) : null, scanned: dead.entries.length, matched: messages.length, total: dead.total, complete: dead.complete && next >= dead.total };
    });
  }

  /** LPUSH to a list (`routingKey`), or XADD to a stream of that name; `count` copies. */
  async publish(a: Args<'publish'>, template?: MessageTemplate<MessageProperties>, control?: PublishControl): Promise<PublishResult> {
    this.writable('publish');
    if (a.exchange !== '') throw new ApiError('INVALID_ARGUMENT', 'exchange: Redis has no exchanges; leave exchange empty and name the list in routingKey', 'exchange');
    if (a.routingKey === '') throw new ApiError('INVALID_ARGUMENT', 'routingKey: name the list (or stream) to publish to', 'routingKey');
    const body = Buffer.from(a.body, a.bodyEncoding === 'base64' ? 'base64' : 'utf8');
    const t = template ?? compileMessage(body, a.properties);
    return this.op(`publishing to "${a.routingKey}"`, async () => {
      const type = await this.typeOf(a.routingKey);
      if (type === 'stream') {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(a.properties.headers ?? {})) headers[k] = typeof v === 'string' ? v : JSON.stringify(v);
        const record = compileRecord(null, a.bodyEncoding === 'base64' ? { bytes: body } : { text: a.body }, headers);
        return this.streams.produce({ topic: a.routingKey, value: a.body, valueEncoding: a.bodyEncoding, headers, count: a.count }, record, control);
      }
      if (type !== 'list' && type !== 'none') throw new ApiError('INVALID_ARGUMENT', `routingKey: key "${a.routingKey}" holds a ${type}, not a list or stream`, 'routingKey');
      let published = 0;
      for (let i = 1; i <= a.count && !control?.signal.aborted; ) {
        const n = Math.min(1_000, a.count - i + 1);
        const values: Buffer[] = [];
        for (let k = 0; k < n; k++, i++) values.push(t.copy(i).body);
        await this.client.lpush(a.routingKey, ...values);
        published += n;
        control?.progress(published, published);
      }
      this.keyCache.delete('list');
      return { published, routed: { [a.routingKey]: published }, returned: 0, rejected: 0, deduplicated: 0, confirmed: true };
    });
  }

  /**
   * Empties a dead-letter source or a list: a list is deleted, a dead-letter stream
   * trimmed to nothing (XTRIM MAXLEN 0, its groups kept), and a group's dead pending
   * entries acknowledged (XACK), so they are dropped without being processed.
   */
  async purgeQueue(a: Args<'queues/purge'>): Promise<{ messageCount: number }> {
    this.writable('purge');
    return this.op(`purging "${a.queue}"`, async () => {
      const type = await this.typeOf(a.queue);
      if (type === 'list') {
        const r = (await this.client.multi().llen(a.queue).del(a.queue).exec()) ?? [];
        return { messageCount: Number(r[0]?.[1] ?? 0) };
      }
      if (type === 'stream') {
        if (!this.naming.sourceOf(a.queue)) throw new ApiError('INVALID_ARGUMENT', `queue: "${a.queue}" is a stream, not a dead-letter stream; delete it as a topic instead`, 'queue');
        return { messageCount: Number(await this.client.xtrim(a.queue, 'MAXLEN', 0)) };
      }
      if (type !== 'none') throw new ApiError('INVALID_ARGUMENT', `queue: key "${a.queue}" holds a ${type}, not a list or stream`, 'queue');
      const g = await this.groups.resolve(a.queue, 'queue');
      const dead = await deadPending(this.client, g.stream, g.group, threshold(this.config, g.stream, g.group));
      let acked = 0;
      for (let i = 0; i < dead.entries.length; i += 1_000) {
        acked += Number(await this.client.xack(g.stream, g.group, ...dead.entries.slice(i, i + 1_000).map((p) => p.id)));
      }
      return { messageCount: acked };
    });
  }

  async deleteQueue(a: Args<'queues/delete'>): Promise<{ messageCount: number }> {
    this.writable('delete lists');
    return this.op(`deleting "${a.queue}"`, async () => {
      if ((await this.typeOf(a.queue)) !== 'list') throw new ApiError('NOT_FOUND', `list "${a.queue}" does not exist`, 'queue');
      const r = (await this.client.multi().llen(a.queue).del(a.queue).exec()) ?? [];
      return { messageCount: Number(r[0]?.[1] ?? 0) };
    });
  }

  // ---------------------------------------------------------------- dead letters and re-drive

  async listDeadLetters(): Promise<DeadLetterQueueInfo[]> {
    return this.op('listing dead letters', async () => {
      const [streamKeys, listKeys] = await Promise.all([this.keys('stream', true), this.keys('list', true)]);
      const facts = await this.streams.facts(streamKeys);
      const out: DeadLetterQueueInfo[] = [];
      // Dead-letter streams.
      for (const f of facts) {
        const sources = await this.deadLetterSources(f.name);
        if (sources) out.push({ queue: f.name, count: f.length, sources });
      }
      // Groups with pending entries delivered too often.
      const withGroups = facts.filter((f) => f.groups > 0);
      const groups = await Promise.all(withGroups.map((f) => this.groups.raw(f.name).catch(() => [])));
      await Promise.all(
        withGroups.flatMap((f, i) =>
          groups[i]!.filter((g) => g.pending > 0).map(async (g) => {
            const dead = await deadPending(this.client, f.name, g.name, threshold(this.config, f.name, g.name), 0, 0);
            if (dead.total > 0) out.push({ queue: `${f.name}#${g.name}`, count: dead.total, sources: [f.name] });
          }),
        ),
      );
      // Processing and dead-letter lists.
      for (const q of await this.listInfos(listKeys)) if (q.deadLetterFor.length > 0) out.push({ queue: q.name, count: q.messages, sources: q.deadLetterFor });
      return out.sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0));
    });
  }

  async startRedrive(a: Args<'redrives/start'>): Promise<{ id: string }> {
    this.writable('re-drive dead letters');
    if (a.edit) throw new ApiError('INVALID_ARGUMENT', 'edit: Redis dead letters move unchanged; publish an edited copy instead', 'edit');
    if (a.target && a.target.exchange !== '') throw new ApiError('INVALID_ARGUMENT', 'target.exchange: Redis has no exchanges; name the target stream or list in target.routingKey', 'target.exchange');
    const filter = a.filter ? compileMessageFilter(a.filter, 'queue', 'filter.') : null;
    const ids = a.all ? null : (a.messageIds ?? null);
    const given = a.target?.routingKey || null;
    const run = await this.op(`starting a re-drive from "${a.source}"`, async () => {
      const type = await this.typeOf(a.source);
      const requireTarget = async (target: string, kind: 'stream' | 'list') => {
        const t = await this.typeOf(target);
        if (t !== kind && t !== 'none') throw new ApiError('INVALID_ARGUMENT', `target: key "${target}" holds a ${t}, not a ${kind}`, 'target.routingKey');
        if (target === a.source) throw new ApiError('INVALID_ARGUMENT', 'target: the target is the dead-letter source itself', 'target.routingKey');
      };
      if (type === 'list') {
        const target = given ?? this.naming.processingSourceOf(a.source) ?? this.naming.sourceOf(a.source);
        if (!target) throw new ApiError('INVALID_ARGUMENT', `target: "${a.source}" is not named after a list (<list>:processing, <list>:dlq…): name the list to move to`, 'target');
        await requireTarget(target, 'list');
        const total = await this.client.llen(a.source);
        return new RedisRedriveRun(this.jobs, { kind: 'list', source: a.source, key: a.source, target, targetGiven: given !== null, ids, filter, ratePerSecond: a.ratePerSecond ?? null, total: ids?.length ?? total, length: total }, this.client, this.id, this.deps.logger);
      }
      if (type === 'stream') {
        const fromName = this.naming.sourceOf(a.source);
        if (given) await requireTarget(given, 'stream');
        const [f] = await this.streams.facts([a.source]);
        return new RedisRedriveRun(
          this.jobs,
          { kind: 'stream', source: a.source, key: a.source, target: given ?? fromName, targetGiven: given !== null, ids, filter, ratePerSecond: a.ratePerSecond ?? null, total: ids?.length ?? f?.length ?? 0, endId: f?.last ?? null },
          this.client,
          this.id,
          this.deps.logger,
        );
      }
      if (type !== 'none') throw new ApiError('INVALID_ARGUMENT', `source: key "${a.source}" holds a ${type}, not a list or stream`, 'source');
      const g = await this.groups.resolve(a.source, 'source');
      const target = given ?? g.stream;
      if (given) await requireTarget(given, 'stream');
      const min = threshold(this.config, g.stream, g.group);
      const total = ids?.length ?? (await deadPending(this.client, g.stream, g.group, min, 0, 0)).total;
      return new RedisRedriveRun(
        this.jobs,
        { kind: 'pending', source: a.source, key: g.stream, group: g.group, minDeliveries: min, target, targetGiven: given !== null, ids, filter, ratePerSecond: a.ratePerSecond ?? null, total },
        this.client,
        this.id,
        this.deps.logger,
      );
    });
    this.deps.logger.info('re-drive started', { connectionId: this.id, jobId: run.job.id, source: a.source, target: run.job.target });
    return { id: run.job.id };
  }

  // ---------------------------------------------------------------- statistics

  private sample(): Promise<StatsSnapshot> {
    this.sampling ??= (async () => {
      const [streamKeys, listKeys] = await Promise.all([this.keys('stream'), this.keys('list')]);
      const facts = await this.streams.facts(streamKeys);
      const [groups, lists] = await Promise.all([this.groups.describe(facts), this.listInfos(listKeys)]);
      const at = Date.now();
      for (const q of lists) this.metrics.record('queue', q.name, { messages: q.messages, ready: q.ready, unacked: q.unacked, delayed: 0 }, at);
      for (const f of facts) this.metrics.record('queue', f.name, { messages: f.length, ready: f.length }, at);
      for (const g of groups) this.metrics.record('group', g.groupId, { lag: g.totalLag, timeLagMs: g.partitions[0]?.timeLagMs ?? 0, pending: g.pending }, at);
      const snapshot: StatsSnapshot = { connectionId: this.id, at, queues: lists, groups: groups.map((g) => ({ groupId: g.groupId, state: g.state, totalLag: g.totalLag })) };
      this.lastStats = snapshot;
      return snapshot;
    })().finally(() => {
      this.sampling = null;
    });
    return this.sampling;
  }

  private scheduleSample(delay: number, failures: number): void {
    if (this.closed) return;
    this.sampler = setTimeout(() => {
      this.op('sampling lengths and lags', () => this.sample()).then(
        () => this.scheduleSample(this.options.sampleIntervalMs, 0),
        (error: unknown) => {
          if (failures === 0) this.deps.logger.warn('sampling Redis failed', { connectionId: this.id, error: (error as Error).message });
          this.scheduleSample(Math.min(60_000, this.options.sampleIntervalMs * 2 ** Math.min(failures + 1, 5)), failures + 1);
        },
      );
    }, delay);
    this.sampler.unref?.();
  }

  async stats(): Promise<StatsSnapshot> {
    const s = this.lastStats;
    if (s && Date.now() - s.at < 900) return s;
    return this.op('sampling lengths and lags', () => this.sample());
  }

  async history(a: Args<'metrics/history'>): Promise<HistorySeries> {
    return this.metrics.series(a.kind, a.name, a.range);
  }

  /** Whether the client is a cluster (tests, the benchmark). */
  get isCluster(): boolean {
    return this.client instanceof Cluster;
  }
}

export type { RedisRedriveJob };
