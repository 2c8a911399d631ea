/**
 * Runs the server scripts (kafka/kafka.mjs, cluster/*-cluster.mjs) and reads the
 * `NAME=value` lines they print. Free of any test runner: vitest's global setups,
 * its workers and the Playwright tests all use it.
 */
import { spawn, spawnSync } from 'node:child_process';

export interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
  lines: Record<string, string>;
}

/** The `NAME=value` lines of a script's output. */
export function parseLines(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

export function runScript(script: string, args: string[], timeoutMs: number): Promise<ScriptResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, lines: parseLines(stdout) });
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: stderr + String(error), lines: {} });
    });
  });
}

/** Runs a script and throws with its output when it fails. */
export async function mustRun(script: string, args: string[], timeoutMs: number): Promise<ScriptResult> {
  const r = await runScript(script, args, timeoutMs);
  if (r.code !== 0) throw new Error(`${script.split('/').pop()} ${args.join(' ')} exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-10).join('\n')}`);
  return r;
}

/** Synchronous stop, for a process that is exiting. */
export function stopSync(script: string, stateFile: string): void {
  spawnSync(process.execPath, [script, 'stop', '--state', stateFile], { stdio: 'ignore', timeout: 60_000 });
}

/** Why a script could not start its server, from its output: its `<marker>=` line, else the end of its stderr. */
export function whyUnavailable(r: Pick<ScriptResult, 'code' | 'stdout' | 'stderr'>, marker: string): string {
  return parseLines(r.stdout)[marker] ?? (r.stderr.trim().split('\n').slice(-6).join(' | ') || `exited with ${r.code}`);
}
