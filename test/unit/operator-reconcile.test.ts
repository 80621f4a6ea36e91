/**
 * The BenchmarkRun reconcile's decisions (src/operator/reconcile.ts and the files it hands work
 * to), against the in-memory cluster of test/support/fake-cluster.ts. Each case sets a state up,
 * reconciles, and asserts the objects created or deleted, the status written and the events.
 * The run, the reconciler and the helpers are test/support/reconcile-world.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { API_VERSION_FULL, ResultDocument, type BenchmarkRunSpec } from '../../src/api/schema.ts';
import { jobName, paramsName, stepResultName, stepSeedsName } from '../../src/kube/names.ts';
import { CATALOGUE } from '../../src/plan/catalogue.ts';
import { REPO_ROOT } from '../../src/paths.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { cleanupTtlSeconds, FAILURE_TTL_SECONDS, RUNNER_STOP_MS, SWEEP_WINDOW_MS } from '../../src/operator/cleanup.ts';
import { EXPORT_FILES } from '../../src/report/exports.ts';
import { FakeCluster, type Obj } from '../support/fake-cluster.ts';
import { act, foreignOwner, NAME, NS, POLL, reasons, RUNNER_IDENTITY, stepObjects, stepResult, TOKEN, TWO, World, type Outcome } from '../support/reconcile-world.ts';

interface Case {
  name: string;
  spec?: BenchmarkRunSpec;
  nodes?: Record<string, string>[];
  /** Sets the state up (may reconcile). */
  given?: (w: World) => Promise<void> | void;
  /** Reconciles this many times (default 1). */
  times?: number;
  /** The reconcile throws this (an API error the work queue retries with backoff). */
  throws?: RegExp;
  then: (w: World, o: Outcome) => Promise<void> | void;
}

const cases: Case[] = [
  {
    name: 'a new run: params ConfigMap, runner identity, the first step\'s ConfigMaps and Job; phase Running with its conditions',
    times: 2,
    then(w, o) {
      expect(o.created).toEqual([TOKEN(1), `ConfigMap/${paramsName(NAME, 1)}`, ...RUNNER_IDENTITY, ...stepObjects(1, 'distributed')]);
      // The frozen params are the spec resolved, plus the agents' resources the admission policy
      // defaults (src/operator/policy.ts): compared without them here.
      const frozen = JSON.parse(w.fake.get('ConfigMap', NS, paramsName(NAME, 1))!.data!['params.json']!);
      delete frozen.agents.resources;
      expect(frozen).toEqual(resolveParams(TWO));
      expect(o.patches).toHaveLength(1);
      expect(w.status).toMatchObject({ phase: 'Running', attempt: 1, observedGeneration: 1, progress: { completedSteps: 0, totalSteps: 2, currentStep: 'distributed' } });
      expect(w.condition('Ready')).toMatchObject({ status: 'False', reason: 'Running', observedGeneration: 1 });
      expect(w.condition('Progressing')).toMatchObject({ status: 'True', reason: 'Running' });
      expect(w.condition('Complete')).toMatchObject({ status: 'False' });
      expect(reasons(o)).toEqual(['AttemptStarted', 'StepStarted']);
      expect(o.result).toEqual({ requeueAfterMs: POLL });
      const job = w.fake.get('Job', NS, jobName(NAME, 1, 'distributed'))!;
      expect(job.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'BenchmarkRun', uid: w.run.metadata.uid, controller: true });
      expect(w.fake.get('Role', NS, 'nightly-runner')!.rules![0]!.resourceNames).toContain(stepResultName(NAME, 1, 'integration'));
    },
  },
  {
    name: 'a step done (its result ConfigMap holds a valid result): the next step\'s Job',
    given: async (w) => {
      await w.settle();
      w.pass('distributed');
    },
    then(w, o) {
      expect(o.created).toEqual(stepObjects(1, 'integration'));
      // The pools the attempt's earlier steps may have left go first (forensics.ts).
      expect(o.deleted).toEqual(['Deployment swarmbench.io/run-uid=uid-1,swarmbench.io/attempt=1,swarmbench.io/step!=integration']);
      expect(o.patches).toEqual([{ progress: { completedSteps: 1, totalSteps: 2, currentStep: 'integration' } }]);
      expect(reasons(o)).toEqual(['StepStarted']);
    },
  },
  {
    name: 'a step failed (Job Failed, no result): its category\'s tests fail with the reason, one Warning event',
    given: async (w) => {
      await w.settle();
      w.endJob('distributed', 'Failed');
    },
    async then(w, o) {
      expect(o.created).toEqual(stepObjects(1, 'integration'));
      expect(o.events[0]).toMatchObject({ type: 'Warning', reason: 'StepFailed' });
      expect(o.events[0]!.message).toMatch(/distributed runner Job failed \(BackoffLimitExceeded: Job has reached the specified backoff limit\) without a result/);
      expect(reasons(o)).toEqual(['StepFailed', 'StepStarted']);
      w.pass('integration');
      await w.settle();
      expect(w.fake.events.filter((e) => e.reason === 'StepFailed')).toHaveLength(1);
      expect(w.status.phase).toBe('Failed');
      for (const t of w.status.tests!.filter((x) => x.category === 'distributed')) {
        expect(t.result).toBe('Failed');
        expect(t.reason).toMatch(/runner Job failed/);
      }
      expect(w.status.tests!.filter((x) => x.category === 'integration').every((t) => t.result === 'Passed')).toBe(true);
    },
  },
  {
    name: 'all steps done: the export ConfigMap holds every export file, phase Succeeded, the summary counts agree',
    spec: { mode: 'quick' },
    given: async (w) => {
      await w.settle();
      for (let i = 0; i < 5; i++) {
        w.pass();
        await w.settle();
      }
      w.pass();
    },
    then(w, o) {
      expect(o.created).toEqual(['ConfigMap/nightly-results']);
      const exp = w.fake.get('ConfigMap', NS, 'nightly-results')!;
      expect(Object.keys(exp.data!).sort()).toEqual([...EXPORT_FILES].sort());
      expect(exp.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'BenchmarkRun', uid: w.run.metadata.uid, controller: true })]);
      const doc = ResultDocument.parse(JSON.parse(exp.data!['results.json']!));
      const s = w.status.summary!;
      expect(s).toMatchObject({ total: 27, passed: 27, failed: 0, skipped: 0, verdict: 'Passed', passedOfTotal: '27/27' });
      expect(s.passed + s.failed + s.skipped).toBe(s.total);
      expect(doc.summary).toMatchObject({ total: s.total, passed: s.passed, failed: s.failed, skipped: s.skipped, verdict: s.verdict });
      expect(w.status.tests!.map((t) => t.id)).toEqual(CATALOGUE.map((d) => d.id));
      expect(w.status).toMatchObject({ phase: 'Succeeded', export: { configMapName: 'nightly-results' }, progress: { completedSteps: 6, totalSteps: 6, currentStep: '' } });
      expect(w.condition('Ready')).toMatchObject({ status: 'True', reason: 'TargetsMet' });
      expect(w.condition('Complete')).toMatchObject({ status: 'True' });
      expect(o.events).toEqual([expect.objectContaining({ type: 'Normal', reason: 'Succeeded' })]);
      // No GPU node: the gpu step ran as an ordinary Job, and one NoGpuNode warning said so.
      expect(w.fake.events.filter((e) => e.reason === 'NoGpuNode')).toHaveLength(1);
      expect(w.fake.get('Job', NS, jobName(NAME, 1, 'gpu'))!.spec!.template.spec!.nodeSelector).toBeUndefined();
    },
  },
  {
    name: 'all steps done with tests missing their targets: phase Failed, Degraded, a Warning',
    given: async (w) => {
      await w.settle();
      w.pass('distributed', ['1.1', '1.2', '1.3']);
      await w.settle();
      w.pass('integration');
    },
    then(w, o) {
      const s = w.status.summary!;
      expect(s).toMatchObject({ total: 9, passed: 6, failed: 3, skipped: 0, verdict: 'Failed' });
      expect(w.status.phase).toBe('Failed');
      expect(w.condition('Degraded')).toMatchObject({ status: 'True', reason: 'TargetsMissed' });
      expect(w.condition('Degraded')!.message).toMatch(/failed: 1\.1, 1\.2, 1\.3/);
      expect(o.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'Failed' })]);
    },
  },
  {
    name: 'a GPU node matches: the gpu step\'s Job is placed on it, no NoGpuNode warning',
    spec: { mode: 'quick', categories: ['gpu'] },
    nodes: [{ 'nvidia.com/gpu.present': 'true' }],
    times: 2,
    then(w, o) {
      const pod = w.fake.get('Job', NS, jobName(NAME, 1, 'gpu'))!.spec!.template.spec!;
      expect(pod.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
      expect(pod.containers[0]!.image).toBe('reg/sb-gpu:1');
      expect(reasons(o)).toEqual(['AttemptStarted', 'StepStarted']);
    },
  },
  {
    name: 'the spec changed mid-run: the attempt goes on with its frozen params; afterwards attempt 2 starts, the history keeps attempt 1',
    given: async (w) => {
      await w.settle();
      w.fake.updateRun(NS, NAME, { spec: { ...TWO, trials: 7 } });
    },
    async then(w, o) {
      expect(w.run.metadata.generation).toBe(2);
      expect(o.created).toEqual([]);
      expect(o.patches).toEqual([]);
      expect(w.status.observedGeneration).toBe(1);
      await w.finish();
      expect(w.status).toMatchObject({ phase: 'Succeeded', attempt: 1, observedGeneration: 1 });
      for (const c of w.status.conditions!) expect(c.observedGeneration).toBe(1);
      expect(w.fake.names('Job', NS)).toEqual([jobName(NAME, 1, 'distributed'), jobName(NAME, 1, 'integration')]);
      const next = await act(w);
      expect(next.created).toEqual([TOKEN(2), `ConfigMap/${paramsName(NAME, 2)}`]);
      expect(w.status).toMatchObject({ phase: 'Running', attempt: 2, observedGeneration: 2 });
      expect(w.status.history![0]).toMatchObject({ attempt: 1, phase: 'Succeeded', verdict: 'Passed', successRate: 100 });
      expect(JSON.parse(w.fake.get('ConfigMap', NS, paramsName(NAME, 1))!.data!['params.json']!).trials).toBe(5);
      expect(JSON.parse(w.fake.get('ConfigMap', NS, paramsName(NAME, 2))!.data!['params.json']!).trials).toBe(7);
      expect(w.status.summary).toBeUndefined();
    },
  },
  {
    name: 'suspend: the running attempt is cancelled, its Jobs and Deployments deleted, phase Cancelled',
    given: async (w) => {
      await w.settle();
      w.fake.put('Deployment', { metadata: { name: 'nightly-a1-distributed-p0', namespace: NS, labels: { 'swarmbench.io/run': NAME, 'swarmbench.io/run-uid': w.run.metadata.uid, 'swarmbench.io/attempt': '1' } } });
      // An earlier run's pool of the same name (another uid): not this run's to delete.
      w.fake.put('Deployment', { metadata: { name: 'nightly-a1-distributed-old', namespace: NS, labels: { 'swarmbench.io/run': NAME, 'swarmbench.io/run-uid': 'old-uid', 'swarmbench.io/attempt': '1' } } });
      w.fake.updateRun(NS, NAME, { spec: { ...TWO, suspend: true } });
    },
    then(w, o) {
      expect(o.created).toEqual([]);
      expect(o.deleted).toEqual([`Job ${jobName(NAME, 1, 'distributed')}`, `Deployment swarmbench.io/run-uid=${w.run.metadata.uid},swarmbench.io/attempt=1`]);
      expect(w.fake.names('Job', NS)).toEqual([]);
      expect(w.fake.names('Deployment', NS)).toEqual(['nightly-a1-distributed-old']);
      expect(w.fake.names('ConfigMap', NS)).toContain(paramsName(NAME, 1));
      expect(w.status).toMatchObject({ phase: 'Cancelled', observedGeneration: 2 });
      expect(w.status.finishedAt).toBeDefined();
      expect(w.condition('Degraded')).toMatchObject({ status: 'True', reason: 'Suspended' });
      expect(o.events).toEqual([expect.objectContaining({ type: 'Normal', reason: 'Cancelled' })]);
    },
  },
  {
    name: 'suspend with its runner running: the Job is suspended (its runner stops, writing what it finished); Job and pools go once the runner has stopped',
    given: async (w) => {
      await w.settle();
      const labels = (component: string) => ({ 'swarmbench.io/run': NAME, 'swarmbench.io/run-uid': w.run.metadata.uid, 'swarmbench.io/attempt': '1', 'swarmbench.io/step': 'distributed', 'swarmbench.io/component': component });
      w.fake.put('Deployment', { metadata: { name: 'nightly-a1-distributed-p0', namespace: NS, labels: labels('agent') } });
      w.fake.put('Pod', { metadata: { name: 'runner-x', namespace: NS, labels: labels('runner') } });
      w.fake.put('Pod', { metadata: { name: 'agent-x', namespace: NS, labels: labels('agent') } });
      w.fake.updateRun(NS, NAME, { spec: { ...TWO, suspend: true } });
      const ended = await act(w);
      // Nothing deleted yet: the Job is suspended (the Job controller stops its runner); its agents still answer.
      expect(ended.deleted).toEqual([]);
      expect(ended.calls.filter((c) => c.op === 'suspendJob').map((c) => c.name)).toEqual([jobName(NAME, 1, 'distributed')]);
      expect((w.fake.get('Job', NS, jobName(NAME, 1, 'distributed')) as { spec: { suspend?: boolean } }).spec.suspend).toBe(true);
      expect(w.status.phase).toBe('Cancelled');
      expect(ended.events).toEqual([expect.objectContaining({ type: 'Normal', reason: 'Cancelled' })]);
      expect((ended.result as { requeueAfterMs: number }).requeueAfterMs).toBe(5000);
      // The runner still stopping (within its grace period): everything waits.
      w.fake.update('Pod', NS, 'runner-x', (p) => (p.metadata!.deletionTimestamp = new Date(w.clock + 30_000).toISOString()));
      const waiting = await act(w);
      expect(waiting.deleted).toEqual([]);
      expect(waiting.result).toMatchObject({ requeueAfterMs: 5000 });
      // The runner is gone: its Job and pools go.
      w.fake.remove('Pod', NS, 'runner-x');
    },
    async then(w, o) {
      expect(o.deleted).toEqual([`Job ${jobName(NAME, 1, 'distributed')}`, `Deployment swarmbench.io/run-uid=${w.run.metadata.uid},swarmbench.io/attempt=1`]);
      expect(w.fake.names('Deployment', NS)).toEqual([]);
      expect(w.fake.names('Job', NS)).toEqual([]);
      expect(o.events).toEqual([]);
      // Nothing is left: the next look lists no suspended Job, and reads no pod.
      const next = await act(w);
      expect(next.deleted).toEqual([]);
      expect(next.calls.map((c) => c.op)).toEqual(['getRun', 'list']);
    },
  },
  {
    name: 'suspend when the running step\'s Job has just completed: nothing to stop, so no Job is suspended and all goes at once',
    given: async (w) => {
      await w.settle();
      const labels = { 'swarmbench.io/run-uid': w.run.metadata.uid, 'swarmbench.io/attempt': '1', 'swarmbench.io/component': 'runner' };
      w.fake.put('Pod', { metadata: { name: 'runner-x', namespace: NS, labels } });
      w.endJob('distributed', 'Complete');
      w.fake.updateRun(NS, NAME, { spec: { ...TWO, suspend: true } });
    },
    then(w, o) {
      expect(o.calls.filter((c) => c.op === 'suspendJob')).toEqual([]);
      expect(o.deleted).toEqual([`Job ${jobName(NAME, 1, 'distributed')}`, `Deployment swarmbench.io/run-uid=${w.run.metadata.uid},swarmbench.io/attempt=1`]);
      expect(w.status.phase).toBe('Cancelled');
      expect(o.result).toBeUndefined();
    },
  },
  {
    name: 'suspend with a runner that does not stop: its Job and pools go RUNNER_STOP_MS after the end all the same, and are looked for no longer',
    given: async (w) => {
      await w.settle();
      const labels = (component: string) => ({ 'swarmbench.io/run-uid': w.run.metadata.uid, 'swarmbench.io/attempt': '1', 'swarmbench.io/component': component });
      w.fake.put('Pod', { metadata: { name: 'runner-x', namespace: NS, labels: labels('runner') } });
      w.fake.put('Pod', { metadata: { name: 'agent-x', namespace: NS, labels: labels('agent') } });
      w.fake.updateRun(NS, NAME, { spec: { ...TWO, suspend: true } });
      await act(w);
      w.clock += RUNNER_STOP_MS;
    },
    async then(w, o) {
      expect(o.deleted).toEqual([`Job ${jobName(NAME, 1, 'distributed')}`, `Deployment swarmbench.io/run-uid=${w.run.metadata.uid},swarmbench.io/attempt=1`]);
      w.clock += SWEEP_WINDOW_MS;
      const later = await act(w, 2);
      expect(later.calls.map((c) => c.op)).toEqual(['getRun', 'getRun']);
    },
  },
  {
    name: 'deletion: the run is gone, nothing is created and nothing fails',
    given: async (w) => {
      await w.settle();
      w.fake.remove('BenchmarkRun', NS, NAME);
    },
    then(_w, o) {
      expect(o.result).toBeUndefined();
      expect(o.calls.map((c) => c.op)).toEqual(['getRun']);
    },
  },
  {
    name: 'a result of another attempt while its Job runs: not used, the step waits',
    given: async (w) => {
      await w.settle();
      w.writeResult('distributed', stepResult(TWO, w.step('distributed'), 3));
    },
    then(w, o) {
      expect(o.created).toEqual([]);
      expect(o.events).toEqual([]);
      expect(o.result).toEqual({ requeueAfterMs: POLL });
      expect(w.status.progress?.currentStep).toBe('distributed');
    },
  },
  {
    name: 'a result of another attempt after its Job ended: not used, the step fails naming the attempt',
    given: async (w) => {
      await w.settle();
      w.writeResult('distributed', stepResult(TWO, w.step('distributed'), 3));
      w.endJob('distributed', 'Complete');
    },
    async then(w, o) {
      expect(o.created).toEqual(stepObjects(1, 'integration'));
      expect(o.events[0]).toMatchObject({ type: 'Warning', reason: 'StepFailed' });
      expect(o.events[0]!.message).toMatch(/result is of attempt 3, not of attempt 1/);
      await w.finish();
      for (const t of w.status.tests!.filter((x) => x.category === 'distributed')) expect(t.reason).toMatch(/attempt 3/);
    },
  },
  {
    name: 'a result ConfigMap controlled by another owner is never read as the run\'s (nor handed to the runner): Conflict, the run waits',
    given: (w) => {
      w.fake.put('ConfigMap', {
        metadata: { name: stepResultName(NAME, 1, 'distributed'), namespace: NS, ownerReferences: [foreignOwner] },
        data: { 'result.json': JSON.stringify(stepResult(TWO, w.step('distributed'), 1)) },
      });
    },
    times: 2,
    async then(w, o) {
      const before = w.fake.get('ConfigMap', NS, stepResultName(NAME, 1, 'distributed'));
      expect(o.result).toEqual({ requeueAfterMs: POLL });
      expect(o.created).toEqual([TOKEN(1), `ConfigMap/${paramsName(NAME, 1)}`]);
      expect(o.calls.filter((c) => c.name === stepResultName(NAME, 1, 'distributed') && c.op !== 'read')).toEqual([]);
      expect(w.condition('Conflict')).toMatchObject({ status: 'True', reason: 'ObjectNotOwned' });
      expect(w.condition('Conflict')!.message).toMatch(/ConfigMap bench\/nightly-a1-distributed-result is not controlled by this run .*Deployment someone-else \(uid other-uid\)/);
      expect(reasons(o)).toEqual(['AttemptStarted', 'Conflict']);
      expect(w.status.phase).toBe('Running');
      // Again: no second event, nothing written.
      const again = await act(w);
      expect(again.calls.filter((c) => ['create', 'replace', 'delete', 'deleteCollection', 'patchRunStatus', 'createEvent'].includes(c.op) && !c.failed)).toEqual([]);
      expect(w.fake.get('ConfigMap', NS, stepResultName(NAME, 1, 'distributed'))).toEqual(before);
      // The owner removes it: the run goes on, the Conflict is resolved.
      w.fake.remove('ConfigMap', NS, stepResultName(NAME, 1, 'distributed'));
      await w.settle();
      expect(w.condition('Conflict')).toMatchObject({ status: 'False', reason: 'Resolved' });
    },
  },
  {
    name: 'a result ConfigMap of an earlier run of the same name: not read, the step waits for the garbage collector',
    given: (w) => {
      w.fake.put('ConfigMap', {
        metadata: { name: stepResultName(NAME, 1, 'distributed'), namespace: NS, ownerReferences: [{ apiVersion: API_VERSION_FULL, kind: 'BenchmarkRun', name: NAME, uid: 'old-uid', controller: true }] },
        data: { 'result.json': JSON.stringify(stepResult(TWO, w.step('distributed'), 1)) },
      });
    },
    times: 2,
    async then(w, o) {
      expect(o.result).toEqual({ requeueAfterMs: 2000 });
      expect(o.created).toEqual([TOKEN(1), `ConfigMap/${paramsName(NAME, 1)}`]);
      expect(reasons(o)).toEqual(['AttemptStarted', 'Conflict']);
      expect(w.condition('Conflict')!.message).toMatch(/BenchmarkRun nightly \(uid old-uid\).*garbage collector/);
      w.fake.remove('ConfigMap', NS, stepResultName(NAME, 1, 'distributed'));
      expect((await act(w)).created).toEqual([...RUNNER_IDENTITY, ...stepObjects(1, 'distributed')]);
    },
  },
  {
    name: 'an invalid spec: phase Failed, Ready=False SpecInvalid naming the field, nothing created, not retried',
    spec: { agents: { taskMix: { io: 0.5, cpu: 0.1 } } },
    then(w, o) {
      expect(o.result).toBeUndefined();
      expect(o.created).toEqual([]);
      expect(w.status).toMatchObject({ phase: 'Failed', observedGeneration: 1 });
      expect(w.condition('Ready')).toMatchObject({ status: 'False', reason: 'SpecInvalid' });
      expect(w.condition('Ready')!.message).toMatch(/spec\.agents\.taskMix: io \+ cpu must equal 1/);
      expect(o.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'SpecInvalid' })]);
    },
  },
  {
    name: 'a spec that turns invalid mid-run: the running attempt ends (Jobs and pools deleted), SpecInvalid',
    given: async (w) => {
      await w.settle();
      w.fake.updateRun(NS, NAME, { spec: { ...TWO, stress: { spikeFrom: 50, spikeTo: 10 } } });
    },
    then(w, o) {
      expect(o.result).toBeUndefined();
      expect(o.created).toEqual([]);
      expect(o.deleted.map((d) => d.split(' ')[0])).toEqual(['Job', 'Deployment']);
      expect(w.status).toMatchObject({ phase: 'Failed', observedGeneration: 2 });
      expect(w.condition('Ready')).toMatchObject({ status: 'False', reason: 'SpecInvalid', observedGeneration: 2 });
      expect(w.condition('Ready')!.message).toMatch(/spec\.stress\.spikeTo: spikeTo must be larger than spikeFrom/);
      expect(reasons(o)).toEqual(['SpecInvalid']);
    },
  },
  {
    name: 'a params ConfigMap replaced with invalid JSON: the attempt fails with ParamsInvalid, once',
    given: async (w) => {
      await w.settle();
      w.fake.update('ConfigMap', NS, paramsName(NAME, 1), (o) => (o.data = { 'params.json': '{"mode": "quick",' }));
    },
    then(w, o) {
      expect(o.result).toBeUndefined();
      expect(o.created).toEqual([]);
      expect(o.deleted.map((d) => d.split(' ')[0])).toEqual(['Job', 'Deployment']);
      expect(w.status.phase).toBe('Failed');
      expect(w.condition('Ready')).toMatchObject({ status: 'False', reason: 'ParamsInvalid' });
      expect(w.condition('Ready')!.message).toMatch(/ConfigMap nightly-a1-params \(params\.json\): the parameters are not JSON/);
      expect(o.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'ParamsInvalid' })]);
    },
  },
  {
    name: 'a params ConfigMap that fails the Params schema: ParamsInvalid naming the field',
    given: async (w) => {
      await w.settle();
      const bad = { ...resolveParams(TWO), trials: 0 };
      w.fake.update('ConfigMap', NS, paramsName(NAME, 1), (o) => (o.data = { 'params.json': JSON.stringify(bad) }));
    },
    then(w, o) {
      expect(o.result).toBeUndefined();
      expect(w.condition('Ready')).toMatchObject({ status: 'False', reason: 'ParamsInvalid' });
      expect(w.condition('Ready')!.message).toMatch(/params\.trials/);
      expect(w.fake.names('Job', NS)).toEqual([]);
    },
  },
  {
    name: 'the cache lags behind the result: the Job ended, so the result is read live and used',
    given: async (w) => {
      await w.settle();
      const empty = w.fake.get('ConfigMap', NS, stepResultName(NAME, 1, 'distributed'))!;
      w.pass('distributed');
      w.fake.lagCache('ConfigMap', NS, stepResultName(NAME, 1, 'distributed'), empty);
    },
    then(_w, o) {
      const reads = o.calls.filter((c) => c.op === 'read' && c.name === stepResultName(NAME, 1, 'distributed'));
      expect(reads.map((c) => c.live)).toEqual([false, true]);
      expect(o.created).toEqual(stepObjects(1, 'integration'));
      expect(reasons(o)).toEqual(['StepStarted']);
    },
  },
  {
    name: 'cleanup after success (policy OnSuccess, ttl 0): the attempt\'s Jobs, pools and step ConfigMaps go, the export stays',
    given: async (w) => {
      await w.settle();
      await w.finish();
    },
    then(w, o) {
      expect([...o.deleted].sort()).toEqual([
        `Job ${jobName(NAME, 1, 'distributed')}`,
        `Job ${jobName(NAME, 1, 'integration')}`,
        `Deployment swarmbench.io/run-uid=${w.run.metadata.uid},swarmbench.io/attempt=1`,
        `ConfigMap ${stepResultName(NAME, 1, 'distributed')}`,
        `ConfigMap ${stepSeedsName(NAME, 1, 'distributed')}`,
        `ConfigMap ${stepResultName(NAME, 1, 'integration')}`,
        `ConfigMap ${stepSeedsName(NAME, 1, 'integration')}`,
        `ConfigMap ${paramsName(NAME, 1)}`,
      ].sort());
      expect(w.fake.names('Job', NS)).toEqual([]);
      expect(w.fake.names('ConfigMap', NS)).toEqual(['nightly-results']);
      expect(o.patches).toEqual([]);
    },
  },
  {
    name: 'cleanup waits for ttlSecondsAfterFinished',
    spec: { ...TWO, cleanup: { ttlSecondsAfterFinished: 60 } },
    given: async (w) => {
      await w.settle();
      await w.finish();
    },
    then(w, o) {
      expect(o.deleted).toEqual([]);
      expect((o.result as { requeueAfterMs: number }).requeueAfterMs).toBeGreaterThan(55_000);
      expect(w.fake.names('Job', NS)).toHaveLength(2);
    },
  },
  {
    name: 'a failed attempt is kept a day for inspection (OnSuccess), then cleaned up',
    given: async (w) => {
      await w.settle();
      await w.finish(['1.1']);
      expect(w.status.phase).toBe('Failed');
      // Kept: nothing deleted, looked at again when the day is up (at most hourly).
      const kept = await act(w);
      expect(kept.deleted).toEqual([]);
      expect((kept.result as { requeueAfterMs: number }).requeueAfterMs).toBe(3_600_000);
      expect(w.fake.names('Job', NS)).toHaveLength(2);
      w.clock += FAILURE_TTL_SECONDS * 1000;
    },
    then(w, o) {
      expect(o.deleted).toContain(`Job ${jobName(NAME, 1, 'distributed')}`);
      expect(o.deleted).toContain(`ConfigMap ${stepResultName(NAME, 1, 'distributed')}`);
      expect(w.fake.names('Job', NS)).toEqual([]);
      expect(w.fake.names('ConfigMap', NS)).toEqual(['nightly-results']);
      expect(w.status.phase).toBe('Failed');
    },
  },
  {
    name: 'ttlSecondsAfterFailure sets how long a failed attempt is kept; Always uses ttlSecondsAfterFinished for it',
    spec: { ...TWO, cleanup: { ttlSecondsAfterFailure: 120 } },
    given: async (w) => {
      await w.settle();
      await w.finish(['1.1']);
      const kept = await act(w);
      expect(kept.deleted).toEqual([]);
      expect((kept.result as { requeueAfterMs: number }).requeueAfterMs).toBeGreaterThan(100_000);
      expect(cleanupTtlSeconds({ policy: 'Always', ttlSecondsAfterFinished: 5, ttlSecondsAfterFailure: 99 }, 'Failed')).toBe(5);
      expect(cleanupTtlSeconds({ policy: 'Never' }, 'Failed')).toBeNull();
      expect(cleanupTtlSeconds(undefined, 'Cancelled')).toBe(FAILURE_TTL_SECONDS);
      expect(cleanupTtlSeconds(undefined, 'Succeeded')).toBe(0);
      // The reference states the same default.
      expect(readFileSync(join(REPO_ROOT, 'docs', 'reference.md'), 'utf8')).toContain(`| \`spec.cleanup.ttlSecondsAfterFailure\` | integer | \`${FAILURE_TTL_SECONDS}\` |`);
      w.clock += 120_000;
    },
    then(w, o) {
      expect(o.deleted).toContain(`Job ${jobName(NAME, 1, 'distributed')}`);
      expect(w.fake.names('Job', NS)).toEqual([]);
    },
  },
  {
    name: 'a new value of the rerun annotation after a finished attempt starts another attempt',
    spec: { ...TWO, cleanup: { policy: 'Never' } },
    given: async (w) => {
      await w.settle();
      await w.finish();
      w.fake.updateRun(NS, NAME, { annotations: { 'swarmbench.io/rerun': 'again' } });
    },
    then(w, o) {
      expect(o.created).toEqual([TOKEN(2), `ConfigMap/${paramsName(NAME, 2)}`]);
      expect(w.status).toMatchObject({ attempt: 2, phase: 'Running', lastRerun: 'again', observedGeneration: 1 });
      expect(w.status.history).toHaveLength(1);
    },
  },
  {
    name: 'a status write that fails: no event, the error goes to the queue; the retry converges with one event',
    given: (w) => w.fake.failNext('patchRunStatus', 500),
    throws: /injected 500/,
    async then(w) {
      expect(w.fake.events).toEqual([]);
      expect(w.status.phase).toBeUndefined();
      const retry = await act(w);
      expect(retry.created).toEqual([]);
      expect(w.status).toMatchObject({ phase: 'Running', attempt: 1 });
      expect(reasons(retry)).toEqual(['AttemptStarted']);
    },
  },
];

describe('reconcile', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const w = new World(c.spec ?? TWO, c.nodes ? { nodes: c.nodes } : {});
      await c.given?.(w);
      if (c.throws) {
        await expect(act(w, c.times ?? 1)).rejects.toThrow(c.throws);
        await c.then(w, undefined as never);
        return;
      }
      await c.then(w, await act(w, c.times ?? 1));
    });
  }
});

/** Snapshot of everything in the cluster (to compare before and after a reconcile). */
function snapshot(w: World): Record<string, Obj[]> {
  const kinds = ['BenchmarkRun', 'ConfigMap', 'Job', 'ServiceAccount', 'Role', 'RoleBinding', 'Deployment', 'Secret', 'NetworkPolicy'] as const;
  return Object.fromEntries(kinds.map((k) => [k, w.fake.all(k)]));
}

const idempotent: { name: string; spec?: BenchmarkRunSpec; given: (w: World) => Promise<void> | void }[] = [
  { name: 'a step whose Job runs', given: (w) => w.settle() },
  { name: 'a step that just started', given: async (w) => { await w.reconcile(); } },
  { name: 'a step that failed, the next one running', given: async (w) => { await w.settle(); w.endJob('distributed', 'Failed'); } },
  { name: 'a finished attempt (cleanup policy Never)', spec: { ...TWO, cleanup: { policy: 'Never' } }, given: async (w) => { await w.settle(); await w.finish(); } },
  { name: 'a finished attempt, cleaned up', given: async (w) => { await w.settle(); await w.finish(); } },
  { name: 'a failed attempt (cleanup OnSuccess keeps it)', given: async (w) => { await w.settle(); await w.finish(['1.1', '1.2', '1.3', '1.4']); } },
  { name: 'an invalid spec', spec: { stress: { spikeFrom: 50, spikeTo: 10 } }, given: () => undefined },
  { name: 'a suspended run', given: async (w) => { await w.settle(); w.fake.updateRun(NS, NAME, { spec: { ...TWO, suspend: true } }); } },
  { name: 'a run suspended before it started', spec: { ...TWO, suspend: true }, given: () => undefined },
  { name: 'params that do not parse', given: async (w) => { await w.settle(); w.fake.update('ConfigMap', NS, paramsName(NAME, 1), (o) => (o.data = {})); } },
];

describe('reconcile twice in a row: the second changes nothing', () => {
  for (const c of idempotent) {
    it(c.name, async () => {
      const w = new World(c.spec ?? TWO);
      await c.given(w);
      await w.reconcile();
      const before = snapshot(w);
      const o = await act(w);
      expect(o.calls.filter((x) => ['patchRunStatus', 'createEvent', 'replace', 'delete', 'deleteCollection'].includes(x.op))).toEqual([]);
      expect(o.created).toEqual([]);
      expect(snapshot(w)).toEqual(before);
    });
  }
});

describe('FakeCluster keeps the API server\'s promises', () => {
  it('409 on create, 404 as undefined, resourceVersion bumps, stale replace is a Conflict, label-selector deletes, status merge-patch', async () => {
    const f = new FakeCluster();
    const cm = await f.create('ConfigMap', { metadata: { name: 'a', namespace: NS, labels: { x: '1', c: 'p' } }, data: { k: 'v' } });
    await expect(f.create('ConfigMap', { metadata: { name: 'a', namespace: NS } })).rejects.toMatchObject({ code: 409 });
    expect(await f.read('ConfigMap', NS, 'b')).toBeUndefined();
    const next = await f.replace('ConfigMap', { ...cm, data: { k: 'w' } });
    expect(Number(next.metadata!.resourceVersion)).toBeGreaterThan(Number(cm.metadata!.resourceVersion));
    await expect(f.replace('ConfigMap', { ...cm, data: { k: 'z' } })).rejects.toMatchObject({ code: 409 });
    await f.create('ConfigMap', { metadata: { name: 'b', namespace: NS, labels: { x: '1', c: 'q' } } });
    await f.create('ConfigMap', { metadata: { name: 'c', namespace: NS, labels: { x: '2', c: 'p' } } });
    await f.deleteCollection('ConfigMap', NS, 'x=1,c in (p, r)');
    expect(f.names('ConfigMap', NS)).toEqual(['b', 'c']);
    f.put('BenchmarkRun', { metadata: { name: 'r', namespace: NS }, spec: {}, status: { phase: 'Running', progress: { completedSteps: 1, totalSteps: 2 }, tests: [{ id: '1.1' }] } });
    const r = await f.patchRunStatus(NS, 'r', { progress: { completedSteps: 2 }, tests: [], phase: null });
    expect(r.status).toEqual({ progress: { completedSteps: 2, totalSteps: 2 }, tests: [] });
    expect(r.metadata.generation).toBe(1);
    expect(f.writes().map((c) => c.op)).toEqual(['create', 'create', 'replace', 'replace', 'create', 'create', 'deleteCollection', 'patchRunStatus']);
  });
});
