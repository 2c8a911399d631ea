/**
 * The broker host reopens the embedded broker after a store failure: a child
 * process (fixtures/broker-host-child.ts) runs the host on a data folder whose
 * files may not grow past 2 MiB (`ulimit -f`, SIGXFSZ ignored, so writes fail
 * as on a full disk) and publishes until the limit refuses one. The host must
 * say so ('failed'), refuse calls with the cause while it is down, open a new
 * engine from what was committed, announce it ('reopened') and serve from it:
 * every confirmed message is there.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleFixture, childEnv } from './fixtures/child-process.js';

const LIMIT_KIB = 2048;
let work: string;
let child: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'bd-host-'));
  child = await bundleFixture('broker-host-child', work);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

function runLimited(dataDir: string): Promise<{ lines: string[]; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const script = `trap '' XFSZ; ulimit -f ${LIMIT_KIB}; exec "${process.execPath}" "${child}" "${dataDir}"`;
    const p = spawn('bash', ['-c', script], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const guard = setTimeout(() => p.kill('SIGKILL'), 240_000);
    p.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (code !== 0) reject(new Error(`child ended with ${code ?? signal}:\n${stderr}`));
      else resolveRun({ lines: stdout.split('\n').filter(Boolean), stderr });
    });
  });
}

describe('the broker host', () => {
  it('reopens the engine after a store failure, announces it, and serves what was committed from the new one', async () => {
    const { lines, stderr } = await runLimited(join(work, 'data'));
    const report = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(report.confirmed).toBeGreaterThan(0);
    expect(report.refusal).toMatch(/^UNAVAILABLE the embedded broker could not write its data \(SQLITE_(IOERR|FULL)\w*: .+\)/);
    expect(report.failure).toBe((report.refusal as string).slice('UNAVAILABLE '.length));
    expect(report.whileDown).toBe(report.failure);
    expect(report.storeErrorWhileDown).toBe(report.failure);
    expect(report).toMatchObject({ replaced: true, firstClosed: true, current: true, storeErrorAfter: null, count: report.confirmed });
    expect(lines[1]).toBe('CLOSED true true');
    expect(stderr).toMatch(/embedded broker reopened/);
  }, 300_000);
});
