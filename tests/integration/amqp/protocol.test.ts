/**
 * The listener against input no client library sends: malformed frames get
 * the connection exception RabbitMQ gives (501, 502, 503, 504, 505, 530),
 * a silent peer is dropped after two missed heartbeats, guest is refused
 * from anywhere but loopback, and one connection's garbage never disturbs
 * another.
 */
import amqp from 'amqplib';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FrameWriter } from '../../../src-main/protocols/amqp/frame.js';
import { frame, RawClient } from './raw.js';
import { startBroker, type TestBroker } from './server.js';

let b: TestBroker;
beforeAll(async () => {
  b = await startBroker();
});
afterAll(async () => {
  await b?.stop();
});

async function opened(): Promise<RawClient> {
  const c = await RawClient.connect(b.port);
  await c.handshake();
  return c;
}

describe('handshake', () => {
  test('a peer that does not speak AMQP 0-9-1 is sent the protocol header and disconnected', async () => {
    const c = await RawClient.connect(b.port);
    c.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await c.until(() => c.closed);
    expect(Buffer.concat(c.raw)).toEqual(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
  });

  test('connection.start offers PLAIN and AMQPLAIN and RabbitMQ\'s capabilities', async () => {
    const c = await RawClient.connect(b.port);
    c.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
    const start = await c.method('connection.start');
    expect(start.mechanisms!.toString()).toBe('PLAIN AMQPLAIN');
    expect((start.serverProperties as { capabilities: object }).capabilities).toMatchObject({
      publisher_confirms: true,
      exchange_exchange_bindings: true,
      'basic.nack': true,
      consumer_cancel_notify: true,
      'connection.blocked': true,
      authentication_failure_close: true,
      per_consumer_qos: true,
      direct_reply_to: true,
    });
    c.close();
  });

  test('an unknown vhost: 530 NOT_ALLOWED in RabbitMQ\'s words', async () => {
    const c = await RawClient.connect(b.port);
    await c.handshake({ vhost: 'nowhere' });
    expect(await c.connectionClose()).toMatchObject({ replyCode: 530, replyText: 'NOT_ALLOWED - vhost nowhere not found', classId: 10, methodId: 40 });
    c.close();
  });

  test('a wrong password with authentication_failure_close: 403 and RabbitMQ\'s text', async () => {
    const c = await RawClient.connect(b.port);
    await c.handshake({ password: 'wrong' });
    expect(await c.connectionClose()).toMatchObject({ replyCode: 403, replyText: 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.' });
    c.close();
  });

  test('a tune-ok frame_max below 4096 is refused with 530', async () => {
    const c = await RawClient.connect(b.port);
    await c.handshake({ frameMax: 1000, vhost: null });
    expect(await c.connectionClose()).toMatchObject({ replyCode: 530 });
    c.close();
  });

  test('a client silent for two heartbeat intervals is disconnected', async () => {
    const c = await RawClient.connect(b.port);
    await c.handshake({ heartbeat: 1 });
    // The server sends heartbeats meanwhile; this client answers nothing.
    await c.until(() => c.closed);
    expect(c.frames.some((f) => f.type === 8)).toBe(true);
  });

  const external = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
  test.skipIf(!external)('guest may connect only from loopback, as RabbitMQ\'s loopback_users', async () => {
    const wide = await startBroker({ host: '0.0.0.0' });
    try {
      const c = await RawClient.connect(wide.port, external!);
      await c.handshake();
      expect(await c.connectionClose()).toMatchObject({ replyCode: 403, replyText: expect.stringContaining('ACCESS_REFUSED - Login was refused') });
      c.close();
      wide.listener.amqp.users.putUser('app', 'pw');
      wide.listener.amqp.users.setPermissions('app', '/', { configure: '.*', write: '.*', read: '.*' });
      const conn = await amqp.connect(`amqp://app:pw@${external}:${wide.port}`);
      await conn.close();
    } finally {
      await wide.stop();
    }
  });
});

describe('malformed input closes the connection with RabbitMQ\'s code', () => {
  test('a frame not ending in 0xCE: 501 FRAME_ERROR', async () => {
    const c = await opened();
    c.write(frame(1, 0, Buffer.from([0, 10, 0, 51]), 0x00));
    expect(await c.connectionClose()).toMatchObject({ replyCode: 501, replyText: expect.stringMatching(/^FRAME_ERROR - /) });
    c.close();
  });

  test('a frame larger than frame_max: 501 FRAME_ERROR', async () => {
    const c = await RawClient.connect(b.port);
    await c.handshake({ frameMax: 4096 });
    c.write(frame(3, 1, Buffer.alloc(5000)));
    expect(await c.connectionClose()).toMatchObject({ replyCode: 501, replyText: expect.stringContaining('frame_max of 4096') });
    c.close();
  });

  test('an unknown class or method: 503 COMMAND_INVALID', async () => {
    const c = await opened();
    c.send(1, 'channel.open', {});
    await c.method('channel.open-ok', 1);
    c.write(frame(1, 1, Buffer.from([0, 77, 0, 1])));
    expect(await c.connectionClose()).toMatchObject({ replyCode: 503, classId: 77, methodId: 1 });
    c.close();
  });

  test('arguments cut short: 502 SYNTAX_ERROR', async () => {
    const c = await opened();
    c.send(1, 'channel.open', {});
    await c.method('channel.open-ok', 1);
    c.write(frame(1, 1, Buffer.from([0, 50, 0, 10, 0, 0, 40])));
    expect(await c.connectionClose()).toMatchObject({ replyCode: 502 });
    c.close();
  });

  test('a content header with no publish before it: 505 UNEXPECTED_FRAME', async () => {
    const c = await opened();
    c.send(1, 'channel.open', {});
    await c.method('channel.open-ok', 1);
    const w = new FrameWriter();
    w.content(1, {}, Buffer.from('x'), 4096);
    c.write(w.take());
    expect(await c.connectionClose()).toMatchObject({ replyCode: 505 });
    c.close();
  });

  test('a method instead of the content header a publish announced: 505 UNEXPECTED_FRAME', async () => {
    const c = await opened();
    c.send(1, 'channel.open', {});
    await c.method('channel.open-ok', 1);
    c.send(1, 'basic.publish', { exchange: '', routingKey: 'q' });
    c.send(1, 'basic.qos', { prefetchCount: 1 });
    expect(await c.connectionClose()).toMatchObject({ replyCode: 505, replyText: expect.stringContaining('expected content header for class 60') });
    c.close();
  });

  test('a method on a channel that was never opened: 504 CHANNEL_ERROR', async () => {
    const c = await opened();
    c.send(5, 'basic.qos', { prefetchCount: 1 });
    expect(await c.connectionClose()).toMatchObject({ replyCode: 504 });
    c.close();
  });

  test('garbage on one connection leaves another working', async () => {
    const good = await amqp.connect(b.url);
    const ch = await good.createConfirmChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    const bad = await opened();
    bad.write(Buffer.from('\x01\x00\x01\xff\xff\xff\xff garbage'));
    await bad.until(() => bad.closed || bad.methods().some((m) => m.name === 'connection.close'));
    await new Promise<void>((resolve, reject) => ch.sendToQueue(queue, Buffer.from('still here'), {}, (e) => (e ? reject(e) : resolve())));
    expect((await ch.checkQueue(queue)).messageCount).toBe(1);
    bad.close();
    await good.close();
  });
});
