/**
 * The base every wire listener of the embedded broker stands on (AMQP 0-9-1,
 * the Kafka protocol): it accepts TCP connections, optionally over TLS, keeps
 * a registry of the open ones, and shuts down gracefully, asking each
 * protocol connection to say goodbye in its own protocol before the socket is
 * destroyed. What a connection says on the wire is the protocol's business.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../ground/logger.js';

export interface ListenerTls {
  key: string | Buffer;
  cert: string | Buffer;
  /** Certificate authorities that client certificates must chain to; with it, clients must present one. */
  ca?: string | Buffer;
}

/** What the listener knows of a connection before its protocol says anything. */
export interface ConnectionInfo {
  /** Unique within the process. */
  id: string;
  /** `address:port` of the peer. */
  remote: string;
  remoteAddress: string;
  /** The peer connected from this machine (RabbitMQ lets `guest` in only from loopback). */
  loopback: boolean;
  tls: boolean;
  connectedAt: number;
}

/** A protocol's side of one connection. */
export interface ProtocolConnection {
  /**
   * Asks the peer to go away, in the protocol's terms (AMQP sends
   * connection.close 320 CONNECTION_FORCED; Kafka has nothing to say and
   * ends the socket). The listener destroys the socket after the grace
   * period whether or not the peer answered.
   */
  shutdown(reason: string): void | Promise<void>;
}

export interface ListenerOptions<C extends ProtocolConnection> {
  /** Names the listener in logs and errors: `amqp`, `kafka`. */
  protocol: string;
  /** Interface to bind; loopback unless the person chose otherwise. */
  host?: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  tls?: ListenerTls;
  logger: Logger;
  /** Further connections are refused (the socket is closed at once) above this count. */
  maxConnections?: number;
  /** Called for each accepted socket; the protocol reads and writes it from then on. */
  accept(socket: net.Socket, info: ConnectionInfo): C;
}

export class ListenerError extends Error {
  constructor(
    readonly code: 'ADDRESS_IN_USE' | 'ACCESS_DENIED' | 'LISTEN_FAILED',
    message: string,
  ) {
    super(message);
    this.name = 'ListenerError';
  }
}

interface Entry<C> {
  info: ConnectionInfo;
  socket: net.Socket;
  connection: C;
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

export class Listener<C extends ProtocolConnection> {
  private server: net.Server | null = null;
  private readonly open = new Map<string, Entry<C>>();
  private boundPort: number | null = null;
  private closing: Promise<void> | null = null;

  constructor(private readonly options: ListenerOptions<C>) {}

  get protocol(): string {
    return this.options.protocol;
  }

  /** The bound port once listening, else null. */
  get port(): number | null {
    return this.boundPort;
  }

  get host(): string {
    return this.options.host ?? '127.0.0.1';
  }

  /** The open connections, by id. */
  connections(): ReadonlyMap<string, { info: ConnectionInfo; connection: C }> {
    return this.open;
  }

  /** Starts accepting; resolves with the bound port, or rejects with a ListenerError that names the address. */
  listen(): Promise<number> {
    if (this.server) return Promise.reject(new ListenerError('LISTEN_FAILED', `${this.protocol} listener is already started`));
    const { tls: tlsOptions } = this.options;
    const server = tlsOptions
      ? tls.createServer({ key: tlsOptions.key, cert: tlsOptions.cert, ...(tlsOptions.ca ? { ca: tlsOptions.ca, requestCert: true, rejectUnauthorized: true } : {}) }, (s) => this.onSocket(s, true))
      : net.createServer((s) => this.onSocket(s, false));
    // A failed TLS handshake is the peer's problem: log it, never let it reach the process.
    server.on('tlsClientError', (error: Error) => this.options.logger.warn(`${this.protocol} TLS handshake failed`, { error: error.message }));
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        this.server = null;
        const where = `${this.host}:${this.options.port}`;
        if (error.code === 'EADDRINUSE') reject(new ListenerError('ADDRESS_IN_USE', `${this.protocol} listener: port ${this.options.port} on ${this.host} is already in use (another broker may be running; choose another port, or 0 for a free one)`));
        else if (error.code === 'EACCES') reject(new ListenerError('ACCESS_DENIED', `${this.protocol} listener: not allowed to listen on ${where}`));
        else reject(new ListenerError('LISTEN_FAILED', `${this.protocol} listener could not listen on ${where}: ${error.message}`));
      };
      server.once('error', onError);
      server.listen({ host: this.host, port: this.options.port }, () => {
        server.off('error', onError);
        server.on('error', (error) => this.options.logger.error(`${this.protocol} listener failed`, { error: error.message }));
        this.boundPort = (server.address() as net.AddressInfo).port;
        this.options.logger.info(`${this.protocol} listener started`, { host: this.host, port: this.boundPort, tls: Boolean(tlsOptions) });
        resolve(this.boundPort);
      });
    });
  }

  private onSocket(socket: net.Socket, overTls: boolean): void {
    // Errors of one socket (a reset, a write after the peer left) concern that connection only.
    socket.on('error', () => socket.destroy());
    if (this.closing || (this.options.maxConnections !== undefined && this.open.size >= this.options.maxConnections)) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const remoteAddress = socket.remoteAddress ?? '';
    const info: ConnectionInfo = {
      id: randomUUID(),
      remote: `${remoteAddress}:${socket.remotePort ?? 0}`,
      remoteAddress,
      loopback: LOOPBACK.test(remoteAddress),
      tls: overTls,
      connectedAt: Date.now(),
    };
    let connection: C;
    try {
      connection = this.options.accept(socket, info);
    } catch (error) {
      this.options.logger.error(`${this.protocol} connection could not be set up`, { remote: info.remote, error: (error as Error).message });
      socket.destroy();
      return;
    }
    this.open.set(info.id, { info, socket, connection });
    socket.once('close', () => this.open.delete(info.id));
  }

  /**
   * Stops accepting, asks every open connection to go away in its protocol,
   * and destroys what is still open after `graceMs`. Resolves when every socket
   * is closed; calling it again returns the same promise.
   */
  close(graceMs = 5_000, reason = 'broker shutdown'): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      const server = this.server;
      const stopped = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
      const entries = [...this.open.values()];
      await Promise.all(
        entries.map(async ({ socket, connection, info }) => {
          const gone = new Promise<void>((r) => (socket.destroyed ? r() : socket.once('close', () => r())));
          try {
            await connection.shutdown(reason);
          } catch (error) {
            this.options.logger.warn(`${this.protocol} connection did not shut down cleanly`, { remote: info.remote, error: (error as Error).message });
          }
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([gone, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
          clearTimeout(timer);
          socket.destroy();
          await gone;
        }),
      );
      await stopped;
      this.server = null;
      this.boundPort = null;
      if (server) this.options.logger.info(`${this.protocol} listener stopped`, { connections: entries.length });
    })();
    return this.closing;
  }
}
