/**
 * The embedded broker's wire listeners (AMQP 0-9-1, the Kafka protocol), started by
 * the core beside the broker host and stopped before it. A listener whose port is
 * taken (RabbitMQ already on 5672, a Kafka on 9092) does not stop the app: it moves
 * to a free port and says so, in the log and in its status, so that the person sees
 * where to point their apps.
 */
import type { BrokerHost } from '../broker/host.js';
import type { KafkaClientInfo, ListenerInfo } from '../contract/types.js';
import type { KafkaConnection } from '../protocols/kafka/connection.js';
import type { Logger } from '../ground/logger.js';
import { AmqpInspector } from '../protocols/amqp/inspect.js';
import { createAmqpListener, type AmqpServer } from '../protocols/amqp/server.js';
import { AmqpUserAdmin } from '../protocols/amqp/user-admin.js';
import { createKafkaListener, type KafkaServer } from '../protocols/kafka/server.js';
import { KafkaUserAdmin } from '../protocols/kafka/user-admin.js';
import { ListenerError, type Listener, type ListenerTls, type ProtocolConnection } from '../protocols/listener.js';

export type ListenerProtocol = 'amqp' | 'kafka';

export interface ListenerConfig {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Interface to bind (loopback by default). */
  host?: string;
  tls?: ListenerTls;
  /** The data folder, for what a listener keeps of its own (the AMQP listener's users); null or absent: in memory. */
  dataDir?: string | null;
}

/** Which listeners to start; a protocol left out (or false) is not started. */
export type ListenersOptions = Partial<Record<ListenerProtocol, ListenerConfig | false>>;

export const DEFAULT_PORTS: Record<ListenerProtocol, number> = { amqp: 5672, kafka: 9092 };

/** Where a listener listens, as the API shows it. */
export type ListenerStatus = ListenerInfo;

/** Builds a protocol's listener over the broker host; each protocol module provides one. */
export type ListenerFactory = (host: BrokerHost, config: ListenerConfig & { port: number }, logger: Logger) => Listener<ProtocolConnection>;

export interface RunningListeners {
  status(): ListenerStatus[];
  /** The AMQP listener's connections, channels and consumers; null when it does not run. */
  amqp(): AmqpInspector | null;
  /** The AMQP listener's users and permissions; null when it does not run. */
  amqpUsers(): AmqpUserAdmin | null;
  /** The Kafka listener's SASL users; null when it does not run. */
  kafkaUsers(): KafkaUserAdmin | null;
  /**
   * Moves a listener to another port (or address, or TLS setting), or turns it
   * off (`false`) or on. Open connections of the old one are closed with the
   * protocol's goodbye. When the new port is taken the old listener keeps
   * running and a ListenerError ADDRESS_IN_USE is thrown: the person chose that
   * port, so it is not silently replaced by a free one.
   */
  reconfigure(protocol: ListenerProtocol, config: ListenerConfig | false): Promise<ListenerStatus>;
  /** The clients connected to the Kafka listener, with what they said of themselves. */
  kafkaClients(): KafkaClientInfo[];
  /** Disconnects one Kafka client; false when no such client is connected. */
  closeKafkaClient(id: string): boolean;
  close(): Promise<void>;
}

/** The protocols this build can serve. */
const factories: Partial<Record<ListenerProtocol, ListenerFactory>> = {
  amqp: createAmqpListener,
  kafka: createKafkaListener,
};

interface Running {
  status: ListenerStatus;
  listener: Listener<ProtocolConnection> | null;
  config: ListenerConfig | false;
  inspector?: AmqpInspector;
  users?: AmqpUserAdmin;
  kafkaUsers?: KafkaUserAdmin;
}

function statusOf(protocol: ListenerProtocol, config: ListenerConfig | false): ListenerStatus {
  if (!config) return { protocol, host: '127.0.0.1', requestedPort: DEFAULT_PORTS[protocol], port: null, tls: false, connections: 0, note: 'turned off' };
  return { protocol, host: config.host ?? '127.0.0.1', requestedPort: config.port, port: null, tls: Boolean(config.tls), connections: 0, note: null };
}

function withViews(protocol: ListenerProtocol, entry: Running): Running {
  if (protocol === 'amqp' && entry.listener) {
    const amqp = (entry.listener as unknown as { amqp: AmqpServer }).amqp;
    entry.inspector = new AmqpInspector(amqp);
    entry.users = new AmqpUserAdmin(amqp);
  }
  if (protocol === 'kafka' && entry.listener) entry.kafkaUsers = new KafkaUserAdmin(entry.listener as unknown as Listener<KafkaConnection> & { kafka: KafkaServer });
  return entry;
}

/** Starts one listener; a taken port moves it to a free one when `moveIfTaken`, else throws ADDRESS_IN_USE. */
async function launch(host: BrokerHost, protocol: ListenerProtocol, config: ListenerConfig, logger: Logger, moveIfTaken: boolean): Promise<Running> {
  const status = statusOf(protocol, config);
  const factory = factories[protocol];
  if (!factory) {
    status.note = `this build does not serve ${protocol}`;
    return { status, listener: null, config };
  }
  let listener = factory(host, config, logger);
  try {
    status.port = await listener.listen();
  } catch (error) {
    const taken = error instanceof ListenerError && error.code === 'ADDRESS_IN_USE' && config.port !== 0;
    if (taken && !moveIfTaken) throw error;
    if (taken) {
      logger.warn(`${protocol} port ${config.port} is in use; listening on a free port instead`, { host: status.host });
      listener = factory(host, { ...config, port: 0 }, logger);
      try {
        status.port = await listener.listen();
        status.note = `port ${config.port} was in use`;
      } catch (again) {
        status.note = (again as Error).message;
      }
    } else {
      status.note = (error as Error).message;
      logger.error(`${protocol} listener did not start`, { error: status.note });
    }
  }
  return withViews(protocol, { status, listener: status.port === null ? null : listener, config });
}

export async function startListeners(host: BrokerHost, options: ListenersOptions, logger: Logger): Promise<RunningListeners> {
  const running = new Map<ListenerProtocol, Running>();
  for (const protocol of Object.keys(DEFAULT_PORTS) as ListenerProtocol[]) {
    const config = options[protocol];
    if (!config) continue;
    running.set(protocol, await launch(host, protocol, config, logger, true));
  }
  /** One reconfiguration at a time, so two quick changes cannot both hold a port. */
  let queue: Promise<unknown> = Promise.resolve();

  async function reconfigure(protocol: ListenerProtocol, config: ListenerConfig | false): Promise<ListenerStatus> {
    const old = running.get(protocol);
    if (!config) {
      await old?.listener?.close();
      running.set(protocol, { status: statusOf(protocol, false), listener: null, config: false });
      logger.info(`${protocol} listener turned off`);
      return statusOf(protocol, false);
    }
    const oldPort = old?.listener ? old.status.port : null;
    // The same port (a TLS change, say): the old one must let go of it first; another: the new one starts first, so a taken port leaves the old one running.
    const samePort = oldPort !== null && config.port !== 0 && config.port === oldPort;
    if (samePort) await old!.listener!.close();
    let next: Running;
    try {
      next = await launch(host, protocol, config, logger, false);
    } catch (error) {
      if (samePort && old) running.set(protocol, await launch(host, protocol, old.config as ListenerConfig, logger, true));
      throw error;
    }
    if (!samePort) await old?.listener?.close();
    running.set(protocol, next);
    logger.info(`${protocol} listener reconfigured`, { port: next.status.port, tls: next.status.tls });
    return { ...next.status };
  }

  return {
    status: () => [...running.values()].map(({ status, listener }) => ({ ...status, connections: listener?.connections().size ?? 0 })),
    amqp: () => running.get('amqp')?.inspector ?? null,
    amqpUsers: () => running.get('amqp')?.users ?? null,
    kafkaUsers: () => running.get('kafka')?.kafkaUsers ?? null,
    reconfigure(protocol, config) {
      const done = queue.then(() => reconfigure(protocol, config));
      queue = done.catch(() => undefined);
      return done;
    },
    kafkaClients() {
      const listener = running.get('kafka')?.listener;
      if (!listener) return [];
      return [...listener.connections().values()].map(({ info, connection }) => {
        const c = connection as unknown as KafkaConnection;
        return {
          id: info.id,
          clientId: c.client.clientId,
          softwareName: c.client.softwareName,
          softwareVersion: c.client.softwareVersion,
          remote: info.remote,
          tls: info.tls,
          connectedAt: info.connectedAt,
          bytesIn: c.socket.bytesRead,
          bytesOut: c.socket.bytesWritten,
          user: c.sasl.principal,
        };
      });
    },
    closeKafkaClient(id) {
      const entry = running.get('kafka')?.listener?.connections().get(id);
      if (!entry) return false;
      void entry.connection.shutdown('closed via Brokerdeck');
      return true;
    },
    async close() {
      await queue;
      await Promise.all([...running.values()].map(({ listener }) => listener?.close()));
    },
  };
}
