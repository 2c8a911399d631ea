/**
 * Crash safety: a child process publishes with confirms (and acks, and
 * re-drives) and is killed with SIGKILL at random moments. After every
 * restart each confirmed message must be present exactly once, and a
 * re-drive killed mid-way leaves every message in exactly one place.
 *
 * The child is fixtures/engine-crash-child.ts, run as fixtures/child-process.ts says.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src-main/broker/index.js';
import { bundleFixture, childEnv } from './fixtures/child-process.js';

let work: string;
let child: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'bd-crash-'));
  child = await bundleFixture('engine-crash-child', work);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

interface RunResult {
  lines: string[];
}

/** Runs the child until `killWhen` says so, then SIGKILLs it. */
function runChild(args: string[], killAfterMs: (line: string, elapsed: number) => number | null): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const p = spawn(process.execPath, [child, ...args], {
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let buf = '';
    let stderr = '';
    let timer: NodeJS.Timeout | null = null;
    const started = Date.now();
    p.stdout.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (!timer) {
          const ms = killAfterMs(line, Date.now() - started);
          if (ms !== null) timer = setTimeout(() => p.kill('SIGKILL'), ms);
        }
      }
    });
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // Only against a child that never says what the test waits for.
    const guard = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (timer) clearTimeout(timer);
      // Lines still in the pipe were written before the kill: count them.
      if (buf.length) lines.push(...buf.split('\n').filter(Boolean));
      if (signal !== 'SIGKILL') reject(new Error(`child exited on its own (code ${code}): ${stderr}`));
      else resolveRun({ lines });
    });
  });
}

function allMessages(e: Engine, queue: string): string[] {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page = e.browse(queue, { limit: 5000, includeUnacked: true, ...(cursor ? { cursor } : {}) });
    out.push(...page.messages.map((m) => m.body.toString()));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return out;
}

describe('engine crash safety (SIGKILL)', () => {
  it('every confirmed publish survives exactly once across 20 random kills', async () => {
    const dir = join(work, 'publish');
    // Each run is killed at a random moment after a random number (100 to 500) of
    // confirms: progress, not time, decides when, so a slow machine kills as late in the work.
    const killAfterConfirms = () => {
      const at = 100 + Math.floor(Math.random() * 400);
      let seen = 0;
      return (line: string) => (line.startsWith('C ') && ++seen === at ? Math.floor(Math.random() * 20) : null);
    };
    const confirmed = new Set<string>();
    const acked = new Set<string>();
    let totalConfirmed = 0;
    for (let run = 0; run < 20; run++) {
      const { lines } = await runChild(['publish', dir, String(run)], killAfterConfirms());
      for (const l of lines) {
        if (l.startsWith('C ')) confirmed.add(l.slice(2));
        else if (l.startsWith('A ')) acked.add(l.slice(2));
      }
      totalConfirmed = confirmed.size;
      const e = Engine.open({ dataDir: dir, timers: false });
      const present = allMessages(e, 'crash');
      const counts = new Map<string, number>();
      for (const id of present) counts.set(id, (counts.get(id) ?? 0) + 1);
      const dupes = [...counts].filter(([, n]) => n > 1);
      expect(dupes).toEqual([]);
      const missing = [...confirmed].filter((id) => !acked.has(id) && !counts.has(id));
      expect(missing).toEqual([]);
      // Counters committed with the rows match the rows.
      expect(e.getQueue('crash').messages).toBe(present.length);
      e.close();
    }
    expect(totalConfirmed).toBeGreaterThan(1000);
  }, 600_000);

  it('a re-drive killed mid-way leaves every message in exactly one place, and resumes', async () => {
    const dir = join(work, 'redrive');
    const n = 3000;
    const expected = Array.from({ length: n }, (_, i) => `m-${i + 1}`).sort();
    const movedAtKill: number[] = [];
    for (let run = 0; run < 4; run++) {
      await runChild(['redrive', dir, String(n)], (line) => (line === 'READY' ? 60 + Math.floor(Math.random() * 150) : null));
      const e = Engine.open({ dataDir: dir, timers: false });
      // Checked right after open, before the resumed job moves anything.
      const work = allMessages(e, 'work');
      const dlq = allMessages(e, 'dlq');
      expect([...work, ...dlq].sort()).toEqual(expected);
      const job = e.listRedrives()[0]!;
      expect(job.moved).toBe(work.length);
      movedAtKill.push(job.moved);
      e.close();
    }
    // The kills landed while messages were moving, not only before or after.
    expect(movedAtKill.some((m) => m > 0 && m < n)).toBe(true);
    const e = Engine.open({ dataDir: dir, timers: false });
    const id = e.listRedrives()[0]!.id;
    const until = Date.now() + 120_000;
    while (e.getRedrive(id).state === 'running' && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
    expect(e.getRedrive(id)).toMatchObject({ state: 'completed', moved: n, failed: 0 });
    expect(allMessages(e, 'work').sort()).toEqual(expected);
    expect(allMessages(e, 'dlq')).toEqual([]);
    e.close();
  }, 300_000);
});
