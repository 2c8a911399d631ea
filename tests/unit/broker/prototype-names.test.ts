import { describe, expect, it } from 'vitest';
import { createEmbeddedConnector } from '../../../src-main/connectors/embedded/embedded-connector.js';
import { silentLogger } from '../../../src-main/ground/logger.js';
import { b, memEngine } from './helpers.js';

/** Names that are properties of every plain object. */
const NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];

/** `{ [name]: value }` with name as a real own key, even for __proto__ (as JSON.parse makes it). */
const own = <T>(name: string, value: T): Record<string, T> => JSON.parse(JSON.stringify({ k: value }).replace('"k"', JSON.stringify(name))) as Record<string, T>;

/** The object has exactly these own keys and values, and serialises to them. */
function expectOwn(o: object, expected: Record<string, unknown>): void {
  expect(Object.keys(o)).toEqual(Object.keys(expected));
  for (const k of Object.keys(expected)) expect(Object.getOwnPropertyDescriptor(o, k)?.value).toEqual(expected[k]);
  expect(JSON.stringify(o)).toBe(JSON.stringify(expected));
}

describe('resources and headers named like Object.prototype properties', () => {
  it.each(NAMES)('queue, exchange, binding, header and topic named %s: publish, routed report, browse, stats', async (name) => {
    const e = memEngine();
    e.declareQueue(name);
    e.declareExchange(name, { type: 'direct' });
    e.bind({ source: name, destination: name, routingKey: name });
    const res = await e.publishMany({ exchange: name, routingKey: name, body: b('m{{i}}'), count: 2, properties: { headers: own(name, 'h{{i}}') } });
    expect(res.published).toBe(2);
    expectOwn(res.routed, own(name, 2));
    expect(res.returned).toBe(0);
    const one = await e.publish({ exchange: '', routingKey: name, body: b('direct') });
    expect(one.routedQueues).toEqual([name]);

    const page = e.browse(name);
    expect(page.messages.map((m) => m.body.toString())).toEqual(['m1', 'm2', 'direct']);
    expectOwn(page.messages[0]!.properties.headers!, own(name, 'h1'));
    expect(e.getQueue(name).messages).toBe(3);
    expect(e.stats().queues.find((q) => q.name === name)?.messages).toBe(3);
    expect(e.history({ kind: 'queue', name })).toMatchObject({ resource: { kind: 'queue', name }, samples: expect.any(Array) });
    expect(e.listExchanges().some((x) => x.name === name)).toBe(true);
    expect(e.listBindings().some((x) => x.source === name && x.destination === name && x.routingKey === name)).toBe(true);

    // Filters: a header, a JSON path or a property of that name is not found on messages that lack it.
    expect(e.browse(name, { filter: { header: { name, value: '' } } }).messages).toHaveLength(2);
    expect(e.browse(name, { filter: { header: { name: 'constructor' === name ? 'toString' : 'constructor', value: '' } } }).messages).toHaveLength(0);
    expect(e.browse(name, { filter: { jsonPath: `$.${name}` } }).messages).toHaveLength(0);
    expect(() => e.browse(name, { filter: { property: { name, value: '' } } })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));

    // Dead-lettering and re-drive keep the header.
    e.declareQueue(`${name}.dlq`);
    e.declareQueue(`${name}.src`, { arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': `${name}.dlq` } });
    await e.publish({ exchange: '', routingKey: `${name}.src`, body: b('dead'), properties: { headers: own(name, 1) } });
    await e.get(`${name}.src`, { count: 1, ackMode: 'reject' });
    const dead = e.browse(`${name}.dlq`).messages[0]!;
    expect(Object.getOwnPropertyDescriptor(dead.properties.headers, name)?.value).toBe(1);
    const job = e.startRedrive({ source: `${name}.dlq`, all: true, target: { exchange: '', routingKey: name }, edit: undefined });
    await new Promise<void>((resolve) => {
      const check = () => (e.getRedrive(job.id).state === 'completed' ? resolve() : setImmediate(check));
      check();
    });
    expect(e.getRedrive(job.id)).toMatchObject({ moved: 1, failed: 0 });
    const redriven = e.browse(name).messages.at(-1)!;
    expect(Object.getOwnPropertyDescriptor(redriven.properties.headers, name)?.value).toBe(1);

    // Topics, record headers and consumer groups.
    e.createTopic(name, { partitions: 1 });
    await e.produce(name, [{ key: 'k', value: 'v{{i}}', headers: own(name, 'x{{i}}') }], { placeholders: true });
    const rec = e.browseTopic(name).records[0]!;
    expect(rec.value?.toString()).toBe('v1');
    expectOwn(rec.headers, own(name, 'x1'));
    e.joinGroup(name, 'member', [name]);
    await e.commitOffsets(name, [{ topic: name, partition: 0, offset: 1 }]);
    expect(e.listGroups().find((g) => g.groupId === name)).toBeDefined();
    e.close();
  });

  it.each(NAMES)('the embedded connection reports routing and shows headers named %s as sent', async (name) => {
    const c = createEmbeddedConnector({ dataDir: null, readOnly: false, logger: silentLogger });
    try {
      await c.declareQueue!({ queue: name, durable: true, exclusive: false, autoDelete: false, arguments: {} });
      const res = await c.publish!({
        exchange: '',
        routingKey: name,
        body: 'hello',
        bodyEncoding: 'utf8',
        properties: { headers: own(name, { nested: own(name, 1) }) },
        mandatory: false,
        count: 3,
      });
      expectOwn(res.routed, own(name, 3));
      const page = await c.browseQueue!({ queue: name, limit: 10, includeUnacked: false } as never);
      expect(page.messages).toHaveLength(3);
      expectOwn(page.messages[0]!.properties.headers!, own(name, { nested: own(name, 1) }));
      const stats = await c.stats!();
      expect(stats.queues.find((q) => q.name === name)?.messages).toBe(3);

      await c.createTopic!({ topic: name, partitions: 1 } as never);
      await c.produce!({ topic: name, key: null, value: 'v', valueEncoding: 'utf8', headers: own(name, 'h'), count: 1 } as never);
      const records = await c.browseTopic!({ topic: name, limit: 10 } as never);
      expectOwn(records.messages[0]!.headers, own(name, 'h'));
    } finally {
      await c.close();
    }
  });
});
