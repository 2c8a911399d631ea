/**
 * Reading messages without taking them away.
 *
 * Classic and quorum queues have no "browse" in AMQP 0-9-1: a message can
 * only be read by delivering it. A peek therefore takes messages with
 * `basic.get` (manual ack) on a channel of its own and never acks them;
 * closing that channel hands them back, and RabbitMQ puts them back where
 * they were. The cost is that they come back marked redelivered, and on a
 * quorum queue each return adds one to the delivery count that
 * `x-delivery-limit` is checked against — so a quorum queue with a limit is
 * only peeked when the connection allows it.
 *
 * Streams are logs: a consumer reads from an offset and nothing changes.
 *
 * What one peek may hold is bounded (messages, bytes, time), since held
 * messages are invisible to the queue's real consumers until they return.
 */
import type { ChannelModel, ConsumeMessage, GetMessage } from 'amqplib';
import { ApiError } from '../../contract/errors.js';
import { closeQuietly, openChannel, toApiError } from './amqp.js';

export const PEEK_MAX_MESSAGES = 1_000;
export const PEEK_MAX_BYTES = 64 * 1024 * 1024;
export const PEEK_MAX_HOLD_MS = 10_000;

/** What the UI tells the user before and after a peek. */
export const PEEK_NOTICE =
  'Peeking a classic or quorum queue takes up to 1,000 messages from the head of the queue without acknowledging them and then hands them back: ' +
  'they return to their places, but RabbitMQ marks them redelivered. Messages already delivered to consumers (unacked) cannot be seen. ' +
  'On a quorum queue each peek also counts as a delivery attempt toward x-delivery-limit, so it is refused there unless the connection allows quorum peeks. ' +
  'Streams are read by offset, without side effects.';

export interface PeekLimits {
  maxMessages: number;
  maxBytes: number;
  maxHoldMs: number;
}

export const DEFAULT_LIMITS: PeekLimits = { maxMessages: PEEK_MAX_MESSAGES, maxBytes: PEEK_MAX_BYTES, maxHoldMs: PEEK_MAX_HOLD_MS };

export interface Held {
  messages: GetMessage[];
  /** Whether the queue had more messages after the last one taken. */
  more: boolean;
  /** Ready messages when the first one was taken. */
  depth: number;
}

/**
 * Takes up to `count` messages with basic.get and keeps them unacked on a
 * channel of its own; `release` closes that channel, which returns them
 * (`release(true)` also waits until the queue counts them again). Callers
 * must call `release` (in `finally`).
 */
export async function holdFromHead(
  model: ChannelModel,
  queue: string,
  count: number,
  limits: PeekLimits,
  scrub: (s: string) => string,
  notFound: string,
): Promise<Held & { channel: Awaited<ReturnType<typeof openChannel>>; release(waitForReturn?: boolean): Promise<void> }> {
  const channel = await openChannel(model);
  const messages: GetMessage[] = [];
  let depth = 0;
  const release = async (waitForReturn = false) => {
    await closeQuietly(channel);
    if (waitForReturn && messages.length > 0) await untilReturned(model, queue, depth);
  };
  let bytes = 0;
  let more = false;
  const deadline = Date.now() + limits.maxHoldMs;
  try {
    const wanted = Math.min(count, limits.maxMessages);
    while (messages.length < wanted) {
      const m = await channel.get(queue, { noAck: false });
      if (m === false) break;
      if (messages.length === 0) depth = m.fields.messageCount + 1;
      messages.push(m);
      bytes += m.content.length;
      more = m.fields.messageCount > 0;
      if (bytes >= limits.maxBytes || Date.now() >= deadline) break;
    }
    return { messages, more, depth, channel, release };
  } catch (error) {
    await release();
    throw toApiError(error, scrub, notFound);
  }
}

const RETURN_WAIT_MS = 2_000;

/**
 * Waits (briefly) until the queue counts the returned messages again. A
 * quorum queue takes returns through its log, a moment after the channel
 * closed; a peek right behind this one must not find them missing.
 */
async function untilReturned(model: ChannelModel, queue: string, depth: number): Promise<void> {
  const until = Date.now() + RETURN_WAIT_MS;
  let ch: Awaited<ReturnType<typeof openChannel>> | null = null;
  try {
    ch = await openChannel(model);
    for (;;) {
      const ok = await ch.checkQueue(queue);
      if (ok.messageCount >= depth || Date.now() >= until) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  } catch {
    // The queue went away or the connection dropped: nothing left to wait for.
  } finally {
    await closeQuietly(ch);
  }
}

/** What a full scan tells the person it costs, in the answer and the README. */
export const SCAN_ALL_NOTICE =
  'A RabbitMQ queue can only be read without removing messages by taking them and handing them back: scanning past the first 1,000 takes every ' +
  'message up to where the scan stops, holds them unacked (invisible to consumers meanwhile) and returns them when it ends. They keep their order on a ' +
  'classic queue but come back marked redelivered; on a quorum queue each one\'s delivery count goes up by one.';

/** Upper bound of one full scan unless the request gives its own `scanLimit`. */
export const SCAN_ALL_MAX = 1_000_000;
/** How long a full scan may hold messages. */
export const SCAN_ALL_HOLD_MS = 120_000;
/** A scan that receives nothing for this long has reached what it can get (consumers took the rest). */
const SCAN_IDLE_MS = 1_000;

export interface ScanResult {
  /** Messages received from the head, the skipped ones included. */
  read: number;
  /** Ready messages when the scan began. */
  depth: number;
  /** Whether every message the queue held at the start was read. */
  reachedEnd: boolean;
}

/**
 * Reads a classic or quorum queue from its head with a consumer that never
 * acks (faster than one basic.get per message), hands messages from position
 * `skip` on to `visit` until it returns false, `maxRead` messages were read,
 * or the queue's depth at the start is reached; then closes the channel,
 * which returns every message to the queue. `visit` must not keep messages it
 * does not need: a scan of a large queue reads them all.
 */
export async function scanFromHead(
  model: ChannelModel,
  queue: string,
  o: { skip: number; maxRead: number; maxHoldMs: number; visit: (m: ConsumeMessage, position: number) => boolean },
  scrub: (s: string) => string,
  notFound: string,
  waitForReturn: boolean,
): Promise<ScanResult> {
  const channel = await openChannel(model);
  let read = 0;
  let depth = 0;
  try {
    depth = (await channel.checkQueue(queue)).messageCount;
    const target = Math.min(depth, o.maxRead);
    if (target === 0) return { read: 0, depth, reachedEnd: true };
    // Prefetch is a 16-bit count; 0 means no limit, and the scan stops itself at `target`.
    await channel.prefetch(target <= 65_535 ? target : 0);
    await new Promise<void>((resolve, reject) => {
      let idle: NodeJS.Timeout | undefined;
      let finished = false;
      const done = () => {
        if (finished) return;
        finished = true;
        clearTimeout(idle);
        clearTimeout(deadline);
        resolve();
      };
      const deadline = setTimeout(done, o.maxHoldMs);
      const arm = () => {
        clearTimeout(idle);
        idle = setTimeout(done, SCAN_IDLE_MS);
      };
      arm();
      channel.once('close', done);
      channel
        .consume(
          queue,
          (m) => {
            if (!m) return done();
            if (finished) return;
            const position = read++;
            if (position >= o.skip && !o.visit(m, position)) return done();
            if (read >= target) return done();
            arm();
          },
          { noAck: false },
        )
        .catch((e: unknown) => {
          finished = true;
          clearTimeout(idle);
          clearTimeout(deadline);
          reject(e);
        });
    });
  } catch (error) {
    await closeQuietly(channel);
    throw toApiError(error, scrub, notFound);
  }
  await closeQuietly(channel);
  if (waitForReturn && read > 0) await untilReturned(model, queue, depth);
  return { read, depth, reachedEnd: read >= depth };
}

export interface StreamRead {
  messages: Array<{ offset: number; message: ConsumeMessage }>;
  /** The offset to read from next. */
  next: number;
}

/** How long to wait for a stream's first message, and for each next one, before calling it the end. */
const STREAM_FIRST_WAIT_MS = 1_500;
const STREAM_IDLE_MS = 200;

/**
 * Reads up to `count` messages of a stream from `offset` on. A stream has no
 * "end of data" signal in AMQP 0-9-1: the read stops at `count`, or when no
 * message came for a short while. The messages read are never acked: the
 * prefetch covers the whole read, so the server never waits for credit.
 */
export async function readStream(
  model: ChannelModel,
  queue: string,
  offset: number | 'first',
  count: number,
  limits: PeekLimits,
  scrub: (s: string) => string,
  notFound: string,
): Promise<StreamRead> {
  const wanted = Math.max(1, Math.min(count, limits.maxMessages));
  const start = offset === 'first' ? 0 : offset;
  const channel = await openChannel(model);
  const out: StreamRead['messages'] = [];
  let bytes = 0;
  try {
    await channel.prefetch(wanted);
    await new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = setTimeout(done, limits.maxHoldMs);
      function done() {
        clearTimeout(timer);
        clearTimeout(deadline);
        resolve();
      }
      const arm = (ms: number) => {
        clearTimeout(timer);
        timer = setTimeout(done, ms);
      };
      arm(STREAM_FIRST_WAIT_MS);
      channel.once('close', done);
      channel
        .consume(
          queue,
          (m) => {
            if (!m) return done();
            const raw = m.properties.headers?.['x-stream-offset'];
            const at = typeof raw === 'number' ? raw : Number(raw);
            // A stream consumer starts at the chunk holding the offset, so the
            // first messages can come from before it. Acking them only returns
            // credit (a stream's messages do not change when acked), which keeps
            // a large chunk from using up the prefetch meant for the read.
            if (at < start) {
              channel.ack(m);
              return arm(STREAM_IDLE_MS);
            }
            if (out.length < wanted && bytes < limits.maxBytes) {
              out.push({ offset: at, message: m });
              bytes += m.content.length;
            }
            if (out.length >= wanted || bytes >= limits.maxBytes) done();
            else arm(STREAM_IDLE_MS);
          },
          { noAck: false, arguments: { 'x-stream-offset': offset } },
        )
        .catch((e: unknown) => {
          clearTimeout(timer);
          clearTimeout(deadline);
          reject(e);
        });
    });
  } catch (error) {
    throw toApiError(error, scrub, notFound);
  } finally {
    await closeQuietly(channel);
  }
  const last = out[out.length - 1];
  return { messages: out, next: last ? last.offset + 1 : start };
}

export function quorumRefusal(queue: string, limit: number): ApiError {
  return new ApiError(
    'PRECONDITION_FAILED',
    `queue "${queue}" is a quorum queue with a delivery limit of ${limit}: peeking returns each message to the queue, which counts as a delivery ` +
      `attempt, so messages near the limit would be dead-lettered or dropped. Peek anyway only if that is acceptable (allowQuorumPeek: true for this request, or "allow quorum peek" for the connection).`,
    'queue',
  );
}
