/**
 * Two-sample rank statistics for the baseline comparison: the Mann-Whitney U test, the
 * Hodges–Lehmann estimate of the shift between two samples and its distribution-free (Moses)
 * confidence interval. Written here rather than taken from npm: the packages there either have
 * no exact distribution, no tie correction or no confidence interval, and this is small enough to
 * check line by line against published reference values (test/unit/baseline-stats.test.ts).
 *
 * Conventions: `x` is the current run, `y` the baseline. U counts the pairs where x beats y:
 * U = #(x_i > y_j) + ½ #(x_i = y_j) = R_x − n_x(n_x+1)/2, R_x the rank sum of x with midranks
 * for ties. The shift is "x − y" (current minus baseline).
 *
 * Mann-Whitney p-value (two-sided):
 * - exact when n_x + n_y <= EXACT_MAX_N: the permutation distribution of R_x over the observed
 *   midranks, so ties are handled exactly (the conditional test of StatXact and
 *   `exactRankTests::wilcox.exact`); two-sided p = P(|R − E R| >= |r_obs − E R|);
 * - otherwise the normal approximation with the tie correction of the variance,
 *   σ² = n_x n_y / 12 · ((N + 1) − Σ(t³ − t) / (N(N − 1))), and a continuity correction of ½
 *   (as R's `wilcox.test(correct = TRUE)`).
 *
 * Confidence interval of the shift (Hollander & Wolfe, Nonparametric Statistical Methods, §4.3):
 * with D(1) <= … <= D(n_x n_y) the sorted differences x_i − y_j, the estimate is their median
 * (Hodges–Lehmann) and the interval is [D(k), D(n_x n_y + 1 − k)], with k the largest integer such
 * that P0(U <= k − 1) <= α/2 under the no-ties null distribution of U (exact for small samples),
 * or, for larger ones, k = floor(n_x n_y / 2 − z(1−α/2) · sqrt(n_x n_y (N + 1) / 12)). When k < 1
 * no interval at this level exists for samples this small, and `ci` is null. The interval and the
 * test are duals: the interval leaves out 0 exactly when the (untied) test rejects at α.
 *
 * Memory and time are bounded for any sample sizes:
 * - the differences are never all materialised. Up to MATERIALISE_MAX_PAIRS pairs they are (as
 *   before: one Float64Array, sorted once); past it each needed D(r) is found by selection in the
 *   sorted matrix x_i − y_j (`pairDifferenceOrderStatistics`): O(n_x + n_y) memory, and
 *   O(log(n_x n_y)) rounds of O(n_x + n_y) time, returning the same value as the sort;
 * - the exact permutation distribution (`subsetSumDistribution`) is used only up to EXACT_LIMIT_N
 *   samples in all, even when `exact: true` is asked for; past it the normal approximation is
 *   used (and `method` says 'normal'), because its table grows as n_x · N²;
 * - the distributions of untied samples of up to UNTIED_CACHE_MAX_N values in all (the ranks
 *   1..N) are kept, at most UNTIED_CACHE_MAX_CELLS (8 MiB), least recently used first out
 *   (`untiedRankSumDistribution`): the change-point search of report/trend.ts runs one exact test
 *   per split, the same sizes for every test of a history, and computed them anew each time.
 * The callers cap the samples they compare (report/baseline.ts, MAX_COMPARED_SAMPLES).
 */
import { mulberry32 } from '../prng.ts';

/** Above this total sample count the p-value comes from the normal approximation. */
export const EXACT_MAX_N = 60;

/**
 * The exact distribution is computed up to this total sample count even when `exact: true` asks
 * for it; past it the normal approximation is used. Its table has (n_x + 1) · (N(N + 1) + 1)
 * doubles and takes about N · n_x · N(N + 1) steps: at N = 100 about 8 MB and 10^8 steps, at
 * N = 500 up to 1 GB.
 */
export const EXACT_LIMIT_N = 100;

/** The most cells (doubles) `subsetSumDistribution` allocates: 2^21, 16 MiB. */
export const SUBSET_SUM_MAX_CELLS = 1 << 21;

/** Up to this many pairs the differences are materialised and sorted at once (2 MiB of doubles). */
export const MATERIALISE_MAX_PAIRS = 1 << 18;

export interface MannWhitney {
  nx: number;
  ny: number;
  /** U of x: the number of (x, y) pairs where x is larger, ties counting ½. */
  u: number;
  /** Two-sided p-value. */
  p: number;
  method: 'exact' | 'normal';
  /** True when some values occur more than once in the pooled samples. */
  ties: boolean;
  /** The standardised statistic of the normal approximation (with continuity correction). */
  z?: number;
}

export interface ShiftEstimate {
  /** Hodges–Lehmann estimate of x − y: the median of all pairwise differences. */
  estimate: number;
  /** The confidence interval of the shift, or null when the samples are too small for the level. */
  ci: [number, number] | null;
  /** The k of the interval [D(k), D(mn + 1 − k)] (1-based), 0 when none exists. */
  k: number;
  method: 'exact' | 'normal';
}

/** Midranks (1-based) of the values, ties sharing the mean of their ranks. */
export function midranks(values: readonly number[]): { ranks: number[]; tieGroups: number[] } {
  const order = values.map((_, i) => i).sort((a, b) => values[a]! - values[b]!);
  const ranks = new Array<number>(values.length);
  const tieGroups: number[] = [];
  let i = 0;
  while (i < order.length) {
    let j = i;
    while (j + 1 < order.length && values[order[j + 1]!] === values[order[i]!]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]!] = r;
    if (j > i) tieGroups.push(j - i + 1);
    i = j + 1;
  }
  return { ranks, tieGroups };
}

/**
 * The permutation distribution of the sum of `k` scores drawn from `scores` (non-negative
 * integers): entry s is the probability that a random k-subset sums to s.
 */
export function subsetSumDistribution(scores: readonly number[], k: number): Float64Array {
  if (!Number.isInteger(k) || k < 0 || k > scores.length) throw new Error(`subsetSumDistribution: k must be an integer in [0, ${scores.length}], got ${k}`);
  for (const sc of scores) if (!Number.isInteger(sc) || sc < 0) throw new Error(`subsetSumDistribution: scores must be non-negative integers, got ${sc}`);
  const total = scores.reduce((a, b) => a + b, 0);
  const cells = (k + 1) * (total + 1);
  if (cells > SUBSET_SUM_MAX_CELLS) {
    throw new Error(`subsetSumDistribution: ${k} of ${scores.length} scores summing to ${total} need ${cells} cells, over the limit of ${SUBSET_SUM_MAX_CELLS}`);
  }
  // counts[j][s]: number of j-subsets of the scores seen so far with sum s (as doubles: the
  // counts pass 2^53 for larger samples, and only their ratios matter).
  const counts: Float64Array[] = [];
  for (let j = 0; j <= k; j++) counts.push(new Float64Array(total + 1));
  counts[0]![0] = 1;
  let seen = 0;
  for (const sc of scores) {
    seen += sc;
    for (let j = Math.min(k, scores.length); j >= 1; j--) {
      const to = counts[j]!;
      const from = counts[j - 1]!;
      for (let s = seen; s >= sc; s--) {
        const c = from[s - sc]!;
        if (c !== 0) to[s] = to[s]! + c;
      }
    }
  }
  const dist = counts[k]!;
  let sum = 0;
  for (const c of dist) sum += c;
  for (let s = 0; s < dist.length; s++) dist[s] = dist[s]! / sum;
  return dist;
}

/** The untied distributions of at most this many ranks are cached (see `untiedRankSumDistribution`). */
export const UNTIED_CACHE_MAX_N = EXACT_MAX_N;
/** The most cells (doubles) the cache holds: 2^20, 8 MiB; the least recently used go first. */
export const UNTIED_CACHE_MAX_CELLS = 1 << 20;
const untiedCache = new Map<string, Float64Array>();
let untiedCells = 0;
let untiedMaxCells = UNTIED_CACHE_MAX_CELLS;

/** Sets the cache's bound in cells (tests of the bound use a small one); returns the previous bound. */
export function setUntiedCacheMaxCells(cells: number): number {
  if (!Number.isInteger(cells) || cells < 0) throw new RangeError(`cells must be an integer >= 0, got ${cells}`);
  const old = untiedMaxCells;
  untiedMaxCells = cells;
  return old;
}

/** Cells the cache of `untiedRankSumDistribution` holds now (for tests of its bound). */
export const untiedCacheCells = (): number => untiedCells;

/**
 * `subsetSumDistribution` of the ranks 1..n (in that order) for k-subsets: the null distribution
 * of the rank sum of k of n untied values, which the exact test and the confidence interval use.
 * For n up to UNTIED_CACHE_MAX_N it is kept (at most UNTIED_CACHE_MAX_CELLS cells in all), so the many
 * comparisons of equal sizes (report/trend.ts examines up to 55 splits per test, and a history's
 * tests have the same sizes) compute it once. The array is shared: callers only read it.
 *
 * Why a cached value is the one a fresh computation over any order of the same scores gives, to
 * the bit: up to 60 ranks every count the dynamic programme holds is an integer below 2^53 (the
 * largest, of 30 of 60, is about 7·10^14: C(60, 30) ≈ 1.2·10^17 spread over some 900 sums), so
 * every addition is exact and the order of the scores cannot change a count; the normalising sum
 * runs over the counts in index order either way. test/unit/ranktest-cache.test.ts checks it.
 */
export function untiedRankSumDistribution(n: number, k: number): Float64Array {
  const key = `${n}/${k}`;
  const hit = untiedCache.get(key);
  if (hit) {
    // Most recently used last: a Map iterates in insertion order.
    untiedCache.delete(key);
    untiedCache.set(key, hit);
    return hit;
  }
  const dist = subsetSumDistribution(Array.from({ length: n }, (_, j) => j + 1), k);
  if (n <= UNTIED_CACHE_MAX_N) {
    untiedCache.set(key, dist);
    untiedCells += dist.length;
    for (const [old, d] of untiedCache) {
      if (untiedCells <= untiedMaxCells) break;
      untiedCache.delete(old);
      untiedCells -= d.length;
    }
  }
  return dist;
}

/** Mann-Whitney U test of x against y (two-sided). Throws on an empty sample or a non-finite value. */
export function mannWhitney(x: readonly number[], y: readonly number[], opts: { exact?: boolean; continuity?: boolean } = {}): MannWhitney {
  checkSamples(x, y);
  const nx = x.length;
  const ny = y.length;
  const n = nx + ny;
  const { ranks, tieGroups } = midranks([...x, ...y]);
  let rx = 0;
  for (let i = 0; i < nx; i++) rx += ranks[i]!;
  const u = rx - (nx * (nx + 1)) / 2;
  const ties = tieGroups.length > 0;
  const exact = (opts.exact ?? n <= EXACT_MAX_N) && n <= EXACT_LIMIT_N;
  if (exact) {
    const mean2 = nx * (n + 1); // 2·E[R_x]
    const obs = Math.abs(Math.round(rx * 2) - mean2);
    let p = 0;
    if (!ties && n <= UNTIED_CACHE_MAX_N) {
      // Without ties the ranks are 1..N: the distribution of their k-subset sums, shared (cached)
      // by every test of these sizes. Entry s here is entry 2s of the doubled ranks' distribution
      // below, which is 0 at odd sums: the same p, to the bit (see `untiedRankSumDistribution`).
      const dist = untiedRankSumDistribution(n, nx);
      for (let s = 0; s < dist.length; s++) if (Math.abs(2 * s - mean2) >= obs) p += dist[s]!;
    } else {
      // Midranks are multiples of ½: doubled, they are integers and the distribution is exact.
      const doubled = ranks.map((r) => Math.round(r * 2));
      const dist = subsetSumDistribution(doubled, nx);
      for (let s = 0; s < dist.length; s++) if (Math.abs(s - mean2) >= obs) p += dist[s]!;
    }
    return { nx, ny, u, p: Math.min(1, p), method: 'exact', ties };
  }
  const tieSum = tieGroups.reduce((a, t) => a + t ** 3 - t, 0);
  const sigma = Math.sqrt(((nx * ny) / 12) * (n + 1 - tieSum / (n * (n - 1))));
  const d = u - (nx * ny) / 2;
  if (sigma === 0) return { nx, ny, u, p: 1, method: 'normal', ties, z: 0 };
  const cc = opts.continuity === false ? 0 : Math.sign(d) * 0.5;
  const z = (d - cc) / sigma;
  const p = Math.min(1, 2 * normalCdf(-Math.abs(z)));
  return { nx, ny, u, p, method: 'normal', ties, z };
}

/**
 * The smallest two-sided exact p-value that samples of these sizes can produce (all of one
 * sample above all of the other, no ties): 2 / C(nx + ny, nx). A test at level α can only reject
 * when this is <= α.
 */
export function smallestAttainableP(nx: number, ny: number): number {
  // 2 / C(n, k) computed as a product of ratios to stay finite.
  const k = Math.min(nx, ny);
  let inv = 1;
  for (let i = 1; i <= k; i++) inv *= i / (nx + ny - k + i);
  return Math.min(1, 2 * inv);
}

/**
 * Hodges–Lehmann estimate of x − y and its distribution-free confidence interval. Memory is
 * O(n_x + n_y) past MATERIALISE_MAX_PAIRS pairs (see the top of this file); the pair count must
 * stay within 2^53 so that ranks are exact.
 */
export function shiftEstimate(x: readonly number[], y: readonly number[], confidence = 0.95, opts: { exact?: boolean; materialiseMax?: number } = {}): ShiftEstimate {
  checkSamples(x, y);
  const nx = x.length;
  const ny = y.length;
  const mn = nx * ny;
  if (!Number.isSafeInteger(mn)) throw new Error(`rank test: ${nx} × ${ny} pairs are too many to rank exactly`);
  const alpha = 1 - confidence;
  const exact = (opts.exact ?? nx + ny <= EXACT_MAX_N) && nx + ny <= EXACT_LIMIT_N;
  let k: number;
  if (exact) {
    // The no-ties null distribution of U: that of the rank sum of ranks 1..N, shifted.
    const dist = untiedRankSumDistribution(nx + ny, nx);
    const offset = (nx * (nx + 1)) / 2;
    let cum = 0;
    k = 0;
    // P(U <= k - 1) <= alpha/2, k as large as possible.
    for (let uu = 0; uu <= mn; uu++) {
      cum += dist[uu + offset]!;
      if (cum > alpha / 2 + 1e-12) break;
      k = uu + 1;
    }
  } else {
    const z = normalQuantile(1 - alpha / 2);
    k = Math.floor(mn / 2 - z * Math.sqrt((mn * (nx + ny + 1)) / 12));
  }
  const method = exact ? 'exact' : 'normal';
  // The ranks of the differences needed: the middle one or two, and the interval's ends.
  const mid = mn % 2 === 1 ? [(mn + 1) / 2] : [mn / 2, mn / 2 + 1];
  const ranks = k >= 1 ? [...mid, k, mn + 1 - k] : mid;
  const xs = Float64Array.from(x).sort();
  const ys = Float64Array.from(y).sort();
  const d = pairDifferenceOrderStatistics(xs, ys, ranks, opts.materialiseMax);
  const estimate = mid.length === 1 ? d[0]! : (d[0]! + d[1]!) / 2;
  if (k < 1) return { estimate, ci: null, k: 0, method };
  return { estimate, ci: [d[mid.length]!, d[mid.length + 1]!], k, method };
}

/**
 * D(r) for each rank r (1-based) of `ranks`: the r-th smallest of the n_x·n_y differences
 * xs[i] − ys[j], with `xs` and `ys` sorted ascending. The value is exactly the one sorting all
 * differences would give (each difference is computed as the same `a − b`).
 *
 * Up to `materialiseMax` pairs all differences are materialised and sorted once. Past it, each
 * rank is selected without materialising them: row i of the matrix, xs[i] − ys[n_y − 1 − c] for
 * c = 0..n_y − 1, ascends in c (and the rows ascend in i, since IEEE subtraction is monotone).
 * Each row keeps the range [lo_i, hi_i] of columns that can still hold D(r); a round takes as
 * pivot the weighted median of the rows' middle candidates (weights: the rows' candidate counts,
 * so at least a quarter of the candidates lie on each side of it; `weightedMedian`), counts the differences below
 * and at most the pivot with two pointers over the sorted arrays (O(n_x + n_y)), and drops the
 * side that cannot hold D(r), or returns the pivot when it is D(r). Every round drops at least a
 * quarter of the candidates, so there are at most log_{4/3}(n_x n_y) rounds; when no more than
 * `materialiseMax` candidates are left they are sorted and D(r) picked. Memory: six arrays of
 * n_x doubles and at most `materialiseMax` candidates.
 */
export function pairDifferenceOrderStatistics(xs: Float64Array, ys: Float64Array, ranks: readonly number[], materialiseMax = MATERIALISE_MAX_PAIRS): number[] {
  const nx = xs.length;
  const ny = ys.length;
  const mn = nx * ny;
  if (!Number.isInteger(materialiseMax) || materialiseMax < 1) throw new Error(`materialiseMax must be an integer >= 1, got ${materialiseMax}`);
  for (const r of ranks) if (!Number.isInteger(r) || r < 1 || r > mn) throw new Error(`rank must be an integer in [1, ${mn}], got ${r}`);
  if (mn <= materialiseMax) {
    const diffs = new Float64Array(mn);
    let i = 0;
    for (const a of xs) for (const b of ys) diffs[i++] = a - b;
    diffs.sort();
    return ranks.map((r) => diffs[r - 1]!);
  }
  return ranks.map((r) => selectPairDifference(xs, ys, r, materialiseMax));
}

function selectPairDifference(xs: Float64Array, ys: Float64Array, r: number, materialiseMax: number): number {
  const nx = xs.length;
  const ny = ys.length;
  const lo = new Float64Array(nx);
  const hi = new Float64Array(nx).fill(ny - 1);
  const less = new Float64Array(nx);
  const atMost = new Float64Array(nx);
  const middle = new Float64Array(nx);
  const weight = new Float64Array(nx);
  const random = mulberry32(0x5eed);
  const at = (i: number, c: number): number => xs[i]! - ys[ny - 1 - c]!;
  let left = nx * ny;
  while (left > materialiseMax) {
    let n = 0;
    for (let i = 0; i < nx; i++) {
      if (lo[i]! > hi[i]!) continue;
      middle[n] = at(i, Math.floor((lo[i]! + hi[i]!) / 2));
      weight[n++] = hi[i]! - lo[i]! + 1;
    }
    const pivot = weightedMedian(middle, weight, n, left / 2, random);
    // less[i] / atMost[i]: how many of row i are < / <= pivot (they are its first columns).
    let nLess = 0;
    let nAtMost = 0;
    let jl = 0;
    let je = 0;
    for (let i = 0; i < nx; i++) {
      const a = xs[i]!;
      while (jl < ny && !(a - ys[jl]! < pivot)) jl++;
      while (je < ny && !(a - ys[je]! <= pivot)) je++;
      less[i] = ny - jl;
      atMost[i] = ny - je;
      nLess += ny - jl;
      nAtMost += ny - je;
    }
    if (r <= nLess) {
      for (let i = 0; i < nx; i++) hi[i] = Math.min(hi[i]!, less[i]! - 1);
    } else if (r > nAtMost) {
      for (let i = 0; i < nx; i++) lo[i] = Math.max(lo[i]!, atMost[i]!);
    } else {
      return pivot;
    }
    left = 0;
    for (let i = 0; i < nx; i++) if (hi[i]! >= lo[i]!) left += hi[i]! - lo[i]! + 1;
  }
  // Every difference left of the candidates is below D(r): D(r) is candidate number r − below.
  let below = 0;
  const candidates = new Float64Array(left);
  let m = 0;
  for (let i = 0; i < nx; i++) {
    below += Math.min(lo[i]!, hi[i]! + 1);
    for (let c = lo[i]!; c <= hi[i]!; c++) candidates[m++] = at(i, c);
  }
  candidates.sort();
  return candidates[r - below - 1]!;
}

/**
 * The weighted median of vals[0..n): the smallest value v whose values <= v weigh at least
 * `half`. Quickselect with three-way partitions (reorders both arrays): expected O(n). The random
 * pivots (seeded, so every run takes the same steps) only decide the time, never the value.
 */
function weightedMedian(vals: Float64Array, wts: Float64Array, n: number, half: number, random: () => number): number {
  let from = 0;
  let to = n;
  let need = half;
  for (;;) {
    const p = vals[from + Math.floor(random() * (to - from))]!;
    let lt = from;
    let i = from;
    let gt = to;
    let wLess = 0;
    let wEqual = 0;
    while (i < gt) {
      const v = vals[i]!;
      if (v < p) {
        wLess += wts[i]!;
        swap(vals, wts, i++, lt++);
      } else if (v > p) {
        swap(vals, wts, i, --gt);
      } else {
        wEqual += wts[i]!;
        i++;
      }
    }
    if (need <= wLess) to = lt;
    else if (need <= wLess + wEqual) return p;
    else {
      need -= wLess + wEqual;
      from = gt;
    }
  }
}

function swap(a: Float64Array, b: Float64Array, i: number, j: number): void {
  const va = a[i]!;
  a[i] = a[j]!;
  a[j] = va;
  const vb = b[i]!;
  b[i] = b[j]!;
  b[j] = vb;
}

function checkSamples(x: readonly number[], y: readonly number[]): void {
  if (x.length === 0 || y.length === 0) throw new Error('rank test: both samples need at least one value');
  for (const v of x) if (!Number.isFinite(v)) throw new Error(`rank test: non-finite sample ${v}`);
  for (const v of y) if (!Number.isFinite(v)) throw new Error(`rank test: non-finite sample ${v}`);
}

/**
 * Standard normal CDF. Marsaglia's Taylor series (J. Stat. Softw. 11(4), 2004), absolute error
 * about 1e-15; tails beyond ±37 are 0 and 1.
 */
export function normalCdf(x: number): number {
  if (x < -37) return 0;
  if (x > 37) return 1;
  if (x < -5) {
    // Asymptotic continued fraction for the far lower tail (keeps relative precision).
    let f = 0;
    for (let k = 60; k >= 1; k--) f = k / (-x + f);
    return Math.exp(-0.5 * x * x - 0.91893853320467274178) / (-x + f);
  }
  let s = x;
  let t = 0;
  let b = x;
  const q = x * x;
  let i = 1;
  while (s !== t) {
    t = s;
    i += 2;
    b *= q / i;
    s = t + b;
  }
  return 0.5 + s * Math.exp(-0.5 * q - 0.91893853320467274178);
}

/**
 * Inverse standard normal CDF: Acklam's rational approximation (relative error < 1.2e-9), refined
 * by one Halley step against `normalCdf`.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`normalQuantile: p must be in (0, 1), got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  let x: number;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  } else if (p <= 1 - lo) {
    const q = p - 0.5;
    const r = q * q;
    x = ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  const e = normalCdf(x) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}
