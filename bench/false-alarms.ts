/**
 * The false alarms of the trend detection (docs/trends.md) on this machine: a series of runs of the
 * clean reference agent, each the real CLI (`bin/swarmbench.js run -f SPEC --out DIR/fa-NN -q`),
 * then the history of the whole series examined after every run, as a schedule's status is (a
 * "look" per run), and once more by the real `swarmbench history DIR`.
 *
 *   npm run bench:false-alarms -- [--runs N] [--out DIR] [--categories a,b] [--trials N]
 *
 * Defaults: 30 runs of quick mode's integration and monitoring categories (8 tests, about 30 s a
 * run on a 2-core machine) into bench-results/false-alarms/. Runs already in DIR (fa-NN/results.json)
 * are kept, so an interrupted series goes on where it stopped. Nothing is planted: a shift found
 * is a false alarm of the method, unless the runs' conditions changed (the host's load, below).
 * Printed: each run's wall time and the host's load beside it (the CPUs
 * other processes used, as each result document records), the shifts found at each look, per test
 * the smallest Bonferroni-adjusted p of any split at the last look (over the splits and the tests
 * examined, as the rule corrects it; whether or not the rule's other conditions held), the count of test × look pairs with a shift, and for each the host's load
 * before its split and since (a machine that got busier or quieter is a real change of the
 * runs' conditions, not noise; docs/trends.md "Limits"). Shifts the detection itself reports as
 * the machine's (report/trend.ts "The machine changed") are counted apart from the system's:
 * the system's are the false trends. Written: DIR/false-alarms.json.
 *
 * Not part of `npm test` (it takes a quarter of an hour). Exit codes: 0 the series ran (false
 * alarms or not: an alarm is a finding), 1 a run or the history command failed, 2 bad arguments.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { HISTORY_MAX_POINTS, type History } from '../src/api/history.ts';
import { CATEGORIES, type Category, type ResultDocument } from '../src/api/schema.ts';
import { REPO_ROOT } from '../src/paths.ts';
import { compareSamples, DEFAULT_ALPHA } from '../src/report/baseline.ts';
import { readResultFile } from '../src/report/document.ts';
import { addRun, DEFAULT_MIN_RUNS, DEFAULT_WINDOW, emptyHistory, examinedTests, type MachineChange, machineText, trendsOf } from '../src/report/trend.ts';

const BIN = join(REPO_ROOT, 'bin', 'swarmbench.js');
/** A run that takes longer than this is stuck (a quick run of two categories takes under a minute). */
const RUN_TIMEOUT_MS = 15 * 60_000;

function usage(msg: string): never {
  process.stderr.write(`false-alarms: ${msg}\nusage: node bench/false-alarms.ts [--runs N] [--out DIR] [--categories a,b] [--trials N]\n`);
  process.exit(2);
}

interface RunRow {
  run: string;
  /** From the spawn to the exit (null: the run was already in DIR). */
  wallSeconds: number | null;
  /** The run's own start to finish, as its document says. */
  runSeconds: number;
  verdict: string;
  otherCpus: number | null;
  otherPct: number | null;
  /** Of otherPct, the hypervisor's steal (runs that recorded it). */
  stealPct: number | null;
  loadavg1: { start: number; end: number } | null;
}

/** The smallest p of any split of the values (the rule's U test), times the splits and the tests examined: what the detection's threshold is measured against. */
export function smallestAdjustedP(values: readonly number[], better: 'lower' | 'higher', tests: number): { p: number; at: number } | null {
  const w = DEFAULT_MIN_RUNS;
  const n = values.length;
  if (n < 2 * w) return null;
  const splits = n - 2 * w + 1;
  let best: { p: number; at: number } | null = null;
  for (let k = w; k <= n - w; k++) {
    const c = compareSamples(values.slice(k), values.slice(Math.max(0, k - DEFAULT_WINDOW), k), better, { alpha: DEFAULT_ALPHA / (splits * tests), minSamples: w, maxSamples: HISTORY_MAX_POINTS });
    if (c.p !== null && (!best || c.p < best.p)) best = { p: c.p, at: k };
  }
  return best && { p: Math.min(1, best.p * splits * tests), at: best.at };
}

function main(): number {
  let values;
  try {
    ({ values } = parseArgs({
      options: { runs: { type: 'string', default: '30' }, out: { type: 'string' }, categories: { type: 'string', default: 'integration,monitoring' }, trials: { type: 'string' } },
      strict: true,
    }));
  } catch (e) {
    usage((e as Error).message);
  }
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > HISTORY_MAX_POINTS) usage(`--runs: ${values.runs} is not an integer in [1, ${HISTORY_MAX_POINTS}]`);
  const categories = values.categories.split(',').map((c) => c.trim()) as Category[];
  for (const c of categories) if (!(CATEGORIES as readonly string[]).includes(c)) usage(`--categories: unknown category ${JSON.stringify(c)} (known: ${CATEGORIES.join(', ')})`);
  const trials = values.trials === undefined ? undefined : Number(values.trials);
  if (trials !== undefined && (!Number.isInteger(trials) || trials < 1 || trials > 1000)) usage(`--trials: ${values.trials} is not an integer in [1, 1000]`);
  const out = resolve(values.out ?? join(REPO_ROOT, 'bench-results', 'false-alarms'));
  mkdirSync(out, { recursive: true });

  const spec = { mode: 'quick', categories, ...(trials !== undefined ? { trials } : {}) };
  const rows: RunRow[] = [];
  const docs: ResultDocument[] = [];
  for (let i = 1; i <= runs; i++) {
    const name = `fa-${String(i).padStart(2, '0')}`;
    const dir = join(out, name);
    let wall: number | null = null;
    if (!existsSync(join(dir, 'results.json'))) {
      const file = join(out, `${name}.json`);
      writeFileSync(file, JSON.stringify({ apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name }, spec }));
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [BIN, 'run', '-f', file, '--out', dir, '-q'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: RUN_TIMEOUT_MS, encoding: 'utf8' });
      wall = (performance.now() - t0) / 1000;
      // 0 passed, 1 a test failed: both are a run with a result document.
      if ((r.status !== 0 && r.status !== 1) || !existsSync(join(dir, 'results.json'))) {
        process.stderr.write(`false-alarms: run ${name} ended with ${r.status ?? r.signal}: ${(r.stderr ?? '').slice(-2000)}\n`);
        return 1;
      }
    }
    const doc = readResultFile(join(dir, 'results.json'));
    docs.push(doc);
    const load = doc.environment.hostLoad;
    const row: RunRow = {
      run: name,
      wallSeconds: wall === null ? null : Math.round(wall * 10) / 10,
      runSeconds: Math.round((Date.parse(doc.run.finishedAt) - Date.parse(doc.run.startedAt)) / 100) / 10,
      verdict: doc.summary.verdict,
      otherCpus: load?.otherCpus ?? null,
      otherPct: load?.otherPct ?? null,
      stealPct: load?.stealPct ?? null,
      loadavg1: load?.loadavg1 ?? null,
    };
    rows.push(row);
    process.stdout.write(`${name}  ${row.wallSeconds === null ? '(kept)' : `${row.wallSeconds} s`} (the run ${row.runSeconds} s)  ${row.verdict}  other processes ${row.otherCpus ?? '?'} CPUs (${row.otherPct ?? '?'} %${row.stealPct === null ? '' : `, steal ${row.stealPct} %`}), load ${row.loadavg1 ? `${row.loadavg1.start} → ${row.loadavg1.end}` : '?'}\n`);
  }

  // A look after every run: the history of the runs so far, as the schedule's status shows it.
  let history: History = emptyHistory();
  const looks: { after: string; tests: number; shifts: { test: string; since: string; direction: string; changePct: number | null; pAdjusted: number; machine: MachineChange | null }[] }[] = [];
  for (const doc of docs) {
    history = addRun(history, doc);
    const shifts = trendsOf(history)
      .filter((t) => t.shift)
      .map((t) => ({ test: t.id, since: t.shift!.run, direction: t.shift!.direction, changePct: t.shift!.changePct, pAdjusted: t.shift!.pAdjusted, machine: t.shift!.machine }));
    looks.push({ after: doc.run.name, tests: history.tests.length, shifts });
  }
  const examined = looks.filter((_, i) => i + 1 >= 2 * DEFAULT_MIN_RUNS);
  const testLooks = examined.reduce((s, l) => s + l.tests, 0);
  // Where an alarm came from: the host's load (what other processes used, as each run recorded)
  // over the runs before its split (the window) and from it to the look.
  const medianOf = (xs: number[]): number | null => (xs.length ? xs.sort((a, b) => a - b)[xs.length >> 1]! : null);
  const loadOf = (from: number, to: number) => {
    const part = rows.slice(Math.max(0, from), to);
    const avg = part.map((r) => r.loadavg1).filter((x) => x !== null).map((x) => (x.start + x.end) / 2);
    return { runs: part.length, loadavg1: medianOf(avg), otherPct: medianOf(part.map((r) => r.otherPct).filter((x): x is number => x !== null)) };
  };
  const alarms = examined.flatMap((l) =>
    l.shifts.map((s) => {
      const look = docs.findIndex((d) => d.run.name === l.after) + 1;
      const at = docs.findIndex((d) => d.run.name === s.since);
      return { look: l.after, ...s, hostLoad: { before: loadOf(at - DEFAULT_WINDOW, at), after: loadOf(at, look) } };
    }),
  );
  const family = examinedTests(history);
  const tests = trendsOf(history).map((t) => {
    const v = t.values.filter((x): x is number => x !== null);
    const min = smallestAdjustedP(v, t.better, family);
    return { test: t.id, name: t.name, runs: v.length, smallestAdjustedP: min?.p ?? null, atRun: min ? docs[min.at]?.run.name ?? null : null, shift: t.shift ? t.shift.run : null };
  });

  // The real command over the folder, as a user would read it.
  const cli = spawnSync(process.execPath, [BIN, 'history', out], { encoding: 'utf8', timeout: 120_000 });
  if (cli.status !== 0) {
    process.stderr.write(`false-alarms: swarmbench history ${out} ended with ${cli.status ?? cli.signal}: ${cli.stderr}\n`);
    return 1;
  }
  const walls = rows.map((r) => r.wallSeconds).filter((x): x is number => x !== null);
  const own = rows.map((r) => r.runSeconds);
  const other = rows.map((r) => r.otherPct).filter((x): x is number => x !== null).sort((a, b) => a - b);
  const summary = {
    spec,
    runs: rows.length,
    tests: history.tests.length,
    looks: examined.length,
    testLooks,
    alarms: alarms.length,
    // Shifts that coincide with a change of the host's load are reported as the machine's
    // (report/trend.ts "The machine changed"); the rest are the system's: false trends.
    systemAlarms: alarms.filter((a) => !a.machine).length,
    testsWithAnAlarm: [...new Set(alarms.map((a) => a.test))],
    testsWithASystemAlarm: [...new Set(alarms.filter((a) => !a.machine).map((a) => a.test))],
    finalLookShifts: looks[looks.length - 1]?.shifts ?? [],
    wallSeconds: walls.length ? { total: Math.round(walls.reduce((a, b) => a + b, 0)), min: Math.min(...walls), max: Math.max(...walls) } : null,
    runSeconds: { total: Math.round(own.reduce((a, b) => a + b, 0)), min: Math.min(...own), max: Math.max(...own) },
    from: docs[0]?.run.startedAt,
    to: docs[docs.length - 1]?.run.finishedAt,
    otherCpuPct: other.length ? { min: other[0], median: other[other.length >> 1], max: other[other.length - 1] } : null,
  };
  writeFileSync(join(out, 'false-alarms.json'), JSON.stringify({ summary, rows, looks, tests, alarms }, null, 2) + '\n');
  process.stdout.write(`\n$ swarmbench history ${out}\n${cli.stdout}\n`);
  process.stdout.write(`smallest Bonferroni-adjusted p of any split (over the splits and the ${family} tests), at the last look (a shift needs < 0.05 there and at the look before, at least 5 %, and the latest 3 runs beyond):\n`);
  for (const t of tests) process.stdout.write(`  ${t.test.padEnd(4)} ${t.name.slice(0, 28).padEnd(28)} ${t.runs} runs  p=${t.smallestAdjustedP === null ? '—' : t.smallestAdjustedP.toPrecision(3)}${t.atRun ? ` (split at ${t.atRun})` : ''}${t.shift ? `  SHIFT from ${t.shift}` : ''}\n`);
  const loadText = (l: ReturnType<typeof loadOf>): string => `load average ${l.loadavg1?.toFixed(1) ?? '?'}, other processes ${l.otherPct ?? '?'} % (median of ${l.runs} runs)`;
  for (const a of alarms) {
    process.stdout.write(`  alarm at the look after ${a.look}: ${a.test} ${a.direction} from ${a.since} (${a.changePct === null ? '?' : a.changePct.toFixed(1)} %, p=${a.pAdjusted.toPrecision(3)})${a.machine ? `, the machine's: ${machineText(a.machine)}` : ", the system's"}; before: ${loadText(a.hostLoad.before)}; since: ${loadText(a.hostLoad.after)}\n`);
  }
  process.stdout.write(
    `\n${summary.runs} runs × ${summary.tests} tests; ${summary.looks} looks (after each run from the ${2 * DEFAULT_MIN_RUNS}th): ${summary.alarms} shift(s) flagged in ${summary.testLooks} test × look pairs (nothing was planted)` +
      `${summary.testsWithAnAlarm.length ? ` (tests ${summary.testsWithAnAlarm.join(', ')})` : ''}; ${summary.systemAlarms} of them the system's (false trends${summary.testsWithASystemAlarm.length ? `: tests ${summary.testsWithASystemAlarm.join(', ')}` : ''}), ${summary.alarms - summary.systemAlarms} the machine's` +
      `; at the last look ${summary.finalLookShifts.length} shift(s), ${summary.finalLookShifts.filter((x) => !x.machine).length} the system's\n` +
      (summary.wallSeconds ? `the CLI took ${summary.wallSeconds.min}…${summary.wallSeconds.max} s a run, ${summary.wallSeconds.total} s in all; ` : '') +
      `the runs ${summary.runSeconds.min}…${summary.runSeconds.max} s (${summary.runSeconds.total} s in all), ${summary.from} to ${summary.to}; ` +
      (summary.otherCpuPct ? `other processes used ${summary.otherCpuPct.min}…${summary.otherCpuPct.max} % of the CPUs (median ${summary.otherCpuPct.median} %)\n` : '\n') +
      `written: ${join(out, 'false-alarms.json')}\n`,
  );
  return 0;
}

process.exitCode = main();
