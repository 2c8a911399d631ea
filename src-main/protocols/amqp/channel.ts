/**
 * One AMQP channel over the engine, with RabbitMQ's rules and texts: exchange
 * and queue methods, publishing (content header and body frames, mandatory
 * returns, publisher confirms, transactions, direct reply-to), consuming
 * (basic.qos, consume, cancel, deliver, get, ack, nack, reject, recover, the
 * delivery acknowledgement timeout) and channel exceptions.
 *
 * Delivery tags are the channel's own (1, 2, 3 … as AMQP wants), mapped to the
 * engine's, which are global; because both only grow, "multiple" up to a
 * channel tag is "multiple" up to its engine tag within the channel's owner.
 * Consumer tags are the channel's too, prefixed with the channel's owner in
 * the engine, so two connections may both use `ctag1`.
 */
import { randomBytes } from 'node:crypto';
import type { Engine } from '../../broker/engine.js';
import type { Delivery, ExchangeType, MessageProperties, PublishResult, SharedPrefetch } from '../../broker/types.js';
import type { ConnectionSide, ContentHeader, ReplyTarget } from './session.js';
import { AmqpError, accessRefused, commandInvalid, fromBrokerError, notAllowed, notFound, notImplemented, preconditionFailed, resourceLocked, unexpectedFrame } from './errors.js';
import type { DecodedMethod, MethodArgs } from './generated/spec.js';
import type { AmqpChannelInfo } from '../../contract/types.js';
import { fromWire, toWire } from './properties.js';
import type { PermissionKind } from './users.js';

export const REPLY_TO = 'amq.rabbitmq.reply-to';
const REPLY_TO_PREFIX = `${REPLY_TO}.`;
/** RabbitMQ's default consumer_timeout: 30 minutes. */
export const DEFAULT_CONSUMER_TIMEOUT_MS = 1_800_000;
const EXCHANGE_TYPES = new Set(['direct', 'fanout', 'topic', 'headers']);
/** The engine's ack options, shared by every ack rather than made per ack. */
const ACK_ONE = Object.freeze({ multiple: false });
const ACK_MULTIPLE = Object.freeze({ multiple: true });

interface ConsumerRec {
  queue: string;
  noAck: boolean;
  timeoutMs: number;
  /** The engine's tag; null for the direct reply-to consumer, which the engine does not know. */
  engineTag: string | null;
}

interface UnackedRec {
  engineTag: number;
  deadline: number;
  timeoutMs: number;
}

type PublishArgs = MethodArgs['basic.publish'];
type TxOp = { kind: 'publish'; args: PublishArgs; props: MessageProperties; body: Buffer } | { kind: 'settle'; method: 'ack' | 'nack' | 'reject'; tag: number; multiple: boolean; requeue: boolean };

export class Channel implements ReplyTarget {
  readonly owner: string;
  private closing = false;
  private pending: { args: PublishArgs; header: ContentHeader | null; parts: Buffer[]; received: number } | null = null;
  private lastQueue: string | null = null;
  private readonly consumers = new Map<string, ConsumerRec>();
  private readonly unacked = new Map<number, UnackedRec>();
  private nextTag = 1;
  private prefetch = 0;
  /** The channel-wide limit (basic.qos global=true), counted by the engine across the channel's consumers. */
  private readonly shared: SharedPrefetch = { limit: 0, unacked: 0 };
  private confirm = false;
  private publishSeq = 0;
  /** Confirms not yet sent, by publish sequence number, and the lowest one still to send. */
  private readonly confirms = new Map<number, boolean>();
  private confirmFloor = 1;
  private confirmScheduled = false;
  private tx: TxOp[] | null = null;
  private replyToken: string | null = null;
  private timeoutTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly conn: ConnectionSide,
    readonly id: number,
  ) {
    this.owner = `${conn.id}#${id}`;
  }

  private get vhost(): string {
    return this.conn.vhost;
  }

  private engine(): Engine {
    return this.conn.engine();
  }

  // ---- frames ------------------------------------------------------------------------

  onMethod(m: DecodedMethod): void {
    if (this.pending) throw unexpectedFrame(`expected content header for class 60, got non content header frame instead`).at(m.classId, m.methodId);
    if (this.closing) {
      // After channel.close only its close-ok (or a crossing close) counts; RabbitMQ drops the rest.
      if (m.name === 'channel.close-ok') this.conn.channels.delete(this.id);
      else if (m.name === 'channel.close') {
        this.conn.send(this.id, 'channel.close-ok', {});
        this.conn.channels.delete(this.id);
      }
      return;
    }
    try {
      this.handle(m);
    } catch (err) {
      const e = fromBrokerError(err, this.vhost).at(m.classId, m.methodId);
      if (e.hard) throw e;
      this.closeWith(e);
    }
  }

  onHeader(h: ContentHeader): void {
    if (this.closing) return;
    const p = this.pending;
    if (!p || p.header) throw unexpectedFrame(`content header on channel ${this.id} without a content method before it`).at(60, 40);
    if (h.classId !== 60) throw unexpectedFrame(`content header for class ${h.classId}, expected class 60`).at(60, 40);
    const max = this.engineMaxBody();
    if (h.bodySize > max) {
      this.pending = null;
      // The body frames that follow land on a closing channel and are dropped.
      this.closeWith(preconditionFailed(`message size ${h.bodySize} is larger than configured max size ${max}`).at(60, 40));
      return;
    }
    p.header = h;
    if (h.bodySize === 0) this.complete();
  }

  onBody(b: Buffer): void {
    if (this.closing) return;
    const p = this.pending;
    if (!p || !p.header) throw unexpectedFrame(`content body on channel ${this.id} without a content header before it`).at(60, 40);
    p.parts.push(b);
    p.received += b.length;
    if (p.received > p.header.bodySize) throw unexpectedFrame(`content body of ${p.received} bytes is longer than the ${p.header.bodySize} its header announced`).at(60, 40);
    if (p.received === p.header.bodySize) this.complete();
  }

  private engineMaxBody(): number {
    return this.conn.server.maxBodyBytes;
  }

  private complete(): void {
    const p = this.pending!;
    this.pending = null;
    const body = p.parts.length === 1 ? p.parts[0]! : Buffer.concat(p.parts, p.received);
    try {
      const props = fromWire(p.header!.properties, this.conn.user!.name);
      if (this.tx) this.tx.push({ kind: 'publish', args: p.args, props, body });
      else void this.publish(p.args, props, body);
    } catch (err) {
      const e = fromBrokerError(err, this.vhost).at(60, 40);
      if (e.hard) throw e;
      this.closeWith(e);
    }
  }

  // ---- methods ------------------------------------------------------------------------

  private handle(m: DecodedMethod): void {
    const send = this.conn.send.bind(this.conn);
    const id = this.id;
    switch (m.name) {
      case 'channel.close':
        this.release();
        send(id, 'channel.close-ok', {});
        this.conn.channels.delete(id);
        return;
      case 'channel.close-ok':
        return;
      case 'channel.open':
        throw new AmqpError(504, `second 'channel.open' seen`);
      case 'channel.flow':
        // RabbitMQ no longer stops deliveries on flow active=false.
        if (!m.args.active) throw notImplemented('active=false');
        send(id, 'channel.flow-ok', { active: true });
        return;
      case 'access.request':
        send(id, 'access.request-ok', { ticket: 1 });
        return;
      case 'exchange.declare':
        return this.exchangeDeclare(m.args);
      case 'exchange.delete': {
        const a = m.args;
        this.checkNotDefault(a.exchange);
        this.permit('configure', 'exchange', a.exchange);
        try {
          this.engine().deleteExchange(a.exchange, { ifUnused: a.ifUnused });
        } catch (err) {
          // Deleting what is not there succeeds, as in RabbitMQ.
          if (!(fromBrokerError(err, this.vhost).code === 404)) throw err;
        }
        if (!a.nowait) send(id, 'exchange.delete-ok', {});
        return;
      }
      case 'exchange.bind':
      case 'exchange.unbind': {
        const a = m.args;
        this.checkNotDefault(a.destination);
        this.checkNotDefault(a.source);
        this.permit('write', 'exchange', a.destination);
        this.permit('read', 'exchange', a.source);
        const spec = { source: a.source, destination: a.destination, destinationType: 'exchange' as const, routingKey: a.routingKey, arguments: a.arguments };
        if (m.name === 'exchange.bind') this.engine().bind(spec);
        else this.unbindQuietly(spec);
        if (!a.nowait) send(id, m.name === 'exchange.bind' ? 'exchange.bind-ok' : 'exchange.unbind-ok', {});
        return;
      }
      case 'queue.declare':
        return this.queueDeclare(m.args);
      case 'queue.bind':
      case 'queue.unbind': {
        const a = m.args;
        const queue = this.queueName(a.queue);
        this.checkNotDefault(a.exchange);
        this.permit('write', 'queue', queue);
        this.permit('read', 'exchange', a.exchange);
        this.checkExclusive(queue);
        const spec = { source: a.exchange, destination: queue, destinationType: 'queue' as const, routingKey: a.routingKey, arguments: a.arguments };
        if (m.name === 'queue.bind') {
          this.engine().bind(spec);
          if (!(a as MethodArgs['queue.bind']).nowait) send(id, 'queue.bind-ok', {});
        } else {
          this.unbindQuietly(spec);
          send(id, 'queue.unbind-ok', {});
        }
        return;
      }
      case 'queue.purge': {
        const queue = this.queueName(m.args.queue);
        this.permit('read', 'queue', queue);
        this.checkExclusive(queue);
        const { messageCount } = this.engine().purgeQueue(queue);
        if (!m.args.nowait) send(id, 'queue.purge-ok', { messageCount });
        return;
      }
      case 'queue.delete':
        return this.queueDelete(m.args);
      case 'basic.qos': {
        const a = m.args;
        if (a.prefetchSize !== 0) throw notImplemented(`prefetch_size!=0 (${a.prefetchSize})`);
        // RabbitMQ's meaning: global=false limits each consumer started from now on;
        // global=true limits the channel's consumers together, at once.
        if (a.global) this.engine().setSharedPrefetch(this.shared, a.prefetchCount);
        else this.prefetch = a.prefetchCount;
        send(id, 'basic.qos-ok', {});
        return;
      }
      case 'basic.consume':
        return this.consume(m.args);
      case 'basic.cancel': {
        this.cancelConsumer(m.args.consumerTag);
        if (!m.args.nowait) send(id, 'basic.cancel-ok', { consumerTag: m.args.consumerTag });
        return;
      }
      case 'basic.publish':
        if (m.args.immediate) throw notImplemented('immediate=true');
        this.counts.published++;
        this.pending = { args: m.args, header: null, parts: [], received: 0 };
        return;
      case 'basic.get':
        return this.get(m.args);
      case 'basic.ack':
        return this.settle('ack', m.args.deliveryTag, m.args.multiple, false);
      case 'basic.nack':
        return this.settle('nack', m.args.deliveryTag, m.args.multiple, m.args.requeue);
      case 'basic.reject':
        return this.settle('reject', m.args.deliveryTag, false, m.args.requeue);
      case 'basic.recover':
      case 'basic.recover-async': {
        if (!m.args.requeue) throw notImplemented('requeue=false');
        if (this.unacked.size > 0) {
          const last = [...this.unacked.keys()].pop()!;
          this.doSettle('nack', last, true, true);
        }
        if (m.name === 'basic.recover') send(id, 'basic.recover-ok', {});
        return;
      }
      case 'confirm.select':
        if (this.tx) throw preconditionFailed('cannot switch from tx to confirm mode');
        this.confirm = true;
        if (!m.args.nowait) send(id, 'confirm.select-ok', {});
        return;
      case 'tx.select':
        if (this.confirm) throw preconditionFailed('cannot switch from confirm to tx mode');
        this.tx ??= [];
        send(id, 'tx.select-ok', {});
        return;
      case 'tx.commit': {
        if (!this.tx) throw preconditionFailed('channel is not transactional');
        const ops = this.tx;
        this.tx = [];
        this.commit(ops).catch((err: unknown) => {
          const e = fromBrokerError(err, this.vhost).at(90, 20);
          if (e.hard) this.conn.closeWith(e);
          else this.closeWith(e);
          this.conn.flush();
        });
        return;
      }
      case 'tx.rollback':
        if (!this.tx) throw preconditionFailed('channel is not transactional');
        this.tx = [];
        send(id, 'tx.rollback-ok', {});
        return;
      default:
        throw commandInvalid(`'${m.name}' is not a method a client sends`);
    }
  }

  // ---- permissions and names ------------------------------------------------------------

  private permit(kind: PermissionKind, what: 'exchange' | 'queue', name: string): void {
    const user = this.conn.user!;
    const resource = what === 'exchange' && name === '' ? 'amq.default' : name;
    if (!this.conn.server.users.allows(user, this.vhost, kind, resource)) {
      throw accessRefused(`${kind} access to ${what} '${resource}' in vhost '${this.vhost}' refused for user '${user.name}'`);
    }
  }

  private checkNotDefault(exchange: string): void {
    if (exchange === '') throw accessRefused(`operation not permitted on the default exchange`);
  }

  /** An empty queue name means the queue this channel declared last (AMQP's rule). */
  private queueName(name: string): string {
    if (name !== '') return name;
    if (this.lastQueue === null) throw notFound('no previously declared queue');
    return this.lastQueue;
  }

  private checkExclusive(queue: string): void {
    const holder = this.conn.server.exclusiveOwner(this.vhost, queue);
    if (holder !== undefined && holder !== this.conn.id) {
      throw resourceLocked(`cannot obtain exclusive access to locked queue '${queue}' in vhost '${this.vhost}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`);
    }
  }

  private unbindQuietly(spec: Parameters<Engine['unbind']>[0]): void {
    try {
      this.engine().unbind(spec);
    } catch (err) {
      // Unbinding what is not bound succeeds (RabbitMQ); a missing queue or exchange is still 404.
      const e = fromBrokerError(err, this.vhost);
      if (e.code !== 404 || /no (queue|exchange) /.test(e.detail)) throw err;
    }
  }

  // ---- exchanges and queues ---------------------------------------------------------------

  private exchangeDeclare(a: MethodArgs['exchange.declare']): void {
    const engine = this.engine();
    if (a.passive) {
      if (a.exchange !== '' && !engine.listExchanges().some((e) => e.name === a.exchange)) throw notFound(`no exchange '${a.exchange}' in vhost '${this.vhost}'`);
    } else {
      this.checkNotDefault(a.exchange);
      if (a.exchange.startsWith('amq.')) throw accessRefused(`exchange name '${a.exchange}' contains reserved prefix 'amq.*'`);
      if (!EXCHANGE_TYPES.has(a.type)) throw commandInvalid(`invalid exchange type '${a.type}'`);
      this.permit('configure', 'exchange', a.exchange);
      engine.declareExchange(a.exchange, { type: a.type as ExchangeType, durable: a.durable, autoDelete: a.autoDelete, internal: a.internal, arguments: a.arguments });
    }
    if (!a.nowait) this.conn.send(this.id, 'exchange.declare-ok', {});
  }

  private queueDeclare(a: MethodArgs['queue.declare']): void {
    const engine = this.engine();
    const server = this.conn.server;
    let name = a.queue;
    let info;
    if (a.passive) {
      name = this.queueName(a.queue);
      info = engine.getQueue(name);
      this.checkExclusive(name);
    } else {
      if (name.startsWith('amq.')) throw accessRefused(`queue name '${name}' contains reserved prefix 'amq.*'`);
      if (name !== '') {
        this.permit('configure', 'queue', name);
        this.checkExclusive(name);
      }
      info = engine.declareQueue(name, { durable: a.durable, exclusive: a.exclusive, autoDelete: a.autoDelete, arguments: a.arguments, ...(a.exclusive ? { owner: this.conn.id } : {}) });
      name = info.name;
      if (a.exclusive) server.claimExclusive(this.vhost, name, this.conn.id);
    }
    this.lastQueue = name;
    if (!a.nowait) this.conn.send(this.id, 'queue.declare-ok', { queue: name, messageCount: info.ready, consumerCount: info.consumers });
  }

  private queueDelete(a: MethodArgs['queue.delete']): void {
    const queue = this.queueName(a.queue);
    this.permit('configure', 'queue', queue);
    this.checkExclusive(queue);
    let messageCount = 0;
    try {
      messageCount = this.engine().deleteQueue(queue, { ifUnused: a.ifUnused, ifEmpty: a.ifEmpty }).messageCount;
      this.conn.server.releaseExclusive(this.vhost, queue);
    } catch (err) {
      const e = fromBrokerError(err, this.vhost);
      // Deleting a queue that is not there succeeds, as in RabbitMQ.
      if (e.code !== 404) {
        if (e.code === 406 && a.ifUnused && /consumer/.test(e.detail)) throw preconditionFailed(`queue '${queue}' in vhost '${this.vhost}' in use`);
        if (e.code === 406 && a.ifEmpty) throw preconditionFailed(`queue '${queue}' in vhost '${this.vhost}' not empty`);
        throw err;
      }
    }
    if (!a.nowait) this.conn.send(this.id, 'queue.delete-ok', { messageCount });
  }

  // ---- publishing ---------------------------------------------------------------------------

  /**
   * Hands a publish to the engine; confirms (or returns) it once the engine has
   * stored it. Written with then() rather than await: this runs for every
   * message, and an async function costs more allocations per call.
   * Undefined when it was settled at once (direct reply-to, a refusal).
   */
  private publish(a: PublishArgs, props: MessageProperties, body: Buffer): Promise<void> | undefined {
    const conn = this.conn;
    const seq = this.confirm ? ++this.publishSeq : 0;
    try {
      this.permit('write', 'exchange', a.exchange);
      if (props.replyTo === REPLY_TO) {
        if (!this.replyToken) throw preconditionFailed('fast reply consumer does not exist');
        props = { ...props, replyTo: REPLY_TO_PREFIX + this.replyToken };
      }
      if (a.exchange === '' && a.routingKey.startsWith(REPLY_TO_PREFIX)) {
        const target = conn.server.replyChannel(a.routingKey.slice(REPLY_TO_PREFIX.length));
        if (target) target.deliverReply(a.routingKey, props, body);
        else if (a.mandatory) this.sendReturn(a, props, body);
        if (seq) this.confirmed(seq, true);
        return undefined;
      }
    } catch (err) {
      this.closeWith(fromBrokerError(err, this.vhost).at(60, 40));
      return undefined;
    }
    conn.publishStarted();
    let stored: Promise<PublishResult>;
    try {
      stored = this.engine().publish({ exchange: a.exchange, routingKey: a.routingKey, body, properties: props, mandatory: a.mandatory });
    } catch (err) {
      // Refused at once (no such exchange, …): handled now, before the frames that follow.
      this.publishFailed(a, seq, err);
      return undefined;
    }
    return stored.then(
      (result) => {
        try {
          if (this.closing) return;
          if (result.returned) this.sendReturn(a, props, body);
          if (seq) this.confirmed(seq, !result.rejected?.length);
        } finally {
          conn.publishDone();
        }
      },
      (err: unknown) => this.publishFailed(a, seq, err),
    );
  }

  /** A publish the engine refused; `seq` its confirm number (0: none). Ends the publish for the connection's flow control. */
  private publishFailed(a: PublishArgs, seq: number, err: unknown): void {
    try {
      if (this.closing) return;
      const e = fromBrokerError(err, this.vhost);
      if (e.code === 406 && /is internal/.test(e.detail)) this.closeWith(accessRefused(`cannot publish to internal exchange '${a.exchange}' in vhost '${this.vhost}'`).at(60, 40));
      // The store refused it (the disk alarm, a failed write): nacked when confirms were asked for, else
      // dropped, as nothing was promised; the channel stays open.
      else if (e.code === 541) {
        if (seq) this.confirmed(seq, false);
      } else this.closeWith(e.at(60, 40));
    } finally {
      this.conn.publishDone();
    }
  }

  /**
   * Records a publish's confirm. Confirms go out in publish order, consecutive
   * acks as one basic.ack with multiple set (as RabbitMQ sends them), so a
   * client with many publishes in flight reads one frame per commit, not one
   * per message; a nack (reject-publish overflow, the store failing) goes alone.
   */
  private confirmed(seq: number, ok: boolean): void {
    this.confirms.set(seq, ok);
    if (this.confirmScheduled) return;
    this.confirmScheduled = true;
    setImmediate(() => this.sendConfirms());
  }

  private sendConfirms(): void {
    this.confirmScheduled = false;
    if (this.closing) return;
    let run = 0;
    const flushRun = () => {
      if (run === 0) return;
      this.conn.send(this.id, 'basic.ack', { deliveryTag: this.confirmFloor - 1, multiple: run > 1 });
      run = 0;
    };
    for (let ok = this.confirms.get(this.confirmFloor); ok !== undefined; ok = this.confirms.get(this.confirmFloor)) {
      this.confirms.delete(this.confirmFloor);
      if (ok) run++;
      else {
        flushRun();
        this.conn.send(this.id, 'basic.nack', { deliveryTag: this.confirmFloor, multiple: false, requeue: false });
      }
      this.confirmFloor++;
    }
    flushRun();
    this.conn.flush();
  }

  private sendReturn(a: PublishArgs, props: MessageProperties, body: Buffer): void {
    this.conn.send(this.id, 'basic.return', { replyCode: 312, replyText: 'NO_ROUTE', exchange: a.exchange, routingKey: a.routingKey });
    this.conn.writer.content(this.id, toWire(props), body, this.conn.frameMax);
  }

  /** Runs a transaction's publishes and settlements in order; commit-ok once its publishes are stored. */
  private async commit(ops: TxOp[]): Promise<void> {
    const publishes: Array<Promise<void> | undefined> = [];
    for (const op of ops) {
      if (op.kind === 'publish') publishes.push(this.publish(op.args, op.props, op.body));
      else this.doSettle(op.method, op.tag, op.multiple, op.requeue);
      if (this.closing) return;
    }
    await Promise.all(publishes);
    if (!this.closing) this.conn.send(this.id, 'tx.commit-ok', {});
  }

  // ---- consuming ----------------------------------------------------------------------------

  private consume(a: MethodArgs['basic.consume']): void {
    const tag = a.consumerTag || `amq.ctag-${randomBytes(16).toString('base64url')}`;
    if (this.consumers.has(tag)) throw notAllowed(`attempt to reuse consumer tag '${tag}'`);
    if (a.queue === REPLY_TO) {
      if (!a.noAck) throw preconditionFailed('reply consumer cannot acknowledge');
      if (this.replyToken) throw preconditionFailed('reply consumer already set');
      this.replyToken = this.conn.server.registerReply(this);
      this.consumers.set(tag, { queue: REPLY_TO, noAck: true, timeoutMs: 0, engineTag: null });
      if (!a.nowait) this.conn.send(this.id, 'basic.consume-ok', { consumerTag: tag });
      return;
    }
    const queue = this.queueName(a.queue);
    this.permit('read', 'queue', queue);
    this.checkExclusive(queue);
    const engine = this.engine();
    const qinfo = engine.getQueue(queue);
    const timeoutMs = consumerTimeout(a.arguments['x-consumer-timeout'] ?? qinfo.arguments['x-consumer-timeout'], this.conn.server.consumerTimeoutMs);
    const rec: ConsumerRec = { queue, noAck: a.noAck, timeoutMs, engineTag: `${this.owner}/${tag}` };
    this.consumers.set(tag, rec);
    try {
      engine.consume(queue, { prefetch: this.prefetch, shared: this.shared, noAck: a.noAck, exclusive: a.exclusive, consumerTag: rec.engineTag!, owner: this.owner, connection: this.conn.id, onCancel: () => this.cancelledByBroker(tag) }, (d) => this.deliver(tag, rec, d));
    } catch (err) {
      this.consumers.delete(tag);
      const e = fromBrokerError(err, this.vhost);
      if (e.code === 405 && /exclusive consumer|must be the only one/.test(e.detail)) throw accessRefused(`queue '${queue}' in vhost '${this.vhost}' in exclusive use`);
      throw e;
    }
    // The engine delivers on a later turn of the event loop, so consume-ok is written before the first delivery.
    if (!a.nowait) this.conn.send(this.id, 'basic.consume-ok', { consumerTag: tag });
  }

  private deliver(tag: string, rec: ConsumerRec, d: Delivery): void {
    if (this.closing) return;
    const deliveryTag = this.nextTag++;
    if (!rec.noAck) this.track(deliveryTag, d.deliveryTag, rec.timeoutMs);
    const conn = this.conn;
    this.counts.delivered++;
    conn.writer.method(this.id, 'basic.deliver', { consumerTag: tag, deliveryTag, redelivered: d.redelivered, exchange: d.exchange, routingKey: d.routingKey });
    conn.writer.content(this.id, toWire(d.properties), d.body, conn.frameMax);
    conn.scheduleFlush();
  }

  /** A reply sent to this channel's direct reply-to pseudo-queue: delivered at once, without acknowledgement. */
  deliverReply(routingKey: string, props: MessageProperties, body: Buffer): void {
    if (this.closing) return;
    const tag = [...this.consumers.entries()].find(([, c]) => c.queue === REPLY_TO)?.[0];
    if (!tag) return;
    const conn = this.conn;
    this.counts.delivered++;
    conn.writer.method(this.id, 'basic.deliver', { consumerTag: tag, deliveryTag: this.nextTag++, redelivered: false, exchange: '', routingKey });
    conn.writer.content(this.id, toWire(props), body, conn.frameMax);
    conn.scheduleFlush();
  }

  private track(tag: number, engineTag: number, timeoutMs: number): void {
    this.unacked.set(tag, { engineTag, deadline: timeoutMs > 0 ? Date.now() + timeoutMs : Infinity, timeoutMs });
    if (timeoutMs > 0 && !this.timeoutTimer) {
      const t = setInterval(() => this.checkTimeouts(), Math.min(1000, Math.max(20, timeoutMs / 4)));
      t.unref();
      this.timeoutTimer = t;
    }
  }

  /** RabbitMQ's consumer_timeout: a delivery unacknowledged for too long closes its channel with 406. */
  private checkTimeouts(): void {
    if (this.closing) return;
    const now = Date.now();
    for (const u of this.unacked.values()) {
      if (u.deadline <= now) {
        this.closeWith(preconditionFailed(`delivery acknowledgement on channel ${this.id} timed out. Timeout value used: ${u.timeoutMs} ms. This timeout value can be configured, see consumers doc guide to learn more`));
        this.conn.flush();
        return;
      }
    }
  }

  private cancelConsumer(tag: string): void {
    const rec = this.consumers.get(tag);
    if (!rec) return;
    this.consumers.delete(tag);
    if (rec.engineTag === null) {
      this.conn.server.unregisterReply(this.replyToken);
      this.replyToken = null;
      return;
    }
    try {
      this.engine().cancel(rec.engineTag);
    } catch (err) {
      if (fromBrokerError(err, this.vhost).code !== 404) throw err;
    }
  }

  /** The engine cancelled a consumer (its queue was deleted): tell clients that asked for it (consumer_cancel_notify). */
  private cancelledByBroker(tag: string): void {
    if (this.closing || !this.consumers.delete(tag)) return;
    if (this.conn.client.capabilities.consumer_cancel_notify === true) {
      this.conn.send(this.id, 'basic.cancel', { consumerTag: tag, nowait: true });
    }
  }

  private get(a: MethodArgs['basic.get']): void {
    const queue = this.queueName(a.queue);
    this.permit('read', 'queue', queue);
    this.checkExclusive(queue);
    const got = this.engine().basicGet(queue, { noAck: a.noAck, owner: this.owner, connection: this.conn.id });
    if (!got) {
      this.conn.send(this.id, 'basic.get-empty', {});
      return;
    }
    const d = got.delivery;
    const deliveryTag = this.nextTag++;
    if (!a.noAck) this.track(deliveryTag, d.deliveryTag, this.conn.server.consumerTimeoutMs);
    this.counts.delivered++;
    this.conn.send(this.id, 'basic.get-ok', { deliveryTag, redelivered: d.redelivered, exchange: d.exchange, routingKey: d.routingKey, messageCount: got.messageCount });
    this.conn.writer.content(this.id, toWire(d.properties), d.body, this.conn.frameMax);
  }

  private settle(method: 'ack' | 'nack' | 'reject', tag: number, multiple: boolean, requeue: boolean): void {
    if (this.tx) {
      this.checkTag(tag, multiple);
      this.tx.push({ kind: 'settle', method, tag, multiple, requeue });
      return;
    }
    this.doSettle(method, tag, multiple, requeue);
  }

  private checkTag(tag: number, multiple: boolean): void {
    if (!(multiple && tag === 0) && !this.unacked.has(tag)) throw preconditionFailed(`unknown delivery tag ${tag}`);
  }

  /** Settles one delivery or, with multiple, every one up to `tag` (0: all), in one engine call. */
  private doSettle(method: 'ack' | 'nack' | 'reject', tag: number, multiple: boolean, requeue: boolean): void {
    this.checkTag(tag, multiple);
    const engine = this.engine();
    let upTo: UnackedRec | undefined;
    let settled = 0;
    if (multiple) {
      for (const [t, u] of this.unacked) {
        if (tag !== 0 && t > tag) break;
        this.unacked.delete(t);
        upTo = u;
        settled++;
      }
    } else {
      upTo = this.unacked.get(tag);
      if (this.unacked.delete(tag)) settled = 1;
    }
    if (!upTo) return;
    if (method === 'ack') this.counts.acked += settled;
    try {
      if (method === 'ack') engine.ack(upTo.engineTag, multiple ? ACK_MULTIPLE : ACK_ONE);
      else engine.nack(upTo.engineTag, { multiple, requeue });
    } catch (err) {
      // The engine let go of it already (its queue was deleted): nothing is left to settle.
      if (fromBrokerError(err, this.vhost).code !== 406) throw err;
    }
  }

  // ---- closing ---------------------------------------------------------------------------------

  /** A channel exception: its resources go at once; it answers nothing but close-ok until the client confirms. */
  closeWith(e: AmqpError): void {
    if (this.closing) return;
    this.conn.server.logger.info('amqp channel closed by the broker', { remote: this.conn.info.remote, channel: this.id, reply: e.text });
    this.release();
    this.closing = true;
    this.conn.send(this.id, 'channel.close', { replyCode: e.code, replyText: e.text, classId: e.classId, methodId: e.methodId });
  }

  /** Cancels the channel's consumers and returns its unacknowledged messages, marked redelivered. */
  /** What the UI shows of this channel (read only). */
  /** Messages published, delivered and acknowledged on this channel, for the console's rates. */
  readonly counts = { published: 0, delivered: 0, acked: 0 };

  inspect(): Omit<AmqpChannelInfo, 'rates'> {
    return {
      ...this.counts,
      number: this.id,
      prefetch: this.prefetch,
      globalPrefetch: this.shared.limit,
      unacked: this.unacked.size,
      confirm: this.confirm,
      transactional: this.tx !== null,
      consumers: [...this.consumers.entries()].map(([tag, c]) => ({ tag, queue: c.queue, ack: !c.noAck })),
    };
  }

  release(): void {
    this.closing = true;
    this.pending = null;
    if (this.timeoutTimer) clearInterval(this.timeoutTimer);
    this.timeoutTimer = null;
    if (this.replyToken) this.conn.server.unregisterReply(this.replyToken);
    this.replyToken = null;
    this.consumers.clear();
    this.unacked.clear();
    try {
      const engine = this.engine();
      if (!engine.isClosed) engine.closeOwner(this.owner);
    } catch {
      // The engine stopped (a store failure, shutdown): its consumers went with it.
    }
  }
}

function consumerTimeout(v: unknown, fallback: number): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : fallback;
}
