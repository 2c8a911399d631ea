/**
 * @platformatic/kafka's admin client, unchanged, against the Kafka listener:
 * IncrementalAlterConfigs (SET, DELETE, APPEND and SUBTRACT as Kafka answers
 * them, validateOnly, one answer per resource) with retention then applied in
 * the background and a topic's own max.message.bytes enforced on produce;
 * CreatePartitions; DeleteRecords; and OffsetDelete, which keeps the offsets
 * of topics a live group subscribes to.
 */
import { Admin, Producer, stringSerializers } from '@platformatic/kafka';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWireBroker, type WireBroker } from './helpers.js';

let broker: WireBroker;
let admin: Admin;

beforeAll(async () => {
  broker = await startWireBroker();
  admin = new Admin({ clientId: 'pk-admin-ops', bootstrapBrokers: [broker.bootstrap], retries: 0 });
});
afterAll(async () => {
  await admin?.close();
  await broker?.stop();
});

const SET = 0;
const DELETE = 1;
const APPEND = 2;
const SUBTRACT = 3;
const TOPIC = 2;
const BROKER = 4;

/** Kafka error names anywhere in a client error (its nested errors and causes). */
function kafkaErrors(error: unknown): string[] {
  const out: string[] = [];
  const walk = (e: unknown) => {
    if (!e || typeof e !== 'object') return;
    const x = e as { apiId?: string; errors?: unknown[]; cause?: unknown };
    if (typeof x.apiId === 'string') out.push(x.apiId);
    for (const inner of x.errors ?? []) walk(inner);
    walk(x.cause);
  };
  walk(error);
  return out;
}

async function failure(p: Promise<unknown>): Promise<string[]> {
  return p.then(
    () => ['no error'],
    (e) => kafkaErrors(e),
  );
}

const topicOf = (name: string) => broker.host.live().listTopics().find((t) => t.name === name)!;

async function configsOf(topic: string): Promise<Record<string, { value: string | null; isDefault: boolean }>> {
  const [res] = await admin.describeConfigs({ resources: [{ resourceType: TOPIC, resourceName: topic }] });
  // Kafka's config sources: 5 is DEFAULT_CONFIG, 1 DYNAMIC_TOPIC_CONFIG.
  return Object.fromEntries(res!.configs.map((c) => [c.name, { value: c.value ?? null, isDefault: c.configSource === 5 }]));
}

describe('@platformatic/kafka admin against the Kafka listener', () => {
  it('IncrementalAlterConfigs: SET and DELETE, validateOnly, Kafka refusals; DescribeConfigs follows', async () => {
    await admin.createTopics({ topics: ['pk-conf'], partitions: 1, replicas: 1 });
    const alter = (configs: Array<{ name: string; configOperation: number; value?: string | null }>, validateOnly = false, resourceName = 'pk-conf', resourceType = TOPIC) =>
      admin.incrementalAlterConfigs({ validateOnly, resources: [{ resourceType: resourceType as 2, resourceName, configs: configs as never }] });

    await alter([{ name: 'retention.ms', configOperation: SET, value: '3600000' }], true);
    expect((await configsOf('pk-conf'))['retention.ms']).toEqual({ value: '-1', isDefault: true });

    await alter([
      { name: 'retention.ms', configOperation: SET, value: '3600000' },
      { name: 'retention.bytes', configOperation: SET, value: '5000000' },
    ]);
    let configs = await configsOf('pk-conf');
    expect(configs['retention.ms']).toEqual({ value: '3600000', isDefault: false });
    expect(configs['retention.bytes']).toEqual({ value: '5000000', isDefault: false });
    // Incremental: one change leaves the others as they are.
    await alter([{ name: 'retention.bytes', configOperation: DELETE }]);
    configs = await configsOf('pk-conf');
    expect(configs['retention.ms']).toEqual({ value: '3600000', isDefault: false });
    expect(configs['retention.bytes']).toEqual({ value: '-1', isDefault: true });

    // Kafka's answers: list operations on a non-list config, values that do not parse or are below the bound, unknown policies and names.
    expect(await failure(alter([{ name: 'retention.ms', configOperation: APPEND, value: '5' }]))).toEqual(['INVALID_CONFIG']);
    expect(await failure(alter([{ name: 'retention.ms', configOperation: SUBTRACT, value: '5' }]))).toEqual(['INVALID_CONFIG']);
    expect(await failure(alter([{ name: 'retention.ms', configOperation: SET, value: 'a week' }]))).toEqual(['INVALID_CONFIG']);
    expect(await failure(alter([{ name: 'retention.ms', configOperation: SET, value: '-2' }]))).toEqual(['INVALID_CONFIG']);
    expect(await failure(alter([{ name: 'max.message.bytes', configOperation: SET, value: '3000000000' }]))).toEqual(['INVALID_CONFIG']);
    expect(await failure(alter([{ name: 'cleanup.policy', configOperation: SET, value: 'shred' }]))).toEqual(['INVALID_CONFIG']);
    expect(await failure(alter([{ name: 'min.compaction.lag.ms', configOperation: SET, value: '-1' }]))).toEqual(['INVALID_CONFIG']);
    expect(await failure(alter([{ name: 'segment.whatever', configOperation: SET, value: '1' }]))).toEqual(['INVALID_CONFIG']);
    expect(await failure(alter([{ name: 'retention.ms', configOperation: SET, value: '1' }], false, 'pk-missing'))).toEqual(['UNKNOWN_TOPIC_OR_PARTITION']);
    expect(await failure(alter([{ name: 'num.partitions', configOperation: SET, value: '3' }], false, '0', BROKER))).toEqual(['INVALID_REQUEST']);
    // A refused change changes nothing, not even the valid configs beside it.
    expect(
      await failure(
        alter([
          { name: 'retention.ms', configOperation: SET, value: '1000' },
          { name: 'cleanup.policy', configOperation: SET, value: 'compact,shred' },
        ]),
      ),
    ).toEqual(['INVALID_CONFIG']);
    expect((await configsOf('pk-conf'))['retention.ms']!.value).toBe('3600000');
    // cleanup.policy is a list: appending what it holds is no change.
    await alter([{ name: 'cleanup.policy', configOperation: APPEND, value: 'delete' }]);
    expect((await configsOf('pk-conf'))['cleanup.policy']!.value).toBe('delete');
    // Appending compact makes the topic compacted (and deleted by retention too); subtracting it returns to delete.
    await alter([{ name: 'cleanup.policy', configOperation: APPEND, value: 'compact' }]);
    expect((await configsOf('pk-conf'))['cleanup.policy']).toEqual({ value: 'delete,compact', isDefault: false });
    await alter([{ name: 'cleanup.policy', configOperation: SUBTRACT, value: 'compact' }]);
    expect((await configsOf('pk-conf'))['cleanup.policy']).toEqual({ value: 'delete', isDefault: true });
  });

  it('retention.bytes set over the wire trims the log in the background; max.message.bytes of the topic limits its batches', async () => {
    await admin.createTopics({ topics: ['pk-retained'], partitions: 1, replicas: 1 });
    const producer = new Producer({ clientId: 'pk-retained-producer', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers, retries: 0 });
    try {
      for (let i = 0; i < 5; i++) await producer.send({ messages: Array.from({ length: 20 }, (_, j) => ({ topic: 'pk-retained', value: `${i}-${j}-${'x'.repeat(100)}` })) });
      expect(topicOf('pk-retained').messages).toBe(100);
      await admin.incrementalAlterConfigs({ resources: [{ resourceType: TOPIC, resourceName: 'pk-retained', configs: [{ name: 'retention.bytes', configOperation: SET, value: '2000' }] }] });
      await expect.poll(() => topicOf('pk-retained').bytes).toBeLessThanOrEqual(2000);
      expect(topicOf('pk-retained').partitions[0]!.startOffset).toBeGreaterThan(0);

      await admin.incrementalAlterConfigs({ resources: [{ resourceType: TOPIC, resourceName: 'pk-retained', configs: [{ name: 'max.message.bytes', configOperation: SET, value: '300' }] }] });
      expect((await configsOf('pk-retained'))['max.message.bytes']).toEqual({ value: '300', isDefault: false });
      expect(await failure(producer.send({ messages: [{ topic: 'pk-retained', value: 'y'.repeat(1000) }] }))).toContain('MESSAGE_TOO_LARGE');
      await producer.send({ messages: [{ topic: 'pk-retained', value: 'small' }] });
      await admin.incrementalAlterConfigs({ resources: [{ resourceType: TOPIC, resourceName: 'pk-retained', configs: [{ name: 'max.message.bytes', configOperation: DELETE }] }] });
      await producer.send({ messages: [{ topic: 'pk-retained', value: 'y'.repeat(1000) }] });
    } finally {
      await producer.close();
    }
  });

  it('CreatePartitions: grows a topic, refuses a decrease, validates only when asked', async () => {
    await admin.createTopics({ topics: ['pk-grow'], partitions: 1, replicas: 1 });
    await admin.createPartitions({ topics: [{ name: 'pk-grow', count: 4 }], validateOnly: true });
    expect(topicOf('pk-grow').partitions).toHaveLength(1);
    await admin.createPartitions({ topics: [{ name: 'pk-grow', count: 4 }] });
    expect(topicOf('pk-grow').partitions).toHaveLength(4);
    expect(await failure(admin.createPartitions({ topics: [{ name: 'pk-grow', count: 2 }] }))).toEqual(['INVALID_PARTITIONS']);
    expect(await failure(admin.createPartitions({ topics: [{ name: 'pk-grow', count: 6, assignments: [{ brokerIds: [0] }] }] }))).toEqual(['INVALID_REPLICA_ASSIGNMENT']);
    await admin.createPartitions({ topics: [{ name: 'pk-grow', count: 6, assignments: [{ brokerIds: [0] }, { brokerIds: [0] }] }] });
    expect(topicOf('pk-grow').partitions).toHaveLength(6);
  });

  it('DeleteRecords: the low watermark moves, -1 is the high watermark, beyond it is OFFSET_OUT_OF_RANGE', async () => {
    await admin.createTopics({ topics: ['pk-trim'], partitions: 1, replicas: 1 });
    await broker.host.live().produce('pk-trim', Array.from({ length: 8 }, (_, i) => ({ value: `v${i}` })));
    const [deleted] = await admin.deleteRecords({ topics: [{ name: 'pk-trim', partitions: [{ partition: 0, offset: 5n }] }] });
    expect(deleted!.partitions).toEqual([{ partition: 0, lowWatermark: 5n }]);
    // An offset before the start changes nothing and answers the start.
    const [again] = await admin.deleteRecords({ topics: [{ name: 'pk-trim', partitions: [{ partition: 0, offset: 2n }] }] });
    expect(again!.partitions).toEqual([{ partition: 0, lowWatermark: 5n }]);
    expect(await failure(admin.deleteRecords({ topics: [{ name: 'pk-trim', partitions: [{ partition: 0, offset: 9n }] }] }))).toEqual(['OFFSET_OUT_OF_RANGE']);
    const [listed] = await admin.listOffsets({ topics: [{ name: 'pk-trim', partitions: [{ partitionIndex: 0, timestamp: -2n }] }] });
    expect(listed!.partitions[0]!.offset).toBe(5n);
    const [all] = await admin.deleteRecords({ topics: [{ name: 'pk-trim', partitions: [{ partition: 0, offset: -1n }] }] });
    expect(all!.partitions).toEqual([{ partition: 0, lowWatermark: 8n }]);
    expect(broker.host.live().browseTopic('pk-trim').records).toEqual([]);
  });

  it('OffsetDelete: removes offsets of topics the group does not subscribe to; GROUP_SUBSCRIBED_TO_TOPIC and GROUP_ID_NOT_FOUND otherwise', async () => {
    await admin.createTopics({ topics: ['pk-od-a', 'pk-od-b'], partitions: 2, replicas: 1 });
    const engine = broker.host.live();
    await engine.produce('pk-od-a', [{ value: 'a', partition: 0 }]);
    await engine.commitOffsets('pk-od-group', [
      { topic: 'pk-od-a', partition: 0, offset: 1 },
      { topic: 'pk-od-a', partition: 1, offset: 0 },
      { topic: 'pk-od-b', partition: 0, offset: 0 },
      { topic: 'pk-od-b', partition: 1, offset: 0 },
    ]);
    const committed = () =>
      engine
        .listGroups()
        .find((g) => g.groupId === 'pk-od-group')!
        .partitions.filter((p) => p.committed !== null)
        .map((p) => `${p.topic}/${p.partition}`);

    // An empty group: its offsets go, partition by partition.
    await admin.deleteConsumerGroupOffsets({ groupId: 'pk-od-group', topics: [{ name: 'pk-od-b', partitionIndexes: [1] }] });
    expect(committed()).toEqual(['pk-od-a/0', 'pk-od-a/1', 'pk-od-b/0']);
    expect(await failure(admin.deleteConsumerGroupOffsets({ groupId: 'pk-no-such-group', topics: [{ name: 'pk-od-a', partitionIndexes: [0] }] }))).toEqual(['GROUP_ID_NOT_FOUND']);
    expect(await failure(admin.deleteConsumerGroupOffsets({ groupId: 'pk-od-group', topics: [{ name: 'pk-od-missing', partitionIndexes: [0] }] }))).toEqual(['UNKNOWN_TOPIC_OR_PARTITION']);

    // A live consumer subscribed to pk-od-a: those offsets stay, pk-od-b's go.
    const kafka = new Kafka({ clientId: 'pk-od-consumer', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: 'pk-od-group', maxWaitTimeInMs: 100 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: 'pk-od-a' });
      await consumer.run({ eachMessage: async () => {} });
      await expect.poll(() => engine.groupCoordinator.describe('pk-od-group')?.state).toBe('Stable');
      expect(await failure(admin.deleteConsumerGroupOffsets({ groupId: 'pk-od-group', topics: [{ name: 'pk-od-a', partitionIndexes: [0, 1] }] }))).toEqual(['GROUP_SUBSCRIBED_TO_TOPIC', 'GROUP_SUBSCRIBED_TO_TOPIC']);
      await admin.deleteConsumerGroupOffsets({ groupId: 'pk-od-group', topics: [{ name: 'pk-od-b', partitionIndexes: [0] }] });
      expect(committed()).toEqual(['pk-od-a/0', 'pk-od-a/1']);
    } finally {
      await consumer.disconnect();
    }
  });
});
