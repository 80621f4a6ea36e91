/**
 * junit.xml read back by a JUnit consumer from the npm registry (junit2json, on xml2js): its
 * counts are the summary's, every test is a testcase, failures and skips are where JUnit has them.
 * Also the CSV and Markdown escaping of hostile text.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, type TestSuite, type TestSuites } from 'junit2json';
import { describe, expect, it } from 'vitest';
import { ResultDocument, type ResultDocument as Doc } from '../../src/api/schema.ts';
import { csvField, renderCsv } from '../../src/report/csv.ts';
import { completeDocument } from '../../src/report/document.ts';
import { renderJUnit, xmlEscape } from '../../src/report/junit.ts';
import { mdEscape, renderMarkdown } from '../../src/report/markdown.ts';

const load = (f: string): Doc => ResultDocument.parse(JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', f), 'utf8')));

async function parsed(doc: Doc): Promise<TestSuites> {
  const out = await parse(renderJUnit(doc));
  expect(out && 'testsuite' in out).toBe(true);
  return out as TestSuites;
}

describe('junit.xml read back by junit2json', () => {
  it('has the summary counts, one testcase per test, failures and skips in place', async () => {
    const doc = completeDocument(load('results-quick.json'));
    const x = await parsed(doc);
    expect(x.tests).toBe(doc.summary.total);
    expect(x.failures).toBe(doc.summary.failed);
    expect(x.errors).toBe(0);
    const suites = x.testsuite as TestSuite[];
    expect(suites.map((s) => s.name)).toEqual(['distributed', 'gpu', 'monitoring', 'scalability', 'integration', 'stress']);
    const cases = suites.flatMap((s) => s.testcase ?? []);
    expect(cases).toHaveLength(doc.summary.total);
    expect(suites.reduce((a, s) => a + (s.tests ?? 0), 0)).toBe(doc.summary.total);
    expect(suites.reduce((a, s) => a + (s.failures ?? 0), 0)).toBe(doc.summary.failed);
    expect(suites.reduce((a, s) => a + (s.skipped ?? 0), 0)).toBe(doc.summary.skipped);
    expect(cases.filter((c) => c.failure?.length).map((c) => c.name)).toEqual(['3.2 Prometheus scrape duration', '4.5 Scaling step 5', '6.1 Sustained load']);
    expect(cases.filter((c) => c.skipped?.length).map((c) => c.name)).toEqual(['2.1 Neural speedup']);
    const f32 = cases.find((c) => c.name === '3.2 Prometheus scrape duration')!.failure![0]!;
    expect(f32.type).toBe('TargetMissed');
    expect(f32.message).toBe('p95 153 ms does not meet the target <100 ms');
    expect(f32.inner).toMatch(/p95 153\.2 ms \(target <100 ms\), 355 samples/);
    expect(cases.find((c) => c.name === '6.1 Sustained load')!.failure![0]!.type).toBe('InvariantViolated');
    expect(cases.find((c) => c.name === '2.1 Neural speedup')!.skipped![0]!.message).toMatch(/^no GPU in use/);
    expect(suites[0]!.properties).toContainEqual({ name: 'swarmbench.verdict', value: 'Failed' });
  });

  it('a step without result is a NoResult failure; hostile text survives escaping', async () => {
    const doc = completeDocument(load('results-quick.json'));
    const t = doc.tests.find((x) => x.id === '5.1')!;
    Object.assign(t, { result: 'Failed', value: null, samples: 0, reason: 'runner crashed: <exit 137> & "OOM" \u0007', name: 'End-to-end <workflow>' });
    const cases = (await parsed(doc)).testsuite!.flatMap((s) => s.testcase ?? []);
    const c = cases.find((x) => x.name === '5.1 End-to-end <workflow>')!;
    expect(c.failure![0]).toMatchObject({ type: 'NoResult', message: 'runner crashed: <exit 137> & "OOM" ' });
  });

  it('xmlEscape escapes markup and drops characters XML 1.0 cannot carry', () => {
    expect(xmlEscape(`a<b>&"c'\u0000\u001b`)).toBe('a&lt;b&gt;&amp;&quot;c&apos;');
  });
});

describe('CSV and Markdown escaping', () => {
  it('CSV quotes fields with commas, quotes and line breaks (RFC 4180)', () => {
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField(null)).toBe('');
    expect(csvField(Number.NaN)).toBe('');
    const csv = renderCsv(completeDocument(load('results-quick.json')));
    const lines = csv.split('\r\n').filter(Boolean);
    expect(lines[0]).toBe('Metric,Value,Target,Status,Unit,Id,Category,Statistic,Samples,P50,P95,P99,Reason');
    expect(lines).toHaveLength(1 + 4 + 27);
    for (const l of lines.slice(1)) expect(l.match(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/g)).toHaveLength(12);
  });

  it('Markdown escapes table breakers and HTML', () => {
    expect(mdEscape('a|b <script> *x* `y`')).toBe('a\\|b &lt;script&gt; \\*x\\* \\`y\\`');
    const doc = completeDocument(load('results-quick.json'));
    doc.tests.find((x) => x.id === '3.2')!.reason = 'pipe | in <reason>';
    expect(renderMarkdown(doc)).toMatch(/pipe \\\| in &lt;reason&gt;/);
  });
});
