import { test, expect } from './fixtures';

test('opens the UI with the token and the API refuses requests without it', async ({ page, server, signedIn: _ }) => {
  await expect(page).toHaveURL(`${server.url}/`);
  await expect(page.getByRole('navigation', { name: 'Connections' })).toBeVisible();
  await expect(page.getByRole('navigation', { name: 'Connections' }).getByText('Embedded broker')).toBeVisible();

  const health = await fetch(`${server.url}/api/health`);
  expect(health.status).toBe(200);
  expect(await health.json()).toMatchObject({ status: 'ok' });

  const refused = await fetch(`${server.url}/api/connections`);
  expect(refused.status).toBe(401);
  expect(await refused.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });

  const wrongToken = await fetch(`${server.url}/api/connections`, { headers: { authorization: 'Bearer nope' } });
  expect(wrongToken.status).toBe(401);

  // The page itself got in through the cookie the token URL set.
  const fromPage = await page.evaluate(async () => (await fetch('/api/connections')).status);
  expect(fromPage).toBe(200);
  // The cookie outlives the page: a reload needs no token.
  await page.reload();
  await expect(page.getByRole('navigation', { name: 'Connections' }).getByText('Embedded broker')).toBeVisible();
  await expect(page).toHaveURL(`${server.url}/`);

  await page.screenshot({ path: 'test-results/screenshots/foundation.png', fullPage: true });
});
