/**
 * A hostile tenant on the real test cluster (issue 12, docs/security.md): a ServiceAccount that may
 * create BenchmarkRuns in its own namespace and nothing else (proven with `kubectl auth can-i`)
 * tries every door a run's spec and a run's agents open. Every case asserts what was NOT changed
 * as well as the condition written:
 *
 * - a run naming an unconsenting Secret as its Prometheus token, with a capture server as its
 *   Prometheus, is SpecInvalid naming the field, and the capture server receives nothing; the same
 *   shape with a consenting Secret and an allowed URL does send the token (the positive control);
 * - an export name of a foreign ConfigMap, and a pre-existing `<run>-runner` ServiceAccount, Role
 *   and RoleBinding the run does not own: each byte-for-byte unchanged, the run shows `Conflict`;
 * - `team.a` and `team-a` both complete with separate objects; a run deleted and re-created with a
 *   different spec mid-run uses only its new spec;
 * - calls to a run's agent without its token (from this process: every pod of this cluster shares
 *   the host's network namespace, so a pod in another namespace, or in the same namespace but not
 *   of the run, connects exactly as this process does) get 401 on /v1/faults, /v1/cluster/sync and
 *   /v1/tasks, and change nothing. This cluster has no CNI, so NetworkPolicy is not enforced here:
 *   the run's policy object is checked for content instead (docs/security.md says so);
 * - oversized and deeply nested state writes get 413 and the agent keeps serving; agent pods carry
 *   the requested resources;
 * - a toleration for a control-plane taint is SpecInvalid; a run in the operator's namespace is
 *   refused.
 *
 * Skipped (reason in the suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CustomObjectsApi, KubeConfig, NetworkingV1Api, RbacAuthorizationV1Api, type V1ConfigMap, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PARAMS_TOKEN_SECRET_KEY, agentTokenSecretPrefix, isAgentTokenSecretName, jobName, networkPolicyName, paramsName, runnerName } from '../../src/kube/names.ts';
import { APISERVER_URL, PKI } from './lib/config.ts';
import { adminClients, clusterGate, kubectl, prepareNamespace, startOperator, TEST_ADMISSION, until, type OperatorProcess } from './lib/itest.ts';

const gate = await clusterGate('hostile tenant');

const stamp = Date.now().toString(36);
const ns = `tenant-${stamp}`;
const other = `tenant-other-${stamp}`;
const opNs = `tenant-op-${stamp}`;
/** A non-loopback address of this machine (TEST-NET-1 on eth0): the capture server's. */
const CAPTURE_HOST = '192.0.2.2';
/** Small executed runs: one category, a pool of 3. */
const SMALL = { mode: 'quick', categories: ['integration'], trials: 3, agents: { poolSize: 3 }, cleanup: { policy: 'Never' } };
const GROUP = { group: 'swarmbench.io', version: 'v1alpha1', plural: 'benchmarkruns' };

interface Condition { type: string; status: string; reason?: string; message?: string }
interface Run {
  metadata: { name: string; uid: string };
  status?: { phase?: string; conditions?: Condition[]; tests?: { id: string }[]; export?: { configMapName: string } };
}

/** Everything of an object but what the API server changes by itself. */
const frozen = (o: { metadata?: { managedFields?: unknown } }) => JSON.stringify({ ...o, metadata: { ...o.metadata, managedFields: undefined } });

describe.skipIf(!!gate.notUp)(gate.title, () => {
  let admin: ReturnType<typeof adminClients>;
  let tenant: CustomObjectsApi;
  let net: NetworkingV1Api;
  let operator: OperatorProcess | undefined;
  let capture: http.Server;
  let captureUrl = '';
  const captured: { path: string; authorization: string | undefined }[] = [];

  const can = (verb: string, what: string, namespace: string): boolean => {
    const r = kubectl(['auth', 'can-i', verb, what, '-n', namespace, '--as', `system:serviceaccount:${ns}:tenant`]);
    if (r.code !== 0 && r.code !== 1) throw new Error(`kubectl auth can-i ${verb} ${what}: ${r.stderr}`);
    return r.code === 0;
  };
  const create = (name: string, spec: Record<string, unknown>, namespace = ns, api?: CustomObjectsApi) =>
    (api ?? tenant).createNamespacedCustomObject({ ...GROUP, namespace, body: { apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name }, spec } }) as Promise<Run>;
  const get = (name: string, namespace = ns) => admin.custom.getNamespacedCustomObject({ ...GROUP, namespace, name }) as Promise<Run>;
  const cond = (r: Run, type: string) => r.status?.conditions?.find((c) => c.type === type);
  const log = () => `\noperator log tail:\n${(operator?.log ?? []).slice(-30).join('')}`;
  const specInvalid = (name: string, namespace = ns) =>
    until(`${name} SpecInvalid`, async () => {
      const r = await get(name, namespace);
      return cond(r, 'Ready')?.reason === 'SpecInvalid' ? r : undefined;
    }, 60_000, 500).catch((e: unknown) => { throw new Error(`${String(e)}${log()}`); });
  const conflicted = (name: string, timeoutMs = 60_000) =>
    until(`${name} Conflict`, async () => {
      const r = await get(name);
      return cond(r, 'Conflict')?.status === 'True' ? r : undefined;
    }, timeoutMs, 500).catch((e: unknown) => { throw new Error(`${String(e)}${log()}`); });
  const finished = (name: string, timeoutMs = 420_000) =>
    until(`${name} to finish`, async () => {
      const r = await get(name);
      return r.status?.phase === 'Succeeded' || r.status?.phase === 'Failed' ? r : undefined;
    }, timeoutMs, 1000).catch((e: unknown) => { throw new Error(`${String(e)}${log()}`); });
  const jobsOf = async (uid: string) => (await admin.batch.listNamespacedJob({ namespace: ns, labelSelector: `swarmbench.io/run-uid=${uid}` })).items;

  beforeAll(async () => {
    admin = adminClients();
    net = admin.kc.makeApiClient(NetworkingV1Api);
    prepareNamespace(ns);
    for (const n of [other, opNs]) {
      const r = kubectl(['create', 'namespace', n]);
      if (r.code !== 0) throw new Error(r.stderr);
    }
    // The tenant: BenchmarkRuns in its namespace, nothing else.
    await admin.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'tenant' } } });
    const rbac = admin.kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: 'tenant' }, rules: [{ apiGroups: ['swarmbench.io'], resources: ['benchmarkruns'], verbs: ['get', 'list', 'watch', 'create', 'delete'] }] } });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: { metadata: { name: 'tenant' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'tenant' }, subjects: [{ kind: 'ServiceAccount', name: 'tenant', namespace: ns }] },
    });
    const tr = await admin.core.createNamespacedServiceAccountToken({ name: 'tenant', namespace: ns, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'test', server: APISERVER_URL, caFile: join(PKI, 'ca.crt') }],
      users: [{ name: 'tenant', token: tr.status!.token }],
      contexts: [{ name: 'tenant', cluster: 'test', user: 'tenant', namespace: ns }],
      currentContext: 'tenant',
    });
    tenant = kc.makeApiClient(CustomObjectsApi);

    // A capture server standing in for "a Prometheus of the author's choosing".
    capture = http.createServer((req, res) => {
      captured.push({ path: req.url ?? '', authorization: req.headers.authorization });
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"status":"error"}');
    });
    await new Promise<void>((r) => capture.listen(0, CAPTURE_HOST, r));
    captureUrl = `http://${CAPTURE_HOST}:${(capture.address() as AddressInfo).port}`;

    // The operator watches the tenant's namespace and its own; only the capture server's URL is
    // allowed to receive a token (for the positive control).
    const admission = JSON.stringify({ ...JSON.parse(TEST_ADMISSION), prometheus: { ...JSON.parse(TEST_ADMISSION).prometheus, allowedUrls: [captureUrl] } });
    operator = startOperator(`${ns},${opNs}`, ['--leader-elect', 'false', '--admission', admission], 'tenant-op', { POD_NAMESPACE: opNs });
  }, 120_000);

  afterAll(async () => {
    operator?.proc.kill('SIGTERM');
    capture?.close();
    for (const n of [ns, other, opNs]) await admin?.core.deleteNamespace({ name: n }).catch(() => undefined);
  });

  it('the tenant may create BenchmarkRuns in its namespace and nothing else', () => {
    expect(can('create', 'benchmarkruns.swarmbench.io', ns)).toBe(true);
    expect(can('create', 'benchmarkruns.swarmbench.io', other)).toBe(false);
    for (const what of ['secrets', 'configmaps', 'pods', 'serviceaccounts', 'roles.rbac.authorization.k8s.io', 'networkpolicies.networking.k8s.io', 'jobs.batch']) {
      expect(can('get', what, ns), `get ${what}`).toBe(false);
      expect(can('create', what, ns), `create ${what}`).toBe(false);
    }
    expect(can('update', 'configmaps', ns)).toBe(false);
  });

  it('an unconsenting Secret as the Prometheus token: SpecInvalid naming the field, the capture server receives nothing', async () => {
    const secret = await admin.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'db-creds' }, stringData: { password: 'hunter2-db-password' } } });
    await create('leaky', { ...SMALL, prometheus: { url: captureUrl, bearerTokenSecretRef: { name: 'db-creds', key: 'password' } } });
    const r = await specInvalid('leaky');
    const msg = cond(r, 'Ready')!.message!;
    expect(msg).toContain('spec.prometheus.bearerTokenSecretRef.name');
    expect(msg).toMatch(/swarmbench\.io\/consumer=true/); // says how to allow it
    expect(r.status!.phase).toBe('Failed');
    expect(await jobsOf(r.metadata.uid)).toEqual([]);
    // Give the operator time to do anything it would have done: nothing reaches the capture server.
    await new Promise((res) => setTimeout(res, 3000));
    expect(captured).toEqual([]);
    // The Secret is untouched.
    expect(frozen(await admin.core.readNamespacedSecret({ namespace: ns, name: 'db-creds' }))).toBe(frozen(secret));
  }, 90_000);

  it('the positive control: a consenting Secret and an allowed URL do send the token (so the test above could fail)', async () => {
    await admin.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'prom-creds', labels: { 'swarmbench.io/consumer': 'true' } }, stringData: { token: 'prom-bearer-0123456789' } } });
    await create('consented', { ...SMALL, prometheus: { url: captureUrl, bearerTokenSecretRef: { name: 'prom-creds', key: 'token' } } });
    await until('a request with the token at the capture server', () => captured.some((c) => c.authorization === 'Bearer prom-bearer-0123456789'), 420_000, 1000)
      .catch((e: unknown) => { throw new Error(`${String(e)}${log()}`); });
    expect(captured.every((c) => c.authorization === 'Bearer prom-bearer-0123456789')).toBe(true);
  }, 450_000);

  it('a foreign export ConfigMap and a squatted runner identity: byte-for-byte unchanged, Conflict naming them', async () => {
    const shared = await admin.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'shared-dashboard', labels: { team: 'ops' } }, data: { 'dashboard.json': '{"panels":[]}' } } });
    const name = 'squatted';
    const rbac = admin.kc.makeApiClient(RbacAuthorizationV1Api);
    const sa = await admin.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: runnerName(name) } } });
    const role = await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: runnerName(name) }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }] } });
    const rb = await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: { metadata: { name: runnerName(name) }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: runnerName(name) }, subjects: [{ kind: 'ServiceAccount', name: runnerName(name), namespace: ns }] },
    });
    await create(name, SMALL);
    await create('exporter', { ...SMALL, export: { configMapName: 'shared-dashboard' } });

    const sq = await conflicted(name);
    expect(cond(sq, 'Conflict')!.reason).toBe('ObjectNotOwned');
    expect(cond(sq, 'Conflict')!.message).toMatch(new RegExp(`(ServiceAccount|Role|RoleBinding) ${ns}/${runnerName(name)}`));
    expect(await jobsOf(sq.metadata.uid)).toEqual([]);

    // The exporter runs its step, then meets the foreign ConfigMap at its export.
    const ex = await conflicted('exporter', 420_000);
    expect(cond(ex, 'Conflict')!.message).toContain(`ConfigMap ${ns}/shared-dashboard`);

    expect(frozen(await admin.core.readNamespacedServiceAccount({ namespace: ns, name: runnerName(name) }))).toBe(frozen(sa));
    expect(frozen(await rbac.readNamespacedRole({ namespace: ns, name: runnerName(name) }))).toBe(frozen(role));
    expect(frozen(await rbac.readNamespacedRoleBinding({ namespace: ns, name: runnerName(name) }))).toBe(frozen(rb));
    expect(frozen(await admin.core.readNamespacedConfigMap({ namespace: ns, name: 'shared-dashboard' }))).toBe(frozen(shared));

    // Deleting the runs leaves the foreign objects alone too.
    for (const n of [name, 'exporter']) await tenant.deleteNamespacedCustomObject({ ...GROUP, namespace: ns, name: n });
    await until('the runs to be gone', async () => {
      const l = (await admin.custom.listNamespacedCustomObject({ ...GROUP, namespace: ns })) as { items: Run[] };
      return l.items.some((r) => r.metadata.name === name || r.metadata.name === 'exporter') ? undefined : true;
    }, 60_000, 500);
    await new Promise((res) => setTimeout(res, 3000));
    expect(frozen(await admin.core.readNamespacedConfigMap({ namespace: ns, name: 'shared-dashboard' }))).toBe(frozen(shared));
    expect(frozen(await rbac.readNamespacedRole({ namespace: ns, name: runnerName(name) }))).toBe(frozen(role));
  }, 480_000);

  it('team.a and team-a both complete with separate objects; their agents refuse calls without the token, cap state writes, carry the resources asked', async () => {
    const resources = { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } };
    const a = await create('team.a', SMALL);
    const b = await create('team-a', { ...SMALL, agents: { poolSize: 3, resources } });

    // While team-a runs: one of its agents, Ready.
    const pod = await until('a ready agent pod of team-a', async () => {
      const pods = (await admin.core.listNamespacedPod({ namespace: ns, labelSelector: `swarmbench.io/run-uid=${b.metadata.uid},swarmbench.io/component=agent` })).items;
      return pods.find((p: V1Pod) => p.status?.podIP && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    }, 300_000, 250).catch((e: unknown) => { throw new Error(`${String(e)}${log()}`); });
    const base = `http://${pod.status!.podIP}:8080`;
    // The attempt's token Secret: the API server named it (generateName); the params ConfigMap says which.
    const tokenSecretOf = async (run: string) =>
      (await admin.core.readNamespacedConfigMap({ namespace: ns, name: paramsName(run, 1) })).data![PARAMS_TOKEN_SECRET_KEY]!;
    const secret = await admin.core.readNamespacedSecret({ namespace: ns, name: await tokenSecretOf('team-a') });
    expect(pod.spec!.containers[0]!.env!.find((e) => e.name === 'SWARMBENCH_AGENT_TOKEN')!.valueFrom!.secretKeyRef!.name).toBe(secret.metadata!.name);
    const token = Buffer.from(secret.data!.token!, 'base64').toString('utf8');
    const call = async (method: string, path: string, body?: string, auth?: string) => {
      const res = await fetch(`${base}${path}`, { method, ...(body !== undefined ? { body, headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) } } : auth ? { headers: { authorization: auth } } : {}) });
      return { status: res.status, text: await res.text() };
    };
    const faultsBefore = await call('GET', '/v1/faults', undefined, `Bearer ${token}`);
    expect(faultsBefore.status).toBe(200);
    const membersBefore = JSON.parse((await call('GET', '/v1/members', undefined, `Bearer ${token}`)).text) as { members: unknown[] };
    for (const auth of [undefined, 'Bearer not-the-token-of-this-run']) {
      expect((await call('PUT', '/v1/faults', JSON.stringify({ latencyMs: 5000 }), auth)).status).toBe(401);
      expect((await call('DELETE', '/v1/faults', undefined, auth)).status).toBe(401);
      expect((await call('POST', '/v1/cluster/sync', JSON.stringify({ f: 'intruder', m: [[pod.metadata!.name, 99, 'left']] }), auth)).status).toBe(401);
      expect((await call('POST', '/v1/tasks', JSON.stringify({ id: `intruder-${stamp}`, kind: 'io', ioMs: 1 }), auth)).status).toBe(401);
    }
    // Nothing changed: the faults, the membership.
    expect((await call('GET', '/v1/faults', undefined, `Bearer ${token}`)).text).toBe(faultsBefore.text);
    const membersAfter = JSON.parse((await call('GET', '/v1/members', undefined, `Bearer ${token}`)).text) as { members: unknown[] };
    expect(membersAfter.members.length).toBe(membersBefore.members.length);
    expect((await call('GET', '/healthz')).status).toBe(200);

    // State writes past the caps: 413, and the agent keeps serving.
    const big = await call('PUT', '/v1/state/tenant-big', JSON.stringify({ value: 'x'.repeat(200 * 1024) }), `Bearer ${token}`);
    expect(big.status, big.text).toBe(413);
    const deep = await call('PUT', '/v1/state/tenant-deep', `{"value":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, `Bearer ${token}`);
    expect(deep.status, deep.text).toBe(413);
    expect((await call('GET', '/v1/info', undefined, `Bearer ${token}`)).status).toBe(200);
    expect((await call('PUT', '/v1/state/tenant-ok', JSON.stringify({ value: { ok: true } }), `Bearer ${token}`)).status).toBe(200);

    // The agent pods carry the resources asked for; team.a's the chart's defaults (never BestEffort).
    expect(pod.spec!.containers[0]!.resources).toEqual(resources);
    const aPods = await until('an agent pod of team.a', async () => {
      const pods = (await admin.core.listNamespacedPod({ namespace: ns, labelSelector: `swarmbench.io/run-uid=${a.metadata.uid},swarmbench.io/component=agent` })).items;
      return pods.length ? pods : undefined;
    }, 300_000, 250);
    expect(aPods[0]!.spec!.containers[0]!.resources).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } });

    // The run's NetworkPolicy (not enforced by this cluster: no CNI): the run's agents admit only
    // the run's own pods, on the agent port.
    const np = await net.readNamespacedNetworkPolicy({ namespace: ns, name: networkPolicyName('team-a') });
    expect(np.metadata!.ownerReferences).toEqual([expect.objectContaining({ uid: b.metadata.uid, controller: true })]);
    expect(np.spec!.podSelector).toEqual({ matchLabels: { 'swarmbench.io/run-uid': b.metadata.uid, 'swarmbench.io/component': 'agent' } });
    expect(np.spec!.policyTypes).toEqual(['Ingress']);
    expect(np.spec!.ingress).toHaveLength(1);
    // client-node names the field `_from` in its types; the object read back carries `from`.
    const rule = np.spec!.ingress![0]! as unknown as { from?: unknown; _from?: unknown };
    expect(rule.from ?? rule._from).toEqual([{ podSelector: { matchLabels: { 'swarmbench.io/run-uid': b.metadata.uid } } }]);
    expect(np.spec!.ingress![0]!.ports).toEqual([{ protocol: 'TCP', port: 8080, endPort: 8179 }]);

    // Both complete, each with its own objects.
    const [ra, rb] = await Promise.all([finished('team.a'), finished('team-a')]);
    for (const r of [ra, rb]) expect(r.status!.tests!.map((t) => t.id)).toEqual(['5.1', '5.2', '5.3']);
    expect(ra.status!.export!.configMapName).not.toBe(rb.status!.export!.configMapName);
    for (const [r, run] of [[ra, 'team.a'], [rb, 'team-a']] as const) {
      const jobs = await jobsOf(r.metadata.uid);
      expect(jobs.map((j) => j.metadata!.name)).toEqual([jobName(run, 1, 'integration')]);
      const exp: V1ConfigMap = await admin.core.readNamespacedConfigMap({ namespace: ns, name: r.status!.export!.configMapName });
      expect(exp.metadata!.ownerReferences).toEqual([expect.objectContaining({ uid: r.metadata.uid, controller: true })]);
      const tokName = await tokenSecretOf(run);
      expect(isAgentTokenSecretName(run, 1, tokName), tokName).toBe(true);
      const tok = await admin.core.readNamespacedSecret({ namespace: ns, name: tokName });
      expect(tok.metadata!.ownerReferences).toEqual([expect.objectContaining({ uid: r.metadata.uid, controller: true })]);
    }
    expect(jobName('team.a', 1, 'integration')).not.toBe(jobName('team-a', 1, 'integration'));
    expect(agentTokenSecretPrefix('team.a', 1)).not.toBe(agentTokenSecretPrefix('team-a', 1));
    expect(await tokenSecretOf('team.a')).not.toBe(await tokenSecretOf('team-a'));
  }, 600_000);

  it('a run deleted and re-created with a different spec mid-run uses only its new spec', async () => {
    const first = await create('phoenix', { ...SMALL, categories: ['distributed'] });
    await until('phoenix\'s first Job', async () => ((await jobsOf(first.metadata.uid)).length ? true : undefined), 120_000, 250);
    await tenant.deleteNamespacedCustomObject({ ...GROUP, namespace: ns, name: 'phoenix' });
    await until('phoenix to be gone', async () => {
      try {
        await get('phoenix');
        return undefined;
      } catch {
        return true;
      }
    }, 60_000, 250);
    const second = await create('phoenix', { ...SMALL, trials: 4 });
    expect(second.metadata.uid).not.toBe(first.metadata.uid);
    const done = await finished('phoenix');
    expect(done.metadata.uid).toBe(second.metadata.uid);
    expect(done.status!.tests!.map((t) => t.id)).toEqual(['5.1', '5.2', '5.3']);
    const params = await admin.core.readNamespacedConfigMap({ namespace: ns, name: paramsName('phoenix', 1) });
    expect(params.metadata!.ownerReferences).toEqual([expect.objectContaining({ uid: second.metadata.uid })]);
    const p = JSON.parse(params.data!['params.json']!) as { categories: string[]; trials: number };
    expect(p.categories).toEqual(['integration']);
    expect(p.trials).toBe(4);
    const jobs = await jobsOf(second.metadata.uid);
    expect(jobs.map((j) => j.metadata!.name)).toEqual([jobName('phoenix', 1, 'integration')]);
    // Nothing of the first run is left to be adopted: its Job was collected with it.
    expect(await jobsOf(first.metadata.uid)).toEqual([]);
  }, 480_000);

  it('a toleration for a control-plane taint is SpecInvalid; a run in the operator\'s namespace is refused', async () => {
    await create('tolerant', { ...SMALL, gpu: { tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }] } });
    const t = await specInvalid('tolerant');
    expect(cond(t, 'Ready')!.message).toContain('spec.gpu.tolerations');
    expect(await jobsOf(t.metadata.uid)).toEqual([]);

    // The tenant cannot even create it there; whoever can is refused by the operator.
    await expect(create('inside', SMALL, opNs)).rejects.toThrow();
    await create('inside', SMALL, opNs, admin.custom);
    const r = await specInvalid('inside', opNs);
    expect(cond(r, 'Ready')!.message).toContain('metadata.namespace');
    const jobs = await admin.batch.listNamespacedJob({ namespace: opNs });
    expect(jobs.items).toEqual([]);
    const secrets = await admin.core.listNamespacedSecret({ namespace: opNs, labelSelector: 'app.kubernetes.io/managed-by=swarmbench' });
    expect(secrets.items).toEqual([]);
  }, 120_000);
});
