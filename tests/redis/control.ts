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
  /** TLS only, with a self-signed certificate for 127.0.0.1 (`caFile` in the answer). */
  tls?: boolean;
}

/** Starts a server (or a cluster) recorded in `stateFile`: its URL, or why there is none. */
export async function startRedis(stateFile: string, options: RedisStartOptions = {}): Promise<{ url: string; caFile?: string } | { reason: string }> {
  const args = [options.cluster ? 'start-cluster' : 'start', '--state', stateFile, ...(options.password ? ['--requirepass', options.password] : []), ...(options.tls ? ['--tls'] : [])];
  const r = await runScript(redisScript, args, 120_000);
  const lines = parseLines(r.stdout);
  const url = lines[options.cluster ? 'REDIS_CLUSTER_URL' : 'REDIS_URL'];
  if (r.code === 0 && url) return { url, ...(lines.REDIS_TLS_CA ? { caFile: lines.REDIS_TLS_CA } : {}) };
  return { reason: whyUnavailable(r, 'REDIS_UNAVAILABLE') };
}

export async function stopRedis(stateFile: string): Promise<void> {
  await runScript(redisScript, ['stop', '--state', stateFile], 60_000);
}
