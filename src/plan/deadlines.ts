/**
 * Each step's deadline (`Step.timeoutMs`: the runner Job's `activeDeadlineSeconds` in a cluster,
 * the local executor's kill timer), derived from the plan's own bounded waits. docs/operator.md
 * "Step deadlines" has the table per step, quick and full.
 *
 * What a deadline must cover: a step killed by its deadline loses the results it had not written,
 * so the deadline is the step's worst case, not its usual time. `stepDeadline(category, p)` sums,
 * per test, the longest time its bench code lets it run: its trial counts × its own deadlines,
 * drains, poll waits and durations from the params (each part names the bench file whose waits it
 * covers); plus an allowance per agent pool (opened, grown to each size, closed: `grow`); plus
 * the runner's own start and result write; plus a margin. The parts sum to the total.
 *
 * Decisions:
 * - Explicit waits count at their full bound on every trial (a trial may end just inside one).
 * - A wait the bench bounds only per request (a loop of requests each with the client's timeout,
 *   a prediction loop bounded by a count) gets a documented allowance per request or iteration,
 *   not the client's timeout for every request: that product (thousands of 10 s timeouts) is no
 *   deadline at all, and a request that does time out ends its test (it throws).
 * - A pool's growth on a cluster: a fixed part (the founder pod, seeds written, replicas patched)
 *   and AGENT_START_MS per added agent, never more than the Kubernetes platform's own readiness
 *   wait (its `scaleTo` throws after KUBE_READY_TIMEOUT_MS, so no growth takes longer).
 * - The sum is clamped to [DEADLINE_FLOOR_MS, DEADLINE_CAP_MS]; the clamp is a part of its own,
 *   so the parts still sum to the total.
 *
 * One definition per bound: plan/ (floor 3) may not import bench/ or platform/ (floor 4), so a
 * bound that a bench waits on and this module counts is defined HERE and the bench imports it
 * (bench/ imports plan/: down the floors), each with the bench file that uses it; a bench that
 * changes its bound changes the deadline with it. What stays a copy, each marked where it is:
 * the functions that mirror a bench's (fallbackDeadlineMs, ladderStepMs, warmupMaxMs,
 * spikeTiming, exhaustionTaskMs), the Kubernetes platform's readiness wait (a default of its
 * public `readyTimeoutMs` option) and the driver query's timeout in memory.ts;
 * test/unit/plan-deadlines.test.ts checks them against the benches. Some literals inside the part
 * functions below are still a bench's (counts and slacks, named in the part's `covers` with their
 * file), not yet checked. The rest are allowances of this module's own (pools, slow requests,
 * predictions).
 */
import type { Category } from '../api/schema.ts';
import type { Params } from './params.ts';

/** One part of a step's deadline: what it covers and how long it allows. */
export interface DeadlinePart {
  name: string;
  ms: number;
  covers: string;
}

export interface StepDeadline {
  totalMs: number;
  parts: DeadlinePart[];
}

// ---------------------------------------------------------------------------------------------
// The clamp, the margin, the runner

/** No step gets less: today's base before this module (a step that starts, measures and writes). */
export const DEADLINE_FLOOR_MS = 180_000;
/** No step gets more: 6 h keeps activeDeadlineSeconds sane; a spec asking for more is cut here. */
export const DEADLINE_CAP_MS = 6 * 3_600_000;
/** The margin: 10 % of the sum, at least 30 s (scheduling jitter, GC pauses, slow API calls). */
export const MARGIN_FRACTION = 0.1;
export const MARGIN_MIN_MS = 30_000;
/** The runner process: start, read its params, write its result ConfigMap (or file). */
export const RUNNER_OVERHEAD_MS = 30_000;

// ---------------------------------------------------------------------------------------------
// Agent pools (src/platform/kubernetes/index.ts, src/platform/kubernetes/manifests.ts)

/** `readyTimeoutMs` default of the Kubernetes platform (a copy of a public option's default): one `scaleTo` throws after it. */
export const KUBE_READY_TIMEOUT_MS = 180_000;
/** Opening a pool: the Deployment created, its informer synced. */
export const POOL_OPEN_MS = 10_000;
/** Closing or shrinking a pool: pods deleted, gone (terminationGracePeriodSeconds 10, plus the API's propagation). */
export const POOL_CLOSE_MS = 20_000;
/** A growth's fixed part: the founder pod started and ready (readiness probe every 1 s), seeds written. */
export const GROW_BASE_MS = 15_000;
/** Per added agent on a cluster: a pod scheduled, started, ready, joined (the cap is KUBE_READY_TIMEOUT_MS). */
export const AGENT_START_MS = 1_000;

/** Allowance for growing a pool from `from` to `to` agents (0 when it does not grow). */
export function grow(from: number, to: number): number {
  if (to <= from) return 0;
  return Math.min(KUBE_READY_TIMEOUT_MS, GROW_BASE_MS + AGENT_START_MS * (to - from));
}

/** A pool opened, grown from nothing to `n`, and closed. */
export function poolOnce(n: number): number {
  return POOL_OPEN_MS + grow(0, n) + POOL_CLOSE_MS;
}

// ---------------------------------------------------------------------------------------------
// Requests bounded only by their client's timeout

/** Allowance per request of a loop bounded per request (answered slowly; one that times out ends its test). */
export const SLOW_REQUEST_MS = 250;

// ---------------------------------------------------------------------------------------------
// Category 1 (src/bench/distributed.ts, src/bench/distributed/*.ts)

/** The deadline of `until` in formPool and in 1.1/1.2 (common.ts and formation.ts import it). */
export const FORMATION_WAIT_MS = 60_000;
/** The category's AgentClient timeout (distributed.ts imports it): `until`'s last probe may run this long past its deadline. */
export const DIST_REQUEST_TIMEOUT_MS = 10_000;
/** 1.3's sampling budget and its ping of LONG round trips (latency.ts imports them as BUDGET_MS and LONG). */
export const LATENCY_BUDGET_MS = 4_000;
export const LATENCY_LONG = 11;
/** 1.4: warm-up writes, writes before the budget counts, the budget (sync.ts imports them). */
export const SYNC_WARMUP_WRITES = 2;
export const SYNC_MIN_WRITES = 10;
export const SYNC_BUDGET_MS = 6_000;
/**
 * 1.5: the warm-up and measured batches at most, the quiet time between batches, a batch's drain
 * (balance.ts imports them as WARMUP_BATCHES, MAX_BATCHES, QUIET_MS and DRAIN_MS).
 */
export const BALANCE_WARMUP_BATCHES = 1;
export const BALANCE_MAX_BATCHES = 3;
export const BALANCE_BATCHES = BALANCE_WARMUP_BATCHES + BALANCE_MAX_BATCHES;
export const BALANCE_QUIET_MS = 1_000;
export const BALANCE_DRAIN_MS = 60_000;
/** 1.6: at most this many trials, the background load's drain, at most this many agents (failover.ts imports them). */
export const FAILOVER_MAX_TRIALS = 5;
export const FAILOVER_DRAIN_MS = 20_000;
export const FAILOVER_MAX_AGENTS = 8;

/** One `until` of the category at its worst: the deadline and one last probe. */
const untilWorst = FORMATION_WAIT_MS + DIST_REQUEST_TIMEOUT_MS;

function distributed(p: Params): DeadlinePart[] {
  const n = p.agents.poolSize;
  const k = p.agents.spawnBatch;
  const t = p.trials;
  const pairs = 2 * n;
  const syncDeadline = Math.max(5000, 5 * p.targets.stateSyncMs);
  const failAgents = Math.min(n, FAILOVER_MAX_AGENTS);
  return [
    {
      name: '1.1 formation',
      ms: t * (poolOnce(n) + untilWorst),
      covers: `${t} trials, each a fresh pool of ${n} (opened, grown, closed) and the wait until every view holds all (60 s, formation.ts)`,
    },
    {
      name: 'shared pool (1.2-1.5)',
      ms: poolOnce(n) + untilWorst,
      covers: `one pool of ${n} formed (formPool: 60 s, common.ts) for 1.3, 1.4, 1.5 and 1.2`,
    },
    {
      name: '1.3 cross-node latency',
      ms: LATENCY_BUDGET_MS + pairs * 4 * SLOW_REQUEST_MS + DIST_REQUEST_TIMEOUT_MS + LATENCY_LONG * 1000,
      covers: `the 4 s budget, a warm-up and a first round over about ${pairs} pairs (4 requests each, 250 ms allowed each), one ping timing out (latency.ts)`,
    },
    {
      name: '1.4 state sync',
      ms: Math.max((SYNC_WARMUP_WRITES + SYNC_MIN_WRITES) * syncDeadline, SYNC_BUDGET_MS + syncDeadline),
      covers: `${SYNC_WARMUP_WRITES + SYNC_MIN_WRITES} writes each up to their deadline (${syncDeadline / 1000} s: 5× the target, at least 5 s), or the 6 s budget and one more (sync.ts)`,
    },
    {
      name: '1.5 load balancing',
      ms: BALANCE_BATCHES * (BALANCE_QUIET_MS + DIST_REQUEST_TIMEOUT_MS + BALANCE_DRAIN_MS + DIST_REQUEST_TIMEOUT_MS),
      covers: `${BALANCE_BATCHES} batches, each a quiet second, the dispatches (10 s timeout), the 60 s drain and its last query (balance.ts)`,
    },
    {
      name: '1.2 spawn latency',
      ms: t * (grow(n, n + k) + untilWorst + POOL_CLOSE_MS + untilWorst),
      covers: `${t} trials: +${k} agents, views hold ${n + k} (60 s), back to ${n}, views settle (60 s) (formation.ts)`,
    },
    {
      name: '1.6 failure recovery',
      ms:
        poolOnce(failAgents) +
        untilWorst +
        Math.min(t, FAILOVER_MAX_TRIALS) * (2 * p.targets.failoverSeconds * 1000 + DIST_REQUEST_TIMEOUT_MS) +
        FAILOVER_DRAIN_MS,
      covers: `a pool of ${failAgents} formed, ${Math.min(t, FAILOVER_MAX_TRIALS)} trials each up to twice the target (${2 * p.targets.failoverSeconds} s), the load's 20 s drain (failover.ts)`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Category 5 (src/bench/integration.ts)

/** The category's AgentClient timeout: one workflow takes at most this long (integration.ts imports it). */
export const WORKFLOW_TIMEOUT_MS = 30_000;
/**
 * 5.3 (integration.ts imports the three): a pause before the memory reading, the wait for the
 * pool's processes to end, a port probe's timeout (the probes run at once).
 */
export const CLEANUP_PAUSE_MS = 1_000;
export const CLEANUP_EXIT_WAIT_MS = 10_000;
export const PORT_PROBE_TIMEOUT_MS = 2_000;
export const CLEANUP_MS = CLEANUP_PAUSE_MS + CLEANUP_EXIT_WAIT_MS + PORT_PROBE_TIMEOUT_MS;

function integration(p: Params): DeadlinePart[] {
  const size = Math.max(3, p.integration.workflowSteps);
  const seq = Math.max(p.trials * 4, 10);
  return [
    { name: 'pool', ms: POOL_OPEN_MS + grow(0, size), covers: `a pool of ${size} agents opened and grown` },
    { name: '5.1 end-to-end workflow', ms: seq * WORKFLOW_TIMEOUT_MS, covers: `${seq} workflows one after another, each up to the client's 30 s timeout` },
    { name: '5.2 concurrent workflows', ms: p.trials * WORKFLOW_TIMEOUT_MS, covers: `${p.trials} rounds of ${p.integration.concurrentWorkflows} at once, each round up to 30 s` },
    { name: '5.3 resource cleanup', ms: CLEANUP_MS + POOL_CLOSE_MS + 2 * SLOW_REQUEST_MS * size, covers: 'the pool closed, its processes and ports checked (10 s, 2 s per port)' },
  ];
}

// ---------------------------------------------------------------------------------------------
// Category 3 (src/bench/monitoring/*.ts)

/** A stream's readiness (the dashboard waits twice it): wait.ts imports and exports it. */
export const EVENT_DEADLINE_MS = 5_000;
/** The pool converging before measuring (index.ts imports it). */
export const SETTLE_DEADLINE_MS = 20_000;
/** 3.1: marks per trial, their spacing, a mark's deadline, clock samples per trial (websocket.ts imports them; it exports MARK_DEADLINE_MS). */
export const MARKS_PER_TRIAL = 10;
export const MARK_SPACING_MS = 20;
export const MARK_DEADLINE_MS = 2_000;
export const CLOCK_SAMPLES = 8;
/** 3.4 (alert-latency.ts imports the three): the alert's deadline, the wait for its delivery to a subscriber, the resolve deadline. */
export const ALERT_DEADLINE_MS = 3_000;
export const ALERT_DELIVERY_WAIT_MS = 2_000;
export const ALERT_RESOLVE_DEADLINE_MS = 3_000;
export const ALERT_TRIAL_MS = ALERT_DEADLINE_MS + ALERT_DELIVERY_WAIT_MS + ALERT_RESOLVE_DEADLINE_MS;
/** The one deadline of the Prometheus source's final queries (prometheus-source.ts imports it as FINISH_QUERY_DEADLINE_MS). */
export const PROM_FINISH_QUERY_MS = 60_000;
/** Rungs of a ladder (ladder.ts climb): up ×4 from the start to the top, one refinement or the way down (counted here, no constant there). */
export const LADDER_MAX_STEPS = 8;
/** 3.3, after a step's last trigger: in time within IN_TIME_MS, lost after LATE_GRACE_MS more (dashboard-rate.ts imports both). */
export const DASHBOARD_IN_TIME_MS = 1_000;
export const DASHBOARD_LATE_GRACE_MS = 2_000;
export const LADDER_STEP_GRACE_MS = DASHBOARD_IN_TIME_MS + DASHBOARD_LATE_GRACE_MS;
/** 3.3: a step sends at least MIN_UPDATES updates and the ladder goes down to MIN_RATE per second (dashboard-rate.ts imports both). */
export const DASHBOARD_MIN_UPDATES = 24;
export const DASHBOARD_MIN_RATE = 1;
/** The slowest step: MIN_UPDATES at MIN_RATE (24 s). */
export const DASHBOARD_SLOWEST_STEP_MS = (DASHBOARD_MIN_UPDATES / DASHBOARD_MIN_RATE) * 1000;
/** A copy of ladder.ts stepLengthMs (checked against it by the test): observeSeconds over 6, at least 1 s. */
export function ladderStepMs(observeSeconds: number): number {
  return Math.max(1000, Math.round((observeSeconds * 1000) / 6));
}

function monitoring(p: Params): DeadlinePart[] {
  const n = Math.max(2, p.agents.poolSize);
  const t = p.trials;
  const interval = p.monitoring.scrapeIntervalMs;
  const minScrapes = Math.max(5, t);
  const stepMs = ladderStepMs(p.monitoring.observeSeconds);
  const prom = p.monitoring.prometheusUrl !== null;
  const sourceStart = prom ? Math.max(30_000, 10 * interval) : 0;
  const finish = prom ? minScrapes * interval + 30_000 + PROM_FINISH_QUERY_MS : minScrapes * interval + 10_000;
  const markRound = (marks: number) => marks * MARK_SPACING_MS + MARK_DEADLINE_MS;
  return [
    { name: 'pool', ms: poolOnce(n), covers: `a pool of ${n} agents opened, grown and closed` },
    {
      name: 'dashboard and settle',
      ms: 2 * EVENT_DEADLINE_MS + SETTLE_DEADLINE_MS + sourceStart,
      covers: `the dashboard's streams (10 s), the pool converging (20 s)${prom ? ', Prometheus scraping every agent (30 s, or 10 scrape intervals)' : ''} (index.ts)`,
    },
    {
      name: '3.1 WebSocket latency',
      ms: EVENT_DEADLINE_MS + markRound(2) + t * (CLOCK_SAMPLES * SLOW_REQUEST_MS + markRound(MARKS_PER_TRIAL)),
      covers: `streams ready (5 s), warm-up marks, ${t} trials of a clock estimate and ${MARKS_PER_TRIAL} marks each up to 2 s (websocket.ts)`,
    },
    // An alert that does not resolve costs a second resolve wait and two more fault requests (alert-latency.ts).
    { name: '3.4 alert latency', ms: t * (ALERT_TRIAL_MS + ALERT_RESOLVE_DEADLINE_MS + 4 * SLOW_REQUEST_MS), covers: `${t} trials: raise (3 s), delivery (2 s), resolve (3 s, twice when it does not resolve) (alert-latency.ts)` },
    {
      name: '3.2 scrape window',
      ms: finish,
      covers: `${minScrapes} scrapes of every agent at ${interval} ms${prom ? ', 30 s slack and the 60 s query deadline (prometheus-source.ts)' : ' and 10 s slack (direct-scrape.ts)'}`,
    },
    {
      name: '3.3 dashboard rate',
      ms: LADDER_MAX_STEPS * (stepMs + LADDER_STEP_GRACE_MS) + DASHBOARD_SLOWEST_STEP_MS,
      covers: `up to ${LADDER_MAX_STEPS} rungs of ${stepMs / 1000} s plus 3 s grace, and the slowest rung (dashboard-rate.ts, ladder.ts)`,
    },
    {
      name: '3.5 metrics volume',
      ms: LADDER_MAX_STEPS * (Math.max(stepMs, 4 * interval) + interval),
      covers: `up to ${LADDER_MAX_STEPS} rungs of at least 4 scrape slots (volume.ts, ladder.ts)`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Category 2 (src/bench/gpu.ts, src/bench/gpu/*.ts, src/bench/inference/*.ts)

/** Backend selection and the model's load (src/bench/inference/index.ts): not bounded by the bench; an allowance. */
export const GPU_SESSION_MS = 120_000;
/** Allowance per prediction outside a time budget (warm-up, the repetition that passes the budget). */
export const PREDICTION_MS = 2_000;
/** 2.1/2.2: the sampling budget per mode, the warm-up predictions per size (batch.ts imports them). */
export const BATCH_BUDGET_MS = { quick: 8_000, full: 90_000 } as const;
export const BATCH_WARMUP = 3;
/** 2.5: an inconclusive trend is extended to 3× the duration (sustained.ts imports it as MAX_SPAN and exports it). */
export const SUSTAINED_MAX_SPAN = 3;
/**
 * memory.ts: no time bound, only the iteration count; an allowance per iteration and per
 * checkpoint (its driver query's timeout is 3 s: the default of driverDeviceBytes' `timeoutMs`,
 * written there, not imported: the allowance covers the whole checkpoint, not only that query).
 */
export const MEMORY_ITERATION_MS = 50;
export const MEMORY_CHECKPOINT_MS = 3_000;
/** A copy of fallback.ts fallbackDeadlineMs (checked against it by the test): 10× the target, within 1..10 s. */
export function fallbackDeadlineMs(targetMs: number): number {
  return Math.min(10_000, Math.max(1_000, 10 * targetMs));
}

function gpu(p: Params): DeadlinePart[] {
  const sizes = p.gpu.batchSizes.length;
  const checkpoints = Math.min(p.gpu.memoryIterations, Math.max(3, p.trials));
  const fbTrials = Math.max(3, p.trials);
  return [
    { name: 'session', ms: GPU_SESSION_MS, covers: 'backend selection and the model loaded (src/bench/inference/index.ts; not bounded there)' },
    {
      name: '2.1/2.2 batch and speedup',
      ms: BATCH_BUDGET_MS[p.mode] + sizes * 2 * (BATCH_WARMUP + 1) * PREDICTION_MS,
      covers: `the ${BATCH_BUDGET_MS[p.mode] / 1000} s sampling budget, warm-up and one last repetition over ${sizes} sizes and the CPU baseline (batch.ts)`,
    },
    {
      name: '2.5 sustained',
      ms: SUSTAINED_MAX_SPAN * p.gpu.sustainedSeconds * 1000 + 4 * PREDICTION_MS,
      covers: `${p.gpu.sustainedSeconds} s, extended up to 3× for an inconclusive trend (sustained.ts)`,
    },
    {
      name: '2.3 memory',
      ms: p.gpu.memoryIterations * MEMORY_ITERATION_MS + checkpoints * MEMORY_CHECKPOINT_MS,
      covers: `${p.gpu.memoryIterations} predictions (50 ms each allowed) and ${checkpoints} driver readings (memory.ts)`,
    },
    {
      name: '2.4 CPU fallback',
      ms: fbTrials * (fallbackDeadlineMs(p.targets.cpuFallbackMs) + PREDICTION_MS),
      covers: `${fbTrials} trials, each up to its deadline (10× the target, 1..10 s) (fallback.ts)`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Category 4 (src/bench/scalability.ts, src/bench/scalability/*.ts)

/** The closed loop's dispatch timeout (the last drain's last request): step.ts imports it. */
export const SCALING_REQUEST_TIMEOUT_MS = 30_000;

function scalability(p: Params): DeadlinePart[] {
  const taskMs = Math.round(p.agents.stepSeconds * 1000);
  // plan.ts scalingPlan: the window ends at 1.1 × taskMs + taskMs; the drain is taskMs + 2 s.
  const measure = Math.round(taskMs * 1.1) + taskMs + 2 * SLOW_REQUEST_MS * 4;
  const steps = p.agents.steps.slice(0, 5);
  let growth = 0;
  let from = 1;
  for (const n of steps) {
    growth += n > from ? grow(from, n) : POOL_CLOSE_MS;
    from = n;
  }
  return [
    { name: 'pool', ms: poolOnce(1), covers: 'the pool opened at one agent and closed' },
    { name: 'growth', ms: growth, covers: `grown to ${steps.join(', ')} agents in turn` },
    {
      name: '4.x saturation windows',
      ms: (1 + steps.length) * measure,
      covers: `the reference and ${steps.length} steps, each a ramp and a window (2.1 × ${taskMs / 1000} s) and two CPU readings (scalability/plan.ts, step.ts)`,
    },
    { name: 'last drain', ms: taskMs + 2000 + SCALING_REQUEST_TIMEOUT_MS, covers: 'the last step\'s tasks drained (task + 2 s) and its last dispatch (30 s)' },
  ];
}

// ---------------------------------------------------------------------------------------------
// Category 6 (src/bench/stress.ts, src/bench/stress/*.ts)

/** 6.1's drain and longest warm-up (held here; src/bench/stress/sustained.ts imports them), the load's request timeout. */
export const SUSTAINED_DRAIN_MS = 10_000;
export const WARMUP_MAX_MS = 10_000;
export const STRESS_REQUEST_TIMEOUT_MS = 10_000;
/** 6.2's recovery hold, growth wait, spike multiple and rate cap per mode (held here; src/bench/stress/spike.ts imports them). */
export const SPIKE_HOLD_MS = 1_000;
export const SCALE_WAIT_MS = 30_000;
export const SPIKE_MAX_RATE = { quick: 400, full: 2000 } as const;
export const SPIKE_MULTIPLE = 2.5;
/** 6.3's rate cap per mode (held here; src/bench/stress/exhaustion.ts imports it). */
export const EXHAUSTION_MAX_RATE = { quick: 400, full: 2000 } as const;

/** src/bench/stress/sustained.ts warmupBounds(sustainedMs).maxMs: the longest warm-up before the measured interval. */
export function warmupMaxMs(sustainedMs: number): number {
  const minMs = Math.min(2000, Math.round(sustainedMs / 10));
  return Math.max(minMs, Math.min(WARMUP_MAX_MS, Math.round(sustainedMs / 2)));
}

/** src/bench/stress/spike.ts spikePlan: a task's length, when the spike starts, the recovery's bound (ms). */
export function spikeTiming(p: Params): { taskMs: number; spikeAtMs: number; boundMs: number } {
  const taskMs = Math.max(1, p.agents.ioTaskMs, Math.ceil((p.stress.spikeFrom * p.agents.capacity * 1000 * SPIKE_MULTIPLE) / SPIKE_MAX_RATE[p.mode]));
  const steadyMs = Math.max(p.mode === 'quick' ? 2000 : 5000, taskMs + 1000);
  return { taskMs, spikeAtMs: taskMs + steadyMs, boundMs: Math.max(10_000, 2 * p.targets.spikeRecoverySeconds * 1000) };
}

/** src/bench/stress/exhaustion.ts exhaustionPlan(p, agents).taskMs: a task's length under the overload. */
export function exhaustionTaskMs(p: Params, agents: number): number {
  const concurrent = agents * p.agents.capacity;
  const maxRate = EXHAUSTION_MAX_RATE[p.mode];
  const taskMs = Math.max(1, p.agents.ioTaskMs);
  const offered = (p.stress.overloadFactor * concurrent * 1000) / taskMs;
  return offered > maxRate ? Math.ceil((p.stress.overloadFactor * concurrent * 1000) / maxRate) : taskMs;
}

function stress(p: Params): DeadlinePart[] {
  const s = p.stress;
  const warmMax = warmupMaxMs(s.sustainedMs);
  const { taskMs: spikeTask, spikeAtMs: spikeAt, boundMs: bound } = spikeTiming(p);
  const spikeTrials = p.mode === 'quick' ? 1 : 3;
  const exTask = exhaustionTaskMs(p, s.spikeFrom);
  // exhaustion.ts: the overload, then the drain (3 tasks + 35 s) beside the probe (3 tasks + 15 s, 5 s request timeout).
  const overload = Math.min(60_000, Math.max(3000, 2 * exTask));
  const exDrain = exTask * 3 + 35_000;
  const probe = exTask * 3 + 15_000 + 5_000;
  return [
    {
      name: '6.1 sustained',
      ms: poolOnce(s.sustainedAgents) + warmMax + s.sustainedMs + Math.max(SUSTAINED_DRAIN_MS, p.agents.ioTaskMs * 50) + STRESS_REQUEST_TIMEOUT_MS,
      covers: `a pool of ${s.sustainedAgents}, up to ${warmMax / 1000} s warm-up, ${s.sustainedMs / 1000} s measured, the drain (src/bench/stress/sustained.ts)`,
    },
    {
      name: '6.2 spike',
      ms: poolOnce(s.spikeFrom) + spikeTrials * (spikeAt + bound + SPIKE_HOLD_MS + STRESS_REQUEST_TIMEOUT_MS + spikeTask + Math.max(SCALE_WAIT_MS, grow(s.spikeFrom, s.spikeTo)) + POOL_CLOSE_MS),
      covers: `${spikeTrials} trial(s): capacity and steady phases, the spike bounded at ${bound / 1000} s, the growth to ${s.spikeTo} (src/bench/stress/spike.ts)`,
    },
    {
      name: '6.3 exhaustion',
      ms: poolOnce(s.spikeFrom) + overload + Math.max(exDrain, probe) + 2 * SLOW_REQUEST_MS * s.spikeFrom + 3_000,
      covers: `a pool of ${s.spikeFrom}, ${overload / 1000} s overload, the drain or the recovery probe, health checks (src/bench/stress/exhaustion.ts)`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------

const PARTS: Record<Category, (p: Params) => DeadlinePart[]> = { distributed, integration, monitoring, gpu, scalability, stress };

/**
 * The step's deadline: its tests' worst cases and pools, the runner, a margin, clamped to
 * [DEADLINE_FLOOR_MS, DEADLINE_CAP_MS]. `totalMs` is the sum of `parts` (whole ms).
 */
export function stepDeadline(category: Category, p: Params): StepDeadline {
  const parts = PARTS[category](p).map((x) => ({ ...x, ms: Math.ceil(x.ms) }));
  parts.push({ name: 'runner', ms: RUNNER_OVERHEAD_MS, covers: 'the runner process started, its params read, its result written' });
  for (const x of parts) if (!Number.isFinite(x.ms) || x.ms < 0) throw new Error(`stepDeadline(${category}): part "${x.name}" is ${x.ms} ms`);
  const work = parts.reduce((a, x) => a + x.ms, 0);
  const margin = Math.max(MARGIN_MIN_MS, Math.ceil(work * MARGIN_FRACTION));
  parts.push({ name: 'margin', ms: margin, covers: `10 % of the above, at least ${MARGIN_MIN_MS / 1000} s` });
  const sum = work + margin;
  if (sum < DEADLINE_FLOOR_MS) parts.push({ name: 'floor', ms: DEADLINE_FLOOR_MS - sum, covers: `raised to the floor of ${DEADLINE_FLOOR_MS / 1000} s` });
  if (sum > DEADLINE_CAP_MS) parts.push({ name: 'cap', ms: DEADLINE_CAP_MS - sum, covers: `cut to the cap of ${DEADLINE_CAP_MS / 3_600_000} h` });
  return { totalMs: Math.min(DEADLINE_CAP_MS, Math.max(DEADLINE_FLOOR_MS, sum)), parts };
}
