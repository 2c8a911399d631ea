/**
 * Publishing through the core: every connection's publish and produce pass
 * here, so placeholders ({{i}}, {{uuid}}, {{now}}) mean the same on each. The
 * message is compiled once into a template (ground/placeholders) that the
 * connection asks for each copy; a template that cannot be expanded (a
 * number-typed header whose text is no number) is refused before anything is
 * sent, naming the field.
 */
import { ApiError } from '../contract/errors.js';
import type { ParsedInput } from '../contract/operations.js';
import type { MessageProperties } from '../contract/types.js';
import { decodeBytes } from '../connectors/encoding.js';
import { compileMessage, compileRecord, type MessageTemplate, type RecordTemplate } from '../ground/placeholders.js';

function asApiError(error: unknown, field: string): ApiError {
  if (error instanceof ApiError) return error;
  const e = error as { message?: string; field?: string };
  return new ApiError('INVALID_ARGUMENT', String(e?.message ?? error), e?.field ?? field);
}

export function messageTemplate(i: ParsedInput<'publish'>): MessageTemplate<MessageProperties> {
  let body: Buffer;
  try {
    body = decodeBytes(i.body, i.bodyEncoding);
  } catch (error) {
    throw asApiError(error, 'body');
  }
  try {
    return compileMessage(body, i.properties);
  } catch (error) {
    throw asApiError(error, 'properties.headers');
  }
}

export function recordTemplate(i: ParsedInput<'topics/produce'>): RecordTemplate {
  let value: { text: string } | { bytes: Buffer } | null = null;
  if (i.value !== null) {
    try {
      value = i.valueEncoding === 'utf8' ? { text: i.value } : { bytes: decodeBytes(i.value, i.valueEncoding, 'value') };
    } catch (error) {
      throw asApiError(error, 'value');
    }
  }
  return compileRecord(i.key ?? null, value, i.headers);
}
