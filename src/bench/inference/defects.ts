/**
 * The inference defect profiles (`spec.gpu.defects`, docs/defects.md): an inference backend with a
 * known defect, for proving that the GPU tests catch it. They act where inference runs (in the
 * runner, not in the agents), as a wrapper around the selected backend, so every prediction still
 * does real work on it and its outputs stay right; what changes is what a defective model server
 * changes:
 * - `tensor-leak:N`: every prediction leaves N tensors of its forward pass undisposed, as a pass
 *   run outside `tf.tidy` does: the uploaded input first (the commonest leak,
 *   `model.predict(tf.tensor(x))`), then each layer's output (`predictLeaking` of the backend; on
 *   a stand-in backend without it, uploads of the input). With the small model at batch 128 that
 *   is 0.38 MiB per prediction for N = 1 and 0.75 MiB for N = 3 (input and both hidden layers:
 *   the whole pass without tidy). The engine's tensor count and bytes grow, and with them the
 *   backend's memory: the wasm heap, libtensorflow's native memory, the device's. Released when the
 *   backend is disposed.
 * - `throughput-decay:R`: each prediction of `batch` rows also runs `batch x R x s` extra rows
 *   (s: seconds since the backend's first prediction, at most 16 x batch), as a server that
 *   re-processes a context growing with uptime; samples/s falls as the run goes on.
 * - `no-batching`: a batch of b rows runs as b predictions of one row (no batching benefit).
 * - `no-fallback`: the inference service keeps its lost device: after a device loss every request
 *   fails and no fallback backend is opened (`serviceFallsBack`, read where the service is made;
 *   the service is in service.ts beside this file). The CPU-fallback test sees it only as requests that never get an answer.
 * None of them draws random numbers: they are deterministic, so need no seed.
 */
import { defectsOf, defectValue, formatDefect, type Defect } from '../../agent/defects.ts';
import type { Tensor } from '@tensorflow/tfjs';
import type { InferenceBackend } from './backend.ts';
import { releaseTensors } from './backend.ts';
import type { Runtime } from './runtime.ts';

/** At most this many times the batch in extra rows (`throughput-decay`). */
export const MAX_DECAY_FACTOR = 16;

/** The inference profiles of a `Params.gpu.defects` list (already validated). */
export function inferenceDefects(list: readonly string[] | undefined): Defect[] {
  return defectsOf(list, 'inference');
}

/** Whether the inference service falls back to the CPU after a device loss (false under `no-fallback`). */
export function serviceFallsBack(defects: readonly Defect[]): boolean {
  return defectValue(defects, 'no-fallback') === null;
}

/** The backend with the inference defects applied; the backend itself when none is active. */
export function withInferenceDefects(backend: InferenceBackend, defects: readonly Defect[], rt: Runtime): InferenceBackend {
  const leakPer = defectValue(defects, 'tensor-leak') ?? 0;
  const decay = defectValue(defects, 'throughput-decay');
  const unbatched = defectValue(defects, 'no-batching') !== null;
  if (leakPer === 0 && decay === null && !unbatched) return backend;
  const { inputDim, outputDim } = backend.model;
  const leaked: Tensor[] = [];
  let firstAt: number | null = null;
  /** Rows of the decaying workload: the caller's, then copies of them. */
  let rowsBuf = new Float32Array(0);

  /** Whether the current request has yet to leak (once per request, in its first pass). */
  let leakDue = false;

  /** The backend's prediction, leaving `leakPer` tensors of the pass undisposed when the request's leak is due. */
  const pass = async (input: Float32Array, batch: number): Promise<Float32Array> => {
    if (!leakDue) return backend.predict(input, batch);
    leakDue = false;
    if (backend.predictLeaking) {
      const r = await backend.predictLeaking(input, batch, leakPer);
      leaked.push(...r.leaked);
      return r.out;
    }
    const out = await backend.predict(input, batch);
    for (let i = 0; i < leakPer; i++) leaked.push(rt.tf.tensor2d(input.slice(0, batch * inputDim), [batch, inputDim], 'float32'));
    return out;
  };

  const one = async (input: Float32Array, batch: number): Promise<Float32Array> => {
    if (!unbatched || batch === 1) return pass(input, batch);
    const out = new Float32Array(batch * outputDim);
    for (let r = 0; r < batch; r++) {
      out.set(await pass(input.subarray(r * inputDim, (r + 1) * inputDim), 1), r * outputDim);
    }
    return out;
  };

  const predict = async (input: Float32Array, batch: number): Promise<Float32Array> => {
    leakDue = leakPer > 0;
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
