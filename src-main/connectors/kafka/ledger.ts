/**
 * What has been re-driven from a dead-letter topic, kept on the cluster
 * itself in a consumer group of Brokerdeck's own (`brokerdeck-redrive.<dlt>`),
 * so every Brokerdeck pointed at the cluster knows, and a record is not
 * re-driven twice by accident. Per partition the committed offset is the
 * watermark below which everything was re-driven; the commit's metadata
 * holds the re-driven ranges above it (selected records need not be
 * contiguous). Nothing consumes with this group: it is only a place to write.
 */
import { kGetApi, kGetConnection, type Admin, type Connection } from '@platformatic/kafka';
import type { Logger } from '../../ground/logger.js';

/** Kafka's default offset.metadata.max.bytes is 4096. */
const METADATA_MAX = 4_000;
const PREFIX = 'bd1:';

type Range = [from: number, to: number];

interface PartitionLedger {
  watermark: number;
  ranges: Range[];
  dirty: boolean;
}

export function ledgerGroup(deadLetterTopic: string): string {
  return `brokerdeck-redrive.${deadLetterTopic}`;
}

export function encodeRanges(ranges: Range[]): string {
  return PREFIX + ranges.map(([a, b]) => (a === b ? a.toString(36) : `${a.toString(36)}-${b.toString(36)}`)).join(',');
}

export function decodeRanges(metadata: string | null | undefined): Range[] {
  if (!metadata || !metadata.startsWith(PREFIX)) return [];
  const out: Range[] = [];
  for (const part of metadata.slice(PREFIX.length).split(',')) {
    if (!part) continue;
    const [a, b] = part.split('-');
    const from = parseInt(a!, 36);
    const to = b === undefined ? from : parseInt(b, 36);
    if (Number.isFinite(from) && Number.isFinite(to) && to >= from) out.push([from, to]);
  }
  return out;
}

/** Adds an offset to sorted, disjoint, non-adjacent ranges. */
function insert(ranges: Range[], o: number): void {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid]![1] < o) lo = mid + 1;
    else hi = mid;
  }
  const at = ranges[lo];
  if (at && at[0] <= o && o <= at[1]) return;
  const prev = ranges[lo - 1];
  const joinsPrev = prev !== undefined && prev[1] === o - 1;
  const joinsNext = at !== undefined && at[0] === o + 1;
  if (joinsPrev && joinsNext) {
    prev[1] = at[1];
    ranges.splice(lo, 1);
  } else if (joinsPrev) prev[1] = o;
  else if (joinsNext) at[0] = o;
  else ranges.splice(lo, 0, [o, o]);
}

export class RedriveLedger {
  readonly group: string;
  private readonly partitions = new Map<number, PartitionLedger>();
  private coordinator: { host: string; port: number } | null = null;

  constructor(
    private readonly admin: Admin,
    readonly topic: string,
    private readonly logger: Logger,
  ) {
    this.group = ledgerGroup(topic);
  }

  async load(): Promise<void> {
    const result = await this.admin.listConsumerGroupOffsets({ groups: [{ groupId: this.group, topics: null }] });
    this.partitions.clear();
    for (const g of result) {
      for (const t of g.topics) {
        if (t.name !== this.topic) continue;
        for (const p of t.partitions) {
          const watermark = Math.max(0, Number(p.committedOffset));
          this.partitions.set(p.partitionIndex, { watermark, ranges: decodeRanges(p.metadata).filter(([, b]) => b >= watermark), dirty: false });
        }
      }
    }
  }

  has(partition: number, offset: number): boolean {
    const p = this.partitions.get(partition);
    if (!p) return false;
    if (offset < p.watermark) return true;
    // While a job runs its acknowledged batches leave many small ranges (each lane's records are
    // spread over the partition), and the records read next lie past all of them.
    const ranges = p.ranges;
    const last = ranges[ranges.length - 1];
    if (!last || offset > last[1]) return false;
    let lo = 0;
    let hi = ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ranges[mid]![1] < offset) lo = mid + 1;
      else hi = mid;
    }
    return ranges[lo]![0] <= offset;
  }

  add(partition: number, offset: number): void {
    let p = this.partitions.get(partition);
    if (!p) this.partitions.set(partition, (p = { watermark: 0, ranges: [], dirty: false }));
    if (offset < p.watermark) return;
    insert(p.ranges, offset);
    // A range that starts at the watermark becomes part of it.
    const first = p.ranges[0];
    if (first && first[0] <= p.watermark) {
      p.watermark = first[1] + 1;
      p.ranges.shift();
    }
    p.dirty = true;
  }

  /**
   * Adds many offsets at once (a batch the broker acknowledged): each partition's offsets are
   * merged into its ranges in one pass, where adding them one by one would insert into the
   * middle of a long list of ranges for each.
   */
  addAll(records: ReadonlyArray<{ partition: number; offset: number }>): void {
    const byPartition = new Map<number, number[]>();
    for (const r of records) {
      let list = byPartition.get(r.partition);
      if (!list) byPartition.set(r.partition, (list = []));
      list.push(r.offset);
    }
    for (const [partition, offsets] of byPartition) {
      if (offsets.length < 8) {
        for (const o of offsets) this.add(partition, o);
        continue;
      }
      let p = this.partitions.get(partition);
      if (!p) this.partitions.set(partition, (p = { watermark: 0, ranges: [], dirty: false }));
      offsets.sort((a, b) => a - b);
      const merged: Range[] = [];
      const push = (a: number, b: number) => {
        const last = merged[merged.length - 1];
        if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
        else merged.push([a, b]);
      };
      let i = 0;
      let j = 0;
      const ranges = p.ranges;
      while (i < ranges.length || j < offsets.length) {
        const r = ranges[i];
        const o = offsets[j];
        if (o === undefined || (r !== undefined && r[0] <= o)) {
          push(r![0], r![1]);
          i++;
        } else {
          if (o >= p.watermark) push(o, o);
          j++;
        }
      }
      // A range that starts at the watermark becomes part of it.
      const first = merged[0];
      if (first && first[0] <= p.watermark) {
        p.watermark = Math.max(p.watermark, first[1] + 1);
        merged.shift();
      }
      p.ranges = merged;
      p.dirty = true;
    }
  }

  /** Finds the group's coordinator ahead of the first commit, so a job's start pays for that round trip beside its other work. */
  async prepare(): Promise<void> {
    this.coordinator ??= await findCoordinator(this.admin, this.group);
  }

  /**
   * Writes every partition that changed since the last commit. What it writes
   * is taken when it is called: records added while it runs are left for the
   * next commit, and a failed commit leaves its partitions to be written again.
   */
  async commit(): Promise<void> {
    const dirty = [...this.partitions].filter(([, p]) => p.dirty);
    if (dirty.length === 0) return;
    const partitions = dirty.map(([partition, p]) => {
      let metadata = encodeRanges(p.ranges);
      if (metadata.length > METADATA_MAX) {
        // Too many scattered ranges for one commit: keep the lowest ones. The highest are
        // forgotten, which only means they could be re-driven again.
        let keep = p.ranges.length;
        while (keep > 0 && encodeRanges(p.ranges.slice(0, keep)).length > METADATA_MAX) keep = Math.floor(keep * 0.9);
        this.logger.warn('re-drive ledger full: some re-driven ranges are not remembered', { topic: this.topic, partition, ranges: p.ranges.length, kept: keep });
        metadata = encodeRanges(p.ranges.slice(0, keep));
      }
      return { partitionIndex: partition, committedOffset: BigInt(p.watermark), committedLeaderEpoch: -1, committedMetadata: metadata };
    });
    for (const [, p] of dirty) p.dirty = false;
    try {
      this.coordinator ??= await findCoordinator(this.admin, this.group);
      await commitWithMetadata(this.admin, this.coordinator, this.group, [{ name: this.topic, partitions }]);
    } catch (error) {
      // The coordinator may have moved (or the broker restarted): ask again next time.
      this.coordinator = null;
      for (const [, p] of dirty) p.dirty = true;
      throw error;
    }
  }
}

interface CommitPartition {
  partitionIndex: number;
  committedOffset: bigint;
  committedLeaderEpoch: number;
  committedMetadata: string | null;
}

type OffsetCommitApi = (connection: Connection, groupId: string, generation: number, memberId: string, groupInstanceId: string | null, topics: Array<{ name: string; partitions: CommitPartition[] }>, cb: (error: Error | null) => void) => void;

/**
 * OffsetCommit as a non-member (generation -1), like the admin client's
 * alterConsumerGroupOffsets, but with commit metadata, which that method
 * does not send.
 */
async function findCoordinator(admin: Admin, groupId: string): Promise<{ host: string; port: number }> {
  const [coordinator] = await admin.findCoordinator({ keyType: 0, keys: [groupId] });
  if (!coordinator) throw new Error(`no coordinator for group ${groupId}`);
  return { host: coordinator.host, port: coordinator.port };
}

async function commitWithMetadata(admin: Admin, broker: { host: string; port: number }, groupId: string, topics: Array<{ name: string; partitions: CommitPartition[] }>): Promise<void> {
  const internals = admin as unknown as {
    [kGetConnection](broker: { host: string; port: number }, cb: (error: Error | null, connection?: Connection) => void): void;
    [kGetApi](name: string, cb: (error: Error | null, api?: OffsetCommitApi) => void): void;
  };
  await new Promise<void>((resolve, reject) => {
    internals[kGetConnection](broker, (error, connection) => {
      if (error || !connection) return reject(error ?? new Error('no connection to the group coordinator'));
      internals[kGetApi]('OffsetCommit', (error2, api) => {
        if (error2 || !api) return reject(error2 ?? new Error('the broker does not support OffsetCommit'));
        api(connection, groupId, -1, '', null, topics, (error3) => (error3 ? reject(error3) : resolve()));
      });
    });
  });
}
