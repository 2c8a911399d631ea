/**
 * The UI on a real Kinesis server (kinesis-local started by tests/aws/aws.mjs, or
 * KINESIS_ENDPOINT): a connection created through the HTTP API, a record
 * published to the shard its key hashes to, the stream's shards in the topic
 * details, and the stream browsed in the Browser, all shards and then one shard.
 * Without a Kinesis server the test is skipped with the reason.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateStreamCommand, DeleteStreamCommand, DescribeStreamSummaryCommand, KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { parseLines, runAwsScript } from '../aws/control';
import { test, expect } from './fixtures';
import { openFromSidebar, screenshot, unique } from './helpers';

const stateFile = join(tmpdir(), 'brokerdeck-aws', `e2e-kinesis-${process.pid}-${Date.now()}.json`);
let endpoint: string | null = process.env.KINESIS_ENDPOINT ?? null;
let reason = '';
let started = false;
let client: KinesisClient | null = null;
const region = process.env.AWS_REGION ?? 'us-east-1';
const credentials = { accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'test', secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'test' };
const streams: string[] = [];

test.describe.configure({ mode: 'serial' });
test.beforeAll(async () => {
  test.setTimeout(600_000);
  if (!endpoint) {
    const r = await runAwsScript(['start', 'kinesis', '--state', stateFile], 600_000);
    const lines = parseLines(r.stdout);
    endpoint = lines.KINESIS_ENDPOINT ?? null;
    started = endpoint !== null;
    if (!endpoint) reason = lines.KINESIS_UNAVAILABLE ?? (r.stderr.trim().split('\n').slice(-3).join(' | ') || `aws.mjs exited with ${r.code}`);
  }
  if (endpoint) client = new KinesisClient({ endpoint, region, credentials, requestHandler: new NodeHttpHandler() });
});
test.afterAll(async () => {
  for (const s of streams) await client?.send(new DeleteStreamCommand({ StreamName: s, EnforceConsumerDeletion: true })).catch(() => undefined);
  client?.destroy();
  if (started) await runAwsScript(['stop', '--state', stateFile], 60_000);
});

interface TopicJson {
  partitions: Array<{ partition: number; id: string; shard: { open: boolean; hashKeyRange: { start: string; end: string } } }>;
}
interface ProduceJson {
  published: number;
  positions: Array<{ partition: number; id: string; position: string }>;
}

test('a Kinesis connection: created through the API, its stream\'s shards shown, browsed across shards and in one shard', async ({ page, server, signedIn: _ }) => {
  test.skip(!endpoint, `no Kinesis server: ${reason}`);
  test.setTimeout(180_000);
  const stream = unique('clicks');
  await client!.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 3 }));
  streams.push(stream);
  await expect.poll(async () => (await client!.send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary?.StreamStatus).toBe('ACTIVE');
  const put = await client!.send(
    new PutRecordsCommand({ StreamName: stream, Records: Array.from({ length: 12 }, (_, i) => ({ PartitionKey: `user-${i}`, Data: Buffer.from(JSON.stringify({ click: i })) })) }),
  );
  const shardOf = put.Records!.map((r) => r.ShardId!);

  const name = unique('kinesis');
  const { id } = await server.api<{ id: string }>('POST', '/api/connections', { kind: 'kinesis', name, endpoint, region, ...credentials });
  const c = `/api/connections/${id}`;
  const topic = await server.api<TopicJson>('GET', `${c}/topics/${stream}`);
  expect(topic.partitions.map((p) => p.shard.open)).toEqual([true, true, true]);
  const index = (shardId: string) => topic.partitions.find((p) => p.id === shardId)!.partition;
  // One more record, from Brokerdeck, to the shard its key hashes to.
  const produced = await server.api<ProduceJson>('POST', `${c}/topics/${stream}/publish`, { key: 'user-3', value: '{"click":"from brokerdeck"}' });
  expect(produced.positions[0]!.id).toBe(shardOf[3]);

  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();
  await expect(page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^${stream}\\b`) })).toBeVisible({ timeout: 30_000 });
  await openFromSidebar(page, stream);

  // The topic's details: one row per shard.
  await page.getByRole('tab', { name: 'Details' }).click();
  const view = page.getByRole('region', { name: 'Details' });
  await expect(view.getByRole('heading', { name: stream })).toBeVisible();
  await expect(view.getByRole('table', { name: 'Partitions' }).getByRole('row')).toHaveCount(4);

  // Every shard, one after the other: all 13 records.
  await page.getByRole('tab', { name: 'Browser' }).click();
  const grid = page.getByRole('grid', { name: 'Messages' });
  await expect(grid).toHaveAttribute('aria-rowcount', '14', { timeout: 30_000 });
  await expect(grid.getByRole('row', { name: /from brokerdeck/ })).toBeVisible();
  await screenshot(page, 'browser-kinesis');

  // One shard: only its records, with and without a filter.
  const shard = index(shardOf[3]!);
  const inShard = shardOf.filter((s) => s === shardOf[3]).length + 1;
  await page.getByRole('combobox', { name: 'Partition' }).selectOption(String(shard));
  await expect(grid).toHaveAttribute('aria-rowcount', String(inShard + 1), { timeout: 30_000 });
  await expect(grid.getByRole('row', { name: /"click":3\b/ })).toBeVisible();
  await page.getByRole('textbox', { name: 'Body contains' }).fill('"click":');
  await page.getByRole('button', { name: 'Apply filter' }).click();
  await expect(grid).toHaveAttribute('aria-rowcount', String(inShard + 1), { timeout: 30_000 });
  await expect(grid.getByRole('row', { name: /from brokerdeck/ })).toBeVisible();
  await expect(grid.getByRole('row', { name: /"click":3\b/ })).toBeVisible();

  // Browsing consumed nothing: the API reads the same records again.
  const again = await server.api<{ messages: Array<{ partition: number }> }>('GET', `${c}/topics/${stream}/messages?limit=100`);
  expect(again.messages).toHaveLength(13);
  await server.api('DELETE', c);
});
