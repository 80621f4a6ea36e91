/**
 * Full mode on the test cluster (issue: "Full mode on the cluster"): examples/benchmarkrun-full-cluster.yaml
 * (1000 agents at most, 25 per pod, a 5-minute sustained phase) applied as a user would, with the
 * operator watching its namespace. It must reach a final phase with all 27 results, every result
 * ConfigMap and the export under 900 KiB, no step Job created twice, and nothing of the run left
 * running. Prints and writes `.tmp/full-mode-summary.json` (wall time, per-test values and results,
 * the largest ConfigMap) for docs/operator.md.
 *
 * About an hour on a 2-core machine, so it runs only with SWARMBENCH_FULL_MODE=1 (skipped, with
 * that reason in its name, otherwise; also skipped when the cluster is down).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import type { BatchV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/paths.ts';
import { adminClients, clusterGate, kubectl, prepareNamespace, readRun, sleep, startOperator, type OperatorProcess } from './lib/itest.ts';

const gate = await clusterGate('full mode on the cluster');
const wanted = process.env.SWARMBENCH_FULL_MODE === '1';
const skip = gate.notUp ?? (wanted ? undefined : 'set SWARMBENCH_FULL_MODE=1 (about an hour)');
const ns = `full-${Date.now().toString(36)}`;
const EXAMPLE = join(REPO_ROOT, 'examples', 'benchmarkrun-full-cluster.yaml');
const LIMIT_BYTES = 900 * 1024;

interface Run {
  metadata: { uid: string };
  status?: {
    phase?: string;
    verdict?: string;
    startedAt?: string;
    finishedAt?: string;
    tests?: { id: string; name?: string; result: string; value?: number | null; unit?: string; target?: string; reason?: string }[];
  };
}

describe.skipIf(!!skip)(skip ? `${gate.title} (skipped: ${skip})` : gate.title, () => {
  let core: CoreV1Api;
  let batch: BatchV1Api;
  let custom: CustomObjectsApi;
  let op: OperatorProcess | undefined;

  beforeAll(() => {
    ({ core, batch, custom } = adminClients());
    prepareNamespace(ns);
    op = startOperator(ns);
  });

  afterAll(async () => {
    op?.proc.kill('SIGKILL');
    await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('examples/benchmarkrun-full-cluster.yaml reaches a final phase with all 27 results, every ConfigMap under 900 KiB', async () => {
    const doc = load(readFileSync(EXAMPLE, 'utf8')) as { metadata: { name: string; namespace?: string } };
    doc.metadata.namespace = ns;
    const name = doc.metadata.name;
    const t0 = Date.now();
    expect(kubectl(['apply', '-f', '-'], JSON.stringify(doc)).code).toBe(0);
    const jobUids = new Map<string, Set<string>>();
    let run: Run | undefined;
    for (;;) {
      run = await readRun<Run>(custom, ns, name);
      for (const j of (await batch.listNamespacedJob({ namespace: ns })).items) {
        const k = j.metadata!.name!;
        if (!jobUids.has(k)) jobUids.set(k, new Set());
        jobUids.get(k)!.add(j.metadata!.uid!);
      }
      if (run.status?.phase === 'Succeeded' || run.status?.phase === 'Failed') break;
      if (Date.now() - t0 > 170 * 60_000) throw new Error(`not final after 170 min: ${JSON.stringify(run.status).slice(0, 2000)}\n${op!.log.join('').slice(-3000)}`);
      await sleep(10_000);
    }
    const wallS = Math.round((Date.now() - t0) / 1000);
    const tests = run.status!.tests ?? [];
    const cms = (await core.listNamespacedConfigMap({ namespace: ns })).items.map((c) => ({
      name: c.metadata!.name!,
      bytes: Object.values(c.data ?? {}).reduce((a, v) => a + Buffer.byteLength(v), 0),
    }));
    cms.sort((a, b) => b.bytes - a.bytes);
    const summary = { phase: run.status!.phase, verdict: run.status!.verdict, wallSeconds: wallS, startedAt: run.status!.startedAt, finishedAt: run.status!.finishedAt, largestConfigMaps: cms.slice(0, 5), jobs: [...jobUids].map(([k, v]) => ({ job: k, created: v.size })), tests };
    mkdirSync(join(REPO_ROOT, '.tmp'), { recursive: true });
    writeFileSync(join(REPO_ROOT, '.tmp', 'full-mode-summary.json'), JSON.stringify(summary, null, 2));
    console.log(JSON.stringify({ ...summary, tests: tests.map((t) => `${t.id} ${t.result} ${t.value ?? ''} ${t.unit ?? ''} ${t.reason ? `(${t.reason.slice(0, 160)})` : ''}`) }, null, 2));
    expect(tests.map((t) => t.id)).toHaveLength(27);
    expect(new Set(tests.map((t) => t.id)).size).toBe(27);
    for (const t of tests) expect(['Passed', 'Failed', 'Skipped'], t.id).toContain(t.result);
    expect(cms[0]!.bytes).toBeLessThan(LIMIT_BYTES);
    for (const [job, uids] of jobUids) expect(uids.size, job).toBe(1);
    // Nothing of the run is left running: no pool, no runner pod.
    const sel = `swarmbench.io/run-uid=${run.metadata.uid}`;
    const live = (await core.listNamespacedPod({ namespace: ns, labelSelector: sel })).items.filter((p) => !['Succeeded', 'Failed'].includes(p.status?.phase ?? ''));
    expect(live.map((p) => p.metadata?.name)).toEqual([]);
  }, 180 * 60_000);
});
