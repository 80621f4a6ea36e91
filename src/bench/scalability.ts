/**
 * Category 4, scalability: tests 4.1–4.5, one per pool size of `params.agents.steps`.
 * `docs/scalability-stress.md` explains the method; in short:
 *
 * - **Throughput at saturation.** A pool of N agents is kept saturated by a closed loop of
 *   `ceil(1.05 × N × capacity)` outstanding tasks sent through the system's own dispatch
 *   (`POST /v1/dispatch` on a few coordinators, `scalability/plan.ts`); T(N) is the tasks completed
 *   per second in the measured window, each seen done and checked by the harness
 *   (`src/bench/load/closed.ts`, `verify.ts`). It is what the pool completes, never capped at what
 *   was offered.
 * - **Efficiency** = T(N) ÷ (N × T(1)) × 100 %, T(1) measured the same way on the pool at one
 *   agent; judged against `targets.scalingEfficiency`. A wrong result, a lost task, a window where
 *   the load generator fell behind its schedule (`src/bench/load/lag.ts`), a run the harness did
 *   not saturate, and a window where the host ran out of CPU are said so (`scalability/judge.ts`):
 *   Failed, Skipped ("load generator behind schedule", "not saturated", "host-bound"), never Passed.
 * - **One pool** serves the category: it starts at one agent (the reference) and grows to each
 *   step's size in turn. A step's tasks still in the system when its window ends are drained and
 *   checked while the next step starts (its ramp is warm-up, excluded from every figure).
 */
import { testsOf } from '../plan/catalogue.ts';
import type { BenchContext, CategoryRunner } from './types.ts';
import type { Measurement } from '../api/schema.ts';
import type { Pool } from '../platform/types.ts';
import { errorMessage } from '../errors.ts';
import { failed, skipped } from './measure.ts';
import { round } from '../stats.ts';
import { coordinatorCount, pickCoordinators, scalingPlan } from './scalability/plan.ts';
import { measureSaturation, type Saturation } from './scalability/step.ts';
import { stepMeasurement } from './scalability/judge.ts';

export { cpuSecondsBetween } from './scalability/host.ts';
export { lagWarning, untilLoadTime } from './scalability/wait.ts';
export { efficiencyPct } from './scalability/judge.ts';

export function urlsOf(pool: Pool): string[] {
  return pool.agents().map((a) => a.url);
}

export const run: CategoryRunner = async (ctx: BenchContext): Promise<Measurement[]> => {
  const p = ctx.params;
  const defs = testsOf('scalability');
  const steps = p.agents.steps.slice(0, defs.length);
  const plan = scalingPlan(p);
  const target = p.targets.scalingEfficiency;
  const out: Measurement[] = [];
  // Each test's measurement goes to the runner as it is final (kept if the step is interrupted).
  const push = (m: Measurement) => {
    out.push(m);
    ctx.finished?.(m);
  };
  const started = Date.now();
  ctx.progress('scalability', `reference: 1 agent at saturation (${round(plan.taskMs / 1000, 1)} s tasks)`);
  const pool = await ctx.platform.createPool({
    size: 1,
    capacity: p.agents.capacity,
    agentsPerProcess: p.agents.agentsPerProcess,
    autoHeal: false,
    name: 'scal',
    gossipIntervalMs: p.agents.gossipIntervalMs,
    failureTimeoutMs: p.agents.failureTimeoutMs,
    defects: p.agents.defects,
  });
  // Every run's drain, so that none is left running when the pool closes.
  const drains: Promise<unknown>[] = [];
  try {
    const base = await measureSaturation(pool, plan, pool.agents().slice(0, 1), 1, ctx.signal);
    drains.push(base.final);
    ctx.signal.throwIfAborted();
    ctx.log.info('scalability reference', { throughput: base.window.throughput, p50: base.window.latencyMs.p50, saturatedBy: base.window.saturatedBy });
    let earlier = new Set(pool.agents().map((a) => a.id));
    const measured: { id: string; s: Saturation; t0: number; windowDoneMs: number }[] = [];
    for (let k = 0; k < defs.length; k++) {
      const def = defs[k]!;
      const n = steps[k];
      const t0 = Date.now();
      if (n === undefined) {
        push(skipped(def.id, `no pool size configured for step ${k + 1} (agents.steps has ${steps.length})`));
        continue;
      }
      ctx.progress('scalability', `${def.id}: ${n} agents at saturation`);
      try {
        const agents = await pool.scaleTo(n);
        if (agents.length !== n) throw new Error(`pool has ${agents.length} agents, asked for ${n}`);
      } catch (err) {
        push(failed(def.id, `could not scale the pool to ${n} agents: ${errorMessage(err)}`, undefined, Date.now() - t0));
        continue;
      }
      const coordinators = pickCoordinators(pool.agents(), earlier, coordinatorCount(n));
      earlier = new Set(pool.agents().map((a) => a.id));
      const s = await measureSaturation(pool, plan, coordinators, 100 + k, ctx.signal);
      drains.push(s.final);
      ctx.signal.throwIfAborted();
      ctx.log.info('scalability step', { agents: n, throughput: s.window.throughput, p50: s.window.latencyMs.p50, saturatedBy: s.window.saturatedBy });
      measured.push({ id: def.id, s, t0, windowDoneMs: Date.now() });
    }
    const baseFinal = await base.final;
    for (const m of measured) {
      const final = await m.s.final;
      push(stepMeasurement(m.id, { window: m.s.window, final }, { window: base.window, final: baseFinal }, plan, target, m.windowDoneMs - m.t0));
    }
    const order = defs.map((d) => d.id);
    out.sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id));
  } finally {
    await Promise.allSettled(drains);
    await pool.close();
  }
  ctx.log.info('scalability done', { ms: Date.now() - started });
  return out;
};
