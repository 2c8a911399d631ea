/**
 * Redis connections through the core: Test connection tells apart an
 * unreachable server, a refused password, a missing password and a user
 * without permission; the target never shows the password; a database number
 * is honoured.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCore, type Core } from '../../../src-main/core/core.js';
import { freePortSync } from './ports.js';
import { useRedisServer } from '../../redis/servers.js';
import { unique } from './helpers.js';

const PASSWORD = 'p@ss w0rd/secret';
const secured = useRedisServer({ password: PASSWORD });
const plain = useRedisServer();
const tls = useRedisServer({ tls: true });

let core: Core;
beforeAll(async () => {
  core = await startCore({ dataDir: null, version: '0.0.0-test' });
});
afterAll(async () => {
  await core?.close();
});

const withPassword = (url: string, user: string, password: string) => url.replace('redis://', `redis://${encodeURIComponent(user)}:${encodeURIComponent(password)}@`);

describe('Test connection', () => {
  it('connects with the password and says which Redis answered', async (ctx) => {
    const s = secured.require(ctx);
    const r = await core.call('connections/test', { kind: 'redis', name: 't', url: withPassword(s.url, 'default', PASSWORD) });
    expect(r).toMatchObject({ ok: true, details: { version: expect.stringMatching(/^\d+\.\d+/) } });
    expect(JSON.stringify(r)).not.toContain('w0rd');
  });

  it('tells a wrong password (WRONGPASS) from a missing one (NOAUTH)', async (ctx) => {
    const s = secured.require(ctx);
    const wrong = await core.call('connections/test', { kind: 'redis', name: 't', url: withPassword(s.url, 'default', 'not-it') });
    expect(wrong).toMatchObject({ ok: false, problem: 'auth_failed', message: expect.stringContaining('refused') });
    expect(wrong.message).not.toContain('not-it');
    const missing = await core.call('connections/test', { kind: 'redis', name: 't', url: s.url });
    expect(missing).toMatchObject({ ok: false, problem: 'auth_failed', message: expect.stringContaining('NOAUTH') });
  });

  it('says unreachable for a port nothing listens on', async () => {
    const port = await freePortSync();
    const r = await core.call('connections/test', { kind: 'redis', name: 't', url: `redis://127.0.0.1:${port}` });
    expect(r).toMatchObject({ ok: false, problem: 'unreachable', message: expect.stringContaining(`127.0.0.1:${port}`) });
  });

  it('says forbidden for a user whose ACL refuses SCAN (NOPERM)', async (ctx) => {
    const s = plain.require(ctx);
    const admin = new Redis(s.url);
    const user = unique('reader');
    try {
      await admin.call('ACL', 'SETUSER', user, 'on', '>pw-123', '~*', '+ping', '+info', '+hello', '+client');
      const r = await core.call('connections/test', { kind: 'redis', name: 't', url: withPassword(s.url, user, 'pw-123') });
      expect(r).toMatchObject({ ok: false, problem: 'forbidden', message: expect.stringContaining('NOPERM') });
    } finally {
      await admin.call('ACL', 'DELUSER', user);
      admin.disconnect();
    }
  });

  it('refuses a URL that is not redis:// with the field named', async () => {
    await expect(core.call('connections/test', { kind: 'redis', name: 't', url: 'http://127.0.0.1:6379' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'url' });
    const r = await core.call('connections/test', { kind: 'redis', name: 't', url: 'redis://127.0.0.1:6379/abc' });
    expect(r).toMatchObject({ ok: false, problem: 'config_error', message: expect.stringContaining('database number') });
  });
});

describe('TLS', () => {
  it('connects over rediss:// with the server\'s CA, refuses an unknown certificate, and works with verification off', async (ctx) => {
    const s = tls.require(ctx);
    expect(s.url).toMatch(/^rediss:/);
    const ok = await core.call('connections/test', { kind: 'redis', name: 't', url: s.url, tls: { ca: s.ca } });
    expect(ok).toMatchObject({ ok: true });
    const unknown = await core.call('connections/test', { kind: 'redis', name: 't', url: s.url });
    expect(unknown).toMatchObject({ ok: false, problem: 'tls_error', message: expect.stringMatching(/certificate/i) });
    const plainText = await core.call('connections/test', { kind: 'redis', name: 't', url: s.url.replace('rediss:', 'redis:') });
    expect(plainText.ok).toBe(false);
    const { id } = await core.call('connections/create', { kind: 'redis', name: 'tls', url: s.url, tls: { insecureSkipVerify: true } });
    const stream = unique('tls');
    await core.call('topics/produce', { connectionId: id, topic: stream, value: 'over TLS' });
    const page = await core.call('topics/messages', { connectionId: id, topic: stream });
    expect(page.messages.map((m) => m.value)).toEqual(['over TLS']);
    await core.call('connections/delete', { connectionId: id });
  });
});

describe('a saved connection', () => {
  it('shows its target without the password and works in the database the URL names', async (ctx) => {
    const s = secured.require(ctx);
    const { id } = await core.call('connections/create', { kind: 'redis', name: 'db 3', url: `${withPassword(s.url, 'default', PASSWORD)}/3` });
    const info = await core.call('connections/get', { connectionId: id });
    expect(info.target).toMatch(/^redis:\/\/default@127\.0\.0\.1:\d+\/3$/);
    expect(JSON.stringify(info)).not.toContain('w0rd');
    expect(info.capabilities).toEqual(expect.arrayContaining(['topics', 'groups', 'queues', 'publish', 'redrive', 'positions']));
    const stream = unique('db3');
    await core.call('topics/produce', { connectionId: id, topic: stream, value: 'in db 3' });
    const raw = new Redis(withPassword(s.url, 'default', PASSWORD));
    try {
      await raw.select(3);
      expect(await raw.xlen(stream)).toBe(1);
      await raw.select(0);
      expect(await raw.exists(stream)).toBe(0);
    } finally {
      raw.disconnect();
    }
    await core.call('connections/delete', { connectionId: id });
  });

  it('a saved URL that cannot be used gives a connection that says why, and reaches no server', async () => {
    const { id } = await core.call('connections/create', { kind: 'redis', name: 'bad url', url: 'redis://127.0.0.1:6379/first' });
    expect(await core.call('connections/get', { connectionId: id })).toMatchObject({ status: 'error', error: expect.stringContaining('database number') });
    await expect(core.call('topics/list', { connectionId: id })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'url' });
    await core.call('connections/delete', { connectionId: id });
  });

  it('a connection whose password is wrong says so on use, without the password', async (ctx) => {
    const s = secured.require(ctx);
    const { id } = await core.call('connections/create', { kind: 'redis', name: 'bad', url: withPassword(s.url, 'default', 'wrong-one') });
    const error = await core.call('topics/list', { connectionId: id }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(String((error as Error).message)).not.toContain('wrong-one');
    await expect.poll(async () => (await core.call('connections/get', { connectionId: id })).status).toBe('error');
    await core.call('connections/delete', { connectionId: id });
  });
});
