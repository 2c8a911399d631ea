/**
 * Kafka re-drive beside a kcat pipe on the same machine, in the same run:
 * `kcat -C -e … | kcat -P -X acks=all` copies a dead-letter topic to a topic
 * of its own (keys kept through a tab delimiter; a pipe cannot carry
 * headers), and Brokerdeck re-drives the same records back to their
 * original topic twice: first with a fresh connector (cold: connecting,
 * metadata, the ledger's creation), then a second dead-letter topic on the
 * same connector. Records are 1 KiB with Spring's dead-letter headers.
 * An untimed round of both warms the broker first; then each size runs
 * ROUNDS rounds and reports the median ratio, every round in the notes.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Admin, Producer } from '@platformatic/kafka';
import { createKafkaConnector, type KafkaConnector } from '../../src-main/connectors/kafka/index.js';
import type { KafkaConnectionConfig } from '../../src-main/contract/operations.js';
import { silentLogger } from '../../src-main/ground/logger.js';
import type { BenchResult } from './bench-result.js';
import { cpuMeter, cpuNote, type CpuSpent } from './process-cpu.js';

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

/**
 * One untimed round of both tools on topics of their own before any timed run: a broker
 * started for the benchmark has compiled little of its produce and fetch paths yet, and
 * whichever tool ran first would pay for that. Brokerdeck's timed runs still use
 * connectors made for them (the cold run connects, reads metadata and creates its ledger).
 */
export async function warmBroker(brokers: string, admin: Admin, n: number): Promise<void> {
  const id = randomUUID().slice(0, 8);
  const original = `bench-warm-${id}`;
  const dlt = `${original}.DLT`;
  const copy = `bench-warm-kcat-${id}`;
  const topics = [original, dlt, copy];
  await createTopic(admin, original, ORIGINAL_PARTITIONS);
  await createTopic(admin, copy, ORIGINAL_PARTITIONS);
  await createTopic(admin, dlt, DLT_PARTITIONS);
  const config = { kind: 'kafka', name: 'bench-warm', brokers: [brokers], readOnly: false } as KafkaConnectionConfig;
  const c = createKafkaConnector('bench-warm', config, { logger: silentLogger, audit: { record: () => {}, list: () => [] } }, { historyIntervalMs: 0 });
  try {
    await fillDeadLetters(brokers, dlt, original, n);
    await kcatPipe(brokers, dlt, copy);
    await redrive(c, dlt, n);
  } finally {
    await c.close();
    await admin.deleteTopics({ topics }).catch(() => {});
  }
}

const rate = (n: number, seconds: number) => Math.round(n / seconds);
const fmt = (n: number) => n.toLocaleString('en');

/** Rounds per size: the broker's speed drifts within a run (its JIT, its garbage collector), so one pair decides nothing. */
export const ROUNDS = 3;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Round {
  kcat: number;
  cold: number;
  second: number;
  /** CPU spent in each run (see process-cpu.ts). */
  cpu: { kcat: CpuSpent; cold: CpuSpent; second: CpuSpent };
}

/**
 * One round at one size, on topics of its own: the kcat pipe, then Brokerdeck's first re-drive
 * with a connector made just now (cold: connecting, metadata, the ledger's creation) and a second
 * one on the same connector; `kcatFirst` false runs Brokerdeck's two first. Rates in records/s.
 */
async function round(brokers: string, admin: Admin, n: number, kcatFirst: boolean, brokerPid: number | null): Promise<Round> {
  const id = randomUUID().slice(0, 8);
  const original = `bench-redrive-${id}`;
  const dlts = [`${original}.DLT`, `${original}-b.DLT`, `${original}-k.DLT`];
  const kcatTarget = `bench-kcat-${id}`;
  const topics = [original, kcatTarget, ...dlts];
  // Every dead-letter topic names the same original topic in its headers.
  for (const t of [original, kcatTarget]) await createTopic(admin, t, ORIGINAL_PARTITIONS);
  for (const t of dlts) await createTopic(admin, t, DLT_PARTITIONS);
  const config = { kind: 'kafka', name: 'bench-redrive', brokers: [brokers], readOnly: false } as KafkaConnectionConfig;
  let c: KafkaConnector | null = null;
  try {
    for (const t of dlts) await fillDeadLetters(brokers, t, original, n);
    const kcat = async () => {
      const meter = cpuMeter(brokerPid);
      const seconds = await kcatPipe(brokers, dlts[2]!, kcatTarget);
      const cpu = meter();
      const got = await records(admin, kcatTarget);
      if (got !== n) throw new Error(`kcat copied ${got} of ${n} records to ${kcatTarget}`);
      return { rate: rate(n, seconds), cpu };
    };
    const timed = async (connector: KafkaConnector, dlt: string) => {
      const meter = cpuMeter(brokerPid);
      const seconds = await redrive(connector, dlt, n);
      return { rate: rate(n, seconds), cpu: meter() };
    };
    const ours = async () => {
      c = createKafkaConnector('bench-redrive', config, { logger: silentLogger, audit: { record: () => {}, list: () => [] } }, { historyIntervalMs: 0 });
      const cold = await timed(c, dlts[0]!);
      const second = await timed(c, dlts[1]!);
      return { cold, second };
    };
    const k = kcatFirst ? await kcat() : null;
    const o = await ours();
    const last = k ?? (await kcat());
    return { kcat: last.rate, cold: o.cold.rate, second: o.second.rate, cpu: { kcat: last.cpu, cold: o.cold.cpu, second: o.second.cpu } };
  } finally {
    if (c) await (c as KafkaConnector).close();
    await admin.deleteTopics({ topics }).catch(() => {});
  }
}

/**
 * One size: ROUNDS rounds, kcat going first in every other one. Each Brokerdeck run is compared
 * with the kcat pipe of its own round; the figure is the median of the rounds' ratios.
 */
export async function compareWithKcat(brokers: string, admin: Admin, n: number, brokerPid: number | null = null): Promise<BenchResult[]> {
  const rounds: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) rounds.push(await round(brokers, admin, n, i % 2 === 0, brokerPid));
  const out: BenchResult[] = [];
  for (const [label, kind] of [
    ['first re-drive, fresh connector (cold)', 'cold'],
    ['second re-drive, same connector', 'second'],
  ] as const) {
    const ratios = rounds.map((r) => r[kind] / r.kcat);
    const ratio = median(ratios);
    out.push({
      name: `kafka: re-drive ${fmt(n)} × 1 KiB records vs kcat pipe, ${label} (Brokerdeck/kcat, median of ${ROUNDS} rounds)`,
      value: Number(ratio.toFixed(2)),
      unit: '×',
      target: '≥ 1',
      pass: ratio >= 1,
      notes:
        rounds.map((r, i) => `round ${i + 1}: Brokerdeck ${fmt(r[kind])}, kcat ${fmt(r.kcat)} records/s, ${ratios[i]!.toFixed(2)}× (${cpuNote(r.cpu[kind], r.cpu.kcat, n, 'Kafka', 'records')})`).join('; ') +
        '. Brokerdeck: startRedrive to settled, acks=all, ledger, headers and keys kept, x-redriven-* added; kcat -C -e | kcat -P -X acks=all: keys kept, no headers (a pipe cannot carry them)',
    });
  }
  return out;
}
