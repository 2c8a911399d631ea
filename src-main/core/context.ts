/**
 * What every handler is given: the core's connections, stores and logger.
 * Its own module, so that the core and its handlers do not import each other.
 */
import type { BrokerHost } from '../broker/host.js';
import type { Connector } from '../connectors/connector.js';
import type { ConnectorDeps, ConnectorFactory } from '../connectors/deps.js';
import type { ConnectionConfig } from '../contract/operations.js';
import type { Logger } from '../ground/logger.js';
import type { AppStore } from './app-store.js';
import type { SecretBox } from './secrets.js';
import type { RunningListeners } from './listeners.js';

export interface CoreContext {
  deps: ConnectorDeps;
  version: string;
  appStore: AppStore;
  secrets: SecretBox;
  factory(kind: ConnectionConfig['kind']): ConnectorFactory;
  /** Creates (or re-creates) the connector of a saved connection. */
  attach(id: string, config: ConnectionConfig): Connector;
  connectors: Map<string, Connector>;
  /** A connection's connector; with `vhost`, the one addressing that virtual host (NOT_FOUND or INVALID_ARGUMENT naming `vhost`). */
  connector(id: string, vhost?: string): Connector;
  logger: Logger;
  /** The embedded broker's host: the engine of the connection `local`, across reopens. */
  broker: BrokerHost;
  /** The broker's wire listeners (AMQP, Kafka) and where they listen. */
  listeners: RunningListeners;
  /** The data folder (null: everything in memory). */
  dataDir: string | null;
}
