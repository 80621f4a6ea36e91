/**
 * Inference backends: the seeded model, selection best first with the reason each better backend
 * was not used, and agreement of the wasm and cpu backends with the float64 reference.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  BackendLostError,
  buildWeights,
  chainFor,
  compareOutputs,
  createRuntime,
  makeInputs,
  nodeLoader,
  openBackend,
  referenceForward,
  selectBackend,
  TOLERANCE,
  type InferenceBackend,
  type ModuleLoader,
} from '../../src/bench/inference/index.ts';
import { installFakeTensorflow } from '../support/stand-in-tensorflow.ts';

const model = buildWeights('small');

describe('seeded model', () => {
  it('is a pure function of its seed', () => {
    const a = buildWeights('small', 7);
    const b = buildWeights('small', 7);
    const c = buildWeights('small', 8);
    expect(a.layers.map((l) => [l.inputs, l.outputs])).toEqual([
      [784, 512],
      [512, 256],
      [256, 10],
    ]);
    expect(a.layers[1]!.weights).toEqual(b.layers[1]!.weights);
    expect(a.layers[1]!.weights).not.toEqual(c.layers[1]!.weights);
    expect(a.macsPerSample).toBe(784 * 512 + 512 * 256 + 256 * 10);
  });

  it('inputs: a batch of b is the first b rows of any larger batch', () => {
    const small = makeInputs(model, 2);
    const large = makeInputs(model, 16);
    expect(large.subarray(0, small.length)).toEqual(small);
  });

  it('compareOutputs scales the error by the output magnitude', () => {
    const ref = Float64Array.from([10, -20, 5]);
    expect(compareOutputs(Float32Array.from([10, -20, 5.0001]), ref, 1e-4).ok).toBe(true);
    const bad = compareOutputs(Float32Array.from([10, -20, 6]), ref, 1e-4);
    expect(bad.ok).toBe(false);
    expect(bad.scaledError).toBeCloseTo(1 / 20, 6);
    expect(compareOutputs(Float32Array.from([Number.NaN, 0, 0]), ref, 1).ok).toBe(false);
  });
});

describe('backend selection', () => {
  it('chains best first from the preference', () => {
    expect(chainFor('auto')).toEqual(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']);
    expect(chainFor('tensorflow')).toEqual(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']);
    expect(chainFor('wasm')).toEqual(['wasm', 'cpu']);
    expect(chainFor('cpu')).toEqual(['cpu']);
  });

  it('falls through the missing TensorFlow bindings to wasm, saying why', async () => {
    const sel = await selectBackend('auto', model);
    try {
      expect(sel.attempts.map((a) => [a.name, a.ok])).toEqual([
        ['tensorflow-gpu', false],
        ['tensorflow', false],
        ['wasm', true],
      ]);
      expect(sel.attempts[0]!.reason).toBe('@tensorflow/tfjs-node-gpu is not installed');
      expect(sel.attempts[1]!.reason).toBe('@tensorflow/tfjs-node is not installed');
      expect(sel.backend.name).toBe('wasm');
      expect(sel.backend.gpuInUse).toBe(false);
      expect(sel.backend.detail).toMatch(/tfjs-backend-wasm 4\.22\.\d+ \(SIMD, 1 thread\)/);
      expect(sel.noGpuReason).toBe('@tensorflow/tfjs-node-gpu is not installed');
      expect(sel.check.ok).toBe(true);
    } finally {
      sel.backend.dispose();
    }
  });

  it('names the preference when it excludes the GPU', async () => {
    const sel = await selectBackend('cpu', model);
    sel.backend.dispose();
    expect(sel.backend.name).toBe('cpu');
    expect(sel.attempts).toHaveLength(1);
    expect(sel.noGpuReason).toMatch(/preference 'cpu' excludes the GPU backend/);
  });

  it('reports a GPU package that is installed but cannot load (missing CUDA libraries)', async () => {
    const loader: ModuleLoader = {
      resolve: (spec) => (spec === '@tensorflow/tfjs-node-gpu' ? '/fake/tfjs-node-gpu/index.js' : nodeLoader.resolve(spec)),
      load: (spec) =>
        spec === '@tensorflow/tfjs-node-gpu'
          ? Promise.reject(new Error('libcudart.so.11.0: cannot open shared object file: No such file or directory'))
          : nodeLoader.load(spec),
    };
    const sel = await selectBackend('auto', model, { runtime: await createRuntime(loader) });
    sel.backend.dispose();
    expect(sel.attempts[0]!.reason).toBe(
      '@tensorflow/tfjs-node-gpu is installed but failed to load: libcudart.so.11.0: cannot open shared object file: No such file or directory',
    );
    expect(sel.backend.name).toBe('wasm');
  });

  it('does not count tfjs-node-gpu that silently runs on the CPU as a GPU', async () => {
    const fake = await installFakeTensorflow({ isUsingGpuDevice: false });
    try {
      const sel = await selectBackend('auto', model, { runtime: fake.runtime });
      sel.backend.dispose();
      expect(sel.attempts[0]!.name).toBe('tensorflow-gpu');
      expect(sel.attempts[0]!.reason).toMatch(/^GPU not used: @tensorflow\/tfjs-node-gpu loaded but TensorFlow found no GPU device \(isUsingGpuDevice=false\)/);
      // The same binding still serves as TensorFlow on the CPU; tfjs-node is not loaded beside it.
      expect(sel.backend.name).toBe('tensorflow');
      expect(sel.backend.gpuInUse).toBe(false);
      expect(sel.backend.detail).toMatch(/without a GPU device: TensorFlow on the CPU/);
      expect(sel.noGpuReason).toBe(sel.attempts[0]!.reason);
    } finally {
      fake.uninstall();
    }
  });

  it('rejects a backend whose results differ from the reference', async () => {
    const fake = await installFakeTensorflow({ isUsingGpuDevice: true, corrupt: true });
    try {
      const sel = await selectBackend('auto', model, { runtime: fake.runtime });
      sel.backend.dispose();
      expect(sel.attempts[0]!.reason).toMatch(/^wrong results: error .* of the output scale against the float64 reference/);
      expect(sel.backend.name).toBe('wasm');
    } finally {
      fake.uninstall();
    }
  });
});

describe('backends compute the same function', () => {
  const open: InferenceBackend[] = [];
  afterAll(() => {
    for (const b of open) b.dispose();
  });

  it('wasm and cpu agree with each other and with the float64 reference', async () => {
    const batch = 16;
    const input = makeInputs(model, batch);
    const ref = referenceForward(model, input, batch);
    const wasm = await openBackend('wasm', model);
    const cpu = await openBackend('cpu', model);
    open.push(wasm, cpu);
    const a = await wasm.predict(input, batch);
    const b = await cpu.predict(input, batch);
    expect(a).toHaveLength(batch * 10);
    const ca = compareOutputs(a, ref, TOLERANCE.cpu);
    const cb = compareOutputs(b, ref, TOLERANCE.cpu);
    expect(ca.ok).toBe(true);
    expect(cb.ok).toBe(true);
    expect(compareOutputs(a, Float64Array.from(b), 1e-5).ok).toBe(true);
    // A batch's rows do not depend on the batch they are in.
    const one = await wasm.predict(input, 1);
    expect(compareOutputs(one, ref.subarray(0, 10), TOLERANCE.cpu).ok).toBe(true);
  });

  it('a backend whose device is removed says so, and its tensors can still be released', async () => {
    const rt = await createRuntime(nodeLoader);
    const cpu = await openBackend('cpu', model, { runtime: rt });
    const st = rt.tf.engine().state;
    const before = { numTensors: st.numTensors, numDataBuffers: st.numDataBuffers };
    const entry = rt.tf.engine().registryFactory['cpu']!;
    rt.tf.removeBackend('cpu');
    try {
      await expect(cpu.predict(makeInputs(model, 1), 1)).rejects.toBeInstanceOf(BackendLostError);
      cpu.dispose();
      const after = { numTensors: st.numTensors, numDataBuffers: st.numDataBuffers };
      expect(before.numTensors - after.numTensors).toBe(model.layers.length * 2);
      expect(before.numDataBuffers - after.numDataBuffers).toBe(model.layers.length * 2);
    } finally {
      rt.tf.registerBackend('cpu', entry.factory, entry.priority);
    }
  });
});
