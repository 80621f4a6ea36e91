/**
 * Descriptive statistics of measured samples. Percentiles use linear interpolation between
 * closest ranks (the "R-7" / NumPy default definition), so p50 of [1,2,3,4] is 2.5.
 */
import { z } from 'zod';

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  if (p <= 0) return sorted[0]!;
  if (p >= 100) return sorted[sorted.length - 1]!;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const frac = rank - lo;
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * frac;
}

export function median(samples: readonly number[]): number {
  return percentile([...samples].sort((a, b) => a - b), 50);
}

export function mean(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  let s = 0;
  for (const v of samples) s += v;
  return s / samples.length;
}

/** What `describe` returns, and what result documents carry (api/schema.ts uses this schema). */
export const Distribution = z.object({
  n: z.number().int().min(0),
  min: z.number(),
  max: z.number(),
  mean: z.number(),
  stddev: z.number(),
  p50: z.number(),
  p95: z.number(),
  p99: z.number(),
});
export type Distribution = z.infer<typeof Distribution>;

/** Summary of a sample set. Throws on an empty set: a test with no samples has nothing to report. */
export function describe(samples: readonly number[]): Distribution {
  if (samples.length === 0) throw new Error('describe: no samples');
  for (const v of samples) if (!Number.isFinite(v)) throw new Error(`describe: non-finite sample ${v}`);
  const sorted = [...samples].sort((a, b) => a - b);
  const m = mean(sorted);
  let ss = 0;
  for (const v of sorted) ss += (v - m) ** 2;
  const stddev = sorted.length > 1 ? Math.sqrt(ss / (sorted.length - 1)) : 0;
  return {
    n: sorted.length,
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    mean: m,
    stddev,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
  };
}

/** Mean absolute relative deviation: mean(|x - mean|) / mean. 0 is a perfectly even spread. */
export function meanAbsRelDeviation(values: readonly number[]): number {
  const m = mean(values);
  if (!(m > 0)) return Number.NaN;
  let s = 0;
  for (const v of values) s += Math.abs(v - m);
  return s / values.length / m;
}

/** Keep at most `max` samples, evenly strided, for storage in a result document. */
export function capSamples(samples: readonly number[], max = 500): number[] {
  if (samples.length <= max) return [...samples];
  const out: number[] = [];
  const step = samples.length / max;
  for (let i = 0; i < max; i++) out.push(samples[Math.floor(i * step)]!);
  return out;
}

/** Round for display and storage (keeps 4 significant decimals for small values). */
export function round(v: number, digits = 3): number {
  if (!Number.isFinite(v)) return v;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
