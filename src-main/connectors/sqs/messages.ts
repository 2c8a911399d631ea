/**
 * SQS messages as the contract shows them, and the contract's headers as SQS
 * message attributes. SQS gives every message a stable `MessageId`, which is the
 * view's id: a selection made on one read finds the same messages on the next.
 *
 * Message attributes are typed (String, Number, Binary, each with an optional
 * custom suffix such as `Number.int`). A header given as a string becomes a
 * String attribute, a number a Number, a boolean the String "true"/"false"; an
 * object `{ "DataType": "Number.int", "StringValue": "7" }` (or `BinaryValue`,
 * base64) is taken as the attribute itself. Reading back, String attributes
 * show as strings, Number ones as numbers (when exact), Binary ones as base64.
 */
import type { Message, MessageAttributeValue } from '@aws-sdk/client-sqs';
import { ApiError } from '../../contract/errors.js';
import type { MessageProperties, MessageView } from '../../contract/types.js';
import type { CompiledFilter } from '../../ground/filter.js';

/** SQS allows 10 message attributes per message. */
export const MAX_ATTRIBUTES = 10;

/** The attribute a re-drive counts its moves in, as the embedded broker's `x-redriven-count` header. */
export const REDRIVEN_COUNT = 'x-redriven-count';

const NAME = /^(?!aws\.|amazon\.)(?!\.)(?!.*\.\.)[A-Za-z0-9_.-]{1,256}(?<!\.)$/i;

function attributeFrom(name: string, value: unknown, field: string): MessageAttributeValue {
  if (!NAME.test(name)) {
    throw new ApiError(
      'INVALID_ARGUMENT',
      `${field}: "${name}" is not a valid SQS attribute name (letters, digits, _ - and ., at most 256, not starting with aws. or amazon.)`,
      field,
    );
  }
  if (typeof value === 'string') return { DataType: 'String', StringValue: value };
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new ApiError('INVALID_ARGUMENT', `${field}: a Number attribute must be finite`, field);
    return { DataType: 'Number', StringValue: String(value) };
  }
  if (typeof value === 'bigint') return { DataType: 'Number', StringValue: value.toString() };
  if (typeof value === 'boolean') return { DataType: 'String', StringValue: String(value) };
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const v = value as Record<string, unknown>;
    const type = v.DataType ?? v.dataType;
    if (typeof type === 'string' && /^(String|Number|Binary)(\.[A-Za-z0-9_.-]+)?$/.test(type)) {
      if (type.startsWith('Binary')) {
        const b = v.BinaryValue ?? v.binaryValue;
        if (typeof b !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(b)) throw new ApiError('INVALID_ARGUMENT', `${field}: a Binary attribute needs BinaryValue as base64`, field);
        return { DataType: type, BinaryValue: Buffer.from(b, 'base64') };
      }
      const s = v.StringValue ?? v.stringValue;
      if (typeof s !== 'string' && typeof s !== 'number') throw new ApiError('INVALID_ARGUMENT', `${field}: a ${type} attribute needs a StringValue`, field);
      if (type.startsWith('Number') && !Number.isFinite(Number(s))) throw new ApiError('INVALID_ARGUMENT', `${field}: ${JSON.stringify(s)} is not a number`, field);
      return { DataType: type, StringValue: String(s) };
    }
  }
  throw new ApiError(
    'INVALID_ARGUMENT',
    `${field}: an SQS attribute is a string, a number, a boolean or { "DataType": "String|Number|Binary", "StringValue"|"BinaryValue": … }`,
    field,
  );
}

/** The publish's headers as message attributes; AMQP-only properties that SQS cannot keep are refused by name. */
export function attributesFrom(properties: MessageProperties): Record<string, MessageAttributeValue> {
  if (properties.priority !== undefined) throw new ApiError('INVALID_ARGUMENT', 'properties.priority: SQS messages have no priority', 'properties.priority');
  if (properties.expiration !== undefined) {
    throw new ApiError('INVALID_ARGUMENT', "properties.expiration: SQS messages have no expiration of their own (the queue's MessageRetentionPeriod applies)", 'properties.expiration');
  }
  const out: Record<string, MessageAttributeValue> = {};
  const headers = properties.headers ?? {};
  const names = Object.keys(headers);
  if (names.length > MAX_ATTRIBUTES) {
    throw new ApiError('INVALID_ARGUMENT', `properties.headers: SQS allows at most ${MAX_ATTRIBUTES} message attributes, got ${names.length}`, 'properties.headers');
  }
  for (const name of names) {
    Object.defineProperty(out, name, { value: attributeFrom(name, headers[name], `properties.headers.${name}`), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** A message attribute as a header value to show. */
export function headerValue(a: MessageAttributeValue): unknown {
  const type = a.DataType ?? 'String';
  if (type.startsWith('Binary')) return a.BinaryValue ? Buffer.from(a.BinaryValue).toString('base64') : '';
  if (type.startsWith('Number')) {
    const n = Number(a.StringValue);
    return Number.isSafeInteger(n) || (Number.isFinite(n) && String(n) === a.StringValue) ? n : a.StringValue;
  }
  return a.StringValue ?? '';
}

export function headersOf(m: Message): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, a] of Object.entries(m.MessageAttributes ?? {})) {
    Object.defineProperty(out, name, { value: headerValue(a), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

export function receiveCount(m: Message): number {
  return Number(m.Attributes?.ApproximateReceiveCount ?? '0') || 0;
}

export function sentAt(m: Message): number {
  return Number(m.Attributes?.SentTimestamp ?? '0') || 0;
}

export function toView(m: Message, queue: string, position: number): MessageView {
  const body = m.Body ?? '';
  const count = receiveCount(m);
  const properties: MessageProperties = { headers: headersOf(m) };
  if (m.MessageId) properties.messageId = m.MessageId;
  const sent = sentAt(m);
  if (sent) properties.timestamp = sent;
  return {
    id: m.MessageId ?? `#${position}`,
    position,
    exchange: '',
    routingKey: queue,
    body,
    bodyEncoding: 'utf8',
    size: Buffer.byteLength(body, 'utf8'),
    properties,
    redelivered: count > 1,
    deliveryCount: count,
    enqueuedAt: sent,
    state: 'ready',
    attributes: { ...(m.Attributes ?? {}) },
  };
}

export function matchesFilter(filter: CompiledFilter | null, view: MessageView): boolean {
  if (!filter) return true;
  const body = Buffer.from(view.body, 'utf8');
  return filter.all({
    body,
    text: !view.body.includes('\u0000'),
    properties: () => view.properties,
    headers: () => view.properties.headers,
    key: view.routingKey,
    time: view.enqueuedAt,
  });
}

/** The queue's name from its URL (`…/123456789012/orders`). */
export function queueNameOf(url: string): string {
  const path = url.replace(/[?#].*$/, '').replace(/\/+$/, '');
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1));
}

/** The queue's name from its ARN (`arn:aws:sqs:eu-west-1:123456789012:orders`). */
export function queueNameOfArn(arn: string): string {
  return arn.slice(arn.lastIndexOf(':') + 1);
}
