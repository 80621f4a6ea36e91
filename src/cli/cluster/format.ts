/**
 * Terminal formatting of runs for `get` and `describe`: ages as kubectl writes them, aligned
 * tables, and the row of one run (the CRD's printer columns plus attempt and current step). Pure.
 */
import type { RunObject } from './runs.ts';

/** `42s`, `5m`, `3h`, `12d`: kubectl's short ages (seconds under 2 minutes, minutes under 3 hours…). */
export function age(fromMs: number, nowMs: number): string {
  const s = Math.max(0, Math.floor((nowMs - fromMs) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

export const toMs = (t: string | Date | undefined): number | undefined => (t === undefined ? undefined : new Date(t).getTime());

/** Columns aligned with two spaces between them; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return `${all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n')}\n`;
}

/** Cuts a cell to `max` characters (hostile or long messages stay on their line). */
export function cell(s: string | undefined, max = 80): string {
  const one = (s ?? '').replace(/\s*\n\s*/g, '; ');
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

export const RUN_COLUMNS = ['NAME', 'PHASE', 'ATTEMPT', 'PASSED', 'SUCCESS', 'VERDICT', 'STEP', 'AGE'] as const;

/** One run as a row of RUN_COLUMNS (with the namespace first when `withNamespace`). */
export function runRow(r: RunObject, nowMs: number, withNamespace = false): string[] {
  const st = r.status ?? {};
  const s = st.summary;
  const running = st.phase === 'Running' || st.phase === 'Pending';
  const p = st.progress;
  const step = running && p?.currentStep ? `${p.currentStep} (${Math.min((p.completedSteps ?? 0) + 1, p.totalSteps ?? 0)}/${p.totalSteps ?? '?'})` : '';
  const created = toMs(r.metadata.creationTimestamp);
  const row = [
    cell(r.metadata.name, 63),
    st.phase ?? 'Pending',
    st.attempt !== undefined ? String(st.attempt) : '',
    s && !running ? `${s.passed}/${s.total}` : '',
    s && !running && s.successRate !== undefined && s.successRate !== null ? `${s.successRate}%` : '',
    !running ? (s?.verdict ?? '') : '',
    cell(step, 40),
    created !== undefined ? age(created, nowMs) : '',
  ];
  return withNamespace ? [cell(r.metadata.namespace ?? '', 63), ...row] : row;
}

export function runsTable(runs: readonly RunObject[], nowMs: number, withNamespace = false): string {
  const header = withNamespace ? ['NAMESPACE', ...RUN_COLUMNS] : [...RUN_COLUMNS];
  const sorted = [...runs].sort((a, b) => (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') || a.metadata.name.localeCompare(b.metadata.name));
  return table(header, sorted.map((r) => runRow(r, nowMs, withNamespace)));
}
