import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { FRAME_OVERHEAD, FrameParser, FrameWriter, type Frame } from '../../../../src-main/protocols/amqp/frame.js';
import { decodeBasicProperties, decodeMethod, encodeBasicProperties, encodeMethod, METHOD_IDS, type BasicProperties } from '../../../../src-main/protocols/amqp/generated/spec.js';
import { Reader, WireError, Writer } from '../../../../src-main/protocols/amqp/wire.js';
import { toWire } from '../../../../src-main/protocols/amqp/properties.js';

/** Field values as RabbitMQ's parser produces them, in the JavaScript shapes wire.ts decodes to. */
const key = fc.string({ maxLength: 20 }).filter((k) => Buffer.byteLength(k) <= 255);
const scalar = fc.oneof(
  fc.boolean(),
  fc.integer({ min: -2147483648, max: 2147483647 }),
  fc.maxSafeInteger(),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).filter((b) => b > BigInt(Number.MAX_SAFE_INTEGER) || b < BigInt(Number.MIN_SAFE_INTEGER)),
  fc.string({ maxLength: 40 }),
  fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)).filter((b) => b.length > 0),
  fc.integer({ min: 0, max: 2 ** 40 }).map((s) => new Date(s * 1000)),
  fc.constant(null),
);
const { value: fieldValue } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('table'), tie('array')),
  table: fc.dictionary(key, tie('value'), { maxKeys: 5 }),
  array: fc.array(tie('value'), { maxLength: 5 }),
}));
const table = fc.dictionary(key, fieldValue, { maxKeys: 8 });

const props = fc.record(
  {
    contentType: key,
    contentEncoding: key,
    headers: table,
    deliveryMode: fc.integer({ min: 0, max: 255 }),
    priority: fc.integer({ min: 0, max: 255 }),
    correlationId: key,
    replyTo: key,
    expiration: key,
    messageId: key,
    timestamp: fc.maxSafeInteger().filter((n) => n >= 0),
    type: key,
    userId: key,
    appId: key,
    clusterId: key,
  },
  { requiredKeys: [] },
);


function roundTripTable(t: Record<string, unknown>): Record<string, unknown> {
  const w = new Writer(16);
  w.table(t);
  const r = new Reader(w.take());
  const out = r.table('t');
  r.end('t');
  return out;
}

describe('field tables', () => {
  test('every value type comes back as it was written', () => {
    fc.assert(
      fc.property(table, (t) => {
        expect(roundTripTable(t)).toEqual(t);
      }),
      { numRuns: 300 },
    );
  });

  test('RabbitMQ type tags are read: b B s u I i l f d D S x T F A V t', () => {
    const parts: Buffer[] = [];
    const entry = (k: string, tag: string, v: Buffer) => parts.push(Buffer.from([k.length]), Buffer.from(k), Buffer.from(tag), v);
    const n = (size: number, f: (b: Buffer) => void) => {
      const b = Buffer.alloc(size);
      f(b);
      return b;
    };
    entry('b', 'b', n(1, (b) => b.writeInt8(-5)));
    entry('B', 'B', n(1, (b) => b.writeUInt8(250)));
    entry('s', 's', n(2, (b) => b.writeInt16BE(-300)));
    entry('u', 'u', n(2, (b) => b.writeUInt16BE(65000)));
    entry('I', 'I', n(4, (b) => b.writeInt32BE(-70000)));
    entry('i', 'i', n(4, (b) => b.writeUInt32BE(4000000000)));
    entry('l', 'l', n(8, (b) => b.writeBigInt64BE(-(2n ** 60n))));
    entry('f', 'f', n(4, (b) => b.writeFloatBE(1.5)));
    entry('d', 'd', n(8, (b) => b.writeDoubleBE(2.25)));
    entry('D', 'D', Buffer.from([2, 0, 0, 0x04, 0xd2]));
    entry('S', 'S', Buffer.concat([n(4, (b) => b.writeUInt32BE(2)), Buffer.from('hé').subarray(0, 2)]));
    entry('x', 'x', Buffer.concat([n(4, (b) => b.writeUInt32BE(2)), Buffer.from([0, 255])]));
    entry('T', 'T', n(8, (b) => b.writeBigUInt64BE(1700000000n)));
    entry('V', 'V', Buffer.alloc(0));
    entry('t', 't', Buffer.from([1]));
    const body = Buffer.concat(parts);
    const framed = Buffer.concat([n(4, (b) => b.writeUInt32BE(body.length)), body]);
    const t = new Reader(framed).table('t');
    expect(t).toMatchObject({ b: -5, B: 250, s: -300, u: 65000, I: -70000, i: 4000000000, l: -(2n ** 60n), f: 1.5, d: 2.25, D: 12.34, x: Buffer.from([0, 255]), T: new Date(1700000000000), V: null, t: true });
    expect(Buffer.isBuffer(t.S) || typeof t.S === 'string').toBe(true);
  });

  test('an unknown type tag or a length past the end is a syntax error, never a crash', () => {
    const bad = Buffer.from([0, 0, 0, 3, 1, 0x61, 0x5a]);
    expect(() => new Reader(bad).table('t')).toThrow(WireError);
    expect(() => new Reader(Buffer.from([0, 0, 0, 9, 1])).table('t')).toThrow(/SYNTAX_ERROR/);
  });

  test('arbitrary bytes either decode or throw WireError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          new Reader(Buffer.from(bytes)).table('t');
        } catch (err) {
          expect(err).toBeInstanceOf(WireError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('methods and properties', () => {
  test('basic.publish, basic.deliver and queue.declare round-trip through the generated codec', () => {
    fc.assert(
      fc.property(key, key, fc.boolean(), fc.boolean(), fc.maxSafeInteger().filter((n) => n >= 0), table, (exchange, routingKey, mandatory, flag, tag, args) => {
        const w = new Writer(8);
        encodeMethod(w, 'basic.publish', { exchange, routingKey, mandatory });
        expect(decodeMethod(w.take())).toEqual({ name: 'basic.publish', classId: 60, methodId: 40, args: { ticket: 0, exchange, routingKey, mandatory, immediate: false } });
        w.reset();
        encodeMethod(w, 'basic.deliver', { consumerTag: routingKey, deliveryTag: tag, redelivered: flag, exchange, routingKey });
        expect((decodeMethod(w.take()) as { args: unknown }).args).toEqual({ consumerTag: routingKey, deliveryTag: tag, redelivered: flag, exchange, routingKey });
        w.reset();
        encodeMethod(w, 'queue.declare', { queue: exchange, durable: flag, exclusive: !flag, autoDelete: mandatory, nowait: true, arguments: args });
        expect((decodeMethod(w.take()) as { args: unknown }).args).toEqual({ ticket: 0, queue: exchange, passive: false, durable: flag, exclusive: !flag, autoDelete: mandatory, nowait: true, arguments: args });
      }),
      { numRuns: 200 },
    );
  });

  test('every method of the spec encodes with its defaults and decodes to its own name', () => {
    for (const [name, id] of Object.entries(METHOD_IDS)) {
      const w = new Writer(8);
      encodeMethod(w, name as keyof typeof METHOD_IDS, {});
      const m = decodeMethod(w.take());
      expect(m.name).toBe(name);
      expect(m.classId * 65536 + m.methodId).toBe(id);
    }
  });

  test('an unknown class or method decodes to name null (the connection answers 503)', () => {
    expect(decodeMethod(Buffer.from([0, 99, 0, 1]))).toEqual({ name: null, classId: 99, methodId: 1 });
  });

  test('trailing bytes after the arguments are a syntax error', () => {
    const w = new Writer(8);
    encodeMethod(w, 'basic.ack', { deliveryTag: 1 });
    expect(() => decodeMethod(Buffer.concat([w.take(), Buffer.from([0])]))).toThrow(/SYNTAX_ERROR/);
  });

  test('basic properties: every subset of the 14 round-trips with its flags', () => {
    fc.assert(
      fc.property(props, (p) => {
        const w = new Writer(8);
        encodeBasicProperties(w, p as BasicProperties);
        const r = new Reader(w.take());
        expect(decodeBasicProperties(r)).toEqual(p);
        r.end('properties');
      }),
      { numRuns: 300 },
    );
  });
});

describe('frames', () => {
  const frames = fc.array(
    fc.record({ channel: fc.integer({ min: 0, max: 65535 }), body: fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)), props: props }),
    { minLength: 1, maxLength: 6 },
  );

  test('frames split at arbitrary byte boundaries come out whole and in order', () => {
    fc.assert(
      fc.property(frames, fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 50 }), (list, cuts) => {
        const fw = new FrameWriter();
        for (const f of list) {
          fw.method(f.channel, 'basic.publish', { exchange: 'x', routingKey: 'k' });
          fw.content(f.channel, f.props as BasicProperties, f.body, 4096);
        }
        fw.heartbeat();
        const bytes = fw.take();
        const parser = new FrameParser(4096);
        const out: Frame[] = [];
        let at = 0;
        let i = 0;
        while (at < bytes.length) {
          const n = cuts[i++ % cuts.length]!;
          parser.push(bytes.subarray(at, at + n));
          at += n;
          for (let f = parser.next(); f; f = parser.next()) out.push({ ...f, payload: Buffer.from(f.payload) });
        }
        expect(parser.buffered).toBe(0);
        const expected = list.reduce((n, f) => n + 2 + Math.ceil(f.body.length / (4096 - FRAME_OVERHEAD)), 0) + 1;
        expect(out.length).toBe(expected);
        expect(out.at(-1)!.type).toBe(8);
        let k = 0;
        for (const f of list) {
          expect(out[k]!.type).toBe(1);
          expect(out[k]!.channel).toBe(f.channel);
          expect(decodeMethod(out[k]!.payload).name).toBe('basic.publish');
          const r = new Reader(out[k + 1]!.payload);
          r.short('class');
          r.short('weight');
          expect(r.longlong('size')).toBe(f.body.length);
          expect(decodeBasicProperties(r)).toEqual(f.props);
          k += 2;
          const parts: Buffer[] = [];
          while (k < out.length && out[k]!.type === 3) parts.push(out[k++]!.payload);
          expect(Buffer.concat(parts)).toEqual(f.body);
        }
      }),
      { numRuns: 150 },
    );
  });

  test('a frame larger than frame_max, a bad end octet or an unknown type is a FRAME_ERROR', () => {
    const big = new FrameParser(4096);
    big.push(Buffer.from([1, 0, 1, 0, 0, 0x10, 0x00]));
    expect(() => big.next()).toThrow(expect.objectContaining({ code: 501 }));
    const badEnd = new FrameParser(4096);
    badEnd.push(Buffer.from([8, 0, 0, 0, 0, 0, 0, 0xcd]));
    expect(() => badEnd.next()).toThrow(/FRAME_ERROR - frame does not end with 0xCE/);
    const badType = new FrameParser(4096);
    badType.push(Buffer.from([7, 0, 0, 0, 0, 0, 0, 0xce]));
    expect(() => badType.next()).toThrow(/unknown frame type 7/);
  });
});

describe('short strings', () => {
  test('ASCII and non-ASCII text of any length up to 255 bytes reads back as written', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 60 }), fc.string({ unit: 'binary-ascii', maxLength: 255 })), { maxLength: 6 }), (list) => {
        const fit = list.filter((v) => Buffer.byteLength(v) <= 255);
        const w = new Writer(8);
        for (const v of fit) w.shortstr(v);
        const r = new Reader(w.take());
        for (const v of fit) expect(r.shortstr('s')).toBe(Buffer.from(v, 'utf8').toString('utf8'));
        expect(r.remaining).toBe(0);
      }),
    );
  });
});

describe('engine properties to the wire', () => {
  const written = (p: BasicProperties): Buffer => {
    const w = new Writer(8);
    encodeBasicProperties(w, p);
    return w.take();
  };

  test('properties that need no conversion are written as they are', () => {
    const p = { contentType: 'text/plain', deliveryMode: 2 as const, priority: 0, headers: { a: 1 }, timestamp: 1700000000 };
    expect(written(toWire(p))).toEqual(written({ contentType: 'text/plain', deliveryMode: 2, priority: 0, headers: { a: 1 }, timestamp: 1700000000 }));
    expect(p).toEqual({ contentType: 'text/plain', deliveryMode: 2, priority: 0, headers: { a: 1 }, timestamp: 1700000000 });
  });

  test("x-death's time goes out as a timestamp, and the engine's properties are left as they were", () => {
    const p = { deliveryMode: 2 as const, headers: { 'x-death': [{ count: 1, queue: 'q', reason: 'expired', time: 1700000000 }] } };
    const wire = toWire(p);
    expect((wire.headers!['x-death'] as Array<{ time: unknown }>)[0]!.time).toEqual(new Date(1700000000 * 1000));
    expect(p.headers['x-death'][0]!.time).toBe(1700000000);
    const r = new Reader(written(wire));
    expect(decodeBasicProperties(r).headers).toEqual({ 'x-death': [{ count: 1, queue: 'q', reason: 'expired', time: new Date(1700000000 * 1000) }] });
  });
});
