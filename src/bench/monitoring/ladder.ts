/**
 * The rate ladder of tests 3.3 (dashboard update rate) and 3.5 (metrics volume): a load raised
 * step by step until the system falls behind, and the highest step it kept up with.
 *
 * `climb` runs steps at levels `start`, `start × 4`, `start × 16`... (a coarse ×4 ladder) up to
 * `max`. At the first step that is not kept it stops and, when the last kept level is 4× below,
 * tries the level between them (×2): the figure's resolution is a factor of 2. When the lowest
 * step already falls behind for lateness alone (nothing lost), it steps down (÷4) to `min`, so a
 * slow but complete system gets a figure rather than a failure at an arbitrary first rate. A step
 * that loses updates ends the ladder: a path that loses updates is not complete at any rate.
 *
 * A step that falls behind while the runner itself was saturated (its event loop busy at least
 * RUNNER_SATURATED of the step, the ELU of `performance.eventLoopUtilization`) is the harness's
 * ceiling, not the system's: the ladder says so and the value is a lower bound. So is the top of
 * the ladder reached without falling behind.
 */
import { performance } from 'node:perf_hooks';
import { round } from '../../stats.ts';

/**
 * A step's length: at least STEP_MIN_MS, and `observeSeconds` (the time the category observes
 * the dashboard and the volume: quick 4 s, full 30 s) over STEPS_PER_OBSERVE, so a full run
 * spends longer at each rate (quick 1 s, full 5 s).
 */
export const STEP_MIN_MS = 1000;
const STEPS_PER_OBSERVE = 6;
export function stepLengthMs(observeSeconds: number): number {
  return Math.max(STEP_MIN_MS, Math.round((observeSeconds * 1000) / STEPS_PER_OBSERVE));
}

/** The runner's event loop busy this fraction of a step or more: the harness is the bottleneck. */
export const RUNNER_SATURATED = 0.9;

/** How busy the runner was over a step: its event-loop utilisation and CPU (fraction of one core). */
export interface RunnerLoad {
  elu: number;
  cpuCores: number;
}

/** Starts measuring the runner's load; the returned function reads it over the time since. */
export function runnerLoad(): () => RunnerLoad {
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  return () => {
    const elu = performance.eventLoopUtilization(elu0).utilization;
    const cpu = process.cpuUsage(cpu0);
    const wallUs = Math.max(1, (performance.now() - t0) * 1000);
    return { elu: round(elu, 3), cpuCores: round((cpu.user + cpu.system) / wallUs, 3) };
  };
}

/** The reason line of a step run with the runner saturated. */
export function saturated(r: RunnerLoad): string {
  return `the runner's event loop was busy ${Math.round(r.elu * 100)} % of the step, on ${r.cpuCores} cores of CPU (the runner, or the host it shares with the agents, was saturated)`;
}

/** Why a step was not kept. */
export type Behind = 'lost' | 'late' | 'harness';

export interface StepOutcome {
  /** The level asked for (updates/s, scrapes/s per target). */
  level: number;
  /** The figure this step achieved (the test's value when it is the highest kept step). */
  rate: number;
  kept: boolean;
  /** Set when not kept: lost updates, late or missed ones, or the harness could not drive it. */
  behind?: Behind;
  /** One line for the report: what fell behind and by how much. */
  why?: string;
}

export interface ClimbOptions<S extends StepOutcome> {
  start: number;
  /** The ladder's top (the harness's ceiling): reached without falling behind, the value is a lower bound. */
  max: number;
  /** The lowest level tried when the start is already late. */
  min: number;
  /** A level below `start` already known to be kept (measured elsewhere): refined against, never stepped under. */
  keptBelow?: number;
  step(level: number): Promise<S>;
  signal: AbortSignal;
}

export interface ClimbResult<S extends StepOutcome> {
  steps: S[];
  /** The highest kept step (by rate), or null when none was kept. */
  best: S | null;
  /** The step that fell behind above `best` (or the lowest one, when none was kept). */
  fellBehind: S | null;
  /** Why the value is only a lower bound (the harness's ceiling), or null when the system fell behind. */
  lowerBound: string | null;
}

/** Runs the ladder (see the module comment). */
export async function climb<S extends StepOutcome>(o: ClimbOptions<S>): Promise<ClimbResult<S>> {
  const steps: S[] = [];
  let best: S | null = null;
  let behind: S | null = null;
  const run = async (level: number): Promise<S> => {
    if (o.signal.aborted) throw new Error('cancelled');
    const s = await o.step(level);
    steps.push(s);
    if (s.kept && (!best || s.rate > best.rate)) best = s;
    return s;
  };
  let level = o.start;
  let topReached = false;
  for (;;) {
    const s = await run(level);
    if (!s.kept) {
      behind = s;
      break;
    }
    if (level >= o.max) {
      topReached = true;
      break;
    }
    level = Math.min(o.max, level * 4);
  }
  const b = behind as S | null;
  if (b && b.behind !== 'lost') {
    const keptLevel = (best as S | null)?.level ?? o.keptBelow;
    if (keptLevel !== undefined && b.level / keptLevel > 2.5) {
      // Refine between the last kept level and the one that fell behind.
      const mid = await run(keptLevel * 2);
      if (!mid.kept) behind = mid;
    } else if (keptLevel === undefined && b.behind === 'late') {
      // Already late at the start: step down until a level is kept or `min` is passed.
      for (let l = level / 4; l >= o.min; l /= 4) {
        const s = await run(l);
        if (s.kept) break;
        behind = s;
        if (s.behind !== 'late') break;
      }
    }
  }
  const fell = behind as S | null;
  let lowerBound: string | null = null;
  if (topReached) lowerBound = `the ladder's top (${o.max}) was kept: the harness goes no higher, so the value is a lower bound`;
  else if (fell?.behind === 'harness') lowerBound = `the harness reached its own ceiling first (${fell.why ?? 'runner saturated'}), so the value is a lower bound`;
  return { steps, best, fellBehind: fell, lowerBound };
}
