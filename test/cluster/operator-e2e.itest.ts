/**
 * The operator end to end on the real control plane (`npm run cluster:up`, then
 * `npm run test:cluster`): `swarmbench operator` runs as a process against the API server; a
 * BenchmarkRun applied with kubectl runs its steps as Jobs of the project's image (containers on
 * the test cluster's kubelets), and the verdict comes back into the status and the export.
 *
 * Skipped (reason in the suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import type { AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResultDocument, StepResult } from '../../src/api/schema.ts';
import { PROMETHEUS_URL } from './lib/config.ts';
import { adminClients, clusterGate, kubectl, prepareNamespace, startOperator, type OperatorProcess, until } from './lib/itest.ts';
import { EXPORT_FILES } from '../../src/report/exports.ts';

const gate = await clusterGate('operator end to end');

const ns = `op-e2e-${Date.now().toString(36)}`;
const run = (name: string, spec: string) =>
  `apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec}`;

/** A small run that finishes in about a minute on 2 cores: integration only, a pool of 3. */
const SMALL = `  mode: quick\n  categories: [integration]\n  trials: 3\n  agents: {poolSize: 3}\n  cleanup: {policy: Never}\n  prometheus: {url: "${PROMETHEUS_URL}"}\n`;

interface Run {
  metadata: { name: string; generation: number; uid: string };
  status?: {
    phase?: string;
    attempt?: number;
    observedGeneration?: number;
    conditions?: { type: string; status: string; reason: string; observedGeneration?: number }[];
    summary?: { total: number; passed: number; failed: number; skipped: number; verdict: string; passedOfTotal?: string };
    tests?: { id: string; result: string; value: number | null }[];
    export?: { configMapName: string };
    history?: { attempt: number; phase: string }[];
  };
}

describe.skipIf(!!gate.notUp)(gate.title, () => {
  let core: CoreV1Api;
  let batch: BatchV1Api;
  let apps: AppsV1Api;
  let custom: CustomObjectsApi;
  let operator: OperatorProcess | undefined;

  const get = async (name: string): Promise<Run> =>
    (await custom.getNamespacedCustomObject({ group: 'swarmbench.io', version: 'v1alpha1', namespace: ns, plural: 'benchmarkruns', name })) as Run;
  const terminal = (name: string, timeoutMs = 300_000) =>
    until(`${name} to finish`, async () => {
      const r = await get(name);
      return r.status?.phase === 'Succeeded' || r.status?.phase === 'Failed' ? r : undefined;
    }, timeoutMs, 1000);

  beforeAll(async () => {
    ({ core, batch, apps, custom } = adminClients());
    prepareNamespace(ns);
    operator = startOperator(ns);
  });

  afterAll(async () => {
    operator?.proc.kill('SIGTERM');
    await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('a BenchmarkRun runs to a verdict: status, printer columns, kubectl wait, and an export that agrees', async () => {
    const a = kubectl(['apply', '-f', '-'], run('small', SMALL));
    expect(a.code, a.stderr).toBe(0);
    const done = await terminal('small').catch((e: unknown) => {
      throw new Error(`${String(e)}\noperator log tail:\n${(operator?.log ?? []).slice(-30).join('')}`);
    });
    const st = done.status!;
    expect(st.attempt).toBe(1);
    expect(st.observedGeneration).toBe(done.metadata.generation);
    expect(st.summary!.total).toBe(3);
    expect(st.summary!.passed + st.summary!.failed + st.summary!.skipped).toBe(3);
    expect(st.tests!.map((t) => t.id)).toEqual(['5.1', '5.2', '5.3']);
    for (const t of st.tests!) expect(t.value, `${t.id} has a measured value`).not.toBeNull();
    for (const c of st.conditions!) expect(c.observedGeneration).toBe(done.metadata.generation);
    expect(st.conditions!.find((c) => c.type === 'Complete')!.status).toBe('True');

    const w = kubectl(['wait', '-n', ns, '--for=condition=Complete', 'br/small', '--timeout=10s']);
    expect(w.code, w.stderr).toBe(0);
    const table = kubectl(['get', 'br', '-n', ns]);
    expect(table.stdout).toMatch(/NAME\s+PHASE\s+PASSED\s+SUCCESS\s+VERDICT\s+AGE/);
    expect(table.stdout).toMatch(new RegExp(`small\\s+${st.phase}\\s+${st.summary!.passed}/3\\s+`));

    // The step ran as a Job whose result ConfigMap holds a valid StepResult of attempt 1.
    // (The operator moves on as soon as the result exists; the Job controller marks it Complete soon after.)
    await until('the step Job to complete', async () => {
      const job = await batch.readNamespacedJob({ namespace: ns, name: 'small-a1-integration' });
      return job.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') ? true : undefined;
    }, 60_000);
    const res = await core.readNamespacedConfigMap({ namespace: ns, name: 'small-a1-integration-result' });
    const step = StepResult.parse(JSON.parse(res.data!['result.json']!));
    expect(step.attempt).toBe(1);
    expect(step.measurements.map((m) => m.id)).toEqual(['5.1', '5.2', '5.3']);
    expect(res.metadata?.labels).toMatchObject({ 'swarmbench.io/run': 'small', 'swarmbench.io/attempt': '1', 'swarmbench.io/category': 'integration' });

    // The export: four files that agree with the status.
    const exp = await core.readNamespacedConfigMap({ namespace: ns, name: st.export!.configMapName });
    expect(Object.keys(exp.data!).sort()).toEqual([...EXPORT_FILES].sort());
    const doc = ResultDocument.parse(JSON.parse(exp.data!['results.json']!));
    expect(doc.summary).toMatchObject({ total: st.summary!.total, passed: st.summary!.passed, failed: st.summary!.failed, verdict: st.summary!.verdict });
    expect(doc.tests.map((t) => [t.id, t.result, t.value])).toEqual(st.tests!.map((t) => [t.id, t.result, t.value]));
    expect(exp.data!['junit.xml']).toMatch(new RegExp(`tests="3"`));
    for (const t of doc.tests) expect(exp.data!['summary.csv']).toContain(t.name);
    expect(exp.data!['report.md']).toMatch(/5\.1/);
    // Prometheus was asked about the step's window: every figure has a value or a reason, never a made-up zero.
    expect(doc.observations?.prometheus).toMatchObject({ url: PROMETHEUS_URL, available: true });
    const obs = doc.observations!.steps.find((x) => x.step === 'integration')!;
    expect(obs.metrics.length).toBeGreaterThan(3);
    for (const m of obs.metrics) expect(m.value !== null || (m.reason ?? '').length > 0, m.name).toBe(true);

    // The pool the runner made is gone (the runner closes it), and events tell the story.
    const pools = await apps.listNamespacedDeployment({ namespace: ns, labelSelector: 'swarmbench.io/run=small' });
    expect(pools.items).toHaveLength(0);
    const events = await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=small' });
    const reasons = events.items.map((e) => e.reason);
    expect(reasons).toContain('AttemptStarted');
    expect(reasons).toContain('StepStarted');
    expect(reasons.some((r) => r === 'Succeeded' || r === 'Failed')).toBe(true);
  }, 360_000);

  it('changing the spec of a finished run starts attempt 2 and keeps attempt 1 in the history', async () => {
    const before = await get('small');
    // The new generation also points at a Prometheus that is not there.
    const a = kubectl(['apply', '-f', '-'], run('small', SMALL.replace('trials: 3', 'trials: 4').replace(PROMETHEUS_URL, 'http://127.0.0.1:1')));
    expect(a.code, a.stderr).toBe(0);
    await until('attempt 2 to start', async () => ((await get('small')).status?.attempt === 2 ? true : undefined), 30_000);
    const done = await terminal('small');
    expect(done.status!.attempt).toBe(2);
    expect(done.status!.observedGeneration).toBe(before.metadata.generation + 1);
    expect(done.status!.history![0]).toMatchObject({ attempt: 1, phase: before.status!.phase });
    await batch.readNamespacedJob({ namespace: ns, name: 'small-a2-integration' });
    const exp = await core.readNamespacedConfigMap({ namespace: ns, name: 'small-results' });
    const doc = ResultDocument.parse(JSON.parse(exp.data!['results.json']!));
    expect(doc.run.attempt).toBe(2);
    expect(doc.observations?.prometheus.available).toBe(false);
    expect(doc.observations?.prometheus.reason).toMatch(/ECONNREFUSED|unreachable|refused/i);
  }, 360_000);

  it('a spec the CRD cannot catch is marked SpecInvalid without retries; the CRD rejects the rest naming the field', async () => {
    const bad = kubectl(['apply', '-f', '-'], run('badmix', '  agents: {taskMix: {io: 0.5, cpu: 0.1}}\n'));
    expect(bad.code, bad.stderr).toBe(0);
    const r = await until('SpecInvalid', async () => {
      const x = await get('badmix');
      const ready = x.status?.conditions?.find((c) => c.type === 'Ready');
      return ready?.reason === 'SpecInvalid' ? x : undefined;
    }, 30_000);
    expect(r.status!.phase).toBe('Failed');
    const jobs = await batch.listNamespacedJob({ namespace: ns, labelSelector: 'swarmbench.io/run=badmix' });
    expect(jobs.items).toHaveLength(0);
    for (const [spec, field] of [
      ['  mode: fast\n', 'spec.mode'],
      ['  agents: {poolSize: -3}\n', 'spec.agents.poolSize'],
      ['  trials: many\n', 'spec.trials'],
    ] as const) {
      const x = kubectl(['apply', '-f', '-'], run('rejected', spec));
      expect(x.code).not.toBe(0);
      expect(x.stderr).toContain(field);
    }
    // The operator is still alive after all of that.
    expect(operator!.proc.exitCode).toBeNull();
  }, 120_000);

  it('deleting a run removes its Jobs, pods, result ConfigMaps and its export (all owned by it)', async () => {
    const cmsBefore = await core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'swarmbench.io/run=small,swarmbench.io/component=step-result' });
    expect(cmsBefore.items.length).toBeGreaterThan(0);
    const d = kubectl(['delete', '-n', ns, 'br/small', '--wait=true', '--timeout=60s']);
    expect(d.code, d.stderr).toBe(0);
    await until('children to be garbage-collected', async () => {
      const jobs = await batch.listNamespacedJob({ namespace: ns, labelSelector: 'swarmbench.io/run=small' });
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'swarmbench.io/run=small' });
      const cms = await core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'swarmbench.io/run=small,swarmbench.io/component in (step-result,params,export)' });
      return jobs.items.length + pods.items.length + cms.items.length === 0 ? true : undefined;
    }, 90_000, 1000);
    const left = await core.listNamespacedConfigMap({ namespace: ns, fieldSelector: 'metadata.name=small-results' });
    expect(left.items).toHaveLength(0);
  }, 120_000);
});
