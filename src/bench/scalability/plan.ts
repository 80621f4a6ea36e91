/**
 * The plan of the scalability steps (4.1–4.5): the task mix, the timings of one saturation
 * measurement, how many tasks are kept outstanding and which agents the tasks enter through.
 *
 * - **Tasks.** IO tasks of `taskMs` = `agents.stepSeconds` (4 s quick, 20 s full): an agent runs at
 *   most `capacity` tasks at once (it answers 429 beyond), so a pool of N agents completes at most
 *   N × capacity ÷ taskMs tasks per second, and long IO tasks keep that rate within what one
 *   harness and the host can drive (quick: 16 tasks/s for one agent, 1024/s for 64). One task in
 *   `CPU_EVERY` is a CPU task (`cpuTaskRounds` rounds) whose digest the harness recomputes: the
 *   check that the work was really done. The configured `agents.taskMix`, `ioTaskMs` and
 *   `ratePerAgent` do not apply to 4.x (they are the other categories' offered load).
 * - **Timings.** The slots start evenly over one task length (the ramp), so completions are spread
 *   evenly over time; the measured window starts at 1.1 task lengths (every slot has completed a
 *   task and started the next) and lasts `stepSeconds`. Everything before it is warm-up.
 * - **Outstanding.** `ceil(1.05 × N × capacity)` tasks: more than the pool can run at once, so a
 *   working pool refuses some (429) and is saturated.
 * - **Coordinators.** `round(N / 16)` agents, 1 to 4, take every task (`/v1/dispatch`); the system's
 *   own dispatch must spread them. A coordinator that runs everything itself caps the pool at
 *   C × capacity ÷ taskMs, i.e. an efficiency of C ÷ N (at most 25 % here). They are chosen among
 *   the agents that joined for this step, one per host process where the processes allow, so that
 *   a coordinator carries no backlog from an earlier step.
 */
import type { AgentHandle } from '../../platform/types.ts';
import type { Params } from '../../plan/params.ts';

/** One task in this many is a CPU task (interleaved evenly). */
export const CPU_EVERY = 64;
/** Outstanding tasks per unit of the pool's capacity. */
export const OVERSUBSCRIPTION = 1.05;

export interface ScalingPlan {
  /** IO task length (ms). */
  taskMs: number;
  cpuFraction: number;
  cpuRounds: number;
  /** Tasks an agent runs at once (the pool's configured capacity). */
  capacity: number;
  /** The slots start evenly over this (ms). */
  rampMs: number;
  /** The measured window: [windowStartMs, windowStartMs + windowMs) of the loop's clock. */
  windowStartMs: number;
  windowMs: number;
  /** After the window, how long the harness keeps asking about the tasks still in the system (ms). */
  drainMs: number;
  /** Completion query interval (ms). */
  pollMs: number;
  /** 429s in a row a slot retries by itself before it waits for a probe (`closed.ts`). */
  quickRetries: number;
}

export function scalingPlan(p: Params): ScalingPlan {
  const taskMs = Math.round(p.agents.stepSeconds * 1000);
  return {
    taskMs,
    cpuFraction: 1 / CPU_EVERY,
    cpuRounds: p.agents.cpuTaskRounds,
    capacity: p.agents.capacity,
    rampMs: taskMs,
    windowStartMs: Math.round(taskMs * 1.1),
    windowMs: taskMs,
    drainMs: taskMs + 2000,
    pollMs: 50,
    quickRetries: 2,
  };
}

/** Tasks kept outstanding for a pool of n agents. */
export function outstandingFor(n: number, capacity: number): number {
  return Math.ceil(OVERSUBSCRIPTION * n * capacity);
}

/** The saturated throughput of a perfect pool of n agents (tasks/s): n × capacity ÷ task length. */
export function capacityRate(n: number, plan: ScalingPlan): number {
  return (n * plan.capacity * 1000) / plan.taskMs;
}

/** How many coordinators a pool of n agents gets: round(n / 16), 1 to 4. */
export function coordinatorCount(n: number): number {
  return Math.max(1, Math.min(4, Math.round(n / 16)));
}

/**
 * The coordinators of a step: `count` agents, preferring those not in `earlier` (the agents of the
 * previous step) and, among them, one per host process (`pid`), in the pool's order.
 */
export function pickCoordinators(agents: readonly AgentHandle[], earlier: ReadonlySet<string>, count: number): AgentHandle[] {
  const fresh = agents.filter((a) => !earlier.has(a.id));
  const order = [...fresh, ...agents.filter((a) => earlier.has(a.id))];
  const out: AgentHandle[] = [];
  const pids = new Set<number>();
  for (const a of order) {
    if (out.length >= count) break;
    if (a.pid > 0 && pids.has(a.pid)) continue;
    pids.add(a.pid);
    out.push(a);
  }
  for (const a of order) {
    if (out.length >= count) break;
    if (!out.includes(a)) out.push(a);
  }
  return out;
}
