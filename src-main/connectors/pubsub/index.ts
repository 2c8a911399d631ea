/**
 * The Google Cloud Pub/Sub connection kind: a factory the core registers under
 * `pubsub`, creating a connector per saved connection and answering "Test connection".
 */
import { ApiError } from '../../contract/errors.js';
import type { PubsubConnectionConfig } from '../../contract/operations.js';
import type { ConnectionTestResult } from '../../contract/types.js';
import type { ConnectorFactory } from '../deps.js';
import { checkKeyFile, classifyError, closeClients, createClients, ensureCredentials, targetOf, type PubsubClients } from './client.js';
import { PubsubConnector } from './connector.js';

/**
 * Lists one topic of the project: that needs the endpoint (or emulator), valid
 * credentials, the project and the pubsub.topics.list permission.
 */
export async function testPubsubConnection(config: PubsubConnectionConfig, timeoutMs = 10_000): Promise<ConnectionTestResult> {
  const target = targetOf(config);
  let clients: PubsubClients;
  let account: string | null = null;
  try {
    if (config.keyFile) account = checkKeyFile(config.keyFile).clientEmail;
    clients = createClients(config);
  } catch (error) {
    return { ok: false, problem: 'config_error', message: error instanceof ApiError ? error.message : (error as Error).message };
  }
  try {
    await ensureCredentials(clients, config);
    const [topics] = await clients.publisher.listTopics({ project: `projects/${config.projectId}`, pageSize: 1 }, { autoPaginate: false, timeout: timeoutMs });
    return {
      ok: true,
      message: `connected to ${target}`,
      details: { target, project: config.projectId, emulator: config.emulatorHost !== undefined, sampleTopics: topics.length, ...(account ? { serviceAccount: account } : {}) },
    };
  } catch (error) {
    const c = classifyError(error, target, config);
    return { ok: false, problem: c.problem, message: c.message };
  } finally {
    await closeClients(clients);
  }
}

export const pubsubFactory: ConnectorFactory<PubsubConnectionConfig> = {
  create: (id, config, deps) => new PubsubConnector(id, config, deps),
  test: (config) => testPubsubConnection(config),
};

export { PubsubConnector, PEEK_NOTICE, BROWSE_MAX, QUEUE_METRICS, type PubsubConnectorOptions } from './connector.js';
export { REDRIVE_NOTICE, copyOf } from './redrive.js';
export { DEAD_LETTER_ATTRIBUTES, REDRIVEN_COUNT } from './messages.js';
