/**
 * The GPU category's measurements on small parameters: leak detection in 2.3, the trend fit of
 * 2.5, the skip of 2.1 without a GPU in use, and the 2.1 / 2.4 paths walked through a stand-in
 * for tfjs-node-gpu.
 */
import { describe, expect, it } from 'vitest';
import { measureMemory, openGpuSession, runGpu } from '../../src/bench/gpu.ts';
import { fitTrend, tQuantile975 } from '../../src/bench/gpu/trend.ts';
import { installFakeTensorflow } from '../support/stand-in-tensorflow.ts';
import type { BenchContext } from '../../src/bench/types.ts';
import { resolveParams, type Params } from '../../src/plan/params.ts';

function context(over: (p: Params) => Params = (p) => p): BenchContext {
  const p = resolveParams({ mode: 'quick' });
  return {
    params: over(p),
    platform: {
      kind: 'local',
      createPool: () => Promise.reject(new Error('the GPU category starts no agents')),
      close: () => Promise.resolve(),
    },
    log: { info: () => {}, warn: () => {}, debug: () => {} },
    progress: () => {},
    signal: new AbortController().signal,
  };
}

const tiny = (p: Params): Params => ({
  ...p,
  trials: 3,
  gpu: { ...p.gpu, batchSizes: [1, 8], memoryIterations: 30, sustainedSeconds: 3 },
});

describe('2.3 memory management', () => {
  it('passes a model that frees what it allocates, reading every pool with GC settled', async () => {
    const s = await openGpuSession(context(tiny));
    try {
      const m = await measureMemory(s);
      expect(m.fail).toBeUndefined();
      expect(m.sampleUnit).toBe('checkpoints');
      expect(m.details!.leakedTensors).toBe(0);
      expect(m.details!.gcAvailable).toBe(true);
      // The wasm heap is a pool here (inference runs on wasm), beside the engine's and the process's.
      expect(m.details!.judgedPools).toEqual(expect.arrayContaining(['tensorBytes', 'wasmHeap', 'jsHeap', 'external', 'rss']));
      expect(m.samples).toBe(3);
      expect(m.raw).toHaveLength(3);
      expect(m.value!).toBeLessThan(5);
    } finally {
      s.close();
    }
  });

  it('fails when tensors leak, and the growth shows in the tensor bytes and the wasm heap', async () => {
    const s = await openGpuSession(context((p) => ({ ...tiny(p), gpu: { ...tiny(p).gpu, defects: ['tensor-leak:2'] } })));
    try {
      const m = await measureMemory(s);
      expect(m.details!.leakedTensors).toBe(60);
      expect(m.fail).toBe('60 tensors leaked over 30 predictions (2 per prediction)');
      // Batch 8: the input (8 x 784) and the first hidden layer (8 x 512) per prediction, 30 times.
      const expectMB = (30 * 8 * (784 + 512) * 4) / 1024 / 1024;
      const growth = m.details!.growthMB as Record<string, number>;
      expect(growth.tensorBytes).toBeCloseTo(expectMB, 2);
      expect(m.value!).toBeGreaterThanOrEqual(expectMB * 0.99);
    } finally {
      s.close();
    }
    // The leaked tensors are released with the backend: the engine is back where it was.
    expect(s.service.backend.memory().numTensors).toBe(0);
  });
});

describe('trend fit (2.5)', () => {
  it('recovers an exact line, with a zero-width interval', () => {
    const xs = [0.5, 1.5, 2.5, 3.5, 4.5];
    const f = fitTrend(xs, xs.map((x) => 100 - 4 * x));
    expect(f.slope).toBeCloseTo(-4, 10);
    expect(f.slopeCi[0]).toBeCloseTo(-4, 10);
    expect(f.slopeCi[1]).toBeCloseTo(-4, 10);
    expect(f.startFit).toBeCloseTo(98, 10);
    expect(f.endFit).toBeCloseTo(82, 10);
    expect(f.ratio).toBeCloseTo(82 / 98, 10);
    expect(f.ratioCi[0]).toBeCloseTo(82 / 98, 10);
  });

  it('computes the least-squares slope and its 95% interval (Student t, n - 2 df)', () => {
    // y = 10, 12, 11, 15, 14 at x = 1..5: mean 12.4 at x = 3, Sxy 11, Sxx 10: slope 1.1;
    // fitted 10.2 .. 14.6, residuals -0.2, 0.7, -1.4, 1.5, -0.6: SSR 5.1 over 3 df.
    const f = fitTrend([1, 2, 3, 4, 5], [10, 12, 11, 15, 14]);
    expect(f.slope).toBeCloseTo(1.1, 10);
    expect(f.residualSd).toBeCloseTo(Math.sqrt(5.1 / 3), 10);
    const half = 3.182 * Math.sqrt(5.1 / 3 / 10);
    expect(f.slopeCi[0]).toBeCloseTo(1.1 - half, 6);
    expect(f.slopeCi[1]).toBeCloseTo(1.1 + half, 6);
    expect(f.startFit).toBeCloseTo(10.2, 10);
    expect(f.endFit).toBeCloseTo(14.6, 10);
    expect(f.ratio).toBeCloseTo(14.6 / 10.2, 10);
    // The ratio's interval is the ratio at the slope's two ends, the mean held.
    expect(f.ratioCi[0]).toBeCloseTo((12.4 + 2 * (1.1 - half)) / (12.4 - 2 * (1.1 - half)), 6);
    expect(f.ratioCi[1]).toBeCloseTo((12.4 + 2 * (1.1 + half)) / (12.4 - 2 * (1.1 + half)), 6);
  });

  it('sees a decay over all windows that two end windows would miss, and a noisy flat run as flat', () => {
    // A steady 2%-per-window decay hidden under alternating noise: first and last windows agree.
    const decaying = [100, 96, 98, 90, 92, 86, 88, 82, 84, 78, 80, 100];
    const f = fitTrend(decaying.map((_, i) => i + 0.5), decaying);
    expect(f.ratio).toBeLessThan(0.9);
    const flat = [100, 90, 104, 95, 101, 97, 108, 92, 99, 103, 96, 100];
    const g = fitTrend(flat.map((_, i) => i + 0.5), flat);
    expect(g.ratio).toBeGreaterThan(0.95);
    expect(g.ratioCi[0]).toBeLessThan(1);
    expect(g.ratioCi[1]).toBeGreaterThan(1);
  });

  it('t quantiles: the table, then the expansion; and the fit refuses what it cannot fit', () => {
    expect(tQuantile975(1)).toBe(12.706);
    expect(tQuantile975(10)).toBe(2.228);
    expect(tQuantile975(40)).toBeCloseTo(2.021, 3);
    expect(tQuantile975(120)).toBeCloseTo(1.98, 3);
    expect(() => fitTrend([1, 2], [1, 2])).toThrow(/at least 3 points/);
    expect(() => fitTrend([1, 1, 1], [1, 2, 3])).toThrow(/every x is the same/);
    expect(() => fitTrend([1, 2, 3], [1, Number.NaN, 3])).toThrow(/non-finite/);
    // A line rising from below zero: the ratio is unbounded.
    expect(fitTrend([0, 1, 2], [-1, 5, 11]).ratio).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('2.1 neural speedup', () => {
  it('is skipped, with the reason, when tfjs-node-gpu runs on the CPU', async () => {
    const fake = await installFakeTensorflow({ isUsingGpuDevice: false });
    try {
      const ms = await runGpu(context(tiny), { runtime: fake.runtime });
      const m21 = ms[0]!;
      expect(m21.value).toBeNull();
      expect(m21.skip).toMatch(/^no GPU in use: GPU not used: @tensorflow\/tfjs-node-gpu loaded but TensorFlow found no GPU device \(isUsingGpuDevice=false\)/);
      expect(m21.details!.backend).toBe('tensorflow');
      // The other tests still measure, on TensorFlow's CPU, and the fallback recovers onto cpu.
      expect(ms.slice(1).map((m) => [m.id, m.fail ?? null])).toEqual([
        ['2.2', null],
        ['2.3', null],
        ['2.4', null],
        ['2.5', null],
      ]);
      expect(ms[3]!.details!.lost).toBe('tensorflow');
      // The service fell back by itself: the first request after the loss got the answer.
      expect(ms[3]!.details!.fallback).toBe('cpu');
      expect(ms[3]!.details!.failedRequests).toBe(0);
      expect(ms[3]!.sampleUnit).toBe('trials');
      // TensorFlow on the CPU: 2.5 judges samples per CPU-second.
      expect(ms[4]!.details!.clock).toBe('cpu');
    } finally {
      fake.uninstall();
    }
  });

  it('is measured against the best CPU backend when a GPU is verified in use (stand-in device)', async () => {
    const fake = await installFakeTensorflow({ isUsingGpuDevice: true });
    try {
      const ms = await runGpu(context(tiny), { runtime: fake.runtime });
      const m21 = ms[0]!;
      expect(m21.skip).toBeUndefined();
      expect(m21.fail).toBeUndefined();
      const d = m21.details!;
      expect(d.backend).toBe('tensorflow-gpu');
      expect(d.gpuInUse).toBe(true);
      expect(d.cpuBaseline).toBe('wasm');
      const perBatch = d.perBatch as { batch: number; gpuP50Ms: number; cpuP50Ms: number; speedup: number }[];
      expect(perBatch.map((x) => x.batch)).toEqual([1, 8]);
      const last = perBatch[1]!;
      expect(m21.value!).toBeCloseTo(last.cpuP50Ms / last.gpuP50Ms, 1);
      expect(m21.samples).toBe(ms[1]!.samples);
      expect(m21.raw).toHaveLength(m21.samples);
      // The stand-in "GPU" is the pure-JS cpu backend: wasm beats it at batch 8.
      expect(m21.value!).toBeLessThan(1);
      expect(ms[3]!.fail).toBeUndefined();
      expect(ms[3]!.details!.lost).toBe('tensorflow-gpu');
      // On a GPU the device does the work: 2.5 judges the wall clock.
      expect(ms[4]!.details!.clock).toBe('wall');
    } finally {
      fake.uninstall();
    }
  });
});
