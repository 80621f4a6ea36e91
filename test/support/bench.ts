/**
 * Running `npm run bench` (bench/run.ts) from a test, and what every figure it writes must hold:
 * samples, median, p95 and count that agree, a per-trial ratio beside a reference, a judged goal.
 * Used by test/e2e/bench-script.test.ts and test/cluster/bench-operator.itest.ts.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Figure } from '../../bench/lib.ts';
import { REPO_ROOT } from '../../src/paths.ts';
import { median } from '../../src/stats.ts';

export function bench(args: string[], timeoutMs = 240_000, env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bench/run.ts'), ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: timeoutMs, env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function checkFigure(f: Figure): void {
  const side = (s: Figure['subject']): void => {
    expect(s.stats.n, `${f.id} ${s.label}: n`).toBe(s.samples.length);
    expect(s.stats.n).toBeGreaterThanOrEqual(1);
    for (const v of s.samples) expect(Number.isFinite(v) && v > 0, `${f.id} ${s.label}: sample ${v}`).toBe(true);
    expect(s.stats.min).toBeLessThanOrEqual(s.stats.median);
    expect(s.stats.median).toBeLessThanOrEqual(s.stats.p95);
    expect(s.stats.p95).toBeLessThanOrEqual(s.stats.max);
    expect(s.stats.median).toBeCloseTo(median(s.samples), 3);
  };
  side(f.subject);
  if (f.reference) {
    side(f.reference);
    expect(f.ratio, `${f.id}: a figure beside a reference has its ratio`).toBeDefined();
    expect(f.ratio!.n).toBe(f.subject.samples.length);
  }
  if (f.goal) {
    expect(typeof f.met, `${f.id}: a goal is judged`).toBe('boolean');
    const v = f.goal.of === 'ratio' ? f.ratio!.median : f.subject.stats.median;
    expect(f.met).toBe(f.goal.op === '>=' ? v >= f.goal.value : v <= f.goal.value);
  }
}

