/**
 * The UI on the Pub/Sub emulator (started by tests/pubsub/pubsub.mjs, or
 * PUBSUB_EMULATOR_HOST): a connection created through the HTTP API, a subscription
 * browsed in the Browser (its messages still delivered afterwards, checked with the
 * client library), a subscription with a dead-letter policy refused with the reason,
 * and a message dead-lettered by Pub/Sub itself re-driven from the Dead letters view
 * back to its source subscription. Without the emulator the test is skipped with the reason.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { PubSub, v1, type Message } from '@google-cloud/pubsub';
import { startPubsubEmulator, stopPubsubEmulator } from '../pubsub/control';
import { test, expect } from './fixtures';
import { openFromSidebar, screenshot, unique } from './helpers';

const PROJECT = 'brokerdeck-e2e';
const stateFile = join(tmpdir(), 'brokerdeck-pubsub', `e2e-${process.pid}-${Date.now()}.json`);
let host: string | null = process.env.PUBSUB_EMULATOR_HOST ?? null;
let reason = '';
let started = false;
let publisher: InstanceType<typeof v1.PublisherClient> | null = null;
let subscriber: InstanceType<typeof v1.SubscriberClient> | null = null;
let pubsub: PubSub | null = null;

test.describe.configure({ mode: 'serial' });
test.beforeAll(async () => {
  test.setTimeout(300_000);
  if (!host) {
    const r = await startPubsubEmulator(stateFile);
    if ('reason' in r) reason = r.reason;
    else {
      host = r.host;
      started = true;
    }
  }
  if (host) {
    const at = host.lastIndexOf(':');
    const options = { projectId: PROJECT, servicePath: host.slice(0, at), port: Number(host.slice(at + 1)), sslCreds: credentials.createInsecure(), universeDomain: 'googleapis.com' };
    publisher = new v1.PublisherClient(options);
    subscriber = new v1.SubscriberClient(options);
    pubsub = new PubSub({ projectId: PROJECT, apiEndpoint: host, emulatorMode: true, universeDomain: 'googleapis.com' });
  }
});
test.afterAll(async () => {
  await Promise.allSettled([publisher?.close(), subscriber?.close(), pubsub?.close()]);
  if (started) await stopPubsubEmulator(stateFile);
});

const topicPath = (t: string) => `projects/${PROJECT}/topics/${t}`;
const subPath = (s: string) => `projects/${PROJECT}/subscriptions/${s}`;

async function publishRaw(topic: string, bodies: string[], attributes: Record<string, string> = {}): Promise<string[]> {
  const [r] = await publisher!.publish({ topic: topicPath(topic), messages: bodies.map((b) => ({ data: Buffer.from(b), attributes })) }, { isBundling: false });
  return r.messageIds ?? [];
}

/** A real subscriber: records each delivery, acks or nacks it. */
function subscribe(name: string, decide: () => 'ack' | 'nack' = () => 'ack') {
  const received: Array<{ id: string; data: string; attributes: Record<string, string> }> = [];
  const sub = pubsub!.subscription(name);
  sub.on('error', () => {});
  sub.on('message', (m: Message) => {
    received.push({ id: m.id, data: m.data.toString(), attributes: { ...m.attributes } });
    if (decide() === 'ack') m.ack();
    else m.nack();
  });
  return { received, close: () => sub.close() };
}

test('a Pub/Sub connection: a subscription browsed without loss, a dead-letter policy respected, a dead letter re-driven from the Dead letters view', async ({ page, server, signedIn: _ }) => {
  test.skip(!host, `no Pub/Sub emulator: ${reason}`);
  test.setTimeout(180_000);
  const topic = unique('orders');
  const plain = unique('orders-audit');
  const guarded = unique('orders-work');
  const dlt = unique('orders-dl');
  const dlSub = unique('orders-dl-sub');
  await publisher!.createTopic({ name: topicPath(topic) });
  await publisher!.createTopic({ name: topicPath(dlt) });
  await subscriber!.createSubscription({ name: subPath(plain), topic: topicPath(topic) });
  await subscriber!.createSubscription({ name: subPath(dlSub), topic: topicPath(dlt) });
  await subscriber!.createSubscription({ name: subPath(guarded), topic: topicPath(topic), deadLetterPolicy: { deadLetterTopic: topicPath(dlt), maxDeliveryAttempts: 5 } });
  const ids = await publishRaw(topic, ['{"order": 41}', '{"order": 42}', '{"order": 43}'], { origin: 'e2e' });

  // The connection, through the HTTP API.
  const name = unique('pubsub');
  const created = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'pubsub', name, projectId: PROJECT, emulatorHost: host });
  await page.reload();
  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();
  await expect(page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^${plain}\\b`) })).toBeVisible({ timeout: 30_000 });

  // Browse the plain subscription: its three messages, with their attributes.
  await openFromSidebar(page, plain);
  const grid = page.getByRole('grid', { name: 'Messages' });
  for (const n of [41, 42, 43]) await expect(grid).toContainText(`"order": ${n}`, { timeout: 30_000 });
  await screenshot(page, 'browser-pubsub');

  // The subscription with a dead-letter policy: refused, saying why.
  await openFromSidebar(page, guarded);
  await expect(page.getByText(/has a dead-letter policy/).first()).toBeVisible({ timeout: 30_000 });
  // Accepting the cost reads it: each message shown counts one delivery attempt.
  await page.getByRole('button', { name: 'Peek anyway' }).click();
  for (const n of [41, 42, 43]) await expect(grid).toContainText(`"order": ${n}`, { timeout: 30_000 });

  // Nothing browsed was lost: a real subscriber receives all three from the plain subscription.
  const reader = subscribe(plain);
  try {
    await expect.poll(() => new Set(reader.received.map((m) => m.id)).size, { timeout: 30_000 }).toBe(3);
    expect(new Set(reader.received.map((m) => m.id))).toEqual(new Set(ids));
  } finally {
    await reader.close();
  }

  // Pub/Sub dead-letters the three after five refused deliveries each.
  const refuser = subscribe(guarded, () => 'nack');
  type Dead = { messages: Array<{ properties: { headers?: Record<string, unknown> } }> };
  let deadLetters: Dead = { messages: [] };
  try {
    await expect
      .poll(async () => (deadLetters = await server.api<Dead>('GET', `/api/connections/${created.id}/queues/${dlSub}/messages?limit=10`)).messages.length, { timeout: 60_000 })
      .toBe(3);
  } finally {
    await refuser.close();
  }
  // Pub/Sub's own record of where each came from.
  expect(deadLetters.messages.map((m) => m.properties.headers?.CloudPubSubDeadLetterSourceSubscription)).toEqual([guarded, guarded, guarded]);

  // Dead letters: re-driven from the UI back to the source topic.
  await page.getByRole('tab', { name: 'Dead letters' }).click();
  const list = page.getByRole('complementary', { name: 'Dead-letter queues' });
  await list.getByRole('button', { name: new RegExp(dlSub) }).click({ timeout: 30_000 });
  const dead = page.getByRole('grid', { name: `Dead letters in ${dlSub}` });
  await expect(dead.getByRole('row').nth(3)).toContainText('order', { timeout: 30_000 });
  // Why and where from, read from Pub/Sub's own dead-letter attributes.
  await expect(dead.getByRole('row').nth(3)).toContainText('delivery attempts');
  await expect(dead.getByRole('row').nth(3)).toContainText(guarded);
  await page.getByRole('button', { name: 'Select all' }).click();
  await page.getByRole('button', { name: 'Re-drive…', exact: true }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Start re-drive' }).click();
  const progress = page.getByRole('region', { name: 'Re-drive progress' });
  await expect(progress).toContainText('Done: 3 of 3 messages re-driven', { timeout: 60_000 });
  await screenshot(page, 'deadletters-pubsub');

  // Through the client library: the source subscription receives each once, the move counted.
  const worker = subscribe(guarded);
  try {
    await expect.poll(() => worker.received.length, { timeout: 30_000 }).toBe(3);
    expect(worker.received.map((m) => m.data).sort()).toEqual(['{"order": 41}', '{"order": 42}', '{"order": 43}']);
    expect(worker.received.every((m) => m.attributes['x-redriven-count'] === '1' && m.attributes.origin === 'e2e')).toBe(true);
  } finally {
    await worker.close();
  }
  const left = await server.api<{ messages: unknown[] }>('GET', `/api/connections/${created.id}/queues/${dlSub}/messages?limit=10`);
  expect(left.messages).toHaveLength(0);
  await server.api('DELETE', `/api/connections/${created.id}`);
});
