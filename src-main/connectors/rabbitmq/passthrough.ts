/**
 * A re-drive's pass-through of messages as bytes. When a re-drive neither
 * filters, selects nor edits, each message goes back out with the content
 * header it came with (properties and headers byte for byte), with only the
 * re-drive record appended to its headers table. amqplib otherwise decodes
 * every delivery's headers into objects (the `x-death` table with its
 * arrays, tables and timestamps) and encodes them again for the publish,
 * which is most of the client's work per message.
 *
 * It is built on amqplib's own frame codec (its `defs` and `codec` modules,
 * which the package does not export, so they are reached by file) and on the
 * connection and channel objects amqplib already has: the read connection
 * hands over content headers undecoded, and the publishing channel's frames
 * go into amqplib's own per-channel write buffer with amqplib's confirm
 * bookkeeping. What is not amqplib's is a walk over the headers table that
 * finds where each entry starts and ends, and the property list's layout
 * (AMQP 0-9-1, basic class).
 *
 * Everything it relies on is checked when a job starts; with an amqplib
 * that looks different, the re-drive takes amqplib's ordinary path.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Channel, ChannelModel, ConfirmChannel, Message } from 'amqplib';

interface AmqpDefs {
  BasicPublish: number;
  BasicProperties: number;
  encodeMethod(id: number, channel: number, fields: Record<string, unknown>): Buffer;
}

interface AmqpCodec {
  encodeTable(buffer: Buffer, value: Record<string, unknown>, offset: number): number;
}

interface Internals {
  defs: AmqpDefs;
  codec: AmqpCodec;
}

let internals: Internals | null | undefined;

function loadInternals(): Internals | null {
  if (internals !== undefined) return internals;
  internals = null;
  try {
    const require = createRequire(import.meta.url);
    const dir = dirname(require.resolve('amqplib'));
    const defs = require(join(dir, 'lib', 'defs.js')) as Partial<AmqpDefs>;
    const codec = require(join(dir, 'lib', 'codec.js')) as Partial<AmqpCodec>;
    if (
      typeof defs.encodeMethod === 'function' &&
      typeof codec.encodeTable === 'function' &&
      defs.BasicProperties === BASIC_CLASS &&
      typeof defs.BasicPublish === 'number'
    ) {
      internals = { defs: defs as AmqpDefs, codec: codec as AmqpCodec };
    }
  } catch {
    // Another layout of the package: the ordinary path is taken.
  }
  return internals;
}

const BASIC_CLASS = 60;
const FRAME_HEADER = 2;
const FRAME_BODY = 3;
const FRAME_END = 0xce;

/** amqplib's connection as far as the pass-through uses it. */
interface AmqpConnection {
  rest: Buffer;
  maxFrameSize: number;
  frameMax: number;
  sentSinceLastCheck: boolean;
  channels: Array<{ channel: unknown; buffer: { write(chunk: Buffer): boolean } } | null | undefined>;
  recvFrame(): unknown;
}

interface AmqpChannel {
  ch: number;
  connection: AmqpConnection;
  pushConfirmCallback(cb: (err: Error | null) => void): void;
}

function connectionOf(model: ChannelModel): AmqpConnection | null {
  const c = (model as unknown as { connection?: Partial<AmqpConnection> }).connection;
  if (!c || typeof c.recvFrame !== 'function' || !Buffer.isBuffer(c.rest) || !Array.isArray(c.channels)) return null;
  if (typeof c.frameMax !== 'number' || typeof c.maxFrameSize !== 'number') return null;
  return c as AmqpConnection;
}

/** The properties of a delivery read by `readRawProperties`: the content header's property flags and list, undecoded. */
export class RawProperties {
  constructor(readonly bytes: Buffer) {}
}

export function rawPropertiesOf(m: Message): RawProperties | null {
  const p = m.properties as unknown;
  return p instanceof RawProperties ? p : null;
}

/** Whether this amqplib offers what the pass-through relies on (checked once per job before it is used). */
export function passThroughAvailable(read: ChannelModel, publish: Channel): boolean {
  if (!loadInternals()) return false;
  const conn = connectionOf(read);
  const ch = publish as unknown as Partial<AmqpChannel>;
  const pconn = ch.connection as Partial<AmqpConnection> | undefined;
  return (
    conn !== null &&
    typeof ch.ch === 'number' &&
    typeof ch.pushConfirmCallback === 'function' &&
    pconn !== undefined &&
    Array.isArray(pconn.channels) &&
    typeof pconn.frameMax === 'number' &&
    typeof pconn.channels[ch.ch]?.buffer?.write === 'function'
  );
}

/**
 * Makes a connection (one the re-drive owns alone) hand over each content
 * header with its properties undecoded, as a RawProperties. Every other
 * frame, and a frame that is not complete yet, goes through amqplib's own
 * reader, which calls back here once it has read more from the socket.
 */
export function readRawProperties(model: ChannelModel): boolean {
  const conn = connectionOf(model);
  if (!conn || !loadInternals()) return false;
  const original = conn.recvFrame;
  conn.recvFrame = function (this: AmqpConnection) {
    const rest = this.rest;
    if (rest.length >= 8 && rest[0] === FRAME_HEADER) {
      const size = rest.readUInt32BE(3);
      const end = 7 + size;
      // Too large, malformed or not all here yet: amqplib's reader reports or waits.
      if (size >= 14 && rest.length > end && rest[end] === FRAME_END && !(this.maxFrameSize > 0 && size > this.maxFrameSize)) {
        const classId = rest.readUInt16BE(7);
        if (classId === BASIC_CLASS) {
          const channel = rest.readUInt16BE(1);
          const bodySize = Number(rest.readBigUInt64BE(11));
          const props = new RawProperties(rest.subarray(19, end));
          this.rest = rest.subarray(end + 1);
          return { id: classId, channel, size: bodySize, fields: props };
        }
      }
    }
    return original.call(this);
  };
  return true;
}

// ---------------------------------------------------------------- the content header

const F_CONTENT_TYPE = 0x8000;
const F_CONTENT_ENCODING = 0x4000;
const F_HEADERS = 0x2000;
const F_DELIVERY_MODE = 0x1000;
const F_PRIORITY = 0x0800;
const F_CORRELATION_ID = 0x0400;
const F_REPLY_TO = 0x0200;
const F_EXPIRATION = 0x0100;
const F_MESSAGE_ID = 0x0080;
const F_TIMESTAMP = 0x0040;
const F_TYPE = 0x0020;
const F_USER_ID = 0x0010;
const F_APP_ID = 0x0008;
const F_CLUSTER_ID = 0x0004;

class Malformed extends Error {}

function need(buf: Buffer, offset: number, n: number): void {
  if (offset + n > buf.length) throw new Malformed('the content header ends early');
}

function shortstrEnd(buf: Buffer, offset: number): number {
  need(buf, offset, 1);
  const end = offset + 1 + buf[offset]!;
  need(buf, end, 0);
  return end;
}

/** Where a field value of type `tag` starting at `offset` ends (the types amqplib reads). */
function valueEnd(buf: Buffer, tag: number, offset: number, limit: number): number {
  let end: number;
  switch (tag) {
    case 0x74: // t bool
    case 0x62: // b int8
    case 0x42: // B uint8
      end = offset + 1;
      break;
    case 0x73: // s int16
    case 0x75: // u uint16
      end = offset + 2;
      break;
    case 0x49: // I int32
    case 0x69: // i uint32
    case 0x66: // f float
      end = offset + 4;
      break;
    case 0x44: // D decimal
      end = offset + 5;
      break;
    case 0x6c: // l int64
    case 0x64: // d double
    case 0x54: // T timestamp
      end = offset + 8;
      break;
    case 0x56: // V void
      end = offset;
      break;
    case 0x53: // S longstr
    case 0x78: // x bytes
    case 0x46: // F table
    case 0x41: // A array
      if (offset + 4 > limit) throw new Malformed('a header value ends early');
      end = offset + 4 + buf.readUInt32BE(offset);
      break;
    default:
      throw new Malformed(`a header has the unknown type tag "${String.fromCharCode(tag)}"`);
  }
  if (end > limit) throw new Malformed('a header value ends early');
  return end;
}

function numberValue(buf: Buffer, tag: number, offset: number): number | null {
  switch (tag) {
    case 0x62:
      return buf.readInt8(offset);
    case 0x42:
      return buf.readUInt8(offset);
    case 0x73:
      return buf.readInt16BE(offset);
    case 0x75:
      return buf.readUInt16BE(offset);
    case 0x49:
      return buf.readInt32BE(offset);
    case 0x69:
      return buf.readUInt32BE(offset);
    case 0x66:
      return buf.readFloatBE(offset);
    case 0x6c:
      return Number(buf.readBigInt64BE(offset));
    case 0x64:
      return buf.readDoubleBE(offset);
    default:
      return null;
  }
}

/** The last string read from a header: queue names repeat from message to message, and are then not decoded again. */
let lastText: { bytes: Buffer; text: string } | null = null;

/** A string value (longstr or bytes) as amqplib would give it, read as UTF-8. */
function textValue(buf: Buffer, tag: number, offset: number, end: number): string | null {
  if (tag !== 0x53 && tag !== 0x78) return null;
  const start = offset + 4;
  const last = lastText;
  if (last && last.bytes.length === end - start && sameBytes(buf, start, last.bytes)) return last.text;
  const text = buf.toString('utf8', start, end);
  if (end - start <= 255) lastText = { bytes: Buffer.from(buf.subarray(start, end)), text };
  return text;
}

/**
 * Whether `buf` holds `bytes` at `at`. Names and queue names are short:
 * compared here, from the end (where names of a family such as
 * x-first-death-* differ), rather than through a native call per header.
 */
function sameBytes(buf: Buffer, at: number, bytes: Buffer): boolean {
  for (let i = bytes.length - 1; i >= 0; i--) if (buf[at + i] !== bytes[i]) return false;
  return true;
}

function keyIs(buf: Buffer, start: number, end: number, key: Buffer): boolean {
  return end - start === key.length && sameBytes(buf, start, key);
}

const K_X_DEATH = Buffer.from('x-death');
const K_FIRST_DEATH_QUEUE = Buffer.from('x-first-death-queue');
const K_QUEUE = Buffer.from('queue');
const K_CC = Buffer.from('CC');
const K_BCC = Buffer.from('BCC');
const K_COUNT = Buffer.from('x-redriven-count');
const K_FROM = Buffer.from('x-redriven-from');
const K_AT = Buffer.from('x-redriven-at');
const K_ORIGINAL_USER = Buffer.from('x-original-user-id');

/** From an x-death array: the newest entry's queue that dead-letters into the source, and the newest entry's queue at all. */
function deathQueues(buf: Buffer, start: number, end: number, sources: readonly string[]): { source: string | null; any: string | null } {
  let source: string | null = null;
  let any: string | null = null;
  let o = start;
  while (o < end) {
    const tag = buf[o]!;
    const vEnd = valueEnd(buf, tag, o + 1, end);
    if (tag === 0x46) {
      let t = o + 5;
      while (t < vEnd) {
        const kEnd = shortstrEnd(buf, t);
        if (kEnd >= vEnd) throw new Malformed('a header has no value');
        const vtag = buf[kEnd]!;
        const ve = valueEnd(buf, vtag, kEnd + 1, vEnd);
        if (keyIs(buf, t + 1, kEnd, K_QUEUE)) {
          const queue = textValue(buf, vtag, kEnd + 1, ve);
          if (queue) {
            any ??= queue;
            if (source === null && sources.includes(queue)) return { source: queue, any };
          }
          break;
        }
        t = ve;
      }
    }
    o = vEnd;
  }
  return { source, any };
}

export interface CopyPlan {
  source: string;
  username: string;
  deadLetterSources: readonly string[];
}

export interface RawCopy {
  /** The copy's property flags and list. */
  properties: Buffer;
  /** The queue the message was dead-lettered from (see `originalQueue` in redrive.ts), or null. */
  originalQueue: string | null;
}

let additionsCache: { count: number; seconds: number; originalUser: string | null; source: string; bytes: Buffer } | null = null;

/** The re-drive record as header table entries, encoded by amqplib as the ordinary path would encode them. */
function additions(codec: AmqpCodec, count: number, source: string, seconds: number, originalUser: string | null): Buffer {
  const c = additionsCache;
  if (c && c.count === count && c.seconds === seconds && c.originalUser === originalUser && c.source === source) return c.bytes;
  const table: Record<string, unknown> = {
    'x-redriven-count': count,
    'x-redriven-from': source,
    'x-redriven-at': { '!': 'timestamp', value: seconds },
  };
  if (originalUser !== null) table['x-original-user-id'] = originalUser;
  const scratch = Buffer.allocUnsafe(256 + 2 * (Buffer.byteLength(source) + Buffer.byteLength(originalUser ?? '')));
  const n = codec.encodeTable(scratch, table, 0);
  const bytes = Buffer.from(scratch.subarray(4, n));
  additionsCache = { count, seconds, originalUser, source, bytes };
  return bytes;
}

/** Byte ranges of the headers table that are kept, as start/end pairs (reused from message to message). */
const kept: number[] = [];

/**
 * The copy of a delivery's properties that the re-drive publishes: the same
 * properties and headers, with what `republish` in redrive.ts changes
 * changed the same way — CC/BCC dropped, x-redriven-count/-from/-at set, a
 * user-id other than the publishing user's moved to x-original-user-id, no
 * cluster-id. Throws (a plain Error naming the problem) when the header
 * cannot be read.
 */
export function rawCopy(raw: RawProperties, plan: CopyPlan, nowSeconds: number): RawCopy {
  const codec = loadInternals()?.codec;
  if (!codec) throw new Error('the pass-through is not available');
  const buf = raw.bytes;
  try {
    need(buf, 0, 2);
    const flags = buf.readUInt16BE(0);
    if (flags & 1) throw new Malformed('the content header has more than one property flags word');
    let o = 2;
    if (flags & F_CONTENT_TYPE) o = shortstrEnd(buf, o);
    if (flags & F_CONTENT_ENCODING) o = shortstrEnd(buf, o);
    const tableAt = o;
    let tableEnd = o;
    if (flags & F_HEADERS) {
      need(buf, o, 4);
      tableEnd = o + 4 + buf.readUInt32BE(o);
      need(buf, tableEnd, 0);
    }
    o = tableEnd;
    if (flags & F_DELIVERY_MODE) o += 1;
    if (flags & F_PRIORITY) o += 1;
    need(buf, o, 0);
    if (flags & F_CORRELATION_ID) o = shortstrEnd(buf, o);
    if (flags & F_REPLY_TO) o = shortstrEnd(buf, o);
    if (flags & F_EXPIRATION) o = shortstrEnd(buf, o);
    if (flags & F_MESSAGE_ID) o = shortstrEnd(buf, o);
    if (flags & F_TIMESTAMP) o += 8;
    need(buf, o, 0);
    if (flags & F_TYPE) o = shortstrEnd(buf, o);
    const userAt = o;
    let userId: string | null = null;
    if (flags & F_USER_ID) {
      o = shortstrEnd(buf, o);
      userId = buf.toString('utf8', userAt + 1, o);
    }
    const userEnd = o;
    if (flags & F_APP_ID) o = shortstrEnd(buf, o);
    const appEnd = o;
    if (flags & F_CLUSTER_ID) o = shortstrEnd(buf, o);
    const movesUser = userId !== null && userId !== plan.username;

    // The headers table: the entries kept, as byte ranges, and what the route needs.
    kept.length = 0;
    let previous = 0;
    let deaths: { source: string | null; any: string | null } | null = null;
    let firstDeathQueue: string | null = null;
    if (flags & F_HEADERS) {
      let t = tableAt + 4;
      let runStart = t;
      while (t < tableEnd) {
        const entryStart = t;
        const kEnd = shortstrEnd(buf, t);
        if (kEnd >= tableEnd) throw new Malformed('a header has no value');
        const kStart = t + 1;
        const tag = buf[kEnd]!;
        const vEnd = valueEnd(buf, tag, kEnd + 1, tableEnd);
        let drop = false;
        if (keyIs(buf, kStart, kEnd, K_X_DEATH)) {
          if (tag === 0x41) deaths = deathQueues(buf, kEnd + 5, vEnd, plan.deadLetterSources);
        } else if (keyIs(buf, kStart, kEnd, K_FIRST_DEATH_QUEUE)) {
          firstDeathQueue = textValue(buf, tag, kEnd + 1, vEnd);
        } else if (keyIs(buf, kStart, kEnd, K_COUNT)) {
          previous = numberValue(buf, tag, kEnd + 1) ?? 0;
          drop = true;
        } else {
          drop =
            keyIs(buf, kStart, kEnd, K_CC) ||
            keyIs(buf, kStart, kEnd, K_BCC) ||
            keyIs(buf, kStart, kEnd, K_FROM) ||
            keyIs(buf, kStart, kEnd, K_AT) ||
            (movesUser && keyIs(buf, kStart, kEnd, K_ORIGINAL_USER));
        }
        if (drop) {
          if (entryStart > runStart) kept.push(runStart, entryStart);
          runStart = vEnd;
        }
        t = vEnd;
      }
      if (tableEnd > runStart) kept.push(runStart, tableEnd);
    }

    const added = additions(codec, previous + 1, plan.source, nowSeconds, movesUser ? userId : null);
    let keptBytes = 0;
    for (let i = 0; i < kept.length; i += 2) keptBytes += kept[i + 1]! - kept[i]!;
    const tableSize = keptBytes + added.length;
    // Before the table, the table, the properties between it and user-id (user-id too when it stays), app-id; never cluster-id.
    const afterTable = movesUser ? userAt - tableEnd : userEnd - tableEnd;
    const size = tableAt + 4 + tableSize + afterTable + (appEnd - userEnd);
    const out = Buffer.allocUnsafe(size);
    let newFlags = flags | F_HEADERS;
    newFlags &= ~F_CLUSTER_ID;
    if (movesUser) newFlags &= ~F_USER_ID;
    out.writeUInt16BE(newFlags, 0);
    let w = buf.copy(out, 2, 2, tableAt) + 2;
    w = out.writeUInt32BE(tableSize, w);
    for (let i = 0; i < kept.length; i += 2) w += buf.copy(out, w, kept[i]!, kept[i + 1]!);
    w += added.copy(out, w);
    w += buf.copy(out, w, tableEnd, tableEnd + afterTable);
    w += buf.copy(out, w, userEnd, appEnd);

    // As `originalQueue` in redrive.ts: the newest x-death entry naming a queue that dead-letters into the source,
    // else x-first-death-queue, else the newest entry naming a queue.
    const originalQueue = deaths?.source ?? (firstDeathQueue || null) ?? deaths?.any ?? null;
    return { properties: out, originalQueue };
  } catch (error) {
    if (error instanceof Malformed || error instanceof RangeError) throw new Error(`a message's content header could not be read (${error.message})`);
    throw error;
  }
}

// ---------------------------------------------------------------- publishing

type ConfirmCallback = (err: Error | null) => void;

const CHUNK_BYTES = 128 * 1024;

/**
 * Publishes copies on a confirm channel by writing their frames into
 * amqplib's write buffer for that channel, batched: the frames of every copy
 * published in one turn of the event loop go out as one write. Each copy's
 * confirm callback joins amqplib's confirm bookkeeping in publish order, so
 * acks, nacks and a closing channel reach it as with `publish`. Nothing else
 * may publish on the channel meanwhile.
 */
export class RawPublisher {
  private readonly defs: AmqpDefs;
  private readonly ch: AmqpChannel;
  private readonly methods = new Map<string, Buffer>();
  private chunk: Buffer = Buffer.allocUnsafe(0);
  private used = 0;
  private callbacks: ConfirmCallback[] = [];
  private scheduled = false;

  /** `onFull` runs when amqplib's buffer for the channel is over its high-water mark (the channel emits 'drain' later). */
  constructor(
    channel: ConfirmChannel,
    private readonly onFull: () => void,
  ) {
    const i = loadInternals();
    if (!i) throw new Error('the pass-through is not available');
    this.defs = i.defs;
    this.ch = channel as unknown as AmqpChannel;
  }

  private method(exchange: string, routingKey: string): Buffer {
    const key = `${exchange}\u0000${routingKey}`;
    let frame = this.methods.get(key);
    if (!frame) {
      frame = this.defs.encodeMethod(this.defs.BasicPublish, this.ch.ch, { exchange, routingKey, mandatory: true, immediate: false, ticket: 0 });
      this.methods.set(key, frame);
    }
    return frame;
  }

  /** Queues one copy (published mandatory); its frames go out at the end of this turn of the event loop. */
  publish(exchange: string, routingKey: string, properties: Buffer, body: Buffer, cb: ConfirmCallback): void {
    const method = this.method(exchange, routingKey);
    const maxBody = this.ch.connection.frameMax - 8;
    if (!(maxBody > 0)) throw new Error(`frameMax ${this.ch.connection.frameMax} leaves no room for a body frame`);
    const bodyFrames = body.length === 0 ? 0 : Math.ceil(body.length / maxBody);
    const headerSize = 12 + properties.length;
    if (this.ch.connection.frameMax > 0 && headerSize + 8 > this.ch.connection.frameMax) {
      throw new Error(`the message's properties take ${headerSize} bytes, more than the frame size of ${this.ch.connection.frameMax}`);
    }
    const size = method.length + 8 + headerSize + body.length + 8 * bodyFrames;
    if (this.used + size > this.chunk.length) {
      this.flush();
      this.chunk = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, size));
      this.used = 0;
    }
    const out = this.chunk;
    const channel = this.ch.ch;
    let w = this.used;
    w += method.copy(out, w);
    out[w] = FRAME_HEADER;
    out.writeUInt16BE(channel, w + 1);
    out.writeUInt32BE(headerSize, w + 3);
    out.writeUInt16BE(BASIC_CLASS, w + 7);
    out.writeUInt16BE(0, w + 9);
    out.writeBigUInt64BE(BigInt(body.length), w + 11);
    w += 19;
    w += properties.copy(out, w);
    out[w++] = FRAME_END;
    for (let at = 0; at < body.length; at += maxBody) {
      const n = Math.min(maxBody, body.length - at);
      out[w] = FRAME_BODY;
      out.writeUInt16BE(channel, w + 1);
      out.writeUInt32BE(n, w + 3);
      w += 7;
      w += body.copy(out, w, at, at + n);
      out[w++] = FRAME_END;
    }
    this.used = w;
    this.callbacks.push(cb);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  /** Writes what is queued. On a closed channel the copies' callbacks get an error, as amqplib's would. */
  flush(): void {
    if (this.used === 0) return;
    const bytes = this.chunk.subarray(0, this.used);
    this.chunk = this.chunk.subarray(this.used);
    this.used = 0;
    const callbacks = this.callbacks;
    this.callbacks = [];
    const conn = this.ch.connection;
    const slot = conn.channels[this.ch.ch];
    if (!slot || slot.channel !== this.ch) {
      const err = new Error('channel closed');
      for (const cb of callbacks) cb(err);
      return;
    }
    for (const cb of callbacks) this.ch.pushConfirmCallback(cb);
    conn.sentSinceLastCheck = true;
    if (!slot.buffer.write(bytes)) this.onFull();
  }
}
