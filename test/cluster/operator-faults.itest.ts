/**
 * A step's runner dying or stopped on the real control plane, one run each (issue 13):
 *
 * - SIGKILLed mid-step, its agent pool up: the Job retries the step (backoffLimit 1); the retry's
 *   runner finds the dead try's pool and removes it before its own first pool
 *   (platform/kubernetes/index.ts `removeLeftovers`), says so in the step result
 *   (`earlierTry.agentPods`), and the step's tests get their results. None of the dead try's
 *   Deployments is left once the step is done (the run's cleanup is `Never`, so nothing else
 *   would have removed them), and the next step starts with no pool of the killed step.
 * - SIGTERMed mid-step (the run suspended once 6.1 is done: the operator suspends the Job, whose
 *   controller stops the runner with its grace period, while its agents still answer): the runner
 *   writes the measurements it finished and the interruption into the step result before it
 *   closes its pools (runner/cli.ts); the operator deletes the Job and what is left once the runner
 *   has stopped (operator/cleanup.ts `sweepPools`), and nothing is left running.
 * - Its node removed mid-step (its kubelet and its pods' processes SIGKILLed, lib/nodes.ts
 *   `removeNode`; the test deletes the Node as a cloud would): the pod GC deletes the node's pods, the operator tells
 *   the try's end as NodeLost (operator/tries.ts), the Job retries the step on another node, and
 *   the step gets its results; the node joins again afterwards for the tests that follow.
 *
 * Skipped (reason in the suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import type { ChildProcess } from 'node:child_process';
import type { AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StepResult } from '../../src/api/schema.ts';
import { stepResultName } from '../../src/kube/names.ts';
import { containerHostPid, removeNode, restoreNode } from './lib/nodes.ts';
import { adminClients, clusterGate, kubectl, prepareNamespace, readRun, startOperator, until } from './lib/itest.ts';

const gate = await clusterGate('runner faults');

const ns = `op-faults-${Date.now().toString(36)}`;
const manifest = (name: string, categories: string, extra = '') =>
  `apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: ${name}, namespace: ${ns}}\n` +
  `spec:\n  mode: quick\n  categories: [${categories}]\n  trials: 3\n  agents: {poolSize: 3}\n  cleanup: {policy: Never}\n${extra}`;

interface Run {
  metadata: { uid: string };
  status?: { phase?: string; attempt?: number; tests?: { id: string; result: string; reason?: string }[] };
}

/** The host pid of a pod's running container (as the container runtime says it). */
function pidOf(p: V1Pod): number | undefined {
  return p.status?.containerStatuses?.some((c) => c.state?.running) ? containerHostPid(p) : undefined;
}

describe.skipIf(!!gate.notUp)(gate.title, () => {
  let core: CoreV1Api;
  let batch: BatchV1Api;
  let apps: AppsV1Api;
  let custom: CustomObjectsApi;
  let op: ChildProcess | undefined;
  let log: string[] = [];

  const get = (name: string): Promise<Run> => readRun<Run>(custom, ns, name);
  const finished = (name: string, ms: number) =>
    until(`${name} to finish`, async () => {
      const x = await get(name);
      return ['Succeeded', 'Failed', 'Cancelled'].includes(x.status?.phase ?? '') ? x : undefined;
    }, ms, 1000).catch((e: unknown) => {
      throw new Error(`${String(e)}\noperator log:\n${log.join('').slice(-3000)}`);
    });
  const stepResult = async (run: string, step: string): Promise<StepResult | undefined> => {
    const cm = await core.readNamespacedConfigMap({ namespace: ns, name: stepResultName(run, 1, step) });
    const json = cm.data?.['result.json'];
    return json ? StepResult.parse(JSON.parse(json)) : undefined;
  };
  const eventsOf = async (name: string) => (await core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` })).items;
  const pods = async (sel: string) => (await core.listNamespacedPod({ namespace: ns, labelSelector: sel })).items.filter((p) => !p.metadata?.deletionTimestamp);
  /** The step's runner pod once its pool's 3 agents run (its process id known). */
  const runnerWithPool = (step: string): Promise<V1Pod> =>
    until('the integration pool to run', async () => {
      const agents = (await pods(`${step},swarmbench.io/component=agent`)).filter((p) => p.status?.phase === 'Running');
      if (agents.length < 3) return undefined;
      return (await pods(`${step},swarmbench.io/component=runner`)).find((p) => pidOf(p) !== undefined);
    }, 180_000, 500);
  const deployments = async (sel: string) => (await apps.listNamespacedDeployment({ namespace: ns, labelSelector: sel })).items.filter((d) => !d.metadata?.deletionTimestamp);

  beforeAll(async () => {
    ({ core, batch, apps, custom } = adminClients());
    prepareNamespace(ns);
    ({ proc: op, log } = startOperator(ns));
  });

  afterAll(async () => {
    op?.kill('SIGKILL');
    await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('a runner SIGKILLed mid-step: the retry removes its pool first, the step gets its results, and nothing of the dead try is left', async () => {
    expect(kubectl(['apply', '-f', '-'], manifest('killed', 'integration, monitoring')).code).toBe(0);
    const uid = (await until('the run to start', async () => (await get('killed')).metadata.uid || undefined, 30_000)) as string;
    const step = `swarmbench.io/run-uid=${uid},swarmbench.io/step=integration`;
    const runner = await runnerWithPool(step);
    const deadTry = (await deployments(step)).map((d) => d.metadata!.uid!);
    expect(deadTry.length).toBeGreaterThan(0);
    process.kill(pidOf(runner)!, 'SIGKILL');
    console.log(`killed runner ${runner.metadata!.name} (pid ${pidOf(runner)}), its pools: ${deadTry.length}`);
    // The operator tells why the try ended (operator/tries.ts), once, while the Job retries.
    const told = await until('a RunnerFailed event', async () => (await eventsOf('killed')).find((e) => e.reason === 'RunnerFailed'), 120_000, 1000);
    expect(told.message).toMatch(new RegExp(`a try of the runner ended: pod ${runner.metadata!.name} \\(step integration\\): container runner exited with code 137.*; the Job retries the step`));

    // When the next step's runner exists, no pool of the killed step is left.
    await until('the monitoring step to start', async () => (await pods(`swarmbench.io/run-uid=${uid},swarmbench.io/step=monitoring,swarmbench.io/component=runner`)).length > 0 || undefined, 420_000, 1000);
    expect((await deployments(step)).map((d) => d.metadata!.uid)).toEqual([]);

    const r = await finished('killed', 420_000);
    const job = (await batch.listNamespacedJob({ namespace: ns, labelSelector: `${step},swarmbench.io/component=runner` })).items[0]!;
    expect(job.status?.failed).toBe(1);
    expect(job.status?.succeeded).toBe(1);
    const res = (await stepResult('killed', 'integration'))!;
    expect(res.error).toBeUndefined();
    expect(res.earlierTry?.agentPods).toBeGreaterThanOrEqual(3);
    const integration = r.status!.tests!.filter((t) => t.id.startsWith('5.'));
    expect(integration.length).toBeGreaterThan(0);
    for (const t of integration) expect(t.reason ?? '', t.id).not.toMatch(/interrupted|no result|BackoffLimitExceeded/);
    expect(r.status!.tests!.some((t) => t.id.startsWith('3.'))).toBe(true);
    // None of the dead try's Deployments exists (the cleanup policy is Never: only the retry removed them).
    const left = (await apps.listNamespacedDeployment({ namespace: ns })).items.map((d) => d.metadata!.uid);
    for (const u of deadTry) expect(left).not.toContain(u);
  }, 900_000);

  it('a runner SIGTERMed mid-step (the run suspended): its finished measurements and the interruption are written, nothing is left running', async () => {
    expect(kubectl(['apply', '-f', '-'], manifest('stopped', 'stress', '  stress: {sustainedAgents: 4, sustainedDuration: 10s}\n')).code).toBe(0);
    const uid = (await until('the run to start', async () => (await get('stopped')).metadata.uid || undefined, 30_000)) as string;
    const step = `swarmbench.io/run-uid=${uid},swarmbench.io/step=stress`;
    // The stop comes once 6.1 is done and 6.2 has started (the runner's log says so).
    const runner = await until('the runner', async () => (await pods(`${step},swarmbench.io/component=runner`))[0], 120_000, 500);
    await until('6.2 to start', async () => {
      const text = await core.readNamespacedPodLog({ namespace: ns, name: runner.metadata!.name!, container: 'runner' }).catch(() => '');
      return text.includes('"detail":"6.2') || undefined;
    }, 240_000, 1000);
    expect(kubectl(['patch', 'benchmarkrun', 'stopped', '-n', ns, '--type', 'merge', '-p', '{"spec":{"suspend":true}}']).code).toBe(0);
    const r = await finished('stopped', 120_000);
    expect(r.status!.phase).toBe('Cancelled');
    const res = await until('the interrupted result', async () => {
      const x = await stepResult('stopped', 'stress');
      return x?.error ? x : undefined;
    }, 60_000, 1000);
    expect(res.error).toMatch(/^step stress was interrupted \(received SIGTERM\): \d+ of \d+ tests finished/);
    console.log(`interrupted result: ${res.error}; measurements: ${res.measurements.map((m) => m.id).join(', ')}`);
    // 6.1 finished before the stop: its measurement is in the result, with its samples.
    expect(res.measurements.map((m) => m.id)).toContain('6.1');
    expect(res.measurements.find((m) => m.id === '6.1')!.samples).toBeGreaterThan(0);
    // The error counts exactly the measurements written.
    expect(Number(/: (\d+) of/.exec(res.error!)![1])).toBe(res.measurements.length);
    await until('the pods and pools to go', async () => ((await pods(`swarmbench.io/run-uid=${uid}`)).length === 0 && (await deployments(`swarmbench.io/run-uid=${uid}`)).length === 0) || undefined, 120_000, 1000);
  }, 400_000);
  it('a node removed mid-step (its machine gone, its Node deleted): the try is told as NodeLost, the step is retried elsewhere and gets its results, nothing is left on the node', async () => {
    expect(kubectl(['apply', '-f', '-'], manifest('nodelost', 'integration')).code).toBe(0);
    const uid = (await until('the run to start', async () => (await get('nodelost')).metadata.uid || undefined, 30_000)) as string;
    const step = `swarmbench.io/run-uid=${uid},swarmbench.io/step=integration`;
    const runner = await runnerWithPool(step);
    const node = runner.spec!.nodeName!;
    const onNode = async () => (await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` })).items;
    try {
      // The machine goes (its pods die with it, nothing is reported), then the cloud deletes its Node.
      await removeNode(node);
      expect(kubectl(['delete', 'node', node, '--wait=false']).code).toBe(0);
      const t0 = Date.now();
      console.log(`removed node ${node} under runner ${runner.metadata!.name}`);
      const told = await until('a NodeLost event', async () => (await eventsOf('nodelost')).find((e) => e.reason === 'NodeLost'), 240_000, 1000).catch((e: unknown) => {
        throw new Error(`${String(e)}\noperator log:\n${log.join('').slice(-3000)}`);
      });
      console.log(`NodeLost told after ${Math.round((Date.now() - t0) / 1000)} s: ${told.message}`);
      expect(told.message).toMatch(new RegExp(`a try of the runner ended: pod ${runner.metadata!.name} \\(step integration\\): its node ${node} was lost: .+; the Job retries the step`));
      const r = await finished('nodelost', 600_000);
      expect(r.status!.phase).toBe('Succeeded');
      const integration = r.status!.tests!.filter((t) => t.id.startsWith('5.'));
      expect(integration.length).toBeGreaterThan(0);
      for (const t of integration) expect(t.reason ?? '', t.id).not.toMatch(/interrupted|no result|BackoffLimitExceeded/);
      const res = (await stepResult('nodelost', 'integration'))!;
      expect(res.error).toBeUndefined();
      expect(res.node).not.toBe(node);
      // Nothing of the run runs elsewhere, and nothing at all is bound to the removed node. The
      // run can finish (its result written) before the kubelet reports its runner's exit, so the
      // retry's pod is given a minute to end; the dead try's pod keeps its last phase (nothing
      // reports it) until the pod garbage collector removes it, which is checked next.
      let live: string[] = [];
      await until('nothing of the run running', async () => {
        live = (await core.listNamespacedPod({ namespace: ns, labelSelector: `swarmbench.io/run-uid=${uid}` })).items
          .filter((p) => p.spec?.nodeName !== node && !['Succeeded', 'Failed'].includes(p.status?.phase ?? ''))
          .map((p) => `${p.metadata?.name} ${p.status?.phase}`);
        return live.length === 0 ? true : undefined;
      }, 60_000, 1000).catch((e: unknown) => {
        throw new Error(`${String(e)}: ${live.join(', ')}`);
      });
      await until(`no pod bound to ${node}`, async () => ((await onNode()).length === 0 ? true : undefined), 120_000, 1000);
    } finally {
      // A new machine of the same name joins, once the pod GC removed every pod of the old one.
      await until(`no pod bound to ${node}`, async () => ((await onNode()).length === 0 ? true : undefined), 180_000, 1000).catch(() => undefined);
      restoreNode(node);
      await until(`${node} Ready again`, async () => {
        const n = await core.readNode({ name: node }).catch(() => undefined);
        return n?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? true : undefined;
      }, 120_000, 1000);
    }
  }, 900_000);
});
