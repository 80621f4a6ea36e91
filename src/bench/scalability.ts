/**
 * Category 4, scalability: tests 4.1–4.5, one per pool size of `params.agents.steps`.
 * `docs/scalability-stress.md` explains the method; in short:
 *
 * - Weak scaling with an open-loop load (`src/bench/load/`): a pool of N agents gets
 *   N × `ratePerAgent` tasks/s (the configured io/cpu mix), `POST /v1/tasks` round robin over the
 *   agents, for `stepSeconds` after a warm-up of a quarter of that (excluded from every figure).
 * - A reference run of a single agent at the same per-agent rate gives `throughput_base`.
 *   Efficiency_N = (throughput_N / throughput_base) / (N / 1) × 100 %: 100 % when every agent
 *   does as much as a lone agent; lower when the pool (or the host it shares) does not keep up.
 *   The value of each test is that efficiency; the framework judges it against
 *   `targets.scalingEfficiency`.
 * - Throughput = ok answers per second by answer time within the measured interval (429s,
 *   errors and timeouts are not throughput), capped at the ok answers per second among the tasks
 *   offered in that interval: a backlog built in the warm-up and drained in the interval is not
 *   credited as extra throughput (it would read as > 100 % efficiency). Latency p50/p95/p99 is from each task's scheduled
 *   send time (queueing included). Memory (RSS) and CPU per agent come from `pool.stats()`:
 *   CPU = the processes' CPU-seconds over the measured interval / its length / N; RSS = the
 *   processes' RSS at the end / N (and its change over the interval / N).
 * - Raw samples: per-window (500 ms) efficiency, i.e. each window's throughput per agent over
 *   the reference throughput per agent, so a baseline comparison has a distribution in the
 *   test's own unit.
 *
 * One pool serves the category: it starts with one agent (the reference), then grows to each
 * step's size in turn, so agents that joined earlier keep running (as in a real scale-out).
 */
import { capSamples, describe as distribution, round } from '../stats.ts';
import { testsOf } from '../plan/catalogue.ts';
import type { BenchContext, CategoryRunner } from './types.ts';
import type { Measurement } from '../api/schema.ts';
import type { Params } from '../plan/params.ts';
import type { Pool, ProcessStats } from '../platform/types.ts';
import { startLoad, type LoadRun } from './load/index.ts';
import { errorMessage } from '../errors.ts';
import { failed, roundOrNull, skipped } from './measure.ts';

/** Window of the raw samples and the reported series (ms). */
export const SCALING_WINDOW_MS = 500;

export interface StepFigures {
  agents: number;
  offeredRate: number;
  /** Credited throughput: min(completionRate, okOfOfferedRate). */
  throughput: number;
  /** ok answers/s by answer time in the measured interval. */
  completionRate: number;
  /** ok answers/s among the tasks scheduled in the measured interval (answered whenever). */
  okOfOfferedRate: number;
  throughputPerAgent: number;
  latencyMs: { p50: number | null; p95: number | null; p99: number | null };
  counts: LoadRun['counts'];
  memoryPerAgentMB: number | null;
  /** RSS change of the pool's processes over the measured interval / N (MB). */
  memoryGrowthPerAgentMB: number | null;
  cpuPerAgentPct: number | null;
  processes: number;
  generatorLagMs: { p50: number; p99: number; max: number };
  /** Per-window ok answers/s per agent over the measured interval. */
  windowThroughputPerAgent: number[];
  windows: { t: number; thr: number; p95: number | null; rej: number; err: number }[];
  measuredMs: number;
  errorKinds?: Record<string, number>;
}

/** CPU-seconds used by the processes present in both snapshots. */
export function cpuSecondsBetween(a: readonly ProcessStats[], b: readonly ProcessStats[]): number {
  let s = 0;
  for (const x of b) {
    const y = a.find((p) => p.pid === x.pid);
    if (y) s += Math.max(0, x.cpuSeconds - y.cpuSeconds);
  }
  return s;
}

/** Waits until `ms` on a load run's clock (a point in the schedule, not a stand-in for work). */
export function untilLoadTime(now: () => number, ms: number, signal?: AbortSignal): Promise<void> {
  const wait = ms - now();
  if (wait <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, wait);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * A note when the load generator fell behind its own schedule: latencies are still measured from
 * the scheduled times (so they include the lag, by design), but the figures then partly describe
 * the runner's machine rather than the agents.
 */
export function lagWarning(lag: { p50: number; p99: number }): string | undefined {
  if (lag.p50 <= 10 && lag.p99 <= 100) return undefined;
  return `the load generator fell behind its schedule (lag p50 ${round(lag.p50, 1)} ms, p99 ${round(lag.p99, 1)} ms): the runner's machine is busy, latencies include this lag`;
}

export function urlsOf(pool: Pool): string[] {
  return pool.agents().map((a) => a.url);
}

/**
 * One step: N agents (the pool's current agents) under N × rate tasks/s for warm-up + measured
 * interval. Exported for the stress category and for tests.
 */
export async function measureStep(pool: Pool, p: Params, seed: number, signal?: AbortSignal): Promise<StepFigures> {
  const urls = urlsOf(pool);
  const n = urls.length;
  const measureMs = p.agents.stepSeconds * 1000;
  const warmupMs = Math.round(measureMs / 4);
  const offeredRate = n * p.agents.ratePerAgent;
  const h = startLoad({
    targets: urls,
    rate: offeredRate,
    durationMs: warmupMs + measureMs,
    mode: 'tasks',
    mix: p.agents.taskMix,
    ioMs: p.agents.ioTaskMs,
    cpuRounds: p.agents.cpuTaskRounds,
    timeoutMs: Math.max(10_000, p.agents.ioTaskMs * 20),
    seed,
    ...(signal ? { signal } : {}),
  });
  await untilLoadTime(h.now, warmupMs, signal);
  const s0 = await pool.stats().catch(() => null);
  const t0 = h.now();
  await h.scheduleDone;
  const s1 = await pool.stats().catch(() => null);
  const t1 = h.now();
  const run = await h.done;
  const end = run.scheduleEndMs;
  const from = Math.min(warmupMs, end);
  const span = end - from;
  // Credited throughput: ok answers per second by answer time in the interval, but never more
  // than the tasks offered in the interval that were answered ok. Without the cap, a backlog from
  // the warm-up drained during the interval reads as > 100 % efficiency.
  const completionRate = run.throughput(from, end);
  const okOfOffered = span > 0 ? (run.countsBetween(from, end).ok * 1000) / span : 0;
  const throughput = Math.min(completionRate, okOfOffered);
  const lat = run.latencySummary(from, end);
  const wins = run.windows(SCALING_WINDOW_MS, from, end);
  let cpuPerAgentPct: number | null = null;
  let memoryPerAgentMB: number | null = null;
  let memoryGrowthPerAgentMB: number | null = null;
  if (s0 && s1 && t1 > t0 && n > 0) {
    cpuPerAgentPct = (cpuSecondsBetween(s0, s1) / ((t1 - t0) / 1000) / n) * 100;
    memoryPerAgentMB = s1.reduce((a, x) => a + x.rssBytes, 0) / n / 1048576;
    let growth = 0;
    for (const x of s1) {
      const y = s0.find((q) => q.pid === x.pid);
      if (y) growth += x.rssBytes - y.rssBytes;
    }
    memoryGrowthPerAgentMB = growth / n / 1048576;
  }
  return {
    agents: n,
    offeredRate,
    throughput,
    completionRate,
    okOfOfferedRate: okOfOffered,
    throughputPerAgent: n > 0 ? throughput / n : 0,
    latencyMs: { p50: lat.p50, p95: lat.p95, p99: lat.p99 },
    counts: { ...run.counts },
    memoryPerAgentMB,
    memoryGrowthPerAgentMB,
    cpuPerAgentPct,
    processes: s1?.length ?? 0,
    generatorLagMs: run.lag,
    windowThroughputPerAgent: wins.map((w) => (n > 0 ? w.throughput / n : 0)),
    windows: wins.map((w) => ({ t: round(w.startMs, 0), thr: round(w.throughput, 1), p95: w.p95 === null ? null : round(w.p95, 2), rej: w.rejected, err: w.errors })),
    measuredMs: span,
    ...(Object.keys(run.errorKinds).length ? { errorKinds: { ...run.errorKinds } } : {}),
  };
}

function figuresDetails(f: StepFigures): Record<string, unknown> {
  return {
    agents: f.agents,
    offeredRate: round(f.offeredRate, 2),
    throughput: round(f.throughput, 2),
    throughputPerAgent: round(f.throughputPerAgent, 3),
    completionRate: round(f.completionRate, 2),
    okOfOfferedRate: round(f.okOfOfferedRate, 2),
    latencyMs: { p50: roundOrNull(f.latencyMs.p50), p95: roundOrNull(f.latencyMs.p95), p99: roundOrNull(f.latencyMs.p99) },
    counts: f.counts,
    rejected: f.counts.rejected,
    errors: f.counts.error + f.counts.timeout,
    memoryPerAgentMB: roundOrNull(f.memoryPerAgentMB),
    memoryGrowthPerAgentMB: roundOrNull(f.memoryGrowthPerAgentMB),
    cpuPerAgentPct: roundOrNull(f.cpuPerAgentPct),
    processes: f.processes,
    generatorLagMs: { p50: round(f.generatorLagMs.p50, 2), p99: round(f.generatorLagMs.p99, 2), max: round(f.generatorLagMs.max, 2) },
    ...(lagWarning(f.generatorLagMs) ? { warning: lagWarning(f.generatorLagMs) } : {}),
    measuredSeconds: round(f.measuredMs / 1000, 3),
    windowMs: SCALING_WINDOW_MS,
    windows: f.windows,
    ...(f.errorKinds ? { errorKinds: f.errorKinds } : {}),
  };
}

export const run: CategoryRunner = async (ctx: BenchContext): Promise<Measurement[]> => {
  const p = ctx.params;
  const defs = testsOf('scalability');
  const steps = p.agents.steps.slice(0, defs.length);
  const out: Measurement[] = [];
  const started = Date.now();
  ctx.progress('scalability', 'reference: 1 agent');
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
  try {
    const base = await measureStep(pool, p, 1, ctx.signal);
    ctx.signal.throwIfAborted();
    const baseDetails = figuresDetails(base);
    ctx.log.info('scalability reference', { throughput: base.throughput, p95: base.latencyMs.p95 });
    for (let k = 0; k < defs.length; k++) {
      const def = defs[k]!;
      const n = steps[k];
      const t0 = Date.now();
      if (n === undefined) {
        out.push(skipped(def.id, `no pool size configured for step ${k + 1} (agents.steps has ${steps.length})`));
        continue;
      }
      ctx.progress('scalability', `${def.id}: ${n} agents`);
      try {
        const agents = await pool.scaleTo(n);
        if (agents.length !== n) throw new Error(`pool has ${agents.length} agents, asked for ${n}`);
      } catch (err) {
        out.push(failed(def.id, `could not scale the pool to ${n} agents: ${errorMessage(err)}`, undefined, Date.now() - t0));
        continue;
      }
      const f = await measureStep(pool, p, 100 + k, ctx.signal);
      ctx.signal.throwIfAborted();
      const details: Record<string, unknown> = {
        ...figuresDetails(f),
        baseThroughput: round(base.throughput, 3),
        baseLatencyMs: baseDetails.latencyMs,
        baseCounts: base.counts,
      };
      if (!(base.throughput > 0)) {
        out.push(failed(def.id, 'the single-agent reference run completed no task, so efficiency is undefined', details, Date.now() - t0));
        continue;
      }
      const efficiency = (f.throughput / base.throughput / (n / 1)) * 100;
      const raw = f.windowThroughputPerAgent.map((x) => (x / base.throughput) * 100);
      details.efficiencyPct = round(efficiency, 2);
      ctx.log.info('scalability step', { agents: n, throughput: f.throughput, efficiency, p95: f.latencyMs.p95 });
      out.push({
        id: def.id,
        value: round(efficiency, 3),
        samples: raw.length,
        ...(raw.length ? { raw: capSamples(raw), distribution: distribution(raw) } : {}),
        details,
        durationMs: Date.now() - t0,
      });
    }
  } finally {
    await pool.close();
  }
  ctx.log.info('scalability done', { ms: Date.now() - started });
  return out;
};
