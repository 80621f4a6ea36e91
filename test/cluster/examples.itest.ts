/**
 * Every example BenchmarkRun, as a user applies it, passes the real API server's validation of the
 * CRD schema: `kubectl apply --dry-run=server` of each run (other kinds in the files, such as the
 * Argo CD Application or the Flux objects, are not applied: their CRDs are not installed here).
 * Nothing is created, so no operator runs. The schema-side checks are in test/unit/examples.test.ts.
 *
 * Skipped (reason in the suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { dump, loadAll } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/paths.ts';
import { clusterGate, kubectl, prepareNamespace } from './lib/itest.ts';

const gate = await clusterGate('examples on the API server');

const ns = `examples-${Date.now().toString(36)}`;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((e) => {
      const p = join(dir, e);
      return statSync(p).isDirectory() ? yamlFiles(p) : /\.ya?ml$/.test(e) ? [p] : [];
    });
}

const runs = yamlFiles(join(REPO_ROOT, 'examples')).flatMap((p) =>
  loadAll(readFileSync(p, 'utf8'))
    .filter((d): d is { kind: string; metadata: { name: string; namespace?: string } } => typeof d === 'object' && d !== null && (d as { kind?: unknown }).kind === 'BenchmarkRun')
    .map((doc) => [`${relative(REPO_ROOT, p)} (${doc.metadata.name})`, doc] as const),
);

describe.skipIf(!!gate.notUp)(gate.title, () => {
  beforeAll(() => {
    prepareNamespace(ns);
  });

  afterAll(() => {
    kubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  it('finds the example runs', () => {
    expect(runs.length).toBeGreaterThanOrEqual(6);
  });

  it.each(runs)('%s is accepted by the API server (dry run)', (_name, doc) => {
    const { namespace: _ignored, ...metadata } = doc.metadata;
    const r = kubectl(['apply', '--dry-run=server', '-n', ns, '-o', 'name', '-f', '-'], dump({ ...doc, metadata }));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(`benchmarkrun.swarmbench.io/${doc.metadata.name}`);
  });

  it('the API server refuses a run outside the schema (the dry run really validates)', () => {
    const bad = { apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name: 'bad' }, spec: { mode: 'huge', trials: 1 } };
    const r = kubectl(['apply', '--dry-run=server', '-n', ns, '-f', '-'], dump(bad));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/spec\.mode|spec\.trials/);
  });
});
