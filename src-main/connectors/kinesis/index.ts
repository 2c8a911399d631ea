/**
 * The Amazon Kinesis Data Streams connection kind: a factory the core registers
 * under `kinesis`, creating a connector per saved connection and answering
 * "Test connection".
 */
import { KinesisClient, ListStreamsCommand } from '@aws-sdk/client-kinesis';
import type { KinesisConnectionConfig } from '../../contract/operations.js';
import type { ConnectionTestResult } from '../../contract/types.js';
import type { ConnectorFactory } from '../deps.js';
import { classifyAwsError, clientConfig, targetOf } from '../aws/client.js';
import { KinesisConnector } from './connector.js';

/** Lists one stream: that needs the endpoint, valid credentials and the kinesis:ListStreams permission. */
export async function testKinesisConnection(config: KinesisConnectionConfig, timeoutMs = 10_000): Promise<ConnectionTestResult> {
  const target = targetOf(config, 'kinesis');
  let client: KinesisClient;
  try {
    client = new KinesisClient(clientConfig(config, { maxAttempts: 1, requestTimeoutMs: timeoutMs, connectTimeoutMs: Math.min(timeoutMs, 5_000) }));
  } catch (error) {
    return { ok: false, problem: 'config_error', message: (error as Error).message };
  }
  try {
    const r = await client.send(new ListStreamsCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(timeoutMs) });
    return { ok: true, message: `connected to ${target}`, details: { target, region: await client.config.region(), sampleStreams: r.StreamNames?.length ?? 0 } };
  } catch (error) {
    const c = classifyAwsError(error, target);
    return { ok: false, problem: c.problem, message: c.problem === 'config_error' && config.profile ? `profile "${config.profile}": ${c.message}` : c.message };
  } finally {
    client.destroy();
  }
}

export const kinesisFactory: ConnectorFactory<KinesisConnectionConfig> = {
  create: (id, config, deps) => new KinesisConnector(id, config, deps),
  test: (config) => testKinesisConnection(config),
};

export { KinesisConnector, BROWSE_NOTICE, GROUPS_NOTICE, PUBLISH_NOTICE, type KinesisConnectorOptions } from './connector.js';
export { hashKeyOf, shardForHashKey, shardForKey, type ShardEntry } from './shards.js';
