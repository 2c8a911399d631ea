import { test, expect } from './fixtures';
import { declareQueue, publish, screenshot, unique } from './helpers';

test('the lag view charts a queue and updates while messages flow', async ({ page, server, signedIn: _ }) => {
  const q = unique('flow');
  await declareQueue(server, q);
  await publish(server, q, 'seed', 10);
  await page.getByRole('tab', { name: 'Lag' }).click();
  await page.getByRole('combobox', { name: 'Queue or consumer group' }).fill(q);
  await page.getByRole('combobox', { name: 'Queue or consumer group' }).press('Enter');

  const backlog = page.getByRole('img', { name: /^Backlog chart/ });
  await expect(backlog).toBeVisible();
  await expect(page.getByTestId('ready')).toHaveText('10');
  const pointsBefore = Number(await backlog.getAttribute('data-points'));

  // Messages flow in for a few seconds; the chart gains live points and the figures follow.
  let sent = 10;
  const flow = (async () => {
    for (let i = 0; i < 12; i++) {
      await publish(server, q, 'tick {{i}}', 50);
      sent += 50;
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  await expect.poll(async () => Number(await backlog.getAttribute('data-points')), { timeout: 20_000 }).toBeGreaterThanOrEqual(pointsBefore + 3);
  await flow;
  await expect(page.getByTestId('ready')).toHaveText(sent.toLocaleString('en-US'));
  await expect(page.getByText(/Growing by|Steady|Draining/)).toBeVisible();
  // A live rate was drawn: the rates chart has points too.
  await expect.poll(async () => Number(await page.getByRole('img', { name: /^Rates chart/ }).getAttribute('data-points'))).toBeGreaterThan(0);

  // Consumption drains the backlog while the page is watched; the trend and time to drain say so.
  let draining = true;
  const drain = (async () => {
    while (draining) {
      const got = await server.api<unknown[]>('POST', `/api/connections/local/queues/${q}/get`, { count: 25, ackMode: 'ack' });
      if (got.length === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  try {
    await expect(page.getByText(/Draining at/)).toBeVisible({ timeout: 60_000 });
  } finally {
    draining = false;
    await drain;
  }
  await screenshot(page, 'lag');
});

test('colour thresholds are the user’s to set', async ({ page, server, signedIn: _ }) => {
  const q = unique('thr');
  await declareQueue(server, q);
  await publish(server, q, 'x', 30);
  await page.getByRole('tab', { name: 'Lag' }).click();
  await page.getByRole('combobox', { name: 'Queue or consumer group' }).fill(q);
  await page.getByRole('combobox', { name: 'Queue or consumer group' }).press('Enter');
  await expect(page.getByTestId('ready')).toHaveText('30');
  await page.getByText('Colour thresholds').click();
  const warn = page.getByRole('textbox', { name: 'Ready warning threshold' });
  await warn.fill('20');
  await warn.press('Tab');
  await expect(page.getByTestId('ready')).toHaveClass(/warn/);
  await page.getByRole('textbox', { name: 'Ready critical threshold' }).fill('25');
  await page.getByRole('textbox', { name: 'Ready critical threshold' }).press('Tab');
  await expect(page.getByTestId('ready')).toHaveClass(/critical/);
});
