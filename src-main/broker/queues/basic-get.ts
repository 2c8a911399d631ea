/**
 * AMQP's basic.get: one message taken from a queue outside any subscription.
 * Unlike the management-style get (consumers.ts), a message taken without
 * no-ack stays unacknowledged until the channel acks, nacks or rejects it, or
 * closes (then it goes back, marked redelivered), exactly like a delivery to
 * a consumer.
 *
 * So that ack, nack, multiple and closeOwner treat it like any delivery, it is
 * held by a hidden consumer per (owner, queue): registered under its owner
 * (closing the owner returns its messages) but never in the queue's consumer
 * list, so dispatch never picks it, it does not count as a consumer, and it
 * does not keep a single-active-consumer queue from its real consumer.
 */
import { type Consumer, type EngineContext, findQueue, isExpired } from '../context.js';
import { BrokerError } from '../errors.js';
import { movableEnvelope } from '../envelope.js';
import { deadLetter } from './dead-letter.js';
import { deliver } from './dispatch.js';
import { dropRow, readyCount, takeReady } from './store.js';
import type { Delivery } from '../types.js';

export interface BasicGetOptions {
  noAck?: boolean;
  /** The channel the message is held for until settled; closeOwner(owner) returns it. */
  owner: string;
  /** The connection, for exclusive queues (declared with this owner). */
  connection?: string;
}

const holders = new WeakMap<object, Map<string, Consumer>>();

function holder(ctx: EngineContext, q: Consumer['queue'], owner: string): Consumer {
  let byOwner = holders.get(q);
  if (!byOwner) holders.set(q, (byOwner = new Map()));
  let c = byOwner.get(owner);
  // A holder whose owner was closed is gone from byOwner: make a new one.
  if (c && ctx.byOwner.get(owner)?.has(c)) return c;
  c = {
    tag: `amq.get-${owner}-${q.qid}`,
    queue: q,
    prefetch: 0,
    noAck: false,
    exclusive: false,
    owner,
    unacked: new Map(),
    onDelivery: () => {},
    onCancel: null,
    active: false,
  };
  byOwner.set(owner, c);
  let set = ctx.byOwner.get(owner);
  if (!set) ctx.byOwner.set(owner, (set = new Set()));
  set.add(c);
  return c;
}

/** Takes the next ready message, or returns null when there is none; `messageCount` is what is left ready. */
export function basicGet(ctx: EngineContext, queue: string, options: BasicGetOptions): { delivery: Delivery; messageCount: number } | null {
  const q = findQueue(ctx, queue);
  const holderId = options.connection ?? options.owner;
  if (q.exclusive && q.owner !== null && holderId !== q.owner) {
    throw new BrokerError('RESOURCE_LOCKED', `queue ${JSON.stringify(queue)} is exclusive to another connection`, 'queue');
  }
  const c = holder(ctx, q, options.owner);
  q.lastUsed = ctx.now();
  return ctx.gc.write(() => {
    const now = ctx.now();
    for (;;) {
      const [row] = takeReady(ctx, q, 1);
      if (!row) return null;
      if (isExpired(row, now)) {
        deadLetter(ctx, q, movableEnvelope(row), 'expired');
        dropRow(ctx, q, row);
        continue;
      }
      // deliver() drops the row at once for no-ack, and records it unacked otherwise.
      c.noAck = options.noAck === true;
      const delivery = deliver(ctx, q, c, row);
      c.noAck = false;
      return { delivery, messageCount: readyCount(ctx, q) };
    }
  }, 1);
}
