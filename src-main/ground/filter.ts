/**
 * Message filters. What SQLite can evaluate cheaply runs in SQL (body
 * substring, time range) so non-matching rows never reach JavaScript; JSON
 * paths, headers and properties are checked in JS on the rows that pass.
 */
import { ApiError } from '../contract/errors.js';
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
  key?: Buffer | null;
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
    const k = Buffer.from(filter.key, 'utf8');
    checks.push((m) => !!m.key && m.key.indexOf(k) >= 0);
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
