/**
 * Runs one step of a plan in this process and returns its result document. The runner process
 * (`swarmbench runner`) wraps this; in Kubernetes it runs in the step's Job.
 *
 * Partial results: the category hands over each measurement as it finishes (`ctx.finished`,
 * bench/types.ts) and this keeps them. When the category returns, its returned list is the
 * result. When it throws, the result holds the measurements it handed over and the error. When
 * `opts.signal` aborts (SIGTERM), this returns at once, without waiting for the category to wind
 * down (it is left to the platform's close): the result holds the measurements handed over before
 * the abort (any later ones may be the abort's own "cancelled" failures) and an `error` saying
 * the step was interrupted and which tests had finished; the runner writes it before it closes
 * the platform (and the category, left running, starts no pool after the abort: `untilAborted`).
 * Every measurement's raw samples are capped for storage (`storedMeasurement`, bench/measure.ts),
 * its exact distribution kept.
 *
 * Every result carries the environment of the process that ran it (`environment`,
 * report/machine.ts `thisMachine`: node name, hostname, Node version, OS, CPUs, CPU set, memory
 * and cgroup memory limit), read once when the step starts, so that a result assembled elsewhere
 * (the operator) describes the runner's node and not its own process.
 */
import { API_VERSION_FULL, type StepResult } from '../api/schema.ts';
import { CATEGORY_MODULES } from '../bench/index.ts';
import type { Logger } from '../log.ts';
import type { Measurement } from '../api/schema.ts';
import type { Params } from '../plan/params.ts';
import type { Step } from '../plan/plan.ts';
import type { Platform, Pool } from '../platform/types.ts';
import { errorMessage } from '../errors.ts';
import { applyFixedAgents } from './fixed.ts';
import { storedMeasurement } from '../bench/measure.ts';
import { thisMachine } from '../report/machine.ts';

export interface StepOptions {
  platform: Platform;
  log: Logger;
  progress(step: string, detail?: string): void;
  signal: AbortSignal;
  attempt: number;
  /** The Kubernetes node this runs on (`NODE_NAME`); default the hostname. */
  node?: string;
}

export async function runStep(step: Step, params: Params, opts: StepOptions): Promise<StepResult> {
  const startedAt = new Date().toISOString();
  const environment = thisMachine(opts.node);
  let measurements: Measurement[] = [];
  let error: string | undefined;
  const handedOver = new Map<string, Measurement>();
  const order = (ms: Iterable<Measurement>) => [...ms].sort((a, b) => step.tests.indexOf(a.id) - step.tests.indexOf(b.id));
  try {
    const mod = await CATEGORY_MODULES[step.category]();
    opts.signal.throwIfAborted();
    const running = mod.run({
      params,
      platform: untilAborted(opts.platform, opts.signal),
      log: opts.log,
      progress: opts.progress,
      signal: opts.signal,
      finished: (m) => {
        if (!opts.signal.aborted) handedOver.set(m.id, m);
      },
    });
    // Left running on an abort: its later failure is not this process's crash.
    running.catch(() => {});
    const outcome = await Promise.race([running.then((ms) => ({ ms })), abortOf(opts.signal)]);
    if (!('ms' in outcome)) throw outcome.aborted;
    measurements = outcome.ms;
    const allowed = new Set(step.tests);
    const foreign = measurements.filter((m) => !allowed.has(m.id));
    if (foreign.length > 0) {
      error = `step ${step.name} reported tests outside its category: ${foreign.map((m) => m.id).join(', ')}`;
      measurements = measurements.filter((m) => allowed.has(m.id));
    }
  } catch (err) {
    const allowed = new Set(step.tests);
    measurements = order([...handedOver.values()].filter((m) => allowed.has(m.id)));
    const kept = `${measurements.length} of ${step.tests.length} tests finished${measurements.length ? ` (${measurements.map((m) => m.id).join(', ')})` : ''}`;
    if (opts.signal.aborted) {
      error = `step ${step.name} was interrupted (${errorMessage(opts.signal.reason)}): ${kept} before it`;
      opts.log.warn('step interrupted', { step: step.name, finished: measurements.map((m) => m.id) });
    } else {
      error = `step ${step.name} failed: ${errorMessage(err)}${handedOver.size ? `; ${kept} before it` : ''}`;
      opts.log.warn('step failed', { step: step.name, error: err instanceof Error ? err.stack : String(err) });
    }
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
    node: environment.nodeName,
    measurements: measurements.map((m) => storedMeasurement(m)).map((m) => ({
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
    environment,
  };
}

/** Resolves with the signal's reason once it aborts (at once when it already has). */
function abortOf(signal: AbortSignal): Promise<{ aborted: unknown }> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve({ aborted: signal.reason });
    else signal.addEventListener('abort', () => resolve({ aborted: signal.reason }), { once: true });
  });
}

/**
 * The platform as the category sees it: once the step is interrupted it starts no new pool (one
 * whose start the abort overtook is closed at once), since the category is left running while
 * the runner writes the result and closes the platform, and must not start agents behind it.
 */
function untilAborted(platform: Platform, signal: AbortSignal): Platform {
  return {
    kind: platform.kind,
    ...(platform.fixedAgents !== undefined ? { fixedAgents: platform.fixedAgents } : {}),
    createPool: async (o): Promise<Pool> => {
      signal.throwIfAborted();
      const pool = await platform.createPool(o);
      if (signal.aborted) {
        await pool.close().catch(() => {});
        signal.throwIfAborted();
      }
      return pool;
    },
    close: () => platform.close(),
  };
}
