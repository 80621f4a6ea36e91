/**
 * Category 6, stress: tests 6.1–6.3, each on a pool of its own (so a fault or an overload of one
 * test cannot leak into the next). `docs/scalability-stress.md` explains the method; in short:
 *
 * - 6.1 Sustained load (value: error rate %, target `sustainedErrorRatePct`):
 *   `sustainedAgents` agents under `sustainedAgents × ratePerAgent` tasks/s through the system's
 *   own dispatch (`POST /v1/dispatch`, 202 = accepted) for `sustainedMs`, after a short warm-up.
 *   Every accepted task is then looked up on its coordinator until it is `done` or the drain
 *   deadline passes. Error rate = tasks not served (errors, timeouts, 429s, lost, dropped) /
 *   offered. Fails with a reason when any accepted task was lost (a data-loss event) or when the
 *   p95 latency of the last window is worse than the first by more than `sustainedP95DriftPct`.
 *   Latency is end to end (scheduled send → done, from the coordinator's `acceptedAt`/`finishedAt`)
 *   when the agent reports them, else the time to acceptance (`details.latencyKind` says which).
 * - 6.2 Spike (value: seconds, target `spikeRecoverySeconds`): a pool of `spikeFrom` agents at
 *   `spikeFrom × ratePerAgent` tasks/s (`POST /v1/tasks`), then at one instant the load jumps to
 *   `spikeTo × ratePerAgent` and the pool is asked to scale to `spikeTo` (new agents get load as
 *   soon as they are ready). Value = time from the spike until the sliding throughput (ok answers
 *   in a 250 ms window, sliding by 50 ms) is back to >= 90 % of the new offered load, and stays
 *   there on average: every 1 s span from then to the end of the observation (which lasts at
 *   least `SPIKE_HOLD_MS` past the recovery and past the new agents taking load) averages >= 90 %
 *   too (see `spikeRecoveryMs`). Never recovered within the bound: null and a failure with the reason.
 * - 6.3 Resource exhaustion (value: accepted-but-lost tasks, target <= 0): offered load =
 *   `overloadFactor` × the pool's capacity throughput (agents × `capacity` concurrent tasks ÷
 *   task duration). I/O tasks are lengthened when needed so that this rate stays within what one
 *   load generator drives on the machine (`EXHAUSTION_MAX_RATE`). Fails when nothing was shed
 *   (no 429: the system just queued), when an agent crashed (gone from the pool or not healthy),
 *   or when a light probe load after the overload is not served cleanly (no 429, no error for
 *   `PROBE_HOLD_MS`) within the bound. The recovery time is in `details.recoverySeconds`.
 */
import { AgentClient } from '../agent/client.ts';
import type { Params } from '../plan/params.ts';
import type { Pool } from '../platform/types.ts';
import { OUTCOME, startLoad, type LoadRun } from './load/index.ts';
import { testsOf } from '../plan/catalogue.ts';
import { lagWarning, urlsOf } from './scalability.ts';
import { capSamples, describe as distribution, median, round } from '../stats.ts';
import type { BenchContext, CategoryRunner } from './types.ts';
import type { Measurement } from '../api/schema.ts';
import { errorMessage } from '../errors.ts';
import { failed, roundNumbers, roundOrNull } from './measure.ts';

/** Sliding window and its step for the spike's throughput (ms). */
export const SPIKE_WINDOW_MS = 250;
export const SPIKE_STEP_MS = 50;
/** Recovered means: every sliding window stays >= 90 % of the offered load for this long. */
export const SPIKE_HOLD_MS = 1000;
export const SPIKE_RECOVERED_FRACTION = 0.9;
/** The most tasks/s the exhaustion test offers, per mode (one generator on the runner's machine). */
export const EXHAUSTION_MAX_RATE = { quick: 400, full: 2000 } as const;
/** 6.1: how long after the schedule accepted tasks may take to be done before they count as lost. */
export const SUSTAINED_DRAIN_MS = 10_000;
/** The probe after an overload must be served cleanly for this long. */
export const PROBE_HOLD_MS = 1000;

export interface StressHooks {
  /** Called with each test's pool once it is ready (tests plant faults here). */
  onPool?: (test: '6.1' | '6.2' | '6.3', pool: Pool) => Promise<void> | void;
}

function poolOptions(p: Params, size: number, name: string) {
  return {
    size,
    capacity: p.agents.capacity,
    agentsPerProcess: p.agents.agentsPerProcess,
    autoHeal: false,
    name,
    gossipIntervalMs: p.agents.gossipIntervalMs,
    failureTimeoutMs: p.agents.failureTimeoutMs,
    defects: p.agents.defects,
  };
}

// ------------------------------------------------------------------------------------- 6.1

export async function sustained(ctx: BenchContext, hooks: StressHooks = {}): Promise<Measurement> {
  const p = ctx.params;
  const t0 = Date.now();
  const n = p.stress.sustainedAgents;
  ctx.progress('stress', `6.1: ${n} agents for ${round(p.stress.sustainedMs / 1000, 1)} s`);
  const pool = await ctx.platform.createPool(poolOptions(p, n, 'sust'));
  try {
    await hooks.onPool?.('6.1', pool);
    const urls = urlsOf(pool);
    const warmupMs = Math.min(2000, Math.round(p.stress.sustainedMs / 10));
    const rate = urls.length * p.agents.ratePerAgent;
    const run = await startLoad({
      targets: urls,
      rate,
      durationMs: warmupMs + p.stress.sustainedMs,
      mode: 'dispatch',
      mix: p.agents.taskMix,
      ioMs: p.agents.ioTaskMs,
      cpuRounds: p.agents.cpuTaskRounds,
      timeoutMs: 10_000,
      // At nominal load an accepted task has this long after the schedule to be done; past it,
      // it is lost (the contract's "never done" made operational). 6.3 allows more: there a
      // saturated system legitimately retries.
      drainMs: Math.max(SUSTAINED_DRAIN_MS, p.agents.ioTaskMs * 50),
      seed: 61,
      signal: ctx.signal,
    }).done;
    ctx.signal.throwIfAborted();
    return sustainedMeasurement(run, p, warmupMs, Date.now() - t0);
  } finally {
    await pool.close();
  }
}

/** The 6.1 measurement of a finished dispatch run (exported for tests). */
export function sustainedMeasurement(run: LoadRun, p: Params, warmupMs: number, durationMs: number): Measurement {
  const c = run.counts;
  const notServed = c.error + c.timeout + c.rejected + c.lost + c.dropped;
  const errorRate = c.offered > 0 ? (notServed / c.offered) * 100 : null;
  const latencyKind = run.hasE2e() ? 'e2e' : 'answer';
  const wins = run.windows(p.stress.windowMs, warmupMs, run.scheduleEndMs, latencyKind);
  const first = wins[0];
  const last = wins[wins.length - 1];
  let driftPct: number | null = null;
  if (first && last && wins.length >= 2 && first.p95 !== null && last.p95 !== null && first.p95 > 0) {
    driftPct = ((last.p95 - first.p95) / first.p95) * 100;
  }
  const reasons: string[] = [];
  if (c.lost > 0) {
    const d = run.lostDetail;
    reasons.push(
      `${c.lost} accepted task(s) never done (data-loss events: ${d.failed} failed, ${d.pending} still pending, ` +
        `${d.unknown} unknown to their coordinator, ${d.unreachable} with an unreachable coordinator)`,
    );
  }
  const driftTarget = p.targets.sustainedP95DriftPct;
  if (driftPct !== null && driftPct > driftTarget) {
    reasons.push(`p95 latency drifted +${round(driftPct, 1)} % from the first window (${round(first!.p95!, 2)} ms) to the last (${round(last!.p95!, 2)} ms), target < ${driftTarget} %`);
  }
  if (wins.length < 2) reasons.push(`too short for a drift check: ${wins.length} window(s) of ${p.stress.windowMs} ms`);
  else if (driftPct === null) reasons.push('no latency in the first or the last window (nothing was served), so drift is undefined');
  if (c.offered === 0) reasons.push('no task was offered');
  // Raw samples: the error rate of the tasks scheduled in each window.
  const raw = wins.map((w) => {
    const k = run.countsBetween(w.startMs, w.endMs);
    const offered = k.ok + k.rejected + k.error + k.timeout + k.lost + k.dropped;
    return offered > 0 ? ((offered - k.ok) / offered) * 100 : 0;
  });
  return {
    id: '6.1',
    value: errorRate === null ? null : round(errorRate, 4),
    samples: c.offered,
    ...(raw.length ? { raw: capSamples(raw), distribution: distribution(raw) } : {}),
    ...(reasons.length ? { fail: reasons.join('; ') } : {}),
    details: {
      agents: run.targets.length,
      offeredRate: round(c.offered / (run.scheduleEndMs / 1000), 2),
      sustainedSeconds: round((run.scheduleEndMs - warmupMs) / 1000, 3),
      warmupSeconds: round(warmupMs / 1000, 3),
      counts: { ...c },
      notServed,
      lost: c.lost,
      lostDetail: { ...run.lostDetail },
      ...(Object.keys(run.errorKinds).length ? { errorKinds: { ...run.errorKinds } } : {}),
      latencyKind,
      latencyMs: roundNumbers(run.latencySummary(warmupMs, Number.POSITIVE_INFINITY, latencyKind), 2),
      driftPct: roundOrNull(driftPct, 2),
      driftTargetPct: driftTarget,
      windowMs: p.stress.windowMs,
      windows: wins.map((w) => ({
        t: round(w.startMs - warmupMs, 0),
        offered: w.offered,
        ok: w.ok,
        thr: round(w.throughput, 2),
        p50: roundOrNull(w.p50),
        p95: roundOrNull(w.p95),
        rej: w.rejected,
        err: w.errors,
        lost: w.lost,
      })),
      drainSeconds: round((run.endMs - run.scheduleEndMs) / 1000, 3),
      generatorLagMs: roundNumbers(run.lag, 2),
      ...(lagWarning(run.lag) ? { warning: lagWarning(run.lag) } : {}),
    },
    durationMs,
  };
}

// ------------------------------------------------------------------------------------- 6.2

/**
 * Recovery after a spike, from per-bucket ok counts (`LoadRun.okBuckets`, `bucketMs` each).
 * Two scales: a short sliding window (`windowMs`, stepping one bucket) detects the return, and
 * every `holdMs` span after it must average the same rate, so a lucky window in a stalling system
 * (or a burst of stalled answers) is not a recovery, and a single short dip of an otherwise
 * steady system does not undo one.
 *
 * Recovered at window start s when: the window [s, s + windowMs) has >= `thresholdPerSec`, and
 * every span [t, t + holdMs) with s <= t and t + holdMs <= `observedUntilMs` has it on average
 * (at least one such span). Returns ms from the spike to the end of that first window (the
 * earliest moment the return could be seen), or null.
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

interface SpikeTrial {
  recoveryMs: number | null;
  scaleReadyMs: number | null;
  scaleError?: string;
  preSpikeThroughput: number;
  preSpikeOffered: number;
  newOffered: number;
  counts: LoadRun['counts'];
  lag: { p50: number; p99: number; max: number };
  latencyAfterSpikeMs: { p50: number | null; p95: number | null };
  observedMs: number;
  series: number[];
}

export async function spike(ctx: BenchContext, hooks: StressHooks = {}): Promise<Measurement> {
  const p = ctx.params;
  const t0 = Date.now();
  const from = p.stress.spikeFrom;
  const to = p.stress.spikeTo;
  const trials = p.mode === 'quick' ? 1 : 3;
  const steadyMs = p.mode === 'quick' ? 2000 : 5000;
  const boundMs = Math.max(10_000, 2 * p.targets.spikeRecoverySeconds * 1000);
  ctx.progress('stress', `6.2: spike ${from} -> ${to} agents`);
  const pool = await ctx.platform.createPool(poolOptions(p, from, 'spike'));
  const results: SpikeTrial[] = [];
  try {
    await hooks.onPool?.('6.2', pool);
    for (let k = 0; k < trials; k++) {
      if (k > 0) await pool.scaleTo(from);
      results.push(await spikeTrial(ctx, pool, from, to, steadyMs, boundMs, 620 + k));
      ctx.signal.throwIfAborted();
    }
  } finally {
    await pool.close();
  }
  const recovered = results.map((t) => t.recoveryMs).filter((v): v is number => v !== null);
  const reasons: string[] = [];
  const never = results.filter((t) => t.recoveryMs === null).length;
  if (never > 0) {
    reasons.push(
      `throughput did not return to >= ${SPIKE_RECOVERED_FRACTION * 100} % of the offered ${round(results[0]!.newOffered, 1)} tasks/s ` +
        `within ${round(boundMs / 1000, 1)} s of the spike in ${never} of ${results.length} trial(s)`,
    );
  }
  const scaleErrors = results.filter((t) => t.scaleError).map((t) => t.scaleError!);
  if (scaleErrors.length) reasons.push(`the pool did not scale to ${to}: ${scaleErrors[0]}`);
  const secs = recovered.map((v) => v / 1000);
  return {
    id: '6.2',
    value: never > 0 || secs.length === 0 ? null : round(median(secs), 3),
    samples: secs.length,
    ...(secs.length ? { raw: secs, distribution: distribution(secs) } : {}),
    ...(reasons.length ? { fail: reasons.join('; ') } : {}),
    details: {
      from,
      to,
      ratePerAgent: p.agents.ratePerAgent,
      windowMs: SPIKE_WINDOW_MS,
      stepMs: SPIKE_STEP_MS,
      holdMs: SPIKE_HOLD_MS,
      recoveredFraction: SPIKE_RECOVERED_FRACTION,
      boundSeconds: boundMs / 1000,
      trials: results.map((t) => ({
        recoverySeconds: t.recoveryMs === null ? null : round(t.recoveryMs / 1000, 3),
        scaleReadySeconds: t.scaleReadyMs === null ? null : round(t.scaleReadyMs / 1000, 3),
        preSpikeThroughput: round(t.preSpikeThroughput, 2),
        preSpikeOffered: t.preSpikeOffered,
        newOffered: t.newOffered,
        counts: t.counts,
        latencyAfterSpikeMs: { p50: roundOrNull(t.latencyAfterSpikeMs.p50), p95: roundOrNull(t.latencyAfterSpikeMs.p95) },
        generatorLagMs: roundNumbers(t.lag, 2),
        ...(lagWarning(t.lag) ? { warning: lagWarning(t.lag) } : {}),
        observedSeconds: round(t.observedMs / 1000, 3),
        // Sliding throughput (tasks/s) every 250 ms from the spike on.
        series: t.series,
        ...(t.scaleError ? { scaleError: t.scaleError } : {}),
      })),
    },
    durationMs: Date.now() - t0,
  };
}

async function spikeTrial(ctx: BenchContext, pool: Pool, from: number, to: number, steadyMs: number, boundMs: number, seed: number): Promise<SpikeTrial> {
  const p = ctx.params;
  const rate = p.agents.ratePerAgent;
  const newOffered = to * rate;
  const threshold = SPIKE_RECOVERED_FRACTION * newOffered;
  const h = startLoad({
    targets: urlsOf(pool),
    rate: (t) => (t < steadyMs ? from * rate : to * rate),
    durationMs: steadyMs + boundMs + SPIKE_HOLD_MS + SPIKE_WINDOW_MS,
    mode: 'tasks',
    mix: p.agents.taskMix,
    ioMs: p.agents.ioTaskMs,
    cpuRounds: p.agents.cpuTaskRounds,
    timeoutMs: 10_000,
    bucketMs: SPIKE_STEP_MS,
    seed,
    signal: ctx.signal,
  });
  let scaleReadyMs: number | null = null;
  let scaleError: string | undefined;
  let switchedAt = Number.POSITIVE_INFINITY;
  let stopTimer: NodeJS.Timeout | undefined;
  let spikeTimer: NodeJS.Timeout | undefined;
  let onAbort = (): void => undefined;
  const scaled = new Promise<void>((resolve) => {
    onAbort = () => {
      clearTimeout(spikeTimer);
      resolve();
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    spikeTimer = setTimeout(() => {
      // The spike: the schedule's rate has just jumped (it is a function of schedule time), and
      // the pool is asked to grow at the same instant.
      const askedAt = h.now();
      pool.scaleTo(to).then(
        (agents) => {
          scaleReadyMs = h.now() - askedAt;
          h.setTargets(agents.map((a) => a.url));
          switchedAt = h.now();
          resolve();
        },
        (err: unknown) => {
          scaleError = errorMessage(err);
          resolve();
        },
      );
    }, Math.max(0, steadyMs - h.now()));
  });
  // Watch the live counters and end the schedule once recovery has held long enough.
  const watcher = new Promise<void>((resolve) => {
    const check = (): void => {
      const now = h.now();
      if (now >= steadyMs) {
        const rec = spikeRecoveryMs(h.run.okBuckets, SPIKE_STEP_MS, steadyMs, now, SPIKE_WINDOW_MS, SPIKE_HOLD_MS, threshold);
        const settled = scaleError !== undefined || now >= switchedAt + SPIKE_HOLD_MS + SPIKE_WINDOW_MS;
        if (rec !== null && settled) {
          h.stop();
          return resolve();
        }
      }
      stopTimer = setTimeout(check, 100);
    };
    stopTimer = setTimeout(check, steadyMs);
    void h.scheduleDone.then(() => {
      clearTimeout(stopTimer);
      resolve();
    });
  });
  await watcher;
  const run = await h.done;
  clearTimeout(stopTimer);
  // The pool must have finished growing before the next trial (or close).
  let guard: NodeJS.Timeout | undefined;
  await Promise.race([scaled, new Promise((res) => (guard = setTimeout(res, 60_000)))]);
  clearTimeout(guard);
  ctx.signal.removeEventListener('abort', onAbort);
  const observedUntil = run.scheduleEndMs;
  const recoveryMs = spikeRecoveryMs(run.okBuckets, SPIKE_STEP_MS, steadyMs, observedUntil, SPIKE_WINDOW_MS, SPIKE_HOLD_MS, threshold);
  const series: number[] = [];
  for (let s = steadyMs; s + SPIKE_WINDOW_MS <= observedUntil; s += SPIKE_WINDOW_MS) {
    let c = 0;
    for (let b = Math.ceil(s / SPIKE_STEP_MS); b < Math.ceil((s + SPIKE_WINDOW_MS) / SPIKE_STEP_MS); b++) c += run.okBuckets[b] ?? 0;
    series.push(round((c * 1000) / SPIKE_WINDOW_MS, 1));
  }
  const pre = Math.max(0, steadyMs - 1000);
  const lat = run.latencySummary(steadyMs, Number.POSITIVE_INFINITY);
  return {
    recoveryMs,
    scaleReadyMs,
    ...(scaleError ? { scaleError } : {}),
    preSpikeThroughput: run.throughput(pre, steadyMs),
    preSpikeOffered: from * rate,
    newOffered,
    counts: { ...run.counts },
    lag: run.lag,
    latencyAfterSpikeMs: { p50: lat.p50, p95: lat.p95 },
    observedMs: observedUntil - steadyMs,
    series,
  };
}

// ------------------------------------------------------------------------------------- 6.3

/** Offered rate and task duration of the exhaustion test (exported for tests and docs). */
export function exhaustionPlan(p: Params, agents: number): { rate: number; taskMs: number; capacityRate: number } {
  const concurrent = agents * p.agents.capacity;
  const maxRate = EXHAUSTION_MAX_RATE[p.mode];
  let taskMs = Math.max(1, p.agents.ioTaskMs);
  if ((p.stress.overloadFactor * concurrent * 1000) / taskMs > maxRate) {
    taskMs = Math.ceil((p.stress.overloadFactor * concurrent * 1000) / maxRate);
  }
  const capacityRate = (concurrent * 1000) / taskMs;
  return { rate: p.stress.overloadFactor * capacityRate, taskMs, capacityRate };
}

export async function exhaustion(ctx: BenchContext, hooks: StressHooks = {}): Promise<Measurement> {
  const p = ctx.params;
  const t0 = Date.now();
  const n = p.stress.spikeFrom;
  const plan = exhaustionPlan(p, n);
  const overloadMs = Math.min(60_000, Math.max(3000, 2 * plan.taskMs));
  ctx.progress('stress', `6.3: ${round(plan.rate, 0)} tasks/s on ${n} agents (${p.stress.overloadFactor}x capacity)`);
  const pool = await ctx.platform.createPool(poolOptions(p, n, 'exh'));
  const client = new AgentClient({ maxSockets: 4, timeoutMs: 3000 });
  try {
    await hooks.onPool?.('6.3', pool);
    const before = pool.agents();
    const urls = before.map((a) => a.url);
    const h = startLoad({
      targets: urls,
      rate: plan.rate,
      durationMs: overloadMs,
      mode: 'dispatch',
      mix: { io: 1, cpu: 0 },
      ioMs: plan.taskMs,
      timeoutMs: 10_000,
      drainMs: plan.taskMs * 3 + 35_000,
      seed: 63,
      signal: ctx.signal,
    });
    await h.scheduleDone;
    // The overload is over: probe with a light load until it is served cleanly.
    const probeRate = Math.max(10, 2 * n);
    const probeBoundMs = plan.taskMs * 3 + 15_000;
    const probe = await runProbe(urls, probeRate, probeBoundMs, p, ctx.signal);
    const run = await h.done;
    ctx.signal.throwIfAborted();
    // Crashes: agents that left the pool, and agents that do not answer /healthz.
    const after = new Set(pool.agents().map((a) => a.id));
    const crashed: string[] = before.filter((a) => !after.has(a.id)).map((a) => `${a.id} (gone from the pool)`);
    await Promise.all(
      before
        .filter((a) => after.has(a.id))
        .map(async (a) => {
          try {
            const r = await client.healthz(a.url);
            if (r.status !== 200) crashed.push(`${a.id} (healthz ${r.status})`);
          } catch (err) {
            crashed.push(`${a.id} (healthz: ${errorMessage(err)})`);
          }
        }),
    );
    const c = run.counts;
    const reasons: string[] = [];
    if (c.rejected === 0) reasons.push(`no load shedding: 0 of ${c.offered} tasks were answered 429 at ${p.stress.overloadFactor}x capacity`);
    if (crashed.length) reasons.push(`agent(s) crashed under overload: ${crashed.join(', ')}`);
    if (probe.recoveryMs === null) reasons.push(`did not recover: a light probe load (${probeRate} tasks/s) was not served without 429s or errors for ${PROBE_HOLD_MS} ms within ${round(probeBoundMs / 1000, 1)} s after the overload`);
    if (c.error + c.timeout > 0) ctx.log.warn('errors under overload', { errors: c.error, timeouts: c.timeout, kinds: run.errorKinds });
    return {
      id: '6.3',
      value: c.lost,
      samples: c.accepted,
      ...(reasons.length ? { fail: reasons.join('; ') } : {}),
      details: {
        agents: n,
        capacityPerAgent: p.agents.capacity,
        taskMs: plan.taskMs,
        capacityRate: round(plan.capacityRate, 2),
        offeredRate: round(plan.rate, 2),
        overloadFactor: p.stress.overloadFactor,
        overloadSeconds: round(overloadMs / 1000, 3),
        counts: { ...c },
        shedPct: c.offered > 0 ? round((c.rejected / c.offered) * 100, 2) : null,
        lost: c.lost,
        lostDetail: { ...run.lostDetail },
        ...(Object.keys(run.errorKinds).length ? { errorKinds: { ...run.errorKinds } } : {}),
        acceptLatencyMs: roundNumbers(run.latencySummary(), 2),
        drainSeconds: round((run.endMs - run.scheduleEndMs) / 1000, 3),
        crashed,
        recoverySeconds: probe.recoveryMs === null ? null : round(probe.recoveryMs / 1000, 3),
        probe: { rate: probeRate, counts: probe.counts, boundSeconds: round(probeBoundMs / 1000, 1), holdMs: PROBE_HOLD_MS },
        generatorLagMs: roundNumbers(run.lag, 2),
        ...(lagWarning(run.lag) ? { warning: lagWarning(run.lag) } : {}),
      },
      durationMs: Date.now() - t0,
    };
  } finally {
    client.close();
    await pool.close();
  }
}

/**
 * A light `/v1/tasks` load from the end of an overload: returns the time from its start to the
 * scheduled send of the first task of the clean run (every task ok, covering `PROBE_HOLD_MS` and
 * every target at least once) that it ends with, or null within `boundMs`.
 */
async function runProbe(urls: string[], rate: number, boundMs: number, p: Params, signal: AbortSignal): Promise<{ recoveryMs: number | null; counts: LoadRun['counts'] }> {
  let recoveryMs: number | null = null;
  const h = startLoad({
    targets: urls,
    rate,
    durationMs: boundMs,
    mode: 'tasks',
    mix: { io: 1, cpu: 0 },
    ioMs: p.agents.ioTaskMs,
    timeoutMs: 5000,
    seed: 64,
    signal,
    onResult: () => {
      if (recoveryMs !== null) return;
      const rec = cleanSuffixStart(h.run, PROBE_HOLD_MS, urls.length);
      if (rec !== null) {
        recoveryMs = rec;
        h.stop();
      }
    },
  });
  const run = await h.done;
  if (recoveryMs === null) recoveryMs = cleanSuffixStart(run, PROBE_HOLD_MS, urls.length);
  return { recoveryMs, counts: { ...run.counts } };
}

/**
 * The scheduled time of the first task of a run of ok answers that spans `holdMs` of schedule
 * and at least `minTasks` tasks, with no failure after it (tasks still open end the run).
 */
export function cleanSuffixStart(run: LoadRun, holdMs: number, minTasks: number): number | null {
  // Tasks are in schedule order. Walk forward keeping the start of the current clean run.
  let start = -1;
  for (let i = 0; i < run.n; i++) {
    const o = run.outcome[i];
    if (o === OUTCOME.ok) {
      if (start < 0) start = i;
      if (i - start + 1 >= minTasks && run.schedMs[i]! - run.schedMs[start]! >= holdMs) return run.schedMs[start]!;
    } else if (o === OUTCOME.pending) {
      return null;
    } else start = -1;
  }
  return null;
}

// -------------------------------------------------------------------------------------

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
  }
  return out;
}
