/**
 * The pure parts of the scalability redesign (4.1–4.5): the plan (task length, outstanding tasks,
 * coordinators), the efficiency T(N) ÷ (N × T(1)), the host-bound rule, and how a step's figures
 * become its measurement (wrong results and lost tasks fail it with the count; a host-bound or
 * unsaturated step is Skipped, never Passed).
 */
import { describe, expect, it } from 'vitest';
import { efficiencyPct, stepMeasurement, type StepResult } from '../../src/bench/scalability/judge.ts';
import { cpuSecondsBetween, hostBound, type HostUse } from '../../src/bench/scalability/host.ts';
import { capacityRate, coordinatorCount, outstandingFor, pickCoordinators, scalingPlan } from '../../src/bench/scalability/plan.ts';
import type { FinalFigures, WindowFigures } from '../../src/bench/scalability/step.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { judgeAll } from '../../src/report/verdict.ts';

const params = resolveParams({ mode: 'quick' }, ['scalability']);
const plan = scalingPlan(params);

const quietHost: HostUse = {
  seconds: 4,
  hostCpus: 2,
  usableCpus: 2,
  hostBusyPct: 30,
  harnessCpuPct: 5,
  poolCpuPct: 20,
  benchmarkCpus: 0.25,
  otherCpus: 0.35,
  harnessLoopDelayP99Ms: 12,
  mainThreadsRanCpus: 0.2,
  mainThreadsWaitedCpus: 0.02,
};

function win(agents: number, throughput: number, extra: Partial<WindowFigures> = {}): WindowFigures {
  return {
    agents,
    coordinators: ['a1'],
    outstanding: outstandingFor(agents, plan.capacity),
    throughput,
    completions: Math.round((throughput * plan.windowMs) / 1000),
    offeredRate: throughput + 20,
    rejected: 80,
    errors: 0,
    latencyMs: { p50: plan.taskMs + 40, p95: plan.taskMs + 90, p99: plan.taskMs + 120, n: Math.round((throughput * plan.windowMs) / 1000) },
    saturatedBy: 'refusals',
    host: quietHost,
    memoryPerAgentMB: 20,
    cpuPerAgentPct: 3,
    series: Array.from({ length: 8 }, () => throughput),
    windowMs: plan.windowMs,
    ...extra,
  };
}

function fin(extra: Partial<FinalFigures> = {}): FinalFigures {
  return {
    counts: { offered: 600, sent: 600, ok: 500, rejected: 100, error: 0, timeout: 0, lost: 0, dropped: 0, accepted: 500, wrong: 0 },
    lostDetail: { failed: 0, pending: 0, unknown: 0, unreachable: 0 },
    checks: {},
    wrong: 0,
    checked: 500,
    cpuDigestsRecomputed: 8,
    mismatch: {},
    executors: 4,
    errorKinds: {},
    completedPerSecond: 50,
    ...extra,
  };
}

const base: StepResult = { window: win(1, 16), final: fin() };
const judged = (m: ReturnType<typeof stepMeasurement>) => judgeAll([m], params).find((t) => t.id === m.id)!;

describe('the plan', () => {
  it('IO tasks of stepSeconds, a window of one task length after a ramp of one', () => {
    expect(plan.taskMs).toBe(params.agents.stepSeconds * 1000);
    expect(plan.rampMs).toBe(plan.taskMs);
    expect(plan.windowStartMs).toBeGreaterThan(plan.rampMs);
    expect(plan.windowMs).toBe(plan.taskMs);
    expect(plan.cpuFraction).toBeGreaterThan(0);
    // A perfect pool of 64 quick agents completes 64 x 64 / 4 s = 1024 tasks/s.
    expect(capacityRate(64, plan)).toBe((64 * params.agents.capacity * 1000) / plan.taskMs);
  });

  it('keeps more tasks outstanding than the pool can run at once', () => {
    for (const n of [1, 4, 64, 1000]) expect(outstandingFor(n, 64)).toBeGreaterThan(n * 64);
    expect(outstandingFor(4, 64)).toBe(269);
  });

  it('a few coordinators, always fewer than 90 % of the pool, so no-balancing cannot reach the target', () => {
    expect([1, 4, 8, 16, 32, 64, 1000].map(coordinatorCount)).toEqual([1, 1, 1, 1, 2, 4, 4]);
    for (const n of params.agents.steps) expect(coordinatorCount(n) / n).toBeLessThan(params.targets.scalingEfficiency / 100);
  });

  it('coordinators are agents that joined for the step, one per host process', () => {
    const agents = Array.from({ length: 16 }, (_, k) => ({ id: `a${k}`, url: `http://x/${k}`, pid: 100 + Math.floor(k / 8), node: '' }));
    const earlier = new Set(agents.slice(0, 8).map((a) => a.id));
    expect(pickCoordinators(agents, earlier, 1).map((a) => a.id)).toEqual(['a8']);
    // Only one fresh process: the second comes from the earlier agents' process.
    expect(pickCoordinators(agents, earlier, 2).map((a) => a.id)).toEqual(['a8', 'a0']);
    expect(pickCoordinators(agents, new Set(), 3).map((a) => a.id)).toEqual(['a0', 'a8', 'a1']);
  });
});

describe('efficiency = T(N) / (N x T(1))', () => {
  it('is the throughput per agent over the lone agent throughput, in %', () => {
    expect(efficiencyPct(64, 4, 16)).toBe(100);
    expect(efficiencyPct(57.6, 4, 16)).toBeCloseTo(90, 10);
    // Not capped: more than N x T(1) reads above 100 %.
    expect(efficiencyPct(70, 4, 16)).toBeCloseTo(109.375, 10);
    expect(efficiencyPct(10, 4, 0)).toBeNull();
    expect(efficiencyPct(Number.NaN, 4, 16)).toBeNull();
  });
});

describe('CPU-seconds of the pool over a window', () => {
  const st = (pid: number, cpuSeconds: number, key?: string) => ({ pid, agents: 1, rssBytes: 0, heapUsedBytes: 0, cpuSeconds, ...(key ? { key } : {}) });
  it('matches processes by pid, and pods (pid 0) by their uid, in any order, as pods come and go', () => {
    expect(cpuSecondsBetween([st(10, 1), st(11, 5)], [st(11, 6), st(10, 3), st(12, 9)])).toBe(3);
    expect(cpuSecondsBetween([st(0, 1, 'a'), st(0, 5, 'b')], [st(0, 7, 'b'), st(0, 2, 'a')])).toBe(3);
    // A pod came (c: no earlier figure) and one went (a): b alone is counted.
    expect(cpuSecondsBetween([st(0, 1, 'a'), st(0, 5, 'b')], [st(0, 9, 'c'), st(0, 7, 'b')])).toBe(2);
    // Without pid or key, which earlier figure is whose cannot be told: nothing is counted.
    expect(cpuSecondsBetween([st(0, 1), st(0, 5)], [st(0, 2), st(0, 7)])).toBe(0);
  });
});

describe('host-bound', () => {
  it('when the harness or the host ran out of CPU for the step', () => {
    expect(hostBound({ ...quietHost, harnessCpuPct: 95 }, 500, 900)).toMatch(/load generator's process used 95 %/);
    expect(hostBound({ ...quietHost, benchmarkCpus: 1.9, hostBusyPct: 99 }, 500, 900)).toMatch(/used 1.9 of the 2 CPUs/);
  });

  it('when starvation could explain the shortfall, and not when the pool wanted little CPU', () => {
    const starved = { ...quietHost, hostBusyPct: 100, otherCpus: 1.2, mainThreadsRanCpus: 0.5, mainThreadsWaitedCpus: 0.6 };
    expect(hostBound(starved, 500, 921.6)).toMatch(/starved of CPU/);
    // Mild starvation cannot explain 0.25 tasks/s where 57.6 were needed.
    expect(hostBound({ ...starved, mainThreadsRanCpus: 0.07, mainThreadsWaitedCpus: 0.1 }, 0.25, 57.6)).toBeNull();
    // Severe starvation (waited twice what ran) is host-bound whatever the throughput: what
    // keeps a lock from hiding behind it is judge.ts's guard (every agent executed tasks).
    expect(hostBound({ ...starved, mainThreadsRanCpus: 0.07, mainThreadsWaitedCpus: 0.2 }, 0.25, 57.6)).toMatch(/severely starved/);
    expect(hostBound(quietHost, 30, 57.6)).toBeNull();
    expect(hostBound({ ...quietHost, mainThreadsRanCpus: null, mainThreadsWaitedCpus: null }, 500, 921.6)).toBeNull();
  });
});

describe('a step becomes its measurement', () => {
  const target = params.targets.scalingEfficiency;

  it('a scaling pool passes with its efficiency, n = completed tasks', () => {
    const m = stepMeasurement('4.1', { window: win(4, 62), final: fin() }, base, plan, target, 9000);
    expect(m.value).toBeCloseTo(96.875, 3);
    expect(m.fail).toBeUndefined();
    expect(m.skip).toBeUndefined();
    expect(m.sampleUnit).toBe('tasks');
    expect(m.samples).toBe(248);
    expect(m.details).toMatchObject({ agents: 4, throughput: 62, baseThroughput: 16, idealThroughput: 64, efficiencyPct: 96.88 });
    expect(m.raw).toHaveLength(8);
    const t = judged(m);
    expect(t.result).toBe('Passed');
  });

  it('wrong results fail the step with the count, whatever its efficiency', () => {
    const m = stepMeasurement('4.2', { window: win(8, 126), final: fin({ wrong: 7, mismatch: { result: 7 } }) }, base, plan, target, 9000);
    expect(m.value).toBeGreaterThan(90);
    expect(m.fail).toMatch(/^7 wrong result\(s\) among 500 checked \(7 result; 8 CPU digests recomputed/);
    const t = judged(m);
    expect(t.result).toBe('Failed');
    expect(t.reason).toMatch(/7 wrong result/);
    expect(t.reason).toMatch(/n=\d+ tasks/);
    // Wrong answers in the reference fail every step too.
    const m2 = stepMeasurement('4.3', { window: win(16, 250), final: fin() }, { window: base.window, final: fin({ wrong: 1, mismatch: { result: 1 } }) }, plan, target, 9000);
    expect(m2.fail).toMatch(/reference run had 1 wrong result/);
  });

  it('tasks the coordinator lost fail the step; tasks still pending at the end are only reported', () => {
    const lost = fin({ lostDetail: { failed: 2, pending: 0, unknown: 1, unreachable: 0 } });
    expect(stepMeasurement('4.1', { window: win(4, 62), final: lost }, base, plan, target, 9000).fail).toMatch(/^3 accepted task\(s\) lost \(2 failed, 1 unknown/);
    const pending = fin({ lostDetail: { failed: 0, pending: 5, unknown: 0, unreachable: 0 } });
    expect(stepMeasurement('4.1', { window: win(4, 62), final: pending }, base, plan, target, 9000).fail).toBeUndefined();
  });

  it('below the target on a quiet host: judged, and Failed', () => {
    // A serialising lock: one task per task length through one coordinator.
    const lock = fin({ executors: 3, completedPerSecond: 0.3, counts: { ...fin().counts, ok: 4, accepted: 4 } });
    const m = stepMeasurement('4.1', { window: win(4, 0.25, { saturatedBy: 'queueing', rejected: 0 }), final: lock }, { window: win(1, 0.25, { saturatedBy: 'queueing' }), final: lock }, plan, target, 9000);
    expect(m.value).toBe(25);
    expect(m.skip).toBeUndefined();
    const t = judged(m);
    expect(t.result).toBe('Failed');
    expect(t.reason).toMatch(/does not meet the target >=90/);
  });

  it('below the target with the host out of CPU: Skipped host-bound, with the figures, never Passed', () => {
    const busy: HostUse = { ...quietHost, hostBusyPct: 100, harnessCpuPct: 20, poolCpuPct: 175, benchmarkCpus: 1.95, otherCpus: 0.05 };
    const m = stepMeasurement('4.5', { window: win(64, 600, { host: busy }), final: fin({ executors: 64 }) }, base, plan, target, 9000);
    expect(m.value).toBeCloseTo(58.59, 2);
    expect(m.skip).toMatch(/^host-bound: this benchmark's processes used 1.95 of the 2 CPUs/);
    expect(m.skip).toMatch(/600 tasks\/s of the 1024/);
    expect((m.details as { host: HostUse }).host.benchmarkCpus).toBe(1.95);
    expect(judged(m).result).toBe('Skipped');
    // Starved so hard that the window saw almost nothing: the whole run's rate is what scales.
    const starved: HostUse = { ...quietHost, hostBusyPct: 100, benchmarkCpus: 0.4, otherCpus: 1.6, mainThreadsRanCpus: 0.25, mainThreadsWaitedCpus: 4 };
    const m3 = stepMeasurement('4.4', { window: win(32, 0, { host: starved, saturatedBy: null, rejected: 0 }), final: fin({ executors: 32, completedPerSecond: 44 }) }, base, plan, target, 9000);
    expect(m3.skip).toMatch(/^host-bound: its processes were starved of CPU/);
    // ... but a serialising lock completing one task per task length is not, however busy the
    // host: a handful of tasks cannot have reached every agent twice.
    const lockCounts = { ...fin().counts, ok: 5, accepted: 5 };
    const m4 = stepMeasurement('4.1', { window: win(4, 0.25, { host: starved, saturatedBy: 'queueing', rejected: 0 }), final: fin({ executors: 4, completedPerSecond: 0.4, counts: lockCounts }) }, base, plan, target, 9000);
    expect(m4.skip).toBeUndefined();
    expect(judged(m4).result).toBe('Failed');
    // Work that never reached most of the pool is the system's shortfall, busy host or not.
    const m2 = stepMeasurement('4.5', { window: win(64, 600, { host: busy }), final: fin({ executors: 4 }) }, base, plan, target, 9000);
    expect(m2.skip).toBeUndefined();
    expect(judged(m2).result).toBe('Failed');
    // Wrong results still fail a host-bound step.
    expect(stepMeasurement('4.5', { window: win(64, 600, { host: busy }), final: fin({ wrong: 1 }) }, base, plan, target, 9000).fail).toBeDefined();
  });

  it('not saturated: Skipped (the throughput would be the harness own)', () => {
    const m = stepMeasurement('4.1', { window: win(4, 64, { saturatedBy: null, rejected: 0 }), final: fin() }, base, plan, target, 9000);
    expect(m.skip).toMatch(/^not saturated/);
    const m2 = stepMeasurement('4.1', { window: win(4, 64), final: fin() }, { window: win(1, 16, { saturatedBy: null }), final: fin() }, plan, target, 9000);
    expect(m2.skip).toMatch(/^not saturated: the one-agent reference/);
  });

  it('a reference that completed nothing: Failed, efficiency undefined', () => {
    const m = stepMeasurement('4.1', { window: win(4, 10), final: fin() }, { window: win(1, 0), final: fin() }, plan, target, 9000);
    expect(m.value).toBeNull();
    expect(m.fail).toMatch(/completed no task/);
  });
});
