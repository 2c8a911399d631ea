/**
 * @platformatic/kafka, unchanged, against the Kafka listener: its admin creates
 * a topic, its producer writes keyed records with headers (idempotent, the
 * producer's retries must not duplicate), and its consumer reads them in a
 * group and commits, the commit showing in the broker's group view.
 */
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWireBroker, type WireBroker } from './helpers.js';

let broker: WireBroker;
beforeAll(async () => {
  broker = await startWireBroker();
});
afterAll(() => broker?.stop());

describe('@platformatic/kafka against the Kafka listener', () => {
  it('creates a topic, produces idempotently with headers and consumes in a group with commits', async () => {
    const admin = new Admin({ clientId: 'pk-admin', bootstrapBrokers: [broker.bootstrap] });
    await admin.createTopics({ topics: ['pk-events'], partitions: 2, replicas: 1 });
    await admin.close();

    const producer = new Producer({ clientId: 'pk-producer', bootstrapBrokers: [broker.bootstrap], serializers: stringSerializers, idempotent: true });
    const sent = await producer.send({ messages: Array.from({ length: 20 }, (_, i) => ({ topic: 'pk-events', key: `k${i % 4}`, value: `event ${i}`, headers: new Map([['trace', `t${i}`]]) })) });
    expect(sent.offsets?.length ?? 0).toBeGreaterThan(0);
    await producer.close();
    expect(broker.host.live().listTopics().find((t) => t.name === 'pk-events')!.messages).toBe(20);

    const consumer = new Consumer({ clientId: 'pk-consumer', groupId: 'pk-group', bootstrapBrokers: [broker.bootstrap], deserializers: stringDeserializers, sessionTimeout: 10_000, heartbeatInterval: 500 });
    const stream = await consumer.consume({ topics: ['pk-events'], mode: 'earliest', autocommit: false, maxWaitTime: 200 });
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (m) => {
        got.push(`${m.key}|${m.value}|${m.headers.get('trace')}`);
        Promise.resolve(m.commit()).then(() => {
          if (got.length === 20) resolve();
        }, reject);
      });
      stream.on('error', reject);
    });
    expect(got.map((g) => g.split('|')[1]).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `event ${i}`).sort());
    expect(got.every((g) => g.split('|')[2] === `t${g.split('|')[1]!.split(' ')[1]}`)).toBe(true);
    await expect.poll(() => broker.host.live().listGroups().find((g) => g.groupId === 'pk-group')?.totalLag).toBe(0);
    await stream.close();
    await consumer.close();
  });
});
