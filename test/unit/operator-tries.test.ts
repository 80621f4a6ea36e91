/**
 * What ended a runner try (src/operator/tries.ts): read from the runner pods the operator watches,
 * kept bounded, told once as an Event by the reconcile of the running step.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { jobName, STEP_LABEL } from '../../src/kube/names.ts';
import { endedTry, MAX_TRIES, RunnerTries, TRY_TTL_MS } from '../../src/operator/tries.ts';
import { act, NAME, NS, reasons, TWO, World } from '../support/reconcile-world.ts';

const T0 = Date.parse('2026-03-01T10:00:00Z');

function runner(uid: string, status: V1Pod['status'], o: { jobUid?: string; deleting?: boolean; memory?: string } = {}): V1Pod {
  return {
    metadata: {
      name: `run-a1-distributed-${uid}`,
      namespace: NS,
      uid,
      labels: { [STEP_LABEL]: 'distributed' },
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'j', uid: o.jobUid ?? 'job-1', controller: true }],
      ...(o.deleting ? { deletionTimestamp: new Date(T0) } : {}),
    },
    spec: { nodeName: 'swarmbench-cpu-2', containers: [{ name: 'runner', image: 'sb', ...(o.memory ? { resources: { limits: { memory: o.memory } } } : {}) }] },
    status,
  };
}
const running: V1Pod['status'] = { phase: 'Running', containerStatuses: [{ name: 'runner', image: 'sb', imageID: '', ready: true, restartCount: 0, state: { running: {} } }] };
const nodeGone: V1Pod['status'] = {
  phase: 'Failed',
  conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'DeletionByPodGC', message: 'PodGC: node no longer exists' }],
};
const killed: V1Pod['status'] = { phase: 'Failed', containerStatuses: [{ name: 'runner', image: 'sb', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 137, reason: 'Error' } } }] };
const oom: V1Pod['status'] = { phase: 'Failed', containerStatuses: [{ name: 'runner', image: 'sb', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 137, reason: 'OOMKilled' } } }] };

describe('endedTry', () => {
  it('names what ended a runner pod: its node lost, OOMKilled with the limit, an exit code, or gone without a status', () => {
    expect(endedTry(runner('p1', nodeGone, { deleting: true }), true)).toMatchObject({ podUid: 'p1', jobUid: 'job-1', reason: 'NodeLost' });
    expect(endedTry(runner('p1', nodeGone), false)!.text).toMatch(/its node swarmbench-cpu-2 was lost: PodGC: node no longer exists/);
    expect(endedTry(runner('p2', oom, { memory: '96Mi' }), false)!.text).toMatch(/OOMKilled at its memory limit of 96Mi/);
    expect(endedTry(runner('p3', killed), false)).toMatchObject({ reason: 'RunnerFailed', text: expect.stringMatching(/container runner exited with code 137 \(Error\)/) });
    expect(endedTry(runner('p4', running), true)).toMatchObject({ reason: 'RunnerGone', text: expect.stringMatching(/on node swarmbench-cpu-2 was deleted while it ran/) });
  });

  it('says nothing of a pod that runs, succeeded, is still terminating without a status, or has no Job', () => {
    expect(endedTry(runner('p', running), false)).toBeUndefined();
    expect(endedTry(runner('p', { phase: 'Succeeded' }), true)).toBeUndefined();
    expect(endedTry(runner('p', running, { deleting: true }), false)).toBeUndefined();
    const orphan = runner('p', killed);
    orphan.metadata!.ownerReferences = [];
    expect(endedTry(orphan, false)).toBeUndefined();
  });
});

describe('RunnerTries', () => {
  it('tells each ended try once, for its own Job; a later, more specific reason replaces RunnerGone', () => {
    const t = new RunnerTries(() => T0);
    expect(t.observe(runner('p1', running), false)).toBe(false);
    expect(t.observe(runner('p1', running), true)).toBe(true);
    // The last status arrives after the watch saw the delete (a relist): it says more.
    expect(t.observe(runner('p1', nodeGone), true)).toBe(false);
    expect(t.observe(runner('p2', killed, { jobUid: 'job-2' }), false)).toBe(true);
    expect(t.takeUntold('job-1').map((x) => x.reason)).toEqual(['NodeLost']);
    expect(t.takeUntold('job-1')).toEqual([]);
    expect(t.observe(runner('p1', killed), false)).toBe(false);
    expect(t.takeUntold('job-1')).toEqual([]);
    expect(t.takeUntold('job-2').map((x) => x.podUid)).toEqual(['p2']);
  });

  it('is bounded: the oldest past MAX_TRIES and any older than TRY_TTL_MS are dropped', () => {
    let now = T0;
    const t = new RunnerTries(() => now);
    for (let i = 0; i < MAX_TRIES + 50; i++) t.observe(runner(`p${i}`, killed, { jobUid: `job-${i}` }), false);
    expect(t.size).toBe(MAX_TRIES);
    expect(t.takeUntold('job-0')).toEqual([]);
    expect(t.takeUntold(`job-${MAX_TRIES + 49}`)).toHaveLength(1);
    now += TRY_TTL_MS + 1;
    expect(t.takeUntold('job-100')).toEqual([]);
    expect(t.size).toBe(0);
  });
});

describe('the reconcile tells an ended try once, while the Job retries', () => {
  it('records one Warning Event with the reason and the pod\'s text', async () => {
    const tries = new RunnerTries();
    const w = new World(TWO, { reconciler: { tries } });
    await w.settle();
    expect(w.status.progress?.currentStep).toBe('distributed');
    const job = w.fake.get('Job', NS, jobName(NAME, 1, 'distributed'))!;
    expect(tries.observe(runner('p9', nodeGone, { jobUid: job.metadata!.uid! }), true)).toBe(true);
    const o = await act(w);
    expect(reasons(o)).toEqual(['NodeLost']);
    expect(o.events[0]!.message).toMatch(/^attempt 1: step distributed: a try of the runner ended: pod run-a1-distributed-p9 \(step distributed\): its node swarmbench-cpu-2 was lost: PodGC: node no longer exists; the Job retries the step$/);
    expect(reasons(await act(w))).toEqual([]);
  });

  it('a restarted operator (fresh memory) whose pod watch lists the same ended pod tells nothing twice', async () => {
    const now = { tries: new RunnerTries() };
    const tries = { takeUntold: (uid: string) => now.tries.takeUntold(uid) } as unknown as RunnerTries;
    const w = new World(TWO, { reconciler: { tries } });
    await w.settle();
    const job = w.fake.get('Job', NS, jobName(NAME, 1, 'distributed'))!;
    const dead = runner('p9', nodeGone, { jobUid: job.metadata!.uid! });
    now.tries.observe(dead, false);
    expect(reasons(await act(w))).toEqual(['NodeLost']);
    now.tries = new RunnerTries(); // the operator restarts; its informer lists the pod again
    expect(now.tries.observe(dead, false)).toBe(true);
    expect(reasons(await act(w))).toEqual([]);
    expect(w.fake.events.filter((e) => e.reason === 'NodeLost')).toHaveLength(1);
    // Another pod of the same Job is a new try: told.
    now.tries.observe(runner('p10', nodeGone, { jobUid: job.metadata!.uid! }), false);
    expect(reasons(await act(w))).toEqual(['NodeLost']);
  });
});
