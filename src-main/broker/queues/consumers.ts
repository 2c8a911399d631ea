/**
 * Consumers and settlement: subscribing, cancelling (unacked messages go
 * back to their places, marked redelivered), closing an owner (a
 * connection), ack, nack and reject (requeue, retry or dead-letter), and the
 * management UI's get with its ack modes.
 */
import { randomBytes } from 'node:crypto';
import { checkInt, type Consumer, type EngineContext, findQueue, isExpired, type Unacked } from '../context.js';
import type { Envelope } from '../envelope.js';
import { BrokerError, invalid, shown } from '../errors.js';
import { browsed } from './browse.js';
import { deadLetter, rejectNoRequeue, requeueMessage } from './dead-letter.js';
import { forget, joinShared, leaveShared, scheduleDispatch, wakeShared } from './dispatch.js';
import { dropQueue } from './queues.js';
import type { MsgRow } from './sql.js';
import { applyPending, dropRow, readMessage, returnToReady, storedEnvelope, takeReady } from './store.js';
import type { BrowsedMessage, ConsumeOptions, ConsumerSummary, Delivery, GetOptions, SharedPrefetch } from '../types.js';

/**
 * Starts delivering messages of `queue` to `onDelivery`. Competing
 * consumers get messages round-robin; `prefetch` caps each consumer's
 * unacked deliveries (0 = unlimited).
 */
export function consume(ctx: EngineContext, queue: string, options: ConsumeOptions, onDelivery: (d: Delivery) => void): string {
  const q = findQueue(ctx, queue);
  if (typeof onDelivery !== 'function') throw invalid('onDelivery', 'expected a function');
  const prefetch = options?.prefetch ?? 0;
  checkInt(prefetch, 'prefetch', 0, 65535);
  const owner = options?.owner ?? null;
  // An exclusive queue belongs to a connection; its consumers may be owned by that connection's channels.
  const holderId = options?.connection ?? owner;
  if (q.exclusive && q.owner !== null && holderId !== q.owner) {
    throw new BrokerError('RESOURCE_LOCKED', `queue ${JSON.stringify(queue)} is exclusive to another connection`, 'queue');
  }
  if (q.consumers.some((c) => c.exclusive)) throw new BrokerError('RESOURCE_LOCKED', `queue ${JSON.stringify(queue)} has an exclusive consumer`, 'queue');
  if (options?.exclusive && q.consumers.length > 0) {
    throw new BrokerError('RESOURCE_LOCKED', `queue ${JSON.stringify(queue)} already has ${q.consumers.length} consumer(s); an exclusive consumer must be the only one`, 'exclusive');
  }
  const tag = options?.consumerTag || `amq.ctag-${randomBytes(16).toString('base64url')}`;
  if (typeof tag !== 'string') throw invalid('consumerTag', `expected a string, got ${shown(tag)}`);
  if (ctx.consumers.has(tag)) throw new BrokerError('CONFLICT', `consumer tag ${JSON.stringify(tag)} is already in use`, 'consumerTag');
  const c: Consumer = {
    tag,
    queue: q,
    prefetch,
    noAck: options?.noAck ?? false,
    exclusive: options?.exclusive ?? false,
    owner,
    unacked: new Map(),
    onDelivery,
    onCancel: options?.onCancel ?? null,
    active: true,
    ...(options?.shared ? { shared: options.shared } : {}),
  };
  joinShared(c);
  ctx.consumers.set(tag, c);
  if (owner) {
    let set = ctx.byOwner.get(owner);
    if (!set) ctx.byOwner.set(owner, (set = new Set()));
    set.add(c);
  }
  q.consumers.push(c);
  q.hadConsumer = true;
  q.lastUsed = ctx.now();
  scheduleDispatch(ctx, q);
  return tag;
}

/** The consumers of one queue or of all, in the order they subscribed. */
export function listConsumers(ctx: EngineContext, queue?: string): ConsumerSummary[] {
  if (queue !== undefined) findQueue(ctx, queue);
  const out: ConsumerSummary[] = [];
  for (const c of ctx.consumers.values()) {
    if (queue !== undefined && c.queue.name !== queue) continue;
    out.push({ queue: c.queue.name, consumerTag: c.tag, prefetch: c.prefetch, noAck: c.noAck, exclusive: c.exclusive, active: c.active, unacked: c.unacked.size, owner: c.owner });
  }
  return out;
}

/** Stops a consumer; its unacked messages go back to their original places, marked redelivered. */
export function cancel(ctx: EngineContext, consumerTag: string): void {
  const c = ctx.consumers.get(consumerTag);
  if (!c) throw new BrokerError('NOT_FOUND', `no consumer with tag ${JSON.stringify(consumerTag)}`, 'consumerTag');
  ctx.gc.run(() => {
    applyPending(ctx);
    removeConsumer(ctx, c);
  });
}

/** Cancels every consumer of an owner (a closed connection/channel) and deletes its exclusive queues. */
export function closeOwner(ctx: EngineContext, owner: string): void {
  ctx.gc.run(() => {
    applyPending(ctx);
    for (const c of [...(ctx.byOwner.get(owner) ?? [])]) removeConsumer(ctx, c);
    for (const q of [...ctx.queues.values()]) if (q.exclusive && q.owner === owner) dropQueue(ctx, q, 'owner closed');
  });
  ctx.byOwner.delete(owner);
}

function removeConsumer(ctx: EngineContext, c: Consumer): void {
  const q = c.queue;
  c.active = false;
  ctx.consumers.delete(c.tag);
  if (c.owner) ctx.byOwner.get(c.owner)?.delete(c);
  const i = q.consumers.indexOf(c);
  if (i >= 0) q.consumers.splice(i, 1);
  if (q.rr >= q.consumers.length) q.rr = 0;
  for (const u of [...c.unacked.values()]) {
    forget(ctx, u);
    requeueMessage(ctx, q, u.id, u.seq, u.prio, u.returns);
  }
  leaveShared(c);
  q.lastUsed = ctx.now();
  if (q.autoDelete && q.consumers.length === 0 && q.hadConsumer && !q.deleted) dropQueue(ctx, q, 'auto-delete');
  else scheduleDispatch(ctx, q);
}

function settleList(ctx: EngineContext, deliveryTag: number, multiple: boolean | undefined): Unacked[] {
  const u = ctx.tags.get(deliveryTag);
  if (!u) throw new BrokerError('PRECONDITION_FAILED', `unknown delivery tag ${shown(deliveryTag)} (already settled, or its consumer is gone)`, 'deliveryTag');
  if (!multiple) return [u];
  const out: Unacked[] = [];
  const scope = u.consumer.owner ? [...(ctx.byOwner.get(u.consumer.owner) ?? [u.consumer])] : [u.consumer];
  for (const c of scope) {
    for (const [t, x] of c.unacked) {
      if (t > deliveryTag) break;
      out.push(x);
    }
  }
  return out;
}

/** Acknowledges a delivery (with multiple: every earlier one of the same consumer/owner too). */
export function ack(ctx: EngineContext, deliveryTag: number, options: { multiple?: boolean } = {}): void {
  const list = settleList(ctx, deliveryTag, options.multiple);
  ctx.gc.write(() => {
    for (const u of list) {
      forget(ctx, u);
      // A message taken by basic.get whose queue was deleted since went with the queue.
      if (u.queue.deleted) continue;
      dropRow(ctx, u.queue, u);
      u.queue.totals.ack++;
    }
  }, list.length);
}

/** Negative acknowledgement: requeue (default) to the original place, or dead-letter / retry. */
export function nack(ctx: EngineContext, deliveryTag: number, options: { requeue?: boolean; multiple?: boolean } = {}): void {
  const list = settleList(ctx, deliveryTag, options.multiple);
  const requeue = options.requeue ?? true;
  ctx.gc.run(() => {
    applyPending(ctx);
    // Read before settling anything: a message that cannot be read fails the call with nothing changed.
    const read = requeue ? [] : list.map((u) => readMessage(ctx, u.id)).map((row, i) => (row ? { row, env: storedEnvelope(ctx, list[i]!.queue, row) } : undefined));
    list.forEach((u, i) => {
      forget(ctx, u);
      if (u.queue.deleted) return;
      if (requeue) requeueMessage(ctx, u.queue, u.id, u.seq, u.prio, u.returns);
      else if (read[i]) rejectNoRequeue(ctx, u.queue, u.id, u.returns, read[i]);
    });
  }, list.length);
}


/**
 * Management-style get: takes up to `count` ready messages and acks them
 * ('ack'), puts them back in place marked redelivered ('requeue'), or
 * rejects them without requeue ('reject': retry delays, else dead-letter
 * with reason "rejected").
 */
export async function get(ctx: EngineContext, queue: string, options: GetOptions): Promise<BrowsedMessage[]> {
  const q = findQueue(ctx, queue);
  const count = options?.count ?? 1;
  checkInt(count, 'count', 1, 100_000);
  const mode = options?.ackMode;
  if (mode !== 'ack' && mode !== 'requeue' && mode !== 'reject') throw invalid('ackMode', `expected "ack", "requeue" or "reject", got ${shown(mode)}`);
  const out = ctx.gc.run(() => {
    applyPending(ctx);
    const now = ctx.now();
    // Everything is taken and read before anything is removed or dead-lettered:
    // a message that cannot be read puts every taken one back where it was and
    // the call fails, so nothing leaves the queue without reaching the caller.
    const taken: MsgRow[] = [];
    const read: Array<{ row: MsgRow; env: Envelope; msg: BrowsedMessage | null }> = [];
    try {
      for (let live = 0; live < count; ) {
        const rows = takeReady(ctx, q, count - live);
        if (rows.length === 0) break;
        for (const row of rows) taken.push(row);
        for (const row of rows) {
          const env = storedEnvelope(ctx, q, row);
          if (isExpired(row, now)) read.push({ row, env, msg: null });
          else {
            const msg = browsed(ctx, q, row, 'ready', null, env.props);
            delete msg.position;
            read.push({ row, env, msg });
            live++;
          }
        }
      }
    } catch (err) {
      for (const row of taken) returnToReady(ctx, q, row.id - q.base, row.prio);
      throw err;
    }
    const res: BrowsedMessage[] = [];
    const back: Array<[number, number, number | null, number]> = [];
    for (const { row, env, msg } of read) {
      if (!msg) {
        deadLetter(ctx, q, env, 'expired');
        dropRow(ctx, q, row);
        continue;
      }
      res.push(msg);
      q.totals.deliver++;
      if (msg.redelivered) q.totals.redeliver++;
      const seq = row.id - q.base;
      if (seq > q.deliveredUpto) {
        q.deliveredUpto = seq;
        ctx.dirty.add(q);
      }
      const returns = msg.deliveryCount - 1;
      if (mode === 'ack') {
        dropRow(ctx, q, row);
        q.totals.ack++;
      } else if (mode === 'reject') rejectNoRequeue(ctx, q, row.id, returns, { row, env });
      else back.push([row.id, seq, row.prio, returns]);
    }
    // Requeue after taking, so a requeued message is not taken twice.
    for (const [id, seq, prio, returns] of back) requeueMessage(ctx, q, id, seq, prio, returns);
    return res;
  }, count);
  q.lastUsed = ctx.now();
  await ctx.gc.whenCommitted();
  return out;
}

/** Changes a shared prefetch limit (basic.qos global=true on a channel that already consumes). */
export function setSharedPrefetch(ctx: EngineContext, shared: SharedPrefetch, limit: number): void {
  checkInt(limit, 'prefetch', 0, 65535);
  shared.limit = limit;
  wakeShared(ctx, shared);
}
