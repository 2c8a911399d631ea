/**
 * The message browser: which queue or topic is open, the filter the core runs,
 * the page size, the selection, the detail panel, the live tail and exports.
 */
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import type { MessageFilter } from '@contract/operations';
import { api, ClientError, describeError } from '../api/client';
import { usePager, recordRow, hasFilter, fetchPage, type Coverage, type Row } from '../lib/pager';

/** Rows read first when a queue opens: enough to fill the screen, small enough to come back fast. */
const HEAD_ROWS = 60;
import { csvLine, downloadText } from '../lib/download';
import { toText } from '../lib/body';
import { useConnections } from './connections';
import { useSettings } from './settings';

export interface FilterDraft {
  q: string;
  jsonPath: string;
  jsonValue: string;
  jsonOp: 'equals' | 'contains';
  headerName: string;
  headerValue: string;
  propertyName: string;
  propertyValue: string;
  key: string;
  from: number | undefined;
  to: number | undefined;
}

export function emptyDraft(): FilterDraft {
  return { q: '', jsonPath: '', jsonValue: '', jsonOp: 'equals', headerName: '', headerValue: '', propertyName: '', propertyValue: '', key: '', from: undefined, to: undefined };
}

export function draftToFilter(d: FilterDraft): MessageFilter {
  const f: MessageFilter = {};
  if (d.q) f.q = d.q;
  if (d.jsonPath) {
    f.jsonPath = d.jsonPath;
    if (d.jsonValue) {
      if (d.jsonOp === 'equals') f.jsonEquals = d.jsonValue;
      else f.jsonContains = d.jsonValue;
    }
  }
  if (d.headerName) {
    f.headerName = d.headerName;
    f.headerValue = d.headerValue;
  }
  if (d.propertyName) {
    f.propertyName = d.propertyName;
    f.propertyValue = d.propertyValue;
  }
  if (d.key) f.key = d.key;
  if (d.from !== undefined) f.from = d.from;
  if (d.to !== undefined) f.to = d.to;
  return f;
}

/** One exported message: everything needed to publish it again. */
export function exportObject(r: Row): Record<string, unknown> {
  if (r.message) {
    const m = r.message;
    return {
      id: m.id,
      position: m.position,
      exchange: m.exchange,
      routingKey: m.routingKey,
      enqueuedAt: m.enqueuedAt,
      redelivered: m.redelivered,
      deliveryCount: m.deliveryCount,
      properties: m.properties,
      body: m.body,
      bodyEncoding: m.bodyEncoding,
    };
  }
  const rec = r.record!;
  return { partition: rec.partition, ...(rec.position !== undefined ? { position: rec.position } : { offset: rec.offset }), timestamp: rec.timestamp, key: rec.key, headers: rec.headers, value: rec.value, valueEncoding: rec.valueEncoding };
}

const CSV_HEADER = ['position', 'id', 'time', 'key', 'size', 'headers', 'body'];
function csvRow(r: Row): string {
  const m = r.message;
  const rec = r.record;
  const headers = m ? (m.properties.headers ?? {}) : (rec?.headers ?? {});
  const body = m ? toText(m.body, m.bodyEncoding) : rec ? toText(rec.value, rec.valueEncoding) : '';
  return csvLine([r.pos, r.id, new Date(r.time).toISOString(), r.key, r.size, JSON.stringify(headers), body]);
}

/**
 * One store per connection: the open queue or topic, its filters, selection and
 * detail belong to the connection they were read from, and come back as they
 * were when the person returns to it.
 */
function setup(connectionId: string) {
  const settings = useSettings();
  const pager = usePager();
  const draft = ref<FilterDraft>(emptyDraft());
  const applied = shallowRef<MessageFilter>({});
  const partition = ref<number | null>(null);
  /** Where the system places records by its own ids: the id the open topic is read from ('' from the start). */
  const startAt = ref('');
  const positions = computed(() => useConnections().canFor(connectionId, 'positions'));
  const selection = ref(new Set<number>());
  let anchor = -1;
  const active = ref(-1);
  const detail = shallowRef<Row | null>(null);
  const tailing = ref(false);
  const tailError = ref<string | null>(null);
  let untail: (() => void) | null = null;
  const openError = ref<string | null>(null);
  /**
   * Set when RabbitMQ refused to peek a quorum queue with a delivery limit (or SQS a
   * queue with a redrive policy); the person may accept the cost (one delivery
   * attempt, or receive, per message) for that queue.
   */
  const quorumRefused = ref<string | null>(null);
  const quorumConsent = new Set<string>();
  /** The open queue's `x-max-priority`, if it is a priority queue: its messages are listed in delivery order. */
  const maxPriority = ref<number | null>(null);
  const exporting = ref<{ format: 'ndjson' | 'csv'; rows: number } | null>(null);
  let exportStop = false;
  const exportError = ref<string | null>(null);

  const target = computed(() => pager.target.value);
  const filterActive = computed(() => hasFilter(applied.value));

  let opening: { key: string; done: Promise<void> } | null = null;

  /** Opens a queue or topic (or re-reads the open one) with the applied filter. */
  function open(kind: 'queue' | 'topic', name: string): Promise<void> {
    // The view asks on mount and on selection; the same request in flight is shared.
    const key = `${connectionId}:${kind}:${name}:${partition.value}:${startAt.value}:${JSON.stringify(applied.value)}:${settings.pageSize}:${scanAllFor.has(name)}`;
    if (opening && opening.key === key) return opening.done;
    const done = doOpen(kind, name).finally(() => {
      if (opening?.done === done) opening = null;
    });
    opening = { key, done };
    return done;
  }

  async function doOpen(kind: 'queue' | 'topic', name: string) {
    stopTail();
    openError.value = null;
    quorumRefused.value = null;
    maxPriority.value = null;
    const consented = kind === 'queue' && quorumConsent.has(`${connectionId}\u0000${name}`);
    selection.value = new Set();
    active.value = -1;
    detail.value = null;
    let count = 0;
    let start = 0;
    let head: Row[] | undefined;
    let headCoverage: Coverage | undefined;
    try {
      if (kind === 'queue') {
        // The count and the first rows are asked at once; the head is small so the
        // first rows paint quickly, and the rest of the page follows.
        const filtered = hasFilter(applied.value);
        const [q, first] = await Promise.all([
          api.call('queues/get', { connectionId, queue: name }),
          filtered
            ? Promise.resolve(null)
            : fetchPage({ connectionId, kind: 'queue', name, ...(consented ? { allowQuorumPeek: true } : {}) }, { limit: Math.min(settings.pageSize, HEAD_ROWS), position: 0 }, 0),
        ]);
        head = first?.messages;
        if (first) headCoverage = { ...(first.total !== undefined ? { total: first.total } : {}), ...(first.complete !== undefined ? { complete: first.complete } : {}), ...(first.reachable !== undefined ? { reachable: first.reachable } : {}) };
        const prio = q.arguments['x-max-priority'];
        maxPriority.value = typeof prio === 'number' && prio > 0 ? prio : null;
        // A remote broker's count can trail its queue (RabbitMQ's management statistics
        // are a few seconds old): what was just read is there for certain.
        count = Math.max(q.messages, head?.length ?? 0);
      } else {
        const topics = await api.call('topics/list', { connectionId });
        const t = topics.find((x) => x.name === name);
        if (!t) throw new Error(`topic "${name}" does not exist`);
        const p = partition.value !== null ? t.partitions.find((x) => x.partition === partition.value) : undefined;
        if (p) {
          count = p.endOffset - p.startOffset;
          start = p.startOffset;
        } else count = t.messages;
      }
    } catch (e) {
      openError.value = `Could not open ${kind} "${name}": ${describeError(e)}`;
      if (kind === 'queue' && e instanceof ClientError && e.code === 'PRECONDITION_FAILED' && (/quorum queue with a delivery limit/.test(e.message) || e.field === 'allowReceiveCountRisk' || e.field === 'allowDeliveryAttemptRisk')) quorumRefused.value = name;
      pager.close();
      return;
    }
    const scanAll = kind === 'queue' && scanAllFor.has(name) && hasFilter(applied.value);
    pager.open(
      {
        connectionId,
        kind,
        name,
        ...(kind === 'topic' && partition.value !== null ? { partition: partition.value } : {}),
        ...(kind === 'topic' && positions.value ? { positions: true, ...(startAt.value ? { startAt: startAt.value } : {}) } : {}), ...(consented ? { allowQuorumPeek: true } : {}), ...(scanAll ? { scanAll: true } : {}) },
      { count, start, filter: applied.value, pageSize: settings.pageSize, ...(head ? { head } : {}), ...(headCoverage ? { coverage: headCoverage } : {}) },
    );
  }

  /**
   * Queues whose filtered searches read the whole queue: RabbitMQ peeks only the
   * first 1,000 messages; past them every message read is taken and handed back,
   * which the person accepts for this queue by asking for it.
   */
  const scanAllFor = new Set<string>();
  async function searchWholeQueue() {
    const t = pager.target.value;
    if (!t || t.kind !== 'queue') return;
    scanAllFor.add(t.name);
    await open('queue', t.name);
  }

  /** Peeks the refused quorum queue anyway, now and for the rest of the session. */
  async function peekAnyway(name: string) {
    quorumConsent.add(`${connectionId}\u0000${name}`);
    await open('queue', name);
  }

  /** Reads the open topic from a position of the system's own ('' reads from the start). */
  async function seekPosition(position: string) {
    startAt.value = position.trim();
    await reload();
  }

  async function reload() {
    const t = pager.target.value;
    if (t) await open(t.kind, t.name);
  }

  async function applyFilter() {
    applied.value = draftToFilter(draft.value);
    await reload();
  }

  async function clearFilter() {
    draft.value = emptyDraft();
    applied.value = {};
    await reload();
  }

  function select(index: number, how: { shift?: boolean; toggle?: boolean }) {
    const next = new Set(how.shift || how.toggle ? selection.value : []);
    if (how.shift && anchor >= 0) {
      const [a, b] = anchor < index ? [anchor, index] : [index, anchor];
      for (let i = a; i <= b; i++) next.add(i);
    } else if (how.toggle && next.has(index)) next.delete(index);
    else next.add(index);
    if (!how.shift) anchor = index;
    selection.value = next;
    const row = pager.rowAt(index);
    if (row) detail.value = row;
  }

  function showDetail(index: number) {
    const row = pager.rowAt(index);
    if (row) detail.value = row;
  }

  function selectedRows(): Row[] {
    const out: Row[] = [];
    for (const i of [...selection.value].sort((a, b) => a - b)) {
      const r = pager.rowAt(i);
      if (r) out.push(r);
    }
    return out;
  }

  function fileBase(): string {
    const t = pager.target.value;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    return `${t?.name ?? 'messages'}-${stamp}`;
  }

  function exportSelection(format: 'ndjson' | 'csv') {
    const rows = selectedRows();
    if (format === 'ndjson') downloadText(`${fileBase()}.ndjson`, rows.map((r) => JSON.stringify(exportObject(r))).join('\n') + '\n', 'application/x-ndjson');
    else downloadText(`${fileBase()}.csv`, csvLine(CSV_HEADER) + rows.map(csvRow).join(''), 'text/csv');
    return rows.length;
  }

  /** Exports everything that matches the filter, page by page, into one file. */
  async function exportAll(format: 'ndjson' | 'csv') {
    if (exporting.value) return;
    exportStop = false;
    exportError.value = null;
    exporting.value = { format, rows: 0 };
    const parts: string[] = format === 'csv' ? [csvLine(CSV_HEADER)] : [];
    try {
      for await (const rows of pager.all(Math.max(pager.pageSize.value, 1000), () => exportStop)) {
        if (format === 'ndjson') parts.push(rows.map((r) => JSON.stringify(exportObject(r))).join('\n') + '\n');
        else parts.push(rows.map(csvRow).join(''));
        exporting.value = { format, rows: exporting.value.rows + rows.length };
      }
      downloadText(`${fileBase()}.${format}`, new Blob(parts, { type: format === 'csv' ? 'text/csv' : 'application/x-ndjson' }));
    } catch (e) {
      exportError.value = `Export failed: ${describeError(e)}`;
    } finally {
      exporting.value = null;
    }
  }

  function stopExport() {
    exportStop = true;
  }

  function startTail() {
    const t = pager.target.value;
    if (!t || t.kind !== 'topic' || tailing.value) return;
    tailError.value = null;
    tailing.value = true;
    // Records arrive one by one; they are appended once a frame so a burst does not re-render per record.
    let buffer: Row[] = [];
    let scheduled = false;
    untail = api.subscribe(
      'tail',
      { connectionId: t.connectionId, topic: t.name, ...(t.partition !== undefined ? { partition: t.partition } : {}) },
      (record) => {
        buffer.push(recordRow(record, 0));
        if (!scheduled) {
          scheduled = true;
          requestAnimationFrame(() => {
            scheduled = false;
            const rows = buffer;
            buffer = [];
            if (pager.mode.value === 'scan') pager.append(rows);
          });
        }
      },
      (e) => {
        tailError.value = `Live tail stopped: ${describeError(e)}`;
        tailing.value = false;
      },
    );
  }

  function stopTail() {
    untail?.();
    untail = null;
    tailing.value = false;
  }

  return {
    connectionId,
    pager,
    draft,
    applied,
    partition,
    startAt,
    positions,
    seekPosition,
    selection,
    active,
    detail,
    tailing,
    tailError,
    openError,
    quorumRefused,
    maxPriority,
    peekAnyway,
    searchWholeQueue,
    exporting,
    exportError,
    target,
    filterActive,
    open,
    reload,
    applyFilter,
    clearFilter,
    select,
    showDetail,
    selectedRows,
    exportSelection,
    exportAll,
    stopExport,
    startTail,
    stopTail,
  };
}

const definitions = new Map<string, ReturnType<typeof define>>();
function define(connectionId: string) {
  return defineStore(`browser:${connectionId}`, () => setup(connectionId));
}

/** The browser state of a connection (the selected one when none is named). */
export function useBrowser(connectionId: string = useConnections().scopeId) {
  let def = definitions.get(connectionId);
  if (!def) {
    def = define(connectionId);
    definitions.set(connectionId, def);
  }
  return def();
}
