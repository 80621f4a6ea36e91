/**
 * The history of figures a BenchmarkSchedule keeps (docs/schedules.md "The history of figures"):
 * one compact point per finished run and test (api/history.ts: the statistic, p50 and p95, the
 * samples behind them, the outcome, the fingerprint id, the time, a few of the samples), in one
 * ConfigMap the schedule controls, `<schedule>-history` (key `history.json`), and in the
 * schedule's status the tests whose figures moved to a lasting new level (report/trend.ts).
 *
 * - What goes in: each run of the schedule that finished with a result (phase Succeeded or Failed
 *   and `status.export` set), read from its export ConfigMap (`results.json`, finish.ts), only
 *   when the run controls that export. At most HISTORY_MAX_NEW_PER_PASS runs per reconcile; the
 *   rest come in the next ones. A run whose export is gone or unreadable is passed over (said in
 *   an event), never retried in a loop.
 * - Once: a run is keyed by its name and attempt (`addRun` also skips a point of the same run,
 *   attempt and start time), read from the ConfigMap itself, so an operator restart adds nothing
 *   twice. The reconciler remembers which runs it already looked at (`HistoryMemory`: the runs of
 *   each schedule that still exist, nothing more), so the ConfigMap is read only when a finished
 *   run is new to it.
 * - Bounded: each test keeps its SCHEDULE_HISTORY_POINTS (60) most recent points of at most
 *   SCHEDULE_HISTORY_SAMPLES (16) samples, and the JSON is at most HISTORY_MAX_BYTES (512 KiB;
 *   a ConfigMap may hold 1 MiB): when it is over, the oldest runs are dropped, from every test at
 *   once, until it fits (`fitHistory`). 60 runs of the 27 tests of the quick suite are about
 *   400 kB (test/unit/operator-schedule.test.ts measures it: 401 664 bytes).
 * - Written before the history limits delete a run (operator/schedule.ts), so a run pruned in the
 *   pass it finished in is in the history first.
 *
 * Pure apart from `recordHistory`, which reads and writes through the reconcile's cluster.
 */
import type { V1ConfigMap } from '@kubernetes/client-node';
import { History, HISTORY_DEFAULT_POINTS } from '../api/history.ts';
import { BENCHMARKSCHEDULE_KIND, HISTORY_STATUS_MAX_SHIFTS, SCHEDULE_LABEL, ScheduleHistoryStatus, type ScheduleShift } from '../api/schedule.ts';
import type { ResultDocument } from '../api/schema.ts';
import { errorMessage } from '../errors.ts';
import { API_VERSION_FULL, belongsTo, COMPONENT_LABEL, dnsName, labelValue, MANAGED_BY, MANAGED_BY_LABEL } from '../kube/names.ts';
import { parseResultDocument } from '../report/document.ts';
import { fingerprintFor } from '../report/fingerprint.ts';
import { addRun, emptyHistory, examinedTests, trendOf, type Trend } from '../report/trend.ts';
import type { RunLike, ScheduleEvent } from './schedule-plan.ts';

/** The key of the history ConfigMap that holds the history (compact JSON of api/history.ts's `History`). */
export const HISTORY_KEY = 'history.json';
/** The `swarmbench.io/component` of the history ConfigMap. */
export const HISTORY_COMPONENT = 'schedule-history';
/** Points each test keeps: the most recent 60 runs. */
export const SCHEDULE_HISTORY_POINTS = HISTORY_DEFAULT_POINTS;
/** Samples each point keeps (evenly spaced order statistics; api/history.ts allows 64). */
export const SCHEDULE_HISTORY_SAMPLES = 16;
/** The most bytes of `history.json`: half of what a ConfigMap may hold in all. */
export const HISTORY_MAX_BYTES = 512 * 1024;
/** Finished runs read into the history per reconcile (each an export of up to 1 MiB). */
export const HISTORY_MAX_NEW_PER_PASS = 10;

/** `<schedule>-history`, a DNS subdomain (kube/names.ts `dnsName`). */
export const historyConfigMapName = (schedule: string): string => dnsName(`${schedule}-history`, 253);

export interface ScheduleRef {
  name: string;
  namespace: string;
  uid: string;
}

/** The history ConfigMap: controlled by the schedule (deleted with it), labelled managed-by and with the schedule. */
export function historyConfigMap(schedule: ScheduleRef, history: History, resourceVersion?: string): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: historyConfigMapName(schedule.name),
      namespace: schedule.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [SCHEDULE_LABEL]: labelValue(schedule.name), [COMPONENT_LABEL]: HISTORY_COMPONENT },
      ownerReferences: [{ apiVersion: API_VERSION_FULL, kind: BENCHMARKSCHEDULE_KIND, name: schedule.name, uid: schedule.uid, controller: true, blockOwnerDeletion: true }],
      ...(resourceVersion ? { resourceVersion } : {}),
    },
    data: { [HISTORY_KEY]: JSON.stringify(history) },
  };
}

/** The history a ConfigMap holds: empty when it has none; `problem` when what it holds is not a valid history. */
export function historyOf(cm: V1ConfigMap | undefined): { history: History; problem?: string } {
  const text = cm?.data?.[HISTORY_KEY];
  if (text === undefined) return { history: emptyHistory() };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { history: emptyHistory(), problem: `${HISTORY_KEY} is not JSON: ${errorMessage(e).slice(0, 200)}` };
  }
  const r = History.safeParse(json);
  if (r.success) return { history: r.data };
  const i = r.error.issues[0]!;
  return { history: emptyHistory(), problem: `${HISTORY_KEY} is not a history: ${i.path.join('.') || '(top)'}: ${i.message}` };
}

/** `name/attempt` of a run in the history. */
export const runKey = (name: string, attempt: number): string => `${name}/${attempt}`;

/** The runs (`name/attempt`) that have a point in the history, with the time of each. */
export function runsIn(history: History): Map<string, string> {
  const out = new Map<string, string>();
  for (const t of history.tests) for (const p of t.points) out.set(runKey(p.run, p.attempt), p.time);
  return out;
}

const bytes = (h: History): number => Buffer.byteLength(JSON.stringify(h));

/**
 * The history with its oldest runs dropped (every point of each, across the tests; a test left
 * without points goes) until its JSON is at most `maxBytes`. Returns how many runs went.
 */
export function fitHistory(history: History, maxBytes = HISTORY_MAX_BYTES): { history: History; dropped: number } {
  let h = history;
  let dropped = 0;
  for (let size = bytes(h); size > maxBytes; size = bytes(h)) {
    // Each point's share of the JSON (with its comma); drop the oldest runs until that covers the excess.
    const runs = new Map<string, { time: number; size: number }>();
    for (const t of h.tests) {
      for (const p of t.points) {
        const k = runKey(p.run, p.attempt);
        const r = runs.get(k) ?? { time: Date.parse(p.time), size: 0 };
        r.size += Buffer.byteLength(JSON.stringify(p)) + 1;
        runs.set(k, r);
      }
    }
    if (runs.size === 0) break;
    const oldest = [...runs].sort((a, b) => a[1].time - b[1].time || a[0].localeCompare(b[0]));
    const gone = new Set<string>();
    let freed = 0;
    for (const [k, r] of oldest) {
      if (freed >= size - maxBytes) break;
      gone.add(k);
      freed += r.size;
    }
    dropped += gone.size;
    h = { ...h, tests: h.tests.map((t) => ({ ...t, points: t.points.filter((p) => !gone.has(runKey(p.run, p.attempt))) })).filter((t) => t.points.length > 0) };
  }
  return { history: h, dropped };
}

/** The tests of the trends with a lasting shift, worse first then by test id; at most HISTORY_STATUS_MAX_SHIFTS named. */
export function shiftsOf(trends: readonly Trend[]): { shifts: ScheduleShift[]; more: number } {
  const shifted = trends
    .filter((t) => t.shift !== null)
    .sort((a, b) => (a.shift!.direction === b.shift!.direction ? a.id.localeCompare(b.id, 'en', { numeric: true }) : a.shift!.direction === 'worse' ? -1 : 1));
  const shifts = shifted.slice(0, HISTORY_STATUS_MAX_SHIFTS).map((t) => ({
    test: t.id,
    direction: t.shift!.direction,
    ...(t.shift!.changePct !== null && Number.isFinite(t.shift!.changePct) ? { changePct: Math.round(t.shift!.changePct * 10) / 10 } : {}),
    since: t.shift!.run.slice(0, 253),
  }));
  return { shifts, more: shifted.length - shifts.length };
}

/**
 * The trend of each test, one test at a time with the event loop let go in between: a test whose
 * runs shifted costs the change-point search most (report/trend.ts, "Cost": a fraction of a
 * second for the first of 60 runs, where one without a shift takes well under a millisecond),
 * and the operator's other work (the Lease renewal, the informers, /healthz) must not wait for
 * all 27 at once.
 */
export async function trendsYielding(history: History): Promise<Trend[]> {
  const out: Trend[] = [];
  // Each test corrected for all those examined, as trendsOf does.
  const tests = examinedTests(history);
  for (const t of history.tests) {
    if (t.points.length === 0) continue;
    out.push(trendOf(t, { tests }));
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return out;
}

/** What the schedule's status says of its history (valid for the status schema by construction). */
export async function historyStatus(schedule: string, history: History): Promise<ScheduleHistoryStatus> {
  const runs = runsIn(history);
  const newest = [...runs].sort((a, b) => Date.parse(b[1]) - Date.parse(a[1]))[0]?.[0];
  const { shifts, more } = shiftsOf(await trendsYielding(history));
  return ScheduleHistoryStatus.parse({
    configMapName: historyConfigMapName(schedule),
    runs: runs.size,
    ...(newest ? { lastRun: newest.slice(0, newest.lastIndexOf('/')) } : {}),
    shifts,
    ...(more > 0 ? { moreShifts: more } : {}),
  });
}

// ---------------------------------------------------------------------------------------------
// Which runs, and the step of the reconcile

/** A finished run of the schedule that has a result to add. */
export interface HistoryCandidate {
  name: string;
  uid: string;
  attempt: number;
  exportName: string;
  /** When it started (orders the reads: oldest first). */
  startedAt?: string;
}

type SlimRun = RunLike & { status?: RunLike['status'] & { attempt?: number; startedAt?: string; export?: { configMapName?: string } } };

/** The runs that finished with a result (Succeeded or Failed, an export named), not being deleted. */
export function historyCandidates(runs: readonly SlimRun[]): HistoryCandidate[] {
  const out: HistoryCandidate[] = [];
  for (const r of runs) {
    const st = r.status;
    const m = r.metadata ?? {};
    if (m.deletionTimestamp || !m.name || !m.uid) continue;
    if (st?.phase !== 'Succeeded' && st?.phase !== 'Failed') continue;
    if (typeof st.attempt !== 'number' || st.attempt < 1 || !st.export?.configMapName) continue;
    out.push({ name: m.name, uid: m.uid, attempt: st.attempt, exportName: st.export.configMapName, ...(st.startedAt ? { startedAt: st.startedAt } : {}) });
  }
  return out.sort((a, b) => (a.startedAt ?? '').localeCompare(b.startedAt ?? '') || a.name.localeCompare(b.name));
}

/**
 * The runs of each schedule (by uid) the reconciler has looked at: in the history, or passed
 * over. Holds only runs that still exist (`keepOnly`), so it stays as small as the schedules' run
 * lists; a new leadership term starts empty and reads the ConfigMap once.
 */
export class HistoryMemory {
  private readonly seen = new Map<string, Set<string>>();

  has(scheduleUid: string, key: string): boolean {
    return this.seen.get(scheduleUid)?.has(key) ?? false;
  }
  add(scheduleUid: string, keys: Iterable<string>): void {
    const s = this.seen.get(scheduleUid) ?? new Set<string>();
    for (const k of keys) s.add(k);
    this.seen.set(scheduleUid, s);
  }
  /** Forgets the runs of the schedule that are not in `keys` (deleted runs). */
  keepOnly(scheduleUid: string, keys: ReadonlySet<string>): void {
    const s = this.seen.get(scheduleUid);
    if (!s) return;
    for (const k of [...s]) if (!keys.has(k)) s.delete(k);
    if (s.size === 0) this.seen.delete(scheduleUid);
  }
  forget(scheduleUid: string): void {
    this.seen.delete(scheduleUid);
  }
  /** Runs remembered in all (for tests and bounds). */
  size(): number {
    let n = 0;
    for (const s of this.seen.values()) n += s.size;
    return n;
  }
}

/** What `recordHistory` needs of the cluster (a part of operator/schedule-cluster.ts `ScheduleCluster`). */
export interface HistoryCluster {
  /** A ConfigMap, live; undefined when absent. */
  readConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
  createConfigMap(body: V1ConfigMap): Promise<V1ConfigMap>;
  /** Replace with `metadata.resourceVersion` (a 409 when it changed since it was read). */
  replaceConfigMap(body: V1ConfigMap): Promise<V1ConfigMap>;
}

export interface HistoryOutcome {
  /** The status's `history` now (undefined: the pass did not look, keep what the status has). */
  status?: ScheduleHistoryStatus;
  events: ScheduleEvent[];
  /** Runs added in this pass. */
  added: string[];
  /**
   * The runs (`name/attempt`) this pass looked at: the caller tells `memory` after the whole
   * reconcile succeeded (a status write that failed leaves them to be looked at again).
   */
  looked: string[];
  /** Finished runs left for the next pass (over HISTORY_MAX_NEW_PER_PASS): the caller comes back soon. */
  pending: number;
}

/** The result document in a run's export, or why there is none to add. */
function exportedDocument(cm: V1ConfigMap | undefined, c: HistoryCandidate): ResultDocument | string {
  if (!cm) return `its export ${c.exportName} is gone`;
  if (!belongsTo(cm, c.uid)) return `its export ${c.exportName} is not controlled by it`;
  const text = cm.data?.['results.json'];
  if (!text) return `its export ${c.exportName} has no results.json`;
  try {
    const doc = parseResultDocument(text, `ConfigMap ${c.exportName}/results.json`);
    if (doc.run.name !== c.name || doc.run.attempt !== c.attempt) return `its export holds run ${doc.run.name} attempt ${doc.run.attempt}, not attempt ${c.attempt}`;
    return doc;
  } catch (e) {
    return errorMessage(e).slice(0, 300);
  }
}

/**
 * Adds the schedule's finished runs that are new to it to the history ConfigMap (see the file's
 * comment) and says what the status holds of it. Reads only when a finished run is new to
 * `memory` (which it does not change: see `looked`). A read or write the API server fails throws
 * (the reconcile writes no status and is retried).
 */
export async function recordHistory(
  cluster: HistoryCluster,
  memory: HistoryMemory,
  schedule: ScheduleRef,
  runs: readonly SlimRun[],
  opts: { maxBytes?: number; maxPoints?: number; samples?: number } = {},
): Promise<HistoryOutcome> {
  const candidates = historyCandidates(runs);
  memory.keepOnly(schedule.uid, new Set(candidates.map((c) => runKey(c.name, c.attempt))));
  const fresh = candidates.filter((c) => !memory.has(schedule.uid, runKey(c.name, c.attempt)));
  if (fresh.length === 0) return { events: [], added: [], looked: [], pending: 0 };
  const name = historyConfigMapName(schedule.name);
  const cm = await cluster.readConfigMap(schedule.namespace, name);
  const events: ScheduleEvent[] = [];
  if (cm && !belongsTo(cm, schedule.uid)) {
    // Someone else's ConfigMap of that name: never written. Told once per run set, not retried in a loop.
    events.push({ type: 'Warning', reason: 'HistoryConflict', message: `ConfigMap ${name} exists and is not controlled by this schedule: the history of figures is not kept (remove or rename it)` });
    return { events, added: [], looked: fresh.map((c) => runKey(c.name, c.attempt)), pending: 0 };
  }
  const read = historyOf(cm);
  if (read.problem) events.push({ type: 'Warning', reason: 'HistoryUnreadable', message: `ConfigMap ${name}: ${read.problem}; the history starts again` });
  let history = read.history;
  const inHistory = runsIn(history);
  const looked: string[] = [];
  const added: string[] = [];
  const skipped: string[] = [];
  for (const c of fresh) {
    const key = runKey(c.name, c.attempt);
    if (inHistory.has(key)) {
      looked.push(key);
      continue;
    }
    if (added.length + skipped.length >= HISTORY_MAX_NEW_PER_PASS) break;
    const doc = exportedDocument(await cluster.readConfigMap(schedule.namespace, c.exportName), c);
    looked.push(key);
    if (typeof doc === 'string') {
      skipped.push(`${c.name}: ${doc}`);
      continue;
    }
    try {
      history = addRun(history, doc, { maxPoints: opts.maxPoints ?? SCHEDULE_HISTORY_POINTS, samples: opts.samples ?? SCHEDULE_HISTORY_SAMPLES, fingerprint: fingerprintFor(doc).id });
      added.push(c.name);
    } catch (e) {
      skipped.push(`${c.name}: ${errorMessage(e).slice(0, 300)}`);
    }
  }
  const fitted = fitHistory(history, opts.maxBytes ?? HISTORY_MAX_BYTES);
  history = fitted.history;
  const write = added.length > 0 || !!read.problem || fitted.dropped > 0;
  if (write) {
    const body = historyConfigMap(schedule, history, cm?.metadata?.resourceVersion);
    if (cm) await cluster.replaceConfigMap(body);
    else await cluster.createConfigMap(body);
  }
  if (added.length) events.push({ type: 'Normal', reason: 'HistoryRecorded', message: `added run ${added.join(', ')} to the history of figures (ConfigMap ${name}, ${runsIn(history).size} runs)`.slice(0, 1024) });
  if (skipped.length) events.push({ type: 'Warning', reason: 'HistorySkipped', message: `not added to the history of figures: ${skipped.join('; ')}`.slice(0, 1024) });
  // No ConfigMap (none yet, and nothing to add): the status names none.
  return { ...(cm || write ? { status: await historyStatus(schedule.name, history) } : {}), events, added, looked, pending: fresh.length - looked.length };
}

/** Events for the shifts in `next` that `prev` did not name (a new shift is told once). */
export function shiftEvents(prev: ScheduleHistoryStatus | undefined, next: ScheduleHistoryStatus): ScheduleEvent[] {
  const old = new Set((prev?.shifts ?? []).map((s) => `${s.test}/${s.direction}/${s.since}`));
  return next.shifts
    .filter((s) => !old.has(`${s.test}/${s.direction}/${s.since}`))
    .map((s) => ({
      type: s.direction === 'worse' ? ('Warning' as const) : ('Normal' as const),
      reason: s.direction === 'worse' ? 'ShiftWorse' : 'ShiftBetter',
      message: `test ${s.test}: a lasting shift ${s.direction} from run ${s.since}${s.changePct !== undefined ? ` (${s.changePct > 0 ? '+' : ''}${s.changePct} %)` : ''} (docs/trends.md)`,
    }));
}
