/**
 * Runs tests/redis/redis.mjs (start, start-cluster, stop) through the shared
 * script runner, for vitest's hooks (servers.ts), the Playwright tests and the
 * benchmark.
 */
import { join } from 'node:path';
import { parseLines, runScript, whyUnavailable } from '../servers/control.js';

export const redisScript = join(import.meta.dirname, 'redis.mjs');

export interface RedisStartOptions {
  cluster?: boolean;
  password?: string;
}

/** Starts a server (or a cluster) recorded in `stateFile`: its URL, or why there is none. */
export async function startRedis(stateFile: string, options: RedisStartOptions = {}): Promise<{ url: string } | { reason: string }> {
  const args = [options.cluster ? 'start-cluster' : 'start', '--state', stateFile, ...(options.password ? ['--requirepass', options.password] : [])];
  const r = await runScript(redisScript, args, 120_000);
  const url = parseLines(r.stdout)[options.cluster ? 'REDIS_CLUSTER_URL' : 'REDIS_URL'];
  if (r.code === 0 && url) return { url };
  return { reason: whyUnavailable(r, 'REDIS_UNAVAILABLE') };
}

export async function stopRedis(stateFile: string): Promise<void> {
  await runScript(redisScript, ['stop', '--state', stateFile], 60_000);
}
