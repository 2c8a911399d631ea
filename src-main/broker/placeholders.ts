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
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (typeof v === 'string') out[k] = expand(v, i, nowMs);
    else if (Array.isArray(v)) out[k] = v.map((x) => (typeof x === 'string' ? expand(x, i, nowMs) : x));
    else out[k] = v;
  }
  return out;
}

export function headersHavePlaceholders(headers: Record<string, unknown> | undefined): boolean {
  if (!headers) return false;
  for (const v of Object.values(headers)) {
    if (typeof v === 'string' && hasPlaceholders(v)) return true;
    if (Array.isArray(v) && v.some((x) => typeof x === 'string' && hasPlaceholders(x))) return true;
  }
  return false;
}
