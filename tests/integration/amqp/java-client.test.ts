/**
 * The RabbitMQ Java client (com.rabbitmq:amqp-client from Maven Central),
 * unchanged, against the listener: the scenario in java/JavaClientScenario.java
 * runs against the real RabbitMQ on this machine and against the embedded
 * broker, and prints the same observations for both. Skipped, with the
 * reason, when Java or Maven, or the client's jar, cannot be had.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startBroker, type TestBroker } from './server.js';

const AMQP_CLIENT = 'com.rabbitmq:amqp-client:5.37.1';
const SLF4J = 'org.slf4j:slf4j-api:1.7.36';

function jarOf(coords: string): string {
  const [g, a, v] = coords.split(':') as [string, string, string];
  return join(homedir(), '.m2', 'repository', ...g.split('.'), a, v, `${a}-${v}.jar`);
}

/** Fetches the client's jars through Maven (once), compiles the scenario; the reason it cannot, or null. */
function prepare(outDir: string): string | null {
  for (const tool of ['java', 'javac', 'mvn']) {
    if (spawnSync(tool, ['-version'], { stdio: 'ignore' }).error) return `${tool} is not installed`;
  }
  for (const coords of [AMQP_CLIENT, SLF4J]) {
    if (existsSync(jarOf(coords))) continue;
    const r = spawnSync('mvn', ['-q', '-B', 'dependency:get', `-Dartifact=${coords}`, '-Dtransitive=false'], { encoding: 'utf8', timeout: 300_000 });
    if (!existsSync(jarOf(coords))) return `Maven could not fetch ${coords}: ${(r.stdout + r.stderr).split('\n').find((l) => l.includes('ERROR')) ?? r.error?.message ?? 'no jar'}`;
  }
  execFileSync('javac', ['-cp', classpath(), '-d', outDir, join(import.meta.dirname, 'java', 'JavaClientScenario.java')], { stdio: 'pipe' });
  return null;
}

function classpath(extra?: string): string {
  return [jarOf(AMQP_CLIENT), jarOf(SLF4J), ...(extra ? [extra] : [])].join(':');
}

/** Runs the scenario in a JVM; asynchronously, since the broker under test lives in this process. */
function scenario(outDir: string, url: string): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const child = spawn('java', ['-cp', classpath(outDir), 'JavaClientScenario', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`the Java scenario failed against ${url}:\n${stdout}\n${stderr}`));
      resolve(Object.fromEntries(stdout.trim().split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])));
    });
  });
}

const work = mkdtempSync(join(tmpdir(), 'brokerdeck-amqp-java-'));
const unavailable = prepare(work);
const rabbitUp = await new Promise<boolean>((resolve) => {
  const s = net.connect({ host: '127.0.0.1', port: 5672 }, () => {
    s.destroy();
    resolve(true);
  });
  s.on('error', () => resolve(false));
});

let b: TestBroker;
beforeAll(async () => {
  b = await startBroker();
});
afterAll(async () => {
  await b?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(unavailable !== null)('the RabbitMQ Java client', () => {
  test('runs its scenario against the embedded broker: confirms, get, nack, returns, x-death as Java types it, tx, errors', { timeout: 120_000 }, async () => {
    const ours = await scenario(work, b.url);
    expect(ours).toEqual({
      'server.product': 'Brokerdeck',
      serverNamed: 'true',
      'get.body': 'hello',
      'get.deliveryMode': '2',
      'get.redelivered': 'true',
      'return.replyCode': '312',
      'xdeath.count': '1 Long',
      'xdeath.reason': 'rejected',
      'xdeath.time': 'Date',
      'tx.beforeCommit': '0',
      'tx.afterCommit': '1',
      'passive.missing': "404 NOT_FOUND - no queue 'java-missing' in vhost '/'",
      wrongPassword: 'AuthenticationFailureException',
    });
  });

  test.skipIf(!rabbitUp)('observes the same against RabbitMQ, its product name aside', { timeout: 120_000 }, async () => {
    const ours = await scenario(work, b.url);
    const theirs = await scenario(work, 'amqp://guest:guest@127.0.0.1:5672');
    delete ours['server.product'];
    delete theirs['server.product'];
    expect(ours).toEqual(theirs);
  });
});

test.skipIf(unavailable === null)(`the RabbitMQ Java client cannot run here: ${unavailable}`, () => {
  expect(unavailable).not.toBeNull();
});
