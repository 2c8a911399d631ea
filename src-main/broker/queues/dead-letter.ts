/**
 * Dead-lettering, as RabbitMQ does it: a message that expires (TTL), is
 * dropped by overflow (x-max-length …), goes past x-delivery-limit, or is
 * rejected without requeue goes to the queue's x-dead-letter-exchange with
 * x-dead-letter-routing-key (or its own routing keys), carrying x-death and
 * the x-first-death-* / x-last-death-* headers (see deathProps in
 * envelope.ts).
 *
 * Cycles: a message dead-lettered in a loop (q → dlx → q) would circulate
 * for ever. RabbitMQ's detect_cycles drops it when the target queue already
 * appears in its x-death and no death between now and that entry was a
 * rejection by a client: expiry or overflow alone cannot end such a loop,
 * while a client that rejects is taking part in it on purpose (a retry
 * loop). isCycle (envelope.ts) applies that rule per target; a rejection is
 * never cut.
 *
 * A rejected message may be retried instead (the x-retry-delays extension):
 * it comes back after each delay in turn, then is dead-lettered.
 */
import type { EngineContext, QueueState } from '../context.js';
import { deathProps, type DeathReason, type Envelope, isCycle, makeEnvelope, movableEnvelope } from '../envelope.js';
import { reachable, route, routeInto } from '../exchanges/routing.js';
import type { MsgRow } from './sql.js';
import { dropRow, readMessage, readyCount, returnToReady, storedEnvelope, takeReady } from './store.js';
import type { DeadLetterQueueInfo } from '../types.js';

/**
 * Dead-letters a message that died in `q` (the caller removes it from q),
 * with x-death as RabbitMQ keeps it (see deathProps). Cycles without a
 * rejection in them are dropped, as RabbitMQ's detect_cycles does.
 */
export function deadLetter(ctx: EngineContext, q: QueueState, m: Envelope, reason: DeathReason): void {
  const dlxName = q.args.dlx;
  if (dlxName === undefined) return;
  const dlx = ctx.exchanges.get(dlxName);
  if (!dlx) return;
  const { props, routingKeys, deaths } = deathProps(m, q.name, reason, ctx.now(), q.args.dlrk !== undefined);
  const headers = props.headers!;
  const keys = q.args.dlrk !== undefined ? [q.args.dlrk] : routingKeys;
  const targets = new Set<QueueState>();
  for (const k of keys) routeInto(ctx, dlx, k, headers, targets, new Set());
  if (targets.size === 0) return;
  const env = makeEnvelope(dlxName, keys[0]!, m.body, props, { bin: m.bin });
  env.persistent = m.persistent;
  for (const t of targets) {
    if (reason !== 'rejected' && isCycle(t.name, deaths)) continue;
    ctx.enqueue(t, env);
  }
}

/** Returns an unacked or taken message to the queue: redelivered, one more return; dead-letters past x-delivery-limit. */
export function requeueMessage(ctx: EngineContext, q: QueueState, id: number, seq: number, prio: number | null, returns: number): void {
  const n = returns + 1;
  if (q.args.deliveryLimit !== undefined && n > q.args.deliveryLimit) {
    const row = readMessage(ctx, id);
    if (row) {
      deadLetter(ctx, q, movableEnvelope(row), 'delivery_limit');
      dropRow(ctx, q, row);
    }
    return;
  }
  ctx.st.markReturned.run(n, id);
  returnToReady(ctx, q, seq, prio);
}

/** A message rejected without requeue: retry after the next x-retry-delays step, else dead-letter. */
export function rejectNoRequeue(ctx: EngineContext, q: QueueState, id: number, returns: number, read?: { row: MsgRow; env: Envelope }): void {
  const row = read?.row ?? readMessage(ctx, id);
  if (!row) return;
  const env = read?.env ?? storedEnvelope(ctx, q, row);
  const delays = q.args.retryDelays;
  if (delays) {
    const headers = env.props.headers ?? {};
    const done = Number(headers['x-retry-count'] ?? 0) || 0;
    if (done < delays.length) {
      const props = { ...env.props, headers: { ...headers, 'x-retry-count': done + 1 } };
      const retry = makeEnvelope(env.exchange, env.rk, env.body, props, { redelivered: true, returns: returns + 1, bin: env.bin });
      retry.persistent = env.persistent;
      dropRow(ctx, q, row);
      ctx.enqueue(q, retry, Math.max(1, delays[done]!), false);
      return;
    }
  }
  deadLetter(ctx, q, env, 'rejected');
  dropRow(ctx, q, row);
}

/** x-overflow drop-head: dead-letter from the head until within limits. */
export function enforceMaxLength(ctx: EngineContext, q: QueueState): void {
  const { maxLength, maxLengthBytes } = q.args;
  if (maxLength === undefined && maxLengthBytes === undefined) return;
  while ((maxLength !== undefined && readyCount(ctx, q) > maxLength) || (maxLengthBytes !== undefined && q.bytes - q.unackedBytes > maxLengthBytes)) {
    const [row] = takeReady(ctx, q, 1);
    if (!row) break;
    deadLetter(ctx, q, movableEnvelope(row), 'maxlen');
    dropRow(ctx, q, row);
  }
}

/** target queue → queues whose dead letters can reach it (cached per topology version). */
export function deadLetterSources(ctx: EngineContext): Map<string, string[]> {
  if (ctx.dlCache && ctx.dlCache.version === ctx.topologyVersion) return ctx.dlCache.map;
  const map = new Map<string, string[]>();
  for (const q of ctx.queues.values()) {
    const dlxName = q.args.dlx;
    if (dlxName === undefined) continue;
    const dlx = ctx.exchanges.get(dlxName);
    if (!dlx) continue;
    let targets: Set<QueueState>;
    if (q.args.dlrk !== undefined && dlx.type !== 'headers') targets = route(ctx, dlx, q.args.dlrk, undefined);
    else if (dlx.name === '') targets = new Set();
    else targets = reachable(ctx, dlx);
    for (const t of targets) map.set(t.name, [...(map.get(t.name) ?? []), q.name]);
  }
  for (const v of map.values()) v.sort();
  ctx.dlCache = { version: ctx.topologyVersion, map };
  return map;
}

export function listDeadLetterQueues(ctx: EngineContext): DeadLetterQueueInfo[] {
  const out: DeadLetterQueueInfo[] = [];
  for (const [name, sources] of deadLetterSources(ctx)) {
    const q = ctx.queues.get(name);
    if (q) out.push({ queue: name, count: q.count + q.delayed, sources });
  }
  return out.sort((a, b) => (a.queue < b.queue ? -1 : 1));
}
