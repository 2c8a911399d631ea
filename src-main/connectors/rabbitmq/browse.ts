/**
 * Reading a RabbitMQ queue's messages without taking them: peeks of the
 * first messages (classic and quorum queues, see peek.ts for what a peek
 * costs), full scans past them when asked (`scanAll`), streams by offset, and
 * the management UI's "Get messages" with an ack mode.
 */
import { ApiError } from '../../contract/errors.js';
import type { BrowsePage, MessageView } from '../../contract/types.js';
import type { Args } from '../connector.js';
import { checkShortstr } from './names.js';
import { compileQueueFilter, IdAssigner, matches, messageKey, toView } from './messages.js';
import { holdFromHead, readStream, SCAN_ALL_HOLD_MS, SCAN_ALL_MAX, SCAN_ALL_NOTICE, scanFromHead } from './peek.js';
import { queueType } from './topology.js';
import { RabbitBase } from './base.js';

export class RabbitBrowse extends RabbitBase {
  /**
   * Classic and quorum queues: the first messages of the queue (at most
   * PEEK_MAX_MESSAGES; `cursor`/`position` page inside that window). Streams:
   * from `cursor` (an offset) or `position`, else from the first offset.
   * Filters apply to the messages read: `scanned` is how many were read,
   * `matched` how many passed.
   */
  async browseQueue(a: Args<'queues/messages'>): Promise<BrowsePage<MessageView>> {
    checkShortstr(a.queue, 'queue');
    compileQueueFilter(a);
    const q = await this.mgmtQueue(a.queue);
    const type = queueType(q);
    const model = await this.amqp();
    const notFound = this.queueMissing(a.queue);
    const limits = this.options.peekLimits;
    const startAt = (): number => {
      if (a.cursor !== undefined && a.cursor !== '') {
        if (!/^\d+$/.test(a.cursor)) throw new ApiError('INVALID_ARGUMENT', 'cursor must be the value of nextCursor from a previous page', 'cursor');
        return Number(a.cursor);
      }
      return a.position ?? 0;
    };

    if (type === 'stream') {
      const start = a.cursor || a.position !== undefined ? startAt() : 'first';
      const read = await readStream(model, a.queue, start, a.limit, limits, this.r.scrub, notFound);
      const ids = new IdAssigner();
      const views = read.messages.map(({ offset, message }) =>
        toView(message, { id: ids.next(messageKey(message.properties.messageId, message.content)), position: offset }),
      );
      const matched = views.filter((v) => matches(v, a));
      const full = read.messages.length >= Math.min(a.limit, limits.maxMessages);
      return { messages: matched, nextCursor: full ? String(read.next) : null, scanned: views.length, matched: matched.length };
    }

    if (type === 'quorum') await this.quorumGuard(q, a.allowQuorumPeek);
    const start = startAt();
    if (a.scanAll) return this.scanQueue(a, start, type === 'quorum');
    const reachable = limits.maxMessages;
    if (start >= limits.maxMessages) {
      throw new ApiError(
        'INVALID_ARGUMENT',
        `a ${type} queue can only be peeked within its first ${limits.maxMessages} messages (RabbitMQ has no way to read further without taking them); ` +
          'scanAll=true reads further, taking and handing back every message up to where it stops',
        'cursor',
      );
    }
    const want = Math.min(start + a.limit, limits.maxMessages);
    return this.exclusive(a.queue, async () => {
      const held = await holdFromHead(model, a.queue, want, limits, this.r.scrub, notFound);
      try {
        const ids = new IdAssigner();
        const all = held.messages.map((m, i) => toView(m, { id: ids.next(messageKey(m.properties.messageId, m.content)), position: i }));
        const window = all.slice(start);
        const matched = window.filter((v) => matches(v, a));
        const more = held.messages.length === want && held.more && want < limits.maxMessages;
        const total = held.messages.length > 0 ? held.depth : (q.messages_ready ?? 0);
        // The end of the queue was reached only when nothing followed the last message read.
        const complete = held.messages.length === 0 || !held.more;
        return { messages: matched, nextCursor: more ? String(want) : null, scanned: window.length, matched: matched.length, total, complete, reachable };
      } finally {
        // Only a quorum queue takes returns back asynchronously enough to be worth waiting for.
        await held.release(type === 'quorum');
      }
    });
  }

  /**
   * A browse past the first 1,000 messages (`scanAll`): reads from the head with a
   * consumer that never acks, keeps only the matches (up to `limit`) and hands
   * everything back at the end. The cursor is a position from the head.
   */
  protected async scanQueue(a: Args<'queues/messages'>, start: number, quorum: boolean): Promise<BrowsePage<MessageView>> {
    const model = await this.amqp();
    const maxRead = start + (a.scanLimit ?? SCAN_ALL_MAX);
    return this.exclusive(a.queue, async () => {
      const ids = new IdAssigner();
      const found: MessageView[] = [];
      let scanned = 0;
      let last = start - 1;
      const r = await scanFromHead(
        model,
        a.queue,
        {
          skip: start,
          maxRead,
          maxHoldMs: SCAN_ALL_HOLD_MS,
          visit: (m, position) => {
            scanned++;
            last = position;
            const v = toView(m, { id: ids.next(messageKey(m.properties.messageId, m.content)), position });
            if (matches(v, a)) found.push(v);
            return found.length < a.limit;
          },
        },
        this.r.scrub,
        this.queueMissing(a.queue),
        quorum,
      );
      const complete = r.reachedEnd;
      return {
        messages: found,
        nextCursor: complete ? null : String(last + 1),
        scanned,
        matched: found.length,
        total: r.depth,
        complete,
        reachable: r.depth,
        cost: SCAN_ALL_NOTICE,
      };
    });
  }

  /** The management UI's "Get messages": ack removes them, reject dead-letters (or drops) them, requeue hands them back. */
  async getMessages(a: Args<'queues/getMessages'>): Promise<MessageView[]> {
    checkShortstr(a.queue, 'queue');
    if (a.ackMode !== 'requeue') this.writable(a.ackMode === 'ack' ? 'take messages' : 'reject messages');
    const q = await this.mgmtQueue(a.queue);
    const type = queueType(q);
    if (type === 'stream') {
      throw new ApiError('PRECONDITION_FAILED', `queue "${a.queue}" is a stream: its messages are read by offset and never removed; browse it instead`, 'queue');
    }
    if (type === 'quorum' && a.ackMode === 'requeue') await this.quorumGuard(q, a.allowQuorumPeek);
    const model = await this.amqp();
    const limits = { ...this.options.peekLimits, maxMessages: Math.max(this.options.peekLimits.maxMessages, 10_000) };
    return this.exclusive(a.queue, async () => {
      const held = await holdFromHead(model, a.queue, a.count, limits, this.r.scrub, this.queueMissing(a.queue));
      try {
        const ids = new IdAssigner();
        const views = held.messages.map((m, i) => toView(m, { id: ids.next(messageKey(m.properties.messageId, m.content)), position: i }));
        for (const m of held.messages) {
          if (a.ackMode === 'ack') held.channel.ack(m);
          else if (a.ackMode === 'reject') held.channel.nack(m, false, false);
        }
        return views;
      } finally {
        await held.release(a.ackMode === 'requeue' && type === 'quorum');
      }
    });
  }

}
