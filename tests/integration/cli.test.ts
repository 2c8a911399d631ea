/**
 * The `brokerdeck` command as a user runs it: `serve` from the built bundle
 * (npm test builds first), and `desktop` on a machine without Electron's binary.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const cli = join(root, 'src-main', 'cli', 'brokerdeck.mjs');
const built = existsSync(join(root, 'out', 'main', 'serve.js'));

function electronInstalled(): boolean {
  try {
    const p = createRequire(join(root, 'package.json'))('electron') as unknown;
    return typeof p === 'string' && existsSync(p);
  } catch {
    return false;
  }
}

describe('brokerdeck serve', () => {
  // How soon it answers is the benchmark's business; here it waits for the printed URL
  // (a loaded machine may take many seconds), then checks what the server answers.
  it.skipIf(!built)('prints its URL, answers health, refuses the API without the token, serves the UI, and stops cleanly on SIGTERM', { timeout: 180_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'bd-cli-'));
    const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--data-dir', dataDir, '--token', 't'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL printed within 120 s:\n${out}`)), 120_000);
        const check = () => {
          const m = /(http:\/\/127\.0\.0\.1:\d+)\/\?token=t\b/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        };
        child.stdout.on('data', check);
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`serve exited with ${code} before printing its URL:\n${out}`));
        });
      });
      const health = await fetch(`${url}/api/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok' });
      expect((await fetch(`${url}/api/connections`)).status).toBe(401);
      const page = await fetch(`${url}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(await page.text()).toContain('<div id="app">');

      const exit = new Promise<number | null>((r) => child.once('exit', r));
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
      expect(out).toContain('the store is flushed');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it.skipIf(!built)('refuses a bad option with a message naming it', () => {
    const r = spawnSync(process.execPath, [cli, 'serve', '--port', 'abc'], { encoding: 'utf8', env: { ...process.env } });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--port: expected an integer from 0 to 65535, got "abc"');
  });
});

describe('brokerdeck desktop', () => {
  it.skipIf(electronInstalled())('exits with one clear line naming `npm run serve` where Electron is not installed', () => {
    const r = spawnSync(process.execPath, [cli, 'desktop'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('the desktop window is unavailable on this machine');
    expect(lines[0]).toContain('npm run serve');
  });
});
