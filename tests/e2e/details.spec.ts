import { test, expect } from './fixtures';
import { declareQueue, openFromSidebar, publish, queueInfo, screenshot, unique } from './helpers';

const L = '/api/connections/local';

test('a queue’s details: arguments, dead-letter target, bindings, and Get messages with each ack mode', async ({ page, server, signedIn: _ }) => {
  const q = unique('detail');
  const dlq = `${q}.dlq`;
  const ex = `${q}.events`;
  await declareQueue(server, dlq);
  await declareQueue(server, q, { deadLetterTo: dlq, arguments: { 'x-message-ttl': 600000, 'x-custom-flag': 'kept' } });
  await server.api('PUT', `${L}/exchanges/${ex}`, { type: 'topic' });
  await server.api('POST', `${L}/bindings`, { source: ex, destination: q, routingKey: 'order.*' });
  await publish(server, q, '{"n":{{i}}}', 5, { contentType: 'application/json' });

  await openFromSidebar(page, q);
  await page.getByRole('tab', { name: 'Details' }).click();
  const view = page.getByRole('region', { name: 'Details' });
  await expect(view.getByRole('heading', { name: q })).toBeVisible();
  const args = view.getByRole('table', { name: 'Arguments' });
  await expect(args).toContainText('x-message-ttl');
  await expect(args).toContainText('600000');
  // Unknown x- arguments are kept and shown.
  await expect(args).toContainText('x-custom-flag');
  await expect(view.getByText(`the default exchange, routing key "${dlq}" (by argument)`)).toBeVisible();
  await expect(view.getByRole('table', { name: 'Bindings' })).toContainText('order.*');
  await expect(view.getByRole('table', { name: 'Consumers' })).toContainText('No consumers');

  // Requeue: the messages are shown, stay in the queue, and come back marked redelivered.
  await view.getByRole('textbox', { name: 'Number of messages' }).fill('2');
  await view.getByRole('textbox', { name: 'Number of messages' }).press('Tab');
  await view.getByRole('button', { name: 'Get messages' }).click();
  const taken = view.getByRole('table', { name: 'Messages taken' });
  await expect(taken.getByRole('row')).toHaveCount(3);
  await expect(taken).toContainText('{"n":1}');
  await expect(taken).toContainText('2 messages taken and requeued');
  expect((await queueInfo(server, q)).ready).toBe(5);
  await screenshot(page, 'details');

  // Ack removes them, after a confirmation.
  await view.getByRole('combobox', { name: 'Ack mode' }).selectOption('ack');
  await view.getByRole('button', { name: 'Get messages' }).click();
  await page.getByRole('button', { name: 'Get and ack' }).click();
  await expect(taken).toContainText('2 messages taken and acked');
  await expect.poll(async () => (await queueInfo(server, q)).ready).toBe(3);

  // Reject dead-letters them into the dead-letter queue.
  await view.getByRole('combobox', { name: 'Ack mode' }).selectOption('reject');
  await view.getByRole('button', { name: 'Get messages' }).click();
  await page.getByRole('button', { name: 'Get and reject' }).click();
  await expect(taken).toContainText('2 messages taken and rejected');
  await expect.poll(async () => (await queueInfo(server, dlq)).ready).toBe(2);
  expect((await queueInfo(server, q)).ready).toBe(1);

  // Read-only leaves only the requeue mode.
  await page.getByRole('switch', { name: 'Read-only' }).click();
  await expect(view.getByRole('combobox', { name: 'Ack mode' }).locator('option')).toHaveCount(1);
  await page.getByRole('switch', { name: 'Read-only' }).click();
  await expect(view.getByRole('combobox', { name: 'Ack mode' }).locator('option')).toHaveCount(3);
});

test('an exchange’s details list its bindings; a topic’s, its partitions', async ({ page, server, signedIn: _ }) => {
  const q = unique('xq');
  const ex = unique('xx');
  const t = unique('xt');
  await declareQueue(server, q);
  await server.api('PUT', `${L}/exchanges/${ex}`, { type: 'direct' });
  await server.api('POST', `${L}/bindings`, { source: ex, destination: q, routingKey: 'k1' });
  await server.api('PUT', `${L}/topics/${t}`, { partitions: 3 });
  for (let p = 0; p < 3; p++) await server.api('POST', `${L}/topics/${t}/publish`, { topic: t, value: 'r{{i}}', count: p + 1, partition: p });

  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: /^Exchanges/ }).click();
  await openFromSidebar(page, ex);
  const view = page.getByRole('region', { name: 'Details' });
  await expect(view.getByRole('heading', { name: ex })).toBeVisible();
  const bindings = view.getByRole('table', { name: 'Bindings' });
  await expect(bindings).toContainText(`queue ${q}`);
  await expect(bindings).toContainText('k1');

  await openFromSidebar(page, t);
  await page.getByRole('tab', { name: 'Details' }).click();
  await expect(view.getByRole('heading', { name: t })).toBeVisible();
  const partitions = view.getByRole('table', { name: 'Partitions' });
  await expect(partitions.getByRole('row')).toHaveCount(4);
  await expect(partitions.getByRole('row').nth(3)).toContainText('3');
  await expect(view.getByRole('group', { name: 'Topic' })).toContainText('6');
});
