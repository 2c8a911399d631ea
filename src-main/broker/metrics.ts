/**
 * Metric history: one sample per second per queue/group for the last hour,
 * kept as runs of equal samples (an idle queue costs one run, so 5,000 queues
 * cost kilobytes, not the 300 KB each that a full hour of samples would), and
 * one per minute for the last day, persisted in SQLite so charts survive a
 * restart.
 */
import type { SqliteDatabase } from '../storage/database.js';
import type { GroupCommit } from '../storage/group-commit.js';
import { prepareStatements } from '../storage/statements.js';
import { RunRing } from '../metrics/history.js';
import type { GroupInfo, HistorySample, HistorySeries, QueueInfo } from './types.js';

export const QUEUE_METRICS = ['messages', 'ready', 'unacked', 'delayed', 'bytes', 'consumers', 'publish', 'deliver', 'ack', 'redeliver'] as const;
export const GROUP_METRICS = ['lag', 'timeLagMs'] as const;

const STEP_MS = 1000;
const HOUR_MS = 3600_000;
const DAY_MS = 24 * 3600 * 1000;

function queueValues(q: QueueInfo): number[] {
  return [q.messages, q.ready, q.unacked, q.delayed, q.bytes, q.consumers, q.rates.publish, q.rates.deliver, q.rates.ack, q.rates.redeliver];
}

function groupValues(g: GroupInfo): number[] {
  return [g.totalLag, g.partitions.reduce((m, p) => Math.max(m, p.timeLagMs), 0)];
}

/** Copies into `into` (reused: the ring copies what it keeps), non-finite values as 0. */
function finite(values: number[], into: Float64Array): Float64Array {
  for (let i = 0; i < into.length; i++) {
    const x = values[i]!;
    into[i] = Number.isFinite(x) ? x : 0;
  }
  return into;
}

export class MetricsHistory {
  private readonly hour = new Map<string, RunRing>();
  private readonly st;
  private lastMinute = 0;

  constructor(
    private readonly gc: GroupCommit,
    db: SqliteDatabase,
    private readonly retentionMs = HOUR_MS,
  ) {
    this.st = prepareStatements(db, {
      insert: 'INSERT OR REPLACE INTO metrics_minute (kind, name, ts, data) VALUES (?, ?, ?, ?)',
      prune: 'DELETE FROM metrics_minute WHERE ts < ?',
      series: 'SELECT ts, data FROM metrics_minute WHERE kind = ? AND name = ? AND ts >= ? ORDER BY ts',
    });
  }

  private ring(kind: 'queue' | 'group', name: string): RunRing {
    const key = `${kind}\0${name}`;
    let r = this.hour.get(key);
    if (!r) {
      const width = kind === 'queue' ? QUEUE_METRICS.length : GROUP_METRICS.length;
      r = new RunRing(width, STEP_MS, this.retentionMs, Math.ceil(this.retentionMs / STEP_MS) + 1);
      this.hour.set(key, r);
    }
    return r;
  }

  /** Called once a second with the current snapshot. */
  record(at: number, queues: readonly QueueInfo[], groups: readonly GroupInfo[]): void {
    const qv = new Float64Array(QUEUE_METRICS.length);
    const gv = new Float64Array(GROUP_METRICS.length);
    for (const q of queues) this.ring('queue', q.name).append(at, finite(queueValues(q), qv));
    for (const g of groups) this.ring('group', g.groupId).append(at, finite(groupValues(g), gv));
    const minute = Math.floor(at / 60_000) * 60_000;
    if (minute !== this.lastMinute) {
      this.lastMinute = minute;
      this.gc.run(() => {
        for (const q of queues) this.st.insert.run('queue', q.name, minute, JSON.stringify(queueValues(q)));
        for (const g of groups) this.st.insert.run('group', g.groupId, minute, JSON.stringify(groupValues(g)));
        this.st.prune.run(at - DAY_MS);
      });
    }
  }

  /** Bytes held by the hour tier's buffers (what grows with the number of queues and time). */
  get hourBytes(): number {
    let n = 0;
    for (const r of this.hour.values()) n += r.byteLength;
    return n;
  }

  forget(kind: 'queue' | 'group', name: string): void {
    this.hour.delete(`${kind}\0${name}`);
  }

  history(kind: 'queue' | 'group', name: string, range: 'hour' | 'day', now: number): HistorySeries {
    const names = kind === 'queue' ? QUEUE_METRICS : GROUP_METRICS;
    if (range === 'hour') {
      const r = this.hour.get(`${kind}\0${name}`);
      return { resource: { kind, name }, range, intervalMs: STEP_MS, samples: r ? r.samples(names, now - this.retentionMs, now) : [] };
    }
    const rows = this.st.series.all(kind, name, now - DAY_MS) as Array<{ ts: number; data: string }>;
    const samples = rows.map((row) => {
      const values = JSON.parse(row.data) as number[];
      const s: HistorySample = { t: row.ts };
      names.forEach((n, i) => (s[n] = values[i] ?? 0));
      return s;
    });
    return { resource: { kind, name }, range, intervalMs: 60_000, samples };
  }
}
