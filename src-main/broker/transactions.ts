/**
 * Kafka transactions: the transaction coordinator's state and the
 * partitions' transaction indexes, for the Kafka listener
 * (protocols/kafka/apis/transactions.ts) to drive.
 *
 * A transactional id keeps one producer id; each InitProducerId bumps its
 * epoch, which fences the older producer (its requests carry the old epoch),
 * and aborts the transaction that producer left open. A transaction starts
 * with the first partition or group added to it and ends with EndTxn, a
 * timeout or a restart: a control batch (Kafka's transaction marker, commit
 * or abort) is then appended to each of its partitions, taking an offset like
 * a record but kept only as a stored batch, with no row (streams.ts
 * appendControl); offsets committed within it reach the group's committed
 * offsets on commit and are dropped on abort.
 *
 * For read_committed fetches each partition has a last stable offset (LSO:
 * the first offset of its earliest open transaction, else its end) and an
 * index of aborted transactions (producer id, first offset, marker offset),
 * which the fetch hands to the client so that it drops their records.
 *
 * Kept in the database (migration 7): the transactional ids with their
 * producer id, epoch, timeout and state; an open transaction's partitions and
 * their first offsets; the aborted index. A transaction open when the broker
 * stopped is aborted when it starts again, as a coordinator aborts one that
 * timed out. Offsets committed in an open transaction are held in memory only
 * (a restart aborts that transaction anyway).
 */
import { crc32c } from '@node-rs/crc32';
import type { SqliteDatabase } from '../storage/database.js';
import type { GroupCommit } from '../storage/group-commit.js';
import { prepareStatements } from '../storage/statements.js';
import type { OffsetCommit } from './types.js';

/** Kafka's transaction.max.timeout.ms default: the longest transaction.timeout.ms a producer may ask for. */
export const MAX_TRANSACTION_TIMEOUT_MS = 900_000;

/** Kafka's coordinator states; Prepare* pass within one call here, so they are never seen. */
export type TxnState = 'Empty' | 'Ongoing' | 'CompleteCommit' | 'CompleteAbort';

/** Kafka's error names for the coordinator's refusals (the listener turns them into codes). */
export type TxnError = 'INVALID_PRODUCER_ID_MAPPING' | 'PRODUCER_FENCED' | 'INVALID_PRODUCER_EPOCH' | 'INVALID_TXN_STATE' | 'INVALID_TRANSACTION_TIMEOUT' | 'TRANSACTIONAL_ID_NOT_FOUND';

/** What the coordinator needs of the topic store. */
export interface TxnStreams {
  appendControl(topic: string, partition: number, batch: Buffer): number;
  partitionRange(topic: string, partition: number): { start: number; next: number; compact: boolean } | null;
  deleteRecordRanges(topic: string, partition: number, ranges: ReadonlyArray<readonly [number, number]>): void;
  commitOffsets(groupId: string, offsets: OffsetCommit[]): Promise<void>;
}

export interface TransactionsContext {
  db: SqliteDatabase;
  gc: GroupCommit;
  now: () => number;
  streams: TxnStreams;
  /** Markers were written: LSOs moved (the listener wakes its read_committed fetches). */
  changed: () => void;
  /** Logged: a transaction the broker aborted by itself (timeout, restart). */
  log?: (message: string, fields: Record<string, unknown>) => void;
}

interface TxnPartition {
  topic: string;
  partition: number;
  /** The offset of the transaction's first record in this partition; null until one is appended. */
  first: number | null;
  /** Its records' offsets (base, count) where fetches encode them from rows (see appended): removed if it aborts. */
  ranges: Array<[number, number]>;
}

interface Txn extends Omit<TxnDescription, 'partitions'> {
  partitions: Map<string, TxnPartition>;
  groups: Set<string>;
  /** Offsets committed in the open transaction, per group, applied on commit. */
  offsets: Map<string, Map<string, OffsetCommit>>;
}

export interface AbortedTxn {
  producerId: bigint;
  firstOffset: number;
  lastOffset: number;
}

export interface TxnDescription {
  transactionalId: string;
  producerId: bigint;
  epoch: number;
  timeoutMs: number;
  state: TxnState;
  /** When the open transaction began (ms), -1 when none is open. */
  startedAt: number;
  partitions: Array<{ topic: string; partition: number }>;
}

/** A partition's transaction view for read_committed fetches. */
export interface CommittedView {
  /** The last stable offset: the first offset of its earliest open transaction, else `end`. */
  lso: number;
  /** Aborted transactions whose records (first … marker) overlap `from` … `to` (exclusive). */
  aborted(from: number, to: number): AbortedTxn[];
}

const EPOCH_MAX = 32767;

const key = (topic: string, partition: number): string => `${partition}\0${topic}`;

/** The bytes of a control batch holding one transaction marker (Kafka's implementation.html, "Control Batches"). */
export function markerBatch(producerId: bigint, epoch: number, commit: boolean, timestamp: number, coordinatorEpoch = 0): Buffer {
  // Record: length, attributes, timestamp delta, offset delta, key (4 bytes), value (6 bytes), no headers.
  const body = Buffer.from([0, 0, 0, 8, 0, 0, 0, commit ? 1 : 0, 12, 0, 0, 0, 0, 0, 0, 0]);
  body.writeInt32BE(coordinatorEpoch | 0, 11);
  const out = Buffer.alloc(61 + 1 + body.length);
  out.writeBigInt64BE(0n, 0); // base offset: set when stored
  out.writeInt32BE(out.length - 12, 8);
  out.writeInt32BE(0, 12); // partition leader epoch
  out.writeInt8(2, 16); // magic
  out.writeInt16BE(0x30, 21); // attributes: transactional, control
  out.writeInt32BE(0, 23); // last offset delta
  out.writeBigInt64BE(BigInt(timestamp), 27);
  out.writeBigInt64BE(BigInt(timestamp), 35);
  out.writeBigInt64BE(producerId, 43);
  out.writeInt16BE(epoch, 51);
  out.writeInt32BE(-1, 53); // base sequence
  out.writeInt32BE(1, 57); // one record
  out[61] = body.length * 2; // the record's length, a zigzag varint (16 → 32)
  body.copy(out, 62);
  out.writeUInt32BE(crc32c(out.subarray(21)) >>> 0, 17);
  return out;
}

export class Transactions {
  private readonly txns = new Map<string, Txn>();
  private readonly byProducer = new Map<bigint, Txn>();
  /** Per partition, the open transactions with records there: transactional id → first offset. */
  private readonly open = new Map<string, Map<string, number>>();
  /** Per partition, its aborted transactions in marker order. */
  private readonly abortedIndex = new Map<string, AbortedTxn[]>();
  private readonly st;

  constructor(private readonly ctx: TransactionsContext) {
    this.st = prepareStatements(ctx.db, {
      upsertTxn:
        'INSERT INTO kafka_transactions (transactional_id, producer_id, epoch, timeout_ms, state, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (transactional_id) DO UPDATE SET producer_id = excluded.producer_id, epoch = excluded.epoch, timeout_ms = excluded.timeout_ms, state = excluded.state, started_at = excluded.started_at, updated_at = excluded.updated_at',
      upsertPartition:
        'INSERT INTO kafka_transaction_partitions (transactional_id, topic, partition, first_offset, ranges) VALUES (?, ?, ?, ?, ?) ON CONFLICT (transactional_id, topic, partition) DO UPDATE SET first_offset = excluded.first_offset, ranges = excluded.ranges',
      deletePartitions: 'DELETE FROM kafka_transaction_partitions WHERE transactional_id = ?',
      deleteTopicPartitions: 'DELETE FROM kafka_transaction_partitions WHERE topic = ?',
      insertAborted: 'INSERT OR REPLACE INTO kafka_aborted_transactions (topic, partition, last_offset, producer_id, first_offset) VALUES (?, ?, ?, ?, ?)',
      deleteTopicAborted: 'DELETE FROM kafka_aborted_transactions WHERE topic = ?',
      pruneAborted: 'DELETE FROM kafka_aborted_transactions WHERE topic = ? AND partition = ? AND last_offset < ?',
    });
  }

  // ---- lifecycle ---------------------------------------------------------------

  /** Reads the state back; transactions left open by the last run are aborted (their markers written). */
  load(): void {
    const rows = this.ctx.db.prepare('SELECT transactional_id, producer_id, epoch, timeout_ms, state, started_at FROM kafka_transactions').all() as Array<{
      transactional_id: string;
      producer_id: number;
      epoch: number;
      timeout_ms: number;
      state: TxnState;
      started_at: number;
    }>;
    for (const r of rows) {
      const t: Txn = {
        transactionalId: r.transactional_id,
        producerId: BigInt(r.producer_id),
        epoch: r.epoch,
        timeoutMs: r.timeout_ms,
        state: r.state,
        startedAt: r.started_at,
        partitions: new Map(),
        groups: new Set(),
        offsets: new Map(),
      };
      this.txns.set(t.transactionalId, t);
      this.byProducer.set(t.producerId, t);
    }
    for (const r of this.ctx.db.prepare('SELECT transactional_id, topic, partition, first_offset, ranges FROM kafka_transaction_partitions').all() as Array<{
      transactional_id: string;
      topic: string;
      partition: number;
      first_offset: number | null;
      ranges: string | null;
    }>) {
      const t = this.txns.get(r.transactional_id);
      if (t) t.partitions.set(key(r.topic, r.partition), { topic: r.topic, partition: r.partition, first: r.first_offset, ranges: r.ranges ? (JSON.parse(r.ranges) as Array<[number, number]>) : [] });
    }
    for (const r of this.ctx.db.prepare('SELECT topic, partition, last_offset, producer_id, first_offset FROM kafka_aborted_transactions ORDER BY topic, partition, last_offset').all() as Array<{
      topic: string;
      partition: number;
      last_offset: number;
      producer_id: number;
      first_offset: number;
    }>) {
      this.indexOf(r.topic, r.partition).push({ producerId: BigInt(r.producer_id), firstOffset: r.first_offset, lastOffset: r.last_offset });
    }
    const left = [...this.txns.values()].filter((t) => t.state === 'Ongoing');
    for (const t of left) {
      this.ctx.log?.('kafka transaction left open at shutdown aborted', { transactionalId: t.transactionalId, producerId: String(t.producerId), partitions: t.partitions.size });
      this.finish(t, false, true);
    }
  }

  // ---- the coordinator -----------------------------------------------------------

  /**
   * InitProducerId with a transactional id: the id's producer id (a new one
   * from `newProducerId` the first time, or when the epoch is spent) with the
   * next epoch; a transaction the previous producer left open is aborted
   * first. `producerId`/`epoch` (KIP-360, -1 when not given) must be the
   * current ones. Resolves once stored.
   */
  init(transactionalId: string, timeoutMs: number, producerId: bigint, epoch: number, newProducerId: () => bigint): { error: TxnError } | { producerId: bigint; epoch: number; committed: Promise<void> } {
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TRANSACTION_TIMEOUT_MS) return { error: 'INVALID_TRANSACTION_TIMEOUT' };
    let t = this.txns.get(transactionalId);
    if (t && producerId >= 0n && (producerId !== t.producerId || epoch !== t.epoch)) return { error: t.producerId === producerId ? 'PRODUCER_FENCED' : 'INVALID_PRODUCER_ID_MAPPING' };
    this.ctx.gc.run(() => {
      if (!t) {
        t = { transactionalId, producerId: newProducerId(), epoch: 0, timeoutMs, state: 'Empty', startedAt: -1, partitions: new Map(), groups: new Set(), offsets: new Map() };
        this.txns.set(transactionalId, t);
        this.byProducer.set(t.producerId, t);
      } else {
        // The open transaction is aborted under a new epoch (the old producer is fenced from it), then the epoch moves on.
        if (t.state === 'Ongoing') this.finish(t, false, true);
        this.bump(t, newProducerId);
        t.state = 'Empty';
        t.timeoutMs = timeoutMs;
      }
      this.save(t);
    });
    return { producerId: t!.producerId, epoch: t!.epoch, committed: this.ctx.gc.whenCommitted() };
  }

  /** Adds partitions to the producer's transaction (starting it). Unknown partitions are the caller's to refuse first. */
  addPartitions(transactionalId: string, producerId: bigint, epoch: number, partitions: Array<{ topic: string; partition: number }>): { error: TxnError } | { committed: Promise<void> } {
    const t = this.check(transactionalId, producerId, epoch);
    if ('error' in t) return t;
    this.ctx.gc.run(() => {
      this.begin(t);
      for (const p of partitions) {
        const k = key(p.topic, p.partition);
        if (t.partitions.has(k)) continue;
        t.partitions.set(k, { topic: p.topic, partition: p.partition, first: null, ranges: [] });
        this.st.upsertPartition.run(transactionalId, p.topic, p.partition, null, null);
      }
    });
    return { committed: this.ctx.gc.whenCommitted() };
  }

  /** Adds a group's offsets to the producer's transaction (AddOffsetsToTxn), starting it. */
  addGroup(transactionalId: string, producerId: bigint, epoch: number, groupId: string): { error: TxnError } | { committed: Promise<void> } {
    const t = this.check(transactionalId, producerId, epoch);
    if ('error' in t) return t;
    this.ctx.gc.run(() => this.begin(t));
    t.groups.add(groupId);
    return { committed: this.ctx.gc.whenCommitted() };
  }

  /** TxnOffsetCommit: offsets held in the transaction until it ends. The group must have been added. */
  commitOffsets(transactionalId: string, producerId: bigint, epoch: number, groupId: string, offsets: OffsetCommit[]): TxnError | null {
    const t = this.check(transactionalId, producerId, epoch);
    if ('error' in t) return t.error;
    if (t.state !== 'Ongoing' || !t.groups.has(groupId)) return 'INVALID_TXN_STATE';
    let held = t.offsets.get(groupId);
    if (!held) t.offsets.set(groupId, (held = new Map()));
    for (const o of offsets) held.set(key(o.topic, o.partition), o);
    return null;
  }

  /** EndTxn: commits or aborts the producer's transaction; a retry of the one just ended succeeds again. */
  end(transactionalId: string, producerId: bigint, epoch: number, commit: boolean): { error: TxnError } | { committed: Promise<void> } {
    const t = this.check(transactionalId, producerId, epoch);
    if ('error' in t) return t;
    if (t.state === (commit ? 'CompleteCommit' : 'CompleteAbort')) return { committed: Promise.resolve() };
    if (t.state !== 'Ongoing') return { error: 'INVALID_TXN_STATE' };
    this.ctx.gc.run(() => this.finish(t, commit, false));
    return { committed: this.ctx.gc.whenCommitted() };
  }

  /**
   * A transactional batch about to be appended to a partition at its current
   * end: refused unless the partition is in the producer's open transaction
   * under its current epoch; otherwise the transaction's first offset there
   * is noted (before the append, so that it is never missing).
   */
  beforeAppend(producerId: bigint, epoch: number, topic: string, partition: number): TxnError | null {
    const t = this.byProducer.get(producerId);
    if (!t) return 'INVALID_TXN_STATE';
    if (epoch !== t.epoch) return 'INVALID_PRODUCER_EPOCH';
    const p = t.state === 'Ongoing' ? t.partitions.get(key(topic, partition)) : undefined;
    if (!p) return 'INVALID_TXN_STATE';
    if (p.first === null) {
      const range = this.ctx.streams.partitionRange(topic, partition);
      if (!range) return 'INVALID_TXN_STATE';
      const first = range.next;
      this.ctx.gc.run(() => this.st.upsertPartition.run(t.transactionalId, topic, partition, first, null));
      p.first = first;
      let open = this.open.get(key(topic, partition));
      if (!open) this.open.set(key(topic, partition), (open = new Map()));
      open.set(t.transactionalId, first);
    }
    return null;
  }

  /**
   * A transactional batch's records were appended at `base`… (after
   * beforeAppend). Where fetches will encode them from their rows, which do
   * not say which producer wrote them (a compacted topic, or a batch not
   * kept as produced: `kept` false), their offsets are kept, to be removed
   * if the transaction aborts.
   */
  appended(producerId: bigint, topic: string, partition: number, base: number, count: number, kept: boolean): void {
    const t = this.byProducer.get(producerId);
    const p = t?.state === 'Ongoing' ? t.partitions.get(key(topic, partition)) : undefined;
    if (!t || !p || (kept && !this.ctx.streams.partitionRange(topic, partition)?.compact)) return;
    const last = p.ranges[p.ranges.length - 1];
    if (last && last[0] + last[1] === base) last[1] += count;
    else p.ranges.push([base, count]);
    this.ctx.gc.run(() => this.st.upsertPartition.run(t.transactionalId, topic, partition, p.first, JSON.stringify(p.ranges)));
  }

  /** Aborts transactions open longer than their timeout (the engine's tick); the producer is fenced (its epoch bumped). */
  tick(): void {
    const now = this.ctx.now();
    for (const t of this.txns.values()) {
      if (t.state !== 'Ongoing' || now - t.startedAt <= t.timeoutMs) continue;
      this.ctx.log?.('kafka transaction timed out and aborted', { transactionalId: t.transactionalId, producerId: String(t.producerId), timeoutMs: t.timeoutMs });
      this.finish(t, false, true);
    }
  }

  /** A topic was deleted: its partitions leave open transactions and its aborted index goes. */
  topicDeleted(topic: string): void {
    this.ctx.gc.run(() => {
      this.st.deleteTopicPartitions.run(topic);
      this.st.deleteTopicAborted.run(topic);
    });
    for (const t of this.txns.values()) for (const [k, p] of t.partitions) if (p.topic === topic) t.partitions.delete(k);
    for (const k of [...this.open.keys(), ...this.abortedIndex.keys()]) {
      if (k.slice(k.indexOf('\0') + 1) === topic) {
        this.open.delete(k);
        this.abortedIndex.delete(k);
      }
    }
  }

  /** Drops aborted-index entries whose records are all before their partition's log start (retention, DeleteRecords). */
  prune(): void {
    for (const [k, list] of this.abortedIndex) {
      const cut = k.indexOf('\0');
      const topic = k.slice(cut + 1);
      const partition = Number(k.slice(0, cut));
      const range = this.ctx.streams.partitionRange(topic, partition);
      if (!range) continue;
      const gone = list.findIndex((a) => a.lastOffset >= range.start);
      const n = gone < 0 ? list.length : gone;
      if (n === 0) continue;
      list.splice(0, n);
      this.ctx.gc.run(() => this.st.pruneAborted.run(topic, partition, range.start));
    }
  }

  // ---- readers ---------------------------------------------------------------------

  /** A partition's view for read_committed fetches, given its end (high watermark). */
  committedView(topic: string, partition: number, end: number): CommittedView {
    const k = key(topic, partition);
    let lso = end;
    const open = this.open.get(k);
    if (open) for (const first of open.values()) if (first < lso) lso = first;
    const list = this.abortedIndex.get(k);
    return {
      lso,
      aborted: (from, to) => {
        if (!list || list.length === 0) return [];
        const out: AbortedTxn[] = [];
        // Markers are in offset order: skip those before `from`.
        let lo = 0;
        let hi = list.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (list[mid]!.lastOffset < from) lo = mid + 1;
          else hi = mid;
        }
        for (let i = lo; i < list.length; i++) if (list[i]!.firstOffset < to) out.push(list[i]!);
        return out;
      },
    };
  }

  /** The partitions (`partition\0topic`) a group has offsets for held in an open transaction (OffsetFetch's requireStable). */
  pendingOffsets(groupId: string): Set<string> {
    const out = new Set<string>();
    for (const t of this.txns.values()) {
      if (t.state !== 'Ongoing') continue;
      for (const k of t.offsets.get(groupId)?.keys() ?? []) out.add(k);
    }
    return out;
  }

  describe(transactionalId: string): TxnDescription | null {
    const t = this.txns.get(transactionalId);
    if (!t) return null;
    return {
      transactionalId,
      producerId: t.producerId,
      epoch: t.epoch,
      timeoutMs: t.timeoutMs,
      state: t.state,
      startedAt: t.startedAt,
      partitions: [...t.partitions.values()].map((p) => ({ topic: p.topic, partition: p.partition })),
    };
  }

  list(): TxnDescription[] {
    return [...this.txns.keys()].sort().map((id) => this.describe(id)!);
  }

  // ---- inside ----------------------------------------------------------------------

  private check(transactionalId: string, producerId: bigint, epoch: number): Txn | { error: TxnError } {
    const t = this.txns.get(transactionalId);
    if (!t || t.producerId !== producerId) return { error: 'INVALID_PRODUCER_ID_MAPPING' };
    if (epoch !== t.epoch) return { error: 'PRODUCER_FENCED' };
    return t;
  }

  private begin(t: Txn): void {
    if (t.state === 'Ongoing') return;
    t.state = 'Ongoing';
    t.startedAt = this.ctx.now();
    t.partitions.clear();
    t.groups.clear();
    t.offsets.clear();
    this.save(t);
  }

  private bump(t: Txn, newProducerId: () => bigint): void {
    if (t.epoch + 1 < EPOCH_MAX) {
      t.epoch++;
      return;
    }
    // The epoch is spent: a new producer id, from epoch 0, as Kafka's coordinator does.
    this.byProducer.delete(t.producerId);
    t.producerId = newProducerId();
    t.epoch = 0;
    this.byProducer.set(t.producerId, t);
  }

  private save(t: Txn): void {
    this.st.upsertTxn.run(t.transactionalId, t.producerId, t.epoch, t.timeoutMs, t.state, t.startedAt, this.ctx.now());
  }

  /**
   * Ends the open transaction: a marker in each of its partitions, the
   * aborted index, the held offsets applied (commit) or dropped. `fence`
   * bumps the epoch first (a timeout or restart: the producer may not go on).
   */
  private finish(t: Txn, commit: boolean, fence: boolean): void {
    const now = this.ctx.now();
    const exists = (topic: string, partition: number) => this.ctx.streams.partitionRange(topic, partition) !== null;
    this.ctx.gc.run(() => {
      if (fence && t.epoch + 1 < EPOCH_MAX) t.epoch++;
      for (const p of t.partitions.values()) {
        const k = key(p.topic, p.partition);
        this.open.get(k)?.delete(t.transactionalId);
        if (this.open.get(k)?.size === 0) this.open.delete(k);
        if (!exists(p.topic, p.partition)) continue;
        // Records fetches encode from rows, which do not say which producer wrote them (appended): the aborted ones go.
        if (!commit && p.ranges.length > 0) this.ctx.streams.deleteRecordRanges(p.topic, p.partition, p.ranges);
        const marker = this.ctx.streams.appendControl(p.topic, p.partition, markerBatch(t.producerId, t.epoch, commit, now));
        if (!commit && p.first !== null) {
          this.indexOf(p.topic, p.partition).push({ producerId: t.producerId, firstOffset: p.first, lastOffset: marker });
          this.st.insertAborted.run(p.topic, p.partition, marker, t.producerId, p.first);
        }
      }
      if (commit) {
        for (const [groupId, held] of t.offsets) {
          const offsets = [...held.values()].filter((o) => exists(o.topic, o.partition));
          if (offsets.length === 0) continue;
          try {
            this.ctx.streams.commitOffsets(groupId, offsets).catch(() => undefined);
          } catch (error) {
            // A group id the store refuses: the offsets are dropped, the markers stand.
            this.ctx.log?.('kafka transaction offsets not applied', { transactionalId: t.transactionalId, groupId, error: (error as Error).message });
          }
        }
      }
      t.state = commit ? 'CompleteCommit' : 'CompleteAbort';
      t.startedAt = -1;
      t.partitions.clear();
      t.groups.clear();
      t.offsets.clear();
      this.st.deletePartitions.run(t.transactionalId);
      this.save(t);
    });
    this.ctx.changed();
  }

  private indexOf(topic: string, partition: number): AbortedTxn[] {
    const k = key(topic, partition);
    let list = this.abortedIndex.get(k);
    if (!list) this.abortedIndex.set(k, (list = []));
    return list;
  }
}
