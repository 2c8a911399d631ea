/**
 * Shapes the core returns to every client. Bodies travel as strings with an
 * encoding so the same objects go over JSON (HTTP, WebSocket) and structured
 * clone (MessagePort) unchanged.
 */

export type BodyEncoding = 'utf8' | 'base64';
export type ConnectionKind = 'embedded' | 'rabbitmq' | 'kafka' | 'sqs' | 'sns' | 'kinesis' | 'redis' | 'pubsub';
export type ConnectionStatus = 'connected' | 'connecting' | 'disconnected' | 'error';

/** One wire listener of the embedded broker: where apps connect to it. */
export interface ListenerInfo {
  protocol: 'amqp' | 'kafka';
  host: string;
  /** The port asked for. */
  requestedPort: number;
  /** The bound port, or null when not listening. */
  port: number | null;
  tls: boolean;
  /** Open connections right now. */
  connections: number;
  /** Why it listens elsewhere than asked (the port was taken), or why it does not listen at all. */
  note: string | null;
  /** What was saved in the app for the next starts (a command-line flag or environment variable wins over it); null: the default. */
  setting?: ListenerSetting | null;
}

/** A wire listener's saved setting (`listeners/configure`). */
export interface ListenerSetting {
  enabled: boolean;
  /** 0 picks a free port. */
  port: number;
  /** PEM files of a certificate and its key: the AMQP listener then speaks TLS (amqps). */
  tlsCertFile?: string;
  tlsKeyFile?: string;
}

/** A consumer on a channel of the embedded broker's AMQP listener. */
export interface AmqpConsumerInfo {
  tag: string;
  queue: string;
  /** The client acknowledges deliveries (basic.consume with no_ack false). */
  ack: boolean;
}

/** A channel of a connection to the embedded broker's AMQP listener. */
export interface AmqpChannelInfo {
  number: number;
  /** Per-consumer prefetch (basic.qos global=false); 0 is unlimited. */
  prefetch: number;
  /** Channel-wide prefetch (basic.qos global=true, RabbitMQ's meaning); 0 is unlimited. */
  globalPrefetch: number;
  /** Deliveries sent and not yet acknowledged. */
  unacked: number;
  /** Publisher confirms are on (confirm.select). */
  confirm: boolean;
  /** The channel is transactional (tx.select). */
  transactional: boolean;
  consumers: AmqpConsumerInfo[];
  /** Messages since the channel opened: published by the client, delivered to it (consumers and basic.get), acknowledged by it. */
  published: number;
  delivered: number;
  acked: number;
  /** Messages per second since the previous look at this channel, as RabbitMQ's console shows them; null on the first. */
  rates: { publish: number; deliver: number; ack: number } | null;
}

/** A client connected to the embedded broker's AMQP listener, as RabbitMQ's console lists it. */
export interface AmqpConnectionInfo {
  id: string;
  /** The client-provided connection name (client property connection_name). */
  name: string | null;
  product: string | null;
  version: string | null;
  platform: string | null;
  /** `address:port` of the client. */
  remote: string;
  /** Null until the client has logged in. */
  user: string | null;
  vhost: string;
  state: 'opening' | 'running' | 'closing' | 'closed';
  tls: boolean;
  channels: number;
  /** Epoch ms. */
  connectedAt: number;
  /** Bytes read from and written to the socket since it opened. */
  bytesIn: number;
  bytesOut: number;
  /** Bytes per second since the previous look at this connection, null on the first. */
  rateIn: number | null;
  rateOut: number | null;
}

/** A client connected to the embedded broker's Kafka listener, with what it said of itself. */
export interface KafkaClientInfo {
  id: string;
  /** The `client.id` of its latest request. */
  clientId: string | null;
  /** From ApiVersions v3+ (`client.software.name`/`version`): e.g. apache-kafka-java 3.9.0, librdkafka 2.8.0. */
  softwareName: string | null;
  softwareVersion: string | null;
  /** `address:port` of the client. */
  remote: string;
  tls: boolean;
  /** Epoch ms. */
  connectedAt: number;
  bytesIn: number;
  bytesOut: number;
  /** The user it authenticated as (SASL PLAIN or SCRAM); null while the listener asks for no authentication. */
  user: string | null;
}

/** A SCRAM mechanism of the Kafka listener. */
export type KafkaScramMechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

/** A user of the embedded broker's Kafka listener: which SCRAM credentials it has, never a password or salted material. */
export interface KafkaUserInfo {
  name: string;
  /** One per mechanism the user has a credential for, SCRAM-SHA-256 first. */
  credentials: Array<{ mechanism: KafkaScramMechanism; iterations: number }>;
  /** Its connections authenticated right now. */
  connections: number;
}

/** The Kafka listener's users and whether clients must authenticate. */
export interface KafkaUsersInfo {
  users: KafkaUserInfo[];
  /** False while there are no users: clients connect without SASL. */
  saslRequired: boolean;
  /** Why kafka-users.json could not be read (no one can authenticate until it is fixed); null when it is fine. */
  problem: string | null;
}

/** A user of the embedded broker's AMQP listener, as RabbitMQ's console lists users (no password hash). */
export interface AmqpUserInfo {
  name: string;
  /** RabbitMQ's user tags (`administrator`, `monitoring`, …); shown, not enforced on the wire. */
  tags: string[];
  /** Per virtual host: the configure, write and read regular expressions. */
  permissions: Array<{ vhost: string; configure: string; write: string; read: string }>;
  /** May connect only from this machine (RabbitMQ's `loopback_users`: guest). */
  loopbackOnly: boolean;
  /** Its connections open right now. */
  connections: number;
}

export interface Health {
  status: 'ok';
  version: string;
}

export interface ConnectionInfo {
  id: string;
  kind: ConnectionKind;
  name: string;
  status: ConnectionStatus;
  readOnly: boolean;
  /** Where it points, without credentials (`amqp://host:5672/vhost`). */
  target?: string;
  error?: string;
  /** Set while the broker refuses publishing for a reason of its own (the embedded broker's disk alarm). */
  alarm?: string;
  /** What this connection can do; the UI hides what it cannot. */
  capabilities: Capability[];
  /** Explanations the UI shows beside actions (what a peek or a re-drive does on this system, TLS warnings). */
  notices?: Record<string, string>;
  /** The virtual host the connection works in (RabbitMQ's; `/` for the embedded broker, whose operations take a `vhost` to address another). */
  vhost?: string;
}

export interface ConsumerInfo {
  queue: string;
  consumerTag: string;
  /** Per-consumer prefetch (0: unlimited). */
  prefetch: number;
  /** The channel's shared prefetch, when one is set (basic.qos global). */
  channelPrefetch: number;
  ackRequired: boolean;
  exclusive: boolean;
  active: boolean;
  activityStatus: string | null;
  /** Unacked messages of the consumer's channel (RabbitMQ counts them per channel). */
  unacked: number;
  channel: string;
  connection: string | null;
  user: string | null;
}

export interface PolicyInfo {
  name: string;
  pattern: string;
  applyTo: string;
  priority: number;
  definition: Record<string, unknown>;
}

export interface VhostInfo {
  name: string;
  description: string;
  messages: number;
}

/** What "Test connection" found: each failure has its own `problem`. */
export interface ConnectionTestResult {
  ok: boolean;
  problem?: 'unreachable' | 'auth_failed' | 'vhost_missing' | 'vhost_forbidden' | 'management_unavailable' | 'management_auth_failed' | 'tls_error' | 'timeout' | 'protocol_error' | 'forbidden' | 'config_error';
  message: string;
  /** Server facts when it worked: version, cluster name, broker count… */
  details?: Record<string, unknown>;
}

/**
 * What a connection can do; the UI asks these, never the connection's kind. `cluster`: a
 * cluster overview (brokers, controller); `topicConfig`: every setting of a topic with its
 * source; `vhosts`, `policies`: the server's virtual hosts and the policies of the connection's.
 */
/**
 * `positions`: topic records are placed by the system's own ids (`RecordView.position`),
 * and `topics/messages` takes a `position` to start from.
 */
export type Capability =
  | 'queues'
  | 'exchanges'
  | 'topics'
  | 'groups'
  | 'publish'
  | 'redrive'
  | 'get'
  | 'cluster'
  | 'topicConfig'
  | 'vhosts'
  | 'policies'
  | 'positions';

export interface MessageProperties {
  contentType?: string;
  contentEncoding?: string;
  headers?: Record<string, unknown>;
  deliveryMode?: 1 | 2;
  priority?: number;
  correlationId?: string;
  replyTo?: string;
  expiration?: string;
  messageId?: string;
  timestamp?: number;
  type?: string;
  userId?: string;
  appId?: string;
}

/**
 * A browse filter in structured form, as every connection compiles it (the
 * wire form is `MessageFilter` in operations.ts). Every part given must match.
 */
export interface FilterSpec {
  /** Case-sensitive substring of the body (bytes, compared as UTF-8). */
  q?: string;
  /** `$.order.status`, `order.items[0].sku`, `$["odd key"]`. */
  jsonPath?: string;
  jsonEquals?: unknown;
  jsonContains?: string;
  /** value undefined or '' only requires the header to be present. */
  header?: { name: string; value?: unknown };
  property?: { name: string; value?: unknown };
  /** Topics: substring of the record key. */
  key?: string;
  /** enqueuedAt (queues) or timestamp (topics) range, ms, inclusive. */
  from?: number;
  to?: number;
}

export interface QueueRates {
  publish: number;
  deliver: number;
  ack: number;
  redeliver: number;
}

export interface QueueInfo {
  name: string;
  type?: 'classic' | 'quorum' | 'stream';
  durable: boolean;
  autoDelete: boolean;
  exclusive: boolean;
  arguments: Record<string, unknown>;
  /** Policy applied by the server, when the system has policies. */
  policy?: { name: string; definition: Record<string, unknown> } | null;
  messages: number;
  ready: number;
  unacked: number;
  delayed: number;
  bytes: number;
  consumers: number;
  /** Queues that dead-letter into this one. Non-empty means this is a dead-letter queue. */
  deadLetterFor: string[];
  rates: QueueRates;
}

/** A declared queue, with what the declare did for its dead-lettering. */
export interface QueueDeclareResult extends QueueInfo {
  /** What `createDeadLetter` created first, each named: `exchange "dlx" (fanout)`, `queue "orders.dlq"`, `binding "dlx" → "orders.dlq"`. */
  created?: string[];
  /** What is missing for dead-lettered messages to be kept, each named (without `createDeadLetter`, or what it could not create). */
  warnings?: string[];
}

export interface ExchangeInfo {
  name: string;
  type: string;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  arguments: Record<string, unknown>;
}

export interface BindingInfo {
  source: string;
  destination: string;
  destinationType: 'queue' | 'exchange';
  routingKey: string;
  arguments: Record<string, unknown>;
}

export interface XDeathEntry {
  queue: string;
  reason: string;
  count: number;
  exchange: string;
  'routing-keys': string[];
  time: number;
}

export interface MessageView {
  id: string;
  position?: number;
  exchange: string;
  routingKey: string;
  body: string;
  bodyEncoding: BodyEncoding;
  size: number;
  properties: MessageProperties;
  redelivered: boolean;
  deliveryCount: number;
  /** When the message arrived, ms; 0 when the system did not record it (a RabbitMQ message without a timestamp): show "not recorded", never 1970. */
  enqueuedAt: number;
  state?: 'ready' | 'unacked' | 'delayed';
  consumerTag?: string;
  /** Attributes the system itself keeps on the message (SQS: SentTimestamp, MessageGroupId, SequenceNumber…), apart from the sender's headers. */
  attributes?: Record<string, string>;
}

export interface BrowsePage<T> {
  messages: T[];
  nextCursor: string | null;
  scanned: number;
  matched: number;
  /** Messages the queue held (ready) when the read began, where the system says (RabbitMQ). */
  total?: number;
  /**
   * Whether the read reached the end of the queue. `false` with `nextCursor: null` means the
   * browse stopped where it can reach (RabbitMQ: the first 1,000 messages) and the rest was not
   * looked at: say "scanned N of `total`" and offer `scanAll`, never "no match".
   */
  complete?: boolean;
  /** How many messages from the head a browse can reach without `scanAll` (RabbitMQ classic and quorum: 1,000): rows past it cannot be filled. */
  reachable?: number;
  /** What the read did to the queue, when it is worth telling (a full RabbitMQ scan). */
  cost?: string;
  /**
   * Where records that arrive later will be read from, when the read reached the tip of a
   * log that is still written to (one open Kinesis shard): `nextCursor` is null there, and
   * this cursor, passed later, reads what came since.
   */
  resumeCursor?: string;
}

export interface PublishResult {
  published: number;
  /** Copies that reached each queue. */
  routed: Record<string, number>;
  /** Copies returned as unroutable (mandatory). */
  returned: number;
  /** Copies refused by a queue's overflow policy. */
  rejected: number;
  /** Copies dropped as duplicates by a deduplicating queue. */
  deduplicated: number;
  confirmed: boolean;
  /** Topic publishes: where each record landed. */
  offsets?: Array<{ partition: number; offset: number }>;
  /** Where the system places records by ids of its own (Kinesis): each record's partition, its id (shard id) and position (sequence number), in the order sent. */
  positions?: Array<{ partition: number; id: string; position: string }>;
  /** Records the system refused one by one while taking the others (Kinesis PutRecords): the copy (1-based) and why. */
  failures?: Array<{ copy: number; code: string; message: string }>;
}

export interface PartitionInfo {
  partition: number;
  startOffset: number;
  endOffset: number;
  bytes: number;
  /** The system's own name of the partition (a Kinesis shard id). */
  id?: string;
  /** Kinesis: the shard's parents, hash-key range and sequence-number range; a closed shard (split or merged) has an ending sequence number and takes no new records. */
  shard?: KinesisShardInfo;
}

export interface KinesisShardInfo {
  open: boolean;
  parentShardId: string | null;
  adjacentParentShardId: string | null;
  /** Decimal 128-bit integers, both ends included. */
  hashKeyRange: { start: string; end: string };
  sequenceRange: { start: string; end: string | null };
}

export interface TopicInfo {
  name: string;
  partitions: PartitionInfo[];
  messages: number;
  bytes: number;
  config: Record<string, string | number | null>;
  deadLetterFor?: string[];
  /** The system does not say how many records a topic holds (Kinesis): `messages`, `bytes` and the partitions' offsets are 0, not counts. */
  countsUnknown?: boolean;
}

export interface ClusterOverview {
  clusterId: string;
  controllerId: number;
  brokers: Array<{ id: number; host: string; port: number; rack: string | null }>;
  version: string;
  topics: number;
  internalTopics: number;
  partitions: number;
}

export interface TopicConfigEntry {
  name: string;
  value: string | null;
  source: string;
  readOnly: boolean;
  sensitive: boolean;
}

export interface GroupOffsetChange {
  topic: string;
  partition: number;
  current: number | null;
  target: number;
  end: number;
  lagBefore: number;
  lagAfter: number;
}

export interface GroupOffsetsPreview {
  groupId: string;
  state: string;
  canApply: boolean;
  reason?: string;
  changes: GroupOffsetChange[];
  applied: boolean;
}

/** Where a dead-lettered Kafka record came from, read from Spring Kafka's or Kafka Connect's headers. */
export interface DeadLetterOrigin {
  source: 'spring' | 'connect';
  topic: string | null;
  partition: number | null;
  offset: number | null;
  timestamp?: number | null;
  consumerGroup?: string | null;
  exceptionClass?: string | null;
  exceptionMessage?: string | null;
  causeClass?: string | null;
  stacktrace?: string | null;
  connector?: string | null;
  taskId?: string | null;
  stage?: string | null;
}

/** A value decoded through a Confluent-compatible schema registry. */
export interface DecodedValue {
  format: 'avro' | 'protobuf' | 'json';
  schemaId: number;
  value: unknown;
}

export interface RecordView {
  deadLetter?: DeadLetterOrigin;
  decoded?: DecodedValue;
  decodeError?: string;
  partition: number;
  /**
   * Kafka's offset. Where the system places records by an id of its own
   * (`position`), the record's ordinal within what was read, counted from the
   * start of the browse.
   */
  offset: number;
  /** The system's own place of the record when it is not a number: a Redis stream entry id, a Kinesis sequence number, a Pub/Sub message id. */
  position?: string;
  timestamp: number;
  key: string | null;
  keyEncoding: BodyEncoding;
  value: string | null;
  valueEncoding: BodyEncoding;
  size: number;
  headers: Record<string, string>;
}

export interface GroupPartitionLag {
  topic: string;
  partition: number;
  committed: number | null;
  end: number;
  lag: number;
  timeLagMs: number;
}

export interface GroupInfo {
  groupId: string;
  state: string;
  members: Array<{ memberId: string; clientId?: string; host?: string; assignments: Array<{ topic: string; partition: number }> }>;
  partitions: GroupPartitionLag[];
  totalLag: number;
}

export interface DeadLetterQueueInfo {
  queue: string;
  count: number;
  sources: string[];
}

export type JobState = 'pending' | 'running' | 'completed' | 'cancelled' | 'failed';
export const FINAL_JOB_STATES: readonly JobState[] = ['completed', 'cancelled', 'failed'];

export interface RedriveJob {
  id: string;
  connectionId: string;
  source: string;
  target: string;
  state: JobState;
  moved: number;
  total: number;
  failed: number;
  ratePerSecond: number | null;
  startedAt: number;
  finishedAt?: number | null;
  error?: string | null;
  /** Records left out because they had been re-driven before. */
  skipped?: number;
}

/**
 * A publish of many copies run as a job (`publish/start`): progress, rate and
 * cancel, as for re-drives. Its updates reach the `publishJobs` stream.
 */
export interface PublishJob {
  id: string;
  kind: 'publish';
  connectionId: string;
  /** `exchange → routing key`, as the publish history shows it. */
  target: string;
  state: JobState;
  /** Copies asked for. */
  total: number;
  /** Copies handed to the broker so far. */
  sent: number;
  /** Copies the broker confirmed so far. */
  confirmed: number;
  /** Confirmed copies per second since the start. */
  ratePerSecond: number;
  startedAt: number;
  finishedAt?: number | null;
  error?: string | null;
  /** What happened to what was sent, once the job has ended (after a cancel too: what was confirmed by then). */
  result?: PublishResult | null;
}

export interface AuditEntry {
  id: string;
  at: number;
  connectionId: string;
  action: string;
  source: string;
  target: string;
  count: number;
  selection: string;
  state: string;
}

export interface HistorySample {
  t: number;
  [metric: string]: number;
}

export interface HistorySeries {
  resource: { kind: 'queue' | 'group'; name: string };
  range: 'hour' | 'day';
  /** Time between samples, ms, when the series has a fixed step. */
  intervalMs?: number;
  samples: HistorySample[];
}

/** What the live stream carries per queue: counts and rates (flags, arguments and policy come from `queues/get`). */
export type QueueStats = Pick<QueueInfo, 'name' | 'type' | 'messages' | 'ready' | 'unacked' | 'delayed' | 'bytes' | 'consumers' | 'deadLetterFor' | 'rates'>;

/** Keeps only the fields of `QueueStats`: the live stream sends every queue each second. */
export function queueStats(q: QueueStats): QueueStats {
  const out: QueueStats = { name: q.name, messages: q.messages, ready: q.ready, unacked: q.unacked, delayed: q.delayed, bytes: q.bytes, consumers: q.consumers, deadLetterFor: q.deadLetterFor, rates: q.rates };
  if (q.type !== undefined) out.type = q.type;
  return out;
}

export interface StatsSnapshot {
  connectionId: string;
  at: number;
  queues: QueueStats[];
  groups: Array<Pick<GroupInfo, 'groupId' | 'state' | 'totalLag'>>;
}

export interface RedriveProgress extends RedriveJob {}

export interface Template {
  id: string;
  name: string;
  payload: Record<string, unknown>;
  updatedAt: number;
}

export interface HistoryEntry {
  id: string;
  at: number;
  connectionId: string;
  target: string;
  count: number;
  summary: string;
  payload: Record<string, unknown>;
}
