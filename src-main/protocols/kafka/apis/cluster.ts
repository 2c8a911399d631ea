/**
 * ApiVersions, Metadata, DescribeCluster, CreateTopics and DeleteTopics:
 * the broker as a one-node cluster that leads every partition.
 */
import { createHash } from 'node:crypto';
import type { TopicInfo } from '../../../broker/types.js';
import type { Encodable } from '../codec/primitives.js';
import { codeOf, ERR } from '../errors.js';
import type { ApiVersionsResponse } from '../generated/ApiVersionsResponse.js';
import type { CreateTopicsRequest } from '../generated/CreateTopicsRequest.js';
import type { CreateTopicsResponse } from '../generated/CreateTopicsResponse.js';
import type { DeleteTopicsRequest } from '../generated/DeleteTopicsRequest.js';
import type { DeleteTopicsResponse } from '../generated/DeleteTopicsResponse.js';
import type { MetadataRequest } from '../generated/MetadataRequest.js';
import type { MetadataResponse, MetadataResponseTopic } from '../generated/MetadataResponse.js';
import type { ApiTable, ServerState as KafkaServer, RequestContext } from '../context.js';
import { CLUSTER_ID, NODE_ID } from '../context.js';
import { createTopicSettings, topicConfigs } from './configs.js';

/** A stable topic id from the topic's name (this broker keeps no ids of its own). */
export function topicId(name: string): string {
  const h = createHash('sha1').update(`topic:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export function topicNameById(server: KafkaServer, id: string): string | null {
  return server.engine().listTopics().find((t) => topicId(t.name) === id)?.name ?? null;
}

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

function topicMetadata(t: TopicInfo): Encodable<MetadataResponseTopic> {
  return {
    errorCode: 0,
    name: t.name,
    topicId: topicId(t.name),
    isInternal: false,
    partitions: t.partitions.map((p) => ({ errorCode: 0, partitionIndex: p.partition, leaderId: NODE_ID, leaderEpoch: 0, replicaNodes: [NODE_ID], isrNodes: [NODE_ID], offlineReplicas: [] })),
    topicAuthorizedOperations: -2147483648,
  };
}

/** Creates a topic on first use, as Kafka does with auto.create.topics.enable; returns its error code. */
export function autoCreate(server: KafkaServer, name: string): number {
  if (!TOPIC_NAME.test(name) || name === '.' || name === '..') return ERR.INVALID_TOPIC_EXCEPTION;
  try {
    server.engine().createTopic(name, { partitions: server.defaultPartitions });
    server.logger.info('kafka topic created on first use', { topic: name, partitions: server.defaultPartitions });
    return ERR.NONE;
  } catch (error) {
    return codeOf(error, ERR.INVALID_TOPIC_EXCEPTION) === ERR.TOPIC_ALREADY_EXISTS ? ERR.NONE : codeOf(error, ERR.INVALID_TOPIC_EXCEPTION);
  }
}

function brokers(ctx: RequestContext) {
  const { host, port } = ctx.connection.localAddress;
  return [{ nodeId: NODE_ID, host, port, rack: null }];
}

function metadata(ctx: RequestContext, req: MetadataRequest): Encodable<MetadataResponse> {
  const engine = ctx.server.engine();
  // v0: an empty list means every topic; v1+: null means every topic.
  const all = req.topics === null || (ctx.version === 0 && req.topics.length === 0);
  let topics: Array<Encodable<MetadataResponseTopic>>;
  if (all) topics = engine.listTopics().map(topicMetadata);
  else {
    const allowCreate = ctx.server.autoCreateTopics && (ctx.version < 4 || req.allowAutoTopicCreation);
    topics = req.topics!.map((rt) => {
      const name = rt.name ?? topicNameById(ctx.server, rt.topicId);
      if (name === null) return { errorCode: ERR.UNKNOWN_TOPIC_ID, name: null, topicId: rt.topicId, partitions: [] };
      let t = engine.topicInfo(name);
      if (!t) {
        if (!allowCreate) return { errorCode: ERR.UNKNOWN_TOPIC_OR_PARTITION, name, partitions: [] };
        const code = autoCreate(ctx.server, name);
        t = engine.topicInfo(name);
        if (code !== ERR.NONE || !t) return { errorCode: code || ERR.UNKNOWN_TOPIC_OR_PARTITION, name, partitions: [] };
      }
      return topicMetadata(t);
    });
  }
  return { throttleTimeMs: 0, brokers: brokers(ctx), clusterId: CLUSTER_ID, controllerId: NODE_ID, topics, clusterAuthorizedOperations: -2147483648 };
}

async function createTopics(ctx: RequestContext, req: CreateTopicsRequest): Promise<Encodable<CreateTopicsResponse>> {
  const engine = ctx.server.engine();
  return {
    throttleTimeMs: 0,
    topics: req.topics.map((t) => {
      const partitions = t.numPartitions === -1 ? (t.assignments.length || ctx.server.defaultPartitions) : t.numPartitions;
      const result = { name: t.name, topicId: topicId(t.name), numPartitions: partitions, replicationFactor: 1, configs: [] as Array<{ name: string; value: string; readOnly: boolean; configSource: number; isSensitive: boolean }> };
      const fail = (errorCode: number, errorMessage: string) => ({ ...result, errorCode, errorMessage, numPartitions: -1, replicationFactor: -1 });
      if (t.replicationFactor !== -1 && t.replicationFactor !== 1) return fail(ERR.INVALID_REPLICATION_FACTOR, `replication factor ${t.replicationFactor} is larger than the 1 available broker`);
      if (partitions < 1) return fail(ERR.INVALID_PARTITIONS, `number of partitions must be at least 1, got ${partitions}`);
      const settings = createTopicSettings(t.configs);
      if ('errorCode' in settings) return fail(settings.errorCode, settings.errorMessage);
      if (engine.listTopics().some((x) => x.name === t.name)) return fail(ERR.TOPIC_ALREADY_EXISTS, `Topic '${t.name}' already exists.`);
      if (!TOPIC_NAME.test(t.name)) return fail(ERR.INVALID_TOPIC_EXCEPTION, `topic name ${JSON.stringify(t.name)} is not valid: 1-249 characters of a-z, A-Z, 0-9, ".", "_" and "-"`);
      if (req.validateOnly) return { ...result, errorCode: 0, errorMessage: null };
      try {
        let info = engine.createTopic(t.name, { partitions, retentionMs: settings.retentionMs, retentionBytes: settings.retentionBytes });
        const { maxMessageBytes, cleanupPolicy, minCompactionLagMs, deleteRetentionMs, minCleanableDirtyRatio } = settings;
        if ([maxMessageBytes, cleanupPolicy, minCompactionLagMs, deleteRetentionMs, minCleanableDirtyRatio].some((v) => v !== null)) {
          info = engine.setTopicConfig(t.name, { maxMessageBytes, cleanupPolicy, minCompactionLagMs, deleteRetentionMs, minCleanableDirtyRatio });
        }
        result.configs = topicConfigs(ctx.server, info).map((c) => ({ name: c.name, value: c.value, readOnly: false, configSource: c.isDefault ? 5 : 1, isSensitive: false }));
        return { ...result, errorCode: 0, errorMessage: null };
      } catch (error) {
        return fail(codeOf(error, ERR.INVALID_REQUEST), (error as Error).message);
      }
    }),
  };
}

function deleteTopics(ctx: RequestContext, req: DeleteTopicsRequest): Encodable<DeleteTopicsResponse> {
  const engine = ctx.server.engine();
  const wanted: Array<{ name: string | null; topicId: string }> = ctx.version >= 6 ? req.topics.map((t) => ({ name: t.name ?? topicNameById(ctx.server, t.topicId), topicId: t.topicId })) : req.topicNames.map((name) => ({ name, topicId: topicId(name) }));
  return {
    throttleTimeMs: 0,
    responses: wanted.map(({ name, topicId: id }) => {
      if (name === null) return { name: null, topicId: id, errorCode: ERR.UNKNOWN_TOPIC_ID, errorMessage: 'no topic has this id' };
      try {
        engine.deleteTopic(name);
        return { name, topicId: id, errorCode: 0, errorMessage: null };
      } catch (error) {
        return { name, topicId: id, errorCode: codeOf(error), errorMessage: (error as Error).message };
      }
    }),
  };
}

export const clusterApis: ApiTable = {
  18: {
    min: 0,
    max: 4,
    handle: (ctx): Encodable<ApiVersionsResponse> => ({ errorCode: 0, apiKeys: ctx.server.apiVersions(), throttleTimeMs: 0 }),
  },
  3: { min: 0, max: 12, handle: metadata },
  60: {
    min: 0,
    max: 1,
    handle: (ctx) => ({ throttleTimeMs: 0, errorCode: 0, errorMessage: null, endpointType: 1, clusterId: CLUSTER_ID, controllerId: NODE_ID, brokers: brokers(ctx).map((b) => ({ brokerId: b.nodeId, host: b.host, port: b.port, rack: null })), clusterAuthorizedOperations: -2147483648 }),
  },
  19: { min: 0, max: 7, handle: createTopics },
  20: { min: 0, max: 6, handle: deleteTopics },
};
