/**
 * Kafka's own tools (the Java client, from the Maven artifacts tests/kafka
 * resolves) against the Kafka listener, unchanged: kafka-topics creates and
 * describes a topic, the console producer (idempotent, acks=all: the Java
 * client's defaults) writes keyed records, the console consumer reads them in
 * a group, and kafka-consumer-groups describes the group and resets its offsets.
 * Skipped, with the reason, where Java or the jars are missing.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
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
beforeAll(async () => {
  if (!unavailable) broker = await startWireBroker();
});
afterAll(() => broker?.stop());

function tool(main: string, args: string[], input?: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(java!, ['-Xms64m', '-Xmx256m', '-XX:TieredStopAtLevel=1', '-Dlog4j2.level=WARN', '-cp', classpath, main, '--bootstrap-server', broker.bootstrap, ...args], { timeout: 90_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${main} ${args.join(' ')} failed: ${error.message}\n${stderr.split('\n').slice(-15).join('\n')}`)) : resolve({ stdout, stderr }),
    );
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

describe.skipIf(Boolean(unavailable))(`Kafka's Java tools against the Kafka listener${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  it('kafka-topics, console producer and consumer with a group, kafka-consumer-groups describe and reset', async () => {
    await tool('org.apache.kafka.tools.TopicCommand', ['--create', '--topic', 'java-orders', '--partitions', '3']);
    const described = await tool('org.apache.kafka.tools.TopicCommand', ['--describe', '--topic', 'java-orders']);
    expect(described.stdout).toMatch(/Topic: java-orders\s+TopicId: \S+\s+PartitionCount: 3\s+ReplicationFactor: 1/);

    const lines = Array.from({ length: 30 }, (_, i) => `k${i % 5}:order ${i}`);
    await tool('org.apache.kafka.tools.ConsoleProducer', ['--topic', 'java-orders', '--property', 'parse.key=true', '--property', 'key.separator=:'], lines.join('\n') + '\n');
    expect(broker.host.live().listTopics().find((t) => t.name === 'java-orders')!.messages).toBe(30);

    const consumed = await tool('org.apache.kafka.tools.consumer.ConsoleConsumer', ['--topic', 'java-orders', '--group', 'java-group', '--from-beginning', '--max-messages', '30', '--property', 'print.key=true', '--property', 'key.separator=:']);
    expect(consumed.stdout.trim().split('\n').sort()).toEqual([...lines].sort());

    const groups = await tool('org.apache.kafka.tools.consumer.group.ConsumerGroupCommand', ['--describe', '--group', 'java-group']);
    const rows = groups.stdout.split('\n').filter((l) => l.startsWith('java-group'));
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      const [, topic, , current, end, lag] = row.trim().split(/\s+/);
      expect(topic).toBe('java-orders');
      expect(current).toBe(end);
      expect(lag).toBe('0');
    }

    const reset = await tool('org.apache.kafka.tools.consumer.group.ConsumerGroupCommand', ['--reset-offsets', '--group', 'java-group', '--topic', 'java-orders', '--to-earliest', '--execute']);
    expect(reset.stdout.split('\n').filter((l) => l.includes('java-orders')).map((l) => l.trim().split(/\s+/).pop())).toEqual(['0', '0', '0']);
    const group = broker.host.live().listGroups().find((g) => g.groupId === 'java-group')!;
    expect(group.totalLag).toBe(30);
  }, 300_000);
});
