import { describe, it, expect } from 'vitest';
import { statfsSync } from 'node:fs';
import { Engine } from '../../../src-main/broker/index.js';
import { b, tempDir } from './helpers.js';

/** Free bytes on the disk of `dir`, as the engine reads them. */
function freeBytes(dir: string): number {
  const fs = statfsSync(dir);
  return Number(fs.bavail) * Number(fs.bsize);
}

describe('disk alarm (disk_free_limit)', () => {
  it('refuses publishing while the disk has less free space than the limit; consuming goes on; lifts when there is room', async () => {
    const { dir, cleanup } = tempDir();
    // A limit above what this disk has free: the alarm is on from the start.
    const e = Engine.open({ dataDir: dir, timers: false, diskFreeLimit: freeBytes(dir) + 10 ** 12 });
    try {
      expect(e.diskAlarm).toMatchObject({ limit: expect.any(Number), free: expect.any(Number) });
      expect(e.diskAlarm!.message).toMatch(/^disk alarm: [\d,.]+ [MGT]B free on the disk of .+, below the limit of [\d,.]+ [MGT]B; publishing is refused/);
      e.declareQueue('q', { durable: true });
      await expect(e.publish({ exchange: '', routingKey: 'q', body: b('x') })).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/^disk alarm/) });
      await expect(e.publishMany({ exchange: '', routingKey: 'q', body: b('x'), count: 3 })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      e.createTopic('t', { partitions: 1 });
      await expect(e.produce('t', [{ key: null, value: b('v'), headers: {} }])).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      expect(e.getQueue('q').messages).toBe(0);

      const events: Array<unknown> = [];
      e.events.on('alarm', (a) => events.push(a));
      // Room again (here: a lower limit): publishing works, and consuming never stopped.
      expect(e.setDiskFreeLimit(1)).toBeNull();
      expect(events).toEqual([null]);
      await e.publish({ exchange: '', routingKey: 'q', body: b('a'), properties: { deliveryMode: 2 } });
      await e.publish({ exchange: '', routingKey: 'q', body: b('b'), properties: { deliveryMode: 2 } });
      e.setDiskFreeLimit(freeBytes(dir) + 10 ** 12);
      expect(events).toHaveLength(2);
      const got = await e.get('q', { count: 1, ackMode: 'ack' });
      expect(got.map((m) => m.body.toString())).toEqual(['a']);
      expect(e.browse('q').messages.map((m) => m.body.toString())).toEqual(['b']);
      // 0 turns the check off.
      expect(e.setDiskFreeLimit(0)).toBeNull();
      await e.publish({ exchange: '', routingKey: 'q', body: b('c') });
      expect(() => e.setDiskFreeLimit(-1)).toThrow(/diskFreeLimit/);
    } finally {
      e.close();
      cleanup();
    }
  });

  it('never applies to a database in memory, and the default leaves an ordinary disk alone', async () => {
    const mem = Engine.open({ dataDir: null, timers: false, diskFreeLimit: Number.MAX_SAFE_INTEGER });
    expect(mem.diskAlarm).toBeNull();
    mem.close();
    const { dir, cleanup } = tempDir();
    const e = Engine.open({ dataDir: dir, timers: false });
    // The default is RabbitMQ's 50 MB: a test machine has more free.
    if (freeBytes(dir) > 50_000_000) expect(e.diskAlarm).toBeNull();
    else expect(e.diskAlarm?.limit).toBe(50_000_000);
    e.close();
    cleanup();
    expect(() => Engine.open({ dataDir: null, diskFreeLimit: 1.5 })).toThrow(/diskFreeLimit/);
  });
});
