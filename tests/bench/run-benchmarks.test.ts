/**
 * Runs each benchmark module (tests/bench/*.bench.ts, each exporting `run()`),
 * then writes bench-results/latest.json and bench-results/latest.md. A figure
 * that misses its target is reported in the table, not failed: benchmarks
 * measure, tests decide. BENCH=<name> runs only the modules whose file name contains it.
 */
import { it, expect } from 'vitest';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, totalmem } from 'node:os';
import { createHash } from 'node:crypto';
import type { BenchResult } from './bench-result.js';


/**
 * A fixed single-threaded workload (hashing, JSON, sorting), timed before the suites: the
 * machine's speed varies from day to day, and figures of two runs compare only beside it.
 */
function calibrate(): number {
  const data = Buffer.alloc(16 * 2 ** 20, 7);
  const rows = Array.from({ length: 20_000 }, (_, i) => ({ name: `queue-${(i * 7919) % 20_000}`, messages: i, rates: { publish: i / 3, ack: i / 7 } }));
  const once = () => {
    const t0 = performance.now();
    createHash('sha256').update(data).digest();
    for (let k = 0; k < 5; k++) JSON.parse(JSON.stringify(rows));
    [...rows].sort((a, b) => a.name.localeCompare(b.name));
    return performance.now() - t0;
  };
  once();
  const times = Array.from({ length: 7 }, once).sort((a, b) => a - b);
  return Math.round(times[3]!);
}

const here = import.meta.dirname;
const root = join(here, '..', '..');

it('runs the benchmarks and writes bench-results/', async () => {
  const only = process.env.BENCH;
  const modules = readdirSync(here)
    .filter((f) => f.endsWith('.bench.ts'))
    .filter((f) => !only || f.includes(only))
    .sort();
  const calibrationMs = calibrate();
  const suites: Array<{ module: string; results: BenchResult[]; error?: string; seconds: number }> = [];
  for (const file of modules) {
    const started = performance.now();
    try {
      const mod = (await import(join(here, file))) as { run: () => Promise<BenchResult[]> };
      const results = await mod.run();
      suites.push({ module: file, results, seconds: (performance.now() - started) / 1000 });
    } catch (error) {
      suites.push({ module: file, results: [], error: (error as Error).stack ?? String(error), seconds: (performance.now() - started) / 1000 });
    }
  }
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, calibrationMs };
  const out = join(root, 'bench-results');
  mkdirSync(out, { recursive: true });
  const report = { at: new Date().toISOString(), machine, suites };
  writeFileSync(join(out, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  const lines = [
    `# Benchmarks (${report.at})`,
    '',
    `Machine: ${machine.cpus} cores (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}; calibration workload ${calibrationMs} ms (lower is faster; compare runs of different days by it)`,
    '',
    '| suite | benchmark | value | unit | target | meets target | notes |',
    '|---|---|---:|---|---|---|---|',
  ];
  for (const s of suites) {
    if (s.error) lines.push(`| ${s.module} | (failed to run) | | | | | ${s.error.split('\n')[0]} |`);
    for (const r of s.results) {
      const value = Number.isInteger(r.value) ? String(r.value) : r.value.toFixed(2);
      lines.push(`| ${s.module.replace('.bench.ts', '')} | ${r.name} | ${value} | ${r.unit} | ${r.target ?? ''} | ${r.pass === undefined ? '' : r.pass ? 'yes' : 'no'} | ${r.notes ?? ''} |`);
    }
  }
  writeFileSync(join(out, 'latest.md'), lines.join('\n') + '\n');
  console.log(lines.join('\n'));
  expect(suites.length).toBe(modules.length);
});
