/**
 * Benchmarks of the RabbitMQ connector against the real server on loopback:
 * re-driving dead-lettered messages beside RabbitMQ's own shovel (10,000 and
 * 100,000 of 1 KiB), re-driving 10,000 small ones, listing 2,000 queues,
 * peeking 100 messages. RabbitMQ's own throughput for the same kind of work (durable
 * publish with confirms plus consume with acks, and the same
 * consume → publish → ack-after-confirm pipeline written directly against
 * amqplib) is measured alongside, so the re-drive figure can be read against
 * what the server allows on this machine. Everything is bounded in count and
 * time, and runs in a vhost of its own that is deleted at the end.
 */
import type { ChannelModel } from 'amqplib';
import { RabbitConnector } from '../../src-main/connectors/rabbitmq/index.js';
import { prepareBroker, rejectAll, testDeps, type TestBroker } from '../integration/rabbitmq/broker.js';

import type { BenchResult } from './bench-result.js';
import { cpuMeter, cpuNote, type CpuSpent } from './process-cpu.js';
import { brokerPid, enableShovel, shovelQueue } from './rabbitmq-shovel.js';

const REDRIVE_N = 10_000;
const QUEUES_N = 2_000;
const PEEK_N = 100;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function deadLetter(model: ChannelModel, queue: string, dlq: string, n: number, bodyBytes = 0): Promise<void> {
  const ch = await model.createConfirmChannel();
  for (let i = 0; i < n; i++) {
    const body = bodyBytes > 0 ? Buffer.from(`{"i":${String(i).padStart(8, '0')},"pad":"${'x'.repeat(bodyBytes - 24)}"}`) : Buffer.from(JSON.stringify({ i, payload: 'x'.repeat(64) }));
    ch.sendToQueue(queue, body, { messageId: `m-${i}`, persistent: true, contentType: 'application/json' });
    if (i % 2_000 === 1_999) await ch.waitForConfirms();
  }
  await ch.waitForConfirms();
  await rejectAll(model, queue, n);
  const until = Date.now() + 60_000 + n * 5;
  while ((await ch.checkQueue(dlq)).messageCount < n && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  await ch.close();
}

/** RabbitMQ's own figure: one producer (confirms) and one consumer (acks) through a durable queue at once. */
async function serverBaseline(model: ChannelModel, n: number): Promise<number> {
  const pub = await model.createConfirmChannel();
  const sub = await model.createChannel();
  await pub.assertQueue('baseline', { durable: true });
  await sub.prefetch(1_000);
  const body = Buffer.from(JSON.stringify({ payload: 'x'.repeat(64) }));
  const started = performance.now();
  const consumed = new Promise<void>((resolve) => {
    let got = 0;
    void sub.consume('baseline', (m) => {
      if (!m) return;
      sub.ack(m);
      if (++got === n) resolve();
    });
  });
  for (let i = 0; i < n; i++) {
    pub.sendToQueue('baseline', body, { persistent: true, messageId: `b-${i}` });
    if (i % 1_000 === 999) await pub.waitForConfirms();
  }
  await pub.waitForConfirms();
  await consumed;
  const seconds = (performance.now() - started) / 1000;
  await sub.close();
  await pub.close();
  return n / seconds;
}

/** The re-drive's work written directly against amqplib: consume, publish with confirm, ack after the confirm. */
async function pipelineBaseline(model: ChannelModel, from: string, to: string, n: number): Promise<number> {
  const consume = await model.createChannel();
  const publish = await model.createConfirmChannel();
  await consume.prefetch(1_000);
  const started = performance.now();
  await new Promise<void>((resolve) => {
    let done = 0;
    void consume.consume(from, (m) => {
      if (!m) return;
      publish.publish('', to, m.content, { ...m.properties, persistent: true, mandatory: true }, () => {
        consume.ack(m);
        if (++done === n) resolve();
      });
    });
  });
  const seconds = (performance.now() - started) / 1000;
  await consume.close();
  await publish.close();
  return n / seconds;
}

const SHOVEL_SIZES = [10_000, 100_000];

/**
 * Brokerdeck's re-drive and a dynamic shovel (rabbitmq-shovel.ts) move the
 * same dead-lettered messages back to the queue they died in, twice per
 * size, each going first once. Each round's ratio compares the two runs of
 * that round, which are minutes apart at most.
 */
async function compareWithShovel(b: TestBroker, raw: ChannelModel, rabbit: RabbitConnector): Promise<BenchResult[]> {
  const shovel = await enableShovel(b);
  if ('skipped' in shovel) return [{ name: 'rabbitmq: re-drive vs shovel', value: 0, unit: 'skipped', notes: `skipped: ${shovel.skipped}` }];
  const results: BenchResult[] = [];
  const pid = await brokerPid(b);
  try {
    const setup = await raw.createChannel();
    await setup.assertExchange('orders.dlx', 'direct', { durable: true });
    await setup.assertQueue('orders', { durable: true, arguments: { 'x-dead-letter-exchange': 'orders.dlx', 'x-dead-letter-routing-key': 'orders' } });
    await setup.assertQueue('orders.dlq', { durable: true });
    await setup.bindQueue('orders.dlq', 'orders.dlx', 'orders');
    await setup.close();
    const fill = async (n: number) => {
      const purge = await raw.createChannel();
      await purge.purgeQueue('orders');
      await purge.purgeQueue('orders.dlq');
      await purge.close();
      await deadLetter(raw, 'orders', 'orders.dlq', n, 1024);
    };
    interface Run {
      rate: number;
      cpu: CpuSpent;
    }
    const ours = async (n: number): Promise<Run> => {
      await fill(n);
      const meter = cpuMeter(pid);
      const started = performance.now();
      const { id } = await rabbit.startRedrive({ source: 'orders.dlq', all: true });
      const job = await rabbit.waitForRedrive(id);
      const seconds = (performance.now() - started) / 1000;
      const cpu = meter();
      if (job?.state !== 'completed' || job.moved !== n) throw new Error(`re-drive ended ${job?.state} with ${job?.moved} of ${n} moved: ${job?.error}`);
      return { rate: n / seconds, cpu };
    };
    const theirs = async (n: number): Promise<Run> => {
      await fill(n);
      const meter = cpuMeter(pid);
      const { seconds } = await shovelQueue(b, raw, 'orders.dlq', 'orders', n);
      return { rate: n / seconds, cpu: meter() };
    };
    for (const n of SHOVEL_SIZES) {
      const rounds: Array<{ ours: Run; theirs: Run }> = [];
      for (let round = 0; round < 2; round++) {
        if (round === 0) {
          const o = await ours(n);
          rounds.push({ ours: o, theirs: await theirs(n) });
        } else {
          const t = await theirs(n);
          rounds.push({ ours: await ours(n), theirs: t });
        }
      }
      const ratios = rounds.map((r) => r.ours.rate / r.theirs.rate);
      const low = Math.min(...ratios);
      results.push({
        name: `rabbitmq: re-drive ${n.toLocaleString('en')} × 1 KiB persistent messages vs dynamic shovel (Brokerdeck/shovel, lower of two rounds)`,
        value: Number(low.toFixed(2)),
        unit: '×',
        target: '≥ 1',
        pass: low >= 1,
        notes:
          rounds
            .map(
              (r, i) =>
                `round ${i + 1}${n === SHOVEL_SIZES[0] && i === 0 ? ' (first re-drive of a fresh connector)' : ''}: ` +
                `Brokerdeck ${Math.round(r.ours.rate)} msg/s, shovel ${Math.round(r.theirs.rate)} msg/s, ${ratios[i]!.toFixed(2)}× (${cpuNote(r.ours.cpu, r.theirs.cpu, n, 'RabbitMQ', 'messages')})`,
            )
            .join('; ') +
          '. Brokerdeck: startRedrive to settled, confirms, ack after confirm, x-redriven-* headers; shovel: ack-mode on-confirm, src-prefetch-count 1000, src-delete-after queue-length, declared to deleted',
      });
    }
    const cleanup = await raw.createChannel();
    await cleanup.purgeQueue('orders');
    await cleanup.close();
  } finally {
    await shovel.restore();
  }
  return results;
}

async function withBroker(b: TestBroker): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const raw = await b.connect();
  const deps = testDeps();
  const rabbit = new RabbitConnector('bench', b.config(), deps, { sampleIntervalMs: 0 });
  try {
    const setup = await raw.createChannel();
    await setup.assertExchange('dlx', 'direct', { durable: true });
    await setup.assertQueue('work', { durable: true, arguments: { 'x-dead-letter-exchange': 'dlx', 'x-dead-letter-routing-key': 'work' } });
    await setup.assertQueue('work.dlq', { durable: true });
    await setup.bindQueue('work.dlq', 'dlx', 'work');
    await setup.assertQueue('pipe-a', { durable: true });
    await setup.assertQueue('pipe-b', { durable: true });
    await setup.assertQueue('peek', { durable: true });
    await setup.close();

    // Re-drive beside RabbitMQ's shovel, 1 KiB persistent messages, first thing on a fresh
    // connector (its first re-drive is the cold one), at two sizes.
    results.push(...(await compareWithShovel(b, raw, rabbit)));

    // Re-drive of 10,000 messages, best of two runs (the machine is shared).
    const redriveRates: number[] = [];
    for (let round = 0; round < 2; round++) {
      const purge = await raw.createChannel();
      await purge.purgeQueue('work');
      await purge.purgeQueue('work.dlq');
      await purge.close();
      await deadLetter(raw, 'work', 'work.dlq', REDRIVE_N);
      const started = performance.now();
      const { id } = await rabbit.startRedrive({ source: 'work.dlq', all: true });
      const job = await rabbit.waitForRedrive(id);
      const seconds = (performance.now() - started) / 1000;
      if (job?.state !== 'completed' || job.moved !== REDRIVE_N) throw new Error(`re-drive ended ${job?.state} with ${job?.moved} moved: ${job?.error}`);
      redriveRates.push(REDRIVE_N / seconds);
    }

    // The same work without the connector, and RabbitMQ's plain publish+consume.
    const fill = await raw.createChannel();
    await fill.purgeQueue('work');
    await fill.close();
    await deadLetter(raw, 'work', 'work.dlq', REDRIVE_N);
    const pipeline = await pipelineBaseline(raw, 'work.dlq', 'pipe-a', REDRIVE_N);
    const baseline = await serverBaseline(raw, REDRIVE_N);
    const best = Math.max(...redriveRates);
    results.push({
      name: 'rabbitmq: re-drive 10,000 dead-lettered messages (durable, confirms, ack after confirm)',
      value: Math.round(best),
      unit: 'msg/s',
      target: '>= 5000 msg/s',
      pass: best >= 5_000,
      notes:
        `runs: ${redriveRates.map((r) => Math.round(r)).join(', ')} msg/s (including job start and the final drain); ` +
        `same pipeline hand-written on amqplib: ${Math.round(pipeline)} msg/s; ` +
        `RabbitMQ durable publish (confirms) + consume (acks) through one queue: ${Math.round(baseline)} msg/s`,
    });
    results.push({ name: 'rabbitmq: baseline durable publish+consume with confirms (amqplib, 1 producer, 1 consumer)', value: Math.round(baseline), unit: 'msg/s' });

    // Listing 2,000 queues: created in one definitions import, listed three times.
    await b.api('POST', `/api/definitions/${encodeURIComponent(b.vhost)}`, {
      queues: Array.from({ length: QUEUES_N }, (_, i) => ({ name: `bulk-${String(i).padStart(4, '0')}`, durable: false, auto_delete: false, arguments: {} })),
    });
    const listTimes: number[] = [];
    let listed = 0;
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      listed = (await rabbit.listQueues()).length;
      listTimes.push(performance.now() - started);
    }
    const listMs = median(listTimes);
    results.push({
      name: `rabbitmq: list ${QUEUES_N} queues (with dead-letter sources and policies)`,
      value: Math.round(listMs),
      unit: 'ms',
      target: '< 1000 ms',
      pass: listMs < 1_000 && listed >= QUEUES_N,
      notes: `median of ${listTimes.map((t) => Math.round(t)).join(', ')} ms; ${listed} queues listed`,
    });

    // Peeking 100 of 1,000 messages, five times.
    const peekFill = await raw.createConfirmChannel();
    for (let i = 0; i < 1_000; i++) peekFill.sendToQueue('peek', Buffer.from(JSON.stringify({ i })), { messageId: `p-${i}`, persistent: true });
    await peekFill.waitForConfirms();
    await peekFill.close();
    const peekTimes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const page = await rabbit.browseQueue({ queue: 'peek', limit: PEEK_N, includeUnacked: true, allowQuorumPeek: false });
      peekTimes.push(performance.now() - started);
      if (page.messages.length !== PEEK_N) throw new Error(`peek returned ${page.messages.length} messages`);
    }
    const peekMs = median(peekTimes);
    results.push({
      name: `rabbitmq: peek ${PEEK_N} messages of a classic queue`,
      value: Math.round(peekMs),
      unit: 'ms',
      target: '< 300 ms',
      pass: peekMs < 300,
      notes: `median of ${peekTimes.map((t) => Math.round(t)).join(', ')} ms (basic.get ×${PEEK_N} on its own channel, then the channel closes)`,
    });
  } finally {
    await rabbit.close();
    await raw.close().catch(() => {});
    await b.cleanup();
  }
  return results;
}

export async function run(): Promise<BenchResult[]> {
  const env = await prepareBroker();
  if (!env.ok) {
    return [{ name: 'rabbitmq: benchmarks', value: 0, unit: 'skipped', notes: `skipped: ${env.reason}` }];
  }
  return withBroker(env);
}
