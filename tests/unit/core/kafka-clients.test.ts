/**
 * The clients of the embedded broker's Kafka listener through the HTTP API: a
 * kafkajs admin is listed with the client id it sent and its address, and
 * disconnecting it from the API closes its socket (Kafka has no goodbye), after
 * which it reconnects by itself on its next request, as Kafka clients do.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaClientInfo, ListenerInfo } from '../../../src-main/contract/types.js';
import { startCore, type Core } from '../../../src-main/core/core.js';
import { silentLogger } from '../../../src-main/ground/logger.js';
import { startHttpServer, type HttpServer } from '../../../src-main/transports/http/server.js';

const token = 'kafka-clients-token';
let core: Core;
let server: HttpServer;
let port: number;

beforeAll(async () => {
  core = await startCore({ dataDir: null, version: '9.9.9', diskFreeLimit: 0, listeners: { kafka: { port: 0 } } });
  server = await startHttpServer({ core, host: '127.0.0.1', port: 0, token, logger: silentLogger });
  port = ((await core.call('listeners/list', {})) as ListenerInfo[]).find((l) => l.protocol === 'kafka')!.port!;
});
afterAll(async () => {
  await server?.close();
  await core?.close();
});

async function http(method: string, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}
const clients = async () => (await http('GET', '/api/listeners/kafka/connections')).body as KafkaClientInfo[];

describe("the Kafka listener's clients", () => {
  it('lists a client by the id it sent, and disconnects it', async () => {
    const admin = new Kafka({ clientId: 'billing-admin', brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: 'billing.events', numPartitions: 2 }] });
      await expect.poll(async () => (await clients()).some((c) => c.clientId === 'billing-admin')).toBe(true);
      const listed = (await clients()).find((c) => c.clientId === 'billing-admin')!;
      expect(listed).toMatchObject({ remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/), tls: false });
      expect(listed.bytesIn).toBeGreaterThan(0);
      expect(listed.bytesOut).toBeGreaterThan(0);

      await core.call('connections/setReadOnly', { connectionId: 'local', readOnly: true });
      const refused = await http('DELETE', `/api/listeners/kafka/connections/${listed.id}`);
      await core.call('connections/setReadOnly', { connectionId: 'local', readOnly: false });
      expect(refused.status).toBe(403);

      expect((await http('DELETE', `/api/listeners/kafka/connections/${listed.id}`)).status).toBe(200);
      await expect.poll(async () => (await clients()).some((c) => c.id === listed.id)).toBe(false);
      // The client comes back by itself on its next request.
      expect((await admin.listTopics()).sort()).toContain('billing.events');
      expect((await http('DELETE', `/api/listeners/kafka/connections/${listed.id}`)).status).toBe(404);
    } finally {
      await admin.disconnect();
    }
  });
});
