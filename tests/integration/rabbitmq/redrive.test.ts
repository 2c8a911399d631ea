/**
 * Re-driving dead letters on a real RabbitMQ: dead-letter queues found by
 * policy, 10,000 messages back to their queue exactly once, a selection by
 * id, failures and a connection cut by the server that lose nothing,
 * cancellation, throttled progress and the audit log.
 */
import { execFile } from 'node:child_process';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedriveJob } from '../../../src-main/contract/types.js';
import { RabbitConnector } from '../../../src-main/connectors/rabbitmq/index.js';
import { eventually, prepareBroker, rejectAll, testDeps } from './broker.js';

const env = await prepareBroker();
const title = env.ok ? 'RabbitMQ: re-drive' : `RabbitMQ: re-drive (skipped: ${env.reason})`;

interface Drained {
  ids: string[];
  headers: Array<Record<string, unknown>>;
}

/** Takes every message of a queue (acking), in order. */
async function drain(model: ChannelModel, queue: string): Promise<Drained> {
  const ch = await model.createChannel();
  await ch.prefetch(1_000);
  const out: Drained = { ids: [], headers: [] };
  const depth = (await ch.checkQueue(queue)).messageCount;
  if (depth > 0) {
    await new Promise<void>((resolve) => {
      void ch.consume(
        queue,
        (m) => {
          if (!m) return;
          out.ids.push(String(m.properties.messageId));
          out.headers.push((m.properties.headers ?? {}) as Record<string, unknown>);
          ch.ack(m);
          if (out.ids.length === depth) resolve();
        },
        { noAck: false },
      );
    });
  }
  await ch.close();
  return out;
}

/** Publishes `n` messages to `queue` and dead-letters them all by rejecting them. */
async function deadLetter(ch: ConfirmChannel, model: ChannelModel, queue: string, dlq: string, n: number, prefix: string): Promise<void> {
  const before = (await ch.checkQueue(dlq)).messageCount;
  for (let i = 0; i < n; i++) {
    ch.sendToQueue(queue, Buffer.from(JSON.stringify({ i, prefix })), {
      messageId: `${prefix}-${i}`,
      contentType: 'application/json',
      persistent: true,
      headers: { origin: 'test' },
    });
    if (i % 2_000 === 1_999) await ch.waitForConfirms();
  }
  await ch.waitForConfirms();
  await rejectAll(model, queue, n);
  await eventually(
    () => ch.checkQueue(dlq),
    (q) => q.messageCount === before + n,
    30_000,
    50,
  );
}

describe.skipIf(!env.ok)(title, { timeout: 120_000 }, () => {
  if (!env.ok) {
    // Registered (and skipped with the describe) so the report names the reason.
    it(`RabbitMQ is not available: ${env.reason}`, () => {});
    return;
  }
  const b = env;
  const deps = testDeps();
  let raw: ChannelModel;
  let ch: ConfirmChannel;
  let rabbit: RabbitConnector;

  const waitJob = async (id: string): Promise<RedriveJob> => {
    const job = await rabbit.waitForRedrive(id);
    if (!job) throw new Error(`no job ${id}`);
    return job;
  };

  beforeAll(async () => {
    raw = await b.connect();
    ch = await raw.createConfirmChannel();
    rabbit = new RabbitConnector('c-redrive', b.config(), deps, { sampleIntervalMs: 0 });
    // Dead-lettering set by policy, as it usually is in production.
    await ch.assertExchange('dlx', 'direct', { durable: true });
    for (const q of ['orders', 'payments', 'mails']) {
      await ch.assertQueue(q, { durable: true });
      await ch.assertQueue(`${q}.dlq`, { durable: true });
      await ch.bindQueue(`${q}.dlq`, 'dlx', q);
    }
    await b.api('PUT', `/api/policies/${encodeURIComponent(b.vhost)}/dead-letters`, {
      pattern: '^(orders|payments|mails)$',
      'apply-to': 'queues',
      definition: { 'dead-letter-exchange': 'dlx' },
    });
    await eventually(
      () => rabbit.listDeadLetters(),
      (d) => d.length === 3,
    );
  });

  afterAll(async () => {
    await rabbit?.close();
    await raw?.close().catch(() => {});
    await b.cleanup();
  });

  it('recognises dead-letter queues whose dead-lettering is set by policy', async () => {
    const dead = await rabbit.listDeadLetters();
    expect(dead.map((d) => [d.queue, d.sources])).toEqual([
      ['mails.dlq', ['mails']],
      ['orders.dlq', ['orders']],
      ['payments.dlq', ['payments']],
    ]);
  });

  it('re-drives 10,000 dead-lettered messages to their original queue exactly once, keeping body, properties and headers', async () => {
    const n = 10_000;
    await deadLetter(ch, raw, 'orders', 'orders.dlq', n, 'o');
    const events: RedriveJob[] = [];
    const off = rabbit.onRedrive((j) => events.push(j));
    const started = Date.now();
    const { id } = await rabbit.startRedrive({ source: 'orders.dlq', all: true });
    const job = await waitJob(id);
    const seconds = (Date.now() - started) / 1000;
    off();
    expect(job, job.error ?? '').toMatchObject({ state: 'completed', moved: n, total: n, failed: 0, error: null, source: 'orders.dlq' });
    // eslint-disable-next-line no-console
    console.log(`re-drive of ${n} messages: ${seconds.toFixed(2)} s, ${Math.round(n / seconds)} msg/s`);

    // Acks carry no reply: RabbitMQ's count follows them shortly after.
    await expect.poll(async () => (await ch.checkQueue('orders.dlq')).messageCount).toBe(0);
    const arrived = await drain(raw, 'orders');
    expect(arrived.ids.length).toBe(n);
    expect(new Set(arrived.ids).size).toBe(n);
    expect(arrived.ids).toEqual(Array.from({ length: n }, (_, i) => `o-${i}`));
    const h = arrived.headers[0]!;
    expect(h).toMatchObject({ origin: 'test', 'x-redriven-count': 1, 'x-redriven-from': 'orders.dlq' });
    expect((h['x-death'] as Array<Record<string, unknown>>)[0]).toMatchObject({ queue: 'orders', reason: 'rejected', count: 1 });

    // Progress: at most about four updates a second, then one final state that never changes.
    const final = events.filter((e) => e.state === 'completed');
    expect(final).toHaveLength(1);
    expect(events[events.length - 1]!.state).toBe('completed');
    expect(events.length).toBeLessThanOrEqual(Math.ceil(seconds * 4) + 3);
    const audit = await rabbit.listAudit(10);
    expect(audit.find((a) => a.id === id)).toMatchObject({ action: 'redrive', source: 'orders.dlq', count: n, state: 'completed', selection: 'all' });
  });

  it('re-drives only the selected messages (matched by message id and body hash) to a chosen exchange, leaving the rest in order', async () => {
    await deadLetter(ch, raw, 'payments', 'payments.dlq', 20, 'p');
    await ch.assertExchange('replay', 'topic', { durable: true });
    await ch.assertQueue('replayed', { durable: true });
    await ch.bindQueue('replayed', 'replay', 'payments.#');
    const page = await rabbit.browseQueue({ queue: 'payments.dlq', limit: 50, includeUnacked: true, allowQuorumPeek: false });
    expect(page.messages).toHaveLength(20);
    const deaths = page.messages[0]!.properties.headers!['x-death'] as Array<Record<string, unknown>>;
    expect(deaths[0]).toMatchObject({ queue: 'payments', reason: 'rejected', count: 1, exchange: '', 'routing-keys': ['payments'] });
    const chosen = [page.messages[2]!, page.messages[7]!, page.messages[15]!];

    // Something else lands in the dead-letter queue between the read and the re-drive.
    await deadLetter(ch, raw, 'payments', 'payments.dlq', 3, 'late');
    const { id } = await rabbit.startRedrive({
      source: 'payments.dlq',
      messageIds: chosen.map((m) => m.id),
      target: { exchange: 'replay', routingKey: 'payments.retry' },
    });
    const job = await waitJob(id);
    expect(job, job.error ?? '').toMatchObject({ state: 'completed', moved: 3, total: 3, failed: 0, target: 'replay → payments.retry' });
    expect((await drain(raw, 'replayed')).ids).toEqual(['p-2', 'p-7', 'p-15']);
    const left = await drain(raw, 'payments.dlq');
    expect(left.ids).toEqual([...Array.from({ length: 20 }, (_, i) => `p-${i}`).filter((x) => !['p-2', 'p-7', 'p-15'].includes(x)), 'late-0', 'late-1', 'late-2']);
  });

  it('edits one message on the way and keeps everything not edited', async () => {
    await deadLetter(ch, raw, 'mails', 'mails.dlq', 2, 'e');
    const page = await rabbit.browseQueue({ queue: 'mails.dlq', limit: 10, includeUnacked: true, allowQuorumPeek: false });
    const { id } = await rabbit.startRedrive({
      source: 'mails.dlq',
      messageIds: [page.messages[1]!.id],
      edit: { body: '{"fixed":true}', headers: { fixedBy: 'test' } },
    });
    const job = await waitJob(id);
    expect(job.state).toBe('completed');
    const got = await raw.createChannel();
    const m = await got.get('mails', { noAck: true });
    expect(m && m.content.toString()).toBe('{"fixed":true}');
    expect(m && m.properties).toMatchObject({ messageId: 'e-1', contentType: 'application/json', headers: { origin: 'test', fixedBy: 'test', 'x-redriven-count': 1 } });
    await got.close();
    expect((await drain(raw, 'mails.dlq')).ids).toEqual(['e-0']);
  });

  it('leaves messages in the dead-letter queue when their copies cannot be routed, and says so', async () => {
    await ch.assertExchange('void', 'direct', { durable: true });
    await deadLetter(ch, raw, 'mails', 'mails.dlq', 30, 'u');
    const { id } = await rabbit.startRedrive({ source: 'mails.dlq', all: true, target: { exchange: 'void', routingKey: 'nobody' } });
    const job = await waitJob(id);
    expect(job).toMatchObject({ state: 'completed', moved: 0, failed: 30 });
    expect(job.error).toMatch(/unroutable/);
    expect(job.error).toMatch(/stay in "mails.dlq"/);
    expect((await drain(raw, 'mails.dlq')).ids).toEqual(Array.from({ length: 30 }, (_, i) => `u-${i}`));

    await expect(rabbit.startRedrive({ source: 'mails.dlq', all: true, target: { exchange: 'no-such-exchange', routingKey: 'x' } })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: `exchange "no-such-exchange" does not exist in vhost "${b.vhost}"`,
    });
    await expect(rabbit.startRedrive({ source: 'no-such-dlq', all: true })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await ch.assertQueue('dl-stream', { durable: true, arguments: { 'x-queue-type': 'stream' } });
    await expect(rabbit.startRedrive({ source: 'dl-stream', all: true })).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
    await ch.assertQueue('dl-quorum', { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 5 } });
    await expect(rabbit.startRedrive({ source: 'dl-quorum', messageIds: ['abc'] })).rejects.toMatchObject({
      code: 'PRECONDITION_FAILED',
      message: expect.stringMatching(/delivery limit of 5/),
    });
    // A start opens the job's connections beside its checks; when a check fails they are closed
    // before the error is given. rabbitmqctl sees connections at once (the management API only
    // after its next statistics round).
    if (b.local) {
      const listed = await new Promise<string>((resolve, reject) =>
        execFile('rabbitmqctl', ['list_connections', '-q', '--no-table-headers', 'vhost', 'client_properties'], { timeout: 60_000 }, (error, out) => (error ? reject(error) : resolve(out))),
      );
      const left = listed.split('\n').filter((l) => l.startsWith(`${b.vhost}\t`) && l.includes('Brokerdeck re-drive'));
      expect(left).toEqual([]);
    }
  });

  it.each([
    ['reading', '(read)'],
    ['publishing', '(write)'],
  ])('loses nothing when the server closes the re-drive\'s %s connection mid-way', async (_, which) => {
    const n = 4_000;
    const prefix = `cut${which === '(read)' ? 'r' : 'w'}`;
    await deadLetter(ch, raw, 'orders', 'orders.dlq', n, prefix);
    // Held by its rate: 4,000 messages at 40 a second take 100 s, and the cut
    // (rabbitmqctl, seconds on a busy machine) comes as soon as the job has started.
    const { id } = await rabbit.startRedrive({ source: 'orders.dlq', all: true, ratePerSecond: 40 });
    const started = await eventually(
      async () => (await rabbit.getRedrive(id))!,
      (j) => j.moved >= 20,
      60_000,
      20,
    );
    expect(started).toMatchObject({ state: 'running' });
    const closed = await eventually(
      () => b.closeConnections(`Brokerdeck re-drive ${id} ${which}`),
      (count) => count > 0,
      60_000,
      100,
    );
    expect(closed).toBeGreaterThanOrEqual(1);
    const job = await waitJob(id);
    // The cut landed while the job was still moving messages.
    expect(job.state, `the job ended ${job.state} after moving ${job.moved} of ${n}`).toBe('failed');
    expect(job.error).toMatch(/closed/);
    expect(job.moved).toBeGreaterThan(0);
    expect(job.moved).toBeLessThan(n);
    // The final state does not change afterwards.
    await new Promise((r) => setTimeout(r, 300));
    expect((await rabbit.getRedrive(id))!.state).toBe('failed');

    // Unacked copies go back to the dead-letter queue once the server has closed the connection.
    await eventually(
      async () => (await ch.checkQueue('orders.dlq')).messageCount + (await ch.checkQueue('orders')).messageCount,
      (total) => total >= n,
      20_000,
    );
    const redriven = await drain(raw, 'orders');
    const stayed = await drain(raw, 'orders.dlq');
    const all = [...redriven.ids, ...stayed.ids];
    const unique = new Set(all);
    for (let i = 0; i < n; i++) expect(unique.has(`${prefix}-${i}`)).toBe(true);
    // Only copies confirmed but not yet acked at the cut can exist twice.
    expect(all.length - unique.size).toBeLessThanOrEqual(1_000);
    expect(redriven.ids.length).toBeGreaterThanOrEqual(job.moved);
  });

  it('cancels a rate-limited re-drive: the final state is "cancelled", nothing is lost or duplicated, and the audit log records it', async () => {
    const n = 600;
    await deadLetter(ch, raw, 'payments', 'payments.dlq', n, 'c');
    const events: RedriveJob[] = [];
    const off = rabbit.onRedrive((j) => events.push(j));
    // Held by its rate (600 messages at 20 a second take 30 s) until it is cancelled.
    const { id } = await rabbit.startRedrive({ source: 'payments.dlq', all: true, ratePerSecond: 20 });
    await eventually(
      async () => (await rabbit.getRedrive(id))!,
      (j) => j.moved >= 10,
      60_000,
      20,
    );
    const cancelled = await rabbit.cancelRedrive(id);
    expect(cancelled?.state).toBe('cancelled');
    const count = events.length;
    await new Promise((r) => setTimeout(r, 600));
    expect(events.length).toBe(count);
    off();
    expect(events[events.length - 1]).toMatchObject({ id, state: 'cancelled' });
    const moved = cancelled!.moved;
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThan(n);
    const back = await drain(raw, 'payments');
    const stayed = await drain(raw, 'payments.dlq');
    expect(back.ids.length).toBe(moved);
    expect([...back.ids, ...stayed.ids].sort()).toEqual(Array.from({ length: n }, (_, i) => `c-${i}`).sort());
    expect(stayed.ids).toEqual(Array.from({ length: n }, (_, i) => `c-${i}`).slice(moved));
    const audit = deps.audits.find((a) => a.id === id);
    expect(audit).toMatchObject({ state: 'cancelled', count: moved, source: 'payments.dlq', selection: 'all, ≤ 20/s' });
    expect((await rabbit.listRedrives()).map((j) => j.id)).toContain(id);
  });
});
