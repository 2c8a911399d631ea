/**
 * Basic properties between the wire and the engine. The engine keeps
 * MessageProperties (its API's shape); the wire has BasicProperties (the
 * generated codec's). They differ in three places, handled here as RabbitMQ
 * handles them: a delivery mode other than 1 or 2 is kept by RabbitMQ but
 * means "not persistent", so it is dropped; the deprecated cluster-id is
 * dropped; and x-death's `time`, which the engine keeps in seconds, goes out
 * as an AMQP timestamp, as RabbitMQ writes it.
 */
import type { MessageProperties } from '../../broker/types.js';
import type { BasicProperties } from './generated/spec.js';
import { preconditionFailed } from './errors.js';

export function fromWire(p: BasicProperties, user: string): MessageProperties {
  const out: MessageProperties = {};
  if (p.contentType !== undefined) out.contentType = p.contentType;
  if (p.contentEncoding !== undefined) out.contentEncoding = p.contentEncoding;
  if (p.headers !== undefined) out.headers = p.headers;
  if (p.deliveryMode === 1 || p.deliveryMode === 2) out.deliveryMode = p.deliveryMode;
  if (p.priority !== undefined) out.priority = p.priority;
  if (p.correlationId !== undefined) out.correlationId = p.correlationId;
  if (p.replyTo !== undefined) out.replyTo = p.replyTo;
  if (p.expiration !== undefined) {
    // RabbitMQ refuses an expiration that is not a non-negative integer of milliseconds.
    if (!/^\d{1,10}$/.test(p.expiration) || Number(p.expiration) > 2 ** 32 - 1) throw preconditionFailed(`invalid expiration '${p.expiration}' for message`);
    out.expiration = p.expiration;
  }
  if (p.messageId !== undefined) out.messageId = p.messageId;
  if (p.timestamp !== undefined) out.timestamp = p.timestamp;
  if (p.type !== undefined) out.type = p.type;
  if (p.userId !== undefined) {
    // RabbitMQ's validated user-id: a message cannot claim to come from someone else.
    if (p.userId !== user) throw preconditionFailed(`user_id property set to '${p.userId}' but authenticated user was '${user}'`);
    out.userId = p.userId;
  }
  if (p.appId !== undefined) out.appId = p.appId;
  return out;
}

export function toWire(p: MessageProperties): BasicProperties {
  // Nothing to convert (the common case): written as they are, with no copy
  // per delivery; the encoder reads only the basic properties' own fields.
  const h = p.headers;
  if ((h === undefined || !Array.isArray(h['x-death'])) && (p.timestamp === undefined || typeof p.timestamp === 'number') && (p as BasicProperties).clusterId === undefined) {
    return p as BasicProperties;
  }
  const out: BasicProperties = {};
  if (p.contentType !== undefined) out.contentType = p.contentType;
  if (p.contentEncoding !== undefined) out.contentEncoding = p.contentEncoding;
  if (p.headers !== undefined) out.headers = wireHeaders(p.headers);
  if (p.deliveryMode !== undefined) out.deliveryMode = p.deliveryMode;
  if (p.priority !== undefined) out.priority = p.priority;
  if (p.correlationId !== undefined) out.correlationId = p.correlationId;
  if (p.replyTo !== undefined) out.replyTo = p.replyTo;
  if (p.expiration !== undefined) out.expiration = p.expiration;
  if (p.messageId !== undefined) out.messageId = p.messageId;
  if (typeof p.timestamp === 'number') out.timestamp = p.timestamp;
  if (p.type !== undefined) out.type = p.type;
  if (p.userId !== undefined) out.userId = p.userId;
  if (p.appId !== undefined) out.appId = p.appId;
  return out;
}

function wireHeaders(h: Record<string, unknown>): Record<string, unknown> {
  const deaths = h['x-death'];
  if (!Array.isArray(deaths)) return h;
  return {
    ...h,
    'x-death': deaths.map((d) => (d && typeof d === 'object' && typeof (d as { time?: unknown }).time === 'number' ? { ...d, time: new Date((d as { time: number }).time * 1000) } : d)),
  };
}
