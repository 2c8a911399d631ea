/**
 * Every operation a client can ask of the core, declared once: the name, the
 * runtime schema of its input, and the type of its output. The transports
 * (IPC, HTTP/WebSocket, direct calls) validate against these schemas before a
 * handler runs, and the renderer's client is typed from the same table.
 */
import { z } from 'zod';
import type {
  AmqpChannelInfo,
  AmqpConnectionInfo,
  AmqpUserInfo,
  KafkaClientInfo,
  KafkaUserInfo,
  KafkaUsersInfo,
  AuditEntry,
  BindingInfo,
  BrowsePage,
  ClusterOverview,
  ConnectionInfo,
  ConnectionTestResult,
  ConsumerInfo,
  DeadLetterQueueInfo,
  ExchangeInfo,
  GroupInfo,
  GroupOffsetsPreview,
  Health,
  ListenerInfo,
  HistoryEntry,
  HistorySeries,
  MessageView,
  PolicyInfo,
  PublishJob,
  PublishResult,
  QueueDeclareResult,
  QueueInfo,
  RecordView,
  RedriveJob,
  Template,
  TopicConfigEntry,
  TopicInfo,
  VhostInfo,
} from './types.js';

/** Declares an operation: its input schema now, its output type as a phantom. */
function op<O>() {
  return <I extends z.ZodType>(input: I) => ({ input, output: undefined as unknown as O });
}

const name = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, `${what} must not be empty`)
    .max(255, `${what} must be at most 255 characters`);

/** Exchange names may be empty (the default exchange). */
const exchangeName = z.string({ error: 'exchange must be a string' }).max(255, 'exchange must be at most 255 characters');
const connectionId = name('connectionId');
/**
 * The virtual host an operation addresses, where a connection has several (the
 * embedded broker); without it, the connection's own (`/` on the embedded broker).
 */
const vhost = z
  .string({ error: 'vhost must be a string' })
  .min(1, 'vhost must not be empty')
  .refine((v) => new TextEncoder().encode(v).length <= 255, 'vhost must be at most 255 bytes of UTF-8')
  .optional();
/** A user name of the AMQP listener: as RabbitMQ, up to 255 bytes of UTF-8, no control characters. */
const amqpUserName = z
  .string({ error: 'user must be a string' })
  .min(1, 'user must not be empty')
  .refine((v) => new TextEncoder().encode(v).length <= 255, 'user must be at most 255 bytes of UTF-8')
  .refine((v) => !/[\u0000-\u001f\u007f]/.test(v), 'user must not contain control characters');
/**
 * A user name given to the Kafka listener from Brokerdeck: 1 to 255 bytes of UTF-8,
 * no control characters, and no "=" or ",": SCRAM carries the name escaped
 * (=3D, =2C) and PLAIN does not, so such a name is one that clients and tools
 * easily disagree on. Names made over the wire (kafka-configs) may hold them,
 * and can still be listed and deleted (kafkaExistingUserName).
 */
const kafkaUserName = z
  .string({ error: 'user must be a string' })
  .min(1, 'user must not be empty')
  .refine((v) => new TextEncoder().encode(v).length <= 255, 'user must be at most 255 bytes of UTF-8')
  .refine((v) => !/[\u0000-\u001f\u007f]/.test(v), 'user must not contain control characters')
  .refine((v) => !/[=,]/.test(v), 'user must not contain "=" or "," (SCRAM escapes them and not every client does the same)');
const kafkaExistingUserName = z
  .string({ error: 'user must be a string' })
  .min(1, 'user must not be empty')
  .refine((v) => new TextEncoder().encode(v).length <= 255, 'user must be at most 255 bytes of UTF-8');
const kafkaMechanism = z.enum(['SCRAM-SHA-256', 'SCRAM-SHA-512'], { error: 'mechanism must be SCRAM-SHA-256 or SCRAM-SHA-512' });
/** Kafka's bounds on SCRAM iterations (ScramMechanism: at least 4096; the broker refuses more than 16384). */
export const KAFKA_MIN_ITERATIONS = 4096;
export const KAFKA_MAX_ITERATIONS = 16384;
/** The least length of a password set from Brokerdeck (Kafka has none of its own). */
export const KAFKA_MIN_PASSWORD = 8;
const requiredVhost = z
  .string({ error: 'vhost must be a string' })
  .min(1, 'vhost must not be empty')
  .refine((v) => new TextEncoder().encode(v).length <= 255, 'vhost must be at most 255 bytes of UTF-8');
/** A permission: a regular expression searched in resource names, as RabbitMQ's (empty matches nothing). */
const permissionPattern = (what: string) =>
  z
    .string({ error: `${what} must be a string (a regular expression)` })
    .max(1_000, `${what} must be at most 1000 characters`)
    .superRefine((v, ctx) => {
      try {
        new RegExp(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: `${what} is not a valid regular expression: ${(e as Error).message}` });
      }
    });
const intFromQuery = (what: string, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ error: `${what} must be a number` })
    .int(`${what} must be an integer`)
    .min(min, `${what} must be at least ${min}`)
    .max(max, `${what} must be at most ${max}`);

/** A boolean in a JSON body, or `true`/`false`/`1`/`0` in a query string (where "false" must not read as true). */
const boolFromQuery = (what: string) =>
  z
    .union([z.boolean(), z.enum(['true', 'false', '1', '0'])], { error: `${what} must be true or false` })
    .transform((v) => v === true || v === 'true' || v === '1');

const args = z.record(z.string(), z.unknown(), { error: 'arguments must be an object' });

/**
 * A header table: an object whose values pass `value`, any own key kept, `__proto__`
 * included (a header of that name is data; z.record drops it). The table is rebuilt
 * with own properties, so a key can never reach Object.prototype.
 */
function headerTable<V extends z.ZodType>(value: V, error: string) {
  return z
    .custom<Record<string, unknown>>((v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v), { error })
    .transform((table, ctx) => {
      const out: Record<string, z.output<V>> = {};
      for (const [key, raw] of Object.entries(table)) {
        const parsed = value.safeParse(raw);
        if (!parsed.success) {
          ctx.addIssue({ code: 'custom', message: parsed.error.issues[0]?.message ?? error, path: [key] });
          return z.NEVER;
        }
        Object.defineProperty(out, key, { value: parsed.data, enumerable: true, writable: true, configurable: true });
      }
      return out;
    });
}

export const messagePropertiesSchema = z
  .object({
    contentType: z.string().max(255).optional(),
    contentEncoding: z.string().max(255).optional(),
    headers: headerTable(z.unknown(), 'headers must be an object').optional(),
    deliveryMode: z.union([z.literal(1), z.literal(2)], { error: 'deliveryMode must be 1 (transient) or 2 (persistent)' }).optional(),
    priority: z.number().int('priority must be an integer').min(0, 'priority must be 0–255').max(255, 'priority must be 0–255').optional(),
    correlationId: z.string().max(255).optional(),
    replyTo: z.string().max(255).optional(),
    expiration: z
      .string({ error: 'expiration must be a string of milliseconds, as in AMQP' })
      .regex(/^\d+$/, 'expiration must be a non-negative integer number of milliseconds, as a string')
      .optional(),
    messageId: z.string().max(255).optional(),
    timestamp: z.number().int().optional(),
    type: z.string().max(255).optional(),
    userId: z.string().max(255).optional(),
    appId: z.string().max(255).optional(),
  })
  .strict();

/** Filters run in the core; every browse answer says how many were scanned and matched. */
export const filterSchema = z.object({
  q: z.string().max(10_000).optional(),
  jsonPath: z.string().max(1_000).optional(),
  jsonEquals: z.string().max(10_000).optional(),
  jsonContains: z.string().max(10_000).optional(),
  headerName: z.string().max(255).optional(),
  headerValue: z.string().max(10_000).optional(),
  propertyName: z.string().max(64).optional(),
  propertyValue: z.string().max(10_000).optional(),
  key: z.string().max(10_000).optional(),
  from: intFromQuery('from').optional(),
  to: intFromQuery('to').optional(),
});
export type MessageFilter = z.infer<typeof filterSchema>;

const bodyEncoding = z.enum(['utf8', 'base64'], { error: 'bodyEncoding must be "utf8" or "base64"' });

export const publishSchema = z.object({
  connectionId,
  vhost,
  exchange: exchangeName.default(''),
  routingKey: z.string({ error: 'routingKey must be a string' }).max(255, 'routingKey must be at most 255 characters').default(''),
  body: z.string({ error: 'body must be a string' }),
  bodyEncoding: bodyEncoding.default('utf8'),
  properties: messagePropertiesSchema.default({}),
  count: z.number().int('count must be an integer').min(1, 'count must be at least 1').max(1_000_000, 'count must be at most 1,000,000').default(1),
  mandatory: z.boolean().default(true),
  /** SQS FIFO queues and SNS FIFO topics: the message group (order is kept within a group). */
  messageGroupId: z.string({ error: 'messageGroupId must be a string' }).min(1, 'messageGroupId must not be empty').max(128, 'messageGroupId must be at most 128 characters').optional(),
  /** SQS FIFO queues and SNS FIFO topics: the deduplication id (needed unless content-based deduplication is on). */
  deduplicationId: z.string({ error: 'deduplicationId must be a string' }).min(1, 'deduplicationId must not be empty').max(128, 'deduplicationId must be at most 128 characters').optional(),
  /** SQS standard queues: seconds before the message becomes visible (0–900). */
  delaySeconds: z.number({ error: 'delaySeconds must be a number' }).int('delaySeconds must be an integer').min(0, 'delaySeconds must be 0–900').max(900, 'delaySeconds must be 0–900').optional(),
});

export const produceSchema = z.object({
  connectionId,
  vhost,
  topic: name('topic'),
  key: z.string().nullable().optional(),
  value: z.string({ error: 'value must be a string' }).nullable(),
  valueEncoding: bodyEncoding.default('utf8'),
  headers: headerTable(z.string({ error: 'a header value must be a string' }), 'headers must be an object of strings').default({}),
  partition: z.number().int().min(0, 'partition must be at least 0').optional(),
  count: z.number().int().min(1, 'count must be at least 1').max(1_000_000, 'count must be at most 1,000,000').default(1),
  compression: z.enum(['none', 'gzip', 'snappy', 'lz4', 'zstd']).optional(),
  /** Kinesis: the hash key (a decimal 128-bit integer) that picks the shard instead of the MD5 of the partition key. */
  explicitHashKey: z
    .string({ error: 'explicitHashKey must be a string' })
    .regex(/^(0|[1-9][0-9]{0,38})$/, 'explicitHashKey must be a decimal integer from 0 to 2^128 - 1')
    // zod runs every check: the range is asked only of what the pattern let through (BigInt throws on anything else).
    .refine((v) => !/^\d+$/.test(v) || BigInt(v) < 2n ** 128n, 'explicitHashKey must be a decimal integer from 0 to 2^128 - 1')
    .optional(),
  /** Redis streams: the entry id to add (`<ms>-<seq>`, or `<ms>-*` for the next sequence of that ms); default: the server picks one. */
  position: z.string({ error: 'position must be a string' }).regex(/^\d{1,20}-(\d{1,20}|\*)$/, 'position must be a stream entry id such as 1700000000000-0 (or 1700000000000-*)').optional(),
  /** Redis streams: trims the stream as each entry is added (XADD MAXLEN or MINID; `~`, Redis's cheaper near-trim, unless `exact`). */
  trim: z
    .object({
      maxLen: z.number({ error: 'trim.maxLen must be a number' }).int('trim.maxLen must be an integer').min(0, 'trim.maxLen must be at least 0').optional(),
      minId: z.string({ error: 'trim.minId must be a string' }).regex(/^\d{1,20}(-\d{1,20})?$/, 'trim.minId must be a stream entry id such as 1700000000000-0').optional(),
      exact: z.boolean().default(false),
    })
    .refine((t) => (t.maxLen === undefined) !== (t.minId === undefined), { message: 'trim needs exactly one of maxLen and minId', path: ['maxLen'] })
    .optional(),
});

const redriveTarget = z.object({ exchange: exchangeName, routingKey: z.string().max(255) });

export const redriveSchema = z
  .object({
    connectionId,
    vhost,
    source: name('source'),
    messageIds: z.array(z.string()).max(1_000_000).optional(),
    all: z.boolean().optional(),
    filter: filterSchema.optional(),
    target: redriveTarget.optional(),
    edit: z.object({ body: z.string().optional(), headers: headerTable(z.unknown(), 'edit.headers must be an object').optional() }).optional(),
    ratePerSecond: z.number().positive('ratePerSecond must be positive').max(1_000_000).optional(),
    /** Kafka: re-drive records even if Brokerdeck already re-drove them once. */
    force: z.boolean().optional(),
    /** SQS: hand the whole dead-letter queue to SQS's own message-move task (StartMessageMoveTask) instead of moving each message here. */
    useMoveTask: z.boolean().optional(),
    /** SQS: accept that reading past unselected messages raises their receive count (refused on a queue with a redrive policy without it). */
    allowReceiveCountRisk: z.boolean().optional(),
    /** Google Pub/Sub: accept that pulling past unselected messages counts a delivery attempt (refused on a subscription with a dead-letter policy without it). */
    allowDeliveryAttemptRisk: z.boolean().optional(),
  })
  .refine((v) => v.all === true || (v.messageIds !== undefined && v.messageIds.length > 0), {
    message: 'give messageIds (one or more) or set all: true',
    path: ['messageIds'],
  })
  .refine((v) => v.edit === undefined || (v.messageIds?.length ?? 0) === 1, {
    message: 'edit applies to exactly one message: give one messageId',
    path: ['edit'],
  });

const tlsSchema = z
  .object({
    ca: z.string().max(100_000).optional(),
    cert: z.string().max(100_000).optional(),
    key: z.string().max(100_000).optional(),
    passphrase: z.string().max(1_000).optional(),
    /** Skips certificate verification; the UI shows a warning while it is on. */
    insecureSkipVerify: z.boolean().default(false),
    servername: z.string().max(255).optional(),
  })
  .strict();

export const rabbitConnectionSchema = z.object({
  kind: z.literal('rabbitmq'),
  name: name('name'),
  amqpUrl: z
    .string({ error: 'amqpUrl must be a string' })
    .regex(/^amqps?:\/\/[^\s]+$/, 'amqpUrl must look like amqp://user:password@host:5672/vhost (or amqps://)'),
  managementUrl: z.string().regex(/^https?:\/\/[^\s]+$/, 'managementUrl must look like http://host:15672').optional(),
  tls: tlsSchema.optional(),
  readOnly: z.boolean().default(false),
  /** Peeking a quorum queue counts toward its delivery limit: allowed only when set. */
  allowQuorumPeek: z.boolean().default(false),
});

export const kafkaConnectionSchema = z.object({
  kind: z.literal('kafka'),
  name: name('name'),
  brokers: z
    .array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'each broker must be host:port'), { error: 'brokers must be a list of host:port' })
    .min(1, 'brokers must list at least one host:port'),
  clientId: z.string().max(255).optional(),
  sasl: z
    .object({
      mechanism: z.enum(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'], { error: 'sasl.mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512' }),
      username: z.string().min(1, 'sasl.username must not be empty'),
      password: z.string(),
    })
    .optional(),
  tls: tlsSchema.optional(),
  schemaRegistryUrl: z.string().regex(/^https?:\/\/[^\s]+$/, 'schemaRegistryUrl must be an http(s) URL').optional(),
  deadLetterPattern: z.string().max(1_000).optional(),
  readOnly: z.boolean().default(false),
});

/**
 * Amazon SQS and SNS: a region and credentials (an access key pair, a named
 * profile from ~/.aws, or, with neither, the SDK's default chain); `endpoint` points at
 * another server (a VPC endpoint, a local stand-in).
 */
const awsConnectionFields = {
  name: name('name'),
  endpoint: z.string({ error: 'endpoint must be a string' }).regex(/^https?:\/\/[^\s]+$/, 'endpoint must be an http(s) URL such as https://sqs.eu-west-1.amazonaws.com').optional(),
  region: z
    .string({ error: 'region must be a string' })
    .regex(/^[a-z0-9-]{1,64}$/, 'region must be an AWS region name such as eu-west-1')
    .optional(),
  accessKeyId: z.string({ error: 'accessKeyId must be a string' }).min(1, 'accessKeyId must not be empty').max(256).optional(),
  secretAccessKey: z.string({ error: 'secretAccessKey must be a string' }).min(1, 'secretAccessKey must not be empty').max(1024).optional(),
  sessionToken: z.string({ error: 'sessionToken must be a string' }).max(10_000).optional(),
  profile: z.string({ error: 'profile must be a string' }).min(1, 'profile must not be empty').max(256).optional(),
  readOnly: z.boolean().default(false),
};

type AwsCredentialFields = { accessKeyId?: string | undefined; secretAccessKey?: string | undefined; profile?: string | undefined };
const awsCredentialsChecks = <T extends z.ZodType<AwsCredentialFields>>(schema: T) =>
  schema
    .refine((v) => (v.accessKeyId === undefined) === (v.secretAccessKey === undefined), {
      message: 'give accessKeyId and secretAccessKey together',
      path: ['secretAccessKey'],
    })
    .refine((v) => v.profile === undefined || v.accessKeyId === undefined, { message: 'give either a profile or an access key pair, not both', path: ['profile'] });

export const sqsConnectionSchema = awsCredentialsChecks(
  z.object({
    kind: z.literal('sqs'),
    ...awsConnectionFields,
    /** Browsing receives messages, which raises their receive count: allowed on queues with a redrive policy only when set. */
    allowReceiveCountRisk: z.boolean().default(false),
  }),
);
export const snsConnectionSchema = awsCredentialsChecks(z.object({ kind: z.literal('sns'), ...awsConnectionFields }));
export const kinesisConnectionSchema = awsCredentialsChecks(z.object({ kind: z.literal('kinesis'), ...awsConnectionFields }));

/**
 * Redis: streams, lists used as queues and pub/sub channels. `url` carries the
 * user, password and database number (`redis://user:pass@host:6379/0`, or
 * `rediss://` for TLS); `cluster` treats the URL's host as a seed of a Redis
 * Cluster.
 */
export const redisConnectionSchema = z.object({
  kind: z.literal('redis'),
  name: name('name'),
  url: z
    .string({ error: 'url must be a string' })
    .max(2_000, 'url must be at most 2000 characters')
    .regex(/^rediss?:\/\/[^\s]+$/, 'url must look like redis://user:password@host:6379/0 (or rediss://)'),
  tls: tlsSchema.optional(),
  cluster: z.boolean().default(false),
  /** Pending entries delivered at least this many times count as dead letters (per group overrides in `deadLetterDeliveries`). */
  deadLetterAfterDeliveries: z.number().int().min(1).max(1_000_000).default(5),
  deadLetterDeliveries: z.record(z.string().max(1_000), z.number().int().min(1).max(1_000_000)).optional(),
  /** A pattern naming a stream's dead-letter stream, `{stream}` standing for the stream (besides `<stream>:dlq`, `<stream>.dlq` and `dlq:<stream>`). */
  deadLetterPattern: z.string().max(1_000).optional(),
  readOnly: z.boolean().default(false),
});

/**
 * Google Cloud Pub/Sub: a project, with a service-account key file, the
 * application default credentials, or an emulator (`emulatorHost`, host:port).
 */
export const pubsubConnectionSchema = z
  .object({
    kind: z.literal('pubsub'),
    name: name('name'),
    projectId: z
      .string({ error: 'projectId must be a string' })
      .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'projectId must be a Google Cloud project id: 6 to 30 lowercase letters, digits and hyphens, starting with a letter'),
    emulatorHost: z.string({ error: 'emulatorHost must be a string' }).regex(/^[^\s:/]+:\d{1,5}$/, 'emulatorHost must be host:port').optional(),
    keyFile: z.string({ error: 'keyFile must be a string' }).min(1, 'keyFile must not be empty').max(4_096).optional(),
    /** Browsing a subscription with a dead-letter policy counts as a delivery attempt: allowed only when set (or per request). */
    allowDeliveryAttemptRisk: z.boolean().default(false),
    readOnly: z.boolean().default(false),
  })
  .refine((v) => v.emulatorHost === undefined || v.keyFile === undefined, { message: 'give either emulatorHost or keyFile, not both', path: ['keyFile'] });

export const connectionConfigSchema = z.discriminatedUnion(
  'kind',
  [rabbitConnectionSchema, kafkaConnectionSchema, sqsConnectionSchema, snsConnectionSchema, kinesisConnectionSchema, redisConnectionSchema, pubsubConnectionSchema],
  { error: 'kind must be "rabbitmq", "kafka", "sqs", "sns", "kinesis", "redis" or "pubsub"' },
);
export type ConnectionConfig = z.output<typeof connectionConfigSchema>;
export type RabbitConnectionConfig = z.output<typeof rabbitConnectionSchema>;
export type KafkaConnectionConfig = z.output<typeof kafkaConnectionSchema>;
export type SqsConnectionConfig = z.output<typeof sqsConnectionSchema>;
export type SnsConnectionConfig = z.output<typeof snsConnectionSchema>;
export type KinesisConnectionConfig = z.output<typeof kinesisConnectionSchema>;
export type AwsConnectionConfig = SqsConnectionConfig | SnsConnectionConfig | KinesisConnectionConfig;
export type RedisConnectionConfig = z.output<typeof redisConnectionSchema>;
export type PubsubConnectionConfig = z.output<typeof pubsubConnectionSchema>;

const groupId = name('groupId');

export const groupOffsetsResetSchema = z
  .object({
    connectionId,
    vhost,
    groupId,
    topic: name('topic').optional(),
    partitions: z.array(z.number().int().min(0)).max(10_000).optional(),
    to: z.enum(['earliest', 'latest', 'timestamp', 'offset'], { error: 'to must be earliest, latest, timestamp or offset' }),
    timestamp: z.number().int().min(0).optional(),
    offset: z.number().int().min(0).optional(),
  })
  .refine((v) => v.to !== 'timestamp' || v.timestamp !== undefined, { message: 'to "timestamp" needs a timestamp (epoch ms)', path: ['timestamp'] })
  .refine((v) => v.to !== 'offset' || v.offset !== undefined, { message: 'to "offset" needs an offset', path: ['offset'] })
  .refine((v) => v.partitions === undefined || v.topic !== undefined, { message: 'partitions need a topic', path: ['partitions'] });

export const operations = {
  'system/health': op<Health>()(z.object({})),
  'listeners/list': op<ListenerInfo[]>()(z.object({})),
  /** The clients connected to the embedded broker's AMQP listener (empty when it does not run). */
  'listeners/amqpConnections': op<AmqpConnectionInfo[]>()(z.object({})),
  /** The channels of one of them, with their consumers. */
  'listeners/amqpChannels': op<AmqpChannelInfo[]>()(z.object({ id: name('id') })),
  /** Closes one with connection.close 320 CONNECTION_FORCED, as RabbitMQ's console does. */
  'listeners/amqpClose': op<{ closed: true }>()(
    z.object({
      id: name('id'),
      reason: z.string({ error: 'reason must be a string' }).max(200, 'reason must be at most 200 characters').default('Closed via Brokerdeck'),
    }),
  ),

  /**
   * Moves a wire listener to another port, turns it off or on, or (AMQP) gives it a
   * certificate: applied at once (the old listener's clients are told goodbye) and
   * saved for the next starts. A port that is taken is refused (409) and the old
   * listener keeps running.
   */
  'listeners/configure': op<ListenerInfo>()(
    z
      .object({
        protocol: z.enum(['amqp', 'kafka'], { error: 'protocol must be amqp or kafka' }),
        enabled: z.boolean({ error: 'enabled must be true or false' }).default(true),
        port: z.coerce.number({ error: 'port must be a number' }).int('port must be an integer').min(0, 'port must be 0 (a free one) to 65535').max(65_535, 'port must be 0 (a free one) to 65535'),
        tlsCertFile: z.string({ error: 'tlsCertFile must be a string' }).min(1, 'tlsCertFile must not be empty').max(4_096).optional(),
        tlsKeyFile: z.string({ error: 'tlsKeyFile must be a string' }).min(1, 'tlsKeyFile must not be empty').max(4_096).optional(),
      })
      .refine((v) => (v.tlsCertFile === undefined) === (v.tlsKeyFile === undefined), { message: 'give tlsCertFile and tlsKeyFile together', path: ['tlsKeyFile'] })
      .refine((v) => v.protocol === 'amqp' || v.tlsCertFile === undefined, { message: 'TLS is available for the AMQP listener only', path: ['tlsCertFile'] }),
  ),
  /** The clients connected to the embedded broker's Kafka listener (empty when it does not run). */
  'listeners/kafkaConnections': op<KafkaClientInfo[]>()(z.object({})),
  /** Disconnects one (Kafka has no goodbye: the socket is closed, and clients reconnect by themselves). */
  'listeners/kafkaClose': op<{ closed: true }>()(z.object({ id: name('id') })),
  /** The AMQP listener's users with their permissions (RabbitMQ's `/api/users`, `/api/permissions`). */
  'listeners/amqpUsers': op<AmqpUserInfo[]>()(z.object({})),
  /** Adds a user or changes its password and tags; its permissions are kept. */
  'listeners/amqpUserPut': op<AmqpUserInfo>()(
    z.object({
      user: amqpUserName,
      password: z.string({ error: 'password must be a string' }).min(1, 'password must not be empty').max(1_024, 'password must be at most 1024 characters'),
      tags: z
        .array(z.string({ error: 'each tag must be a string' }).regex(/^[A-Za-z0-9_.-]{1,64}$/, 'each tag must be 1 to 64 letters, digits, dots, hyphens or underscores'), { error: 'tags must be a list of strings' })
        .max(32, 'tags must list at most 32 tags')
        .default([]),
    }),
  ),
  /** Deletes a user; its open connections are closed with 320, as RabbitMQ does. */
  'listeners/amqpUserDelete': op<{ deleted: true }>()(z.object({ user: amqpUserName })),
  /** Sets a user's configure, write and read regular expressions on a virtual host. */
  'listeners/amqpPermissionsPut': op<AmqpUserInfo>()(
    z.object({ user: amqpUserName, vhost: requiredVhost, configure: permissionPattern('configure'), write: permissionPattern('write'), read: permissionPattern('read') }),
  ),
  /** Takes a user's access to a virtual host away; open connections are refused from their next operation. */
  'listeners/amqpPermissionsDelete': op<AmqpUserInfo>()(z.object({ user: amqpUserName, vhost: requiredVhost })),
  /**
   * The Kafka listener's SASL users (what kafka-configs --describe --entity-type users
   * shows: mechanisms and iterations, never a password or salted material), and
   * whether clients must authenticate (not while there are none).
   */
  'listeners/kafkaUsers': op<KafkaUsersInfo>()(z.object({})),
  /**
   * Adds a user or changes its password for the given SCRAM mechanisms (both unless
   * said), salted afresh; its credentials for other mechanisms are kept. PLAIN
   * checks the same credentials. New connections see the change at once.
   */
  'listeners/kafkaUserPut': op<KafkaUserInfo>()(
    z.object({
      user: kafkaUserName,
      password: z
        .string({ error: 'password must be a string' })
        .min(1, 'password must not be empty')
        .min(KAFKA_MIN_PASSWORD, `password must be at least ${KAFKA_MIN_PASSWORD} characters`)
        .max(1_024, 'password must be at most 1024 characters'),
      mechanisms: z
        .array(kafkaMechanism, { error: 'mechanisms must be a list: SCRAM-SHA-256, SCRAM-SHA-512 or both' })
        .min(1, 'mechanisms must name SCRAM-SHA-256, SCRAM-SHA-512 or both')
        .max(2, 'mechanisms must name SCRAM-SHA-256, SCRAM-SHA-512 or both')
        .refine((v) => new Set(v).size === v.length, 'mechanisms must not name one twice')
        .default(['SCRAM-SHA-256', 'SCRAM-SHA-512']),
      iterations: z.coerce
        .number({ error: 'iterations must be a number' })
        .int('iterations must be an integer')
        .min(KAFKA_MIN_ITERATIONS, `iterations must be at least ${KAFKA_MIN_ITERATIONS} (Kafka's minimum)`)
        .max(KAFKA_MAX_ITERATIONS, `iterations must be at most ${KAFKA_MAX_ITERATIONS} (Kafka's maximum)`)
        .default(KAFKA_MIN_ITERATIONS),
    }),
  ),
  /**
   * Deletes a user, or only its credential for one mechanism. New connections are
   * refused at once; connections already authenticated stay, as in Kafka.
   */
  'listeners/kafkaUserDelete': op<{ deleted: true }>()(z.object({ user: kafkaExistingUserName, mechanism: kafkaMechanism.optional() })),

  'connections/list': op<ConnectionInfo[]>()(z.object({})),
  'connections/get': op<ConnectionInfo>()(z.object({ connectionId })),
  'connections/create': op<{ id: string }>()(connectionConfigSchema),
  'connections/update': op<ConnectionInfo>()(z.object({ connectionId, config: connectionConfigSchema })),
  'connections/delete': op<{ deleted: true }>()(z.object({ connectionId })),
  /** Tries a configuration without saving it; tells apart each way it can fail. */
  'connections/test': op<ConnectionTestResult>()(connectionConfigSchema),
  'connections/setReadOnly': op<ConnectionInfo>()(z.object({ connectionId, readOnly: z.boolean() })),

  'vhosts/list': op<VhostInfo[]>()(z.object({ connectionId, vhost })),
  'vhosts/create': op<VhostInfo>()(
    z.object({
      connectionId,
      vhost: vhost.unwrap(),
      description: z.string({ error: 'description must be a string' }).max(1_000, 'description must be at most 1,000 characters').default(''),
    }),
  ),
  'vhosts/delete': op<{ deleted: true }>()(z.object({ connectionId, vhost: vhost.unwrap() })),
  'policies/list': op<PolicyInfo[]>()(z.object({ connectionId, vhost })),
  /** RabbitMQ: creates or replaces a policy of the connection's vhost (the management API's PUT /api/policies/{vhost}/{name}). */
  'policies/declare': op<PolicyInfo>()(
    z.object({
      connectionId,
      vhost,
      name: name('name'),
      pattern: z.string({ error: 'pattern must be a regular expression' }).max(1_000),
      applyTo: z.enum(['all', 'queues', 'exchanges', 'classic_queues', 'quorum_queues', 'streams'], { error: 'applyTo must be all, queues, exchanges, classic_queues, quorum_queues or streams' }).default('all'),
      priority: z.number().int('priority must be an integer').min(0, 'priority must be at least 0').max(1_000_000).default(0),
      definition: z.record(z.string(), z.unknown(), { error: 'definition must be an object' }),
    }),
  ),
  'policies/delete': op<{ deleted: true }>()(z.object({ connectionId, vhost, name: name('name') })),
  'consumers/list': op<ConsumerInfo[]>()(z.object({ connectionId, vhost, queue: name('queue').optional() })),

  'exchanges/list': op<ExchangeInfo[]>()(z.object({ connectionId, vhost })),
  /** One exchange; `NOT_FOUND` naming it when it does not exist. The default exchange is `""`. */
  'exchanges/get': op<ExchangeInfo>()(z.object({ connectionId, vhost, exchange: exchangeName })),
  'exchanges/declare': op<ExchangeInfo>()(
    z.object({
      connectionId,
      vhost,
      exchange: name('exchange'),
      type: z.enum(['direct', 'fanout', 'topic', 'headers'], { error: 'type must be direct, fanout, topic or headers' }),
      durable: z.boolean().default(true),
      autoDelete: z.boolean().default(false),
      internal: z.boolean().default(false),
      arguments: args.default({}),
    }),
  ),
  'exchanges/delete': op<{ deleted: true }>()(z.object({ connectionId, vhost, exchange: name('exchange'), ifUnused: boolFromQuery('ifUnused').default(false) })),

  'bindings/list': op<BindingInfo[]>()(z.object({ connectionId, vhost })),
  'bindings/create': op<BindingInfo>()(
    z.object({
      connectionId,
      vhost,
      source: name('source'),
      destination: name('destination'),
      destinationType: z.enum(['queue', 'exchange']).default('queue'),
      routingKey: z.string().max(255).default(''),
      arguments: args.default({}),
    }),
  ),
  'bindings/delete': op<{ deleted: true }>()(
    z.object({
      connectionId,
      vhost,
      source: name('source'),
      destination: name('destination'),
      destinationType: z.enum(['queue', 'exchange']).default('queue'),
      routingKey: z.string().max(255).default(''),
      arguments: args.default({}),
    }),
  ),

  /**
   * All queues, by name. With `page` (1-based) and/or `pageSize` (default 100, at most 500):
   * only that page, which RabbitMQ serves from the management API's paginated list, so a
   * vhost with thousands of queues shows its first rows at once (then ask without them).
   */
  'queues/list': op<QueueInfo[]>()(
    z.object({ connectionId, vhost, page: intFromQuery('page', 1, 1_000_000).optional(), pageSize: intFromQuery('pageSize', 1, 500).optional() }),
  ),
  'queues/get': op<QueueInfo>()(z.object({ connectionId, vhost, queue: name('queue') })),
  /**
   * Every argument the broker knows is checked by name and type (README, "Declaring"); `type`
   * sets x-queue-type. A dead-letter exchange or queue that does not exist is created first with
   * `createDeadLetter` (the UI sends it on by default), else named in the answer's `warnings`.
   */
  'queues/declare': op<QueueDeclareResult>()(
    z.object({
      connectionId,
      vhost,
      queue: name('queue'),
      type: z.enum(['classic', 'quorum', 'stream'], { error: 'type must be classic, quorum or stream' }).optional(),
      durable: z.boolean().default(true),
      exclusive: z.boolean().default(false),
      autoDelete: z.boolean().default(false),
      arguments: args.default({}),
      createDeadLetter: z.boolean({ error: 'createDeadLetter must be true or false' }).optional(),
      /** The dead-letter queue to create when `createDeadLetter` finds none (default `<queue>.dlq`). */
      deadLetterQueue: name('deadLetterQueue').optional(),
    }),
  ),
  'queues/delete': op<{ messageCount: number }>()(
    z.object({ connectionId, vhost, queue: name('queue'), ifUnused: boolFromQuery('ifUnused').default(false), ifEmpty: boolFromQuery('ifEmpty').default(false) }),
  ),
  'queues/purge': op<{ messageCount: number }>()(z.object({ connectionId, vhost, queue: name('queue') })),
  'queues/messages': op<BrowsePage<MessageView>>()(
    z.object({
      connectionId,
      vhost,
      queue: name('queue'),
      limit: intFromQuery('limit', 1, 100_000).default(100),
      cursor: z.string().max(200).optional(),
      position: intFromQuery('position').optional(),
      includeUnacked: boolFromQuery('includeUnacked').default(true),
      /**
       * RabbitMQ: the person accepts that peeking a quorum queue with a delivery
       * limit counts one delivery attempt per message (refused without it).
       */
      allowQuorumPeek: boolFromQuery('allowQuorumPeek').default(false),
      /**
       * RabbitMQ classic and quorum queues: read past the first 1,000 messages, up to the whole
       * queue (or `scanLimit` messages from the head). Every message up to where the scan stops
       * is taken and handed back: marked redelivered, order kept on a classic queue, delivery
       * count +1 on a quorum queue. The answer's `cost` says so.
       */
      scanAll: boolFromQuery('scanAll').optional(),
      /** With `scanAll`: read at most this many messages from the head (default 1,000,000). */
      scanLimit: intFromQuery('scanLimit', 1, 10_000_000).optional(),
      /**
       * SQS: the person accepts that browsing receives each message read, raising its
       * receive count toward the queue's maxReceiveCount (refused without it on a queue with a redrive policy).
       */
      allowReceiveCountRisk: boolFromQuery('allowReceiveCountRisk').optional(),
      /**
       * Google Pub/Sub: the person accepts that browsing pulls each message read, which counts a
       * delivery attempt toward the subscription's dead-letter policy (refused without it on such a subscription).
       */
      allowDeliveryAttemptRisk: boolFromQuery('allowDeliveryAttemptRisk').optional(),
      ...filterSchema.shape,
    }),
  ),
  'queues/getMessages': op<MessageView[]>()(
    z.object({
      connectionId,
      vhost,
      queue: name('queue'),
      count: z.number().int().min(1, 'count must be at least 1').max(10_000, 'count must be at most 10,000').default(1),
      ackMode: z.enum(['ack', 'requeue', 'reject'], { error: 'ackMode must be ack, requeue or reject' }),
      /** As for queues/messages: requeueing on a quorum queue with a delivery limit counts a delivery. */
      allowQuorumPeek: z.boolean().default(false),
    }),
  ),

  publish: op<PublishResult>()(publishSchema),
  /**
   * The same publish as a job (any count; meant for large ones): answers at once with the
   * job, whose progress (sent, confirmed, rate) reaches the `publishJobs` stream; cancel
   * with `publish/cancel`. `publish` itself still answers when the last copy is confirmed.
   */
  'publish/start': op<PublishJob>()(publishSchema),
  /** `topics/produce` as a job, followed and cancelled as `publish/start`'s. */
  'topics/produceStart': op<PublishJob>()(produceSchema),
  'publish/job': op<PublishJob>()(z.object({ id: name('id') })),
  /** Stops sending; the job ends 'cancelled' with what was confirmed until then. */
  'publish/cancel': op<PublishJob>()(z.object({ id: name('id') })),
  /** Publish jobs of every connection, newest first (kept as re-drives are). */
  'publish/jobs': op<PublishJob[]>()(z.object({})),

  'topics/list': op<TopicInfo[]>()(z.object({ connectionId, vhost })),
  /** One topic with its partitions, watermarks and settings; `NOT_FOUND` naming it when it does not exist. */
  'topics/get': op<TopicInfo>()(z.object({ connectionId, vhost, topic: name('topic') })),
  'topics/create': op<TopicInfo>()(
    z.object({
      connectionId,
      vhost,
      topic: name('topic'),
      partitions: z.number().int('partitions must be an integer').min(1, 'partitions must be at least 1').max(10_000).default(1),
      retentionMs: z.number().int().min(-1).optional(),
      retentionBytes: z.number().int().min(-1).optional(),
      /** Kafka: copies of each partition (default: the broker's default.replication.factor). */
      replicationFactor: z.number().int('replicationFactor must be an integer').min(1, 'replicationFactor must be at least 1').max(32_767).optional(),
      /** Kafka topic configs by name (`cleanup.policy`, `min.insync.replicas`…); the embedded broker keeps retention.ms and retention.bytes only. */
      configs: z.record(z.string().min(1).max(255), z.string({ error: 'a topic config value must be a string' }).max(10_000)).optional(),
    }),
  ),
  /**
   * Kafka: changes topic configs (incrementally: names not given keep their value); a value of
   * null removes the topic's own value, so the broker default applies again. Answers with the
   * topic's configuration after the change. `validateOnly` asks the broker to check only.
   */
  'topics/alterConfig': op<TopicConfigEntry[]>()(
    z.object({
      connectionId,
      vhost,
      topic: name('topic'),
      configs: z.record(z.string().min(1).max(255), z.string().max(10_000).nullable(), { error: 'configs must be an object of names to values (or null)' }),
      validateOnly: z.boolean().default(false),
    }),
  ),
  'topics/delete': op<{ deleted: true }>()(z.object({ connectionId, vhost, topic: name('topic') })),
  'topics/messages': op<BrowsePage<RecordView>>()(
    z.object({
      connectionId,
      vhost,
      topic: name('topic'),
      partition: intFromQuery('partition').optional(),
      offset: intFromQuery('offset').optional(),
      timestamp: intFromQuery('timestamp').optional(),
      /** Where the system places records by ids of its own: start at this one (a Redis stream entry id, a Kinesis sequence number). */
      position: z.string({ error: 'position must be a string' }).min(1, 'position must not be empty').max(200, 'position must be at most 200 characters').optional(),
      limit: intFromQuery('limit', 1, 100_000).default(100),
      cursor: z.string().max(2_000).optional(),
      seek: z.enum(['earliest', 'latest'], { error: 'seek must be earliest or latest' }).optional(),
      ...filterSchema.shape,
    }),
  ),
  'topics/produce': op<PublishResult>()(produceSchema),

  'groups/list': op<GroupInfo[]>()(z.object({ connectionId, vhost })),
  /** One consumer group with its members, offsets and lag; `NOT_FOUND` naming it when it does not exist. */
  'groups/get': op<GroupInfo>()(z.object({ connectionId, vhost, groupId })),
  'groups/previewReset': op<GroupOffsetsPreview>()(groupOffsetsResetSchema),
  'groups/resetOffsets': op<GroupOffsetsPreview>()(groupOffsetsResetSchema),
  'groups/delete': op<{ deleted: true }>()(z.object({ connectionId, vhost, groupId })),
  /**
   * Redis streams: hands a group's pending entries to another consumer (XCLAIM), as a consumer
   * taking over a stuck one does; each claim counts as a delivery. Entries delivered less than
   * `minIdleMs` ago are left alone. Answers which were claimed and which were not pending.
   */
  'groups/claim': op<{ claimed: string[]; notClaimed: string[] }>()(
    z.object({
      connectionId,
      vhost,
      groupId,
      consumer: name('consumer'),
      ids: z
        .array(z.string({ error: 'each id must be a string' }).regex(/^\d{1,20}-\d{1,20}$/, 'each id must be a stream entry id such as 1700000000000-0'), { error: 'ids must be a list of entry ids' })
        .min(1, 'ids must name at least one entry')
        .max(10_000, 'ids must name at most 10,000 entries'),
      minIdleMs: z.number({ error: 'minIdleMs must be a number' }).int('minIdleMs must be an integer').min(0, 'minIdleMs must be at least 0').default(0),
    }),
  ),
  'cluster/overview': op<ClusterOverview>()(z.object({ connectionId, vhost })),
  'topics/config': op<TopicConfigEntry[]>()(z.object({ connectionId, vhost, topic: name('topic') })),

  'deadletters/list': op<DeadLetterQueueInfo[]>()(z.object({ connectionId, vhost })),
  'redrives/start': op<{ id: string }>()(redriveSchema),
  'redrives/get': op<RedriveJob>()(z.object({ id: name('id') })),
  'redrives/cancel': op<RedriveJob>()(z.object({ id: name('id') })),
  'redrives/list': op<RedriveJob[]>()(z.object({})),
  'audit/list': op<AuditEntry[]>()(z.object({ limit: intFromQuery('limit', 1, 10_000).default(200) })),

  'metrics/history': op<HistorySeries>()(
    z.object({
      connectionId,
      vhost,
      kind: z.enum(['queue', 'group']),
      name: name('name'),
      range: z.enum(['hour', 'day']).default('hour'),
    }),
  ),

  'templates/list': op<Template[]>()(z.object({})),
  'templates/save': op<Template>()(
    z.object({ id: z.string().max(64).optional(), name: name('name'), payload: z.record(z.string(), z.unknown()) }),
  ),
  'templates/delete': op<{ deleted: true }>()(z.object({ id: name('id') })),
  'publishHistory/list': op<HistoryEntry[]>()(z.object({ limit: intFromQuery('limit', 1, 1_000).default(100) })),
} as const;

export type Operations = typeof operations;
export type OperationName = keyof Operations;
/** What a caller passes (defaults still optional). */
export type Input<N extends OperationName> = z.input<Operations[N]['input']>;
/** What a handler receives (after validation, defaults applied). */
export type ParsedInput<N extends OperationName> = z.output<Operations[N]['input']>;
export type Output<N extends OperationName> = Operations[N]['output'];

export function isOperationName(value: unknown): value is OperationName {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(operations, value);
}
