/**
 * Inference for the GPU category: backend selection (best first, each skipped backend with its
 * reason), the seeded model, and a fallback to the CPU when the accelerator's device is lost.
 */
import { createInferenceBackend, type InferenceBackend } from './backend.ts';
import { buildWeights, compareOutputs, makeInputs, referenceForward, TOLERANCE, type Comparison, type ModelSize, type ModelWeights } from './model.ts';
import {
  chainFor,
  engineName,
  loadRuntime,
  probe,
  type BackendName,
  type BackendPreference,
  type ProbeResult,
  type Runtime,
} from './runtime.ts';

export { BackendLostError, releaseTensors, type InferenceBackend } from './backend.ts';
export { buildWeights, compareOutputs, makeInputs, referenceForward, MODEL_LAYERS, TOLERANCE } from './model.ts';
export type { Comparison, ModelSize, ModelWeights } from './model.ts';
export {
  chainFor,
  createRuntime,
  engineName,
  loadRuntime,
  loseBackend,
  nodeLoader,
  probe,
  ensureRegistered,
  type BackendName,
  type BackendPreference,
  type ModuleLoader,
  type ProbeResult,
  type Runtime,
} from './runtime.ts';

/** Rows of the seeded input every backend is checked on against the float64 reference. */
export const REFERENCE_ROWS = 4;

export interface BackendAttempt {
  name: BackendName;
  ok: boolean;
  /** Why it was not used. */
  reason?: string;
  detail?: string;
  /** Time spent loading, initialising and checking it. */
  ms: number;
}

export interface Selection {
  backend: InferenceBackend;
  /** Every backend tried, best first, up to and including the one selected. */
  attempts: BackendAttempt[];
  /** Null when a GPU is verified in use; otherwise why not (the reason a GPU-only test is skipped). */
  noGpuReason: string | null;
  /** The selected backend's output on the reference rows, compared with the float64 reference. */
  check: Comparison;
}

export interface Reference {
  input: Float32Array;
  rows: number;
  output: Float64Array;
}

const references = new WeakMap<ModelWeights, Reference>();

/** The float64 reference answer on the model's first REFERENCE_ROWS seeded input rows (cached). */
export function referenceOf(model: ModelWeights): Reference {
  let r = references.get(model);
  if (!r) {
    const input = makeInputs(model, REFERENCE_ROWS, model.seed);
    r = { input, rows: REFERENCE_ROWS, output: referenceForward(model, input, REFERENCE_ROWS) };
    references.set(model, r);
  }
  return r;
}

export function toleranceOf(backend: { gpuInUse: boolean }): number {
  return backend.gpuInUse ? TOLERANCE.gpu : TOLERANCE.cpu;
}

/** Runs the reference rows on a backend and compares with the float64 reference. */
export async function checkBackend(backend: InferenceBackend): Promise<Comparison> {
  const ref = referenceOf(backend.model);
  const out = await backend.predict(ref.input, ref.rows);
  return compareOutputs(out, ref.output, toleranceOf(backend));
}

export interface OpenOptions {
  runtime?: Runtime;
  /** Probe override (tests play machines with other packages through it). */
  probe?: (rt: Runtime, name: BackendName) => Promise<ProbeResult>;
}

/** Opens one named backend with the model's weights; throws with the reason when it is unavailable. */
export async function openBackend(name: BackendName, model: ModelWeights, opts: OpenOptions = {}): Promise<InferenceBackend> {
  const rt = opts.runtime ?? (await loadRuntime());
  const p = await (opts.probe ?? probe)(rt, name);
  if (!p.ok) throw new Error(`backend ${name} unavailable: ${p.reason}`);
  return createInferenceBackend(rt, p, model);
}

function fmt(v: number): string {
  return v.toExponential(2);
}

/**
 * Selects the best backend the preference allows: tries the chain best first, and for each
 * backend that is unavailable, fails to initialise, or computes a different function than the
 * float64 reference, records why and tries the next.
 */
export async function selectBackend(
  pref: BackendPreference,
  modelOrSize: ModelSize | ModelWeights,
  opts: OpenOptions = {},
): Promise<Selection> {
  const rt = opts.runtime ?? (await loadRuntime());
  const model = typeof modelOrSize === 'string' ? buildWeights(modelOrSize) : modelOrSize;
  const attempts: BackendAttempt[] = [];
  const chain = chainFor(pref);
  for (const name of chain) {
    const t0 = performance.now();
    const p = await (opts.probe ?? probe)(rt, name);
    if (!p.ok) {
      attempts.push({ name, ok: false, reason: p.reason, ms: performance.now() - t0 });
      continue;
    }
    let backend: InferenceBackend | null = null;
    try {
      backend = await createInferenceBackend(rt, p, model);
      const check = await checkBackend(backend);
      if (!check.ok) {
        backend.dispose();
        attempts.push({
          name,
          ok: false,
          detail: p.detail,
          reason: `wrong results: error ${fmt(check.scaledError)} of the output scale against the float64 reference (tolerance ${fmt(check.tolerance)})`,
          ms: performance.now() - t0,
        });
        continue;
      }
      attempts.push({ name, ok: true, detail: p.detail, ms: performance.now() - t0 });
      return { backend, attempts, noGpuReason: noGpuReason(pref, backend, attempts), check };
    } catch (e) {
      backend?.dispose();
      attempts.push({
        name,
        ok: false,
        detail: p.detail,
        reason: `prediction failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`,
        ms: performance.now() - t0,
      });
    }
  }
  throw new Error(`no inference backend available: ${attempts.map((a) => `${a.name}: ${a.reason}`).join('; ')}`);
}

function noGpuReason(pref: BackendPreference, backend: InferenceBackend, attempts: BackendAttempt[]): string | null {
  if (backend.gpuInUse) return null;
  const gpu = attempts.find((a) => a.name === 'tensorflow-gpu');
  if (gpu?.reason) return gpu.reason;
  return `backend preference '${pref}' excludes the GPU backend (tensorflow-gpu)`;
}

/** The engine backend of a backend name (tensorflow-gpu runs on the engine backend 'tensorflow'). */
export function tfBackendOf(name: BackendName): string {
  return engineName(name);
}
