/**
 * Pub/Sub connector benchmark against the Pub/Sub emulator (PUBSUB_EMULATOR_HOST,
 * or one started with tests/pubsub/pubsub.mjs and stopped at the end): re-driving
 * 1,000 dead letters (as Pub/Sub writes them, with the CloudPubSubDeadLetter*
 * attributes) back to their source topic, beside the client library alone doing the
 * same moves in the same run (pull, publish, acknowledge, one batch after another).
 * Both are checked: the source subscription holds exactly 1,000 afterwards. Two
 * rounds each, interleaved.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { v1 } from '@google-cloud/pubsub';
import { PubsubConnector } from '../../src-main/connectors/pubsub/index.js';
import type { PubsubConnectionConfig } from '../../src-main/contract/operations.js';
import { silentLogger } from '../../src-main/ground/logger.js';
import { startPubsubEmulator, stopPubsubEmulator } from '../pubsub/control.js';
import type { BenchResult as Result } from './bench-result.js';

const DEAD = 1_000;
const PROJECT = 'brokerdeck-bench';

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

export async function run(): Promise<Result[]> {
  const stateFile = join(tmpdir(), 'brokerdeck-pubsub', `bench-${process.pid}.json`);
  let host = process.env.PUBSUB_EMULATOR_HOST;
  let owned = false;
  if (!host) {
    const started = await startPubsubEmulator(stateFile);
    if ('reason' in started) return [{ name: 'pubsub benchmarks', value: 0, unit: 'skipped', notes: `no Pub/Sub emulator: ${started.reason}` }];
    host = started.host;
    owned = true;
  }
  const at = host.lastIndexOf(':');
  const options = { projectId: PROJECT, servicePath: host.slice(0, at), port: Number(host.slice(at + 1)), sslCreds: credentials.createInsecure(), universeDomain: 'googleapis.com' };
  const publisher = new v1.PublisherClient(options);
  const subscriber = new v1.SubscriberClient(options);
  const config: PubsubConnectionConfig = { kind: 'pubsub', name: 'bench', projectId: PROJECT, emulatorHost: host, allowDeliveryAttemptRisk: false, readOnly: false };
  const connector = new PubsubConnector('bench', config, { logger: silentLogger, audit: { record: () => {}, list: () => [] } }, { sampleIntervalMs: 0 });
  const results: Result[] = [];
  const P = `projects/${PROJECT}`;
  const prefix = `bench-${Date.now().toString(36)}`;

  /** A source topic and subscription with a dead-letter policy, the dead-letter topic and its subscription, filled with DEAD dead letters. */
  async function setup(name: string) {
    const names = { topic: `${prefix}-${name}`, sub: `${prefix}-${name}-sub`, dlt: `${prefix}-${name}-dl`, dlSub: `${prefix}-${name}-dl-sub` };
    await publisher.createTopic({ name: `${P}/topics/${names.topic}` });
    await publisher.createTopic({ name: `${P}/topics/${names.dlt}` });
    await subscriber.createSubscription({ name: `${P}/subscriptions/${names.sub}`, topic: `${P}/topics/${names.topic}`, deadLetterPolicy: { deadLetterTopic: `${P}/topics/${names.dlt}`, maxDeliveryAttempts: 5 } });
    await subscriber.createSubscription({ name: `${P}/subscriptions/${names.dlSub}`, topic: `${P}/topics/${names.dlt}` });
    const attributes = {
      CloudPubSubDeadLetterSourceSubscription: names.sub,
      CloudPubSubDeadLetterSourceSubscriptionProject: PROJECT,
      CloudPubSubDeadLetterSourceDeliveryCount: '5',
      CloudPubSubDeadLetterSourceTopicPublishTime: new Date().toISOString(),
    };
    for (let i = 0; i < DEAD; i += 500) {
      await publisher.publish(
        { topic: `${P}/topics/${names.dlt}`, messages: Array.from({ length: 500 }, (_, k) => ({ data: Buffer.from(`{"order":${i + k}}`), attributes })) },
        { isBundling: false },
      );
    }
    return names;
  }

  /** Messages a subscription holds, counted by pulling without acknowledging (the connector's own count, with the dead-letter policy accepted). */
  async function held(sub: string): Promise<number> {
    const counter = new PubsubConnector('bench-count', { ...config, allowDeliveryAttemptRisk: true }, { logger: silentLogger, audit: { record: () => {}, list: () => [] } }, { sampleIntervalMs: 0 });
    try {
      return (await counter.getQueue(sub)).messages;
    } finally {
      await counter.close();
    }
  }

  /** The connector's re-drive of one filled set: ms, checked. */
  async function connectorRound(round: number): Promise<number> {
    const a = await setup(`connector${round}`);
    const job = await connector.startRedrive({ source: a.dlSub, all: true } as never);
    const done = await timed(() => connector.waitForRedrive(job.id));
    const moved = done.value?.moved ?? 0;
    const atSource = await held(a.sub);
    const left = await held(a.dlSub);
    if (moved !== DEAD || atSource !== DEAD || left !== 0) throw new Error(`connector re-drive: moved ${moved}, source holds ${atSource}, ${left} left: ${JSON.stringify(done.value)}`);
    return done.ms;
  }

  /** The same moves by the client library alone: pull, publish the batch, acknowledge it, until the subscription is empty. */
  async function rawRound(round: number): Promise<number> {
    const b = await setup(`raw${round}`);
    const dlPath = `${P}/subscriptions/${b.dlSub}`;
    const raw = await timed(async () => {
      let empty = 0;
      let n = 0;
      while (empty < 2) {
        const [r] = await subscriber.pull({ subscription: dlPath, maxMessages: 250, returnImmediately: true });
        const got = r.receivedMessages ?? [];
        if (got.length === 0) {
          empty++;
          continue;
        }
        empty = 0;
        await publisher.publish({ topic: `${P}/topics/${b.topic}`, messages: got.map((m) => ({ data: m.message!.data, attributes: { 'x-redriven-count': '1' } })) }, { isBundling: false });
        await subscriber.acknowledge({ subscription: dlPath, ackIds: got.map((m) => m.ackId!) });
        n += got.length;
      }
      return n;
    });
    const atSource = await held(b.sub);
    if (raw.value !== DEAD || atSource !== DEAD) throw new Error(`raw moves: ${raw.value} moved, source holds ${atSource}`);
    return raw.ms;
  }

  try {
    // Two rounds each, interleaved, each going first once: the machine's speed drifts within a run.
    const mine = [await connectorRound(0)];
    const theirs = [await rawRound(0)];
    theirs.push(await rawRound(1));
    mine.push(await connectorRound(1));
    const rate = (ms: number) => Math.round(DEAD / (ms / 1000));
    const best = (all: number[]) => Math.min(...all);
    results.push({
      name: `re-drive ${DEAD} dead letters to their source topic (pull, publish, acknowledge after the publish is confirmed), best of 2`,
      value: rate(best(mine)),
      unit: 'messages/s',
      notes: `rounds: ${mine.map((ms) => `${rate(ms)} msg/s (${Math.round(ms)} ms)`).join(', ')}`,
    });
    results.push({
      name: `raw @google-cloud/pubsub: the same ${DEAD} moves, pull + publish + acknowledge per batch (same run), best of 2`,
      value: rate(best(theirs)),
      unit: 'messages/s',
      notes: `rounds: ${theirs.map((ms) => `${rate(ms)} msg/s (${Math.round(ms)} ms)`).join(', ')}`,
    });
    results.push({ name: 'connector / raw client library (best rounds)', value: Math.round((best(theirs) / best(mine)) * 100) / 100, unit: '×' });
  } finally {
    await connector.close();
    await Promise.allSettled([publisher.close(), subscriber.close()]);
    if (owned) await stopPubsubEmulator(stateFile);
  }
  return results;
}
