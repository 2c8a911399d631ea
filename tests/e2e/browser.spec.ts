import { readFileSync } from 'node:fs';
import { test, expect } from './fixtures';
import { declareQueue, openFromSidebar, publish, screenshot, unique } from './helpers';

test('browse a queue of 10,000 messages, scroll to the end, filter in the core, export', async ({ page, server, signedIn: _ }) => {
  const q = unique('big');
  await declareQueue(server, q);
  await publish(server, q, '{"n":{{i}},"kind":"order","id":"{{uuid}}"}', 10_000, { headers: { tenant: 't{{i}}' } });

  await openFromSidebar(page, q);
  await expect(page.getByRole('tab', { name: 'Browser' })).toHaveAttribute('aria-selected', 'true');
  const grid = page.getByRole('grid', { name: 'Messages' });
  await expect(grid).toHaveAttribute('aria-rowcount', '10001', { timeout: 60_000 });
  await expect(grid.getByRole('row').nth(1)).toContainText('{"n":1,');

  // Keyboard: the last row is one key away, and its page is read by position.
  await grid.getByRole('row').nth(1).click();
  await page.keyboard.press('End');
  const last = grid.getByRole('row', { name: /\{"n":10000,/ });
  await expect(last).toBeVisible();
  await expect(last).toContainText('9999');
  // Scrolling by wheel to the very bottom shows the same last row.
  await page.keyboard.press('Home');
  await expect(grid.getByRole('row', { name: /\{"n":1,/ })).toBeVisible();
  await grid.locator('.vgrid-body').evaluate((el) => (el.scrollTop = el.scrollHeight));
  await expect(grid.getByRole('row', { name: /\{"n":10000,/ })).toBeVisible();

  // The detail panel shows the body as JSON, the properties and headers.
  await grid.getByRole('row', { name: /\{"n":10000,/ }).click();
  const detail = page.getByRole('region', { name: 'Message detail' });
  await expect(detail.getByRole('region', { name: 'Body' })).toContainText('"kind"');
  await expect(detail.getByRole('table', { name: 'Headers' })).toContainText('t10000');
  await detail.getByRole('tab', { name: 'Hex' }).click();
  await expect(detail.getByRole('region', { name: 'Body' })).toContainText('7b 22 6e 22');
  await screenshot(page, 'browser');

  // Filter: "/" focuses it, Enter runs it in the core; counts of scanned and matched appear.
  await page.keyboard.press('Escape');
  await grid.click();
  await page.keyboard.press('/');
  const box = page.getByRole('textbox', { name: 'Body contains' });
  await expect(box).toBeFocused();
  await box.fill('"n":77');
  await box.press('Enter');
  // Matches: 77, 770-779, 7700-7799 = 1 + 10 + 100 = 111.
  await expect(page.getByTestId('matched')).toHaveText('111', { timeout: 60_000 });
  await expect(page.getByTestId('scanned')).toHaveText('10,000');
  await expect(page.getByText('scan complete')).toBeVisible();
  await expect(grid).toHaveAttribute('aria-rowcount', '112');

  // JSON path filter, also in the core.
  await page.getByRole('button', { name: 'Clear' }).click();
  await page.getByRole('textbox', { name: 'JSON path' }).fill('$.n');
  await page.getByRole('textbox', { name: 'JSON value' }).fill('4242');
  await page.getByRole('button', { name: 'Apply filter' }).click();
  await expect(page.getByTestId('matched')).toHaveText('1');
  await expect(grid.getByRole('row').nth(1)).toContainText('"n":4242');

  // Export everything that matches to NDJSON.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export all matching NDJSON' }).click()]);
  const file = readFileSync((await download.path())!, 'utf8').trim().split('\n');
  expect(file).toHaveLength(1);
  expect(JSON.parse(JSON.parse(file[0]!).body as string)).toMatchObject({ n: 4242 });
});

test('a large page size is honoured (no cap at 100 or 500)', async ({ page, server, signedIn: _ }) => {
  const q = unique('pages');
  await declareQueue(server, q);
  await publish(server, q, 'm{{i}}', 3000);
  await openFromSidebar(page, q);
  const size = page.getByRole('textbox', { name: 'Page size' });
  await size.fill('2500');
  await size.press('Enter');
  const grid = page.getByRole('grid', { name: 'Messages' });
  await expect(grid).toHaveAttribute('aria-rowcount', '3001');
  // Rows up to 2,499 come from the first page of 2,500.
  await page.getByRole('textbox', { name: 'Go to row' }).fill('2400');
  await page.getByRole('textbox', { name: 'Go to row' }).press('Enter');
  await expect(grid.getByRole('row', { name: /m2401\b/ })).toBeVisible();
  await page.keyboard.press('End');
  await grid.getByRole('row', { name: /m2401\b/ }).click();
  await page.keyboard.press('End');
  await expect(grid.getByRole('row', { name: /m3000\b/ })).toBeVisible();
});

test('a priority queue is listed in the order its consumers get it, with each message\'s priority', async ({ page, server, signedIn: _ }) => {
  const q = unique('prio');
  await declareQueue(server, q, { arguments: { 'x-max-priority': 9 } });
  for (const [body, priority] of [['low-a', 1], ['high', 9], ['none', 0], ['mid', 5], ['low-b', 1]] as const) await publish(server, q, body, 1, { priority });
  await openFromSidebar(page, q);
  const grid = page.getByRole('grid', { name: 'Messages' });
  await expect(grid).toHaveAttribute('aria-rowcount', '6');
  await expect(grid.getByRole('columnheader', { name: 'Priority' })).toBeVisible();
  await expect(page.getByText('5 messages, highest priority first')).toBeVisible();
  const rows = grid.getByRole('row');
  for (const [i, body, priority] of [[1, 'high', '9'], [2, 'mid', '5'], [3, 'low-a', '1'], [4, 'low-b', '1'], [5, 'none', '0']] as const) {
    await expect(rows.nth(i)).toContainText(body);
    await expect(rows.nth(i).getByRole('gridcell').nth(1)).toHaveText(priority);
  }
  // What the browser lists first is what a consumer gets first.
  const got = await server.api<Array<{ body: string }>>('POST', `/api/connections/local/queues/${q}/get`, { count: 5, ackMode: 'ack' });
  expect(got.map((m) => m.body)).toEqual(['high', 'mid', 'low-a', 'low-b', 'none']);
});

test('End shows the last row whole, with classic scrollbars, as the detail panel opens', async ({ page, server, signedIn: _ }) => {
  const q = unique('end');
  await declareQueue(server, q);
  await publish(server, q, '{"n":{{i}},"padding":"a body wide enough to need the whole column"}', 300);
  // Scrollbars that take room, as on Windows and Linux desktops (headless Chromium overlays them).
  await page.setViewportSize({ width: 1100, height: 700 });
  await page.addStyleTag({ content: '::-webkit-scrollbar { width: 15px; height: 15px; background: #ddd; } ::-webkit-scrollbar-thumb { background: #999; }' });
  await openFromSidebar(page, q);
  const grid = page.getByRole('grid', { name: 'Messages' });
  await expect(grid).toHaveAttribute('aria-rowcount', '301', { timeout: 60_000 });
  const lastFullyInView = () =>
    grid.locator('.vgrid-body').evaluate((body) => {
      const row = Array.from(body.querySelectorAll('[role=row]')).find((r) => r.textContent?.includes('"n":300,'));
      if (!row) return false;
      return row.getBoundingClientRect().bottom <= body.getBoundingClientRect().top + body.clientHeight + 0.5;
    });
  // End opens the last message's detail, which narrows the grid: the last row must stay whole.
  await page.getByRole('button', { name: 'End', exact: true }).click();
  await expect(page.getByRole('region', { name: 'Message detail' })).toBeVisible();
  await expect.poll(lastFullyInView).toBe(true);
  // And by keyboard, with the detail already open.
  await page.keyboard.press('Home');
  await grid.getByRole('row').nth(1).click();
  await page.keyboard.press('End');
  await expect(grid.getByRole('row', { name: /"n":300,/ })).toBeVisible();
  await expect.poll(lastFullyInView).toBe(true);
});

test('a queue is filtered by routing key in the core', async ({ page, server, signedIn: _ }) => {
  const q = unique('routed');
  const ex = unique('regions');
  await declareQueue(server, q);
  await server.api('PUT', `/api/connections/local/exchanges/${ex}`, { type: 'topic' });
  await server.api('POST', '/api/connections/local/bindings', { source: ex, destination: q, routingKey: '#' });
  for (const key of ['eu.order', 'us.order', 'eu.refund', 'apac.order']) await server.api('POST', '/api/connections/local/publish', { exchange: ex, routingKey: key, body: `{"key":"${key}"}` });
  await openFromSidebar(page, q);
  const grid = page.getByRole('grid', { name: 'Messages' });
  await expect(grid).toHaveAttribute('aria-rowcount', '5');
  await page.getByRole('button', { name: 'More filters' }).click();
  await page.getByRole('textbox', { name: 'Routing key contains' }).fill('eu.');
  await page.getByRole('button', { name: 'Apply filter' }).click();
  await expect(page.getByTestId('matched')).toHaveText('2');
  await expect(grid.getByRole('row').nth(1)).toContainText('eu.order');
  await expect(grid.getByRole('row').nth(2)).toContainText('eu.refund');
});
