/**
 * The chart as a user installs it, on the real control plane (issue 6):
 *
 * - `helm install` (Helm 4) into a namespace that enforces the restricted Pod Security Standard
 *   brings up two operator replicas (one leader), and `kubectl apply -f
 *   examples/benchmarkrun-quick.yaml` in another restricted namespace completes through it: all 27
 *   tests, the GPU step on the GPU node, agent pods spread over the CPU nodes, pools that grow and
 *   shrink. Every pod the chart, the operator and the runners create was admitted there.
 * - `helm upgrade` with changed values in the middle of that run rolls the operator (new pods, a
 *   new Lease holder) and the attempt goes on: still attempt 1, each step's Job created once.
 * - `kubectl auth can-i --as` proves what the operator's and a runner's ServiceAccounts may do and
 *   may not: no Secrets beyond one named token, no cluster-admin, the runner writing only its
 *   run's current ConfigMaps (a per-run Role with resourceNames).
 * - `helm uninstall` removes what it installed; the CRD, the runs and their exports stay.
 * - Watched-namespace mode: the operator may read runs only where it was told to look.
 *
 * Skipped (reason in the suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { AppsV1Api, BatchV1Api, CoordinationV1Api, CoreV1Api, CustomObjectsApi, V1Deployment } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResultDocument } from '../../src/api/schema.ts';
import { CATALOGUE } from '../../src/plan/catalogue.ts';
import { REPO_ROOT } from '../../src/paths.ts';
import { PROMETHEUS_URL, TOOLS_BIN } from './lib/config.ts';
import { VERSION } from '../../src/version.ts';
import { adminClients, clusterGate, kubeEnv, kubectl, sleep, until } from './lib/itest.ts';
import { EXPORT_FILES } from '../../src/report/exports.ts';

const gate = await clusterGate('helm chart end to end');

const suffix = Date.now().toString(36);
const sys = `sb-sys-${suffix}`;
const runs = `sb-runs-${suffix}`;
const other = `sb-other-${suffix}`;
const RELEASE = 'sbtest';
const CHART = join(REPO_ROOT, 'charts', 'swarmbench');
const TEST_VALUES = [
  '--set', 'image.repository=swarmbench', '--set', 'image.tag=dev',
  '--set', 'gpuImage.repository=swarmbench-gpu', '--set', 'gpuImage.tag=dev',
  // No leaderElection.leaseSeconds: the chart's 15 s (renewed within 10 s). A 6 s lease was lost
  // on a busy 2-core machine (a Lease update slower than its 4 s renew deadline), the replica
  // exited, and with both restarting no one reconciled for minutes. The upgrade below does not
  // wait for a lease to run out: a stopping leader releases it.
  '--set', `prometheus.url=${PROMETHEUS_URL}`,
];

function helm(args: string[], timeoutMs = 300_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(join(TOOLS_BIN, 'helm'), args, { env: kubeEnv, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `kubectl auth can-i` as a ServiceAccount: true/false (exit 0 = yes, 1 = no). */
function can(sa: string, args: string[]): boolean {
  const r = kubectl(['auth', 'can-i', '--as', sa, ...args]);
  if (r.code !== 0 && r.code !== 1) throw new Error(`kubectl auth can-i ${args.join(' ')}: ${r.stderr}`);
  return r.code === 0;
}

function restrictedNamespace(name: string): void {
  const r = kubectl(['apply', '-f', '-'], `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n  labels:\n    pod-security.kubernetes.io/enforce: restricted\n    pod-security.kubernetes.io/enforce-version: latest\n    pod-security.kubernetes.io/warn: restricted\n`);
  if (r.code !== 0) throw new Error(`namespace ${name}: ${r.stderr}`);
}

interface Run {
  status?: {
    phase?: string;
    attempt?: number;
    history?: unknown[];
    progress?: { completedSteps: number; currentStep: string };
    summary?: { total: number; passed: number; failed: number; skipped: number; verdict: string };
    tests?: { id: string; result: string; reason?: string }[];
    export?: { configMapName: string };
  };
}

describe.skipIf(!!gate.notUp)(gate.title, () => {
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let batch: BatchV1Api;
  let custom: CustomObjectsApi;
  let leases: CoordinationV1Api;
  let operatorSa = '';
  let runnerClusterRole = '';
  let leaseName = '';

  const getRun = async (name: string): Promise<Run> =>
    (await custom.getNamespacedCustomObject({ group: 'swarmbench.io', version: 'v1alpha1', namespace: runs, plural: 'benchmarkruns', name })) as Run;
  const operatorDeployment = async (): Promise<V1Deployment> => {
    const l = await apps.listNamespacedDeployment({ namespace: sys, labelSelector: `app.kubernetes.io/instance=${RELEASE}` });
    expect(l.items).toHaveLength(1);
    return l.items[0]!;
  };
  const operatorPods = async () =>
    (await core.listNamespacedPod({ namespace: sys, labelSelector: `app.kubernetes.io/instance=${RELEASE}` })).items.filter((p) => !p.metadata?.deletionTimestamp);
  /** The pod holding the Lease (an identity is `<pod name>_<pid>_<random>`). */
  const holder = async () => {
    try {
      return (await leases.readNamespacedLease({ namespace: sys, name: leaseName })).spec?.holderIdentity?.split('_')[0];
    } catch {
      return undefined;
    }
  };

  beforeAll(async () => {
    ({ core, apps, batch, custom, leases } = adminClients());
    for (const ns of [sys, runs, other]) restrictedNamespace(ns);
  });

  afterAll(async () => {
    helm(['uninstall', RELEASE, '-n', sys, '--wait', '--timeout', '60s']);
    helm(['uninstall', 'sbns', '-n', sys, '--timeout', '60s']);
    for (const ns of [sys, runs, other]) await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('watched-namespace mode: the operator may read runs only in the namespaces it watches', () => {
    const r = helm(['install', 'sbns', CHART, '-n', sys, ...TEST_VALUES, '--set', 'replicaCount=1', '--set', `watchNamespaces={${other}}`]);
    expect(r.code, r.stderr).toBe(0);
    const dep = kubectl(['get', 'deploy', '-n', sys, '-l', 'app.kubernetes.io/instance=sbns', '-o', 'jsonpath={.items[0].spec.template.spec.serviceAccountName} {.items[0].spec.template.spec.containers[0].args}']).stdout;
    const [sa, args] = [dep.split(' ')[0]!, dep.slice(dep.indexOf(' ') + 1)];
    expect(args).toContain(`--namespaces`);
    expect(args).toContain(other);
    const as = `system:serviceaccount:${sys}:${sa}`;
    expect(can(as, ['list', 'benchmarkruns.swarmbench.io', '-n', other])).toBe(true);
    expect(can(as, ['create', 'jobs.batch', '-n', other])).toBe(true);
    expect(can(as, ['list', 'benchmarkruns.swarmbench.io', '-n', runs])).toBe(false);
    expect(can(as, ['create', 'jobs.batch', '-n', runs])).toBe(false);
    expect(can(as, ['list', 'benchmarkruns.swarmbench.io', '--all-namespaces'])).toBe(false);
    expect(can(as, ['list', 'nodes'])).toBe(true); // cluster-scoped: which GPU nodes exist
    const u = helm(['uninstall', 'sbns', '-n', sys, '--wait', '--timeout', '120s']);
    expect(u.code, u.stderr).toBe(0);
    expect(kubectl(['get', 'clusterrole,clusterrolebinding,role,rolebinding', '-A', '-l', 'app.kubernetes.io/instance=sbns', '-o', 'name']).stdout.trim()).toBe('');
  }, 200_000);

  it('helm install brings up two operator replicas, one leading, in a restricted namespace', async () => {
    const r = helm(['install', RELEASE, CHART, '-n', sys, ...TEST_VALUES, '--wait', '--timeout', '180s']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/kubectl/); // NOTES.txt tells the next command
    const dep = await operatorDeployment();
    expect(dep.spec?.replicas).toBe(2);
    expect(dep.status?.readyReplicas).toBe(2);
    const c = dep.spec!.template.spec!.containers[0]!;
    expect(c.command).toEqual(['swarmbench']);
    operatorSa = dep.spec!.template.spec!.serviceAccountName!;
    const args = c.args ?? [];
    runnerClusterRole = args[args.indexOf('--runner-cluster-role') + 1]!;
    leaseName = args[args.indexOf('--lease-name') + 1]!;
    expect(runnerClusterRole).toMatch(/runner/);
    const pods = await operatorPods();
    expect(pods).toHaveLength(2);
    const h = await until('a leader', holder, 60_000);
    expect(pods.map((p) => p.metadata!.name)).toContain(h);
    // The operator runs in the image (images/build.sh) under the chart's security context,
    // enforced by containerd and runc: user 65532, a root it cannot write.
    const pod = pods[0]!.metadata!.name!;
    const id = kubectl(['exec', '-n', sys, pod, '--', 'id']);
    expect(id.code, id.stderr).toBe(0);
    expect(id.stdout.trim()).toBe('uid=65532 gid=65532 groups=65532');
    const write = kubectl(['exec', '-n', sys, pod, '--', 'sh', '-c', 'echo x > /probe']);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/Read-only file system/);
    const version = kubectl(['exec', '-n', sys, pod, '--', 'swarmbench', '--version']);
    expect(version.stdout.trim()).toBe(VERSION);
  }, 240_000);

  it('kubectl auth can-i: the operator can do what it needs and not more', () => {
    const as = `system:serviceaccount:${sys}:${operatorSa}`;
    const yes: string[][] = [
      ['list', 'benchmarkruns.swarmbench.io', '--all-namespaces'],
      ['watch', 'benchmarkruns.swarmbench.io', '-n', runs],
      ['patch', 'benchmarkruns.swarmbench.io', '--subresource=status', '-n', runs],
      // A BenchmarkSchedule's runs (operator/schedule.ts): created from its template, deleted by uid.
      ['create', 'benchmarkruns.swarmbench.io', '-n', runs],
      ['delete', 'benchmarkruns.swarmbench.io', '-n', runs],
      ['watch', 'benchmarkschedules.swarmbench.io', '-n', runs],
      ['patch', 'benchmarkschedules.swarmbench.io', '--subresource=status', '-n', runs],
      ['create', 'jobs.batch', '-n', runs],
      ['delete', 'jobs.batch', '-n', runs],
      ['create', 'configmaps', '-n', runs],
      ['create', 'serviceaccounts', '-n', runs],
      ['create', 'roles.rbac.authorization.k8s.io', '-n', runs],
      ['create', 'rolebindings.rbac.authorization.k8s.io', '-n', runs],
      ['bind', `clusterroles.rbac.authorization.k8s.io/${runnerClusterRole}`, '-n', runs],
      ['list', 'nodes'],
      ['create', 'events', '-n', runs],
      ['update', `leases.coordination.k8s.io/${leaseName}`, '-n', sys],
    ];
    const no: string[][] = [
      ['*', '*', '--all-namespaces'], // not cluster-admin
      ['get', 'secrets', '-n', runs],
      ['get', 'secrets', '-n', sys],
      ['list', 'secrets', '--all-namespaces'],
      ['create', 'pods', '-n', runs],
      ['create', 'deployments.apps', '-n', runs],
      ['delete', 'nodes'],
      ['bind', 'clusterroles.rbac.authorization.k8s.io/cluster-admin', '-n', runs],
      ['escalate', 'roles.rbac.authorization.k8s.io', '-n', runs],
      ['create', 'clusterrolebindings.rbac.authorization.k8s.io'],
      ['update', 'leases.coordination.k8s.io/someone-elses-lease', '-n', sys],
      ['create', 'leases.coordination.k8s.io', '-n', runs],
      ['delete', 'customresourcedefinitions.apiextensions.k8s.io'],
      ['update', 'benchmarkruns.swarmbench.io', '-n', runs], // the spec is the user's: status only
      ['patch', 'benchmarkruns.swarmbench.io', '-n', runs],
      ['update', 'benchmarkschedules.swarmbench.io', '-n', runs],
      ['delete', 'benchmarkschedules.swarmbench.io', '-n', runs],
    ];
    for (const a of yes) expect(can(as, a), `operator should: ${a.join(' ')}`).toBe(true);
    for (const a of no) expect(can(as, a), `operator should not: ${a.join(' ')}`).toBe(false);
  }, 120_000);

  it('the quick example completes through the chart; a mid-run helm upgrade rolls the operator and the attempt goes on', async () => {
    const podNodes = new Map<string, { node: string; category: string }>();
    const replicas = new Map<string, number[]>();
    const jobUids = new Map<string, Set<string>>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const [pods, deps, jobs] = await Promise.all([
          core.listNamespacedPod({ namespace: runs, labelSelector: 'swarmbench.io/component=agent' }).catch(() => undefined),
          apps.listNamespacedDeployment({ namespace: runs, labelSelector: 'swarmbench.io/run=quick' }).catch(() => undefined),
          batch.listNamespacedJob({ namespace: runs, labelSelector: 'swarmbench.io/run=quick' }).catch(() => undefined),
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
        for (const j of jobs?.items ?? []) {
          const s = jobUids.get(j.metadata!.name!) ?? new Set<string>();
          s.add(j.metadata!.uid!);
          jobUids.set(j.metadata!.name!, s);
        }
        await sleep(500);
      }
    })();

    const t0 = Date.now();
    const a = kubectl(['apply', '-n', runs, '-f', join(REPO_ROOT, 'examples/benchmarkrun-quick.yaml')]);
    expect(a.code, a.stderr).toBe(0);

    // While the first step runs: the runner's own ServiceAccount and what it may do.
    const step1 = await until('the first step running', async () => {
      const r = await getRun('quick');
      return r.status?.phase === 'Running' && r.status.progress?.currentStep ? r.status.progress.currentStep : undefined;
    }, 120_000, 500);
    const runner = `system:serviceaccount:${runs}:quick-runner`;
    await until('the runner ServiceAccount and its Role', () => can(runner, ['update', `configmaps/quick-a1-${step1}-result`, '-n', runs]) || undefined, 30_000, 500);
    const runnerYes: string[][] = [
      ['update', `configmaps/quick-a1-${step1}-result`, '-n', runs],
      ['patch', `configmaps/quick-a1-stress-seeds`, '-n', runs],
      ['create', 'deployments.apps', '-n', runs],
      ['patch', 'deployments.apps', '-n', runs],
      ['list', 'pods', '-n', runs],
      ['delete', 'pods', '-n', runs],
    ];
    const runnerNo: string[][] = [
      ['create', 'configmaps', '-n', runs],
      ['update', 'configmaps/quick-a1-params', '-n', runs],
      ['update', 'configmaps/quick-results', '-n', runs], // the export
      ['update', `configmaps/quick-a2-${step1}-result`, '-n', runs], // another attempt's
      ['update', `configmaps/nightly-a1-${step1}-result`, '-n', runs], // another run's
      ['update', `configmaps/quick-a1-${step1}-result`, '-n', other], // another namespace
      ['get', 'secrets', '-n', runs],
      ['create', 'pods', '-n', runs],
      ['create', 'jobs.batch', '-n', runs],
      ['patch', 'benchmarkruns.swarmbench.io', '--subresource=status', '-n', runs],
      ['create', 'roles.rbac.authorization.k8s.io', '-n', runs],
      ['*', '*', '-n', runs],
    ];
    for (const x of runnerYes) expect(can(runner, x), `runner should: ${x.join(' ')}`).toBe(true);
    for (const x of runnerNo) expect(can(runner, x), `runner should not: ${x.join(' ')}`).toBe(false);

    // helm upgrade with changed values while the run is in its second step or later.
    await until('the run past its first step', async () => ((await getRun('quick')).status?.progress?.completedSteps ?? 0) >= 1 || undefined, 300_000, 1000);
    const before = new Set((await operatorPods()).map((p) => p.metadata!.uid!));
    const leaderBefore = await holder();
    const up = helm(['upgrade', RELEASE, CHART, '-n', sys, '--reuse-values', '--set', 'logLevel=debug', '--set', 'rbac.prometheusTokenSecrets={prom-token}', '--wait', '--timeout', '180s']);
    expect(up.code, up.stderr).toBe(0);
    const after = await operatorPods();
    expect(after).toHaveLength(2);
    for (const p of after) expect(before.has(p.metadata!.uid!), 'the upgrade replaced every operator pod').toBe(false);
    const env = (await operatorDeployment()).spec!.template.spec!.containers[0]!.env ?? [];
    expect(env.find((e) => e.name === 'SWARMBENCH_LOG_LEVEL')?.value).toBe('debug');
    const leaderAfter = await until('a new leader', async () => {
      const h = await holder();
      return h && h !== leaderBefore && after.some((p) => p.metadata!.name === h) ? h : undefined;
    }, 60_000);
    expect(leaderAfter).not.toBe(leaderBefore);
    // The upgraded values reached the admission policy (tokenSecrets: only prom-token may be a
    // run's Prometheus token). RBAC: `create` on Secrets (each attempt's agent-token Secret, by
    // generateName: never read back) and `get` only on the named Prometheus token Secret; never
    // another Secret, nor list, watch, update or delete.
    const as = `system:serviceaccount:${sys}:${operatorSa}`;
    expect(can(as, ['get', 'secrets/prom-token', '-n', runs])).toBe(true);
    expect(can(as, ['get', 'secrets/other-token', '-n', runs])).toBe(false);
    expect(can(as, ['get', 'secrets', '-n', runs])).toBe(false);
    expect(can(as, ['create', 'secrets', '-n', runs])).toBe(true);
    for (const verb of ['list', 'watch', 'update', 'delete']) expect(can(as, [verb, 'secrets', '-n', runs]), verb).toBe(false);
    const flagsNow = (await operatorDeployment()).spec!.template.spec!.containers[0]!.args!;
    expect(JSON.parse(flagsNow[flagsNow.indexOf('--admission') + 1]!).tokenSecrets).toEqual(['prom-token']);

    const w = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
      execFile(join(TOOLS_BIN, 'kubectl'), ['wait', '-n', runs, '--for=condition=Complete', 'br/quick', '--timeout=600s'], { env: kubeEnv }, (err, _o, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
      ),
    );
    watching = false;
    await watcher;
    expect(w.code, w.stderr).toBe(0);
    expect((Date.now() - t0) / 1000).toBeLessThan(660);

    const st = (await getRun('quick')).status!;
    process.stderr.write(`helm e2e: quick example through the chart in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${st.phase}, ${st.summary?.passed}/${st.summary?.total} passed, ${st.summary?.skipped} skipped; failed: ${st.tests?.filter((t) => t.result === 'Failed').map((t) => t.id).join(', ') || 'none'}\n`);
    // Why each failed or was skipped (the verdict is not asserted: this is the record of it).
    for (const t of st.tests ?? []) if (t.result !== 'Passed') process.stderr.write(`  ${t.id} ${t.result}: ${String(t.reason ?? '').slice(0, 400)}\n`);
    expect(st.attempt, 'the upgrade did not start a new attempt').toBe(1);
    expect(st.history ?? []).toHaveLength(0);
    expect(['Succeeded', 'Failed']).toContain(st.phase);
    expect(st.tests!.map((t) => t.id)).toEqual(CATALOGUE.map((d) => d.id));
    for (const t of st.tests!) expect(t.reason ?? '', t.id).not.toMatch(/produced no result|without (a|writing its) result/);
    expect(st.tests!.find((t) => t.id === '2.1')!.result).toBe('Skipped'); // no GPU library in the test image
    expect(kubectl(['get', 'br', '-n', runs]).stdout).toMatch(new RegExp(`quick\\s+${st.phase}\\s+${st.summary!.passed}/27\\s+`));
    // Each step's Job was created once, through the upgrade (a recreated Job has a new uid).
    expect([...jobUids.keys()].sort()).toHaveLength(6);
    for (const [name, uids] of jobUids) expect(uids.size, name).toBe(1);

    // The export agrees, and the chart's Prometheus URL gave the run its observations.
    const exp = await core.readNamespacedConfigMap({ namespace: runs, name: st.export!.configMapName });
    const doc = ResultDocument.parse(JSON.parse(exp.data!['results.json']!));
    expect(doc.summary).toMatchObject({ total: 27, passed: st.summary!.passed, verdict: st.summary!.verdict });
    expect(doc.observations?.prometheus).toMatchObject({ url: PROMETHEUS_URL, available: true });

    // Placement: the GPU runner on the GPU node, agents spread over both CPU nodes; pools grew and shrank.
    const gpuPods = await core.listNamespacedPod({ namespace: runs, labelSelector: 'job-name=quick-a1-gpu' });
    expect(gpuPods.items.length).toBeGreaterThan(0);
    for (const p of gpuPods.items) expect(p.spec?.nodeName).toBe('swarmbench-gpu-1');
    expect(new Set([...podNodes.values()].map((p) => p.node))).toEqual(new Set(['swarmbench-cpu-1', 'swarmbench-cpu-2']));
    const histories = [...replicas.values()];
    expect(histories.some((h) => h.length >= 4 && h.some((v, i) => i > 0 && v > h[i - 1]!)), JSON.stringify([...replicas])).toBe(true);
    expect(histories.some((h) => h.some((v, i) => i > 0 && v < h[i - 1]! && v > 0)), JSON.stringify([...replicas])).toBe(true);
    expect(Math.max(...histories.flat())).toBe(64);

    // Restricted everywhere: the runner and agent pods above were admitted by namespaces that
    // enforce it, and nothing was refused on the way.
    const refused = await core.listNamespacedEvent({ namespace: runs, fieldSelector: 'reason=FailedCreate' });
    expect(refused.items.map((e) => e.message)).toEqual([]);
    const sa = await core.readNamespacedServiceAccount({ namespace: runs, name: 'quick-runner' });
    expect(sa.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'BenchmarkRun', name: 'quick' });
  }, 900_000);

  it('the restricted namespaces really enforce: a privileged pod is refused', () => {
    const pod = `apiVersion: v1\nkind: Pod\nmetadata: {name: privileged}\nspec:\n  containers:\n  - name: c\n    image: swarmbench:dev\n    command: [swarmbench]\n    securityContext: {privileged: true}\n`;
    for (const ns of [sys, runs]) {
      const r = kubectl(['apply', '--dry-run=server', '-n', ns, '-f', '-'], pod);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/violates PodSecurity "restricted:latest"/);
    }
  });

  it('helm uninstall removes what it installed and leaves the CRD, the runs and their exports', async () => {
    const u = helm(['uninstall', RELEASE, '-n', sys, '--wait', '--timeout', '120s']);
    expect(u.code, u.stderr).toBe(0);
    // The Deployment goes at once; its ReplicaSet and pods through the garbage collector (background
    // propagation), so wait until nothing labelled with the release is left, terminating pods included.
    const leftover = () => kubectl(['get', 'deploy,rs,pods,svc,sa,cm,role,rolebinding,pdb', '-n', sys, '-l', `app.kubernetes.io/instance=${RELEASE}`, '-o', 'name']).stdout.trim();
    await until('nothing of the release left in its namespace', () => leftover() === '' || undefined, 90_000, 1000).catch(() => undefined);
    expect(leftover()).toBe('');
    const cluster = kubectl(['get', 'clusterrole,clusterrolebinding', '-l', `app.kubernetes.io/instance=${RELEASE}`, '-o', 'name']);
    expect(cluster.stdout.trim()).toBe('');
    // Kept, as docs/install.md promises: CRDs are not removed by Helm, so runs and exports stay.
    expect(kubectl(['get', 'crd', 'benchmarkruns.swarmbench.io']).code).toBe(0);
    expect((await getRun('quick')).status?.phase).toMatch(/Succeeded|Failed/);
    const exp = await core.readNamespacedConfigMap({ namespace: runs, name: 'quick-results' });
    expect(Object.keys(exp.data ?? {}).sort()).toEqual([...EXPORT_FILES].sort());
  }, 180_000);
});
