import Database from 'better-sqlite3';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, decodeJson, decodeProps, encodeJson, encodeProps, fieldEquals } from '../../../src-main/broker/codec.js';
import { BrokerError, Engine, type BrowsedMessage } from '../../../src-main/broker/index.js';
import { b, tempDir, waitFor } from './helpers.js';

/** Plain JSON whose objects often have a single key starting with `$`, the tags' own names included. */
const dollarKey = fc.oneof(fc.constantFrom('$bigint', '$bytes', '$date', '$$bigint', '$', '$$', '$$$bytes', '$x'), fc.string().map((s) => `$${s}`));
const fieldValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Object.is(x, -0)),
    fc.string(),
    fc.bigInt(),
    fc.uint8Array({ maxLength: 16 }).map((u) => Buffer.from(u)),
    fc.date({ noInvalidDate: true }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.string(), dollarKey), tie('value'), { maxKeys: 4 }),
    fc.tuple(dollarKey, tie('value')).map(([k, v]) => Object.fromEntries([[k, v]])),
    fc.tuple(fc.constantFrom('$bigint', '$bytes', '$date'), fc.oneof(fc.string(), fc.integer(), fc.constant('12345678901234567890'), fc.constant('aGVsbG8='))).map(([k, v]) => ({ [k]: v })),
  ),
})).value;

describe('storage codec', () => {
  it('gives back exactly what it stored, whatever the keys (property)', () => {
    fc.assert(
      fc.property(fieldValue, (v) => {
        expect(decodeJson(encodeJson(v))).toEqual(v);
        expect(decodeJson(encodeJson({ headers: { x: v } }))).toEqual({ headers: { x: v } });
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps user objects that look like its tags as they were sent', () => {
    const headers = { a: { $bigint: '12345678901234567890' }, b: { $bytes: 'aGVsbG8=' }, c: { $date: 0 }, d: { $bigint: 'oops' }, e: { $$bigint: '1' } };
    const back = decodeJson<typeof headers>(encodeJson(headers));
    expect(back).toEqual(headers);
    expect(typeof back.a).toBe('object');
    // Real values still travel as tags.
    const real = { n: 12345678901234567890n, buf: Buffer.from('hello'), at: new Date(5) };
    expect(decodeJson(encodeJson(real))).toEqual(real);
    // A tag-shaped user object never equals the value its tag would stand for.
    expect(fieldEquals({ $bigint: '5' }, 5n)).toBe(false);
    expect(fieldEquals(5, 5n)).toBe(true);
    expect(fieldEquals(1.5, 1n)).toBe(false);
    expect(canonicalJson({ b: 1, a: { $x: 2 } })).not.toBe(canonicalJson({ b: 1, a: { $$x: 2 } }));
  });

  it('keeps the fast path: plain values are plain JSON text', () => {
    const v = { headers: { 'x-id': 'a', n: [1, 2, { k: 'v' }], $multi: 1, other: 2 } };
    expect(encodeJson(v)).toBe(JSON.stringify(v));
  });

  it('reads text written before escaping existed: real tags as before, impossible tags as user data', () => {
    const legacy = '{"headers":{"n":{"$bigint":"12345678901234567890"},"buf":{"$bytes":"aGVsbG8="},"at":{"$date":5},"oops":{"$bigint":"oops"},"raw":{"$$x":1},"s":{"$bytes":"not base64!"}}}';
    expect(decodeJson(legacy)).toEqual({
      headers: { n: 12345678901234567890n, buf: Buffer.from('hello'), at: new Date(5), oops: { $bigint: 'oops' }, raw: { $$x: 1 }, s: { $bytes: 'not base64!' } },
    });
  });

  it('refuses damaged text with a clear error', () => {
    for (const text of ['{"headers":', ' {"x":{"$bigint":"oops"}}', ' {"x":{"$what":1}}']) {
      expect(() => decodeJson(text)).toThrow(BrokerError);
      expect(() => decodeJson(text)).toThrow(/stored data cannot be read/);
    }
  });
});

/** Every message of a queue, read from its rows (browse), and the queue's counter. */
function contents(e: Engine, queue: string): { counted: number; rows: BrowsedMessage[] } {
  const rows: BrowsedMessage[] = [];
  let cursor: string | undefined;
  do {
    const page = e.browse(queue, { limit: 1000, includeUnacked: true, ...(cursor ? { cursor } : {}) });
    rows.push(...page.messages);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return { counted: e.getQueue(queue).messages, rows };
}

function setup(e: Engine): void {
  e.declareExchange('dlx', { type: 'fanout' });
  e.declareQueue('orders.dlq');
  e.bind({ source: 'dlx', destination: 'orders.dlq' });
  e.declareQueue('orders', { arguments: { 'x-dead-letter-exchange': 'dlx' } });
}

describe('tag-shaped headers in the embedded broker', () => {
  it('a crafted header neither breaks browsing nor loses messages on get with reject, also after a restart', async () => {
    const { dir, cleanup } = tempDir();
    try {
      let e = Engine.open({ dataDir: dir, timers: false });
      setup(e);
      const crafted = { x: { $bigint: 'oops' }, big: { $bigint: '12345678901234567890' }, bytes: { $bytes: 'aGVsbG8=' }, when: { $date: 1 } };
      for (let i = 0; i < 4; i++) {
        await e.publish({ exchange: '', routingKey: 'orders', body: b(`m${i}`), properties: { deliveryMode: 2, headers: i === 1 ? crafted : { n: i } } });
      }
      const before = contents(e, 'orders');
      expect(before.rows.map((m) => m.properties.headers)).toEqual([{ n: 0 }, crafted, { n: 2 }, { n: 3 }]);

      const got = await e.get('orders', { count: 10, ackMode: 'reject' });
      expect(got.map((m) => m.body.toString())).toEqual(['m0', 'm1', 'm2', 'm3']);
      expect(got[1]!.properties.headers).toEqual(crafted);
      await e.idle();
      for (const [q, n] of [['orders', 0], ['orders.dlq', 4]] as const) {
        const c = contents(e, q);
        expect(c.rows).toHaveLength(n);
        expect(c.counted).toBe(n);
      }
      expect(contents(e, 'orders.dlq').rows[1]!.properties.headers).toMatchObject(crafted);

      e.close();
      e = Engine.open({ dataDir: dir, timers: false });
      for (const [q, n] of [['orders', 0], ['orders.dlq', 4]] as const) {
        const c = contents(e, q);
        expect(c.rows).toHaveLength(n);
        expect(c.counted).toBe(n);
      }
      const dead = contents(e, 'orders.dlq').rows;
      expect(dead.map((m) => m.body.toString())).toEqual(['m0', 'm1', 'm2', 'm3']);
      expect(dead[1]!.properties.headers).toMatchObject(crafted);
      e.close();
    } finally {
      cleanup();
    }
  });

  it('a message whose stored properties are damaged fails browse and get clearly, and get removes nothing', async () => {
    const { dir, cleanup } = tempDir();
    try {
      let e = Engine.open({ dataDir: dir, timers: false });
      setup(e);
      for (let i = 0; i < 4; i++) await e.publish({ exchange: '', routingKey: 'orders', body: b(`m${i}`), properties: { deliveryMode: 2, headers: { n: i } } });
      const damaged = Number(contents(e, 'orders').rows[2]!.id);
      e.close();
      const db = new Database(join(dir, 'brokerdeck.db'));
      db.prepare('UPDATE messages SET props = ? WHERE id = ?').run(' {"headers":{"n":{"$bigint":"oops"}}}', damaged);
      db.close();

      e = Engine.open({ dataDir: dir, timers: false });
      const refusal = new RegExp(`message ${damaged} of queue "orders": its stored data cannot be read`);
      expect(() => e.browse('orders')).toThrow(refusal);
      for (const ackMode of ['reject', 'ack', 'requeue'] as const) {
        await expect(e.get('orders', { count: 10, ackMode })).rejects.toThrow(refusal);
        await expect(e.get('orders', { count: 10, ackMode })).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
      }
      await e.idle();
      expect(e.getQueue('orders')).toMatchObject({ messages: 4, ready: 4 });
      expect(e.getQueue('orders.dlq').messages).toBe(0);
      // The two before it can still be taken, in order, and nothing else moved.
      const got = await e.get('orders', { count: 2, ackMode: 'reject' });
      expect(got.map((m) => m.body.toString())).toEqual(['m0', 'm1']);
      expect(got.map((m) => m.redelivered)).toEqual([false, false]);
      await e.idle();
      e.close();

      e = Engine.open({ dataDir: dir, timers: false });
      expect(e.getQueue('orders')).toMatchObject({ messages: 2 });
      const dlq = contents(e, 'orders.dlq');
      expect(dlq.counted).toBe(2);
      expect(dlq.rows.map((m) => m.body.toString())).toEqual(['m0', 'm1']);
      e.close();
    } finally {
      cleanup();
    }
  });

  it('reads messages stored before escaping existed', async () => {
    const { dir, cleanup } = tempDir();
    try {
      let e = Engine.open({ dataDir: dir, timers: false });
      e.declareQueue('old');
      await e.publish({ exchange: '', routingKey: 'old', body: b('x'), properties: { deliveryMode: 2, headers: { n: 1 } } });
      const id = Number(contents(e, 'old').rows[0]!.id);
      e.close();
      // As an earlier version wrote them: a real tag, and user data that looked like one.
      const db = new Database(join(dir, 'brokerdeck.db'));
      db.prepare('UPDATE messages SET props = ? WHERE id = ?').run('{"headers":{"n":{"$bigint":"42"},"x":{"$bigint":"oops"}}}', id);
      db.close();
      e = Engine.open({ dataDir: dir, timers: false });
      expect(contents(e, 'old').rows[0]!.properties.headers).toEqual({ n: 42n, x: { $bigint: 'oops' } });
      const [m] = await e.get('old', { count: 1, ackMode: 'ack' });
      expect(m!.properties.headers).toEqual({ n: 42n, x: { $bigint: 'oops' } });
      e.close();
    } finally {
      cleanup();
    }
  });

  it("a damaged row does not stop its queue: expiry dead-letters it and a consumer gets it, each with a header naming the problem", async () => {
    const { dir, cleanup } = tempDir();
    try {
      let now = 1_700_000_000_000;
      let e = Engine.open({ dataDir: dir, timers: false, now: () => now });
      setup(e);
      e.declareQueue('short', { arguments: { 'x-message-ttl': 1000, 'x-dead-letter-exchange': 'dlx' } });
      await e.publish({ exchange: '', routingKey: 'short', body: b('expiring'), properties: { deliveryMode: 2, headers: { n: 1 } } });
      await e.publish({ exchange: '', routingKey: 'orders', body: b('consumed'), properties: { deliveryMode: 2, headers: { n: 2 } } });
      const ids = [contents(e, 'short').rows[0]!.id, contents(e, 'orders').rows[0]!.id].map(Number);
      e.close();
      const db = new Database(join(dir, 'brokerdeck.db'));
      for (const id of ids) db.prepare('UPDATE messages SET props = ? WHERE id = ?').run('{"headers":', id);
      db.close();

      e = Engine.open({ dataDir: dir, timers: false, now: () => now });
      now += 5000;
      e.tick();
      await e.idle();
      expect(e.getQueue('short').messages).toBe(0);
      const dead = contents(e, 'orders.dlq').rows;
      expect(dead.map((m) => m.body.toString())).toEqual(['expiring']);
      expect(dead[0]!.properties.headers).toMatchObject({ 'x-unreadable-properties': expect.stringMatching(/^stored data cannot be read/), 'x-first-death-reason': 'expired' });

      const got: string[] = [];
      const headers: unknown[] = [];
      e.consume('orders', { prefetch: 10, noAck: true }, (d) => {
        got.push(d.body.toString());
        headers.push(d.properties.headers);
      });
      await waitFor(() => got.length > 0);
      expect(got).toEqual(['consumed']);
      expect(headers[0]).toEqual({ 'x-unreadable-properties': expect.stringMatching(/^stored data cannot be read/) });
      e.close();
    } finally {
      cleanup();
    }
  });
});

describe('properties remembered between messages', () => {
  const flatValue = fc.oneof(fc.string({ maxLength: 8 }), fc.integer({ min: -3, max: 300 }), fc.constantFrom(-0, 0.5, NaN, Infinity), fc.constant(undefined), fc.constant(null));
  const props = fc.dictionary(fc.constantFrom('contentType', 'priority', 'deliveryMode', 'messageId', 'type', 'headers', '__proto__', '$x'), fc.oneof(flatValue, fc.constant({ a: 1 }), fc.constant({}), fc.constant(Object.create(null)), fc.constant([])), { maxKeys: 4 });

  it('encodes a run of properties exactly as without remembering, and decodes each into an object of its own', () => {
    fc.assert(
      fc.property(fc.array(props, { maxLength: 12 }), fc.boolean(), (list, persistent) => {
        for (const p of list) {
          const { deliveryMode: _dm, ...rest } = p as Record<string, unknown>;
          const anything = Object.keys(rest).some((k) => rest[k] !== undefined);
          const text = encodeProps(p as never);
          expect(text).toBe(anything ? encodeJson(rest) : null);
          if (text === null) continue;
          const expected = { ...decodeJson<Record<string, unknown>>(text), ...(persistent ? { deliveryMode: 2 } : {}) };
          const first = decodeProps(text, persistent) as Record<string, unknown>;
          expect(first).toEqual(expected);
          // The caller owns what it got: changing it changes nothing for the next reader.
          first.contentType = 'changed';
          first.extra = 1;
          if (first.headers && typeof first.headers === 'object') (first.headers as Record<string, unknown>).added = true;
          expect(decodeProps(text, persistent)).toEqual(expected);
        }
      }),
    );
  });

  it('keeps key order, as the stored text always had it', () => {
    expect(encodeProps({ contentType: 'a', priority: 1 })).toBe('{"contentType":"a","priority":1}');
    expect(encodeProps({ priority: 1, contentType: 'a' })).toBe('{"priority":1,"contentType":"a"}');
    expect(encodeProps({ contentType: 'a', priority: 1, deliveryMode: 2 })).toBe('{"contentType":"a","priority":1}');
    expect(encodeProps({ contentType: 'a' })).toBe('{"contentType":"a"}');
    expect(encodeProps({ headers: {}, deliveryMode: 2 })).toBe('{"headers":{}}');
    expect(encodeProps({ headers: { a: 1 }, deliveryMode: 2 })).toBe('{"headers":{"a":1}}');
    expect(encodeProps({ headers: {}, deliveryMode: 2 })).toBe('{"headers":{}}');
  });
});
