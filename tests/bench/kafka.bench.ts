/**
 * Kafka connector benchmarks against a real single-node broker on loopback
 * (KAFKA_BROKERS, or one started with tests/kafka/kafka.mjs and stopped at
 * the end): filtered scan throughput beside kcat reading the same topic,
 * group-lag refresh time for 50 groups × 20 partitions, re-drive throughput,
 * heap use while a browse scans ever more records, and the re-drive beside a
 * kcat pipe at 10,000 and 100,000 records (kafka-redrive.ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Admin, Producer } from '@platformatic/kafka';
import { createKafkaConnector, type KafkaConnector } from '../../src-main/connectors/kafka/index.js';
import { silentLogger } from '../../src-main/ground/logger.js';
import type { KafkaConnectionConfig } from '../../src-main/contract/operations.js';
import type { BenchResult as Result } from './bench-result.js';
import { compareWithKcat, kcatInstalled, warmBroker } from './kafka-redrive.js';


const script = join(import.meta.dirname, '..', 'kafka', 'kafka.mjs');
const SCAN_RECORDS = 200_000;
const GROUPS = 50;
const GROUP_PARTITIONS = 20;
const REDRIVE_RECORDS = 10_000;
const REDRIVE_SIZES = [10_000, 100_000];

function startBroker(stateFile: string): { brokers: string } | { error: string } {
  const r = spawnSync(process.execPath, [script, 'start', '--state', stateFile], { encoding: 'utf8', timeout: 300_000 });
  const m = /^KAFKA_BROKERS=(.+)$/m.exec(r.stdout ?? '');
  if (r.status !== 0 || !m) return { error: (/^KAFKA_UNAVAILABLE=(.+)$/m.exec(r.stdout ?? '')?.[1] ?? r.stderr?.split('\n').slice(-5).join(' | ')) || 'kafka.mjs failed' };
  return { brokers: m[1]!.trim() };
}

function brokerPidFrom(stateFile: string): number | null {
  try {
    const pid = (JSON.parse(readFileSync(stateFile, 'utf8')) as { pid?: unknown }).pid;
    return typeof pid === 'number' && Number.isInteger(pid) ? pid : null;
  } catch {
    return null;
  }
}

async function createTopic(admin: Admin, name: string, partitions: number): Promise<void> {
  await admin.createTopics({ topics: [name], partitions, replicas: -1 });
  for (let i = 0; i < 100; i++) {
    const t = (await admin.metadata({ topics: [name], forceUpdate: true }).catch(() => null))?.topics.get(name);
    if (t && t.partitions.every((p) => p.leader >= 0)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function fill(brokers: string, topic: string, count: number, partitions: number, make: (i: number) => { key: Buffer; value: Buffer; headers?: Map<Buffer, Buffer> }): Promise<void> {
  const producer = new Producer({ clientId: 'bench-fill', bootstrapBrokers: [brokers], acks: 1 });
  try {
    const batch = 2_000;
    const inflight: Array<Promise<unknown>> = [];
    for (let start = 0; start < count; start += batch) {
      const messages = [];
      for (let i = start; i < Math.min(count, start + batch); i++) messages.push({ topic, partition: i % partitions, ...make(i) });
      inflight.push(producer.send({ messages }));
      if (inflight.length >= 4) await inflight.shift();
    }
    await Promise.all(inflight);
  } finally {
    await producer.close();
  }
}

async function scanAll(c: KafkaConnector, topic: string, q: string, onPage?: (scanned: number) => void): Promise<{ scanned: number; matched: number; seconds: number }> {
  const started = performance.now();
  let cursor: string | undefined;
  let scanned = 0;
  let matched = 0;
  for (;;) {
    const page = await c.browseTopic({ topic, limit: 1_000, q, ...(cursor ? { cursor } : {}) } as Parameters<KafkaConnector['browseTopic']>[0]);
    scanned += page.scanned;
    matched += page.matched;
    onPage?.(scanned);
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  return { scanned, matched, seconds: (performance.now() - started) / 1000 };
}

function kcatScan(brokers: string, topic: string, needle: string): Promise<{ records: number; matched: number; seconds: number } | null> {
  if (spawnSync('kcat', ['-V'], { stdio: 'ignore' }).error) return Promise.resolve(null);
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn('kcat', ['-b', brokers, '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%s\n'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let records = 0;
    let matched = 0;
    let rest = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      records += lines.length;
      for (const l of lines) if (l.includes(needle)) matched++;
    });
    child.on('close', () => resolve({ records, matched, seconds: (performance.now() - started) / 1000 }));
  });
}

export async function run(): Promise<Result[]> {
  const results: Result[] = [];
  const stateFile = join(tmpdir(), 'brokerdeck-kafka', `bench-${process.pid}.json`);
  let brokers = process.env.KAFKA_BROKERS?.split(',')[0];
  let owned = false;
  // The broker's process, when this run started it: its CPU is read beside each re-drive comparison.
  let pid: number | null = null;
  if (!brokers) {
    const started = startBroker(stateFile);
    if ('error' in started) return [{ name: 'kafka benchmarks', value: 0, unit: 'skipped', notes: `no Kafka broker: ${started.error}` }];
    brokers = started.brokers;
    owned = true;
    pid = brokerPidFrom(stateFile);
  }
  const config = { kind: 'kafka', name: 'bench', brokers: [brokers], readOnly: false } as KafkaConnectionConfig;
  const audits: unknown[] = [];
  const c = createKafkaConnector('bench', config, { logger: silentLogger, audit: { record: (e) => audits.push(e), list: () => [] } }, { historyIntervalMs: 0 });
  const admin = new Admin({ clientId: 'bench-admin', bootstrapBrokers: [brokers] });
  try {
    // 1. Filtered scan, merged across 4 partitions, and one partition alone; kcat reads the same topic.
    const scanTopic = `bench-scan-${randomUUID().slice(0, 8)}`;
    await createTopic(admin, scanTopic, 4);
    await fill(brokers, scanTopic, SCAN_RECORDS, 4, (i) => ({
      key: Buffer.from(`user-${i % 5000}`),
      value: Buffer.from(JSON.stringify({ i, level: i % 1000 === 0 ? 'error' : 'info', text: i % 1000 === 0 ? `needle-${i}` : 'nothing to see here, move along' })),
    }));
    await scanAll(c, scanTopic, 'warm-up-never-matches');
    const merged = await scanAll(c, scanTopic, 'needle-');
    const scanRate = merged.scanned / merged.seconds;
    const kc = await kcatScan(brokers, scanTopic, 'needle-');
    results.push({
      name: `filtered scan, ${SCAN_RECORDS.toLocaleString('en')} records, 4 partitions merged by time`,
      value: Math.round(scanRate),
      unit: 'records/s',
      target: '≥ 100,000 records/s',
      pass: scanRate >= 100_000 && merged.matched === SCAN_RECORDS / 1000,
      notes: `${merged.matched} matches in ${merged.seconds.toFixed(2)} s` + (kc ? `; kcat read the same topic at ${Math.round(kc.records / kc.seconds).toLocaleString('en')} records/s (${kc.matched} matches, ${kc.seconds.toFixed(2)} s)` : '; kcat not installed'),
    });
    if (kc) results.push({ name: 'kcat reading the same topic (-f %s, grep in Node)', value: Math.round(kc.records / kc.seconds), unit: 'records/s', notes: `${kc.records} records in ${kc.seconds.toFixed(2)} s` });
    const single = await (async () => {
      const started = performance.now();
      let cursor: string | undefined;
      let scanned = 0;
      for (;;) {
        const page = await c.browseTopic({ topic: scanTopic, partition: 0, limit: 1_000, q: 'needle-', ...(cursor ? { cursor } : {}) } as Parameters<KafkaConnector['browseTopic']>[0]);
        scanned += page.scanned;
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
      return scanned / ((performance.now() - started) / 1000);
    })();
    results.push({ name: 'filtered scan, one partition', value: Math.round(single), unit: 'records/s', target: '≥ 100,000 records/s', pass: single >= 100_000 });

    // 2. Heap while scanning ever more: the same filter over the topic four times in a row.
    setFlagsFromString('--expose_gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const samples: Array<{ scanned: number; heap: number }> = [];
    let total = 0;
    for (let round = 0; round < 4; round++) {
      await scanAll(c, scanTopic, 'never-there', (scanned) => {
        if ((total + scanned) % 50_000 < 1_000 || scanned === SCAN_RECORDS) {
          gc();
          samples.push({ scanned: total + scanned, heap: process.memoryUsage().heapUsed });
        }
      });
      total += SCAN_RECORDS;
    }
    gc();
    const early = samples.filter((s) => s.scanned <= SCAN_RECORDS).map((s) => s.heap);
    const late = samples.filter((s) => s.scanned > 3 * SCAN_RECORDS).map((s) => s.heap);
    const growth = (Math.max(...late) - Math.max(...early)) / 2 ** 20;
    results.push({
      name: `heap growth while scanning ${(4 * SCAN_RECORDS).toLocaleString('en')} records (first 200k vs last 200k)`,
      value: Number(growth.toFixed(2)),
      unit: 'MiB',
      target: 'flat (< 16 MiB)',
      pass: growth < 16,
      notes: `peak heap ${(Math.max(...samples.map((s) => s.heap)) / 2 ** 20).toFixed(1)} MiB over ${samples.length} samples after GC`,
    });

    // 3. Lag refresh: 50 groups each committed on a 20-partition topic.
    const lagTopic = `bench-lag-${randomUUID().slice(0, 8)}`;
    await createTopic(admin, lagTopic, GROUP_PARTITIONS);
    await fill(brokers, lagTopic, 20_000, GROUP_PARTITIONS, (i) => ({ key: Buffer.from(String(i)), value: Buffer.from(`lag record ${i}`) }));
    const prefix = `bench-group-${randomUUID().slice(0, 6)}`;
    for (let g = 0; g < GROUPS; g++) {
      await admin.alterConsumerGroupOffsets({
        groupId: `${prefix}-${g}`,
        topics: [{ name: lagTopic, partitionOffsets: Array.from({ length: GROUP_PARTITIONS }, (_, p) => ({ partition: p, offset: BigInt((g * 17 + p * 3) % 900) })) }],
      });
    }
    const cold = performance.now();
    const first = (await c.listGroups()).filter((g) => g.groupId.startsWith(prefix));
    const coldMs = performance.now() - cold;
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      await c.listGroups();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const median = times[5]!;
    const partitionsSeen = first.reduce((n, g) => n + g.partitions.length, 0);
    results.push({
      name: `lag refresh, ${GROUPS} groups × ${GROUP_PARTITIONS} partitions (median of 10)`,
      value: Number(median.toFixed(1)),
      unit: 'ms',
      target: '< 300 ms',
      pass: median < 300 && partitionsSeen === GROUPS * GROUP_PARTITIONS,
      notes: `first refresh (reads each lagging partition's oldest record for time lag) ${coldMs.toFixed(0)} ms; slowest of 10 ${times[9]!.toFixed(1)} ms; ${partitionsSeen} partition rows`,
    });

    // 4. Re-drive 10,000 Spring-style dead letters back to their topic.
    const original = `bench-orders-${randomUUID().slice(0, 8)}`;
    const dlt = `${original}.DLT`;
    await createTopic(admin, original, 6);
    await createTopic(admin, dlt, 3);
    const offsetHeader = Buffer.alloc(8);
    await fill(brokers, dlt, REDRIVE_RECORDS, 3, (i) => ({
      key: Buffer.from(`order-${i}`),
      value: Buffer.from(JSON.stringify({ order: i, amount: i * 3, currency: 'EUR' })),
      headers: new Map([
        [Buffer.from('kafka_dlt-original-topic'), Buffer.from(original)],
        [Buffer.from('kafka_dlt-original-offset'), offsetHeader],
        [Buffer.from('kafka_dlt-exception-fqcn'), Buffer.from('java.lang.IllegalStateException')],
        [Buffer.from('kafka_dlt-exception-message'), Buffer.from(`order ${i} could not be processed`)],
      ]),
    }));
    const t0 = performance.now();
    const { id } = await c.startRedrive({ source: dlt, all: true });
    const job = await c.redriveSettled(id);
    const seconds = (performance.now() - t0) / 1000;
    const rate = (job?.moved ?? 0) / seconds;
    results.push({
      name: `re-drive ${REDRIVE_RECORDS.toLocaleString('en')} records (acks=all, ledger commits)`,
      value: Math.round(rate),
      unit: 'records/s',
      target: '≥ 10,000 records/s',
      pass: rate >= 10_000 && job?.state === 'completed' && job.moved === REDRIVE_RECORDS,
      notes: `${job?.state}, ${job?.moved} moved in ${seconds.toFixed(2)} s`,
    });

    for (const t of [scanTopic, lagTopic, original, dlt]) await admin.deleteTopics({ topics: [t] }).catch(() => {});

    // 5. Re-drive beside a kcat pipe, 1 KiB records, at two sizes.
    if (!kcatInstalled()) results.push({ name: 'kafka: re-drive vs kcat pipe', value: 0, unit: 'skipped', notes: 'skipped: kcat is not installed' });
    else {
      await warmBroker(brokers, admin, Math.max(...REDRIVE_SIZES));
      for (const n of REDRIVE_SIZES) results.push(...(await compareWithKcat(brokers, admin, n, pid)));
    }
  } finally {
    await c.close();
    await admin.close();
    if (owned) spawnSync(process.execPath, [script, 'stop', '--state', stateFile], { stdio: 'ignore', timeout: 60_000 });
  }
  return results;
}
