/**
 * In-memory metrics history: one sample per second kept for an hour, one per
 * minute (the mean of that minute's samples) kept for a day, per resource (a
 * queue, a group). Connectors that sample a remote system keep both tiers
 * here; the embedded broker keeps its hour tier in a `RunRing` and its
 * minutes in SQLite.
 *
 * Most resources are idle most of the time, so each tier stores runs of equal
 * consecutive samples (`start`, `end`, values) rather than every sample: an
 * idle queue costs one run however long it stays idle, and only resources
 * whose numbers actually move use memory in proportion to time. Reads expand
 * the runs back into one sample per step, so callers see a regular series.
 */
import type { HistorySample, HistorySeries } from '../contract/types.js';

export type ResourceKind = HistorySeries['resource']['kind'];
export type HistoryRange = HistorySeries['range'];

export interface MetricsHistoryOptions {
  /** The metric names every sample carries, in a fixed order (missing values are stored as 0). */
  metrics: readonly string[];
  fineStepMs?: number;
  fineRetentionMs?: number;
  coarseStepMs?: number;
  coarseRetentionMs?: number;
  /** Beyond this many resources the one recorded least recently is forgotten. */
  maxResources?: number;
}

/**
 * Samples that arrive up to this many steps after the previous one still
 * extend its run when the values are unchanged: a sampler whose tick was late
 * by a second should not leave a hole in an otherwise flat line.
 */
const RUN_GAP_STEPS = 3;

/** A ring of runs: `[start, end, v0 … vM-1]` per slot, oldest first. Grows as runs are added, up to `maxRuns`. */
export class RunRing {
  private buf: Float64Array;
  private head = 0;
  private count = 0;
  private readonly stride: number;

  constructor(
    private readonly width: number,
    private readonly step: number,
    private readonly retention: number,
    private readonly maxRuns: number,
  ) {
    this.stride = 2 + width;
    this.buf = new Float64Array(this.stride * Math.min(4, maxRuns));
  }

  private capacity(): number {
    return this.buf.length / this.stride;
  }

  private offset(i: number): number {
    return ((this.head + i) % this.capacity()) * this.stride;
  }

  private sameValues(o: number, values: Float64Array): boolean {
    for (let k = 0; k < this.width; k++) if (!Object.is(this.buf[o + 2 + k], values[k])) return false;
    return true;
  }

  private grow(): void {
    const next = new Float64Array(Math.min(this.capacity() * 2, this.maxRuns) * this.stride);
    for (let i = 0; i < this.count; i++) next.set(this.buf.subarray(this.offset(i), this.offset(i) + this.stride), i * this.stride);
    this.buf = next;
    this.head = 0;
  }

  private push(slot: number, values: Float64Array): void {
    if (this.count === this.capacity()) {
      if (this.capacity() < this.maxRuns) this.grow();
      else {
        // Full at the bound: the oldest run makes room.
        this.head = (this.head + 1) % this.capacity();
        this.count--;
      }
    }
    const o = this.offset(this.count);
    this.buf[o] = slot;
    this.buf[o + 1] = slot;
    this.buf.set(values, o + 2);
    this.count++;
  }

  append(at: number, values: Float64Array): void {
    const slot = Math.floor(at / this.step) * this.step;
    this.expire(slot);
    if (this.count === 0) return this.push(slot, values);
    const last = this.offset(this.count - 1);
    const start = this.buf[last]!;
    const end = this.buf[last + 1]!;
    if (slot <= end) {
      // A second sample in a slot already written (or a clock step back):
      // the newest values win for that slot.
      if (this.sameValues(last, values)) return;
      if (start >= slot) {
        this.buf.set(values, last + 2);
        return;
      }
      this.buf[last + 1] = slot - this.step;
      return this.push(slot, values);
    }
    if (this.sameValues(last, values) && slot - end <= this.step * RUN_GAP_STEPS) {
      this.buf[last + 1] = slot;
      return;
    }
    this.push(slot, values);
  }

  private expire(now: number): void {
    const oldest = now - this.retention;
    while (this.count > 0) {
      const o = this.offset(0);
      if (this.buf[o + 1]! >= oldest) {
        if (this.buf[o]! < oldest) this.buf[o] = Math.ceil(oldest / this.step) * this.step;
        return;
      }
      this.head = (this.head + 1) % this.capacity();
      this.count--;
    }
  }

  /** Bytes held by the ring's buffer. */
  get byteLength(): number {
    return this.buf.byteLength;
  }

  lastTime(): number {
    return this.count === 0 ? -Infinity : this.buf[this.offset(this.count - 1) + 1]!;
  }

  /** Expands the runs inside [since, until] into one sample per step. */
  samples(metrics: readonly string[], since: number, until: number): HistorySample[] {
    const out: HistorySample[] = [];
    for (let i = 0; i < this.count; i++) {
      const o = this.offset(i);
      const from = Math.max(this.buf[o]!, Math.ceil(since / this.step) * this.step);
      const to = Math.min(this.buf[o + 1]!, until);
      for (let t = from; t <= to; t += this.step) {
        const sample: HistorySample = { t };
        for (let k = 0; k < metrics.length; k++) sample[metrics[k]!] = this.buf[o + 2 + k]!;
        out.push(sample);
      }
    }
    return out;
  }
}

interface Resource {
  fine: RunRing;
  coarse: RunRing;
  /** The minute being averaged into the coarse tier. */
  minute: number;
  sums: Float64Array;
  n: number;
}

export class MetricsHistory {
  readonly metrics: readonly string[];
  private readonly fineStep: number;
  private readonly fineRetention: number;
  private readonly coarseStep: number;
  private readonly coarseRetention: number;
  private readonly maxResources: number;
  /** Insertion order doubles as recency: a resource is re-inserted each time it is recorded. */
  private readonly resources = new Map<string, Resource>();
  private lastPrune = 0;

  constructor(options: MetricsHistoryOptions) {
    this.metrics = [...options.metrics];
    this.fineStep = options.fineStepMs ?? 1_000;
    this.fineRetention = options.fineRetentionMs ?? 3_600_000;
    this.coarseStep = options.coarseStepMs ?? 60_000;
    this.coarseRetention = options.coarseRetentionMs ?? 86_400_000;
    this.maxResources = options.maxResources ?? 10_000;
  }

  private static key(kind: ResourceKind, name: string): string {
    return `${kind}\u0000${name}`;
  }

  private vector(values: Record<string, number | null | undefined>): Float64Array {
    const v = new Float64Array(this.metrics.length);
    for (let k = 0; k < this.metrics.length; k++) {
      const x = values[this.metrics[k]!];
      v[k] = typeof x === 'number' && Number.isFinite(x) ? x : 0;
    }
    return v;
  }

  /** Records one sample of a resource taken at `at` (epoch ms). */
  record(kind: ResourceKind, name: string, values: Record<string, number | null | undefined>, at = Date.now()): void {
    const key = MetricsHistory.key(kind, name);
    let r = this.resources.get(key);
    if (r) this.resources.delete(key);
    else {
      r = {
        fine: new RunRing(this.metrics.length, this.fineStep, this.fineRetention, Math.ceil(this.fineRetention / this.fineStep) + 1),
        coarse: new RunRing(this.metrics.length, this.coarseStep, this.coarseRetention, Math.ceil(this.coarseRetention / this.coarseStep) + 1),
        minute: Math.floor(at / this.coarseStep) * this.coarseStep,
        sums: new Float64Array(this.metrics.length),
        n: 0,
      };
      if (this.resources.size >= this.maxResources) {
        const oldest = this.resources.keys().next().value;
        if (oldest !== undefined) this.resources.delete(oldest);
      }
    }
    this.resources.set(key, r);
    const v = this.vector(values);
    r.fine.append(at, v);
    const minute = Math.floor(at / this.coarseStep) * this.coarseStep;
    if (minute > r.minute && r.n > 0) {
      r.coarse.append(r.minute, this.mean(r));
      r.sums.fill(0);
      r.n = 0;
    }
    if (minute >= r.minute) {
      r.minute = minute;
      for (let k = 0; k < v.length; k++) r.sums[k]! += v[k]!;
      r.n++;
    }
    this.prune(at);
  }

  private mean(r: Resource): Float64Array {
    const m = new Float64Array(r.sums.length);
    for (let k = 0; k < m.length; k++) m[k] = r.sums[k]! / r.n;
    return m;
  }

  /** Records many resources sampled at the same instant. */
  recordAll(kind: ResourceKind, samples: Iterable<[name: string, values: Record<string, number | null | undefined>]>, at = Date.now()): void {
    for (const [name, values] of samples) this.record(kind, name, values, at);
  }

  series(kind: ResourceKind, name: string, range: HistoryRange, now = Date.now()): HistorySeries {
    const r = this.resources.get(MetricsHistory.key(kind, name));
    const resource = { kind, name };
    if (!r) return { resource, range, samples: [] };
    if (range === 'hour') return { resource, range, samples: r.fine.samples(this.metrics, now - this.fineRetention, now) };
    const samples = r.coarse.samples(this.metrics, now - this.coarseRetention, now);
    // The minute in progress is shown as what it averages so far, so a day
    // chart is never a minute behind the hour chart.
    if (r.n > 0) {
      const partial: HistorySample = { t: r.minute };
      const m = this.mean(r);
      for (let k = 0; k < this.metrics.length; k++) partial[this.metrics[k]!] = m[k]!;
      samples.push(partial);
    }
    return { resource, range, samples };
  }

  has(kind: ResourceKind, name: string): boolean {
    return this.resources.has(MetricsHistory.key(kind, name));
  }

  get size(): number {
    return this.resources.size;
  }

  forget(kind: ResourceKind, name: string): void {
    this.resources.delete(MetricsHistory.key(kind, name));
  }

  clear(): void {
    this.resources.clear();
  }

  /** Drops resources with nothing left in either tier (deleted queues age out this way). */
  private prune(now: number): void {
    if (now - this.lastPrune < this.coarseStep) return;
    this.lastPrune = now;
    for (const [key, r] of this.resources) {
      if (Math.max(r.fine.lastTime(), r.coarse.lastTime(), r.minute) < now - this.coarseRetention) this.resources.delete(key);
    }
  }
}
