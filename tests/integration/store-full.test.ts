/**
 * A full disk: the embedded broker runs in a child process whose files may
 * not grow past 2 MiB (`ulimit -f`, with SIGXFSZ ignored so writes fail with
 * EFBIG as they would with ENOSPC). Publishing 600 messages of 2 KiB there
 * runs into the limit again and again: while the child publishes, this process
 * holds a read snapshot of its database (as a long browse would), so the write-
 * ahead log cannot be checkpointed and reset under the writes and grows until
 * the limit stops it, however fast or slow the machine is; each refusal lets
 * the snapshot go, so the connection can reopen and go on, and the next
 * confirmed publish takes a new one. Every publish must be either confirmed
 * and stored, or refused with UNAVAILABLE and its cause and stored nowhere;
 * the connection reopens from what was saved (transient messages included:
 * the process goes on) and goes on; and the count it then shows is what is
 * on disk.
 *
 * The child is fixtures/store-full-child.ts, run as fixtures/child-process.ts says.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Engine } from '../../src-main/broker/index.js';
import { bundleFixture, childEnv } from './fixtures/child-process.js';

const LIMIT_KIB = 2048;
let work: string;
let child: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'bd-full-'));
  child = await bundleFixture('store-full-child', work);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

function runLimited(dataDir: string, count: number): Promise<{ lines: string[]; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const script = `trap '' XFSZ; ulimit -f ${LIMIT_KIB}; exec "${process.execPath}" "${child}" "${dataDir}" ${count}`;
    const p = spawn('bash', ['-c', script], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let partial = '';
    let stderr = '';
    // The snapshot that keeps the child's log from being reset: taken at a confirm, let go at a refusal.
    let snapshot: Database.Database | null = null;
    const hold = () => {
      if (snapshot) return;
      snapshot = new Database(join(dataDir, 'brokerdeck.db'), { readonly: true, fileMustExist: true });
      snapshot.exec('BEGIN');
      snapshot.prepare('SELECT count(*) FROM sqlite_master').get();
    };
    const release = () => {
      snapshot?.exec('COMMIT');
      snapshot?.close();
      snapshot = null;
    };
    p.stdout.on('data', (c: Buffer) => {
      partial += c.toString();
      const complete = partial.split('\n');
      partial = complete.pop()!;
      for (const line of complete.filter(Boolean)) {
        lines.push(line);
        if (line.startsWith('C ')) hold();
        else if (line.startsWith('F ')) release();
      }
    });
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const guard = setTimeout(() => p.kill('SIGKILL'), 240_000);
    p.on('exit', (code, signal) => {
      clearTimeout(guard);
      release();
      if (partial) lines.push(partial);
      if (code !== 0) reject(new Error(`child ended with ${code ?? signal}:\n${stderr}`));
      else resolveRun({ lines, stderr });
    });
  });
}

describe('a full disk under the embedded broker', () => {
  it('confirms only what it stored, refuses the rest with the cause, reopens and goes on', async () => {
    const dataDir = join(work, 'data');
    const { lines, stderr } = await runLimited(dataDir, 600);
    const confirmed = lines.filter((l) => l.startsWith('C ')).map((l) => Number(l.slice(2)));
    const refused = lines.filter((l) => l.startsWith('F '));
    // The limit did bite, more than once, and publishing resumed after it.
    expect(refused.length).toBeGreaterThan(10);
    const firstRefused = Number(refused[0]!.split(' ')[1]);
    expect(confirmed.filter((i) => i > firstRefused).length).toBeGreaterThan(10);
    expect(stderr).toMatch(/embedded broker reopened/);
    // Each refusal says what happened, and the connection shows it while it lasts.
    for (const line of refused) expect(line).toMatch(/^F \d+ UNAVAILABLE the embedded broker could not write its data \(SQLITE_(IOERR|FULL)\w*: .+\)/);
    const statuses = lines.filter((l) => l.startsWith('S '));
    expect(statuses.some((l) => l.startsWith('S error the embedded broker could not write its data'))).toBe(true);
    // Once back, the connection counts exactly the confirmed messages...
    expect(lines.find((l) => l.startsWith('COUNT '))).toBe(`COUNT ${confirmed.length}`);

    // ...and so does the data on disk, message by message, without the limit: all of them
    // when reopened as after a failure, the persistent ones after a restart.
    const stored = (keepTransient: boolean) => {
      const e = Engine.open({ dataDir, timers: false, keepTransient });
      try {
        const found: number[] = [];
        let cursor: string | undefined;
        do {
          const page = e.browse('full', { limit: 500, includeUnacked: true, ...(cursor ? { cursor } : {}) });
          found.push(...page.messages.map((m) => (JSON.parse(m.body.toString()) as { i: number }).i));
          cursor = page.nextCursor ?? undefined;
        } while (cursor);
        expect(e.getQueue('full').messages).toBe(found.length);
        return found;
      } finally {
        e.close();
      }
    };
    expect(stored(true)).toEqual(confirmed);
    expect(stored(false)).toEqual(confirmed.filter((i) => i % 2 === 0));
  }, 300_000);
});
