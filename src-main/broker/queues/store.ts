/**
 * The queue store: a queue's messages as SQLite rows (queues/sql.ts) and the
 * little kept in memory to serve them in delivery order. Per priority level a
 * queue has a cursor (the highest sequence taken for delivery), a count of
 * ready messages and the sorted list of requeued sequences, which go first.
 * Writes of the current batch may still be pending (see EngineContext):
 * every read here applies them first, except the FIFO read that serves the
 * next pending row straight from memory.
 */
import { SEQ_SPAN } from '../../storage/migrations.js';
import { bsearch, type EngineContext, insertSorted, type QueueState, unreadable } from '../context.js';
import { type Envelope, envelopeOf } from '../envelope.js';
import { type DelayedRow, type MsgRow, toRow, toRows } from './sql.js';

/** Applies pending inserts and deletes (inside the open batch). */
export function applyPending(ctx: EngineContext): void {
  if (ctx.pendingInserts.size > 0) {
    const inserts = ctx.pendingInserts;
    ctx.pendingInserts = new Map();
    if (ctx.pendingDeletes.length > 0) ctx.pendingDeletes = ctx.pendingDeletes.filter((id) => !inserts.delete(id));
    const insert = () => {
      for (const params of inserts.values()) ctx.st.insertMsg.run(...params);
    };
    if (ctx.db.inTransaction) insert();
    else ctx.gc.write(insert, 0);
  }
  const ids = ctx.pendingDeletes;
  if (ids.length === 0) return;
  ctx.pendingDeletes = [];
  const run = () => {
    // Acks mostly come in delivery order: sorted only when they did not.
    for (let i = 1; i < ids.length; i++) {
      if (ids[i]! < ids[i - 1]!) {
        ids.sort((a, b) => a - b);
        break;
      }
    }
    let lo = ids[0]!;
    let hi = lo;
    for (let i = 1; i <= ids.length; i++) {
      const id = ids[i];
      if (id === hi + 1) {
        hi = id;
        continue;
      }
      if (id === hi) continue;
      if (lo === hi) ctx.st.deleteMsg.run(lo);
      else ctx.st.deleteSpan.run(lo, hi);
      if (id !== undefined) lo = hi = id;
    }
  };
  if (ctx.db.inTransaction) run();
  else ctx.gc.write(run, 0);
}

export function readMessage(ctx: EngineContext, id: number): MsgRow | undefined {
  if (ctx.pendingInserts.size > 0) applyPending(ctx);
  const a = ctx.st.getMsg.get(id) as unknown[] | undefined;
  return a ? toRow(a) : undefined;
}

/** Takes up to n ready messages in delivery order: priority high→low, requeued first, then FIFO. */
export function takeReady(ctx: EngineContext, q: QueueState, n: number): MsgRow[] {
  const out: MsgRow[] = [];
  for (let p = q.levels.length - 1; p >= 0 && out.length < n; p--) {
    const L = q.levels[p]!;
    while (L.ready > 0 && out.length < n) {
      if (L.requeued.length > 0) {
        const seq = L.requeued.shift()!;
        L.ready--;
        const row = readMessage(ctx, q.base + seq);
        if (row) out.push(row);
        continue;
      }
      if (ctx.pendingInserts.size > 0) {
        if (!q.prio) {
          const params = ctx.pendingInserts.get(q.base + L.cursor + 1);
          if (params) {
            // Not stored yet: hand it over from memory; it stays pending.
            out.push(toRow(params));
            L.cursor++;
            L.ready--;
            continue;
          }
        }
        applyPending(ctx);
      }
      const want = Math.min(n - out.length, L.ready);
      const rows = toRows(q.prio ? ctx.st.readPrio.all(p, q.base + L.cursor, q.base + SEQ_SPAN, want) : ctx.st.readFifo.all(q.base + L.cursor, q.base + SEQ_SPAN, want));
      if (rows.length === 0) {
        // Counter and rows disagree (should not happen): trust the rows.
        L.ready = 0;
        if (!q.prio) {
          q.count = q.unacked.size;
          q.bytes = q.unackedBytes;
          ctx.dirty.add(q);
        }
        break;
      }
      for (const row of rows) out.push(row);
      L.cursor = rows[rows.length - 1]!.id - q.base;
      L.ready -= rows.length;
    }
  }
  return out;
}

export function peekHead(ctx: EngineContext, q: QueueState): MsgRow | undefined {
  if (ctx.pendingInserts.size > 0) applyPending(ctx);
  for (let p = q.levels.length - 1; p >= 0; p--) {
    const L = q.levels[p]!;
    if (L.ready <= 0) continue;
    if (L.requeued.length > 0) return readMessage(ctx, q.base + L.requeued[0]!);
    const rows = toRows(q.prio ? ctx.st.readPrio.all(p, q.base + L.cursor, q.base + SEQ_SPAN, 1) : ctx.st.readFifo.all(q.base + L.cursor, q.base + SEQ_SPAN, 1));
    return rows[0];
  }
  return undefined;
}

/** Puts a taken message back in its original place. */
export function returnToReady(ctx: EngineContext, q: QueueState, seq: number, prio: number | null): void {
  const L = q.levels[prio ?? 0]!;
  insertSorted(L.requeued, seq);
  L.ready++;
  ctx.scheduleDispatch(q);
}

/** Removes a ready row that was not taken (re-drive, targeted delete). */
export function removeReady(ctx: EngineContext, q: QueueState, row: MsgRow): void {
  const seq = row.id - q.base;
  const L = q.levels[row.prio ?? 0]!;
  const i = bsearch(L.requeued, seq);
  if (i >= 0) L.requeued.splice(i, 1);
  L.ready--;
  dropRow(ctx, q, row);
}

/** Deletes a row that is no longer ready or unacked (taken, or unacked and forgotten). */
export function dropRow(ctx: EngineContext, q: QueueState, row: { id: number; size: number }): void {
  ctx.pendingDeletes.push(row.id);
  q.count--;
  q.bytes -= row.size;
  ctx.dirty.add(q);
}

/** Runs inside every group commit, right before COMMIT. */
export function saveCounters(ctx: EngineContext): void {
  applyPending(ctx);
  for (const q of ctx.dirty) {
    if (!q.deleted) ctx.st.saveQueue.run(q.count, q.bytes, q.nextSeq, q.deliveredUpto, q.qid);
  }
  ctx.dirty.clear();
  ctx.streams.saveDirty();
}

export function readyCount(ctx: EngineContext, q: QueueState): number {
  return q.count - q.unacked.size;
}

export function isFull(ctx: EngineContext, q: QueueState, size: number): boolean {
  const { maxLength, maxLengthBytes } = q.args;
  if (maxLength !== undefined && readyCount(ctx, q) >= maxLength) return true;
  if (maxLengthBytes !== undefined && q.bytes - q.unackedBytes + size > maxLengthBytes) return true;
  return false;
}

/** A stored message as an envelope; one whose properties cannot be read is refused with its id and queue. */
export function storedEnvelope(ctx: EngineContext, q: QueueState, row: MsgRow | DelayedRow): Envelope {
  try {
    return envelopeOf(row);
  } catch (err) {
    throw unreadable(q, row, err);
  }
}
