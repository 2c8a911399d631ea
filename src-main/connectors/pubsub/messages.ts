/**
 * Pub/Sub messages as the contract shows them. A message's id is Pub/Sub's own
 * `messageId` (stable across pulls, so a selection made on one browse finds the
 * same messages in a re-drive); its attributes are the headers; the ordering key
 * shows as the routing key's companion attribute; `deliveryAttempt` (set by
 * Pub/Sub only on a subscription with a dead-letter policy, counting this pull)
 * is the delivery count and an attribute.
 */
import type { protos } from '@google-cloud/pubsub';
import { ApiError } from '../../contract/errors.js';
import type { MessageView } from '../../contract/types.js';
import type { CompiledFilter } from '../../ground/filter.js';
import { encodeBytes } from '../encoding.js';

export type ReceivedMessage = protos.google.pubsub.v1.IReceivedMessage;
export type PubsubMessage = protos.google.pubsub.v1.IPubsubMessage;

/** The attributes Pub/Sub adds to a message it forwards to a dead-letter topic. */
export const DEAD_LETTER_ATTRIBUTES = {
  subscription: 'CloudPubSubDeadLetterSourceSubscription',
  project: 'CloudPubSubDeadLetterSourceSubscriptionProject',
  deliveryCount: 'CloudPubSubDeadLetterSourceDeliveryCount',
  publishTime: 'CloudPubSubDeadLetterSourceTopicPublishTime',
} as const;

/** The attribute a re-drive counts its moves in, as the embedded broker's `x-redriven-count` header. */
export const REDRIVEN_COUNT = 'x-redriven-count';

/** Pub/Sub's limits: 100 attributes, keys up to 256 bytes not starting with `goog`, values up to 1024 bytes. */
export const MAX_ATTRIBUTES = 100;

export function checkAttributes(headers: Record<string, string>, field = 'headers'): Record<string, string> {
  const names = Object.keys(headers);
  if (names.length > MAX_ATTRIBUTES) throw new ApiError('INVALID_ARGUMENT', `${field}: Pub/Sub allows at most ${MAX_ATTRIBUTES} attributes, got ${names.length}`, field);
  for (const name of names) {
    if (name.length === 0 || Buffer.byteLength(name) > 256) throw new ApiError('INVALID_ARGUMENT', `${field}: an attribute name must be 1 to 256 bytes`, `${field}.${name}`);
    if (/^goog/i.test(name)) throw new ApiError('INVALID_ARGUMENT', `${field}.${name}: attribute names starting with "goog" are reserved by Pub/Sub`, `${field}.${name}`);
    if (Buffer.byteLength(headers[name]!) > 1024) throw new ApiError('INVALID_ARGUMENT', `${field}.${name}: an attribute value must be at most 1024 bytes`, `${field}.${name}`);
  }
  return headers;
}

/** A protobuf Timestamp as epoch ms. */
export function timestampMs(t: protos.google.protobuf.ITimestamp | null | undefined): number {
  if (!t) return 0;
  return Number(t.seconds ?? 0) * 1000 + Math.floor(Number(t.nanos ?? 0) / 1e6);
}

export function toView(r: ReceivedMessage, subscription: string, position: number): MessageView {
  const m = r.message ?? {};
  const data = m.data ? Buffer.from(m.data as Uint8Array) : Buffer.alloc(0);
  const { text, encoding } = encodeBytes(data);
  const publishedAt = timestampMs(m.publishTime);
  const attempt = r.deliveryAttempt ?? 0;
  const headers: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m.attributes ?? {})) Object.defineProperty(headers, k, { value: v, enumerable: true, writable: true, configurable: true });
  const attributes: Record<string, string> = { messageId: m.messageId ?? '', publishTime: publishedAt ? new Date(publishedAt).toISOString() : '' };
  if (m.orderingKey) attributes.orderingKey = m.orderingKey;
  if (attempt > 0) attributes.deliveryAttempt = String(attempt);
  return {
    id: m.messageId ?? `#${position}`,
    position,
    exchange: '',
    routingKey: subscription,
    body: text,
    bodyEncoding: encoding,
    size: data.length,
    properties: { headers, ...(m.messageId ? { messageId: m.messageId } : {}), ...(publishedAt ? { timestamp: publishedAt } : {}) },
    redelivered: attempt > 1,
    deliveryCount: attempt,
    enqueuedAt: publishedAt,
    state: 'ready',
    attributes,
  };
}

export function matchesFilter(filter: CompiledFilter | null, r: ReceivedMessage, view: MessageView): boolean {
  if (!filter) return true;
  const m = r.message ?? {};
  const body = m.data ? Buffer.from(m.data as Uint8Array) : Buffer.alloc(0);
  return filter.all({
    body,
    text: view.bodyEncoding === 'utf8' && !body.includes(0),
    properties: () => view.properties,
    headers: () => view.properties.headers,
    key: m.orderingKey ?? null,
    time: view.enqueuedAt,
  });
}

/** Pub/Sub takes at most 1,000 messages and 10 MB per publish request; a little is left for the request's own framing. */
export const PUBLISH_MAX_MESSAGES = 1_000;
export const PUBLISH_MAX_BYTES = 9 * 1024 * 1024;

/** A message's size as a publish request counts it, near enough: data, attributes and ordering key. */
export function publishSize(m: PubsubMessage): number {
  let n = (m.data as Uint8Array | undefined)?.length ?? 0;
  for (const [k, v] of Object.entries(m.attributes ?? {})) n += Buffer.byteLength(k) + Buffer.byteLength(v) + 8;
  return n + Buffer.byteLength(m.orderingKey ?? '') + 16;
}

/** Messages cut into publish requests within Pub/Sub's limits, in order. */
export function publishBatches<T>(items: T[], message: (item: T) => PubsubMessage): T[][] {
  const out: T[][] = [];
  let batch: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = publishSize(message(item));
    if (batch.length > 0 && (batch.length >= PUBLISH_MAX_MESSAGES || bytes + size > PUBLISH_MAX_BYTES)) {
      out.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(item);
    bytes += size;
  }
  if (batch.length > 0) out.push(batch);
  return out;
}
