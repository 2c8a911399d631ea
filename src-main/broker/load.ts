/**
 * Opening: the in-memory state (exchanges, queues, counters, bindings) built
 * from the database, in one transaction. What does not survive a restart
 * (transient exchanges, queues and messages; exclusive queues) is deleted
 * here, unless the engine reopens in the same process after a store failure.
 */
import { SEQ_SPAN } from '../storage/migrations.js';
import { parseQueueArgs } from './args.js';
import { decodeJson } from './codec.js';
import type { EngineContext } from './context.js';
import { attachBinding, newExchange } from './exchanges/exchanges.js';
import { newQueue } from './queues/queues.js';
import { saveCounters } from './queues/store.js';
import type { DestinationType, ExchangeType, FieldTable } from './types.js';

const BUILTIN_EXCHANGES: ReadonlyArray<[string, ExchangeType]> = [
  ['', 'direct'],
  ['amq.direct', 'direct'],
  ['amq.fanout', 'fanout'],
  ['amq.topic', 'topic'],
  ['amq.headers', 'headers'],
  ['amq.match', 'headers'],
];

/** Builds the in-memory state from the database; `keepTransient`: see EngineOptions. */
export function load(ctx: EngineContext, keepTransient: boolean): void {
  const db = ctx.db;
  db.transaction(() => {
    // Exchanges: transient ones do not survive a restart; built-ins always exist.
    if (!keepTransient) db.prepare('DELETE FROM exchanges WHERE durable = 0').run();
    const exRows = db.prepare('SELECT * FROM exchanges').all() as Array<{ name: string; type: ExchangeType; durable: number; auto_delete: number; internal: number; arguments: string }>;
    for (const r of exRows) {
      const args = decodeJson<FieldTable>(r.arguments);
      ctx.exchanges.set(r.name, newExchange(ctx, r.name, r.type, r.durable === 1, r.auto_delete === 1, r.internal === 1, args, false));
    }
    for (const [name, type] of BUILTIN_EXCHANGES) {
      if (!ctx.exchanges.has(name)) {
        ctx.st.upsertExchange.run(name, type, 1, 0, 0, '{}');
        ctx.exchanges.set(name, newExchange(ctx, name, type, true, false, false, {}, true));
      } else ctx.exchanges.get(name)!.builtin = true;
    }

    // Queues: transient and exclusive queues end with the process.
    const qRows = db.prepare('SELECT * FROM queues ORDER BY qid').all() as Array<{
      qid: number;
      name: string;
      durable: number;
      auto_delete: number;
      exclusive: number;
      arguments: string;
      msg_count: number;
      msg_bytes: number;
      next_seq: number;
      delivered_upto: number;
    }>;
    for (const r of qRows) {
      if ((r.durable === 0 && !keepTransient) || r.exclusive === 1) {
        ctx.st.deleteRange.run(r.qid * SEQ_SPAN, (r.qid + 1) * SEQ_SPAN);
        ctx.st.deleteDelayedQueue.run(r.qid);
        ctx.st.dedupDeleteQueue.run(r.qid);
        ctx.st.deleteQueue.run(r.qid);
        continue;
      }
      const args = decodeJson<FieldTable>(r.arguments);
      const q = newQueue(ctx, r.qid, r.name, r.durable === 1, r.auto_delete === 1, false, null, args, parseQueueArgs(args));
      q.count = r.msg_count;
      q.bytes = r.msg_bytes;
      q.nextSeq = r.next_seq;
      q.deliveredUpto = r.delivered_upto;
      q.recoveredUpto = r.delivered_upto;
      ctx.queues.set(q.name, q);
      ctx.byQid.set(q.qid, q);
      ctx.nextQid = Math.max(ctx.nextQid, q.qid + 1);
    }

    // Non-persistent messages do not survive a restart (the partial index
    // finds them without touching persistent rows).
    const transient = keepTransient ? [] : (db.prepare('SELECT id, size FROM messages WHERE persistent = 0').all() as Array<{ id: number; size: number }>);
    for (const t of transient) {
      const q = ctx.byQid.get(Math.floor(t.id / SEQ_SPAN));
      if (!q) continue;
      q.count--;
      q.bytes -= t.size;
      ctx.dirty.add(q);
    }
    if (transient.length) db.prepare('DELETE FROM messages WHERE persistent = 0').run();
    db.prepare(`DELETE FROM delayed WHERE ${keepTransient ? '' : 'persistent = 0 OR '}qid NOT IN (SELECT qid FROM queues)`).run();
    for (const r of db.prepare('SELECT qid, count(*) AS n, sum(size) AS b FROM delayed GROUP BY qid').all() as Array<{ qid: number; n: number; b: number }>) {
      const q = ctx.byQid.get(r.qid);
      if (!q) continue;
      q.delayed = r.n;
      q.delayedBytes = r.b;
      ctx.delayedTotal += r.n;
    }
    for (const q of ctx.queues.values()) {
      if (q.prio) {
        const counts = db.prepare('SELECT prio, count(*) AS n FROM messages WHERE prio IS NOT NULL AND id > ? AND id < ? GROUP BY prio').all(q.base, q.base + SEQ_SPAN) as Array<{
          prio: number;
          n: number;
        }>;
        for (const c of counts) if (q.levels[c.prio]) q.levels[c.prio]!.ready = c.n;
      } else q.levels[0]!.ready = q.count;
      q.expiring = q.args.messageTtl !== undefined || q.count > 0;
    }

    const bRows = db.prepare('SELECT * FROM bindings').all() as Array<{
      source: string;
      destination: string;
      destination_type: DestinationType;
      routing_key: string;
      args_key: string;
      arguments: string;
    }>;
    for (const b of bRows) {
      const src = ctx.exchanges.get(b.source);
      const destOk = b.destination_type === 'queue' ? ctx.queues.has(b.destination) : ctx.exchanges.has(b.destination);
      if (!src || !destOk) {
        ctx.st.deleteBinding.run(b.source, b.destination_type, b.destination, b.routing_key, b.args_key);
        continue;
      }
      attachBinding(ctx, src, {
        source: b.source,
        destination: b.destination,
        destinationType: b.destination_type,
        routingKey: b.routing_key,
        arguments: decodeJson<FieldTable>(b.arguments),
        argsKey: b.args_key,
        topic: null,
      });
    }
    ctx.st.dedupExpire.run(ctx.now());
    saveCounters(ctx);
  })();
}
