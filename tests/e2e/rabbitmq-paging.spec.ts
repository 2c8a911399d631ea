/**
 * Opening a RabbitMQ connection with many queues: the page asks for the first
 * page of queues alone (queues/list with page and pageSize, which RabbitMQ
 * serves from the management API's paginated /api/queues), paints it, and
 * only then asks for the whole list (the live stats stream). The stream's
 * subscription is held back on the socket until the first rows are seen
 * painted, so the order is checked, not raced. Runs against the real RabbitMQ
 * (tests/integration/rabbitmq/broker.ts), in a vhost of its own that is
 * deleted at the end; skipped with the reason when there is none.
 */
import { prepareBroker, type BrokerEnv } from '../integration/rabbitmq/broker';
import { test, expect } from './fixtures';
import { unique } from './helpers';

const QUEUES = 1_000;
let env: BrokerEnv = { ok: false, reason: 'not prepared' };
test.describe.configure({ mode: 'serial' });
test.beforeAll(async () => {
  test.setTimeout(300_000);
  env = await prepareBroker();
  if (!env.ok) return;
  const conn = await env.connect();
  try {
    const ch = await conn.createChannel();
    for (let i = 0; i < QUEUES; i += 250) await Promise.all(Array.from({ length: Math.min(250, QUEUES - i) }, (_, j) => ch.assertQueue(`paged-${String(i + j).padStart(4, '0')}`, { durable: false })));
    await ch.close();
  } finally {
    await conn.close();
  }
});
test.afterAll(async () => {
  if (env.ok) await env.cleanup();
});

test('a RabbitMQ vhost with 1,000 queues paints its first page before the whole list is asked for', async ({ page, server }) => {
  test.skip(!env.ok, `no RabbitMQ: ${env.ok ? '' : env.reason}`);
  if (!env.ok) return;
  const name = unique('paged');
  const { id } = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'rabbitmq', name, amqpUrl: env.amqpUrl, managementUrl: process.env.RABBITMQ_MANAGEMENT_URL ?? env.managementUrl });
  // The management API answers with the queues a moment after they are declared.
  await expect.poll(async () => (await server.api<unknown[]>('GET', `/api/connections/${id}/queues`)).length, { timeout: 60_000 }).toBe(QUEUES);

  // The stats subscription of this connection waits on the socket until released; the
  // calls the page makes, and their answers, are read on the way.
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const calls: Array<{ id: number; op: string; input: Record<string, unknown>; answer?: unknown }> = [];
  await page.routeWebSocket(/\/api\/ws$/, (ws) => {
    const upstream = ws.connectToServer();
    ws.onMessage(async (message) => {
      if (typeof message === 'string') {
        const frame = JSON.parse(message) as { t: string; id: number; op?: string; input?: Record<string, unknown> };
        if (frame.t === 'call') calls.push({ id: frame.id, op: frame.op!, input: frame.input ?? {} });
        if (frame.t === 'sub' && message.includes(`"connectionId":"${id}"`)) await released;
      }
      upstream.send(message);
    });
    upstream.onMessage((message) => {
      if (typeof message === 'string') {
        const frame = JSON.parse(message) as { t: string; id: number; value?: unknown };
        const call = frame.t === 'result' ? calls.find((c) => c.id === frame.id) : undefined;
        if (call) call.answer = frame.value;
      }
      ws.send(message);
    });
  });
  await page.goto(`${server.url}/?token=${server.token}`);
  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();

  // The first page, alone: painted, and said to be the first of more.
  const grid = page.getByRole('grid', { name: 'Resources' });
  await expect(grid.getByRole('row', { name: /paged-0000/ })).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('queues-partial')).toHaveText('First 100 queues; listing the rest…');
  const lists = calls.filter((c) => c.op === 'queues/list' && c.input.connectionId === id);
  expect(lists).toHaveLength(1);
  expect(lists[0]!.input).toMatchObject({ page: 1, pageSize: 100 });
  expect((lists[0]!.answer as Array<{ name: string }>).map((q) => q.name)).toEqual(Array.from({ length: 100 }, (_, i) => `paged-${String(i).padStart(4, '0')}`));

  // Then the whole list.
  release();
  await expect(page.getByText(`${QUEUES.toLocaleString('en-US')} queues`, { exact: false })).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('queues-partial')).toHaveCount(0);
  await page.getByRole('textbox', { name: 'Filter by name' }).fill('paged-0999');
  await expect(grid.getByRole('row', { name: /paged-0999/ })).toBeVisible();
  await server.api('DELETE', `/api/connections/${id}`);
});
