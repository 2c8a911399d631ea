/**
 * State belongs to the connection it was read from: switching connections with
 * a dead-letter selection, a browser filter and a publisher form never carries
 * them to the other broker, and they are all still there on return. The
 * re-drive confirmation reads the count at that moment, and "select all" moves
 * only the messages the list showed, not those that arrived after.
 */
import { prepareBroker, type BrokerEnv } from '../integration/rabbitmq/broker';
import { test, expect } from './fixtures';
import { declareQueue, publish, queueInfo, unique } from './helpers';

let env: BrokerEnv = { ok: false, reason: 'not prepared' };
test.describe.configure({ mode: 'serial' });
test.beforeAll(async () => {
  test.setTimeout(300_000);
  env = await prepareBroker();
});
test.afterAll(async () => {
  if (env.ok) await env.cleanup();
});

const nav = (page: import('@playwright/test').Page) => page.getByRole('navigation', { name: 'Connections' });
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('switching connections keeps each one its own dead letters, selection and publisher; select all moves only what was listed', async ({ page, server, signedIn: _ }) => {
  test.skip(!env.ok, `no RabbitMQ: ${env.ok ? '' : env.reason}`);
  if (!env.ok) return;
  const b = env;
  const work = unique('scoped');
  const dlq = `${work}.dlq`;
  await declareQueue(server, dlq);
  await declareQueue(server, work, { deadLetterTo: dlq });
  await publish(server, work, '{"n":{{i}}}', 3);
  await server.api('POST', `/api/connections/local/queues/${work}/get`, { count: 3, ackMode: 'reject' });

  // The RabbitMQ connection has a dead-letter queue of its own, with other messages.
  const conn = await b.connect();
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('rabbit.dlq', { durable: true });
    await ch.assertQueue('rabbit.work', { durable: true, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'rabbit.dlq' } });
    ch.sendToQueue('rabbit.work', Buffer.from('from rabbit'), { messageId: 'r-1' });
    await ch.waitForConfirms();
    const m = await ch.get('rabbit.work', { noAck: false });
    if (!m) throw new Error('rabbit.work ran dry');
    ch.nack(m, false, false);
    await ch.close();
  } finally {
    await conn.close();
  }
  const rabbit = unique('rabbit');
  const kafka = unique('kafka');
  const { id: rabbitId } = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'rabbitmq', name: rabbit, amqpUrl: b.amqpUrl, ...(process.env.RABBITMQ_MANAGEMENT_URL ? { managementUrl: process.env.RABBITMQ_MANAGEMENT_URL } : {}) });
  // A Kafka connection needs no reachable broker for its publisher's form.
  const { id: kafkaId } = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'kafka', name: kafka, brokers: ['127.0.0.1:9'] });

  // Local: the dead-letter queue with two rows selected, and the publisher on "Queue".
  await page.getByRole('tab', { name: 'Dead letters' }).click();
  await page.getByRole('complementary', { name: 'Dead-letter queues' }).getByRole('button', { name: new RegExp(escape(dlq)) }).click();
  const grid = page.getByRole('grid', { name: `Dead letters in ${dlq}` });
  await expect(grid).toHaveAttribute('aria-rowcount', '4');
  await grid.getByRole('row').nth(1).click();
  await grid.getByRole('row').nth(2).click({ modifiers: ['Shift'] });
  await expect(page.getByTestId('selection')).toHaveText('2 selected');

  // RabbitMQ: its own dead-letter queue, nothing of local's, no selection carried over.
  await nav(page).getByRole('button', { name: new RegExp(`^status \\w+ ${rabbit}`) }).click();
  const rabbitList = page.getByRole('complementary', { name: 'Dead-letter queues' });
  await expect(rabbitList.getByRole('button', { name: /rabbit\.dlq/ })).toBeVisible({ timeout: 30_000 });
  await expect(rabbitList.getByRole('button', { name: new RegExp(escape(dlq)) })).toHaveCount(0);
  await expect(page.getByRole('grid', { name: `Dead letters in ${dlq}` })).toHaveCount(0);
  await rabbitList.getByRole('button', { name: /rabbit\.dlq/ }).click();
  const rgrid = page.getByRole('grid', { name: 'Dead letters in rabbit.dlq' });
  await expect(rgrid.getByRole('row').nth(1)).toContainText('rejected', { timeout: 20_000 });
  await expect(page.getByTestId('selection')).toHaveText('0 selected');

  // Kafka: the overview's empty state speaks of topics, not of AMQP or "New queue".
  await nav(page).getByRole('button', { name: new RegExp(`^status \\w+ ${kafka}`) }).click();
  await page.getByRole('tab', { name: 'Overview' }).click();
  const hint = page.getByTestId('empty-hint');
  await expect(hint).toContainText('New topic');
  await expect(hint).not.toContainText('AMQP');
  await expect(hint).not.toContainText('New queue');
  await expect(page.getByRole('button', { name: 'New queue' })).toHaveCount(0);

  // Kafka: the publisher offers topics only, and none of the AMQP properties.
  await page.getByRole('tab', { name: 'Publisher' }).click();
  const targetTabs = page.getByRole('tablist', { name: 'Target type' });
  await expect(targetTabs.getByRole('tab', { name: 'Topic' })).toHaveAttribute('aria-selected', 'true');
  await expect(targetTabs.getByRole('tab', { name: 'Queue' })).toHaveCount(0);
  await expect(page.getByRole('spinbutton', { name: 'Priority' })).toHaveCount(0);
  await expect(page.getByRole('textbox', { name: 'Reply-to' })).toHaveCount(0);

  // Back on local: the selection is where it was.
  await nav(page).getByRole('button', { name: /^status \w+ Embedded broker/ }).click();
  await page.getByRole('tab', { name: 'Dead letters' }).click();
  await expect(page.getByTestId('selection')).toHaveText('2 selected');

  // Select all lists 3; two more die after that. The confirmation reads the count now
  // and says the newcomers are not included; the re-drive moves the 3 listed only.
  await page.getByRole('button', { name: 'Select all' }).click();
  await expect(page.getByTestId('selection')).toHaveText('All 3 messages');
  await publish(server, work, '{"late":{{i}}}', 2);
  await server.api('POST', `/api/connections/local/queues/${work}/get`, { count: 2, ackMode: 'reject' });
  await expect.poll(async () => (await queueInfo(server, dlq)).messages).toBe(5);
  await page.getByRole('button', { name: 'Re-drive…', exact: true }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog.getByTestId('redrive-preview')).toContainText('5 messages in');
  await expect(dialog.getByTestId('redrive-preview')).toContainText('2 arrived after the list was read and are not included');
  await dialog.getByRole('button', { name: 'Start re-drive' }).click();
  await expect(page.getByRole('region', { name: 'Re-drive progress' })).toContainText('3 of 3', { timeout: 30_000 });
  await expect.poll(async () => (await queueInfo(server, dlq)).messages).toBe(2);
  expect((await queueInfo(server, work)).messages).toBe(3);

  await server.api('DELETE', `/api/connections/${rabbitId}`);
  await server.api('DELETE', `/api/connections/${kafkaId}`);
});

test('the embedded broker’s virtual hosts: chosen in the sidebar, each with its own resources, browser and publisher', async ({ page, server, signedIn: _ }) => {
  const vhost = unique('team');
  const inRoot = unique('root-q');
  const inTeam = unique('team-q');
  await server.api('PUT', `/api/connections/local/vhosts/${vhost}`, { description: 'a team of its own' });
  await declareQueue(server, inRoot);
  await server.api('PUT', `/api/connections/local/queues/${inTeam}`, { vhost, durable: true });
  await server.api('POST', '/api/connections/local/publish', { vhost, exchange: '', routingKey: inTeam, body: '{"team":true}' });

  const picker = nav(page).getByRole('combobox', { name: 'Virtual host' });
  await expect(picker).toBeVisible({ timeout: 30_000 });
  await expect(nav(page).getByRole('button', { name: new RegExp(`^${inRoot}\\b`) })).toBeVisible();
  await picker.selectOption(vhost);
  await expect(nav(page).getByRole('button', { name: new RegExp(`^${inTeam}\\b`) })).toBeVisible({ timeout: 30_000 });
  await expect(nav(page).getByRole('button', { name: new RegExp(`^${inRoot}\\b`) })).toHaveCount(0);

  // The browser reads the queue in that vhost.
  await nav(page).getByRole('button', { name: new RegExp(`^${inTeam}\\b`) }).click();
  await expect(page.getByRole('grid', { name: 'Messages' }).getByRole('row').nth(1)).toContainText('"team":true');

  // The publisher sends into that vhost.
  await page.getByRole('tab', { name: 'Publisher' }).click();
  await page.getByRole('tab', { name: 'Queue', exact: true }).click();
  await page.getByRole('combobox', { name: 'Queue' }).fill(inTeam);
  await page.getByRole('textbox', { name: 'Message body' }).fill('{"second":true}');
  await page.getByRole('button', { name: /^Publish/ }).click();
  await expect(page.getByRole('region', { name: 'Last result' })).toContainText(inTeam);
  await expect.poll(async () => (await server.api<{ messages: number }>('GET', `/api/connections/local/queues/${inTeam}?vhost=${vhost}`)).messages).toBe(2);

  // Back on "/": its own queues, and the browser of "/" as it was.
  await picker.selectOption('/');
  await expect(nav(page).getByRole('button', { name: new RegExp(`^${inRoot}\\b`) })).toBeVisible({ timeout: 30_000 });
  await expect(nav(page).getByRole('button', { name: new RegExp(`^${inTeam}\\b`) })).toHaveCount(0);
});
