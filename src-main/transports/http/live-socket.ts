/**
 * The wire protocol over one WebSocket: a core session whose frames go out as
 * JSON text, with two rules that keep many watchers cheap.
 *
 * Shared encoding. The stats sampler hands every subscriber the same sample
 * object, so its JSON is made once per sample, not once per socket, and a large
 * one (5,000 queues is about 900 kB) is also compressed once: it goes out as a
 * binary frame that every socket sends from the same buffer (layout in
 * contract/wire.ts). permessage-deflate stays on for large call results, which
 * are one-off.
 *
 * Back-pressure. A live sample that a socket has not finished writing is not
 * followed by another: the new one is dropped, since the next supersedes it. A
 * socket whose outgoing buffer grows past MAX_BUFFERED_BYTES all the same (a
 * client that stopped reading) is closed with 1013 "try again later"; the
 * client reconnects and subscribes anew.
 */
import { deflateRawSync } from 'node:zlib';
import type { WebSocket } from 'ws';
import type { CoreFrame } from '../../contract/wire.js';
import type { Core } from '../../core/core.js';
import { openSession, type EventInfo } from '../../core/session.js';

/** Events whose JSON is at least this long travel compressed, as a binary frame. */
export const SHARED_COMPRESS_BYTES = 64 * 1024;
/** Bytes a socket may have queued before it is closed as a client that is not reading. */
export const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

type Encoded = { text: string } | { deflated: Buffer };

const encodings = new WeakMap<object, Encoded>();

/** The event's payload, encoded once however many sockets send it. */
function encodeShared(data: object): Encoded {
  let encoded = encodings.get(data);
  if (!encoded) {
    const text = JSON.stringify(data);
    encoded = text.length >= SHARED_COMPRESS_BYTES ? { deflated: deflateRawSync(text, { level: 1 }) } : { text };
    encodings.set(data, encoded);
  }
  return encoded;
}

/** Streams whose next event replaces the previous one: a backed-up socket may skip one. */
const SUPERSEDED: ReadonlySet<string> = new Set(['stats']);

export function attachLiveSocket(core: Core, ws: WebSocket): void {
  /** Subscription ids with a live sample still being written. */
  const writing = new Set<number>();

  const send = (frame: CoreFrame, info?: EventInfo) => {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      ws.close(1013, 'the client is not reading its messages');
      return;
    }
    if (frame.t !== 'event' || frame.data === null || typeof frame.data !== 'object') {
      ws.send(JSON.stringify(frame));
      return;
    }
    const supersedable = info !== undefined && SUPERSEDED.has(info.stream);
    if (supersedable && writing.has(frame.id)) return;
    const encoded = encodeShared(frame.data);
    const done = supersedable ? (writing.add(frame.id), () => writing.delete(frame.id)) : undefined;
    if ('text' in encoded || frame.id < 0 || frame.id > 0xffffffff) {
      // Ids outside 32 bits (the protocol allows any safe integer) cannot use the binary layout.
      const text = 'text' in encoded ? encoded.text : JSON.stringify(frame.data);
      ws.send(`{"t":"event","id":${frame.id},"data":${text}}`, done);
      return;
    }
    // Two fragments of one message: the 4-byte id, then the shared compressed payload.
    const id = Buffer.allocUnsafe(4);
    id.writeUInt32BE(frame.id);
    ws.send(id, { binary: true, fin: false, compress: false });
    ws.send(encoded.deflated, { binary: true, fin: true, compress: false }, done);
  };

  const session = openSession(core, send);
  ws.on('message', (data, isBinary) => {
    if (isBinary) return session.receive(null);
    let frame: unknown;
    try {
      frame = JSON.parse(data.toString());
    } catch {
      frame = null;
    }
    session.receive(frame);
  });
  ws.on('close', () => session.close());
  ws.on('error', () => session.close());
}
