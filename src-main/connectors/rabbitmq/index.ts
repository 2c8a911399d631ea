/**
 * The RabbitMQ connection kind: a factory the core registers under
 * `rabbitmq`, creating a connector per saved connection and answering
 * "Test connection".
 */
import type { RabbitConnectionConfig } from '../../contract/operations.js';
import type { ConnectorFactory } from '../deps.js';
import { RabbitConnector } from './connector.js';
import { testRabbitConnection } from './test-connection.js';

export const rabbitmqFactory: ConnectorFactory<RabbitConnectionConfig> = {
  create: (id, config, deps) => new RabbitConnector(id, config, deps),
  test: (config, deps) => testRabbitConnection(config, deps),
};

export { RabbitConnector, QUEUE_METRICS } from './connector.js';
export { publishOptions } from './publish.js';
export type { ConsumerInfo, PolicyInfo, RabbitConnectionInfo, RabbitConnectorOptions, RabbitNotices, VhostInfo } from './connector.js';
export { testRabbitConnection, DEFAULT_TEST_TIMEOUT_MS, INSECURE_TLS_WARNING, type TestOptions } from './test-connection.js';
export { PEEK_NOTICE, PEEK_MAX_MESSAGES } from './peek.js';
export { REDRIVE_NOTICE } from './redrive.js';
export { resolveRabbit } from './config.js';
