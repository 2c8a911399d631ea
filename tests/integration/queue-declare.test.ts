/**
 * Declaring queues through the core on the embedded broker and a real
 * RabbitMQ: a dead-letter exchange or queue that does not exist is named in
 * `warnings`, or created (exchange, queue, binding) with `createDeadLetter`,
 * after which an expired message really lands in the dead-letter queue;
 * arguments are checked by name before any broker sees them, and every
 * argument the broker supports is accepted and shown back.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCore, type Core } from '../../src-main/core/core.js';
import { prepareBroker } from './rabbitmq/broker.js';

const rabbit = await prepareBroker();
const id = () => randomUUID().slice(0, 8);

let core: Core;
let rabbitId = '';

beforeAll(async () => {
  core = await startCore({ dataDir: null, version: '0.0.0-test' });
  if (rabbit.ok) rabbitId = (await core.call('connections/create', rabbit.config({ name: 'declare' }))).id;
});

afterAll(async () => {
  await core?.close();
  if (rabbit.ok) await rabbit.cleanup();
});

const targets: Array<[string, () => string, boolean]> = [
  ['the embedded broker', () => 'local', true],
  [`RabbitMQ${rabbit.ok ? '' : ` (skipped: ${rabbit.reason})`}`, () => rabbitId, rabbit.ok],
];

describe.each(targets)('declaring queues on %s', (_label, connection, available) => {
  it.skipIf(!available)('names a missing dead-letter exchange in warnings, and creates it with createDeadLetter', async () => {
    const connectionId = connection();
    const dlx = `dlx-${id()}`;
    const warned = await core.call('queues/declare', { connectionId, queue: `orders-${id()}`, durable: false, arguments: { 'x-dead-letter-exchange': dlx } });
    expect(warned.warnings).toEqual([expect.stringContaining(`"${dlx}" does not exist`)]);
    await expect(core.call('exchanges/get', { connectionId, exchange: dlx })).rejects.toMatchObject({ code: 'NOT_FOUND' });

    const queue = `orders-${id()}`;
    const made = await core.call('queues/declare', {
      connectionId,
      queue,
      durable: false,
      arguments: { 'x-dead-letter-exchange': dlx, 'x-message-ttl': 1 },
      createDeadLetter: true,
    });
    expect(made.warnings).toBeUndefined();
    expect(made.created).toEqual([`exchange "${dlx}" (fanout)`, `queue "${queue}.dlq"`, `binding "${dlx}" → "${queue}.dlq"`]);
    // An expiring message now reaches the dead-letter queue instead of vanishing.
    await core.call('publish', { connectionId, routingKey: queue, body: 'expires' });
    await expect.poll(async () => (await core.call('queues/get', { connectionId, queue: `${queue}.dlq` })).messages).toBe(1);
  });

  it.skipIf(!available)('creates the dead-letter queue named by the routing key on the default exchange', async () => {
    const connectionId = connection();
    const dlq = `parked-${id()}`;
    const warned = await core.call('queues/declare', { connectionId, queue: `a-${id()}`, durable: false, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq } });
    expect(warned.warnings).toEqual([expect.stringContaining(`"${dlq}"`)]);
    const made = await core.call('queues/declare', {
      connectionId,
      queue: `b-${id()}`,
      durable: false,
      arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq },
      createDeadLetter: true,
    });
    expect(made.created).toEqual([`queue "${dlq}"`]);
    expect((await core.call('queues/get', { connectionId, queue: dlq })).name).toBe(dlq);
  });

  it.skipIf(!available)('refuses a bad argument naming it, before the broker sees it', async () => {
    const connectionId = connection();
    const queue = `bad-${id()}`;
    await expect(core.call('queues/declare', { connectionId, queue, arguments: { 'x-max-length': 'ten' } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'arguments.x-max-length',
    });
    await expect(core.call('queues/declare', { connectionId, queue, arguments: { 'x-overflow': 'drop-tail' } })).rejects.toMatchObject({ field: 'arguments.x-overflow' });
    await expect(core.call('queues/declare', { connectionId, queue, type: 'quorum', arguments: { 'x-queue-type': 'classic' } })).rejects.toMatchObject({ field: 'type' });
    await expect(core.call('queues/declare', { connectionId, queue, arguments: { 'x-dead-letter-routing-key': 'k' } })).rejects.toMatchObject({
      field: 'arguments.x-dead-letter-routing-key',
    });
    await expect(core.call('queues/get', { connectionId, queue })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it.skipIf(!available)('accepts the classic and quorum arguments and custom ones, shown back as given', async () => {
    const connectionId = connection();
    const classic = {
      'x-max-length': 100,
      'x-max-length-bytes': 1_000_000,
      'x-overflow': 'reject-publish',
      'x-max-priority': 5,
      'x-message-ttl': 60_000,
      'x-expires': 3_600_000,
      'x-single-active-consumer': true,
      'x-custom-thing': 'kept',
    };
    const c = await core.call('queues/declare', { connectionId, queue: `classic-${id()}`, durable: true, arguments: classic });
    expect(c.arguments).toMatchObject(classic);
    const q = await core.call('queues/declare', { connectionId, queue: `quorum-${id()}`, type: 'quorum', durable: true, arguments: { 'x-delivery-limit': 5 } });
    expect(q.arguments).toMatchObject({ 'x-queue-type': 'quorum', 'x-delivery-limit': 5 });
  });
});

describe.skipIf(!rabbit.ok)('RabbitMQ-only queue types', () => {
  it('declares a stream with its retention', async () => {
    const s = await core.call('queues/declare', { connectionId: rabbitId, queue: `stream-${id()}`, type: 'stream', durable: true, arguments: { 'x-max-age': '7D' } });
    await expect.poll(async () => (await core.call('queues/get', { connectionId: rabbitId, queue: s.name })).type).toBe('stream');
    await expect(core.call('queues/declare', { connectionId: rabbitId, queue: `stream-${id()}`, type: 'stream', arguments: { 'x-max-age': 'a week' } })).rejects.toMatchObject({
      field: 'arguments.x-max-age',
    });
  });
});

describe('topic configs on the embedded broker', () => {
  it('keeps the configs the engine keeps, checks them as Kafka does and refuses the others, naming them', async () => {
    const topic = `t-${id()}`;
    const t = await core.call('topics/create', { connectionId: 'local', topic, partitions: 2, configs: { 'retention.ms': '60000', 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '1000' } });
    expect(t.partitions).toHaveLength(2);
    expect(t.config).toMatchObject({ 'retention.ms': 60_000, 'cleanup.policy': 'compact', 'min.compaction.lag.ms': 1000 });

    const described = await core.call('topics/config', { connectionId: 'local', topic });
    const entry = (name: string) => described.find((e) => e.name === name);
    expect(entry('cleanup.policy')).toMatchObject({ value: 'compact', source: 'topic', readOnly: false });
    expect(entry('delete.retention.ms')).toMatchObject({ value: '86400000', source: 'default' });
    expect(entry('max.message.bytes')).toMatchObject({ value: '1048588', source: 'default' });

    // Changes as Kafka's IncrementalAlterConfigs: names not given keep their value, null returns one to its default.
    const altered = await core.call('topics/alterConfig', { connectionId: 'local', topic, configs: { 'cleanup.policy': 'compact,delete', 'retention.ms': null } });
    expect(altered.find((e) => e.name === 'cleanup.policy')).toMatchObject({ value: 'compact,delete', source: 'topic' });
    expect(altered.find((e) => e.name === 'retention.ms')).toMatchObject({ value: '-1', source: 'default' });
    expect(altered.find((e) => e.name === 'min.compaction.lag.ms')).toMatchObject({ value: '1000', source: 'topic' });
    // validateOnly checks without changing anything.
    await core.call('topics/alterConfig', { connectionId: 'local', topic, configs: { 'cleanup.policy': 'delete' }, validateOnly: true });
    expect((await core.call('topics/config', { connectionId: 'local', topic })).find((e) => e.name === 'cleanup.policy')).toMatchObject({ value: 'compact,delete' });

    // A value Kafka would refuse, with Kafka's message; nothing of the change is kept.
    await expect(core.call('topics/alterConfig', { connectionId: 'local', topic, configs: { 'retention.ms': '3600000', 'min.cleanable.dirty.ratio': '1.5' } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'configs.min.cleanable.dirty.ratio',
      message: expect.stringContaining('Value must be no more than 1'),
    });
    expect((await core.call('topics/config', { connectionId: 'local', topic })).find((e) => e.name === 'retention.ms')).toMatchObject({ value: '-1' });
    await expect(core.call('topics/alterConfig', { connectionId: 'local', topic, configs: { 'segment.bytes': '1024' } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'configs.segment.bytes' });

    // On create: a config the embedded broker does not keep, or a bad value, creates nothing.
    const refused = `t-${id()}`;
    await expect(core.call('topics/create', { connectionId: 'local', topic: refused, configs: { 'min.insync.replicas': '2' } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'configs.min.insync.replicas',
    });
    await expect(core.call('topics/create', { connectionId: 'local', topic: refused, configs: { 'cleanup.policy': 'shred' } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'configs.cleanup.policy',
      message: expect.stringContaining('String must be one of: compact, delete'),
    });
    expect((await core.call('topics/list', { connectionId: 'local' })).some((x) => x.name === refused)).toBe(false);
    await expect(core.call('topics/create', { connectionId: 'local', topic: `t-${id()}`, replicationFactor: 3 })).rejects.toMatchObject({ field: 'replicationFactor' });
    await expect(core.call('topics/alterConfig', { connectionId: 'local', topic: `missing-${id()}`, configs: { 'retention.ms': '1' } })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
