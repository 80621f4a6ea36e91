import { describe, expect, it } from 'vitest';
import { CATALOGUE } from '../../src/plan/catalogue.ts';
import type { Measurement } from '../../src/api/schema.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { buildPlan } from '../../src/plan/plan.ts';
import { judgeAll, judgeOne, summarize } from '../../src/report/verdict.ts';

const params = resolveParams({ mode: 'quick' });
const def = (id: string) => CATALOGUE.find((d) => d.id === id)!;

describe('verdicts', () => {
  it('the catalogue has 27 tests in 6 categories with unique ids', () => {
    expect(CATALOGUE).toHaveLength(27);
    expect(new Set(CATALOGUE.map((d) => d.id)).size).toBe(27);
    expect(new Set(CATALOGUE.map((d) => d.category)).size).toBe(6);
  });

  it('passes a value that meets its target and fails one that does not', () => {
    const m = (value: number): Measurement => ({ id: '1.3', value, samples: 100 });
    expect(judgeOne(def('1.3'), m(0.4), params).result).toBe('Passed');
    const f = judgeOne(def('1.3'), m(12), params);
    expect(f.result).toBe('Failed');
    expect(f.reason).toMatch(/does not meet the target <10/);
    // ">=" targets: speedup
    const gp = resolveParams({ mode: 'quick', targets: { gpuSpeedup: 4.22 } });
    expect(judgeOne(def('2.1'), { id: '2.1', value: 4.22, samples: 5 }, gp).result).toBe('Passed');
    expect(judgeOne(def('2.1'), { id: '2.1', value: 4.21, samples: 5 }, gp).result).toBe('Failed');
  });

  it('a missing measurement, a null value and a failed invariant all fail; skip is skip', () => {
    expect(judgeOne(def('1.1'), undefined, params).result).toBe('Failed');
    expect(judgeOne(def('1.1'), { id: '1.1', value: null, samples: 0 }, params).result).toBe('Failed');
    const lost = judgeOne(def('1.6'), { id: '1.6', value: 2, samples: 3, fail: '1 accepted task lost' }, params);
    expect(lost).toMatchObject({ result: 'Failed', reason: '1 accepted task lost (n=3 samples)' });
    expect(judgeOne(def('2.1'), { id: '2.1', value: null, samples: 0, skip: 'no GPU' }, params).result).toBe('Skipped');
  });

  it('every reason says the sample count, in the unit the bench gave', () => {
    const f = judgeOne(def('1.5'), { id: '1.5', value: 0.3, samples: 8, sampleUnit: 'agents' }, params);
    expect(f).toMatchObject({ result: 'Failed', sampleUnit: 'agents' });
    expect(f.reason).toBe('value 0.300 MARD does not meet the target <0.15 MARD (n=8 agents)');
    const s = judgeOne(def('4.1'), { id: '4.1', value: null, samples: 6, sampleUnit: 'windows', skip: 'host-bound' }, params);
    expect(s).toMatchObject({ result: 'Skipped', reason: 'host-bound (n=6 windows)' });
    // No samples: nothing to count, the reason stays as it is.
    expect(judgeOne(def('2.1'), { id: '2.1', value: null, samples: 0, skip: 'no GPU' }, params).reason).toBe('no GPU');
  });

  it('a percentile with too few samples for it is judged as the maximum, and says so', () => {
    const raw = [10, 11, 12, 13, 14, 15, 16, 17, 18, 1500];
    const few = judgeOne(def('1.4'), { id: '1.4', value: 900, samples: 10, raw, sampleUnit: 'trials' }, params);
    expect(few).toMatchObject({ statistic: 'max', value: 1500, result: 'Failed' });
    expect(few.reason).toBe('max 1500 ms does not meet the target <1000 ms (n=10 trials; p95 needs 20 samples, so the max is judged)');
    const raw20 = Array.from({ length: 20 }, (_, i) => 10 + i);
    const enough = judgeOne(def('1.4'), { id: '1.4', value: 28, samples: 20, raw: raw20 }, params);
    expect(enough).toMatchObject({ statistic: 'p95', value: 28, result: 'Passed' });
    // A bench that reduced its samples otherwise names its statistic.
    expect(judgeOne(def('1.4'), { id: '1.4', value: 29, samples: 20, raw: raw20, statistic: 'max' }, params).statistic).toBe('max');
  });

  it('samples a percentile needs: p95 20, p99 100, p50 and the rest none', async () => {
    const { samplesNeededFor } = await import('../../src/report/verdict.ts');
    expect([samplesNeededFor('p95'), samplesNeededFor('p99'), samplesNeededFor('p50'), samplesNeededFor('max'), samplesNeededFor('ratio')]).toEqual([20, 100, 0, 0, 0]);
  });

  it('overridden targets change the verdict', () => {
    const strict = resolveParams({ mode: 'quick', targets: { distributedLatencyMs: 0.001 } });
    expect(judgeOne(def('1.3'), { id: '1.3', value: 0.4, samples: 100 }, strict).result).toBe('Failed');
  });

  it('judges every selected test, failing those of a category that produced nothing', () => {
    const p = resolveParams({ mode: 'quick', categories: ['distributed', 'gpu'] });
    const tests = judgeAll([{ id: '1.1', value: 100, samples: 5 }], p, { gpu: 'runner crashed' });
    expect(tests).toHaveLength(11);
    expect(tests.find((t) => t.id === '2.3')).toMatchObject({ result: 'Failed', reason: 'runner crashed' });
    expect(tests.find((t) => t.id === '1.2')).toMatchObject({ result: 'Failed' });
    expect(() => judgeAll([{ id: '1.1', value: 1, samples: 1 }, { id: '1.1', value: 1, samples: 1 }], p)).toThrow(/twice/);
  });

  it('success rate = passed / (total - skipped); skipped never counts as passed', () => {
    const mk = (result: 'Passed' | 'Failed' | 'Skipped') => ({ result }) as never;
    const s = summarize([mk('Passed'), mk('Passed'), mk('Failed'), mk('Skipped')], 60);
    expect(s).toMatchObject({ total: 4, passed: 2, failed: 1, skipped: 1, successRate: 66.7, verdict: 'Passed' });
    expect(summarize([mk('Passed'), mk('Failed'), mk('Skipped')], 90).verdict).toBe('Failed');
    expect(summarize([mk('Skipped')], 0)).toMatchObject({ successRate: null, verdict: 'Failed' });
  });
});

describe('plan', () => {
  it('has one step per selected category, in a fixed order, covering each test once', () => {
    const plan = buildPlan(params);
    expect(plan.map((s) => s.name)).toEqual(['distributed', 'integration', 'monitoring', 'gpu', 'scalability', 'stress']);
    expect(plan.flatMap((s) => s.tests).sort()).toEqual(CATALOGUE.map((d) => d.id).sort());
    expect(plan.find((s) => s.category === 'gpu')!.fixture.gpu).toBe(true);
    expect(buildPlan(resolveParams({}, ['stress'])).map((s) => s.name)).toEqual(['stress']);
  });

  it('full mode uses the suite sizes; overrides win', () => {
    const full = resolveParams({ mode: 'full' });
    expect(full.agents.steps).toEqual([10, 50, 100, 500, 1000]);
    expect(full.stress.sustainedMs).toBe(600_000);
    const o = resolveParams({ mode: 'full', stress: { sustainedDuration: '30s' }, agents: { steps: [1, 2, 3, 4, 5] } });
    expect(o.stress.sustainedMs).toBe(30_000);
    expect(o.agents.steps).toEqual([1, 2, 3, 4, 5]);
  });
});
