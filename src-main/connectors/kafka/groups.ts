/**
 * Consumer groups: state, members and their assignments, and per partition
 * the committed offset, the end offset, the lag (end − committed) and the
 * time lag (how old the oldest unconsumed record is). Also resetting the
 * offsets of an inactive group, with a preview of each change, and deleting
 * a group.
 *
 * The time lag needs the timestamp of the record at the committed offset.
 * That never changes for a given offset, so it is fetched once and cached:
 * a refresh only reads records for partitions whose commit moved.
 */
import type { Admin } from '@platformatic/kafka';
import { ApiError } from '../../contract/errors.js';
import type { GroupInfo, GroupPartitionLag } from '../../contract/types.js';
import { errorChain } from './client.js';
import type { Fetcher } from './fetcher.js';
import type { GroupOffsetChange, GroupOffsetsPreview } from '../../contract/types.js';

export type { GroupOffsetChange, GroupOffsetsPreview };

/** Enough for the first record batch of most partitions; bigger ones are asked for again, alone. */
const TIME_LAG_FETCH_BYTES = 64 * 1024;
const TIMESTAMP_CACHE_MAX = 200_000;

export type ResetTo = 'earliest' | 'latest' | 'timestamp' | 'offset';

export interface GroupOffsetsResetArgs {
  groupId: string;
  /** Only this topic; by default every topic the group has committed offsets for. */
  topic?: string | undefined;
  /** Only these partitions of `topic`. */
  partitions?: number[] | undefined;
  to: ResetTo;
  timestamp?: number | undefined;
  offset?: number | undefined;
}

/** `PREPARING_REBALANCE` → `PreparingRebalance`, as Kafka's tools print it. */
export function stateName(raw: string): string {
  return raw
    .toLowerCase()
    .split('_')
    .map((w) => (w ? w[0]!.toUpperCase() + w.slice(1) : w))
    .join('');
}

interface Committed {
  topic: string;
  partition: number;
  offset: number | null;
}

export class Groups {
  private readonly timestamps = new Map<string, number>();

  constructor(
    private readonly admin: Admin,
    private readonly fetcher: Fetcher,
  ) {}

  private rememberTimestamp(key: string, ts: number): void {
    if (this.timestamps.size >= TIMESTAMP_CACHE_MAX) this.timestamps.delete(this.timestamps.keys().next().value!);
    this.timestamps.set(key, ts);
  }

  async groupIds(): Promise<Map<string, { state: string; protocolType: string }>> {
    const listed = await this.admin.listGroups();
    const out = new Map<string, { state: string; protocolType: string }>();
    for (const [id, g] of listed) {
      // Kafka Connect's worker groups and share groups commit no offsets.
      if (g.protocolType === 'connect' || g.groupType === 'share') continue;
      out.set(id, { state: stateName(g.state), protocolType: g.protocolType });
    }
    return out;
  }

  private async committed(groupIds: string[]): Promise<Map<string, Committed[]>> {
    const out = new Map<string, Committed[]>();
    if (groupIds.length === 0) return out;
    const result = await this.admin.listConsumerGroupOffsets({ groups: groupIds });
    for (const g of result) {
      const list: Committed[] = [];
      for (const t of g.topics) {
        for (const p of t.partitions) {
          const offset = Number(p.committedOffset);
          list.push({ topic: t.name, partition: p.partitionIndex, offset: offset >= 0 ? offset : null });
        }
      }
      out.set(g.groupId, list);
    }
    return out;
  }

  /** Timestamps of the records at these offsets (the first record at or after each). */
  private async timestampsAt(wanted: Array<{ topic: string; partition: number; offset: number }>): Promise<void> {
    const byTopic = new Map<string, Array<{ partition: number; offset: number }>>();
    for (const w of wanted) {
      const key = `${w.topic}\u0000${w.partition}\u0000${w.offset}`;
      if (this.timestamps.has(key)) continue;
      const list = byTopic.get(w.topic) ?? [];
      if (!list.some((x) => x.partition === w.partition && x.offset === w.offset)) list.push({ partition: w.partition, offset: w.offset });
      byTopic.set(w.topic, list);
    }
    await Promise.all(
      [...byTopic].map(async ([topic, list]) => {
        // One fetch per partition and offset: partitions of the same topic share requests.
        const rounds: Array<Array<{ partition: number; offset: number }>> = [];
        for (const item of list) {
          let round = rounds.find((r) => !r.some((x) => x.partition === item.partition));
          if (!round) rounds.push((round = []));
          round.push(item);
        }
        for (const round of rounds) {
          let got;
          try {
            got = await this.fetcher.fetch(topic, round.map((r) => ({ partition: r.partition, offset: r.offset, maxBytes: TIME_LAG_FETCH_BYTES })));
          } catch {
            continue;
          }
          const missing: Array<{ partition: number; offset: number }> = [];
          for (const r of round) {
            const f = got.get(r.partition);
            const first = f?.records[0];
            if (first) this.rememberTimestamp(`${topic}\u0000${r.partition}\u0000${r.offset}`, first.timestamp);
            else if (f?.outOfRange && f.logStart > r.offset) missing.push({ partition: r.partition, offset: f.logStart });
            else missing.push(r);
          }
          for (const m of missing) {
            try {
              const alone = await this.fetcher.fetch(topic, [{ partition: m.partition, offset: m.offset, maxBytes: 4 * 1024 * 1024 }]);
              const first = alone.get(m.partition)?.records[0];
              if (first) {
                for (const r of round) if (r.partition === m.partition) this.rememberTimestamp(`${topic}\u0000${r.partition}\u0000${r.offset}`, first.timestamp);
              }
            } catch {
              /* the time lag of this partition stays unknown this round */
            }
          }
        }
      }),
    );
  }

  async list(only?: string[]): Promise<GroupInfo[]> {
    const listed = await this.groupIds();
    const ids = only ? only.filter((id) => listed.has(id)) : [...listed.keys()].sort();
    if (ids.length === 0) return [];
    const [described, committed] = await Promise.all([
      this.admin.describeGroups({ groups: ids }).catch(() => new Map()),
      this.committed(ids),
    ]);

    const groups: GroupInfo[] = [];
    const partitionsOf = new Map<string, Set<number>>();
    const note = (topic: string, partition: number) => {
      const set = partitionsOf.get(topic) ?? new Set<number>();
      set.add(partition);
      partitionsOf.set(topic, set);
    };
    const perGroup = new Map<string, Committed[]>();
    for (const id of ids) {
      const d = described.get(id);
      const members: GroupInfo['members'] = [];
      const rows = new Map<string, Committed>();
      for (const c of committed.get(id) ?? []) rows.set(`${c.topic}\u0000${c.partition}`, c);
      if (d) {
        for (const m of d.members.values()) {
          const assignments: Array<{ topic: string; partition: number }> = [];
          for (const a of m.assignments?.values() ?? []) {
            for (const p of a.partitions) {
              assignments.push({ topic: a.topic, partition: p });
              if (!rows.has(`${a.topic}\u0000${p}`)) rows.set(`${a.topic}\u0000${p}`, { topic: a.topic, partition: p, offset: null });
            }
          }
          members.push({ memberId: m.id, clientId: m.clientId, host: m.clientHost, assignments });
        }
      }
      for (const r of rows.values()) note(r.topic, r.partition);
      perGroup.set(id, [...rows.values()]);
      groups.push({ groupId: id, state: d ? stateName(d.state) : listed.get(id)!.state, members, partitions: [], totalLag: 0 });
    }

    // End offsets (and log starts, for partitions nobody committed) in one round per leader.
    const ends = new Map<string, { low: number; high: number }>();
    const topics = [...partitionsOf.keys()];
    const partitionCounts = await Promise.all(topics.map((t) => this.fetcher.partitionCount(t).catch(() => 0)));
    const marks = await this.fetcher.watermarks(topics.map((t, i) => ({ name: t, partitions: partitionCounts[i]! })));
    for (const [t, list] of marks) list.forEach((m, p) => ends.set(`${t}\u0000${p}`, m));

    const now = Date.now();
    const lagging: Array<{ topic: string; partition: number; offset: number }> = [];
    for (const rows of perGroup.values()) {
      for (const r of rows) {
        const m = ends.get(`${r.topic}\u0000${r.partition}`);
        if (m && r.offset !== null && r.offset < m.high) lagging.push({ topic: r.topic, partition: r.partition, offset: Math.max(r.offset, m.low) });
      }
    }
    await this.timestampsAt(lagging);

    for (const g of groups) {
      const rows = perGroup.get(g.groupId)!;
      const partitions: GroupPartitionLag[] = [];
      for (const r of rows.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1))) {
        const m = ends.get(`${r.topic}\u0000${r.partition}`) ?? { low: 0, high: 0 };
        // Nothing committed yet: a consumer starting now from the earliest offset would read it all.
        const from = r.offset ?? m.low;
        const lag = Math.max(0, m.high - Math.max(from, m.low));
        let timeLagMs = 0;
        if (lag > 0) {
          const ts = this.timestamps.get(`${r.topic}\u0000${r.partition}\u0000${Math.max(from, m.low)}`);
          if (ts !== undefined) timeLagMs = Math.max(0, now - ts);
        }
        partitions.push({ topic: r.topic, partition: r.partition, committed: r.offset, end: m.high, lag, timeLagMs });
      }
      g.partitions = partitions;
      g.totalLag = partitions.reduce((s, p) => s + p.lag, 0);
    }
    return groups;
  }

  async preview(a: GroupOffsetsResetArgs): Promise<GroupOffsetsPreview> {
    if (a.to === 'timestamp' && a.timestamp === undefined) throw new ApiError('INVALID_ARGUMENT', 'to "timestamp" needs a timestamp (epoch ms)', 'timestamp');
    if (a.to === 'offset' && a.offset === undefined) throw new ApiError('INVALID_ARGUMENT', 'to "offset" needs an offset', 'offset');
    if (a.partitions && !a.topic) throw new ApiError('INVALID_ARGUMENT', 'partitions need a topic', 'partitions');
    const listed = await this.groupIds();
    const known = listed.get(a.groupId);
    const committed = (await this.committed([a.groupId])).get(a.groupId) ?? [];
    if (!known && committed.length === 0 && !a.topic) throw new ApiError('NOT_FOUND', `consumer group "${a.groupId}" does not exist`, 'groupId');
    const described = known ? (await this.admin.describeGroups({ groups: [a.groupId] }).catch(() => new Map())).get(a.groupId) : undefined;
    const members = described?.members.size ?? 0;
    const state = described ? stateName(described.state) : (known?.state ?? 'Dead');

    let rows: Committed[];
    if (a.topic) {
      const count = await this.fetcher.partitionCount(a.topic);
      const wanted = a.partitions ?? Array.from({ length: count }, (_, i) => i);
      for (const p of wanted) if (p >= count) throw new ApiError('INVALID_ARGUMENT', `topic "${a.topic}" has no partition ${p}`, 'partitions');
      rows = wanted.map((p) => committed.find((c) => c.topic === a.topic && c.partition === p) ?? { topic: a.topic!, partition: p, offset: null });
    } else {
      rows = committed;
    }
    if (rows.length === 0) throw new ApiError('INVALID_ARGUMENT', `consumer group "${a.groupId}" has no committed offsets: name a topic to reset`, 'topic');

    const topics = [...new Set(rows.map((r) => r.topic))];
    const changes: GroupOffsetChange[] = [];
    for (const topic of topics) {
      const parts = rows.filter((r) => r.topic === topic).map((r) => r.partition);
      const [lows, highs] = await Promise.all([this.fetcher.offsets(topic, parts, -2), this.fetcher.offsets(topic, parts, -1)]);
      const byTime = a.to === 'timestamp' ? await this.fetcher.offsets(topic, parts, a.timestamp!) : null;
      for (const r of rows.filter((x) => x.topic === topic)) {
        const low = lows.get(r.partition) ?? 0;
        const high = highs.get(r.partition) ?? 0;
        let target: number;
        if (a.to === 'earliest') target = low;
        else if (a.to === 'latest') target = high;
        else if (a.to === 'timestamp') target = byTime!.get(r.partition) ?? high;
        else target = Math.min(Math.max(a.offset!, low), high);
        const current = r.offset;
        changes.push({
          topic,
          partition: r.partition,
          current,
          target,
          end: high,
          lagBefore: Math.max(0, high - Math.max(current ?? low, low)),
          lagAfter: Math.max(0, high - target),
        });
      }
    }
    const canApply = members === 0;
    return {
      groupId: a.groupId,
      state,
      canApply,
      ...(canApply ? {} : { reason: `consumer group "${a.groupId}" has ${members} active member${members === 1 ? '' : 's'}: stop its consumers before resetting its offsets` }),
      changes,
      applied: false,
    };
  }

  async reset(a: GroupOffsetsResetArgs): Promise<GroupOffsetsPreview> {
    const preview = await this.preview(a);
    if (!preview.canApply) throw new ApiError('PRECONDITION_FAILED', preview.reason!, 'groupId');
    const byTopic = new Map<string, Array<{ partition: number; offset: bigint }>>();
    for (const c of preview.changes) {
      const list = byTopic.get(c.topic) ?? [];
      list.push({ partition: c.partition, offset: BigInt(c.target) });
      byTopic.set(c.topic, list);
    }
    try {
      await this.admin.alterConsumerGroupOffsets({ groupId: a.groupId, topics: [...byTopic].map(([name, partitionOffsets]) => ({ name, partitionOffsets })) });
    } catch (error) {
      if (errorChain(error).some((e) => e.apiId === 'UNKNOWN_MEMBER_ID' || e.apiId === 'REBALANCE_IN_PROGRESS' || e.apiId === 'ILLEGAL_GENERATION')) {
        throw new ApiError('PRECONDITION_FAILED', `consumer group "${a.groupId}" became active: stop its consumers before resetting its offsets`, 'groupId');
      }
      throw error;
    }
    return { ...preview, applied: true };
  }

  async delete(groupId: string): Promise<void> {
    try {
      await this.admin.deleteGroups({ groups: [groupId] });
    } catch (error) {
      const ids = errorChain(error).map((e) => e.apiId);
      if (ids.includes('GROUP_ID_NOT_FOUND')) throw new ApiError('NOT_FOUND', `consumer group "${groupId}" does not exist`, 'groupId');
      if (ids.includes('NON_EMPTY_GROUP')) throw new ApiError('PRECONDITION_FAILED', `consumer group "${groupId}" has active members: stop its consumers before deleting it`, 'groupId');
      throw error;
    }
  }
}
