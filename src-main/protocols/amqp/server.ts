/**
 * The embedded broker's AMQP 0-9-1 listener: the shared listener base
 * (protocols/listener.ts) accepting sockets, and what the connections share:
 * the users, the server properties, the direct reply-to channels, the
 * owners of exclusive queues, the disk alarm and vhost deletion (whose
 * connections are closed, as RabbitMQ closes them).
 */
import { randomBytes } from 'node:crypto';
import type { BrokerHost } from '../../broker/host.js';
import type { Engine } from '../../broker/engine.js';
import { MAX_MESSAGE_BYTES } from '../../broker/limits.js';
import type { DiskAlarm } from '../../broker/types.js';
import type { Logger } from '../../ground/logger.js';
import { Listener, type ListenerTls } from '../listener.js';
import { DEFAULT_CONSUMER_TIMEOUT_MS } from './channel.js';
import { AmqpConnection, SERVER_HEARTBEAT } from './connection.js';
import { AmqpError } from './errors.js';
import type { ReplyTarget, ServerSide } from './session.js';
import { LOOPBACK_USERS, UserStore } from './users.js';

export interface AmqpListenerConfig {
  port: number;
  host?: string;
  tls?: ListenerTls;
  /** Where amqp-users.json lives; null or absent keeps users in memory. */
  dataDir?: string | null;
  /** Heartbeat the server proposes, seconds (RabbitMQ's default 60). */
  heartbeat?: number;
  /** Delivery acknowledgement timeout, ms (RabbitMQ's consumer_timeout, 30 minutes). */
  consumerTimeoutMs?: number;
  /** Users that may connect only from loopback (RabbitMQ's loopback_users: guest). */
  loopbackUsers?: ReadonlySet<string>;
  version?: string;
}

/** What the broker host offers whether or not it has virtual hosts beyond '/'. */
interface VhostAware {
  live(vhost?: string): Engine;
  hasVhost?(name: string): boolean;
}

export class AmqpServer implements ServerSide {
  readonly users: UserStore;
  readonly heartbeat: number;
  readonly consumerTimeoutMs: number;
  readonly maxBodyBytes = MAX_MESSAGE_BYTES;
  private readonly connections = new Set<AmqpConnection>();
  private readonly replies = new Map<string, ReplyTarget>();
  private readonly exclusive = new Map<string, string>();
  private readonly loopbackUsers: ReadonlySet<string>;
  private alarm: string | null = null;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(
    readonly host: BrokerHost,
    readonly logger: Logger,
    private readonly config: AmqpListenerConfig,
  ) {
    this.users = new UserStore(config.dataDir ?? null);
    this.heartbeat = config.heartbeat ?? SERVER_HEARTBEAT;
    this.consumerTimeoutMs = config.consumerTimeoutMs ?? DEFAULT_CONSUMER_TIMEOUT_MS;
    this.loopbackUsers = config.loopbackUsers ?? LOOPBACK_USERS;
    const onAlarm = (a: DiskAlarm | null) => {
      this.alarm = a ? 'low on disk' : null;
      for (const c of this.connections) c.setBlocked(this.alarm);
    };
    host.events.on('alarm', onAlarm);
    this.unsubscribe.push(() => host.events.off('alarm', onAlarm));
    // Virtual hosts: a deleted one takes its connections with it (RabbitMQ closes them with 320).
    const events = host.events as unknown as { on(e: string, f: (name: string) => void): void; off(e: string, f: (name: string) => void): void };
    const onVhostDeleted = (name: string) => {
      for (const c of this.connections) if (c.vhost === name && c.state === 'running') c.closeWith(new AmqpError(320, `vhost '${name}' is deleted`));
      // As RabbitMQ, a deleted vhost takes its permissions along: one created again under that name starts with none.
      for (const u of this.users.list()) if (Object.hasOwn(u.permissions, name)) this.users.clearPermissions(u.name, name);
    };
    events.on('vhostDeleted', onVhostDeleted);
    this.unsubscribe.push(() => events.off('vhostDeleted', onVhostDeleted));
  }

  get alarmReason(): string | null {
    return this.alarm;
  }

  engine(vhost: string): Engine {
    return (this.host as unknown as VhostAware).live(vhost);
  }

  hasVhost(name: string): boolean {
    const h = this.host as unknown as VhostAware;
    return typeof h.hasVhost === 'function' ? h.hasVhost(name) : name === '/';
  }

  isLoopbackOnly(user: string): boolean {
    return this.loopbackUsers.has(user);
  }

  serverProperties(): Record<string, unknown> {
    return {
      product: 'Brokerdeck',
      version: this.config.version ?? '0.0.0',
      platform: `Node.js ${process.version}`,
      copyright: 'Brokerdeck contributors',
      information: 'The embedded broker of Brokerdeck, speaking AMQP 0-9-1 as RabbitMQ does',
      cluster_name: 'brokerdeck',
      capabilities: {
        publisher_confirms: true,
        exchange_exchange_bindings: true,
        'basic.nack': true,
        consumer_cancel_notify: true,
        'connection.blocked': true,
        consumer_priorities: false,
        authentication_failure_close: true,
        per_consumer_qos: true,
        direct_reply_to: true,
      },
    };
  }

  accept(socket: import('node:net').Socket, info: import('../listener.js').ConnectionInfo): AmqpConnection {
    const c = new AmqpConnection(this, socket, info);
    return c;
  }

  opened(c: AmqpConnection): void {
    this.connections.add(c);
    if (this.alarm) c.setBlocked(this.alarm);
  }

  closed(c: AmqpConnection): void {
    this.connections.delete(c);
    for (const [key, owner] of this.exclusive) if (owner === c.id) this.exclusive.delete(key);
    try {
      const engine = this.engine(c.vhost);
      // The connection's exclusive queues go with it.
      if (!engine.isClosed) engine.closeOwner(c.id);
    } catch {
      // The vhost or the engine is gone; so are the queues.
    }
  }

  /** Open connections (the UI lists them). */
  list(): AmqpConnection[] {
    return [...this.connections];
  }

  // ---- exclusive queues ----

  exclusiveOwner(vhost: string, queue: string): string | undefined {
    return this.exclusive.get(`${vhost}\0${queue}`);
  }

  claimExclusive(vhost: string, queue: string, connection: string): void {
    this.exclusive.set(`${vhost}\0${queue}`, connection);
  }

  releaseExclusive(vhost: string, queue: string): void {
    this.exclusive.delete(`${vhost}\0${queue}`);
  }

  // ---- direct reply-to ----

  registerReply(ch: ReplyTarget): string {
    const token = randomBytes(18).toString('base64url');
    this.replies.set(token, ch);
    return token;
  }

  unregisterReply(token: string | null): void {
    if (token) this.replies.delete(token);
  }

  replyChannel(token: string): ReplyTarget | undefined {
    return this.replies.get(token);
  }

  stop(): void {
    for (const u of this.unsubscribe) u();
  }
}

/** The listener factory the core starts (core/listeners.ts). */
export function createAmqpListener(host: BrokerHost, config: AmqpListenerConfig, logger: Logger): Listener<AmqpConnection> & { amqp: AmqpServer } {
  const server = new AmqpServer(host, logger, config);
  const listener = new Listener<AmqpConnection>({
    protocol: 'amqp',
    ...(config.host ? { host: config.host } : {}),
    port: config.port,
    ...(config.tls ? { tls: config.tls } : {}),
    logger,
    accept: (socket, info) => server.accept(socket, info),
  });
  const close = listener.close.bind(listener);
  listener.close = (graceMs?: number, reason?: string) => {
    server.stop();
    return close(graceMs, reason);
  };
  return Object.assign(listener, { amqp: server });
}
