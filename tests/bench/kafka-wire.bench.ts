/**
 * The embedded broker's Kafka listener beside a real Kafka (tests/kafka, KRaft,
 * one node) in the same run, measured by Kafka's own perf tools:
 * kafka-producer-perf-test (1 KiB records, acks=all) and
 * kafka-consumer-perf-test, each against both brokers, records/s and the
 * producer's latency percentiles. KAFKA_WIRE_BENCH_RECORDS sets the count
 * (default 200,000; the issue's figure is 1,000,000, which takes minutes on a
 * shared 2-core machine).
 */
import { execFile, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runKafkaScript } from '../kafka/control.js';
import { startWireBroker } from '../integration/kafka-wire/helpers.js';
import type { BenchResult as Result } from './bench-result.js';

const script = join(import.meta.dirname, '..', 'kafka', 'kafka.mjs');
const RECORDS = Number(process.env.KAFKA_WIRE_BENCH_RECORDS ?? 200_000);

function java(classpath: string, main: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('java', ['-Xms256m', '-Xmx1g', '-cp', classpath, main, ...args], { timeout: 20 * 60_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${main} failed: ${error.message}\n${stderr.split('\n').slice(-10).join('\n')}`)) : resolve(stdout),
    );
  });
}

interface Produced {
  rate: number;
  p50: number;
  p99: number;
}

/** "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, p50 ms 50th, p95 ms 95th, p99 ms 99th, p999 ms 99.9th." */
function parseProducer(out: string): Produced {
  const last = out.trim().split('\n').filter((l) => /records sent/.test(l)).pop() ?? '';
  const m = /([\d.]+) records\/sec.*?(\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th/.exec(last);
  if (!m) throw new Error(`producer perf output not understood: ${last}`);
  return { rate: Number(m[1]), p50: Number(m[2]), p99: Number(m[4]) };
}

/** The CSV line: start, end, MB, MB/s, nMsg, nMsg/s, rebalance ms, fetch ms, fetch MB/s, fetch nMsg/s. */
function parseConsumer(out: string): number {
  const line = out.trim().split('\n').filter((l) => /^\d{4}-/.test(l)).pop() ?? '';
  const cols = line.split(',').map((c) => c.trim());
  const rate = Number(cols[9] ?? cols[5]);
  if (!Number.isFinite(rate)) throw new Error(`consumer perf output not understood: ${out.slice(-300)}`);
  return rate;
}

async function measure(classpath: string, bootstrap: string, topic: string): Promise<{ produced: Produced; consumed: number }> {
  const produced = parseProducer(
    await java(classpath, 'org.apache.kafka.tools.ProducerPerformance', ['--topic', topic, '--num-records', String(RECORDS), '--record-size', '1024', '--throughput', '-1', '--producer-props', `bootstrap.servers=${bootstrap}`, 'acks=all', 'linger.ms=5', 'batch.size=262144']),
  );
  const consumed = parseConsumer(await java(classpath, 'org.apache.kafka.tools.ConsumerPerformance', ['--bootstrap-server', bootstrap, '--topic', topic, '--messages', String(RECORDS), '--timeout', '120000']));
  return { produced, consumed };
}

export async function run(): Promise<Result[]> {
  const cp = await runKafkaScript(['classpath'], 300_000);
  if (cp.code !== 0) return [{ name: 'kafka wire benchmarks', value: 0, unit: 'skipped', notes: 'Kafka jars unavailable (tests/kafka)' }];
  const classpath = cp.stdout.trim().split('\n').pop()!;
  const results: Result[] = [];

  const ours = await startWireBroker();
  let embedded;
  try {
    ours.host.live().createTopic('perf', { partitions: 1 });
    embedded = await measure(classpath, ours.bootstrap, 'perf');
  } finally {
    await ours.stop();
  }

  const stateFile = join(tmpdir(), 'brokerdeck-kafka', `wire-bench-${process.pid}.json`);
  const started = spawnSync(process.execPath, [script, 'start', '--state', stateFile], { encoding: 'utf8', timeout: 300_000 });
  const brokers = /^KAFKA_BROKERS=(.+)$/m.exec(started.stdout ?? '')?.[1]?.trim();
  let kafka: { produced: Produced; consumed: number } | null = null;
  try {
    if (brokers) {
      await java(classpath, 'org.apache.kafka.tools.TopicCommand', ['--bootstrap-server', brokers, '--create', '--topic', 'perf', '--partitions', '1']);
      kafka = await measure(classpath, brokers, 'perf');
    }
  } finally {
    spawnSync(process.execPath, [script, 'stop', '--state', stateFile], { stdio: 'ignore', timeout: 60_000 });
  }

  const vs = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}× Kafka's ${Math.round(b).toLocaleString('en')}` : 'real Kafka unavailable');
  const n = RECORDS.toLocaleString('en');
  results.push({ name: `kafka-producer-perf-test, ${n} × 1 KiB, acks=all, embedded`, value: Math.round(embedded.produced.rate), unit: 'records/s', target: '>= 1× Kafka (floor 0.5×)', pass: kafka ? embedded.produced.rate >= 0.5 * kafka.produced.rate : undefined, notes: vs(embedded.produced.rate, kafka?.produced.rate) });
  results.push({ name: `kafka-consumer-perf-test, ${n} × 1 KiB, embedded`, value: Math.round(embedded.consumed), unit: 'records/s', target: '>= 1× Kafka (floor 0.5×)', pass: kafka ? embedded.consumed >= 0.5 * kafka.consumed : undefined, notes: vs(embedded.consumed, kafka?.consumed) });
  results.push({ name: 'producer latency p50 / p99 at full speed, embedded', value: embedded.produced.p50, unit: 'ms p50', notes: `p99 ${embedded.produced.p99} ms; Kafka ${kafka ? `${kafka.produced.p50} / ${kafka.produced.p99} ms` : 'unavailable'}` });
  if (kafka) {
    results.push({ name: `kafka-producer-perf-test, ${n} × 1 KiB, acks=all, real Kafka`, value: Math.round(kafka.produced.rate), unit: 'records/s' });
    results.push({ name: `kafka-consumer-perf-test, ${n} × 1 KiB, real Kafka`, value: Math.round(kafka.consumed), unit: 'records/s' });
  }
  return results;
}
