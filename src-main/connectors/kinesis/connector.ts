/**
 * Amazon Kinesis Data Streams as a connection, over the AWS SDK v3. Streams
 * answer as topics and their shards as partitions (the shard's index in
 * ListShards order), with each shard's id, parents, hash-key and sequence-number
 * ranges and whether it is open; the stream's status, mode, retention and
 * encryption are the topic's configuration. Records are placed by sequence number
 * (`RecordView.position`); browsing holds shard iterators only, so it changes
 * nothing for any consumer, and a live tail reads the open shards from LATEST.
 * Registered (enhanced fan-out) consumers answer as consumer groups, without
 * lag: Kinesis does not know where a consumer is.
 */
import {
  CreateStreamCommand,
  DeleteStreamCommand,
  DescribeStreamSummaryCommand,
  KinesisClient,
  ListStreamConsumersCommand,
  ListStreamsCommand,
  type Consumer,
} from '@aws-sdk/client-kinesis';
import { ApiError } from '../../contract/errors.js';
import type { KinesisConnectionConfig } from '../../contract/operations.js';
import type { BrowsePage, Capability, ConnectionInfo, GroupInfo, PublishResult, RecordView, TopicInfo } from '../../contract/types.js';
import { compileRecord, type RecordTemplate } from '../../ground/placeholders.js';
import type { Args, Connector, PublishControl, Unsubscribe } from '../connector.js';
import type { ConnectorDeps } from '../deps.js';
import { decodeBytes } from '../encoding.js';
import { mapLimit, targetOf } from '../aws/client.js';
import { AwsConnectionState } from '../aws/connection.js';
import { browseStream, DEFAULT_LIMITS, type BrowseLimits } from './browse.js';
import { produceRecords } from './produce.js';
import { tailStream } from './tail.js';
import { listShards, topicInfo, type ShardEntry } from './shards.js';

const CAPABILITIES: Capability[] = ['topics', 'groups', 'publish', 'positions'];

export const BROWSE_NOTICE =
  'Browsing reads a shard with shard iterators (TRIM_HORIZON, LATEST, a sequence number or a time): nothing is consumed and no consumer\'s checkpoint moves. ' +
  'Partitions are shards, numbered in ListShards order; each record\'s position is its sequence number. Kinesis keeps no record counts.';

export const PUBLISH_NOTICE =
  'The key is the partition key: Kinesis sends the record to the open shard whose hash-key range holds the MD5 of the key (a random key when none is given). ' +
  'A partition or an explicit hash key picks the shard instead. Records have no headers. Up to 500 records go in one PutRecords request; records refused one by one are reported.';

export const GROUPS_NOTICE =
  'Consumer groups are the stream\'s registered (enhanced fan-out) consumers. They have no lag here: Kinesis does not keep where a consumer has read to; ' +
  'the application does (the Kinesis Client Library in its DynamoDB lease table).';

export interface KinesisConnectorOptions {
  browse?: Partial<BrowseLimits>;
  /** How often a live tail reads each shard (ms). */
  tailPollMs?: number;
}

/** How long a stream's shard listing is reused between browse pages (ms). */
const SHARDS_TTL_MS = 5_000;
const MAX_LIST_PAGES = 1_000;

export class KinesisConnector implements Connector {
  readonly id: string;
  private readonly client: KinesisClient;
  private readonly state: AwsConnectionState;
  private readonly limits: BrowseLimits;
  private readonly shardCache = new Map<string, { at: number; shards: ShardEntry[] }>();
  private readonly tails = new Set<() => void>();
  private readonly tailPollMs: number | undefined;

  constructor(
    id: string,
    private readonly config: KinesisConnectionConfig,
    private readonly deps: ConnectorDeps,
    options: KinesisConnectorOptions = {},
  ) {
    this.id = id;
    this.state = new AwsConnectionState(id, targetOf(config, 'kinesis'), config.readOnly);
    this.client = new KinesisClient(this.state.clientConfig(config, { maxSockets: 16 }));
    this.limits = { ...DEFAULT_LIMITS, ...options.browse };
    this.tailPollMs = options.tailPollMs;
  }

  info(): ConnectionInfo {
    return {
      id: this.id,
      kind: 'kinesis',
      name: this.config.name,
      ...this.state.infoFields(),
      target: this.state.target,
      capabilities: [...CAPABILITIES],
      notices: { browse: BROWSE_NOTICE, publish: PUBLISH_NOTICE, groups: GROUPS_NOTICE },
    };
  }

  setReadOnly(readOnly: boolean): void {
    this.state.readOnly = readOnly;
  }

  async close(): Promise<void> {
    this.state.closed = true;
    for (const stop of [...this.tails]) stop();
    this.tails.clear();
    this.client.destroy();
  }

  private call<T>(fn: () => Promise<T>, notFound?: { what: string; field: string }): Promise<T> {
    return this.state.call(fn, notFound);
  }

  // ---------------------------------------------------------------- streams

  private async streamNames(): Promise<string[]> {
    const names: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const last = names[names.length - 1];
      const input = token ? { NextToken: token } : last ? { ExclusiveStartStreamName: last } : {};
      const r = await this.call(() => this.client.send(new ListStreamsCommand(input)));
      const got = r.StreamNames ?? r.StreamSummaries?.map((s) => s.StreamName ?? '') ?? [];
      names.push(...got);
      if (!r.HasMoreStreams || got.length === 0) break;
      token = r.NextToken;
    }
    return [...new Set(names)].sort();
  }

  private async shards(stream: string, fresh = false): Promise<ShardEntry[]> {
    const cached = this.shardCache.get(stream);
    if (!fresh && cached && Date.now() - cached.at < SHARDS_TTL_MS) return cached.shards;
    const shards = await listShards(this.client, stream, (fn) => this.call(fn, { what: `stream "${stream}"`, field: 'topic' }));
    this.shardCache.set(stream, { at: Date.now(), shards });
    if (this.shardCache.size > 1_000) this.shardCache.delete(this.shardCache.keys().next().value!);
    return shards;
  }

  private async describe(stream: string) {
    const r = await this.call(() => this.client.send(new DescribeStreamSummaryCommand({ StreamName: stream })), { what: `stream "${stream}"`, field: 'topic' });
    return r.StreamDescriptionSummary!;
  }

  private async streamInfo(stream: string): Promise<TopicInfo> {
    const summary = await this.describe(stream);
    // A stream being created has no shards to list yet.
    const shards = summary.StreamStatus === 'CREATING' ? [] : await this.shards(stream, true);
    return topicInfo(summary, shards);
  }

  async listTopics(): Promise<TopicInfo[]> {
    const names = await this.streamNames();
    const infos = await mapLimit(names, 4, (n) => this.streamInfo(n).catch((e: unknown) => (e instanceof ApiError && e.code === 'NOT_FOUND' ? null : Promise.reject(e))));
    return infos.filter((t): t is TopicInfo => t !== null);
  }

  async getTopic(topic: string): Promise<TopicInfo> {
    return this.streamInfo(topic);
  }

  /** A provisioned stream of `partitions` shards; Kinesis makes it ACTIVE within seconds to minutes. */
  async createTopic(a: Args<'topics/create'>): Promise<TopicInfo> {
    this.state.writable('create streams');
    if (a.replicationFactor !== undefined) throw new ApiError('INVALID_ARGUMENT', 'replicationFactor: Kinesis keeps its own copies of a stream', 'replicationFactor');
    if (a.retentionBytes !== undefined) throw new ApiError('INVALID_ARGUMENT', 'retentionBytes: Kinesis keeps records by time only (retentionMs)', 'retentionBytes');
    if (a.retentionMs !== undefined) throw new ApiError('INVALID_ARGUMENT', 'retentionMs: Kinesis sets retention once the stream is ACTIVE (IncreaseStreamRetentionPeriod); create the stream with the default of 24 hours', 'retentionMs');
    if (a.configs && Object.keys(a.configs).length > 0) throw new ApiError('INVALID_ARGUMENT', 'configs: a Kinesis stream has no topic configs', 'configs');
    await this.call(() => this.client.send(new CreateStreamCommand({ StreamName: a.topic, ShardCount: a.partitions, StreamModeDetails: { StreamMode: 'PROVISIONED' } })));
    this.deps.logger.info('Kinesis stream created', { connectionId: this.id, stream: a.topic, shards: a.partitions });
    return this.streamInfo(a.topic);
  }

  async deleteTopic(a: Args<'topics/delete'>): Promise<void> {
    this.state.writable('delete streams');
    await this.call(() => this.client.send(new DeleteStreamCommand({ StreamName: a.topic, EnforceConsumerDeletion: true })), { what: `stream "${a.topic}"`, field: 'topic' });
    this.shardCache.delete(a.topic);
    this.deps.logger.info('Kinesis stream deleted', { connectionId: this.id, stream: a.topic });
  }

  // ---------------------------------------------------------------- records

  async browseTopic(a: Args<'topics/messages'>): Promise<BrowsePage<RecordView>> {
    return browseStream({ client: this.client, call: (fn, nf) => this.call(fn, nf), shards: (s) => this.shards(s), limits: this.limits }, a);
  }

  async produce(a: Args<'topics/produce'>, template?: RecordTemplate, control?: PublishControl): Promise<PublishResult> {
    this.state.writable('publish');
    const t =
      template ??
      compileRecord(a.key ?? null, a.value === null ? null : a.valueEncoding === 'utf8' ? { text: a.value } : { bytes: decodeBytes(a.value, a.valueEncoding, 'value') }, a.headers);
    return produceRecords(
      {
        client: this.client,
        call: (fn, nf) => this.call(fn, nf),
        shards: (s, fresh) => this.shards(s, fresh),
        pause: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      },
      a,
      t,
      control,
    );
  }

  tail(topic: string, partition: number | undefined, listener: (record: RecordView & { topic: string }) => void): Unsubscribe {
    const stop = tailStream({ client: this.client, shards: (s) => this.shards(s, true), logger: this.deps.logger, pollMs: this.tailPollMs }, topic, partition, listener);
    this.tails.add(stop);
    return () => {
      this.tails.delete(stop);
      stop();
    };
  }

  // ---------------------------------------------------------------- consumers

  private async consumers(stream: string, arn: string): Promise<Consumer[]> {
    const out: Consumer[] = [];
    let token: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const r = await this.call(() => this.client.send(new ListStreamConsumersCommand(token ? { StreamARN: arn, NextToken: token } : { StreamARN: arn })), {
        what: `stream "${stream}"`,
        field: 'topic',
      });
      const got = (r.Consumers ?? []).filter((c) => !out.some((o) => o.ConsumerARN === c.ConsumerARN));
      out.push(...got);
      if (!r.NextToken || r.NextToken === token || got.length === 0) break;
      token = r.NextToken;
    }
    return out;
  }

  private group(stream: string, c: Consumer): GroupInfo {
    return { groupId: `${stream}/${c.ConsumerName ?? ''}`, state: c.ConsumerStatus ?? 'UNKNOWN', members: [], partitions: [], totalLag: 0 };
  }

  async listGroups(): Promise<GroupInfo[]> {
    const names = await this.streamNames();
    const lists = await mapLimit(names, 4, async (stream) => {
      try {
        const summary = await this.describe(stream);
        if (!summary.StreamARN || (summary.ConsumerCount ?? 1) === 0) return [];
        return (await this.consumers(stream, summary.StreamARN)).map((c) => this.group(stream, c));
      } catch (error) {
        if (error instanceof ApiError && error.code === 'NOT_FOUND') return [];
        throw error;
      }
    });
    return lists.flat().sort((x, y) => (x.groupId < y.groupId ? -1 : x.groupId > y.groupId ? 1 : 0));
  }

  /** `stream/consumer`: a consumer's name is unique within its stream only. */
  async getGroup(groupId: string): Promise<GroupInfo> {
    const slash = groupId.indexOf('/');
    if (slash <= 0 || slash === groupId.length - 1) {
      throw new ApiError('INVALID_ARGUMENT', `groupId must be "stream/consumer" (a Kinesis consumer's name is unique within its stream), got "${groupId}"`, 'groupId');
    }
    const stream = groupId.slice(0, slash);
    const name = groupId.slice(slash + 1);
    const summary = await this.describe(stream);
    const found = (await this.consumers(stream, summary.StreamARN ?? '')).find((c) => c.ConsumerName === name);
    if (!found) throw new ApiError('NOT_FOUND', `consumer "${name}" is not registered on stream "${stream}"`, 'groupId');
    return this.group(stream, found);
  }
}
