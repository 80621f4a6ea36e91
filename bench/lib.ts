/**
 * The shared shape of SwarmBench's own benchmarks (`npm run bench`, bench/run.ts): every figure is
 * a subject measured beside its reference in the same run, several trials each, alternating order
 * so that a drift of the host (another process, a thermal or steal burst) lands on both; a figure
 * reports median and p95 of each side, the sample count, and the per-trial ratio subject/reference
 * (median and p95), judged against a stated goal where the issue sets one.
 *
 * A section (one file under bench/) exports `run(opts)` returning a `Section`. A section that
 * cannot run here (no cluster) returns `skipped` with the reason: reported as skipped, never as met.
 */
import { cpus, release, totalmem } from 'node:os';
import { percentile, round } from '../src/stats.ts';
import { VERSION } from '../src/version.ts';

/** Median, p95 and the extremes of one side's trials. */
export interface Stats {
  n: number;
  median: number;
  p95: number;
  min: number;
  max: number;
}

export interface Goal {
  /** The goal in words, e.g. "load generator >= 0.9 x autocannon". */
  text: string;
  /** What is compared: the median ratio subject/reference, or the subject's median itself. */
  of: 'ratio' | 'subject';
  op: '>=' | '<=';
  value: number;
}

export interface Figure {
  /** Stable id, e.g. `loadgen.max-rate`. */
  id: string;
  title: string;
  unit: string;
  subject: { label: string; stats: Stats; samples: number[] };
  reference?: { label: string; stats: Stats; samples: number[] };
  /** Per-trial subject/reference (trial i of one against trial i of the other). */
  ratio?: Stats;
  goal?: Goal;
  /** Whether the goal is met on the median; undefined when the figure has no goal. */
  met?: boolean;
  /** What limits the figure, how it was measured: shown under the table. */
  notes?: string[];
}

export interface Section {
  id: string;
  title: string;
  /** How it was measured, in a sentence or two. */
  method: string;
  figures: Figure[];
  /** Set when the section could not run here; its figures are then empty. */
  skipped?: string;
  wallSeconds: number;
}

export interface RunOptions {
  /** The smallest configuration that still runs every path (the test of the script uses it). */
  tiny: boolean;
  /** Trials per figure (each side); sections pick their own default when undefined. */
  trials?: number;
  log: (line: string) => void;
}

export function stats(samples: readonly number[]): Stats {
  if (samples.length === 0) throw new Error('stats: no samples');
  for (const v of samples) if (!Number.isFinite(v)) throw new Error(`stats: non-finite sample ${v}`);
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, median: percentile(s, 50), p95: percentile(s, 95), min: s[0]!, max: s[s.length - 1]! };
}

/**
 * Runs `trials` pairs, alternating which side goes first (subject first on even trials), and
 * returns both sides' samples and the per-pair ratios.
 */
export async function paired(
  trials: number,
  subject: (trial: number) => Promise<number>,
  reference: (trial: number) => Promise<number>,
): Promise<{ subject: number[]; reference: number[]; ratios: number[] }> {
  const out = { subject: [] as number[], reference: [] as number[], ratios: [] as number[] };
  for (let i = 0; i < trials; i++) {
    let s: number;
    let r: number;
    if (i % 2 === 0) {
      s = await subject(i);
      r = await reference(i);
    } else {
      r = await reference(i);
      s = await subject(i);
    }
    out.subject.push(s);
    out.reference.push(r);
    out.ratios.push(s / r);
  }
  return out;
}

/** A figure from paired samples, with its goal judged on the median ratio (or the subject's median). */
export function figure(f: {
  id: string;
  title: string;
  unit: string;
  subject: { label: string; samples: number[] };
  reference?: { label: string; samples: number[] };
  ratios?: number[];
  goal?: Goal;
  notes?: string[];
}): Figure {
  const subject = { label: f.subject.label, stats: stats(f.subject.samples), samples: f.subject.samples.map((v) => round(v, 4)) };
  const out: Figure = { id: f.id, title: f.title, unit: f.unit, subject };
  if (f.reference) out.reference = { label: f.reference.label, stats: stats(f.reference.samples), samples: f.reference.samples.map((v) => round(v, 4)) };
  const ratios = f.ratios ?? (f.reference ? f.subject.samples.map((v, i) => v / f.reference!.samples[i]!) : undefined);
  if (ratios && ratios.length > 0) out.ratio = stats(ratios);
  if (f.goal) {
    out.goal = f.goal;
    const v = f.goal.of === 'ratio' ? out.ratio?.median : subject.stats.median;
    out.met = v !== undefined && (f.goal.op === '>=' ? v >= f.goal.value : v <= f.goal.value);
  }
  if (f.notes?.length) out.notes = f.notes;
  return out;
}

/** The conditions every report carries: what the figures depend on. */
export function conditions(): Record<string, string | number> {
  const c = cpus();
  return {
    swarmbench: VERSION,
    node: process.version,
    kernel: release(),
    cpuModel: c[0]?.model ?? 'unknown',
    cpus: c.length,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
  };
}

const fmt = (v: number): string => {
  const a = Math.abs(v);
  if (a >= 1000) return String(Math.round(v));
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
};

/** The Markdown of a whole report (docs/performance.md quotes it). */
export function markdown(r: { startedAt: string; conditions: Record<string, string | number>; sections: Section[] }): string {
  const lines: string[] = [`# SwarmBench's own benchmarks (${r.startedAt})`, ''];
  lines.push(Object.entries(r.conditions).map(([k, v]) => `${k}: ${v}`).join(' · '), '');
  for (const s of r.sections) {
    lines.push(`## ${s.title}`, '', s.method, '');
    if (s.skipped) {
      lines.push(`**Skipped:** ${s.skipped}`, '');
      continue;
    }
    lines.push('| figure | subject (median / p95, n) | reference (median / p95, n) | ratio (median / p95) | goal | met |');
    lines.push('|---|---|---|---|---|---|');
    for (const f of s.figures) {
      const side = (x: { label: string; stats: Stats } | undefined): string =>
        x ? `${x.label}: ${fmt(x.stats.median)} / ${fmt(x.stats.p95)} ${f.unit}, n=${x.stats.n}` : '—';
      const ratio = f.ratio ? `${fmt(f.ratio.median)} / ${fmt(f.ratio.p95)}` : '—';
      const met = f.met === undefined ? '—' : f.met ? 'yes' : '**no**';
      lines.push(`| ${f.title} | ${side(f.subject)} | ${side(f.reference)} | ${ratio} | ${f.goal?.text ?? '—'} | ${met} |`);
    }
    const notes = s.figures.flatMap((f) => (f.notes ?? []).map((n) => `- ${f.title}: ${n}`));
    if (notes.length) lines.push('', ...notes);
    lines.push('', `(${round(s.wallSeconds, 1)} s)`, '');
  }
  return lines.join('\n');
}
