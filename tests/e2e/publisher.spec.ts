import { test, expect, startServer } from './fixtures';
import { allMessages, declareQueue, queueInfo, screenshot, unique } from './helpers';

test('publish valid JSON and see where it went; invalid JSON is refused inline', async ({ page, server, signedIn: _ }) => {
  const q = unique('pub');
  await declareQueue(server, q);
  await page.getByRole('tab', { name: 'Publisher' }).click();

  await page.getByRole('tab', { name: 'Queue', exact: true }).click();
  await page.getByRole('combobox', { name: 'Queue' }).fill(q);
  const body = page.getByRole('textbox', { name: 'Message body' });

  // Invalid JSON: marked with line and column, Publish is off, Ctrl+Enter sends nothing.
  await body.fill('{\n  "order": 1,\n  "status": open\n}');
  const problem = page.getByRole('alert').filter({ hasText: 'Invalid JSON' });
  await expect(problem).toContainText('line 3, column 13');
  await expect(page.getByRole('button', { name: /^Publish/ })).toBeDisabled();
  await body.press('Control+Enter');
  await expect(page.getByRole('alert').filter({ hasText: 'not sent' })).toBeVisible();
  expect((await queueInfo(server, q)).messages).toBe(0);

  // Switched to text, the same body may be sent as is.
  await page.getByRole('tab', { name: 'Text' }).click();
  await expect(problem).toHaveCount(0);
  await expect(page.getByRole('button', { name: /^Publish/ })).toBeEnabled();
  await page.getByRole('tab', { name: 'JSON' }).click();

  // Valid JSON with a typed header and properties, sent with Ctrl+Enter. On a busy machine the
  // editor can take the new text before its select-all, so the fill is checked and done again until it holds.
  const valid = '{"order": {{i}}, "status": "open"}';
  await expect(async () => {
    await body.fill(valid);
    await expect(body).toHaveText(valid, { timeout: 2_000 });
  }).toPass({ timeout: 30_000 });
  await page.getByRole('button', { name: 'Format JSON' }).click();
  await page.getByRole('button', { name: 'Add header' }).click();
  await page.getByRole('textbox', { name: 'Header 1 name' }).fill('attempt');
  await page.getByRole('combobox', { name: 'Header 1 type' }).selectOption('number');
  await page.getByRole('textbox', { name: 'Header 1 value' }).fill('3');
  await page.getByRole('textbox', { name: 'Correlation id' }).fill('corr-42');
  await page.getByRole('textbox', { name: 'Count' }).fill('3');
  await body.click();
  await page.keyboard.press('Control+Enter');

  const result = page.getByRole('region', { name: 'Last result' });
  await expect(result).toContainText('3 published');
  await expect(result).toContainText('confirmed by the broker');
  await expect(result.getByRole('table', { name: 'Routed to' })).toContainText(q);

  const messages = await allMessages(server, q);
  expect(messages.map((m) => JSON.parse(m.body) as { order: number })).toEqual([
    { order: 1, status: 'open' },
    { order: 2, status: 'open' },
    { order: 3, status: 'open' },
  ]);
  expect(messages[0]!.properties).toMatchObject({ correlationId: 'corr-42', headers: { attempt: 3 } });
  // Each copy gets a message id of its own.
  const ids = messages.map((m) => (m.properties as { messageId?: string }).messageId);
  expect(ids.every((id) => typeof id === 'string' && /^[0-9a-f-]{36}$/.test(id))).toBe(true);
  expect(new Set(ids).size).toBe(3);

  // Unroutable: an exchange with no binding for the key returns the message, and the UI says so.
  await page.getByRole('tab', { name: 'Exchange + routing key' }).click();
  await page.getByRole('combobox', { name: 'Exchange' }).fill('amq.direct');
  await page.getByRole('textbox', { name: 'Routing key' }).fill('nobody-listens');
  await page.getByRole('textbox', { name: 'Count' }).fill('1');
  await page.getByRole('button', { name: /^Publish/ }).click();
  await expect(result).toContainText('returned as unroutable');

  // History lists both sends; a template can be saved and comes back in the list.
  const history = page.getByRole('region', { name: 'History' });
  await expect(history).toContainText(q);
  await page.getByRole('textbox', { name: 'Template name' }).fill(`tpl ${q}`);
  await page.getByRole('button', { name: 'Save as template' }).click();
  await expect(page.getByRole('combobox', { name: 'Template' })).toContainText(`tpl ${q}`);
  await screenshot(page, 'publisher');
});

test('publish again from the browser pre-fills the publisher', async ({ page, server, signedIn: _ }) => {
  const q = unique('again');
  await declareQueue(server, q);
  await server.api('POST', '/api/connections/local/publish', { exchange: '', routingKey: q, body: '{"hello":"world"}', properties: { headers: { source: 'api' } } });
  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^${q}`) }).click();
  await page.getByRole('grid', { name: 'Messages' }).getByRole('row').nth(1).click();
  await page.getByRole('button', { name: 'Publish again' }).click();
  await expect(page.getByRole('tab', { name: 'Publisher' })).toHaveAttribute('aria-selected', 'true');
  await expect(page.getByRole('textbox', { name: 'Message body' })).toContainText('"hello":"world"');
  await expect(page.getByRole('combobox', { name: 'Queue' })).toHaveValue(q);
  await expect(page.getByRole('textbox', { name: 'Header 1 name' })).toHaveValue('source');
});

test('with its disk nearly full the embedded broker says so and refuses a publish, naming the cause', async ({ page }) => {
  // A limit no disk meets: the disk alarm is on from the start, as on a disk with 50 MB left.
  const { server, stop } = await startServer(['--disk-free-limit', '1000TB']);
  try {
    const q = unique('alarm');
    await declareQueue(server, q);
    await page.goto(`${server.url}/?token=${server.token}`);
    await expect(page.getByRole('alert').filter({ hasText: 'Embedded broker: disk alarm' })).toContainText('publishing is refused until there is room');
    await page.getByRole('tab', { name: 'Publisher' }).click();
    await page.getByRole('tab', { name: 'Queue', exact: true }).click();
    await page.getByRole('combobox', { name: 'Queue' }).fill(q);
    await page.getByRole('textbox', { name: 'Message body' }).fill('{"n": 1}');
    await page.getByRole('button', { name: /^Publish/ }).click();
    await expect(page.getByRole('alert').filter({ hasText: /^Not sent: .*disk alarm: .* [MGT]B free/ })).toBeVisible();
    expect((await queueInfo(server, q)).messages).toBe(0);
    await screenshot(page, 'disk-alarm');
    // The API answers the same.
    const res = await server.raw('POST', `/api/connections/local/publish`, { exchange: '', routingKey: q, body: 'x', count: 1 });
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('disk alarm');
  } finally {
    await stop();
  }
});
