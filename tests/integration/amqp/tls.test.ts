/** amqps: the AMQP listener over TLS when given a key and certificate, with amqplib checking the server's certificate. */
import amqp from 'amqplib';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { startBroker, type TestBroker } from './server.js';

const certDir = mkdtempSync(join(tmpdir(), 'brokerdeck-amqps-'));
let b: TestBroker | undefined;
afterAll(async () => {
  await b?.stop();
  rmSync(certDir, { recursive: true, force: true });
});

test('amqplib connects over amqps, verifies the certificate, and publishes with confirms', async () => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  const cert = readFileSync(join(certDir, 'cert.pem'));
  b = await startBroker({ tls: { key: readFileSync(join(certDir, 'key.pem')), cert } });
  const conn = await amqp.connect(`amqps://guest:guest@127.0.0.1:${b.port}`, { ca: [cert] });
  const ch = await conn.createConfirmChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true });
  await new Promise<void>((resolve, reject) => ch.sendToQueue(queue, Buffer.from('secret'), {}, (e) => (e ? reject(e) : resolve())));
  expect((await ch.checkQueue(queue)).messageCount).toBe(1);
  await conn.close();
  // Without the certificate authority, the client refuses the server.
  await expect(amqp.connect(`amqps://guest:guest@127.0.0.1:${b.port}`)).rejects.toThrow(/self[- ]signed|certificate/i);
});
