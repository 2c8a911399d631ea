/**
 * Queues: declaring (with RabbitMQ's equivalence checks), deleting, purging
 * and describing them. Deleting a queue takes its messages, delayed
 * messages, dedup cache and bindings with it, cancels its consumers and
 * fails the re-drives reading from it.
 */
import { randomBytes } from 'node:crypto';
import { MAX_QID, SEQ_SPAN } from '../../storage/migrations.js';
import { checkTable, EQUIVALENCE_ARGS, inequivalent, parseQueueArgs, type QueueArgs } from '../args.js';
import { encodeJson, fieldEquals } from '../codec.js';
import { checkName, type Consumer, type EngineContext, findQueue, type QueueState, type Totals } from '../context.js';
import { BrokerError, invalid } from '../errors.js';
import { bindingsTo, removeBinding } from '../exchanges/exchanges.js';
import { deadLetterSources } from './dead-letter.js';
import { applyPending, readyCount } from './store.js';
import type { FieldTable, QueueInfo, QueueOptions } from '../types.js';

export function newQueue(ctx: EngineContext, qid: number, name: string, durable: boolean, autoDelete: boolean, exclusive: boolean, owner: string | null, args: FieldTable, parsed: QueueArgs): QueueState {
  const levels = parsed.maxPriority !== undefined ? parsed.maxPriority + 1 : 1;
  const zero = (): Totals => ({ publish: 0, deliver: 0, ack: 0, redeliver: 0 });
  return {
    qid,
    base: qid * SEQ_SPAN,
    name,
    durable,
    autoDelete,
    exclusive,
    owner,
    arguments: args,
    args: parsed,
    count: 0,
    bytes: 0,
    nextSeq: 1,
    deliveredUpto: 0,
    recoveredUpto: 0,
    levels: Array.from({ length: levels }, () => ({ cursor: 0, ready: 0, requeued: [] })),
    prio: parsed.maxPriority !== undefined,
    unacked: new Map(),
    unackedBytes: 0,
    delayed: 0,
    delayedBytes: 0,
    consumers: [],
    rr: 0,
    lastUsed: ctx.now(),
    hadConsumer: false,
    expiring: parsed.messageTtl !== undefined,
    totals: zero(),
    prevTotals: zero(),
    rates: { publish: 0, deliver: 0, ack: 0, redeliver: 0 },
    deleted: false,
  };
}

export function declareQueue(ctx: EngineContext, name: string, options: QueueOptions = {}): QueueInfo {
  checkName(name, 'name', 'queue');
  const args = checkTable(options.arguments, 'arguments');
  const parsed = parseQueueArgs(args);
  if (parsed.dlx !== undefined && parsed.dlx !== '' && parsed.dlx.startsWith('amq.') && !ctx.exchanges.has(parsed.dlx)) {
    // RabbitMQ accepts a missing DLX (messages are then dropped); only reserved names are refused.
    throw invalid('arguments.x-dead-letter-exchange', `${JSON.stringify(parsed.dlx)} is a reserved exchange name that does not exist`);
  }
  const durable = options.durable ?? true;
  const exclusive = options.exclusive ?? false;
  const autoDelete = options.autoDelete ?? false;
  const owner = options.owner ?? null;
  let qname = name;
  if (qname === '') qname = `amq.gen-${randomBytes(16).toString('base64url')}`;
  else if (qname.startsWith('amq.') && !ctx.queues.has(qname)) {
    throw new BrokerError('PRECONDITION_FAILED', 'queue names starting with "amq." are reserved; choose another name (or "" for a server-named queue)', 'name');
  }
  const existing = ctx.queues.get(qname);
  if (existing) {
    if (existing.exclusive && existing.owner !== null && existing.owner !== owner) {
      throw new BrokerError('RESOURCE_LOCKED', `queue ${JSON.stringify(qname)} is exclusive to another connection`, 'name');
    }
    if (existing.durable !== durable) throw inequivalent('queue', qname, 'durable', durable, existing.durable);
    if (existing.exclusive !== exclusive) throw inequivalent('queue', qname, 'exclusive', exclusive, existing.exclusive);
    if (existing.autoDelete !== autoDelete) throw inequivalent('queue', qname, 'autoDelete', autoDelete, existing.autoDelete);
    for (const k of EQUIVALENCE_ARGS) {
      if (!fieldEquals(args[k], existing.arguments[k])) throw inequivalent('queue', qname, `arguments.${k}`, args[k], existing.arguments[k]);
    }
    existing.lastUsed = ctx.now();
    return queueInfo(ctx, existing);
  }
  const qid = allocateQid(ctx);
  const q = newQueue(ctx, qid, qname, durable, autoDelete, exclusive, owner, args, parsed);
  ctx.gc.run(() => ctx.st.insertQueue.run(qid, qname, durable ? 1 : 0, autoDelete ? 1 : 0, exclusive ? 1 : 0, encodeJson(args), ctx.now()));
  ctx.queues.set(qname, q);
  ctx.byQid.set(qid, q);
  ctx.topologyVersion++;
  return queueInfo(ctx, q);
}

function allocateQid(ctx: EngineContext): number {
  if (ctx.nextQid <= MAX_QID) return ctx.nextQid++;
  for (let qid = 1; qid <= MAX_QID; qid++) if (!ctx.byQid.has(qid)) return qid;
  throw new BrokerError('PRECONDITION_FAILED', `too many queues (limit ${MAX_QID})`, 'name');
}

export function deleteQueue(ctx: EngineContext, name: string, options: { ifUnused?: boolean; ifEmpty?: boolean } = {}): { messageCount: number } {
  const q = findQueue(ctx, name, 'name');
  if (options.ifUnused && q.consumers.length > 0) {
    throw new BrokerError('PRECONDITION_FAILED', `queue ${JSON.stringify(name)} has ${q.consumers.length} consumer(s); cancel them or delete without ifUnused`, 'ifUnused');
  }
  if (options.ifEmpty && q.count + q.delayed > 0) {
    throw new BrokerError('PRECONDITION_FAILED', `queue ${JSON.stringify(name)} holds ${q.count + q.delayed} message(s); purge it or delete without ifEmpty`, 'ifEmpty');
  }
  const messageCount = q.count + q.delayed;
  ctx.gc.run(() => {
    dropQueue(ctx, q, 'deleted');
    ctx.audit.record('delete-queue', name, '', messageCount, 'queue', 'completed');
  });
  return { messageCount };
}

/** Removes a queue and everything in it (inside a transaction). */
export function dropQueue(ctx: EngineContext, q: QueueState, reason: string): void {
  // Pending deletes must not outlive the queue: its qid (and ids) may be reused.
  applyPending(ctx);
  ctx.st.deleteRange.run(q.base, q.base + SEQ_SPAN);
  ctx.st.deleteDelayedQueue.run(q.qid);
  ctx.st.dedupDeleteQueue.run(q.qid);
  ctx.st.deleteQueue.run(q.qid);
  for (const b of bindingsTo(ctx, 'queue', q.name)) removeBinding(ctx, b, true);
  q.deleted = true;
  const cancelled: Consumer[] = [];
  for (const c of q.consumers) {
    c.active = false;
    for (const u of c.unacked.values()) ctx.tags.delete(u.tag);
    // Deliveries that go with the queue no longer count against a shared limit.
    if (c.shared) c.shared.unacked -= c.unacked.size;
    c.unacked.clear();
    ctx.consumers.delete(c.tag);
    if (c.owner) ctx.byOwner.get(c.owner)?.delete(c);
    if (c.onCancel) cancelled.push(c);
  }
  q.consumers = [];
  ctx.queues.delete(q.name);
  ctx.byQid.delete(q.qid);
  ctx.delayedTotal -= q.delayed;
  ctx.dirty.delete(q);
  ctx.metrics.forget('queue', q.name);
  ctx.redrives.failForSource(q.name, `source queue ${JSON.stringify(q.name)} was deleted`);
  ctx.topologyVersion++;
  if (cancelled.length) queueMicrotask(() => cancelled.forEach((c) => c.onCancel?.(reason)));
}

export function purgeQueue(ctx: EngineContext, name: string): { messageCount: number } {
  const q = findQueue(ctx, name, 'name');
  const messageCount = readyCount(ctx, q) + q.delayed;
  ctx.gc.run(() => {
    applyPending(ctx);
    if (q.unacked.size === 0) ctx.st.deleteRange.run(q.base, q.base + SEQ_SPAN);
    else {
      // Keep unacked rows: delete the ranges between them.
      let lo = q.base;
      for (const id of [...q.unacked.keys()].sort((a, b) => a - b)) {
        ctx.st.deleteRange.run(lo, id);
        lo = id;
      }
      ctx.st.deleteRange.run(lo, q.base + SEQ_SPAN);
    }
    ctx.st.deleteDelayedQueue.run(q.qid);
    ctx.audit.record('purge', name, '', messageCount, 'queue', 'completed');
  });
  q.count = q.unacked.size;
  q.bytes = q.unackedBytes;
  for (const L of q.levels) {
    L.ready = 0;
    L.requeued = [];
    L.cursor = q.nextSeq - 1;
  }
  ctx.delayedTotal -= q.delayed;
  q.delayed = 0;
  q.delayedBytes = 0;
  ctx.dirty.add(q);
  return { messageCount };
}

export function listQueues(ctx: EngineContext): QueueInfo[] {
  return [...ctx.queues.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((q) => queueInfo(ctx, q));
}

export function getQueue(ctx: EngineContext, name: string): QueueInfo {
  return queueInfo(ctx, findQueue(ctx, name, 'name'));
}

function queueInfo(ctx: EngineContext, q: QueueState): QueueInfo {
  return {
    name: q.name,
    // Accepted for compatibility; both behave as this engine's queues.
    type: q.arguments['x-queue-type'] === 'quorum' ? 'quorum' : 'classic',
    durable: q.durable,
    autoDelete: q.autoDelete,
    exclusive: q.exclusive,
    arguments: { ...q.arguments },
    messages: q.count,
    ready: readyCount(ctx, q),
    unacked: q.unacked.size,
    delayed: q.delayed,
    bytes: q.bytes,
    consumers: q.consumers.length,
    deadLetterFor: deadLetterSources(ctx).get(q.name) ?? [],
    rates: { ...q.rates },
  };
}
