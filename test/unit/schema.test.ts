import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BenchmarkRunSpec, parseDuration } from '../../src/api/schema.ts';
import { CRD_PATH, renderCrd, structural } from '../../src/api/crd.ts';
import { parseManifestText } from '../../src/api/validate.ts';
import { REPO_ROOT } from '../../src/paths.ts';

const head = 'apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: t}\n';

function errorsOf(text: string): string[] {
  const r = parseManifestText(text, 'f.yaml');
  if (r.ok) return [];
  return r.errors.map((e) => `${e.path}: ${e.message}`);
}

describe('BenchmarkRun spec', () => {
  it('accepts the shipped examples', () => {
    for (const f of ['benchmarkrun-quick.yaml', 'benchmarkrun-full.yaml']) {
      const r = parseManifestText(readFileSync(join(REPO_ROOT, 'examples', f), 'utf8'), f);
      expect(r.ok, JSON.stringify(!r.ok && r.errors)).toBe(true);
    }
  });

  it('accepts an empty spec (all defaults)', () => {
    expect(errorsOf(`${head}spec: {}\n`)).toEqual([]);
  });

  it.each([
    ['mode: fast', 'spec.mode'],
    ['categories: [gpu, quantum]', 'spec.categories[1]'],
    ['categories: [gpu, gpu]', 'spec.categories'],
    ['trials: "5"', 'spec.trials'],
    ['trials: 2', 'spec.trials'],
    ['agents: {steps: [10, -5, 20, 30, 40]}', 'spec.agents.steps[1]'],
    ['agents: {steps: [10, 20, 30]}', 'spec.agents.steps'],
    ['agents: {steps: [10, 5, 20, 30, 40]}', 'spec.agents.steps'],
    ['agents: {steps: [10, 20, 30, 40, 99999999]}', 'spec.agents.steps[4]'],
    ['agents: {poolSize: 1e9}', 'spec.agents.poolSize'],
    ['agents: {taskMix: {io: 0.5, cpu: 0.1}}', 'spec.agents.taskMix'],
    ['agents: {colour: blue}', 'spec.agents.colour'],
    ['stress: {sustainedDuration: 100h}', 'spec.stress.sustainedDuration'],
    ['stress: {sustainedDuration: ten minutes}', 'spec.stress.sustainedDuration'],
    ['stress: {spikeFrom: 50, spikeTo: 10}', 'spec.stress.spikeTo'],
    ['targets: {gpuSpeedup: -1}', 'spec.targets.gpuSpeedup'],
    ['targets: {successRate: 101}', 'spec.targets.successRate'],
    ['targets: {latency: 3}', 'spec.targets.latency'],
    ['prometheus: {url: "not a url"}', 'spec.prometheus.url'],
    ['gpu: {batchSizes: [1, 8, 1000000]}', 'spec.gpu.batchSizes[2]'],
  ])('rejects %s naming %s', (line, path) => {
    const errs = errorsOf(`${head}spec:\n  ${line}\n`);
    expect(errs.length).toBeGreaterThan(0);
    expect(errs.some((e) => e.startsWith(`${path}:`)), errs.join('\n')).toBe(true);
  });

  it('reports malformed YAML with a line number', () => {
    const errs = errorsOf(`${head}spec: {mode: quick\n  trials: [\n`);
    expect(errs[0]).toMatch(/^f\.yaml:\d+:\d+: malformed YAML/);
  });

  it('rejects the wrong kind and apiVersion, and a bad name', () => {
    const errs = errorsOf('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\nspec: {}\n');
    expect(errs.join('\n')).toMatch(/apiVersion/);
    expect(errs.join('\n')).toMatch(/kind/);
    expect(errs.join('\n')).toMatch(/metadata\.name/);
  });

  it('parses durations', () => {
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(BenchmarkRunSpec.safeParse({ stress: { sustainedDuration: '0s' } }).success).toBe(false);
  });
});

describe('CRD', () => {
  it('the committed CRD is what the schema generates (run `npm run gen:crd` after changing the schema)', () => {
    const committed = readFileSync(join(REPO_ROOT, CRD_PATH), 'utf8');
    expect(committed).toBe(renderCrd());
  });

  it("the Helm chart's copy of the CRD is the same bytes (`npm run gen:crd` writes both)", () => {
    const chartCopy = readFileSync(join(REPO_ROOT, 'charts/swarmbench/crds/swarmbench.io_benchmarkruns.yaml'), 'utf8');
    expect(chartCopy).toBe(renderCrd());
  });

  it('is structural: every node has a type or an explicit escape, no additionalProperties:false', () => {
    const text = renderCrd();
    expect(text).not.toMatch(/additionalProperties: false/);
    expect(text).not.toMatch(/anyOf|oneOf|\$ref/);
    expect(text).toMatch(/shortNames:\n\s+- br/);
    expect(text).toMatch(/subresources:\n\s+status: \{\}/);
  });

  it('maps int-or-string unions and refuses other unions', () => {
    expect(structural({ anyOf: [{ type: 'string' }, { type: 'number' }] })).toEqual({ 'x-kubernetes-int-or-string': true });
    expect(() => structural({ anyOf: [{ type: 'string' }, { type: 'boolean' }] })).toThrow(/union/);
  });
});
