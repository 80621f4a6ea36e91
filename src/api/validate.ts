/**
 * Loading and validating a BenchmarkRun manifest (YAML or JSON): every problem is reported as
 * `field.path: reason`, never as a stack trace. Used by `swarmbench run` (exit code 2) and by the
 * operator (a `SpecInvalid` condition).
 *
 * Strict, as the API server's strict field validation (`kubectl apply`'s default) is: an unknown
 * field is an error naming it at every level: the top level (apiVersion, kind, metadata, spec and
 * status only), metadata (ObjectMeta's own fields only; the schema's ObjectMeta is loose, so the
 * check is here) and spec (strict in schema.ts). A duplicated key is an error too (js-yaml's).
 * `status` is accepted, because `kubectl get -o yaml` writes it and the API server ignores it on
 * create (the status subresource), and it is dropped from the value: nothing reads a user's status.
 *
 * Bounded, whatever the text: the parser nests at most 100 levels and follows at most
 * MAX_ALIASES aliases, and before anything walks the document (zod, JSON.stringify) it is counted
 * with its aliases expanded: more than MAX_VALUES values (an alias bomb: nine keys of nine
 * aliases each) or deeper than MAX_DEPTH (a recursive alias: `&a {x: *a}`) is refused. Any
 * exception of the parser is a field error, never a crash.
 */
import { loadAll, YAMLException } from 'js-yaml';
import type { z } from 'zod';
import { errorMessage, firstLine } from '../errors.ts';
import { formatLimit, MANIFEST_MAX_BYTES } from './input.ts';
import { BenchmarkRunManifest, BenchmarkRunSpec, type BenchmarkRunManifest as Manifest } from './schema.ts';

export interface FieldError {
  path: string;
  message: string;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(root)';
}

export function zodErrors(error: z.ZodError, prefix: PropertyKey[] = []): FieldError[] {
  const out: FieldError[] = [];
  for (const issue of error.issues) {
    const base = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) out.push({ path: formatPath([...base, k]), message: 'unknown field' });
      continue;
    }
    if (issue.code === 'invalid_union' && 'errors' in issue) {
      out.push({ path: formatPath(base), message: 'does not match any allowed form' });
      continue;
    }
    out.push({ path: formatPath(base), message: humanMessage(issue) });
  }
  return out;
}

function humanMessage(issue: z.core.$ZodIssue): string {
  const m = issue.message;
  if (issue.code === 'invalid_type') {
    const expected = (issue as { expected?: string }).expected;
    if (m.includes('received undefined')) return `is required (expected ${expected})`;
    return `must be ${expected === 'int' ? 'an integer' : `a ${expected}`} (${m.replace(/^Invalid input: /, '')})`;
  }
  return m.replace(/^Invalid input: /, '').replace(/^Too (big|small): /, '');
}

/** Aliases the parser follows in one manifest (a hand-written one rarely has any). */
export const MAX_ALIASES = 100;
/** Values (scalars, lists, maps) of a manifest counted with its aliases expanded. */
export const MAX_VALUES = 200_000;
/** Nesting of a manifest with its aliases expanded (the parser alone stops at 100). */
export const MAX_DEPTH = 100;

/** The first problem of a document too large or too deep once its aliases are expanded; undefined if none. */
export function shapeProblem(doc: unknown): FieldError | undefined {
  let count = 0;
  const path: PropertyKey[] = []; // where the walk is: one array, pushed and popped
  const visit = (v: unknown): FieldError | undefined => {
    if (++count > MAX_VALUES) return { path: '(root)', message: `holds more than ${MAX_VALUES} values with its aliases expanded (an alias bomb?)` };
    if (typeof v !== 'object' || v === null) return undefined;
    if (path.length >= MAX_DEPTH) {
      return { path: formatPath([...path.slice(0, 8), '…']), message: `nests deeper than ${MAX_DEPTH} levels (a recursive alias?)` };
    }
    const keys: PropertyKey[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
    for (const k of keys) {
      path.push(k);
      const p = visit((v as Record<PropertyKey, unknown>)[k]);
      path.pop();
      if (p) return p;
    }
    return undefined;
  };
  return visit(doc);
}

const isString = (v: unknown): boolean => typeof v === 'string';
const isObjectList = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x));
/**
 * ObjectMeta's fields (k8s.io/apimachinery meta/v1) and, for those schema.ts does not type, the
 * type the API server wants; `true`: schema.ts checks it.
 */
const OBJECT_META_FIELDS: Record<string, true | [(v: unknown) => boolean, string]> = {
  name: true, namespace: true, labels: true, annotations: true, generation: true, uid: true, resourceVersion: true, creationTimestamp: true,
  generateName: [isString, 'must be a string'],
  selfLink: [isString, 'must be a string'],
  deletionTimestamp: [isString, 'must be a string'],
  deletionGracePeriodSeconds: [(v) => Number.isInteger(v), 'must be an integer'],
  finalizers: [(v) => Array.isArray(v) && v.every(isString), 'must be a list of strings'],
  ownerReferences: [isObjectList, 'must be a list of objects'],
  managedFields: [isObjectList, 'must be a list of objects'],
};
const MANIFEST_FIELDS = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The unknown fields of a manifest's top level and metadata (spec's are zod's, `.strict()`). */
export function unknownFields(doc: Record<string, unknown>): FieldError[] {
  const out: FieldError[] = [];
  for (const k of Object.keys(doc)) if (!MANIFEST_FIELDS.has(k)) out.push({ path: formatPath([k]), message: 'unknown field (a manifest has apiVersion, kind, metadata, spec, status)' });
  const meta = doc.metadata;
  if (isMap(meta)) {
    for (const [k, v] of Object.entries(meta)) {
      const known = Object.hasOwn(OBJECT_META_FIELDS, k) ? OBJECT_META_FIELDS[k] : undefined;
      if (known === undefined) out.push({ path: formatPath(['metadata', k]), message: 'unknown field' });
      else if (known !== true && !known[0](v)) out.push({ path: formatPath(['metadata', k]), message: known[1] });
    }
  }
  return out;
}

/**
 * A manifest object, checked: no unknown field (named first: cheap, only two levels), its shape
 * bounded (before zod walks it), the schema. `status` is dropped.
 */
export function validateManifest(doc: unknown): Validated<Manifest> {
  return checkManifest(doc, BenchmarkRunManifest, 'BenchmarkRun');
}

/** validateManifest's checks for any of the project's kinds (schedule.ts uses it for BenchmarkSchedule). */
export function checkManifest<T extends { status?: unknown }>(doc: unknown, schema: z.ZodType<T>, kind: string): Validated<T> {
  if (!isMap(doc)) return { ok: false, errors: [{ path: '(root)', message: `must be a ${kind} object (apiVersion, kind, metadata, spec)` }] };
  const errors = unknownFields(doc);
  const shape = shapeProblem(doc);
  if (shape) return { ok: false, errors: [...errors, shape] };
  const r = schema.safeParse(doc);
  if (!r.success) errors.push(...zodErrors(r.error));
  if (errors.length > 0 || !r.success) return { ok: false, errors };
  const value = r.data;
  delete value.status;
  return { ok: true, value };
}

export function validateSpec(spec: unknown): Validated<z.infer<typeof BenchmarkRunSpec>> {
  const r = BenchmarkRunSpec.safeParse(spec);
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, errors: zodErrors(r.error, ['spec']) };
}

/**
 * Parses manifest text (YAML or JSON). A file with several documents must hold exactly one
 * BenchmarkRun. The text is at most 1 MB (the CLI reads files with that bound, api/input.ts; this
 * check is for text from elsewhere); every error of the parser, syntax or not, is a FieldError.
 */
export function parseManifestText(text: string, source = 'input'): Validated<Manifest> {
  if (text.length > MANIFEST_MAX_BYTES || Buffer.byteLength(text) > MANIFEST_MAX_BYTES) {
    return { ok: false, errors: [{ path: source, message: `larger than ${formatLimit(MANIFEST_MAX_BYTES)} (${MANIFEST_MAX_BYTES} bytes), the most a manifest may be` }] };
  }
  let doc: unknown;
  try {
    const docs = loadAll(text, { filename: source, maxAliases: MAX_ALIASES, maxDepth: MAX_DEPTH }).filter((d) => d !== null && d !== undefined);
    const runs = docs.filter((d) => typeof d === 'object' && d !== null && (d as { kind?: unknown }).kind === 'BenchmarkRun');
    if (docs.length === 0) return { ok: false, errors: [{ path: source, message: 'empty document' }] };
    if (runs.length > 1) return { ok: false, errors: [{ path: source, message: `holds ${runs.length} BenchmarkRuns; give one` }] };
    doc = runs[0] ?? docs[0];
  } catch (err) {
    if (err instanceof YAMLException) {
      const e = err as YAMLException & { mark?: { line?: number; column?: number } };
      const where = e.mark?.line !== undefined ? `:${e.mark.line + 1}:${(e.mark.column ?? 0) + 1}` : '';
      return { ok: false, errors: [{ path: `${source}${where}`, message: `malformed YAML: ${e.reason ?? e.message}` }] };
    }
    return { ok: false, errors: [{ path: source, message: `cannot parse: ${firstLine(errorMessage(err))}` }] };
  }
  return validateManifest(doc);
}

/** How many errors formatErrors prints; the rest are counted. */
const MAX_PRINTED_ERRORS = 50;

export function formatErrors(errors: FieldError[]): string {
  const shown = errors.slice(0, MAX_PRINTED_ERRORS).map((e) => `  ${e.path}: ${e.message}`);
  if (errors.length > MAX_PRINTED_ERRORS) shown.push(`  … and ${errors.length - MAX_PRINTED_ERRORS} more`);
  return shown.join('\n');
}
