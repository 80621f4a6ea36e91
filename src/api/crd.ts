/**
 * Generates the BenchmarkRun CustomResourceDefinition from the zod schemas (`npm run gen:crd`
 * writes `crds/swarmbench.io_benchmarkruns.yaml`; a unit test fails when the file drifts).
 *
 * zod's OpenAPI 3.0 output is made structural for apiextensions.k8s.io/v1:
 * - `additionalProperties: false` is dropped (the API server prunes unknown fields instead);
 * - a string-or-number union becomes `x-kubernetes-int-or-string` (resource quantities);
 * - an unconstrained value (`z.unknown()`) becomes `x-kubernetes-preserve-unknown-fields`;
 * - `format` values the API server does not know are dropped (`uri` is validated by the operator).
 * Cross-field rules (refinements) are not expressible here; the operator checks them with zod and
 * reports a `SpecInvalid` condition.
 */
import { z } from 'zod';
import { dump } from 'js-yaml';
import { API_GROUP, API_VERSION, BenchmarkRunSpec, BenchmarkRunStatus } from './schema.ts';

type Json = Record<string, unknown>;

const KNOWN_FORMATS = new Set(['int32', 'int64', 'float', 'double', 'byte', 'date', 'date-time', 'password']);

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function structural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(structural);
  if (!isObj(node)) return node;
  const anyOf = node.anyOf;
  if (Array.isArray(anyOf)) {
    const types = new Set(anyOf.map((a) => (isObj(a) ? a.type : undefined)));
    if (types.size === 2 && types.has('string') && (types.has('number') || types.has('integer'))) {
      return { 'x-kubernetes-int-or-string': true, ...(node.description ? { description: node.description } : {}) };
    }
    throw new Error(`CRD generation: a union that is not int-or-string cannot be structural: ${JSON.stringify(node)}`);
  }
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === '$schema' || k === 'default' || k === 'id') continue;
    if (k === 'additionalProperties' && v === false) continue;
    if (k === 'format' && typeof v === 'string' && !KNOWN_FORMATS.has(v)) continue;
    if (k === 'properties' && isObj(v)) {
      out[k] = Object.fromEntries(Object.entries(v).map(([p, s]) => [p, structural(s)]));
      continue;
    }
    out[k] = structural(v);
  }
  if (Object.keys(out).length === 0 || (out.type === undefined && !out['x-kubernetes-int-or-string'])) {
    return { 'x-kubernetes-preserve-unknown-fields': true, ...(out.description ? { description: out.description } : {}) };
  }
  if (out.type === 'object' && !out.properties && isObj(out.additionalProperties)) {
    const ap = out.additionalProperties;
    if (Object.keys(ap).length === 0 || ap['x-kubernetes-preserve-unknown-fields']) {
      delete out.additionalProperties;
      out['x-kubernetes-preserve-unknown-fields'] = true;
    }
  }
  return out;
}

export function openApiOf(schema: z.ZodType): Json {
  const js = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'throw' });
  return structural(js) as Json;
}

export function buildCrd(): Json {
  const spec = openApiOf(BenchmarkRunSpec);
  const status = openApiOf(BenchmarkRunStatus);
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `benchmarkruns.${API_GROUP}`,
      labels: { 'app.kubernetes.io/name': 'swarmbench', 'app.kubernetes.io/part-of': 'swarmbench' },
    },
    spec: {
      group: API_GROUP,
      names: {
        kind: 'BenchmarkRun',
        listKind: 'BenchmarkRunList',
        plural: 'benchmarkruns',
        singular: 'benchmarkrun',
        shortNames: ['br'],
        categories: ['swarmbench'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
            { name: 'Passed', type: 'string', jsonPath: '.status.summary.passedOfTotal' },
            { name: 'Success', type: 'number', jsonPath: '.status.summary.successRate', description: 'passed / (total - skipped), %' },
            { name: 'Verdict', type: 'string', jsonPath: '.status.summary.verdict' },
            { name: 'Attempt', type: 'integer', jsonPath: '.status.attempt', priority: 1 },
            { name: 'Step', type: 'string', jsonPath: '.status.progress.currentStep', priority: 1 },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: 'BenchmarkRun runs the SwarmBench Phase 9 suite against a multi-agent system.',
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: spec,
                status: status,
              },
              required: ['spec'],
            },
          },
        },
      ],
    },
  };
}

export const CRD_PATH = 'crds/swarmbench.io_benchmarkruns.yaml';

export function renderCrd(): string {
  return (
    '# Generated by `npm run gen:crd` from src/api/schema.ts. Do not edit by hand.\n' +
    dump(buildCrd(), { lineWidth: 120, noRefs: true, sortKeys: false })
  );
}
