/**
 * The Prometheus observations of a result document (`observations`, src/operator/observe.ts) as
 * the reports show them: the rows of summary.csv and of report.md's table, the lines of the
 * terminal report, and the short form in the run's status (`status.observations`, written by
 * src/operator/finish.ts).
 *
 * An unavailable figure (`value: null`) always shows its reason and never a number: empty value
 * and the reason in the CSV, "unavailable: reason" in the reports, no `value` but a `reason` in
 * the status. Prometheus not answering at all is one row with its reason; a step without figures
 * (its window not valid) is one row with the step's reason. Per-series figures of extra queries
 * and the by-pool-size breakdown stay in results.json only.
 */
import type { BenchmarkRunStatus, ObservedMetric, Observations } from '../api/schema.ts';
import { num } from './format.ts';

/** One figure of one step, or a step (or the whole of Prometheus) without figures and why. */
export interface ObservationRow {
  /** The step; empty for the row that says Prometheus was unavailable. */
  step: string;
  category: string;
  /** The figure's name; empty when the row only carries a reason. */
  name: string;
  unit: string;
  statistic: string;
  source: string;
  value: number | null;
  /** Why `value` is null (always set when it is). */
  reason?: string;
  note?: string;
}

/** Every figure of the observations as rows, step by step, in the document's order. */
export function observationRows(obs: Observations): ObservationRow[] {
  if (!obs.prometheus.available) {
    return [{ step: '', category: '', name: '', unit: '', statistic: '', source: 'prometheus', value: null, reason: `Prometheus unavailable: ${obs.prometheus.reason ?? 'no reason given'}` }];
  }
  const rows: ObservationRow[] = [];
  for (const s of obs.steps) {
    if (s.metrics.length === 0) {
      rows.push({ step: s.step, category: s.category, name: '', unit: '', statistic: '', source: '', value: null, reason: s.reason ?? 'no figures for this step' });
      continue;
    }
    for (const m of s.metrics) {
      rows.push({
        step: s.step,
        category: s.category,
        name: m.name,
        unit: m.unit,
        statistic: m.statistic,
        source: m.source,
        value: m.value,
        ...(m.value === null ? { reason: m.reason ?? s.reason ?? 'no value' } : {}),
        ...(m.note ? { note: m.note } : {}),
      });
    }
  }
  return rows;
}

/** How many figures were measured and how many are unavailable (over every step). */
export function observationCounts(obs: Observations): { available: number; unavailable: number } {
  let available = 0;
  let unavailable = 0;
  for (const s of obs.steps) {
    for (const m of s.metrics) {
      if (m.value === null) unavailable++;
      else available++;
    }
  }
  return { available, unavailable };
}

/** A figure for people: bytes in KiB/MiB/GiB, else the number and its unit; `—` when null. */
export function observedValueText(m: Pick<ObservedMetric, 'value' | 'unit'>): string {
  const v = m.value;
  if (v === null || !Number.isFinite(v)) return '—';
  if (m.unit === 'bytes') {
    const a = Math.abs(v);
    if (a >= 2 ** 30) return `${num(v / 2 ** 30)} GiB`;
    if (a >= 2 ** 20) return `${num(v / 2 ** 20)} MiB`;
    if (a >= 2 ** 10) return `${num(v / 2 ** 10)} KiB`;
    return `${num(v)} B`;
  }
  return m.unit ? `${num(v)} ${m.unit}` : num(v);
}

/** The headline of the observations: "Prometheus <url>: 12 figures, 2 unavailable" or why none. */
export function observationHeadline(obs: Observations): string {
  const p = obs.prometheus;
  if (!p.available) return `Prometheus unavailable: ${p.reason ?? 'no reason given'}`;
  const c = observationCounts(obs);
  return `Prometheus${p.url ? ` ${p.url}` : ''}: ${c.available} figure${c.available === 1 ? '' : 's'} over ${obs.steps.length} step${obs.steps.length === 1 ? '' : 's'}, ${c.unavailable} unavailable`;
}

/** The figures the status shows per step; the GPU figure only for the GPU step. */
export const KEY_FIGURES = ['agent_memory_bytes', 'agent_cpu_cores', 'pool_size', 'gpu_utilization_percent'] as const;
/** At most this many figures in the status, reasons cut to `STATUS_REASON_CHARS`. */
export const STATUS_FIGURES_MAX = 32;
export const STATUS_REASON_CHARS = 200;

export type ObservationStatus = NonNullable<BenchmarkRunStatus['observations']>;

const cut = (text: string, n: number): string => (text.length > n ? `${text.slice(0, n - 3)}...` : text);

/**
 * The short form for `status.observations`: whether Prometheus answered (else its reason), the
 * counts, and the key figures (`KEY_FIGURES`) of every step, an unavailable one with its reason
 * and no value. Bounded: at most `STATUS_FIGURES_MAX` figures, each reason at most
 * `STATUS_REASON_CHARS` characters.
 */
export function observationStatus(obs: Observations, attempt: number): ObservationStatus {
  const c = observationCounts(obs);
  const figures: ObservationStatus['figures'] = [];
  for (const s of obs.steps) {
    for (const m of s.metrics) {
      if (!(KEY_FIGURES as readonly string[]).includes(m.name)) continue;
      if (m.name === 'gpu_utilization_percent' && s.category !== 'gpu') continue;
      figures.push({
        step: s.step,
        name: m.name,
        unit: m.unit,
        ...(m.value !== null && Number.isFinite(m.value) ? { value: m.value } : { reason: cut(m.reason ?? s.reason ?? 'no value', STATUS_REASON_CHARS) }),
      });
    }
  }
  const reason = obs.prometheus.available ? undefined : cut(obs.prometheus.reason ?? 'no reason given', 2 * STATUS_REASON_CHARS);
  return {
    attempt,
    prometheus: obs.prometheus.available ? 'available' : 'unavailable',
    ...(reason ? { reason } : {}),
    available: c.available,
    unavailable: c.unavailable,
    figures: figures.slice(0, STATUS_FIGURES_MAX),
  };
}
