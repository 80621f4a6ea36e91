/**
 * 6.1 Sustained load (value: error rate %, target `sustainedErrorRatePct`; every window judged).
 *
 * `sustainedAgents` agents under `sustainedAgents × ratePerAgent` tasks/s through the system's own
 * dispatch (`POST /v1/dispatch`) for `sustainedMs` after a warm-up whose tasks are left out of every
 * figure (their number is in the details). The warm-up lasts at least min(2 s, 10 %) and ends
 * once, over the last second, the load generator keeps its schedule (lag p50 <= 2 ms) and the
 * coordinators accept at once (time to the 202, p50 <= 5 ms), at most min(10 s, 50 %): the
 * platform's start of the pool's processes (and of a spare) can hold a busy host for seconds,
 * which is the harness's cost, not the system's. Every accepted task is then looked up on its
 * coordinator until it is `done` or the drain deadline passes.
 *
 * - Value: not served / offered × 100 over the measured tasks (n = those tasks); not served is
 *   every outcome but ok: errors, timeouts, 429s, lost, dropped, and answers whose result failed
 *   the harness's check.
 * - Every window is judged: sliding windows (`judgeWindowing`: 4 s, every 1 s; shorter runs: a
 *   quarter of the run, every quarter window) over the measured interval, tasks placed by
 *   scheduled time.
 *   A window fails on its error rate (>= the target), and on latency drift: the window's figure is
 *   the p95 over the agents (each agent as the coordinator it was sent to) of the agent's median
 *   latency, and it fails when it is more than `sustainedP95DriftPct` above both the run's
 *   reference, the median of every window's figure, and the median of the windows that started
 *   before it (for the first window: the reference alone). Drift is a rise: a cold system whose
 *   latency falls during its first seconds (its code warming) has no window above what came
 *   before, while a stall or a steady climb is above both. One agent's median moves only when most of its tasks in the window are
 *   slow, so a host's short scheduling hiccups (a few percent of the tasks) leave it in place,
 *   while a stall of a few agents for seconds moves it by orders of magnitude.
 * - A window in which the host starved the pool more than it usually did during the run is
 *   host-bound: reported, not judged for drift, and left out of the reference. Starved: the share
 *   of the time the pool's main threads wanted a CPU that they spent waiting for one
 *   (`/proc/PID/schedstat`; where the platform's processes are not readable, no window is
 *   host-bound) is at least 50 % (the host at least doubled their CPU work's time) and at least 5
 *   points above the run's median window; or, on a virtual machine, the hypervisor stole at least
 *   10 % of the host's CPUs (`/proc/stat`) and 5 points more than in the median window (stolen time
 *   slows every agent alike and shows in neither figure of schedstat). A host busy alike all run long stretches every window
 *   and the reference alike, so drift is still judged. A starved window is host-bound only when
 *   the slow-down was broad, as a host's is: its typical agent's median at least half the drift
 *   target above the typical agent's median over the run (`HOST_BOUND_TYPICAL_RISE`). A stall of a
 *   few agents leaves the typical agent where it was, so it is judged even when the host was busy
 *   then (the stalled process's catch-up after it resumes, or steal at the same moment, once hid a
 *   3 s stall of 4 of 20 agents on a CI machine).
 * - Any accepted task never done (a data-loss event) and any wrong result fails the test, warm-up
 *   included.
 */
import type { Measurement } from '../../api/schema.ts';
import { SUSTAINED_DRAIN_MS, WARMUP_MAX_MS } from '../../plan/deadlines.ts';
import type { Params } from '../../plan/params.ts';
import { capSamples, describe as distribution, median, percentile, round } from '../../stats.ts';
import { OUTCOME, startLoad, type LoadRun } from '../load/index.ts';
import { roundNumbers, roundOrNull } from '../measure.ts';
import { lagWarning, urlsOf } from '../scalability.ts';
import type { BenchContext } from '../types.ts';
import { firstAtOrAfter, poolOptions, SchedSampler, served, type HostReading, type StressHooks } from './common.ts';

/**
 * 6.1: how long after the schedule accepted tasks may take to be done before they count as lost
 * (`SUSTAINED_DRAIN_MS`), and the warm-up's longest (`WARMUP_MAX_MS`, and at most half the
 * measured duration): plan/deadlines.ts holds them, for the step's deadline.
 */
export { SUSTAINED_DRAIN_MS, WARMUP_MAX_MS } from '../../plan/deadlines.ts';
/** The measured interval's end is scheduled this much past `sustainedMs` (timer granularity). */
const STOP_MARGIN_MS = 10;

/** 6.1: judged windows are this long (at most a quarter of the run), every quarter window. */
export const JUDGE_WINDOW_MS = 4000;
/** 6.1: an agent's median in a window counts only with this many latencies. */
export const MIN_AGENT_TASKS = 5;
/** 6.1: the warm-up ends once, over the last second, the load generator's lag p50 is this low... */
export const WARMUP_LAG_MS = 2;
/** ...and the coordinators' acceptance (time to the 202) p50 is this low. */
export const WARMUP_ACCEPT_MS = 5;
/**
 * 6.1: a window is host-bound when the pool's main threads waited for a CPU at least this share of
 * the time they wanted one (ran + waited)...
 */
export const HOST_BOUND_WAIT_SHARE = 0.5;
/** ...and this much more than in the run's median window (both rules). */
export const HOST_BOUND_RISE = 0.05;
/**
 * 6.1: a window is also host-bound when the hypervisor stole at least this share of the host's
 * CPUs in it (and `HOST_BOUND_RISE` more than in the median window). Lower than the waiting share:
 * some waiting is the pool's normal state on a small host, stolen time is never the system's, and
 * a tenth of the CPUs taken from every agent alike moves latency by about the drift target.
 */
export const HOST_BOUND_STEAL_SHARE = 0.1;

/**
 * 6.1: a starved window is host-bound only when its typical agent's median rose at least this
 * share of the drift target above the typical agent's median over every window: a host that
 * starves the pool slows every agent, while a stall of a few agents leaves the typical one alone.
 */
export const HOST_BOUND_TYPICAL_RISE = 0.5;

/** The pool's processes' CPU over an interval (`SchedSampler.between`), or null where unknown. */
export type HostProbe = (fromMs: number, toMs: number) => HostReading | null;

export interface Warmup {
  ms: number;
  endedBy: 'settled' | 'cap';
  /** Over the warm-up's last second: the generator's lag p50 and the acceptance p50 (ms). */
  lagP50Ms: number | null;
  acceptP50Ms: number | null;
}

/** The warm-up's bounds: at least min(2 s, 10 %) of the measured duration, at most min(10 s, 50 %). */
export function warmupBounds(sustainedMs: number): { minMs: number; maxMs: number } {
  const minMs = Math.min(2000, Math.round(sustainedMs / 10));
  return { minMs, maxMs: Math.max(minMs, Math.min(WARMUP_MAX_MS, Math.round(sustainedMs / 2))) };
}

/**
 * Over the tasks scheduled in [fromMs, toMs) and sent so far: the load generator's lag p50, and
 * the p50 time to acceptance of those accepted (ms; null without any).
 */
function settling(run: LoadRun, fromMs: number, toMs: number): { lagP50Ms: number | null; acceptP50Ms: number | null } {
  const lags: number[] = [];
  const acc: number[] = [];
  for (let i = firstAtOrAfter(run, fromMs); i < run.n && run.schedMs[i]! < toMs; i++) {
    const o = run.outcome[i];
    if (o === OUTCOME.dropped) continue;
    lags.push(run.lagMs[i]!);
    if (o === OUTCOME.accepted || o === OUTCOME.ok) acc.push(run.doneMs[i]! - run.schedMs[i]!);
  }
  return { lagP50Ms: lags.length ? median(lags) : null, acceptP50Ms: acc.length ? median(acc) : null };
}

export async function sustained(ctx: BenchContext, hooks: StressHooks = {}): Promise<Measurement> {
  const p = ctx.params;
  const t0 = Date.now();
  const n = p.stress.sustainedAgents;
  ctx.progress('stress', `6.1: ${n} agents for ${round(p.stress.sustainedMs / 1000, 1)} s`);
  const pool = await ctx.platform.createPool(poolOptions(p, n, 'sust'));
  try {
    await hooks.onPool?.('6.1', pool);
    const names = new Map(pool.agents().map((a) => [a.url, a.id]));
    const urls = urlsOf(pool);
    const warm = warmupBounds(p.stress.sustainedMs);
    const h = startLoad({
      targets: urls,
      rate: urls.length * p.agents.ratePerAgent,
      durationMs: warm.maxMs + p.stress.sustainedMs,
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
    });
    // The pool's processes are this host's only on the local platform.
    const sched = new SchedSampler(ctx.platform.kind === 'local' ? pool.agents().map((a) => a.pid) : [], () => h.now());
    // The warm-up ends once the load generator keeps its schedule and the coordinators accept at
    // once (the host has absorbed the pool's start); the measured interval is `sustainedMs` from there.
    let warmup: Warmup = { ms: warm.maxMs, endedBy: 'cap', lagP50Ms: null, acceptP50Ms: null };
    let timer: NodeJS.Timeout | undefined;
    const check = (): void => {
      const now = h.now();
      if (now >= warm.maxMs) return;
      const st = settling(h.run, now - 1000, now);
      if (now >= warm.minMs && st.lagP50Ms !== null && st.lagP50Ms <= WARMUP_LAG_MS && st.acceptP50Ms !== null && st.acceptP50Ms <= WARMUP_ACCEPT_MS) {
        warmup = { ms: now, endedBy: 'settled', ...st };
        // A timer may fire up to a millisecond early (whole-ms timers); STOP_MARGIN_MS keeps the
        // measured interval at least `sustainedMs`, so every window of it fits (17 of 4 s in 20 s).
        timer = setTimeout(() => h.stop(), Math.max(0, now + p.stress.sustainedMs + STOP_MARGIN_MS - h.now()));
        return;
      }
      timer = setTimeout(check, 100);
    };
    timer = setTimeout(check, warm.minMs);
    let run: LoadRun;
    try {
      run = await h.done;
    } finally {
      clearTimeout(timer);
      sched.stop();
    }
    if (warmup.endedBy === 'cap') warmup = { ...warmup, ...settling(run, warm.maxMs - 1000, warm.maxMs) };
    ctx.signal.throwIfAborted();
    return sustainedMeasurement(run, p, warmup.ms, Date.now() - t0, { names, warmup: { ...warmup, minMs: warm.minMs, maxMs: warm.maxMs }, host: (f, t) => sched.between(f, t) });
  } finally {
    await pool.close();
  }
}

export interface JudgedWindow {
  /** ms since the run's time zero. */
  startMs: number;
  endMs: number;
  /** Tasks scheduled in the window, and those of them not served. */
  offered: number;
  notServed: number;
  errorRatePct: number | null;
  /** Agents with at least `MIN_AGENT_TASKS` latencies in the window (n of the figure). */
  agents: number;
  /** p95 over those agents of each agent's median latency (ms); null without any. */
  figureMs: number | null;
  /** The median over those agents of each agent's median: the typical agent (ms). */
  typicalMs: number | null;
  /** Every agent's median (target index, ms), highest first. */
  medians: { target: number; medianMs: number }[];
  /** The load generator's lag p50 over the window's tasks (ms): the runner's own host delay. */
  lagP50Ms: number | null;
  /** The pool's processes over the window (null where the platform's processes are not readable). */
  host: ReturnType<HostProbe>;
}

/** Judged window length and step for a measured interval of `spanMs`. */
export function judgeWindowing(spanMs: number): { windowMs: number; stepMs: number } {
  const windowMs = Math.max(1, Math.min(JUDGE_WINDOW_MS, Math.floor(spanMs / 4)));
  return { windowMs, stepMs: windowMs / 4 };
}

/**
 * Sliding windows over [fromMs, toMs) (each `windowMs` long, starting every `stepMs`, all inside
 * the interval), tasks placed by their scheduled time; see the module comment for the figure.
 * `kind` picks the latency: end to end (`e2e`, dispatch runs whose agents report timings) or
 * to the answer.
 */
export function judgedWindows(run: LoadRun, fromMs: number, toMs: number, windowMs: number, stepMs: number, kind: 'e2e' | 'answer', host?: HostProbe): JudgedWindow[] {
  const out: JudgedWindow[] = [];
  if (!(windowMs > 0 && stepMs > 0)) return out;
  const targets = Math.max(1, run.targets.length);
  for (let s = fromMs; s + windowMs <= toMs + 1e-6; s += stepMs) {
    const i0 = firstAtOrAfter(run, s);
    const i1 = firstAtOrAfter(run, s + windowMs);
    const per: number[][] = Array.from({ length: targets }, () => []);
    let bad = 0;
    const lags: number[] = [];
    for (let i = i0; i < i1; i++) {
      if (run.outcome[i] !== OUTCOME.dropped) lags.push(run.lagMs[i]!);
      if (!served(run, i)) {
        bad++;
        continue;
      }
      const v = kind === 'e2e' ? run.e2eMs[i]! : run.doneMs[i]! - run.schedMs[i]!;
      if (!Number.isNaN(v)) per[run.target[i]!]!.push(v);
    }
    const meds: { target: number; medianMs: number }[] = [];
    per.forEach((l, target) => {
      if (l.length >= MIN_AGENT_TASKS) meds.push({ target, medianMs: median(l) });
    });
    meds.sort((a, b) => b.medianMs - a.medianMs);
    const offered = i1 - i0;
    const sorted = meds.map((m) => m.medianMs).sort((a, b) => a - b);
    out.push({
      startMs: s,
      endMs: s + windowMs,
      offered,
      notServed: bad,
      errorRatePct: offered > 0 ? (bad / offered) * 100 : null,
      agents: meds.length,
      figureMs: sorted.length ? percentile(sorted, 95) : null,
      typicalMs: sorted.length ? percentile(sorted, 50) : null,
      medians: meds,
      lagP50Ms: lags.length ? median(lags) : null,
      host: host?.(s, s + windowMs) ?? null,
    });
  }
  return out;
}

export interface SustainedExtras {
  /** Target URL to agent id, for the reasons (default: the URLs). */
  names?: ReadonlyMap<string, string>;
  /** How the warm-up ended, for the details. */
  warmup?: Warmup & { minMs: number; maxMs: number };
  /** The pool's processes' CPU, for host-bound windows (default: none is). */
  host?: HostProbe;
}

/**
 * The 6.1 measurement of a finished dispatch run (exported for tests): the tasks scheduled from
 * `warmupMs` on are measured.
 */
export function sustainedMeasurement(run: LoadRun, p: Params, warmupMs: number, durationMs: number, extras: SustainedExtras = {}): Measurement {
  const { names, warmup, host } = extras;
  const c = run.counts;
  const from = warmupMs;
  const to = run.scheduleEndMs;
  const firstMeasured = firstAtOrAfter(run, from);
  const measured = run.countsBetween(from, Number.POSITIVE_INFINITY);
  const offered = run.n - firstMeasured;
  const notServed = offered - measured.ok;
  const errorRate = offered > 0 ? (notServed / offered) * 100 : null;
  const latencyKind = run.hasE2e() ? 'e2e' : 'answer';
  const { windowMs, stepMs } = judgeWindowing(to - from);
  const wins = judgedWindows(run, from, to, windowMs, stepMs, latencyKind, host);
  const shares = wins.map((w) => w.host?.waitShare).filter((v): v is number => v !== undefined);
  const bound = shares.length ? Math.max(HOST_BOUND_WAIT_SHARE, median(shares) + HOST_BOUND_RISE) : Number.POSITIVE_INFINITY;
  const steals = wins.map((w) => w.host?.stealShare).filter((v): v is number => v !== undefined);
  const stealBound = steals.length ? Math.max(HOST_BOUND_STEAL_SHARE, median(steals) + HOST_BOUND_RISE) : Number.POSITIVE_INFINITY;
  const starved = (w: JudgedWindow): boolean => w.host !== null && (w.host.waitShare >= bound || (w.host.stealShare ?? 0) >= stealBound);
  // A starved host slows the typical agent too: a window where only some agents were slow is
  // judged, whatever the host did (the stall of a few agents is then the finding).
  const typicalAll = median(wins.map((w) => w.typicalMs).filter((v): v is number => v !== null));
  const broad = (w: JudgedWindow): boolean => w.typicalMs !== null && typicalAll > 0 && (w.typicalMs / typicalAll - 1) * 100 >= HOST_BOUND_TYPICAL_RISE * p.targets.sustainedP95DriftPct;
  const isHostBound = (w: JudgedWindow): boolean => starved(w) && broad(w);
  const hostBound = wins.filter(isHostBound);
  // Drift is judged on the windows the host did not starve more than usual.
  const judged = wins.filter((w) => !isHostBound(w));
  const figures = judged.map((w) => w.figureMs).filter((v): v is number => v !== null);
  const reference = figures.length ? median(figures) : null;
  // Drift is a rise: a window is also held against the median of the judged windows that started
  // before it (none for the first), so latency that falls as a cold system warms is not drift.
  const earlierRef = new Map<JudgedWindow, number>();
  const seen: number[] = [];
  for (const w of judged) {
    if (seen.length) earlierRef.set(w, median(seen));
    if (w.figureMs !== null) seen.push(w.figureMs);
  }
  const rise = (fig: number, ref: number | undefined | null): number => (ref !== null && ref !== undefined && ref > 0 ? (fig / ref - 1) * 100 : Number.POSITIVE_INFINITY);
  const excess = (w: JudgedWindow): number | null =>
    reference !== null && reference > 0 && w.figureMs !== null ? Math.min(rise(w.figureMs, reference), rise(w.figureMs, earlierRef.get(w))) : null;
  const driftTarget = p.targets.sustainedP95DriftPct;
  const errTarget = p.targets.sustainedErrorRatePct;
  let worst: JudgedWindow | undefined;
  for (const w of judged) if (excess(w) !== null && (worst === undefined || excess(w)! > excess(worst)!)) worst = w;
  const driftPct = worst ? excess(worst) : null;
  const above = judged.filter((w) => (excess(w) ?? 0) > driftTarget);
  const worstErr = wins.reduce<JudgedWindow | undefined>((a, w) => (w.errorRatePct !== null && (a === undefined || w.errorRatePct > a.errorRatePct!) ? w : a), undefined);
  const nameOf = (target: number): string => {
    const url = run.targets[target] ?? String(target);
    return names?.get(url) ?? url;
  };
  const span = (w: JudgedWindow): string => `${round((w.startMs - from) / 1000, 2)}–${round((w.endMs - from) / 1000, 2)} s`;

  const reasons: string[] = [];
  if (c.lost > 0) {
    const d = run.lostDetail;
    reasons.push(
      `${c.lost} accepted task(s) never done (data-loss events: ${d.failed} failed, ${d.pending} still pending, ` +
        `${d.unknown} unknown to their coordinator, ${d.unreachable} with an unreachable coordinator)`,
    );
  }
  if (c.wrong > 0) reasons.push(`${c.wrong} task(s) answered done with a wrong result`);
  if (driftPct !== null && driftPct > driftTarget && worst) {
    const limit = Math.max(reference!, earlierRef.get(worst) ?? 0) * (1 + driftTarget / 100);
    const slowAgents = worst.medians.filter((m) => m.medianMs > limit);
    const slow = worst.medians
      .slice(0, 3)
      .map((m) => `${nameOf(m.target)} ${round(m.medianMs, 1)} ms`)
      .join(', ');
    const typicalRef = median(judged.map((w) => w.typicalMs).filter((v): v is number => v !== null));
    const lag = worst.lagP50Ms === null ? '' : `; the load generator's own lag p50 there: ${round(worst.lagP50Ms, 1)} ms`;
    const where =
      slowAgents.length <= worst.agents / 2
        ? `only ${slowAgents.length} of the ${worst.agents} agents were above ${round(limit, 1)} ms there (a stall or slow-down of those agents: ${slow})`
        : `${slowAgents.length} of the ${worst.agents} agents were above ${round(limit, 1)} ms there, the typical agent at ${round(worst.typicalMs!, 1)} ms ` +
          `against ${round(typicalRef, 1)} ms (a slow-down of the whole system, or of the host when the generator's lag rose too${lag}; slowest: ${slow})`;
    reasons.push(
      `p95 latency drifted +${round(driftPct, 1)} % in the window ${span(worst)} after warm-up: the p95 over its ${worst.agents} agents of each agent's median ` +
        `${latencyKind === 'e2e' ? 'end-to-end' : 'acceptance'} latency was ${round(worst.figureMs!, 1)} ms against the run's reference ${round(reference!, 1)} ms ` +
        `(the median over ${figures.length} windows of ${round(windowMs / 1000, 2)} s, one every ${round(stepMs / 1000, 2)} s)` +
        `${earlierRef.has(worst) ? ` and ${round(earlierRef.get(worst)!, 1)} ms over the windows before it` : ''}, target < ${driftTarget} % against both; ` +
        `${above.length} of ${judged.length} judged windows above it${hostBound.length ? ` (${hostBound.length} more host-bound)` : ''}; ${where}`,
    );
  }
  if (worstErr && worstErr.errorRatePct! >= errTarget) {
    reasons.push(
      `the window ${span(worstErr)} after warm-up did not serve ${worstErr.notServed} of its ${worstErr.offered} tasks (${round(worstErr.errorRatePct!, 2)} %), ` +
        `target < ${errTarget} % in every window`,
    );
  }
  if (figures.length < 3) reasons.push(`too short for a drift check: ${figures.length} judged window(s) with latencies (3 needed)`);
  if (offered === 0) reasons.push('no task was offered after the warm-up');
  // Raw samples: the error rate of the tasks scheduled in each judged window.
  const raw = wins.map((w) => w.errorRatePct ?? 0);
  const series = run.windows(p.stress.windowMs, from, to, latencyKind);
  // What the harness checked of the answers (the load generator's own summary of it).
  const checks = run.summary().checks;
  return {
    id: '6.1',
    value: errorRate === null ? null : round(errorRate, 4),
    samples: offered,
    sampleUnit: 'tasks',
    ...(raw.length ? { raw: capSamples(raw), distribution: distribution(raw) } : {}),
    ...(reasons.length ? { fail: reasons.join('; ') } : {}),
    details: {
      agents: run.targets.length,
      offeredRate: round(c.offered / (run.scheduleEndMs / 1000), 2),
      sustainedSeconds: round((to - from) / 1000, 3),
      warmupSeconds: round(warmupMs / 1000, 3),
      ...(warmup
        ? {
            warmup: {
              minSeconds: round(warmup.minMs / 1000, 3),
              maxSeconds: round(warmup.maxMs / 1000, 3),
              // 'cap': the host never settled for a second before the cap (a busy host).
              endedBy: warmup.endedBy,
              generatorLagP50Ms: roundOrNull(warmup.lagP50Ms, 2),
              acceptP50Ms: roundOrNull(warmup.acceptP50Ms, 2),
            },
          }
        : {}),
      // Tasks of the warm-up: offered and checked, but in no figure (lost ones still fail the test).
      warmupTasks: firstMeasured,
      measuredTasks: offered,
      measuredCounts: { ok: measured.ok, rejected: measured.rejected, error: measured.error, timeout: measured.timeout, lost: measured.lost, dropped: measured.dropped, wrong: measured.wrong },
      counts: { ...c },
      notServed,
      lost: c.lost,
      lostDetail: { ...run.lostDetail },
      ...(Object.keys(run.errorKinds).length ? { errorKinds: { ...run.errorKinds } } : {}),
      ...(checks ? { checks } : {}),
      latencyKind,
      latencyMs: roundNumbers(run.latencySummary(from, Number.POSITIVE_INFINITY, latencyKind), 2),
      judged: {
        windowMs,
        stepMs,
        statistic: 'p95 over the agents of each agent median latency (per window), against the median over the windows and over the windows before it',
        referenceMs: roundOrNull(reference),
        driftPct: roundOrNull(driftPct, 2),
        driftTargetPct: driftTarget,
        windowsAboveTarget: above.length,
        windowsHostBound: hostBound.length,
        // A window is host-bound at this share of waiting (see the module comment).
        hostBoundWaitShare: Number.isFinite(bound) ? round(bound, 3) : null,
        hostBoundStealShare: Number.isFinite(stealBound) ? round(stealBound, 3) : null,
        worstErrorRatePct: worstErr ? roundOrNull(worstErr.errorRatePct, 3) : null,
        errorRateTargetPct: errTarget,
        // t: seconds after warm-up; fig: the window's figure (ms); typ: its typical agent's median
        // (ms); n: its agents; err: % not served; lag: the load generator's lag p50 (ms); ran,
        // waited: CPUs the pool's main threads ran and waited for; stolen: the host's CPUs the
        // hypervisor took; hostBound: not judged for drift.
        windows: wins.map((w) => ({
          t: round((w.startMs - from) / 1000, 2),
          fig: roundOrNull(w.figureMs),
          typ: roundOrNull(w.typicalMs),
          n: w.agents,
          err: roundOrNull(w.errorRatePct, 3),
          lag: roundOrNull(w.lagP50Ms),
          ...(w.host ? { ran: round(w.host.ranCpus, 3), waited: round(w.host.waitedCpus, 3) } : {}),
          ...(w.host?.stolenCpus !== undefined ? { stolen: round(w.host.stolenCpus, 3) } : {}),
          ...(isHostBound(w) ? { hostBound: true } : {}),
        })),
      },
      driftPct: roundOrNull(driftPct, 2),
      driftTargetPct: driftTarget,
      windowMs: p.stress.windowMs,
      // Fixed windows of `stress.windowMs` (t: ms after warm-up), task latencies by answer time.
      windows: series.map((w) => ({
        t: round(w.startMs - from, 0),
        offered: w.offered,
        ok: w.ok,
        thr: round(w.throughput, 2),
        p50: roundOrNull(w.p50),
        p95: roundOrNull(w.p95),
        p99: roundOrNull(w.p99),
        rej: w.rejected,
        err: w.errors,
        lost: w.lost,
        wrong: w.wrong,
      })),
      drainSeconds: round((run.endMs - run.scheduleEndMs) / 1000, 3),
      ...(run.e2eClamped > 0 ? { e2eClamped: run.e2eClamped } : {}),
      generatorLagMs: roundNumbers(run.lag, 2),
      ...(lagWarning(run.lag) ? { warning: lagWarning(run.lag) } : {}),
    },
    durationMs,
  };
}
