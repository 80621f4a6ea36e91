/**
 * Failure forensics (src/operator/forensics.ts, src/kube/pods.ts): what the operator reads from a
 * step's pods, and what it does with it, against the in-memory cluster (test/support/reconcile-world.ts).
 */
import type { CoreV1Event, V1Deployment, V1Job, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { ATTEMPT_LABEL, jobName, RUN_UID_LABEL, STEP_LABEL, stepResultName } from '../../src/kube/names.ts';
import { createRefusals, podProblems, REFUSAL_RECENT_MS } from '../../src/kube/pods.ts';
import { endedExplanation, stuckProblem } from '../../src/operator/forensics.ts';
import { act, NAME, NS, reasons, stepObjects, TWO, World } from '../support/reconcile-world.ts';

const T0 = Date.parse('2026-03-01T10:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();

function pod(name: string, status: V1Pod['status'], opts: { created?: number; step?: string; memory?: string; deleting?: boolean } = {}): V1Pod {
  return {
    metadata: {
      name,
      namespace: NS,
      creationTimestamp: iso(opts.created ?? T0) as unknown as Date,
      labels: { [RUN_UID_LABEL]: 'uid-1', [ATTEMPT_LABEL]: '1', [STEP_LABEL]: opts.step ?? 'distributed' },
      ...(opts.deleting ? { deletionTimestamp: iso(T0) as unknown as Date } : {}),
    },
    spec: { nodeName: 'node-a', containers: [{ name: 'agent', image: 'reg/agent:nope', ...(opts.memory ? { resources: { limits: { memory: opts.memory } } } : {}) }] },
    status,
  };
}

const imagePull = (created = T0): V1Pod =>
  pod('pool-a-1', { phase: 'Pending', containerStatuses: [{ name: 'agent', image: 'reg/agent:nope', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ErrImagePull', message: 'manifest unknown' } } }] }, { created });
const unschedulable = (since: number): V1Pod =>
  pod('runner-x', { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient cpu.', lastTransitionTime: iso(since) as unknown as Date }] }, { created: since - 5000 });
const oomKilled = (): V1Pod =>
  pod('runner-y', { phase: 'Failed', containerStatuses: [{ name: 'agent', image: 'reg/sb:1', imageID: '', ready: false, restartCount: 0, state: { terminated: { reason: 'OOMKilled', exitCode: 137 } } }] }, { memory: '512Mi' });

describe('podProblems (src/kube/pods.ts)', () => {
  it('tells stuck pods (since when) from ended ones, with the cluster\'s own message', () => {
    const evicted = pod('e', { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' });
    const nodeLost = pod('n', { phase: 'Failed', conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'DeletionByPodGC', message: 'PodGC: node no longer exists' }] });
    const gone = pod('g', imagePull().status, { deleting: true });
    const got = podProblems([imagePull(T0 - 1000), unschedulable(T0 - 7000), oomKilled(), evicted, nodeLost, gone]);
    expect(got.map((p) => [p.reason, p.kind, p.sinceMs])).toEqual([
      ['ImagePullBackOff', 'stuck', T0 - 1000],
      ['Unschedulable', 'stuck', T0 - 7000],
      ['OOMKilled', 'ended', null],
      ['Evicted', 'ended', null],
      ['NodeLost', 'ended', null],
    ]);
    expect(got[0]!.text).toMatch(/pool-a-1 \(step distributed\): container agent: ErrImagePull: image "reg\/agent:nope" cannot be pulled \(manifest unknown\)/);
    expect(got[1]!.text).toMatch(/cannot be scheduled: 0\/3 nodes are available: 3 Insufficient cpu\./);
    expect(got[2]!.text).toMatch(/container agent was OOMKilled at its memory limit of 512Mi \(exit code 137\)/);
    expect(got[3]!.text).toMatch(/evicted from node node-a: The node was low on resource: memory\./);
    expect(got[4]!.text).toMatch(/its node node-a was lost: PodGC: node no longer exists/);
  });

  it('stuckProblem waits for the grace; endedExplanation names the Job\'s reason and each pod reason once', () => {
    const ps = podProblems([imagePull(T0 - 30_000)]);
    expect(stuckProblem(ps, T0, 60_000)).toBeUndefined();
    expect(stuckProblem(ps, T0 + 30_000, 60_000)?.reason).toBe('ImagePullBackOff');
    expect(stuckProblem(podProblems([oomKilled()]), T0 + 1e9, 1)).toBeUndefined();
    const job = { status: { conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }] } };
    const why = endedExplanation(job, podProblems([oomKilled(), oomKilled()]));
    expect(why!.reason).toBe('OOMKilled');
    expect(why!.message.match(/OOMKilled/g)).toHaveLength(1);
    expect(why!.message).toMatch(/^BackoffLimitExceeded: Job has reached the specified backoff limit; pod runner-y/);
    expect(endedExplanation({ status: {} }, [])).toBeUndefined();
  });
});

const QUOTA = 'pods "x" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1';
const refusedPool = (since: number, o: { status?: 'True' | 'False'; deleting?: boolean } = {}): V1Deployment => ({
  metadata: {
    name: 'pool-a', namespace: NS, labels: { [RUN_UID_LABEL]: 'uid-1', [ATTEMPT_LABEL]: '1', [STEP_LABEL]: 'distributed' },
    ...(o.deleting ? { deletionTimestamp: iso(T0) as unknown as Date } : {}),
  },
  status: { conditions: [{ type: 'ReplicaFailure', status: o.status ?? 'True', reason: 'FailedCreate', message: QUOTA, lastTransitionTime: iso(since) as unknown as Date }] },
});
const jobEvent = (uid: string, first: number, last: number): CoreV1Event => ({
  metadata: { name: `e-${first}`, namespace: NS },
  involvedObject: { kind: 'Job', name: 'j', uid },
  reason: 'FailedCreate', message: `Error creating: ${QUOTA}`,
  firstTimestamp: iso(first) as unknown as Date, lastTimestamp: iso(last) as unknown as Date,
});

describe('createRefusals (src/kube/pods.ts): pods a quota refused', () => {
  const job = (active: number): V1Job => ({ metadata: { name: 'j', uid: 'job-uid' }, status: { active } });

  it('reads a pool\'s ReplicaFailure condition as stuck since its transition, and only while it holds', () => {
    const got = createRefusals({ deployments: [refusedPool(T0 - 5000)], jobEvents: [], step: 'distributed', nowMs: T0 });
    expect(got.map((p) => [p.reason, p.kind, p.sinceMs])).toEqual([['FailedCreate', 'stuck', T0 - 5000]]);
    expect(got[0]!.text).toBe(`the agent pool pool-a (step distributed) cannot create its pods: ${QUOTA}`);
    expect(createRefusals({ deployments: [refusedPool(T0, { status: 'False' }), refusedPool(T0, { deleting: true })], jobEvents: [], step: 'distributed', nowMs: T0 })).toEqual([]);
  });

  it('reads a Job\'s FailedCreate Events while it has no pod and the refusal is recent, since the first one', () => {
    const evs = [jobEvent('job-uid', T0 - 40_000, T0 - 2000), jobEvent('job-uid', T0 - 90_000, T0 - 60_000), jobEvent('other', T0 - 999_000, T0)];
    const got = createRefusals({ deployments: [], job: job(0), jobEvents: evs, step: 'gpu', nowMs: T0 });
    expect(got.map((p) => [p.reason, p.kind, p.sinceMs])).toEqual([['FailedCreate', 'stuck', T0 - 90_000]]);
    expect(got[0]!.text).toBe(`the runner Job j (step gpu) cannot create its pod: Error creating: ${QUOTA}`);
    // A pod runs now, or the last refusal is old: the quota let it through.
    expect(createRefusals({ deployments: [], job: job(1), jobEvents: evs, step: 'gpu', nowMs: T0 })).toEqual([]);
    expect(createRefusals({ deployments: [], job: job(0), jobEvents: evs, step: 'gpu', nowMs: T0 - 2000 + REFUSAL_RECENT_MS + 1 })).toEqual([]);
  });
});

describe('the reconcile\'s forensics', () => {
  const world = async (): Promise<World> => {
    const w = new World(TWO, { reconciler: { stuckAfterMs: 20_000, pollMs: 30_000 } });
    await w.settle();
    expect(w.status.progress?.currentStep).toBe('distributed');
    return w;
  };

  it('a pool pod that cannot pull its image fails the step at the grace, not at the deadline: result, Job and pools gone, one event with the reason', async () => {
    const w = await world();
    w.fake.put('Pod', imagePull(w.clock - 10_000) as never);
    // Stuck for 11 s of 20: look again when its time is up (no pod event wakes the run).
    const early = await act(w);
    expect(early.result).toEqual({ requeueAfterMs: 10_000 });
    expect(early.deleted).toEqual([]);
    w.clock += 10_000;
    const o = await act(w);
    expect(reasons(o)).toEqual(['ImagePullBackOff', 'StepFailed', 'StepStarted']);
    expect(o.events[0]!.message).toMatch(/^attempt 1: step distributed: ImagePullBackOff: pod pool-a-1 \(step distributed\): container agent: ErrImagePull: image "reg\/agent:nope" cannot be pulled \(manifest unknown\) \(for 2\d s\); the step was stopped/);
    expect(o.deleted).toEqual([
      `Job ${jobName(NAME, 1, 'distributed')}`,
      'Deployment swarmbench.io/run-uid=uid-1,swarmbench.io/attempt=1,swarmbench.io/step=distributed',
      'Deployment swarmbench.io/run-uid=uid-1,swarmbench.io/attempt=1,swarmbench.io/step!=integration',
    ]);
    expect(o.created).toEqual(stepObjects(1, 'integration'));
    expect(w.condition('Progressing')).toMatchObject({ status: 'True', reason: 'ImagePullBackOff' });
    const written = JSON.parse(w.fake.get('ConfigMap', NS, stepResultName(NAME, 1, 'distributed'))!.data!['result.json']!);
    expect(written).toMatchObject({ kind: 'StepResult', step: 'distributed', attempt: 1, measurements: [] });
    expect(written.error).toMatch(/^ImagePullBackOff: /);
    // The stuck pod's Job is gone: nothing is told twice, and the category's tests fail with the reason.
    await w.settle();
    w.pass('integration');
    await w.settle();
    expect(w.fake.events.filter((e) => e.reason === 'ImagePullBackOff')).toHaveLength(1);
    expect(w.fake.events.filter((e) => e.reason === 'StepFailed')).toHaveLength(1);
    expect(w.status.phase).toBe('Failed');
    for (const t of w.status.tests!.filter((x) => x.category === 'distributed')) expect(t.reason).toMatch(/ImagePullBackOff: pod pool-a-1/);
  });

  it('a pool whose pods a quota refuses fails the step at the grace with the quota\'s message, and one event', async () => {
    const w = await world();
    w.fake.put('Deployment', refusedPool(w.clock - 25_000) as never);
    const o = await act(w);
    expect(reasons(o)).toEqual(['FailedCreate', 'StepFailed', 'StepStarted']);
    expect(o.events[0]!.message).toMatch(/^attempt 1: step distributed: FailedCreate: the agent pool pool-a \(step distributed\) cannot create its pods: pods "x" is forbidden: exceeded quota: q.* \(for 2\d s\); the step was stopped/);
    expect(w.condition('Progressing')).toMatchObject({ status: 'True', reason: 'FailedCreate' });
  });

  it('an unschedulable runner fails with the scheduler\'s message; a result the runner wrote wins over a stuck pod', async () => {
    const w = await world();
    w.fake.put('Pod', unschedulable(w.clock - 60_000) as never);
    const o = await act(w);
    expect(reasons(o)[0]).toBe('Unschedulable');
    expect(o.events[0]!.message).toMatch(/cannot be scheduled: 0\/3 nodes are available: 3 Insufficient cpu\./);

    const v = await world();
    v.fake.put('Pod', unschedulable(v.clock - 60_000) as never);
    v.pass('distributed');
    const p = await act(v);
    expect(reasons(p)).toEqual(['StepStarted']);
    expect(p.deleted).not.toContain(`Job ${jobName(NAME, 1, 'distributed')}`);
  });

  it('a Job that ended without a result names what ended its pods', async () => {
    const w = await world();
    w.fake.put('Pod', oomKilled() as never);
    w.endJob('distributed', 'Failed');
    const o = await act(w);
    expect(o.events[0]).toMatchObject({ type: 'Warning', reason: 'StepFailed' });
    expect(o.events[0]!.message).toMatch(/runner Job failed \(BackoffLimitExceeded: Job has reached the specified backoff limit; pod runner-y \(step distributed\): container agent was OOMKilled at its memory limit of 512Mi/);
  });
});
