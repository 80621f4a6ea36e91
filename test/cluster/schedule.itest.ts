/**
 * BenchmarkSchedules on the real control plane (`npm run cluster:up`, then `npm run test:cluster`):
 * `swarmbench operator` as a process against the API server, its schedule reconcile
 * (src/operator/schedule.ts) making, replacing and deleting real BenchmarkRuns that its run
 * reconcile then runs.
 *
 * The runs are kept cheap and honest with a ResourceQuota of zero pods in each namespace: the run
 * reconcile starts each attempt and its step Job for real, and the Job controller is refused the
 * runner pod (FailedCreate). In the first namespace the operator waits an hour before it calls that
 * stuck (`--stuck-after-seconds 3600`), so its runs stay Running: active runs for the concurrency
 * policies. In the second a second operator calls it after a second, so its runs fail within
 * seconds with a result document (every test Failed with the quota's reason) in their export:
 * finished runs for the history limits and the history ConfigMap.
 *
 * Six schedules start together, so their minute waits overlap (about two and a half minutes in
 * all): a run created on time (named by its minute, owned by the schedule, annotated with the
 * scheduled time); Forbid postponing while it is active; Replace deleting the active run and
 * creating the next; suspend stopping it, then a missed time past startingDeadlineSeconds recorded
 * in the status and the next time starting on resume; run-now starting a run at once (while
 * suspended); the history limits deleting the oldest finished runs (their exports go with them)
 * after each went into the history ConfigMap; a real run (integration only, in a third namespace
 * without a quota) whose measured figures go into the history. Then deleting schedules deletes
 * their runs and the history (garbage collection).
 *
 * Skipped (reason in the suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import type { ChildProcess } from 'node:child_process';
import { PatchStrategy, setHeaderOptions, type CoreV1Api, type CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it, type ExpectStatic } from 'vitest';
import { History } from '../../src/api/history.ts';
import { exportName } from '../../src/kube/names.ts';
import { manualRunName, scheduledRunName } from '../../src/operator/schedule-plan.ts';
import { PROMETHEUS_URL } from './lib/config.ts';
import { adminClients, clusterGate, kubectl, prepareNamespace, sleep, startOperator, until } from './lib/itest.ts';

const gate = await clusterGate('BenchmarkSchedule on the test cluster');

const stamp = Date.now().toString(36);
/** Runs stay Running (no pod, an hour before "stuck"). */
const nsA = `sched-a-${stamp}`;
/** Runs fail within seconds, with an export. */
const nsB = `sched-b-${stamp}`;
/** No quota: a real run (integration only, about 20 s), for a history with measured figures. */
const nsC = `sched-c-${stamp}`;
const GROUP = 'swarmbench.io';
const VERSION = 'v1alpha1';
const MINUTE = 60_000;
const iso = (ms: number): string => new Date(ms).toISOString();
const TEMPLATE = { spec: { mode: 'quick', categories: ['integration'], trials: 3, agents: { poolSize: 2 }, cleanup: { policy: 'Never' } } };

interface Obj {
  metadata: {
    name: string; uid: string; creationTimestamp: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string>;
    ownerReferences?: { kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
  };
}
interface Schedule extends Obj {
  status?: {
    lastScheduleTime?: string; nextScheduleTime?: string; active?: string[]; activeCount?: number; lastRun?: string; lastRunNow?: string; lastVerdict?: string;
    missed?: { time: string; reason: string; message: string }[];
    history?: { configMapName: string; runs: number; lastRun?: string; shifts: unknown[] };
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
}
interface Run extends Obj {
  status?: { phase?: string; export?: { configMapName: string } };
}

describe.skipIf(!!gate.notUp)(gate.title, () => {
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  const ops: { proc: ChildProcess; log: string[] }[] = [];
  /** The first scheduled minute after the schedules were created. */
  let T1 = 0;
  const uids = new Map<string, string>();

  const schedule = async (ns: string, name: string): Promise<Schedule> =>
    (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'benchmarkschedules', name })) as Schedule;
  const runs = async (ns: string, name: string): Promise<Run[]> =>
    ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'benchmarkruns', labelSelector: `swarmbench.io/schedule=${name}` })) as { items: Run[] }).items;
  const run = async (ns: string, name: string): Promise<Run | undefined> =>
    (await runs(ns, name.replace(/-(\d+|manual-[0-9a-f]{8})$/, ''))).find((r) => r.metadata.name === name);
  const reasons = async (ns: string, name: string): Promise<{ reason?: string; message?: string }[]> =>
    (await core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.kind=BenchmarkSchedule,involvedObject.name=${name}` })).items;
  /** The schedule's event of this reason (events are recorded after the status write: waited for). */
  const eventOf = (ns: string, name: string, reason: string, timeoutMs = 15_000) =>
    wait(`a ${reason} event of ${name}`, async () => (await reasons(ns, name)).find((e) => e.reason === reason), timeoutMs);
  const patch = (ns: string, name: string, body: Record<string, unknown>) =>
    custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'benchmarkschedules', name, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  const opLog = (): string => ops.map((o, i) => `operator ${i}:\n${o.log.join('').slice(-3000)}`).join('\n');
  /** `until` whose failure carries the operators' log tails. */
  const wait = <T>(what: string, fn: () => Promise<T | undefined | false>, ms: number): Promise<T> =>
    until(what, fn, ms, 500).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${opLog()}`);
    });
  const waitUntil = async (ms: number): Promise<void> => {
    if (ms > Date.now()) await sleep(ms - Date.now());
  };
  /** The run owned (controller) by the schedule, named for its minute, annotated with the time. */
  const expectScheduledRun = (expect: ExpectStatic, r: Run, sched: string, time: number): void => {
    expect(r.metadata.name).toBe(scheduledRunName(sched, new Date(time)));
    expect(r.metadata.annotations?.['swarmbench.io/scheduled-time']).toBe(iso(time));
    expect(r.metadata.annotations?.['swarmbench.io/trigger']).toBe('scheduled');
    expect(r.metadata.labels).toMatchObject({ 'swarmbench.io/schedule': sched, 'app.kubernetes.io/managed-by': 'swarmbench' });
    expect(r.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'BenchmarkSchedule', name: sched, uid: uids.get(sched), controller: true, blockOwnerDeletion: true })]);
    // Created within a few seconds of the minute (creationTimestamp has whole seconds).
    const late = Date.parse(r.metadata.creationTimestamp) - time;
    expect(late, `${r.metadata.name} created ${late} ms after ${iso(time)}`).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThanOrEqual(5000);
  };

  beforeAll(async () => {
    ({ core, custom } = adminClients());
    prepareNamespace(nsC);
    for (const ns of [nsA, nsB]) {
      prepareNamespace(ns);
      const quota = `apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: no-pods, namespace: ${ns}}\nspec: {hard: {pods: "0"}}\n`;
      const q = kubectl(['apply', '-f', '-'], quota);
      if (q.code !== 0) throw new Error(`quota: ${q.stderr}`);
    }
    const w = kubectl(['wait', '--for=condition=Established', 'crd/benchmarkschedules.swarmbench.io', '--timeout=30s']);
    if (w.code !== 0) throw new Error(`the schedule CRD is not established: ${w.stderr}`);
    // The quota controller has counted the namespaces: pods are refused from here on.
    for (const ns of [nsA, nsB]) await until(`quota of ${ns} counted`, async () => (await core.readNamespacedResourceQuota({ namespace: ns, name: 'no-pods' })).status?.hard?.pods === '0', 30_000);
    ops.push(startOperator(`${nsA},${nsC}`, ['--leader-elect', 'false', '--stuck-after-seconds', '3600'], 'op-a'));
    ops.push(startOperator(nsB, ['--leader-elect', 'false', '--stuck-after-seconds', '1'], 'op-b'));

    // Not in the last 12 s of a minute: the first scheduled minute is then at least 12 s after the schedules exist.
    if (new Date().getUTCSeconds() >= 48) await sleep((61 - new Date().getUTCSeconds()) * 1000);
    const create = async (ns: string, name: string, spec: Record<string, unknown>, annotations?: Record<string, string>) => {
      const s = (await custom.createNamespacedCustomObject({
        group: GROUP, version: VERSION, namespace: ns, plural: 'benchmarkschedules',
        body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'BenchmarkSchedule', metadata: { name, ...(annotations ? { annotations } : {}) }, spec: { runTemplate: TEMPLATE, ...spec } },
      })) as Schedule;
      uids.set(name, s.metadata.uid);
      return s;
    };
    const first = await create(nsA, 'ontime', { schedule: '* * * * *' });
    await create(nsA, 'replace', { schedule: '* * * * *', concurrencyPolicy: 'Replace' });
    await create(nsA, 'late', { schedule: '* * * * *', suspend: true, startingDeadlineSeconds: 10 });
    await create(nsA, 'runnow', { schedule: '0 0 1 1 *', suspend: true }, { 'swarmbench.io/run-now': 'tok-1' });
    await create(nsB, 'keep1', { schedule: '0 0 1 1 *', concurrencyPolicy: 'Allow', failedRunsHistoryLimit: 1 });
    await create(nsC, 'real', { schedule: '0 0 1 1 *', runTemplate: { spec: { ...TEMPLATE.spec, prometheus: { url: PROMETHEUS_URL } } } }, { 'swarmbench.io/run-now': 'measure' });
    T1 = Math.floor(Date.parse(first.metadata.creationTimestamp) / MINUTE) * MINUTE + MINUTE;
    if (Date.now() > T1 - 5000) throw new Error(`the schedules were created too late in the minute (${iso(Date.now())}, first scheduled time ${iso(T1)})`);
  }, 120_000);

  afterAll(async () => {
    for (const o of ops) o.proc.kill('SIGTERM');
    for (const ns of [nsA, nsB, nsC]) await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it.concurrent('a run on time, named and owned; Forbid postpones the next time while it is active', async ({ expect }) => {
    const name = scheduledRunName('ontime', new Date(T1));
    const r1 = await wait(`run ${name}`, () => run(nsA, name), T1 - Date.now() + 20_000);
    expectScheduledRun(expect, r1, 'ontime', T1);
    const st = await wait('the status of ontime after its first run', async () => {
      const s = await schedule(nsA, 'ontime');
      return s.status?.lastScheduleTime === iso(T1) && s.status.activeCount === 1 ? s.status : undefined;
    }, 20_000);
    expect(st).toMatchObject({ active: [name], lastRun: name, nextScheduleTime: iso(T1 + MINUTE) });
    expect(st.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Scheduled' });
    // Its run is really running (its attempt started; the quota keeps its pod from existing).
    await wait(`${name} Running`, async () => (await run(nsA, name))?.status?.phase === 'Running', 30_000);

    // The next minute: Forbid, so no second run; the Ready condition and an event say it waits.
    await waitUntil(T1 + MINUTE + 8000);
    expect((await runs(nsA, 'ontime')).map((r) => r.metadata.name)).toEqual([name]);
    const s2 = await wait('the postponed time in the Ready message', async () => {
      const s = await schedule(nsA, 'ontime');
      const ready = s.status?.conditions?.find((c) => c.type === 'Ready');
      return ready?.message.includes(`scheduled time ${iso(T1 + MINUTE)} waits: run ${name} still active (concurrencyPolicy Forbid)`) ? s : undefined;
    }, 15_000);
    expect(s2.status!.lastScheduleTime).toBe(iso(T1));
    expect((await eventOf(nsA, 'ontime', 'SuccessfulCreate')).message).toBe(`created run ${name} for ${iso(T1)}`);
    expect((await eventOf(nsA, 'ontime', 'RunPostponed')).message).toContain(`scheduled time ${iso(T1 + MINUTE)} waits`);
    const table = kubectl(['get', 'bs', 'ontime', '-n', nsA]);
    expect(table.stdout).toMatch(/NAME\s+SCHEDULE\s+SUSPEND\s+ACTIVE\s+LAST SCHEDULE\s+NEXT\s+LAST VERDICT\s+AGE/);
    expect(table.stdout).toMatch(/ontime\s+\* \* \* \* \*\s+(\S+\s+)?1\s+\S+/);
  }, 240_000);

  it.concurrent('Replace: the next time deletes the active run and creates its own', async ({ expect }) => {
    const first = scheduledRunName('replace', new Date(T1));
    const second = scheduledRunName('replace', new Date(T1 + MINUTE));
    const r1 = await wait(`run ${first}`, () => run(nsA, first), T1 - Date.now() + 20_000);
    expectScheduledRun(expect, r1, 'replace', T1);
    await wait(`${first} Running`, async () => (await run(nsA, first))?.status?.phase === 'Running', 30_000);
    const r2 = await wait(`run ${second}`, () => run(nsA, second), T1 + MINUTE - Date.now() + 20_000);
    expectScheduledRun(expect, r2, 'replace', T1 + MINUTE);
    await wait(`${first} deleted`, async () => (await run(nsA, first)) === undefined, 30_000);
    const st = await wait('replace status', async () => {
      const s = await schedule(nsA, 'replace');
      return s.status?.lastScheduleTime === iso(T1 + MINUTE) ? s.status : undefined;
    }, 15_000);
    expect(st.active).toEqual([second]);
    expect((await eventOf(nsA, 'replace', 'Replaced')).message).toContain(`deleted active run ${first} (concurrencyPolicy Replace)`);
  }, 240_000);

  it.concurrent('suspend stops it; a time missed past startingDeadlineSeconds is recorded, not run; the next time runs on resume', async ({ expect }) => {
    const st = await wait('late suspended', async () => {
      const s = await schedule(nsA, 'late');
      return s.status?.conditions?.find((c) => c.type === 'Ready')?.reason === 'Suspended' ? s.status : undefined;
    }, 20_000);
    expect(st.nextScheduleTime).toBeUndefined();
    // The first minute passes while it is suspended: no run.
    await waitUntil(T1 + 15_000);
    expect(await runs(nsA, 'late')).toEqual([]);
    // Resumed 15 s after it, past the deadline of 10 s: recorded as missed, no run for it.
    await patch(nsA, 'late', { spec: { suspend: false } });
    const s = await wait('the missed time in the status', async () => {
      const x = await schedule(nsA, 'late');
      return x.status?.missed?.some((m) => m.time === iso(T1)) ? x : undefined;
    }, 20_000);
    const missed = s.status!.missed!.find((m) => m.time === iso(T1))!;
    expect(missed.reason).toBe('StartingDeadlineExceeded');
    expect(missed.message).toMatch(new RegExp(`scheduled time ${iso(T1).replace(/\./g, '\\.')} started no run: \\d+s late, past startingDeadlineSeconds 10`));
    expect(s.status!.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Scheduled' });
    expect(await runs(nsA, 'late')).toEqual([]);
    expect((await eventOf(nsA, 'late', 'MissSchedule')).message).toBe(missed.message);
    // The next minute is on time again.
    const next = scheduledRunName('late', new Date(T1 + MINUTE));
    const r = await wait(`run ${next}`, () => run(nsA, next), T1 + MINUTE - Date.now() + 20_000);
    expectScheduledRun(expect, r, 'late', T1 + MINUTE);
  }, 240_000);

  it.concurrent('run now: the annotation starts a run at once, also while suspended, once per value', async ({ expect }) => {
    const name = manualRunName('runnow', 'tok-1');
    const r = await wait(`run ${name}`, () => run(nsA, name), 30_000);
    expect(r.metadata.annotations?.['swarmbench.io/trigger']).toBe('manual');
    const at = Date.parse(r.metadata.annotations!['swarmbench.io/scheduled-time']!);
    expect(Math.abs(Date.parse(r.metadata.creationTimestamp) - at)).toBeLessThanOrEqual(2000);
    expect(r.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'BenchmarkSchedule', name: 'runnow', uid: uids.get('runnow'), controller: true })]);
    const st = await wait('lastRunNow', async () => {
      const s = await schedule(nsA, 'runnow');
      return s.status?.lastRunNow === 'tok-1' ? s.status : undefined;
    }, 15_000);
    expect(st).toMatchObject({ active: [name], activeCount: 1 });
    expect(st.conditions!.find((c) => c.type === 'Ready')?.reason).toBe('Suspended');
    expect((await runs(nsA, 'runnow')).map((x) => x.metadata.name)).toEqual([name]);
    // Settled: the passes that follow (the run's own events wake the schedule) change nothing.
    const rv = (await schedule(nsA, 'runnow')).metadata.resourceVersion;
    await sleep(6000);
    expect((await schedule(nsA, 'runnow')).metadata.resourceVersion).toBe(rv);
  }, 120_000);

  it.concurrent('history limits delete the oldest finished runs, each first read into the history ConfigMap', async ({ expect }) => {
    const tokens = ['a', 'b', 'c'];
    const names = tokens.map((t) => manualRunName('keep1', t));
    for (const t of tokens) {
      await patch(nsB, 'keep1', { metadata: { annotations: { 'swarmbench.io/run-now': t } } });
      await wait(`run-now ${t} handled`, async () => (await schedule(nsB, 'keep1')).status?.lastRunNow === t, 20_000);
    }
    // Each run fails within seconds (the quota refuses its runner pod); failedRunsHistoryLimit 1 keeps the newest.
    const left = await wait('only the newest failed run left', async () => {
      const rs = await runs(nsB, 'keep1');
      return rs.length === 1 && rs[0]!.metadata.name === names[2] && rs[0]!.status?.phase === 'Failed' ? rs : undefined;
    }, 120_000);
    const exports = names.map((n) => exportName(n));
    expect(left[0]!.status!.export!.configMapName).toBe(exports[2]);
    const st = await wait('the history in the status', async () => {
      const s = await schedule(nsB, 'keep1');
      return s.status?.history?.runs === 3 ? s.status : undefined;
    }, 30_000);
    expect(st.history).toMatchObject({ configMapName: 'keep1-history', lastRun: names[2], shifts: [] });
    expect(st.activeCount).toBe(0);
    const cm = await core.readNamespacedConfigMap({ namespace: nsB, name: 'keep1-history' });
    expect(cm.metadata!.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'swarmbench', 'swarmbench.io/schedule': 'keep1' });
    expect(cm.metadata!.ownerReferences).toEqual([expect.objectContaining({ kind: 'BenchmarkSchedule', name: 'keep1', uid: uids.get('keep1'), controller: true })]);
    const h = History.parse(JSON.parse(cm.data!['history.json']!));
    expect(h.tests.map((t) => t.id)).toEqual(['5.1', '5.2', '5.3']);
    for (const t of h.tests) {
      expect(t.points.map((p) => p.run).sort()).toEqual([...names].sort());
      for (const p of t.points) expect(p).toMatchObject({ result: 'Failed', attempt: 1, value: null, n: 0 });
    }
    expect(Buffer.byteLength(cm.data!['history.json']!)).toBeLessThan(512 * 1024);
    // The pruned runs' exports went with them (owned by their runs: garbage collection).
    await wait('the pruned runs\' exports gone', async () => {
      const cms = (await core.listNamespacedConfigMap({ namespace: nsB, labelSelector: 'swarmbench.io/component=export' })).items.map((c) => c.metadata!.name);
      return !cms.includes(exports[0]!) && !cms.includes(exports[1]!) && cms.includes(exports[2]!) ? true : undefined;
    }, 90_000);
    const deletes = await wait('SuccessfulDelete events naming both pruned runs', async () => {
      const text = (await reasons(nsB, 'keep1')).filter((e) => e.reason === 'SuccessfulDelete').map((e) => e.message).join('\n');
      return text.includes(names[0]!) && text.includes(names[1]!) ? text : undefined;
    }, 15_000);
    expect(deletes).toMatch(/\(history limits\)/);
    expect((await eventOf(nsB, 'keep1', 'HistoryRecorded')).message).toMatch(/to the history of figures \(ConfigMap keep1-history, \d runs\)/);
  }, 240_000);

  it.concurrent('a real run: its measured figures in the history, its verdict in the status', async ({ expect }) => {
    const name = manualRunName('real', 'measure');
    const done = await wait(`${name} finished`, async () => {
      const r = await run(nsC, name);
      return r?.status?.phase === 'Succeeded' || r?.status?.phase === 'Failed' ? r : undefined;
    }, 180_000);
    const st = await wait('the history of real in the status', async () => {
      const s = await schedule(nsC, 'real');
      return s.status?.history?.runs === 1 ? s.status : undefined;
    }, 30_000);
    expect(st.lastVerdict).toBe(done.status!.phase === 'Succeeded' ? 'Passed' : 'Failed');
    expect(st.history).toMatchObject({ configMapName: 'real-history', lastRun: name, shifts: [] });
    const h = History.parse(JSON.parse((await core.readNamespacedConfigMap({ namespace: nsC, name: 'real-history' })).data!['history.json']!));
    expect(h.tests.map((t) => t.id)).toEqual(['5.1', '5.2', '5.3']);
    for (const t of h.tests) {
      expect(t.points).toHaveLength(1);
      const p = t.points[0]!;
      expect(p).toMatchObject({ run: name, attempt: 1, mode: 'quick' });
      expect(p.value, `${t.id} measured`).not.toBeNull();
      expect(p.n).toBeGreaterThan(0);
      expect(p.fingerprint).toMatch(/^[0-9a-f]{16}$/);
      expect(p.samples.length).toBeLessThanOrEqual(16);
    }
    expect(h.tests.some((t) => t.points[0]!.p50 !== null && t.points[0]!.p95 !== null)).toBe(true);
  }, 240_000);

  it('deleting a schedule deletes its runs and its history ConfigMap (garbage collection)', async () => {
    expect((await runs(nsA, 'runnow')).length).toBe(1);
    expect((await runs(nsB, 'keep1')).length).toBe(1);
    for (const [ns, name] of [[nsA, 'runnow'], [nsB, 'keep1']] as const) {
      const d = kubectl(['delete', '-n', ns, 'bs', name, '--timeout=60s']);
      expect(d.code, d.stderr).toBe(0);
    }
    await wait('the runs and the history gone', async () => {
      const left = [...(await runs(nsA, 'runnow')), ...(await runs(nsB, 'keep1'))].length;
      const cms = (await core.listNamespacedConfigMap({ namespace: nsB, labelSelector: 'swarmbench.io/schedule=keep1' })).items.length;
      return left + cms === 0 ? true : undefined;
    }, 90_000);
    // The operators are alive after all of it.
    for (const o of ops) expect(o.proc.exitCode).toBeNull();
  }, 120_000);
});
