/**
 * The RabbitMQ cluster as the tests see it: a vhost of their own, AMQP
 * connections and management calls to a chosen node, the node a queue lives
 * on (a quorum queue's leader, a classic queue's home), and stopping and
 * starting one node through rabbitmq-cluster.mjs.
 */
import { randomBytes } from 'node:crypto';
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { rabbitConnectionSchema, type RabbitConnectionConfig } from '../../src-main/contract/operations.js';
import { eventually, rejectAll } from '../integration/rabbitmq/broker.js';
import { mustRun, rabbitmqClusterScript, type RabbitClusterInfo } from './control.js';

export type RunningRabbitCluster = Extract<RabbitClusterInfo, { ok: true }>;

export interface RabbitCluster {
  vhost: string;
  size: number;
  /** A management API call to node `n` (1-based) with the admin credentials; throws on HTTP errors. */
  api(n: number, method: string, path: string, body?: unknown): Promise<unknown>;
  /** An amqplib connection to node `n`, in the test vhost. */
  connect(n: number): Promise<ChannelModel>;
  /** A connection configuration whose AMQP and management URLs both name node `n`. */
  config(n: number, overrides?: Record<string, unknown>): RabbitConnectionConfig;
  /** The node (1-based) a queue lives on: a quorum queue's leader, a classic queue's home. */
  nodeOf(queue: string): Promise<number>;
  /** Stops node `n` (gracefully, or as a crash with `kill`) and returns the seconds it took. */
  halt(n: number, kill?: boolean): Promise<number>;
  /** Starts node `n` again and returns once it answers and the cluster sees it running. */
  resume(n: number): Promise<number>;
  cleanup(): Promise<void>;
}

export async function rabbitCluster(info: RunningRabbitCluster): Promise<RabbitCluster> {
  const vhost = `brokerdeck-cluster-${randomBytes(4).toString('hex')}`;
  const auth = 'Basic ' + Buffer.from('guest:guest').toString('base64');
  const api = async (n: number, method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(info.managementUrls[n - 1]! + path, {
      method,
      headers: { authorization: auth, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} node ${n} ${path}: HTTP ${res.status} ${text}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  };
  await api(1, 'PUT', `/api/vhosts/${encodeURIComponent(vhost)}`, {});
  await api(1, 'PUT', `/api/permissions/${encodeURIComponent(vhost)}/guest`, { configure: '.*', write: '.*', read: '.*' });
  const url = (n: number) => `${info.urls[n - 1]}/${encodeURIComponent(vhost)}`;
  const indexOf = (node: string) => {
    const i = info.nodes.indexOf(node);
    if (i < 0) throw new Error(`"${node}" is not a node of this cluster`);
    return i + 1;
  };
  const script = (args: string[], timeoutMs: number) => mustRun(rabbitmqClusterScript, [...args, '--state', info.stateFile], timeoutMs);
  return {
    vhost,
    size: info.nodes.length,
    api,
    connect: async (n) => {
      const c = await amqp.connect(url(n));
      c.on('error', () => {});
      return c;
    },
    config: (n, overrides = {}) =>
      rabbitConnectionSchema.parse({ kind: 'rabbitmq', name: `cluster node ${n}`, amqpUrl: url(n), managementUrl: info.managementUrls[n - 1], ...overrides }),
    nodeOf: async (queue) => {
      // Any running node answers for the whole cluster.
      for (let n = 1; n <= info.nodes.length; n++) {
        try {
          const q = (await api(n, 'GET', `/api/queues/${encodeURIComponent(vhost)}/${encodeURIComponent(queue)}`)) as { node?: string; leader?: string };
          return indexOf(q.leader ?? q.node ?? '');
        } catch {
          /* that node is down: ask the next */
        }
      }
      throw new Error(`no node knows queue "${queue}"`);
    },
    halt: async (n, kill = false) => {
      const t = Date.now();
      await script(['halt', String(n), ...(kill ? ['--kill'] : [])], 120_000);
      return (Date.now() - t) / 1000;
    },
    resume: async (n) => {
      const t = Date.now();
      await script(['resume', String(n)], 300_000);
      return (Date.now() - t) / 1000;
    },
    cleanup: async () => {
      for (let n = 1; n <= info.nodes.length; n++) {
        try {
          await api(n, 'DELETE', `/api/vhosts/${encodeURIComponent(vhost)}`);
          return;
        } catch {
          /* try another node */
        }
      }
    },
  };
}

/** Takes every message of a queue (acking) and returns the message ids in arrival order. */
export async function drainIds(model: ChannelModel, queue: string): Promise<string[]> {
  const ch = await model.createChannel();
  await ch.prefetch(1_000);
  const ids: string[] = [];
  const depth = (await ch.checkQueue(queue)).messageCount;
  if (depth > 0) {
    await new Promise<void>((resolve) => {
      void ch.consume(queue, (m) => {
        if (!m) return;
        ids.push(String(m.properties.messageId));
        ch.ack(m);
        if (ids.length === depth) resolve();
      });
    });
  }
  await ch.close();
  return ids;
}

/**
 * Publishes `n` persistent messages (ids `<prefix>-<i>`) to `queue` and
 * dead-letters every one by rejecting it, then waits until `dlq` holds them.
 */
export async function deadLetter(model: ChannelModel, queue: string, dlq: string, n: number, prefix: string): Promise<void> {
  const ch: ConfirmChannel = await model.createConfirmChannel();
  const before = (await ch.checkQueue(dlq)).messageCount;
  for (let i = 0; i < n; i++) {
    ch.sendToQueue(queue, Buffer.from(JSON.stringify({ i, prefix })), { messageId: `${prefix}-${i}`, contentType: 'application/json', persistent: true });
    if (i % 1_000 === 999) await ch.waitForConfirms();
  }
  await ch.waitForConfirms();
  await rejectAll(model, queue, n, 500);
  const got = await eventually(
    () => ch.checkQueue(dlq),
    (q) => q.messageCount >= before + n,
    120_000,
    100,
  );
  await ch.close();
  if (got.messageCount < before + n) throw new Error(`"${dlq}" holds ${got.messageCount - before} of the ${n} dead-lettered messages`);
}

/** Each id with how many times it occurs. */
export function tally(ids: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}
