/**
 * Queue and exchange argument parsing. Known `x-` arguments are checked for
 * type and range (INVALID_ARGUMENT naming `arguments.<name>`); unknown ones
 * are kept and returned as given, as RabbitMQ does.
 */
import { BrokerError, invalid, shown } from './errors.js';
import type { FieldTable } from './types.js';

export type Overflow = 'drop-head' | 'reject-publish' | 'reject-publish-dlx';

export interface QueueArgs {
  messageTtl?: number;
  expires?: number;
  maxLength?: number;
  maxLengthBytes?: number;
  overflow: Overflow;
  dlx?: string;
  dlrk?: string;
  maxPriority?: number;
  deliveryLimit?: number;
  singleActiveConsumer: boolean;
  retryDelays?: number[];
  dedup: boolean;
  cacheTtl?: number;
  cacheSize?: number;
  dedupHeader?: string;
}

/**
 * Arguments compared when a queue is redeclared. RabbitMQ compares only the
 * arguments it knows; a difference in any of them is PRECONDITION_FAILED.
 */
export const EQUIVALENCE_ARGS = [
  'x-message-ttl',
  'x-expires',
  'x-max-length',
  'x-max-length-bytes',
  'x-overflow',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-max-priority',
  'x-delivery-limit',
  'x-single-active-consumer',
  'x-queue-type',
  'x-retry-delays',
  'x-message-deduplication',
  'x-cache-ttl',
  'x-cache-size',
  'x-deduplication-header',
] as const;

const MAX_U32 = 2 ** 32 - 1;

function intArg(args: FieldTable, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = args[name];
  if (v === undefined) return undefined;
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    const what = min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer ≥ ${min}`;
    throw invalid(`arguments.${name}`, `expected ${what}${max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ''}, got ${shown(v)}`);
  }
  return n;
}

function stringArg(args: FieldTable, name: string): string | undefined {
  const v = args[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalid(`arguments.${name}`, `expected a string, got ${shown(v)}`);
  return v;
}

function boolArg(args: FieldTable, name: string): boolean | undefined {
  const v = args[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw invalid(`arguments.${name}`, `expected true or false, got ${shown(v)}`);
  return v;
}

export function checkTable(value: unknown, field: string): FieldTable {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Buffer.isBuffer(value)) {
    throw invalid(field, `expected an object, got ${shown(value)}`);
  }
  return value as FieldTable;
}

export function parseQueueArgs(args: FieldTable): QueueArgs {
  const overflowRaw = stringArg(args, 'x-overflow');
  if (overflowRaw !== undefined && overflowRaw !== 'drop-head' && overflowRaw !== 'reject-publish' && overflowRaw !== 'reject-publish-dlx') {
    throw invalid('arguments.x-overflow', `expected "drop-head", "reject-publish" or "reject-publish-dlx", got ${shown(overflowRaw)}`);
  }
  const dlx = stringArg(args, 'x-dead-letter-exchange');
  const dlrk = stringArg(args, 'x-dead-letter-routing-key');
  if (dlrk !== undefined && dlx === undefined) {
    throw invalid('arguments.x-dead-letter-routing-key', 'needs x-dead-letter-exchange to be set as well');
  }
  let retryDelays: number[] | undefined;
  const rd = args['x-retry-delays'];
  if (rd !== undefined) {
    if (!Array.isArray(rd) || rd.length === 0 || rd.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > MAX_U32)) {
      throw invalid('arguments.x-retry-delays', `expected a non-empty list of non-negative integers (ms), got ${shown(rd)}`);
    }
    retryDelays = rd as number[];
  }
  const queueType = args['x-queue-type'];
  if (queueType !== undefined && queueType !== 'classic' && queueType !== 'quorum') {
    throw invalid('arguments.x-queue-type', `expected "classic" or "quorum" (streams are topics here), got ${shown(queueType)}`);
  }
  const parsed: QueueArgs = {
    overflow: (overflowRaw as Overflow | undefined) ?? 'drop-head',
    singleActiveConsumer: boolArg(args, 'x-single-active-consumer') ?? false,
    dedup: boolArg(args, 'x-message-deduplication') ?? false,
  };
  const set = <K extends keyof QueueArgs>(k: K, v: QueueArgs[K] | undefined): void => {
    if (v !== undefined) parsed[k] = v;
  };
  set('messageTtl', intArg(args, 'x-message-ttl', 0, MAX_U32));
  set('expires', intArg(args, 'x-expires', 1, MAX_U32));
  set('maxLength', intArg(args, 'x-max-length', 0));
  set('maxLengthBytes', intArg(args, 'x-max-length-bytes', 0));
  set('dlx', dlx);
  set('dlrk', dlrk);
  set('maxPriority', intArg(args, 'x-max-priority', 0, 255));
  set('deliveryLimit', intArg(args, 'x-delivery-limit', 0));
  set('retryDelays', retryDelays);
  set('cacheTtl', intArg(args, 'x-cache-ttl', 0));
  set('cacheSize', intArg(args, 'x-cache-size', 1));
  set('dedupHeader', stringArg(args, 'x-deduplication-header'));
  return parsed;
}

export function parseExchangeArgs(args: FieldTable): { alternateExchange?: string } {
  const ae = args['alternate-exchange'];
  if (ae === undefined) return {};
  if (typeof ae !== 'string') throw invalid('arguments.alternate-exchange', `expected an exchange name (string), got ${shown(ae)}`);
  return { alternateExchange: ae };
}

export function inequivalent(what: string, name: string, field: string, received: unknown, current: unknown): BrokerError {
  return new BrokerError(
    'PRECONDITION_FAILED',
    `inequivalent arg '${field}' for ${what} '${name}': received ${shown(received)} but current is ${shown(current)}`,
    field,
  );
}
