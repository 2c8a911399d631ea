/**
 * The Kafka protocol's primitive types, as protocol.html defines them: big-endian
 * fixed-width integers, zig-zag varints, strings and bytes with an int16/int32
 * length (−1 for null), and in flexible versions their "compact" forms whose
 * length is an unsigned varint of length + 1 (0 for null), plus tagged fields.
 *
 * A Reader never reads past its buffer: anything short, negative or absurd
 * (an array longer than the bytes left could hold) throws a ProtocolError,
 * which the listener answers by closing that one connection.
 */
import { randomUUID } from 'node:crypto';

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** What an encoder accepts: any field may be left out (it takes its default); int64 may be a number. */
export type Encodable<T> = T extends Buffer
  ? T
  : T extends bigint
    ? bigint | number
    : T extends Array<infer U>
      ? Array<Encodable<U>>
      : T extends object
        ? { [K in keyof T]?: Encodable<T[K]> }
        : T;

export const ZERO_UUID = '00000000-0000-0000-0000-000000000000';
const EMPTY = Buffer.alloc(0);

export class Reader {
  offset: number;
  constructor(
    readonly buf: Buffer,
    offset = 0,
    readonly end = buf.length,
  ) {
    this.offset = offset;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(n: number, what: string): number {
    if (n < 0 || this.offset + n > this.end) throw new ProtocolError(`truncated ${what} at byte ${this.offset} (needs ${n}, ${this.end - this.offset} left)`);
    const at = this.offset;
    this.offset += n;
    return at;
  }

  int8(): number {
    return this.buf.readInt8(this.need(1, 'int8'));
  }
  bool(): boolean {
    return this.int8() !== 0;
  }
  int16(): number {
    return this.buf.readInt16BE(this.need(2, 'int16'));
  }
  uint16(): number {
    return this.buf.readUInt16BE(this.need(2, 'uint16'));
  }
  int32(): number {
    return this.buf.readInt32BE(this.need(4, 'int32'));
  }
  uint32(): number {
    return this.buf.readUInt32BE(this.need(4, 'uint32'));
  }
  int64(): bigint {
    return this.buf.readBigInt64BE(this.need(8, 'int64'));
  }
  float64(): number {
    return this.buf.readDoubleBE(this.need(8, 'float64'));
  }
  uuid(): string {
    const at = this.need(16, 'uuid');
    const h = this.buf.toString('hex', at, at + 16);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  /** Unsigned varint of at most 32 bits. */
  uvarint(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.buf[this.need(1, 'varint')]!;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (value > 0xffffffff) throw new ProtocolError('varint exceeds 32 bits');
        return value;
      }
    }
    throw new ProtocolError('varint longer than 5 bytes');
  }
  /** Zig-zag varint of at most 32 bits. */
  varint(): number {
    const u = this.uvarint();
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }
  /** Zig-zag varlong of at most 64 bits. */
  varlong(): bigint {
    let value = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const b = this.buf[this.need(1, 'varlong')]!;
      value |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return (value >> 1n) ^ -(value & 1n);
    }
    throw new ProtocolError('varlong longer than 10 bytes');
  }

  private lengthOf(n: number, what: string): number {
    if (n > this.remaining) throw new ProtocolError(`${what} of ${n} bytes exceeds the ${this.remaining} bytes left`);
    return n;
  }
  bytesOf(n: number): Buffer {
    const at = this.need(n, 'bytes');
    return this.buf.subarray(at, at + n);
  }

  string(): string {
    const s = this.nullableString();
    if (s === null) throw new ProtocolError('non-nullable string was null');
    return s;
  }
  nullableString(): string | null {
    const n = this.int16();
    if (n < 0) return null;
    return this.bytesOf(this.lengthOf(n, 'string')).toString('utf8');
  }
  compactString(): string {
    const s = this.compactNullableString();
    if (s === null) throw new ProtocolError('non-nullable compact string was null');
    return s;
  }
  compactNullableString(): string | null {
    const n = this.uvarint();
    if (n === 0) return null;
    return this.bytesOf(this.lengthOf(n - 1, 'string')).toString('utf8');
  }
  bytes(): Buffer {
    const b = this.nullableBytes();
    if (b === null) throw new ProtocolError('non-nullable bytes were null');
    return b;
  }
  nullableBytes(): Buffer | null {
    const n = this.int32();
    if (n < 0) return null;
    return this.bytesOf(this.lengthOf(n, 'bytes'));
  }
  compactBytes(): Buffer {
    const b = this.compactNullableBytes();
    if (b === null) throw new ProtocolError('non-nullable compact bytes were null');
    return b;
  }
  compactNullableBytes(): Buffer | null {
    const n = this.uvarint();
    if (n === 0) return null;
    return this.bytesOf(this.lengthOf(n - 1, 'bytes'));
  }

  /** An array: int32 count (−1 null) or, compact, uvarint count + 1 (0 null). Each element takes at least one byte. */
  array<T>(compact: boolean, nullable: boolean, item: () => T): T[] | null {
    const n = compact ? this.uvarint() - 1 : this.int32();
    if (n < 0) {
      if (!nullable) throw new ProtocolError('non-nullable array was null');
      return null;
    }
    this.lengthOf(n, 'array');
    const out: T[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = item();
    return out;
  }

  /** Tagged fields: `read` returns false for a tag it does not know, which is then skipped. */
  taggedFields(read: (tag: number, r: Reader) => boolean): void {
    const count = this.uvarint();
    this.lengthOf(count, 'tagged fields');
    let last = -1;
    for (let i = 0; i < count; i++) {
      const tag = this.uvarint();
      if (tag <= last) throw new ProtocolError(`tagged fields out of order (tag ${tag} after ${last})`);
      last = tag;
      const size = this.lengthOf(this.uvarint(), 'tagged field');
      const end = this.offset + size;
      const sub = new Reader(this.buf, this.offset, end);
      if (read(tag, sub) && sub.offset !== end) throw new ProtocolError(`tagged field ${tag} has ${end - sub.offset} bytes left over`);
      this.offset = end;
    }
  }
}

/** Byte strings at least this long are kept by reference when the writer allows it. */
const BY_REFERENCE = 64 * 1024;

/** A growable big-endian buffer. */
export class Writer {
  private buf: Buffer;
  /** Bytes written into the writer's own buffer (by-reference byte strings not counted). */
  length = 0;
  /** Large byte strings kept by reference, with the own-buffer position they stand at. */
  private refs: Array<{ at: number; bytes: Buffer }> | null = null;
  private refBytes = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  private put(byte: number): void {
    const at = this.room(1);
    this.buf[at] = byte;
  }

  /**
   * Replaces the `reserved` bytes at `at` with `prefix` (at most as long),
   * moving what follows back: lets a length be written before what it measures.
   */
  closeGap(at: number, reserved: number, prefix: Buffer): void {
    prefix.copy(this.buf, at);
    const shift = reserved - prefix.length;
    if (shift > 0) {
      this.buf.copy(this.buf, at + prefix.length, at + reserved, this.length);
      this.length -= shift;
    }
  }

  /**
   * Lets raw() keep large byte strings (a fetch's record batches) by
   * reference instead of copying them; the bytes are then chunks(), not
   * result(). Only for a writer nothing measures by `length` afterwards.
   */
  keepLargeByReference(): this {
    this.refs = [];
    return this;
  }

  /** All bytes written, those kept by reference included. */
  get totalLength(): number {
    return this.length + this.refBytes;
  }

  /** The bytes written, in order, as views of the own buffer and the byte strings kept by reference. */
  chunks(): Buffer[] {
    if (this.refs === null || this.refs.length === 0) return [this.result()];
    const out: Buffer[] = [];
    let at = 0;
    for (const r of this.refs) {
      if (r.at > at) out.push(this.buf.subarray(at, r.at));
      out.push(r.bytes);
      at = r.at;
    }
    if (this.length > at) out.push(this.buf.subarray(at, this.length));
    return out;
  }

  /** The bytes written; a view, valid until the next write. */
  result(): Buffer {
    if (this.refs !== null && this.refs.length > 0) return Buffer.concat(this.chunks());
    return this.buf.subarray(0, this.length);
  }

  int8(v: number): this {
    const at = this.room(1);
    this.buf.writeInt8(v, at);
    return this;
  }
  bool(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }
  int16(v: number): this {
    const at = this.room(2);
    this.buf.writeInt16BE(v, at);
    return this;
  }
  uint16(v: number): this {
    const at = this.room(2);
    this.buf.writeUInt16BE(v, at);
    return this;
  }
  int32(v: number): this {
    const at = this.room(4);
    this.buf.writeInt32BE(v, at);
    return this;
  }
  uint32(v: number): this {
    const at = this.room(4);
    this.buf.writeUInt32BE(v, at);
    return this;
  }
  int64(v: bigint | number): this {
    const at = this.room(8);
    this.buf.writeBigInt64BE(BigInt(v), at);
    return this;
  }
  float64(v: number): this {
    const at = this.room(8);
    this.buf.writeDoubleBE(v, at);
    return this;
  }
  uuid(v: string): this {
    const hex = v.replace(/-/g, '');
    if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new ProtocolError(`not a UUID: ${JSON.stringify(v)}`);
    this.raw(Buffer.from(hex, 'hex'));
    return this;
  }
  uvarint(v: number): this {
    while (v >= 0x80) {
      this.put((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    this.put(v);
    return this;
  }
  varint(v: number): this {
    return this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1);
  }
  varlong(v: bigint): this {
    let u = (v << 1n) ^ (v >> 63n);
    u &= 0xffffffffffffffffn;
    while (u >= 0x80n) {
      this.put(Number(u & 0x7fn) | 0x80);
      u >>= 7n;
    }
    this.put(Number(u));
    return this;
  }
  raw(b: Buffer): this {
    if (this.refs !== null && b.length >= BY_REFERENCE) {
      this.refs.push({ at: this.length, bytes: b });
      this.refBytes += b.length;
      return this;
    }
    const at = this.room(b.length);
    b.copy(this.buf, at);
    return this;
  }

  string(v: string | null, compact: boolean): this {
    if (v === null) return compact ? this.uvarint(0) : this.int16(-1);
    const n = Buffer.byteLength(v);
    if (compact) this.uvarint(n + 1);
    else this.int16(n);
    const at = this.room(n);
    this.buf.write(v, at, 'utf8');
    return this;
  }
  bytes(v: Buffer | null, compact: boolean): this {
    if (v === null) return compact ? this.uvarint(0) : this.int32(-1);
    if (compact) this.uvarint(v.length + 1);
    else this.int32(v.length);
    return this.raw(v);
  }
  array<T>(v: readonly T[] | null, compact: boolean, item: (x: T) => void): this {
    if (v === null) return compact ? this.uvarint(0) : this.int32(-1);
    if (compact) this.uvarint(v.length + 1);
    else this.int32(v.length);
    for (const x of v) item(x);
    return this;
  }
  /** Tagged fields, each given as [tag, writer of its value], in ascending tag order. */
  taggedFields(fields: Array<[number, (w: Writer) => void]>): this {
    this.uvarint(fields.length);
    for (const [tag, write] of fields) {
      const sub = new Writer(64);
      write(sub);
      this.uvarint(tag).uvarint(sub.length).raw(sub.result());
    }
    return this;
  }
}

export const EMPTY_BYTES = EMPTY;
export const newUuid = randomUUID;
