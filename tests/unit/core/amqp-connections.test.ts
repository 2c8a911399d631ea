/**
 * The AMQP listener's connections through the HTTP API: an amqplib client is
 * listed with the name and product it sent, its channels with their prefetch,
 * confirm mode and consumers, and closing it from the API reaches the client as
 * connection.close 320 CONNECTION_FORCED, as RabbitMQ's console does it.
 */
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AmqpChannelInfo, AmqpConnectionInfo, ListenerInfo } from '../../../src-main/contract/types.js';
import { startCore, type Core } from '../../../src-main/core/core.js';
import { silentLogger } from '../../../src-main/ground/logger.js';
import { startHttpServer, type HttpServer } from '../../../src-main/transports/http/server.js';

const token = 'amqp-connections-token';
let core: Core;
let server: HttpServer;
let url: string;

beforeAll(async () => {
  core = await startCore({ dataDir: null, version: '9.9.9', diskFreeLimit: 0, listeners: { amqp: { port: 0, dataDir: null } } });
  server = await startHttpServer({ core, host: '127.0.0.1', port: 0, token, logger: silentLogger });
  const listener = ((await core.call('listeners/list', {})) as ListenerInfo[]).find((l) => l.protocol === 'amqp')!;
  url = `amqp://guest:guest@127.0.0.1:${listener.port}`;
});
afterAll(async () => {
  await server?.close();
  await core?.close();
});

async function http(method: string, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}

const connections = async () => (await http('GET', '/api/listeners/amqp/connections')).body as AmqpConnectionInfo[];

describe("the AMQP listener's connections", () => {
  it('lists a client with its name, product, user, vhost, channels and consumers', async () => {
    const client = await amqp.connect(url, { clientProperties: { connection_name: 'orders-service' } });
    try {
      const ch = await client.createConfirmChannel();
      await ch.prefetch(25);
      await ch.assertQueue('inspect-orders', { durable: false });
      const { consumerTag } = await ch.consume('inspect-orders', () => undefined, { noAck: false });

      await expect.poll(async () => (await connections()).find((c) => c.name === 'orders-service')?.channels).toBe(1);
      const listed = (await connections()).find((c) => c.name === 'orders-service')!;
      expect(listed).toMatchObject({ product: 'amqplib', user: 'guest', vhost: '/', state: 'running', tls: false, remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
      expect(listed.version).toMatch(/^\d+\.\d+/);
      expect(listed.bytesIn).toBeGreaterThan(0);
      expect(listed.bytesOut).toBeGreaterThan(0);
      // Rates come from two looks at least a second apart; the first has none.
      expect(listed.rateIn).toBeNull();
      await expect.poll(async () => (await connections()).find((c) => c.id === listed.id)?.rateIn, { timeout: 10_000 }).toEqual(expect.any(Number));

      const channels = (await http('GET', `/api/listeners/amqp/connections/${listed.id}/channels`)).body as AmqpChannelInfo[];
      expect(channels).toEqual([
        {
          number: 1,
          prefetch: 25,
          globalPrefetch: 0,
          unacked: 0,
          confirm: true,
          transactional: false,
          consumers: [{ tag: consumerTag, queue: 'inspect-orders', ack: true }],
          published: 0,
          delivered: 0,
          acked: 0,
          rates: null,
        },
      ]);
    } finally {
      await client.close().catch(() => undefined);
    }
    await expect.poll(async () => (await connections()).some((c) => c.name === 'orders-service')).toBe(false);
  });

  it("counts each channel's messages published, delivered and acknowledged, and their rates per second", async () => {
    const client = await amqp.connect(url, { clientProperties: { connection_name: 'rates-service' } });
    try {
      const pub = await client.createConfirmChannel();
      await pub.assertQueue('inspect-rates', { durable: false });
      const sub = await client.createChannel();
      let got = 0;
      await sub.consume('inspect-rates', (m) => {
        if (!m) return;
        got++;
        // Every other one acknowledged alone, the rest with `multiple`: both count each message once.
        if (got % 2 === 0) sub.ack(m, true);
      });
      await expect.poll(async () => (await connections()).find((c) => c.name === 'rates-service')?.channels).toBe(2);
      const id = (await connections()).find((c) => c.name === 'rates-service')!.id;
      const look = async () => (await http('GET', `/api/listeners/amqp/connections/${id}/channels`)).body as AmqpChannelInfo[];
      expect((await look()).map((ch) => ch.rates)).toEqual([null, null]);

      for (let i = 0; i < 40; i++) pub.sendToQueue('inspect-rates', Buffer.from(`m${i}`));
      await pub.waitForConfirms();
      await expect.poll(() => got).toBe(40);
      await expect.poll(async () => (await look()).map((ch) => [ch.published, ch.delivered, ch.acked])).toEqual([
        [40, 0, 0],
        [0, 40, 40],
      ]);
      // Rates come from two looks at least a second apart.
      await expect.poll(async () => (await look())[0]!.rates, { timeout: 10_000 }).not.toBeNull();
    } finally {
      await client.close().catch(() => undefined);
    }
  });

  it('closes a connection with 320 CONNECTION_FORCED and the reason given', async () => {
    const client = await amqp.connect(url, { clientProperties: { connection_name: 'to-be-closed' } });
    const closed = new Promise<Error | undefined>((resolve) => client.on('close', resolve));
    client.on('error', () => undefined);
    await expect.poll(async () => (await connections()).some((c) => c.name === 'to-be-closed')).toBe(true);
    const id = (await connections()).find((c) => c.name === 'to-be-closed')!.id;

    // Read-only protects the embedded broker's clients too.
    await core.call('connections/setReadOnly', { connectionId: 'local', readOnly: true });
    const refused = await http('DELETE', `/api/listeners/amqp/connections/${id}`);
    await core.call('connections/setReadOnly', { connectionId: 'local', readOnly: false });
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toContain('read-only');

    const res = await http('DELETE', `/api/listeners/amqp/connections/${id}?reason=${encodeURIComponent('maintenance')}`);
    expect(res).toEqual({ status: 200, body: { closed: true } });
    const err = (await closed) as Error & { code?: number };
    expect(err?.code).toBe(320);
    expect(err?.message).toContain("CONNECTION_FORCED - broker forced connection closure with reason 'maintenance'");
    await expect.poll(async () => (await connections()).some((c) => c.id === id)).toBe(false);
  });

  it('answers an unknown connection with 404 naming the id, and a bad reason with 400 naming the field', async () => {
    const closing = await http('DELETE', '/api/listeners/amqp/connections/nope');
    expect(closing.status).toBe(404);
    expect(closing.body.error).toMatchObject({ code: 'NOT_FOUND', field: 'id' });
    expect((await http('GET', '/api/listeners/amqp/connections/nope/channels')).status).toBe(404);
    const tooLong = await http('DELETE', `/api/listeners/amqp/connections/nope?reason=${'x'.repeat(201)}`);
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'reason', message: expect.stringContaining('at most 200 characters') });
  });
});
