/**
 * Failure forensics on the real control plane (src/operator/forensics.ts): a step whose agents
 * cannot start fails within the grace with the reason the cluster gives, as an Event on the run,
 * the Progressing condition and its tests' reasons, and leaves neither its Job nor its pools.
 *
 * - An agent image that does not exist: the kubelet reports ErrImagePull, then ImagePullBackOff
 *   (containerd's pull fails).
 * - Agents that ask for more CPU than any node has: Unschedulable, with the scheduler's message.
 * - A ResourceQuota of one pod: the runner starts, its pool's pods are refused (the Deployment's
 *   ReplicaFailure condition): FailedCreate with the quota's message; of no pod: the runner Job's
 *   own pod is refused (its FailedCreate Events).
 * - A runner over its memory limit (the GPU step's `spec.gpu.resources`, enforced by runc's memory
 *   cgroup): OOMKilled with the limit.
 *
 * The operator runs with `--stuck-after-seconds 15`; the requirement is a reason within 2 minutes.
 * Skipped (reason in the suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import type { ChildProcess } from 'node:child_process';
import type { AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClients, clusterGate, kubectl, prepareNamespace, readRun, startOperator, until } from './lib/itest.ts';

const gate = await clusterGate('operator forensics');

const ns = `op-forensics-${Date.now().toString(36)}`;
const run = (name: string, agents: string) =>
  `apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: ${name}, namespace: ${ns}}\n` +
  `spec:\n  mode: quick\n  categories: [integration]\n  trials: 3\n  agents: {poolSize: 3, ${agents}}\n  cleanup: {policy: Never}\n`;
/** Agents may ask for up to 64 CPUs here, so a 32-CPU request is admitted, and no 8-CPU node takes it. */
const ADMISSION = JSON.stringify({ prometheus: { allowLoopback: true }, agentResources: { max: { cpu: '64', memory: '8Gi' } } });

interface Run {
  metadata: { uid: string };
  status?: { phase?: string; conditions?: { type: string; reason: string; message: string }[]; tests?: { id: string; result: string; reason?: string }[] };
}

describe.skipIf(!!gate.notUp)(gate.title, () => {
  let core: CoreV1Api;
  let batch: BatchV1Api;
  let apps: AppsV1Api;
  let custom: CustomObjectsApi;
  let op: ChildProcess | undefined;
  let log: string[] = [];

  const get = (name: string): Promise<Run> => readRun<Run>(custom, ns, name);
  const eventsOf = async (name: string) => (await core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` })).items;

  beforeAll(async () => {
    ({ core, batch, apps, custom } = adminClients());
    prepareNamespace(ns);
    ({ proc: op, log } = startOperator(ns, ['--leader-elect', 'false', '--stuck-after-seconds', '15', '--admission', ADMISSION]));
  });

  afterAll(async () => {
    op?.kill('SIGKILL');
    await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  async function expectStopped(name: string, reason: string, message: RegExp): Promise<void> {
    const t0 = Date.now();
    const ev = await until(`a ${reason} event on ${name}`, async () => (await eventsOf(name)).find((e) => e.reason === reason), 120_000, 1000).catch((e: unknown) => {
      throw new Error(`${String(e)}\noperator log:\n${log.join('').slice(-3000)}`);
    });
    const tookS = (Date.now() - t0) / 1000;
    console.log(`${name}: ${reason} after ${tookS.toFixed(0)} s: ${ev.message}`);
    expect(ev.type).toBe('Warning');
    expect(ev.message).toMatch(message);
    const r = await until(`${name} to finish`, async () => {
      const x = await get(name);
      return x.status?.phase === 'Failed' || x.status?.phase === 'Succeeded' ? x : undefined;
    }, 60_000, 1000);
    expect(r.status!.phase).toBe('Failed');
    const tests = r.status!.tests!.filter((t) => t.id.startsWith('5.'));
    expect(tests.length).toBeGreaterThan(0);
    for (const t of tests) {
      expect(t.result).toBe('Failed');
      expect(t.reason).toMatch(new RegExp(`^${reason}: `));
    }
    // Nothing of the stopped step is left running: no Job, no pool.
    const sel = `swarmbench.io/run-uid=${r.metadata.uid}`;
    await until(`${name}'s Jobs and pools to go`, async () => {
      const jobs = (await batch.listNamespacedJob({ namespace: ns, labelSelector: sel })).items.filter((j) => !j.metadata?.deletionTimestamp);
      const deps = (await apps.listNamespacedDeployment({ namespace: ns, labelSelector: sel })).items.filter((d) => !d.metadata?.deletionTimestamp);
      return jobs.length === 0 && deps.length === 0;
    }, 60_000, 1000);
    // Nor any of its pods, the runner's included (a deleted Job's pods go with it).
    let left: string[] = [];
    await until(`${name}'s pods to go`, async () => {
      left = (await core.listNamespacedPod({ namespace: ns, labelSelector: sel })).items
        .filter((p) => !['Succeeded', 'Failed'].includes(p.status?.phase ?? ''))
        .map((p) => `${p.metadata?.name} ${p.status?.phase}${p.metadata?.deletionTimestamp ? ' deleting' : ''} owners=${JSON.stringify(p.metadata?.ownerReferences?.map((o) => `${o.kind}/${o.name}/${o.uid}`))} finalizers=${JSON.stringify(p.metadata?.finalizers)}`);
      return left.length === 0 ? true : undefined;
    }, 60_000, 1000).catch(async (e: unknown) => {
      const jobs = (await batch.listNamespacedJob({ namespace: ns })).items.map((j) => `${j.metadata?.name} ${j.metadata?.uid} deleting=${!!j.metadata?.deletionTimestamp}`);
      throw new Error(`${String(e)}: ${left.join('; ')}; jobs: ${jobs.join(', ')}\noperator log:\n${log.join('').slice(-3000)}`);
    });
  }

  it('an agent image that does not exist, and agents no node can take: each step stops within 2 minutes with the reason, leaving nothing behind', async () => {
    expect(kubectl(['apply', '-f', '-'], run('noimage', 'image: "registry.invalid/agent:1"')).code).toBe(0);
    expect(kubectl(['apply', '-f', '-'], run('toobig', 'resources: {requests: {cpu: "32"}}')).code).toBe(0);
    await Promise.all([
      expectStopped('noimage', 'ImagePullBackOff', /step integration: ImagePullBackOff: pod noimage-\S+ \(step integration\): container agent: (ErrImagePull|ImagePullBackOff): image "registry\.invalid\/agent:1" cannot be pulled \(.+\) \(for \d+ s\); the step was stopped/),
      expectStopped('toobig', 'Unschedulable', /step integration: Unschedulable: pod toobig-\S+ \(step integration\) cannot be scheduled: 0\/3 nodes are available: .*Insufficient cpu/),
    ]);
    const cond = (await get('noimage')).status!.conditions!.find((c) => c.type === 'Progressing');
    expect(cond).toBeDefined();
  }, 300_000);

  it('a quota that refuses the agents\' pods: the step stops within 2 minutes with the quota\'s message (FailedCreate), leaving nothing behind', async () => {
    // One pod in the namespace: the runner's. The pool's ReplicaSet is refused every agent. The
    // earlier tests' pods must be gone first: the quota counts every pod not yet ended.
    let live: string[] = [];
    await until('no pod of the earlier tests to count against the quota', async () => {
      live = (await core.listNamespacedPod({ namespace: ns })).items
        .filter((p) => p.metadata?.deletionTimestamp || !['Succeeded', 'Failed'].includes(p.status?.phase ?? ''))
        .map((p) => `${p.metadata?.name} ${p.status?.phase}${p.metadata?.deletionTimestamp ? ' deleting' : ''}`);
      return live.length === 0 ? true : undefined;
    }, 120_000, 1000).catch((e: unknown) => {
      throw new Error(`${String(e)}: ${live.join(', ')}`);
    });
    const quota = `apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: one-pod, namespace: ${ns}}\nspec: {hard: {pods: "1"}}\n`;
    expect(kubectl(['apply', '-f', '-'], quota).code).toBe(0);
    try {
      expect(kubectl(['apply', '-f', '-'], run('quota', 'capacity: 64')).code).toBe(0);
      await expectStopped('quota', 'FailedCreate', /step integration: FailedCreate: the agent pool quota-\S+ \(step integration\) cannot create its pods: .*exceeded quota: one-pod.* \(for \d+ s\); the step was stopped/);
      // No pod at all: the runner Job's own pod is refused (the Job controller's FailedCreate Events).
      expect(kubectl(['apply', '-f', '-'], quota.replace('pods: "1"', 'pods: "0"')).code).toBe(0);
      expect(kubectl(['apply', '-f', '-'], run('quotajob', 'capacity: 64')).code).toBe(0);
      await expectStopped('quotajob', 'FailedCreate', /step integration: FailedCreate: the runner Job quotajob-\S+ \(step integration\) cannot create its pod: Error creating: .*exceeded quota: one-pod.* \(for \d+ s\); the step was stopped/);
    } finally {
      kubectl(['delete', 'resourcequota', 'one-pod', '-n', ns]);
    }
  }, 300_000);

  it('a runner over its memory limit: the step fails as OOMKilled with the limit, every try, and leaves no pool', async () => {
    // The GPU step's runner gets spec.gpu.resources; the limit is enforced in runc's memory cgroup.
    const yaml =
      `apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: oom, namespace: ${ns}}\n` +
      `spec:\n  mode: quick\n  categories: [gpu]\n  gpu: {resources: {limits: {nvidia.com/gpu: 1, memory: 96Mi}}}\n  cleanup: {policy: Never}\n`;
    expect(kubectl(['apply', '-f', '-'], yaml).code).toBe(0);
    const ev = await until('a StepFailed event on oom', async () => (await eventsOf('oom')).find((e) => e.reason === 'StepFailed'), 180_000, 1000).catch((e: unknown) => {
      throw new Error(`${String(e)}\noperator log:\n${log.join('').slice(-3000)}`);
    });
    console.log(`oom: ${ev.message}`);
    expect(ev.message).toMatch(/container runner was OOMKilled at its memory limit of 96Mi \(exit code 137\)/);
    const r = await until('oom to finish', async () => {
      const x = await get('oom');
      return x.status?.phase === 'Failed' || x.status?.phase === 'Succeeded' ? x : undefined;
    }, 60_000, 1000);
    expect(r.status!.phase).toBe('Failed');
    const tests = r.status!.tests!.filter((t) => t.id.startsWith('2.'));
    expect(tests.length).toBe(5);
    for (const t of tests) expect(t.reason ?? '').toMatch(/OOMKilled at its memory limit of 96Mi/);
    // Both tries (backoffLimit 1) ran and were killed by the kernel, not by anyone else.
    const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: `swarmbench.io/run-uid=${r.metadata.uid},swarmbench.io/component=runner` })).items;
    expect(pods.length).toBe(2);
    for (const p of pods) {
      const term = p.status?.containerStatuses?.[0]?.state?.terminated;
      expect(term?.reason, p.metadata?.name).toBe('OOMKilled');
      expect(term?.exitCode).toBe(137);
    }
    const deps = (await apps.listNamespacedDeployment({ namespace: ns, labelSelector: `swarmbench.io/run-uid=${r.metadata.uid}` })).items.filter((d) => !d.metadata?.deletionTimestamp);
    expect(deps).toEqual([]);
  }, 300_000);
});
