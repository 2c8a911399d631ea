/**
 * AMQP 0-9-1 frames. After the 8-byte protocol header every frame is
 *
 *   0      1         3             7                  7+size   8+size
 *   +------+---------+-------------+------------------+--------+
 *   | type | channel |    size     |     payload      |  0xCE  |
 *   +------+---------+-------------+------------------+--------+
 *    octet   short       long         size octets       octet
 *
 * type 1 method (class id, method id, arguments), 2 content header (class id,
 * weight, body size, property flags, properties), 3 body, 8 heartbeat.
 *
 * The parser takes bytes as they come off the socket, split anywhere, and
 * hands out whole frames. A frame larger than the negotiated frame_max, one
 * that does not end in 0xCE, or of an unknown type is a FRAME_ERROR (501);
 * the connection closes with it, as RabbitMQ does.
 */
import { encodeBasicProperties, encodeMethod, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD, type BasicProperties, type MethodInput, type MethodName } from './generated/spec.js';
import { WireError, Writer } from './wire.js';

export interface Frame {
  type: number;
  channel: number;
  payload: Buffer;
}

export const PROTOCOL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);

/** Frame header (7) and end octet (1). */
export const FRAME_OVERHEAD = 8;

const EMPTY = Buffer.alloc(0);

export class FrameParser {
  /** Bytes received; those before `pos` were handed out already (kept by offset, not cut off, so a frame costs no extra Buffer). */
  private buf: Buffer = EMPTY;
  private pos = 0;
  /** Largest whole frame accepted (header and end octet included); changed by tune-ok. */
  frameMax: number;

  constructor(frameMax: number) {
    this.frameMax = frameMax;
  }

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return this.buf.length - this.pos;
  }

  push(chunk: Buffer): void {
    if (this.pos >= this.buf.length) this.buf = chunk;
    else this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
    this.pos = 0;
  }

  /** The next whole frame, or null until more bytes arrive; throws WireError 501 for a malformed one. */
  next(): Frame | null {
    const b = this.buf;
    const at = this.pos;
    const held = b.length - at;
    if (held < 7) return null;
    const type = b[at]!;
    if (type !== FRAME_METHOD && type !== FRAME_HEADER && type !== FRAME_BODY && type !== FRAME_HEARTBEAT) {
      throw new WireError(501, `FRAME_ERROR - unknown frame type ${type}`);
    }
    const channel = b.readUInt16BE(at + 1);
    const size = b.readUInt32BE(at + 3);
    if (size + FRAME_OVERHEAD > this.frameMax) {
      throw new WireError(501, `FRAME_ERROR - frame of ${size + FRAME_OVERHEAD} bytes is larger than the negotiated frame_max of ${this.frameMax}`);
    }
    if (held < size + FRAME_OVERHEAD) return null;
    const end = at + 7 + size;
    if (b[end] !== FRAME_END) throw new WireError(501, `FRAME_ERROR - frame does not end with 0xCE (found 0x${b[end]!.toString(16)})`);
    const payload = b.subarray(at + 7, end);
    this.pos = end + 1;
    if (this.pos === b.length) {
      this.buf = EMPTY;
      this.pos = 0;
    }
    return { type, channel, payload };
  }
}

/** Writes frames into one growing buffer, flushed as one socket write. */
export class FrameWriter {
  readonly w = new Writer(16384);

  get length(): number {
    return this.w.pos;
  }

  take(): Buffer {
    const out = this.w.take();
    this.w.reset();
    return out;
  }

  private begin(type: number, channel: number): number {
    const w = this.w;
    w.octet(type);
    w.short(channel);
    const at = w.pos;
    w.long(0);
    return at;
  }

  private finish(at: number): void {
    const w = this.w;
    w.buf.writeUInt32BE(w.pos - at - 4, at);
    w.octet(FRAME_END);
  }

  method<N extends MethodName>(channel: number, name: N, args: MethodInput<N>): void {
    const at = this.begin(FRAME_METHOD, channel);
    encodeMethod(this.w, name, args);
    this.finish(at);
  }

  /** The content header and body frames of a message, the body cut to fit frame_max. */
  content(channel: number, properties: BasicProperties, body: Buffer, frameMax: number): void {
    const at = this.begin(FRAME_HEADER, channel);
    this.w.short(60);
    this.w.short(0);
    this.w.longlong(body.length);
    encodeBasicProperties(this.w, properties);
    this.finish(at);
    const max = frameMax - FRAME_OVERHEAD;
    if (body.length <= max) {
      // One body frame (the common case): no slice of the body.
      if (body.length === 0) return;
      const b = this.begin(FRAME_BODY, channel);
      this.w.raw(body);
      this.finish(b);
      return;
    }
    for (let off = 0; off < body.length; off += max) {
      const part = body.subarray(off, Math.min(body.length, off + max));
      const b = this.begin(FRAME_BODY, channel);
      this.w.raw(part);
      this.finish(b);
    }
  }

  heartbeat(): void {
    const at = this.begin(FRAME_HEARTBEAT, 0);
    this.finish(at);
  }
}
