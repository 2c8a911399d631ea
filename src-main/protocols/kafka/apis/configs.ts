/**
 * Topic and broker configs over the wire: DescribeConfigs,
 * IncrementalAlterConfigs and the older AlterConfigs; DescribeClientQuotas
 * (there are none). The topic configs are the ones the engine keeps
 * (retention.ms, retention.bytes, max.message.bytes, cleanup.policy,
 * min.compaction.lag.ms, delete.retention.ms, min.cleanable.dirty.ratio), typed
 * and validated as Kafka's LogConfig defines them, so that a change is
 * refused with Kafka's code and message. Broker configs are the listener's,
 * set when it starts: described, not altered.
 */
import { MAX_MESSAGE_BYTES } from '../../../broker/limits.js';
import { applyTopicConfig as applySetting, DEFAULT_SETTINGS, policyItems, settingsOf, TOPIC_CONFIG_NAMES, TopicConfigProblem, topicConfigEntries, type TopicSettings } from '../../../broker/topic-config.js';
import type { TopicInfo } from '../../../broker/types.js';
import type { Encodable } from '../codec/primitives.js';
import { codeOf, ERR } from '../errors.js';
import type { DescribeConfigsRequest } from '../generated/DescribeConfigsRequest.js';
import type { DescribeConfigsResponse } from '../generated/DescribeConfigsResponse.js';
import type { AlterConfigsRequest } from '../generated/AlterConfigsRequest.js';
import type { AlterConfigsResponse } from '../generated/AlterConfigsResponse.js';
import type { IncrementalAlterConfigsRequest } from '../generated/IncrementalAlterConfigsRequest.js';
import type { AlterConfigsResourceResponse, IncrementalAlterConfigsResponse } from '../generated/IncrementalAlterConfigsResponse.js';
import type { ApiTable, ServerState as KafkaServer, RequestContext } from '../context.js';
import { NODE_ID } from '../context.js';

/** Kafka's ConfigResource.Type codes. */
const TOPIC = 2;
const BROKER = 4;

/** Kafka's AlterConfigOp.OpType codes. */
const SET = 0;
const DELETE = 1;
const APPEND = 2;
const SUBTRACT = 3;

/** Kafka's DescribeConfigsResponse.ConfigType codes. */
const TYPE = { BOOLEAN: 1, INT: 3, LONG: 5, DOUBLE: 6, LIST: 7 } as const;

/** The listener's batch limit: a topic without its own max.message.bytes has this one. */
export function defaultMaxMessageBytes(server: KafkaServer): number {
  return Math.min(server.maxMessageBytes, MAX_MESSAGE_BYTES);
}

/** The largest record batch a producer may send to this topic. */
export function topicMaxMessageBytes(server: KafkaServer, t: TopicInfo): number {
  const own = t.config['max.message.bytes'];
  return typeof own === 'number' ? own : server.maxMessageBytes;
}

export function topicConfigs(server: KafkaServer, t: TopicInfo): Array<{ name: string; value: string; isDefault: boolean; type: number }> {
  return topicConfigEntries(t, defaultMaxMessageBytes(server)).map((e) => ({ ...e, type: TYPE[e.type] }));
}

/** A refusal with Kafka's code: the engine's TopicConfigProblem, or one of the listener's own (a null value, an unknown operation). */
class ConfigProblem extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Applies one config as the engine's settings take it, with Kafka's code when refused. */
function applyTopicConfig(settings: TopicSettings, name: string, value: string | null): void {
  try {
    applySetting(settings, name, value);
  } catch (error) {
    if (error instanceof TopicConfigProblem) throw new ConfigProblem(ERR[error.kind], error.message);
    throw error;
  }
}

/**
 * Validates a CreateTopics config list; returns the settings, or Kafka's code
 * and message. Configs this broker does not keep are passed over, so that a
 * tool's usual creation settings (segment.bytes, min.insync.replicas) do not
 * stop a topic from being created.
 */
export function createTopicSettings(configs: Array<{ name: string; value: string | null }>): TopicSettings | { errorCode: number; errorMessage: string } {
  const settings: TopicSettings = { ...DEFAULT_SETTINGS };
  try {
    for (const c of configs) {
      if (c.value === null) throw new ConfigProblem(ERR.INVALID_REQUEST, `Null value not supported for topic configs: ${c.name}`);
      if (!(TOPIC_CONFIG_NAMES as readonly string[]).includes(c.name)) continue;
      applyTopicConfig(settings, c.name, c.value);
    }
  } catch (error) {
    if (error instanceof ConfigProblem) return { errorCode: error.code, errorMessage: error.message };
    throw error;
  }
  return settings;
}

function describeConfigs(ctx: RequestContext, req: DescribeConfigsRequest): Encodable<DescribeConfigsResponse> {
  const engine = ctx.server.engine();
  return {
    throttleTimeMs: 0,
    results: req.resources.map((res) => {
      const base = { resourceType: res.resourceType, resourceName: res.resourceName };
      let configs: Array<{ name: string; value: string; isDefault: boolean; type: number }>;
      if (res.resourceType === TOPIC) {
        const t = engine.topicInfo(res.resourceName);
        if (!t) return { ...base, errorCode: ERR.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `Topic ${res.resourceName} does not exist`, configs: [] };
        configs = topicConfigs(ctx.server, t);
      } else if (res.resourceType === BROKER) {
        configs = [
          { name: 'auto.create.topics.enable', value: String(ctx.server.autoCreateTopics), isDefault: ctx.server.autoCreateTopics, type: TYPE.BOOLEAN },
          { name: 'num.partitions', value: String(ctx.server.defaultPartitions), isDefault: ctx.server.defaultPartitions === 1, type: TYPE.INT },
        ];
      } else {
        return { ...base, errorCode: ERR.INVALID_REQUEST, errorMessage: `resource type ${res.resourceType} is not described by this broker`, configs: [] };
      }
      const keys = res.configurationKeys;
      return {
        ...base,
        errorCode: 0,
        errorMessage: null,
        configs: configs
          .filter((c) => !keys || keys.includes(c.name))
          .map((c) => ({
            name: c.name,
            value: c.value,
            readOnly: res.resourceType === BROKER,
            isDefault: c.isDefault,
            configSource: c.isDefault ? 5 : res.resourceType === TOPIC ? 1 : 4,
            isSensitive: false,
            synonyms: [],
            configType: ctx.version >= 3 ? c.type : 0,
            documentation: null,
          })),
      };
    }),
  };
}

/**
 * One topic's changes, all or none: each is checked before any is stored.
 * `replace` (AlterConfigs): the configs not named return to their defaults.
 */
function alterTopic(ctx: RequestContext, name: string, configs: Array<{ name: string; configOperation: number; value: string | null }>, validateOnly: boolean, replace = false): { errorCode: number; errorMessage: string | null } {
  const engine = ctx.server.engine();
  const t = engine.topicInfo(name);
  if (!t) return { errorCode: ERR.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `Topic ${name} does not exist` };
  const settings: TopicSettings = replace ? { ...DEFAULT_SETTINGS } : settingsOf(t);
  try {
    for (const c of configs) {
      if (c.configOperation === DELETE) {
        applyTopicConfig(settings, c.name, null);
      } else if (c.configOperation === SET) {
        if (c.value === null) throw new ConfigProblem(ERR.INVALID_REQUEST, `Null value not supported for : ${c.name}`);
        applyTopicConfig(settings, c.name, c.value);
      } else if (c.configOperation === APPEND || c.configOperation === SUBTRACT) {
        if (!(TOPIC_CONFIG_NAMES as readonly string[]).includes(c.name)) applyTopicConfig(settings, c.name, c.value);
        if (c.name !== 'cleanup.policy') throw new ConfigProblem(ERR.INVALID_CONFIG, `Config value ${c.configOperation === APPEND ? 'append' : 'subtract'} is not allowed for config key: ${c.name}`);
        if (c.value === null) throw new ConfigProblem(ERR.INVALID_REQUEST, `Null value not supported for : ${c.name}`);
        // cleanup.policy is a list: append adds what is missing, subtract removes what is there.
        const current = policyItems(settings);
        const given = c.value.split(',').map((s) => s.trim()).filter((s) => s !== '');
        const next = c.configOperation === APPEND ? [...current, ...given.filter((g) => !current.includes(g))] : current.filter((x) => !given.includes(x));
        // Subtracting every item leaves Kafka's default.
        applyTopicConfig(settings, c.name, next.length === 0 ? null : next.join(','));
      } else {
        throw new ConfigProblem(ERR.INVALID_REQUEST, `Unknown config operation ${c.configOperation} for ${c.name}`);
      }
    }
  } catch (error) {
    if (error instanceof ConfigProblem) return { errorCode: error.code, errorMessage: error.message };
    throw error;
  }
  if (validateOnly) return { errorCode: 0, errorMessage: null };
  try {
    engine.setTopicConfig(name, settings);
    ctx.server.logger.info('kafka topic configs changed', { topic: name, configs: configs.map((c) => c.name) });
    return { errorCode: 0, errorMessage: null };
  } catch (error) {
    return { errorCode: codeOf(error, ERR.INVALID_CONFIG), errorMessage: (error as Error).message };
  }
}

function incrementalAlterConfigs(ctx: RequestContext, req: IncrementalAlterConfigsRequest): Encodable<IncrementalAlterConfigsResponse> {
  return alterResources(ctx, req.resources, req.validateOnly, false);
}

/** The older AlterConfigs: a resource's whole config is the set given (KIP-339 explains why it gave way to the incremental one). */
function alterConfigs(ctx: RequestContext, req: AlterConfigsRequest): Encodable<AlterConfigsResponse> {
  const resources = req.resources.map((r) => ({ resourceType: r.resourceType, resourceName: r.resourceName, configs: r.configs.map((c) => ({ name: c.name, value: c.value, configOperation: SET })) }));
  return alterResources(ctx, resources, req.validateOnly, true);
}

function alterResources(
  ctx: RequestContext,
  resources: Array<{ resourceType: number; resourceName: string; configs: Array<{ name: string; configOperation: number; value: string | null }> }>,
  validateOnly: boolean,
  replace: boolean,
): Encodable<IncrementalAlterConfigsResponse> {
  const req = { resources };
  const seen = new Map<string, number>();
  for (const r of req.resources) seen.set(`${r.resourceType}\0${r.resourceName}`, (seen.get(`${r.resourceType}\0${r.resourceName}`) ?? 0) + 1);
  return {
    throttleTimeMs: 0,
    responses: req.resources.map((res): Encodable<AlterConfigsResourceResponse> => {
      const base = { resourceType: res.resourceType, resourceName: res.resourceName };
      if (seen.get(`${res.resourceType}\0${res.resourceName}`)! > 1) return { ...base, errorCode: ERR.INVALID_REQUEST, errorMessage: 'Duplicate resource in request' };
      const names = res.configs.map((c) => c.name);
      if (new Set(names).size !== names.length) return { ...base, errorCode: ERR.INVALID_REQUEST, errorMessage: 'Error due to duplicate config keys' };
      if (res.resourceType === TOPIC) return { ...base, ...alterTopic(ctx, res.resourceName, res.configs, validateOnly, replace) };
      if (res.resourceType === BROKER) {
        if (res.resourceName !== '' && res.resourceName !== String(NODE_ID)) return { ...base, errorCode: ERR.INVALID_REQUEST, errorMessage: `Unexpected broker id, expected ${NODE_ID} or empty string, but received ${res.resourceName}` };
        return { ...base, errorCode: ERR.INVALID_REQUEST, errorMessage: `Cannot update these configs dynamically: ${names.join(', ')} (this broker's configs are set when its Kafka listener starts)` };
      }
      return { ...base, errorCode: ERR.INVALID_REQUEST, errorMessage: `Unsupported resource type ${res.resourceType}: this broker alters topic configs` };
    }),
  };
}

export const configApis: ApiTable = {
  32: { min: 0, max: 4, handle: describeConfigs },
  33: { min: 0, max: 2, handle: alterConfigs },
  44: { min: 0, max: 1, handle: incrementalAlterConfigs },
  // Client quotas: this broker enforces none, so every filter matches nothing (kafka-configs --describe asks for them).
  48: { min: 0, max: 1, handle: () => ({ throttleTimeMs: 0, errorCode: 0, errorMessage: null, entries: [] }) },
};
