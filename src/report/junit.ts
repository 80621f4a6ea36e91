/**
 * `junit.xml`: one `<testcase>` per test, as CI systems read JUnit reports (Jenkins, GitLab,
 * GitHub test reporters). One `<testsuite>` per category, in catalogue order, inside a
 * `<testsuites>` root whose counts are the run's summary: tests = total, failures = failed,
 * skipped = skipped, errors = 0 (a test that produced no result is a failure of type NoResult,
 * because SwarmBench judges it Failed, never "in error").
 *
 * A failed test has `<failure message="…" type="TargetMissed|InvariantViolated|NoResult">` with
 * the value, the target and the reason; a skipped test has `<skipped message="reason"/>`. Every
 * test carries its figures in `<system-out>`, and each suite the run's conditions as
 * `<properties>`. A baseline comparison adds a property per compared test (the verdict, not a
 * failure: JUnit counts stay those of the summary).
 */
import type { ResultDocument, TestResult } from '../api/schema.ts';
import { CATEGORIES } from '../api/schema.ts';
import { num, targetText } from './format.ts';

/** XML 1.0 text and attribute escaping; characters XML 1.0 cannot carry are dropped. */
export function xmlEscape(text: string): string {
  return text
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function attrs(a: Record<string, string | number | undefined>): string {
  return Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${xmlEscape(String(v))}"`)
    .join('');
}

const secs = (ms: number) => (Math.max(0, ms) / 1000).toFixed(3);

function failureType(t: TestResult): string {
  if (t.value === null && t.samples === 0) return 'NoResult';
  return t.reason && /does not meet the target/.test(t.reason) ? 'TargetMissed' : 'InvariantViolated';
}

function figures(t: TestResult): string {
  const lines = [
    `${t.statistic} ${t.value === null ? '—' : `${num(t.value)} ${t.unit}`} (target ${targetText(t)} ${t.unit}), ${t.samples} ${t.sampleUnit ?? 'samples'}`,
  ];
  const d = t.distribution;
  if (d) lines.push(`distribution: n=${d.n} min=${num(d.min)} p50=${num(d.p50)} p95=${num(d.p95)} p99=${num(d.p99)} max=${num(d.max)} ${t.unit}`);
  if (t.reason) lines.push(`${t.result === 'Skipped' ? 'skipped' : 'reason'}: ${t.reason}`);
  return lines.join('\n');
}

export function renderJUnit(doc: ResultDocument): string {
  const s = doc.summary;
  const runMs = Date.parse(doc.run.finishedAt) - Date.parse(doc.run.startedAt);
  const props: Record<string, string> = {
    'swarmbench.run': doc.run.name,
    'swarmbench.mode': doc.run.mode,
    'swarmbench.attempt': String(doc.run.attempt),
    'swarmbench.verdict': s.verdict,
    'swarmbench.successRate': s.successRate === null ? 'n/a' : String(s.successRate),
    'swarmbench.successRateTarget': String(doc.targets.successRate ?? ''),
    'swarmbench.platform': doc.environment.platform,
    'swarmbench.node': doc.environment.node,
    'swarmbench.version': doc.environment.swarmbenchVersion,
  };
  if (doc.environment.inference) props['swarmbench.inference'] = `${doc.environment.inference.backend}${doc.environment.inference.gpuInUse ? ' (GPU)' : ''}`;
  if (doc.comparison) {
    props['swarmbench.baseline'] = `${doc.comparison.baseline.name} attempt ${doc.comparison.baseline.attempt}`;
    props['swarmbench.regressions'] = String(s.regressions ?? 0);
    for (const m of doc.comparison.metrics) props[`swarmbench.baseline.${m.id}`] = m.verdict;
  }
  const out = ['<?xml version="1.0" encoding="UTF-8"?>'];
  out.push(
    `<testsuites${attrs({ name: `SwarmBench ${doc.run.name}`, tests: s.total, failures: s.failed, errors: 0, skipped: s.skipped, time: secs(runMs), timestamp: doc.run.startedAt })}>`,
  );
  for (const cat of CATEGORIES) {
    const tests = doc.tests.filter((t) => t.category === cat);
    if (!tests.length) continue;
    const count = (r: TestResult['result']) => tests.filter((t) => t.result === r).length;
    out.push(
      `  <testsuite${attrs({
        name: cat,
        tests: tests.length,
        failures: count('Failed'),
        errors: 0,
        skipped: count('Skipped'),
        time: secs(tests.reduce((a, t) => a + t.durationMs, 0)),
        timestamp: doc.run.startedAt,
        hostname: doc.environment.hostname,
      })}>`,
    );
    out.push('    <properties>');
    for (const [k, v] of Object.entries(props)) out.push(`      <property${attrs({ name: k, value: v })}/>`);
    out.push('    </properties>');
    for (const t of tests) {
      out.push(`    <testcase${attrs({ classname: `swarmbench.${cat}`, name: `${t.id} ${t.name}`, time: secs(t.durationMs) })}>`);
      if (t.result === 'Failed') {
        const message = t.reason ?? 'failed';
        out.push(`      <failure${attrs({ message, type: failureType(t) })}>${xmlEscape(figures(t))}</failure>`);
      } else if (t.result === 'Skipped') {
        out.push(`      <skipped${attrs({ message: t.reason ?? 'skipped' })}/>`);
      }
      out.push(`      <system-out>${xmlEscape(figures(t))}</system-out>`);
      out.push('    </testcase>');
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}
