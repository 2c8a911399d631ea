/**
 * The SQS connection against a real SQS server (ElasticMQ started by
 * tests/aws/aws.mjs, or SQS_ENDPOINT): connection errors, queues with their
 * counts and dead-letter links, publishing (attributes, FIFO, delay, batches),
 * browsing that puts every message back and refuses where a read could
 * dead-letter, and re-drive by Brokerdeck's own job and by SQS's message-move task.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../../src-main/contract/errors.js';
import type { RedriveJob } from '../../../src-main/contract/types.js';
import { SqsConnector, testSqsConnection } from '../../../src-main/connectors/sqs/index.js';
import { startCore } from '../../../src-main/core/core.js';
import { useAwsServer } from '../../aws/servers.js';
import { awsConfig, testDeps, unique, type TestDeps } from './helpers.js';

const sqs = useAwsServer('sqs');

let client: SQSClient;
let connector: SqsConnector;
let deps: TestDeps;

beforeAll(() => {
  const server = sqs.server;
  if (!server) return;
  client = new SQSClient({ endpoint: server.endpoint, region: server.region, ...('profile' in server.credentials ? { profile: server.credentials.profile } : { credentials: server.credentials }) });
  deps = testDeps();
  connector = new SqsConnector('c-sqs', awsConfig('sqs', server) as never, deps, { sampleIntervalMs: 500, moveTaskPollMs: 100 });
});

afterAll(async () => {
  await connector?.close();
  client?.destroy();
});

async function queue(name: string, attributes: Record<string, string> = {}): Promise<{ url: string; arn: string }> {
  const r = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  const a = await client.send(new GetQueueAttributesCommand({ QueueUrl: r.QueueUrl!, AttributeNames: ['QueueArn'] }));
  return { url: r.QueueUrl!, arn: a.Attributes!.QueueArn! };
}

async function counts(url: string): Promise<{ visible: number; inFlight: number; delayed: number }> {
  const a = await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }));
  return {
    visible: Number(a.Attributes!.ApproximateNumberOfMessages),
    inFlight: Number(a.Attributes!.ApproximateNumberOfMessagesNotVisible),
    delayed: Number(a.Attributes!.ApproximateNumberOfMessagesDelayed),
  };
}

/** Sends `n` messages straight into a queue, 10 per request, 16 requests at a time. */
async function fill(url: string, n: number, prefix: string): Promise<void> {
  const batches = Math.ceil(n / 10);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < batches) {
        const b = next++;
        const entries = Array.from({ length: Math.min(10, n - b * 10) }, (_, k) => ({
          Id: String(k),
          MessageBody: JSON.stringify({ i: b * 10 + k, prefix }),
          MessageAttributes: { origin: { DataType: 'String', StringValue: prefix } },
        }));
        await client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries }));
      }
    }),
  );
}

/** Takes every message of a queue (deleting them). */
async function drain(url: string): Promise<Message[]> {
  const out: Message[] = [];
  let empty = 0;
  while (empty < 2) {
    const r = await client.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: empty > 0 ? 1 : 0, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'] }),
    );
    const got = r.Messages ?? [];
    if (got.length === 0) {
      empty++;
      continue;
    }
    empty = 0;
    out.push(...got);
    await client.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: got.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
  }
  return out;
}

async function finished(id: string): Promise<RedriveJob> {
  const job = await connector.waitForRedrive(id);
  if (!job) throw new Error(`job ${id} is unknown`);
  return job;
}

describe('SQS connection', () => {
  it('tells apart a working server, an unreachable one and credentials that cannot be loaded', async (ctx) => {
    const server = sqs.require(ctx);
    const ok = await testSqsConnection(awsConfig('sqs', server) as never);
    expect(ok).toMatchObject({ ok: true });

    const closed = await testSqsConnection({ ...(awsConfig('sqs', server) as never as object), endpoint: 'http://127.0.0.1:9' } as never, 5_000);
    expect(closed).toMatchObject({ ok: false, problem: 'unreachable' });

    // A named profile that the shared files do not have.
    const dir = mkdtempSync(join(tmpdir(), 'bd-aws-'));
    const saved = { config: process.env.AWS_CONFIG_FILE, creds: process.env.AWS_SHARED_CREDENTIALS_FILE };
    try {
      writeFileSync(join(dir, 'config'), '[profile present]\nregion = us-east-1\n');
      writeFileSync(join(dir, 'credentials'), '[present]\naws_access_key_id = a\naws_secret_access_key = b\n');
      process.env.AWS_CONFIG_FILE = join(dir, 'config');
      process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'credentials');
      const missing = await testSqsConnection({ kind: 'sqs', name: 'x', endpoint: server.endpoint, region: server.region, profile: 'absent', readOnly: false, allowReceiveCountRisk: false });
      expect(missing).toMatchObject({ ok: false, problem: 'config_error' });
      expect(missing.message).toMatch(/absent/);
      const present = await testSqsConnection({ kind: 'sqs', name: 'x', endpoint: server.endpoint, region: server.region, profile: 'present', readOnly: false, allowReceiveCountRisk: false });
      expect(present).toMatchObject({ ok: true });
    } finally {
      process.env.AWS_CONFIG_FILE = saved.config;
      process.env.AWS_SHARED_CREDENTIALS_FILE = saved.creds;
      if (saved.config === undefined) delete process.env.AWS_CONFIG_FILE;
      if (saved.creds === undefined) delete process.env.AWS_SHARED_CREDENTIALS_FILE;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is saved through the core with its secret sealed, and answers under the usual routes', async (ctx) => {
    const server = sqs.require(ctx);
    const dataDir = mkdtempSync(join(tmpdir(), 'bd-sqs-core-'));
    const secret = `secret-${unique('s')}`;
    const core = await startCore({ dataDir, version: '0.0.0-test' });
    try {
      await expect(core.call('connections/create', { kind: 'sqs', name: 'bad', region: 'eu-west-1', accessKeyId: 'AKIA' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'secretAccessKey',
      });
      const { id } = await core.call('connections/create', { kind: 'sqs', name: 'local sqs', endpoint: server.endpoint, region: server.region, accessKeyId: 'test', secretAccessKey: secret });
      const info = await core.call('connections/get', { connectionId: id });
      expect(info).toMatchObject({ kind: 'sqs', capabilities: expect.arrayContaining(['queues', 'publish', 'redrive']) });
      expect(JSON.stringify(info)).not.toContain(secret);
      const name = unique('core');
      await queue(name);
      await core.call('publish', { connectionId: id, routingKey: name, body: 'through the core' });
      const page = await core.call('queues/messages', { connectionId: id, queue: name, limit: 10 });
      expect(page.messages.map((m) => m.body)).toEqual(['through the core']);
    } finally {
      await core.close();
    }
    for (const file of ['app.db', 'app.db-wal']) {
      try {
        expect(readFileSync(join(dataDir, file)).includes(secret)).toBe(false);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    rmSync(dataDir, { recursive: true, force: true });
  });
});

describe('SQS queues and messages', () => {
  it('lists queues with counts, FIFO and which queues dead-letter into which, and charts the backlog', async (ctx) => {
    sqs.require(ctx);
    const dlqName = unique('dlq');
    const dlq = await queue(dlqName);
    const srcName = unique('src');
    const src = await queue(srcName, { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 3 }) });
    const fifoName = `${unique('orders')}.fifo`;
    await queue(fifoName, { FifoQueue: 'true', ContentBasedDeduplication: 'true' });
    await fill(src.url, 25, 'list');

    const all = await connector.listQueues();
    const byName = new Map(all.map((q) => [q.name, q]));
    expect(byName.get(srcName)).toMatchObject({ ready: 25, messages: 25, deadLetterFor: [] });
    expect(byName.get(srcName)!.arguments.RedrivePolicy).toMatchObject({ maxReceiveCount: 3 });
    expect(byName.get(dlqName)).toMatchObject({ deadLetterFor: [srcName] });
    expect(byName.get(fifoName)!.arguments.FifoQueue).toBe('true');
    expect(await connector.listDeadLetters()).toContainEqual({ queue: dlqName, count: 0, sources: [srcName] });
    expect(await connector.getQueue(dlqName)).toMatchObject({ deadLetterFor: [srcName] });
    await expect(connector.getQueue(unique('absent'))).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'queue' });
    await expect.poll(async () => (await connector.history({ kind: 'queue', name: srcName, range: 'hour' })).samples.some((s) => s.ready === 25)).toBe(true);
  });

  it('publishes with typed attributes, in batches, to FIFO queues with group and deduplication ids, and with a delay', async (ctx) => {
    sqs.require(ctx);
    const name = unique('pub');
    const q = await queue(name);
    const r = await connector.publish({
      exchange: '',
      routingKey: name,
      body: '{"n":1}',
      bodyEncoding: 'utf8',
      properties: { headers: { tenant: 'acme', attempt: 3, flag: true, custom: { DataType: 'Number.int', StringValue: '7' } } },
      count: 25,
      mandatory: true,
    });
    expect(r).toMatchObject({ published: 25, routed: { [name]: 25 } });
    const got = await drain(q.url);
    expect(got).toHaveLength(25);
    expect(got[0]!.MessageAttributes).toEqual({
      tenant: { DataType: 'String', StringValue: 'acme' },
      attempt: { DataType: 'Number', StringValue: '3' },
      flag: { DataType: 'String', StringValue: 'true' },
      custom: { DataType: 'Number.int', StringValue: '7' },
    });

    const fifoName = `${unique('pub')}.fifo`;
    const fifo = await queue(fifoName, { FifoQueue: 'true' });
    const base = { exchange: '', routingKey: fifoName, bodyEncoding: 'utf8' as const, properties: {}, mandatory: true };
    await expect(connector.publish({ ...base, body: 'x', count: 1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'messageGroupId' });
    await connector.publish({ ...base, body: 'first', count: 1, messageGroupId: 'g1', deduplicationId: 'd1' });
    // The same deduplication id within five minutes: SQS drops the copy.
    await connector.publish({ ...base, body: 'again', count: 1, messageGroupId: 'g1', deduplicationId: 'd1' });
    await connector.publish({ ...base, body: 'many', count: 12, messageGroupId: 'g2' });
    const fifoMessages = await drain(fifo.url);
    expect(fifoMessages.map((m) => m.Body).filter((b) => b !== 'many')).toEqual(['first']);
    expect(fifoMessages.filter((m) => m.Body === 'many')).toHaveLength(12);
    expect(fifoMessages.find((m) => m.Body === 'first')!.Attributes).toMatchObject({ MessageGroupId: 'g1', MessageDeduplicationId: 'd1' });

    await connector.publish({ exchange: '', routingKey: name, body: 'later', bodyEncoding: 'utf8', properties: {}, count: 3, mandatory: true, delaySeconds: 60 });
    await expect.poll(() => counts(q.url)).toMatchObject({ delayed: 3, visible: 0 });

    await expect(connector.publish({ ...base, routingKey: unique('absent'), body: 'x', count: 1 })).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'routingKey' });
    await expect(connector.publish({ ...base, exchange: 'amq.direct', body: 'x', count: 1 })).rejects.toMatchObject({ field: 'exchange' });
    await expect(
      connector.publish({ ...base, routingKey: name, body: 'x', count: 1, properties: { headers: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`h${i}`, 'v'])) } }),
    ).rejects.toMatchObject({ field: 'properties.headers' });
  });

  it('browses by receiving and putting every message back, shows receive counts, filters, and refuses where a read could dead-letter', async (ctx) => {
    sqs.require(ctx);
    const name = unique('browse');
    const q = await queue(name);
    await fill(q.url, 30, 'browse');
    const first = await connector.browseQueue({ queue: name, limit: 100, includeUnacked: true, allowQuorumPeek: false });
    expect(first).toMatchObject({ scanned: 30, matched: 30, nextCursor: null });
    expect(new Set(first.messages.map((m) => m.id)).size).toBe(30);
    expect(first.messages.every((m) => m.deliveryCount === 1 && m.properties.headers?.origin === 'browse')).toBe(true);
    // Every message is visible again at once.
    await expect.poll(() => counts(q.url)).toMatchObject({ visible: 30, inFlight: 0 });
    const second = await connector.browseQueue({ queue: name, limit: 100, includeUnacked: true, allowQuorumPeek: false, q: '"i":7,' });
    expect(second).toMatchObject({ scanned: 30, matched: 1 });
    expect(second.messages[0]!.deliveryCount).toBe(2);

    const dlq = await queue(unique('browse-dlq'));
    const guardedName = unique('guarded');
    const guarded = await queue(guardedName, { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 2 }) });
    await fill(guarded.url, 5, 'guarded');
    const refused = await connector.browseQueue({ queue: guardedName, limit: 10, includeUnacked: true, allowQuorumPeek: false }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ code: 'PRECONDITION_FAILED', field: 'allowReceiveCountRisk' });
    expect((refused as Error).message).toMatch(/received 2 times/);
    const risked = await connector.browseQueue({ queue: guardedName, limit: 10, includeUnacked: true, allowQuorumPeek: false, allowReceiveCountRisk: true });
    expect(risked.messages).toHaveLength(5);
    // Two reads reach maxReceiveCount: the next receive moves them to the dead-letter queue, as the refusal said.
    await connector.browseQueue({ queue: guardedName, limit: 10, includeUnacked: true, allowQuorumPeek: false, allowReceiveCountRisk: true });
    await drain(guarded.url);
    await expect.poll(async () => (await counts(dlq.url)).visible).toBe(5);
  });

  it('gets messages: ack deletes them, requeue puts them back', async (ctx) => {
    sqs.require(ctx);
    const name = unique('get');
    const q = await queue(name);
    await fill(q.url, 12, 'get');
    const requeued = await connector.getMessages({ queue: name, count: 5, ackMode: 'requeue', allowQuorumPeek: false });
    expect(requeued).toHaveLength(5);
    await expect.poll(() => counts(q.url)).toMatchObject({ visible: 12, inFlight: 0 });
    const taken = await connector.getMessages({ queue: name, count: 5, ackMode: 'ack', allowQuorumPeek: false });
    expect(taken).toHaveLength(5);
    await expect.poll(() => counts(q.url)).toMatchObject({ visible: 7, inFlight: 0 });
    await expect(connector.getMessages({ queue: name, count: 1, ackMode: 'reject', allowQuorumPeek: false })).rejects.toMatchObject({ field: 'ackMode' });
  });
});

describe('SQS re-drive', () => {
  async function deadLetterPair(maxReceiveCount = 1) {
    const dlqName = unique('rd-dlq');
    const dlq = await queue(dlqName);
    const srcName = unique('rd-src');
    const src = await queue(srcName, { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount }) });
    return { dlqName, dlq, srcName, src };
  }

  it('moves messages that SQS dead-lettered back to their source, each once, with x-redriven-count, and audits the job', async (ctx) => {
    sqs.require(ctx);
    const { dlqName, dlq, srcName, src } = await deadLetterPair(1);
    await fill(src.url, 20, 'real');
    // Received once and not deleted: the second receive moves each to the dead-letter queue.
    await client.send(new ReceiveMessageCommand({ QueueUrl: src.url, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }));
    await client.send(new ReceiveMessageCommand({ QueueUrl: src.url, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }));
    for (let i = 0; i < 6 && (await counts(dlq.url)).visible < 20; i++) {
      await client.send(new ReceiveMessageCommand({ QueueUrl: src.url, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }));
    }
    await expect.poll(async () => (await counts(dlq.url)).visible).toBe(20);
    await fill(dlq.url, 100, 'direct');

    const { id } = await connector.startRedrive({ source: dlqName, all: true });
    const job = await finished(id);
    expect(job).toMatchObject({ state: 'completed', moved: 120, failed: 0, source: dlqName, target: srcName });
    await expect.poll(() => counts(dlq.url)).toMatchObject({ visible: 0, inFlight: 0 });
    const back = await drain(src.url);
    expect(back).toHaveLength(120);
    const bodies = new Set(back.map((m) => m.Body));
    expect(bodies.size).toBe(120);
    expect(back.every((m) => m.MessageAttributes?.['x-redriven-count']?.StringValue === '1')).toBe(true);
    expect(back.filter((m) => m.MessageAttributes?.origin?.StringValue === 'real')).toHaveLength(20);
    expect(deps.audits.find((a) => a.id === id)).toMatchObject({ action: 'redrive', source: dlqName, target: srcName, count: 120, state: 'completed' });
  });

  it('moves only the chosen messages, or those a filter picks, and leaves the rest visible', async (ctx) => {
    sqs.require(ctx);
    const { dlqName, dlq, srcName, src } = await deadLetterPair(3);
    await fill(dlq.url, 40, 'pick');
    const page = await connector.browseQueue({ queue: dlqName, limit: 100, includeUnacked: true, allowQuorumPeek: false });
    const chosen = page.messages.slice(0, 3).map((m) => m.id);
    const byIds = await finished((await connector.startRedrive({ source: dlqName, messageIds: chosen })).id);
    expect(byIds).toMatchObject({ state: 'completed', moved: 3, total: 3 });
    await expect.poll(() => counts(dlq.url)).toMatchObject({ visible: 37, inFlight: 0 });
    const chosenBodies = page.messages.slice(0, 3).map((m) => m.body);
    expect((await drain(src.url)).map((m) => m.Body).sort()).toEqual(chosenBodies.sort());

    // SQS hands messages out in no fixed order: the filter picks one that was not among the chosen three.
    const chosenNumbers = new Set(page.messages.slice(0, 3).map((m) => (JSON.parse(m.body!) as { i: number }).i));
    const pick = [39, 38, 37, 36].find((i) => !chosenNumbers.has(i))!;
    const byFilter = await finished((await connector.startRedrive({ source: dlqName, all: true, filter: { jsonPath: '$.i', jsonEquals: String(pick) }, target: { exchange: '', routingKey: srcName } })).id);
    expect(byFilter).toMatchObject({ state: 'completed', moved: 1 });
    await expect.poll(() => counts(dlq.url)).toMatchObject({ visible: 36, inFlight: 0 });
    const moved = await drain(src.url);
    expect(moved.map((m) => JSON.parse(m.Body!).i)).toEqual([pick]);

    await expect(connector.startRedrive({ source: dlqName, all: true, target: { exchange: '', routingKey: unique('absent') } })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      field: 'target.routingKey',
    });
  });

  it('keeps FIFO order within each group and the deduplication ids', async (ctx) => {
    sqs.require(ctx);
    const dlqName = `${unique('fifo-dlq')}.fifo`;
    const dlq = await queue(dlqName, { FifoQueue: 'true' });
    const srcName = `${unique('fifo-src')}.fifo`;
    const src = await queue(srcName, { FifoQueue: 'true', RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 5 }) });
    for (let b = 0; b < 3; b++) {
      await client.send(
        new SendMessageBatchCommand({
          QueueUrl: dlq.url,
          Entries: Array.from({ length: 10 }, (_, k) => ({ Id: String(k), MessageBody: `${k % 2 === 0 ? 'a' : 'b'}-${b * 10 + k}`, MessageGroupId: k % 2 === 0 ? 'a' : 'b', MessageDeduplicationId: `d-${b}-${k}` })),
        }),
      );
    }
    const job = await finished((await connector.startRedrive({ source: dlqName, all: true })).id);
    expect(job).toMatchObject({ state: 'completed', moved: 30 });
    const back = await drain(src.url);
    const order = (g: string) => back.filter((m) => m.Attributes!.MessageGroupId === g).map((m) => Number(m.Body!.split('-')[1]));
    expect(order('a')).toEqual([...order('a')].sort((x, y) => x - y));
    expect(order('b')).toEqual([...order('b')].sort((x, y) => x - y));
    expect(back).toHaveLength(30);
  });

  it('is cancelled mid-way at a rate limit, keeping what moved moved and the rest in the dead-letter queue', async (ctx) => {
    sqs.require(ctx);
    const { dlqName, dlq, src } = await deadLetterPair(1);
    await fill(dlq.url, 200, 'cancel');
    const { id } = await connector.startRedrive({ source: dlqName, all: true, ratePerSecond: 20 });
    await expect.poll(async () => (await connector.getRedrive(id))?.moved ?? 0).toBeGreaterThan(0);
    const cancelled = await connector.cancelRedrive(id);
    expect(cancelled?.state).toBe('cancelled');
    const moved = cancelled!.moved;
    expect(moved).toBeLessThan(200);
    await expect.poll(() => counts(dlq.url)).toMatchObject({ visible: 200 - moved, inFlight: 0 });
    expect(await drain(src.url)).toHaveLength(moved);
  });

  it("hands the whole queue to SQS's message-move task and follows it to the end", async (ctx) => {
    sqs.require(ctx);
    const { dlqName, dlq, srcName, src } = await deadLetterPair(1);
    await fill(dlq.url, 50, 'task');
    await expect(connector.startRedrive({ source: dlqName, messageIds: ['x'], useMoveTask: true })).rejects.toMatchObject({ field: 'useMoveTask' });
    const job = await finished((await connector.startRedrive({ source: dlqName, all: true, useMoveTask: true })).id);
    expect(job).toMatchObject({ state: 'completed', moved: 50, source: dlqName, target: srcName });
    await expect.poll(() => counts(dlq.url)).toMatchObject({ visible: 0 });
    expect(await drain(src.url)).toHaveLength(50);
  });

  // 500 by default to keep the run short; SQS_REDRIVE_COUNT=10000 gives the benchmark's figure.
  it('re-drives a dead-letter queue in bulk and reports the rate beside the server\'s own send rate', { timeout: 600_000 }, async (ctx) => {
    sqs.require(ctx);
    const n = Number(process.env.SQS_REDRIVE_COUNT ?? 500);
    const { dlqName, dlq, src } = await deadLetterPair(1);
    const filled = Date.now();
    await fill(dlq.url, n, 'bench');
    const fillMs = Date.now() - filled;
    // A connection of its own that samples no statistics, so only the work measured reaches the server.
    const quiet = new SqsConnector('c-sqs-bench', awsConfig('sqs', sqs.server!) as never, testDeps(), { sampleIntervalMs: 0 });
    ctx.onTestFinished(() => quiet.close());
    const browsing = Date.now();
    const page = await quiet.browseQueue({ queue: dlqName, limit: 100, includeUnacked: true, allowQuorumPeek: false });
    const browseMs = Date.now() - browsing;
    expect(page.messages).toHaveLength(100);
    await expect.poll(() => counts(dlq.url)).toMatchObject({ visible: n, inFlight: 0 });
    const started = Date.now();
    const { id } = await quiet.startRedrive({ source: dlqName, all: true });
    const job = await quiet.waitForRedrive(id);
    const ms = Date.now() - started;
    expect(job).toMatchObject({ state: 'completed', moved: n, failed: 0 });
    await expect.poll(() => counts(src.url)).toMatchObject({ visible: n });
    await expect.poll(() => counts(dlq.url)).toMatchObject({ visible: 0, inFlight: 0 });
    console.log(
      `[sqs] browse 100: ${browseMs} ms; re-drive of ${n} messages: ${ms} ms, ${Math.round((n * 1000) / ms)} msg/s ` +
        `(the server's own rate, filling the dead-letter queue with 16 batch sends at a time: ${Math.round((n * 1000) / fillMs)} msg/s)`,
    );
  });
});
