/**
 * The UI on a real Kafka broker: the connection's cluster overview, a topic's
 * partitions and configuration (a setting edited in place, refused values
 * shown in its row), and a consumer group that a real consumer committed,
 * reset with a preview first and then deleted. The broker is
 * started with tests/kafka/kafka.mjs (or KAFKA_BROKERS names one); without
 * Java or Maven the tests are skipped with the reason.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Consumer, Producer } from '@platformatic/kafka';
import { parseLines, runKafkaScript as run, whyUnavailable } from '../kafka/control';
import { test, expect } from './fixtures';
import { openFromSidebar, screenshot, unique } from './helpers';
const stateFile = join(tmpdir(), 'brokerdeck-kafka', `e2e-${process.pid}-${Date.now()}.json`);

let brokers: string[] = [];
let unavailable: string | null = null;
let started = false;

test.describe.configure({ mode: 'serial' });

test.beforeAll(async () => {
  test.setTimeout(300_000);
  if (process.env.KAFKA_BROKERS) {
    brokers = process.env.KAFKA_BROKERS.split(',').map((s) => s.trim());
    return;
  }
  const r = await run(['start', '--state', stateFile], 280_000);
  const bootstrap = parseLines(r.stdout).KAFKA_BROKERS;
  if (r.code !== 0 || !bootstrap) {
    unavailable = whyUnavailable(r);
    await run(['stop', '--state', stateFile], 30_000);
    if (process.env.KAFKA_REQUIRED === '1') throw new Error(`no Kafka broker: ${unavailable}`);
    return;
  }
  started = true;
  brokers = [bootstrap.trim()];
});

test.afterAll(async () => {
  if (started) await run(['stop', '--state', stateFile], 60_000);
});

/** Consumes with a real consumer group and commits `upTo[p]` records of each partition, then leaves. */
async function commitWithRealConsumer(topic: string, groupId: string, upTo: number[]): Promise<void> {
  const consumer = new Consumer({ clientId: 'e2e-consumer', groupId, bootstrapBrokers: brokers, sessionTimeout: 10_000, heartbeatInterval: 500 });
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 200 });
    const committed = upTo.map(() => 0);
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (msg) => {
        const p = msg.partition;
        if (Number(msg.offset) < upTo[p]!) {
          Promise.resolve(msg.commit())
            .then(() => {
              committed[p] = Math.max(committed[p]!, Number(msg.offset) + 1);
              if (committed.every((x, i) => x === upTo[i])) resolve();
            })
            .catch(reject);
        }
      });
      stream.on('error', reject);
    });
    await stream.close();
  } finally {
    await consumer.close(true);
  }
}

interface GroupJson {
  groupId: string;
  state: string;
  partitions: Array<{ partition: number; committed: number | null; end: number; lag: number }>;
}

test('a Kafka connection: cluster, topic partitions and configuration, a group reset with a preview, then deleted', async ({ page, server, signedIn: _ }) => {
  test.skip(unavailable !== null, `no Kafka broker: ${unavailable}`);
  test.setTimeout(180_000);
  const name = unique('kafka');
  const { id } = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'kafka', name, brokers });
  const c = `/api/connections/${id}`;
  const topic = unique('orders');
  const group = unique('billing');
  await server.api('PUT', `${c}/topics/${topic}`, { partitions: 3, retentionMs: 86_400_000 });
  for (let p = 0; p < 3; p++) await server.api('POST', `${c}/topics/${topic}/publish`, { value: `{"p":${p},"n":{{i}}}`, count: 10, partition: p });
  await commitWithRealConsumer(topic, group, [8, 4, 0]);
  await expect
    .poll(async () => ((await server.api<GroupJson[]>('GET', `${c}/consumer-groups`)).find((g) => g.groupId === group)?.state ?? 'none'), { timeout: 30_000 })
    .toBe('Empty');

  // The connection: its cluster.
  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();
  await page.getByRole('tab', { name: 'Details' }).click();
  const view = page.getByRole('region', { name: 'Details' });
  const brokerTable = view.getByRole('table', { name: 'Brokers' });
  await expect(brokerTable).toContainText(brokers[0]!.split(':').pop()!);
  await expect(brokerTable).toContainText('controller');
  await expect(view.getByRole('group', { name: 'Cluster' })).toContainText('Partitions');

  // A topic: partitions with watermarks, and the broker's configuration with its source.
  await openFromSidebar(page, topic);
  await page.getByRole('tab', { name: 'Details' }).click();
  await expect(view.getByRole('heading', { name: topic })).toBeVisible();
  await expect(view.getByRole('table', { name: 'Partitions' }).getByRole('row')).toHaveCount(4);
  const config = view.getByRole('table', { name: 'Configuration' });
  // The topic's own setting comes first, marked as set on the topic; inherited ones follow with their source.
  await expect(config.getByRole('row').nth(1).getByRole('cell')).toHaveText(['retention.ms', '86400000', 'topic', 'Edit']);
  await expect(config.getByRole('row', { name: /^min\.insync\.replicas / })).toContainText('broker');
  await expect(config).toContainText('cleanup.policy');

  // The group: offsets as committed, then a reset to earliest: preview first, nothing changes until applied.
  await openFromSidebar(page, group);
  await page.getByRole('tab', { name: 'Details' }).click();
  await expect(view.getByRole('heading', { name: group })).toBeVisible();
  const offsets = view.getByRole('table', { name: 'Offsets' });
  await expect(offsets.getByRole('row')).toHaveCount(3);
  await expect(offsets.getByRole('row').nth(1)).toContainText('8');
  await view.getByRole('combobox', { name: 'Reset to' }).selectOption('earliest');
  await view.getByRole('combobox', { name: 'Topic to reset' }).selectOption(topic);
  await view.getByRole('button', { name: 'Preview' }).click();
  const preview = view.getByRole('table', { name: 'Reset preview' });
  await expect(preview.getByRole('row')).toHaveCount(4);
  await expect(preview).toContainText('nothing has changed yet');
  let g = (await server.api<GroupJson[]>('GET', `${c}/consumer-groups`)).find((x) => x.groupId === group)!;
  expect(g.partitions.map((p) => p.committed)).toEqual([8, 4]);
  await screenshot(page, 'details-kafka');

  await view.getByRole('button', { name: 'Apply reset…' }).click();
  await page.getByRole('button', { name: 'Reset offsets', exact: true }).click();
  await expect(view.getByRole('table', { name: 'Offsets reset' })).toBeVisible();
  g = (await server.api<GroupJson[]>('GET', `${c}/consumer-groups`)).find((x) => x.groupId === group)!;
  expect(g.partitions.map((p) => [p.partition, p.committed, p.lag])).toEqual([
    [0, 0, 10],
    [1, 0, 10],
    [2, 0, 10],
  ]);

  await view.getByRole('button', { name: 'Delete group…' }).click();
  await page.getByRole('button', { name: 'Delete group', exact: true }).click();
  await expect
    .poll(async () => (await server.api<GroupJson[]>('GET', `${c}/consumer-groups`)).some((x) => x.groupId === group), { timeout: 20_000 })
    .toBe(false);
  await server.api('DELETE', c);
});

interface ConfigJson {
  name: string;
  value: string | null;
  source: string;
}

test('a Kafka topic setting edited from its Details: a refused value is shown in its row and changes nothing, a good one is applied, and the default comes back', async ({ page, server, signedIn: _ }) => {
  test.skip(unavailable !== null, `no Kafka broker: ${unavailable}`);
  test.setTimeout(180_000);
  const name = unique('kafka');
  const { id } = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'kafka', name, brokers });
  const c = `/api/connections/${id}`;
  const topic = unique('settings');
  await server.api('PUT', `${c}/topics/${topic}`, { partitions: 1, retentionMs: 86_400_000 });
  const setting = async (key: string) => (await server.api<ConfigJson[]>('GET', `${c}/topics/${topic}/config`)).find((x) => x.name === key);

  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();
  await openFromSidebar(page, topic);
  await page.getByRole('tab', { name: 'Details' }).click();
  const view = page.getByRole('region', { name: 'Details' });
  await expect(view.getByRole('heading', { name: topic })).toBeVisible();
  const config = view.getByRole('table', { name: 'Configuration' });
  await expect(config.getByRole('row').nth(1).getByRole('cell').first()).toHaveText('retention.ms');

  // A value the broker refuses: its reason in the row, the topic unchanged.
  await config.getByRole('button', { name: 'Edit retention.ms' }).click();
  await config.getByRole('textbox', { name: 'New value of retention.ms' }).fill('one day');
  await config.getByRole('button', { name: 'Save retention.ms' }).click();
  // The broker's refusal sits in the row right under the setting it concerns.
  const refused = config.getByRole('row').filter({ has: page.getByRole('textbox', { name: 'New value of retention.ms' }) });
  await expect(refused.locator('xpath=following-sibling::tr[1]').getByRole('alert')).toContainText(/invalid/i);
  expect(await setting('retention.ms')).toMatchObject({ value: '86400000', source: 'topic' });
  // An empty value is refused before anything is sent.
  await config.getByRole('textbox', { name: 'New value of retention.ms' }).fill('  ');
  await config.getByRole('button', { name: 'Save retention.ms' }).click();
  await expect(config.getByRole('alert')).toHaveText('retention.ms needs a value (or use the default)');

  // A good value is applied and shown as the topic's own.
  await config.getByRole('textbox', { name: 'New value of retention.ms' }).fill('3600000');
  await config.getByRole('textbox', { name: 'New value of retention.ms' }).press('Enter');
  await expect(view.getByRole('status').filter({ hasText: 'retention.ms set to 3600000' })).toBeVisible();
  await expect(config.getByRole('alert')).toHaveCount(0);
  await expect(config.getByRole('row').nth(1).getByRole('cell')).toHaveText(['retention.ms', '3600000', 'topic', 'Edit']);
  expect(await setting('retention.ms')).toMatchObject({ value: '3600000', source: 'topic' });

  // An inherited setting becomes the topic's own.
  await config.getByRole('button', { name: 'Edit max.message.bytes' }).click();
  await config.getByRole('textbox', { name: 'New value of max.message.bytes' }).fill('2097152');
  await config.getByRole('button', { name: 'Save max.message.bytes' }).click();
  await expect.poll(async () => (await setting('max.message.bytes'))?.value).toBe('2097152');
  await expect(config.getByRole('row').filter({ hasText: 'max.message.bytes' }).getByRole('cell').nth(2)).toHaveText('topic');

  // "Use default" removes the topic's own value.
  await config.getByRole('button', { name: 'Edit retention.ms' }).click();
  await config.getByRole('button', { name: 'Use the default for retention.ms' }).click();
  await expect(view.getByRole('status').filter({ hasText: 'retention.ms uses the default again' })).toBeVisible();
  await expect.poll(async () => (await setting('retention.ms'))?.source).not.toBe('topic');
  await expect(config.getByRole('row').filter({ hasText: 'retention.ms' }).first().getByRole('cell').nth(2)).not.toHaveText('topic');

  await server.api('DELETE', c);
});

test('a bulk produce to a Kafka topic runs as a job: progress and rate, the count arrives whole; a million is cancelled part way and what was acknowledged is what the topic holds', async ({ page, server, signedIn: _ }) => {
  test.skip(unavailable !== null, `no Kafka broker: ${unavailable}`);
  test.setTimeout(180_000);
  const name = unique('kafka');
  const { id } = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'kafka', name, brokers });
  const c = `/api/connections/${id}`;
  const topic = unique('bulk');
  await server.api('PUT', `${c}/topics/${topic}`, { partitions: 2 });
  const records = async () => (await server.api<{ messages: number }>('GET', `${c}/topics/${topic}`)).messages;

  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();
  await page.getByRole('tab', { name: 'Publisher' }).click();
  await page.getByRole('combobox', { name: 'Topic' }).fill(topic);
  await page.getByRole('textbox', { name: 'Message body' }).fill('{"n": {{i}}}');
  await page.getByRole('textbox', { name: 'Count' }).fill('20000');
  await page.getByRole('button', { name: /^Publish/ }).click();
  const progress = page.getByRole('region', { name: 'Publish progress' });
  await expect(progress).toContainText(`Publishing 20,000 to ${topic}`);
  await expect(progress).toHaveAttribute('data-state', 'completed', { timeout: 120_000 });
  await expect(progress.getByTestId('publish-state')).toHaveText('Done: 20,000 of 20,000 confirmed.');
  await expect(progress).toContainText('/s');
  await expect.poll(records, { timeout: 30_000 }).toBe(20_000);

  // A million: cancelled once the first are acknowledged; the topic holds exactly what the job says it sent.
  await page.getByRole('textbox', { name: 'Count' }).fill('1000000');
  await page.getByRole('button', { name: /^Publish/ }).click();
  await expect(progress).toContainText(`Publishing 1,000,000 to ${topic}`);
  await expect.poll(async () => Number((await progress.getByTestId('publish-confirmed').textContent())?.replace(/,/g, '')), { timeout: 60_000 }).toBeGreaterThan(0);
  await progress.getByRole('button', { name: 'Cancel' }).click();
  await expect(progress).toHaveAttribute('data-state', 'cancelled', { timeout: 60_000 });
  await expect(progress.getByTestId('publish-state')).toContainText('Cancelled');
  const confirmed = Number((await progress.getByTestId('publish-confirmed').textContent())?.replace(/,/g, ''));
  expect(confirmed).toBeLessThan(1_000_000);
  await expect.poll(records, { timeout: 30_000 }).toBe(20_000 + confirmed);
  await server.api('DELETE', c);
});

/** Records as Spring Kafka's DeadLetterPublishingRecoverer writes them: binary partition and offset headers. */
async function writeSpringDeadLetters(dlt: string, original: string, count: number): Promise<void> {
  const int32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  const int64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(BigInt(n));
    return b;
  };
  const producer = new Producer({ clientId: 'spring-like', bootstrapBrokers: brokers, acks: -1, idempotent: true });
  try {
    await producer.send({
      messages: Array.from({ length: count }, (_, i) => ({
        topic: dlt,
        key: Buffer.from(`payment-${i}`),
        value: Buffer.from(JSON.stringify({ payment: i })),
        headers: new Map<Buffer, Buffer>([
          [Buffer.from('kafka_dlt-original-topic'), Buffer.from(original)],
          [Buffer.from('kafka_dlt-original-partition'), int32(i % 2)],
          [Buffer.from('kafka_dlt-original-offset'), int64(100 + i)],
          [Buffer.from('kafka_dlt-original-consumer-group'), Buffer.from('payments-service')],
          [Buffer.from('kafka_dlt-exception-fqcn'), Buffer.from('org.springframework.kafka.listener.ListenerExecutionFailedException')],
          [Buffer.from('kafka_dlt-exception-message'), Buffer.from(`payment ${i} declined by the gateway`)],
        ]),
      })),
    });
  } finally {
    await producer.close();
  }
}

interface RecordJson {
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}

async function allRecords(server: { api<T>(method: string, path: string): Promise<T> }, c: string, topic: string): Promise<RecordJson[]> {
  const out: RecordJson[] = [];
  let cursor: string | null = null;
  do {
    const qs = new URLSearchParams({ limit: '1000', ...(cursor ? { cursor } : {}) });
    const page: { messages: RecordJson[]; nextCursor: string | null } = await server.api('GET', `${c}/topics/${topic}/messages?${qs}`);
    out.push(...page.messages);
    cursor = page.messages.length ? page.nextCursor : null;
  } while (cursor);
  return out;
}

test('a Kafka dead-letter topic: where each record failed, re-driven from the UI exactly once, and not twice', async ({ page, server, signedIn: _ }) => {
  test.skip(unavailable !== null, `no Kafka broker: ${unavailable}`);
  test.setTimeout(180_000);
  const name = unique('kafka');
  const { id } = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'kafka', name, brokers });
  const c = `/api/connections/${id}`;
  const original = unique('payments');
  const dlt = `${original}.DLT`;
  const N = 30;
  await server.api('PUT', `${c}/topics/${original}`, { partitions: 2 });
  await server.api('PUT', `${c}/topics/${dlt}`, { partitions: 1 });
  await writeSpringDeadLetters(dlt, original, N);

  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();
  await page.getByRole('tab', { name: 'Dead letters' }).click();
  const list = page.getByRole('complementary', { name: 'Dead-letter topics' });
  await list.getByRole('button', { name: new RegExp(dlt.replace(/\./g, '\\.')) }).click();
  const grid = page.getByRole('grid', { name: `Dead letters in ${dlt}` });
  const first = grid.getByRole('row').nth(1);
  await expect(first).toContainText('ListenerExecutionFailedException');
  await expect(first).toContainText(`${original}-0 @100`);
  await expect(first).toContainText('payments-service');
  await expect(first).toContainText('payment 0 declined by the gateway');

  await page.getByRole('button', { name: 'Select all' }).click();
  await expect(page.getByTestId('selection')).toHaveText(`All ${N} records`);
  await page.getByRole('button', { name: 'Re-drive…', exact: true }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog.getByRole('radio', { name: 'The topic each one came from' })).toBeChecked();
  await dialog.getByRole('textbox', { name: 'Rate limit' }).fill('20');
  await dialog.getByRole('button', { name: 'Start re-drive' }).click();
  const progress = page.getByRole('region', { name: 'Re-drive progress' });
  await expect(progress.getByRole('progressbar')).toHaveAttribute('aria-valuenow', '100', { timeout: 60_000 });
  await expect(progress).toContainText(`Done: ${N} of ${N} records re-driven to ${original}`);
  await screenshot(page, 'deadletters-kafka');

  // Every record is in the original topic exactly once, key and headers kept, with the re-drive recorded.
  await expect.poll(async () => (await allRecords(server, c, original)).length, { timeout: 20_000 }).toBe(N);
  const back = await allRecords(server, c, original);
  expect(back.map((r) => (JSON.parse(r.value!) as { payment: number }).payment).sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
  expect(back.every((r) => r.key === `payment-${(JSON.parse(r.value!) as { payment: number }).payment}`)).toBe(true);
  expect(back.every((r) => r.headers['kafka_dlt-original-topic'] === original && r.headers['x-redriven-from'] !== undefined)).toBe(true);

  // Re-driving the same records again moves nothing: each was remembered.
  await page.getByRole('button', { name: 'Dismiss' }).click();
  await page.getByRole('button', { name: 'Select all' }).click();
  await page.getByRole('button', { name: 'Re-drive…', exact: true }).click();
  await dialog.getByRole('button', { name: 'Start re-drive' }).click();
  await expect(progress).toContainText('Nothing moved: 0 of', { timeout: 30_000 });
  await expect(progress).toHaveAttribute('data-outcome', 'nothing');
  await expect(page.getByTestId('skipped')).toHaveText(String(N));
  expect((await allRecords(server, c, original)).length).toBe(N);
  await server.api('DELETE', c);
});
