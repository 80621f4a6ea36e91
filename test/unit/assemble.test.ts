/**
 * The one result assembly (report/assemble.ts) that `swarmbench run` and the operator share, the
 * export list both write, and the parameters' schema at the process boundary (plan/params.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { API_VERSION_FULL, type Observations, type ResultDocument, type StepResult } from '../../src/api/schema.ts';
import { parseManifestText } from '../../src/api/validate.ts';
import { REPO_ROOT } from '../../src/paths.ts';
import { CATALOGUE } from '../../src/plan/catalogue.ts';
import { parseParams, Params, resolveParams } from '../../src/plan/params.ts';
import { assembleResult, environmentOf } from '../../src/report/assemble.ts';
import { EXPORT_FILES, renderExports } from '../../src/report/exports.ts';
import { comparisonRefusal } from '../../src/report/fingerprint.ts';

const fixture = JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/results-quick.json'), 'utf8')) as ResultDocument;
const params = resolveParams({ mode: 'quick' });

/** The fixture's tests as the step results a runner would have written (one step per category). */
function stepsOf(doc: ResultDocument, drop: string[] = []): StepResult[] {
  return params.categories.map((category) => ({
    apiVersion: API_VERSION_FULL,
    kind: 'StepResult' as const,
    step: category,
    category,
    attempt: 1,
    startedAt: doc.run.startedAt,
    finishedAt: doc.run.finishedAt,
    node: 'node-a',
    measurements: doc.tests
      .filter((t) => t.category === category && !drop.includes(t.id))
      .map((t) => ({
        id: t.id,
        value: t.value,
        samples: t.samples,
        ...(t.rawSamples ? { raw: t.rawSamples } : {}),
        ...(t.distribution ? { distribution: t.distribution } : {}),
        ...(t.result === 'Skipped' ? { skip: t.reason ?? 'skipped' } : {}),
        ...(t.details ? { details: t.details } : {}),
      })),
  }));
}

const base = {
  run: { name: 'quick', attempt: 1 },
  params,
  startedAt: fixture.run.startedAt,
  finishedAt: fixture.run.finishedAt,
  failures: {},
};

describe('assembleResult', () => {
  it('judges every test of the catalogue once, in order, and the summary counts agree', () => {
    const steps = stepsOf(fixture);
    const doc = assembleResult({ ...base, steps, environment: environmentOf('local', { params, steps, version: '9.9.9' }) });
    expect(doc.tests.map((t) => t.id)).toEqual(CATALOGUE.map((c) => c.id));
    const s = doc.summary;
    expect(s.passed + s.failed + s.skipped).toBe(s.total);
    expect(s.total).toBe(27);
    expect(doc.tests.filter((t) => t.result === 'Skipped').map((t) => t.id)).toEqual(fixture.tests.filter((t) => t.result === 'Skipped').map((t) => t.id));
    expect(doc.recommendations).toBeDefined();
    expect(doc.comparison).toBeUndefined();
  });

  it('a category that failed as a whole fails its tests that have no measurement, with the reason (from the caller or the step)', () => {
    const steps = stepsOf(fixture, ['5.2', '5.3']).map((s) => (s.category === 'integration' ? { ...s, error: 'workflow coordinator crashed' } : s));
    const doc = assembleResult({ ...base, steps, failures: { stress: 'the stress runner Job failed' }, environment: environmentOf('local', { params, steps, version: '1' }) });
    const byId = new Map(doc.tests.map((t) => [t.id, t]));
    expect(byId.get('5.2')).toMatchObject({ result: 'Failed', reason: expect.stringContaining('workflow coordinator crashed') });
    expect(byId.get('5.3')!.result).toBe('Failed');
    expect(byId.get('5.1')!.result).toBe(fixture.tests.find((t) => t.id === '5.1')!.result); // measured: judged on its value
    expect(doc.summary.failed).toBeGreaterThanOrEqual(2);
  });

  it('compares with a baseline and keeps the observations it is given', () => {
    const steps = stepsOf(fixture);
    const environment = environmentOf('kubernetes', { params, steps, version: '1', ownAgentImage: 'reg/swarmbench:1' });
    const observations: Observations = { prometheus: { url: null, available: false, reason: 'no Prometheus configured' }, steps: [] };
    // The baseline is the fixture's local run: another platform and SwarmBench version, so it is
    // compared only when forced (report/fingerprint.ts); unforced, the result stands without it.
    const refused = assembleResult({ ...base, steps, environment, observations, baseline: { doc: fixture, source: 'last-release', failOnRegression: false } });
    expect(refused.comparison).toBeUndefined();
    expect(comparisonRefusal(refused, fixture)?.message).toMatch(/platform: baseline "local", this run "kubernetes"/);
    const doc = assembleResult({ ...base, steps, environment, observations, baseline: { doc: fixture, source: 'last-release', failOnRegression: false, force: true } });
    expect(doc.comparison).toBeDefined();
    expect(doc.comparison!.warnings[0]).toMatch(/^compared although not measured alike \(--force-compare\): /);
    expect(doc.fingerprint).toMatchObject({ platform: 'kubernetes', swarmbenchVersion: '1', spec: { mode: 'quick', sizes: { 'agents.poolSize': params.agents.poolSize } } });
    expect(doc.observations).toEqual(observations);
    expect(doc.environment).toMatchObject({ platform: 'kubernetes', hostname: 'node-a', agentImage: 'reg/swarmbench:1', swarmbenchVersion: '1' });
  });
});

describe('environmentOf', () => {
  it('locally: this machine, the image as given; in a cluster: the runner nodes and the deployed image', () => {
    const steps = stepsOf(fixture);
    const local = environmentOf('local', { params, steps, version: '1' });
    expect(local.platform).toBe('local');
    expect(local.cpus).toBeGreaterThan(0);
    expect(local.agentImage).toBe('local');
    expect(local.inference?.backend).toBe(fixture.environment.inference?.backend);
    expect(local.prometheus).toEqual({ url: null, mode: 'direct-scrape' });
    const kube = environmentOf('kubernetes', { params, steps: [...steps, { ...steps[0]!, node: 'node-b' }], version: '1', ownAgentImage: 'reg/x:1' });
    expect(kube.hostname).toBe('node-a,node-b');
    expect(kube.agentImage).toBe('reg/x:1');
  });
});

describe('exports', () => {
  it('one list, the same files in both modes (report.txt included)', () => {
    expect([...EXPORT_FILES]).toEqual(['results.json', 'summary.csv', 'junit.xml', 'report.md', 'report.txt']);
    expect(Object.keys(renderExports(fixture))).toEqual([...EXPORT_FILES]);
  });
});

describe('Params at the process boundary', () => {
  it('what resolveParams makes from every example passes its own schema', () => {
    for (const f of ['benchmarkrun-quick.yaml', 'benchmarkrun-full.yaml']) {
      const m = parseManifestText(readFileSync(join(REPO_ROOT, 'examples', f), 'utf8'), f);
      if (!m.ok) throw new Error(`${f}: ${JSON.stringify(m.errors)}`);
      const p = resolveParams(m.value.spec);
      expect(Params.parse(p)).toEqual(p);
      expect(parseParams(JSON.stringify(p), f)).toEqual(p);
    }
  });

  it('refuses text that is not JSON, and names every bad field', () => {
    expect(() => parseParams('{"mode":', 'SWARMBENCH_PARAMS')).toThrow(/SWARMBENCH_PARAMS: the parameters are not JSON/);
    const bad = { ...params, trials: 0, agents: { ...params.agents, image: 7 } };
    const { stress: _s, ...noStress } = params;
    expect(() => parseParams(JSON.stringify(bad), 'params.json')).toThrow(/params\.trials[\s\S]*params\.agents\.image/);
    expect(() => parseParams(JSON.stringify(noStress), 'params.json')).toThrow(/params\.stress: is required/);
  });
});
