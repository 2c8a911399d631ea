/**
 * From a saved Kafka connection to @platformatic/kafka client options, and
 * from the client's errors to what a person can act on. Passwords live only
 * in the options handed to the client: nothing here logs or echoes them, and
 * `target` names the brokers without credentials.
 */
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { BaseOptions } from '@platformatic/kafka';
import { ApiError, type ErrorCode } from '../../contract/errors.js';
import type { KafkaConnectionConfig } from '../../contract/operations.js';
import type { ConnectionTestResult } from '../../contract/types.js';

export type Problem = NonNullable<ConnectionTestResult['problem']>;

export const INSECURE_TLS_WARNING =
  'TLS certificate verification is OFF for this connection: anyone on the network path can impersonate the brokers and read the credentials.';

export interface ClientTuning {
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  retries?: number;
  retryDelayMs?: number;
}

export function target(config: KafkaConnectionConfig): string {
  const scheme = config.tls ? 'kafka+ssl' : 'kafka';
  return `${scheme}://${config.brokers.join(',')}`;
}

export function tlsOptions(config: KafkaConnectionConfig): TlsOptions | undefined {
  const t = config.tls;
  if (!t) return undefined;
  return {
    ...(t.ca ? { ca: t.ca } : {}),
    ...(t.cert ? { cert: t.cert } : {}),
    ...(t.key ? { key: t.key } : {}),
    ...(t.passphrase ? { passphrase: t.passphrase } : {}),
    ...(t.servername ? { servername: t.servername } : {}),
    rejectUnauthorized: !t.insecureSkipVerify,
  };
}

/** Options every client of one connection shares; `role` ends up in the broker's client id. */
export function baseOptions(config: KafkaConnectionConfig, role: string, tuning: ClientTuning = {}): BaseOptions {
  const tls = tlsOptions(config);
  return {
    clientId: `${config.clientId ?? 'brokerdeck'}-${role}`,
    bootstrapBrokers: config.brokers,
    connectTimeout: tuning.connectTimeoutMs ?? 5_000,
    requestTimeout: tuning.requestTimeoutMs ?? 30_000,
    retries: tuning.retries ?? 3,
    retryDelay: tuning.retryDelayMs ?? 250,
    ...(tls ? { tls } : {}),
    ...(config.tls?.servername ? { tlsServerName: config.tls.servername } : {}),
    ...(config.sasl ? { sasl: { mechanism: config.sasl.mechanism, username: config.sasl.username, password: config.sasl.password } } : {}),
  } as BaseOptions;
}

interface ErrorNode {
  name?: string;
  code?: string;
  message?: string;
  apiId?: string;
  errors?: unknown[];
  cause?: unknown;
}

/** Every error in a client error's tree: MultipleErrors nest `errors`, wrappers nest `cause`. */
export function errorChain(error: unknown): ErrorNode[] {
  const out: ErrorNode[] = [];
  const seen = new Set<unknown>();
  const visit = (e: unknown, depth: number) => {
    if (!e || typeof e !== 'object' || seen.has(e) || depth > 12) return;
    seen.add(e);
    const node = e as ErrorNode;
    out.push(node);
    for (const inner of node.errors ?? []) visit(inner, depth + 1);
    visit(node.cause, depth + 1);
  };
  visit(error, 0);
  return out;
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_|HOSTNAME_MISMATCH|EPROTO$|ERR_OSSL)/;
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'ECONNRESET', 'EPIPE']);

/** Kafka protocol errors (by their API name) and what they mean for a caller. */
const PROTOCOL_CODES: Record<string, ErrorCode> = {
  UNKNOWN_TOPIC_OR_PARTITION: 'NOT_FOUND',
  UNKNOWN_TOPIC_ID: 'NOT_FOUND',
  GROUP_ID_NOT_FOUND: 'NOT_FOUND',
  TOPIC_ALREADY_EXISTS: 'CONFLICT',
  NON_EMPTY_GROUP: 'PRECONDITION_FAILED',
  UNKNOWN_MEMBER_ID: 'PRECONDITION_FAILED',
  ILLEGAL_GENERATION: 'PRECONDITION_FAILED',
  REBALANCE_IN_PROGRESS: 'PRECONDITION_FAILED',
  INVALID_PARTITIONS: 'INVALID_ARGUMENT',
  INVALID_REPLICATION_FACTOR: 'INVALID_ARGUMENT',
  INVALID_REPLICA_ASSIGNMENT: 'INVALID_ARGUMENT',
  INVALID_CONFIG: 'INVALID_ARGUMENT',
  INVALID_TOPIC_EXCEPTION: 'INVALID_ARGUMENT',
  INVALID_REQUEST: 'INVALID_ARGUMENT',
  POLICY_VIOLATION: 'INVALID_ARGUMENT',
  MESSAGE_TOO_LARGE: 'TOO_LARGE',
  RECORD_LIST_TOO_LARGE: 'TOO_LARGE',
  OFFSET_METADATA_TOO_LARGE: 'TOO_LARGE',
  TOPIC_AUTHORIZATION_FAILED: 'FORBIDDEN',
  GROUP_AUTHORIZATION_FAILED: 'FORBIDDEN',
  CLUSTER_AUTHORIZATION_FAILED: 'FORBIDDEN',
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 'FORBIDDEN',
  DELEGATION_TOKEN_AUTHORIZATION_FAILED: 'FORBIDDEN',
  TOPIC_DELETION_DISABLED: 'FORBIDDEN',
  SASL_AUTHENTICATION_FAILED: 'UNAUTHORIZED',
  UNSUPPORTED_SASL_MECHANISM: 'UNAUTHORIZED',
  ILLEGAL_SASL_STATE: 'UNAVAILABLE',
  NOT_COORDINATOR: 'UNAVAILABLE',
  COORDINATOR_NOT_AVAILABLE: 'UNAVAILABLE',
  COORDINATOR_LOAD_IN_PROGRESS: 'UNAVAILABLE',
  LEADER_NOT_AVAILABLE: 'UNAVAILABLE',
  NOT_LEADER_OR_FOLLOWER: 'UNAVAILABLE',
  // A leader elected a moment ago, or metadata that has not caught up with it yet: asked again, they pass.
  FENCED_LEADER_EPOCH: 'UNAVAILABLE',
  UNKNOWN_LEADER_EPOCH: 'UNAVAILABLE',
  REPLICA_NOT_AVAILABLE: 'UNAVAILABLE',
  OFFSET_NOT_AVAILABLE: 'UNAVAILABLE',
  KAFKA_STORAGE_ERROR: 'UNAVAILABLE',
  NETWORK_EXCEPTION: 'UNAVAILABLE',
  REQUEST_TIMED_OUT: 'UNAVAILABLE',
  NOT_ENOUGH_REPLICAS: 'UNAVAILABLE',
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: 'UNAVAILABLE',
  UNSUPPORTED_VERSION: 'UNAVAILABLE',
};

export interface Classified {
  problem: Problem | null;
  code: ErrorCode;
  message: string;
  /** A Kafka protocol error name, when the broker gave one. */
  apiId?: string;
}

/**
 * Sorts a client error into the failure a person can act on: the brokers
 * cannot be reached, TLS failed, the credentials were refused, the request
 * timed out, or the broker answered with a protocol error. `where` names the
 * brokers; `user` and `mechanism` name the login (never the password).
 */
export function classify(error: unknown, where = 'the brokers', login?: { user: string; mechanism: string }): Classified {
  if (error instanceof ApiError) return { problem: null, code: error.code, message: error.message };
  const chain = errorChain(error);
  const codes = chain.map((e) => e.code ?? '');
  const apiIds = chain.map((e) => e.apiId).filter((x): x is string => typeof x === 'string');

  if (apiIds.includes('SASL_AUTHENTICATION_FAILED') || (codes.includes('PLT_KFK_AUTHENTICATION') && !apiIds.includes('ILLEGAL_SASL_STATE') && !apiIds.includes('UNSUPPORTED_SASL_MECHANISM'))) {
    const who = login ? ` for user "${login.user}" (${login.mechanism})` : '';
    return { problem: 'auth_failed', code: 'UNAUTHORIZED', apiId: 'SASL_AUTHENTICATION_FAILED', message: `authentication failed at ${where}: the broker refused the credentials${who}` };
  }
  if (apiIds.includes('UNSUPPORTED_SASL_MECHANISM')) {
    return {
      problem: 'auth_failed',
      code: 'UNAUTHORIZED',
      apiId: 'UNSUPPORTED_SASL_MECHANISM',
      message: `authentication failed at ${where}: the broker does not accept SASL mechanism ${login?.mechanism ?? '(none)'} on this listener`,
    };
  }
  if (apiIds.includes('ILLEGAL_SASL_STATE')) {
    return {
      problem: 'protocol_error',
      code: 'UNAVAILABLE',
      apiId: 'ILLEGAL_SASL_STATE',
      message: `the listener at ${where} does not use SASL: remove the SASL settings or connect to the broker's SASL port`,
    };
  }
  const tls = chain.find((e) => TLS_CODES.test(e.code ?? '') || /TLS handshake|certificate|SSL routines|wrong version number/i.test(e.message ?? ''));
  if (tls) {
    const detail = tls.message && !/TLS handshake failed/.test(tls.message) ? `: ${tls.message}` : '';
    const hint = /self[- ]signed|unable to (verify|get)|certificate/i.test(tls.message ?? '') ? ' (give the CA certificate in tls.ca, or check the server name)' : ' (is this a TLS listener?)';
    return { problem: 'tls_error', code: 'UNAVAILABLE', message: `TLS failed with ${where}${detail}${hint}` };
  }
  const unreachable = chain.find((e) => UNREACHABLE_CODES.has(e.code ?? ''));
  if (unreachable && unreachable.code !== 'ECONNRESET' && unreachable.code !== 'EPIPE') {
    return { problem: 'unreachable', code: 'UNAVAILABLE', message: `cannot reach ${where}: ${unreachable.message ?? unreachable.code}` };
  }
  const timedOut = chain.find((e) => e.code === 'PLT_KFK_TIMEOUT' || e.code === 'ETIMEDOUT' || /timed? ?out/i.test(e.message ?? ''));
  if (timedOut) {
    return { problem: 'timeout', code: 'UNAVAILABLE', message: `${where} did not answer in time (${timedOut.message ?? 'timeout'})` };
  }
  for (const apiId of apiIds) {
    const code = PROTOCOL_CODES[apiId];
    if (code) {
      const node = chain.find((e) => e.apiId === apiId);
      return { problem: code === 'UNAVAILABLE' ? 'protocol_error' : null, code, apiId, message: `${apiId}: ${node?.message ?? apiId}` };
    }
  }
  if (unreachable) {
    return { problem: 'unreachable', code: 'UNAVAILABLE', message: `the connection to ${where} was reset: ${unreachable.message ?? unreachable.code}` };
  }
  if (chain.some((e) => e.code === 'PLT_KFK_NETWORK' && /closed/i.test(e.message ?? '')) && !chain.some((e) => e.code === 'PLT_KFK_PROTOCOL')) {
    return {
      problem: 'protocol_error',
      code: 'UNAVAILABLE',
      message: `${where} closed the connection right away: the listener may expect TLS or SASL, or it is not a Kafka broker`,
    };
  }
  if (apiIds.length > 0) {
    const node = chain.find((e) => e.apiId === apiIds[0]);
    return { problem: 'protocol_error', code: 'INTERNAL', apiId: apiIds[0]!, message: `${apiIds[0]}: ${node?.message ?? ''}`.trim() };
  }
  const deepest = [...chain].reverse().find((e) => e.message) ?? chain[0];
  const network = codes.includes('PLT_KFK_NETWORK') || codes.includes('PLT_KFK_MULTIPLE');
  return {
    problem: network ? 'unreachable' : null,
    code: network ? 'UNAVAILABLE' : 'INTERNAL',
    message: deepest?.message ?? String(error),
  };
}

/** An operation's failure as the contract's error, with a message that says where. */
export function toApiError(error: unknown, what: string, where?: string, login?: { user: string; mechanism: string }): ApiError {
  if (error instanceof ApiError) return error;
  const c = classify(error, where, login);
  return new ApiError(c.code, `${what}: ${c.message}`);
}

/** True when a failure leaves it unknown whether a write reached the broker (the request may have been applied). */
export function isTransient(error: unknown): boolean {
  const c = classify(error);
  return c.code === 'UNAVAILABLE' || c.problem === 'timeout' || c.problem === 'unreachable';
}
