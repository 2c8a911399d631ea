/**
 * The Add connection forms of Redis, Google Cloud Pub/Sub and Amazon Kinesis:
 * bad input is named beside its field before anything is sent, and what the
 * form sends to the core (Test connection, Save) is exactly the configuration
 * typed. Whether the core can already connect to such a system does not
 * matter here: a saved connection is read back through the API, a refusal
 * from the core is shown in the dialog.
 */
import type { Locator, Page } from '@playwright/test';
import { test, expect, type Server } from './fixtures';
import { recordCalls, type CallRecord } from './frames';
import { unique } from './helpers';

/** The label holding a field, where its error is shown. */
const fieldOf = (dialog: Locator, name: string) => dialog.locator('label').filter({ has: dialog.page().getByRole('textbox', { name, exact: true }) });

async function open(page: Page, server: Server): Promise<{ calls: CallRecord[]; dialog: Locator }> {
  const calls = recordCalls(page);
  await page.goto(`${server.url}/?token=${server.token}`);
  await page.getByRole('button', { name: 'Add connection' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog.getByRole('combobox', { name: 'Kind' })).toBeVisible();
  return { calls, dialog };
}

const lastCall = (calls: CallRecord[], op: string) => calls.filter((c) => c.op === op).at(-1);

/** Save, then either the connection is listed by the API as sent, or the refusal names the kind. */
async function saveAndCheck(dialog: Locator, calls: CallRecord[], server: Server, expected: Record<string, unknown>, hidden?: string) {
  const before = calls.filter((c) => c.op === 'connections/create').length;
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect.poll(() => calls.filter((c) => c.op === 'connections/create').length).toBe(before + 1);
  const create = lastCall(calls, 'connections/create')!;
  expect(create.input).toEqual(expected);
  await expect.poll(() => create.ok, { timeout: 30_000 }).not.toBeNull();
  if (create.ok) {
    await expect(dialog).toHaveCount(0);
    const list = await server.api<{ id: string; kind: string; name: string; target?: string; readOnly: boolean }[]>('GET', '/api/connections');
    const saved = list.find((c) => c.name === expected.name);
    expect(saved).toMatchObject({ kind: expected.kind, readOnly: expected.readOnly });
    if (hidden) expect(JSON.stringify(saved)).not.toContain(hidden);
  } else {
    // Refused by the core (a kind this build does not offer, a setting the system rules out): the dialog says why.
    const error = create.answer as { message: string };
    await expect(dialog).toContainText(error.message);
  }
}

test('Redis: the URL and dead-letter settings are checked beside their fields and sent as typed', async ({ page, server }) => {
  const { calls, dialog } = await open(page, server);
  const name = unique('redis');
  await dialog.getByRole('combobox', { name: 'Kind' }).selectOption('redis');
  await dialog.getByRole('textbox', { name: 'Name' }).fill(name);
  await dialog.getByRole('textbox', { name: 'Redis URL' }).fill('http://127.0.0.1:6379');
  await dialog.getByRole('textbox', { name: 'Dead letter after deliveries' }).fill('three');
  await dialog.getByRole('button', { name: 'Test connection' }).click();
  await expect(fieldOf(dialog, 'Redis URL')).toContainText('url must look like redis://user:password@host:6379/0 (or rediss://)');
  await expect(fieldOf(dialog, 'Dead letter after deliveries')).toContainText('deadLetterAfterDeliveries must be a whole number');
  await dialog.getByRole('textbox', { name: 'Dead letter after deliveries' }).fill('0');
  await dialog.getByRole('button', { name: 'Test connection' }).click();
  await expect(fieldOf(dialog, 'Dead letter after deliveries')).toContainText('between 1 and 1,000,000');
  // Nothing went to the core while the form was wrong.
  expect(calls.filter((c) => c.op === 'connections/test')).toHaveLength(0);

  await dialog.getByRole('textbox', { name: 'Redis URL' }).fill('redis://app:s3cret-pw@127.0.0.1:6379/0');
  await dialog.getByRole('textbox', { name: 'Dead letter after deliveries' }).fill('3');
  await dialog.getByRole('textbox', { name: 'Dead-letter stream pattern' }).fill('{stream}.dead');
  await dialog.getByRole('switch', { name: 'Redis Cluster' }).click();
  await dialog.getByRole('switch', { name: 'Read-only' }).click();
  await expect(fieldOf(dialog, 'Redis URL')).not.toContainText('must look like');
  const expected = { kind: 'redis', name, url: 'redis://app:s3cret-pw@127.0.0.1:6379/0', cluster: true, deadLetterAfterDeliveries: 3, deadLetterPattern: '{stream}.dead', readOnly: true };
  await dialog.getByRole('button', { name: 'Test connection' }).click();
  await expect.poll(() => lastCall(calls, 'connections/test')?.input).toEqual(expected);
  // The answer, whatever it is, says what happened in words.
  await expect(dialog.getByRole('status').or(dialog.getByRole('alert'))).toContainText(/\w+ \w+/, { timeout: 30_000 });
  await saveAndCheck(dialog, calls, server, expected, 's3cret-pw');
});

test('Google Cloud Pub/Sub: project id and emulator host are checked beside their fields; the credentials chosen are what is sent', async ({ page, server }) => {
  const { calls, dialog } = await open(page, server);
  const name = unique('pubsub');
  await dialog.getByRole('combobox', { name: 'Kind' }).selectOption('pubsub');
  await dialog.getByRole('textbox', { name: 'Name' }).fill(name);
  await dialog.getByRole('textbox', { name: 'Project id' }).fill('My-Project');
  await dialog.getByRole('textbox', { name: 'Emulator host' }).fill('localhost');
  await dialog.getByRole('button', { name: 'Test connection' }).click();
  await expect(fieldOf(dialog, 'Project id')).toContainText('projectId must be a Google Cloud project id');
  await expect(fieldOf(dialog, 'Emulator host')).toContainText('emulatorHost must be host:port');
  // A key file instead of the emulator: an empty path is named.
  await dialog.getByRole('textbox', { name: 'Project id' }).fill('brokerdeck-e2e');
  await dialog.getByRole('combobox', { name: 'Credentials' }).selectOption('keyFile');
  await expect(dialog.getByRole('textbox', { name: 'Emulator host' })).toHaveCount(0);
  await dialog.getByRole('button', { name: 'Test connection' }).click();
  await expect(fieldOf(dialog, 'Key file')).toContainText('keyFile must not be empty');
  expect(calls.filter((c) => c.op === 'connections/test')).toHaveLength(0);

  await dialog.getByRole('textbox', { name: 'Key file' }).fill('/nonexistent/brokerdeck-e2e-key.json');
  await dialog.getByRole('button', { name: 'Test connection' }).click();
  await expect.poll(() => lastCall(calls, 'connections/test')?.input).toEqual({
    kind: 'pubsub',
    name,
    projectId: 'brokerdeck-e2e',
    keyFile: '/nonexistent/brokerdeck-e2e-key.json',
    allowDeliveryAttemptRisk: false,
    readOnly: false,
  });
  await expect(dialog.getByRole('status').or(dialog.getByRole('alert'))).toContainText(/\w+ \w+/, { timeout: 30_000 });

  await dialog.getByRole('combobox', { name: 'Credentials' }).selectOption('emulator');
  await dialog.getByRole('textbox', { name: 'Emulator host' }).fill('127.0.0.1:8085');
  await dialog.getByRole('switch', { name: 'Browse subscriptions with a dead-letter policy' }).click();
  await saveAndCheck(dialog, calls, server, { kind: 'pubsub', name, projectId: 'brokerdeck-e2e', emulatorHost: '127.0.0.1:8085', allowDeliveryAttemptRisk: true, readOnly: false });
});

test('Amazon Kinesis: region and credentials are checked beside their fields and sent as typed', async ({ page, server }) => {
  const { calls, dialog } = await open(page, server);
  const name = unique('kinesis');
  await dialog.getByRole('combobox', { name: 'Kind' }).selectOption('kinesis');
  await dialog.getByRole('textbox', { name: 'Name' }).fill(name);
  await dialog.getByRole('textbox', { name: 'Region' }).fill('EU West 1');
  await dialog.getByRole('textbox', { name: 'Endpoint' }).fill('127.0.0.1:4567');
  await dialog.getByRole('textbox', { name: 'Access key id' }).fill('AKIDEXAMPLE');
  await dialog.getByRole('button', { name: 'Test connection' }).click();
  await expect(fieldOf(dialog, 'Region')).toContainText('region must be an AWS region name');
  await expect(fieldOf(dialog, 'Endpoint')).toContainText('endpoint must be an http(s) URL');
  await expect(fieldOf(dialog, 'Secret access key')).toContainText('secretAccessKey must not be empty');
  // TLS settings are not offered: the SDK's HTTPS is the endpoint's.
  await expect(dialog.getByRole('switch', { name: 'Use TLS' })).toHaveCount(0);
  expect(calls.filter((c) => c.op === 'connections/test')).toHaveLength(0);

  await dialog.getByRole('textbox', { name: 'Region' }).fill('eu-west-1');
  await dialog.getByRole('textbox', { name: 'Endpoint' }).fill('http://127.0.0.1:4567');
  await dialog.getByRole('textbox', { name: 'Secret access key' }).fill('kinesis-secret-e2e');
  const expected = { kind: 'kinesis', name, endpoint: 'http://127.0.0.1:4567', region: 'eu-west-1', accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'kinesis-secret-e2e', readOnly: false };
  await dialog.getByRole('button', { name: 'Test connection' }).click();
  await expect.poll(() => lastCall(calls, 'connections/test')?.input).toEqual(expected);
  await expect(dialog.getByRole('status').or(dialog.getByRole('alert'))).toContainText(/\w+ \w+/, { timeout: 30_000 });
  await saveAndCheck(dialog, calls, server, expected, 'kinesis-secret-e2e');
});
