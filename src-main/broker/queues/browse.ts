/**
 * Browsing a queue without consuming it, in the order its consumers would get
 * it, with keyset cursors and exact or interpolated positions; filters run
 * inside SQLite where they can (body substring, time range) and in
 * JavaScript otherwise (JSON path, header, property), within a scan budget.
 * Also counts the matches of a re-drive's filter.
 */
import { type CompiledFilter, compileFilter, type FilterSubject, globContains } from '../../ground/filter.js';
import { SEQ_SPAN } from '../../storage/migrations.js';
import { canonicalJson, decodeProps } from '../codec.js';
import { checkInt, type EngineContext, findQueue, type QueueState } from '../context.js';
import { invalid, shown } from '../errors.js';
import { type DelayedRow, MSG_COLS, type MsgRow, toRows } from './sql.js';
import { applyPending, storedEnvelope } from './store.js';
import type { BrowsedMessage, BrowseOptions, BrowsePage, MessageProperties, MessageState } from '../types.js';

/** A filtered browse reads this many candidate rows per statement. */
const SCAN_FETCH = 256;

/**
 * End (sequence, inclusive) of the next id range a filtered browse scans from
 * `lo`: a JavaScript filter (JSON path, header) costs more per row, so its
 * ranges are shorter; none runs past what the scan budget has left.
 */
function scanChunkEnd(lo: number, filter: CompiledFilter, budgetLeft: number): number {
  const span = filter.js ? 2_000 : 50_000;
  return Math.min(lo + Math.max(1, Math.min(span, Math.floor(budgetLeft))), SEQ_SPAN - 1);
}

export function browsed(ctx: EngineContext, q: QueueState, row: MsgRow, state: MessageState, position: number | null, props?: MessageProperties): BrowsedMessage {
  const seq = row.id - q.base;
  const u = q.unacked.get(row.id);
  const recovered = row.redelivered === 0 && seq <= q.recoveredUpto;
  const m: BrowsedMessage = {
    id: String(row.id),
    exchange: row.exchange,
    routingKey: row.rk,
    body: row.body,
    properties: props ?? storedEnvelope(ctx, q, row).props,
    redelivered: u ? u.redelivered : row.redelivered === 1 || recovered,
    deliveryCount: u ? u.returns + 1 : row.returns + (recovered ? 1 : 0) + 1,
    enqueuedAt: row.enq,
    size: row.size,
    state: u ? 'unacked' : state,
  };
  if (position !== null) m.position = position;
  if (u) m.consumerTag = u.consumer.tag;
  return m;
}

function browsedDelayed(ctx: EngineContext, q: QueueState, row: DelayedRow, position: number): BrowsedMessage {
  return {
    id: `d${row.id}`,
    position,
    exchange: row.exchange,
    routingKey: row.rk,
    body: row.body,
    properties: storedEnvelope(ctx, q, row).props,
    redelivered: row.redelivered === 1,
    deliveryCount: row.returns + 1,
    enqueuedAt: row.enq,
    size: row.size,
    state: 'delayed',
    dueAt: row.due,
  };
}

export function subject(ctx: EngineContext, row: { body: Buffer; bin: number; props: string | null; persistent: number; enq: number; rk: string }): FilterSubject {
  let props: MessageProperties | undefined;
  const properties = () => (props ??= decodeProps(row.props, row.persistent === 1));
  return { body: row.body, text: row.bin === 0, properties, headers: () => properties().headers, key: row.rk, time: row.enq };
}

export function compiled(ctx: EngineContext, filter: BrowseOptions['filter']): CompiledFilter | null {
  if (!filter) return null;
  const key = canonicalJson(filter);
  if (ctx.filters.has(key)) return ctx.filters.get(key)!;
  const c = compileFilter(filter);
  if (ctx.filters.size > 100) ctx.filters.clear();
  ctx.filters.set(key, c);
  return c;
}

/** SQL for a filtered range read: the body substring and time range run inside SQLite. */
export function filterSql(ctx: EngineContext, f: CompiledFilter): { where: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  if (f.needle) {
    // GLOB over the text is a tight byte loop in SQLite (~3x faster than
    // instr on a BLOB); rows that are not clean UTF-8 (bin = 1) use instr.
    parts.push('(CASE WHEN bin = 0 THEN CAST(body AS TEXT) GLOB ? ELSE instr(body, ?) > 0 END)');
    params.push(globContains(f.needle.toString('utf8')), f.needle);
  }
  if (f.from !== null) {
    parts.push('enq >= ?');
    params.push(f.from);
  }
  if (f.to !== null) {
    parts.push('enq <= ?');
    params.push(f.to);
  }
  return { where: parts.length ? ` AND ${parts.join(' AND ')}` : '', params };
}

/**
 * Lists messages without consuming them, in the order consumers get them:
 * enqueue order, or for a priority queue the highest priority first and
 * enqueue order within each (see browseLevels); delayed messages last.
 * Keyset paging over the per-queue sequence: the cursor is the last
 * sequence returned, never an OFFSET.
 *
 * `position` jumps to a 0-based rank. Ranks come from sequence arithmetic:
 * exact while the queue has no holes (the usual case, as messages leave
 * from the head); with holes (out-of-order acks, deletes in the middle)
 * the rank is interpolated between head and tail, off by at most the
 * number of holes.
 *
 * With a filter, the scan stops after `maxScan` rows or `timeBudgetMs` and
 * returns a cursor to continue; `scanned` counts rows examined, `matched`
 * the matches returned.
 */
export function browse(ctx: EngineContext, queue: string, options: BrowseOptions = {}): BrowsePage {
  const q = findQueue(ctx, queue);
  const limit = options.limit ?? 100;
  checkInt(limit, 'limit', 1, 100_000);
  const filter = compiled(ctx, options.filter);
  const includeUnacked = options.includeUnacked ?? false;
  const maxScan = options.maxScan ?? 200_000;
  if (typeof maxScan !== 'number' || !(maxScan >= 1)) throw invalid('maxScan', `expected a positive number, got ${shown(maxScan)}`);
  const timeBudget = options.timeBudgetMs ?? 250;
  const started = performance.now();
  applyPending(ctx);
  const end = q.base + SEQ_SPAN;

  const head = ctx.st.firstId.get(q.base, end) as { id: number } | undefined;
  const tail = ctx.st.lastId.get(q.base, end) as { id: number } | undefined;
  const headSeq = head ? head.id - q.base : q.nextSeq;
  const tailSeq = tail ? tail.id - q.base : q.nextSeq - 1;
  const span = Math.max(1, tailSeq - headSeq + 1);
  const gapless = q.count === span;
  const rank = (seq: number) => (gapless ? seq - headSeq : Math.round(((seq - headSeq) * q.count) / span));

  let phase: 'm' | 'd' = 'm';
  let after = 0;
  let delayedSkip = 0;
  // Priority queues: where to start among the levels (browseLevels).
  const from: { level: number | null; position: number | null } = { level: null, position: null };
  if (options.cursor !== undefined && options.cursor !== null && options.cursor !== '') {
    const c = String(options.cursor);
    const m = /^d:(\d+)$/.exec(c) ?? (q.prio ? /^p:(\d+):(\d+)$/.exec(c) : /^m:(\d+)$/.exec(c));
    if (!m || (m.length === 3 && Number(m[1]) >= q.levels.length)) throw invalid('cursor', 'not a cursor returned by a previous browse of this queue');
    if (c.startsWith('d:')) phase = 'd';
    if (m.length === 3) from.level = Number(m[1]);
    after = Number(m[m.length - 1]);
  } else if (options.position !== undefined) {
    checkInt(options.position, 'position', 0, Number.MAX_SAFE_INTEGER);
    if (options.position >= q.count) {
      phase = 'd';
      delayedSkip = options.position - q.count;
    } else if (q.prio) from.position = options.position;
    else after = headSeq - 1 + (gapless ? options.position : Math.floor((options.position * span) / q.count));
  }

  const messages: BrowsedMessage[] = [];
  let scanned = 0;
  let nextCursor: string | null = null;

  if (phase === 'm' && q.prio) {
    const page = browseLevels(ctx, q, { level: from.level, after, position: from.position }, { limit, filter, includeUnacked, maxScan, deadline: started + timeBudget }, messages);
    scanned = page.scanned;
    if (page.exhausted) {
      phase = 'd';
      after = 0;
    } else nextCursor = page.nextCursor;
  } else if (phase === 'm') {
    let exhausted = false;
    if (!filter) {
      while (messages.length < limit) {
        const need = limit - messages.length;
        const rows = toRows(ctx.st.readFifo.all(q.base + after, end, need));
        for (const row of rows) {
          after = row.id - q.base;
          scanned++;
          if (!includeUnacked && q.unacked.has(row.id)) continue;
          messages.push(browsed(ctx, q, row, 'ready', rank(after)));
        }
        if (rows.length < need) {
          exhausted = true;
          break;
        }
      }
    } else {
      const { where, params } = filterSql(ctx, filter);
      const stmt = ctx.dyn.get(`SELECT ${MSG_COLS} FROM messages WHERE id > ? AND id <= ?${where} ORDER BY id LIMIT ?`, true);
      mapped(ctx, () => {
        for (;;) {
          if (messages.length >= limit) break;
          const first = ctx.st.firstId.get(q.base + after, end) as { id: number } | undefined;
          if (!first) {
            exhausted = true;
            break;
          }
          if (scanned >= maxScan || performance.now() - started > timeBudget) {
            nextCursor = `m:${after}`;
            break;
          }
          const lo = first.id - q.base - 1;
          const hi = scanChunkEnd(lo, filter, maxScan - scanned);
          let pos = lo;
          let stopAt: number | null = null;
          for (;;) {
            const rows = toRows(stmt.all(q.base + pos, q.base + hi, ...params, SCAN_FETCH));
            for (const row of rows) {
              pos = row.id - q.base;
              if (!includeUnacked && q.unacked.has(row.id)) continue;
              if (filter.js && !filter.js(subject(ctx, row))) continue;
              messages.push(browsed(ctx, q, row, 'ready', rank(pos)));
              if (messages.length >= limit) {
                stopAt = pos;
                break;
              }
            }
            if (stopAt !== null || rows.length < SCAN_FETCH) break;
          }
          const upto = stopAt ?? hi;
          scanned += gapless ? Math.max(0, Math.min(upto, tailSeq) - Math.max(lo, headSeq - 1)) : (ctx.st.countRange.get(q.base + lo, q.base + upto) as { n: number }).n;
          after = upto;
        }
      });
    }
    if (exhausted) {
      phase = 'd';
      after = 0;
    } else if (nextCursor === null) {
      const more = ctx.st.firstId.get(q.base + after, end) !== undefined || q.delayed > 0;
      nextCursor = more ? `m:${after}` : null;
    }
  }

  if (phase === 'd' && nextCursor === null) {
    let position = q.count;
    while (messages.length < limit) {
      const rows = ctx.st.delayedPage.all(q.qid, after, 500) as DelayedRow[];
      for (const row of rows) {
        after = row.id;
        scanned++;
        if (delayedSkip > 0) {
          delayedSkip--;
          position++;
          continue;
        }
        if (filter && !filter.all(subject(ctx, row))) {
          position++;
          continue;
        }
        messages.push(browsedDelayed(ctx, q, row, position++));
        if (messages.length >= limit) break;
      }
      if (messages.length >= limit) {
        const more = (ctx.st.delayedPage.all(q.qid, after, 1) as DelayedRow[]).length > 0;
        nextCursor = more ? `d:${after}` : null;
        break;
      }
      if (rows.length < 500) break;
    }
  }
  return { messages, nextCursor, scanned, matched: messages.length };
}

/**
 * Runs a long scan with the file read through a memory map instead of
 * copying each page into SQLite's cache: about a quarter less CPU over 1M
 * rows. Unmapped afterwards so scanned pages leave the resident set.
 */
function mapped(ctx: EngineContext, scan: () => void): void {
  ctx.db.pragma('mmap_size = 1099511627776');
  try {
    scan();
  } finally {
    ctx.db.pragma('mmap_size = 0');
  }
}

/**
 * The stored part of a priority queue's browse, in the order consumers get
 * it: the highest level first, then by sequence within a level (a requeued
 * message keeps its place, as it is delivered before anything newer).
 * Ranks are exact: the rows of the levels above plus the rows before it in
 * its own level. The cursor is `p:<level>:<sequence>`.
 */
function browseLevels(
    ctx: EngineContext,
  q: QueueState,
  from: { level: number | null; after: number; position: number | null },
  o: { limit: number; filter: CompiledFilter | null; includeUnacked: boolean; maxScan: number; deadline: number },
  messages: BrowsedMessage[],
): { exhausted: boolean; nextCursor: string | null; scanned: number } {
  const end = q.base + SEQ_SPAN;
  // Rows per level: ready (requeued included) plus delivered and not yet settled.
  const rows = q.levels.map((L) => L.ready);
  for (const u of q.unacked.values()) rows[u.prio ?? 0]! += 1;
  const above = (level: number) => rows.reduce((n, r, p) => (p > level ? n + r : n), 0);
  const count = (level: number, lo: number, hi: number) => (ctx.st.countPrio.get(level, q.base + lo, q.base + hi) as { n: number }).n;

  let level = q.levels.length - 1;
  let after = 0;
  /** Rank of the first row of `level` after `after`. */
  let rank = 0;
  if (from.position !== null) {
    let k = from.position;
    while (level > 0 && k >= rows[level]!) k -= rows[level--]!;
    const at = ctx.st.nthPrio.get(level, q.base, end, k) as { id: number } | undefined;
    if (at) {
      after = at.id - q.base - 1;
      rank = from.position;
    } else rank = above(level);
  } else if (from.level !== null) {
    level = from.level;
    after = from.after;
    rank = above(level) + count(level, 0, after);
  }

  let scanned = 0;
  let nextCursor: string | null = null;
  const { limit, filter } = o;
  const keep = (row: MsgRow) => o.includeUnacked || !q.unacked.has(row.id);
  const nextLevel = () => {
    level--;
    after = 0;
    rank = above(level);
  };
  if (!filter) {
    for (; level >= 0 && messages.length < limit; nextLevel()) {
      let more = true;
      while (more && messages.length < limit) {
        const need = limit - messages.length;
        const list = toRows(ctx.st.readPrio.all(level, q.base + after, end, need));
        for (const row of list) {
          after = row.id - q.base;
          scanned++;
          const r = rank++;
          if (keep(row)) messages.push(browsed(ctx, q, row, 'ready', r));
        }
        more = list.length === need;
      }
      if (messages.length >= limit) break;
    }
  } else {
    const { where, params } = filterSql(ctx, filter);
    const stmt = ctx.dyn.get(`SELECT ${MSG_COLS} FROM messages WHERE prio = ? AND id > ? AND id <= ?${where} ORDER BY id LIMIT ?`, true);
    mapped(ctx, () => {
      levels: for (; level >= 0; nextLevel()) {
        for (;;) {
          if (messages.length >= limit) break levels;
          const first = ctx.st.firstPrio.get(level, q.base + after, end) as { id: number } | undefined;
          if (!first) break;
          if (scanned >= o.maxScan || performance.now() > o.deadline) {
            nextCursor = `p:${level}:${after}`;
            break levels;
          }
          const lo = first.id - q.base - 1;
          const hi = scanChunkEnd(lo, filter, o.maxScan - scanned);
          // `counted`: rows of this level up to it are in `rank` and `scanned`.
          let counted = lo;
          let pos = lo;
          let stopAt: number | null = null;
          for (;;) {
            const list = toRows(stmt.all(level, q.base + pos, q.base + hi, ...params, SCAN_FETCH));
            for (const row of list) {
              pos = row.id - q.base;
              if (!keep(row) || (filter.js && !filter.js(subject(ctx, row)))) continue;
              const before = count(level, counted, pos - 1);
              rank += before;
              scanned += before + 1;
              counted = pos;
              messages.push(browsed(ctx, q, row, 'ready', rank++));
              if (messages.length >= limit) {
                stopAt = pos;
                break;
              }
            }
            if (stopAt !== null || list.length < SCAN_FETCH) break;
          }
          const upto = stopAt ?? hi;
          const rest = count(level, counted, upto);
          rank += rest;
          scanned += rest;
          after = upto;
        }
      }
    });
  }
  if (level < 0) return { exhausted: true, nextCursor: null, scanned };
  if (nextCursor === null) {
    let more = q.delayed > 0;
    for (let p = level; p >= 0 && !more; p--) more = ctx.st.firstPrio.get(p, q.base + (p === level ? after : 0), end) !== undefined;
    nextCursor = more ? `p:${level}:${after}` : null;
  }
  return { exhausted: false, nextCursor, scanned };
}

export function countMatches(ctx: EngineContext, q: QueueState, f: CompiledFilter, upper: number): number {
  applyPending(ctx);
  const { where, params } = filterSql(ctx, f);
  const stmt = ctx.dyn.get(`SELECT ${MSG_COLS} FROM messages WHERE id > ? AND id <= ?${where} ORDER BY id LIMIT ?`, true);
  let after = 0;
  let n = 0;
  for (;;) {
    const rows = toRows(stmt.all(q.base + after, q.base + upper, ...params, 1000));
    for (const row of rows) {
      after = row.id - q.base;
      if (!f.js || f.js(subject(ctx, row))) n++;
    }
    if (rows.length < 1000) return n;
  }
}
