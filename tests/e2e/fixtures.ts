/**
 * A worker-scoped Brokerdeck server in headless mode: own data folder, random
 * token, a free port; started from the built bundle and stopped at the end.
 * Tests seed data through the HTTP API, never through the UI.
 */
import { test as base, expect } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface Server {
  url: string;
  token: string;
  dataDir: string;
  /** Calls the HTTP API with the token; throws with the server's message on an error status. */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** Same, returning the raw response. */
  raw(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
}

const root = join(import.meta.dirname, '..', '..');
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);

/** `extraArgs`: more `brokerdeck serve` options (`--disk-free-limit …`). */
export async function startServer(extraArgs: string[] = []): Promise<{ server: Server; stop: () => Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'brokerdeck-e2e-'));
  const token = randomBytes(16).toString('hex');
  const child: ChildProcess = spawn(process.execPath, [join(root, 'src-main', 'cli', 'brokerdeck.mjs'), 'serve', '--port', '0', '--data-dir', dataDir, '--token', token, ...extraArgs], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 60 s:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+)\/\?token=/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
  });
  const send = (method: string, path: string, body: unknown, headers: Record<string, string>) =>
    fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  const raw = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    try {
      return await send(method, path, body, headers);
    } catch (error) {
      // A kept-alive connection the server closed as idle just as a request went out on it
      // ("other side closed"; likelier on a loaded machine, where the client notices the idle
      // timeout late): an idempotent request is sent again, as browsers do.
      if (!IDEMPOTENT.has(method)) throw error;
      return send(method, path, body, headers);
    }
  };
  const server: Server = {
    url,
    token,
    dataDir,
    raw,
    async api<T>(method: string, path: string, body?: unknown) {
      const res = await raw(method, path, body);
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text}`);
      return (text ? JSON.parse(text) : null) as T;
    },
  };
  return {
    server,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const test = base.extend<{ signedIn: void }, { server: Server }>({
  server: [
    async ({}, use) => {
      const { server, stop } = await startServer();
      await use(server);
      await stop();
    },
    { scope: 'worker' },
  ],
  /** Opens the printed URL with the token, as a user would; the cookie is set from then on. */
  signedIn: async ({ page, server }, use) => {
    await page.goto(`${server.url}/?token=${server.token}`);
    await use();
  },
});

export { expect };
