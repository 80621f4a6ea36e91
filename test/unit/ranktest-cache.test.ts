/**
 * The cached untied rank-sum distributions of src/report/ranktest.ts (`untiedRankSumDistribution`):
 * what the cache gives is, to the bit, what the computation it replaced gave (the distribution of
 * the doubled ranks in the samples' order, for the p-value; of the ranks 1..N in order, for the
 * confidence interval), and the cache stays within its bound.
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/prng.ts';
import {
  EXACT_MAX_N,
  mannWhitney,
  midranks,
  setUntiedCacheMaxCells,
  subsetSumDistribution,
  UNTIED_CACHE_MAX_CELLS,
  untiedCacheCells,
  untiedRankSumDistribution,
} from '../../src/report/ranktest.ts';

function shuffled(n: number, rand: () => number): number[] {
  const a = Array.from({ length: n }, (_, i) => i + 1);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** The exact two-sided p as mannWhitney computed it before the cache: the doubled midranks, in the samples' order. */
function pBefore(x: number[], y: number[]): number {
  const nx = x.length;
  const n = nx + y.length;
  const { ranks } = midranks([...x, ...y]);
  let rx = 0;
  for (let i = 0; i < nx; i++) rx += ranks[i]!;
  const dist = subsetSumDistribution(ranks.map((r) => Math.round(r * 2)), nx);
  const mean2 = nx * (n + 1);
  const obs = Math.abs(Math.round(rx * 2) - mean2);
  let p = 0;
  for (let s = 0; s < dist.length; s++) if (Math.abs(s - mean2) >= obs) p += dist[s]!;
  return Math.min(1, p);
}

describe('untiedRankSumDistribution', () => {
  it('is, to the bit, the distribution over the ranks in any order (every count is exact up to 60 ranks)', () => {
    const rand = mulberry32(42);
    for (const [n, k] of [[60, 30], [60, 20], [60, 57], [59, 29], [45, 22], [23, 3], [6, 3]] as const) {
      const cached = untiedRankSumDistribution(n, k);
      expect(untiedRankSumDistribution(n, k)).toBe(cached);
      for (let t = 0; t < 3; t++) expect(Array.from(subsetSumDistribution(shuffled(n, rand), k)), `${k} of ${n}`).toEqual(Array.from(cached));
      // The doubled ranks' distribution is this one at even sums and 0 at odd ones.
      const doubled = subsetSumDistribution(shuffled(n, rand).map((r) => 2 * r), k);
      expect(Array.from(doubled.filter((_, s) => s % 2 === 0))).toEqual(Array.from(cached));
      expect(doubled.filter((_, s) => s % 2 === 1).every((v) => v === 0)).toBe(true);
    }
  });

  it('gives the p-value the doubled ranks gave, to the bit, with and without ties', () => {
    const rand = mulberry32(7);
    let untied = 0;
    for (let t = 0; t < 60; t++) {
      const nx = 1 + Math.floor(rand() * 40);
      const ny = 1 + Math.floor(Math.min(EXACT_MAX_N - nx, 40) * rand());
      const ties = t % 4 === 0;
      const draw = (m: number, shift: number) => Array.from({ length: m }, () => (ties ? Math.round(10 + shift + 3 * rand()) : 10 + shift + 3 * rand()));
      const x = draw(nx, rand() * 2);
      const y = draw(Math.max(1, ny), 0);
      const mw = mannWhitney(x, y);
      expect(mw.method).toBe('exact');
      if (!mw.ties) untied++;
      expect(mw.p, `${nx} vs ${y.length}${mw.ties ? ', ties' : ''}`).toBe(pBefore(x, y));
    }
    expect(untied).toBeGreaterThan(40);
  });

  it('keeps at most its bound of cells, the least recently used going first, and nothing past 60 ranks', () => {
    expect(UNTIED_CACHE_MAX_CELLS).toBe(1 << 20);
    const bound = 20_000;
    const old = setUntiedCacheMaxCells(bound);
    try {
      const first = untiedRankSumDistribution(EXACT_MAX_N, 1);
      // 1831 cells each (sums 0 … 1830 of ranks 1..60): 20 of them are more than the bound.
      for (let k = 2; k <= 21; k++) untiedRankSumDistribution(EXACT_MAX_N, k);
      expect(untiedCacheCells()).toBeGreaterThan(bound - 1831);
      expect(untiedCacheCells()).toBeLessThanOrEqual(bound);
      const again = untiedRankSumDistribution(EXACT_MAX_N, 1);
      expect(again).not.toBe(first);
      expect(Array.from(again)).toEqual(Array.from(first));
      // The most recently used is still there.
      expect(untiedRankSumDistribution(EXACT_MAX_N, 21)).toBe(untiedRankSumDistribution(EXACT_MAX_N, 21));
      const before = untiedCacheCells();
      const big = untiedRankSumDistribution(EXACT_MAX_N + 10, 5);
      expect(untiedRankSumDistribution(EXACT_MAX_N + 10, 5)).not.toBe(big);
      expect(untiedCacheCells()).toBe(before);
    } finally {
      setUntiedCacheMaxCells(old);
    }
    expect(() => setUntiedCacheMaxCells(-1)).toThrow(/cells must be an integer >= 0/);
  });
});
