/**
 * The default `--timeout` of `submit --wait` and `rerun --wait`: long enough for the run the
 * manifest (or the run's spec) describes, not a fixed 30 minutes that a full run outlasts. Steps run
 * one after another, each bounded by its deadline from the plan (src/plan/deadlines.ts), so the
 * wait is the sum of the steps' deadlines plus WAIT_SLACK_MS for the operator's admission, the pods'
 * starts and the finish (Prometheus, the export). A spec that cannot be planned (the API server
 * admitted a field this CLI does not know) falls back to FALLBACK_WAIT_MS, and says so.
 */
import { BenchmarkRunSpec } from '../../api/schema.ts';
import { resolveParams } from '../../plan/params.ts';
import { buildPlan } from '../../plan/plan.ts';

export const WAIT_SLACK_MS = 5 * 60_000;
export const FALLBACK_WAIT_MS = 30 * 60_000;

/** The default wait for a run of `spec`, and how it was found (for the help and a note). */
export function defaultWaitMs(spec: unknown): { ms: number; how: string } {
  const parsed = BenchmarkRunSpec.safeParse(spec ?? {});
  if (!parsed.success) return { ms: FALLBACK_WAIT_MS, how: `${FALLBACK_WAIT_MS / 60_000} min (the spec could not be planned here)` };
  const steps = buildPlan(resolveParams(parsed.data));
  const sum = steps.reduce((a, s) => a + s.timeoutMs, 0);
  return { ms: sum + WAIT_SLACK_MS, how: `the ${steps.length} ${steps.length === 1 ? "step's deadline" : "steps' deadlines"} (${Math.ceil(sum / 60_000)} min) + ${WAIT_SLACK_MS / 60_000} min` };
}
