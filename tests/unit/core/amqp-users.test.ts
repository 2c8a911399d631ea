/**
 * The AMQP listener's users and permissions through the HTTP API, with the
 * routes of RabbitMQ's management API (`/users/{name}`, `/permissions/{vhost}/{user}`):
 * a user added there logs in with amqplib, sees only what its regular
 * expressions allow, loses access from its next operation when its permissions
 * are cleared, and is disconnected with 320 `user '…' is deleted` when it is
 * deleted, as RabbitMQ does. Passwords and their hashes never come back.
 */
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AmqpUserInfo, ListenerInfo } from '../../../src-main/contract/types.js';
import { startCore, type Core } from '../../../src-main/core/core.js';
import { silentLogger } from '../../../src-main/ground/logger.js';
import { startHttpServer, type HttpServer } from '../../../src-main/transports/http/server.js';

const token = 'amqp-users-token';
let core: Core;
let server: HttpServer;
let port: number;

beforeAll(async () => {
  core = await startCore({ dataDir: null, version: '9.9.9', diskFreeLimit: 0, listeners: { amqp: { port: 0, dataDir: null } } });
  server = await startHttpServer({ core, host: '127.0.0.1', port: 0, token, logger: silentLogger });
  port = ((await core.call('listeners/list', {})) as ListenerInfo[]).find((l) => l.protocol === 'amqp')!.port!;
});
afterAll(async () => {
  await server?.close();
  await core?.close();
});

async function http(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}
const users = async () => (await http('GET', '/api/listeners/amqp/users')).body as AmqpUserInfo[];
const U = '/api/listeners/amqp';

describe("the AMQP listener's users", () => {
  it('lists guest, loopback-only with every permission on /', async () => {
    expect(await users()).toEqual([
      { name: 'guest', tags: ['administrator'], permissions: [{ vhost: '/', configure: '.*', write: '.*', read: '.*' }], loopbackOnly: true, connections: 0 },
    ]);
  });

  it('adds a user whose regular expressions decide what it may do, and never shows a password', async () => {
    const put = await http('PUT', `${U}/users/orders-app`, { password: 's3cret-pw', tags: ['monitoring'] });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({ name: 'orders-app', tags: ['monitoring'], permissions: [], loopbackOnly: false, connections: 0 });
    expect(JSON.stringify(await users())).not.toMatch(/s3cret|passwordHash/);

    // No permission on any vhost yet: the login works, connection.open is answered with
    // connection.close (530 NOT_ALLOWED in RabbitMQ), which amqplib reports as such.
    const refused = await amqp.connect(`amqp://orders-app:s3cret-pw@127.0.0.1:${port}`).then(
      () => null,
      (e: Error) => e,
    );
    expect(refused?.message).toMatch(/Expected ConnectionOpenOk; got <ConnectionClose/);

    const perm = await http('PUT', `${U}/permissions/${encodeURIComponent('/')}/orders-app`, { configure: '^orders\\.', write: '^orders\\.', read: '.*' });
    expect(perm.status).toBe(200);
    expect(perm.body.permissions).toEqual([{ vhost: '/', configure: '^orders\\.', write: '^orders\\.', read: '.*' }]);

    const client = await amqp.connect(`amqp://orders-app:s3cret-pw@127.0.0.1:${port}`);
    client.on('error', () => undefined);
    try {
      const ch = await client.createChannel();
      ch.on('error', () => undefined);
      await ch.assertQueue('orders.created', { durable: false });
      await expect.poll(async () => (await users()).find((u) => u.name === 'orders-app')?.connections).toBe(1);

      const other = await client.createChannel();
      other.on('error', () => undefined);
      await expect(other.assertQueue('billing.created', { durable: false })).rejects.toThrow(/403 \(ACCESS-REFUSED\).*access to queue 'billing\.created' in vhost '\/' refused for user 'orders-app'/);

      // Clearing takes effect on the next operation; the connection stays open, as in RabbitMQ.
      expect((await http('DELETE', `${U}/permissions/%2F/orders-app`)).status).toBe(200);
      await expect(ch.assertQueue('orders.updated', { durable: false })).rejects.toThrow(/ACCESS-REFUSED/);

      // Deleting the user closes its connections with 320.
      const closed = new Promise<Error | undefined>((resolve) => client.once('close', resolve));
      expect((await http('DELETE', `${U}/users/orders-app`)).status).toBe(200);
      expect((await closed)?.message).toMatch(/320 \(CONNECTION-FORCED\) with message "CONNECTION_FORCED - user 'orders-app' is deleted"/);
    } finally {
      await client.close().catch(() => undefined);
    }
    expect((await users()).map((u) => u.name)).toEqual(['guest']);
  });

  it('names the field and the problem for bad input, and refuses changes while read-only', async () => {
    const badRegex = await http('PUT', `${U}/users/guest`, { password: '' });
    expect(badRegex.status).toBe(400);
    expect(badRegex.body.error.message).toMatch(/password must not be empty/);

    const pattern = await http('PUT', `${U}/permissions/%2F/guest`, { configure: '(', write: '.*', read: '.*' });
    expect(pattern.status).toBe(400);
    expect(pattern.body.error.message).toMatch(/configure is not a valid regular expression/);

    const noVhost = await http('PUT', `${U}/permissions/nowhere/guest`, { configure: '.*', write: '.*', read: '.*' });
    expect(noVhost.status).toBe(404);
    expect(noVhost.body.error).toMatchObject({ field: 'vhost', message: 'virtual host "nowhere" does not exist' });

    const noUser = await http('DELETE', `${U}/users/nobody`);
    expect(noUser.status).toBe(404);
    expect(noUser.body.error.field).toBe('user');

    const control = await http('PUT', `${U}/users/${encodeURIComponent('a\u0001b')}`, { password: 'x' });
    expect(control.status).toBe(400);
    expect(control.body.error.message).toMatch(/control characters/);

    await core.call('connections/setReadOnly', { connectionId: 'local', readOnly: true });
    const ro = await http('PUT', `${U}/users/someone`, { password: 'pw' });
    await core.call('connections/setReadOnly', { connectionId: 'local', readOnly: false });
    expect(ro.status).toBe(403);
    expect(ro.body.error.message).toContain('read-only');
    expect((await users()).map((u) => u.name)).toEqual(['guest']);
  });

  it('drops the permissions of a deleted virtual host', async () => {
    await http('PUT', '/api/connections/local/vhosts/staging', {});
    await http('PUT', `${U}/users/stager`, { password: 'pw' });
    await http('PUT', `${U}/permissions/staging/stager`, { configure: '.*', write: '.*', read: '.*' });
    expect((await users()).find((u) => u.name === 'stager')?.permissions.map((p) => p.vhost)).toEqual(['staging']);
    await http('DELETE', '/api/connections/local/vhosts/staging');
    await expect.poll(async () => (await users()).find((u) => u.name === 'stager')?.permissions).toEqual([]);
  });
});
