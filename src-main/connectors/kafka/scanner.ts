/**
 * Browsing a topic: one partition in offset order, or all of them merged in
 * timestamp order, from the earliest offset, the latest, an offset, a time
 * or where the previous page stopped. Filters run here, in the core, on the
 * raw bytes; a page ends when it holds `limit` matches, when the scan budget
 * (time) is spent, or at the end of the topic as it was when the page began.
 * Nothing is kept between pages but the cursor, so however far a scan goes,
 * memory holds one fetch per partition plus the page.
 */
import { randomUUID } from 'node:crypto';
import { compileMessageFilter, type CompiledFilter, type FilterSubject } from '../../ground/filter.js';
import { ApiError } from '../../contract/errors.js';
import type { MessageFilter } from '../../contract/operations.js';
import type { BrowsePage } from '../../contract/types.js';
import type { FetchedPartition, Fetcher } from './fetcher.js';
import { headerTable, toView, type KafkaRecordView, type RawRecord } from './records.js';
import { sleep } from '../../jobs/pace.js';

/** How often, and how patiently, a read asks again while a new leader's high watermark catches up (about 5 s in all). */
const HW_RETRIES = 9;
const HW_RETRY_MS = 100;

/** Bytes asked of one partition per fetch; merged scans share a budget across partitions. */
const CHUNK_BYTES = 8 * 1024 * 1024;
const MERGED_TOTAL_BYTES = 32 * 1024 * 1024;
const MIN_CHUNK_BYTES = 256 * 1024;
const MAX_CHUNK_BYTES = 64 * 1024 * 1024;
export const DEFAULT_BUDGET_MS = 2_000;

/**
 * A forward reader of one partition between two offsets, one fetch ahead of
 * its consumer so the broker's round trip overlaps the filtering.
 */
export class PartitionStream {
  private buffer: RawRecord[] = [];
  private pos = 0;
  /** Where the next fetch starts: past everything already buffered. */
  private fetchFrom: number;
  private pending: Promise<FetchedPartition> | null = null;
  private done = false;

  constructor(
    private readonly fetcher: Fetcher,
    readonly topic: string,
    readonly partition: number,
    start: number,
    /** Exclusive: records at or past this offset are not read. */
    public end: number,
    private chunkBytes = CHUNK_BYTES,
    private readonly prefetch = true,
    /** The size of the reads after the first, when they may be larger (the first one is small so that work on it starts early). */
    private readonly laterChunkBytes = chunkBytes,
  ) {
    this.fetchFrom = start;
    if (start >= end) this.done = true;
  }

  /** The offset of the next record this stream hands out (or would, once more is written). */
  position(): number {
    return this.pos < this.buffer.length ? this.buffer[this.pos]!.offset : this.fetchFrom;
  }

  get exhausted(): boolean {
    return this.pos >= this.buffer.length && this.done;
  }

  private request(from: number, bytes = this.chunkBytes): Promise<FetchedPartition> {
    return this.fetcher.fetch(this.topic, [{ partition: this.partition, offset: from, maxBytes: bytes }], { maxBytes: Math.max(bytes, CHUNK_BYTES) }).then((m) => {
      const r = m.get(this.partition);
      if (!r) throw new ApiError('UNAVAILABLE', `the broker did not answer for ${this.topic}[${this.partition}]`);
      return r;
    });
  }

  /** Skips ahead (never back) to `offset`; buffered records before it are dropped. */
  seek(offset: number): void {
    if (offset <= this.position()) return;
    while (this.pos < this.buffer.length && this.buffer[this.pos]!.offset < offset) this.pos++;
    if (this.pos >= this.buffer.length && offset > this.fetchFrom) {
      this.fetchFrom = offset;
      this.pending = null;
      if (offset >= this.end) this.done = true;
    }
  }

  /** The next record without taking it; null at the end. */
  async peek(): Promise<RawRecord | null> {
    while (this.pos >= this.buffer.length) {
      if (this.done) return null;
      await this.fill();
    }
    return this.buffer[this.pos]!;
  }

  /** The next record if it is already buffered (no await on the hot path), else undefined. */
  buffered(): RawRecord | undefined {
    return this.pos < this.buffer.length ? this.buffer[this.pos] : undefined;
  }

  take(): RawRecord {
    return this.buffer[this.pos++]!;
  }

  private async fill(): Promise<void> {
    const from = this.fetchFrom;
    let got = await (this.pending ?? this.request(from));
    this.pending = null;
    // A leader elected a moment ago (a broker stopped or came back) can report a high watermark
    // below the end ListOffsets gave when the read began, until its followers have told it how
    // far they are: what lies between is there, only not yet visible. Ask again for a while
    // rather than end the read early and call it complete.
    for (let attempt = 1; attempt <= HW_RETRIES && !got.outOfRange && got.highWatermark < this.end && got.next >= got.highWatermark; attempt++) {
      await sleep(HW_RETRY_MS * attempt);
      got = await this.request(from);
    }
    if (got.outOfRange) {
      // Retention removed what we were about to read: continue at the log start.
      if (from < got.logStart) {
        this.fetchFrom = got.logStart;
        if (this.fetchFrom >= this.end) this.done = true;
        return;
      }
      this.done = true;
      return;
    }
    const visibleEnd = Math.min(this.end, got.lastStable);
    if (got.records.length === 0 && got.next <= from && from < visibleEnd) {
      // A batch bigger than what we asked for: ask again, alone, for more.
      let bytes = this.chunkBytes;
      while (got.records.length === 0 && got.next <= from && bytes < MAX_CHUNK_BYTES) {
        bytes *= 4;
        got = await this.request(from, bytes);
      }
      if (got.records.length === 0 && got.next <= from) {
        throw new ApiError('INTERNAL', `${this.topic}[${this.partition}] returned no records at offset ${from} although its end is ${visibleEnd}`);
      }
    }
    this.chunkBytes = this.laterChunkBytes;
    const records = got.records;
    let n = records.length;
    while (n > 0 && records[n - 1]!.offset >= this.end) n--;
    this.buffer = n === records.length ? records : records.slice(0, n);
    this.pos = 0;
    this.fetchFrom = Math.min(got.next, Math.max(this.end, from));
    if (this.fetchFrom >= visibleEnd || from >= got.highWatermark) {
      this.done = true;
      if (visibleEnd < this.end) this.end = visibleEnd;
    } else if (this.prefetch) {
      const ahead = this.request(this.fetchFrom);
      // A prefetch nobody waits for must not crash the process when it fails.
      ahead.catch(() => {});
      this.pending = ahead;
    }
  }
}

/** The filter every connection shares, on Kafka records. */
export function compileRecordFilter(f: MessageFilter): CompiledFilter | null {
  return compileMessageFilter(f, 'topic');
}

const NUL = 0;

/** What the shared filter looks at, made lazily: most records are rejected on the body alone. */
export function subject(r: RawRecord): FilterSubject {
  return {
    body: r.value,
    get text() {
      return r.value !== null && r.value.indexOf(NUL) < 0;
    },
    properties: () => ({}),
    headers: () => headerTable(r.headers),
    key: r.key,
    time: r.timestamp,
  };
}

export function matches(filter: CompiledFilter | null, r: RawRecord): boolean {
  return filter === null || filter.all(subject(r));
}

/* ---------- cursors ---------- */

interface CursorState {
  /** Topic the positions belong to. */
  t: string;
  /** The partition browsed, or null for all merged. */
  p: number | null;
  /** Next offset per partition (index = partition; -1 = not browsed). */
  o: number[];
}

const CURSOR_MAX = 1_900;
/** Cursors too long for the contract's 2,000 characters are kept here and passed by id. */
const storedCursors = new Map<string, CursorState>();
const STORED_MAX = 2_000;

export function encodeCursor(state: CursorState): string {
  const inline = 'k1.' + Buffer.from(JSON.stringify(state)).toString('base64url');
  if (inline.length <= CURSOR_MAX) return inline;
  const id = randomUUID();
  storedCursors.set(id, state);
  if (storedCursors.size > STORED_MAX) storedCursors.delete(storedCursors.keys().next().value!);
  return `ks.${id}`;
}

export function decodeCursor(cursor: string, topic: string, partition: number | null): CursorState {
  let state: CursorState | undefined;
  try {
    if (cursor.startsWith('k1.')) state = JSON.parse(Buffer.from(cursor.slice(3), 'base64url').toString('utf8')) as CursorState;
    else if (cursor.startsWith('ks.')) state = storedCursors.get(cursor.slice(3));
  } catch {
    state = undefined;
  }
  if (!state || typeof state.t !== 'string' || !Array.isArray(state.o)) {
    throw new ApiError('INVALID_ARGUMENT', 'cursor is not one this connection gave out (or it expired): start the browse again', 'cursor');
  }
  if (state.t !== topic || state.p !== partition) {
    throw new ApiError('INVALID_ARGUMENT', `cursor belongs to ${state.t}${state.p === null ? '' : `[${state.p}]`}, not to this browse`, 'cursor');
  }
  return state;
}

/* ---------- browse ---------- */

export interface BrowseOptions {
  topic: string;
  partition?: number | undefined;
  offset?: number | undefined;
  timestamp?: number | undefined;
  /** Where to start when no offset, timestamp or cursor says: the log start, or `limit` records before the end. */
  seek?: 'earliest' | 'latest' | undefined;
  cursor?: string | undefined;
  limit: number;
  filter: MessageFilter;
  budgetMs?: number;
  /** Stop after this many records scanned in one page (tests, benchmarks). */
  maxScanned?: number;
  signal?: AbortSignal;
}

export interface RawPage {
  records: RawRecord[];
  nextCursor: string | null;
  scanned: number;
  matched: number;
}

/** A binary min-heap of streams by their head record's (timestamp, partition). */
class Heap {
  private items: Array<{ s: PartitionStream; r: RawRecord }> = [];
  get size(): number {
    return this.items.length;
  }
  private less(a: { r: RawRecord }, b: { r: RawRecord }): boolean {
    return a.r.timestamp < b.r.timestamp || (a.r.timestamp === b.r.timestamp && a.r.partition < b.r.partition);
  }
  push(item: { s: PartitionStream; r: RawRecord }): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(a[i]!, a[parent]!)) break;
      [a[i], a[parent]] = [a[parent]!, a[i]!];
      i = parent;
    }
  }
  pop(): { s: PartitionStream; r: RawRecord } | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

export async function browseRaw(fetcher: Fetcher, o: BrowseOptions): Promise<RawPage> {
  const filter = compileRecordFilter(o.filter);
  const meta = await fetcher.topic(o.topic);
  const count = meta.partitions.length;
  if (o.partition !== undefined && (o.partition < 0 || o.partition >= count)) {
    throw new ApiError('NOT_FOUND', `topic "${o.topic}" has ${count} partition${count === 1 ? '' : 's'} (0–${count - 1}); there is no partition ${o.partition}`, 'partition');
  }
  const partitions = o.partition !== undefined ? [o.partition] : Array.from({ length: count }, (_, i) => i);
  const [lows, highs] = await Promise.all([fetcher.offsets(o.topic, partitions, -2), fetcher.offsets(o.topic, partitions, -1)]);
  let starts: Map<number, number>;
  if (o.cursor) {
    const state = decodeCursor(o.cursor, o.topic, o.partition ?? null);
    starts = new Map(partitions.map((p) => [p, Math.max(state.o[p] ?? -1, lows.get(p) ?? 0)]));
  } else if (o.offset !== undefined) {
    starts = new Map(partitions.map((p) => [p, Math.min(Math.max(o.offset!, lows.get(p) ?? 0), highs.get(p) ?? 0)]));
  } else if (o.timestamp !== undefined) {
    starts = await fetcher.offsets(o.topic, partitions, o.timestamp);
  } else if (o.seek === 'latest') {
    starts = new Map(partitions.map((p) => [p, Math.max(lows.get(p) ?? 0, (highs.get(p) ?? 0) - o.limit)]));
  } else {
    starts = lows;
  }

  const chunk = partitions.length === 1 ? CHUNK_BYTES : Math.max(MIN_CHUNK_BYTES, Math.min(CHUNK_BYTES, Math.floor(MERGED_TOTAL_BYTES / partitions.length)));
  const streams = partitions.map((p) => new PartitionStream(fetcher, o.topic, p, starts.get(p) ?? 0, highs.get(p) ?? 0, chunk));
  const budgetMs = o.budgetMs ?? DEFAULT_BUDGET_MS;
  const deadline = Date.now() + budgetMs;
  const maxScanned = o.maxScanned ?? Number.POSITIVE_INFINITY;
  const records: RawRecord[] = [];
  let scanned = 0;

  const outOfBudget = () => scanned >= maxScanned || Date.now() >= deadline || o.signal?.aborted === true;

  if (streams.length === 1) {
    const s = streams[0]!;
    for (;;) {
      let r = s.buffered();
      if (r === undefined) {
        const head = await s.peek();
        if (head === null) break;
        r = head;
      }
      s.take();
      scanned++;
      if (matches(filter, r)) {
        records.push(r);
        if (records.length >= o.limit) break;
      }
      // The clock is read once per thousand records.
      if ((scanned & 1023) === 0 && outOfBudget()) break;
    }
  } else {
    const heap = new Heap();
    const heads = await Promise.all(streams.map(async (s) => ({ s, r: await s.peek() })));
    for (const h of heads) if (h.r) heap.push({ s: h.s, r: h.r });
    while (heap.size > 0) {
      const top = heap.pop()!;
      top.s.take();
      scanned++;
      if (matches(filter, top.r)) {
        records.push(top.r);
        if (records.length >= o.limit) break;
      }
      const next = top.s.buffered() ?? (await top.s.peek());
      if (next) heap.push({ s: top.s, r: next });
      if ((scanned & 1023) === 0 && outOfBudget()) break;
    }
  }

  const exhausted = streams.every((s) => s.exhausted);
  const o2: number[] = new Array<number>(count).fill(-1);
  for (const s of streams) o2[s.partition] = s.position();
  return {
    records,
    nextCursor: exhausted ? null : encodeCursor({ t: o.topic, p: o.partition ?? null, o: o2 }),
    scanned,
    matched: records.length,
  };
}

export async function browse(fetcher: Fetcher, o: BrowseOptions, decorate?: (views: KafkaRecordView[], raws: RawRecord[]) => Promise<void>): Promise<BrowsePage<KafkaRecordView>> {
  const page = await browseRaw(fetcher, o);
  const views = page.records.map(toView);
  if (decorate) await decorate(views, page.records);
  return { messages: views, nextCursor: page.nextCursor, scanned: page.scanned, matched: page.matched };
}
