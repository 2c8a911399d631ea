/**
 * Kafka transactions over the wire with kafkajs, unchanged: a committed
 * transaction is seen by read_committed consumers, an aborted one only by
 * read_uncommitted ones; offsets sent in a transaction (consume-transform-
 * produce) reach the group only on commit; a second producer with the same
 * transactional.id fences the first and aborts what it left open; a
 * transaction open longer than its timeout is aborted by the broker; the
 * coordinator's state and the aborted index outlive a restart, and a
 * transaction open at shutdown is aborted at the next start.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerHost } from '../../../src-main/broker/host.js';
import { silentLogger } from '../../../src-main/ground/logger.js';
import { createKafkaListener } from '../../../src-main/protocols/kafka/server.js';
import { startWireBroker, type WireBroker } from './helpers.js';

let broker: WireBroker;
let kafka: Kafka;

function client(bootstrap: string): Kafka {
  return new Kafka({ clientId: 'txn-test', brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 3, initialRetryTime: 100 } });
}

beforeAll(async () => {
  broker = await startWireBroker();
  kafka = client(broker.bootstrap);
});
afterAll(() => broker?.stop());

/** Reads a topic from the beginning in a group of its own until `done` holds for the values read. */
async function readUntil(k: Kafka, topic: string, readUncommitted: boolean, done: (values: string[]) => boolean): Promise<string[]> {
  const consumer = k.consumer({ groupId: `reader-${topic}-${readUncommitted ? 'u' : 'c'}-${Math.random().toString(36).slice(2)}`, readUncommitted, maxWaitTimeInMs: 100 });
  const values: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        values.push(message.value?.toString() ?? '');
      },
    });
    await expect.poll(() => done(values), { timeout: 30_000, interval: 50 }).toBe(true);
  } finally {
    await consumer.disconnect();
  }
  return values;
}

async function createTopic(k: Kafka, topic: string, numPartitions = 1): Promise<void> {
  const admin = k.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions }] });
  } finally {
    await admin.disconnect();
  }
}

const values = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ value: `${prefix}-${i}` }));

describe('Kafka transactions with kafkajs', { timeout: 60_000 }, () => {
  it('shows a committed transaction to read_committed consumers and an aborted one only to read_uncommitted ones', async () => {
    await createTopic(kafka, 'txn-visibility', 2);
    const producer = kafka.producer({ transactionalId: 'tx-visibility', maxInFlightRequests: 1, idempotent: true });
    await producer.connect();
    try {
      const aborted = await producer.transaction();
      await aborted.send({ topic: 'txn-visibility', messages: values('aborted', 5) });
      await aborted.abort();
      const committed = await producer.transaction();
      await committed.send({ topic: 'txn-visibility', messages: values('committed', 5) });
      await committed.commit();
    } finally {
      await producer.disconnect();
    }
    const readCommitted = await readUntil(kafka, 'txn-visibility', false, (v) => v.filter((x) => x.startsWith('committed-')).length === 5);
    expect(readCommitted.filter((x) => x.startsWith('aborted-'))).toEqual([]);
    const readUncommitted = await readUntil(kafka, 'txn-visibility', true, (v) => v.length >= 10);
    expect(readUncommitted.sort()).toEqual([...values('aborted', 5), ...values('committed', 5)].map((m) => m.value).sort());
    // The markers took offsets: 5 records and a marker per transaction in each partition written to.
    const engine = broker.host.live();
    const topic = engine.listTopics().find((t) => t.name === 'txn-visibility')!;
    expect(topic.partitions.reduce((s, p) => s + p.endOffset, 0)).toBeGreaterThanOrEqual(12);
    // Browsing shows the records (aborted ones included), never the markers.
    const browsed = engine.browseTopic('txn-visibility', { limit: 100 }).records.map((r) => r.value!.toString());
    expect(browsed.sort()).toEqual(readUncommitted.sort());
  });

  it('holds the last stable offset at an open transaction: read_committed reads stop there until it ends', async () => {
    await createTopic(kafka, 'txn-open');
    const plain = kafka.producer();
    await plain.connect();
    const producer = kafka.producer({ transactionalId: 'tx-open', maxInFlightRequests: 1, idempotent: true });
    await producer.connect();
    try {
      await plain.send({ topic: 'txn-open', messages: values('before', 2) });
      const txn = await producer.transaction();
      await txn.send({ topic: 'txn-open', messages: values('in-txn', 3) });
      await plain.send({ topic: 'txn-open', messages: values('after', 2) });
      const admin = kafka.admin();
      await admin.connect();
      try {
        // kafkajs's admin asks with read_committed: the latest offset is the last stable one, the high watermark is further.
        const stableEnd = await admin.fetchTopicOffsets('txn-open');
        expect(stableEnd[0]!.high).toBe('2');
        expect(broker.host.live().listTopics().find((t) => t.name === 'txn-open')!.partitions[0]!.endOffset).toBe(7);
      } finally {
        await admin.disconnect();
      }
      // read_committed sees only what precedes the open transaction.
      const early = await readUntil(kafka, 'txn-open', false, (v) => v.length >= 2);
      expect(early).toEqual(['before-0', 'before-1']);
      await txn.commit();
      const all = await readUntil(kafka, 'txn-open', false, (v) => v.length >= 7);
      expect(all).toEqual(['before-0', 'before-1', 'in-txn-0', 'in-txn-1', 'in-txn-2', 'after-0', 'after-1']);
    } finally {
      await producer.disconnect();
      await plain.disconnect();
    }
  });

  it("commits a group's offsets sent in a transaction only when it commits", async () => {
    await createTopic(kafka, 'txn-input');
    await createTopic(kafka, 'txn-output');
    const admin = kafka.admin();
    await admin.connect();
    const producer = kafka.producer({ transactionalId: 'tx-ctp', maxInFlightRequests: 1, idempotent: true });
    await producer.connect();
    try {
      const offsetOf = async () => (await admin.fetchOffsets({ groupId: 'ctp-group', topics: ['txn-input'] }))[0]!.partitions[0]!.offset;
      const first = await producer.transaction();
      await first.send({ topic: 'txn-output', messages: values('out-a', 2) });
      await first.sendOffsets({ consumerGroupId: 'ctp-group', topics: [{ topic: 'txn-input', partitions: [{ partition: 0, offset: '3' }] }] });
      await first.abort();
      expect(await offsetOf()).toBe('-1');
      const second = await producer.transaction();
      await second.send({ topic: 'txn-output', messages: values('out-b', 2) });
      await second.sendOffsets({ consumerGroupId: 'ctp-group', topics: [{ topic: 'txn-input', partitions: [{ partition: 0, offset: '5' }] }] });
      await second.commit();
      expect(await offsetOf()).toBe('5');
      const read = await readUntil(kafka, 'txn-output', false, (v) => v.length >= 2);
      expect(read).toEqual(['out-b-0', 'out-b-1']);
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  });

  it('fences a producer when another one starts with the same transactional id, aborting what it left open', async () => {
    await createTopic(kafka, 'txn-fenced');
    const first = kafka.producer({ transactionalId: 'tx-fenced', maxInFlightRequests: 1, idempotent: true });
    await first.connect();
    const second = kafka.producer({ transactionalId: 'tx-fenced', maxInFlightRequests: 1, idempotent: true });
    try {
      const open = await first.transaction();
      await open.send({ topic: 'txn-fenced', messages: values('zombie', 3) });
      const before = broker.host.live().transactions.describe('tx-fenced')!;
      expect(before.state).toBe('Ongoing');
      await second.connect();
      // kafkajs asks for its producer id (InitProducerId) with its first transaction.
      const txn = await second.transaction();
      const after = broker.host.live().transactions.describe('tx-fenced')!;
      expect(after.producerId).toBe(before.producerId);
      expect(after.epoch).toBeGreaterThan(before.epoch);
      expect(after.state).toBe('Empty');
      // The zombie's commit is refused: its epoch is no longer the current one.
      await expect(open.commit()).rejects.toThrow();
      await txn.send({ topic: 'txn-fenced', messages: values('live', 2) });
      await txn.commit();
      const read = await readUntil(kafka, 'txn-fenced', false, (v) => v.length >= 2);
      expect(read).toEqual(['live-0', 'live-1']);
      const uncommitted = await readUntil(kafka, 'txn-fenced', true, (v) => v.length >= 5);
      expect(uncommitted.filter((v) => v.startsWith('zombie-'))).toHaveLength(3);
    } finally {
      await first.disconnect().catch(() => undefined);
      await second.disconnect();
    }
  });

  it('aborts a transaction left open longer than its timeout', async () => {
    await createTopic(kafka, 'txn-timeout');
    const producer = kafka.producer({ transactionalId: 'tx-timeout', maxInFlightRequests: 1, idempotent: true, transactionTimeout: 1000 });
    await producer.connect();
    try {
      const txn = await producer.transaction();
      await txn.send({ topic: 'txn-timeout', messages: values('late', 2) });
      await expect.poll(() => broker.host.live().transactions.describe('tx-timeout')!.state, { timeout: 30_000, interval: 100 }).toBe('CompleteAbort');
      await expect(txn.commit()).rejects.toThrow();
    } finally {
      await producer.disconnect().catch(() => undefined);
    }
    const plain = kafka.producer();
    await plain.connect();
    await plain.send({ topic: 'txn-timeout', messages: values('plain', 1) });
    await plain.disconnect();
    const read = await readUntil(kafka, 'txn-timeout', false, (v) => v.includes('plain-0'));
    expect(read).toEqual(['plain-0']);
  });

  it('on a compacted topic removes aborted records and keeps the markers through compaction', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: 'txn-compacted', numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] });
    } finally {
      await admin.disconnect();
    }
    const producer = kafka.producer({ transactionalId: 'tx-compacted', maxInFlightRequests: 1, idempotent: true });
    await producer.connect();
    try {
      const a = await producer.transaction();
      await a.send({ topic: 'txn-compacted', messages: [{ key: 'k1', value: 'a1' }, { key: 'k2', value: 'a2' }] });
      await a.abort();
      const b = await producer.transaction();
      await b.send({ topic: 'txn-compacted', messages: [{ key: 'k1', value: 'b1' }, { key: 'k2', value: 'b2' }] });
      await b.commit();
      const c = await producer.transaction();
      await c.send({ topic: 'txn-compacted', messages: [{ key: 'k1', value: 'c1' }] });
      await c.commit();
    } finally {
      await producer.disconnect();
    }
    const engine = broker.host.live();
    // The aborted records are gone from the rows; their offsets (0, 1) and the markers' (2, 5, 7) are gaps for the browse
    // (b1@3 too once the background cleaner has passed).
    const browsed = engine.browseTopic('txn-compacted', { limit: 100 }).records.map((r) => `${r.value}@${r.offset}`);
    expect(browsed.filter((r) => r !== 'b1@3')).toEqual(['b2@4', 'c1@6']);
    const committed = await readUntil(kafka, 'txn-compacted', false, (v) => v.includes('c1'));
    expect(committed.filter((v) => v.startsWith('a'))).toEqual([]);
    // A compaction pass keeps the latest record per key and every marker: consumers still reach the end.
    engine.setTopicConfig('txn-compacted', { minCleanableDirtyRatio: 0 });
    await expect.poll(() => engine.browseTopic('txn-compacted', { limit: 100 }).records.map((r) => `${r.value}@${r.offset}`), { timeout: 30_000 }).toEqual(['b2@4', 'c1@6']);
    const after = await readUntil(kafka, 'txn-compacted', true, (v) => v.includes('c1'));
    expect(after).toEqual(['b2', 'c1']);
    expect(engine.storedBatchPlan('txn-compacted', 0, 0).map((b) => b.base)).toEqual([2, 5, 7]);
  });

  it('keeps markers and the aborted index right when DeleteRecords moves the log start', async () => {
    await createTopic(kafka, 'txn-trimmed');
    const producer = kafka.producer({ transactionalId: 'tx-trimmed', maxInFlightRequests: 1, idempotent: true });
    await producer.connect();
    try {
      for (const [prefix, commit] of [['x', false], ['y', true], ['z', false], ['w', true]] as const) {
        const txn = await producer.transaction();
        await txn.send({ topic: 'txn-trimmed', messages: values(prefix, 2) });
        await (commit ? txn.commit() : txn.abort());
      }
    } finally {
      await producer.disconnect();
    }
    const engine = broker.host.live();
    expect(engine.listTopics().find((t) => t.name === 'txn-trimmed')!.partitions[0]!.endOffset).toBe(12);
    // Before the second transaction's commit marker (offset 5): the first one's records and marker go.
    await engine.deleteRecordsBefore('txn-trimmed', 0, 5);
    const committed = await readUntil(kafka, 'txn-trimmed', false, (v) => v.includes('w-1'));
    expect(committed).toEqual(['w-0', 'w-1']);
    const uncommitted = await readUntil(kafka, 'txn-trimmed', true, (v) => v.includes('w-1'));
    expect(uncommitted).toEqual(['z-0', 'z-1', 'w-0', 'w-1']);
    // The aborted index keeps only what is still in the log, after the broker's next retention pass.
    await expect.poll(() => engine.transactions.committedView('txn-trimmed', 0, 12).aborted(0, 12).map((a) => a.firstOffset), { timeout: 10_000 }).toEqual([6]);
  });

  it('refuses a transaction timeout above the broker maximum', async () => {
    const producer = kafka.producer({ transactionalId: 'tx-too-long', maxInFlightRequests: 1, idempotent: true, transactionTimeout: 900_001 });
    await producer.connect();
    await expect(producer.transaction()).rejects.toThrow(/timeout/i);
    await producer.disconnect().catch(() => undefined);
  });
});

describe('Kafka transactions across a restart', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'bd-kafka-txn-restart-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function open() {
    const host = BrokerHost.open({ dataDir: dir, logger: silentLogger });
    const listener = createKafkaListener(host, { port: 0 }, silentLogger);
    const port = await listener.listen();
    return {
      host,
      kafka: client(`127.0.0.1:${port}`),
      async close() {
        await listener.close(1000);
        host.close();
      },
    };
  }

  it('keeps committed records, the aborted index and the producer id, and aborts the transaction left open', async () => {
    const first = await open();
    await createTopic(first.kafka, 'txn-durable');
    const producer = first.kafka.producer({ transactionalId: 'tx-durable', maxInFlightRequests: 1, idempotent: true });
    await producer.connect();
    const a = await producer.transaction();
    await a.send({ topic: 'txn-durable', messages: values('aborted', 2) });
    await a.abort();
    const c = await producer.transaction();
    await c.send({ topic: 'txn-durable', messages: values('committed', 2) });
    await c.commit();
    const left = await producer.transaction();
    await left.send({ topic: 'txn-durable', messages: values('left-open', 2) });
    const before = first.host.live().transactions.describe('tx-durable')!;
    expect(before.state).toBe('Ongoing');
    // The producer goes without a word, as a process killed would.
    await first.close();
    await producer.disconnect().catch(() => undefined);

    const second = await open();
    try {
      const after = second.host.live().transactions.describe('tx-durable')!;
      expect(after.state).toBe('CompleteAbort');
      expect(after.producerId).toBe(before.producerId);
      expect(after.epoch).toBeGreaterThan(before.epoch);
      const plain = second.kafka.producer();
      await plain.connect();
      await plain.send({ topic: 'txn-durable', messages: values('after-restart', 1) });
      await plain.disconnect();
      const read = await readUntil(second.kafka, 'txn-durable', false, (v) => v.includes('after-restart-0'));
      expect(read).toEqual(['committed-0', 'committed-1', 'after-restart-0']);
      // A new producer with the same id gets the same producer id and a later epoch.
      const again = second.kafka.producer({ transactionalId: 'tx-durable', maxInFlightRequests: 1, idempotent: true });
      await again.connect();
      const txn = await again.transaction();
      await txn.send({ topic: 'txn-durable', messages: values('next', 1) });
      await txn.commit();
      await again.disconnect();
      expect(second.host.live().transactions.describe('tx-durable')!.producerId).toBe(before.producerId);
      const all = await readUntil(second.kafka, 'txn-durable', false, (v) => v.includes('next-0'));
      expect(all).toEqual(['committed-0', 'committed-1', 'after-restart-0', 'next-0']);
    } finally {
      await second.close();
    }
  });
});
