/**
 * RabbitMQ's own tool for moving a dead-letter queue back: a dynamic shovel
 * (plugin rabbitmq_shovel), measured beside Brokerdeck's re-drive on the
 * same data. The plugin is enabled for the benchmark and disabled again
 * afterwards when it was off before, so the server is left as it was found.
 */
import { execFile } from 'node:child_process';
import type { ChannelModel } from 'amqplib';
import type { TestBroker } from '../integration/rabbitmq/broker.js';

const PLUGINS = ['rabbitmq_shovel', 'rabbitmq_shovel_management'];

function run(cmd: string, args: string[], timeoutMs = 180_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      resolve({ code: error ? 1 : 0, out: `${stdout}${stderr}` });
    });
  });
}

/** The local RabbitMQ node's OS process id (its CPU is read beside each run), or null when it cannot be asked. */
export async function brokerPid(b: TestBroker): Promise<number | null> {
  if (!b.local) return null;
  const r = await run('rabbitmqctl', ['eval', 'os:getpid().'], 30_000);
  const m = r.code === 0 ? /"(\d+)"/.exec(r.out) : null;
  return m ? Number(m[1]) : null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function shovelApiUp(b: TestBroker): Promise<boolean> {
  try {
    await b.api('GET', `/api/shovels/${encodeURIComponent(b.vhost)}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes the shovel plugin available; returns how to put the server back, or
 * why the shovel cannot be measured here (a remote server whose plugins this
 * machine cannot change, no rabbitmq-plugins).
 */
export async function enableShovel(b: TestBroker): Promise<{ restore: () => Promise<void> } | { skipped: string }> {
  if (await shovelApiUp(b)) return { restore: async () => {} };
  if (!b.local) return { skipped: 'the shovel plugin is off on the RabbitMQ given by RABBITMQ_URL, and only a local server can have it enabled here' };
  const enabled = await run('rabbitmq-plugins', ['enable', ...PLUGINS]);
  if (enabled.code !== 0) return { skipped: `rabbitmq-plugins enable ${PLUGINS.join(' ')} failed: ${enabled.out.trim().slice(-300)}` };
  const restore = async () => {
    await run('rabbitmq-plugins', ['disable', ...PLUGINS]);
  };
  for (let i = 0; i < 120 && !(await shovelApiUp(b)); i++) await sleep(250);
  if (!(await shovelApiUp(b))) {
    await restore();
    return { skipped: 'the shovel plugin was enabled but its management API did not answer' };
  }
  return { restore };
}

/** Read over AMQP: the management API's counts lag by its statistics interval. */
async function depth(model: ChannelModel, queue: string): Promise<number> {
  const ch = await model.createChannel();
  try {
    return (await ch.checkQueue(queue)).messageCount;
  } finally {
    await ch.close().catch(() => {});
  }
}

/**
 * Moves a queue's messages to another queue with a dynamic shovel, the way an
 * operator would re-drive a dead-letter queue with RabbitMQ's own tools:
 * ack-mode on-confirm, prefetch 1,000, deleting itself once it moved what
 * the queue held when it started. Timed from the shovel's declaration until
 * it has deleted itself; the queue counts are then checked.
 */
export async function shovelQueue(b: TestBroker, model: ChannelModel, from: string, to: string, expected: number): Promise<{ seconds: number }> {
  const name = `bench-shovel-${Date.now()}`;
  const uri = `amqp:///${encodeURIComponent(b.vhost)}`;
  const path = `/api/parameters/shovel/${encodeURIComponent(b.vhost)}/${encodeURIComponent(name)}`;
  const started = performance.now();
  await b.api('PUT', path, {
    value: {
      'src-protocol': 'amqp091',
      'src-uri': uri,
      'src-queue': from,
      'src-prefetch-count': 1_000,
      'src-delete-after': 'queue-length',
      'dest-protocol': 'amqp091',
      'dest-uri': uri,
      'dest-queue': to,
      'ack-mode': 'on-confirm',
    },
  });
  const until = Date.now() + 30 * 60_000;
  // Until every message has reached the target, the count is read over AMQP on one channel:
  // polling the management API that often would take CPU from the shovel's own node.
  const watch = await model.createChannel();
  try {
    while ((await watch.checkQueue(to)).messageCount < expected) {
      if (Date.now() > until) throw new Error('the shovel did not finish within 30 minutes');
      await sleep(10);
    }
  } finally {
    await watch.close().catch(() => {});
  }
  // A shovel with src-delete-after removes its own parameter once done (its last confirms and
  // acks come after the last message arrived): poll for that.
  for (;;) {
    const shovels = (await b.api('GET', `/api/shovels/${encodeURIComponent(b.vhost)}`)) as Array<{ name: string; state?: string }>;
    const mine = shovels.find((s) => s.name === name);
    if (!mine) {
      // Deleted: either finished, or never started. The counts say which.
      const params = await b.api('GET', path).catch(() => null);
      if (params === null) break;
    }
    if (mine?.state === 'terminated') throw new Error(`the shovel terminated: ${JSON.stringify(mine)}`);
    if (Date.now() > until) throw new Error('the shovel did not finish within 30 minutes');
    await sleep(20);
  }
  const seconds = (performance.now() - started) / 1000;
  // The last acks reach the source queue a moment after the shovel ends.
  let left = await depth(model, from);
  for (let i = 0; i < 200 && left > 0; i++) {
    await sleep(50);
    left = await depth(model, from);
  }
  const arrived = await depth(model, to);
  if (arrived < expected || left > 0) throw new Error(`the shovel left ${left} message(s) in "${from}" and ${arrived} of ${expected} in "${to}"`);
  return { seconds };
}
