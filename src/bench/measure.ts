/**
 * Measurement helpers every category shares: building a measured, failed or skipped
 * `Measurement`, running one test so that a throw becomes a failed measurement, the time since a
 * `performance.now()` reading, the cancellation check, rounding for result documents, and which
 * entry of a pool's process figures is the same process in another snapshot.
 * Error-to-message is `src/errors.ts`.
 */
import type { Measurement } from '../api/schema.ts';
import { errorMessage } from '../errors.ts';
import { capSamples, describe, round } from '../stats.ts';
import type { ProcessStats } from '../platform/types.ts';

/** Milliseconds since `t0`, a `performance.now()` reading. */
export function elapsed(t0: number): number {
  return performance.now() - t0;
}

/** Whole milliseconds since `t0`, as a measurement's `durationMs`. */
export function durationSince(t0: number): number {
  return Math.round(elapsed(t0));
}

/** Throws `cancelled` once the run is cancelled (between trials, between predictions). */
export function checkAbort(signal: AbortSignal): void {
  if (signal.aborted) throw new Error('cancelled');
}

export interface RawOptions {
  /** Digits the stored raw samples are rounded to (default 4). */
  digits?: number;
  /** Raw samples stored at most, evenly strided (default 500; the distribution uses them all; the runner caps at `RAW_STORED_MAX` anyway). */
  max?: number;
}

/**
 * A measured value with its samples: `raw` rounded and capped for the document, `distribution`
 * over every sample. `extra` adds or overrides fields (details, durationMs, a `fail` reason).
 */
export function measured(id: string, raw: number[], value: number, extra: Partial<Measurement> = {}, opts: RawOptions = {}): Measurement {
  const digits = opts.digits ?? 4;
  return {
    id,
    value,
    samples: raw.length,
    raw: capSamples(
      raw.map((v) => round(v, digits)),
      opts.max,
    ),
    distribution: describe(raw),
    ...extra,
  };
}

/** Raw samples a step result keeps per measurement (a result document's `rawSamples` keep as many). */
export const RAW_STORED_MAX = 500;

/**
 * `m` as a step result stores it: `raw` at most `max` samples, evenly strided (`capSamples`), with
 * the `distribution` (exact n, min, max, mean, p50, p95, p99) computed over every sample before the
 * cap when `m` has none, and the original count in `details.rawStored` (`{ kept, of }`). Within
 * the cap, `m` itself. The runner applies it to every measurement (runner/step.ts).
 */
export function storedMeasurement(m: Measurement, max = RAW_STORED_MAX): Measurement {
  if (!m.raw || m.raw.length <= max) return m;
  const finite = m.raw.filter((v) => Number.isFinite(v));
  const distribution = m.distribution ?? (finite.length > 0 ? describe(finite) : undefined);
  return {
    ...m,
    raw: capSamples(m.raw, max),
    ...(distribution ? { distribution } : {}),
    details: { ...(m.details ?? {}), rawStored: { kept: max, of: m.raw.length } },
  };
}

/** A test that could not be measured, or whose condition beyond the value was violated: no value, the reason. */
export function failed(id: string, reason: string, details?: Record<string, unknown>, durationMs?: number): Measurement {
  return { id, value: null, samples: 0, fail: reason, ...(details ? { details } : {}), ...(durationMs !== undefined ? { durationMs } : {}) };
}

/** A test that does not apply here (no GPU, no pool size configured), with the reason. */
export function skipped(id: string, reason: string, details?: Record<string, unknown>, durationMs?: number): Measurement {
  return { id, value: null, samples: 0, skip: reason, ...(details ? { details } : {}), ...(durationMs !== undefined ? { durationMs } : {}) };
}

/**
 * Runs one test: a throw becomes a failed measurement with the error's message (also passed to
 * `onError`), and a measurement without a duration gets the time the test took.
 */
export async function guard(id: string, fn: () => Promise<Measurement>, onError?: (message: string) => void): Promise<Measurement> {
  const t0 = performance.now();
  try {
    const m = await fn();
    return { ...m, durationMs: m.durationMs ?? durationSince(t0) };
  } catch (e) {
    onError?.(errorMessage(e));
    return failed(id, errorMessage(e), undefined, durationSince(t0));
  }
}

/** `v` rounded, or null when there is no finite value. */
export function roundOrNull(v: number | null, digits = 2): number | null {
  return v === null || !Number.isFinite(v) ? null : round(v, digits);
}

/** The object with each of its number fields rounded (other fields as they are). */
export function roundNumbers<T extends object>(o: T, digits: number): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = typeof v === 'number' ? round(v, digits) : v;
  return out as T;
}

/** `x`'s entry in another snapshot: the same pid, or for pid 0 the same key; else none. */
export function sameProcess(other: readonly ProcessStats[], x: ProcessStats): ProcessStats | undefined {
  if (x.pid > 0) return other.find((p) => p.pid === x.pid);
  return x.key ? other.find((p) => p.pid === 0 && p.key === x.key) : undefined;
}
