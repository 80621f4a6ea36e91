/**
 * Section `embedded`: the embedded run's wall time and peak memory in quick mode and at 1×, 2× and
 * 4× the quick pool sizes, that is how `swarmbench run` grows with the pools it starts.
 *
 * Each run is the real CLI (`bin/swarmbench.js run -f SPEC --out DIR -q`) in a child process, with
 * the reference agents on this machine. Wall time: from the spawn to the exit. Peak memory: the
 * largest sum of VmRSS over the whole process tree (the CLI, its runner processes and their agent
 * host processes), sampled every 200 ms from /proc (bench/proctree.ts), and the CLI's own peak
 * (its VmHWM as last read).
 *
 * The pool sizes a spec sets, all scaled by k (src/plan/params.ts, src/plan/plan.ts):
 * `spec.agents.poolSize` (the distributed pool, and the monitoring pool), `spec.agents.steps` (the
 * five scalability pools) and `spec.stress.{sustainedAgents, spikeFrom, spikeTo}`. Not scaled,
 * because no spec field sets them: the distributed spawn batch (1.2) and the integration pool
 * (`max(3, workflowSteps)`). Durations and trials stay those of quick mode, so a linear goal is
 * generous for the wall time: most of a quick run is fixed durations.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchmarkRunSpec, Category } from '../src/api/schema.ts';
import { REPO_ROOT } from '../src/paths.ts';
import { resolveParams } from '../src/plan/params.ts';
import { buildPlan } from '../src/plan/plan.ts';
import { round } from '../src/stats.ts';
import { figure, type Figure, type RunOptions, type Section } from './lib.ts';
import { procAvailable, watchTree, type TreePeak } from './proctree.ts';

const BIN = join(REPO_ROOT, 'bin', 'swarmbench.js');
const MiB = 2 ** 20;
/** Past the plan's own deadlines (the sum of its steps'), the run is stopped as hung. */
const HANG_MARGIN_MS = 60_000;

/** The pool sizes a spec can set. */
export interface Pools {
  poolSize: number;
  steps: number[];
  sustainedAgents: number;
  spikeFrom: number;
  spikeTo: number;
}

export function scalePools(p: Pools, k: number): Pools {
  return {
    poolSize: p.poolSize * k,
    steps: p.steps.map((s) => s * k),
    sustainedAgents: p.sustainedAgents * k,
    spikeFrom: p.spikeFrom * k,
    spikeTo: p.spikeTo * k,
  };
}

export function poolsText(p: Pools): string {
  return `agents.poolSize ${p.poolSize}, agents.steps [${p.steps.join(', ')}], stress ${p.sustainedAgents} sustained, spike ${p.spikeFrom}→${p.spikeTo}`;
}

/** What one configuration of the section runs. */
export interface EmbeddedConfig {
  /** Categories run (undefined: all six, as quick mode runs them). */
  categories?: Category[];
  /** The 1× pools. */
  base: Pools;
  /** Scale factors, 1 first. */
  factors: number[];
  trials: number;
  /** Spec fields beside the pools (quick mode's own when empty). */
  extra?: { trials?: number; sustainedDuration?: string };
}

export interface RunMeasure {
  k: number;
  trial: number;
  wallSeconds: number;
  peakRssMiB: number;
  procsAtPeak: number;
  peakProcs: number;
  cliHwmMiB: number | null;
  exitCode: number;
  tests: { total: number; passed: number; failed: number; skipped: number };
  /** The tests that did not pass, as `id failed` / `id skipped` (sizes that ran different tests compare less well). */
  notPassed: string[];
  backend: string | null;
  otherCpuPct: number | null;
  leftovers: number;
  /** Milliseconds this process spent sampling /proc during the run. */
  sampleMs: number;
  samples: number;
}

export function specFor(cfg: EmbeddedConfig, k: number): BenchmarkRunSpec {
  const p = scalePools(cfg.base, k);
  return {
    mode: 'quick',
    ...(cfg.categories ? { categories: cfg.categories } : {}),
    ...(cfg.extra?.trials !== undefined ? { trials: cfg.extra.trials } : {}),
    agents: { poolSize: p.poolSize, steps: p.steps },
    stress: {
      sustainedAgents: p.sustainedAgents,
      spikeFrom: p.spikeFrom,
      spikeTo: p.spikeTo,
      ...(cfg.extra?.sustainedDuration ? { sustainedDuration: cfg.extra.sustainedDuration } : {}),
    },
  };
}

interface ResultSummary {
  summary?: { total?: number; passed?: number; failed?: number; skipped?: number };
  tests?: Array<{ id?: string; result?: string }>;
  environment?: { inference?: { backend?: string }; hostLoad?: { otherPct?: number } };
}

/** One `swarmbench run` at k× the pools, measured. Throws when it does not finish with 0 or 1. */
export async function runOnce(cfg: EmbeddedConfig, k: number, trial: number, work: string): Promise<RunMeasure> {
  const spec = specFor(cfg, k);
  const deadlineMs = buildPlan(resolveParams(spec)).reduce((a, s) => a + s.timeoutMs, 0) + HANG_MARGIN_MS;
  const dir = join(work, `t${trial}-${k}x`);
  const file = `${dir}.json`;
  writeFileSync(file, JSON.stringify({ apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name: `bench-embedded-${k}x` }, spec }));
  const t0 = performance.now();
  const child = spawn(process.execPath, [BIN, 'run', '-f', file, '--out', dir, '-q'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  if (child.pid === undefined) throw new Error('swarmbench run did not start');
  const watch = watchTree(child.pid);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => void (stderr = (stderr + d).slice(-4000)));
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    for (const pid of watch.alive()) killPid(pid, 'SIGKILL');
  }, deadlineMs);
  let exit: { code: number | null; signal: NodeJS.Signals | null };
  let wallSeconds: number;
  let peak: TreePeak;
  try {
    exit = await new Promise((res, rej) => {
      child.once('error', rej);
      child.once('exit', (c, s) => res({ code: c, signal: s }));
    });
  } finally {
    wallSeconds = (performance.now() - t0) / 1000;
    clearTimeout(timer);
    peak = watch.stop();
  }
  const { code, signal } = exit;
  // Whatever of the tree outlived the CLI is a finding (noted), and is ended by its pid.
  const left = watch.alive();
  for (const pid of left) killPid(pid, 'SIGKILL');
  if (hung) throw new Error(`swarmbench run at ${k}× did not finish within ${Math.round(deadlineMs / 1000)} s (the plan's deadlines + ${HANG_MARGIN_MS / 1000} s)`);
  if (code !== 0 && code !== 1) throw new Error(`swarmbench run at ${k}× exited with ${code ?? signal}: ${stderr.trim().split('\n').slice(-5).join(' | ')}`);
  let doc: ResultSummary = {};
  try {
    doc = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as ResultSummary;
  } catch (e) {
    throw new Error(`swarmbench run at ${k}× wrote no readable results.json: ${(e as Error).message}`);
  }
  const s = doc.summary ?? {};
  rmSync(dir, { recursive: true, force: true });
  return {
    k,
    trial,
    wallSeconds,
    peakRssMiB: peak.peakRssBytes / MiB,
    procsAtPeak: peak.procsAtPeak,
    peakProcs: peak.peakProcs,
    cliHwmMiB: peak.rootHwmBytes === null ? null : peak.rootHwmBytes / MiB,
    exitCode: code,
    tests: { total: s.total ?? 0, passed: s.passed ?? 0, failed: s.failed ?? 0, skipped: s.skipped ?? 0 },
    notPassed: (doc.tests ?? []).filter((t) => t.result !== 'Passed').map((t) => `${t.id} ${String(t.result).toLowerCase()}`),
    backend: doc.environment?.inference?.backend ?? null,
    otherCpuPct: doc.environment?.hostLoad?.otherPct ?? null,
    leftovers: left.length,
    sampleMs: peak.sampleMs,
    samples: peak.samples,
  };
}

function killPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Trial i runs the sizes ascending when i is even, descending when odd. */
export function orderOf(factors: readonly number[], trial: number): number[] {
  return trial % 2 === 0 ? [...factors] : [...factors].reverse();
}

export async function measure(cfg: EmbeddedConfig, log: (l: string) => void): Promise<RunMeasure[]> {
  const work = mkdtempSync(join(tmpdir(), 'swarmbench-bench-embedded-'));
  const out: RunMeasure[] = [];
  try {
    for (let trial = 0; trial < cfg.trials; trial++) {
      for (const k of orderOf(cfg.factors, trial)) {
        const m = await runOnce(cfg, k, trial, work);
        log(`trial ${trial + 1}/${cfg.trials}, ${k}×: ${m.wallSeconds.toFixed(1)} s, peak ${m.peakRssMiB.toFixed(0)} MiB over ${m.procsAtPeak} processes, exit ${m.exitCode}`);
        out.push(m);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}

function runNote(m: RunMeasure): string {
  const t = m.tests;
  return (
    `trial ${m.trial + 1}, ${m.k}×: ${m.wallSeconds.toFixed(1)} s, tree peak ${m.peakRssMiB.toFixed(0)} MiB over ${m.procsAtPeak} processes ` +
    `(most at once ${m.peakProcs}), CLI VmHWM ${m.cliHwmMiB === null ? 'unread' : `${m.cliHwmMiB.toFixed(0)} MiB`}, exit ${m.exitCode}, ` +
    `${t.total} tests (${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped${m.notPassed.length ? `: ${m.notPassed.join(', ')}` : ''}), inference backend ${m.backend ?? 'none'}, ` +
    `other processes ${m.otherCpuPct === null ? 'unknown' : `${m.otherCpuPct} %`} of the host's CPU, ` +
    `${m.samples} samples of /proc taking ${(m.sampleMs / 1000).toFixed(1)} s of this (the bench) process's wall time` +
    (m.leftovers ? `, ${m.leftovers} process(es) of the tree outlived the CLI (killed)` : '')
  );
}

/** The figures of measured runs: 1× alone, then each k× against the 1× run of the same trial. */
export function figuresOf(cfg: EmbeddedConfig, runs: RunMeasure[], what: string): Figure[] {
  const at = (k: number): RunMeasure[] => runs.filter((r) => r.k === k).sort((a, b) => a.trial - b.trial);
  const one = at(1);
  const notes = [`${what}; 1× pools: ${poolsText(cfg.base)}`, ...one.map(runNote)];
  const figs: Figure[] = [
    figure({ id: 'embedded.wall-1x', title: 'embedded run wall time, 1×', unit: 's', subject: { label: '1×', samples: one.map((r) => r.wallSeconds) }, notes }),
    figure({
      id: 'embedded.rss-1x',
      title: 'embedded run peak memory (tree), 1×',
      unit: 'MiB',
      subject: { label: '1×', samples: one.map((r) => r.peakRssMiB) },
      notes: ['sum of VmRSS over the CLI, its runners and agent hosts, sampled every 200 ms (pages shared between processes count once per process)'],
    }),
  ];
  for (const k of cfg.factors.filter((f) => f !== 1)) {
    const kx = at(k);
    const kNotes = [`${k}× pools: ${poolsText(scalePools(cfg.base, k))}`, ...kx.map(runNote)];
    const skippedIds = (r: RunMeasure | undefined): string => (r?.notPassed ?? []).filter((x) => x.endsWith(' skipped')).join(', ');
    const differ = kx.filter((r) => skippedIds(r) !== skippedIds(one.find((o) => o.trial === r.trial)));
    if (differ.length) kNotes.push(`in ${differ.length} trial(s) the ${k}× run skipped other tests than the 1× run: the two did different work`);
    figs.push(
      figure({
        id: `embedded.wall-${k}x`,
        title: `embedded run wall time, ${k}× vs 1×`,
        unit: 's',
        subject: { label: `${k}×`, samples: kx.map((r) => r.wallSeconds) },
        reference: { label: '1×', samples: one.map((r) => r.wallSeconds) },
        goal: { text: `grows no faster than linearly: <= ${k} × the 1× run`, of: 'ratio', op: '<=', value: k },
        notes: kNotes,
      }),
      figure({
        id: `embedded.rss-${k}x`,
        title: `embedded run peak memory (tree), ${k}× vs 1×`,
        unit: 'MiB',
        subject: { label: `${k}×`, samples: kx.map((r) => r.peakRssMiB) },
        reference: { label: '1×', samples: one.map((r) => r.peakRssMiB) },
        goal: { text: `grows no faster than linearly: <= ${k} × the 1× run`, of: 'ratio', op: '<=', value: k },
        notes: [
          'the same linear bound as the wall time: every pool grows k×, so memory per agent that stays constant gives <= k (the CLI, runners and the inference step are fixed costs); above k, memory per agent grows with the pool',
        ],
      }),
    );
  }
  return figs;
}

/** The quick pools (src/plan/params.ts), as the spec fields that set them. */
export function quickPools(): Pools {
  const q = resolveParams({ mode: 'quick' });
  return { poolSize: q.agents.poolSize, steps: [...q.agents.steps], sustainedAgents: q.stress.sustainedAgents, spikeFrom: q.stress.spikeFrom, spikeTo: q.stress.spikeTo };
}

/**
 * Tiny: the stress category only (its pools are all spec-set), at pools of 2, a spike 2→4 (under
 * 3 × spikeFrom, so 6.2 is Skipped at once instead of taking 20 s), 1 s of sustained load and 3
 * trials per test, at 1× and 2×: about 15 s a run on an idle 2-core machine.
 */
export const TINY: Omit<EmbeddedConfig, 'trials'> = {
  categories: ['stress'],
  base: { poolSize: 2, steps: [1, 2, 3, 4, 5], sustainedAgents: 2, spikeFrom: 2, spikeTo: 4 },
  factors: [1, 2],
  extra: { trials: 3, sustainedDuration: '1s' },
};

export async function run(opts: RunOptions): Promise<Section> {
  const t0 = performance.now();
  const title = "The embedded run's wall time and peak memory as the pools grow";
  const cfg: EmbeddedConfig = opts.tiny ? { ...TINY, trials: opts.trials ?? 1 } : { base: quickPools(), factors: [1, 2, 4], trials: opts.trials ?? 1 };
  const what = opts.tiny
    ? 'tiny: quick mode, stress category only (6.2 Skipped by its spike size), 1 s sustained, 3 trials per test, reference agents, pools scaled 1× and 2×'
    : 'quick mode, all six categories, reference agents, pools scaled 1×, 2× and 4× (durations and trials those of quick mode)';
  const method =
    '`swarmbench run -f SPEC -q` as a child process per size (the real CLI, reference agents on this machine), sizes ascending in trial 1, descending in trial 2 and so on; ' +
    'wall time from spawn to exit; peak memory the largest sum of VmRSS over its process tree (CLI, runners, agent hosts) sampled every 200 ms from /proc. ' +
    'Each k× run is compared with the 1× run of the same trial. ' +
    (opts.tiny
      ? 'Tiny configuration (stress only), not the figures.'
      : `One trial by default (one trial is a quick run at 1×, 2× and 4×, many minutes on 2 cores): n = 1, no spread; \`--trials N\` gives more.`) +
    ` Conditions: ${what}.`;
  if (!procAvailable()) {
    return { id: 'embedded', title, method, figures: [], skipped: 'no /proc here (Linux only): the process tree cannot be sampled', wallSeconds: (performance.now() - t0) / 1000 };
  }
  opts.log(`${what}; ${cfg.trials} trial(s)`);
  const runs = await measure(cfg, opts.log);
  return { id: 'embedded', title, method, figures: figuresOf(cfg, runs, what), wallSeconds: round((performance.now() - t0) / 1000, 1) };
}
