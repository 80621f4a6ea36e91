/**
 * Trends (src/report/trend.ts, src/api/history.ts): the points a result document gives and their
 * bounds, the bounded history, the change-point rule with its false-alarm rate and its power
 * measured on simulated series (seeded), the sparkline, and malformed input.
 *
 * The simulated runs are what a benchmark gives: each run's value is the median of 64 lognormal
 * samples (σ 0.3 in log), and each run is off by its own lognormal factor (σ 0.1: the machine,
 * its neighbours, the warm-up). The figures the tests measure are printed (docs/trends.md quotes
 * them).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { History, HISTORY_MAX_SAMPLES, HistoryPoint, TestHistory } from '../../src/api/history.ts';
import { mulberry32 } from '../../src/prng.ts';
import { compareSamples, orderStatisticSubset } from '../../src/report/baseline.ts';
import { addRun, detectShift, emptyHistory, examinedTests, pointsOf, rankCorrelationWithin, renderTrends, runsNeeded, shiftText, slopeWithin, sparkline, SPARK_LEVELS, TrendInputError, trendOf, trendsOf } from '../../src/report/trend.ts';
import { median } from '../../src/stats.ts';
import { gauss, nightly, noisySeries, QUICK } from '../support/history.ts';

const RUN_NOISE = 0.1;
const SAMPLE_NOISE = 0.3;

/** One simulated run: its 64 samples (seeded stream `rand`), around `base` × the run's own factor. */
function runSamples(rand: () => number, base: number, factor = 1, runNoise = RUN_NOISE): number[] {
  const m = base * factor * Math.exp(runNoise * gauss(rand));
  return Array.from({ length: 64 }, () => m * Math.exp(SAMPLE_NOISE * gauss(rand)));
}

/** A simulated series of `runs` run values (each the median of its samples), with an optional planted shift. */
function simulated(rand: () => number, runs: number, shift?: { from: number; factor: number }, runNoise = RUN_NOISE): number[] {
  return Array.from({ length: runs }, (_, i) => median(runSamples(rand, 10, shift && i >= shift.from ? shift.factor : 1, runNoise)));
}

describe('points and the bounded history', () => {
  it('a result document gives one valid point per test, its value, distribution and at most 32 compared samples', () => {
    const points = pointsOf(QUICK);
    expect(points).toHaveLength(QUICK.tests.length);
    for (const p of points) expect(HistoryPoint.safeParse(p).success).toBe(true);
    const p13 = points.find((p) => p.id === '1.3')!;
    const t13 = QUICK.tests.find((t) => t.id === '1.3')!;
    expect(p13).toMatchObject({ run: 'quick', attempt: 1, mode: 'quick', result: 'Passed', value: t13.value, unit: 'ms', p50: t13.distribution!.p50, p95: t13.distribution!.p95, n: 320 });
    expect(p13.time).toBe(new Date(Date.parse(QUICK.run.startedAt)).toISOString());
    expect(p13.samples).toHaveLength(32);
    expect(Math.min(...p13.samples)).toBeGreaterThanOrEqual(Math.min(...t13.rawSamples!) * 0.99999);
    // 1.5's compared samples are each agent's deviation, whose mean is the value (report/baseline.ts).
    const p15 = points.find((p) => p.id === '1.5')!;
    expect(p15.samples.reduce((a, b) => a + b, 0) / p15.samples.length).toBeCloseTo(QUICK.tests.find((t) => t.id === '1.5')!.value!, 2);
    expect(points.find((p) => p.id === '2.1')).toMatchObject({ result: 'Skipped', value: null, samples: [] });
    expect(pointsOf(QUICK, { samples: 64 }).find((p) => p.id === '1.3')!.samples).toHaveLength(64);
    expect(pointsOf(QUICK, { samples: 0 }).every((p) => p.samples.length === 0)).toBe(true);
    expect(pointsOf(QUICK, { fingerprint: 'fp-1' })[0]!.fingerprint).toBe('fp-1');
    expect(() => pointsOf(QUICK, { samples: HISTORY_MAX_SAMPLES + 1 })).toThrow(/samples must be an integer in \[0, 64\]/);
  });

  it('a document whose start is not a date gives no point, and says which field', () => {
    const bad = { ...QUICK, run: { ...QUICK.run, startedAt: 'yesterday' } };
    expect(() => pointsOf(bad)).toThrow(TrendInputError);
    expect(() => pointsOf(bad)).toThrow(/run\.startedAt: "yesterday" is not a date/);
  });

  it('runs added in any order are kept oldest first, once each, the latest maxPoints of each test', () => {
    let h = emptyHistory();
    for (const i of [3, 0, 4, 1, 2, 2]) h = addRun(h, nightly(i), { maxPoints: 4, samples: 4 });
    expect(h.tests).toHaveLength(QUICK.tests.length);
    expect(h.tests.map((t) => t.id).slice(0, 3)).toEqual(['1.1', '1.2', '1.3']);
    for (const t of h.tests) expect(t.points.map((p) => p.run)).toEqual(['nightly-01', 'nightly-02', 'nightly-03', 'nightly-04']);
    expect(History.safeParse(h).success).toBe(true);
    expect(() => addRun(h, nightly(5), { maxPoints: 0 })).toThrow(/maxPoints/);
    expect(() => addRun(h, nightly(5), { maxPoints: 501 })).toThrow(/maxPoints/);
  });

  it('the newest run names the test and says which way is better', () => {
    const renamed = nightly(9);
    renamed.tests = renamed.tests.map((t) => (t.id === '1.1' ? { ...t, name: 'Cluster formation (new)' } : t));
    let h = addRun(emptyHistory(), renamed);
    h = addRun(h, nightly(2));
    expect(h.tests.find((t) => t.id === '1.1')).toMatchObject({ name: 'Cluster formation (new)', better: 'lower' });
    expect(h.tests.find((t) => t.id === '2.2')!.better).toBe('higher');
  });

  it('27 tests × 60 runs × 32 samples fit in a ConfigMap (the size docs/trends.md gives)', () => {
    let h = emptyHistory();
    const rand = mulberry32(11);
    for (let i = 0; i < 60; i++) h = addRun(h, nightly(i, { '1.3': 0.1 * Math.exp(0.1 * gauss(rand)), '3.1': 0.37 * Math.exp(0.1 * gauss(rand)) }));
    expect(h.tests.every((t) => t.points.length === 60)).toBe(true);
    const bytes = Buffer.byteLength(JSON.stringify(h));
    console.log(`history of 27 tests × 60 runs, 32 samples per point: ${bytes} bytes of JSON`);
    expect(bytes).toBeLessThan(1024 * 1024);
  });

  it('the schema refuses what a hostile or broken history holds, naming the field', () => {
    const good = pointsOf(QUICK)[2]!;
    const bad = (p: unknown) => HistoryPoint.safeParse(p);
    expect(bad({ ...good, samples: new Array(65).fill(1) }).error!.issues[0]!.path).toEqual(['samples']);
    expect(bad({ ...good, value: Number.NaN }).error!.issues[0]!.path).toEqual(['value']);
    expect(bad({ ...good, id: '9.9' }).error!.issues[0]!.path).toEqual(['id']);
    expect(bad({ ...good, time: 'yesterday' }).error!.issues[0]!.path).toEqual(['time']);
    expect(bad({ ...good, extra: 1 }).success).toBe(false);
    expect(bad({ ...good, run: 'x'.repeat(254) }).error!.issues[0]!.path).toEqual(['run']);
    const later = { ...good, time: '2027-01-01T00:00:00.000Z' };
    const t = TestHistory.safeParse({ id: '1.3', name: 'x', better: 'lower', points: [later, good] });
    expect(t.error!.issues[0]).toMatchObject({ path: ['points', 1, 'time'], message: 'points must be oldest first' });
    expect(TestHistory.safeParse({ id: '1.2', name: 'x', better: 'lower', points: [good] }).error!.issues[0]!.path).toEqual(['points', 0, 'id']);
    expect(TestHistory.safeParse({ id: '1.3', name: 'x', better: 'lower', points: new Array(501).fill(good) }).success).toBe(false);
    const h = { kind: 'SwarmBenchHistory', version: 1, tests: [{ id: '1.3', name: 'x', better: 'lower', points: [] }, { id: '1.3', name: 'y', better: 'lower', points: [] }] };
    expect(History.safeParse(h).error!.issues[0]).toMatchObject({ path: ['tests', 1, 'id'], message: 'test 1.3 appears twice' });
    expect(History.safeParse({ ...h, version: 2 }).success).toBe(false);
  });
});

describe('change points', () => {
  it('on 500 simulated series of 30 runs without a shift, at most 5 % raise an alarm (measured)', () => {
    const rand = mulberry32(20260101);
    let alarms = 0;
    let loose = 0;
    const series = 500;
    for (let s = 0; s < series; s++) {
      const v = simulated(rand, 30);
      const better = s % 2 === 0 ? 'lower' : 'higher';
      if (detectShift(v, better)) alarms++;
      // The same series without the correction and the effect threshold: the simulation does
      // produce alarms, so the low rate above is the rule's doing.
      if (s < 200 && detectShift(v, better, { alpha: 0.5, minEffectPct: 0 })) loose++;
    }
    console.log(`false alarms: ${alarms} of ${series} series (${((alarms / series) * 100).toFixed(1)} %); at α 0.5 without the effect threshold: ${loose} of 200`);
    expect(alarms / series).toBeLessThanOrEqual(0.05);
    expect(loose / 200).toBeGreaterThan(0.05);
    expect(loose / 200).toBeGreaterThan(alarms / series);
  }, 120_000);

  it('a history of 8 tests without a shift, examined after each of its 30 runs: at most 1 in 10 raises a false trend at any look (measured)', () => {
    // What a schedule's status sees: 25 looks (from the 6th run) at 8 tests. Rule 7 and the
    // correction over the tests are what keep it low: without them (one look, each test alone)
    // the same histories raise far more.
    const rand = mulberry32(20261203);
    const histories = 200;
    let any = 0;
    let anyBare = 0;
    for (let h = 0; h < histories; h++) {
      const tests = Array.from({ length: 8 }, () => simulated(rand, 30));
      let raised = false;
      let raisedBare = false;
      for (let n = 6; n <= 30; n++) {
        for (const v of tests) {
          if (!raised && detectShift(v.slice(0, n), 'lower', { tests: 8 })) raised = true;
          if (!raisedBare && detectShift(v.slice(0, n), 'lower', { looks: 1 })) raisedBare = true;
        }
      }
      if (raised) any++;
      if (raisedBare) anyBare++;
    }
    console.log(`histories of 8 tests × 30 runs without a shift, 25 looks each: a false trend at some look in ${any} of ${histories}; one look, each test alone: ${anyBare} of ${histories}`);
    // α bounds one look; 25 looks that share their runs add a little (docs/trends.md).
    expect(any / histories).toBeLessThanOrEqual(0.1);
    expect(anyBare / histories).toBeGreaterThan(0.4);
  }, 120_000);

  // The run-to-run noise: σ 0.05 (a quiet machine) and σ 0.1 (the false-alarm test's). With σ 0.1
  // the runs' values spread about 11 %, so a first run of the new level is often as low as the old
  // ones: the place is then off by one, and fewer early shifts pass the corrected level.
  const planted = [
    { from: 4, runNoise: 0.05, found: 90, near: 90, exact: 75 },
    { from: 20, runNoise: 0.05, found: 95, near: 90, exact: 75 },
    { from: 4, runNoise: 0.1, found: 65, near: 55, exact: 40 },
    { from: 20, runNoise: 0.1, found: 95, near: 85, exact: 55 },
  ];
  for (const c of planted) {
    it(`a +30 % latency shift from run ${c.from} of 30 (run noise σ ${c.runNoise}) is found, at that run, as worse (100 series)`, () => {
      const rand = mulberry32(1000 + c.from + c.runNoise * 100);
      let found = 0;
      let near = 0;
      let exact = 0;
      for (let s = 0; s < 100; s++) {
        const shift = detectShift(simulated(rand, 30, { from: c.from, factor: 1.3 }, c.runNoise), 'lower');
        if (!shift) continue;
        found++;
        expect(shift.direction).toBe('worse');
        expect(shift.changePct!).toBeGreaterThan(10);
        if (Math.abs(shift.index - c.from) <= 1) near++;
        if (shift.index === c.from) exact++;
      }
      console.log(`shift from run ${c.from}, run noise σ ${c.runNoise}: found in ${found} of 100 series, at the run ±1 in ${near}, exactly in ${exact}`);
      expect(found).toBeGreaterThanOrEqual(c.found);
      expect(near).toBeGreaterThanOrEqual(c.near);
      expect(exact).toBeGreaterThanOrEqual(c.exact);
    }, 60_000);
  }

  it('better or worse follows the target: throughput down is worse, latency down is better', () => {
    const down = noisySeries(5, 30, 100, 0.03, { from: 20, factor: 0.7 });
    expect(detectShift(down, 'higher')).toMatchObject({ index: 20, direction: 'worse' });
    expect(detectShift(down, 'lower')).toMatchObject({ index: 20, direction: 'better' });
    expect(detectShift(down, 'lower')!.changePct!).toBeLessThan(-25);
  });

  it('reports the split, the sizes and the Bonferroni-adjusted p of a clean step', () => {
    const v = noisySeries(7, 30, 10, 0.02, { from: 20, factor: 1.3 });
    const s = detectShift(v, 'lower')!;
    expect(s).toMatchObject({ index: 20, direction: 'worse', splits: 25, before: { runs: 20 }, after: { runs: 10 } });
    expect(s.changePct!).toBeGreaterThan(25);
    expect(s.changePct!).toBeLessThan(35);
    expect(s.pAdjusted).toBeCloseTo(Math.min(1, s.p * 25), 12);
    expect(s.p).toBeLessThan(0.05 / 25);
  });

  it('a spike that went back, a shift under 5 %, a flat series and too few runs are not reported', () => {
    const spike = noisySeries(8, 30, 10, 0.02).map((x, i) => (i >= 20 && i < 25 ? x * 1.5 : x));
    expect(detectShift(spike, 'lower')).toBeNull();
    const small = noisySeries(9, 30, 10, 0.005, { from: 15, factor: 1.03 });
    expect(detectShift(small, 'lower')).toBeNull();
    expect(detectShift(small, 'lower', { minEffectPct: 1 })).toMatchObject({ index: 15, direction: 'worse' });
    expect(detectShift(new Array(30).fill(4), 'lower')).toBeNull();
    expect(detectShift([1, 1, 1, 2, 2], 'lower')).toBeNull();
  });

  it('a shift 3 runs old is found at one look of 30 runs, but needs 4 in 60 (α / 55 is below any p of 20 against 3)', () => {
    const one = { looks: 1 };
    expect(detectShift(noisySeries(10, 30, 10, 0.02, { from: 27, factor: 1.3 }), 'lower', one)).toMatchObject({ index: 27, looks: 1 });
    expect(detectShift(noisySeries(10, 60, 10, 0.02, { from: 57, factor: 1.3 }), 'lower', one)).toBeNull();
    expect(detectShift(noisySeries(10, 60, 10, 0.02, { from: 56, factor: 1.3 }), 'lower', one)).toMatchObject({ index: 56 });
  });

  it('rule 7: a shift is reported once two consecutive looks find it; one that only the latest look finds is not', () => {
    // 24 ordinary runs (a slow drift down, far under 5 %), then runs 30 % slower. At the look
    // after 3 of them a single look finds the shift; the look before (2 of them) cannot, so the
    // default does not report it yet.
    const base = Array.from({ length: 30 }, (_, i) => 10 - i * 0.001);
    const slow = (runs: number) => base.slice(0, runs).map((x, i) => (i >= 24 ? x * 1.3 : x));
    expect(detectShift(slow(27), 'lower', { looks: 1 })).toMatchObject({ index: 24, direction: 'worse' });
    expect(detectShift(slow(27), 'lower')).toBeNull();
    // One run later both looks find it: reported, from the same run, with the latest look's figures.
    const s = detectShift(slow(28), 'lower')!;
    expect(s).toMatchObject({ index: 24, direction: 'worse', looks: 2, after: { runs: 4 } });
    expect(detectShift(slow(28), 'lower', { looks: 1 })).toEqual({ ...s, looks: 1 });
    // Three runs that went back at the next run: found at one look, never at two.
    const back = [...slow(27), base[27]!];
    expect(detectShift(back.slice(0, 27), 'lower', { looks: 1 })).not.toBeNull();
    expect(detectShift(back, 'lower', { looks: 1 })).toBeNull();
    expect(detectShift(back, 'lower')).toBeNull();
    // Three looks need one more run.
    expect(detectShift(slow(28), 'lower', { looks: 3 })).toBeNull();
    expect(detectShift(slow(29), 'lower', { looks: 3 })).toMatchObject({ index: 24, looks: 3 });
  });

  it('runs without a value are left out, and the index is still the run’s own', () => {
    const v: (number | null)[] = noisySeries(12, 30, 10, 0.02, { from: 20, factor: 1.3 });
    v[5] = null;
    v[19] = null;
    v[20] = null;
    expect(detectShift(v, 'lower')).toMatchObject({ index: 21 });
  });

  it('the tests examined together share α: a step one test alone would show is not enough among 8 (Bonferroni over the tests)', () => {
    // 27 ordinary runs, then 3 at +30 %, then one more: at one look, alone, the smallest p of 4
    // against 20 (2 / C(24, 4) = 0.00019) times 25 splits passes α; times 8 tests too (0.038);
    // 3 against 20 (0.0011 × 24 splits) passes alone but not among 8 tests.
    const v = Array.from({ length: 30 }, (_, i) => (10 - i * 0.001) * (i >= 26 ? 1.3 : 1));
    const alone = detectShift(v, 'lower', { looks: 1 })!;
    expect(alone).toMatchObject({ index: 26, tests: 1 });
    const among8 = detectShift(v, 'lower', { looks: 1, tests: 8 })!;
    expect(among8).toMatchObject({ index: 26, tests: 8, p: alone.p });
    expect(among8.pAdjusted).toBeCloseTo(Math.min(1, alone.p * alone.splits * 8), 12);
    // The look before (3 after the split) passes alone, not among 8: rule 7 then waits a run.
    expect(detectShift(v.slice(0, 29), 'lower', { looks: 1 })).not.toBeNull();
    expect(detectShift(v.slice(0, 29), 'lower', { looks: 1, tests: 8 })).toBeNull();
    expect(detectShift(v, 'lower')).not.toBeNull();
    expect(detectShift(v, 'lower', { tests: 8 })).toBeNull();
    expect(() => detectShift(v, 'lower', { tests: 0 })).toThrow(/tests must be an integer in \[1, 1000\]/);
  });

  it('refuses options out of range, and more than 500 runs', () => {
    expect(() => detectShift([1, 2, 3], 'lower', { minRuns: 1 })).toThrow(/minRuns/);
    expect(() => detectShift([1, 2, 3], 'lower', { window: 2 })).toThrow(/window must be an integer in \[3, 500\]/);
    expect(() => detectShift([1, 2, 3], 'lower', { alpha: 0 })).toThrow(/alpha/);
    expect(() => detectShift([1, 2, 3], 'lower', { minEffectPct: -1 })).toThrow(/minEffectPct/);
    expect(() => detectShift([1, 2, 3], 'lower', { looks: 0 })).toThrow(/looks must be an integer in \[1, 10\]/);
    expect(() => detectShift([1, 2, 3], 'lower', { looks: 11 })).toThrow(/looks/);
    expect(() => detectShift(new Array(501).fill(1), 'lower')).toThrow(/at most 500 runs/);
  });

  it('why the runs’ values and not their pooled samples: run-to-run noise makes pooled samples cry wolf (one split, α 0.05)', () => {
    const rand = mulberry32(77);
    let pooled = 0;
    let runs = 0;
    const series = 1000;
    const pooledSeries = 200; // the pooled comparison (736 against 640 samples) is the slow one
    for (let s = 0; s < series; s++) {
      const samples = Array.from({ length: 23 }, () => runSamples(rand, 10));
      const before = samples.slice(0, 20);
      const after = samples.slice(20);
      const pool = (rs: number[][]) => rs.flatMap((r) => orderStatisticSubset(r, 32));
      if (s < pooledSeries && compareSamples(pool(after), pool(before), 'lower', { minEffectPct: 0 }).p! < 0.05) pooled++;
      if (compareSamples(after.map(median), before.map(median), 'lower', { minEffectPct: 0, minSamples: 3 }).p! < 0.05) runs++;
    }
    console.log(`one split (3 runs against 20), no shift, α 0.05: pooled samples reject in ${pooled} of ${pooledSeries} series, the runs' values in ${runs} of ${series}`);
    expect(runs / series).toBeLessThanOrEqual(0.065);
    expect(pooled / pooledSeries).toBeGreaterThan(0.15);
  }, 60_000);

  it('runsNeeded: a clean step is found exactly when it has lasted that many runs, and docs/trends.md gives the same table', () => {
    for (const n of [11, 13, 14, 30, 60]) {
      const need = runsNeeded(n)!;
      const step = (after: number) => Array.from({ length: n }, (_, i) => (i >= n - after ? 13 + i * 0.001 : 10 - i * 0.001));
      expect(detectShift(step(need), 'lower'), `${n} runs, ${need} after`).toMatchObject({ index: n - need });
      expect(detectShift(step(need - 1), 'lower'), `${n} runs, ${need - 1} after`).toBeNull();
    }
    expect(runsNeeded(9)).toBeNull();
    expect(runsNeeded(10)).toBeNull();
    expect(runsNeeded(10, { looks: 1 })).toBe(4);
    const doc = readFileSync(new URL('../../docs/trends.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| (\d+) \| (never|\d+) \| (never|\d+) \| (never|\d+) \| (never|\d+) \|$/gm)];
    expect(rows.length).toBeGreaterThanOrEqual(8);
    expect(rows[rows.length - 1]![1]).toBe('500');
    for (const [, n, ...needs] of rows) {
      [1, 3, 8, 27].forEach((tests, j) => expect(runsNeeded(Number(n), { tests }), `docs/trends.md: ${n} runs, ${tests} tests`).toBe(needs[j] === 'never' ? null : Number(needs[j])));
    }
  }, 60_000);
});

describe('trends of a history', () => {
  const withValues = (n: number, values: (i: number) => Record<string, number>, edit?: (i: number, p: HistoryPoint) => HistoryPoint) => {
    let h = emptyHistory();
    for (let i = 0; i < n; i++) h = addRun(h, nightly(i, values(i)), { samples: 0 });
    if (edit) h = { ...h, tests: h.tests.map((t) => ({ ...t, points: t.points.map((p, i) => edit(i, p)) })) };
    return h;
  };

  it('finds the shift of one test, names its first run, and leaves the flat tests alone', () => {
    const v = noisySeries(21, 24, 0.1, 0.03, { from: 16, factor: 1.4 });
    const trends = trendsOf(withValues(24, (i) => ({ '1.3': v[i]! })));
    expect(trends).toHaveLength(QUICK.tests.length);
    const t13 = trends.find((t) => t.id === '1.3')!;
    expect(t13.shift).toMatchObject({ index: 16, run: 'nightly-16', direction: 'worse', fingerprintChanged: false });
    expect(t13.runs).toBe(24);
    expect(t13.comparable).toBe(24);
    expect(trends.filter((t) => t.shift)).toHaveLength(1);
    expect(trends.find((t) => t.id === '2.1')!.comparable).toBe(0);
  });

  it('compares only runs of the latest unit and mode, and says when the fingerprint changed at the shift', () => {
    const v = noisySeries(22, 24, 0.1, 0.03, { from: 16, factor: 1.4 });
    const h = withValues(24, (i) => ({ '1.3': v[i]! }), (i, p) => ({
      ...p,
      ...(i < 2 ? { unit: 's' } : {}),
      ...(i === 3 ? { mode: 'full' as const } : {}),
      fingerprint: i < 16 ? 'fp-a' : 'fp-b',
    }));
    const t13 = trendOf(h.tests.find((t) => t.id === '1.3')!);
    expect(t13.values.slice(0, 4).map((x) => x === null)).toEqual([true, true, false, true]);
    expect(t13.comparable).toBe(21);
    expect(t13.shift).toMatchObject({ index: 16, fingerprintChanged: true });
  });

  it('a shift where the host load changed too is the machine\'s: labelled, with the load before and since', () => {
    const v = noisySeries(23, 24, 0.1, 0.03, { from: 16, factor: 1.4 });
    // Other processes took 3 to 6 % of the CPUs, then 15 to 20 % from run 16: the shift's split.
    const load = (i: number) => (i < 16 ? 3 + (i % 4) : 15 + (i % 6));
    const docs = Array.from({ length: 24 }, (_, i) => {
      const d = nightly(i, { '1.3': v[i]! });
      return { ...d, environment: { ...d.environment, platform: 'local' as const, hostLoad: { wallSeconds: 190, hostCpus: 2, busyCpus: 1, ownCpus: 0.8, otherCpus: load(i) / 50, otherPct: load(i), loadavg1: { start: 1, end: 1 } } } };
    });
    let h = emptyHistory();
    for (const d of docs) h = addRun(h, d, { samples: 0 });
    expect(h.tests[0]!.points.map((p) => p.hostOtherPct)).toEqual(docs.map((_, i) => load(i)));
    const t13 = trendOf(h.tests.find((t) => t.id === '1.3')!);
    expect(t13.shift).toMatchObject({ index: 16, direction: 'worse' });
    expect(t13.shift!.machine).toMatchObject({ before: 4.5, runs: { before: 16, after: 8 } });
    expect(t13.shift!.machine!.after).toBeGreaterThanOrEqual(17);
    expect(t13.shift!.machine!.p).toBeLessThan(0.001);
    expect(shiftText(t13.shift!)).toMatch(/^shift from nightly-16 \(\+\d\d\.\d % worse, p.+\): the machine changed, other processes 4\.5 % → 1\d\.\d % of the CPUs \(p(<0\.0001|=0\.0\d+)\)$/);

    // The same figures with the load flat, or moved by less than 5 % of the CPUs, or kept by too
    // few runs (a cluster's runs keep none): the system's shift, not the machine's.
    const relabel = (f: (i: number, p: HistoryPoint) => HistoryPoint) => trendOf({ ...h.tests.find((t) => t.id === '1.3')!, points: h.tests.find((t) => t.id === '1.3')!.points.map((p, i) => f(i, p)) });
    expect(relabel((i, p) => ({ ...p, hostOtherPct: 3 + (i % 4) })).shift).toMatchObject({ index: 16, machine: null });
    expect(relabel((i, p) => ({ ...p, hostOtherPct: i < 16 ? 3 : 7 })).shift!.machine).toBeNull();
    // A load that moved far, but the other way: the machine got quieter (20 % → 3 %) while the
    // figure got worse. A quieter machine does not make figures worse: the system's.
    expect(relabel((i, p) => ({ ...p, hostOtherPct: (i < 16 ? 20 : 3) + (i % 3) })).shift).toMatchObject({ index: 16, direction: 'worse', machine: null });
    expect(relabel((i, p) => (i >= 22 ? p : (({ hostOtherPct: _, ...rest }) => rest)(p))).shift!.machine).toBeNull();
    const cluster = { ...docs[0]!, environment: { ...docs[0]!.environment, platform: 'kubernetes' as const } };
    expect(pointsOf(cluster).every((p) => p.hostOtherPct === undefined)).toBe(true);
  });

  it('a smaller move of the load is the machine\'s only for a figure that follows it run by run, and only when it explains the shift', () => {
    // 30 runs; other processes took 3 to 8 % of the CPUs, then 0 to 5 % from run 15 (medians about 3
    // points apart: under HOST_CHANGE_MIN_PCT alone). The figure follows the load (0.5 ms a point) and nothing else.
    const rand = mulberry32(4242);
    const load = Array.from({ length: 30 }, (_, i) => Math.round((i < 15 ? 3 : 0) * 10 + rand() * 50) / 10);
    const build = (value: (i: number) => number) => {
      let h = emptyHistory();
      for (let i = 0; i < 30; i++) {
        const d = nightly(i, { '1.3': value(i) });
        const doc = { ...d, environment: { ...d.environment, platform: 'local' as const, hostLoad: { wallSeconds: 190, hostCpus: 2, busyCpus: 1, ownCpus: 0.8, otherCpus: load[i]! / 50, otherPct: load[i]!, loadavg1: { start: 1, end: 1 } } } };
        h = addRun(h, doc, { samples: 0 });
      }
      return trendOf(h.tests.find((t) => t.id === '1.3')!);
    };
    const noise = noisySeries(4343, 30, 1, 0.01);
    const follows = build((i) => (5 + 0.5 * load[i]!) * noise[i]!);
    // Where it starts is blurred by the loads the two sets share (3 to 5 %): near run 15.
    expect(follows.shift).toMatchObject({ direction: 'better' });
    expect(Math.abs(follows.shift!.index - 15)).toBeLessThanOrEqual(3);
    const m = follows.shift!.machine!;
    expect(m, 'the machine\'s').not.toBeNull();
    expect(Math.abs(m.after - m.before)).toBeLessThan(5);
    expect(m.follows!.rho).toBeGreaterThan(0.8);
    expect(m.follows!.p).toBeLessThan(0.01);
    expect(m.follows!.slope).toBeGreaterThan(0.4);
    expect(m.follows!.slope).toBeLessThan(0.6);
    expect(Math.abs(m.follows!.adjusted.changePct ?? 0)).toBeLessThan(5);
    expect(shiftText(follows.shift!)).toMatch(/: the machine changed, other processes \d\.\d % → \d\.\d % of the CPUs \(p.+\); the figure follows them run by run \(ρ 0\.\d\d, p.+\), and without their part the shift is /);

    // The same load, and the figure also 40 % slower from run 15: what the load explains is not
    // all of it, so the shift (worse, against the way the load went) is the system's.
    const worse = build((i) => (5 + 0.5 * load[i]!) * noise[i]! * (i >= 15 ? 1.6 : 1));
    expect(worse.shift).toMatchObject({ index: 15, direction: 'worse', machine: null });
    // A figure that does not follow the load (its own noise, a 25 % step): the system's.
    const own = noisySeries(4444, 30, 8, 0.03, { from: 15, factor: 0.75 });
    expect(build((i) => own[i]!).shift).toMatchObject({ index: 15, direction: 'better', machine: null });
  });

  it('rankCorrelationWithin and slopeWithin see only what happens inside each set, not the step between them', () => {
    // Two sets, each with value = load inside it, but the second set's values 100 higher and loads lower.
    const a = [1, 2, 3, 4, 5].map((x) => ({ value: x, load: x }));
    const b = [1, 2, 3, 4, 5].map((x) => ({ value: 100 + x, load: x - 10 }));
    expect(rankCorrelationWithin([a, b])!.rho).toBeCloseTo(1, 12);
    expect(slopeWithin([a, b])).toBeCloseTo(1, 12);
    // Reversed within: −1, whatever the step.
    const c = [1, 2, 3, 4, 5].map((x) => ({ value: -x, load: x }));
    expect(rankCorrelationWithin([c, b.map((r) => ({ ...r, value: -r.value }))])!.rho).toBeCloseTo(-1, 12);
    // No variation of the load inside any set: nothing to say.
    expect(rankCorrelationWithin([a.map((r) => ({ ...r, load: 3 }))])).toBeNull();
    expect(slopeWithin([a.map((r) => ({ ...r, load: 3 }))])).toBeNull();
    // Independent values: a p that is not small, and the same p for the same input (seeded).
    const rand = mulberry32(5);
    const ind = Array.from({ length: 20 }, () => ({ value: rand(), load: rand() }));
    const r1 = rankCorrelationWithin([ind])!;
    expect(r1).toEqual(rankCorrelationWithin([ind]));
    expect(r1.p).toBeGreaterThan(0.05);
  });

  it('the family is the tests of the whole history that can show a shift', () => {
    const v = noisySeries(51, 12, 10, 0.02);
    let h = emptyHistory();
    for (let i = 0; i < 12; i++) h = addRun(h, nightly(i, { '1.3': v[i]! }), { samples: 0 });
    // The fixture run's tests with a value in all 12 runs, less those without one (skipped GPU tests).
    const withValues = h.tests.filter((t) => t.points.filter((p) => p.value !== null).length >= 6).length;
    expect(examinedTests(h)).toBe(withValues);
    expect(examinedTests({ ...h, tests: [] })).toBe(1);
    expect(trendsOf(h).every((t) => t.shift === null)).toBe(true);
  });

  it('a test history without a point is refused', () => {
    expect(() => trendOf({ id: '1.1', name: 'x', better: 'lower', points: [] })).toThrow(/no point/);
  });

  it('renders one line per test: id, name, last value, sparkline with the mark, runs, and the shift', () => {
    const v = noisySeries(21, 24, 0.1, 0.03, { from: 16, factor: 1.4 });
    const text = renderTrends(trendsOf(withValues(24, (i) => ({ '1.3': v[i]! }))));
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(QUICK.tests.length);
    const l13 = lines.find((l) => l.startsWith('1.3 '))!;
    expect(l13).toMatch(/^1\.3  Cross-node latency +0\.1\d\d ms  [▁-█]{16}│[▁-█]{8} +24 runs  shift from nightly-16 \(\+\d\d\.\d % worse, p(<0\.0001|=0\.\d+)\)$/);
    expect(lines.find((l) => l.startsWith('2.1 '))).toMatch(/— x +·{24} +24 runs$/);
    expect(lines.find((l) => l.startsWith('4.1 '))).toMatch(/100 % +▄{24} +24 runs$/);
  });
});

describe('sparkline', () => {
  it('scales from the smallest to the largest value, ▄ when all are equal, · for a gap', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7])).toBe(SPARK_LEVELS);
    expect(sparkline([7, 0, null, 3.5])).toBe('█▁·▅');
    expect(sparkline([2, 2, 2])).toBe('▄▄▄');
    expect(sparkline([null, null])).toBe('··');
    expect(sparkline([])).toBe('');
  });

  it('puts │ before the first run of a shift', () => {
    expect(sparkline([1, 1, 1, 5, 5], { mark: 3 })).toBe('▁▁▁│██');
    expect(sparkline([1, 5], { mark: 9 })).toBe('▁█');
  });

  it('is at most `width` characters, the latest runs after …', () => {
    const v = Array.from({ length: 100 }, (_, i) => i);
    const s = sparkline(v, { width: 20 });
    expect(s).toHaveLength(20);
    expect(s.startsWith('…')).toBe(true);
    expect(s.endsWith('█')).toBe(true);
    const m = sparkline(v, { width: 20, mark: 95 });
    expect(m).toHaveLength(20);
    expect(m.indexOf('│')).toBe(20 - 5 - 1);
    expect(sparkline(v, { width: 20, mark: 10 })).toHaveLength(19); // the mark is not shown
    expect(sparkline(v)).toHaveLength(30);
    expect(() => sparkline(v, { width: 3 })).toThrow(/width/);
    expect(() => sparkline(v, { width: 201 })).toThrow(/width/);
  });
});
