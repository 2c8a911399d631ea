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
import { useConnections } from './connections';
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

export const useDeadLetters = defineStore('deadletters', () => {
  const connections = useConnections();
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

  /** A connection with queues keeps dead letters in queues; one with topics only, in topics (`orders.DLT`). */
  const kind = computed<'queue' | 'topic'>(() => (connections.can('topics') && !connections.can('queues') ? 'topic' : 'queue'));
  const selectedCount = computed(() => (allMatching.value ? (appliedFilter.value ? pager.matched.value : pager.total.value || pager.scanRows.value.length) : selection.value.size));

  async function refresh() {
    try {
      list.value = await api.call('deadletters/list', { connectionId: connections.selectedId });
      listError.value = null;
    } catch (e) {
      listError.value = `Could not list dead-letter queues: ${describeError(e)}`;
    }
  }

  async function open(queue: string) {
    selectedQueue.value = queue;
    selection.value = new Set();
    allMatching.value = false;
    active.value = -1;
    anchor = -1;
    actionError.value = null;
    let count = 0;
    const connectionId = connections.selectedId;
    const k = kind.value;
    try {
      count =
        k === 'queue'
          ? (await api.call('queues/get', { connectionId, queue })).messages
          : ((await api.call('topics/list', { connectionId })).find((t) => t.name === queue)?.messages ?? 0);
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

  function selectAllMatching() {
    allMatching.value = true;
    selection.value = new Set();
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
    const input: Input<'redrives/start'> = { connectionId: connections.selectedId, source };
    if (req.messageId) input.messageIds = [req.messageId];
    else if (allMatching.value) {
      input.all = true;
      if (appliedFilter.value) input.filter = { q: appliedFilter.value };
    } else input.messageIds = selectedIds();
    if (req.target) input.target = req.target;
    if (req.ratePerSecond) input.ratePerSecond = req.ratePerSecond;
    if (req.edit) input.edit = req.edit;
    if (req.force) input.force = true;
    const original = kind.value === 'topic' ? 'original topic' : 'original queue';
    const target = !req.target ? original : kind.value === 'topic' ? req.target.exchange : `${req.target.exchange} → ${req.target.routingKey}`;
    try {
      const { id } = await api.call('redrives/start', input);
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
      await api.call('queues/purge', { connectionId: connections.selectedId, queue: q });
      await refresh();
      await open(q);
    } catch (e) {
      actionError.value = `Purge failed: ${describeError(e)}`;
    }
  }

  async function loadAudit() {
    try {
      audit.value = await api.call('audit/list', { limit: 200 });
      auditError.value = null;
    } catch (e) {
      auditError.value = `Could not load the audit log: ${describeError(e)}`;
    }
  }

  /** Picks up a re-drive still running from before (another window, a reload). */
  async function resumeRunning() {
    try {
      const jobs = await api.call('redrives/list', {});
      const running = jobs.find((j) => j.connectionId === connections.selectedId && !isFinal(j));
      if (running && !job.value) {
        job.value = running;
        watchJob(running.id);
      }
    } catch {
      // Nothing to resume is the common case; the list is only a convenience.
    }
  }

  return {
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
    clearSelection,
    redrive,
    cancel,
    dismissJob,
    purge,
    loadAudit,
    resumeRunning,
  };
});
