/**
 * The Kafka listener's SASL users through the HTTP API, with a real listener
 * in-process and a real client (@platformatic/kafka): without users clients
 * connect without SASL; a user added through the API authenticates with the
 * SCRAM mechanisms it was given (and PLAIN); a wrong password, a mechanism it
 * has no credential for, a changed password and a deleted user are refused
 * for new connections while an authenticated connection stays, as in Kafka;
 * deleting the last user opens the listener again. kafka-users.json stays
 * mode 0600, and no password or salted material is in any answer or log line.
 * Bad input is refused with the field named.
 */
import { Admin } from '@platformatic/kafka';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaClientInfo, KafkaUserInfo, KafkaUsersInfo, ListenerInfo } from '../../../src-main/contract/types.js';
import { startCore, type Core } from '../../../src-main/core/core.js';
import { silentLogger, type Logger } from '../../../src-main/ground/logger.js';
import { startHttpServer, type HttpServer } from '../../../src-main/transports/http/server.js';

const token = 'kafka-users-token';
const PASSWORD = 'orders-pw-never-logged';
const NEW_PASSWORD = 'orders-pw-changed-too';
let dir: string;
let core: Core;
let server: HttpServer;
let bootstrap: string;
const logs: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bd-kafka-users-'));
  const record = (level: string) => (message: string, fields?: Record<string, unknown>) => void logs.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
  const logger: Logger = { info: record('info'), warn: record('warn'), error: record('error') };
  core = await startCore({ dataDir: dir, version: '9.9.9', diskFreeLimit: 0, logger, listeners: { kafka: { port: 0, dataDir: dir } } });
  server = await startHttpServer({ core, host: '127.0.0.1', port: 0, token, logger: silentLogger });
  const port = ((await core.call('listeners/list', {})) as ListenerInfo[]).find((l) => l.protocol === 'kafka')!.port!;
  bootstrap = `127.0.0.1:${port}`;
});
afterAll(async () => {
  await server?.close();
  await core?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function http(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), text };
}
const U = '/api/listeners/kafka/users';
const listed = async () => (await http('GET', U)).body as KafkaUsersInfo;
const user = async (name: string) => (await listed()).users.find((u) => u.name === name);

type Mechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

/** A fresh client with its own connection; resolves with the topic list, rejects when the broker refuses it. */
async function tryClient(sasl?: { mechanism: Mechanism; username: string; password: string }): Promise<string[]> {
  const admin = new Admin({ clientId: 'kafka-users-test', bootstrapBrokers: [bootstrap], retries: 0, connectTimeout: 5000, ...(sasl ? { sasl } : {}) });
  try {
    return await admin.listTopics();
  } finally {
    await admin.close().catch(() => undefined);
  }
}
/** The codes and messages of an error and everything under it (@platformatic/kafka nests them). */
function chain(e: any, depth = 0): string {
  if (!e || depth > 6) return '';
  return `${e.code ?? ''} ${e.message}\n${(e.errors ?? []).map((x: unknown) => chain(x, depth + 1)).join('')}${chain(e.cause, depth + 1)}`;
}
/** 'refused' when the broker answered SASL_AUTHENTICATION_FAILED (or, without SASL, closed the connection at the first request). */
const refused = (sasl?: { mechanism: Mechanism; username: string; password: string }) =>
  tryClient(sasl).then(
    () => 'accepted',
    (e: unknown) => {
      const text = chain(e);
      const expected = sasl ? /PLT_KFK_AUTHENTICATION SASL authentication failed/ : /PLT_KFK_NETWORK Connection closed/;
      return expected.test(text) ? 'refused' : text;
    },
  );

describe("the Kafka listener's users", () => {
  it('without users, says clients connect without SASL, and lets one in', async () => {
    expect(await listed()).toEqual({ users: [], saslRequired: false, problem: null });
    await expect(tryClient()).resolves.toBeInstanceOf(Array);
  });

  it('adds a user that authenticates with the mechanism it was given; a wrong password and another mechanism are refused', async () => {
    const put = await http('PUT', `${U}/orders-app`, { password: PASSWORD, mechanisms: ['SCRAM-SHA-256'], iterations: 8192 });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({ name: 'orders-app', credentials: [{ mechanism: 'SCRAM-SHA-256', iterations: 8192 }], connections: 0 });
    expect((await listed()).saslRequired).toBe(true);

    const file = join(dir, 'kafka-users.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).not.toContain(PASSWORD);

    await expect(tryClient({ mechanism: 'SCRAM-SHA-256', username: 'orders-app', password: PASSWORD })).resolves.toBeInstanceOf(Array);
    await expect(tryClient({ mechanism: 'PLAIN', username: 'orders-app', password: PASSWORD })).resolves.toBeInstanceOf(Array);
    expect(await refused({ mechanism: 'SCRAM-SHA-256', username: 'orders-app', password: 'not-the-password' })).toBe('refused');
    expect(await refused({ mechanism: 'SCRAM-SHA-512', username: 'orders-app', password: PASSWORD })).toBe('refused');
    expect(await refused()).toBe('refused');

    // SCRAM-SHA-512 added beside it, with Kafka's default iterations; the SHA-256 credential is kept.
    const both = await http('PUT', `${U}/orders-app`, { password: PASSWORD, mechanisms: ['SCRAM-SHA-512'] });
    expect(both.body.credentials).toEqual([
      { mechanism: 'SCRAM-SHA-256', iterations: 8192 },
      { mechanism: 'SCRAM-SHA-512', iterations: 4096 },
    ]);
    await expect(tryClient({ mechanism: 'SCRAM-SHA-512', username: 'orders-app', password: PASSWORD })).resolves.toBeInstanceOf(Array);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('changing the password refuses the old one for new connections at once; an authenticated connection stays', async () => {
    const admin = new Admin({ clientId: 'kept-session', bootstrapBrokers: [bootstrap], retries: 0, sasl: { mechanism: 'SCRAM-SHA-256', username: 'orders-app', password: PASSWORD } });
    try {
      await admin.listTopics();
      await expect.poll(async () => (await user('orders-app'))?.connections).toBeGreaterThan(0);
      const clients = (await http('GET', '/api/listeners/kafka/connections')).body as KafkaClientInfo[];
      expect(clients.find((c) => c.clientId === 'kept-session')?.user).toBe('orders-app');

      expect((await http('PUT', `${U}/orders-app`, { password: NEW_PASSWORD })).status).toBe(200);
      expect(await refused({ mechanism: 'SCRAM-SHA-256', username: 'orders-app', password: PASSWORD })).toBe('refused');
      expect(await refused({ mechanism: 'SCRAM-SHA-512', username: 'orders-app', password: PASSWORD })).toBe('refused');
      await expect(tryClient({ mechanism: 'SCRAM-SHA-512', username: 'orders-app', password: NEW_PASSWORD })).resolves.toBeInstanceOf(Array);
      // The session authenticated before the change goes on, as Kafka's does until it re-authenticates.
      await expect(admin.listTopics()).resolves.toBeInstanceOf(Array);
    } finally {
      await admin.close().catch(() => undefined);
    }
  });

  it('deletes one credential, then the user: refused at once; the last one gone, clients connect without SASL again', async () => {
    expect((await http('DELETE', `${U}/orders-app?mechanism=SCRAM-SHA-512`)).status).toBe(200);
    expect((await user('orders-app'))?.credentials.map((c) => c.mechanism)).toEqual(['SCRAM-SHA-256']);
    expect(await refused({ mechanism: 'SCRAM-SHA-512', username: 'orders-app', password: NEW_PASSWORD })).toBe('refused');
    const missing = await http('DELETE', `${U}/orders-app?mechanism=SCRAM-SHA-512`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.field).toBe('mechanism');

    expect((await http('PUT', `${U}/billing`, { password: 'billing-pw-1' })).status).toBe(200);
    expect((await http('DELETE', `${U}/orders-app`)).status).toBe(200);
    expect(await refused({ mechanism: 'SCRAM-SHA-256', username: 'orders-app', password: NEW_PASSWORD })).toBe('refused');
    expect(await refused({ mechanism: 'PLAIN', username: 'orders-app', password: NEW_PASSWORD })).toBe('refused');
    await expect(tryClient({ mechanism: 'SCRAM-SHA-256', username: 'billing', password: 'billing-pw-1' })).resolves.toBeInstanceOf(Array);

    expect((await http('DELETE', `${U}/billing`)).status).toBe(200);
    expect(await listed()).toEqual({ users: [], saslRequired: false, problem: null });
    await expect(tryClient()).resolves.toBeInstanceOf(Array);

    const nobody = await http('DELETE', `${U}/orders-app`);
    expect(nobody.status).toBe(404);
    expect(nobody.body.error).toMatchObject({ field: 'user', message: 'user "orders-app" does not exist' });
  });

  it('names the field and the problem for bad input, and refuses changes while read-only', async () => {
    const cases: Array<[string, unknown, string, RegExp]> = [
      ['a%3Db', { password: 'long-enough' }, 'user', /must not contain "=" or ","/],
      ['a%2Cb', { password: 'long-enough' }, 'user', /must not contain "=" or ","/],
      ['a%01b', { password: 'long-enough' }, 'user', /control characters/],
      ['x'.repeat(256), { password: 'long-enough' }, 'user', /at most 255 bytes/],
      ['ok', {}, 'password', /password must be a string/],
      ['ok', { password: '' }, 'password', /password must not be empty/],
      ['ok', { password: 'short' }, 'password', /at least 8 characters/],
      ['ok', { password: 'long-enough', mechanisms: ['SCRAM-SHA-1'] }, 'mechanisms.0', /SCRAM-SHA-256 or SCRAM-SHA-512/],
      ['ok', { password: 'long-enough', mechanisms: [] }, 'mechanisms', /SCRAM-SHA-256, SCRAM-SHA-512 or both/],
      ['ok', { password: 'long-enough', mechanisms: ['SCRAM-SHA-256', 'SCRAM-SHA-256'] }, 'mechanisms', /twice/],
      ['ok', { password: 'long-enough', iterations: 1000 }, 'iterations', /at least 4096/],
      ['ok', { password: 'long-enough', iterations: 100_000 }, 'iterations', /at most 16384/],
      ['ok', { password: 'long-enough', iterations: 4096.5 }, 'iterations', /integer/],
    ];
    for (const [name, body, field, message] of cases) {
      const r = await http('PUT', `${U}/${name}`, body);
      expect(r.status, `${name} ${JSON.stringify(body)}`).toBe(400);
      expect(r.body.error.field).toBe(field);
      expect(r.body.error.message).toMatch(message);
    }
    const empty = await core.call('listeners/kafkaUserPut', { user: '', password: 'long-enough' }).catch((e: unknown) => e);
    expect(empty).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'user', message: 'user: user must not be empty' });
    const mechanism = await http('DELETE', `${U}/someone?mechanism=PLAIN`);
    expect(mechanism.status).toBe(400);
    expect(mechanism.body.error.field).toBe('mechanism');

    await core.call('connections/setReadOnly', { connectionId: 'local', readOnly: true });
    const ro = await http('PUT', `${U}/someone`, { password: 'long-enough' });
    await core.call('connections/setReadOnly', { connectionId: 'local', readOnly: false });
    expect(ro.status).toBe(403);
    expect(ro.body.error.message).toContain('read-only');
    expect((await listed()).users).toEqual([]);
  });

  it('never puts a password or salted material in an answer or a log line', async () => {
    const put = await http('PUT', `${U}/auditor`, { password: PASSWORD });
    const list = await http('GET', U);
    for (const text of [put.text, list.text]) expect(text).not.toMatch(/password|salt|storedKey|serverKey|never-logged/i);
    expect((put.body as KafkaUserInfo).credentials).toHaveLength(2);
    expect(logs.some((l) => l.includes('kafka user added') && l.includes('auditor'))).toBe(true);
    expect(logs.join('\n')).not.toMatch(/never-logged|changed-too|billing-pw-1/);
    expect(readFileSync(join(dir, 'kafka-users.json'), 'utf8')).not.toMatch(/never-logged|changed-too/);
    await http('DELETE', `${U}/auditor`);
  });
});

describe('a Kafka users file that cannot be read', () => {
  let brokenDir: string;
  let broken: Core;
  beforeAll(async () => {
    brokenDir = mkdtempSync(join(tmpdir(), 'bd-kafka-users-broken-'));
    writeFileSync(join(brokenDir, 'kafka-users.json'), '{ not json', { mode: 0o600 });
    broken = await startCore({ dataDir: brokenDir, version: '9.9.9', diskFreeLimit: 0, listeners: { kafka: { port: 0, dataDir: brokenDir } } });
  });
  afterAll(async () => {
    await broken?.close();
    if (brokenDir) rmSync(brokenDir, { recursive: true, force: true });
  });

  it('is shown, keeps clients out, and is not overwritten by a change', async () => {
    const info = (await broken.call('listeners/kafkaUsers', {})) as KafkaUsersInfo;
    expect(info).toMatchObject({ users: [], saslRequired: true, problem: expect.stringContaining('kafka-users.json cannot be read') });
    const put = await broken.call('listeners/kafkaUserPut', { user: 'someone', password: 'long-enough' }).catch((e: unknown) => e);
    expect(put).toMatchObject({ code: 'PRECONDITION_FAILED', field: 'user', message: expect.stringContaining('fix or remove the file') });
    expect(readFileSync(join(brokenDir, 'kafka-users.json'), 'utf8')).toBe('{ not json');
  });
});

describe('without a Kafka listener', () => {
  it('says it is not running, naming the field', async () => {
    const bare = await startCore({ dataDir: null, version: '9.9.9', diskFreeLimit: 0 });
    try {
      const r = await bare.call('listeners/kafkaUsers', {}).catch((e: unknown) => e);
      expect(r).toMatchObject({ code: 'PRECONDITION_FAILED', field: 'user', message: expect.stringContaining('Kafka listener is not running') });
    } finally {
      await bare.close();
    }
  });
});
