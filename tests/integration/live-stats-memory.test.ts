/**
 * Hundreds of browser tabs (or a script) watching the live statistics of 5,000
 * queues must not take headless mode's memory with them: a sample is encoded and
 * compressed once for all, and a socket that is not reading is skipped until it
 * has written what it holds. The server runs in a child process so that its
 * memory is its own; half the watchers never read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';

const root = join(import.meta.dirname, '..', '..');
const built = existsSync(join(root, 'out', 'main', 'serve.js'));
const procfs = existsSync('/proc/self/status');

const QUEUES = 5_000;
const WATCHERS = 200;
/** The server's resident memory may grow by this much with every watcher connected (it was 400 MB at 60). */
const GROWTH_LIMIT = 150 * 1024 * 1024;
const token = 'mem-token';

let work: string;
let child: ChildProcess;
let url = '';

/** The server's resident memory, from outside the process. */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

beforeAll(async () => {
  if (!built || !procfs) return;
  work = mkdtempSync(join(tmpdir(), 'bd-mem-'));
  // The real command, as a person runs it (npm test builds first).
  child = spawn(process.execPath, [join(root, 'src-main/cli/brokerdeck.mjs'), 'serve', '--port', '0', '--data-dir', work, '--token', token], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`serve exited with ${code} before it printed its URL:\n${out}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+)\/\?token=/.exec(out);
      if (m) resolve(m[1]!);
    });
  });
  const declare = async (from: number) => {
    for (let i = from; i < QUEUES; i += 8) {
      const res = await fetch(`${url}/api/connections/local/queues/orders.service-${String(i).padStart(5, '0')}.events`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        // Transient: no commit to wait for per queue.
        body: '{"durable":false}',
      });
      if (res.status !== 200) throw new Error(`declaring queue ${i}: ${res.status} ${await res.text()}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, (_, k) => declare(k)));
}, 600_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('live statistics with many watchers', () => {
  it.skipIf(!built || !procfs)(`keeps the server's memory bounded with ${WATCHERS} watchers of ${QUEUES} queues, half of them not reading`, { timeout: 600_000 }, async () => {
    let before = 0;
    let peak = 0;
    let watch: ReturnType<typeof setInterval> | undefined;
    const wsUrl = url.replace('http', 'ws') + '/api/ws';
    const sockets: WebSocket[] = [];
    const received = new Array<number>(WATCHERS).fill(0);
    for (let i = 0; i < WATCHERS; i++) {
      const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${token}` } });
      sockets.push(ws);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      const reading = i % 2 === 0;
      if (!reading) {
        // A watcher that never reads: its TCP window fills and the server's writes to it back up.
        (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      }
      ws.on('message', (_d, isBinary) => {
        if (isBinary) received[i]!++;
      });
      ws.send(JSON.stringify({ t: 'sub', id: 1, stream: 'stats', params: { connectionId: 'local' } }));
      if (i === 0) {
        // The baseline: the server with one watcher that has its first sample.
        await expect.poll(() => received[0], { timeout: 60_000 }).toBeGreaterThan(0);
        before = peak = rssOf(child.pid!);
        watch = setInterval(() => (peak = Math.max(peak, rssOf(child.pid!))), 200);
      }
    }
    // Every reading watcher gets ten samples (ten seconds at least) while the others hold theirs.
    await expect
      .poll(() => Math.min(...received.filter((_, i) => i % 2 === 0)), { timeout: 480_000, interval: 500 })
      .toBeGreaterThanOrEqual(10);
    clearInterval(watch);
    const health = await fetch(`${url}/api/health`);
    expect(health.status).toBe(200);
    for (const ws of sockets) ws.terminate();
    expect(child.exitCode).toBeNull();
    console.log(`server memory: ${Math.round(before / 1048576)} MB before, ${Math.round(peak / 1048576)} MB at most with ${WATCHERS} watchers`);
    expect(peak - before).toBeLessThan(GROWTH_LIMIT);
  });
});
