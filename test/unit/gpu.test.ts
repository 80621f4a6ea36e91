/**
 * The GPU category's measurements on small parameters: leak detection in 2.3, the skip of 2.1
 * without a GPU in use, and the 2.1 / 2.4 paths walked through a stand-in for tfjs-node-gpu.
 */
import { describe, expect, it } from 'vitest';
import { measureMemory, openGpuSession, runGpu } from '../../src/bench/gpu.ts';
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
  gpu: { ...p.gpu, batchSizes: [1, 8], memoryIterations: 30, sustainedSeconds: 2 },
});

describe('2.3 memory management', () => {
  it('passes a model that frees what it allocates', async () => {
    const s = await openGpuSession(context(tiny));
    try {
      const m = await measureMemory(s);
      expect(m.fail).toBeUndefined();
      expect(m.details!.leakedTensors).toBe(0);
      expect(m.samples).toBe(3);
      expect(m.raw).toHaveLength(3);
      expect(m.value!).toBeLessThan(5);
    } finally {
      s.close();
    }
  });

  it('fails when tensors leak', async () => {
    const s = await openGpuSession(context(tiny), { leakTensorsPerIteration: 2 });
    try {
      const m = await measureMemory(s);
      expect(m.details!.leakedTensors).toBe(60);
      expect(m.fail).toBe('60 tensors leaked over 30 predictions (2 per prediction)');
      // The hook's tensors are released afterwards: the engine is back where it was.
      expect(s.primary.memory().numTensors).toBe(s.model.layers.length * 2);
    } finally {
      s.close();
    }
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
    } finally {
      fake.uninstall();
    }
  });
});
