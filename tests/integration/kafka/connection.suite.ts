/**
 * "Test connection" and the connection's own state: each failure has its own
 * problem and a clear message, and no password ever shows up in a message,
 * a log line or the connection's target.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { testKafkaConnection } from '../../../src-main/connectors/kafka/index.js';
import type { KafkaBrokerHandle } from '../../kafka/broker.js';
import { config, connect, testDeps } from './helpers.js';

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

export function connectionSuite(kafka: KafkaBrokerHandle): void {
  describe('connection test', () => {
    it('connects over PLAINTEXT and reports the cluster', async (ctx) => {
      const broker = kafka.require(ctx);
      const deps = testDeps();
      const result = await testKafkaConnection(config(broker), deps);
      expect(result.ok, result.message).toBe(true);
      expect(result.details?.clusterId).toEqual(expect.any(String));
      expect(result.details?.brokers).toHaveLength(broker.owned ? 1 : (result.details?.brokers as unknown[]).length);
      expect(String(result.details?.version)).toMatch(/\d/);
    });

    it('calls a closed port unreachable', async (ctx) => {
      kafka.require(ctx);
      const port = await closedPort();
      const result = await testKafkaConnection({ ...config(kafka.broker!), brokers: [`127.0.0.1:${port}`] }, testDeps());
      expect(result).toMatchObject({ ok: false, problem: 'unreachable' });
      expect(result.message).toContain(`127.0.0.1:${port}`);
      expect(result.message).toMatch(/ECONNREFUSED/);
    });

    it('calls an unknown host unreachable', async (ctx) => {
      kafka.require(ctx);
      const result = await testKafkaConnection({ ...config(kafka.broker!), brokers: ['no-such-host.invalid:9092'] }, testDeps());
      expect(result).toMatchObject({ ok: false, problem: 'unreachable' });
      expect(result.message).toMatch(/ENOTFOUND|EAI_AGAIN/);
    });

    it('calls a server that never answers a timeout', async (ctx) => {
      kafka.require(ctx);
      const sockets: net.Socket[] = [];
      const silent = net.createServer((s) => sockets.push(s));
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      const port = (silent.address() as net.AddressInfo).port;
      try {
        const result = await testKafkaConnection({ ...config(kafka.broker!), brokers: [`127.0.0.1:${port}`] }, testDeps(), { timeoutMs: 2_000 });
        expect(result).toMatchObject({ ok: false, problem: 'timeout' });
      } finally {
        for (const s of sockets) s.destroy();
        silent.close();
      }
    });

    for (const mechanism of ['SCRAM-SHA-256', 'SCRAM-SHA-512', 'PLAIN'] as const) {
      it(`logs in with SASL ${mechanism}`, async (ctx) => {
        const broker = kafka.require(ctx);
        if (!broker.sasl) return ctx.skip('the broker has no SASL listener (set KAFKA_SASL_BROKERS, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD)');
        const deps = testDeps();
        const sasl = { mechanism, username: broker.sasl.username, password: broker.sasl.password };
        const result = await testKafkaConnection({ ...config(broker), brokers: broker.sasl.brokers, sasl }, deps);
        expect(result.ok, result.message).toBe(true);
        // A connector over SASL works end to end and never shows the password.
        const c = connect(broker, { brokers: broker.sasl.brokers, sasl }, {}, deps);
        try {
          await c.listTopics();
          expect(c.info().status).toBe('connected');
          expect(JSON.stringify(c.info())).not.toContain(broker.sasl.password);
        } finally {
          await c.close();
        }
        expect(deps.lines.join('\n')).not.toContain(broker.sasl.password);
      });
    }

    it('tells refused credentials apart, without echoing the password', async (ctx) => {
      const broker = kafka.require(ctx);
      if (!broker.sasl) return ctx.skip('the broker has no SASL listener');
      const deps = testDeps();
      const password = 'wrong-password-Zq81';
      for (const mechanism of ['SCRAM-SHA-256', 'PLAIN'] as const) {
        const result = await testKafkaConnection({ ...config(broker), brokers: broker.sasl.brokers, sasl: { mechanism, username: broker.sasl.username, password } }, deps);
        expect(result).toMatchObject({ ok: false, problem: 'auth_failed' });
        expect(result.message).toContain(broker.sasl.username);
        expect(result.message).not.toContain(password);
      }
      const unknownUser = await testKafkaConnection(
        { ...config(broker), brokers: broker.sasl.brokers, sasl: { mechanism: 'SCRAM-SHA-512', username: 'nobody', password } },
        deps,
      );
      expect(unknownUser).toMatchObject({ ok: false, problem: 'auth_failed' });

      // The connector reports the same through its status and a 401.
      const c = connect(broker, { brokers: broker.sasl.brokers, sasl: { mechanism: 'SCRAM-SHA-256', username: broker.sasl.username, password } }, {}, deps);
      try {
        await expect(c.listTopics()).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
        expect(c.info()).toMatchObject({ status: 'error', target: `kafka://${broker.sasl.brokers.join(',')}` });
        expect(c.info().error).toMatch(/authentication failed/);
      } finally {
        await c.close();
      }
      expect(deps.lines.join('\n')).not.toContain(password);
    });

    it('tells SASL on a plain listener apart', async (ctx) => {
      const broker = kafka.require(ctx);
      const result = await testKafkaConnection({ ...config(broker), sasl: { mechanism: 'PLAIN', username: 'x', password: 'y' } }, testDeps());
      expect(result).toMatchObject({ ok: false, problem: 'protocol_error' });
      expect(result.message).toMatch(/does not use SASL/);
    });

    it('tells TLS failures apart and connects with the right CA', async (ctx) => {
      const broker = kafka.require(ctx);
      if (!broker.ssl) return ctx.skip('the broker has no TLS listener (set KAFKA_SSL_BROKERS and KAFKA_SSL_CA)');
      const untrusted = await testKafkaConnection({ ...config(broker), brokers: broker.ssl.brokers, tls: { insecureSkipVerify: false } }, testDeps());
      expect(untrusted).toMatchObject({ ok: false, problem: 'tls_error' });
      expect(untrusted.message).toMatch(/certificate/i);

      const trusted = await testKafkaConnection({ ...config(broker), brokers: broker.ssl.brokers, tls: { ca: broker.ssl.ca, insecureSkipVerify: false } }, testDeps());
      expect(trusted.ok, trusted.message).toBe(true);

      const skipped = await testKafkaConnection({ ...config(broker), brokers: broker.ssl.brokers, tls: { insecureSkipVerify: true } }, testDeps());
      expect(skipped.ok, skipped.message).toBe(true);
      expect(String(skipped.details?.warning)).toMatch(/verification is OFF/);

      const tlsToPlain = await testKafkaConnection({ ...config(broker), tls: { insecureSkipVerify: false } }, testDeps());
      expect(tlsToPlain).toMatchObject({ ok: false, problem: 'tls_error' });

      const plainToTls = await testKafkaConnection({ ...config(broker), brokers: broker.ssl.brokers }, testDeps());
      expect(plainToTls.ok).toBe(false);
      expect(['protocol_error', 'timeout', 'unreachable']).toContain(plainToTls.problem);
    });

    it('shows a cluster overview', async (ctx) => {
      const broker = kafka.require(ctx);
      const c = connect(broker);
      try {
        const o = await c.clusterOverview();
        expect(o.clusterId).toEqual(expect.any(String));
        expect(o.brokers.length).toBeGreaterThanOrEqual(1);
        expect(o.brokers.map((b) => b.id)).toContain(o.controllerId === -1 ? o.brokers[0]!.id : o.brokers.find((b) => b.id === o.controllerId)?.id ?? o.brokers[0]!.id);
        expect(o.version).toMatch(/\d/);
        if (broker.owned) expect(o.version).toBe('4.1 or later');
        expect(o.partitions).toBeGreaterThanOrEqual(o.topics);
        expect(c.info()).toMatchObject({ kind: 'kafka', status: 'connected', target: `kafka://${broker.brokers.join(',')}` });
      } finally {
        await c.close();
      }
    });
  });
}
