/**
 * Sensitivity of the distributed-coordination tests (1.1–1.6): each fails on a reference agent
 * with the realistic defect it is meant to catch, at the DEFAULT targets, and the clean agent
 * passes them all. Real agent processes, nothing mocked (docs/defects.md describes the profiles).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.ts';
import type { Measurement, TestResult } from '../../src/api/schema.ts';
import { run as runDistributed } from '../../src/bench/distributed.ts';
import { loadBalance } from '../../src/bench/distributed/balance.ts';
import { formPool, poolOpts, withPool } from '../../src/bench/distributed/common.ts';
import { failover } from '../../src/bench/distributed/failover.ts';
import { formation, spawnLatency, type ColdStarts } from '../../src/bench/distributed/formation.ts';
import { crossNodeLatency } from '../../src/bench/distributed/latency.ts';
import { stateSync } from '../../src/bench/distributed/sync.ts';
import type { BenchContext } from '../../src/bench/types.ts';
import { DEFAULT_TARGETS } from '../../src/plan/catalogue.ts';
import { resolveParams, type Params } from '../../src/plan/params.ts';
import { LocalPlatform } from '../../src/platform/local/index.ts';
import type { Pool } from '../../src/platform/types.ts';
import { judgeAll } from '../../src/report/verdict.ts';
import { benchContext } from '../support/context.ts';

const platform = new LocalPlatform();
const client = new AgentClient({ maxSockets: 32 });
afterAll(async () => {
  client.close();
  await platform.close();
});

function paramsWith(defects: string[], extra: { trials?: number; poolSize?: number } = {}): Params {
  return resolveParams(
    { mode: 'quick', ...(extra.trials ? { trials: extra.trials } : {}), agents: { defects, ...(extra.poolSize ? { poolSize: extra.poolSize } : {}) } },
    ['distributed'],
  );
}

function judged(m: Measurement, params: Params): TestResult {
  // The targets are the suite's defaults: nothing here is tightened to make a test fail.
  expect(params.targets).toEqual(DEFAULT_TARGETS);
  return judgeAll([m], params).find((t) => t.id === m.id)!;
}

/** Run one test of the shared pool (1.2–1.5) on a freshly formed pool of the quick size. */
function onPool(params: Params, fn: (ctx: BenchContext, pool: Pool) => Promise<Measurement>): Promise<Measurement> {
  const ctx = benchContext(params, platform);
  return withPool(ctx, poolOpts(ctx, `s${Math.random().toString(36).slice(2, 7)}`, params.agents.agentsPerProcess), async (pool) => {
    await formPool(ctx, client, pool, params.agents.poolSize);
    return fn(ctx, pool);
  });
}

describe('the clean reference agent', () => {
  it('passes 1.1–1.6 at the default targets, and 1.5 could not have passed by chance', async () => {
    // The quick run's own trials (5): the judged p50s are the ones a user gets.
    const params = paramsWith([]);
    const ms = await runDistributed(benchContext(params, platform));
    const tests = judgeAll(ms, params);
    expect(params.targets).toEqual(DEFAULT_TARGETS);
    for (const t of tests) expect(t.result, `${t.id}: ${t.reason} ${JSON.stringify(t.details)}`).toBe('Passed');
    for (const m of ms) expect(m.sampleUnit, m.id).toBeTruthy();
    const lb = ms.find((m) => m.id === '1.5')!;
    expect(lb.samples).toBe(params.agents.poolSize);
    expect(lb.details!.randomExpectedMard as number).toBeGreaterThan(2 * DEFAULT_TARGETS.loadBalanceDeviation);
    expect(lb.details!.randomPassShare).toBe(0);
    expect(lb.details!.eachCoordinatorRunsItsOwnMard).toBeCloseTo(1.5, 6);
    expect(lb.details!.wrongResults).toBe(0);
    const rtt = ms.find((m) => m.id === '1.3')!;
    expect(rtt.details!.impossibleReports).toBe(0);
    // 1.6 ends at confirmed removal: never before the failure timeout has run out.
    const fo = ms.find((m) => m.id === '1.6')!;
    expect(fo.distribution!.min * 1000).toBeGreaterThanOrEqual(params.agents.failureTimeoutMs);
    expect(ms.find((m) => m.id === '1.2')!.details!.coldMsPerAgentP50 as number).toBeGreaterThan(0);
  }, 240_000);
});

describe('each defect fails its test at the default target', () => {
  // 1.6's two runs wait out the 60 s deadline: they run in the background while the other tests
  // run one after the other, and the last test judges them.
  let failoverRuns: Promise<TestResult[]>;
  beforeAll(() => {
    failoverRuns = Promise.all(
      ['slow-failure-detection', 'no-failure-detection'].map(async (d) => {
        const params = paramsWith([d], { poolSize: 4 });
        return judged(await failover(benchContext(params, platform), client), params);
      }),
    );
    failoverRuns.catch(() => undefined);
  });

  it('no-balancing fails 1.5: the two coordinators run everything', async () => {
    const params = paramsWith(['no-balancing']);
    const t = judged(await onPool(params, (ctx, pool) => loadBalance(ctx, client, pool)), params);
    expect(t.result).toBe('Failed');
    expect(t.value).toBeCloseTo(1.5, 6);
    expect(t.reason).toMatch(/does not meet the target <0.15 MARD \(n=8 agents, mean of 3 batches\)/);
  }, 150_000);

  it('wrong-digests fails 1.5 with the count of wrong results', async () => {
    const params = paramsWith(['wrong-digests']);
    const m = await onPool(params, (ctx, pool) => loadBalance(ctx, client, pool));
    const t = judged(m, params);
    expect(t.result).toBe('Failed');
    // 1 task in 4 is a CPU task, and every one of them comes back without its rounds.
    expect(m.details!.wrongResults).toBe((m.details!.submitted as number) / 4);
    expect(t.reason).toMatch(/^\d+ of \d+ task result\(s\) wrong \(CPU digests recomputed by the harness/);
  }, 150_000);

  it('slow-peers fails 1.3: the harness times the slow agent-to-agent hop', async () => {
    const params = paramsWith(['slow-peers']);
    const m = await onPool(params, (ctx, pool) => crossNodeLatency(ctx, client, pool));
    const t = judged(m, params);
    expect(t.result).toBe('Failed');
    expect(t.value!).toBeGreaterThanOrEqual(25);
    expect(m.details!.impossibleReports).toBe(0);
  }, 150_000);

  it('stale-reads fails 1.4 with the count of consistency violations', async () => {
    const params = paramsWith(['stale-reads']);
    const t = judged(await onPool(params, (ctx, pool) => stateSync(ctx, client, pool)), params);
    expect(t.result).toBe('Failed');
    expect(t.reason).toMatch(/^\d+ consistency violation\(s\)/);
  }, 150_000);

  it('slow-startup fails 1.1 and 1.2', async () => {
    const params = paramsWith(['slow-startup'], { trials: 2 });
    const ctx = benchContext(params, platform);
    const cold: ColdStarts = { agents: 0, readyMs: [] };
    const t11 = judged(await formation(ctx, client, cold), params);
    expect(t11.result).toBe('Failed');
    expect(t11.value!).toBeGreaterThan(5000);
    const t12 = judged(await onPool(params, (c, pool) => spawnLatency(c, client, pool, cold)), params);
    expect(t12.result).toBe('Failed');
    // 5 s before any of the batch of 8 is ready: over 600 ms per agent.
    expect(t12.value!).toBeGreaterThan(600);
    expect(t12.reason).toMatch(/n=2 batches of 8 agents/);
    expect(t12.details!.judged).toMatch(/divided by 8/);
  }, 200_000);

  it('slow-failure-detection and no-failure-detection fail 1.6: censored at the deadline', async () => {
    const [slow, none] = await failoverRuns;
    for (const t of [slow!, none!]) {
      expect(t.result).toBe('Failed');
      expect(t.reason).toMatch(/not recovered 60 s \(twice the target\).*censored at the deadline.*still listed .* as alive or suspect/);
      expect(t.value).toBe(2 * DEFAULT_TARGETS.failoverSeconds);
    }
  }, 200_000);
});
