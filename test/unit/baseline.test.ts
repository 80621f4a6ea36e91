/**
 * Baseline comparison: verdicts on planted changes, the direction of "better", the minimum
 * number of samples, and the regression gate of the run's verdict.
 */
import { mulberry32 } from '../../src/prng.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ResultDocument, type ResultDocument as Doc } from '../../src/api/schema.ts';
import { compareRuns, compareSamples, conditionWarnings } from '../../src/report/baseline.ts';
import { completeDocument } from '../../src/report/document.ts';
import { summarizeDocument, verdictReasons, withComparison } from '../../src/report/verdict.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const load = (f: string): Doc => ResultDocument.parse(JSON.parse(readFileSync(join(FIXTURES, f), 'utf8')));

/** A seeded PRNG (mulberry32) and log-normal latencies around `median` ms. */
const rng = mulberry32;
function latencies(n: number, median: number, seed: number, sigma = 0.3): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => {
    const u = Math.max(r(), 1e-12);
    const v = r();
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    return median * Math.exp(sigma * z);
  });
}

describe('compareSamples', () => {
  it('a planted regression (baseline latency about half the new one, 30 samples each) is Regressed', () => {
    const baseline = latencies(30, 10, 1);
    const current = latencies(30, 20, 2);
    const c = compareSamples(current, baseline, 'lower');
    expect(c.verdict).toBe('Regressed');
    expect(c.test).toBe('exact');
    expect(c.p!).toBeLessThan(0.001);
    expect(c.shift!).toBeGreaterThan(5);
    expect(c.ci![0]).toBeGreaterThan(0); // the whole interval says "slower"
    expect(c.changePct!).toBeGreaterThan(50);
    // The same samples where higher is better (a throughput) are an improvement.
    expect(compareSamples(current, baseline, 'higher').verdict).toBe('Improved');
    expect(compareSamples(baseline, current, 'lower').verdict).toBe('Improved');
  });

  it('two runs of identical distributions are NoChange (and rarely anything else over 200 draws)', () => {
    expect(compareSamples(latencies(30, 10, 3), latencies(30, 10, 4), 'lower').verdict).toBe('NoChange');
    let flagged = 0;
    for (let i = 0; i < 200; i++) {
      const v = compareSamples(latencies(30, 10, 1000 + 2 * i), latencies(30, 10, 1001 + 2 * i), 'lower').verdict;
      if (v !== 'NoChange') flagged++;
    }
    // α = 0.05: about 10 of 200 expected by chance (the 5 % minimum effect removes a few); more
    // than twice that would mean a miscalibrated test.
    expect(flagged).toBeLessThanOrEqual(20);
  });

  it('3 samples give InsufficientSamples and say how many are needed', () => {
    const c = compareSamples([20, 21, 22], [10, 11, 12], 'lower');
    expect(c.verdict).toBe('InsufficientSamples');
    expect(c.note).toMatch(/at least 5 samples in each run \(baseline 3, this run 3\)/);
    expect(c.p).toBeNull();
    // Even clearly separated samples: with 3 per run no test reaches p < 0.05.
    expect(compareSamples([20, 21, 22], [10, 11, 12], 'lower', { minSamples: 3 }).verdict).toBe('InsufficientSamples');
    expect(compareSamples([20, 21, 22], [10, 11, 12], 'lower', { minSamples: 3 }).note).toMatch(/cannot reach p < 0.05/);
    // 5 per run, fully separated: enough.
    expect(compareSamples([20, 21, 22, 23, 24], [10, 11, 12, 13, 14], 'lower').verdict).toBe('Regressed');
  });

  it('a significant shift under the minimum effect is NoChange, with a note', () => {
    const base = latencies(400, 10, 7, 0.05);
    const cur = base.map((v) => v * 1.03);
    const c = compareSamples(cur, base, 'lower');
    expect(c.verdict).toBe('NoChange');
    expect(c.p!).toBeLessThan(0.05);
    expect(c.note).toMatch(/under the 5 % threshold/);
    expect(compareSamples(cur, base, 'lower', { minEffectPct: 1 }).verdict).toBe('Regressed');
  });

  it('uses the normal approximation for large samples', () => {
    const c = compareSamples(latencies(200, 20, 9), latencies(200, 10, 10), 'lower');
    expect(c).toMatchObject({ verdict: 'Regressed', test: 'normal' });
  });
});

describe('compareRuns', () => {
  const current = load('results-quick.json');
  const baseline = load('results-baseline.json');

  it('finds the planted changes of the fixture and nothing else', () => {
    const c = compareRuns(current, baseline);
    expect(c.regressed).toEqual(['1.3']);
    expect(c.improved).toEqual(['3.1']);
    expect(c.insufficient.sort()).toEqual(['2.1', '3.3', '3.5', '5.3', '6.2', '6.3']);
    expect(c.metrics).toHaveLength(27);
    const m13 = c.metrics.find((m) => m.id === '1.3')!;
    expect(m13).toMatchObject({ better: 'lower', gated: true, verdict: 'Regressed', test: 'normal' });
    expect(m13.baseline.n).toBe(320);
    expect(m13.changePct!).toBeGreaterThan(80);
    expect(c.metrics.find((m) => m.id === '2.1')!.note).toBe('skipped in this run');
    expect(c.metrics.find((m) => m.id === '4.5')!.better).toBe('higher');
    expect(c.warnings).toEqual([]);
  });

  it('compares 1.5 on the per-agent deviations, not on the raw task counts', () => {
    const m = compareRuns(current, baseline).metrics.find((x) => x.id === '1.5')!;
    expect(m.current.median!).toBeLessThan(1);
    expect(m.unit).toBe('MARD');
  });

  it('a run compared with itself has no change at all', () => {
    const c = compareRuns(current, current);
    expect(c.regressed).toEqual([]);
    expect(c.improved).toEqual([]);
    for (const m of c.metrics) if (m.p !== null) expect(m.p).toBeCloseTo(1, 9);
  });

  it('warns when the runs are not comparable', () => {
    const other: Doc = { ...baseline, run: { ...baseline.run, mode: 'full' }, environment: { ...baseline.environment, cpus: 16 } };
    const w = conditionWarnings(current, other);
    expect(w.join('\n')).toMatch(/mode differs: baseline full, this run quick/);
    expect(w.join('\n')).toMatch(/machine differs/);
  });

  it('rejects an alpha outside (0, 1)', () => {
    expect(() => compareRuns(current, baseline, { alpha: 0 })).toThrow(/alpha/);
  });
});

describe('the regression gate', () => {
  const current = load('results-quick.json');
  const baseline = load('results-baseline.json');

  it('counts regressions; fails the verdict only when the gate is on', () => {
    const passing = { ...current.summary, verdict: 'Passed' as const };
    const open = compareRuns(current, baseline);
    expect(withComparison(passing, open)).toMatchObject({ verdict: 'Passed', regressions: 1, regressionGate: false });
    const gated = compareRuns(current, baseline, { failOnRegression: true });
    expect(withComparison(passing, gated)).toMatchObject({ verdict: 'Failed', regressions: 1, regressionGate: true });
    expect(withComparison(passing, undefined)).toEqual(passing);
  });

  it('completeDocument applies it, and the verdict names the regression', () => {
    // A passing variant of the fixture: targets every test meets.
    const lenient: Doc = {
      ...current,
      targets: { ...current.targets, successRate: 50 },
    };
    const ok = completeDocument(lenient, { baseline, compare: { failOnRegression: false } });
    expect(ok.summary).toMatchObject({ verdict: 'Passed', regressions: 1 });
    const gated = completeDocument(lenient, { baseline, compare: { failOnRegression: true } });
    expect(gated.summary).toMatchObject({ verdict: 'Failed', regressions: 1, regressionGate: true });
    expect(verdictReasons(gated).join('\n')).toMatch(/1\.3 Cross-node latency: regressed against the baseline quick-baseline/);
    expect(summarizeDocument(gated)).toEqual(gated.summary);
    // The comparison travels in the document and validates against the schema.
    expect(ResultDocument.parse(JSON.parse(JSON.stringify(gated))).comparison?.regressed).toEqual(['1.3']);
  });
});
