/**
 * Reading one exchange of a real RabbitMQ alone (the management API's single
 * exchange), as the list shows it, and NOT_FOUND naming one that is missing.
 */
import type { ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitConnector } from '../../../src-main/connectors/rabbitmq/index.js';
import { prepareBroker, testDeps } from './broker.js';

const env = await prepareBroker();
const title = env.ok ? 'RabbitMQ: single-resource reads' : `RabbitMQ: single-resource reads (skipped: ${env.reason})`;

describe.skipIf(!env.ok)(title, { timeout: 60_000 }, () => {
  if (!env.ok) {
    // Registered (and skipped with the describe) so the report names the reason.
    it(`RabbitMQ is not available: ${env.reason}`, () => {});
    return;
  }
  const b = env;
  let raw: ChannelModel;
  let rabbit: RabbitConnector;

  beforeAll(async () => {
    raw = await b.connect();
    rabbit = new RabbitConnector('c-single', b.config(), testDeps(), { sampleIntervalMs: 0 });
  });
  afterAll(async () => {
    await rabbit?.close();
    await raw?.close().catch(() => {});
    await b.cleanup();
  });

  it('reads one exchange with its flags and arguments, the default exchange included', async () => {
    const ch = await raw.createChannel();
    await ch.assertExchange('single.events', 'headers', { durable: false, autoDelete: true, arguments: { 'alternate-exchange': 'single.lost' } });
    await ch.assertExchange('single.inner', 'fanout', { durable: true, internal: true });
    await ch.close();

    const events = await rabbit.getExchange('single.events');
    expect(events).toEqual({ name: 'single.events', type: 'headers', durable: false, autoDelete: true, internal: false, arguments: { 'alternate-exchange': 'single.lost' } });
    expect(await rabbit.getExchange('single.inner')).toMatchObject({ name: 'single.inner', type: 'fanout', durable: true, internal: true });
    expect((await rabbit.listExchanges()).find((x) => x.name === 'single.events')).toEqual(events);
    expect(await rabbit.getExchange('')).toMatchObject({ name: '', type: 'direct', durable: true });
  });

  it('answers NOT_FOUND naming the exchange and the vhost when it does not exist', async () => {
    const error = await rabbit.getExchange('single.missing').then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'NOT_FOUND' });
    expect((error as Error).message).toContain('"single.missing"');
    expect((error as Error).message).toContain(b.vhost);
  });
});
