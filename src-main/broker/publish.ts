/**
 * Publishing: checking a request, routing it (CC and BCC add routing keys),
 * and putting the message into each target queue with the queue's rules:
 * deduplication, overflow (x-max-length, x-max-length-bytes, x-overflow),
 * x-delay, TTL (a message that expires on arrival is dead-lettered at once)
 * and priority. A message for a consumer with room is handed over from
 * memory and stored at the commit, unless it is acknowledged first.
 */
import { compileMessage } from '../ground/placeholders.js';
import { checkName, type EngineContext, type ExchangeState, findExchange, type Outcome, type QueueState } from './context.js';
import { type Envelope, makeEnvelope, normalizeProps } from './envelope.js';
import { BrokerError, invalid, shown } from './errors.js';
import { routeKeys } from './exchanges/routing.js';
import { checkCallSize, checkMessageSize, mib } from './limits.js';
import { deadLetter, enforceMaxLength } from './queues/dead-letter.js';
import { admit } from './queues/dedup.js';
import { deliver, hasCredit, pickConsumer, scheduleDispatch } from './queues/dispatch.js';
import type { MsgRow } from './queues/sql.js';
import { isFull } from './queues/store.js';
import type { PublishManyRequest, PublishManyResult, PublishRequest, PublishResult } from './types.js';

/** No CC or BCC keys (the common case): one shared empty list, only ever read. */
const NO_KEYS: string[] = [];

function preparePublish(ctx: EngineContext, req: PublishRequest): { ex: ExchangeState; env: Envelope; delayMs: number; mandatory: boolean; ccKeys: string[] } {
  let ccKeys: string[] = NO_KEYS;
  if (!req || typeof req !== 'object') throw invalid('request', `expected { exchange, routingKey, body }, got ${shown(req)}`);
  const exName = req.exchange ?? '';
  checkName(exName, 'exchange', 'exchange');
  const ex = findExchange(ctx, exName, 'exchange');
  if (ex.internal) throw new BrokerError('PRECONDITION_FAILED', `exchange ${JSON.stringify(exName)} is internal: it only receives from other exchanges`, 'exchange');
  const rk = req.routingKey ?? '';
  if (typeof rk !== 'string' || Buffer.byteLength(rk) > 255) throw invalid('routingKey', `expected a string of at most 255 bytes, got ${shown(rk)}`);
  let body: Buffer;
  const rawBody: unknown = req.body;
  if (Buffer.isBuffer(rawBody)) body = rawBody;
  else if (rawBody instanceof Uint8Array) body = Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength);
  else throw invalid('body', `expected bytes (a Buffer), got ${shown(req.body)}`);
  checkMessageSize(body.length, ctx.maxBodyBytes);
  const props = normalizeProps(req.properties);
  if (props.headers && ('BCC' in props.headers || 'CC' in props.headers)) {
    // Sender-selected distribution: CC and BCC add routing keys; BCC is
    // removed from the message (RabbitMQ).
    const extra: string[] = [];
    for (const h of ['CC', 'BCC']) {
      const v = props.headers[h];
      if (v === undefined) continue;
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalid(`properties.headers.${h}`, `expected a list of routing keys (strings), got ${shown(v)}`);
      extra.push(...(v as string[]));
    }
    if ('BCC' in props.headers) {
      const { BCC: _bcc, ...rest } = props.headers;
      props.headers = rest;
    }
    ccKeys = extra;
  }
  const d = props.headers?.['x-delay'];
  const delayMs = typeof d === 'number' && Number.isFinite(d) && d > 0 ? Math.floor(d) : typeof d === 'bigint' && d > 0n ? Number(d) : 0;
  return { ex, env: makeEnvelope(exName, rk, body, props), delayMs, mandatory: req.mandatory === true, ccKeys };
}

/**
 * Publishes one message. Resolves after the group commit that stored it
 * (a publisher confirm); `returned` is true when mandatory and unroutable.
 */
export function publish(ctx: EngineContext, req: PublishRequest): Promise<PublishResult> {
  try {
    const { ex, env, delayMs, mandatory, ccKeys } = preparePublish(ctx, req);
    const targets = routeKeys(ctx, ex, env.rk, ccKeys, env.props.headers);
    // One plain queue means one INSERT: atomic without a savepoint.
    const result = isSimple(ctx, targets, delayMs)
      ? ctx.gc.write(() => publishTo(ctx, targets, env, delayMs, mandatory))
      : ctx.gc.run(() => publishTo(ctx, targets, env, delayMs, mandatory));
    if (result.returned) emitReturned(ctx, env);
    return ctx.gc.whenCommitted().then(() => result);
  } catch (err) {
    return Promise.reject(err);
  }
}

function isSimple(ctx: EngineContext, targets: Set<QueueState>, delayMs: number): boolean {
  if (targets.size > 1 || delayMs > 0) return false;
  for (const q of targets) {
    const a = q.args;
    if (a.dedup || a.maxLength !== undefined || a.maxLengthBytes !== undefined || a.messageTtl === 0) return false;
  }
  return true;
}

function publishTo(ctx: EngineContext, targets: Set<QueueState>, env: Envelope, delayMs: number, mandatory: boolean): PublishResult {
  const res: PublishResult = { routedQueues: [], returned: false };
  for (const q of targets) {
    const o = enqueue(ctx, q, env, delayMs);
    if (o === 'ok') res.routedQueues.push(q.name);
    else if (o === 'rejected') (res.rejected ??= []).push(q.name);
    else (res.deduplicated ??= []).push(q.name);
  }
  if (targets.size === 0 && mandatory) res.returned = true;
  return res;
}

function emitReturned(ctx: EngineContext, env: Envelope): void {
  if (ctx.events.listenerCount('returned') === 0) return;
  ctx.events.emit('returned', { exchange: env.exchange, routingKey: env.rk, body: env.body, properties: env.props, replyCode: 312, replyText: 'NO_ROUTE' });
}

/**
 * Publishes `count` copies, expanding {{i}}, {{uuid}} and {{now}} per copy
 * as ground/placeholders defines (body, headers, ids). Resolves after the
 * commit holding the last copy.
 */
export async function publishMany(ctx: EngineContext, req: PublishManyRequest): Promise<PublishManyResult> {
  const count = req?.count;
  if (!Number.isInteger(count) || count < 1 || count > 10_000_000) throw invalid('count', `expected an integer from 1 to 10000000, got ${shown(count)}`);
  const prepared = preparePublish(ctx, req);
  const { ex, mandatory, delayMs, ccKeys } = prepared;
  const base = prepared.env;
  // The shared template (ground/placeholders): what holds no placeholder is reused for every copy.
  let template: ReturnType<typeof compileMessage<typeof base.props>>;
  try {
    template = compileMessage(base.body, base.props);
  } catch (err) {
    // A number-typed header that cannot become a number: the engine's own error type, same field.
    const e = err as { message: string; field?: string };
    throw new BrokerError('INVALID_ARGUMENT', e.message, e.field);
  }
  const perCopy = template.maxBodyBytes;
  if (perCopy > ctx.maxBodyBytes) {
    throw new BrokerError('TOO_LARGE', `body would exceed the limit of ${ctx.maxBodyBytes} bytes (${mib(ctx.maxBodyBytes)}) once placeholders are expanded`, 'body');
  }
  checkCallSize(count, perCopy, ctx.maxCallBytes);
  const out: PublishManyResult = { published: 0, routed: {}, returned: 0, rejected: 0, deduplicated: 0, confirmed: true };
  // Queue names are the user's: counted in a Map, so "constructor" or "__proto__" is just a name.
  const routed = new Map<string, number>();
  for (let i = 1; i <= count; i++) {
    if (ctx.closed) throw new BrokerError('PRECONDITION_FAILED', `the broker engine closed after ${out.published} of ${count} copies`);
    let env = base;
    if (template.varies) {
      const c = template.copy(i, ctx.now());
      env = makeEnvelope(base.exchange, base.rk, c.body, c.properties);
    }
    const targets = routeKeys(ctx, ex, env.rk, ccKeys, env.props.headers);
    const r = isSimple(ctx, targets, delayMs)
      ? ctx.gc.write(() => publishTo(ctx, targets, env, delayMs, mandatory))
      : ctx.gc.run(() => publishTo(ctx, targets, env, delayMs, mandatory));
    out.published++;
    for (const q of r.routedQueues) routed.set(q, (routed.get(q) ?? 0) + 1);
    if (r.returned) {
      out.returned++;
      emitReturned(ctx, env);
    }
    out.rejected += r.rejected?.length ?? 0;
    out.deduplicated += r.deduplicated?.length ?? 0;
    // Let timers, consumers and commits run during large batches.
    if (i % 5000 === 0) await new Promise<void>((r2) => setImmediate(r2));
  }
  out.routed = Object.fromEntries(routed);
  await ctx.gc.whenCommitted();
  return out;
}

/** Puts a message into a queue, applying dedup, overflow, delay and TTL (inside a transaction). */
export function enqueue(ctx: EngineContext, q: QueueState, env: Envelope, delayMs = 0, checkDedup = true): Outcome {
  const now = ctx.now();
  let dedup: string | null = null;
  if (q.args.dedup && checkDedup) {
    const admitted = admit(ctx, q, env, now);
    if (admitted === false) return 'dedup';
    dedup = admitted;
  }
  if (q.args.overflow !== 'drop-head' && isFull(ctx, q, env.size)) {
    if (q.args.overflow === 'reject-publish-dlx') deadLetter(ctx, q, env, 'maxlen');
    return 'rejected';
  }
  if (delayMs > 0) {
    ctx.st.insertDelayed.run(q.qid, now + delayMs, now, env.exchange, env.rk, env.propsJson, env.body, env.size, env.bin, env.redelivered ? 1 : 0, env.returns, env.persistent ? 1 : 0, dedup);
    q.delayed++;
    q.delayedBytes += env.size;
    ctx.delayedTotal++;
    q.totals.publish++;
    return 'ok';
  }
  insertMessage(ctx, q, env, now, dedup);
  if (q.args.overflow === 'drop-head') enforceMaxLength(ctx, q);
  return 'ok';
}

function insertMessage(ctx: EngineContext, q: QueueState, env: Envelope, now: number, dedup: string | null): void {
  let exp: number | null = q.args.messageTtl !== undefined ? now + q.args.messageTtl : null;
  if (env.expiration !== null) exp = exp === null ? now + env.expiration : Math.min(exp, now + env.expiration);
  if (exp !== null && exp <= now && !hasCredit(ctx, q)) {
    // TTL 0 and nobody ready to take it: it expires on arrival (RabbitMQ).
    q.totals.publish++;
    deadLetter(ctx, q, env, 'expired');
    return;
  }
  const seq = q.nextSeq++;
  const prio = q.prio ? Math.min(env.priority, q.levels.length - 1) : null;
  const params = [q.base + seq, prio, now, exp, env.exchange, env.rk, env.propsJson, env.body, env.size, env.bin, env.redelivered ? 1 : 0, env.returns, env.persistent ? 1 : 0, dedup];
  q.count++;
  q.bytes += env.size;
  const L = q.levels[prio ?? 0]!;
  const c = !q.prio && L.ready === 0 && L.cursor === seq - 1 && q.consumers.length > 0 ? pickConsumer(ctx, q) : null;
  if (!c) {
    if (!q.prio && q.consumers.length > 0) {
      // A consumer will most likely take it within the batch: keep it in
      // memory (takeReady serves it from there) and store it at the commit
      // unless it is acknowledged first. Copied, as below.
      params[7] = Buffer.from(env.body);
      ctx.pendingInserts.set(q.base + seq, params);
    } else ctx.st.insertMsg.run(...params);
    L.ready++;
    q.totals.publish++;
    if (exp !== null) q.expiring = true;
    ctx.dirty.add(q);
    if (q.consumers.length > 0) scheduleDispatch(ctx, q);
    return;
  }
  // Nothing queued ahead and a consumer has room: hand it over from memory
  // instead of reading it back. It is stored at the commit unless
  // acknowledged before it. The body is copied: the publisher's buffer is
  // not ours to keep.
  const body = Buffer.from(env.body);
  params[7] = body;
  ctx.pendingInserts.set(q.base + seq, params);
  L.cursor = seq;
  q.totals.publish++;
  if (exp !== null) q.expiring = true;
  ctx.dirty.add(q);
  const row: MsgRow = {
    id: q.base + seq,
    prio,
    enq: now,
    exp,
    exchange: env.exchange,
    rk: env.rk,
    props: env.propsJson,
    body,
    size: env.size,
    bin: env.bin,
    redelivered: env.redelivered ? 1 : 0,
    returns: env.returns,
    persistent: env.persistent ? 1 : 0,
    dedup,
  };
  ctx.direct.push([c, deliver(ctx, q, c, row)]);
  scheduleDispatch(ctx, q);
}
