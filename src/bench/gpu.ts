/**
 * Category 2, GPU acceleration: neural-network inference with a seeded model (see
 * `docs/gpu.md`). Every figure is a timed prediction of a real model on the selected backend,
 * every prediction's output is checked against a float64 reference, and a test that needs a GPU
 * is Skipped with the reason when no GPU is verified in use: nothing here is ever invented.
 *
 * The predictions go to the inference service (`inference/service.ts` under this folder), the
 * category's system under test: it serves on the selected backend and falls back to the CPU by
 * itself when the device is lost. The tests are in `gpu/`: `batch.ts` (2.2, and 2.1 sampled in
 * the same interleaved loop when a GPU is in use), `sustained.ts` (2.5, with the trend fit of
 * `trend.ts`), `memory.ts` (2.3) and `fallback.ts` (2.4), run in that order. 2.5 comes right
 * after the time-boxed 2.2, so it starts a few seconds into the service's life whatever the
 * host's load (2.3's fixed count of predictions takes longer on a busy host); 2.4 removes the
 * selected backend from the engine and so must not disturb the others. The measurements are
 * returned in catalogue order.
 */
import type { CategoryRunner } from './types.ts';
import type { Measurement } from '../api/schema.ts';
import { firstLine } from '../errors.ts';
import { durationSince, failed } from './measure.ts';
import { chainFor, loadRuntime, probe, type BackendPreference } from './inference/index.ts';
import { batchAndSpeedup } from './gpu/batch.ts';
import { measureMemory } from './gpu/memory.ts';
import { sustained } from './gpu/sustained.ts';
import { cpuFallback } from './gpu/fallback.ts';
import { lastInferenceEnvironment, openSession, type GpuRunOptions, type GpuSession, type InferenceEnvironment } from './gpu/session.ts';
import type { BenchContext } from './types.ts';

export { measureMemory } from './gpu/memory.ts';
export type { GpuRunOptions, GpuSession, InferenceEnvironment } from './gpu/session.ts';

/**
 * The inference environment: the backend the last run of this category selected, or, when it has
 * not run in this process, the best backend the preference allows that initialises here (probed
 * without a model, so its results are not checked).
 */
export async function inferenceEnvironment(pref: BackendPreference = 'auto'): Promise<InferenceEnvironment> {
  const last = lastInferenceEnvironment();
  if (last) return last;
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
    backend: s.service.backend.name,
    gpuInUse: s.service.backend.gpuInUse,
    detail: s.service.backend.detail,
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
        ctx.finished?.(m);
      }
    } catch (e) {
      for (const id of idsOf) {
        const m = failed(id, firstLine(e, Infinity), { ...s.base }, durationSince(t));
        results.set(id, m);
        ctx.finished?.(m);
      }
    }
  };
  await guard(['2.1', '2.2'], async () => {
    const r = await batchAndSpeedup(s);
    return [r.m21, r.m22];
  });
  await guard(['2.5'], async () => [await sustained(s)]);
  await guard(['2.3'], async () => [await measureMemory(s)]);
  await guard(['2.4'], async () => [await cpuFallback(s)]);
  s.service.dispose();
  for (const m of results.values()) {
    if (m.details) m.details.verifiedPredictions = s.verified;
  }
  return ids.map((id) => results.get(id) ?? failed(id, 'not measured', { ...s.base }, durationSince(started)));
}

export const run: CategoryRunner = (ctx) => runGpu(ctx);

/** For tests: a session on the selected backend, to run one measurement alone. */
export async function openGpuSession(ctx: BenchContext, opts: GpuRunOptions = {}): Promise<GpuSession & { close(): void }> {
  const s = await openSession(ctx, opts);
  return Object.assign(s, { close: () => s.service.dispose() });
}
