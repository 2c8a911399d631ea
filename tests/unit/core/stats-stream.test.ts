import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCore, type Core } from '../../../src-main/core/core.js';

let core: Core;
beforeAll(async () => {
  core = await startCore({ dataDir: null, version: '9.9.9' });
});
afterAll(async () => {
  await core.close();
});

describe('live statistics stream', () => {
  it('samples a connection once for every subscriber: a second one gets the latest sample at once', async () => {
    const first: number[] = [];
    const offFirst = core.subscribe('stats', { connectionId: 'local' }, (s) => first.push(s.at));
    await expect.poll(() => first.length, { timeout: 30_000 }).toBeGreaterThan(0);
    const second: number[] = [];
    const latest = first.at(-1);
    const offSecond = core.subscribe('stats', { connectionId: 'local' }, (s) => second.push(s.at));
    await expect.poll(() => second.length, { timeout: 30_000 }).toBeGreaterThan(0);
    // The cached sample, not a new one: same instant as the first subscriber's latest
    // (a fresh sample would carry a later instant).
    expect(second[0]).toBe(latest);
    // From then on both see the same samples.
    await expect.poll(() => second.length, { timeout: 30_000 }).toBeGreaterThan(1);
    expect(first).toContain(second[1]);
    offFirst();
    // The second keeps receiving after the first leaves.
    const n = second.length;
    await expect.poll(() => second.length, { timeout: 30_000 }).toBeGreaterThan(n);
    offSecond();
  });

  it('streams each queue\'s counts and rates each second, without its flags and arguments', async () => {
    await core.call('queues/declare', { connectionId: 'local', queue: 'stats.lean', durable: true, arguments: { 'x-message-ttl': 60_000 } });
    const snapshot = await new Promise<{ queues: Array<Record<string, unknown>> }>((resolve, reject) => {
      let off: (() => void) | null = null;
      off = core.subscribe('stats', { connectionId: 'local' }, (s) => {
        off?.();
        resolve(s as unknown as { queues: Array<Record<string, unknown>> });
      });
      setTimeout(() => reject(new Error('no sample within 30 s')), 30_000);
    });
    const q = snapshot.queues.find((x) => x.name === 'stats.lean');
    expect(q).toBeDefined();
    expect(Object.keys(q!).sort()).toEqual(['bytes', 'consumers', 'deadLetterFor', 'delayed', 'messages', 'name', 'rates', 'ready', 'type', 'unacked']);
    // The full description is one call away.
    const full = await core.call('queues/get', { connectionId: 'local', queue: 'stats.lean' });
    expect(full.arguments).toEqual({ 'x-message-ttl': 60_000 });
  });

});
