/**
 * A topic of many small records (KAFKA_WIRE_BENCH_BIG_RECORDS, default
 * 10,000,000 × 100 bytes, one partition) on the embedded broker and on a real
 * Kafka: the broker process's resident memory with the topic present and after
 * a consumer has read from the middle to the end, and how long a connected
 * client waits for the first record at the middle offset.
 *
 * Both brokers are filled the same way, by Kafka's kafka-producer-perf-test in
 * large batches over the wire, and then restarted, so that the memory measured
 * is that of a broker opening a data folder holding the topic, not what the
 * filling left behind. The embedded broker runs in a process of its own
 * (kafka-wire-child.ts, bundled with esbuild) so that its RSS is the broker's
 * alone; the real Kafka's is its JVM's.
 *
 * The first-record time is one Fetch request (v11, max 1 MiB for the
 * partition, as a Java consumer asks) at the middle offset, timed from writing
 * it on a socket that has already exchanged ApiVersions and Metadata to having
 * read the whole response, which must hold a complete batch containing that
 * offset. One Fetch at offset 0 goes before it (timed apart): a broker's
 * first Fetch after its start pays one-time costs that are not the seek's. The read-through that follows fetches the same way until the high
 * watermark.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = join(import.meta.dirname, '..', '..');

/** The child script bundled into `dir`; native modules stay in node_modules. */
export async function buildChild(dir: string): Promise<string> {
  const outfile = join(dir, 'kafka-wire-child.cjs');
  await build({
    entryPoints: [join(import.meta.dirname, 'kafka-wire-child.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile,
    external: ['better-sqlite3', 'snappy', 'lz4-napi', '@node-rs/crc32', 'fzstd'],
    logLevel: 'error',
  });
  return outfile;
}

function runChild(child: string, args: string[], until: RegExp): { proc: ChildProcess; found: Promise<RegExpExecArray> } {
  const proc = spawn(process.execPath, [child, ...args], { env: { ...process.env, NODE_PATH: join(root, 'node_modules') }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const found = new Promise<RegExpExecArray>((resolve, reject) => {
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = until.exec(out);
      if (m) resolve(m);
    });
    proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    proc.on('exit', (code) => reject(new Error(`broker child (${args[0]}) exited with ${code}: ${err.slice(-2000)}`)));
  });
  return { proc, found };
}

/** Appends `count` records of `valueBytes` to a new one-partition topic through the engine, in a child process, before any listener runs. */
export async function fillThroughEngine(child: string, dataDir: string, topic: string, count: number, valueBytes: number): Promise<number> {
  const { found } = runChild(child, ['fill', dataDir, topic, String(count), String(valueBytes)], /FILLED \d+ (\d+)/);
  return Number((await found)[1]);
}

export interface ChildBroker {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

/** The broker with its Kafka listener in a child process on the data folder; stop() sends SIGTERM and waits for the exit. */
export async function startChildBroker(child: string, dataDir: string): Promise<ChildBroker> {
  const { proc, found } = runChild(child, ['serve', dataDir], /PORT (\d+)/);
  const port = Number((await found)[1]);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    pid: proc.pid!,
    port,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A process's resident set and its peak, in MB (MiB), from /proc. */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** One plain Kafka connection sending requests one at a time (header v1, non-flexible versions). */
export class RawKafka {
  private data: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private correlation = 0;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.data = this.data.length ? Buffer.concat([this.data, chunk]) : chunk;
      if (this.data.length >= 4 && this.data.length >= 4 + this.data.readInt32BE(0)) {
        const size = this.data.readInt32BE(0);
        const frame = this.data.subarray(4, 4 + size);
        this.data = this.data.subarray(4 + size);
        const w = this.waiting;
        this.waiting = null;
        w?.resolve(frame);
      }
    });
    const fail = (error: Error) => {
      const w = this.waiting;
      this.waiting = null;
      w?.reject(error);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  static connect(port: number): Promise<RawKafka> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.setNoDelay(true);
      socket.once('connect', () => resolve(new RawKafka(socket)));
      socket.once('error', reject);
    });
  }

  /** Sends one request and resolves with the response body after its correlation id. */
  request(apiKey: number, version: number, body: Buffer): Promise<Buffer> {
    if (this.waiting) throw new Error('one request at a time');
    const id = ++this.correlation;
    const clientId = Buffer.from('brokerdeck-bench');
    const header = Buffer.alloc(14);
    header.writeInt32BE(10 + clientId.length + body.length, 0);
    header.writeInt16BE(apiKey, 4);
    header.writeInt16BE(version, 6);
    header.writeInt32BE(id, 8);
    header.writeInt16BE(clientId.length, 12);
    const answer = new Promise<Buffer>((resolve, reject) => (this.waiting = { resolve, reject }));
    this.socket.write(Buffer.concat([header, clientId, body]));
    return answer.then((frame) => {
      if (frame.readInt32BE(0) !== id) throw new Error(`response correlation id ${frame.readInt32BE(0)}, expected ${id}`);
      return frame.subarray(4);
    });
  }

  /** ApiVersions v0 and Metadata v1 for the topic: what a client asks before it fetches. */
  async prepare(topic: string): Promise<void> {
    await this.request(18, 0, Buffer.alloc(0));
    const name = Buffer.from(topic);
    const body = Buffer.alloc(6 + name.length);
    body.writeInt32BE(1, 0);
    body.writeInt16BE(name.length, 4);
    name.copy(body, 6);
    await this.request(3, 1, body);
  }

  /** Fetch v11 of one partition from `offset` (max wait 500 ms, min 1 byte). */
  async fetch(topic: string, partition: number, offset: number, partitionMaxBytes = 1_048_576): Promise<FetchAnswer> {
    const name = Buffer.from(topic);
    const body = Buffer.alloc(4 + 4 + 4 + 4 + 1 + 4 + 4 + 4 + 2 + name.length + 4 + 4 + 4 + 8 + 8 + 4 + 4 + 2);
    let p = 0;
    p = body.writeInt32BE(-1, p); // replica id
    p = body.writeInt32BE(500, p); // max wait ms
    p = body.writeInt32BE(1, p); // min bytes
    p = body.writeInt32BE(52_428_800, p); // max bytes
    p = body.writeInt8(0, p); // isolation: read uncommitted
    p = body.writeInt32BE(0, p); // session id
    p = body.writeInt32BE(-1, p); // session epoch: no session
    p = body.writeInt32BE(1, p); // topics
    p = body.writeInt16BE(name.length, p);
    p += name.copy(body, p);
    p = body.writeInt32BE(1, p); // partitions
    p = body.writeInt32BE(partition, p);
    p = body.writeInt32BE(-1, p); // current leader epoch
    p = body.writeBigInt64BE(BigInt(offset), p);
    p = body.writeBigInt64BE(-1n, p); // log start offset
    p = body.writeInt32BE(partitionMaxBytes, p);
    p = body.writeInt32BE(0, p); // forgotten topics
    body.writeInt16BE(0, p); // rack id: empty
    return parseFetch(await this.request(1, 11, body));
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface FetchAnswer {
  errorCode: number;
  highWatermark: number;
  /** Complete batches in the answer: the first one's base offset, the last one's last offset, and their records. */
  firstBase: number;
  lastOffset: number;
  records: number;
  bytes: number;
}

function parseFetch(b: Buffer): FetchAnswer {
  let p = 4; // throttle
  const topError = b.readInt16BE(p);
  p += 2 + 4; // error, session id
  if (b.readInt32BE(p) !== 1) throw new Error(`fetch answered ${b.readInt32BE(p)} topics (top-level error ${topError})`);
  p += 4;
  p += 2 + b.readInt16BE(p); // topic name
  p += 4; // partitions (one)
  p += 4; // partition index
  const errorCode = b.readInt16BE(p);
  p += 2;
  const highWatermark = Number(b.readBigInt64BE(p));
  p += 8 + 8 + 8; // high watermark, last stable, log start
  const aborted = b.readInt32BE(p);
  p += 4 + Math.max(0, aborted) * 16;
  p += 4; // preferred read replica
  const size = b.readInt32BE(p);
  p += 4;
  const end = p + Math.max(0, size);
  let firstBase = -1;
  let lastOffset = -1;
  let records = 0;
  while (p + 61 <= end) {
    const base = Number(b.readBigInt64BE(p));
    const length = b.readInt32BE(p + 8);
    if (p + 12 + length > end) break; // a partial batch at the end, as Kafka may send
    if (firstBase < 0) firstBase = base;
    lastOffset = base + b.readInt32BE(p + 23);
    records += b.readInt32BE(p + 57);
    p += 12 + length;
  }
  return { errorCode, highWatermark, firstBase, lastOffset, records, bytes: Math.max(0, size) };
}

export interface BigFigures {
  /** RSS of the broker process with the topic present (restarted, one client connected with metadata), MB. */
  rssOpen: number;
  /** The broker's first Fetch after its start, at offset 0, ms. */
  startMs: number;
  /** The first Fetch at the middle offset (after the one at 0), ms; and a second one at the same offset. */
  firstRecordMs: number;
  againMs: number;
  /** RSS after reading from the middle to the end, and the process's peak, MB. */
  rssAfter: number;
  peakAfter: number;
  /** Records read from the middle to the end, and how fast. */
  readRecords: number;
  readPerSecond: number;
}

/** Measures a broker process (`pid`, listening on `port`) holding `topic` with `count` records in partition 0. */
export async function measureBig(port: number, pid: number, topic: string, count: number): Promise<BigFigures> {
  const middle = Math.floor(count / 2);
  const client = await RawKafka.connect(port);
  try {
    await client.prepare(topic);
    const rssOpen = memoryOf(pid).rss;
    const check = (a: FetchAnswer, what: string) => {
      if (a.errorCode !== 0) throw new Error(`${what}: fetch error code ${a.errorCode}`);
      if (a.highWatermark !== count) throw new Error(`${what}: high watermark ${a.highWatermark}, expected ${count}`);
      if (a.firstBase < 0 || a.firstBase > middle || a.lastOffset < middle) throw new Error(`${what}: batches ${a.firstBase}…${a.lastOffset} do not hold offset ${middle}`);
    };
    // The broker's first Fetch after its start (at offset 0) carries one-time costs, a JVM's
    // warming among them; it is timed apart, so the figure at the middle is the seek's.
    let t0 = performance.now();
    const start = await client.fetch(topic, 0, 0);
    const startMs = performance.now() - t0;
    if (start.errorCode !== 0 || start.firstBase !== 0) throw new Error(`fetch at 0: error ${start.errorCode}, first batch at ${start.firstBase}`);
    t0 = performance.now();
    const first = await client.fetch(topic, 0, middle);
    const firstRecordMs = performance.now() - t0;
    check(first, 'first fetch');
    t0 = performance.now();
    const again = await client.fetch(topic, 0, middle);
    const againMs = performance.now() - t0;
    check(again, 'second fetch');
    let next = first.lastOffset + 1;
    let readRecords = first.lastOffset + 1 - middle;
    t0 = performance.now();
    while (next < count) {
      const a = await client.fetch(topic, 0, next);
      if (a.errorCode !== 0 || a.lastOffset < next) throw new Error(`reading at ${next}: error ${a.errorCode}, batches ${a.firstBase}…${a.lastOffset}`);
      readRecords += a.lastOffset + 1 - next;
      next = a.lastOffset + 1;
    }
    const seconds = (performance.now() - t0) / 1000;
    const after = memoryOf(pid);
    return { rssOpen, startMs, firstRecordMs, againMs, rssAfter: after.rss, peakAfter: after.peak, readRecords, readPerSecond: readRecords / seconds };
  } finally {
    client.close();
  }
}
