/**
 * Scalability (4.1–4.5) against real reference agents on loopback, shortened (1 s tasks, three
 * pool sizes) so that it checks the method's bookkeeping in seconds: every task accounted for and
 * checked, the throughput within what the pool can physically do, the value the efficiency of the
 * figures in details, and the harness's own latencies. Whether the clean agent passes the default
 * target at the quick mode's sizes, and whether defects fail it, is test/e2e/sensitivity-scalability.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/bench/scalability.ts';
import type { LoadCounts } from '../../src/bench/load/index.ts';
import { capacityRate, coordinatorCount, outstandingFor, scalingPlan } from '../../src/bench/scalability/plan.ts';
import type { Logger } from '../../src/log.ts';
import type { Measurement } from '../../src/api/schema.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { LocalPlatform } from '../../src/platform/local/index.ts';
import { judgeAll } from '../../src/report/verdict.ts';

const log: Logger = { info: () => undefined, warn: (m, f) => console.warn(m, f), debug: () => undefined };
let platform: LocalPlatform;
let ms: Measurement[] = [];
let elapsedMs = 0;
const quick = resolveParams({ mode: 'quick' }, ['scalability']);
const params = { ...quick, agents: { ...quick.agents, steps: [2, 4, 8], stepSeconds: 1 } };
const plan = scalingPlan(params);

interface Details {
  agents: number;
  throughput: number;
  completions: number;
  baseThroughput: number;
  idealThroughput: number;
  outstanding: number;
  coordinators: string[];
  latencyMs: { p50: number; p95: number; n: number };
  counts: LoadCounts;
  checks: { checked: number; cpuDigestsRecomputed: number; cpuDigestsNotRecomputed: number; cpuCheckEvery: number; executors: number };
  executors: number;
  saturatedBy: string | null;
  host: { harnessCpuPct: number; hostCpus: number; benchmarkCpus: number };
  base: { agents: number; counts: LoadCounts; throughput: number };
}

beforeAll(async () => {
  platform = new LocalPlatform();
  const t0 = Date.now();
  ms = await run({ params, platform, log, progress: () => undefined, signal: new AbortController().signal });
  elapsedMs = Date.now() - t0;
}, 120_000);
afterAll(async () => {
  await platform.close();
});

describe('scalability method, real agents (shortened)', () => {
  it('one measurement per configured pool size, in catalogue order; the rest Skipped', () => {
    expect(ms.map((m) => m.id)).toEqual(['4.1', '4.2', '4.3', '4.4', '4.5']);
    console.log(
      `scalability (1 s tasks): ${elapsedMs} ms;`,
      ms.slice(0, 3).map((m) => `${m.id} N=${(m.details as unknown as Details).agents} eff=${m.value}% ${m.fail ?? m.skip ?? ''}`).join('; '),
    );
    expect(ms[3]!.skip).toMatch(/no pool size configured for step 4/);
    expect(ms[4]!.skip).toMatch(/no pool size configured for step 5/);
    expect(elapsedMs).toBeLessThan(60_000);
  });

  it('every task is accounted for and every result checked', () => {
    params.agents.steps.forEach((n, k) => {
      const m = ms[k]!;
      const d = m.details as unknown as Details;
      expect(d.agents).toBe(n);
      expect(d.outstanding).toBe(outstandingFor(n, params.agents.capacity));
      expect(d.coordinators).toHaveLength(coordinatorCount(n));
      for (const c of [d.counts, d.base.counts]) {
        expect(c.ok + c.wrong + c.rejected + c.error + c.timeout + c.lost + c.dropped).toBe(c.offered);
        expect(c.wrong).toBe(0);
        expect(c.lost).toBe(0);
      }
      // Every done task was checked; every CPU digest recomputed.
      expect(d.checks.checked).toBe(d.counts.ok + d.counts.wrong);
      expect(d.checks.cpuCheckEvery).toBe(1);
      expect(d.checks.cpuDigestsNotRecomputed).toBe(0);
      expect(d.checks.cpuDigestsRecomputed).toBeGreaterThan(0);
      // The system's dispatch spread the work over every agent.
      expect(d.executors).toBe(n);
      expect(m.sampleUnit).toBe('tasks');
      expect(m.samples).toBe(d.completions);
    });
  });

  it('the value is the efficiency of the figures, and the throughput is the pool`s, within what it can do', () => {
    for (const m of ms.slice(0, 3)) {
      const d = m.details as unknown as Details;
      expect(m.value).not.toBeNull();
      expect(m.value!).toBeCloseTo((d.throughput / (d.agents * d.baseThroughput)) * 100, 1);
      expect(d.idealThroughput).toBeCloseTo(d.agents * d.baseThroughput, 1);
      // Saturated, and never above N x capacity / task length (CPU tasks, 1 in 64, are quick).
      expect(d.saturatedBy).not.toBeNull();
      expect(d.throughput).toBeLessThan(capacityRate(d.agents, plan) * 1.05);
      expect(d.base.throughput).toBeLessThan(capacityRate(1, plan) * 1.05);
      expect(d.throughput).toBeGreaterThan(0);
      // Harness-timed: no task is seen done before its IO wait is over.
      expect(d.latencyMs.p50).toBeGreaterThanOrEqual(plan.taskMs);
      expect(d.latencyMs.p95).toBeGreaterThanOrEqual(d.latencyMs.p50);
      expect(d.latencyMs.n).toBe(d.completions);
      expect(d.host.hostCpus).toBeGreaterThan(0);
      expect(d.host.harnessCpuPct).toBeGreaterThan(0);
    }
  });

  it('the verdict judges the value against the target', () => {
    const tests = judgeAll(ms, params).filter((t) => t.category === 'scalability');
    for (const t of tests.slice(0, 3)) expect(['Passed', 'Failed', 'Skipped']).toContain(t.result);
    for (const t of tests.slice(0, 3)) if (t.result !== 'Skipped' && t.value !== null && t.value >= 90) expect(t.result).toBe('Passed');
  });
});
