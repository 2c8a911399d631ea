/**
 * Log compaction for topics with cleanup.policy=compact (or compact,delete),
 * as Kafka's log cleaner does it: the cleanable part of a partition keeps the
 * latest record of each key, and a tombstone (a record with a null value) is
 * dropped once delete.retention.ms has passed since a compaction pass first
 * went over it (KIP-534's delete horizon). Offsets never change: removed
 * records leave gaps, which fetches and browsing step over; the log start
 * offset stays where it was.
 *
 * The head. Kafka never compacts its active segment, nor records newer than
 * min.compaction.lag.ms. Records here are rows, not segment files, so the
 * head is:
 *   - the records written after a pass began (a pass takes the log end when
 *     it starts, as if the segment rolled then), and
 *   - from the first record whose timestamp is within min.compaction.lag.ms
 *     onwards, and
 *   - always the partition's last record, so that the log end offset is held
 *     by a record and a consumer positioned before it always has something to
 *     read (an expired tombstone at the very end waits for the next write).
 *
 * A pass runs in two phases, a bounded number of rows per engine tick so the
 * event loop is never held for long: `map` reads the dirty part (after what
 * the last pass cleaned) and remembers each key's latest offset; `clean`
 * reads from the log start to the pass's end and deletes the records a later
 * one of the same key supersedes, expired tombstones, and records without a
 * key (Kafka's cleaner drops those too). A partition is picked when the
 * dirty share of its bytes reaches the topic's min.cleanable.dirty.ratio
 * (Kafka's default: half), or when a tombstone it kept has reached its delete
 * horizon.
 *
 * What a pass has learned lives in memory: after a restart every compacted
 * partition gets one full pass again, and tombstones wait one more
 * delete.retention.ms (later, never earlier).
 */
import { createHash } from 'node:crypto';
import type { SqliteDatabase } from '../storage/database.js';
import type { GroupCommit } from '../storage/group-commit.js';
import { SEQ_SPAN } from '../storage/migrations.js';
import { prepareStatements } from '../storage/statements.js';

/** Kafka's delete.retention.ms default: one day. */
export const DEFAULT_DELETE_RETENTION_MS = 86_400_000;
/** Kafka's min.cleanable.dirty.ratio default. */
export const DEFAULT_DIRTY_RATIO = 0.5;
/** Rows read (and at most deleted) per engine tick, over all partitions. */
export const COMPACTION_ROWS_PER_TICK = 4000;
/** Distinct keys one pass remembers; past it the pass ends where it stopped (Kafka's dedupe buffer). */
const MAX_KEYS = 1_000_000;
/** Delete horizons remembered per partition; merging older ones only ever delays a tombstone's removal. */
const MAX_HORIZONS = 64;

export interface CompactablePartition {
  pid: number;
  partition: number;
  start: number;
  next: number;
  bytes: number;
  dirty: boolean;
}

export interface CompactableTopic {
  name: string;
  partitions: CompactablePartition[];
  /** The topic's cleanup.policy includes compact. */
  compact: boolean;
  /** null: 0. */
  minCompactionLagMs: number | null;
  /** null: DEFAULT_DELETE_RETENTION_MS. */
  deleteRetentionMs: number | null;
  /** null: DEFAULT_DIRTY_RATIO. */
  minCleanableDirtyRatio: number | null;
}

/** What compaction remembers of a partition between passes. */
interface Cleaned {
  /** Offsets below this were covered by a finished pass. */
  upto: number;
  /** Bytes those offsets held when it finished. */
  bytes: number;
  /** No pass before this time (the dirty records were all within min.compaction.lag.ms). */
  notBefore: number;
  /** Earliest time a kept tombstone may go; Infinity when none is kept. */
  tombstoneDue: number;
  /** A due tombstone kept because it was the last record: no pass for it until something follows it. */
  heldLast: number;
  /** Passes as [end offset, start time], by end: a tombstone's horizon is the first pass that covered it. */
  horizons: Array<{ end: number; at: number }>;
}

interface Pass {
  topic: CompactableTopic;
  p: CompactablePartition;
  phase: 'map' | 'clean';
  /** Exclusive end of the cleanable range (the head starts here). */
  end: number;
  pos: number;
  startedAt: number;
  latest: Map<string, number>;
  keptBytes: number;
  tombstoneDue: number;
  /** A due tombstone kept because it was the partition's last record. */
  heldLast: number;
  removed: number;
}

interface KeyRow {
  id: number;
  ts: number;
  key: Buffer | null;
  tomb: number;
  size: number;
}

export interface CompactionStats {
  passes: number;
  removed: number;
}

function keyOf(key: Buffer): string {
  // Short keys are their own bytes; long ones a digest (Kafka's offset map keeps an MD5 of each key).
  return key.length <= 40 ? 'k' + key.toString('latin1') : 'h' + createHash('sha256').update(key).digest('base64');
}

export class Compactor {
  private readonly st;
  private readonly cleaned = new WeakMap<CompactablePartition, Cleaned>();
  private pass: Pass | null = null;
  private cursor = 0;
  readonly stats: CompactionStats = { passes: 0, removed: 0 };

  constructor(
    db: SqliteDatabase,
    private readonly gc: GroupCommit,
    /** Record rows were deleted from a partition (caches of its records are stale). */
    private readonly onRemoved: (p: CompactablePartition) => void,
  ) {
    this.st = prepareStatements(db, {
      scanKeys: 'SELECT id, ts, key, value IS NULL AS tomb, size FROM records WHERE id >= ? AND id < ? ORDER BY id LIMIT ?',
      deleteRecord: 'DELETE FROM records WHERE id = ?',
    });
  }

  /** Forgets what it knew of a partition (its records were deleted or replaced wholesale). */
  forget(p: CompactablePartition): void {
    this.cleaned.delete(p);
    if (this.pass?.p === p) this.pass = null;
  }

  /**
   * Does up to `budget` rows of compaction work. `topics` are the live
   * topics; a pass whose topic was deleted or stopped compacting is dropped.
   */
  step(topics: CompactableTopic[], now: number, budget = COMPACTION_ROWS_PER_TICK): void {
    let left = budget;
    while (left > 0) {
      if (this.pass && !this.valid(this.pass, topics)) this.pass = null;
      if (!this.pass) {
        this.pass = this.pick(topics, now);
        if (!this.pass) return;
      }
      left -= this.pass.phase === 'map' ? this.mapStep(this.pass, now, left) : this.cleanStep(this.pass, now, left);
    }
  }

  private valid(pass: Pass, topics: CompactableTopic[]): boolean {
    return pass.topic.compact && topics.includes(pass.topic) && pass.topic.partitions[pass.p.partition] === pass.p;
  }

  private state(p: CompactablePartition): Cleaned {
    let c = this.cleaned.get(p);
    if (!c) {
      c = { upto: p.start, bytes: 0, notBefore: 0, tombstoneDue: Infinity, heldLast: -1, horizons: [] };
      this.cleaned.set(p, c);
    }
    return c;
  }

  /** The next partition due a pass, round robin over compacted topics' partitions. */
  private pick(topics: CompactableTopic[], now: number): Pass | null {
    const all: Array<{ t: CompactableTopic; p: CompactablePartition }> = [];
    for (const t of topics) if (t.compact) for (const p of t.partitions) all.push({ t, p });
    for (let i = 0; i < all.length; i++) {
      const { t, p } = all[(this.cursor + i) % all.length]!;
      const c = this.state(p);
      if (c.upto < p.start) {
        // Retention or DeleteRecords removed what was cleaned.
        c.upto = p.start;
        c.bytes = 0;
      }
      const dirtyRecords = p.next > c.upto;
      const dirtyBytes = Math.max(0, p.bytes - c.bytes);
      const dirtyDue = dirtyRecords && now >= c.notBefore && (p.bytes === 0 || dirtyBytes / p.bytes >= (t.minCleanableDirtyRatio ?? DEFAULT_DIRTY_RATIO));
      const tombstonesDue = c.tombstoneDue <= now && c.heldLast !== p.next - 1;
      if (!dirtyDue && !tombstonesDue) continue;
      this.cursor = (this.cursor + i + 1) % all.length;
      return { topic: t, p, phase: 'map', end: p.next, pos: c.upto, startedAt: now, latest: new Map(), keptBytes: 0, tombstoneDue: Infinity, heldLast: -1, removed: 0 };
    }
    return null;
  }

  private rows(p: CompactablePartition, from: number, to: number, n: number): KeyRow[] {
    return this.st.scanKeys.all(p.pid * SEQ_SPAN + from, p.pid * SEQ_SPAN + to, n) as KeyRow[];
  }

  /** Reads dirty records into the key map; returns the rows read. */
  private mapStep(pass: Pass, now: number, budget: number): number {
    const { p, topic } = pass;
    const c = this.state(p);
    const lag = topic.minCompactionLagMs ?? 0;
    const rows = this.rows(p, Math.max(pass.pos, p.start), pass.end, budget);
    let done = rows.length < budget;
    for (const r of rows) {
      const offset = r.id - p.pid * SEQ_SPAN;
      if (lag > 0 && r.ts > now - lag) {
        // Within min.compaction.lag.ms: the head starts here.
        pass.end = offset;
        c.notBefore = r.ts + lag;
        done = true;
        break;
      }
      if (r.key !== null) {
        if (pass.latest.size >= MAX_KEYS && !pass.latest.has(keyOf(r.key))) {
          pass.end = offset;
          done = true;
          break;
        }
        pass.latest.set(keyOf(r.key), offset);
      }
      pass.pos = offset + 1;
    }
    if (done) {
      if (pass.end <= c.upto && c.tombstoneDue > now) {
        // Nothing cleanable yet.
        this.pass = null;
        return Math.max(1, rows.length);
      }
      const h = c.horizons;
      if (h.length === 0 || h[h.length - 1]!.end < pass.end) h.push({ end: pass.end, at: pass.startedAt });
      while (h.length > MAX_HORIZONS) h.splice(0, 1);
      pass.phase = 'clean';
      pass.pos = p.start;
    }
    return Math.max(1, rows.length);
  }

  /** The time a tombstone at `offset` may be removed. */
  private tombstoneDue(c: Cleaned, offset: number, retention: number): number {
    for (const h of c.horizons) if (offset < h.end) return h.at + retention;
    return Infinity;
  }

  /** Deletes superseded records, expired tombstones and keyless records in the cleanable range; returns the rows read. */
  private cleanStep(pass: Pass, now: number, budget: number): number {
    const { p, topic } = pass;
    const c = this.state(p);
    const from = Math.max(pass.pos, p.start);
    const rows = this.rows(p, from, pass.end, budget);
    const drop: KeyRow[] = [];
    for (const r of rows) {
      const offset = r.id - p.pid * SEQ_SPAN;
      pass.pos = offset + 1;
      let remove = false;
      if (r.key === null) remove = true;
      else {
        const latest = pass.latest.get(keyOf(r.key));
        remove = latest !== undefined && latest > offset;
      }
      if (!remove && r.tomb) {
        const due = this.tombstoneDue(c, offset, topic.deleteRetentionMs ?? DEFAULT_DELETE_RETENTION_MS);
        if (due <= now) remove = true;
        else pass.tombstoneDue = Math.min(pass.tombstoneDue, due);
      }
      // The partition's last record always stays (a tombstone there goes once something follows it).
      if (remove && offset === p.next - 1) {
        remove = false;
        if (r.tomb) {
          pass.tombstoneDue = Math.min(pass.tombstoneDue, now);
          pass.heldLast = offset;
        }
      }
      if (remove) drop.push(r);
      else pass.keptBytes += r.size;
    }
    if (drop.length > 0) {
      this.gc.run(() => {
        for (const r of drop) this.st.deleteRecord.run(r.id);
      }, drop.length);
      for (const r of drop) p.bytes -= r.size;
      p.bytes = Math.max(0, p.bytes);
      p.dirty = true;
      pass.removed += drop.length;
      this.stats.removed += drop.length;
      this.onRemoved(p);
    }
    if (rows.length < budget) {
      // The pass is done: everything before its end is clean.
      c.upto = Math.max(c.upto, pass.end);
      c.bytes = pass.keptBytes;
      c.tombstoneDue = pass.tombstoneDue;
      c.heldLast = pass.heldLast;
      this.stats.passes++;
      this.pass = null;
    }
    return Math.max(1, rows.length);
  }
}
