/**
 * One saturation measurement (the reference run or a step of 4.1–4.5): a closed loop of
 * `outstanding` tasks through the step's coordinators (`src/bench/load/closed.ts`), the throughput
 * counted by the harness in the measured window, and what the host did meanwhile (`host.ts`).
 * The window's figures are ready when the window ends; the final counts (every result checked,
 * the lost tasks) when the loop has drained, which runs on while the next step starts.
 */
import { SCALING_REQUEST_TIMEOUT_MS } from '../../plan/deadlines.ts';
import { round } from '../../stats.ts';
import type { AgentHandle, Pool } from '../../platform/types.ts';
import { checksSummary, startClosedLoop, type LagSummary, type LoadRun } from '../load/index.ts';
import { hostUseBetween, loopDelay, markCpu, type HostUse } from './host.ts';
import { capacityRate, outstandingFor, type ScalingPlan } from './plan.ts';
import { untilLoadTime } from './wait.ts';

/** Window of the raw samples and of the reported series (ms). */
export const SCALING_WINDOW_MS = 500;

export interface WindowFigures {
  agents: number;
  /** Ids of the agents the tasks entered through. */
  coordinators: string[];
  /** Tasks kept outstanding (the closed loop's slots). */
  outstanding: number;
  /** Completed, checked tasks per second in the window (harness clock): T(N). */
  throughput: number;
  /** Those tasks (the count behind the throughput). */
  completions: number;
  /** Dispatch attempts sent per second in the window (accepted or not). */
  offeredRate: number;
  /** 429s, and errors and timeouts, among the attempts sent in the window. */
  rejected: number;
  errors: number;
  /** Send to the query answer that said done, of the tasks completed in the window (ms). */
  latencyMs: { p50: number | null; p95: number | null; p99: number | null; n: number };
  /** What showed the pool saturated: 'refusals' (429s), 'queueing' (p50 ≥ 1.5 task lengths), or null. */
  saturatedBy: 'refusals' | 'queueing' | null;
  /**
   * The closed loop's own lag over the sends in the window (ms, `closed.ts`): how late its timers
   * ran, never the system's time; judged against the bound of `src/bench/load/lag.ts`. Always
   * set by `measureSaturation`; figures without it (made elsewhere) have no lag to judge.
   */
  generatorLagMs?: LagSummary;
  host: HostUse;
  /** The pool's processes' RSS at the window's end ÷ N (MB), and their CPU over it ÷ N (% of a core). */
  memoryPerAgentMB: number | null;
  cpuPerAgentPct: number | null;
  /** Completions per second per `SCALING_WINDOW_MS` sub-window. */
  series: number[];
  windowMs: number;
}

export interface FinalFigures {
  counts: LoadRun['counts'];
  lostDetail: LoadRun['lostDetail'];
  checks: Record<string, unknown>;
  wrong: number;
  checked: number;
  cpuDigestsRecomputed: number;
  mismatch: Record<string, number>;
  executors: number;
  errorKinds: Record<string, number>;
  /** Checked tasks completed per second over the whole run (ramp, window and drain). */
  completedPerSecond: number;
}

export interface Saturation {
  window: WindowFigures;
  /** Resolves once every task of the run has its final outcome (or the drain deadline passed). */
  final: Promise<FinalFigures>;
}

/** Measures the pool as it is now through `coordinators`; see the module comment. */
export async function measureSaturation(pool: Pool, plan: ScalingPlan, coordinators: readonly AgentHandle[], seed: number, signal?: AbortSignal): Promise<Saturation> {
  const n = pool.agents().length;
  const outstanding = outstandingFor(n, plan.capacity);
  const ws = plan.windowStartMs;
  const we = ws + plan.windowMs;
  const h = startClosedLoop({
    coordinators: coordinators.map((a) => a.url),
    outstanding,
    rampMs: plan.rampMs,
    durationMs: we,
    cpuFraction: plan.cpuFraction,
    ioMs: plan.taskMs,
    cpuRounds: plan.cpuRounds,
    // Every CPU task's digest is recomputed: at most capacityRate / 64 of them per second.
    cpuCheckEvery: 1,
    expectedRate: capacityRate(n, plan) * 1.2,
    pollMs: plan.pollMs,
    quickRetries: plan.quickRetries,
    // A coordinator answers a dispatch at once (202 or 429); a longer wait is a starved host, and a
    // retry would only add load. plan/deadlines.ts holds it, for the step's deadline.
    timeoutMs: SCALING_REQUEST_TIMEOUT_MS,
    seed,
    ...(signal ? { signal } : {}),
  });
  await untilLoadTime(h.now, ws, signal);
  const m0 = await markCpu(pool);
  const delay = loopDelay();
  await untilLoadTime(h.now, we, signal);
  const m1 = await markCpu(pool);
  const host = hostUseBetween(m0, m1, delay.stop());
  const final = h.finish(plan.drainMs).then(finalFigures);
  const run = h.run;
  const span = plan.windowMs / 1000;
  const sent = run.countsBetween(ws, we);
  const lat = run.latencySummary(ws, we);
  const completions = run.okBetween(ws, we);
  const rejected = sent.rejected;
  const saturatedBy = rejected > 0 ? 'refusals' : lat.p50 !== null && lat.p50 >= 1.5 * plan.taskMs ? 'queueing' : null;
  return {
    window: {
      agents: n,
      coordinators: coordinators.map((a) => a.id),
      outstanding,
      throughput: completions / span,
      completions,
      offeredRate: Object.values(sent).reduce((a, b) => a + b, 0) / span,
      rejected,
      errors: sent.error + sent.timeout,
      latencyMs: { p50: lat.p50, p95: lat.p95, p99: lat.p99, n: lat.n },
      saturatedBy,
      generatorLagMs: run.lagBetween(ws, we),
      host,
      memoryPerAgentMB: m1.pool && n > 0 ? round(m1.pool.reduce((a, x) => a + x.rssBytes, 0) / n / 1048576, 2) : null,
      cpuPerAgentPct: host.poolCpuPct === null || n === 0 ? null : round(host.poolCpuPct / n, 2),
      series: run.windows(SCALING_WINDOW_MS, ws, we).map((w) => round(w.throughput, 1)),
      windowMs: plan.windowMs,
    },
    final,
  };
}

function finalFigures(run: LoadRun): FinalFigures {
  const c = run.checks;
  const mismatch = Object.fromEntries(Object.entries(c.mismatch).filter(([, v]) => v > 0));
  return {
    counts: { ...run.counts },
    lostDetail: { ...run.lostDetail },
    checks: checksSummary(c),
    wrong: run.counts.wrong,
    checked: c.checked,
    cpuDigestsRecomputed: c.cpuChecked,
    mismatch,
    executors: c.executors.size,
    errorKinds: { ...run.errorKinds },
    completedPerSecond: run.endMs > 0 ? (run.counts.ok * 1000) / run.endMs : 0,
  };
}
