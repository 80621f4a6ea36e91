/**
 * 6.3 Resource exhaustion (value: accepted-but-lost tasks, target <= 0).
 *
 * Offered load = `overloadFactor` × the pool's capacity throughput (agents × `capacity`
 * concurrent tasks ÷ task duration), through the system's own dispatch. I/O tasks are lengthened
 * when needed so that this rate stays within what one load generator drives on the machine
 * (`EXHAUSTION_MAX_RATE`). Value: accepted tasks never done (n = accepted tasks). Fails when
 * nothing was shed (no 429: the system just queued), when an agent crashed (gone from the pool or
 * not healthy), when an answer had a wrong result, or when a light probe load after the overload
 * is not served cleanly (no 429, no error for `PROBE_HOLD_MS`) within the bound. The recovery time
 * is in `details.recoverySeconds`.
 */
import type { Measurement } from '../../api/schema.ts';
import { AgentClient } from '../../agent/client.ts';
import { errorMessage } from '../../errors.ts';
import { EXHAUSTION_MAX_RATE } from '../../plan/deadlines.ts';
import type { Params } from '../../plan/params.ts';
import { round } from '../../stats.ts';
import { OUTCOME, startLoad, type LoadRun } from '../load/index.ts';
import { roundNumbers } from '../measure.ts';
import { lagWarning } from '../scalability.ts';
import type { BenchContext } from '../types.ts';
import { poolOptions, type StressHooks } from './common.ts';

/** The most tasks/s the exhaustion test offers, per mode (one generator on the runner's machine): plan/deadlines.ts holds it, for the step's deadline. */
export { EXHAUSTION_MAX_RATE } from '../../plan/deadlines.ts';
/** The probe after an overload must be served cleanly for this long. */
export const PROBE_HOLD_MS = 1000;

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
    // A saturated system may legitimately retry (the reference agent retries 429s for 30 s).
    const drainMs = plan.taskMs * 3 + 35_000;
    const h = startLoad({
      targets: urls,
      rate: plan.rate,
      durationMs: overloadMs,
      mode: 'dispatch',
      mix: { io: 1, cpu: 0 },
      ioMs: plan.taskMs,
      timeoutMs: 10_000,
      drainMs,
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
    if (c.lost > 0) {
      const d = run.lostDetail;
      reasons.push(
        `${c.lost} accepted task(s) never done within ${round(drainMs / 1000, 1)} s of the overload (${d.failed} failed, ${d.pending} still pending, ` +
          `${d.unknown} unknown to their coordinator, ${d.unreachable} with an unreachable coordinator)`,
      );
    }
    if (c.wrong > 0) reasons.push(`${c.wrong} task(s) answered done with a wrong result`);
    if (c.rejected === 0) reasons.push(`no load shedding: 0 of ${c.offered} tasks were answered 429 at ${p.stress.overloadFactor}x capacity`);
    if (crashed.length) reasons.push(`agent(s) crashed under overload: ${crashed.join(', ')}`);
    if (probe.recoveryMs === null) reasons.push(`did not recover: a light probe load (${probeRate} tasks/s) was not served without 429s or errors for ${PROBE_HOLD_MS} ms within ${round(probeBoundMs / 1000, 1)} s after the overload`);
    if (c.error + c.timeout > 0) ctx.log.warn('errors under overload', { errors: c.error, timeouts: c.timeout, kinds: run.errorKinds });
    return {
      id: '6.3',
      value: c.lost,
      samples: c.accepted,
      sampleUnit: 'tasks',
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
