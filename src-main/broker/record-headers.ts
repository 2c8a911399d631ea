/**
 * Record headers of the embedded broker's topics as Kafka clients send them.
 * The app works with a map (one value per key); Kafka allows a key several
 * times and a null value, so such records also carry the ordered list, and
 * the records table stores that list instead of the map.
 */
import { decodeJson } from './codec.js';
import { invalid } from './errors.js';
import type { RecordHeaders } from './types.js';

/**
 * Kafka headers as a Kafka record has them: in order, a key possibly
 * repeated, a value possibly null. A record's `headers` map keeps each key's
 * last value (null as empty bytes), which is what the app shows and filters
 * on; when the map cannot say it all, the list rides along under this symbol
 * (invisible to Object.entries and JSON) and is stored in its place: the
 * headers column then holds a JSON list of [key, value] pairs, not an object.
 */
export const HEADER_LIST: unique symbol = Symbol('kafka header list');
export type HeaderList = Array<[string, Buffer | null]>;
type WithList = RecordHeaders & { [HEADER_LIST]?: HeaderList };

/** The ordered list a headers map carries, when it carries one. */
export function headerListOf(headers: RecordHeaders): HeaderList | undefined {
  return (headers as WithList)[HEADER_LIST];
}

/** A headers map for Kafka headers; the list is kept only when the map loses something (a repeated key, a null value). */
export function kafkaHeaders(list: HeaderList): RecordHeaders {
  const map: WithList = Object.fromEntries(list.map(([k, v]) => [k, v ?? Buffer.alloc(0)]));
  if (Object.keys(map).length !== list.length || list.some(([, v]) => v === null)) map[HEADER_LIST] = list;
  return map;
}

/** Headers as stored: a JSON object, or the JSON list of [key, value] pairs. */
export function storedHeaders(text: string): RecordHeaders {
  const stored = decodeJson<RecordHeaders | HeaderList>(text);
  return Array.isArray(stored) ? kafkaHeaders(stored) : stored;
}

export function checkHeaderList(list: unknown, field: string): HeaderList {
  if (!Array.isArray(list) || list.some((h) => !Array.isArray(h) || h.length !== 2 || typeof h[0] !== 'string' || (h[1] !== null && !Buffer.isBuffer(h[1])))) {
    throw invalid(field, 'expected a list of [key, bytes or null] pairs');
  }
  return list as HeaderList;
}
