/**
 * Step results that fit and survive an interruption (runner/fit.ts, runner/step.ts,
 * bench/measure.ts `storedMeasurement`, platform/kubernetes/result.ts's size check): a 1.3-like
 * measurement with 80k raw values stays under 900 KiB with its exact percentiles; an over-budget
 * result shrinks deterministically; an impossible one fails naming the step and its size; an
 * aborted step returns what its category finished before the abort. The category is a fake
 * (CATEGORY_MODULES mocked), set per test.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Measurement, StepResult } from '../../src/api/schema.ts';
import type { BenchContext } from '../../src/bench/types.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { buildPlan } from '../../src/plan/plan.ts';
import { RESULT_BUDGET_BYTES, writeStepResult } from '../../src/platform/kubernetes/result.ts';
import type { Platform } from '../../src/platform/types.ts';
import { fitStepResult, ResultTooLarge, tooLargeResult } from '../../src/runner/fit.ts';
import { runStep } from '../../src/runner/step.ts';
import { describe as describeSamples, percentile } from '../../src/stats.ts';
import { API_VERSION_FULL } from '../../src/api/schema.ts';

let fakeRun: (ctx: BenchContext) => Promise<Measurement[]> = async () => [];
vi.mock('../../src/bench/index.ts', () => ({
  CATEGORY_MODULES: new Proxy({}, { get: () => async () => ({ run: (ctx: BenchContext) => fakeRun(ctx) }) }),
}));

const params = resolveParams({ mode: 'quick', trials: 1, agents: { poolSize: 3 } }, ['distributed']);
const step = buildPlan(params).find((s) => s.category === 'distributed')!;
const platform = { close: async () => {} } as unknown as Platform;
const log = { info() {}, warn() {}, debug() {} };
const opts = (signal = new AbortController().signal) => ({ platform, log, progress() {}, signal, attempt: 1 });

/** Deterministic, unrounded latencies like 1.3's harness samples (about 18 characters each). */
function latencies(n: number): number[] {
  let x = 12345;
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return 0.05 + (x / 2 ** 31) * 0.4;
  });
}

function doc(measurements: Measurement[]): StepResult {
  return {
    apiVersion: API_VERSION_FULL, kind: 'StepResult', step: 'distributed', category: 'distributed', attempt: 1,
    startedAt: '2025-01-01T00:00:00.000Z', finishedAt: '2025-01-01T00:01:00.000Z', node: 'n', measurements,
  };
}

beforeEach(() => {
  fakeRun = async () => [];
});

describe('a 1.3-like measurement with 80k raw values', () => {
  const raw = latencies(80_000);
  const sorted = [...raw].sort((a, b) => a - b);

  it('was over the ConfigMap limit as it stood (the issue: about 1.5 MB)', () => {
    expect(Buffer.byteLength(JSON.stringify(raw))).toBeGreaterThan(1024 * 1024);
  });

  it('is stored under 900 KiB with its exact percentiles and the original count', async () => {
    // One with the category's distribution (1.3), one without (the runner computes it on every sample).
    fakeRun = async () => [
      { id: '1.3', value: percentile(sorted, 50), samples: raw.length, raw, distribution: describeSamples(raw) },
      { id: '1.4', value: percentile(sorted, 95), samples: raw.length, raw },
    ];
    const result = await runStep(step, params, opts());
    expect(result.error).toBeUndefined();
    const fitted = fitStepResult(result);
    expect(fitted.dropped).toEqual([]);
    expect(fitted.bytes).toBeLessThan(900 * 1024);
    for (const m of fitted.result.measurements) {
      expect(m.raw!.length).toBe(500);
      expect(m.samples).toBe(80_000);
      expect(m.details!.rawStored).toEqual({ kept: 500, of: 80_000 });
      expect(m.distribution!.n).toBe(80_000);
      expect(m.distribution!.p50).toBe(percentile(sorted, 50));
      expect(m.distribution!.p95).toBe(percentile(sorted, 95));
      expect(m.distribution!.p99).toBe(percentile(sorted, 99));
      expect(m.distribution!.max).toBe(sorted.at(-1));
    }
    // The p95 of the 500 kept would not be the exact one: the distribution is not from them.
    expect(describeSamples(fitted.result.measurements[1]!.raw!).p95).not.toBe(percentile(sorted, 95));
  });

  it('leaves a measurement within the cap as it is', async () => {
    fakeRun = async () => [{ id: '1.3', value: 1, samples: 3, raw: [1, 2, 3] }];
    const r = await runStep(step, params, opts());
    const [m] = r.measurements;
    expect(m!.raw).toEqual([1, 2, 3]);
    expect(m!.details).toBeUndefined();
  });
});

describe('fitStepResult', () => {
  const big = (n: number) => Array.from({ length: n }, (_, i) => i + 0.123456789);
  const result = doc([
    { id: '1.1', value: 1, samples: 400, raw: big(400), details: { perTrial: big(300), agents: 3, note: 'kept' } },
    { id: '1.3', value: 2, samples: 500, raw: big(500), details: { perPair: { a: big(100) } } },
  ]);

  it('keeps a document that fits unchanged', () => {
    const f = fitStepResult(result);
    expect(f.result).toBe(result);
    expect(f.dropped).toEqual([]);
    expect(f.json).toBe(JSON.stringify(result));
  });

  it('drops the largest raw and detail arrays first until it fits, naming each, keeping values', () => {
    const budget = Buffer.byteLength(JSON.stringify(result)) - 6000;
    const f = fitStepResult(result, budget);
    expect(f.bytes).toBeLessThanOrEqual(budget);
    expect(f.bytes).toBe(Buffer.byteLength(f.json));
    // 1.3's raw (500 values) is the largest: dropped alone, and enough.
    expect(f.dropped).toEqual([expect.stringMatching(/^1\.3: raw \(\d+ bytes\)$/)]);
    const [m11, m13] = f.result.measurements;
    expect(m13!.raw).toBeUndefined();
    expect(m13!.details!.droppedForSize).toEqual([expect.stringMatching(/^raw \(\d+ bytes\)$/)]);
    expect(m13!.value).toBe(2);
    expect(m11!.raw).toHaveLength(400);
    // The input is not changed, and the same input shrinks the same way.
    expect(result.measurements[1]!.raw).toHaveLength(500);
    expect(fitStepResult(result, budget).json).toBe(f.json);
  });

  it('goes on to detail arrays when dropping raw samples is not enough', () => {
    const budget = 1000;
    const f = fitStepResult(result, budget);
    expect(f.bytes).toBeLessThanOrEqual(budget);
    expect(f.dropped.map((d) => d.replace(/ \(\d+ bytes\)/, ''))).toEqual(['1.3: raw', '1.1: raw', '1.1: details.perTrial', '1.3: details.perPair']);
    expect(f.result.measurements[0]!.details).toMatchObject({ agents: 3, note: 'kept' });
  });

  it('fails naming the step and its size when nothing droppable is enough', () => {
    const huge = doc([{ id: '1.1', value: null, samples: 0, fail: 'x'.repeat(RESULT_BUDGET_BYTES + 10), raw: big(10) }]);
    let err: unknown;
    try {
      fitStepResult(huge);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ResultTooLarge);
    expect((err as Error).message).toMatch(/^the result of step distributed is 900\.\d KiB \(\d+ bytes\), still 900\.\d KiB after dropping .*over the 900\.0 KiB budget/);
    // What the runner writes instead: the reason as the step's error, within the budget.
    const instead = tooLargeResult(huge, err as ResultTooLarge);
    expect(instead.measurements).toEqual([]);
    expect(instead.error).toBe((err as Error).message);
    expect(fitStepResult(instead).dropped).toEqual([]);
  });
});

describe('writeStepResult', () => {
  it('refuses a document over the budget before sending anything, naming the step and size', async () => {
    const kc = new KubeConfig();
    // Nothing listens there: a request would fail as a network error and be retried until the deadline.
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'http://127.0.0.1:9', skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const result = doc([{ id: '1.3', value: 1, samples: 1, raw: latencies(60_000) }]);
    await expect(
      writeStepResult({ kc, name: 'r', run: { namespace: 'bench', name: 'nightly', uid: 'u1' }, attempt: 1, step: 'distributed', category: 'distributed', result, timeoutMs: 300 }),
    ).rejects.toThrow(/step result of step distributed to ConfigMap bench\/r: it is \d+\.\d KiB \(\d+ bytes\), over the 900 KiB budget.*not sent/);
  });
});

describe('runStep interrupted', () => {
  const m = (id: string): Measurement => ({ id, value: 1, samples: 1, raw: [1] });

  it('returns at once with the measurements finished before the abort, and says it was interrupted', async () => {
    const ac = new AbortController();
    fakeRun = async (ctx) => {
      ctx.finished!(m('1.1'));
      ctx.finished!(m('1.3'));
      setTimeout(() => ac.abort(new Error('received SIGTERM')), 20);
      await new Promise((r) => setTimeout(r, 40));
      // After the abort: the category's own "cancelled" failure is not kept.
      ctx.finished!({ id: '1.4', value: null, samples: 0, fail: 'cancelled' });
      await new Promise(() => {}); // never returns by itself
      return [];
    };
    const t0 = Date.now();
    const result = await runStep(step, params, opts(ac.signal));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(result.measurements.map((x) => x.id)).toEqual(['1.1', '1.3']);
    expect(result.error).toBe('step distributed was interrupted (received SIGTERM): 2 of 6 tests finished (1.1, 1.3) before it');
  });

  it('keeps the handed-over measurements (catalogue order) when the category throws', async () => {
    fakeRun = async (ctx) => {
      ctx.finished!(m('1.3'));
      ctx.finished!(m('1.1'));
      throw new Error('pool lost');
    };
    const result = await runStep(step, params, opts());
    expect(result.measurements.map((x) => x.id)).toEqual(['1.1', '1.3']);
    expect(result.error).toBe('step distributed failed: pool lost; 2 of 6 tests finished (1.1, 1.3) before it');
  });

  it('uses the returned list when the category returns', async () => {
    fakeRun = async (ctx) => {
      ctx.finished!(m('1.1'));
      return [m('1.1'), { ...m('1.2'), value: 7 }];
    };
    const result = await runStep(step, params, opts());
    expect(result.measurements.map((x) => [x.id, x.value])).toEqual([['1.1', 1], ['1.2', 7]]);
    expect(result.error).toBeUndefined();
  });

  it('is interrupted before the category starts when the signal has already aborted', async () => {
    const ac = new AbortController();
    ac.abort(new Error('received SIGTERM'));
    let ran = false;
    fakeRun = async () => {
      ran = true;
      return [];
    };
    const result = await runStep(step, params, opts(ac.signal));
    expect(ran).toBe(false);
    expect(result.measurements).toEqual([]);
    expect(result.error).toBe('step distributed was interrupted (received SIGTERM): 0 of 6 tests finished before it');
  });
});
