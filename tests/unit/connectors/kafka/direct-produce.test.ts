/**
 * The record batches and Produce requests the re-drive writes itself, read
 * back by two readers written apart from it: the embedded broker's Kafka
 * listener (its generated ProduceRequest reader and its record-batch reader,
 * which checks the CRC) and the client library's batch reader.
 */
import { randomBytes } from 'node:crypto';
import { Reader as ClientReader, readRecordsBatch } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { FetchedRecord, readBatches } from '../../../../src-main/connectors/kafka/direct-fetch.js';
import { encodeBatch, encodeHeaders, encodeProduceRequest, type DirectRecord } from '../../../../src-main/connectors/kafka/direct-produce.js';
import type { RawHeader, RawRecord } from '../../../../src-main/connectors/kafka/records.js';
import { Reader } from '../../../../src-main/protocols/kafka/codec/primitives.js';
import { checkCrc, readHeader, readRecords } from '../../../../src-main/protocols/kafka/codec/record-batch.js';
import { readProduceRequest } from '../../../../src-main/protocols/kafka/generated/ProduceRequest.js';

const b = (s: string) => Buffer.from(s, 'utf8');

/** Records of every shape: null key or value, empty ones, null header values, repeated header names, sizes across varint boundaries. */
function sample(count: number, topic = 'orders', partition = 0): DirectRecord[] {
  const out: DirectRecord[] = [];
  for (let i = 0; i < count; i++) {
    const size = [0, 1, 63, 64, 127, 128, 8191, 8192, 70_000][i % 9]!;
    out.push({
      topic,
      partition,
      key: i % 5 === 0 ? null : b(`key-${i}`),
      value: i % 7 === 0 ? null : randomBytes(size),
      headers: i % 3 === 0 ? [] : [[b('kafka_dlt-original-topic'), b(topic)], [b('dup'), null], [b('dup'), b('second')]],
      extra: [[b('x-redriven-from'), b(`${topic}.DLT:0:${i}`)], [b('x-redriven-job'), b('kr-1')]],
    });
  }
  return out;
}

describe('direct produce encoding', () => {
  it('writes a batch the listener and the client library both read back, CRC included', () => {
    const records = sample(40);
    const batch = encodeBatch(records, 1_700_000_000_123, { producerId: 4242n, producerEpoch: 3 }, 17);
    const header = readHeader(batch);
    expect(header.size).toBe(batch.length);
    expect(header).toMatchObject({ magic: 2, compression: 'none', transactional: false, control: false, recordCount: 40, lastOffsetDelta: 39, producerId: 4242n, producerEpoch: 3, baseSequence: 17 });
    expect(header.baseTimestamp).toBe(1_700_000_000_123n);
    expect(() => checkCrc(batch, header)).not.toThrow();

    const read = readRecords(batch, header, 64 * 1024 * 1024);
    expect(read).toHaveLength(records.length);
    read.forEach((r, i) => {
      const want = records[i]!;
      expect(r.offsetDelta).toBe(i);
      expect(r.timestamp).toBe(1_700_000_000_123);
      expect(r.key).toEqual(want.key);
      expect(r.value).toEqual(want.value);
      expect(r.headers).toEqual([...(want.headers as RawHeader[]), ...want.extra].map(([k, v]) => [k.toString('utf8'), v]));
    });

    const client = readRecordsBatch(ClientReader.from(batch));
    expect(client.records).toHaveLength(records.length);
    expect(client.records[39]!.value).toEqual(records[39]!.value);
    expect(client.records[1]!.headers.map(([k, v]) => [k?.toString() ?? null, v?.toString() ?? null])).toEqual([
      ['kafka_dlt-original-topic', 'orders'],
      ['dup', null],
      ['dup', 'second'],
      ['x-redriven-from', 'orders.DLT:0:1'],
      ['x-redriven-job', 'kr-1'],
    ]);
  });

  it('copies the header bytes of records read in place, with the added headers after them', () => {
    const records = sample(30);
    const first = encodeBatch(records, 1_700_000_000_000, { producerId: 1n, producerEpoch: 0 }, 0);
    const fetched: RawRecord[] = [];
    readBatches(first, 0, 0, [], fetched);
    expect(fetched).toHaveLength(30);
    expect(fetched.every((r) => r instanceof FetchedRecord)).toBe(true);
    // Written again as a re-drive writes them: the read headers as bytes, a header of its own after them, then the job's fixed ones.
    const marks = encodeHeaders([
      [b('x-redriven-job'), b('kr-2')],
      [b('empty'), null],
    ]);
    const again: DirectRecord[] = fetched.map((r, i) => ({
      topic: 'orders',
      partition: 0,
      key: r.key,
      value: r.value,
      headers: r as FetchedRecord,
      extra: [[b('x-redriven-from'), b(`again:${i}`)]],
      fixed: marks,
    }));
    const batch = encodeBatch(again, 1_700_000_000_500, { producerId: 7n, producerEpoch: 1 }, 30);
    const header = readHeader(batch);
    expect(() => checkCrc(batch, header)).not.toThrow();
    const read = readRecords(batch, header, 64 * 1024 * 1024);
    read.forEach((r, i) => {
      const want = records[i]!;
      expect(r.key).toEqual(want.key);
      expect(r.value ?? null).toEqual(want.value === null ? null : want.value);
      expect(r.headers).toEqual(
        [...(want.headers as RawHeader[]), ...want.extra, [b('x-redriven-from'), b(`again:${i}`)], [b('x-redriven-job'), b('kr-2')], [b('empty'), null] as RawHeader].map(([k, v]) => [k.toString('utf8'), v]),
      );
    });
    // The same records decode their headers when asked, as the library's reader does.
    expect(fetched[1]!.headers.map(([k, v]) => [k.toString(), v?.toString() ?? null])).toEqual([
      ['kafka_dlt-original-topic', 'orders'],
      ['dup', null],
      ['dup', 'second'],
      ['x-redriven-from', 'orders.DLT:0:1'],
      ['x-redriven-job', 'kr-1'],
    ]);
  });

  it('a flipped byte anywhere after the CRC field fails the CRC check', () => {
    const batch = encodeBatch(sample(5), Date.now(), { producerId: 1n, producerEpoch: 0 }, 0);
    for (const at of [21, 40, 61, batch.length - 1]) {
      const bad = Buffer.from(batch);
      bad[at] = bad[at]! ^ 0xff;
      expect(() => checkCrc(bad, readHeader(bad)), `byte ${at}`).toThrow(/CRC/);
    }
  });

  it('writes a Produce v9 request (acks=all) the listener reads back, topics and partitions in order', () => {
    const topics = new Map<string, Map<number, Buffer>>();
    const batches: Array<[string, number, Buffer]> = [];
    for (const [topic, partitions] of [['orders', [0, 3, 5]], ['päyments', [1]], ['t'.repeat(200), [0, 1]]] as const) {
      const m = new Map<number, Buffer>();
      for (const p of partitions) {
        const batch = encodeBatch(sample(3 + p, topic, p), Date.now(), { producerId: 9n, producerEpoch: 1 }, p);
        m.set(p, batch);
        batches.push([topic, p, batch]);
      }
      topics.set(topic, m);
    }
    const body = Buffer.concat(encodeProduceRequest(topics));
    const r = new Reader(body);
    const request = readProduceRequest(r, 9);
    expect(r.remaining).toBe(0);
    expect(request.transactionalId).toBeNull();
    expect(request.acks).toBe(-1);
    expect(request.timeoutMs).toBeGreaterThan(0);
    const seen = request.topicData.flatMap((t) => t.partitionData.map((p) => [t.name, p.index, p.records] as const));
    expect(seen.map(([t, p]) => [t, p])).toEqual(batches.map(([t, p]) => [t, p]));
    seen.forEach(([, , records], i) => expect(records).toEqual(batches[i]![2]));
  });

  it('writes an empty request for no topics', () => {
    const body = Buffer.concat(encodeProduceRequest(new Map()));
    const r = new Reader(body);
    expect(readProduceRequest(r, 9).topicData).toEqual([]);
    expect(r.remaining).toBe(0);
  });
});
