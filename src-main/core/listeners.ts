/**
 * The embedded broker's wire listeners (AMQP 0-9-1, the Kafka protocol), started by
 * the core beside the broker host and stopped before it. A listener whose port is
 * taken (RabbitMQ already on 5672, a Kafka on 9092) does not stop the app: it moves
 * to a free port and says so, in the log and in its status, so that the person sees
 * where to point their apps.
 */
import type { BrokerHost } from '../broker/host.js';
import type { ListenerInfo } from '../contract/types.js';
import type { Logger } from '../ground/logger.js';
import { AmqpInspector } from '../protocols/amqp/inspect.js';
import { createAmqpListener, type AmqpServer } from '../protocols/amqp/server.js';
import { AmqpUserAdmin } from '../protocols/amqp/user-admin.js';
import { createKafkaListener } from '../protocols/kafka/server.js';
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
  close(): Promise<void>;
}

/** The protocols this build can serve. */
const factories: Partial<Record<ListenerProtocol, ListenerFactory>> = {
  amqp: createAmqpListener,
  kafka: createKafkaListener,
};

export async function startListeners(host: BrokerHost, options: ListenersOptions, logger: Logger): Promise<RunningListeners> {
  const running: { status: ListenerStatus; listener: Listener<ProtocolConnection> | null }[] = [];
  let inspector: AmqpInspector | null = null;
  let users: AmqpUserAdmin | null = null;
  for (const protocol of Object.keys(DEFAULT_PORTS) as ListenerProtocol[]) {
    const config = options[protocol];
    if (!config) continue;
    const status: ListenerStatus = { protocol, host: config.host ?? '127.0.0.1', requestedPort: config.port, port: null, tls: Boolean(config.tls), connections: 0, note: null };
    const factory = factories[protocol];
    if (!factory) {
      status.note = `this build does not serve ${protocol}`;
      running.push({ status, listener: null });
      continue;
    }
    let listener = factory(host, config, logger);
    try {
      status.port = await listener.listen();
    } catch (error) {
      if (error instanceof ListenerError && error.code === 'ADDRESS_IN_USE' && config.port !== 0) {
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
    running.push({ status, listener: status.port === null ? null : listener });
    if (protocol === 'amqp' && status.port !== null) {
      const amqp = (listener as unknown as { amqp: AmqpServer }).amqp;
      inspector = new AmqpInspector(amqp);
      users = new AmqpUserAdmin(amqp);
    }
  }
  return {
    status: () => running.map(({ status, listener }) => ({ ...status, connections: listener?.connections().size ?? 0 })),
    amqp: () => inspector,
    amqpUsers: () => users,
    async close() {
      await Promise.all(running.map(({ listener }) => listener?.close()));
    },
  };
}
