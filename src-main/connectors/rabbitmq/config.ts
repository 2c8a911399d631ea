/**
 * Turns a saved RabbitMQ connection into what the AMQP client and the
 * management HTTP client need, and keeps the password out of everything that
 * can be shown or logged: `target` has no credentials, and `scrub` removes the
 * password (raw and URL-encoded) from any text before it leaves the connector.
 */
import type { ConnectionOptions } from 'node:tls';
import { ApiError } from '../../contract/errors.js';
import type { RabbitConnectionConfig } from '../../contract/operations.js';

export interface ResolvedRabbit {
  protocol: 'amqp' | 'amqps';
  host: string;
  port: number;
  vhost: string;
  username: string;
  password: string;
  /** Extra connection parameters from the URL's query (heartbeat, frame_max, channel_max). */
  heartbeat: number | undefined;
  frameMax: number | undefined;
  channelMax: number | undefined;
  /** `amqp://host:port/vhost`, with no user or password: safe to show and log. */
  target: string;
  management: {
    /** Origin plus any path prefix (a reverse proxy), without credentials or a trailing slash. */
    base: string;
    username: string;
    password: string;
  };
  /** TLS options for amqps:// and https:// alike. */
  tls: ConnectionOptions;
  insecure: boolean;
  /** Removes every credential of this connection from a text. */
  scrub(text: string): string;
}

const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi;

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ApiError('INVALID_ARGUMENT', `${what} is not a valid percent-encoded string`, what === 'vhost' ? 'amqpUrl' : what);
  }
}

function optionalInt(value: string | null, what: string): number | undefined {
  if (value === null || value === '') return undefined;
  if (!/^\d+$/.test(value)) throw new ApiError('INVALID_ARGUMENT', `amqpUrl: ${what} must be a whole number`, 'amqpUrl');
  return Number(value);
}

export function resolveRabbit(config: Pick<RabbitConnectionConfig, 'amqpUrl' | 'managementUrl' | 'tls'>): ResolvedRabbit {
  let url: URL;
  try {
    url = new URL(config.amqpUrl);
  } catch {
    throw new ApiError('INVALID_ARGUMENT', 'amqpUrl must look like amqp://user:password@host:5672/vhost (or amqps://)', 'amqpUrl');
  }
  const protocol = url.protocol === 'amqps:' ? 'amqps' : url.protocol === 'amqp:' ? 'amqp' : null;
  if (!protocol) throw new ApiError('INVALID_ARGUMENT', 'amqpUrl must start with amqp:// or amqps://', 'amqpUrl');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!host) throw new ApiError('INVALID_ARGUMENT', 'amqpUrl must name a host', 'amqpUrl');
  const port = url.port ? Number(url.port) : protocol === 'amqps' ? 5671 : 5672;
  // RabbitMQ's URI spec: no path means the default vhost "/"; "/%2F" spells it explicitly.
  const path = url.pathname.replace(/^\//, '');
  const vhost = path === '' ? '/' : decode(path, 'vhost');
  // amqplib's own default, guest/guest, applies only when the URL names no user at all.
  const username = url.username === '' && url.password === '' ? 'guest' : decode(url.username, 'username');
  const password = url.username === '' && url.password === '' ? 'guest' : decode(url.password, 'password');

  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  const target = `${protocol}://${hostForUrl}:${port}/${encodeURIComponent(vhost)}`;

  let management: ResolvedRabbit['management'];
  if (config.managementUrl) {
    let m: URL;
    try {
      m = new URL(config.managementUrl);
    } catch {
      throw new ApiError('INVALID_ARGUMENT', 'managementUrl must look like http://host:15672', 'managementUrl');
    }
    const ownCredentials = m.username !== '' || m.password !== '';
    const prefix = m.pathname.replace(/\/+$/, '').replace(/\/api$/, '');
    management = {
      base: `${m.protocol}//${m.host}${prefix}`,
      username: ownCredentials ? decode(m.username, 'managementUrl') : username,
      password: ownCredentials ? decode(m.password, 'managementUrl') : password,
    };
  } else {
    management = { base: `http://${hostForUrl}:15672`, username, password };
  }

  const t = config.tls;
  const tls: ConnectionOptions = {
    ...(t?.ca ? { ca: t.ca } : {}),
    ...(t?.cert ? { cert: t.cert } : {}),
    ...(t?.key ? { key: t.key } : {}),
    ...(t?.passphrase ? { passphrase: t.passphrase } : {}),
    ...(t?.servername ? { servername: t.servername } : {}),
    rejectUnauthorized: !(t?.insecureSkipVerify ?? false),
  };

  // A password equal to its user name (guest/guest) is not scrubbed: the user
  // name is shown on purpose, and replacing it everywhere would garble every
  // message without hiding anything.
  const secrets = [password, management.password, t?.passphrase ?? '', t?.key ?? '']
    .filter((s) => s.length > 0 && s !== username && s !== management.username)
    .flatMap((s) => [s, encodeURIComponent(s)])
    .sort((a, b) => b.length - a.length);
  const scrub = (text: string): string => {
    let out = text.replace(USERINFO, '$1');
    for (const s of secrets) out = out.split(s).join('[redacted]');
    return out;
  };

  return {
    protocol,
    host,
    port,
    vhost,
    username,
    password,
    heartbeat: optionalInt(url.searchParams.get('heartbeat'), 'heartbeat'),
    frameMax: optionalInt(url.searchParams.get('frame_max') ?? url.searchParams.get('frameMax'), 'frame_max'),
    channelMax: optionalInt(url.searchParams.get('channel_max') ?? url.searchParams.get('channelMax'), 'channel_max'),
    target,
    management,
    tls,
    insecure: t?.insecureSkipVerify ?? false,
    scrub,
  };
}
