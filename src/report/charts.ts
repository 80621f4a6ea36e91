/**
 * ASCII charts for the terminal and Markdown reports, where a picture reads faster than numbers:
 * throughput and latency by agent count (4.1–4.5), throughput by batch size (2.2) and latency
 * percentiles of the latency tests. Plain ASCII (no colour, no box drawing), so that they read the
 * same in a terminal, a CI log and a Markdown code block. Each chart fits `width` columns.
 */
import type { ResultDocument, TestResult } from '../api/schema.ts';
import { num, truncate } from './format.ts';

export interface BarRow {
  label: string;
  value: number;
  /** Drawn as '.' beyond the bar: what the value falls short of (the offered load). */
  ghost?: number;
  text: string;
}

/** A linear horizontal bar chart: '#' up to the value, '.' up to the ghost. */
export function barChart(title: string, rows: readonly BarRow[], width: number): string[] {
  if (rows.length === 0) return [];
  const labelW = Math.min(28, Math.max(...rows.map((r) => r.label.length)));
  const textW = Math.min(36, Math.max(...rows.map((r) => r.text.length)));
  const barW = Math.max(10, width - labelW - textW - 6);
  const max = Math.max(...rows.map((r) => Math.max(r.value, r.ghost ?? 0)));
  const len = (v: number) => (max > 0 && v > 0 ? Math.max(1, Math.round((v / max) * barW)) : 0);
  const out = [title];
  for (const r of rows) {
    const a = len(r.value);
    const g = r.ghost !== undefined ? Math.max(a, len(r.ghost)) : a;
    const bar = '#'.repeat(a) + '.'.repeat(g - a);
    out.push(`  ${truncate(r.label, labelW).padStart(labelW)} |${bar.padEnd(barW)}| ${truncate(r.text, textW)}`);
  }
  return out;
}

export interface RangeRow {
  label: string;
  p50: number;
  p95: number;
  p99: number;
}

/**
 * Percentiles on a log scale: '#' up to p50, '=' up to p95, '-' up to p99, with decade ticks
 * under the chart.
 */
export function percentileChart(title: string, unit: string, rows: readonly RangeRow[], width: number): string[] {
  const ok = rows.filter((r) => r.p50 > 0 && r.p95 > 0 && r.p99 > 0);
  if (ok.length === 0) return [];
  const texts = ok.map((r) => `${num(r.p50)} / ${num(r.p95)} / ${num(r.p99)}`);
  const labelW = Math.min(28, Math.max(...ok.map((r) => r.label.length)));
  const textW = Math.max(...texts.map((t) => t.length), 'p50 / p95 / p99'.length);
  const barW = Math.max(10, width - labelW - textW - 6);
  const lo = Math.floor(Math.log10(Math.min(...ok.map((r) => r.p50))));
  let hi = Math.ceil(Math.log10(Math.max(...ok.map((r) => r.p99))));
  if (hi <= lo) hi = lo + 1;
  const pos = (v: number) => Math.max(1, Math.min(barW, Math.round(((Math.log10(v) - lo) / (hi - lo)) * barW)));
  const out = [title, `  ${''.padStart(labelW)}  ${'# to p50, = to p95, - to p99'.padEnd(barW)}  ${'p50 / p95 / p99'.padStart(textW)}`];
  ok.forEach((r, i) => {
    const a = pos(r.p50);
    const b = Math.max(a, pos(r.p95));
    const c = Math.max(b, pos(r.p99));
    const bar = '#'.repeat(a) + '='.repeat(b - a) + '-'.repeat(c - b);
    out.push(`  ${truncate(r.label, labelW).padStart(labelW)} |${bar.padEnd(barW)}| ${texts[i]!.padStart(textW)}`);
  });
  // Decade ticks: '+' on the axis (index 0 is the bar's left edge, 10^lo), the value under it.
  const axis = Array.from({ length: barW + 1 }, () => '-');
  const labels = Array.from({ length: barW + 8 }, () => ' ');
  let free = 0;
  for (let d = lo; d <= hi; d++) {
    const p = d === lo ? 0 : pos(10 ** d);
    axis[p] = '+';
    const text = decade(d);
    const start = Math.max(0, Math.min(p - Math.floor(text.length / 2), labels.length - text.length));
    if (start >= free) {
      for (let k = 0; k < text.length; k++) labels[start + k] = text[k]!;
      free = start + text.length + 1;
    }
  }
  out.push(`  ${''.padStart(labelW)} ${axis.join('')} ${unit}, log scale`);
  out.push(`  ${''.padStart(labelW)} ${labels.join('').trimEnd()}`);
  return out;
}

function decade(d: number): string {
  const v = 10 ** d;
  if (d >= 6) return `${10 ** (d - 6)}M`;
  if (d >= 3) return `${10 ** (d - 3)}k`;
  if (d >= 0) return String(v);
  return v.toFixed(-d);
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined);
const n = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

const TO_MS: Record<string, number> = { ms: 1, 'ms/agent': 1, s: 1000 };

/**
 * The figures the charts draw, read from a document once: the terminal and Markdown reports draw
 * them in ASCII (`charts`), the results UI (src/ui/views.ts) with a charting library.
 */
export interface ChartFigures {
  /** The scalability steps (4.1–4.5) that name their pool size, by agent count. */
  steps: {
    test: TestResult;
    agents: number;
    throughput?: number;
    /** N × the one-agent throughput, or (documents from before 4.x measured saturation) the offered rate. */
    ideal?: number;
    latency?: { p50: number; p95: number; p99: number };
  }[];
  /** True when the ideal is N × T(1) (some step has `idealThroughput`), false when it is the offered rate. */
  saturation: boolean;
  /** Inference throughput by batch size (2.2). */
  batches: { batch: number; samplesPerSec: number; p50Ms?: number }[];
  /** The backend 2.2 ran on, when it says. */
  backend?: string;
  /** The latency tests' percentiles in ms (tests whose unit is a time, with at least two samples). */
  latencies: (RangeRow & { id: string; name: string })[];
}

export function chartFigures(doc: ResultDocument): ChartFigures {
  const steps = doc.tests
    .filter((t) => t.category === 'scalability' && t.details && n(t.details.agents) !== undefined)
    .map((t) => {
      const d = t.details!;
      const l = obj(d.latencyMs);
      const p50 = n(l?.p50);
      const p95 = n(l?.p95);
      const p99 = n(l?.p99);
      const throughput = n(d.throughput);
      const ideal = n(d.idealThroughput) ?? n(d.offeredRate);
      return {
        test: t,
        agents: n(d.agents)!,
        ...(throughput !== undefined ? { throughput } : {}),
        ...(ideal !== undefined ? { ideal } : {}),
        ...(p50 !== undefined && p95 !== undefined && p99 !== undefined ? { latency: { p50, p95, p99 } } : {}),
      };
    })
    .sort((a, b) => a.agents - b.agents);
  const batch = doc.tests.find((t) => t.id === '2.2');
  const batches = (Array.isArray(batch?.details?.batches) ? (batch.details.batches as unknown[]).map(obj) : []).flatMap((b) => {
    const size = n(b?.batch);
    const rate = n(b?.samplesPerSec);
    const p50 = n(b?.p50Ms);
    return size !== undefined && rate !== undefined ? [{ batch: size, samplesPerSec: rate, ...(p50 !== undefined ? { p50Ms: p50 } : {}) }] : [];
  });
  const latencies = doc.tests.flatMap((t) => {
    const k = TO_MS[t.unit];
    const d = t.distribution;
    if (k === undefined || !d || d.n < 2) return [];
    return [{ id: t.id, name: t.name, label: `${t.id} ${t.name}`, p50: d.p50 * k, p95: d.p95 * k, p99: d.p99 * k }];
  });
  return {
    steps,
    saturation: steps.some((s) => n(s.test.details!.idealThroughput) !== undefined),
    batches,
    ...(typeof batch?.details?.backend === 'string' ? { backend: batch.details.backend } : {}),
    latencies,
  };
}

/** Every chart the document has data for, each followed by a blank line. */
export function charts(doc: ResultDocument, width: number): string[] {
  const out: string[] = [];
  const add = (lines: string[]) => {
    if (lines.length) out.push(...lines, '');
  };
  const f = chartFigures(doc);
  add(
    barChart(
      f.saturation
        ? 'Throughput at saturation by agent count (tasks/s; # completed, . N × T(1) not reached)'
        : 'Throughput by agent count (tasks/s; # served, . offered but not served)',
      f.steps.flatMap((s) => {
        if (s.throughput === undefined) return [];
        const thr = s.throughput;
        const note = s.test.result === 'Skipped' ? 'skipped' : s.test.value !== null ? `${num(s.test.value)} %` : '';
        return [
          {
            label: `${s.agents} agents`,
            value: thr,
            ...(s.ideal !== undefined ? { ghost: s.ideal } : {}),
            text: `${num(thr)}${s.ideal !== undefined ? ` / ${num(s.ideal)}` : ''}  ${note}`.trimEnd(),
          },
        ];
      }),
      width,
    ),
  );
  add(percentileChart('Task latency by agent count', 'ms', f.steps.flatMap((s) => (s.latency ? [{ label: `${s.agents} agents`, ...s.latency }] : [])), width));
  add(
    barChart(
      `Inference throughput by batch size (samples/s${f.backend !== undefined ? `, ${f.backend}` : ''})`,
      f.batches.map((b) => ({ label: `batch ${b.batch}`, value: b.samplesPerSec, text: `${num(b.samplesPerSec)}${b.p50Ms !== undefined ? `  p50 ${num(b.p50Ms)} ms` : ''}` })),
      width,
    ),
  );
  add(percentileChart('Latency percentiles of the latency tests', 'ms', f.latencies, width));
  return out;
}
