/**
 * The message protocol spoken over a MessagePort (desktop) and a WebSocket
 * (headless mode). Both carry the same frames, so the renderer's client and the
 * core's session code are shared by the two transports.
 *
 *   client → core   { t: 'call', id, op, input }
 *                   { t: 'sub', id, stream, params }
 *                   { t: 'unsub', id }
 *   core → client   { t: 'result', id, ok: true, value } | { t: 'result', id, ok: false, error }
 *                   { t: 'event', id, data }
 */
import type { ApiErrorBody } from './errors.js';

export type ClientFrame =
  | { t: 'call'; id: number; op: string; input: unknown }
  | { t: 'sub'; id: number; stream: string; params: unknown }
  | { t: 'unsub'; id: number };

export type CoreFrame =
  | { t: 'result'; id: number; ok: true; value: unknown }
  | { t: 'result'; id: number; ok: false; error: ApiErrorBody['error'] }
  | { t: 'event'; id: number; data: unknown };
