/**
 * `npm run bench` (bench/run.ts) end to end on its tiny configuration, so the script does not rot:
 * every local section runs (the operator section has its own cluster test,
 * test/cluster/bench-operator.itest.ts), each figure carries its samples, median, p95, count and,
 * beside a reference, the per-trial ratio; goals are judged; the JSON and the Markdown agree.
 * Nothing here is timed: the figures are whatever this host gives.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Section } from '../../bench/lib.ts';
import { bench, checkFigure } from '../support/bench.ts';

const work = mkdtempSync(join(tmpdir(), 'swarmbench-bench-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const LOCAL = ['loadgen', 'roundtrip', 'embedded', 'report'];

describe('npm run bench', () => {
  it('refuses bad arguments with exit 2, naming them', () => {
    const a = bench(['--only', 'loadgen,nope']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/--only: unknown section "nope"/);
    const b = bench(['--trials', '0']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--trials: an integer 1\.\.100, got "0"/);
    expect(bench(['--frobnicate']).code).toBe(2);
  });

  it('runs every local section on the tiny configuration and writes results.json and results.md', () => {
    const out = join(work, 'tiny');
    const r = bench(['--tiny', '--only', LOCAL.join(','), '--out', out]);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const doc = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { tiny: boolean; conditions: Record<string, unknown>; sections: Section[] };
    expect(doc.tiny).toBe(true);
    expect(doc.conditions).toMatchObject({ cpus: expect.any(Number), node: process.version });
    expect(doc.sections.map((s) => s.id)).toEqual(LOCAL);
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    expect(r.stdout.trim()).toBe(md.trim());
    const ids = new Set<string>();
    for (const s of doc.sections) {
      expect(s.skipped, `${s.id}: ${s.skipped}`).toBeUndefined();
      expect(s.figures.length, s.id).toBeGreaterThan(0);
      expect(md).toContain(`## ${s.title}`);
      for (const f of s.figures) {
        expect(ids.has(f.id), `figure ids are unique: ${f.id}`).toBe(false);
        ids.add(f.id);
        checkFigure(f);
        expect(md).toContain(`| ${f.title} |`);
      }
    }
    // The goals the issue names are judged where they are measured.
    const goals = doc.sections.flatMap((s) => s.figures).filter((f) => f.goal).map((f) => f.id);
    expect(goals.length).toBeGreaterThanOrEqual(3);
  }, 300_000);
});
