/**
 * The HTTP API of headless mode, as a table: each route names the operation it
 * serves. The HTTP transport merges path parameters, query string and JSON body
 * into the operation's input and validates it; it adds no logic of its own.
 */
import type { OperationName } from './operations.js';

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path with `:param` segments; each parameter is URL-decoded. */
  path: string;
  op: OperationName;
  /** Status on success (200 unless said). */
  status?: number;
  /** Answered without the token. */
  public?: boolean;
}

const c = '/api/connections/:connectionId';

export const routes: readonly Route[] = [
  { method: 'GET', path: '/api/health', op: 'system/health', public: true },
  { method: 'GET', path: '/api/listeners', op: 'listeners/list' },
  { method: 'PUT', path: '/api/listeners/:protocol', op: 'listeners/configure' },
  { method: 'GET', path: '/api/listeners/amqp/connections', op: 'listeners/amqpConnections' },
  { method: 'GET', path: '/api/listeners/amqp/connections/:id/channels', op: 'listeners/amqpChannels' },
  { method: 'DELETE', path: '/api/listeners/amqp/connections/:id', op: 'listeners/amqpClose' },
  { method: 'GET', path: '/api/listeners/kafka/connections', op: 'listeners/kafkaConnections' },
  { method: 'DELETE', path: '/api/listeners/kafka/connections/:id', op: 'listeners/kafkaClose' },
  { method: 'GET', path: '/api/listeners/amqp/users', op: 'listeners/amqpUsers' },
  { method: 'PUT', path: '/api/listeners/amqp/users/:user', op: 'listeners/amqpUserPut' },
  { method: 'DELETE', path: '/api/listeners/amqp/users/:user', op: 'listeners/amqpUserDelete' },
  { method: 'PUT', path: '/api/listeners/amqp/permissions/:vhost/:user', op: 'listeners/amqpPermissionsPut' },
  { method: 'DELETE', path: '/api/listeners/amqp/permissions/:vhost/:user', op: 'listeners/amqpPermissionsDelete' },
  { method: 'GET', path: '/api/listeners/kafka/users', op: 'listeners/kafkaUsers' },
  { method: 'PUT', path: '/api/listeners/kafka/users/:user', op: 'listeners/kafkaUserPut' },
  { method: 'DELETE', path: '/api/listeners/kafka/users/:user', op: 'listeners/kafkaUserDelete' },

  { method: 'GET', path: '/api/connections', op: 'connections/list' },
  { method: 'POST', path: '/api/connections', op: 'connections/create', status: 201 },
  { method: 'POST', path: '/api/connections/test', op: 'connections/test' },
  { method: 'GET', path: c, op: 'connections/get' },
  { method: 'PUT', path: c, op: 'connections/update' },
  { method: 'DELETE', path: c, op: 'connections/delete' },
  { method: 'PUT', path: `${c}/read-only`, op: 'connections/setReadOnly' },

  { method: 'GET', path: `${c}/vhosts`, op: 'vhosts/list' },
  { method: 'PUT', path: `${c}/vhosts/:vhost`, op: 'vhosts/create' },
  { method: 'DELETE', path: `${c}/vhosts/:vhost`, op: 'vhosts/delete' },
  { method: 'GET', path: `${c}/policies`, op: 'policies/list' },
  { method: 'PUT', path: `${c}/policies/:name`, op: 'policies/declare' },
  { method: 'DELETE', path: `${c}/policies/:name`, op: 'policies/delete' },
  { method: 'GET', path: `${c}/consumers`, op: 'consumers/list' },
  { method: 'GET', path: `${c}/exchanges`, op: 'exchanges/list' },
  { method: 'GET', path: `${c}/exchanges/:exchange`, op: 'exchanges/get' },
  { method: 'PUT', path: `${c}/exchanges/:exchange`, op: 'exchanges/declare' },
  { method: 'DELETE', path: `${c}/exchanges/:exchange`, op: 'exchanges/delete' },

  { method: 'GET', path: `${c}/bindings`, op: 'bindings/list' },
  { method: 'POST', path: `${c}/bindings`, op: 'bindings/create', status: 201 },
  { method: 'DELETE', path: `${c}/bindings`, op: 'bindings/delete' },

  { method: 'GET', path: `${c}/queues`, op: 'queues/list' },
  { method: 'GET', path: `${c}/queues/:queue`, op: 'queues/get' },
  { method: 'PUT', path: `${c}/queues/:queue`, op: 'queues/declare' },
  { method: 'DELETE', path: `${c}/queues/:queue`, op: 'queues/delete' },
  { method: 'DELETE', path: `${c}/queues/:queue/contents`, op: 'queues/purge' },
  { method: 'GET', path: `${c}/queues/:queue/messages`, op: 'queues/messages' },
  { method: 'POST', path: `${c}/queues/:queue/get`, op: 'queues/getMessages' },

  { method: 'POST', path: `${c}/publish`, op: 'publish' },
  { method: 'POST', path: `${c}/publish-jobs`, op: 'publish/start', status: 202 },
  { method: 'GET', path: '/api/publish-jobs', op: 'publish/jobs' },
  { method: 'GET', path: '/api/publish-jobs/:id', op: 'publish/job' },
  { method: 'DELETE', path: '/api/publish-jobs/:id', op: 'publish/cancel' },

  { method: 'GET', path: `${c}/topics`, op: 'topics/list' },
  { method: 'GET', path: `${c}/topics/:topic`, op: 'topics/get' },
  { method: 'PUT', path: `${c}/topics/:topic`, op: 'topics/create' },
  { method: 'DELETE', path: `${c}/topics/:topic`, op: 'topics/delete' },
  { method: 'GET', path: `${c}/topics/:topic/messages`, op: 'topics/messages' },
  { method: 'POST', path: `${c}/topics/:topic/publish`, op: 'topics/produce' },
  { method: 'POST', path: `${c}/topics/:topic/publish-jobs`, op: 'topics/produceStart', status: 202 },

  { method: 'GET', path: `${c}/consumer-groups`, op: 'groups/list' },
  { method: 'GET', path: `${c}/consumer-groups/:groupId`, op: 'groups/get' },
  { method: 'POST', path: `${c}/consumer-groups/:groupId/offsets/preview`, op: 'groups/previewReset' },
  { method: 'POST', path: `${c}/consumer-groups/:groupId/offsets`, op: 'groups/resetOffsets' },
  { method: 'DELETE', path: `${c}/consumer-groups/:groupId`, op: 'groups/delete' },
  { method: 'POST', path: `${c}/consumer-groups/:groupId/claim`, op: 'groups/claim' },
  { method: 'GET', path: `${c}/cluster`, op: 'cluster/overview' },
  { method: 'GET', path: `${c}/topics/:topic/config`, op: 'topics/config' },
  { method: 'PUT', path: `${c}/topics/:topic/config`, op: 'topics/alterConfig' },
  { method: 'GET', path: `${c}/dead-letters`, op: 'deadletters/list' },
  { method: 'GET', path: `${c}/history`, op: 'metrics/history' },

  { method: 'POST', path: `${c}/redrives`, op: 'redrives/start', status: 202 },
  { method: 'GET', path: '/api/redrives', op: 'redrives/list' },
  { method: 'GET', path: '/api/redrives/:id', op: 'redrives/get' },
  { method: 'DELETE', path: '/api/redrives/:id', op: 'redrives/cancel' },
  { method: 'GET', path: '/api/audit', op: 'audit/list' },

  { method: 'GET', path: '/api/templates', op: 'templates/list' },
  { method: 'POST', path: '/api/templates', op: 'templates/save' },
  { method: 'DELETE', path: '/api/templates/:id', op: 'templates/delete' },
  { method: 'GET', path: '/api/publish-history', op: 'publishHistory/list' },
];
