/**
 * A message on its way into a queue: its properties checked as AMQP basic
 * properties and encoded once for storage, or read back from a stored row.
 */
import { isUtf8 } from 'node:buffer';
import { decodeProps, encodeProps, StoredDataError } from './codec.js';
import { invalid, shown } from './errors.js';
import type { FieldTable, MessageProperties } from './types.js';

/** The columns of a stored message (ready or delayed) that an envelope is made of. */
export interface StoredMessage {
  exchange: string;
  rk: string;
  props: string | null;
  body: Buffer;
  size: number;
  bin: number;
  redelivered: number;
  returns: number;
  persistent: number;
}

/** A message on its way into a queue. */
export interface Envelope {
  exchange: string;
  rk: string;
  body: Buffer;
  props: MessageProperties;
  propsJson: string | null;
  persistent: boolean;
  priority: number;
  expiration: number | null;
  size: number;
  bin: number;
  redelivered: boolean;
  returns: number;
}

export function isText(body: Buffer): number {
  return body.length === 0 || (body.indexOf(0) < 0 && isUtf8(body)) ? 0 : 1;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);
}

const SHORTSTR_PROPS = ['contentType', 'contentEncoding', 'correlationId', 'replyTo', 'messageId', 'type', 'userId', 'appId'] as const;

export function normalizeProps(input: unknown): MessageProperties {
  if (input === undefined || input === null) return {};
  if (!isRecord(input)) throw invalid('properties', `expected an object, got ${shown(input)}`);
  const p = input as MessageProperties & Record<string, unknown>;
  const out: MessageProperties = {};
  for (const k of SHORTSTR_PROPS) {
    const v = p[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') throw invalid(`properties.${k}`, `expected a string, got ${shown(v)}`);
    if (Buffer.byteLength(v) > 255) throw invalid(`properties.${k}`, 'must be at most 255 bytes (an AMQP short string)');
    out[k] = v;
  }
  if (p.deliveryMode !== undefined && p.deliveryMode !== null) {
    if (p.deliveryMode !== 1 && p.deliveryMode !== 2) throw invalid('properties.deliveryMode', `expected 1 (transient) or 2 (persistent), got ${shown(p.deliveryMode)}`);
    out.deliveryMode = p.deliveryMode;
  }
  if (p.priority !== undefined && p.priority !== null) {
    if (!Number.isInteger(p.priority) || p.priority < 0 || p.priority > 255) throw invalid('properties.priority', `expected an integer 0–255, got ${shown(p.priority)}`);
    out.priority = p.priority;
  }
  if (p.expiration !== undefined && p.expiration !== null) {
    if (typeof p.expiration !== 'string' || !/^\d{1,10}$/.test(p.expiration) || Number(p.expiration) > 2 ** 32 - 1) {
      throw invalid('properties.expiration', `expected milliseconds as a string of digits (AMQP), got ${shown(p.expiration)}`);
    }
    out.expiration = p.expiration;
  }
  if (p.timestamp !== undefined && p.timestamp !== null) {
    if (!Number.isInteger(p.timestamp) || p.timestamp < 0) throw invalid('properties.timestamp', `expected a non-negative integer, got ${shown(p.timestamp)}`);
    out.timestamp = p.timestamp;
  }
  if (p.headers !== undefined && p.headers !== null) {
    if (!isRecord(p.headers)) throw invalid('properties.headers', `expected an object, got ${shown(p.headers)}`);
    out.headers = p.headers;
  }
  for (const k in p) {
    if (!Object.hasOwn(p, k)) continue;
    if (!Object.hasOwn(out, k) && p[k] !== undefined && p[k] !== null && !(SHORTSTR_PROPS as readonly string[]).includes(k) && !['deliveryMode', 'priority', 'expiration', 'timestamp', 'headers'].includes(k)) {
      throw invalid(`properties.${k}`, 'is not an AMQP basic property');
    }
  }
  return out;
}

export function makeEnvelope(exchange: string, rk: string, body: Buffer, props: MessageProperties, extra?: { redelivered?: boolean; returns?: number; bin?: number }): Envelope {
  let propsJson: string | null;
  try {
    propsJson = encodeProps(props);
  } catch (err) {
    throw invalid('properties.headers', `cannot be stored: ${(err as Error).message}`);
  }
  return {
    exchange,
    rk,
    body,
    props,
    propsJson,
    persistent: props.deliveryMode === 2,
    priority: props.priority ?? 0,
    expiration: props.expiration !== undefined ? Number(props.expiration) : null,
    size: body.length,
    bin: extra?.bin ?? isText(body),
    redelivered: extra?.redelivered ?? false,
    returns: extra?.returns ?? 0,
  };
}

export function envelopeOf(row: StoredMessage): Envelope {
  const props = decodeProps(row.props, row.persistent === 1);
  return {
    exchange: row.exchange,
    rk: row.rk,
    body: row.body,
    props,
    propsJson: row.props,
    persistent: row.persistent === 1,
    priority: props.priority ?? 0,
    expiration: props.expiration !== undefined ? Number(props.expiration) : null,
    size: row.size,
    bin: row.bin,
    redelivered: row.redelivered === 1,
    returns: row.returns,
  };
}

/**
 * For the broker's own moves (expiry, overflow, delivery limits, delays): a
 * row whose stored properties cannot be read (a damaged row) still moves,
 * with a header saying what was wrong in place of its properties, rather than
 * stopping its queue's maintenance; the body is kept.
 */
export function movableEnvelope(row: StoredMessage): Envelope {
  try {
    return envelopeOf(row);
  } catch (err) {
    if (!(err instanceof StoredDataError)) throw err;
    const props = unreadableProps(row, err);
    return { ...envelopeOf({ ...row, props: null }), props, propsJson: encodeProps(props) };
  }
}

/** What a damaged row's properties are taken to be: its delivery mode, and a header naming the problem. */
export function unreadableProps(row: { persistent: number }, err: StoredDataError): MessageProperties {
  return { ...(row.persistent === 1 ? { deliveryMode: 2 as const } : {}), headers: { 'x-unreadable-properties': err.message } };
}

export type DeathReason = 'rejected' | 'expired' | 'maxlen' | 'delivery_limit';

/**
 * The properties a message dead-lettered from `queue` carries. x-death as
 * RabbitMQ keeps it: one entry per (queue, reason), newest first; a repeated
 * death increments its entry's count and moves it to the front (keeping its
 * first time, exchange and routing keys); x-first-death-* once, x-last-death-*
 * each time; the per-message expiration is dropped. With a dead-letter
 * routing key (`dlrk`) the CC keys go too, as they would duplicate it.
 */
export function deathProps(m: Envelope, queue: string, reason: DeathReason, now: number, dlrk: boolean): { props: MessageProperties; routingKeys: string[]; deaths: FieldTable[] } {
  const props: MessageProperties = { ...m.props };
  const headers: FieldTable = { ...(props.headers ?? {}) };
  const cc = Array.isArray(headers.CC) ? (headers.CC as unknown[]).filter((x): x is string => typeof x === 'string') : [];
  const routingKeys = [m.rk, ...cc];
  const deaths: FieldTable[] = Array.isArray(headers['x-death']) ? (headers['x-death'] as unknown[]).filter(isRecord).map((d) => ({ ...d })) : [];
  const at = deaths.findIndex((d) => d.queue === queue && d.reason === reason);
  let entry: FieldTable;
  if (at >= 0) {
    entry = deaths.splice(at, 1)[0]!;
    entry.count = (typeof entry.count === 'number' ? entry.count : Number(entry.count) || 0) + 1;
  } else {
    entry = { count: 1, reason, queue, time: Math.floor(now / 1000), exchange: m.exchange, 'routing-keys': routingKeys };
    if (props.expiration !== undefined) entry['original-expiration'] = props.expiration;
  }
  deaths.unshift(entry);
  headers['x-death'] = deaths;
  if (headers['x-first-death-queue'] === undefined) {
    headers['x-first-death-queue'] = queue;
    headers['x-first-death-reason'] = reason;
    headers['x-first-death-exchange'] = m.exchange;
  }
  headers['x-last-death-queue'] = queue;
  headers['x-last-death-reason'] = reason;
  headers['x-last-death-exchange'] = m.exchange;
  delete props.expiration;
  if (dlrk) delete headers.CC;
  props.headers = headers;
  return { props, routingKeys, deaths };
}

/** A dead-letter cycle without a rejection in it, which RabbitMQ's detect_cycles drops. */
export function isCycle(target: string, deaths: FieldTable[]): boolean {
  const i = deaths.findIndex((d) => d.queue === target);
  if (i < 0) return false;
  for (let k = 0; k <= i; k++) if (deaths[k]!.reason === 'rejected') return false;
  return true;
}
