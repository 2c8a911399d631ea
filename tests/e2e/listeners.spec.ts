import net from 'node:net';
import amqp from 'amqplib';
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
