/**
 * Verdicts: a measurement against its target becomes a TestResult; the results become a summary.
 *
 * Rules (docs/report.md "Verdict"):
 * - a test with no measurement is Failed with a reason, never Passed;
 * - a measurement with `skip` is Skipped, and skipped tests do not count towards the success rate;
 * - a measurement with `fail` is Failed whatever its value; a null value is Failed;
 * - a failed or skipped test's reason ends with its sample count ("n=8 agents");
 * - a p95 or p99 with fewer samples than it needs (20, 100) is judged as the maximum, and the
 *   result's statistic says `max`;
 * - success rate = passed / (total - skipped); the verdict fails below the success-rate target,
 *   and also when every test was skipped (nothing was shown to work);
 * - with a baseline comparison, `summary.regressions` counts the Regressed metrics; when the
 *   regression gate is on (spec.baseline.failOnRegression) any regression fails the verdict.
 */
import type { Comparison, ResultDocument, Summary, TestResult } from '../api/schema.ts';
import { CATALOGUE, meets, targetOf, type TestDef } from '../plan/catalogue.ts';
import { capSamples, describe } from '../stats.ts';
import { num } from './format.ts';
import type { Measurement } from '../api/schema.ts';
import type { Params } from '../plan/params.ts';

export function judgeOne(def: TestDef, m: Measurement | undefined, params: Params, fallbackReason?: string): TestResult {
  const target = { op: def.op, value: targetOf(def, params.targets) };
  const base = {
    id: def.id,
    name: def.name,
    category: def.category,
    unit: def.unit,
    statistic: def.statistic,
    target,
  };
  if (!m) {
    return {
      ...base,
      result: 'Failed',
      reason: fallbackReason ?? 'the step produced no result for this test',
      value: null,
      samples: 0,
      durationMs: 0,
    };
  }
  const distribution = m.distribution ?? (m.raw && m.raw.length > 0 ? describe(m.raw) : undefined);
  // A percentile is only reported with enough samples for it; with fewer it is the maximum.
  let statistic = m.statistic ?? def.statistic;
  let value = m.value;
  let percentileNote = '';
  const need = samplesNeededFor(statistic);
  if (need > 0 && m.samples < need && distribution && value !== null) {
    percentileNote = `; ${statistic} needs ${need} samples, so the max is judged`;
    statistic = 'max';
    value = distribution.max;
  }
  const n = sampleNote(m.samples, m.sampleUnit) + percentileNote;
  const common = {
    ...base,
    statistic,
    value,
    samples: m.samples,
    ...(m.sampleUnit ? { sampleUnit: m.sampleUnit } : {}),
    ...(distribution ? { distribution } : {}),
    ...(m.raw && m.raw.length > 0 ? { rawSamples: capSamples(m.raw) } : {}),
    ...(m.details ? { details: m.details } : {}),
    durationMs: m.durationMs ?? 0,
  };
  if (m.skip) return { ...common, result: 'Skipped', reason: m.samples > 0 ? `${m.skip} (${n})` : m.skip };
  if (m.fail) return { ...common, result: 'Failed', reason: m.samples > 0 ? `${m.fail} (${n})` : m.fail };
  if (value === null || !Number.isFinite(value)) {
    return { ...common, value: null, result: 'Failed', reason: 'no value was measured' };
  }
  if (meets(value, def.op, target.value)) return { ...common, result: 'Passed' };
  return {
    ...common,
    result: 'Failed',
    reason: `${statistic} ${fmt(value)} ${def.unit} does not meet the target ${def.op}${target.value} ${def.unit} (${n})`,
  };
}

/**
 * Samples a percentile needs before it means anything: p95 is the 20th-largest-in-20 only with
 * at least 20 samples (1 / (1 - 0.95)), p99 with 100; other statistics need none.
 */
export function samplesNeededFor(statistic: string): number {
  const m = /^p(\d+)$/.exec(statistic);
  if (!m) return 0;
  const p = Number(m[1]);
  return p > 50 && p < 100 ? Math.ceil(100 / (100 - p) - 1e-9) : 0;
}

/** "n=10 trials" (the unit plural, "samples" when the bench did not say). */
export function sampleNote(samples: number, unit: string | undefined): string {
  return `n=${samples} ${unit ?? 'samples'}`;
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

/**
 * Judges every catalogue test of the selected categories. Tests of categories not selected are
 * left out; measurements with ids not in the catalogue are ignored (and reported by the caller).
 */
export function judgeAll(
  measurements: readonly Measurement[],
  params: Params,
  categoryFailures: Partial<Record<string, string>> = {},
): TestResult[] {
  const byId = new Map<string, Measurement>();
  for (const m of measurements) {
    if (byId.has(m.id)) throw new Error(`test ${m.id} was measured twice`);
    byId.set(m.id, m);
  }
  // A category none of whose tests has a measurement produced no result at all: say so.
  const measured = new Set(CATALOGUE.filter((d) => byId.has(d.id)).map((d) => d.category));
  return CATALOGUE.filter((d) => params.categories.includes(d.category)).map((d) =>
    judgeOne(
      d,
      byId.get(d.id),
      params,
      categoryFailures[d.category] ?? (measured.has(d.category) ? undefined : `the ${d.category} step produced no result`),
    ),
  );
}

export function summarize(tests: readonly TestResult[], successRateTarget: number): Summary {
  const passed = tests.filter((t) => t.result === 'Passed').length;
  const failed = tests.filter((t) => t.result === 'Failed').length;
  const skipped = tests.filter((t) => t.result === 'Skipped').length;
  const counted = tests.length - skipped;
  const successRate = counted > 0 ? Math.round((passed / counted) * 1000) / 10 : null;
  const verdict = successRate !== null && successRate >= successRateTarget ? 'Passed' : 'Failed';
  return { total: tests.length, passed, failed, skipped, successRate, verdict };
}

/**
 * The summary with a baseline comparison applied: the regressions are counted and, when the
 * comparison's gate is on, a regression of a gated metric fails the verdict.
 */
export function withComparison(summary: Summary, comparison: Comparison | undefined): Summary {
  const { regressions: _r, regressionGate: _g, ...base } = summary;
  if (!comparison) return base;
  const regressed = comparison.metrics.filter((m) => m.verdict === 'Regressed');
  const gate = comparison.method.failOnRegression;
  const gatedFail = gate && regressed.some((m) => m.gated);
  return {
    ...base,
    verdict: gatedFail ? 'Failed' : base.verdict,
    regressions: regressed.length,
    regressionGate: gate,
  };
}

/** Recomputes a document's summary from its tests, targets and comparison. */
export function summarizeDocument(doc: Pick<ResultDocument, 'tests' | 'targets' | 'comparison'>): Summary {
  const target = doc.targets.successRate ?? 90;
  return withComparison(summarize(doc.tests, target), doc.comparison);
}

/** Why the verdict failed, one line per cause: the success rate, each failed test, each gated regression. */
export function verdictReasons(doc: Pick<ResultDocument, 'tests' | 'targets' | 'summary' | 'comparison'>): string[] {
  const out: string[] = [];
  const s = doc.summary;
  const target = doc.targets.successRate ?? 90;
  if (s.successRate === null) out.push('every test was skipped: nothing was shown to work');
  else if (s.successRate < target) out.push(`success rate ${s.successRate.toFixed(1)} % is under the target ${target} %`);
  for (const t of doc.tests) if (t.result === 'Failed') out.push(failedTestLine(t));
  if (s.regressionGate && doc.comparison) {
    for (const m of doc.comparison.metrics) {
      if (m.verdict === 'Regressed' && m.gated) out.push(`${m.id} ${m.name}: regressed against the baseline ${doc.comparison.baseline.name}`);
    }
  }
  return out;
}

/** "5.1 End-to-end workflow: p50 6012 ms, target <5000 ms (reason)" for a failed test. */
export function failedTestLine(t: TestResult): string {
  const value = t.value === null ? 'no value' : `${t.statistic} ${num(t.value)} ${t.unit}`;
  const target = `target ${t.target.op}${t.target.value} ${t.unit}`;
  const why = t.reason && !/does not meet the target/.test(t.reason) ? ` — ${t.reason}` : '';
  return `${t.id} ${t.name}: ${value}, ${target}${why}`;
}
