/**
 * amqplib, unchanged, against the embedded broker's AMQP listener: what an
 * app written for RabbitMQ does, and what it observes (reply codes, flags,
 * x-death, counts).
 */
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { startBroker, type TestBroker } from './server.js';

// amqplib's generated method ids (its lib/defs.js), for the methods its API leaves out.
const require = createRequire(import.meta.url);
const defs = require(join(dirname(require.resolve('amqplib')), 'lib', 'defs.js')) as Record<'TxSelect' | 'TxSelectOk' | 'TxCommit' | 'TxCommitOk' | 'TxRollback' | 'TxRollbackOk', number>;

let b: TestBroker;
const open: ChannelModel[] = [];

beforeAll(async () => {
  b = await startBroker({ consumerTimeoutMs: 60_000 });
});
afterAll(async () => {
  await b?.stop();
});
afterEach(async () => {
  for (const c of open.splice(0)) await c.close().catch(() => {});
});

async function connect(url = b.url, opts?: object): Promise<ChannelModel> {
  const c = await amqp.connect(url, opts);
  c.on('error', () => {});
  open.push(c);
  return c;
}

function confirmed(ch: ConfirmChannel, exchange: string, key: string, body: string, opts: amqp.Options.Publish = {}): Promise<void> {
  return new Promise((resolve, reject) => ch.publish(exchange, key, Buffer.from(body), opts, (err) => (err ? reject(err) : resolve())));
}

/** The error a channel closes with, as amqplib raises it. */
function closedWith(ch: Channel): Promise<{ code: number; message: string }> {
  return new Promise((resolve) => ch.once('error', (e: { code: number; message: string }) => resolve(e)));
}

function nextMessage(ch: Channel, queue: string, opts: amqp.Options.Consume = {}): Promise<ConsumeMessage> {
  return new Promise((resolve) => void ch.consume(queue, (m) => m && resolve(m), opts));
}

describe('publishing and consuming', () => {
  test('confirmed publish, consume and ack; properties and typed headers arrive as sent', async () => {
    const c = await connect();
    const ch = await c.createConfirmChannel();
    const { queue } = await ch.assertQueue('props-q', { durable: true });
    const ts = 1_700_000_000;
    await confirmed(ch, '', queue, 'hello', {
      persistent: true,
      contentType: 'text/plain',
      correlationId: 'c-1',
      messageId: 'm-1',
      timestamp: ts,
      priority: 3,
      appId: 'app',
      type: 'greeting',
      headers: { n: 42, big: 2 ** 40, f: 1.5, s: 'x', yes: true, list: [1, 'a'], nested: { k: 'v' } },
    });
    const m = await nextMessage(ch, queue);
    expect(m.content.toString()).toBe('hello');
    expect(m.fields).toMatchObject({ redelivered: false, exchange: '', routingKey: queue, deliveryTag: 1 });
    expect(m.properties).toMatchObject({ deliveryMode: 2, contentType: 'text/plain', correlationId: 'c-1', messageId: 'm-1', timestamp: ts, priority: 3, appId: 'app', type: 'greeting' });
    expect(m.properties.headers).toEqual({ n: 42, big: 2 ** 40, f: 1.5, s: 'x', yes: true, list: [1, 'a'], nested: { k: 'v' } });
    ch.ack(m);
    await expect.poll(async () => (await ch.checkQueue(queue)).messageCount + b.host.live().getQueue(queue).unacked).toBe(0);
  });

  test('every exchange type routes as RabbitMQ does, exchange-to-exchange bindings included', async () => {
    const c = await connect();
    const ch = await c.createConfirmChannel();
    await ch.assertExchange('ex-topic', 'topic', { durable: false });
    await ch.assertExchange('ex-fanout', 'fanout', { durable: false });
    await ch.assertExchange('ex-headers', 'headers', { durable: false });
    await ch.assertExchange('ex-direct', 'direct', { durable: false });
    const q = async (name: string) => (await ch.assertQueue(name, { durable: false })).queue;
    await ch.bindQueue(await q('t-q'), 'ex-topic', 'a.*.c');
    await ch.bindQueue(await q('f-q'), 'ex-fanout', '');
    await ch.bindQueue(await q('h-q'), 'ex-headers', '', { 'x-match': 'all', kind: 'x' });
    await ch.bindExchange('ex-fanout', 'ex-direct', 'k');
    await confirmed(ch, 'ex-topic', 'a.b.c', 't');
    await confirmed(ch, 'ex-topic', 'a.b.d', 'no');
    await confirmed(ch, 'ex-headers', '', 'h', { headers: { kind: 'x' } });
    await confirmed(ch, 'ex-direct', 'k', 'via-e2e');
    expect((await ch.checkQueue('t-q')).messageCount).toBe(1);
    expect((await ch.checkQueue('h-q')).messageCount).toBe(1);
    expect((await ch.checkQueue('f-q')).messageCount).toBe(1);
    await ch.unbindExchange('ex-fanout', 'ex-direct', 'k');
    await confirmed(ch, 'ex-direct', 'k', 'gone');
    expect((await ch.checkQueue('f-q')).messageCount).toBe(1);
  });

  test('mandatory publish to nowhere comes back as basic.return 312 NO_ROUTE before its confirm', async () => {
    const c = await connect();
    const ch = await c.createConfirmChannel();
    const returned = new Promise<amqp.Message>((r) => ch.once('return', r));
    await confirmed(ch, 'amq.direct', 'nobody-listens', 'lost', { mandatory: true });
    const m = await returned;
    expect(m.fields).toMatchObject({ replyCode: 312, replyText: 'NO_ROUTE', exchange: 'amq.direct', routingKey: 'nobody-listens' });
    expect(m.content.toString()).toBe('lost');
  });

  test('server-named queues are amq.gen-…; exclusive ones belong to their connection and go with it', async () => {
    const c1 = await connect();
    const ch1 = await c1.createChannel();
    const { queue } = await ch1.assertQueue('', { exclusive: true });
    expect(queue).toMatch(/^amq\.gen-[A-Za-z0-9_-]{22}$/);
    const c2 = await connect();
    const ch2 = await c2.createChannel();
    const err = closedWith(ch2);
    await expect(ch2.checkQueue(queue)).rejects.toThrow(/RESOURCE_LOCKED - cannot obtain exclusive access to locked queue/);
    expect((await err).code).toBe(405);
    // Redeclaring an amq.* name is refused before anything else, as RabbitMQ checks the name first.
    const ch3 = await c2.createChannel();
    ch3.on('error', () => {});
    await expect(ch3.assertQueue(queue, { exclusive: true })).rejects.toThrow(/403/);
    await c1.close();
    await expect.poll(() => b.host.live().listQueues().some((q) => q.name === queue)).toBe(false);
  });

  test('an exclusive consumer keeps others out (403 in exclusive use); an auto-delete queue goes with its last consumer', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    const { queue } = await ch.assertQueue('ad-q', { durable: false, autoDelete: true });
    const { consumerTag } = await ch.consume(queue, () => {}, { exclusive: true });
    const other = await c.createChannel();
    const err = closedWith(other);
    await expect(other.consume(queue, () => {})).rejects.toThrow(`ACCESS_REFUSED - queue '${queue}' in vhost '/' in exclusive use`);
    expect((await err).code).toBe(403);
    await ch.cancel(consumerTag);
    await expect.poll(() => b.host.live().listQueues().some((q) => q.name === queue)).toBe(false);
  });

  test('prefetch caps unacknowledged deliveries per consumer; acking lets the next ones through', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    for (let i = 0; i < 5; i++) ch.sendToQueue(queue, Buffer.from(String(i)));
    await ch.prefetch(2);
    const got: ConsumeMessage[] = [];
    await ch.consume(queue, (m) => m && got.push(m));
    await expect.poll(() => got.length).toBe(2);
    expect(b.host.live().getQueue(queue)).toMatchObject({ ready: 3, unacked: 2 });
    ch.ack(got[1]!, true);
    await expect.poll(() => got.length).toBe(4);
    expect(got.map((m) => m.content.toString())).toEqual(['0', '1', '2', '3']);
  });

  test('basic.qos with global=true limits the channel\'s consumers together (RabbitMQ\'s meaning)', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    const q1 = (await ch.assertQueue('', { exclusive: true })).queue;
    const q2 = (await ch.assertQueue('', { exclusive: true })).queue;
    for (let i = 0; i < 4; i++) {
      ch.sendToQueue(q1, Buffer.from(`a${i}`));
      ch.sendToQueue(q2, Buffer.from(`b${i}`));
    }
    await ch.prefetch(3, true);
    const got: ConsumeMessage[] = [];
    await ch.consume(q1, (m) => m && got.push(m));
    await ch.consume(q2, (m) => m && got.push(m));
    await expect.poll(() => got.length).toBe(3);
    await expect.poll(() => b.host.live().getQueue(q1).unacked + b.host.live().getQueue(q2).unacked).toBe(3);
    ch.ack(got[0]!);
    await expect.poll(() => got.length).toBe(4);
  });

  test('nack with requeue redelivers (redelivered set); reject without requeue dead-letters with x-death as RabbitMQ writes it', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    await ch.assertExchange('dlx', 'fanout', { durable: false });
    const { queue: dlq } = await ch.assertQueue('dlq', { durable: false });
    await ch.bindQueue(dlq, 'dlx', '');
    const { queue } = await ch.assertQueue('work', { durable: false, arguments: { 'x-dead-letter-exchange': 'dlx' } });
    ch.sendToQueue(queue, Buffer.from('job'));
    const first = await new Promise<ConsumeMessage>((resolve) => {
      void ch.consume(queue, (m) => m && resolve(m), { consumerTag: 'w' });
    });
    expect(first.fields.redelivered).toBe(false);
    const again = new Promise<ConsumeMessage>((resolve) => ch.once('delivery', resolve));
    const second = await new Promise<ConsumeMessage>((resolve) => {
      void ch.cancel('w').then(() => ch.consume(queue, (m) => m && resolve(m)));
      ch.nack(first, false, true);
    });
    void again;
    expect(second.fields.redelivered).toBe(true);
    ch.reject(second, false);
    const dead = await nextMessage(ch, dlq);
    const deaths = dead.properties.headers!['x-death'] as unknown as Array<Record<string, unknown>>;
    expect(deaths).toHaveLength(1);
    expect(deaths[0]).toMatchObject({ count: 1, reason: 'rejected', queue: 'work', exchange: '', 'routing-keys': ['work'] });
    expect(typeof deaths[0]!.time).toBe('object');
    expect(dead.properties.headers).toMatchObject({ 'x-first-death-queue': 'work', 'x-first-death-reason': 'rejected', 'x-first-death-exchange': '' });
  });

  test('basic.get: get-ok with message count, get-empty, and an unacked get goes back on close', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    const { queue } = await ch.assertQueue('get-q', { durable: false });
    expect(await ch.get(queue)).toBe(false);
    ch.sendToQueue(queue, Buffer.from('a'));
    ch.sendToQueue(queue, Buffer.from('b'));
    await expect.poll(() => b.host.live().getQueue(queue).ready).toBe(2);
    const m = await ch.get(queue);
    expect(m && m.content.toString()).toBe('a');
    expect(m && m.fields.messageCount).toBe(1);
    expect(b.host.live().getQueue(queue)).toMatchObject({ ready: 1, unacked: 1 });
    await ch.close();
    await expect.poll(() => b.host.live().getQueue(queue)).toMatchObject({ ready: 2, unacked: 0 });
    const ch2 = await c.createChannel();
    const back = await ch2.get(queue, { noAck: true });
    expect(back && [back.content.toString(), back.fields.redelivered]).toEqual(['a', true]);
  });

  test('basic.recover requeues every unacknowledged delivery of the channel', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    ch.sendToQueue(queue, Buffer.from('x'));
    const seen: ConsumeMessage[] = [];
    await ch.consume(queue, (m) => m && seen.push(m));
    await expect.poll(() => seen.length).toBe(1);
    await ch.recover();
    await expect.poll(() => seen.length).toBe(2);
    expect(seen[1]!.fields.redelivered).toBe(true);
  });

  test('RPC over direct reply-to (amq.rabbitmq.reply-to)', async () => {
    const c = await connect();
    const server = await c.createChannel();
    const { queue } = await server.assertQueue('rpc', { durable: false });
    await server.consume(queue, (m) => {
      if (!m) return;
      server.sendToQueue(m.properties.replyTo, Buffer.from(`re: ${m.content}`), { correlationId: m.properties.correlationId });
      server.ack(m);
    });
    const client = await c.createChannel();
    const reply = new Promise<ConsumeMessage>((resolve) => void client.consume('amq.rabbitmq.reply-to', (m) => m && resolve(m), { noAck: true }));
    await new Promise((r) => setImmediate(r));
    client.sendToQueue(queue, Buffer.from('ping'), { replyTo: 'amq.rabbitmq.reply-to', correlationId: 'k1' });
    const m = await reply;
    expect(m.content.toString()).toBe('re: ping');
    expect(m.properties.correlationId).toBe('k1');
  });

  test('transactions: nothing is visible before commit; rollback discards', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    const { queue } = await ch.assertQueue('tx-q', { durable: false });
    // amqplib has no tx API; its channel speaks the methods directly, by id.
    const call = (ch as unknown as { rpc(method: number, fields: object, expect: number): Promise<unknown> }).rpc.bind(ch);
    const ids: Record<string, [number, number]> = { 'tx.select': [defs.TxSelect, defs.TxSelectOk], 'tx.commit': [defs.TxCommit, defs.TxCommitOk], 'tx.rollback': [defs.TxRollback, defs.TxRollbackOk] };
    const rpc = (name: string, _f: object, _ok: string) => call(ids[name]![0], {}, ids[name]![1]);
    await rpc('tx.select', {}, 'tx.select-ok');
    ch.sendToQueue(queue, Buffer.from('1'));
    ch.sendToQueue(queue, Buffer.from('2'));
    expect((await ch.checkQueue(queue)).messageCount).toBe(0);
    await rpc('tx.commit', {}, 'tx.commit-ok');
    expect((await ch.checkQueue(queue)).messageCount).toBe(2);
    ch.sendToQueue(queue, Buffer.from('3'));
    await rpc('tx.rollback', {}, 'tx.rollback-ok');
    await rpc('tx.commit', {}, 'tx.commit-ok');
    expect((await ch.checkQueue(queue)).messageCount).toBe(2);
  });

  test('a deleted queue cancels its consumers with basic.cancel (consumer_cancel_notify)', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    const { queue } = await ch.assertQueue('doomed', { durable: false });
    let cancelled = false;
    await ch.consume(queue, (m) => {
      if (m === null) cancelled = true;
    });
    const other = await c.createChannel();
    await other.deleteQueue(queue);
    await expect.poll(() => cancelled).toBe(true);
  });

  test('an unacknowledged delivery past x-consumer-timeout closes the channel with 406', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true, arguments: { 'x-consumer-timeout': 200 } });
    ch.sendToQueue(queue, Buffer.from('slow'));
    const err = closedWith(ch);
    await ch.consume(queue, () => {});
    const e = await err;
    expect(e.code).toBe(406);
    expect(e.message).toMatch(/delivery acknowledgement on channel 1 timed out. Timeout value used: 200 ms/);
  });

  test('the disk alarm blocks publishing connections with connection.blocked, and unblocks them', async () => {
    const c = await connect();
    const ch = await c.createConfirmChannel();
    await confirmed(ch, '', 'nowhere', 'x');
    const events = c.connection as unknown as import('node:events').EventEmitter;
    const blocked = new Promise<string>((r) => events.once('blocked', r));
    const unblocked = new Promise<void>((r) => events.once('unblocked', () => r()));
    b.host.live().setDiskFreeLimit(Number.MAX_SAFE_INTEGER);
    expect(await blocked).toBe('low on disk');
    b.host.live().setDiskFreeLimit(0);
    await unblocked;
    await confirmed(ch, '', 'nowhere', 'again');
  });

  test('a connection that starts publishing during the disk alarm gets a nack and is blocked', async () => {
    b.host.live().setDiskFreeLimit(Number.MAX_SAFE_INTEGER);
    try {
      const c = await connect();
      const events = c.connection as unknown as import('node:events').EventEmitter;
      const blocked = new Promise<string>((r) => events.once('blocked', r));
      const ch = await c.createConfirmChannel();
      await expect(confirmed(ch, '', 'nowhere', 'refused')).rejects.toThrow(/nack/i);
      expect(await blocked).toBe('low on disk');
    } finally {
      b.host.live().setDiskFreeLimit(0);
    }
  });
});

describe('errors raise what amqplib users know', () => {
  test('passive declare of a missing queue: 404 NOT_FOUND, channel closed', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    const err = closedWith(ch);
    await expect(ch.checkQueue('missing')).rejects.toThrow("NOT_FOUND - no queue 'missing' in vhost '/'");
    expect((await err).code).toBe(404);
  });

  test('publishing to a missing exchange: 404 on the channel', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    const err = closedWith(ch);
    ch.publish('no-such-exchange', 'k', Buffer.from('x'));
    expect(await err).toMatchObject({ code: 404, message: expect.stringContaining("NOT_FOUND - no exchange 'no-such-exchange' in vhost '/'") });
  });

  test('an unknown delivery tag: 406 PRECONDITION_FAILED', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    const err = closedWith(ch);
    ch.ack({ fields: { deliveryTag: 99 } } as unknown as ConsumeMessage);
    expect(await err).toMatchObject({ code: 406, message: expect.stringContaining('PRECONDITION_FAILED - unknown delivery tag 99') });
  });

  test('redeclaring with other properties: 406 inequivalent arg', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    await ch.assertQueue('eq-q', { durable: true });
    const err = closedWith(ch);
    await expect(ch.assertQueue('eq-q', { durable: false })).rejects.toThrow("PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'eq-q' in vhost '/': received 'false' but current is 'true'");
    expect((await err).code).toBe(406);
  });

  test('reserved names: 403 ACCESS_REFUSED', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    await expect(ch.assertQueue('amq.mine')).rejects.toThrow("ACCESS_REFUSED - queue name 'amq.mine' contains reserved prefix 'amq.*'");
  });

  test('wrong password: ACCESS_REFUSED 403 at connect', async () => {
    await expect(amqp.connect(`amqp://guest:nope@127.0.0.1:${b.port}`)).rejects.toThrow(/ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN/);
  });

  test('unknown vhost: 530 NOT_ALLOWED', async () => {
    // amqplib reports a close during the handshake without its text; the raw-protocol tests check the 530 and its words.
    await expect(amqp.connect(`amqp://guest:guest@127.0.0.1:${b.port}/nowhere`)).rejects.toThrow(/Expected ConnectionOpenOk; got <ConnectionClose/);
  });

  test('a user without write permission on an exchange: 403, as RabbitMQ words it', async () => {
    b.listener.amqp.users.putUser('reader', 'secret');
    b.listener.amqp.users.setPermissions('reader', '/', { configure: '^$', write: '^$', read: '.*' });
    const c = await connect(`amqp://reader:secret@127.0.0.1:${b.port}`);
    const ch = await c.createChannel();
    ch.on('error', () => {});
    await expect(ch.assertQueue('readers-own')).rejects.toThrow("ACCESS_REFUSED - configure access to queue 'readers-own' in vhost '/' refused for user 'reader'");
    const ch2 = await c.createChannel();
    const err = closedWith(ch2);
    ch2.publish('amq.direct', 'k', Buffer.from('x'));
    expect(await err).toMatchObject({ code: 403, message: expect.stringContaining("ACCESS_REFUSED - write access to exchange 'amq.direct' in vhost '/' refused for user 'reader'") });
  });

  test('virtual hosts: a user needs permissions on one; deleting it closes its connections with 320', async () => {
    b.host.createVhost('staging');
    await expect(amqp.connect(`amqp://guest:guest@127.0.0.1:${b.port}/staging`)).rejects.toThrow(/ConnectionClose/);
    b.listener.amqp.users.setPermissions('guest', 'staging', { configure: '.*', write: '.*', read: '.*' });
    const c = await connect(`amqp://guest:guest@127.0.0.1:${b.port}/staging`);
    const ch = await c.createChannel();
    await ch.assertQueue('only-in-staging', { durable: false });
    expect(b.host.live('staging').listQueues().map((q) => q.name)).toContain('only-in-staging');
    expect(b.host.live().listQueues().map((q) => q.name)).not.toContain('only-in-staging');
    // amqplib reports 320 on 'close' (with the error), not on 'error'.
    const closed = new Promise<Error>((resolve) => c.once('close', resolve));
    b.host.deleteVhost('staging');
    expect((await closed).message).toMatch(/320 \(CONNECTION-FORCED\) with message "CONNECTION_FORCED - vhost 'staging' is deleted"/);
    open.splice(open.indexOf(c), 1);
  });

  test('AMQPLAIN works as PLAIN does', async () => {
    const c = await connect(b.url, { credentials: { mechanism: 'AMQPLAIN', response: () => Buffer.from(amqplainResponse('guest', 'guest')), username: 'guest', password: 'guest' } });
    const ch = await c.createChannel();
    expect((await ch.assertQueue('', { exclusive: true })).queue).toMatch(/^amq\.gen-/);
  });
});

/** AMQPLAIN's response: a field table's entries, without the table's length. */
function amqplainResponse(user: string, password: string): Buffer {
  const entry = (k: string, v: string) => Buffer.concat([Buffer.from([k.length]), Buffer.from(k), Buffer.from('S'), Buffer.from([0, 0, 0, v.length]), Buffer.from(v)]);
  return Buffer.concat([entry('LOGIN', user), entry('PASSWORD', password)]);
}
