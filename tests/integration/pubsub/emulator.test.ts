/**
 * The emulator script itself: it starts the emulator on 127.0.0.1 with a state
 * file of its own, and `stop` leaves no process of the emulator's group behind
 * (the launcher execs a JVM; every process of the group is checked, not only the
 * recorded one), and removes its working folder.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runPubsubScript, startPubsubEmulator } from '../../pubsub/control.js';

/** The pids whose process group is `pgid` (from /proc). */
function group(pgid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid pgrp …: comm may hold spaces, so read after its closing parenthesis.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

function listening(host: string): Promise<boolean> {
  const at = host.lastIndexOf(':');
  return new Promise((resolve) => {
    const s = connect({ host: host.slice(0, at), port: Number(host.slice(at + 1)) });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

it('starts the emulator on loopback and stops its whole process group', async (ctx) => {
  if (!existsSync('/proc/self/stat')) ctx.skip('no /proc here to see the process group');
  const stateFile = join(tmpdir(), 'brokerdeck-pubsub', `script-test-${process.pid}-${Date.now()}.json`);
  const started = await startPubsubEmulator(stateFile);
  if ('reason' in started) ctx.skip(`no Pub/Sub emulator: ${started.reason}`);
  const { host } = started as { host: string };
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { pid: number; dataDir: string };
  try {
    expect(host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await listening(host)).toBe(true);
    expect(group(state.pid)).toContain(state.pid);
    const status = await runPubsubScript(['status', '--state', stateFile], 30_000);
    expect(status.lines.PUBSUB_EMULATOR_HOST).toBe(host);
  } finally {
    const r = await runPubsubScript(['stop', '--state', stateFile], 60_000);
    expect(r.code).toBe(0);
  }
  expect(group(state.pid)).toEqual([]);
  expect(await listening(host)).toBe(false);
  expect(existsSync(state.dataDir)).toBe(false);
  expect(existsSync(stateFile)).toBe(false);
});
