/**
 * Event streams a client can subscribe to. A subscription names the stream and
 * its parameters; the core pushes events until the client unsubscribes.
 */
import { z } from 'zod';

/** See the operations' `vhost`: the virtual host of a connection that has several. */
const vhost = z.string().min(1).max(255).optional();
import type { PublishJob, RecordView, RedriveJob, StatsSnapshot } from './types.js';

function stream<E>() {
  return <P extends z.ZodType>(params: P) => ({ params, event: undefined as unknown as E });
}

export const streams = {
  /** A snapshot of a connection's queues and groups, about once a second. */
  stats: stream<StatsSnapshot>()(z.object({ connectionId: z.string().min(1), vhost })),
  /** Progress of re-drive jobs (throttled), and each job's final state. */
  jobs: stream<RedriveJob>()(z.object({ id: z.string().optional() })),
  /** Progress of publish jobs (throttled), and each job's final state. */
  publishJobs: stream<PublishJob>()(z.object({ id: z.string().optional() })),
  /** New records appended to a topic: the live tail. */
  tail: stream<RecordView & { topic: string }>()(
    z.object({ connectionId: z.string().min(1), vhost, topic: z.string().min(1), partition: z.number().int().min(0).optional() }),
  ),
} as const;

export type Streams = typeof streams;
export type StreamName = keyof Streams;
export type StreamParams<S extends StreamName> = z.input<Streams[S]['params']>;
export type StreamEvent<S extends StreamName> = Streams[S]['event'];

export function isStreamName(value: unknown): value is StreamName {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(streams, value);
}
