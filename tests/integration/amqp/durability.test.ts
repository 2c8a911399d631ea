/**
 * Publisher confirms mean "on disk": the broker (default 'full' sync) writes
 * a batch to SQLite's log at COMMIT, and confirms it only after an fdatasync
 * of the log, run in the background, has returned. Here the fdatasync the
 * broker calls (Node's own, on the real -wal file) is held back: the message
 * is stored and visible, yet no confirm comes until the sync is let go.
 */
import amqp from 'amqplib';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startBroker, type TestBroker } from './server.js';

let b: TestBroker;
const original = fs.fdatasync;
let holding = false;
const held: Array<() => void> = [];
const walSyncs: string[] = [];

beforeAll(async () => {
  b = await startBroker();
  // Node's fdatasync, let through or held back; which file each call syncs is written down.
  fs.fdatasync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    walSyncs.push(fs.readlinkSync(`/proc/self/fd/${fd}`));
    if (holding) held.push(() => original(fd, cb));
    else original(fd, cb);
  }) as typeof fs.fdatasync;
  syncBuiltinESMExports();
});
afterAll(async () => {
  fs.fdatasync = original;
  syncBuiltinESMExports();
  for (const release of held.splice(0)) release();
  await b?.stop();
});

test.skipIf(process.platform !== 'linux')('a confirm waits for the fdatasync of the log that follows its commit', async () => {
  const conn = await amqp.connect(b.url);
  try {
    const ch = await conn.createConfirmChannel();
    const other = await conn.createChannel();
    await ch.assertQueue('durable-confirms', { durable: true });
    holding = true;
    let confirmed = false;
    const confirm = new Promise<void>((resolve, reject) =>
      ch.sendToQueue('durable-confirms', Buffer.from('x'), { persistent: true }, (err) => {
        confirmed = true;
        if (err) reject(err);
        else resolve();
      }),
    );
    // A sync is asked for only after a COMMIT: the message is stored.
    await expect.poll(() => held.length, { timeout: 10_000 }).toBeGreaterThan(0);
    // A round trip on the same socket: a confirm sent at COMMIT would have arrived before its reply.
    const { messageCount } = await other.checkQueue('durable-confirms');
    expect(messageCount).toBe(1);
    expect(confirmed).toBe(false);
    holding = false;
    for (const release of held.splice(0)) release();
    await confirm;
    expect(walSyncs.length).toBeGreaterThan(0);
    expect(walSyncs.every((f) => f.endsWith('brokerdeck.db-wal'))).toBe(true);
  } finally {
    await conn.close();
  }
});
