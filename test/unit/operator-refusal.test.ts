/**
 * Issue 13: permanent errors said once, no retry storm. Over the fake cluster of
 * test/support/fake-cluster.ts, counting its calls:
 *
 * - a request the API server refuses for good (422, 400, 403 other than an exceeded quota) ends
 *   the attempt once (Degraded with the reason, one Warning event, no requeue), and the resyncs
 *   after it send nothing but the read of the run;
 * - StepFailed is told once, also when the finish after it waits or is retried;
 * - the finish is done once per attempt: a retried finish reuses the export written and does not
 *   query Prometheus again;
 * - a finished run's resyncs make no write and no delete-collection.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiException } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobName, runnerName, runnerPoolsBindingName } from '../../src/kube/names.ts';
import { SWEEP_WINDOW_MS } from '../../src/operator/cleanup.ts';
import { Reconciler } from '../../src/operator/reconcile.ts';
import { refusalOf } from '../../src/operator/status.ts';
import { FakeCluster } from '../support/fake-cluster.ts';
import { act, foreignOwner, NAME, NS, POLL, reasons, silent, TWO, World } from '../support/reconcile-world.ts';

/** The same refusal for the next `n` calls of `op` on `kind` (an API server that answers the same request the same way). */
function refuseAlways(w: World, op: Parameters<FakeCluster['failNext']>[0], code: number, kind: string, n = 20): void {
  for (let i = 0; i < n; i++) w.fake.failNext(op, code, kind);
}

/** Every create the API server would refuse (`when`), refused with `code`, recorded as a failed call. */
function refuseCreates(w: World, code: number, when: (kind: string, body: { metadata?: { name?: string } } & Record<string, unknown>) => boolean): void {
  const create = w.fake.create.bind(w.fake);
  w.fake.create = (async (kind: never, body: never) => {
    const b = body as { metadata?: { name?: string; namespace?: string } } & Record<string, unknown>;
    if (!when(kind, b)) return create(kind, body);
    const message = `${String(kind)} "${b.metadata?.name}" is forbidden: user "operator" is attempting to grant RBAC permissions not currently held`;
    w.fake.calls.push({ op: 'create', kind, namespace: b.metadata?.namespace ?? '', name: b.metadata?.name ?? '', body, failed: code });
    throw new ApiException(code, message, { kind: 'Status', code, reason: 'Forbidden', message }, {});
  }) as FakeCluster['create'];
}

/** The calls of a kind and op that the fake answered with an error. */
const refusedCalls = (w: World, op: string, kind: string) => w.fake.calls.filter((c) => c.op === op && c.kind === kind && c.failed);

/**
 * Three resyncs of a run that should be settled: what they sent. An attempt that ended is looked
 * at for the Jobs and pools its stopped runners left during its first `SWEEP_WINDOW_MS` (a read of
 * its Jobs from the cache: test/unit/operator-reconcile.test.ts); these resyncs come after.
 */
async function threeResyncs(w: World) {
  w.clock += SWEEP_WINDOW_MS;
  const o = await act(w, 3);
  return { writes: o.calls.filter((c) => ['patchRunStatus', 'createEvent', 'create', 'replace', 'delete', 'deleteCollection'].includes(c.op)), ops: o.calls.map((c) => c.op), result: o.result };
}

/** A Prometheus that answers every query with an empty vector and counts the requests. */
let prom: Server;
let promUrl = '';
let promRequests = 0;
beforeAll(async () => {
  prom = createServer((req, res) => {
    promRequests++;
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] } }));
  });
  await new Promise<void>((r) => prom.listen(0, '127.0.0.1', r));
  promUrl = `http://127.0.0.1:${(prom.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => prom.close(() => r())));

describe('refusalOf: a refusal a retry would meet again, or not', () => {
  const err = (code: number, message = 'no') => new ApiException(code, message, { kind: 'Status', code, reason: 'x', message }, {});
  it('400, 413 and 422 are Rejected, 403 Forbidden; an exceeded quota, a 409, a 5xx and a lost connection are not refusals', () => {
    expect(refusalOf(err(422, 'Job.batch "x" is invalid'))).toEqual({ reason: 'Rejected', detail: 'HTTP 422 x: Job.batch "x" is invalid' });
    expect(refusalOf(err(400))?.reason).toBe('Rejected');
    expect(refusalOf(err(413))?.reason).toBe('Rejected');
    expect(refusalOf(err(403, 'cannot bind'))?.reason).toBe('Forbidden');
    expect(refusalOf(err(403, 'jobs "x" is forbidden: exceeded quota: q, requested: count/jobs.batch=1'))).toBeUndefined();
    for (const code of [404, 409, 429, 500, 503]) expect(refusalOf(err(code)), String(code)).toBeUndefined();
    expect(refusalOf(new Error('socket hang up'))).toBeUndefined();
  });
});

/**
 * Nothing is retried: no requeue, or only the cleanup's timer for a failed attempt kept for
 * inspection (`ttlSecondsAfterFailure`, a day: looked at again hourly, at no cost).
 */
function expectNoRetry(result: unknown): void {
  if (result === undefined) return;
  expect((result as { requeueAfterMs: number }).requeueAfterMs).toBeGreaterThanOrEqual(3_600_000);
}

describe('a refusal ends the attempt once', () => {
  it('a Job the API server refuses (422), again and again: Failed, Degraded Rejected, one Warning, no requeue; three resyncs send only the read of the run', async () => {
    const w = new World(TWO);
    refuseAlways(w, 'create', 422, 'Job');
    const o = await act(w, 2);
    expectNoRetry(o.result);
    expect(w.status).toMatchObject({ phase: 'Failed', attempt: 1 });
    expect(w.condition('Degraded')).toMatchObject({ status: 'True', reason: 'Rejected' });
    expect(w.condition('Degraded')!.message).toMatch(/attempt 1: the API server refused a request, and would refuse it again \(HTTP 422 \w+: injected 422 for create Job\); nothing more is tried until the run changes/);
    expect(w.condition('Ready')).toMatchObject({ status: 'False', reason: 'Rejected' });
    expect(reasons(o)).toEqual(['AttemptStarted', 'Rejected']);
    expect(refusedCalls(w, 'create', 'Job')).toHaveLength(1);
    const r = await threeResyncs(w);
    expect(r.writes).toEqual([]);
    expect(r.ops).toEqual(['getRun', 'getRun', 'getRun']);
    expectNoRetry(r.result);
    // A new rerun annotation is a change of the run: the next attempt starts (and meets the refusal once more).
    w.fake.updateRun(NS, NAME, { annotations: { 'swarmbench.io/rerun': 'after-the-fix' } });
    await w.settle();
    expect(w.status).toMatchObject({ attempt: 2, phase: 'Failed', lastRerun: 'after-the-fix' });
    expect(w.status.history![0]).toMatchObject({ attempt: 1, phase: 'Failed' });
  });

  it('a changed roleRef the operator may not bind (403): Forbidden once, the binding that exists untouched, nothing retried', async () => {
    const w = new World(TWO);
    await w.settle();
    expect(w.fake.get('RoleBinding', NS, runnerPoolsBindingName(NAME))!.roleRef.name).toBe('swarmbench-runner');
    // The operator restarted with another --runner-cluster-role, which it may not bind.
    const r2 = new Reconciler({ cluster: w.fake, images: { image: 'reg/sb:1', gpuImage: 'reg/sb-gpu:1' }, log: silent, version: '9.9.9', now: () => new Date(w.clock), pollMs: POLL, runnerClusterRole: 'other-runner' });
    refuseCreates(w, 403, (kind, b) => kind === 'RoleBinding' && (b.roleRef as { name?: string }).name === 'other-runner');
    w.pass('distributed');
    w.fake.clearCalls();
    const seen = w.fake.events.length;
    expectNoRetry(await r2.reconcile(`${NS}/${NAME}`));
    // The API server checks a binding's escalation before it looks for the name: the create-or-get
    // of the changed binding is a 403, not a 409; the binding that exists is left as it is.
    expect(w.fake.calls.filter((c) => c.kind === 'RoleBinding' && c.op !== 'read').map((c) => `${c.op} ${c.name}${c.failed ? ` ${c.failed}` : ''}`)).toEqual([
      `create ${runnerName(NAME)} 409`,
      `create ${runnerPoolsBindingName(NAME)} 403`,
    ]);
    expect(w.fake.get('RoleBinding', NS, runnerPoolsBindingName(NAME))!.roleRef.name).toBe('swarmbench-runner');
    expect(w.status.phase).toBe('Failed');
    expect(w.condition('Degraded')).toMatchObject({ status: 'True', reason: 'Forbidden' });
    expect(w.condition('Degraded')!.message).toMatch(/HTTP 403 Forbidden: RoleBinding "nightly-runner-pools" is forbidden: user "operator" is attempting to grant RBAC permissions not currently held/);
    expect(w.fake.events.slice(seen).map((e) => `${e.type} ${e.reason}`)).toEqual(['Warning Forbidden']);
    // The step Job that had not started yet was not created; the resyncs send nothing.
    expect(w.fake.get('Job', NS, jobName(NAME, 1, 'integration'))).toBeUndefined();
    w.fake.clearCalls();
    w.clock += SWEEP_WINDOW_MS;
    for (let i = 0; i < 3; i++) expectNoRetry(await r2.reconcile(`${NS}/${NAME}`));
    expect(w.fake.writes()).toEqual([]);
    expect(w.fake.calls.map((c) => c.op)).toEqual(['getRun', 'getRun', 'getRun']);
  });

  it('a node selector the API server refuses (400: the operator\'s --gpu-defaults): Rejected once', async () => {
    const w = new World({ mode: 'quick', categories: ['gpu'] }, { reconciler: { gpuDefaults: { nodeSelector: { 'gpu type': 'h200' }, tolerations: [] } } });
    refuseAlways(w, 'listNodes', 400, 'Node');
    await w.settle();
    expect(w.status.phase).toBe('Failed');
    expect(w.condition('Degraded')).toMatchObject({ reason: 'Rejected' });
    expect(refusedCalls(w, 'listNodes', 'Node')).toHaveLength(1);
    expect((await threeResyncs(w)).writes).toEqual([]);
  });

  it('an attempt whose start is refused (the token Secret, 403): recorded as attempt 1 Failed (Forbidden), not started again', async () => {
    const w = new World(TWO);
    refuseAlways(w, 'create', 403, 'Secret');
    const o = await act(w);
    expect(o.result).toBeUndefined();
    expect(w.status).toMatchObject({ phase: 'Failed', attempt: 1, observedGeneration: 1 });
    expect(w.status.finishedAt).toBeDefined();
    expect(w.condition('Degraded')).toMatchObject({ status: 'True', reason: 'Forbidden' });
    expect(w.condition('Complete')).toMatchObject({ status: 'True' });
    expect(reasons(o)).toEqual(['Forbidden']);
    const r = await threeResyncs(w);
    expect(r.writes).toEqual([]);
    expect(refusedCalls(w, 'create', 'Secret')).toHaveLength(0); // none in the resyncs
  });

  it('an exceeded quota (403) is not a refusal: the reconcile throws for the work queue to retry, nothing is marked', async () => {
    const w = new World(TWO);
    await w.reconcile();
    const create = w.fake.create.bind(w.fake);
    w.fake.create = (async (kind: never, body: never) => {
      if (kind === 'Job') throw new ApiException(403, 'quota', { kind: 'Status', code: 403, reason: 'Forbidden', message: 'jobs "x" is forbidden: exceeded quota: compute, requested: count/jobs.batch=1' }, {});
      return create(kind, body);
    }) as FakeCluster['create'];
    await expect(w.reconcile()).rejects.toThrow(/quota/);
    expect(w.status.phase).toBe('Running');
    expect(w.condition('Degraded')).toMatchObject({ status: 'False' });
  });

  it('an export the API server refuses (422: larger than a ConfigMap may be): the attempt fails once; Prometheus was asked once', async () => {
    const w = new World(TWO, { reconciler: { prometheus: { url: promUrl } } });
    await w.settle();
    w.pass('distributed');
    await w.settle();
    refuseAlways(w, 'create', 422, 'ConfigMap');
    w.pass('integration');
    const before = promRequests;
    const o = await act(w);
    const asked = promRequests - before;
    expect(asked).toBeGreaterThan(0);
    expect(o.result).toBeUndefined();
    expect(w.status.phase).toBe('Failed');
    expect(w.condition('Degraded')).toMatchObject({ reason: 'Rejected' });
    expect(reasons(o)).toEqual(['Rejected']);
    expect((await threeResyncs(w)).writes).toEqual([]);
    expect(promRequests - before).toBe(asked);
  });
});

describe('told once, done once', () => {
  it('a failed step while the next one runs: one StepFailed over five polls', async () => {
    const w = new World(TWO);
    await w.settle();
    w.endJob('distributed', 'Failed');
    const o = await act(w, 5);
    expect(reasons(o)).toEqual(['StepFailed', 'StepStarted']);
  });

  it('the last step failed and the export is held by someone else (the finish waits): one StepFailed over three looks', async () => {
    const w = new World({ ...TWO, export: { configMapName: 'shared-results' } });
    w.fake.put('ConfigMap', { metadata: { name: 'shared-results', namespace: NS, ownerReferences: [foreignOwner] }, data: {} });
    await w.settle();
    w.pass('distributed');
    await w.settle();
    w.endJob('integration', 'Failed');
    const o = await act(w, 3);
    expect(reasons(o)).toEqual(['StepFailed', 'Conflict']);
    expect(w.condition('Conflict')).toMatchObject({ status: 'True' });
    // The owner gives the name up: the finish goes on, the failure is not told again.
    w.fake.remove('ConfigMap', NS, 'shared-results');
    const done = await act(w);
    expect(reasons(done)).toEqual(['Failed']);
    expect(w.fake.events.filter((e) => e.reason === 'StepFailed')).toHaveLength(1);
  });

  it('a finish whose status write failed: the retry uses the export written, Prometheus is not asked again, one Succeeded', async () => {
    const w = new World(TWO, { reconciler: { prometheus: { url: promUrl } } });
    await w.settle();
    w.pass('distributed');
    await w.settle();
    w.pass('integration');
    w.fake.failNext('patchRunStatus', 500);
    const before = promRequests;
    await expect(act(w)).rejects.toThrow(/injected 500/);
    const asked = promRequests - before;
    expect(asked).toBeGreaterThan(0);
    const exported = w.fake.get('ConfigMap', NS, 'nightly-results')!;
    const retry = await act(w);
    expect(promRequests - before).toBe(asked);
    expect(retry.calls.filter((c) => c.kind === 'ConfigMap' && ['create', 'replace'].includes(c.op))).toEqual([]);
    expect(w.fake.get('ConfigMap', NS, 'nightly-results')).toEqual(exported);
    expect(w.status).toMatchObject({ phase: 'Succeeded', summary: { passed: 9, total: 9 } });
    expect(JSON.parse(exported.data!['results.json']!).run.finishedAt).toBe(w.status.finishedAt);
    expect(reasons(retry)).toEqual(['Succeeded']);
  });

  it('an export of an earlier attempt is not taken for this one: attempt 2 assembles and writes its own', async () => {
    const w = new World({ ...TWO, cleanup: { policy: 'Never' } });
    await w.settle();
    await w.finish();
    w.fake.updateRun(NS, NAME, { annotations: { 'swarmbench.io/rerun': 'two' } });
    await w.settle();
    await w.finish();
    expect(w.status).toMatchObject({ attempt: 2, phase: 'Succeeded' });
    expect(JSON.parse(w.fake.get('ConfigMap', NS, 'nightly-results')!.data!['results.json']!).run.attempt).toBe(2);
  });
});

describe('a finished run costs nothing', () => {
  const finished: { name: string; spec: typeof TWO; failing?: string[] }[] = [
    { name: 'Succeeded and cleaned up', spec: TWO },
    { name: 'Succeeded, cleanup Never', spec: { ...TWO, cleanup: { policy: 'Never' } } },
    { name: 'Failed, cleanup OnSuccess (kept)', spec: TWO, failing: ['1.1'] },
    { name: 'Failed, cleanup Always', spec: { ...TWO, cleanup: { policy: 'Always' } }, failing: ['1.1'] },
  ];
  for (const c of finished) {
    it(`${c.name}: three resyncs make no write and no delete-collection`, async () => {
      const w = new World(c.spec);
      await w.settle();
      await w.finish(c.failing);
      await w.reconcile(); // the cleanup, where there is one
      const r = await threeResyncs(w);
      expect(r.writes).toEqual([]);
      expect(r.ops.every((op) => ['getRun', 'list', 'read'].includes(op))).toBe(true);
      expectNoRetry(r.result);
    });
  }
});
