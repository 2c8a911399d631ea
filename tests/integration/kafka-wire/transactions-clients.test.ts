/**
 * Kafka transactions with the Java client and kcat, unchanged, against the
 * Kafka listener: the Java client's transactional producer (abort, commit
 * with the group's offsets, a successor fencing it) and read_committed
 * consumer (tests/integration/kafka-wire/java/TransactionalScenario.java,
 * compiled against the Maven classpath tests/kafka resolves), and kcat with
 * `isolation.level=read_committed` reading a partition holding an aborted and
 * a committed transaction. Each is skipped, with the reason, where its tool
 * is missing.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKafkaScript, whyUnavailable } from '../../kafka/control.js';
import { startWireBroker, type WireBroker } from './helpers.js';

const java = ['/usr/bin/java', process.env.JAVA_HOME ? `${process.env.JAVA_HOME}/bin/java` : ''].find((p) => p && existsSync(p));
let classpath = '';
let javaUnavailable = java ? '' : 'no java on this machine';
if (!javaUnavailable && spawnSync('javac', ['-version'], { stdio: 'ignore' }).error) javaUnavailable = 'no javac on this machine';
if (!javaUnavailable) {
  const r = await runKafkaScript(['classpath'], 300_000);
  if (r.code === 0) classpath = r.stdout.trim().split('\n').pop()!;
  else javaUnavailable = whyUnavailable(r);
}
const kcatUnavailable = spawnSync('kcat', ['-V'], { stdio: 'ignore' }).error ? 'kcat is not installed' : '';

let broker: WireBroker;
let outDir = '';
beforeAll(async () => {
  broker = await startWireBroker();
  outDir = mkdtempSync(join(tmpdir(), 'bd-kafka-txn-java-'));
  if (!javaUnavailable) execFileSync('javac', ['-cp', classpath, '-d', outDir, join(import.meta.dirname, 'java', 'TransactionalScenario.java')], { stdio: 'pipe' });
}, 300_000);
afterAll(async () => {
  await broker?.stop();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

function run(file: string, args: string[], timeout = 120_000): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => resolve({ stdout, stderr, code: error ? ((error as { code?: number }).code ?? 1) : 0 }));
  });
}

describe.skipIf(Boolean(javaUnavailable))(`the Java client's transactions against the Kafka listener${javaUnavailable ? ` (skipped: ${javaUnavailable})` : ''}`, () => {
  it('aborts, commits with offsets, is fenced by its successor; read_committed sees only the committed records', async () => {
    broker.host.live().createTopic('java-txn', { partitions: 1 });
    const r = await run(java!, ['-Xms64m', '-Xmx256m', '-XX:TieredStopAtLevel=1', '-Dlog4j2.level=WARN', '-cp', `${outDir}:${classpath}`, 'TransactionalScenario', broker.bootstrap, 'java-txn'], 180_000);
    expect(r.code, r.stderr).toBe(0);
    const lines = new Map(r.stdout.split('\n').filter((l) => l.includes(':') || l === 'committed').map((l) => [l.split(':')[0]!, l.slice(l.indexOf(':') + 1)]));
    expect(lines.has('committed')).toBe(true);
    expect(lines.get('zombie-refused')).toMatch(/ProducerFencedException|InvalidProducerEpochException/);
    expect(lines.get('read_committed')!.split(',')).toEqual(['committed-0', 'committed-1', 'committed-2', 'successor-0']);
    expect(lines.get('read_uncommitted')!.split(',')).toEqual(['aborted-0', 'aborted-1', 'aborted-2', 'committed-0', 'committed-1', 'committed-2', 'zombie-0', 'successor-0']);
    // Both consumers end past the last marker: 8 records and 4 markers (abort, commit, the zombie's abort, commit).
    expect(lines.get('read_committed-position')).toBe('12');
    const group = broker.host.live().listGroups().find((g) => g.groupId === 'java-txn-group');
    expect(group?.partitions.find((p) => p.topic === 'java-txn')?.committed).toBe(42);
  }, 300_000);

  it('kafka-transactions lists and describes transactional ids (ListTransactions, DescribeTransactions)', async () => {
    const tool = (args: string[]) => run(java!, ['-Xms64m', '-Xmx256m', '-XX:TieredStopAtLevel=1', '-Dlog4j2.level=WARN', '-cp', classpath, 'org.apache.kafka.tools.TransactionsCommand', '--bootstrap-server', broker.bootstrap, ...args]);
    const listed = await tool(['list']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/java-txn\s+0\s+\d+\s+CompleteCommit/);
    const described = await tool(['describe', '--transactional-id', 'java-txn']);
    expect(described.code, described.stderr).toBe(0);
    expect(described.stdout).toMatch(/CompleteCommit/);
    const unknown = await tool(['describe', '--transactional-id', 'no-such-id']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stdout + unknown.stderr).toMatch(/could not be found/);
  }, 300_000);
});

describe.skipIf(Boolean(kcatUnavailable))(`kcat with read_committed against the Kafka listener${kcatUnavailable ? ` (skipped: ${kcatUnavailable})` : ''}`, () => {
  it('reads only the committed transaction of a partition that holds an aborted one too', async () => {
    const kafka = new Kafka({ clientId: 'kcat-txn', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    broker.host.live().createTopic('kcat-txn', { partitions: 1 });
    const producer = kafka.producer({ transactionalId: 'kcat-txn', maxInFlightRequests: 1, idempotent: true });
    await producer.connect();
    try {
      const aborted = await producer.transaction();
      await aborted.send({ topic: 'kcat-txn', messages: [{ value: 'a-0' }, { value: 'a-1' }] });
      await aborted.abort();
      const committed = await producer.transaction();
      await committed.send({ topic: 'kcat-txn', messages: [{ value: 'c-0' }, { value: 'c-1' }] });
      await committed.commit();
    } finally {
      await producer.disconnect();
    }
    const readCommitted = await run('kcat', ['-b', broker.bootstrap, '-C', '-t', 'kcat-txn', '-p', '0', '-o', 'beginning', '-e', '-q', '-X', 'isolation.level=read_committed', '-f', '%s@%o\n']);
    expect(readCommitted.code, readCommitted.stderr).toBe(0);
    expect(readCommitted.stdout.trim().split('\n')).toEqual(['c-0@3', 'c-1@4']);
    const readUncommitted = await run('kcat', ['-b', broker.bootstrap, '-C', '-t', 'kcat-txn', '-p', '0', '-o', 'beginning', '-e', '-q', '-X', 'isolation.level=read_uncommitted', '-f', '%s@%o\n']);
    expect(readUncommitted.code, readUncommitted.stderr).toBe(0);
    expect(readUncommitted.stdout.trim().split('\n')).toEqual(['a-0@0', 'a-1@1', 'c-0@3', 'c-1@4']);
  }, 120_000);
});
