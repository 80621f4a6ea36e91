/**
 * The Kubernetes platform and the runner as a Job, against the real API server of the test
 * cluster (`npm run cluster:up`): the BenchmarkRun CRD applied with kubectl, a namespace, a
 * BenchmarkRun as the owner, the runner's ServiceAccount with the Role of
 * docs/kubernetes-platform.md; then
 * (a) KubernetesPlatform used from here (admin kubeconfig): a pool of 3 spread over the two CPU
 *     nodes (never the GPU node), every agent's membership view holding 3; scaleTo(5) and back to 2;
 *     a killed agent replaced (autoHeal) or not (autoHeal false); close() removes everything;
 *     5 agents per pod (`agentsPerPod`): 1 → 12 → 7 → 10 agents in ceil(n/5) pods, every view
 *     holding every agent;
 * (b) a Job of the project image running `swarmbench runner --step integration --platform
 *     kubernetes --result-configmap …` with the operator's env contract, as the runner's service
 *     account: Complete, its result ConfigMap valid against the StepResult schema, 3 measurements
 *     without failures;
 * (c) deleting the BenchmarkRun garbage-collects the pool Deployments, their pods and the result
 *     ConfigMap.
 *
 * Skipped (reason in the suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, RbacAuthorizationV1Api,
  type V1Pod, type V1PolicyRule,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KUBECONFIG, POD_CIDR, TOOLS_BIN } from './lib/config.ts';
import { AgentClient } from '../../src/agent/client.ts';
import { StepResult } from '../../src/api/schema.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { KubernetesPlatform } from '../../src/platform/kubernetes/index.ts';
import { RUNNER_POOL_RULES } from '../../src/platform/kubernetes/rbac.ts';

import { stepResultName } from '../../src/kube/names.ts';
import { clusterNotUp, createOwnerRun, prepareNamespace, until as untilBase } from './lib/itest.ts';

// The platform used without the operator: the pool rules, plus creating ConfigMaps (the operator
// would have created the seeds and result ConfigMaps beforehand).
const RUNNER_ROLE_RULES = [...RUNNER_POOL_RULES, { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'update', 'patch'] }];
// The first two octets of the pods' IPs (from SWARMBENCH_POD_CIDR), escaped for a RegExp.
const POD_IP_PREFIX = POD_CIDR.split('.').slice(0, 2).join('\\.');

const execp = promisify(execFile);

const notUp = await clusterNotUp();
if (notUp && process.env.SWARMBENCH_REQUIRE_CLUSTER === '1') throw new Error(`the test cluster is not up (${notUp}); run npm run cluster:up`);
if (notUp) process.stderr.write(`kube-platform cluster tests SKIPPED: the test cluster is not up (${notUp})\n`);
const title = notUp ? `kubernetes platform [SKIPPED: cluster not up: ${notUp}; run npm run cluster:up]` : 'kubernetes platform and the runner as a Job';

class Fatal extends Error {}
/** Polls until fn returns a value; a Fatal thrown by fn ends the wait at once. */
/** The shared poll-until-deadline, with this file's defaults (60_000 ms, every 100 ms). */
const until = <T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> =>
  untilBase(what, fn, timeoutMs, everyMs);

const GROUP = 'swarmbench.io';
const VERSION = 'v1alpha1';
const PLURAL = 'benchmarkruns';
const IMAGE = 'ghcr.io/swarmbench/swarmbench:dev';
const CPU_NODES = ['swarmbench-cpu-1', 'swarmbench-cpu-2'];
const quiet = { info: () => {}, warn: () => {}, debug: () => {} };

describe.skipIf(!!notUp)(title, () => {
  const kc = new KubeConfig();
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let batch: BatchV1Api;
  let custom: CustomObjectsApi;
  const ns = `kplat-${Date.now().toString(36)}`;
  const runName = 'kp-run';
  let runUid = '';
  const agents = new AgentClient({ timeoutMs: 3000 });
  const platforms: KubernetesPlatform[] = [];

  const podsOf = async (selector: string): Promise<V1Pod[]> => (await core.listNamespacedPod({ namespace: ns, labelSelector: selector })).items;

  beforeAll(async () => {
    kc.loadFromFile(KUBECONFIG);
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    batch = kc.makeApiClient(BatchV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    prepareNamespace(ns);
    runUid = await createOwnerRun(ns, runName, { mode: 'quick', categories: ['integration'] });
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'swarmbench-runner' } } });
    await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: 'swarmbench-runner' }, rules: RUNNER_ROLE_RULES as V1PolicyRule[] } });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'swarmbench-runner' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'swarmbench-runner' },
        subjects: [{ kind: 'ServiceAccount', name: 'swarmbench-runner', namespace: ns }],
      },
    });
  });

  afterAll(async () => {
    for (const p of platforms) await p.close().catch(() => undefined);
    agents.close();
    await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  const platform = (step: string): KubernetesPlatform => {
    const p = new KubernetesPlatform({ kc, run: { namespace: ns, name: runName, uid: runUid }, attempt: 1, step, agentImage: IMAGE, log: quiet, readyTimeoutMs: 90_000 });
    platforms.push(p);
    return p;
  };

  const paramsCm = `${runName}-a1-params`;
  const owner = () => [{ apiVersion: `${GROUP}/${VERSION}`, kind: 'BenchmarkRun', name: runName, uid: runUid, controller: true, blockOwnerDeletion: true }];
  /** The step Job as the operator builds it (the contract of docs/kubernetes-platform.md). */
  const createRunnerJob = async (jobName: string, resultCm: string, paramsFrom: string): Promise<void> => {
    const field = (fieldPath: string) => ({ valueFrom: { fieldRef: { fieldPath } } });
    await batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: { name: jobName, ownerReferences: owner() },
        spec: {
          backoffLimit: 0,
          template: {
            spec: {
              restartPolicy: 'Never',
              serviceAccountName: 'swarmbench-runner',
              containers: [{
                name: 'runner',
                image: IMAGE,
                command: ['swarmbench'],
                args: ['runner', '--step', 'integration', '--platform', 'kubernetes', '--result-configmap', resultCm, '--attempt', '1'],
                env: [
                  { name: 'SWARMBENCH_PARAMS', valueFrom: { configMapKeyRef: { name: paramsFrom, key: 'params.json' } } },
                  { name: 'SWARMBENCH_RUN_NAME', value: runName },
                  { name: 'SWARMBENCH_RUN_UID', value: runUid },
                  { name: 'SWARMBENCH_NAMESPACE', ...field('metadata.namespace') },
                  { name: 'SWARMBENCH_IMAGE', value: IMAGE },
                  { name: 'POD_NAME', ...field('metadata.name') },
                  { name: 'NODE_NAME', ...field('spec.nodeName') },
                ],
              }],
            },
          },
        },
      },
    });
  };

  /** Every agent's membership view holds exactly the pool's agents as alive. */
  const membershipIs = async (urls: string[], ids: string[]): Promise<boolean> => {
    for (const u of urls) {
      const r = await agents.members(u);
      const alive = r.body.members.filter((m) => m.status === 'alive').map((m) => m.id).sort();
      if (JSON.stringify(alive) !== JSON.stringify([...ids].sort())) return false;
    }
    return true;
  };

  it('(a) a pool of agents as a Deployment: spread, joined, scaled, healed, closed', async () => {
    const p = platform('distributed');
    const t0 = Date.now();
    const pool = await p.createPool({ name: 'coord', size: 3, capacity: 16, agentsPerProcess: 1, autoHeal: true, gossipIntervalMs: 100, failureTimeoutMs: 1500 });
    const formed = Date.now() - t0;
    let list = pool.agents();
    expect(list).toHaveLength(3);
    const dep = await apps.readNamespacedDeployment({ namespace: ns, name: `${runName}-a1-distributed-coord` });
    expect(dep.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'BenchmarkRun', name: runName, uid: runUid, controller: true, blockOwnerDeletion: true });
    expect(dep.metadata?.labels).toMatchObject({ 'swarmbench.io/run': runName, 'swarmbench.io/attempt': '1', 'swarmbench.io/category': 'distributed', 'swarmbench.io/pool': 'coord' });
    // Spread over both CPU nodes, never on the GPU node.
    expect(new Set(list.map((a) => a.node))).toEqual(new Set(CPU_NODES));
    // Agent id = pod name, URL on the pod IP, no host pid (not the platform's to know: 0).
    for (const a of list) {
      expect(a.url).toMatch(new RegExp(`^http://${POD_IP_PREFIX}\\.\\d+\\.\\d+:8080$`));
      expect(a.pid).toBe(0);
      const info = await agents.info(a.url);
      expect(info.body.id).toBe(a.id);
    }
    await until('every membership view holds the 3 agents', () => membershipIs(list.map((a) => a.url), list.map((a) => a.id)), 20_000);
    process.stderr.write(`kube-platform: pool of 3 formed in ${formed} ms\n`);

    const t1 = Date.now();
    list = await pool.scaleTo(5);
    process.stderr.write(`kube-platform: 3 -> 5 in ${Date.now() - t1} ms\n`);
    expect(list).toHaveLength(5);
    expect(list.every((a) => CPU_NODES.includes(a.node))).toBe(true);
    const perNode = CPU_NODES.map((n) => list.filter((a) => a.node === n).length);
    expect(Math.min(...perNode)).toBeGreaterThanOrEqual(2);
    await until('every membership view holds the 5 agents', () => membershipIs(list.map((a) => a.url), list.map((a) => a.id)), 20_000);

    list = await pool.scaleTo(2);
    expect(list).toHaveLength(2);
    expect(await podsOf(`swarmbench.io/pool=coord`)).toHaveLength(2);
    await until('every membership view holds the 2 agents', () => membershipIs(list.map((a) => a.url), list.map((a) => a.id)), 20_000);

    // kill with autoHeal: the pod is deleted at once, the Deployment replaces it (a new id).
    const victim = list[0]!;
    await pool.kill(victim.id);
    expect(pool.agents().map((a) => a.id)).not.toContain(victim.id);
    const healed = await until('a replacement agent', () => {
      const now = pool.agents();
      return now.length === 2 && !now.some((a) => a.id === victim.id) ? now : undefined;
    }, 60_000);
    await expect(core.readNamespacedPod({ namespace: ns, name: victim.id })).rejects.toMatchObject({ code: 404 });
    await until('the replacement joined the survivor', () => membershipIs(healed.map((a) => a.url), healed.map((a) => a.id)), 20_000);
    const st = await pool.stats();
    expect(st).toHaveLength(2);
    for (const s of st) expect(s.rssBytes).toBeGreaterThan(10 * 2 ** 20);

    await pool.close();
    expect(await podsOf('swarmbench.io/pool=coord')).toHaveLength(0);
    await expect(apps.readNamespacedDeployment({ namespace: ns, name: `${runName}-a1-distributed-coord` })).rejects.toMatchObject({ code: 404 });
    const seeds = await core.readNamespacedConfigMap({ namespace: ns, name: `${runName}-a1-distributed-seeds` });
    expect(Object.keys(seeds.data ?? {})).not.toContain('coord'); // the pool's key is removed on close
  });

  it('(a) without autoHeal a killed agent is not replaced', async () => {
    const p = platform('stress');
    const pool = await p.createPool({ name: 'noheal', size: 2, capacity: 16, agentsPerProcess: 1, autoHeal: false });
    const [victim, survivor] = pool.agents();
    await pool.kill(victim!.id);
    const dep = await apps.readNamespacedDeployment({ namespace: ns, name: `${runName}-a1-stress-noheal` });
    expect(dep.spec?.replicas).toBe(1);
    await until('one pod left, the survivor', async () => {
      const pods = await podsOf('swarmbench.io/pool=noheal');
      return pods.length === 1 && pods[0]!.metadata?.name === survivor!.id;
    }, 30_000);
    expect(pool.agents().map((a) => a.id)).toEqual([survivor!.id]);
    await p.close();
    expect(await podsOf('swarmbench.io/pool=noheal')).toHaveLength(0);
  });

  it('(a) several agents per pod: a pool of 5 per pod scaled 1 → 12 → 7 → 10, every view holding every agent, closed', async () => {
    const p = new KubernetesPlatform({ kc, run: { namespace: ns, name: runName, uid: runUid }, attempt: 1, step: 'scalability', agentImage: IMAGE, agentsPerPod: 5, log: quiet, readyTimeoutMs: 90_000 });
    platforms.push(p);
    const sel = 'swarmbench.io/step=scalability,swarmbench.io/pool=multi';
    const t0 = Date.now();
    const pool = await p.createPool({ name: 'multi', size: 1, capacity: 16, agentsPerProcess: 25, gossipIntervalMs: 100, failureTimeoutMs: 1500 });
    let list = pool.agents();
    expect(list).toHaveLength(1);
    process.stderr.write(`kube-platform: a pool of 1 (5 per pod) formed in ${Date.now() - t0} ms\n`);
    for (const n of [12, 7, 10]) {
      const t1 = Date.now();
      list = await pool.scaleTo(n);
      process.stderr.write(`kube-platform: 5 per pod, -> ${n} in ${Date.now() - t1} ms\n`);
      expect(list).toHaveLength(n);
      expect(new Set(list.map((a) => a.id)).size).toBe(n);
      expect(new Set(list.map((a) => a.url)).size).toBe(n);
      for (const a of list) expect(a.url).toMatch(new RegExp(`^http://${POD_IP_PREFIX}\\.\\d+\\.\\d+:80(8\\d|9\\d)$`));
      const info = await agents.info(list.at(-1)!.url);
      expect(info.body.id).toBe(list.at(-1)!.id);
      await until(`every membership view holds the ${n} agents`, () => membershipIs(list.map((a) => a.url), list.map((a) => a.id)), 60_000);
      await until(`ceil(${n}/5) pods`, async () => (await podsOf(sel)).length === Math.ceil(n / 5), 30_000);
    }
    await expect(pool.kill(list[0]!.id)).rejects.toThrow(/hosts 5 agents per pod/);
    const st = await pool.stats();
    expect(st.map((s) => s.agents)).toEqual([5, 5]);
    await pool.close();
    expect(await podsOf(sel)).toHaveLength(0);
    expect((await apps.listNamespacedDeployment({ namespace: ns, labelSelector: sel })).items).toHaveLength(0);
  }, 150_000);

  it('(b) a Job of the project image runs the integration step as the runner service account and writes its result ConfigMap', async () => {
    const params = resolveParams({ mode: 'quick', trials: 3, agents: { poolSize: 3 } }, ['integration']);
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: paramsCm, ownerReferences: owner() }, data: { 'params.json': JSON.stringify(params) } } });
    const resultCm = stepResultName(runName, 1, 'integration');
    const jobName = `${runName}-a1-integration`;
    const t0 = Date.now();
    await createRunnerJob(jobName, resultCm, paramsCm);
    let sawPool = false;
    await until('the Job Complete', async () => {
      if (!sawPool) sawPool = (await podsOf('swarmbench.io/step=integration,swarmbench.io/component=agent')).length > 0;
      const j = await batch.readNamespacedJob({ namespace: ns, name: jobName });
      const failed = j.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
      if (failed) {
        const logs = await execp(join(TOOLS_BIN, 'kubectl'), ['logs', '-n', ns, `job/${jobName}`, '--tail', '40'], { env: { ...process.env, KUBECONFIG } }).catch((e: Error) => ({ stdout: e.message }));
        throw new Fatal(`Job failed: ${failed.reason}: ${failed.message}\n${logs.stdout}`);
      }
      return j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True');
    }, 200_000, 250);
    process.stderr.write(`kube-platform: integration Job complete in ${Date.now() - t0} ms\n`);
    expect(sawPool).toBe(true);

    const cm = await core.readNamespacedConfigMap({ namespace: ns, name: resultCm });
    expect(cm.metadata?.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'swarmbench', 'swarmbench.io/run': runName, 'swarmbench.io/attempt': '1',
      'swarmbench.io/category': 'integration', 'swarmbench.io/component': 'step-result',
    });
    expect(cm.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'BenchmarkRun', uid: runUid, controller: true });
    const result = StepResult.parse(JSON.parse(cm.data!['result.json']!));
    expect(result.error).toBeUndefined();
    expect(result.step).toBe('integration');
    expect(result.attempt).toBe(1);
    expect(CPU_NODES).toContain(result.node);
    expect(result.measurements.map((m) => m.id)).toEqual(['5.1', '5.2', '5.3']);
    for (const m of result.measurements) {
      expect(m.fail, `${m.id}: ${m.fail}`).toBeUndefined();
      expect(m.skip).toBeUndefined();
      expect(m.value).not.toBeNull();
    }
    process.stderr.write(`kube-platform: integration results ${result.measurements.map((m) => `${m.id}=${Number(m.value).toFixed(1)}`).join(' ')}\n`);
    // The runner closed its pool: nothing of it is left.
    expect(await podsOf('swarmbench.io/step=integration,swarmbench.io/component=agent')).toHaveLength(0);
  }, 240_000);

  it('(b) a runner that cannot write its result exits non-zero and says why', async () => {
    // An invalid ConfigMap name: the API server refuses it (422) after the step ran.
    const jobName = `${runName}-a1-badresult`;
    await createRunnerJob(jobName, 'Not_A_Valid_Name', paramsCm);
    const pod = await until('the Job Failed', async () => {
      const j = await batch.readNamespacedJob({ namespace: ns, name: jobName });
      if (j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True')) throw new Fatal('the Job completed');
      if (!j.status?.conditions?.some((c) => c.type === 'Failed' && c.status === 'True')) return undefined;
      return (await podsOf(`job-name=${jobName}`))[0];
    }, 200_000, 250);
    const term = pod.status?.containerStatuses?.[0]?.state?.terminated;
    expect(term?.exitCode).toBe(1);
    const logs = await execp(join(TOOLS_BIN, 'kubectl'), ['logs', '-n', ns, pod.metadata!.name!], { env: { ...process.env, KUBECONFIG } });
    expect(logs.stderr + logs.stdout).toMatch(/swarmbench runner: cannot write the step result to ConfigMap .*Not_A_Valid_Name: HTTP 422/);
  }, 240_000);

  it('(c) deleting the BenchmarkRun garbage-collects its pools, their pods and the result ConfigMap', async () => {
    const p = platform('gc');
    const pool = await p.createPool({ name: 'left', size: 2, capacity: 16, agentsPerProcess: 1 });
    expect(pool.agents()).toHaveLength(2);
    const sel = 'swarmbench.io/run=' + runName;
    expect((await apps.listNamespacedDeployment({ namespace: ns, labelSelector: sel })).items.length).toBeGreaterThan(0);
    await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, name: runName });
    await until('the pool Deployments gone', async () => (await apps.listNamespacedDeployment({ namespace: ns, labelSelector: sel })).items.length === 0, 60_000);
    await until('the pool pods gone', async () => (await podsOf(sel)).length === 0, 60_000);
    await until('the result and seeds ConfigMaps gone', async () => (await core.listNamespacedConfigMap({ namespace: ns, labelSelector: sel })).items.length === 0, 60_000);
    await until('the Job gone', async () => (await batch.listNamespacedJob({ namespace: ns })).items.length === 0, 60_000);
    await expect(core.readNamespacedConfigMap({ namespace: ns, name: stepResultName(runName, 1, 'integration') })).rejects.toMatchObject({ code: 404 });
    await p.close(); // nothing left to delete: idempotent against what GC removed
  }, 120_000);
});
