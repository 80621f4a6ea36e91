/**
 * The quick example, as a user applies it, on the real control plane: all 27 tests through the
 * operator within 10 minutes; the GPU step on the GPU node; agent pods spread over the nodes;
 * pools that really grow and shrink through the steps; `kubectl wait` and `kubectl get br`.
 *
 * Skipped (reason in the suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResultDocument } from '../../src/api/schema.ts';
import { CATALOGUE } from '../../src/bench/catalogue.ts';
import { REPO_ROOT } from '../../src/paths.ts';
import { KUBECONFIG, TOOLS_BIN } from './lib/config.ts';
import { clusterGate, kubeEnv, kubectl, prepareNamespace, sleep, startOperator, type OperatorProcess } from './lib/itest.ts';

const gate = await clusterGate('operator quick example');

const ns = `op-quick-${Date.now().toString(36)}`;

describe.skipIf(!!gate.notUp)(gate.title, () => {
  const kc = new KubeConfig();
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let batch: BatchV1Api;
  let custom: CustomObjectsApi;
  let operator: OperatorProcess | undefined;

  beforeAll(async () => {
    kc.loadFromFile(KUBECONFIG);
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    batch = kc.makeApiClient(BatchV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
    prepareNamespace(ns);
    operator = startOperator(ns);
  });

  afterAll(async () => {
    operator?.proc.kill('SIGTERM');
    await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('kubectl apply -f examples/benchmarkrun-quick.yaml reaches a verdict within 10 minutes, with all 27 tests', async () => {
    // Watch what the run creates while it runs: agent pods (with their nodes) and pool sizes.
    const podNodes = new Map<string, { node: string; category: string }>();
    const replicas = new Map<string, number[]>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const [pods, deps] = await Promise.all([
          core.listNamespacedPod({ namespace: ns, labelSelector: 'swarmbench.io/component=agent' }).catch(() => undefined),
          apps.listNamespacedDeployment({ namespace: ns, labelSelector: 'swarmbench.io/run=quick' }).catch(() => undefined),
        ]);
        for (const p of pods?.items ?? []) {
          if (p.spec?.nodeName) podNodes.set(p.metadata!.name!, { node: p.spec.nodeName, category: p.metadata?.labels?.['swarmbench.io/category'] ?? '' });
        }
        for (const d of deps?.items ?? []) {
          const h = replicas.get(d.metadata!.name!) ?? [];
          const r = d.spec?.replicas ?? 0;
          if (h[h.length - 1] !== r) h.push(r);
          replicas.set(d.metadata!.name!, h);
        }
        await sleep(500);
      }
    })();

    const t0 = Date.now();
    const a = kubectl(['apply', '-n', ns, '-f', join(REPO_ROOT, 'examples/benchmarkrun-quick.yaml')]);
    expect(a.code, a.stderr).toBe(0);
    // Asynchronously: the watcher above keeps polling while kubectl waits.
    const w = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
      execFile(join(TOOLS_BIN, 'kubectl'), ['wait', '-n', ns, '--for=condition=Complete', 'br/quick', '--timeout=600s'], { env: kubeEnv }, (err, _out, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
      ),
    );
    const seconds = (Date.now() - t0) / 1000;
    watching = false;
    await watcher;
    expect(w.code, w.stderr).toBe(0);
    expect(seconds).toBeLessThan(600);

    const run = (await custom.getNamespacedCustomObject({ group: 'swarmbench.io', version: 'v1alpha1', namespace: ns, plural: 'benchmarkruns', name: 'quick' })) as {
      status: { phase: string; summary: { total: number; passed: number; failed: number; skipped: number; verdict: string }; tests: { id: string; result: string; reason?: string }[]; export: { configMapName: string } };
    };
    const st = run.status;
    expect(['Succeeded', 'Failed']).toContain(st.phase);
    expect(st.tests.map((t) => t.id)).toEqual(CATALOGUE.map((d) => d.id));
    expect(st.summary.total).toBe(27);
    for (const t of st.tests) expect(t.reason ?? '', t.id).not.toMatch(/produced no result|without (a|writing its) result/);
    // No GPU library in the test image: 2.1 is skipped with its reason, never passed.
    expect(st.tests.find((t) => t.id === '2.1')!.result).toBe('Skipped');
    const table = kubectl(['get', 'br', '-n', ns]).stdout;
    expect(table).toMatch(new RegExp(`quick\\s+${st.phase}\\s+${st.summary.passed}/27\\s+`));

    // The export agrees with the status.
    const exp = await core.readNamespacedConfigMap({ namespace: ns, name: st.export.configMapName });
    const doc = ResultDocument.parse(JSON.parse(exp.data!['results.json']!));
    expect(doc.summary).toMatchObject({ total: 27, passed: st.summary.passed, failed: st.summary.failed, skipped: st.summary.skipped, verdict: st.summary.verdict });
    expect(doc.environment.platform).toBe('kubernetes');

    // The GPU step's runner pod ran on the GPU node; no agent pod did.
    const gpuPods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=quick-a1-gpu' });
    expect(gpuPods.items.length).toBeGreaterThan(0);
    for (const p of gpuPods.items) expect(p.spec?.nodeName).toBe('swarmbench-gpu-1');
    const otherJobs = await batch.listNamespacedJob({ namespace: ns, labelSelector: 'swarmbench.io/run=quick' });
    expect(otherJobs.items).toHaveLength(6);
    // Agent pods were spread over the CPU nodes.
    const agentNodes = new Set([...podNodes.values()].map((p) => p.node));
    expect(agentNodes).toEqual(new Set(['swarmbench-cpu-1', 'swarmbench-cpu-2']));
    const distNodes = new Set([...podNodes.values()].filter((p) => p.category === 'distributed').map((p) => p.node));
    expect(distNodes.size).toBe(2);
    // Pools really grew and shrank: the scalability pool went through every step size, and some pool shrank.
    const histories = [...replicas.values()];
    const grew = histories.some((h) => h.length >= 4 && h.some((v, i) => i > 0 && v > h[i - 1]!));
    const shrank = histories.some((h) => h.some((v, i) => i > 0 && v < h[i - 1]! && v > 0));
    expect(grew, JSON.stringify([...replicas])).toBe(true);
    expect(shrank, JSON.stringify([...replicas])).toBe(true);
    const maxReplicas = Math.max(...histories.flat());
    expect(maxReplicas).toBe(64);
    // Nothing of the run's pools is left once it finished.
    expect((await apps.listNamespacedDeployment({ namespace: ns, labelSelector: 'swarmbench.io/run=quick' })).items).toHaveLength(0);
  }, 700_000);
});
