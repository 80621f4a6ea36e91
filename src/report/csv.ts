/**
 * `summary.csv`: the run's key figures against their targets, for spreadsheets.
 *
 * Columns: Metric, Value, Target, Status, then Unit, Id, Category, Statistic, Samples, P50, P95,
 * P99, Reason, and with a baseline comparison Baseline, ChangePct, Comparison. The first rows
 * are the run's own (success rate, tests passed/failed/skipped, regressions), then a row for every
 * test in catalogue order, then with Prometheus observations (a cluster run) a row for every
 * observed figure (observations.ts): Metric `Observed <step> <figure> (<source>)`, its Value, Unit,
 * the step's Category and the Statistic; an unavailable figure has an empty Value, Status `N/A`
 * and its Reason (never a 0); Prometheus unavailable is one `Observed Prometheus` row with the
 * reason. RFC 4180: comma-separated, CRLF line ends, fields with a comma, a quote
 * or a line break quoted, quotes doubled. Numbers are written as measured (no rounding) with a
 * dot as the decimal separator; an absent value is an empty field.
 */
import type { ResultDocument } from '../api/schema.ts';
import { observationRows } from './observations.ts';

const HEAD = ['Metric', 'Value', 'Target', 'Status', 'Unit', 'Id', 'Category', 'Statistic', 'Samples', 'P50', 'P95', 'P99', 'Reason'];
const BASE_HEAD = ['Baseline', 'ChangePct', 'Comparison'];

export function csvField(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const STATUS = { Passed: 'PASS', Failed: 'FAIL', Skipped: 'SKIP' } as const;

export function renderCsv(doc: ResultDocument): string {
  const cmp = doc.comparison;
  const head = cmp ? [...HEAD, ...BASE_HEAD] : HEAD;
  const rows: (string | number | null | undefined)[][] = [];
  const pad = (r: (string | number | null | undefined)[]) => [...r, ...Array<string>(head.length - r.length).fill('')];
  const s = doc.summary;
  const rateTarget = doc.targets.successRate;
  rows.push(pad(['Success rate', s.successRate, rateTarget !== undefined ? `>=${rateTarget}` : '', s.verdict === 'Passed' ? 'PASS' : 'FAIL', '%']));
  rows.push(pad(['Tests passed', s.passed, '', '', 'tests']));
  rows.push(pad(['Tests failed', s.failed, '', '', 'tests']));
  rows.push(pad(['Tests skipped', s.skipped, '', '', 'tests']));
  if (s.regressions !== undefined) rows.push(pad(['Regressions', s.regressions, s.regressionGate ? '<=0' : '', s.regressionGate ? (s.regressions > 0 ? 'FAIL' : 'PASS') : '', 'metrics']));
  const byId = new Map(cmp?.metrics.map((m) => [m.id, m]));
  for (const t of doc.tests) {
    const row: (string | number | null | undefined)[] = [
      `${t.id} ${t.name}`,
      t.value,
      `${t.target.op}${t.target.value}`,
      STATUS[t.result],
      t.unit,
      t.id,
      t.category,
      t.statistic,
      t.samples,
      t.distribution?.p50,
      t.distribution?.p95,
      t.distribution?.p99,
      t.result === 'Passed' ? '' : t.reason,
    ];
    if (cmp) {
      const m = byId.get(t.id);
      row.push(m?.baseline.median, m?.changePct, m?.verdict);
    }
    rows.push(row);
  }
  for (const o of doc.observations ? observationRows(doc.observations) : []) {
    const what = o.step ? `${o.step}${o.name ? ` ${o.name}` : ''}` : 'Prometheus';
    rows.push(pad([`Observed ${what}${o.source && o.name ? ` (${o.source})` : ''}`, o.value, '', o.value === null ? 'N/A' : '', o.unit, '', o.category, o.statistic, '', '', '', '', o.reason ?? '']));
  }
  return [head, ...rows].map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n';
}
