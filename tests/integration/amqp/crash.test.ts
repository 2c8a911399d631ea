/**
 * SIGKILL during confirmed publishing over AMQP, repeated: every message the
 * broker confirmed to amqplib is in the queue after the restart. The broker
 * runs in a child process with its data on disk; the parent publishes
 * persistent messages with confirms and kills the broker at a moment that
 * moves each round.
 */
import amqp from 'amqplib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { bundleBrokerChild, startChildBroker } from './child.js';

const ROUNDS = 4;
let work: string;
let bundle: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'brokerdeck-amqp-crash-'));
  bundle = await bundleBrokerChild(work);
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

test(`SIGKILL while publishing with confirms, ${ROUNDS} times: every confirmed message survives`, { timeout: 120_000 }, async () => {
  const dataDir = join(work, 'data');
  const confirmed = new Set<string>();
  for (let round = 0; round < ROUNDS; round++) {
    const broker = await startChildBroker(bundle, dataDir);
    const conn = await amqp.connect(broker.url);
    conn.on('error', () => {});
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => {});
    await ch.assertQueue('crash', { durable: true });
    let i = 0;
    let stop = false;
    const publishing = (async () => {
      while (!stop) {
        const id = `${round}-${i++}`;
        try {
          ch.sendToQueue('crash', Buffer.from(id), { persistent: true }, (err) => {
            if (!err) confirmed.add(id);
          });
        } catch {
          // The broker was killed: amqplib refuses to publish on the dead channel.
          break;
        }
        if (i % 200 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    // Kill once this round has some confirms, at a point that moves with the round.
    const target = confirmed.size + 500 + round * 700;
    await expect.poll(() => confirmed.size >= target, { interval: 2 }).toBe(true);
    broker.child.kill('SIGKILL');
    await broker.exited;
    stop = true;
    await publishing;
    await conn.close().catch(() => {});
  }
  const broker = await startChildBroker(bundle, dataDir);
  const conn = await amqp.connect(broker.url);
  const ch = await conn.createChannel();
  const { messageCount } = await ch.checkQueue('crash');
  const stored = new Set<string>();
  await ch.consume('crash', (m) => m && stored.add(m.content.toString()), { noAck: true });
  await expect.poll(() => stored.size).toBe(messageCount);
  await conn.close();
  broker.child.kill('SIGTERM');
  await broker.exited;
  const lost = [...confirmed].filter((id) => !stored.has(id));
  console.log(`AMQP crash test: ${confirmed.size} confirmed over ${ROUNDS} kills, ${stored.size} stored, ${lost.length} lost`);
  expect(confirmed.size).toBeGreaterThan(ROUNDS * 500);
  expect(lost).toEqual([]);
});
