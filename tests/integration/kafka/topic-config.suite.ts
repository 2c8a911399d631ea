/**
 * Creating a topic with its partitions, replication factor and configs, and
 * changing its configs afterwards (set, and reset to the broker's default),
 * on a real Kafka; a config the broker refuses comes back as an error.
 */
import { describe, expect, it } from 'vitest';
import type { KafkaBrokerHandle } from '../../kafka/broker.js';
import { connect, topicName } from './helpers.js';

export function topicConfigSuite(kafka: KafkaBrokerHandle): void {
  describe('topic creation and configuration', () => {
    it('creates a topic with configs and changes them', async (ctx) => {
      const broker = kafka.require(ctx);
      const c = connect(broker);
      const name = topicName('configured');
      try {
        const t = await c.createTopic({ topic: name, partitions: 3, replicationFactor: 1, configs: { 'cleanup.policy': 'compact', 'max.message.bytes': '2000000' } });
        expect(t.partitions).toHaveLength(3);
        const value = (entries: Array<{ name: string; value: string | null; source: string }>, key: string) => entries.find((e) => e.name === key);
        const before = await c.describeTopicConfig(name);
        expect(value(before, 'cleanup.policy')).toMatchObject({ value: 'compact', source: 'topic' });
        expect(value(before, 'max.message.bytes')).toMatchObject({ value: '2000000' });

        const after = await c.alterTopicConfig({ topic: name, configs: { 'retention.ms': '3600000', 'max.message.bytes': null }, validateOnly: false });
        expect(value(after, 'retention.ms')).toMatchObject({ value: '3600000', source: 'topic' });
        // Deleting the topic's own value brings the broker's default back.
        expect(value(after, 'max.message.bytes')?.source).not.toBe('topic');
        expect(value(after, 'cleanup.policy')).toMatchObject({ value: 'compact' });

        await expect(c.alterTopicConfig({ topic: name, configs: { 'cleanup.policy': 'shred' }, validateOnly: false })).rejects.toThrow(/cleanup\.policy|shred|invalid/i);
        await expect(c.alterTopicConfig({ topic: `${name}-missing`, configs: { 'retention.ms': '1' }, validateOnly: false })).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(c.createTopic({ topic: topicName('too-many-copies'), partitions: 1, replicationFactor: 3 })).rejects.toThrow(/replication|broker/i);
      } finally {
        await c.deleteTopic({ topic: name }).catch(() => {});
        await c.close();
      }
    });
  });
}
