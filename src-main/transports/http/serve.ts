/**
 * `brokerdeck serve`: the core under plain Node with the HTTP/WebSocket
 * transport, for machines without a display. Never loads Electron.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startCore } from '../../core/core.js';
import { consoleLogger } from '../../ground/logger.js';
import { startHttpServer } from './server.js';

export interface ServeOptions {
  host: string;
  port: number;
  dataDir: string;
  token: string;
  /** Bytes; undefined keeps the embedded broker's default (50 MB). */
  diskFreeLimit?: number;
  /** The AMQP 0-9-1 listener's port (0: a free one); null: no AMQP listener. */
  amqpPort?: number | null;
  /** PEM files: with both, the AMQP listener speaks TLS (amqps), on 5671 unless --amqp-port says otherwise. */
  amqpTls?: { cert: string; key: string };
  /** The Kafka listener's port (0: a free one); null: no Kafka listener. */
  kafkaPort?: number | null;
}

const USAGE = `Usage: brokerdeck serve [--port 8787] [--host 127.0.0.1] [--data-dir ~/.brokerdeck] [--token <token>] [--disk-free-limit 50MB] [--amqp-port 5672] [--kafka-port 9092]
  --port             TCP port to listen on (default 8787; 0 picks a free one)
  --host             address to listen on (default 127.0.0.1; keep it on loopback)
  --data-dir         where the databases live (default ~/.brokerdeck)
  --token            access token (default: $BROKERDECK_TOKEN, else a random one)
  --disk-free-limit  the embedded broker refuses publishing while its disk has less free
                     space than this, as RabbitMQ's disk_free_limit (default 50MB; 0 = off;
                     bytes, or with kB, MB, GB, KiB, MiB, GiB)
  --amqp-port        the embedded broker's AMQP 0-9-1 port for apps (default: as saved in the
                     Listener view, else 5672; 0 picks a free one; off: none); when the port is
                     taken a free one is used and logged
  --amqp-tls-cert, --amqp-tls-key
                     PEM certificate and key: the AMQP listener speaks TLS (amqps; default port 5671)
  --kafka-port       the embedded broker's Kafka port for apps (bootstrap.servers; default: as
                     saved in the Listener view, else 9092; 0 picks a free one; off: none); when the
                     port is taken a free one is used and logged`;

const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/** `50MB`, `1.5GiB`, `1000000`: bytes, with RabbitMQ's units (MB = 1,000,000 bytes, MiB = 1,048,576). */
export function parseBytes(text: string, option: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`${option}: expected a size such as 50MB, 2GiB or 1000000 (bytes), got "${text}"`);
  const bytes = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new Error(`${option}: ${text} is too large`);
  return bytes;
}

export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      token: { type: 'string' },
      'disk-free-limit': { type: 'string' },
      'amqp-port': { type: 'string' },
      'amqp-tls-cert': { type: 'string' },
      'amqp-tls-key': { type: 'string' },
      'kafka-port': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const port = values.port === undefined ? 8787 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: expected an integer from 0 to 65535, got "${values.port}"`);
  const token = values.token ?? env.BROKERDECK_TOKEN ?? randomBytes(24).toString('base64url');
  if (token.length < 1) throw new Error('--token: must not be empty');
  const amqpPort = parsePortOption(values['amqp-port'], '--amqp-port');
  const tlsCert = values['amqp-tls-cert'];
  const tlsKey = values['amqp-tls-key'];
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new Error(`${tlsCert === undefined ? '--amqp-tls-cert' : '--amqp-tls-key'}: needed with ${tlsCert === undefined ? '--amqp-tls-key' : '--amqp-tls-cert'} (amqps takes both)`);
  const kafkaPort = parsePortOption(values['kafka-port'], '--kafka-port');
  return {
    ...(amqpPort !== undefined ? { amqpPort } : {}),
    ...(tlsCert !== undefined && tlsKey !== undefined ? { amqpTls: { cert: resolve(tlsCert), key: resolve(tlsKey) } } : {}),
    ...(kafkaPort !== undefined ? { kafkaPort } : {}),
    host: values.host ?? '127.0.0.1',
    port,
    dataDir: resolve(values['data-dir'] ?? join(homedir(), '.brokerdeck')),
    token,
    ...(values['disk-free-limit'] !== undefined ? { diskFreeLimit: parseBytes(values['disk-free-limit'], '--disk-free-limit') } : {}),
  };
}

/** A listener's port: an integer 0–65535, or `off` (null: not started); undefined when not given (the default applies). */
function parsePortOption(text: string | undefined, option: string): number | null | undefined {
  if (text === undefined) return undefined;
  if (text === 'off') return null;
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new Error(`${option}: expected a port from 0 to 65535 or "off", got "${text}"`);
  return port;
}

function packageVersion(): string {
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    const pkg = JSON.parse(readFileSync(join(here, '..', '..', 'package.json'), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return '0.0.0';
  }
}

export async function runServe(argv: string[]): Promise<void> {
  let options: ServeOptions;
  try {
    options = parseServeArgs(argv);
  } catch (error) {
    process.stderr.write(`brokerdeck serve: ${(error as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  const logger = consoleLogger();
  const here = dirname(fileURLToPath(import.meta.url));
  let amqpTls;
  try {
    amqpTls = options.amqpTls ? { cert: readFileSync(options.amqpTls.cert), key: readFileSync(options.amqpTls.key) } : undefined;
  } catch (error) {
    process.stderr.write(`brokerdeck serve: --amqp-tls-cert/--amqp-tls-key: ${(error as Error).message}\n`);
    process.exit(2);
  }
  // A flag given here wins for this run; without one, a listener starts as saved in the app (Listener view), else on its default port.
  const amqp =
    options.amqpPort === null ? false : options.amqpPort !== undefined || amqpTls ? { port: options.amqpPort ?? (amqpTls ? 5671 : 5672), dataDir: options.dataDir, ...(amqpTls ? { tls: amqpTls } : {}) } : undefined;
  const kafka = options.kafkaPort === null ? false : options.kafkaPort !== undefined ? { port: options.kafkaPort } : undefined;
  const core = await startCore({
    dataDir: options.dataDir,
    version: packageVersion(),
    logger,
    listeners: { ...(amqp !== undefined ? { amqp } : {}), ...(kafka !== undefined ? { kafka } : {}) },
    listenerDefaults: { amqp: { port: 5672, dataDir: options.dataDir }, kafka: { port: 9092 } },
    ...(options.diskFreeLimit !== undefined ? { diskFreeLimit: options.diskFreeLimit } : {}),
  });
  let server;
  try {
    server = await startHttpServer({ core, host: options.host, port: options.port, token: options.token, staticDir: join(here, '..', 'renderer'), logger });
  } catch (error) {
    await core.close();
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'EADDRINUSE' ? `port ${options.port} is already in use (try --port 0 or another port)` : (error as Error).message;
    process.stderr.write(`brokerdeck serve: cannot listen on ${options.host}:${options.port}: ${reason}\n`);
    process.exit(1);
  }
  if (!['127.0.0.1', '::1', 'localhost'].includes(options.host)) {
    logger.warn('listening on a non-loopback address: anyone who can reach it and has the token can use this broker', { host: options.host });
  }
  process.stdout.write(`Brokerdeck ${core.version} is running (data in ${options.dataDir}).\nOpen this URL in a browser:\n\n    ${server.url}/?token=${encodeURIComponent(options.token)}\n\n`);
  for (const l of core.listeners()) {
    if (l.protocol !== 'amqp') continue;
    if (l.port === null) process.stdout.write(`The AMQP listener is not running: ${l.note ?? 'unknown reason'}\n\n`);
    else process.stdout.write(`Apps connect to the embedded broker over AMQP 0-9-1 at ${l.tls ? 'amqps' : 'amqp'}://guest:guest@${l.host}:${l.port}${l.note ? ` (${l.note}; choose one with --amqp-port)` : ''}\n\n`);
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${signal}: shutting down…\n`);
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await server.close();
    await core.close();
    process.stdout.write('stopped; the store is flushed.\n');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
