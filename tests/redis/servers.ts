/**
 * The Redis servers of the integration and end-to-end tests.
 * `useRedisServer()` registers hooks: with REDIS_URL set (REDIS_CLUSTER_URL for
 * `{ cluster: true }`) it uses that server as is; otherwise `beforeAll` starts one
 * with tests/redis/redis.mjs (its own state file and folder, never the Redis that
 * may run on 6379) and `afterAll` stops it. `{ password }` starts one with
 * `--requirepass`, `{ tls }` one that speaks TLS only (neither is taken from REDIS_URL).
 *
 * When redis-server cannot be had, `require(ctx)` skips the test with the reason;
 * REDIS_REQUIRED=1 turns that into a failure.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { stopSync } from '../servers/control.js';
import { redisScript, startRedis, stopRedis, type RedisStartOptions } from './control.js';

export { redisScript, startRedis, stopRedis };

export interface RedisTestServer {
  /** `redis://127.0.0.1:<port>` (the password, when one is required, is not in it). */
  url: string;
  /** Started here, not given by REDIS_URL. */
  local: boolean;
  /** A TLS server's certificate (its own CA), PEM. */
  ca?: string;
}

export interface RedisServerHandle {
  require(ctx: { skip: (note?: string) => never }): RedisTestServer;
  readonly server: RedisTestServer | null;
}

export type RedisServerOptions = RedisStartOptions;

export function useRedisServer(options: RedisServerOptions = {}): RedisServerHandle {
  const state: { server: RedisTestServer | null; reason: string | null } = { server: null, reason: null };
  const stateFile = join(tmpdir(), 'brokerdeck-redis', `test-${options.cluster ? 'cluster' : 'server'}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.json`);
  let started = false;
  const stop = () => {
    if (started) stopSync(redisScript, stateFile);
    started = false;
  };

  beforeAll(async () => {
    const given = options.password || options.tls ? undefined : process.env[options.cluster ? 'REDIS_CLUSTER_URL' : 'REDIS_URL'];
    if (given) {
      state.server = { url: given, local: false };
      return;
    }
    const r = await startRedis(stateFile, options);
    if ('reason' in r) {
      state.reason = `no Redis ${options.cluster ? 'cluster' : 'server'}: ${r.reason}`;
      console.warn(`[redis] ${state.reason}`);
      if (process.env.REDIS_REQUIRED === '1') throw new Error(state.reason);
      return;
    }
    started = true;
    // A test run that dies must not leave a server behind.
    process.once('exit', stop);
    state.server = { url: r.url, local: true, ...(r.caFile ? { ca: readFileSync(r.caFile, 'utf8') } : {}) };
  }, 180_000);

  afterAll(async () => {
    if (started) {
      await stopRedis(stateFile);
      started = false;
      process.removeListener('exit', stop);
    }
  }, 60_000);

  return {
    require(ctx) {
      if (!state.server) ctx.skip(state.reason ?? 'no Redis server');
      return state.server!;
    },
    get server() {
      return state.server;
    },
  };
}
