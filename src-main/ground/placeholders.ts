/**
 * publish-many placeholders, replaced per copy: {{i}} (1-based copy number),
 * {{uuid}} (a fresh random UUID), {{now}} (ISO-8601 time of the copy).
 */
import { randomUUID } from 'node:crypto';

const PATTERN = /\{\{(i|uuid|now)\}\}/g;
const OPEN = Buffer.from('{{');

export function hasPlaceholders(text: string): boolean {
  PATTERN.lastIndex = 0;
  const found = PATTERN.test(text);
  PATTERN.lastIndex = 0;
  return found;
}

export function bufferHasPlaceholders(body: Buffer): boolean {
  return body.indexOf(OPEN) >= 0 && hasPlaceholders(body.toString('utf8'));
}

export function expand(text: string, i: number, nowMs: number): string {
  return text.replace(PATTERN, (_m, name: string) => (name === 'i' ? String(i) : name === 'uuid' ? randomUUID() : new Date(nowMs).toISOString()));
}

/** Expands string values of a header table (one level, and strings inside arrays). */
export function expandHeaders(headers: Record<string, unknown>, i: number, nowMs: number): Record<string, unknown> {
  // fromEntries: a header named __proto__ stays an ordinary key.
  return Object.fromEntries(
    Object.entries(headers).map(([k, v]) => [k, typeof v === 'string' ? expand(v, i, nowMs) : Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? expand(x, i, nowMs) : x)) : v]),
  );
}

export function headersHavePlaceholders(headers: Record<string, unknown> | undefined): boolean {
  if (!headers) return false;
  for (const v of Object.values(headers)) {
    if (typeof v === 'string' && hasPlaceholders(v)) return true;
    if (Array.isArray(v) && v.some((x) => typeof x === 'string' && hasPlaceholders(x))) return true;
  }
  return false;
}
