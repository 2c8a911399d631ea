/**
 * A live tail of a Kinesis stream: every open shard (or the one asked for) read
 * from LATEST with GetRecords about once a second, each record handed on as it
 * arrives. Like browsing it holds shard iterators only, so no consumer's position
 * moves. Once a second per shard stays well inside Kinesis's five GetRecords calls
 * a second per shard, which the stream's own consumers share.
 */
import { GetRecordsCommand, GetShardIteratorCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import type { RecordView } from '../../contract/types.js';
import type { Logger } from '../../ground/logger.js';
import type { Unsubscribe } from '../connector.js';
import { recordView } from './browse.js';
import type { ShardEntry } from './shards.js';
import { sleep } from '../../jobs/pace.js';

export const TAIL_POLL_MS = 1_000;

export interface TailContext {
  client: KinesisClient;
  shards: (stream: string) => Promise<ShardEntry[]>;
  logger: Logger;
  pollMs?: number;
}

export function tailStream(ctx: TailContext, stream: string, partition: number | undefined, listener: (record: RecordView & { topic: string }) => void): Unsubscribe {
  const stop = new AbortController();
  const pollMs = ctx.pollMs ?? TAIL_POLL_MS;
  void (async () => {
    /** Per shard: the next iterator, and the last sequence number handed on (to start again after it). */
    const at = new Map<string, { shard: ShardEntry; iterator?: string; after?: string }>();
    let ordinal = 0;
    let failures = 0;
    while (!stop.signal.aborted) {
      try {
        if (at.size === 0) {
          const shards = await ctx.shards(stream);
          for (const s of shards) if ((partition === undefined && s.sequenceEnd === null) || s.index === partition) at.set(s.id, { shard: s });
          if (at.size === 0) throw new Error(`stream "${stream}" has no open shard${partition !== undefined ? ` at partition ${partition}` : ''}`);
        }
        for (const entry of at.values()) {
          if (stop.signal.aborted) break;
          if (!entry.iterator) {
            const r = await ctx.client.send(
              new GetShardIteratorCommand(
                entry.after
                  ? { StreamName: stream, ShardId: entry.shard.id, ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: entry.after }
                  : { StreamName: stream, ShardId: entry.shard.id, ShardIteratorType: 'LATEST' },
              ),
            );
            entry.iterator = r.ShardIterator;
          }
          if (!entry.iterator) continue;
          const r = await ctx.client.send(new GetRecordsCommand({ ShardIterator: entry.iterator, Limit: 1_000 }));
          for (const rec of r.Records ?? []) {
            if (stop.signal.aborted) break;
            if (rec.SequenceNumber) entry.after = rec.SequenceNumber;
            listener({ ...recordView(rec, entry.shard.index, ordinal++), topic: stream });
          }
          entry.iterator = r.NextShardIterator;
          // A shard closed by a reshard: its children are open shards now.
          if (!r.NextShardIterator) at.clear();
        }
        failures = 0;
      } catch (error) {
        if (stop.signal.aborted) break;
        failures++;
        // An expired iterator starts again after the last record handed on.
        for (const entry of at.values()) delete entry.iterator;
        if (failures === 1) ctx.logger.warn('Kinesis live tail interrupted; retrying', { stream, error: (error as Error).message });
      }
      await sleep(failures > 0 ? Math.min(10_000, pollMs * 2 ** Math.min(failures, 4)) : pollMs, stop.signal);
    }
  })();
  return () => stop.abort();
}
