/**
 * A straight-line trend over time-ordered samples (ordinary least squares) with the 95 %
 * confidence interval of its slope (Student's t, n - 2 degrees of freedom), and the ratio of the
 * fitted line's value at the end to its value at the start. Used by 2.5 (sustained throughput),
 * which fits samples/s against time over every window instead of comparing two windows.
 */

/** Two-sided 97.5 % quantiles of Student's t for 1..30 degrees of freedom. */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101,
  2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/**
 * The 0.975 quantile of Student's t with `df` degrees of freedom: a table up to 30, then the
 * Cornish-Fisher expansion around the normal quantile (error below 1e-3 from 31 on).
 */
export function tQuantile975(df: number): number {
  if (!(df >= 1)) throw new Error(`tQuantile975: degrees of freedom must be >= 1, got ${df}`);
  const d = Math.floor(df);
  if (d <= T975.length) return T975[d - 1]!;
  const z = 1.959964;
  return z + (z ** 3 + z) / (4 * d) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * d * d);
}

export interface TrendFit {
  /** Points fitted. */
  n: number;
  /** Change of y per unit of x (samples/s per second for 2.5). */
  slope: number;
  /** 95 % confidence interval of the slope: [low, high]. */
  slopeCi: [number, number];
  meanX: number;
  meanY: number;
  /** Standard deviation of the residuals (n - 2 degrees of freedom). */
  residualSd: number;
  /** The fitted line at `x0` and at `x1`. */
  startFit: number;
  endFit: number;
  /** endFit / startFit: the fitted end-to-start ratio (not finite when the fitted start is not positive). */
  ratio: number;
  /**
   * 95 % interval of the ratio: the ratio at the two ends of the slope's interval, the mean taken
   * as known (in least squares the mean's error is independent of the slope's, and it is the
   * smaller one over a run of many points). An end is +Infinity when the line at that slope
   * starts at or below zero (the interval is unbounded above).
   */
  ratioCi: [number, number];
}

/**
 * Fits y = a + b x by least squares over every point and compares the line's value at `x1` with
 * its value at `x0` (by default the first and the last x). Needs at least 3 points with distinct x
 * (one degree of freedom for the interval).
 */
export function fitTrend(xs: readonly number[], ys: readonly number[], x0 = xs[0]!, x1 = xs[xs.length - 1]!): TrendFit {
  const n = xs.length;
  if (n !== ys.length) throw new Error(`fitTrend: ${n} x values but ${ys.length} y values`);
  if (n < 3) throw new Error(`fitTrend: a trend with an interval needs at least 3 points, got ${n}`);
  for (const v of [...xs, ...ys]) if (!Number.isFinite(v)) throw new Error(`fitTrend: non-finite value ${v}`);
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += xs[i]!;
    my += ys[i]!;
  }
  mx /= n;
  my /= n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i]! - mx) ** 2;
    sxy += (xs[i]! - mx) * (ys[i]! - my);
  }
  if (!(sxx > 0)) throw new Error('fitTrend: every x is the same; no trend can be fitted');
  const slope = sxy / sxx;
  let ssr = 0;
  for (let i = 0; i < n; i++) ssr += (ys[i]! - (my + slope * (xs[i]! - mx))) ** 2;
  const residualSd = Math.sqrt(ssr / (n - 2));
  const half = tQuantile975(n - 2) * (residualSd / Math.sqrt(sxx));
  const at = (b: number, x: number): number => my + b * (x - mx);
  const ratioAt = (b: number): number => {
    const start = at(b, x0);
    if (start > 0) return at(b, x1) / start;
    // A line rising so steeply that it starts at or below zero: the ratio is unbounded.
    return (b > 0) === x1 >= x0 ? Number.POSITIVE_INFINITY : Number.NaN;
  };
  const lo = ratioAt(slope - half);
  const hi = ratioAt(slope + half);
  // The ratio rises with the slope when x1 > x0.
  const ratioCi: [number, number] = x1 >= x0 ? [lo, hi] : [hi, lo];
  return {
    n,
    slope,
    slopeCi: [slope - half, slope + half],
    meanX: mx,
    meanY: my,
    residualSd,
    startFit: at(slope, x0),
    endFit: at(slope, x1),
    ratio: ratioAt(slope),
    ratioCi,
  };
}
