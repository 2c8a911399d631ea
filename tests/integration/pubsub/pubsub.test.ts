/**
 * The Pub/Sub connection against the Pub/Sub emulator (started by
 * tests/pubsub/pubsub.mjs, or PUBSUB_EMULATOR_HOST): topics and subscriptions with
 * their settings, publishing with attributes and ordering keys, browsing that hands
 * every message back (a real subscriber still receives each), the refusal on a
 * subscription with a dead-letter policy, a message dead-lettered by Pub/Sub itself
 * and re-driven exactly once, cancel, and the backlog a subscriber leaves behind.
 *
 * The emulator (0.8.20) applies dead-letter policies: after maxDeliveryAttempts
 * deliveries it forwards the message to the dead-letter topic (on the next pull of the
 * subscription) with CloudPubSubDeadLetterSourceSubscription, …SourceSubscriptionProject,
 * …SourceDeliveryCount and …SourceTopicPublishTime set, as Google Cloud does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../../src-main/contract/errors.js';
import type { RedriveJob } from '../../../src-main/contract/types.js';
import { closeClients, createClients } from '../../../src-main/connectors/pubsub/client.js';
import { PubsubConnector, testPubsubConnection } from '../../../src-main/connectors/pubsub/index.js';
import { PubsubRedriveRun } from '../../../src-main/connectors/pubsub/redrive.js';
import { redriveJobs } from '../../../src-main/jobs/redrives.js';
import { startCore } from '../../../src-main/core/core.js';
import { usePubsubEmulator } from '../../pubsub/servers.js';
import { testDeps, unique, type TestDeps } from '../aws/helpers.js';
import { createTopic, emulatorConfig, PROJECT, publishRaw, rawClients, subPath, subscribe, topicPath, type RawClients } from './helpers.js';

const emulator = usePubsubEmulator();

let raw: RawClients;
let connector: PubsubConnector;
let deps: TestDeps;

beforeAll(() => {
  const e = emulator.emulator;
  if (!e) return;
  raw = rawClients(e);
  deps = testDeps();
  connector = new PubsubConnector('c-ps', emulatorConfig(e) as never, deps, { sampleIntervalMs: 0 });
});

afterAll(async () => {
  await connector?.close();
  if (raw) await Promise.allSettled([raw.publisher.close(), raw.subscriber.close(), raw.pubsub.close()]);
});

/** A topic, a dead-letter topic with a subscription, and a subscription with a dead-letter policy. */
async function deadLetterSetup(maxDeliveryAttempts = 5) {
  const topic = unique('orders');
  const dlt = unique('orders-dl');
  const sub = unique('orders-sub');
  const dlSub = unique('orders-dl-sub');
  await createTopic(raw, topic);
  await createTopic(raw, dlt);
  await raw.subscriber.createSubscription({ name: subPath(dlSub), topic: topicPath(dlt) });
  await raw.subscriber.createSubscription({
    name: subPath(sub),
    topic: topicPath(topic),
    ackDeadlineSeconds: 10,
    deadLetterPolicy: { deadLetterTopic: topicPath(dlt), maxDeliveryAttempts },
  });
  return { topic, dlt, sub, dlSub };
}

async function waitJob(id: string): Promise<RedriveJob> {
  const job = await connector.waitForRedrive(id);
  if (!job) throw new Error(`job ${id} vanished`);
  return job;
}

describe('Pub/Sub connection', () => {
  it('connects to the emulator, and through the core: saved, listed, produced to and browsed', async (ctx) => {
    const e = emulator.require(ctx);
    const ok = await testPubsubConnection(emulatorConfig(e) as never);
    expect(ok).toMatchObject({ ok: true, details: { project: PROJECT, emulator: true } });

    const dataDir = mkdtempSync(join(tmpdir(), 'bd-pubsub-core-'));
    const core = await startCore({ dataDir, version: '0.0.0-test' });
    try {
      await expect(core.call('connections/create', { kind: 'pubsub', name: 'bad', projectId: 'X', emulatorHost: e.host })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'projectId',
      });
      await expect(core.call('connections/create', { kind: 'pubsub', name: 'bad', projectId: PROJECT, emulatorHost: 'http://localhost' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'emulatorHost',
      });
      const { id } = await core.call('connections/create', { kind: 'pubsub', name: 'emulator', projectId: PROJECT, emulatorHost: e.host });
      const info = await core.call('connections/get', { connectionId: id });
      expect(info).toMatchObject({ kind: 'pubsub', capabilities: expect.arrayContaining(['queues', 'topics', 'redrive']), notices: { peek: expect.stringContaining('dead-letter') } });
      const topic = unique('core');
      const sub = unique('core-sub');
      await createTopic(raw, topic);
      await raw.subscriber.createSubscription({ name: subPath(sub), topic: topicPath(topic) });
      const topics = await core.call('topics/list', { connectionId: id });
      expect(topics.find((t) => t.name === topic)).toMatchObject({ partitions: [{ partition: 0 }], config: { subscriptions: sub } });
      const r = await core.call('topics/produce', { connectionId: id, topic, value: 'through the core', headers: { origin: 'core' } });
      expect(r.positions?.[0]?.position).toMatch(/\S/);
      const page = await core.call('queues/messages', { connectionId: id, queue: sub, limit: 10 });
      expect(page.messages.map((m) => [m.body, m.properties.headers?.origin, m.id])).toEqual([['through the core', 'core', r.positions![0]!.position]]);
      await expect(core.call('topics/messages', { connectionId: id, topic })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(sub) });
      // The queue-shaped publish names the topic; a subscription's name is answered with its topic.
      const p = await core.call('publish', { connectionId: id, routingKey: topic, body: 'as a publish', properties: { headers: { n: 1 } }, count: 2 });
      expect(p).toMatchObject({ published: 2, confirmed: true });
      await expect(core.call('publish', { connectionId: id, routingKey: sub, body: 'x' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'routingKey',
        message: expect.stringContaining(`publish to its topic "${topic}"`),
      });
      const again = await core.call('queues/messages', { connectionId: id, queue: sub, limit: 10 });
      expect(again.messages.filter((m) => m.body === 'as a publish').map((m) => m.properties.headers?.n)).toEqual(['1', '1']);
    } finally {
      await core.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('Pub/Sub topics and subscriptions', () => {
  it('lists topics with their subscriptions and subscriptions with their settings and dead-letter links', async (ctx) => {
    emulator.require(ctx);
    const { topic, dlt, sub, dlSub } = await deadLetterSetup(7);
    const plain = unique('plain');
    await raw.subscriber.createSubscription({
      name: subPath(plain),
      topic: topicPath(topic),
      ackDeadlineSeconds: 42,
      filter: 'attributes.kind = "a"',
      enableMessageOrdering: true,
      retryPolicy: { minimumBackoff: { seconds: 5 }, maximumBackoff: { seconds: 60 } },
      messageRetentionDuration: { seconds: 3600 },
    });
    const topics = await connector.listTopics();
    expect(topics.find((t) => t.name === topic)).toMatchObject({ config: { subscriptions: [plain, sub].sort().join(', ') }, deadLetterFor: [], countsUnknown: true });
    expect(topics.find((t) => t.name === dlt)).toMatchObject({ config: { subscriptions: dlSub }, deadLetterFor: [sub] });
    expect(await connector.getTopic(dlt)).toMatchObject({ name: dlt, deadLetterFor: [sub] });
    await expect(connector.getTopic(unique('missing'))).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'topic' });

    const queues = await connector.listQueues();
    expect(queues.find((q) => q.name === plain)?.arguments).toMatchObject({
      topic,
      ackDeadlineSeconds: 42,
      filter: 'attributes.kind = "a"',
      enableMessageOrdering: true,
      retryPolicy: { minimumBackoffSeconds: 5, maximumBackoffSeconds: 60 },
      messageRetentionSeconds: 3600,
      deadLetterPolicy: null,
      backlog: '0 (counted by pulling)',
    });
    expect(queues.find((q) => q.name === sub)?.arguments).toMatchObject({
      deadLetterPolicy: { deadLetterTopic: dlt, maxDeliveryAttempts: 7 },
      backlog: expect.stringMatching(/^not counted: it has a dead-letter policy/),
    });
    expect(queues.find((q) => q.name === dlSub)).toMatchObject({ deadLetterFor: [sub] });
    const dead = await connector.listDeadLetters();
    expect(dead.find((d) => d.queue === dlSub)).toEqual({ queue: dlSub, count: 0, sources: [sub] });
    await expect(connector.getQueue(unique('missing'))).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'queue' });
  });

  it('publishes batches with attributes and an ordering key, delivered in order to a real subscriber', async (ctx) => {
    emulator.require(ctx);
    const topic = unique('produce');
    const sub = unique('produce-sub');
    await createTopic(raw, topic);
    await raw.subscriber.createSubscription({ name: subPath(sub), topic: topicPath(topic), enableMessageOrdering: true });
    const { compileRecord } = await import('../../../src-main/ground/placeholders.js');
    const args = { topic, key: 'customer-7', value: 'order {{seq}}', valueEncoding: 'utf8', headers: { kind: 'order', n: '{{seq}}' }, count: 1_200 } as never;
    const r = await connector.produce(args, compileRecord('customer-7', { text: 'order {{seq}}' }, { kind: 'order', n: '{{seq}}' }));
    expect(r).toMatchObject({ published: 1_200, confirmed: true, routed: { [topic]: 1_200 } });
    expect(new Set(r.positions!.map((p) => p.position)).size).toBe(1_200);

    const s = subscribe(raw, sub);
    try {
      await expect.poll(() => new Set(s.received.map((m) => m.id)).size).toBe(1_200);
      const first = s.received[0]!;
      expect(first).toMatchObject({ orderingKey: 'customer-7', attributes: { kind: 'order' } });
      // In order of publishing within the ordering key: the seq placeholder counts up.
      const seqs = s.received.map((m) => Number(m.attributes.n));
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(s.received.map((m) => m.id).slice(0, 3)).toEqual(r.positions!.slice(0, 3).map((p) => p.position));
    } finally {
      await s.close();
    }
    await expect(connector.produce({ ...(args as object), headers: { googKey: 'x' } } as never, compileRecord(null, { text: 'x' }, {}))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'headers.googKey',
    });
    await expect(connector.produce({ ...(args as object), partition: 1 } as never, compileRecord(null, { text: 'x' }, {}))).rejects.toMatchObject({ field: 'partition' });
  });
});

describe('Pub/Sub large messages', () => {
  it('publishes and re-drives 1 MB messages in requests within the 10 MB limit of one publish', async (ctx) => {
    emulator.require(ctx);
    const { topic, sub, dlt, dlSub } = await deadLetterSetup(5);
    const big = 'x'.repeat(1024 * 1024);
    const { compileRecord } = await import('../../../src-main/ground/placeholders.js');
    const r = await connector.produce({ topic: dlt, key: null, value: big, valueEncoding: 'utf8', headers: { CloudPubSubDeadLetterSourceSubscription: sub }, count: 12 } as never, compileRecord(null, { text: big }, { CloudPubSubDeadLetterSourceSubscription: sub }));
    expect(r.published).toBe(12);
    const job = await waitJob((await connector.startRedrive({ source: dlSub, all: true } as never)).id);
    expect(job).toMatchObject({ state: 'completed', moved: 12, failed: 0, error: null, target: topic });
    const s = subscribe(raw, sub);
    try {
      await expect.poll(() => s.received.length).toBe(12);
      expect(s.received.every((m) => m.data.length === big.length)).toBe(true);
    } finally {
      await s.close();
    }
  });
});

describe('Pub/Sub browsing', () => {
  it('browses without loss: every message is still delivered to a real subscriber afterwards, once', async (ctx) => {
    emulator.require(ctx);
    const topic = unique('browse');
    const sub = unique('browse-sub');
    await createTopic(raw, topic);
    await raw.subscriber.createSubscription({ name: subPath(sub), topic: topicPath(topic), ackDeadlineSeconds: 30 });
    const ids = await publishRaw(
      raw,
      topic,
      Array.from({ length: 25 }, (_, i) => ({ data: JSON.stringify({ i }), attributes: { parity: i % 2 ? 'odd' : 'even' }, ...(i === 3 ? { orderingKey: 'k3' } : {}) })),
    );
    // The count and the first page asked together (as the UI does) each see every message.
    const [q, page] = await Promise.all([connector.getQueue(sub), connector.browseQueue({ queue: sub, limit: 100, includeUnacked: true, allowQuorumPeek: false } as never)]);
    expect(q).toMatchObject({ messages: 25, ready: 25 });
    expect(page.messages.map((m) => m.id).sort()).toEqual([...ids].sort());
    expect(page).toMatchObject({ scanned: 25, matched: 25, nextCursor: null, complete: true });
    const m3 = page.messages.find((m) => m.body === '{"i":3}')!;
    expect(m3).toMatchObject({ id: ids[3], properties: { messageId: ids[3], headers: { parity: 'odd' } }, attributes: { messageId: ids[3], orderingKey: 'k3' } });
    expect(m3.enqueuedAt).toBeGreaterThan(Date.now() - 10 * 60_000);
    // Handed back at once: a second browse sees them all again, and filters apply.
    const odd = await connector.browseQueue({ queue: sub, limit: 100, includeUnacked: true, allowQuorumPeek: false, headerName: 'parity', headerValue: 'odd' } as never);
    expect(odd.messages).toHaveLength(12);
    expect(odd.scanned).toBe(25);
    const head = await connector.browseQueue({ queue: sub, limit: 5, position: 20, includeUnacked: true, allowQuorumPeek: false } as never);
    expect(head.messages).toHaveLength(5);

    const s = subscribe(raw, sub);
    try {
      await expect.poll(() => new Set(s.received.map((m) => m.id)).size).toBe(25);
      expect(new Set(s.received.map((m) => m.id))).toEqual(new Set(ids));
    } finally {
      await s.close();
    }
    // All acknowledged: nothing is left to browse.
    await expect.poll(async () => (await connector.browseQueue({ queue: sub, limit: 100, includeUnacked: true, allowQuorumPeek: false } as never)).scanned).toBe(0);
  });

  it('refuses to browse a subscription with a dead-letter policy unless accepted, per request or per connection, and shows deliveryAttempt', async (ctx) => {
    const e = emulator.require(ctx);
    const { topic, sub } = await deadLetterSetup(5);
    const [id] = await publishRaw(raw, topic, [{ data: 'careful', attributes: { a: '1' } }]);
    const refused = await connector.browseQueue({ queue: sub, limit: 10, includeUnacked: true, allowQuorumPeek: false } as never).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ code: 'PRECONDITION_FAILED', field: 'allowDeliveryAttemptRisk', message: expect.stringContaining('delivery attempt') });
    expect((refused as Error).message).toContain('5 times');

    const first = await connector.browseQueue({ queue: sub, limit: 10, includeUnacked: true, allowQuorumPeek: false, allowDeliveryAttemptRisk: true } as never);
    expect(first.messages).toEqual([expect.objectContaining({ id, deliveryCount: 1, attributes: expect.objectContaining({ deliveryAttempt: '1' }) })]);
    const accepting = new PubsubConnector('c-ps-risk', emulatorConfig(e, { allowDeliveryAttemptRisk: true }) as never, testDeps(), { sampleIntervalMs: 0 });
    try {
      const second = await accepting.browseQueue({ queue: sub, limit: 10, includeUnacked: true, allowQuorumPeek: false } as never);
      expect(second.messages).toEqual([expect.objectContaining({ id, deliveryCount: 2, redelivered: true })]);
      const q = await accepting.getQueue(sub);
      expect(q.arguments.backlog).toBe('1 (counted by pulling)');
    } finally {
      await accepting.close();
    }
    // The message is still there for a real subscriber, its attempts counted.
    const s = subscribe(raw, sub);
    try {
      await expect.poll(() => s.received.length).toBeGreaterThanOrEqual(1);
      expect(s.received[0]).toMatchObject({ id, data: 'careful', deliveryAttempt: 4 });
    } finally {
      await s.close();
    }
  });
});

describe('Pub/Sub dead letters and re-drive', () => {
  it("re-drives a message Pub/Sub itself dead-lettered back to its source subscription, exactly once", async (ctx) => {
    emulator.require(ctx);
    const { topic, dlt, sub, dlSub } = await deadLetterSetup(5);
    const [id] = await publishRaw(raw, topic, [{ data: 'poison', attributes: { origin: 'test' } }]);
    // A real subscriber refuses it every time: Pub/Sub moves it after the fifth delivery.
    const nacker = subscribe(raw, sub, () => 'nack');
    let dead: Awaited<ReturnType<typeof connector.browseQueue>>;
    try {
      await expect
        .poll(async () => {
          dead = await connector.browseQueue({ queue: dlSub, limit: 10, includeUnacked: true, allowQuorumPeek: false } as never);
          return dead.messages.length;
        })
        .toBe(1);
    } finally {
      await nacker.close();
    }
    expect(nacker.received.map((m) => m.deliveryAttempt)).toEqual([1, 2, 3, 4, 5]);
    const copy = dead!.messages[0]!;
    expect(copy.body).toBe('poison');
    expect(copy.properties.headers).toMatchObject({
      origin: 'test',
      CloudPubSubDeadLetterSourceSubscription: sub,
      CloudPubSubDeadLetterSourceSubscriptionProject: PROJECT,
      CloudPubSubDeadLetterSourceDeliveryCount: '5',
      CloudPubSubDeadLetterSourceTopicPublishTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect((await connector.listDeadLetters()).find((d) => d.queue === dlSub)).toEqual({ queue: dlSub, count: 1, sources: [sub] });
    expect(id).toBeTruthy();

    const { id: jobId } = await connector.startRedrive({ source: dlSub, all: true } as never);
    const job = await waitJob(jobId);
    expect(job).toMatchObject({ state: 'completed', moved: 1, failed: 0, error: null, source: dlSub, target: topic });
    expect(deps.audits.find((a) => a.source === dlSub)).toMatchObject({ action: 'redrive', source: dlSub, target: topic, count: 1 });

    // The source subscription receives it once, without the dead-letter attributes, the move counted.
    const s = subscribe(raw, sub);
    try {
      await expect.poll(() => s.received.length).toBe(1);
      // The source subscription has nothing else: a browse of it (accepted) finds nothing left unacknowledged.
      await expect.poll(async () => (await connector.browseQueue({ queue: sub, limit: 10, includeUnacked: true, allowQuorumPeek: false, allowDeliveryAttemptRisk: true } as never)).scanned).toBe(0);
      expect(s.received).toHaveLength(1);
      expect(s.received[0]!.data).toBe('poison');
      expect(s.received[0]!.attributes).toEqual({ origin: 'test', 'x-redriven-count': '1' });
    } finally {
      await s.close();
    }
    const after = await connector.browseQueue({ queue: dlSub, limit: 10, includeUnacked: true, allowQuorumPeek: false } as never);
    expect(after.scanned).toBe(0);
    expect(dlt).toBeTruthy();
  });

  it('re-drives chosen ids and a filter to a named topic, and a cancelled re-drive loses nothing', async (ctx) => {
    emulator.require(ctx);
    const { topic, sub, dlt, dlSub } = await deadLetterSetup(5);
    const attrs = (i: number) => ({
      CloudPubSubDeadLetterSourceSubscription: sub,
      CloudPubSubDeadLetterSourceSubscriptionProject: PROJECT,
      CloudPubSubDeadLetterSourceDeliveryCount: '5',
      CloudPubSubDeadLetterSourceTopicPublishTime: new Date().toISOString(),
      i: String(i),
      colour: i % 3 === 0 ? 'red' : 'blue',
    });
    // Dead letters as Pub/Sub writes them, published straight to the dead-letter topic.
    const ids = await publishRaw(raw, dlt, Array.from({ length: 300 }, (_, i) => ({ data: `m${i}`, attributes: attrs(i) })));
    const target = unique('elsewhere');
    const targetSub = unique('elsewhere-sub');
    await createTopic(raw, target);
    await raw.subscriber.createSubscription({ name: subPath(targetSub), topic: topicPath(target) });

    const chosen = [ids[1]!, ids[2]!];
    const picked = await waitJob((await connector.startRedrive({ source: dlSub, messageIds: chosen, target: { exchange: '', routingKey: target } } as never)).id);
    expect(picked).toMatchObject({ state: 'completed', moved: 2, total: 2, target });
    const red = await waitJob((await connector.startRedrive({ source: dlSub, all: true, filter: { headerName: 'colour', headerValue: 'red' }, target: { exchange: '', routingKey: target } } as never)).id);
    expect(red).toMatchObject({ state: 'completed', moved: 100 });

    // A slow re-drive of the rest back to the source topic, cancelled while it runs.
    const { id: slowId } = await connector.startRedrive({ source: dlSub, all: true, ratePerSecond: 40 } as never);
    await expect.poll(async () => (await connector.getRedrive(slowId))?.moved ?? 0).toBeGreaterThan(0);
    const cancelled = await connector.cancelRedrive(slowId);
    expect(cancelled?.state).toBe('cancelled');
    const moved = cancelled!.moved;
    expect(moved).toBeLessThan(198);

    const atTarget = subscribe(raw, targetSub);
    const atSource = subscribe(raw, sub, () => 'ack', 1000);
    try {
      await expect.poll(() => atTarget.received.length).toBe(102);
      await expect.poll(() => atSource.received.length).toBe(moved);
      const left = await connector.browseQueue({ queue: dlSub, limit: 1000, includeUnacked: true, allowQuorumPeek: false } as never);
      // Nothing lost, nothing doubled: what moved plus what is left is everything.
      const all = [...atTarget.received.map((m) => m.attributes.i), ...atSource.received.map((m) => m.attributes.i), ...left.messages.map((m) => String(m.properties.headers?.i))];
      expect(all).toHaveLength(300);
      expect(new Set(all).size).toBe(300);
      expect(atTarget.received.filter((m) => m.attributes.colour === 'red')).toHaveLength(100);
      expect(atTarget.received.map((m) => m.attributes.i)).toEqual(expect.arrayContaining(['1', '2']));
      expect(topic).toBeTruthy();
    } finally {
      await atTarget.close();
      await atSource.close();
    }
  });
});

describe('Pub/Sub re-drive beside counts', () => {
  it('waits for a count or browse that holds the dead letters for a moment instead of taking the subscription for empty', async (ctx) => {
    const e = emulator.require(ctx);
    const { sub, dlt, dlSub } = await deadLetterSetup(5);
    const attributes = { CloudPubSubDeadLetterSourceSubscription: sub, CloudPubSubDeadLetterSourceSubscriptionProject: PROJECT };
    await publishRaw(raw, dlt, Array.from({ length: 50 }, (_, i) => ({ data: `c${i}`, attributes })));
    // Another reader (as a count or a browse does) holds every dead letter when the job starts.
    const held: string[] = [];
    while (held.length < 50) {
      const [r] = await raw.subscriber.pull({ subscription: subPath(dlSub), maxMessages: 100, returnImmediately: true });
      held.push(...(r.receivedMessages ?? []).map((m) => m.ackId!));
    }
    await raw.subscriber.modifyAckDeadline({ subscription: subPath(dlSub), ackIds: held, ackDeadlineSeconds: 600 });
    let asked = 0;
    let releasing: Promise<unknown> | undefined;
    const clients = createClients(emulatorConfig(e) as never);
    const jobs = redriveJobs({ idPrefix: 'ps-', audit: testDeps().audit, log: testDeps().logger });
    try {
      const [source] = await raw.subscriber.getSubscription({ subscription: subPath(sub) });
      const run = new PubsubRedriveRun(
        jobs,
        {
          project: PROJECT,
          source: dlSub,
          sourcePath: subPath(dlSub),
          target: 'source',
          targetTopic: null,
          topicOf: new Map([[sub, source.topic!]]),
          defaultTopic: source.topic!,
          messageIds: null,
          filter: null,
          ratePerSecond: null,
          approximateCount: 50,
          workers: 2,
          batch: 100,
          emulator: true,
          // The job finds nothing and asks whether someone holds the messages: yes, until they are handed back.
          othersReading: () => {
            asked++;
            releasing ??= raw.subscriber.modifyAckDeadline({ subscription: subPath(dlSub), ackIds: held, ackDeadlineSeconds: 0 });
            return asked <= 2 ? releasing : undefined;
          },
        },
        clients,
        'c-ps',
        testDeps().logger,
      );
      const job = await jobs.settled(run.job.id);
      expect(asked).toBeGreaterThan(0);
      expect(job).toMatchObject({ state: 'completed', moved: 50, failed: 0 });
    } finally {
      jobs.dispose();
      await closeClients(clients);
    }
    const left = await connector.browseQueue({ queue: dlSub, limit: 100, includeUnacked: true, allowQuorumPeek: false } as never);
    expect(left.scanned).toBe(0);
  });
});

describe('Pub/Sub backlog', () => {
  it('counts the backlog a real subscriber leaves behind and charts it', async (ctx) => {
    emulator.require(ctx);
    const topic = unique('backlog');
    const sub = unique('backlog-sub');
    await createTopic(raw, topic);
    await raw.subscriber.createSubscription({ name: subPath(sub), topic: topicPath(topic), ackDeadlineSeconds: 10 });
    await publishRaw(raw, topic, Array.from({ length: 30 }, (_, i) => ({ data: `b${i}` })));
    // The subscriber acknowledges ten and hands back the rest.
    let acked = 0;
    const s = subscribe(
      raw,
      sub,
      () => {
        if (acked < 10) {
          acked++;
          return 'ack';
        }
        return 'nack';
      },
      1,
    );
    await expect.poll(() => acked).toBe(10);
    await s.close();
    await expect.poll(async () => (await connector.getQueue(sub)).messages).toBe(20);
    const stats = await connector.stats();
    expect(stats.queues.find((q) => q.name === sub)).toMatchObject({ messages: 20, ready: 20 });
    const series = await connector.history({ kind: 'queue', name: sub, range: 'hour' } as never);
    expect(series.samples.at(-1)).toMatchObject({ messages: 20 });
  });
});
