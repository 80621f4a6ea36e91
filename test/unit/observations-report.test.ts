/**
 * Prometheus observations everywhere (issue 13): summary.csv, report.md, the terminal report and
 * the run's status summary (src/report/observations.ts, src/operator/finish.ts) show every
 * observed figure; an unavailable one shows its reason and never a 0; Prometheus unavailable is
 * its reason.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BenchmarkRunStatus, ResultDocument, type Observations } from '../../src/api/schema.ts';
import { REPO_ROOT } from '../../src/paths.ts';
import { renderCsv } from '../../src/report/csv.ts';
import { completeDocument } from '../../src/report/document.ts';
import { renderMarkdown } from '../../src/report/markdown.ts';
import { observationCounts, observationRows, observationStatus, observedValueText, STATUS_FIGURES_MAX, STATUS_REASON_CHARS } from '../../src/report/observations.ts';
import { renderReport } from '../../src/report/terminal.ts';
import { OBSERVATIONS, UNAVAILABLE, observedDoc } from '../support/observed.ts';
import { NAME, NS, TWO, World } from '../support/reconcile-world.ts';

const fixture = ResultDocument.parse(JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/results-quick.json'), 'utf8')));
const doc = completeDocument(ResultDocument.parse(observedDoc(fixture)));
const down = completeDocument(ResultDocument.parse(observedDoc(fixture, UNAVAILABLE)));

/** RFC 4180 rows (the renderer quotes fields with commas, quotes or line breaks). */
function csvRows(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += c;
  }
  return rows;
}

describe('observation rows and counts', () => {
  it('one row per figure, a step without figures is one row with its reason, counts over every step', () => {
    const rows = observationRows(OBSERVATIONS);
    expect(rows).toHaveLength(7 + 3 + 1);
    expect(rows.at(-1)).toMatchObject({ step: 'stress', name: '', value: null, reason: expect.stringMatching(/window is not a valid/) });
    expect(rows.filter((r) => r.value === null).every((r) => r.reason)).toBe(true);
    expect(observationCounts(OBSERVATIONS)).toEqual({ available: 7, unavailable: 3 });
    expect(observationRows(UNAVAILABLE)).toEqual([expect.objectContaining({ value: null, reason: expect.stringMatching(/^Prometheus unavailable: neither spec\.prometheus\.url/) })]);
  });

  it('bytes read as KiB/MiB/GiB, a measured 0 stays 0, null is a dash', () => {
    expect(observedValueText({ value: 52428800, unit: 'bytes' })).toBe('50 MiB');
    expect(observedValueText({ value: 3 * 2 ** 30, unit: 'bytes' })).toBe('3 GiB');
    expect(observedValueText({ value: 0, unit: 'cores' })).toBe('0 cores');
    expect(observedValueText({ value: null, unit: 'cores' })).toBe('—');
  });
});

describe('summary.csv', () => {
  const rows = csvRows(renderCsv(doc));
  const head = rows[0]!;
  const col = (row: string[], name: string) => row[head.indexOf(name)];
  const obs = rows.filter((r) => r[0]!.startsWith('Observed '));

  it('a row per observed figure after the tests, with value, unit, category and statistic', () => {
    expect(obs).toHaveLength(11);
    expect(rows.indexOf(obs[0]!)).toBe(rows.length - 11);
    const mem = obs.find((r) => r[0] === 'Observed scalability agent_memory_bytes (kubelet)')!;
    expect([col(mem, 'Value'), col(mem, 'Unit'), col(mem, 'Category'), col(mem, 'Statistic'), col(mem, 'Status')]).toEqual(['52428800', 'bytes', 'scalability', 'max', '']);
    expect(col(obs.find((r) => r[0] === 'Observed gpu agent_cpu_cores (agent)')!, 'Value')).toBe('0');
    for (const r of rows) expect(r).toHaveLength(head.length);
  });

  it('an unavailable figure: empty value, N/A, its reason; never 0', () => {
    const gpu = obs.find((r) => r[0] === 'Observed gpu gpu_utilization_percent (dcgm)')!;
    expect([col(gpu, 'Value'), col(gpu, 'Status'), col(gpu, 'Reason')]).toEqual(['', 'N/A', 'no DCGM metrics (no DCGM_FI_DEV_GPU_UTIL series in the window)']);
    const stress = obs.find((r) => r[0] === 'Observed stress')!;
    expect(col(stress, 'Reason')).toMatch(/window is not a valid pair of times/);
    expect(obs.filter((r) => col(r, 'Status') === 'N/A').every((r) => col(r, 'Value') === '' && col(r, 'Reason') !== '')).toBe(true);
  });

  it('Prometheus unavailable: one row with the reason; no observations: no rows', () => {
    const d = csvRows(renderCsv(down)).filter((r) => r[0]!.startsWith('Observed'));
    expect(d).toEqual([expect.arrayContaining(['Observed Prometheus', '', 'N/A', expect.stringMatching(/neither spec\.prometheus\.url/)])]);
    expect(renderCsv(completeDocument(fixture))).not.toContain('Observed');
  });
});

describe('report.md', () => {
  const md = renderMarkdown(doc);

  it('an Observations section: the headline and a table of every figure, unavailable ones with their reason', () => {
    expect(md).toContain('## Observations');
    expect(md).toContain('Prometheus http://prometheus.monitoring:9090: 7 figures over 3 steps, 3 unavailable');
    expect(md).toContain('| scalability | agent\\_memory\\_bytes | 50 MiB | max | kubelet |');
    expect(md).toMatch(/\| gpu \| gpu\\_utilization\\_percent \| \*\*unavailable\*\* \| avg \| dcgm \| no DCGM metrics \(no DCGM\\_FI\\_DEV\\_GPU\\_UTIL series in the window\) \|/);
    expect(md).toMatch(/\| stress \| — \| \*\*unavailable\*\* \|.*window is not a valid pair of times \|/);
    expect(md).not.toMatch(/gpu\\_utilization\\_percent \| 0/);
    expect(md.indexOf('## Observations')).toBeLessThan(md.indexOf('## Environment'));
  });

  it('Prometheus unavailable: its reason, no table; none at all: no section', () => {
    const m = renderMarkdown(down);
    expect(m).toContain("Prometheus unavailable: neither spec.prometheus.url nor the operator's --prometheus-url is set");
    expect(m).not.toContain('observed figures</summary>');
    expect(renderMarkdown(completeDocument(fixture))).not.toContain('## Observations');
  });
});

describe('the terminal report', () => {
  const txt = renderReport(doc, { color: false });

  it('an OBSERVATIONS section: one line per figure, unavailable ones with their reason', () => {
    expect(txt).toContain('OBSERVATIONS  Prometheus http://prometheus.monitoring:9090: 7 figures over 3 steps, 3 unavailable');
    expect(txt).toMatch(/^ {2}scalability {2}agent_memory_bytes {11}\s+50 MiB {2}max {2}kubelet$/m);
    expect(txt).toMatch(/^ {2}gpu {10}gpu_utilization_percent {6}unavailable: no DCGM metrics/m);
    // A reason is wrapped under its column, not cut.
    expect(txt).toMatch(/^ {2}stress {7}— {28}unavailable: the step's window is not a valid pair of\n {44}times$/m);
    for (const line of txt.split('\n')) expect(line.length).toBeLessThanOrEqual(100);
  });

  it('Prometheus unavailable: the reason on the section line', () => {
    const t = renderReport(down, { color: false });
    expect(t).toMatch(/^OBSERVATIONS {2}Prometheus unavailable: neither spec\.prometheus\.url nor the operator's\n {2}--prometheus-url is set$/m);
  });
});

describe('status.observations (observationStatus)', () => {
  it('counts and the key figures; the GPU figure only for the GPU step; unavailable ones have a reason and no value', () => {
    const st = observationStatus(OBSERVATIONS, 2);
    expect(st).toEqual({
      attempt: 2,
      prometheus: 'available',
      available: 7,
      unavailable: 3,
      figures: [
        { step: 'scalability', name: 'agent_memory_bytes', unit: 'bytes', value: 52428800 },
        { step: 'scalability', name: 'agent_cpu_cores', unit: 'cores', value: 0.125 },
        { step: 'scalability', name: 'pool_size', unit: 'agents', value: 50 },
        { step: 'gpu', name: 'agent_memory_bytes', unit: 'bytes', reason: 'no agent of this step was scraped in the window' },
        { step: 'gpu', name: 'agent_cpu_cores', unit: 'cores', value: 0 },
        { step: 'gpu', name: 'gpu_utilization_percent', unit: '%', reason: 'no DCGM metrics (no DCGM_FI_DEV_GPU_UTIL series in the window)' },
      ],
    });
    expect(BenchmarkRunStatus.parse({ observations: st }).observations).toEqual(st);
  });

  it('Prometheus unavailable: its reason, no figures', () => {
    expect(observationStatus(UNAVAILABLE, 1)).toEqual({ attempt: 1, prometheus: 'unavailable', reason: UNAVAILABLE.prometheus.reason, available: 0, unavailable: 0, figures: [] });
  });

  it('bounded: at most 32 figures, reasons cut', () => {
    const many: Observations = {
      prometheus: { url: 'http://p', available: true },
      steps: Array.from({ length: 40 }, (_, i) => ({ ...OBSERVATIONS.steps[0]!, step: `s${i}`, metrics: OBSERVATIONS.steps[0]!.metrics.map((m) => ({ ...m, value: null, reason: 'x'.repeat(5000) })) })),
    };
    const st = observationStatus(many, 1);
    expect(st.figures).toHaveLength(STATUS_FIGURES_MAX);
    expect(st.unavailable).toBe(40 * 7);
    expect(Math.max(...st.figures.map((f) => f.reason!.length))).toBe(STATUS_REASON_CHARS);
    expect(JSON.stringify(st).length).toBeLessThan(10_000);
  });

  it('the operator writes it into the status at the finish (no Prometheus: unavailable with the reason)', async () => {
    const w = new World(TWO);
    await w.settle();
    await w.finish();
    expect(w.status.observations).toEqual({
      attempt: 1,
      prometheus: 'unavailable',
      reason: "neither spec.prometheus.url nor the operator's --prometheus-url is set",
      available: 0,
      unavailable: 0,
      figures: [],
    });
    const exported = ResultDocument.parse(JSON.parse(w.fake.get('ConfigMap', NS, `${NAME}-results`)!.data!['results.json']!));
    expect(exported.observations?.prometheus.available).toBe(false);
    expect(w.fake.get('ConfigMap', NS, `${NAME}-results`)!.data!['summary.csv']).toMatch(/Observed Prometheus,,,N\/A,.*neither spec\.prometheus\.url/);
  });
});
