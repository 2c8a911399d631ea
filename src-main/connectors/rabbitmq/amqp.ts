/**
 * Opening AMQP connections and turning what can go wrong into the contract's
 * errors. amqplib reports most failures only as message text, so the rules
 * below read that text; each rule names the failure it recognises.
 */
import amqp, { type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { ApiError, type ErrorCode } from '../../contract/errors.js';
import type { ConnectionTestResult } from '../../contract/types.js';
import type { ResolvedRabbit } from './config.js';
import { isTlsErrorCode } from './management.js';

export type Problem = NonNullable<ConnectionTestResult['problem']>;

export interface OpenOptions {
  timeoutMs: number;
  /** Shown in the management UI's connection list, so an operator knows who is connected. */
  name: string;
  /**
   * A connection that streams many small frames (a re-drive) turns Nagle's
   * algorithm on once the handshake is done, so the kernel packs publishes
   * and acks into fewer packets (see `packWrites`); an interactive one leaves
   * it off so a peek's request/answer pairs are not delayed. The handshake
   * always runs without it: its back-to-back frames would each wait for the
   * server's delayed ACK, some 40 ms per connection.
   */
  bulk?: boolean;
}

export async function openAmqp(r: ResolvedRabbit, o: OpenOptions): Promise<ChannelModel> {
  const url: amqp.Options.Connect = {
    protocol: r.protocol,
    hostname: r.host,
    port: r.port,
    username: r.username,
    password: r.password,
    // amqplib unescapes the vhost once more; escaping it here keeps "%" intact.
    vhost: encodeURIComponent(r.vhost),
    heartbeat: r.heartbeat ?? 30,
    ...(r.frameMax !== undefined ? { frameMax: r.frameMax } : {}),
    ...(r.channelMax !== undefined ? { channelMax: r.channelMax } : {}),
  };
  const socket: amqp.SocketOptions = {
    timeout: o.timeoutMs,
    noDelay: true,
    clientProperties: { connection_name: o.name, product: 'Brokerdeck' },
    ...(r.protocol === 'amqps' ? r.tls : {}),
  };
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  const opening = amqp.connect(url, socket);
  // amqplib's own timeout covers a silent socket; this one bounds the whole
  // handshake, including a server that keeps talking but never finishes it.
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      if (!settled) reject(Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' }));
    }, o.timeoutMs + 500);
  });
  opening.then(
    (late) => {
      if (settled) late.close().catch(() => {});
    },
    () => {},
  );
  try {
    const model = await Promise.race([opening, deadline]);
    // An 'error' event without a listener would crash the process; the
    // owner of the connection watches 'close', which always follows.
    model.on('error', () => {});
    if (o.bulk) packWrites(model, true);
    return model;
  } finally {
    settled = true;
    clearTimeout(timer);
  }
}

/**
 * Turns Nagle's algorithm on (true) or off for a connection's socket. Turning
 * it off also sends at once what it was holding back, which a connection
 * about to close wants. A no-op where amqplib does not expose its socket.
 */
export function packWrites(model: ChannelModel, on: boolean): void {
  const stream = (model as unknown as { connection?: { stream?: { setNoDelay?: (noDelay: boolean) => unknown } } }).connection?.stream;
  try {
    if (typeof stream?.setNoDelay === 'function') stream.setNoDelay(!on);
  } catch {
    // A socket already destroyed: nothing is left to send.
  }
}

export interface Classified {
  problem: Problem;
  message: string;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'EADDRNOTAVAIL']);

/**
 * What an AMQP connection failure means. A "vhost" problem is reported as
 * `vhost_missing` here: AMQP says only "not allowed" for a missing and a
 * forbidden vhost alike, and telling them apart takes the management API.
 */
export function classifyOpenError(error: unknown, r: Pick<ResolvedRabbit, 'host' | 'port' | 'vhost' | 'username' | 'scrub'>): Classified {
  const e = error as Error & { code?: string };
  const text = r.scrub(String(e?.message ?? error));
  const where = `${r.host}:${r.port}`;
  if (e?.code === 'ETIMEDOUT' || /ETIMEDOUT|timed? ?out/i.test(text)) {
    return { problem: 'timeout', message: `${where} did not complete the AMQP handshake in time (is it an AMQP port? a firewall dropping packets?)` };
  }
  if (isTlsErrorCode(e?.code) || /SSL|TLS|certificate/i.test(text)) {
    const plain = /wrong version number|packet length too long|unknown protocol/i.test(text)
      ? ' (the server did not answer in TLS: is this a plain amqp:// port? amqps:// usually listens on 5671)'
      : '';
    return { problem: 'tls_error', message: `TLS with ${where} failed: ${text.trim()}${plain}` };
  }
  if (e?.code && UNREACHABLE.has(e.code)) {
    const why = e.code === 'ECONNREFUSED' ? 'connection refused' : e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN' ? 'host name not found' : e.code;
    return { problem: 'unreachable', message: `${where} cannot be reached: ${why}` };
  }
  if (/ACCESS[-_]REFUSED|Login was refused|authentication/i.test(text)) {
    return { problem: 'auth_failed', message: `user "${r.username}" could not log in to ${where}: wrong user name or password` };
  }
  if (/Expected ConnectionOpenOk; got <ConnectionClose|NOT_ALLOWED|vhost/i.test(text)) {
    return { problem: 'vhost_missing', message: `vhost "${r.vhost}" does not exist on ${where}, or user "${r.username}" may not use it` };
  }
  if (/Socket closed abruptly during opening handshake/i.test(text)) {
    // Servers that do not send authentication_failure_close drop the socket on a bad login.
    return { problem: 'auth_failed', message: `${where} closed the connection during the handshake: most often a wrong user name or password` };
  }
  if (/Expected|Unexpected|frame/i.test(text)) {
    return { problem: 'protocol_error', message: `${where} does not speak AMQP 0-9-1 as expected: ${text}` };
  }
  return { problem: 'unreachable', message: `${where} cannot be reached: ${text}` };
}

const AMQP_CODES: Record<number, ErrorCode> = {
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'RESOURCE_LOCKED',
  406: 'PRECONDITION_FAILED',
  320: 'UNAVAILABLE',
  311: 'TOO_LARGE',
  530: 'FORBIDDEN',
  540: 'INVALID_ARGUMENT',
};

/** The server's own words from an amqplib error: `NOT_FOUND - no queue 'x' in vhost 'y'`. */
export function serverText(error: unknown): string {
  const m = /with message "([^"]*)"/.exec(String((error as Error)?.message ?? error));
  return m ? m[1]! : String((error as Error)?.message ?? error);
}

/**
 * An amqplib failure as an ApiError. `notFound` gives the message for a 404
 * (the server's text names the object in Erlang's quoting; ours names it as
 * the user typed it).
 */
export function toApiError(error: unknown, scrub: (s: string) => string, notFound?: string): ApiError {
  if (error instanceof ApiError) return error;
  const e = error as Error & { code?: number | string };
  const code = typeof e?.code === 'number' ? AMQP_CODES[e.code] : undefined;
  // In a cluster, a classic queue whose node is down answers 404 too, though it exists and its
  // messages are back with the node.
  const down = code === 'NOT_FOUND' ? /home node '(.*)' of durable queue '(.*)' in vhost '(.*)' is down or inaccessible/.exec(serverText(e)) : null;
  if (down) {
    return new ApiError('UNAVAILABLE', scrub(`queue "${down[2]}" lives on node ${down[1]}, which is down or cannot be reached: its messages are there again once the node is back`));
  }
  if (code === 'NOT_FOUND') {
    if (notFound) return new ApiError('NOT_FOUND', notFound);
    const m = /no (queue|exchange) '(.*)' in vhost '(.*)'/.exec(serverText(e));
    if (m) return new ApiError('NOT_FOUND', scrub(`${m[1]} "${m[2]}" does not exist in vhost "${m[3]}"`));
  }
  if (code) return new ApiError(code, scrub(serverText(e)));
  const text = scrub(String(e?.message ?? error));
  if (/Connection closed|Channel closed|Channel ended|IllegalOperationError|ECONNRESET|EPIPE|socket/i.test(text) || e?.name === 'IllegalOperationError') {
    return new ApiError('UNAVAILABLE', `the connection to RabbitMQ was lost: ${text}`);
  }
  return new ApiError('INTERNAL', text);
}

/** Opens a channel that never crashes the process with an unhandled 'error' event. */
export async function openChannel(model: ChannelModel): Promise<Channel> {
  const ch = await model.createChannel();
  ch.on('error', () => {});
  return ch;
}

export async function openConfirmChannel(model: ChannelModel): Promise<ConfirmChannel> {
  const ch = await model.createConfirmChannel();
  ch.on('error', () => {});
  return ch;
}

export async function closeQuietly(thing: { close(): Promise<void> } | null | undefined): Promise<void> {
  if (!thing) return;
  try {
    await thing.close();
  } catch {
    // Already closed by the server or with the connection: nothing is left to release.
  }
}
