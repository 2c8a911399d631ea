/**
 * The embedded broker as a connection (`local`): adapts the engine's byte-level
 * API to the contract's JSON shapes. The engine runs in this process; its
 * database lives in the data directory as brokerdeck.db.
 */
import { BrokerError, Engine, type BrowsedMessage, type EngineFilter, type GroupResetRequest } from '../../broker/index.js';
import type { MessageFilter } from '../../contract/operations.js';
import type { ConnectionInfo, MessageProperties, MessageView, RecordView } from '../../contract/types.js';
import type { Logger } from '../../core/logger.js';
import type { Args, Connector } from '../connector.js';
import { decodeBytes, encodeBytes, jsonSafe } from '../encoding.js';

export interface EmbeddedOptions {
  dataDir: string | null;
  readOnly: boolean;
  logger: Logger;
}

export function toEngineFilter(f: MessageFilter): EngineFilter | undefined {
  const filter: EngineFilter = {};
  if (f.q) filter.q = f.q;
  if (f.jsonPath) {
    filter.jsonPath = f.jsonPath;
    if (f.jsonEquals !== undefined) {
      try {
        filter.jsonEquals = JSON.parse(f.jsonEquals) as unknown;
      } catch {
        filter.jsonEquals = f.jsonEquals;
      }
    }
    if (f.jsonContains !== undefined) filter.jsonContains = f.jsonContains;
  }
  if (f.headerName) filter.header = { name: f.headerName, value: f.headerValue ?? '' };
  if (f.propertyName) filter.property = { name: f.propertyName, value: f.propertyValue ?? '' };
  if (f.from !== undefined) filter.from = f.from;
  if (f.to !== undefined) filter.to = f.to;
  return Object.keys(filter).length > 0 ? filter : undefined;
}

function view(m: BrowsedMessage): MessageView {
  const body = encodeBytes(m.body);
  return {
    id: m.id,
    ...(m.position !== undefined ? { position: m.position } : {}),
    exchange: m.exchange,
    routingKey: m.routingKey,
    body: body.text,
    bodyEncoding: body.encoding,
    size: m.size,
    properties: jsonSafe(m.properties) as MessageProperties,
    redelivered: m.redelivered,
    deliveryCount: m.deliveryCount,
    enqueuedAt: m.enqueuedAt,
    state: m.state,
    ...(m.consumerTag ? { consumerTag: m.consumerTag } : {}),
  };
}

function recordView(r: { partition: number; offset: number; timestamp: number; key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer | string> }): RecordView {
  const key = r.key ? encodeBytes(r.key) : null;
  const value = r.value ? encodeBytes(r.value) : null;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) headers[k] = typeof v === 'string' ? v : encodeBytes(v).text;
  return {
    partition: r.partition,
    offset: r.offset,
    timestamp: r.timestamp,
    key: key?.text ?? null,
    keyEncoding: key?.encoding ?? 'utf8',
    value: value?.text ?? null,
    valueEncoding: value?.encoding ?? 'utf8',
    size: (r.key?.length ?? 0) + (r.value?.length ?? 0),
    headers,
  };
}

export function createEmbeddedConnector(options: EmbeddedOptions): Connector {
  const engine = Engine.open({ dataDir: options.dataDir });
  let readOnly = options.readOnly;

  const connector: Connector = {
    id: 'local',
    info(): ConnectionInfo {
      return {
        id: 'local',
        kind: 'embedded',
        name: 'Embedded broker',
        status: 'connected',
        readOnly,
        target: options.dataDir ?? 'in memory',
        capabilities: ['queues', 'exchanges', 'topics', 'groups', 'publish', 'redrive', 'get'],
      };
    },
    setReadOnly(value) {
      readOnly = value;
    },
    async close() {
      engine.close();
    },

    async listExchanges() {
      return engine.listExchanges();
    },
    async declareExchange(a) {
      return engine.declareExchange(a.exchange, { type: a.type, durable: a.durable, autoDelete: a.autoDelete, internal: a.internal, arguments: a.arguments });
    },
    async deleteExchange(a) {
      engine.deleteExchange(a.exchange, { ifUnused: a.ifUnused });
    },
    async listBindings() {
      return engine.listBindings();
    },
    async createBinding(a) {
      engine.bind(a);
      return { ...a };
    },
    async deleteBinding(a) {
      engine.unbind(a);
    },

    async listConsumers(queue) {
      return engine.listConsumers(queue).map((c) => ({
        queue: c.queue,
        consumerTag: c.consumerTag,
        prefetch: c.prefetch,
        channelPrefetch: 0,
        ackRequired: !c.noAck,
        exclusive: c.exclusive,
        active: c.active,
        activityStatus: c.active ? 'up' : 'waiting',
        unacked: c.unacked,
        channel: c.owner ?? '',
        connection: c.owner,
        user: null,
      }));
    },
    async listQueues() {
      return engine.listQueues();
    },
    async getQueue(queue) {
      return engine.getQueue(queue);
    },
    async declareQueue(a) {
      return engine.declareQueue(a.queue, { durable: a.durable, exclusive: a.exclusive, autoDelete: a.autoDelete, arguments: a.arguments });
    },
    async deleteQueue(a) {
      return engine.deleteQueue(a.queue, { ifUnused: a.ifUnused, ifEmpty: a.ifEmpty });
    },
    async purgeQueue(a) {
      return engine.purgeQueue(a.queue);
    },
    async browseQueue(a: Args<'queues/messages'>) {
      const filter = toEngineFilter(a);
      const page = engine.browse(a.queue, {
        limit: a.limit,
        ...(a.cursor ? { cursor: a.cursor } : {}),
        ...(a.position !== undefined ? { position: a.position } : {}),
        ...(filter ? { filter } : {}),
        includeUnacked: a.includeUnacked,
      });
      return { messages: page.messages.map(view), nextCursor: page.nextCursor, scanned: page.scanned, matched: page.matched };
    },
    async getMessages(a) {
      const messages = await engine.get(a.queue, { count: a.count, ackMode: a.ackMode });
      return messages.map(view);
    },
    async publish(a) {
      const result = await engine.publishMany({
        exchange: a.exchange,
        routingKey: a.routingKey,
        body: decodeBytes(a.body, a.bodyEncoding),
        properties: a.properties,
        mandatory: a.mandatory,
        count: a.count,
      });
      return result;
    },

    async listTopics() {
      return engine.listTopics();
    },
    async createTopic(a) {
      engine.createTopic(a.topic, {
        partitions: a.partitions,
        ...(a.retentionMs !== undefined ? { retentionMs: a.retentionMs } : {}),
        ...(a.retentionBytes !== undefined ? { retentionBytes: a.retentionBytes } : {}),
      });
      const topic = engine.listTopics().find((t) => t.name === a.topic);
      if (!topic) throw Object.assign(new Error(`topic "${a.topic}" was not created`), { code: 'INTERNAL' });
      return topic;
    },
    async deleteTopic(a) {
      engine.deleteTopic(a.topic);
    },
    async browseTopic(a) {
      const filter = toEngineFilter(a);
      const page = engine.browseTopic(a.topic, {
        limit: a.limit,
        ...(a.partition !== undefined ? { partition: a.partition } : {}),
        ...(a.offset !== undefined ? { offset: a.offset } : {}),
        ...(a.timestamp !== undefined ? { timestamp: a.timestamp } : {}),
        ...(a.cursor ? { cursor: a.cursor } : {}),
        ...(filter ? { filter } : {}),
      });
      return { messages: page.records.map(recordView), nextCursor: page.nextCursor, scanned: page.scanned, matched: page.matched };
    },
    async produce(a) {
      const records = Array.from({ length: a.count }, () => ({
        key: a.key === undefined || a.key === null ? null : Buffer.from(a.key, 'utf8'),
        value: a.value === null ? null : decodeBytes(a.value, a.valueEncoding, 'value'),
        headers: a.headers,
        ...(a.partition !== undefined ? { partition: a.partition } : {}),
      }));
      const offsets = await engine.produce(a.topic, records, { placeholders: a.count > 1 || true });
      return { published: offsets.length, routed: {}, returned: 0, rejected: 0, deduplicated: 0, confirmed: true, offsets };
    },
    tail(topic, partition, listener) {
      const onRecord = (event: { topic: string; record: Parameters<typeof recordView>[0] }) => {
        if (event.topic !== topic) return;
        if (partition !== undefined && event.record.partition !== partition) return;
        listener({ topic, ...recordView(event.record) });
      };
      engine.events.on('record', onRecord);
      return () => engine.events.off('record', onRecord);
    },

    async listGroups() {
      return engine.listGroups();
    },
    async previewGroupOffsets(a) {
      return engine.planGroupReset(resetRequest(a));
    },
    async resetGroupOffsets(a) {
      return engine.resetGroupOffsets(resetRequest(a));
    },
    async deleteGroup(groupId) {
      await engine.deleteGroup(groupId);
    },
    async listDeadLetters() {
      return engine.listDeadLetterQueues();
    },

    async startRedrive(a) {
      const filter = a.filter ? toEngineFilter(a.filter) : undefined;
      return engine.startRedrive({
        connectionId: 'local',
        source: a.source,
        ...(a.messageIds ? { messageIds: a.messageIds } : {}),
        ...(a.all ? { all: true } : {}),
        ...(filter ? { filter } : {}),
        ...(a.target ? { target: a.target } : {}),
        ...(a.edit ? { edit: a.edit } : {}),
        ...(a.ratePerSecond !== undefined ? { ratePerSecond: a.ratePerSecond } : {}),
      });
    },
    // Jobs of other connections are looked up here too: an unknown id is "not mine", not an error.
    async getRedrive(id) {
      return orNull(() => engine.getRedrive(id));
    },
    async cancelRedrive(id) {
      return orNull(() => engine.cancelRedrive(id));
    },
    async listRedrives() {
      return engine.listRedrives();
    },
    async listAudit(limit) {
      return engine.listAudit(limit);
    },
    onRedrive(listener) {
      engine.events.on('redrive', listener);
      return () => engine.events.off('redrive', listener);
    },

    async stats() {
      const s = engine.stats();
      return { connectionId: 'local', at: s.at, queues: s.queues, groups: s.groups };
    },
    async history(a) {
      return engine.history({ kind: a.kind, name: a.name }, a.range);
    },
  };
  options.logger.info('embedded broker opened', { dataDir: options.dataDir ?? 'memory' });
  return connector;
}

function resetRequest(a: Args<'groups/previewReset'>): GroupResetRequest {
  return {
    groupId: a.groupId,
    to: a.to,
    ...(a.topic !== undefined ? { topic: a.topic } : {}),
    ...(a.partitions !== undefined ? { partitions: a.partitions } : {}),
    ...(a.timestamp !== undefined ? { timestamp: a.timestamp } : {}),
    ...(a.offset !== undefined ? { offset: a.offset } : {}),
  };
}

function orNull<T>(fn: () => T): T | null {
  try {
    return fn();
  } catch (error) {
    if (error instanceof BrokerError && error.code === 'NOT_FOUND') return null;
    throw error;
  }
}
