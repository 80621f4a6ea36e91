/**
 * The pure parts of following a run and showing it (src/cli/cluster/progress.ts, follow.ts,
 * format.ts, describe.ts, logs.ts, conclude.ts, get.ts): progress lines as `swarmbench run`
 * prints them, pods that cannot start, when a wait ends, tables, steps, and the files written.
 */
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoreV1Event, V1ConfigMap, V1Job, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { statusSummary, writeExportFiles } from '../../src/cli/cluster/conclude.ts';
import { recentEvents, runRelatedEvents, stepRows } from '../../src/cli/cluster/describe.ts';
import { isFinished, planOf, podProblems, StuckTracker } from '../../src/cli/cluster/follow.ts';
import { age, cell, runsTable, table } from '../../src/cli/cluster/format.ts';
import { formatRuns } from '../../src/cli/cluster/get.ts';
import { noPodsReason, podHeader } from '../../src/cli/cluster/logs.ts';
import { doneLine, eventLine, ProgressPrinter, progressLine, stepsFinished } from '../../src/cli/cluster/progress.ts';
import type { RunObject } from '../../src/cli/cluster/runs.ts';
import { REPO_ROOT } from '../../src/paths.ts';
import { parseResultDocument } from '../../src/report/document.ts';
import { EXPORT_FILES, renderExports } from '../../src/report/exports.ts';

const run = (status: RunObject['status'], extra: Partial<RunObject['metadata']> = {}, spec: RunObject['spec'] = { categories: ['distributed', 'integration'] }): RunObject => ({
  metadata: { name: 'nightly', namespace: 'bench', generation: 1, creationTimestamp: '2026-01-01T00:00:00Z', ...extra },
  spec,
  status,
});

describe('progress lines', () => {
  it('have the shape of `swarmbench run`: [i/n] step  (N s), done step: K measurements', () => {
    expect(progressLine({ completedSteps: 2, totalSteps: 6, currentStep: 'scalability' }, 42_400)).toBe('[3/6] scalability  (42 s)');
    expect(progressLine({ completedSteps: 6, totalSteps: 6, currentStep: 'stress' }, 0)).toBe('[6/6] stress  (0 s)');
    expect(progressLine({ totalSteps: 0 }, 0)).toBeUndefined();
    expect(doneLine('integration', 3)).toBe('done integration: 3 measurements');
    expect(doneLine('integration')).toBe('done integration');
  });

  it('the steps finished between two observations follow the plan; a new attempt starts again', () => {
    const plan = ['distributed', 'gpu', 'monitoring'];
    expect(stepsFinished(plan, { attempt: 1, completedSteps: 0 }, { attempt: 1, completedSteps: 2 })).toEqual(['distributed', 'gpu']);
    expect(stepsFinished(plan, { attempt: 1, completedSteps: 2 }, { attempt: 1, completedSteps: 2 })).toEqual([]);
    expect(stepsFinished(plan, { attempt: 1, completedSteps: 3 }, { attempt: 2, completedSteps: 1 })).toEqual(['distributed']);
  });

  it('events read as one line, however many lines their message has', () => {
    expect(eventLine({ type: 'Warning', reason: 'NoGpuNode', message: 'no node\nmatches' })).toBe('warning: NoGpuNode: no node; matches');
  });

  it('the printer: a line per change in a log, one rewritten line on a TTY', () => {
    const log: string[] = [];
    const p = new ProgressPrinter({ write: (s: string) => log.push(s) });
    p.update('[1/2] distributed  (1 s)');
    p.update('[1/2] distributed  (3 s)');
    p.note('done distributed: 6 measurements');
    p.update('[2/2] integration  (9 s)');
    expect(log).toEqual(['[1/2] distributed  (1 s)\n', 'done distributed: 6 measurements\n', '[2/2] integration  (9 s)\n']);
    const tty: string[] = [];
    const t = new ProgressPrinter({ isTTY: true, columns: 30, write: (s: string) => tty.push(s) });
    t.update('[1/2] distributed  (1 s)');
    t.update('[1/2] distributed  (2 s)');
    t.note('done distributed');
    expect(tty).toEqual(['\r\x1b[2K[1/2] distributed  (1 s)', '\r\x1b[2K[1/2] distributed  (2 s)', '\r\x1b[2K', 'done distributed\n']);
  });
});

describe('pods that cannot start', () => {
  const pod = (name: string, status: V1Pod['status'], image = 'registry.invalid/agent:1', step = 'integration'): V1Pod => ({
    metadata: { name, labels: { 'swarmbench.io/step': step } },
    spec: { containers: [{ name: 'agent', image }] },
    status,
  });
  const waiting = (reason: string, message?: string): V1Pod['status'] => ({
    phase: 'Pending',
    containerStatuses: [{ name: 'agent', image: 'registry.invalid/agent:1', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, ...(message ? { message } : {}) } } }],
  });

  it('an image that cannot be pulled, a missing configuration, an unschedulable pod', () => {
    const problems = podProblems([
      pod('a-1', waiting('ImagePullBackOff', 'Back-off pulling image "registry.invalid/agent:1"')),
      pod('a-2', waiting('ErrImagePull')),
      pod('b-1', waiting('CreateContainerConfigError', 'secret "prometheus-token" not found')),
      pod('c-1', { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.' }] }, 'swarmbench:dev', 'gpu'),
      pod('ok', { phase: 'Running', containerStatuses: [{ name: 'agent', image: 'x', imageID: '', ready: true, restartCount: 0, state: { running: {} } }] }),
      { ...pod('gone', waiting('ImagePullBackOff')), metadata: { name: 'gone', deletionTimestamp: new Date() } },
      pod('crash', waiting('CrashLoopBackOff')),
    ]);
    expect(problems.map((p) => p.key)).toEqual([
      'image:registry.invalid/agent:1',
      'image:registry.invalid/agent:1',
      'config:secret "prometheus-token" not found',
      'unschedulable:gpu',
    ]);
    expect(problems[0]!.text).toBe('pod a-1 (step integration): container agent: ImagePullBackOff: image "registry.invalid/agent:1" cannot be pulled (Back-off pulling image "registry.invalid/agent:1")');
    expect(problems[3]!.text).toBe('pod c-1 (step gpu) cannot be scheduled: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.');
  });

  it('a problem ends the wait only once seen without a break for the grace; 0 never ends it', () => {
    const t = new StuckTracker(10_000);
    const p = [{ key: 'image:x', text: 'pod p: ImagePullBackOff' }];
    expect(t.observe(p, 0)).toBeUndefined();
    expect(t.observe(p, 9_000)).toBeUndefined();
    expect(t.observe([], 9_500)).toBeUndefined(); // it went away: the clock starts again
    expect(t.observe(p, 10_000)).toBeUndefined();
    expect(t.observe(p, 20_000)).toBe('pod p: ImagePullBackOff (for 10 s)');
    const never = new StuckTracker(0);
    never.observe(p, 0);
    expect(never.observe(p, 1e9)).toBeUndefined();
  });
});

describe('when a wait ends', () => {
  it('at a finished attempt at least the one waited for, with the rerun value asked for; a refused spec ends it', () => {
    expect(isFinished(run({ phase: 'Running', attempt: 1 }), 1)).toBe(false);
    expect(isFinished(run({ phase: 'Succeeded', attempt: 1 }), 1)).toBe(true);
    expect(isFinished(run({ phase: 'Succeeded', attempt: 1 }), 2)).toBe(false);
    expect(isFinished(run({ phase: 'Failed', attempt: 2, lastRerun: 'a' }), 2, 'b')).toBe(false);
    expect(isFinished(run({ phase: 'Failed', attempt: 2, lastRerun: 'b' }), 2, 'b')).toBe(true);
    expect(isFinished(run({ phase: 'Cancelled', attempt: 1 }), 1)).toBe(true);
    const invalid = run({ phase: 'Failed', observedGeneration: 1, conditions: [{ type: 'Ready', status: 'False', reason: 'SpecInvalid', message: 'm', lastTransitionTime: 't' }] });
    expect(isFinished(invalid, 1)).toBe(true);
  });

  it('the plan of a run is its steps in the operator’s order', () => {
    expect(planOf(run({}, {}, { categories: ['integration', 'distributed'] }))).toEqual(['distributed', 'integration']);
    expect(planOf(run({}, {}, { mode: 'huge' } as never))).toEqual([]);
  });
});

describe('tables and descriptions', () => {
  it('ages as kubectl writes them', () => {
    expect(age(0, 59_000)).toBe('59s');
    expect(age(0, 119_000)).toBe('119s');
    expect(age(0, 120_000)).toBe('2m');
    expect(age(0, 3 * 3_600_000)).toBe('3h');
    expect(age(0, 50 * 3_600_000)).toBe('2d');
    expect(age(10, 0)).toBe('0s');
  });

  it('a table aligns columns; a cell keeps hostile text on one short line', () => {
    expect(table(['A', 'BB'], [['xxx', 'y'], ['z', '']])).toBe('A    BB\nxxx  y\nz\n');
    expect(cell('a\nb', 10)).toBe('a; b');
    expect(cell('x'.repeat(200), 10)).toBe(`${'x'.repeat(9)}…`);
  });

  it('get: a row per run with phase, attempt, passed, success rate, verdict, step and age', () => {
    const now = Date.parse('2026-01-01T00:05:00Z');
    const done = run({ phase: 'Succeeded', attempt: 2, summary: { total: 3, passed: 3, failed: 0, skipped: 0, successRate: 100, verdict: 'Passed' } });
    const going = { ...run({ phase: 'Running', attempt: 1, progress: { completedSteps: 1, totalSteps: 2, currentStep: 'integration' } }), metadata: { name: 'pr-1', namespace: 'bench', creationTimestamp: '2026-01-01T00:04:30Z' } };
    expect(runsTable([going, done], now)).toBe(
      'NAME     PHASE      ATTEMPT  PASSED  SUCCESS  VERDICT  STEP               AGE\n' +
        'nightly  Succeeded  2        3/3     100%     Passed                      5m\n' +
        'pr-1     Running    1                                  integration (2/2)  30s\n',
    );
    expect(formatRuns([done, going], 'name', now, false, false)).toBe('benchmarkrun.swarmbench.io/nightly\nbenchmarkrun.swarmbench.io/pr-1\n');
    expect(JSON.parse(formatRuns([done], 'json', now, true, false)).metadata.name).toBe('nightly');
    expect(JSON.parse(formatRuns([done], 'json', now, false, false)).kind).toBe('List');
    expect(runsTable([done], now, true).split('\n')[0]).toMatch(/^NAMESPACE\s+NAME/);
  });

  it('describe: each step from its Job and result; the events of the run and what it made', () => {
    const st = run({ phase: 'Running', attempt: 1, progress: { completedSteps: 1, totalSteps: 2, currentStep: 'integration' } });
    const jobs: V1Job[] = [
      { metadata: { name: 'nightly-a1-distributed' }, status: { conditions: [{ type: 'Complete', status: 'True' }] } },
      { metadata: { name: 'nightly-a1-integration' }, status: { active: 1 } },
    ];
    const results: V1ConfigMap[] = [{ metadata: { name: 'nightly-a1-distributed-result', labels: { 'swarmbench.io/step': 'distributed' } }, data: { 'result.json': JSON.stringify({ measurements: [1, 2, 3, 4, 5, 6] }) } }];
    expect(stepRows(['distributed', 'integration'], st, jobs, results)).toEqual([
      { step: 'distributed', state: 'done', job: 'nightly-a1-distributed', detail: '6 measurements' },
      { step: 'integration', state: 'running', job: 'nightly-a1-integration', detail: '1 pod(s) active' },
    ]);
    const failed: V1Job = { metadata: { name: 'nightly-a1-integration' }, status: { conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' }] } };
    expect(stepRows(['integration'], st, [failed], [])[0]).toMatchObject({ state: 'failed', detail: 'DeadlineExceeded: Job was active longer than specified deadline' });
    expect(stepRows(['integration'], run({ phase: 'Succeeded', attempt: 1 }), [], [])[0]!.state).toBe('finished (cleaned up)');
    expect(stepRows(['integration'], st, undefined, undefined)[0]!.state).toBe('?');

    const ev = (name: string, t: string, type = 'Normal'): CoreV1Event => ({ metadata: {}, involvedObject: { name }, lastTimestamp: new Date(t), type });
    const events = [ev('nightly-a1-x', '2026-01-01T00:00:03Z'), ev('other', '2026-01-01T00:00:01Z'), ev('nightly', '2026-01-01T00:00:02Z'), ev('nightlyx', '2026-01-01T00:00:01Z')];
    expect(runRelatedEvents(events, 'nightly').map((e) => e.involvedObject.name)).toEqual(['nightly', 'nightly-a1-x']);
    // 40 events of pods, one of them an old Warning, and the run's own two at the start.
    const at = (i: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
    const many = [ev('nightly', at(0)), ev('nightly', at(1)), ...Array.from({ length: 40 }, (_, i) => ev(`nightly-a1-pod-${i}`, at(2 + i), i === 2 ? 'Warning' : 'Normal'))];
    const kept = recentEvents(many, 'nightly');
    expect(kept.map((e) => e.involvedObject.name)).toEqual(['nightly', 'nightly', 'nightly-a1-pod-2', ...Array.from({ length: 15 }, (_, i) => `nightly-a1-pod-${25 + i}`)]);
  });

  it('logs: a header per pod; when there are none, why and what to do', () => {
    const p: V1Pod = { metadata: { name: 'nightly-a1-integration-x', labels: { 'swarmbench.io/step': 'integration', 'swarmbench.io/component': 'runner' } }, spec: { nodeName: 'n1', containers: [] }, status: { phase: 'Succeeded' } };
    expect(podHeader(p, 'runner')).toBe('==> runner of step integration: pod nightly-a1-integration-x on n1, Succeeded, container runner <==');
    expect(noPodsReason(run({ phase: 'Succeeded', attempt: 1 }), 1)).toBe(
      'no runner pods of run nightly, attempt 1: the cleanup policy (OnSuccess, 0 s after the end) removed them; to keep them, set spec.cleanup.policy: Never or a longer ttlSecondsAfterFinished',
    );
    expect(noPodsReason(run({ phase: 'Failed', attempt: 1 }), 1)).toMatch(/the cleanup policy \(OnSuccess, 86400 s after the end\) removed them; .* a longer ttlSecondsAfterFailure$/);
    expect(noPodsReason(run({ phase: 'Running', attempt: 1, progress: { completedSteps: 0, totalSteps: 2, currentStep: 'distributed' } }), 1, 'integration')).toMatch(/yet \(phase Running, step distributed\); try again when the step has started$/);
  });
});

describe('the files of an export', () => {
  const doc = parseResultDocument(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'results-quick.json'), 'utf8'), 'results-quick.json');

  it('are written as the ConfigMap holds them; a file it lacks is rendered as `swarmbench run` would', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-export-'));
    const files = { 'results.json': 'as the operator wrote it\n', 'junit.xml': '<x/>\n' };
    const written = writeExportFiles(dir, { configMapName: 'q-results', files, doc });
    expect(written.map((w) => w.slice(dir.length + 1))).toEqual([...EXPORT_FILES]);
    expect(readdirSync(dir).sort()).toEqual([...EXPORT_FILES].sort());
    expect(readFileSync(join(dir, 'results.json'), 'utf8')).toBe('as the operator wrote it\n');
    expect(readFileSync(join(dir, 'junit.xml'), 'utf8')).toBe('<x/>\n');
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toBe(renderExports(doc)['report.md']);
    // A folder under a file cannot be made: the error names --out and the reason.
    const under = join(dir, 'results.json', 'x');
    expect(() => writeExportFiles(under, { configMapName: 'q', files, doc })).toThrow(`--out ${under}: cannot create the folder: ENOTDIR`);
  });

  it('a report from the status alone names the failed tests with value, target and reason', () => {
    const text = statusSummary(run({
      phase: 'Failed', attempt: 1,
      summary: { total: 2, passed: 1, failed: 1, skipped: 0, successRate: 50, verdict: 'Failed' },
      tests: [{ id: '5.1', name: 'End-to-end workflow', category: 'integration', result: 'Failed', unit: 'ms', target: '<0.001', value: 9.4321, reason: 'p50 9.43 ms does not meet the target <0.001 ms' }],
    }));
    expect(text).toBe('run nightly: Failed, attempt 1\n1/2 passed, 1 failed, 0 skipped, success rate 50%, verdict Failed\n  5.1 End-to-end workflow: Failed 9.43 ms (target <0.001 ms): p50 9.43 ms does not meet the target <0.001 ms\n');
  });
});
