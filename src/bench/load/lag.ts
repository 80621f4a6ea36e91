/**
 * The load generator lag guard: when a generator fell behind its own schedule by more than
 * `GENERATOR_LAG_BOUND`, the throughput it drove partly measured the runner, not the system, and a
 * test whose verdict rests on that throughput does not judge it as the system's: the result says so
 * (`lagDetails`, in `details.loadGeneratorLag`) and the test is Skipped with a reason starting
 * "load generator behind schedule: " (with `behindText`), never Passed and never Failed on that
 * figure.
 *
 * The lag is the generator's own send delay (`LoadRun.lagMs`): open loop (`generator.ts`), the
 * actual send time minus the scheduled one; closed loop (`closed.ts`), how late the loop's own
 * timers ran (the ramp, retries, the ticks that ask about tasks). Neither includes the time the
 * system takes to answer, so a slow system does not raise it: a generator lags when its event loop
 * is busy (its own work) or starved of CPU (the host's), not because answers are slow.
 *
 * **The bound.** Behind means a median lag over 20 ms, or a p99 over 500 ms:
 * - a median over 20 ms says most sends were late: the generator's loop was late at nearly every
 *   turn, saturated or starved, not a passing hiccup. A healthy generator on a 2-core machine
 *   sends within a millisecond (4.x steps of 2–16 agents: median 0.2–0.8 ms, with the host's load
 *   average at 6 to 15; the open-loop stress runs: 0.6–1.8 ms); 20 ms is over ten times that, and
 *   under the 33 ms to 4.1 s by which the generator had fallen behind in the run that motivated
 *   the guard (4.x steps then offered 2–5 × what the host could drive);
 * - a p99 over 500 ms says more than 1 % of the sends were half a second or more late: stalls that
 *   long move a share of the work out of the window it belongs to and bunch it into bursts.
 *   Healthy runs stay well under it (4.x: p99 at most 161 ms on a busy host, 2.5–41 ms on a
 *   calmer one; the busiest healthy open-loop run, 6.2 while its pool grows, 301 ms), while a
 *   host that starved the harness put a 4.x step's at 0.7–5.4 s.
 * A single pause (a GC, a scheduler hiccup) touches under 1 % of the sends and moves neither.
 *
 * **Where it applies.** 4.1–4.5 (`src/bench/scalability/judge.ts`): the value is a throughput
 * ratio, T(N) ÷ (N × T(1)), both counted through the closed loop. Not 6.1–6.3: their values are
 * what became of each task sent (served or not by scheduled time, lost, shed, the recovery time
 * of a probe), which the open loop still sends, late or not, and whose latencies include the lag
 * by design; they report it (`generatorLagMs`, a `warning` past `lagWarning`'s lower note
 * threshold, `src/bench/scalability/wait.ts`) rather than judge it.
 */
import { round } from '../../stats.ts';

/** The generator is behind its schedule when its lag's median or p99 is over these (ms); see the module comment. */
export const GENERATOR_LAG_BOUND = { p50Ms: 20, p99Ms: 500 } as const;

/** A generator's lag over some of its sends (ms), e.g. `LoadRun.lagBetween`; n = those sends. */
export interface LagFigures {
  n?: number;
  p50: number;
  p99: number;
  max: number;
}

/** Whether `lag` is past `GENERATOR_LAG_BOUND` (a run without sends is not behind). */
export function generatorBehind(lag: LagFigures): boolean {
  if (lag.n === 0) return false;
  return lag.p50 > GENERATOR_LAG_BOUND.p50Ms || lag.p99 > GENERATOR_LAG_BOUND.p99Ms;
}

/** What a result's details carry about the lag of one run: the figures, the bound and the verdict on it. */
export function lagDetails(lag: LagFigures): { n?: number; p50Ms: number; p99Ms: number; maxMs: number; boundP50Ms: number; boundP99Ms: number; behind: boolean } {
  return {
    ...(lag.n !== undefined ? { n: lag.n } : {}),
    p50Ms: round(lag.p50, 2),
    p99Ms: round(lag.p99, 2),
    maxMs: round(lag.max, 2),
    boundP50Ms: GENERATOR_LAG_BOUND.p50Ms,
    boundP99Ms: GENERATOR_LAG_BOUND.p99Ms,
    behind: generatorBehind(lag),
  };
}

/** The figures of a run that is behind, against the bound: "lag median X ms (bound 20), p99 Y ms (bound 500), max Z ms over n sends". */
export function behindText(lag: LagFigures): string {
  const b = GENERATOR_LAG_BOUND;
  const p50 = `median ${round(lag.p50, 1)} ms${lag.p50 > b.p50Ms ? ` > ${b.p50Ms}` : ` <= ${b.p50Ms}`}`;
  const p99 = `p99 ${round(lag.p99, 1)} ms${lag.p99 > b.p99Ms ? ` > ${b.p99Ms}` : ` <= ${b.p99Ms}`}`;
  return `send lag ${p50}, ${p99}, max ${round(lag.max, 1)} ms${lag.n !== undefined ? ` over ${lag.n} sends` : ''}`;
}
