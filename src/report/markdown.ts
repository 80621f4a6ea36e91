/**
 * `report.md`: the report for CI step summaries ($GITHUB_STEP_SUMMARY) and PR comments. The
 * verdict and what failed come first; the full test table and the charts are folded in
 * `<details>` so a comment stays short. A cluster run's Prometheus observations (observations.ts)
 * come as one line (Prometheus, counts) and a folded table of every figure, an unavailable one
 * with its reason; the environment names every runner node (`environment.runners`). GitHub-flavoured Markdown: tables, and text escaped so
 * that a `|`, `<` or `*` in a reason cannot break the layout.
 */
import type { Recommendation, ResultDocument } from '../api/schema.ts';
import { CATEGORIES } from '../api/schema.ts';
import { fmtP } from './baseline.ts';
import { charts } from './charts.ts';
import { headlineFigures } from './headline.ts';
import { cpuSetText } from './cpuset.ts';
import { hostLoadText } from './hostload.ts';
import { runnerText } from './machine.ts';
import { observationHeadline, observationRows, observedValueText } from './observations.ts';
import { agentsText, durationText, num, pct, signed, targetText, valueText } from './format.ts';
import { recommend } from './recommend.ts';
import { failedTestLine } from './verdict.ts';

/** Escapes text for a Markdown table cell or a line of prose. */
export function mdEscape(text: string): string {
  return text
    .replace(/\r?\n/g, ' ')
    .replace(/[\\`*_[\]|]/g, (c) => `\\${c}`)
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

const ICON = { Passed: '✅', Failed: '❌', Skipped: '⏭️' } as const;

function table(head: string[], rows: string[][]): string[] {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

export function renderMarkdown(doc: ResultDocument): string {
  const s = doc.summary;
  const out: string[] = [];
  const rate = s.successRate === null ? 'n/a' : `${s.successRate.toFixed(1)} %`;
  out.push(`# SwarmBench: ${mdEscape(doc.run.name)}`, '');
  out.push(
    `**${s.verdict === 'Passed' ? '✅ PASSED' : '❌ FAILED'}** · ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped of ${s.total} · ` +
      `success rate **${rate}** (target ${doc.targets.successRate} %) · ${doc.run.mode} mode · attempt ${doc.run.attempt}`,
    '',
  );
  const failed = doc.tests.filter((t) => t.result === 'Failed');
  if (failed.length) {
    out.push('Failed tests:', '');
    for (const t of failed) out.push(`- ${mdEscape(failedTestLine(t))}`);
    out.push('');
  }
  if (s.successRate === null) out.push('Every test was skipped: nothing was shown to work.', '');
  const regressed = doc.comparison?.metrics.filter((m) => m.verdict === 'Regressed') ?? [];
  if (regressed.length) {
    out.push(`Regressed against the baseline${s.regressionGate ? ' (the regression gate is on: this fails the run)' : ''}:`, '');
    for (const m of regressed) {
      out.push(`- ${mdEscape(`${m.id} ${m.name}: median ${num(m.baseline.median)} → ${num(m.current.median)} ${m.unit} (${pct(m.changePct)}, p ${m.p === null ? '—' : fmtP(m.p)})`)}`);
    }
    out.push('');
  }

  const head = headlineRows(doc);
  if (head.length) out.push('## Headline metrics', '', ...table(['', 'Metric', 'Value', 'Target', 'Test'], head), '');

  const recs = doc.recommendations ?? recommend(doc);
  out.push('## Recommendations', '');
  if (recs.length === 0) out.push('None: no rule found anything to act on.', '');
  for (const r of recs) out.push(...recommendation(r), '');

  if (doc.comparison) {
    const c = doc.comparison;
    const b = c.baseline;
    out.push('## Baseline comparison', '');
    out.push(
      `Against **${mdEscape(b.name)}** attempt ${b.attempt} (${b.mode}, finished ${b.finishedAt})` +
        (b.pool?.length ? ` pooled with ${b.pool.map((r) => `**${mdEscape(r.name)}**`).join(', ')}` : '') +
        `${b.source ? ` from \`${b.source}\`` : ''}: ` +
        `${c.regressed.length} regressed, ${c.improved.length} improved, ${c.unchanged.length} unchanged, ${c.insufficient.length} not compared. ` +
        `Two-sided Mann-Whitney U test at α = ${c.method.alpha}; shift = Hodges–Lehmann estimate of current − baseline with its ${Math.round(c.method.confidence * 100)} % ` +
        `distribution-free confidence interval; a change counts from ${c.method.minEffectPct} % of the baseline median.`,
      '',
    );
    for (const w of c.warnings) out.push(`> ⚠️ ${mdEscape(w)}`, '');
    out.push(
      ...table(
        ['Test', 'Baseline median', 'Current median', 'Change', `${Math.round(c.method.confidence * 100)} % CI of shift`, 'p', 'Verdict'],
        c.metrics.map((m) => [
          mdEscape(`${m.id} ${m.name}`),
          m.baseline.median === null ? '—' : `${num(m.baseline.median)} ${mdEscape(m.unit)} (n=${m.baseline.n})`,
          m.current.median === null ? '—' : `${num(m.current.median)} ${mdEscape(m.unit)} (n=${m.current.n})`,
          pct(m.changePct),
          m.ci ? `[${signed(m.ci[0])}, ${signed(m.ci[1])}]` : '—',
          m.p === null ? '—' : fmtP(m.p),
          m.verdict === 'Regressed'
            ? '**Regressed**'
            : m.verdict === 'InsufficientSamples'
              ? `InsufficientSamples: ${mdEscape(m.note ?? '')}`
              : m.verdict === 'NoChange' && m.note?.includes('threshold')
                ? `NoChange (significant, under ${c.method.minEffectPct} %)`
                : m.verdict,
        ]),
      ),
      '',
    );
  }

  out.push('## Tests', '', `<details><summary>All ${doc.tests.length} tests</summary>`, '');
  out.push(
    ...table(
      ['', 'Test', 'Category', 'Statistic', 'Value', 'Target', 'n', 'Reason'],
      CATEGORIES.flatMap((cat) => doc.tests.filter((t) => t.category === cat)).map((t) => [
        ICON[t.result],
        mdEscape(`${t.id} ${t.name}`),
        t.category,
        t.statistic,
        mdEscape(valueText(t)),
        `\`${targetText(t)}\``,
        t.sampleUnit ? mdEscape(`${t.samples} ${t.sampleUnit}`) : String(t.samples),
        t.result === 'Passed' ? '' : mdEscape(t.reason ?? ''),
      ]),
    ),
    '',
    '</details>',
    '',
  );

  const ch = charts(doc, 98);
  if (ch.length) out.push('## Charts', '', '<details><summary>Throughput and latency charts</summary>', '', '```text', ...ch.slice(0, -1), '```', '', '</details>', '');

  if (doc.observations) {
    const rows = observationRows(doc.observations);
    out.push('## Observations', '', mdEscape(observationHeadline(doc.observations)), '');
    if (doc.observations.prometheus.available && rows.length) {
      out.push(
        `<details><summary>${rows.length} observed figures</summary>`,
        '',
        ...table(
          ['Step', 'Figure', 'Value', 'Statistic', 'Source', 'Reason or note'],
          rows.map((r) => [
            mdEscape(r.step),
            mdEscape(r.name || '—'),
            r.value === null ? '**unavailable**' : mdEscape(observedValueText(r)),
            r.statistic,
            r.source,
            mdEscape(r.value === null ? (r.reason ?? '') : (r.note ?? '')),
          ]),
        ),
        '',
        '</details>',
        '',
      );
    }
  }

  const env = doc.environment;
  const ms = Date.parse(doc.run.finishedAt) - Date.parse(doc.run.startedAt);
  out.push('## Environment', '');
  out.push(
    `- ${env.platform} platform, Node ${env.node}, ${env.os} ${env.arch}, ${env.cpus} × ${mdEscape(env.cpuModel)}, ${(env.memoryBytes / 2 ** 30).toFixed(0)} GiB`,
    env.agents ? `- agents: ${mdEscape(agentsText(env.agents))}, SwarmBench ${env.swarmbenchVersion}` : `- agent image \`${env.agentImage}\`, SwarmBench ${env.swarmbenchVersion}`,
  );
  if (env.cpuSet) out.push(`- CPU set: ${mdEscape(cpuSetText(env.cpuSet))}`);
  for (const r of env.runners ?? []) out.push(`- runner node ${mdEscape(runnerText(r))}`);
  if (env.hostLoad) out.push(`- host during the run: ${mdEscape(hostLoadText(env.hostLoad))}`);
  if (env.inference) out.push(`- inference ${mdEscape(env.inference.backend)}${env.inference.gpuInUse ? ' on a GPU' : ', no GPU in use'}${env.inference.detail ? ` (${mdEscape(env.inference.detail)})` : ''}`);
  if (env.prometheus) out.push(`- monitoring figures from ${env.prometheus.mode}${env.prometheus.url ? ` (${mdEscape(env.prometheus.url)})` : ''}`);
  out.push(`- started ${doc.run.startedAt}, took ${durationText(ms)}; categories: ${doc.run.categories.join(', ')}`, '');
  return out.join('\n');
}

function headlineRows(doc: ResultDocument): string[][] {
  return headlineFigures(doc).map((h) => {
    if (h.kind === 'test') {
      const t = h.test;
      return [ICON[t.result], h.label, t.result === 'Skipped' ? `skipped: ${mdEscape(t.reason ?? '')}` : mdEscape(valueText(t)), `\`${targetText(t)}\` ${mdEscape(t.unit)}`, `${t.id} ${t.statistic}`];
    }
    return [
      ICON[h.result],
      'Scaling efficiency (lowest step)',
      h.worst ? `${num(h.worst.value)} %${h.agents !== undefined ? ` at ${h.agents} agents` : ''}` : '—',
      `\`${targetText(h.first)}\` %`,
      h.worst ? h.worst.id : '4.x',
    ];
  });
}

function recommendation(r: Recommendation): string[] {
  return [
    `- **${r.priority}** · ${r.category} · ${mdEscape(r.message)}`,
    ...r.evidence.map((e) => `  - ${mdEscape(e)}`),
    `  - *Suggestion:* ${mdEscape(r.suggestion)}`,
  ];
}
