/**
 * What the results UI shows, and where it comes from: the `UiSource` interface. The server
 * (server.ts) knows nothing of files or clusters; it asks a source for the runs, one run's page,
 * its export files, and is told of progress. Two hosts, one UI:
 *
 * - locally (`swarmbench ui DIR…`, `swarmbench run --ui`): `LocalSource` (local.ts) reads the
 *   results.json files of folders and the live state of the run in this process;
 * - in a cluster (docs/ui.md, "The operator's host"): `OperatorUiSource`
 *   (operator/ui-source.ts) over the operator's informer caches, BenchmarkRuns (the row, the
 *   progress from their status), their export ConfigMaps (the result document, the exports) and
 *   BenchmarkSchedules with their history (a schedule's page).
 *
 * Everything here is plain data that goes to the browser as JSON: no secret and no token is ever
 * part of it (a source must not put one in; a result document holds none).
 */
import type { ResultDocument, TestResult } from '../api/schema.ts';
import type { EXPORT_FILES } from '../report/exports.ts';
import type { TrendView } from './views.ts';

/** A run's phase as the operator says it, and `Unreadable` for a result that cannot be read. */
export type Phase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Cancelled' | 'Unreadable';

export interface Progress {
  completed: number;
  total: number;
  /** The step running now, and what it is doing (the runner's last progress line). */
  current?: string;
  detail?: string;
}

/** One row of the runs table. */
export interface RunRow {
  /** Opaque and URL-safe: the only way a page names a run (never a path). */
  id: string;
  namespace: string;
  name: string;
  attempt: number;
  phase: Phase;
  mode: 'quick' | 'full' | null;
  progress: Progress | null;
  verdict: 'Passed' | 'Failed' | null;
  /** passed / (total − skipped) in percent; null while running or when every test was skipped. */
  successRate: number | null;
  passed: number | null;
  total: number | null;
  /** Tests regressed against the run's baseline, when it was compared. */
  regressions: number | null;
  startedAt: string | null;
  durationMs: number | null;
  /** Where the run's result lives (a file locally; the BenchmarkRun and ConfigMap in a cluster). */
  source: string;
  /** Why the run's result could not be read (phase Unreadable). */
  error?: string;
  /** The schedule that made the run (its `swarmbench.io/schedule` label), when the source has schedules. */
  schedule?: { id: string; name: string };
}

/** One schedule (a BenchmarkSchedule, docs/schedules.md) of the schedules list. */
export interface ScheduleRow {
  /** Opaque and URL-safe, as a run's. */
  id: string;
  namespace: string;
  name: string;
  /** Where its history lives (the history ConfigMap). */
  source: string;
}

/** A schedule's page: each test's trend over the schedule's history, and its runs. */
export interface SchedulePage {
  row: ScheduleRow;
  /** Runs in the history (each test keeps its most recent points). */
  runs: number;
  trends: TrendView[];
  /** The schedule's runs that still exist, newest first. */
  runRows: RunRow[];
  /** Why the history is empty or partial (no history yet, an unreadable one). */
  problems: string[];
}

export type StepState = 'pending' | 'running' | 'done' | 'failed';

/** A running run, step by step, with the tests judged as their steps finish. */
export interface LiveState {
  steps: { name: string; category: string; tests: string[]; state: StepState; detail?: string; error?: string }[];
  /** The tests judged so far (the measured ones of the finished steps), in catalogue order. */
  tests: TestResult[];
}

export type ExportName = (typeof EXPORT_FILES)[number];

/** Everything the page of one run shows. */
export interface RunPage {
  row: RunRow;
  /** The result document, once the run has one. */
  doc?: ResultDocument;
  /** The live state, while the run runs (and after, for the steps). */
  live?: LiveState;
  /** The export files the run has, by name. */
  exports: ExportName[];
}

/** What a source tells its subscribers. */
export type UiEvent =
  /** A run's row changed (its progress, its phase). */
  | { type: 'row'; row: RunRow }
  /** A running run's steps or tests changed. */
  | { type: 'live'; id: string; live: LiveState }
  /** Runs came or went, or a result was rewritten: the table should be read again. */
  | { type: 'list' };

/** A finished run's document, or why there is none. */
export type DocumentOf = { ok: true; doc: ResultDocument; row: RunRow } | { ok: false; error: string; row?: RunRow };

export interface UiSource {
  /**
   * Every run, newest first (a live one first of all). Rows of unreadable results say why (phase
   * Unreadable); `problems` are what has no row (a folder that is gone, one without a result).
   */
  list(): Promise<{ runs: RunRow[]; problems: string[] }>;
  /** One run's page; undefined when there is no run with that id. */
  page(id: string): Promise<RunPage | undefined>;
  /** One run's result document (to compare runs, to draw trends). */
  document(id: string): Promise<DocumentOf | undefined>;
  /** One of the run's export files as text; undefined when the run has no such file. */
  exportFile(id: string, name: ExportName): Promise<string | undefined>;
  /** Calls `listener` on every event until the returned function is called. */
  subscribe(listener: (e: UiEvent) => void): () => void;
  /** Stops what the source watches. */
  close(): void;
  /** The schedules, when the source has any (the operator's). */
  schedules?(): Promise<ScheduleRow[]>;
  /** One schedule's page; undefined when there is no schedule with that id. */
  schedule?(id: string): Promise<SchedulePage | undefined>;
  /** The most finished runs the trends page reads (default server.ts MAX_TREND_RUNS). */
  readonly maxTrendRuns?: number;
}
