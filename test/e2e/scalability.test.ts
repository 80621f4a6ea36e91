/**
 * Scalability (4.1–4.5) with quick parameters against real reference agents on loopback.
 * The machine is shared and small, so the assertions are about consistency and plausibility,
 * never about the system passing its targets; the verdict is shown to be able to fail.
 */
import type { LoadCounts } from '../../src/bench/load/index.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/bench/scalability.ts';
import type { Logger } from '../../src/log.ts';
import type { Measurement } from '../../src/api/schema.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { LocalPlatform } from '../../src/platform/local/index.ts';
import { judgeAll } from '../../src/report/verdict.ts';

const log: Logger = { info: () => undefined, warn: (m, f) => console.warn(m, f), debug: () => undefined };
let platform: LocalPlatform;
let ms: Measurement[] = [];
let elapsedMs = 0;
const params = resolveParams({ mode: 'quick' }, ['scalability']);

beforeAll(async () => {
  platform = new LocalPlatform();
  const t0 = Date.now();
  ms = await run({ params, platform, log, progress: () => undefined, signal: new AbortController().signal });
  elapsedMs = Date.now() - t0;
}, 180_000);
afterAll(async () => {
  await platform.close();
});

type Counts = LoadCounts;

describe('scalability, quick mode, real agents', () => {
  it('reports one efficiency per pool size, in catalogue order, within the quick budget', () => {
    expect(ms.map((m) => m.id)).toEqual(['4.1', '4.2', '4.3', '4.4', '4.5']);
    console.log(
      `scalability: ${elapsedMs} ms;`,
      ms.map((m) => `${m.id} N=${(m.details as { agents: number }).agents} eff=${m.value}% p95=${(m.details as { latencyMs: { p95: number } }).latencyMs.p95}ms`).join('; '),
    );
    // ≲ 60 s on the 2-core machine; the bound leaves room for a busy one.
    expect(elapsedMs).toBeLessThan(120_000);
  });

  it('each step measured the pool size asked for, with counts that add up to the offered load', () => {
    params.agents.steps.forEach((n, k) => {
      const m = ms[k]!;
      expect(m.fail).toBeUndefined();
      const d = m.details as Record<string, unknown>;
      expect(d.agents).toBe(n);
      const c = d.counts as Counts;
      // The schedule is exact: N × rate × (warm-up + measured) seconds.
      expect(c.offered).toBe(Math.round(n * params.agents.ratePerAgent * params.agents.stepSeconds * 1.25));
      expect(c.ok + c.rejected + c.error + c.timeout + c.lost + c.dropped).toBe(c.offered);
      expect(c.lost).toBe(0); // direct tasks: nothing can be accepted-and-lost
      const base = d.baseCounts as Counts;
      expect(base.offered).toBe(Math.round(params.agents.ratePerAgent * params.agents.stepSeconds * 1.25));
    });
  });

  it('values and per-agent resources are in plausible ranges', () => {
    for (const m of ms) {
      const d = m.details as {
        agents: number;
        baseThroughput: number;
        offeredRate: number;
        throughput: number;
        latencyMs: { p50: number; p95: number };
        memoryPerAgentMB: number;
        cpuPerAgentPct: number;
      };
      expect(m.value).not.toBeNull();
      // The value is the weak-scaling efficiency of the figures in details.
      expect(m.value!).toBeCloseTo((d.throughput / d.agents / d.baseThroughput) * 100, 1);
      expect(m.value!).toBeGreaterThan(0);
      // Credited throughput never exceeds the offered load, so efficiency is at most
      // 100 % × (offered / achieved) of the reference run.
      expect(d.throughput).toBeLessThanOrEqual(d.offeredRate + 1e-9);
      expect(m.value!).toBeLessThanOrEqual((100 * params.agents.ratePerAgent) / d.baseThroughput + 0.01);
      // 80 % of the tasks wait 20 ms, and latency counts from the scheduled send time.
      expect(d.latencyMs.p50).toBeGreaterThanOrEqual(params.agents.ioTaskMs - 1);
      expect(d.latencyMs.p95).toBeGreaterThanOrEqual(d.latencyMs.p50);
      expect(d.memoryPerAgentMB).toBeGreaterThan(1);
      expect(d.memoryPerAgentMB).toBeLessThan(512);
      expect(d.cpuPerAgentPct).toBeGreaterThanOrEqual(0);
      expect(d.cpuPerAgentPct).toBeLessThan(200);
      // Raw samples: per-window efficiency, as many as windows in the measured interval.
      expect(m.raw!.length).toBe(m.samples);
      expect(m.samples).toBe((params.agents.stepSeconds * 1000) / 500);
      expect(m.distribution!.n).toBe(m.samples);
    }
  });

  it('the framework judges efficiency against the target, and an impossible target fails', () => {
    const impossible = { ...params, targets: { ...params.targets, scalingEfficiency: 1000 } };
    const failed = judgeAll(ms, impossible).filter((t) => t.category === 'scalability');
    expect(failed).toHaveLength(5);
    for (const t of failed) {
      expect(t.result).toBe('Failed');
      expect(t.reason).toMatch(/does not meet the target >=1000/);
    }
    const trivial = { ...params, targets: { ...params.targets, scalingEfficiency: 0 } };
    expect(judgeAll(ms, trivial).filter((t) => t.category === 'scalability').every((t) => t.result === 'Passed')).toBe(true);
  });
});
