/**
 * Loading and validating a BenchmarkRun manifest (YAML or JSON): every problem is reported as
 * `field.path: reason`, never as a stack trace. Used by `swarmbench run` (exit code 2) and by the
 * operator (a `SpecInvalid` condition).
 */
import { load, YAMLException } from 'js-yaml';
import type { z } from 'zod';
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

export function validateManifest(doc: unknown): Validated<Manifest> {
  const r = BenchmarkRunManifest.safeParse(doc);
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, errors: zodErrors(r.error) };
}

export function validateSpec(spec: unknown): Validated<z.infer<typeof BenchmarkRunSpec>> {
  const r = BenchmarkRunSpec.safeParse(spec);
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, errors: zodErrors(r.error, ['spec']) };
}

/** Parses manifest text (YAML or JSON). A file with several documents must hold exactly one BenchmarkRun. */
export function parseManifestText(text: string, source = 'input'): Validated<Manifest> {
  if (text.length > 1_000_000) return { ok: false, errors: [{ path: source, message: 'file larger than 1 MB' }] };
  let doc: unknown;
  try {
    const docs = [] as unknown[];
    const parsed = text.split(/^---\s*$/m).filter((d) => d.trim() !== '' && !/^\s*(#.*\s*)*$/.test(d));
    for (const part of parsed) docs.push(load(part));
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
    throw err;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return { ok: false, errors: [{ path: '(root)', message: 'must be a BenchmarkRun object (apiVersion, kind, metadata, spec)' }] };
  }
  return validateManifest(doc);
}

export function formatErrors(errors: FieldError[]): string {
  return errors.map((e) => `  ${e.path}: ${e.message}`).join('\n');
}
