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
 *
 * Over the WebSocket, an event whose JSON is 64 KiB or more (a live sample of
 * thousands of queues) is sent once compressed for every subscriber, as a
 * binary message instead of a text one:
 *
 *   0        4                                   end
 *   +--------+-----------------------------------+
 *   | id u32 | deflate-raw (RFC 1951) of the     |
 *   |  (BE)  | UTF-8 JSON of `data`              |
 *   +--------+-----------------------------------+
 *
 * and stands for `{ t: 'event', id, data }`. Clients send text frames only.
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
