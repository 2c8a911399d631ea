/**
 * Runs tests/kafka/kafka.mjs (start, stop, halt, resume…) through the shared
 * script runner, for vitest's broker hooks and the Playwright tests.
 */
import { join } from 'node:path';
import { runScript, whyUnavailable as why, type ScriptResult } from '../servers/control.js';

export { parseLines } from '../servers/control.js';

export const kafkaScript = join(import.meta.dirname, 'kafka.mjs');

export function runKafkaScript(args: string[], timeoutMs: number): Promise<ScriptResult> {
  return runScript(kafkaScript, args, timeoutMs);
}

/** Why the script could not start a broker, from its output. */
export function whyUnavailable(r: Pick<ScriptResult, 'code' | 'stdout' | 'stderr'>): string {
  return why(r, 'KAFKA_UNAVAILABLE');
}
