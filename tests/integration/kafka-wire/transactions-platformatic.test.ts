/**
 * @platformatic/kafka's transactions, unchanged, against the Kafka listener:
 * a transaction aborted and one committed by a transactional producer, read
 * by a read_committed consumer (its default) and a read_uncommitted one.
 */
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWireBroker, type WireBroker } from './helpers.js';

let broker: WireBroker;
beforeAll(async () => {
  broker = await startWireBroker();
});
afterAll(() => broker?.stop());

async function read(groupId: string, isolationLevel: 0 | 1, done: (values: string[]) => boolean): Promise<string[]> {
  const consumer = new Consumer({ clientId: groupId, groupId, bootstrapBrokers: [broker.bootstrap], deserializers: stringDeserializers, sessionTimeout: 10_000, heartbeatInterval: 500, isolationLevel });
  const stream = await consumer.consume({ topics: ['pk-txn'], mode: 'earliest', autocommit: false, maxWaitTime: 100 });
  const values: string[] = [];
  stream.on('data', (m) => values.push(m.value));
  try {
    await expect.poll(() => done(values), { timeout: 30_000, interval: 50 }).toBe(true);
  } finally {
    await stream.close();
    await consumer.close();
  }
  return values;
}

describe('@platformatic/kafka transactions against the Kafka listener', () => {
  it('shows read_committed consumers the committed transaction only', async () => {
    const admin = new Admin({ clientId: 'pk-txn-admin', bootstrapBrokers: [broker.bootstrap] });
    await admin.createTopics({ topics: ['pk-txn'], partitions: 1, replicas: 1 });
    await admin.close();
    const producer = new Producer({ clientId: 'pk-txn-producer', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers, idempotent: true, transactionalId: 'pk-txn' });
    try {
      const aborted = await producer.beginTransaction();
      await aborted.send({ messages: [{ topic: 'pk-txn', key: 'k', value: 'aborted-0' }, { topic: 'pk-txn', key: 'k', value: 'aborted-1' }] });
      await aborted.abort();
      const committed = await producer.beginTransaction();
      await committed.send({ messages: [{ topic: 'pk-txn', key: 'k', value: 'committed-0' }, { topic: 'pk-txn', key: 'k', value: 'committed-1' }] });
      await committed.commit();
    } finally {
      await producer.close();
    }
    expect(broker.host.live().transactions.describe('pk-txn')?.state).toBe('CompleteCommit');
    expect(await read('pk-txn-committed', 1, (v) => v.includes('committed-1'))).toEqual(['committed-0', 'committed-1']);
    expect(await read('pk-txn-uncommitted', 0, (v) => v.includes('committed-1'))).toEqual(['aborted-0', 'aborted-1', 'committed-0', 'committed-1']);
  });
});
