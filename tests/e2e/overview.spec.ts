import { test, expect } from './fixtures';
import { declareQueue, publish, screenshot, unique } from './helpers';

test('overview lists queues live, filters by name, sorts, and read-only hides writes', async ({ page, server, signedIn: _ }) => {
  const base = unique('ov');
  await declareQueue(server, `${base}.dlq`);
  await declareQueue(server, `${base}.orders`, { deadLetterTo: `${base}.dlq` });
  await declareQueue(server, `${base}.audit`);
  await publish(server, `${base}.orders`, '{"n":{{i}}}', 25);

  const grid = page.getByRole('grid', { name: 'Resources' });
  const ordersRow = grid.getByRole('row', { name: new RegExp(`${base}\\.orders`) });
  await expect(ordersRow).toContainText('25');
  // The dead-letter queue carries its badge.
  await expect(grid.getByRole('row', { name: new RegExp(`${base}\\.dlq`) })).toContainText('DLQ');

  // Live: messages published now show up without a reload.
  await publish(server, `${base}.orders`, 'x', 15);
  await expect(ordersRow.getByRole('gridcell').nth(2)).toHaveText('40');

  // "/" focuses the filter; the filter narrows by name.
  await page.keyboard.press('/');
  await expect(page.getByRole('textbox', { name: 'Filter by name' })).toBeFocused();
  await page.keyboard.type(`${base}.a`);
  await expect(grid.getByRole('row')).toHaveCount(2); // header + audit
  await expect(grid.getByRole('row').nth(1)).toContainText(`${base}.audit`);
  await page.getByRole('textbox', { name: 'Filter by name' }).fill(base);

  // Sort by Ready, descending first: orders (40) on top.
  await grid.getByRole('button', { name: 'Ready' }).click();
  await expect(grid.getByRole('columnheader', { name: /Ready/ })).toHaveAttribute('aria-sort', 'descending');
  await expect(grid.getByRole('row').nth(1)).toContainText(`${base}.orders`);

  // Arrow keys and Enter open the browser on the active row.
  await grid.getByRole('row').nth(1).click();
  await expect(page.getByRole('button', { name: 'Purge…' })).toBeVisible();
  await screenshot(page, 'overview');

  // Read-only hides every write action; turning it off brings them back.
  await page.getByRole('switch', { name: 'Read-only' }).click();
  await expect(page.getByRole('button', { name: 'Purge…' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'New queue' })).toHaveCount(0);
  await expect(page.getByRole('tab', { name: 'Publisher' })).toHaveCount(0);
  const refused = await server.raw('POST', '/api/connections/local/publish', { exchange: '', routingKey: `${base}.orders`, body: 'x' });
  expect(refused.status).toBe(403);
  await page.getByRole('switch', { name: 'Read-only' }).click();
  await expect(page.getByRole('button', { name: 'New queue' })).toBeVisible();
  await expect(page.getByRole('tab', { name: 'Publisher' })).toBeVisible();

  // Purge asks first, then empties the queue. The confirmation is clicked until it closes:
  // a click that lands while the dialog is still opening can be lost (purging twice is harmless).
  await page.getByRole('button', { name: 'Purge…' }).click();
  const confirm = page.getByRole('dialog');
  await expect(async () => {
    if ((await confirm.count()) > 0) await confirm.getByRole('button', { name: 'Purge' }).click({ timeout: 5_000 });
    await expect(confirm).toHaveCount(0, { timeout: 5_000 });
  }).toPass({ timeout: 60_000 });
  await expect(ordersRow.getByRole('gridcell').nth(2)).toHaveText('0');
});

test('overview stays usable with 5,000 queues', async ({ page, server, signedIn: _ }) => {
  const base = unique('many');
  const names = Array.from({ length: 5000 }, (_, i) => `${base}-${String(i).padStart(4, '0')}`);
  for (let i = 0; i < names.length; i += 250) await Promise.all(names.slice(i, i + 250).map((n) => declareQueue(server, n)));
  const grid = page.getByRole('grid', { name: 'Resources' });
  await page.getByRole('textbox', { name: 'Filter by name' }).fill(base);
  // Declaring and sampling 5,000 queues is the heaviest step of the suite: a generous wait.
  await expect(page.getByText(/5,000 shown/)).toBeVisible({ timeout: 60_000 });
  // Only the rows in view are in the DOM.
  expect(await grid.getByRole('row').count()).toBeLessThan(80);
  await grid.getByRole('row').nth(1).click();
  await page.keyboard.press('End');
  await expect(grid.getByRole('row', { name: new RegExp(`${base}-4999`) })).toBeVisible();
});

test('add connection dialog tests and validates settings', async ({ page, signedIn: _ }) => {
  await page.getByRole('button', { name: 'Add connection' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog.getByRole('textbox', { name: 'AMQP URL' })).toBeVisible();
  await dialog.getByRole('textbox', { name: 'Name' }).fill('nowhere');
  await dialog.getByRole('textbox', { name: 'AMQP URL' }).fill('not a url');
  await dialog.getByRole('button', { name: 'Test connection' }).click();
  await expect(dialog.getByText(/amqpUrl must look like/)).toBeVisible();
  await dialog.getByRole('textbox', { name: 'AMQP URL' }).fill('amqp://guest:guest@127.0.0.1:1/');
  await dialog.getByRole('switch', { name: 'Use TLS' }).click();
  await dialog.getByRole('switch', { name: 'Skip certificate verification' }).click();
  await expect(dialog.getByRole('alert').filter({ hasText: 'Certificate verification is off' })).toBeVisible();
  await dialog.getByRole('button', { name: 'Test connection' }).click();
  // Whatever the build supports, the result says what went wrong, never a bare "Error".
  await expect(dialog.getByRole('status').or(dialog.getByRole('alert').filter({ hasNotText: 'Certificate' }))).toContainText(/\w+ \w+/, { timeout: 20_000 });
  await dialog.getByRole('combobox', { name: 'Kind' }).selectOption('kafka');
  await expect(dialog.getByRole('textbox', { name: 'Brokers' })).toBeVisible();
  await expect(dialog.getByRole('combobox', { name: 'SASL mechanism' })).toBeVisible();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
});

test('declare a queue with its arguments and its dead-letter queue created, an exchange and a binding, from the overview', async ({ page, server, signedIn: _ }) => {
  const q = unique('declared');
  const ex = unique('events');
  await page.getByRole('button', { name: 'New queue' }).click();
  let dialog = page.getByRole('dialog');
  await dialog.getByRole('textbox', { name: 'Name' }).fill(q);
  await dialog.getByRole('textbox', { name: 'Max length', exact: true }).fill('10');
  await dialog.getByRole('combobox', { name: 'Overflow' }).selectOption('reject-publish');
  await dialog.getByRole('textbox', { name: 'Message TTL' }).fill('60000');
  await dialog.getByRole('textbox', { name: 'Dead-letter queue' }).fill(`${q}.dlq`);
  await expect(dialog.getByRole('checkbox', { name: /Create the dead-letter queue/ })).toBeChecked();
  await dialog.getByRole('textbox', { name: 'Custom arguments' }).fill('{"x-note": "made in the UI"}');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await expect(dialog).toHaveCount(0);
  const info = await server.api<{ arguments: Record<string, unknown> }>('GET', `/api/connections/local/queues/${q}`);
  expect(info.arguments).toMatchObject({ 'x-max-length': 10, 'x-overflow': 'reject-publish', 'x-message-ttl': 60000, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': `${q}.dlq`, 'x-note': 'made in the UI' });
  // The dead-letter queue it names was created with it.
  await server.api('GET', `/api/connections/local/queues/${q}.dlq`);

  await page.getByRole('button', { name: 'New exchange' }).click();
  dialog = page.getByRole('dialog');
  await dialog.getByRole('textbox', { name: 'Name' }).fill(ex);
  await dialog.getByRole('combobox', { name: 'Exchange type' }).selectOption('topic');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await expect(dialog).toHaveCount(0);

  await page.getByRole('button', { name: 'New binding' }).click();
  dialog = page.getByRole('dialog');
  await dialog.getByRole('combobox', { name: 'Source exchange' }).fill(ex);
  await dialog.getByRole('combobox', { name: 'Destination', exact: true }).fill(q);
  await dialog.getByRole('textbox', { name: 'Binding routing key' }).fill('order.*');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await expect(dialog).toHaveCount(0);
  // The binding routes: a message to the topic exchange reaches the queue.
  const r = await server.api<{ routed: Record<string, number> }>('POST', '/api/connections/local/publish', { exchange: ex, routingKey: 'order.created', body: 'x' });
  expect(r.routed[q]).toBe(1);
});
