/**
 * The inference defect profiles (`spec.gpu.defects`): what each does to a backend's predictions,
 * that outputs stay right under all of them, that a backend without profiles is left as it is,
 * and that the GPU category fails the test each is meant to break (2.2, 2.3, 2.4) when they
 * travel through the run's parameters.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { parseDefectList } from '../../src/agent/defects.ts';
import { measureMemory, openGpuSession, runGpu } from '../../src/bench/gpu.ts';
import { fallbackRefusal, MAX_DECAY_FACTOR, withInferenceDefects } from '../../src/bench/inference/defects.ts';
import {
  buildWeights,
  compareOutputs,
  loadRuntime,
  makeInputs,
  openBackend,
  referenceForward,
  TOLERANCE,
  type InferenceBackend,
} from '../../src/bench/inference/index.ts';
import type { BenchContext } from '../../src/bench/types.ts';
import { resolveParams, type Params } from '../../src/plan/params.ts';

const model = buildWeights('small');
const defects = (...names: string[]) => {
  const r = parseDefectList(names, 'inference');
  expect(r.errors).toEqual([]);
  return r.defects;
};

/** A stand-in backend that records the rows of every call; row r's output is [sum of row r]. */
function recording(): InferenceBackend & { calls: number[] } {
  const calls: number[] = [];
  return {
    name: 'cpu',
    tfBackend: 'cpu',
    gpuInUse: false,
    detail: 'recording',
    model: { ...model, outputDim: 1 },
    calls,
    predict: (input, batch) => {
      calls.push(batch);
      const out = new Float32Array(batch);
      for (let r = 0; r < batch; r++) for (let i = 0; i < model.inputDim; i++) out[r]! += input[r * model.inputDim + i]!;
      return Promise.resolve(out);
    },
    memory: () => ({ numTensors: 0, numBytes: 0 }),
    dispose: () => undefined,
  };
}

describe('the wrapper', () => {
  const open: InferenceBackend[] = [];
  afterAll(() => {
    for (const b of open) b.dispose();
  });

  it('leaves a backend without profiles untouched', async () => {
    const rt = await loadRuntime();
    const b = recording();
    expect(withInferenceDefects(b, [], rt)).toBe(b);
    expect(fallbackRefusal([])).toBeNull();
    expect(fallbackRefusal(defects('no-fallback'))).toMatch(/not replaced/);
  });

  it('no-batching runs a batch as single rows, with the same outputs', async () => {
    const rt = await loadRuntime();
    const b = recording();
    const input = makeInputs(model, 8);
    const plain = await b.predict(input, 8);
    const w = withInferenceDefects(b, defects('no-batching'), rt);
    b.calls.length = 0;
    expect(await w.predict(input, 8)).toEqual(plain);
    expect(b.calls).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
  });

  it('throughput-decay adds rows that grow with time since the first prediction, capped, outputs unchanged', async () => {
    const rt = await loadRuntime();
    const b = recording();
    const input = makeInputs(model, 4);
    const plain = await b.predict(input, 4);
    const w = withInferenceDefects(b, defects('throughput-decay:10'), rt);
    b.calls.length = 0;
    expect(await w.predict(input, 4)).toEqual(plain);
    await new Promise((r) => setTimeout(r, 300));
    expect(await w.predict(input, 4)).toEqual(plain);
    expect(b.calls[0]).toBe(4);
    // 4 rows x 10 per second x >= 0.3 s: at least 12 extra rows.
    expect(b.calls[1]!).toBeGreaterThanOrEqual(16);
    expect(b.calls[1]!).toBeLessThanOrEqual(4 + MAX_DECAY_FACTOR * 4);
  });

  it('tensor-leak leaves tensors per prediction on a real backend (released with it); outputs stay right', async () => {
    const rt = await loadRuntime();
    const cpu = await openBackend('cpu', model);
    const w = withInferenceDefects(cpu, defects('tensor-leak:2', 'throughput-decay:10', 'no-batching'), rt);
    open.push(w);
    const input = makeInputs(model, 3);
    const ref = referenceForward(model, input, 3);
    const before = w.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      const out = await w.predict(input, 3);
      expect(compareOutputs(out, ref, TOLERANCE.cpu).ok).toBe(true);
      await new Promise((r) => setTimeout(r, 40));
    }
    expect(w.memory().numTensors - before).toBe(10);
    expect(w.detail).toMatch(/defects: tensor-leak:2, throughput-decay:10, no-batching$/);
    w.dispose();
    open.pop();
    expect(cpu.memory().numTensors).toBe(before - model.layers.length * 2);
  });
});

function context(gpuDefects: string[]): BenchContext {
  const p = resolveParams({ mode: 'quick', gpu: { defects: gpuDefects } });
  const params: Params = { ...p, trials: 3, gpu: { ...p.gpu, batchSizes: [1, 8, 32], memoryIterations: 30, sustainedSeconds: 2 } };
  return {
    params,
    platform: { kind: 'local', createPool: () => Promise.reject(new Error('the GPU category starts no agents')), close: () => Promise.resolve() },
    log: { info: () => {}, warn: () => {}, debug: () => {} },
    progress: () => {},
    signal: new AbortController().signal,
  };
}

describe('through the run parameters, the GPU category fails what each profile breaks', () => {
  it('tensor-leak fails 2.3; the clean backend passes it', async () => {
    for (const [d, leaked] of [[['tensor-leak'], 30], [[], 0]] as const) {
      const s = await openGpuSession(context([...d]));
      try {
        const m = await measureMemory(s);
        expect(m.details!.leakedTensors).toBe(leaked);
        expect(m.fail ?? null).toBe(leaked ? '30 tensors leaked over 30 predictions (1 per prediction)' : null);
      } finally {
        s.close();
      }
    }
  });

  it('no-batching fails 2.2 at its default target (>= 2) and no-fallback fails 2.4, naming the profile', async () => {
    const ms = await runGpu(context(['no-batching', 'no-fallback']));
    const by = new Map(ms.map((m) => [m.id, m]));
    expect(by.get('2.2')!.value!).toBeLessThan(2);
    expect(by.get('2.4')!.fail).toBe('the lost backend was not replaced (defect profile no-fallback): no prediction after the device loss');
    expect(by.get('2.2')!.details!.defects).toEqual(['no-batching', 'no-fallback']);
    expect(by.get('2.3')!.fail).toBeUndefined();
  });
});
