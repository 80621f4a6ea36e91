/**
 * The scheduling decisions of a BenchmarkSchedule (src/operator/schedule-plan.ts), with a fake
 * clock: due times (also across the daylight-saving changes of Europe/Berlin), missed times past
 * the deadline, more than 100 missed, the concurrency policies, suspend, run-now once per token,
 * history pruning, the baseline policies and the names of the runs.
 */
import { describe, expect, it } from 'vitest';
import { BenchmarkScheduleStatus } from '../../src/api/schedule.ts';
import {
  baselineRuns,
  dueTime,
  manualRunName,
  MAX_MISSED_LOOKBACK,
  MAX_REQUEUE_MS,
  ownedRunOf,
  planSchedule,
  pruneRuns,
  runNowKey,
  scheduledRunName,
  statusPatch,
  type OwnedRun,
  type ScheduleDecision,
} from '../../src/operator/schedule-plan.ts';

const T = (s: string): Date => new Date(s);
const minutes = (s: string): number => Math.floor(T(s).getTime() / 60_000);

interface Opts {
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  annotations?: Record<string, string>;
  runs?: OwnedRun[];
  created?: string;
  name?: string;
}

function plan(now: string, o: Opts = {}): ScheduleDecision {
  return planSchedule({
    schedule: {
      metadata: { name: o.name ?? 'nightly', namespace: 'bench', uid: 'sched-uid', generation: 2, creationTimestamp: o.created ?? '2025-01-01T00:00:00Z', ...(o.annotations ? { annotations: o.annotations } : {}) },
      spec: { schedule: '0 3 * * *', runTemplate: { spec: { mode: 'quick' } }, ...o.spec },
      status: o.status,
    },
    runs: o.runs ?? [],
    now: T(now),
  });
}

/** The next pass: the same schedule with the status this decision wrote and the runs it made. */
const after = (d: ScheduleDecision, o: Opts): Opts => ({ ...o, status: d.status as Record<string, unknown>, runs: [...(o.runs ?? []).filter((r) => !d.deleteActive.includes(r.name) && !d.prune.includes(r.name)), ...(d.create ? [{ name: d.create.name, scheduledTime: d.create.scheduledTime, trigger: d.create.trigger }] : [])] });

const run = (name: string, scheduledTime: string, phase?: string, extra: Partial<OwnedRun> = {}): OwnedRun => ({ name, scheduledTime, trigger: 'scheduled', ...(phase ? { phase } : {}), ...extra });

describe('due times', () => {
  it('nothing before the first time; the next time and the wake-up are given', () => {
    const d = plan('2025-01-01T02:59:00Z');
    expect(d.create).toBeUndefined();
    expect(d.status.nextScheduleTime).toBe('2025-01-01T03:00:00.000Z');
    expect(d.requeueAfterMs).toBe(60_000);
    expect(d.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Scheduled', observedGeneration: 2 });
    expect(BenchmarkScheduleStatus.safeParse(d.status).success).toBe(true);
  });

  it('at the time: one run, named by the unix minutes, owned by the schedule, with the template', () => {
    const d = plan('2025-01-01T03:00:20Z', { spec: { runTemplate: { metadata: { labels: { team: 'a' }, annotations: { note: 'n' } }, spec: { mode: 'quick', trials: 5 } } } });
    expect(d.create?.name).toBe(`nightly-${minutes('2025-01-01T03:00:00Z')}`);
    const obj = d.create!.object;
    expect(obj).toMatchObject({ apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', spec: { mode: 'quick', trials: 5 } });
    expect(obj.metadata.namespace).toBe('bench');
    expect(obj.metadata.labels).toEqual({ team: 'a', 'app.kubernetes.io/managed-by': 'swarmbench', 'swarmbench.io/schedule': 'nightly' });
    expect(obj.metadata.annotations).toEqual({ note: 'n', 'swarmbench.io/scheduled-time': '2025-01-01T03:00:00.000Z', 'swarmbench.io/trigger': 'scheduled' });
    expect(obj.metadata.ownerReferences).toEqual([{ apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkSchedule', name: 'nightly', uid: 'sched-uid', controller: true, blockOwnerDeletion: true }]);
    expect(d.status).toMatchObject({ lastScheduleTime: '2025-01-01T03:00:00.000Z', nextScheduleTime: '2025-01-02T03:00:00.000Z', active: [d.create!.name], activeCount: 1, lastRun: d.create!.name });
    expect(d.events.map((e) => e.reason)).toContain('SuccessfulCreate');
    // The next pass creates nothing more.
    const again = plan('2025-01-01T03:00:40Z', after(d, {}));
    expect(again.create).toBeUndefined();
    expect(again.status.active).toEqual([d.create!.name]);
  });

  it('a time years away is planned again within a day', () => {
    const d = plan('2025-03-01T00:00:00Z', { spec: { schedule: '0 0 29 2 *' } });
    expect(d.status.nextScheduleTime).toBe('2028-02-29T00:00:00.000Z');
    expect(d.requeueAfterMs).toBe(MAX_REQUEUE_MS);
  });

  it('a run created by a pass whose status write was lost is not created again, and the status catches up', () => {
    const name = `nightly-${minutes('2025-01-01T03:00:00Z')}`;
    const d = plan('2025-01-01T03:01:00Z', { runs: [run(name, '2025-01-01T03:00:00.000Z', 'Running')] });
    expect(d.create).toBeUndefined();
    expect(d.status.lastScheduleTime).toBe('2025-01-01T03:00:00.000Z');
    expect(d.status.active).toEqual([name]);
    // Even without its annotation: the predictable name is enough.
    const bare = plan('2025-01-01T03:01:00Z', { runs: [{ name, phase: 'Running' }] });
    expect(bare.create).toBeUndefined();
    expect(bare.status.lastScheduleTime).toBe('2025-01-01T03:00:00.000Z');
  });

  it('the template is copied, never shared with the run', () => {
    const template = { mode: 'quick', categories: ['gpu'] };
    const d = plan('2025-01-01T03:00:00Z', { spec: { runTemplate: { spec: template } } });
    (d.create!.object.spec.categories as string[]).push('stress');
    expect(template.categories).toEqual(['gpu']);
  });

  describe('Europe/Berlin across daylight saving', () => {
    const berlin = { schedule: '30 2 * * *', timeZone: 'Europe/Berlin' };
    it('spring forward: 02:30 does not exist on 2025-03-30; the run starts when the clock has jumped (03:00 CEST), once', () => {
      const o = { spec: berlin, status: { lastScheduleTime: '2025-03-29T01:30:00.000Z' } };
      const early = plan('2025-03-30T00:45:00Z', o); // 01:45 CET
      expect(early.create).toBeUndefined();
      expect(early.status.nextScheduleTime).toBe('2025-03-30T01:00:00.000Z');
      const d = plan('2025-03-30T01:00:30Z', o);
      expect(d.create?.scheduledTime).toBe('2025-03-30T01:00:00.000Z');
      expect(d.create?.name).toBe(`nightly-${minutes('2025-03-30T01:00:00Z')}`);
      expect(d.status.nextScheduleTime).toBe('2025-03-31T00:30:00.000Z'); // 02:30 CEST
      expect(plan('2025-03-30T02:00:00Z', after(d, o)).create).toBeUndefined();
    });

    it('fall back: 02:30 happens twice on 2025-10-26; a fixed-time schedule runs once, at the first', () => {
      const o = { spec: berlin, status: { lastScheduleTime: '2025-10-25T00:30:00.000Z' } };
      const d = plan('2025-10-26T00:31:00Z', o); // 02:31 CEST
      expect(d.create?.scheduledTime).toBe('2025-10-26T00:30:00.000Z');
      const second = plan('2025-10-26T01:31:00Z', after(d, o)); // 02:31 CET, the second pass of the hour
      expect(second.create).toBeUndefined();
      expect(second.status.nextScheduleTime).toBe('2025-10-27T01:30:00.000Z'); // 02:30 CET
    });

    it('fall back: an hourly schedule runs on both 02:30s', () => {
      const o = { spec: { schedule: '30 * * * *', timeZone: 'Europe/Berlin' }, status: { lastScheduleTime: '2025-10-26T00:30:00.000Z' } };
      const d = plan('2025-10-26T01:30:10Z', o);
      expect(d.create?.scheduledTime).toBe('2025-10-26T01:30:00.000Z');
      expect(d.create?.name).not.toBe(`nightly-${minutes('2025-10-26T00:30:00Z')}`);
    });
  });
});

describe('missed times', () => {
  const hourly = { schedule: '0 * * * *' };
  it('past startingDeadlineSeconds: no run, recorded once with an event; within it: the run starts', () => {
    const o = { spec: { ...hourly, startingDeadlineSeconds: 60 }, status: { lastScheduleTime: '2025-01-01T10:00:00.000Z' } };
    const late = plan('2025-01-01T11:05:00Z', o);
    expect(late.create).toBeUndefined();
    expect(late.status.missed).toEqual([{ time: '2025-01-01T11:00:00.000Z', reason: 'StartingDeadlineExceeded', message: expect.stringMatching(/300s late, past startingDeadlineSeconds 60/) }]);
    expect(late.events.filter((e) => e.reason === 'MissSchedule')).toHaveLength(1);
    expect(late.status.lastScheduleTime).toBe('2025-01-01T10:00:00.000Z');
    const again = plan('2025-01-01T11:06:00Z', after(late, o));
    expect(again.status.missed).toHaveLength(1);
    expect(again.events.filter((e) => e.reason === 'MissSchedule')).toHaveLength(0);
    expect(plan('2025-01-01T11:00:59Z', o).create?.scheduledTime).toBe('2025-01-01T11:00:00.000Z');
  });

  it('several missed without a deadline: only the latest starts; the earlier ones are recorded as Superseded', () => {
    const d = plan('2025-01-01T11:05:00Z', { spec: hourly, status: { lastScheduleTime: '2025-01-01T08:00:00.000Z' } });
    expect(d.create?.scheduledTime).toBe('2025-01-01T11:00:00.000Z');
    expect(d.status.missed).toEqual([{ time: '2025-01-01T11:00:00.000Z', reason: 'Superseded', message: expect.stringMatching(/^2 earlier scheduled time\(s\) from 2025-01-01T09:00:00.000Z/) }]);
  });

  it('from the creation time when the schedule never ran', () => {
    const d = plan('2025-01-02T03:10:00Z', { created: '2025-01-01T12:00:00Z' });
    expect(d.create?.scheduledTime).toBe('2025-01-02T03:00:00.000Z');
    expect(d.status.missed).toBeUndefined();
  });

  it(`more than ${MAX_MISSED_LOOKBACK} missed: recorded, and the latest starts; the walk stays bounded`, () => {
    const o = { spec: { schedule: '* * * * *' }, status: { lastScheduleTime: '2024-01-01T00:00:00.000Z' } };
    const t0 = performance.now();
    const d = plan('2025-01-01T12:34:56Z', o);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(d.create?.scheduledTime).toBe('2025-01-01T12:34:00.000Z');
    expect(d.status.missed?.[0]).toMatchObject({ reason: 'TooManyMissed', time: '2025-01-01T12:34:00.000Z' });
    expect(d.events.map((e) => e.reason)).toContain('TooManyMissedTimes');
    // Exactly 100 missed is not too many.
    const hundred = dueTime({ schedule: '* * * * *', timeZone: 'UTC' }, T('2025-01-01T00:00:00Z').getTime(), T('2025-01-01T01:40:00Z').getTime());
    expect(hundred).toMatchObject({ tooMany: false, passedOver: 99, time: T('2025-01-01T01:40:00Z').getTime() });
    const more = dueTime({ schedule: '* * * * *', timeZone: 'UTC' }, T('2025-01-01T00:00:00Z').getTime(), T('2025-01-01T01:41:00Z').getTime());
    expect(more).toMatchObject({ tooMany: true, time: T('2025-01-01T01:41:00Z').getTime() });
  });

  it('keeps only the newest records', () => {
    const old = Array.from({ length: 10 }, (_, i) => ({ time: `2024-01-0${i % 9 + 1}T00:00:00.000Z`, reason: `R${i}`, message: 'm' }));
    const d = plan('2025-01-01T11:05:00Z', { spec: { ...hourly, startingDeadlineSeconds: 60 }, status: { lastScheduleTime: '2025-01-01T10:00:00.000Z', missed: old } });
    expect(d.status.missed).toHaveLength(10);
    expect(d.status.missed!.at(-1)!.reason).toBe('StartingDeadlineExceeded');
    expect(d.status.missed![0]!.reason).toBe('R1');
  });
});

describe('concurrency policies', () => {
  const o = (policy: string, runs: OwnedRun[]) => ({ spec: { concurrencyPolicy: policy }, status: { lastScheduleTime: '2025-01-01T03:00:00.000Z' }, runs });
  const activeRun = run('nightly-old', '2025-01-01T03:00:00.000Z', 'Running');
  const now = '2025-01-02T03:00:05Z';

  it('Forbid: postponed while a run is active (told once), started when it finishes', () => {
    const opts = o('Forbid', [activeRun]);
    const d = plan(now, opts);
    expect(d.create).toBeUndefined();
    expect(d.deleteActive).toEqual([]);
    expect(d.status.conditions?.find((c) => c.type === 'Ready')?.message).toMatch(/scheduled time 2025-01-02T03:00:00.000Z waits: run nightly-old still active \(concurrencyPolicy Forbid\)/);
    expect(d.events.filter((e) => e.reason === 'RunPostponed')).toHaveLength(1);
    expect(d.status.missed).toBeUndefined();
    const again = plan('2025-01-02T03:10:00Z', after(d, opts));
    expect(again.events.filter((e) => e.reason === 'RunPostponed')).toHaveLength(0);
    const done = plan('2025-01-02T04:00:00Z', { ...after(d, opts), runs: [{ ...activeRun, phase: 'Succeeded', verdict: 'Passed' }] });
    expect(done.create?.scheduledTime).toBe('2025-01-02T03:00:00.000Z');
  });

  it('Forbid with a deadline: a run that finishes too late to start the postponed time skips it', () => {
    const opts = { ...o('Forbid', [{ ...activeRun, phase: 'Succeeded' }]), spec: { concurrencyPolicy: 'Forbid', startingDeadlineSeconds: 600 } };
    const d = plan('2025-01-02T04:00:00Z', opts);
    expect(d.create).toBeUndefined();
    expect(d.status.missed?.[0]?.reason).toBe('StartingDeadlineExceeded');
  });

  it('Replace: the active run is deleted and the new one created', () => {
    const d = plan(now, o('Replace', [activeRun]));
    expect(d.deleteActive).toEqual(['nightly-old']);
    expect(d.create?.scheduledTime).toBe('2025-01-02T03:00:00.000Z');
    expect(d.status.active).toEqual([d.create!.name]);
    expect(d.events.map((e) => e.reason)).toContain('Replaced');
  });

  it('Allow: side by side, up to 10 active', () => {
    const d = plan(now, o('Allow', [activeRun]));
    expect(d.deleteActive).toEqual([]);
    expect(d.status.active).toEqual(['nightly-old', d.create!.name]);
    const ten = Array.from({ length: 10 }, (_, i) => run(`r${i}`, `2025-01-01T0${i}:00:00.000Z`, 'Running'));
    const full = plan(now, o('Allow', ten));
    expect(full.create).toBeUndefined();
    expect(full.status.conditions?.find((c) => c.type === 'Ready')?.message).toMatch(/10 runs active/);
  });

  it('a run being deleted is not active', () => {
    const d = plan(now, o('Forbid', [{ ...activeRun, deleting: true }]));
    expect(d.create).toBeDefined();
  });
});

describe('suspend and run now', () => {
  it('suspended: nothing scheduled, no next time, no wake-up, Ready=False Suspended; resumed: the latest missed time starts', () => {
    const o = { spec: { suspend: true }, status: { lastScheduleTime: '2025-01-01T03:00:00.000Z', nextScheduleTime: '2025-01-02T03:00:00.000Z' } };
    const d = plan('2025-01-03T04:00:00Z', o);
    expect(d.create).toBeUndefined();
    expect(d.status.nextScheduleTime).toBeUndefined();
    expect(d.requeueAfterMs).toBeUndefined();
    expect(d.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'Suspended' });
    expect(statusPatch(o.status, d.status)).toMatchObject({ nextScheduleTime: null });
    const resumed = plan('2025-01-03T04:00:00Z', { ...o, spec: { suspend: false } });
    expect(resumed.create?.scheduledTime).toBe('2025-01-03T03:00:00.000Z');
  });

  it('each run-now token starts one run, also while suspended', () => {
    const o = { spec: { suspend: true }, annotations: { 'swarmbench.io/run-now': 'build-42' } };
    const d = plan('2025-01-01T12:00:00Z', o);
    expect(d.create?.name).toBe(manualRunName('nightly', 'build-42'));
    expect(d.create?.name).toMatch(/^nightly-manual-[0-9a-f]{8}$/);
    expect(d.create?.trigger).toBe('manual');
    expect(d.create?.object.metadata.annotations).toMatchObject({ 'swarmbench.io/trigger': 'manual', 'swarmbench.io/scheduled-time': '2025-01-01T12:00:00.000Z' });
    expect(d.status.lastRunNow).toBe('build-42');
    const again = plan('2025-01-01T12:05:00Z', after(d, o));
    expect(again.create).toBeUndefined();
    // A manual run does not count as a scheduled time.
    expect(again.status.lastScheduleTime).toBeUndefined();
    const next = plan('2025-01-01T12:06:00Z', { ...after(d, o), annotations: { 'swarmbench.io/run-now': 'build-43' } });
    expect(next.create?.name).not.toBe(d.create?.name);
    expect(plan('2025-01-01T02:00:00Z', { annotations: { 'swarmbench.io/run-now': '  ' } }).create).toBeUndefined();
  });

  it('a lost status write: the manual run exists, the token is marked handled without a second run', () => {
    const d = plan('2025-01-01T12:00:00Z', { annotations: { 'swarmbench.io/run-now': 'x' }, runs: [{ name: manualRunName('nightly', 'x'), trigger: 'manual', phase: 'Running' }] });
    expect(d.create).toBeUndefined();
    expect(d.status.lastRunNow).toBe('x');
  });

  it('a long token is recorded by its SHA-256, and triggers once', () => {
    const long = 't'.repeat(300);
    expect(runNowKey(long)).toMatch(/^sha256:[0-9a-f]{64}$/);
    const o = { annotations: { 'swarmbench.io/run-now': long } };
    const d = plan('2025-01-01T12:00:00Z', o);
    expect(d.status.lastRunNow).toBe(runNowKey(long));
    expect(BenchmarkScheduleStatus.safeParse(d.status).success).toBe(true);
    expect(plan('2025-01-01T12:01:00Z', after(d, o)).create).toBeUndefined();
  });

  it('a token that comes with a due time is served by the scheduled run', () => {
    const d = plan('2025-01-01T03:00:10Z', { annotations: { 'swarmbench.io/run-now': 'now' } });
    expect(d.create?.trigger).toBe('scheduled');
    expect(d.status.lastRunNow).toBe('now');
    expect(d.events.map((e) => e.reason)).toContain('RunNow');
  });

  it('Forbid: a token waits for the active run and is not marked handled', () => {
    const o = { annotations: { 'swarmbench.io/run-now': 'go' }, runs: [run('nightly-old', '2025-01-01T03:00:00.000Z', 'Running')], status: { lastScheduleTime: '2025-01-01T03:00:00.000Z' } };
    const d = plan('2025-01-01T12:00:00Z', o);
    expect(d.create).toBeUndefined();
    expect(d.status.lastRunNow).toBeUndefined();
    expect(d.status.conditions?.find((c) => c.type === 'Ready')?.message).toMatch(/run-now go waits/);
    const done = plan('2025-01-01T13:00:00Z', { ...o, runs: [run('nightly-old', '2025-01-01T03:00:00.000Z', 'Failed')] });
    expect(done.create?.trigger).toBe('manual');
  });
});

describe('history', () => {
  const runs: OwnedRun[] = [
    run('s1', '2025-01-01T03:00:00Z', 'Succeeded'),
    run('s2', '2025-01-02T03:00:00Z', 'Succeeded'),
    run('f1', '2025-01-03T03:00:00Z', 'Failed'),
    run('s3', '2025-01-04T03:00:00Z', 'Succeeded'),
    run('c1', '2025-01-05T03:00:00Z', 'Cancelled'),
    run('s4', '2025-01-06T03:00:00Z', 'Succeeded'),
    run('f2', '2025-01-07T03:00:00Z', 'Failed'),
    run('s5', '2025-01-08T03:00:00Z', 'Succeeded'),
    run('a1', '2025-01-09T03:00:00Z', 'Running'),
    run('s0', '2024-12-31T03:00:00Z', 'Succeeded', { deleting: true }),
  ];

  it('deletes finished runs beyond the limits, oldest first, succeeded and failed counted apart', () => {
    expect(pruneRuns(runs, 3, 1, new Set())).toEqual(['s1', 's2', 'f1', 'c1']);
    expect(pruneRuns(runs, 0, 0, new Set())).toEqual(['s1', 's2', 'f1', 's3', 'c1', 's4', 'f2', 's5']);
    expect(pruneRuns(runs, 100, 100, new Set())).toEqual([]);
  });

  it('never deletes a run the baseline compares with; the plan prunes with the spec limits', () => {
    expect(pruneRuns(runs, 3, 1, new Set(['s1']))).toEqual(['s2', 'f1', 's3', 'c1']);
    const d = plan('2025-01-09T12:00:00Z', { runs, spec: { successfulRunsHistoryLimit: 2, baseline: { policy: 'pinned', run: 's1' } }, status: { lastScheduleTime: '2025-01-09T03:00:00.000Z' } });
    // Two Succeeded kept: the pinned s1 and the newest, s5.
    expect(d.prune).toEqual(['s2', 'f1', 's3', 'c1', 's4']);
    expect(d.status.active).toEqual(['a1']);
  });

  it('falls back on the creation time without a scheduled time', () => {
    const r: OwnedRun[] = [{ name: 'b', creationTimestamp: '2025-01-02T00:00:00Z', phase: 'Succeeded' }, { name: 'a', creationTimestamp: new Date('2025-01-01T00:00:00Z'), phase: 'Succeeded' }];
    expect(pruneRuns(r, 1, 1, new Set())).toEqual(['a']);
  });
});

describe('baselines, verdicts and regressions', () => {
  const history: OwnedRun[] = [
    run('n1', '2025-01-01T03:00:00Z', 'Succeeded', { verdict: 'Passed' }),
    run('n2', '2025-01-02T03:00:00Z', 'Succeeded', { verdict: 'Passed' }),
    run('n3', '2025-01-03T03:00:00Z', 'Failed', { verdict: 'Failed', regressed: ['1.2', '3.1'] }),
  ];
  const o = (baseline: unknown) => ({ runs: history, spec: { baseline, runTemplate: { spec: { baseline: { failOnRegression: true } } } }, status: { lastScheduleTime: '2025-01-03T03:00:00.000Z' } });
  const now = '2025-01-04T03:00:01Z';

  it('previous: the latest Succeeded run; the template keeps failOnRegression', () => {
    expect(plan(now, o({ policy: 'previous' })).create?.object.spec.baseline).toEqual({ failOnRegression: true, runRef: 'n2' });
  });

  it('pinned: the named run', () => {
    expect(plan(now, o({ policy: 'pinned', run: 'golden' })).create?.object.spec.baseline).toEqual({ failOnRegression: true, runRef: 'golden' });
  });

  it('pooled: the latest K Succeeded runs, newest first, on the run (no runRef)', () => {
    const d = plan(now, o({ policy: 'pooled', count: 5 }));
    expect(d.create?.object.spec.baseline).toEqual({ failOnRegression: true, pool: ['n2', 'n1'] });
    expect(d.create?.object.metadata.annotations['swarmbench.io/baseline-pool']).toBeUndefined();
    expect(baselineRuns({ policy: 'pooled', count: 1 }, history)).toEqual(['n2']);
  });

  it('none: the template as it is; no previous success: no baseline', () => {
    expect(plan(now, o(undefined)).create?.object.spec.baseline).toEqual({ failOnRegression: true });
    expect(baselineRuns({ policy: 'previous', count: 5 }, [])).toEqual([]);
  });

  it('the last verdict and the last regression come from the latest finished run', () => {
    const d = plan(now, o(undefined));
    expect(d.status.lastVerdict).toBe('Failed');
    expect(d.status.lastRegression).toEqual({ run: 'n3', tests: ['1.2', '3.1'] });
    expect(d.status.conditions?.find((c) => c.type === 'Regressed')).toMatchObject({ status: 'True', reason: 'Regressions', message: expect.stringMatching(/n3.*1\.2, 3\.1/) });
    const later = plan('2025-01-05T03:00:01Z', { ...o(undefined), runs: [...history, run('n4', '2025-01-04T03:00:00Z', 'Succeeded', { verdict: 'Passed', regressed: [] })], status: d.status as Record<string, unknown> });
    expect(later.status.lastVerdict).toBe('Passed');
    expect(later.status.lastRegression).toEqual({ run: 'n3', tests: ['1.2', '3.1'] });
    expect(later.status.conditions?.find((c) => c.type === 'Regressed')).toMatchObject({ status: 'False', reason: 'NoRegressions' });
  });

  it('reads a run object as the API server returns it', () => {
    const r = ownedRunOf({
      metadata: { name: 'n9', creationTimestamp: new Date('2025-01-01T00:00:00Z'), deletionTimestamp: new Date('2025-01-02T00:00:00Z'), annotations: { 'swarmbench.io/scheduled-time': '2025-01-01T00:00:00.000Z', 'swarmbench.io/trigger': 'scheduled' } },
      status: { phase: 'Failed', summary: { verdict: 'Failed' }, comparison: { regressed: ['2.1'] } },
    });
    expect(r).toEqual({ name: 'n9', creationTimestamp: new Date('2025-01-01T00:00:00Z'), phase: 'Failed', verdict: 'Failed', scheduledTime: '2025-01-01T00:00:00.000Z', trigger: 'scheduled', regressed: ['2.1'], deleting: true });
    expect(ownedRunOf({ metadata: { name: 'fresh' } })).toEqual({ name: 'fresh' });
  });
});

describe('names', () => {
  it('are stable, distinct per time, and at most 63 characters however long the schedule name', () => {
    const t = T('2025-06-01T03:00:00Z');
    expect(scheduledRunName('nightly', t)).toBe(`nightly-${minutes('2025-06-01T03:00:00Z')}`);
    expect(scheduledRunName('nightly', t)).toBe(scheduledRunName('nightly', new Date(t)));
    expect(scheduledRunName('nightly', t)).not.toBe(scheduledRunName('nightly', T('2025-06-02T03:00:00Z')));
    const long = 'a'.repeat(63);
    const other = `${'a'.repeat(62)}b`;
    for (const n of [scheduledRunName(long, t), manualRunName(long, 'x'), scheduledRunName(other, t)]) {
      expect(n.length).toBeLessThanOrEqual(63);
      expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
    expect(scheduledRunName(long, t)).not.toBe(scheduledRunName(other, t));
    expect(scheduledRunName(long, t).endsWith(`-${minutes('2025-06-01T03:00:00Z')}`)).toBe(true);
    expect(manualRunName('nightly', 'a')).not.toBe(manualRunName('nightly', 'b'));
    const d = plan('2025-01-01T03:00:00Z', { name: long });
    expect(d.create!.name.length).toBeLessThanOrEqual(63);
    expect(d.create!.object.metadata.labels['swarmbench.io/schedule']).toBe(long);
  });
});

describe('an invalid spec', () => {
  it('creates and deletes nothing; Ready=False SpecInvalid names the fields', () => {
    const d = plan('2025-01-01T03:00:00Z', { spec: { schedule: '99 * * * *', successfulRunsHistoryLimit: -1 }, runs: [run('old', '2024-01-01T00:00:00Z', 'Succeeded')], status: { nextScheduleTime: '2025-01-01T03:00:00.000Z' } });
    expect(d.create).toBeUndefined();
    expect(d.prune).toEqual([]);
    expect(d.requeueAfterMs).toBeUndefined();
    expect(d.invalid?.map((e) => e.path)).toEqual(expect.arrayContaining(['spec.schedule', 'spec.successfulRunsHistoryLimit']));
    expect(d.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'SpecInvalid', message: expect.stringMatching(/spec\.schedule: .*minute/) });
    expect(d.status.nextScheduleTime).toBeUndefined();
    expect(d.events[0]).toMatchObject({ type: 'Warning', reason: 'SpecInvalid' });
  });

  it('a status that does not parse is ignored, not trusted', () => {
    const d = plan('2025-01-01T02:00:00Z', { status: { lastScheduleTime: 'yesterday' } });
    expect(d.create).toBeUndefined();
    expect(d.status.nextScheduleTime).toBe('2025-01-01T03:00:00.000Z');
  });
});

describe('statusPatch', () => {
  it('changed fields, and null for dropped ones', () => {
    expect(statusPatch({ a: 1, lastRun: 'x', missed: [] }, { lastRun: 'y', activeCount: 0 })).toEqual({ a: null, missed: null, lastRun: 'y', activeCount: 0 });
    expect(statusPatch(undefined, { lastRun: 'y' })).toEqual({ lastRun: 'y' });
    expect(statusPatch({ lastRun: 'y' }, { lastRun: 'y' })).toEqual({});
  });
});
