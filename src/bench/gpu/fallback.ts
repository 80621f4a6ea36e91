/**
 * 2.4 CPU fallback: the device under the inference service is lost, and the harness, as a client,
 * times from the loss to the first correct answer the service gives. The fallback itself is the
 * service's (it detects the loss on a request and moves to the CPU by itself); the harness only
 * injects the loss and watches requests from outside (docs/gpu.md).
 */
import type { Measurement } from '../../api/schema.ts';
import { firstLine } from '../../errors.ts';
import { median, round } from '../../stats.ts';
import { checkAbort, durationSince, failed } from '../measure.ts';
import { loseBackend, openBackend, type Runtime } from '../inference/index.ts';
import { withInferenceDefects } from '../inference/defects.ts';
import { gpuMeasured, timedPredict, verify, type GpuSession } from './session.ts';

/** Forgets the CPU backend's instance (keeping its factory), as in a process that never used it. */
function resetCpuBackend(rt: Runtime): void {
  const engine = rt.tf.engine();
  const entry = engine.registryFactory['cpu'];
  if (!entry || !engine.registry['cpu']) return;
  rt.tf.removeBackend('cpu');
  rt.tf.registerBackend('cpu', entry.factory, entry.priority);
}

/** How long the client waits for an answer after the loss: 10 x the target, within 1..10 s. */
export function fallbackDeadlineMs(targetMs: number): number {
  return Math.min(10_000, Math.max(1_000, 10 * targetMs));
}

/** Pause of the client between a failed request and its retry (the resolution of a recovery that needs retries). */
const RETRY_MS = 1;

interface Trial {
  totalMs: number | null;
  requests: number;
  failedRequests: number;
  firstError: string | null;
  /** The service's own account (its clock), relative to the loss. */
  serviceDetectMs: number | null;
  serviceSwitchMs: number | null;
  serviceFallback: string | null;
  serviceError: string | null;
}

export async function cpuFallback(s: GpuSession): Promise<Measurement> {
  const started = performance.now();
  const { ctx, rt } = s;
  const trials = Math.max(3, ctx.params.trials);
  const deadlineMs = fallbackDeadlineMs(ctx.params.targets.cpuFallbackMs);
  const primaryName = s.service.primary.name;
  const lostEngine = s.service.primary.tfBackend;
  const done: Trial[] = [];
  const tensorsBefore = s.service.backend.memory().numTensors;
  for (let trial = 0; trial < trials; trial++) {
    checkAbort(ctx.signal);
    // Untimed setup: the service serves on its warm primary; the CPU backend is registered but not
    // initialised.
    if (lostEngine !== 'cpu') resetCpuBackend(rt);
    await timedPredict(s, s.service, 1);
    const lossesBefore = s.service.losses.length;

    // The device is lost: the engine backend and every tensor on it (the weights) are gone.
    loseBackend(rt, lostEngine);
    const t0 = performance.now();
    const r: Trial = {
      totalMs: null,
      requests: 0,
      failedRequests: 0,
      firstError: null,
      serviceDetectMs: null,
      serviceSwitchMs: null,
      serviceFallback: null,
      serviceError: null,
    };
    while (performance.now() - t0 < deadlineMs) {
      r.requests++;
      try {
        const out = await s.service.predict(s.inputs, 1);
        r.totalMs = performance.now() - t0;
        verify(s, s.service.backend, out, 1);
        break;
      } catch (e) {
        r.failedRequests++;
        r.firstError ??= firstLine(e, Infinity);
        await new Promise((res) => setTimeout(res, RETRY_MS));
      }
    }
    const rec = s.service.losses[lossesBefore];
    if (rec) {
      r.serviceDetectMs = rec.detectedAt - t0;
      r.serviceSwitchMs = rec.readyAt === null ? null : rec.readyAt - rec.detectedAt;
      r.serviceFallback = rec.fallback;
      r.serviceError = rec.error;
    }
    done.push(r);

    // Untimed restore: release the lost weights, bring the selected backend back into service.
    s.service.restore(withInferenceDefects(await openBackend(primaryName, s.model, s.openOpts), s.defects, rt));
    ctx.progress('gpu/fallback', `${trial + 1}/${trials}`);
    // A service that never answered will not answer the next time either.
    if (r.totalMs === null) break;
  }
  await timedPredict(s, s.service, 1);
  const tensorsAfter = s.service.backend.memory().numTensors;
  const answered = done.filter((t) => t.totalMs !== null);
  const p50 = (xs: (number | null)[]): number | null => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length ? round(median(v), 3) : null;
  };
  const details = {
    ...s.base,
    lost: primaryName,
    fallback: done.find((t) => t.serviceFallback)?.serviceFallback ?? null,
    ...(primaryName === 'cpu'
      ? { fallbackNote: 'the selected backend is the cpu backend itself: the fallback is a fresh cpu backend instance' }
      : {}),
    trials: done.length,
    deadlineMs,
    retryMs: RETRY_MS,
    requestsP50: p50(done.map((t) => t.requests)),
    failedRequests: done.reduce((a, t) => a + t.failedRequests, 0),
    ...(done.some((t) => t.firstError) ? { firstError: done.find((t) => t.firstError)!.firstError } : {}),
    serviceDetectP50Ms: p50(done.map((t) => t.serviceDetectMs)),
    serviceSwitchP50Ms: p50(done.map((t) => t.serviceSwitchMs)),
    perTrial: done.map((t) => ({
      totalMs: t.totalMs === null ? null : round(t.totalMs, 3),
      requests: t.requests,
      failedRequests: t.failedRequests,
      serviceFallback: t.serviceFallback,
      ...(t.serviceError ? { serviceError: t.serviceError } : {}),
    })),
    tensorsBefore,
    tensorsAfter,
    method:
      'the device is lost by removing the engine backend (tf.removeBackend: the backend and every tensor on it, the weights included, are gone); the harness then sends batch-1 requests to the inference service as a client and times from the loss to the first answer, checked against the float64 reference. The detect and switch phases are the service\'s own account',
  };
  const unanswered = done.find((t) => t.totalMs === null);
  if (unanswered) {
    const svc = unanswered.serviceFallback
      ? `the service fell back to ${unanswered.serviceFallback} but gave no answer`
      : unanswered.serviceError
        ? `the service's fallback failed: ${unanswered.serviceError}`
        : 'the service did not fall back';
    return failed(
      '2.4',
      `no answer within ${deadlineMs} ms of the device loss (trial ${done.length}): ${unanswered.failedRequests} of ${unanswered.requests} requests failed (first: ${unanswered.firstError ?? 'none'}); ${svc}`,
      details,
      durationSince(started),
    );
  }
  const totals = answered.map((t) => t.totalMs!);
  return gpuMeasured('2.4', totals, median(totals), 'trials', details, started);
}
