/**
 * Kinesis connector benchmark against kinesis-local on loopback
 * (KINESIS_ENDPOINT, or one started with tests/aws/aws.mjs and stopped at the
 * end): a scan of a 4-shard stream of 10,000 records through the connector
 * (every record, by cursor, and with a filter that matches 1 %), beside the raw
 * SDK's GetShardIterator/GetRecords loop over the same shards in the same run;
 * and publishing 10,000 records with PutRecords through the connector beside the
 * SDK sending the same batches, each into a fresh stream of its own.
 *
 * kinesis-local keeps each stream in memory and slows as a stream grows (a put
 * into a stream of 40,000 records costs several times one into an empty one), so
 * the sizes stay small and every comparison runs on streams of the same size.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateStreamCommand, DescribeStreamSummaryCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient, ListShardsCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { KinesisConnector } from '../../src-main/connectors/kinesis/index.js';
import type { KinesisConnectionConfig } from '../../src-main/contract/operations.js';
import { silentLogger } from '../../src-main/ground/logger.js';
import { parseLines, runAwsScript } from '../aws/control.js';
import type { BenchResult as Result } from './bench-result.js';

const RECORDS = 10_000;
const SHARDS = 4;
const PUBLISH = 2_000;
const credentials = { accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'test', secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'test' };
const region = process.env.AWS_REGION ?? 'us-east-1';

const round = (v: number, digits = 0) => Math.round(v * 10 ** digits) / 10 ** digits;

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

function value(i: number): Buffer {
  return Buffer.from(JSON.stringify({ n: i, kind: i % 100 === 0 ? 'refund' : 'sale', pad: 'x'.repeat(160) }));
}

async function createStream(client: KinesisClient, name: string, shards: number): Promise<void> {
  await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
  for (let i = 0; i < 600; i++) {
    const s = await client.send(new DescribeStreamSummaryCommand({ StreamName: name }));
    if (s.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`stream ${name} did not become ACTIVE`);
}

async function putAll(client: KinesisClient, stream: string, count: number): Promise<void> {
  const inflight: Array<Promise<unknown>> = [];
  for (let start = 0; start < count; start += 500) {
    const records = Array.from({ length: Math.min(500, count - start) }, (_, k) => ({ PartitionKey: `key-${start + k}`, Data: value(start + k) }));
    inflight.push(
      client.send(new PutRecordsCommand({ StreamName: stream, Records: records })).then((r) => {
        if (r.FailedRecordCount) throw new Error(`${r.FailedRecordCount} records failed`);
      }),
    );
    if (inflight.length >= 4) await inflight.shift();
  }
  await Promise.all(inflight);
}

/** What a hand-written reader does: every shard from TRIM_HORIZON with GetRecords of 10,000 until the tip. */
async function rawScan(client: KinesisClient, stream: string): Promise<number> {
  const shards = (await client.send(new ListShardsCommand({ StreamName: stream }))).Shards ?? [];
  let n = 0;
  for (const shard of shards) {
    let it = (await client.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: shard.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    while (it) {
      const r = await client.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10_000 }));
      n += r.Records?.length ?? 0;
      if ((r.Records?.length ?? 0) === 0 && r.MillisBehindLatest === 0) break;
      it = r.NextShardIterator;
    }
  }
  return n;
}

async function connectorScan(c: KinesisConnector, stream: string, filter: Record<string, string>): Promise<{ scanned: number; matched: number }> {
  let cursor: string | undefined;
  let scanned = 0;
  let matched = 0;
  do {
    const page = await c.browseTopic({ topic: stream, limit: 10_000, ...(cursor ? { cursor } : {}), ...filter } as never);
    scanned += page.scanned;
    matched += page.matched;
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return { scanned, matched };
}

export async function run(): Promise<Result[]> {
  const stateFile = join(tmpdir(), 'brokerdeck-aws', `bench-kinesis-${process.pid}-${Date.now()}.json`);
  let endpoint = process.env.KINESIS_ENDPOINT ?? null;
  let started = false;
  if (!endpoint) {
    const r = await runAwsScript(['start', 'kinesis', '--state', stateFile], 600_000);
    endpoint = parseLines(r.stdout).KINESIS_ENDPOINT ?? null;
    if (!endpoint) return [{ name: 'Kinesis benchmarks skipped', value: 0, unit: '', notes: parseLines(r.stdout).KINESIS_UNAVAILABLE ?? r.stderr.trim().split('\n').slice(-3).join(' | ') }];
    started = true;
  }
  const client = new KinesisClient({ endpoint, region, credentials, requestHandler: new NodeHttpHandler() });
  const config: KinesisConnectionConfig = { kind: 'kinesis', name: 'bench', endpoint, region, ...credentials, readOnly: false } as KinesisConnectionConfig;
  const connector = new KinesisConnector('bench', config, { logger: silentLogger, audit: { record: () => {}, list: () => [] } } as never);
  const results: Result[] = [];
  try {
    const stream = `bench-scan-${Date.now().toString(36)}`;
    await createStream(client, stream, SHARDS);
    const fill = await timed(() => putAll(client, stream, RECORDS));
    results.push({ name: `Kinesis fill: ${RECORDS} records with the SDK (PutRecords of 500, 4 in flight)`, value: round(RECORDS / (fill.ms / 1000)), unit: 'records/s' });

    // Alternated, raw first, so neither side gets a warmer server.
    const raw: number[] = [];
    const mine: number[] = [];
    const filtered: number[] = [];
    for (let round_ = 0; round_ < 2; round_++) {
      const r = await timed(() => rawScan(client, stream));
      if (r.value !== RECORDS) throw new Error(`the raw scan read ${r.value} of ${RECORDS}`);
      raw.push(RECORDS / (r.ms / 1000));
      const c = await timed(() => connectorScan(connector, stream, {}));
      if (c.value.scanned !== RECORDS) throw new Error(`the connector read ${c.value.scanned} of ${RECORDS}`);
      mine.push(RECORDS / (c.ms / 1000));
      const f = await timed(() => connectorScan(connector, stream, { jsonPath: '$.kind', jsonEquals: '"refund"' }));
      if (f.value.matched !== RECORDS / 100) throw new Error(`the filtered scan matched ${f.value.matched}`);
      filtered.push(f.value.scanned / (f.ms / 1000));
    }
    const best = (xs: number[]) => Math.max(...xs);
    results.push({ name: `Kinesis scan: raw SDK GetRecords loop, ${RECORDS} records over ${SHARDS} shards`, value: round(best(raw)), unit: 'records/s' });
    results.push({
      name: `Kinesis scan: connector browse by cursor (pages of 10,000), same stream`,
      value: round(best(mine)),
      unit: 'records/s',
      target: '>= 50% of the raw SDK loop',
      pass: best(mine) >= 0.5 * best(raw),
      notes: `${round((100 * best(mine)) / best(raw))} % of the raw loop`,
    });
    results.push({ name: 'Kinesis scan: connector browse with a JSON-path filter matching 1 %', value: round(best(filtered)), unit: 'records/s scanned' });

    // Publishing: the connector's PutRecords batches beside the SDK's, one request at a time for both,
    // each into an empty stream of its own, alternated twice; the better of each counts.
    const sdkMs: number[] = [];
    const pubMs: number[] = [];
    for (let round_ = 0; round_ < 2; round_++) {
      const sdkTarget = `bench-put-sdk-${round_}-${Date.now().toString(36)}`;
      const target = `bench-put-${round_}-${Date.now().toString(36)}`;
      await createStream(client, sdkTarget, SHARDS);
      await createStream(client, target, SHARDS);
      const sdk = await timed(async () => {
        for (let start = 0; start < PUBLISH; start += 500) {
          await client.send(new PutRecordsCommand({ StreamName: sdkTarget, Records: Array.from({ length: 500 }, (_, k) => ({ PartitionKey: `p-${start + k + 1}`, Data: value(0) })) }));
        }
      });
      sdkMs.push(sdk.ms);
      const pub = await timed(() => connector.produce({ topic: target, key: 'p-{{i}}', value: value(0).toString(), valueEncoding: 'utf8', headers: {}, count: PUBLISH } as never));
      if (pub.value.published !== PUBLISH) throw new Error(`published ${pub.value.published} of ${PUBLISH}`);
      pubMs.push(pub.ms);
    }
    const sdk = { ms: Math.min(...sdkMs) };
    const pub = { ms: Math.min(...pubMs) };
    results.push({ name: `Kinesis publish: SDK PutRecords of 500, one at a time, ${PUBLISH} records`, value: round(PUBLISH / (sdk.ms / 1000)), unit: 'records/s' });
    results.push({
      name: `Kinesis publish: connector produce of ${PUBLISH} copies (placeholders, shard of each reported)`,
      value: round(PUBLISH / (pub.ms / 1000)),
      unit: 'records/s',
      target: '>= 80% of the SDK rate',
      pass: sdk.ms / pub.ms >= 0.8,
      notes: `${round((100 * sdk.ms) / pub.ms)} % of the SDK rate`,
    });
  } finally {
    await connector.close();
    client.destroy();
    if (started) await runAwsScript(['stop', '--state', stateFile], 60_000);
  }
  return results;
}
