/**
 * One factory per external system. The core creates a connector from a saved
 * configuration, and "Test connection" asks the same factory to try a
 * configuration without keeping it.
 */
import type { ConnectionConfig } from '../contract/operations.js';
import type { AuditEntry, ConnectionTestResult } from '../contract/types.js';
import type { Logger } from '../ground/logger.js';
import type { Connector } from './connector.js';
import { kafkaFactory } from './kafka/index.js';
import { rabbitmqFactory } from './rabbitmq/index.js';

/** Where an external connection writes its re-drive audit rows (the app's store). */
export interface AuditLog {
  record(entry: AuditEntry): void;
  list(connectionId: string, limit: number): AuditEntry[];
}

export interface ConnectorDeps {
  logger: Logger;
  audit: AuditLog;
}

export interface ConnectorFactory<C extends ConnectionConfig = ConnectionConfig> {
  create(id: string, config: C, deps: ConnectorDeps): Connector;
  test(config: C, deps: ConnectorDeps): Promise<ConnectionTestResult>;
}

export type Factories = { [K in ConnectionConfig['kind']]?: ConnectorFactory<Extract<ConnectionConfig, { kind: K }>> };

export const factories: Factories = {
  rabbitmq: rabbitmqFactory,
  kafka: kafkaFactory,
};
