import { SEQ_SPAN } from '../../storage/migrations.js';
import { canonicalJson } from '../codec.js';
import type { EngineContext, QueueState } from '../context.js';
import type { Envelope } from '../envelope.js';
import { applyPending } from './store.js';

/**
 * Message deduplication, with the community plugin's queue arguments:
 * `x-message-deduplication: true`, `x-cache-ttl` (the window, ms),
 * `x-cache-size` and `x-deduplication-header` (the header to key on; by
 * default the message-id).
 */
/** Dedup key: the queue's named header, else the message's x-deduplication-header, else its message-id. */
function dedupKey(q: QueueState, env: Envelope): string | null {
  const h = env.props.headers;
  const pick = (v: unknown): string | null =>
    v === undefined || v === null ? null : typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('base64') : canonicalJson(v);
  if (q.args.dedupHeader !== undefined && h && Object.hasOwn(h, q.args.dedupHeader)) {
    const v = pick(h[q.args.dedupHeader]);
    if (v !== null) return v;
  }
  if (h) {
    const v = pick(h['x-deduplication-header']);
    if (v !== null) return v;
  }
  return env.props.messageId ?? null;
}

/** Queues with a dedup cache window (only then is the cache swept). */
function dedupCaches(ctx: EngineContext): number {
  let n = 0;
  for (const q of ctx.queues.values()) if (q.args.dedup && q.args.cacheTtl !== undefined) n++;
  return n;
}

/**
 * Whether a message may enter a deduplicating queue (inside the publish's
 * transaction): false for a duplicate; otherwise the key to store with the
 * message, or null when there is none to store. With a cache window
 * (`x-cache-ttl`) the key goes into the dedup cache, bounded by
 * `x-cache-size` (the soonest to expire make room); without one, a key is a
 * duplicate while a message with it is still in the queue (ready, unacked or
 * delayed).
 */
export function admit(ctx: EngineContext, q: QueueState, env: Envelope, now: number): string | null | false {
  const key = dedupKey(q, env);
  if (key === null) return null;
  if (q.args.cacheTtl !== undefined) {
    const row = ctx.st.dedupGet.get(q.qid, key) as { expires_at: number } | undefined;
    if (row && row.expires_at > now) return false;
    if (q.args.cacheSize !== undefined && !row) {
      const n = (ctx.st.dedupCount.get(q.qid) as { n: number }).n;
      if (n >= q.args.cacheSize) ctx.st.dedupEvict.run(q.qid, q.qid, n - q.args.cacheSize + 1);
    }
    ctx.st.dedupPut.run(q.qid, key, now + q.args.cacheTtl);
    return null;
  }
  applyPending(ctx);
  if (ctx.st.dedupInQueue.get(key, q.base, q.base + SEQ_SPAN) || ctx.st.dedupInDelayed.get(q.qid, key)) return false;
  return key;
}

/** Drops expired dedup cache entries (from the engine's tick, once a second). */
export function sweepDedup(ctx: EngineContext, now: number): void {
  if (dedupCaches(ctx) > 0) ctx.gc.run(() => ctx.st.dedupExpire.run(now));
}
