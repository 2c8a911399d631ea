/**
 * Virtual hosts through the API: every route keeps addressing `/` without a
 * vhost, `?vhost=` (or `vhost` in a body) addresses another, and the vhosts
 * themselves are created and deleted under /api/connections/local/vhosts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCore, type Core } from '../../../src-main/core/core.js';
import { silentLogger } from '../../../src-main/ground/logger.js';
import { startHttpServer, type HttpServer } from '../../../src-main/transports/http/server.js';

const token = 'vhosts-token';
let core: Core;
let server: HttpServer;

beforeAll(async () => {
  core = await startCore({ dataDir: null, version: '9.9.9', diskFreeLimit: 0 });
  server = await startHttpServer({ core, host: '127.0.0.1', port: 0, token, logger: silentLogger });
});
afterAll(async () => {
  await server?.close();
  await core?.close();
});

async function http(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: await res.json() };
}

describe('virtual hosts through the API', () => {
  it('are created, addressed and deleted, while routes without a vhost stay on "/"', async () => {
    expect((await http('GET', '/api/connections/local/vhosts')).body.map((v: { name: string }) => v.name)).toEqual(['/']);
    const created = await http('PUT', '/api/connections/local/vhosts/dev', { description: 'team' });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ name: 'dev', description: 'team', messages: 0 });

    expect((await http('PUT', '/api/connections/local/queues/only-in-dev?vhost=dev', { durable: true })).status).toBe(200);
    const published = await http('POST', '/api/connections/local/publish', { vhost: 'dev', routingKey: 'only-in-dev', body: 'hello', count: 3 });
    expect(published.body.published).toBe(3);

    const inDev = await http('GET', '/api/connections/local/queues?vhost=dev');
    expect(inDev.body.map((q: { name: string }) => q.name)).toContain('only-in-dev');
    const onDefault = await http('GET', '/api/connections/local/queues');
    expect(onDefault.body.map((q: { name: string }) => q.name)).not.toContain('only-in-dev');
    const onSlash = await http('GET', `/api/connections/local/queues?vhost=${encodeURIComponent('/')}`);
    expect(onSlash.body).toEqual(onDefault.body);

    const messages = await http('GET', '/api/connections/local/queues/only-in-dev/messages?vhost=dev');
    expect(messages.body.messages.map((m: { body: string }) => m.body)).toEqual(['hello', 'hello', 'hello']);
    expect((await http('GET', '/api/connections/local/vhosts')).body).toContainEqual(expect.objectContaining({ name: 'dev', messages: 3 }));

    // A re-drive in a vhost is found by id, as any other job.
    await http('PUT', '/api/connections/local/queues/back?vhost=dev', {});
    const job = await http('POST', '/api/connections/local/redrives', { vhost: 'dev', source: 'only-in-dev', all: true, target: { exchange: '', routingKey: 'back' } });
    expect(job.status).toBeLessThan(300);
    await expect.poll(async () => (await http('GET', `/api/redrives/${job.body.id}`)).body.state).toBe('completed');
    expect((await http('GET', '/api/connections/local/queues/back?vhost=dev')).body.messages).toBe(3);

    expect((await http('DELETE', '/api/connections/local/vhosts/dev')).body).toEqual({ deleted: true });
    const gone = await http('GET', '/api/connections/local/queues?vhost=dev');
    expect(gone.status).toBe(404);
    expect(gone.body.error).toMatchObject({ field: 'vhost' });
  });

  it('refuses what cannot be, naming the field', async () => {
    const unknown = await http('GET', '/api/connections/local/exchanges?vhost=nowhere');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toMatch(/virtual host "nowhere" does not exist/);
    const root = await http('DELETE', `/api/connections/local/vhosts/${encodeURIComponent('/')}`);
    expect(root.status).toBe(409);
    expect(root.body.error).toMatchObject({ field: 'vhost' });
    const long = await http('PUT', `/api/connections/local/vhosts/${'v'.repeat(256)}`, {});
    expect(long.status).toBe(400);
    expect(long.body.error.message).toMatch(/vhost/);
  });

  it('refuses a vhost on connections that have none or work in another, naming the field', async () => {
    // Neither connection is reached: the vhost is checked before anything is asked of the broker.
    const kafka = await http('POST', '/api/connections', { kind: 'kafka', name: 'k', brokers: ['127.0.0.1:1'] });
    const refused = await http('GET', `/api/connections/${kafka.body.id}/topics?vhost=dev`);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ field: 'vhost', message: expect.stringMatching(/has no virtual hosts/) });

    const rabbit = await http('POST', '/api/connections', { kind: 'rabbitmq', name: 'r', amqpUrl: 'amqp://guest:guest@127.0.0.1:1/team-a' });
    const other = await http('GET', `/api/connections/${rabbit.body.id}/queues?vhost=team-b`);
    expect(other.status).toBe(400);
    expect(other.body.error).toMatchObject({ field: 'vhost', message: expect.stringMatching(/"team-a" only/) });
    for (const id of [kafka.body.id, rabbit.body.id]) await http('DELETE', `/api/connections/${id}`);
  });

  it('keeps the statistics of each vhost apart', async () => {
    await http('PUT', '/api/connections/local/vhosts/stats', {});
    await http('PUT', '/api/connections/local/queues/counted?vhost=stats', {});
    const snapshot = await new Promise<{ queues: { name: string }[] }>((resolve) => {
      const off = core.subscribe('stats', { connectionId: 'local', vhost: 'stats' }, (event) => {
        off();
        resolve(event as never);
      });
    });
    expect(snapshot.queues.map((q) => q.name)).toEqual(['counted']);
  });
});
