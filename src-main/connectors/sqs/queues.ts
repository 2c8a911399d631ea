/**
 * An SQS queue's attributes as the contract's queue: the counts SQS keeps
 * (approximate, refreshed by SQS about once a minute on AWS), and every attribute
 * under `arguments`, the redrive policy and allow policy parsed.
 */
import type { QueueInfo } from '../../contract/types.js';
import { queueNameOfArn } from './messages.js';

/** GetQueueAttributes' answer for `All`. */
export interface QueueAttributes {
  QueueArn?: string;
  ApproximateNumberOfMessages?: string;
  ApproximateNumberOfMessagesNotVisible?: string;
  ApproximateNumberOfMessagesDelayed?: string;
  VisibilityTimeout?: string;
  MessageRetentionPeriod?: string;
  DelaySeconds?: string;
  RedrivePolicy?: string;
  RedriveAllowPolicy?: string;
  FifoQueue?: string;
  ContentBasedDeduplication?: string;
  [name: string]: string | undefined;
}

export interface RedrivePolicy {
  deadLetterTargetArn: string;
  deadLetterQueue: string;
  maxReceiveCount: number;
}

export function parseRedrivePolicy(text: string | undefined): RedrivePolicy | null {
  if (!text) return null;
  try {
    const p = JSON.parse(text) as { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown };
    if (typeof p.deadLetterTargetArn !== 'string') return null;
    return { deadLetterTargetArn: p.deadLetterTargetArn, deadLetterQueue: queueNameOfArn(p.deadLetterTargetArn), maxReceiveCount: Number(p.maxReceiveCount) || 0 };
  } catch {
    return null;
  }
}

export function isFifo(a: QueueAttributes): boolean {
  return a.FifoQueue === 'true';
}

function count(v: string | undefined): number {
  const n = Number(v ?? '0');
  return Number.isFinite(n) ? n : 0;
}

function parsedJson(text: string | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function toQueueInfo(name: string, url: string, a: QueueAttributes, deadLetterFor: string[]): QueueInfo {
  const ready = count(a.ApproximateNumberOfMessages);
  const unacked = count(a.ApproximateNumberOfMessagesNotVisible);
  const delayed = count(a.ApproximateNumberOfMessagesDelayed);
  const args: Record<string, unknown> = { ...a, QueueUrl: url };
  const redrive = parsedJson(a.RedrivePolicy);
  if (redrive !== undefined) args.RedrivePolicy = redrive;
  const allow = parsedJson(a.RedriveAllowPolicy);
  if (allow !== undefined) args.RedriveAllowPolicy = allow;
  return {
    name,
    durable: true,
    autoDelete: false,
    exclusive: false,
    arguments: args,
    messages: ready + unacked + delayed,
    ready,
    unacked,
    delayed,
    bytes: 0,
    // SQS does not say how many are receiving.
    consumers: 0,
    deadLetterFor,
    rates: { publish: 0, deliver: 0, ack: 0, redeliver: 0 },
  };
}
