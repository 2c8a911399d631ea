/**
 * The core's wire listeners: a port that is taken (RabbitMQ on 5672, a Kafka on
 * 9092) moves the listener to a free port, and the API says where apps connect.
 */
import net from 'node:net';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListenerInfo } from '../../../src-main/contract/types.js';
import { startCore, type Core } from '../../../src-main/core/core.js';

let blocker: net.Server;
let taken: number;
let core: Core;

beforeAll(async () => {
  blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  taken = (blocker.address() as net.AddressInfo).port;
  core = await startCore({ dataDir: null, version: '9.9.9', diskFreeLimit: 0, listeners: { amqp: { port: taken, dataDir: null }, kafka: { port: 0 } } });
});
afterAll(async () => {
  await core?.close();
  await new Promise<void>((r) => blocker.close(() => r()));
});

describe('the wire listeners', () => {
  it('move to a free port when theirs is taken, and say so', async () => {
    const list = (await core.call('listeners/list', {})) as ListenerInfo[];
    const amqpListener = list.find((l) => l.protocol === 'amqp')!;
    expect(amqpListener).toMatchObject({ host: '127.0.0.1', requestedPort: taken, tls: false, note: `port ${taken} was in use` });
    expect(amqpListener.port).not.toBe(taken);
    expect(list.find((l) => l.protocol === 'kafka')).toMatchObject({ requestedPort: 0, note: null, port: expect.any(Number) });

    // Where the API says an app connects, it does.
    const connection = await amqp.connect(`amqp://guest:guest@127.0.0.1:${amqpListener.port}`);
    await expect.poll(async () => ((await core.call('listeners/list', {})) as ListenerInfo[]).find((l) => l.protocol === 'amqp')!.connections).toBe(1);
    await connection.close();
    await expect.poll(async () => ((await core.call('listeners/list', {})) as ListenerInfo[]).find((l) => l.protocol === 'amqp')!.connections).toBe(0);
  });
});
