/**
 * Verdicts: a measurement against its target becomes a TestResult; the results become a summary.
 *
 * Rules (DESIGN.md "Results flow"):
 * - a test with no measurement is Failed with a reason, never Passed;
 * - a measurement with `skip` is Skipped, and skipped tests do not count towards the success rate;
 * - a measurement with `fail` is Failed whatever its value; a null value is Failed;
 * - success rate = passed / (total - skipped); the verdict fails below the success-rate target,
 *   and also when every test was skipped (nothing was shown to work).
 */
import type { Summary, TestResult } from '../api/schema.ts';
import { CATALOGUE, meets, targetOf, type TestDef } from '../bench/catalogue.ts';
import { capSamples, describe } from '../bench/stats.ts';
import type { Measurement } from '../bench/types.ts';
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
  const common = {
    ...base,
    value: m.value,
    samples: m.samples,
    ...(distribution ? { distribution } : {}),
    ...(m.raw && m.raw.length > 0 ? { rawSamples: capSamples(m.raw) } : {}),
    ...(m.details ? { details: m.details } : {}),
    durationMs: m.durationMs ?? 0,
  };
  if (m.skip) return { ...common, result: 'Skipped', reason: m.skip };
  if (m.fail) return { ...common, result: 'Failed', reason: m.fail };
  if (m.value === null || !Number.isFinite(m.value)) {
    return { ...common, value: null, result: 'Failed', reason: 'no value was measured' };
  }
  if (meets(m.value, def.op, target.value)) return { ...common, result: 'Passed' };
  return {
    ...common,
    result: 'Failed',
    reason: `${def.statistic} ${fmt(m.value)} ${def.unit} does not meet the target ${def.op}${target.value} ${def.unit}`,
  };
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
  return CATALOGUE.filter((d) => params.categories.includes(d.category)).map((d) =>
    judgeOne(d, byId.get(d.id), params, categoryFailures[d.category]),
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
