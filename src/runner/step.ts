/**
 * Runs one step of a plan in this process and returns its result document. The runner process
 * (`swarmbench runner`) wraps this; in Kubernetes it runs in the step's Job.
 */
import { hostname } from 'node:os';
import { API_VERSION_FULL, type StepResult } from '../api/schema.ts';
import { CATEGORY_MODULES } from '../bench/index.ts';
import type { Logger } from '../log.ts';
import type { Measurement } from '../api/schema.ts';
import type { Params } from '../plan/params.ts';
import type { Step } from '../plan/plan.ts';
import type { Platform } from '../platform/types.ts';
import { errorMessage } from '../errors.ts';
import { applyFixedAgents } from './fixed.ts';

export interface StepOptions {
  platform: Platform;
  log: Logger;
  progress(step: string, detail?: string): void;
  signal: AbortSignal;
  attempt: number;
  node?: string;
}

export async function runStep(step: Step, params: Params, opts: StepOptions): Promise<StepResult> {
  const startedAt = new Date().toISOString();
  let measurements: Measurement[] = [];
  let error: string | undefined;
  try {
    const mod = await CATEGORY_MODULES[step.category]();
    measurements = await mod.run({
      params,
      platform: opts.platform,
      log: opts.log,
      progress: opts.progress,
      signal: opts.signal,
    });
    const allowed = new Set(step.tests);
    const foreign = measurements.filter((m) => !allowed.has(m.id));
    if (foreign.length > 0) {
      error = `step ${step.name} reported tests outside its category: ${foreign.map((m) => m.id).join(', ')}`;
      measurements = measurements.filter((m) => allowed.has(m.id));
    }
  } catch (err) {
    error = `step ${step.name} failed: ${errorMessage(err)}`;
    opts.log.warn('step failed', { step: step.name, error: err instanceof Error ? err.stack : String(err) });
  }
  if (opts.platform.fixedAgents) ({ measurements, error } = applyFixedAgents(measurements, step.tests, error));
  return {
    apiVersion: API_VERSION_FULL,
    kind: 'StepResult',
    step: step.name,
    category: step.category,
    attempt: opts.attempt,
    startedAt,
    finishedAt: new Date().toISOString(),
    node: opts.node ?? hostname(),
    measurements: measurements.map((m) => ({
      id: m.id,
      value: m.value === null || Number.isFinite(m.value) ? m.value : null,
      samples: m.samples,
      ...(m.raw ? { raw: m.raw } : {}),
      ...(m.distribution ? { distribution: m.distribution } : {}),
      ...(m.skip ? { skip: m.skip } : {}),
      ...(m.fail ? { fail: m.fail } : {}),
      ...(m.details ? { details: m.details } : {}),
      ...(m.durationMs !== undefined ? { durationMs: m.durationMs } : {}),
      ...(m.sampleUnit ? { sampleUnit: m.sampleUnit } : {}),
      ...(m.statistic ? { statistic: m.statistic } : {}),
    })),
    ...(error ? { error } : {}),
  };
}
