/**
 * Distributed coordination (1.x) and integration (5.x) against real agent processes, healthy and
 * with injected faults. The defect profiles at the default targets are in
 * sensitivity-distributed.test.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.ts';
import { run as runDistributed } from '../../src/bench/distributed.ts';
import { formPool, poolOpts, withPool } from '../../src/bench/distributed/common.ts';
import { failover } from '../../src/bench/distributed/failover.ts';
import { crossNodeLatency } from '../../src/bench/distributed/latency.ts';
import { run as runIntegration, expectedOutput, workflowFor } from '../../src/bench/integration.ts';
import type { Measurement } from '../../src/api/schema.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { LocalPlatform } from '../../src/platform/local/index.ts';
import { judgeAll } from '../../src/report/verdict.ts';
import { benchContext } from '../support/context.ts';
import { FaultPlatform } from '../support/fault-platform.ts';

const byId = (ms: Measurement[], id: string) => ms.find((m) => m.id === id)!;
const params = resolveParams({ mode: 'quick', trials: 3, agents: { poolSize: 4 } }, ['distributed', 'integration']);

describe('distributed coordination on a healthy pool', () => {
  const platform = new LocalPlatform();
  afterAll(() => platform.close());
  let ms: Measurement[] = [];

  it('measures all six tests with plausible values and agreeing counts', async () => {
    ms = await runDistributed(benchContext(params, platform));
    expect(ms.map((m) => m.id)).toEqual(['1.1', '1.2', '1.3', '1.4', '1.5', '1.6']);
    for (const m of ms) expect(m.fail, `${m.id}: ${m.fail}`).toBeUndefined();
    for (const m of ms) expect(m.sampleUnit, m.id).toBeTruthy();
    // 1.1 formation: real process start and gossip take time, but well under a minute.
    expect(byId(ms, '1.1').value!).toBeGreaterThan(1);
    expect(byId(ms, '1.1').value!).toBeLessThan(60_000);
    expect(byId(ms, '1.1').samples).toBe(3);
    // 1.2: the judged warm figure per agent, the cold one from 1.1's trials beside it.
    const spawn = byId(ms, '1.2');
    expect(spawn.sampleUnit).toBe(`batches of ${params.agents.spawnBatch} agents`);
    expect(spawn.details!.coldTrials).toBe(3);
    // 1.3 loopback round trips timed by the harness: above 10 µs, below a second; pairs × rounds samples.
    const rtt = byId(ms, '1.3');
    expect(rtt.value!).toBeGreaterThan(0.01);
    expect(rtt.value!).toBeLessThan(1000);
    expect(rtt.samples).toBe((rtt.details!.pairs as number) * (rtt.details!.rounds as number));
    expect(rtt.details!.impossibleReports).toBe(0);
    // 1.4 no consistency violations on a healthy pool; enough writes for its p95.
    expect(byId(ms, '1.4').details!.consistencyViolations).toBe(0);
    expect(byId(ms, '1.4').samples).toBeGreaterThanOrEqual(20);
    // 1.5 every task executed once by an agent of the pool; n is the number of agents.
    const lb = byId(ms, '1.5');
    const per = Object.values(lb.details!.perAgent as Record<string, number>);
    expect(per.reduce((a, b) => a + b, 0)).toBe((lb.details!.batches as number) * (lb.details!.tasksPerBatch as number));
    expect(lb.samples).toBe(params.agents.poolSize);
    expect(lb.details!.wrongResults).toBe(0);
    // 1.6 a killed agent was suspected first, then its removal confirmed, then recovery timed.
    const fo = byId(ms, '1.6');
    expect(fo.samples).toBe(3);
    expect(fo.details!.lost).toBe(0);
    expect(fo.details!.accepted as number).toBeGreaterThan(0);
    expect(fo.details!.suspectedMsP50 as number).toBeGreaterThan(0);
    expect(fo.details!.confirmedMsP50 as number).toBeGreaterThanOrEqual(fo.details!.suspectedMsP50 as number);
    expect(fo.value! * 1000).toBeGreaterThanOrEqual(fo.details!.confirmedMsP50 as number);
  });
});

describe('distributed coordination with injected faults', () => {
  it('injected latency shows up in 1.3 by at least the amount injected', async () => {
    const platform = new FaultPlatform({ all: { latencyMs: 15 } });
    try {
      const ctx = benchContext(params, platform);
      const client = new AgentClient({ maxSockets: 8 });
      const m = await withPool(ctx, poolOpts(ctx, 'lat', params.agents.agentsPerProcess), async (pool) => {
        await formPool(ctx, client, pool, params.agents.poolSize);
        return crossNodeLatency(ctx, client, pool);
      });
      client.close();
      expect(m.value!).toBeGreaterThanOrEqual(15);
      expect(m.details!.agentReportedMsP50 as number).toBeGreaterThanOrEqual(15);
      expect(judgeAll([m], params).find((t) => t.id === '1.3')!.result).toBe('Failed');
    } finally {
      await platform.close();
    }
  });

  it('a planted lost task at the coordinator is counted as a data-loss event in 1.6', async () => {
    const platform = new FaultPlatform({ first: { pool: 'failover', faults: { loseAccepted: 2 } } });
    try {
      const client = new AgentClient({ maxSockets: 8 });
      const fo = await failover(benchContext(params, platform), client);
      client.close();
      expect(fo.details!.lost).toBe(2);
      expect(fo.fail).toMatch(/2 accepted task\(s\) never completed/);
      expect(judgeAll([fo], params).find((t) => t.id === '1.6')!.result).toBe('Failed');
    } finally {
      await platform.close();
    }
  });
});

describe('integration', () => {
  it('the expected-output oracle is independent and exact', () => {
    expect(expectedOutput('ab', [{ op: 'upper' }, { op: 'reverse' }, { op: 'append', arg: '!' }])).toBe('BA!');
    expect(expectedOutput('', [{ op: 'sha256' }])).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(workflowFor(3, 4).steps).toHaveLength(4);
  });

  it('workflows cross agents with checked outputs, and cleanup leaves nothing behind', async () => {
    const platform = new LocalPlatform();
    try {
      const ms = await runIntegration(benchContext(params, platform));
      expect(ms.map((m) => m.id)).toEqual(['5.1', '5.2', '5.3']);
      for (const m of ms) expect(m.fail, `${m.id}: ${m.fail}`).toBeUndefined();
      expect(byId(ms, '5.1').details!.minDistinctAgentsPerWorkflow as number).toBeGreaterThanOrEqual(2);
      expect(byId(ms, '5.2').details!.wrongOutputs).toBe(0);
      expect(byId(ms, '5.3').details).toMatchObject({ leftoverProcesses: 0, leftoverPorts: 0 });
      // Injected latency makes each hop slower: 5 steps × 30 ms at least.
    } finally {
      await platform.close();
    }
  });

  it('injected latency slows every workflow hop and can fail 5.1', async () => {
    const platform = new FaultPlatform({ all: { latencyMs: 30 } });
    try {
      const ms = await runIntegration(benchContext(params, platform));
      expect(byId(ms, '5.1').value!).toBeGreaterThanOrEqual(params.integration.workflowSteps * 30);
      const strict = resolveParams({ mode: 'quick', targets: { workflowLatencyMs: 100 } }, ['integration']);
      expect(judgeAll(ms, strict).find((t) => t.id === '5.1')!.result).toBe('Failed');
    } finally {
      await platform.close();
    }
  });
});
