/**
 * Metric history: one sample per second per queue/group for the last hour in
 * typed-array ring buffers (no per-sample objects), and one per minute for
 * the last day, persisted in SQLite so charts survive a restart.
 */
import type { SqliteDatabase } from '../storage/database.js';
import type { GroupCommit } from '../storage/group-commit.js';
import { prepareStatements } from '../storage/statements.js';
import type { GroupInfo, HistorySample, HistorySeries, QueueInfo } from './types.js';

export const QUEUE_METRICS = ['messages', 'ready', 'unacked', 'delayed', 'bytes', 'consumers', 'publish', 'deliver', 'ack', 'redeliver'] as const;
export const GROUP_METRICS = ['lag', 'timeLagMs'] as const;

const HOUR_SAMPLES = 3600;
const DAY_MS = 24 * 3600 * 1000;

class Ring {
  readonly t: Float64Array;
  readonly cols: Float64Array[];
  head = 0;
  size = 0;

  constructor(
    readonly capacity: number,
    readonly names: readonly string[],
  ) {
    this.t = new Float64Array(capacity);
    this.cols = names.map(() => new Float64Array(capacity));
  }

  push(t: number, values: readonly number[]): void {
    this.t[this.head] = t;
    for (let i = 0; i < this.cols.length; i++) this.cols[i]![this.head] = values[i] ?? 0;
    this.head = (this.head + 1) % this.capacity;
    if (this.size < this.capacity) this.size++;
  }

  samples(since: number): HistorySample[] {
    const out: HistorySample[] = [];
    const start = (this.head - this.size + this.capacity) % this.capacity;
    for (let k = 0; k < this.size; k++) {
      const i = (start + k) % this.capacity;
      const t = this.t[i]!;
      if (t < since) continue;
      const s: HistorySample = { t };
      this.names.forEach((n, c) => (s[n] = this.cols[c]![i]!));
      out.push(s);
    }
    return out;
  }
}

function queueValues(q: QueueInfo): number[] {
  return [q.messages, q.ready, q.unacked, q.delayed, q.bytes, q.consumers, q.rates.publish, q.rates.deliver, q.rates.ack, q.rates.redeliver];
}

function groupValues(g: GroupInfo): number[] {
  return [g.totalLag, g.partitions.reduce((m, p) => Math.max(m, p.timeLagMs), 0)];
}

export class MetricsHistory {
  private readonly hour = new Map<string, Ring>();
  private readonly st;
  private lastMinute = 0;

  constructor(
    private readonly gc: GroupCommit,
    db: SqliteDatabase,
    private readonly capacity = HOUR_SAMPLES,
  ) {
    this.st = prepareStatements(db, {
      insert: 'INSERT OR REPLACE INTO metrics_minute (kind, name, ts, data) VALUES (?, ?, ?, ?)',
      prune: 'DELETE FROM metrics_minute WHERE ts < ?',
      series: 'SELECT ts, data FROM metrics_minute WHERE kind = ? AND name = ? AND ts >= ? ORDER BY ts',
    });
  }

  private ring(kind: 'queue' | 'group', name: string): Ring {
    const key = `${kind}\0${name}`;
    let r = this.hour.get(key);
    if (!r) {
      r = new Ring(this.capacity, kind === 'queue' ? QUEUE_METRICS : GROUP_METRICS);
      this.hour.set(key, r);
    }
    return r;
  }

  /** Called once a second with the current snapshot. */
  record(at: number, queues: readonly QueueInfo[], groups: readonly GroupInfo[]): void {
    for (const q of queues) this.ring('queue', q.name).push(at, queueValues(q));
    for (const g of groups) this.ring('group', g.groupId).push(at, groupValues(g));
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

  forget(kind: 'queue' | 'group', name: string): void {
    this.hour.delete(`${kind}\0${name}`);
  }

  history(kind: 'queue' | 'group', name: string, range: 'hour' | 'day', now: number): HistorySeries {
    const names = kind === 'queue' ? QUEUE_METRICS : GROUP_METRICS;
    if (range === 'hour') {
      const r = this.hour.get(`${kind}\0${name}`);
      return { resource: { kind, name }, range, intervalMs: 1000, samples: r ? r.samples(now - 3600_000) : [] };
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
