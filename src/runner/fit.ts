/**
 * Step results that fit: what the runner does to a StepResult before writing it (its --out file
 * and its result ConfigMap), so that a step with many samples never fails the write (a ConfigMap
 * holds at most 1 MiB; an over-size one is an API 422 the Job would only run again).
 *
 * Two stages, both deterministic:
 *
 * 1. `storedMeasurement` (bench/measure.ts; every measurement, in `runStep`): `raw` keeps at
 *    most `RAW_STORED_MAX` samples, evenly strided (`capSamples`, the same cap `report/verdict.ts` puts on a result
 *    document's `rawSamples`, so nothing the report or a baseline comparison reads is lost). The
 *    `distribution` (exact n, min, max, mean, p50, p95, p99) is computed over every sample before
 *    the cap when the category did not give one, and the original count is recorded in
 *    `details.rawStored` (`{ kept, of }`).
 * 2. `fitStepResult` (the document, before the write): serialised and measured in UTF-8 bytes
 *    against `RESULT_BUDGET_BYTES` (900 KiB, leaving the ConfigMap's metadata room under its
 *    1 MiB). Over it, whole `raw` arrays and array- or object-valued `details` entries are dropped,
 *    largest first (ties: measurement order, then field name), until it fits; each dropped field is
 *    named in its measurement's `details.droppedForSize` (`"raw (80000 bytes)"`). Values,
 *    distributions, reasons and scalar details are never dropped. If it still does not fit,
 *    `ResultTooLarge` says which step and how big; the runner then writes that as the step's
 *    `error` (a document without measurements), never a write the API server refuses.
 */
import type { StepResult } from '../api/schema.ts';
import { RESULT_BUDGET_BYTES } from '../platform/kubernetes/result.ts';

/** A StepResult that cannot be brought under the budget. */
export class ResultTooLarge extends Error {}

export interface FittedResult {
  result: StepResult;
  /** The serialised document, as it is to be written. */
  json: string;
  /** Its size in UTF-8 bytes. */
  bytes: number;
  /** What was dropped, as `"<test>: <field> (<bytes> bytes)"`, largest first. */
  dropped: string[];
}

function byteSize(json: string): number {
  return Buffer.byteLength(json, 'utf8');
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

interface Candidate {
  index: number;
  /** `raw`, or the key of a `details` entry. */
  field: string;
  inDetails: boolean;
  bytes: number;
}

function candidates(result: StepResult): Candidate[] {
  const out: Candidate[] = [];
  result.measurements.forEach((m, index) => {
    if (m.raw && m.raw.length > 0) out.push({ index, field: 'raw', inDetails: false, bytes: byteSize(JSON.stringify(m.raw)) });
    for (const [key, v] of Object.entries(m.details ?? {})) {
      if (v !== null && typeof v === 'object') out.push({ index, field: key, inDetails: true, bytes: byteSize(JSON.stringify(v) ?? '') });
    }
  });
  return out.sort((a, b) => b.bytes - a.bytes || a.index - b.index || (a.field < b.field ? -1 : a.field > b.field ? 1 : 0));
}

/**
 * The step result as it is to be written: as it is when its serialisation fits `budgetBytes`,
 * otherwise shrunk (stage 2 above). Throws `ResultTooLarge` naming the step and its size when
 * dropping every droppable field is not enough. The input is not changed.
 */
export function fitStepResult(result: StepResult, budgetBytes = RESULT_BUDGET_BYTES): FittedResult {
  let json = JSON.stringify(result);
  let bytes = byteSize(json);
  if (bytes <= budgetBytes) return { result, json, bytes, dropped: [] };
  const original = bytes;
  const doc = structuredClone(result);
  const dropped: string[] = [];
  // Serialise again only once the running estimate says it may fit: each pass is O(size), and
  // there are at most (measurements × detail fields) candidates.
  let estimate = bytes;
  for (const c of candidates(doc)) {
    const m = doc.measurements[c.index]!;
    if (c.inDetails) delete m.details![c.field];
    else delete m.raw;
    const name = c.inDetails ? `details.${c.field}` : 'raw';
    const details = (m.details ??= {});
    const marks = Array.isArray(details.droppedForSize) ? (details.droppedForSize as string[]) : (details.droppedForSize = []);
    marks.push(`${name} (${c.bytes} bytes)`);
    dropped.push(`${m.id}: ${name} (${c.bytes} bytes)`);
    estimate -= c.bytes;
    if (estimate > budgetBytes) continue;
    json = JSON.stringify(doc);
    bytes = byteSize(json);
    estimate = bytes;
    if (bytes <= budgetBytes) return { result: doc, json, bytes, dropped };
  }
  json = JSON.stringify(doc);
  bytes = byteSize(json);
  if (bytes <= budgetBytes) return { result: doc, json, bytes, dropped };
  throw new ResultTooLarge(
    `the result of step ${result.step} is ${kib(original)} (${original} bytes), still ${kib(bytes)} after dropping its raw samples and detail arrays ` +
      `(${dropped.length} fields): over the ${kib(budgetBytes)} budget of a step result (a result ConfigMap holds at most 1 MiB)`,
  );
}

/**
 * The document written in place of a result that cannot fit: the step's identity, no
 * measurements, and the size problem as its `error` (every test of the step fails with it), so
 * the operator reports why instead of a Job that failed, and the Job is not run again for nothing.
 */
export function tooLargeResult(result: StepResult, err: ResultTooLarge): StepResult {
  const own = result.error ? `; the step's own error: ${result.error.slice(0, 2000)}` : '';
  return { ...result, measurements: [], error: `${err.message}${own}` };
}
