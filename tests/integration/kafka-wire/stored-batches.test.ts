/**
 * Record batches are kept as produced and fetched as they were sent: a
 * gzip batch produced over the wire comes back byte for byte (only its base
 * offset and leader epoch set by the broker), records published another way
 * between two such batches are encoded in their place, and kcat reads the
 * whole partition in order. Deleting before an offset keeps a batch that
 * still holds readable records; compaction and topic deletion drop what no
 * longer matches the records.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import zlib from 'node:zlib';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBatch, readHeader } from '../../../src-main/protocols/kafka/codec/record-batch.js';
import { startWireBroker, type WireBroker } from './helpers.js';

const KCAT = '/usr/bin/kcat';

let broker: WireBroker & { dir: string };
beforeAll(async () => {
  broker = await startWireBroker();
});
afterAll(async () => {
  await broker?.stop();
});

/** A record batch v2 of `values` (keys k0, k1…), its records block gzip-compressed, with a producer's timestamps. */
function gzipBatch(values: string[], time: number): Buffer {
  const plain = buildBatch(
    0,
    values.map((v, i) => ({ offset: i, timestamp: time + i, key: Buffer.from(`k${i}`), value: Buffer.from(v), headers: [['h', Buffer.from(`x${i}`)] as const] })),
  );
  const block = zlib.gzipSync(plain.subarray(61));
  const out = Buffer.concat([plain.subarray(0, 61), block]);
  out.writeInt32BE(out.length - 12, 8);
  out.writeInt16BE(1, 21);
  out.writeUInt32BE(crc32c(out.subarray(21)) >>> 0, 17);
  return out;
}

function str(s: string): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(s));
  b.writeInt16BE(Buffer.byteLength(s), 0);
  b.write(s, 2);
  return b;
}

function i32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

/** One request/response on a socket of its own (v0 headers). */
function call(apiKey: number, version: number, body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const header = Buffer.concat([Buffer.from([apiKey >> 8, apiKey & 255, version >> 8, version & 255]), i32(7), str('stored-batches-test')]);
    const payload = Buffer.concat([header, body]);
    const socket = net.connect({ host: '127.0.0.1', port: broker.port });
    let data = Buffer.alloc(0);
    socket.on('connect', () => socket.write(Buffer.concat([i32(payload.length), payload])));
    socket.on('data', (chunk) => {
      data = Buffer.concat([data, chunk]);
      if (data.length >= 4 && data.length >= 4 + data.readInt32BE(0)) {
        socket.destroy();
        resolve(data.subarray(8, 4 + data.readInt32BE(0)));
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('connection closed before the answer')));
  });
}

/** Produce v3, acks=all, one partition: the error code and base offset. */
async function produce(topic: string, partition: number, batch: Buffer): Promise<{ error: number; base: bigint }> {
  const body = Buffer.concat([Buffer.from([0xff, 0xff]), Buffer.from([0xff, 0xff]), i32(10_000), i32(1), str(topic), i32(1), i32(partition), i32(batch.length), batch]);
  const res = await call(0, 3, body);
  // responses[1]: topic, partitions[1]: index, error, base offset…
  const at = 4 + 2 + res.readInt16BE(4) + 4;
  return { error: res.readInt16BE(at + 4), base: res.readBigInt64BE(at + 6) };
}

/** Fetch v4 of one partition from `offset`: its error code and the record batches' bytes, split. */
async function fetch(topic: string, partition: number, offset: number, partitionMaxBytes = 1 << 20): Promise<{ error: number; batches: Buffer[] }> {
  const body = Buffer.concat([i32(-1), i32(0), i32(0), i32(1 << 24), Buffer.from([0]), i32(1), str(topic), i32(1), i32(partition), Buffer.from(new BigInt64Array([0n]).buffer).fill(0), i32(partitionMaxBytes)]);
  body.writeBigInt64BE(BigInt(offset), body.length - 12);
  const res = await call(1, 4, body);
  // throttle, responses[1]: topic, partitions[1]: index, error, high watermark, last stable offset, aborted (null), records.
  let at = 4 + 4 + 2 + res.readInt16BE(8) + 4;
  const error = res.readInt16BE(at + 4);
  at += 4 + 2 + 8 + 8;
  const aborted = res.readInt32BE(at);
  at += 4 + Math.max(0, aborted) * 16;
  const size = res.readInt32BE(at);
  const records = res.subarray(at + 4, at + 4 + Math.max(0, size));
  const batches: Buffer[] = [];
  for (let p = 0; p + 12 <= records.length; ) {
    const n = 12 + records.readInt32BE(p + 8);
    batches.push(records.subarray(p, p + n));
    p += n;
  }
  return { error, batches };
}

function kcat(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(KCAT, ['-b', broker.bootstrap, ...args], { timeout: 60_000 }, (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout))),
  );
}

describe('record batches kept as produced', () => {
  it('are fetched byte for byte, with records published another way encoded between them', async () => {
    const engine = broker.host.live();
    engine.createTopic('kept', { partitions: 1 });
    const first = gzipBatch(['a0', 'a1', 'a2', 'a3'], 1_700_000_000_000);
    const sent = Buffer.from(first);
    expect(await produce('kept', 0, first)).toEqual({ error: 0, base: 0n });
    await engine.produce('kept', [{ partition: 0, key: 'app', value: 'from the app' }]);
    const second = gzipBatch(['b0', 'b1'], 1_700_000_001_000);
    expect(await produce('kept', 0, second)).toEqual({ error: 0, base: 5n });

    const all = await fetch('kept', 0, 0);
    expect(all.error).toBe(0);
    expect(all.batches.map((b) => [Number(readHeader(b).baseOffset), readHeader(b).compression, readHeader(b).recordCount])).toEqual([
      [0, 'gzip', 4],
      [4, 'none', 1],
      [5, 'gzip', 2],
    ]);
    // The stored batch is what the client sent: only the base offset and leader epoch are the broker's.
    expect(all.batches[0]!.subarray(16).equals(sent.subarray(16))).toBe(true);
    expect(all.batches[0]!.readBigInt64BE(0)).toBe(0n);

    // From inside a batch: the whole batch, as Kafka answers (the client skips what it did not ask for).
    const mid = await fetch('kept', 0, 2);
    expect(mid.batches.map((b) => Number(readHeader(b).baseOffset))).toEqual([0, 4, 5]);
    // A partition limit smaller than the first batch still gets that batch, and only it.
    const small = await fetch('kept', 0, 0, 10);
    expect(small.batches.map((b) => Number(readHeader(b).baseOffset))).toEqual([0]);

    if (!existsSync(KCAT)) return;
    const out = await kcat(['-C', '-t', 'kept', '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%o %k=%s %h\n']);
    expect(out.trim().split('\n')).toEqual(['0 k0=a0 h=x0', '1 k1=a1 h=x1', '2 k2=a2 h=x2', '3 k3=a3 h=x3', '4 app=from the app ', '5 k0=b0 h=x0', '6 k1=b1 h=x1']);
    const fromThree = await kcat(['-C', '-t', 'kept', '-p', '0', '-o', '3', '-c', '2', '-e', '-q', '-f', '%o %s\n']);
    expect(fromThree.trim().split('\n')).toEqual(['3 a3', '4 from the app']);
  });

  it('hold the records\' values once: their rows point at the batch, and browsing and filters read them from it', async () => {
    const engine = broker.host.live();
    engine.createTopic('by-reference', { partitions: 1 });
    const plain = buildBatch(0, [
      { offset: 0, timestamp: 1_700_000_000_000, key: Buffer.from('a'), value: Buffer.from('{"status":"shipped"}'), headers: [['h', Buffer.from('1')], ['h', Buffer.from('2')], ['n', null]] as const },
      { offset: 1, timestamp: 1_700_000_000_001, key: Buffer.from('b'), value: null, headers: [] },
      { offset: 2, timestamp: 1_700_000_000_002, key: null, value: Buffer.from('{"status":"open"}'), headers: [['trace', Buffer.from('t-2')]] as const },
    ]);
    const block = zlib.gzipSync(plain.subarray(61));
    const batch = Buffer.concat([plain.subarray(0, 61), block]);
    batch.writeInt32BE(batch.length - 12, 8);
    batch.writeInt16BE(1, 21);
    batch.writeUInt32BE(crc32c(batch.subarray(21)) >>> 0, 17);
    expect(await produce('by-reference', 0, batch)).toEqual({ error: 0, base: 0n });

    const page = engine.fetch('by-reference', 0, { offset: 0, limit: 10 });
    expect(page.records.map((r) => [r.offset, r.key?.toString() ?? null, r.value?.toString() ?? null, r.timestamp])).toEqual([
      [0, 'a', '{"status":"shipped"}', 1_700_000_000_000],
      [1, 'b', null, 1_700_000_000_001],
      [2, null, '{"status":"open"}', 1_700_000_000_002],
    ]);
    expect(Object.fromEntries(Object.entries(page.records[0]!.headers).map(([k, v]) => [k, v.toString()]))).toEqual({ h: '2', n: '' });
    expect(page.records[2]!.headers.trace?.toString()).toBe('t-2');
    expect(engine.fetch('by-reference', 0, { offset: 0, limit: 10, filter: { q: 'shipped' } }).records.map((r) => r.offset)).toEqual([0]);

    // On disk: the rows hold no value (NULL for the null one) and point at the batch; the batch holds the bytes.
    const db = new Database(join(broker.dir, 'brokerdeck.db'), { readonly: true });
    try {
      const rows = db.prepare('SELECT length(value) AS value, headers FROM records WHERE batch = (SELECT id FROM record_batches WHERE length(bytes) = ?) ORDER BY id').all(batch.length) as Array<{ value: number | null; headers: string | null }>;
      expect(rows.map((r) => [r.value, r.headers])).toEqual([
        [0, null],
        [null, null],
        [0, null],
      ]);
    } finally {
      db.close();
    }

    // Once the topic is compacted, its rows get their values and its batches go; browsing reads the same.
    engine.setTopicConfig('by-reference', { cleanupPolicy: 'compact' });
    expect(engine.storedBatchPlan('by-reference', 0, 0)).toEqual([]);
    const after = engine.fetch('by-reference', 0, { offset: 0, limit: 10 });
    expect(after.records.map((r) => [r.offset, r.key?.toString() ?? null, r.value?.toString() ?? null])).toEqual([
      [0, 'a', '{"status":"shipped"}'],
      [1, 'b', null],
      [2, null, '{"status":"open"}'],
    ]);
    expect(Object.fromEntries(Object.entries(after.records[0]!.headers).map(([k, v]) => [k, v.toString()]))).toEqual({ h: '2', n: '' });
  });

  it('keep a batch that still holds readable records after DeleteRecords, and drop one that does not', async () => {
    const engine = broker.host.live();
    engine.createTopic('trimmed', { partitions: 1 });
    await produce('trimmed', 0, gzipBatch(['a0', 'a1', 'a2'], 1_700_000_000_000));
    await produce('trimmed', 0, gzipBatch(['b0', 'b1', 'b2'], 1_700_000_000_100));
    await engine.deleteRecordsBefore('trimmed', 0, 2);
    expect(engine.storedBatchPlan('trimmed', 0, 0).map((b) => [b.base, b.last])).toEqual([
      [0, 2],
      [3, 5],
    ]);
    const res = await fetch('trimmed', 0, 2);
    expect(res.batches.map((b) => Number(readHeader(b).baseOffset))).toEqual([0, 3]);
    expect((await fetch('trimmed', 0, 1)).error).toBe(1); // OFFSET_OUT_OF_RANGE
    await engine.deleteRecordsBefore('trimmed', 0, 3);
    expect(engine.storedBatchPlan('trimmed', 0, 0).map((b) => [b.base, b.last])).toEqual([[3, 5]]);
    if (!existsSync(KCAT)) return;
    const out = await kcat(['-C', '-t', 'trimmed', '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%o %s\n']);
    expect(out.trim().split('\n')).toEqual(['3 b0', '4 b1', '5 b2']);
  });

  it('are dropped when compaction removes records, and the partition is then read from its records', async () => {
    const engine = broker.host.live();
    engine.createTopic('later-compacted', { partitions: 1 });
    // Keys k0…k2 in each batch: the first batch's records are all superseded.
    await produce('later-compacted', 0, gzipBatch(['old0', 'old1', 'old2'], 1_700_000_000_000));
    await produce('later-compacted', 0, gzipBatch(['new0', 'new1', 'new2'], 1_700_000_000_100));
    expect(engine.storedBatchPlan('later-compacted', 0, 0)).toHaveLength(2);
    engine.setTopicConfig('later-compacted', { cleanupPolicy: 'compact', minCleanableDirtyRatio: 0 });
    await expect.poll(() => engine.fetch('later-compacted', 0, { offset: 0, limit: 10 }).records.length, { timeout: 30_000 }).toBe(3);
    expect(engine.storedBatchPlan('later-compacted', 0, 0)).toEqual([]);
    const res = await fetch('later-compacted', 0, 0);
    expect(res.batches.map((b) => [Number(readHeader(b).baseOffset), readHeader(b).compression, readHeader(b).recordCount])).toEqual([[3, 'none', 3]]);
  });

  it('go with their topic, and a topic created again under the name starts without them', async () => {
    const engine = broker.host.live();
    engine.createTopic('recreated', { partitions: 1 });
    await produce('recreated', 0, gzipBatch(['x0', 'x1'], 1_700_000_000_000));
    engine.deleteTopic('recreated');
    engine.createTopic('recreated', { partitions: 1 });
    expect(engine.storedBatchPlan('recreated', 0, 0)).toEqual([]);
    await engine.produce('recreated', [{ partition: 0, value: 'fresh' }]);
    const res = await fetch('recreated', 0, 0);
    expect(res.batches.map((b) => [Number(readHeader(b).baseOffset), readHeader(b).compression, readHeader(b).recordCount])).toEqual([[0, 'none', 1]]);
  });
});
