/**
 * Browsing a Kinesis stream without consuming: shard iterators are read
 * positions the caller holds, so reading changes nothing for any consumer (no
 * checkpoint, no lease, no receive count). One shard is read from TRIM_HORIZON,
 * LATEST, a sequence number (AT_SEQUENCE_NUMBER) or a time (AT_TIMESTAMP); with
 * no partition the stream's shards are read one after the other in ListShards
 * order. A cursor resumes with the next shard iterator while it is fresh and
 * otherwise AFTER_SEQUENCE_NUMBER the last record shown.
 *
 * Each request is bounded: GetRecords calls, records scanned, and responses that
 * came back empty. An empty response with MillisBehindLatest = 0 means the shard's
 * tip was reached; empty ones behind the tip (a sparse stretch of an old shard)
 * are followed up to a cap, then the cursor carries on from there.
 */
import { randomUUID } from 'node:crypto';
import { GetRecordsCommand, GetShardIteratorCommand, type GetShardIteratorCommandInput, type KinesisClient, type _Record } from '@aws-sdk/client-kinesis';
import { ApiError } from '../../contract/errors.js';
import type { BrowsePage, RecordView } from '../../contract/types.js';
import { compileMessageFilter, type CompiledFilter, type FilterSubject } from '../../ground/filter.js';
import type { Args } from '../connector.js';
import { encodeBytes } from '../encoding.js';
import type { ShardEntry } from './shards.js';

type Call = <T>(fn: () => Promise<T>, notFound?: { what: string; field: string }) => Promise<T>;

/** Where a shard is read from when no record of it was shown yet. */
type Start = { k: 'TRIM_HORIZON' } | { k: 'LATEST' } | { k: 'AT_TIMESTAMP'; ts: number } | { k: 'AT_SEQUENCE_NUMBER'; q: string };

interface CursorState {
  /** Stream, and the partition asked for (null: every shard in turn). */
  t: string;
  p: number | null;
  /** The shard being read: its index and id (an index alone could move if the stream were resharded). */
  s: number;
  id: string;
  /** Last sequence number shown from that shard. */
  q?: string;
  /** The next shard iterator and when it was issued (they expire after five minutes). */
  i?: string;
  at?: number;
  /** Records read before (the next record's ordinal). */
  n: number;
  /** How shards not yet read start. */
  st: Start;
}

export interface BrowseLimits {
  /** GetRecords calls per request. */
  maxCalls: number;
  /** Records looked at per request (matched or not). */
  maxScanned: number;
  /** Empty responses behind the tip per request. */
  maxEmpty: number;
  /** Time per request (ms): a slow stream returns what it has with a cursor. */
  budgetMs: number;
}

export const DEFAULT_LIMITS: BrowseLimits = { maxCalls: 50, maxScanned: 50_000, maxEmpty: 10, budgetMs: 8_000 };

/** An iterator older than this is not reused: Kinesis lets them expire after 300 s. */
const ITERATOR_REUSE_MS = 240_000;
/** Records per GetRecords when a filter may reject most of them (Kinesis allows 10,000). */
const FILTERED_BATCH = 2_000;

const CURSOR_MAX = 1_900;
const storedCursors = new Map<string, CursorState>();
const STORED_MAX = 2_000;

function encodeCursor(state: CursorState): string {
  const inline = 'n1.' + Buffer.from(JSON.stringify(state)).toString('base64url');
  if (inline.length <= CURSOR_MAX) return inline;
  const id = randomUUID();
  storedCursors.set(id, state);
  if (storedCursors.size > STORED_MAX) storedCursors.delete(storedCursors.keys().next().value!);
  return `ns.${id}`;
}

function decodeCursor(cursor: string, stream: string, partition: number | null): CursorState {
  let state: CursorState | undefined;
  try {
    if (cursor.startsWith('n1.')) state = JSON.parse(Buffer.from(cursor.slice(3), 'base64url').toString('utf8')) as CursorState;
    else if (cursor.startsWith('ns.')) state = storedCursors.get(cursor.slice(3));
  } catch {
    state = undefined;
  }
  if (!state || typeof state.t !== 'string' || typeof state.s !== 'number' || typeof state.id !== 'string' || typeof state.st !== 'object' || state.st === null) {
    throw new ApiError('INVALID_ARGUMENT', 'cursor is not one this connection gave out (or it expired): start the browse again', 'cursor');
  }
  if (state.t !== stream || state.p !== partition) {
    throw new ApiError('INVALID_ARGUMENT', `cursor belongs to ${state.t}${state.p === null ? '' : `[${state.p}]`}, not to this browse`, 'cursor');
  }
  return state;
}

const NUL = 0;

function subject(r: _Record): FilterSubject {
  const body = Buffer.from(r.Data ?? new Uint8Array());
  return {
    body,
    get text() {
      return body.indexOf(NUL) < 0;
    },
    properties: () => ({}),
    headers: () => ({}),
    key: r.PartitionKey ?? null,
    time: r.ApproximateArrivalTimestamp?.getTime() ?? 0,
  };
}

/** A Kinesis record as the contract's record: the sequence number is its position. */
export function recordView(r: _Record, partition: number, ordinal: number): RecordView {
  const data = r.Data ?? new Uint8Array();
  const value = encodeBytes(data);
  const key = r.PartitionKey ?? null;
  return {
    partition,
    offset: ordinal,
    position: r.SequenceNumber ?? '',
    timestamp: r.ApproximateArrivalTimestamp?.getTime() ?? 0,
    key,
    keyEncoding: 'utf8',
    value: value.text,
    valueEncoding: value.encoding,
    size: data.byteLength + (key ? Buffer.byteLength(key, 'utf8') : 0),
    headers: r.EncryptionType && r.EncryptionType !== 'NONE' ? { encryption: r.EncryptionType } : {},
  };
}

function iteratorInput(stream: string, shard: ShardEntry, start: Start, after?: string): GetShardIteratorCommandInput {
  const base = { StreamName: stream, ShardId: shard.id };
  if (after) return { ...base, ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: after };
  switch (start.k) {
    case 'TRIM_HORIZON':
      return { ...base, ShardIteratorType: 'TRIM_HORIZON' };
    case 'LATEST':
      return { ...base, ShardIteratorType: 'LATEST' };
    case 'AT_TIMESTAMP':
      return { ...base, ShardIteratorType: 'AT_TIMESTAMP', Timestamp: new Date(start.ts) };
    case 'AT_SEQUENCE_NUMBER':
      return { ...base, ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: start.q };
  }
}

function startOf(a: Args<'topics/messages'>): Start {
  const given = [a.position !== undefined, a.timestamp !== undefined, a.seek !== undefined].filter(Boolean).length;
  if (given > 1) throw new ApiError('INVALID_ARGUMENT', 'position, timestamp and seek each say where to start: give one of them', a.position !== undefined ? 'position' : 'timestamp');
  if (a.position !== undefined) {
    if (!/^\d{1,128}$/.test(a.position)) throw new ApiError('INVALID_ARGUMENT', `position must be a Kinesis sequence number (digits), got ${JSON.stringify(a.position)}`, 'position');
    return { k: 'AT_SEQUENCE_NUMBER', q: a.position };
  }
  if (a.timestamp !== undefined) return { k: 'AT_TIMESTAMP', ts: a.timestamp };
  if (a.seek === 'latest') return { k: 'LATEST' };
  return { k: 'TRIM_HORIZON' };
}

function isErrorNamed(error: unknown, name: string): boolean {
  return typeof error === 'object' && error !== null && ((error as { name?: string }).name === name || (error as { Code?: string }).Code === name);
}

export interface BrowseContext {
  client: KinesisClient;
  call: Call;
  shards: (stream: string) => Promise<ShardEntry[]>;
  limits: BrowseLimits;
}

/**
 * The shard a sequence number belongs to, when no partition is given: Kinesis
 * refuses AT_SEQUENCE_NUMBER on any other shard, so each is asked in turn.
 */
async function shardOfPosition(ctx: BrowseContext, stream: string, shards: readonly ShardEntry[], q: string): Promise<{ shard: ShardEntry; iterator: string }> {
  if (shards.length > 64) throw new ApiError('INVALID_ARGUMENT', `stream "${stream}" has ${shards.length} shards: give the partition the position belongs to`, 'partition');
  for (const shard of shards) {
    try {
      const r = await ctx.client.send(new GetShardIteratorCommand(iteratorInput(stream, shard, { k: 'AT_SEQUENCE_NUMBER', q })));
      if (r.ShardIterator) return { shard, iterator: r.ShardIterator };
    } catch (error) {
      if (isErrorNamed(error, 'InvalidArgumentException') || isErrorNamed(error, 'ResourceNotFoundException')) continue;
      return ctx.call(() => Promise.reject(error));
    }
  }
  throw new ApiError('NOT_FOUND', `position ${q} is not a record of stream "${stream}" (no shard holds it, or it was trimmed)`, 'position');
}

export async function browseStream(ctx: BrowseContext, a: Args<'topics/messages'>): Promise<BrowsePage<RecordView>> {
  if (a.offset !== undefined) {
    throw new ApiError('INVALID_ARGUMENT', 'offset: Kinesis places records by sequence number, not offset: give position (a sequence number), timestamp or seek', 'offset');
  }
  const filter: CompiledFilter | null = compileMessageFilter(a, 'topic');
  const stream = a.topic;
  const shards = await ctx.shards(stream);
  if (shards.length === 0) throw new ApiError('UNAVAILABLE', `stream "${stream}" has no shards to read yet (is it still being created?)`, 'topic');
  const requested = a.partition ?? null;
  if (requested !== null && requested >= shards.length) {
    throw new ApiError('INVALID_ARGUMENT', `stream "${stream}" has ${shards.length} shard${shards.length === 1 ? '' : 's'} (partitions 0–${shards.length - 1}); there is no partition ${requested}`, 'partition');
  }

  let state: CursorState;
  let iterator: string | undefined;
  if (a.cursor) {
    state = decodeCursor(a.cursor, stream, requested);
    // The index names a shard of this listing unless the stream was resharded in between.
    const byId = shards.find((s) => s.id === state.id);
    if (!byId) throw new ApiError('INVALID_ARGUMENT', `cursor: shard ${state.id} is no longer in stream "${stream}" (trimmed after a reshard): start the browse again`, 'cursor');
    state.s = byId.index;
    if (state.i && state.at !== undefined && Date.now() - state.at < ITERATOR_REUSE_MS) iterator = state.i;
  } else {
    const start = startOf(a);
    let first = shards[requested ?? 0]!;
    if (start.k === 'AT_SEQUENCE_NUMBER' && requested === null) {
      // A sequence number belongs to one shard: the browse is of that shard.
      const found = await shardOfPosition(ctx, stream, shards, start.q);
      first = found.shard;
      iterator = found.iterator;
    }
    state = { t: stream, p: requested, s: first.index, id: first.id, n: 0, st: start };
  }
  // A position found without a partition keeps to its shard: later shards are not walked.
  const single = requested !== null || state.st.k === 'AT_SEQUENCE_NUMBER';

  const out: RecordView[] = [];
  const deadline = Date.now() + ctx.limits.budgetMs;
  let calls = 0;
  let scanned = 0;
  let empties = 0;
  let retriedExpired = false;
  let stopped: 'limit' | 'budget' | 'tip' | 'end';

  while (true) {
    const shard = shards[state.s]!;
    if (!iterator) {
      const input = iteratorInput(stream, shard, state.st, state.q);
      // Kinesis answers ResourceNotFound for a sequence number that is not (or no longer) in the shard.
      const notFound =
        input.StartingSequenceNumber !== undefined
          ? { what: `sequence number ${input.StartingSequenceNumber} in shard ${shard.id} of stream "${stream}" (trimmed, or of another shard)`, field: state.q ? 'cursor' : 'position' }
          : { what: `stream "${stream}"`, field: 'topic' };
      const r = await ctx.call(() => ctx.client.send(new GetShardIteratorCommand(input)), notFound);
      iterator = r.ShardIterator;
      state.at = Date.now();
    }
    let shardDone = false;
    if (!iterator) {
      // A closed shard read to its end has no iterator.
      shardDone = true;
    } else {
      const wanted = a.limit - out.length;
      const batch = filter ? FILTERED_BATCH : Math.min(10_000, Math.max(wanted, 1));
      const current = iterator;
      let r;
      try {
        r = await ctx.call(() => ctx.client.send(new GetRecordsCommand({ ShardIterator: current, Limit: batch })), { what: `stream "${stream}"`, field: 'topic' });
      } catch (error) {
        if (error instanceof ApiError && /ExpiredIterator/i.test(error.message) && !retriedExpired) {
          // A cursor's iterator that expired on the way: start again after the last record shown.
          retriedExpired = true;
          iterator = undefined;
          continue;
        }
        throw error;
      }
      calls++;
      const records = r.Records ?? [];
      let taken = records.length;
      for (let k = 0; k < records.length; k++) {
        const rec = records[k]!;
        scanned++;
        if (rec.SequenceNumber) state.q = rec.SequenceNumber;
        const ordinal = state.n++;
        if (filter === null || filter.all(subject(rec))) out.push(recordView(rec, shard.index, ordinal));
        if (out.length >= a.limit) {
          taken = k + 1;
          break;
        }
      }
      // Records read past the last one shown are read again from its sequence number, not skipped.
      const wholeBatch = taken === records.length;
      iterator = wholeBatch ? r.NextShardIterator : undefined;
      if (iterator) {
        state.i = iterator;
        state.at = Date.now();
      } else {
        delete state.i;
        delete state.at;
      }
      empties = records.length === 0 ? empties + 1 : 0;
      if (wholeBatch && r.NextShardIterator === undefined) shardDone = true;
      else if (out.length >= a.limit) {
        stopped = 'limit';
        break;
      } else if (records.length === 0 && r.MillisBehindLatest === 0) {
        // At the tip of an open shard.
        if (single) {
          stopped = 'tip';
          break;
        }
        shardDone = true;
      }
    }
    if (shardDone) {
      if (single || state.s + 1 >= shards.length) {
        stopped = 'end';
        break;
      }
      const next = shards[state.s + 1]!;
      state.s = next.index;
      state.id = next.id;
      delete state.q;
      delete state.i;
      delete state.at;
      iterator = undefined;
      empties = 0;
      if (out.length >= a.limit) {
        stopped = 'limit';
        break;
      }
      continue;
    }
    if (calls >= ctx.limits.maxCalls || scanned >= ctx.limits.maxScanned || empties >= ctx.limits.maxEmpty || Date.now() >= deadline) {
      stopped = 'budget';
      break;
    }
  }

  // At the tip of one open shard there is nothing more for now, as at the end of everything;
  // the resume cursor is where records that arrive later will be read from.
  const done = stopped === 'end' || stopped === 'tip';
  return {
    messages: out,
    nextCursor: done ? null : encodeCursor(state),
    scanned,
    matched: out.length,
    complete: done,
    ...(stopped === 'tip' ? { resumeCursor: encodeCursor(state) } : {}),
  };
}
