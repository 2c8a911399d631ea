/**
 * Message filters, one meaning on every connection (README, "Filters"):
 * - `q`: a case-sensitive substring of the body, compared as bytes (so it
 *   also finds text inside a binary body); keys and properties are not searched.
 * - `key`: a case-sensitive substring of the routing key (queues) or the
 *   record key (topics).
 * - `jsonPath`: the path exists in a JSON body; with `jsonEquals` the value
 *   there equals (JSON, or plain text: "42" finds 42), with `jsonContains`
 *   its text contains.
 * - a header (name exact) or property (contentType, content_type or
 *   content-type): present, or with a value, equal as text.
 * - `from`/`to`: inclusive ms bounds of the enqueue time (queues) or the
 *   record timestamp (topics).
 * What SQLite can evaluate cheaply runs in SQL on the embedded broker (body
 * substring, time range) so non-matching rows never reach JavaScript; the rest
 * is checked in JS on the rows that pass.
 */
import { ApiError } from '../contract/errors.js';
import type { MessageFilter } from '../contract/operations.js';
import type { FilterSpec, MessageProperties } from '../contract/types.js';
import { valueEquals } from './values.js';

function invalid(field: string, problem: string): ApiError {
  return new ApiError('INVALID_ARGUMENT', `${field}: ${problem}`, field);
}

export type PathSegment = string | number;

/** Parses `$.a.b[0]`, `a.b[0].c`, `$["odd key"]`, `$['x']`. */
export function parseJsonPath(path: string): PathSegment[] {
  let s = path.trim();
  if (s.startsWith('$')) s = s.slice(1);
  const out: PathSegment[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw invalid('filter.jsonPath', `${why} at character ${i + (path.length - path.trimStart().length) + (path.trim().startsWith('$') ? 1 : 0)} of ${JSON.stringify(path)}`);
  };
  while (i < s.length) {
    const c = s[i];
    if (c === '.') {
      i++;
      continue;
    }
    if (c === '[') {
      const close = s.indexOf(']', i);
      if (close < 0) fail('missing ]');
      const inner = s.slice(i + 1, close).trim();
      if (/^\d+$/.test(inner)) out.push(Number(inner));
      else if (/^(['"]).*\1$/.test(inner)) out.push(inner.slice(1, -1));
      else fail('expected [number] or ["key"]');
      i = close + 1;
      continue;
    }
    let j = i;
    while (j < s.length && s[j] !== '.' && s[j] !== '[') j++;
    out.push(s.slice(i, j));
    i = j;
  }
  return out;
}

export function valueAt(doc: unknown, path: readonly PathSegment[]): unknown {
  let cur: unknown = doc;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (typeof seg === 'number') {
      if (!Array.isArray(cur)) return undefined;
      cur = cur[seg];
    } else {
      if (Array.isArray(cur)) {
        if (!/^\d+$/.test(seg)) return undefined;
        cur = cur[Number(seg)];
      } else cur = Object.hasOwn(cur, seg) ? (cur as Record<string, unknown>)[seg] : undefined;
    }
  }
  return cur;
}

/** Strict equality, plus "42" == 42 and "true" == true so text inputs from a form match typed JSON. */
export function looseEquals(actual: unknown, expected: unknown): boolean {
  if (valueEquals(actual, expected)) return true;
  const prim = (v: unknown) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint';
  if (prim(actual) && prim(expected)) return String(actual) === String(expected);
  if (Buffer.isBuffer(actual) && typeof expected === 'string') return actual.toString('utf8') === expected;
  return false;
}

function normalizeProp(name: string): string {
  return name.replace(/[-_]/g, '').toLowerCase();
}

const PROP_NAMES = new Map<string, keyof MessageProperties>(
  (['contentType', 'contentEncoding', 'deliveryMode', 'priority', 'correlationId', 'replyTo', 'expiration', 'messageId', 'timestamp', 'type', 'userId', 'appId'] as const).map((k) => [normalizeProp(k), k]),
);

export interface FilterSubject {
  body: Buffer | null;
  /** Body is valid UTF-8 without NUL bytes (worth JSON.parse). */
  text: boolean;
  properties: () => MessageProperties;
  headers: () => Record<string, unknown> | undefined;
  /** Record key (topics) or routing key (queues). */
  key?: Buffer | string | null;
  time: number;
}

export interface CompiledFilter {
  /** Body substring needle (bytes). */
  needle: Buffer | null;
  from: number | null;
  to: number | null;
  /** Checks that cannot run in SQL; null when SQL does it all. */
  js: ((m: FilterSubject) => boolean) | null;
  /** Full check, SQL parts included (used where there is no SQL). */
  all: (m: FilterSubject) => boolean;
}

function checkNumber(v: unknown, field: string): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(field, `expected a time in ms, got ${JSON.stringify(v)}`);
  return v;
}

export function compileFilter(filter: FilterSpec | undefined): CompiledFilter | null {
  if (!filter) return null;
  const needle = filter.q ? Buffer.from(filter.q, 'utf8') : null;
  const from = checkNumber(filter.from, 'filter.from');
  const to = checkNumber(filter.to, 'filter.to');
  const checks: Array<(m: FilterSubject) => boolean> = [];

  if (filter.jsonPath !== undefined && filter.jsonPath !== '') {
    const path = parseJsonPath(filter.jsonPath);
    const hasEq = filter.jsonEquals !== undefined;
    const contains = filter.jsonContains;
    const expected = filter.jsonEquals;
    checks.push((m) => {
      if (!m.text || !m.body) return false;
      let doc: unknown;
      try {
        doc = JSON.parse(m.body.toString('utf8'));
      } catch {
        return false;
      }
      const v = valueAt(doc, path);
      if (v === undefined) return false;
      if (hasEq && !looseEquals(v, expected)) return false;
      if (contains !== undefined) {
        const text = typeof v === 'string' ? v : JSON.stringify(v);
        if (!text.includes(contains)) return false;
      }
      return true;
    });
  } else if (filter.jsonEquals !== undefined || filter.jsonContains !== undefined) {
    throw invalid('filter.jsonPath', 'jsonEquals and jsonContains need a jsonPath');
  }

  if (filter.header && filter.header.name) {
    const { name, value } = filter.header;
    const presence = value === undefined || value === '';
    checks.push((m) => {
      const h = m.headers();
      if (!h || !Object.prototype.hasOwnProperty.call(h, name)) return false;
      return presence || looseEquals(h[name], value);
    });
  }

  if (filter.property && filter.property.name) {
    const key = PROP_NAMES.get(normalizeProp(filter.property.name));
    if (!key) throw invalid('filter.property.name', `unknown property ${JSON.stringify(filter.property.name)}; use one of ${[...PROP_NAMES.values()].join(', ')}`);
    const { value } = filter.property;
    const presence = value === undefined || value === '';
    checks.push((m) => {
      const v = m.properties()[key];
      if (v === undefined) return false;
      return presence || looseEquals(v, value);
    });
  }

  if (filter.key !== undefined && filter.key !== '') {
    const text = filter.key;
    const k = Buffer.from(text, 'utf8');
    checks.push((m) => (typeof m.key === 'string' ? m.key.includes(text) : !!m.key && m.key.indexOf(k) >= 0));
  }

  if (!needle && from === null && to === null && checks.length === 0) return null;
  const js = checks.length === 0 ? null : (m: FilterSubject) => checks.every((c) => c(m));
  const all = (m: FilterSubject): boolean => {
    if (from !== null && m.time < from) return false;
    if (to !== null && m.time > to) return false;
    if (needle && (!m.body || m.body.indexOf(needle) < 0)) return false;
    return js ? js(m) : true;
  };
  return { needle, from, to, js, all };
}

/** GLOB pattern matching `needle` anywhere (GLOB is case-sensitive, LIKE is not). */
export function globContains(needle: string): string {
  return `*${needle.replace(/[*?[]/g, (c) => `[${c}]`)}*`;
}

/**
 * The contract's flat filter (`headerName`, `propertyValue`…) in structured
 * form; undefined when it filters nothing. Topic records have no message
 * properties, so a property filter on a topic is refused.
 */
export function filterSpec(f: MessageFilter, on: 'queue' | 'topic', prefix = ''): FilterSpec | undefined {
  if (on === 'topic' && f.propertyName) {
    throw new ApiError('INVALID_ARGUMENT', `${prefix}propertyName: topic records have no message properties: filter on a header (headerName, headerValue) instead`, `${prefix}propertyName`);
  }
  const filter: FilterSpec = {};
  if (f.q) filter.q = f.q;
  if (f.jsonPath) {
    filter.jsonPath = f.jsonPath;
    if (f.jsonEquals !== undefined) {
      try {
        filter.jsonEquals = JSON.parse(f.jsonEquals) as unknown;
      } catch {
        filter.jsonEquals = f.jsonEquals;
      }
    }
    if (f.jsonContains !== undefined) filter.jsonContains = f.jsonContains;
  } else if (f.jsonEquals !== undefined || f.jsonContains !== undefined) {
    throw new ApiError('INVALID_ARGUMENT', `${prefix}jsonPath: jsonEquals and jsonContains need a jsonPath`, `${prefix}jsonPath`);
  }
  if (f.headerName) filter.header = { name: f.headerName, value: f.headerValue ?? '' };
  if (f.propertyName) filter.property = { name: f.propertyName, value: f.propertyValue ?? '' };
  if (f.key) filter.key = f.key;
  if (f.from !== undefined) filter.from = f.from;
  if (f.to !== undefined) filter.to = f.to;
  return Object.keys(filter).length > 0 ? filter : undefined;
}

/** The structured filter's field names, as the contract's flat filter calls them. */
const FLAT_FIELDS: Record<string, string> = {
  'filter.jsonPath': 'jsonPath',
  'filter.property.name': 'propertyName',
  'filter.from': 'from',
  'filter.to': 'to',
};

/** Compiles the contract's filter; errors name the contract's fields (after `prefix`, e.g. `filter.` for a re-drive's). */
export function compileMessageFilter(f: MessageFilter, on: 'queue' | 'topic', prefix = ''): CompiledFilter | null {
  const spec = filterSpec(f, on, prefix);
  try {
    return compileFilter(spec);
  } catch (error) {
    if (error instanceof ApiError && error.field !== undefined) {
      const field = `${prefix}${FLAT_FIELDS[error.field] ?? error.field.replace(/^filter\./, '')}`;
      throw new ApiError(error.code, error.message.replace(`${error.field}:`, `${field}:`), field);
    }
    throw error;
  }
}
