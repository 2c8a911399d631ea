/**
 * Kafka's own admin tools (the Java client, from the Maven artifacts
 * tests/kafka resolves) against the Kafka listener's topic administration:
 * kafka-topics --alter --partitions, kafka-configs --alter and --describe,
 * kafka-delete-records. Skipped, with the reason, where Java or the jars are missing.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKafkaScript, whyUnavailable } from '../../kafka/control.js';
import { startWireBroker, type WireBroker } from './helpers.js';

const java = ['/usr/bin/java', process.env.JAVA_HOME ? `${process.env.JAVA_HOME}/bin/java` : ''].find((p) => p && existsSync(p));
let classpath = '';
let unavailable = java ? '' : 'no java on this machine';
if (java) {
  const r = await runKafkaScript(['classpath'], 300_000);
  if (r.code === 0) classpath = r.stdout.trim().split('\n').pop()!;
  else unavailable = whyUnavailable(r);
}

let broker: WireBroker;
let dir = '';
beforeAll(async () => {
  if (unavailable) return;
  broker = await startWireBroker();
  dir = mkdtempSync(join(tmpdir(), 'bd-kafka-java-admin-'));
});
afterAll(async () => {
  await broker?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs a tool; resolves with its output and exit code (the tools print errors and exit non-zero). */
function tool(main: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    const child = execFile(java!, ['-Xms64m', '-Xmx256m', '-XX:TieredStopAtLevel=1', '-Dlog4j2.level=WARN', '-cp', classpath, main, '--bootstrap-server', broker.bootstrap, ...args], { timeout: 90_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ stdout, stderr, code: error ? ((error as { code?: number }).code ?? 1) : 0 }),
    );
    child.stdin!.end();
  });
}

const TOPICS = 'org.apache.kafka.tools.TopicCommand';
const CONFIGS = 'kafka.admin.ConfigCommand';
const DELETE_RECORDS = 'org.apache.kafka.tools.DeleteRecordsCommand';
const topicOf = (name: string) => broker.host.live().listTopics().find((t) => t.name === name)!;

describe.skipIf(Boolean(unavailable))(`Kafka's Java admin tools against the Kafka listener${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  it('kafka-topics --alter --partitions grows a topic and refuses a decrease', async () => {
    expect((await tool(TOPICS, ['--create', '--topic', 'java-grow', '--partitions', '2'])).code).toBe(0);
    const grown = await tool(TOPICS, ['--alter', '--topic', 'java-grow', '--partitions', '5']);
    expect(grown.code, grown.stderr).toBe(0);
    expect(topicOf('java-grow').partitions).toHaveLength(5);
    const described = await tool(TOPICS, ['--describe', '--topic', 'java-grow']);
    expect(described.stdout).toMatch(/PartitionCount: 5/);
    const shrunk = await tool(TOPICS, ['--alter', '--topic', 'java-grow', '--partitions', '3']);
    expect(shrunk.code).not.toBe(0);
    expect(shrunk.stdout + shrunk.stderr).toMatch(/InvalidPartitionsException/);
    expect(topicOf('java-grow').partitions).toHaveLength(5);
  }, 300_000);

  it('kafka-configs --alter sets and deletes topic configs, --describe shows them, compaction is refused', async () => {
    expect((await tool(TOPICS, ['--create', '--topic', 'java-conf', '--partitions', '1'])).code).toBe(0);
    const set = await tool(CONFIGS, ['--alter', '--entity-type', 'topics', '--entity-name', 'java-conf', '--add-config', 'retention.ms=86400000,max.message.bytes=200000']);
    expect(set.code, set.stderr).toBe(0);
    expect(topicOf('java-conf')).toMatchObject({ retentionMs: 86_400_000, config: { 'max.message.bytes': 200_000 } });
    const described = await tool(CONFIGS, ['--describe', '--entity-type', 'topics', '--entity-name', 'java-conf']);
    expect(described.stdout).toMatch(/retention\.ms=86400000/);
    expect(described.stdout).toMatch(/max\.message\.bytes=200000/);

    const removed = await tool(CONFIGS, ['--alter', '--entity-type', 'topics', '--entity-name', 'java-conf', '--delete-config', 'retention.ms']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(topicOf('java-conf').retentionMs).toBeNull();

    const compact = await tool(CONFIGS, ['--alter', '--entity-type', 'topics', '--entity-name', 'java-conf', '--add-config', 'cleanup.policy=compact,min.compaction.lag.ms=5000']);
    expect(compact.code, compact.stderr).toBe(0);
    expect(topicOf('java-conf').config).toMatchObject({ 'cleanup.policy': 'compact', 'min.compaction.lag.ms': 5000 });
    const bad = await tool(CONFIGS, ['--alter', '--entity-type', 'topics', '--entity-name', 'java-conf', '--add-config', 'cleanup.policy=shred']);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/InvalidConfigurationException/);
  }, 300_000);

  it('kafka-delete-records moves the log start offset', async () => {
    expect((await tool(TOPICS, ['--create', '--topic', 'java-trim', '--partitions', '1'])).code).toBe(0);
    await broker.host.live().produce('java-trim', Array.from({ length: 12 }, (_, i) => ({ value: `m${i}` })));
    const file = join(dir, 'offsets.json');
    writeFileSync(file, JSON.stringify({ version: 1, partitions: [{ topic: 'java-trim', partition: 0, offset: 7 }] }));
    const res = await tool(DELETE_RECORDS, ['--offset-json-file', file]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/partition: java-trim-0\s+low_watermark: 7\n/);
    expect(topicOf('java-trim').partitions[0]).toMatchObject({ startOffset: 7, endOffset: 12 });
    writeFileSync(file, JSON.stringify({ version: 1, partitions: [{ topic: 'java-trim', partition: 0, offset: 40 }] }));
    const beyond = await tool(DELETE_RECORDS, ['--offset-json-file', file]);
    expect(beyond.stdout + beyond.stderr).toMatch(/OffsetOutOfRangeException/);
    expect(topicOf('java-trim').partitions[0]!.startOffset).toBe(7);
  }, 300_000);

  it('kafka-consumer-groups --delete-offsets removes an empty group\'s offsets of a topic', async () => {
    const engine = broker.host.live();
    engine.createTopic('java-od', { partitions: 2 });
    engine.createTopic('java-od-kept', { partitions: 1 });
    await engine.commitOffsets('java-od-group', [
      { topic: 'java-od', partition: 0, offset: 0 },
      { topic: 'java-od', partition: 1, offset: 0 },
      { topic: 'java-od-kept', partition: 0, offset: 0 },
    ]);
    const res = await tool('org.apache.kafka.tools.consumer.group.ConsumerGroupCommand', ['--delete-offsets', '--group', 'java-od-group', '--topic', 'java-od']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/java-od\s+0\s+Successful/);
    expect(res.stdout).toMatch(/java-od\s+1\s+Successful/);
    const left = engine.listGroups().find((g) => g.groupId === 'java-od-group')!.partitions.filter((p) => p.committed !== null);
    expect(left.map((p) => `${p.topic}/${p.partition}`)).toEqual(['java-od-kept/0']);
  }, 300_000);
});
