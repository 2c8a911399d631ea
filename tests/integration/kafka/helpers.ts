/**
 * Shared pieces of the Kafka integration suites: connectors against the test
 * broker, unique topic names, and kcat (librdkafka) as an independent client.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Admin } from '@platformatic/kafka';
import type { KafkaConnectionConfig } from '../../../src-main/contract/operations.js';
import type { AuditEntry } from '../../../src-main/contract/types.js';
import type { Logger } from '../../../src-main/ground/logger.js';
import { createKafkaConnector, type KafkaConnector, type KafkaConnectorOptions } from '../../../src-main/connectors/kafka/index.js';
import type { ConnectorDeps } from '../../../src-main/connectors/registry.js';
import type { KafkaTestBroker } from '../../kafka/broker.js';

export interface TestDeps extends ConnectorDeps {
  lines: string[];
  audits: AuditEntry[];
}

export function testDeps(): TestDeps {
  const lines: string[] = [];
  const audits: AuditEntry[] = [];
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) => lines.push(`${level} ${message} ${fields ? JSON.stringify(fields) : ''}`);
  const logger: Logger = { info: log('info'), warn: log('warn'), error: log('error') };
  return {
    logger,
    lines,
    audits,
    audit: {
      record(entry) {
        const i = audits.findIndex((a) => a.id === entry.id);
        if (i >= 0) audits[i] = { ...audits[i]!, count: entry.count, state: entry.state };
        else audits.push({ ...entry });
      },
      list: (connectionId, limit) => audits.filter((a) => a.connectionId === connectionId).slice(-limit).reverse(),
    },
  };
}

export function config(broker: KafkaTestBroker, extra: Partial<KafkaConnectionConfig> = {}): KafkaConnectionConfig {
  return { kind: 'kafka', name: 'test kafka', brokers: broker.brokers, readOnly: false, ...extra } as KafkaConnectionConfig;
}

export function connect(broker: KafkaTestBroker, extra: Partial<KafkaConnectionConfig> = {}, options: KafkaConnectorOptions = {}, deps: TestDeps = testDeps()): KafkaConnector {
  return createKafkaConnector(`k-${randomUUID().slice(0, 8)}`, config(broker, extra), deps, { historyIntervalMs: 0, ...options });
}

export function topicName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export async function createTopic(broker: KafkaTestBroker, name: string, partitions: number, configs: Array<{ name: string; value: string }> = []): Promise<void> {
  const admin = new Admin({ clientId: 'test-admin', bootstrapBrokers: broker.brokers });
  try {
    await admin.createTopics({ topics: [name], partitions, replicas: -1, configs });
    // Wait until every partition has a leader (up to a minute on a loaded machine).
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const md = await admin.metadata({ topics: [name], forceUpdate: true }).catch(() => null);
      const t = md?.topics.get(name);
      if (t && t.partitions.length === partitions && t.partitions.every((p) => p.leader >= 0)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`topic ${name} has no leaders`);
  } finally {
    await admin.close();
  }
}

export const kcatAvailable = !spawnSync('kcat', ['-V'], { stdio: 'ignore' }).error;

/** Runs kcat with `input` on stdin; resolves with stdout as bytes. */
export function kcat(args: string[], input?: Buffer | string, timeoutMs = 60_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('kcat', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`kcat ${args.join(' ')} exited with ${code}: ${err}`));
    });
    child.stdin.end(input ?? '');
  });
}

export interface KcatMessage {
  topic: string;
  partition: number;
  offset: number;
  ts: number;
  headers: string[] | null;
  key: string | null;
  payload: string | null;
}

/** Everything in a topic (or one partition), read by kcat as JSON. */
export async function kcatRead(broker: KafkaTestBroker, topic: string, partition?: number): Promise<KcatMessage[]> {
  const args = ['-b', broker.brokers[0]!, '-C', '-t', topic, '-o', 'beginning', '-e', '-J', '-q'];
  if (partition !== undefined) args.push('-p', String(partition));
  const out = (await kcat(args)).toString('utf8');
  return out
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as KcatMessage);
}

/** Polls until `fn` returns something truthy; the time is an upper bound for a loaded machine, not an expectation. */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 60_000, stepMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
