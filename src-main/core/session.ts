/**
 * One client's conversation with the core over a message channel (a
 * MessagePort in the desktop app, a WebSocket in headless mode). It answers
 * calls, keeps the client's subscriptions, and drops them all when the channel
 * closes. Frames that do not parse are answered with an error, never trusted.
 */
import { ApiError } from '../contract/errors.js';
import { isStorageFailure } from '../storage/index.js';
import type { ClientFrame, CoreFrame } from '../contract/wire.js';
import type { Unsubscribe } from '../connectors/connector.js';
import type { Core } from './core.js';

export interface Session {
  receive(frame: unknown): void;
  close(): void;
}

function toError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  // The app's own database (templates, history, saved connections) on a full or unwritable disk.
  if (isStorageFailure(error)) return new ApiError('UNAVAILABLE', `Brokerdeck could not write its data (${String(code)}: ${message}); nothing was changed`);
  if (typeof code === 'string' && ['NOT_FOUND', 'PRECONDITION_FAILED', 'INVALID_ARGUMENT', 'TOO_LARGE', 'CONFLICT', 'RESOURCE_LOCKED', 'FORBIDDEN', 'UNAVAILABLE'].includes(code)) {
    return new ApiError(code as ApiError['code'], message, (error as { field?: string }).field);
  }
  return new ApiError('INTERNAL', message);
}

export function errorBody(error: unknown) {
  return toError(error).toBody();
}

export function toApiError(error: unknown): ApiError {
  return toError(error);
}

function isFrame(value: unknown): value is ClientFrame {
  if (typeof value !== 'object' || value === null) return false;
  const f = value as Record<string, unknown>;
  if (typeof f.id !== 'number' || !Number.isSafeInteger(f.id)) return false;
  if (f.t === 'call') return typeof f.op === 'string';
  if (f.t === 'sub') return typeof f.stream === 'string';
  return f.t === 'unsub';
}

export function openSession(core: Core, send: (frame: CoreFrame) => void): Session {
  const subscriptions = new Map<number, Unsubscribe>();
  let open = true;
  const reply = (frame: CoreFrame) => {
    if (open) send(frame);
  };

  return {
    receive(raw) {
      if (!open) return;
      if (!isFrame(raw)) {
        reply({ t: 'result', id: -1, ok: false, error: { code: 'INVALID_ARGUMENT', message: 'malformed frame: expected { t, id, ... }' } });
        return;
      }
      const frame = raw;
      switch (frame.t) {
        case 'call':
          core.callUnchecked(frame.op, frame.input).then(
            (value) => reply({ t: 'result', id: frame.id, ok: true, value }),
            (error: unknown) => reply({ t: 'result', id: frame.id, ok: false, error: errorBody(error).error }),
          );
          break;
        case 'sub':
          try {
            subscriptions.get(frame.id)?.();
            subscriptions.set(
              frame.id,
              core.subscribeUnchecked(frame.stream, frame.params, (data) => reply({ t: 'event', id: frame.id, data })),
            );
            reply({ t: 'result', id: frame.id, ok: true, value: null });
          } catch (error) {
            reply({ t: 'result', id: frame.id, ok: false, error: errorBody(error).error });
          }
          break;
        case 'unsub':
          subscriptions.get(frame.id)?.();
          subscriptions.delete(frame.id);
          break;
      }
    },
    close() {
      open = false;
      for (const off of subscriptions.values()) off();
      subscriptions.clear();
    },
  };
}
