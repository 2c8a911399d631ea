/**
 * One handler per operation, keyed by the operation's name (`'queues/list'`).
 * The table's type makes the compiler check that every operation of the
 * contract has exactly one handler with the right input and output.
 */
import { randomUUID } from 'node:crypto';
import { ApiError } from '../contract/errors.js';
import type { OperationName, Output, ParsedInput } from '../contract/operations.js';
import type { Connector } from '../connectors/connector.js';
import type { CoreContext } from './context.js';
import { configOfSetting, saveListenerSetting, savedListenerSetting } from './listener-settings.js';
import { ListenerError } from '../protocols/listener.js';
import { KafkaUsersUnavailable } from '../protocols/kafka/user-admin.js';
import type { ListenerSetting } from '../contract/types.js';
import type { AppStore } from './app-store.js';
import { declareQueue, topicCreateArgs } from './declare.js';
import { cancelPublishJob, getPublishJob, messageTemplate, publishJobs, recordTemplate, startPublishJob } from './publish.js';

export type Handlers = { [N in OperationName]: (input: ParsedInput<N>) => Promise<Output<N>> };

type Method = keyof Connector;

/** What an operation addresses: a connection, and on a connection with several, a virtual host. */
interface Scope {
  connectionId: string;
  vhost?: string | undefined;
}

/** Finds the connection and the method; refuses writes on a read-only connection. */
function resolve<M extends Method>(ctx: CoreContext, scope: Scope, method: M, what: string, write: boolean): NonNullable<Connector[M]> {
  const { connectionId } = scope;
  const connector = ctx.connector(connectionId, scope.vhost);
  const fn = connector[method];
  if (typeof fn !== 'function') {
    throw new ApiError('INVALID_ARGUMENT', `connection "${connectionId}" (${connector.info().kind}) cannot ${what}`, 'connectionId');
  }
  if (write && connector.info().readOnly) {
    throw new ApiError('FORBIDDEN', `connection "${connectionId}" is read-only: turn read-only off to ${what}`, 'connectionId');
  }
  return (fn as (...a: unknown[]) => unknown).bind(connector) as NonNullable<Connector[M]>;
}

function without<T extends Scope>(input: T): Omit<T, 'connectionId' | 'vhost'> {
  const { connectionId: _ignored, vhost: _alsoIgnored, ...rest } = input;
  return rest;
}

export function createHandlers(ctx: CoreContext): Handlers {
  const r = <M extends Method>(scope: Scope, m: M, what: string, write = false) => resolve(ctx, scope, m, what, write);
  /**
   * Adds a send to the publish history. The messages are out by then: a history that
   * cannot be written (a full disk) is logged, never turned into a failed publish that
   * someone would send again.
   */
  const remember = (entry: Parameters<AppStore['addHistory']>[0]) => {
    try {
      ctx.appStore.addHistory(entry);
    } catch (error) {
      ctx.logger.warn('the publish history could not be saved', { connectionId: entry.connectionId, target: entry.target, error: (error as Error).message });
    }
  };

  async function findJob(id: string) {
    for (const connector of ctx.connectors.values()) {
      const job = await connector.getRedrive?.(id);
      if (job) return { connector, job };
    }
    throw new ApiError('NOT_FOUND', `re-drive "${id}" does not exist`, 'id');
  }

  /** What apps do over the listeners is a write on the embedded broker, refused while it is read-only. */
  function embeddedWritable(what: string, field = 'user'): void {
    if (ctx.connector('local').info().readOnly) throw new ApiError('FORBIDDEN', `the embedded broker is read-only: turn read-only off to ${what}`, field);
  }

  function amqpUsers() {
    const admin = ctx.listeners.amqpUsers();
    if (!admin) throw new ApiError('PRECONDITION_FAILED', 'the AMQP listener is not running, so it has no users to manage: turn it on in the Listener view', 'user');
    return admin;
  }

  function kafkaUsers() {
    const admin = ctx.listeners.kafkaUsers();
    if (!admin) throw new ApiError('PRECONDITION_FAILED', 'the Kafka listener is not running, so it has no users to manage: turn it on in the Listener view', 'user');
    return admin;
  }

  /** A users file that cannot be read is left as it is, for the person to fix. */
  function kafkaUsersChange<T>(change: () => T): T {
    try {
      return change();
    } catch (error) {
      if (error instanceof KafkaUsersUnavailable) throw new ApiError('PRECONDITION_FAILED', error.message, 'user');
      throw error;
    }
  }

  return {
    'system/health': async () => ({ status: 'ok', version: ctx.version }),
    'listeners/list': async () => ctx.listeners.status().map((l) => ({ ...l, setting: savedListenerSetting(ctx.appStore, l.protocol) })),
    'listeners/configure': async ({ protocol, enabled, port, tlsCertFile, tlsKeyFile }) => {
      embeddedWritable('change a listener', 'port');
      const setting: ListenerSetting = { enabled, port, ...(tlsCertFile && tlsKeyFile ? { tlsCertFile, tlsKeyFile } : {}) };
      let status;
      try {
        status = await ctx.listeners.reconfigure(protocol, configOfSetting(setting, ctx.dataDir));
      } catch (error) {
        if (error instanceof ListenerError && error.code === 'ADDRESS_IN_USE') {
          throw new ApiError('CONFLICT', `port ${port} is in use on this machine (another broker?): choose another, or 0 for a free one; the listener stays where it was`, 'port');
        }
        // A port this user may not bind (below 1024), an address that is not this machine's: the person's choice, so a 4xx naming it.
        if (error instanceof ListenerError) throw new ApiError(error.code === 'ACCESS_DENIED' ? 'FORBIDDEN' : 'PRECONDITION_FAILED', error.message, 'port');
        throw error;
      }
      saveListenerSetting(ctx.appStore, protocol, setting);
      return { ...status, setting };
    },
    'listeners/amqpConnections': async () => ctx.listeners.amqp()?.connections() ?? [],
    'listeners/amqpChannels': async ({ id }) => {
      const channels = ctx.listeners.amqp()?.channels(id);
      if (!channels) throw new ApiError('NOT_FOUND', `AMQP connection "${id}" is not open`, 'id');
      return channels;
    },
    'listeners/amqpClose': async ({ id, reason }) => {
      embeddedWritable('close a connection', 'id');
      if (!ctx.listeners.amqp()?.close(id, reason)) throw new ApiError('NOT_FOUND', `AMQP connection "${id}" is not open`, 'id');
      return { closed: true as const };
    },

    'listeners/kafkaConnections': async () => ctx.listeners.kafkaClients(),
    'listeners/kafkaClose': async ({ id }) => {
      embeddedWritable('close a connection', 'id');
      if (!ctx.listeners.closeKafkaClient(id)) throw new ApiError('NOT_FOUND', `Kafka client connection "${id}" is not open`, 'id');
      return { closed: true as const };
    },
    'listeners/amqpUsers': async () => amqpUsers().list(),
    'listeners/amqpUserPut': async ({ user, password, tags }) => {
      embeddedWritable('change a user');
      return amqpUsers().put(user, password, tags);
    },
    'listeners/amqpUserDelete': async ({ user }) => {
      embeddedWritable('delete a user');
      if (!amqpUsers().delete(user)) throw new ApiError('NOT_FOUND', `user "${user}" does not exist`, 'user');
      return { deleted: true as const };
    },
    'listeners/amqpPermissionsPut': async ({ user, vhost, configure, write, read }) => {
      embeddedWritable('change permissions');
      const admin = amqpUsers();
      if (!admin.get(user)) throw new ApiError('NOT_FOUND', `user "${user}" does not exist`, 'user');
      if (!ctx.broker.hasVhost(vhost)) throw new ApiError('NOT_FOUND', `virtual host "${vhost}" does not exist`, 'vhost');
      return admin.setPermissions(user, vhost, { configure, write, read });
    },
    'listeners/amqpPermissionsDelete': async ({ user, vhost }) => {
      embeddedWritable('change permissions');
      const admin = amqpUsers();
      if (!admin.get(user)) throw new ApiError('NOT_FOUND', `user "${user}" does not exist`, 'user');
      if (!admin.clearPermissions(user, vhost)) throw new ApiError('NOT_FOUND', `user "${user}" has no permissions on virtual host "${vhost}"`, 'vhost');
      return admin.get(user)!;
    },

    'listeners/kafkaUsers': async () => kafkaUsers().list(),
    'listeners/kafkaUserPut': async ({ user, password, mechanisms, iterations }) => {
      embeddedWritable('change a user');
      const admin = kafkaUsers();
      return kafkaUsersChange(() => admin.put(user, password, mechanisms, iterations));
    },
    'listeners/kafkaUserDelete': async ({ user, mechanism }) => {
      embeddedWritable('delete a user');
      const admin = kafkaUsers();
      if (!admin.get(user)) throw new ApiError('NOT_FOUND', `user "${user}" does not exist`, 'user');
      if (!kafkaUsersChange(() => admin.delete(user, mechanism))) throw new ApiError('NOT_FOUND', `user "${user}" has no ${mechanism} credential`, 'mechanism');
      return { deleted: true as const };
    },

    'connections/list': async () => [...ctx.connectors.values()].map((c) => c.info()),
    'connections/get': async ({ connectionId }) => ctx.connector(connectionId).info(),
    'connections/create': async (config) => {
      const id = `c-${randomUUID().slice(0, 8)}`;
      ctx.factory(config.kind);
      ctx.appStore.saveConnection({ id, kind: config.kind, name: config.name, sealed: ctx.secrets.seal(JSON.stringify(config)) });
      ctx.attach(id, config);
      return { id };
    },
    'connections/update': async ({ connectionId, config }) => {
      const existing = ctx.connector(connectionId);
      if (existing.info().kind === 'embedded') throw new ApiError('INVALID_ARGUMENT', 'the embedded broker has no settings to change', 'connectionId');
      await existing.close();
      ctx.appStore.saveConnection({ id: connectionId, kind: config.kind, name: config.name, sealed: ctx.secrets.seal(JSON.stringify(config)) });
      return ctx.attach(connectionId, config).info();
    },
    'connections/delete': async ({ connectionId }) => {
      const connector = ctx.connector(connectionId);
      if (connector.info().kind === 'embedded') throw new ApiError('INVALID_ARGUMENT', 'the embedded broker cannot be removed', 'connectionId');
      ctx.connectors.delete(connectionId);
      ctx.appStore.deleteConnection(connectionId);
      await connector.close();
      return { deleted: true };
    },
    'connections/test': async (config) => ctx.factory(config.kind).test(config, ctx.deps),
    'connections/setReadOnly': async ({ connectionId, readOnly }) => {
      const connector = ctx.connector(connectionId);
      ctx.appStore.setReadOnly(connectionId, readOnly);
      connector.setReadOnly?.(readOnly);
      return connector.info();
    },

    'vhosts/list': async (i) => r(i, 'listVhosts', 'list virtual hosts')(),
    'vhosts/create': async (i) => r({ connectionId: i.connectionId }, 'createVhost', 'create virtual hosts', true)(i.vhost, i.description),
    'vhosts/delete': async (i) => {
      await r({ connectionId: i.connectionId }, 'deleteVhost', 'delete virtual hosts', true)(i.vhost);
      return { deleted: true };
    },
    'policies/list': async (i) => r(i, 'listPolicies', 'list policies')(),
    'policies/declare': async (i) => r(i, 'declarePolicy', 'declare policies (the embedded broker has none: set queue arguments instead)', true)(without(i)),
    'policies/delete': async (i) => {
      await r(i, 'deletePolicy', 'delete policies', true)(i.name);
      return { deleted: true };
    },
    'consumers/list': async (i) => r(i, 'listConsumers', 'list consumers')(i.queue),
    'exchanges/list': async (i) => r(i, 'listExchanges', 'list exchanges')(),
    'exchanges/get': async (i) => r(i, 'getExchange', 'show exchanges')(i.exchange),
    'exchanges/declare': async (i) => r(i, 'declareExchange', 'declare exchanges', true)(without(i)),
    'exchanges/delete': async (i) => {
      await r(i, 'deleteExchange', 'delete exchanges', true)(without(i));
      return { deleted: true };
    },

    'bindings/list': async (i) => r(i, 'listBindings', 'list bindings')(),
    'bindings/create': async (i) => r(i, 'createBinding', 'create bindings', true)(without(i)),
    'bindings/delete': async (i) => {
      await r(i, 'deleteBinding', 'delete bindings', true)(without(i));
      return { deleted: true };
    },

    'queues/list': async (i) => {
      if (i.page === undefined && i.pageSize === undefined) return r(i, 'listQueues', 'list queues')();
      const page = i.page ?? 1;
      const pageSize = i.pageSize ?? 100;
      const connector = ctx.connector(i.connectionId, i.vhost);
      if (connector.listQueuesPage) return r(i, 'listQueuesPage', 'list queues')(page, pageSize);
      const all = await r(i, 'listQueues', 'list queues')();
      return all.slice((page - 1) * pageSize, page * pageSize);
    },
    'queues/get': async (i) => r(i, 'getQueue', 'show queues')(i.queue),
    'queues/declare': async (i) => {
      r(i, 'declareQueue', 'declare queues', true);
      return declareQueue(ctx.connector(i.connectionId, i.vhost), i, without(i));
    },
    'queues/delete': async (i) => r(i, 'deleteQueue', 'delete queues', true)(without(i)),
    'queues/purge': async (i) => r(i, 'purgeQueue', 'purge queues', true)(without(i)),
    'queues/messages': async (i) => r(i, 'browseQueue', 'browse queues')(without(i)),
    'queues/getMessages': async (i) =>
      // "Get" with ack or reject removes messages, so it is a write; requeue is not.
      r(i, 'getMessages', 'get messages', i.ackMode !== 'requeue')(without(i)),

    publish: async (i) => {
      const send = r(i, 'publish', 'publish', true);
      const result = await send(without(i), messageTemplate(i));
      remember({
        connectionId: i.connectionId,
        target: `${i.exchange === '' ? '(default)' : i.exchange} → ${i.routingKey}`,
        count: i.count,
        summary: summarize(result),
        payload: without(i),
      });
      return result;
    },
    'publish/start': async (i) => {
      const send = r(i, 'publish', 'publish', true);
      const target = `${i.exchange === '' ? '(default)' : i.exchange} → ${i.routingKey}`;
      const template = messageTemplate(i);
      return startPublishJob(
        ctx,
        { connectionId: i.connectionId, target, total: i.count },
        (control) => send(without(i), template, control),
        (result) => remember({ connectionId: i.connectionId, target, count: result.published, summary: summarize(result), payload: without(i) }),
      );
    },
    'topics/produceStart': async (i) => {
      const send = r(i, 'produce', 'produce to topics', true);
      const target = `${i.topic}${i.partition !== undefined ? `[${i.partition}]` : ''}${i.key ? ` key=${i.key}` : ''}`;
      const template = recordTemplate(i);
      return startPublishJob(
        ctx,
        { connectionId: i.connectionId, target, total: i.count },
        (control) => send(without(i), template, control),
        (result) => remember({ connectionId: i.connectionId, target, count: result.published, summary: summarize(result), payload: without(i) }),
      );
    },
    'publish/job': async ({ id }) => getPublishJob(ctx, id),
    'publish/cancel': async ({ id }) => cancelPublishJob(ctx, id),
    'publish/jobs': async () => publishJobs(ctx).list().sort((a, b) => b.startedAt - a.startedAt),

    'topics/list': async (i) => r(i, 'listTopics', 'list topics')(),
    'topics/get': async (i) => r(i, 'getTopic', 'show topics')(i.topic),
    'topics/create': async (i) => r(i, 'createTopic', 'create topics', true)(topicCreateArgs(ctx.connector(i.connectionId, i.vhost), without(i))),
    'topics/alterConfig': async (i) => r(i, 'alterTopicConfig', 'change topic configuration', true)(without(i)),
    'topics/delete': async (i) => {
      await r(i, 'deleteTopic', 'delete topics', true)(without(i));
      return { deleted: true };
    },
    'topics/messages': async (i) => r(i, 'browseTopic', 'browse topics')(without(i)),
    'topics/produce': async (i) => {
      const send = r(i, 'produce', 'produce to topics', true);
      const result = await send(without(i), recordTemplate(i));
      remember({
        connectionId: i.connectionId,
        target: `${i.topic}${i.partition !== undefined ? `[${i.partition}]` : ''}${i.key ? ` key=${i.key}` : ''}`,
        count: i.count,
        summary: summarize(result),
        payload: without(i),
      });
      return result;
    },

    'groups/list': async (i) => r(i, 'listGroups', 'list consumer groups')(),
    'groups/get': async (i) => r(i, 'getGroup', 'show consumer groups')(i.groupId),
    'groups/previewReset': async (i) => r(i, 'previewGroupOffsets', 'reset consumer-group offsets')(without(i)),
    'groups/resetOffsets': async (i) => r(i, 'resetGroupOffsets', 'reset consumer-group offsets', true)(without(i)),
    'groups/delete': async (i) => {
      await r(i, 'deleteGroup', 'delete consumer groups', true)(i.groupId);
      return { deleted: true };
    },
    'groups/claim': async (i) => r(i, 'claimPending', 'claim pending entries', true)(without(i)),
    'cluster/overview': async (i) => r(i, 'clusterOverview', 'show a cluster overview')(),
    'topics/config': async (i) => r(i, 'describeTopicConfig', 'show topic configuration')(i.topic),
    'deadletters/list': async (i) => r(i, 'listDeadLetters', 'list dead-letter queues')(),

    'redrives/start': async (i) => r(i, 'startRedrive', 're-drive messages', true)(without(i)),
    'redrives/get': async ({ id }) => (await findJob(id)).job,
    'redrives/cancel': async ({ id }) => {
      const { connector, job } = await findJob(id);
      return (await connector.cancelRedrive?.(id)) ?? job;
    },
    'redrives/list': async () => {
      const all = await Promise.all([...ctx.connectors.values()].map((c) => c.listRedrives?.() ?? Promise.resolve([])));
      return all.flat().sort((a, b) => b.startedAt - a.startedAt);
    },
    'audit/list': async ({ limit }) => {
      const all = await Promise.all([...ctx.connectors.values()].map((c) => c.listAudit?.(limit) ?? Promise.resolve([])));
      return all
        .flat()
        .sort((a, b) => b.at - a.at)
        .slice(0, limit);
    },

    'metrics/history': async (i) => r(i, 'history', 'keep metrics history')(without(i)),

    'templates/list': async () => ctx.appStore.listTemplates(),
    'templates/save': async (i) => ctx.appStore.saveTemplate(i),
    'templates/delete': async ({ id }) => {
      if (!ctx.appStore.deleteTemplate(id)) throw new ApiError('NOT_FOUND', `template "${id}" does not exist`, 'id');
      return { deleted: true };
    },
    'publishHistory/list': async ({ limit }) => ctx.appStore.listHistory(limit),
  };
}

function summarize(result: Output<'publish'>): string {
  const parts = [`${result.published} published`];
  const queues = Object.entries(result.routed);
  if (queues.length > 0) parts.push(`routed to ${queues.map(([q, n]) => `${q} (${n})`).join(', ')}`);
  if (result.offsets && result.offsets.length > 0) parts.push(`${result.offsets.length} records appended`);
  if (result.returned > 0) parts.push(`${result.returned} returned as unroutable`);
  if (result.rejected > 0) parts.push(`${result.rejected} rejected by overflow`);
  if (result.deduplicated > 0) parts.push(`${result.deduplicated} dropped as duplicates`);
  return parts.join('; ');
}
