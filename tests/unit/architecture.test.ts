/**
 * The dependency rule of src-main, checked on every import (static
 * `import … from`, `export … from`, `import type`, dynamic `import()`), read
 * with TypeScript's own import scanner:
 *
 *   app, preload, cli → transports → core → connectors, protocols → broker
 *     → storage, metrics, jobs → ground → contract
 *
 * A file may import its own layer and any layer further down, never one above
 * it nor a neighbour on its own level; and no two files may import each other,
 * directly or round a longer cycle.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(__dirname, '../../src-main');

/** Levels, lowest first; a layer may import layers of lower levels (and itself). */
const LEVELS: string[][] = [['contract'], ['ground'], ['storage', 'metrics', 'jobs'], ['broker'], ['connectors', 'protocols'], ['core'], ['transports'], ['app', 'preload', 'cli']];
const LEVEL = new Map(LEVELS.flatMap((layers, level) => layers.map((l) => [l, level] as const)));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

const rel = (path: string) => relative(ROOT, path);
const layerOf = (path: string) => rel(path).split('/')[0]!;

interface Edge {
  from: string;
  to: string;
  line: number;
}

/** Every project import of every file, resolved to the file it names (`./x.js` is `./x.ts`). */
function imports(): { files: string[]; edges: Edge[]; unresolved: string[] } {
  const files = sources(ROOT);
  const edges: Edge[] = [];
  const unresolved: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const ref of ts.preProcessFile(text, true, true).importedFiles) {
      if (!ref.fileName.startsWith('.')) continue;
      const base = resolve(dirname(file), ref.fileName);
      const target = [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, join(base, 'index.ts')].find((p) => existsSync(p) && statSync(p).isFile());
      const line = text.slice(0, ref.pos).split('\n').length;
      if (!target) unresolved.push(`${rel(file)}:${line} imports ${ref.fileName}`);
      else if (target.startsWith(ROOT)) edges.push({ from: file, to: target, line });
      else unresolved.push(`${rel(file)}:${line} imports ${ref.fileName}, outside src-main`);
    }
  }
  return { files, edges, unresolved };
}

/** Strongly connected components of more than one file (or a file importing itself): Tarjan's algorithm. */
function cycles(files: string[], edges: Edge[]): string[][] {
  const next = new Map<string, string[]>(files.map((f) => [f, []]));
  for (const e of edges) next.get(e.from)!.push(e.to);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let counter = 0;
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (next.get(v) ?? []).includes(v)) found.push(component.map(rel).sort());
    }
  };
  for (const f of files) if (!index.has(f)) visit(f);
  return found;
}

describe('the dependency rule of src-main', () => {
  const { files, edges, unresolved } = imports();

  it('reads the imports of every source file', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(edges.length).toBeGreaterThan(files.length);
    expect(unresolved).toEqual([]);
  });

  it('places every top-level folder of src-main in a layer', () => {
    const unknown = [...new Set(files.map(layerOf))].filter((l) => !LEVEL.has(l));
    expect(unknown, 'add the folder to LEVELS in this test and to the README').toEqual([]);
  });

  it('imports only its own layer and layers below it', () => {
    const against = edges
      .filter((e) => {
        const from = layerOf(e.from);
        const to = layerOf(e.to);
        return from !== to && !(LEVEL.get(to)! < LEVEL.get(from)!);
      })
      .map((e) => `${rel(e.from)}:${e.line} (${layerOf(e.from)}) imports ${rel(e.to)} (${layerOf(e.to)})`);
    expect(against).toEqual([]);
  });

  it('has no import cycle between files', () => {
    expect(cycles(files, edges)).toEqual([]);
  });

  it('finds a cycle and an import against the rule when there is one', () => {
    // The checks themselves, on a made-up graph: a → b → c → a, and broker importing core.
    const f = (p: string) => join(ROOT, p);
    const made = [f('broker/a.ts'), f('broker/b.ts'), f('core/c.ts')];
    const madeEdges = [
      { from: made[0]!, to: made[1]!, line: 1 },
      { from: made[1]!, to: made[2]!, line: 1 },
      { from: made[2]!, to: made[0]!, line: 1 },
    ];
    expect(cycles(made, madeEdges)).toEqual([['broker/a.ts', 'broker/b.ts', 'core/c.ts']]);
    expect(LEVEL.get('core')! > LEVEL.get('broker')!).toBe(true);
  });
});
