/**
 * Drives every route of /api/openapi.json with what a careless or hostile client
 * sends: wrong types, hostile strings, names of Object's prototype, tagged
 * objects shaped like the storage encoding, deep nesting, malformed JSON and
 * UTF-8, wrong content types, malformed percent-encoding. No answer may be a
 * 5xx, every error body must name its code, and the server must still answer
 * at the end.
 *
 * `npm test` runs FUZZ_CASES (3,000) cases; `npm run fuzz` runs 100,000. A run
 * prints its seed; FUZZ_SEED=<seed> replays it. Routes that would open a
 * network connection (saving or testing a connection) get only bodies that
 * cannot pass validation, so that the fuzzer never reaches past loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { request } from 'node:http';
import { startCore, type Core } from '../../src-main/core/core.js';
import { startHttpServer, type HttpServer } from '../../src-main/transports/http/server.js';
import { silentLogger } from '../../src-main/ground/logger.js';

const CASES = Number(process.env.FUZZ_CASES ?? 3_000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const token = 'fuzz-token';
/** Small, so that oversized bodies are cheap to send. */
const LIMIT = 256 * 1024;

let core: Core;
let server: HttpServer;

beforeAll(async () => {
  core = await startCore({ dataDir: null, version: '0.0.0' });
  server = await startHttpServer({ core, host: '127.0.0.1', port: 0, token, logger: silentLogger, maxRequestBytes: LIMIT });
  // Something to find: queues with and without a dead-letter exchange, a topic, a message.
  await core.call('queues/declare', { connectionId: 'local', queue: 'orders', arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'orders.dlq' } });
  await core.call('queues/declare', { connectionId: 'local', queue: 'orders.dlq' });
  await core.call('publish', { connectionId: 'local', routingKey: 'orders', body: '{"id":1}', properties: { headers: { x: 1 } } });
  await core.call('topics/create', { connectionId: 'local', topic: 'events', partitions: 2 });
});
afterAll(async () => {
  await server?.close();
  await core?.close();
});

interface Reply {
  status: number;
  body: string;
}

function send(method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      // An oversized body is answered before it is all sent; the socket then closes.
      if (error.code === 'EPIPE' || error.code === 'ECONNRESET') resolve({ status: 413, body: '{"error":{"code":"TOO_LARGE","message":"reset"}}' });
      else reject(error);
    });
    req.end(body);
  });
}

type Json = Record<string, unknown>;
interface RouteSpec {
  method: string;
  path: string;
  params: string[];
  properties: Record<string, Json>;
  /** Reaches past loopback when its input is valid: only invalid bodies are sent. */
  outward: boolean;
}

const HOSTILE_STRINGS = [
  '', ' ', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf',
  '../../etc/passwd', '..', '.', '\u0000', 'a\u0000b', '\uD800', '\uDFFF', '𝕏'.repeat(64), 'a'.repeat(256), 'a'.repeat(70_000),
  "'; DROP TABLE queues;--", '" OR 1=1 --', '{{i}}', '{{uuid}}', '{{now}}', '{{', '${7*7}', '<script>alert(1)</script>',
  '$bigint', '$bytes', 'amq.gen-x', 'amq.default', 'amq.rabbitmq.reply-to', '#', '*', '*.#', 'local', 'true', 'false', '-1', '1e309', 'NaN', 'null',
  '%E0%A4%A', '%', '%zz', 'orders', 'orders.dlq', 'events', '\r\nX-Injected: 1', 'ǅ', 'İ',
];
const HOSTILE_NUMBERS = [-1, 0, 1, 2, 3, 1.5, -0.5, 255, 256, 65_536, 2 ** 31, 2 ** 32 + 1, 2 ** 53 + 2, -(2 ** 63), 1e308, -1e308, 0.1];

const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
);
const hostileNumber = fc.oneof(fc.constantFrom(...HOSTILE_NUMBERS), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
const tagged = fc.constantFrom<unknown>({ $bigint: 'oops' }, { $bigint: '12345678901234567890' }, { $bytes: '!!notbase64' }, { $bytes: 'aGVsbG8=' }, { $date: 'x' }, { $date: 1e300 }, { __proto__: { polluted: true } }, JSON.parse('{"__proto__":{"polluted":true}}'));
const anyValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString,
    hostileNumber,
    fc.boolean(),
    fc.constant(null),
    tagged,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(hostileString, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** A value shaped after the schema most of the time, so that the input gets past validation into the handlers. */
function valueFor(schema: Json | undefined): fc.Arbitrary<unknown> {
  const s = schema ?? {};
  const typed = (() => {
    if (Array.isArray(s.enum)) return fc.constantFrom(...(s.enum as unknown[]));
    const type = Array.isArray(s.type) ? s.type[0] : s.type;
    if (Array.isArray(s.anyOf) && s.anyOf.length > 0) return fc.oneof(...(s.anyOf as Json[]).map((x) => valueFor(x)));
    switch (type) {
      case 'string':
        return hostileString;
      case 'integer':
      case 'number':
        return hostileNumber;
      case 'boolean':
        return fc.boolean();
      case 'array':
        return fc.array(valueFor(s.items as Json | undefined), { maxLength: 5 });
      case 'object':
        if (s.properties) return objectFor(s.properties as Record<string, Json>);
        return fc.dictionary(hostileString, anyValue, { maxKeys: 5 });
      default:
        return anyValue;
    }
  })();
  return fc.oneof({ weight: 4, arbitrary: typed }, { weight: 1, arbitrary: anyValue });
}

function objectFor(properties: Record<string, Json>): fc.Arbitrary<Record<string, unknown>> {
  const keys = Object.keys(properties);
  return fc.record(Object.fromEntries(keys.map((k) => [k, valueFor(properties[k])])), { requiredKeys: [] }).chain((o) =>
    fc.oneof({ weight: 5, arbitrary: fc.constant(o) }, { weight: 1, arbitrary: fc.dictionary(hostileString, anyValue, { maxKeys: 2 }).map((extra) => ({ ...extra, ...o })) }),
  );
}

function encodeSegment(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    return value.replace(/[^\w.-]/g, '%');
  }
}

const pathParam = (name: string) =>
  name === 'id'
    ? hostileString.map(encodeSegment)
    : fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom('local', 'orders', 'orders.dlq', 'events') },
        { weight: 2, arbitrary: hostileString.map(encodeSegment) },
        { weight: 1, arbitrary: fc.constantFrom('%E0%A4%A', '%', '%zz', '%c0%ae%c0%ae', '%00', '%2F..%2F') },
      );

interface Case {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

/** Bodies no route accepts: the outward routes get only these. */
const invalidBody: fc.Arbitrary<{ type: string; body: Buffer }> = fc.oneof(
  fc.constantFrom(
    '{"kind":', '{"kind":42,"name":"x"}', '[]', '"text"', '42', 'null', 'true', '{"kind":"rabbitmq"', '\u0000', '{"a":1}{"b":2}',
    '['.repeat(5_000) + ']'.repeat(5_000), '{"a":'.repeat(3_000) + '1' + '}'.repeat(3_000),
  ).map((t) => ({ type: 'application/json', body: Buffer.from(t) })),
  fc.constantFrom(Buffer.from([0xff, 0xfe, 0x7b, 0x22]), Buffer.from([0xc0, 0xae, 0xe0, 0xa4]), Buffer.alloc(LIMIT + 10, 0x20)).map((body) => ({ type: 'application/json', body })),
  fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', '').map((type) => ({ type, body: Buffer.from('{"kind":"rabbitmq"}') })),
);

function caseFor(route: RouteSpec): fc.Arbitrary<Case> {
  const params = fc.tuple(...route.params.map((p) => pathParam(p)));
  const hasBody = route.method === 'POST' || route.method === 'PUT';
  const query = hasBody ? fc.constant({}) : objectFor(route.properties);
  const body: fc.Arbitrary<{ type: string; body: Buffer } | null> = !hasBody
    ? fc.constant(null)
    : route.outward
      ? invalidBody
      : fc.oneof(
          { weight: 6, arbitrary: objectFor(route.properties).map((o) => ({ type: 'application/json', body: Buffer.from(JSON.stringify(o)) })) },
          { weight: 1, arbitrary: invalidBody },
        );
  return fc.tuple(params, query, body).map(([values, q, b]) => {
    let i = 0;
    const path = route.path.replace(/\{(\w+)\}/g, () => String(values[i++]));
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) search.append(k, typeof v === 'string' ? v : JSON.stringify(v) ?? '');
    const qs = search.toString();
    const headers: Record<string, string> = {};
    if (b) {
      if (b.type) headers['content-type'] = b.type;
      headers['content-length'] = String(b.body.length);
    }
    return { method: route.method, path: qs ? `${path}?${qs}` : path, headers, ...(b ? { body: b.body } : {}) };
  });
}

describe('HTTP API fuzz', () => {
  it(`answers ${CASES} hostile requests over every route without a 5xx, and still answers after`, { timeout: 1_800_000 }, async () => {
    const doc = JSON.parse((await send('GET', '/api/openapi.json', {})).body) as { paths: Record<string, Record<string, Json>> };
    const specs: RouteSpec[] = [];
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const parameters = (op.parameters as Array<{ name: string; in: string; schema: Json }>) ?? [];
        const bodySchema = ((op.requestBody as Json | undefined)?.content as Json | undefined)?.['application/json'] as { schema?: { properties?: Record<string, Json> } } | undefined;
        const properties: Record<string, Json> = { ...(bodySchema?.schema?.properties ?? {}) };
        for (const p of parameters) if (p.in === 'query') properties[p.name] = p.schema;
        const outward = ['connections/create', 'connections/test', 'connections/update'].includes(String(op.operationId));
        specs.push({ method: method.toUpperCase(), path, params: parameters.filter((p) => p.in === 'path').map((p) => p.name), properties, outward });
      }
    }
    expect(specs.length).toBeGreaterThan(40);

    // Every route in turn, so that each gets its share however many cases run.
    const perRoute = Math.max(1, Math.ceil(CASES / specs.length));
    const batches = specs.map((spec, k) => fc.sample(caseFor(spec), { seed: SEED + k, numRuns: perRoute }));
    console.log(`fuzzing ${specs.length} routes, ${perRoute} cases each, seed ${SEED} (FUZZ_SEED=${SEED} replays it)`);
    const failures: string[] = [];
    let sent = 0;
    for (let round = 0; round < perRoute; round++) {
      await Promise.all(
        batches.map(async (batch) => {
          const c = batch[round]!;
          const res = await send(c.method, c.path, c.headers, c.body);
          sent++;
          const where = `${c.method} ${c.path.slice(0, 200)} ${c.body ? c.body.subarray(0, 2000).toString() : ''}`;
          if (res.status >= 500) failures.push(`${res.status} ${where} → ${res.body.slice(0, 300)}`);
          else if (res.status >= 400) {
            let body: { error?: { code?: unknown; message?: unknown } } = {};
            try {
              body = JSON.parse(res.body);
            } catch {
              failures.push(`${res.status} without a JSON error body: ${where}`);
            }
            if (typeof body.error?.code !== 'string' || typeof body.error?.message !== 'string') failures.push(`${res.status} without code and message: ${where}`);
          }
        }),
      );
    }
    console.log(`${sent} requests sent`);
    expect(failures.slice(0, 20)).toEqual([]);
    expect(sent).toBe(perRoute * specs.length);
    expect((await send('GET', '/api/health', {})).status).toBe(200);
    expect((await send('GET', '/api/connections', {})).status).toBe(200);
    // Nothing reached Object.prototype.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
