import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { WebSocket } from 'ws';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCore, type Core } from '../../../src-main/core/core.js';
import { startHttpServer, type HttpServer } from '../../../src-main/transports/http/server.js';
import { silentLogger } from '../../../src-main/ground/logger.js';

const token = 'test-token-123';
let core: Core;
let server: HttpServer;
let site: string;

beforeAll(async () => {
  core = await startCore({ dataDir: null, version: '9.9.9' });
  // A stand-in for the built renderer.
  site = mkdtempSync(join(tmpdir(), 'brokerdeck-static-'));
  mkdirSync(join(site, 'assets'));
  writeFileSync(join(site, 'index.html'), '<!doctype html><title>Brokerdeck</title><script type="module" crossorigin src="./assets/index-abc123.js"></script>');
  writeFileSync(join(site, 'boot.js'), '/* boot */');
  writeFileSync(join(site, 'assets', 'index-abc123.js'), 'export {};');
  server = await startHttpServer({ core, host: '127.0.0.1', port: 0, token, logger: silentLogger, staticDir: site });
});
afterAll(async () => {
  await server.close();
  await core.close();
  rmSync(site, { recursive: true, force: true });
});

/** Raw request, so Host and Origin can be set to anything (fetch forbids it). */
function raw(path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    const req = request(`${server.url}${path}`, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}
const auth = { authorization: `Bearer ${token}` };

describe('HTTP transport', () => {
  it('answers health without a token', async () => {
    const res = await raw('/api/health');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'ok', version: '9.9.9' });
  });

  it('refuses API routes without the token or with a wrong one, with a JSON error', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { cookie: 'brokerdeck_token=wrong' }] as Array<Record<string, string>>) {
      const res = await raw('/api/connections', { headers });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body).error.code).toBe('UNAUTHORIZED');
    }
  });

  it('accepts the bearer token and lists the embedded broker', async () => {
    const res = await raw('/api/connections', { headers: auth });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual(expect.arrayContaining([expect.objectContaining({ id: 'local', kind: 'embedded' })]));
  });

  it('turns the token URL into an HttpOnly cookie, served with the page', async () => {
    const res = await raw(`/?token=${token}`);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.body).toContain('<title>Brokerdeck</title>');
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    const withCookie = await raw('/api/connections', { headers: { cookie: cookie.split(';')[0]! } });
    expect(withCookie.status).toBe(200);
    expect((await raw('/?token=wrong')).status).toBe(401);
  });

  it('refuses a foreign Host or Origin (DNS rebinding)', async () => {
    const host = await raw('/api/connections', { headers: { ...auth, host: 'evil.example:80' } });
    expect(host.status).toBe(403);
    const origin = await raw('/api/connections', { headers: { ...auth, origin: 'http://evil.example' } });
    expect(origin.status).toBe(403);
    const same = await raw('/api/connections', { headers: { ...auth, origin: server.url } });
    expect(same.status).toBe(200);
  });

  it('names the problem with a body that is not JSON, and with an invalid field', async () => {
    const bad = await raw('/api/connections/local/publish', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"body": ' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'body' });
    const field = await raw('/api/connections/local/publish', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ body: 'x', count: 0 }),
    });
    expect(field.status).toBe(400);
    expect(JSON.parse(field.body).error).toMatchObject({ field: 'count', message: 'count: count must be at least 1' });
  });

  it('answers 404 naming what is missing', async () => {
    const res = await raw('/api/connections/nope/queues', { headers: auth });
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body).error.message).toContain('"nope"');
    expect((await raw('/api/nothing-here', { headers: auth })).status).toBe(404);
  });

  it('looks a re-drive up in every connection: one the embedded broker does not know is not an error there', async () => {
    // Every connection is asked in turn; the embedded broker, asked first, must answer "not mine"
    // so the jobs of RabbitMQ and Kafka connections are found after it.
    for (const method of ['GET', 'DELETE']) {
      const res = await raw('/api/redrives/kr-elsewhere', { method, headers: auth });
      expect(res.status).toBe(404);
      expect(JSON.parse(res.body).error).toEqual({ code: 'NOT_FOUND', message: 're-drive "kr-elsewhere" does not exist', field: 'id' });
    }
  });

  it('serves an OpenAPI document that lists the routes, to a client with the token', async () => {
    expect((await raw('/api/openapi.json')).status).toBe(401);
    const res = await raw('/api/openapi.json', { headers: auth });
    expect(res.status).toBe(200);
    const doc = JSON.parse(res.body);
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.paths['/api/connections/{connectionId}/queues/{queue}'].put.operationId).toBe('queues/declare');
  });

  it('speaks the wire protocol over an authenticated WebSocket', async () => {
    const wsUrl = server.url.replace('http', 'ws') + '/api/ws';
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(wsUrl);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
    });
    expect(refused).toBe(401);

    const ws = new WebSocket(wsUrl, { headers: auth });
    await new Promise((r) => ws.once('open', r));
    const frames: unknown[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    ws.send(JSON.stringify({ t: 'call', id: 1, op: 'connections/list', input: {} }));
    ws.send('not json');
    ws.send(JSON.stringify({ t: 'call', id: 2, op: 'no/such', input: {} }));
    await expect.poll(() => frames.length).toBe(3);
    expect(frames).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ t: 'result', id: 1, ok: true }),
        expect.objectContaining({ t: 'result', id: -1, ok: false, error: expect.objectContaining({ code: 'INVALID_ARGUMENT' }) }),
        expect.objectContaining({ t: 'result', id: 2, ok: false, error: expect.objectContaining({ code: 'NOT_FOUND' }) }),
      ]),
    );
    // Frames over 64 KiB (a live sample of many queues) may be compressed.
    expect(ws.extensions).toContain('permessage-deflate');
    ws.close();
  });

  it('serves the renderer: the page with its CSP and never cached, hashed bundles for good, boot.js revalidated', async () => {
    const page = await raw('/', { headers: auth });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['cache-control']).toBe('no-store');
    // The bundle is announced before the HTML is parsed.
    expect(page.headers.link).toBe('</assets/index-abc123.js>; rel=modulepreload; crossorigin');
    const bundle = await raw('/assets/index-abc123.js');
    expect(bundle.headers['cache-control']).toContain('immutable');
    const boot = await raw('/boot.js');
    expect(boot.status).toBe(200);
    expect(boot.headers['content-type']).toMatch(/javascript/);
    expect(boot.headers['cache-control']).toBe('no-cache');
  });
});
