/**
 * The Amazon SNS connection kind: a factory the core registers under `sns`,
 * creating a connector per saved connection and answering "Test connection".
 */
import { ListTopicsCommand, SNSClient } from '@aws-sdk/client-sns';
import type { SnsConnectionConfig } from '../../contract/operations.js';
import type { ConnectionTestResult } from '../../contract/types.js';
import type { ConnectorFactory } from '../deps.js';
import { classifyAwsError, clientConfig, targetOf } from '../aws/client.js';
import { SnsConnector } from './connector.js';

/** Lists topics: that needs the endpoint, valid credentials and the sns:ListTopics permission. */
export async function testSnsConnection(config: SnsConnectionConfig, timeoutMs = 10_000): Promise<ConnectionTestResult> {
  const target = targetOf(config, 'sns');
  let client: SNSClient;
  try {
    client = new SNSClient(clientConfig(config, { maxAttempts: 1, requestTimeoutMs: timeoutMs, connectTimeoutMs: Math.min(timeoutMs, 5_000) }));
  } catch (error) {
    return { ok: false, problem: 'config_error', message: (error as Error).message };
  }
  try {
    await client.send(new ListTopicsCommand({}), { abortSignal: AbortSignal.timeout(timeoutMs) });
    return { ok: true, message: `connected to ${target}`, details: { target } };
  } catch (error) {
    const c = classifyAwsError(error, target);
    return { ok: false, problem: c.problem, message: c.problem === 'config_error' && config.profile ? `profile "${config.profile}": ${c.message}` : c.message };
  } finally {
    client.destroy();
  }
}

export const snsFactory: ConnectorFactory<SnsConnectionConfig> = {
  create: (id, config, deps) => new SnsConnector(id, config, deps),
  test: (config) => testSnsConnection(config),
};

export { SnsConnector } from './connector.js';
