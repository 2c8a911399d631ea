/**
 * The one error type the engine throws for caller mistakes and refused
 * operations. `code` maps onto the transports' error codes (and RabbitMQ's
 * reply codes: PRECONDITION_FAILED is 406, RESOURCE_LOCKED 405, NOT_FOUND
 * 404; UNAVAILABLE means the store could not be written); `field` names the input at fault so a UI can point at it.
 */
import type { ErrorCode } from '../contract/errors.js';

/** The contract's codes the engine uses (the contract is their one definition). */
export type BrokerErrorCode = Extract<ErrorCode, 'NOT_FOUND' | 'PRECONDITION_FAILED' | 'INVALID_ARGUMENT' | 'TOO_LARGE' | 'CONFLICT' | 'RESOURCE_LOCKED' | 'UNAVAILABLE'>;

export class BrokerError extends Error {
  readonly code: BrokerErrorCode;
  readonly field: string | undefined;

  constructor(code: BrokerErrorCode, message: string, field?: string) {
    super(message);
    this.name = 'BrokerError';
    this.code = code;
    this.field = field;
  }
}

/** Renders a value for an error message: strings quoted, the rest as JSON. */
export function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Buffer.isBuffer(value)) return `<${value.length} bytes>`;
  try {
    const s = JSON.stringify(value);
    return s === undefined ? String(value) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(value);
  }
}

export function invalid(field: string, problem: string): BrokerError {
  return new BrokerError('INVALID_ARGUMENT', `${field}: ${problem}`, field);
}

export function notFound(what: string, name: string, field?: string): BrokerError {
  return new BrokerError('NOT_FOUND', `${what} ${JSON.stringify(name)} does not exist`, field);
}
