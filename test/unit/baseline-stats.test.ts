/**
 * The rank statistics of the baseline comparison against published reference values.
 *
 * Sources:
 * [HW] Hollander & Wolfe (1973), Nonparametric Statistical Methods, pp. 69f: permeability of the
 *      human chorioamnion at term (x) and at 12–26 weeks (y); the data of R's `?wilcox.test`
 *      example. Published: W = 35, exact one-sided p = 0.1272, large-sample (no continuity
 *      correction) one-sided p = 0.1103.
 * [MP] Mehta & Patel (2001), StatXact-5 for Windows manual, Table 9.6 p. 227 and p. 229 (quoted
 *      by `exactRankTests`'s `?bloodp` and its regression tests, tests/reg-tests.R): diastolic blood
 *      pressure, 4 treated vs 11 controls, with ties. Wilcoxon-Mann-Whitney exact two-sided
 *      p = 0.0989, one-sided 0.0542; asymptotic two-sided (no continuity correction) 0.0853;
 *      Hodges–Lehmann estimate 9.5.
 * [R]  R `wilcox.test(x, y)` outputs published at endmemo.com/r/wilcoxon.php: with ties, normal
 *      approximation with continuity correction: W = 51.5, p = 0.5966; and W = 0, p = 0.001364.
 * [SAS] SAS/STAT PROC NPAR1WAY Hodges–Lehmann estimation, as published by PSI's CAMIS project
 *      (psiaims.github.io/CAMIS/SAS/nparestimate.html) for Hollander & Wolfe's chicken data:
 *      location shift (A − B) 0.56, asymptotic (Moses) 95 % confidence limits −0.37 and 1.183.
 */
import { describe, expect, it } from 'vitest';
import {
  mannWhitney,
  midranks,
  normalCdf,
  normalQuantile,
  shiftEstimate,
  smallestAttainableP,
  subsetSumDistribution,
} from '../../src/report/ranktest.ts';

const HW_X = [0.8, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46];
const HW_Y = [1.15, 0.88, 0.9, 0.74, 1.21];
const MP_TREAT = [94, 108, 110, 90];
const MP_CONTROL = [80, 94, 85, 90, 90, 90, 108, 94, 78, 105, 88];
const R_X = [1, 5, 9, 24, 56, 21, 3, 7, 21, 4];
const R_Y1 = [12, 15, 5, 9, 9, 14, 56, 22, 3, 7, 32, 5];
const R_Y2 = [1233, 4356, 987, 39999, 1111, 200000];
const SAS_A = [1.83, 0.5, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.3];
const SAS_B = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];

describe('Mann-Whitney U test against published values', () => {
  it('[HW] no ties: U = 35, exact one-sided p 0.1272 (two-sided 0.2544), large-sample one-sided 0.1103', () => {
    const exact = mannWhitney(HW_X, HW_Y);
    expect(exact).toMatchObject({ u: 35, method: 'exact', ties: false });
    expect(exact.p / 2).toBeCloseTo(0.1272, 4);
    const normal = mannWhitney(HW_X, HW_Y, { exact: false, continuity: false });
    expect(normal.method).toBe('normal');
    expect(normal.p / 2).toBeCloseTo(0.1103, 4);
  });

  it('[MP] ties, exact conditional: two-sided p 0.0989; asymptotic 0.0853', () => {
    const exact = mannWhitney(MP_TREAT, MP_CONTROL);
    expect(exact).toMatchObject({ u: 35, method: 'exact', ties: true });
    expect(exact.p).toBeCloseTo(0.0989, 4);
    expect(mannWhitney(MP_TREAT, MP_CONTROL, { exact: false, continuity: false }).p).toBeCloseTo(0.0853, 4);
  });

  it('[MP] one-sided exact p 0.0542 from the same permutation distribution', () => {
    const { ranks } = midranks([...MP_TREAT, ...MP_CONTROL]);
    const dist = subsetSumDistribution(ranks.map((r) => r * 2), MP_TREAT.length);
    const obs = 2 * ranks.slice(0, MP_TREAT.length).reduce((a, b) => a + b, 0);
    let p = 0;
    for (let s = obs; s < dist.length; s++) p += dist[s]!;
    expect(p).toBeCloseTo(0.0542, 4);
  });

  it('[R] ties, normal approximation with tie and continuity correction: W 51.5 p 0.5966; W 0 p 0.001364', () => {
    const a = mannWhitney(R_X, R_Y1, { exact: false });
    expect(a.u).toBe(51.5);
    expect(a.p).toBeCloseTo(0.5966, 4);
    const b = mannWhitney(R_X, R_Y2, { exact: false });
    expect(b.u).toBe(0);
    expect(b.p).toBeCloseTo(0.001364, 6);
  });

  it('is symmetric in its samples and uses the exact test for small samples only', () => {
    const ab = mannWhitney(HW_X, HW_Y);
    const ba = mannWhitney(HW_Y, HW_X);
    expect(ba.u).toBe(HW_X.length * HW_Y.length - ab.u);
    expect(ba.p).toBeCloseTo(ab.p, 12);
    const big = Array.from({ length: 40 }, (_, i) => i);
    expect(mannWhitney(big, big.map((v) => v + 0.5)).method).toBe('normal');
  });

  it('equal samples give p = 1; the smallest attainable p is 2 / C(n, k)', () => {
    expect(mannWhitney([1, 2, 3], [1, 2, 3]).p).toBeCloseTo(1, 12);
    expect(mannWhitney([5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5], Array(31).fill(5)).p).toBe(1);
    expect(smallestAttainableP(3, 3)).toBeCloseTo(0.1, 12);
    expect(smallestAttainableP(4, 4)).toBeCloseTo(2 / 70, 12);
    // Completely separated samples reach it exactly.
    expect(mannWhitney([1, 2, 3, 4], [5, 6, 7, 8]).p).toBeCloseTo(2 / 70, 12);
  });

  it('rejects empty and non-finite samples', () => {
    expect(() => mannWhitney([], [1])).toThrow(/at least one/);
    expect(() => mannWhitney([1, Number.NaN], [1])).toThrow(/non-finite/);
  });
});

describe('Hodges–Lehmann shift and its distribution-free confidence interval', () => {
  it('[SAS] chicken data: shift 0.56, 95 % Moses limits −0.37 and 1.183 (exact k and normal k agree)', () => {
    for (const exact of [true, false]) {
      const e = shiftEstimate(SAS_A, SAS_B, 0.95, { exact });
      expect(e.estimate).toBeCloseTo(0.56, 10);
      expect(e.ci![0]).toBeCloseTo(-0.37, 10);
      expect(e.ci![1]).toBeCloseTo(1.183, 10);
      expect(e.k).toBe(18);
    }
  });

  it('[MP] estimate 9.5 (treated − control)', () => {
    expect(shiftEstimate(MP_TREAT, MP_CONTROL).estimate).toBe(9.5);
  });

  it('samples too small for the level give no interval', () => {
    expect(shiftEstimate([1, 2, 3], [4, 5, 6]).ci).toBeNull();
    expect(shiftEstimate([1, 2, 3, 4], [5, 6, 7, 8]).ci).toEqual([-7, -1]);
  });

  it('a pure shift is recovered and the interval covers it', () => {
    const y = Array.from({ length: 25 }, (_, i) => Math.sin(i * 7.3) * 10 + 50);
    const x = y.map((v) => v + 4);
    const e = shiftEstimate(x, y);
    expect(e.estimate).toBeCloseTo(4, 10);
    expect(e.ci![0]).toBeLessThanOrEqual(4);
    expect(e.ci![1]).toBeGreaterThanOrEqual(4);
  });
});

describe('normal distribution', () => {
  it('matches tabulated values', () => {
    expect(normalCdf(0)).toBe(0.5);
    expect(normalCdf(1.959963984540054)).toBeCloseTo(0.975, 12);
    expect(normalCdf(-3)).toBeCloseTo(0.0013498980316301, 14);
    expect(normalCdf(-8)).toBeCloseTo(6.22096057427178e-16, 25);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 9);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232306167813, 9);
  });
});
