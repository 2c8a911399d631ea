/**
 * The core: owns the connections (the embedded broker is always `local`), the
 * app's own store (templates, publish history, settings) and the event
 * streams, and serves every operation of the contract. Transports call
 * `core.call(op, input)` with untrusted input; validation happens here, once,
 * before any handler runs.
 */
import { ensurePrivateDir } from '../storage/index.js';
import { ApiError } from '../contract/errors.js';
import { isOperationName, operations, type OperationName, type Output } from '../contract/operations.js';
import { isStreamName, streams, type StreamEvent, type StreamName } from '../contract/events.js';
import { parseInput } from '../contract/validate.js';
import type { Connector, Unsubscribe } from '../connectors/connector.js';
import { BrokerHost } from '../broker/host.js';
import { createEmbeddedConnector } from '../connectors/embedded/embedded-connector.js';
import { factories, type ConnectorFactory } from '../connectors/registry.js';
import { queueStats, type AuditEntry, type StatsSnapshot } from '../contract/types.js';
import { connectionConfigSchema, type ConnectionConfig } from '../contract/operations.js';
import { AppStore } from './app-store.js';
import { loadSecretKey, secretBox } from './secrets.js';
import { createHandlers, type Handlers } from './handlers.js';
import { publishJobs } from './publish.js';
import type { CoreContext } from './context.js';
import { resolveListeners } from './listener-settings.js';
import { startListeners, type ListenersOptions, type ListenerStatus } from './listeners.js';
import type { Logger } from '../ground/logger.js';
import { silentLogger } from '../ground/logger.js';

export interface CoreOptions {
  /** Directory of the databases; null keeps everything in memory (tests). */
  dataDir: string | null;
  version: string;
  logger?: Logger;
  /** Free bytes on the data folder's disk below which the embedded broker refuses publishing (default 50 MB). */
  diskFreeLimit?: number;
  /** The embedded broker's wire listeners to start for this run, whatever is saved (a command-line flag, an environment variable). */
  listeners?: ListenersOptions;
  /**
   * Listeners this way of starting the app runs by default (the desktop app and
   * `serve`: AMQP on 5672, Kafka on 9092); a setting saved with `listeners/configure`
   * replaces a default, `listeners` replaces both. Without it only `listeners` start.
   */
  listenerDefaults?: ListenersOptions;
}

export interface Core {
  readonly version: string;
  /** Validates `input` against the operation's schema, then runs it. */
  call<N extends OperationName>(op: N, input: unknown): Promise<Output<N>>;
  /** Same as `call`, for names that come off the wire. */
  callUnchecked(op: string, input: unknown): Promise<unknown>;
  subscribe<S extends StreamName>(stream: S, params: unknown, listener: (event: StreamEvent<S>) => void): Unsubscribe;
  subscribeUnchecked(stream: string, params: unknown, listener: (event: unknown) => void): Unsubscribe;
  /** Where the embedded broker's wire listeners listen (a taken port is replaced by a free one). */
  listeners(): ListenerStatus[];
  close(): Promise<void>;
}

export type { CoreContext } from './context.js';

const STATS_INTERVAL_MS = 1000;

export async function startCore(options: CoreOptions): Promise<Core> {
  const logger = options.logger ?? silentLogger;
  if (options.dataDir) ensurePrivateDir(options.dataDir);
  const appStore = AppStore.open(options.dataDir);
  const secrets = secretBox(loadSecretKey(options.dataDir));
  const connectors = new Map<string, Connector>();
  // The embedded broker's one owner: it opens the engine and reopens it after a store
  // failure; the embedded connection (and any protocol listener) takes the engine from it.
  const broker = BrokerHost.open({ dataDir: options.dataDir, logger, ...(options.diskFreeLimit !== undefined ? { diskFreeLimit: options.diskFreeLimit } : {}) });
  const local = createEmbeddedConnector({ dataDir: options.dataDir, readOnly: appStore.isReadOnly('local'), logger, host: broker });
  connectors.set(local.id, local);
  const wireListeners = await startListeners(broker, resolveListeners(options.listeners, options.listenerDefaults, appStore, options.dataDir, logger), logger);

  const factory = (kind: ConnectionConfig['kind']): ConnectorFactory => {
    const f = factories[kind] as ConnectorFactory | undefined;
    if (!f) throw new ApiError('INVALID_ARGUMENT', `connections of kind "${kind}" are not available in this build`, 'kind');
    return f;
  };

  const deps = {
    logger,
    audit: { record: (e: AuditEntry) => appStore.recordAudit(e), list: (id: string, limit: number) => appStore.listAudit(id, limit) },
  };

  const ctx: CoreContext = {
    deps,
    version: options.version,
    appStore,
    secrets,
    connectors,
    logger,
    broker,
    listeners: wireListeners,
    dataDir: options.dataDir,
    factory,
    attach(id, config) {
      const connector = factory(config.kind).create(id, config, deps);
      connector.setReadOnly?.(config.readOnly || appStore.isReadOnly(id));
      connectors.set(id, connector);
      return connector;
    },
    connector(id, vhost) {
      const found = connectors.get(id);
      if (!found) throw new ApiError('NOT_FOUND', `connection "${id}" does not exist`, 'connectionId');
      if (vhost === undefined) return found;
      if (found.forVhost) return found.forVhost(vhost);
      // A connection bound to one vhost (RabbitMQ's) answers for that one only.
      const own = found.info().vhost;
      if (own === vhost) return found;
      throw new ApiError(
        'INVALID_ARGUMENT',
        own === undefined
          ? `connection "${id}" (${found.info().kind}) has no virtual hosts`
          : `connection "${id}" addresses virtual host ${JSON.stringify(own)} only; add a connection for ${JSON.stringify(vhost)}`,
        'vhost',
      );
    },
  };
  for (const row of appStore.listConnections()) {
    try {
      const config = connectionConfigSchema.parse(JSON.parse(secrets.open(row.sealed)));
      ctx.attach(row.id, config);
    } catch (error) {
      logger.error('a saved connection could not be opened', { connectionId: row.id, name: row.name, error: (error as Error).message });
    }
  }

  const handlers: Handlers = createHandlers(ctx);
  const cleanups = new Set<Unsubscribe>();
  let closed = false;

  /**
   * One sampler per connection, shared by every subscriber (windows, tabs): a remote
   * broker is asked once a second however many are watching, and a new subscriber gets
   * the latest sample at once when it is fresh. The next sample is taken only after the
   * previous one finished, so a slow broker is never asked twice at once.
   */
  const samplers = new Map<string, { add(listener: (event: unknown) => void): Unsubscribe }>();
  function sampler(connectionId: string, vhost: string | undefined) {
    const key = vhost === undefined ? connectionId : `${connectionId}\u0000${vhost}`;
    const existing = samplers.get(key);
    if (existing) return existing;
    const listeners = new Set<(event: unknown) => void>();
    let latest: { at: number; snapshot: StatsSnapshot } | null = null;
    let busy = false;
    const tick = async () => {
      if (busy) return;
      busy = true;
      try {
        const connector = ctx.connector(connectionId, vhost);
        const snapshot = await connector.stats!();
        const lean: StatsSnapshot = { ...snapshot, queues: snapshot.queues.map(queueStats) };
        latest = { at: Date.now(), snapshot: lean };
        for (const listener of [...listeners]) deliver(listener, lean);
      } catch (error) {
        logger.warn('stats sample failed', { connectionId, vhost, error: String(error) });
      } finally {
        busy = false;
      }
    };
    // One subscriber failing (a socket gone) does not keep the sample from the others.
    const deliver = (listener: (event: unknown) => void, snapshot: StatsSnapshot) => {
      try {
        listener(snapshot);
      } catch (error) {
        logger.warn('a stats subscriber failed', { connectionId, error: String(error) });
      }
    };
    let timer: ReturnType<typeof setInterval> | null = null;
    const entry = {
      add(listener: (event: unknown) => void): Unsubscribe {
        listeners.add(listener);
        if (latest && Date.now() - latest.at < STATS_INTERVAL_MS) {
          const { snapshot } = latest;
          queueMicrotask(() => listeners.has(listener) && deliver(listener, snapshot));
        } else void tick();
        timer ??= setInterval(() => void tick(), STATS_INTERVAL_MS);
        return () => {
          listeners.delete(listener);
          if (listeners.size > 0) return;
          if (timer) clearInterval(timer);
          timer = null;
          samplers.delete(key);
        };
      },
    };
    samplers.set(key, entry);
    return entry;
  }

  async function run(op: OperationName, input: unknown): Promise<unknown> {
    if (closed) throw new ApiError('UNAVAILABLE', 'the core is shutting down');
    const parsed = parseInput(operations[op].input, input);
    const handler = handlers[op] as (input: unknown) => Promise<unknown>;
    return handler(parsed);
  }

  function subscribeAny(stream: StreamName, params: unknown, listener: (event: unknown) => void): Unsubscribe {
    const parsed = parseInput(streams[stream].params, params) as Record<string, unknown>;
    let stop: Unsubscribe;
    switch (stream) {
      case 'stats': {
        const vhost = parsed.vhost as string | undefined;
        const connector = ctx.connector(parsed.connectionId as string, vhost);
        if (!connector.stats) throw new ApiError('INVALID_ARGUMENT', `connection "${connector.id}" has no live statistics`, 'connectionId');
        stop = sampler(connector.id, vhost).add(listener);
        break;
      }
      case 'jobs': {
        const offs = [...connectors.values()].map((c) =>
          c.onRedrive ? c.onRedrive((job) => (!parsed.id || parsed.id === job.id) && listener(job)) : () => {},
        );
        stop = () => offs.forEach((off) => off());
        break;
      }
      case 'publishJobs': {
        stop = publishJobs(ctx).subscribe((job) => (!parsed.id || parsed.id === job.id) && listener(job));
        break;
      }
      case 'tail': {
        const connector = ctx.connector(parsed.connectionId as string, parsed.vhost as string | undefined);
        if (!connector.tail) throw new ApiError('INVALID_ARGUMENT', `connection "${connector.id}" has no topics to tail`, 'connectionId');
        stop = connector.tail(parsed.topic as string, parsed.partition as number | undefined, listener);
        break;
      }
    }
    const unsubscribe = () => {
      if (cleanups.delete(unsubscribe)) stop();
    };
    cleanups.add(unsubscribe);
    return unsubscribe;
  }

  return {
    version: options.version,
    listeners: () => wireListeners.status(),
    call: (op, input) => run(op, input) as never,
    callUnchecked(op, input) {
      if (!isOperationName(op)) return Promise.reject(new ApiError('NOT_FOUND', `unknown operation "${op}"`, 'op'));
      return run(op, input);
    },
    subscribe: (stream, params, listener) => subscribeAny(stream, params, listener as (event: unknown) => void),
    subscribeUnchecked(stream, params, listener) {
      if (!isStreamName(stream)) throw new ApiError('NOT_FOUND', `unknown stream "${stream}"`, 'stream');
      return subscribeAny(stream, params, listener);
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const off of [...cleanups]) off();
      // Apps connected over the wire are told first, while the broker can still answer them.
      await wireListeners.close();
      // A publish job stops sending and ends 'cancelled' before its connection closes under it.
      await publishJobs(ctx).cancelAll(10_000);
      for (const connector of connectors.values()) {
        try {
          await connector.close();
        } catch (error) {
          logger.error('closing a connection failed', { connectionId: connector.id, error: String(error) });
        }
      }
      broker.close();
      appStore.close();
    },
  };
}
