/**
 * The inference defect profiles (`spec.gpu.defects`): what each does to a backend's predictions,
 * that outputs stay right under all of them, that a backend without profiles is left as it is,
 * that the inference service falls back by itself (and never under `no-fallback`), and that the
 * GPU category fails the test each is meant to break (2.2, 2.3, 2.4) when they travel through the
 * run's parameters (2.5 under throughput-decay: test/e2e/sensitivity-gpu.test.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { parseDefectList } from '../../src/agent/defects.ts';
import { measureMemory, openGpuSession, runGpu } from '../../src/bench/gpu.ts';
import { MAX_DECAY_FACTOR, serviceFallsBack, withInferenceDefects } from '../../src/bench/inference/defects.ts';
import { createService } from '../../src/bench/inference/service.ts';
import {
  BackendLostError,
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
    expect(serviceFallsBack([])).toBe(true);
    expect(serviceFallsBack(defects('no-fallback'))).toBe(false);
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

  it('tensor-leak leaves the forward pass\'s tensors per prediction on a real backend (released with it); outputs stay right', async () => {
    const rt = await loadRuntime();
    const cpu = await openBackend('cpu', model);
    const w = withInferenceDefects(cpu, defects('tensor-leak:2', 'throughput-decay:10', 'no-batching'), rt);
    open.push(w);
    const input = makeInputs(model, 3);
    const ref = referenceForward(model, input, 3);
    const before = w.memory();
    for (let i = 0; i < 5; i++) {
      const out = await w.predict(input, 3);
      expect(compareOutputs(out, ref, TOLERANCE.cpu).ok).toBe(true);
      await new Promise((r) => setTimeout(r, 40));
    }
    // Two tensors per request (not per row, whatever the other profiles do with it).
    expect(w.memory().numTensors - before.numTensors).toBe(10);
    expect(w.detail).toMatch(/defects: tensor-leak:2, throughput-decay:10, no-batching$/);
    w.dispose();
    open.pop();
    expect(cpu.memory().numTensors).toBe(before.numTensors - model.layers.length * 2);
  });

  it('tensor-leak:N leaves the input, then each layer\'s output, then uploads of the input', async () => {
    const rt = await loadRuntime();
    const input = makeInputs(model, 4);
    const bytes: number[] = [];
    for (const n of [1, 3, 4, 6]) {
      const cpu = await openBackend('cpu', model);
      const w = withInferenceDefects(cpu, defects(`tensor-leak:${n}`), rt);
      const before = w.memory().numBytes;
      await w.predict(input, 4);
      bytes.push((w.memory().numBytes - before) / 4 / 4);
      w.dispose();
    }
    // Floats per row: input 784; + hidden 512 + 256; + output 10; + two more inputs.
    expect(bytes).toEqual([784, 784 + 512 + 256, 784 + 512 + 256 + 10, 784 + 512 + 256 + 10 + 2 * 784]);
  });
});

describe('the inference service', () => {
  it('falls back to the CPU by itself on a device loss, answering the request that met it; no-fallback never does', async () => {
    const input = makeInputs(model, 1);
    const ref = referenceForward(model, input, 1);
    for (const fallBack of [true, false]) {
      // The primary is a cpu backend whose device is "lost" by a stand-in that throws as a lost backend does.
      const cpu = await openBackend('cpu', model);
      let lost = false;
      const primary: InferenceBackend = {
        ...cpu,
        predict: async (x, b) => {
          if (lost) throw new BackendLostError('wasm', 'inference backend wasm lost its device');
          return cpu.predict(x, b);
        },
        dispose: () => cpu.dispose(),
      };
      let opened = 0;
      const svc = createService(primary, {
        fallBack,
        openFallback: async () => {
          opened++;
          return openBackend('cpu', model);
        },
      });
      expect(compareOutputs(await svc.predict(input, 1), ref, TOLERANCE.cpu).ok).toBe(true);
      lost = true;
      if (fallBack) {
        // Two requests meet the loss together: one fallback serves both.
        const [a, b] = await Promise.all([svc.predict(input, 1), svc.predict(input, 1)]);
        expect(compareOutputs(a, ref, TOLERANCE.cpu).ok && compareOutputs(b, ref, TOLERANCE.cpu).ok).toBe(true);
        expect(opened).toBe(1);
        expect(svc.backend).not.toBe(primary);
        expect(svc.losses).toHaveLength(1);
        expect(svc.losses[0]!.fallback).toBe('cpu');
        expect(svc.losses[0]!.readyAt!).toBeGreaterThanOrEqual(svc.losses[0]!.detectedAt);
      } else {
        await expect(svc.predict(input, 1)).rejects.toThrow(/lost its device/);
        await expect(svc.predict(input, 1)).rejects.toThrow(/lost its device/);
        expect(opened).toBe(0);
        expect(svc.backend).toBe(primary);
        // One loss, however many requests failed on it.
        expect(svc.losses).toEqual([expect.objectContaining({ lost: 'wasm', fallback: null, readyAt: null })]);
      }
      svc.dispose();
    }
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
    // The catalogue's default leaks 3 tensors per prediction.
    for (const [d, leaked] of [[['tensor-leak'], 90], [[], 0]] as const) {
      const s = await openGpuSession(context([...d]));
      try {
        const m = await measureMemory(s);
        expect(m.details!.leakedTensors).toBe(leaked);
        expect(m.fail ?? null).toBe(leaked ? '90 tensors leaked over 30 predictions (3 per prediction)' : null);
      } finally {
        s.close();
      }
    }
  });

  it('no-batching fails 2.2 at its default target (>= 2) and no-fallback fails 2.4, as the client sees it', async () => {
    const ms = await runGpu(context(['no-batching', 'no-fallback']));
    const by = new Map(ms.map((m) => [m.id, m]));
    expect(by.get('2.2')!.value!).toBeLessThan(2);
    // The harness is not told about the profile: it sees requests that never get an answer.
    expect(by.get('2.4')!.fail).toMatch(
      /^no answer within 1000 ms of the device loss \(trial 1\): (\d+) of \1 requests failed \(first: inference backend wasm lost its device .*\); the service did not fall back$/,
    );
    expect(by.get('2.4')!.fail).not.toMatch(/no-fallback/);
    expect(by.get('2.2')!.details!.defects).toEqual(['no-batching', 'no-fallback']);
    expect(by.get('2.3')!.fail).toBeUndefined();
  });
});
