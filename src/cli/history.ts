/**
 * `swarmbench history DIR|FILE... [--test ID] [--json] [--window N] [--looks N] [--last N] [--width N]`
 * `swarmbench history --schedule NAME [-n NS] [same options]` (cluster/history.ts)
 *
 * The trend of each test over many runs, from result documents on disk (the embedded mode): the
 * results.json in each DIR and in each of its subfolders one level down (what `swarmbench run
 * --out DIR/<run>` leaves), or the FILEs given. The runs are ordered by start time; each test
 * keeps its last 60 (`--last`). It prints per test the latest value, a sparkline and the lasting
 * shift found by src/report/trend.ts (docs/trends.md). With `--schedule` the history is the one
 * the operator keeps for a BenchmarkSchedule in the cluster (its `<schedule>-history` ConfigMap),
 * read by cluster/history.ts and printed the same way (`printTrends`).
 *
 * Bounded (report/files.ts): at most MAX_FILES (1000) files and MAX_TOTAL_BYTES (1 GiB) in all, each read with the
 * 64 MiB bound of `swarmbench report` and validated as a result document; a folder of more than
 * MAX_DIR_ENTRIES (100 000) entries is refused. A file that cannot be read or is not a
 * valid result document is named on stderr and skipped; a run found twice is counted once.
 *
 * Exit codes (docs/cli.md): 0 the trends were printed (with or without a shift); 2 invalid input:
 * an option, a path that does not exist, no results.json found, too many files or folder
 * entries, not one readable document, or a --test that no run has.
 */
import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { HISTORY_DEFAULT_POINTS, HISTORY_MAX_POINTS, type History } from '../api/history.ts';
import type { ResultDocument } from '../api/schema.ts';
import { errorMessage } from '../errors.ts';
import { DEFAULT_ALPHA, DEFAULT_MIN_EFFECT_PCT } from '../report/baseline.ts';
import { readResultFile, ResultFileError } from '../report/document.ts';
import { collectFiles, MAX_TOTAL_BYTES, RESULTS } from '../report/files.ts';
import {
  addRun,
  DEFAULT_LOOKS,
  DEFAULT_MIN_RUNS,
  DEFAULT_WINDOW,
  emptyHistory,
  examinedTests,
  MAX_LOOKS,
  renderTrends,
  SPARK_DEFAULT_WIDTH,
  SPARK_MAX_WIDTH,
  TrendInputError,
  trendsOf,
  type Trend,
} from '../report/trend.ts';

const TEST_ID = /^[1-6]\.[1-6]$/;

export const OPTIONS = {
  test: { type: 'string', short: 't', multiple: true },
  json: { type: 'boolean', default: false },
  window: { type: 'string', short: 'w' },
  looks: { type: 'string' },
  last: { type: 'string' },
  width: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const USAGE = `usage: swarmbench history DIR|FILE... [--test ID] [--json] [--window N] [--looks N] [--last N] [--width N]
       swarmbench history --schedule NAME [-n NS] [options]   (a schedule's history in the cluster)

Reads the result documents in each DIR (DIR/results.json and DIR/*/results.json) or the FILEs
given, orders the runs by start time and prints, per test, the latest value, a sparkline of the
runs (│ marks where a shift starts, · a run without a comparable value) and the lasting shift,
if any: the runs since it against the runs before it, by the Mann-Whitney U test, corrected for
the splits and the tests examined, found at the latest look and the one before it (docs/trends.md).

  -t, --test ID      only this test (1.3); repeat for more
      --json         print the history and the trends as JSON
  -w, --window N     compare the runs after a split with at most N runs before it (default ${DEFAULT_WINDOW}, ${DEFAULT_MIN_RUNS}…${HISTORY_MAX_POINTS})
      --looks N      report a shift only once N consecutive looks (the history as it is, and as it
                     stood one run before, …) find it (default ${DEFAULT_LOOKS}, 1…${MAX_LOOKS}; 1: no confirmation)
      --last N       keep the last N runs of each test (default ${HISTORY_DEFAULT_POINTS}, 1…${HISTORY_MAX_POINTS})
      --width N      the sparkline's width in characters (default ${SPARK_DEFAULT_WIDTH}, 4…${SPARK_MAX_WIDTH})

A file that is not a valid result document is named on stderr and skipped.
exit codes: 0 printed; 2 invalid input (an option, a path, no readable result document).
With --schedule: see swarmbench history --schedule X --help.
`;

function fail(message: string): number {
  process.stderr.write(`swarmbench history: ${message}\n`);
  return 2;
}

function intOption(name: string, text: string | undefined, lo: number, hi: number): number | undefined | Error {
  if (text === undefined) return undefined;
  const v = Number(text);
  return /^\s*\d+\s*$/.test(text) && v >= lo && v <= hi ? v : new Error(`--${name}: ${JSON.stringify(text.slice(0, 40))} is not an integer in [${lo}, ${hi}]`);
}

export interface RunRead {
  /** Where the run's figures were read: a results.json, or the schedule's history ConfigMap. */
  file: string;
  run: string;
  attempt: number;
  startedAt: string;
}

/** The options that shape the trends, checked: `--window`, `--looks`, `--last`, `--width`, `--test`. */
export interface TrendOptions {
  window?: number;
  looks?: number;
  last?: number;
  width?: number;
  tests: string[];
}

/** `--window`, `--looks`, `--last`, `--width` and `--test` checked, or the message naming the option. */
export function trendOptions(values: { window?: string | undefined; looks?: string | undefined; last?: string | undefined; width?: string | undefined; test?: string[] | undefined }): TrendOptions | Error {
  const window = intOption('window', values.window, DEFAULT_MIN_RUNS, HISTORY_MAX_POINTS);
  const looks = intOption('looks', values.looks, 1, MAX_LOOKS);
  const last = intOption('last', values.last, 1, HISTORY_MAX_POINTS);
  const width = intOption('width', values.width, 4, SPARK_MAX_WIDTH);
  for (const o of [window, looks, last, width]) if (o instanceof Error) return o;
  const tests = values.test ?? [];
  for (const id of tests) if (!TEST_ID.test(id)) return new Error(`--test: ${JSON.stringify(id.slice(0, 20))} is not a test id (1.1 … 6.6)`);
  return {
    tests,
    ...(typeof window === 'number' ? { window } : {}),
    ...(typeof looks === 'number' ? { looks } : {}),
    ...(typeof last === 'number' ? { last } : {}),
    ...(typeof width === 'number' ? { width } : {}),
  };
}

/** Whether argv asks for a schedule's history in the cluster (`--schedule`). */
const wantsSchedule = (argv: readonly string[]): boolean => argv.some((a) => a === '--schedule' || a.startsWith('--schedule='));

export async function main(argv: string[]): Promise<number> {
  if (wantsSchedule(argv)) {
    const [{ main: scheduleMain }, { guarded }] = await Promise.all([import('./cluster/history.ts'), import('./cluster/guard.ts')]);
    return guarded('history', scheduleMain).main(argv);
  }
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true }));
  } catch (err) {
    return fail(`${(err as Error).message}\n\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!positionals.length) return fail(`give at least one folder or results.json (or --schedule NAME)\n\n${USAGE}`);
  const o = trendOptions(values);
  if (o instanceof Error) return fail(o.message);
  const { last } = o;

  const files = collectFiles(positionals);
  if (files instanceof Error) return fail(files.message);
  if (!files.length) return fail(`no ${RESULTS} in ${positionals.join(', ').slice(0, 300)} (nor in their subfolders)`);
  let total = 0;
  for (const f of files) {
    try {
      total += statSync(f).size;
    } catch {
      // Gone since it was listed: reading it below says so.
    }
  }
  if (total > MAX_TOTAL_BYTES) return fail(`the ${files.length} files hold ${total} bytes, more than ${MAX_TOTAL_BYTES} (1 GiB); give fewer folders`);

  let history: History = emptyHistory();
  const runs = new Map<string, RunRead>();
  const skipped: { file: string; reason: string }[] = [];
  for (const file of files) {
    let doc: ResultDocument;
    try {
      doc = readResultFile(file);
    } catch (err) {
      const reason = err instanceof ResultFileError ? err.message : `${file}: ${errorMessage(err)}`;
      skipped.push({ file, reason });
      process.stderr.write(`swarmbench history: skipped ${reason}\n`);
      continue;
    }
    const key = JSON.stringify([doc.run.name, doc.run.attempt, Date.parse(doc.run.startedAt)]);
    const twice = runs.get(key);
    if (twice) {
      process.stderr.write(`swarmbench history: ${file} is the run of ${twice.file} (${doc.run.name}, attempt ${doc.run.attempt}), counted once\n`);
      continue;
    }
    try {
      history = addRun(history, doc, typeof last === 'number' ? { maxPoints: last } : {});
    } catch (err) {
      if (!(err instanceof TrendInputError)) throw err;
      skipped.push({ file, reason: `${file}: ${err.message}` });
      process.stderr.write(`swarmbench history: skipped ${file}: ${err.message}\n`);
      continue;
    }
    runs.set(key, { file, run: doc.run.name, attempt: doc.run.attempt, startedAt: new Date(Date.parse(doc.run.startedAt)).toISOString() });
  }
  if (!runs.size) return fail(`none of the ${files.length} file${files.length === 1 ? '' : 's'} is a readable result document`);
  const printed = printTrends(history, [...runs.values()], skipped, o, { json: values.json === true });
  return printed instanceof Error ? fail(printed.message) : 0;
}

/**
 * Prints the trends of `history` (its tests, or those of `o.tests`) over `runs`: JSON, or a header
 * line and the sparklines. An Error (nothing printed) when a test asked for is in no run.
 */
export function printTrends(history: History, runs: RunRead[], skipped: { file: string; reason: string }[], o: TrendOptions, out: { json: boolean; title?: string }): Error | undefined {
  const { tests, window, looks, last, width } = o;
  const missing = tests.filter((id) => !history.tests.some((t) => t.id === id));
  if (missing.length) return new Error(`no run has test ${missing.join(', ')} (tests: ${history.tests.map((t) => t.id).join(', ') || 'none'})`);
  const shown: History = tests.length ? { ...history, tests: history.tests.filter((t) => tests.includes(t.id)) } : history;
  const shape = { ...(typeof window === 'number' ? { window } : {}), ...(typeof looks === 'number' ? { looks } : {}) };
  // Corrected for every test of the history, not only those shown: --test 5.1 finds what the whole history finds.
  const examined = examinedTests(history, shape);
  const trends = trendsOf(shown, { ...shape, tests: examined });
  const ordered = [...runs].sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.run.localeCompare(b.run));
  if (out.json) {
    process.stdout.write(JSON.stringify(jsonOf(ordered, skipped, shown, trends, { window: window ?? DEFAULT_WINDOW, looks: looks ?? DEFAULT_LOOKS, tests: examined, last: last ?? HISTORY_DEFAULT_POINTS }), null, 2) + '\n');
    return undefined;
  }
  const first = ordered[0];
  const latest = ordered[ordered.length - 1];
  const when = (iso: string) => iso.slice(0, 16).replace('T', ' ');
  const kept = Math.max(0, ...shown.tests.map((t) => t.points.length));
  const lines = [
    (out.title ? `${out.title}: ` : '') +
      (first && latest ? `${ordered.length} run${ordered.length === 1 ? '' : 's'}, ${when(first.startedAt)} to ${when(latest.startedAt)} UTC (latest ${latest.run})` : 'no runs yet') +
      (kept > 0 && kept < ordered.length ? `; each test shows its last ${kept}` : '') +
      (skipped.length ? `; ${skipped.length} file${skipped.length === 1 ? '' : 's'} skipped` : ''),
  ];
  const modes = new Set(shown.tests.flatMap((t) => t.points.map((p) => p.mode)).filter(Boolean));
  if (modes.size > 1) lines.push(`runs of ${[...modes].join(' and ')} mode: each test compares only the runs of its latest run's mode`);
  process.stdout.write(`${lines.join('\n')}\n\n${renderTrends(trends, typeof width === 'number' ? { width } : {})}`);
  return undefined;
}

function jsonOf(runs: RunRead[], skipped: { file: string; reason: string }[], history: History, trends: Trend[], method: { window: number; looks: number; tests: number; last: number }) {
  return {
    runs,
    skipped,
    method: { ...method, minRuns: DEFAULT_MIN_RUNS, alpha: DEFAULT_ALPHA, minEffectPct: DEFAULT_MIN_EFFECT_PCT },
    trends: trends.map(({ values: _values, last, ...t }) => ({ ...t, unit: last.unit, lastValue: last.value, lastRun: last.run })),
    history,
  };
}
