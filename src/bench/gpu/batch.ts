/**
 * 2.2 Batch processing, and 2.1 Neural speedup sampled in the same interleaved loop when a GPU is
 * in use (docs/gpu.md).
 */
import type { Measurement } from '../../api/schema.ts';
import { firstLine } from '../../errors.ts';
import { BATCH_BUDGET_MS, BATCH_WARMUP } from '../../plan/deadlines.ts';
import { describe, median, round } from '../../stats.ts';
import { checkAbort, durationSince, elapsed, failed, skipped } from '../measure.ts';
import { compareOutputs, openBackend, toleranceOf, type BackendName, type InferenceBackend } from '../inference/index.ts';
import { gpuMeasured, timedPredict, type GpuSession } from './session.ts';

/** Samples a percentile needs before it is reported (fewer: null, the maximum is reported instead). */
export const MIN_SAMPLES = { p95: 20, p99: 100 } as const;

export interface BatchOutcome {
  m22: Measurement;
  m21: Measurement;
}

async function openCpuBaseline(s: GpuSession): Promise<InferenceBackend> {
  const reasons: string[] = [];
  for (const name of ['wasm', 'cpu'] as BackendName[]) {
    try {
      const b = await openBackend(name, s.model, s.openOpts);
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

/** Latency figures of one batch size: p95 and p99 only with enough samples for them. */
function latencyRow(batch: number, lat: number[]): Record<string, number | null> {
  const d = describe(lat);
  return {
    batch,
    samples: d.n,
    p50Ms: round(d.p50, 3),
    p95Ms: d.n >= MIN_SAMPLES.p95 ? round(d.p95, 3) : null,
    p99Ms: d.n >= MIN_SAMPLES.p99 ? round(d.p99, 3) : null,
    maxMs: round(d.max, 3),
    samplesPerSec: round((batch * 1000) / d.p50, 3),
  };
}

export async function batchAndSpeedup(s: GpuSession): Promise<BatchOutcome> {
  const { ctx, sizes } = s;
  const started = performance.now();
  const p = ctx.params;
  const primary = s.service.backend;
  const gpu = primary.gpuInUse;
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
  // are cheap to sample more), never past `budgetMs` once `trials` repetitions are in. The budget
  // and the warm-up are plan/deadlines.ts's, for the step's deadline.
  const minReps = Math.max(10, p.trials * 4);
  const maxReps = 2_000;
  const targetMs = p.mode === 'quick' ? 2_500 : 20_000;
  const budgetMs = BATCH_BUDGET_MS[p.mode];
  const lat = new Map<number, number[]>(sizes.map((b) => [b, []]));
  const cpuLat = new Map<number, number[]>(sizes.map((b) => [b, []]));
  // Warm-up, not counted: first calls compile kernels, allocate and (on a GPU) autotune.
  const warmUp = BATCH_WARMUP;
  for (const b of sizes) {
    for (let i = 0; i < warmUp; i++) {
      await timedPredict(s, s.service, b);
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
      lat.get(b)!.push(await timedPredict(s, s.service, b));
      if (cpu) cpuLat.get(b)!.push(await timedPredict(s, cpu, b));
    }
    done++;
    ctx.progress('gpu/batch', `${done} repetitions`);
  }
  cpu?.dispose();

  const first = sizes[0]!;
  const last = sizes[sizes.length - 1]!;
  const thr = (b: number): number => (b * 1000) / median(lat.get(b)!);
  const ratios = lat.get(last)!.map((l, i) => last / l / (first / lat.get(first)![i]!));
  const details22 = {
    ...s.base,
    baseBatch: first,
    largestBatch: last,
    repetitions: done,
    warmUpPerBatch: warmUp,
    batches: sizes.map((b) => latencyRow(b, lat.get(b)!)),
    statistic: `samples/s at batch ${last} / samples/s at batch ${first}, each from the p50 latency over ${done} interleaved repetitions (warm-up excluded); raw samples are the per-repetition ratios`,
  };
  const m22 = gpuMeasured('2.2', ratios, thr(last) / thr(first), 'repetitions', details22, started);

  let m21: Measurement;
  if (!gpu) {
    m21 = skipped('2.1', `no GPU in use: ${s.sel.noGpuReason ?? 'unknown'}; inference ran on ${primary.name} (${primary.detail})`, { ...s.base }, 0);
  } else if (!cpu) {
    m21 = failed('2.1', cpuError ?? 'no CPU baseline backend', { ...s.base }, durationSince(started));
  } else {
    const base = cpu;
    const speedups = sizes.map((b) => {
      const g = median(lat.get(b)!);
      const c = median(cpuLat.get(b)!);
      return { batch: b, gpuP50Ms: round(g, 3), cpuP50Ms: round(c, 3), speedup: round(c / g, 3) };
    });
    const paysOff = speedups.find((x) => x.speedup >= 1)?.batch ?? null;
    const raw = cpuLat.get(last)!.map((c, i) => c / lat.get(last)![i]!);
    m21 = gpuMeasured(
      '2.1',
      raw,
      median(cpuLat.get(last)!) / median(lat.get(last)!),
      'repetitions',
      {
        ...s.base,
        cpuBaseline: base.name,
        cpuBaselineDetail: base.detail,
        batch: last,
        repetitions: done,
        perBatch: speedups,
        gpuPaysOffFromBatch: paysOff,
        statistic: `CPU-backend p50 / GPU-backend p50 at batch ${last} over ${done} interleaved repetitions (warm-up excluded); raw samples are per-repetition ratios`,
      },
      started,
    );
  }
  return { m22, m21 };
}
