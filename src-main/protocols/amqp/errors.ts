/**
 * AMQP exceptions as RabbitMQ raises them: a soft error closes the channel
 * (channel.close), a hard one the connection (connection.close); the reply
 * text starts with the code's name (`NOT_FOUND - no queue 'q' in vhost '/'`),
 * which is what clients show their users.
 */
import { BrokerError } from '../../broker/errors.js';
import { REPLY_CODES } from './generated/spec.js';

export class AmqpError extends Error {
  constructor(
    readonly code: number,
    /** Without the code's name; `text` adds it. */
    readonly detail: string,
    readonly classId = 0,
    readonly methodId = 0,
  ) {
    super(detail);
    this.name = 'AmqpError';
  }

  get hard(): boolean {
    return REPLY_CODES[this.code]?.hard ?? true;
  }

  /** The reply text: RabbitMQ's `NAME - detail`, cut to a short string. */
  get text(): string {
    const name = REPLY_CODES[this.code]?.name ?? 'INTERNAL_ERROR';
    const t = `${name} - ${this.detail}`;
    return Buffer.byteLength(t) <= 255 ? t : Buffer.from(t).subarray(0, 252).toString('utf8').replace(/\uFFFD$/, '') + '...';
  }

  at(classId: number, methodId: number): AmqpError {
    return this.classId || this.methodId ? this : new AmqpError(this.code, this.detail, classId, methodId);
  }
}

export const notFound = (detail: string) => new AmqpError(404, detail);
export const accessRefused = (detail: string) => new AmqpError(403, detail);
export const preconditionFailed = (detail: string) => new AmqpError(406, detail);
export const resourceLocked = (detail: string) => new AmqpError(405, detail);
export const notAllowed = (detail: string) => new AmqpError(530, detail);
export const commandInvalid = (detail: string) => new AmqpError(503, detail);
export const channelError = (detail: string) => new AmqpError(504, detail);
export const unexpectedFrame = (detail: string) => new AmqpError(505, detail);
export const notImplemented = (detail: string) => new AmqpError(540, detail);
export const internalError = (detail: string) => new AmqpError(541, detail);

const MISSING = /^(queue|exchange) "(.*)" does not exist$/s;

/** The AMQP exception for an engine error, in RabbitMQ's words where the engine's have a RabbitMQ equivalent. */
export function fromBrokerError(err: unknown, vhost: string): AmqpError {
  if (err instanceof AmqpError) return err;
  if (!(err instanceof BrokerError)) return internalError((err as Error)?.message ?? String(err));
  switch (err.code) {
    case 'NOT_FOUND': {
      const m = MISSING.exec(err.message);
      return notFound(m ? `no ${m[1]} '${m[2]}' in vhost '${vhost}'` : err.message);
    }
    case 'RESOURCE_LOCKED': {
      const m = /^queue "(.*)" is exclusive/s.exec(err.message);
      return resourceLocked(
        m
          ? `cannot obtain exclusive access to locked queue '${m[1]}' in vhost '${vhost}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`
          : err.message,
      );
    }
    case 'CONFLICT':
      return notAllowed(err.message);
    case 'UNAVAILABLE':
      return internalError(err.message);
    case 'PRECONDITION_FAILED': {
      // The engine names the equivalence field in its API's spelling; RabbitMQ names the AMQP argument.
      const m = /^inequivalent arg '(?:arguments\.)?(.*?)' for (queue|exchange) '(.*)': received (.*) but current is (.*)$/s.exec(err.message);
      if (m) {
        const field = m[1] === 'autoDelete' ? 'auto_delete' : m[1]!;
        return preconditionFailed(`inequivalent arg '${field}' for ${m[2]} '${m[3]}' in vhost '${vhost}': received ${quote(m[4]!)} but current is ${quote(m[5]!)}`);
      }
      return preconditionFailed(err.message);
    }
    default:
      return preconditionFailed(err.message);
  }
}

function quote(shown: string): string {
  if (shown === 'nothing') return 'none';
  return `'${shown.replace(/^"(.*)"$/s, '$1')}'`;
}
