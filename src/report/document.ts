/**
 * Builds the result document (`results.json`) from judged tests and the run's conditions, and
 * completes it with the recommendations and, given a baseline, the comparison (which can change
 * the verdict when its gate is on). Reads result documents back with a message that names the
 * problem.
 */
import {
  API_VERSION_FULL,
  RESULT_SCHEMA_VERSION,
  ResultDocument,
  type Environment,
  type ResultDocument as ResultDocumentT,
  type TestResult,
} from '../api/schema.ts';
import { InputError, readBounded, RESULT_MAX_BYTES } from '../api/input.ts';
import type { Params } from '../plan/params.ts';
import { compareRuns, type CompareOptions } from './baseline.ts';
import { recommend } from './recommend.ts';
import { summarize, summarizeDocument } from './verdict.ts';

export function buildResultDocument(input: {
  name: string;
  namespace?: string;
  attempt: number;
  params: Params;
  startedAt: string;
  finishedAt: string;
  tests: TestResult[];
  environment: Environment;
}): ResultDocumentT {
  const doc: ResultDocumentT = {
    apiVersion: API_VERSION_FULL,
    kind: 'BenchmarkResult',
    schemaVersion: RESULT_SCHEMA_VERSION,
    run: {
      name: input.name,
      ...(input.namespace ? { namespace: input.namespace } : {}),
      attempt: input.attempt,
      mode: input.params.mode,
      categories: input.params.categories,
      startedAt: input.startedAt,
      finishedAt: input.finishedAt,
    },
    environment: input.environment,
    targets: { ...input.params.targets },
    summary: summarize(input.tests, input.params.targets.successRate),
    tests: input.tests,
  };
  // The document must always satisfy its own schema: a bug here is caught before anyone reads it.
  return ResultDocument.parse(doc);
}

/**
 * Adds what is derived from the measurements: the baseline comparison (when `baseline` is given;
 * otherwise the document's own is kept), the summary that follows from it, and the
 * recommendations. Pure: the same inputs give the same document.
 */
export function completeDocument(doc: ResultDocumentT, opts: { baseline?: ResultDocumentT; compare?: CompareOptions } = {}): ResultDocumentT {
  const { comparison: own, recommendations: _r, ...rest } = doc;
  const comparison = opts.baseline ? compareRuns(doc, opts.baseline, opts.compare) : own;
  const next: ResultDocumentT = { ...rest, ...(comparison ? { comparison } : {}) };
  next.summary = summarizeDocument(next);
  next.recommendations = recommend(next);
  return ResultDocument.parse(next);
}

export class ResultFileError extends Error {}

/** Reads and validates a result document; throws ResultFileError naming the file and the problem. */
export function parseResultDocument(text: string, file: string): ResultDocumentT {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ResultFileError(`${file}: not JSON: ${(err as Error).message}`);
  }
  const kind = (json as { kind?: unknown } | null)?.kind;
  if (kind !== 'BenchmarkResult') throw new ResultFileError(`${file}: not a SwarmBench result document (kind ${JSON.stringify(kind)}, expected "BenchmarkResult")`);
  const version = (json as { schemaVersion?: unknown }).schemaVersion;
  if (version !== RESULT_SCHEMA_VERSION) {
    throw new ResultFileError(`${file}: schemaVersion ${JSON.stringify(version)} is not supported (this version reads ${RESULT_SCHEMA_VERSION})`);
  }
  const r = ResultDocument.safeParse(json);
  if (!r.success) {
    const first = r.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(document)'}: ${i.message}`);
    throw new ResultFileError(`${file}: invalid result document:\n  ${first.join('\n  ')}`);
  }
  return r.data;
}

/**
 * A result document file read as `swarmbench report` and `swarmbench history` read one: at most
 * RESULT_MAX_BYTES (api/input.ts), then the schema. Whatever fails becomes a ResultFileError
 * naming the file.
 */
export function readResultFile(file: string): ResultDocumentT {
  let text: string;
  try {
    text = readBounded(file, RESULT_MAX_BYTES, { what: 'a result document' });
  } catch (err) {
    throw new ResultFileError(err instanceof InputError ? err.message : `cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return parseResultDocument(text, file);
  } catch (err) {
    if (err instanceof ResultFileError) throw err;
    throw new ResultFileError(`${file}: cannot parse: ${(err as Error).message}`);
  }
}
