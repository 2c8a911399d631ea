/**
 * AMQP 0-9-1's primitive types and field tables, read and written as
 * RabbitMQ reads and writes them (its errata's table, not the spec's):
 *
 *   t bool   b int8   B uint8   s int16   u uint16   I int32   i uint32
 *   l int64  f float  d double  D decimal  S long string  x byte array
 *   T timestamp (seconds)  F table  A array  V void
 *
 * In JavaScript a table value is: boolean; number (every integer type, and
 * float, double and decimal); bigint (an int64 beyond 2^53); string (a long
 * string that is valid UTF-8); Buffer (a byte array, or a long string that is
 * not UTF-8); Date (a timestamp); an object (table); an array; null (void).
 * Written back, a number is an int32 when it fits, an int64 when it is an
 * integer that does not, else a double (amqplib's rule), so what a client sent
 * as `l` comes back as `I` when small: clients read both as integers.
 *
 * Anything malformed (a length past the end, an unknown type tag) throws a
 * WireError, which the connection answers with 502 SYNTAX_ERROR.
 */
import { isUtf8 } from 'node:buffer';

export type FieldTable = Record<string, unknown>;

/** A frame or method that cannot be read: `code` is the AMQP reply code to close with. */
export class WireError extends Error {
  constructor(
    readonly code: 501 | 502 | 503 | 505,
    message: string,
  ) {
    super(message);
    this.name = 'WireError';
  }
}

/** Tables nest at most this deep; deeper is refused rather than recursed into. */
const MAX_DEPTH = 64;

export class Reader {
  pos: number;
  private readonly limit: number;

  constructor(
    readonly buf: Buffer,
    start = 0,
    end = buf.length,
  ) {
    this.pos = start;
    this.limit = end;
  }

  fail(field: string, problem: string): never {
    throw new WireError(502, `SYNTAX_ERROR - ${field}: ${problem}`);
  }

  private need(n: number, field: string): void {
    if (this.pos + n > this.limit) this.fail(field, `needs ${n} more byte(s) but the frame has ${this.limit - this.pos}`);
  }

  /** Fails when bytes are left over after the arguments of `what`. */
  end(what: string): void {
    if (this.pos !== this.limit) this.fail(what, `${this.limit - this.pos} byte(s) left over after the arguments`);
  }

  get remaining(): number {
    return this.limit - this.pos;
  }

  octet(field: string): number {
    this.need(1, field);
    return this.buf[this.pos++]!;
  }

  short(field: string): number {
    this.need(2, field);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  long(field: string): number {
    this.need(4, field);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** Unsigned 64-bit; delivery tags and sizes stay far below 2^53, larger values lose precision rather than fail. */
  longlong(field: string): number {
    this.need(8, field);
    const hi = this.buf.readUInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    return hi * 4294967296 + lo;
  }

  shortstr(field: string): string {
    const n = this.octet(field);
    this.need(n, field);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  longstr(field: string): Buffer {
    const n = this.long(field);
    this.need(n, field);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  table(field: string, depth = 0): FieldTable {
    if (depth > MAX_DEPTH) this.fail(field, `tables nest deeper than ${MAX_DEPTH} levels`);
    const size = this.long(field);
    if (size === 0) return {};
    this.need(size, field);
    const end = this.pos + size;
    // No prototype: a key named __proto__ is an ordinary key.
    const out: FieldTable = Object.create(null) as FieldTable;
    const sub = new Reader(this.buf, this.pos, end);
    while (sub.pos < end) {
      const key = sub.shortstr(field);
      out[key] = sub.value(`${field}.${key}`, depth);
    }
    this.pos = end;
    return { ...out };
  }

  private array(field: string, depth: number): unknown[] {
    if (depth > MAX_DEPTH) this.fail(field, `arrays nest deeper than ${MAX_DEPTH} levels`);
    const size = this.long(field);
    this.need(size, field);
    const end = this.pos + size;
    const sub = new Reader(this.buf, this.pos, end);
    const out: unknown[] = [];
    while (sub.pos < end) out.push(sub.value(`${field}[${out.length}]`, depth));
    this.pos = end;
    return out;
  }

  value(field: string, depth = 0): unknown {
    const tag = this.octet(field);
    const b = this.buf;
    switch (tag) {
      case 0x74: // t
        return this.octet(field) !== 0;
      case 0x62: // b
        this.need(1, field);
        return b.readInt8(this.pos++);
      case 0x42: // B
        return this.octet(field);
      case 0x73: // s
        this.need(2, field);
        this.pos += 2;
        return b.readInt16BE(this.pos - 2);
      case 0x75: // u
        return this.short(field);
      case 0x49: // I
        this.need(4, field);
        this.pos += 4;
        return b.readInt32BE(this.pos - 4);
      case 0x69: // i
        return this.long(field);
      case 0x6c: {
        // l
        this.need(8, field);
        const v = b.readBigInt64BE(this.pos);
        this.pos += 8;
        return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      case 0x66: // f
        this.need(4, field);
        this.pos += 4;
        return b.readFloatBE(this.pos - 4);
      case 0x64: // d
        this.need(8, field);
        this.pos += 8;
        return b.readDoubleBE(this.pos - 8);
      case 0x44: {
        // D: scale octet, then a signed 32-bit value
        const scale = this.octet(field);
        this.need(4, field);
        const v = b.readInt32BE(this.pos);
        this.pos += 4;
        return v / 10 ** scale;
      }
      case 0x53: {
        // S
        const s = this.longstr(field);
        return isUtf8(s) ? s.toString('utf8') : Buffer.from(s);
      }
      case 0x78: // x
        return Buffer.from(this.longstr(field));
      case 0x54: // T
        return new Date(this.longlong(field) * 1000);
      case 0x46: // F
        return this.table(field, depth + 1);
      case 0x41: // A
        return this.array(field, depth + 1);
      case 0x56: // V
        return null;
      default:
        return this.fail(field, `unknown field type ${JSON.stringify(String.fromCharCode(tag))} (0x${tag.toString(16)})`);
    }
  }
}

/**
 * A growing buffer. `reset()` keeps the allocation, so one Writer per
 * connection serves every frame it sends.
 */
export class Writer {
  buf: Buffer;
  pos = 0;

  constructor(size = 4096) {
    this.buf = Buffer.allocUnsafe(size);
  }

  reset(): void {
    this.pos = 0;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** A copy of what was written. */
  take(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  octet(v: number, _field?: string): void {
    this.room(1);
    this.buf[this.pos++] = v & 0xff;
  }

  short(v: number, _field?: string): void {
    this.room(2);
    this.buf.writeUInt16BE(v & 0xffff, this.pos);
    this.pos += 2;
  }

  long(v: number, _field?: string): void {
    this.room(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
  }

  longlong(v: number, _field?: string): void {
    this.room(8);
    const n = Math.max(0, Math.floor(v));
    this.buf.writeUInt32BE(Math.floor(n / 4294967296) >>> 0, this.pos);
    this.buf.writeUInt32BE(n >>> 0, this.pos + 4);
    this.pos += 8;
  }

  /** At most 255 bytes; longer text is a bug of the caller (names are checked before they get here). */
  shortstr(v: string, field = 'shortstr'): void {
    // Names and tags are mostly short ASCII: copied char by char, which costs
    // less than asking for the UTF-8 length and then encoding.
    const len = v.length;
    if (len <= 64) {
      this.room(1 + len);
      const buf = this.buf;
      const start = this.pos;
      let i = 0;
      for (; i < len; i++) {
        const c = v.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + 1 + i] = c;
      }
      if (i === len) {
        buf[start] = len;
        this.pos = start + 1 + len;
        return;
      }
    }
    const n = Buffer.byteLength(v);
    if (n > 255) throw new RangeError(`${field}: ${n} bytes do not fit a short string (255)`);
    this.room(1 + n);
    this.buf[this.pos++] = n;
    this.pos += this.buf.write(v, this.pos, 'utf8');
  }

  longstr(v: Buffer | string, _field?: string): void {
    if (typeof v === 'string') {
      const n = Buffer.byteLength(v);
      this.room(4 + n);
      this.buf.writeUInt32BE(n, this.pos);
      this.pos += 4;
      this.pos += this.buf.write(v, this.pos, 'utf8');
      return;
    }
    this.bytes4(v);
  }

  private bytes4(v: Uint8Array): void {
    this.room(4 + v.length);
    this.buf.writeUInt32BE(v.length, this.pos);
    this.pos += 4;
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }

  raw(v: Uint8Array): void {
    this.room(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }

  table(t: FieldTable | undefined, _field?: string): void {
    this.room(4);
    const at = this.pos;
    this.pos += 4;
    if (t) {
      for (const k of Object.keys(t)) {
        const v = t[k];
        if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
        this.shortstr(k, 'table key');
        this.value(v, k);
      }
    }
    this.buf.writeUInt32BE(this.pos - at - 4, at);
  }

  value(v: unknown, key = ''): void {
    if (v === null || v === undefined) return this.octet(0x56);
    switch (typeof v) {
      case 'string':
        this.octet(0x53);
        return this.longstr(v);
      case 'boolean':
        this.octet(0x74);
        return this.octet(v ? 1 : 0);
      case 'bigint':
        this.octet(0x6c);
        this.room(8);
        this.buf.writeBigInt64BE(BigInt.asIntN(64, v), this.pos);
        this.pos += 8;
        return;
      case 'number':
        return this.number(v, key);
      case 'object':
        break;
      default:
        // A function or symbol has no AMQP form: void, as nothing was there.
        return this.octet(0x56);
    }
    if (Buffer.isBuffer(v) || v instanceof Uint8Array) {
      this.octet(0x78);
      return this.bytes4(v);
    }
    if (v instanceof Date) {
      this.octet(0x54);
      return this.longlong(Math.floor(v.getTime() / 1000));
    }
    if (Array.isArray(v)) {
      this.octet(0x41);
      this.room(4);
      const at = this.pos;
      this.pos += 4;
      for (const x of v) this.value(x, key);
      this.buf.writeUInt32BE(this.pos - at - 4, at);
      return;
    }
    this.octet(0x46);
    this.table(v as FieldTable);
  }

  private number(v: number, key: string): void {
    // RabbitMQ writes x-death's count as a long; clients such as Spring read it as one.
    if (Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 && key !== 'count') {
      this.octet(0x49);
      this.room(4);
      this.buf.writeInt32BE(v, this.pos);
      this.pos += 4;
    } else if (Number.isInteger(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER) {
      this.octet(0x6c);
      this.room(8);
      this.buf.writeBigInt64BE(BigInt(v), this.pos);
      this.pos += 8;
    } else {
      this.octet(0x64);
      this.room(8);
      this.buf.writeDoubleBE(v, this.pos);
      this.pos += 8;
    }
  }
}
