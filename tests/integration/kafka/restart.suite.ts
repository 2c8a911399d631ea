/**
 * The broker is stopped in the middle of a re-drive and started again: the
 * job waits, finds out which records of the interrupted batch landed, and
 * finishes with every dead letter in the original topic exactly once.
 */
import { describe, expect, it } from 'vitest';
import type { KafkaConnector } from '../../../src-main/connectors/kafka/index.js';
import type { KafkaBrokerHandle } from '../../kafka/broker.js';
import { browseAll } from './browse.suite.js';
import { writeSpringDeadLetters } from './deadletters.suite.js';
import { connect, createTopic, eventually, topicName } from './helpers.js';

type BrowseArgs = Parameters<KafkaConnector['browseTopic']>[0];

export function restartSuite(kafka: KafkaBrokerHandle): void {
  describe('broker restart', () => {
    it('loses nothing and duplicates nothing when the broker stops mid-re-drive', { timeout: 240_000 }, async (ctx) => {
      const broker = kafka.require(ctx);
      if (!broker.owned) return ctx.skip('KAFKA_BROKERS names an external cluster: the test cannot stop it');
      const base = topicName('invoices');
      const dlt = `${base}.DLT`;
      await Promise.all([createTopic(broker, base, 3), createTopic(broker, dlt, 3)]);
      const total = 6_000;
      await writeSpringDeadLetters(broker, dlt, base, total, 3);
      const c = connect(broker, {}, { redriveOutageTimeoutMs: 120_000, requestTimeoutMs: 5_000, connectTimeoutMs: 2_000 });
      try {
        // Held by its rate: 6,000 records at 150 a second take 40 s, and the broker is
        // stopped (seconds on a busy machine) as soon as the job has started.
        const { id } = await c.startRedrive({ source: dlt, all: true, ratePerSecond: 150 });
        await eventually(async () => ((await c.getRedrive(id))?.moved ?? 0) >= 300, 60_000, 50);
        await broker.halt();
        const movedWhileDown = (await c.getRedrive(id))!.moved;
        // The broker stopped while the job was still moving records.
        expect(movedWhileDown).toBeLessThan(total);
        await new Promise((r) => setTimeout(r, 3_000));
        expect((await c.getRedrive(id))!.state).toBe('running');
        await broker.resume();
        const job = await eventually(async () => {
          const j = await c.getRedrive(id);
          return j && j.state !== 'running' && j.state !== 'pending' ? j : null;
        }, 180_000, 200);
        expect(job).toMatchObject({ state: 'completed', moved: total, failed: 0 });

        const landed = await browseAll(c, { topic: base, limit: 10_000 } as BrowseArgs);
        const from = landed.records.map((r) => r.headers['x-redriven-from']!);
        expect(from).toHaveLength(total);
        expect(new Set(from).size).toBe(total);
        const keys = new Set(landed.records.map((r) => r.key));
        for (let i = 0; i < total; i++) expect(keys.has(`order-${i}`)).toBe(true);
        ctx.annotate(`${movedWhileDown} of ${total} re-driven when the broker stopped; all ${total} landed once`);

        // Running it again re-drives nothing: the ledger survived the restart.
        const again = await eventually(async () => {
          const { id: id2 } = await c.startRedrive({ source: dlt, all: true });
          return id2;
        });
        const second = await eventually(async () => {
          const j = await c.getRedrive(again);
          return j && j.state === 'completed' ? j : null;
        }, 60_000);
        expect(second).toMatchObject({ moved: 0, skipped: total });
      } finally {
        await c.close();
      }
    });
  });
}
