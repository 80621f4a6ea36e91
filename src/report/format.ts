/**
 * Number and text formatting shared by the report renderers (terminal, Markdown, CSV, JUnit), so
 * that one figure reads the same everywhere.
 */
import type { Environment, TestResult } from '../api/schema.ts';

/** A figure for people: 4 significant digits at most, no exponent for everyday magnitudes. */
export function num(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (Number.isInteger(v) && a < 1e9) return String(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a >= 0.001) return v.toPrecision(3);
  return v.toExponential(2);
}

/** A signed figure: "+12.3", "−4.56". */
export function signed(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return v > 0 ? `+${num(v)}` : v < 0 ? `-${num(-v)}` : '0';
}

export function pct(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return `${v > 0 ? '+' : ''}${v.toFixed(digits)} %`;
}

export function valueText(t: Pick<TestResult, 'value' | 'unit'>): string {
  return t.value === null ? '—' : `${num(t.value)} ${t.unit}`;
}

export function targetText(t: Pick<TestResult, 'target'>): string {
  return `${t.target.op}${t.target.value}`;
}

export function durationText(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Cut to `width` characters, ending with an ellipsis when cut. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return '';
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

/** Word-wraps `text` to `width` columns; continuation lines get `indent`. */
export function wrap(text: string, width: number, indent = ''): string[] {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    const room = width - (lines.length === 0 ? 0 : indent.length);
    if (line && line.length + 1 + w.length > room) {
      lines.push(line);
      line = w;
    } else {
      line = line ? `${line} ${w}` : w;
    }
  }
  if (line) lines.push(line);
  return lines.map((l, i) => (i === 0 ? truncate(l, width) : indent + truncate(l, width - indent.length)));
}

/**
 * What ran as the agents (`environment.agents`), for the reports: "reference agent (image
 * local)", "command: node my-agent.js", "3 fixed agents at http://...", "image x@sha256:...".
 */
export function agentsText(a: NonNullable<Environment['agents']>): string {
  const digest = a.digest ? `, digest ${a.digest}` : '';
  if (a.kind === 'reference') return `reference agent (image ${a.image ?? 'local'}${digest})`;
  if (a.kind === 'command') return `command: ${truncate(a.command ?? '', 200)} (one process per agent)`;
  if (a.kind === 'urls') {
    const urls = a.urls ?? [];
    const count = a.count ?? urls.length;
    return `${count} fixed agent${count === 1 ? '' : 's'} at ${urls.slice(0, 3).join(', ')}${count > 3 ? ', ...' : ''} (started by the user)`;
  }
  return `image ${a.image ?? '?'}${a.digest ? digest : ' (digest not recorded)'}`;
}
