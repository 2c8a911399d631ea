/**
 * What the Redis tests share: a core with a Redis connection made through its
 * API, a plain ioredis client to set up and check what Redis holds, and unique
 * key names so tests never meet each other's keys.
 */
import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { startCore, type Core } from '../../../src-main/core/core.js';
import type { RedriveJob } from '../../../src-main/contract/types.js';
import { FINAL_JOB_STATES } from '../../../src-main/contract/types.js';

export function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export interface RedisCore {
  core: Core;
  connectionId: string;
  close(): Promise<void>;
}

/** A core (in memory) with one Redis connection of `url` and the given settings. */
export async function redisCore(url: string, settings: Record<string, unknown> = {}): Promise<RedisCore> {
  const core = await startCore({ dataDir: null, version: '0.0.0-test' });
  const { id } = await core.call('connections/create', { kind: 'redis', name: 'test redis', url, ...settings });
  return { core, connectionId: id, close: () => core.close() };
}

export function rawClient(url: string, cluster = false): Redis | Cluster {
  if (cluster) {
    const u = new URL(url);
    return new Cluster([{ host: u.hostname, port: Number(u.port) }]);
  }
  return new Redis(url);
}

/** Waits for a re-drive to end (polled through the core, as the UI's fallback does). */
export async function settled(core: Core, id: string, timeoutMs = 60_000): Promise<RedriveJob> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await core.call('redrives/get', { id });
    if (FINAL_JOB_STATES.includes(job.state)) return job;
    if (Date.now() > deadline) throw new Error(`re-drive ${id} did not end: ${JSON.stringify(job)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
