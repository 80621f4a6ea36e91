/**
 * Category 2, GPU acceleration: neural-network inference with a seeded model (see
 * `docs/gpu.md`). Every figure is a timed prediction of a real model on the selected backend,
 * every prediction's output is checked against a float64 reference, and a test that needs a GPU
 * is Skipped with the reason when no GPU is verified in use: nothing here is ever invented.
 *
 * Order of work (the measurements are returned in catalogue order): backend selection, 2.2 batch
 * processing (with 2.1 neural speedup sampled in the same interleaved loop when a GPU is in use),
 * 2.3 memory management, 2.5 sustained throughput, and last 2.4 CPU fallback, which removes the
 * selected backend from the engine and so must not disturb the others.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Tensor } from '@tensorflow/tfjs';
import { describe, median, round } from '../stats.ts';
import type { BenchContext, CategoryRunner } from './types.ts';
import type { Measurement } from '../api/schema.ts';
import { firstLine } from '../errors.ts';
import { checkAbort, durationSince, elapsed, failed, measured, skipped, type RawOptions } from './measure.ts';
import {
  BackendLostError,
  buildWeights,
  chainFor,
  compareOutputs,
  loadRuntime,
  loseBackend,
  makeInputs,
  MODEL_LAYERS,
  openBackend,
  probe,
  referenceOf,
  releaseTensors,
  selectBackend,
  toleranceOf,
  type BackendName,
  type BackendPreference,
  type InferenceBackend,
  type ModelWeights,
  type OpenOptions,
  type Reference,
  type Runtime,
  type Selection,
} from './inference/index.ts';
import { fallbackRefusal, inferenceDefects, withInferenceDefects } from './inference/defects.ts';
import type { Defect } from '../agent/defects.ts';

const MB = 1024 * 1024;

export interface GpuRunOptions {
  /** Test hook: tensors deliberately leaked per iteration of the memory test (2.3 must then fail). */
  leakTensorsPerIteration?: number;
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

/**
 * The inference environment: the backend the last run of this category selected, or, when it has
 * not run in this process, the best backend the preference allows that initialises here (probed
 * without a model, so its results are not checked).
 */
export async function inferenceEnvironment(pref: BackendPreference = 'auto'): Promise<InferenceEnvironment> {
  if (lastEnvironment) return lastEnvironment;
  const rt = await loadRuntime();
  const skipped: string[] = [];
  for (const name of chainFor(pref)) {
    const p = await probe(rt, name);
    if (p.ok) {
      const why = skipped.length ? ` (not used: ${skipped.join('; ')})` : '';
      return { backend: name, gpuInUse: p.gpuInUse, detail: `${p.detail}${why}` };
    }
    skipped.push(`${name}: ${p.reason}`);
  }
  return { backend: 'none', gpuInUse: false, detail: skipped.join('; ') };
}

// ---------------------------------------------------------------------------------------------

export interface GpuSession {
  ctx: BenchContext;
  rt: Runtime;
  opts: GpuRunOptions;
  sel: Selection;
  /** The selected backend; replaced by a fresh instance after each CPU-fallback trial. */
  primary: InferenceBackend;
  model: ModelWeights;
  /** Seeded inputs for the largest batch; a batch of b is its first b rows. */
  inputs: Float32Array;
  ref: Reference;
  sizes: number[];
  base: Record<string, unknown>;
  /** Inference defect profiles applied to the primary backend (`spec.gpu.defects`; docs/defects.md). */
  defects: Defect[];
  verified: number;
  wrong: number;
  firstWrong: string | null;
}

/** One timed prediction whose output (its first rows) is checked against the float64 reference. */
async function timedPredict(s: GpuSession, backend: InferenceBackend, batch: number): Promise<number> {
  const t0 = performance.now();
  const out = await backend.predict(s.inputs, batch);
  const ms = elapsed(t0);
  verify(s, backend, out, batch);
  return ms;
}

function verify(s: GpuSession, backend: InferenceBackend, out: Float32Array, batch: number): void {
  const rows = Math.min(batch, s.ref.rows);
  const cmp = compareOutputs(out, s.ref.output.subarray(0, rows * s.model.outputDim), toleranceOf(backend));
  s.verified++;
  if (!cmp.ok) {
    s.wrong++;
    s.firstWrong ??= `${backend.name} batch ${batch}: error ${cmp.scaledError.toExponential(2)} of the output scale`;
  }
}

function gcFunction(): (() => void) | null {
  const g = (globalThis as { gc?: unknown }).gc;
  if (typeof g === 'function') return g as () => void;
  try {
    v8.setFlagsFromString('--expose-gc');
    const f: unknown = vm.runInNewContext('gc');
    return typeof f === 'function' ? (f as () => void) : null;
  } catch {
    return null;
  }
}

/** Raw samples of this category: every one kept, rounded to 3 digits, as the value is. */
const RAW: RawOptions = { digits: 3, max: Number.POSITIVE_INFINITY };

/** A measured value of this category: rounded to 3 digits, with its details and the time since `startedAt`. */
function gpuMeasured(id: string, raw: number[], value: number, details: Record<string, unknown>, startedAt: number, extra: Partial<Measurement> = {}): Measurement {
  return measured(id, raw, round(value, 3), { details, durationMs: durationSince(startedAt), ...extra }, RAW);
}

// ---------------------------------------------------------------------------------------------
// 2.2 Batch processing (and 2.1 Neural speedup when a GPU is in use)

interface BatchOutcome {
  m22: Measurement;
  m21: Measurement;
}

async function openCpuBaseline(s: GpuSession): Promise<InferenceBackend> {
  const reasons: string[] = [];
  for (const name of ['wasm', 'cpu'] as BackendName[]) {
    try {
      const b = await openBackend(name, s.model, { runtime: s.rt, ...(s.opts.probe ? { probe: s.opts.probe } : {}) });
      const out = await b.predict(s.ref.input, s.ref.rows);
      const cmp = compareOutputs(out, s.ref.output, toleranceOf(b));
      if (cmp.ok) return b;
      b.dispose();
      reasons.push(`${name}: wrong results`);
    } catch (e) {
      reasons.push(`${name}: ${firstLine(e, Infinity)}`);
    }
  }
  throw new Error(`no CPU baseline backend: ${reasons.join('; ')}`);
}

async function batchAndSpeedup(s: GpuSession): Promise<BatchOutcome> {
  const { ctx, sizes } = s;
  const started = performance.now();
  const p = ctx.params;
  const gpu = s.primary.gpuInUse;
  let cpu: InferenceBackend | null = null;
  let cpuError: string | null = null;
  if (gpu) {
    try {
      cpu = await openCpuBaseline(s);
    } catch (e) {
      cpuError = firstLine(e, Infinity);
    }
  }
  // At least max(10, 4 x trials) repetitions, more until `targetMs` of sampling (short predictions
  // are cheap to sample more), never past `budgetMs` once `trials` repetitions are in.
  const minReps = Math.max(10, p.trials * 4);
  const maxReps = 2_000;
  const targetMs = p.mode === 'quick' ? 2_500 : 20_000;
  const budgetMs = p.mode === 'quick' ? 8_000 : 90_000;
  const lat = new Map<number, number[]>(sizes.map((b) => [b, []]));
  const cpuLat = new Map<number, number[]>(sizes.map((b) => [b, []]));
  // Warm-up: first calls compile kernels, allocate and (on a GPU) autotune.
  for (const b of sizes) {
    for (let i = 0; i < 3; i++) {
      await timedPredict(s, s.primary, b);
      if (cpu) await timedPredict(s, cpu, b);
    }
  }
  const loopStart = performance.now();
  let done = 0;
  for (let i = 0; i < maxReps; i++) {
    checkAbort(ctx.signal);
    const spent = elapsed(loopStart);
    if (i >= minReps && spent > targetMs) break;
    if (i >= p.trials && spent > budgetMs) break;
    // Interleaved: every repetition visits each batch size (and the CPU baseline) once, so a
    // change of machine load affects all of them alike.
    for (const b of sizes) {
      lat.get(b)!.push(await timedPredict(s, s.primary, b));
      if (cpu) cpuLat.get(b)!.push(await timedPredict(s, cpu, b));
    }
    done++;
    ctx.progress('gpu/batch', `${done} repetitions`);
  }
  cpu?.dispose();

  const first = sizes[0]!;
  const last = sizes[sizes.length - 1]!;
  const perSize = sizes.map((b) => {
    const d = describe(lat.get(b)!);
    return {
      batch: b,
      samples: d.n,
      p50Ms: round(d.p50, 3),
      p95Ms: round(d.p95, 3),
      p99Ms: round(d.p99, 3),
      samplesPerSec: round((b * 1000) / d.p50, 3),
    };
  });
  const thr = (b: number): number => (b * 1000) / median(lat.get(b)!);
  const ratios = lat.get(last)!.map((l, i) => (last / l) / (first / lat.get(first)![i]!));
  const details22 = {
    ...s.base,
    baseBatch: first,
    largestBatch: last,
    repetitions: done,
    batches: perSize,
    statistic: `samples/s at batch ${last} / samples/s at batch ${first}, each from the p50 latency; raw samples are the per-repetition ratios`,
  };
  const m22 = gpuMeasured('2.2', ratios, thr(last) / thr(first), details22, started);

  let m21: Measurement;
  if (!gpu) {
    m21 = skipped('2.1', `no GPU in use: ${s.sel.noGpuReason ?? 'unknown'}; inference ran on ${s.primary.name} (${s.primary.detail})`, { ...s.base }, 0);
  } else if (!cpu) {
    m21 = failed('2.1', cpuError ?? 'no CPU baseline backend', { ...s.base }, durationSince(started));
  } else {
    const base = cpu;
    const speedups = sizes.map((b) => {
      const g = describe(lat.get(b)!);
      const c = describe(cpuLat.get(b)!);
      return { batch: b, gpuP50Ms: round(g.p50, 3), cpuP50Ms: round(c.p50, 3), speedup: round(c.p50 / g.p50, 3) };
    });
    const paysOff = speedups.find((x) => x.speedup >= 1)?.batch ?? null;
    const raw = cpuLat.get(last)!.map((c, i) => c / lat.get(last)![i]!);
    m21 = gpuMeasured(
      '2.1',
      raw,
      median(cpuLat.get(last)!) / median(lat.get(last)!),
      {
        ...s.base,
        cpuBaseline: base.name,
        cpuBaselineDetail: base.detail,
        batch: last,
        perBatch: speedups,
        gpuPaysOffFromBatch: paysOff,
        statistic: `CPU-backend p50 / GPU-backend p50 at batch ${last}; raw samples are per-repetition ratios`,
      },
      started,
    );
  }
  return { m22, m21 };
}

// ---------------------------------------------------------------------------------------------
// 2.3 Memory management

interface Snapshot {
  numTensors: number;
  numBytes: number;
  heapUsed: number;
  rss: number;
  external: number;
  arrayBuffers: number;
}

function snapshot(b: InferenceBackend, gc: (() => void) | null): Snapshot {
  if (gc) {
    gc();
    gc();
  }
  const m = b.memory();
  const u = process.memoryUsage();
  return { ...m, heapUsed: u.heapUsed, rss: u.rss, external: u.external, arrayBuffers: u.arrayBuffers };
}

function deltaMB(a: Snapshot, b: Snapshot): Record<string, number> {
  return {
    tensors: b.numTensors - a.numTensors,
    tensorMB: round((b.numBytes - a.numBytes) / MB, 3),
    heapMB: round((b.heapUsed - a.heapUsed) / MB, 3),
    rssMB: round((b.rss - a.rss) / MB, 3),
    externalMB: round((b.external - a.external) / MB, 3),
  };
}

/** 2.3: tensors and bytes before and after many predictions. Exported for tests. */
export async function measureMemory(s: GpuSession): Promise<Measurement> {
  const started = performance.now();
  const { ctx } = s;
  const iterations = Math.max(1, ctx.params.gpu.memoryIterations);
  const checkpoints = Math.min(iterations, Math.max(3, ctx.params.trials));
  const batch = s.sizes[s.sizes.length - 1]!;
  const leakPer = Math.max(0, Math.floor(s.opts.leakTensorsPerIteration ?? 0));
  const leaked: Tensor[] = [];
  const gc = gcFunction();
  // Warm (allocator pools, kernel caches) before the baseline.
  for (let i = 0; i < 3; i++) await timedPredict(s, s.primary, batch);
  const before = snapshot(s.primary, gc);
  const growth: number[] = [];
  const trace: Record<string, number>[] = [];
  let done = 0;
  for (let k = 0; k < checkpoints; k++) {
    const until = Math.round(((k + 1) * iterations) / checkpoints);
    for (; done < until; done++) {
      checkAbort(ctx.signal);
      const out = await s.primary.predict(s.inputs, batch);
      verify(s, s.primary, out, batch);
      for (let j = 0; j < leakPer; j++) leaked.push(s.rt.tf.tensor1d(out.subarray(0, s.model.outputDim)));
    }
    const snap = snapshot(s.primary, gc);
    const d = deltaMB(before, snap);
    trace.push({ iteration: done, ...d });
    // The value: the larger of tensor-byte growth (the engine's count, device memory included) and
    // JS-heap growth after a full GC. RSS is reported, not judged: allocators and the wasm heap keep
    // their high-water mark, so RSS growth is not a leak by itself.
    growth.push(Math.max((snap.numBytes - before.numBytes) / MB, (snap.heapUsed - before.heapUsed) / MB));
    ctx.progress('gpu/memory', `${done}/${iterations}`);
  }
  const after = snapshot(s.primary, gc);
  const leakedTensors = after.numTensors - before.numTensors;
  releaseTensors(s.rt, leaked);
  const details = {
    ...s.base,
    batch,
    iterations,
    gcAvailable: gc !== null,
    before: { ...before },
    after: { ...after },
    growth: deltaMB(before, after),
    checkpoints: trace,
    leakedTensors,
    ...(leakPer ? { testHookLeakTensorsPerIteration: leakPer } : {}),
    statistic: 'max over checkpoints of max(tensor-byte growth, heap growth after GC), MB',
  };
  return gpuMeasured('2.3', growth, Math.max(...growth), details, started, {
    ...(leakedTensors > 0
      ? { fail: `${leakedTensors} tensors leaked over ${iterations} predictions (${round(leakedTensors / iterations, 2)} per prediction)` }
      : {}),
  });
}

// ---------------------------------------------------------------------------------------------
// 2.5 Sustained throughput

async function sustained(s: GpuSession): Promise<Measurement> {
  const started = performance.now();
  const { ctx } = s;
  const batch = s.sizes[s.sizes.length - 1]!;
  const totalMs = Math.max(1, ctx.params.gpu.sustainedSeconds) * 1000;
  // Latency of one prediction, so that a window holds several of them.
  const probeLat: number[] = [];
  for (let i = 0; i < 3; i++) probeLat.push(await timedPredict(s, s.primary, batch));
  const wanted = Math.min(10, Math.max(5, Math.round(totalMs / 1000)));
  const windowMs = Math.max(totalMs / wanted, 5 * median(probeLat));
  const windows = Math.floor(totalMs / windowMs);
  if (windows < 2) {
    return failed(
      '2.5',
      `one prediction at batch ${batch} takes ${round(median(probeLat), 1)} ms: ${ctx.params.gpu.sustainedSeconds} s hold fewer than 2 windows of 5 predictions`,
      { ...s.base, batch },
      durationSince(started),
    );
  }
  // Warm for one window, untimed, so the first window is not a cold start that flatters the ratio.
  const warmEnd = performance.now() + windowMs;
  while (performance.now() < warmEnd) {
    checkAbort(ctx.signal);
    verify(s, s.primary, await s.primary.predict(s.inputs, batch), batch);
  }
  const counts = new Array<number>(windows).fill(0);
  const latencies: number[] = [];
  const t0 = performance.now();
  const end = t0 + windows * windowMs;
  let lastReport = t0;
  for (;;) {
    checkAbort(ctx.signal);
    const t = performance.now();
    if (t >= end) break;
    const out = await s.primary.predict(s.inputs, batch);
    const done = performance.now();
    verify(s, s.primary, out, batch);
    latencies.push(done - t);
    // Spread the batch's samples evenly over the time the prediction took, so a prediction that
    // straddles a window boundary counts in both (no quantisation when a window holds few).
    const a = t - t0;
    const b = done - t0;
    for (let w = Math.floor(a / windowMs); w < windows && w * windowMs < b; w++) {
      const overlap = Math.min(b, (w + 1) * windowMs) - Math.max(a, w * windowMs);
      if (overlap > 0) counts[w]! += (batch * overlap) / (b - a);
    }
    if (done - lastReport > 1000) {
      ctx.progress('gpu/sustained', `${Math.round((done - t0) / 1000)}/${Math.round((end - t0) / 1000)} s`);
      lastReport = done;
    }
  }
  const thr = counts.map((c) => c / (windowMs / 1000));
  const firstThr = thr[0]!;
  const lastThr = thr[thr.length - 1]!;
  const lat = describe(latencies);
  const details = {
    ...s.base,
    batch,
    windows,
    windowSeconds: round(windowMs / 1000, 3),
    predictions: latencies.length,
    windowSamplesPerSec: thr.map((v) => round(v, 3)),
    latencyP50Ms: round(lat.p50, 3),
    latencyP95Ms: round(lat.p95, 3),
    statistic: 'samples/s in the last window / samples/s in the first; raw samples are the windows',
  };
  if (firstThr === 0) return failed('2.5', 'no prediction completed in the first window', details, durationSince(started));
  return gpuMeasured('2.5', thr, lastThr / firstThr, details, started);
}

// ---------------------------------------------------------------------------------------------
// 2.4 CPU fallback

/** Forgets the CPU backend's instance (keeping its factory), as in a process that never used it. */
function resetCpuBackend(rt: Runtime): void {
  const engine = rt.tf.engine();
  const entry = engine.registryFactory['cpu'];
  if (!entry || !engine.registry['cpu']) return;
  rt.tf.removeBackend('cpu');
  rt.tf.registerBackend('cpu', entry.factory, entry.priority);
}

async function cpuFallback(s: GpuSession): Promise<Measurement> {
  const started = performance.now();
  const { ctx, rt } = s;
  const trials = Math.max(3, ctx.params.trials);
  const primaryName = s.primary.name;
  const lostEngineBackend = s.primary.tfBackend;
  const refRow = s.ref.output.subarray(0, s.model.outputDim);
  const openOpts = { runtime: rt, ...(s.opts.probe ? { probe: s.opts.probe } : {}) };
  const totals: number[] = [];
  const detect: number[] = [];
  const switching: number[] = [];
  const predicting: number[] = [];
  const errors: string[] = [];
  let wrongFallbacks = 0;
  const tensorsBefore = s.primary.memory().numTensors;
  for (let trial = 0; trial < trials; trial++) {
    checkAbort(ctx.signal);
    // Untimed setup: the primary backend is warm; the CPU backend is registered but not initialised.
    if (primaryName !== 'cpu') resetCpuBackend(rt);
    await timedPredict(s, s.primary, 1);
    const lost = s.primary;

    // The device is lost: the engine backend and every tensor on it are gone.
    loseBackend(rt, lostEngineBackend);
    const t0 = performance.now();
    let errorKind = 'none';
    try {
      await lost.predict(s.inputs, 1);
    } catch (e) {
      errorKind = e instanceof BackendLostError ? 'BackendLostError' : firstLine(e, Infinity);
    }
    const t1 = performance.now();
    if (errorKind === 'none') throw new Error(`a prediction on ${primaryName} succeeded after its device was removed`);
    const refusal = fallbackRefusal(s.defects);
    if (refusal) throw new Error(refusal);
    const cpu = await openBackend('cpu', s.model, openOpts);
    const t2 = performance.now();
    let correct = false;
    for (let attempt = 0; attempt < 3 && !correct; attempt++) {
      const out = await cpu.predict(s.inputs, 1);
      correct = compareOutputs(out, refRow, toleranceOf(cpu)).ok;
      if (!correct) wrongFallbacks++;
    }
    const t3 = performance.now();
    if (!correct) errors.push(`trial ${trial + 1}: no correct CPU prediction in 3 attempts`);
    else {
      totals.push(t3 - t0);
      detect.push(t1 - t0);
      switching.push(t2 - t1);
      predicting.push(t3 - t2);
    }
    errors.push(...(errorKind !== 'BackendLostError' ? [`trial ${trial + 1}: loss surfaced as '${errorKind}'`] : []));

    // Untimed restore: release the lost weights, bring the primary backend back.
    cpu.dispose();
    lost.dispose();
    s.primary = withInferenceDefects(await openBackend(primaryName, s.model, openOpts), s.defects, rt);
    ctx.progress('gpu/fallback', `${trial + 1}/${trials}`);
  }
  await timedPredict(s, s.primary, 1);
  const tensorsAfter = s.primary.memory().numTensors;
  const details = {
    ...s.base,
    lost: primaryName,
    fallback: 'cpu',
    ...(primaryName === 'cpu'
      ? { fallbackNote: 'the selected backend is the cpu backend itself: the fallback is a fresh cpu backend instance' }
      : {}),
    trials,
    detectP50Ms: detect.length ? round(median(detect), 3) : null,
    switchP50Ms: switching.length ? round(median(switching), 3) : null,
    firstPredictionP50Ms: predicting.length ? round(median(predicting), 3) : null,
    wrongFallbackPredictions: wrongFallbacks,
    tensorsBefore,
    tensorsAfter,
    ...(errors.length ? { errors } : {}),
    statistic:
      'from the selected backend removed from the engine (its tensors lost) to the first CPU prediction equal to the float64 reference: detecting the loss, initialising the CPU backend, re-uploading the weights from the host copy, predicting batch 1',
  };
  if (totals.length === 0) return failed('2.4', errors.join('; ') || 'no trial completed', details, durationSince(started));
  const fail = errors.find((e) => e.includes('no correct CPU prediction'));
  return gpuMeasured('2.4', totals, median(totals), details, started, fail ? { fail } : {});
}

// ---------------------------------------------------------------------------------------------

async function openSession(ctx: BenchContext, opts: GpuRunOptions): Promise<GpuSession> {
  const rt = opts.runtime ?? (await loadRuntime());
  const g = ctx.params.gpu;
  const model = buildWeights(g.model);
  const sel = await selectBackend(g.backend, model, { runtime: rt, ...(opts.probe ? { probe: opts.probe } : {}) });
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
  return {
    ctx,
    rt,
    opts,
    sel,
    primary: withInferenceDefects(sel.backend, defects, rt),
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

/** Runs the category with test hooks. */
export async function runGpu(ctx: BenchContext, opts: GpuRunOptions = {}): Promise<Measurement[]> {
  const ids = ['2.1', '2.2', '2.3', '2.4', '2.5'];
  const started = performance.now();
  ctx.progress('gpu/select', ctx.params.gpu.backend);
  let s: GpuSession;
  try {
    s = await openSession(ctx, opts);
  } catch (e) {
    const reason = `inference backend selection failed: ${firstLine(e, Infinity)}`;
    return ids.map((id) => failed(id, reason, { backend: 'none', gpuInUse: false }, durationSince(started)));
  }
  ctx.log.info('gpu: inference backend selected', {
    backend: s.primary.name,
    gpuInUse: s.primary.gpuInUse,
    detail: s.primary.detail,
    attempts: s.sel.attempts.map((a) => `${a.name}: ${a.ok ? 'ok' : a.reason}`),
  });
  const results = new Map<string, Measurement>();
  const guard = async (idsOf: string[], fn: () => Promise<Measurement[]>): Promise<void> => {
    const t = performance.now();
    const wrongBefore = s.wrong;
    try {
      for (const m of await fn()) {
        if (s.wrong > wrongBefore && !m.skip && !m.fail) {
          m.fail = `${s.wrong - wrongBefore} predictions differed from the reference (first: ${s.firstWrong})`;
        }
        results.set(m.id, m);
      }
    } catch (e) {
      for (const id of idsOf) results.set(id, failed(id, firstLine(e, Infinity), { ...s.base }, durationSince(t)));
    }
  };
  await guard(['2.1', '2.2'], async () => {
    const r = await batchAndSpeedup(s);
    return [r.m21, r.m22];
  });
  await guard(['2.3'], async () => [await measureMemory(s)]);
  await guard(['2.5'], async () => [await sustained(s)]);
  await guard(['2.4'], async () => [await cpuFallback(s)]);
  s.primary.dispose();
  for (const m of results.values()) {
    if (m.details) m.details.verifiedPredictions = s.verified;
  }
  return ids.map((id) => results.get(id) ?? failed(id, 'not measured', { ...s.base }, durationSince(started)));
}

export const run: CategoryRunner = (ctx) => runGpu(ctx);

/** For tests: a session on the selected backend, to run one measurement alone. */
export async function openGpuSession(ctx: BenchContext, opts: GpuRunOptions = {}): Promise<GpuSession & { close(): void }> {
  const s = await openSession(ctx, opts);
  return Object.assign(s, { close: () => s.primary.dispose() });
}

