/**
 * Record batches kept as Kafka clients produced them, beside the records.
 *
 * A batch that arrives over the Kafka listener is stored once as its bytes
 * (compressed or not), with only its base offset and leader epoch set, which
 * its CRC does not cover. Its records also get a row each, so that offsets,
 * times, sizes and keys are where every other record's are, but those rows
 * hold no value or headers: they point at the batch (the `batch` column), and
 * reading one (browsing, filters, re-drives, the app's own consumers) reads
 * it from the batch, decoded once and kept for the next rows (a few batches
 * at a time). A value column holds NULL for a record whose value is null (a
 * tombstone, as compaction looks for) and an empty blob otherwise. So the
 * bytes are written once. A fetch sends the stored bytes as they are, never
 * encoding them again; records produced any other way have no stored batch
 * and are encoded from their rows.
 *
 * A stored batch stays only while every record it holds is there: deleting
 * before an offset (retention, DeleteRecords) drops the batches that end
 * before it (a batch that straddles the new start still holds readable
 * records, and Kafka clients skip those before the offset they asked for),
 * and compaction, which removes records from the middle, has no stored
 * batches of records to deal with: a topic's rows are given their values
 * and its batches dropped when its cleanup.policy comes to include compact
 * (materialize), and a compacted topic stores none. Control batches (Kafka
 * transaction markers, transactions.ts) are kept only here, with no row, and
 * keep their offsets through all of it.
 *
 * Rows use the records' id scheme: id = pid * 2^36 + the batch's first
 * offset; `last` is the id of its last record.
 */
import { readHeader, readRecords, type BatchRecord } from '../ground/kafka-batch.js';
import type { SqliteDatabase } from '../storage/database.js';
import { SEQ_SPAN } from '../storage/migrations.js';
import { prepareStatements } from '../storage/statements.js';
import { encodeJson, StoredDataError } from './codec.js';

/** A stored batch's place: its first and last offsets and its size in bytes. */
export interface StoredBatchInfo {
  base: number;
  last: number;
  size: number;
}

/** Rows asked for at once when planning a read. */
const PLAN_ROWS = 256;
/** Decoded batches kept for the rows that follow. */
const DECODED_BATCHES = 16;
/** A stored batch decompresses to at most this (it was read once already, when produced). */
const MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024;

export class StoredBatches {
  private readonly st;
  /** Partitions (pids) known to hold no stored batch, so that their reads skip the lookup. */
  private readonly none = new Set<number>();
  /** Decoded batches by id, most recently used last. */
  private readonly decoded = new Map<number, BatchRecord[]>();

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
      one: 'SELECT bytes FROM record_batches WHERE id = ?',
      ofPartition: 'SELECT id, bytes FROM record_batches WHERE id >= ? AND id < ? ORDER BY id LIMIT 64',
      fill: 'UPDATE records SET value = ?, headers = ?, batch = NULL WHERE id = ? AND batch = ?',
    });
    this.st.bytes.pluck(true);
    this.st.one.pluck(true);
  }

  /**
   * The key, value and headers of the record at `offset` of the partition,
   * whose row points at the batch `batchId`.
   */
  record(pid: number, batchId: number, offset: number): BatchRecord {
    let records = this.decoded.get(batchId);
    if (records) {
      this.decoded.delete(batchId);
      this.decoded.set(batchId, records);
    } else {
      const bytes = this.st.one.get(batchId) as Buffer | undefined;
      if (!bytes) throw new StoredDataError(`the record batch at offset ${batchId - pid * SEQ_SPAN} is missing`);
      records = readRecords(bytes, readHeader(bytes), MAX_DECOMPRESSED_BYTES);
      this.decoded.set(batchId, records);
      if (this.decoded.size > DECODED_BATCHES) this.decoded.delete(this.decoded.keys().next().value!);
    }
    const r = records[offset - (batchId - pid * SEQ_SPAN)];
    if (!r) throw new StoredDataError(`the record batch at offset ${batchId - pid * SEQ_SPAN} does not hold offset ${offset}`);
    return r;
  }

  /**
   * Gives the partition's rows that point at stored batches their values
   * and headers, then drops the batches but its control batches (inside the
   * group commit): for a topic that compaction is to clean, which removes
   * records from inside batches. Returns the rows filled.
   */
  materialize(pid: number): number {
    if (this.none.has(pid)) return 0;
    let filled = 0;
    const lo = pid * SEQ_SPAN;
    const hi = (pid + 1) * SEQ_SPAN;
    for (let from = lo; ; ) {
      const batches = this.st.ofPartition.all(from, hi) as Array<{ id: number; bytes: Buffer }>;
      if (batches.length === 0) break;
      for (const b of batches) {
        readRecords(b.bytes, readHeader(b.bytes), MAX_DECOMPRESSED_BYTES).forEach((r, i) => {
          const headers = r.headers.length > 0 ? encodeJson(r.headers) : null;
          filled += this.st.fill.run(r.value, headers, b.id + i, b.id).changes;
        });
        from = b.id + 1;
      }
    }
    this.dropPartition(pid, true);
    return filled;
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
    this.decoded.clear();
    this.st.dropBefore.run(pid * SEQ_SPAN, pid * SEQ_SPAN + offset, pid * SEQ_SPAN + offset);
  }

  /**
   * Drops every stored batch of a partition (inside the group commit); with
   * `keepControl`, all but its control batches (transaction markers, which
   * have no rows to be read from instead).
   */
  dropPartition(pid: number, keepControl = false): void {
    this.decoded.clear();
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
