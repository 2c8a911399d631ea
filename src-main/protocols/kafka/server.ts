/**
 * The Kafka listener of the embedded broker: one broker (node 0) that is the
 * leader of every partition and the coordinator of every group, over the
 * default vhost's engine (Kafka has no vhosts). What each API does is in
 * apis/; this file holds what the connections share: the served API table,
 * producer ids, and the wait of long-polling fetches.
 */
import { KAFKA_DEFAULT_MAX_MESSAGE_BYTES } from '../../broker/topic-config.js';
import type { BrokerHost } from '../../broker/host.js';
import type { Engine } from '../../broker/engine.js';
import type { Logger } from '../../ground/logger.js';
import { Listener } from '../listener.js';
import type { ListenerTls } from '../listener.js';
import { API_SCHEMAS } from './generated/index.js';
import { KafkaConnection } from './connection.js';
import type { ApiTable, ServedApi, ServerState } from './context.js';

export { CLUSTER_ID, NODE_ID } from './context.js';
import { clusterApis } from './apis/cluster.js';
import { produceApis } from './apis/produce.js';
import { fetchApis } from './apis/fetch.js';
import { groupApis } from './apis/groups.js';
import { adminApis } from './apis/admin.js';
import { configApis } from './apis/configs.js';
import { saslApis } from './apis/sasl.js';
import { transactionApis } from './apis/transactions.js';
import { KafkaUserStore } from './users.js';

export interface KafkaListenerConfig {
  port: number;
  host?: string;
  tls?: ListenerTls;
  /** Kafka's auto.create.topics.enable (default on, as in Kafka). */
  autoCreateTopics?: boolean;
  /** Kafka's num.partitions: partitions of an auto-created topic (default 1). */
  defaultPartitions?: number;
  /** Kafka's max.message.bytes: the largest record batch (default Kafka's 1048588; the broker's own record limit still applies). */
  maxMessageBytes?: number;
  /** The data folder, where kafka-users.json keeps the listener's users; null or absent: in memory. */
  dataDir?: string | null;
}

/** Kafka's default message.max.bytes. */
export const KAFKA_MAX_MESSAGE_BYTES = KAFKA_DEFAULT_MAX_MESSAGE_BYTES;

export class KafkaServer implements ServerState {
  readonly served: Map<number, ServedApi>;
  readonly autoCreateTopics: boolean;
  readonly defaultPartitions: number;
  readonly maxMessageBytes: number;
  readonly users: KafkaUserStore;
  /** Idempotent producers: the next id to hand out, and per producer and partition the last batch appended. */
  nextProducerId = BigInt(Date.now()) * 1000n;
  readonly sequences = new Map<string, { epoch: number; lastSequence: number; lastBaseSequence: number; lastBaseOffset: number }>();
  private waiters = new Set<() => void>();
  private watched: Engine | null = null;
  private readonly onRecord = () => this.wake();

  constructor(
    readonly host: BrokerHost,
    readonly logger: Logger,
    config: KafkaListenerConfig,
  ) {
    this.autoCreateTopics = config.autoCreateTopics ?? true;
    this.defaultPartitions = config.defaultPartitions ?? 1;
    this.maxMessageBytes = config.maxMessageBytes ?? KAFKA_MAX_MESSAGE_BYTES;
    this.users = new KafkaUserStore(config.dataDir ?? null);
    if (this.users.problem) logger.error('kafka users file unreadable: every client must authenticate and none can until it is fixed', { error: this.users.problem });
    const table: ApiTable = { ...clusterApis, ...configApis, ...adminApis, ...produceApis, ...fetchApis, ...groupApis, ...saslApis, ...transactionApis };
    this.served = new Map(Object.entries(table).map(([k, v]) => [Number(k), v]));
  }

  engine(): Engine {
    return this.host.live();
  }

  /** ApiVersions: every served API from version 0 (librdkafka before 2.11.1 rejects a broker whose minimum is above 0). */
  apiVersions(): Array<{ apiKey: number; minVersion: number; maxVersion: number }> {
    return [...this.served.entries()].sort((a, b) => a[0] - b[0]).map(([apiKey, s]) => ({ apiKey, minVersion: 0, maxVersion: Math.min(s.max, API_SCHEMAS.get(apiKey)!.maxStableVersion) }));
  }

  /**
   * Waits until records are appended to any topic or `ms` pass. The engine
   * emits record events only while someone listens, so it listens only
   * while a fetch waits.
   */
  waitForRecords(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        if (this.waiters.size === 0) this.unwatch();
        resolve();
      };
      // setTimeout takes at most 2^31-1 ms; a client may ask for more.
      const timer = setTimeout(done, Math.min(Math.max(0, ms), 2 ** 31 - 1));
      this.waiters.add(done);
      if (!this.watched) {
        try {
          this.watched = this.engine();
          this.watched.events.on('record', this.onRecord);
          // Transaction markers move read_committed fetches' last stable offsets.
          this.watched.events.on('transaction', this.onRecord);
        } catch {
          this.watched = null;
        }
      }
    });
  }

  /** Wakes every waiting fetch (records were appended). */
  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private unwatch(): void {
    this.watched?.events.off('record', this.onRecord);
    this.watched?.events.off('transaction', this.onRecord);
    this.watched = null;
  }

  close(): void {
    this.wake();
  }
}

export function createKafkaListener(host: BrokerHost, config: KafkaListenerConfig, logger: Logger): Listener<KafkaConnection> & { kafka: KafkaServer } {
  const server = new KafkaServer(host, logger, config);
  const listener = new Listener<KafkaConnection>({
    protocol: 'kafka',
    host: config.host,
    port: config.port,
    tls: config.tls,
    logger,
    accept: (socket, info) => new KafkaConnection(socket, info, server, logger),
  });
  const close = listener.close.bind(listener);
  listener.close = (graceMs?: number, reason?: string) => {
    server.close();
    return close(graceMs, reason);
  };
  return Object.assign(listener, { kafka: server });
}
