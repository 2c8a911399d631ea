/**
 * Reading the `x-death` header RabbitMQ (and the embedded broker) adds when a
 * message is dead-lettered: an array of { count, reason, queue, time, exchange,
 * 'routing-keys' }, newest first, plus `x-first-death-*` headers; and, where a
 * message carries no x-death, the dead-letter attributes Google Pub/Sub adds.
 */
import type { XDeathEntry } from '@contract/types';

export interface DeathSummary {
  reason: string;
  originalQueue: string;
  count: number;
  firstDeath: number | null;
  lastDeath: number | null;
  entries: XDeathEntry[];
}

function toTime(v: unknown): number | null {
  if (typeof v === 'number') return v < 1e12 ? v * 1000 : v;
  if (typeof v === 'string') {
    const t = Date.parse(v);
    return Number.isFinite(t) ? t : null;
  }
  if (v && typeof v === 'object' && 'value' in v) return toTime((v as { value: unknown }).value);
  return null;
}

export function xDeathEntries(headers: Record<string, unknown> | undefined): XDeathEntry[] {
  const raw = headers?.['x-death'];
  if (!Array.isArray(raw)) return [];
  return raw
    .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
    .map((e) => ({
      queue: String(e.queue ?? ''),
      reason: String(e.reason ?? ''),
      count: Number(e.count ?? 0),
      exchange: String(e.exchange ?? ''),
      'routing-keys': Array.isArray(e['routing-keys']) ? (e['routing-keys'] as unknown[]).map(String) : [],
      time: toTime(e.time) ?? 0,
    }));
}

/**
 * Google Pub/Sub marks what it forwards to a dead-letter topic with attributes of its own:
 * the subscription it died in and how many times it was delivered there.
 */
function pubsubDeath(headers: Record<string, unknown> | undefined): DeathSummary | null {
  const source = headers?.['CloudPubSubDeadLetterSourceSubscription'];
  if (typeof source !== 'string') return null;
  const count = Number(headers?.['CloudPubSubDeadLetterSourceDeliveryCount'] ?? 0);
  return { reason: 'delivery attempts', originalQueue: source, count: Number.isFinite(count) ? count : 0, firstDeath: null, lastDeath: null, entries: [] };
}

export function deathSummary(headers: Record<string, unknown> | undefined): DeathSummary {
  const entries = xDeathEntries(headers);
  if (!entries.length) {
    const pubsub = pubsubDeath(headers);
    if (pubsub) return pubsub;
  }
  const newest = entries[0];
  const firstQueue = headers?.['x-first-death-queue'];
  const firstReason = headers?.['x-first-death-reason'];
  const times = entries.map((e) => e.time).filter((t) => t > 0);
  return {
    reason: newest?.reason ?? (typeof firstReason === 'string' ? firstReason : ''),
    originalQueue: typeof firstQueue === 'string' ? firstQueue : (entries[entries.length - 1]?.queue ?? ''),
    count: entries.reduce((n, e) => n + e.count, 0),
    firstDeath: times.length ? Math.min(...times) : null,
    lastDeath: times.length ? Math.max(...times) : null,
    entries,
  };
}
