/**
 * The UI on the real RabbitMQ, in a vhost of the test's own: a queue whose
 * dead-lettering is set by a policy, peeked in the browser without losing
 * anything, shown with its policy in the details, and its dead letters
 * re-driven from the UI back where they came from, exactly once. Without a
 * RabbitMQ the tests are skipped with the reason.
 */
import { prepareBroker, type BrokerEnv, type TestBroker } from '../integration/rabbitmq/broker';
import { test, expect } from './fixtures';
import { openFromSidebar, screenshot, unique } from './helpers';

let env: BrokerEnv = { ok: false, reason: 'not prepared' };

test.describe.configure({ mode: 'serial' });
test.beforeAll(async () => {
  test.setTimeout(300_000);
  env = await prepareBroker();
});
test.afterAll(async () => {
  if (env.ok) await env.cleanup();
});

interface MgmtQueue {
  messages_ready: number;
  messages_unacknowledged: number;
  policy?: string;
}

/** Takes every message of a queue (acking it) through amqplib, in order. */
async function drain(b: TestBroker, queue: string): Promise<Array<{ id: string; body: string }>> {
  const conn = await b.connect();
  try {
    const ch = await conn.createChannel();
    const out: Array<{ id: string; body: string }> = [];
    for (;;) {
      const m = await ch.get(queue, { noAck: true });
      if (!m) return out;
      out.push({ id: String(m.properties.messageId), body: m.content.toString() });
    }
  } finally {
    await conn.close();
  }
}

async function queueDepth(b: TestBroker, queue: string): Promise<number> {
  const q = (await b.api('GET', `/api/queues/${encodeURIComponent(b.vhost)}/${encodeURIComponent(queue)}`)) as MgmtQueue;
  return q.messages_ready + q.messages_unacknowledged;
}

test('a RabbitMQ queue dead-lettered by policy: peeked without loss, its policy shown, its dead letters re-driven exactly once', async ({ page, server, signedIn: _ }) => {
  test.skip(!env.ok, `no RabbitMQ: ${env.ok ? '' : env.reason}`);
  if (!env.ok) return;
  const b = env;
  test.setTimeout(180_000);
  const N = 20;
  const REJECTED = 6;
  await b.api('PUT', `/api/policies/${encodeURIComponent(b.vhost)}/orders-dlx`, {
    pattern: '^orders$',
    'apply-to': 'queues',
    definition: { 'dead-letter-exchange': '', 'dead-letter-routing-key': 'orders.dlq' },
  });
  const conn = await b.connect();
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('orders', { durable: true });
    await ch.assertQueue('orders.dlq', { durable: true });
    for (let i = 0; i < N; i++) ch.sendToQueue('orders', Buffer.from(JSON.stringify({ order: i })), { messageId: `order-${i}`, contentType: 'application/json', persistent: true });
    await ch.waitForConfirms();
    // A consumer that rejects the first few: the policy dead-letters them, with x-death.
    for (let i = 0; i < REJECTED; i++) {
      const m = await ch.get('orders', { noAck: false });
      if (!m) throw new Error('orders ran dry');
      ch.nack(m, false, false);
    }
    await ch.close();
  } finally {
    await conn.close();
  }
  await expect.poll(() => queueDepth(b, 'orders.dlq'), { timeout: 20_000 }).toBe(REJECTED);

  const name = unique('rabbit');
  const { id } = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'rabbitmq', name, amqpUrl: b.amqpUrl, ...(process.env.RABBITMQ_MANAGEMENT_URL ? { managementUrl: process.env.RABBITMQ_MANAGEMENT_URL } : {}) });
  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();

  // Peek in the browser: the messages are shown and stay in the queue.
  await expect(page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: /^orders\b/ }).first()).toBeVisible({ timeout: 30_000 });
  await openFromSidebar(page, 'orders');
  const grid = page.getByRole('grid', { name: 'Messages' });
  await expect(grid.getByRole('row').nth(1)).toContainText(`"order":${REJECTED}`, { timeout: 20_000 });
  // The management API's figures trail by a statistics round; they settle on the same depth.
  await expect.poll(() => queueDepth(b, 'orders'), { timeout: 20_000 }).toBe(N - REJECTED);

  // Details: dead-lettering comes from the policy, and says so.
  await page.getByRole('tab', { name: 'Details' }).click();
  const view = page.getByRole('region', { name: 'Details' });
  await expect(view.getByRole('heading', { name: 'orders', exact: true })).toBeVisible();
  await expect(view.getByRole('table', { name: 'Policy' })).toContainText('dead-letter-routing-key');
  await expect(view.getByText('the default exchange, routing key "orders.dlq" (by policy "orders-dlx")')).toBeVisible({ timeout: 20_000 });
  await screenshot(page, 'details-rabbitmq');

  // Dead letters: the queue the policy points at, each message's x-death, re-driven from the UI.
  await page.getByRole('tab', { name: 'Dead letters' }).click();
  const list = page.getByRole('complementary', { name: 'Dead-letter queues' });
  await list.getByRole('button', { name: /orders\.dlq/ }).click({ timeout: 30_000 });
  const dead = page.getByRole('grid', { name: 'Dead letters in orders.dlq' });
  await expect(dead.getByRole('row').nth(1)).toContainText('rejected');
  await expect(dead.getByRole('row').nth(1)).toContainText('orders');
  await page.getByRole('button', { name: 'Select all' }).click();
  await page.getByRole('button', { name: 'Re-drive…', exact: true }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toContainText('A crash between the two can leave a copy in both places');
  await dialog.getByRole('button', { name: 'Start re-drive' }).click();
  const progress = page.getByRole('region', { name: 'Re-drive progress' });
  await expect(progress).toContainText(`Done: ${REJECTED} of ${REJECTED} messages re-driven`, { timeout: 60_000 });

  // Through RabbitMQ itself: every message is back in orders exactly once, the dead-letter queue is empty.
  await expect.poll(() => queueDepth(b, 'orders.dlq'), { timeout: 20_000 }).toBe(0);
  const ids = (await drain(b, 'orders')).map((m) => m.id);
  expect(ids.sort()).toEqual(Array.from({ length: N }, (_, i) => `order-${i}`).sort());
  await server.api('DELETE', `/api/connections/${id}`);
});

test('a quorum queue with a delivery limit is not peeked until the person accepts the cost', async ({ page, server, signedIn: _ }) => {
  test.skip(!env.ok, `no RabbitMQ: ${env.ok ? '' : env.reason}`);
  if (!env.ok) return;
  const b = env;
  const conn = await b.connect();
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('payments', { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 5 } });
    for (let i = 0; i < 3; i++) ch.sendToQueue('payments', Buffer.from(`payment ${i}`), { messageId: `p-${i}`, persistent: true });
    await ch.waitForConfirms();
    await ch.close();
  } finally {
    await conn.close();
  }
  const name = unique('rabbit');
  const { id } = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'rabbitmq', name, amqpUrl: b.amqpUrl, ...(process.env.RABBITMQ_MANAGEMENT_URL ? { managementUrl: process.env.RABBITMQ_MANAGEMENT_URL } : {}) });
  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();
  await expect(page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: /^payments\b/ })).toBeVisible({ timeout: 30_000 });
  await openFromSidebar(page, 'payments');
  await expect(page.getByRole('alert').filter({ hasText: 'quorum queue with a delivery limit of 5' })).toBeVisible();
  await page.getByRole('button', { name: 'Peek anyway' }).click();
  const grid = page.getByRole('grid', { name: 'Messages' });
  await expect(grid.getByRole('row').nth(3)).toContainText('payment 2');
  // Still all there, in order: nothing was acked.
  expect((await drain(b, 'payments')).map((m) => m.body)).toEqual(['payment 0', 'payment 1', 'payment 2']);
  await server.api('DELETE', `/api/connections/${id}`);
});

test('a RabbitMQ message without a timestamp shows no date, and a body with many headers stays readable', async ({ page, server, signedIn: _ }) => {
  test.skip(!env.ok, `no RabbitMQ: ${env.ok ? '' : env.reason}`);
  if (!env.ok) return;
  const b = env;
  const headers: Record<string, string> = {};
  for (let i = 0; i < 40; i++) headers[`x-trace-${i}`] = `value ${i}`;
  const conn = await b.connect();
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('untimed', { durable: true });
    // amqplib sets no timestamp unless asked: the message carries none.
    ch.sendToQueue('untimed', Buffer.from(JSON.stringify({ note: 'read me', lines: Array.from({ length: 30 }, (_, i) => `line ${i}`) })), { messageId: 'u-1', contentType: 'application/json', headers });
    await ch.waitForConfirms();
    await ch.close();
  } finally {
    await conn.close();
  }
  const name = unique('rabbit');
  const { id } = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'rabbitmq', name, amqpUrl: b.amqpUrl, ...(process.env.RABBITMQ_MANAGEMENT_URL ? { managementUrl: process.env.RABBITMQ_MANAGEMENT_URL } : {}) });
  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();
  await expect(page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: /^untimed\b/ })).toBeVisible({ timeout: 30_000 });
  await openFromSidebar(page, 'untimed');
  const row = page.getByRole('grid', { name: 'Messages' }).getByRole('row').nth(1);
  await expect(row).toContainText('read me', { timeout: 20_000 });
  await expect(row).not.toContainText('1970');
  await row.click();
  const detail = page.getByRole('region', { name: 'Message detail' });
  await expect(detail.getByRole('table', { name: 'Headers' })).toContainText('x-trace-39');
  await expect(detail).not.toContainText('1970');
  await expect(detail.getByRole('table', { name: 'Properties' })).toContainText('not recorded');
  // The body is not squeezed by the 40 headers below it: it keeps a readable height.
  await expect.poll(async () => (await detail.getByRole('region', { name: 'Body' }).boundingBox())?.height ?? 0).toBeGreaterThanOrEqual(120);
  await server.api('DELETE', `/api/connections/${id}`);
});

test('a bulk publish to RabbitMQ shows progress and can be cancelled; a number header takes {{i}}; the history is the connection’s own', async ({ page, server, signedIn: _ }) => {
  test.skip(!env.ok, `no RabbitMQ: ${env.ok ? '' : env.reason}`);
  if (!env.ok) return;
  const b = env;
  const conn = await b.connect();
  try {
    const ch = await conn.createChannel();
    await ch.assertQueue('bulk', { durable: true });
    await ch.close();
  } finally {
    await conn.close();
  }
  const name = unique('rabbit');
  const { id } = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'rabbitmq', name, amqpUrl: b.amqpUrl, ...(process.env.RABBITMQ_MANAGEMENT_URL ? { managementUrl: process.env.RABBITMQ_MANAGEMENT_URL } : {}) });
  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();
  await page.getByRole('tab', { name: 'Publisher' }).click();
  await page.getByRole('tab', { name: 'Queue', exact: true }).click();
  await page.getByRole('combobox', { name: 'Queue' }).fill('bulk');
  await page.getByRole('textbox', { name: 'Message body' }).fill('{"n": {{i}}}');
  await page.getByRole('button', { name: 'Add header' }).click();
  await page.getByRole('textbox', { name: 'Header 1 name' }).fill('seq');
  await page.getByRole('combobox', { name: 'Header 1 type' }).selectOption('number');
  await page.getByRole('textbox', { name: 'Header 1 value' }).fill('{{i}}');
  // A million copies take minutes at RabbitMQ's pace: the cancel lands long before the end.
  await page.getByRole('textbox', { name: 'Count' }).fill('1000000');
  await page.getByRole('button', { name: /^Publish/ }).click();

  const progress = page.getByRole('region', { name: 'Publish progress' });
  await expect.poll(async () => Number((await progress.getByTestId('publish-confirmed').textContent())?.replace(/,/g, '')), { timeout: 60_000 }).toBeGreaterThan(0);
  await progress.getByRole('button', { name: 'Cancel' }).click();
  await expect(progress).toHaveAttribute('data-state', 'cancelled', { timeout: 60_000 });
  await expect(progress.getByTestId('publish-state')).toContainText('Cancelled');
  const confirmed = Number((await progress.getByTestId('publish-confirmed').textContent())?.replace(/,/g, ''));
  expect(confirmed).toBeLessThan(1_000_000);

  // What arrived has its placeholders expanded: the first copy is n 1 with the number header seq 1.
  const check = await b.connect();
  try {
    const ch = await check.createChannel();
    const m = await ch.get('bulk', { noAck: true });
    expect(m && JSON.parse(m.content.toString())).toEqual({ n: 1 });
    expect(m && m.properties.headers?.seq).toBe(1);
    await ch.close();
  } finally {
    await check.close();
  }

  // The history lists the publish on this connection, by name, and not on the embedded broker's.
  const history = page.getByRole('region', { name: 'History' });
  await expect(history).toContainText(`History on ${name}`);
  await expect(history).toContainText('bulk', { timeout: 20_000 });
  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: /^status \w+ Embedded broker/ }).click();
  await page.getByRole('tab', { name: 'Publisher' }).click();
  await expect(page.getByRole('region', { name: 'History' })).toContainText('History on Embedded broker');
  await expect(page.getByRole('region', { name: 'History' })).not.toContainText('bulk');
  await server.api('DELETE', `/api/connections/${id}`);
});

test('a RabbitMQ search says how far it went, offers to search the whole queue, and lists no rows it cannot fill', async ({ page, server, signedIn: _ }) => {
  test.skip(!env.ok, `no RabbitMQ: ${env.ok ? '' : env.reason}`);
  if (!env.ok) return;
  const b = env;
  const N = 3_000;
  const NEEDLE = 2_500;
  const conn = await b.connect();
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('haystack', { durable: true });
    for (let i = 0; i < N; i++) ch.sendToQueue('haystack', Buffer.from(i === NEEDLE ? '{"needle":true}' : `{"hay":${i}}`), { messageId: `h-${i}` });
    await ch.waitForConfirms();
    await ch.close();
  } finally {
    await conn.close();
  }
  await expect.poll(() => queueDepth(b, 'haystack'), { timeout: 20_000 }).toBe(N);
  const name = unique('rabbit');
  const { id } = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'rabbitmq', name, amqpUrl: b.amqpUrl, ...(process.env.RABBITMQ_MANAGEMENT_URL ? { managementUrl: process.env.RABBITMQ_MANAGEMENT_URL } : {}) });
  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();
  await expect(page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: /^haystack\b/ })).toBeVisible({ timeout: 30_000 });
  await openFromSidebar(page, 'haystack');

  // Unfiltered: only the rows a peek can reach are listed, and the list says why.
  const grid = page.getByRole('grid', { name: 'Messages' });
  await expect(grid).toHaveAttribute('aria-rowcount', '1001', { timeout: 30_000 });
  await expect(page.getByTestId('capped')).toContainText('first 1,000 of 3,000');

  // A search stops where a peek reaches and says so, rather than "no match".
  await page.getByRole('textbox', { name: 'Body contains' }).fill('needle');
  await page.getByRole('button', { name: 'Apply filter' }).click();
  await expect(page.getByTestId('coverage')).toContainText('scanned 1,000 of 3,000', { timeout: 30_000 });
  await expect(grid).toContainText('No match in the first 1,000 of 3,000 messages');
  // Searching the whole queue finds it, and every message is handed back.
  await page.getByRole('button', { name: 'Search the whole queue' }).click();
  await expect(page.getByTestId('matched')).toHaveText('1', { timeout: 60_000 });
  await expect(grid.getByRole('row').nth(1)).toContainText('needle');
  await expect.poll(() => queueDepth(b, 'haystack'), { timeout: 30_000 }).toBe(N);
  await server.api('DELETE', `/api/connections/${id}`);
});

interface MgmtPolicy {
  name: string;
  pattern: string;
  'apply-to': string;
  priority: number;
  definition: Record<string, unknown>;
}

test('RabbitMQ policies from the connection details: mistakes named beside their field, the broker refusal shown, one created and then deleted', async ({ page, server, signedIn: _ }) => {
  test.skip(!env.ok, `no RabbitMQ: ${env.ok ? '' : env.reason}`);
  if (!env.ok) return;
  const b = env;
  const name = unique('rabbit-policies');
  const policy = unique('cap');
  // The vhost is shared with the other tests of this file (which have policies of their own): only this one's counts.
  const policies = async () => ((await b.api('GET', `/api/policies/${encodeURIComponent(b.vhost)}`)) as MgmtPolicy[]).filter((p) => p.name === policy);
  const { id } = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'rabbitmq', name, amqpUrl: b.amqpUrl, managementUrl: process.env.RABBITMQ_MANAGEMENT_URL ?? b.managementUrl });

  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();
  await page.getByRole('tab', { name: 'Details' }).click();
  const view = page.getByRole('region', { name: 'Details' });
  const table = view.getByRole('table', { name: 'Policies' });
  await expect(table).toBeVisible();
  await expect(table.getByRole('row').filter({ hasText: policy })).toHaveCount(0);

  await view.getByRole('button', { name: 'New policy…' }).click();
  const dialog = page.getByRole('dialog');
  const field = (label: string) => dialog.locator('label').filter({ has: page.getByRole('textbox', { name: label, exact: true }) });
  // Mistakes, each beside its field, before anything is sent.
  await dialog.getByRole('textbox', { name: 'Pattern' }).fill('^orders(');
  await dialog.getByRole('textbox', { name: 'Priority' }).fill('high');
  await dialog.getByRole('textbox', { name: 'Definition' }).fill('{"max-length": 10,}');
  await dialog.getByRole('button', { name: 'Create policy' }).click();
  await expect(field('Policy name')).toContainText('name must not be empty');
  await expect(field('Pattern')).toContainText('pattern is not a regular expression');
  await expect(field('Priority')).toContainText('priority must be a whole number');
  await expect(field('Definition')).toContainText('definition is not JSON');
  expect(await policies()).toEqual([]);

  // A definition RabbitMQ refuses: its words, beside the definition.
  await dialog.getByRole('textbox', { name: 'Policy name' }).fill(policy);
  await dialog.getByRole('textbox', { name: 'Pattern' }).fill('^orders\\.');
  await dialog.getByRole('textbox', { name: 'Priority' }).fill('5');
  await dialog.getByRole('textbox', { name: 'Definition' }).fill('{"max-length": "ten"}');
  await dialog.getByRole('button', { name: 'Create policy' }).click();
  await expect(field('Definition')).toContainText(/not a valid maximum length/, { timeout: 30_000 });
  expect(await policies()).toEqual([]);

  await dialog.getByRole('textbox', { name: 'Definition' }).fill('{"max-length": 10, "overflow": "reject-publish"}');
  await dialog.getByRole('combobox', { name: 'Applies to' }).selectOption('queues');
  await dialog.getByRole('button', { name: 'Create policy' }).click();
  await expect(dialog).toHaveCount(0);
  await expect(table.getByRole('row').filter({ hasText: policy })).toContainText('{"max-length":10,"overflow":"reject-publish"}');
  expect(await policies()).toEqual([expect.objectContaining({ name: policy, pattern: '^orders\\.', 'apply-to': 'queues', priority: 5, definition: { 'max-length': 10, overflow: 'reject-publish' } })]);

  await table.getByRole('button', { name: `Delete policy ${policy}` }).click();
  await page.getByRole('button', { name: 'Delete policy', exact: true }).click();
  await expect(table.getByRole('row').filter({ hasText: policy })).toHaveCount(0);
  expect(await policies()).toEqual([]);

  // Read-only: the list stays, the actions go.
  await server.api('PUT', `/api/connections/${id}/read-only`, { readOnly: true });
  await page.reload();
  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();
  await page.getByRole('tab', { name: 'Details' }).click();
  await expect(table).toBeVisible();
  await expect(view.getByRole('button', { name: 'New policy…' })).toHaveCount(0);
  await server.api('DELETE', `/api/connections/${id}`);
});
