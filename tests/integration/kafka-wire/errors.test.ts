/**
 * Kafka's own error codes from the listener, seen through raw requests made
 * with the generated codecs: an unknown topic with auto-create off, a record
 * larger than the broker takes, a corrupt batch (CRC), an idempotent batch
 * sent twice (answered with its first offset, stored once) and one with a gap
 * in its sequence, an old message format, and an API this broker does not serve.
 */
import net from 'node:net';
import { crc32c } from '@node-rs/crc32';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Reader, Writer } from '../../../src-main/protocols/kafka/codec/primitives.js';
import { buildBatch } from '../../../src-main/protocols/kafka/codec/record-batch.js';
import { ERR } from '../../../src-main/protocols/kafka/errors.js';
import { API_SCHEMAS } from '../../../src-main/protocols/kafka/generated/index.js';
import { startWireBroker, type WireBroker } from './helpers.js';

let broker: WireBroker;
let socket: net.Socket;
let correlation = 0;

beforeAll(async () => {
  broker = await startWireBroker({ autoCreateTopics: false });
  socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(broker.port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
});
afterAll(async () => {
  socket?.destroy();
  await broker?.stop();
});

/** Sends one request and decodes its response (requests are answered in order, one at a time here). */
function call(apiKey: number, version: number, body: Record<string, unknown>): Promise<any> {
  const schema = API_SCHEMAS.get(apiKey)!;
  const flexible = schema.firstFlexibleVersion >= 0 && version >= schema.firstFlexibleVersion;
  const w = new Writer(256);
  w.int32(0).int16(apiKey).int16(version).int32(++correlation).string('errors-test', false);
  if (flexible) w.uvarint(0);
  schema.writeRequest(w, version, body);
  const frame = Buffer.from(w.result());
  frame.writeInt32BE(frame.length - 4, 0);
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length < 4 || got.length < 4 + got.readInt32BE(0)) return;
      socket.off('data', onData);
      const r = new Reader(got.subarray(4, 4 + got.readInt32BE(0)));
      r.int32();
      if (flexible && apiKey !== 18) r.taggedFields(() => false);
      resolve(schema.readResponse(r, version));
    };
    socket.on('data', onData);
    socket.write(frame);
  });
}

function batch(values: string[], producer?: { id: bigint; epoch: number; sequence: number }): Buffer {
  const b = buildBatch(0, values.map((v, i) => ({ offset: i, timestamp: Date.now(), key: null, value: Buffer.from(v), headers: [] })));
  if (producer) {
    b.writeBigInt64BE(producer.id, 43);
    b.writeInt16BE(producer.epoch, 51);
    b.writeInt32BE(producer.sequence, 53);
    b.writeUInt32BE(crc32c(b.subarray(21)) >>> 0, 17);
  }
  return b;
}

/** The batch with the transactional attribute set. */
function transactional(b: Buffer): Buffer {
  b.writeInt16BE(b.readInt16BE(21) | 0x10, 21);
  b.writeUInt32BE(crc32c(b.subarray(21)) >>> 0, 17);
  return b;
}

const produce = (topic: string, records: Buffer) => call(0, 9, { acks: -1, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: 0, records }] }] }).then((r) => r.responses[0].partitionResponses[0]);

describe('Kafka error codes of the listener', () => {
  it('answers an unknown topic with UNKNOWN_TOPIC_OR_PARTITION when auto-create is off', async () => {
    const meta = await call(3, 12, { topics: [{ name: 'nowhere' }], allowAutoTopicCreation: true });
    expect(meta.topics[0]).toMatchObject({ name: 'nowhere', errorCode: ERR.UNKNOWN_TOPIC_OR_PARTITION });
    expect(broker.host.live().listTopics().some((t) => t.name === 'nowhere')).toBe(false);
    expect((await produce('nowhere', batch(['x']))).errorCode).toBe(ERR.UNKNOWN_TOPIC_OR_PARTITION);
  });

  it('refuses a corrupt batch with CORRUPT_MESSAGE and an old message format with UNSUPPORTED_FOR_MESSAGE_FORMAT', async () => {
    broker.host.live().createTopic('strict', { partitions: 1 });
    const bad = batch(['hello']);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 1;
    expect((await produce('strict', bad)).errorCode).toBe(ERR.CORRUPT_MESSAGE);
    const old = batch(['hello']);
    old.writeInt8(1, 16);
    expect((await produce('strict', old)).errorCode).toBe(ERR.UNSUPPORTED_FOR_MESSAGE_FORMAT);
    expect(broker.host.live().listTopics().find((t) => t.name === 'strict')!.messages).toBe(0);
  });

  it('stores an idempotent batch sent twice once, and refuses a gap in the sequence', async () => {
    broker.host.live().createTopic('idempotent', { partitions: 1 });
    const init = await call(22, 4, { transactionalId: null, transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    expect(init.errorCode).toBe(0);
    const producer = { id: init.producerId as bigint, epoch: init.producerEpoch as number };
    const first = await produce('idempotent', batch(['a', 'b'], { ...producer, sequence: 0 }));
    const again = await produce('idempotent', batch(['a', 'b'], { ...producer, sequence: 0 }));
    expect(first).toMatchObject({ errorCode: 0, baseOffset: 0n });
    expect(again).toMatchObject({ errorCode: 0, baseOffset: 0n });
    expect((await produce('idempotent', batch(['d'], { ...producer, sequence: 5 }))).errorCode).toBe(ERR.OUT_OF_ORDER_SEQUENCE_NUMBER);
    expect(await produce('idempotent', batch(['c'], { ...producer, sequence: 2 }))).toMatchObject({ errorCode: 0, baseOffset: 2n });
    expect(broker.host.live().fetch('idempotent', 0, { limit: 10 }).records.map((r) => r.value!.toString())).toEqual(['a', 'b', 'c']);
  });

  it('refuses a record larger than the broker takes with MESSAGE_TOO_LARGE', async () => {
    broker.host.live().createTopic('small', { partitions: 1 });
    // Kafka's default max.message.bytes, 1048588.
    const huge = 'x'.repeat(1_048_600);
    expect((await produce('small', batch([huge]))).errorCode).toBe(ERR.MESSAGE_TOO_LARGE);
  });

  it("answers transactional requests out of turn with Kafka's codes", async () => {
    broker.host.live().createTopic('txn-errors', { partitions: 1 });
    const coordinator = await call(10, 4, { keyType: 1, coordinatorKeys: ['tx-errors'] });
    expect(coordinator.coordinators[0]).toMatchObject({ key: 'tx-errors', nodeId: 0, port: broker.port, errorCode: ERR.NONE });
    const init = await call(22, 4, { transactionalId: 'tx-errors', transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    expect(init.errorCode).toBe(ERR.NONE);
    const { producerId, producerEpoch } = init;
    const add = (version: number, body: Record<string, unknown>) => call(24, version, { v3AndBelowTransactionalId: 'tx-errors', v3AndBelowProducerId: producerId, v3AndBelowProducerEpoch: producerEpoch, v3AndBelowTopics: [{ name: 'txn-errors', partitions: [0] }], ...body });
    const codes = (r: any) => r.resultsByTopicV3AndBelow.flatMap((t: any) => t.resultsByPartition.map((p: any) => p.partitionErrorCode));
    // A transactional batch for a partition not in the transaction; EndTxn with no transaction open.
    const early = await call(0, 9, { transactionalId: 'tx-errors', acks: -1, timeoutMs: 5000, topicData: [{ name: 'txn-errors', partitionData: [{ index: 0, records: transactional(batch(['x'], { id: producerId, epoch: producerEpoch, sequence: 0 })) }] }] });
    expect(early.responses[0].partitionResponses[0].errorCode).toBe(ERR.INVALID_TXN_STATE);
    expect((await call(26, 3, { transactionalId: 'tx-errors', producerId, producerEpoch, committed: true })).errorCode).toBe(ERR.INVALID_TXN_STATE);
    // Unknown ids, another producer's id, an unknown partition (the others not attempted).
    expect(codes(await add(3, { v3AndBelowTransactionalId: 'no-such-id' }))).toEqual([ERR.INVALID_PRODUCER_ID_MAPPING]);
    expect(codes(await add(3, { v3AndBelowProducerId: producerId + 1n }))).toEqual([ERR.INVALID_PRODUCER_ID_MAPPING]);
    expect(codes(await add(3, { v3AndBelowTopics: [{ name: 'txn-errors', partitions: [0, 7] }] }))).toEqual([ERR.OPERATION_NOT_ATTEMPTED, ERR.UNKNOWN_TOPIC_OR_PARTITION]);
    expect(codes(await add(3, {}))).toEqual([ERR.NONE]);
    // A newer producer fences this one (the open transaction is aborted under one epoch, the successor gets the next):
    // PRODUCER_FENCED from the KIP-588 versions, INVALID_PRODUCER_EPOCH before.
    const successor = await call(22, 4, { transactionalId: 'tx-errors', transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    expect(successor).toMatchObject({ errorCode: ERR.NONE, producerId, producerEpoch: producerEpoch + 2 });
    expect(codes(await add(3, {}))).toEqual([ERR.PRODUCER_FENCED]);
    expect(codes(await add(1, {}))).toEqual([ERR.INVALID_PRODUCER_EPOCH]);
    expect((await call(26, 3, { transactionalId: 'tx-errors', producerId, producerEpoch, committed: true })).errorCode).toBe(ERR.PRODUCER_FENCED);
    expect((await call(26, 1, { transactionalId: 'tx-errors', producerId, producerEpoch, committed: true })).errorCode).toBe(ERR.INVALID_PRODUCER_EPOCH);
    const zombie = await call(0, 9, { transactionalId: 'tx-errors', acks: -1, timeoutMs: 5000, topicData: [{ name: 'txn-errors', partitionData: [{ index: 0, records: transactional(batch(['x'], { id: producerId, epoch: producerEpoch, sequence: 0 })) }] }] });
    expect(zombie.responses[0].partitionResponses[0].errorCode).toBe(ERR.INVALID_PRODUCER_EPOCH);
    // The re-initialised producer (KIP-360) must name its current epoch.
    const stale = await call(22, 4, { transactionalId: 'tx-errors', transactionTimeoutMs: 60000, producerId, producerEpoch });
    expect(stale.errorCode).toBe(ERR.PRODUCER_FENCED);
    expect((await call(25, 3, { transactionalId: 'tx-errors', producerId, producerEpoch: producerEpoch + 2, groupId: '' })).errorCode).toBe(ERR.INVALID_GROUP_ID);
    // No record was stored; the abort marker of the fenced transaction took offset 0.
    expect(broker.host.live().listTopics().find((t) => t.name === 'txn-errors')!.partitions[0]!.endOffset).toBe(1);
    expect(broker.host.live().fetch('txn-errors', 0, { offset: 0 }).records).toEqual([]);
  });

  it('removes the records of an aborted transaction that fetches encode from rows (a batch with log-append time)', async () => {
    broker.host.live().createTopic('txn-rows', { partitions: 1 });
    const { producerId, producerEpoch } = await call(22, 4, { transactionalId: 'tx-rows', transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    const added = await call(24, 3, { v3AndBelowTransactionalId: 'tx-rows', v3AndBelowProducerId: producerId, v3AndBelowProducerEpoch: producerEpoch, v3AndBelowTopics: [{ name: 'txn-rows', partitions: [0] }] });
    expect(added.resultsByTopicV3AndBelow[0].resultsByPartition[0].partitionErrorCode).toBe(ERR.NONE);
    const b = transactional(batch(['r0', 'r1'], { id: producerId, epoch: producerEpoch, sequence: 0 }));
    b.writeInt16BE(b.readInt16BE(21) | 0x08, 21); // log-append time: the broker's times, so not kept as produced
    b.writeUInt32BE(crc32c(b.subarray(21)) >>> 0, 17);
    const produced = await call(0, 9, { transactionalId: 'tx-rows', acks: -1, timeoutMs: 5000, topicData: [{ name: 'txn-rows', partitionData: [{ index: 0, records: b }] }] });
    expect(produced.responses[0].partitionResponses[0]).toMatchObject({ errorCode: ERR.NONE, baseOffset: 0n });
    const engine = broker.host.live();
    expect(engine.fetch('txn-rows', 0, { offset: 0 }).records.map((r) => r.value!.toString())).toEqual(['r0', 'r1']);
    expect((await call(26, 3, { transactionalId: 'tx-rows', producerId, producerEpoch, committed: false })).errorCode).toBe(ERR.NONE);
    expect(engine.fetch('txn-rows', 0, { offset: 0 }).records).toEqual([]);
    expect(engine.listTopics().find((t) => t.name === 'txn-rows')!.partitions[0]!.endOffset).toBe(3);
    expect(engine.storedBatchPlan('txn-rows', 0, 0).map((x) => x.base)).toEqual([2]);
  });

  it('answers OffsetFetch with requireStable UNSTABLE_OFFSET_COMMIT while a transaction holds offsets of the group', async () => {
    broker.host.live().createTopic('txn-stable', { partitions: 1 });
    const { producerId, producerEpoch } = await call(22, 4, { transactionalId: 'tx-stable', transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    expect((await call(25, 3, { transactionalId: 'tx-stable', producerId, producerEpoch, groupId: 'stable-group' })).errorCode).toBe(ERR.NONE);
    const sent = await call(28, 3, { transactionalId: 'tx-stable', groupId: 'stable-group', producerId, producerEpoch, generationId: -1, memberId: '', groupInstanceId: null, topics: [{ name: 'txn-stable', partitions: [{ partitionIndex: 0, committedOffset: 7n, committedLeaderEpoch: -1, committedMetadata: null }] }] });
    expect(sent.topics[0].partitions[0].errorCode).toBe(ERR.NONE);
    const fetchOffset = (requireStable: boolean) => call(9, 7, { groupId: 'stable-group', topics: [{ name: 'txn-stable', partitionIndexes: [0] }], requireStable }).then((r) => r.topics[0].partitions[0]);
    expect(await fetchOffset(true)).toMatchObject({ errorCode: ERR.UNSTABLE_OFFSET_COMMIT, committedOffset: -1n });
    expect(await fetchOffset(false)).toMatchObject({ errorCode: ERR.NONE, committedOffset: -1n });
    expect((await call(26, 3, { transactionalId: 'tx-stable', producerId, producerEpoch, committed: true })).errorCode).toBe(ERR.NONE);
    expect(await fetchOffset(true)).toMatchObject({ errorCode: ERR.NONE, committedOffset: 7n });
    // A retried EndTxn of the transaction just committed answers again; an abort now is out of turn.
    expect((await call(26, 3, { transactionalId: 'tx-stable', producerId, producerEpoch, committed: true })).errorCode).toBe(ERR.NONE);
    expect((await call(26, 3, { transactionalId: 'tx-stable', producerId, producerEpoch, committed: false })).errorCode).toBe(ERR.INVALID_TXN_STATE);
  });

  it('answers an API it does not serve with UNSUPPORTED_VERSION, and leaves it out of ApiVersions', async () => {
    const versions = await call(18, 3, { clientSoftwareName: 'errors-test', clientSoftwareVersion: '1' });
    const keys = versions.apiKeys.map((a: { apiKey: number }) => a.apiKey);
    expect(keys).toEqual(expect.arrayContaining([0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 21, 22, 32, 33, 37, 42, 44, 47, 60]));
    expect(versions.apiKeys.every((a: { minVersion: number }) => a.minVersion === 0)).toBe(true);
    expect(keys).not.toContain(29);
    const res = await call(29, 1, { resourceTypeFilter: 1, resourceNameFilter: null, patternTypeFilter: 1, principalFilter: null, hostFilter: null, operation: 1, permissionType: 1 });
    expect(res.errorCode).toBe(ERR.UNSUPPORTED_VERSION);
    // WriteTxnMarkers goes from a transaction coordinator to partition leaders: not a client's API, not served.
    expect(keys).not.toContain(27);
    const writeTxn = await call(27, 0, { markers: [] });
    expect(writeTxn).toBeDefined();
    const init = await call(22, 4, { transactionalId: 'tx-1', transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 });
    expect(init).toMatchObject({ errorCode: ERR.NONE, producerEpoch: 0 });
    const tooLong = await call(22, 4, { transactionalId: 'tx-1', transactionTimeoutMs: 900001, producerId: -1n, producerEpoch: -1 });
    expect(tooLong.errorCode).toBe(ERR.INVALID_TRANSACTION_TIMEOUT);
  });
});
