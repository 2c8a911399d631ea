/**
 * Lag and backlog: the past hour from `metrics/history`, continued live by the
 * `stats` stream. Series are columnar arrays (what uPlot draws) trimmed to the
 * last hour, so a chart left open all day stays the same size.
 */
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import type { GroupInfo, HistorySample, StatsSnapshot } from '@contract/types';
import { api, describeError } from '../api/client';
import { useConnections } from './connections';
import { useResources } from './resources';

export const QUEUE_METRICS = ['ready', 'unacked', 'consumers', 'publish', 'deliver', 'ack'] as const;
export type QueueMetric = (typeof QUEUE_METRICS)[number];

export interface Series {
  /** Seconds since the epoch (uPlot's x unit). */
  t: number[];
  values: Record<string, number[]>;
}

const HOUR_S = 3600;
/** Seconds of samples the trend and the time to drain are computed from. */
export const TREND_WINDOW_S = 10;

function emptySeries(keys: readonly string[]): Series {
  return { t: [], values: Object.fromEntries(keys.map((k) => [k, [] as number[]])) };
}

/** History samples name metrics as the engine stores them; these are the names accepted for each. */
const ALIASES: Record<string, string[]> = {
  ready: ['ready', 'messagesReady', 'messages_ready'],
  unacked: ['unacked', 'messagesUnacked', 'messages_unacknowledged'],
  consumers: ['consumers'],
  publish: ['publish', 'publishRate', 'rates.publish', 'publish_rate'],
  deliver: ['deliver', 'deliverRate', 'rates.deliver', 'deliver_rate'],
  ack: ['ack', 'ackRate', 'rates.ack', 'ack_rate'],
  lag: ['lag', 'totalLag', 'total_lag'],
};

function pick(sample: HistorySample, metric: string): number {
  for (const name of ALIASES[metric] ?? [metric]) {
    const v = sample[name];
    if (typeof v === 'number') return v;
  }
  return NaN;
}

/** Least-squares slope (units per second) of the points of the last `windowS` seconds. */
export function slope(t: number[], v: number[], windowS = 300): number | null {
  if (t.length < 2) return null;
  const end = t[t.length - 1]!;
  let n = 0;
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let sxy = 0;
  for (let i = t.length - 1; i >= 0 && t[i]! >= end - windowS; i--) {
    const y = v[i]!;
    if (!Number.isFinite(y)) continue;
    const x = t[i]! - end;
    n++;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const d = n * sxx - sx * sx;
  if (n < 2 || d === 0) return null;
  return (n * sxy - sx * sy) / d;
}

export const useMetrics = defineStore('metrics', () => {
  const connections = useConnections();
  const resources = useResources();
  const selected = ref<{ kind: 'queue' | 'group'; name: string } | null>(null);
  const series = shallowRef<Series>(emptySeries([]));
  const group = shallowRef<GroupInfo | null>(null);
  const loading = ref(false);
  const error = ref<string | null>(null);
  let unsubscribe: (() => void) | null = null;
  let groupTimer: ReturnType<typeof setInterval> | null = null;
  let generation = 0;

  function push(at: number, point: Record<string, number>) {
    const s = series.value;
    const t = at / 1000;
    if (s.t.length && t <= s.t[s.t.length - 1]!) return;
    const next: Series = { t: s.t.concat(t), values: {} };
    for (const [k, arr] of Object.entries(s.values)) next.values[k] = arr.concat(point[k] ?? NaN);
    // Drop what fell out of the hour.
    let cut = 0;
    while (cut < next.t.length && next.t[cut]! < t - HOUR_S) cut++;
    if (cut > 0) {
      next.t = next.t.slice(cut);
      for (const k of Object.keys(next.values)) next.values[k] = next.values[k]!.slice(cut);
    }
    series.value = next;
  }

  function onSnapshot(s: StatsSnapshot) {
    const sel = selected.value;
    if (!sel) return;
    if (sel.kind === 'queue') {
      const q = s.queues.find((x) => x.name === sel.name);
      if (q) push(s.at, { ready: q.ready, unacked: q.unacked, consumers: q.consumers, publish: q.rates.publish, deliver: q.rates.deliver, ack: q.rates.ack });
    } else {
      const g = s.groups.find((x) => x.groupId === sel.name);
      if (g) push(s.at, { lag: g.totalLag });
    }
  }

  async function loadGroup(connectionId: string, name: string, gen: number) {
    try {
      const groups = await api.call('groups/list', { connectionId });
      if (gen !== generation) return;
      group.value = groups.find((g) => g.groupId === name) ?? null;
    } catch (e) {
      if (gen === generation) error.value = `Could not read consumer group "${name}": ${describeError(e)}`;
    }
  }

  async function select(kind: 'queue' | 'group', name: string) {
    stop();
    const gen = ++generation;
    selected.value = { kind, name };
    group.value = null;
    error.value = null;
    const keys = kind === 'queue' ? QUEUE_METRICS : (['lag'] as const);
    series.value = emptySeries(keys);
    const connectionId = connections.scopeId;
    unsubscribe = resources.onSnapshot(onSnapshot);
    if (kind === 'group') {
      void loadGroup(connectionId, name, gen);
      groupTimer = setInterval(() => void loadGroup(connectionId, name, gen), 2000);
    }
    loading.value = true;
    try {
      const history = await api.call('metrics/history', { connectionId, kind, name, range: 'hour' });
      if (gen !== generation) return;
      const past = emptySeries(keys);
      for (const sample of [...history.samples].sort((a, b) => a.t - b.t)) {
        past.t.push(sample.t > 1e12 ? sample.t / 1000 : sample.t > 1e10 ? sample.t / 1000 : sample.t);
        for (const k of keys) past.values[k]!.push(pick(sample, k));
      }
      // Live points that arrived while the history loaded come after it.
      const live = series.value;
      const lastPast = past.t[past.t.length - 1] ?? 0;
      for (let i = 0; i < live.t.length; i++) {
        if (live.t[i]! <= lastPast) continue;
        past.t.push(live.t[i]!);
        for (const k of keys) past.values[k]!.push(live.values[k]![i] ?? NaN);
      }
      series.value = past;
    } catch (e) {
      if (gen === generation) error.value = `Could not load the last hour of "${name}": ${describeError(e)}`;
    } finally {
      if (gen === generation) loading.value = false;
    }
  }

  function stop() {
    unsubscribe?.();
    unsubscribe = null;
    if (groupTimer) clearInterval(groupTimer);
    groupTimer = null;
  }

  /** Backlog trend: messages per second (positive: growing) and the time to drain at that pace. */
  const trend = computed(() => {
    const sel = selected.value;
    if (!sel) return null;
    const key = sel.kind === 'queue' ? 'ready' : 'lag';
    const s = series.value;
    const v = s.values[key] ?? [];
    // A short window: the question is whether the backlog is growing or draining now.
    const perSecond = slope(s.t, v, TREND_WINDOW_S);
    const current = v.length ? v[v.length - 1]! : NaN;
    if (perSecond === null || !Number.isFinite(current)) return { perSecond: null, current, state: 'unknown' as const, drainMs: null };
    const state = Math.abs(perSecond) < 0.05 ? ('steady' as const) : perSecond > 0 ? ('growing' as const) : ('draining' as const);
    const drainMs = state === 'draining' ? (current / -perSecond) * 1000 : null;
    return { perSecond, current, state, drainMs };
  });

  return { selected, series, group, loading, error, trend, select, stop };
});
