/**
 * The embedded broker as a connection (`local`): adapts the engine's byte-level
 * API to the contract's JSON shapes. The engine runs in this process; its
 * database lives in the data directory as brokerdeck.db.
 */
import { BrokerError, type BrowsedMessage, type EngineFilter, type GroupResetRequest } from '../../broker/index.js';
import type { MessageFilter } from '../../contract/operations.js';
import type { ConnectionInfo, MessageProperties, MessageView, RecordView, VhostInfo } from '../../contract/types.js';
import type { Logger } from '../../ground/logger.js';
import { compileMessageFilter, filterSpec } from '../../ground/filter.js';
import type { Args, Connector } from '../connector.js';
import { BrokerHost, DEFAULT_VHOST } from '../../broker/host.js';
import { checkCallSize, MAX_CALL_BYTES } from '../../broker/limits.js';
import { DEFAULT_SETTINGS, KAFKA_DEFAULT_MAX_MESSAGE_BYTES, settingsOf, TopicConfigProblem, topicConfigEntries, withTopicConfigs, type TopicSettings } from '../../broker/topic-config.js';
import { decodeBytes, encodeBytes, jsonSafe } from '../encoding.js';

export interface EmbeddedOptions {
  dataDir: string | null;
  readOnly: boolean;
  logger: Logger;
  /** See EngineOptions.diskFreeLimit. */
  diskFreeLimit?: number;
  /** The broker host that owns the engine (the core's); without one the connection opens and closes its own. */
  host?: BrokerHost;
  /** The virtual host this connector addresses (`/` unless given). */
  vhost?: string;
}

/** The shared filter, checked here so that a bad one is refused naming the contract's field. */
export function toEngineFilter(f: MessageFilter, on: 'queue' | 'topic', prefix = ''): EngineFilter | undefined {
  compileMessageFilter(f, on, prefix);
  return filterSpec(f, on, prefix);
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
  const headers: Record<string, string> = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, typeof v === 'string' ? v : encodeBytes(v).text]));
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
  const ownsHost = options.host === undefined;
  const host = options.host ?? BrokerHost.open({ dataDir: options.dataDir, logger: options.logger, ...(options.diskFreeLimit !== undefined ? { diskFreeLimit: options.diskFreeLimit } : {}) });
  let readOnly = options.readOnly;
  const vhost = options.vhost ?? DEFAULT_VHOST;
  const isRoot = vhost === DEFAULT_VHOST;
  /** The engine, unless its store failed: then even reads are refused, because its memory is ahead of its data. */
  const live = () => host.live(vhost);
  const topicNamed = (name: string) => {
    const found = live().topicInfo(name);
    if (!found) throw new BrokerError('NOT_FOUND', `topic ${JSON.stringify(name)} does not exist`, 'topic');
    return found;
  };
  /** The connectors of the other vhosts, made when first addressed; read-only follows this one's. */
  const others = new Map<string, Connector>();
  /** Every vhost's engine that is serving: jobs and the audit are looked up across them. */
  const engines = () => host.vhostNames().flatMap((name) => (host.storeErrorOf(name) ? [] : [host.live(name)]));
  /** Where jobs and the audit are looked up: `local` answers for every vhost (job ids are unique), another vhost for its own. */
  const jobEngines = () => (isRoot ? engines() : [live()]);
  if (isRoot) host.events.on('vhostDeleted', (name) => others.delete(name));

  const connector: Connector = {
    id: 'local',
    info(): ConnectionInfo {
      const storeError = host.storeErrorOf(vhost);
      return {
        id: 'local',
        kind: 'embedded',
        name: 'Embedded broker',
        status: storeError ? 'error' : 'connected',
        ...(storeError ? { error: storeError } : {}),
        ...(host.engine.diskAlarm ? { alarm: host.engine.diskAlarm.message } : {}),
        readOnly,
        target: options.dataDir ?? 'in memory',
        capabilities: ['queues', 'exchanges', 'topics', 'groups', 'publish', 'redrive', 'get', 'vhosts', 'topicConfig'],
        vhost,
      };
    },
    setReadOnly(value) {
      readOnly = value;
      for (const other of others.values()) other.setReadOnly?.(value);
    },
    forVhost(name) {
      if (name === vhost) return connector;
      if (!isRoot) throw new BrokerError('INVALID_ARGUMENT', 'a virtual host is addressed from the connection "local"', 'vhost');
      if (!host.hasVhost(name)) throw new BrokerError('NOT_FOUND', `virtual host ${JSON.stringify(name)} does not exist`, 'vhost');
      let found = others.get(name);
      if (!found) {
        found = createEmbeddedConnector({ ...options, readOnly, host, vhost: name });
        others.set(name, found);
      }
      return found;
    },
    async listVhosts() {
      return host.vhostNames().map((name) => vhostInfo(host, name));
    },
    async createVhost(name, description) {
      host.createVhost(name, description);
      return vhostInfo(host, name);
    },
    async deleteVhost(name) {
      host.deleteVhost(name);
    },
    async close() {
      // The core closes its host after its connections; a host of this connection's own goes with it.
      if (ownsHost) host.close();
    },

    async listExchanges() {
      return live().listExchanges();
    },
    async getExchange(name) {
      const found = live().listExchanges().find((x) => x.name === name);
      if (!found) throw new BrokerError('NOT_FOUND', `exchange ${JSON.stringify(name)} does not exist`, 'exchange');
      return found;
    },
    async declareExchange(a) {
      return live().declareExchange(a.exchange, { type: a.type, durable: a.durable, autoDelete: a.autoDelete, internal: a.internal, arguments: a.arguments });
    },
    async deleteExchange(a) {
      live().deleteExchange(a.exchange, { ifUnused: a.ifUnused });
    },
    async listBindings() {
      return live().listBindings();
    },
    async createBinding(a) {
      live().bind(a);
      return { ...a };
    },
    async deleteBinding(a) {
      live().unbind(a);
    },

    async listConsumers(queue) {
      return live().listConsumers(queue).map((c) => ({
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
      return live().listQueues();
    },
    async getQueue(queue) {
      return live().getQueue(queue);
    },
    async declareQueue(a) {
      return live().declareQueue(a.queue, { durable: a.durable, exclusive: a.exclusive, autoDelete: a.autoDelete, arguments: a.arguments });
    },
    async deleteQueue(a) {
      return live().deleteQueue(a.queue, { ifUnused: a.ifUnused, ifEmpty: a.ifEmpty });
    },
    async purgeQueue(a) {
      return live().purgeQueue(a.queue);
    },
    async browseQueue(a: Args<'queues/messages'>) {
      const filter = toEngineFilter(a, 'queue');
      const page = live().browse(a.queue, {
        limit: a.limit,
        ...(a.cursor ? { cursor: a.cursor } : {}),
        ...(a.position !== undefined ? { position: a.position } : {}),
        ...(filter ? { filter } : {}),
        includeUnacked: a.includeUnacked,
      });
      return { messages: page.messages.map(view), nextCursor: page.nextCursor, scanned: page.scanned, matched: page.matched };
    },
    async getMessages(a) {
      const messages = await live().get(a.queue, { count: a.count, ackMode: a.ackMode });
      return messages.map(view);
    },
    async publish(a) {
      const result = await live().publishMany({
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
      return live().listTopics();
    },
    async getTopic(name) {
      return topicNamed(name);
    },
    async createTopic(a) {
      // Checked before the topic exists, so a refused config creates nothing.
      const settings = a.configs ? topicSettings(DEFAULT_SETTINGS, a.configs) : null;
      live().createTopic(a.topic, {
        partitions: a.partitions,
        ...(a.retentionMs !== undefined ? { retentionMs: a.retentionMs } : {}),
        ...(a.retentionBytes !== undefined ? { retentionBytes: a.retentionBytes } : {}),
      });
      if (settings) {
        const made = live().topicInfo(a.topic);
        if (made) live().setTopicConfig(a.topic, { ...settings, retentionMs: settings.retentionMs ?? made.retentionMs, retentionBytes: settings.retentionBytes ?? made.retentionBytes });
      }
      const topic = live().topicInfo(a.topic);
      if (!topic) throw Object.assign(new Error(`topic "${a.topic}" was not created`), { code: 'INTERNAL' });
      return topic;
    },
    async describeTopicConfig(topic) {
      return configEntries(topicNamed(topic));
    },
    async alterTopicConfig(a) {
      if (Object.keys(a.configs).length === 0) throw new BrokerError('INVALID_ARGUMENT', 'configs must name at least one config', 'configs');
      const settings = topicSettings(settingsOf(topicNamed(a.topic)), a.configs);
      if (!a.validateOnly) live().setTopicConfig(a.topic, settings);
      return configEntries(topicNamed(a.topic));
    },
    async deleteTopic(a) {
      live().deleteTopic(a.topic);
    },
    async browseTopic(a) {
      const filter = toEngineFilter(a, 'topic');
      const page = live().browseTopic(a.topic, {
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
      // Decoded once: every copy shares the bytes (the engine copies only what placeholders change).
      const key = a.key === undefined || a.key === null ? null : Buffer.from(a.key, 'utf8');
      const value = a.value === null ? null : decodeBytes(a.value, a.valueEncoding, 'value');
      // Refused before a million record objects are made for it.
      checkCallSize(a.count, (key?.length ?? 0) + (value?.length ?? 0), MAX_CALL_BYTES, 'records');
      const records = Array.from({ length: a.count }, () => ({
        key,
        value,
        headers: a.headers,
        ...(a.partition !== undefined ? { partition: a.partition } : {}),
      }));
      const offsets = await live().produce(a.topic, records, { placeholders: true });
      return { published: offsets.length, routed: {}, returned: 0, rejected: 0, deduplicated: 0, confirmed: true, offsets };
    },
    tail(topic, partition, listener) {
      const onRecord = (event: { topic: string; record: Parameters<typeof recordView>[0] }, from: string) => {
        if (event.topic !== topic || from !== vhost) return;
        if (partition !== undefined && event.record.partition !== partition) return;
        listener({ topic, ...recordView(event.record) });
      };
      host.events.on('record', onRecord);
      return () => host.events.off('record', onRecord);
    },

    async listGroups() {
      return live().listGroups();
    },
    async getGroup(groupId) {
      const found = live().findGroup(groupId);
      if (!found) throw new BrokerError('NOT_FOUND', `consumer group ${JSON.stringify(groupId)} does not exist`, 'groupId');
      return found;
    },
    async previewGroupOffsets(a) {
      return live().planGroupReset(resetRequest(a));
    },
    async resetGroupOffsets(a) {
      return live().resetGroupOffsets(resetRequest(a));
    },
    async deleteGroup(groupId) {
      await live().deleteGroup(groupId);
    },
    async listDeadLetters() {
      return live().listDeadLetterQueues();
    },

    async startRedrive(a) {
      const filter = a.filter ? toEngineFilter(a.filter, 'queue', 'filter.') : undefined;
      return live().startRedrive({
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
      for (const engine of jobEngines()) {
        const job = orNull(() => engine.getRedrive(id));
        if (job) return job;
      }
      return null;
    },
    async cancelRedrive(id) {
      for (const engine of jobEngines()) {
        const job = orNull(() => engine.cancelRedrive(id));
        if (job) return job;
      }
      return null;
    },
    async listRedrives() {
      return jobEngines().flatMap((engine) => engine.listRedrives());
    },
    async listAudit(limit) {
      return jobEngines()
        .flatMap((engine) => engine.listAudit(limit))
        .sort((a, b) => b.at - a.at)
        .slice(0, limit);
    },
    onRedrive(listener) {
      const relay = (job: Parameters<typeof listener>[0], from: string) => (isRoot || from === vhost) && listener(job);
      host.events.on('redrive', relay);
      return () => host.events.off('redrive', relay);
    },

    async stats() {
      const s = live().stats();
      return { connectionId: 'local', at: s.at, queues: s.queues, groups: s.groups };
    },
    async history(a) {
      return live().history({ kind: a.kind, name: a.name }, a.range);
    },
  };
  return connector;
}

function vhostInfo(host: BrokerHost, name: string): VhostInfo {
  const def = host.describeVhost(name);
  let messages = 0;
  if (!host.storeErrorOf(name)) for (const q of host.live(name).listQueues()) messages += q.messages;
  return { name, description: def.description, messages };
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

/** A topic's settings with configs given by Kafka's names applied; a refused one is an error naming `configs.<name>`. */
function topicSettings(base: TopicSettings, configs: Record<string, string | null>): TopicSettings {
  try {
    return withTopicConfigs(base, configs);
  } catch (error) {
    if (error instanceof TopicConfigProblem) throw new BrokerError('INVALID_ARGUMENT', `configs.${error.config}: ${error.message}`, `configs.${error.config}`);
    throw error;
  }
}

/** A topic's configs as Kafka's DescribeConfigs lists them: its own values ("topic") and the defaults. */
function configEntries(t: Parameters<typeof topicConfigEntries>[0]) {
  return topicConfigEntries(t, KAFKA_DEFAULT_MAX_MESSAGE_BYTES)
    .map((e) => ({ name: e.name, value: e.value, source: e.isDefault ? 'default' : 'topic', readOnly: false, sensitive: false }))
    .sort((x, y) => (x.name < y.name ? -1 : 1));
}
