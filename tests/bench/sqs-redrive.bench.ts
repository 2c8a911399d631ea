/**
 * SQS re-drive benchmark against ElasticMQ on loopback (started with
 * tests/aws/aws.mjs and stopped at the end, or SQS_ENDPOINT): 10,000 messages
 * (SQS_REDRIVE_COUNT) moved by the connection's re-drive, beside the same
 * receive → send → delete loop written plainly with the SDK, beside ElasticMQ's
 * own rate for batched sends (16 SendMessageBatch requests at a time), all in
 * one run, alternated. For each it also tells where the CPU time went: this
 * process (the SDK and the re-drive) and the server's (read from /proc when the
 * server was started here).
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';
import { SqsConnector } from '../../src-main/connectors/sqs/index.js';
import type { SqsConnectionConfig } from '../../src-main/contract/operations.js';
import { silentLogger } from '../../src-main/ground/logger.js';
import { parseLines, runAwsScript } from '../aws/control.js';
import type { BenchResult as Result } from './bench-result.js';

const N = Number(process.env.SQS_REDRIVE_COUNT ?? 10_000);
const credentials = { accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'test', secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'test' };
const region = process.env.AWS_REGION ?? 'us-east-1';
const round = (v: number) => Math.round(v);

/** CPU seconds a process has used (user + system), from /proc; null where there is no /proc or no pid. */
function cpuSeconds(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

interface Measured {
  ms: number;
  ownCpuS: number;
  serverCpuS: number | null;
}

async function measure(serverPid: number | null, fn: () => Promise<void>): Promise<Measured> {
  const cpu0 = process.cpuUsage();
  const s0 = cpuSeconds(serverPid);
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const s1 = cpuSeconds(serverPid);
  return { ms, ownCpuS: (cpu.user + cpu.system) / 1e6, serverCpuS: s0 !== null && s1 !== null ? s1 - s0 : null };
}

function describe(m: Measured): string {
  return `${(m.ms / 1000).toFixed(1)} s; CPU: this process ${m.ownCpuS.toFixed(1)} s${m.serverCpuS !== null ? `, ElasticMQ ${m.serverCpuS.toFixed(1)} s` : ''}`;
}

async function queue(client: SQSClient, name: string): Promise<string> {
  return (await client.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
}

async function visible(client: SQSClient, url: string): Promise<number> {
  const a = await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  return Number(a.Attributes!.ApproximateNumberOfMessages) + Number(a.Attributes!.ApproximateNumberOfMessagesNotVisible);
}

/** ElasticMQ's own rate: batched sends, 16 requests at a time. */
async function fill(client: SQSClient, url: string, n: number): Promise<void> {
  let next = 0;
  const body = JSON.stringify({ order: 1, pad: 'x'.repeat(200) });
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        const start = next;
        next += 10;
        const entries = Array.from({ length: Math.min(10, n - start) }, (_, k) => ({
          Id: String(k),
          MessageBody: body,
          MessageAttributes: { reason: { DataType: 'String', StringValue: 'timeout' } },
        }));
        await client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries }));
      }
    }),
  );
}

/** The move written plainly: receive 10, send them, delete them, in 16 loops. */
async function plainMove(client: SQSClient, from: string, to: string): Promise<number> {
  let moved = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      let empty = 0;
      while (empty < 2) {
        const r = await client.send(new ReceiveMessageCommand({ QueueUrl: from, MaxNumberOfMessages: 10, VisibilityTimeout: 60, WaitTimeSeconds: empty > 0 ? 1 : 0, MessageAttributeNames: ['All'] }));
        const ms = r.Messages ?? [];
        if (ms.length === 0) {
          empty++;
          continue;
        }
        empty = 0;
        await client.send(new SendMessageBatchCommand({ QueueUrl: to, Entries: ms.map((m, i) => ({ Id: String(i), MessageBody: m.Body!, MessageAttributes: m.MessageAttributes })) }));
        await client.send(new DeleteMessageBatchCommand({ QueueUrl: from, Entries: ms.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
        moved += ms.length;
      }
    }),
  );
  return moved;
}

export async function run(): Promise<Result[]> {
  const stateFile = join(tmpdir(), 'brokerdeck-aws', `bench-sqs-${process.pid}-${Date.now()}.json`);
  let endpoint = process.env.SQS_ENDPOINT ?? null;
  let started = false;
  let serverPid: number | null = null;
  if (!endpoint) {
    const r = await runAwsScript(['start', 'sqs', '--state', stateFile], 600_000);
    endpoint = parseLines(r.stdout).SQS_ENDPOINT ?? null;
    if (!endpoint) return [{ name: 'SQS re-drive benchmark skipped', value: 0, unit: '', notes: parseLines(r.stdout).SQS_UNAVAILABLE ?? r.stderr.trim().split('\n').slice(-3).join(' | ') }];
    started = true;
  }
  const stateOf = process.env.SQS_STATE_FILE ?? (started ? stateFile : null);
  if (stateOf) {
    try {
      serverPid = (JSON.parse(readFileSync(stateOf, 'utf8')) as { servers: { sqs?: { pid: number } } }).servers.sqs?.pid ?? null;
    } catch {
      serverPid = null;
    }
  }
  const client = new SQSClient({ endpoint, region, credentials, requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }) }) });
  const config = { kind: 'sqs', name: 'bench', endpoint, region, ...credentials, readOnly: false, allowReceiveCountRisk: false } as SqsConnectionConfig;
  const connector = new SqsConnector('bench', config, { logger: silentLogger, audit: { record: () => {}, list: () => [] } } as never, { sampleIntervalMs: 0 });
  const results: Result[] = [];
  try {
    const tag = Date.now().toString(36);
    const queues = await Promise.all(Array.from({ length: 5 }, (_, i) => queue(client, `bench-redrive-${tag}-${i}`)));
    const names = queues.map((_, i) => `bench-redrive-${tag}-${i}`);
    const sends: Measured[] = [];
    const redrives: Measured[] = [];
    const plains: Measured[] = [];
    // The messages travel 0 → 1 → 2 → 3 → 4: sends, then the re-drive and the plain loop in turn.
    sends.push(await measure(serverPid, () => fill(client, queues[0]!, N)));
    for (let hop = 0; hop < 4; hop++) {
      const from = hop;
      const to = hop + 1;
      if (hop % 2 === 0) {
        redrives.push(
          await measure(serverPid, async () => {
            const { id } = await connector.startRedrive({ source: names[from]!, all: true, target: { exchange: '', routingKey: names[to]! } } as never);
            const job = await connector.waitForRedrive(id);
            if (job?.state !== 'completed' || job.moved !== N) throw new Error(`re-drive ended ${job?.state} with ${job?.moved} of ${N} moved: ${job?.error}`);
          }),
        );
      } else {
        plains.push(
          await measure(serverPid, async () => {
            const moved = await plainMove(client, queues[from]!, queues[to]!);
            if (moved !== N) throw new Error(`the plain loop moved ${moved} of ${N}`);
          }),
        );
      }
      if ((await visible(client, queues[to]!)) !== N) throw new Error(`queue ${to} does not hold ${N} messages`);
    }
    const fill2 = await measure(serverPid, () => fill(client, queues[0]!, N));
    sends.push(fill2);
    const best = (ms: Measured[]) => ms.reduce((a, b) => (a.ms <= b.ms ? a : b));
    const send = best(sends);
    const redrive = best(redrives);
    const plain = best(plains);
    results.push({ name: `SQS: ElasticMQ's own batched send rate (16 SendMessageBatch at a time), ${N} messages`, value: round(N / (send.ms / 1000)), unit: 'msg/s', notes: describe(send) });
    results.push({ name: `SQS: the same move written plainly with the SDK (receive, send, delete; 16 loops)`, value: round(N / (plain.ms / 1000)), unit: 'msg/s', notes: describe(plain) });
    results.push({
      name: `SQS: re-drive of ${N} messages through the connection`,
      value: round(N / (redrive.ms / 1000)),
      unit: 'msg/s',
      target: '>= 2000',
      pass: N / (redrive.ms / 1000) >= 2000,
      notes: `${describe(redrive)}; ${round((100 * send.ms) / redrive.ms)} % of the server's send rate, ${round((100 * plain.ms) / redrive.ms)} % of the plain loop`,
    });
  } finally {
    await connector.close();
    client.destroy();
    if (started) await runAwsScript(['stop', '--state', stateFile], 60_000);
  }
  return results;
}
