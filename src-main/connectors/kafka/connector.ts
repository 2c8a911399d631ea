/**
 * An external Apache Kafka cluster as a Brokerdeck connection: topics with
 * watermarks, sizes and configuration; browsing and filtering; publishing;
 * consumer groups with lag over time; dead-letter topics and their re-drive.
 *
 * Clients: one admin (metadata, offsets, configs, groups), one consumer used
 * only for Fetch requests (it never joins a group or commits), one idempotent
 * producer created on first publish; each live tail and each re-drive job has
 * clients of its own, so a long poll or a job never delays a page.
 */
import { randomUUID } from 'node:crypto';
import { Admin, Consumer, Producer } from '@platformatic/kafka';
import { ApiError } from '../../contract/errors.js';
import type { KafkaConnectionConfig } from '../../contract/operations.js';
import type { ConnectionInfo, ConnectionStatus, DeadLetterQueueInfo, GroupInfo, HistorySeries, PublishResult, RecordView, StatsSnapshot, TopicInfo } from '../../contract/types.js';
import type { Args, Connector, PublishControl, Unsubscribe } from '../connector.js';
import { MetricsHistory } from '../../metrics/history.js';
import type { ConnectorDeps } from '../deps.js';
import { baseOptions, classify, target, toApiError, type ClientTuning } from './client.js';
import { deadLetterNaming, type DeadLetterNaming } from './deadletters.js';
import { Fetcher } from './fetcher.js';
import { Groups, type GroupOffsetsPreview, type GroupOffsetsResetArgs } from './groups.js';
import { produce } from './produce.js';
import type { RecordTemplate } from '../../ground/placeholders.js';
import { deadLetterOrigin, toView, type KafkaRecordView } from './records.js';
import { closeQuietly, DEFAULT_OUTAGE_TIMEOUT_MS, Redrives, type KafkaRedriveJob, type RedriveArgs } from './redrive.js';
import { browse, PartitionStream, type BrowseOptions } from './scanner.js';
import { SchemaDecoder } from './schemas.js';
import type { ClusterOverview, TopicConfigEntry } from '../../contract/types.js';

export type { ClusterOverview, TopicConfigEntry };

export interface KafkaConnectorOptions extends ClientTuning {
  /** How often group lag is sampled for the history charts; 0 turns sampling off. */
  historyIntervalMs?: number;
  /** How long a re-drive keeps retrying while the cluster is unreachable. */
  redriveOutageTimeoutMs?: number;
  /** How long one browse page may scan before it returns with a cursor. */
  browseBudgetMs?: number;
}

/** Topic settings shown with every topic (the full list is `describeTopicConfig`). */
const TOPIC_CONFIG_KEYS = [
  'cleanup.policy',
  'retention.ms',
  'retention.bytes',
  'min.compaction.lag.ms',
  'max.compaction.lag.ms',
  'min.cleanable.dirty.ratio',
  'delete.retention.ms',
  'segment.bytes',
  'segment.ms',
  'compression.type',
  'max.message.bytes',
  'min.insync.replicas',
  'message.timestamp.type',
];

/** DescribeConfigs' config sources, by number. */
const CONFIG_SOURCES: Record<number, string> = {
  [-1]: 'unknown',
  1: 'topic',
  2: 'dynamic-broker-logger',
  3: 'dynamic-broker',
  4: 'dynamic-default-broker',
  5: 'static-broker',
  6: 'default',
  7: 'dynamic-client-metrics',
  8: 'dynamic-group',
};

const RESOURCE_TOPIC = 2;
/** IncrementalAlterConfigs operations (Kafka's AlterConfigOp.OpType). */
const ALTER_SET = 0 as const;
const ALTER_DELETE = 1 as const;
const DLT_SAMPLE_PER_PARTITION = 20;
const DLT_SAMPLE_PARTITIONS = 16;

/** Kafka releases by the highest Produce and Fetch versions their brokers accept. */
const VERSION_MARKERS: Array<{ produce: number; fetch: number; version: string }> = [
  { produce: 13, fetch: 18, version: '4.1 or later' },
  { produce: 12, fetch: 17, version: '4.0' },
  { produce: 11, fetch: 17, version: '3.8–3.9' },
  { produce: 10, fetch: 16, version: '3.7' },
  { produce: 9, fetch: 15, version: '3.5–3.6' },
  { produce: 9, fetch: 13, version: '3.1–3.4' },
  { produce: 9, fetch: 12, version: '2.8–3.0' },
];

export function inferVersion(apis: Array<{ apiKey: number; maxVersion: number }>): string {
  const produce = apis.find((a) => a.apiKey === 0)?.maxVersion ?? -1;
  const fetch = apis.find((a) => a.apiKey === 1)?.maxVersion ?? -1;
  for (const m of VERSION_MARKERS) if (produce >= m.produce && fetch >= m.fetch) return m.version;
  return 'before 2.8';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class KafkaConnector implements Connector {
  readonly id: string;
  private readonly config: KafkaConnectionConfig;
  private readonly deps: ConnectorDeps;
  private readonly options: KafkaConnectorOptions;
  private readonly where: string;
  private readonly login: { user: string; mechanism: string } | undefined;
  private readOnly: boolean;
  private status: ConnectionStatus = 'connecting';
  private lastError: string | undefined;
  private closed = false;

  private readonly admin: Admin;
  private readonly consumer: Consumer;
  private producer: Producer | null = null;
  readonly fetcher: Fetcher;
  readonly groups: Groups;
  private readonly naming: DeadLetterNaming;
  private readonly redrives: Redrives;
  private readonly decoder: SchemaDecoder | null;
  private readonly tails = new Set<() => void>();
  private readonly metrics = new MetricsHistory({ metrics: ['lag', 'timeLagMs'] });
  private sampler: NodeJS.Timeout | null = null;
  private lastSample: { at: number; groups: GroupInfo[] } | null = null;
  private sampling: Promise<GroupInfo[]> | null = null;
  private dltSources = new Map<string, { ends: string; sources: string[] }>();

  constructor(id: string, config: KafkaConnectionConfig, deps: ConnectorDeps, options: KafkaConnectorOptions = {}) {
    this.id = id;
    this.config = config;
    this.deps = deps;
    this.options = options;
    this.readOnly = config.readOnly;
    this.where = config.brokers.join(', ');
    this.login = config.sasl ? { user: config.sasl.username, mechanism: config.sasl.mechanism } : undefined;
    this.naming = deadLetterNaming(config.deadLetterPattern);
    this.admin = new Admin(baseOptions(config, 'admin', options));
    this.consumer = new Consumer({ ...baseOptions(config, 'browser', options), groupId: `brokerdeck-browser-${randomUUID()}` });
    this.fetcher = new Fetcher(this.admin, this.consumer);
    this.groups = new Groups(this.admin, this.fetcher);
    this.decoder = config.schemaRegistryUrl ? new SchemaDecoder(config.schemaRegistryUrl) : null;
    this.redrives = new Redrives({
      connectionId: id,
      admin: this.admin,
      fetcher: this.fetcher,
      newProducer: () => this.newProducer('redrive'),
      naming: this.naming,
      audit: deps.audit,
      logger: deps.logger,
      outageTimeoutMs: options.redriveOutageTimeoutMs ?? DEFAULT_OUTAGE_TIMEOUT_MS,
    });
    const interval = options.historyIntervalMs ?? 1_000;
    if (interval > 0) this.scheduleSample(interval, 0);
  }

  private newProducer(role: string): Producer {
    return new Producer({ ...baseOptions(this.config, role, this.options), idempotent: true, acks: -1, autocreateTopics: false });
  }

  info(): ConnectionInfo {
    return {
      id: this.id,
      kind: 'kafka',
      name: this.config.name,
      status: this.status,
      readOnly: this.readOnly,
      target: target(this.config),
      ...(this.lastError ? { error: this.lastError } : {}),
      capabilities: ['topics', 'groups', 'publish', 'redrive', 'cluster', 'topicConfig'],
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
    await this.redrives.closeAll();
    await Promise.all([closeQuietly(this.admin), closeQuietly(this.consumer), this.producer ? closeQuietly(this.producer) : Promise.resolve()]);
    this.status = 'disconnected';
  }

  /** Runs an operation, keeping the connection's status in step with what the cluster answered. */
  private async op<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new ApiError('UNAVAILABLE', `connection "${this.id}" is closed`);
    try {
      const result = await fn();
      this.status = 'connected';
      this.lastError = undefined;
      return result;
    } catch (error) {
      if (error instanceof ApiError) throw error;
      const c = classify(error, this.where, this.login);
      if (c.problem && c.problem !== 'protocol_error') {
        this.status = 'error';
        this.lastError = c.message;
      }
      throw toApiError(error, what, this.where, this.login);
    }
  }

  /* ---------- cluster and topics ---------- */

  async clusterOverview(): Promise<ClusterOverview> {
    return this.op('reading the cluster overview', async () => {
      const [names, all, apis] = await Promise.all([this.admin.listTopics({ includeInternals: false }), this.admin.listTopics({ includeInternals: true }), this.admin.listApis()]);
      const md = await this.admin.metadata({ topics: all, forceUpdate: true });
      let partitions = 0;
      for (const t of md.topics.values()) partitions += t.partitionsCount;
      return {
        clusterId: md.id,
        controllerId: md.controllerId,
        brokers: [...md.brokers].map(([id, b]) => ({ id, host: b.host, port: b.port, rack: b.rack ?? null })).sort((a, b) => a.id - b.id),
        version: inferVersion(apis),
        topics: names.length,
        internalTopics: all.length - names.length,
        partitions,
      };
    });
  }

  async listTopics(): Promise<TopicInfo[]> {
    return this.op('listing topics', async () => {
      const names = (await this.admin.listTopics({ includeInternals: false })).sort();
      if (names.length === 0) return [];
      return this.describeTopics(names, names);
    });
  }

  /** One topic, described alone: its metadata, watermarks, sizes and settings. */
  async getTopic(topic: string): Promise<TopicInfo> {
    return this.op(`reading topic "${topic}"`, async () => {
      await this.fetcher.topic(topic, true);
      // The topic list only matters to a dead-letter topic, whose sources are named after topics that exist.
      const existing = this.naming.isDeadLetter(topic) ? await this.admin.listTopics({ includeInternals: false }) : [topic];
      const [found] = await this.describeTopics([topic], existing);
      if (!found) throw new ApiError('NOT_FOUND', `topic "${topic}" does not exist`, 'topic');
      return found;
    });
  }

  private async describeTopics(names: string[], existing: string[]): Promise<TopicInfo[]> {
    const md = await this.admin.metadata({ topics: names, forceUpdate: true, autocreateTopics: false });
    const shapes = names.filter((n) => md.topics.has(n)).map((n) => ({ name: n, partitions: md.topics.get(n)!.partitionsCount }));
    const [marks, sizes, configs] = await Promise.all([
      this.fetcher.watermarks(shapes),
      this.partitionSizes(shapes).catch(() => new Map<string, number[]>()),
      this.topicConfigs(shapes.map((s) => s.name), TOPIC_CONFIG_KEYS).catch(() => new Map<string, TopicConfigEntry[]>()),
    ]);
    const topics: TopicInfo[] = [];
    for (const s of shapes) {
      const m = marks.get(s.name) ?? [];
      const bytes = sizes.get(s.name) ?? [];
      const partitions = m.map((w, i) => ({ partition: i, startOffset: w.low, endOffset: w.high, bytes: bytes[i] ?? 0 }));
      const config: Record<string, string | number | null> = {};
      for (const e of configs.get(s.name) ?? []) config[e.name] = e.value !== null && /^-?\d+(\.\d+)?$/.test(e.value) && Number.isSafeInteger(Math.trunc(Number(e.value))) ? Number(e.value) : e.value;
      config['replication.factor'] = md.topics.get(s.name)!.partitions[0]?.replicas.length ?? null;
      const info: TopicInfo = {
        name: s.name,
        partitions,
        messages: partitions.reduce((n, p) => n + (p.endOffset - p.startOffset), 0),
        bytes: partitions.reduce((n, p) => n + p.bytes, 0),
        config,
      };
      if (this.naming.isDeadLetter(s.name)) info.deadLetterFor = await this.deadLetterSources(s.name, partitions, existing);
      topics.push(info);
    }
    return topics;
  }

  private async partitionSizes(shapes: Array<{ name: string; partitions: number }>): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    const dirs = await this.admin.describeLogDirs({ topics: shapes.map((s) => ({ name: s.name, partitions: Array.from({ length: s.partitions }, (_, i) => i) })) });
    // Each replica reports its own size: the largest is the leader's (or a caught-up follower's).
    for (const broker of dirs) {
      for (const dir of broker.results) {
        for (const t of dir.topics) {
          const list = out.get(t.name) ?? [];
          for (const p of t.partitions) {
            if (p.isFutureKey) continue;
            list[p.partitionIndex] = Math.max(list[p.partitionIndex] ?? 0, Number(p.partitionSize));
          }
          out.set(t.name, list);
        }
      }
    }
    return out;
  }

  private async topicConfigs(names: string[], keys: string[] | null): Promise<Map<string, TopicConfigEntry[]>> {
    const result = await this.admin.describeConfigs({
      resources: names.map((n) => ({ resourceType: RESOURCE_TOPIC, resourceName: n, configurationKeys: keys ?? [] })),
    });
    const out = new Map<string, TopicConfigEntry[]>();
    for (const r of result) {
      out.set(
        r.resourceName,
        r.configs
          .map((c) => ({ name: c.name, value: c.isSensitive ? null : (c.value ?? null), source: CONFIG_SOURCES[c.configSource] ?? String(c.configSource), readOnly: c.readOnly, sensitive: c.isSensitive }))
          .sort((a, b) => (a.name < b.name ? -1 : 1)),
      );
    }
    return out;
  }

  /**
   * Changes a topic's configs with IncrementalAlterConfigs: a value sets it, null
   * deletes the topic's own value (the broker's default applies again); configs
   * not named keep theirs. The broker's refusal names the config it rejected.
   */
  async alterTopicConfig(a: Args<'topics/alterConfig'>): Promise<TopicConfigEntry[]> {
    return this.op(`changing the configuration of "${a.topic}"`, async () => {
      await this.fetcher.topic(a.topic);
      const configs = Object.entries(a.configs).map(([name, value]) =>
        value === null ? { name, configOperation: ALTER_DELETE } : { name, configOperation: ALTER_SET, value },
      );
      if (configs.length === 0) throw new ApiError('INVALID_ARGUMENT', 'configs must name at least one config', 'configs');
      await this.admin.incrementalAlterConfigs({ resources: [{ resourceType: RESOURCE_TOPIC, resourceName: a.topic, configs }], validateOnly: a.validateOnly });
      return (await this.topicConfigs([a.topic], null)).get(a.topic) ?? [];
    });
  }

  async describeTopicConfig(topic: string): Promise<TopicConfigEntry[]> {
    return this.op(`reading the configuration of "${topic}"`, async () => {
      await this.fetcher.topic(topic);
      return (await this.topicConfigs([topic], null)).get(topic) ?? [];
    });
  }

  /** The topics a dead-letter topic serves: by its name, and by the origin headers of its latest records. */
  private async deadLetterSources(topic: string, partitions: Array<{ partition: number; startOffset: number; endOffset: number }>, existing: string[]): Promise<string[]> {
    const sources = new Set<string>();
    const fromName = this.naming.sourceFromName(topic);
    if (fromName && existing.includes(fromName)) sources.add(fromName);
    const ends = partitions.map((p) => p.endOffset).join(',');
    const cached = this.dltSources.get(topic);
    if (cached && cached.ends === ends) {
      for (const s of cached.sources) sources.add(s);
    } else {
      const fromHeaders = new Set<string>();
      try {
        const sampled = partitions.filter((p) => p.endOffset > p.startOffset).slice(0, DLT_SAMPLE_PARTITIONS);
        await Promise.all(
          sampled.map(async (p) => {
            const s = new PartitionStream(this.fetcher, topic, p.partition, Math.max(p.startOffset, p.endOffset - DLT_SAMPLE_PER_PARTITION), p.endOffset, 1024 * 1024, false);
            for (;;) {
              const r = s.buffered() ?? (await s.peek());
              if (r === null) break;
              s.take();
              const origin = deadLetterOrigin(r.headers);
              if (origin?.topic) fromHeaders.add(origin.topic);
            }
          }),
        );
        this.dltSources.set(topic, { ends, sources: [...fromHeaders] });
      } catch (error) {
        this.deps.logger.warn('reading dead-letter origins failed', { topic, error: classify(error).message });
      }
      for (const s of fromHeaders) sources.add(s);
    }
    if (sources.size === 0 && fromName) sources.add(fromName);
    return [...sources].sort();
  }

  async createTopic(a: Args<'topics/create'>): Promise<TopicInfo> {
    return this.op(`creating topic "${a.topic}"`, async () => {
      const configs: Array<{ name: string; value: string }> = Object.entries(a.configs ?? {}).map(([name, value]) => ({ name, value }));
      if (a.retentionMs !== undefined) configs.push({ name: 'retention.ms', value: String(a.retentionMs) });
      if (a.retentionBytes !== undefined) configs.push({ name: 'retention.bytes', value: String(a.retentionBytes) });
      try {
        // -1: the broker's default.replication.factor.
        await this.admin.createTopics({ topics: [a.topic], partitions: a.partitions, replicas: a.replicationFactor ?? -1, configs });
      } catch (error) {
        if (classify(error).apiId === 'TOPIC_ALREADY_EXISTS') throw new ApiError('CONFLICT', `topic "${a.topic}" already exists`, 'topic');
        throw error;
      }
      this.fetcher.forget(a.topic);
      // A new topic's leaders are elected a moment after it is created.
      for (let i = 0; i < 50; i++) {
        const found = (await this.listTopics()).find((t) => t.name === a.topic);
        if (found && found.partitions.length === a.partitions) return found;
        await sleep(100);
      }
      throw new ApiError('UNAVAILABLE', `topic "${a.topic}" was created but its partitions are not ready yet`);
    });
  }

  async deleteTopic(a: Args<'topics/delete'>): Promise<void> {
    return this.op(`deleting topic "${a.topic}"`, async () => {
      await this.fetcher.topic(a.topic);
      await this.admin.deleteTopics({ topics: [a.topic] });
      this.fetcher.forget(a.topic);
      this.dltSources.delete(a.topic);
    });
  }

  /* ---------- records ---------- */

  async browseTopic(a: Args<'topics/messages'> & { seek?: 'earliest' | 'latest' }) {
    return this.op(`browsing "${a.topic}"`, async () => {
      const options: BrowseOptions = {
        topic: a.topic,
        partition: a.partition,
        offset: a.offset,
        timestamp: a.timestamp,
        seek: a.seek,
        cursor: a.cursor,
        limit: a.limit,
        filter: a,
        budgetMs: this.options.browseBudgetMs,
      };
      return browse(this.fetcher, options, this.decoder ? (views, raws) => this.decoder!.decorate(views, raws) : undefined);
    });
  }

  async produce(a: Args<'topics/produce'>, template?: RecordTemplate, control?: PublishControl): Promise<PublishResult> {
    return this.op(`publishing to "${a.topic}"`, async () => {
      const count = await this.fetcher.partitionCount(a.topic);
      this.producer ??= this.newProducer('producer');
      try {
        return await produce(this.producer, count, a, template, control);
      } catch (error) {
        // A failed idempotent producer may be left with sequence numbers the broker rejects.
        if (!(error instanceof ApiError)) {
          const old = this.producer;
          this.producer = null;
          void closeQuietly(old);
        }
        throw error;
      }
    });
  }

  tail(topic: string, partition: number | undefined, listener: (record: RecordView & { topic: string }) => void): Unsubscribe {
    const consumer = new Consumer({ ...baseOptions(this.config, 'tail', this.options), groupId: `brokerdeck-tail-${randomUUID()}` });
    const fetcher = new Fetcher(this.admin, consumer);
    let active = true;
    const stop = () => {
      active = false;
      this.tails.delete(stop);
    };
    this.tails.add(stop);
    void (async () => {
      let positions: Map<number, number> | null = null;
      let failures = 0;
      while (active) {
        try {
          if (!positions) {
            const count = await fetcher.partitionCount(topic);
            const parts = partition !== undefined ? [partition] : Array.from({ length: count }, (_, i) => i);
            positions = await fetcher.offsets(topic, parts, -1);
          }
          const got = await fetcher.fetch(
            topic,
            [...positions].map(([p, o]) => ({ partition: p, offset: o, maxBytes: 1024 * 1024 })),
            { maxWaitMs: 500, maxBytes: 4 * 1024 * 1024 },
          );
          for (const [p, f] of got) {
            if (f.outOfRange) {
              positions.set(p, Math.max(f.logStart, Math.min(positions.get(p) ?? 0, f.highWatermark)));
              continue;
            }
            for (const r of f.records) {
              if (!active) break;
              listener({ ...toView(r), topic });
            }
            positions.set(p, f.next);
          }
          failures = 0;
        } catch (error) {
          if (!active) break;
          failures++;
          if (failures === 1) this.deps.logger.warn('live tail interrupted; retrying', { topic, error: classify(error, this.where, this.login).message });
          await sleep(Math.min(5_000, 500 * failures));
        }
      }
      await closeQuietly(consumer);
    })();
    return stop;
  }

  /* ---------- consumer groups ---------- */

  async listGroups(): Promise<GroupInfo[]> {
    return this.op('listing consumer groups', () => this.sampleGroups());
  }

  /** One group, described alone (its members, offsets and the watermarks of its partitions only). */
  async getGroup(groupId: string): Promise<GroupInfo> {
    return this.op(`reading group "${groupId}"`, async () => {
      const [found] = await this.groups.list([groupId]);
      if (!found) throw new ApiError('NOT_FOUND', `consumer group "${groupId}" does not exist`, 'groupId');
      return found;
    });
  }

  /** One group listing at a time: the sampler, stats and the groups view share it. */
  private sampleGroups(): Promise<GroupInfo[]> {
    if (this.sampling) return this.sampling;
    this.sampling = this.groups
      .list()
      .then((groups) => {
        const at = Date.now();
        this.lastSample = { at, groups };
        for (const g of groups) {
          this.metrics.record('group', g.groupId, { lag: g.totalLag, timeLagMs: g.partitions.reduce((m, p) => Math.max(m, p.timeLagMs), 0) }, at);
        }
        return groups;
      })
      .finally(() => {
        this.sampling = null;
      });
    return this.sampling;
  }

  private scheduleSample(interval: number, failures: number): void {
    if (this.closed) return;
    // Back off while the cluster is unreachable, so a dead connection costs little.
    const delay = failures === 0 ? interval : Math.min(60_000, interval * 2 ** Math.min(failures, 6));
    this.sampler = setTimeout(() => {
      this.sampleGroups()
        .then(() => {
          if (this.status !== 'connected') {
            this.status = 'connected';
            this.lastError = undefined;
          }
          this.scheduleSample(interval, 0);
        })
        .catch((error: unknown) => {
          const c = classify(error, this.where, this.login);
          if (failures === 0) this.deps.logger.warn('sampling consumer-group lag failed', { connectionId: this.id, error: c.message });
          if (c.problem && c.problem !== 'protocol_error') {
            this.status = 'error';
            this.lastError = c.message;
          }
          this.scheduleSample(interval, failures + 1);
        });
    }, delay);
    this.sampler.unref?.();
  }

  async previewGroupOffsets(args: GroupOffsetsResetArgs): Promise<GroupOffsetsPreview> {
    return this.op(`previewing the offsets of group "${args.groupId}"`, () => this.groups.preview(args));
  }

  async resetGroupOffsets(args: GroupOffsetsResetArgs): Promise<GroupOffsetsPreview> {
    if (this.readOnly) throw new ApiError('FORBIDDEN', `connection "${this.id}" is read-only: turn read-only off to reset offsets`, 'connectionId');
    return this.op(`resetting the offsets of group "${args.groupId}"`, () => this.groups.reset(args));
  }

  async deleteGroup(groupId: string): Promise<void> {
    if (this.readOnly) throw new ApiError('FORBIDDEN', `connection "${this.id}" is read-only: turn read-only off to delete groups`, 'connectionId');
    return this.op(`deleting group "${groupId}"`, () => this.groups.delete(groupId));
  }

  async stats(): Promise<StatsSnapshot> {
    const fresh = this.lastSample && Date.now() - this.lastSample.at < 1_500 ? this.lastSample : null;
    const groups = fresh ? fresh.groups : await this.op('sampling consumer groups', () => this.sampleGroups());
    return {
      connectionId: this.id,
      at: fresh?.at ?? Date.now(),
      queues: [],
      groups: groups.map((g) => ({ groupId: g.groupId, state: g.state, totalLag: g.totalLag })),
    };
  }

  async history(a: Args<'metrics/history'>): Promise<HistorySeries> {
    if (a.kind !== 'group') throw new ApiError('INVALID_ARGUMENT', 'Kafka connections keep history for consumer groups (kind "group")', 'kind');
    return this.metrics.series('group', a.name, a.range);
  }

  /* ---------- dead letters and re-drive ---------- */

  async listDeadLetters(): Promise<DeadLetterQueueInfo[]> {
    const topics = await this.listTopics();
    return topics.filter((t) => t.deadLetterFor !== undefined).map((t) => ({ queue: t.name, count: t.messages, sources: t.deadLetterFor ?? [] }));
  }

  async startRedrive(a: RedriveArgs): Promise<{ id: string }> {
    return this.op(`starting a re-drive from "${a.source}"`, () => this.redrives.start(a));
  }

  async getRedrive(id: string): Promise<KafkaRedriveJob | null> {
    return this.redrives.get(id);
  }

  async cancelRedrive(id: string): Promise<KafkaRedriveJob | null> {
    return this.redrives.cancel(id);
  }

  async listRedrives(): Promise<KafkaRedriveJob[]> {
    return this.redrives.list();
  }

  /** Resolves when the job has reached a final state. */
  async redriveSettled(id: string): Promise<KafkaRedriveJob | null> {
    return this.redrives.settled(id);
  }

  async listAudit(limit: number) {
    return this.deps.audit.list(this.id, limit);
  }

  onRedrive(listener: (job: KafkaRedriveJob) => void): Unsubscribe {
    return this.redrives.subscribe(listener);
  }
}

export type { KafkaRecordView };
