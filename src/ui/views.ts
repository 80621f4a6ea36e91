/**
 * What the results UI draws, computed here from result documents with the report's own code, so
 * the browser only lays it out: the charts' series (report/charts.ts `chartFigures`, the figures
 * the ASCII charts draw), the headline figures (report/headline.ts), a comparison of two runs
 * (report/baseline.ts `compareRuns`: Mann–Whitney U and the Hodges–Lehmann shift) and the trend
 * of each test over runs with its lasting shift (report/trend.ts). Pure functions.
 */
import type { Comparison, ResultDocument } from '../api/schema.ts';
import { compareRuns } from '../report/baseline.ts';
import { chartFigures } from '../report/charts.ts';
import { ComparisonRefusedError } from '../report/fingerprint.ts';
import { targetText } from '../report/format.ts';
import { headlineFigures } from '../report/headline.ts';
import { addRun, emptyHistory, type MachineChange, TrendInputError, trendsOf } from '../report/trend.ts';
import { HISTORY_MAX_POINTS, type History } from '../api/history.ts';

export interface SeriesSpec {
  label: string;
  values: (number | null)[];
  /** How the series is drawn; each has its own dash or marker, so colour is not the only signal. */
  style: 'line' | 'dashed' | 'dotted' | 'points';
}

/** One chart: x values (numbers, or category labels at 0, 1, 2…), a y axis and its series. */
export interface ChartSpec {
  id: string;
  title: string;
  x: { label: string; values: number[]; categories?: string[]; log?: boolean; time?: boolean };
  y: { label: string; log?: boolean };
  series: SeriesSpec[];
}

/** Every chart the document has data for. */
export function chartsOf(doc: ResultDocument): ChartSpec[] {
  const f = chartFigures(doc);
  const out: ChartSpec[] = [];
  const thr = f.steps.filter((s) => s.throughput !== undefined);
  if (thr.length) {
    out.push({
      id: 'throughput-agents',
      title: f.saturation ? 'Throughput at saturation by agent count' : 'Throughput by agent count',
      x: { label: 'agents', values: thr.map((s) => s.agents), log: true },
      y: { label: 'tasks/s' },
      series: [
        { label: f.saturation ? 'completed' : 'served', values: thr.map((s) => s.throughput!), style: 'line' },
        ...(thr.some((s) => s.ideal !== undefined) ? [{ label: f.saturation ? 'ideal: N × T(1)' : 'offered', values: thr.map((s) => s.ideal ?? null), style: 'dashed' as const }] : []),
      ],
    });
  }
  const lat = f.steps.filter((s) => s.latency);
  if (lat.length) {
    out.push({
      id: 'latency-agents',
      title: 'Task latency percentiles by agent count',
      x: { label: 'agents', values: lat.map((s) => s.agents), log: true },
      y: { label: 'ms', log: true },
      series: percentileSeries(lat.map((s) => s.latency!)),
    });
  }
  if (f.batches.length) {
    out.push({
      id: 'throughput-batch',
      title: `Inference throughput by batch size${f.backend !== undefined ? ` (${f.backend})` : ''}`,
      x: { label: 'batch size', values: f.batches.map((b) => b.batch), log: true },
      y: { label: 'samples/s' },
      series: [{ label: 'samples/s', values: f.batches.map((b) => b.samplesPerSec), style: 'line' }],
    });
  }
  if (f.latencies.length) {
    out.push({
      id: 'latency-tests',
      title: 'Latency percentiles of the latency tests',
      x: { label: 'test', values: f.latencies.map((_, i) => i), categories: f.latencies.map((l) => l.id) },
      y: { label: 'ms', log: true },
      series: percentileSeries(f.latencies).map((s) => ({ ...s, style: 'points' as const })),
    });
  }
  return out;
}

function percentileSeries(rows: readonly { p50: number; p95: number; p99: number }[]): SeriesSpec[] {
  return [
    { label: 'p50', values: rows.map((r) => r.p50), style: 'line' },
    { label: 'p95', values: rows.map((r) => r.p95), style: 'dashed' },
    { label: 'p99', values: rows.map((r) => r.p99), style: 'dotted' },
  ];
}

export interface HeadlineView {
  label: string;
  result: 'Passed' | 'Failed' | 'Skipped';
  value: number | null;
  unit: string;
  target: string;
  note: string;
}

export function headlineOf(doc: ResultDocument): HeadlineView[] {
  return headlineFigures(doc).map((h) => {
    if (h.kind === 'test') {
      const t = h.test;
      return { label: h.label, result: t.result, value: t.value, unit: t.unit, target: targetText(t), note: t.result === 'Skipped' ? `skipped: ${t.reason ?? ''}` : `${t.id} ${t.statistic}` };
    }
    return {
      label: h.label,
      result: h.result,
      value: h.worst?.value ?? null,
      unit: '%',
      target: targetText(h.first),
      note: h.worst ? `lowest of ${h.measured} pool sizes (${h.worst.id}${h.agents !== undefined ? `, ${h.agents} agents` : ''})` : 'not measured',
    };
  });
}

/** Two runs compared as `report --baseline` compares them, or why they are not. */
export type ComparisonView = { ok: true; comparison: Comparison; forced: boolean } | { ok: false; refused: string };

export function compareDocs(current: ResultDocument, baseline: ResultDocument, source: string, force: boolean): ComparisonView {
  try {
    return { ok: true, comparison: compareRuns(current, baseline, { source, force }), forced: force };
  } catch (err) {
    if (err instanceof ComparisonRefusedError) return { ok: false, refused: err.message };
    throw err;
  }
}

export interface TrendView {
  id: string;
  name: string;
  unit: string;
  better: 'lower' | 'higher';
  /** One point per run, oldest first: when it started (ms since the epoch), the run, the value comparable with the latest (else null). */
  points: { time: number; run: string; value: number | null }[];
  /** The lasting shift, where it starts (an index into `points`), as report/trend.ts finds it. */
  shift: { index: number; run: string; direction: 'worse' | 'better'; changePct: number | null; p: number; pAdjusted: number; machine: MachineChange | null } | null;
}

/** The trend of every test over the documents (in any order), with the runs that could not give points named. */
export function trendsOfDocs(docs: readonly ResultDocument[]): { tests: TrendView[]; skipped: string[] } {
  let history: History = emptyHistory();
  const skipped: string[] = [];
  for (const doc of docs) {
    try {
      history = addRun(history, doc, { maxPoints: HISTORY_MAX_POINTS, samples: 0 });
    } catch (err) {
      if (!(err instanceof TrendInputError)) throw err;
      skipped.push(`${doc.run.name}: ${err.message}`);
    }
  }
  return { tests: trendsOfHistory(history), skipped };
}

/** The trend of every test of a history (a schedule's, operator/schedule-history.ts), with its lasting shift. */
export function trendsOfHistory(history: History): TrendView[] {
  return trendsOf(history).map((t): TrendView => {
    const h = history.tests.find((x) => x.id === t.id)!;
    return {
      id: t.id,
      name: t.name,
      unit: t.last.unit,
      better: t.better,
      points: h.points.map((p, i) => ({ time: Date.parse(p.time), run: p.run, value: t.values[i] ?? null })),
      shift: t.shift ? { index: t.shift.index, run: t.shift.run, direction: t.shift.direction, changePct: t.shift.changePct, p: t.shift.p, pAdjusted: t.shift.pAdjusted, machine: t.shift.machine } : null,
    };
  });
}
