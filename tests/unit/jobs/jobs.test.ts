/**
 * The job machinery every re-drive runs on: final states never change,
 * progress is throttled (and the latest state still arrives), cancel reaches
 * the work, cleanup runs in finally, finished jobs are kept by one bounded
 * rule, and the audit row is written once, when the job ends.
 */
import { describe, expect, it, vi } from 'vitest';
import type { AuditEntry, RedriveJob } from '../../../src-main/contract/types.js';
import { expired, isFinal, Jobs, RETENTION, type JobsOptions, type Tracked } from '../../../src-main/jobs/jobs.js';
import { sleep } from '../../../src-main/jobs/pace.js';
import { redriveJobs } from '../../../src-main/jobs/redrives.js';

interface Work extends Tracked {
  moved: number;
  error: string | null;
}

function job(id: string, over: Partial<Work> = {}): Work {
  return { id, state: 'pending', startedAt: Date.now(), finishedAt: null, moved: 0, error: null, ...over };
}

function registry(over: Partial<JobsOptions<Work, Work>> = {}) {
  const audits: AuditEntry[] = [];
  const views: Work[] = [];
  const forgotten: string[] = [];
  const jobs = new Jobs<Work, Work>({
    view: (j) => ({ ...j }),
    describe: (j) => ({ connectionId: 'c', action: 'test', source: 's', target: 't', count: j.moved, selection: 'all' }),
    audit: (e) => audits.push(e),
    emit: (v) => views.push(v),
    forget: (ids) => forgotten.push(...ids),
    failed: (j, error) => (j.error = String(error)),
    ...over,
  });
  return { jobs, audits, views, forgotten };
}

async function until(cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('job machinery', () => {
  it('ends a job once: a final state never changes, and the audit row is written once, at the end', () => {
    const { jobs, audits, views } = registry();
    const j = job('a');
    const c = jobs.add(j);
    c.running();
    expect(j.state).toBe('running');
    expect(audits).toEqual([]);
    j.moved = 7;
    expect(c.finish('completed')).toBe(true);
    expect(j.finishedAt).toEqual(expect.any(Number));
    const published = views.length;
    expect(c.finish('failed')).toBe(false);
    expect(jobs.cancel('a')).toMatchObject({ state: 'completed' });
    c.running();
    c.progress();
    c.publishNow();
    expect(jobs.get('a')).toMatchObject({ state: 'completed', moved: 7 });
    expect(views.length).toBe(published);
    expect(views.at(-1)).toMatchObject({ state: 'completed' });
    expect(audits).toEqual([{ id: 'a', at: j.startedAt, connectionId: 'c', action: 'test', source: 's', target: 't', count: 7, selection: 'all', state: 'completed' }]);
    expect(() => jobs.add(job('a'))).toThrow(/registered twice/);
    expect(() => jobs.add(job('b')).finish('running' as never)).toThrow(/not a final job state/);
    expect(['completed', 'cancelled', 'failed'].every((s) => isFinal(s as never))).toBe(true);
    expect(isFinal('running')).toBe(false);
  });

  it('throttles progress to the interval, and the latest state follows the last change', () => {
    // The clock is the test's: publications are timed by it, not by how busy the machine is.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      // 1 ms asked, 100 ms applied: the interval is held within 100 ms–1 s.
      const { jobs } = registry({ progressMs: 1 });
      const seen: Array<{ at: number; moved: number }> = [];
      jobs.subscribe((v) => seen.push({ at: Date.now(), moved: v.moved }));
      const j = job('p');
      const c = jobs.add(j);
      c.running();
      // A change every 10 ms for a second.
      for (let t = 0; t < 1000; t += 10) {
        j.moved++;
        c.progress();
        vi.advanceTimersByTime(10);
      }
      const last = j.moved;
      for (let i = 1; i < seen.length; i++) expect(seen[i]!.at - seen[i - 1]!.at).toBeGreaterThanOrEqual(100);
      // 100 changes, at most one publication per 100 ms (and the one for running).
      expect(seen.length).toBeLessThanOrEqual(12);
      expect(seen.length).toBeGreaterThanOrEqual(9);
      vi.advanceTimersByTime(100);
      expect(seen.at(-1)).toMatchObject({ moved: last });
      c.finish('completed');
      expect(seen.at(-1)).toMatchObject({ moved: last });
    } finally {
      vi.useRealTimers();
    }
  });

  it("a job's workers may all wait on its cancel signal at once, without a leak warning, and a cancel ends every wait", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const { jobs } = registry();
      const j = job('w');
      const c = jobs.add(j);
      let woken = 0;
      void c.run(async (ctl) => {
        ctl.running();
        // 40 workers, each in a paced sleep of an hour on the job's signal (SQS runs 32).
        await Promise.all(Array.from({ length: 40 }, () => sleep(3_600_000, ctl.signal).then(() => woken++)));
      });
      await until(() => j.state === 'running');
      jobs.cancel('w');
      expect(await jobs.settled('w')).toMatchObject({ state: 'cancelled' });
      expect(woken).toBe(40);
      // A warning is emitted on the next tick: one turn later, none arrived.
      await new Promise((r) => setImmediate(r));
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('cancel reaches the work, which ends as cancelled; cleanup runs in finally before the job is settled', async () => {
    const { jobs, audits } = registry();
    const j = job('x');
    const c = jobs.add(j);
    let hook = 0;
    c.onCancel(() => hook++);
    let cleaned = false;
    void c.run(async (ctl) => {
      ctl.running();
      try {
        await new Promise<void>((resolve) => ctl.signal.addEventListener('abort', () => resolve()));
        j.moved = 3;
      } finally {
        await new Promise((r) => setTimeout(r, 20));
        cleaned = true;
      }
    });
    await until(() => j.state === 'running');
    expect(jobs.cancel('x')).toMatchObject({ id: 'x' });
    jobs.cancel('x');
    expect(hook).toBe(1);
    const done = await jobs.settled('x');
    expect(cleaned).toBe(true);
    expect(done).toMatchObject({ state: 'cancelled', moved: 3 });
    expect(audits.map((a) => [a.id, a.state, a.count])).toEqual([['x', 'cancelled', 3]]);
    expect(await jobs.settled('nope')).toBeNull();
    expect(jobs.cancel('nope')).toBeNull();
  });

  it('ends work that throws as failed with its error, and work that returns as completed', async () => {
    const { jobs, audits } = registry();
    const bad = jobs.add(job('bad'));
    await bad.run(async () => {
      throw new Error('broker went away');
    });
    expect(jobs.get('bad')).toMatchObject({ state: 'failed', error: 'Error: broker went away' });
    const ok = jobs.add(job('ok'));
    await ok.run(async (ctl) => ctl.running());
    expect(jobs.get('ok')).toMatchObject({ state: 'completed' });
    // A job the work ended itself keeps the state it chose.
    const own = jobs.add(job('own'));
    await own.run(async (ctl) => {
      ctl.finish('failed');
    });
    expect(jobs.get('own')).toMatchObject({ state: 'failed' });
    expect(audits.map((a) => a.state)).toEqual(['failed', 'completed', 'failed']);
  });

  it('cancelAll asks every unfinished job to stop and waits for it, or for at most the given time', async () => {
    const { jobs } = registry();
    const polite = jobs.add(job('polite'));
    void polite.run((ctl) => new Promise<void>((resolve) => ctl.onCancel(resolve)));
    const stubborn = jobs.add(job('stubborn'));
    let release!: () => void;
    void stubborn.run(() => new Promise<void>((resolve) => (release = resolve)));
    await jobs.cancelAll(50);
    expect(jobs.get('polite')).toMatchObject({ state: 'cancelled' });
    expect(jobs.get('stubborn')!.state).toBe('pending');
    release();
    await jobs.cancelAll();
    expect(jobs.get('stubborn')).toMatchObject({ state: 'cancelled' });
  });

  it('cancelAndWait answers with the final state, or with the state it has after the wait', async () => {
    const { jobs } = registry();
    const polite = jobs.add(job('polite'));
    void polite.run((ctl) => new Promise<void>((resolve) => ctl.onCancel(resolve)));
    expect(await jobs.cancelAndWait('polite', 60_000)).toMatchObject({ state: 'cancelled' });
    const stubborn = jobs.add(job('stubborn'));
    let release!: () => void;
    void stubborn.run(() => new Promise<void>((resolve) => (release = resolve)));
    // Its work does not stop: the answer comes after the wait, with the state it has then.
    expect(await jobs.cancelAndWait('stubborn', 30)).toMatchObject({ state: 'pending' });
    release();
    expect(await jobs.settled('stubborn')).toMatchObject({ state: 'cancelled' });
    expect(await jobs.cancelAndWait('nope', 30)).toBeNull();
  });

  it('keeps the newest finished jobs and the recent ones, bounded, and never an unfinished one', () => {
    const now = 10_000_000;
    const r = { keepLast: 2, keepForMs: 1_000, max: 4 };
    const finished = (id: string, agoMs: number): Tracked => ({ id, state: 'completed', startedAt: now - agoMs - 10, finishedAt: now - agoMs });
    const list: Tracked[] = [
      finished('old1', 50_000),
      finished('old2', 40_000),
      finished('old3', 30_000),
      finished('new1', 100),
      { id: 'run', state: 'running', startedAt: 0, finishedAt: null },
    ];
    // The two newest whatever their age (new1, old3), and those under a second old.
    expect(expired(list, now, r).sort()).toEqual(['old1', 'old2']);
    const many = Array.from({ length: 10 }, (_, i) => finished(`n${i}`, i));
    // All recent, but at most four.
    expect(expired(many, now, r)).toEqual(['n4', 'n5', 'n6', 'n7', 'n8', 'n9']);
    expect(RETENTION).toEqual({ keepLast: 100, keepForMs: 86_400_000, max: 500 });

    let clock = now;
    const { jobs, forgotten } = registry({ retention: r, now: () => clock });
    jobs.add(job('running', { startedAt: 1 }));
    for (let i = 0; i < 6; i++) {
      const c = jobs.add(job(`j${i}`, { startedAt: clock }));
      c.finish('completed');
      clock += 10_000;
    }
    expect(forgotten).toEqual(['j0', 'j1', 'j2', 'j3']);
    expect(jobs.list().map((v) => v.id)).toEqual(['j5', 'j4', 'running']);
    expect(jobs.get('j0')).toBeNull();
  });

  it('logs a failed audit write when it has a logger, and otherwise throws it once the job has ended', () => {
    const errors: string[] = [];
    const logged = registry({
      audit: () => {
        throw new Error('disk full');
      },
      log: { warn: () => {}, error: (m, f) => errors.push(`${m} ${JSON.stringify(f)}`) },
    });
    expect(logged.jobs.add(job('l')).finish('completed')).toBe(true);
    expect(errors[0]).toMatch(/audit row.*disk full/);
    const bare = registry({
      audit: () => {
        throw new Error('disk full');
      },
    });
    const c = bare.jobs.add(job('t'));
    expect(() => c.finish('completed')).toThrow('disk full');
    expect(bare.jobs.get('t')).toMatchObject({ state: 'completed' });
    expect(bare.views.at(-1)).toMatchObject({ id: 't', state: 'completed' });
  });

  it('gives a connection re-drive its id prefix, keeps the selection out of its view and puts it in the audit row', async () => {
    const audits: AuditEntry[] = [];
    const jobs = redriveJobs({ idPrefix: 'rd-', audit: { record: (e) => audits.push(e) }, log: { warn() {}, error() {} } });
    const id = jobs.newId();
    expect(id).toMatch(/^rd-[0-9a-f-]{36}$/);
    const j: RedriveJob & { selection: string } = {
      id,
      connectionId: 'r1',
      source: 'orders.dlq',
      target: 'origin',
      state: 'pending',
      moved: 0,
      total: 2,
      failed: 0,
      ratePerSecond: null,
      startedAt: Date.now(),
      finishedAt: null,
      error: null,
      selection: 'all',
    };
    const c = jobs.add(j);
    await c.run(async (ctl) => {
      ctl.running();
      j.moved = 2;
    });
    expect(jobs.get(id)).not.toHaveProperty('selection');
    expect(jobs.get(id)).toMatchObject({ state: 'completed', moved: 2 });
    expect(audits).toEqual([{ id, at: j.startedAt, connectionId: 'r1', action: 'redrive', source: 'orders.dlq', target: 'origin', count: 2, selection: 'all', state: 'completed' }]);
  });
});
