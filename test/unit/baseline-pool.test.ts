/**
 * A pooled baseline (issue 16: "the pooled samples of the last K successful runs";
 * src/report/baseline.ts `compareRuns` with `pool`): the runs' compared samples join test by test,
 * a per-run transform (1.5) stays per run, one unusual baseline run decides less, runs measured
 * unlike this one are left out and named, and the comparison says which runs it pooled.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BaselineSpec, ResultDocument, type ResultDocument as Doc, type TestResult } from '../../src/api/schema.ts';
import { REPO_ROOT } from '../../src/paths.ts';
import { mulberry32 } from '../../src/prng.ts';
import { compareRuns, comparedSamples, MAX_POOLED_RUNS } from '../../src/report/baseline.ts';
import { completeDocument } from '../../src/report/document.ts';
import { ComparisonRefusedError } from '../../src/report/fingerprint.ts';
import { renderMarkdown } from '../../src/report/markdown.ts';

const load = (f: string): Doc => ResultDocument.parse(JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', f), 'utf8')));
const current = load('results-quick.json');
const baseline = load('results-baseline.json');
/** The baseline as another run: its name and start, and one test's samples replaced. */
function runOf(name: string, samples: Record<string, number[]> = {}, base: Doc = baseline): Doc {
  return {
    ...base,
    run: { ...base.run, name, startedAt: `2026-11-0${name.length % 9}T00:00:00Z` },
    tests: base.tests.map((t): TestResult => (samples[t.id] ? { ...t, rawSamples: samples[t.id] } : t)),
  };
}
/** n log-normal latencies around `median`. */
function latencies(n: number, median: number, seed: number, sigma = 0.3): number[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const z = Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r());
    return median * Math.exp(sigma * z);
  });
}
const metric = (c: ReturnType<typeof compareRuns>, id: string) => c.metrics.find((m) => m.id === id)!;

describe('a pooled baseline', () => {
  it('joins the runs’ samples test by test and names the pool', () => {
    const second = runOf('nightly-2');
    const c = compareRuns(current, baseline, { pool: [second] });
    const single = compareRuns(current, baseline);
    const m = metric(c, '1.3');
    expect(m.baseline.n).toBe(2 * metric(single, '1.3').baseline.n); // 640 = 320 + 320
    expect(m.note).toMatch(/2 runs pooled/);
    expect(c.regressed).toEqual(single.regressed); // the same samples twice: the same verdicts
    expect(c.improved).toEqual(single.improved);
    expect(c.baseline.name).toBe(baseline.run.name);
    expect(c.baseline.pool).toEqual([{ name: 'nightly-2', attempt: second.run.attempt, startedAt: second.run.startedAt }]);
    expect(single.baseline.pool).toBeUndefined();
    // The Markdown report says it.
    expect(renderMarkdown(completeDocument(current, { baseline, compare: { pool: [second] } }))).toMatch(/pooled with \*\*nightly-2\*\*/);
  });

  it('transforms 1.5 per run: the pool’s samples are each run’s own deviations', () => {
    const t15 = baseline.tests.find((t) => t.id === '1.5')!;
    const doubled = t15.rawSamples!.map((x) => 2 * x); // twice the tasks per agent: the same deviations
    const c = compareRuns(current, baseline, { pool: [runOf('nightly-2', { '1.5': doubled })] });
    const own = comparedSamples(t15).samples;
    expect(metric(c, '1.5').baseline.n).toBe(2 * own.length);
    // Pooling the raw counts first would have taken the deviations from the mean of both runs (about 0.33 and more).
    expect(metric(c, '1.5').baseline.median).toBeCloseTo(metric(compareRuns(current, baseline), '1.5').baseline.median!, 9);
  });

  it('one unusually fast baseline run flags a clean run alone, and not once pooled with ordinary runs', () => {
    // Run-to-run noise: ordinary nights around 10 ms, one lucky night around 8.8 ms, this run at 10 ms.
    const lucky = runOf('lucky', { '1.3': latencies(200, 8.8, 1) });
    const ordinary = [2, 3, 4, 5].map((s) => runOf(`night-${s}`, { '1.3': latencies(200, 10, s * 17) }));
    const now = runOf('now', { '1.3': latencies(200, 10, 99) }, current);
    expect(metric(compareRuns(now, lucky), '1.3').verdict).toBe('Regressed');
    const pooled = compareRuns(now, lucky, { pool: ordinary });
    expect(metric(pooled, '1.3').baseline.n).toBe(1000);
    expect(metric(pooled, '1.3').verdict).toBe('NoChange');
    // A real regression (this run 30 % slower) is still found against the pool.
    const slow = runOf('slow', { '1.3': latencies(200, 13, 99) }, current);
    expect(metric(compareRuns(slow, lucky, { pool: ordinary }), '1.3').verdict).toBe('Regressed');
  });

  it('uses the runs that measured a test when another skipped it', () => {
    const skipped = { ...runOf('nightly-2'), tests: baseline.tests.map((t) => (t.id === '1.3' ? { ...t, result: 'Skipped' as const, rawSamples: [] } : t)) };
    const c = compareRuns(current, skipped, { pool: [runOf('nightly-3')] });
    expect(metric(c, '1.3').baseline.n).toBe(320);
    expect(metric(c, '1.3').verdict).toBe('Regressed');
    expect(metric(compareRuns(current, skipped), '1.3').note).toBe('skipped in the baseline');
  });

  it('leaves out a run measured on another machine, naming it; refuses only when none is left; keeps all with force', () => {
    const xeon = { ...runOf('on-xeon'), environment: { ...baseline.environment, cpuModel: 'Intel Xeon' } };
    const c = compareRuns(current, xeon, { pool: [runOf('nightly-2')] });
    expect(c.baseline.name).toBe('nightly-2');
    expect(c.baseline.pool).toBeUndefined();
    expect(c.warnings[0]).toMatch(/^baseline run on-xeon \(attempt \d+, .*\) left out of the pool, not measured like this run: cpuModel: baseline "Intel Xeon", this run "AMD EPYC"/);
    expect(metric(c, '1.3').baseline.n).toBe(320);
    expect(() => compareRuns(current, xeon, { pool: [{ ...xeon, run: { ...xeon.run, name: 'x2' } }] })).toThrow(ComparisonRefusedError);
    const forced = compareRuns(current, xeon, { pool: [runOf('nightly-2')], force: true });
    expect(metric(forced, '1.3').baseline.n).toBe(640);
    expect(forced.warnings[0]).toMatch(/^compared although not measured alike \(--force-compare\): cpuModel/);
  });

  it('is bounded: at most MAX_POOLED_RUNS runs, in the comparison and in spec.baseline.pool', () => {
    const many = Array.from({ length: MAX_POOLED_RUNS }, (_, i) => runOf(`n${i}`));
    expect(() => compareRuns(current, baseline, { pool: many })).toThrow(new RegExp(`at most ${MAX_POOLED_RUNS} runs, got ${MAX_POOLED_RUNS + 1}`));
    expect(compareRuns(current, baseline, { pool: many.slice(1) }).baseline.pool).toHaveLength(MAX_POOLED_RUNS - 1);
    const names = (n: number) => Array.from({ length: n }, (_, i) => `run-${i}`);
    expect(BaselineSpec.safeParse({ pool: names(MAX_POOLED_RUNS) }).success).toBe(true);
    const tooMany = BaselineSpec.safeParse({ pool: names(MAX_POOLED_RUNS + 1) });
    expect(tooMany.success).toBe(false);
    expect(tooMany.error!.issues[0]!.path).toEqual(['pool']);
  });

  it('spec.baseline names one baseline: pool with runRef or configMapRef is refused naming the field', () => {
    const both = BaselineSpec.safeParse({ runRef: 'a', pool: ['b'] });
    expect(both.success).toBe(false);
    expect(both.error!.issues[0]).toMatchObject({ path: ['pool'], message: 'name one baseline: runRef and pool are both set' });
    expect(BaselineSpec.safeParse({ pool: ['a', 'a'] }).error!.issues[0]!.message).toBe('must not repeat a run');
    expect(BaselineSpec.safeParse({ pool: ['Not_A_Name'] }).error!.issues[0]!.path).toEqual(['pool', 0]);
  });
});
