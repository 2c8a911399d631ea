/**
 * Searching a RabbitMQ queue past the first 1,000 messages: without `scanAll`
 * the browse says exactly how far it went (scanned 1,000 of 3,000, not
 * complete) and never claims "no match" for the rest; with `scanAll` it finds
 * a message at position 2,500, says what that cost, and the queue keeps its
 * messages in their order.
 */
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitConnector } from '../../../src-main/connectors/rabbitmq/index.js';
import { eventually, prepareBroker, testDeps } from './broker.js';

const env = await prepareBroker();
const TOTAL = 3_000;
const NEEDLE_AT = 2_499;

describe.skipIf(!env.ok)(`RabbitMQ search coverage${env.ok ? '' : ` (skipped: ${env.reason})`}`, { timeout: 120_000 }, () => {
  let raw: ChannelModel;
  let ch: ConfirmChannel;
  let rabbit: RabbitConnector;
  const queue = `search-coverage-${Date.now()}`;

  beforeAll(async () => {
    if (!env.ok) return;
    raw = await env.connect();
    ch = await raw.createConfirmChannel();
    await ch.assertQueue(queue, { durable: false });
    for (let i = 0; i < TOTAL; i++) {
      const body = i === NEEDLE_AT ? `{"n":${i},"note":"NEEDLE-4711"}` : `{"n":${i}}`;
      ch.sendToQueue(queue, Buffer.from(body), { messageId: `m-${i}` });
    }
    await ch.waitForConfirms();
    rabbit = new RabbitConnector('c-search', env.config(), testDeps(), { sampleIntervalMs: 0 });
  });

  afterAll(async () => {
    await rabbit?.close();
    await raw?.close();
    if (env.ok) await env.cleanup();
  });

  const base = { queue, includeUnacked: true, allowQuorumPeek: false } as const;

  it('without scanAll, pages through the first 1,000 and reports the search as not covering the queue', async () => {
    let cursor: string | undefined;
    let scanned = 0;
    let matched = 0;
    let last: Awaited<ReturnType<RabbitConnector['browseQueue']>> | null = null;
    for (let page = 0; page < 20; page++) {
      last = await rabbit.browseQueue({ ...base, limit: 400, q: 'NEEDLE-4711', ...(cursor ? { cursor } : {}) });
      scanned += last.scanned;
      matched += last.matched;
      expect(last.total).toBe(TOTAL);
      expect(last.reachable).toBe(1_000);
      if (last.nextCursor === null) break;
      cursor = last.nextCursor;
    }
    expect(matched).toBe(0);
    expect(scanned).toBe(1_000);
    // Stopped where it can reach, and says so: not "scan complete".
    expect(last!.nextCursor).toBeNull();
    expect(last!.complete).toBe(false);
    await expect(rabbit.browseQueue({ ...base, limit: 10, cursor: '1000' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'cursor', message: expect.stringContaining('scanAll') });
  });

  it('with scanAll, finds the message at position 2,500 and says what the scan cost', async () => {
    const page = await rabbit.browseQueue({ ...base, limit: 1, q: 'NEEDLE-4711', scanAll: true });
    expect(page.matched).toBe(1);
    expect(page.messages[0]).toMatchObject({ position: NEEDLE_AT, properties: { messageId: `m-${NEEDLE_AT}` } });
    expect(page.scanned).toBe(NEEDLE_AT + 1);
    expect(page.total).toBe(TOTAL);
    expect(page.complete).toBe(false);
    expect(page.nextCursor).toBe(String(NEEDLE_AT + 1));
    expect(page.cost).toMatch(/redelivered/);

    // Going on from the cursor scans the rest and reaches the end.
    const rest = await rabbit.browseQueue({ ...base, limit: 10, q: 'NEEDLE-4711', scanAll: true, cursor: page.nextCursor! });
    expect(rest).toMatchObject({ matched: 0, complete: true, nextCursor: null, scanned: TOTAL - NEEDLE_AT - 1 });

    // A scan limit stops early and says the queue was not covered.
    const limited = await rabbit.browseQueue({ ...base, limit: 10, q: 'NEEDLE-4711', scanAll: true, scanLimit: 1_500 });
    expect(limited).toMatchObject({ matched: 0, scanned: 1_500, complete: false, nextCursor: '1500', total: TOTAL });

    // Everything was handed back, in order, marked redelivered.
    const head = await rabbit.browseQueue({ ...base, limit: 3 });
    expect(head.messages.map((m) => m.properties.messageId)).toEqual(['m-0', 'm-1', 'm-2']);
    expect(head.messages[0]!.redelivered).toBe(true);
    // RabbitMQ counts the returned messages a moment after the browse's channel closed (on a loaded machine, later than the browse waits for).
    const ok = await eventually(() => ch.checkQueue(queue), (q) => q.messageCount === TOTAL, 30_000);
    expect(ok.messageCount).toBe(TOTAL);
  });
});
