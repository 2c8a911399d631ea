/**
 * The queue store's SQL: message rows, delayed rows, the dedup cache and the
 * definitions of queues, exchanges and bindings (the schema is in
 * storage/migrations.ts). Prepared once per engine (see queues/store.ts).
 *
 * A queue's messages are the rowid range (qid·SEQ_SPAN, (qid+1)·SEQ_SPAN),
 * so each read below is one range seek in rowid order.
 */
import type { StoredMessage } from '../envelope.js';

/** A stored message row. */
export interface MsgRow extends StoredMessage {
  id: number;
  prio: number | null;
  enq: number;
  exp: number | null;
  dedup: string | null;
}

/** A stored delayed message (x-delay, x-retry-delays): due at `due`, then enqueued into queue `qid`. */
export interface DelayedRow extends StoredMessage {
  id: number;
  qid: number;
  due: number;
  enq: number;
  dedup: string | null;
}

/**
 * Message columns in a fixed order. Hot reads use better-sqlite3's raw
 * (array) mode and build the row object here: measured ~2x faster than
 * letting the addon create a 14-property object per row.
 */
export const MSG_COLS = 'id, prio, enq, exp, exchange, rk, props, body, size, bin, redelivered, returns, persistent, dedup';
type RawRow = [number, number | null, number, number | null, string, string, string | null, Buffer, number, number, number, number, number, string | null];

export function toRow(a: unknown[]): MsgRow {
  const r = a as RawRow;
  return { id: r[0], prio: r[1], enq: r[2], exp: r[3], exchange: r[4], rk: r[5], props: r[6], body: r[7], size: r[8], bin: r[9], redelivered: r[10], returns: r[11], persistent: r[12], dedup: r[13] };
}

export function toRows(list: unknown[]): MsgRow[] {
  const out = new Array<MsgRow>(list.length);
  for (let i = 0; i < list.length; i++) out[i] = toRow(list[i] as unknown[]);
  return out;
}

/** Statements read in raw (array) mode: their rows go through toRow. */
export const RAW_STATEMENTS = ['getMsg', 'readFifo', 'readPrio'] as const;

export const SQL = {
  insertMsg: 'INSERT INTO messages (id, prio, enq, exp, exchange, rk, props, body, size, bin, redelivered, returns, persistent, dedup) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)',
  deleteMsg: 'DELETE FROM messages WHERE id = ?',
  deleteSpan: 'DELETE FROM messages WHERE id >= ? AND id <= ?',
  getMsg: `SELECT ${MSG_COLS} FROM messages WHERE id = ?`,
  readFifo: `SELECT ${MSG_COLS} FROM messages WHERE id > ? AND id < ? ORDER BY id LIMIT ?`,
  readPrio: `SELECT ${MSG_COLS} FROM messages WHERE prio = ? AND id > ? AND id < ? ORDER BY id LIMIT ?`,
  markReturned: 'UPDATE messages SET redelivered = 1, returns = ? WHERE id = ?',
  deleteRange: 'DELETE FROM messages WHERE id > ? AND id < ?',
  firstId: 'SELECT id FROM messages WHERE id > ? AND id < ? ORDER BY id LIMIT 1',
  lastId: 'SELECT id FROM messages WHERE id > ? AND id < ? ORDER BY id DESC LIMIT 1',
  countRange: 'SELECT count(*) AS n FROM messages WHERE id > ? AND id <= ?',
  firstPrio: 'SELECT id FROM messages WHERE prio = ? AND id > ? AND id < ? ORDER BY id LIMIT 1',
  nthPrio: 'SELECT id FROM messages WHERE prio = ? AND id > ? AND id < ? ORDER BY id LIMIT 1 OFFSET ?',
  countPrio: 'SELECT count(*) AS n FROM messages WHERE prio = ? AND id > ? AND id <= ?',
  dedupInQueue: 'SELECT 1 AS x FROM messages WHERE dedup = ? AND id > ? AND id < ? LIMIT 1',
  dedupInDelayed: 'SELECT 1 AS x FROM delayed WHERE qid = ? AND dedup = ? LIMIT 1',
  insertDelayed: 'INSERT INTO delayed (qid, due, enq, exchange, rk, props, body, size, bin, redelivered, returns, persistent, dedup) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)',
  deleteDelayed: 'DELETE FROM delayed WHERE id = ?',
  dueDelayed: 'SELECT * FROM delayed WHERE due <= ? ORDER BY due, id LIMIT ?',
  delayedPage: 'SELECT * FROM delayed WHERE qid = ? AND id > ? ORDER BY id LIMIT ?',
  deleteDelayedQueue: 'DELETE FROM delayed WHERE qid = ?',
  dedupGet: 'SELECT expires_at FROM dedup_cache WHERE qid = ? AND key = ?',
  dedupPut: 'INSERT OR REPLACE INTO dedup_cache (qid, key, expires_at) VALUES (?, ?, ?)',
  dedupExpire: 'DELETE FROM dedup_cache WHERE expires_at <= ?',
  dedupDeleteQueue: 'DELETE FROM dedup_cache WHERE qid = ?',
  dedupCount: 'SELECT count(*) AS n FROM dedup_cache WHERE qid = ?',
  dedupEvict: 'DELETE FROM dedup_cache WHERE qid = ? AND key IN (SELECT key FROM dedup_cache WHERE qid = ? ORDER BY expires_at LIMIT ?)',
  insertQueue:
    'INSERT INTO queues (qid, name, durable, auto_delete, exclusive, arguments, created_at, msg_count, msg_bytes, next_seq, delivered_upto) VALUES (?,?,?,?,?,?,?,0,0,1,0)',
  deleteQueue: 'DELETE FROM queues WHERE qid = ?',
  saveQueue: 'UPDATE queues SET msg_count = ?, msg_bytes = ?, next_seq = ?, delivered_upto = ? WHERE qid = ?',
  upsertExchange: 'INSERT OR REPLACE INTO exchanges (name, type, durable, auto_delete, internal, arguments) VALUES (?,?,?,?,?,?)',
  deleteExchange: 'DELETE FROM exchanges WHERE name = ?',
  insertBinding: 'INSERT OR IGNORE INTO bindings (source, destination, destination_type, routing_key, args_key, arguments) VALUES (?,?,?,?,?,?)',
  deleteBinding: 'DELETE FROM bindings WHERE source = ? AND destination_type = ? AND destination = ? AND routing_key = ? AND args_key = ?',
} as const;
