/**
 * Pub/Sub topics and subscriptions as the contract's topics and queues, and
 * the pulls every reading operation shares.
 *
 * A subscription is a queue: each gets its own copy of what its topic receives and
 * hands it to whichever subscriber pulls it, until acknowledged. Pub/Sub's API does
 * not say how many messages a subscription holds (that is Cloud Monitoring's
 * num_undelivered_messages), so Brokerdeck counts them by pulling without
 * acknowledging and handing every message back at once (modifyAckDeadline 0), up
 * to BACKLOG_MAX: an estimate that misses messages a subscriber holds at that moment.
 * A subscription with a dead-letter policy is not counted that way unless the
 * connection accepts the delivery attempts it costs.
 */
import type { protos } from '@google-cloud/pubsub';
import type { QueueInfo, TopicInfo } from '../../contract/types.js';
import type { SubscriberClient } from './client.js';
import { shortName } from './client.js';
import type { ReceivedMessage } from './messages.js';

export type Subscription = protos.google.pubsub.v1.ISubscription;
export type Topic = protos.google.pubsub.v1.ITopic;

/** At most this many messages are counted (or browsed) per subscription: each is held until the count ends. */
export const BACKLOG_MAX = 1_000;

function seconds(d: protos.google.protobuf.IDuration | null | undefined): number | null {
  if (!d) return null;
  return Number(d.seconds ?? 0) + Number(d.nanos ?? 0) / 1e9;
}

/** Why a subscription's backlog cannot be counted by pulling, or null when it can. */
export function uncountable(s: Subscription, allowDeliveryAttemptRisk: boolean): string | null {
  if (s.pushConfig?.pushEndpoint) return 'a push subscription: Pub/Sub pushes its messages, they cannot be pulled';
  if (s.bigqueryConfig?.table || s.cloudStorageConfig?.bucket) return 'an export subscription: Pub/Sub writes its messages elsewhere';
  if (s.detached) return 'detached from its topic';
  if (s.deadLetterPolicy?.deadLetterTopic && !allowDeliveryAttemptRisk) {
    return 'it has a dead-letter policy: counting pulls each message, a delivery attempt (allowDeliveryAttemptRisk)';
  }
  return null;
}

export interface Backlog {
  count: number;
  /** The count stopped at BACKLOG_MAX: the subscription holds at least this many. */
  capped: boolean;
  /** Why it was not counted. */
  unknown: string | null;
}

export function settingsOf(s: Subscription, project: string, backlog: Backlog | null): Record<string, unknown> {
  const out: Record<string, unknown> = {
    topic: shortName(s.topic, project),
    ackDeadlineSeconds: s.ackDeadlineSeconds ?? 10,
    messageRetentionSeconds: seconds(s.messageRetentionDuration),
    retainAckedMessages: s.retainAckedMessages ?? false,
    filter: s.filter ?? '',
    enableMessageOrdering: s.enableMessageOrdering ?? false,
    enableExactlyOnceDelivery: s.enableExactlyOnceDelivery ?? false,
    deadLetterPolicy: s.deadLetterPolicy?.deadLetterTopic
      ? { deadLetterTopic: shortName(s.deadLetterPolicy.deadLetterTopic, project), maxDeliveryAttempts: s.deadLetterPolicy.maxDeliveryAttempts || 5 }
      : null,
    retryPolicy: s.retryPolicy ? { minimumBackoffSeconds: seconds(s.retryPolicy.minimumBackoff) ?? 10, maximumBackoffSeconds: seconds(s.retryPolicy.maximumBackoff) ?? 600 } : null,
    expirationTtlSeconds: s.expirationPolicy ? seconds(s.expirationPolicy.ttl) : null,
    pushEndpoint: s.pushConfig?.pushEndpoint || null,
    detached: s.detached ?? false,
    labels: { ...(s.labels ?? {}) },
  };
  if (backlog) {
    if (backlog.unknown) out.backlog = `not counted: ${backlog.unknown}`;
    else out.backlog = backlog.capped ? `at least ${backlog.count} (counted by pulling, up to ${BACKLOG_MAX})` : `${backlog.count} (counted by pulling)`;
  }
  return out;
}

export function toQueueInfo(s: Subscription, project: string, backlog: Backlog | null, deadLetterFor: string[]): QueueInfo {
  const n = backlog && !backlog.unknown ? backlog.count : 0;
  return {
    name: shortName(s.name, project),
    durable: true,
    autoDelete: s.expirationPolicy ? seconds(s.expirationPolicy.ttl) !== null : false,
    exclusive: false,
    arguments: settingsOf(s, project, backlog),
    messages: n,
    ready: n,
    // Messages a subscriber holds (pulled, not yet acknowledged) cannot be seen from outside.
    unacked: 0,
    delayed: 0,
    bytes: 0,
    consumers: 0,
    deadLetterFor,
    rates: { publish: 0, deliver: 0, ack: 0, redeliver: 0 },
  };
}

export function toTopicInfo(t: Topic, project: string, subscriptions: string[], deadLetterFor: string[]): TopicInfo {
  const config: Record<string, string | number | null> = {
    subscriptions: subscriptions.join(', '),
    messageRetentionSeconds: seconds(t.messageRetentionDuration),
    kmsKeyName: t.kmsKeyName || null,
    schema: t.schemaSettings?.schema ? shortName(t.schemaSettings.schema, project) : null,
    allowedPersistenceRegions: t.messageStoragePolicy?.allowedPersistenceRegions?.join(', ') || null,
  };
  for (const [k, v] of Object.entries(t.labels ?? {})) config[`label.${k}`] = v;
  return {
    name: shortName(t.name, project),
    partitions: [{ partition: 0, startOffset: 0, endOffset: 0, bytes: 0 }],
    messages: 0,
    bytes: 0,
    config,
    deadLetterFor,
    countsUnknown: true,
  };
}

export interface PullOptions {
  /** The emulator answers a returnImmediately pull with every message it has; Google Cloud may answer one with none, so an empty answer is followed by a short waiting pull. */
  emulator: boolean;
  maxPerPull?: number;
}

function isDeadline(error: unknown): boolean {
  const e = error as { code?: number; message?: string };
  return e?.code === 4 || /DEADLINE_EXCEEDED|Total timeout/.test(e?.message ?? '');
}

/** One pull; an empty list when Pub/Sub had nothing within the wait. */
export async function pullOnce(sub: SubscriberClient, path: string, max: number, wait: boolean): Promise<ReceivedMessage[]> {
  try {
    const [r] = await sub.pull({ subscription: path, maxMessages: max, returnImmediately: !wait }, { timeout: wait ? 1_500 : 30_000 });
    return r.receivedMessages ?? [];
  } catch (error) {
    if (wait && isDeadline(error)) return [];
    throw error;
  }
}

/**
 * Pulls up to `want` distinct messages without acknowledging them (each then held for
 * the subscription's ack deadline); a message Pub/Sub hands out twice (its deadline
 * ran out during a long read) is kept once, its second ack id too, so both are released.
 */
export async function pullUpTo(sub: SubscriberClient, path: string, want: number, o: PullOptions): Promise<{ messages: ReceivedMessage[]; ackIds: string[] }> {
  const messages: ReceivedMessage[] = [];
  const ackIds: string[] = [];
  const ids = new Set<string>();
  let empty = 0;
  while (messages.length < want && empty < 2) {
    const wait = !o.emulator && empty > 0;
    const got = await pullOnce(sub, path, Math.min(o.maxPerPull ?? 1_000, want - messages.length), wait);
    if (got.length === 0) {
      empty++;
      continue;
    }
    empty = 0;
    let fresh = 0;
    for (const r of got) {
      if (r.ackId) ackIds.push(r.ackId);
      const id = r.message?.messageId ?? '';
      if (ids.has(id)) continue;
      ids.add(id);
      messages.push(r);
      fresh++;
    }
    // Only copies of what was already read: the subscription has nothing else to give.
    if (fresh === 0) break;
  }
  return { messages, ackIds };
}

/** Hands messages back at once (ack deadline 0), so they are delivered again without waiting. */
export async function release(sub: SubscriberClient, path: string, ackIds: string[], onError: (error: unknown) => void): Promise<void> {
  for (let i = 0; i < ackIds.length; i += 500) {
    try {
      await sub.modifyAckDeadline({ subscription: path, ackIds: ackIds.slice(i, i + 500), ackDeadlineSeconds: 0 });
    } catch (error) {
      onError(error);
    }
  }
}

export async function extend(sub: SubscriberClient, path: string, ackIds: string[], seconds: number): Promise<void> {
  for (let i = 0; i < ackIds.length; i += 500) {
    await sub.modifyAckDeadline({ subscription: path, ackIds: ackIds.slice(i, i + 500), ackDeadlineSeconds: seconds });
  }
}

export async function acknowledge(sub: SubscriberClient, path: string, ackIds: string[]): Promise<void> {
  for (let i = 0; i < ackIds.length; i += 500) {
    await sub.acknowledge({ subscription: path, ackIds: ackIds.slice(i, i + 500) });
  }
}
