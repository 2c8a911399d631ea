/**
 * Publish-many placeholders, replaced per copy: {{i}} (1-based copy number),
 * {{uuid}} (a fresh random UUID), {{now}} (ISO-8601 time of the copy).
 *
 * This module is the one definition of what expands where, for every kind of
 * connection: the core compiles a template once per publish and hands it to
 * the connection, which asks it for each copy; the embedded engine compiles
 * the same template itself when it publishes many copies in one call.
 *
 * What expands in a message (AMQP-style):
 * - the body, read as UTF-8, when it contains a placeholder;
 * - string header values, and strings inside header arrays;
 * - a number-typed header written as `{ "$number": "{{i}}" }`: the text is
 *   expanded and sent as a number (so `{{i}}` can fill an integer header);
 * - the string properties messageId, correlationId, type and appId.
 * What expands in a record (Kafka-style): the key, the value (UTF-8) and the
 * header values.
 */
import { randomUUID } from 'node:crypto';
import { ApiError } from '../contract/errors.js';

const PATTERN = /\{\{(i|uuid|now)\}\}/g;
const OPEN = Buffer.from('{{');
/** The marker of a number-typed header value whose text holds placeholders. */
export const NUMBER_MARKER = '$number';

/** String properties in which placeholders expand per copy. */
export const PLACEHOLDER_PROPERTIES = ['messageId', 'correlationId', 'type', 'appId'] as const;

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

/** How much a copy can grow past its template: {{uuid}} (8 characters) becomes 36. */
export function worstCaseGrowth(text: string): number {
  return (text.match(PATTERN) ?? []).length * 28;
}

function isNumberMarker(v: unknown): v is { [NUMBER_MARKER]: string | number } {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || Buffer.isBuffer(v)) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && keys[0] === NUMBER_MARKER;
}

function toNumber(text: string, field: string): number {
  const n = text.trim() === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(n)) {
    throw new ApiError('INVALID_ARGUMENT', `${field}: a number-typed header must expand to a number, got ${JSON.stringify(text)}`, field);
  }
  return n;
}

/** Expands string values of a header table (one level, strings inside arrays, and number-typed markers). */
export function expandHeaders(headers: Record<string, unknown>, i: number, nowMs: number): Record<string, unknown> {
  // fromEntries: a header named __proto__ stays an ordinary key.
  return Object.fromEntries(
    Object.entries(headers).map(([k, v]) => [
      k,
      typeof v === 'string'
        ? expand(v, i, nowMs)
        : Array.isArray(v)
          ? v.map((x) => (typeof x === 'string' ? expand(x, i, nowMs) : x))
          : isNumberMarker(v)
            ? toNumber(expand(String(v[NUMBER_MARKER]), i, nowMs), `properties.headers.${k}`)
            : v,
    ]),
  );
}

export function headersHavePlaceholders(headers: Record<string, unknown> | undefined): boolean {
  if (!headers) return false;
  for (const v of Object.values(headers)) {
    if (typeof v === 'string' && hasPlaceholders(v)) return true;
    if (Array.isArray(v) && v.some((x) => typeof x === 'string' && hasPlaceholders(x))) return true;
    if (isNumberMarker(v)) return true;
  }
  return false;
}

export interface TemplateProperties {
  headers?: Record<string, unknown> | undefined;
  messageId?: string | undefined;
  correlationId?: string | undefined;
  type?: string | undefined;
  appId?: string | undefined;
}

export interface MessageCopy<P> {
  body: Buffer;
  properties: P;
}

/** A message to publish many times; `copy(i)` gives copy number i (1-based). */
export interface MessageTemplate<P extends TemplateProperties = TemplateProperties> {
  /** Whether any part differs from copy to copy (when not, every copy is the same objects). */
  readonly varies: boolean;
  /** Whether the properties (headers, ids) differ from copy to copy; when not, every copy has the template's properties object. */
  readonly propertiesVary: boolean;
  /** The largest body a copy can have, in bytes. */
  readonly maxBodyBytes: number;
  copy(i: number, nowMs?: number): MessageCopy<P>;
}

/**
 * Compiles a message once: what holds no placeholder is shared by every copy,
 * and a number-typed header that cannot become a number is refused here,
 * naming the header, before anything is sent.
 */
export function compileMessage<P extends TemplateProperties>(body: Buffer, properties: P): MessageTemplate<P> {
  const bodyTemplate = bufferHasPlaceholders(body) ? body.toString('utf8') : null;
  const headerTemplate = headersHavePlaceholders(properties.headers) ? properties.headers! : null;
  const propTemplates = PLACEHOLDER_PROPERTIES.filter((k) => typeof properties[k] === 'string' && hasPlaceholders(properties[k] as string));
  const varies = bodyTemplate !== null || headerTemplate !== null || propTemplates.length > 0;
  // A marker must expand to a number; checked with copy 1 so a bad one fails before the first send.
  if (headerTemplate !== null) expandHeaders(headerTemplate, 1, Date.now());
  const fixed: MessageCopy<P> = { body, properties };
  return {
    varies,
    propertiesVary: headerTemplate !== null || propTemplates.length > 0,
    maxBodyBytes: body.length + (bodyTemplate === null ? 0 : worstCaseGrowth(bodyTemplate)),
    copy(i: number, nowMs = Date.now()): MessageCopy<P> {
      if (!varies) return fixed;
      const out = bodyTemplate !== null ? Buffer.from(expand(bodyTemplate, i, nowMs), 'utf8') : body;
      let props: P = headerTemplate !== null ? { ...properties, headers: expandHeaders(headerTemplate, i, nowMs) } : properties;
      if (propTemplates.length > 0) {
        props = { ...props };
        for (const k of propTemplates) (props as TemplateProperties)[k] = expand(properties[k] as string, i, nowMs);
      }
      return { body: out, properties: props };
    },
  };
}

export interface RecordCopy {
  key: Buffer | null;
  value: Buffer | null;
  headers: Array<[string, string]>;
}

export interface RecordTemplate {
  readonly varies: boolean;
  copy(i: number, nowMs?: number): RecordCopy;
}

/**
 * Compiles a Kafka record once. The value expands only when it is given as
 * text (`valueText`); bytes given as base64 are sent as they are.
 */
export function compileRecord(key: string | null, value: { text: string } | { bytes: Buffer } | null, headers: Record<string, string>): RecordTemplate {
  const keyTemplated = key !== null && hasPlaceholders(key);
  const valueText = value !== null && 'text' in value && hasPlaceholders(value.text) ? value.text : null;
  const fixedValue = value === null ? null : 'bytes' in value ? value.bytes : valueText === null ? Buffer.from(value.text, 'utf8') : null;
  const entries = Object.entries(headers);
  const headersTemplated = entries.some(([, v]) => hasPlaceholders(v));
  const fixedKey = key !== null && !keyTemplated ? Buffer.from(key, 'utf8') : null;
  const varies = keyTemplated || valueText !== null || headersTemplated;
  return {
    varies,
    copy(i: number, nowMs = Date.now()): RecordCopy {
      return {
        key: keyTemplated ? Buffer.from(expand(key!, i, nowMs), 'utf8') : fixedKey,
        value: valueText !== null ? Buffer.from(expand(valueText, i, nowMs), 'utf8') : fixedValue,
        headers: headersTemplated ? entries.map(([k, v]) => [k, expand(v, i, nowMs)]) : entries,
      };
    },
  };
}
