/**
 * AMQP 0-9-1 carries queue, exchange and routing-key names as short strings:
 * at most 255 bytes of UTF-8, whatever their length in characters. amqplib
 * refuses a longer one only with "Field 'queue' is the wrong type", so every
 * name is checked here first and refused naming the field, the limit and the
 * name's own size.
 */
import { ApiError } from '../../contract/errors.js';

export const SHORTSTR_MAX_BYTES = 255;

export function checkShortstr(value: string | undefined, field: string): void {
  if (value === undefined) return;
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > SHORTSTR_MAX_BYTES) {
    throw new ApiError(
      'INVALID_ARGUMENT',
      `${field} must be at most ${SHORTSTR_MAX_BYTES} bytes of UTF-8 (RabbitMQ's limit for names); this one is ${bytes} bytes (${[...value].length} characters)`,
      field,
    );
  }
}
