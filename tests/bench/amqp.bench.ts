/**
 * The embedded broker's AMQP listener beside RabbitMQ (127.0.0.1:5672), in
 * the same run, with the same amqplib code against each:
 *
 * - throughput: 1 KiB persistent messages, one publisher with confirms
 *   (up to 500 in flight) and one consumer with manual acks (prefetch 500),
 *   both at once, through a durable queue; with amqplib, and with the Java
 *   client running PerfTest's workload (java-throughput.ts);
 * - latency publish → delivery at 1,000 msg/s, p50 and p99;
 * - 1,000 connections, each with one channel and one consumer, against the
 *   embedded broker: the resident memory of the broker's process.
 *
 * The embedded broker runs in a child process (with its data on disk, full
 * sync: a confirm means the message is on disk), as RabbitMQ runs in its own,
 * so the clients never share its thread.
 *
 * Everything is bounded in count and time. Against RabbitMQ the queues have
 * names of their own and are deleted at the end; when RabbitMQ cannot be
 * reached, its figures are left out with the reason.
 */
import amqp, { type ChannelModel } from 'amqplib';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleBrokerChild, startChildBroker } from '../integration/amqp/child.js';
import type { BenchResult } from './bench-result.js';
import { prepareJavaThroughput } from './java-throughput.js';

const N = Number(process.env.AMQP_BENCH_MESSAGES ?? 30_000);
const WINDOW = 500;
const BODY = Buffer.alloc(1024, 0x61);
const LATENCY_SECONDS = 3;
const CONNECTIONS = Number(process.env.AMQP_BENCH_CONNECTIONS ?? 1_000);
const RABBIT = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
/** Throughput runs per broker, taken in turns (ours, theirs, ours, theirs); the best of each is reported, so a busy moment of the shared machine hurts neither more. */
const ROUNDS = Number(process.env.AMQP_BENCH_ROUNDS ?? 2);
const JAVA_N = Number(process.env.AMQP_BENCH_JAVA_MESSAGES ?? 50_000);

/** Unmeasured throughput runs against each broker first: the embedded one starts cold (JIT, SQLite's cache, its log growing to size), RabbitMQ has long been running. */
const WARMUP = Number(process.env.AMQP_BENCH_WARMUP ?? 1);

/** Runs `measure` against each URL in turns, ROUNDS times (after `warmup` unmeasured rounds); the best figure of each. */
async function inTurns(urls: Array<string | null>, measure: (url: string) => Promise<number>, warmup = 0): Promise<Array<number | null>> {
  const best: Array<number | null> = urls.map(() => null);
  for (let round = 0; round < warmup; round++) for (const url of urls) if (url !== null) await measure(url);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, url] of urls.entries()) {
      if (url === null) continue;
      const v = await measure(url);
      best[i] = Math.max(best[i] ?? 0, v);
    }
  }
  return best;
}

/** Messages per second through one queue: publisher with confirms and consumer with acks running at once. */
async function throughput(url: string): Promise<number> {
  const conn = await amqp.connect(url);
  try {
    const queue = `bench-amqp-${randomBytes(4).toString('hex')}`;
    const pub = await conn.createConfirmChannel();
    const sub = await conn.createChannel();
    await pub.assertQueue(queue, { durable: true });
    await sub.prefetch(WINDOW);
    const started = performance.now();
    const consumed = new Promise<void>((resolve) => {
      let got = 0;
      void sub.consume(queue, (m) => {
        if (!m) return;
        sub.ack(m);
        if (++got === N) resolve();
      });
    });
    let inflight = 0;
    let wake: (() => void) | null = null;
    for (let i = 0; i < N; i++) {
      while (inflight >= WINDOW) await new Promise<void>((r) => (wake = r));
      inflight++;
      pub.sendToQueue(queue, BODY, { persistent: true }, () => {
        inflight--;
        const w = wake;
        wake = null;
        w?.();
      });
    }
    await pub.waitForConfirms();
    await consumed;
    const rate = N / ((performance.now() - started) / 1000);
    await pub.deleteQueue(queue);
    return rate;
  } finally {
    await conn.close();
  }
}

/** Publish → delivery latency at a steady 1,000 msg/s (10 messages every 10 ms), ms. */
async function latency(url: string): Promise<{ p50: number; p99: number }> {
  const conn = await amqp.connect(url);
  try {
    const queue = `bench-amqp-lat-${randomBytes(4).toString('hex')}`;
    const pub = await conn.createConfirmChannel();
    const sub = await conn.createChannel();
    await pub.assertQueue(queue, { durable: true });
    await sub.prefetch(WINDOW);
    const samples: number[] = [];
    const total = LATENCY_SECONDS * 1000;
    const done = new Promise<void>((resolve) => {
      void sub.consume(queue, (m) => {
        if (!m) return;
        samples.push(performance.now() - m.content.readDoubleBE(0));
        sub.ack(m);
        if (samples.length === total) resolve();
      });
    });
    for (let sent = 0; sent < total; ) {
      const tick = performance.now();
      for (let k = 0; k < 10; k++, sent++) {
        const body = Buffer.alloc(1024);
        body.writeDoubleBE(performance.now(), 0);
        pub.sendToQueue(queue, body, { persistent: true });
      }
      await new Promise((r) => setTimeout(r, Math.max(0, 10 - (performance.now() - tick))));
    }
    await done;
    await pub.deleteQueue(queue);
    samples.sort((a, b) => a - b);
    return { p50: samples[Math.floor(samples.length * 0.5)]!, p99: samples[Math.floor(samples.length * 0.99)]! };
  } finally {
    await conn.close();
  }
}

/** Resident memory of a process, MB, from /proc (Linux). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function manyConnections(url: string, pid: number): Promise<number> {
  const conns: ChannelModel[] = [];
  try {
    for (let i = 0; i < CONNECTIONS; i++) {
      const c = await amqp.connect(url);
      const ch = await c.createChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await ch.consume(queue, () => {});
      conns.push(c);
    }
    return rssOf(pid);
  } finally {
    await Promise.all(conns.map((c) => c.close().catch(() => {})));
  }
}

async function reachable(url: string): Promise<string | null> {
  try {
    const c = await amqp.connect(url);
    await c.close();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

export async function run(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  // The broker runs in a process of its own, as RabbitMQ does, so the clients do not share its thread.
  const work = mkdtempSync(join(tmpdir(), 'brokerdeck-amqp-bench-'));
  const broker = await startChildBroker(await bundleBrokerChild(work), join(work, 'data'));
  try {
    const rabbitDown = await reachable(RABBIT);
    const [ours, theirs] = (await inTurns([broker.url, rabbitDown ? null : RABBIT], throughput, WARMUP)) as [number, number | null];
    results.push({
      name: `amqplib publish (confirms, ${WINDOW} in flight) + consume (acks, prefetch ${WINDOW}), 1 KiB persistent, embedded broker`,
      value: Math.round(ours),
      unit: 'msg/s',
      ...(theirs ? { target: `>= 2x RabbitMQ (${Math.round(2 * theirs)})`, pass: ours >= 2 * theirs } : {}),
      notes: `${N} messages, best of ${ROUNDS} runs taken in turns with RabbitMQ's, after ${WARMUP} unmeasured run${WARMUP === 1 ? '' : 's'} against each`,
    });
    results.push(
      theirs
        ? { name: 'the same against RabbitMQ', value: Math.round(theirs), unit: 'msg/s', notes: `${N} messages; embedded/RabbitMQ = ${(ours / theirs).toFixed(2)}` }
        : { name: 'the same against RabbitMQ', value: 0, unit: 'msg/s', notes: `not measured: ${rabbitDown}` },
    );
    const java = prepareJavaThroughput(work);
    const javaName = `Java client, PerfTest's workload (1 producer with confirms, ${WINDOW} in flight; 1 consumer with acks, prefetch ${WINDOW}; 1 KiB persistent)`;
    if (typeof java === 'string') {
      results.push({ name: javaName, value: 0, unit: 'msg/s', notes: `not measured: ${java}` });
    } else {
      const [jo, jt] = await inTurns([broker.url, rabbitDown ? null : RABBIT], (url) => java.run(url, JAVA_N, 1024, WINDOW));
      results.push({
        name: `${javaName}, embedded broker`,
        value: jo!,
        unit: 'msg/s',
        ...(jt ? { target: `>= 2x RabbitMQ (${2 * jt})`, pass: jo! >= 2 * jt } : {}),
        notes: `${JAVA_N} messages, best of ${ROUNDS}; RabbitMQ's PerfTest is not served by the Maven repository here, so its workload runs on com.rabbitmq:amqp-client`,
      });
      if (jt) results.push({ name: `${javaName}, RabbitMQ`, value: jt, unit: 'msg/s', notes: `embedded/RabbitMQ = ${(jo! / jt).toFixed(2)}` });
    }
    const lo = await latency(broker.url);
    results.push({ name: 'publish → delivery latency at 1,000 msg/s, embedded broker, p50', value: lo.p50, unit: 'ms' });
    results.push({ name: 'publish → delivery latency at 1,000 msg/s, embedded broker, p99', value: lo.p99, unit: 'ms' });
    if (!rabbitDown) {
      const lr = await latency(RABBIT);
      results.push({ name: 'publish → delivery latency at 1,000 msg/s, RabbitMQ, p50', value: lr.p50, unit: 'ms' });
      results.push({ name: 'publish → delivery latency at 1,000 msg/s, RabbitMQ, p99', value: lr.p99, unit: 'ms' });
    }
    const rss = await manyConnections(broker.url, broker.child.pid!);
    results.push({
      name: `${CONNECTIONS} connections, each with a channel and a consumer: resident memory of the broker process`,
      value: Math.round(rss),
      unit: 'MB',
      target: '< 300',
      pass: rss < 300,
    });
  } finally {
    broker.child.kill('SIGTERM');
    await broker.exited;
    rmSync(work, { recursive: true, force: true });
  }
  return results;
}
