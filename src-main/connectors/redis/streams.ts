/**
 * Streams as topics (one partition, 0): what a stream holds (XINFO STREAM),
 * browsing without reading (XRANGE/XREVRANGE: nothing is consumed, no group
 * moves), publishing (XADD with an id and trimming) and live tail (XREAD).
 *
 * A page is read from where it starts and no further: by entry id (`position`,
 * a cursor), by time (`timestamp`: entry ids are ms timestamps), from the end
 * (`seek: latest`), or by ordinal (`offset`, the UI's "row N"). An ordinal is
 * reached by walking ids only, on the server (a Lua script skips up to
 * SKIP_PER_CALL entries per call and returns one id), from the nearest end or
 * from an ordinal already found for the same state of the stream; where scripts
 * are refused, the same walk runs with XRANGE from here.
 */
import { Cluster, type Redis } from 'ioredis';
import { ApiError } from '../../contract/errors.js';
import type { BrowsePage, PublishResult, RecordView, TopicInfo } from '../../contract/types.js';
import { compileMessageFilter } from '../../ground/filter.js';
import type { RecordTemplate } from '../../ground/placeholders.js';
import type { Args, PublishControl } from '../connector.js';
import type { RedisClient } from './client.js';
import { compareIds, ENTRY_ID, entrySubject, fieldsFor, idTime, nextId, shape, toEntry, toRecord, type Entry, type RawEntry } from './records.js';

/** How long one page may scan (with a filter) before it answers with a cursor. */
export const BROWSE_BUDGET_MS = 2_000;
const CHUNK = 1_000;
/** Entries one script call walks at most: it holds the server meanwhile (about 60 ms for 20,000). */
const SKIP_PER_CALL = 20_000;
const MAX_SEQ = '18446744073709551615';

/** XRANGE/XREVRANGE walked on the server: returns {found id} or {nil, last id seen, still to skip}. */
const SKIP_SCRIPT = `
local fwd = ARGV[3] == 'f'
local start, n, budget = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
local finish = fwd and '+' or '-'
while budget > 0 do
  local c = math.min(n + 1, 10000)
  local r = fwd and redis.call('XRANGE', KEYS[1], start, finish, 'COUNT', c) or redis.call('XREVRANGE', KEYS[1], start, finish, 'COUNT', c)
  if #r == 0 then return {false} end
  if #r > n then return {r[n + 1][1]} end
  n = n - #r
  budget = budget - #r
  if #r < c then return {false} end
  start = '(' .. r[#r][1]
end
return {false, string.sub(start, 2), n}
`;

export interface StreamShape {
  length: number;
  first: string | null;
  last: string | null;
}

function flatToMap(flat: unknown[]): Map<string, unknown> {
  const m = new Map<string, unknown>();
  for (let i = 0; i + 1 < flat.length; i += 2) m.set(String(flat[i]), flat[i + 1]);
  return m;
}

export interface StreamFacts {
  name: string;
  length: number;
  first: string | null;
  last: string | null;
  lastGeneratedId: string;
  maxDeletedId: string | null;
  entriesAdded: number | null;
  groups: number;
}

/** XINFO STREAM's answer as facts (its first and last entries reduced to their ids). */
export function streamFacts(name: string, flat: unknown[]): StreamFacts {
  const m = flatToMap(flat);
  const idOf = (v: unknown) => (Array.isArray(v) && v.length > 0 ? String(v[0]) : null);
  const num = (v: unknown) => (v === undefined || v === null ? null : Number(v));
  return {
    name,
    length: Number(m.get('length') ?? 0),
    first: idOf(m.get('first-entry')),
    last: idOf(m.get('last-entry')),
    lastGeneratedId: String(m.get('last-generated-id') ?? '0-0'),
    maxDeletedId: m.has('max-deleted-entry-id') ? String(m.get('max-deleted-entry-id')) : null,
    entriesAdded: num(m.get('entries-added')),
    groups: Number(m.get('groups') ?? 0),
  };
}

export function topicInfo(f: StreamFacts, deadLetterFor?: string[]): TopicInfo {
  const info: TopicInfo = {
    name: f.name,
    partitions: [{ partition: 0, startOffset: 0, endOffset: f.length, bytes: 0 }],
    messages: f.length,
    bytes: 0,
    config: {
      type: 'stream',
      'first-entry-id': f.first,
      'last-entry-id': f.last,
      'last-generated-id': f.lastGeneratedId,
      'max-deleted-entry-id': f.maxDeletedId,
      'entries-added': f.entriesAdded,
      groups: f.groups,
    },
  };
  if (deadLetterFor) info.deadLetterFor = deadLetterFor;
  return info;
}

interface Cursor {
  /** The last entry looked at: the next page starts after it. */
  id: string;
  /** The ordinal of the next entry, when the browse knows ordinals (-1 otherwise, then counted from 0). */
  n: number;
}

function encodeCursor(stream: string, c: Cursor): string {
  return Buffer.from(JSON.stringify({ s: stream, ...c }), 'utf8').toString('base64url');
}

function decodeCursor(stream: string, text: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as { s?: unknown; id?: unknown; n?: unknown };
    if (c.s !== stream || typeof c.id !== 'string' || !ENTRY_ID.test(c.id) || typeof c.n !== 'number') throw new Error('bad');
    return { id: c.id, n: c.n };
  } catch {
    throw new ApiError('INVALID_ARGUMENT', `cursor: not a cursor of stream "${stream}" (start again without one)`, 'cursor');
  }
}

/** The stream's reading side: one per connection, holding the ordinals found so far. */
export class Streams {
  /** Per stream: the state they were found in and ordinal → id. */
  private readonly anchors = new Map<string, { state: string; ids: Map<number, string> }>();
  private scripts: boolean | null = null;

  constructor(private readonly client: RedisClient) {}

  async shape(stream: string): Promise<StreamShape> {
    const [len, first, last] = await Promise.all([
      this.client.xlen(stream),
      this.client.xrange(stream, '-', '+', 'COUNT', 1),
      this.client.xrevrange(stream, '+', '-', 'COUNT', 1),
    ]);
    return { length: len, first: first[0]?.[0] ?? null, last: last[0]?.[0] ?? null };
  }

  async exists(stream: string): Promise<boolean> {
    return (await this.client.type(stream)) === 'stream';
  }

  async facts(streams: string[]): Promise<StreamFacts[]> {
    if (streams.length === 0) return [];
    const out: StreamFacts[] = [];
    // Given together, the calls travel together (auto-pipelining), to each key's node in a cluster.
    const answers = await Promise.all(streams.map((s) => this.client.call('XINFO', 'STREAM', s).then((flat) => flat as unknown[], () => null)));
    answers.forEach((flat, i) => {
      if (Array.isArray(flat)) out.push(streamFacts(streams[i]!, flat));
    });
    return out;
  }

  async requireStream(stream: string, field = 'topic'): Promise<void> {
    const t = await this.client.type(stream);
    if (t === 'stream') return;
    if (t === 'none') throw new ApiError('NOT_FOUND', `stream "${stream}" does not exist`, field);
    throw new ApiError('INVALID_ARGUMENT', `${field}: key "${stream}" holds a ${t}, not a stream`, field);
  }

  private async skipCall(stream: string, start: string, n: number, dir: 'f' | 'b'): Promise<{ id: string | null; rest?: { from: string; n: number } }> {
    if (this.scripts !== false) {
      try {
        const r = (await this.client.eval(SKIP_SCRIPT, 1, stream, start, String(n), dir, String(SKIP_PER_CALL))) as [string | null, string?, number?];
        this.scripts = true;
        if (r[0]) return { id: r[0] };
        if (r[1] !== undefined && r[2] !== undefined) return { id: null, rest: { from: `(${r[1]}`, n: Number(r[2]) } };
        return { id: null };
      } catch (error) {
        if (!/NOPERM|NOSCRIPT|unknown command|disabled/i.test(String((error as Error).message))) throw error;
        this.scripts = false;
      }
    }
    // Without scripts: the same walk, each chunk read here (ids and fields both travel).
    let from = start;
    let left = n;
    for (let walked = 0; walked < SKIP_PER_CALL; ) {
      const c = Math.min(left + 1, 10_000);
      const r = dir === 'f' ? await this.client.xrange(stream, from, '+', 'COUNT', c) : await this.client.xrevrange(stream, from, '-', 'COUNT', c);
      if (r.length === 0) return { id: null };
      if (r.length > left) return { id: r[left]![0] };
      left -= r.length;
      walked += r.length;
      if (r.length < c) return { id: null };
      from = `(${r[r.length - 1]![0]}`;
    }
    return { id: null, rest: { from, n: left } };
  }

  /** The id of the entry `n` places from `start` (inclusive) in direction `dir`; null past the end. */
  private async skip(stream: string, start: string, n: number, dir: 'f' | 'b'): Promise<string | null> {
    let from = start;
    let left = n;
    for (;;) {
      const r = await this.skipCall(stream, from, left, dir);
      if (r.id || !r.rest) return r.id;
      from = r.rest.from;
      left = r.rest.n;
    }
  }

  /** The id of the entry at ordinal `n` (0: the first), from the nearest known place. */
  async idAt(stream: string, n: number, s: StreamShape): Promise<string | null> {
    if (n >= s.length || !s.first || !s.last) return null;
    const state = `${s.length}|${s.first}|${s.last}`;
    let known = this.anchors.get(stream);
    if (!known || known.state !== state) {
      known = { state, ids: new Map() };
      this.anchors.set(stream, known);
      if (this.anchors.size > 256) this.anchors.delete(this.anchors.keys().next().value!);
    }
    const hit = known.ids.get(n);
    if (hit) return hit;
    let best = { from: s.first, k: n, dir: 'f' as 'f' | 'b' };
    const back = s.length - 1 - n;
    if (back < best.k) best = { from: s.last, k: back, dir: 'b' };
    for (const [ord, id] of known.ids) {
      if (ord <= n && n - ord < best.k) best = { from: id, k: n - ord, dir: 'f' };
      if (ord > n && ord - n < best.k) best = { from: id, k: ord - n, dir: 'b' };
    }
    const id = await this.skip(stream, best.from, best.k, best.dir);
    if (id) {
      known.ids.set(n, id);
      if (known.ids.size > 4_096) known.ids.delete(known.ids.keys().next().value!);
    }
    return id;
  }

  /** Remembers where a page ended, so the next page by ordinal starts there. */
  private note(stream: string, s: StreamShape, n: number, id: string): void {
    const known = this.anchors.get(stream);
    if (known && known.state === `${s.length}|${s.first}|${s.last}` && known.ids.size < 4_096) known.ids.set(n, id);
  }

  async browse(a: Args<'topics/messages'>, budgetMs = BROWSE_BUDGET_MS): Promise<BrowsePage<RecordView>> {
    const stream = a.topic;
    if (a.partition !== undefined && a.partition !== 0) throw new ApiError('NOT_FOUND', `stream "${stream}" has one partition (0); there is no partition ${a.partition}`, 'partition');
    const filter = compileMessageFilter(a, 'topic');
    await this.requireStream(stream);
    if (a.position !== undefined && !ENTRY_ID.test(a.position) && a.position !== '-' && a.position !== '+') {
      throw new ApiError('INVALID_ARGUMENT', `position: "${a.position}" is not a stream entry id (<ms>-<seq>, such as 1700000000000-0)`, 'position');
    }
    let start: string;
    let ordinal = -1;
    let s: StreamShape | null = null;
    if (a.cursor) {
      const c = decodeCursor(stream, a.cursor);
      start = nextId(c.id);
      ordinal = c.n;
    } else if (a.position !== undefined) start = a.position;
    else if (a.timestamp !== undefined) start = `${a.timestamp}-0`;
    else if (a.offset !== undefined) {
      s = await this.shape(stream);
      const id = await this.idAt(stream, a.offset, s);
      if (!id) return { messages: [], nextCursor: null, scanned: 0, matched: 0, total: s.length, complete: true };
      start = id;
      ordinal = a.offset;
    } else if (a.seek === 'latest') {
      const tail = await this.client.xrevrange(stream, '+', '-', 'COUNT', a.limit);
      const len = await this.client.xlen(stream);
      start = tail.length > 0 ? tail[tail.length - 1]![0] : '+';
      ordinal = len - tail.length;
    } else {
      start = '-';
      ordinal = 0;
    }
    // A time filter narrows the ids read: entry ids start with their time.
    let end = '+';
    if (filter?.from !== null && filter?.from !== undefined) {
      const lower = `${filter.from}-0`;
      if (start === '-' || (start !== '+' && compareIds(start, lower) < 0)) {
        start = lower;
        ordinal = -1;
      }
    }
    if (filter?.to !== null && filter?.to !== undefined) end = `${filter.to}-${MAX_SEQ}`;
    if (ordinal < 0) ordinal = 0;

    const deadline = Date.now() + budgetMs;
    const messages: RecordView[] = [];
    let scanned = 0;
    let lastSeen: string | null = null;
    let more = true;
    let from = start;
    while (messages.length < a.limit) {
      const want = filter ? Math.min(10_000, Math.max(CHUNK, a.limit - messages.length)) : Math.min(10_000, a.limit - messages.length + 1);
      const raw = (await this.client.xrangeBuffer(stream, from, end, 'COUNT', want)) as unknown as RawEntry[];
      let stoppedEarly = false;
      for (let i = 0; i < raw.length; i++) {
        const e = toEntry(raw[i]!);
        if (!filter && messages.length === a.limit) {
          stoppedEarly = true;
          break;
        }
        scanned++;
        lastSeen = e.id;
        const sh = shape(e.fields);
        if (!filter || filter.all(entrySubject(e, sh))) messages.push(toRecord(e, ordinal + scanned - 1, sh));
        if (messages.length === a.limit) {
          stoppedEarly = i < raw.length - 1;
          break;
        }
      }
      if (stoppedEarly) break;
      if (raw.length < want) {
        more = false;
        break;
      }
      if (messages.length === a.limit) break;
      from = nextId(lastSeen!);
      if (Date.now() >= deadline) break;
    }
    if (s && lastSeen && a.offset !== undefined) this.note(stream, s, a.offset + scanned, nextId(lastSeen));
    const nextCursor = more && lastSeen ? encodeCursor(stream, { id: lastSeen, n: ordinal + scanned }) : null;
    return { messages, nextCursor, scanned, matched: messages.length, complete: nextCursor === null };
  }

  /** XADD of `count` copies; each copy's id is kept (the first 1,000 reported as offsets, by ordinal). */
  async produce(a: Args<'topics/produce'>, template: RecordTemplate, control?: PublishControl): Promise<PublishResult & { ids: string[] }> {
    if (a.partition !== undefined && a.partition !== 0) throw new ApiError('INVALID_ARGUMENT', `partition: a stream has one partition (0)`, 'partition');
    const t = await this.client.type(a.topic);
    if (t !== 'stream' && t !== 'none') throw new ApiError('INVALID_ARGUMENT', `topic: key "${a.topic}" holds a ${t}, not a stream`, 'topic');
    if (a.position !== undefined && a.count > 1 && !a.position.endsWith('-*')) {
      throw new ApiError('INVALID_ARGUMENT', 'position: an explicit entry id adds one entry; give count 1, or an id such as 1700000000000-* for many', 'position');
    }
    const trim: string[] = [];
    if (a.trim) {
      trim.push(a.trim.maxLen !== undefined ? 'MAXLEN' : 'MINID', a.trim.exact ? '=' : '~', String(a.trim.maxLen ?? a.trim.minId));
    }
    const ids: string[] = [];
    let published = 0;
    const batch = 500;
    for (let i = 1; i <= a.count && !control?.signal.aborted; ) {
      const n = Math.min(batch, a.count - i + 1);
      const calls: Array<Promise<unknown>> = [];
      for (let k = 0; k < n; k++, i++) {
        const c = template.copy(i);
        const headers = Object.fromEntries(c.headers);
        const fields = fieldsFor(c.value, c.key ? c.key.toString('utf8') : null, headers);
        if (fields.length === 0) throw new ApiError('INVALID_ARGUMENT', 'value: a stream entry needs at least one field: give a value or headers', 'value');
        calls.push(this.client.call('XADD', a.topic, ...trim, a.position ?? '*', ...fields));
      }
      const answers = await Promise.allSettled(calls);
      for (const r of answers) {
        if (r.status === 'rejected') {
          const text = String((r.reason as Error)?.message ?? r.reason);
          if (/equal or smaller than the target stream top item/i.test(text)) {
            throw new ApiError('INVALID_ARGUMENT', `position: an entry id must be greater than the stream's last id (${published} entries were added before)`, 'position');
          }
          throw r.reason;
        }
        published++;
        if (ids.length < 1_000) ids.push(String(r.value));
      }
      control?.progress(published, published);
    }
    return { published, routed: { [a.topic]: published }, returned: 0, rejected: 0, deduplicated: 0, confirmed: true, ids };
  }

  /** New entries as they are added (XREAD BLOCK on a connection of its own), from now on. */
  tail(stream: string, listener: (r: RecordView & { topic: string }) => void, onError: (e: unknown) => void): () => void {
    const reader = duplicate(this.client);
    // Its failures reach onError through the reads below.
    reader.on('error', () => {});
    let active = true;
    void (async () => {
      let last = '$';
      let ordinal = 0;
      let failures = 0;
      while (active) {
        try {
          const got = (await reader.xreadBuffer('COUNT', 500, 'BLOCK', 500, 'STREAMS', stream, last)) as unknown as Array<[Buffer, RawEntry[]]> | null;
          failures = 0;
          for (const [, entries] of got ?? []) {
            for (const raw of entries) {
              const e = toEntry(raw);
              last = e.id;
              if (active) listener({ ...toRecord(e, ordinal++), topic: stream });
            }
          }
          if (last === '$' && !got) {
            // Keep "from now" fixed once the first wait ends, so nothing added between two waits is missed.
            const top = await reader.xrevrange(stream, '+', '-', 'COUNT', 1);
            last = top[0]?.[0] ?? '0-0';
          }
        } catch (error) {
          if (!active) break;
          if (failures++ === 0) onError(error);
          await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * failures)));
        }
      }
      reader.disconnect();
    })();
    return () => {
      active = false;
    };
  }
}

/** A connection of its own (blocking reads, subscriptions), with the same settings. */
export function duplicate(client: RedisClient): Redis | Cluster {
  return client instanceof Cluster ? client.duplicate() : (client as Redis).duplicate();
}

export { idTime, type Entry };
