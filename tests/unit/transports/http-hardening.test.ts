/**
 * Headless mode against what an attacker or a careless client sends: requests
 * that must not crash the process or answer 500, cross-origin tricks, limits,
 * and the data folder's permissions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { connect } from 'node:net';
import { inflateRawSync } from 'node:zlib';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { startCore, type Core } from '../../../src-main/core/core.js';
import { startHttpServer, type HttpServer } from '../../../src-main/transports/http/server.js';
import { silentLogger } from '../../../src-main/ground/logger.js';
import { MAX_SUBSCRIPTIONS } from '../../../src-main/core/session.js';
import { MAX_TEMPLATE_BYTES } from '../../../src-main/core/app-store.js';

const token = 'hardening-token';
const auth = { authorization: `Bearer ${token}` };
const json = { ...auth, 'content-type': 'application/json' };
/** Small, so that the limit is reached without sending hundreds of megabytes. */
const LIMIT = 1024 * 1024;
let core: Core;
let server: HttpServer;
let site: string;

beforeAll(async () => {
  core = await startCore({ dataDir: null, version: '1.0.0' });
  site = mkdtempSync(join(tmpdir(), 'brokerdeck-static-'));
  writeFileSync(join(site, 'index.html'), '<!doctype html><title>Brokerdeck</title>');
  server = await startHttpServer({ core, host: '127.0.0.1', port: 0, token, logger: silentLogger, staticDir: site, maxRequestBytes: LIMIT });
});
afterAll(async () => {
  await server.close();
  await core.close();
  rmSync(site, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function raw(path: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; chunks?: Buffer[] } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    // The server may answer and close before the whole body is sent: that is the point.
    req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error)));
    if (opts.chunks) {
      for (const c of opts.chunks) req.write(c);
      req.end();
    } else req.end(opts.body);
  });
}

/** Bytes straight onto a socket: a request line no HTTP client would send. */
function rawSocket(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1', () => socket.write(text));
    let out = '';
    socket.on('data', (c) => (out += c.toString()));
    socket.on('end', () => resolve(out));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
  });
}

async function alive(): Promise<void> {
  const res = await raw('/api/connections', { headers: auth });
  expect(res.status).toBe(200);
}

const host = () => `127.0.0.1:${server.port}`;
const upgrade = (path: string, headers: string[]) =>
  `GET ${path} HTTP/1.1\r\nHost: ${host()}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;

describe('headless mode under hostile input', () => {
  it('survives WebSocket upgrades with a target that is not a path or a malformed cookie, without a token', async () => {
    for (const path of ['//', '//evil.example/api/ws', 'http://[', '*']) {
      const out = await rawSocket(upgrade(path, []));
      expect(out).toMatch(/^HTTP\/1\.1 40\d/);
      await alive();
    }
    for (const cookie of ['brokerdeck_token=%E0%A4%A', 'other_app=50%', '=%', 'brokerdeck_token']) {
      const out = await rawSocket(upgrade('/api/ws', [`Cookie: ${cookie}`]));
      expect(out).toMatch(/^HTTP\/1\.1 401/);
      await alive();
    }
  });

  it('reads its own cookie beside other local apps\' malformed ones, on requests and on the WebSocket', async () => {
    const res = await raw('/api/connections', { headers: { cookie: `other_app=50%; brokerdeck_token=${token}; x=%E0%A4%A` } });
    expect(res.status).toBe(200);
    expect((await raw('/api/connections', { headers: { ...auth, cookie: 'other_app=50%' } })).status).toBe(200);
    expect((await raw('/api/connections', { headers: { cookie: 'brokerdeck_token=%E0%A4%A' } })).status).toBe(401);
    const ws = new WebSocket(`ws://${host()}/api/ws`, { headers: { cookie: `other_app=50%; brokerdeck_token=${token}` } });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.close();
  });

  it('refuses the null origin, on requests with the cookie and on the WebSocket', async () => {
    const cookie = `brokerdeck_token=${token}`;
    const res = await raw('/api/connections/local/queues/q-null', { method: 'PUT', headers: { cookie, origin: 'null', 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body).error.code).toBe('FORBIDDEN');
    expect((await raw('/api/connections/local/queues/q-null', { headers: auth })).status).toBe(404);
    const out = await rawSocket(upgrade('/api/ws', [`Cookie: ${cookie}`, 'Origin: null']));
    expect(out).toMatch(/^HTTP\/1\.1 403/);
  });

  it('takes bodies as application/json only: a text/plain or form body is refused before it is read', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined]) {
      const headers: Record<string, string> = { ...auth, ...(type ? { 'content-type': type } : {}) };
      const res = await raw('/api/connections/local/queues/q-text', { method: 'PUT', headers, body: '{}' });
      expect(res.status).toBe(415);
      expect(JSON.parse(res.body).error).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', field: 'content-type' });
    }
    expect((await raw('/api/connections/local/queues/q-text', { headers: auth })).status).toBe(404);
    const ok = await raw('/api/connections/local/queues/q-text', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json; charset=utf-8' }, body: '{}' });
    expect(ok.status).toBe(200);
  });

  it('answers 400, not 500, to malformed percent-encoding in API and page paths', async () => {
    for (const path of ['/api/connections/local/queues/%E0%A4%A', '/%c0%ae%c0%ae/%E0%A4%A', '/api/connections/%ZZ/queues']) {
      const res = await raw(path, { headers: auth });
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
    }
    const res = await raw('/api/connections/local/queues/%E0%A4%A', { headers: auth });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'queue' });
  });

  it('refuses JSON nested thousands deep with 400 naming the body', async () => {
    const deep = '{"body":"x","headers":{"h":' + '['.repeat(5000) + ']'.repeat(5000) + '}}';
    const res = await raw('/api/connections/local/publish', { method: 'POST', headers: json, body: deep });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).error.message).toMatch(/nested more than \d+ levels/);
    // Over the WebSocket too.
    const ws = new WebSocket(`ws://${host()}/api/ws`, { headers: auth });
    await new Promise((r) => ws.once('open', r));
    const reply = new Promise<{ ok: boolean; error?: { code: string } }>((resolve) => ws.once('message', (d) => resolve(JSON.parse(String(d)))));
    ws.send(`{"t":"call","id":1,"op":"templates/save","input":{"name":"deep","payload":{"a":${'['.repeat(5000)}${']'.repeat(5000)}}}}`);
    expect(await reply).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    ws.close();
    await alive();
  });

  it('answers 413 naming the limit to a body over it, declared or streamed', async () => {
    const big = Buffer.alloc(LIMIT + 1, 0x20);
    const declared = await raw('/api/connections/local/publish', { method: 'POST', headers: json, body: big });
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body).error).toMatchObject({ code: 'TOO_LARGE', field: 'body' });
    expect(JSON.parse(declared.body).error.message).toContain('1 MiB');
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const streamed = await raw('/api/connections/local/publish', { method: 'POST', headers: { ...json, 'transfer-encoding': 'chunked' }, chunks: Array.from({ length: 20 }, () => chunk) });
    expect(streamed.status).toBe(413);
    await alive();
  });

  it('answers 409 to a template renamed onto another one, and 413 to one over the size limit', async () => {
    const a = JSON.parse((await raw('/api/templates', { method: 'POST', headers: json, body: JSON.stringify({ name: 'a', payload: { n: 1 } }) })).body);
    const b = JSON.parse((await raw('/api/templates', { method: 'POST', headers: json, body: JSON.stringify({ name: 'b', payload: { n: 2 } }) })).body);
    expect(a.id).not.toBe(b.id);
    const clash = await raw('/api/templates', { method: 'POST', headers: json, body: JSON.stringify({ id: b.id, name: 'a', payload: { n: 3 } }) });
    expect(clash.status).toBe(409);
    expect(JSON.parse(clash.body).error).toMatchObject({ code: 'CONFLICT', field: 'name' });
    // Saving by name replaces, as before.
    expect((await raw('/api/templates', { method: 'POST', headers: json, body: JSON.stringify({ name: 'a', payload: { n: 4 } }) })).status).toBe(200);
    const list = JSON.parse((await raw('/api/templates', { headers: auth })).body) as Array<{ name: string; payload: { n: number } }>;
    expect(list.map((t) => [t.name, t.payload.n])).toEqual([
      ['a', 4],
      ['b', 2],
    ]);

    // A lone surrogate would be stored as something else (and two ids could become one): refused.
    const lone = await raw('/api/templates', { method: 'POST', headers: json, body: '{"id":"\\udfff","name":"a","payload":{}}' });
    expect(lone.status).toBe(400);
    expect(JSON.parse(lone.body).error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'id' });

    const huge = await core.call('templates/save', { name: 'huge', payload: { body: 'x'.repeat(MAX_TEMPLATE_BYTES) } }).catch((e: unknown) => e);
    expect(huge).toMatchObject({ code: 'TOO_LARGE', field: 'payload' });
  });

  it('keeps a header named __proto__ as a header, end to end, without touching Object.prototype', async () => {
    expect((await raw('/api/connections/local/queues/proto-headers', { method: 'PUT', headers: json, body: '{}' })).status).toBe(200);
    const body = '{"routingKey":"proto-headers","body":"x","properties":{"headers":{"__proto__":{"polluted":1},"constructor":"c","a":1}}}';
    expect((await raw('/api/connections/local/publish', { method: 'POST', headers: json, body })).status).toBe(200);
    const page = JSON.parse((await raw('/api/connections/local/queues/proto-headers/messages', { headers: auth })).body) as { messages: Array<{ properties: { headers: Record<string, unknown> } }> };
    const headers = page.messages[0]!.properties.headers;
    expect(Object.keys(headers).sort()).toEqual(['__proto__', 'a', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(headers, '__proto__')?.value).toEqual({ polluted: 1 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const bad = await raw('/api/connections/local/topics/t/publish', { method: 'POST', headers: json, body: '{"value":"v","headers":{"k":1}}' });
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.status).toBeLessThan(500);
  });

  it(`holds at most ${MAX_SUBSCRIPTIONS} subscriptions per client`, async () => {
    const ws = new WebSocket(`ws://${host()}/api/ws`, { headers: auth });
    await new Promise((r) => ws.once('open', r));
    const results = new Map<number, { ok: boolean; error?: { code: string } }>();
    ws.on('message', (d, isBinary) => {
      if (isBinary) return;
      const f = JSON.parse(String(d));
      if (f.t === 'result') results.set(f.id, f);
    });
    for (let id = 1; id <= MAX_SUBSCRIPTIONS + 1; id++) ws.send(JSON.stringify({ t: 'sub', id, stream: 'jobs', params: {} }));
    await expect.poll(() => results.size).toBe(MAX_SUBSCRIPTIONS + 1);
    expect([...results.values()].filter((r) => r.ok)).toHaveLength(MAX_SUBSCRIPTIONS);
    expect(results.get(MAX_SUBSCRIPTIONS + 1)).toMatchObject({ ok: false, error: { code: 'TOO_LARGE' } });
    // Renewing an id it holds is not a new subscription.
    ws.send(JSON.stringify({ t: 'sub', id: 1, stream: 'jobs', params: {} }));
    ws.send(JSON.stringify({ t: 'unsub', id: 2 }));
    ws.send(JSON.stringify({ t: 'sub', id: 1000, stream: 'jobs', params: {} }));
    await expect.poll(() => results.get(1000)?.ok).toBe(true);
    ws.close();
  });

  it('sends a large live sample to every subscriber as one compressed binary frame', async () => {
    // Long names make the sample pass the 64 KiB at which it is compressed.
    for (let i = 0; i < 400; i++) await core.call('queues/declare', { connectionId: 'local', queue: `sample-${String(i).padStart(4, '0')}-${'n'.repeat(150)}` });
    const frames = await Promise.all(
      [1, 2].map(async () => {
        const ws = new WebSocket(`ws://${host()}/api/ws`, { headers: auth });
        await new Promise((r) => ws.once('open', r));
        const frame = new Promise<Buffer>((resolve) => ws.on('message', (d, isBinary) => isBinary && resolve(d as Buffer)));
        ws.send(JSON.stringify({ t: 'sub', id: 7, stream: 'stats', params: { connectionId: 'local' } }));
        const data = await frame;
        ws.close();
        return data;
      }),
    );
    for (const frame of frames) {
      expect(frame.readUInt32BE(0)).toBe(7);
      const sample = JSON.parse(inflateRawSync(frame.subarray(4)).toString('utf8')) as { queues: Array<{ name: string }> };
      expect(sample.queues.filter((q) => q.name.startsWith('sample-'))).toHaveLength(400);
    }
  });
});

describe('the data folder', () => {
  it('is created 0700 with its databases 0600, and a folder and files left wider are tightened', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'bd-perm-'));
    try {
      const fresh = join(parent, 'fresh');
      const c = await startCore({ dataDir: fresh, version: '1.0.0' });
      await c.call('queues/declare', { connectionId: 'local', queue: 'q', durable: true });
      await c.call('publish', { connectionId: 'local', routingKey: 'q', body: 'secret', properties: { deliveryMode: 2 } });
      await c.close();
      expect(statSync(fresh).mode & 0o777).toBe(0o700);
      for (const f of ['brokerdeck.db', 'app.db', 'secret.key']) expect(statSync(join(fresh, f)).mode & 0o777, f).toBe(0o600);

      const old = join(parent, 'old');
      mkdirSync(old, { mode: 0o755 });
      chmodSync(old, 0o755);
      const c1 = await startCore({ dataDir: old, version: '1.0.0' });
      await c1.close();
      chmodSync(old, 0o755);
      for (const f of ['brokerdeck.db', 'app.db']) chmodSync(join(old, f), 0o644);
      const c2 = await startCore({ dataDir: old, version: '1.0.0' });
      await c2.close();
      expect(statSync(old).mode & 0o777).toBe(0o700);
      for (const f of ['brokerdeck.db', 'app.db']) expect(statSync(join(old, f)).mode & 0o777, f).toBe(0o600);

      // A folder that holds other things keeps its mode; Brokerdeck's files in it are private.
      const shared = join(parent, 'shared');
      mkdirSync(shared, { mode: 0o755 });
      chmodSync(shared, 0o755);
      writeFileSync(join(shared, 'notes.txt'), 'mine');
      const c3 = await startCore({ dataDir: shared, version: '1.0.0' });
      await c3.close();
      expect(statSync(shared).mode & 0o777).toBe(0o755);
      expect(statSync(join(shared, 'brokerdeck.db')).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
