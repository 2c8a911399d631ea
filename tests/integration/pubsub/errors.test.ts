/**
 * How a Pub/Sub connection fails, each way named: an emulator that is not there,
 * key files that cannot be used (missing, not JSON, not a service-account key), and
 * configurations the contract refuses (a malformed project id, an emulator host
 * that is not host:port, an emulator and a key file together), and no credentials at all. The emulator takes
 * any project id, so a project that does not exist on Google Cloud (NOT_FOUND or
 * PERMISSION_DENIED there) cannot be shown against it; these tests need no emulator.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PubsubConnector, testPubsubConnection } from '../../../src-main/connectors/pubsub/index.js';
import { startCore } from '../../../src-main/core/core.js';
import { testDeps } from '../aws/helpers.js';
import { PROJECT } from './helpers.js';

let dir: string;
const warnings: Error[] = [];
const onWarning = (w: Error) => warnings.push(w);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bd-pubsub-keys-'));
  process.on('warning', onWarning);
});

afterAll(() => {
  process.off('warning', onWarning);
  rmSync(dir, { recursive: true, force: true });
});

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function config(extra: Record<string, unknown>) {
  return { kind: 'pubsub', name: 'errors', projectId: PROJECT, allowDeliveryAttemptRisk: false, readOnly: false, ...extra } as never;
}

describe('Pub/Sub connection errors', () => {
  it('names an emulator that cannot be reached, in the test and in the connection status, without probing for Google credentials', async () => {
    const host = `127.0.0.1:${await closedPort()}`;
    const r = await testPubsubConnection(config({ emulatorHost: host }), 2_000);
    expect(r).toMatchObject({ ok: false, problem: 'unreachable' });
    expect(r.message).toContain(host);
    expect(r.message).toContain('is the emulator running there?');

    const c = new PubsubConnector('c-down', config({ emulatorHost: host }), testDeps(), { sampleIntervalMs: 0 });
    try {
      await expect(c.listTopics()).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining(host) });
      expect(c.info()).toMatchObject({ status: 'error', error: expect.stringContaining('cannot be reached') });
      // One line a person can read: the socket's own error, not the library's pile of retries.
      expect(c.info().error).toMatch(new RegExp(`^pubsub emulator ${host} \\(project [\\w-]+\\) cannot be reached: is the emulator running there\\? \\(connect ECONNREFUSED ${host}\\)$`));
    } finally {
      await c.close();
    }
    // Emulator connections never look for application default credentials (no metadata-server lookups).
    expect(warnings.filter((w) => w.name === 'MetadataLookupWarning')).toEqual([]);
  });

  it('names a key file that is missing, not JSON, or not a service-account key, and never shows the key', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const files = {
      missing: join(dir, 'missing.json'),
      text: join(dir, 'key.txt'),
      user: join(dir, 'user.json'),
      noKey: join(dir, 'no-key.json'),
    };
    writeFileSync(files.text, 'this is not json');
    writeFileSync(files.user, JSON.stringify({ type: 'authorized_user', client_id: 'x', client_secret: 'y', refresh_token: 'z' }));
    writeFileSync(files.noKey, JSON.stringify({ type: 'service_account', client_email: 'svc@p.iam.gserviceaccount.com' }));
    const cases: Array<[string, RegExp]> = [
      [files.missing, /keyFile: .*missing\.json does not exist/],
      [files.text, /keyFile: .*key\.txt is not JSON/],
      [files.user, /keyFile: .*user\.json is not a service-account key \(its type is "authorized_user"; expected "service_account"\)/],
      [files.noKey, /keyFile: .*no-key\.json is a service-account key without client_email or private_key/],
      [dir, /keyFile: .* is not a file/],
    ];
    for (const [keyFile, message] of cases) {
      const r = await testPubsubConnection(config({ keyFile }), 2_000);
      expect(r, keyFile).toMatchObject({ ok: false, problem: 'config_error', message: expect.stringMatching(message) });
      const c = new PubsubConnector('c-key', config({ keyFile }), testDeps(), { sampleIntervalMs: 0 });
      try {
        expect(c.info()).toMatchObject({ status: 'error', error: expect.stringMatching(message) });
        await expect(c.listQueues()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'keyFile' });
      } finally {
        await c.close();
      }
    }
    // A well-formed key is accepted as a key (reaching Google is another matter); its secret never shows.
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ type: 'service_account', project_id: PROJECT, client_email: 'svc@brokerdeck-test.iam.gserviceaccount.com', private_key: privateKey }));
    const c = new PubsubConnector('c-good', config({ keyFile: good }), testDeps(), { sampleIntervalMs: 0 });
    try {
      expect(c.info().status).toBe('connecting');
      expect(JSON.stringify(c.info())).not.toContain('PRIVATE KEY');
      expect(c.info().target).toBe(`pubsub.googleapis.com (project ${PROJECT})`);
    } finally {
      await c.close();
    }
  });

  it('says so when there are no Google Cloud credentials at all, and the process carries on', async (ctx) => {
    const adc = join(homedir(), '.config', 'gcloud', 'application_default_credentials.json');
    if (process.env.GOOGLE_APPLICATION_CREDENTIALS || existsSync(adc)) ctx.skip('this machine has application default credentials');
    // No metadata server here: the credentials lookup is told not to probe for one.
    const saved = process.env.METADATA_SERVER_DETECTION;
    process.env.METADATA_SERVER_DETECTION = 'none';
    try {
      const r = await testPubsubConnection(config({}), 5_000);
      expect(r).toMatchObject({ ok: false, problem: 'auth_failed', message: expect.stringContaining('no Google Cloud credentials: give keyFile') });
      const c = new PubsubConnector('c-noadc', config({}), testDeps(), { sampleIntervalMs: 0 });
      try {
        await expect(c.listTopics()).rejects.toMatchObject({ code: 'UNAUTHORIZED', field: 'keyFile' });
        // Asked again, it answers the same (the generated client never built its stub, so nothing is thrown outside the call).
        await expect(c.listQueues()).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
        expect(c.info()).toMatchObject({ status: 'error', error: expect.stringContaining('application default credentials') });
      } finally {
        await c.close();
      }
    } finally {
      if (saved === undefined) delete process.env.METADATA_SERVER_DETECTION;
      else process.env.METADATA_SERVER_DETECTION = saved;
    }
  });

  it('refuses configurations the contract does not allow, naming the field', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'bd-pubsub-cfg-'));
    const core = await startCore({ dataDir, version: '0.0.0-test' });
    try {
      await expect(core.call('connections/test', { kind: 'pubsub', name: 'x', projectId: 'Not_A_Project' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'projectId' });
      await expect(core.call('connections/test', { kind: 'pubsub', name: 'x', projectId: PROJECT, emulatorHost: 'localhost' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'emulatorHost',
      });
      await expect(core.call('connections/test', { kind: 'pubsub', name: 'x', projectId: PROJECT, emulatorHost: 'localhost:8085', keyFile: '/k.json' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'keyFile',
      });
      const r = await core.call('connections/test', { kind: 'pubsub', name: 'x', projectId: PROJECT, keyFile: join(dir, 'nowhere.json') });
      expect(r).toMatchObject({ ok: false, problem: 'config_error', message: expect.stringContaining('does not exist') });
    } finally {
      await core.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
