/**
 * The embedded broker's Kafka listener beside a real Kafka (tests/kafka, KRaft,
 * one node) in the same run, measured by Kafka's own perf tools:
 * kafka-producer-perf-test (1 KiB records, acks=all) and
 * kafka-consumer-perf-test, each against both brokers, records/s and the
 * producer's latency percentiles. KAFKA_WIRE_BENCH_RECORDS sets the count
 * (default 200,000; 1,000,000 takes minutes on a shared 2-core machine).
 *
 * Beside them, for both brokers: end-to-end latency at a steady 1,000
 * records/s of 1 KiB, produce to consume (kafka-wire-latency.ts; 15 s after a
 * 3 s warm-up, KAFKA_WIRE_BENCH_LATENCY_SECONDS sets the 15), and a topic of
 * KAFKA_WIRE_BENCH_BIG_RECORDS records of 100 bytes (default 10,000,000): the
 * broker process's resident memory with it and after a consumer has read it
 * from the middle, and the time to the first record at the middle offset
 * (kafka-wire-big.ts). The big topic is filled over the wire by
 * kafka-producer-perf-test on both brokers; KAFKA_WIRE_BENCH_BIG_FILL=engine
 * fills the embedded one through its engine instead, before its listener
 * starts (records with no stored batch, encoded on each fetch).
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runKafkaScript } from '../kafka/control.js';
import { startWireBroker } from '../integration/kafka-wire/helpers.js';
import type { BenchResult as Result } from './bench-result.js';
import { buildChild, fillThroughEngine, measureBig, startChildBroker, type BigFigures } from './kafka-wire-big.js';
import { measureLatency, type LatencyFigures } from './kafka-wire-latency.js';

const script = join(import.meta.dirname, '..', 'kafka', 'kafka.mjs');

/** A positive whole number from the environment, or the default; anything else names the variable. */
function countFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}: expected a positive whole number, got ${JSON.stringify(raw)}`);
  return n;
}

const RECORDS = countFromEnv('KAFKA_WIRE_BENCH_RECORDS', 200_000);
const BIG_RECORDS = countFromEnv('KAFKA_WIRE_BENCH_BIG_RECORDS', 10_000_000);
const LATENCY = { rate: 1000, seconds: countFromEnv('KAFKA_WIRE_BENCH_LATENCY_SECONDS', 15), warmupSeconds: 3, recordBytes: 1024 };
const BIG_FILL = process.env.KAFKA_WIRE_BENCH_BIG_FILL || 'wire';
if (BIG_FILL !== 'wire' && BIG_FILL !== 'engine') throw new Error(`KAFKA_WIRE_BENCH_BIG_FILL: expected wire or engine, got ${JSON.stringify(BIG_FILL)}`);
const BIG_TOPIC = 'big';
const BIG_RECORD_BYTES = 100;

/** The 1-minute load average now, for the notes: the machine is shared. */
function load(): string {
  return `load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`;
}

function fail(name: string, error: unknown): Result {
  return { name: `${name} (failed)`, value: 0, unit: 'failed', notes: String((error as Error).message ?? error).split('\n')[0]!.slice(0, 300) };
}

interface Big extends BigFigures {
  fillSeconds: number;
  fillRate: number;
  load: string;
}

interface Latency extends LatencyFigures {
  load: string;
}

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

/** Creates the big topic (one partition) and fills it with kafka-producer-perf-test in large batches; returns the seconds taken. */
async function fillOverWire(classpath: string, bootstrap: string): Promise<number> {
  await java(classpath, 'org.apache.kafka.tools.TopicCommand', ['--bootstrap-server', bootstrap, '--create', '--topic', BIG_TOPIC, '--partitions', '1']);
  const t0 = performance.now();
  await java(classpath, 'org.apache.kafka.tools.ProducerPerformance', ['--topic', BIG_TOPIC, '--num-records', String(BIG_RECORDS), '--record-size', String(BIG_RECORD_BYTES), '--throughput', '-1', '--producer-props', `bootstrap.servers=${bootstrap}`, 'acks=1', 'linger.ms=50', 'batch.size=1048576', 'buffer.memory=67108864']);
  return (performance.now() - t0) / 1000;
}

/** The embedded broker in a process of its own on a fresh data folder: filled, restarted, measured, removed. */
async function bigEmbedded(classpath: string): Promise<Big> {
  const work = mkdtempSync(join(tmpdir(), 'bd-kafka-wire-big-'));
  try {
    const child = await buildChild(work);
    const dataDir = join(work, 'data');
    mkdirSync(dataDir);
    let fillSeconds: number;
    if (BIG_FILL === 'engine') {
      fillSeconds = (await fillThroughEngine(child, dataDir, BIG_TOPIC, BIG_RECORDS, BIG_RECORD_BYTES)) / 1000;
    } else {
      const filling = await startChildBroker(child, dataDir);
      try {
        fillSeconds = await fillOverWire(classpath, `127.0.0.1:${filling.port}`);
      } finally {
        await filling.stop();
      }
    }
    const broker = await startChildBroker(child, dataDir);
    try {
      const figures = await measureBig(broker.port, broker.pid, BIG_TOPIC, BIG_RECORDS);
      return { ...figures, fillSeconds, fillRate: BIG_RECORDS / fillSeconds, load: load() };
    } finally {
      await broker.stop();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function kafkaScript(args: string[]): string {
  const r = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`kafka.mjs ${args[0]} failed: ${(r.stderr ?? '').split('\n').slice(-5).join(' ')}`);
  return r.stdout ?? '';
}

/** The real Kafka filled the same way, then stopped and started again on its data (kafka.mjs halt and resume), and measured. */
async function bigKafka(classpath: string, bootstrap: string, stateFile: string): Promise<Big> {
  const fillSeconds = await fillOverWire(classpath, bootstrap);
  kafkaScript(['halt', '--state', stateFile]);
  const resumed = kafkaScript(['resume', '--state', stateFile]);
  const pid = Number(/^KAFKA_PID=(\d+)$/m.exec(resumed)?.[1]);
  const port = Number(/^KAFKA_BROKERS=127\.0\.0\.1:(\d+)$/m.exec(resumed)?.[1]);
  if (!pid || !port) throw new Error(`kafka.mjs resume printed no pid or port: ${resumed.slice(-300)}`);
  const figures = await measureBig(port, pid, BIG_TOPIC, BIG_RECORDS);
  await java(classpath, 'org.apache.kafka.tools.TopicCommand', ['--bootstrap-server', bootstrap, '--delete', '--topic', BIG_TOPIC]);
  return { ...figures, fillSeconds, fillRate: BIG_RECORDS / fillSeconds, load: load() };
}

async function latency(bootstrap: string): Promise<Latency> {
  const figures = await measureLatency(bootstrap, 'latency', LATENCY);
  return { ...figures, load: load() };
}

async function attempt<T>(name: string, failures: Result[], work: () => Promise<T>): Promise<T | null> {
  try {
    return await work();
  } catch (error) {
    failures.push(fail(name, error));
    return null;
  }
}

export async function run(): Promise<Result[]> {
  const cp = await runKafkaScript(['classpath'], 300_000);
  if (cp.code !== 0) return [{ name: 'kafka wire benchmarks', value: 0, unit: 'skipped', notes: 'Kafka jars unavailable (tests/kafka)' }];
  const classpath = cp.stdout.trim().split('\n').pop()!;
  const results: Result[] = [];
  const failures: Result[] = [];

  const ours = await startWireBroker();
  let embedded;
  let embeddedLatency: Latency | null = null;
  try {
    ours.host.live().createTopic('perf', { partitions: 1 });
    embedded = await measure(classpath, ours.bootstrap, 'perf');
    embeddedLatency = await attempt('end-to-end latency, embedded', failures, () => latency(ours.bootstrap));
  } finally {
    await ours.stop();
  }
  const embeddedBig = await attempt(`topic of ${BIG_RECORDS.toLocaleString('en')} records, embedded`, failures, () => bigEmbedded(classpath));

  const stateFile = join(tmpdir(), 'brokerdeck-kafka', `wire-bench-${process.pid}.json`);
  const started = spawnSync(process.execPath, [script, 'start', '--state', stateFile], { encoding: 'utf8', timeout: 300_000 });
  const brokers = /^KAFKA_BROKERS=(.+)$/m.exec(started.stdout ?? '')?.[1]?.trim();
  let kafka: { produced: Produced; consumed: number } | null = null;
  let kafkaLatency: Latency | null = null;
  let kafkaBig: Big | null = null;
  try {
    if (brokers) {
      await java(classpath, 'org.apache.kafka.tools.TopicCommand', ['--bootstrap-server', brokers, '--create', '--topic', 'perf', '--partitions', '1']);
      kafka = await measure(classpath, brokers, 'perf');
      kafkaLatency = await attempt('end-to-end latency, real Kafka', failures, () => latency(brokers));
      kafkaBig = await attempt(`topic of ${BIG_RECORDS.toLocaleString('en')} records, real Kafka`, failures, () => bigKafka(classpath, brokers, stateFile));
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
  results.push(...latencyResults(embeddedLatency, kafkaLatency));
  results.push(...bigResults(embeddedBig, kafkaBig));
  return [...results, ...failures];
}

const ms = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1));
const mb = (v: number) => v.toFixed(0);
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

function latencyResults(ours: Latency | null, kafka: Latency | null): Result[] {
  const what = `end-to-end latency produce → consume, 1,000 records/s × 1 KiB, acks=all, linger 0, ${LATENCY.seconds} s`;
  const detail = (l: Latency) => `${l.samples.toLocaleString('en')} records counted, ${l.missing} missing, producer kept ${Math.round(l.rate)}/s, max ${ms(l.max)} ms; ${l.load}`;
  const out: Result[] = [];
  if (ours) {
    out.push({ name: `${what}, p50, embedded`, value: Number(ms(ours.p50)), unit: 'ms', target: '<= Kafka', pass: kafka ? ours.p50 <= kafka.p50 : undefined, notes: kafka ? `${ratio(ours.p50, kafka.p50)} Kafka's ${ms(kafka.p50)} ms; ${detail(ours)}` : detail(ours) });
    out.push({ name: `${what}, p99, embedded`, value: Number(ms(ours.p99)), unit: 'ms', target: '<= Kafka', pass: kafka ? ours.p99 <= kafka.p99 : undefined, notes: kafka ? `${ratio(ours.p99, kafka.p99)} Kafka's ${ms(kafka.p99)} ms` : '' });
  }
  if (kafka) {
    out.push({ name: `${what}, p50, real Kafka`, value: Number(ms(kafka.p50)), unit: 'ms', notes: detail(kafka) });
    out.push({ name: `${what}, p99, real Kafka`, value: Number(ms(kafka.p99)), unit: 'ms' });
  }
  return out;
}

function bigResults(ours: Big | null, kafka: Big | null): Result[] {
  const count = BIG_RECORDS.toLocaleString('en');
  const middle = Math.floor(BIG_RECORDS / 2).toLocaleString('en');
  const topic = `topic of ${count} × ${BIG_RECORD_BYTES} B`;
  const fill = (b: Big, how: string) => `filled ${how} in ${b.fillSeconds.toFixed(0)} s (${Math.round(b.fillRate).toLocaleString('en')} records/s)`;
  const out: Result[] = [];
  const side = (b: Big | null, broker: string, how: string, targets: boolean) => {
    if (!b) return;
    const other = broker === 'embedded' ? kafka : null;
    out.push({
      name: `RSS of the broker process, ${topic} present (after a restart), ${broker}`,
      value: Number(mb(b.rssOpen)),
      unit: 'MB',
      ...(targets ? { target: '< 250 MB', pass: b.rssOpen < 250 } : {}),
      notes: `${other ? `Kafka's JVM ${mb(other.rssOpen)} MB; ` : ''}${fill(b, how)}; ${b.load}`,
    });
    out.push({
      name: `RSS of the broker process after a consumer read from offset ${middle} to the end, ${broker}`,
      value: Number(mb(b.rssAfter)),
      unit: 'MB',
      ...(targets ? { target: '< 250 MB', pass: b.rssAfter < 250 } : {}),
      notes: `peak ${mb(b.peakAfter)} MB; read ${b.readRecords.toLocaleString('en')} records at ${Math.round(b.readPerSecond).toLocaleString('en')}/s in Fetch requests of 1 MiB${other ? `; Kafka's JVM ${mb(other.rssAfter)} MB (peak ${mb(other.peakAfter)} MB)` : ''}`,
    });
    out.push({
      name: `first record at offset ${middle} of the ${topic}: one Fetch on a connected socket, sent → answered, ${broker}`,
      value: Number(ms(b.firstRecordMs)),
      unit: 'ms',
      ...(targets ? { target: '< 50 ms', pass: b.firstRecordMs < 50 } : {}),
      notes: `after one Fetch at offset 0 (the broker's first since its start: ${ms(b.startMs)} ms); the same Fetch again ${ms(b.againMs)} ms${other ? `; Kafka ${ms(other.firstRecordMs)} ms (offset 0 first: ${ms(other.startMs)} ms, again ${ms(other.againMs)} ms)` : ''}`,
    });
  };
  side(ours, 'embedded', BIG_FILL === 'engine' ? 'through the engine' : 'by kafka-producer-perf-test (acks=1, 1 MiB batches)', true);
  side(kafka, 'real Kafka', 'by kafka-producer-perf-test (acks=1, 1 MiB batches)', false);
  return out;
}
