/**
 * What a connector is given and how one is made: the types every connector
 * and the core share, apart from the registry of factories (which imports the
 * connectors themselves).
 */
import type { ConnectionConfig } from '../contract/operations.js';
import type { AuditEntry, ConnectionTestResult } from '../contract/types.js';
import type { Logger } from '../ground/logger.js';
import type { Connector } from './connector.js';

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
