import net from 'node:net';
import amqp from 'amqplib';
import { Kafka, logLevel } from 'kafkajs';
import { test, expect, startServer } from './fixtures';
import { screenshot, unique } from './helpers';

test('the AMQP listener: its URL and why it moved, the apps connected to it, and closing one', async ({ page, context }) => {
  // A port already taken, as 5672 is when RabbitMQ runs: the listener moves and says so.
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const taken = (blocker.address() as net.AddressInfo).port;
  const { server, stop } = await startServer(['--amqp-port', String(taken)]);
  let client: amqp.ChannelModel | null = null;
  try {
    const listeners = await server.api<Array<{ protocol: string; port: number }>>('GET', '/api/listeners');
    const port = listeners.find((l) => l.protocol === 'amqp')!.port;
    const url = `amqp://guest:guest@127.0.0.1:${port}`;
    const name = unique('billing');
    client = await amqp.connect(url, { clientProperties: { connection_name: name } });
    const closed = new Promise<Error | undefined>((resolve) => client!.on('close', resolve));
    client.on('error', () => undefined);
    const ch = await client.createConfirmChannel();
    await ch.prefetch(10);
    await ch.assertQueue(name, { durable: false });
    await ch.consume(name, () => undefined);

    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    await page.goto(`${server.url}/?token=${server.token}`);
    await page.getByRole('tab', { name: 'Listener' }).click();

    await expect(page.getByTestId('listener-url')).toHaveText(url);
    await expect(page.getByRole('status')).toContainText(`because port ${taken} was in use`);
    await page.getByRole('button', { name: 'Copy URL' }).click();
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe(url);

    const table = page.getByRole('table', { name: 'AMQP connections' });
    const row = table.getByRole('row').filter({ hasText: name });
    await expect(row).toContainText('amqplib');
    await expect(row).toContainText('guest');

    await row.getByRole('button', { name: `Channels of ${name}` }).click();
    const channels = page.getByRole('table', { name: `Channels of ${name}` });
    await expect(channels.getByRole('row').nth(1)).toContainText('confirm');
    await expect(channels.getByRole('row').nth(1)).toContainText(name);
    // Message rates per channel, as the console shows them, once two looks a second apart exist.
    await expect(channels.getByRole('columnheader', { name: 'Publish/s' })).toBeVisible();
    await expect(channels.getByRole('row').nth(1)).toContainText(/\d+\.\d/, { timeout: 15_000 });
    await screenshot(page, 'listener');

    await row.getByRole('button', { name: 'Close connection' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Close connection' }).click();
    const err = (await closed) as (Error & { code?: number }) | undefined;
    expect(err?.code).toBe(320);
    await expect(row).toHaveCount(0);
    await expect(table).toContainText('No apps connected');
  } finally {
    await client?.close().catch(() => undefined);
    await stop();
    await new Promise<void>((r) => blocker.close(() => r()));
  }
});

test('the AMQP listener’s users: add one, give it permissions on a vhost, and delete it, closing its connection', async ({ page }) => {
  const { server, stop } = await startServer(['--amqp-port', '0']);
  let client: amqp.ChannelModel | null = null;
  try {
    const port = (await server.api<Array<{ protocol: string; port: number }>>('GET', '/api/listeners')).find((l) => l.protocol === 'amqp')!.port;
    await page.goto(`${server.url}/?token=${server.token}`);
    await page.getByRole('tab', { name: 'Listener' }).click();
    const users = page.getByRole('table', { name: 'AMQP users' });
    await expect(users.locator('[data-user="guest"]')).toContainText('this machine only');

    const user = unique('orders-app');
    const add = page.getByRole('form', { name: 'Add user' });
    await add.getByRole('textbox', { name: 'User name' }).fill(user);
    await add.getByRole('textbox', { name: 'Password' }).fill('pw-of-orders');
    await add.getByRole('textbox', { name: 'Tags' }).fill('monitoring');
    await add.getByRole('button', { name: 'Add user or change password' }).click();
    const row = users.locator(`[data-user="${user}"]`);
    await expect(row).toContainText('no access to any vhost');
    await expect(row).toContainText('monitoring');
    await expect(add.getByRole('textbox', { name: 'Password' })).toHaveValue('');

    await row.getByRole('button', { name: `Set permissions of ${user}` }).click();
    const perms = page.getByRole('form', { name: 'Permissions' });
    await perms.getByRole('textbox', { name: 'Configure' }).fill('(');
    await perms.getByRole('button', { name: 'Save permissions' }).click();
    await expect(perms.getByRole('alert')).toContainText('configure is not a valid regular expression');
    await perms.getByRole('textbox', { name: 'Configure' }).fill('^orders\\.');
    await perms.getByRole('textbox', { name: 'Write' }).fill('^orders\\.');
    await perms.getByRole('button', { name: 'Save permissions' }).click();
    await expect(row).toContainText('^orders\\.');

    // The app logs in with what was set there, and is held to it.
    client = await amqp.connect(`amqp://${user}:pw-of-orders@127.0.0.1:${port}`);
    client.on('error', () => undefined);
    const closed = new Promise<Error | undefined>((resolve) => client!.on('close', resolve));
    const ch = await client.createChannel();
    ch.on('error', () => undefined);
    await ch.assertQueue('orders.placed', { durable: false });
    const other = await client.createChannel();
    other.on('error', () => undefined);
    await expect(other.assertQueue('billing.placed', { durable: false })).rejects.toThrow(/ACCESS-REFUSED/);
    await expect(row.locator('td').nth(3)).toHaveText('1');

    await row.getByRole('button', { name: `Delete user ${user}` }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete user' }).click();
    const err = (await closed) as (Error & { code?: number }) | undefined;
    expect(err?.code).toBe(320);
    expect(err?.message).toContain(`user '${user}' is deleted`);
    await expect(row).toHaveCount(0);
  } finally {
    await client?.close().catch(() => undefined);
    await stop();
  }
});

test('moving a listener from the Listener view: at once, refused on a taken port, the Kafka one beside it', async ({ page }) => {
  const { server, stop } = await startServer(['--amqp-port', '0', '--kafka-port', '0']);
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const taken = (blocker.address() as net.AddressInfo).port;
  try {
    await page.goto(`${server.url}/?token=${server.token}`);
    await page.getByRole('tab', { name: 'Listener' }).click();
    const kafka = (await server.api<Array<{ protocol: string; port: number }>>('GET', '/api/listeners')).find((l) => l.protocol === 'kafka')!.port;
    await expect(page.getByRole('form', { name: 'Kafka listener' })).toContainText(`bootstrap.servers=127.0.0.1:${kafka}`);
    // A Kafka client shows with the id it sent.
    const admin = new Kafka({ clientId: 'inventory-admin', brokers: [`127.0.0.1:${kafka}`], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.listTopics();
    await expect(page.getByRole('table', { name: 'Kafka clients' }).locator('[data-kafka-client="inventory-admin"]')).toContainText('127.0.0.1:');
    await admin.disconnect();

    const form = page.getByRole('form', { name: 'AMQP 0-9-1 listener' });
    await form.getByRole('textbox', { name: 'AMQP 0-9-1 port' }).fill(String(taken));
    await form.getByRole('button', { name: 'Apply' }).click();
    await expect(form.getByRole('alert')).toContainText(`port ${taken} is in use`);

    // A free port: found by listening on 0 and letting go.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const free = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await form.getByRole('textbox', { name: 'AMQP 0-9-1 port' }).fill(String(free));
    await form.getByRole('button', { name: 'Apply' }).click();
    await expect(page.getByTestId('listener-url')).toHaveText(`amqp://guest:guest@127.0.0.1:${free}`);
    const client = await amqp.connect(`amqp://guest:guest@127.0.0.1:${free}`);
    await client.close();
    const saved = (await server.api<Array<{ protocol: string; setting: { port: number } | null }>>('GET', '/api/listeners')).find((l) => l.protocol === 'amqp')!;
    expect(saved.setting).toEqual({ enabled: true, port: free });
  } finally {
    await stop();
    await new Promise<void>((r) => blocker.close(() => r()));
  }
});
