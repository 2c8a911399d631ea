/**
 * Size limits of the embedded broker, checked before anything is stored.
 *
 * - A message body may be at most 128 MiB (134,217,728 bytes), RabbitMQ's
 *   default `max_message_size`; a larger one is refused as RabbitMQ refuses it
 *   ("message size N is larger than configured max size M"), here as
 *   TOO_LARGE. The same applies to a topic record's key and value together.
 * - One call that publishes many copies (`count`, with placeholders) or
 *   produces many records may store at most 256 MiB of bodies in total
 *   (count × body size), so a single request cannot fill the disk.
 */
import { BrokerError } from './errors.js';

/** RabbitMQ's default `max_message_size`: 128 MiB. */
export const MAX_MESSAGE_BYTES = 134_217_728;
/** Body bytes one call may store in total (count × size): 256 MiB. */
export const MAX_CALL_BYTES = 268_435_456;

/** Bytes in binary units, as the limits are stated: "128 MiB". */
export function mib(bytes: number): string {
  const n = bytes / 1_048_576;
  return Number.isInteger(n) ? `${n} MiB` : bytes >= 1_048_576 ? `${n.toFixed(1)} MiB` : `${bytes} bytes`;
}

/** Refuses a message larger than the limit (a message of exactly the limit is accepted, as RabbitMQ does). */
export function checkMessageSize(size: number, limit: number, field = 'body'): void {
  if (size > limit) {
    throw new BrokerError('TOO_LARGE', `${field}: message size ${size} is larger than configured max size ${limit} (${mib(limit)}, as RabbitMQ's max_message_size)`, field);
  }
}

/** Refuses a call whose copies would store more than `limit` bytes of bodies in total. */
export function checkCallSize(count: number, perCopy: number, limit: number, what = 'copies'): void {
  const total = count * perCopy;
  if (total > limit) {
    throw new BrokerError(
      'TOO_LARGE',
      `count: ${count} ${what} of ${perCopy} bytes make ${total} bytes; one call stores at most ${limit} bytes (${mib(limit)}): send fewer per call`,
      'count',
    );
  }
}
