/**
 * A re-drive on a real RabbitMQ to a queue that does not exist is refused up
 * front, naming it (a target that stops routing mid-way is covered in
 * redrive.test.ts: the messages stay and the job says why).
 */
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitConnector } from '../../../src-main/connectors/rabbitmq/index.js';
import { eventually, prepareBroker, testDeps } from './broker.js';

const env = await prepareBroker();
const title = env.ok ? 'RabbitMQ: re-drive targets' : `RabbitMQ: re-drive targets (skipped: ${env.reason})`;

describe.skipIf(!env.ok)(title, { timeout: 120_000 }, () => {
  if (!env.ok) {
    it(`RabbitMQ is not available: ${env.reason}`, () => {});
    return;
  }
  const b = env;
  let raw: ChannelModel;
  let ch: ConfirmChannel;
  let rabbit: RabbitConnector;

  beforeAll(async () => {
    raw = await b.connect();
    ch = await raw.createConfirmChannel();
    rabbit = new RabbitConnector('c-redrive-target', b.config(), testDeps(), { sampleIntervalMs: 0 });
    await ch.assertExchange('dlx', 'fanout', { durable: true });
    await ch.assertQueue('work.dlq', { durable: true });
    await ch.bindQueue('work.dlq', 'dlx', '');
    await ch.assertQueue('work', { durable: true, arguments: { 'x-dead-letter-exchange': 'dlx' } });
    for (let i = 0; i < 5; i++) ch.sendToQueue('work', Buffer.from(`m${i}`), { persistent: true, messageId: `m${i}` });
    await ch.waitForConfirms();
    const rejecter = await raw.createChannel();
    for (let i = 0; i < 5; i++) {
      const m = await eventually(
        () => rejecter.get('work', { noAck: false }),
        (x) => x !== false,
        30_000,
        20,
      );
      if (m) rejecter.nack(m, false, false);
    }
    await rejecter.close();
    await eventually(
      () => ch.checkQueue('work.dlq'),
      (q) => q.messageCount === 5,
      30_000,
      50,
    );
  });

  afterAll(async () => {
    await rabbit?.close();
    await raw?.close().catch(() => {});
    await b.cleanup();
  });

  it('refuses a target queue that does not exist up front, naming it, and starts nothing', async () => {
    const before = (await rabbit.listRedrives()).length;
    await expect(rabbit.startRedrive({ source: 'work.dlq', all: true, target: { exchange: '', routingKey: 'no-such-queue' } })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      field: 'target.routingKey',
      message: `re-drive target: queue "no-such-queue" does not exist in vhost "${b.vhost}"`,
    });
    expect(await rabbit.listRedrives()).toHaveLength(before);
    expect((await ch.checkQueue('work.dlq')).messageCount).toBe(5);
  });
});
