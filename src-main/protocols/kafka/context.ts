/**
 * What the Kafka APIs see of the listener: the shared broker state and the
 * connection a request came on. The APIs (apis/*) and the connection depend on
 * these interfaces only, the server implements them.
 */
import type { Engine } from '../../broker/engine.js';
import type { Logger } from '../../ground/logger.js';
import type { ConnectionInfo } from '../listener.js';
import type { SaslState } from './sasl.js';
import type { KafkaUserStore } from './users.js';

export const CLUSTER_ID = 'brokerdeck-embedded';
export const NODE_ID = 0;

export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

export interface ClientDetails {
  clientId: string | null;
  softwareName: string | null;
  softwareVersion: string | null;
}

export interface ConnectionView {
  readonly info: ConnectionInfo;
  readonly client: ClientDetails;
  /** The address and port this client reached: Metadata advertises it back. */
  readonly localAddress: { host: string; port: number };
  readonly isClosed: boolean;
  /** Where the connection is in SASL authentication. */
  readonly sasl: SaslState;
  /** Closes the connection once the response to the current request is written (a failed authentication). */
  closeAfterResponse(): void;
}

export interface ServerState {
  readonly served: ReadonlyMap<number, ServedApi>;
  readonly logger: Logger;
  readonly autoCreateTopics: boolean;
  readonly defaultPartitions: number;
  /** Kafka's max.message.bytes: the largest record batch a producer may send. */
  readonly maxMessageBytes: number;
  nextProducerId: bigint;
  readonly sequences: Map<string, { epoch: number; lastSequence: number; lastBaseSequence: number; lastBaseOffset: number }>;
  /** The listener's users: once there is one, clients must authenticate. */
  readonly users: KafkaUserStore;
  engine(): Engine;
  apiVersions(): Array<{ apiKey: number; minVersion: number; maxVersion: number }>;
  waitForRecords(ms: number): Promise<void>;
}

export interface RequestContext {
  server: ServerState;
  connection: ConnectionView;
  version: number;
  header: RequestHeader;
}

/** One served API: its version range and its handler (null: no response, as for acks=0). */
export interface ServedApi {
  min: number;
  max: number;
  handle(ctx: RequestContext, request: any): Promise<object | null> | object | null;
}

export type ApiTable = Record<number, ServedApi>;
