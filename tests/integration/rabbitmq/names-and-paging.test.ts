/**
 * Smaller RabbitMQ matters, against a real server through the core: a name
 * over AMQP's 255-byte limit is refused naming the field and the limit (not
 * amqplib's "wrong type"); a message without a timestamp has no time rather
 * than 1970 and falls in no time range; queues/list pages come from the
 * management API's paginated list and add up to the whole list.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCore, type Core } from '../../../src-main/core/core.js';
import { prepareBroker } from './broker.js';

const rabbit = await prepareBroker();

describe.skipIf(!rabbit.ok)(`RabbitMQ names, timestamps and queue pages${rabbit.ok ? '' : ` (skipped: ${rabbit.reason})`}`, { timeout: 60_000 }, () => {
  let core: Core;
  let connectionId = '';

  beforeAll(async () => {
    if (!rabbit.ok) return;
    core = await startCore({ dataDir: null, version: '0.0.0-test' });
    connectionId = (await core.call('connections/create', rabbit.config({ name: 'names' }))).id;
  });

  afterAll(async () => {
    await core?.close();
    if (rabbit.ok) await rabbit.cleanup();
  });

  it('refuses a 300-byte unicode queue name naming the field and the 255-byte limit', async () => {
    const queue = '€'.repeat(100);
    expect(Buffer.byteLength(queue)).toBe(300);
    for (const call of [
      () => core.call('queues/declare', { connectionId, queue }),
      () => core.call('queues/messages', { connectionId, queue }),
      () => core.call('queues/purge', { connectionId, queue }),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'queue', message: expect.stringMatching(/255 bytes.*300 bytes/) });
    }
    await expect(core.call('publish', { connectionId, routingKey: queue, body: 'x' })).rejects.toMatchObject({ field: 'routingKey' });
  });

  it('leaves the time of a message without a timestamp unrecorded', async () => {
    if (!rabbit.ok) return;
    const queue = `untimed-${randomUUID().slice(0, 8)}`;
    const model = await rabbit.connect();
    try {
      const ch = await model.createConfirmChannel();
      await ch.assertQueue(queue, { durable: false });
      ch.sendToQueue(queue, Buffer.from('no time'), { messageId: 'untimed' });
      ch.sendToQueue(queue, Buffer.from('timed'), { messageId: 'timed', timestamp: Math.floor(Date.now() / 1000) });
      await ch.waitForConfirms();
    } finally {
      await model.close();
    }
    const page = await core.call('queues/messages', { connectionId, queue });
    const [untimed, timed] = page.messages;
    expect(untimed!.properties.timestamp).toBeUndefined();
    expect(untimed!.enqueuedAt).toBe(0);
    expect(timed!.enqueuedAt).toBeGreaterThan(Date.parse('2020-01-01'));
    // An unrecorded time is in no time range, however wide.
    const ranged = await core.call('queues/messages', { connectionId, queue, to: Date.now() + 60_000 });
    expect(ranged.messages.map((m) => m.properties.messageId)).toEqual(['timed']);
  });

  it('lists queues page by page, the pages adding up to the whole list', async () => {
    const prefix = `paged-${randomUUID().slice(0, 6)}`;
    for (let i = 0; i < 25; i++) await core.call('queues/declare', { connectionId, queue: `${prefix}-${String(i).padStart(2, '0')}`, durable: false });
    const whole = (await core.call('queues/list', { connectionId })).map((q) => q.name);
    expect(whole.filter((n) => n.startsWith(prefix))).toHaveLength(25);
    const pages: string[] = [];
    for (let page = 1; page <= Math.ceil(whole.length / 10); page++) {
      const got = await core.call('queues/list', { connectionId, page, pageSize: 10 });
      expect(got.length).toBeLessThanOrEqual(10);
      pages.push(...got.map((q) => q.name));
    }
    expect(pages).toEqual(whole);
    expect(await core.call('queues/list', { connectionId, page: 99, pageSize: 10 })).toEqual([]);
    // The embedded broker's pages are cut from its whole list.
    const local = (await core.call('queues/list', { connectionId: 'local' })).map((q) => q.name);
    expect((await core.call('queues/list', { connectionId: 'local', page: 1, pageSize: 1 })).map((q) => q.name)).toEqual(local.slice(0, 1));
  });
});
