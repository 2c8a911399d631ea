/**
 * The Amazon SQS connection kind: a factory the core registers under `sqs`,
 * creating a connector per saved connection and answering "Test connection".
 */
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SqsConnectionConfig } from '../../contract/operations.js';
import type { ConnectionTestResult } from '../../contract/types.js';
import type { ConnectorFactory } from '../deps.js';
import { classifyAwsError, clientConfig, targetOf } from '../aws/client.js';
import { SqsConnector } from './connector.js';

/** Lists one queue: that needs the endpoint, valid credentials and the sqs:ListQueues permission. */
export async function testSqsConnection(config: SqsConnectionConfig, timeoutMs = 10_000): Promise<ConnectionTestResult> {
  const target = targetOf(config, 'sqs');
  let client: SQSClient;
  try {
    client = new SQSClient(clientConfig(config, { maxAttempts: 1, requestTimeoutMs: timeoutMs, connectTimeoutMs: Math.min(timeoutMs, 5_000) }));
  } catch (error) {
    return { ok: false, problem: 'config_error', message: (error as Error).message };
  }
  try {
    const r = await client.send(new ListQueuesCommand({ MaxResults: 1 }), { abortSignal: AbortSignal.timeout(timeoutMs) });
    return { ok: true, message: `connected to ${target}`, details: { target, region: await client.config.region(), sampleQueues: r.QueueUrls?.length ?? 0 } };
  } catch (error) {
    const c = classifyAwsError(error, target);
    const message = c.problem === 'config_error' && config.profile ? `profile "${config.profile}": ${c.message}` : c.message;
    return { ok: false, problem: c.problem, message };
  } finally {
    client.destroy();
  }
}

export const sqsFactory: ConnectorFactory<SqsConnectionConfig> = {
  create: (id, config, deps) => new SqsConnector(id, config, deps),
  test: (config) => testSqsConnection(config),
};

export { SqsConnector, PEEK_NOTICE, BROWSE_MAX, QUEUE_METRICS, type SqsConnectorOptions } from './connector.js';
export { REDRIVE_NOTICE } from './redrive.js';
