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
import type { BenchResult } from './bench-result.js';


const here = import.meta.dirname;
const root = join(here, '..', '..');

it('runs the benchmarks and writes bench-results/', async () => {
  const only = process.env.BENCH;
  const modules = readdirSync(here)
    .filter((f) => f.endsWith('.bench.ts'))
    .filter((f) => !only || f.includes(only))
    .sort();
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
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  const out = join(root, 'bench-results');
  mkdirSync(out, { recursive: true });
  const report = { at: new Date().toISOString(), machine, suites };
  writeFileSync(join(out, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  const lines = [
    `# Benchmarks (${report.at})`,
    '',
    `Machine: ${machine.cpus} cores (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}`,
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
