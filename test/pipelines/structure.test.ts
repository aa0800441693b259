import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/*
 * The layout keeps its shape: the files of pipelines/ import one another without a cycle (the
 * run's types live in run-types.ts, so the parts need not import each other), and models/ (the
 * model definitions) imports nothing from src/ (the platform).
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function sourceFiles(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts'))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)));
}

/** Every relative module a file imports or re-exports (static or dynamic, types included), as paths from the root. */
function importsOf(file: string, text = readFileSync(join(ROOT, file), 'utf8')): string[] {
  const specifiers = [
    ...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+['"]([^'"]+)['"]/gms),
    ...text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm),
    ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((match) => match[1] as string);
  return specifiers
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) => relative(ROOT, resolve(ROOT, dirname(file), specifier)));
}

/** The first import cycle found among `files` (each file's imports restricted to `files`), as a path that comes back to its start. */
function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (file: string): string[] | null => {
    if (state.get(file) === 'done') return null;
    if (state.get(file) === 'open') return [...path.slice(path.indexOf(file)), file];
    state.set(file, 'open');
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(file, 'done');
    return null;
  };
  for (const file of [...graph.keys()].sort()) {
    const cycle = visit(file);
    if (cycle) return cycle;
  }
  return null;
}

describe('the layout of pipelines/ and models/', () => {
  it('finds a cycle when there is one, naming its files in order, and none in a chain', () => {
    const chain = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', []],
    ]);
    expect(findCycle(chain)).toBeNull();
    const loop = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
    ]);
    expect(findCycle(loop)).toEqual(['a.ts', 'b.ts', 'c.ts', 'a.ts']);
  });

  it('reads static, type-only, re-exported, multi-line and dynamic imports', () => {
    const text = [
      "import { a } from './a.ts';",
      "import type { B } from '../models/b.ts';",
      'import {',
      '  c,',
      "} from './c.ts';",
      "export { d } from './d.ts';",
      "const e = await import('./e.ts');",
      "import 'node:fs';",
      "import { z } from 'zod';",
    ].join('\n');
    expect(importsOf('pipelines/x.ts', text)).toEqual([
      'pipelines/a.ts',
      'models/b.ts',
      'pipelines/c.ts',
      'pipelines/d.ts',
      'pipelines/e.ts',
    ]);
  });

  it('has no import cycle among the files of pipelines/', () => {
    const files = sourceFiles('pipelines');
    expect(files).toContain('pipelines/train-part.ts');
    const inside = new Set(files);
    const graph = new Map(files.map((file) => [file, importsOf(file).filter((target) => inside.has(target))]));
    const cycle = findCycle(graph);
    expect(cycle, cycle ? `import cycle: ${cycle.join(' → ')}` : '').toBeNull();
  });

  it('models/ imports nothing from src/', () => {
    const files = sourceFiles('models');
    expect(files).toContain('models/propensity-network.ts');
    const offending = files.flatMap((file) =>
      importsOf(file)
        .filter((target) => target.startsWith('src/'))
        .map((target) => `${file} → ${target}`),
    );
    expect(offending).toEqual([]);
  });
});
