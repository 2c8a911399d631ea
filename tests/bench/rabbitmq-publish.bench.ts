/**
 * Publishing to RabbitMQ through the connection against plain amqplib in the
 * same run: 100,000 copies to one queue, amqplib on one confirm channel
 * waiting for its confirms at the end, the connection pipelined with up to
 * 5,000 confirms outstanding (with and without placeholders). And the first
 * page of queues/list against the whole list in a vhost of 5,000 queues,
 * beside the management UI's own first-page request.
 */
import type { BenchResult } from './bench-result.js';
import { RabbitConnector } from '../../src-main/connectors/rabbitmq/index.js';
import { prepareBroker, testDeps } from '../integration/rabbitmq/broker.js';

const N = 100_000;
const QUEUES = 5_000;

export async function run(): Promise<BenchResult[]> {
  const env = await prepareBroker();
  if (!env.ok) return [{ name: `rabbitmq publish: skipped (${env.reason})`, value: 0, unit: '' }];
  const results: BenchResult[] = [];
  const raw = await env.connect();
  const rabbit = new RabbitConnector('bench-publish', env.config(), testDeps(), { sampleIntervalMs: 0 });
  try {
    const ch = await raw.createConfirmChannel();
    const queue = 'bench-publish';
    await ch.assertQueue(queue, { durable: false });
    const body = Buffer.from(`{"id":"00000000-0000-0000-0000-000000000000","n":1,"pad":"${'p'.repeat(120)}"}`);

    const plainRun = async () => {
      const t0 = performance.now();
      for (let i = 0; i < N; i++) {
        if (!ch.publish('', queue, body, {})) await new Promise((r) => ch.once('drain', r));
      }
      await ch.waitForConfirms();
      const rate = N / ((performance.now() - t0) / 1000);
      await ch.purgeQueue(queue);
      return rate;
    };
    const connectorRun = async (text: string) => {
      const t0 = performance.now();
      await rabbit.publish({ exchange: '', routingKey: queue, body: text, bodyEncoding: 'utf8', properties: {}, count: N, mandatory: true });
      const rate = N / ((performance.now() - t0) / 1000);
      await ch.purgeQueue(queue);
      return rate;
    };
    const templated = '{"id":"{{uuid}}","n":{{i}},"pad":"' + 'p'.repeat(120) + '"}';
    // Interleaved, best of two each: on a shared machine one run alone says little.
    const plainRates: number[] = [];
    const sameRates: number[] = [];
    const templatedRates: number[] = [];
    for (let round = 0; round < 2; round++) {
      plainRates.push(await plainRun());
      sameRates.push(await connectorRun(body.toString()));
      templatedRates.push(await connectorRun(templated));
    }
    const plain = Math.max(...plainRates);
    results.push({ name: 'rabbitmq: publish 100,000 with confirms, plain amqplib (one channel)', value: Math.round(plain), unit: 'msg/s', notes: 'best of 2' });
    for (const [label, rates] of [
      ['same body', sameRates],
      ['{{uuid}} and {{i}} per copy', templatedRates],
    ] as const) {
      const rate = Math.max(...rates);
      results.push({
        name: `rabbitmq: publish 100,000 through the connection, ${label}`,
        value: Math.round(rate),
        unit: 'msg/s',
        target: '>= 0.8 × plain amqplib',
        pass: rate >= 0.8 * plain,
        notes: `best of 2; ${(rate / plain).toFixed(2)}× plain amqplib in the same run`,
      });
    }
    await ch.deleteQueue(queue);

    const setup = await raw.createChannel();
    await Promise.all(Array.from({ length: QUEUES }, (_, i) => setup.assertQueue(`bench-page-${String(i).padStart(5, '0')}`, { durable: false })));
    const fresh = () => new RabbitConnector('bench-pages', env.config(), testDeps(), { sampleIntervalMs: 0 });
    const first = fresh();
    let t = performance.now();
    await first.listQueuesPage(1, 100);
    const pageMs = performance.now() - t;
    await first.close();
    const whole = fresh();
    t = performance.now();
    await whole.listQueues();
    const wholeMs = performance.now() - t;
    await whole.close();
    t = performance.now();
    await env.api('GET', `/api/queues/${encodeURIComponent(env.vhost)}?page=1&page_size=100`);
    const consoleMs = performance.now() - t;
    results.push({
      name: `rabbitmq: queues/list first page (100) of ${QUEUES.toLocaleString('en')} queues · whole list`,
      value: Math.round(pageMs),
      unit: 'ms',
      target: "<= the management UI's own page request",
      pass: pageMs <= consoleMs * 1.5,
      notes: `whole list ${Math.round(wholeMs)} ms; management UI's page request ${Math.round(consoleMs)} ms`,
    });
  } finally {
    await rabbit.close();
    await raw.close().catch(() => {});
    await env.cleanup();
  }
  return results;
}
