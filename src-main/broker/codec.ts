/**
 * Message properties and header tables are stored as JSON text. AMQP field
 * tables carry byte arrays, 64-bit integers and timestamps that JSON cannot,
 * so those travel as tagged objects and come back as Buffer, bigint and Date:
 * `{"$bytes": base64}`, `{"$bigint": "decimal"}`, `{"$date": ms}`.
 *
 * User data must never be taken for a tag. A user object whose only key
 * starts with `$` (any such key, not only the three tags) is stored with one
 * more `$` in front of that key (`{"$bigint":"1"}` becomes `{"$$bigint":"1"}`)
 * and gets it back when read, so a stored tag is always a real one.
 *
 * Text that needs neither tags nor escapes is plain `JSON.stringify` output and
 * is read with plain `JSON.parse`, the fast path. Text that does is written with
 * one leading space (JSON whitespace, which `JSON.stringify` never writes):
 * that marks the escaped format. Text without it was written before escaping
 * existed: its tags are read as they always were, and a tag-shaped object
 * whose value no tag can have (`{"$bigint":"oops"}`) is user data and comes
 * back as it was stored. Text that is neither (a damaged row) fails with a
 * StoredDataError that says what is wrong.
 */
import { BrokerError } from './errors.js';
import type { MessageProperties } from './types.js';

/** Marks text written with tags or escapes (see above). */
const MARK = ' ';
const DOLLAR = 36;

/** Stored text that no version of this codec wrote (a damaged row): refused, never half-read. */
export class StoredDataError extends BrokerError {
  constructor(detail: string) {
    super('PRECONDITION_FAILED', `stored data cannot be read (${detail})`);
    this.name = 'StoredDataError';
  }
}

/** A value JSON.stringify leaves out of an object. */
function omitted(v: unknown): boolean {
  return v === undefined || typeof v === 'function' || typeof v === 'symbol';
}

/** The key of a plain object that has exactly one (serialised) key starting with `$`, else null. */
function soleDollarKey(o: object): string | null {
  let found: string | null = null;
  for (const k of Object.keys(o)) {
    if (omitted((o as Record<string, unknown>)[k])) continue;
    if (found !== null || k.charCodeAt(0) !== DOLLAR) return null;
    found = k;
  }
  return found;
}

function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  if (typeof raw === 'bigint') return { $bigint: raw.toString() };
  if (raw === null || typeof raw !== 'object') return value;
  if (Buffer.isBuffer(raw)) return { $bytes: raw.toString('base64') };
  if (raw instanceof Uint8Array) return { $bytes: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') };
  if (raw instanceof Date) return { $date: Number.isNaN(raw.getTime()) ? null : raw.getTime() };
  if (!Array.isArray(raw)) {
    const k = soleDollarKey(raw);
    if (k !== null) return { [`$${k}`]: (raw as Record<string, unknown>)[k] };
  }
  return value;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const INTEGER = /^-?\d+$/;

/** Base64 as Buffer#toString('base64') writes it (padded). */
function isBase64(v: unknown): v is string {
  return typeof v === 'string' && v.length % 4 === 0 && BASE64.test(v);
}

/** Reads text of the escaped format: every `$`-keyed single-key object is a tag or an escape. */
function reviver(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (keys.length !== 1 || keys[0]!.charCodeAt(0) !== DOLLAR) return value;
  const k = keys[0]!;
  const v = (value as Record<string, unknown>)[k];
  if (k.charCodeAt(1) === DOLLAR) return { [k.slice(1)]: v };
  if (k === '$bytes' && isBase64(v)) return Buffer.from(v, 'base64');
  if (k === '$bigint' && typeof v === 'string' && INTEGER.test(v)) return BigInt(v);
  if (k === '$date' && (v === null || (typeof v === 'number' && Number.isFinite(v)))) return new Date(v ?? NaN);
  throw new StoredDataError(`${JSON.stringify(k)} with ${JSON.stringify(v)?.slice(0, 40)} is not a valid tag`);
}

/** Reads text written before escaping existed: tags as they were read then, anything else as stored. */
function legacyReviver(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (keys.length !== 1) return value;
  const v = (value as Record<string, unknown>)[keys[0]!];
  if (keys[0] === '$bytes' && isBase64(v)) return Buffer.from(v, 'base64');
  if (keys[0] === '$bigint' && typeof v === 'string' && INTEGER.test(v)) return BigInt(v);
  if (keys[0] === '$date' && typeof v === 'number') return new Date(v);
  return value;
}

/** True when a value holds something plain JSON cannot carry, or an object to escape (checked without allocating). */
function needsReplacer(v: unknown, depth = 0): boolean {
  if (v === null || typeof v !== 'object') return typeof v === 'bigint';
  if (v instanceof Uint8Array || v instanceof Date || depth > 64) return true;
  if (Array.isArray(v)) {
    for (const x of v) if (needsReplacer(x, depth + 1)) return true;
    return false;
  }
  let n = 0;
  let dollar = false;
  for (const k in v) {
    const x = (v as Record<string, unknown>)[k];
    if (omitted(x)) continue;
    if (n++ === 0) dollar = k.charCodeAt(0) === DOLLAR;
    if (needsReplacer(x, depth + 1)) return true;
  }
  return n === 1 && dollar;
}

// The replacer/reviver callbacks make JSON several times slower, so they are
// only used when the value (or text) actually has tagged or escaped content.
export function encodeJson(value: unknown): string {
  return needsReplacer(value) ? MARK + JSON.stringify(value, replacer) : JSON.stringify(value);
}

/** Decodes what encodeJson wrote (by this or an earlier version); a damaged text throws StoredDataError. */
export function decodeJson<T>(text: string): T {
  try {
    if (text.startsWith(MARK)) return JSON.parse(text, reviver) as T;
    return (text.includes('{"$') ? JSON.parse(text, legacyReviver) : JSON.parse(text)) as T;
  } catch (err) {
    if (err instanceof StoredDataError) throw err;
    throw new StoredDataError((err as Error).message);
  }
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
  const hit = lastEncoded.text !== null && sameFlat(props, lastEncoded.keys, lastEncoded.values);
  if (hit) return lastEncoded.text;
  const { deliveryMode: _dm, ...rest } = props;
  const text = encodeJson(rest);
  rememberEncoded(props, text);
  return text;
}

export function decodeProps(text: string | null, persistent: boolean): MessageProperties {
  let props: MessageProperties;
  if (text === null) props = {};
  else if (text === lastDecoded.text) props = rememberedProps();
  else {
    props = decodeJson<MessageProperties>(text);
    rememberDecoded(text, props);
  }
  if (persistent) props.deliveryMode = 2;
  return props;
}

/*
 * Publishers mostly send the same properties message after message (a
 * content type, a priority, an empty header table): the last flat set
 * encoded, and the last text decoded into flat properties, are remembered,
 * so a repeat costs a comparison instead of JSON.stringify or JSON.parse.
 * Flat: every value a string, a finite number (which JSON carries as they
 * are) or an empty plain object (an empty table); anything else (a table
 * with entries, a value JSON would drop or change) is never remembered.
 */
type Flat = string | number | typeof EMPTY_TABLE;
const EMPTY_TABLE = Symbol('empty table');
const lastEncoded: { keys: string[]; values: Flat[]; text: string | null } = { keys: [], values: [], text: null };
const lastDecoded: { text: string | null; keys: string[]; values: Flat[] } = { text: null, keys: [], values: [] };

function isEmptyTable(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  for (const _k in v) return false;
  return true;
}

function flatOf(v: unknown): Flat | undefined {
  if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) return v;
  return isEmptyTable(v) ? EMPTY_TABLE : undefined;
}

/** True when `props` (less deliveryMode) has exactly these keys, in this order, with these flat values. */
function sameFlat(props: MessageProperties, keys: string[], values: Flat[]): boolean {
  let i = 0;
  for (const k in props) {
    if (k === 'deliveryMode') continue;
    if (i >= keys.length || keys[i] !== k) return false;
    const v = (props as Record<string, unknown>)[k];
    if (values[i] === EMPTY_TABLE ? !isEmptyTable(v) : values[i] !== v) return false;
    i++;
  }
  return i === keys.length;
}

function rememberEncoded(props: MessageProperties, text: string): void {
  const keys: string[] = [];
  const values: Flat[] = [];
  for (const k in props) {
    if (k === 'deliveryMode') continue;
    const v = Object.hasOwn(props, k) ? flatOf((props as Record<string, unknown>)[k]) : undefined;
    if (v === undefined) {
      lastEncoded.text = null;
      return;
    }
    keys.push(k);
    values.push(v);
  }
  lastEncoded.keys = keys;
  lastEncoded.values = values;
  lastEncoded.text = text;
}

function rememberDecoded(text: string, props: MessageProperties): void {
  const keys: string[] = [];
  const values: Flat[] = [];
  for (const k in props) {
    const v = k === '__proto__' ? undefined : flatOf((props as Record<string, unknown>)[k]);
    if (v === undefined) return;
    keys.push(k);
    values.push(v);
  }
  lastDecoded.keys = keys;
  lastDecoded.values = values;
  lastDecoded.text = text;
}

/**
 * A fresh copy of the remembered decoded properties (tables are new objects
 * too), built key by key in the text's order: every copy then has the same
 * shape, which keeps later reads of it fast (a spread copy given one more
 * key costs several times as much).
 */
function rememberedProps(): MessageProperties {
  const props: Record<string, unknown> = {};
  const { keys, values } = lastDecoded;
  for (let i = 0; i < keys.length; i++) {
    const v = values[i];
    props[keys[i]!] = v === EMPTY_TABLE ? {} : v;
  }
  return props as MessageProperties;
}

/** Stable text for comparing argument tables regardless of key order (user objects escaped, as stored; no mark). */
export function canonicalJson(value: unknown): string {
  const sorted = sortKeys(value);
  return needsReplacer(sorted) ? JSON.stringify(sorted, replacer) : JSON.stringify(sorted);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value) && !(value instanceof Date) && !(value instanceof Uint8Array)) {
    // No prototype: a key named __proto__ stays an ordinary key.
    const out: Record<string, unknown> = Object.create(null);
    for (const k of Object.keys(value).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

/** Equality of field-table values as AMQP would see them. */
export function fieldEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'bigint') return Number.isInteger(a) && BigInt(a) === b;
  if (typeof a === 'bigint' && typeof b === 'number') return fieldEquals(b, a);
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  return canonicalJson(a) === canonicalJson(b);
}
