/**
 * The GPU category end to end in quick mode, as `swarmbench run` runs it on this machine: no
 * TensorFlow binding is installed, so inference runs on wasm, 2.1 is skipped with the reason, and
 * 2.2-2.5 are measured on real predictions of the seeded model.
 */
import { describe, expect, it } from 'vitest';
import { inferenceEnvironment, run } from '../../src/bench/gpu.ts';
import { defOf } from '../../src/plan/catalogue.ts';
import type { BenchContext } from '../../src/bench/types.ts';
import type { Measurement } from '../../src/api/schema.ts';
import { resolveParams } from '../../src/plan/params.ts';

describe('gpu category (quick mode)', () => {
  it('measures 2.2-2.5 on the best backend present and skips 2.1 with the reason', async () => {
    const params = resolveParams({ mode: 'quick' });
    const steps: string[] = [];
    const ctx: BenchContext = {
      params,
      platform: {
        kind: 'local',
        createPool: () => Promise.reject(new Error('the GPU category starts no agents')),
        close: () => Promise.resolve(),
      },
      log: { info: () => {}, warn: () => {}, debug: () => {} },
      progress: (step) => {
        if (!steps.includes(step)) steps.push(step);
      },
      signal: new AbortController().signal,
    };
    const t0 = performance.now();
    const ms = await run(ctx);
    const wallMs = performance.now() - t0;
    const byId = new Map<string, Measurement>(ms.map((m) => [m.id, m]));
    expect(ms.map((m) => m.id)).toEqual(['2.1', '2.2', '2.3', '2.4', '2.5']);
    for (const m of ms) {
      expect(defOf(m.id).category).toBe('gpu');
      expect(m.details!.backend).toBe('wasm');
      expect(m.details!.gpuInUse).toBe(false);
      expect(m.details!.model).toBe('small');
      expect(m.details!.batchSizes).toEqual([1, 8, 32, 128]);
    }

    const m21 = byId.get('2.1')!;
    expect(m21.value).toBeNull();
    expect(m21.samples).toBe(0);
    expect(m21.skip).toMatch(/^no GPU in use: @tensorflow\/tfjs-node-gpu is not installed; inference ran on wasm/);

    for (const id of ['2.2', '2.3', '2.4', '2.5']) {
      const m = byId.get(id)!;
      expect(m.fail, `${id}: ${m.fail}`).toBeUndefined();
      expect(m.skip).toBeUndefined();
      expect(m.value).not.toBeNull();
      expect(m.samples).toBeGreaterThanOrEqual(5);
      expect(m.raw).toHaveLength(m.samples);
      expect(m.distribution!.n).toBe(m.samples);
    }

    // 2.2: throughput grows with the batch (the ratio is measured, the target is judged elsewhere).
    const m22 = byId.get('2.2')!;
    const batches = m22.details!.batches as { batch: number; samples: number; p50Ms: number; p95Ms: number; samplesPerSec: number }[];
    expect(batches.map((b) => b.batch)).toEqual([1, 8, 32, 128]);
    for (const b of batches) {
      expect(b.samples).toBe(m22.samples);
      expect(b.p95Ms).toBeGreaterThanOrEqual(b.p50Ms);
      // p50Ms is rounded to the microsecond: agree within 1%.
      expect(Math.abs(b.samplesPerSec / ((b.batch * 1000) / b.p50Ms) - 1)).toBeLessThan(0.01);
    }
    expect(Math.abs(m22.value! / (batches[3]!.samplesPerSec / batches[0]!.samplesPerSec) - 1)).toBeLessThan(0.01);
    expect(m22.value!).toBeGreaterThan(1);
    expect(m22.value!).toBeLessThan(1000);

    // 2.3: no tensor leaked; a few MB at most over 200 predictions, in any pool (the wasm heap included).
    const m23 = byId.get('2.3')!;
    expect(m23.details!.leakedTensors).toBe(0);
    expect(m23.details!.iterations).toBe(params.gpu.memoryIterations);
    expect(m23.details!.judgedPools).toContain('wasmHeap');
    expect(m23.samples).toBe(params.trials);
    expect(m23.sampleUnit).toBe('checkpoints');
    expect(m23.value!).toBeLessThan(20);
    expect(m23.value!).toBe(Math.max(...m23.raw!));

    // 2.4: one sample per trial, milliseconds; the service fell back by itself on the first request.
    const m24 = byId.get('2.4')!;
    expect(m24.samples).toBe(params.trials);
    expect(m24.sampleUnit).toBe('trials');
    expect(m24.details!.lost).toBe('wasm');
    expect(m24.details!.fallback).toBe('cpu');
    expect(m24.details!.failedRequests).toBe(0);
    expect(m24.details!.tensorsAfter).toBe(m24.details!.tensorsBefore);
    expect(m24.value!).toBeGreaterThan(0);
    expect(m24.value!).toBeLessThan(2000);

    // 2.5: one sample per window (about 0.5 s each, 6 s: 12; 24 or 36 when a fit below the
    // target was inconclusive); the value is the fitted end/start ratio over all of them.
    const m25 = byId.get('2.5')!;
    expect(m25.sampleUnit).toBe('windows');
    expect(m25.samples).toBe(m25.details!.windows);
    expect([12, 24, 36]).toContain(m25.samples);
    expect(m25.details!.clock).toBe('cpu');
    const fit = m25.details!.fit as { ratio: number; ratioCi95: [number, number] };
    expect(m25.value!).toBeCloseTo(fit.ratio, 3);
    expect(fit.ratioCi95[0]).toBeLessThanOrEqual(fit.ratio);
    expect(fit.ratioCi95[1]).toBeGreaterThanOrEqual(fit.ratio);
    expect(m25.value!).toBeGreaterThan(0.2);
    expect(m25.value!).toBeLessThan(5);

    expect(m22.details!.verifiedPredictions as number).toBeGreaterThan(500);
    expect(steps).toEqual(expect.arrayContaining(['gpu/select', 'gpu/batch', 'gpu/memory', 'gpu/sustained', 'gpu/fallback']));
    expect(await inferenceEnvironment()).toEqual({
      backend: 'wasm',
      gpuInUse: false,
      detail: m22.details!.backendDetail,
    });
    // It shares the 5-minute quick budget with five other categories.
    expect(wallMs).toBeLessThan(40_000);
  });
});
