/**
 * The UI on a real Redis (a redis-server started by tests/redis/redis.mjs on a
 * free port, or REDIS_URL): a connection made through the HTTP API, a stream
 * browsed in the Browser, and the Dead letters view showing a consumer group's
 * entries delivered too often, one of them re-driven and checked with XPENDING
 * and XRANGE. Without redis-server the test is skipped with the reason.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedis, stopRedis } from '../redis/control';
import { test, expect } from './fixtures';
import { openFromSidebar, screenshot, unique } from './helpers';

const stateFile = join(tmpdir(), 'brokerdeck-redis', `e2e-${process.pid}-${Date.now()}.json`);
let url: string | null = process.env.REDIS_URL ?? null;
let reason = '';
let started = false;
let redis: Redis | null = null;

test.describe.configure({ mode: 'serial' });
test.beforeAll(async () => {
  test.setTimeout(120_000);
  if (!url) {
    const r = await startRedis(stateFile);
    if ('url' in r) {
      url = r.url;
      started = true;
    } else reason = r.reason;
  }
  if (url) redis = new Redis(url);
});
test.afterAll(async () => {
  redis?.disconnect();
  if (started) await stopRedis(stateFile);
});

test('a Redis connection: a stream browsed, and an entry delivered too often re-driven from the Dead letters view', async ({ page, server, signedIn: _ }) => {
  test.skip(!url, `no Redis server: ${reason}`);
  test.setTimeout(180_000);
  const r = redis!;
  const stream = unique('orders');
  const ids: string[] = [];
  for (let i = 0; i < 40; i++) ids.push((await r.xadd(stream, '*', 'value', JSON.stringify({ order: i, status: i === 7 ? 'stuck' : 'new' }), 'source', 'shop')) as string);
  // A consumer of group billing reads five entries and keeps failing on two: claimed again twice each.
  await r.xgroup('CREATE', stream, 'billing', '0');
  await r.xreadgroup('GROUP', 'billing', 'worker-1', 'COUNT', 5, 'STREAMS', stream, '>');
  await r.xclaim(stream, 'billing', 'worker-2', 0, ids[1]!, ids[3]!);
  await r.xclaim(stream, 'billing', 'worker-1', 0, ids[1]!, ids[3]!);

  const name = unique('redis');
  const created = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'redis', name, url, deadLetterAfterDeliveries: 3 });
  const c = `/api/connections/${created.id}`;
  const info = await server.api<{ target: string; capabilities: string[] }>('GET', c);
  expect(info.capabilities).toEqual(expect.arrayContaining(['topics', 'queues', 'redrive', 'positions']));

  // The stream in the Browser: every entry, its value field as the body.
  const nav = page.getByRole('navigation', { name: 'Connections' });
  await nav.getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();
  await expect(nav.getByRole('button', { name: new RegExp(`^${stream}\\b`) }).first()).toBeVisible({ timeout: 30_000 });
  await openFromSidebar(page, stream);
  await page.getByRole('tab', { name: 'Browser' }).click();
  const grid = page.getByRole('grid', { name: 'Messages' });
  await expect(grid.getByRole('row').nth(1)).toContainText('"order":0,', { timeout: 30_000 });
  await expect(grid.getByRole('row').filter({ hasText: 'stuck' })).toHaveCount(1, { timeout: 30_000 });
  await screenshot(page, 'browser-redis');
  // Browsing consumed nothing: the group still has its five pending entries, the stream its forty.
  expect(await r.xlen(stream)).toBe(40);
  expect(((await r.xpending(stream, 'billing')) as [number])[0]).toBe(5);

  // The group in Details: its consumers and its lag (35 entries never delivered), as Redis 7 counts it.
  const group = `${stream}#billing`;
  await openFromSidebar(page, group);
  await page.getByRole('tab', { name: 'Details' }).click();
  const view = page.getByRole('region', { name: 'Details' });
  await expect(view.getByRole('heading', { name: group })).toBeVisible({ timeout: 30_000 });
  const offsets = view.getByRole('table', { name: 'Offsets' });
  await expect(offsets.getByRole('row').nth(1)).toContainText('35', { timeout: 30_000 });
  await screenshot(page, 'details-redis');

  // Dead letters: the group's entries delivered three times.
  const source = `${stream}#billing`;
  await page.getByRole('tab', { name: 'Dead letters' }).click();
  const list = page.getByRole('complementary', { name: 'Dead-letter queues' });
  await list.getByRole('button', { name: new RegExp(source) }).click({ timeout: 30_000 });
  const dead = page.getByRole('grid', { name: `Dead letters in ${source}` });
  await expect(dead.getByRole('row').nth(1)).toContainText('"order":1,', { timeout: 30_000 });
  await expect(dead.getByRole('row').nth(2)).toContainText('"order":3,');
  // Why each died: delivered three times to the group, from the stream.
  await dead.getByRole('row').nth(2).click();
  await expect(page.getByText('delivered 3 times to group billing').first()).toBeVisible();
  await dead.getByRole('row').nth(1).click();
  await page.getByRole('button', { name: 'Re-drive…', exact: true }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Start re-drive' }).click();
  const progress = page.getByRole('region', { name: 'Re-drive progress' });
  await expect(progress).toContainText(`Done: 1 of 1`, { timeout: 60_000 });
  await screenshot(page, 'deadletters-redis');

  // In Redis: the entry is acknowledged, its copy is the stream's newest entry, the other dead one still pending.
  const pending = ((await r.xpending(stream, 'billing', '-', '+', 10)) as Array<[string]>).map(([id]) => id);
  expect(pending).toEqual([ids[0], ids[2], ids[3], ids[4]]);
  expect(await r.xlen(stream)).toBe(41);
  const [newest] = await r.xrevrange(stream, '+', '-', 'COUNT', 1);
  expect(newest![1]).toEqual(['value', JSON.stringify({ order: 1, status: 'new' }), 'source', 'shop']);
  const audit = await server.api<Array<{ source: string; count: number }>>('GET', `/api/audit?limit=50`);
  expect(audit.some((a) => a.source === source && a.count === 1)).toBe(true);
  await server.api('DELETE', c);
});
