import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, type Delivery, type EngineOptions } from '../../../src-main/broker/index.js';

export interface Clock {
  now: () => number;
  advance: (ms: number) => void;
  set: (ms: number) => void;
}

export function clock(start = 1_700_000_000_000): Clock {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms), set: (ms) => (t = ms) };
}

/** In-memory engine without background timers: tests drive time with tick(). */
export function memEngine(options: Partial<EngineOptions> = {}): Engine {
  return Engine.open({ dataDir: null, timers: false, ...options });
}

export function tempDir(prefix = 'bd-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const b = (s: string): Buffer => Buffer.from(s, 'utf8');

export async function publishAll(e: Engine, queue: string, bodies: string[], props: Parameters<Engine['publish']>[0]['properties'] = {}): Promise<void> {
  await Promise.all(bodies.map((x) => e.publish({ exchange: '', routingKey: queue, body: b(x), properties: props })));
}

/** Lets scheduled dispatch run. */
export async function settle(e: Engine): Promise<void> {
  await e.idle();
  await new Promise((r) => setImmediate(r));
  await e.idle();
}

export function collector(): { deliveries: Delivery[]; bodies: () => string[]; on: (d: Delivery) => void } {
  const deliveries: Delivery[] = [];
  return { deliveries, bodies: () => deliveries.map((d) => d.body.toString()), on: (d) => deliveries.push(d) };
}

/** Polls `cond`; the time is an upper bound for a loaded machine, not an expectation. */
export async function waitFor(cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting for condition');
    await new Promise((r) => setTimeout(r, 5));
  }
}

