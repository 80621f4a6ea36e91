/**
 * Section `report`: report rendering and the baseline comparison at full-mode sample counts.
 *
 * The documents are synthetic but shaped as a full-mode run's: the tests, units, targets, details
 * and environment of the quick run in test/fixtures/results-quick.json, with every test's
 * `rawSamples` drawn anew (seeded, src/prng.ts) from the distribution its quick samples have
 * (log-normal fitted to them when all are positive, else normal), as many as full mode stores:
 * - a test whose quick run stored one sample (a single spike, a memory figure) stores one;
 * - a test with one sample per trial stores full mode's trials (params.ts: 10);
 * - any other grows with its category's size from quick to full mode (the distributed pool, the
 *   GPU's sustained seconds, the monitoring observation, the scalability step, the concurrent
 *   workflows, the stress drift windows), at most `RAW_STORED_MAX` (500, src/bench/measure.ts),
 *   the cap every stored measurement and every result document has.
 * The baseline is a second such document with each test's distribution shifted by a seeded
 * factor in [0.9, 1.1], so the comparison finds a mix of Regressed, Improved and NoChange.
 *
 * Figures (each side timed as the mean of back-to-back calls over at least `minMs`, per trial):
 * - rendering every export (`renderExports`: results.json, summary.csv, junit.xml, report.md,
 *   report.txt, what `swarmbench report --out` writes) of the compared document, against
 *   JSON.stringify + JSON.parse of it (the floor of touching the document);
 * - reading a document (`parseResultDocument`: JSON and the schema's validation) against JSON.parse;
 * - the baseline comparison (`compareRuns`: Mann-Whitney U, Hodges–Lehmann shift and interval,
 *   test by test) against sorting the same sample arrays (per test, both runs' compared samples
 *   together: the floor of any rank statistic, (n + m) log(n + m));
 * - the comparison at full counts against the comparison at half the counts: how it grows. Only
 *   the tests with more than EXACT_MAX_N samples in all at half the counts enter it, so that both
 *   sides use the normal approximation (below, the exact permutation distribution would be timed
 *   at half the counts and the normal one at full, a change of method, not growth).
 * No fixed goals: the issue sets none for these.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ResultDocument, type Category, type ResultDocument as Doc, type TestResult } from '../src/api/schema.ts';
import { RAW_STORED_MAX } from '../src/bench/measure.ts';
import { REPO_ROOT } from '../src/paths.ts';
import { resolveParams } from '../src/plan/params.ts';
import { deriveSeed, mulberry32 } from '../src/prng.ts';
import { compareRuns, comparedSamples } from '../src/report/baseline.ts';
import { completeDocument, parseResultDocument } from '../src/report/document.ts';
import { renderExports } from '../src/report/exports.ts';
import { EXACT_MAX_N, MATERIALISE_MAX_PAIRS } from '../src/report/ranktest.ts';
import { describe, mean, round } from '../src/stats.ts';
import { figure, paired, type Figure, type RunOptions, type Section } from './lib.ts';

const TEMPLATE = join(REPO_ROOT, 'test', 'fixtures', 'results-quick.json');
const SEED = 18;

/** How much a category's stored samples grow from quick to full mode, from the two modes' params. */
export function categoryGrowth(): Record<Category, number> {
  const q = resolveParams({ mode: 'quick' });
  const f = resolveParams({ mode: 'full' });
  const windows = (p: typeof q): number => p.stress.sustainedMs / p.stress.windowMs;
  return {
    distributed: f.agents.poolSize / q.agents.poolSize,
    gpu: f.gpu.sustainedSeconds / q.gpu.sustainedSeconds,
    monitoring: f.monitoring.observeSeconds / q.monitoring.observeSeconds,
    scalability: f.agents.stepSeconds / q.agents.stepSeconds,
    integration: f.integration.concurrentWorkflows / q.integration.concurrentWorkflows,
    stress: windows(f) / windows(q),
  };
}

/** The stored sample count of each test at full mode (see the file's comment), at most `cap`. */
export function fullCounts(template: Doc, cap: number): Map<string, number> {
  const q = resolveParams({ mode: 'quick' });
  const f = resolveParams({ mode: 'full' });
  const growth = categoryGrowth();
  const out = new Map<string, number>();
  for (const t of template.tests) {
    const n = t.rawSamples?.length ?? 0;
    const full = n <= 1 ? n : n <= q.trials ? f.trials : Math.ceil(n * growth[t.category]);
    out.set(t.id, Math.min(cap, full));
  }
  return out;
}

/** `n` samples shaped as `t`'s quick samples, scaled by `factor`; the first k are the same for any n >= k. */
export function drawSamples(t: TestResult, n: number, seed: number, factor: number): number[] {
  const raw = t.rawSamples ?? [];
  const r = mulberry32(deriveSeed(seed, t.id));
  const normal = (): number => Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r());
  const integer = raw.every(Number.isInteger);
  const sd = (xs: number[], m: number): number => (xs.length > 1 ? Math.sqrt(xs.reduce((a, v) => a + (v - m) ** 2, 0) / (xs.length - 1)) : 0);
  let draw: () => number;
  if (raw.length > 0 && raw.every((v) => v > 0)) {
    const logs = raw.map(Math.log);
    const mu = mean(logs) + Math.log(factor);
    const sigma = Math.max(0.05, sd(logs, mean(logs)));
    draw = () => Math.exp(mu + sigma * normal());
  } else {
    const m = mean(raw) * factor;
    const s = sd(raw, mean(raw)) * factor;
    const floor = Math.min(...raw) >= 0 ? 0 : -Infinity;
    draw = () => Math.max(floor, m + s * normal());
  }
  return Array.from({ length: n }, () => (integer ? Math.round(draw()) : round(draw(), 4)));
}

/** A full-mode-shaped document from the template: each test's samples drawn anew, `counts` of them. */
export function synthDoc(template: Doc, counts: Map<string, number>, o: { name: string; seed: number; factor: (id: string) => number }): Doc {
  const { comparison: _c, recommendations: _r, ...rest } = template;
  const tests = template.tests.map((t): TestResult => {
    const n = counts.get(t.id) ?? 0;
    if (n === 0 || !t.rawSamples?.length) return t;
    const raw = drawSamples(t, n, o.seed, o.factor(t.id));
    return { ...t, samples: n, rawSamples: raw, distribution: describe(raw) };
  });
  return ResultDocument.parse({ ...rest, run: { ...template.run, name: o.name, mode: 'full' }, tests });
}

/** The seeded per-test shift of the baseline: a factor in [0.9, 1.1]. */
function baselineShift(seed: number): (id: string) => number {
  return (id) => 0.9 + 0.2 * mulberry32(deriveSeed(seed, `shift-${id}`))();
}

let sink = 0;
/** Mean milliseconds per call of `fn`, called back to back for at least `minMs` (at least once). */
export function perCall(fn: () => number, minMs: number): number {
  const t0 = performance.now();
  let t = t0;
  let calls = 0;
  do {
    sink += fn();
    calls++;
    t = performance.now();
  } while (t - t0 < minMs);
  return (t - t0) / calls;
}

/** The compared sample arrays of the tests both runs measured (what compareRuns ranks). */
function comparedPairs(current: Doc, baseline: Doc): Array<[number[], number[]]> {
  const byId = new Map(baseline.tests.map((t) => [t.id, t]));
  const out: Array<[number[], number[]]> = [];
  for (const t of current.tests) {
    const b = byId.get(t.id);
    if (!b || t.result === 'Skipped' || b.result === 'Skipped') continue;
    const x = comparedSamples(t).samples;
    const y = comparedSamples(b).samples;
    if (x.length && y.length) out.push([x, y]);
  }
  return out;
}

function sortAll(pairs: Array<[number[], number[]]>): number {
  let n = 0;
  for (const [x, y] of pairs) {
    const a = new Float64Array(x.length + y.length);
    a.set(x);
    a.set(y, x.length);
    a.sort();
    n += a[a.length - 1]! > a[0]! ? a.length : 0;
  }
  return n;
}

interface Docs {
  current: Doc;
  baseline: Doc;
  counts: Map<string, number>;
}

function makeDocs(template: Doc, cap: number, scale: number): Docs {
  const full = fullCounts(template, cap);
  const counts = new Map([...full].map(([id, n]) => [id, Math.ceil(n * scale)]));
  return {
    counts,
    current: synthDoc(template, counts, { name: 'bench-full-current', seed: SEED, factor: () => 1 }),
    baseline: synthDoc(template, counts, { name: 'bench-full-baseline', seed: deriveSeed(SEED, 'baseline'), factor: baselineShift(SEED) }),
  };
}

/** Σ f(n, m) over the compared pairs: the work a cost model predicts. */
function cost(pairs: Array<[number[], number[]]>, f: (n: number, m: number) => number): number {
  return pairs.reduce((a, [x, y]) => a + f(x.length, y.length), 0);
}

export async function run(opts: RunOptions): Promise<Section> {
  const t0 = performance.now();
  const trials = opts.trials ?? (opts.tiny ? 1 : 7);
  // Tiny keeps 100 at most: the least that leaves tests for the growth figure (50 + 50 > EXACT_MAX_N).
  const cap = opts.tiny ? 100 : RAW_STORED_MAX;
  const minMs = opts.tiny ? 10 : 200;
  const template = ResultDocument.parse(JSON.parse(readFileSync(TEMPLATE, 'utf8')));
  const docs = makeDocs(template, cap, 1);
  const half = makeDocs(template, cap, 0.5);
  const compared = completeDocument(docs.current, { baseline: docs.baseline, compare: { source: 'baseline.json' } });
  const text = JSON.stringify(compared);
  const pairs = comparedPairs(docs.current, docs.baseline);
  // The growth figure's tests: normal approximation at both counts (more than EXACT_MAX_N samples in all at half).
  const halfTotal = (id: string): number => {
    const x = half.current.tests.find((t) => t.id === id);
    const y = half.baseline.tests.find((t) => t.id === id);
    return x && y ? comparedSamples(x).samples.length + comparedSamples(y).samples.length : 0;
  };
  const growthIds = new Set(docs.current.tests.filter((t) => t.result !== 'Skipped' && halfTotal(t.id) > EXACT_MAX_N).map((t) => t.id));
  const only = (d: Doc): Doc => ({ ...d, tests: d.tests.filter((t) => growthIds.has(t.id)) });
  const grown = { current: only(docs.current), baseline: only(docs.baseline), halfCurrent: only(half.current), halfBaseline: only(half.baseline) };
  const growthPairs = comparedPairs(grown.current, grown.baseline);
  const halfPairs = comparedPairs(grown.halfCurrent, grown.halfBaseline);
  const exact = compared.comparison!.metrics.filter((m) => m.test === 'exact').length;
  const samplesIn = (d: Doc): number => d.tests.reduce((a, t) => a + (t.rawSamples?.length ?? 0), 0);
  const countsText = [...docs.counts].filter(([, n]) => n > 0).map(([id, n]) => `${id}: ${n}`).join(', ');
  const verdicts = compared.comparison!.metrics.reduce<Record<string, number>>((a, m) => ({ ...a, [m.verdict]: (a[m.verdict] ?? 0) + 1 }), {});
  const maxPairs = Math.max(...pairs.map(([x, y]) => x.length * y.length));
  opts.log(`documents: ${samplesIn(docs.current)} raw samples each, ${text.length} bytes compared; ${trials} trial(s), >= ${minMs} ms per side`);

  const ops = {
    render: () => Object.values(renderExports(compared)).reduce((a, s) => a + s.length, 0),
    touch: () => Object.keys(JSON.parse(JSON.stringify(compared)) as object).length,
    parse: () => parseResultDocument(text, 'results.json').tests.length,
    jsonParse: () => (JSON.parse(text) as Doc).tests.length,
    compare: () => compareRuns(docs.current, docs.baseline).metrics.length,
    compareGrown: () => compareRuns(grown.current, grown.baseline).metrics.length,
    compareHalf: () => compareRuns(grown.halfCurrent, grown.halfBaseline).metrics.length,
    sort: () => sortAll(pairs),
  };
  // Warm-up: every operation compiled and its caches filled before the first timed call.
  for (const fn of Object.values(ops)) perCall(fn, minMs);
  const timed = (fn: () => number) => async () => perCall(fn, minMs);

  const docNote =
    `synthetic full-mode documents (test/fixtures/results-quick.json's tests, samples drawn seeded): ${samplesIn(docs.current)} raw samples each, ` +
    `per test ${countsText}${opts.tiny ? ` (tiny: at most ${cap} per test)` : ''}`;
  const exportsText = Object.entries(renderExports(compared)).map(([f, s]) => `${f} ${s.length} chars`).join(', ');
  const figures: Figure[] = [];

  const render = await paired(trials, timed(ops.render), timed(ops.touch));
  figures.push(
    figure({
      id: 'report.render',
      title: 'rendering every export (with the comparison)',
      unit: 'ms',
      subject: { label: 'renderExports', samples: render.subject },
      reference: { label: 'JSON stringify+parse', samples: render.reference },
      ratios: render.ratios,
      notes: [docNote, `the compared document is ${text.length} chars of compact JSON; exports: ${exportsText}`],
    }),
  );

  const read = await paired(trials, timed(ops.parse), timed(ops.jsonParse));
  figures.push(
    figure({
      id: 'report.read',
      title: 'reading a result document (validated)',
      unit: 'ms',
      subject: { label: 'parseResultDocument', samples: read.subject },
      reference: { label: 'JSON.parse', samples: read.reference },
      ratios: read.ratios,
      notes: ['`swarmbench report` reads every document so (twice with --baseline): JSON, then the schema (zod)'],
    }),
  );

  const compare = await paired(trials, timed(ops.compare), timed(ops.sort));
  const verdictText = Object.entries(verdicts).map(([v, n]) => `${n} ${v}`).join(', ');
  figures.push(
    figure({
      id: 'report.compare',
      title: 'baseline comparison (all tests)',
      unit: 'ms',
      subject: { label: 'compareRuns', samples: compare.subject },
      reference: { label: 'sort of the same samples', samples: compare.reference },
      ratios: compare.ratios,
      notes: [
        `${pairs.length} tests compared (${verdictText}; ${exact} by the exact permutation distribution, the others by the normal approximation); the largest has ${maxPairs} sample pairs (the Hodges–Lehmann differences are materialised and sorted up to ${MATERIALISE_MAX_PAIRS} pairs, src/report/ranktest.ts)`,
      ],
    }),
  );

  const growth = await paired(trials, timed(ops.compareGrown), timed(ops.compareHalf));
  const predicted = (f: (n: number, m: number) => number): number => cost(growthPairs, f) / cost(halfPairs, f);
  const linear = predicted((n, m) => n + m);
  const nlogn = predicted((n, m) => (n + m) * Math.log2(n + m));
  const nm = predicted((n, m) => n * m);
  const nmlog = predicted((n, m) => n * m * Math.log2(Math.max(2, n * m)));
  const g = describe(growth.ratios).p50;
  const superLinear = g > 1.25 * nlogn;
  figures.push(
    figure({
      id: 'report.compare-growth',
      title: 'baseline comparison, full vs half sample counts',
      unit: 'ms',
      subject: { label: 'full counts', samples: growth.subject },
      reference: { label: 'half counts', samples: growth.reference },
      ratios: growth.ratios,
      notes: [
        `the ${growthIds.size} tests with more than ${EXACT_MAX_N} samples in all at half the counts (${[...growthIds].join(', ')}), so both sides use the normal approximation`,
        `cost models predict, for these counts: linear ${round(linear, 2)}, (n+m) log(n+m) ${round(nlogn, 2)}, n·m ${round(nm, 2)}, n·m log(n·m) ${round(nmlog, 2)}`,
        superLinear
          ? `super-linear: the median ratio ${round(g, 2)} is above 1.25 × the (n+m) log(n+m) prediction; the Hodges–Lehmann shift and interval use all n·m pairwise differences (bounded by MAX_COMPARED_SAMPLES per run in src/report/baseline.ts)`
          : `within 1.25 × the (n+m) log(n+m) prediction (median ratio ${round(g, 2)}): not super-linear at these counts`,
      ],
    }),
  );
  if (sink === -1) opts.log('unreachable'); // keeps the calls' results live

  return {
    id: 'report',
    title: 'Report rendering and the baseline comparison at full-mode sample counts',
    method:
      `In-process, on synthetic full-mode result documents (seeded, shaped as test/fixtures/results-quick.json with full-mode sample counts, at most ${cap} per test${opts.tiny ? ', tiny' : ''}). ` +
      `Each side of a trial is the mean time of back-to-back calls over at least ${minMs} ms after a warm-up; ${trials} trial(s), the sides alternating which goes first. ` +
      'References: JSON.stringify+parse of the same document for rendering, JSON.parse for reading, sorting the same sample arrays for the comparison, and the comparison at half the counts for its growth. No fixed goals (the issue sets none).',
    figures,
    wallSeconds: round((performance.now() - t0) / 1000, 1),
  };
}
