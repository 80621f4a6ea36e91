/**
 * The GPU category's session: the selected backend behind the inference service, the seeded model,
 * inputs and float64 reference, and what every test shares (a checked, timed prediction; the
 * measurement builder; the details common to all five tests).
 */
import type { BenchContext } from '../types.ts';
import type { Measurement } from '../../api/schema.ts';
import { round } from '../../stats.ts';
import { durationSince, elapsed, measured, type RawOptions } from '../measure.ts';
import {
  buildWeights,
  compareOutputs,
  loadRuntime,
  makeInputs,
  MODEL_LAYERS,
  openBackend,
  referenceOf,
  selectBackend,
  toleranceOf,
  type InferenceBackend,
  type ModelWeights,
  type OpenOptions,
  type Reference,
  type Runtime,
  type Selection,
} from '../inference/index.ts';
import { inferenceDefects, serviceFallsBack, withInferenceDefects } from '../inference/defects.ts';
import { createService, type InferenceService } from '../inference/service.ts';
import type { Defect } from '../../agent/defects.ts';

export const MB = 1024 * 1024;

export interface GpuRunOptions {
  /** Probe override (tests play machines with other packages through it). */
  probe?: OpenOptions['probe'];
  runtime?: Runtime;
}

/** What the result document's environment records about inference. */
export interface InferenceEnvironment {
  backend: string;
  gpuInUse: boolean;
  detail: string;
}

let lastEnvironment: InferenceEnvironment | null = null;

/** The backend the last session of this process selected, if any. */
export function lastInferenceEnvironment(): InferenceEnvironment | null {
  return lastEnvironment;
}

export interface GpuSession {
  ctx: BenchContext;
  rt: Runtime;
  opts: GpuRunOptions;
  openOpts: OpenOptions;
  sel: Selection;
  /** Answers every prediction of 2.2-2.5; its backend is the selected one (with the inference defects). */
  service: InferenceService;
  model: ModelWeights;
  /** Seeded inputs for the largest batch; a batch of b is its first b rows. */
  inputs: Float32Array;
  ref: Reference;
  sizes: number[];
  base: Record<string, unknown>;
  /** Inference defect profiles (`spec.gpu.defects`; docs/defects.md). */
  defects: Defect[];
  verified: number;
  wrong: number;
  firstWrong: string | null;
}

/** Something that predicts: the service or a backend (the CPU baseline of 2.1). */
export interface Predictor {
  predict(input: Float32Array, batch: number): Promise<Float32Array>;
}

/** The backend behind a predictor (the service's current one), for its name and tolerance. */
function backendOf(s: GpuSession, p: Predictor): InferenceBackend {
  return p === s.service ? s.service.backend : (p as InferenceBackend);
}

/** One timed prediction whose output (its first rows) is checked against the float64 reference. */
export async function timedPredict(s: GpuSession, p: Predictor, batch: number): Promise<number> {
  const t0 = performance.now();
  const out = await p.predict(s.inputs, batch);
  const ms = elapsed(t0);
  verify(s, backendOf(s, p), out, batch);
  return ms;
}

export function verify(s: GpuSession, backend: InferenceBackend, out: Float32Array, batch: number): void {
  const rows = Math.min(batch, s.ref.rows);
  const cmp = compareOutputs(out, s.ref.output.subarray(0, rows * s.model.outputDim), toleranceOf(backend));
  s.verified++;
  if (!cmp.ok) {
    s.wrong++;
    s.firstWrong ??= `${backend.name} batch ${batch}: error ${cmp.scaledError.toExponential(2)} of the output scale`;
  }
}

/** Raw samples of this category: every one kept (up to RAW_STORED_MAX, 500, in a step result: bench/measure.ts), rounded to 3 digits, as the value is. */
const RAW: RawOptions = { digits: 3, max: Number.POSITIVE_INFINITY };

/** A measured value of this category: rounded to 3 digits, with its details, sample unit and the time since `startedAt`. */
export function gpuMeasured(
  id: string,
  raw: number[],
  value: number,
  sampleUnit: string,
  details: Record<string, unknown>,
  startedAt: number,
  extra: Partial<Measurement> = {},
): Measurement {
  return measured(id, raw, round(value, 3), { details, durationMs: durationSince(startedAt), sampleUnit, ...extra }, RAW);
}

/** A number rounded for details, or null when it is not finite (JSON has no Infinity). */
export function finite(v: number, digits = 3): number | null {
  return Number.isFinite(v) ? round(v, digits) : null;
}

/** Opens the selected backend (with the run's inference defects) behind the inference service. */
export function serviceOf(s: Pick<GpuSession, 'rt' | 'model' | 'openOpts' | 'defects'>, primary: InferenceBackend): InferenceService {
  return createService(withInferenceDefects(primary, s.defects, s.rt), {
    openFallback: () => openBackend('cpu', s.model, s.openOpts),
    fallBack: serviceFallsBack(s.defects),
  });
}

export async function openSession(ctx: BenchContext, opts: GpuRunOptions): Promise<GpuSession> {
  const rt = opts.runtime ?? (await loadRuntime());
  const g = ctx.params.gpu;
  const model = buildWeights(g.model);
  const openOpts: OpenOptions = { runtime: rt, ...(opts.probe ? { probe: opts.probe } : {}) };
  const sel = await selectBackend(g.backend, model, openOpts);
  const defects = inferenceDefects(g.defects);
  const sizes = [...g.batchSizes].sort((a, b) => a - b);
  const maxBatch = sizes[sizes.length - 1]!;
  lastEnvironment = { backend: sel.backend.name, gpuInUse: sel.backend.gpuInUse, detail: sel.backend.detail };
  const base = {
    backend: sel.backend.name,
    gpuInUse: sel.backend.gpuInUse,
    backendDetail: sel.backend.detail,
    backendAttempts: sel.attempts.map((a) => ({ ...a, ms: Math.round(a.ms) })),
    model: g.model,
    modelLayers: [...MODEL_LAYERS[g.model]],
    macsPerSample: model.macsPerSample,
    parameterMB: round(model.parameterBytes / MB, 3),
    seed: model.seed,
    batchSizes: sizes,
    referenceError: sel.check.scaledError,
    ...(defects.length ? { defects: g.defects } : {}),
  };
  const parts = { rt, model, openOpts, defects };
  return {
    ctx,
    rt,
    opts,
    openOpts,
    sel,
    service: serviceOf(parts, sel.backend),
    model,
    inputs: makeInputs(model, maxBatch, model.seed),
    ref: referenceOf(model),
    sizes,
    base,
    defects,
    verified: 0,
    wrong: 0,
    firstWrong: null,
  };
}
