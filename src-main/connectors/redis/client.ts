/**
 * Reaching Redis: the connection URL taken apart (user, password, database,
 * TLS), ioredis clients for one server or a Redis Cluster, the target shown
 * without its password, key discovery by SCAN … TYPE on every master, and the
 * translation of Redis's errors into the contract's.
 */
import { isIP } from 'node:net';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { ApiError } from '../../contract/errors.js';
import type { RedisConnectionConfig } from '../../contract/operations.js';
import type { ConnectionTestResult } from '../../contract/types.js';

export type RedisClient = Redis | Cluster;

export interface ParsedUrl {
  tls: boolean;
  host: string;
  port: number;
  username?: string;
  password?: string;
  db: number;
}

export function parseRedisUrl(raw: string): ParsedUrl {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ApiError('INVALID_ARGUMENT', 'url must look like redis://user:password@host:6379/0 (or rediss://)', 'url');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new ApiError('INVALID_ARGUMENT', 'url must start with redis:// or rediss://', 'url');
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (!host) throw new ApiError('INVALID_ARGUMENT', 'url has no host', 'url');
  const port = u.port ? Number(u.port) : 6379;
  const path = u.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,5}$/.test(path)) throw new ApiError('INVALID_ARGUMENT', `url: the path names the database number (0, 1, …), not ${JSON.stringify(path)}`, 'url');
  const out: ParsedUrl = { tls: u.protocol === 'rediss:', host, port, db: path === '' ? 0 : Number(path) };
  const decode = (s: string, what: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new ApiError('INVALID_ARGUMENT', `url: the ${what} is not valid percent-encoding`, 'url');
    }
  };
  if (u.username) out.username = decode(u.username, 'user name');
  if (u.password) out.password = decode(u.password, 'password');
  return out;
}

/** Where a connection points, without its password: `redis://user@host:6379/0`. */
export function targetOf(config: Pick<RedisConnectionConfig, 'url' | 'cluster'>): string {
  try {
    const p = parseRedisUrl(config.url);
    const host = p.host.includes(':') ? `[${p.host}]` : p.host;
    return `${p.tls ? 'rediss' : 'redis'}://${p.username ? `${encodeURIComponent(p.username)}@` : ''}${host}:${p.port}${config.cluster ? ' (cluster)' : `/${p.db}`}`;
  } catch {
    return 'redis://(invalid url)';
  }
}

export interface ClientTuning {
  /** Each failed connect is retried after a growing delay; false: never (Test connection). */
  retry?: boolean;
  connectTimeoutMs?: number;
  /** Commands given while disconnected fail after this many reconnect attempts. */
  maxRetriesPerRequest?: number;
  name?: string;
}

function baseOptions(config: RedisConnectionConfig, p: ParsedUrl, tuning: ClientTuning): RedisOptions {
  const o: RedisOptions = {
    lazyConnect: true,
    connectTimeout: tuning.connectTimeoutMs ?? 5_000,
    maxRetriesPerRequest: tuning.maxRetriesPerRequest ?? 1,
    enableReadyCheck: true,
    connectionName: tuning.name ?? 'brokerdeck',
    retryStrategy: tuning.retry === false ? () => null : (times) => Math.min(200 * 2 ** Math.min(times, 5), 5_000),
  };
  if (p.username) o.username = p.username;
  if (p.password) o.password = p.password;
  if (p.tls || config.tls) {
    const t = config.tls;
    o.tls = {
      rejectUnauthorized: !(t?.insecureSkipVerify ?? false),
      ...(t?.ca ? { ca: t.ca } : {}),
      ...(t?.cert ? { cert: t.cert } : {}),
      ...(t?.key ? { key: t.key } : {}),
      ...(t?.passphrase ? { passphrase: t.passphrase } : {}),
      // SNI carries host names only (RFC 6066); an IP address is checked against the certificate without it.
      ...(t?.servername ? { servername: t.servername } : isIP(p.host) ? {} : { servername: p.host }),
    };
  }
  return o;
}

/** A client for the configuration: a Cluster when `cluster` is set, else one server with its database selected. */
export function createClient(config: RedisConnectionConfig, tuning: ClientTuning = {}): RedisClient {
  const p = parseRedisUrl(config.url);
  const base = baseOptions(config, p, tuning);
  if (config.cluster) {
    if (p.db !== 0) throw new ApiError('INVALID_ARGUMENT', `url: a Redis Cluster has only database 0, not ${p.db}`, 'url');
    return new Cluster([{ host: p.host, port: p.port }], {
      lazyConnect: true,
      redisOptions: base,
      clusterRetryStrategy: tuning.retry === false ? () => null : (times) => Math.min(200 * 2 ** Math.min(times, 5), 5_000),
      enableOfflineQueue: true,
      // Not in a cluster: ioredis sends a command whose key it cannot place (XINFO) to any node, and an
      // auto-pipelined batch does not follow the MOVED answer; sent one by one, each is redirected.
      enableAutoPipelining: false,
      slotsRefreshTimeout: tuning.connectTimeoutMs ?? 5_000,
      // Nodes announce the addresses they were configured with; a TLS certificate names the seed host.
      ...(base.tls ? { dnsLookup: (address: string, callback: (err: Error | null, address: string) => void) => callback(null, address) } : {}),
    });
  }
  return new Redis({ ...base, enableAutoPipelining: true, host: p.host, port: p.port, db: p.db });
}

/** The nodes that hold keys: the masters of a cluster, or the one server. */
export function keyNodes(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/** Every key of `type` (`stream`, `list`), by SCAN … TYPE on each master; at most `limit`, sorted. */
export async function scanKeys(client: RedisClient, type: string, limit: number, match = '*'): Promise<{ keys: string[]; truncated: boolean }> {
  const keys = new Set<string>();
  let truncated = false;
  for (const node of keyNodes(client)) {
    let cursor = '0';
    do {
      const [next, batch] = (await node.call('SCAN', cursor, 'MATCH', match, 'COUNT', '1000', 'TYPE', type)) as [string, string[]];
      cursor = next;
      for (const k of batch) {
        if (keys.size >= limit) {
          truncated = true;
          break;
        }
        keys.add(k);
      }
    } while (cursor !== '0' && !truncated);
    if (truncated) break;
  }
  return { keys: [...keys].sort(), truncated };
}

export type RedisProblem = NonNullable<ConnectionTestResult['problem']>;

/** What went wrong, told apart the way Test connection shows it; the message never holds the password. */
export function classify(error: unknown, target: string): { problem: RedisProblem | null; message: string } {
  const e = error as { message?: string; code?: string; name?: string };
  const text = String(e?.message ?? error);
  const code = e?.code ?? '';
  if (/WRONGPASS|invalid username-password|invalid password/i.test(text)) return { problem: 'auth_failed', message: `${target}: the user name or password was refused (${text.split('\n')[0]})` };
  if (/NOAUTH/.test(text)) return { problem: 'auth_failed', message: `${target}: the server needs a password (NOAUTH): put it in the URL, redis://user:password@host:port` };
  if (/NOPERM/.test(text)) return { problem: 'forbidden', message: `${target}: the user lacks a permission (${text.split('\n')[0]})` };
  if (/ECONNREFUSED/.test(code + text)) return { problem: 'unreachable', message: `${target}: nothing accepts connections there (connection refused)` };
  if (/ENOTFOUND|EAI_AGAIN/.test(code + text)) return { problem: 'unreachable', message: `${target}: the host name does not resolve` };
  if (/EHOSTUNREACH|ENETUNREACH|ECONNRESET|EPIPE/.test(code + text)) return { problem: 'unreachable', message: `${target}: unreachable (${code || text})` };
  if (/ETIMEDOUT|timed? ?out/i.test(code + text)) return { problem: 'timeout', message: `${target}: no answer in time (${text})` };
  if (/Connection is closed|Stream isn't writeable|enableOfflineQueue|Reached the max retries/i.test(text)) {
    return { problem: 'unreachable', message: `${target}: not connected (${text})` };
  }
  if (/certificate|SSL|TLS|self[- ]signed|ERR_TLS|EPROTO/i.test(code + text)) return { problem: 'tls_error', message: `${target}: TLS failed (${text})` };
  if (/DB index is out of range/i.test(text)) return { problem: 'config_error', message: `${target}: the server has no such database number (${text})` };
  if (/cluster support disabled/i.test(text)) return { problem: 'config_error', message: `${target}: the server is not a cluster node: turn cluster off for this connection` };
  if (/Failed to refresh slots cache|None of startup nodes is available/i.test(text)) return { problem: 'unreachable', message: `${target}: no cluster node answered (${text})` };
  return { problem: null, message: text };
}

/** Redis's refusal as the contract's error: what was being done, and why it failed. */
export function toApiError(error: unknown, target: string, what: string): ApiError {
  if (error instanceof ApiError) return error;
  const text = String((error as Error)?.message ?? error);
  const c = classify(error, target);
  switch (c.problem) {
    case 'auth_failed':
      return new ApiError('UNAUTHORIZED', `${what}: ${c.message}`);
    case 'forbidden':
      return new ApiError('FORBIDDEN', `${what}: ${c.message}`);
    case 'unreachable':
    case 'timeout':
    case 'tls_error':
      return new ApiError('UNAVAILABLE', `${what}: ${c.message}`);
    case 'config_error':
      return new ApiError('INVALID_ARGUMENT', `${what}: ${c.message}`, 'url');
    default:
      break;
  }
  if (/^WRONGTYPE/.test(text)) return new ApiError('INVALID_ARGUMENT', `${what}: the key holds another type of value (${text})`);
  if (/^NOGROUP/.test(text)) return new ApiError('NOT_FOUND', `${what}: ${text}`);
  if (/^(ERR|BUSYGROUP|CROSSSLOT)/.test(text)) return new ApiError('INVALID_ARGUMENT', `${what}: Redis refused it (${text})`);
  return new ApiError('INTERNAL', `${what}: ${text}`);
}
