/**
 * Handing messages to consumers. A queue with consumers is scheduled for the
 * next turn of the event loop; each turn takes at most 8 batches of 512 per
 * queue so that one busy queue cannot starve the others. Credit is the
 * consumers' room under their prefetch (unlimited with noAck or prefetch 0);
 * competing consumers take turns (round-robin), and with
 * x-single-active-consumer only the first one receives.
 */
import { decodeProps, StoredDataError } from '../codec.js';
import { type Consumer, type EngineContext, isExpired, type QueueState, type Unacked, unlessStoreFailed } from '../context.js';
import { movableEnvelope, unreadableProps } from '../envelope.js';
import { deadLetter } from './dead-letter.js';
import type { MsgRow } from './sql.js';
import { dropRow, readyCount, returnToReady, takeReady } from './store.js';
import type { Delivery, MessageProperties, SharedPrefetch } from '../types.js';

const DISPATCH_BATCH = 512;

export function hasCredit(ctx: EngineContext, q: QueueState): boolean {
  if (q.args.singleActiveConsumer) {
    const c = q.consumers[0];
    return !!c && consumerHasCredit(ctx, c);
  }
  return q.consumers.some((c) => consumerHasCredit(ctx, c));
}

function consumerHasCredit(ctx: EngineContext, c: Consumer): boolean {
  return c.active && (c.noAck || ((c.prefetch === 0 || c.unacked.size < c.prefetch) && sharedRoom(c) > 0));
}

/** Room under a consumer's shared limit (basic.qos global=true): the channel's, shared by all its consumers. */
function sharedRoom(c: Consumer): number {
  const s = c.shared;
  return !s || s.limit === 0 ? Infinity : s.limit - s.unacked;
}

/** Consumers by the shared limit they count against, to wake them when it frees up. */
const sharing = new WeakMap<SharedPrefetch, Set<Consumer>>();

export function joinShared(c: Consumer): void {
  if (!c.shared) return;
  let set = sharing.get(c.shared);
  if (!set) sharing.set(c.shared, (set = new Set()));
  set.add(c);
}

export function leaveShared(c: Consumer): void {
  if (c.shared) sharing.get(c.shared)?.delete(c);
}

/** A shared limit changed (or freed up): its consumers' queues get a dispatch turn. */
export function wakeShared(ctx: EngineContext, s: SharedPrefetch): void {
  for (const c of sharing.get(s) ?? []) if (c.active) scheduleDispatch(ctx, c.queue);
}

function creditOf(ctx: EngineContext, q: QueueState): number {
  const list = q.args.singleActiveConsumer ? q.consumers.slice(0, 1) : q.consumers;
  let total = 0;
  for (const c of list) {
    if (!c.active) continue;
    if (c.noAck) return Infinity;
    // Counted once per consumer even when shared: an upper bound, as each delivery still asks pickConsumer.
    const room = Math.min(c.prefetch === 0 ? Infinity : c.prefetch - c.unacked.size, sharedRoom(c));
    if (room === Infinity) return Infinity;
    total += Math.max(0, room);
  }
  return total;
}

export function pickConsumer(ctx: EngineContext, q: QueueState): Consumer | null {
  if (q.args.singleActiveConsumer) {
    const c = q.consumers[0];
    return c && consumerHasCredit(ctx, c) ? c : null;
  }
  const n = q.consumers.length;
  for (let k = 0; k < n; k++) {
    const i = (q.rr + k) % n;
    const c = q.consumers[i]!;
    if (consumerHasCredit(ctx, c)) {
      q.rr = (i + 1) % n;
      return c;
    }
  }
  return null;
}

export function scheduleDispatch(ctx: EngineContext, q: QueueState): void {
  if (q.consumers.length === 0 || ctx.closed) return;
  ctx.toDispatch.add(q);
  if (!ctx.dispatchScheduled) {
    ctx.dispatchScheduled = true;
    setImmediate(() => unlessStoreFailed(ctx, () => runDispatch(ctx)));
  }
}

function runDispatch(ctx: EngineContext): void {
  ctx.dispatchScheduled = false;
  if (ctx.closed || ctx.failure) return;
  if (ctx.direct.length > 0) {
    const batch = ctx.direct;
    ctx.direct = [];
    invoke(ctx, batch);
  }
  const list = [...ctx.toDispatch];
  ctx.toDispatch.clear();
  for (const q of list) if (!q.deleted) dispatch(ctx, q);
}

function dispatch(ctx: EngineContext, q: QueueState): void {
  // Bounded per turn so one busy queue cannot starve the event loop.
  for (let round = 0; round < 8; round++) {
    const credit = creditOf(ctx, q);
    const ready = readyCount(ctx, q);
    if (credit <= 0 || ready <= 0) return;
    const n = Math.min(credit, ready, DISPATCH_BATCH);
    // Reads weigh nothing toward the batch size; only writes do.
    const batch = ctx.gc.write(() => collectDeliveries(ctx, q, n), 0);
    invoke(ctx, batch);
    if (ctx.closed || q.deleted) return;
  }
  scheduleDispatch(ctx, q);
}

function invoke(ctx: EngineContext, batch: Array<[Consumer, Delivery]>): void {
  for (const [c, d] of batch) {
    if (!c.active) continue;
    try {
      c.onDelivery(d);
    } catch {
      // A throwing handler must not stop delivery to others; its
      // message stays unacked until acked, nacked or cancelled.
    }
  }
}

function collectDeliveries(ctx: EngineContext, q: QueueState, n: number): Array<[Consumer, Delivery]> {
  const out: Array<[Consumer, Delivery]> = [];
  const now = ctx.now();
  const rows = takeReady(ctx, q, n);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (isExpired(row, now)) {
      deadLetter(ctx, q, movableEnvelope(row), 'expired');
      dropRow(ctx, q, row);
      continue;
    }
    const c = pickConsumer(ctx, q);
    if (!c) {
      for (let j = i; j < rows.length; j++) returnToReady(ctx, q, rows[j]!.id - q.base, rows[j]!.prio);
      break;
    }
    out.push([c, deliver(ctx, q, c, row)]);
  }
  return out;
}

export function deliver(ctx: EngineContext, q: QueueState, c: Consumer, row: MsgRow): Delivery {
  const seq = row.id - q.base;
  const recovered = row.redelivered === 0 && seq <= q.recoveredUpto;
  const returns = row.returns + (recovered ? 1 : 0);
  const redelivered = row.redelivered === 1 || recovered;
  if (seq > q.deliveredUpto) {
    q.deliveredUpto = seq;
    ctx.dirty.add(q);
  }
  const properties = deliveredProps(ctx, row);
  if (q.args.deliveryLimit !== undefined && returns > 0) properties.headers = { ...(properties.headers ?? {}), 'x-delivery-count': returns };
  q.totals.deliver++;
  if (redelivered) q.totals.redeliver++;
  const tag = ctx.nextTag++;
  if (c.noAck) dropRow(ctx, q, row);
  else {
    const u: Unacked = { tag, id: row.id, seq, prio: row.prio, size: row.size, returns, redelivered, queue: q, consumer: c };
    c.unacked.set(tag, u);
    if (c.shared) c.shared.unacked++;
    q.unacked.set(row.id, u);
    q.unackedBytes += row.size;
    ctx.tags.set(tag, u);
  }
  return {
    deliveryTag: tag,
    consumerTag: c.tag,
    queue: q.name,
    messageId: String(row.id),
    exchange: row.exchange,
    routingKey: row.rk,
    body: row.body,
    properties,
    redelivered,
    deliveryCount: returns + 1,
  };
}

/** A damaged row still reaches its consumer, with a header saying what is wrong, rather than stopping its queue. */
function deliveredProps(ctx: EngineContext, row: MsgRow): MessageProperties {
  try {
    return decodeProps(row.props, row.persistent === 1);
  } catch (err) {
    if (!(err instanceof StoredDataError)) throw err;
    return unreadableProps(row, err);
  }
}

export function forget(ctx: EngineContext, u: Unacked): void {
  const s = u.consumer.shared;
  if (s && u.consumer.unacked.has(u.tag)) {
    s.unacked--;
    // A channel at its shared limit holds back every one of its consumers: all of them may go on now.
    if (s.limit > 0 && s.unacked === s.limit - 1) wakeShared(ctx, s);
  }
  u.consumer.unacked.delete(u.tag);
  u.queue.unacked.delete(u.id);
  u.queue.unackedBytes -= u.size;
  ctx.tags.delete(u.tag);
  if (u.consumer.active) scheduleDispatch(ctx, u.queue);
}
