/**
 * The terminal report that `swarmbench run` prints at the end and `swarmbench report` prints
 * from a result document alone: header, one table per category, the headline metrics against
 * their targets, ASCII charts, a cluster run's Prometheus observations (one line per figure, an
 * unavailable one with its reason: observations.ts), recommendations by priority, the baseline comparison, and the
 * verdict naming every failed test with its value and target.
 *
 * It is a pure function of the document (and the style), so the report of a file is the report
 * the run printed. At most 100 columns; colour only on a TTY without NO_COLOR (and TERM≠dumb):
 * without colour the text is the same minus the escape codes.
 */
import type { Comparison, Recommendation, ResultDocument, TestResult } from '../api/schema.ts';
import { CATEGORIES } from '../api/schema.ts';
import { charts } from './charts.ts';
import { headlineFigures } from './headline.ts';
import { fmtP } from './baseline.ts';
import { cpuSetText } from './cpuset.ts';
import { hostLoadText } from './hostload.ts';
import { runnerText } from './machine.ts';
import { observationHeadline, observationRows, observedValueText } from './observations.ts';
import { agentsText, durationText, num, pct, signed, targetText, truncate, valueText, wrap } from './format.ts';
import { recommend } from './recommend.ts';
import { failedTestLine } from './verdict.ts';

export interface Style {
  color: boolean;
}

export const REPORT_WIDTH = 100;

export function styleFor(stream: { isTTY?: boolean }): Style {
  return { color: Boolean(stream.isTTY) && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb' };
}

const C = { red: 31, green: 32, yellow: 33, cyan: 36, dim: 2, bold: 1 } as const;
function paint(s: Style, code: keyof typeof C, text: string): string {
  return s.color ? `\x1b[${C[code]}m${text}\x1b[0m` : text;
}

/** Kept for callers of the first version: a value and its unit. */
export function formatValue(v: number | null, unit: string): string {
  return v === null ? '—' : `${num(v)} ${unit}`;
}

function mark(s: Style, r: TestResult['result']): string {
  if (r === 'Passed') return paint(s, 'green', 'PASS');
  if (r === 'Failed') return paint(s, 'red', 'FAIL');
  return paint(s, 'yellow', 'SKIP');
}

function priorityMark(s: Style, p: Recommendation['priority']): string {
  const text = p.padEnd(6);
  return p === 'HIGH' ? paint(s, 'red', text) : p === 'MEDIUM' ? paint(s, 'yellow', text) : paint(s, 'cyan', text);
}

function section(s: Style, title: string, extra = ''): string {
  return `${paint(s, 'bold', title)}${extra ? `  ${extra}` : ''}`;
}

export interface ReportOptions {
  width?: number;
}

/** The whole terminal report. */
export function renderReport(doc: ResultDocument, s: Style, opts: ReportOptions = {}): string {
  const width = opts.width ?? REPORT_WIDTH;
  const lines: string[] = [];
  lines.push(...header(doc, s, width), '');
  lines.push(...testTables(doc, s, width));
  const head = headline(doc, s, width);
  if (head.length) lines.push(section(s, 'HEADLINE METRICS'), ...head, '');
  const ch = charts(doc, width - 2);
  if (ch.length) lines.push(section(s, 'CHARTS'), ...ch);
  if (doc.observations) lines.push(...observations(doc, s, width), '');
  lines.push(...recommendations(doc.recommendations ?? recommend(doc), s, width), '');
  if (doc.comparison) lines.push(...baseline(doc.comparison, s, width), '');
  lines.push(...verdict(doc, s, width));
  return lines.map((l) => l.trimEnd()).join('\n') + '\n';
}

/** The test tables and the verdict only (what the first version printed). */
export function renderSummary(doc: ResultDocument, s: Style): string {
  return [...header(doc, s, REPORT_WIDTH), '', ...testTables(doc, s, REPORT_WIDTH), ...verdict(doc, s, REPORT_WIDTH)].join('\n') + '\n';
}

function header(doc: ResultDocument, s: Style, width: number): string[] {
  const env = doc.environment;
  const ms = Date.parse(doc.run.finishedAt) - Date.parse(doc.run.startedAt);
  const title = `SwarmBench ${doc.run.name} · ${doc.run.mode} · attempt ${doc.run.attempt}`;
  const machine =
    `${env.platform} · node ${env.node} · ${env.cpus} × ${truncate(env.cpuModel, 40)} · ${(env.memoryBytes / 2 ** 30).toFixed(0)} GiB` +
    (env.inference ? ` · inference ${env.inference.backend}${env.inference.gpuInUse ? ' (GPU)' : ''}` : '') +
    (env.prometheus ? ` · monitoring ${env.prometheus.mode}` : '');
  const sut = [env.agents ? `agents: ${agentsText(env.agents)}` : null, env.cpuSet ? `CPUs: ${cpuSetText(env.cpuSet)}` : null, env.hostLoad ? `host: ${hostLoadText(env.hostLoad)}` : null].filter((x): x is string => x !== null);
  return [
    paint(s, 'bold', truncate(title, width)),
    paint(s, 'dim', truncate(machine, width)),
    ...sut.map((line) => paint(s, 'dim', truncate(line, width))),
    ...(env.runners ?? []).map((r) => paint(s, 'dim', truncate(`runner ${runnerText(r, true)}`, width))),
    paint(s, 'dim', truncate(`started ${doc.run.startedAt} · took ${durationText(ms)} · ${doc.run.categories.length === CATEGORIES.length ? 'all categories' : `categories ${doc.run.categories.join(', ')}`}`, width)),
  ];
}

function testTables(doc: ResultDocument, s: Style, width: number): string[] {
  const lines: string[] = [];
  for (const cat of CATEGORIES) {
    const tests = doc.tests.filter((t) => t.category === cat);
    if (!tests.length) continue;
    const passed = tests.filter((t) => t.result === 'Passed').length;
    lines.push(`${paint(s, 'bold', cat)} ${paint(s, 'dim', `${passed}/${tests.length} passed`)}`);
    for (const t of tests) {
      const n = t.samples > 0 ? `n=${t.samples}${t.sampleUnit ? ` ${t.sampleUnit}` : ''}` : '';
      lines.push(
        `  ${mark(s, t.result)} ${t.id.padEnd(4)} ${truncate(t.name, 28).padEnd(28)} ${t.statistic.padEnd(5)} ${truncate(valueText(t), 18).padStart(18)}  ${truncate(targetText(t), 10).padEnd(10)} ${n}`,
      );
      if (t.reason && t.result !== 'Passed') lines.push(paint(s, 'dim', `       ${truncate(t.reason, width - 7)}`));
    }
    lines.push('');
  }
  return lines;
}

/** The four headline figures of the suite, each against its target. */
function headline(doc: ResultDocument, s: Style, width: number): string[] {
  const rows = headlineFigures(doc).map((h): { result: TestResult['result']; label: string; value: string; target: string; note: string } => {
    if (h.kind === 'test') {
      const t = h.test;
      return {
        result: t.result,
        label: h.label,
        value: t.value === null ? '—' : `${num(t.value)} ${t.unit}`,
        target: `${targetText(t)} ${t.unit}`,
        note: t.result === 'Skipped' ? `skipped: ${t.reason ?? ''}` : `${t.id} ${t.statistic}`,
      };
    }
    return {
      result: h.result,
      label: h.label,
      value: h.worst ? `${num(h.worst.value)} %${h.agents !== undefined ? ` at ${h.agents} agents` : ''}` : '—',
      target: `${targetText(h.first)} %`,
      note: h.worst ? `lowest of ${h.measured} pool sizes (${h.worst.id})` : 'not measured',
    };
  });
  return rows.map(
    (r) => `  ${mark(s, r.result)} ${r.label.padEnd(20)} ${truncate(r.value, 24).padEnd(24)} ${truncate(`target ${r.target}`, 18).padEnd(18)} ${truncate(r.note, width - 72)}`,
  );
}

/** The Prometheus observations: the headline, then one line per figure (or why there is none). */
function observations(doc: ResultDocument, s: Style, width: number): string[] {
  const obs = doc.observations!;
  // Reasons are wrapped, not cut (at most 4 lines each): they are the figure.
  const [first, ...rest] = wrap(truncate(observationHeadline(obs), 4 * width), width - 14, '');
  const lines = [section(s, 'OBSERVATIONS', first ?? ''), ...rest.slice(0, 3).map((l) => `  ${l}`)];
  if (!obs.prometheus.available) return lines;
  for (const r of observationRows(obs)) {
    const head = `  ${truncate(r.step, 12).padEnd(12)} ${truncate(r.name || '—', 28).padEnd(28)} `;
    if (r.value === null) {
      const text = wrap(truncate(`unavailable: ${r.reason ?? ''}`, 4 * width), width - head.length, '').slice(0, 4);
      lines.push(...text.map((l, i) => (i === 0 ? head : ' '.repeat(head.length)) + paint(s, 'yellow', l)));
    } else lines.push(head + truncate(`${observedValueText(r).padStart(14)}  ${r.statistic.padEnd(4)} ${r.source}`, width - head.length));
  }
  return lines;
}

function recommendations(recs: readonly Recommendation[], s: Style, width: number): string[] {
  if (recs.length === 0) return [section(s, 'RECOMMENDATIONS', 'none: no rule found anything to act on')];
  const count = (p: string) => recs.filter((r) => r.priority === p).length;
  const lines = [section(s, 'RECOMMENDATIONS', `${count('HIGH')} HIGH · ${count('MEDIUM')} MEDIUM · ${count('INFO')} INFO`)];
  const indent = ' '.repeat(10);
  for (const r of recs) {
    const head = wrap(`${r.category}: ${r.message}`, width - 10, '');
    lines.push(`  ${priorityMark(s, r.priority)}  ${head[0]}`, ...head.slice(1).map((l) => indent + l));
    for (const e of r.evidence) lines.push(...wrap(`- ${e}`, width - 10, '  ').map((l) => indent + l));
    lines.push(...wrap(`> ${r.suggestion}`, width - 10, '  ').map((l) => indent + l));
  }
  return lines;
}

const VERDICT_WORD = { Regressed: 'REGRESSED', Improved: 'improved', NoChange: 'no change', InsufficientSamples: 'too few' } as const;

function baseline(c: Comparison, s: Style, width: number): string[] {
  const b = c.baseline;
  const lines = [
    section(s, 'BASELINE', truncate(`${b.name} attempt ${b.attempt} (${b.mode}, finished ${b.finishedAt})`, width - 10)),
    ...(b.pool?.length ? [truncate(`  pooled with ${b.pool.map((r) => r.name).join(', ')} (${b.pool.length + 1} runs' samples)`, width)] : []),
    ...(b.source ? [truncate(`  from ${b.source}`, width)] : []),
    `  ${c.regressed.length} regressed, ${c.improved.length} improved, ${c.unchanged.length} unchanged, ${c.insufficient.length} not compared`,
    paint(
      s,
      'dim',
      truncate(
        `  two-sided Mann-Whitney U at α ${c.method.alpha} · shift: Hodges–Lehmann, ${Math.round(c.method.confidence * 100)} % CI · a change counts from ${c.method.minEffectPct} %`,
        width,
      ),
    ),
  ];
  for (const w of c.warnings) lines.push(paint(s, 'yellow', truncate(`  ! ${w}`, width)));
  const compared = c.metrics.filter((m) => m.verdict !== 'InsufficientSamples');
  if (compared.length) {
    lines.push(
      paint(s, 'dim', `  ${'id'.padEnd(4)} ${'test'.padEnd(21)} ${'baseline'.padStart(11)} ${'current'.padStart(11)} ${'change'.padStart(8)}  ${'95 % CI of shift'.padEnd(19)} ${'p'.padStart(7)} verdict`),
    );
    for (const m of compared) {
      const unit = m.unit.length <= 4 ? ` ${m.unit}` : '';
      const ci = m.ci ? `[${signed(m.ci[0])}, ${signed(m.ci[1])}]` : '—';
      const word = VERDICT_WORD[m.verdict];
      const v = m.verdict === 'Regressed' ? paint(s, 'red', word) : m.verdict === 'Improved' ? paint(s, 'green', word) : word;
      lines.push(
        `  ${m.id.padEnd(4)} ${truncate(m.name, 21).padEnd(21)} ${truncate(`${num(m.baseline.median)}${unit}`, 11).padStart(11)} ${truncate(`${num(m.current.median)}${unit}`, 11).padStart(11)} ${pct(m.changePct).padStart(8)}  ${truncate(ci, 19).padEnd(19)} ${(m.p === null ? '—' : fmtP(m.p)).padStart(7)} ${v}`,
      );
    }
  }
  const few = c.metrics.filter((m) => m.verdict === 'InsufficientSamples');
  const counted = few.filter((m) => m.note?.startsWith('needs at least'));
  const other = few.filter((m) => !counted.includes(m));
  if (counted.length) {
    const text = `too few samples (at least ${c.method.minSamples} per run; baseline/current): ${counted.map((m) => `${m.id} (${m.baseline.n}/${m.current.n})`).join(', ')}`;
    lines.push(...wrap(text, width - 2, '  ').map((l) => paint(s, 'dim', `  ${l}`)));
  }
  if (other.length) {
    const text = `not compared: ${other.map((m) => `${m.id} (${m.note ?? 'insufficient samples'})`).join(', ')}`;
    lines.push(...wrap(text, width - 2, '  ').map((l) => paint(s, 'dim', `  ${l}`)));
  }
  return lines;
}

function verdict(doc: ResultDocument, s: Style, width: number): string[] {
  const sum = doc.summary;
  const rate = sum.successRate === null ? 'n/a' : `${sum.successRate.toFixed(1)}%`;
  const lines = [
    `${sum.passed} passed, ${sum.failed} failed, ${sum.skipped} skipped of ${sum.total} · success rate ${rate} (target ${doc.targets.successRate}%)`,
  ];
  const failed = doc.tests.filter((t) => t.result === 'Failed');
  const regressed = doc.comparison?.metrics.filter((m) => m.verdict === 'Regressed') ?? [];
  const word = sum.verdict === 'Passed' ? paint(s, 'green', 'VERDICT: PASSED') : paint(s, 'red', 'VERDICT: FAILED');
  lines.push(
    `${word}${failed.length ? ` · failed: ${failed.map((t) => t.id).join(', ')}` : ''}` +
      (regressed.length ? ` · regressed${sum.regressionGate ? ' (gated)' : ''}: ${regressed.map((m) => m.id).join(', ')}` : ''),
  );
  for (const t of failed) lines.push(`  ${truncate(failedTestLine(t), width - 2)}`);
  if (sum.verdict === 'Failed' && sum.successRate === null) lines.push('  every test was skipped: nothing was shown to work');
  for (const m of regressed) {
    lines.push(
      `  ${truncate(`${m.id} ${m.name}: median ${num(m.baseline.median)} → ${num(m.current.median)} ${m.unit} (${pct(m.changePct)}, p ${m.p === null ? '—' : fmtP(m.p)}) against ${doc.comparison!.baseline.name}`, width - 2)}`,
    );
  }
  return lines;
}
