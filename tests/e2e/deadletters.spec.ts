import { test, expect } from './fixtures';
import { allMessages, declareQueue, publish, queueInfo, screenshot, unique } from './helpers';

test('dead-letter by rejecting, re-drive from the UI at a rate limit, every message back exactly once', async ({ page, server, signedIn: _ }) => {
  const work = unique('work');
  const dlq = `${work}.dlq`;
  const N = 300;
  await declareQueue(server, dlq);
  await declareQueue(server, work, { deadLetterTo: dlq });
  await publish(server, work, '{"n":{{i}}}', N, { headers: { seq: '{{i}}' } });
  // Rejecting without requeue dead-letters them.
  await server.api('POST', `/api/connections/local/queues/${work}/get`, { count: N, ackMode: 'reject' });
  expect((await queueInfo(server, work)).messages).toBe(0);
  expect((await queueInfo(server, dlq)).messages).toBe(N);

  await page.getByRole('tab', { name: 'Dead letters' }).click();
  const list = page.getByRole('complementary', { name: 'Dead-letter queues' });
  await list.getByRole('button', { name: new RegExp(dlq.replace(/\./g, '\\.')) }).click();
  const grid = page.getByRole('grid', { name: `Dead letters in ${dlq}` });
  await expect(grid).toHaveAttribute('aria-rowcount', String(N + 1));
  const first = grid.getByRole('row').nth(1);
  await expect(first).toContainText('rejected');
  await expect(first).toContainText(work);

  // Shift-range selection.
  await first.click();
  await grid.getByRole('row').nth(5).click({ modifiers: ['Shift'] });
  await expect(page.getByTestId('selection')).toHaveText('5 selected');

  // Everything, at 100 messages a second.
  await page.getByRole('button', { name: 'Select all' }).click();
  await expect(page.getByTestId('selection')).toHaveText(`All ${N} messages`);
  await page.getByRole('button', { name: 'Re-drive…', exact: true }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog.getByRole('radio', { name: 'The queue each one came from' })).toBeChecked();
  await dialog.getByRole('textbox', { name: 'Rate limit' }).fill('100');
  await dialog.getByRole('button', { name: 'Start re-drive' }).click();

  const progress = page.getByRole('region', { name: 'Re-drive progress' });
  await expect(progress).toBeVisible();
  // Mid-way: the rate limit keeps it from finishing at once.
  await expect.poll(async () => Number((await page.getByTestId('moved').textContent())?.replace(/,/g, '')), { timeout: 30_000 }).toBeGreaterThan(0);
  await expect(progress.getByRole('progressbar')).toHaveAttribute('aria-valuenow', '100', { timeout: 60_000 });
  await expect(page.getByTestId('moved')).toHaveText(String(N));
  await expect(progress).toContainText(`Done: ${N} of ${N} messages re-driven`);
  await screenshot(page, 'deadletters');

  // Through the API: every message is back in the work queue exactly once, and the DLQ is empty.
  await expect.poll(async () => (await queueInfo(server, dlq)).messages).toBe(0);
  const back = await allMessages(server, work);
  const ns = back.map((m) => (JSON.parse(m.body) as { n: number }).n).sort((a, b) => a - b);
  expect(ns).toEqual(Array.from({ length: N }, (_, i) => i + 1));

  // The audit log records it.
  await page.getByRole('tab', { name: /Audit log/ }).click();
  await expect(page.getByRole('region', { name: 'Audit log' })).toContainText(dlq);
});

test('edit one dead letter before re-driving it, and cancel a slow re-drive', async ({ page, server, signedIn: _ }) => {
  const work = unique('edit');
  const dlq = `${work}.dlq`;
  await declareQueue(server, dlq);
  await declareQueue(server, work, { deadLetterTo: dlq });
  await publish(server, work, '{"n":{{i}},"ok":false}', 50);
  await server.api('POST', `/api/connections/local/queues/${work}/get`, { count: 50, ackMode: 'reject' });

  await page.getByRole('tab', { name: 'Dead letters' }).click();
  await page.getByRole('complementary', { name: 'Dead-letter queues' }).getByRole('button', { name: new RegExp(dlq.replace(/\./g, '\\.')) }).click();
  const grid = page.getByRole('grid', { name: `Dead letters in ${dlq}` });
  await grid.getByRole('row').nth(1).click();
  await page.getByRole('button', { name: 'Edit & re-drive…' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('textbox', { name: 'Edited body' }).fill('{"n":1,"ok":true}');
  await dialog.getByRole('button', { name: 'Re-drive edited message' }).click();
  await expect(page.getByRole('region', { name: 'Re-drive progress' })).toContainText('Done: 1 of 1');
  const back = await allMessages(server, work);
  expect(back.map((m) => m.body)).toEqual(['{"n":1,"ok":true}']);

  // A slow re-drive can be cancelled; what was not moved stays in the DLQ. At one
  // message a second the 49 take 49 s: the cancel lands long before the end.
  await page.getByRole('button', { name: 'Dismiss' }).click();
  await page.getByRole('button', { name: 'Select all' }).click();
  await page.getByRole('button', { name: 'Re-drive…', exact: true }).click();
  await page.getByRole('dialog').getByRole('textbox', { name: 'Rate limit' }).fill('1');
  await page.getByRole('dialog').getByRole('button', { name: 'Start re-drive' }).click();
  await expect.poll(async () => Number(await page.getByTestId('moved').textContent()), { timeout: 30_000 }).toBeGreaterThan(0);
  await page.getByRole('region', { name: 'Re-drive progress' }).getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByRole('region', { name: 'Re-drive progress' })).toContainText('Cancelled after');
  const moved = Number(await page.getByTestId('moved').textContent());
  await expect.poll(async () => (await queueInfo(server, dlq)).messages).toBe(49 - moved);
  expect((await queueInfo(server, work)).messages).toBe(1 + moved);
});

test('a re-drive that moved nothing says so, in the colours of a warning, with why', async ({ page, server, signedIn: _ }) => {
  const work = unique('gone');
  const dlq = `${work}.dlq`;
  await declareQueue(server, dlq);
  await declareQueue(server, work, { deadLetterTo: dlq });
  await publish(server, work, 'going away', 1);
  await server.api('POST', `/api/connections/local/queues/${work}/get`, { count: 1, ackMode: 'reject' });

  await page.getByRole('tab', { name: 'Dead letters' }).click();
  await page.getByRole('complementary', { name: 'Dead-letter queues' }).getByRole('button', { name: new RegExp(dlq.replace(/\./g, '\\.')) }).click();
  const grid = page.getByRole('grid', { name: `Dead letters in ${dlq}` });
  await grid.getByRole('row').nth(1).click();
  await expect(page.getByTestId('selection')).toHaveText('1 selected');
  // Another consumer takes the message while it is selected here.
  await server.api('POST', `/api/connections/local/queues/${dlq}/get`, { count: 1, ackMode: 'ack' });
  await page.getByRole('button', { name: 'Re-drive…', exact: true }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog.getByTestId('redrive-preview')).toContainText(`0 messages in ${dlq} now`);
  await dialog.getByRole('button', { name: 'Start re-drive' }).click();

  const progress = page.getByRole('region', { name: 'Re-drive progress' });
  await expect(progress).toHaveAttribute('data-outcome', 'nothing', { timeout: 30_000 });
  await expect(progress.getByTestId('job-state')).toHaveText('nothing moved');
  await expect(progress).toContainText('Nothing moved: 0 of 1 messages');
  await expect(progress).not.toContainText('Done:');
  expect((await queueInfo(server, work)).messages).toBe(0);
});

test('when messages leave a dead-letter queue, its list shrinks with it: no empty rows linger', async ({ page, server, signedIn: _ }) => {
  const work = unique('shrink');
  const dlq = `${work}.dlq`;
  await declareQueue(server, dlq);
  await declareQueue(server, work, { deadLetterTo: dlq });
  await publish(server, work, '{"n":{{i}}}', 5);
  await server.api('POST', `/api/connections/local/queues/${work}/get`, { count: 5, ackMode: 'reject' });
  await page.getByRole('tab', { name: 'Dead letters' }).click();
  await page.getByRole('complementary', { name: 'Dead-letter queues' }).getByRole('button', { name: new RegExp(dlq.replace(/\./g, '\\.')) }).click();
  const grid = page.getByRole('grid', { name: `Dead letters in ${dlq}` });
  await expect(grid).toHaveAttribute('aria-rowcount', '6');
  // Another consumer takes three of them.
  await server.api('POST', `/api/connections/local/queues/${dlq}/get`, { count: 3, ackMode: 'ack' });
  await expect(grid).toHaveAttribute('aria-rowcount', '3', { timeout: 30_000 });
  await expect(grid.getByRole('row').nth(1)).toContainText('"n":4');
  await expect(grid.getByRole('row').nth(2)).toContainText('"n":5');
});

test('Kafka dead letters: a detail panel with the whole error, the key edited before re-driving, and the re-driven record marked', async ({ page, server, signedIn: _ }) => {
  // The embedded broker's own Kafka listener is a real Kafka endpoint: a Kafka connection points at it.
  const listeners = await server.api<Array<{ protocol: string; port: number | null; note: string | null }>>('GET', '/api/listeners');
  const kafkaListener = listeners.find((l) => l.protocol === 'kafka');
  test.skip(!kafkaListener?.port, `the embedded broker's Kafka listener is not running: ${kafkaListener?.note ?? 'not listed'}`);
  const original = unique('payments');
  const dlt = `${original}.DLT`;
  const longMessage = `Listener method could not be invoked with the incoming message: ${'amount must be positive; '.repeat(12)}end of message`;
  await server.api('PUT', `/api/connections/local/topics/${original}`, { partitions: 1 });
  await server.api('PUT', `/api/connections/local/topics/${dlt}`, { partitions: 1 });
  await server.api('POST', `/api/connections/local/topics/${dlt}/publish`, {
    key: 'payment-7',
    value: '{"payment":7,"amount":-5}',
    headers: {
      'kafka_dlt-original-topic': original,
      'kafka_dlt-original-partition': '0',
      'kafka_dlt-original-offset': '41',
      'kafka_dlt-exception-fqcn': 'org.springframework.kafka.listener.ListenerExecutionFailedException',
      'kafka_dlt-exception-message': longMessage,
    },
  });
  const name = unique('kafka');
  const { id } = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'kafka', name, brokers: [`127.0.0.1:${kafkaListener!.port}`] });
  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();
  await page.getByRole('tab', { name: 'Dead letters' }).click();
  await page.getByRole('complementary', { name: 'Dead-letter topics' }).getByRole('button', { name: new RegExp(dlt.replace(/\./g, '\\.')) }).click({ timeout: 30_000 });
  const grid = page.getByRole('grid', { name: `Dead letters in ${dlt}` });
  await grid.getByRole('row').nth(1).click();
  // The detail shows the whole error message and value, not a cell's cut.
  const detail = page.getByRole('region', { name: 'Message detail' });
  await expect(detail.getByRole('table', { name: 'Headers' })).toContainText('end of message');
  await expect(detail.getByRole('region', { name: 'Body' })).toContainText('payment');

  // Edit & re-drive with a new key: the record lands in the original topic under that key.
  await page.getByRole('button', { name: 'Edit & re-drive…' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog.getByRole('textbox', { name: 'Edited key' })).toHaveValue('payment-7');
  await dialog.getByRole('textbox', { name: 'Edited key' }).fill('payment-7-fixed');
  await dialog.getByRole('textbox', { name: 'Edited body' }).fill('{"payment":7,"amount":5}');
  await dialog.getByRole('button', { name: 'Re-drive edited record' }).click();
  await expect(page.getByRole('region', { name: 'Re-drive progress' })).toContainText('Done: 1 of 1', { timeout: 30_000 });
  await expect
    .poll(async () => (await server.api<{ messages: Array<{ key: string | null; value: string | null }> }>('GET', `/api/connections/local/topics/${original}/messages?limit=10`)).messages.map((r) => `${r.key} ${r.value}`), { timeout: 20_000 })
    .toEqual(['payment-7-fixed {"payment":7,"amount":5}']);
  // The record is marked as re-driven in the list.
  await expect(grid.getByRole('row').nth(1)).toContainText('re-driven', { timeout: 20_000 });
  await server.api('DELETE', `/api/connections/${id}`);
});
