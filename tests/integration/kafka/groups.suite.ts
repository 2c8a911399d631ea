/**
 * Consumer groups: after a real group commits, lag is end − committed per
 * partition; kcat's group (librdkafka) shows up the same way; time lag,
 * members and assignments; history samples; resetting offsets of an
 * inactive group with a preview first; deleting a group.
 */
import { Consumer } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import type { KafkaBrokerHandle } from '../../kafka/broker.js';
import { connect, createTopic, eventually, kcat, kcatAvailable, topicName } from './helpers.js';

export function groupsSuite(kafka: KafkaBrokerHandle): void {
  describe('consumer groups', () => {
    it('reports lag = end − committed per partition after a real group commits, with members while it runs', { timeout: 120_000 }, async (ctx) => {
      const broker = kafka.require(ctx);
      const name = topicName('lag');
      const group = topicName('group');
      await createTopic(broker, name, 3);
      const c = connect(broker);
      const consumer = new Consumer({ clientId: 'lag-test', groupId: group, bootstrapBrokers: broker.brokers, sessionTimeout: 10_000, heartbeatInterval: 500 });
      try {
        const sizes = [40, 25, 10];
        for (let p = 0; p < 3; p++) await c.produce({ topic: name, value: `p${p}-{{i}}`, valueEncoding: 'utf8', headers: {}, count: sizes[p]!, partition: p });
        // Commit after 30, 5 and 10 (everything) records of partitions 0, 1 and 2.
        const commitUpTo = [30, 5, 10];
        const stream = await consumer.consume({ topics: [name], mode: 'earliest', autocommit: false, maxWaitTime: 200 });
        const committed = [0, 0, 0];
        await new Promise<void>((resolve, reject) => {
          stream.on('data', (m) => {
            const p = m.partition;
            if (Number(m.offset) < commitUpTo[p]!) {
              Promise.resolve(m.commit())
                .then(() => {
                  committed[p] = Math.max(committed[p]!, Number(m.offset) + 1);
                  if (committed.every((x, i) => x === commitUpTo[i])) resolve();
                })
                .catch(reject);
            }
          });
          stream.on('error', reject);
        });

        const active = await eventually(async () => (await c.listGroups()).find((g) => g.groupId === group && g.state === 'Stable'));
        expect(active.members).toHaveLength(1);
        expect(active.members[0]!.assignments.map((a) => a.partition).sort()).toEqual([0, 1, 2]);
        expect(active.members[0]!.clientId).toBe('lag-test');

        const preview = await c.previewGroupOffsets({ groupId: group, to: 'earliest' });
        expect(preview.canApply).toBe(false);
        await expect(c.resetGroupOffsets({ groupId: group, to: 'earliest' })).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });

        await stream.close();
        await consumer.close(true);
        const g = await eventually(async () => (await c.listGroups()).find((x) => x.groupId === group && x.state === 'Empty'));
        expect(g.partitions.map((p) => ({ partition: p.partition, committed: p.committed, end: p.end, lag: p.lag }))).toEqual([
          { partition: 0, committed: 30, end: 40, lag: 10 },
          { partition: 1, committed: 5, end: 25, lag: 20 },
          { partition: 2, committed: 10, end: 10, lag: 0 },
        ]);
        for (const p of g.partitions) expect(p.lag).toBe(p.end - p.committed!);
        expect(g.totalLag).toBe(30);
        expect(g.partitions[0]!.timeLagMs).toBeGreaterThan(0);
        expect(g.partitions[0]!.timeLagMs).toBeLessThan(120_000);
        expect(g.partitions[2]!.timeLagMs).toBe(0);

        const stats = await c.stats();
        expect(stats.groups.find((x) => x.groupId === group)).toEqual({ groupId: group, state: 'Empty', totalLag: 30 });
      } finally {
        await (consumer.close(true) as unknown as Promise<void>).catch(() => {});
        await c.close();
      }
    });

    it("sees kcat's consumer group (an independent client) the same way", { timeout: 60_000 }, async (ctx) => {
      const broker = kafka.require(ctx);
      if (!kcatAvailable) return ctx.skip('kcat is not installed (Debian package kcat)');
      const name = topicName('kcat-group');
      const group = topicName('kcat-g');
      await createTopic(broker, name, 1);
      const c = connect(broker);
      try {
        await c.produce({ topic: name, value: 'v{{i}}', valueEncoding: 'utf8', headers: {}, count: 50, partition: 0 });
        await kcat(['-b', broker.brokers[0]!, '-G', group, '-c', '20', '-q', '-X', 'auto.offset.reset=earliest', '-X', 'enable.auto.commit=false', '-X', 'enable.auto.offset.store=true', name], undefined, 60_000).catch(
          () => null,
        );
        // kcat stores offsets as it consumes and commits them when it closes; fall back to its auto commit.
        const g = await eventually(async () => (await c.listGroups()).find((x) => x.groupId === group && x.partitions[0]?.committed !== null), 30_000);
        const p = g.partitions[0]!;
        expect(p.end).toBe(50);
        expect(p.lag).toBe(p.end - p.committed!);
        expect(p.committed).toBeGreaterThan(0);
      } finally {
        await c.close();
      }
    });

    it('previews and applies offset resets of an inactive group, and deletes it', { timeout: 60_000 }, async (ctx) => {
      const broker = kafka.require(ctx);
      const name = topicName('reset');
      const group = topicName('reset-g');
      await createTopic(broker, name, 2);
      const c = connect(broker);
      try {
        await c.produce({ topic: name, value: 'a{{i}}', valueEncoding: 'utf8', headers: {}, count: 20, partition: 0 });
        const middle = Date.now();
        await new Promise((r) => setTimeout(r, 20));
        await c.produce({ topic: name, value: 'b{{i}}', valueEncoding: 'utf8', headers: {}, count: 10, partition: 0 });
        await c.produce({ topic: name, value: 'c{{i}}', valueEncoding: 'utf8', headers: {}, count: 8, partition: 1 });

        await expect(c.previewGroupOffsets({ groupId: group, to: 'latest' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
        const first = await c.resetGroupOffsets({ groupId: group, topic: name, to: 'latest' });
        expect(first.changes.map((x) => [x.partition, x.current, x.target])).toEqual([
          [0, null, 30],
          [1, null, 8],
        ]);

        const preview = await c.previewGroupOffsets({ groupId: group, to: 'timestamp', timestamp: middle + 1 });
        expect(preview).toMatchObject({ canApply: true, applied: false, state: 'Empty' });
        expect(preview.changes.map((x) => [x.partition, x.current, x.target, x.lagBefore, x.lagAfter])).toEqual([
          [0, 30, 20, 0, 10],
          // Partition 1 was written after that time: it starts over.
          [1, 8, 0, 0, 8],
        ]);
        // The preview changed nothing.
        let g = (await c.listGroups()).find((x) => x.groupId === group)!;
        expect(g.totalLag).toBe(0);

        const applied = await c.resetGroupOffsets({ groupId: group, to: 'timestamp', timestamp: middle + 1 });
        expect(applied.applied).toBe(true);
        g = (await c.listGroups()).find((x) => x.groupId === group)!;
        expect(g.partitions.map((p) => [p.partition, p.committed, p.lag])).toEqual([
          [0, 20, 10],
          [1, 0, 8],
        ]);

        await c.resetGroupOffsets({ groupId: group, topic: name, partitions: [1], to: 'offset', offset: 3 });
        await c.resetGroupOffsets({ groupId: group, topic: name, partitions: [0], to: 'earliest' });
        g = (await c.listGroups()).find((x) => x.groupId === group)!;
        expect(g.partitions.map((p) => [p.partition, p.committed, p.lag])).toEqual([
          [0, 0, 30],
          [1, 3, 5],
        ]);

        await c.deleteGroup(group);
        await eventually(async () => !(await c.listGroups()).some((x) => x.groupId === group));
        await expect(c.deleteGroup(group)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      } finally {
        await c.close();
      }
    });

    it('keeps lag history for the charts', { timeout: 60_000 }, async (ctx) => {
      const broker = kafka.require(ctx);
      const name = topicName('history');
      const group = topicName('history-g');
      await createTopic(broker, name, 1);
      const c = connect(broker, {}, { historyIntervalMs: 250 });
      try {
        await c.produce({ topic: name, value: 'h{{i}}', valueEncoding: 'utf8', headers: {}, count: 12, partition: 0 });
        await c.resetGroupOffsets({ groupId: group, topic: name, to: 'offset', offset: 2 });
        const series = await eventually(async () => {
          const s = await c.history({ kind: 'group', name: group, range: 'hour' });
          return s.samples.length >= 2 ? s : null;
        }, 20_000);
        expect(series.resource).toEqual({ kind: 'group', name: group });
        expect(series.samples.at(-1)).toMatchObject({ lag: 10 });
        expect(series.samples.at(-1)!.timeLagMs).toBeGreaterThan(0);
        const day = await c.history({ kind: 'group', name: group, range: 'day' });
        expect(day.samples.at(-1)).toMatchObject({ lag: 10 });
      } finally {
        await c.close();
      }
    });
  });
}
