/**
 * Publishing: placeholders per copy, every record's offset, compression, and
 * the default partitioner: Kafka's murmur2 bit for bit (the Java client's own
 * test vectors) and, on a real broker, the same partition the Java producer
 * picks for the same key.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { murmur2 } from '../../../src-main/ground/murmur2.js';
import { javaPartition } from '../../../src-main/connectors/kafka/index.js';
import { zstdAvailable } from '../../../src-main/connectors/kafka/produce.js';
import type { KafkaBrokerHandle } from '../../kafka/broker.js';
import { browseAll } from './browse.suite.js';
import { connect, createTopic, topicName } from './helpers.js';

/** Kafka's UtilsTest.testMurmur2. */
const VECTORS: Array<[string, number]> = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
];

function javaConsoleProducer(classpath: string, brokers: string, topic: string, lines: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'java',
      ['-Xmx128m', '-cp', classpath, 'org.apache.kafka.tools.ConsoleProducer', '--bootstrap-server', brokers, '--topic', topic, '--property', 'parse.key=true', '--property', 'key.separator=|', '--producer-property', 'linger.ms=0'],
      { stdio: ['pipe', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ConsoleProducer exited with ${code}: ${err.slice(-2000)}`))));
    child.stdin.end(lines);
  });
}

export function produceSuite(kafka: KafkaBrokerHandle): void {
  describe('publishing', () => {
    it('computes murmur2 exactly as the Java client (UtilsTest vectors)', () => {
      for (const [text, hash] of VECTORS) expect(murmur2(Buffer.from(text))).toBe(hash);
      // toPositive, not an unsigned shift: the two differ when the partition count is not a power of two.
      expect(javaPartition(Buffer.from('21'), 3)).toBe((-973932308 & 0x7fffffff) % 3);
      expect(javaPartition(Buffer.from('21'), 3)).not.toBe((-973932308 >>> 0) % 3);
    });

    it('puts each key on the partition the Java producer picks', { timeout: 120_000 }, async (ctx) => {
      const broker = kafka.require(ctx);
      const classpath = broker.classpath();
      if (!classpath) return ctx.skip('the Java client is not at hand (KAFKA_BROKERS names an external cluster)');
      const keys = [...VECTORS.map(([k]) => k), ...Array.from({ length: 200 }, (_, i) => `customer-${i * 7919}`), 'ключ', '🔑-emoji', 'a'];
      const javaTopic = topicName('java-partitioner');
      const ourTopic = topicName('bd-partitioner');
      // Seven partitions: not a power of two, where sloppy ports of the partitioner go wrong.
      await Promise.all([createTopic(broker, javaTopic, 7), createTopic(broker, ourTopic, 7)]);
      await javaConsoleProducer(classpath, broker.brokers[0]!, javaTopic, keys.map((k) => `${k}|value of ${k}`).join('\n') + '\n');

      const c = connect(broker);
      try {
        for (const key of keys) await c.produce({ topic: ourTopic, key, value: `value of ${key}`, valueEncoding: 'utf8', headers: {}, count: 1 });
        const java = await browseAll(c, { topic: javaTopic, limit: 1000 } as Parameters<typeof c.browseTopic>[0]);
        const ours = await browseAll(c, { topic: ourTopic, limit: 1000 } as Parameters<typeof c.browseTopic>[0]);
        expect(java.records).toHaveLength(keys.length);
        const javaPartitionOf = new Map(java.records.map((r) => [r.key, r.partition]));
        const ourPartitionOf = new Map(ours.records.map((r) => [r.key, r.partition]));
        const mismatches = keys.filter((k) => javaPartitionOf.get(k) !== ourPartitionOf.get(k) || javaPartitionOf.get(k) !== javaPartition(Buffer.from(k, 'utf8'), 7));
        expect(mismatches).toEqual([]);
        // The keys really spread: every partition got some.
        expect(new Set(javaPartitionOf.values()).size).toBe(7);
      } finally {
        await c.close();
      }
    });

    it('publishes N copies with placeholders and reports every offset', async (ctx) => {
      const broker = kafka.require(ctx);
      const name = topicName('copies');
      await createTopic(broker, name, 3);
      const c = connect(broker);
      try {
        const r = await c.produce({ topic: name, key: 'id-{{i}}', value: '{"n":{{i}},"id":"{{uuid}}","at":"{{now}}"}', valueEncoding: 'utf8', headers: { copy: '{{i}}' }, count: 50 });
        expect(r).toMatchObject({ published: 50, confirmed: true });
        expect(r.offsets).toHaveLength(50);
        const all = await browseAll(c, { topic: name, limit: 100 } as Parameters<typeof c.browseTopic>[0]);
        expect(all.records).toHaveLength(50);
        const byKey = new Map(all.records.map((m) => [m.key, m]));
        for (let i = 1; i <= 50; i++) {
          const m = byKey.get(`id-${i}`)!;
          expect(m.headers.copy).toBe(String(i));
          const v = JSON.parse(m.value!) as { n: number; id: string; at: string };
          expect(v.n).toBe(i);
          expect(v.id).toMatch(/^[0-9a-f-]{36}$/);
          expect(Number.isNaN(Date.parse(v.at))).toBe(false);
          expect(r.offsets![i - 1]).toEqual({ partition: m.partition, offset: m.offset });
        }
        const ids = new Set(all.records.map((m) => (JSON.parse(m.value!) as { id: string }).id));
        expect(ids.size).toBe(50);
      } finally {
        await c.close();
      }
    });

    it('compresses as asked and reads every codec back', async (ctx) => {
      const broker = kafka.require(ctx);
      const name = topicName('codecs');
      await createTopic(broker, name, 1);
      const c = connect(broker);
      try {
        for (const compression of ['none', 'gzip', 'snappy', 'lz4'] as const) {
          await c.produce({ topic: name, key: compression, value: `${compression} `.repeat(200), valueEncoding: 'utf8', headers: {}, count: 10, compression });
        }
        if (zstdAvailable) {
          await c.produce({ topic: name, key: 'zstd', value: 'zstd '.repeat(200), valueEncoding: 'utf8', headers: {}, count: 10, compression: 'zstd' });
        } else {
          await expect(c.produce({ topic: name, key: 'zstd', value: 'x', valueEncoding: 'utf8', headers: {}, count: 1, compression: 'zstd' })).rejects.toMatchObject({
            code: 'INVALID_ARGUMENT',
            field: 'compression',
          });
        }
        const all = await browseAll(c, { topic: name, limit: 1000 } as Parameters<typeof c.browseTopic>[0]);
        expect(all.records).toHaveLength(zstdAvailable ? 50 : 40);
        for (const m of all.records) expect(m.value).toBe(`${m.key} `.repeat(200));
      } finally {
        await c.close();
      }
    });

    it('refuses a partition the topic does not have, and a missing topic', async (ctx) => {
      const broker = kafka.require(ctx);
      const name = topicName('bounds');
      await createTopic(broker, name, 2);
      const c = connect(broker);
      try {
        await expect(c.produce({ topic: name, value: 'x', valueEncoding: 'utf8', headers: {}, count: 1, partition: 2 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        await expect(c.produce({ topic: topicName('missing'), value: 'x', valueEncoding: 'utf8', headers: {}, count: 1 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
      } finally {
        await c.close();
      }
    });
  });
}
