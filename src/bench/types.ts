/**
 * The seam between the benchmark categories and what runs them.
 *
 * A category module exports `run(ctx): Promise<Measurement[]>`, one measurement per test of the
 * category (in catalogue order). A measurement carries what was measured; `judge.ts` turns it
 * into a `TestResult` against the effective targets. A category never decides "Passed" itself:
 * it reports a value, or `skip` with a reason, or `fail` with a reason when a condition beyond the
 * value was violated (a lost task, a crashed agent, a wrong workflow output).
 */
import type { Distribution } from '../api/schema.ts';
import type { Params } from '../plan/params.ts';
import type { Platform } from '../platform/types.ts';

export interface Measurement {
  id: string;
  /** The statistic the catalogue names for this test, or null when nothing could be measured. */
  value: number | null;
  /** Number of samples behind the value. */
  samples: number;
  /** Raw samples, when the test has trials (used for the distribution and baseline comparison). */
  raw?: number[];
  distribution?: Distribution;
  /** Reported Skipped with this reason (never counted as passed). */
  skip?: string;
  /** Failed with this reason whatever the value (a violated invariant, or no value at all). */
  fail?: string;
  details?: Record<string, unknown>;
  durationMs?: number;
}

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
}

export interface BenchContext {
  params: Params;
  platform: Platform;
  log: Logger;
  /** Reports progress of the current step (shown on a terminal, written to the status). */
  progress(step: string, detail?: string): void;
  signal: AbortSignal;
}

export type CategoryRunner = (ctx: BenchContext) => Promise<Measurement[]>;
