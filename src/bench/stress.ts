/**
 * Category 6, stress: tests 6.1–6.3, each on a pool of its own (so a fault or an overload of one
 * test cannot leak into the next). `docs/scalability-stress.md` explains the method; each test is
 * a file of `stress/`:
 *
 * - 6.1 Sustained load (`stress/sustained.ts`, value: error rate % of the tasks after the warm-up,
 *   target `sustainedErrorRatePct`): N agents under N × ratePerAgent tasks/s through the system's
 *   own dispatch; every sliding window is judged on its error rate and on latency drift (the p95
 *   over the agents of each agent's median latency against the run's median window), and any
 *   lost task or wrong result fails it.
 * - 6.2 Spike recovery (`stress/spike.ts`, value: seconds, target `spikeRecoverySeconds`): the small
 *   pool's capacity is measured, then the load jumps to 2.5 × that while the pool is asked to
 *   grow; the value is the time until >= 90 % of the offered tasks are served again, held for 1 s.
 * - 6.3 Resource exhaustion (`stress/exhaustion.ts`, value: accepted-but-lost tasks, target <= 0):
 *   4 × the pool's capacity through dispatch; it must shed (429), lose nothing it accepted, crash
 *   no agent and recover.
 *
 * This module is what the rest of the program imports: the category runner and every test's
 * entry point and pure helpers.
 */
import type { Measurement } from '../api/schema.ts';
import { errorMessage } from '../errors.ts';
import { testsOf } from '../plan/catalogue.ts';
import { failed } from './measure.ts';
import type { StressHooks } from './stress/common.ts';
import { exhaustion } from './stress/exhaustion.ts';
import { spike } from './stress/spike.ts';
import { sustained } from './stress/sustained.ts';
import type { BenchContext, CategoryRunner } from './types.ts';

export { readSteal, SchedSampler, type HostReading, type StressHooks, type StressTest } from './stress/common.ts';
export {
  HOST_BOUND_RISE,
  HOST_BOUND_STEAL_SHARE,
  HOST_BOUND_WAIT_SHARE,
  JUDGE_WINDOW_MS,
  judgedWindows,
  judgeWindowing,
  MIN_AGENT_TASKS,
  sustained,
  sustainedMeasurement,
  SUSTAINED_DRAIN_MS,
  warmupBounds,
  type HostProbe,
  type JudgedWindow,
  type SustainedExtras,
} from './stress/sustained.ts';
export {
  admittedRate,
  cohortRecovery,
  SCALE_WAIT_MS,
  spike,
  SPIKE_HOLD_MS,
  SPIKE_MAX_RATE,
  SPIKE_MULTIPLE,
  SPIKE_RECOVERED_FRACTION,
  SPIKE_STEP_MS,
  SPIKE_WINDOW_MS,
  spikePlan,
  spikeRecoveryMs,
  type SpikePlan,
} from './stress/spike.ts';
export { cleanSuffixStart, exhaustion, EXHAUSTION_MAX_RATE, exhaustionPlan, PROBE_HOLD_MS } from './stress/exhaustion.ts';

export const run: CategoryRunner = async (ctx: BenchContext): Promise<Measurement[]> => runStress(ctx);

/** All three tests in catalogue order; a test that throws is a failed measurement with the reason. */
export async function runStress(ctx: BenchContext, hooks: StressHooks = {}): Promise<Measurement[]> {
  const fns: Record<string, (c: BenchContext, h: StressHooks) => Promise<Measurement>> = { '6.1': sustained, '6.2': spike, '6.3': exhaustion };
  const out: Measurement[] = [];
  for (const def of testsOf('stress')) {
    ctx.signal.throwIfAborted();
    const t0 = Date.now();
    try {
      out.push(await fns[def.id]!(ctx, hooks));
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      ctx.log.warn('stress test failed', { test: def.id, error: err instanceof Error ? err.stack : String(err) });
      out.push(failed(def.id, `${def.name} could not run: ${errorMessage(err)}`, undefined, Date.now() - t0));
    }
    ctx.finished?.(out.at(-1)!);
  }
  return out;
}
