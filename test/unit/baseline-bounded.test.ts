/**
 * The baseline comparison is bounded for any sample sizes (issue 13, "Bounded"): both runs are
 * capped to MAX_COMPARED_SAMPLES evenly spaced order statistics before any statistic, the
 * Hodges–Lehmann estimate and its interval are found by selection instead of materialising all
 * n_x·n_y differences, and the exact permutation distribution is never built for large samples.
 * The selection gives exactly the values of sorting all differences (a brute-force reference).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ResultDocument, type ResultDocument as Doc } from '../../src/api/schema.ts';
import { mulberry32 } from '../../src/prng.ts';
import { compareRuns, compareSamples, MAX_COMPARED_SAMPLES, orderStatisticSubset } from '../../src/report/baseline.ts';
import {
  EXACT_LIMIT_N,
  mannWhitney,
  MATERIALISE_MAX_PAIRS,
  normalQuantile,
  pairDifferenceOrderStatistics,
  shiftEstimate,
  subsetSumDistribution,
} from '../../src/report/ranktest.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

/** Log-normal latencies around `median`, seeded. */
function latencies(n: number, median: number, seed: number, sigma = 0.3): number[] {
  const r = mulberry32(seed);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
    out[i] = median * Math.exp(sigma * z);
  }
  return out;
}

/** Small integer samples (many ties) or spread reals, seeded. */
function sample(n: number, seed: number, ties: boolean): number[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => (ties ? Math.floor(r() * 7) - 3 : (r() - 0.3) * 100));
}

/** The reference: every difference materialised and sorted (what shiftEstimate did before). */
function sortedDifferences(x: readonly number[], y: readonly number[]): Float64Array {
  const d = new Float64Array(x.length * y.length);
  let i = 0;
  for (const a of x) for (const b of y) d[i++] = a - b;
  return d.sort();
}

/** The former shiftEstimate (normal k) on all sorted differences. */
function bruteShift(x: readonly number[], y: readonly number[], confidence = 0.95) {
  const d = sortedDifferences(x, y);
  const mn = d.length;
  const estimate = mn % 2 === 1 ? d[(mn - 1) / 2]! : (d[mn / 2 - 1]! + d[mn / 2]!) / 2;
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const k = Math.floor(mn / 2 - z * Math.sqrt((mn * (x.length + y.length + 1)) / 12));
  return { estimate, ci: k >= 1 ? [d[k - 1]!, d[mn - k]!] : null, k: Math.max(k, 0) };
}

const sorted = (v: readonly number[]) => Float64Array.from(v).sort();

describe('pairDifferenceOrderStatistics: selection without materialising all differences', () => {
  it('gives every order statistic of the sorted differences, with and without ties, at any materialising limit', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const ties = seed % 2 === 0;
      const x = sample(1 + (seed % 9), seed, ties);
      const y = sample(1 + ((seed * 5) % 11), seed + 100, ties);
      const ref = sortedDifferences(x, y);
      const ranks = Array.from({ length: ref.length }, (_, i) => i + 1);
      for (const limit of [1, 3, 17, MATERIALISE_MAX_PAIRS]) {
        expect(pairDifferenceOrderStatistics(sorted(x), sorted(y), ranks, limit)).toEqual([...ref]);
      }
    }
  });

  it('matches the sort on a million pairs by the default path (selection past MATERIALISE_MAX_PAIRS)', () => {
    const x = latencies(1200, 20, 5);
    const y = latencies(900, 10, 6);
    expect(x.length * y.length).toBeGreaterThan(MATERIALISE_MAX_PAIRS);
    const ref = sortedDifferences(x, y);
    const ranks = [1, 2, 777, 540_000, 540_001, ref.length - 1, ref.length];
    expect(pairDifferenceOrderStatistics(sorted(x), sorted(y), ranks)).toEqual(ranks.map((r) => ref[r - 1]!));
  });

  it('refuses a rank outside the pairs and a bad limit, naming them', () => {
    expect(() => pairDifferenceOrderStatistics(sorted([1, 2]), sorted([1]), [3])).toThrow(/rank must be an integer in \[1, 2\], got 3/);
    expect(() => pairDifferenceOrderStatistics(sorted([1, 2]), sorted([1]), [1], 0)).toThrow(/materialiseMax must be an integer >= 1/);
  });
});

describe('shiftEstimate is unchanged and bounded', () => {
  it('equals the brute-force reference on random small samples, by sort and by selection', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const ties = seed % 3 === 0;
      const x = sample(5 + (seed % 30), seed, ties);
      const y = sample(5 + ((seed * 7) % 40), seed + 500, ties);
      const ref = bruteShift(x, y);
      for (const materialiseMax of [MATERIALISE_MAX_PAIRS, 5]) {
        const e = shiftEstimate(x, y, 0.95, { exact: false, materialiseMax });
        expect({ estimate: e.estimate, ci: e.ci, k: e.k }).toEqual(ref);
      }
      // The exact k path picks its ends from the same differences.
      const exact = shiftEstimate(x, y, 0.95, { materialiseMax: 5 });
      const byPick = shiftEstimate(x, y, 0.95);
      expect(exact).toEqual(byPick);
    }
  });

  it('200 000 against 500 samples: the default path, seconds and memory bounded', () => {
    const base = latencies(200_000, 10, 11);
    const cur = latencies(500, 12, 12);
    const before = process.memoryUsage();
    const t0 = performance.now();
    const e = shiftEstimate(cur, base);
    const ms = performance.now() - t0;
    const after = process.memoryUsage();
    expect(ms).toBeLessThan(5000);
    // 10^8 differences would be 800 MB; the selection keeps a few arrays of 200 000 doubles.
    expect(after.rss - before.rss).toBeLessThan(200 * 2 ** 20);
    expect(e.method).toBe('normal');
    expect(e.estimate).toBeGreaterThan(1);
    expect(e.estimate).toBeLessThan(3);
    expect(e.ci![0]).toBeLessThan(e.estimate);
    expect(e.ci![1]).toBeGreaterThan(e.estimate);
  });

  it(`asking for the exact distribution past EXACT_LIMIT_N (${EXACT_LIMIT_N}) samples gets the normal approximation, fast`, () => {
    const x = latencies(600, 11, 21);
    const y = latencies(600, 10, 22);
    const t0 = performance.now();
    const mw = mannWhitney(x, y, { exact: true });
    const hl = shiftEstimate(x, y, 0.95, { exact: true });
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(mw.method).toBe('normal');
    expect(hl.method).toBe('normal');
    expect(mw).toEqual(mannWhitney(x, y));
    // At the limit it is still exact.
    const small = latencies(EXACT_LIMIT_N / 2, 10, 23);
    expect(mannWhitney(small, latencies(EXACT_LIMIT_N / 2, 10, 24), { exact: true }).method).toBe('exact');
  });

  it('subsetSumDistribution refuses a table over its cell limit and bad arguments, naming them', () => {
    const ranks = Array.from({ length: 600 }, (_, i) => i + 1);
    expect(() => subsetSumDistribution(ranks, 300)).toThrow(/cells, over the limit/);
    expect(() => subsetSumDistribution([1, 2, 3], 4)).toThrow(/k must be an integer in \[0, 3\], got 4/);
    expect(() => subsetSumDistribution([1, 2.5], 1)).toThrow(/scores must be non-negative integers, got 2.5/);
  });
});

describe('orderStatisticSubset: the cap of the compared samples', () => {
  it('keeps samples under the cap as they are', () => {
    expect(orderStatisticSubset([3, 1, 2], 3)).toEqual([3, 1, 2]);
  });

  it('takes the midpoints of equal slices of the sorted sample, whatever the stored order', () => {
    const v = Array.from({ length: 100 }, (_, i) => 99 - i); // 99..0
    expect(orderStatisticSubset(v, 4)).toEqual([12, 37, 62, 87]);
    const shuffled = [...v].sort((a, b) => ((a * 37) % 101) - ((b * 37) % 101));
    expect(orderStatisticSubset(shuffled, 4)).toEqual([12, 37, 62, 87]);
    expect(orderStatisticSubset(v, 1)).toEqual([50]);
  });

  it('refuses a cap that is not a positive integer, naming it', () => {
    expect(() => orderStatisticSubset([1, 2], 0)).toThrow(/maxSamples must be an integer >= 1, got 0/);
    expect(() => orderStatisticSubset([1, 2], 2.5)).toThrow(/maxSamples/);
  });
});

describe('compareSamples on a huge baseline', () => {
  for (const n of [200_000, 500_000]) {
    it(`${n} baseline samples against 500: a result in well under 5 s, memory growth under 200 MB, the cap reported`, () => {
      const base = latencies(n, 10, 31);
      const cur = latencies(500, 20, 32);
      const before = process.memoryUsage();
      const t0 = performance.now();
      const c = compareSamples(cur, base, 'lower');
      const ms = performance.now() - t0;
      const after = process.memoryUsage();
      expect(ms).toBeLessThan(5000);
      expect(after.rss - before.rss).toBeLessThan(200 * 2 ** 20);
      expect(after.heapUsed - before.heapUsed).toBeLessThan(200 * 2 ** 20);
      expect(c.verdict).toBe('Regressed');
      expect(c.compared).toEqual({ baseline: MAX_COMPARED_SAMPLES, current: 500 });
      expect(c.note).toBe(`baseline: ${MAX_COMPARED_SAMPLES} of ${n} samples compared (evenly spaced order statistics)`);
      // The capped baseline's median is the full sample's, to within a slice.
      const full = Float64Array.from(base).sort();
      expect(c.baselineMedian!).toBeGreaterThanOrEqual(full[Math.floor(n / 2) - n / MAX_COMPARED_SAMPLES]!);
      expect(c.baselineMedian!).toBeLessThanOrEqual(full[Math.floor(n / 2) + n / MAX_COMPARED_SAMPLES]!);
    });
  }

  it('identical distributions stay NoChange with a capped baseline, and the cap is the same whatever the order', () => {
    const base = latencies(100_000, 10, 41);
    const c = compareSamples(latencies(500, 10, 42), base, 'lower');
    expect(c.verdict).toBe('NoChange');
    const reversed = compareSamples(latencies(500, 10, 42), [...base].reverse(), 'lower');
    expect(reversed).toEqual(c);
  });

  it('caps the current run too, and keeps the other notes first', () => {
    const c = compareSamples(latencies(30, 10.1, 51), latencies(40, 10, 52), 'lower', { maxSamples: 20 });
    expect(c.compared).toEqual({ baseline: 20, current: 20 });
    expect(c.note).toMatch(/baseline: 20 of 40 samples compared, this run: 20 of 30 samples compared \(evenly spaced order statistics\)$/);
    const few = compareSamples([1, 2, 3], latencies(40, 10, 53), 'lower', { maxSamples: 20 });
    expect(few.note).toMatch(/^needs at least 5 samples in each run \(baseline 20, this run 3\); baseline: 20 of 40/);
  });

  it('without a cap there is no note of it', () => {
    const c = compareSamples(latencies(500, 10, 61), latencies(500, 10, 62), 'lower');
    expect(c.compared).toEqual({ baseline: 500, current: 500 });
    expect(c.note).toBeUndefined();
  });
});

describe('compareRuns with a baseline document of 200 000 samples', () => {
  const doc = ResultDocument.parse(JSON.parse(readFileSync(join(FIXTURES, 'results-quick.json'), 'utf8')));

  it('compares in bounded time, keeps the real count in n and says how many were compared', () => {
    const big = latencies(200_000, 0.05, 71);
    const baseline: Doc = { ...doc, tests: doc.tests.map((t) => (t.id === '1.3' ? { ...t, rawSamples: big } : t)) };
    const t0 = performance.now();
    const cmp = compareRuns(doc, baseline);
    expect(performance.now() - t0).toBeLessThan(5000);
    const m = cmp.metrics.find((x) => x.id === '1.3')!;
    expect(m.baseline.n).toBe(200_000);
    expect(m.note).toMatch(`baseline: ${MAX_COMPARED_SAMPLES} of 200000 samples compared`);
    expect(m.p).not.toBeNull();
  });

  it('refuses a bad maxSamples naming it', () => {
    expect(() => compareRuns(doc, doc, { maxSamples: -1 })).toThrow(/maxSamples must be an integer >= 1, got -1/);
  });
});
