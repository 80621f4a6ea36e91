/**
 * Ownership before every write (docs/operator.md "Ownership"), against the in-memory cluster of
 * test/support/fake-cluster.ts: what a run does not control (no controller, another controller, an
 * earlier run of the same name) is never changed, adopted or read as the run's: the run shows the
 * Conflict condition and waits. Also: names of runs that a lossy mapping would merge, a re-created
 * run, the per-attempt agent token Secret (generateName, its name in the params ConfigMap, never
 * read back), the NetworkPolicy, and the agents' resources from spec to pod.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig, NetworkingV1Api, type V1NetworkPolicy } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { API_VERSION_FULL, type BenchmarkRunSpec, type BenchmarkRunStatus, type StepResult } from '../../src/api/schema.ts';
import {
  agentTokenSecretPrefix, exportName, jobName, networkPolicyName, paramsName, runnerName, runnerPoolsBindingName, stepResultName,
} from '../../src/kube/names.ts';
import type { Logger } from '../../src/log.ts';
import type { RunObject } from '../../src/operator/cluster.ts';
import { agentNetworkPolicy, parseIngressPeers } from '../../src/operator/netpol.ts';
import { Reconciler } from '../../src/operator/reconcile.ts';
import { CATALOGUE, targetOf } from '../../src/plan/catalogue.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { buildPlan } from '../../src/plan/plan.ts';
import { agentDeployment } from '../../src/platform/kubernetes/manifests.ts';
import { agentScheduling, agentTokenSecretEnv } from '../../src/runner/cli.ts';
import { FakeCluster, type Obj } from '../support/fake-cluster.ts';

const NS = 'bench';
const SPEC: BenchmarkRunSpec = { mode: 'quick', categories: ['integration'] };
const silent: Logger = { info() {}, warn() {}, debug() {} };
const POLL = 1000;

/** A cluster with runs in it and a reconciler (its clock moves a second per reconcile). */
class World {
  readonly fake = new FakeCluster();
  clock = Date.parse('2026-03-01T10:00:00Z');
  readonly r: Reconciler;

  constructor(opts: { agentIngressFrom?: Parameters<typeof parseIngressPeers>[0]; metricsToken?: string } = {}) {
    this.r = new Reconciler({
      cluster: this.fake, images: { image: 'reg/sb:1', gpuImage: 'reg/sb-gpu:1' }, log: silent, version: '9.9.9', now: () => new Date(this.clock), pollMs: POLL,
      ...(opts.agentIngressFrom ? { agentIngressFrom: parseIngressPeers(opts.agentIngressFrom) } : {}),
      ...(opts.metricsToken ? { metricsToken: opts.metricsToken } : {}),
    });
  }

  addRun(name: string, spec: BenchmarkRunSpec = SPEC): RunObject {
    return this.fake.put('BenchmarkRun', { apiVersion: API_VERSION_FULL, kind: 'BenchmarkRun', metadata: { name, namespace: NS }, spec }) as RunObject;
  }
  run(name: string): RunObject {
    return this.fake.get('BenchmarkRun', NS, name)!;
  }
  status(name: string): BenchmarkRunStatus {
    return this.run(name).status ?? {};
  }
  conflict(name: string) {
    return this.status(name).conditions?.find((c) => c.type === 'Conflict');
  }
  reconcile(name: string) {
    this.clock += 1000;
    return this.r.reconcile(`${NS}/${name}`);
  }
  async settle(name: string): Promise<void> {
    for (let i = 0; i < 20; i++) {
      const res = await this.reconcile(name);
      if (!res || res.requeueAfterMs !== 0) return;
    }
  }

  /** The runner of `name`'s current step writes a passing result and its Job completes. */
  pass(name: string): void {
    const st = this.status(name);
    const step = st.progress!.currentStep!;
    const attempt = st.attempt!;
    const spec = this.run(name).spec as BenchmarkRunSpec;
    const plan = buildPlan(resolveParams(spec)).find((s) => s.name === step)!;
    const doc: StepResult = {
      apiVersion: API_VERSION_FULL, kind: 'StepResult', step, category: plan.category, attempt,
      startedAt: '2026-03-01T10:00:00.000Z', finishedAt: '2026-03-01T10:01:00.000Z', node: 'n',
      measurements: plan.tests.map((id) => {
        const def = CATALOGUE.find((d) => d.id === id)!;
        const target = targetOf(def, resolveParams(spec).targets);
        return { id, value: def.op === '<' ? target / 2 : def.op === '<=' ? target : target * 2, samples: 5 };
      }),
    };
    this.fake.update('ConfigMap', NS, stepResultName(name, attempt, step), (o) => (o.data = { 'result.json': JSON.stringify(doc) }));
    this.fake.update('Job', NS, jobName(name, attempt, step), (o) => (o.status = { conditions: [{ type: 'Complete', status: 'True' }] }));
  }

  /** Runs `name` to its end. */
  async complete(name: string): Promise<void> {
    await this.settle(name);
    for (let i = 0; i < 10 && this.status(name).phase === 'Running'; i++) {
      this.pass(name);
      await this.settle(name);
    }
  }

  /** Writes that succeeded since the calls were cleared (creates, replaces, deletes). */
  objectWrites() {
    return this.fake.calls.filter((c) => ['create', 'replace', 'delete', 'deleteCollection'].includes(c.op) && !c.failed);
  }
}

const foreign = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'someone-else', uid: 'other-uid', controller: true };

describe('objects the run does not control: untouched, Conflict, the run waits', () => {
  const cases: { kind: 'ServiceAccount' | 'Role' | 'RoleBinding' | 'NetworkPolicy'; name: (run: string) => string; body: Obj; owner?: typeof foreign }[] = [
    { kind: 'ServiceAccount', name: runnerName, body: { automountServiceAccountToken: true } },
    { kind: 'Role', name: runnerName, body: { rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }] }, owner: foreign },
    { kind: 'RoleBinding', name: runnerName, body: { roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'admin' }, subjects: [] } },
    { kind: 'RoleBinding', name: runnerPoolsBindingName, body: { roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' }, subjects: [] }, owner: foreign },
    { kind: 'NetworkPolicy', name: networkPolicyName, body: { spec: { podSelector: {} } } },
  ];
  for (const c of cases) {
    it(`a pre-existing ${c.kind} ${c.name('nightly')} (${c.owner ? 'another controller' : 'no controller'})`, async () => {
      const w = new World();
      w.addRun('nightly');
      const before = w.fake.put(c.kind, { metadata: { name: c.name('nightly'), namespace: NS, ...(c.owner ? { ownerReferences: [c.owner] } : {}) }, ...c.body });
      await w.settle('nightly');
      const res = await w.reconcile('nightly');
      expect(res).toEqual({ requeueAfterMs: POLL });
      expect(w.fake.get(c.kind, NS, c.name('nightly'))).toEqual(before);
      expect(w.fake.names('Job', NS)).toEqual([]);
      expect(w.conflict('nightly')).toMatchObject({ status: 'True', reason: 'ObjectNotOwned' });
      expect(w.conflict('nightly')!.message).toContain(`${c.kind} ${NS}/${c.name('nightly')} is not controlled by this run`);
      expect(w.conflict('nightly')!.message).toContain(c.owner ? 'Deployment someone-else (uid other-uid)' : 'no controller');
      expect(w.fake.events.filter((e) => e.reason === 'Conflict')).toHaveLength(1);
      // Looking again changes nothing and tells nothing new.
      w.fake.clearCalls();
      await w.reconcile('nightly');
      expect(w.objectWrites()).toEqual([]);
      expect(w.fake.calls.filter((x) => x.op === 'patchRunStatus' || x.op === 'createEvent')).toEqual([]);
      // Its owner removes it: the run goes on with objects of its own.
      w.fake.remove(c.kind, NS, c.name('nightly'));
      await w.settle('nightly');
      expect(w.fake.names('Job', NS)).toEqual([jobName('nightly', 1, 'integration')]);
      expect(w.fake.get(c.kind, NS, c.name('nightly'))!.metadata).toMatchObject({ ownerReferences: [expect.objectContaining({ uid: w.run('nightly').metadata.uid })] });
      expect(w.conflict('nightly')).toMatchObject({ status: 'False', reason: 'Resolved' });
    });
  }

  it('an export ConfigMap named by spec.export.configMapName that exists and is not the run\'s: not overwritten, no final status until it is gone', async () => {
    const w = new World();
    w.addRun('nightly', { ...SPEC, export: { configMapName: 'shared' } });
    const before = w.fake.put('ConfigMap', { metadata: { name: 'shared', namespace: NS, labels: { team: 'a' } }, data: { 'app.conf': 'x=1' } });
    await w.complete('nightly');
    expect(w.fake.get('ConfigMap', NS, 'shared')).toEqual(before);
    expect(w.status('nightly').phase).toBe('Running');
    expect(w.conflict('nightly')).toMatchObject({ status: 'True', reason: 'ObjectNotOwned' });
    expect(w.conflict('nightly')!.message).toContain('ConfigMap bench/shared is not controlled by this run');
    w.fake.remove('ConfigMap', NS, 'shared');
    await w.settle('nightly');
    expect(w.status('nightly').phase).toBe('Succeeded');
    expect(w.fake.get('ConfigMap', NS, 'shared')!.metadata).toMatchObject({ ownerReferences: [expect.objectContaining({ uid: w.run('nightly').metadata.uid })] });
    expect(w.conflict('nightly')).toMatchObject({ status: 'False', reason: 'Resolved' });
  });

  it('the run\'s own Role of an earlier attempt is updated; a RoleBinding of the run is replaced only by its uid', async () => {
    const w = new World();
    w.addRun('nightly');
    await w.complete('nightly');
    w.fake.updateRun(NS, 'nightly', { annotations: { 'swarmbench.io/rerun': '2' } });
    w.fake.clearCalls();
    await w.settle('nightly');
    expect(w.status('nightly').attempt).toBe(2);
    expect(w.fake.calls.filter((c) => c.op === 'replace' && c.kind === 'Role')).toHaveLength(1);
    expect(JSON.stringify(w.fake.get('Role', NS, runnerName('nightly'))!.rules)).toContain(stepResultName('nightly', 2, 'integration'));
  });
});

describe('runs whose names a lossy mapping would merge', () => {
  it('team.a and team-a in one namespace both complete with separate objects', async () => {
    const w = new World();
    w.addRun('team.a');
    w.addRun('team-a');
    await w.complete('team.a');
    await w.complete('team-a');
    expect(w.status('team.a').phase).toBe('Succeeded');
    expect(w.status('team-a').phase).toBe('Succeeded');
    expect(w.conflict('team.a')).toBeUndefined();
    expect(w.conflict('team-a')).toBeUndefined();
    for (const kind of ['ServiceAccount', 'Role', 'Secret', 'NetworkPolicy'] as const) expect(w.fake.names(kind, NS)).toHaveLength(2);
    expect(exportName('team.a')).not.toBe(exportName('team-a'));
    expect(w.fake.get('ConfigMap', NS, exportName('team.a'))!.metadata).toMatchObject({ ownerReferences: [expect.objectContaining({ uid: w.run('team.a').metadata.uid })] });
    expect(w.fake.get('ConfigMap', NS, exportName('team-a'))!.metadata).toMatchObject({ ownerReferences: [expect.objectContaining({ uid: w.run('team-a').metadata.uid })] });
  });
});

describe('a run deleted and re-created under the same name', () => {
  it('never reads its predecessor\'s frozen params nor adopts its Job: it waits for the collector, then runs on its own spec', async () => {
    const w = new World();
    w.addRun('nightly', { ...SPEC, trials: 3 });
    await w.settle('nightly');
    const oldUid = w.run('nightly').metadata.uid;
    const oldParams = w.fake.get('ConfigMap', NS, paramsName('nightly', 1))!;
    const oldJob = w.fake.get('Job', NS, jobName('nightly', 1, 'integration'))!;
    // Deleted and re-created (a new uid, a new spec); the collector has not run yet.
    w.fake.remove('BenchmarkRun', NS, 'nightly');
    w.fake.put('BenchmarkRun', { apiVersion: API_VERSION_FULL, kind: 'BenchmarkRun', metadata: { name: 'nightly', namespace: NS, uid: 'new-uid' }, spec: { ...SPEC, trials: 7 } });
    w.fake.clearCalls();
    const res = await w.reconcile('nightly');
    await w.reconcile('nightly');
    expect(res).toEqual({ requeueAfterMs: 0 });
    expect(w.fake.get('ConfigMap', NS, paramsName('nightly', 1))).toEqual(oldParams);
    expect(w.fake.get('Job', NS, jobName('nightly', 1, 'integration'))).toEqual(oldJob);
    expect(w.conflict('nightly')).toMatchObject({ status: 'True', reason: 'ObjectNotOwned' });
    expect(w.conflict('nightly')!.message).toContain(`BenchmarkRun nightly (uid ${oldUid})`);
    expect(w.objectWrites().map((c) => `${c.op} ${c.kind}`)).toEqual([]);
    // The garbage collector removes the old run's children.
    for (const kind of ['ConfigMap', 'Job', 'ServiceAccount', 'Role', 'RoleBinding', 'Secret', 'NetworkPolicy'] as const) {
      for (const o of w.fake.all(kind, NS)) if ((o.metadata as { ownerReferences?: { uid: string }[] }).ownerReferences?.[0]?.uid === oldUid) w.fake.remove(kind, NS, o.metadata!.name!);
    }
    await w.settle('nightly');
    const params = JSON.parse(w.fake.get('ConfigMap', NS, paramsName('nightly', 1))!.data!['params.json']!);
    expect(params.trials).toBe(7);
    const job = w.fake.get('Job', NS, jobName('nightly', 1, 'integration'))!;
    expect(job.metadata!.ownerReferences![0]!.uid).toBe('new-uid');
    expect(job.spec!.template.metadata!.labels!['swarmbench.io/run-uid']).toBe('new-uid');
  });
});

/** The attempt's agent-token Secret's name, as its params ConfigMap records it. */
function tokenSecretOf(w: World, run: string, attempt: number): string {
  return w.fake.get('ConfigMap', NS, paramsName(run, attempt))!.data!.agentTokenSecret!;
}

/** Calls that read a Secret (its data or its metadata). */
const secretReads = (w: World) => w.fake.calls.filter((c) => c.kind === 'Secret' && ['read', 'readSecret', 'readSecretMetadata'].includes(c.op));

describe('the attempt\'s agent token', () => {
  it('a Secret per attempt by generateName, its name in the params ConfigMap, owned, 32 random bytes under `token`, never read back nor overwritten; the runner gets it by secretKeyRef and SWARMBENCH_AGENT_TOKEN_SECRET', async () => {
    const w = new World();
    w.addRun('nightly', { mode: 'quick', categories: ['distributed', 'integration'] });
    await w.settle('nightly');
    const name = tokenSecretOf(w, 'nightly', 1);
    expect(name).toMatch(new RegExp(`^${agentTokenSecretPrefix('nightly', 1)}[a-z0-9]{5}$`));
    expect(agentTokenSecretPrefix('nightly', 1)).toBe('nightly-a1-token-');
    // The create carried no name: the API server picked it.
    const creates = w.fake.calls.filter((c) => c.op === 'create' && c.kind === 'Secret');
    expect(creates).toHaveLength(1);
    expect((creates[0]!.body as Obj).metadata).toMatchObject({ generateName: 'nightly-a1-token-' });
    expect((creates[0]!.body as Obj).metadata!.name).toBeUndefined();
    const s = w.fake.get('Secret', NS, name)!;
    expect(s.type).toBe('Opaque');
    expect(s.metadata!.ownerReferences).toEqual([expect.objectContaining({ kind: 'BenchmarkRun', uid: w.run('nightly').metadata.uid, controller: true })]);
    expect(s.metadata!.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'swarmbench', 'swarmbench.io/run': 'nightly', 'swarmbench.io/run-uid': w.run('nightly').metadata.uid, 'swarmbench.io/attempt': '1' });
    const token = Buffer.from(s.data!.token!, 'base64').toString('utf8');
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    const envOf = (attempt: number, step: string) => w.fake.get('Job', NS, jobName('nightly', attempt, step))!.spec!.template.spec!.containers[0]!.env!;
    const tokenEnv = (n: string) => [
      { name: 'SWARMBENCH_AGENT_TOKEN', valueFrom: { secretKeyRef: { name: n, key: 'token' } } },
      { name: 'SWARMBENCH_AGENT_TOKEN_SECRET', value: n },
    ];
    expect(envOf(1, 'distributed').filter((e) => e.name.startsWith('SWARMBENCH_AGENT_TOKEN'))).toEqual(tokenEnv(name));
    // The next step: the same Secret. A new attempt: a new Secret and token; the first untouched.
    w.pass('nightly');
    await w.settle('nightly');
    expect(envOf(1, 'integration').filter((e) => e.name.startsWith('SWARMBENCH_AGENT_TOKEN'))).toEqual(tokenEnv(name));
    w.pass('nightly');
    await w.settle('nightly');
    w.fake.updateRun(NS, 'nightly', { annotations: { 'swarmbench.io/rerun': 'x' } });
    await w.settle('nightly');
    expect(w.status('nightly').attempt).toBe(2);
    const name2 = tokenSecretOf(w, 'nightly', 2);
    expect(name2).toMatch(/^nightly-a2-token-[a-z0-9]{5}$/);
    expect(w.fake.names('Secret', NS).sort()).toEqual([name, name2].sort());
    expect(w.fake.get('Secret', NS, name2)!.data!.token).not.toBe(s.data!.token);
    expect(w.fake.get('Secret', NS, name)).toEqual(s);
    expect(envOf(2, 'distributed').filter((e) => e.name.startsWith('SWARMBENCH_AGENT_TOKEN'))).toEqual(tokenEnv(name2));
    expect(envOf(2, 'distributed').find((e) => e.name === 'SWARMBENCH_RUN_UID')!.value).toBe(w.run('nightly').metadata.uid);
    // Two runs: different tokens.
    w.addRun('other');
    await w.settle('other');
    expect(w.fake.get('Secret', NS, tokenSecretOf(w, 'other', 1))!.data!.token).not.toBe(s.data!.token);
    // Without the operator's scrape token the Secret holds the run token alone.
    expect(Object.keys(s.data!)).toEqual(['token']);
    // Never read back, never written but by a create.
    expect(secretReads(w)).toEqual([]);
    expect(w.fake.calls.filter((c) => c.kind === 'Secret' && c.op !== 'create')).toEqual([]);
  });

  it('a Secret someone else made, under the old deterministic name or one the generator could pick, is never used nor touched', async () => {
    const w = new World();
    w.addRun('nightly');
    const planted = ['nightly-agent-token', 'nightly-a1-token-aaaaa', 'nightly-a1-token-zzzzz'].map((n) =>
      w.fake.put('Secret', { metadata: { name: n, namespace: NS, ownerReferences: [foreign] }, data: { token: Buffer.from('attacker-token-0123456789').toString('base64') } }));
    await w.settle('nightly');
    const name = tokenSecretOf(w, 'nightly', 1);
    expect(planted.map((p) => p.metadata.name)).not.toContain(name);
    for (const p of planted) expect(w.fake.get('Secret', NS, p.metadata.name)).toEqual(p);
    expect(w.conflict('nightly')).toBeUndefined();
    const env = w.fake.get('Job', NS, jobName('nightly', 1, 'integration'))!.spec!.template.spec!.containers[0]!.env!;
    expect(env.find((e) => e.name === 'SWARMBENCH_AGENT_TOKEN')!.valueFrom!.secretKeyRef!.name).toBe(name);
    expect(secretReads(w)).toEqual([]);
  });

  it('a crash between the Secret\'s create and the params ConfigMap\'s: the retry makes another Secret (the orphan is the run\'s, collected with it)', async () => {
    const w = new World();
    w.addRun('nightly');
    w.fake.failNext('create', 500, 'ConfigMap');
    await expect(w.reconcile('nightly')).rejects.toMatchObject({ code: 500 });
    expect(w.fake.names('Secret', NS)).toHaveLength(1);
    const orphan = w.fake.names('Secret', NS)[0]!;
    await w.settle('nightly');
    const name = tokenSecretOf(w, 'nightly', 1);
    expect(name).not.toBe(orphan);
    expect(w.fake.names('Secret', NS).sort()).toEqual([name, orphan].sort());
    for (const n of [name, orphan]) {
      expect(w.fake.get('Secret', NS, n)!.metadata!.ownerReferences).toEqual([expect.objectContaining({ uid: w.run('nightly').metadata.uid, controller: true })]);
    }
    // A reconcile that finds the params ConfigMap makes no further Secret.
    await w.settle('nightly');
    w.pass('nightly');
    await w.settle('nightly');
    expect(w.fake.names('Secret', NS)).toHaveLength(2);
  });

  it('a params ConfigMap of an older operator (no agentTokenSecret): a new Secret, its name added by a replace; the attempt goes on', async () => {
    const w = new World();
    w.addRun('nightly', { mode: 'quick', categories: ['distributed', 'integration'] });
    await w.settle('nightly');
    const first = tokenSecretOf(w, 'nightly', 1);
    w.fake.update('ConfigMap', NS, paramsName('nightly', 1), (o) => {
      o.data = { 'params.json': (o.data as Record<string, string>)['params.json']! };
    });
    const frozen = w.fake.get('ConfigMap', NS, paramsName('nightly', 1))!.data!['params.json'];
    w.fake.clearCalls();
    w.pass('nightly');
    await w.settle('nightly');
    const name = tokenSecretOf(w, 'nightly', 1);
    expect(name).not.toBe(first);
    expect(name).toMatch(/^nightly-a1-token-[a-z0-9]{5}$/);
    expect(w.fake.get('ConfigMap', NS, paramsName('nightly', 1))!.data!['params.json']).toBe(frozen);
    expect(w.fake.calls.filter((c) => c.op === 'replace' && c.kind === 'ConfigMap').map((c) => c.name)).toEqual([paramsName('nightly', 1)]);
    expect(w.fake.calls.filter((c) => c.op === 'create' && c.kind === 'Secret')).toHaveLength(1);
    const env = w.fake.get('Job', NS, jobName('nightly', 1, 'integration'))!.spec!.template.spec!.containers[0]!.env!;
    expect(env.find((e) => e.name === 'SWARMBENCH_AGENT_TOKEN_SECRET')!.value).toBe(name);
    expect(w.status('nightly').phase).toBe('Running');
    expect(secretReads(w)).toEqual([]);
  });

  it('a recorded name the API server did not generate for the attempt (the ConfigMap edited to point elsewhere): ParamsInvalid, no Job mounts it', async () => {
    const w = new World();
    w.addRun('nightly', { mode: 'quick', categories: ['distributed', 'integration'] });
    await w.settle('nightly');
    w.fake.update('ConfigMap', NS, paramsName('nightly', 1), (o) => ((o.data as Record<string, string>).agentTokenSecret = 'registry-credentials'));
    w.pass('nightly');
    await w.settle('nightly');
    expect(w.status('nightly').phase).toBe('Failed');
    expect(w.status('nightly').conditions!.find((c) => c.type === 'Ready')).toMatchObject({ reason: 'ParamsInvalid' });
    expect(w.status('nightly').conditions!.find((c) => c.type === 'Ready')!.message).toMatch(/agentTokenSecret\): "registry-credentials" is not a name the API server generated .*nightly-a1-token-/);
    expect(w.fake.get('Job', NS, jobName('nightly', 1, 'integration'))).toBeUndefined();
  });

  it('with the administrator\'s scrape token (--metrics-token-file), each attempt\'s Secret carries a copy under `metrics-token`', async () => {
    const w = new World({ metricsToken: 'scrape-token-0123456789abcdef' });
    w.addRun('nightly');
    await w.settle('nightly');
    const s = w.fake.get('Secret', NS, tokenSecretOf(w, 'nightly', 1))!;
    expect(Buffer.from(s.data!['metrics-token']!, 'base64').toString('utf8')).toBe('scrape-token-0123456789abcdef');
    expect(s.data!.token).not.toBe(s.data!['metrics-token']);
  });

  it('the runner takes the Secret\'s name from SWARMBENCH_AGENT_TOKEN_SECRET: both variables or neither; errors name the variable', () => {
    const token = 'a-token-of-enough-length-012345';
    expect(agentTokenSecretEnv({})).toBeUndefined();
    expect(agentTokenSecretEnv({ SWARMBENCH_AGENT_TOKEN: token, SWARMBENCH_AGENT_TOKEN_SECRET: 'nightly-a1-token-x7k2p' })).toBe('nightly-a1-token-x7k2p');
    expect(() => agentTokenSecretEnv({ SWARMBENCH_AGENT_TOKEN: token })).toThrow(/SWARMBENCH_AGENT_TOKEN is set but SWARMBENCH_AGENT_TOKEN_SECRET/);
    expect(() => agentTokenSecretEnv({ SWARMBENCH_AGENT_TOKEN_SECRET: 'nightly-a1-token-x7k2p' })).toThrow(/SWARMBENCH_AGENT_TOKEN_SECRET is set but SWARMBENCH_AGENT_TOKEN /);
    expect(() => agentTokenSecretEnv({ SWARMBENCH_AGENT_TOKEN: token, SWARMBENCH_AGENT_TOKEN_SECRET: 'Bad_Name' })).toThrow(/^SWARMBENCH_AGENT_TOKEN_SECRET: "Bad_Name" is not a Secret name/);
  });
});

describe('the run\'s NetworkPolicy', () => {
  const run = { namespace: NS, name: 'nightly', uid: 'u-1' };

  it('reaches the API server with its `from` peers (client-node writes only its model\'s `_from`; without them a rule admits everyone)', async () => {
    const bodies: string[] = [];
    const server = http.createServer((req, res) => {
      let b = '';
      req.on('data', (c: Buffer) => (b += c.toString('utf8')));
      req.on('end', () => {
        bodies.push(b);
        res.writeHead(201, { 'content-type': 'application/json' }).end(b);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
        users: [{ name: 'u' }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
      const np = agentNetworkPolicy(run, [{ namespaceSelector: { matchLabels: { name: 'monitoring' } } }]);
      await kc.makeApiClient(NetworkingV1Api).createNamespacedNetworkPolicy({ namespace: NS, body: np as V1NetworkPolicy });
      const wire = JSON.parse(bodies[0]!) as { spec: { ingress: Record<string, unknown>[] } };
      expect(wire.spec.ingress[0]!.from).toEqual([{ podSelector: { matchLabels: { 'swarmbench.io/run-uid': 'u-1' } } }, { namespaceSelector: { matchLabels: { name: 'monitoring' } } }]);
      expect(wire.spec.ingress[0]!._from).toBeUndefined();
    } finally {
      server.close();
    }
  });

  it('admits to the run\'s agents, on the agent port, only the run\'s own pods and the configured Prometheus; egress is free', () => {
    const prom = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } } };
    const np = agentNetworkPolicy(run, [prom]);
    expect(np.metadata).toMatchObject({ name: 'nightly-agents', namespace: NS, ownerReferences: [expect.objectContaining({ uid: 'u-1', controller: true })] });
    expect(np.spec).toEqual({
      podSelector: { matchLabels: { 'swarmbench.io/run-uid': 'u-1', 'swarmbench.io/component': 'agent' } },
      policyTypes: ['Ingress'],
      ingress: [{ _from: [{ podSelector: { matchLabels: { 'swarmbench.io/run-uid': 'u-1' } } }, prom], ports: [{ protocol: 'TCP', port: 8080, endPort: 8179 }] }],
    });
    expect(agentNetworkPolicy(run).spec.ingress[0]!._from).toEqual([{ podSelector: { matchLabels: { 'swarmbench.io/run-uid': 'u-1' } } }]);
    // The agent pods carry the labels the policy selects by.
    const d = agentDeployment({ ctx: { run, attempt: 1, step: 's', category: 's' }, pool: { name: 'p', capacity: 1 }, replicas: 1, image: 'x/swarmbench:1', ownImage: true });
    for (const [k, v] of Object.entries(np.spec.podSelector.matchLabels)) expect(d.spec!.template.metadata!.labels![k]).toBe(v);
  });

  it('--agent-ingress-from: one peer or a list; a peer without selectors or with a bad field is refused, naming it', () => {
    expect(parseIngressPeers(undefined)).toEqual([]);
    expect(parseIngressPeers('{"podSelector":{"matchLabels":{"a":"b"}}}')).toEqual([{ podSelector: { matchLabels: { a: 'b' } } }]);
    expect(parseIngressPeers('[{"namespaceSelector":{}}]')).toEqual([{ namespaceSelector: {} }]);
    expect(() => parseIngressPeers('{}')).toThrow(/needs a namespaceSelector or a podSelector/);
    expect(() => parseIngressPeers('{"podSelector":{"matchLabels":{"a":1}}}')).toThrow(/--agent-ingress-from: 0\.podSelector\.matchLabels\.a/);
    expect(() => parseIngressPeers('{"ipBlock":{}}')).toThrow(/--agent-ingress-from/);
    expect(() => parseIngressPeers('nope')).toThrow(/not JSON/);
  });

  it('is created with the run\'s runner identity, once, owned by the run, with the operator\'s Prometheus peer', async () => {
    const w = new World({ agentIngressFrom: '{"namespaceSelector":{"matchLabels":{"name":"monitoring"}}}' });
    w.addRun('nightly');
    await w.settle('nightly');
    const np = w.fake.get('NetworkPolicy', NS, networkPolicyName('nightly')) as unknown as ReturnType<typeof agentNetworkPolicy>;
    expect(np.spec).toEqual(agentNetworkPolicy({ namespace: NS, name: 'nightly', uid: w.run('nightly').metadata.uid }, [{ namespaceSelector: { matchLabels: { name: 'monitoring' } } }]).spec);
    expect(np.metadata.ownerReferences[0]!.uid).toBe(w.run('nightly').metadata.uid);
  });
});

describe('spec.agents.resources reaches the agent pods', () => {
  it('spec → frozen params → the runner\'s scheduling → the agent container', () => {
    const resources = { requests: { cpu: '200m', memory: '128Mi' }, limits: { cpu: '1', memory: '256Mi' } };
    const params = resolveParams({ ...SPEC, agents: { resources } });
    expect(params.agents.resources).toEqual(resources);
    expect(resolveParams(SPEC).agents.resources).toBeUndefined();
    const sched = agentScheduling('{"nodeSelector":{"pool":"bench"},"resources":{"requests":{"cpu":"1"}}}', params)!;
    expect(sched).toEqual({ nodeSelector: { pool: 'bench' }, resources });
    expect(agentScheduling(undefined, resolveParams(SPEC))).toBeUndefined();
    const d = agentDeployment({ ctx: { run: { namespace: NS, name: 'n', uid: 'u' }, attempt: 1, step: 's', category: 's' }, pool: { name: 'p', capacity: 1 }, replicas: 1, image: 'x/swarmbench:1', ownImage: true, scheduling: sched });
    expect(d.spec!.template.spec!.containers[0]!.resources).toEqual(resources);
  });
});
