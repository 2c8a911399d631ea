/**
 * Reading one topic or one consumer group alone: the same figures the lists
 * give, for that resource only, and NOT_FOUND naming one that does not exist.
 */
import { Consumer } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import type { GroupInfo, TopicInfo } from '../../../src-main/contract/types.js';
import type { KafkaBrokerHandle } from '../../kafka/broker.js';
import { connect, createTopic, eventually, topicName } from './helpers.js';

/** What stays put between two reads: the time lag grows with the clock. */
const still = (g: GroupInfo | undefined) => g && { ...g, partitions: g.partitions.map(({ timeLagMs: _t, ...p }) => p) };
const shape = (t: TopicInfo | undefined) => t && { name: t.name, messages: t.messages, partitions: t.partitions.map((p) => [p.partition, p.startOffset, p.endOffset]), config: t.config, deadLetterFor: t.deadLetterFor };

export function singleResourceSuite(kafka: KafkaBrokerHandle): void {
  describe('single-resource reads', () => {
    it('reads one topic, a dead-letter topic with its source, as the list shows them', async (ctx) => {
      const broker = kafka.require(ctx);
      const name = topicName('single');
      const dlt = `${name}.DLT`;
      await createTopic(broker, name, 2, [{ name: 'retention.ms', value: '7200000' }]);
      await createTopic(broker, dlt, 1);
      const c = connect(broker);
      try {
        await c.produce({ topic: name, value: 'v{{i}}', valueEncoding: 'utf8', headers: {}, count: 4, partition: 1 });
        await c.produce({ topic: dlt, value: 'dead', valueEncoding: 'utf8', headers: {}, count: 1 });
        const one = await c.getTopic(name);
        expect(one.name).toBe(name);
        expect(one.partitions.map((p) => [p.partition, p.startOffset, p.endOffset])).toEqual([
          [0, 0, 0],
          [1, 0, 4],
        ]);
        expect(one.messages).toBe(4);
        expect(one.config).toMatchObject({ 'retention.ms': 7_200_000, 'replication.factor': 1 });
        expect(one.deadLetterFor).toBeUndefined();
        const dead = await c.getTopic(dlt);
        expect(dead.deadLetterFor).toEqual([name]);

        const listed = await c.listTopics();
        expect(shape(listed.find((t) => t.name === name))).toEqual(shape(one));
        expect(shape(listed.find((t) => t.name === dlt))).toEqual(shape(dead));

        const missing = topicName('missing');
        await expect(c.getTopic(missing)).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining(`"${missing}"`) });
        // Reading a missing topic does not create it.
        expect((await c.listTopics()).some((t) => t.name === missing)).toBe(false);
      } finally {
        await c.close();
      }
    });

    it('reads one consumer group with its offsets and lag, as the list shows it', { timeout: 120_000 }, async (ctx) => {
      const broker = kafka.require(ctx);
      const name = topicName('single-lag');
      const group = topicName('single-group');
      await createTopic(broker, name, 2);
      const c = connect(broker);
      const consumer = new Consumer({ clientId: 'single-test', groupId: group, bootstrapBrokers: broker.brokers, sessionTimeout: 10_000, heartbeatInterval: 500 });
      let closed = false;
      try {
        await c.produce({ topic: name, value: 'r{{i}}', valueEncoding: 'utf8', headers: {}, count: 6, partition: 0 });
        // Commit after 2 of the 6 records of partition 0.
        const stream = await consumer.consume({ topics: [name], mode: 'earliest', autocommit: false, maxWaitTime: 200 });
        await new Promise<void>((resolve, reject) => {
          stream.on('data', (m) => {
            if (m.partition === 0 && Number(m.offset) === 1) Promise.resolve(m.commit()).then(() => resolve(), reject);
          });
          stream.on('error', reject);
        });
        await stream.close();
        await consumer.close(true);
        closed = true;

        const one = await eventually(async () => {
          const g = await c.getGroup(group);
          return g.state === 'Empty' ? g : null;
        });
        expect(one.groupId).toBe(group);
        expect(one.members).toEqual([]);
        expect(one.partitions.find((p) => p.topic === name && p.partition === 0)).toMatchObject({ committed: 2, end: 6, lag: 4 });
        expect(one.totalLag).toBe(4);
        expect(still((await c.listGroups()).find((g) => g.groupId === group))).toEqual(still(one));

        const missing = topicName('no-group');
        await expect(c.getGroup(missing)).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining(`"${missing}"`) });
      } finally {
        if (!closed) await consumer.close(true);
        await c.close();
      }
    });
  });
}
