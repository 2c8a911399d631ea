/**
 * The UI on a real SQS server (ElasticMQ started by tests/aws/aws.mjs, or
 * SQS_ENDPOINT): a connection added through the dialog, a message published
 * from the Publisher, a queue with a redrive policy browsed only once the person
 * accepts that each read counts as a receive, and dead letters re-driven from the
 * Dead letters view back to their source queue, checked through the AWS SDK.
 * Without an SQS server the test is skipped with the reason.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { parseLines, runAwsScript } from '../aws/control';
import { test, expect } from './fixtures';
import { openFromSidebar, screenshot, unique } from './helpers';

const stateFile = join(tmpdir(), 'brokerdeck-aws', `e2e-${process.pid}-${Date.now()}.json`);
let endpoint: string | null = process.env.SQS_ENDPOINT ?? null;
let reason = '';
let started = false;
let client: SQSClient | null = null;

test.describe.configure({ mode: 'serial' });
test.beforeAll(async () => {
  test.setTimeout(600_000);
  if (!endpoint) {
    const r = await runAwsScript(['start', 'sqs', '--state', stateFile], 600_000);
    const lines = parseLines(r.stdout);
    endpoint = lines.SQS_ENDPOINT ?? null;
    started = endpoint !== null;
    if (!endpoint) reason = lines.SQS_UNAVAILABLE ?? (r.stderr.trim().split('\n').slice(-3).join(' | ') || `aws.mjs exited with ${r.code}`);
  }
  if (endpoint) client = new SQSClient({ endpoint, region: process.env.AWS_REGION ?? 'us-east-1', credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'test', secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'test' } });
});
test.afterAll(async () => {
  client?.destroy();
  if (started) await runAwsScript(['stop', '--state', stateFile], 60_000);
});

async function queue(name: string, attributes: Record<string, string> = {}): Promise<{ url: string; arn: string }> {
  const r = await client!.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  const a = await client!.send(new GetQueueAttributesCommand({ QueueUrl: r.QueueUrl!, AttributeNames: ['QueueArn'] }));
  return { url: r.QueueUrl!, arn: a.Attributes!.QueueArn! };
}

async function visible(url: string): Promise<{ visible: number; inFlight: number }> {
  const a = await client!.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }));
  return { visible: Number(a.Attributes!.ApproximateNumberOfMessages), inFlight: Number(a.Attributes!.ApproximateNumberOfMessagesNotVisible) };
}

test('an SQS connection: added in the dialog, published to, browsed once the receive-count risk is accepted, its dead letters re-driven', async ({ page, server, signedIn: _ }) => {
  test.skip(!endpoint, `no SQS server: ${reason}`);
  test.setTimeout(180_000);
  const dlqName = unique('orders-dlq');
  const dlq = await queue(dlqName);
  const ordersName = unique('orders');
  const orders = await queue(ordersName, { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 5 }) });
  await client!.send(
    new SendMessageBatchCommand({
      QueueUrl: dlq.url,
      Entries: Array.from({ length: 4 }, (_, i) => ({ Id: String(i), MessageBody: JSON.stringify({ failed: i }), MessageAttributes: { reason: { DataType: 'String', StringValue: 'timeout' } } })),
    }),
  );

  // The dialog: the SQS kind with its own fields, tested, then saved.
  const name = unique('sqs');
  await page.getByRole('button', { name: /add connection/i }).first().click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('combobox', { name: 'Kind' }).selectOption('sqs');
  await dialog.getByRole('textbox', { name: 'Name' }).fill(name);
  await dialog.getByRole('textbox', { name: 'Endpoint' }).fill(endpoint!);
  await dialog.getByRole('textbox', { name: 'Access key id' }).fill('test');
  await dialog.getByRole('textbox', { name: 'Secret access key' }).fill('test-secret');
  await dialog.getByRole('button', { name: 'Test connection' }).click();
  await expect(dialog.getByText('Connection works')).toBeVisible({ timeout: 30_000 });
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(dialog).toBeHidden({ timeout: 30_000 });
  await page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^status \\w+ ${name}`) }).click();
  await expect(page.getByRole('navigation', { name: 'Connections' }).getByRole('button', { name: new RegExp(`^${ordersName}\\b`) })).toBeVisible({ timeout: 30_000 });

  // Publish from the Publisher, to the queue.
  await page.getByRole('tab', { name: 'Publisher' }).click();
  await page.getByRole('tab', { name: 'Queue', exact: true }).click();
  await page.getByRole('combobox', { name: 'Queue' }).fill(ordersName);
  await page.getByRole('textbox', { name: 'Message body' }).fill('{"order": 42}');
  await page.getByRole('button', { name: /^Publish/ }).click();
  await expect.poll(async () => (await visible(orders.url)).visible, { timeout: 20_000 }).toBe(1);

  // Browsing a queue with a redrive policy is refused until the person accepts that each read counts as a receive.
  await openFromSidebar(page, ordersName);
  await expect(page.getByRole('alert').filter({ hasText: 'has a redrive policy' })).toBeVisible({ timeout: 20_000 });
  await page.getByRole('button', { name: 'Peek anyway' }).click();
  const grid = page.getByRole('grid', { name: 'Messages' });
  await expect(grid.getByRole('row').nth(1)).toContainText('"order": 42', { timeout: 20_000 });
  // Put back at once: visible again, received once.
  await expect.poll(() => visible(orders.url), { timeout: 20_000 }).toEqual({ visible: 1, inFlight: 0 });
  await screenshot(page, 'browser-sqs');

  // Dead letters: the queue that orders dead-letters into, re-driven from the UI back to orders.
  await page.getByRole('tab', { name: 'Dead letters' }).click();
  const list = page.getByRole('complementary', { name: 'Dead-letter queues' });
  await list.getByRole('button', { name: new RegExp(dlqName) }).click({ timeout: 30_000 });
  const dead = page.getByRole('grid', { name: `Dead letters in ${dlqName}` });
  await expect(dead.getByRole('row').nth(4)).toContainText('failed', { timeout: 20_000 });
  await page.getByRole('button', { name: 'Select all' }).click();
  await page.getByRole('button', { name: 'Re-drive…', exact: true }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Start re-drive' }).click();
  const progress = page.getByRole('region', { name: 'Re-drive progress' });
  await expect(progress).toContainText('Done: 4 of 4 messages re-driven', { timeout: 60_000 });
  await screenshot(page, 'deadletters-sqs');

  // Through the AWS SDK: the dead-letter queue is empty and orders holds the four and the published one.
  await expect.poll(() => visible(dlq.url), { timeout: 20_000 }).toEqual({ visible: 0, inFlight: 0 });
  await expect.poll(async () => (await visible(orders.url)).visible, { timeout: 20_000 }).toBe(5);
  const r = await client!.send(new ReceiveMessageCommand({ QueueUrl: orders.url, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], WaitTimeSeconds: 1 }));
  const redriven = (r.Messages ?? []).filter((m) => m.MessageAttributes?.['x-redriven-count']);
  expect(redriven.every((m) => m.MessageAttributes!.reason!.StringValue === 'timeout')).toBe(true);
  const list2 = await server.api<Array<{ id: string; kind: string }>>('GET', '/api/connections');
  const mine = list2.find((c) => c.kind === 'sqs');
  if (mine) await server.api('DELETE', `/api/connections/${mine.id}`);
});
