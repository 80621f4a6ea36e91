/**
 * From a step's figures and the one-agent reference to the 4.x measurement: the efficiency
 * T(N) ÷ (N × T(1)) and what the harness must say beyond it, in this order:
 *
 * 1. a wrong result anywhere in the step's run (or in the reference's) fails the step, with the count;
 * 2. an accepted task its coordinator reports `failed` or no longer knows (`unknown`) fails it, with
 *    the count (tasks merely still pending when the drain ends are reported, not judged: a saturated
 *    or starved system may legitimately take longer, and 4.x judges throughput);
 * 3. a reference that completed nothing leaves the efficiency undefined: Failed;
 * 4. a step whose window, or the reference's, saw the load generator behind its schedule (its send
 *    lag past `GENERATOR_LAG_BOUND`, `src/bench/load/lag.ts`: the closed loop's own timers ran late,
 *    its event loop busy or starved) is Skipped ("load generator behind schedule"): its throughput
 *    partly measured the runner, so it is neither Passed nor Failed on it. Below the target this
 *    takes the same guard as 6 (every agent executed tasks, two per agent): a shortfall the lag
 *    cannot have made is the pool's own and is judged, the lag still in the details. The lag never
 *    includes the system's answer times, so a slow pool does not raise it (`closed.ts`);
 * 5. a step (or reference) the harness did not saturate (no refusal, no queueing) at or above the
 *    target is Skipped: its throughput would be what the harness kept outstanding, not the pool's;
 * 6. a step below the target whose window was host-bound (`host.ts`: the harness or the host's CPUs
 *    ran out, or the step's processes were starved of CPU enough to explain the shortfall) is
 *    Skipped ("host-bound"), with the figures: the host, not the pool, may be what ran out. Only a
 *    pool whose every agent executed tasks (by the executors the checked results name) and that
 *    completed at least two tasks per agent over the run can be host-bound: work that never
 *    reached most of the pool, or a pool that hardly completed anything (a serialising lock), is
 *    the system's own shortfall;
 * 7. otherwise the value is judged against `targets.scalingEfficiency` by the verdict.
 *
 * The value is set in every case (a Skipped or Failed step still shows what was measured);
 * `samples` is the number of completed, checked tasks in the step's window (`sampleUnit` 'tasks').
 * `details.loadGeneratorLag` has the lag of the step's window and of the reference's against the
 * bound, and whether either was behind, whatever the verdict.
 */
import type { Measurement } from '../../api/schema.ts';
import { capSamples, describe as distribution, round } from '../../stats.ts';
import { roundOrNull } from '../measure.ts';
import { behindText, GENERATOR_LAG_BOUND, generatorBehind, lagDetails, type LagFigures } from '../load/lag.ts';
import { hostBound } from './host.ts';
import { capacityRate, type ScalingPlan } from './plan.ts';
import { SCALING_WINDOW_MS, type FinalFigures, type WindowFigures } from './step.ts';

/** Efficiency in %: T(N) ÷ (N × T(1)) × 100; null when T(1) is not a positive throughput. */
export function efficiencyPct(throughputN: number, n: number, throughput1: number): number | null {
  if (!(throughput1 > 0) || !(n >= 1) || !Number.isFinite(throughputN)) return null;
  return (throughputN / (n * throughput1)) * 100;
}

export interface StepResult {
  window: WindowFigures;
  final: FinalFigures;
}

function windowDetails(w: WindowFigures, plan: ScalingPlan): Record<string, unknown> {
  return {
    agents: w.agents,
    throughput: round(w.throughput, 2),
    completions: w.completions,
    offeredRate: round(w.offeredRate, 2),
    outstanding: w.outstanding,
    capacityRate: round(capacityRate(w.agents, plan), 2),
    coordinators: w.coordinators,
    latencyMs: { p50: roundOrNull(w.latencyMs.p50), p95: roundOrNull(w.latencyMs.p95), p99: roundOrNull(w.latencyMs.p99), n: w.latencyMs.n },
    rejected: w.rejected,
    errors: w.errors,
    saturatedBy: w.saturatedBy,
    ...(w.generatorLagMs ? { generatorLagMs: { n: w.generatorLagMs.n, p50: round(w.generatorLagMs.p50, 2), p99: round(w.generatorLagMs.p99, 2), max: round(w.generatorLagMs.max, 2) } } : {}),
    host: w.host,
    memoryPerAgentMB: w.memoryPerAgentMB,
    cpuPerAgentPct: w.cpuPerAgentPct,
    windowSeconds: round(w.windowMs / 1000, 3),
    seriesWindowMs: SCALING_WINDOW_MS,
    series: w.series,
  };
}

function finalDetails(f: FinalFigures): Record<string, unknown> {
  return { counts: f.counts, lostDetail: f.lostDetail, checks: f.checks, executors: f.executors, completedPerSecond: round(f.completedPerSecond, 2), ...(Object.keys(f.errorKinds).length ? { errorKinds: f.errorKinds } : {}) };
}

function wrongText(f: FinalFigures): string {
  const kinds = Object.entries(f.mismatch)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  return `${f.wrong} wrong result(s) among ${f.checked} checked (${kinds || 'mismatch'}; ${f.cpuDigestsRecomputed} CPU digests recomputed by the harness)`;
}

/** The measurement of test `id` for one step (see the module comment). */
export function stepMeasurement(id: string, step: StepResult, base: StepResult, plan: ScalingPlan, target: number, durationMs: number): Measurement {
  const w = step.window;
  const eff = efficiencyPct(w.throughput, w.agents, base.window.throughput);
  const raw = base.window.throughput > 0 ? w.series.map((x) => (x / (w.agents * base.window.throughput)) * 100) : [];
  const details: Record<string, unknown> = {
    ...windowDetails(w, plan),
    ...finalDetails(step.final),
    efficiencyPct: roundOrNull(eff),
    idealThroughput: round(w.agents * base.window.throughput, 2),
    baseThroughput: round(base.window.throughput, 3),
    base: { ...windowDetails(base.window, plan), ...finalDetails(base.final) },
    taskMs: plan.taskMs,
    cpuFraction: round(plan.cpuFraction, 5),
    cpuRounds: plan.cpuRounds,
    method: 'closed loop through /v1/dispatch at saturation; efficiency = T(N) / (N x T(1)), both counted by the harness',
  };
  const m: Measurement = {
    id,
    value: eff === null ? null : round(eff, 3),
    samples: w.completions,
    sampleUnit: 'tasks',
    ...(raw.length ? { raw: capSamples(raw.map((x) => round(x, 4))), distribution: distribution(raw) } : {}),
    details,
    durationMs,
  };
  const stepLag = w.generatorLagMs;
  const baseLag = base.window.generatorLagMs;
  const stepBehind = stepLag !== undefined && generatorBehind(stepLag);
  const baseBehind = baseLag !== undefined && generatorBehind(baseLag);
  if (stepLag || baseLag) {
    details.loadGeneratorLag = {
      ...(stepLag ? { step: lagDetails(stepLag) } : {}),
      ...(baseLag ? { base: lagDetails(baseLag) } : {}),
      bound: { p50Ms: GENERATOR_LAG_BOUND.p50Ms, p99Ms: GENERATOR_LAG_BOUND.p99Ms },
      behind: stepBehind || baseBehind,
    };
  }
  const f = step.final;
  const bf = base.final;
  // A pool whose every agent executed tasks, two per agent over the run: only its shortfall may be the host's or the harness's.
  const reachedPool = f.executors >= w.agents && f.counts.ok >= 2 * w.agents;
  if (f.wrong > 0 || bf.wrong > 0) {
    const parts = [];
    if (f.wrong > 0) parts.push(wrongText(f));
    if (bf.wrong > 0) parts.push(`the one-agent reference run had ${wrongText(bf)}`);
    return { ...m, fail: `${parts.join('; ')}: a wrong answer is not throughput` };
  }
  const d = f.lostDetail;
  if (d.failed + d.unknown > 0) {
    return {
      ...m,
      fail: `${d.failed + d.unknown} accepted task(s) lost (${d.failed} failed, ${d.unknown} unknown to the coordinator that accepted them)`,
    };
  }
  if (eff === null) return { ...m, fail: 'the one-agent reference run completed no task in its window, so the efficiency is undefined' };
  if ((stepBehind || baseBehind) && (eff >= target || reachedPool)) {
    const needed = (target / 100) * w.agents * base.window.throughput;
    const host = eff < target ? hostBound(w.host, Math.max(w.throughput, f.completedPerSecond), needed) : null;
    return { ...m, skip: behindReason(w, stepBehind ? stepLag : undefined, baseBehind ? baseLag : undefined, base.window.throughput, eff, target, host) };
  }
  if (base.window.saturatedBy === null && eff >= target) {
    return { ...m, skip: `not saturated: the one-agent reference neither refused a task nor queued (${base.window.outstanding} outstanding), so T(1) is the harness's, not the agent's` };
  }
  if (w.saturatedBy === null && eff >= target) {
    return { ...m, skip: `not saturated: ${w.agents} agents neither refused a task nor queued with ${w.outstanding} outstanding, so the throughput is the harness's, not the pool's` };
  }
  if (eff < target && reachedPool) {
    // A starved pool may complete almost nothing inside the window: the run's whole rate counts too.
    const why = hostBound(w.host, Math.max(w.throughput, f.completedPerSecond), (target / 100) * w.agents * base.window.throughput);
    if (why) {
      return {
        ...m,
        skip: `host-bound: ${why}; all ${w.agents} agents executed tasks (${f.counts.ok} over the run), and the pool did ${round(w.throughput, 1)} tasks/s of the ${round(w.agents * base.window.throughput, 1)} that ${w.agents} x T(1) would be (efficiency ${round(eff, 1)} %, target ${target} %), which may be the host's limit rather than the pool's`,
      };
    }
  }
  return m;
}

/** The skip reason of a step whose window, or the reference's, saw the load generator behind its schedule. */
function behindReason(w: WindowFigures, stepLag: LagFigures | undefined, baseLag: LagFigures | undefined, t1: number, eff: number, target: number, host: string | null): string {
  const b = GENERATOR_LAG_BOUND;
  const where = [
    ...(stepLag ? [`at ${w.agents} agents its ${behindText(stepLag)}`] : []),
    ...(baseLag ? [`in the one-agent reference its ${behindText(baseLag)}`] : []),
  ];
  return (
    `load generator behind schedule: ${where.join('; ')} (behind: median > ${b.p50Ms} ms or p99 > ${b.p99Ms} ms); ` +
    `the pool did ${round(w.throughput, 1)} tasks/s of the ${round(w.agents * t1, 1)} that ${w.agents} x T(1) would be (efficiency ${round(eff, 1)} %, target ${target} %), ` +
    `a figure that partly measured the runner, so it is not judged as the pool's` +
    (host ? `; the host too: ${host}` : '')
  );
}
