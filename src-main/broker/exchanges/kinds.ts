/** The exchange types, one module each. */
import type { ExchangeKind } from '../context.js';
import type { ExchangeType } from '../types.js';
import { direct } from './direct.js';
import { fanout } from './fanout.js';
import { headers } from './headers.js';
import { topic } from './topic.js';

const KINDS: Record<ExchangeType, ExchangeKind> = { direct, fanout, topic, headers };

export function exchangeKind(type: ExchangeType): ExchangeKind {
  return KINDS[type];
}
