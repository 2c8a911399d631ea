/**
 * Runs the cluster scripts (rabbitmq-cluster.mjs, kafka-cluster.mjs) and reads
 * the `NAME=value` lines they print. Free of any test runner: the global
 * setup (in vitest's main process) and the tests (in its workers) share it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const rabbitmqClusterScript = join(import.meta.dirname, 'rabbitmq-cluster.mjs');
export const kafkaClusterScript = join(import.meta.dirname, 'kafka-cluster.mjs');

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

/** Why a script could not start its cluster, from its output. */
export function whyUnavailable(r: ScriptResult, marker: string): string {
  return r.lines[marker] ?? (r.stderr.trim().split('\n').slice(-6).join(' | ') || `exited with ${r.code}`);
}

export type RabbitClusterInfo =
  | { ok: true; stateFile: string; startSeconds: number; nodes: string[]; urls: string[]; managementUrls: string[] }
  | { ok: false; reason: string };

export type KafkaClusterInfo = { ok: true; stateFile: string; startSeconds: number; brokers: string[] } | { ok: false; reason: string };

declare module 'vitest' {
  export interface ProvidedContext {
    rabbitmqCluster: RabbitClusterInfo;
    kafkaCluster: KafkaClusterInfo;
    /** The short slice `npm test` runs (small counts, fewer faults), rather than the full `npm run test:cluster`. */
    clusterSlice: boolean;
  }
}
