/**
 * Records placed by a system's own ids, in the Browser: on a Redis stream (a
 * redis-server started by tests/redis/redis.mjs on a free port, or REDIS_URL)
 * the position column shows each entry's id where Kafka shows an offset, the
 * detail names it, and "Start at position" reads from a given id. Without
 * redis-server the test is skipped with the reason.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedis, stopRedis } from '../redis/control';
import { test, expect } from './fixtures';
import { recordCalls } from './frames';
import { openFromSidebar, unique } from './helpers';

const stateFile = join(tmpdir(), 'brokerdeck-redis', `e2e-positions-${process.pid}-${Date.now()}.json`);
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

test('a Redis stream lists entry ids as positions, and browsing starts at the id given', async ({ page, server }) => {
  test.skip(!url, `no Redis server: ${reason}`);
  const r = redis!;
  const stream = unique('placed');
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) ids.push((await r.xadd(stream, '*', 'value', JSON.stringify({ n: i }))) as string);
  const name = unique('redis-positions');
  const { id } = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'redis', name, url });

  const calls = recordCalls(page);
  await page.goto(`${server.url}/?token=${server.token}`);
  const nav = page.getByRole('navigation', { name: 'Connections' });
  await nav.getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();
  await expect(nav.getByRole('button', { name: new RegExp(`^${stream}\\b`) }).first()).toBeVisible({ timeout: 30_000 });
  await openFromSidebar(page, stream);
  await page.getByRole('tab', { name: 'Browser' }).click();
  const grid = page.getByRole('grid', { name: 'Messages' });
  await expect(grid.getByRole('columnheader', { name: 'Position' })).toBeVisible();
  await expect(grid.getByRole('columnheader', { name: 'Partition/offset' })).toHaveCount(0);
  await expect(grid.getByRole('row').nth(1)).toContainText(ids[0]!, { timeout: 30_000 });
  await expect(grid.getByRole('row').nth(1)).toContainText('{"n":0}');
  await expect(grid).toHaveAttribute('aria-rowcount', '31');

  // The detail names the entry by its id, not by an ordinal.
  await grid.getByRole('row').nth(3).click();
  const detail = page.getByRole('region', { name: 'Message detail' });
  await expect(detail).toContainText(`Record ${ids[2]!}`);
  await expect(detail).not.toContainText('Offset');

  // Start at the twelfth entry's id: the list begins there and the core was asked for that position.
  await page.getByRole('textbox', { name: 'Start at position' }).fill(ids[11]!);
  await page.getByRole('button', { name: 'Seek' }).click();
  await expect(grid.getByRole('row').nth(1)).toContainText(ids[11]!, { timeout: 30_000 });
  await expect(grid.getByRole('row').nth(1)).toContainText('{"n":11}');
  await expect(grid).toHaveAttribute('aria-rowcount', String(30 - 11 + 1));
  const asked = calls.filter((c) => c.op === 'topics/messages' && c.input.topic === stream);
  expect(asked.at(-1)!.input).toMatchObject({ connectionId: id, position: ids[11] });
  expect(asked.every((c) => c.input.offset === undefined)).toBe(true);

  // An id Redis cannot read is refused with the reason shown; clearing the field reads from the start again.
  await page.getByRole('textbox', { name: 'Start at position' }).fill('not-an-id');
  await page.getByRole('button', { name: 'Seek' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'is not a stream entry id' })).toBeVisible({ timeout: 30_000 });
  await page.getByRole('textbox', { name: 'Start at position' }).fill('');
  await page.getByRole('button', { name: 'Seek' }).click();
  await expect(grid.getByRole('row').nth(1)).toContainText(ids[0]!, { timeout: 30_000 });
  await server.api('DELETE', `/api/connections/${id}`);
});
