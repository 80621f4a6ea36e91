/**
 * The inference defect profiles (`spec.gpu.defects`, docs/defects.md): an inference backend with a
 * known defect, for proving that the GPU tests catch it. They act where inference runs (in the
 * runner, not in the agents), as a wrapper around the selected backend, so every prediction still
 * does real work on it and its outputs stay right; what changes is what a defective model server
 * changes:
 * - `tensor-leak:N`: every prediction leaves N tensors (copies of its output) undisposed, as a
 *   missing `dispose`/`tidy` does; the engine's tensor count and bytes grow (native memory on
 *   tfjs-node, device memory on a GPU). Released when the backend is disposed.
 * - `throughput-decay:R`: each prediction of `batch` rows also runs `batch x R x s` extra rows
 *   (s: seconds since the backend's first prediction, at most 16 x batch), as a server that
 *   re-processes a context growing with uptime; samples/s falls as the run goes on.
 * - `no-batching`: a batch of b rows runs as b predictions of one row (no batching benefit).
 * - `no-fallback`: after a device loss the backend is not replaced (`fallbackRefusal`, asked by
 *   the CPU-fallback test before it opens the CPU backend).
 * None of them draws random numbers: they are deterministic, so need no seed.
 */
import { defectsOf, defectValue, formatDefect, type Defect } from '../../agent/defects.ts';
import type { InferenceBackend } from './backend.ts';
import { releaseTensors } from './backend.ts';
import type { Runtime } from './runtime.ts';

/** At most this many times the batch in extra rows (`throughput-decay`). */
export const MAX_DECAY_FACTOR = 16;

/** The inference profiles of a `Params.gpu.defects` list (already validated). */
export function inferenceDefects(list: readonly string[] | undefined): Defect[] {
  return defectsOf(list, 'inference');
}

/** Why the CPU fallback must not happen (`no-fallback`), or null. */
export function fallbackRefusal(defects: readonly Defect[]): string | null {
  return defectValue(defects, 'no-fallback') === null
    ? null
    : 'the lost backend was not replaced (defect profile no-fallback): no prediction after the device loss';
}

/** The backend with the inference defects applied; the backend itself when none is active. */
export function withInferenceDefects(backend: InferenceBackend, defects: readonly Defect[], rt: Runtime): InferenceBackend {
  const leakPer = defectValue(defects, 'tensor-leak') ?? 0;
  const decay = defectValue(defects, 'throughput-decay');
  const unbatched = defectValue(defects, 'no-batching') !== null;
  if (leakPer === 0 && decay === null && !unbatched) return backend;
  const { inputDim, outputDim } = backend.model;
  const leaked: ReturnType<Runtime['tf']['tensor2d']>[] = [];
  let firstAt: number | null = null;
  /** Rows of the decaying workload: the caller's, then copies of them. */
  let rowsBuf = new Float32Array(0);

  const one = async (input: Float32Array, batch: number): Promise<Float32Array> => {
    if (!unbatched || batch === 1) return backend.predict(input, batch);
    const out = new Float32Array(batch * outputDim);
    for (let r = 0; r < batch; r++) {
      out.set(await backend.predict(input.subarray(r * inputDim, (r + 1) * inputDim), 1), r * outputDim);
    }
    return out;
  };

  const predict = async (input: Float32Array, batch: number): Promise<Float32Array> => {
    let out: Float32Array;
    if (decay === null) out = await one(input, batch);
    else {
      const now = performance.now();
      firstAt ??= now;
      const extra = Math.min(MAX_DECAY_FACTOR * batch, Math.floor((batch * decay * (now - firstAt)) / 1000));
      if (extra === 0) out = await one(input, batch);
      else {
        const rows = batch + extra;
        if (rowsBuf.length < rows * inputDim) rowsBuf = new Float32Array(rows * inputDim);
        const src = input.subarray(0, batch * inputDim);
        for (let r = 0; r < rows; r += batch) rowsBuf.set(src.subarray(0, Math.min(batch, rows - r) * inputDim), r * inputDim);
        out = (await one(rowsBuf, rows)).subarray(0, batch * outputDim);
      }
    }
    for (let i = 0; i < leakPer; i++) leaked.push(rt.tf.tensor2d(out, [batch, outputDim], 'float32'));
    return out;
  };

  return {
    name: backend.name,
    tfBackend: backend.tfBackend,
    gpuInUse: backend.gpuInUse,
    detail: `${backend.detail}; defects: ${defects.map(formatDefect).join(', ')}`,
    model: backend.model,
    predict,
    memory: () => backend.memory(),
    dispose: () => {
      releaseTensors(rt, leaked.splice(0));
      backend.dispose();
    },
  };
}
