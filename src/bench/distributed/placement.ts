/**
 * The yardsticks 1.5 (load balancing) judges a system's placement against: what random placement
 * and "every coordinator runs what it accepted" would score for the same counts. Pure functions
 * (unit-tested); deterministic (an exact formula, or a Monte-Carlo run seeded with `mulberry32`).
 *
 * The score is the mean absolute relative deviation (MARD) of the per-agent load within a batch,
 * averaged over the batches.
 */
import { mulberry32 } from '../../prng.ts';
import { meanAbsRelDeviation } from '../../stats.ts';

function logFactorials(m: number): Float64Array {
  const lf = new Float64Array(m + 1);
  for (let i = 2; i <= m; i++) lf[i] = lf[i - 1]! + Math.log(i);
  return lf;
}

/**
 * Expected MARD of `m` tasks placed uniformly at random on `n` agents (exact): every agent's count
 * is Binomial(m, 1/n), so the expectation is E|X − m/n| / (m/n).
 */
export function randomMardExpected(m: number, n: number): number {
  if (!Number.isInteger(m) || !Number.isInteger(n) || m < 1 || n < 1) throw new Error(`randomMardExpected: m and n must be positive integers (got ${m}, ${n})`);
  if (n === 1) return 0;
  const p = 1 / n;
  const mu = m * p;
  const lf = logFactorials(m);
  let e = 0;
  for (let k = 0; k <= m; k++) {
    const logPmf = lf[m]! - lf[k]! - lf[m - k]! + k * Math.log(p) + (m - k) * Math.log(1 - p);
    e += Math.exp(logPmf) * Math.abs(k - mu);
  }
  return e / mu;
}

/**
 * MARD when each coordinator runs every task it accepted itself (no balancing): coordinator c
 * carries `accepted[c]`, every other agent nothing.
 */
export function ownRunMard(accepted: readonly number[], n: number): number {
  const loads = [...accepted, ...new Array<number>(Math.max(0, n - accepted.length)).fill(0)];
  return meanAbsRelDeviation(loads);
}

function mardOf(loads: Float64Array): number {
  let s = 0;
  for (const v of loads) s += v;
  const mean = s / loads.length;
  if (!(mean > 0)) return Number.NaN;
  let dev = 0;
  for (const v of loads) dev += Math.abs(v - mean);
  return dev / loads.length / mean;
}

export interface RandomPlacement {
  /** Mean over draws of the batch-averaged MARD. */
  mean: number;
  /** Share of draws whose batch-averaged MARD is below `target` (random placement would pass). */
  passShare: number;
  draws: number;
}

/**
 * Random placement of the same batches, Monte Carlo: each draw puts every task of every batch on
 * a uniformly random agent and scores the batch-averaged MARD of the per-agent load (the sum of
 * the tasks' weights: 1 each for counts, their costs for cost-weighted load).
 */
export function randomPlacement(batches: readonly (readonly number[])[], n: number, target: number, draws: number, seed: number): RandomPlacement {
  if (batches.length === 0 || n < 1 || draws < 1) return { mean: Number.NaN, passShare: Number.NaN, draws: 0 };
  const rand = mulberry32(seed);
  const loads = new Float64Array(n);
  let sum = 0;
  let passes = 0;
  for (let d = 0; d < draws; d++) {
    let total = 0;
    for (const weights of batches) {
      loads.fill(0);
      for (const w of weights) loads[Math.floor(rand() * n)]! += w;
      total += mardOf(loads);
    }
    const score = total / batches.length;
    sum += score;
    if (score < target) passes++;
  }
  return { mean: sum / draws, passShare: passes / draws, draws };
}
