/**
 * What a run does on real nodes (kubelets, containerd, runc), through the project's own code paths:
 *
 * - Test 1.6 (src/bench/distributed/failover.ts) on the Kubernetes platform from here: under
 *   dispatch load an agent pod is deleted (grace 0); its ReplicaSet creates a replacement pod that
 *   containerd starts and that joins the pool; the recovery is timed and no accepted task is lost.
 *   A watch of the pool's pods shows each victim gone and each replacement created by the same
 *   ReplicaSet after the kill.
 * - A BenchmarkRun whose GPU runner has a 96Mi memory limit (`spec.gpu.resources`): the kernel's OOM
 *   killer ends the runner in its memory cgroup (runc's, not ours), the kubelet reports
 *   `OOMKilled` with exit code 137 for both tries, and the operator says so in the StepFailed
 *   Event, the run's tests and its phase (src/kube/pods.ts, src/operator/forensics.ts).
 *
 * Skipped, with the reason in the suite's name, when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import type { ChildProcess } from 'node:child_process';
import type { AppsV1Api, CoreV1Api, CustomObjectsApi, V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.ts';
import type { Measurement } from '../../src/api/schema.ts';
import { failover } from '../../src/bench/distributed/failover.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { KubernetesPlatform } from '../../src/platform/kubernetes/index.ts';
import { adminClients, clusterGate, createOwnerRun, kubectl, prepareNamespace, readRun, sleep, startOperator, until } from './lib/itest.ts';

const gate = await clusterGate('a run on real nodes');

const IMAGE = 'ghcr.io/swarmbench/swarmbench:dev';
const quiet = { info: () => {}, warn: () => {}, debug: () => {} };

interface Run {
  metadata: { uid: string };
  status?: { phase?: string; tests?: { id: string; result: string; reason?: string }[] };
}

describe.skipIf(!!gate.notUp)(gate.title, () => {
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let custom: CustomObjectsApi;
  const ns = `realrun-${Date.now().toString(36)}`;
  let op: ChildProcess | undefined;
  let opLog: string[] = [];
  const platforms: KubernetesPlatform[] = [];

  beforeAll(async () => {
    ({ core, apps, custom } = adminClients());
    prepareNamespace(ns);
  });
  afterAll(async () => {
    op?.kill('SIGKILL');
    for (const p of platforms) await p.close().catch(() => undefined);
    if (process.env.SWARMBENCH_CLUSTER_TEST_KEEP !== '1') await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('1.6: each deleted agent pod is replaced by its ReplicaSet, the replacement joins, and the recovery is timed', async () => {
    const runName = 'failover';
    const runUid = await createOwnerRun(ns, runName, { mode: 'quick', categories: ['distributed'] });
    const platform = new KubernetesPlatform({ kc: adminClients().kc, run: { namespace: ns, name: runName, uid: runUid }, attempt: 1, step: 'distributed', agentImage: IMAGE, log: quiet, readyTimeoutMs: 120_000 });
    platforms.push(platform);
    const trials = 2;
    const params = resolveParams({ mode: 'quick', trials, agents: { poolSize: 4 } }, ['distributed']);

    // Every pod of the pool the watch saw: its ReplicaSet, when it was created, whether it went.
    const seen = new Map<string, { rs: string; created: number; node: string; gone: boolean }>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'swarmbench.io/pool=failover' }).catch(() => undefined);
        if (pods) {
          const now = new Set(pods.items.map((p: V1Pod) => p.metadata!.name!));
          for (const p of pods.items) {
            const name = p.metadata!.name!;
            if (!seen.has(name)) {
              const rs = p.metadata?.ownerReferences?.find((o) => o.controller)?.kind === 'ReplicaSet' ? p.metadata!.ownerReferences!.find((o) => o.controller)!.name : '';
              seen.set(name, { rs, created: Date.parse(String(p.metadata!.creationTimestamp)), node: p.spec?.nodeName ?? '', gone: false });
            } else if (p.spec?.nodeName) seen.get(name)!.node = p.spec.nodeName;
          }
          for (const [name, s] of seen) if (!now.has(name)) s.gone = true;
        }
        await sleep(250);
      }
    })();

    const client = new AgentClient({ timeoutMs: 3000 });
    const killedAt: number[] = [];
    let m: Measurement;
    try {
      m = await failover(
        {
          params,
          platform,
          log: quiet,
          progress: (step, detail) => {
            if (detail?.includes('kill one of')) killedAt.push(Date.now());
            process.stderr.write(`real-nodes 1.6: ${step} ${detail ?? ''}\n`);
          },
          signal: AbortSignal.timeout(600_000),
        },
        client,
      );
    } finally {
      watching = false;
      await watcher;
      client.close();
    }
    const d = m.details as Record<string, number | null>;
    process.stderr.write(`real-nodes 1.6: recovery ${JSON.stringify(m.raw)} s, replacement p50 ${d.replacementMsP50} ms, kill confirmed p50 ${d.confirmedMsP50} ms; pods ${JSON.stringify([...seen])}\n`);
    expect(m.fail, m.fail).toBeUndefined();
    expect(m.samples).toBe(trials);
    expect(m.raw).toHaveLength(trials);
    for (const s of m.raw ?? []) expect(s).toBeGreaterThan(0);
    expect(d.replacementMsP50).toBeGreaterThan(0);
    expect(d.censoredTrials ?? 0).toBe(0);
    expect(d.lost).toBe(0);
    expect(d.accepted).toBeGreaterThan(0);

    // The pods: 4 at the start, one more per trial, every one of the same ReplicaSet; a victim per
    // trial gone; each replacement created after its trial's kill, by that ReplicaSet.
    const pods = [...seen.entries()].sort((a, b) => a[1].created - b[1].created);
    expect(pods).toHaveLength(4 + trials);
    const rs = new Set(pods.map(([, s]) => s.rs));
    expect(rs.size).toBe(1);
    expect([...rs][0]).toMatch(/^failover-a1-distributed-failover-[a-z0-9]+$/);
    const replacements = pods.slice(4);
    expect(killedAt).toHaveLength(trials);
    // Creation timestamps have one-second resolution.
    for (const [i, [, s]] of replacements.entries()) expect(s.created).toBeGreaterThanOrEqual(Math.floor(killedAt[i]! / 1000) * 1000 - 1000);
    for (const [, s] of pods) expect(['swarmbench-cpu-1', 'swarmbench-cpu-2']).toContain(s.node);
    // withPool closed the pool: every pod is gone now.
    await until('the pool closed', async () => (await core.listNamespacedPod({ namespace: ns, labelSelector: 'swarmbench.io/pool=failover' })).items.length === 0, 60_000, 500);
  }, 600_000);

  it('a runner over its memory limit is OOMKilled by the kernel, both tries, and the run says so', async () => {
    ({ proc: op, log: opLog } = startOperator(ns, ['--leader-elect', 'false', '--stuck-after-seconds', '30']));
    const yaml =
      `apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: oom, namespace: ${ns}}\n` +
      `spec:\n  mode: quick\n  categories: [gpu]\n  gpu: {resources: {limits: {nvidia.com/gpu: 1, memory: 96Mi}}}\n  cleanup: {policy: Never}\n`;
    expect(kubectl(['apply', '-f', '-'], yaml).code).toBe(0);
    const eventsOf = async (name: string) => (await core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` })).items;
    const ev = await until('a StepFailed event on oom', async () => (await eventsOf('oom')).find((e) => e.reason === 'StepFailed'), 240_000, 1000).catch((e: unknown) => {
      throw new Error(`${String(e)}\noperator log:\n${opLog.join('').slice(-3000)}`);
    });
    process.stderr.write(`real-nodes oom: ${ev.message}\n`);
    expect(ev.type).toBe('Warning');
    expect(ev.message).toMatch(/container runner was OOMKilled at its memory limit of 96Mi \(exit code 137\)/);
    const r = await until('oom to finish', async () => {
      const x = await readRun<Run>(custom, ns, 'oom');
      return x.status?.phase === 'Failed' || x.status?.phase === 'Succeeded' ? x : undefined;
    }, 90_000, 1000);
    expect(r.status!.phase).toBe('Failed');
    const tests = r.status!.tests!.filter((t) => t.id.startsWith('2.'));
    expect(tests).toHaveLength(5);
    for (const t of tests) {
      expect(t.result).toBe('Failed');
      expect(t.reason ?? '').toMatch(/OOMKilled at its memory limit of 96Mi/);
    }
    // Both tries of the Job (backoffLimit 1) ran in containerd on the GPU node and were ended by the
    // kernel: the runtime reports OOMKilled only for a container its cgroup's OOM killer ended.
    const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: `swarmbench.io/run-uid=${r.metadata.uid},swarmbench.io/component=runner` })).items;
    expect(pods).toHaveLength(2);
    for (const p of pods) {
      expect(p.spec?.nodeName).toBe('swarmbench-gpu-1');
      expect(p.spec?.containers[0]?.resources?.limits?.memory).toBe('96Mi');
      const cs = p.status?.containerStatuses?.[0];
      expect(cs?.containerID ?? '').toMatch(/^containerd:\/\//);
      expect(cs?.state?.terminated?.reason, p.metadata?.name).toBe('OOMKilled');
      expect(cs?.state?.terminated?.exitCode).toBe(137);
    }
    const deps = (await apps.listNamespacedDeployment({ namespace: ns, labelSelector: `swarmbench.io/run-uid=${r.metadata.uid}` })).items.filter((x) => !x.metadata?.deletionTimestamp);
    expect(deps).toEqual([]);
  }, 420_000);
});
