/**
 * Bodies, keys and header values are bytes in a broker and strings in the
 * contract. Text that is valid UTF-8 travels as `utf8`; anything else as
 * `base64`, so no byte is ever lost on the way to the UI and back.
 */
import type { BodyEncoding } from '../contract/types.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeBytes(bytes: Uint8Array): { text: string; encoding: BodyEncoding } {
  try {
    return { text: decoder.decode(bytes), encoding: 'utf8' };
  } catch {
    return { text: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'), encoding: 'base64' };
  }
}

export function decodeBytes(text: string, encoding: BodyEncoding, field = 'body'): Buffer {
  if (encoding === 'utf8') return Buffer.from(text, 'utf8');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) {
    throw Object.assign(new Error(`${field}: not valid base64`), { code: 'INVALID_ARGUMENT', field });
  }
  return Buffer.from(text, 'base64');
}

/** Makes header tables JSON-safe: Buffers become text (or base64), bigints numbers, dates epoch ms. */
export function jsonSafe(value: unknown): unknown {
  if (value === null || value === undefined) return value ?? null;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return encodeBytes(value).text;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Date) return value.getTime();
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (typeof value === 'object') {
    // fromEntries: a header named __proto__ stays an ordinary key.
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, jsonSafe(v)]));
  }
  return value;
}
