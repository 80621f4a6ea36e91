/**
 * The pure parts of the redesigned stress tests: 6.1's judged windows (every window judged, a
 * stall of a few agents caught, short hiccups of every agent not), 6.2's plan, capacity and
 * recovery by cohort, on synthetic load runs.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { LoadRun, OUTCOME } from '../../src/bench/load/index.ts';
import { admittedRate, cohortRecovery, judgedWindows, judgeWindowing, readSteal, SchedSampler, spikePlan, sustainedMeasurement, type HostProbe } from '../../src/bench/stress.ts';
import { resolveParams } from '../../src/plan/params.ts';

const p = resolveParams({ mode: 'quick' }, ['stress']);

/**
 * A dispatch run of `agents` targets at `rate` tasks/s for `ms`, round robin; `latency(i, t,
 * agent)` gives each task's latency (ms), `outcome(i)` its outcome (default ok).
 */
function run(agents: number, rate: number, ms: number, latency: (i: number, t: number, agent: number) => number, outcome: (i: number) => number = () => OUTCOME.ok): LoadRun {
  const n = Math.round((rate * ms) / 1000);
  const r = new LoadRun('dispatch', ms, n, 50, 'u');
  r.n = n;
  for (let k = 0; k < agents; k++) r.targets.push(`http://127.1.0.${k + 2}:1`);
  for (let i = 0; i < n; i++) {
    const t = (i * 1000) / rate;
    const a = i % agents;
    r.schedMs[i] = t;
    r.target[i] = a;
    const o = outcome(i);
    r.outcome[i] = o;
    const lat = latency(i, t, a);
    r.doneMs[i] = t + 1;
    if (o === OUTCOME.ok) r.e2eMs[i] = lat;
    r.counts.offered++;
    r.counts.sent++;
    if (o === OUTCOME.ok) r.counts.ok++;
    if (o === OUTCOME.lost) {
      r.counts.lost++;
      r.lostDetail.unknown++;
    }
  }
  r.counts.accepted = r.counts.ok + r.counts.lost;
  r.scheduleEndMs = ms;
  r.endMs = ms + 100;
  return r;
}

/** A steady 23 ms with a little deterministic jitter. */
const base = (i: number): number => 23 + ((i * 7919) % 10) / 10;

describe('6.1 judged windows', () => {
  it('windows of 4 s every 1 s over a 20 s run, a quarter of shorter runs', () => {
    expect(judgeWindowing(20_000)).toEqual({ windowMs: 4000, stepMs: 1000 });
    expect(judgeWindowing(4000)).toEqual({ windowMs: 1000, stepMs: 250 });
    const r = run(20, 200, 22_000, base);
    const w = judgedWindows(r, 2000, 22_000, 4000, 1000, 'e2e');
    expect(w).toHaveLength(17);
    expect(w[0]!.offered).toBe(800);
    expect(w[0]!.agents).toBe(20);
    expect(w.every((x) => x.figureMs! > 23 && x.figureMs! < 24)).toBe(true);
  });

  it('a steady run passes with n = the tasks after the warm-up', () => {
    const r = run(20, 200, 22_000, base);
    const m = sustainedMeasurement(r, p, 2000, 1);
    expect(m.fail).toBeUndefined();
    expect(m.value).toBe(0);
    expect(m.samples).toBe(4000);
    expect(m.sampleUnit).toBe('tasks');
    expect((m.details as { warmupTasks: number }).warmupTasks).toBe(400);
  });

  it('a 3 s stall of 4 of 20 agents in the middle fails, naming the window and the agents', () => {
    const stalled = new Set([3, 8, 13, 18]);
    // A stalled agent answers when it resumes at 13 s: a task sent at t waits 13000 - t more.
    const r = run(20, 200, 22_000, (i, t, a) => (stalled.has(a) && t >= 10_000 && t < 13_000 ? 13_000 - t + base(i) : base(i)));
    const m = sustainedMeasurement(r, p, 2000, 1, { names: new Map(r.targets.map((u, k) => [u, `agent-${k}`])) });
    expect(m.value).toBe(0); // nothing failed or was lost: only the latency rule can see it
    expect(m.fail).toMatch(/^p95 latency drifted \+\d+(\.\d)? % in the window 7–11 s after warm-up/);
    expect(m.fail).toMatch(/only 4 of the 20 agents were above [\d.]+ ms there \(a stall or slow-down of those agents: agent-(3|8|13|18) /);
    const j = (m.details as { judged: { driftPct: number; windowsAboveTarget: number } }).judged;
    expect(j.driftPct).toBeGreaterThan(1000);
    expect(j.windowsAboveTarget).toBeGreaterThanOrEqual(3);
  });

  it('short hiccups of every agent (a busy host: 300 ms, once every 4 s) do not move the figure', () => {
    const r = run(20, 200, 22_000, (i, t) => (t % 4000 < 300 ? 300 - (t % 4000) + base(i) : base(i)));
    const m = sustainedMeasurement(r, p, 2000, 1);
    expect(m.fail).toBeUndefined();
    expect((m.details as { judged: { driftPct: number } }).judged.driftPct).toBeLessThan(5);
    // The task-level p95 of a fixed window does move: that is why it is not the judged figure.
    const wins = (m.details as { windows: { p95: number }[] }).windows;
    expect(Math.max(...wins.map((w) => w.p95))).toBeGreaterThan(100);
  });

  it('latency that falls as a cold system warms is not drift; the same excess as a rise is', () => {
    // 28 ms falling to 23 ms over the first 7 s after warm-up (code still warming), then steady:
    // the first windows are ~20 % above the run's median, but none is above what came before.
    const warming = (i: number, t: number): number => base(i) * (1 + 0.22 * Math.max(0, 1 - (t - 2000) / 7000));
    const m = sustainedMeasurement(run(20, 200, 22_000, warming), p, 2000, 1);
    expect(m.fail).toBeUndefined();
    // The mirror image, a climb of the same size over the last 7 s, is a drift.
    const climbing = (i: number, t: number): number => base(i) * (1 + 0.3 * Math.max(0, (t - 15_000) / 7000));
    expect(sustainedMeasurement(run(20, 200, 22_000, climbing), p, 2000, 1).fail).toMatch(/p95 latency drifted .* against both/);
  });

  it('a slow-down of every agent in the last third fails (a drift, not a stall)', () => {
    const r = run(20, 200, 22_000, (i, t) => (t >= 16_000 ? 1.5 * base(i) : base(i)));
    const m = sustainedMeasurement(r, p, 2000, 1);
    expect(m.fail).toMatch(/p95 latency drifted \+50(\.\d)? %/);
    expect(m.fail).toMatch(/20 of the 20 agents were above [\d.]+ ms there, the typical agent at 35(\.\d)? ms against 23(\.\d)? ms \(a slow-down of the whole system/);
  });

  it('windows where the host starved the pool more than usual are not judged for drift', () => {
    // Every agent slowed 3-fold in 12–16 s, while the pool's processes waited 80 % of the time (else 50 %).
    const slow = (t: number): boolean => t >= 12_000 && t < 16_000;
    const r = run(20, 200, 22_000, (i, t) => (slow(t) ? 3 * base(i) : base(i)));
    const host: HostProbe = (f, t) => (f < 16_000 && t > 12_000 ? { ranCpus: 0.3, waitedCpus: 1.2, waitShare: 0.8 } : { ranCpus: 0.3, waitedCpus: 0.3, waitShare: 0.5 });
    expect(sustainedMeasurement(r, p, 2000, 1).fail).toMatch(/drifted/);
    const m = sustainedMeasurement(r, p, 2000, 1, { host });
    expect(m.fail).toBeUndefined();
    const j = (m.details as { judged: { windowsHostBound: number; driftPct: number; hostBoundWaitShare: number } }).judged;
    // 7 windows overlap the starved 4 s; the two that overlap it by 1 s are not slowed (their
    // typical agent's median did not move), so they are judged.
    expect(j.windowsHostBound).toBe(5);
    expect(j.hostBoundWaitShare).toBeCloseTo(0.55, 9);
    expect(j.driftPct).toBeLessThan(5);
    // A stall in a window the host did not starve more than usual is still caught.
    const stalled = run(20, 200, 22_000, (i, t, a) => (slow(t) ? 3 * base(i) : a < 4 && t >= 6000 && t < 9000 ? 9000 - t + base(i) : base(i)));
    expect(sustainedMeasurement(stalled, p, 2000, 1, { host }).fail).toMatch(/only 4 of the 20 agents/);
    // So is a stall in the very windows the host starved: the typical agent did not slow down, as
    // it would have on a starved host (a stalled process's catch-up makes its host busy).
    const stallInStarved = run(20, 200, 22_000, (i, t, a) => (a < 4 && t >= 12_500 && t < 15_500 ? 15_500 - t + base(i) : base(i)));
    const caught = sustainedMeasurement(stallInStarved, p, 2000, 1, { host });
    expect(caught.fail).toMatch(/only 4 of the 20 agents/);
    expect((caught.details as { judged: { windowsHostBound: number; driftPct: number } }).judged.driftPct).toBeGreaterThan(1000);
    // A host busy alike all run long makes no window host-bound: drift is judged against a
    // reference the host stretched alike.
    const busy = sustainedMeasurement(r, p, 2000, 1, { host: () => ({ ranCpus: 0.2, waitedCpus: 1.4, waitShare: 0.875 }) });
    expect(busy.fail).toMatch(/drifted/);
    // Below 50 % waiting the host is never the reason.
    const quiet = sustainedMeasurement(r, p, 2000, 1, { host: (f, t) => ({ ranCpus: 0.3, waitedCpus: 0.1, waitShare: f < 16_000 && t > 12_000 ? 0.45 : 0.1 }) });
    expect(quiet.fail).toMatch(/drifted/);
  });

  it('windows where the hypervisor stole a tenth of the CPUs more than usual are not judged for drift', () => {
    const slow = (t: number): boolean => t >= 12_000 && t < 16_000;
    const r = run(20, 200, 22_000, (i, t) => (slow(t) ? 1.4 * base(i) : base(i)));
    // The pool waited alike all run; the hypervisor took 30 % of the host's CPUs in 12–16 s (else 1 %).
    const stolen = (share: number): HostProbe => (f, t) => ({ ranCpus: 0.3, waitedCpus: 0.1, waitShare: 0.25, stolenCpus: 2 * (f < 16_000 && t > 12_000 ? share : 0.01), stealShare: f < 16_000 && t > 12_000 ? share : 0.01 });
    const m = sustainedMeasurement(r, p, 2000, 1, { host: stolen(0.3) });
    expect(m.fail).toBeUndefined();
    const j = (m.details as { judged: { windowsHostBound: number; hostBoundStealShare: number; windows: { stolen?: number }[] } }).judged;
    // 7 windows overlap the starved 4 s; the two that overlap it by 1 s are not slowed (their
    // typical agent's median did not move), so they are judged.
    expect(j.windowsHostBound).toBe(5);
    expect(j.hostBoundStealShare).toBeCloseTo(0.1, 9);
    expect(j.windows[0]!.stolen).toBeCloseTo(0.02, 9);
    // A few percent stolen is not a reason: the same slow-down is drift.
    expect(sustainedMeasurement(r, p, 2000, 1, { host: stolen(0.08) }).fail).toMatch(/drifted/);
    // A stall of 4 agents steals nothing, and a window with steal elsewhere does not hide it.
    const stalled = run(20, 200, 22_000, (i, t, a) => (slow(t) ? 1.4 * base(i) : a < 4 && t >= 6000 && t < 9000 ? 9000 - t + base(i) : base(i)));
    expect(sustainedMeasurement(stalled, p, 2000, 1, { host: stolen(0.3) }).fail).toMatch(/only 4 of the 20 agents/);
  });

  it('readSteal reads the steal ticks and the CPU count of /proc/stat', () => {
    const text = 'cpu  3012136 86414 626468 3006891 10573 0 60818 347760 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\ncpu1 1 2 3 4 5 6 7 8 0 0\nintr 1\n';
    expect(readSteal(text)).toEqual({ stealNs: 3477.6e9, cpus: 2 });
    expect(readSteal('nothing\n')).toBeNull();
  });

  it('a window whose error rate reaches the target fails on it; lost tasks fail whatever the window', () => {
    // 10 tasks lost within one second: 1.25 % of a 4 s window, 0.25 % of the run.
    const r = run(20, 200, 22_000, base, (i) => (i >= 2200 && i < 2210 ? OUTCOME.lost : OUTCOME.ok));
    const m = sustainedMeasurement(r, p, 2000, 1);
    expect(m.value).toBeCloseTo(0.25, 6);
    expect(m.fail).toMatch(/10 accepted task\(s\) never done/);
    expect(m.fail).toMatch(/did not serve 10 of its 800 tasks \(1\.25 %\), target < 1 % in every window/);
  });
});

describe('6.2 plan and capacity', () => {
  it('quick: I/O tasks of 1.6 s so that 2.5 × the 4-agent pool is 400 tasks/s', () => {
    const plan = spikePlan(p);
    if (typeof plan === 'string') throw new Error(plan);
    expect(plan.taskMs).toBe(1600);
    expect(plan.nominalSmallRate).toBeCloseTo(160, 9);
    expect(plan.nominalLargeRate).toBeCloseTo(800, 9);
    expect(plan.multiple).toBe(2.5);
    expect(plan.probeRate).toBeCloseTo(320, 9);
    expect(plan.spikeAtMs).toBe(1600 + 2600);
    expect(plan.boundMs).toBe(10_000);
  });

  it('a configuration without room for a spike beyond the small pool is refused, naming the fields', () => {
    const q = resolveParams({ mode: 'quick', stress: { spikeFrom: 4, spikeTo: 8 } }, ['stress']);
    expect(spikePlan(q)).toMatch(/stress\.spikeTo \(8\) must be at least 3 × stress\.spikeFrom \(4\)/);
  });

  it('the capacity is the admitted tasks per second (429s and errors are not admitted)', () => {
    const r = run(4, 400, 1000, () => 1, (i) => (i % 2 ? OUTCOME.rejected : i % 10 === 0 ? OUTCOME.pending : OUTCOME.ok));
    expect(admittedRate(r, 0, 1000)).toEqual({ rate: 200, offered: 400, admitted: 200 });
  });
});

describe('6.2 recovery by cohort', () => {
  /** Tasks at 500/s from 0 to `ms`; served(t) says whether the task sent at t was served. */
  function tasks(ms: number, servedAt: (t: number, i: number) => boolean): LoadRun {
    return run(20, 500, ms, () => 1, (i) => (servedAt((i * 1000) / 500, i) ? OUTCOME.ok : OUTCOME.rejected));
  }

  it('is the scheduled time of the first task from which on >= 90 % are served, to the task (2 ms)', () => {
    // Spike at 1000; 40 % served until 2500, then all. A 1 s span from 2340 on averages 90 %
    // already; the recovery is still 2500, where the tasks are served again.
    expect(cohortRecovery(tasks(6000, (t, i) => t < 1000 || t >= 2500 || i % 5 < 2), 1000, 6000, 1000, 0.9)).toBe(1500);
    expect(cohortRecovery(tasks(6000, (t, i) => t < 1000 || t >= 2506 || i % 5 < 2), 1000, 6000, 1000, 0.9)).toBe(1506);
    // Served again with one task in ten refused (tasks 1253, 1263, ...): the stretch from 2500 has
    // 3 of its first 4 served; the one from 2508, after the refusal, never falls below 90 %.
    expect(cohortRecovery(tasks(6000, (t, i) => t < 1000 || (t >= 2500 && i % 10 !== 3) || (t < 2500 && i % 5 < 2)), 1000, 6000, 1000, 0.9)).toBe(1508);
  });

  it('is null when no full span follows, or when the served share never holds', () => {
    expect(cohortRecovery(tasks(2800, (t) => t >= 2500), 1000, 2800, 1000, 0.9)).toBeNull();
    // A burst of 400 ms served every 1.28 s (a small pool refilling its slots) never holds.
    expect(cohortRecovery(tasks(9000, (t) => t < 1000 || (t - 1000) % 1280 < 400), 1000, 9000, 1000, 0.9)).toBeNull();
  });

  it('a later collapse moves the recovery after it', () => {
    const r = tasks(8000, (t) => t < 3000 || t >= 4000);
    expect(cohortRecovery(r, 1000, 8000, 1000, 0.9)).toBe(3000);
  });
});

describe.skipIf(!existsSync('/proc/self/schedstat'))('SchedSampler (Linux /proc/PID/schedstat)', () => {
  it('sees a busy process run, and a stopped one neither run nor wait', async () => {
    const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    const t0 = performance.now();
    const now = (): number => performance.now() - t0;
    const sampler = new SchedSampler([child.pid!, -1], now, 50);
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    try {
      await sleep(400);
      const busyTo = now();
      child.kill('SIGSTOP');
      await sleep(100);
      const stopFrom = now();
      await sleep(400);
      const stopTo = now();
      child.kill('SIGCONT');
      const busy = sampler.between(100, busyTo)!;
      expect(busy.ranCpus + busy.waitedCpus).toBeGreaterThan(0.5); // it wanted a CPU all along
      // The host's stolen CPU (/proc/stat) is read alongside: a share of its CPUs.
      expect(busy.stealShare).toBeGreaterThanOrEqual(0);
      expect(busy.stealShare).toBeLessThanOrEqual(1);
      expect(sampler.between(stopFrom, stopTo)).toBeNull(); // neither ran nor waited
      expect(sampler.between(stopTo + 1000, stopTo + 2000)).toBeNull(); // no samples there
    } finally {
      sampler.stop();
      child.kill('SIGKILL');
    }
  });
});
