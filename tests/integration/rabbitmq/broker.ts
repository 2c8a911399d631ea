/**
 * The real RabbitMQ the integration tests (and the benchmark) run against.
 *
 * With RABBITMQ_URL (and optionally RABBITMQ_MANAGEMENT_URL) set, that server
 * is used as it is. Otherwise the local one is made ready: installed from the
 * Debian package when missing (root only), started when its port is closed,
 * the management plugin enabled, and both ports waited for. Each caller gets
 * a vhost of its own (`brokerdeck-test-<random>`) that `cleanup` deletes.
 *
 * When no server can be had, `prepareBroker` says why instead of throwing, so
 * the tests are reported as skipped with that reason, never as passed.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmdirSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp, { type ChannelModel } from 'amqplib';
import { rabbitConnectionSchema, type RabbitConnectionConfig } from '../../../src-main/contract/operations.js';
import type { AuditEntry } from '../../../src-main/contract/types.js';
import type { ConnectorDeps } from '../../../src-main/connectors/registry.js';
import type { Logger } from '../../../src-main/ground/logger.js';

export interface TestBroker {
  ok: true;
  host: string;
  port: number;
  user: string;
  password: string;
  vhost: string;
  /** amqp://user:password@host:port/<test vhost> */
  amqpUrl: string;
  /** The management API's base URL, without credentials. */
  managementUrl: string;
  /** Whether the server is this machine's own (rabbitmqctl can reach it). */
  local: boolean;
  /** A management API call with the admin credentials; throws on HTTP errors. */
  api(method: string, path: string, body?: unknown): Promise<unknown>;
  /** A plain amqplib connection to the test vhost, for fixtures and checks. */
  connect(): Promise<ChannelModel>;
  /** A connection configuration for the test vhost, in the contract's input form (defaults applied by its schema). */
  config(overrides?: Record<string, unknown>): RabbitConnectionConfig;
  /** Creates a user for this run (deleted by cleanup). */
  createUser(name: string, password: string, tags: string, permissions: boolean): Promise<void>;
  /** Closes, from the server side, every connection whose client-given name starts with `prefix`. */
  closeConnections(prefix: string): Promise<number>;
  cleanup(): Promise<void>;
}

export type BrokerEnv = TestBroker | { ok: false; reason: string };

const READY_TIMEOUT_MS = 120_000;
const INSTALL_TIMEOUT_MS = 600_000;

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code as number) : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

function portOpen(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, everyMs = 500): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return false;
}

/** Serialises the "make the local server ready" step across test files running in parallel. */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const dir = join(tmpdir(), 'brokerdeck-rabbitmq-setup.lock');
  const until = Date.now() + INSTALL_TIMEOUT_MS;
  for (;;) {
    try {
      mkdirSync(dir);
      break;
    } catch {
      // A lock left by a killed run is taken over after ten minutes.
      try {
        if (Date.now() - statSync(dir).mtimeMs > INSTALL_TIMEOUT_MS) rmdirSync(dir);
      } catch {
        /* gone meanwhile */
      }
      if (Date.now() > until) throw new Error('timed out waiting for another test file to prepare RabbitMQ');
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    try {
      rmdirSync(dir);
    } catch {
      /* already removed */
    }
  }
}

async function ensureLocalServer(host: string, port: number, mgmtPort: number): Promise<string | null> {
  if ((await portOpen(host, port)) && (await portOpen(host, mgmtPort))) return null;
  return withLock(async () => {
    if ((await run('which', ['rabbitmq-server'], 5_000)).code !== 0) {
      if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
        return 'rabbitmq-server is not installed and the tests are not running as root to install it (apt-get install rabbitmq-server)';
      }
      await run('apt-get', ['update'], INSTALL_TIMEOUT_MS);
      const install = await run('apt-get', ['install', '-y', 'rabbitmq-server'], INSTALL_TIMEOUT_MS);
      if (install.code !== 0) return `installing rabbitmq-server failed: ${install.out.slice(-500)}`;
    }
    if (!(await portOpen(host, port))) {
      // Enabling offline first means the node starts with the plugin already on.
      await run('rabbitmq-plugins', ['enable', '--offline', 'rabbitmq_management'], 60_000);
      const started = await run('rabbitmq-server', ['-detached'], 60_000);
      if (!(await waitFor(() => portOpen(host, port), READY_TIMEOUT_MS))) {
        return `RabbitMQ did not open ${host}:${port} after "rabbitmq-server -detached" (${started.out.slice(-300)})`;
      }
    }
    if (!(await portOpen(host, mgmtPort))) {
      const enabled = await run('rabbitmq-plugins', ['enable', 'rabbitmq_management'], 120_000);
      if (!(await waitFor(() => portOpen(host, mgmtPort), READY_TIMEOUT_MS))) {
        return `the management API did not open ${host}:${mgmtPort} after enabling rabbitmq_management (${enabled.out.slice(-300)})`;
      }
    }
    return null;
  });
}

export const silentTestLogger: Logger = { info() {}, warn() {}, error() {} };

/** Connector dependencies with an in-memory audit log and a logger that keeps every line (to check no secret reaches it). */
export function testDeps(): ConnectorDeps & { lines: string[]; audits: AuditEntry[] } {
  const lines: string[] = [];
  const audits = new Map<string, AuditEntry>();
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push(`${level} ${message} ${fields ? JSON.stringify(fields) : ''}`);
  };
  return {
    lines,
    get audits() {
      return [...audits.values()];
    },
    logger: { info: log('info'), warn: log('warn'), error: log('error') },
    audit: {
      record: (e) => {
        const before = audits.get(e.id);
        audits.set(e.id, before ? { ...before, count: e.count, state: e.state } : { ...e });
      },
      list: (connectionId, limit) =>
        [...audits.values()]
          .filter((e) => e.connectionId === connectionId)
          .sort((a, b) => b.at - a.at)
          .slice(0, limit),
    },
  };
}

export async function prepareBroker(): Promise<BrokerEnv> {
  const given = process.env.RABBITMQ_URL;
  let base: URL;
  try {
    base = new URL(given ?? 'amqp://guest:guest@127.0.0.1:5672');
  } catch {
    return { ok: false, reason: 'RABBITMQ_URL is not a valid URL' };
  }
  const host = base.hostname.replace(/^\[|\]$/g, '');
  const port = base.port ? Number(base.port) : base.protocol === 'amqps:' ? 5671 : 5672;
  const user = base.username ? decodeURIComponent(base.username) : 'guest';
  const password = base.password ? decodeURIComponent(base.password) : 'guest';
  const mgmtGiven = process.env.RABBITMQ_MANAGEMENT_URL;
  const mgmt = new URL(mgmtGiven ?? `http://${host.includes(':') ? `[${host}]` : host}:15672`);
  const mgmtUser = mgmt.username ? decodeURIComponent(mgmt.username) : user;
  const mgmtPassword = mgmt.password ? decodeURIComponent(mgmt.password) : password;
  const managementUrl = `${mgmt.protocol}//${mgmt.host}${mgmt.pathname.replace(/\/+$/, '')}`;
  const local = !given;

  if (local) {
    const problem = await ensureLocalServer(host, port, Number(mgmt.port || 15672)).catch((e: Error) => e.message);
    if (problem) return { ok: false, reason: problem };
  } else if (!(await waitFor(() => portOpen(host, port), 10_000))) {
    return { ok: false, reason: `RABBITMQ_URL points at ${host}:${port}, which does not answer` };
  }

  const auth = 'Basic ' + Buffer.from(`${mgmtUser}:${mgmtPassword}`).toString('base64');
  const api = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(managementUrl + path, {
      method,
      headers: { authorization: auth, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  };

  const vhost = `brokerdeck-test-${randomBytes(4).toString('hex')}`;
  const users: string[] = [];
  try {
    await api('PUT', `/api/vhosts/${encodeURIComponent(vhost)}`, {});
    await api('PUT', `/api/permissions/${encodeURIComponent(vhost)}/${encodeURIComponent(user)}`, { configure: '.*', write: '.*', read: '.*' });
  } catch (error) {
    return { ok: false, reason: `could not create the test vhost through the management API: ${(error as Error).message}` };
  }
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  const amqpUrl = `${base.protocol}//${encodeURIComponent(user)}:${encodeURIComponent(password)}@${hostForUrl}:${port}/${encodeURIComponent(vhost)}`;

  return {
    ok: true,
    host,
    port,
    user,
    password,
    vhost,
    amqpUrl,
    managementUrl,
    local,
    api,
    connect: async () => {
      const c = await amqp.connect(amqpUrl);
      c.on('error', () => {});
      return c;
    },
    config: (overrides = {}) =>
      rabbitConnectionSchema.parse({
        kind: 'rabbitmq',
        name: 'test',
        amqpUrl,
        ...(mgmtGiven ? { managementUrl: mgmtGiven } : {}),
        ...overrides,
      }),
    createUser: async (name, pw, tags, permissions) => {
      await api('PUT', `/api/users/${encodeURIComponent(name)}`, { password: pw, tags });
      users.push(name);
      if (permissions) {
        await api('PUT', `/api/permissions/${encodeURIComponent(vhost)}/${encodeURIComponent(name)}`, { configure: '.*', write: '.*', read: '.*' });
      }
    },
    closeConnections: async (prefix) => {
      if (local && (await run('which', ['rabbitmqctl'], 5_000)).code === 0) {
        // rabbitmqctl sees a connection at once (the management API only after
        // its next statistics round) and names it by pid.
        const list = await run('rabbitmqctl', ['list_connections', '-q', '--no-table-headers', 'pid', 'client_properties'], 30_000);
        const pids = list.out
          .split('\n')
          .filter((l) => l.includes(`"${prefix}`))
          .map((l) => l.split('\t')[0]!.trim())
          .filter((p) => p.startsWith('<'));
        let closed = 0;
        for (const pid of pids) {
          if ((await run('rabbitmqctl', ['close_connection', pid, 'closed by the brokerdeck test'], 30_000)).code === 0) closed++;
        }
        return closed;
      }
      const conns = (await api('GET', '/api/connections')) as Array<{ name: string; client_properties?: { connection_name?: string } }>;
      const doomed = conns.filter((c) => c.client_properties?.connection_name?.startsWith(prefix));
      for (const c of doomed) {
        await api('DELETE', `/api/connections/${encodeURIComponent(c.name)}`).catch(() => {});
      }
      return doomed.length;
    },
    cleanup: async () => {
      for (const u of users) await api('DELETE', `/api/users/${encodeURIComponent(u)}`).catch(() => {});
      await api('DELETE', `/api/vhosts/${encodeURIComponent(vhost)}`).catch(() => {});
    },
  };
}

/**
 * Polls until `check` holds (true) or the time is up; returns the last value seen.
 * The time is an upper bound for a loaded machine, not an expectation.
 */
export async function eventually<T>(check: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last = await check();
  while (!ok(last) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, everyMs));
    last = await check();
  }
  return last;
}

/**
 * Consumes `n` messages from `queue` and rejects each without requeue, so that the
 * queue's dead-letter exchange takes them (how the tests fill a dead-letter queue).
 */
export async function rejectAll(model: ChannelModel, queue: string, n: number, prefetch = 1_000): Promise<void> {
  const rejecter = await model.createChannel();
  await rejecter.prefetch(prefetch);
  let rejected = 0;
  await new Promise<void>((resolve) => {
    void rejecter.consume(queue, (m) => {
      if (!m) return;
      rejecter.nack(m, false, false);
      if (++rejected === n) resolve();
    });
  });
  await rejecter.close();
}

/** A TCP port on loopback with nothing listening. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** A loopback server that accepts connections and never answers: a handshake there can only time out. */
export async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface TlsFront {
  /** TLS port in front of the AMQP port. */
  amqpsPort: number;
  /** TLS port in front of the management API. */
  httpsPort: number;
  /** The self-signed certificate the fronts present (PEM), for use as a CA. */
  ca: string;
  /** A client certificate and key the fronts accept (and require, when `requireClientCert`). */
  clientCert: string;
  clientKey: string;
  close(): Promise<void>;
}

/**
 * TLS in front of the test server's AMQP and management ports, with a
 * certificate made here by openssl (RabbitMQ itself listens in plain text on
 * this machine). Null when openssl is not installed.
 */
export async function tlsFront(b: TestBroker, requireClientCert: boolean): Promise<TlsFront | null> {
  if ((await run('which', ['openssl'], 5_000)).code !== 0) return null;
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const tls = await import('node:tls');
  const dir = mkdtempSync(join(tmpdir(), 'brokerdeck-tls-'));
  const make = async (name: string) => {
    const made = await run(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`)],
      30_000,
    );
    if (made.code !== 0) throw new Error(`openssl failed: ${made.out}`);
    return { cert: readFileSync(join(dir, `${name}.crt`), 'utf8'), key: readFileSync(join(dir, `${name}.key`), 'utf8') };
  };
  const server = await make('localhost');
  const client = await make('brokerdeck-client');
  rmSync(dir, { recursive: true, force: true });
  const mgmt = new URL(b.managementUrl);
  const sockets = new Set<net.Socket>();
  const front = (port: number, host: string) =>
    tls.createServer({ key: server.key, cert: server.cert, requestCert: requireClientCert, rejectUnauthorized: requireClientCert, ca: [client.cert] }, (s) => {
      const upstream = net.connect({ host, port });
      sockets.add(s);
      sockets.add(upstream);
      s.pipe(upstream).pipe(s);
      const end = () => {
        s.destroy();
        upstream.destroy();
      };
      s.on('error', end);
      upstream.on('error', end);
      s.on('close', end);
      upstream.on('close', end);
    });
  const amqps = front(b.port, b.host);
  const https = front(Number(mgmt.port || 80), mgmt.hostname);
  for (const srv of [amqps, https]) {
    srv.on('tlsClientError', () => {});
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  }
  return {
    amqpsPort: (amqps.address() as net.AddressInfo).port,
    httpsPort: (https.address() as net.AddressInfo).port,
    ca: server.cert,
    clientCert: client.cert,
    clientKey: client.key,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([amqps, https].map((srv) => new Promise<void>((r) => srv.close(() => r()))));
    },
  };
}
