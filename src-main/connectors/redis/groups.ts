/**
 * Consumer groups of streams as the contract's groups. A group belongs to one
 * stream, so its id is `<stream>#<group>`. Its lag is Redis 7's own (XINFO
 * GROUPS `lag`, entries added minus entries read) where the server knows it;
 * where it answers nil (entries deleted in the undelivered range, or Redis 6),
 * the entries after the group's last-delivered id are counted on the server,
 * up to LAG_COUNT_MAX (more is shown as that many). Its time lag is the age of
 * the oldest entry not yet delivered to it.
 */
import { ApiError } from '../../contract/errors.js';
import type { GroupInfo, GroupPartitionLag } from '../../contract/types.js';
import type { RedisClient } from './client.js';
import { compareIds, idTime } from './records.js';
import type { StreamFacts } from './streams.js';

export const LAG_COUNT_MAX = 1_000_000;

const COUNT_SCRIPT = `
local n, start, max = 0, ARGV[1], tonumber(ARGV[2])
while n < max do
  local r = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 10000)
  n = n + #r
  if #r < 10000 then return n end
  start = '(' .. r[#r][1]
end
return n
`;

export interface RawGroup {
  name: string;
  consumers: number;
  pending: number;
  lastDeliveredId: string;
  entriesRead: number | null;
  lag: number | null;
}

export interface ConsumerFacts {
  name: string;
  pending: number;
  idleMs: number;
  inactiveMs: number | null;
}

/** A group as Brokerdeck shows it: the contract's fields and Redis's own. */
export interface RedisGroupInfo extends GroupInfo {
  stream: string;
  group: string;
  pending: number;
  lastDeliveredId: string;
  entriesRead: number | null;
  consumers: ConsumerFacts[];
  /** The lag was counted here (Redis did not know it), or capped at LAG_COUNT_MAX. */
  lagCounted?: boolean;
}

export const groupId = (stream: string, group: string) => `${stream}#${group}`;

function flat(a: unknown[]): Map<string, unknown> {
  const m = new Map<string, unknown>();
  for (let i = 0; i + 1 < a.length; i += 2) m.set(String(a[i]), a[i + 1]);
  return m;
}

export function parseGroups(answer: unknown): RawGroup[] {
  if (!Array.isArray(answer)) return [];
  return answer.map((g) => {
    const m = flat(g as unknown[]);
    const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
    return {
      name: String(m.get('name')),
      consumers: Number(m.get('consumers') ?? 0),
      pending: Number(m.get('pending') ?? 0),
      lastDeliveredId: String(m.get('last-delivered-id') ?? '0-0'),
      entriesRead: n(m.get('entries-read')),
      lag: n(m.get('lag')),
    };
  });
}

export function parseConsumers(answer: unknown): ConsumerFacts[] {
  if (!Array.isArray(answer)) return [];
  return answer.map((c) => {
    const m = flat(c as unknown[]);
    return { name: String(m.get('name')), pending: Number(m.get('pending') ?? 0), idleMs: Number(m.get('idle') ?? 0), inactiveMs: m.has('inactive') ? Number(m.get('inactive')) : null };
  });
}

export class Groups {
  private scripts: boolean | null = null;

  constructor(private readonly client: RedisClient) {}

  async raw(stream: string): Promise<RawGroup[]> {
    return parseGroups(await this.client.call('XINFO', 'GROUPS', stream));
  }

  async countAfterId(stream: string, id: string): Promise<number> {
    return this.countAfter(stream, id);
  }

  /** Entries after `id`, counted on the server up to LAG_COUNT_MAX. */
  private async countAfter(stream: string, id: string): Promise<number> {
    if (this.scripts !== false) {
      try {
        const n = Number(await this.client.eval(COUNT_SCRIPT, 1, stream, `(${id}`, String(LAG_COUNT_MAX)));
        this.scripts = true;
        return n;
      } catch (error) {
        if (!/NOPERM|NOSCRIPT|unknown command|disabled/i.test(String((error as Error).message))) throw error;
        this.scripts = false;
      }
    }
    let n = 0;
    let from = `(${id}`;
    while (n < 100_000) {
      const r = await this.client.xrange(stream, from, '+', 'COUNT', 10_000);
      n += r.length;
      if (r.length < 10_000) break;
      from = `(${r[r.length - 1]![0]}`;
    }
    return n;
  }

  /** Every group of `streams` (their facts from XINFO STREAM), with consumers, lag and time lag. */
  async describe(facts: StreamFacts[], only?: { stream: string; group: string }): Promise<RedisGroupInfo[]> {
    const withGroups = facts.filter((f) => f.groups > 0 && (!only || f.name === only.stream));
    const perStream = await Promise.all(withGroups.map((f) => this.raw(f.name).catch(() => [] as RawGroup[])));
    const jobs: Array<Promise<RedisGroupInfo>> = [];
    withGroups.forEach((f, i) => {
      for (const g of perStream[i]!) {
        if (only && g.name !== only.group) continue;
        jobs.push(this.one(f, g));
      }
    });
    return (await Promise.all(jobs)).sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
  }

  private async one(f: StreamFacts, g: RawGroup): Promise<RedisGroupInfo> {
    let lag = g.lag;
    let counted = false;
    const behind = f.last !== null && compareIds(g.lastDeliveredId, f.last) < 0;
    if (!behind) lag = 0;
    else if (lag === null) {
      counted = true;
      lag = f.first !== null && compareIds(g.lastDeliveredId, f.first) < 0 ? f.length : await this.countAfter(f.name, g.lastDeliveredId);
    }
    const [next, consumers] = await Promise.all([
      behind ? this.client.xrange(f.name, `(${g.lastDeliveredId}`, '+', 'COUNT', 1) : Promise.resolve([] as Array<[string, string[]]>),
      this.client.call('XINFO', 'CONSUMERS', f.name, g.name).then(parseConsumers, () => [] as ConsumerFacts[]),
    ]);
    const oldest = next[0]?.[0];
    const timeLagMs = oldest ? Math.max(0, Date.now() - idTime(oldest)) : 0;
    const end = f.entriesAdded ?? f.length;
    const partition: GroupPartitionLag = { topic: f.name, partition: 0, committed: g.entriesRead, end, lag, timeLagMs };
    const info: RedisGroupInfo = {
      groupId: groupId(f.name, g.name),
      state: consumers.length === 0 ? 'Empty' : 'Stable',
      members: consumers.map((c) => ({ memberId: c.name, clientId: c.name, assignments: [{ topic: f.name, partition: 0 }] })),
      partitions: [partition],
      totalLag: lag,
      stream: f.name,
      group: g.name,
      pending: g.pending,
      lastDeliveredId: g.lastDeliveredId,
      entriesRead: g.entriesRead,
      consumers,
    };
    if (counted || lag >= LAG_COUNT_MAX) info.lagCounted = true;
    return info;
  }

  /**
   * Which stream and group an id names: `<stream>#<group>`, where either may hold
   * `#` itself, so each split is tried against the groups that exist.
   */
  async resolve(id: string, field = 'groupId'): Promise<{ stream: string; group: string }> {
    const splits: Array<{ stream: string; group: string }> = [];
    for (let i = id.indexOf('#'); i > 0; i = id.indexOf('#', i + 1)) splits.push({ stream: id.slice(0, i), group: id.slice(i + 1) });
    if (splits.length === 0) throw new ApiError('NOT_FOUND', `${field}: "${id}" does not name a consumer group: use <stream>#<group>`, field);
    for (const s of splits) {
      if (!s.group) continue;
      const type = await this.client.type(s.stream);
      if (type !== 'stream') continue;
      const groups = await this.raw(s.stream);
      if (groups.some((g) => g.name === s.group)) return s;
    }
    throw new ApiError('NOT_FOUND', `consumer group "${id}" does not exist (no stream has that group)`, field);
  }

  async destroy(stream: string, group: string): Promise<void> {
    await this.client.call('XGROUP', 'DESTROY', stream, group);
  }
}

/**
 * Where XGROUP SETID would put a group, and the lag it would leave: `earliest`
 * (every entry undelivered), `latest` (none), `timestamp` (entries from that
 * time on), `offset` (entries from that ordinal on). Pending entries stay
 * pending: SETID moves only the last-delivered id.
 */
export interface SetIdPlan {
  id: string;
  /** Entries the group will have read (ENTRIESREAD), where it is known without counting. */
  entriesRead: number | null;
  lagAfter: number;
}
