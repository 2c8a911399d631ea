/**
 * Dead letters: the dead-letter queues, their messages with why each died, the
 * selection to re-drive, the running re-drive job and the audit log.
 */
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import type { AuditEntry, DeadLetterQueueInfo, RedriveJob } from '@contract/types';
import { FINAL_JOB_STATES } from '@contract/types';
import type { Input } from '@contract/operations';
import { api, describeError } from '../api/client';
import { usePager } from '../lib/pager';
import { splitScope, useConnections } from './connections';
import { useResources } from './resources';
import { useSettings } from './settings';

export interface RedriveRequest {
  /** Re-drive to where each message came from, or to this exchange + routing key. */
  target: { exchange: string; routingKey: string } | null;
  ratePerSecond: number | null;
  edit?: { body?: string; headers?: Record<string, unknown> };
  /** Just this message (editing), instead of the selection. */
  messageId?: string;
  /** Kafka: re-drive records even if they were re-driven before. */
  force?: boolean;
}

/** A job in one of the end states it never leaves. */
export function isFinal(job: RedriveJob): boolean {
  return FINAL_JOB_STATES.includes(job.state);
}

/**
 * What the re-drive confirmation shows, read from the server when it opens: the
 * count in the queue now beside what the person selected from the list.
 */
export interface RedrivePreview {
  /** Messages in the queue (records in the topic) now. */
  inQueue: number;
  /** Messages that will be asked to move: the selection, or every row the list showed. */
  selected: number;
  /** Rows the list showed when "select all" was chosen (null for a hand-made selection). */
  listed: number | null;
}

/**
 * One store per connection: the dead-letter list, the open queue, its selection,
 * filter and re-drive job belong to the connection they were read from, so
 * switching connections never shows (or re-drives) another broker's messages.
 */
function setup(connectionId: string) {
  const connections = useConnections();
  /** The connection without its virtual host: jobs and audit entries name only the connection. */
  const baseId = splitScope(connectionId).connectionId;
  const settings = useSettings();
  const resources = useResources();
  const list = ref<DeadLetterQueueInfo[]>([]);
  const listError = ref<string | null>(null);
  const selectedQueue = ref<string | null>(null);
  const pager = usePager();
  const filterText = ref('');
  const appliedFilter = ref('');
  /** Selected rows by index; ids are read from the loaded rows when re-driving. */
  const selection = ref(new Set<number>());
  const allMatching = ref(false);
  let anchor = -1;
  const active = ref(-1);
  const job = shallowRef<RedriveJob | null>(null);
  const jobError = ref<string | null>(null);
  const actionError = ref<string | null>(null);
  const audit = ref<AuditEntry[]>([]);
  const auditError = ref<string | null>(null);
  let unsubscribeJob: (() => void) | null = null;
  let pollTimer: ReturnType<typeof setInterval> | null = null;

  /** Rows the list showed when "select all" was chosen: a re-drive of everything moves these and no later arrival. */
  const listedAtSelect = ref(0);

  /** A connection with queues keeps dead letters in queues; one with topics only, in topics (`orders.DLT`). */
  const kind = computed<'queue' | 'topic'>(() => (connections.canFor(connectionId, 'topics') && !connections.canFor(connectionId, 'queues') ? 'topic' : 'queue'));
  const selectedCount = computed(() => (allMatching.value ? listedAtSelect.value : selection.value.size));

  /** The open queue's count in the list when last compared, to see it shrink. */
  let lastListed: number | null = null;

  async function refresh() {
    try {
      list.value = await api.call('deadletters/list', { connectionId });
      listError.value = null;
    } catch (e) {
      listError.value = `Could not list dead-letter queues: ${describeError(e)}`;
      return;
    }
    followShrink();
  }

  /**
   * Messages that left the open queue (consumed, purged, re-driven elsewhere) would
   * stay as empty rows: the list is read again when the queue's count falls below
   * the rows shown. Not while the person holds a selection (its rows would change
   * under it) or a re-drive runs; its end reads the list again anyway.
   */
  function followShrink() {
    const q = selectedQueue.value;
    if (!q || kind.value !== 'queue' || pager.mode.value !== 'positional') return;
    const count = list.value.find((d) => d.queue === q)?.count;
    if (count === undefined || count === lastListed) return;
    lastListed = count;
    const busy = selection.value.size > 0 || allMatching.value || (job.value !== null && !isFinal(job.value));
    // Only when it shrinks: on a queue whose read hides its messages for a moment (SQS, Pub/Sub) the
    // count dips and comes back while the view reads it, and following it up would read again and again.
    if (count < pager.total.value && !busy) void open(q);
  }

  /**
   * Kafka: per partition, the offset below which Brokerdeck re-drove every record
   * (the committed offset of its ledger group); ranges above it are not shown.
   */
  const redrivenBelow = shallowRef(new Map<number, number>());
  /** Records re-driven from this view since it opened, by id. */
  const redrivenIds = new Set<string>();
  /** The records the running re-drive was asked for: marked once it ends having failed none. */
  let pendingIds: string[] = [];
  async function loadLedger(topic: string) {
    try {
      const g = await api.call('groups/get', { connectionId, groupId: `brokerdeck-redrive.${topic}` });
      redrivenBelow.value = new Map(g.partitions.filter((p) => p.topic === topic && p.committed !== null).map((p) => [p.partition, p.committed!]));
    } catch {
      // No ledger yet: nothing was re-driven from this topic.
      redrivenBelow.value = new Map();
    }
  }
  function isRedriven(row: { id: string; record?: { partition: number; offset: number } }): boolean {
    if (redrivenIds.has(row.id)) return true;
    const r = row.record;
    if (!r) return false;
    const below = redrivenBelow.value.get(r.partition);
    return below !== undefined && r.offset < below;
  }

  async function open(queue: string) {
    if (kind.value === 'topic') void loadLedger(queue);
    if (queue !== selectedQueue.value) lastListed = null;
    selectedQueue.value = queue;
    selection.value = new Set();
    allMatching.value = false;
    active.value = -1;
    anchor = -1;
    actionError.value = null;
    let count = 0;
    const k = kind.value;
    try {
      count =
        k === 'queue'
          ? (await api.call('queues/get', { connectionId, queue })).messages
          : (await api.call('topics/get', { connectionId, topic: queue })).messages;
    } catch (e) {
      actionError.value = `Could not open "${queue}": ${describeError(e)}`;
    }
    pager.open(
      { connectionId, kind: k, name: queue },
      { count, start: 0, filter: appliedFilter.value ? { q: appliedFilter.value } : {}, pageSize: settings.pageSize },
    );
  }

  async function applyFilter() {
    appliedFilter.value = filterText.value.trim();
    if (selectedQueue.value) await open(selectedQueue.value);
  }

  function select(index: number, how: { shift?: boolean; toggle?: boolean }) {
    allMatching.value = false;
    const next = new Set(how.shift || how.toggle ? selection.value : []);
    if (how.shift && anchor >= 0) {
      const [a, b] = anchor < index ? [anchor, index] : [index, anchor];
      for (let i = a; i <= b; i++) next.add(i);
    } else if (how.toggle && next.has(index)) next.delete(index);
    else next.add(index);
    if (!how.shift) anchor = index;
    selection.value = next;
  }

  function rowCount(): number {
    return pager.mode.value === 'scan' ? pager.scanRows.value.length : pager.total.value;
  }

  function selectAllMatching() {
    allMatching.value = true;
    listedAtSelect.value = rowCount();
    selection.value = new Set();
  }

  /** The count in the queue now, read from the server, beside what the selection holds. */
  async function preview(): Promise<RedrivePreview> {
    const source = selectedQueue.value;
    if (!source) throw new Error('no dead-letter queue is open');
    const inQueue =
      kind.value === 'queue' ? (await api.call('queues/get', { connectionId, queue: source })).messages : (await api.call('topics/get', { connectionId, topic: source })).messages;
    return allMatching.value ? { inQueue, selected: listedAtSelect.value, listed: listedAtSelect.value } : { inQueue, selected: selection.value.size, listed: null };
  }

  /**
   * The ids of every row the list showed when "select all" was chosen, in list
   * order: rows already loaded are taken as they are, the others are read page
   * by page up to that many, so a message that arrived later is never included.
   */
  async function listedIds(): Promise<string[]> {
    const want = listedAtSelect.value;
    const ids: string[] = [];
    let complete = true;
    for (let i = 0; i < want; i++) {
      const r = pager.rowAt(i);
      if (!r) {
        complete = false;
        break;
      }
      ids.push(r.id);
    }
    if (complete) return ids;
    ids.length = 0;
    for await (const rows of pager.all(Math.max(pager.pageSize.value, 1000), () => ids.length >= want)) {
      for (const r of rows) if (ids.length < want) ids.push(r.id);
    }
    return ids;
  }

  function clearSelection() {
    allMatching.value = false;
    selection.value = new Set();
  }

  function selectedIds(): string[] {
    const ids: string[] = [];
    for (const i of selection.value) {
      const r = pager.rowAt(i);
      if (r) ids.push(r.id);
    }
    return ids;
  }

  function watchJob(id: string) {
    unsubscribeJob?.();
    if (pollTimer) clearInterval(pollTimer);
    const stopWatching = () => {
      unsubscribeJob?.();
      unsubscribeJob = null;
      if (pollTimer) clearInterval(pollTimer);
      pollTimer = null;
    };
    const update = (j: RedriveJob) => {
      if (j.id !== id) return;
      // Progress only moves forward; a late stream event must not overwrite a newer poll.
      const cur = job.value;
      if (cur && cur.id === j.id && isFinal(cur) && !isFinal(j)) return;
      if (cur && cur.id === j.id && !isFinal(j) && j.moved < cur.moved) return;
      job.value = j;
      if (isFinal(j)) {
        stopWatching();
        if (j.state === 'completed' && j.failed === 0) for (const m of pendingIds) redrivenIds.add(m);
        pendingIds = [];
        void refresh();
        // The sidebar's and overview's counts of the source and target change at once.
        void resources.refresh();
        void loadAudit();
        if (selectedQueue.value) void open(selectedQueue.value);
      }
    };
    unsubscribeJob = api.subscribe('jobs', { id }, update);
    // The stream is throttled and may be missed across a reconnect; a slow poll guarantees the end state is seen.
    pollTimer = setInterval(() => {
      api.call('redrives/get', { id }).then(update, (e) => (jobError.value = `Could not read re-drive progress: ${describeError(e)}`));
    }, 1000);
  }

  async function redrive(req: RedriveRequest) {
    const source = selectedQueue.value;
    if (!source) return;
    jobError.value = null;
    const input: Input<'redrives/start'> = { connectionId, source };
    if (req.messageId) input.messageIds = [req.messageId];
    else if (allMatching.value) {
      try {
        input.messageIds = await listedIds();
      } catch (e) {
        jobError.value = `Re-drive not started: could not read the listed messages: ${describeError(e)}`;
        return;
      }
    } else input.messageIds = selectedIds();
    if (!input.messageIds?.length) {
      jobError.value = 'Re-drive not started: none of the selected messages is listed any more';
      return;
    }
    if (req.target) input.target = req.target;
    if (req.ratePerSecond) input.ratePerSecond = req.ratePerSecond;
    if (req.edit) input.edit = req.edit;
    if (req.force) input.force = true;
    const original = kind.value === 'topic' ? 'original topic' : 'original queue';
    const target = !req.target ? original : kind.value === 'topic' ? req.target.exchange : `${req.target.exchange} → ${req.target.routingKey}`;
    try {
      const { id } = await api.call('redrives/start', input);
      pendingIds = kind.value === 'topic' ? (input.messageIds ?? []) : [];
      job.value = { id, connectionId: input.connectionId, source, target, state: 'pending', moved: 0, total: 0, failed: 0, ratePerSecond: req.ratePerSecond, startedAt: Date.now() };
      clearSelection();
      watchJob(id);
    } catch (e) {
      jobError.value = `Re-drive not started: ${describeError(e)}`;
    }
  }

  async function cancel() {
    const j = job.value;
    if (!j) return;
    try {
      job.value = await api.call('redrives/cancel', { id: j.id });
    } catch (e) {
      jobError.value = `Could not cancel: ${describeError(e)}`;
    }
  }

  function dismissJob() {
    job.value = null;
    jobError.value = null;
  }

  async function purge() {
    const q = selectedQueue.value;
    if (!q) return;
    try {
      await api.call('queues/purge', { connectionId, queue: q });
      await refresh();
      await open(q);
    } catch (e) {
      actionError.value = `Purge failed: ${describeError(e)}`;
    }
  }

  async function loadAudit() {
    try {
      // The audit log is kept for every connection; this view shows its own connection's entries.
      audit.value = (await api.call('audit/list', { limit: 1000 })).filter((a) => a.connectionId === baseId).slice(0, 200);
      auditError.value = null;
    } catch (e) {
      auditError.value = `Could not load the audit log: ${describeError(e)}`;
    }
  }

  /** Picks up a re-drive still running from before (another window, a reload). */
  async function resumeRunning() {
    try {
      const jobs = await api.call('redrives/list', {});
      const running = jobs.find((j) => j.connectionId === baseId && !isFinal(j));
      if (running && !job.value) {
        job.value = running;
        watchJob(running.id);
      }
    } catch {
      // Nothing to resume is the common case; the list is only a convenience.
    }
  }

  return {
    connectionId,
    kind,
    list,
    listError,
    selectedQueue,
    pager,
    filterText,
    appliedFilter,
    selection,
    allMatching,
    active,
    job,
    jobError,
    actionError,
    audit,
    auditError,
    selectedCount,
    refresh,
    open,
    applyFilter,
    select,
    selectAllMatching,
    preview,
    isRedriven,
    clearSelection,
    redrive,
    cancel,
    dismissJob,
    purge,
    loadAudit,
    resumeRunning,
  };
}

const definitions = new Map<string, ReturnType<typeof define>>();
function define(connectionId: string) {
  return defineStore(`deadletters:${connectionId}`, () => setup(connectionId));
}

/** The dead-letter state of a connection (the selected one when none is named). */
export function useDeadLetters(connectionId: string = useConnections().scopeId) {
  let def = definitions.get(connectionId);
  if (!def) {
    def = define(connectionId);
    definitions.set(connectionId, def);
  }
  return def();
}
