/**
 * How a stream entry (or a list element) appears as a record and a message.
 *
 * A stream entry is a list of field–value pairs. When it has a field named
 * `value`, `data`, `body` or `payload` (the first of these present), that
 * field is the record's value and every other field a header; otherwise the
 * value is the JSON object of all fields (field order kept) and there are no
 * headers. A field named `key` is also the record's key. Publishing does the
 * reverse: the value goes to a field named `value`, each header to a field of
 * its name, the key to `key`; with no value, the headers alone are the fields.
 *
 * Values are bytes: valid UTF-8 is shown as text, anything else as base64.
 */
import type { FilterSubject } from '../../ground/filter.js';
import type { MessageView, RecordView } from '../../contract/types.js';

export const BODY_FIELDS = ['value', 'data', 'body', 'payload'] as const;

/** An entry as ioredis returns it with the Buffer commands: [id, [field, value, …]]. */
export type RawEntry = [Buffer | string, Array<Buffer | string>];

export interface Entry {
  id: string;
  fields: Array<[string, Buffer]>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function isText(b: Buffer): boolean {
  if (b.includes(0)) return false;
  try {
    utf8.decode(b);
    return true;
  } catch {
    return false;
  }
}

export function encodeBytes(b: Buffer): { text: string; encoding: 'utf8' | 'base64' } {
  return isText(b) ? { text: b.toString('utf8'), encoding: 'utf8' } : { text: b.toString('base64'), encoding: 'base64' };
}

const asBuffer = (v: Buffer | string): Buffer => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v);

export function toEntry(raw: RawEntry): Entry {
  const [id, flat] = raw;
  const fields: Array<[string, Buffer]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) fields.push([asBuffer(flat[i]!).toString('utf8'), asBuffer(flat[i + 1]!)]);
  return { id: asBuffer(id).toString('utf8'), fields };
}

/** The ms part of an entry id. */
export function idTime(id: string): number {
  const ms = Number(id.split('-')[0]);
  return Number.isFinite(ms) ? ms : 0;
}

export interface Shaped {
  value: Buffer;
  key: Buffer | null;
  headers: Record<string, string>;
}

/** The value, key and headers of an entry, by the rule in this file's header. */
export function shape(fields: Array<[string, Buffer]>): Shaped {
  const bodyField = BODY_FIELDS.find((name) => fields.some(([f]) => f === name));
  const keyField = fields.find(([f]) => f === 'key');
  const key = keyField ? keyField[1] : null;
  if (bodyField) {
    const headers: Record<string, string> = {};
    let value: Buffer | null = null;
    for (const [f, v] of fields) {
      if (f === bodyField && value === null) value = v;
      else Object.defineProperty(headers, f, { value: encodeBytes(v).text, enumerable: true, writable: true, configurable: true });
    }
    return { value: value ?? Buffer.alloc(0), key, headers };
  }
  const obj: Record<string, string> = {};
  for (const [f, v] of fields) Object.defineProperty(obj, f, { value: encodeBytes(v).text, enumerable: true, writable: true, configurable: true });
  return { value: Buffer.from(JSON.stringify(obj), 'utf8'), key, headers: {} };
}

export function entrySize(e: Entry): number {
  let n = 0;
  for (const [f, v] of e.fields) n += Buffer.byteLength(f) + v.length;
  return n;
}

export function toRecord(e: Entry, ordinal: number, s: Shaped = shape(e.fields)): RecordView {
  const value = encodeBytes(s.value);
  const key = s.key ? encodeBytes(s.key) : null;
  return {
    partition: 0,
    offset: ordinal,
    position: e.id,
    timestamp: idTime(e.id),
    key: key ? key.text : null,
    keyEncoding: key ? key.encoding : 'utf8',
    value: value.text,
    valueEncoding: value.encoding,
    size: entrySize(e),
    headers: s.headers,
  };
}

/** The filter's view of an entry: its value as body, its headers, its key, the id's time. */
export function entrySubject(e: Entry, s: Shaped): FilterSubject {
  return { body: s.value, text: isText(s.value), properties: () => ({}), headers: () => s.headers, key: s.key, time: idTime(e.id) };
}

/** A stream entry shown as a queue message (a dead-letter stream, a pending entry). */
export function entryMessage(e: Entry, stream: string, position: number, extra: Partial<MessageView> = {}): MessageView {
  const s = shape(e.fields);
  const value = encodeBytes(s.value);
  return {
    id: e.id,
    position,
    exchange: '',
    routingKey: stream,
    body: value.text,
    bodyEncoding: value.encoding,
    size: entrySize(e),
    properties: { headers: { ...s.headers, ...(s.key ? { key: encodeBytes(s.key).text } : {}) } },
    redelivered: false,
    deliveryCount: 0,
    enqueuedAt: idTime(e.id),
    attributes: { 'stream-entry-id': e.id },
    ...extra,
  };
}

/** The fields an XADD writes for a value, key and headers (see this file's header). */
export function fieldsFor(value: Buffer | null, key: string | null | undefined, headers: Record<string, string>): Array<string | Buffer> {
  const out: Array<string | Buffer> = [];
  if (value !== null) out.push('value', value);
  if (key !== null && key !== undefined) out.push('key', key);
  for (const [name, v] of Object.entries(headers)) {
    if (name === 'value' && value !== null) continue;
    if (name === 'key' && key !== null && key !== undefined) continue;
    out.push(name, v);
  }
  return out;
}

/** Entry ids: `<ms>-<seq>`. */
export const ENTRY_ID = /^\d{1,20}-\d{1,20}$/;

/** Compares two entry ids numerically. */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-');
  const [bm, bs] = b.split('-');
  const x = BigInt(am ?? '0') - BigInt(bm ?? '0');
  if (x !== 0n) return x < 0n ? -1 : 1;
  const y = BigInt(as ?? '0') - BigInt(bs ?? '0');
  return y === 0n ? 0 : y < 0n ? -1 : 1;
}

/** The id just after `id` (XRANGE's exclusive `(` form needs Redis 6.2; this works everywhere). */
export function nextId(id: string): string {
  const [ms, seq] = id.split('-');
  if (seq === '18446744073709551615') return `${BigInt(ms!) + 1n}-0`;
  return `${ms}-${BigInt(seq ?? '0') + 1n}`;
}

export function prevId(id: string): string {
  const [ms, seq] = id.split('-');
  if (seq === '0' || seq === undefined) return BigInt(ms!) === 0n ? '0-0' : `${BigInt(ms!) - 1n}-18446744073709551615`;
  return `${ms}-${BigInt(seq) - 1n}`;
}
