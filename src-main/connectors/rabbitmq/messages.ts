/**
 * AMQP messages as the contract shows them, and the rules that identify a
 * message across reads. RabbitMQ gives a queued message no stable id of its
 * own (delivery tags last one channel), so a message is known by a hash of
 * its `message-id` property and its body: the same message read twice gets
 * the same id, and a selection made on one read still finds its messages on
 * the next even though the queue changed in between.
 */
import { createHash } from 'node:crypto';
import type { Message } from 'amqplib';
import type { MessageFilter } from '../../contract/operations.js';
import type { MessageProperties, MessageView, XDeathEntry } from '../../contract/types.js';
import { compileMessageFilter, type CompiledFilter } from '../../ground/filter.js';
import { encodeBytes } from '../encoding.js';

const ID_PREFIX = 'k';

/** The part of a view id that names the message (without the copy number). */
export function messageKey(messageId: unknown, body: Buffer): string {
  const h = createHash('sha256');
  h.update(typeof messageId === 'string' ? messageId : messageId === undefined || messageId === null ? '' : String(messageId));
  h.update('\u0000');
  h.update(body);
  return ID_PREFIX + h.digest('hex').slice(0, 24);
}

/**
 * Ids in one read: identical messages (same message-id and body) get `~2`,
 * `~3`… so each row has its own id, while a selection of n copies still
 * means "n messages with this key".
 */
export class IdAssigner {
  private readonly seen = new Map<string, number>();
  next(key: string): string {
    const n = (this.seen.get(key) ?? 0) + 1;
    this.seen.set(key, n);
    return n === 1 ? key : `${key}~${n}`;
  }
}

/**
 * A selection as a multiset of keys. Ids that are not of this connector's
 * form are taken as raw AMQP message-id values, so a caller that knows only
 * the message-id can still select a message by it.
 */
export class Selection {
  private readonly byKey = new Map<string, number>();
  private readonly byMessageId = new Map<string, number>();
  remaining = 0;

  constructor(ids: readonly string[]) {
    for (const id of ids) {
      const m = /^(k[0-9a-f]{24})(?:~\d+)?$/.exec(id);
      if (m) this.byKey.set(m[1]!, (this.byKey.get(m[1]!) ?? 0) + 1);
      else this.byMessageId.set(id, (this.byMessageId.get(id) ?? 0) + 1);
      this.remaining++;
    }
  }

  /** Takes one selected copy matching this message, if any is left. */
  take(key: string, messageId: unknown): boolean {
    const k = this.byKey.get(key);
    if (k) {
      this.byKey.set(key, k - 1);
      this.remaining--;
      return true;
    }
    if (typeof messageId === 'string') {
      const m = this.byMessageId.get(messageId);
      if (m) {
        this.byMessageId.set(messageId, m - 1);
        this.remaining--;
        return true;
      }
    }
    return false;
  }
}

/**
 * Header values made JSON-safe: typed AMQP values ({'!': 'timestamp'} and
 * {'!': 'decimal'}) become numbers (timestamps in epoch ms, like every time
 * in the contract), byte arrays text or base64.
 */
export function plainValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return encodeBytes(value).text;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Date) return value.getTime();
  if (Array.isArray(value)) return value.map(plainValue);
  if (typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o['!'] === 'string' && 'value' in o) {
      if (o['!'] === 'timestamp' && typeof o.value === 'number') return o.value * 1000;
      if (o['!'] === 'decimal' && o.value && typeof o.value === 'object') {
        const d = o.value as { places?: number; digits?: number };
        return (d.digits ?? 0) / 10 ** (d.places ?? 0);
      }
      return plainValue(o.value);
    }
    // fromEntries: a header named __proto__ stays an ordinary key.
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, plainValue(v)]));
  }
  return value;
}

function toMs(v: unknown): number {
  if (v && typeof v === 'object' && (v as { '!'?: unknown })['!'] === 'timestamp') return Number((v as { value: unknown }).value) * 1000;
  if (typeof v === 'number') return v < 1e12 ? v * 1000 : v;
  if (v instanceof Date) return v.getTime();
  return 0;
}

/** The `x-death` header in the contract's shape, newest first as RabbitMQ keeps it. */
export function xDeath(headers: Record<string, unknown> | undefined): XDeathEntry[] {
  const raw = headers?.['x-death'];
  if (!Array.isArray(raw)) return [];
  return raw
    .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
    .map((e) => ({
      queue: String(plainValue(e.queue) ?? ''),
      reason: String(plainValue(e.reason) ?? ''),
      count: Number(plainValue(e.count) ?? 0),
      exchange: String(plainValue(e.exchange) ?? ''),
      'routing-keys': Array.isArray(e['routing-keys']) ? (e['routing-keys'] as unknown[]).map((k) => String(plainValue(k))) : [],
      time: toMs(e.time),
    }));
}

export function viewHeaders(headers: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!headers) return undefined;
  const out = plainValue(headers) as Record<string, unknown>;
  if (Array.isArray(headers['x-death'])) out['x-death'] = xDeath(headers);
  return out;
}

export function viewProperties(p: Message['properties']): MessageProperties {
  const out: MessageProperties = {};
  if (p.contentType !== undefined) out.contentType = String(p.contentType);
  if (p.contentEncoding !== undefined) out.contentEncoding = String(p.contentEncoding);
  const headers = viewHeaders(p.headers as Record<string, unknown> | undefined);
  if (headers && Object.keys(headers).length > 0) out.headers = headers;
  if (p.deliveryMode === 1 || p.deliveryMode === 2) out.deliveryMode = p.deliveryMode;
  if (typeof p.priority === 'number') out.priority = p.priority;
  if (p.correlationId !== undefined) out.correlationId = String(p.correlationId);
  if (p.replyTo !== undefined) out.replyTo = String(p.replyTo);
  if (p.expiration !== undefined) out.expiration = String(p.expiration);
  if (p.messageId !== undefined) out.messageId = String(p.messageId);
  if (typeof p.timestamp === 'number') out.timestamp = p.timestamp;
  if (p.type !== undefined) out.type = String(p.type);
  if (p.userId !== undefined) out.userId = String(p.userId);
  if (p.appId !== undefined) out.appId = String(p.appId);
  return out;
}

export interface ViewOptions {
  id: string;
  position?: number;
  state?: MessageView['state'];
}

export function toView(m: Message, o: ViewOptions): MessageView {
  const body = encodeBytes(m.content);
  const headers = m.properties.headers as Record<string, unknown> | undefined;
  const deaths = xDeath(headers);
  // Quorum queues count deliveries in x-delivery-count (returns included);
  // elsewhere only "delivered before or not" is known.
  const counted = headers?.['x-delivery-count'];
  const deliveryCount = typeof counted === 'number' ? counted : m.fields.redelivered ? 1 : 0;
  // AMQP timestamps are seconds; without one, RabbitMQ's own arrival time (the
  // `timestamp_in_ms` header its message interceptor can add) or the last
  // dead-lettering time is the best known "when it got here". With none of
  // them the time is not recorded: 0, never a date in 1970, and the
  // message's properties carry no timestamp.
  const arrived = headers?.['timestamp_in_ms'];
  const enqueuedAt =
    typeof m.properties.timestamp === 'number' && m.properties.timestamp > 0
      ? m.properties.timestamp * 1000
      : typeof arrived === 'number' && arrived > 0
        ? arrived
        : (deaths[0]?.time ?? 0);
  return {
    id: o.id,
    ...(o.position !== undefined ? { position: o.position } : {}),
    exchange: m.fields.exchange,
    routingKey: m.fields.routingKey,
    body: body.text,
    bodyEncoding: body.encoding,
    size: m.content.length,
    properties: viewProperties(m.properties),
    redelivered: m.fields.redelivered,
    deliveryCount,
    enqueuedAt,
    state: o.state ?? 'ready',
  };
}

export function hasFilter(f: MessageFilter): boolean {
  return Boolean(f.q || f.jsonPath || f.headerName || f.propertyName || f.key !== undefined || f.from !== undefined || f.to !== undefined);
}

const compiled = new WeakMap<MessageFilter, CompiledFilter | null>();

/** The filter every connection shares (ground/filter.ts), compiled once per filter object. */
export function compileQueueFilter(f: MessageFilter, prefix = ''): CompiledFilter | null {
  let c = compiled.get(f);
  if (c === undefined) {
    c = compileMessageFilter(f, 'queue', prefix);
    compiled.set(f, c);
  }
  return c;
}

/** The contract's filter on one message, with the meaning every connection gives it; `key` is the routing key, `from`/`to` bound `enqueuedAt`. */
export function matches(view: MessageView, f: MessageFilter): boolean {
  const filter = compileQueueFilter(f);
  if (!filter) return true;
  // A message whose time is not recorded is in no time range.
  if (view.enqueuedAt <= 0 && (f.from !== undefined || f.to !== undefined)) return false;
  const body = view.bodyEncoding === 'base64' ? Buffer.from(view.body, 'base64') : Buffer.from(view.body, 'utf8');
  return filter.all({
    body,
    text: view.bodyEncoding === 'utf8' && !view.body.includes('\u0000'),
    properties: () => view.properties,
    headers: () => view.properties.headers,
    key: view.routingKey,
    time: view.enqueuedAt,
  });
}
