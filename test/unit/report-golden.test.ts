/**
 * Golden files of the exports: terminal report (without colour), summary.csv, junit.xml and
 * report.md for a real quick run (test/fixtures/results-quick.json), without and with a baseline
 * comparison (test/fixtures/results-baseline.json), and the quick run as a cluster run with
 * runner nodes and Prometheus observations (test/support/observed.ts). After an intended change of a renderer,
 * regenerate them with `UPDATE_GOLDEN=1 npx vitest run test/unit/report-golden.test.ts` and
 * review the diff.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ResultDocument, type ResultDocument as Doc } from '../../src/api/schema.ts';
import { renderCsv } from '../../src/report/csv.ts';
import { completeDocument } from '../../src/report/document.ts';
import { renderExports } from '../../src/report/exports.ts';
import { renderJUnit } from '../../src/report/junit.ts';
import { renderMarkdown } from '../../src/report/markdown.ts';
import { renderReport } from '../../src/report/terminal.ts';
import { observedDoc } from '../support/observed.ts';

const ROOT = join(import.meta.dirname, '..');
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const load = (f: string): Doc => ResultDocument.parse(JSON.parse(readFileSync(join(ROOT, 'fixtures', f), 'utf8')));

const quick = completeDocument(load('results-quick.json'));
const compared = completeDocument(load('results-quick.json'), {
  baseline: load('results-baseline.json'),
  compare: { source: 'test/fixtures/results-baseline.json' },
});
const CASES: [string, Doc][] = [
  ['quick', quick],
  ['quick-vs-baseline', compared],
  ['quick-cluster', completeDocument(ResultDocument.parse(observedDoc(load('results-quick.json'))))],
];
const RENDERERS: [string, (d: Doc) => string][] = [
  ['report.txt', (d) => renderReport(d, { color: false })],
  ['summary.csv', renderCsv],
  ['junit.xml', renderJUnit],
  ['report.md', renderMarkdown],
];

function golden(name: string, actual: string): void {
  const file = join(ROOT, 'golden', name);
  if (UPDATE || !existsSync(file)) {
    if (!UPDATE) throw new Error(`missing golden ${name}: run with UPDATE_GOLDEN=1 to create it`);
    writeFileSync(file, actual);
  }
  expect(actual, `test/golden/${name} differs (UPDATE_GOLDEN=1 regenerates it)`).toBe(readFileSync(file, 'utf8'));
}

describe('golden exports', () => {
  for (const [c, doc] of CASES) {
    for (const [ext, render] of RENDERERS) {
      it(`${c}.${ext}`, () => golden(`${c}.${ext}`, render(doc)));
    }
  }

  it('renderExports writes the same texts as the renderers', () => {
    const files = renderExports(compared);
    expect(files['report.txt']).toBe(renderReport(compared, { color: false }));
    expect(files['junit.xml']).toBe(renderJUnit(compared));
    expect(ResultDocument.parse(JSON.parse(files['results.json']))).toEqual(compared);
  });
});

describe('the terminal report', () => {
  it('fits 100 columns', () => {
    for (const [, doc] of CASES) {
      for (const line of renderReport(doc, { color: false }).split('\n')) expect([...line].length, line).toBeLessThanOrEqual(100);
    }
  });

  it('with colour is the same text plus escape codes; without colour it has none', () => {
    const plain = renderReport(compared, { color: false });
    const coloured = renderReport(compared, { color: true });
    expect(plain).not.toMatch(/\x1b\[/);
    expect(coloured).toMatch(/\x1b\[31mFAIL\x1b\[0m/);
    expect(coloured.replace(/\x1b\[[0-9;]*m/g, '')).toBe(plain);
  });

  it('has the sections a reader looks for, in order', () => {
    const text = renderReport(compared, { color: false });
    const order = ['SwarmBench quick', 'distributed 6/6 passed', 'HEADLINE METRICS', 'CHARTS', 'Throughput by agent count', 'Inference throughput by batch size', 'Latency percentiles', 'RECOMMENDATIONS', 'BASELINE', 'VERDICT: FAILED'];
    let at = -1;
    for (const s of order) {
      const i = text.indexOf(s);
      expect(i, s).toBeGreaterThan(at);
      at = i;
    }
    expect(text).toMatch(/VERDICT: FAILED · failed: 3\.2, 4\.5, 6\.1 · regressed: 1\.3\n/);
    expect(text).toMatch(/\n {2}4\.5 Scaling step 5: ratio 73\.87 %, target >=90 %\n/);
  });
});
