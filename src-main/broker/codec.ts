/**
 * Message properties and header tables are stored as JSON text. AMQP field
 * tables carry byte arrays, 64-bit integers and timestamps that JSON cannot,
 * so those travel as tagged objects and come back as Buffer, bigint and Date.
 */
import type { MessageProperties } from './types.js';

const TAGS = new Set(['$bytes', '$bigint', '$date']);

function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  if (Buffer.isBuffer(raw)) return { $bytes: raw.toString('base64') };
  if (raw instanceof Uint8Array) return { $bytes: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') };
  if (typeof raw === 'bigint') return { $bigint: raw.toString() };
  if (raw instanceof Date) return { $date: raw.getTime() };
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && TAGS.has(keys[0]!)) {
      const v = (value as Record<string, unknown>)[keys[0]!];
      if (keys[0] === '$bytes' && typeof v === 'string') return Buffer.from(v, 'base64');
      if (keys[0] === '$bigint' && typeof v === 'string') return BigInt(v);
      if (keys[0] === '$date' && typeof v === 'number') return new Date(v);
    }
  }
  return value;
}

/** True when a value holds something plain JSON cannot carry (checked without allocating). */
function needsTags(v: unknown, depth = 0): boolean {
  if (v === null || typeof v !== 'object') return typeof v === 'bigint';
  if (v instanceof Uint8Array || v instanceof Date || depth > 64) return true;
  if (Array.isArray(v)) {
    for (const x of v) if (needsTags(x, depth + 1)) return true;
    return false;
  }
  for (const k in v) if (needsTags((v as Record<string, unknown>)[k], depth + 1)) return true;
  return false;
}

// The replacer/reviver callbacks make JSON several times slower, so they are
// only used when the value (or text) actually has tagged content.
export function encodeJson(value: unknown): string {
  return needsTags(value) ? JSON.stringify(value, replacer) : JSON.stringify(value);
}

export function decodeJson<T>(text: string): T {
  return (text.includes('{"$') ? JSON.parse(text, reviver) : JSON.parse(text)) as T;
}

/**
 * Properties without deliveryMode (kept in its own column); null when there
 * is nothing else, so the common case stores and parses nothing.
 */
export function encodeProps(props: MessageProperties): string | null {
  let empty = true;
  for (const k in props) {
    if (k !== 'deliveryMode' && (props as Record<string, unknown>)[k] !== undefined) {
      empty = false;
      break;
    }
  }
  if (empty) return null;
  const { deliveryMode: _dm, ...rest } = props;
  return encodeJson(rest);
}

export function decodeProps(text: string | null, persistent: boolean): MessageProperties {
  const props: MessageProperties = text === null ? {} : decodeJson<MessageProperties>(text);
  if (persistent) props.deliveryMode = 2;
  return props;
}

/** Stable text for comparing argument tables regardless of key order. */
export function canonicalJson(value: unknown): string {
  return encodeJson(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value) && !(value instanceof Date) && !(value instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

/** Equality of field-table values as AMQP would see them. */
export function fieldEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'bigint') return BigInt(Number.isInteger(a) ? a : NaN) === b;
  if (typeof a === 'bigint' && typeof b === 'number') return fieldEquals(b, a);
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  return canonicalJson(a) === canonicalJson(b);
}
