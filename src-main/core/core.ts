/**
 * The core: owns the connections (the embedded broker is always `local`), the
 * app's own store (templates, publish history, settings) and the event
 * streams, and serves every operation of the contract. Transports call
 * `core.call(op, input)` with untrusted input; validation happens here, once,
 * before any handler runs.
 */
import { mkdirSync } from 'node:fs';
import { ApiError } from '../contract/errors.js';
import { isOperationName, operations, type OperationName, type Output } from '../contract/operations.js';
import { isStreamName, streams, type StreamEvent, type StreamName } from '../contract/events.js';
import { parseInput } from '../contract/validate.js';
import type { Connector, Unsubscribe } from '../connectors/connector.js';
import { createEmbeddedConnector } from '../connectors/embedded/embedded-connector.js';
import { factories, type ConnectorDeps, type ConnectorFactory } from '../connectors/registry.js';
import { queueStats, type AuditEntry } from '../contract/types.js';
import { connectionConfigSchema, type ConnectionConfig } from '../contract/operations.js';
import { AppStore } from './app-store.js';
import { loadSecretKey, secretBox, type SecretBox } from './secrets.js';
import { createHandlers, type Handlers } from './handlers.js';
import type { Logger } from './logger.js';
import { silentLogger } from './logger.js';

export interface CoreOptions {
  /** Directory of the databases; null keeps everything in memory (tests). */
  dataDir: string | null;
  version: string;
  logger?: Logger;
}

export interface Core {
  readonly version: string;
  /** Validates `input` against the operation's schema, then runs it. */
  call<N extends OperationName>(op: N, input: unknown): Promise<Output<N>>;
  /** Same as `call`, for names that come off the wire. */
  callUnchecked(op: string, input: unknown): Promise<unknown>;
  subscribe<S extends StreamName>(stream: S, params: unknown, listener: (event: StreamEvent<S>) => void): Unsubscribe;
  subscribeUnchecked(stream: string, params: unknown, listener: (event: unknown) => void): Unsubscribe;
  close(): Promise<void>;
}

export interface CoreContext {
  deps: ConnectorDeps;
  version: string;
  appStore: AppStore;
  secrets: SecretBox;
  factory(kind: ConnectionConfig['kind']): ConnectorFactory;
  /** Creates (or re-creates) the connector of a saved connection. */
  attach(id: string, config: ConnectionConfig): Connector;
  connectors: Map<string, Connector>;
  connector(id: string): Connector;
  logger: Logger;
}

const STATS_INTERVAL_MS = 1000;

export async function startCore(options: CoreOptions): Promise<Core> {
  const logger = options.logger ?? silentLogger;
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const appStore = AppStore.open(options.dataDir);
  const secrets = secretBox(loadSecretKey(options.dataDir));
  const connectors = new Map<string, Connector>();
  const local = createEmbeddedConnector({ dataDir: options.dataDir, readOnly: appStore.isReadOnly('local'), logger });
  connectors.set(local.id, local);

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
    factory,
    attach(id, config) {
      const connector = factory(config.kind).create(id, config, deps);
      connector.setReadOnly?.(config.readOnly || appStore.isReadOnly(id));
      connectors.set(id, connector);
      return connector;
    },
    connector(id) {
      const found = connectors.get(id);
      if (!found) throw new ApiError('NOT_FOUND', `connection "${id}" does not exist`, 'connectionId');
      return found;
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
        const connector = ctx.connector(parsed.connectionId as string);
        if (!connector.stats) throw new ApiError('INVALID_ARGUMENT', `connection "${connector.id}" has no live statistics`, 'connectionId');
        const stats = connector.stats.bind(connector);
        let busy = false;
        // The next sample is taken only after the previous one finished, so a slow
        // remote broker is never asked twice at once.
        const tick = async () => {
          if (busy) return;
          busy = true;
          try {
            const snapshot = await stats();
            listener({ ...snapshot, queues: snapshot.queues.map(queueStats) });
          } catch (error) {
            logger.warn('stats sample failed', { connectionId: connector.id, error: String(error) });
          } finally {
            busy = false;
          }
        };
        void tick();
        const timer = setInterval(() => void tick(), STATS_INTERVAL_MS);
        stop = () => clearInterval(timer);
        break;
      }
      case 'jobs': {
        const offs = [...connectors.values()].map((c) =>
          c.onRedrive ? c.onRedrive((job) => (!parsed.id || parsed.id === job.id) && listener(job)) : () => {},
        );
        stop = () => offs.forEach((off) => off());
        break;
      }
      case 'tail': {
        const connector = ctx.connector(parsed.connectionId as string);
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
      for (const connector of connectors.values()) {
        try {
          await connector.close();
        } catch (error) {
          logger.error('closing a connection failed', { connectionId: connector.id, error: String(error) });
        }
      }
      appStore.close();
    },
  };
}
