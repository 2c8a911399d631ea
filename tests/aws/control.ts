/**
 * Runs tests/aws/aws.mjs (start, stop, status) through the shared script
 * runner, for vitest's hooks (servers.ts) and the Playwright tests.
 */
import { join } from 'node:path';
import { runScript, type ScriptResult } from '../servers/control.js';

export { parseLines } from '../servers/control.js';

export const awsScript = join(import.meta.dirname, 'aws.mjs');

export function runAwsScript(args: string[], timeoutMs: number): Promise<ScriptResult> {
  return runScript(awsScript, args, timeoutMs);
}
