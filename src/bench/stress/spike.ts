/**
 * 6.2 Spike recovery (value: seconds, target `spikeRecoverySeconds`).
 *
 * One trial (quick; full: three, median) on a pool of `spikeFrom` agents, in one open-loop
 * `POST /v1/tasks` run of I/O tasks (`spikePlan`: lengthened so that the rates stay within one
 * generator), in three phases:
 *
 * 1. Capacity: the idle small pool is offered twice its declared admission capacity (agents ×
 *    `capacity` ÷ task length) for one task length; the tasks it admitted (not answered 429 or an
 *    error) per second are its measured capacity C (a pool that admits by slots fills them once
 *    in that time, and none is free again before its end).
 * 2. Steady: min(spikeFrom × ratePerAgent, C ÷ 2) tasks/s until the capacity tasks are done.
 * 3. Spike: at one instant the offered load jumps to `multiple` × C (2.5; less when spikeTo ÷
 *    spikeFrom is under 5), which the small pool cannot carry, and the pool is asked to grow to
 *    `spikeTo`; its new agents get load as soon as the platform reports them ready. Recovery thus
 *    depends on scaling out.
 *
 * Value: the time from the spike to the scheduled send of the first task from which on the system
 * serves (answers ok, result checked) at least 90 % of what is offered: every stretch of tasks
 * from that one on, and every 1 s span of scheduled time after it to the end of the observation,
 * has >= 90 % of its tasks served (`cohortRecovery`). Its resolution is one arrival interval at
 * the spike's rate (2.5 ms at 400 tasks/s, in `details.resolutionMs`). Observation ends once
 * that holds for 1 s and the new agents have had load for 1 s, or at the bound, max(10 s, 2 ×
 * target) after the spike: a trial not recovered by then is censored at the bound (counted, and
 * the test fails). The pool's growth is waited for at most `SCALE_WAIT_MS` after that.
 */
import type { Measurement } from '../../api/schema.ts';
import { errorMessage } from '../../errors.ts';
import { SCALE_WAIT_MS, SPIKE_HOLD_MS, SPIKE_MAX_RATE, SPIKE_MULTIPLE } from '../../plan/deadlines.ts';
import type { Params } from '../../plan/params.ts';
import type { Pool } from '../../platform/types.ts';
import { describe as distribution, round } from '../../stats.ts';
import { OUTCOME, startLoad, type LoadCounts, type LoadRun } from '../load/index.ts';
import { roundNumbers, roundOrNull, skipped } from '../measure.ts';
import { lagWarning, urlsOf } from '../scalability.ts';
import type { BenchContext } from '../types.ts';
import { firstAtOrAfter, poolOptions, served, type StressHooks } from './common.ts';

/** Sliding window and its step for the answer-time throughput in the details (ms). */
export const SPIKE_WINDOW_MS = 250;
export const SPIKE_STEP_MS = 50;
/**
 * Held by plan/deadlines.ts, for the step's deadline: `SPIKE_HOLD_MS` (recovered means: every
 * span of this length from the recovery on serves >= 90 % of its tasks), `SPIKE_MULTIPLE` (the
 * spike offers this multiple of the small pool's measured capacity, at most), `SPIKE_MAX_RATE`
 * (the most tasks/s it offers, per mode: one generator on the runner's machine) and
 * `SCALE_WAIT_MS` (after the observation, the pool's growth is waited for this long at most).
 */
export { SCALE_WAIT_MS, SPIKE_HOLD_MS, SPIKE_MAX_RATE, SPIKE_MULTIPLE } from '../../plan/deadlines.ts';
export const SPIKE_RECOVERED_FRACTION = 0.9;
/** The capacity is read this long after its admitted tasks are due to finish (their answers are in). */
const CAPACITY_GRACE_MS = 500;

export interface SpikePlan {
  /** Length of every I/O task (ms). */
  taskMs: number;
  /** Spike rate ÷ the small pool's measured capacity. */
  multiple: number;
  /** What the pools admit by their declared capacity (agents × capacity ÷ task length), tasks/s. */
  nominalSmallRate: number;
  nominalLargeRate: number;
  /** The capacity phase: its rate (twice the small pool's nominal) and length (one task length). */
  probeRate: number;
  probeMs: number;
  steadyMs: number;
  /** The spike comes at this time of the run (ms). */
  spikeAtMs: number;
  /** A trial is censored this long after the spike. */
  boundMs: number;
}

/** The trial's sizes, or why this configuration cannot show a spike beyond the small pool. */
export function spikePlan(p: Params): SpikePlan | string {
  const from = p.stress.spikeFrom;
  const to = p.stress.spikeTo;
  const multiple = Math.min(SPIKE_MULTIPLE, (0.5 * to) / from);
  if (multiple < 1.5) {
    return (
      `stress.spikeTo (${to}) must be at least 3 × stress.spikeFrom (${from}): the spike must exceed what the small pool ` +
      `carries by half again while leaving the grown pool room (here it would be ${round(multiple, 2)} × the small pool's capacity)`
    );
  }
  const cap = p.agents.capacity;
  const maxRate = SPIKE_MAX_RATE[p.mode];
  const taskMs = Math.max(1, p.agents.ioTaskMs, Math.ceil((from * cap * 1000 * multiple) / maxRate));
  const nominalSmallRate = (from * cap * 1000) / taskMs;
  const probeMs = taskMs;
  const steadyMs = Math.max(p.mode === 'quick' ? 2000 : 5000, taskMs + 1000);
  return {
    taskMs,
    multiple,
    nominalSmallRate,
    nominalLargeRate: (to * cap * 1000) / taskMs,
    probeRate: 2 * nominalSmallRate,
    probeMs,
    steadyMs,
    spikeAtMs: probeMs + steadyMs,
    boundMs: Math.max(10_000, 2 * p.targets.spikeRecoverySeconds * 1000),
  };
}

/**
 * Recovery by cohort: ms from `fromMs` to the scheduled time of the first served task T such that,
 * among the tasks scheduled from T on (up to `toMs`), (a) every stretch that starts at T has at
 * least `fraction` of its tasks served, so T is where the system serves again and not a point a
 * later good second averages over, and (b) every span [t, t + holdMs) of scheduled time that fits
 * before `toMs`, for every task's t from T on, has at least `fraction` served, so it lasts (there
 * must be at least one such span). Null when there is none. Every task scheduled before `toMs`
 * must have its outcome.
 */
export function cohortRecovery(run: LoadRun, fromMs: number, toMs: number, holdMs: number, fraction: number): number | null {
  const a = firstAtOrAfter(run, fromMs);
  const b = firstAtOrAfter(run, toMs);
  if (b <= a) return null;
  const eps = 1e-9;
  // okBefore[k]: served tasks among [a, a + k); potential[k] = okBefore[k] - fraction × k, so a
  // stretch [j, m) serves enough iff potential[m] >= potential[j].
  const okBefore = new Int32Array(b - a + 1);
  for (let i = a; i < b; i++) okBefore[i - a + 1] = okBefore[i - a]! + (served(run, i) ? 1 : 0);
  const minAfter = new Float64Array(b - a + 2); // min of potential over [k, b - a]
  minAfter[b - a + 1] = Number.POSITIVE_INFINITY;
  for (let k = b - a; k >= 0; k--) minAfter[k] = Math.min(minAfter[k + 1]!, okBefore[k]! - fraction * k);
  let lastValid = -1;
  for (let j = b - 1; j >= a; j--) {
    if (run.schedMs[j]! + holdMs <= toMs) {
      lastValid = j;
      break;
    }
  }
  if (lastValid < 0) return null;
  // Walk back from the last full span; `end` is the first task at or after t + holdMs.
  let end = b;
  let best: number | null = null;
  for (let j = lastValid; j >= a; j--) {
    const limit = run.schedMs[j]! + holdMs;
    while (end > j + 1 && run.schedMs[end - 1]! >= limit) end--;
    const count = end - j;
    const ok = okBefore[end - a]! - okBefore[j - a]!;
    if (ok + eps < fraction * count) break;
    const k = j - a;
    if (served(run, j) && minAfter[k + 1]! + eps >= okBefore[k]! - fraction * k) best = j;
  }
  return best === null ? null : run.schedMs[best]! - fromMs;
}

/**
 * Answer-time throughput recovery from per-bucket ok counts (`LoadRun.okBuckets`, `bucketMs`
 * each), for the details: the end of the first `windowMs` window after the spike with >=
 * `thresholdPerSec`, provided every `holdMs` span from there to `observedUntilMs` averages it too
 * (at least one such span); ms from the spike, or null. Quantised to the bucket.
 */
export function spikeRecoveryMs(
  buckets: ArrayLike<number>,
  bucketMs: number,
  spikeAtMs: number,
  observedUntilMs: number,
  windowMs: number,
  holdMs: number,
  thresholdPerSec: number,
): number | null {
  const per = Math.max(1, Math.round(windowMs / bucketMs));
  const holdPer = Math.max(per, Math.round(holdMs / bucketMs));
  const startB = Math.ceil(spikeAtMs / bucketMs - 1e-9);
  const endB = Math.floor(observedUntilMs / bucketMs + 1e-9); // buckets [startB, endB) observed
  const lastHoldB = endB - holdPer;
  if (lastHoldB < startB) return null;
  const eps = 1e-9;
  const needW = (thresholdPerSec * per * bucketMs) / 1000;
  const needH = (thresholdPerSec * holdPer * bucketMs) / 1000;
  const prefix = new Float64Array(endB - startB + 1);
  for (let b = startB; b < endB; b++) prefix[b - startB + 1] = prefix[b - startB]! + (buckets[b] ?? 0);
  const sum = (from: number, len: number): number => prefix[from - startB + len]! - prefix[from - startB]!;
  // stableFrom[t]: every hold span starting at t or later (up to lastHoldB) meets the rate.
  const stableFrom = new Uint8Array(lastHoldB - startB + 2);
  stableFrom[lastHoldB - startB + 1] = 1;
  for (let t = lastHoldB; t >= startB; t--) stableFrom[t - startB] = stableFrom[t - startB + 1]! && sum(t, holdPer) + eps >= needH ? 1 : 0;
  for (let s = startB; s <= lastHoldB; s++) {
    if (stableFrom[s - startB] && sum(s, per) + eps >= needW) return (s + per) * bucketMs - spikeAtMs;
  }
  return null;
}

/** Tasks scheduled in [fromMs, toMs) that were admitted (served, or still running), per second. */
export function admittedRate(run: LoadRun, fromMs: number, toMs: number): { rate: number; offered: number; admitted: number } {
  const a = firstAtOrAfter(run, fromMs);
  const b = firstAtOrAfter(run, toMs);
  let admitted = 0;
  for (let i = a; i < b; i++) {
    const o = run.outcome[i];
    if (o === OUTCOME.ok || o === OUTCOME.pending) admitted++;
  }
  return { rate: toMs > fromMs ? (admitted * 1000) / (toMs - fromMs) : 0, offered: b - a, admitted };
}

/** Share (%) of the tasks scheduled in [fromMs, toMs) that were served; null without tasks. */
function servedPct(run: LoadRun, fromMs: number, toMs: number): number | null {
  const a = firstAtOrAfter(run, fromMs);
  const b = firstAtOrAfter(run, toMs);
  let ok = 0;
  for (let i = a; i < b; i++) if (served(run, i)) ok++;
  return b > a ? (ok / (b - a)) * 100 : null;
}

interface SpikeTrial {
  recoveryMs: number | null;
  censored: boolean;
  scaleReadyMs: number | null;
  scaleError?: string;
  capacity: { measured: number; used: number; final: number; offered: number; admitted: number; admittedAll: boolean };
  steadyRate: number;
  spikeRate: number;
  preSpikeServedPct: number | null;
  counts: LoadCounts;
  lag: { p50: number; p99: number; max: number };
  latencyAfterSpikeMs: { p50: number | null; p95: number | null };
  throughputBackMs: number | null;
  observedMs: number;
  servedSeries: (number | null)[];
  throughputSeries: number[];
}

export async function spike(ctx: BenchContext, hooks: StressHooks = {}): Promise<Measurement> {
  const p = ctx.params;
  const t0 = Date.now();
  const from = p.stress.spikeFrom;
  const to = p.stress.spikeTo;
  const plan = spikePlan(p);
  if (typeof plan === 'string') return skipped('6.2', plan, { from, to }, Date.now() - t0);
  const trials = p.mode === 'quick' ? 1 : 3;
  ctx.progress('stress', `6.2: spike ${from} -> ${to} agents`);
  const pool = await ctx.platform.createPool(poolOptions(p, from, 'spike'));
  const results: SpikeTrial[] = [];
  try {
    await hooks.onPool?.('6.2', pool);
    for (let k = 0; k < trials; k++) {
      if (k > 0) await pool.scaleTo(from);
      results.push(await spikeTrial(ctx, pool, plan, 620 + k));
      ctx.signal.throwIfAborted();
    }
  } finally {
    await pool.close();
  }
  return spikeMeasurement(results, plan, p, Date.now() - t0);
}

function spikeMeasurement(results: SpikeTrial[], plan: SpikePlan, p: Params, durationMs: number): Measurement {
  const censored = results.filter((t) => t.censored).length;
  // Censored trials count as "longer than any": the median is finite while most trials recovered.
  const sorted = results.map((t) => (t.censored || t.recoveryMs === null ? Number.POSITIVE_INFINITY : t.recoveryMs / 1000)).sort((a, b) => a - b);
  const mid = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  const secs = sorted.filter((v) => Number.isFinite(v));
  const reasons: string[] = [];
  if (censored > 0) {
    const t = results.find((r) => r.censored)!;
    reasons.push(
      `not recovered within ${round(plan.boundMs / 1000, 1)} s of the spike in ${censored} of ${results.length} trial(s) (censored at the bound): ` +
        `less than ${SPIKE_RECOVERED_FRACTION * 100} % of the offered ${round(t.spikeRate, 1)} tasks/s (${round(plan.multiple, 2)} × the small pool's ` +
        `${round(t.capacity.used, 1)} tasks/s) was served` +
        (t.scaleReadyMs === null ? '' : `; the pool reported ${p.stress.spikeTo} agents ready ${round(t.scaleReadyMs / 1000, 3)} s after the spike`),
    );
  }
  const scaleErrors = results.filter((t) => t.scaleError).map((t) => t.scaleError!);
  if (scaleErrors.length) reasons.push(`the pool did not grow to ${p.stress.spikeTo}: ${scaleErrors[0]}`);
  const resolutionMs = 1000 / Math.max(...results.map((t) => t.spikeRate), 1e-9);
  return {
    id: '6.2',
    value: Number.isFinite(mid) ? round(mid, 3) : null,
    samples: results.length,
    sampleUnit: 'trials',
    ...(results.length > 1 ? { statistic: 'p50' as const } : {}),
    ...(secs.length ? { raw: secs.map((v) => round(v, 4)), distribution: distribution(secs) } : {}),
    ...(reasons.length ? { fail: reasons.join('; ') } : {}),
    details: {
      from: p.stress.spikeFrom,
      to: p.stress.spikeTo,
      taskMs: plan.taskMs,
      nominalSmallRate: round(plan.nominalSmallRate, 2),
      nominalLargeRate: round(plan.nominalLargeRate, 2),
      multiple: round(plan.multiple, 3),
      probeRate: round(plan.probeRate, 2),
      probeSeconds: round(plan.probeMs / 1000, 3),
      steadySeconds: round(plan.steadyMs / 1000, 3),
      holdMs: SPIKE_HOLD_MS,
      recoveredFraction: SPIKE_RECOVERED_FRACTION,
      // The value is a task's scheduled time: one arrival interval at the spike's rate.
      resolutionMs: round(resolutionMs, 3),
      boundSeconds: plan.boundMs / 1000,
      censoredTrials: censored,
      trials: results.map((t) => ({
        recoverySeconds: t.recoveryMs === null ? null : round(t.recoveryMs / 1000, 4),
        censored: t.censored,
        scaleReadySeconds: t.scaleReadyMs === null ? null : round(t.scaleReadyMs / 1000, 3),
        // The small pool's capacity (tasks/s): as measured before the spike (tasks still open then
        // counted admitted), what the spike was based on (at most the declared capacity), and from
        // the final outcomes; admittedAll: it refused nothing offered.
        capacity: roundNumbers(t.capacity, 2),
        steadyRate: round(t.steadyRate, 2),
        spikeRate: round(t.spikeRate, 2),
        preSpikeServedPct: roundOrNull(t.preSpikeServedPct, 2),
        counts: t.counts,
        latencyAfterSpikeMs: { p50: roundOrNull(t.latencyAfterSpikeMs.p50), p95: roundOrNull(t.latencyAfterSpikeMs.p95) },
        // When ok answers/s (250 ms windows) were back to 90 % of the offered rate: later than
        // the value by about one task length, the time the first served tasks take to answer.
        throughputBackSeconds: t.throughputBackMs === null ? null : round(t.throughputBackMs / 1000, 3),
        generatorLagMs: roundNumbers(t.lag, 2),
        ...(lagWarning(t.lag) ? { warning: lagWarning(t.lag) } : {}),
        observedSeconds: round(t.observedMs / 1000, 3),
        // % of the tasks scheduled in each 250 ms from the spike on that were served.
        servedPct: t.servedSeries,
        // Ok answers/s in each 250 ms from the spike on.
        series: t.throughputSeries,
        ...(t.scaleError ? { scaleError: t.scaleError } : {}),
      })),
    },
    durationMs,
  };
}

async function spikeTrial(ctx: BenchContext, pool: Pool, plan: SpikePlan, seed: number): Promise<SpikeTrial> {
  const p = ctx.params;
  const from = p.stress.spikeFrom;
  const to = p.stress.spikeTo;
  const S = plan.spikeAtMs;
  // Set from the measured capacity before the steady phase's first task needs them.
  let base = plan.nominalSmallRate;
  let steadyRate = Math.min(from * p.agents.ratePerAgent, 0.5 * base);
  let spikeRate = plan.multiple * base;
  const h = startLoad({
    targets: urlsOf(pool),
    rate: (t) => (t < plan.probeMs ? plan.probeRate : t < S ? steadyRate : spikeRate),
    durationMs: S + plan.boundMs + SPIKE_HOLD_MS,
    mode: 'tasks',
    mix: { io: 1, cpu: 0 },
    ioMs: plan.taskMs,
    timeoutMs: 10_000 + plan.taskMs,
    bucketMs: SPIKE_STEP_MS,
    seed,
    signal: ctx.signal,
  });
  let capacity = { measured: 0, offered: 0, admitted: 0 };
  let scaleReadyMs: number | null = null;
  let scaleError: string | undefined;
  let switchedAt = Number.POSITIVE_INFINITY;
  const timers = new Set<NodeJS.Timeout>();
  const at = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, Math.max(0, ms - h.now()));
    timers.add(t);
  };
  // 1. The capacity: the tasks of the capacity phase the idle pool admitted, per second (read once
  // they are done; one still open then counts as admitted).
  at(plan.probeMs + plan.taskMs + CAPACITY_GRACE_MS, () => {
    const a = admittedRate(h.run, 0, plan.probeMs);
    capacity = { measured: a.rate, offered: a.offered, admitted: a.admitted };
    if (a.rate > 0) base = Math.min(a.rate, plan.nominalSmallRate);
    steadyRate = Math.min(from * p.agents.ratePerAgent, 0.5 * base);
    spikeRate = plan.multiple * base;
  });
  // 3. The spike: the rate jumps (a function of schedule time) and the pool is asked to grow.
  let resolveScaled!: () => void;
  const scaled = new Promise<void>((r) => (resolveScaled = r));
  at(S, () => {
    const askedAt = h.now();
    pool.scaleTo(to).then(
      (agents) => {
        scaleReadyMs = h.now() - askedAt;
        try {
          h.setTargets(agents.map((a) => a.url));
        } catch (err) {
          scaleError = errorMessage(err);
        }
        switchedAt = h.now();
        resolveScaled();
      },
      (err: unknown) => {
        scaleError = errorMessage(err);
        resolveScaled();
      },
    );
  });
  // Watch the outcomes and end the schedule once the recovery has held long enough.
  let known = 0;
  const watcher = new Promise<void>((resolve) => {
    const check = (): void => {
      const run = h.run;
      while (known < run.n && run.outcome[known] !== OUTCOME.pending) known++;
      const knownUntil = known < run.n ? run.schedMs[known]! : h.now();
      const rec = cohortRecovery(run, S, knownUntil, SPIKE_HOLD_MS, SPIKE_RECOVERED_FRACTION);
      const settled = scaleError !== undefined || knownUntil >= switchedAt + SPIKE_HOLD_MS;
      if (rec !== null && settled) {
        h.stop();
        return resolve();
      }
      at(h.now() + 100, check);
    };
    at(S + SPIKE_HOLD_MS, check);
    void h.scheduleDone.then(() => resolve());
  });
  let run: LoadRun;
  try {
    await watcher;
    run = await h.done;
  } finally {
    for (const t of timers) clearTimeout(t);
  }
  // The pool must have finished growing before the next trial (or close); bounded.
  let guard: NodeJS.Timeout | undefined;
  const grown = await Promise.race([scaled.then(() => true), new Promise<boolean>((res) => (guard = setTimeout(() => res(false), SCALE_WAIT_MS)))]);
  clearTimeout(guard);
  if (!grown && scaleError === undefined) scaleError = `still not grown ${SCALE_WAIT_MS / 1000} s after the observation ended`;
  const end = run.scheduleEndMs;
  const recoveryMs = cohortRecovery(run, S, end, SPIKE_HOLD_MS, SPIKE_RECOVERED_FRACTION);
  const finalCap = admittedRate(run, 0, plan.probeMs);
  const servedSeries: (number | null)[] = [];
  const throughputSeries: number[] = [];
  for (let s = S; s + SPIKE_WINDOW_MS <= end; s += SPIKE_WINDOW_MS) {
    servedSeries.push(roundOrNull(servedPct(run, s, s + SPIKE_WINDOW_MS), 1));
    throughputSeries.push(round(run.throughput(s, s + SPIKE_WINDOW_MS), 1));
  }
  const lat = run.latencySummary(S, Number.POSITIVE_INFINITY);
  const observedUntil = Math.min(run.endMs, end + plan.taskMs);
  return {
    recoveryMs,
    censored: recoveryMs === null,
    scaleReadyMs,
    ...(scaleError ? { scaleError } : {}),
    capacity: { ...capacity, used: base, final: finalCap.rate, admittedAll: finalCap.admitted === finalCap.offered && finalCap.offered > 0 },
    steadyRate,
    spikeRate,
    preSpikeServedPct: servedPct(run, S - 1000, S),
    counts: { ...run.counts },
    lag: run.lag,
    latencyAfterSpikeMs: { p50: lat.p50, p95: lat.p95 },
    throughputBackMs: spikeRecoveryMs(run.okBuckets, SPIKE_STEP_MS, S, observedUntil, SPIKE_WINDOW_MS, SPIKE_HOLD_MS, SPIKE_RECOVERED_FRACTION * spikeRate),
    observedMs: end - S,
    servedSeries,
    throughputSeries,
  };
}
