/**
 * Timed work on queues, run from the engine's tick: delayed and retried
 * messages that are due, per-message and per-queue TTL at queue heads
 * (expired messages are dead-lettered), and x-expires (unused queues are
 * deleted).
 */
import { type EngineContext, isExpired } from '../context.js';
import { movableEnvelope } from '../envelope.js';
import { enqueue } from '../publish.js';
import { deadLetter } from './dead-letter.js';
import { dropQueue } from './queues.js';
import type { DelayedRow } from './sql.js';
import { dropRow, peekHead, readyCount, takeReady } from './store.js';

export function processDelayed(ctx: EngineContext, now: number): void {
  while (ctx.delayedTotal > 0) {
    const rows = ctx.st.dueDelayed.all(now, 500) as DelayedRow[];
    if (rows.length === 0) return;
    ctx.gc.run(() => {
      for (const r of rows) {
        ctx.st.deleteDelayed.run(r.id);
        const q = ctx.byQid.get(r.qid);
        if (!q) continue;
        q.delayed--;
        q.delayedBytes -= r.size;
        ctx.delayedTotal--;
        q.totals.publish--; // counted when it was published
        enqueue(ctx, q, movableEnvelope(r), 0, false);
      }
    }, rows.length);
    if (rows.length < 500) return;
  }
}

export function expireHeads(ctx: EngineContext, now: number): void {
  for (const q of ctx.queues.values()) {
    if (!q.expiring || q.deleted) continue;
    if (readyCount(ctx, q) === 0) {
      if (q.args.messageTtl === undefined && q.unacked.size === 0) q.expiring = false;
      continue;
    }
    const head = peekHead(ctx, q);
    if (!head || !isExpired(head, now)) continue;
    ctx.gc.run(() => {
      for (let n = 0; n < 5000; n++) {
        const h = n === 0 ? head : peekHead(ctx, q);
        if (!h || !isExpired(h, now)) break;
        const [row] = takeReady(ctx, q, 1);
        if (!row) break;
        deadLetter(ctx, q, movableEnvelope(row), 'expired');
        dropRow(ctx, q, row);
      }
    });
  }
}

export function expireQueues(ctx: EngineContext, now: number): void {
  for (const q of [...ctx.queues.values()]) {
    const ttl = q.args.expires;
    if (ttl === undefined || q.consumers.length > 0 || now - q.lastUsed < ttl) continue;
    ctx.gc.run(() => dropQueue(ctx, q, 'expired'));
  }
}
