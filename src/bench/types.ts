/**
 * The seam between the benchmark categories and what runs them.
 *
 * A category module exports `run(ctx): Promise<Measurement[]>`, one measurement per test of the
 * category (in catalogue order). A measurement (the `Measurement` of `api/schema.ts`: what a step's
 * result document carries) holds what was measured; `report/verdict.ts` judges it into a
 * `TestResult` against the effective targets. A category never decides "Passed" itself:
 * it reports a value, or `skip` with a reason, or `fail` with a reason when a condition beyond the
 * value was violated (a lost task, a crashed agent, a wrong workflow output).
 */
import type { Measurement } from '../api/schema.ts';
import type { Logger } from '../log.ts';
import type { Params } from '../plan/params.ts';
import type { Platform } from '../platform/types.ts';

export interface BenchContext {
  params: Params;
  platform: Platform;
  log: Logger;
  /** Reports progress of the current step (shown on a terminal, written to the status). */
  progress(step: string, detail?: string): void;
  signal: AbortSignal;
}

export type CategoryRunner = (ctx: BenchContext) => Promise<Measurement[]>;
