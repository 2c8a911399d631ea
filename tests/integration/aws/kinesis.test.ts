/**
 * The Kinesis connection against a real Kinesis server (kinesis-local started by
 * tests/aws/aws.mjs, or KINESIS_ENDPOINT), through the core as the app calls it:
 * streams as topics with their shards, browsing from each start kind and across
 * shards by cursor, the shared filters, publishing one and many with the shard of
 * each record checked against Kinesis's MD5 hash-key mapping, reads that change
 * nothing, registered consumers as groups, and the errors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateStreamCommand,
  DeleteStreamCommand,
  DescribeStreamSummaryCommand,
  KinesisClient,
  ListShardsCommand,
  PutRecordCommand,
  PutRecordsCommand,
  RegisterStreamConsumerCommand,
  SplitShardCommand,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RecordView } from '../../../src-main/contract/types.js';
import { hashKeyOf, KinesisConnector, shardForKey, testKinesisConnection, type ShardEntry } from '../../../src-main/connectors/kinesis/index.js';
import { startCore } from '../../../src-main/core/core.js';
import { useAwsServer } from '../../aws/servers.js';
import { awsConfig, testDeps, unique } from './helpers.js';

const kinesis = useAwsServer('kinesis');

let client: KinesisClient;
let core: Awaited<ReturnType<typeof startCore>> | null = null;
let dataDir = '';
let connectionId = '';
const secret = `secret-${unique('s')}`;
const created: string[] = [];

beforeAll(async () => {
  const server = kinesis.server;
  if (!server) return;
  const credentials = 'profile' in server.credentials ? { profile: server.credentials.profile } : { credentials: server.credentials };
  client = new KinesisClient({ endpoint: server.endpoint, region: server.region, ...credentials, requestHandler: new NodeHttpHandler() });
  dataDir = mkdtempSync(join(tmpdir(), 'bd-kinesis-core-'));
  core = await startCore({ dataDir, version: '0.0.0-test' });
  const config = awsConfig('kinesis', server, 'local kinesis');
  connectionId = (await core.call('connections/create', { ...config, ...('accessKeyId' in server.credentials ? { secretAccessKey: secret } : {}) })).id;
});

afterAll(async () => {
  // kinesis-local counts shards against an account limit (50), as AWS does: the streams go once read.
  for (const name of created) await client.send(new DeleteStreamCommand({ StreamName: name, EnforceConsumerDeletion: true })).catch(() => undefined);
  await core?.close();
  client?.destroy();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** Waits for the stream to become ACTIVE (vi.waitFor also works in hooks). */
async function active(name: string): Promise<void> {
  await vi.waitFor(
    async () => {
      const status = (await client.send(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary?.StreamStatus;
      if (status !== 'ACTIVE') throw new Error(`stream ${name} is ${status}`);
    },
    { timeout: 60_000, interval: 100 },
  );
}

async function stream(shards: number): Promise<string> {
  const name = unique('orders');
  await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
  created.push(name);
  await active(name);
  return name;
}

async function sdkShards(name: string): Promise<ShardEntry[]> {
  const r = await client.send(new ListShardsCommand({ StreamName: name }));
  return (r.Shards ?? []).map((s, index) => ({
    index,
    id: s.ShardId!,
    parentShardId: s.ParentShardId ?? null,
    adjacentParentShardId: s.AdjacentParentShardId ?? null,
    hashStart: BigInt(s.HashKeyRange!.StartingHashKey!),
    hashEnd: BigInt(s.HashKeyRange!.EndingHashKey!),
    sequenceStart: s.SequenceNumberRange!.StartingSequenceNumber!,
    sequenceEnd: s.SequenceNumberRange!.EndingSequenceNumber ?? null,
  }));
}

/** Puts records with the SDK: each answer's shard and sequence number. */
async function put(name: string, records: Array<{ key: string; data: string }>): Promise<Array<{ shardId: string; seq: string; key: string; data: string }>> {
  const r = await client.send(new PutRecordsCommand({ StreamName: name, Records: records.map((x) => ({ PartitionKey: x.key, Data: Buffer.from(x.data) })) }));
  expect(r.FailedRecordCount ?? 0).toBe(0);
  return r.Records!.map((x, i) => ({ shardId: x.ShardId!, seq: x.SequenceNumber!, ...records[i]! }));
}

async function browse(args: Record<string, unknown>) {
  return core!.call('topics/messages', { connectionId, ...args } as never);
}

/** Every record of a browse, following cursors, with the number of pages. */
async function browseAll(args: Record<string, unknown>): Promise<{ records: RecordView[]; pages: number }> {
  const records: RecordView[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await browse({ ...args, ...(cursor ? { cursor } : {}) });
    records.push(...page.messages);
    cursor = page.nextCursor ?? undefined;
    pages++;
    expect(pages).toBeLessThan(100);
  } while (cursor);
  return { records, pages };
}

describe('Kinesis connection', () => {
  it('tests the connection, tells an unreachable server apart, and keeps the secret out of what it shows', async (ctx) => {
    const server = kinesis.require(ctx);
    expect(await testKinesisConnection(awsConfig('kinesis', server) as never)).toMatchObject({ ok: true });
    expect(await testKinesisConnection({ ...(awsConfig('kinesis', server) as object), endpoint: 'http://127.0.0.1:9' } as never, 5_000)).toMatchObject({
      ok: false,
      problem: 'unreachable',
    });
    const info = await core!.call('connections/get', { connectionId });
    expect(info).toMatchObject({ kind: 'kinesis', target: server.endpoint, capabilities: expect.arrayContaining(['topics', 'groups', 'publish', 'positions']) });
    expect(JSON.stringify(info)).not.toContain(secret);
  });

  it('lists streams as topics, shards as partitions with ids, hash-key and sequence ranges, and the stream settings', async (ctx) => {
    kinesis.require(ctx);
    const name = await stream(3);
    const topics = await core!.call('topics/list', { connectionId });
    const topic = topics.find((t) => t.name === name)!;
    expect(topic).toMatchObject({ countsUnknown: true, config: { status: 'ACTIVE', mode: 'PROVISIONED', 'retention.hours': 24, encryption: 'NONE', openShards: 3, closedShards: 0 } });
    const shards = await sdkShards(name);
    expect(topic.partitions.map((p) => [p.partition, p.id])).toEqual(shards.map((s) => [s.index, s.id]));
    // The hash-key ranges cover 0 to 2^128 - 1 without gap or overlap.
    let next = 0n;
    for (const p of topic.partitions) {
      expect(p.shard!.open).toBe(true);
      expect(BigInt(p.shard!.hashKeyRange.start)).toBe(next);
      next = BigInt(p.shard!.hashKeyRange.end) + 1n;
      expect(p.shard!.sequenceRange.start).toMatch(/^\d+$/);
    }
    expect(next).toBe(1n << 128n);
    expect(await core!.call('topics/get', { connectionId, topic: name })).toEqual(topic);
    await expect(core!.call('topics/get', { connectionId, topic: 'no-such-stream' })).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'topic', message: expect.stringContaining('"no-such-stream"') });
  });

  it('creates a stream of the shards asked for and deletes it, refusing what a stream does not have', async (ctx) => {
    kinesis.require(ctx);
    const name = unique('created');
    created.push(name);
    await expect(core!.call('topics/create', { connectionId, topic: name, partitions: 2, retentionBytes: 1_000 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'retentionBytes' });
    const topic = await core!.call('topics/create', { connectionId, topic: name, partitions: 2 });
    expect(topic).toMatchObject({ name, config: { mode: 'PROVISIONED' } });
    await active(name);
    expect((await core!.call('topics/get', { connectionId, topic: name })).partitions).toHaveLength(2);
    await core!.call('topics/delete', { connectionId, topic: name });
    await expect.poll(async () => (await core!.call('topics/list', { connectionId })).some((t) => t.name === name)).toBe(false);
    await expect(core!.call('topics/delete', { connectionId, topic: name })).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'topic' });
  });

  it('shows a split shard as closed with its children, reads it to its end, and publishes only to open shards', async (ctx) => {
    kinesis.require(ctx);
    const name = await stream(1);
    const before = await put(name, [{ key: 'a', data: 'before split' }]);
    const [parent] = await sdkShards(name);
    const middle = (parent!.hashStart + parent!.hashEnd) / 2n;
    await client.send(new SplitShardCommand({ StreamName: name, ShardToSplit: parent!.id, NewStartingHashKey: middle.toString() }));
    await active(name);
    const topic = await core!.call('topics/get', { connectionId, topic: name });
    expect(topic.partitions).toHaveLength(3);
    expect(topic.partitions[0]!.shard).toMatchObject({ open: false, sequenceRange: { end: expect.stringMatching(/^\d+$/) } });
    expect(topic.partitions.slice(1).map((p) => p.shard)).toEqual([
      expect.objectContaining({ open: true, parentShardId: parent!.id }),
      expect.objectContaining({ open: true, parentShardId: parent!.id }),
    ]);
    const closed = await browse({ topic: name, partition: 0 });
    expect(closed).toMatchObject({ nextCursor: null, complete: true });
    expect(closed.messages.map((m) => m.position)).toEqual([before[0]!.seq]);
    await expect(core!.call('topics/produce', { connectionId, topic: name, key: 'x', value: 'v', partition: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'partition' });
    const out = await core!.call('topics/produce', { connectionId, topic: name, key: 'after-{{i}}', value: 'v', count: 20 });
    expect(new Set(out.positions!.map((p) => p.partition))).not.toContain(0);
  });

  it('publishes one record to the shard its key hashes to, as PutRecord itself places that key', async (ctx) => {
    kinesis.require(ctx);
    const name = await stream(4);
    const shards = await sdkShards(name);
    for (const key of ['abc', 'order-42', 'ü-schlüssel', '0']) {
      const expected = shardForKey(shards, key)!;
      // Kinesis's own placement: the MD5 of the key as a 128-bit big-endian integer, in the shard's range.
      const direct = await client.send(new PutRecordCommand({ StreamName: name, PartitionKey: key, Data: Buffer.from('direct') }));
      expect(direct.ShardId).toBe(expected.id);
      const r = await core!.call('topics/produce', { connectionId, topic: name, key, value: `via brokerdeck ${key}` });
      expect(r).toMatchObject({ published: 1, rejected: 0, positions: [{ partition: expected.index, id: expected.id, position: expect.stringMatching(/^\d+$/) }] });
      expect(hashKeyOf(key) >= expected.hashStart && hashKeyOf(key) <= expected.hashEnd).toBe(true);
    }
  });

  it('publishes many records in PutRecords batches of 500, each to its key\'s shard, in order, and honours an explicit hash key and a partition', async (ctx) => {
    kinesis.require(ctx);
    const name = await stream(3);
    const shards = await sdkShards(name);
    const many = await core!.call('topics/produce', { connectionId, topic: name, key: 'k-{{i}}', value: '{"n":{{i}}}', count: 1_100 });
    expect(many).toMatchObject({ published: 1_100, rejected: 0 });
    expect(many.failures).toBeUndefined();
    many.positions!.forEach((p, i) => expect(p.id, `copy ${i + 1}`).toBe(shardForKey(shards, `k-${i + 1}`)!.id));
    // What a browse of all shards reads back is exactly what was published, each record where the result said.
    const { records } = await browseAll({ topic: name, limit: 1_000 });
    expect(records).toHaveLength(1_100);
    const published = new Map(many.positions!.map((p, i) => [p.position, { ...p, copy: i + 1 }]));
    for (const r of records) {
      const p = published.get(r.position!)!;
      expect(r).toMatchObject({ partition: p.partition, key: `k-${p.copy}`, value: `{"n":${p.copy}}`, valueEncoding: 'utf8' });
    }
    const hashKey = shards[2]!.hashStart.toString();
    const explicit = await core!.call('topics/produce', { connectionId, topic: name, key: 'any-{{i}}', value: 'x', count: 5, explicitHashKey: hashKey });
    expect(explicit.positions!.map((p) => p.partition)).toEqual([2, 2, 2, 2, 2]);
    const byPartition = await core!.call('topics/produce', { connectionId, topic: name, key: 'any-{{i}}', value: 'x', count: 5, partition: 1 });
    expect(byPartition.positions!.map((p) => p.id)).toEqual(Array(5).fill(shards[1]!.id));
    await expect(core!.call('topics/produce', { connectionId, topic: name, value: 'x', explicitHashKey: String(1n << 128n) })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'explicitHashKey' });
    await expect(core!.call('topics/produce', { connectionId, topic: name, value: 'x', headers: { a: 'b' } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'headers' });
    await expect(core!.call('topics/produce', { connectionId, topic: name, key: 'k'.repeat(257), value: 'x' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'key' });
  });
});

describe('Kinesis browsing', () => {
  let name = '';
  let shards: ShardEntry[] = [];
  let sent: Array<{ shardId: string; seq: string; key: string; data: string }> = [];
  const inShard = (i: number) => sent.filter((s) => s.shardId === shards[i]!.id);

  beforeAll(async () => {
    if (!kinesis.server) return;
    name = await stream(3);
    shards = await sdkShards(name);
    const records = Array.from({ length: 30 }, (_, i) => ({ key: `customer-${i}`, data: JSON.stringify({ n: i, kind: i % 3 === 0 ? 'refund' : 'sale' }) }));
    sent = [...(await put(name, records.slice(0, 15))), ...(await put(name, records.slice(15)))];
    // A record that is not text travels as base64.
    const bin = await client.send(new PutRecordCommand({ StreamName: name, PartitionKey: 'binary', Data: Buffer.from([0xff, 0x00, 0xfe]) }));
    sent.push({ shardId: bin.ShardId!, seq: bin.SequenceNumber!, key: 'binary', data: '' });
  });

  it('reads a shard from TRIM_HORIZON in order, with sequence numbers as positions, and a second read sees the same', async (ctx) => {
    kinesis.require(ctx);
    const shard = sent.find((s) => s.key === 'binary')!.shardId;
    const index = shards.findIndex((s) => s.id === shard);
    const first = await browse({ topic: name, partition: index, limit: 100 });
    expect(first.messages.map((m) => m.position)).toEqual(inShard(index).map((s) => s.seq));
    expect(first.messages.map((m) => m.offset)).toEqual(first.messages.map((_, i) => i));
    expect(first).toMatchObject({ complete: true, scanned: inShard(index).length });
    expect(first.messages.find((m) => m.key === 'binary')).toMatchObject({ value: Buffer.from([0xff, 0x00, 0xfe]).toString('base64'), valueEncoding: 'base64', size: 3 + 6 });
    const text = first.messages.find((m) => m.key !== 'binary')!;
    expect(text).toMatchObject({ partition: index, valueEncoding: 'utf8', timestamp: expect.any(Number) });
    // Reading consumed nothing: the same read again sees the same records, and the stream is as it was.
    const summary = (await client.send(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary;
    const second = await browse({ topic: name, partition: index, limit: 100 });
    expect(second.messages).toEqual(first.messages);
    expect((await client.send(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary).toEqual(summary);
  });

  it('starts at a sequence number (with or without the partition), at a time, and at LATEST with a cursor that then sees new records', async (ctx) => {
    kinesis.require(ctx);
    const index = shards.findIndex((s) => inShard(shards.indexOf(s)).length >= 3);
    const records = inShard(index);
    const at = await browse({ topic: name, partition: index, position: records[2]!.seq });
    expect(at.messages.map((m) => m.position)).toEqual(records.slice(2).map((s) => s.seq));
    // Without a partition the shard holding the sequence number is found, and only it is read.
    const found = await browse({ topic: name, position: records[1]!.seq });
    expect(found.messages.map((m) => m.position)).toEqual(records.slice(1).map((s) => s.seq));
    expect(new Set(found.messages.map((m) => m.partition))).toEqual(new Set([index]));

    const all = await browse({ topic: name, partition: index });
    const t = all.messages[2]!.timestamp;
    const byTime = await browse({ topic: name, partition: index, timestamp: t });
    expect(byTime.messages.length).toBeGreaterThan(0);
    expect(byTime.messages.every((m) => m.timestamp >= t)).toBe(true);
    expect(byTime.messages.map((m) => m.position)).toEqual(all.messages.filter((m) => m.timestamp >= t).map((m) => m.position));

    const latest = await browse({ topic: name, partition: index, seek: 'latest' });
    // Nothing more for now (as at the end of a Kafka partition); the resume cursor reads what comes later.
    expect(latest).toMatchObject({ messages: [], complete: true, nextCursor: null, resumeCursor: expect.any(String) });
    const key = 'fresh';
    const fresh = await client.send(
      new PutRecordCommand({ StreamName: name, PartitionKey: key, ExplicitHashKey: shards[index]!.hashStart.toString(), Data: Buffer.from('after latest') }),
    );
    const after = await browse({ topic: name, partition: index, cursor: latest.resumeCursor });
    expect(after.messages.map((m) => [m.position, m.value])).toEqual([[fresh.SequenceNumber, 'after latest']]);
    sent.push({ shardId: fresh.ShardId!, seq: fresh.SequenceNumber!, key, data: 'after latest' });
  });

  it('pages across every shard in ListShards order by cursor, each record once', async (ctx) => {
    kinesis.require(ctx);
    const { records, pages } = await browseAll({ topic: name, limit: 7 });
    expect(pages).toBeGreaterThan(4);
    const expected = shards.flatMap((_, i) => inShard(i).map((s) => s.seq));
    expect(records.map((r) => r.position)).toEqual(expected);
    expect(records.map((r) => r.offset)).toEqual(expected.map((_, i) => i));
    expect(records.map((r) => r.partition)).toEqual([...records.map((r) => r.partition)].sort((a, b) => a - b));
  });

  it('filters by text, key and JSON path, counting what it scanned', async (ctx) => {
    kinesis.require(ctx);
    const refunds = await browseAll({ topic: name, jsonPath: '$.kind', jsonEquals: '"refund"' });
    expect(refunds.records.map((r) => JSON.parse(r.value!).n).sort((a: number, b: number) => a - b)).toEqual([0, 3, 6, 9, 12, 15, 18, 21, 24, 27]);
    const byKey = await browse({ topic: name, key: 'customer-7' });
    const first = await browse({ topic: name, q: '"n":7,' });
    expect(byKey.messages.map((m) => m.key)).toEqual(['customer-7']);
    expect(byKey.scanned).toBeGreaterThan(1);
    expect(first.messages.map((m) => m.key)).toEqual(['customer-7']);
    await expect(browse({ topic: name, propertyName: 'x' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'propertyName' });
  });

  it('refuses what cannot be read with errors naming the field', async (ctx) => {
    kinesis.require(ctx);
    await expect(browse({ topic: 'missing-stream' })).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'topic', message: expect.stringContaining('"missing-stream"') });
    await expect(browse({ topic: name, partition: 3 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'partition' });
    await expect(browse({ topic: name, offset: 5 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'offset' });
    await expect(browse({ topic: name, position: 'abc' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'position' });
    await expect(browse({ topic: name, position: '1', partition: 0 })).rejects.toMatchObject({ field: 'position' });
    await expect(browse({ topic: name, position: sent[0]!.seq, seek: 'latest' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(browse({ topic: name, cursor: 'nonsense' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'cursor' });
    const page = await browse({ topic: name, limit: 1 });
    await expect(browse({ topic: name, partition: 1, cursor: page.nextCursor })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'cursor' });
  });
});

describe('Kinesis live tail', () => {
  it('hands on records as they arrive in any open shard, from LATEST, and stops when asked', async (ctx) => {
    const server = kinesis.require(ctx);
    const name = await stream(2);
    const shards = await sdkShards(name);
    const tailing = new KinesisConnector('c-tail', awsConfig('kinesis', server) as never, testDeps(), { tailPollMs: 100 });
    const got: Array<RecordView & { topic: string }> = [];
    const stop = tailing.tail(name, undefined, (r) => got.push(r));
    try {
      // The tail starts at LATEST once its iterators exist: a probe is sent until one arrives.
      await expect.poll(async () => {
        await client.send(new PutRecordCommand({ StreamName: name, PartitionKey: 'probe', Data: Buffer.from('probe') }));
        return got.length;
      }).toBeGreaterThan(0);
      const sent = await put(name, [0, 1, 2, 3, 4, 5].map((i) => ({ key: `tail-${i}`, data: `live ${i}` })));
      await expect.poll(() => got.filter((r) => r.key?.startsWith('tail-')).length).toBe(6);
      const live = got.filter((r) => r.key?.startsWith('tail-'));
      for (const s of sent) {
        expect(live.find((r) => r.position === s.seq)).toMatchObject({ topic: name, key: s.key, value: s.data, partition: shards.findIndex((x) => x.id === s.shardId) });
      }
    } finally {
      stop();
      await tailing.close();
    }
    const before = got.length;
    await put(name, [{ key: 'after-stop', data: 'not seen' }]);
    // A browse reads the record: the stopped tail, which would have read it within 100 ms, did not hand it on.
    await expect.poll(async () => (await browseAll({ topic: name })).records.some((r) => r.key === 'after-stop')).toBe(true);
    expect(got.length).toBe(before);
  });
});

describe('Kinesis consumers and read-only', () => {
  it('lists registered consumers as groups without lag, and refuses writes on a read-only connection', async (ctx) => {
    const server = kinesis.require(ctx);
    const name = await stream(1);
    const arn = (await client.send(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary!.StreamARN!;
    await client.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: 'billing' }));
    await expect.poll(async () => (await core!.call('groups/list', { connectionId })).find((g) => g.groupId === `${name}/billing`)?.state).toBe('ACTIVE');
    expect(await core!.call('groups/get', { connectionId, groupId: `${name}/billing` })).toEqual({ groupId: `${name}/billing`, state: 'ACTIVE', members: [], partitions: [], totalLag: 0 });
    await expect(core!.call('groups/get', { connectionId, groupId: `${name}/nobody` })).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'groupId' });
    await expect(core!.call('groups/get', { connectionId, groupId: 'no-slash' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'groupId' });

    const readOnly = new KinesisConnector('c-ro', { ...awsConfig('kinesis', server), readOnly: true } as never, testDeps());
    try {
      await expect(readOnly.produce({ topic: name, value: 'x', valueEncoding: 'utf8', headers: {}, count: 1 } as never)).rejects.toMatchObject({ code: 'FORBIDDEN' });
      expect((await readOnly.browseTopic({ topic: name, limit: 10 } as never)).messages).toEqual([]);
    } finally {
      await readOnly.close();
    }
  });
});
