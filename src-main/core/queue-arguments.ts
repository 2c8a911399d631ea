/**
 * The queue arguments RabbitMQ knows, checked by name and type before a
 * declare reaches any broker, so a mistake is refused naming the argument
 * (`arguments.x-max-length`) instead of as a channel error. Arguments not
 * listed here are passed on as they are (custom arguments, plugins').
 * Names and ranges follow RabbitMQ's queue argument documentation.
 */
import { ApiError } from '../contract/errors.js';

const MAX_U32 = 2 ** 32 - 1;

type Check = (v: unknown) => string | null;

const int =
  (min: number, max = Number.MAX_SAFE_INTEGER): Check =>
  (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
      ? null
      : `must be an integer from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ' up'}`;
const oneOf =
  (...values: string[]): Check =>
  (v) =>
    typeof v === 'string' && values.includes(v) ? null : `must be ${values.map((x) => `"${x}"`).join(', ')}`;
const bool: Check = (v) => (typeof v === 'boolean' ? null : 'must be true or false');
const text =
  (maxBytes = 255): Check =>
  (v) =>
    typeof v === 'string' && Buffer.byteLength(v, 'utf8') <= maxBytes ? null : `must be a string of at most ${maxBytes} bytes`;

/** RabbitMQ's stream retention: a number and a unit (Y, M, D, h, m, s), e.g. "7D". */
const age: Check = (v) => (typeof v === 'string' && /^\d+(Y|M|D|h|m|s)$/.test(v) ? null : 'must be a number and a unit (Y, M, D, h, m or s), e.g. "7D"');

const retryDelays: Check = (v) =>
  Array.isArray(v) && v.length > 0 && v.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0 && d <= MAX_U32)
    ? null
    : 'must be a non-empty list of non-negative integers (milliseconds)';

export const QUEUE_ARGUMENTS: Readonly<Record<string, Check>> = Object.freeze({
  'x-queue-type': oneOf('classic', 'quorum', 'stream'),
  'x-message-ttl': int(0, MAX_U32),
  'x-expires': int(1, MAX_U32),
  'x-max-length': int(0),
  'x-max-length-bytes': int(0),
  'x-overflow': oneOf('drop-head', 'reject-publish', 'reject-publish-dlx'),
  'x-dead-letter-exchange': text(),
  'x-dead-letter-routing-key': text(),
  'x-dead-letter-strategy': oneOf('at-most-once', 'at-least-once'),
  'x-max-priority': int(0, 255),
  'x-delivery-limit': int(-1),
  'x-single-active-consumer': bool,
  'x-queue-mode': oneOf('default', 'lazy'),
  'x-queue-leader-locator': oneOf('client-local', 'balanced'),
  'x-queue-master-locator': oneOf('client-local', 'balanced', 'min-masters', 'random'),
  'x-initial-cluster-size': int(1),
  'x-quorum-initial-group-size': int(1),
  'x-max-age': age,
  'x-stream-max-segment-size-bytes': int(1),
  'x-stream-filter-size-bytes': int(16, 255),
  // The embedded broker's retry queue: each delay in turn before a rejected message is delivered again.
  'x-retry-delays': retryDelays,
});

function refuse(field: string, problem: string, value: unknown): never {
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  throw new ApiError('INVALID_ARGUMENT', `${field} ${problem}, got ${shown.length > 80 ? `${shown.slice(0, 77)}...` : shown}`, field);
}

/** Checks a declare's arguments; `type` is the declare's own `type` field, which must agree with `x-queue-type`. */
export function checkQueueArguments(args: Record<string, unknown>, type?: string): void {
  for (const [name, value] of Object.entries(args)) {
    const check = Object.hasOwn(QUEUE_ARGUMENTS, name) ? QUEUE_ARGUMENTS[name] : undefined;
    if (!check) continue;
    const problem = check(value);
    if (problem) refuse(`arguments.${name}`, problem, value);
  }
  const declared = args['x-queue-type'];
  if (type !== undefined && declared !== undefined && declared !== type) {
    refuse('type', `is "${type}" but arguments.x-queue-type is "${String(declared)}": give one of them`, type);
  }
  if (args['x-dead-letter-routing-key'] !== undefined && args['x-dead-letter-exchange'] === undefined) {
    refuse('arguments.x-dead-letter-routing-key', 'needs x-dead-letter-exchange as well', args['x-dead-letter-routing-key']);
  }
}
