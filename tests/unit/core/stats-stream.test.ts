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
  it('streams each queue\'s counts and rates each second, without its flags and arguments', async () => {
    await core.call('queues/declare', { connectionId: 'local', queue: 'stats.lean', durable: true, arguments: { 'x-message-ttl': 60_000 } });
    const snapshot = await new Promise<{ queues: Array<Record<string, unknown>> }>((resolve, reject) => {
      let off: (() => void) | null = null;
      off = core.subscribe('stats', { connectionId: 'local' }, (s) => {
        off?.();
        resolve(s as unknown as { queues: Array<Record<string, unknown>> });
      });
      setTimeout(() => reject(new Error('no sample within 5 s')), 5000);
    });
    const q = snapshot.queues.find((x) => x.name === 'stats.lean');
    expect(q).toBeDefined();
    expect(Object.keys(q!).sort()).toEqual(['bytes', 'consumers', 'deadLetterFor', 'delayed', 'messages', 'name', 'rates', 'ready', 'type', 'unacked']);
    // The full description is one call away.
    const full = await core.call('queues/get', { connectionId: 'local', queue: 'stats.lean' });
    expect(full.arguments).toEqual({ 'x-message-ttl': 60_000 });
  });

});
