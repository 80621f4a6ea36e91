/**
 * Every example under examples/ is what a user applies: each BenchmarkRun in it must pass the
 * project's own validation (the operator's and the CLI's), and the files that point at other files
 * (baseline runRef, kustomization resources, Argo CD and Flux paths) must point at what exists.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { loadAll } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { API_VERSION_FULL, type BenchmarkRunManifest } from '../../src/api/schema.ts';
import { parseManifestText, validateManifest } from '../../src/api/validate.ts';
import { validateScheduleManifest } from '../../src/api/schedule.ts';
import { RERUN_ANNOTATION } from '../../src/kube/names.ts';
import { REPO_ROOT } from '../../src/paths.ts';

const EXAMPLES = join(REPO_ROOT, 'examples');
const RUNS_PATH = 'examples/gitops/runs';

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(e)) out.push(p);
  }
  return out;
}

type Doc = Record<string, unknown> & { kind?: unknown; apiVersion?: unknown; metadata?: { name?: string }; spec?: Record<string, unknown> };

const files = yamlFiles(EXAMPLES).map((p) => {
  const text = readFileSync(p, 'utf8');
  const docs = loadAll(text).filter((d): d is Doc => typeof d === 'object' && d !== null) as Doc[];
  return { path: relative(REPO_ROOT, p), text, docs };
});
const runs = files.flatMap((f) => f.docs.filter((d) => d.kind === 'BenchmarkRun').map((doc) => ({ file: f.path, doc })));
const byName = new Map(runs.map((r) => [r.doc.metadata?.name, r]));
const find = (kind: string) => files.flatMap((f) => f.docs.filter((d) => d.kind === kind).map((doc) => ({ file: f.path, doc })));

describe('examples', () => {
  it('are found: quick, full, gpu, baseline, prometheus and the GitOps run', () => {
    expect(runs.map((r) => r.file)).toEqual(
      expect.arrayContaining([
        'examples/benchmarkrun-quick.yaml',
        'examples/benchmarkrun-full.yaml',
        'examples/benchmarkrun-gpu.yaml',
        'examples/benchmarkrun-baseline.yaml',
        'examples/benchmarkrun-prometheus.yaml',
        `${RUNS_PATH}/benchmarkrun-nightly.yaml`,
      ]),
    );
  });

  it.each(runs.map((r) => [r.file, r.doc] as const))('%s validates with the schema', (_file, doc) => {
    expect(doc.apiVersion).toBe(API_VERSION_FULL);
    const v = validateManifest(doc);
    expect(v.ok ? [] : v.errors).toEqual([]);
  });

  it.each(files.filter((f) => f.docs.some((d) => d.kind === 'BenchmarkRun')).map((f) => [f.path, f.text] as const))(
    '%s is accepted by `swarmbench run -f` as it is',
    (path, text) => {
      const v = parseManifestText(text, path);
      expect(v.ok ? [] : v.errors).toEqual([]);
    },
  );

  it.each(find('BenchmarkSchedule').map((s) => [s.file, s.doc] as const))('%s (BenchmarkSchedule) validates with the schedule schema', (_file, doc) => {
    expect(doc.apiVersion).toBe(API_VERSION_FULL);
    const v = validateScheduleManifest(doc);
    expect(v.ok ? [] : v.errors).toEqual([]);
  });

  it('hold the nightly schedule', () => {
    expect(find('BenchmarkSchedule').map((s) => s.file)).toContain('examples/nightly-schedule.yaml');
  });

  it('have unique run names', () => {
    const names = runs.map((r) => r.doc.metadata?.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('the GPU example runs only the gpu category, with explicit GPU scheduling', () => {
    const gpu = byName.get('gpu');
    expect(gpu?.file).toBe('examples/benchmarkrun-gpu.yaml');
    const spec = (validateManifest(gpu!.doc) as { ok: true; value: BenchmarkRunManifest }).value.spec;
    expect(spec.categories).toEqual(['gpu']);
    expect(Object.keys(spec.gpu?.nodeSelector ?? {}).length).toBeGreaterThan(0);
    expect(spec.gpu?.tolerations?.some((t) => t.key === 'nvidia.com/gpu')).toBe(true);
    expect(String(spec.gpu?.resources?.limits?.['nvidia.com/gpu'])).toBe('1');
  });

  it('the baseline example compares with a run that is among the examples', () => {
    const withBaseline = runs.filter((r) => (r.doc.spec?.baseline as { runRef?: string } | undefined)?.runRef !== undefined);
    expect(withBaseline.map((r) => r.file)).toContain('examples/benchmarkrun-baseline.yaml');
    for (const r of withBaseline) {
      const ref = (r.doc.spec!.baseline as { runRef: string }).runRef;
      expect(byName.has(ref), `${r.file}: runRef ${ref}`).toBe(true);
      expect(ref).not.toBe(r.doc.metadata?.name);
    }
  });

  it('the Prometheus example has a token Secret reference and extra queries', () => {
    const p = byName.get('with-prometheus')!.doc.spec!.prometheus as Record<string, unknown>;
    expect(p.bearerTokenSecretRef).toEqual({ name: 'prometheus-token', key: 'token' });
    expect(p.scrapeInterval).toBeDefined();
    expect((p.queries as unknown[]).length).toBeGreaterThan(0);
  });
});

describe('GitOps examples', () => {
  it('the kustomization lists files that exist, the run among them, with a rerun annotation', () => {
    const k = find('Kustomization').find((k) => k.doc.apiVersion === 'kustomize.config.k8s.io/v1beta1');
    expect(k?.file).toBe(`${RUNS_PATH}/kustomization.yaml`);
    const resources = (k!.doc as { resources?: string[] }).resources ?? [];
    for (const r of resources) expect(existsSync(join(REPO_ROOT, RUNS_PATH, r)), r).toBe(true);
    const inRuns = runs.filter((r) => r.file.startsWith(`${RUNS_PATH}/`));
    expect(inRuns.length).toBeGreaterThan(0);
    for (const r of inRuns) {
      expect(resources).toContain(r.file.slice(RUNS_PATH.length + 1));
      expect((r.doc.metadata as { annotations?: Record<string, string> }).annotations?.[RERUN_ANNOTATION]).toBeDefined();
    }
  });

  it('the Argo CD Application syncs examples/gitops/runs and documents a health check on Ready and Complete', () => {
    const app = find('Application');
    expect(app.length).toBe(1);
    const source = (app[0]!.doc.spec as { source: { path: string } }).source;
    expect(source.path).toBe(RUNS_PATH);
    expect(existsSync(join(REPO_ROOT, source.path, 'kustomization.yaml'))).toBe(true);
    const text = files.find((f) => f.path === app[0]!.file)!.text;
    expect(text).toMatch(/resource\.customizations\.health\.swarmbench\.io_BenchmarkRun/);
    expect(text).toMatch(/Complete/);
    expect(text).toMatch(/Ready/);
  });

  it('the Flux Kustomization applies ./examples/gitops/runs from the GitRepository and waits, with a timeout', () => {
    const fk = find('Kustomization').filter((k) => String(k.doc.apiVersion).startsWith('kustomize.toolkit.fluxcd.io/'));
    expect(fk.length).toBe(1);
    const spec = fk[0]!.doc.spec as { path: string; wait?: boolean; timeout?: string; sourceRef: { kind: string; name: string }; healthCheckExprs?: { kind: string }[] };
    expect(spec.path.replace(/^\.\//, '')).toBe(RUNS_PATH);
    expect(existsSync(join(REPO_ROOT, spec.path))).toBe(true);
    expect(spec.wait).toBe(true);
    expect(spec.timeout).toMatch(/^\d+(s|m|h)/);
    const repo = find('GitRepository');
    expect(repo.map((r) => [r.doc.kind, r.doc.metadata?.name])).toContainEqual([spec.sourceRef.kind, spec.sourceRef.name]);
    expect(spec.healthCheckExprs?.some((e) => e.kind === 'BenchmarkRun')).toBe(true);
  });
});
