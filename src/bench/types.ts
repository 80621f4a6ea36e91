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
  /**
   * Hands over a measurement as soon as it is final (optional; the runner sets it). A category
   * calls it where each test finishes, and still returns every measurement at the end: the
   * returned list is the step's result when the category returns; the handed-over ones are the
   * result when it cannot (interrupted by SIGTERM, or a throw), so a step stopped part-way still
   * reports the tests it finished (src/runner/step.ts).
   */
  finished?(m: Measurement): void;
}

export type CategoryRunner = (ctx: BenchContext) => Promise<Measurement[]>;
