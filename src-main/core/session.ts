/**
 * One client's conversation with the core over a message channel (a
 * MessagePort in the desktop app, a WebSocket in headless mode). It answers
 * calls, keeps the client's subscriptions, and drops them all when the channel
 * closes. Frames that do not parse are answered with an error, never trusted.
 */
import { ApiError, isErrorCode } from '../contract/errors.js';
import { isStorageFailure } from '../storage/index.js';
import type { ClientFrame, CoreFrame } from '../contract/wire.js';
import type { StreamName } from '../contract/events.js';
import type { Unsubscribe } from '../connectors/connector.js';
import type { Core } from './core.js';

/** Subscriptions one client may hold at once; the renderer needs a handful. */
export const MAX_SUBSCRIPTIONS = 64;

/** What the transport is told with an event: the stream it belongs to. */
export interface EventInfo {
  stream: StreamName;
}

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
  // Errors of lower layers that carry one of the contract's codes (the broker's own errors).
  if (isErrorCode(code) && code !== 'INTERNAL' && code !== 'UNAUTHORIZED') {
    return new ApiError(code, message, (error as { field?: string }).field);
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

/**
 * `send` gets each frame, and for events the stream they belong to, so that a
 * transport may drop a live sample that the next one supersedes.
 */
export function openSession(core: Core, send: (frame: CoreFrame, info?: EventInfo) => void): Session {
  const subscriptions = new Map<number, Unsubscribe>();
  let open = true;
  const reply = (frame: CoreFrame, info?: EventInfo) => {
    if (open) send(frame, info);
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
            subscriptions.delete(frame.id);
            if (subscriptions.size >= MAX_SUBSCRIPTIONS) {
              throw new ApiError('TOO_LARGE', `a client may hold at most ${MAX_SUBSCRIPTIONS} subscriptions at once; unsubscribe from one first`, 'id');
            }
            const info: EventInfo = { stream: frame.stream as StreamName };
            subscriptions.set(
              frame.id,
              core.subscribeUnchecked(frame.stream, frame.params, (data) => reply({ t: 'event', id: frame.id, data }, info)),
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
