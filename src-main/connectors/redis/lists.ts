/**
 * Lists used as queues: producers LPUSH, consumers take from the other end
 * (RPOP, BRPOP, or LMOVE/BRPOPLPUSH into a processing list). So the head of the
 * queue, position 0, is the list's last element, and a page is read with LRANGE
 * at negative indexes, which pops nothing. A list element has no id of its own:
 * its id is the first 16 hex digits of the SHA-1 of its bytes, followed by `~n`
 * for the n-th copy of the same bytes within a page.
 */
import { createHash } from 'node:crypto';
import { ApiError } from '../../contract/errors.js';
import type { BrowsePage, MessageView, QueueInfo } from '../../contract/types.js';
import { compileMessageFilter, type CompiledFilter } from '../../ground/filter.js';
import type { Args } from '../connector.js';
import type { RedisClient } from './client.js';
import { encodeBytes, isText } from './records.js';

export function elementId(value: Buffer): string {
  return createHash('sha1').update(value).digest('hex').slice(0, 16);
}

export function listQueueInfo(name: string, length: number, deadLetterFor: string[] = [], unacked = 0): QueueInfo {
  return {
    name,
    durable: true,
    autoDelete: false,
    exclusive: false,
    arguments: { type: 'list' },
    messages: length,
    ready: length,
    unacked,
    delayed: 0,
    bytes: 0,
    consumers: 0,
    deadLetterFor,
    rates: { publish: 0, deliver: 0, ack: 0, redeliver: 0 },
  };
}

export function elementMessage(value: Buffer, id: string, list: string, position: number): MessageView {
  const body = encodeBytes(value);
  return {
    id,
    position,
    exchange: '',
    routingKey: list,
    body: body.text,
    bodyEncoding: body.encoding,
    size: value.length,
    properties: {},
    redelivered: false,
    deliveryCount: 0,
    // Redis keeps no time for a list element.
    enqueuedAt: 0,
    state: 'ready',
  };
}

export function matchesElement(filter: CompiledFilter | null, value: Buffer, list: string): boolean {
  if (!filter) return true;
  return filter.all({ body: value, text: isText(value), properties: () => ({}), headers: () => undefined, key: list, time: 0 });
}

/** Ids for a run of elements: the hash, numbered from the second copy of the same bytes. */
export function idsFor(values: Buffer[]): string[] {
  const seen = new Map<string, number>();
  return values.map((v) => {
    const h = elementId(v);
    const n = seen.get(h) ?? 0;
    seen.set(h, n + 1);
    return n === 0 ? h : `${h}~${n}`;
  });
}

const CHUNK = 1_000;

/** Reads elements from the head (position 0 = the last element) without popping any. */
export async function readFromHead(client: RedisClient, list: string, position: number, count: number): Promise<Buffer[]> {
  if (count <= 0) return [];
  const stop = -(position + 1);
  const start = -(position + count);
  const got = await client.lrangeBuffer(list, start, stop);
  return got.reverse();
}

export async function browseList(client: RedisClient, a: Args<'queues/messages'>, budgetMs: number): Promise<BrowsePage<MessageView>> {
  const filter = compileMessageFilter(a, 'queue');
  if (filter && (filter.from !== null || filter.to !== null)) {
    throw new ApiError('INVALID_ARGUMENT', 'from: a Redis list keeps no time for its elements, so it cannot be filtered by time', 'from');
  }
  const total = await client.llen(a.queue);
  let position = a.position ?? 0;
  if (a.cursor) {
    const n = Number(a.cursor);
    if (!/^\d+$/.test(a.cursor) || !Number.isSafeInteger(n)) throw new ApiError('INVALID_ARGUMENT', 'cursor: not a cursor of this list (start again without one)', 'cursor');
    position = n;
  }
  const messages: MessageView[] = [];
  let scanned = 0;
  const deadline = Date.now() + budgetMs;
  let at = position;
  while (messages.length < a.limit && at < total) {
    const want = filter ? CHUNK : Math.min(a.limit - messages.length, 10_000);
    const values = await readFromHead(client, a.queue, at, Math.min(want, total - at));
    if (values.length === 0) break;
    const ids = idsFor(values);
    let i = 0;
    for (; i < values.length && messages.length < a.limit; i++) {
      scanned++;
      if (matchesElement(filter, values[i]!, a.queue)) messages.push(elementMessage(values[i]!, ids[i]!, a.queue, at + i));
    }
    at += i;
    if (Date.now() >= deadline) break;
  }
  const nextCursor = at < total ? String(at) : null;
  return { messages, nextCursor, scanned, matched: messages.length, total, complete: at >= total };
}
