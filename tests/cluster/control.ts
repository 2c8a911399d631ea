/**
 * The cluster scripts (rabbitmq-cluster.mjs, kafka-cluster.mjs), run through the
 * shared script runner, and what the global setup hands the tests.
 */
import { join } from 'node:path';

export { mustRun, parseLines, runScript, stopSync, whyUnavailable, type ScriptResult } from '../servers/control.js';

export const rabbitmqClusterScript = join(import.meta.dirname, 'rabbitmq-cluster.mjs');
export const kafkaClusterScript = join(import.meta.dirname, 'kafka-cluster.mjs');

export type RabbitClusterInfo =
  | { ok: true; stateFile: string; startSeconds: number; nodes: string[]; urls: string[]; managementUrls: string[] }
  | { ok: false; reason: string };

export type KafkaClusterInfo = { ok: true; stateFile: string; startSeconds: number; brokers: string[] } | { ok: false; reason: string };

declare module 'vitest' {
  export interface ProvidedContext {
    rabbitmqCluster: RabbitClusterInfo;
    kafkaCluster: KafkaClusterInfo;
    /** The short slice `npm test` runs (small counts, fewer faults), rather than the full `npm run test:cluster`. */
    clusterSlice: boolean;
  }
}
