/**
 * Produce requests whose record batches are written here, in one pass, for
 * jobs that send many records (re-drives). The client library builds each
 * record through its own growable buffers, which costs more than the rest of
 * a re-drive together; here the batch's size is counted first and its bytes
 * written once into one Buffer (record batch v2, implementation.html).
 *
 * Everything else stays the library's: the connection to each partition
 * leader (TLS, SASL, framing, correlation, timeouts), the idempotent
 * producer id, and the reading of the answer (Produce v9, the first flexible
 * version; brokers older than Kafka 2.4 get the library's own producer).
 *
 * Records carry the producer id, epoch and a sequence per partition, so the
 * broker drops a batch it already has; a sender keeps one request in flight
 * per partition. A request that fails for a passing reason is sent again by
 * the sender with the same sequences (see DirectSender); once it gives up,
 * the sequences are unknown and the caller takes a new producer (and a new
 * sender).
 */
import { crc32c } from '@node-rs/crc32';
import { produceV9, Writer, type Connection, type Producer } from '@platformatic/kafka';
import { ApiError } from '../../contract/errors.js';
import { errorChain, isTransient } from './client.js';
import type { ApiVersions, Fetcher } from './fetcher.js';
import type { EncodedHeaders, RawHeader } from './records.js';

const PRODUCE = 0;
const VERSION = 9;
/** The broker's wait for the replicas (acks=all), as the Java client's `request.timeout.ms`. */
const TIMEOUT_MS = 30_000;
const BATCH_HEADER = 61;
const CRC_START = 21;
const MAX_SEQUENCE = 0x7fffffff;

type ProduceResponse = produceV9.ProduceResponse;

export interface DirectRecord {
  topic: string;
  partition: number;
  key: Buffer | null;
  value: Buffer | null;
  /** Written in order; a null value stays null. Encoded headers (a record read in place) are copied as they are. */
  headers: RawHeader[] | EncodedHeaders;
  /** Written after `headers`. */
  extra: RawHeader[];
  /** Header entries already encoded, written after `extra` (a job's headers that are the same for every record: see `encodeHeaders`). */
  fixed?: EncodedHeaders | undefined;
}

/** Header entries encoded once, as a record holds them, for records that all carry them. */
export function encodeHeaders(headers: RawHeader[]): EncodedHeaders {
  let size = 0;
  for (const [k, v] of headers) size += bytesSize(k) + bytesSize(v);
  const data = Buffer.alloc(size);
  let at = 0;
  for (const [k, v] of headers) at = writeBytes(data, writeBytes(data, at, k), v);
  return { headerData: data, headersStart: 0, headersEnd: size, headerCount: headers.length };
}

export interface ProducerIdentity {
  producerId: bigint;
  producerEpoch: number;
}

function varintSize(n: number): number {
  let z = ((n << 1) ^ (n >> 31)) >>> 0;
  let size = 1;
  while (z >= 0x80) {
    z >>>= 7;
    size++;
  }
  return size;
}

function writeVarint(b: Buffer, at: number, n: number): number {
  let z = ((n << 1) ^ (n >> 31)) >>> 0;
  while (z >= 0x80) {
    b[at++] = (z & 0x7f) | 0x80;
    z >>>= 7;
  }
  b[at++] = z;
  return at;
}

const bytesSize = (x: Buffer | null) => (x === null ? 1 : varintSize(x.length) + x.length);

function writeBytes(b: Buffer, at: number, x: Buffer | null): number {
  if (x === null) return writeVarint(b, at, -1);
  at = writeVarint(b, at, x.length);
  b.set(x, at);
  return at + x.length;
}

function headerCount(headers: RawHeader[] | EncodedHeaders): number {
  return Array.isArray(headers) ? headers.length : headers.headerCount;
}

function recordBodySize(r: DirectRecord, offsetDelta: number): number {
  // attributes, timestampDelta 0, offsetDelta, key, value, header count, headers
  const h = r.headers;
  const fixed = r.fixed;
  let n = 1 + 1 + varintSize(offsetDelta) + bytesSize(r.key) + bytesSize(r.value) + varintSize(headerCount(h) + r.extra.length + (fixed?.headerCount ?? 0));
  if (Array.isArray(h)) for (const [k, v] of h) n += bytesSize(k) + bytesSize(v);
  else n += h.headersEnd - h.headersStart;
  for (const [k, v] of r.extra) n += bytesSize(k) + bytesSize(v);
  if (fixed) n += fixed.headersEnd - fixed.headersStart;
  return n;
}

/**
 * One uncompressed record batch (magic 2) of `records`, all stamped `timestamp`
 * (create time), with the producer's id, epoch and the batch's first sequence.
 */
export function encodeBatch(records: DirectRecord[], timestamp: number, producer: ProducerIdentity, firstSequence: number): Buffer {
  const sizes = new Array<number>(records.length);
  let total = BATCH_HEADER;
  for (let i = 0; i < records.length; i++) {
    const body = recordBodySize(records[i]!, i);
    sizes[i] = body;
    total += varintSize(body) + body;
  }
  const b = Buffer.allocUnsafe(total);
  const ts = BigInt(timestamp);
  b.writeBigInt64BE(0n, 0); // base offset: the broker assigns it
  b.writeInt32BE(total - 12, 8);
  b.writeInt32BE(-1, 12); // partition leader epoch: the broker sets it
  b.writeInt8(2, 16);
  b.writeInt16BE(0, 21); // attributes: no compression, create time, not transactional
  b.writeInt32BE(records.length - 1, 23);
  b.writeBigInt64BE(ts, 27);
  b.writeBigInt64BE(ts, 35);
  b.writeBigInt64BE(producer.producerId, 43);
  b.writeInt16BE(producer.producerEpoch, 51);
  b.writeInt32BE(firstSequence, 53);
  b.writeInt32BE(records.length, 57);
  let at = BATCH_HEADER;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    at = writeVarint(b, at, sizes[i]!);
    b[at++] = 0; // attributes
    b[at++] = 0; // timestamp delta
    at = writeVarint(b, at, i);
    at = writeBytes(b, at, r.key);
    at = writeBytes(b, at, r.value);
    const h = r.headers;
    const fixed = r.fixed;
    at = writeVarint(b, at, headerCount(h) + r.extra.length + (fixed?.headerCount ?? 0));
    if (Array.isArray(h)) for (const [k, v] of h) at = writeBytes(b, writeBytes(b, at, k), v);
    else at += h.headerData.copy(b, at, h.headersStart, h.headersEnd);
    for (const [k, v] of r.extra) at = writeBytes(b, writeBytes(b, at, k), v);
    if (fixed) at += fixed.headerData.copy(b, at, fixed.headersStart, fixed.headersEnd);
  }
  b.writeUInt32BE(crc32c(b.subarray(CRC_START)) >>> 0, 17);
  return b;
}

/**
 * A Produce v9 request body (acks=all) for batches grouped by topic, in the
 * order given, as pieces: the batches are not copied here (the connection
 * joins the pieces once, with the request header).
 */
export function encodeProduceRequest(topics: Map<string, Map<number, Buffer>>): Buffer[] {
  const pieces: Buffer[] = [];
  // The small fields between two batches.
  let bytes: number[] = [];
  const int = (n: number, size: 2 | 4) => {
    for (let shift = (size - 1) * 8; shift >= 0; shift -= 8) bytes.push((n >>> shift) & 0xff);
  };
  const uvarint = (n: number) => {
    while (n >= 0x80) {
      bytes.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    bytes.push(n);
  };
  bytes.push(0); // transactional id: null
  int(-1, 2); // acks: all
  int(TIMEOUT_MS, 4);
  uvarint(topics.size + 1);
  for (const [topic, partitions] of topics) {
    const name = Buffer.from(topic, 'utf8');
    uvarint(name.length + 1);
    for (const c of name) bytes.push(c);
    uvarint(partitions.size + 1);
    for (const [partition, batch] of partitions) {
      int(partition, 4);
      uvarint(batch.length + 1);
      pieces.push(Buffer.from(bytes), batch);
      bytes = [0]; // the partition's tagged fields
    }
    bytes.push(0); // the topic's tagged fields
  }
  bytes.push(0); // the request's tagged fields
  pieces.push(Buffer.from(bytes));
  return pieces;
}

/** Whether the brokers take Produce v9 (Kafka 2.4 and later), by their ApiVersions answer (null: unknown, so no). */
export function directProduceSupported(apis: ApiVersions | null): boolean {
  const produce = apis?.find((a) => a.apiKey === PRODUCE);
  return produce !== undefined && produce.minVersion <= VERSION && produce.maxVersion >= VERSION;
}

function send(connection: Connection, body: Buffer[]): Promise<ProduceResponse> {
  return new Promise((resolve, reject) => {
    connection.send(
      PRODUCE,
      VERSION,
      () => {
        const w = Writer.create();
        for (const piece of body) w.append(piece);
        return w;
      },
      produceV9.parseResponse,
      true,
      true,
      (error: Error | null, response: unknown) => (error ? reject(error) : resolve(response as ProduceResponse)),
    );
  });
}

/** Broker answers that the producer's identity or sequence is no longer known: a new producer is needed, and what landed is unknown. */
const PRODUCER_STATE_LOST = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH', 'INVALID_PRODUCER_ID_MAPPING', 'PRODUCER_FENCED']);

export function producerStateLost(error: unknown): boolean {
  return errorChain(error).some((e) => e.apiId !== undefined && PRODUCER_STATE_LOST.has(e.apiId));
}

/** A partition's part of one send: its records and where they sit in the records given. */
interface Group {
  topic: string;
  partition: number;
  records: DirectRecord[];
  indexes: number[];
}

/** Broker errors after which the batches sent are known to be in the log (Kafka before 2.x answered so). */
const DUPLICATE_SEQUENCE_NUMBER = 46;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends records with one idempotent producer identity: one Produce request per
 * partition leader, a batch per partition, partitions' records in the order given.
 *
 * A request that fails for a passing reason (the leader went away or moved,
 * a timeout) is sent again for the partitions not yet acknowledged, with the
 * same sequence numbers, to the leader fresh metadata names: a batch that did
 * land the first time is recognised by the broker as a duplicate and
 * acknowledged again rather than written twice. That is what idempotence
 * is for, and why a sender is given up (for a new producer) only after that.
 */
export class DirectSender {
  private readonly sequences = new Map<string, number>();

  constructor(
    private readonly producer: Producer,
    private readonly identity: ProducerIdentity,
    private readonly fetcher: Fetcher,
  ) {}

  /**
   * Each record's offset, in the order given (-1 where the broker did not say).
   * Retries passing failures for `retryForMs`, or until `signal` is cancelled;
   * then throws the last failure.
   */
  async send(records: DirectRecord[], signal: { cancelled: boolean } = { cancelled: false }, retryForMs = 0): Promise<number[]> {
    const pending = new Map<string, Group>();
    records.forEach((r, i) => {
      const k = `${r.topic}\u0000${r.partition}`;
      let group = pending.get(k);
      if (!group) pending.set(k, (group = { topic: r.topic, partition: r.partition, records: [], indexes: [] }));
      group.records.push(r);
      group.indexes.push(i);
    });
    const offsets = new Array<number>(records.length).fill(-1);
    const deadline = Date.now() + retryForMs;
    const now = Date.now();
    for (let attempt = 0; ; attempt++) {
      let failure: unknown = null;
      try {
        const byLeader = new Map<number, Group[]>();
        for (const group of pending.values()) {
          const meta = await this.fetcher.topic(group.topic);
          const leader = meta.partitions[group.partition]?.leader;
          if (leader === undefined) throw new ApiError('NOT_FOUND', `topic "${group.topic}" has no partition ${group.partition}`, 'partition');
          const list = byLeader.get(leader) ?? [];
          list.push(group);
          byLeader.set(leader, list);
        }
        await Promise.all(
          [...byLeader].map(async ([node, groups]) => {
            try {
              this.accept(await this.sendTo(node, groups, now), groups, pending, offsets);
            } catch (error) {
              // Partitions the broker did take are taken; the others are asked about again, of fresh metadata.
              const partial = (error as { response?: ProduceResponse }).response;
              if (partial?.responses) this.accept(partial, groups, pending, offsets);
              for (const g of groups) this.fetcher.forget(g.topic);
              failure ??= error;
            }
          }),
        );
      } catch (error) {
        failure = error;
      }
      if (pending.size === 0) return offsets;
      if (!isTransient(failure) || signal.cancelled || Date.now() >= deadline) throw failure;
      await sleep(Math.min(2_000, 100 * 2 ** attempt));
    }
  }

  private async sendTo(node: number, groups: Group[], timestamp: number): Promise<ProduceResponse> {
    const connections = await this.producer.connectToBrokers([node]);
    const connection = connections.get(node);
    if (!connection) throw new ApiError('UNAVAILABLE', `broker ${node}, the leader of ${groups[0]!.topic}, is not in the cluster's metadata`);
    const topics = new Map<string, Map<number, Buffer>>();
    for (const g of groups) {
      const sequence = this.sequences.get(`${g.topic}\u0000${g.partition}`) ?? 0;
      let partitions = topics.get(g.topic);
      if (!partitions) topics.set(g.topic, (partitions = new Map()));
      partitions.set(g.partition, encodeBatch(g.records, timestamp, this.identity, sequence));
    }
    return send(connection, encodeProduceRequest(topics));
  }

  /** Takes the partitions a response acknowledged: their sequences move on and their records get offsets. */
  private accept(response: ProduceResponse, groups: Group[], pending: Map<string, Group>, offsets: number[]): void {
    for (const t of response.responses) {
      for (const p of t.partitionResponses) {
        if (p.errorCode !== 0 && p.errorCode !== DUPLICATE_SEQUENCE_NUMBER) continue;
        const g = groups.find((x) => x.topic === t.name && x.partition === p.index);
        const k = `${t.name}\u0000${p.index}`;
        if (!g || !pending.has(k)) continue;
        pending.delete(k);
        this.sequences.set(k, ((this.sequences.get(k) ?? 0) + g.records.length) % (MAX_SEQUENCE + 1));
        const base = p.errorCode === 0 ? Number(p.baseOffset) : -1;
        if (base >= 0) g.indexes.forEach((index, i) => (offsets[index] = base + i));
      }
    }
  }
}
