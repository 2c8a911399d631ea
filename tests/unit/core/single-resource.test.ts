/**
 * Reading one exchange, topic or consumer group of the embedded broker, through
 * the core and through the HTTP routes: the resource as the list shows it, and
 * NOT_FOUND naming it when it does not exist.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../src-main/broker/index.js';
import { startCore, type Core } from '../../../src-main/core/core.js';
import { silentLogger } from '../../../src-main/ground/logger.js';
import { startHttpServer, type HttpServer } from '../../../src-main/transports/http/server.js';

const token = 'single-resource-token';
const L = { connectionId: 'local' };
let dir: string;
let core: Core;
let server: HttpServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'brokerdeck-single-'));
  // A group exists once it has committed offsets; they are written here and found by the core on open.
  const engine = Engine.open({ dataDir: dir, diskFreeLimit: 0 });
  engine.createTopic('orders', { partitions: 2 });
  await engine.produce('orders', [{ key: null, value: Buffer.from('a'), partition: 0 }, { key: null, value: Buffer.from('b'), partition: 0 }, { key: null, value: Buffer.from('c'), partition: 1 }]);
  engine.joinGroup('billing', 'm-1', ['orders']);
  await engine.commitOffsets('billing', [{ topic: 'orders', partition: 0, offset: 1 }]);
  engine.leaveGroup('billing', 'm-1');
  engine.close();
  core = await startCore({ dataDir: dir, version: '9.9.9', diskFreeLimit: 0 });
  server = await startHttpServer({ core, host: '127.0.0.1', port: 0, token, logger: silentLogger });
});
afterAll(async () => {
  await server?.close();
  await core?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function http(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}

describe('single-resource reads on the embedded broker', () => {
  it('reads one exchange as the list shows it, the default exchange included', async () => {
    await core.call('exchanges/declare', { ...L, exchange: 'events', type: 'topic', arguments: { 'alternate-exchange': 'lost' } });
    const one = await core.call('exchanges/get', { ...L, exchange: 'events' });
    expect(one).toEqual({ name: 'events', type: 'topic', durable: true, autoDelete: false, internal: false, arguments: { 'alternate-exchange': 'lost' } });
    expect((await core.call('exchanges/list', L)).find((x) => x.name === 'events')).toEqual(one);
    expect(await core.call('exchanges/get', { ...L, exchange: '' })).toMatchObject({ name: '', type: 'direct' });
    await expect(core.call('exchanges/get', { ...L, exchange: 'nope' })).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('"nope"') });
  });

  it('reads one topic with its partitions and watermarks', async () => {
    const one = await core.call('topics/get', { ...L, topic: 'orders' });
    expect(one.name).toBe('orders');
    expect(one.partitions.map((p) => [p.partition, p.startOffset, p.endOffset])).toEqual([
      [0, 0, 2],
      [1, 0, 1],
    ]);
    expect(one.messages).toBe(3);
    expect((await core.call('topics/list', L)).find((t) => t.name === 'orders')).toEqual(one);
    await expect(core.call('topics/get', { ...L, topic: 'missing' })).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('"missing"') });
  });

  it('reads one consumer group with its offsets and lag', async () => {
    const one = await core.call('groups/get', { ...L, groupId: 'billing' });
    expect(one.groupId).toBe('billing');
    expect(one.partitions.find((p) => p.topic === 'orders' && p.partition === 0)).toMatchObject({ committed: 1, end: 2, lag: 1 });
    // The time lag grows with the clock; everything else is the list's.
    const still = (g: typeof one | undefined) => g && { ...g, partitions: g.partitions.map(({ timeLagMs: _t, ...p }) => p) };
    expect(still((await core.call('groups/list', L)).find((g) => g.groupId === 'billing'))).toEqual(still(one));
    await expect(core.call('groups/get', { ...L, groupId: 'ghost' })).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('"ghost"') });
  });

  it('serves them as GET routes, described in the OpenAPI document, with 404 naming what is missing', async () => {
    const base = '/api/connections/local';
    expect(await http(`${base}/exchanges/events`)).toMatchObject({ status: 200, body: { name: 'events', type: 'topic' } });
    expect(await http(`${base}/topics/orders`)).toMatchObject({ status: 200, body: { name: 'orders', messages: 3 } });
    expect(await http(`${base}/consumer-groups/billing`)).toMatchObject({ status: 200, body: { groupId: 'billing' } });
    const missing = await http(`${base}/topics/${encodeURIComponent('no such topic')}`);
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('"no such topic"') });
    expect((await http(`${base}/consumer-groups/ghost`)).body.error.code).toBe('NOT_FOUND');

    const doc = (await http('/api/openapi.json')).body;
    const c = '/api/connections/{connectionId}';
    expect(doc.paths[`${c}/exchanges/{exchange}`].get).toBeDefined();
    expect(doc.paths[`${c}/topics/{topic}`].get).toBeDefined();
    expect(doc.paths[`${c}/consumer-groups/{groupId}`].get).toBeDefined();
  });
});
