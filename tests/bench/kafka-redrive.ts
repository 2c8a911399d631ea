/**
 * Kafka re-drive beside a kcat pipe on the same machine, in the same run:
 * `kcat -C -e … | kcat -P -X acks=all` copies a dead-letter topic to a topic
 * of its own (keys kept through a tab delimiter; a pipe cannot carry
 * headers), and Brokerdeck re-drives the same records back to their
 * original topic twice: first with a fresh connector (cold: connecting,
 * metadata, the ledger's creation), then a second dead-letter topic on the
 * same connector. Records are 1 KiB with Spring's dead-letter headers.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Admin, Producer } from '@platformatic/kafka';
import { createKafkaConnector, type KafkaConnector } from '../../src-main/connectors/kafka/index.js';
import type { KafkaConnectionConfig } from '../../src-main/contract/operations.js';
import { silentLogger } from '../../src-main/ground/logger.js';
import type { BenchResult } from './bench-result.js';

const ORIGINAL_PARTITIONS = 6;
const DLT_PARTITIONS = 3;

export const kcatInstalled = (): boolean => !spawnSync('kcat', ['-V'], { stdio: 'ignore' }).error;

export async function createTopic(admin: Admin, name: string, partitions: number): Promise<void> {
  await admin.createTopics({ topics: [name], partitions, replicas: -1 });
  for (let i = 0; i < 100; i++) {
    const t = (await admin.metadata({ topics: [name], forceUpdate: true }).catch(() => null))?.topics.get(name);
    if (t && t.partitions.every((p) => p.leader >= 0)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Fills a dead-letter topic as Spring's DeadLetterPublishingRecoverer would: 1 KiB values, keys, the original topic in a header. */
export async function fillDeadLetters(brokers: string, dlt: string, original: string, count: number): Promise<void> {
  const producer = new Producer({ clientId: 'bench-fill', bootstrapBrokers: [brokers], acks: 1 });
  const filler = 'x'.repeat(1024 - 40);
  try {
    const inflight: Array<Promise<unknown>> = [];
    for (let start = 0; start < count; start += 1_000) {
      const messages = [];
      for (let i = start; i < Math.min(count, start + 1_000); i++) {
        messages.push({
          topic: dlt,
          partition: i % DLT_PARTITIONS,
          key: Buffer.from(`order-${i}`),
          value: Buffer.from(`{"order":${String(i).padStart(8, '0')},"pad":"${filler}"}`),
          headers: new Map([
            [Buffer.from('kafka_dlt-original-topic'), Buffer.from(original)],
            [Buffer.from('kafka_dlt-exception-fqcn'), Buffer.from('java.lang.IllegalStateException')],
            [Buffer.from('kafka_dlt-exception-message'), Buffer.from(`order ${i} could not be processed`)],
          ]),
        });
      }
      inflight.push(producer.send({ messages }));
      if (inflight.length >= 4) await inflight.shift();
    }
    await Promise.all(inflight);
  } finally {
    await producer.close();
  }
}

async function records(admin: Admin, topic: string): Promise<number> {
  const t = (await admin.metadata({ topics: [topic], forceUpdate: true })).topics.get(topic)!;
  const offsets = await admin.listOffsets({ topics: [{ name: topic, partitions: Array.from({ length: t.partitionsCount }, (_, i) => ({ partitionIndex: i, timestamp: -1n })) }] });
  return offsets.reduce((n, x) => n + x.partitions.reduce((m, p) => m + Number(p.offset), 0), 0);
}

/** `kcat -C -e | kcat -P -X acks=all`, timed from the first process's start until the producer has exited (it flushes first). */
function kcatPipe(brokers: string, from: string, to: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const consumer = spawn('kcat', ['-b', brokers, '-C', '-t', from, '-o', 'beginning', '-e', '-q', '-K', '\t'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const producer = spawn('kcat', ['-b', brokers, '-P', '-t', to, '-K', '\t', '-X', 'acks=all'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let errors = '';
    producer.stderr.on('data', (d: Buffer) => (errors += d.toString()));
    consumer.stdout.pipe(producer.stdin);
    consumer.on('error', reject);
    producer.on('error', reject);
    producer.on('close', (code) => (code === 0 ? resolve((performance.now() - started) / 1000) : reject(new Error(`kcat -P exited with ${code}: ${errors.slice(-300)}`))));
  });
}

async function redrive(c: KafkaConnector, dlt: string, expected: number): Promise<number> {
  const started = performance.now();
  const { id } = await c.startRedrive({ source: dlt, all: true } as Parameters<KafkaConnector['startRedrive']>[0]);
  const job = await c.redriveSettled(id);
  const seconds = (performance.now() - started) / 1000;
  if (job?.state !== 'completed' || job.moved !== expected) throw new Error(`re-drive of ${dlt} ended ${job?.state} with ${job?.moved} of ${expected} moved: ${job?.error}`);
  return seconds;
}

const rate = (n: number, seconds: number) => Math.round(n / seconds);
const fmt = (n: number) => n.toLocaleString('en');

/**
 * One size: kcat, Brokerdeck cold, Brokerdeck second, kcat again; each
 * Brokerdeck run is compared with the mean of the two kcat runs around it.
 */
export async function compareWithKcat(brokers: string, admin: Admin, n: number): Promise<BenchResult[]> {
  const id = randomUUID().slice(0, 8);
  const original = `bench-redrive-${id}`;
  const dlts = [`${original}.DLT`, `${original}-b.DLT`];
  const kcatTargets = [`bench-kcat-${id}-1`, `bench-kcat-${id}-2`];
  const topics = [original, ...dlts, ...kcatTargets];
  // The second dead-letter topic names the same original topic in its headers.
  for (const t of [original, ...kcatTargets]) await createTopic(admin, t, ORIGINAL_PARTITIONS);
  for (const t of dlts) await createTopic(admin, t, DLT_PARTITIONS);
  const config = { kind: 'kafka', name: 'bench-redrive', brokers: [brokers], readOnly: false } as KafkaConnectionConfig;
  let c: KafkaConnector | null = null;
  try {
    for (const t of dlts) await fillDeadLetters(brokers, t, original, n);
    const kcat1 = await kcatPipe(brokers, dlts[0]!, kcatTargets[0]!);
    // A connector made just now: its first re-drive pays for connecting, metadata and the ledger.
    c = createKafkaConnector('bench-redrive', config, { logger: silentLogger, audit: { record: () => {}, list: () => [] } }, { historyIntervalMs: 0 });
    const cold = await redrive(c, dlts[0]!, n);
    const second = await redrive(c, dlts[1]!, n);
    const kcat2 = await kcatPipe(brokers, dlts[1]!, kcatTargets[1]!);
    for (const t of kcatTargets) {
      const got = await records(admin, t);
      if (got !== n) throw new Error(`kcat copied ${got} of ${n} records to ${t}`);
    }
    const kcatRate = (rate(n, kcat1) + rate(n, kcat2)) / 2;
    const out: BenchResult[] = [];
    for (const [label, seconds] of [
      ['first re-drive, fresh connector (cold)', cold],
      ['second re-drive, same connector', second],
    ] as const) {
      const ratio = rate(n, seconds) / kcatRate;
      out.push({
        name: `kafka: re-drive ${fmt(n)} × 1 KiB records vs kcat pipe, ${label} (Brokerdeck/kcat)`,
        value: Number(ratio.toFixed(2)),
        unit: '×',
        target: '≥ 1',
        pass: ratio >= 1,
        notes:
          `Brokerdeck ${fmt(rate(n, seconds))} records/s (${seconds.toFixed(2)} s from startRedrive to settled; acks=all, ledger, headers and keys kept); ` +
          `kcat -C -e | kcat -P -X acks=all ${fmt(rate(n, kcat1))} and ${fmt(rate(n, kcat2))} records/s (before and after; keys kept, no headers)`,
      });
    }
    return out;
  } finally {
    if (c) await c.close();
    await admin.deleteTopics({ topics }).catch(() => {});
  }
}
