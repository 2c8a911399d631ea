/**
 * The Redis connection kind: a factory the core registers under `redis`,
 * creating a connector per saved connection and answering "Test connection"
 * (reach the server, log in, select the database, and see that the user may
 * read keys), each failure told apart.
 */
import type { RedisConnectionConfig } from '../../contract/operations.js';
import type { ConnectionTestResult } from '../../contract/types.js';
import type { ConnectorFactory } from '../deps.js';
import { classify, createClient, keyNodes, targetOf, type RedisClient } from './client.js';
import { RedisConnector } from './connector.js';

function infoField(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

export async function testRedisConnection(config: RedisConnectionConfig, timeoutMs = 10_000): Promise<ConnectionTestResult> {
  const target = targetOf(config);
  let client: RedisClient;
  try {
    client = createClient(config, { retry: false, connectTimeoutMs: Math.min(timeoutMs, 5_000), maxRetriesPerRequest: 0, name: 'brokerdeck-test' });
  } catch (error) {
    return { ok: false, problem: 'config_error', message: (error as Error).message };
  }
  let lastError: unknown = null;
  client.on('error', (e: unknown) => {
    lastError = e;
  });
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })), timeoutMs).unref());
  try {
    await Promise.race([
      (async () => {
        await client.connect();
        await client.ping();
      })(),
      timer,
    ]);
    const node = keyNodes(client)[0]!;
    const info = String(await node.info('server'));
    // SCAN is what listing needs: a user without it gets NOPERM here rather than an empty list later.
    await node.call('SCAN', '0', 'COUNT', '1');
    const details: Record<string, unknown> = {
      target,
      version: infoField(info, 'redis_version') ?? 'unknown',
      mode: infoField(info, 'redis_mode') ?? (config.cluster ? 'cluster' : 'standalone'),
    };
    if (config.cluster) details.masters = keyNodes(client).length;
    return { ok: true, message: `connected to ${target} (Redis ${details.version})`, details };
  } catch (error) {
    const c = classify(lastError && !/WRONGPASS|NOAUTH|NOPERM/.test(String(error)) ? lastError : error, target);
    return { ok: false, problem: c.problem ?? 'protocol_error', message: c.message };
  } finally {
    client.disconnect();
  }
}

export const redisFactory: ConnectorFactory<RedisConnectionConfig> = {
  create: (id, config, deps) => new RedisConnector(id, config, deps),
  test: (config) => testRedisConnection(config),
};

export { RedisConnector, type RedisConnectorOptions } from './connector.js';
export { REDRIVE_NOTICE } from './redrive.js';
