/**
 * Public types of the broker engine. Field names mirror the HTTP API so a
 * transport can pass them through unchanged.
 */
import type { SynchronousMode } from '../storage/database.js';
import type * as C from '../contract/types.js';
import type { FilterSpec, MessageProperties, RedriveJob } from '../contract/types.js';

// The contract defines every shape the API returns; the engine re-exports
// those it shares as they are, and narrows the rest (its exchange and queue
// types, its group states), never redefining a field.
export type { QueueRates, BindingInfo, MessageProperties, PartitionInfo, GroupPartitionLag, DeadLetterQueueInfo, JobState, RedriveJob, AuditEntry, HistorySample, HistorySeries } from '../contract/types.js';

export type FieldTable = Record<string, unknown>;

export interface EngineOptions {
  /** Directory holding brokerdeck.db; null keeps everything in memory (tests). */
  dataDir: string | null;
  /** Largest accepted message body (and topic record key + value), bytes. Default 128 MiB, RabbitMQ's max_message_size. */
  maxBodyBytes?: number;
  /** Most body bytes one publish-many or produce call may store (count × size). Default 256 MiB. */
  maxCallBytes?: number;
  /** Clock in ms since the epoch; injectable so tests can move time. */
  now?: () => number;
  /** SQLite synchronous mode; see storage/database.ts. Default 'full'. */
  synchronous?: SynchronousMode;
  /** Longest a write waits for its group commit, ms. Default 2. */
  groupCommitMs?: number;
  /** A group commit happens at the latest after this many writes. Default 4000. */
  groupCommitMaxOps?: number;
  /**
   * Background timers (delays, TTL, x-expires, retention, metrics, re-drive
   * pacing). Default true. Tests driving a fake clock may turn them off and
   * call `tick()` themselves.
   */
  timers?: boolean;
  /**
   * Reopening in the same process after the store failed (see the 'failed'
   * event): what was committed stays, transient exchanges, queues and
   * messages included, because the process did not end. Exclusive queues
   * still go, as their owners' consumers were cancelled. Default false: an
   * open is a restart, which drops what is not durable, as RabbitMQ does.
   */
  keepTransient?: boolean;
  /**
   * Free space, bytes, on the data folder's disk below which publishing is
   * refused, as RabbitMQ's `disk_free_limit` blocks publishers (its default,
   * 50 MB, is this one's). Consuming, acking and browsing go on, so space can
   * be freed. 0 turns the check off; it never runs for a database in memory.
   */
  diskFreeLimit?: number;
}

/** Set while the data folder's disk has less free space than the limit. */
export interface DiskAlarm {
  free: number;
  limit: number;
  message: string;
}

export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers';

export interface ExchangeOptions {
  type: ExchangeType;
  durable?: boolean;
  autoDelete?: boolean;
  internal?: boolean;
  arguments?: FieldTable;
}

export type ExchangeInfo = C.ExchangeInfo & { type: ExchangeType };

export interface QueueOptions {
  /** Default true (the management UI's default); AMQP clients pass it explicitly. */
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  arguments?: FieldTable;
  /** Connection that owns an exclusive queue; other owners get RESOURCE_LOCKED. */
  owner?: string;
}

/** `type` from x-queue-type ('classic' by default; both kinds behave the same here); `messages` is ready + unacked (delayed counted apart); `bytes` the bodies of those. */
export type QueueInfo = Omit<C.QueueInfo, 'type' | 'policy'> & { type: 'classic' | 'quorum' };

export type DestinationType = 'queue' | 'exchange';

export interface BindingSpec {
  source: string;
  destination: string;
  destinationType?: DestinationType;
  routingKey?: string;
  arguments?: FieldTable;
}

export interface PublishRequest {
  exchange: string;
  routingKey: string;
  body: Buffer;
  properties?: MessageProperties;
  mandatory?: boolean;
}

export interface PublishResult {
  /** Queues that accepted a copy. */
  routedQueues: string[];
  /** mandatory and routed nowhere: handed back (also emitted as 'returned'). */
  returned: boolean;
  /** Queues that refused the copy (x-overflow reject-publish / reject-publish-dlx). */
  rejected?: string[];
  /** Queues that dropped the copy as a duplicate. */
  deduplicated?: string[];
}

export interface PublishManyRequest extends Omit<PublishRequest, 'body'> {
  body: Buffer;
  /** Copies to publish, 1..10,000,000. Placeholders are expanded per copy. */
  count: number;
}

export interface PublishManyResult {
  published: number;
  /** Copies that reached each queue. */
  routed: Record<string, number>;
  returned: number;
  rejected: number;
  deduplicated: number;
  /** Always true: the promise resolves after the commit holding the last copy. */
  confirmed: true;
}

export interface ReturnedMessage {
  exchange: string;
  routingKey: string;
  body: Buffer;
  properties: MessageProperties;
  replyCode: 312;
  replyText: 'NO_ROUTE';
}

/**
 * A prefetch limit shared by several consumers: AMQP's basic.qos with
 * global=true, which RabbitMQ applies to a channel as a whole. The caller
 * makes one per channel and passes it to each consume; the engine counts the
 * consumers' unacked deliveries in it.
 */
export interface SharedPrefetch {
  /** Unacked deliveries allowed across its consumers; 0 = unlimited. */
  limit: number;
  /** Kept by the engine. */
  unacked: number;
}

export interface ConsumeOptions {
  /** Unacked deliveries allowed at once; 0 = unlimited. Default 0. */
  prefetch?: number;
  noAck?: boolean;
  exclusive?: boolean;
  consumerTag?: string;
  /** Connection/channel owning the consumer: closeOwner() returns its messages. */
  owner?: string;
  /** The connection of that channel, when it is not the owner: an exclusive queue admits consumers of its own connection. */
  connection?: string;
  /** A limit shared with other consumers (see SharedPrefetch), besides `prefetch`. */
  shared?: SharedPrefetch;
  /** Called when the engine cancels the consumer (queue deleted). */
  onCancel?: (reason: string) => void;
}

export interface Delivery {
  deliveryTag: number;
  consumerTag: string;
  queue: string;
  /** Engine id of the stored message (as in browse). */
  messageId: string;
  exchange: string;
  routingKey: string;
  body: Buffer;
  properties: MessageProperties;
  redelivered: boolean;
  /** 1 on first delivery, +1 per return to the queue. */
  deliveryCount: number;
}

export type AckMode = 'ack' | 'requeue' | 'reject';

export interface GetOptions {
  count?: number;
  ackMode: AckMode;
}

export type MessageState = 'ready' | 'unacked' | 'delayed';

export interface BrowsedMessage {
  id: string;
  /** 0-based rank in the queue (see Engine.browse for how exact it is). */
  position?: number;
  exchange: string;
  routingKey: string;
  body: Buffer;
  properties: MessageProperties;
  redelivered: boolean;
  deliveryCount: number;
  enqueuedAt: number;
  size: number;
  state: MessageState;
  consumerTag?: string;
  /** For delayed messages: when they become visible. */
  dueAt?: number;
}

/** The contract's filter, under the name the engine's options use. */
export type EngineFilter = FilterSpec;

export interface BrowseOptions {
  limit?: number;
  cursor?: string;
  /** Jump to a 0-based rank. */
  position?: number;
  filter?: EngineFilter;
  /** Include messages delivered but not yet acknowledged. Default false. */
  includeUnacked?: boolean;
  /** Stop a filtered scan after this many rows (then nextCursor continues). Default 200,000. */
  maxScan?: number;
  /** Stop a filtered scan after this long, ms. Default 250. */
  timeBudgetMs?: number;
}

export interface BrowsePage {
  messages: BrowsedMessage[];
  nextCursor: string | null;
  scanned: number;
  matched: number;
}

// ---- streams -------------------------------------------------------------

export interface TopicOptions {
  partitions: number;
  /** null/undefined/-1: keep forever. */
  retentionMs?: number | null;
  retentionBytes?: number | null;
}

/** The contract's topic with the engine's retention settings (null: keep forever). */
export type TopicInfo = Omit<C.TopicInfo, 'deadLetterFor'> & { retentionMs: number | null; retentionBytes: number | null };

export type RecordHeaders = Record<string, Buffer | string>;

export interface ProduceRecord {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: RecordHeaders;
  partition?: number;
  timestamp?: number;
}

export interface ProduceOptions {
  /** Expand {{i}} (record index, 1-based), {{uuid}}, {{now}} in values, keys and string headers. */
  placeholders?: boolean;
}

export interface TopicRecord {
  partition: number;
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeaders;
}

export interface FetchOptions {
  offset?: number;
  timestamp?: number;
  limit?: number;
  filter?: EngineFilter;
  maxScan?: number;
}

export interface FetchResult {
  records: TopicRecord[];
  nextOffset: number;
  scanned: number;
  matched: number;
}

export interface BrowseTopicOptions {
  limit?: number;
  partition?: number;
  offset?: number;
  timestamp?: number;
  cursor?: string;
  filter?: EngineFilter;
  maxScan?: number;
}

export interface BrowseTopicPage {
  records: TopicRecord[];
  nextCursor: string | null;
  scanned: number;
  matched: number;
}

export interface TopicPartitionRef {
  topic: string;
  partition: number;
}

export interface GroupMemberInfo {
  memberId: string;
  assignments: TopicPartitionRef[];
}

export interface JoinGroupResult {
  groupId: string;
  memberId: string;
  generation: number;
  assignments: TopicPartitionRef[];
  members: GroupMemberInfo[];
}

export interface LeaveGroupResult {
  groupId: string;
  generation: number;
  members: GroupMemberInfo[];
}

export interface ConsumerSummary {
  queue: string;
  consumerTag: string;
  prefetch: number;
  noAck: boolean;
  exclusive: boolean;
  /** False for the waiting consumers of a single-active-consumer queue. */
  active: boolean;
  unacked: number;
  owner: string | null;
}

export interface OffsetCommit {
  topic: string;
  partition: number;
  /** Next offset to consume, as Kafka. */
  offset: number;
}

export type GroupInfo = Omit<C.GroupInfo, 'state' | 'members'> & { state: 'Stable' | 'Empty'; generation: number; members: GroupMemberInfo[] };

/** Where to move a group's committed offsets (as `kafka-consumer-groups --reset-offsets`). */
export interface GroupResetRequest {
  groupId: string;
  /** Without a topic, every partition the group has committed offsets for. */
  topic?: string;
  partitions?: number[];
  to: 'earliest' | 'latest' | 'timestamp' | 'offset';
  timestamp?: number;
  offset?: number;
}

/** What a reset would change, partition by partition: the contract's shapes, as the API returns them. */
export type { GroupOffsetChange, GroupOffsetsPreview as GroupResetPlan } from '../contract/types.js';

// ---- dead letters, re-drive, audit ----------------------------------------

export interface RedriveRequest {
  /** Recorded in the job and audit log. Default 'local'. */
  connectionId?: string;
  source: string;
  messageIds?: string[];
  all?: boolean;
  filter?: EngineFilter;
  /** Default: back to the queue each message was dead-lettered from. */
  target?: { exchange: string; routingKey: string };
  /** Only with exactly one messageId. */
  edit?: { body?: Buffer | string; headers?: FieldTable };
  ratePerSecond?: number;
}

// ---- metrics --------------------------------------------------------------

/** The engine's sample: whole queues and groups; the core makes the contract's (per connection, counts and rates only) from it. */
export type StatsSnapshot = Pick<C.StatsSnapshot, 'at'> & { queues: QueueInfo[]; groups: GroupInfo[] };

export interface TopicRecordEvent {
  topic: string;
  record: TopicRecord;
}

export interface EngineEvents {
  stats: [StatsSnapshot];
  redrive: [RedriveJob];
  record: [TopicRecordEvent];
  returned: [ReturnedMessage];
  /** Kafka transaction markers were written (transactions.ts): partitions' last stable offsets moved. */
  transaction: [];
  /** The store could not be written (disk full, I/O error): the engine has stopped; reopen it to go on from what was committed. */
  failed: [Error];
  /** The disk alarm went on (with its figures) or off (null). */
  alarm: [DiskAlarm | null];
}
