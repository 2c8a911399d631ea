/**
 * Frame fuzzing of the AMQP listener: valid frame sequences (declares,
 * bindings, publishes with content, consumes, acks, qos, transactions,
 * confirms), mutated (bytes flipped, inserted, cut, sizes and types changed,
 * channels swapped) and mixed with random frames, sent over many connections
 * at once. The process must never crash, every connection must end, memory
 * must stay bounded, and a well-behaved client must still be served after.
 *
 * `npm test` sends AMQP_FUZZ_CASES frames (default 3,000); `npm run fuzz:amqp`
 * sends 1,000,000, bounded by AMQP_FUZZ_MS. Each run prints its seed;
 * AMQP_FUZZ_SEED=<seed> replays one.
 */
import amqp from 'amqplib';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { FrameWriter, PROTOCOL_HEADER } from '../../../src-main/protocols/amqp/frame.js';
import type { MethodInput, MethodName } from '../../../src-main/protocols/amqp/generated/spec.js';
import { silentLogger, type Logger } from '../../../src-main/ground/logger.js';
import { RawClient } from './raw.js';
import { startBroker, type TestBroker } from './server.js';

const CASES = Number(process.env.AMQP_FUZZ_CASES ?? 3000);
const TIME_MS = Number(process.env.AMQP_FUZZ_MS ?? 20_000);
const SEED = Number(process.env.AMQP_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const PARALLEL = 8;
const FRAMES_PER_CONNECTION = 60;

let b: TestBroker;
/** Errors the listener logs are its own bugs (an exception it did not expect), never the peer's mistakes. */
const bugs: string[] = [];
const logger: Logger = { ...silentLogger, error: (message: string, fields?: Record<string, unknown>) => void bugs.push(`${message} ${JSON.stringify(fields)}`) };
beforeAll(async () => {
  b = await startBroker({ consumerTimeoutMs: 5_000 }, logger);
});
afterAll(async () => {
  await b?.stop();
});

/** mulberry32: small, seedable, good enough to pick mutations. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function handshakeBytes(): Buffer {
  const w = new FrameWriter();
  w.method(0, 'connection.start-ok', { clientProperties: { product: 'fuzz', capabilities: { consumer_cancel_notify: true, 'connection.blocked': true } }, mechanism: 'PLAIN', response: Buffer.from('\0guest\0guest') });
  w.method(0, 'connection.tune-ok', { channelMax: 16, frameMax: 8192, heartbeat: 0 });
  w.method(0, 'connection.open', { virtualHost: '/' });
  return Buffer.concat([PROTOCOL_HEADER, w.take()]);
}

/** One valid frame group (a method, or a publish with its header and body), as bytes. */
function validGroup(r: () => number): Buffer {
  const w = new FrameWriter();
  const ch = 1 + Math.floor(r() * 3);
  const q = `fz-${Math.floor(r() * 4)}`;
  const m = <N extends MethodName>(name: N, args: MethodInput<N>) => w.method(ch, name, args);
  const pick = Math.floor(r() * 16);
  switch (pick) {
    case 0:
      m('channel.open', {});
      break;
    case 1:
      m('queue.declare', { queue: q, durable: r() < 0.5, autoDelete: r() < 0.2, exclusive: r() < 0.2, arguments: r() < 0.5 ? { 'x-max-length': Math.floor(r() * 5), 'x-message-ttl': 1000, 'x-dead-letter-exchange': 'fz-x' } : {} });
      break;
    case 2:
      m('exchange.declare', { exchange: 'fz-x', type: ['direct', 'fanout', 'topic', 'headers', 'bogus'][Math.floor(r() * 5)]!, arguments: { deep: { list: [1, 'a', true, null, Buffer.from([1])] } } });
      break;
    case 3:
      m('queue.bind', { queue: q, exchange: 'fz-x', routingKey: '#' });
      break;
    case 4:
    case 5:
    case 6: {
      m('basic.publish', { exchange: r() < 0.7 ? '' : 'fz-x', routingKey: q, mandatory: r() < 0.3 });
      const body = Buffer.alloc(Math.floor(r() * 20000), 0x61);
      w.content(ch, { deliveryMode: r() < 0.5 ? 2 : 1, headers: { i: Math.floor(r() * 1000) }, expiration: r() < 0.1 ? '50' : undefined }, body, 8192);
      break;
    }
    case 7:
      m('basic.consume', { queue: q, noAck: r() < 0.3, consumerTag: r() < 0.5 ? `t${Math.floor(r() * 3)}` : '' });
      break;
    case 8:
      m('basic.ack', { deliveryTag: Math.floor(r() * 5), multiple: r() < 0.5 });
      break;
    case 9:
      m('basic.nack', { deliveryTag: Math.floor(r() * 5), multiple: r() < 0.5, requeue: r() < 0.5 });
      break;
    case 10:
      m('basic.qos', { prefetchCount: Math.floor(r() * 10), global: r() < 0.5 });
      break;
    case 11:
      m('confirm.select', {});
      break;
    case 12:
      m(r() < 0.5 ? 'tx.select' : 'tx.commit', {});
      break;
    case 13:
      m('basic.get', { queue: q, noAck: r() < 0.5 });
      break;
    case 14:
      m('queue.delete', { queue: q });
      break;
    default:
      m('channel.close', { replyCode: 200, replyText: 'bye' });
  }
  return w.take();
}

function mutate(r: () => number, b0: Buffer): Buffer {
  const b1 = Buffer.from(b0);
  const kind = Math.floor(r() * 8);
  const at = Math.floor(r() * Math.max(1, b1.length));
  switch (kind) {
    case 0:
      if (b1.length) b1[at] = Math.floor(r() * 256);
      return b1;
    case 1:
      return Buffer.concat([b1.subarray(0, at), Buffer.from([Math.floor(r() * 256)]), b1.subarray(at)]);
    case 2:
      return b1.subarray(0, at);
    case 3:
      if (b1.length >= 7) b1.writeUInt32BE(Math.floor(r() * 2 ** 32), 3);
      return b1;
    case 4:
      if (b1.length) b1[0] = Math.floor(r() * 10);
      return b1;
    case 5:
      if (b1.length >= 3) b1.writeUInt16BE(Math.floor(r() * 65536), 1);
      return b1;
    case 6:
      return Buffer.from(Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256)));
    default:
      return Buffer.concat([b1, b1]);
  }
}

async function runConnection(r: () => number, frames: number): Promise<void> {
  const c = await RawClient.connect(b.port);
  c.write(handshakeBytes());
  const parts: Buffer[] = [];
  for (let i = 0; i < frames; i++) {
    const g = validGroup(r);
    parts.push(r() < 0.06 ? mutate(r, g) : g);
  }
  const w = new FrameWriter();
  w.method(0, 'connection.close', { replyCode: 200, replyText: 'done' });
  parts.push(w.take());
  c.write(Buffer.concat(parts));
  // The connection ends one way or another: close-ok, a connection exception, or the server dropping it.
  const ended = c.until(() => c.closed || c.methods().some((m) => m.name === 'connection.close-ok' || m.name === 'connection.close'));
  const timer = new Promise<void>((resolve) => setTimeout(resolve, 5_000).unref());
  await Promise.race([ended.catch(() => {}), timer]);
  c.close();
}

test(`${CASES} generated and mutated frames never crash the listener (seed ${SEED})`, { timeout: TIME_MS + 60_000 }, async () => {
  console.log(`AMQP frame fuzz: ${CASES} frames, seed ${SEED} (replay with AMQP_FUZZ_SEED=${SEED})`);
  const r = rng(SEED);
  const started = Date.now();
  const heapBefore = process.memoryUsage().heapUsed;
  let sent = 0;
  let peakHeap = heapBefore;
  while (sent < CASES && Date.now() - started < TIME_MS) {
    const batch: Promise<void>[] = [];
    for (let k = 0; k < PARALLEL && sent < CASES; k++) {
      const n = Math.min(FRAMES_PER_CONNECTION, CASES - sent);
      sent += n;
      batch.push(runConnection(r, n));
    }
    await Promise.all(batch);
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  }
  console.log(`AMQP frame fuzz: ${sent} frames in ${Date.now() - started} ms; heap ${(heapBefore / 2 ** 20).toFixed(0)} MB before, peak ${(peakHeap / 2 ** 20).toFixed(0)} MB`);
  expect(sent).toBeGreaterThan(0);
  expect(bugs.slice(0, 5)).toEqual([]);
  await expect.poll(() => b.listener.connections().size).toBe(0);
  // Bounded: the fuzz's own garbage aside, nothing piles up per connection.
  expect(peakHeap - heapBefore).toBeLessThan(512 * 2 ** 20);
  const good = await amqp.connect(b.url);
  const ch = await good.createConfirmChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  await new Promise<void>((resolve, reject) => ch.sendToQueue(queue, Buffer.from('after the storm'), {}, (e) => (e ? reject(e) : resolve())));
  expect((await ch.checkQueue(queue)).messageCount).toBe(1);
  await good.close();
});
