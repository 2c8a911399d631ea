/**
 * A re-drive whose deliveries arrive late. A quorum queue hands messages to
 * a consumer from its leader's process, apart from the channel's replies, so
 * on a busy cluster (or when the leader is on another node) a consumer can
 * wait seconds for deliveries RabbitMQ already counts as taken: the queue
 * then reports nothing ready while every message is still on its way. A
 * proxy between the connector and the real RabbitMQ reproduces that exactly:
 * it holds back every delivery (basic.deliver with its header and body
 * frames) for longer than the re-drive's idle check and lets every other
 * frame through. The re-drive must wait for them, not end "completed"
 * having moved nothing.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitConnector } from '../../../src-main/connectors/rabbitmq/index.js';
import { prepareBroker, rejectAll, testDeps } from './broker.js';

const env = await prepareBroker();
const title = env.ok ? 'RabbitMQ: re-drive with late deliveries' : `RabbitMQ: re-drive with late deliveries (skipped: ${env.reason})`;

const DELIVERY_DELAY_MS = 2_500;
const FRAME_END = 0xce;

/**
 * A TCP proxy that delays, per channel, AMQP basic.deliver frames and the
 * content frames that follow them, keeping their order; everything else
 * passes at once.
 */
async function lateDeliveryProxy(upstreamPort: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: upstreamPort });
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    // From the server, everything is frames: [type][channel][size][payload][0xCE].
    let buffer = Buffer.alloc(0);
    /** Channels whose current message is a delivery (its content frames are delayed with it). */
    const delivering = new Set<number>();
    upstream.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (buffer.length < 7) break;
        const size = buffer.readUInt32BE(3);
        if (buffer.length < 8 + size) break;
        const frame = buffer.subarray(0, 8 + size);
        buffer = buffer.subarray(8 + size);
        if (frame[7 + size] !== FRAME_END) {
          client.destroy(new Error('not an AMQP frame'));
          return;
        }
        const type = frame[0]!;
        const channel = frame.readUInt16BE(1);
        if (type === 1) {
          const isDeliver = frame.readUInt16BE(7) === 60 && frame.readUInt16BE(9) === 60;
          if (isDeliver) delivering.add(channel);
          else delivering.delete(channel);
        }
        const late = (type === 1 || type === 2 || type === 3) && delivering.has(channel);
        const copy = Buffer.from(frame);
        if (late) setTimeout(() => client.writable && client.write(copy), DELIVERY_DELAY_MS);
        else client.write(copy);
      }
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe.skipIf(!env.ok)(title, { timeout: 120_000 }, () => {
  if (!env.ok) {
    it(`RabbitMQ is not available: ${env.reason}`, () => {});
    return;
  }
  const b = env;
  let proxy: Awaited<ReturnType<typeof lateDeliveryProxy>>;

  beforeAll(async () => {
    proxy = await lateDeliveryProxy(b.port);
  });

  afterAll(async () => {
    await proxy?.close();
    await b.cleanup();
  });

  it('waits for deliveries that arrive after the queue reports nothing ready, and moves every message', async () => {
    const n = 300;
    const raw = await b.connect();
    const ch = await raw.createConfirmChannel();
    await ch.assertQueue('late.dlq', { durable: true });
    await ch.assertQueue('late', { durable: true, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'late.dlq' } });
    for (let i = 0; i < n; i++) ch.sendToQueue('late', Buffer.from(String(i)), { messageId: `late-${i}`, persistent: true });
    await ch.waitForConfirms();
    await rejectAll(raw, 'late', n);
    for (let i = 0; i < 200 && (await ch.checkQueue('late.dlq')).messageCount < n; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await ch.checkQueue('late.dlq')).messageCount).toBe(n);

    const amqpUrl = new URL(b.amqpUrl);
    amqpUrl.port = String(proxy.port);
    const rabbit = new RabbitConnector('late-deliveries', b.config({ amqpUrl: amqpUrl.toString(), managementUrl: b.managementUrl }), testDeps(), { sampleIntervalMs: 0 });
    try {
      const { id } = await rabbit.startRedrive({ source: 'late.dlq', all: true });
      const job = (await rabbit.waitForRedrive(id))!;
      expect(job, job.error ?? '').toMatchObject({ state: 'completed', moved: n, total: n, failed: 0, error: null });
      // Acks carry no reply: RabbitMQ's counts follow them shortly after.
      await expect.poll(async () => (await ch.checkQueue('late.dlq')).messageCount).toBe(0);
      await expect.poll(async () => (await ch.checkQueue('late')).messageCount).toBe(n);
    } finally {
      await rabbit.close();
      await raw.close();
    }
  });
});
