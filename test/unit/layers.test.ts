/**
 * The house's rules, checked on every run (CI included): the import graph of `src/` runs one way,
 * floor by floor (DESIGN.md "The layout"), folders never import each other in a loop, and no
 * source file grows past 700 lines, and no comment names a source or doc file that does not
 * exist. Imports are read from the source text (static `import` and
 * `export ... from`, and `import('...')` with a literal), so a new file is checked without being
 * listed anywhere.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/paths.ts';

const SRC = join(REPO_ROOT, 'src');

/**
 * Floors, lowest first. A file may import files of its own floor or below, never above. The basics
 * (floor 1) are the files at the top of `src/` plus `prometheus/` and `kube/`.
 */
const FLOORS: { floor: number; rooms: string[] }[] = [
  { floor: 1, rooms: ['log.ts', 'prng.ts', 'stats.ts', 'version.ts', 'paths.ts', 'errors.ts', 'prometheus', 'kube'] },
  { floor: 2, rooms: ['api', 'agent'] },
  { floor: 3, rooms: ['plan'] },
  { floor: 4, rooms: ['bench', 'platform', 'report'] },
  { floor: 5, rooms: ['runner', 'executor', 'operator', 'ui'] },
  { floor: 6, rooms: ['cli'] },
];
const MAX_LINES = 700;

function walk(dir: string, all = false): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return n === 'node_modules' || n.startsWith('.') ? [] : walk(p, all);
    return all || p.endsWith('.ts') ? [p] : [];
  });
}

/**
 * The `.ts` and `.md` files a source file's comments name (`src/report/verdict.ts`,
 * `docs/report.md`, `queue.ts`) that exist nowhere: relative to the file, to the repository, to
 * src/ or docs/, or (for a bare name) anywhere in the repository.
 */
export function staleReferences(file: string, text: string, known: Set<string>): string[] {
  const comments = [...text.matchAll(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g)].map((m) => m[0]).join('\n');
  const out: string[] = [];
  for (const m of comments.matchAll(/(?<![\w./-])((?:[\w.-]+\/)*[\w-]+\.(?:ts|md))\b/g)) {
    const ref = m[1]!;
    const candidates = [join(dirname(file), ref), join(REPO_ROOT, ref), join(SRC, ref), join(REPO_ROOT, 'docs', ref)];
    if (candidates.some((c) => existsSync(c))) continue;
    if (!ref.includes('/') && known.has(ref)) continue;
    out.push(`${relative(REPO_ROOT, file)}: ${ref}`);
  }
  return out;
}

/** The room of a source file: its first path segment under src/ (a folder, or a top-level file). */
export function roomOf(file: string): string {
  return relative(SRC, file).split(/[\\/]/)[0]!;
}

export function floorOf(room: string): number | undefined {
  return FLOORS.find((f) => f.rooms.includes(room))?.floor;
}

/** Relative imports of a source text, resolved against its file. */
export function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)|^import\s+['"](\.{1,2}\/[^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) out.push(resolve(dirname(file), (m[1] ?? m[2] ?? m[3])!));
  return out;
}

export interface Violation {
  from: string;
  to: string;
  why: string;
}

/** Every import that breaks the floors, and every folder loop. */
export function checkLayers(files: { file: string; text: string }[]): Violation[] {
  const bad: Violation[] = [];
  const edges = new Map<string, Set<string>>();
  for (const { file, text } of files) {
    const from = roomOf(file);
    const ff = floorOf(from);
    if (ff === undefined) {
      bad.push({ from: relative(SRC, file), to: '', why: `room "${from}" is on no floor: add it to FLOORS (and to docs/architecture.md)` });
      continue;
    }
    for (const target of importsOf(file, text)) {
      if (!target.startsWith(SRC)) continue;
      const to = roomOf(target);
      if (to === from) continue;
      const tf = floorOf(to);
      if (tf !== undefined && tf > ff) bad.push({ from: relative(SRC, file), to: relative(SRC, target), why: `floor ${ff} (${from}) imports floor ${tf} (${to})` });
      if (!edges.has(from)) edges.set(from, new Set());
      edges.get(from)!.add(to);
    }
  }
  // Folder loops (rooms of one floor may import each other, but not both ways round).
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (r: string): void => {
    state.set(r, 'open');
    stack.push(r);
    for (const t of edges.get(r) ?? []) {
      if (state.get(t) === 'open') bad.push({ from: r, to: t, why: `folder loop: ${[...stack.slice(stack.indexOf(t)), t].join(' -> ')}` });
      else if (!state.has(t)) visit(t);
    }
    stack.pop();
    state.set(r, 'done');
  };
  for (const r of edges.keys()) if (!state.has(r)) visit(r);
  return bad;
}

const sources = walk(SRC).map((file) => ({ file, text: readFileSync(file, 'utf8') }));

describe('the house', () => {
  it('reads the imports it checks (the reader is not vacuous)', () => {
    expect(sources.length).toBeGreaterThan(50);
    const n = sources.reduce((a, s) => a + importsOf(s.file, s.text).length, 0);
    expect(n).toBeGreaterThan(200);
    // cli/commands.ts loads the roles with import('...'): those count too.
    const commands = sources.find((s) => s.file.endsWith(join('cli', 'commands.ts')))!;
    expect(importsOf(commands.file, commands.text).map((t) => roomOf(t))).toContain('operator');
  });

  it('imports run one way: no floor imports a floor above it, no folder loop', () => {
    expect(checkLayers(sources)).toEqual([]);
  });

  it('finds an upward import and a folder loop when there is one', () => {
    const f = (p: string, text: string) => ({ file: join(SRC, p), text });
    const v = checkLayers([
      f('kube/x.ts', "import { Reconciler } from '../operator/reconcile.ts';\n"),
      f('bench/a.ts', "import type { P } from '../report/b.ts';\n"),
      f('report/b.ts', "export { A } from '../bench/a.ts';\n"),
      f('plan/c.ts', "const m = await import('../bench/a.ts');\n"),
      f('newroom/d.ts', ''),
    ]);
    expect(v.map((x) => x.why)).toEqual([
      'floor 1 (kube) imports floor 5 (operator)',
      'floor 3 (plan) imports floor 4 (bench)',
      'room "newroom" is on no floor: add it to FLOORS (and to docs/architecture.md)',
      'folder loop: bench -> report -> bench',
    ]);
  });

  it('no comment names a file that does not exist', () => {
    const known = new Set(walk(REPO_ROOT, true).map((p) => basename(p)));
    expect(sources.flatMap((s) => staleReferences(s.file, s.text, known))).toEqual([]);
    // The check sees a stale name when there is one.
    expect(staleReferences(join(SRC, 'x.ts'), '/** see DESIGN.md and src/operator/kube.ts, not docs/report.md */', known)).toEqual([
      'src/x.ts: DESIGN.md',
      'src/x.ts: src/operator/kube.ts',
    ]);
  });

  it('every src/ or test/ path the docs and the README name exists', () => {
    const docs = [join(REPO_ROOT, 'README.md'), ...walk(join(REPO_ROOT, 'docs'), true).filter((p) => p.endsWith('.md'))];
    const missing = docs.flatMap((d) =>
      [...readFileSync(d, 'utf8').matchAll(/(?<![\w./-])((?:src|test)\/[\w./-]*\.ts)\b/g)]
        .map((m) => m[1]!)
        .filter((ref) => !existsSync(join(REPO_ROOT, ref)))
        .map((ref) => `${relative(REPO_ROOT, d)}: ${ref}`),
    );
    expect(missing).toEqual([]);
  });

  it(`no source file is longer than ${MAX_LINES} lines`, () => {
    const long = sources
      .map((s) => ({ file: relative(REPO_ROOT, s.file), lines: s.text.split('\n').length }))
      .filter((s) => s.lines > MAX_LINES);
    expect(long).toEqual([]);
  });
});
