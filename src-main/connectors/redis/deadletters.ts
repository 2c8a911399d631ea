/**
 * Where Redis keeps dead letters, three ways:
 *
 * - **Pending entries delivered too often.** An entry a group's consumer read
 *   but never acknowledged stays in the group's pending list; once it has been
 *   delivered `deadLetterAfterDeliveries` times (per group: `deadLetterDeliveries`,
 *   by group name or `<stream>#<group>`) it counts as dead. Such a source is named
 *   like its group, `<stream>#<group>`.
 * - **Dead-letter streams.** `<stream>:dlq`, `<stream>.dlq`, `dlq:<stream>`, or
 *   the connection's `deadLetterPattern` (`{stream}` standing for the stream).
 *   Their entries may carry their origin in fields (ORIGIN_STREAM_FIELDS, with
 *   ORIGIN_ID_FIELDS, and why: REASON_FIELDS); these fields are left out when an
 *   entry goes back.
 * - **Lists.** `<list>:processing` and `<list>.processing` (what a consumer took
 *   with LMOVE/BRPOPLPUSH and never finished), and lists named as dead-letter
 *   streams are, go back to `<list>`.
 */
import type { RedisConnectionConfig } from '../../contract/operations.js';
import type { RedisClient } from './client.js';
import type { Entry } from './records.js';

export const ORIGIN_STREAM_FIELDS = ['origin-stream', 'origin_stream', 'originStream', 'source-stream', 'source_stream', 'origin'];
export const ORIGIN_ID_FIELDS = ['origin-id', 'origin_id', 'originId', 'source-id', 'source_id'];
export const REASON_FIELDS = ['origin-group', 'origin_group', 'reason', 'error', 'exception', 'failed-at', 'failed_at', 'dead-lettered-at', 'delivery-count', 'delivery_count', 'deliveries'];
const METADATA = new Set([...ORIGIN_STREAM_FIELDS, ...ORIGIN_ID_FIELDS, ...REASON_FIELDS]);

export interface Naming {
  /** The source a dead-letter key's name points at, or null when the name is not one. */
  sourceOf(key: string): string | null;
  /** The source a processing list's name points at. */
  processingSourceOf(key: string): string | null;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function naming(pattern: string | undefined): Naming {
  const custom = pattern && pattern.includes('{stream}') ? new RegExp(`^${pattern.split('{stream}').map(escape).join('(.+)')}$`) : null;
  return {
    sourceOf(key) {
      if (custom) {
        const m = custom.exec(key);
        if (m?.[1]) return m[1];
      }
      for (const suffix of [':dlq', '.dlq']) if (key.endsWith(suffix) && key.length > suffix.length) return key.slice(0, -suffix.length);
      if (key.startsWith('dlq:') && key.length > 4) return key.slice(4);
      return null;
    },
    processingSourceOf(key) {
      for (const suffix of [':processing', '.processing']) if (key.endsWith(suffix) && key.length > suffix.length) return key.slice(0, -suffix.length);
      return null;
    },
  };
}

export interface Origin {
  stream: string | null;
  id: string | null;
}

export function originOf(e: Entry): Origin {
  const find = (names: string[]) => {
    for (const n of names) {
      const f = e.fields.find(([name]) => name === n);
      if (f) return f[1].toString('utf8');
    }
    return null;
  };
  return { stream: find(ORIGIN_STREAM_FIELDS), id: find(ORIGIN_ID_FIELDS) };
}

/** The fields an entry goes back with: its own, without where and why it died. */
export function originalFields(e: Entry): Array<string | Buffer> {
  const out: Array<string | Buffer> = [];
  const kept = e.fields.filter(([f]) => !METADATA.has(f));
  for (const [f, v] of kept.length > 0 ? kept : e.fields) out.push(f, v);
  return out;
}

/** The delivery count from which a group's pending entries are dead. */
export function threshold(config: RedisConnectionConfig, stream: string, group: string): number {
  const per = config.deadLetterDeliveries;
  return per?.[`${stream}#${group}`] ?? per?.[group] ?? config.deadLetterAfterDeliveries;
}

export interface PendingEntry {
  id: string;
  consumer: string;
  idleMs: number;
  deliveries: number;
}

/** How many pending entries one look reads at most: a dead-letter list beyond this is shown in part. */
export const PENDING_SCAN_MAX = 100_000;

/**
 * The group's pending entries delivered at least `min` times, oldest first:
 * `skip` of them left out, at most `limit` returned; `total` counts every one
 * seen (within PENDING_SCAN_MAX pending entries, else `complete` is false).
 */
export async function deadPending(
  client: RedisClient,
  stream: string,
  group: string,
  min: number,
  skip = 0,
  limit = Number.MAX_SAFE_INTEGER,
  countAll = true,
): Promise<{ entries: PendingEntry[]; total: number; complete: boolean }> {
  const entries: PendingEntry[] = [];
  let total = 0;
  let start = '-';
  let read = 0;
  for (;;) {
    const page = (await client.call('XPENDING', stream, group, start, '+', '1000')) as Array<[string, string, number, number]>;
    for (const [id, consumer, idle, deliveries] of page) {
      if (Number(deliveries) < min) continue;
      if (total >= skip && entries.length < limit) entries.push({ id, consumer, idleMs: Number(idle), deliveries: Number(deliveries) });
      total++;
    }
    read += page.length;
    if (page.length < 1000) return { entries, total, complete: true };
    if (!countAll && entries.length >= limit) return { entries, total, complete: false };
    if (read >= PENDING_SCAN_MAX) return { entries, total, complete: false };
    start = `(${page[page.length - 1]![0]}`;
  }
}

/** The pending entries among `ids` (any delivery count), as XPENDING tells them. */
export async function pendingOf(client: RedisClient, stream: string, group: string, ids: string[]): Promise<Map<string, PendingEntry>> {
  const out = new Map<string, PendingEntry>();
  const answers = await Promise.all(ids.map((id) => client.call('XPENDING', stream, group, id, id, '1') as Promise<Array<[string, string, number, number]>>));
  for (const page of answers) for (const [id, consumer, idle, deliveries] of page) out.set(id, { id, consumer, idleMs: Number(idle), deliveries: Number(deliveries) });
  return out;
}

/**
 * Why and where a dead letter died, in the shape of RabbitMQ's `x-death` header,
 * which the Dead letters view reads for its Reason, Original queue and Deaths columns.
 */
export function deathHeader(reason: string, queue: string, count: number, time: number): Array<Record<string, unknown>> {
  return [{ reason, queue, count, time, exchange: '', 'routing-keys': [queue] }];
}

/** The `x-death` of a dead-letter stream's entry, from the fields it carries (its headers). */
export function streamEntryDeath(headers: Record<string, string>, fallbackOrigin: string | null, time: number): Array<Record<string, unknown>> | null {
  const pick = (names: string[]) => names.map((n) => headers[n]).find((v) => v !== undefined);
  const origin = pick(ORIGIN_STREAM_FIELDS) ?? fallbackOrigin;
  if (!origin) return null;
  const reason = pick(['reason', 'error', 'exception']) ?? 'dead-lettered';
  const count = Number(pick(['delivery-count', 'delivery_count', 'deliveries']) ?? 1) || 1;
  return deathHeader(reason, origin, count, time);
}
