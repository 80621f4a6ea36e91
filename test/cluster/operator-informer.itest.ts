/**
 * The operator's informers and Kubernetes helpers against the real API server of the test
 * cluster (`npm run cluster:up`, then `npm run test:cluster`): the BenchmarkRun CRD applied with
 * kubectl; create/update/delete of BenchmarkRuns and of labelled ConfigMaps mapped back to the
 * owner's key through a WorkQueue; recovery after the watch is refused (RBAC taken away and given
 * back) with deletes made during the outage still seen; the silent-watch reconnect; the status
 * merge-patch through /status only; create-or-get of children.
 *
 * Skipped (reason in the suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  ApiextensionsV1Api, AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KUBECONFIG, REPO, TOOLS_BIN } from './lib/config.ts';
import { benchmarkRunInformer, configMapInformer, deploymentInformer, jobInformer, waitForSync, type EventType } from '../../src/kube/informer.ts';
import type { BenchmarkRunStatus } from '../../src/api/schema.ts';
import { createOrGet, isNotFound, patchRunStatus, patchRunStatusRaw } from '../../src/kube/client.ts';
import { CATEGORY_LABEL, isControlledBy, ownerReference, ownerRunKey, runLabels } from '../../src/kube/names.ts';
import { WorkQueue } from '../../src/kube/queue.ts';
import { clusterNotUp, until as untilBase } from './lib/itest.ts';

const run = promisify(execFile);

const notUp = await clusterNotUp();
if (notUp && process.env.SWARMBENCH_REQUIRE_CLUSTER === '1') throw new Error(`the test cluster is not up (${notUp}); run npm run cluster:up`);
const title = notUp ? `operator informers [SKIPPED: cluster not up: ${notUp}; run npm run cluster:up]` : 'operator informers and kube helpers';

/** The shared poll-until-deadline, with this file's defaults (30_000 ms, every 50 ms). */
const until = <T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 50): Promise<T> =>
  untilBase(what, fn, timeoutMs, everyMs);

const GROUP = 'swarmbench.io';
const VERSION = 'v1alpha1';
const PLURAL = 'benchmarkruns';
const quiet = { info: () => {}, warn: () => {}, debug: () => {} };

describe.skipIf(!!notUp)(title, () => {
  const kc = new KubeConfig();
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let rbac: RbacAuthorizationV1Api;
  const ns = `optest-inf-${Date.now().toString(36)}`;
  const informers: Array<{ stop(): Promise<void> }> = [];
  const track = <T extends { stop(): Promise<void> }>(i: T): T => (informers.push(i), i);

  const createRun = (name: string, spec: Record<string, unknown> = { mode: 'quick' }): Promise<{ metadata: { uid: string; generation: number } }> =>
    custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'BenchmarkRun', metadata: { name }, spec } });

  beforeAll(async () => {
    kc.loadFromFile(KUBECONFIG);
    core = kc.makeApiClient(CoreV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
    rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await run(join(TOOLS_BIN, 'kubectl'), ['apply', '-f', join(REPO, 'crds')], { env: { ...process.env, KUBECONFIG } });
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    await until('the BenchmarkRun CRD Established', async () => {
      const crd = await ext.readCustomResourceDefinition({ name: `${PLURAL}.${GROUP}` });
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    });
    await core.createNamespace({ body: { metadata: { name: ns } } });
  });

  afterAll(async () => {
    for (const i of informers) await i.stop();
    await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('sees create/update/delete of BenchmarkRuns and of labelled ConfigMaps, children mapped to the owner key through the queue', async () => {
    const runs = track(benchmarkRunInformer(kc, { namespace: ns, log: quiet }));
    const cms = track(configMapInformer(kc, { namespace: ns, labelSelector: 'app.kubernetes.io/managed-by=swarmbench', log: quiet }));
    const runEvents: Array<[EventType, string, number | undefined]> = [];
    const cmEvents: Array<[EventType, string]> = [];
    runs.on((o, t) => runEvents.push([t, o.metadata!.name!, o.metadata!.generation]));
    cms.on((o, t) => cmEvents.push([t, o.metadata!.name!]));
    const q = new WorkQueue({ name: 'benchmarkrun' });
    runs.enqueue(q);
    cms.enqueue(q, ownerRunKey);
    const processed: string[] = [];
    const worker = q.run(async (key) => void processed.push(key), { concurrency: 2 });
    runs.start();
    cms.start();
    await Promise.all([runs.synced, cms.synced]);
    expect(runs.list()).toEqual([]);

    const alpha = await createRun('alpha');
    await until('add of alpha', () => runEvents.some(([t, n]) => t === 'add' && n === 'alpha'));
    expect(runs.get(`${ns}/alpha`)?.metadata?.uid).toBe(alpha.metadata.uid);
    await until('alpha processed', () => processed.includes(`${ns}/alpha`));

    await custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, name: 'alpha', body: { spec: { mode: 'full' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await until('update of alpha to generation 2', () => runEvents.some(([t, n, g]) => t === 'update' && n === 'alpha' && g === 2));
    // The cache holds runs slim (kube/informer.ts `runMetadata`): the new generation, not the spec (the reconcile GETs the run).
    expect(runs.get(`${ns}/alpha`)?.metadata?.generation).toBe(2);
    expect(runs.get(`${ns}/alpha`)?.spec).toBeUndefined();

    // Children: one by label only, one by controller ownerReference only (no run label), one not ours.
    processed.length = 0;
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'alpha-step-1', labels: runLabels('alpha', 1, { [CATEGORY_LABEL]: 'distributed' }) }, data: { r: '1' } } });
    const beta = await createRun('beta');
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: {
        metadata: {
          name: 'beta-export', labels: { 'app.kubernetes.io/managed-by': 'swarmbench' },
          ownerReferences: [ownerReference({ name: 'beta', uid: beta.metadata.uid })],
        },
      },
    });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'unrelated' } } });
    await until('both children seen', () => cms.get(`${ns}/alpha-step-1`) && cms.get(`${ns}/beta-export`));
    await until('owners of the children processed', () => processed.includes(`${ns}/alpha`) && processed.includes(`${ns}/beta`));
    expect(ownerRunKey(cms.get(`${ns}/beta-export`)!)).toBe(`${ns}/beta`);
    expect(cms.get(`${ns}/unrelated`)).toBeUndefined(); // outside the label selector

    // Deleting the child is an event for its owner; deleting the owner is a delete in the cache.
    processed.length = 0;
    await core.deleteNamespacedConfigMap({ name: 'alpha-step-1', namespace: ns });
    await until('delete of alpha-step-1', () => cmEvents.some(([t, n]) => t === 'delete' && n === 'alpha-step-1'));
    await until('alpha processed after its child went', () => processed.includes(`${ns}/alpha`));
    await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, name: 'alpha' });
    await until('delete of alpha', () => runEvents.some(([t, n]) => t === 'delete' && n === 'alpha'));
    expect(runs.get(`${ns}/alpha`)).toBeUndefined();
    expect(runs.keys()).toEqual([`${ns}/beta`]);

    // Resync re-delivers every cached key.
    processed.length = 0;
    runs.resync();
    await until('beta processed on resync', () => processed.includes(`${ns}/beta`));
    // A freshly applied CRD can end the first watches (the API server rebuilds the resource's
    // storage); the informer restarts, which is what it is for. Say so when it happened.
    if (runs.stats.errors > 0) console.log(`benchmarkruns informer restarted ${runs.stats.errors}x: ${runs.stats.lastError}`);

    await Promise.all([runs.stop(), cms.stop()]);
    await q.shutdown({ drain: true });
    await worker;
  });

  it('recovers after its watch is refused: RBAC taken away and given back; changes made meanwhile (a delete too) are seen', async () => {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'watcher' } } });
    await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: 'watcher' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch'] }] } });
    const binding = { metadata: { name: 'watcher' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'watcher' }, subjects: [{ kind: 'ServiceAccount', name: 'watcher', namespace: ns }] };
    await rbac.createNamespacedRoleBinding({ namespace: ns, body: binding });
    const tr = await core.createNamespacedServiceAccountToken({ name: 'watcher', namespace: ns, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
    const cluster = kc.getCurrentCluster()!;
    const wkc = new KubeConfig();
    wkc.loadFromOptions({
      clusters: [{ name: 'c', server: cluster.server, caData: cluster.caData, caFile: cluster.caFile, skipTLSVerify: false }],
      users: [{ name: 'watcher', token: tr.status!.token }],
      contexts: [{ name: 'w', cluster: 'c', user: 'watcher', namespace: ns }],
      currentContext: 'w',
    });

    const inf = track(configMapInformer(wkc, { namespace: ns, labelSelector: 'test=recovery', silentTimeoutMs: 800, restartBaseMs: 100, restartMaxMs: 1000, log: quiet }));
    const events: Array<[EventType, string]> = [];
    inf.on((o: V1ConfigMap, t) => events.push([t, o.metadata!.name!]));
    inf.start();
    await inf.synced;
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'one', labels: { test: 'recovery' } } } });
    await until('one seen', () => inf.get(`${ns}/one`));

    await rbac.deleteNamespacedRoleBinding({ name: 'watcher', namespace: ns });
    const broken = Date.now();
    // The open watch outlives the binding; its next reconnect (after 800 ms of silence) is refused.
    await until('the watch refused (403)', () => inf.stats.errors >= 1 && /403/.test(inf.stats.lastError ?? ''), 15_000);
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'two', labels: { test: 'recovery' } } } });
    await core.deleteNamespacedConfigMap({ name: 'one', namespace: ns });
    const failedRestarts = await until('a few failed restarts', () => inf.stats.errors >= 3 && inf.stats.errors, 15_000);
    expect(inf.get(`${ns}/two`)).toBeUndefined();

    await rbac.createNamespacedRoleBinding({ namespace: ns, body: binding });
    const restored = Date.now();
    await until('two seen and one gone after the binding is back', () => inf.get(`${ns}/two`) && !inf.get(`${ns}/one`), 15_000);
    const recoveredMs = Date.now() - restored;
    expect(events).toContainEqual(['delete', 'one']);
    expect(events).toContainEqual(['add', 'two']);
    expect(inf.stats.generations).toBeGreaterThanOrEqual(failedRestarts + 1);
    console.log(`informer recovery: refused ${restored - broken} ms (${failedRestarts} errors), caught up ${recoveredMs} ms after the RoleBinding came back`);
    expect(recoveredMs).toBeLessThan(5000); // restartMaxMs 1000 + a list

    // And it keeps watching afterwards.
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'three', labels: { test: 'recovery' } } } });
    await until('three seen', () => inf.get(`${ns}/three`));
    await inf.stop();
  });

  it('reconnects a silent watch (tiny silent timeout) without a relist, and still delivers events', async () => {
    const inf = track(configMapInformer(kc, { namespace: ns, labelSelector: 'test=silent', silentTimeoutMs: 300, log: quiet }));
    const seen: string[] = [];
    inf.on((o: V1ConfigMap) => seen.push(o.metadata!.name!));
    inf.start();
    await inf.synced;
    const c0 = inf.stats.connects;
    await until('3 reconnects while silent', () => inf.stats.connects >= c0 + 3, 10_000);
    expect(inf.stats.errors).toBe(0);
    expect(inf.stats.generations).toBe(1);
    expect(inf.stats.lists).toBe(1); // reconnected from the last resourceVersion, not relisted
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'after-silence', labels: { test: 'silent' } } } });
    await until('after-silence seen', () => seen.includes('after-silence'));
    await inf.stop();
  });

  it('Jobs and Deployments a run owns map back to the run through the controller ownerReference', async () => {
    const owner = await createRun('epsilon');
    const ref = ownerReference({ name: 'epsilon', uid: owner.metadata.uid });
    const sel = 'app.kubernetes.io/managed-by=swarmbench';
    const jobs = track(jobInformer(kc, { namespace: ns, labelSelector: sel, log: quiet }));
    const deps = track(deploymentInformer(kc, { namespace: ns, labelSelector: sel, log: quiet }));
    const q = new WorkQueue({ name: 'children' });
    jobs.enqueue(q, ownerRunKey);
    deps.enqueue(q, ownerRunKey);
    jobs.start();
    deps.start();
    await waitForSync([jobs, deps], 10_000);
    const labels = { 'app.kubernetes.io/managed-by': 'swarmbench' }; // no run label: the ownerRef alone
    const pod = { metadata: { labels: { app: 'eps' } }, spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'ghcr.io/swarmbench/swarmbench:dev', args: ['probe'] }] } };
    await kc.makeApiClient(BatchV1Api).createNamespacedJob({ namespace: ns, body: { metadata: { name: 'epsilon-step-1', labels, ownerReferences: [ref] }, spec: { suspend: true, template: pod } } });
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({ namespace: ns, body: { metadata: { name: 'epsilon-agents', labels, ownerReferences: [ref] }, spec: { replicas: 0, selector: { matchLabels: { app: 'eps' } }, template: { ...pod, spec: { ...pod.spec, restartPolicy: 'Always' } } } } });
    await until('both children cached', () => jobs.get(`${ns}/epsilon-step-1`) && deps.get(`${ns}/epsilon-agents`));
    expect(await q.get()).toBe(`${ns}/epsilon`);
    await Promise.all([jobs.stop(), deps.stop()]);
    await q.shutdown();
  });

  it('status merge-patch goes to /status only: a spec change in the same patch is ignored, generation unchanged', async () => {
    const created = await createRun('gamma', { mode: 'quick' });
    expect(created.metadata.generation).toBe(1);
    const now = new Date().toISOString();
    const a = await patchRunStatus<BenchmarkRunStatus>(custom, ns, 'gamma', {
      phase: 'Running', observedGeneration: 1, attempt: 1,
      conditions: [{ type: 'Progressing', status: 'True', reason: 'Started', message: 'attempt 1', lastTransitionTime: now, observedGeneration: 1 }],
    });
    expect(a.status?.phase).toBe('Running');
    expect(a.metadata?.generation).toBe(1);

    const b = await patchRunStatusRaw<BenchmarkRunStatus>(custom, ns, 'gamma', { spec: { mode: 'full' }, metadata: { labels: { sneaky: 'yes' } }, status: { attempt: 2 } });
    expect((b as { spec?: { mode?: string } }).spec?.mode).toBe('quick');
    expect(b.metadata?.labels?.sneaky).toBeUndefined();
    expect(b.metadata?.generation).toBe(1);
    expect(b.status?.attempt).toBe(2);
    expect(b.status?.phase).toBe('Running'); // merged, not replaced
    expect(b.status?.conditions?.[0]?.type).toBe('Progressing');

    const fresh = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, name: 'gamma' })) as { spec: { mode: string }; metadata: { generation: number }; status: { attempt: number } };
    expect(fresh.spec.mode).toBe('quick');
    expect(fresh.metadata.generation).toBe(1);
    expect(fresh.status.attempt).toBe(2);

    // null deletes a field (merge-patch semantics); the schema still validates the status.
    const c = await patchRunStatus<BenchmarkRunStatus>(custom, ns, 'gamma', { attempt: null } as unknown as Record<string, unknown>);
    expect(c.status?.attempt).toBeUndefined();
    await expect(patchRunStatus<BenchmarkRunStatus>(custom, ns, 'gamma', { phase: 'Exploded' } as unknown as Record<string, unknown>)).rejects.toMatchObject({ code: 422 });
    await expect(patchRunStatus<BenchmarkRunStatus>(custom, ns, 'nope', { phase: 'Running' })).rejects.toSatisfy(isNotFound);
  });

  it('createOrGet: the second create of a deterministic name reads the existing child', async () => {
    const owner = await createRun('delta');
    const ref = ownerReference({ name: 'delta', uid: owner.metadata.uid });
    const body = { metadata: { name: 'delta-results', labels: runLabels('delta', 1), ownerReferences: [ref] }, data: { v: '1' } };
    const create = (data: Record<string, string>) => () => core.createNamespacedConfigMap({ namespace: ns, body: { ...body, data } });
    const read = () => core.readNamespacedConfigMap({ name: 'delta-results', namespace: ns });
    const first = await createOrGet(create({ v: '1' }), read);
    expect(first.created).toBe(true);
    const second = await createOrGet(create({ v: '2' }), read);
    expect(second.created).toBe(false);
    expect(second.object.data).toEqual({ v: '1' }); // the existing one, for the caller to compare
    expect(second.object.metadata?.uid).toBe(first.object.metadata?.uid);
    expect(isControlledBy(second.object, owner.metadata.uid)).toBe(true);
    expect(isControlledBy(second.object, 'someone-else')).toBe(false);
    // Other errors pass through.
    await expect(createOrGet(() => core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'Bad_Name' } } }), read)).rejects.toMatchObject({ code: 422 });
  });
});
