import { defineConfig } from '@playwright/test';

/**
 * End-to-end tests drive the real UI in Debian's Chromium against headless
 * mode (each worker starts its own server with its own data folder). Browsers
 * are never downloaded: CHROMIUM_PATH or /usr/bin/chromium is used.
 */
export default defineConfig({
  testDir: './e2e',
  outputDir: '../test-results/e2e',
  // Generous bounds, not expectations: a test waits for a condition, and a machine
  // under load may take three times as long (heavy steps set their own, longer waits).
  timeout: 180_000,
  expect: { timeout: 30_000 },
  fullyParallel: false,
  workers: 1,
  reporter: process.env.CI ? [['list'], ['html', { open: 'never', outputFolder: '../test-results/e2e-report' }]] : 'list',
  use: {
    browserName: 'chromium',
    viewport: { width: 1440, height: 900 },
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
    },
  },
});
