/**
 * Log compaction over the wire: @platformatic/kafka creates a topic with
 * cleanup.policy=compact, produces several values per key and tombstones,
 * and after the broker's background compaction reads from the beginning the
 * latest record per key at its original offset (and, past
 * delete.retention.ms, no tombstone); kcat reads the same. A record without a
 * key is refused with Kafka's INVALID_RECORD. A kafkajs consumer reading in
 * small fetches (so that batches are cached and read ahead) reads the
 * compacted log afterwards, not what was cached before compaction.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWireBroker, type WireBroker } from './helpers.js';

const KCAT = '/usr/bin/kcat';
const TOPIC = 2;
const SET = 0;

let broker: WireBroker;
let admin: Admin;
beforeAll(async () => {
  broker = await startWireBroker();
  admin = new Admin({ clientId: 'compaction-admin', bootstrapBrokers: [broker.bootstrap], retries: 0 });
});
afterAll(async () => {
  await admin?.close();
  await broker?.stop();
});

/** Kafka errors anywhere in a client error (its nested errors and causes). */
function kafkaErrors(error: unknown): Array<{ apiId: string; apiCode: unknown }> {
  const out: Array<{ apiId: string; apiCode: unknown }> = [];
  const walk = (e: unknown) => {
    if (!e || typeof e !== 'object') return;
    const x = e as { apiId?: string; apiCode?: unknown; errors?: unknown[]; cause?: unknown };
    if (typeof x.apiId === 'string') out.push({ apiId: x.apiId, apiCode: x.apiCode });
    for (const inner of x.errors ?? []) walk(inner);
    walk(x.cause);
  };
  walk(error);
  return out;
}

/** Every record of partition 0, from the beginning, as "offset key=value" (∅ for a tombstone), read by a @platformatic/kafka consumer. */
async function consumeAll(topic: string, group: string): Promise<string[]> {
  const end = broker.host.live().listTopics().find((t) => t.name === topic)!.partitions[0]!.endOffset;
  const consumer = new Consumer({ clientId: group, groupId: group, bootstrapBrokers: [broker.bootstrap], deserializers: stringDeserializers, sessionTimeout: 10_000, heartbeatInterval: 500 });
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 200 });
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (m) => {
        got.push(`${m.offset} ${m.key}=${m.value ?? '∅'}`);
        if (Number(m.offset) === end - 1) resolve();
      });
      stream.on('error', reject);
    });
    await stream.close();
    return got;
  } finally {
    await consumer.close();
  }
}

/** The records still stored, as the broker holds them. */
function stored(topic: string): string[] {
  return broker.host
    .live()
    .fetch(topic, 0, { offset: 0, limit: 1000 })
    .records.map((r) => `${r.offset} ${r.key?.toString()}=${r.value?.toString() ?? '∅'}`);
}

describe('log compaction against the Kafka listener', () => {
  it('keeps the latest record per key at its offset, then drops tombstones after delete.retention.ms', async () => {
    await admin.createTopics({
      topics: ['compacted'],
      partitions: 1,
      replicas: 1,
      configs: [
        { name: 'cleanup.policy', value: 'compact' },
        { name: 'min.compaction.lag.ms', value: '0' },
        // Any dirt is worth a pass (Kafka's default waits for half the log).
        { name: 'min.cleanable.dirty.ratio', value: '0.01' },
      ],
    });
    const producer = new Producer({ clientId: 'compaction-producer', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers, retries: 0 });
    try {
      const pairs: Array<[string, string | null]> = [
        ['user-1', 'alice'],
        ['user-2', 'bob'],
        ['user-1', 'alice v2'],
        ['user-3', 'carol'],
        ['user-2', null],
        ['user-1', 'alice v3'],
        ['user-4', 'dave'],
        ['user-3', 'carol v2'],
      ];
      for (const [key, value] of pairs) await producer.send({ messages: [{ topic: 'compacted', key, value: value as string, partition: 0 }] });

      // A record without a key: Kafka's INVALID_RECORD (87), nothing stored.
      const refused = await producer.send({ messages: [{ topic: 'compacted', value: 'no key', partition: 0 }] }).then(
        () => ['no error'],
        (e: unknown) => kafkaErrors(e),
      );
      expect(refused).toEqual([expect.objectContaining({ apiId: 'INVALID_RECORD', apiCode: 87 })]);
      expect(broker.host.live().listTopics().find((t) => t.name === 'compacted')!.partitions[0]!.endOffset).toBe(8);
    } finally {
      await producer.close();
    }

    const latest = ['4 user-2=∅', '5 user-1=alice v3', '6 user-4=dave', '7 user-3=carol v2'];
    await expect.poll(() => stored('compacted'), { timeout: 30_000 }).toEqual(latest);
    expect(await consumeAll('compacted', 'compaction-reader-1')).toEqual(latest);
    const [described] = await admin.describeConfigs({ resources: [{ resourceType: TOPIC, resourceName: 'compacted' }] });
    const config = Object.fromEntries(described!.configs.map((c) => [c.name, c.value]));
    expect(config).toMatchObject({ 'cleanup.policy': 'compact', 'delete.retention.ms': '86400000', 'min.compaction.lag.ms': '0', 'min.cleanable.dirty.ratio': '0.01' });
    // ListOffsets earliest is still the log start.
    expect(broker.host.live().listTopics().find((t) => t.name === 'compacted')!.partitions[0]).toMatchObject({ startOffset: 0, endOffset: 8 });

    // Tombstones go once delete.retention.ms has passed.
    await admin.incrementalAlterConfigs({ resources: [{ resourceType: TOPIC, resourceName: 'compacted', configs: [{ name: 'delete.retention.ms', configOperation: SET, value: '100' }] }] });
    const clean = latest.slice(1);
    await expect.poll(() => stored('compacted'), { timeout: 30_000 }).toEqual(clean);
    expect(await consumeAll('compacted', 'compaction-reader-2')).toEqual(clean);

    if (existsSync(KCAT)) {
      const out = await new Promise<string>((resolve, reject) =>
        execFile(KCAT, ['-b', broker.bootstrap, '-C', '-t', 'compacted', '-o', 'beginning', '-e', '-q', '-f', '%o %k=%s\n'], { timeout: 30_000 }, (error, stdout) => (error ? reject(error) : resolve(stdout))),
      );
      expect(out.trim().split('\n')).toEqual(clean);
    }
  });

  it('compact,delete: keyless records refused, retention still applies beside compaction', async () => {
    await admin.createTopics({
      topics: ['compacted-deleted'],
      partitions: 1,
      replicas: 1,
      configs: [
        { name: 'cleanup.policy', value: 'compact,delete' },
        { name: 'min.cleanable.dirty.ratio', value: '0' },
      ],
    });
    const producer = new Producer({ clientId: 'compaction-producer-2', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers, retries: 0 });
    try {
      await producer.send({ messages: Array.from({ length: 6 }, (_, i) => ({ topic: 'compacted-deleted', key: `k${i % 2}`, value: `v${i}`, partition: 0 })) });
      await expect(producer.send({ messages: [{ topic: 'compacted-deleted', value: 'no key', partition: 0 }] })).rejects.toThrow();
    } finally {
      await producer.close();
    }
    await expect.poll(() => stored('compacted-deleted'), { timeout: 30_000 }).toEqual(['4 k0=v4', '5 k1=v5']);
    await admin.incrementalAlterConfigs({ resources: [{ resourceType: TOPIC, resourceName: 'compacted-deleted', configs: [{ name: 'retention.ms', configOperation: SET, value: '1' }] }] });
    await expect.poll(() => broker.host.live().listTopics().find((t) => t.name === 'compacted-deleted')!.partitions[0]!.startOffset, { timeout: 30_000 }).toBe(6);
  });

  it('fetches after compaction never serve batches cached or read ahead before it', async () => {
    const engine = broker.host.live();
    engine.createTopic('compacted-cached', { partitions: 1 });
    const big = (tag: string) => tag + 'x'.repeat(10_000);
    await engine.produce('compacted-cached', Array.from({ length: 60 }, (_, i) => ({ key: `k${i % 6}`, value: big(`v${i}`), partition: 0 })));
    const kafka = new Kafka({ clientId: 'compaction-kafkajs', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    const read = async (group: string): Promise<string[]> => {
      const consumer = kafka.consumer({ groupId: group, maxBytesPerPartition: 100_000, maxWaitTimeInMs: 100 });
      const got: string[] = [];
      const end = engine.listTopics().find((t) => t.name === 'compacted-cached')!.partitions[0]!.endOffset;
      try {
        await consumer.connect();
        await consumer.subscribe({ topic: 'compacted-cached', fromBeginning: true });
        await new Promise<void>((resolve, reject) => {
          consumer
            .run({
              eachMessage: async ({ message }) => {
                got.push(`${message.offset} ${message.key?.toString()}=${message.value?.toString().slice(0, 4)}`);
                if (Number(message.offset) === end - 1) resolve();
              },
            })
            .catch(reject);
        });
      } finally {
        await consumer.disconnect();
      }
      return got;
    };
    // In fetches of about nine records: each one full, cached, and the next read ahead.
    expect(await read('cached-before')).toHaveLength(60);
    engine.setTopicConfig('compacted-cached', { cleanupPolicy: 'compact', minCleanableDirtyRatio: 0 });
    await expect.poll(() => stored('compacted-cached').length, { timeout: 30_000 }).toBe(6);
    expect(await read('cached-after')).toEqual(['54 k0=v54x', '55 k1=v55x', '56 k2=v56x', '57 k3=v57x', '58 k4=v58x', '59 k5=v59x']);
  });
});
