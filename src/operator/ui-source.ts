/**
 * The results UI's source in the operator (ui/source.ts `UiSource`; docs/ui.md "The operator's
 * host"): the same pages as `swarmbench ui`, over what the operator already holds and may read.
 *
 * - The runs table: one row per BenchmarkRun in the operator's run informers (held slim,
 *   kube/informer.ts `runMetadata`: phase, attempt, start and finish, progress, the summary's
 *   counts, the regressed tests, the export's name). Nothing is read for the table.
 * - A finished run's page, its exports, comparisons and trends: the run's export ConfigMap
 *   (`status.export.configMapName`, finish.ts), read on demand through the operator's client,
 *   only when the run controls it and it holds this attempt's document. The exports are not in the
 *   informer cache by design (cluster.ts `OPERATOR_CONFIGMAP_SELECTOR`), so what was read is kept
 *   in a small cache of its own, bounded in entries and bytes (`ExportCache`), keyed by the run's
 *   uid and attempt: a new attempt is a new key, a deleted run's entries go.
 * - A running run's page: its steps from the attempt's params (buildPlan, as the reconcile plans
 *   them) and the tests of each finished step judged as the result will judge them
 *   (report/verdict.ts), from the params and step-result ConfigMaps the operator's ConfigMap
 *   informer holds with their data (read live when the cache keeps one as metadata only).
 * - A schedule's page: each test's trend over the schedule's history ConfigMap
 *   (schedule-history.ts, `<schedule>-history`), with its lasting shifts, and its runs.
 * - Live: the informers' events become the UI's events (`row` on a run's update, `live` when a
 *   step of a running run wrote its result, `list` when runs or schedules come or go).
 *
 * What it reads is ConfigMaps, by name, through `UiReader`, which has no other method: the UI
 * never reads a Secret (the params ConfigMap names the agent-token Secret; that key is never
 * read here) and writes nothing.
 */
import { createHash } from 'node:crypto';
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { StepResult, type ResultDocument, type TestResult } from '../api/schema.ts';
import { errorMessage } from '../errors.ts';
import { makeApiClient, type ApiClientOptions } from '../kube/client.ts';
import { isSlimmed, type BenchmarkRunObject, type BenchmarkScheduleObject, type EventType } from '../kube/informer.ts';
import { ATTEMPT_LABEL, belongsTo, COMPONENT, COMPONENT_LABEL, isControlledBy, ownerRunKey, ownerScheduleKey, PARAMS_KEY, paramsName, stepResultName } from '../kube/names.ts';
import { RESULT_KEY } from '../platform/kubernetes/manifests.ts';
import { parseParams } from '../plan/params.ts';
import { buildPlan } from '../plan/plan.ts';
import { parseResultDocument } from '../report/document.ts';
import { EXPORT_FILES } from '../report/exports.ts';
import { judgeAll } from '../report/verdict.ts';
import type { DocumentOf, ExportName, LiveState, Phase, RunPage, RunRow, SchedulePage, ScheduleRow, UiEvent, UiSource } from '../ui/source.ts';
import { trendsOfHistory } from '../ui/views.ts';
import { orUndefined, type CacheView } from './cluster.ts';
import { historyConfigMapName, historyOf, runsIn } from './schedule-history.ts';

/** Export ConfigMaps kept after a read (each at most 1 MiB, a ConfigMap's limit). */
export const EXPORT_CACHE_ENTRIES = 32;
/** And their bytes in all (the files' text). */
export const EXPORT_CACHE_BYTES = 32 * 1024 * 1024;
/** `list` events (runs or schedules came or went) go out at most this often: a relist of many runs is one. */
export const LIST_EVERY_MS = 250;
/** Finished runs the trends page reads at most (each an export read): a schedule's history keeps 60. */
export const OPERATOR_TREND_RUNS = 60;

/** All the UI reads beyond the informer caches: a ConfigMap by name (undefined when absent). */
export interface UiReader {
  readConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
}

/** The operator's client as a `UiReader`: time-limited requests (kube/client.ts `makeApiClient`). */
export class KubeUiReader implements UiReader {
  private readonly core: CoreV1Api;
  constructor(kc: KubeConfig, opts: ApiClientOptions = {}) {
    this.core = makeApiClient(kc, CoreV1Api, opts);
  }
  readConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined> {
    return orUndefined(() => this.core.readNamespacedConfigMap({ namespace, name }));
  }
}

/** An informer as the UI uses it: its cache and its events (kube/informer.ts `Informer` is one). */
export interface WatchedCache<T> extends CacheView<T> {
  on(handler: (obj: T, type: EventType) => void): unknown;
  /** Starts listing and watching (idempotent); absent for a fake. */
  start?(): void;
}

/** The informers of one scope of the operator (a watched namespace, or all: `namespace` undefined). */
export interface UiScope {
  namespace?: string | undefined;
  runs: WatchedCache<BenchmarkRunObject>;
  schedules: WatchedCache<BenchmarkScheduleObject>;
  configMaps: WatchedCache<V1ConfigMap>;
}

interface Exported {
  doc: ResultDocument;
  files: Partial<Record<ExportName, string>>;
  bytes: number;
}

/** The export ConfigMaps read, least recently used first, within `maxEntries` and `maxBytes`. */
export class ExportCache {
  private readonly entries = new Map<string, Exported>();
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  constructor(maxEntries = EXPORT_CACHE_ENTRIES, maxBytes = EXPORT_CACHE_BYTES) {
    this.maxEntries = maxEntries;
    this.maxBytes = maxBytes;
  }

  get(key: string): Exported | undefined {
    const e = this.entries.get(key);
    if (e) {
      this.entries.delete(key);
      this.entries.set(key, e);
    }
    return e;
  }

  set(key: string, e: Exported): void {
    this.delete(key);
    if (e.bytes > this.maxBytes) return;
    this.entries.set(key, e);
    this.bytes += e.bytes;
    for (const [k, old] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= old.bytes;
    }
  }

  delete(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.bytes -= e.bytes;
  }

  /** Drops every entry whose key starts with `prefix` (a deleted run's). */
  dropPrefix(prefix: string): void {
    for (const k of [...this.entries.keys()]) if (k.startsWith(prefix)) this.delete(k);
  }

  size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }
}

type RunStatus = {
  phase?: string;
  attempt?: number;
  startedAt?: string;
  finishedAt?: string;
  progress?: { completedSteps?: number; totalSteps?: number; currentStep?: string };
  summary?: { verdict?: string; passed?: number; total?: number; skipped?: number; successRate?: number };
  comparison?: { regressed?: string[] };
  export?: { configMapName?: string };
};

const PHASES: readonly Phase[] = ['Pending', 'Running', 'Succeeded', 'Failed', 'Cancelled'];
const keyOfObj = (o: { metadata?: { namespace?: string; name?: string } }): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
const hashId = (prefix: string, text: string): string => `${prefix}${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
/**
 * Ids already computed, by the informer's object: a lookup by id (a run's page, a schedule's)
 * hashes each cached object once, not once per request. The informer replaces an object when it
 * changes, so a changed one is hashed again, and a dropped one is collected.
 */
const ids = new WeakMap<object, string>();
const memoId = (o: object, make: () => string): string => {
  let id = ids.get(o);
  if (id === undefined) ids.set(o, (id = make()));
  return id;
};
/** A run's id: opaque, and new for a new run of the same name (its uid). */
export const runIdOf = (r: BenchmarkRunObject): string => memoId(r, () => hashId('k', `run/${keyOfObj(r)}/${r.metadata?.uid ?? ''}`));
export const scheduleIdOf = (s: BenchmarkScheduleObject): string => memoId(s, () => hashId('s', `schedule/${keyOfObj(s)}/${s.metadata?.uid ?? ''}`));

/** The runs-table row of a run as the informer holds it (slim). */
export function operatorRow(r: BenchmarkRunObject, nowMs: number, scheduleId?: (key: string) => string | undefined): RunRow {
  const st = (r.status ?? {}) as RunStatus;
  const phase: Phase = PHASES.includes(st.phase as Phase) ? (st.phase as Phase) : 'Pending';
  const started = Date.parse(st.startedAt ?? '');
  const finished = Date.parse(st.finishedAt ?? '');
  const running = phase === 'Running' || phase === 'Pending';
  const p = st.progress;
  const s = st.summary;
  const verdict = s?.verdict === 'Passed' || s?.verdict === 'Failed' ? s.verdict : null;
  const skey = ownerScheduleKey(r);
  const sid = skey ? scheduleId?.(skey) : undefined;
  const exportName = st.export?.configMapName;
  return {
    id: runIdOf(r),
    namespace: r.metadata?.namespace ?? '',
    name: r.metadata?.name ?? '',
    attempt: typeof st.attempt === 'number' ? st.attempt : 1,
    phase,
    mode: null,
    progress: p && typeof p.totalSteps === 'number' ? { completed: p.completedSteps ?? 0, total: p.totalSteps, ...(p.currentStep ? { current: p.currentStep } : {}) } : null,
    verdict: running ? null : verdict,
    successRate: running || typeof s?.successRate !== 'number' ? null : s.successRate,
    passed: typeof s?.passed === 'number' ? s.passed : null,
    total: typeof s?.total === 'number' ? s.total : null,
    regressions: Array.isArray(st.comparison?.regressed) ? st.comparison.regressed.length : null,
    startedAt: Number.isFinite(started) ? new Date(started).toISOString() : null,
    durationMs: !Number.isFinite(started) ? null : running ? Math.max(0, nowMs - started) : Number.isFinite(finished) ? Math.max(0, finished - started) : null,
    source: `BenchmarkRun ${keyOfObj(r)}${exportName ? ` · ConfigMap ${exportName}` : ''}`,
    ...(skey && sid ? { schedule: { id: sid, name: skey.slice(skey.indexOf('/') + 1) } } : {}),
  };
}

/** The result document and files of a run's export ConfigMap, or why there is none. */
export function exportOf(cm: V1ConfigMap | undefined, run: { name: string; uid: string; attempt: number; cmName: string }): Exported | string {
  if (!cm) return `its export ConfigMap ${run.cmName} is gone`;
  if (!belongsTo(cm, run.uid)) return `its export ConfigMap ${run.cmName} is not controlled by it`;
  const text = cm.data?.['results.json'];
  if (!text) return `its export ConfigMap ${run.cmName} has no results.json`;
  let doc: ResultDocument;
  try {
    doc = parseResultDocument(text, `ConfigMap ${run.cmName}/results.json`);
  } catch (err) {
    return errorMessage(err);
  }
  if (doc.run.name !== run.name || doc.run.attempt !== run.attempt) return `its export ConfigMap ${run.cmName} holds run ${doc.run.name} attempt ${doc.run.attempt}, not attempt ${run.attempt}`;
  const files: Partial<Record<ExportName, string>> = {};
  let bytes = 0;
  for (const f of EXPORT_FILES) {
    const t = cm.data?.[f];
    if (typeof t !== 'string') continue;
    files[f] = t;
    bytes += t.length;
  }
  return { doc, files, bytes: bytes * 2 };
}

type Listener = (e: UiEvent) => void;

export interface OperatorUiOptions {
  scopes: readonly UiScope[];
  reader: UiReader;
  now?: () => number;
  exportCache?: ExportCache;
}

export class OperatorUiSource implements UiSource {
  readonly maxTrendRuns = OPERATOR_TREND_RUNS;
  private readonly scopes: readonly UiScope[];
  private readonly reader: UiReader;
  private readonly now: () => number;
  private readonly exports: ExportCache;
  private readonly listeners = new Set<Listener>();
  private closed = false;
  private listTimer: NodeJS.Timeout | undefined;

  constructor(o: OperatorUiOptions) {
    this.scopes = o.scopes;
    this.reader = o.reader;
    this.now = o.now ?? Date.now;
    this.exports = o.exportCache ?? new ExportCache();
    for (const scope of this.scopes) {
      scope.runs.on((r, type) => this.onRun(r, type));
      scope.schedules.on((_s, type) => {
        if ((type === 'add' || type === 'delete') && this.listeners.size) this.emitList();
      });
      scope.configMaps.on((cm, type) => this.onConfigMap(cm, type));
    }
  }

  private allRuns(): BenchmarkRunObject[] {
    return this.scopes.flatMap((s) => s.runs.list());
  }

  private allSchedules(): BenchmarkScheduleObject[] {
    return this.scopes.flatMap((s) => s.schedules.list());
  }

  private scopeOf(namespace: string): UiScope | undefined {
    return this.scopes.find((s) => s.namespace === undefined || s.namespace === namespace);
  }

  /** The id of the schedule with this `namespace/name` key, when the caches hold it. */
  private scheduleId = (key: string): string | undefined => {
    const ns = key.slice(0, key.indexOf('/'));
    const s = this.scopeOf(ns)?.schedules.get(key);
    return s ? scheduleIdOf(s) : undefined;
  };

  private row(r: BenchmarkRunObject): RunRow {
    return operatorRow(r, this.now(), this.scheduleId);
  }

  private runById(id: string): BenchmarkRunObject | undefined {
    return this.allRuns().find((r) => runIdOf(r) === id);
  }

  async list(): Promise<{ runs: RunRow[]; problems: string[] }> {
    const rows = this.allRuns().map((r) => this.row(r));
    rows.sort((a, b) => Number(b.phase === 'Running') - Number(a.phase === 'Running') || (b.startedAt ?? '9').localeCompare(a.startedAt ?? '9') || a.name.localeCompare(b.name));
    const problems = this.scopes.filter((s) => !s.runs.hasSynced()).map((s) => `the runs of ${s.namespace ?? 'all namespaces'} are still being listed`);
    return { runs: rows, problems };
  }

  /** The run's export, read (or from the cache), or why it cannot be had. */
  private async exported(r: BenchmarkRunObject): Promise<Exported | string> {
    const st = (r.status ?? {}) as RunStatus;
    const cmName = st.export?.configMapName;
    const uid = r.metadata?.uid ?? '';
    const attempt = st.attempt ?? 1;
    if (!cmName) return `${r.metadata?.name} has no export yet`;
    const key = `${uid}/${attempt}/${cmName}`;
    const hit = this.exports.get(key);
    if (hit) return hit;
    const got = exportOf(await this.reader.readConfigMap(r.metadata?.namespace ?? '', cmName), { name: r.metadata?.name ?? '', uid, attempt, cmName });
    if (typeof got !== 'string') this.exports.set(key, got);
    return got;
  }

  async page(id: string): Promise<RunPage | undefined> {
    const r = this.runById(id);
    if (!r) return undefined;
    const row = this.row(r);
    if (row.phase === 'Running' || row.phase === 'Pending') {
      const live = await this.liveOf(r);
      return { row, ...(live ? { live } : {}), exports: [] };
    }
    if (!(r.status as RunStatus | undefined)?.export?.configMapName) return { row, exports: [] };
    const e = await this.exported(r);
    if (typeof e === 'string') return { row: { ...row, phase: 'Unreadable', error: e }, exports: [] };
    return { row: { ...row, mode: e.doc.run.mode }, doc: e.doc, exports: EXPORT_FILES.filter((f) => e.files[f] !== undefined) };
  }

  async document(id: string): Promise<DocumentOf | undefined> {
    const r = this.runById(id);
    if (!r) return undefined;
    const row = this.row(r);
    if (row.phase === 'Running' || row.phase === 'Pending') return { ok: false, error: `${row.name} is still running: it has no result yet`, row };
    const e = await this.exported(r);
    return typeof e === 'string' ? { ok: false, error: `${row.namespace}/${row.name}: ${e}`, row } : { ok: true, doc: e.doc, row };
  }

  async exportFile(id: string, name: ExportName): Promise<string | undefined> {
    const r = this.runById(id);
    if (!r || !EXPORT_FILES.includes(name)) return undefined;
    const e = await this.exported(r);
    return typeof e === 'string' ? undefined : e.files[name];
  }

  /** A ConfigMap of the run's attempt from the cache, or read when the cache holds it without data. */
  private async attemptConfigMap(r: BenchmarkRunObject, name: string): Promise<V1ConfigMap | undefined> {
    const ns = r.metadata?.namespace ?? '';
    let cm = this.scopeOf(ns)?.configMaps.get(`${ns}/${name}`);
    if (cm && isSlimmed(cm)) cm = await this.reader.readConfigMap(ns, name);
    return cm && belongsTo(cm, r.metadata?.uid ?? '') ? cm : undefined;
  }

  /** A running run's steps and the tests of its finished steps (undefined before its params exist). */
  async liveOf(r: BenchmarkRunObject): Promise<LiveState | undefined> {
    const st = (r.status ?? {}) as RunStatus;
    const name = r.metadata?.name ?? '';
    const attempt = st.attempt ?? 1;
    const paramsCm = await this.attemptConfigMap(r, paramsName(name, attempt));
    const text = paramsCm?.data?.[PARAMS_KEY];
    if (!text || paramsCm?.metadata?.labels?.[ATTEMPT_LABEL] !== String(attempt)) return undefined;
    let params;
    try {
      params = parseParams(text, `ConfigMap ${paramsCm.metadata?.name}`);
    } catch {
      return undefined;
    }
    const plan = buildPlan(params);
    const completed = st.progress?.completedSteps ?? 0;
    const measured: StepResult['measurements'] = [];
    const steps: LiveState['steps'] = [];
    for (const [i, step] of plan.entries()) {
      const cm = await this.attemptConfigMap(r, stepResultName(name, attempt, step.name));
      const parsed = cm?.data?.[RESULT_KEY] ? StepResult.safeParse(safeJson(cm.data[RESULT_KEY])) : undefined;
      const result = parsed?.success && parsed.data.attempt === attempt ? parsed.data : undefined;
      const base = { name: step.name, category: step.category, tests: [...step.tests] };
      if (result) {
        measured.push(...result.measurements);
        steps.push({ ...base, state: result.error ? 'failed' : 'done', ...(result.error ? { error: result.error.slice(0, 500) } : {}) });
      } else if (i === completed && st.phase === 'Running') steps.push({ ...base, state: 'running' });
      // Counted done by the reconcile, but no result of this attempt is to be read here.
      else if (i < completed) steps.push({ ...base, state: 'failed', error: 'ended without a result of this attempt' });
      else steps.push({ ...base, state: 'pending' });
    }
    const ids = new Set(measured.map((m) => m.id));
    let tests: TestResult[] = [];
    try {
      tests = judgeAll(measured, params).filter((t) => ids.has(t.id));
    } catch {
      // A test measured twice: the result document will say so; the live page shows none.
    }
    return { steps, tests };
  }

  async schedules(): Promise<ScheduleRow[]> {
    return this.allSchedules()
      .map((s) => this.scheduleRow(s))
      .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  }

  private scheduleRow(s: BenchmarkScheduleObject): ScheduleRow {
    const ns = s.metadata?.namespace ?? '';
    const name = s.metadata?.name ?? '';
    return { id: scheduleIdOf(s), namespace: ns, name, source: `ConfigMap ${ns}/${historyConfigMapName(name)}` };
  }

  async schedule(id: string): Promise<SchedulePage | undefined> {
    const s = this.allSchedules().find((x) => scheduleIdOf(x) === id);
    if (!s) return undefined;
    const row = this.scheduleRow(s);
    const key = keyOfObj(s);
    const runRows = this.allRuns()
      .filter((r) => ownerScheduleKey(r) === key && isControlledBy(r, s.metadata?.uid ?? ''))
      .map((r) => this.row(r))
      .sort((a, b) => (b.startedAt ?? '9').localeCompare(a.startedAt ?? '9') || a.name.localeCompare(b.name));
    const cmName = historyConfigMapName(row.name);
    const cm = await this.reader.readConfigMap(row.namespace, cmName);
    const problems: string[] = [];
    let history = historyOf(undefined).history;
    if (!cm) problems.push(`no history yet: ConfigMap ${cmName} is written when a run of the schedule finishes with a result`);
    else if (!isControlledBy(cm, s.metadata?.uid ?? '')) problems.push(`ConfigMap ${cmName} is not controlled by the schedule: not read`);
    else {
      const h = historyOf(cm);
      history = h.history;
      if (h.problem) problems.push(`ConfigMap ${cmName}: ${h.problem}`);
    }
    return { row, runs: runsIn(history).size, trends: trendsOfHistory(history), runRows, problems };
  }

  private onRun(r: BenchmarkRunObject, type: EventType): void {
    if (type === 'delete') this.exports.dropPrefix(`${r.metadata?.uid ?? ''}/`);
    if (type === 'resync' || !this.listeners.size) return;
    if (type === 'update') this.emit({ type: 'row', row: this.row(r) });
    else this.emitList();
  }

  /** One `list` event within LIST_EVERY_MS, however many runs came or went in it. */
  private emitList(): void {
    if (this.listTimer) return;
    this.listTimer = setTimeout(() => {
      this.listTimer = undefined;
      if (!this.closed) this.emit({ type: 'list' });
    }, LIST_EVERY_MS);
    this.listTimer.unref();
  }

  private onConfigMap(cm: V1ConfigMap, type: EventType): void {
    if (type === 'resync' || type === 'delete' || !this.listeners.size) return;
    if (cm.metadata?.labels?.[COMPONENT_LABEL] !== COMPONENT.stepResult) return;
    const key = ownerRunKey(cm);
    const r = key ? this.scopeOf(key.slice(0, key.indexOf('/')))?.runs.get(key) : undefined;
    if (!r || !belongsTo(cm, r.metadata?.uid ?? '')) return;
    const phase = (r.status as RunStatus | undefined)?.phase;
    if (phase !== 'Running' && phase !== 'Pending') return;
    const id = runIdOf(r);
    this.liveOf(r).then(
      (live) => {
        if (live && !this.closed) this.emit({ type: 'live', id, live });
      },
      () => undefined,
    );
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: UiEvent): void {
    for (const fn of this.listeners) fn(e);
  }

  close(): void {
    this.closed = true;
    this.listeners.clear();
    if (this.listTimer) clearTimeout(this.listTimer);
    this.listTimer = undefined;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
