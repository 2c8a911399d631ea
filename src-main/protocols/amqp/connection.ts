/**
 * One AMQP 0-9-1 connection, as RabbitMQ runs it:
 *
 *   protocol header → connection.start (server properties, capabilities,
 *   PLAIN and AMQPLAIN) → start-ok (credentials) → tune → tune-ok (channel_max,
 *   frame_max, heartbeat) → open (virtual host) → open-ok → channels …
 *
 * It reads frames as they come (split anywhere), answers a malformed one
 * with the connection exception RabbitMQ gives (501, 502, 503, 505), hands
 * channel methods to its channels (channel.ts), sends heartbeats and closes a
 * connection whose peer missed two, and writes what it sends in one socket
 * write per turn of the event loop.
 *
 * Back-pressure: while more than HIGH_WATER publishes wait for the store, or
 * while the disk alarm blocks publishers, it stops reading the socket (as
 * RabbitMQ's credit flow and alarms do) instead of buffering.
 */
import type net from 'node:net';
import type { Engine } from '../../broker/engine.js';
import type { ConnectionInfo, ProtocolConnection } from '../listener.js';
import { Channel } from './channel.js';
import { AmqpError, accessRefused, channelError, commandInvalid, notAllowed, unexpectedFrame } from './errors.js';
import { FRAME_OVERHEAD, FrameParser, FrameWriter, PROTOCOL_HEADER, type Frame } from './frame.js';
import { decodeBasicProperties, decodeMethod, FRAME_BODY, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_MIN_SIZE, type DecodedMethod, type MethodArgs, type MethodInput, type MethodName } from './generated/spec.js';
import type { ConnectionSide, ContentHeader, ServerSide } from './session.js';
import type { StoredUser } from './users.js';
import { Reader, WireError } from './wire.js';

export const SERVER_FRAME_MAX = 131072;
export const SERVER_CHANNEL_MAX = 2047;
export const SERVER_HEARTBEAT = 60;
const HANDSHAKE_TIMEOUT_MS = 10_000;
const CLOSE_TIMEOUT_MS = 3_000;
const HIGH_WATER = 4096;
const LOW_WATER = 1024;

type State = 'header' | 'start' | 'tune' | 'open' | 'running' | 'closing' | 'closed';

export interface ClientInfo {
  product?: string;
  version?: string;
  platform?: string;
  connectionName?: string;
  capabilities: Record<string, unknown>;
}

export class AmqpConnection implements ProtocolConnection, ConnectionSide {
  state: State = 'header';
  readonly writer = new FrameWriter();
  readonly channels = new Map<number, Channel>();
  user: StoredUser | null = null;
  vhost = '/';
  client: ClientInfo = { capabilities: {} };
  frameMax = SERVER_FRAME_MAX;
  channelMax = SERVER_CHANNEL_MAX;
  heartbeat = 0;
  /** Publishes handed to the engine and not yet confirmed by its store. */
  inflight = 0;
  /** Set while the disk alarm blocks publishers and this connection has published. */
  blocked = false;
  hasPublished = false;
  private readonly parser = new FrameParser(SERVER_FRAME_MAX);
  private headerBytes = Buffer.alloc(0);
  private flushScheduled = false;
  private lastReceived = Date.now();
  private lastSent = Date.now();
  private timers: NodeJS.Timeout[] = [];
  private pausedForInflight = false;
  private mechanism = '';

  constructor(
    readonly server: ServerSide & ConnectionServer,
    readonly socket: net.Socket,
    readonly info: ConnectionInfo,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.cleanup());
    const handshake = setTimeout(() => {
      if (this.state !== 'running' && this.state !== 'closed') {
        server.logger.warn('amqp client did not finish the handshake in time', { remote: info.remote });
        socket.destroy();
      }
    }, HANDSHAKE_TIMEOUT_MS);
    handshake.unref();
    this.timers.push(handshake);
  }

  get id(): string {
    return this.info.id;
  }

  /** The engine of this connection's virtual host (asked at each use: it may have been reopened). */
  engine(): Engine {
    return this.server.engine(this.vhost);
  }

  // ---- reading -------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    this.lastReceived = Date.now();
    if (this.state === 'closed') return;
    try {
      if (this.state === 'header') {
        this.headerBytes = Buffer.concat([this.headerBytes, chunk]);
        if (this.headerBytes.length < 8) {
          if (!PROTOCOL_HEADER.subarray(0, this.headerBytes.length).equals(this.headerBytes)) this.refuseProtocol();
          return;
        }
        if (!this.headerBytes.subarray(0, 8).equals(PROTOCOL_HEADER)) return this.refuseProtocol();
        const rest = this.headerBytes.subarray(8);
        this.headerBytes = Buffer.alloc(0);
        this.sendStart();
        if (rest.length === 0) return this.flush();
        chunk = rest;
      }
      this.parser.push(chunk);
      for (let f = this.parser.next(); f; f = (this.state as State) === 'closed' ? null : this.parser.next()) this.onFrame(f);
    } catch (err) {
      this.fail(err);
    }
    this.flush();
  }

  /** Any exception while handling input: a WireError or hard AmqpError closes the connection; anything else is a bug, reported as 541. */
  private fail(err: unknown): void {
    if (err instanceof WireError) return this.closeWith(new AmqpError(err.code, err.message.replace(/^[A-Z_]+ - /, '')));
    if (err instanceof AmqpError) return this.closeWith(err);
    this.server.logger.error('amqp connection failed', { remote: this.info.remote, error: (err as Error)?.stack ?? String(err) });
    this.closeWith(new AmqpError(541, (err as Error)?.message ?? String(err)));
  }

  /** A peer that does not speak AMQP 0-9-1 is told which protocol this is and disconnected (the spec's rule). */
  private refuseProtocol(): void {
    this.socket.write(PROTOCOL_HEADER);
    this.socket.end();
    this.state = 'closed';
  }

  private onFrame(f: Frame): void {
    if (this.state === 'closing') {
      // Only the close handshake matters now; everything else is dropped, as RabbitMQ does.
      if (f.channel === 0 && f.type === 1) {
        const m = decodeMethod(f.payload);
        if (m.name === 'connection.close-ok') this.socket.end();
        else if (m.name === 'connection.close') {
          this.send(0, 'connection.close-ok', {});
          this.flush();
          this.socket.end();
        }
      }
      return;
    }
    if (f.type === FRAME_HEARTBEAT) {
      if (f.channel !== 0) throw new WireError(501, `FRAME_ERROR - heartbeat frame on channel ${f.channel}`);
      return;
    }
    if (f.channel === 0) {
      if (f.type !== 1) throw unexpectedFrame(`content frame of type ${f.type} on channel 0`);
      const m = this.decode(f);
      try {
        return this.onConnectionMethod(m);
      } catch (err) {
        throw err instanceof AmqpError ? err.at(m.classId, m.methodId) : err;
      }
    }
    if (this.state !== 'running') throw unexpectedFrame(`frame on channel ${f.channel} before the connection is open`);
    const ch = this.channels.get(f.channel);
    if (f.type === FRAME_HEADER || f.type === FRAME_BODY) {
      if (!ch) throw channelError(`frame on channel ${f.channel}, which is not open`);
      if (f.type === FRAME_HEADER) ch.onHeader(readHeader(f.payload));
      else ch.onBody(f.payload);
      return;
    }
    const m = this.decode(f);
    if (!ch) {
      if (m.name !== 'channel.open') throw channelError(`expected 'channel.open' on channel ${f.channel}`);
      if (f.channel > this.channelMax) throw notAllowed(`channel number ${f.channel} is above the negotiated channel_max of ${this.channelMax}`);
      const created = new Channel(this, f.channel);
      this.channels.set(f.channel, created);
      this.send(f.channel, 'channel.open-ok', {});
      return;
    }
    ch.onMethod(m);
  }

  private decode(f: Frame): DecodedMethod {
    const m = decodeMethod(f.payload);
    if (m.name === null) throw commandInvalid(`unknown method: class ${m.classId}, method ${m.methodId}`).at(m.classId, m.methodId);
    return m;
  }

  private onConnectionMethod(m: DecodedMethod): void {
    const expected: Partial<Record<State, MethodName>> = { start: 'connection.start-ok', tune: 'connection.tune-ok', open: 'connection.open' };
    const want = expected[this.state];
    if (want && m.name !== want && m.name !== 'connection.close') {
      throw commandInvalid(`expected '${want}', got '${m.name}'`).at(m.classId, m.methodId);
    }
    switch (m.name) {
      case 'connection.start-ok':
        return this.onStartOk(m.args);
      case 'connection.tune-ok':
        return this.onTuneOk(m.args);
      case 'connection.open':
        return this.onOpen(m.args.virtualHost);
      case 'connection.close':
        this.send(0, 'connection.close-ok', {});
        this.flush();
        this.state = 'closed';
        this.socket.end();
        return;
      case 'connection.close-ok':
        this.socket.end();
        return;
      case 'connection.blocked':
      case 'connection.unblocked':
        return;
      case 'connection.update-secret':
        this.send(0, 'connection.update-secret-ok', {});
        return;
      default:
        throw commandInvalid(`'${m.name}' is not allowed on channel 0`).at(m.classId, m.methodId);
    }
  }

  // ---- handshake ------------------------------------------------------------------

  private sendStart(): void {
    this.state = 'start';
    this.send(0, 'connection.start', {
      versionMajor: 0,
      versionMinor: 9,
      serverProperties: this.server.serverProperties(),
      mechanisms: Buffer.from('PLAIN AMQPLAIN'),
      locales: Buffer.from('en_US'),
    });
  }

  private onStartOk(a: MethodArgs['connection.start-ok']): void {
    const props = a.clientProperties ?? {};
    const caps = props.capabilities;
    this.client = {
      product: text(props.product),
      version: text(props.version),
      platform: text(props.platform),
      connectionName: text(props.connection_name),
      capabilities: caps && typeof caps === 'object' && !Array.isArray(caps) ? (caps as Record<string, unknown>) : {},
    };
    this.mechanism = a.mechanism;
    const creds = parseCredentials(a.mechanism, a.response);
    if (!creds) {
      throw accessRefused(`unsupported authentication mechanism '${a.mechanism}' (PLAIN and AMQPLAIN are)`);
    }
    const user = this.server.users.authenticate(creds.user, creds.password);
    const loopbackOnly = user && this.server.isLoopbackOnly(user.name) && !this.info.loopback;
    if (!user || loopbackOnly) {
      this.server.logger.warn(loopbackOnly ? `amqp user '${creds.user}' can only connect via localhost` : 'amqp login refused', { remote: this.info.remote, user: creds.user });
      return this.refuseLogin();
    }
    this.user = user;
    this.state = 'tune';
    this.send(0, 'connection.tune', { channelMax: SERVER_CHANNEL_MAX, frameMax: SERVER_FRAME_MAX, heartbeat: this.server.heartbeat });
  }

  /** With authentication_failure_close the client is told why; without it, the socket just closes (RabbitMQ). */
  private refuseLogin(): void {
    if (this.client.capabilities.authentication_failure_close === true) {
      this.closeWith(accessRefused(`Login was refused using authentication mechanism ${this.mechanism}. For details see the broker logfile.`));
    } else {
      this.state = 'closed';
      this.socket.end();
    }
  }

  private onTuneOk(a: { channelMax: number; frameMax: number; heartbeat: number }): void {
    if (a.frameMax !== 0 && a.frameMax < FRAME_MIN_SIZE) throw notAllowed(`frame_max=${a.frameMax} < ${FRAME_MIN_SIZE} min size`);
    if (a.frameMax > SERVER_FRAME_MAX) throw notAllowed(`frame_max=${a.frameMax} > ${SERVER_FRAME_MAX} max size`);
    if (a.channelMax > SERVER_CHANNEL_MAX) throw notAllowed(`channel_max=${a.channelMax} > ${SERVER_CHANNEL_MAX} max channels`);
    this.frameMax = a.frameMax || SERVER_FRAME_MAX;
    this.parser.frameMax = this.frameMax;
    this.channelMax = a.channelMax || SERVER_CHANNEL_MAX;
    this.heartbeat = a.heartbeat;
    this.state = 'open';
    if (this.heartbeat > 0) this.startHeartbeats();
  }

  private onOpen(vhost: string): void {
    if (!this.server.hasVhost(vhost)) throw notAllowed(`vhost ${vhost} not found`);
    if (!this.user || !this.server.users.canAccess(this.user, vhost)) throw notAllowed(`access to vhost '${vhost}' refused for user '${this.user?.name}'`);
    this.vhost = vhost;
    this.state = 'running';
    this.server.opened(this);
    this.send(0, 'connection.open-ok', {});
  }

  /**
   * Heartbeats (in seconds) as RabbitMQ keeps them: one is sent after
   * heartbeat/2 of silence, and a peer silent for two heartbeat intervals
   * is disconnected. While publishing is blocked the check is off, because
   * the socket is not being read.
   */
  private startHeartbeats(): void {
    const ms = this.heartbeat * 1000;
    const t = setInterval(
      () => {
        const now = Date.now();
        if (now - this.lastSent >= ms / 2) {
          this.writer.heartbeat();
          this.flush();
        }
        if (!this.socket.isPaused() && now - this.lastReceived > 2 * ms) {
          this.server.logger.warn(`amqp client missed heartbeats, timeout: ${this.heartbeat}s`, { remote: this.info.remote });
          this.state = 'closed';
          this.socket.destroy();
        }
      },
      Math.max(100, ms / 2),
    );
    t.unref();
    this.timers.push(t);
  }

  // ---- writing ----------------------------------------------------------------------

  send<N extends MethodName>(channel: number, name: N, args: MethodInput<N>): void {
    this.writer.method(channel, name, args);
    this.scheduleFlush();
  }

  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.flushScheduled = false;
    if (this.writer.length === 0 || this.socket.destroyed) return;
    this.lastSent = Date.now();
    this.socket.write(this.writer.take());
  }

  // ---- closing ------------------------------------------------------------------------

  /** A connection exception: connection.close is sent, channels are released, and the socket ends at close-ok (or after a while). */
  closeWith(err: AmqpError): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    const hard = err.hard ? err : new AmqpError(err.code, err.detail, err.classId, err.methodId);
    this.server.logger.info('amqp connection closed by the broker', { remote: this.info.remote, reply: hard.text });
    this.releaseChannels();
    this.send(0, 'connection.close', { replyCode: hard.code, replyText: hard.text, classId: hard.classId, methodId: hard.methodId });
    this.flush();
    this.state = 'closing';
    const t = setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT_MS);
    t.unref();
    this.timers.push(t);
  }

  shutdown(reason: string): void {
    this.closeWith(new AmqpError(320, `broker forced connection closure with reason '${reason}'`));
  }

  private releaseChannels(): void {
    for (const ch of this.channels.values()) ch.release();
    this.channels.clear();
  }

  private cleanup(): void {
    if (this.state === 'closed' && this.timers.length === 0) return;
    this.state = 'closed';
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    this.releaseChannels();
    this.server.closed(this);
  }

  // ---- flow --------------------------------------------------------------------------

  publishStarted(): void {
    this.hasPublished = true;
    // A connection that starts publishing during the disk alarm is blocked from then on, as the others are.
    const alarm = this.server.alarmReason;
    if (alarm !== null && !this.blocked) this.setBlocked(alarm);
    if (++this.inflight >= HIGH_WATER && !this.pausedForInflight) {
      this.pausedForInflight = true;
      this.socket.pause();
    }
  }

  publishDone(): void {
    if (--this.inflight <= LOW_WATER && this.pausedForInflight) {
      this.pausedForInflight = false;
      if (!this.blocked) this.socket.resume();
    }
  }

  /** The disk alarm went on or off: tell clients that asked, and stop or resume reading publishers' sockets. */
  setBlocked(reason: string | null): void {
    if (this.state !== 'running') return;
    const notify = this.client.capabilities['connection.blocked'] === true;
    if (reason !== null && this.hasPublished && !this.blocked) {
      this.blocked = true;
      if (notify) this.send(0, 'connection.blocked', { reason });
      this.flush();
      this.socket.pause();
    } else if (reason === null && this.blocked) {
      this.blocked = false;
      if (notify) this.send(0, 'connection.unblocked', {});
      this.flush();
      if (!this.pausedForInflight) this.socket.resume();
    }
  }

  /** Frames still waiting in the parser (the fuzz test watches memory). */
  get bufferedBytes(): number {
    return this.parser.buffered;
  }
}

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return undefined;
}

/** PLAIN: `\0user\0password`; AMQPLAIN: a field table's entries (without its length) LOGIN and PASSWORD. */
export function parseCredentials(mechanism: string, response: Buffer): { user: string; password: string } | null {
  if (mechanism === 'PLAIN') {
    const parts = response.toString('utf8').split('\0');
    if (parts.length !== 3) return { user: '', password: '' };
    return { user: parts[1]!, password: parts[2]! };
  }
  if (mechanism === 'AMQPLAIN') {
    const framed = Buffer.alloc(4 + response.length);
    framed.writeUInt32BE(response.length, 0);
    response.copy(framed, 4);
    const t = new Reader(framed).table('response');
    return { user: text(t.LOGIN) ?? '', password: text(t.PASSWORD) ?? '' };
  }
  return null;
}

/** What the connection itself asks of the listener, beyond what its channels do. */
export interface ConnectionServer {
  readonly heartbeat: number;
  /** Why publishers are blocked (the disk alarm), or null. */
  readonly alarmReason: string | null;
  engine(vhost: string): Engine;
  hasVhost(name: string): boolean;
  isLoopbackOnly(user: string): boolean;
  serverProperties(): Record<string, unknown>;
  opened(c: AmqpConnection): void;
  closed(c: AmqpConnection): void;
}

function readHeader(payload: Buffer): ContentHeader {
  const r = new Reader(payload);
  const classId = r.short('class-id');
  r.short('weight');
  const bodySize = r.longlong('body-size');
  const properties = decodeBasicProperties(r);
  r.end('content header');
  return { classId, bodySize, properties };
}

export { FRAME_OVERHEAD };
