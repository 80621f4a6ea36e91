/**
 * The results UI's local source (source.ts `UiSource`): the result documents in folders
 * (`swarmbench ui DIR…`, found as `swarmbench history` finds them: report/files.ts) and, with
 * `swarmbench run --ui`, the run in this process, live (`LiveRun`).
 *
 * Bounded as `history` is: at most 1000 files, each read with the 64 MiB bound of `report FILE`
 * and validated (report/document.ts), 1 GiB in all. Only each run's row is kept in memory; its
 * document is read again when its page is asked for. The folders are scanned again every few
 * seconds while a page listens, and a file is read again only when its size or time changed.
 * A run's id is a hash of its file's path: a page never names a path, so no request can reach a
 * file that is not one of the runs' results or exports.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type ResultDocument, type StepResult, type TestResult } from '../api/schema.ts';
import { readBounded, RESULT_MAX_BYTES } from '../api/input.ts';
import { errorMessage } from '../errors.ts';
import type { Params } from '../plan/params.ts';
import type { Step } from '../plan/plan.ts';
import { readResultFile, ResultFileError } from '../report/document.ts';
import { EXPORT_FILES } from '../report/exports.ts';
import { collectFiles, MAX_TOTAL_BYTES } from '../report/files.ts';
import { judgeAll } from '../report/verdict.ts';
import type { DocumentOf, ExportName, LiveState, RunPage, RunRow, UiEvent, UiSource } from './source.ts';

/** How often the folders are scanned again while someone listens. */
export const RESCAN_MS = 3000;
/** Progress rows go out at most this often (a runner can print many lines a second). */
export const ROW_EVERY_MS = 250;

const idOf = (file: string): string => `r${createHash('sha256').update(resolve(file)).digest('hex').slice(0, 16)}`;

const isFile = (p: string): boolean => {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
};

/** The row of a finished run's document. */
export function rowOf(doc: ResultDocument, id: string, source: string): RunRow {
  const started = Date.parse(doc.run.startedAt);
  const finished = Date.parse(doc.run.finishedAt);
  return {
    id,
    namespace: doc.run.namespace ?? '',
    name: doc.run.name,
    attempt: doc.run.attempt,
    phase: doc.summary.verdict === 'Passed' ? 'Succeeded' : 'Failed',
    mode: doc.run.mode,
    progress: null,
    verdict: doc.summary.verdict,
    successRate: doc.summary.successRate,
    passed: doc.summary.passed,
    total: doc.summary.total,
    regressions: doc.comparison ? doc.comparison.regressed.length : null,
    startedAt: Number.isFinite(started) ? new Date(started).toISOString() : null,
    durationMs: Number.isFinite(started) && Number.isFinite(finished) ? Math.max(0, finished - started) : null,
    source,
  };
}

/** A row with no figures yet (a run not started, a file that cannot be read). */
function bareRow(id: string, namespace: string, name: string, phase: RunRow['phase'], source: string): RunRow {
  return { id, namespace, name, attempt: 1, phase, mode: null, progress: null, verdict: null, successRate: null, passed: null, total: null, regressions: null, startedAt: null, durationMs: null, source };
}

function unreadableRow(id: string, file: string, error: string): RunRow {
  return { ...bareRow(id, '', dirname(resolve(file)).split(/[\\/]/).pop() || file, 'Unreadable', file), error };
}

interface Entry {
  file: string;
  row: RunRow;
  size: number;
  mtimeMs: number;
}

type Listener = (e: UiEvent) => void;

/** The result documents in folders (and files), scanned again on demand. */
export class FolderRuns {
  private readonly paths: readonly string[];
  private entries = new Map<string, Entry>();
  private problems: string[] = [];

  constructor(paths: readonly string[]) {
    this.paths = paths;
  }

  /** Scans the folders; true when a run came, went or changed. */
  scan(): boolean {
    const found = collectFiles(this.paths);
    const problems: string[] = [];
    const next = new Map<string, Entry>();
    let changed = false;
    if (found instanceof Error) problems.push(found.message);
    let total = 0;
    for (const file of found instanceof Error ? [] : found) {
      const id = idOf(file);
      let st;
      try {
        st = statSync(file);
      } catch (err) {
        next.set(id, { file, size: -1, mtimeMs: -1, row: unreadableRow(id, file, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`) });
        continue;
      }
      const old = this.entries.get(id);
      if (old && old.size === st.size && old.mtimeMs === st.mtimeMs) {
        next.set(id, old);
        total += Math.max(0, st.size);
        continue;
      }
      changed = true;
      total += st.size;
      let row: RunRow;
      if (total > MAX_TOTAL_BYTES) {
        row = unreadableRow(id, file, `${file}: not read: the result documents before it hold more than ${MAX_TOTAL_BYTES} bytes (1 GiB), the most the UI reads; give fewer folders`);
      } else {
        try {
          row = rowOf(readResultFile(file), id, file);
        } catch (err) {
          row = unreadableRow(id, file, err instanceof ResultFileError ? err.message : `${file}: ${errorMessage(err)}`);
        }
      }
      next.set(id, { file, size: st.size, mtimeMs: st.mtimeMs, row });
    }
    if (next.size !== this.entries.size || [...next.keys()].some((k) => !this.entries.has(k))) changed = true;
    if (!(found instanceof Error) && !found.length) problems.push(`no results.json in ${this.paths.join(', ').slice(0, 300)} (nor in their subfolders)`);
    this.entries = next;
    this.problems = problems;
    return changed;
  }

  rows(): RunRow[] {
    return [...this.entries.values()].map((e) => e.row);
  }

  problemList(): string[] {
    return this.problems;
  }

  fileOf(id: string): string | undefined {
    return this.entries.get(id)?.file;
  }

  rowById(id: string): RunRow | undefined {
    return this.entries.get(id)?.row;
  }
}

/** The document of a results.json, read again, or why it cannot be read. */
function readDocument(file: string, row: RunRow): DocumentOf {
  try {
    return { ok: true, doc: readResultFile(file), row };
  } catch (err) {
    return { ok: false, error: err instanceof ResultFileError ? err.message : `${file}: ${errorMessage(err)}`, row };
  }
}

const exportsBeside = (file: string): ExportName[] => EXPORT_FILES.filter((f) => isFile(join(dirname(file), f)));

/**
 * The run in this process (`swarmbench run --ui`): its steps as the executor reports them, the
 * tests of each finished step judged as the run's result will judge them (report/verdict.ts), and
 * its result document once it is written.
 */
export class LiveRun {
  readonly id = 'live';
  private readonly listeners = new Set<Listener>();
  private row: RunRow;
  private live: LiveState = { steps: [], tests: [] };
  private params: Params | undefined;
  private readonly measured: StepResult['measurements'] = [];
  private doc: ResultDocument | undefined;
  private resultsFile: string | undefined;
  private started = 0;
  private rowTimer: NodeJS.Timeout | undefined;

  constructor(run: { name: string; namespace?: string | undefined; outDir: string }) {
    this.resultsFile = undefined;
    this.row = bareRow(this.id, run.namespace ?? '', run.name, 'Pending', join(run.outDir, 'results.json'));
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(e: UiEvent): void {
    for (const fn of this.listeners) fn(e);
  }

  /** Sends the row now, or within ROW_EVERY_MS when one went out less than that ago. */
  private emitRow(now = false): void {
    if (now) {
      if (this.rowTimer) clearTimeout(this.rowTimer);
      this.rowTimer = undefined;
      this.emit({ type: 'row', row: this.snapshotRow() });
      return;
    }
    if (this.rowTimer) return;
    this.rowTimer = setTimeout(() => {
      this.rowTimer = undefined;
      this.emit({ type: 'row', row: this.snapshotRow() });
    }, ROW_EVERY_MS);
    this.rowTimer.unref();
  }

  private snapshotRow(): RunRow {
    const r = { ...this.row };
    if (r.phase === 'Running') r.durationMs = Math.round(performance.now() - this.started);
    return r;
  }

  /** The run starts: its plan and parameters. */
  start(plan: readonly Step[], params: Params, startedAt: string): void {
    this.params = params;
    this.started = performance.now();
    this.live = { steps: plan.map((s) => ({ name: s.name, category: s.category, tests: [...s.tests], state: 'pending' })), tests: [] };
    this.row = { ...this.row, phase: 'Running', mode: params.mode, startedAt, total: plan.reduce((a, s) => a + s.tests.length, 0), progress: { completed: 0, total: plan.length } };
    this.emitRow(true);
    this.emit({ type: 'live', id: this.id, live: this.live });
  }

  /** The executor's progress: step `i` of `n` runs, doing `detail`. */
  progress(i: number, n: number, step: string, detail?: string): void {
    let stepsChanged = false;
    this.live.steps.forEach((s, k) => {
      // A step before the current one that did not report done ended without a result.
      if (k < i && (s.state === 'running' || s.state === 'pending')) {
        s.state = 'failed';
        s.error = 'ended without a result';
        stepsChanged = true;
      }
      if (k === i && s.state !== 'running') {
        s.state = 'running';
        stepsChanged = true;
      }
      if (k === i) {
        if (detail !== undefined) s.detail = detail.slice(0, 300);
        else delete s.detail;
      }
    });
    const completed = this.live.steps.filter((s) => s.state === 'done' || s.state === 'failed').length;
    this.row.progress = { completed, total: n, current: step, ...(detail !== undefined ? { detail: detail.slice(0, 300) } : {}) };
    this.emitRow(stepsChanged);
    if (stepsChanged) this.emit({ type: 'live', id: this.id, live: this.live });
  }

  /** A step wrote its result: its tests are judged now. */
  stepDone(result: StepResult): void {
    const step = this.live.steps.find((s) => s.name === result.step);
    if (step) {
      step.state = result.error ? 'failed' : 'done';
      delete step.detail;
      if (result.error) step.error = result.error.slice(0, 500);
    }
    this.measured.push(...result.measurements);
    if (this.params) {
      const ids = new Set(this.measured.map((m) => m.id));
      let tests: TestResult[] = [];
      try {
        tests = judgeAll(this.measured, this.params).filter((t) => ids.has(t.id));
      } catch {
        // A test measured twice: the result document will say so; the live page shows none.
      }
      this.live.tests = tests;
      this.row.passed = tests.filter((t) => t.result === 'Passed').length;
    }
    const completed = this.live.steps.filter((s) => s.state === 'done' || s.state === 'failed').length;
    this.row.progress = { ...(this.row.progress ?? { total: this.live.steps.length }), completed };
    delete this.row.progress.detail;
    this.emit({ type: 'live', id: this.id, live: this.live });
    this.emitRow(true);
  }

  /** The run ended with this document, written to `resultsFile` (cancelled: it was interrupted). */
  finish(doc: ResultDocument, resultsFile: string, cancelled = false): void {
    this.doc = doc;
    this.resultsFile = resultsFile;
    for (const s of this.live.steps) {
      if (s.state === 'running' || s.state === 'pending') {
        s.state = 'failed';
        s.error = cancelled ? 'the run was cancelled' : 'ended without a result';
      }
    }
    this.live.tests = doc.tests;
    this.row = { ...rowOf(doc, this.id, resultsFile), ...(cancelled ? { phase: 'Cancelled' as const } : {}) };
    this.emit({ type: 'live', id: this.id, live: this.live });
    this.emitRow(true);
  }

  currentRow(): RunRow {
    return this.snapshotRow();
  }

  /** The file the run's result was written to, once it was. */
  file(): string | undefined {
    return this.resultsFile;
  }

  page(): RunPage {
    return {
      row: this.snapshotRow(),
      live: this.live,
      ...(this.doc ? { doc: this.doc } : {}),
      exports: this.resultsFile ? exportsBeside(this.resultsFile) : [],
    };
  }

  document(): DocumentOf {
    return this.doc ? { ok: true, doc: this.doc, row: this.snapshotRow() } : { ok: false, error: `${this.row.name} is still running: it has no result yet`, row: this.snapshotRow() };
  }
}

/** The local source: the folders' runs and, when given, the live run. */
export class LocalSource implements UiSource {
  private readonly folders: FolderRuns | undefined;
  private readonly liveRun: LiveRun | undefined;
  private readonly listeners = new Set<Listener>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribeLive: (() => void) | undefined;

  constructor(o: { paths?: readonly string[]; live?: LiveRun }) {
    this.folders = o.paths?.length ? new FolderRuns(o.paths) : undefined;
    this.liveRun = o.live;
    this.folders?.scan();
  }

  async list(): Promise<{ runs: RunRow[]; problems: string[] }> {
    if (!this.timer) this.folders?.scan();
    const live = this.liveRun?.currentRow();
    const liveFile = this.liveRun?.file() ?? live?.source;
    const rows = (this.folders?.rows() ?? []).filter((r) => !liveFile || resolve(r.source) !== resolve(liveFile));
    rows.sort((a, b) => (b.startedAt ?? '').localeCompare(a.startedAt ?? '') || a.name.localeCompare(b.name));
    return { runs: live ? [live, ...rows] : rows, problems: this.folders?.problemList() ?? [] };
  }

  private fileOf(id: string): { file: string; row: RunRow } | undefined {
    const file = this.folders?.fileOf(id);
    const row = this.folders?.rowById(id);
    return file && row ? { file, row } : undefined;
  }

  async page(id: string): Promise<RunPage | undefined> {
    if (this.liveRun && id === this.liveRun.id) return this.liveRun.page();
    const f = this.fileOf(id);
    if (!f) return undefined;
    const exports = exportsBeside(f.file);
    if (f.row.phase === 'Unreadable') return { row: f.row, exports: [] };
    const read = readDocument(f.file, f.row);
    // Changed since the scan and no longer readable: the page says why.
    if (!read.ok) return { row: { ...f.row, phase: 'Unreadable', error: read.error }, exports: [] };
    return { row: f.row, doc: read.doc, exports };
  }

  async document(id: string): Promise<DocumentOf | undefined> {
    if (this.liveRun && id === this.liveRun.id) return this.liveRun.document();
    const f = this.fileOf(id);
    if (!f) return undefined;
    if (f.row.phase === 'Unreadable') return { ok: false, error: f.row.error ?? `${f.file} cannot be read`, row: f.row };
    return readDocument(f.file, f.row);
  }

  async exportFile(id: string, name: ExportName): Promise<string | undefined> {
    const file = this.liveRun && id === this.liveRun.id ? this.liveRun.file() : this.fileOf(id)?.file;
    if (!file || !EXPORT_FILES.includes(name)) return undefined;
    const path = join(dirname(file), name);
    if (!isFile(path)) return undefined;
    return readBounded(path, RESULT_MAX_BYTES, { what: 'an export file' });
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) {
      if (this.liveRun) this.unsubscribeLive = this.liveRun.subscribe((e) => this.emit(e));
      if (this.folders) {
        this.timer = setInterval(() => {
          if (this.folders!.scan()) this.emit({ type: 'list' });
        }, RESCAN_MS);
        this.timer.unref();
      }
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopWatching();
    };
  }

  private emit(e: UiEvent): void {
    for (const fn of this.listeners) fn(e);
  }

  private stopWatching(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribeLive?.();
    this.unsubscribeLive = undefined;
  }

  close(): void {
    this.listeners.clear();
    this.stopWatching();
  }
}
