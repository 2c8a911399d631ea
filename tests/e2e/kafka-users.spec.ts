import { Kafka, logLevel } from 'kafkajs';
import { test, expect, startServer } from './fixtures';
import { screenshot, unique } from './helpers';

test('the Kafka listener’s users: none means no SASL; add one, a client authenticates as it, delete it', async ({ page }) => {
  const { server, stop } = await startServer(['--amqp-port', '0', '--kafka-port', '0']);
  try {
    const port = (await server.api<Array<{ protocol: string; port: number }>>('GET', '/api/listeners')).find((l) => l.protocol === 'kafka')!.port;
    await page.goto(`${server.url}/?token=${server.token}`);
    await page.getByRole('tab', { name: 'Listener' }).click();
    const state = page.getByTestId('kafka-sasl-state');
    await expect(state).toHaveText(/No users: clients connect without SASL/);

    const user = unique('inventory');
    const add = page.getByRole('form', { name: 'Add Kafka user' });
    await add.getByRole('textbox', { name: 'User name' }).fill(user);
    await add.getByRole('textbox', { name: 'Password' }).fill('short');
    await add.getByRole('checkbox', { name: 'SCRAM-SHA-512' }).uncheck();
    await add.getByRole('button', { name: 'Add user or change password' }).click();
    await expect(add.getByRole('alert')).toContainText('password must be at least 8 characters');

    await add.getByRole('textbox', { name: 'Password' }).fill('inventory-secret');
    await add.getByRole('textbox', { name: 'Iterations' }).fill('8192');
    await add.getByRole('button', { name: 'Add user or change password' }).click();
    const users = page.getByRole('table', { name: 'Kafka users' });
    const row = users.locator(`[data-kafka-user="${user}"]`);
    await expect(row).toContainText('SCRAM-SHA-256 (8192 iterations)');
    await expect(row).not.toContainText('SCRAM-SHA-512');
    await expect(state).toContainText('Clients must authenticate');

    // A real client authenticates as the new user and shows under it.
    const admin = new Kafka({
      clientId: 'inventory-admin',
      brokers: [`127.0.0.1:${port}`],
      sasl: { mechanism: 'scram-sha-256', username: user, password: 'inventory-secret' },
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      await admin.listTopics();
      await expect(page.getByRole('table', { name: 'Kafka clients' }).locator('[data-kafka-client="inventory-admin"]')).toContainText(user);
      await expect(row.getByRole('cell').nth(2)).toHaveText('1');
      await screenshot(page, 'kafka-users');
    } finally {
      await admin.disconnect();
    }

    await row.getByRole('button', { name: `Delete Kafka user ${user}` }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete user' }).click();
    await expect(row).toHaveCount(0);
    await expect(state).toHaveText(/No users: clients connect without SASL/);
    expect((await server.api<{ users: unknown[] }>('GET', '/api/listeners/kafka/users')).users).toEqual([]);
  } finally {
    await stop();
  }
});
