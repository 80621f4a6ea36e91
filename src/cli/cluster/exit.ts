/**
 * The exit codes of the commands that talk to a cluster (`submit`, `report RUN`, `rerun --wait`),
 * and the one decision that maps how a run ended to a code. Pure: unit-tested without a cluster
 * (test/unit/cli-exit.test.ts); docs/cli.md documents the table.
 *
 * | code | meaning                                                                          |
 * |------|----------------------------------------------------------------------------------|
 * | 0    | the verdict passed                                                                |
 * | 1    | the verdict failed: a target was missed or an invariant broken                    |
 * | 2    | invalid input: a manifest field, an option, a run that does not exist             |
 * | 3    | the run could not be carried out: no cluster, no CRD, no permission, a step that  |
 * |      | produced no result, a pod that cannot start, a cancelled run, a timeout           |
 * | 4    | a regression against the baseline failed the gate (the targets alone would pass)  |
 *
 * Precedence when several apply: 2 (the spec was refused), then 3 (a result that is incomplete
 * cannot say whether the system passed), then 0 (the verdict passed), then 1 (targets missed:
 * the verdict fails whatever the baseline says), then 4 (only the regression gate failed it).
 */
import type { BenchmarkRunStatus, ResultDocument } from '../../api/schema.ts';

export const EXIT = {
  passed: 0,
  failed: 1,
  invalid: 2,
  infrastructure: 3,
  regression: 4,
  /** Ctrl-C while waiting: the run goes on in the cluster. */
  interrupted: 130,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failed test and why, as the outcome carries it. */
export interface FailedTest {
  id: string;
  name?: string;
  reason?: string;
}

/** How a run ended, from its result document or (when that cannot be read) from its status. */
export interface Outcome {
  run: string;
  phase?: string;
  /** The operator refused the spec (Ready reason SpecInvalid): its message. */
  specInvalid?: string;
  /** Waiting stopped before the run finished (--timeout): what was seen last. */
  timedOut?: string;
  /** The CLI saw a pod of the run that cannot start (image, scheduling) for longer than allowed. */
  stuck?: string;
  /** The run was deleted while waiting. */
  deleted?: boolean;
  verdict?: 'Passed' | 'Failed';
  successRate?: number | null;
  successRateTarget?: number;
  /** Failed tests that have no measurement at all: their step produced no result. */
  noResult: FailedTest[];
  /** Failed tests that were measured: a target missed or an invariant broken. */
  failed: FailedTest[];
  regressed: string[];
  regressionGate: boolean;
}

export interface Decision {
  code: ExitCode;
  /** One line: why this code. */
  reason: string;
}

const list = (ids: readonly string[], max = 8): string => (ids.length > max ? `${ids.slice(0, max).join(', ')} and ${ids.length - max} more` : ids.join(', '));

/** The reasons of tests without a result, one per distinct reason (a category's tests share one). */
export function noResultReasons(tests: readonly FailedTest[]): string[] {
  const byReason = new Map<string, string[]>();
  for (const t of tests) {
    const r = t.reason ?? 'no result';
    byReason.set(r, [...(byReason.get(r) ?? []), t.id]);
  }
  return [...byReason].map(([r, ids]) => `${list(ids)}: ${r}`);
}

export function decideExit(o: Outcome): Decision {
  if (o.specInvalid !== undefined) return { code: EXIT.invalid, reason: `the operator refused the spec of ${o.run}: ${o.specInvalid}` };
  if (o.deleted) return { code: EXIT.infrastructure, reason: `run ${o.run} was deleted before it finished` };
  if (o.stuck !== undefined) return { code: EXIT.infrastructure, reason: `run ${o.run} cannot be carried out: ${o.stuck}` };
  if (o.timedOut !== undefined) return { code: EXIT.infrastructure, reason: `run ${o.run} did not finish in time: ${o.timedOut}` };
  if (o.phase === 'Cancelled') return { code: EXIT.infrastructure, reason: `run ${o.run} was cancelled (spec.suspend) before it finished` };
  if (o.verdict === 'Passed') {
    return { code: EXIT.passed, reason: `run ${o.run} passed${o.successRate !== undefined && o.successRate !== null ? ` (success rate ${o.successRate}%)` : ''}` };
  }
  if (o.verdict === undefined) return { code: EXIT.infrastructure, reason: `run ${o.run} has no verdict (phase ${o.phase ?? 'unknown'})` };
  if (o.noResult.length > 0) {
    return { code: EXIT.infrastructure, reason: `run ${o.run} could not be carried out: ${noResultReasons(o.noResult).join('; ')}` };
  }
  const targetsPass = o.successRate !== undefined && o.successRate !== null && o.successRateTarget !== undefined && o.successRate >= o.successRateTarget;
  if (o.regressionGate && o.regressed.length > 0 && targetsPass) {
    return { code: EXIT.regression, reason: `run ${o.run} regressed against the baseline: ${list(o.regressed)} (the targets alone pass)` };
  }
  const rate = o.successRate === null ? 'every test was skipped' : o.successRate !== undefined ? `success rate ${o.successRate}%${o.successRateTarget !== undefined ? ` < ${o.successRateTarget}%` : ''}` : '';
  return { code: EXIT.failed, reason: `run ${o.run} failed${rate ? ` (${rate})` : ''}${o.failed.length ? `: ${list(o.failed.map((t) => t.id))}` : ''}` };
}

/** A failed test has no result when nothing was measured: no value and no sample (junit's NoResult). */
const hasNoResult = (t: { value: number | null | undefined; samples?: number }): boolean => (t.value === null || t.value === undefined) && (t.samples ?? 0) === 0;

/** The outcome from the run's result document (the export's results.json): the exact source. */
export function outcomeFromDocument(run: string, doc: ResultDocument, phase?: string): Outcome {
  const failed = doc.tests.filter((t) => t.result === 'Failed');
  return {
    run,
    ...(phase ? { phase } : {}),
    verdict: doc.summary.verdict,
    successRate: doc.summary.successRate,
    successRateTarget: doc.targets.successRate,
    noResult: failed.filter(hasNoResult).map((t) => ({ id: t.id, name: t.name, ...(t.reason ? { reason: t.reason } : {}) })),
    failed: failed.filter((t) => !hasNoResult(t)).map((t) => ({ id: t.id, name: t.name, ...(t.reason ? { reason: t.reason } : {}) })),
    regressed: doc.comparison?.regressed ?? [],
    regressionGate: doc.summary.regressionGate ?? doc.comparison?.method.failOnRegression ?? false,
  };
}

/**
 * The outcome from the status alone (the export could not be read). The status drops `value`
 * when nothing was measured and has no sample counts, so a failed test without a value counts as
 * without a result. `successRateTarget` comes from the spec (resolved params).
 */
export function outcomeFromStatus(run: string, status: BenchmarkRunStatus, successRateTarget: number, regressionGate: boolean): Outcome {
  const ready = status.conditions?.find((c) => c.type === 'Ready');
  if (ready?.reason === 'SpecInvalid') return { run, phase: status.phase ?? 'Failed', specInvalid: ready.message, noResult: [], failed: [], regressed: [], regressionGate };
  const tests = status.tests ?? [];
  const failed = tests.filter((t) => t.result === 'Failed');
  return {
    run,
    ...(status.phase ? { phase: status.phase } : {}),
    ...(status.summary?.verdict ? { verdict: status.summary.verdict } : {}),
    ...(status.summary ? { successRate: status.summary.successRate ?? null } : {}),
    successRateTarget,
    noResult: failed.filter((t) => t.value === undefined).map((t) => ({ id: t.id, name: t.name, ...(t.reason ? { reason: t.reason } : {}) })),
    failed: failed.filter((t) => t.value !== undefined).map((t) => ({ id: t.id, name: t.name, ...(t.reason ? { reason: t.reason } : {}) })),
    regressed: status.comparison?.regressed ?? [],
    regressionGate: status.summary?.regressionGate ?? regressionGate,
  };
}
