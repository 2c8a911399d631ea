/**
 * Re-drive on Redis, as jobs of the shared machinery (progress, rate limit,
 * cancel, audit row). Each dead letter moves in one atomic step, so nothing is
 * lost or doubled:
 *
 * - a pending entry: a copy of its fields is added to its stream (or the target
 *   stream) with XADD and the dead delivery is acknowledged (XACK);
 * - an entry of a dead-letter stream: a copy goes to its origin stream (or the
 *   target) and the entry is deleted (XDEL);
 * - a list element: it moves to the list (or the target list), LMOVE for a whole
 *   list, LREM + LPUSH for chosen elements.
 *
 * The step is a Lua script that first checks the dead letter is still there
 * (still pending, still in the stream, still in the list), so a second job, or
 * a consumer that acknowledged it meanwhile, never makes a second copy. Where
 * scripts are refused (an ACL without EVAL), a MULTI/EXEC of the copy and the
 * removal does it, and a copy whose removal found nothing is taken back. Where
 * the two keys live on different nodes of a cluster (no `{hash tag}` in common)
 * neither can span them: the copy is written first and the removal follows, and
 * the same take-back applies. Steps are sent many at a time (pipelined).
 */
import type { RedriveJob } from '../../contract/types.js';
import type { CompiledFilter } from '../../ground/filter.js';
import type { Logger } from '../../ground/logger.js';
import type { JobControl, Jobs } from '../../jobs/jobs.js';
import { startingRedrive, type TrackedRedrive } from '../../jobs/redrives.js';
import type { RedisClient } from './client.js';
import { originalFields, originOf, pendingOf, type PendingEntry } from './deadletters.js';
import { elementId, matchesElement, readFromHead } from './lists.js';
import { entrySubject, shape, toEntry, type Entry, type RawEntry } from './records.js';
import { RateLimit } from '../../jobs/pace.js';

export type RedisRedriveJob = TrackedRedrive<RedriveJob>;

export const REDRIVE_NOTICE =
  'Each dead letter moves in one atomic step: a copy is added to the stream (XADD) together with the acknowledgement of the dead delivery (XACK) ' +
  'or the deletion from the dead-letter stream (XDEL); list elements move with LMOVE. The step checks first that the dead letter is still there, ' +
  'so nothing is lost or doubled. In a cluster, keys without a common {hash tag} sit on different nodes: there the copy is made first and the original removed after.';

/**
 * Moves several entries of one source to one target: for each, `id`, its field
 * count and fields. An entry no longer there (no longer pending, deleted) is
 * left alone and answered with an empty string; the others with their new id.
 */
const STREAM_MOVE = `
local mode, group, out, i = ARGV[1], ARGV[2], {}, 3
while i <= #ARGV do
  local id, n = ARGV[i], tonumber(ARGV[i + 1])
  local fields = {}
  for k = 1, n do fields[k] = ARGV[i + 1 + k] end
  i = i + 2 + n
  local there
  if mode == 'ack' then there = #redis.call('XPENDING', KEYS[1], group, id, id, 1) > 0 else there = #redis.call('XRANGE', KEYS[1], id, id) > 0 end
  if there then
    out[#out + 1] = redis.call('XADD', KEYS[2], '*', unpack(fields))
    if mode == 'ack' then redis.call('XACK', KEYS[1], group, id) else redis.call('XDEL', KEYS[1], id) end
  else
    out[#out + 1] = ''
  end
end
return out
`;
/** Entries per script call: one call holds the server for all of them. */
const MOVES_PER_CALL = 100;

const LIST_MOVE = `
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
`;

type Mode = 'script' | 'multi' | 'sequential';

export interface RedrivePlan {
  kind: 'pending' | 'stream' | 'list';
  /** The source as the dead-letter list names it. */
  source: string;
  /** The key dead letters are read from (the stream of a group, a dead-letter stream, a list). */
  key: string;
  group?: string;
  minDeliveries?: number;
  /** Where each dead letter goes when it does not say: the target given, else the source's own. */
  target: string | null;
  /** A target was given: entries' own origins are not used. */
  targetGiven: boolean;
  ids: string[] | null;
  filter: CompiledFilter | null;
  ratePerSecond: number | null;
  total: number;
  /** Dead-letter streams and lists: only what was there when the job started (the last id, the length). */
  endId?: string | null;
  /** Lists: their length when the job began. */
  length?: number;
}

const refusedScript = (e: unknown) => /NOPERM|NOSCRIPT|unknown command|scripts? (are )?disabled/i.test(String((e as Error)?.message ?? e));
const crossSlot = (e: unknown) => /CROSSSLOT/i.test(String((e as Error)?.message ?? e));

type Scripted = RedisClient & {
  bdStreamMove(source: string, target: string, mode: string, group: string, ...entries: Array<string | Buffer>): Promise<string[]>;
  bdListMove(source: string, target: string, value: Buffer): Promise<number>;
};

export function defineScripts(client: RedisClient): void {
  client.defineCommand('bdStreamMove', { numberOfKeys: 2, lua: STREAM_MOVE });
  client.defineCommand('bdListMove', { numberOfKeys: 2, lua: LIST_MOVE });
}

export class RedisRedriveRun {
  readonly control: JobControl<RedisRedriveJob>;
  private readonly rate: RateLimit;
  private mode: Mode = 'script';
  private readonly batch: number;

  constructor(
    jobs: Jobs<RedisRedriveJob, RedriveJob>,
    private readonly plan: RedrivePlan,
    private readonly client: RedisClient,
    connectionId: string,
    private readonly logger: Logger,
  ) {
    this.rate = new RateLimit(plan.ratePerSecond);
    // With a rate limit, small batches keep the pace even; without, large ones keep the pipe full.
    this.batch = plan.ratePerSecond ? Math.max(1, Math.min(1_000, Math.ceil(plan.ratePerSecond / 10))) : 1_000;
    const selection = plan.ids ? `${plan.ids.length} chosen entries` : plan.filter ? 'entries matching a filter' : 'all entries';
    this.control = jobs.add(startingRedrive(jobs.newId(), {
      connectionId,
      source: plan.source,
      target: plan.target ?? '(each entry\'s origin)',
      total: plan.total,
      ratePerSecond: plan.ratePerSecond,
      selection,
    }));
    void this.control.run(() => this.work());
  }

  get job(): RedisRedriveJob {
    return this.control.job;
  }

  private note(text: string): void {
    if (!this.job.error) this.job.error = text;
  }

  private async work(): Promise<void> {
    this.control.running();
    if (this.plan.kind === 'pending') await this.pending();
    else if (this.plan.kind === 'stream') await this.deadStream();
    else await this.list();
    if (!this.plan.ids) this.job.total = this.job.moved + this.job.failed;
  }

  /** Moves stream entries to `target`, MOVES_PER_CALL per script call; each answer is the new id, or null when the entry was no longer there. */
  private moveEntries(mode: 'ack' | 'del', target: string, moves: Array<{ e: Entry; fields: Array<string | Buffer> }>): Array<Promise<string | null>> {
    if (this.mode !== 'script') return moves.map(({ e, fields }) => this.moveEntry(mode, target, e, fields));
    const out: Array<Promise<string | null>> = [];
    for (let i = 0; i < moves.length; i += MOVES_PER_CALL) {
      const chunk = moves.slice(i, i + MOVES_PER_CALL);
      const args: Array<string | Buffer> = [];
      for (const { e, fields } of chunk) args.push(e.id, String(fields.length), ...fields);
      const call = (this.client as Scripted).bdStreamMove(this.plan.key, target, mode, this.plan.group ?? '', ...args).then(
        (ids) => ids.map((id) => (id ? String(id) : null)),
        // Refused (no scripts, keys on two nodes) or failed part-way: each entry again on its own,
        // where one already moved is found no longer there.
        () => Promise.all(chunk.map(({ e, fields }) => this.moveEntry(mode, target, e, fields))),
      );
      chunk.forEach((_, k) => out.push(call.then((ids) => ids[k] ?? null)));
    }
    return out;
  }

  /** Moves one stream entry: the copy and the removal together; null when it was no longer there. */
  private async moveEntry(mode: 'ack' | 'del', target: string, e: Entry, fields: Array<string | Buffer>): Promise<string | null> {
    const { key } = this.plan;
    const group = this.plan.group ?? '';
    if (this.mode === 'script') {
      try {
        const [id] = await (this.client as Scripted).bdStreamMove(key, target, mode, group, e.id, String(fields.length), ...fields);
        return id ? String(id) : null;
      } catch (error) {
        if (crossSlot(error)) return this.sequential(mode, target, e, fields);
        if (!refusedScript(error)) throw error;
        this.mode = 'multi';
        this.logger.warn('Redis refused scripts; re-driving with MULTI/EXEC', { source: this.plan.source });
      }
    }
    if (this.mode === 'multi') {
      try {
        const m = this.client.multi();
        m.call('XADD', target, '*', ...fields);
        if (mode === 'ack') m.call('XACK', key, group, e.id);
        else m.call('XDEL', key, e.id);
        const r = await m.exec();
        if (!r) return null;
        const [[addErr, id], [rmErr, removed]] = r as [[Error | null, unknown], [Error | null, unknown]];
        if (addErr) throw addErr;
        if (rmErr || Number(removed) === 0) {
          // Acknowledged or deleted by someone else meanwhile: the copy is taken back.
          await this.client.call('XDEL', target, String(id));
          return null;
        }
        return String(id);
      } catch (error) {
        if (!crossSlot(error)) throw error;
        return this.sequential(mode, target, e, fields);
      }
    }
    return this.sequential(mode, target, e, fields);
  }

  private async sequential(mode: 'ack' | 'del', target: string, e: Entry, fields: Array<string | Buffer>): Promise<string | null> {
    const { key } = this.plan;
    const id = String(await this.client.call('XADD', target, '*', ...fields));
    const removed = mode === 'ack' ? await this.client.call('XACK', key, this.plan.group ?? '', e.id) : await this.client.call('XDEL', key, e.id);
    if (Number(removed) === 0) {
      await this.client.call('XDEL', target, id);
      return null;
    }
    return id;
  }

  private count(results: PromiseSettledResult<string | number | null>[]): void {
    for (const r of results) {
      if (r.status === 'rejected') {
        this.job.failed++;
        this.note(String((r.reason as Error)?.message ?? r.reason));
      } else if (r.value !== null && r.value !== 0) this.job.moved++;
      // Otherwise it was no longer there (acknowledged, deleted or moved meanwhile): neither moved
      // nor failed, which the job's total tells apart.
    }
    this.control.progress();
  }

  private async readEntries(ids: string[]): Promise<Array<Entry | null>> {
    const got = await Promise.all(ids.map((id) => this.client.xrangeBuffer(this.plan.key, id, id) as unknown as Promise<RawEntry[]>));
    return got.map((r) => (r[0] ? toEntry(r[0]) : null));
  }

  private selected(e: Entry): boolean {
    return !this.plan.filter || this.plan.filter.all(entrySubject(e, shape(e.fields)));
  }

  /** Pending entries of a group, delivered at least the threshold (or the chosen ones), back to the stream. */
  private async pending(): Promise<void> {
    const { key, group } = this.plan;
    const target = this.plan.target ?? key;
    const ids = this.plan.ids;
    let after = '-';
    let i = 0;
    // The next batch is read while the current one moves (it lies past it, so the moves never touch it).
    const read = async (): Promise<{ batch: PendingEntry[]; entries: Array<Entry | null> } | null> => {
      let batch: PendingEntry[];
      if (ids) {
        if (i >= ids.length) return null;
        const chunk = ids.slice(i, i + this.batch);
        i += chunk.length;
        const found = await pendingOf(this.client, key, group!, chunk);
        batch = chunk.map((id) => found.get(id)).filter((p): p is PendingEntry => p !== undefined);
      } else {
        const page = (await this.client.call('XPENDING', key, group!, after, '+', String(this.batch))) as Array<[string, string, number, number]>;
        if (page.length === 0) return null;
        after = `(${page[page.length - 1]![0]}`;
        batch = page.filter(([, , , d]) => Number(d) >= (this.plan.minDeliveries ?? 1)).map(([id, consumer, idle, d]) => ({ id, consumer, idleMs: Number(idle), deliveries: Number(d) }));
      }
      return { batch, entries: batch.length > 0 ? await this.readEntries(batch.map((p) => p.id)) : [] };
    };
    let ahead = read();
    try {
      while (!this.control.cancelled) {
        const got = await ahead;
        if (!got) break;
        ahead = read();
        const { batch, entries } = got;
        const moves: Entry[] = [];
        entries.forEach((e, k) => {
          if (!e) {
            this.job.failed++;
            this.note(`entry ${batch[k]!.id} is pending but no longer in stream "${key}" (trimmed or deleted): there is nothing to copy; it stays pending`);
          } else if (this.selected(e)) moves.push(e);
        });
        await this.rate.take(moves.length, this.control.signal);
        if (this.control.cancelled) break;
        this.count(await Promise.allSettled(this.moveEntries('ack', target, moves.map((e) => ({ e, fields: e.fields.flatMap(([f, v]) => [f, v]) })))));
      }
    } finally {
      ahead.catch(() => {});
    }
  }

  /** A dead-letter stream's entries, each to its origin (or the target), as far as the stream went when the job began. */
  private async deadStream(): Promise<void> {
    const { key } = this.plan;
    const ids = this.plan.ids;
    let from = '-';
    let i = 0;
    const read = async (): Promise<Entry[] | null> => {
      if (ids) {
        if (i >= ids.length) return null;
        const chunk = ids.slice(i, i + this.batch);
        i += chunk.length;
        return (await this.readEntries(chunk)).filter((e): e is Entry => e !== null);
      }
      if (!this.plan.endId) return null;
      const raw = (await this.client.xrangeBuffer(key, from, this.plan.endId, 'COUNT', this.batch)) as unknown as RawEntry[];
      if (raw.length === 0) return null;
      const entries = raw.map(toEntry);
      from = `(${entries[entries.length - 1]!.id}`;
      return entries;
    };
    let ahead = read();
    try {
      while (!this.control.cancelled) {
        const entries = await ahead;
        if (!entries) break;
        ahead = read();
        const moves: Array<{ e: Entry; target: string }> = [];
        for (const e of entries) {
          if (!this.selected(e)) continue;
          const target = this.plan.targetGiven ? this.plan.target : (originOf(e).stream ?? this.plan.target);
          if (!target) {
            this.job.failed++;
            this.note(`entry ${e.id} names no origin stream and none can be read from "${key}"'s name: give a target`);
            continue;
          }
          moves.push({ e, target });
        }
        await this.rate.take(moves.length, this.control.signal);
        if (this.control.cancelled) break;
        const byTarget = new Map<string, Array<{ e: Entry; fields: Array<string | Buffer> }>>();
        for (const { e, target } of moves) {
          const list = byTarget.get(target) ?? [];
          list.push({ e, fields: originalFields(e) });
          byTarget.set(target, list);
        }
        this.count(await Promise.allSettled([...byTarget].flatMap(([target, list]) => this.moveEntries('del', target, list))));
      }
    } finally {
      ahead.catch(() => {});
    }
  }

  /** A list's elements back to the list it came from (or the target). */
  private async list(): Promise<void> {
    const { key } = this.plan;
    const target = this.plan.target!;
    if (!this.plan.ids && !this.plan.filter) {
      // The whole list, as long as it was when the job began: LMOVE takes the oldest each time, atomically.
      let left = this.plan.length ?? 0;
      while (left > 0 && !this.control.cancelled) {
        const n = Math.min(left, this.batch);
        await this.rate.take(n, this.control.signal);
        if (this.control.cancelled) break;
        // The first move finds out whether LMOVE can span the two keys; copies made one after
        // another (keys on different cluster nodes) must not race for the same last element.
        const first = left === (this.plan.length ?? 0);
        const results: PromiseSettledResult<string | null>[] = [];
        if (first || this.mode === 'sequential') {
          for (let k = 0; k < n; k++) {
            const [r] = await Promise.allSettled([this.lmove(target)]);
            results.push(r!);
            if (r!.status === 'fulfilled' && r.value === null) break;
            if (first && this.mode !== 'sequential' && k === 0) {
              results.push(...(await Promise.allSettled(Array.from({ length: n - 1 }, () => this.lmove(target)))));
              break;
            }
          }
        } else results.push(...(await Promise.allSettled(Array.from({ length: n }, () => this.lmove(target)))));
        left -= n;
        this.count(results);
        if (results.some((r) => r.status === 'fulfilled' && r.value === null)) break;
      }
      return;
    }
    // Chosen elements (by id) or those matching the filter: found first, then moved one by one.
    const wanted = new Map<string, number>();
    for (const id of this.plan.ids ?? []) {
      const h = id.split('~')[0]!;
      wanted.set(h, (wanted.get(h) ?? 0) + 1);
    }
    const values: Buffer[] = [];
    const length = this.plan.length ?? 0;
    for (let at = 0; at < length && !this.control.cancelled; at += 1_000) {
      const chunk = await readFromHead(this.client, key, at, Math.min(1_000, length - at));
      if (chunk.length === 0) break;
      for (const v of chunk) {
        if (this.plan.ids) {
          const h = elementId(v);
          const n = wanted.get(h) ?? 0;
          if (n === 0 || !matchesElement(this.plan.filter, v, key)) continue;
          wanted.set(h, n - 1);
          values.push(v);
        } else if (matchesElement(this.plan.filter, v, key)) values.push(v);
      }
    }
    if (!this.plan.ids) this.job.total = values.length;
    for (let i = 0; i < values.length && !this.control.cancelled; i += this.batch) {
      const chunk = values.slice(i, i + this.batch);
      await this.rate.take(chunk.length, this.control.signal);
      if (this.control.cancelled) break;
      this.count(await Promise.allSettled(chunk.map((v) => this.moveElement(target, v))));
    }
  }

  private async lmove(target: string): Promise<string | null> {
    const { key } = this.plan;
    if (this.mode !== 'sequential') {
      try {
        const v = await this.client.lmove(key, target, 'RIGHT', 'LEFT');
        return v === null ? null : 'moved';
      } catch (error) {
        if (!crossSlot(error)) throw error;
        this.mode = 'sequential';
      }
    }
    const v = await this.client.lindexBuffer(key, -1);
    if (v === null) return null;
    return (await this.moveElement(target, v)) === 1 ? 'moved' : null;
  }

  private async moveElement(target: string, v: Buffer): Promise<number> {
    const { key } = this.plan;
    if (this.mode === 'script') {
      try {
        return Number(await (this.client as Scripted).bdListMove(key, target, v));
      } catch (error) {
        if (crossSlot(error)) this.mode = 'sequential';
        else if (refusedScript(error)) this.mode = 'multi';
        else throw error;
      }
    }
    // Copy first; a removal that finds nothing takes the copy back.
    await this.client.lpush(target, v);
    if ((await this.client.lrem(key, -1, v)) === 1) return 1;
    await this.client.lrem(target, 1, v);
    return 0;
  }
}
