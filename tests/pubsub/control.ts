/**
 * Runs tests/pubsub/pubsub.mjs (start, stop, status) through the shared script
 * runner, free of any test runner: vitest's hooks (servers.ts), the benchmarks and
 * the Playwright tests use it.
 */
import { join } from 'node:path';
import { runScript, whyUnavailable, type ScriptResult } from '../servers/control.js';

export const pubsubScript = join(import.meta.dirname, 'pubsub.mjs');

export function runPubsubScript(args: string[], timeoutMs: number): Promise<ScriptResult> {
  return runScript(pubsubScript, args, timeoutMs);
}

/** Starts an emulator recorded in `stateFile`: its host, or why none could start. */
export async function startPubsubEmulator(stateFile: string): Promise<{ host: string } | { reason: string }> {
  const r = await runPubsubScript(['start', '--state', stateFile], 180_000);
  const host = r.lines.PUBSUB_EMULATOR_HOST;
  if (r.code === 0 && host) return { host };
  await runPubsubScript(['stop', '--state', stateFile], 30_000);
  return { reason: whyUnavailable(r, 'PUBSUB_UNAVAILABLE') };
}

export async function stopPubsubEmulator(stateFile: string): Promise<void> {
  await runPubsubScript(['stop', '--state', stateFile], 30_000);
}
