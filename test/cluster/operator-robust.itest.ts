/**
 * The operator under adversity, on the real control plane: SIGKILLed at five random moments of a run,
 * the API server restarted mid-run, two replicas with leader election and the leader killed, a
 * running run deleted and one suspended, and a corpus of bad resources (test/support/bad-runs.ts).
 *
 * Skipped (reason in the suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { AppsV1Api, BatchV1Api, CoordinationV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dump } from 'js-yaml';
import { ResultDocument } from '../../src/api/schema.ts';
import { statusCode } from '../../src/kube/client.ts';
import { labelValue } from '../../src/kube/names.ts';
import { CATALOGUE } from '../../src/plan/catalogue.ts';
import { mulberry32 } from '../../src/prng.ts';
import { BAD_RUNS, manifestOf } from '../support/bad-runs.ts';
import { CLUSTER_SRC } from './lib/config.ts';
import { adminClients, clusterGate, kill9, kubectl, kubeEnv, prepareNamespace, sleep, startOperator, until } from './lib/itest.ts';

const gate = await clusterGate('operator robustness');

const ns = `op-robust-${Date.now().toString(36)}`;
const manifest = (name: string, spec: string) =>
  `apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec}`;
/** Two steps (distributed, then integration) of small pools: about a minute on 2 cores. */
const TWO_STEPS = '  mode: quick\n  categories: [distributed, integration]\n  trials: 3\n  agents: {poolSize: 3}\n  cleanup: {policy: Never}\n';

interface Run {
  metadata: { name: string; generation: number };
  status?: { phase?: string; attempt?: number; summary?: { total: number; passed: number; failed: number }; tests?: { id: string; result: string; reason?: string; value: number | null }[]; export?: { configMapName: string } };
}

describe.skipIf(!!gate.notUp)(gate.title, () => {
  let core: CoreV1Api;
  let batch: BatchV1Api;
  let apps: AppsV1Api;
  let custom: CustomObjectsApi;
  let leases: CoordinationV1Api;
  const procs = new Set<ChildProcess>();
  const logs = new Map<ChildProcess, string[]>();

  const get = async (name: string): Promise<Run> =>
    (await custom.getNamespacedCustomObject({ group: 'swarmbench.io', version: 'v1alpha1', namespace: ns, plural: 'benchmarkruns', name })) as Run;
  const phaseOf = async (name: string) => (await get(name)).status?.phase;
  const terminal = (name: string, timeoutMs = 420_000) =>
    until(`${name} to finish`, async () => {
      const r = await get(name);
      return r.status?.phase === 'Succeeded' || r.status?.phase === 'Failed' ? r : undefined;
    }, timeoutMs, 1000);

  function operator(extra: string[] = ['--leader-elect', 'false'], id = 'op'): ChildProcess {
    const { proc, log } = startOperator(ns, extra, id);
    logs.set(proc, log);
    procs.add(proc);
    proc.once('exit', () => procs.delete(proc));
    return proc;
  }

  /** Every Job of a run, with the uid it had when first seen: a Job created twice shows a new uid. */
  function watchJobs(run: string) {
    const uids = new Map<string, Set<string>>();
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        const jobs = await batch.listNamespacedJob({ namespace: ns, labelSelector: `swarmbench.io/run=${run}` }).catch(() => undefined);
        for (const j of jobs?.items ?? []) {
          const set = uids.get(j.metadata!.name!) ?? new Set<string>();
          set.add(j.metadata!.uid!);
          uids.set(j.metadata!.name!, set);
        }
        await sleep(300);
      }
    })();
    return {
      uids,
      stop: async () => {
        stop = true;
        await loop;
      },
    };
  }

  async function assertComplete(name: string, ids: string[]) {
    const r = await get(name);
    expect(r.status!.tests!.map((t) => t.id)).toEqual(ids);
    for (const t of r.status!.tests!) {
      expect(t.reason ?? '', `${t.id}`).not.toMatch(/produced no result|without (a|writing its) result/);
      expect(t.value, `${t.id} measured`).not.toBeNull();
    }
    const exp = await core.readNamespacedConfigMap({ namespace: ns, name: r.status!.export!.configMapName });
    const doc = ResultDocument.parse(JSON.parse(exp.data!['results.json']!));
    expect(doc.tests.map((t) => t.id)).toEqual(ids); // each result exactly once
    return r;
  }

  beforeAll(async () => {
    ({ core, batch, apps, custom, leases } = adminClients());
    prepareNamespace(ns);
  });

  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });


  // Three steps (distributed, gpu, integration) rather than the quick example's six: the same five
  // kills land on fewer steps, and the run costs CI about half as long.
  const KILLED = ['distributed', 'gpu', 'integration'];
  it('SIGKILLed at five random moments of a three-step run: all its results, each once, and no Job created twice', async () => {
    let op = operator();
    expect(kubectl(['apply', '-f', '-'], manifest('killed', `  mode: quick\n  categories: [${KILLED.join(', ')}]\n  export: {configMapName: killed-results}\n`)).code).toBe(0);
    const jobs = watchJobs('killed');
    // Five random moments, all inside the run: each a random step (its Job seen) and a random delay
    // into it (0-8 s), in order; the seed is printed, SWARMBENCH_KILL_SEED replays it.
    const seed = Number(process.env.SWARMBENCH_KILL_SEED ?? Date.now() % 1_000_000);
    const rand = mulberry32(seed);
    const moments = Array.from({ length: 5 }, () => ({ step: 1 + Math.floor(rand() * KILLED.length), delayMs: Math.round(rand() * 8000) })).sort((a, b) => a.step - b.step || a.delayMs - b.delayMs);
    console.log(`operator SIGKILL moments (seed ${seed}): ${moments.map((m) => `step ${m.step} + ${m.delayMs} ms`).join(', ')}`);
    let lastStep = 0;
    let kills = 0;
    for (const m of moments) {
      await until(`step Job ${m.step}`, async () => jobs.uids.size >= m.step || ['Succeeded', 'Failed'].includes((await phaseOf('killed')) ?? ''), 400_000, 200);
      if (m.step === lastStep) await sleep(500);
      lastStep = m.step;
      await sleep(m.delayMs);
      if (['Succeeded', 'Failed'].includes((await phaseOf('killed')) ?? '')) break;
      await kill9(op);
      kills++;
      op = operator();
    }
    await terminal('killed', 600_000);
    // Each kill fell inside the run (a moment of its last step's delay may come after it ends).
    expect(kills).toBeGreaterThanOrEqual(4);
    await jobs.stop();
    expect(jobs.uids.size).toBe(KILLED.length);
    for (const [name, set] of jobs.uids) expect(set.size, `${name} created once`).toBe(1);
    const r = await assertComplete('killed', CATALOGUE.filter((d) => KILLED.includes(d.category)).map((d) => d.id));
    expect(r.status!.attempt).toBe(1);
    const started = (await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=killed' })).items.filter((e) => e.reason === 'StepStarted');
    expect(started).toHaveLength(KILLED.length);
    await kill9(op);
    await custom.deleteNamespacedCustomObject({ group: 'swarmbench.io', version: 'v1alpha1', namespace: ns, plural: 'benchmarkruns', name: 'killed' });
  }, 900_000);

  // Two steps rather than the quick example's six (it was 5-6 minutes of CI for the same claim):
  // the restart falls inside the first step, the second starts on the restarted server.
  it('the API server restarted mid-run: a two-step run still completes with all its results', async () => {
    const op = operator();
    expect(kubectl(['apply', '-f', '-'], manifest('apirestart', `${TWO_STEPS}  export: {configMapName: apirestart-results}\n`)).code).toBe(0);
    const jobs = watchJobs('apirestart');
    await until('the first step Job', async () => jobs.uids.size >= 1, 400_000, 200);
    await sleep(2000);
    expect(await phaseOf('apirestart')).toBe('Running');
    const r = spawnSync(process.execPath, [join(CLUSTER_SRC, 'cluster.ts'), 'restart', 'kube-apiserver'], { env: kubeEnv, encoding: 'utf8', timeout: 180_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/restarted kube-apiserver/);
    await terminal('apirestart', 600_000);
    await jobs.stop();
    expect(jobs.uids.size).toBe(2);
    for (const [name, set] of jobs.uids) expect(set.size, `${name} created once`).toBe(1);
    await assertComplete('apirestart', CATALOGUE.filter((d) => d.category === 'distributed' || d.category === 'integration').map((d) => d.id));
    expect(op.exitCode, (logs.get(op) ?? []).slice(-20).join('')).toBeNull();
    await kill9(op);
    await custom.deleteNamespacedCustomObject({ group: 'swarmbench.io', version: 'v1alpha1', namespace: ns, plural: 'benchmarkruns', name: 'apirestart' });
  }, 900_000);

  it('two replicas: only the leader reconciles; killing it hands over within the lease time', async () => {
    const lease = 'swarmbench-operator';
    const args = ['--leader-elect', 'true', '--lease-namespace', ns, '--lease-name', lease, '--lease-seconds', '4', '--concurrency', '2', '--resync-seconds', '30'];
    const a = operator(args, 'replica-a');
    const b = operator(args, 'replica-b');
    const holder = async () => (await leases.readNamespacedLease({ namespace: ns, name: lease })).spec?.holderIdentity ?? '';
    const first = await until('a leader', async () => ((await holder()) ? await holder() : undefined), 30_000, 100);
    const leader = first.includes(String(a.pid)) ? a : b;
    const standby = leader === a ? b : a;
    // Only the leader works: its log shows workers starting, the standby's does not.
    await until('the leader to start its workers', () => (logs.get(leader) ?? []).join('').includes('leading: starting informers'), 30_000, 100);
    expect((logs.get(standby) ?? []).join('')).not.toContain('leading: starting informers');
    expect(kubectl(['apply', '-f', '-'], manifest('leader1', '  mode: quick\n  categories: [integration]\n  trials: 3\n  agents: {poolSize: 3}\n')).code).toBe(0);
    await terminal('leader1', 240_000);
    expect((logs.get(standby) ?? []).join('')).not.toContain('"run":"leader1"');
    // Kill the leader; the standby takes over within the lease duration (plus a retry period).
    const t0 = Date.now();
    await kill9(leader);
    const next = await until('a new leader', async () => {
      const h = await holder();
      return h && h !== first ? h : undefined;
    }, 30_000, 100);
    const handoverMs = Date.now() - t0;
    expect(next).toContain(String(standby.pid));
    expect(handoverMs).toBeLessThan(4000 + 2000);
    expect(kubectl(['apply', '-f', '-'], manifest('leader2', '  mode: quick\n  categories: [integration]\n  trials: 3\n  agents: {poolSize: 3}\n')).code).toBe(0);
    await terminal('leader2', 240_000);
    await kill9(standby);
  }, 600_000);

  it('deleting a running run removes its Jobs, pods, pools and result ConfigMaps', async () => {
    const op = operator();
    expect(kubectl(['apply', '-f', '-'], manifest('doomed', TWO_STEPS)).code).toBe(0);
    await until('its agent pool to run', async () => {
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'swarmbench.io/run=doomed' });
      return pods.items.length >= 3 ? true : undefined;
    }, 120_000, 500);
    expect(kubectl(['delete', '-n', ns, 'br/doomed', '--wait=true', '--timeout=90s']).code).toBe(0);
    await until('everything of the run to be gone', async () => {
      const sel = { namespace: ns, labelSelector: 'swarmbench.io/run=doomed' };
      const [j, p, d, c] = await Promise.all([batch.listNamespacedJob(sel), core.listNamespacedPod(sel), apps.listNamespacedDeployment(sel), core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'swarmbench.io/run=doomed,swarmbench.io/component!=export' })]);
      return j.items.length + p.items.length + d.items.length + c.items.length === 0 ? true : undefined;
    }, 120_000, 1000);
    expect(op.exitCode).toBeNull();
    await kill9(op);
  }, 300_000);

  it('spec.suspend cancels a running attempt and removes its Jobs and pools', async () => {
    const op = operator();
    expect(kubectl(['apply', '-f', '-'], manifest('paused', TWO_STEPS)).code).toBe(0);
    await until('its first Job', async () => (await batch.listNamespacedJob({ namespace: ns, labelSelector: 'swarmbench.io/run=paused' })).items.length > 0, 60_000, 200);
    expect(kubectl(['patch', '-n', ns, 'br/paused', '--type=merge', '-p', '{"spec":{"suspend":true}}']).code).toBe(0);
    await until('Cancelled', async () => (await phaseOf('paused')) === 'Cancelled', 60_000, 200);
    await until('its Jobs and pools to go', async () => {
      const sel = { namespace: ns, labelSelector: 'swarmbench.io/run=paused' };
      const [j, d] = await Promise.all([batch.listNamespacedJob(sel), apps.listNamespacedDeployment(sel)]);
      return j.items.length + d.items.length === 0 ? true : undefined;
    }, 120_000, 500);
    await kill9(op);
  }, 300_000);

  /**
   * The corpus of test/support/bad-runs.ts (also proven without a cluster: test/unit/bad-runs.test.ts).
   * The `degraded` entries' Jobs are refused by ValidatingAdmissionPolicies bound to those runs'
   * Jobs (by their run label): reason Invalid answers 422, Forbidden 403.
   */
  it('a corpus of bad resources: the API server refuses what the schema catches naming the field; the operator marks the rest SpecInvalid or Degraded once, survives, and retries nothing', async () => {
    const denied = BAD_RUNS.filter((r) => r.degraded);
    const policies: string[] = [];
    for (const deny of ['Invalid', 'Forbidden'] as const) {
      const runs = denied.filter((r) => r.degraded!.deny === deny);
      if (!runs.length) continue;
      const name = `${ns}-deny-${deny.toLowerCase()}`;
      policies.push(name);
      const policy = {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicy',
        metadata: { name },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: { resourceRules: [{ apiGroups: ['batch'], apiVersions: ['v1'], operations: ['CREATE'], resources: ['jobs'] }] },
          validations: [{ expression: 'false', message: "the bad-resource corpus refuses this run's Jobs", reason: deny }],
        },
      };
      const binding = {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicyBinding',
        metadata: { name },
        spec: {
          policyName: name,
          validationActions: ['Deny'],
          matchResources: {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
            objectSelector: { matchExpressions: [{ key: 'swarmbench.io/run', operator: 'In', values: runs.map((r) => labelValue(r.name)) }] },
          },
        },
      };
      const r = kubectl(['apply', '-f', '-'], `${dump(policy)}---\n${dump(binding)}`);
      expect(r.code, r.stderr).toBe(0);
    }
    try {
      // The API server loads policies asynchronously: wait until a dry-run Job of each denied run is refused.
      for (const [i, run] of denied.entries()) {
        const code = run.degraded!.deny === 'Invalid' ? 422 : 403;
        const probe = { metadata: { name: `corpus-probe-${i}`, labels: { 'swarmbench.io/run': labelValue(run.name) } }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'x', image: 'swarmbench:dev' }] } } } };
        await until(`the policy to refuse the Jobs of ${run.name}`, async () => {
          try {
            await batch.createNamespacedJob({ namespace: ns, body: probe, dryRun: 'All' });
            return undefined;
          } catch (e) {
            return statusCode(e) === code ? true : undefined;
          }
        }, 30_000, 500);
      }
      const op = operator();
      for (const run of BAD_RUNS.filter((r) => r.rejected)) {
        const r = kubectl(['apply', '-f', '-'], manifestOf(run, ns));
        expect(r.code, `${run.name}: ${run.what}`).not.toBe(0);
        expect(r.stderr, `${run.name}: ${run.what}`).toContain(run.rejected!);
      }
      const accepted = BAD_RUNS.filter((r) => !r.rejected);
      for (const run of accepted) {
        const r = kubectl(['apply', '-f', '-'], manifestOf(run, ns));
        expect(r.code, `${run.name}: ${r.stderr}`).toBe(0);
      }
      type Marked = Run & { metadata: { resourceVersion?: string }; status?: { conditions?: { type: string; reason: string; message: string }[] } };
      for (const run of accepted) {
        const [type, reason, message] = run.specInvalid ? ['Ready', 'SpecInvalid', run.specInvalid] as const : ['Degraded', run.degraded!.reason, run.degraded!.message] as const;
        const c = await until(`${run.name} to be marked ${reason}`, async () => {
          const x = (await get(run.name)) as Marked;
          const k = x.status?.conditions?.find((y) => y.type === type);
          return k?.reason === reason ? k : undefined;
        }, 60_000, 200);
        expect(c.message, run.name).toMatch(message);
        expect(await phaseOf(run.name)).toBe('Failed');
        expect((await batch.listNamespacedJob({ namespace: ns, labelSelector: `swarmbench.io/run=${labelValue(run.name)}` })).items, run.name).toHaveLength(0);
      }
      // No retry storm: for five seconds no run is written again, each told its reason once, no reconcile failed.
      const versions = new Map<string, string | undefined>();
      for (const run of accepted) versions.set(run.name, ((await get(run.name)) as Marked).metadata.resourceVersion);
      await sleep(5000);
      const events = (await core.listNamespacedEvent({ namespace: ns })).items;
      for (const run of accepted) {
        expect(((await get(run.name)) as Marked).metadata.resourceVersion, `${run.name} written again`).toBe(versions.get(run.name));
        const reason = run.specInvalid ? 'SpecInvalid' : run.degraded!.reason;
        expect(events.filter((e) => e.involvedObject.name === run.name && e.reason === reason), `${run.name}: ${reason} events`).toHaveLength(1);
        expect((logs.get(op) ?? []).join('').split('\n').filter((l) => l.includes('reconcile failed') && l.includes(`${ns}/${run.name}"`)), run.name).toEqual([]);
      }
      expect(op.exitCode).toBeNull();
      await kill9(op);
    } finally {
      for (const name of policies) kubectl(['delete', 'validatingadmissionpolicybinding,validatingadmissionpolicy', name, '--ignore-not-found']);
    }
  }, 300_000);
});
