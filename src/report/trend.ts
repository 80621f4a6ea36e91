/**
 * Trends over many runs: each test's bounded history of compact points (src/api/history.ts),
 * the detection of a lasting shift in it, and a text sparkline. `swarmbench history` (src/cli/history.ts)
 * prints them from a folder of results.json files; the operator keeps the same history for each
 * BenchmarkSchedule (operator/schedule-history.ts).
 *
 * What is compared: the runs' own values (each point's `value`, the test's judged statistic),
 * one number per run, not the pooled samples of the runs. The runs are the replicates: the
 * samples of one run share its machine, its neighbours and its warm-up, so the spread between
 * runs is larger than the spread of samples within a run suggests, and a rank test on pooled
 * samples calls that ordinary run-to-run difference significant (docs/trends.md gives the figure
 * test/unit/trend.test.ts measures). On the runs' values the test is exact under the one
 * assumption "no shift: the runs' values are exchangeable". The samples each point keeps are
 * for comparisons of whole sample sets (a baseline of pooled runs), not used here.
 *
 * The change-point rule (`detectShift`), over the n runs that have a comparable value (the same
 * unit and mode as the latest run), with w = `minRuns` (default 3) and W = `window` (default 20):
 * - every split k with at least w runs before it and w after it is examined: m = n − 2w + 1
 *   splits;
 * - at a split, the runs from k to the latest ("after") are compared with the W runs before k
 *   ("before", fewer when there are fewer) by the baseline comparison (report/baseline.ts
 *   `compareSamples`: two-sided Mann-Whitney U, exact up to 60 values, and the Hodges–Lehmann
 *   shift), at level α / (T · m) (Bonferroni over the m splits and the T = `tests` examined
 *   together, which `trendsOf` sets to the history's tests that can show a shift: the chance that
 *   any split of any test of a history without a shift passes is at most α, default 0.05);
 * - the shift must be at least `minEffectPct` (default 5 %) of the before median, as in the
 *   baseline comparison;
 * - the shift must last: the latest w runs all lie beyond the before median, on the side of the
 *   shift. A spike that went back, or a shift not yet seen in w runs, is not reported;
 * - of the splits that pass, the one that best cuts the runs into two levels is where the shift
 *   starts: the least absolute deviations from each side's median, over the same runs for every
 *   candidate (from the window of the earliest passing split to the latest run); the smallest p
 *   breaks a tie. (The smallest p alone leans towards balanced splits: a first run of the new
 *   level that is low among them moves it one run late.)
 * - confirmed (rule 7): the history as it stood one run before (its latest comparable run left
 *   out) shows a shift the same way by the same rules: a shift is reported at the second
 *   consecutive look that finds it, as an alert fires only once its condition has held for its
 *   `for:` time. Without it, a few unusual runs at the end of an ordinary history passed the
 *   corrected level at a single look and were gone at the next: the false trends of the clean
 *   agent's 30-run series on this machine (docs/trends.md). It costs one run of delay (`runsNeeded`)
 *   and a second pass over the splits. `looks` sets how many consecutive looks (1 … 10, default 2).
 * Better or worse follows the test's target (report/baseline.ts `betterOf`).
 *
 * The machine changed: a shift is found in the runs' values, and the runs' values follow the
 * host's load too (docs/trends.md measured it on this kind of machine: a few percent of the CPUs
 * taken by other processes moves quick runs' figures by more than the 5 % threshold; the
 * monitoring tests' values follow it run by run with Spearman's ρ of 0.5 to 0.8 even on a quiet
 * machine). Each point of a local run keeps the share of the host's CPUs other processes used
 * during it (`hostOtherPct`). The shift is reported with `machine` set ("the machine changed", not
 * a regression or an improvement of the system) when, over the same two sets of runs the shift
 * compared, either
 * - the share differs (U test at HOST_CHANGE_ALPHA), the medians are at least
 *   HOST_CHANGE_MIN_PCT of the CPUs apart, and the way explains the shift: busier with a worse
 *   figure, quieter with a better one (a machine that fell quiet does not make a figure worse), or
 * - the test's figure follows the share run by run (`rankCorrelationWithin`: the rank correlation
 *   of value and load inside the runs before the split and inside the runs since, pooled, so the
 *   step itself adds nothing to it; two-sided permutation p under HOST_CHANGE_ALPHA) and the
 *   load's part explains the shift: with each run's value less slope × (its load − the before
 *   median load), the slope by Theil–Sen over pairs of runs of the same set (`slopeWithin`), the
 *   shift no longer passes rules 2 and 3 in its direction.
 * It is a coincidence in time backed by that run-by-run evidence, not a proof of cause; it cannot
 * clear a shift whose host load stayed put, nor one larger than the load's part or against the way
 * the load went, and a cluster run keeps no host load (its agents are other pods of the node).
 *
 * Cost: one exact U test per split that passes the cheap lasting check, up to 55 for 60 runs. The
 * rank-sum distributions of untied runs are cached by report/ranktest.ts
 * (`untiedRankSumDistribution`, the same p to the bit), so a shifted test of 60 runs takes about
 * 0.35 s the first time on an overloaded 2-core machine (1.2 to 2.4 s before the cache, in the
 * same conditions) and a few ms for each further test of the same sizes: a history of 27 tests all
 * shifted, 0.8 s instead of 44 to 53 s. Rule 7 examines the look before too, for a test whose latest
 * look shows a shift: at most twice that. The second case of "the machine changed" adds 2000
 * permutations of at most 520 runs' loads for a shifted test of a local history (a few ms).
 *
 * Limits, said in docs/trends.md: one shift per test (the clearest cut); a slow drift is reported
 * as a shift where it is clearest; runs whose noise is not exchangeable (a machine getting busier
 * every night) break the assumption; with few runs, or a shift only w runs old in a long history,
 * no split can reach α / m at all (smallest exact p 2 / C(before + after, after)).
 */
import {
  type History,
  HISTORY_DEFAULT_POINTS,
  HISTORY_DEFAULT_SAMPLES,
  HISTORY_KIND,
  HISTORY_MAX_POINTS,
  HISTORY_MAX_SAMPLES,
  HISTORY_VERSION,
  HistoryPoint,
  type TestHistory,
} from '../api/history.ts';
import type { ResultDocument } from '../api/schema.ts';
import { median } from '../stats.ts';
import { mulberry32, shuffle } from '../prng.ts';
import { mannWhitney, midranks as midrankOf } from './ranktest.ts';
import { betterOf, compareSamples, comparedSamples, DEFAULT_ALPHA, DEFAULT_MIN_EFFECT_PCT, fmtP, orderStatisticSubset } from './baseline.ts';
import { num, pct, truncate } from './format.ts';

/** Runs before a split that the runs after it are compared with. */
export const DEFAULT_WINDOW = 20;
/** Runs a shift must have lasted (and runs before it) before it can be reported. */
export const DEFAULT_MIN_RUNS = 3;
export const MAX_MIN_RUNS = 50;
/** Consecutive looks (runs) that must show a shift before it is reported (rule 7). */
export const DEFAULT_LOOKS = 2;
export const MAX_LOOKS = 10;
/** The most tests examined together (a history holds 27; the bound keeps the option sane). */
export const MAX_TESTS = 1000;

/** A document that cannot give points (its start time is not a date). */
export class TrendInputError extends Error {}

export interface PointOptions {
  /** Samples kept per point (0 … 64, default 32). */
  samples?: number;
  /** The fingerprint id of the run, when one was taken. */
  fingerprint?: string;
}

const round6 = (v: number): number => Number(v.toPrecision(6));

/** One point per test of the document, as the history keeps it. */
export function pointsOf(doc: ResultDocument, opts: PointOptions = {}): HistoryPoint[] {
  const max = opts.samples ?? HISTORY_DEFAULT_SAMPLES;
  if (!Number.isInteger(max) || max < 0 || max > HISTORY_MAX_SAMPLES) throw new RangeError(`samples must be an integer in [0, ${HISTORY_MAX_SAMPLES}], got ${max}`);
  const ms = Date.parse(doc.run.startedAt);
  if (!Number.isFinite(ms)) throw new TrendInputError(`run.startedAt: ${JSON.stringify(doc.run.startedAt.slice(0, 40))} is not a date`);
  const time = new Date(ms).toISOString();
  // Only where the agents are the run's own processes (see HistoryPoint.hostOtherPct).
  const load = doc.environment.platform === 'local' ? doc.environment.hostLoad : undefined;
  const hostOtherPct = load && Number.isFinite(load.otherPct) && load.otherPct >= 0 ? Math.min(1000, load.otherPct) : undefined;
  return doc.tests.map((t) =>
    HistoryPoint.parse({
      id: t.id,
      time,
      run: doc.run.name.slice(0, 253) || '(unnamed)',
      attempt: doc.run.attempt,
      mode: doc.run.mode,
      result: t.result,
      value: t.value,
      unit: t.unit.slice(0, 64),
      p50: t.distribution?.p50 ?? null,
      p95: t.distribution?.p95 ?? null,
      n: t.samples,
      ...(opts.fingerprint ? { fingerprint: opts.fingerprint } : {}),
      ...(hostOtherPct !== undefined ? { hostOtherPct } : {}),
      samples: max === 0 ? [] : orderStatisticSubset(comparedSamples(t).samples.filter(Number.isFinite), max).map(round6),
    }),
  );
}

export function emptyHistory(): History {
  return { kind: HISTORY_KIND, version: HISTORY_VERSION, tests: [] };
}

/**
 * The history with the document's points added in time order, each test keeping its `maxPoints`
 * most recent (default 60, at most 500). A run already in it (same name, attempt and start time)
 * is not added twice. Pure: returns a new history.
 */
export function addRun(history: History, doc: ResultDocument, opts: PointOptions & { maxPoints?: number } = {}): History {
  const maxPoints = opts.maxPoints ?? HISTORY_DEFAULT_POINTS;
  if (!Number.isInteger(maxPoints) || maxPoints < 1 || maxPoints > HISTORY_MAX_POINTS) throw new RangeError(`maxPoints must be an integer in [1, ${HISTORY_MAX_POINTS}], got ${maxPoints}`);
  const points = pointsOf(doc, opts);
  const byId = new Map(history.tests.map((t) => [t.id, t]));
  for (const p of points) {
    const t = doc.tests.find((x) => x.id === p.id)!;
    const old = byId.get(p.id);
    const list = old ? [...old.points] : [];
    if (list.some((q) => q.run === p.run && q.attempt === p.attempt && q.time === p.time)) continue;
    // After every point at the same time or earlier: equal times keep the order they came in.
    const at = list.findLastIndex((q) => Date.parse(q.time) <= Date.parse(p.time)) + 1;
    list.splice(at, 0, p);
    const newest = at === list.length - 1;
    byId.set(p.id, {
      id: p.id,
      // The newest run names the test and says which way is better.
      name: newest || !old ? t.name.slice(0, 120) : old.name,
      better: newest || !old ? betterOf(t) : old.better,
      points: list.slice(-maxPoints),
    });
  }
  const tests = [...byId.values()].sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  // Valid by construction (each point was parsed by pointsOf; order and bounds are kept here), so
  // the whole history is not parsed again: for 1000 runs that took more than half the time.
  return { kind: HISTORY_KIND, version: HISTORY_VERSION, tests };
}

export interface ShiftOptions {
  /** At most this many runs before a split are compared (default 20; at least `minRuns`, at most 500). */
  window?: number;
  /** Runs needed on each side of a split, and the latest runs that must all show the shift (default 3). */
  minRuns?: number;
  /**
   * The chance of a false alarm in a history without a shift, over all its splits and all the
   * tests examined together (default 0.05).
   */
  alpha?: number;
  /**
   * How many tests are examined together (default 1, at most 1000): each is tested at α / tests
   * (Bonferroni over the tests). `trendsOf` sets it to the tests of the history that can show a
   * shift (`examinedTests`).
   */
  tests?: number;
  /** Smallest shift reported, in % of the before median (default 5). */
  minEffectPct?: number;
  /**
   * Consecutive looks that must show the shift (default 2, 1 … 10): the history as it is and as
   * it stood one run before (rule 7 at the top of this file).
   */
  looks?: number;
}

export interface Shift {
  /** Index, in the values given, of the first run of the new level. */
  index: number;
  direction: 'worse' | 'better';
  /** Hodges–Lehmann shift (after − before) and as % of the before median (null when that is 0). */
  shift: number;
  changePct: number | null;
  /** The U test's p-value at the split, and it times the splits and the tests examined (Bonferroni, at most 1). */
  p: number;
  pAdjusted: number;
  splits: number;
  /** The tests examined together (the option `tests`). */
  tests: number;
  /** The consecutive looks that showed it (the option `looks`). */
  looks: number;
  before: { runs: number; median: number };
  after: { runs: number; median: number };
}

function checkOptions(opts: ShiftOptions): Required<ShiftOptions> {
  const minRuns = opts.minRuns ?? DEFAULT_MIN_RUNS;
  const window = opts.window ?? DEFAULT_WINDOW;
  const alpha = opts.alpha ?? DEFAULT_ALPHA;
  const minEffectPct = opts.minEffectPct ?? DEFAULT_MIN_EFFECT_PCT;
  const looks = opts.looks ?? DEFAULT_LOOKS;
  const tests = opts.tests ?? 1;
  if (!Number.isInteger(minRuns) || minRuns < 2 || minRuns > MAX_MIN_RUNS) throw new RangeError(`minRuns must be an integer in [2, ${MAX_MIN_RUNS}], got ${minRuns}`);
  if (!Number.isInteger(window) || window < minRuns || window > HISTORY_MAX_POINTS) throw new RangeError(`window must be an integer in [${minRuns}, ${HISTORY_MAX_POINTS}], got ${window}`);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  if (!(minEffectPct >= 0 && minEffectPct <= 1000)) throw new RangeError(`minEffectPct must be in [0, 1000], got ${minEffectPct}`);
  if (!Number.isInteger(looks) || looks < 1 || looks > MAX_LOOKS) throw new RangeError(`looks must be an integer in [1, ${MAX_LOOKS}], got ${looks}`);
  if (!Number.isInteger(tests) || tests < 1 || tests > MAX_TESTS) throw new RangeError(`tests must be an integer in [1, ${MAX_TESTS}], got ${tests}`);
  return { minRuns, window, alpha, minEffectPct, looks, tests };
}

/**
 * The lasting shift of a series of run values (oldest first; null: the run has no comparable
 * value and is left out), or null. The rule is at the top of this file. At most 500 values.
 */
export function detectShift(values: readonly (number | null)[], better: 'lower' | 'higher', opts: ShiftOptions = {}): Shift | null {
  const o = checkOptions(opts);
  if (values.length > HISTORY_MAX_POINTS) throw new RangeError(`at most ${HISTORY_MAX_POINTS} runs, got ${values.length}`);
  const at: number[] = [];
  const v: number[] = [];
  values.forEach((x, i) => {
    if (x !== null && Number.isFinite(x)) {
      at.push(i);
      v.push(x);
    }
  });
  const found = shiftAtLook(v, better, o);
  if (!found) return null;
  // Confirmed: the same history as it stood at each of the previous `looks` − 1 runs (the latest
  // comparable runs left out, one more each time) shows a shift the same way.
  for (let back = 1; back < o.looks; back++) {
    const earlier = shiftAtLook(v.slice(0, v.length - back), better, o);
    if (!earlier || earlier.direction !== found.direction) return null;
  }
  return { ...found, index: at[found.index]!, looks: o.looks };
}

/** Rules 1 to 5 at one look, on the comparable values only: `index` is into `v`. */
function shiftAtLook(v: readonly number[], better: 'lower' | 'higher', o: Required<ShiftOptions>): Shift | null {
  const w = o.minRuns;
  const n = v.length;
  if (n < 2 * w) return null;
  const splits = n - 2 * w + 1;
  const level = o.alpha / (o.tests * splits);
  const tail = v.slice(n - w);
  const passed: { k: number; shift: Shift }[] = [];
  for (let k = w; k <= n - w; k++) {
    const before = v.slice(Math.max(0, k - o.window), k);
    const after = v.slice(k);
    const mid = median(before);
    const up = tail.every((x) => x > mid);
    const down = tail.every((x) => x < mid);
    // Cheap, and implied by the rule: a shift the latest runs do not all show is not lasting.
    if (!up && !down) continue;
    const c = compareSamples(after, before, better, { alpha: level, minSamples: w, minEffectPct: o.minEffectPct, maxSamples: HISTORY_MAX_POINTS });
    if ((c.verdict !== 'Regressed' && c.verdict !== 'Improved') || c.p === null || c.shift === null) continue;
    if ((up && c.shift <= 0) || (down && c.shift >= 0)) continue;
    passed.push({
      k,
      shift: {
        index: k,
        direction: c.verdict === 'Regressed' ? 'worse' : 'better',
        shift: c.shift,
        changePct: c.changePct,
        p: c.p,
        pAdjusted: Math.min(1, c.p * splits * o.tests),
        splits,
        tests: o.tests,
        looks: 1,
        before: { runs: before.length, median: mid },
        after: { runs: after.length, median: median(after) },
      },
    });
  }
  if (!passed.length) return null;
  // Where it starts: the passing split that best cuts the same runs (from the window of the
  // earliest one to the latest) into two levels, by the absolute deviations from each side's
  // median; the smaller p breaks a tie.
  const from = Math.max(0, passed[0]!.k - o.window);
  const cost = (k: number): number => {
    const a = v.slice(from, k);
    const b = v.slice(k);
    const ma = median(a);
    const mb = median(b);
    return a.reduce((s, x) => s + Math.abs(x - ma), 0) + b.reduce((s, x) => s + Math.abs(x - mb), 0);
  };
  let best = passed[0]!;
  let bestCost = cost(best.k);
  for (const c of passed.slice(1)) {
    const cc = cost(c.k);
    if (cc < bestCost || (cc === bestCost && c.shift.p < best.shift.p)) {
      best = c;
      bestCost = cc;
    }
  }
  return best.shift;
}

/**
 * How many runs a shift must have lasted before it can be reported in a history of `n` runs
 * with a comparable value: the fewest runs after a split whose smallest p (all of them beyond all
 * of the window before, by the same test `detectShift` runs: exact up to 60 values, the normal
 * approximation past) reaches α / m. Null when no split of `n` runs can reach it.
 * docs/trends.md tabulates it.
 */
export function runsNeeded(n: number, opts: ShiftOptions = {}): number | null {
  const o = checkOptions(opts);
  const w = o.minRuns;
  if (!Number.isInteger(n) || n < 2 * w) return null;
  // At a look over `runs` runs, `after` of them past the split: can the clearest step pass?
  const passes = (runs: number, after: number): boolean => {
    if (after < w || runs - after < w) return false;
    const before = Math.min(o.window, runs - after);
    const p = mannWhitney(Array.from({ length: after }, (_, i) => before + i), Array.from({ length: before }, (_, i) => i)).p;
    return p < o.alpha / (o.tests * (runs - 2 * w + 1));
  };
  for (let after = w; after <= n - w; after++) {
    let all = true;
    for (let back = 0; back < o.looks && all; back++) all = passes(n - back, after - back);
    if (all) return after;
  }
  return null;
}

/** A difference of the host's load smaller than this (% of its CPUs, medians) is not a change of the machine. */
export const HOST_CHANGE_MIN_PCT = 5;
/** The level of the U test on the host's load at a shift's split (one test per shift found). */
export const HOST_CHANGE_ALPHA = 0.05;

/** The host's load changed where the test's figures did (see "The machine changed" above). */
export interface MachineChange {
  /** Median share of the host's CPUs other processes used, in the runs before the split and since (%). */
  before: number;
  after: number;
  /** Two-sided U test of the two sets of runs' host load. */
  p: number;
  runs: { before: number; after: number };
  /**
   * Set when the load moved by less than HOST_CHANGE_MIN_PCT (or not significantly, or the other way) but the figure
   * follows it run by run and the load's part explains the shift ("The machine changed", second
   * case); absent when the move alone was large enough.
   */
  follows?: LoadFollowing;
}

/** How a test's values follow the host's load within sets of runs, and the shift without the load's part. */
export interface LoadFollowing {
  /** Spearman's ρ of the within-set ranks, pooled over the sets (−1 … 1), and its two-sided permutation p. */
  rho: number;
  p: number;
  /** The figure's change per % of the CPUs other processes took (Theil–Sen over pairs of runs of the same set). */
  slope: number;
  /** The shift compared again with each run's value less slope × (its load − the before median load). */
  adjusted: { changePct: number | null; p: number | null };
}

/** Permutations of the load within each set for the ρ's p (seeded: the same history gives the same p). */
export const FOLLOW_PERMUTATIONS = 2000;

type Run = { value: number; load: number };

/**
 * Spearman's ρ of the midranks taken inside each set of runs, centred per set and pooled (a step
 * between the sets adds nothing to it), with a two-sided permutation p (the loads shuffled within
 * each set, seeded). Null when no set varies in both value and load.
 */
export function rankCorrelationWithin(sets: readonly Run[][]): { rho: number; p: number } | null {
  const centre = (xs: number[]) => {
    const { ranks } = midrankOf(xs);
    const m = ranks.reduce((a, b) => a + b, 0) / ranks.length;
    return ranks.map((r) => r - m);
  };
  const parts = sets.filter((set) => set.length >= 2).map((set) => ({ x: centre(set.map((r) => r.value)), y: centre(set.map((r) => r.load)) }));
  const sxx = parts.reduce((s, p) => s + p.x.reduce((a, v) => a + v * v, 0), 0);
  const syy = parts.reduce((s, p) => s + p.y.reduce((a, v) => a + v * v, 0), 0);
  if (!(sxx > 0 && syy > 0)) return null;
  const norm = Math.sqrt(sxx * syy);
  const dot = (ys: readonly number[][]) => parts.reduce((s, p, j) => s + p.x.reduce((a, v, i) => a + v * ys[j]![i]!, 0), 0);
  const rho = dot(parts.map((p) => p.y)) / norm;
  const rand = mulberry32(0x5b1e);
  const shuffled = parts.map((p) => [...p.y]);
  let asFar = 0;
  for (let k = 0; k < FOLLOW_PERMUTATIONS; k++) {
    for (const ys of shuffled) shuffle(ys, rand);
    if (Math.abs(dot(shuffled) / norm) >= Math.abs(rho) - 1e-12) asFar++;
  }
  return { rho, p: (asFar + 1) / (FOLLOW_PERMUTATIONS + 1) };
}

/** The Theil–Sen slope of value on load over the pairs of runs within the same set (null: no pair with two loads). */
export function slopeWithin(sets: readonly Run[][]): number | null {
  const slopes: number[] = [];
  for (const set of sets) {
    for (let i = 0; i < set.length; i++) {
      for (let j = i + 1; j < set.length; j++) {
        const dl = set[j]!.load - set[i]!.load;
        if (dl !== 0) slopes.push((set[j]!.value - set[i]!.value) / dl);
      }
    }
  }
  return slopes.length ? median(slopes) : null;
}

/**
 * Whether the shift is the machine's (see "The machine changed" above), from the runs the shift
 * compared (the window before its first run, and that run to the latest) that kept their host
 * load, at least `minRuns` on each side. Null when it is the system's, or when too few runs kept
 * their load.
 */
export function machineChange(
  points: readonly HistoryPoint[],
  values: readonly (number | null)[],
  shift: Pick<Shift, 'index' | 'before' | 'shift' | 'splits' | 'direction'>,
  better: 'lower' | 'higher',
  opts: ShiftOptions = {},
): MachineChange | null {
  const o = checkOptions(opts);
  const comparableBefore = points.map((p, i) => ({ p, i })).filter(({ i }) => i < shift.index && values[i] !== null);
  const kept = (xs: { p: HistoryPoint; i: number }[]): Run[] => xs.filter(({ p }) => p.hostOtherPct !== undefined).map(({ p, i }) => ({ value: values[i]!, load: p.hostOtherPct! }));
  const before = kept(comparableBefore.slice(-shift.before.runs));
  const after = kept(points.map((p, i) => ({ p, i })).filter(({ i }) => i >= shift.index && values[i] !== null));
  if (before.length < o.minRuns || after.length < o.minRuns) return null;
  const b = before.map((r) => r.load);
  const a = after.map((r) => r.load);
  const mb = median(b);
  const ma = median(a);
  const p = mannWhitney(a, b).p;
  const change: MachineChange = { before: mb, after: ma, p, runs: { before: b.length, after: a.length } };
  // The load alone moved far enough, and the way that explains the shift.
  const explains = shift.direction === 'worse' ? ma > mb : ma < mb;
  if (p < HOST_CHANGE_ALPHA && Math.abs(ma - mb) >= HOST_CHANGE_MIN_PCT && explains) return change;
  // Or the figure follows the load run by run, and without the load's part the shift is gone.
  const rc = rankCorrelationWithin([before, after]);
  if (!rc || !(rc.p < HOST_CHANGE_ALPHA)) return null;
  const slope = slopeWithin([before, after]);
  if (slope === null || slope === 0) return null;
  const adjust = (r: Run) => r.value - slope * (r.load - mb);
  const c = compareSamples(after.map(adjust), before.map(adjust), better, { alpha: o.alpha / (o.tests * shift.splits), minSamples: o.minRuns, minEffectPct: o.minEffectPct, maxSamples: HISTORY_MAX_POINTS });
  const stands = (c.verdict === 'Regressed' && shift.direction === 'worse') || (c.verdict === 'Improved' && shift.direction === 'better');
  if (stands) return null;
  return { ...change, follows: { rho: rc.rho, p: rc.p, slope, adjusted: { changePct: c.changePct, p: c.p } } };
}

export interface Trend {
  id: string;
  name: string;
  better: 'lower' | 'higher';
  /** The latest run's point. */
  last: HistoryPoint;
  /** Points in the history, and those comparable with the latest (same unit and mode, with a value). */
  runs: number;
  comparable: number;
  /** Each point's value when comparable with the latest, else null (oldest first). */
  values: (number | null)[];
  /**
   * `machine`: the host's load changed at the same split (`machineChange`): the shift is reported
   * as the machine's, not the system's (not counted as a regression or an improvement).
   */
  shift: (Shift & { run: string; time: string; fingerprintChanged: boolean; machine: MachineChange | null }) | null;
}

/**
 * Each point's value when it is comparable with the latest point (a value, the same unit, the same
 * mode), else null; oldest first.
 */
export function comparableValues(h: TestHistory): (number | null)[] {
  const last = h.points[h.points.length - 1];
  if (!last) return [];
  return h.points.map((p) => (p.value !== null && p.unit === last.unit && (!p.mode || !last.mode || p.mode === last.mode) ? p.value : null));
}

/**
 * The tests of the history that can show a shift (at least 2 × minRuns comparable values): the
 * family each is corrected for (the option `tests`), at least 1. Whichever tests are shown, the
 * family is the whole history's, so `--test 5.1` finds what the whole history finds.
 */
export function examinedTests(history: History, opts: ShiftOptions = {}): number {
  const w = checkOptions(opts).minRuns;
  const n = history.tests.filter((t) => comparableValues(t).filter((x) => x !== null).length >= 2 * w).length;
  return Math.min(MAX_TESTS, Math.max(1, n));
}

/** The trend of one test's history: its comparable values and its lasting shift (`opts.tests`: the family, default 1). */
export function trendOf(h: TestHistory, opts: ShiftOptions = {}): Trend {
  if (!h.points.length) throw new TrendInputError(`test ${h.id}: the history has no point`);
  const last = h.points[h.points.length - 1]!;
  const values = comparableValues(h);
  const s = detectShift(values, h.better, opts);
  let shift: Trend['shift'] = null;
  if (s) {
    const first = h.points[s.index]!;
    const prev = h.points.slice(0, s.index).findLast((p, i) => values[i] !== null);
    const machine = machineChange(h.points, values, s, h.better, opts);
    shift = { ...s, run: first.run, time: first.time, fingerprintChanged: Boolean(prev && prev.fingerprint !== first.fingerprint), machine };
  }
  return { id: h.id, name: h.name, better: h.better, last, runs: h.points.length, comparable: values.filter((x) => x !== null).length, values, shift };
}

/** The trend of every test of the history, each corrected for the tests examined (`examinedTests`) unless `opts.tests` says otherwise. */
export function trendsOf(history: History, opts: ShiftOptions = {}): Trend[] {
  checkOptions(opts);
  const o = { ...opts, tests: opts.tests ?? examinedTests(history, opts) };
  return history.tests.filter((t) => t.points.length > 0).map((t) => trendOf(t, o));
}

export const SPARK_LEVELS = '▁▂▃▄▅▆▇█';
export const SPARK_DEFAULT_WIDTH = 30;
export const SPARK_MAX_WIDTH = 200;
/** A run without a comparable value. */
export const SPARK_GAP = '·';
/** Put before the first run of a shift. */
export const SPARK_MARK = '│';

/**
 * A sparkline of the values (oldest first): one of ▁▂▃▄▅▆▇█ per run, scaled from the smallest
 * to the largest value shown (all ▄ when they are equal), `·` for a null. At most `width`
 * characters (default 30, 4 … 200) in all: when there are more runs, the latest are shown after
 * `…`. `mark` (an index into `values`) puts `│` before that run when it is shown.
 */
export function sparkline(values: readonly (number | null)[], opts: { width?: number; mark?: number } = {}): string {
  const width = opts.width ?? SPARK_DEFAULT_WIDTH;
  if (!Number.isInteger(width) || width < 4 || width > SPARK_MAX_WIDTH) throw new RangeError(`width must be an integer in [4, ${SPARK_MAX_WIDTH}], got ${width}`);
  const marked = opts.mark !== undefined && opts.mark >= 0 && opts.mark < values.length;
  let room = width - (marked ? 1 : 0);
  let from = 0;
  if (values.length > room) {
    room -= 1; // the ellipsis
    from = values.length - room;
  }
  const shown = values.slice(from);
  const finite = shown.filter((x): x is number => x !== null && Number.isFinite(x));
  const lo = finite.length ? Math.min(...finite) : 0;
  const hi = finite.length ? Math.max(...finite) : 0;
  const top = SPARK_LEVELS.length - 1;
  const chars = shown.map((x) => {
    if (x === null || !Number.isFinite(x)) return SPARK_GAP;
    if (hi === lo) return SPARK_LEVELS[top >> 1]!;
    return SPARK_LEVELS[Math.round(((x - lo) / (hi - lo)) * top)]!;
  });
  if (marked && opts.mark! >= from) chars.splice(opts.mark! - from, 0, SPARK_MARK);
  return (from > 0 ? '…' : '') + chars.join('');
}

/** "shift from nightly-20 (+31.2 % worse, p=0.0012)", "p<0.0001": p is Bonferroni-adjusted over the splits and the tests. */
export function shiftText(s: NonNullable<Trend['shift']>): string {
  const size = s.changePct !== null ? pct(s.changePct) : `${s.shift > 0 ? '+' : ''}${num(s.shift)}`;
  const fp = s.fingerprintChanged ? '; the fingerprint changed at that run' : '';
  const text = `shift from ${s.run} (${size} ${s.direction}, ${pText(s.pAdjusted)}${fp})`;
  return s.machine ? `${text}: the machine changed, ${machineText(s.machine)}` : text;
}

/**
 * "other processes 4.5 % → 17.3 % of the CPUs (p=0.0021)", and for a smaller move that the figure
 * follows: "…; the figure follows them run by run (ρ 0.62, p=0.0010), and without their part the
 * shift is −3.1 %, p=0.41".
 */
export function machineText(m: MachineChange): string {
  const f = m.follows;
  const follows = f ? `; the figure follows them run by run (ρ ${f.rho.toFixed(2)}, ${pText(f.p)}), and without their part the shift is ${f.adjusted.changePct === null ? 'gone' : `${pct(f.adjusted.changePct)}${f.adjusted.p === null ? '' : `, ${pText(f.adjusted.p)}`}`}` : '';
  return `other processes ${m.before.toFixed(1)} % → ${m.after.toFixed(1)} % of the CPUs (${pText(m.p)})${follows}`;
}

/** "p=0.0021", "p<0.0001". */
function pText(p: number): string {
  const f = fmtP(p);
  return f.startsWith('<') ? `p${f}` : `p=${f}`;
}

/** One line per test: id, name, latest value and unit, sparkline, runs, and the shift if any. */
export function renderTrends(trends: readonly Trend[], opts: { width?: number } = {}): string {
  const rows = trends.map((t) => {
    const value = t.last.value === null ? `— ${t.last.unit}` : `${num(t.last.value)} ${t.last.unit}`;
    const spark = sparkline(t.values, { ...(opts.width ? { width: opts.width } : {}), ...(t.shift ? { mark: t.shift.index } : {}) });
    const runs = `${t.runs} run${t.runs === 1 ? '' : 's'}`;
    return { id: t.id, name: truncate(t.name, 26), value: truncate(value, 18), spark, runs, shift: t.shift ? shiftText(t.shift) : '' };
  });
  const wName = Math.max(4, ...rows.map((r) => r.name.length));
  const wValue = Math.max(5, ...rows.map((r) => r.value.length));
  const wSpark = Math.max(5, ...rows.map((r) => [...r.spark].length));
  const wRuns = Math.max(4, ...rows.map((r) => r.runs.length));
  return rows
    .map((r) => {
      const pad = wSpark - [...r.spark].length;
      const line = `${r.id.padEnd(4)} ${r.name.padEnd(wName)}  ${r.value.padStart(wValue)}  ${r.spark}${' '.repeat(pad)}  ${r.runs.padStart(wRuns)}`;
      return (r.shift ? `${line}  ${r.shift}` : line.trimEnd()) + '\n';
    })
    .join('');
}
