/**
 * A topic's settings by Kafka's config names (retention.ms, retention.bytes,
 * max.message.bytes, cleanup.policy, min.compaction.lag.ms,
 * delete.retention.ms, min.cleanable.dirty.ratio), typed and validated as
 * Kafka's LogConfig defines them and with Kafka's messages, for the Kafka
 * listener's config APIs and for the embedded connection's topic configs
 * alike. A value the engine cannot keep is a TopicConfigProblem naming the
 * config; the Kafka listener answers it with Kafka's error code.
 */
import { DEFAULT_DELETE_RETENTION_MS, DEFAULT_DIRTY_RATIO } from './compaction.js';
import type { TopicInfo } from './types.js';

/** A topic's settings as the engine takes them (null: the default). */
export interface TopicSettings {
  retentionMs: number | null;
  retentionBytes: number | null;
  maxMessageBytes: number | null;
  /** "compact", "delete" or both, as listed; null: "delete". */
  cleanupPolicy: string | null;
  minCompactionLagMs: number | null;
  deleteRetentionMs: number | null;
  minCleanableDirtyRatio: number | null;
}

export const DEFAULT_SETTINGS: TopicSettings = { retentionMs: null, retentionBytes: null, maxMessageBytes: null, cleanupPolicy: null, minCompactionLagMs: null, deleteRetentionMs: null, minCleanableDirtyRatio: null };

/** A config Kafka would refuse: INVALID_CONFIG (a value or name it does not take) or INVALID_REQUEST (no value). */
export class TopicConfigProblem extends Error {
  constructor(
    readonly kind: 'INVALID_CONFIG' | 'INVALID_REQUEST',
    readonly config: string,
    message: string,
  ) {
    super(message);
    this.name = 'TopicConfigProblem';
  }
}

export const TOPIC_CONFIG_NAMES = ['cleanup.policy', 'retention.ms', 'retention.bytes', 'max.message.bytes', 'min.compaction.lag.ms', 'delete.retention.ms', 'min.cleanable.dirty.ratio'] as const;

/** Kafka's max.message.bytes default: the Kafka listener's batch limit unless it is started with another. */
export const KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;




/** A double as Java prints it (0.5, 1.0). */
export function doubleText(v: number): string {
  return Number.isInteger(v) ? v.toFixed(1) : String(v);
}

/** Kafka's ConfigDef parse of a DOUBLE value within [0, 1] (min.cleanable.dirty.ratio's Range.between(0, 1)). */
function parseRatio(name: string, raw: string): number {
  const text = raw.trim();
  const n = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(n)) throw new TopicConfigProblem('INVALID_CONFIG', name, `Invalid value ${raw} for configuration ${name}: Not a number of type DOUBLE`);
  if (n < 0 || n > 1) throw new TopicConfigProblem('INVALID_CONFIG', name, `Invalid value ${raw} for configuration ${name}: Value must be ${n < 0 ? 'at least 0' : 'no more than 1'}`);
  return n;
}

/** Kafka's ConfigDef parse of a LONG or INT value, with its at-least bound. */
function parseNumber(name: string, raw: string, type: 'LONG' | 'INT', atLeast: number | null): number {
  const text = raw.trim();
  let n: bigint;
  try {
    if (!/^[+-]?\d+$/.test(text)) throw new Error();
    n = BigInt(text);
  } catch {
    throw new TopicConfigProblem('INVALID_CONFIG', name, `Invalid value ${raw} for configuration ${name}: Not a number of type ${type}`);
  }
  const [lo, hi] = type === 'INT' ? [-(2n ** 31n), 2n ** 31n - 1n] : [-(2n ** 63n), 2n ** 63n - 1n];
  if (n < lo || n > hi) throw new TopicConfigProblem('INVALID_CONFIG', name, `Invalid value ${raw} for configuration ${name}: Not a number of type ${type}`);
  if (atLeast !== null && n < BigInt(atLeast)) throw new TopicConfigProblem('INVALID_CONFIG', name, `Invalid value ${raw} for configuration ${name}: Value must be at least ${atLeast}`);
  // Beyond 2^53 is forever all the same (Long.MAX_VALUE is how Kafka users write "keep forever").
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

/** Kafka's cleanup.policy: a non-empty list of "compact" and "delete"; returns it normalised (null for plain "delete"). */
function checkCleanupPolicy(raw: string): string | null {
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const bad = items.find((s) => s !== 'compact' && s !== 'delete');
  if (bad !== undefined) throw new TopicConfigProblem('INVALID_CONFIG', 'cleanup.policy', `Invalid value ${raw} for configuration cleanup.policy: String must be one of: compact, delete`);
  if (items.length === 0) throw new TopicConfigProblem('INVALID_CONFIG', 'cleanup.policy', `Invalid value ${raw} for configuration cleanup.policy: empty list, expected compact, delete or both`);
  const unique = [...new Set(items)];
  return unique.length === 1 && unique[0] === 'delete' ? null : unique.join(',');
}

/** A topic's cleanup.policy as a list. */
export function policyItems(settings: TopicSettings): string[] {
  return (settings.cleanupPolicy ?? 'delete').split(',');
}

/** Applies one topic config (a value, or null for its default) to settings; throws TopicConfigProblem when Kafka would refuse it. */
export function applyTopicConfig(settings: TopicSettings, name: string, value: string | null): void {
  switch (name) {
    case 'retention.ms': {
      const n = value === null ? -1 : parseNumber(name, value, 'LONG', -1);
      settings.retentionMs = n === -1 ? null : n;
      return;
    }
    case 'retention.bytes': {
      // No lower bound in Kafka: any negative size means no size limit.
      const n = value === null ? -1 : parseNumber(name, value, 'LONG', null);
      settings.retentionBytes = n < 0 ? null : n;
      return;
    }
    case 'max.message.bytes':
      settings.maxMessageBytes = value === null ? null : parseNumber(name, value, 'INT', 0);
      return;
    case 'cleanup.policy':
      settings.cleanupPolicy = value === null ? null : checkCleanupPolicy(value);
      return;
    case 'min.compaction.lag.ms':
      settings.minCompactionLagMs = value === null ? null : parseNumber(name, value, 'LONG', 0);
      return;
    case 'delete.retention.ms':
      settings.deleteRetentionMs = value === null ? null : parseNumber(name, value, 'LONG', 0);
      return;
    case 'min.cleanable.dirty.ratio':
      settings.minCleanableDirtyRatio = value === null ? null : parseRatio(name, value);
      return;
    default:
      throw new TopicConfigProblem('INVALID_CONFIG', name, `Unknown topic config name: ${name} (this broker keeps ${TOPIC_CONFIG_NAMES.join(', ')})`);
  }
}

export function settingsOf(t: TopicInfo): TopicSettings {
  const own = t.config['max.message.bytes'];
  const policy = t.config['cleanup.policy'];
  const lag = t.config['min.compaction.lag.ms'];
  const tombstones = t.config['delete.retention.ms'];
  const ratio = t.config['min.cleanable.dirty.ratio'];
  return {
    retentionMs: t.retentionMs,
    retentionBytes: t.retentionBytes,
    maxMessageBytes: typeof own === 'number' ? own : null,
    cleanupPolicy: typeof policy === 'string' && policy !== 'delete' ? policy : null,
    // The engine shows compaction settings on compacted topics with their defaults; only a set value is the topic's own.
    minCompactionLagMs: typeof lag === 'number' && lag !== 0 ? lag : null,
    deleteRetentionMs: typeof tombstones === 'number' && tombstones !== DEFAULT_DELETE_RETENTION_MS ? tombstones : null,
    minCleanableDirtyRatio: typeof ratio === 'number' && ratio !== DEFAULT_DIRTY_RATIO ? ratio : null,
  };
}

/** The settings' configs as Kafka describes them, with their types; `maxMessageBytes` is the value a topic without its own has. */
export function topicConfigEntries(t: TopicInfo, maxMessageBytes: number): Array<{ name: string; value: string; isDefault: boolean; type: 'LIST' | 'LONG' | 'INT' | 'DOUBLE' }> {
  const own = t.config['max.message.bytes'];
  const s = settingsOf(t);
  return [
    { name: 'cleanup.policy', value: s.cleanupPolicy ?? 'delete', isDefault: s.cleanupPolicy === null, type: 'LIST' },
    { name: 'retention.ms', value: String(t.retentionMs ?? -1), isDefault: t.retentionMs === null, type: 'LONG' },
    { name: 'retention.bytes', value: String(t.retentionBytes ?? -1), isDefault: t.retentionBytes === null, type: 'LONG' },
    { name: 'max.message.bytes', value: String(typeof own === 'number' ? own : maxMessageBytes), isDefault: typeof own !== 'number', type: 'INT' },
    { name: 'min.compaction.lag.ms', value: String(s.minCompactionLagMs ?? 0), isDefault: s.minCompactionLagMs === null, type: 'LONG' },
    { name: 'delete.retention.ms', value: String(s.deleteRetentionMs ?? DEFAULT_DELETE_RETENTION_MS), isDefault: s.deleteRetentionMs === null, type: 'LONG' },
    { name: 'min.cleanable.dirty.ratio', value: doubleText(s.minCleanableDirtyRatio ?? DEFAULT_DIRTY_RATIO), isDefault: s.minCleanableDirtyRatio === null, type: 'DOUBLE' },
  ];
}

/**
 * Applies configs given by name (null: back to the default) to `base`, all or
 * none: the first one refused throws a TopicConfigProblem naming it.
 */
export function withTopicConfigs(base: TopicSettings, configs: Record<string, string | null>): TopicSettings {
  const settings = { ...base };
  for (const [name, value] of Object.entries(configs)) applyTopicConfig(settings, name, value);
  return settings;
}
