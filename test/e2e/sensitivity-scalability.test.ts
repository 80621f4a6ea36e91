/**
 * Sensitivity of 4.1–4.5 at the DEFAULT target (`scalingEfficiency` 90 %), quick mode, real
 * reference agents on loopback:
 * - the clean agent: every step Passed, or Skipped "host-bound" with the figures that show the host
 *   ran out, or "load generator behind schedule" with the lag (never Failed, never Passed without
 *   saturating the pool);
 * - `global-lock` (a coordinator forwards one task at a time): every step Failed on its value;
 * - `no-balancing` (a coordinator runs every task itself): Failed on its value;
 * - `wrong-digests` (CPU tasks answered without their rounds): every step Failed, with the count.
 * The defect runs use fewer pool sizes to keep the file under 3 minutes; the defaults are the
 * quick mode's otherwise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/bench/scalability.ts';
import type { Logger } from '../../src/log.ts';
import type { Measurement, TestResult } from '../../src/api/schema.ts';
import { resolveParams, type Params } from '../../src/plan/params.ts';
import { LocalPlatform } from '../../src/platform/local/index.ts';
import { judgeAll } from '../../src/report/verdict.ts';

const log: Logger = { info: () => undefined, warn: (m, f) => console.warn(m, f), debug: () => undefined };
let platform: LocalPlatform;

beforeAll(() => {
  platform = new LocalPlatform();
});
afterAll(async () => {
  await platform.close();
});

async function measure(defects: string[], steps?: number[]): Promise<{ tests: TestResult[]; params: Params; ms: Measurement[]; elapsedMs: number }> {
  const params = resolveParams({ mode: 'quick', agents: { defects, ...(steps ? { steps } : {}) } }, ['scalability']);
  const t0 = Date.now();
  const ms = await run({ params, platform, log, progress: () => undefined, signal: new AbortController().signal });
  const elapsedMs = Date.now() - t0;
  const tests = judgeAll(ms, params).filter((t) => t.category === 'scalability');
  console.log(
    `scalability [${defects.join(',') || 'clean'}] ${elapsedMs} ms: ` +
      tests.map((t) => `${t.id} ${t.result} ${t.value === null ? '-' : t.value.toFixed(1)} ${t.result === 'Passed' ? '' : `(${t.reason})`}`).join('; '),
  );
  return { tests, params, ms, elapsedMs };
}

interface Details {
  agents: number;
  throughput: number;
  idealThroughput: number;
  host: { hostBusyPct: number | null; benchmarkCpus: number; harnessCpuPct: number; mainThreadsWaitedCpus: number | null };
  counts: { wrong: number };
  checks: { cpuDigestsRecomputed: number };
}

describe('4.x sensitivity at the default target', () => {
  it('the clean agent passes each step, or is honestly Skipped (host-bound, not saturated) with the figures', async () => {
    const { tests, params, elapsedMs } = await measure([]);
    expect(params.targets.scalingEfficiency).toBe(90);
    expect(tests.map((t) => t.id)).toEqual(['4.1', '4.2', '4.3', '4.4', '4.5']);
    for (const t of tests) {
      const d = t.details as unknown as Details;
      expect(d.agents).toBe(params.agents.steps[tests.indexOf(t)]);
      expect(d.counts.wrong).toBe(0);
      if (t.result === 'Passed') {
        expect(t.value!).toBeGreaterThanOrEqual(90);
        continue;
      }
      // Never Failed: the other outcomes are Skipped, saying why with the figures. Not saturated:
      // the harness on these 2 cores could not keep the largest pools busy (efficiency at or above
      // the target, but the throughput is the harness's).
      expect(t.result).toBe('Skipped');
      if (/^not saturated: /.test(t.reason!)) {
        expect(t.reason).toMatch(/^not saturated: \d+ agents neither refused a task nor queued with \d+ outstanding/);
        expect(t.value!).toBeGreaterThanOrEqual(90);
        continue;
      }
      if (/^load generator behind schedule: /.test(t.reason!)) {
        // The harness's own loop was late (src/bench/load/lag.ts): the figures and the bound are in the details.
        const lag = (t.details as { loadGeneratorLag?: { behind: boolean; bound: { p50Ms: number; p99Ms: number } } }).loadGeneratorLag!;
        expect(lag.behind).toBe(true);
        expect(lag.bound).toEqual({ p50Ms: 20, p99Ms: 500 });
        expect(t.reason).toMatch(/median > 20 ms or p99 > 500 ms/);
        continue;
      }
      expect(t.reason).toMatch(/^host-bound: /);
      expect(t.reason).toMatch(/all \d+ agents executed tasks \(\d+ over the run\), and the pool did [\d.]+ tasks\/s of the [\d.]+ that \d+ x T\(1\) would be \(efficiency [\d.]+ %, target 90 %\)/);
      expect(t.value!).toBeLessThan(90);
      expect(d.throughput).toBeLessThan(0.9 * d.idealThroughput);
      expect(d.host.benchmarkCpus).toBeGreaterThan(0);
    }
    // The smallest pools are within what this host drives, unless the harness itself fell behind.
    if (!/^load generator behind schedule: /.test(tests[0]!.reason ?? '')) expect(tests[0]!.result).toBe('Passed');
    // Quick budget: about a minute here.
    expect(elapsedMs).toBeLessThan(110_000);
  }, 150_000);

  it('global-lock (a coordinator forwards one task at a time) fails every step on its value', async () => {
    const { tests } = await measure(['global-lock'], [4, 16]);
    for (const t of tests.slice(0, 2)) {
      expect(t.result).toBe('Failed');
      // Usually the ratio is far under the target. Once (npm test, 2026-12-03, a busy machine) the
      // one-agent reference run behind the lock completed no task in its window: the efficiency
      // is then undefined and the step Failed saying so; that too is the defect, not a pass.
      if (/the one-agent reference run completed no task in its window/.test(t.reason ?? '')) continue;
      expect(t.reason).toMatch(/does not meet the target >=90 %/);
      expect(t.value!).toBeLessThan(50);
    }
  }, 120_000);

  it('no-balancing (a coordinator runs every task itself) fails on its value', async () => {
    const { tests } = await measure(['no-balancing'], [4]);
    const t = tests[0]!;
    expect(t.result).toBe('Failed');
    expect(t.reason).toMatch(/does not meet the target >=90 %/);
    expect(t.value!).toBeLessThan(50);
    expect((t.details as { executors: number }).executors).toBe(1);
  }, 120_000);

  it('wrong-digests fails every step with the mismatch count', async () => {
    const { tests } = await measure(['wrong-digests'], [4, 8]);
    for (const t of tests.slice(0, 2)) {
      const d = t.details as unknown as Details;
      expect(t.result).toBe('Failed');
      expect(d.counts.wrong).toBeGreaterThan(0);
      expect(t.reason).toContain(`${d.counts.wrong} wrong result(s) among`);
      expect(d.checks.cpuDigestsRecomputed).toBeGreaterThanOrEqual(d.counts.wrong);
    }
  }, 120_000);
});
