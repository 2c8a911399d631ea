/**
 * Re-driving dead letters: records of a dead-letter topic are produced again
 * to the topic each came from (Spring's `kafka_dlt-original-topic`, Kafka
 * Connect's `__connect.errors.topic`, else the topic the dead-letter topic's
 * name points at), or to a chosen topic, keeping key, value and headers and
 * adding `x-redriven-from` (`<dlt>:<partition>:<offset>`), `x-redriven-job`
 * and `x-redriven-at`.
 *
 * Selection: `messageIds` as `"<partition>:<offset>"` or offset ranges
 * `"<partition>:<from>-<to>"` (inclusive), or `all` (everything in the topic
 * when the job starts); a filter narrows either. `target.exchange` names the
 * topic to write to instead of the original; `target.routingKey`, when not
 * empty, replaces the key.
 *
 * Exactly once, as far as Brokerdeck can see to it:
 * - a record already in the ledger (see ledger.ts) is skipped, so running the
 *   same selection twice does not re-drive it twice;
 * - a batch is entered in the ledger only after the broker acknowledged it
 *   (acks=all), so a failure never loses a record;
 * - when a send fails in a way that leaves its outcome unknown (the broker
 *   went away mid-request), the job waits for the broker, reads the target
 *   partitions from where it last knew their end, and drops from the retry
 *   the records that did land (recognised by their `x-redriven-*` headers).
 *   It keeps trying for `outageTimeoutMs` before the job fails.
 */
import { Consumer, Producer, type Admin } from '@platformatic/kafka';
import { ApiError } from '../../contract/errors.js';
import type { MessageFilter } from '../../contract/operations.js';
import type { RedriveJob } from '../../contract/types.js';
import type { FinalJobState, JobControl, Jobs } from '../../jobs/jobs.js';
import { redriveJobs, startingRedrive, type TrackedRedrive } from '../../jobs/redrives.js';
import type { Logger } from '../../ground/logger.js';
import type { Args } from '../connector.js';
import type { AuditLog } from '../deps.js';
import { classify, isTransient } from './client.js';
import type { DeadLetterNaming } from './deadletters.js';
import type { Fetcher } from './fetcher.js';
import { RedriveLedger } from './ledger.js';
import { decodeHeaders, FetchedRecord, lastHeaderText } from './direct-fetch.js';
import { DirectSender, directProduceSupported, encodeHeaders, producerStateLost, type DirectRecord } from './direct-produce.js';
import { CHUNK_BYTES, javaPartition, sendRecords } from './produce.js';
import type { RawHeader, RawRecord } from './records.js';
import { compileRecordFilter, matches, PartitionStream } from './scanner.js';

export const HEADER_FROM = 'x-redriven-from';
export const HEADER_JOB = 'x-redriven-job';
export const HEADER_AT = 'x-redriven-at';

const BATCH = 2_000;
/** Bytes of a partition's first read of the dead-letter topic: small enough that the first sends start early. */
const FIRST_READ_BYTES = 1024 * 1024;
/** Bytes of the reads after it: fewer round trips (100,000 records of 1 KiB moved about a tenth faster than with 1 MiB reads). */
const READ_BYTES = 4 * 1024 * 1024;
/**
 * Producers a job writes with, each owning the target partitions whose number
 * modulo LANES is its own. One producer has a single produce request in flight
 * (its idempotent sequence numbers advance only with an answer), so several
 * keep the broker busy while each target partition still receives its
 * records in order, from one producer.
 */
const LANES = 3;
export const DEFAULT_OUTAGE_TIMEOUT_MS = 120_000;

export interface KafkaRedriveJob extends RedriveJob {
  /** Records the ledger says were re-driven before: left alone. */
  skipped: number;
}

export type RedriveArgs = Args<'redrives/start'> & {
  /** Re-drive even records the ledger says were re-driven already. */
  force?: boolean;
};

export interface RedriveContext {
  connectionId: string;
  admin: Admin;
  fetcher: Fetcher;
  /** A fresh idempotent producer; the job closes it. */
  newProducer(): Producer;
  naming: DeadLetterNaming;
  audit: AuditLog;
  logger: Logger;
  outageTimeoutMs: number;
}

type Ranges = Map<number, Array<[number, number]>>;

/** `"0:17"` and `"0:10-20"` → per partition, sorted merged inclusive ranges. */
export function parseSelection(ids: string[]): Ranges {
  const out: Ranges = new Map();
  for (const id of ids) {
    const m = /^(\d+):(\d+)(?:-(\d+))?$/.exec(id.trim());
    if (!m) throw new ApiError('INVALID_ARGUMENT', `messageIds: "${id}" is not "<partition>:<offset>" or "<partition>:<from>-<to>"`, 'messageIds');
    const p = Number(m[1]);
    const a = Number(m[2]);
    const b = m[3] === undefined ? a : Number(m[3]);
    if (b < a) throw new ApiError('INVALID_ARGUMENT', `messageIds: range "${id}" ends before it starts`, 'messageIds');
    const list = out.get(p) ?? [];
    list.push([a, b]);
    out.set(p, list);
  }
  for (const [p, list] of out) {
    list.sort((x, y) => x[0] - y[0]);
    const merged: Array<[number, number]> = [];
    for (const r of list) {
      const last = merged[merged.length - 1];
      if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
      else merged.push([r[0], r[1]]);
    }
    out.set(p, merged);
  }
  return out;
}

function describeSelection(a: RedriveArgs): string {
  const parts: string[] = [];
  if (a.all) parts.push('all');
  if (a.messageIds?.length) parts.push(a.messageIds.length <= 20 ? a.messageIds.join(', ') : `${a.messageIds.length} ids: ${a.messageIds.slice(0, 20).join(', ')}…`);
  if (a.filter && Object.keys(a.filter).length > 0) parts.push(`filter ${JSON.stringify(a.filter)}`);
  if (a.edit) parts.push('edited');
  if (a.force) parts.push('forced');
  return parts.join('; ');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Limiter {
  private readonly start = Date.now();
  private sent = 0;
  constructor(private readonly rate: number | null) {}
  async take(n: number, signal: { cancelled: boolean }): Promise<void> {
    if (!this.rate) return;
    this.sent += n;
    const due = this.start + (this.sent / this.rate) * 1000;
    while (!signal.cancelled && Date.now() < due) await sleep(Math.min(100, due - Date.now()));
  }
}

interface Lane {
  producer: Producer;
  /**
   * Resolves once the producer has its id: to the sender that writes the lane's batches itself, or
   * to null where the library's producer sends them (brokers before Kafka 2.4, or no id: the first
   * send then reports why).
   */
  ready: Promise<DirectSender | null>;
  batch: Array<{ from: RawRecord; out: DirectRecord }>;
  bytes: number;
  sending: Promise<void>;
}

const EMPTY = Buffer.alloc(0);

/**
 * Sends a batch with the lane's own sender (which retries passing failures with the same
 * sequence numbers for `retryForMs`), else with the library's producer; each record's offset.
 */
async function sendBatch(l: Lane, records: DirectRecord[], signal: { cancelled: boolean }, retryForMs: number): Promise<number[]> {
  const sender = await l.ready;
  if (sender) return sender.send(records, signal, retryForMs);
  return sendRecords(
    l.producer,
    records.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      key: r.key,
      value: r.value,
      headers: [...(Array.isArray(r.headers) ? r.headers : decodeHeaders(r.headers)), ...r.extra, ...(r.fixed ? decodeHeaders(r.fixed) : [])].map(([k, v]) => [k, v ?? EMPTY] as [Buffer, Buffer]),
    })),
    undefined,
  );
}

type Tracked = TrackedRedrive<KafkaRedriveJob>;
type Control = JobControl<Tracked>;

/** The connection's re-drives, on the shared job registry (ids, final states, throttled progress, cancel, retention, the audit row). */
export class Redrives {
  private readonly jobs: Jobs<Tracked, KafkaRedriveJob>;

  constructor(private readonly ctx: RedriveContext) {
    this.jobs = redriveJobs<KafkaRedriveJob>({ idPrefix: 'kr-', audit: ctx.audit, log: ctx.logger });
  }

  list(): KafkaRedriveJob[] {
    return this.jobs.list();
  }

  get(id: string): KafkaRedriveJob | null {
    return this.jobs.get(id);
  }

  /** Resolves once the job reached a final state and let go of its producer (tests, shutdown). */
  async settled(id: string): Promise<KafkaRedriveJob | null> {
    return this.jobs.settled(id);
  }

  cancel(id: string): KafkaRedriveJob | null {
    return this.jobs.cancel(id);
  }

  /** Progress of every job (throttled), and each job's final state. */
  subscribe(listener: (job: KafkaRedriveJob) => void): () => void {
    return this.jobs.subscribe(listener);
  }

  async closeAll(): Promise<void> {
    await this.jobs.cancelAll();
  }

  async start(a: RedriveArgs): Promise<{ id: string }> {
    const { fetcher, naming } = this.ctx;
    const meta = await fetcher.topic(a.source);
    const filter = a.filter ? compileRecordFilter(a.filter as MessageFilter) : null;
    const selection = a.messageIds?.length ? parseSelection(a.messageIds) : null;
    if (selection) {
      for (const p of selection.keys()) {
        if (p >= meta.partitions.length) throw new ApiError('INVALID_ARGUMENT', `messageIds: topic "${a.source}" has no partition ${p}`, 'messageIds');
      }
    }
    if (a.target?.exchange) {
      await fetcher.topic(a.target.exchange).catch((error: unknown) => {
        throw error instanceof ApiError && error.code === 'NOT_FOUND' ? new ApiError('NOT_FOUND', `re-drive target: ${error.message}`, 'target.exchange') : error;
      });
    }
    const partitions = Array.from({ length: meta.partitions.length }, (_, i) => i);
    const [lows, highs] = await Promise.all([fetcher.offsets(a.source, partitions, -2), fetcher.offsets(a.source, partitions, -1)]);

    // What the job will read: the selected ranges, or the whole topic as it is now.
    const plan: Ranges = new Map();
    let total = 0;
    for (const p of partitions) {
      const low = lows.get(p) ?? 0;
      const high = highs.get(p) ?? 0;
      const ranges = selection ? (selection.get(p) ?? []) : a.all && high > low ? [[low, high - 1] as [number, number]] : [];
      const clipped = ranges.map(([x, y]) => [Math.max(x, low), Math.min(y, high - 1)] as [number, number]).filter(([x, y]) => y >= x);
      if (clipped.length > 0) plan.set(p, clipped);
      for (const [x, y] of clipped) total += y - x + 1;
    }
    if (selection && total === 0) throw new ApiError('NOT_FOUND', `none of the selected records exist in "${a.source}" (deleted by retention, or past its end)`, 'messageIds');

    const fixedTarget = a.target?.exchange || null;
    const job: Tracked = startingRedrive<KafkaRedriveJob>(this.jobs.newId(), {
      connectionId: this.ctx.connectionId,
      source: a.source,
      target: fixedTarget ?? naming.sourceFromName(a.source) ?? '(original topic of each record)',
      total,
      skipped: 0,
      ratePerSecond: a.ratePerSecond ?? null,
      selection: describeSelection(a),
    });
    const control = this.jobs.add(job);
    void control.run(() => this.run(control, a, plan, filter));
    return { id: job.id };
  }

  private async run(running: Control, a: RedriveArgs, plan: Ranges, filter: ReturnType<typeof compileRecordFilter>): Promise<void> {
    const { job } = running;
    const ctx = this.ctx;
    // Why records were not re-driven, with how many each: the job's result says why.
    const problems = new Map<string, number>();
    const notMoved = (why: string) => {
      job.failed++;
      problems.set(why, (problems.get(why) ?? 0) + 1);
      job.error = [...problems].map(([text, n]) => `${n} × ${text}`).join('; ');
    };
    const finish = (state: FinalJobState, error?: string) => {
      if (running.final) return;
      if (error) job.error = job.error ? `${error}; ${job.error}` : error;
      job.total = Math.max(job.total, job.moved + job.failed + job.skipped);
      running.finish(state);
    };

    const targets = new Set<string>();
    const lanes: Lane[] = [];
    // Acknowledged records entered in the ledger whose commit is still to come, and the commit running.
    let uncommitted = 0;
    let committing: Promise<void> | null = null;
    let commitError: unknown = null;
    /** Waits for every send and ledger commit already started, whatever their outcome. */
    const drain = async () => {
      await Promise.allSettled(lanes.map((l) => l.sending));
      while (committing) await committing;
    };
    try {
      running.running();
      const ledger = new RedriveLedger(ctx.admin, a.source, ctx.logger);
      const limiter = new Limiter(a.ratePerSecond ?? null);
      const batchSize = a.ratePerSecond ? Math.max(1, Math.min(BATCH, Math.floor(a.ratePerSecond / 4))) : BATCH;
      // Each target's partition count once known, and the question asked about it (asked once).
      const counts = new Map<string, number>();
      const asking = new Map<string, Promise<number>>();
      const unusableTargets = new Map<string, string>();
      const partitionsOf = (topic: string): Promise<number> => {
        let n = asking.get(topic);
        if (!n) {
          n = ctx.fetcher.partitionCount(topic).then((count) => {
            counts.set(topic, count);
            return count;
          });
          n.catch(() => asking.delete(topic));
          asking.set(topic, n);
        }
        return n;
      };
      /** Per target partition: an offset before which none of this job's in-doubt records can be. */
      const knownEnd = new Map<string, number>();
      let roundRobin = 0;
      const learnEnds = async (topic: string) => {
        const count = await partitionsOf(topic);
        const ends = await this.withRecovery(running, () => ctx.fetcher.offsets(topic, Array.from({ length: count }, (_, i) => i), -1));
        for (const [p, o] of ends) if (!knownEnd.has(`${topic}\u0000${p}`)) knownEnd.set(`${topic}\u0000${p}`, o);
      };
      const open = (): { producer: Producer; ready: Promise<DirectSender | null> } => {
        const producer = ctx.newProducer();
        // The producer id is fetched now, not with the first send, so that round trip overlaps the first read;
        // the brokers' API versions (whether they take the requests DirectSender writes) are the connection's.
        const ready = Promise.all([producer.initIdempotentProducer({}), ctx.fetcher.apis()]).then(
          ([identity, apis]) => (directProduceSupported(apis) ? new DirectSender(producer, identity, ctx.fetcher) : null),
          () => null,
        );
        return { producer, ready };
      };
      const lane = (i: number): Lane => {
        let l = lanes[i];
        if (!l) lanes[i] = l = { ...open(), batch: [], bytes: 0, sending: Promise.resolve() };
        return l;
      };

      // Asked early, beside the ledger: the target topic's partitions and ends when the dead-letter
      // topic's name gives it, and a producer per lane. Not waited for: a name that points at no
      // topic (the records name their own) takes the client several retries to be told so.
      const likelyTarget = a.target?.exchange || ctx.naming.sourceFromName(a.source);
      if (likelyTarget) {
        partitionsOf(likelyTarget)
          .then(async (n) => {
            if (running.final) return;
            for (let i = 0; i < Math.min(LANES, n); i++) lane(i);
            await learnEnds(likelyTarget);
          })
          .catch(() => {});
      }
      await Promise.all([this.withRecovery(running, () => ledger.load()), ledger.prepare().catch(() => {})]);

      /**
       * Ledger commits follow the sends without holding them up: each commit
       * writes everything acknowledged since the one before, and a record counts
       * as moved once the commit holding it is done.
       */
      const commitLoop = async () => {
        try {
          while (uncommitted > 0 && commitError === null) {
            const n = uncommitted;
            uncommitted = 0;
            try {
              await this.withRecovery(running, () => ledger.commit());
            } catch (error) {
              commitError = error;
              return;
            }
            job.moved += n;
            running.progress();
          }
        } finally {
          // Cleared in the same turn as the last check above, so a record acknowledged after it starts a new loop.
          committing = null;
        }
      };
      const acknowledged = (n: number) => {
        uncommitted += n;
        if (!committing && commitError === null) committing = commitLoop();
      };

      const flush = async (l: Lane, batch: Array<{ from: RawRecord; out: DirectRecord }>) => {
        if (batch.length === 0) return;
        await limiter.take(batch.length, running);
        // Everything not yet known to have landed; shrinks when an in-doubt send is resolved.
        let pending = batch;
        for (let attempt = 0; pending.length > 0; attempt++) {
          if (commitError !== null) throw commitError;
          // The end of every target partition before this job first writes to it: one request per new topic.
          const unknown = new Set<string>();
          for (const k of targetPartitions(pending)) if (!knownEnd.has(k)) unknown.add(k.slice(0, k.indexOf('\u0000')));
          for (const topic of unknown) await learnEnds(topic);
          try {
            const offsets = await sendBatch(l, pending.map((x) => x.out), running, ctx.outageTimeoutMs);
            for (const [k, end] of partitionEnds(pending, offsets)) knownEnd.set(k, Math.max(knownEnd.get(k) ?? 0, end));
            pending = [];
          } catch (error) {
            if (!isTransient(error) && !producerStateLost(error)) throw error;
            ctx.logger.warn('re-drive send failed; checking what landed before retrying', { job: job.id, error: classify(error).message });
            // The producer's sequence numbers are unreliable after a failed send: start a new one.
            const old = l.producer;
            Object.assign(l, open());
            void closeQuietly(old);
            const landed = await this.withRecovery(running, () => this.landed(job.id, pending.map((x) => x.out), knownEnd));
            pending = pending.filter(({ out }) => !landed.has(headerValue(out.extra, HEADER_FROM) ?? ''));
            if (pending.length > 0) await sleep(Math.min(2_000, 100 * 2 ** attempt));
          }
        }
        // Entered in the ledger once acknowledged; committed by the ledger's own loop.
        ledger.addAll(batch.map((x) => x.from));
        acknowledged(batch.length);
      };
      /**
       * Queues a lane's batch behind the lane's previous one (a target partition's records keep
       * their order); reading goes on while one batch is sent and the next waits, and pauses when
       * the batch before the waiting one is still being sent.
       */
      const handOff = async (l: Lane) => {
        const full = l.batch;
        l.batch = [];
        l.bytes = 0;
        const previous = l.sending;
        l.sending = previous.then(() => flush(l, full));
        l.sending.catch(() => {});
        await previous;
      };

      // The same for every record of the job (the encoder only reads them).
      // Encoded once: every record carries them, after its x-redriven-from.
      const marks = encodeHeaders([
        [JOB_NAME, Buffer.from(job.id)],
        [AT_NAME, Buffer.from(String(Date.now()))],
      ]);
      // Reads in chunks (FIRST_READ_BYTES, then READ_BYTES), the next one fetched while this one is sent, and the next
      // partition's first chunk fetched while this partition's records are handed on.
      const order = [...plan];
      const streams = order.map(([partition, ranges]) => new PartitionStream(ctx.fetcher, a.source, partition, ranges[0]![0], ranges[ranges.length - 1]![1] + 1, FIRST_READ_BYTES, true, READ_BYTES));
      // A stream is read by one caller at a time: the early read of the next partition is awaited before its records are.
      const warming: Array<Promise<unknown> | undefined> = [];
      outer: for (let i = 0; i < order.length; i++) {
        const [partition, ranges] = order[i]!;
        const stream = streams[i]!;
        await warming[i];
        const next = streams[i + 1];
        if (next) warming[i + 1] = next.peek().catch(() => {});
        for (const [x, y] of ranges) {
          stream.seek(x);
          for (;;) {
            if (running.cancelled) break outer;
            if (commitError !== null) throw commitError;
            const r = stream.buffered() ?? (await this.withRecovery(running, () => stream.peek()));
            if (r === null || r.offset > y) break;
            stream.take();
            if (!matches(filter, r)) continue;
            if (!a.force && ledger.has(partition, r.offset)) {
              job.skipped++;
              continue;
            }
            const topic = a.target?.exchange || originTopic(r) || ctx.naming.sourceFromName(a.source);
            if (!topic) {
              notMoved('the record names no original topic (no kafka_dlt-original-topic or __connect.errors.topic header): choose a target topic');
              continue;
            }
            const unusable = unusableTargets.get(topic);
            if (unusable !== undefined) {
              notMoved(unusable);
              continue;
            }
            let count = counts.get(topic);
            if (count === undefined) try {
              count = await partitionsOf(topic);
            } catch (error) {
              const why = `target topic "${topic}": ${classify(error).message}`;
              // A topic that does not exist is asked about once: the records after it fail for the same reason.
              if (classify(error).code === 'NOT_FOUND') unusableTargets.set(topic, why);
              notMoved(why);
              continue;
            }
            targets.add(topic);
            const key = a.target?.routingKey ? Buffer.from(a.target.routingKey, 'utf8') : r.key;
            // Headers read in place are copied as bytes; edited ones are written from the edit.
            const headers = a.edit?.headers ? editedHeaders(r.headers, a.edit.headers) : r instanceof FetchedRecord ? r : r.headers;
            // Kafka topic names are ASCII (letters, digits, '.', '_', '-'): written as latin1, without a UTF-8 pass.
            const extra: RawHeader[] = [[FROM_NAME, Buffer.from(`${a.source}:${r.partition}:${r.offset}`, 'latin1')]];
            const value = a.edit?.body !== undefined ? Buffer.from(a.edit.body, 'utf8') : r.value;
            const target = key ? javaPartition(key, count) : roundRobin++ % count;
            const l = lane(target % LANES);
            l.batch.push({ from: r, out: { topic, partition: target, key, value, headers, extra, fixed: marks } });
            l.bytes += (key?.length ?? 0) + (value?.length ?? 0) + (Array.isArray(headers) ? headerBytes(headers) : headers.headersEnd - headers.headersStart) + 160;
            if (l.batch.length >= batchSize || l.bytes >= CHUNK_BYTES) await handOff(l);
          }
        }
      }
      for (const l of lanes) if (l.batch.length > 0) await handOff(l);
      for (const l of lanes) await l.sending;
      while (committing) await committing;
      if (commitError !== null) throw commitError;
      if (targets.size > 0 && !a.target?.exchange) job.target = [...targets].sort().join(', ');
      if (running.cancelled) finish('cancelled');
      else if (job.failed > 0 && job.moved === 0) finish('failed', job.error ? undefined : 'no record could be re-driven');
      else finish('completed');
    } catch (error) {
      // Sends already under way finish first, so what landed is in the ledger and counted.
      await drain();
      if (targets.size > 0 && !a.target?.exchange) job.target = [...targets].sort().join(', ');
      if (running.cancelled && error instanceof CancelledError) finish('cancelled');
      else {
        const message = classify(error).message;
        ctx.logger.error('re-drive failed', { job: job.id, error: message });
        finish('failed', message);
      }
    } finally {
      await Promise.all(lanes.map((l) => closeQuietly(l.producer)));
    }
  }

  /** Retries an operation while the cluster is unreachable, up to the outage timeout. */
  private async withRecovery<T>(running: Control, op: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.ctx.outageTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await op();
      } catch (error) {
        if (!isTransient(error) || Date.now() >= deadline) throw error;
        if (running.cancelled) throw new CancelledError();
        await sleep(Math.min(2_000, 100 * 2 ** attempt));
      }
    }
  }

  /** The `x-redriven-from` values of this job's records already in the target partitions. */
  private async landed(jobId: string, records: DirectRecord[], knownEnd: Map<string, number>): Promise<Set<string>> {
    const found = new Set<string>();
    const partitions = new Map<string, { topic: string; partition: number }>();
    for (const r of records) partitions.set(`${r.topic}\u0000${r.partition}`, { topic: r.topic, partition: r.partition });
    for (const [k, { topic, partition }] of partitions) {
      const ends = await this.ctx.fetcher.offsets(topic, [partition], -1);
      const stream = new PartitionStream(this.ctx.fetcher, topic, partition, knownEnd.get(k) ?? 0, ends.get(partition) ?? 0);
      for (;;) {
        const r = stream.buffered() ?? (await stream.peek());
        if (r === null) break;
        stream.take();
        if (headerValue(r.headers, HEADER_JOB) === jobId) {
          const from = headerValue(r.headers, HEADER_FROM);
          if (from) found.add(from);
        }
      }
    }
    return found;
  }
}

class CancelledError extends Error {}

/** Closes a client; producers and consumers without waiting on requests the broker will never answer. */
export async function closeQuietly(client: Admin | Producer | Consumer): Promise<void> {
  try {
    if (client instanceof Producer || client instanceof Consumer) await client.close(true);
    else await client.close();
  } catch {
    /* already closed, or the broker is gone */
  }
}

function headerValue(headers: RawHeader[], name: string): string | null {
  for (let i = headers.length - 1; i >= 0; i--) {
    const [k, v] = headers[i]!;
    if (k.toString('utf8') === name) return v ? v.toString('utf8') : null;
  }
  return null;
}

const FROM_NAME = Buffer.from(HEADER_FROM);
const JOB_NAME = Buffer.from(HEADER_JOB);
const AT_NAME = Buffer.from(HEADER_AT);
const SPRING_TOPIC = Buffer.from('kafka_dlt-original-topic');
const CONNECT_TOPIC = Buffer.from('__connect.errors.topic');

const ORIGIN_NAMES = [SPRING_TOPIC, CONNECT_TOPIC];

/** The original topic a dead letter names (Spring's header, else Kafka Connect's); the last one wins. */
function originTopic(r: RawRecord): string | null {
  if (r instanceof FetchedRecord) return lastHeaderText(r, ORIGIN_NAMES);
  const headers = r.headers;
  for (let i = headers.length - 1; i >= 0; i--) {
    const [k, v] = headers[i]!;
    if (v && (k.equals(SPRING_TOPIC) || k.equals(CONNECT_TOPIC))) return v.toString('utf8');
  }
  return null;
}

/** A record's headers with an edit applied: named headers replaced (null or undefined removes one), others kept in order. */
function editedHeaders(headers: RawHeader[], edit: Record<string, unknown>): RawHeader[] {
  const edits = Object.entries(edit);
  const names = new Set(edits.map(([k]) => k));
  const out = headers.filter(([k]) => !names.has(k.toString('utf8')));
  for (const [k, v] of edits) {
    if (v === null || v === undefined) continue;
    out.push([Buffer.from(k, 'utf8'), Buffer.from(typeof v === 'string' ? v : JSON.stringify(v), 'utf8')]);
  }
  return out;
}

/**
 * The target partitions of records, as `topic\u0000partition` keys. A batch's records come in runs
 * of a few topics: the key is made once per partition, not once per record.
 */
function targetPartitions(records: ReadonlyArray<{ out: DirectRecord }>): Set<string> {
  const keys = new Set<string>();
  let topic: string | null = null;
  let seen: boolean[] = [];
  const byTopic = new Map<string, boolean[]>();
  for (const { out } of records) {
    if (out.topic !== topic) {
      topic = out.topic;
      seen = byTopic.get(topic) ?? [];
      byTopic.set(topic, seen);
    }
    if (!seen[out.partition]) {
      seen[out.partition] = true;
      keys.add(`${topic}\u0000${out.partition}`);
    }
  }
  return keys;
}

/** Per target partition (`topic\u0000partition`), the offset after the last record the broker placed there. */
function partitionEnds(records: ReadonlyArray<{ out: DirectRecord }>, offsets: number[]): Map<string, number> {
  const byTopic = new Map<string, number[]>();
  let topic: string | null = null;
  let ends: number[] = [];
  records.forEach(({ out }, i) => {
    const o = offsets[i]!;
    if (o < 0) return;
    if (out.topic !== topic) {
      topic = out.topic;
      ends = byTopic.get(topic) ?? [];
      byTopic.set(topic, ends);
    }
    if ((ends[out.partition] ?? -1) < o + 1) ends[out.partition] = o + 1;
  });
  const out = new Map<string, number>();
  for (const [t, list] of byTopic) list.forEach((end, p) => out.set(`${t}\u0000${p}`, end));
  return out;
}

function headerBytes(headers: RawHeader[]): number {
  let n = 0;
  for (const [k, v] of headers) n += k.length + (v?.length ?? 0) + 8;
  return n;
}
