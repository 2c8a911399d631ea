/**
 * The moves of a re-drive: checking a request, and moving each selected dead
 * letter back to the queue it died in (its latest x-death entry) or through
 * a chosen exchange and routing key, with x-redriven-count incremented. A
 * move deletes from the source and inserts into the target(s) in one
 * transaction; the job around it (pacing, progress, resume, audit) is
 * redrive.ts's.
 */
import { SEQ_SPAN } from '../storage/migrations.js';
import { checkTable } from './args.js';
import { decodeProps, StoredDataError } from './codec.js';
import { type EngineContext, findExchange, findQueue, type MovePlan, type QueueState } from './context.js';
import { type Envelope, isRecord, isText, makeEnvelope } from './envelope.js';
import { BrokerError, invalid, shown } from './errors.js';
import { route } from './exchanges/routing.js';
import { checkMessageSize } from './limits.js';
import { enqueue } from './publish.js';
import { compiled, countMatches, filterSql, subject } from './queues/browse.js';
import { MSG_COLS, type MsgRow, toRows } from './queues/sql.js';
import { applyPending, isFull, readMessage, removeReady } from './queues/store.js';
import { noteFailure, type RedriveJobState, type RedriveSelection } from './redrive.js';
import type { FieldTable, MessageProperties, RedriveRequest } from './types.js';

/**
 * Starts moving dead letters out of `source`: to the queue each came from
 * (its latest x-death entry) or to `target`. Returns at once; follow with
 * getRedrive() or the 'redrive' event.
 */
export function startRedrive(ctx: EngineContext, req: RedriveRequest): { id: string } {
  if (!req || typeof req !== 'object') throw invalid('request', `expected { source, messageIds | all | filter }, got ${shown(req)}`);
  const q = findQueue(ctx, req.source, 'source');
  let selection: RedriveSelection;
  if (req.messageIds !== undefined) {
    if (!Array.isArray(req.messageIds) || req.messageIds.length === 0 || req.messageIds.some((x) => typeof x !== 'string')) {
      throw invalid('messageIds', `expected a non-empty list of message ids (strings), got ${shown(req.messageIds)}`);
    }
    selection = { kind: 'ids', ids: [...req.messageIds] };
  } else if (req.filter !== undefined) {
    if (!compiled(ctx, req.filter)) selection = { kind: 'all' };
    else selection = { kind: 'filter', filter: req.filter };
  } else if (req.all === true) selection = { kind: 'all' };
  else throw invalid('messageIds', 'give messageIds (one or more), all: true, or a filter');
  let edit: RedriveJobState['edit'] = null;
  if (req.edit !== undefined && req.edit !== null) {
    if (selection.kind !== 'ids' || selection.ids.length !== 1) throw invalid('edit', 'edit applies to exactly one message: give one messageId');
    edit = {};
    if (req.edit.body !== undefined) {
      if (typeof req.edit.body !== 'string' && !Buffer.isBuffer(req.edit.body)) throw invalid('edit.body', `expected a string or bytes, got ${shown(req.edit.body)}`);
      edit.body = typeof req.edit.body === 'string' ? Buffer.from(req.edit.body, 'utf8') : req.edit.body;
      checkMessageSize(edit.body.length, ctx.maxBodyBytes, 'edit.body');
    }
    if (req.edit.headers !== undefined) edit.headers = checkTable(req.edit.headers, 'edit.headers');
  }
  let target: RedriveJobState['target'] = null;
  if (req.target !== undefined && req.target !== null) {
    const ex = findExchange(ctx, req.target.exchange, 'target.exchange');
    if (ex.internal) throw new BrokerError('PRECONDITION_FAILED', `exchange ${JSON.stringify(ex.name)} is internal`, 'target.exchange');
    if (typeof req.target.routingKey !== 'string') throw invalid('target.routingKey', `expected a string, got ${shown(req.target.routingKey)}`);
    // Through the default exchange the routing key names the queue: one that does not exist would take nothing.
    if (ex.name === '' && !ctx.queues.has(req.target.routingKey)) {
      throw new BrokerError('NOT_FOUND', `re-drive target: queue ${JSON.stringify(req.target.routingKey)} does not exist`, 'target.routingKey');
    }
    target = { exchange: ex.name, routingKey: req.target.routingKey };
  }
  let rate: number | null = null;
  if (req.ratePerSecond !== undefined && req.ratePerSecond !== null) {
    if (typeof req.ratePerSecond !== 'number' || !(req.ratePerSecond > 0) || req.ratePerSecond > 1_000_000) {
      throw invalid('ratePerSecond', `expected a number above 0 and at most 1000000, got ${shown(req.ratePerSecond)}`);
    }
    rate = req.ratePerSecond;
  }
  const upper = q.nextSeq - 1;
  let total: number;
  if (selection.kind === 'ids') total = selection.ids.length;
  else if (selection.kind === 'all') total = q.count;
  else total = countMatches(ctx, q, compiled(ctx, selection.filter)!, upper);
  // Make every message published before the job durable before it starts.
  ctx.gc.flush();
  const job = ctx.redrives.create({ connectionId: req.connectionId ?? 'local', source: q.name, target, selection, edit, rate, total, upper });
  return { id: job.id };
}

/** One batch of a re-drive job (inside the job's transaction). */
export function redriveStep(ctx: EngineContext, job: RedriveJobState, max: number): boolean {
  const q = ctx.queues.get(job.source);
  if (!q) throw new Error(`source queue ${JSON.stringify(job.source)} no longer exists`);
  applyPending(ctx);
  ctx.moveMemo = null;
  if (job.selection.kind === 'ids') {
    const ids = job.selection.ids;
    const stop = Math.min(ids.length, job.cursor + max);
    for (let k = job.cursor; k < stop; k++) {
      const raw = ids[k]!;
      const id = /^\d+$/.test(raw) ? Number(raw) : NaN;
      const row = Number.isSafeInteger(id) && id > q.base && id < q.base + SEQ_SPAN ? readMessage(ctx, id) : undefined;
      const why = row ? moveOne(ctx, q, job, row) : `no longer in ${JSON.stringify(q.name)}`;
      if (why === null) job.moved++;
      else noteFailure(job, why);
    }
    job.cursor = stop;
    return stop >= ids.length;
  }
  const f = job.selection.kind === 'filter' ? compiled(ctx, job.selection.filter) : null;
  const rows = toRows((f
    ? ctx.dyn.get(`SELECT ${MSG_COLS} FROM messages WHERE id > ? AND id <= ?${filterSql(ctx, f).where} ORDER BY id LIMIT ?`, true).all(q.base + job.cursor, q.base + job.upper, ...filterSql(ctx, f).params, max)
    : ctx.st.readFifo.all(q.base + job.cursor, q.base + job.upper + 1, max)) as unknown[]);
  for (const row of rows) {
    job.cursor = row.id - q.base;
    if (f?.js && !f.js(subject(ctx, row))) continue;
    const why = moveOne(ctx, q, job, row);
    if (why === null) job.moved++;
    else noteFailure(job, why);
  }
  return rows.length < max;
}

/**
 * Moves one dead letter: insert into the target(s) and delete from the source, atomically;
 * null when moved, else why it stays.
 * Dead letters of one incident mostly share their properties text; the
 * decoded, updated and re-encoded properties and the targets depend only
 * on that text (within one batch), so they are worked out once per run of
 * equal texts.
 */
function moveOne(ctx: EngineContext, q: QueueState, job: RedriveJobState, row: MsgRow): string | null {
  if (q.unacked.has(row.id)) return 'being delivered to a consumer (unacked)';
  let plan: MovePlan | string;
  const memo = ctx.moveMemo;
  if (memo && memo.job === job && memo.props === row.props && memo.persistent === row.persistent) plan = memo.plan;
  else {
    plan = planMove(ctx, job, row);
    ctx.moveMemo = job.edit ? null : { job, props: row.props, persistent: row.persistent, plan };
  }
  if (typeof plan === 'string') return plan;
  const { targets } = plan;
  const body = job.edit?.body ?? row.body;
  const env: Envelope = { ...plan.env, body, size: body.length, bin: job.edit?.body !== undefined ? isText(body) : row.bin };
  // Every target would refuse it (full, reject-publish): it stays where it is.
  if (targets.every((t) => t.args.overflow !== 'drop-head' && isFull(ctx, t, env.size))) {
    return `${targets.length === 1 ? `queue ${JSON.stringify(targets[0]!.name)} is` : 'every target queue is'} full (x-max-length or x-max-length-bytes with x-overflow ${targets[0]!.args.overflow ?? 'reject-publish'})`;
  }
  for (const t of targets) enqueue(ctx, t, env);
  removeReady(ctx, q, row);
  return null;
}

/** Where and as what a dead letter goes, or why it cannot go anywhere. */
function planMove(ctx: EngineContext, job: RedriveJobState, row: MsgRow): MovePlan | string {
  let props: MessageProperties;
  try {
    props = decodeProps(row.props, row.persistent === 1);
  } catch (err) {
    if (err instanceof StoredDataError) return `its ${err.message}`;
    throw err;
  }
  // Spread, not Object.assign: an edited header named __proto__ stays a header.
  const headers: FieldTable = { ...(props.headers ?? {}), 'x-redriven-count': (Number(props.headers?.['x-redriven-count']) || 0) + 1, ...job.edit?.headers };
  props.headers = headers;
  let targets: QueueState[];
  let exchange: string;
  let rk: string;
  if (job.target) {
    const ex = ctx.exchanges.get(job.target.exchange);
    if (!ex) return `exchange ${JSON.stringify(job.target.exchange)} does not exist`;
    targets = [...route(ctx, ex, job.target.routingKey, headers)];
    exchange = job.target.exchange;
    rk = job.target.routingKey;
    if (targets.length === 0) {
      return ex.name === '' ? `queue ${JSON.stringify(rk)} does not exist` : `exchange ${JSON.stringify(ex.name)} routes routing key ${JSON.stringify(rk)} to no queue`;
    }
  } else {
    // Back where it died: x-death[0] is the most recent death. It goes
    // straight into that queue (not through an exchange), keeping the
    // exchange and routing key it originally had.
    const death = Array.isArray(headers['x-death']) ? (headers['x-death'] as unknown[]).find(isRecord) : undefined;
    if (typeof death?.queue !== 'string') return 'no x-death header names the queue it came from: choose a target exchange and routing key';
    const origin = ctx.queues.get(death.queue);
    if (!origin) return `its original queue ${JSON.stringify(death.queue)} does not exist`;
    targets = [origin];
    exchange = typeof death.exchange === 'string' ? death.exchange : '';
    const keys = death['routing-keys'];
    rk = Array.isArray(keys) && typeof keys[0] === 'string' ? keys[0] : origin.name;
  }
  const env = makeEnvelope(exchange, rk, row.body, props, { bin: row.bin });
  env.persistent = row.persistent === 1;
  return { targets, env };
}
