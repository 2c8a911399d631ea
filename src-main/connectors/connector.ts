/**
 * The common interface of every connection: the embedded broker, an external
 * RabbitMQ, an external Kafka. The core routes each connection-scoped operation
 * to the connector it names; a connector leaves out what its system cannot do
 * and the core answers such calls with a clear error.
 */
import type {
  AuditEntry,
  BindingInfo,
  BrowsePage,
  ClusterOverview,
  ConnectionInfo,
  ConsumerInfo,
  DeadLetterQueueInfo,
  ExchangeInfo,
  GroupInfo,
  GroupOffsetsPreview,
  HistorySeries,
  MessageProperties,
  MessageView,
  PolicyInfo,
  PublishResult,
  QueueInfo,
  RecordView,
  RedriveJob,
  StatsSnapshot,
  TopicConfigEntry,
  TopicInfo,
  VhostInfo,
} from '../contract/types.js';
import type { OperationName, ParsedInput } from '../contract/operations.js';
import type { MessageTemplate, RecordTemplate } from '../ground/placeholders.js';

/** An operation's validated input without the connection id the core already used. */
export type Args<N extends OperationName> = Omit<ParsedInput<N>, 'connectionId' | 'vhost'>;

/**
 * How a publish job follows and stops a long publish: the connection reports
 * copies sent and confirmed now and then, and stops sending once `signal` is
 * aborted (answering with what was confirmed until then). A connection that
 * publishes in one step may ignore it.
 */
export interface PublishControl {
  signal: AbortSignal;
  progress(sent: number, confirmed: number): void;
}

export interface Unsubscribe {
  (): void;
}

export interface Connector {
  readonly id: string;
  info(): ConnectionInfo;
  close(): Promise<void>;
  setReadOnly?(readOnly: boolean): void;

  listVhosts?(): Promise<VhostInfo[]>;
  /** The same connection addressing another of its virtual hosts (the embedded broker has several). */
  forVhost?(vhost: string): Connector;
  createVhost?(name: string, description: string): Promise<VhostInfo>;
  deleteVhost?(name: string): Promise<void>;
  listPolicies?(): Promise<PolicyInfo[]>;
  declarePolicy?(args: Args<'policies/declare'>): Promise<PolicyInfo>;
  deletePolicy?(name: string): Promise<void>;
  listConsumers?(queue?: string): Promise<ConsumerInfo[]>;

  listExchanges?(): Promise<ExchangeInfo[]>;
  /** One exchange; NOT_FOUND naming it when it does not exist. */
  getExchange?(exchange: string): Promise<ExchangeInfo>;
  declareExchange?(args: Args<'exchanges/declare'>): Promise<ExchangeInfo>;
  deleteExchange?(args: Args<'exchanges/delete'>): Promise<void>;

  listBindings?(): Promise<BindingInfo[]>;
  createBinding?(args: Args<'bindings/create'>): Promise<BindingInfo>;
  deleteBinding?(args: Args<'bindings/delete'>): Promise<void>;

  listQueues?(): Promise<QueueInfo[]>;
  /** One page of the queues by name (1-based), when the system pages them itself; otherwise the core cuts the page from listQueues. */
  listQueuesPage?(page: number, pageSize: number): Promise<QueueInfo[]>;
  getQueue?(queue: string): Promise<QueueInfo>;
  declareQueue?(args: Args<'queues/declare'>): Promise<QueueInfo>;
  deleteQueue?(args: Args<'queues/delete'>): Promise<{ messageCount: number }>;
  purgeQueue?(args: Args<'queues/purge'>): Promise<{ messageCount: number }>;
  browseQueue?(args: Args<'queues/messages'>): Promise<BrowsePage<MessageView>>;
  getMessages?(args: Args<'queues/getMessages'>): Promise<MessageView[]>;
  /**
   * `template` is the message as the core compiled it (placeholders expand per
   * copy through it); a connector whose engine expands the same template itself
   * may ignore it.
   */
  publish?(args: Args<'publish'>, template?: MessageTemplate<MessageProperties>, control?: PublishControl): Promise<PublishResult>;

  listTopics?(): Promise<TopicInfo[]>;
  /** One topic; NOT_FOUND naming it when it does not exist. */
  getTopic?(topic: string): Promise<TopicInfo>;
  createTopic?(args: Args<'topics/create'>): Promise<TopicInfo>;
  deleteTopic?(args: Args<'topics/delete'>): Promise<void>;
  browseTopic?(args: Args<'topics/messages'>): Promise<BrowsePage<RecordView>>;
  produce?(args: Args<'topics/produce'>, template?: RecordTemplate, control?: PublishControl): Promise<PublishResult>;
  tail?(topic: string, partition: number | undefined, listener: (record: RecordView & { topic: string }) => void): Unsubscribe;

  listGroups?(): Promise<GroupInfo[]>;
  /** One consumer group; NOT_FOUND naming it when it does not exist. */
  getGroup?(groupId: string): Promise<GroupInfo>;
  previewGroupOffsets?(args: Args<'groups/previewReset'>): Promise<GroupOffsetsPreview>;
  resetGroupOffsets?(args: Args<'groups/resetOffsets'>): Promise<GroupOffsetsPreview>;
  deleteGroup?(groupId: string): Promise<void>;
  /** Redis streams: hands pending entries to another consumer (XCLAIM). */
  claimPending?(args: Args<'groups/claim'>): Promise<{ claimed: string[]; notClaimed: string[] }>;
  clusterOverview?(): Promise<ClusterOverview>;
  describeTopicConfig?(topic: string): Promise<TopicConfigEntry[]>;
  alterTopicConfig?(args: Args<'topics/alterConfig'>): Promise<TopicConfigEntry[]>;
  listDeadLetters?(): Promise<DeadLetterQueueInfo[]>;

  startRedrive?(args: Args<'redrives/start'>): Promise<{ id: string }>;
  getRedrive?(id: string): Promise<RedriveJob | null>;
  cancelRedrive?(id: string): Promise<RedriveJob | null>;
  listRedrives?(): Promise<RedriveJob[]>;
  listAudit?(limit: number): Promise<AuditEntry[]>;
  onRedrive?(listener: (job: RedriveJob) => void): Unsubscribe;

  stats?(): Promise<StatsSnapshot>;
  history?(args: Args<'metrics/history'>): Promise<HistorySeries>;
}
