/**
 * Reads a queue or topic page by page for a virtualised list, so a list over a
 * million messages only ever holds the pages near the viewport.
 *
 * Two ways to read:
 * - positional (a queue without a filter, or one partition of a topic): the
 *   list has as many rows as the queue has messages, and the page holding row
 *   i is asked for by position/offset, so "jump to the end" is one request;
 * - scan (any filter, or a topic across partitions): the core filters and
 *   answers one page at a time with a cursor; rows are appended as they come
 *   and the counts of scanned and matched messages add up until the end or
 *   until the person stops.
 *
 * Where a system places records by ids of its own (a Redis stream entry id, a
 * Kinesis sequence number: capability `positions`), a topic is always scanned,
 * and a read may start at one of those ids.
 */
import { ref, shallowRef, triggerRef } from 'vue';
import type { MessageFilter } from '@contract/operations';
import type { MessageView, RecordView } from '@contract/types';
import { api, describeError } from '../api/client';
import { headersSummary, preview } from './body';

export interface Row {
  index: number;
  /** Stable id: the message id, or partition:offset for records. */
  id: string;
  pos: string;
  /** Messages: their priority property, if any. */
  prio: string;
  time: number;
  key: string;
  size: number;
  headers: string;
  preview: string;
  message?: MessageView;
  record?: RecordView;
}

export interface PagerTarget {
  connectionId: string;
  kind: 'queue' | 'topic';
  name: string;
  /** Topics: read one partition (positional) instead of all (scan). */
  partition?: number;
  /** RabbitMQ quorum queues with a delivery limit: the person accepted that a peek counts a delivery. */
  allowQuorumPeek?: boolean;
  /** RabbitMQ: search past the first messages a peek reaches, taking and handing back each one read. */
  scanAll?: boolean;
  /** Topics placed by the system's own ids (`RecordView.position`): read by cursor only, never by offset. */
  positions?: boolean;
  /** With `positions`: the first read starts at this id. */
  startAt?: string;
}

/** How far a read could go, as the system says (RabbitMQ answers these; others leave them out). */
export interface Coverage {
  /** Messages the queue held when the read began. */
  total?: number;
  /** Whether the read reached the end of the queue. */
  complete?: boolean;
  /** Messages from the head a read can reach without a full scan. */
  reachable?: number;
  /** What the read did to the queue (a full scan). */
  cost?: string;
}

export function messageRow(m: MessageView, index: number): Row {
  return {
    index,
    id: m.id,
    pos: m.position !== undefined ? String(m.position) : String(index),
    prio: m.properties.priority !== undefined && m.properties.priority !== null ? String(m.properties.priority) : '',
    time: m.enqueuedAt,
    key: m.routingKey,
    size: m.size,
    headers: headersSummary(m.properties.headers),
    preview: preview(m.body, m.bodyEncoding),
    message: m,
  };
}

export function recordRow(r: RecordView, index: number): Row {
  return {
    index,
    id: r.position !== undefined ? `${r.partition}:${r.position}` : `${r.partition}:${r.offset}`,
    // The system's own id where it has one: the offset of such a record is only its ordinal in this read.
    pos: r.position ?? `${r.partition}/${r.offset}`,
    prio: '',
    time: r.timestamp,
    key: r.key ?? '',
    size: r.size,
    headers: headersSummary(r.headers),
    preview: preview(r.value, r.valueEncoding),
    record: r,
  };
}

export function hasFilter(f: MessageFilter): boolean {
  return Object.values(f).some((v) => v !== undefined && v !== '');
}

/** Drops empty fields: the core treats a present-but-empty field as a filter. */
export function cleanFilter(f: MessageFilter): MessageFilter {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(f)) if (v !== undefined && v !== '') out[k] = v;
  return out as MessageFilter;
}

type Page = { messages: Row[]; nextCursor: string | null; scanned: number; matched: number } & Coverage;

export async function fetchPage(
  target: PagerTarget,
  opts: { limit: number; cursor?: string | null; position?: number; filter?: MessageFilter },
  startIndex: number,
): Promise<Page> {
  const filter = opts.filter ? cleanFilter(opts.filter) : {};
  if (target.kind === 'queue') {
    const page = await api.call('queues/messages', {
      connectionId: target.connectionId,
      queue: target.name,
      limit: opts.limit,
      ...(opts.cursor ? { cursor: opts.cursor } : {}),
      ...(opts.position !== undefined ? { position: opts.position } : {}),
      ...(target.allowQuorumPeek ? { allowQuorumPeek: true } : {}),
      ...(target.scanAll ? { scanAll: true } : {}),
      ...filter,
    });
    return { ...page, messages: page.messages.map((m, i) => messageRow(m, startIndex + i)) };
  }
  const page = await api.call('topics/messages', {
    connectionId: target.connectionId,
    topic: target.name,
    limit: opts.limit,
    ...(target.partition !== undefined ? { partition: target.partition } : {}),
    ...(opts.cursor ? { cursor: opts.cursor } : {}),
    ...(opts.position !== undefined && !target.positions ? { offset: opts.position } : {}),
    ...(target.positions && target.startAt && !opts.cursor ? { position: target.startAt } : {}),
    ...filter,
  });
  return { ...page, messages: page.messages.map((r, i) => recordRow(r, startIndex + i)) };
}

export function usePager() {
  const target = shallowRef<PagerTarget | null>(null);
  const mode = ref<'positional' | 'scan'>('positional');
  const pageSize = ref(500);
  const total = ref(0);
  /** First position/offset of the positional range (a queue's head, a partition's start). */
  let base = 0;
  const filter = shallowRef<MessageFilter>({});
  const pages = shallowRef(new Map<number, Row[]>());
  /** Bumped whenever a page arrives, for watchers (the Map itself stays the same object). */
  const version = ref(0);
  const scanRows = shallowRef<Row[]>([]);
  const nextCursor = ref<string | null>(null);
  const exhausted = ref(false);
  const scanned = ref(0);
  const matched = ref(0);
  const running = ref(false);
  const error = ref<string | null>(null);
  /** How far the reads went, from the last page that said (RabbitMQ's peek reaches only the head). */
  const coverage = shallowRef<Coverage>({});
  /** Positional rows past what a peek can reach are not listed: the queue's real count, when capped. */
  const cappedFrom = ref<number | null>(null);
  const loadingPages = new Set<number>();
  let stopRequested = false;
  let generation = 0;

  function rowAt(i: number): Row | undefined {
    if (mode.value === 'scan') return scanRows.value[i];
    const size = pageSize.value;
    return pages.value.get(Math.floor(i / size))?.[i % size];
  }

  function rowCount(): number {
    return mode.value === 'scan' ? scanRows.value.length : total.value;
  }

  /** Opens a target. `count` and `start` describe the positional range when known. */
  function note(page: Page) {
    if (page.total === undefined && page.complete === undefined && page.reachable === undefined && page.cost === undefined) return;
    coverage.value = { ...coverage.value, ...Object.fromEntries(Object.entries({ total: page.total, complete: page.complete, reachable: page.reachable, cost: page.cost }).filter(([, v]) => v !== undefined)) };
  }

  /** Rows that cannot be read (past what a peek reaches) are never listed as placeholders. */
  function cap(reachable: number | undefined) {
    if (reachable === undefined || mode.value !== 'positional' || total.value <= reachable) return;
    cappedFrom.value = total.value;
    total.value = reachable;
  }

  function open(t: PagerTarget, opts: { count: number; start: number; filter: MessageFilter; pageSize: number; head?: Row[]; coverage?: Coverage }) {
    generation++;
    target.value = t;
    filter.value = opts.filter;
    pageSize.value = Math.max(1, Math.floor(opts.pageSize));
    mode.value = hasFilter(opts.filter) || (t.kind === 'topic' && (t.partition === undefined || t.positions === true)) ? 'scan' : 'positional';
    total.value = opts.count;
    base = opts.start;
    pages.value = new Map();
    scanRows.value = [];
    nextCursor.value = null;
    exhausted.value = false;
    scanned.value = 0;
    matched.value = 0;
    error.value = null;
    coverage.value = opts.coverage ?? {};
    cappedFrom.value = null;
    cap(opts.coverage?.reachable);
    stopRequested = false;
    loadingPages.clear();
    if (mode.value === 'scan') void loadMore();
    else {
      if (opts.head?.length) pages.value.set(0, opts.head);
      void ensureRange(0, Math.min(total.value, 50));
    }
  }

  /** Rows page k holds when complete: a full page, or what is left at the end. */
  function expected(k: number): number {
    return Math.max(0, Math.min(pageSize.value, total.value - k * pageSize.value));
  }

  function evict(keepNear: number) {
    // Keep about 200k rows in memory whatever the page size.
    const maxPages = Math.max(4, Math.ceil(200_000 / pageSize.value));
    const map = pages.value;
    if (map.size <= maxPages) return;
    const far = [...map.keys()].sort((a, b) => Math.abs(b - keepNear) - Math.abs(a - keepNear));
    for (const k of far.slice(0, map.size - maxPages)) map.delete(k);
  }

  async function loadPage(k: number) {
    const t = target.value;
    // A page shorter than expected is the quick head read at open: it is completed here.
    if (!t || loadingPages.has(k) || (pages.value.get(k)?.length ?? -1) >= expected(k)) return;
    const gen = generation;
    loadingPages.add(k);
    try {
      const page = await fetchPage(t, { limit: pageSize.value, position: base + k * pageSize.value }, k * pageSize.value);
      if (gen !== generation) return;
      note(page);
      cap(page.reachable);
      pages.value.set(k, page.messages);
      // A page shorter than asked, before the known end, means messages left the queue meanwhile.
      if (page.messages.length < pageSize.value && (k + 1) * pageSize.value < total.value) {
        total.value = k * pageSize.value + page.messages.length;
      }
      evict(k);
      triggerRef(pages);
      version.value++;
      error.value = null;
    } catch (e) {
      if (gen === generation) error.value = `Could not read messages: ${describeError(e)}`;
    } finally {
      loadingPages.delete(k);
    }
  }

  /** Makes sure rows first..last (inclusive) are loaded or on their way. */
  async function ensureRange(first: number, last: number) {
    if (mode.value === 'scan') {
      if (last >= scanRows.value.length - 1 && !exhausted.value && !running.value && !stopRequested) await loadMore();
      return;
    }
    if (total.value === 0) return;
    const size = pageSize.value;
    const a = Math.floor(Math.max(0, first) / size);
    const b = Math.floor(Math.min(total.value - 1, Math.max(first, last)) / size);
    const jobs: Array<Promise<void>> = [];
    for (let k = a; k <= b; k++) jobs.push(loadPage(k));
    await Promise.all(jobs);
  }

  /** Scan mode: fetch pages with the cursor until a page size more rows matched, the end, or Stop. */
  async function loadMore() {
    const t = target.value;
    if (!t || running.value || exhausted.value) return;
    const gen = generation;
    running.value = true;
    stopRequested = false;
    const goal = scanRows.value.length + pageSize.value;
    try {
      while (!stopRequested && gen === generation && scanRows.value.length < goal) {
        const page = await fetchPage(
          t,
          { limit: Math.min(pageSize.value, goal - scanRows.value.length), cursor: nextCursor.value, filter: filter.value },
          scanRows.value.length,
        );
        if (gen !== generation) return;
        note(page);
        scanned.value += page.scanned;
        matched.value += page.matched;
        if (page.messages.length) scanRows.value = scanRows.value.concat(page.messages);
        nextCursor.value = page.nextCursor;
        if (!page.nextCursor) exhausted.value = true;
        if (exhausted.value) break;
      }
      error.value = null;
    } catch (e) {
      if (gen === generation) error.value = `Could not read messages: ${describeError(e)}`;
    } finally {
      if (gen === generation) running.value = false;
    }
  }

  function stop() {
    stopRequested = true;
  }

  function resume() {
    stopRequested = false;
    void loadMore();
  }

  /** Appends live records (topic tail) at the end of a scan list. */
  function append(rows: Row[]) {
    const start = scanRows.value.length;
    scanRows.value = scanRows.value.concat(rows.map((r, i) => ({ ...r, index: start + i })));
  }

  function close() {
    generation++;
    target.value = null;
    pages.value = new Map();
    scanRows.value = [];
    total.value = 0;
  }

  /** Every row matching the current filter, page by page, for export. */
  async function* all(limitPerPage: number, shouldStop: () => boolean): AsyncGenerator<Row[]> {
    const t = target.value;
    if (!t) return;
    let cursor: string | null = null;
    let index = 0;
    const scanning = mode.value === 'scan';
    for (;;) {
      if (shouldStop()) return;
      const page: Page = scanning
        ? await fetchPage(t, { limit: limitPerPage, cursor, filter: filter.value }, index)
        : await fetchPage(t, { limit: limitPerPage, position: base + index }, index);
      if (page.messages.length) yield page.messages;
      index += page.messages.length;
      if (scanning) {
        cursor = page.nextCursor;
        if (!cursor) return;
      } else if (page.messages.length < limitPerPage) return;
    }
  }

  return {
    target,
    mode,
    pageSize,
    total,
    filter,
    pages,
    version,
    scanRows,
    nextCursor,
    exhausted,
    scanned,
    matched,
    running,
    error,
    coverage,
    cappedFrom,
    rowAt,
    rowCount,
    open,
    ensureRange,
    loadMore,
    stop,
    resume,
    append,
    close,
    all,
  };
}

export type Pager = ReturnType<typeof usePager>;
