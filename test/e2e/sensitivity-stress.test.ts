/**
 * Sensitivity of the stress tests (6.1–6.3) at their DEFAULT targets, against real reference agents
 * on loopback: the clean agent passes each; each test fails on the realistic defect it is meant
 * to catch (docs/defects.md), judged by the real verdict:
 *
 * - 6.1: a 3 s SIGSTOP of the process hosting 4 of the 20 agents in the middle of the run (a GC
 *   pause, a node's CPU throttled) fails the latency-drift rule naming the window; `lost-tasks`
 *   fails it on the lost count.
 * - 6.2: a spike the small pool cannot carry fails without effective scale-out (a platform whose
 *   pools cannot grow, as at a quota; and `slow-startup`, whose new agents join 8 s late) and
 *   passes with it (the clean run).
 * - 6.3: `lost-tasks` and `no-load-shedding` fail it.
 *
 * Figures are printed, so a run shows the margins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Measurement, TestResult } from '../../src/api/schema.ts';
import { exhaustion, runStress, spike, sustained, type StressHooks } from '../../src/bench/stress.ts';
import type { BenchContext } from '../../src/bench/types.ts';
import type { Logger } from '../../src/log.ts';
import { resolveParams, type Params } from '../../src/plan/params.ts';
import { LocalPlatform } from '../../src/platform/local/index.ts';
import type { Platform, Pool, PoolOptions } from '../../src/platform/types.ts';
import { judgeAll } from '../../src/report/verdict.ts';

const log: Logger = { info: () => undefined, warn: (m, f) => console.warn(m, f), debug: () => undefined };
let platform: LocalPlatform;

function paramsWith(defects: string[] = []): Params {
  return resolveParams({ mode: 'quick', agents: { defects } }, ['stress']);
}

function ctxOf(p: Params, pl: Platform = platform): BenchContext {
  return { params: p, platform: pl, log, progress: () => undefined, signal: new AbortController().signal };
}

function judged(m: Measurement, p: Params): TestResult {
  return judgeAll([m], p).find((t) => t.id === m.id)!;
}

function show(label: string, t: TestResult): void {
  console.log(`${label}: ${t.id} ${t.result} value=${t.value}${t.reason ? ` — ${t.reason.slice(0, 400)}` : ''}`);
}

/** A platform whose pools cannot grow (a cluster at its quota): scaleTo answers the same agents. */
class NoScaleOutPlatform implements Platform {
  readonly kind = 'local' as const;
  private readonly inner: Platform;
  constructor(inner: Platform) {
    this.inner = inner;
  }
  async createPool(opts: PoolOptions): Promise<Pool> {
    const pool = await this.inner.createPool(opts);
    return {
      name: pool.name,
      agents: () => pool.agents(),
      scaleTo: () => Promise.resolve(pool.agents()),
      kill: (id) => pool.kill(id),
      stats: () => pool.stats(),
      close: () => pool.close(),
    };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

beforeAll(() => {
  platform = new LocalPlatform();
});
afterAll(async () => {
  await platform.close();
});

describe('stress sensitivity at the default targets', () => {
  it('the clean reference agent passes 6.1, 6.2 and 6.3', async () => {
    const p = paramsWith();
    const t0 = Date.now();
    const ms = await runStress(ctxOf(p));
    const results = judgeAll(ms, p);
    for (const t of results) show('clean', t);
    console.log(`clean stress category: ${Date.now() - t0} ms`);
    if (results.some((t) => t.result !== 'Passed')) console.log(JSON.stringify({ judged61: ms[0]!.details?.judged, trial62: (ms[1]!.details as { trials?: unknown[] }).trials?.[0] }));
    expect(results.map((t) => t.result)).toEqual(['Passed', 'Passed', 'Passed']);
    const [m61, m62, m63] = ms;
    expect(m61!.sampleUnit).toBe('tasks');
    expect(m62!.sampleUnit).toBe('trials');
    expect(m63!.sampleUnit).toBe('tasks');
    // 6.1: warm-up tasks are out of n, and the drift is well inside its target.
    const d61 = m61!.details as { warmupTasks: number; counts: { offered: number }; judged: { driftPct: number } };
    expect(d61.warmupTasks).toBeGreaterThan(0);
    expect(m61!.samples).toBe(d61.counts.offered - d61.warmupTasks);
    expect(d61.judged.driftPct).toBeLessThan(p.targets.sustainedP95DriftPct);
    // 6.2: the spike really exceeded the small pool (most of it was refused before the pool grew),
    // and the value is finer than a window.
    const d62 = m62!.details as { resolutionMs: number; trials: { spikeRate: number; capacity: { final: number }; counts: { rejected: number }; scaleReadySeconds: number }[] };
    const tr = d62.trials[0]!;
    expect(tr.spikeRate).toBeGreaterThan(2 * tr.capacity.final);
    expect(tr.counts.rejected).toBeGreaterThan(0);
    expect(d62.resolutionMs).toBeLessThan(10);
  }, 150_000);

  it('6.1 fails when 4 of the 20 agents stall for 3 s in the middle of the run', async () => {
    const p = paramsWith();
    const stalls: { pid: number; agents: number }[] = [];
    const timers: NodeJS.Timeout[] = [];
    let stopped: number | undefined;
    const hooks: StressHooks = {
      onPool: (test, pool) => {
        if (test !== '6.1') return;
        // The host process with the fewest agents (quick: 8 + 8 + 4 per process).
        const byPid = new Map<number, number>();
        for (const a of pool.agents()) byPid.set(a.pid, (byPid.get(a.pid) ?? 0) + 1);
        const [pid, agents] = [...byPid].sort((x, y) => x[1] - y[1])[0]!;
        expect(agents).toBe(4);
        // The load starts now; the warm-up ends 2–10 s later (sooner on a quiet host), and the
        // 3 s stall starts 10.5 s from now: in the measured interval, near its middle.
        const at = Math.min(2000, p.stress.sustainedMs / 10) + p.stress.sustainedMs / 2 - 1500;
        timers.push(
          setTimeout(() => {
            process.kill(pid, 'SIGSTOP');
            stopped = pid;
            stalls.push({ pid, agents });
            timers.push(
              setTimeout(() => {
                process.kill(pid, 'SIGCONT');
                stopped = undefined;
              }, 3000),
            );
          }, at),
        );
      },
    };
    let m: Measurement;
    try {
      m = await sustained(ctxOf(p), hooks);
    } finally {
      for (const t of timers) clearTimeout(t);
      if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
    }
    expect(stalls).toHaveLength(1);
    const t = judged(m, p);
    show('stall', t);
    const dj = (m.details as { judged: { driftPct: number } }).judged;
    // The windows, when the stall was seen less than this test expects (a CI run shows why).
    if (!(dj.driftPct > 10 * p.targets.sustainedP95DriftPct)) console.log(JSON.stringify({ warmup: (m.details as { warmup?: unknown }).warmup, stalls, judged: dj }));
    expect(t.result).toBe('Failed');
    expect(m.fail).toMatch(/p95 latency drifted \+\d+/);
    expect(m.fail).toMatch(/in the window [\d.]+–[\d.]+ s after warm-up/);
    // Nothing was lost: the stall is caught by the latency rule alone.
    expect((m.details as { lost: number }).lost).toBe(0);
    expect((m.details as { judged: { driftPct: number } }).judged.driftPct).toBeGreaterThan(10 * p.targets.sustainedP95DriftPct);
  }, 120_000);

  it('6.2 fails with slow-startup: new agents join 8 s after the spike asked for them', async () => {
    const p = paramsWith(['slow-startup']);
    const m = await spike(ctxOf(p));
    const t = judged(m, p);
    show('slow-startup', t);
    expect(t.result).toBe('Failed');
    // The recovery waits for the new agents' 8 s start-up, less at most the slack of the tasks the
    // saturated small pool had queued (at 5 s, one CI run measured 4.83 s: hence the 8 s default).
    expect(m.fail ?? m.value! >= p.targets.spikeRecoverySeconds).toBeTruthy();
    const tr = (m.details as { trials: { scaleReadySeconds: number | null }[] }).trials[0]!;
    if (tr.scaleReadySeconds !== null) expect(tr.scaleReadySeconds).toBeGreaterThanOrEqual(8);
  }, 120_000);
});

// These fail on counts or by construction, not on timings: they run at once, to save time.
describe.concurrent('stress sensitivity at the default targets: counts and construction', () => {
  it.concurrent('lost-tasks fails 6.1 on the lost count', async ({ expect }) => {
    const p = paramsWith(['lost-tasks']);
    const m61 = await sustained(ctxOf(p));
    const t61 = judged(m61, p);
    show('lost-tasks', t61);
    expect(t61.result).toBe('Failed');
    expect(m61.fail).toMatch(/accepted task\(s\) never done/);
    expect((m61.details as { lost: number }).lost).toBeGreaterThan(0);
  }, 150_000);

  it.concurrent('lost-tasks fails 6.3 on the lost count', async ({ expect }) => {
    const p = paramsWith(['lost-tasks']);
    const m63 = await exhaustion(ctxOf(p));
    const t63 = judged(m63, p);
    show('lost-tasks', t63);
    expect(t63.result).toBe('Failed');
    expect(m63.value).toBeGreaterThan(0);
  }, 150_000);

  it.concurrent('no-load-shedding fails 6.3', async ({ expect }) => {
    const p = paramsWith(['no-load-shedding']);
    const m = await exhaustion(ctxOf(p));
    const t = judged(m, p);
    show('no-load-shedding', t);
    expect(t.result).toBe('Failed');
    expect(m.fail).toMatch(/no load shedding: 0 of \d+ tasks were answered 429/);
  }, 120_000);

  it.concurrent('6.2 fails when the pool cannot grow: the spike is never carried (censored at the bound)', async ({ expect }) => {
    const p = paramsWith();
    const m = await spike(ctxOf(p, new NoScaleOutPlatform(platform)));
    const t = judged(m, p);
    show('no scale-out', t);
    expect(t.result).toBe('Failed');
    expect(m.value).toBeNull();
    expect(m.fail).toMatch(/not recovered within 10 s of the spike in 1 of 1 trial\(s\) \(censored at the bound\)/);
    expect((m.details as { censoredTrials: number }).censoredTrials).toBe(1);
  }, 120_000);
});
