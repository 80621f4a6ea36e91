/**
 * What the API server checks of a custom resource against its CRD's structural openAPIV3Schema,
 * for unit tests that must know what `kubectl apply` would refuse without a cluster: the keywords
 * the generated CRD uses (src/api/crd.ts: type, enum, minimum/maximum with the OpenAPI 3.0
 * boolean exclusive forms, minLength/maxLength in characters, pattern, minItems/maxItems, items,
 * properties, required, additionalProperties, x-kubernetes-int-or-string,
 * x-kubernetes-preserve-unknown-fields) and strict field validation (kubectl's default since
 * 1.27: an unknown field is an error naming it). Each error names the field the way the API server
 * does: `spec.a.b`, `spec.list[1]`, `spec.map.key`.
 *
 * Written apart from zod on purpose: the corpus of bad resources (bad-runs.ts) is checked against
 * the CRD as generated, not against the schema it was generated from.
 */
import { load } from 'js-yaml';
import { renderCrd } from '../../src/api/crd.ts';

type Schema = Record<string, unknown>;

export interface SchemaError {
  path: string;
  message: string;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function typeOk(type: unknown, v: unknown): boolean {
  switch (type) {
    case 'object':
      return isObj(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    default:
      return true;
  }
}

/** Every error of `v` against `s`, at `path`. */
export function validateAgainst(s: Schema, v: unknown, path: string, out: SchemaError[] = []): SchemaError[] {
  const err = (message: string) => out.push({ path, message });
  if (s['x-kubernetes-int-or-string']) {
    if (typeof v !== 'string' && !(typeof v === 'number' && Number.isInteger(v))) err('must be an integer or a string');
    return out;
  }
  if (!typeOk(s.type, v)) {
    err(`must be of type ${String(s.type)}`);
    return out;
  }
  if (Array.isArray(s.enum) && !s.enum.includes(v)) err(`Unsupported value: ${JSON.stringify(v)}`);
  if (typeof v === 'number') {
    if (typeof s.minimum === 'number' && (s.exclusiveMinimum === true ? v <= s.minimum : v < s.minimum)) err(`should be greater than ${s.exclusiveMinimum === true ? '' : 'or equal to '}${s.minimum}`);
    if (typeof s.maximum === 'number' && (s.exclusiveMaximum === true ? v >= s.maximum : v > s.maximum)) err(`should be less than ${s.exclusiveMaximum === true ? '' : 'or equal to '}${s.maximum}`);
  }
  if (typeof v === 'string') {
    const chars = [...v].length;
    if (typeof s.minLength === 'number' && chars < s.minLength) err(`should be at least ${s.minLength} chars long`);
    if (typeof s.maxLength === 'number' && chars > s.maxLength) err(`may not be more than ${s.maxLength} bytes`);
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern).test(v)) err(`should match '${s.pattern}'`);
  }
  if (Array.isArray(v)) {
    if (typeof s.minItems === 'number' && v.length < s.minItems) err(`should have at least ${s.minItems} items`);
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) err(`should have at most ${s.maxItems} items`);
    if (isObj(s.items)) v.forEach((x, i) => validateAgainst(s.items as Schema, x, `${path}[${i}]`, out));
  }
  if (isObj(v)) {
    const props = isObj(s.properties) ? s.properties : undefined;
    for (const r of Array.isArray(s.required) ? s.required : []) if (!(r in v)) out.push({ path: `${path}.${String(r)}`, message: 'Required value' });
    for (const [k, x] of Object.entries(v)) {
      const sub = props?.[k];
      if (isObj(sub)) validateAgainst(sub, x, `${path}.${k}`, out);
      else if (isObj(s.additionalProperties)) validateAgainst(s.additionalProperties, x, `${path}.${k}`, out);
      else if (!s['x-kubernetes-preserve-unknown-fields']) out.push({ path: `${path}.${k}`, message: 'unknown field' });
    }
  }
  return out;
}

let specSchema: Schema | undefined;

/** The spec's schema of the CRD as `npm run gen:crd` renders it. */
export function crdSpecSchema(): Schema {
  if (!specSchema) {
    const crd = load(renderCrd()) as { spec: { versions: { schema: { openAPIV3Schema: { properties: { spec: Schema } } } }[] } };
    specSchema = crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec;
  }
  return specSchema;
}

/** What the API server says of a BenchmarkRun's spec (empty: it accepts it). */
export function crdErrors(spec: unknown): SchemaError[] {
  return validateAgainst(crdSpecSchema(), spec, 'spec');
}

/** The API server's rule for a custom resource's name: a DNS-1123 subdomain of at most 253 characters. */
export function nameErrors(name: string): SchemaError[] {
  const ok = name.length <= 253 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name);
  return ok ? [] : [{ path: 'metadata.name', message: 'a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \'-\' or \'.\' (at most 253)' }];
}
