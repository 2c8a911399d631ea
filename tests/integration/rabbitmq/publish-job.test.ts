/**
 * Bulk publishing to a real RabbitMQ as a job: 100,000 copies with
 * placeholders go out pipelined with confirms, the job reports progress on
 * the `publishJobs` stream and ends 'completed' with every copy confirmed
 * (RabbitMQ's own count agrees); a cancelled job stops sending and its
 * confirmed count is exactly what the queue holds.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PublishJob } from '../../../src-main/contract/types.js';
import { startCore, type Core } from '../../../src-main/core/core.js';
import { prepareBroker } from './broker.js';

const rabbit = await prepareBroker();

describe.skipIf(!rabbit.ok)(`publish jobs on RabbitMQ${rabbit.ok ? '' : ` (skipped: ${rabbit.reason})`}`, { timeout: 120_000 }, () => {
  let core: Core;
  let connectionId: string;

  beforeAll(async () => {
    if (!rabbit.ok) return;
    core = await startCore({ dataDir: null, version: '0.0.0-test' });
    connectionId = (await core.call('connections/create', rabbit.config({ name: 'publish jobs' }))).id;
  });

  afterAll(async () => {
    await core?.close();
    if (rabbit.ok) await rabbit.cleanup();
  });

  async function queueDepth(queue: string): Promise<number> {
    if (!rabbit.ok) return -1;
    const q = (await rabbit.api('GET', `/api/queues/${encodeURIComponent(rabbit.vhost)}/${encodeURIComponent(queue)}`)) as { messages?: number };
    return q.messages ?? 0;
  }

  function follow(id: string): { events: PublishJob[]; end: Promise<PublishJob> } {
    const events: PublishJob[] = [];
    let off = () => {};
    const end = new Promise<PublishJob>((resolve) => {
      off = core.subscribe('publishJobs', { id }, (job) => {
        events.push(job);
        if (['completed', 'cancelled', 'failed'].includes(job.state)) resolve(job);
      });
    });
    void end.then(() => off());
    return { events, end };
  }

  it('publishes 100,000 copies as a job with progress, every copy confirmed', async () => {
    const queue = `bulk-${randomUUID().slice(0, 8)}`;
    await core.call('queues/declare', { connectionId, queue, durable: false });
    const started = await core.call('publish/start', { connectionId, routingKey: queue, body: '{"n":{{i}}}', properties: { messageId: 'm-{{i}}' }, count: 100_000 });
    expect(started).toMatchObject({ kind: 'publish', connectionId, state: 'running', total: 100_000 });
    const { events, end } = follow(started.id);
    const final = await end;
    expect(final.error ?? null).toBeNull();
    expect(final).toMatchObject({ state: 'completed', sent: 100_000, confirmed: 100_000 });
    expect(final.result).toMatchObject({ published: 100_000, returned: 0, rejected: 0, routed: { [queue]: 100_000 } });
    expect(final.ratePerSecond).toBeGreaterThan(0);
    await expect.poll(() => queueDepth(queue)).toBe(100_000);
    // The job is listed and readable after it ended; its publish is in the history.
    expect((await core.call('publish/jobs', {})).map((j) => j.id)).toContain(started.id);
    expect(await core.call('publish/job', { id: started.id })).toMatchObject({ state: 'completed', confirmed: 100_000 });
    expect(events.length).toBeGreaterThan(0);
    const history = await core.call('publishHistory/list', { limit: 10 });
    expect(history.find((h) => h.count === 100_000 && h.connectionId === connectionId)).toBeDefined();
  });

  it('a cancelled job stops sending, and what it confirmed is what the queue holds', async () => {
    const queue = `bulk-cancel-${randomUUID().slice(0, 8)}`;
    await core.call('queues/declare', { connectionId, queue, durable: false });
    const started = await core.call('publish/start', { connectionId, routingKey: queue, body: 'x{{i}}', count: 1_000_000 });
    const { events, end } = follow(started.id);
    // Cancelled once the first progress shows copies confirmed.
    await expect.poll(() => events.some((e) => e.confirmed > 0)).toBe(true);
    const cancelled = await core.call('publish/cancel', { id: started.id });
    const final = cancelled.state === 'cancelled' ? cancelled : await end;
    expect(final.state).toBe('cancelled');
    expect(final.result?.published).toBeGreaterThan(0);
    expect(final.result!.published).toBeLessThan(1_000_000);
    expect(final.confirmed).toBe(final.result!.published);
    await expect.poll(() => queueDepth(queue)).toBe(final.result!.published);
    await expect(core.call('publish/cancel', { id: 'pj-nope' })).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'id' });
  });
});
