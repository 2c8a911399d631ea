/**
 * Brokerdeck's RabbitMQ connector against a three-node cluster, with the
 * node that holds a dead-letter queue stopped in the middle of a re-drive
 * and started again:
 *
 * - a quorum queue whose leader's node stops: the re-drive goes on through
 *   the new leader, browsing and listing answer during the outage, and every
 *   message arrives exactly once;
 * - a classic queue whose home node stops: the queue is unavailable, so the
 *   re-drive fails with the reason and browsing says the node is down; once
 *   the node is back a second re-drive moves the rest, and a message exists
 *   twice only if its copy was confirmed while its ack could no longer reach
 *   the stopped node (the window README.md documents);
 * - the node the connection itself uses crashes: the job fails at once, the
 *   connection reconnects by itself when the node is back, and nothing is lost.
 *
 * Each fault lands while the job provably runs: the first job is held by a
 * rate limit at which it would need ten minutes, the fault comes after it
 * has made progress, and once the node is back (and the job progressed
 * again) it is cancelled and a second, unlimited job moves the rest.
 */
import { inject, afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RabbitConnector } from '../../src-main/connectors/rabbitmq/index.js';
import type { RedriveJob } from '../../src-main/contract/types.js';
import { eventually, testDeps } from '../integration/rabbitmq/broker.js';
import { deadLetter, drainIds, rabbitCluster, tally, type RabbitCluster } from './rabbitmq-helpers.js';

const info = inject('rabbitmqCluster');
const slice = inject('clusterSlice');
const title = info.ok ? 'RabbitMQ cluster of three' : `RabbitMQ cluster of three (skipped: ${info.reason})`;

/** Waits for a condition on a job, failing with the job's last state. */
async function jobUntil(c: RabbitConnector, id: string, ok: (j: RedriveJob) => boolean, what: string, timeoutMs = 120_000): Promise<RedriveJob> {
  const job = await eventually(async () => (await c.getRedrive(id))!, ok, timeoutMs, 50);
  if (!ok(job)) throw new Error(`${what}: not within ${timeoutMs / 1000} s; the job is ${JSON.stringify(job)}`);
  return job;
}

/** The job's final state, or a failure if it does not end (a job that hangs is a bug). */
async function settled(c: RabbitConnector, id: string, timeoutMs = 180_000): Promise<RedriveJob> {
  return jobUntil(c, id, (j) => j.finishedAt !== null, 'the re-drive did not end', timeoutMs);
}

/**
 * A classic queue dead-lettering into `dlq`. (RabbitMQ 3.10 dead-letters from a quorum queue at
 * most once by default, and a few hundred of 12,000 went missing here; with at-least-once, some
 * stayed in the source for good. Dead letters from a classic queue all arrive.)
 */
function classicSource(dlq: string): Record<string, unknown> {
  return { 'x-queue-type': 'classic', 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq };
}

function ids(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
}

describe.skipIf(!info.ok)(title, () => {
  if (!info.ok) {
    it(`needs a RabbitMQ cluster: ${info.reason}`, () => {});
    return;
  }
  let cluster: RabbitCluster;
  const figures: string[] = [];

  beforeAll(async () => {
    cluster = await rabbitCluster(info);
    figures.push(`cluster started in ${info.startSeconds.toFixed(1)} s`);
  });

  afterAll(async () => {
    await cluster?.cleanup();
    console.log(`[rabbitmq cluster] ${figures.join('; ')}`);
  });

  it('re-drives into a quorum queue from a quorum dead-letter queue while their leader\'s node stops and starts: browsing and listing answer, every message arrives once', async (ctx) => {
    // More than the re-drive's window (5,000 unacked), so that some stay ready for browsing.
    const n = slice ? 6_000 : 12_000;
    const rate = slice ? 10 : 20;
    // The dead-letter queue and the re-drive's target are declared on one node, which leads them
    // (RabbitMQ places a new quorum queue's leader on the declaring node). The connection uses another.
    const setup = await cluster.connect(2);
    const ch = await setup.createChannel();
    await ch.assertQueue('q.orders.dlq', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await ch.assertQueue('q.orders', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await ch.close();
    await setup.close();
    const leader = await cluster.nodeOf('q.orders.dlq');
    expect(await cluster.nodeOf('q.orders')).toBe(leader);
    const via = leader === 1 ? 2 : 1;
    const t0 = Date.now();
    const intake = await cluster.connect(via);
    const ich = await intake.createChannel();
    await ich.assertQueue('q.intake', { durable: true, arguments: classicSource('q.orders.dlq') });
    await ich.close();
    await deadLetter(intake, 'q.intake', 'q.orders.dlq', n, 'q');
    await intake.close();
    const fillSeconds = (Date.now() - t0) / 1000;
    const target = { exchange: '', routingKey: 'q.orders' };

    const rabbit = new RabbitConnector('cluster-quorum', cluster.config(via), testDeps(), { sampleIntervalMs: 0 });
    let halted = false;
    try {
      // The management API counts what arrived at its next statistics round.
      const dead = await eventually(
        () => rabbit.listDeadLetters(),
        (d) => d.find((x) => x.queue === 'q.orders.dlq')?.count === n,
        60_000,
      );
      expect(dead.find((d) => d.queue === 'q.orders.dlq')).toMatchObject({ count: n, sources: ['q.intake'] });
      const first = (await rabbit.startRedrive({ source: 'q.orders.dlq', all: true, ratePerSecond: rate, target })).id;
      await jobUntil(rabbit, first, (j) => j.moved >= rate, 'the first job made no progress before the fault');

      const haltSeconds = await cluster.halt(leader);
      halted = true;
      const atHalt = (await rabbit.getRedrive(first))!;
      const haltedAt = Date.now();
      expect(atHalt.state).toBe('running');

      // During the outage: a new leader takes over, the job goes on, the connection lists and browses.
      await eventually(() => cluster.nodeOf('q.orders.dlq'), (node) => node !== leader, 60_000, 250);
      const during = await jobUntil(rabbit, first, (j) => j.moved >= atHalt.moved + rate, 'the re-drive made no progress while the leader\'s node was down');
      const stallSeconds = (Date.now() - haltedAt) / 1000;
      expect(during.state).toBe('running');
      const listed = await rabbit.listQueues();
      expect(listed.map((q) => q.name)).toEqual(expect.arrayContaining(['q.orders', 'q.orders.dlq']));
      const page = await rabbit.browseQueue({ queue: 'q.orders.dlq', limit: 20, includeUnacked: false, allowQuorumPeek: false });
      expect(page.messages.length).toBeGreaterThan(0);
      for (const m of page.messages) expect(m.properties.messageId).toMatch(/^q-\d+$/);

      const resumeSeconds = await cluster.resume(leader);
      halted = false;
      const atResume = (await rabbit.getRedrive(first))!;
      await jobUntil(rabbit, first, (j) => j.moved >= atResume.moved + rate, 'the re-drive made no progress after the node came back');
      const cancelled = (await rabbit.cancelRedrive(first))!;
      expect(cancelled).toMatchObject({ state: 'cancelled', failed: 0 });

      const t1 = Date.now();
      const second = await settled(rabbit, (await rabbit.startRedrive({ source: 'q.orders.dlq', all: true, target })).id);
      const secondSeconds = (Date.now() - t1) / 1000;
      expect(second, second.error ?? '').toMatchObject({ state: 'completed', failed: 0, moved: n - cancelled.moved });

      const check = await cluster.connect(via);
      const arrived = await drainIds(check, 'q.orders');
      const checkCh = await check.createChannel();
      await expect.poll(async () => (await checkCh.checkQueue('q.orders.dlq')).messageCount).toBe(0);
      await check.close();
      const counts = tally(arrived);
      expect([...counts.keys()].sort()).toEqual(ids('q', n).sort());
      const duplicated = [...counts.values()].filter((c) => c > 1).length;
      expect(duplicated).toBe(0);
      const line =
        `quorum: ${n} messages filled in ${fillSeconds.toFixed(1)} s; node ${leader} (leader) stopped in ${haltSeconds.toFixed(1)} s with ${atHalt.moved} moved, ` +
        `${during.moved - atHalt.moved} more moved ${stallSeconds.toFixed(1)} s after it was down, back in ${resumeSeconds.toFixed(1)} s; first job cancelled at ${cancelled.moved}, ` +
        `second moved ${second.moved} in ${secondSeconds.toFixed(1)} s; ${arrived.length} arrived, ${duplicated} duplicated`;
      figures.push(line);
      ctx.annotate(line);
    } finally {
      if (halted) await cluster.resume(leader);
      await rabbit.close();
    }
  });

  it.skipIf(slice)('re-drives a classic dead-letter queue whose home node stops: the job fails with the reason, browsing says the node is down, nothing is lost', async (ctx) => {
    const n = 6_000;
    const rate = 20;
    const home = 2;
    const via = 1;
    const other = await cluster.connect(3);
    const och = await other.createChannel();
    await och.assertQueue('c.mails', { durable: true, arguments: classicSource('c.mails.dlq') });
    await och.close();
    const homeConn = await cluster.connect(home);
    const hch = await homeConn.createChannel();
    await hch.assertQueue('c.mails.dlq', { durable: true, arguments: { 'x-queue-type': 'classic' } });
    await hch.close();
    await homeConn.close();
    expect(await cluster.nodeOf('c.mails.dlq')).toBe(home);
    expect(await cluster.nodeOf('c.mails')).toBe(3);
    await deadLetter(other, 'c.mails', 'c.mails.dlq', n, 'c');
    await other.close();

    const rabbit = new RabbitConnector('cluster-classic', cluster.config(via), testDeps(), { sampleIntervalMs: 0 });
    let halted = false;
    try {
      const first = (await rabbit.startRedrive({ source: 'c.mails.dlq', all: true, ratePerSecond: rate })).id;
      await jobUntil(rabbit, first, (j) => j.moved >= rate, 'the first job made no progress before the fault');
      const haltSeconds = await cluster.halt(home);
      halted = true;

      const failed = await settled(rabbit, first, 60_000);
      expect(failed.state).toBe('failed');
      expect(failed.error).toMatch(/node|down|unavailable/i);
      expect(failed.error).toMatch(/stay in "c\.mails\.dlq"/);

      // Listing goes on; browsing the queue says why it cannot.
      const listed = await rabbit.listQueues();
      expect(listed.map((q) => q.name)).toEqual(expect.arrayContaining(['c.mails', 'c.mails.dlq']));
      const t = Date.now();
      await expect(rabbit.browseQueue({ queue: 'c.mails.dlq', limit: 20, includeUnacked: false, allowQuorumPeek: false })).rejects.toMatchObject({
        code: 'UNAVAILABLE',
        message: expect.stringMatching(/c\.mails\.dlq.*node.*down/),
      });
      console.log(`browsing the queue of a stopped node answered in ${((Date.now() - t) / 1000).toFixed(1)} s`);

      const resumeSeconds = await cluster.resume(home);
      halted = false;
      const check = await cluster.connect(via);
      const cch = await check.createChannel();
      cch.on('error', () => {});
      const total = async () => (await cch.checkQueue('c.mails.dlq')).messageCount + (await cch.checkQueue('c.mails')).messageCount;
      expect(await eventually(total, (x) => x >= n, 60_000)).toBeGreaterThanOrEqual(n);

      const second = await settled(rabbit, (await rabbit.startRedrive({ source: 'c.mails.dlq', all: true })).id);
      expect(second, second.error ?? '').toMatchObject({ state: 'completed', failed: 0 });
      const arrived = await drainIds(check, 'c.mails');
      await expect.poll(async () => (await cch.checkQueue('c.mails.dlq')).messageCount).toBe(0);
      await check.close();
      const counts = tally(arrived);
      expect([...counts.keys()].sort()).toEqual(ids('c', n).sort());
      const duplicated = [...counts.values()].filter((c) => c > 1).length;
      // A copy exists twice only when its confirm came and its ack no longer reached the stopped
      // node (README: "a crash between a confirm and its ack"): at this rate, at most the last
      // second's messages before the stop.
      expect(duplicated).toBeLessThanOrEqual(rate);
      const line =
        `classic: node ${home} (home) stopped in ${haltSeconds.toFixed(1)} s with ${failed.moved} moved; first job failed ("${failed.error}"); ` +
        `back in ${resumeSeconds.toFixed(1)} s; second moved ${second.moved}; ${arrived.length} arrived, ${duplicated} duplicated`;
      figures.push(line);
      ctx.annotate(line);
    } finally {
      if (halted) await cluster.resume(home);
      await rabbit.close();
    }
  });

  it.skipIf(slice)('the node the connection uses crashes mid-re-drive: the job fails at once, the connection comes back by itself, nothing is lost', async (ctx) => {
    const n = 4_000;
    const rate = 20;
    const via = 3;
    // The dead letters come from a classic queue on node 1; the dead-letter queue's leader is the
    // connection's node, whose crash moves it too.
    const conn = await cluster.connect(via);
    const ch = await conn.createChannel();
    await ch.assertQueue('x.jobs.dlq', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await ch.close();
    await conn.close();
    const source = await cluster.connect(1);
    const sch = await source.createChannel();
    await sch.assertQueue('x.jobs', { durable: true, arguments: classicSource('x.jobs.dlq') });
    await sch.close();
    await deadLetter(source, 'x.jobs', 'x.jobs.dlq', n, 'x');
    await source.close();
    expect(await cluster.nodeOf('x.jobs.dlq')).toBe(via);

    const rabbit = new RabbitConnector('cluster-own-node', cluster.config(via), testDeps(), { sampleIntervalMs: 0, connectTimeoutMs: 3_000, managementTimeoutMs: 3_000 });
    let halted = false;
    try {
      const first = (await rabbit.startRedrive({ source: 'x.jobs.dlq', all: true, ratePerSecond: rate })).id;
      await jobUntil(rabbit, first, (j) => j.moved >= rate, 'the first job made no progress before the fault');
      await cluster.halt(via, true);
      halted = true;
      const failed = await settled(rabbit, first, 60_000);
      expect(failed.state).toBe('failed');
      expect(failed.error).toMatch(/closed/);

      // Every operation answers promptly with UNAVAILABLE while the node is down.
      const t = Date.now();
      await expect(rabbit.browseQueue({ queue: 'x.jobs.dlq', limit: 10, includeUnacked: false, allowQuorumPeek: false })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      await expect(rabbit.listQueues()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      console.log(`browsing and listing through a stopped node answered in ${((Date.now() - t) / 1000).toFixed(1)} s`);

      const resumeSeconds = await cluster.resume(via);
      halted = false;
      await eventually(async () => rabbit.info().status, (s) => s === 'connected', 60_000);
      expect((await rabbit.listQueues()).map((q) => q.name)).toEqual(expect.arrayContaining(['x.jobs', 'x.jobs.dlq']));
      // What the crashed job held is back in the dead-letter queue (AMQP's counts: the management
      // API's come with its statistics, a while after a node restarts).
      const check = await cluster.connect(1);
      const cch = await check.createChannel();
      cch.on('error', () => {});
      const total = async () => (await cch.checkQueue('x.jobs.dlq')).messageCount + (await cch.checkQueue('x.jobs')).messageCount;
      expect(await eventually(total, (x) => x >= n, 60_000)).toBeGreaterThanOrEqual(n);
      const second = await settled(rabbit, (await rabbit.startRedrive({ source: 'x.jobs.dlq', all: true })).id);
      expect(second, second.error ?? '').toMatchObject({ state: 'completed', failed: 0 });

      const arrived = await drainIds(check, 'x.jobs');
      await expect.poll(async () => (await cch.checkQueue('x.jobs.dlq')).messageCount).toBe(0);
      await check.close();
      const counts = tally(arrived);
      expect([...counts.keys()].sort()).toEqual(ids('x', n).sort());
      const duplicated = [...counts.values()].filter((c) => c > 1).length;
      // Only copies confirmed while the crash took their acks with it.
      expect(duplicated).toBeLessThanOrEqual(rate);
      const line = `own node ${via} killed with ${failed.moved} moved ("${failed.error}"); back in ${resumeSeconds.toFixed(1)} s; second moved ${second.moved}; ${arrived.length} arrived, ${duplicated} duplicated`;
      figures.push(line);
      ctx.annotate(line);
    } finally {
      if (halted) await cluster.resume(via);
      await rabbit.close();
    }
  });
});
