/**
 * The sensitivity matrix of `swarmbench calibrate` (src/cli/calibrate.ts), as pure logic: from the
 * result documents of the clean run and of each defect profile's run to the matrix (tests ×
 * profiles: Passed / Failed / Skipped / not run, with the value), the exit rule (every test passes
 * on the clean agent and fails under at least one profile meant to break it), and its three
 * renderings: the terminal's, sensitivity.json and sensitivity.md (which carries the cells in a
 * machine-readable comment that `parseSensitivityBlock` reads back, for the test that keeps the
 * committed docs/sensitivity.md honest). No I/O here.
 */
import type { Category, ResultDocument, TestResult } from '../../api/schema.ts';
import { CATALOGUE, type Op } from '../../plan/catalogue.ts';
import { formatValue } from '../../report/terminal.ts';

export type CellResult = TestResult['result'] | 'not run';

export interface Cell {
  result: CellResult;
  value: number | null;
  unit: string;
  /** Why it failed, was skipped, or was not run. */
  reason?: string;
  samples: number;
  sampleUnit?: string;
}

/** One run of the calibration: the clean reference agent, or one defect profile. */
export interface ProfileRun {
  /** `clean`, or the profile's name (a column of the matrix). */
  name: string;
  /** The profile as it was switched on (`slow-peers:25`); null for the clean run. */
  defect: string | null;
  site: 'agent' | 'inference' | null;
  /** The tests the profile is meant to fail (its catalogue `breaks`); empty for the clean run. */
  breaks: readonly string[];
  /** The categories this run covered (empty: not run at all). */
  categories: readonly Category[];
  /** Its result document; null when it was not run or ended without one (`error` says why). */
  doc: ResultDocument | null;
  error?: string;
  /** Wall time of the run, in seconds. */
  seconds: number;
  /** Where its results.json is, relative to the calibration's folder. */
  results?: string;
}

export interface Row {
  id: string;
  name: string;
  category: Category;
  unit: string;
  statistic: string;
  target: { op: Op; value: number } | null;
  /** Column name → cell, for every column. */
  cells: Record<string, Cell>;
  /** Profiles of this calibration meant to break this test (from their `breaks`). */
  meantToBreak: string[];
  /** Of those, the ones under which it failed. */
  brokenBy: string[];
  /** Profiles under which it failed though they are not meant to break it. */
  alsoFailedUnder: string[];
  /** The clean value's distance from the target as a fraction of the target, on the passing side (null: no value or a zero target). */
  cleanMargin: number | null;
}

export interface Matrix {
  columns: string[];
  rows: Row[];
  /** One line per problem; empty when the calibration holds. */
  problems: string[];
  ok: boolean;
}

const NOT_RUN: Omit<Cell, 'unit'> = { result: 'not run', value: null, samples: 0 };

/**
 * The signed margin of a value against its target, as a fraction of the target: positive on the
 * passing side (0.9: 90 % of the target to spare), negative past it (-1.5: 150 % past it). Null
 * without a value, or when the target is 0 (no fraction of it means anything).
 */
export function marginOf(value: number | null, op: Op, target: number): number | null {
  if (value === null || !Number.isFinite(value) || target === 0) return null;
  const d = op === '<' || op === '<=' ? target - value : value - target;
  return d / Math.abs(target);
}

function cellOf(run: ProfileRun, id: string, category: Category, unit: string): Cell {
  if (!run.categories.includes(category)) return { ...NOT_RUN, unit };
  const t = run.doc?.tests.find((x) => x.id === id);
  if (!t) return { ...NOT_RUN, unit, reason: run.error ?? (run.doc ? `no result for ${id} in the run` : 'the run ended without a result') };
  return {
    result: t.result,
    value: t.value,
    unit: t.unit,
    ...(t.reason ? { reason: t.reason } : {}),
    samples: t.samples,
    ...(t.sampleUnit ? { sampleUnit: t.sampleUnit } : {}),
  };
}

/**
 * The matrix of the runs (the first is the clean run) over the tests of `categories`, and what
 * is wrong with it: a test that did not pass on the clean agent (Skipped is allowed), and a test
 * that did not fail under any of the profiles meant to break it that were run.
 */
export function buildMatrix(runs: readonly ProfileRun[], categories: readonly Category[]): Matrix {
  const clean = runs[0];
  if (!clean || clean.defect !== null) throw new Error('the first run of a calibration is the clean one');
  const columns = runs.map((r) => r.name);
  const rows: Row[] = [];
  const problems: string[] = [];
  for (const def of CATALOGUE.filter((d) => categories.includes(d.category))) {
    const cells: Record<string, Cell> = {};
    for (const r of runs) cells[r.name] = cellOf(r, def.id, def.category, def.unit);
    const judged = runs.map((r) => r.doc?.tests.find((x) => x.id === def.id)).find((t) => t !== undefined);
    const target = judged ? { op: judged.target.op, value: judged.target.value } : null;
    const meantToBreak = runs.filter((r) => r.defect !== null && r.breaks.includes(def.id) && r.categories.includes(def.category)).map((r) => r.name);
    const brokenBy = meantToBreak.filter((n) => cells[n]!.result === 'Failed');
    const alsoFailedUnder = runs.filter((r) => r.defect !== null && !meantToBreak.includes(r.name) && cells[r.name]!.result === 'Failed').map((r) => r.name);
    const c = cells[clean.name]!;
    rows.push({
      id: def.id,
      name: def.name,
      category: def.category,
      unit: def.unit,
      statistic: def.statistic,
      target,
      cells,
      meantToBreak,
      brokenBy,
      alsoFailedUnder,
      cleanMargin: target ? marginOf(c.value, target.op, target.value) : null,
    });
    if (c.result === 'Failed') problems.push(`${def.id} failed on the clean agent: ${c.reason ?? 'no reason given'}`);
    else if (c.result === 'not run') problems.push(`${def.id} was not run on the clean agent${c.reason ? `: ${c.reason}` : ''}`);
    if (meantToBreak.length > 0 && brokenBy.length === 0) {
      const all = meantToBreak.every((n) => cells[n]!.result === 'Passed');
      problems.push(
        all
          ? `${def.id} passed under every profile meant to break it (${meantToBreak.join(', ')})`
          : `${def.id} did not fail under any profile meant to break it (${meantToBreak.map((n) => `${n}: ${cells[n]!.result}`).join(', ')})`,
      );
    }
  }
  return { columns, rows, problems, ok: problems.length === 0 };
}

/** The exit code of a calibration: 0 when the matrix holds, 1 otherwise (2 and 130 are decided before). */
export function exitCodeOf(m: Matrix): 0 | 1 {
  return m.ok ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// What the calibration ran on

export interface Conditions {
  swarmbenchVersion: string;
  node: string;
  os: string;
  arch: string;
  cpus: number;
  cpuModel: string;
  /** The CPUs the run could really use (affinity, quota), when known. */
  effectiveCpus?: number;
  /** The inference backend the GPU step used (from the clean run), or null when it did not run. */
  backend: string | null;
  gpuInUse: boolean;
  mode: string;
  /** The manifest file, and the command's arguments as given. */
  manifest: string;
  options: string[];
  categories: Category[];
  allCells: boolean;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
}

/** The conditions, from the clean run's environment (the host's when it has none). */
export function conditionsOf(
  clean: ResultDocument | null,
  input: Omit<Conditions, 'swarmbenchVersion' | 'node' | 'os' | 'arch' | 'cpus' | 'cpuModel' | 'backend' | 'gpuInUse' | 'effectiveCpus' | 'mode'> & {
    mode: string;
    host: { version: string; node: string; os: string; arch: string; cpus: number; cpuModel: string };
  },
): Conditions {
  const e = clean?.environment;
  const { host, ...rest } = input;
  return {
    swarmbenchVersion: e?.swarmbenchVersion ?? host.version,
    node: e?.node ?? host.node,
    os: e?.os ?? host.os,
    arch: e?.arch ?? host.arch,
    cpus: e?.cpus ?? host.cpus,
    cpuModel: e?.cpuModel ?? host.cpuModel,
    ...(e?.cpuSet ? { effectiveCpus: e.cpuSet.effectiveCpus } : {}),
    backend: e?.inference?.backend ?? null,
    gpuInUse: e?.inference?.gpuInUse ?? false,
    ...rest,
  };
}

// ---------------------------------------------------------------------------------------------
// sensitivity.json

export const SENSITIVITY_KIND = 'SwarmBenchSensitivity';

export function sensitivityJson(m: Matrix, runs: readonly ProfileRun[], cond: Conditions): unknown {
  return {
    kind: SENSITIVITY_KIND,
    schemaVersion: 1,
    ok: m.ok,
    problems: m.problems,
    conditions: cond,
    profiles: runs.map((r) => ({
      name: r.name,
      defect: r.defect,
      site: r.site,
      breaks: r.breaks,
      categories: r.categories,
      runSeconds: Math.round(r.seconds * 10) / 10,
      verdict: r.doc?.summary.verdict ?? null,
      // What other processes used of the host's CPUs during the run: contention that moves figures.
      ...(r.doc?.environment.hostLoad ? { hostOtherCpus: r.doc.environment.hostLoad.otherCpus, hostOtherPct: r.doc.environment.hostLoad.otherPct } : {}),
      ...(r.error ? { error: r.error } : {}),
      ...(r.results ? { results: r.results } : {}),
    })),
    tests: m.rows.map((row) => ({
      id: row.id,
      name: row.name,
      category: row.category,
      unit: row.unit,
      statistic: row.statistic,
      target: row.target,
      meantToBreak: row.meantToBreak,
      brokenBy: row.brokenBy,
      alsoFailedUnder: row.alsoFailedUnder,
      cleanMargin: row.cleanMargin,
      cells: row.cells,
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// Text

const SHORT: Record<CellResult, string> = { Passed: 'pass', Failed: 'FAIL', Skipped: 'skip', 'not run': '-' };

function num(v: number): string {
  return formatValue(v, '').trim();
}

/** A cell in a few characters: `pass 0.21`, `FAIL 2530`, `skip`, `-` (the row carries the unit). */
export function shortCell(c: Cell): string {
  if (c.result === 'not run' || c.result === 'Skipped' || c.value === null) return SHORT[c.result];
  return `${SHORT[c.result]} ${num(c.value)}`;
}

function targetText(t: Row['target'], unit: string): string {
  return t ? `${t.op}${num(t.value)} ${unit}` : '?';
}

function pct(f: number): string {
  const p = Math.abs(f) * 100;
  return `${p >= 10 && (p < 99.5 || p >= 100) ? p.toFixed(0) : p.toFixed(1)} %`;
}

/** "98 % inside the target", "150 % past the target", or the difference where the target is 0. */
export function marginText(value: number | null, target: Row['target'], unit: string): string {
  if (value === null || !target) return 'no value';
  const m = marginOf(value, target.op, target.value);
  if (m === null) {
    const d = Math.abs(value - target.value);
    return d === 0 ? 'exactly at the target' : `${num(d)} ${unit} ${((target.op === '<' || target.op === '<=') === value > target.value) ? 'past' : 'inside'} the target`;
  }
  return m >= 0 ? `${pct(m)} inside the target` : `${pct(m)} past the target`;
}

/**
 * The matrix for a terminal: rows are tests (with unit and target), columns the runs, cut into
 * blocks of columns that fit `width` (each block repeats the tests), then the problems.
 */
export function renderTerminal(m: Matrix, width = 100): string {
  const head = m.rows.map((r) => `${r.id} ${r.name}`);
  const unitCol = m.rows.map((r) => targetText(r.target, r.unit));
  const w0 = Math.max(4, ...head.map((h) => h.length));
  const w1 = Math.max(6, ...unitCol.map((u) => u.length));
  const colW = m.columns.map((c) => Math.max(c.length, ...m.rows.map((r) => shortCell(r.cells[c]!).length)));
  const blocks: number[][] = [];
  let cur: number[] = [];
  let used = w0 + w1 + 4;
  m.columns.forEach((_, i) => {
    if (cur.length > 0 && used + colW[i]! + 2 > width) {
      blocks.push(cur);
      cur = [];
      used = w0 + w1 + 4;
    }
    cur.push(i);
    used += colW[i]! + 2;
  });
  if (cur.length) blocks.push(cur);
  const out: string[] = [];
  for (const b of blocks) {
    out.push(['test'.padEnd(w0), 'target'.padEnd(w1), ...b.map((i) => m.columns[i]!.padEnd(colW[i]!))].join('  ').trimEnd());
    m.rows.forEach((r, k) => {
      out.push([head[k]!.padEnd(w0), unitCol[k]!.padEnd(w1), ...b.map((i) => shortCell(r.cells[m.columns[i]!]!).padEnd(colW[i]!))].join('  ').trimEnd());
    });
    out.push('');
  }
  out.push('pass / FAIL / skip: the test\'s result under that run, with its value in the unit of the target; -: not run.');
  if (m.ok) out.push('calibration holds: every test passed on the clean agent and failed under a profile meant to break it.');
  else {
    out.push(`calibration does not hold (${m.problems.length} problem${m.problems.length === 1 ? '' : 's'}):`);
    for (const p of m.problems) out.push(`  ${p}`);
  }
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// sensitivity.md

/** The machine-readable block of sensitivity.md: an HTML comment holding the cells' results. */
export const BLOCK_START = '<!-- swarmbench-sensitivity ';
const BLOCK_END = ' -->';

export interface SensitivityBlock {
  schemaVersion: 1;
  columns: string[];
  /** The profile of each column as it was switched on (`clean`: null). */
  defects: Record<string, string | null>;
  categories: Category[];
  allCells: boolean;
  /** Test id → column → result. */
  cells: Record<string, Record<string, CellResult>>;
}

export function blockOf(m: Matrix, runs: readonly ProfileRun[], cond: Conditions): SensitivityBlock {
  const cells: Record<string, Record<string, CellResult>> = {};
  for (const r of m.rows) cells[r.id] = Object.fromEntries(m.columns.map((c) => [c, r.cells[c]!.result]));
  return {
    schemaVersion: 1,
    columns: m.columns,
    defects: Object.fromEntries(runs.map((r) => [r.name, r.defect])),
    categories: cond.categories,
    allCells: cond.allCells,
    cells,
  };
}

/** Reads the block back from a sensitivity.md; an error naming what is wrong otherwise. */
export function parseSensitivityBlock(markdown: string): SensitivityBlock {
  const at = markdown.indexOf(BLOCK_START);
  if (at < 0) throw new Error(`no machine-readable block (a line starting "${BLOCK_START.trim()}")`);
  const end = markdown.indexOf(BLOCK_END, at + BLOCK_START.length);
  if (end < 0) throw new Error('the machine-readable block is not closed (" -->")');
  let b: unknown;
  try {
    b = JSON.parse(markdown.slice(at + BLOCK_START.length, end));
  } catch (err) {
    throw new Error(`the machine-readable block is not JSON: ${(err as Error).message}`);
  }
  const o = b as Partial<SensitivityBlock>;
  if (o.schemaVersion !== 1 || !Array.isArray(o.columns) || typeof o.cells !== 'object' || o.cells === null || typeof o.defects !== 'object') {
    throw new Error('the machine-readable block lacks schemaVersion 1, columns, defects or cells');
  }
  const ok = new Set<string>(['Passed', 'Failed', 'Skipped', 'not run']);
  for (const [id, row] of Object.entries(o.cells)) {
    for (const [col, v] of Object.entries(row)) if (!ok.has(v)) throw new Error(`cells["${id}"]["${col}"]: "${String(v)}" is not a result`);
  }
  return o as SensitivityBlock;
}

function mdCell(c: Cell): string {
  if (c.result === 'not run') return 'not run';
  if (c.value === null) return c.result;
  return `${c.result} ${num(c.value)}`;
}

/** "24 s", "1 min 30 s": whole seconds first, so 59.6 s is "1 min 0 s", never "0 min 60 s". */
export function duration(seconds: number): string {
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole} s`;
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

export interface MarkdownOptions {
  /** A note shown first (e.g. that the page is provisional). */
  note?: string;
  /** The command that produced it, as a user would type it. */
  command?: string;
}

/** The Markdown page: the matrix, test by test (meant to break, broke, clean value, margin), the conditions, the block. */
export function renderMarkdown(m: Matrix, runs: readonly ProfileRun[], cond: Conditions, opts: MarkdownOptions = {}): string {
  const L: string[] = [];
  L.push('# Sensitivity matrix', '');
  if (opts.note) L.push(`> ${opts.note}`, '');
  L.push(
    'Each column is one run of the suite: the clean reference agent, then the reference agent with one defect',
    'profile switched on (docs/defects.md) at its default value. Each row is a test, judged against the',
    "run's own targets. A test is meant to fail under the profiles whose `breaks` list names it; the",
    'calibration holds when every test passes on the clean agent (Skipped allowed) and fails under at least',
    `one profile meant to break it. ${cond.allCells ? 'Every profile ran on every selected category.' : 'A profile ran only on the categories of the tests it is meant to break ("not run" elsewhere).'}`,
    '',
  );
  if (opts.command) L.push(`Produced by \`${opts.command}\`.`, '');
  L.push(
    m.ok
      ? '**Result: the calibration holds.** Every test passed on the clean agent and failed under at least one profile meant to break it.'
      : `**Result: the calibration does not hold** (${m.problems.length} problem${m.problems.length === 1 ? '' : 's'}):`,
  );
  if (!m.ok) for (const p of m.problems) L.push(`- ${p}`);
  L.push('', '## The matrix', '');
  L.push(`| test | target | ${m.columns.map((c) => `\`${c}\``).join(' | ')} |`);
  L.push(`|---|---|${m.columns.map(() => '---').join('|')}|`);
  for (const r of m.rows) {
    const cells = m.columns.map((c) => {
      const t = mdCell(r.cells[c]!);
      return r.meantToBreak.includes(c) ? `**${t}**` : t;
    });
    L.push(`| ${r.id} ${r.name} | ${targetText(r.target, r.unit).replace(/</g, '&lt;')} | ${cells.join(' | ')} |`);
  }
  L.push('', 'Values are in the unit of the target. **Bold**: a profile meant to break the test.', '');
  L.push('## Test by test', '');
  for (const r of m.rows) {
    const c = r.cells[m.columns[0]!]!;
    L.push(`### ${r.id} ${r.name}`, '');
    L.push(`Target ${targetText(r.target, r.unit).replace(/</g, '&lt;')} (${r.statistic}).`);
    const n = c.samples > 0 ? ` (n=${c.samples} ${c.sampleUnit ?? 'samples'})` : '';
    L.push(
      `- Clean agent: ${c.result}${c.value !== null ? `, ${num(c.value)} ${r.unit}${n}, ${marginText(c.value, r.target, r.unit)}` : ''}${c.result !== 'Passed' && c.reason ? ` (${c.reason})` : ''}.`,
    );
    if (r.meantToBreak.length === 0) L.push('- Meant to break it: no profile of this calibration.');
    else {
      L.push(`- Meant to break it: ${r.meantToBreak.map((p) => `\`${p}\``).join(', ')}.`);
      for (const p of r.meantToBreak) {
        const pc = r.cells[p]!;
        const v = pc.value !== null ? `, ${num(pc.value)} ${r.unit}, ${marginText(pc.value, r.target, r.unit)}` : '';
        const why = pc.result !== 'Passed' && pc.reason ? `: ${pc.reason}` : '';
        L.push(`  - \`${p}\`: ${pc.result === 'Failed' ? 'broke it' : 'did not break it'} (${pc.result}${v})${why}`);
      }
    }
    if (r.alsoFailedUnder.length) L.push(`- Also failed under: ${r.alsoFailedUnder.map((p) => `\`${p}\``).join(', ')} (not meant to break it).`);
    L.push('');
  }
  L.push('## Conditions', '');
  L.push(`- SwarmBench ${cond.swarmbenchVersion}, Node ${cond.node}, ${cond.os} ${cond.arch}`);
  L.push(`- ${cond.cpus} CPUs (${cond.cpuModel})${cond.effectiveCpus !== undefined ? `, ${cond.effectiveCpus} usable by the run` : ''}`);
  L.push(`- Inference backend: ${cond.backend ?? 'not run'}${cond.backend ? (cond.gpuInUse ? ' (a GPU in use)' : ' (no GPU in use)') : ''}`);
  L.push(`- Mode: ${cond.mode}; manifest ${cond.manifest}; categories: ${cond.categories.join(', ')}${cond.allCells ? '; --all-cells' : ''}`);
  L.push(`- Started ${cond.startedAt}, finished ${cond.finishedAt}: ${duration(cond.durationSeconds)} in all, ${runs.length} runs`, '');
  L.push('| run | profile | categories | time | verdict | other processes\' CPU |', '|---|---|---|---|---|---|');
  for (const r of runs) {
    const cats = r.categories.length ? r.categories.join(', ') : 'none';
    const h = r.doc?.environment.hostLoad;
    const other = h ? `${h.otherCpus.toFixed(2)} of ${h.hostCpus} CPUs` : 'unknown';
    L.push(`| \`${r.name}\` | ${r.defect ?? 'none'} | ${cats} | ${duration(r.seconds)} | ${r.doc?.summary.verdict ?? r.error ?? 'not run'} | ${other} |`);
  }
  L.push('');
  // JSON never holds "--" here except inside strings; escape it so the comment stays one comment.
  L.push(`${BLOCK_START}${JSON.stringify(blockOf(m, runs, cond)).replace(/--/g, '-\\u002d')}${BLOCK_END}`, '');
  return L.join('\n');
}
