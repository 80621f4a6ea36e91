/**
 * Baseline comparison (the suite's "Phase 8 vs Phase 9"): this run against an earlier result
 * document, test by test, on the raw samples both documents carry (`rawSamples`).
 *
 * For each test present in both runs:
 * - the medians of both sample sets;
 * - the Hodges–Lehmann estimate of the shift (current − baseline) with its 95 % distribution-free
 *   confidence interval, and the shift relative to the baseline median;
 * - a two-sided Mann-Whitney U test (exact for small samples, normal approximation with tie
 *   correction for larger ones; see `ranktest.ts`);
 * - a verdict:
 *   - InsufficientSamples: a run has fewer than `minSamples` (default 5) samples, the test was
 *     skipped or absent in one run, or the sample sizes cannot reach significance at α at all;
 *   - Regressed / Improved: p < α, and the shift is at least `minEffectPct` (default 5 %) of the
 *     baseline median, in the worse / better direction. "Better" comes from the test's target:
 *     `<` and `<=` mean lower is better, `>` and `>=` higher;
 *   - NoChange otherwise (a significant shift smaller than the threshold says so in `note`).
 *
 * Why a minimum effect: with hundreds of samples, the test finds shifts of a fraction of a percent
 * that are machine noise, not a change of the system (criterion.rs's "noise threshold" serves the
 * same purpose). Why 5 samples: with 3 per run no two-sided test can reach p < 0.05 (the smallest
 * exact p is 2 / C(6, 3) = 0.1); 4 per run reach it only in the one most extreme order; 5 per run
 * give an interval that is more than the range of the differences.
 *
 * Bounded: at most `maxSamples` (default MAX_COMPARED_SAMPLES, 5 000) samples of EACH run enter
 * the comparison, medians included (`orderStatisticSubset`); the rank statistics themselves run in
 * O(n) memory (ranktest.ts), so a baseline of any size is compared in bounded memory and time.
 * The counts stay visible: `baseline.n` / `current.n` are the runs' own counts, and the note says
 * how many of them were compared.
 *
 * Refused unless forced: two runs whose fingerprints (fingerprint.ts) differ in something their
 * figures depend on (the machine, the kernel series, the inference backend, the workload's sizes...)
 * are not compared; `compareRuns` throws ComparisonRefusedError naming every difference. With
 * `force` they are, and the comparison's warnings name the differences first.
 *
 * A pooled baseline (`opts.pool`: spec.baseline.pool, a schedule's `pooled` policy, `--baseline`
 * given more than once): the compared samples of several earlier runs joined, test by test (each
 * run's samples are first put in their compared form, `comparedSamples`, so a per-run transform
 * such as 1.5's stays per run). One unusual baseline run then decides less. What it does not do:
 * the U test still takes every sample as independent, so a difference between whole runs (the
 * machine's state that night) is not modelled apart from the spread it adds to the pool. Runs of
 * the pool measured unlike this one are left out, each named in the warnings (with `force`, kept
 * and warned); only when none is left is the comparison refused.
 *
 * Every compared metric is a test's own figure, judged against a target, so every one is gated:
 * with `failOnRegression` (spec.baseline.failOnRegression, `--fail-on-regression`) a Regressed
 * test fails the run's verdict even when its value still meets its target.
 */
import { MAX_BASELINE_POOL, type Comparison, type ComparisonVerdict, type MetricComparison, type ResultDocument, type TestResult } from '../api/schema.ts';
import { median } from '../stats.ts';
import { mannWhitney, shiftEstimate, smallestAttainableP } from './ranktest.ts';
import { cpuSetText } from './cpuset.ts';
import { BUSY_HOST_PCT, hostLoadText } from './hostload.ts';
import { agentsText } from './format.ts';
import { ComparisonRefusedError, differenceText, fingerprintDiff, fingerprintFor, forcedWarnings } from './fingerprint.ts';

export const DEFAULT_ALPHA = 0.05;
export const DEFAULT_CONFIDENCE = 0.95;
export const DEFAULT_MIN_SAMPLES = 5;
export const DEFAULT_MIN_EFFECT_PCT = 5;
/**
 * The most samples of one run that enter a comparison. Result documents store at most 500 per
 * test (`capSamples` in stats.ts), so documents SwarmBench wrote are never cut; a baseline made
 * elsewhere with more is. 5 000 order statistics keep every quantile of the full sample to within
 * 1/5 000 of its level, and a compare of two runs of 5 000 takes milliseconds.
 */
export const MAX_COMPARED_SAMPLES = 5000;

export interface CompareOptions {
  alpha?: number;
  confidence?: number;
  minSamples?: number;
  minEffectPct?: number;
  /** The most samples of each run compared (default MAX_COMPARED_SAMPLES); an integer >= 1. */
  maxSamples?: number;
  failOnRegression?: boolean;
  /** Where the baseline came from (shown in reports). */
  source?: string;
  /** Compare even when the runs were not measured alike (fingerprint.ts); the warnings name the differences. */
  force?: boolean;
  /** More baseline documents whose samples join the baseline's (a pooled baseline), at most MAX_POOLED_RUNS − 1. */
  pool?: readonly ResultDocument[];
}

/** The most runs in a pooled baseline (the baseline and its pool together). */
export const MAX_POOLED_RUNS = MAX_BASELINE_POOL;

export interface SampleComparison {
  verdict: ComparisonVerdict;
  baselineMedian: number | null;
  currentMedian: number | null;
  shift: number | null;
  ci: [number, number] | null;
  changePct: number | null;
  u: number | null;
  p: number | null;
  test: 'exact' | 'normal' | null;
  /** How many finite samples of each run were compared (at most `maxSamples` each). */
  compared: { baseline: number; current: number };
  note?: string;
}

/**
 * At most `max` values of `values`, deterministically: when there are more, the evenly spaced
 * order statistics of the sorted values, s[floor((i + ½) · n / max)] for i = 0..max − 1 (the
 * midpoints of `max` equal slices of the sorted sample); otherwise the values themselves, in
 * their order.
 *
 * Why order statistics and not a seeded random subsample: they need no seed, do not depend on the
 * order the samples were stored in (a time-ordered stride would follow a drift), and their
 * empirical distribution is within 1/max of the full sample's at every point, where a random
 * subsample's is off by about 1/√max. The subset is more regular than `max` independent draws,
 * which makes the rank test conservative (its variance assumes `max` draws), never eager.
 */
export function orderStatisticSubset(values: readonly number[], max: number): number[] {
  if (!Number.isInteger(max) || max < 1) throw new Error(`maxSamples must be an integer >= 1, got ${max}`);
  const n = values.length;
  if (n <= max) return [...values];
  const sorted = Float64Array.from(values).sort();
  const out = new Array<number>(max);
  for (let i = 0; i < max; i++) out[i] = sorted[Math.floor(((i + 0.5) * n) / max)]!;
  return out;
}

/** Compares two sample sets of one metric. `better` says which direction is an improvement. */
export function compareSamples(
  current: readonly number[],
  baseline: readonly number[],
  better: 'lower' | 'higher',
  opts: CompareOptions = {},
): SampleComparison {
  const alpha = opts.alpha ?? DEFAULT_ALPHA;
  const confidence = opts.confidence ?? DEFAULT_CONFIDENCE;
  const minSamples = opts.minSamples ?? DEFAULT_MIN_SAMPLES;
  const minEffectPct = opts.minEffectPct ?? DEFAULT_MIN_EFFECT_PCT;
  const maxSamples = opts.maxSamples ?? MAX_COMPARED_SAMPLES;
  const curAll = current.filter(Number.isFinite);
  const baseAll = baseline.filter(Number.isFinite);
  const cur = orderStatisticSubset(curAll, maxSamples);
  const base = orderStatisticSubset(baseAll, maxSamples);
  const capped = [
    ...(base.length < baseAll.length ? [`baseline: ${base.length} of ${baseAll.length} samples compared`] : []),
    ...(cur.length < curAll.length ? [`this run: ${cur.length} of ${curAll.length} samples compared`] : []),
  ];
  const c = compareFinite(cur, base, better, alpha, confidence, minSamples, minEffectPct);
  if (!capped.length) return c;
  // Appended, so that notes other code reads by their start ("needs at least") keep it.
  const text = `${capped.join(', ')} (evenly spaced order statistics)`;
  return { ...c, note: c.note ? `${c.note}; ${text}` : text };
}

function compareFinite(
  cur: number[],
  base: number[],
  better: 'lower' | 'higher',
  alpha: number,
  confidence: number,
  minSamples: number,
  minEffectPct: number,
): SampleComparison {
  const none: SampleComparison = {
    verdict: 'InsufficientSamples',
    baselineMedian: base.length ? median(base) : null,
    currentMedian: cur.length ? median(cur) : null,
    shift: null,
    ci: null,
    changePct: null,
    u: null,
    p: null,
    test: null,
    compared: { baseline: base.length, current: cur.length },
  };
  if (cur.length < minSamples || base.length < minSamples) {
    return { ...none, note: `needs at least ${minSamples} samples in each run (baseline ${base.length}, this run ${cur.length})` };
  }
  if (smallestAttainableP(cur.length, base.length) > alpha) {
    return { ...none, note: `${base.length} and ${cur.length} samples cannot reach p < ${alpha} in any order` };
  }
  const mw = mannWhitney(cur, base);
  const hl = shiftEstimate(cur, base, confidence);
  const baseMedian = median(base);
  const changePct = baseMedian !== 0 ? (hl.estimate / Math.abs(baseMedian)) * 100 : null;
  const out: SampleComparison = {
    verdict: 'NoChange',
    baselineMedian: baseMedian,
    currentMedian: median(cur),
    shift: hl.estimate,
    ci: hl.ci,
    changePct,
    u: mw.u,
    p: mw.p,
    test: mw.method,
    compared: { baseline: base.length, current: cur.length },
  };
  if (mw.p >= alpha) return out;
  if (hl.estimate === 0) return { ...out, note: `p = ${fmtP(mw.p)} but the estimated shift is 0` };
  const bigEnough = changePct === null || Math.abs(changePct) >= minEffectPct;
  if (!bigEnough) {
    return { ...out, note: `significant (p = ${fmtP(mw.p)}) but the shift is ${Math.abs(changePct!).toFixed(1)} % of the baseline median, under the ${minEffectPct} % threshold` };
  }
  const worse = better === 'lower' ? hl.estimate > 0 : hl.estimate < 0;
  return { ...out, verdict: worse ? 'Regressed' : 'Improved' };
}

/**
 * Tests whose raw samples are not values of the judged statistic, and how they are compared:
 * - 1.5 stores the tasks each agent ran; its value is their mean absolute relative deviation, so
 *   the compared samples are each agent's |count − mean| / mean (their mean is the value);
 * - 2.5 stores the throughput of each window (samples/s), its value is last / first window.
 */
export const SAMPLE_VIEWS: Record<string, { unit?: string; transform?: (raw: readonly number[]) => number[] }> = {
  '1.5': {
    transform: (raw) => {
      const mean = raw.reduce((a, b) => a + b, 0) / raw.length;
      return mean > 0 ? raw.map((c) => Math.abs(c - mean) / mean) : [];
    },
  },
  '2.5': { unit: 'samples/s' },
};

/** The samples of a test as they are compared, and their unit. */
export function comparedSamples(t: TestResult): { samples: number[]; unit: string } {
  const view = SAMPLE_VIEWS[t.id];
  const raw = t.rawSamples ?? [];
  return { samples: view?.transform && raw.length ? view.transform(raw) : [...raw], unit: view?.unit ?? t.unit };
}

export function betterOf(t: Pick<TestResult, 'target'>): 'lower' | 'higher' {
  return t.target.op === '<' || t.target.op === '<=' ? 'lower' : 'higher';
}

/**
 * Compares every test of `current` with the same test of `baseline` (and of `opts.pool`: their
 * samples are pooled). Throws ComparisonRefusedError when the fingerprints differ in something
 * that matters and `opts.force` is not set: with a pool, when no run of it was measured alike.
 */
export function compareRuns(current: ResultDocument, baseline: ResultDocument, opts: CompareOptions = {}): Comparison {
  const method = {
    alpha: opts.alpha ?? DEFAULT_ALPHA,
    confidence: opts.confidence ?? DEFAULT_CONFIDENCE,
    minSamples: opts.minSamples ?? DEFAULT_MIN_SAMPLES,
    minEffectPct: opts.minEffectPct ?? DEFAULT_MIN_EFFECT_PCT,
    failOnRegression: opts.failOnRegression ?? false,
  };
  if (!(method.alpha > 0 && method.alpha < 1)) throw new Error(`alpha must be in (0, 1), got ${method.alpha}`);
  const maxSamples = opts.maxSamples ?? MAX_COMPARED_SAMPLES;
  if (!Number.isInteger(maxSamples) || maxSamples < 1) throw new Error(`maxSamples must be an integer >= 1, got ${maxSamples}`);
  const given = [baseline, ...(opts.pool ?? [])];
  if (given.length > MAX_POOLED_RUNS) throw new Error(`a pooled baseline has at most ${MAX_POOLED_RUNS} runs, got ${given.length}`);
  const here = fingerprintFor(current);
  const diffs = given.map((d) => fingerprintDiff(here, fingerprintFor(d)));
  const kept = opts.force ? given : given.filter((_, i) => diffs[i]!.length === 0);
  if (kept.length === 0) throw new ComparisonRefusedError(diffs[0]!);
  const leftOut = given.flatMap((d, i) => (kept.includes(d) ? [] : [`baseline run ${runLabel(d)} left out of the pool, not measured like this run: ${diffs[i]!.map(differenceText).join('; ')}`]));
  const forced = opts.force ? [...new Set(diffs.flatMap((ds) => forcedWarnings(ds)))] : [];
  const byId = kept.map((d) => new Map(d.tests.map((t) => [t.id, t])));
  const metrics: MetricComparison[] = current.tests.map((t) => {
    const better = betterOf(t);
    const cur = comparedSamples(t);
    const head = { id: t.id, name: t.name, category: t.category, unit: cur.unit, better, gated: true };
    const found = byId.flatMap((m) => m.get(t.id) ?? []);
    const usable = found.filter((b) => b.result !== 'Skipped' && b.unit === t.unit);
    const base = usable.flatMap((b) => comparedSamples(b).samples);
    const side = (v: readonly number[]) => ({ n: v.length, median: v.length ? median(v) : null });
    const insufficient = (note: string): MetricComparison => ({
      ...head,
      baseline: side(base),
      current: side(cur.samples),
      shift: null,
      ci: null,
      changePct: null,
      u: null,
      p: null,
      test: null,
      verdict: 'InsufficientSamples',
      note,
    });
    if (found.length === 0) return insufficient('not in the baseline');
    if (t.result === 'Skipped') return insufficient('skipped in this run');
    if (usable.length === 0) {
      const b = found.find((x) => x.result !== 'Skipped');
      return insufficient(b ? `units differ (baseline ${b.unit}, this run ${t.unit})` : 'skipped in the baseline');
    }
    const c = compareSamples(cur.samples, base, better, { ...method, maxSamples });
    const pooled = kept.length > 1 ? `baseline: ${usable.length} runs pooled` : undefined;
    const note = [pooled, c.note].filter(Boolean).join('; ');
    return {
      ...head,
      baseline: { n: base.length, median: c.baselineMedian },
      current: { n: cur.samples.length, median: c.currentMedian },
      shift: c.shift,
      ci: c.ci,
      changePct: c.changePct,
      u: c.u,
      p: c.p,
      test: c.test,
      verdict: c.verdict,
      ...(note ? { note } : {}),
    };
  });
  const ids = (v: ComparisonVerdict) => metrics.filter((m) => m.verdict === v).map((m) => m.id);
  const first = kept[0]!;
  return {
    baseline: {
      name: first.run.name,
      attempt: first.run.attempt,
      mode: first.run.mode,
      startedAt: first.run.startedAt,
      finishedAt: first.run.finishedAt,
      ...(opts.source ? { source: opts.source } : {}),
      ...(kept.length > 1 ? { pool: kept.slice(1).map((d) => ({ name: d.run.name, attempt: d.run.attempt, startedAt: d.run.startedAt })) } : {}),
    },
    method,
    metrics,
    regressed: ids('Regressed'),
    improved: ids('Improved'),
    unchanged: ids('NoChange'),
    insufficient: ids('InsufficientSamples'),
    warnings: [...forced, ...leftOut, ...new Set(kept.flatMap((d) => conditionWarnings(current, d)))],
  };
}

const runLabel = (d: ResultDocument): string => `${d.run.name} (attempt ${d.run.attempt}, ${d.run.startedAt})`;

/** What differs between the two runs' conditions (the figures are then less comparable). */
export function conditionWarnings(current: ResultDocument, baseline: ResultDocument): string[] {
  const w: string[] = [];
  const a = baseline.environment;
  const b = current.environment;
  if (baseline.run.mode !== current.run.mode) w.push(`mode differs: baseline ${baseline.run.mode}, this run ${current.run.mode} (sizes and durations differ)`);
  if (a.platform !== b.platform) w.push(`platform differs: baseline ${a.platform}, this run ${b.platform}`);
  if (a.cpus !== b.cpus || a.cpuModel !== b.cpuModel) w.push(`machine differs: baseline ${a.cpus} × ${a.cpuModel}, this run ${b.cpus} × ${b.cpuModel}`);
  if (a.agentImage !== b.agentImage) w.push(`agent image differs: baseline ${a.agentImage}, this run ${b.agentImage}`);
  if (a.agents && b.agents && agentsText(a.agents) !== agentsText(b.agents)) w.push(`agents differ: baseline ${agentsText(a.agents)}, this run ${agentsText(b.agents)}`);
  if (a.cpuSet && b.cpuSet && (a.cpuSet.effectiveCpus !== b.cpuSet.effectiveCpus || a.cpuSet.affinity !== b.cpuSet.affinity)) {
    w.push(`CPU set differs: baseline ${cpuSetText(a.cpuSet)}, this run ${cpuSetText(b.cpuSet)}`);
  }
  for (const [which, h] of [['baseline', a.hostLoad], ['this run', b.hostLoad]] as const) {
    if (h && h.otherPct >= BUSY_HOST_PCT) w.push(`host busy with other work in ${which}: ${hostLoadText(h)}`);
  }
  if ((a.inference?.backend ?? null) !== (b.inference?.backend ?? null) && a.inference && b.inference) {
    w.push(`inference backend differs: baseline ${a.inference.backend}, this run ${b.inference.backend}`);
  }
  if (a.prometheus && b.prometheus && a.prometheus.mode !== b.prometheus.mode) {
    w.push(`monitoring source differs: baseline ${a.prometheus.mode}, this run ${b.prometheus.mode}`);
  }
  const changed = Object.keys(current.targets).filter((k) => baseline.targets[k] !== undefined && baseline.targets[k] !== current.targets[k]);
  if (changed.length) w.push(`targets differ: ${changed.join(', ')}`);
  return w;
}

export function fmtP(p: number): string {
  if (p < 0.0001) return '<0.0001';
  return p < 0.001 ? p.toFixed(4) : p.toFixed(3);
}
