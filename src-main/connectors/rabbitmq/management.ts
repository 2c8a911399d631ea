/**
 * A small client of RabbitMQ's management HTTP API. It uses node:http(s)
 * rather than global fetch because fetch cannot take a custom CA, a client
 * certificate or "skip verification" without a dispatcher package, and the
 * connection's TLS options must apply to the management API as well.
 */
import http from 'node:http';
import https from 'node:https';
import type { ConnectionOptions } from 'node:tls';

export type ManagementFailure = 'unreachable' | 'timeout' | 'tls' | 'auth' | 'not_found' | 'http' | 'not_management';

export class ManagementError extends Error {
  constructor(
    readonly failure: ManagementFailure,
    message: string,
    readonly status?: number,
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'ManagementError';
  }
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE']);

export function isTlsErrorCode(code: string | undefined): boolean {
  if (!code) return false;
  return (
    code.startsWith('ERR_SSL') ||
    code.startsWith('ERR_TLS') ||
    code === 'EPROTO' ||
    /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|HOSTNAME_MISMATCH/.test(code)
  );
}

export interface ManagementClientOptions {
  base: string;
  username: string;
  password: string;
  tls: ConnectionOptions;
  timeoutMs?: number;
}

export class ManagementClient {
  readonly base: string;
  private readonly auth: string;
  private readonly agent: http.Agent;
  private readonly secure: boolean;
  private readonly timeoutMs: number;

  constructor(options: ManagementClientOptions) {
    this.base = options.base;
    this.auth = 'Basic ' + Buffer.from(`${options.username}:${options.password}`, 'utf8').toString('base64');
    this.secure = options.base.startsWith('https:');
    this.timeoutMs = options.timeoutMs ?? 10_000;
    // Keep-alive: the connector samples every second, a new TCP (and TLS)
    // handshake each time would cost more than the request.
    this.agent = this.secure
      ? new https.Agent({ keepAlive: true, maxSockets: 4, ...options.tls })
      : new http.Agent({ keepAlive: true, maxSockets: 4 });
  }

  close(): void {
    this.agent.destroy();
  }

  get<T>(path: string, timeoutMs?: number): Promise<T> {
    return this.request<T>('GET', path, undefined, timeoutMs);
  }

  put(path: string, body: unknown, timeoutMs?: number): Promise<unknown> {
    return this.request('PUT', path, body, timeoutMs);
  }

  post(path: string, body: unknown, timeoutMs?: number): Promise<unknown> {
    return this.request('POST', path, body, timeoutMs);
  }

  delete(path: string, timeoutMs?: number, headers?: Record<string, string>): Promise<unknown> {
    return this.request('DELETE', path, undefined, timeoutMs, headers);
  }

  request<T = unknown>(method: string, path: string, body?: unknown, timeoutMs = this.timeoutMs, extraHeaders?: Record<string, string>): Promise<T> {
    const url = new URL(this.base + path);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    const lib = this.secure ? https : http;
    return new Promise<T>((resolve, reject) => {
      const req = lib.request(
        url,
        {
          method,
          agent: this.agent,
          headers: {
            authorization: this.auth,
            accept: 'application/json',
            ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
            ...extraHeaders,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => reject(new ManagementError('unreachable', `the management API connection broke: ${e.message}`)));
          res.on('end', () => {
            clearTimeout(timer);
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            let json: unknown = undefined;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              json = undefined;
            }
            if (status >= 200 && status < 300) {
              if (text && json === undefined) {
                reject(new ManagementError('not_management', `${url.origin} answered, but not with JSON: it does not look like the RabbitMQ management API`, status));
                return;
              }
              resolve(json as T);
              return;
            }
            const reason =
              json && typeof json === 'object' && 'reason' in json ? String((json as { reason: unknown }).reason) : text.slice(0, 200);
            if (status === 401) reject(new ManagementError('auth', `the management API refused the credentials (${reason || 'unauthorized'})`, status, reason));
            else if (status === 404) {
              // RabbitMQ answers unknown objects with a JSON "Object Not Found";
              // anything else at that address is not the management API.
              const isRabbit = json && typeof json === 'object' && 'error' in json;
              reject(
                isRabbit
                  ? new ManagementError('not_found', reason || 'not found', status, reason)
                  : new ManagementError('not_management', `${url.origin}${url.pathname} is not the RabbitMQ management API (HTTP 404)`, status),
              );
            } else reject(new ManagementError('http', `the management API answered HTTP ${status}: ${reason}`, status, reason));
          });
        },
      );
      const timer = setTimeout(() => {
        req.destroy(new ManagementError('timeout', `the management API at ${url.origin} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      req.on('error', (e: Error & { code?: string }) => {
        clearTimeout(timer);
        if (e instanceof ManagementError) return reject(e);
        if (isTlsErrorCode(e.code)) return reject(new ManagementError('tls', `TLS with the management API at ${url.origin} failed: ${e.message}`));
        if (e.code && UNREACHABLE.has(e.code)) {
          return reject(new ManagementError('unreachable', `the management API at ${url.origin} cannot be reached (${e.code})`));
        }
        reject(new ManagementError('unreachable', `the management API at ${url.origin} cannot be reached: ${e.message}`));
      });
      if (payload) req.write(payload);
      req.end();
    });
  }
}

/** `/api/queues/<vhost>/<name>`: every path segment is encoded, so "/" as a vhost becomes %2F. */
export function apiPath(...segments: string[]): string {
  return '/api/' + segments.map((s) => encodeURIComponent(s)).join('/');
}

export interface MgmtOverview {
  rabbitmq_version?: string;
  product_version?: string;
  product_name?: string;
  management_version?: string;
  cluster_name?: string;
  erlang_version?: string;
  node?: string;
  object_totals?: Record<string, number>;
}

export interface MgmtRate {
  rate?: number;
}

export interface MgmtQueue {
  name: string;
  vhost?: string;
  type?: string;
  durable?: boolean;
  auto_delete?: boolean;
  exclusive?: boolean;
  arguments?: Record<string, unknown>;
  policy?: string | null;
  operator_policy?: string | null;
  effective_policy_definition?: Record<string, unknown> | [] | null;
  messages?: number;
  messages_ready?: number;
  messages_unacknowledged?: number;
  message_bytes?: number;
  consumers?: number;
  consumer_utilisation?: number | null;
  consumer_capacity?: number | null;
  state?: string;
  message_stats?: {
    publish_details?: MgmtRate;
    deliver_get_details?: MgmtRate;
    deliver_details?: MgmtRate;
    ack_details?: MgmtRate;
    redeliver_details?: MgmtRate;
  };
}

export interface MgmtExchange {
  name: string;
  type: string;
  durable?: boolean;
  auto_delete?: boolean;
  internal?: boolean;
  arguments?: Record<string, unknown>;
  policy?: string | null;
}

export interface MgmtBinding {
  source: string;
  destination: string;
  destination_type: 'queue' | 'exchange';
  routing_key: string;
  arguments?: Record<string, unknown>;
  properties_key?: string;
}

export interface MgmtPolicy {
  name: string;
  vhost: string;
  pattern: string;
  'apply-to': string;
  priority: number;
  definition: Record<string, unknown>;
}

export interface MgmtConsumer {
  consumer_tag: string;
  prefetch_count?: number;
  ack_required?: boolean;
  exclusive?: boolean;
  active?: boolean;
  activity_status?: string;
  arguments?: Record<string, unknown>;
  queue?: { name: string; vhost?: string };
  channel_details?: { name?: string; connection_name?: string; peer_host?: string; peer_port?: number; user?: string; number?: number };
}

export interface MgmtChannel {
  name: string;
  connection_details?: { name?: string };
  prefetch_count?: number;
  global_prefetch_count?: number;
  messages_unacknowledged?: number;
  consumer_count?: number;
}

export interface MgmtVhost {
  name: string;
  description?: string;
  tracing?: boolean;
  messages?: number;
  messages_ready?: number;
  messages_unacknowledged?: number;
}

/** The columns the queue list needs: asking for them keeps a 2,000-queue answer small. */
export const QUEUE_COLUMNS = [
  'name',
  'type',
  'durable',
  'auto_delete',
  'exclusive',
  'arguments',
  'policy',
  'operator_policy',
  'effective_policy_definition',
  'messages',
  'messages_ready',
  'messages_unacknowledged',
  'message_bytes',
  'consumers',
  'consumer_utilisation',
  'consumer_capacity',
  'state',
  'message_stats.publish_details.rate',
  'message_stats.deliver_get_details.rate',
  'message_stats.ack_details.rate',
  'message_stats.redeliver_details.rate',
].join(',');
