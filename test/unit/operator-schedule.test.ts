/**
 * The BenchmarkSchedule reconcile's logic (src/operator/schedule.ts, schedule-history.ts) over an
 * in-memory stand-in of its API surface (test/support/fake-schedule-cluster.ts) and a fake clock:
 * the order of the operations, a 409 on create (the schedule's own run, or someone else's), a
 * failed create or delete writes no status, runs the cache has not seen yet, an invalid spec,
 * the history ConfigMap (each finished run once, across restarts; bounded in points and bytes;
 * written before the history limits delete a run), the trend summary in the status, and what the
 * run informer keeps of a run. The real API server: test/cluster/schedule.itest.ts.
 */
import { describe, expect, it } from 'vitest';
import { History } from '../../src/api/history.ts';
import type { ResultDocument } from '../../src/api/schema.ts';
import { BenchmarkScheduleStatus } from '../../src/api/schedule.ts';
import { runMetadata } from '../../src/kube/informer.ts';
import { isControlledBy, ownerScheduleKey } from '../../src/kube/names.ts';
import { exportConfigMap } from '../../src/operator/desired.ts';
import {
  fitHistory, HISTORY_KEY, HISTORY_MAX_BYTES, HISTORY_MAX_NEW_PER_PASS, historyConfigMapName, historyOf, runsIn, SCHEDULE_HISTORY_POINTS, SCHEDULE_HISTORY_SAMPLES,
  trendsYielding,
} from '../../src/operator/schedule-history.ts';
import { manualRunName, scheduledRunName } from '../../src/operator/schedule-plan.ts';
import { ScheduleReconciler } from '../../src/operator/schedule.ts';
import { addRun, emptyHistory } from '../../src/report/trend.ts';
import { renderExports } from '../../src/report/exports.ts';
import { FakeScheduleCluster } from '../support/fake-schedule-cluster.ts';
import { nightly, noisySeries, QUICK } from '../support/history.ts';

const NS = 'bench';
const KEY = `${NS}/nightly`;
const quiet = { info() {}, warn() {}, debug() {} };

interface World {
  c: FakeScheduleCluster;
  r: ScheduleReconciler;
  clock: { t: number };
  uid: string;
}

function world(spec: Record<string, unknown> = {}, o: { annotations?: Record<string, string>; at?: string; history?: ConstructorParameters<typeof ScheduleReconciler>[0]['history'] } = {}): World {
  const c = new FakeScheduleCluster();
  const clock = { t: Date.parse(o.at ?? '2026-01-01T00:00:00Z') };
  c.now = () => new Date(clock.t);
  const s = c.putSchedule({
    apiVersion: 'swarmbench.io/v1alpha1',
    kind: 'BenchmarkSchedule',
    metadata: { name: 'nightly', namespace: NS, uid: 'sched-uid', generation: 1, creationTimestamp: '2025-12-01T00:00:00Z', ...(o.annotations ? { annotations: o.annotations } : {}) },
    spec: { schedule: '0 3 * * *', runTemplate: { spec: { mode: 'quick' } }, ...spec },
  });
  const r = new ScheduleReconciler({ cluster: c, log: quiet, now: () => new Date(clock.t), ...(o.history ? { history: o.history } : {}) });
  return { c, r, clock, uid: s.metadata.uid };
}

const statusOf = (w: World): BenchmarkScheduleStatus => BenchmarkScheduleStatus.parse(w.c.schedules.get(KEY)!.status ?? {});
const runName = (iso: string): string => scheduledRunName('nightly', new Date(iso));

/** The run finished: its status (as the run reconcile writes it) and its export ConfigMap with the document. */
function finish(w: World, name: string, doc: ResultDocument, phase: 'Succeeded' | 'Failed' = 'Succeeded'): void {
  const run = w.c.runs.get(`${NS}/${name}`)!;
  const d: ResultDocument = { ...doc, run: { ...doc.run, name, namespace: NS, attempt: 1 } };
  const cm = exportConfigMap({ name, namespace: NS, uid: run.metadata!.uid! }, `${name}-results`, 1, renderExports(d));
  w.c.putConfigMap(cm);
  w.c.setRunStatus(NS, name, { phase, attempt: 1, startedAt: d.run.startedAt, finishedAt: d.run.finishedAt, summary: { verdict: phase === 'Succeeded' ? 'Passed' : 'Failed' }, export: { configMapName: `${name}-results` } });
}

/** A run the schedule controls, created directly (as an earlier pass would have). */
function ownedRun(w: World, name: string, scheduledTime: string): void {
  w.c.putRun({
    apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun',
    metadata: {
      name, namespace: NS, labels: { 'swarmbench.io/schedule': 'nightly' },
      annotations: { 'swarmbench.io/scheduled-time': scheduledTime, 'swarmbench.io/trigger': 'scheduled' },
      ownerReferences: [{ apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkSchedule', name: 'nightly', uid: w.uid, controller: true, blockOwnerDeletion: true }],
    },
    spec: { mode: 'quick' },
  });
}

const historyIn = (w: World): History => historyOf(w.c.configMaps.get(`${NS}/${historyConfigMapName('nightly')}`)).history;

describe('the order of operations', () => {
  it('Replace: the active run is deleted, then the new one created, then the history, the prune, the status and the events', async () => {
    const w = world({ concurrencyPolicy: 'Replace', successfulRunsHistoryLimit: 1 }, { at: '2026-01-02T03:00:05Z' });
    // Two finished runs (one beyond the limit) and one still active from yesterday's time.
    ownedRun(w, 'old-1', '2025-12-30T03:00:00Z');
    ownedRun(w, 'old-2', '2025-12-31T03:00:00Z');
    ownedRun(w, runName('2026-01-01T03:00:00Z'), '2026-01-01T03:00:00Z');
    finish(w, 'old-1', nightly(0));
    finish(w, 'old-2', nightly(1));
    const r = await w.r.reconcile(KEY);
    const ops = w.c.ops();
    const i = (op: string, name?: string) => w.c.calls.findIndex((c) => c.op === op && (name === undefined || c.name === name));
    expect(i('deleteRun', runName('2026-01-01T03:00:00Z'))).toBeGreaterThan(-1);
    expect(i('deleteRun', runName('2026-01-01T03:00:00Z'))).toBeLessThan(i('createRun', runName('2026-01-02T03:00:00Z')));
    expect(i('createRun')).toBeLessThan(i('createConfigMap', historyConfigMapName('nightly')));
    // The history read old-1's export before the prune deleted old-1 (and, with it, its export).
    expect(i('readConfigMap', 'old-1-results')).toBeLessThan(i('deleteRun', 'old-1'));
    expect(i('deleteRun', 'old-1')).toBeLessThan(i('patchScheduleStatus'));
    expect(ops.lastIndexOf('patchScheduleStatus')).toBeLessThan(i('createEvent'));
    expect(ops.slice(i('createEvent')).every((op) => op === 'createEvent')).toBe(true);
    expect(w.c.runs.has(`${NS}/old-1`)).toBe(false);
    expect(w.c.configMaps.has(`${NS}/old-1-results`)).toBe(false);
    expect([...runsIn(historyIn(w)).keys()].sort()).toEqual(['old-1/1', 'old-2/1']);
    const st = statusOf(w);
    expect(st.active).toEqual([runName('2026-01-02T03:00:00Z')]);
    expect(st.lastScheduleTime).toBe('2026-01-02T03:00:00.000Z');
    expect(st.history).toMatchObject({ configMapName: 'nightly-history', runs: 2, lastRun: 'old-2', shifts: [] });
    expect(w.c.events.map((e) => e.reason)).toEqual(expect.arrayContaining(['SuccessfulCreate', 'Replaced', 'SuccessfulDelete', 'HistoryRecorded']));
    expect(w.c.events[0]!.involvedObject).toMatchObject({ kind: 'BenchmarkSchedule', name: 'nightly', uid: w.uid });
    expect(r).toEqual({ requeueAfterMs: Date.parse('2026-01-03T03:00:00Z') - w.clock.t });
    // The new run: the template, owned by the schedule.
    const created = w.c.runs.get(`${NS}/${runName('2026-01-02T03:00:00Z')}`)!;
    expect(isControlledBy(created, w.uid)).toBe(true);
    expect(ownerScheduleKey(created)).toBe(KEY);
  });

  it('a second pass changes nothing and writes nothing', async () => {
    const w = world({}, { at: '2026-01-01T03:00:01Z' });
    await w.r.reconcile(KEY);
    const n = w.c.writes().length;
    expect(n).toBeGreaterThan(0);
    await w.r.reconcile(KEY);
    expect(w.c.writes().length).toBe(n);
  });

  it('the status patch is guarded by the resourceVersion read: a schedule changed in between is a 409, nothing written after', async () => {
    const w = world({}, { at: '2026-01-01T03:00:01Z' });
    const get = w.c.getSchedule.bind(w.c);
    w.c.getSchedule = async (ns, name) => {
      const s = await get(ns, name);
      w.c.schedules.get(KEY)!.metadata.resourceVersion = '999999'; // someone wrote after our read
      return s;
    };
    await expect(w.r.reconcile(KEY)).rejects.toMatchObject({ code: 409 });
    expect(w.c.events).toEqual([]);
  });
});

describe('409 on create', () => {
  it("the schedule's own run of that name (an earlier pass whose status write was lost): fine", async () => {
    const w = world({}, { at: '2026-01-01T03:00:01Z' });
    const name = runName('2026-01-01T03:00:00Z');
    ownedRun(w, name, '2026-01-01T03:00:00Z');
    w.c.hidden.add(`${NS}/${name}`); // the cache has not seen it
    await w.r.reconcile(KEY);
    expect(w.c.calls.filter((c) => c.op === 'createRun')).toHaveLength(1);
    expect(statusOf(w)).toMatchObject({ lastScheduleTime: '2026-01-01T03:00:00.000Z', active: [name], activeCount: 1, lastRun: name });
    expect(w.c.events.map((e) => e.reason)).toContain('SuccessfulCreate');
  });

  it("a run of that name the schedule does not control: never touched; the time is missed (NameTaken) and not tried again", async () => {
    const w = world({}, { at: '2026-01-01T03:00:01Z' });
    const name = runName('2026-01-01T03:00:00Z');
    w.c.putRun({ apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name, namespace: NS }, spec: { mode: 'full' } });
    await w.r.reconcile(KEY);
    const st = statusOf(w);
    expect(st.active).toEqual([]);
    expect(st.activeCount).toBe(0);
    expect(st.lastRun).toBeUndefined();
    expect(st.lastScheduleTime).toBe('2026-01-01T03:00:00.000Z');
    expect(st.missed!.at(-1)).toEqual({ time: '2026-01-01T03:00:00.000Z', reason: 'NameTaken', message: expect.stringContaining(`run ${name} exists and is not controlled by this schedule`) });
    expect(w.c.events.map((e) => [e.type, e.reason])).toContainEqual(['Warning', 'RunNameTaken']);
    expect(w.c.events.map((e) => e.reason)).not.toContain('SuccessfulCreate');
    expect(w.c.runs.get(`${NS}/${name}`)!.spec).toEqual({ mode: 'full' });
    await w.r.reconcile(KEY);
    expect(w.c.calls.filter((c) => c.op === 'createRun')).toHaveLength(1);
  });
});

describe('a failure writes no status', () => {
  it('a create that fails (500): thrown, no status, no event; the next pass creates it', async () => {
    const w = world({}, { at: '2026-01-01T03:00:01Z' });
    w.c.failNext('createRun', 500);
    await expect(w.r.reconcile(KEY)).rejects.toMatchObject({ code: 500 });
    expect(w.c.ops()).not.toContain('patchScheduleStatus');
    expect(w.c.events).toEqual([]);
    expect(w.c.schedules.get(KEY)!.status).toBeUndefined();
    await w.r.reconcile(KEY);
    expect(w.c.runs.has(`${NS}/${runName('2026-01-01T03:00:00Z')}`)).toBe(true);
    expect(statusOf(w).lastScheduleTime).toBe('2026-01-01T03:00:00.000Z');
  });

  it('a Replace delete that fails: nothing created, no status', async () => {
    const w = world({ concurrencyPolicy: 'Replace' }, { at: '2026-01-02T03:00:01Z' });
    ownedRun(w, runName('2026-01-01T03:00:00Z'), '2026-01-01T03:00:00Z');
    w.c.failNext('deleteRun', 503);
    await expect(w.r.reconcile(KEY)).rejects.toMatchObject({ code: 503 });
    expect(w.c.ops()).not.toContain('createRun');
    expect(w.c.ops()).not.toContain('patchScheduleStatus');
  });

  it('a prune that fails: the run created and the history written stay, the status waits for the retry', async () => {
    const w = world({ successfulRunsHistoryLimit: 0 }, { at: '2026-01-02T03:00:01Z' });
    ownedRun(w, 'done', '2026-01-01T03:00:00Z');
    finish(w, 'done', nightly(0));
    w.c.failNext('deleteRun', 500);
    await expect(w.r.reconcile(KEY)).rejects.toMatchObject({ code: 500 });
    expect(w.c.ops()).not.toContain('patchScheduleStatus');
    expect([...runsIn(historyIn(w)).keys()]).toEqual(['done/1']);
    await w.r.reconcile(KEY);
    expect(w.c.runs.has(`${NS}/done`)).toBe(false);
    expect(statusOf(w)).toMatchObject({ lastScheduleTime: '2026-01-02T03:00:00.000Z', history: { runs: 1, lastRun: 'done' } });
    // Created once: the retry found its run (by the scheduled-time annotation), not a second one.
    expect(w.c.calls.filter((c) => c.op === 'createRun')).toHaveLength(1);
  });
});

describe('runs the cache has not seen yet', () => {
  it('Forbid: a run-now right after a scheduled create waits for the run the cache does not show yet', async () => {
    const w = world({}, { at: '2026-01-01T03:00:01Z' });
    await w.r.reconcile(KEY);
    const name = runName('2026-01-01T03:00:00Z');
    w.c.hidden.add(`${NS}/${name}`);
    w.c.schedules.get(KEY)!.metadata.annotations = { 'swarmbench.io/run-now': 'now-1' };
    w.clock.t += 1000;
    await w.r.reconcile(KEY);
    expect(w.c.runs.has(`${NS}/${manualRunName('nightly', 'now-1')}`)).toBe(false);
    expect(statusOf(w).active).toEqual([name]);
    expect(statusOf(w).conditions!.find((c) => c.type === 'Ready')!.message).toMatch(/run-now now-1 waits: run .* still active/);
    // Once the cache has it and it finished, the run-now starts.
    w.c.hidden.clear();
    w.c.setRunStatus(NS, name, { phase: 'Failed', attempt: 1 });
    w.clock.t += 1000;
    await w.r.reconcile(KEY);
    expect(w.c.runs.has(`${NS}/${manualRunName('nightly', 'now-1')}`)).toBe(true);
    expect(w.r.held().expectations).toBeLessThanOrEqual(1);
  });

  it('expectations expire: a run that never shows is forgotten after a minute', async () => {
    const w = world({}, { at: '2026-01-01T03:00:01Z' });
    await w.r.reconcile(KEY);
    w.c.hidden.add(`${NS}/${runName('2026-01-01T03:00:00Z')}`);
    w.clock.t += 61_000;
    await w.r.reconcile(KEY);
    expect(w.r.held().expectations).toBe(0);
    expect(statusOf(w).activeCount).toBe(0);
  });
});

describe('an invalid spec', () => {
  it('the SpecInvalid condition and nothing created or deleted', async () => {
    const w = world({ schedule: '0 25 * * *' }, { at: '2026-01-01T03:00:01Z' });
    await w.r.reconcile(KEY);
    expect(w.c.ops()).not.toContain('createRun');
    expect(w.c.ops()).not.toContain('deleteRun');
    const ready = statusOf(w).conditions!.find((c) => c.type === 'Ready')!;
    expect(ready).toMatchObject({ status: 'False', reason: 'SpecInvalid' });
    expect(ready.message).toMatch(/spec\.schedule/);
    expect(w.c.events.map((e) => e.reason)).toEqual(['SpecInvalid']);
  });
});

describe('the history of figures', () => {
  it('each finished run once: the ConfigMap is read only for a run new to the reconciler, and after a restart nothing is added twice', async () => {
    const w = world({}, { at: '2026-01-05T00:00:00Z' });
    for (let i = 0; i < 3; i++) {
      ownedRun(w, `r${i}`, `2026-01-0${i + 1}T03:00:00Z`);
      finish(w, `r${i}`, nightly(i));
    }
    await w.r.reconcile(KEY);
    const cm = w.c.configMaps.get(`${NS}/nightly-history`)!;
    expect(cm.metadata!.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'swarmbench', 'swarmbench.io/schedule': 'nightly' });
    expect(isControlledBy(cm, w.uid)).toBe(true);
    expect(cm.metadata!.ownerReferences![0]).toMatchObject({ kind: 'BenchmarkSchedule', name: 'nightly', controller: true });
    const h = History.parse(JSON.parse(cm.data![HISTORY_KEY]!));
    expect(h.tests).toHaveLength(QUICK.tests.length);
    for (const t of h.tests) expect(t.points.map((p) => p.run)).toEqual(['r0', 'r1', 'r2']);
    const p = h.tests[0]!.points[0]!;
    expect(p.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(p.samples.length).toBeLessThanOrEqual(SCHEDULE_HISTORY_SAMPLES);
    expect(Object.keys(p).sort()).toEqual(['attempt', 'fingerprint', 'id', 'mode', 'n', 'p50', 'p95', 'result', 'run', 'samples', 'time', 'unit', 'value'].sort());

    // The same reconciler: no read of the history at all.
    w.c.calls.length = 0;
    await w.r.reconcile(KEY);
    expect(w.c.calls.filter((c) => c.op === 'readConfigMap')).toEqual([]);

    // A new reconciler (an operator restart): reads the history once, adds nothing, writes nothing.
    const again = new ScheduleReconciler({ cluster: w.c, log: quiet, now: () => new Date(w.clock.t) });
    w.c.calls.length = 0;
    await again.reconcile(KEY);
    expect(w.c.calls.filter((c) => c.op === 'readConfigMap').map((c) => c.name)).toEqual(['nightly-history']);
    expect(w.c.ops()).not.toContain('replaceConfigMap');
    expect(w.c.ops()).not.toContain('createConfigMap');
    expect(w.c.ops()).not.toContain('patchScheduleStatus');
    expect(historyIn(w).tests[0]!.points).toHaveLength(3);

    // A fourth run: added once, by either.
    ownedRun(w, 'r3', '2026-01-04T03:00:00Z');
    finish(w, 'r3', nightly(3));
    await again.reconcile(KEY);
    await w.r.reconcile(KEY);
    expect(historyIn(w).tests[0]!.points.map((x) => x.run)).toEqual(['r0', 'r1', 'r2', 'r3']);
    expect(statusOf(w).history).toMatchObject({ runs: 4, lastRun: 'r3' });

    // r0 went by the history limit (3): its figures stay in the history, and the reconciler
    // remembers only the runs that exist. The schedule deleted: what it remembered of it goes.
    expect(w.c.runs.has(`${NS}/r0`)).toBe(false);
    expect(w.r.held()).toMatchObject({ history: 3, schedules: 1 });
    w.c.schedules.delete(KEY);
    await w.r.reconcile(KEY);
    expect(w.r.held()).toEqual({ expectations: 0, history: 0, schedules: 0 });
  });

  it('a run whose export it does not control, or whose export is gone, is passed over once with a warning', async () => {
    const w = world({}, { at: '2026-01-05T00:00:00Z' });
    ownedRun(w, 'a', '2026-01-01T03:00:00Z');
    finish(w, 'a', nightly(0));
    const cm = w.c.configMaps.get(`${NS}/a-results`)!;
    cm.metadata!.ownerReferences = [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'someone', controller: true }];
    ownedRun(w, 'b', '2026-01-02T03:00:00Z');
    finish(w, 'b', nightly(1));
    w.c.configMaps.delete(`${NS}/b-results`);
    await w.r.reconcile(KEY);
    expect(w.c.configMaps.has(`${NS}/nightly-history`)).toBe(false);
    const skipped = w.c.events.find((e) => e.reason === 'HistorySkipped')!;
    expect(skipped.type).toBe('Warning');
    expect(skipped.message).toMatch(/a: its export a-results is not controlled by it; b: its export b-results is gone/);
    w.c.calls.length = 0;
    await w.r.reconcile(KEY);
    expect(w.c.ops()).not.toContain('readConfigMap');
  });

  it("someone else's ConfigMap of the history's name is never written", async () => {
    const w = world({}, { at: '2026-01-05T00:00:00Z' });
    w.c.putConfigMap({ metadata: { name: 'nightly-history', namespace: NS }, data: { mine: 'yes' } });
    ownedRun(w, 'a', '2026-01-01T03:00:00Z');
    finish(w, 'a', nightly(0));
    await w.r.reconcile(KEY);
    expect(w.c.configMaps.get(`${NS}/nightly-history`)!.data).toEqual({ mine: 'yes' });
    expect(w.c.events.find((e) => e.reason === 'HistoryConflict')!.type).toBe('Warning');
  });

  it(`at most ${HISTORY_MAX_NEW_PER_PASS} runs per pass; the rest in the next pass, which comes back within a second`, async () => {
    const w = world({ successfulRunsHistoryLimit: 100 }, { at: '2026-02-01T00:00:00Z' });
    for (let i = 0; i < 13; i++) {
      ownedRun(w, `r${i}`, new Date(Date.parse('2026-01-01T03:00:00Z') + i * 86_400_000).toISOString());
      finish(w, `r${i}`, nightly(i));
    }
    const r1 = await w.r.reconcile(KEY);
    expect(runsIn(historyIn(w)).size).toBe(HISTORY_MAX_NEW_PER_PASS);
    expect(r1).toEqual({ requeueAfterMs: 1000 });
    await w.r.reconcile(KEY);
    expect(runsIn(historyIn(w)).size).toBe(13);
  });

  it('a lasting shift in the history is named in the status, with one Warning event', async () => {
    const w = world({ successfulRunsHistoryLimit: 100 }, { at: '2026-02-01T00:00:00Z' });
    // Test 5.2's value (lower is better) jumps by half from run 12 on and stays there: 8 runs
    // since, enough among the fixture's 25 tests with a value (docs/trends.md "How long a shift must last").
    const t = QUICK.tests.find((x) => x.id === '5.2')!;
    const series = noisySeries(7, 20, t.value!, 0.03, { from: 12, factor: 1.5 });
    for (let i = 0; i < 20; i++) {
      ownedRun(w, `r${String(i).padStart(2, '0')}`, new Date(Date.parse('2026-01-01T03:00:00Z') + i * 86_400_000).toISOString());
      finish(w, `r${String(i).padStart(2, '0')}`, nightly(i, { '5.2': series[i]! }));
    }
    await w.r.reconcile(KEY);
    await w.r.reconcile(KEY);
    const h = statusOf(w).history!;
    expect(h.runs).toBe(20);
    expect(h.shifts).toContainEqual(expect.objectContaining({ test: '5.2', direction: 'worse', since: 'r12' }));
    expect(h.shifts.length).toBeLessThanOrEqual(8);
    const told = w.c.events.filter((e) => e.reason === 'ShiftWorse' && e.message!.startsWith('test 5.2'));
    expect(told).toHaveLength(1);
    await w.r.reconcile(KEY);
    expect(w.c.events.filter((e) => e.reason === 'ShiftWorse' && e.message!.startsWith('test 5.2'))).toHaveLength(1);
  });

  it(`bounded: ${SCHEDULE_HISTORY_POINTS} points per test, and at most ${HISTORY_MAX_BYTES} bytes of JSON (the oldest runs go first)`, () => {
    let h = emptyHistory();
    for (let i = 0; i < 70; i++) h = addRun(h, nightly(i), { maxPoints: SCHEDULE_HISTORY_POINTS, samples: SCHEDULE_HISTORY_SAMPLES });
    for (const t of h.tests) expect(t.points).toHaveLength(SCHEDULE_HISTORY_POINTS);
    const bytes = Buffer.byteLength(JSON.stringify(h));
    // What docs/schedules.md and schedule-history.ts say: 60 runs of the quick suite's 27 tests.
    console.log(`history of ${SCHEDULE_HISTORY_POINTS} runs x ${h.tests.length} tests, ${SCHEDULE_HISTORY_SAMPLES} samples per point: ${bytes} bytes`);
    expect(bytes).toBeLessThan(HISTORY_MAX_BYTES);
    expect(fitHistory(h).dropped).toBe(0);
    // With a tighter budget the oldest runs go, from every test at once, and it fits.
    const f = fitHistory(h, 100_000);
    expect(Buffer.byteLength(JSON.stringify(f.history))).toBeLessThanOrEqual(100_000);
    expect(f.dropped).toBeGreaterThan(0);
    const firsts = new Set(f.history.tests.map((t) => t.points[0]!.run));
    expect(firsts.size).toBe(1);
    expect([...firsts][0]).toBe(`nightly-${String(10 + f.dropped).padStart(2, '0')}`);
    expect(f.history.tests.every((t) => t.points.length === SCHEDULE_HISTORY_POINTS - f.dropped)).toBe(true);
  });

  it('the trends let the event loop go between tests (a shifted test costs the change-point search most)', async () => {
    let h = emptyHistory();
    for (let i = 0; i < 6; i++) h = addRun(h, nightly(i), { samples: 0 });
    let ticks = 0;
    let on = true;
    const tick = (): void => {
      ticks++;
      if (on) setImmediate(tick);
    };
    setImmediate(tick);
    const trends = await trendsYielding(h);
    on = false;
    expect(trends).toHaveLength(h.tests.length);
    expect(ticks).toBeGreaterThanOrEqual(h.tests.length - 1);
  });

  it('the reconcile keeps the ConfigMap within its byte budget', async () => {
    const w = world({ successfulRunsHistoryLimit: 100 }, { at: '2026-02-01T00:00:00Z', history: { maxBytes: 40_000 } });
    for (let i = 0; i < 8; i++) {
      ownedRun(w, `r${i}`, new Date(Date.parse('2026-01-01T03:00:00Z') + i * 86_400_000).toISOString());
      finish(w, `r${i}`, nightly(i));
    }
    await w.r.reconcile(KEY);
    const text = w.c.configMaps.get(`${NS}/nightly-history`)!.data![HISTORY_KEY]!;
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(40_000);
    const kept = [...runsIn(History.parse(JSON.parse(text))).keys()];
    expect(kept.length).toBeLessThan(8);
    expect(kept).toContain('r7/1');
    expect(statusOf(w).history!.runs).toBe(kept.length);
  });
});

describe('what the run informer keeps of a run, and the export', () => {
  it('runMetadata: the status fields the schedule and the UI read, bounded; nothing else', () => {
    const slim = runMetadata({
      metadata: { name: 'r', namespace: NS, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"big":1}', keep: 'x' }, managedFields: [{ manager: 'm' }] },
      spec: { mode: 'quick' },
      status: {
        phase: 'Succeeded', attempt: 2, startedAt: '2026-01-01T03:00:00Z', finishedAt: '2026-01-01T03:03:00Z', summary: { verdict: 'Passed', total: 27, passed: 26, failed: 1, skipped: 0, successRate: 96.3, passedOfTotal: '26/27' },
        progress: { completedSteps: 5, totalSteps: 5, currentStep: 'x'.repeat(1000) }, conditions: [{ type: 'Ready', message: 'm'.repeat(1000) }],
        comparison: { regressed: Array.from({ length: 100 }, (_, i) => `1.${i}-a-very-long-test-name`), improved: ['1.1'] }, export: { configMapName: 'r-results' },
        tests: Array.from({ length: 27 }, (_, i) => ({ id: String(i) })),
      },
    });
    expect(slim.spec).toBeUndefined();
    expect(slim.metadata).toEqual({ name: 'r', namespace: NS, annotations: { keep: 'x' } });
    const st = slim.status as { comparison: { regressed: string[] } };
    expect(Object.keys(slim.status!).sort()).toEqual(['attempt', 'comparison', 'export', 'finishedAt', 'phase', 'progress', 'startedAt', 'summary']);
    // What the UI's runs table shows: the counts and the rate, the progress with its step name cut.
    expect(slim.status!.summary).toEqual({ verdict: 'Passed', passed: 26, total: 27, skipped: 0, successRate: 96.3 });
    expect(slim.status!.progress).toEqual({ completedSteps: 5, totalSteps: 5, currentStep: 'x'.repeat(253) });
    expect(st.comparison.regressed).toHaveLength(64);
    expect(st.comparison.regressed.every((t) => t.length <= 16)).toBe(true);
  });

  it("a run's export is controlled by its run: deleting the run deletes it (garbage collection, no explicit delete)", () => {
    const cm = exportConfigMap({ name: 'r', namespace: NS, uid: 'run-uid' }, 'r-results', 1, { 'results.json': '{}' });
    expect(isControlledBy(cm, 'run-uid')).toBe(true);
    expect(cm.metadata!.ownerReferences).toEqual([expect.objectContaining({ kind: 'BenchmarkRun', name: 'r', uid: 'run-uid', controller: true, blockOwnerDeletion: true })]);
  });

  it('ownerScheduleKey: the controller BenchmarkSchedule of a run, nothing for other owners', () => {
    const ref = (kind: string, controller = true) => ({ apiVersion: 'swarmbench.io/v1alpha1', kind, name: 'n', uid: 'u', controller });
    expect(ownerScheduleKey({ metadata: { namespace: NS, ownerReferences: [ref('BenchmarkSchedule')] } })).toBe(`${NS}/n`);
    expect(ownerScheduleKey({ metadata: { namespace: NS, ownerReferences: [ref('BenchmarkSchedule', false)] } })).toBeUndefined();
    expect(ownerScheduleKey({ metadata: { namespace: NS, ownerReferences: [ref('BenchmarkRun')] } })).toBeUndefined();
    expect(ownerScheduleKey({ metadata: { ownerReferences: [ref('BenchmarkSchedule')] } })).toBeUndefined();
  });
});
