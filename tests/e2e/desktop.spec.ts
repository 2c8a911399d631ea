/**
 * The desktop window through Playwright's Electron driver. It needs Electron's
 * binary; where the binary is not installed (a machine that cannot reach
 * Electron's download host) the test is reported as skipped with that reason.
 */
import { test, expect, _electron as electron } from '@playwright/test';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const require = createRequire(join(root, 'package.json'));

function electronBinary(): string | null {
  try {
    const path = require('electron') as unknown;
    return typeof path === 'string' && existsSync(path) ? path : null;
  } catch {
    return null;
  }
}

const binary = electronBinary();

test.describe('desktop app', () => {
  test.skip(binary === null, "Electron's binary is not installed here (its download was skipped with ELECTRON_SKIP_BINARY_DOWNLOAD=1, or failed and npm left the optional package out)");

  test('opens a hardened window that reaches the core through the preload bridge', async () => {
    const userData = mkdtempSync(join(tmpdir(), 'brokerdeck-desktop-'));
    const app = await electron.launch({
      executablePath: binary!,
      args: [root, `--user-data-dir=${userData}`, '--no-sandbox'],
      env: { ...process.env, BROKERDECK_SQLITE_BINDING: join(root, 'out', 'native', 'electron', 'better_sqlite3.node') },
    });
    try {
      const window = await app.firstWindow();
      await expect(window.getByRole('navigation', { name: 'Connections' })).toBeVisible();
      const prefs = await app.evaluate(({ BrowserWindow }) => {
        const contents = BrowserWindow.getAllWindows()[0]!.webContents as unknown as {
          getLastWebPreferences(): { contextIsolation?: boolean; sandbox?: boolean; nodeIntegration?: boolean } | null;
        };
        const wp = contents.getLastWebPreferences();
        return { contextIsolation: wp?.contextIsolation, sandbox: wp?.sandbox, nodeIntegration: wp?.nodeIntegration };
      });
      expect(prefs).toEqual({ contextIsolation: true, sandbox: true, nodeIntegration: false });
      expect(await window.evaluate(() => typeof (globalThis as { require?: unknown }).require)).toBe('undefined');
      expect(await window.evaluate(() => Object.isFrozen((window as unknown as { brokerdeck: object }).brokerdeck))).toBe(true);
      await window.screenshot({ path: 'test-results/screenshots/desktop.png' });
    } finally {
      await app.close();
      rmSync(userData, { recursive: true, force: true });
    }
  });
});
