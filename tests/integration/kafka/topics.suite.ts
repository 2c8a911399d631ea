/**
 * Topics: partitions with watermarks, counts, sizes and configuration;
 * creating and deleting; records written by kcat read back exactly, and the
 * reverse.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { KafkaBrokerHandle } from '../../kafka/broker.js';
import { connect, createTopic, eventually, kcat, kcatAvailable, kcatRead, topicName } from './helpers.js';

export function topicsSuite(kafka: KafkaBrokerHandle): void {
  describe('topics', () => {
    it('creates a topic, lists it with watermarks, size and configuration, and deletes it', async (ctx) => {
      const broker = kafka.require(ctx);
      const c = connect(broker);
      const name = topicName('topics');
      try {
        const created = await c.createTopic({ topic: name, partitions: 3, retentionMs: 3_600_000 });
        expect(created).toMatchObject({ name, messages: 0 });
        expect(created.partitions).toHaveLength(3);
        expect(created.config).toMatchObject({ 'retention.ms': 3_600_000, 'cleanup.policy': 'delete', 'replication.factor': 1 });

        await expect(c.createTopic({ topic: name, partitions: 1 })).rejects.toMatchObject({ code: 'CONFLICT' });

        const produced = await c.produce({ topic: name, value: 'hello {{i}}', valueEncoding: 'utf8', headers: {}, count: 30, partition: 1 });
        expect(produced.published).toBe(30);
        await c.produce({ topic: name, value: 'x', valueEncoding: 'utf8', headers: {}, count: 5, partition: 2 });
        const listed = await eventually(async () => {
          const t = (await c.listTopics()).find((x) => x.name === name);
          return t && t.messages === 35 && t.bytes > 0 ? t : null;
        });
        expect(listed.partitions.map((p) => [p.partition, p.startOffset, p.endOffset])).toEqual([
          [0, 0, 0],
          [1, 0, 30],
          [2, 0, 5],
        ]);
        expect(listed.partitions[1]!.bytes).toBeGreaterThan(listed.partitions[2]!.bytes);
        expect(listed.deadLetterFor).toBeUndefined();

        const full = await c.describeTopicConfig(name);
        expect(full.find((e) => e.name === 'retention.ms')).toMatchObject({ value: '3600000', source: 'topic' });
        expect(full.find((e) => e.name === 'cleanup.policy')).toMatchObject({ value: 'delete' });

        await c.deleteTopic({ topic: name });
        await eventually(async () => !(await c.listTopics()).some((t) => t.name === name));
        await expect(c.browseTopic({ topic: name, limit: 10 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(c.deleteTopic({ topic: name })).rejects.toMatchObject({ code: 'NOT_FOUND' });
      } finally {
        await c.close();
      }
    });

    it('shows compaction settings of a compacted topic', async (ctx) => {
      const broker = kafka.require(ctx);
      const name = topicName('compacted');
      await createTopic(broker, name, 1, [
        { name: 'cleanup.policy', value: 'compact' },
        { name: 'min.compaction.lag.ms', value: '60000' },
      ]);
      const c = connect(broker);
      try {
        const t = (await c.listTopics()).find((x) => x.name === name)!;
        expect(t.config).toMatchObject({ 'cleanup.policy': 'compact', 'min.compaction.lag.ms': 60_000 });
      } finally {
        await c.close();
      }
    });
  });

  describe('kcat interoperability', () => {
    it('reads exactly what kcat wrote: keys, values, headers, partitions, timestamps', async (ctx) => {
      const broker = kafka.require(ctx);
      if (!kcatAvailable) return ctx.skip('kcat is not installed (Debian package kcat)');
      const name = topicName('from-kcat');
      await createTopic(broker, name, 2);
      const lines = ['k1\t{"n":1,"text":"grüße"}', 'k2\tplain value', '\tno key here'].join('\n') + '\n';
      await kcat(['-b', broker.brokers[0]!, '-P', '-t', name, '-p', '1', '-K', '\t', '-H', 'trace=abc-123', '-H', 'source=kcat'], lines);
      // A binary value (every byte value) as one message: kcat sends a file argument whole.
      const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const file = join(mkdtempSync(join(tmpdir(), 'bd-kcat-')), 'value.bin');
      writeFileSync(file, binary);
      await kcat(['-b', broker.brokers[0]!, '-P', '-t', name, '-p', '0', '-k', 'bin', file]);

      const theirs = await kcatRead(broker, name);
      const c = connect(broker);
      try {
        const page = await c.browseTopic({ topic: name, partition: 1, limit: 100 });
        expect(page.messages.map((m) => [m.offset, m.key, m.value])).toEqual([
          [0, 'k1', '{"n":1,"text":"grüße"}'],
          [1, 'k2', 'plain value'],
          [2, '', 'no key here'],
        ]);
        for (const m of page.messages) {
          expect(m.headers).toEqual({ trace: 'abc-123', source: 'kcat' });
          const k = theirs.find((t) => t.partition === 1 && t.offset === m.offset)!;
          expect(m.timestamp).toBe(k.ts);
          expect(m.value).toBe(k.payload);
        }
        const p0 = await c.browseTopic({ topic: name, partition: 0, limit: 100 });
        const bin = p0.messages.find((m) => m.key === 'bin')!;
        expect(bin.valueEncoding).toBe('base64');
        const got = Buffer.from(bin.value!, 'base64');
        expect(got.equals(binary)).toBe(true);
      } finally {
        await c.close();
      }
    });

    it('writes what kcat reads exactly: key, binary value, headers, chosen partition', async (ctx) => {
      const broker = kafka.require(ctx);
      if (!kcatAvailable) return ctx.skip('kcat is not installed (Debian package kcat)');
      const name = topicName('to-kcat');
      await createTopic(broker, name, 3);
      const c = connect(broker);
      try {
        const value = Buffer.from([0, 1, 2, 250, 251, 255, 10, 13, 0x7f]);
        const r = await c.produce({ topic: name, key: 'order-7', value: value.toString('base64'), valueEncoding: 'base64', headers: { 'content-type': 'application/octet-stream', trace: 'τ-1' }, count: 1, partition: 2 });
        expect(r.offsets).toEqual([{ partition: 2, offset: 0 }]);
        await c.produce({ topic: name, key: 'j', value: '{"a":[1,2,{"b":"ü"}]}', valueEncoding: 'utf8', headers: {}, count: 3, partition: 0 });

        const raw = await kcat(['-b', broker.brokers[0]!, '-C', '-t', name, '-p', '2', '-o', '0', '-c', '1', '-e', '-q', '-f', '%s']);
        expect(raw.equals(value)).toBe(true);
        const [meta] = await kcatRead(broker, name, 2);
        expect(meta).toMatchObject({ key: 'order-7', partition: 2, offset: 0 });
        expect(meta!.headers).toEqual(['content-type', 'application/octet-stream', 'trace', 'τ-1']);
        const json = await kcatRead(broker, name, 0);
        expect(json.map((m) => [m.key, m.payload])).toEqual(Array.from({ length: 3 }, () => ['j', '{"a":[1,2,{"b":"ü"}]}']));
      } finally {
        await c.close();
      }
    });
  });
}
