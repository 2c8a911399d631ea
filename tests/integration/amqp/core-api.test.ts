/**
 * Messages an app sends over AMQP are the embedded broker's like any other:
 * Brokerdeck counts them, browses them and re-drives them through the core's
 * API, and the app sees the re-driven message arrive.
 */
import amqp, { type ConsumeMessage } from 'amqplib';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startCore, type Core } from '../../../src-main/core/core.js';

let core: Core;
let dataDir: string;
let port: number;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'brokerdeck-amqp-core-'));
  port = await freePort();
  core = await startCore({ dataDir, version: 'test', diskFreeLimit: 0, listeners: { amqp: { port, dataDir } } });
});
afterAll(async () => {
  await core?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

test('published over AMQP, counted, browsed and re-driven through the core, received again by the app', async () => {
  const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
  const ch = await conn.createConfirmChannel();
  await ch.assertExchange('orders.dlx', 'fanout', { durable: true });
  await ch.assertQueue('orders.dlq', { durable: true });
  await ch.bindQueue('orders.dlq', 'orders.dlx', '');
  await ch.assertQueue('orders', { durable: true, arguments: { 'x-dead-letter-exchange': 'orders.dlx' } });
  for (const id of ['o-1', 'o-2', 'o-3']) {
    await new Promise<void>((resolve, reject) => ch.sendToQueue('orders', Buffer.from(JSON.stringify({ id })), { persistent: true, messageId: id, contentType: 'application/json' }, (e) => (e ? reject(e) : resolve())));
  }
  const bad = await ch.get('orders');
  if (!bad) throw new Error('basic.get found the queue empty');
  expect(bad.properties.messageId).toBe('o-1');
  ch.reject(bad, false);

  const counts = async () => Object.fromEntries((await core.call('queues/list', { connectionId: 'local' })).filter((q) => q.name.startsWith('orders')).map((q) => [q.name, q.messages]));
  await expect.poll(counts).toEqual({ orders: 2, 'orders.dlq': 1 });
  const page = await core.call('queues/messages', { connectionId: 'local', queue: 'orders' });
  expect(page.messages.map((m) => m.properties.messageId)).toEqual(['o-2', 'o-3']);
  const dead = await core.call('queues/messages', { connectionId: 'local', queue: 'orders.dlq' });
  expect(dead.messages[0]!.properties.headers?.['x-first-death-reason']).toBe('rejected');

  const { id } = await core.call('redrives/start', { connectionId: 'local', source: 'orders.dlq', all: true });
  await expect.poll(async () => (await core.call('redrives/get', { id })).state).toBe('completed');
  await expect.poll(counts).toEqual({ orders: 3, 'orders.dlq': 0 });

  const got: ConsumeMessage[] = [];
  await ch.consume('orders', (m) => m && got.push(m));
  await expect.poll(() => got.map((m) => m.properties.messageId).sort()).toEqual(['o-1', 'o-2', 'o-3']);
  const redriven = got.find((m) => m.properties.messageId === 'o-1')!;
  expect((redriven.properties.headers?.['x-death'] as unknown as Array<{ reason: string }>)[0]!.reason).toBe('rejected');
  await conn.close();
});
