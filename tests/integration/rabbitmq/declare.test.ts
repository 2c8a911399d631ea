/**
 * Declaring on a real RabbitMQ through the core: exchanges of each type with
 * bindings between them, and policies (created, applied to a queue, replaced,
 * refused when RabbitMQ refuses them, deleted); the embedded broker, which has
 * no policies, says so.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCore, type Core } from '../../../src-main/core/core.js';
import { prepareBroker } from './broker.js';

const rabbit = await prepareBroker();
const id = () => randomUUID().slice(0, 8);

describe.skipIf(!rabbit.ok)(`declaring on RabbitMQ${rabbit.ok ? '' : ` (skipped: ${rabbit.reason})`}`, { timeout: 60_000 }, () => {
  let core: Core;
  let connectionId = '';

  beforeAll(async () => {
    if (!rabbit.ok) return;
    core = await startCore({ dataDir: null, version: '0.0.0-test' });
    connectionId = (await core.call('connections/create', rabbit.config({ name: 'declare' }))).id;
  });

  afterAll(async () => {
    await core?.close();
    if (rabbit.ok) await rabbit.cleanup();
  });

  it('declares an exchange of each type and binds them', async () => {
    if (!rabbit.ok) return;
    for (const type of ['direct', 'fanout', 'topic', 'headers'] as const) {
      const exchange = `ex-${type}-${id()}`;
      const args = type === 'topic' ? { 'alternate-exchange': 'amq.fanout' } : {};
      await core.call('exchanges/declare', { connectionId, exchange, type, arguments: args });
      await expect.poll(async () => (await core.call('exchanges/get', { connectionId, exchange })).type).toBe(type);
      const queue = `bound-${type}-${id()}`;
      await core.call('queues/declare', { connectionId, queue, durable: false });
      const binding = await core.call('bindings/create', {
        connectionId,
        source: exchange,
        destination: queue,
        routingKey: type === 'topic' ? 'orders.#' : 'k',
        arguments: type === 'headers' ? { 'x-match': 'all', kind: 'order' } : {},
      });
      expect(binding.destination).toBe(queue);
      const r = await core.call('publish', {
        connectionId,
        exchange,
        routingKey: type === 'topic' ? 'orders.eu' : 'k',
        body: 'routed',
        properties: type === 'headers' ? { headers: { kind: 'order' } } : {},
      });
      expect(r.returned).toBe(0);
      // AMQP's own count: the management API's lags its statistics interval.
      const model = await rabbit.connect();
      try {
        const ch = await model.createChannel();
        await expect.poll(async () => (await ch.checkQueue(queue)).messageCount).toBe(1);
      } finally {
        await model.close();
      }
    }
  });

  it('creates, applies, replaces and deletes a policy', async () => {
    const queue = `policed-${id()}`;
    const name = `p-${id()}`;
    await core.call('queues/declare', { connectionId, queue, durable: false });
    const p = await core.call('policies/declare', { connectionId, name, pattern: `^${queue}$`, applyTo: 'queues', priority: 7, definition: { 'max-length': 10 } });
    expect(p).toEqual({ name, pattern: `^${queue}$`, applyTo: 'queues', priority: 7, definition: { 'max-length': 10 } });
    expect((await core.call('policies/list', { connectionId })).find((x) => x.name === name)).toMatchObject({ priority: 7, definition: { 'max-length': 10 } });
    await expect.poll(async () => (await core.call('queues/get', { connectionId, queue })).policy?.name).toBe(name);
    await core.call('policies/declare', { connectionId, name, pattern: `^${queue}$`, applyTo: 'queues', definition: { 'max-length': 20 } });
    expect((await core.call('policies/list', { connectionId })).find((x) => x.name === name)?.definition).toEqual({ 'max-length': 20 });
    await expect(core.call('policies/declare', { connectionId, name, pattern: '.*', definition: { 'max-length': 'lots' } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'definition',
    });
    await expect(core.call('policies/declare', { connectionId, name, pattern: '(', definition: {} })).rejects.toMatchObject({ field: 'pattern' });
    expect(await core.call('policies/delete', { connectionId, name })).toEqual({ deleted: true });
    expect((await core.call('policies/list', { connectionId })).some((x) => x.name === name)).toBe(false);
    await expect(core.call('policies/delete', { connectionId, name })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(core.call('policies/declare', { connectionId: 'local', name, pattern: '.*', definition: {} })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('embedded broker has none'),
    });
  });
});
