/**
 * Which topics are dead-letter topics, and which topics they serve. By name:
 * Spring Kafka's `<topic>.DLT`, the common `<topic>-dlt`, anything starting
 * with `dlq` (Kafka Connect's `dlq-<connector>` and friends), or the
 * connection's own pattern (a regular expression; its first capture group,
 * when it has one, is the original topic). The records themselves say more:
 * Spring's `kafka_dlt-original-topic` and Connect's `__connect.errors.topic`
 * headers name the topic each record came from.
 */
import { ApiError } from '../../contract/errors.js';

export interface DeadLetterNaming {
  /** True when `topic` is a dead-letter topic. */
  isDeadLetter(topic: string): boolean;
  /** The original topic the name points at, when the name says. */
  sourceFromName(topic: string): string | null;
}

const BUILT_IN: Array<{ re: RegExp; source: (m: RegExpExecArray) => string | null }> = [
  { re: /^(.+)\.DLT$/i, source: (m) => m[1]! },
  { re: /^(.+)[-_.]dlt$/i, source: (m) => m[1]! },
  { re: /^(.+)[-_.]dlq$/i, source: (m) => m[1]! },
  { re: /^dlq(?:[-_.](.+))?$/i, source: (m) => m[1] ?? null },
  { re: /^dlq.+$/i, source: () => null },
];

export function deadLetterNaming(pattern?: string): DeadLetterNaming {
  let custom: RegExp | null = null;
  if (pattern) {
    try {
      custom = new RegExp(pattern);
    } catch (error) {
      throw new ApiError('INVALID_ARGUMENT', `deadLetterPattern is not a valid regular expression: ${(error as Error).message}`, 'deadLetterPattern');
    }
  }
  const match = (topic: string): { source: string | null } | null => {
    if (topic.startsWith('__')) return null;
    if (custom) {
      const m = custom.exec(topic);
      if (m) return { source: m[1] ?? null };
    }
    for (const rule of BUILT_IN) {
      const m = rule.re.exec(topic);
      if (m) return { source: rule.source(m) };
    }
    return null;
  };
  return {
    isDeadLetter: (topic) => match(topic) !== null,
    sourceFromName: (topic) => match(topic)?.source ?? null,
  };
}
