/**
 * The metrics history every sampling connector uses: one sample a second for
 * an hour, minute means for a day, runs of equal samples stored once. Pure
 * in-memory code, checked with explicit timestamps.
 */
import { describe, expect, it } from 'vitest';
import { MetricsHistory } from '../../../src-main/metrics/history.js';

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);

describe('MetricsHistory', () => {
  it('returns one sample per second for the last hour, expanding runs of equal samples', () => {
    const h = new MetricsHistory({ metrics: ['ready', 'unacked'] });
    for (let i = 0; i < 10; i++) h.record('queue', 'q', { ready: i < 5 ? 1 : 2, unacked: 0 }, T0 + i * 1000 + 17);
    const s = h.series('queue', 'q', 'hour', T0 + 10_000).samples;
    expect(s.map((x) => x.t)).toEqual(Array.from({ length: 10 }, (_, i) => T0 + i * 1000));
    expect(s.map((x) => x.ready)).toEqual([1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    expect(s[0]).toEqual({ t: T0, ready: 1, unacked: 0 });
  });

  it('keeps a late tick from leaving a hole, but shows a real gap as one', () => {
    const h = new MetricsHistory({ metrics: ['ready'] });
    h.record('queue', 'q', { ready: 3 }, T0);
    h.record('queue', 'q', { ready: 3 }, T0 + 2_000);
    h.record('queue', 'q', { ready: 3 }, T0 + 60_000);
    const ts = h.series('queue', 'q', 'hour', T0 + 61_000).samples.map((x) => x.t - T0);
    expect(ts).toEqual([0, 1_000, 2_000, 60_000]);
  });

  it('drops second samples older than an hour and averages minutes for the day', () => {
    const h = new MetricsHistory({ metrics: ['publish'] });
    for (let i = 0; i < 2 * 3600; i += 1) h.record('queue', 'q', { publish: Math.floor(i / 60) % 2 === 0 ? 10 : 20 }, T0 + i * 1000);
    const now = T0 + 2 * 3600 * 1000;
    const hour = h.series('queue', 'q', 'hour', now).samples;
    expect(hour.length).toBeLessThanOrEqual(3601);
    expect(hour[0]!.t).toBeGreaterThanOrEqual(now - 3_600_000);
    const day = h.series('queue', 'q', 'day', now).samples;
    expect(day.length).toBe(120);
    expect(day.slice(0, 4).map((x) => x.publish)).toEqual([10, 20, 10, 20]);
    expect(day[1]!.t - day[0]!.t).toBe(60_000);
  });

  it('averages the samples of a minute, and shows the minute in progress', () => {
    const h = new MetricsHistory({ metrics: ['ready'] });
    h.record('queue', 'q', { ready: 10 }, T0);
    h.record('queue', 'q', { ready: 20 }, T0 + 1_000);
    h.record('queue', 'q', { ready: 60 }, T0 + 2_000);
    expect(h.series('queue', 'q', 'day', T0 + 3_000).samples).toEqual([{ t: T0, ready: 30 }]);
    h.record('queue', 'q', { ready: 5 }, T0 + 60_000);
    expect(h.series('queue', 'q', 'day', T0 + 61_000).samples).toEqual([
      { t: T0, ready: 30 },
      { t: T0 + 60_000, ready: 5 },
    ]);
  });

  it('answers unknown resources with an empty series, forgets on request and bounds the number of resources', () => {
    const h = new MetricsHistory({ metrics: ['ready'], maxResources: 2 });
    expect(h.series('group', 'g', 'hour')).toEqual({ resource: { kind: 'group', name: 'g' }, range: 'hour', samples: [] });
    h.record('queue', 'a', { ready: 1 }, T0);
    h.record('queue', 'b', { ready: 1 }, T0);
    h.record('queue', 'a', { ready: 2 }, T0 + 1_000);
    h.record('queue', 'c', { ready: 1 }, T0 + 1_000);
    expect(h.has('queue', 'b')).toBe(false);
    expect(h.has('queue', 'a')).toBe(true);
    h.forget('queue', 'a');
    expect(h.size).toBe(1);
  });

  it('stores an idle resource as one run however long it stays idle', () => {
    const h = new MetricsHistory({ metrics: ['ready', 'unacked', 'consumers'] });
    for (let i = 0; i < 3600; i++) h.record('queue', 'idle', { ready: 7, unacked: 0, consumers: 1 }, T0 + i * 1000);
    const internal = (h as unknown as { resources: Map<string, { fine: { count: number } }> }).resources;
    expect([...internal.values()][0]!.fine.count).toBe(1);
    expect(h.series('queue', 'idle', 'hour', T0 + 3_600_000).samples.length).toBe(3600);
  });
});
