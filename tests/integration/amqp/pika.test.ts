/**
 * pika (Debian's python3-pika), unchanged, against the listener and against
 * the real RabbitMQ on this machine: the same observations. Skipped, with the
 * reason, where pika is not installed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startBroker, type TestBroker } from './server.js';

// Debian's package installs for the system Python, which a pyenv shim on PATH may hide.
const PYTHON = process.env.PIKA_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const probe = spawnSync(PYTHON, ['-c', 'import pika'], { encoding: 'utf8' });
const unavailable = probe.status === 0 ? null : `pika is not importable by ${PYTHON} (apt-get install python3-pika)`;
const rabbitUp = await new Promise<boolean>((resolve) => {
  const s = net.connect({ host: '127.0.0.1', port: 5672 }, () => {
    s.destroy();
    resolve(true);
  });
  s.on('error', () => resolve(false));
});

/** Runs the scenario; asynchronously, since the broker under test lives in this process. */
function scenario(url: string): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [join(import.meta.dirname, 'python', 'pika_scenario.py'), url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`the pika scenario failed against ${url}:\n${stdout}\n${stderr}`));
      resolve(Object.fromEntries(stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])));
    });
  });
}

let b: TestBroker;
beforeAll(async () => {
  b = await startBroker();
});
afterAll(async () => {
  await b?.stop();
});

describe.skipIf(unavailable !== null)('pika', () => {
  test('runs its scenario against the embedded broker', { timeout: 60_000 }, async () => {
    expect(await scenario(b.url)).toEqual({
      serverNamed: 'True',
      'get.body': 'hello',
      'get.headers': "[('n', 7), ('s', 'x')]",
      'get.messageCount': '0',
      'get.redelivered': 'True',
      xdeath: "(1L, 'rejected', 'datetime')",
      missingExchange: "404 NOT_FOUND - no exchange 'pika-missing' in vhost '/'",
      wrongPassword: 'ProbableAuthenticationError',
    });
  });

  test.skipIf(!rabbitUp)('observes the same against RabbitMQ', { timeout: 60_000 }, async () => {
    expect(await scenario(b.url)).toEqual(await scenario('amqp://guest:guest@127.0.0.1:5672/%2F'));
  });
});

test.skipIf(unavailable === null)(`pika cannot run here: ${unavailable}`, () => {
  expect(unavailable).not.toBeNull();
});
