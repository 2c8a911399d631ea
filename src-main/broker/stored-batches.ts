/**
 * Record batches kept as Kafka clients produced them, beside the records.
 *
 * A batch that arrives over the Kafka listener is stored once as its bytes
 * (compressed or not), with only its base offset and leader epoch set, which
 * its CRC does not cover; its records are also stored one row each, so that
 * browsing, filters, re-drives and the app's own consumers read them like any
 * other. A fetch sends the stored bytes as they are, never encoding them
 * again; records produced any other way have no stored batch and are encoded
 * from their rows.
 *
 * A stored batch stays only while every record it holds is there: deleting
 * before an offset (retention, DeleteRecords) drops the batches that end
 * before it (a batch that straddles the new start still holds readable
 * records, and Kafka clients skip those before the offset they asked for),
 * and compaction, which removes records from the middle, drops the
 * partition's stored batches (its fetches are then encoded from the rows)
 * but its control batches: Kafka transaction markers (transactions.ts) are
 * kept only here, with no row, and keep their offsets.
 *
 * Rows use the records' id scheme: id = pid * 2^36 + the batch's first
 * offset; `last` is the id of its last record.
 */
import type { SqliteDatabase } from '../storage/database.js';
import { SEQ_SPAN } from '../storage/migrations.js';
import { prepareStatements } from '../storage/statements.js';

/** A stored batch's place: its first and last offsets and its size in bytes. */
export interface StoredBatchInfo {
  base: number;
  last: number;
  size: number;
}

/** Rows asked for at once when planning a read. */
const PLAN_ROWS = 256;

export class StoredBatches {
  private readonly st;
  /** Partitions (pids) known to hold no stored batch, so that their reads skip the lookup. */
  private readonly none = new Set<number>();

  constructor(db: SqliteDatabase) {
    this.st = prepareStatements(db, {
      insert: 'INSERT OR REPLACE INTO record_batches (id, last, bytes) VALUES (?, ?, ?)',
      containing: 'SELECT id, last, length(bytes) AS size FROM record_batches WHERE id <= ? AND id >= ? ORDER BY id DESC LIMIT 1',
      after: 'SELECT id, last, length(bytes) AS size FROM record_batches WHERE id > ? AND id < ? ORDER BY id LIMIT ?',
      bytes: 'SELECT bytes FROM record_batches WHERE id >= ? AND id <= ? ORDER BY id',
      dropBefore: 'DELETE FROM record_batches WHERE id >= ? AND id < ? AND last < ?',
      dropRange: 'DELETE FROM record_batches WHERE id >= ? AND id < ?',
      // Not control batches: their attributes' low byte (the 23rd) has bit 0x20, a high hex digit of 2, 3, 6 or 7.
      dropData: "DELETE FROM record_batches WHERE id >= ? AND id < ? AND substr(hex(substr(bytes, 23, 1)), 1, 1) NOT IN ('2', '3', '6', '7')",
      any: 'SELECT 1 FROM record_batches WHERE id >= ? AND id < ? LIMIT 1',
    });
    this.st.bytes.pluck(true);
  }

  /**
   * Stores a batch whose records were just appended at offsets
   * `base`…`base + count - 1`. Inside the group commit, with the records.
   * The bytes' base offset and leader epoch are set here.
   */
  insert(pid: number, base: number, count: number, bytes: Buffer): void {
    bytes.writeBigInt64BE(BigInt(base), 0);
    bytes.writeInt32BE(0, 12);
    this.st.insert.run(pid * SEQ_SPAN + base, pid * SEQ_SPAN + base + count - 1, bytes);
    this.none.delete(pid);
  }

  /** Drops the batches whose records all come before `offset` (inside the group commit). */
  dropBefore(pid: number, offset: number): void {
    if (this.none.has(pid)) return;
    this.st.dropBefore.run(pid * SEQ_SPAN, pid * SEQ_SPAN + offset, pid * SEQ_SPAN + offset);
  }

  /**
   * Drops every stored batch of a partition (inside the group commit); with
   * `keepControl`, all but its control batches (transaction markers, which
   * have no rows to be read from instead).
   */
  dropPartition(pid: number, keepControl = false): void {
    if (this.none.has(pid)) return;
    if (!keepControl) {
      this.st.dropRange.run(pid * SEQ_SPAN, (pid + 1) * SEQ_SPAN);
      this.none.add(pid);
      return;
    }
    this.st.dropData.run(pid * SEQ_SPAN, (pid + 1) * SEQ_SPAN);
    if (!this.st.any.get(pid * SEQ_SPAN, (pid + 1) * SEQ_SPAN)) this.none.add(pid);
  }

  /**
   * The stored batches from the one holding `offset` (or the first after it)
   * on, in order, up to `end` (exclusive) and at most `rows` of them.
   */
  plan(pid: number, offset: number, end: number, rows = PLAN_ROWS): StoredBatchInfo[] {
    if (this.none.has(pid)) return [];
    const lo = pid * SEQ_SPAN;
    const hi = lo + end;
    const out: StoredBatchInfo[] = [];
    const at = this.st.containing.get(lo + offset, lo) as { id: number; last: number; size: number } | undefined;
    if (at && at.last >= lo + offset) out.push({ base: at.id - lo, last: at.last - lo, size: at.size });
    const from = out.length ? at!.id : lo + offset - 1;
    for (const r of this.st.after.all(Math.max(from, lo - 1), hi, rows - out.length) as Array<{ id: number; last: number; size: number }>) {
      out.push({ base: r.id - lo, last: r.last - lo, size: r.size });
    }
    if (out.length === 0 && !this.st.any.get(lo, lo + SEQ_SPAN)) this.none.add(pid);
    return out;
  }

  /** The bytes of the stored batches whose first offsets are `firstBase`…`lastBase`, in order. */
  bytes(pid: number, firstBase: number, lastBase: number): Buffer[] {
    return this.st.bytes.all(pid * SEQ_SPAN + firstBase, pid * SEQ_SPAN + lastBase) as Buffer[];
  }
}
