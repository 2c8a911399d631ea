/**
 * "Test connection" against a real RabbitMQ: each way it can fail is told
 * apart, and no answer, error or log line ever carries a password.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { RabbitConnector, testRabbitConnection } from '../../../src-main/connectors/rabbitmq/index.js';
import { closedPort, eventually, prepareBroker, silentServer, testDeps, tlsFront } from './broker.js';

const env = await prepareBroker();
const title = env.ok ? 'RabbitMQ: test connection' : `RabbitMQ: test connection (skipped: ${env.reason})`;

describe.skipIf(!env.ok)(title, { timeout: 60_000 }, () => {
  if (!env.ok) {
    // Registered (and skipped with the describe) so the report names the reason.
    it(`RabbitMQ is not available: ${env.reason}`, () => {});
    return;
  }
  const b = env;
  const secret = `S3cret-${randomBytes(6).toString('hex')}`;
  const deps = testDeps();
  const withPassword = (password: string, vhost = b.vhost, user = b.user) =>
    `amqp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${b.host.includes(':') ? `[${b.host}]` : b.host}:${b.port}/${encodeURIComponent(vhost)}`;
  const mgmtHost = new URL(b.managementUrl).host;
  const noSecret = (value: unknown) => {
    expect(JSON.stringify(value)).not.toContain(secret);
  };

  afterAll(async () => {
    // Nothing any test logged may carry a password.
    for (const line of deps.lines) expect(line).not.toContain(secret);
    await b.cleanup();
  });

  it('succeeds and reports the server version and cluster name', async () => {
    const result = await testRabbitConnection(b.config(), deps);
    expect(result.ok, result.message).toBe(true);
    expect(result.problem).toBeUndefined();
    expect(String(result.details?.rabbitmqVersion)).toMatch(/^\d+\.\d+/);
    expect(result.details?.clusterName).toBeTruthy();
    expect(JSON.stringify(result)).not.toContain(`:${b.password}@`);
  });

  it('tells "host unreachable" from a closed port', async () => {
    const port = await closedPort();
    const result = await testRabbitConnection(b.config({ amqpUrl: `amqp://guest:${secret}@127.0.0.1:${port}/` }), deps);
    expect(result).toMatchObject({ ok: false, problem: 'unreachable' });
    expect(result.message).toContain(`127.0.0.1:${port}`);
    noSecret(result);
  });

  it('tells "timeout" from a server that accepts and never answers', async () => {
    const silent = await silentServer();
    try {
      const result = await testRabbitConnection(b.config({ amqpUrl: `amqp://guest:${secret}@127.0.0.1:${silent.port}/` }), deps, { timeoutMs: 1_000 });
      expect(result).toMatchObject({ ok: false, problem: 'timeout' });
      noSecret(result);
    } finally {
      await silent.close();
    }
  });

  it('tells "authentication failed" from a wrong password, without echoing it', async () => {
    const result = await testRabbitConnection(b.config({ amqpUrl: withPassword(secret) }), deps);
    expect(result).toMatchObject({ ok: false, problem: 'auth_failed' });
    noSecret(result);
  });

  it('tells "vhost missing"', async () => {
    const result = await testRabbitConnection(b.config({ amqpUrl: withPassword(b.password, `${b.vhost}-missing`) }), deps);
    expect(result).toMatchObject({ ok: false, problem: 'vhost_missing' });
    expect(result.message).toContain(`${b.vhost}-missing`);
  });

  it('tells "vhost not permitted", whether the management API is asked as that user or as an admin', async () => {
    const user = `${b.vhost}-noperm`;
    await b.createUser(user, secret, 'management', false);
    const asUser = await testRabbitConnection(b.config({ amqpUrl: withPassword(secret, b.vhost, user) }), deps);
    expect(asUser, asUser.message).toMatchObject({ ok: false, problem: 'vhost_forbidden' });
    noSecret(asUser);
    const asAdmin = await testRabbitConnection(
      b.config({
        amqpUrl: withPassword(secret, b.vhost, user),
        managementUrl: `${new URL(b.managementUrl).protocol}//${encodeURIComponent(b.user)}:${encodeURIComponent(b.password)}@${mgmtHost}`,
      }),
      deps,
    );
    expect(asAdmin, asAdmin.message).toMatchObject({ ok: false, problem: 'vhost_forbidden' });
    noSecret(asAdmin);
  });

  it('tells "management plugin not enabled" when nothing listens at the management URL', async () => {
    const port = await closedPort();
    const result = await testRabbitConnection(b.config({ managementUrl: `http://127.0.0.1:${port}` }), deps);
    expect(result).toMatchObject({ ok: false, problem: 'management_unavailable' });
    expect(result.message).toContain('rabbitmq_management');
  });

  it('tells "management authentication failed", for a wrong password and for a user without the management tag', async () => {
    const wrong = await testRabbitConnection(
      b.config({ managementUrl: `${new URL(b.managementUrl).protocol}//${encodeURIComponent(b.user)}:${encodeURIComponent(secret)}@${mgmtHost}` }),
      deps,
    );
    expect(wrong).toMatchObject({ ok: false, problem: 'management_auth_failed' });
    noSecret(wrong);
    const user = `${b.vhost}-notag`;
    await b.createUser(user, secret, '', true);
    const untagged = await testRabbitConnection(b.config({ amqpUrl: withPassword(secret, b.vhost, user) }), deps);
    expect(untagged, untagged.message).toMatchObject({ ok: false, problem: 'management_auth_failed' });
    noSecret(untagged);
  });

  it('tells "TLS error" when amqps:// meets a plain AMQP port', async () => {
    const result = await testRabbitConnection(
      b.config({ amqpUrl: `amqps://guest:${secret}@${b.host}:${b.port}/`, tls: { insecureSkipVerify: false } }),
      deps,
    );
    expect(result).toMatchObject({ ok: false, problem: 'tls_error' });
    noSecret(result);
  });

  it('uses the TLS options: a CA to trust a self-signed server, a client certificate, or no verification (with a warning)', async (ctx) => {
    const front = await tlsFront(b, true);
    if (!front) return ctx.skip('openssl is not installed');
    try {
      const tlsConfig = (tls: Record<string, unknown>) =>
        b.config({
          amqpUrl: `amqps://${encodeURIComponent(b.user)}:${encodeURIComponent(b.password)}@127.0.0.1:${front.amqpsPort}/${encodeURIComponent(b.vhost)}`,
          managementUrl: `https://127.0.0.1:${front.httpsPort}`,
          tls,
        });
      const untrusted = await testRabbitConnection(tlsConfig({ cert: front.clientCert, key: front.clientKey }), deps);
      expect(untrusted, untrusted.message).toMatchObject({ ok: false, problem: 'tls_error' });
      const noClientCert = await testRabbitConnection(tlsConfig({ ca: front.ca }), deps);
      expect(noClientCert, noClientCert.message).toMatchObject({ ok: false });
      expect(['tls_error', 'unreachable']).toContain(noClientCert.problem);
      const trusted = await testRabbitConnection(tlsConfig({ ca: front.ca, cert: front.clientCert, key: front.clientKey }), deps);
      expect(trusted, trusted.message).toMatchObject({ ok: true });
      expect(trusted.details?.warning).toBeUndefined();
      const insecure = await testRabbitConnection(tlsConfig({ insecureSkipVerify: true, cert: front.clientCert, key: front.clientKey }), deps);
      expect(insecure, insecure.message).toMatchObject({ ok: true });
      expect(insecure.message).toMatch(/verification is OFF/);
      expect(insecure.details?.warning).toMatch(/verification is OFF/);

      const rabbit = new RabbitConnector('c-tls', tlsConfig({ ca: front.ca, cert: front.clientCert, key: front.clientKey }), deps, { sampleIntervalMs: 0 });
      try {
        const queues = await rabbit.listQueues();
        expect(Array.isArray(queues)).toBe(true);
        const info = await eventually(
          async () => rabbit.info(),
          (i) => i.status === 'connected',
        );
        expect(info.target).toBe(`amqps://127.0.0.1:${front.amqpsPort}/${encodeURIComponent(b.vhost)}`);
        expect(info.notices.insecureTls).toBeUndefined();
      } finally {
        await rabbit.close();
      }
    } finally {
      await front.close();
    }
  });

  it('shows a target without credentials, connects, and says why when it cannot', async () => {
    const good = new RabbitConnector('c-good', b.config({ amqpUrl: b.amqpUrl }), deps, { sampleIntervalMs: 0 });
    try {
      const info = await eventually(
        async () => good.info(),
        (i) => i.status === 'connected',
      );
      expect(info.status).toBe('connected');
      expect(info.kind).toBe('rabbitmq');
      expect(info.target).toBe(`amqp://${b.host}:${b.port}/${encodeURIComponent(b.vhost)}`);
      expect(info.target).not.toContain(b.password === 'guest' ? ':guest@' : b.password);
      expect(info.capabilities).toEqual(expect.arrayContaining(['queues', 'exchanges', 'publish', 'redrive', 'get']));
      expect(info.notices.peek).toMatch(/redelivered/);
      expect(info.notices.redrive).toMatch(/message-id/);
    } finally {
      await good.close();
    }

    const bad = new RabbitConnector('c-bad', b.config({ amqpUrl: withPassword(secret) }), deps, { sampleIntervalMs: 0 });
    try {
      const info = await eventually(
        async () => bad.info(),
        (i) => i.status === 'error',
      );
      expect(info.status).toBe('error');
      expect(info.error).toMatch(/password/);
      noSecret(info);
      await expect(bad.listExchanges()).rejects.toMatchObject({ code: expect.any(String) });
      await bad.publish({ exchange: '', routingKey: 'x', body: 'x', bodyEncoding: 'utf8', properties: {}, count: 1, mandatory: true }).then(
        () => expect.unreachable('publish with a wrong password must fail'),
        (e: Error & { code?: string }) => {
          expect(e.code).toBe('UNAVAILABLE');
          expect(e.message).not.toContain(secret);
        },
      );
    } finally {
      await bad.close();
    }
  });

  it('warns visibly when certificate verification is off', async () => {
    const c = new RabbitConnector('c-insecure', b.config({ amqpUrl: b.amqpUrl.replace(/^amqp:/, 'amqps:'), tls: { insecureSkipVerify: true } }), deps, {
      sampleIntervalMs: 0,
      connectTimeoutMs: 1_000,
    });
    try {
      expect(c.info().notices.insecureTls).toMatch(/verification is OFF/);
      expect(deps.lines.some((l) => l.includes('TLS certificate verification is off'))).toBe(true);
    } finally {
      await c.close();
    }
  });
});
