import amqp from 'amqplib';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startBroker, type TestBroker } from './server.js';
let b: TestBroker;
beforeAll(async () => { b = await startBroker(); });
afterAll(async () => { await b?.stop(); });
test('smoke', async () => {
  const c = await amqp.connect(b.url);
  const ch = await c.createConfirmChannel();
  const q = await ch.assertQueue('', { exclusive: true });
  expect(q.queue).toMatch(/^amq\.gen-/);
  await new Promise<void>((res, rej) => ch.sendToQueue(q.queue, Buffer.from('hi'), { headers: { a: 1 } }, (e) => (e ? rej(e) : res())));
  const got = await new Promise<amqp.ConsumeMessage>((res) => ch.consume(q.queue, (m) => m && res(m)));
  expect(got.content.toString()).toBe('hi');
  ch.ack(got);
  await c.close();
});
