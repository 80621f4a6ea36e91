/**
 * The results UI in a real headless Chromium (Debian's `chromium`, driven by playwright-core),
 * against the real CLI: `swarmbench ui` over folders of result documents (a real quick run of the
 * integration category, the fixture quick run with all 27 tests, a baseline planted from the real
 * run with 5.1 twenty times faster, the comparison `report --baseline` writes, a malformed
 * results.json and a document with markup in its names), and `swarmbench run --ui` live.
 *
 * Without a Chromium the tests are skipped, and say why. With SWARMBENCH_UI_SCREENSHOTS=1 they
 * write the screenshots docs/ui.md and the README show (docs/ui/*.png).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResultDocument, type ResultDocument as Doc } from '../../src/api/schema.ts';
import { CLI_ENTRY, REPO_ROOT } from '../../src/paths.ts';
import { valueText } from '../../src/report/format.ts';
import { describe as distribution } from '../../src/stats.ts';
import { chromiumExecutable, serve, type Served } from '../support/browser.ts';
import { nightly, noisySeries, QUICK } from '../support/history.ts';

const exe = chromiumExecutable();
const SCREENSHOTS = process.env.SWARMBENCH_UI_SCREENSHOTS === '1';
/** A screenshot for the docs (docs/ui/NAME), only with SWARMBENCH_UI_SCREENSHOTS=1: the whole page for a run and a comparison, else what a window shows. */
const shot = (page: Page, name: string) =>
  SCREENSHOTS ? page.screenshot({ path: join(REPO_ROOT, 'docs', 'ui', name), fullPage: name === 'run.png' || name === 'compare.png' }) : Promise.resolve();

// Made in beforeAll, so that a skipped file leaves nothing behind.
let work = '';
let runs = '';
let hundred = '';

function swarmbench(args: string[]) {
  const r = spawnSync(process.execPath, [CLI_ENTRY, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 180_000, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const write = (file: string, text: string) => {
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, text);
};
const readDoc = (file: string): Doc => ResultDocument.parse(JSON.parse(readFileSync(file, 'utf8')));
const manifest = (name: string) => {
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, `apiVersion: swarmbench.io/v1alpha1\nkind: BenchmarkRun\nmetadata: {name: ${name}}\nspec:\n  mode: quick\n`);
  return file;
};

interface Row {
  id: string;
  name: string;
  phase: string;
  source: string;
}
const rowsOf = async (url: string): Promise<Row[]> => ((await (await fetch(`${url}api/runs`)).json()) as { runs: Row[] }).runs;

describe.skipIf(!exe)(`the results UI in headless Chromium${exe ? '' : ' (skipped: no Chromium; install Debian\'s chromium or set SWARMBENCH_CHROMIUM)'}`, () => {
  let browser: Browser;
  let ui: Served;
  let ids: Record<string, string>;
  let integration: Doc;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'swarmbench-ui-'));
    runs = join(work, 'runs');
    hundred = join(work, 'hundred');
    // A real run of one category, then a baseline planted from it: 5.1's samples 20 × faster, so
    // the real run regressed; the other tests lose their samples (they compare as
    // InsufficientSamples), so the one regression is the planted one.
    const r = swarmbench(['run', '-f', manifest('integration'), '--categories', 'integration', '--out', join(runs, 'integration'), '--quiet']);
    expect([0, 1], r.stderr).toContain(r.code);
    integration = readDoc(join(runs, 'integration', 'results.json'));
    const fast: Doc = {
      ...integration,
      run: { ...integration.run, name: 'fast-baseline', startedAt: new Date(Date.parse(integration.run.startedAt) - 3600_000).toISOString(), finishedAt: new Date(Date.parse(integration.run.finishedAt) - 3600_000).toISOString() },
      tests: integration.tests.map((t) => {
        if (t.id !== '5.1' || !t.rawSamples) {
          const { rawSamples: _raw, ...rest } = t;
          return rest;
        }
        const raw = t.rawSamples.map((v) => v / 20);
        return { ...t, rawSamples: raw, distribution: distribution(raw) };
      }),
    };
    write(join(runs, 'fast-baseline', 'results.json'), JSON.stringify(fast));
    const rep = swarmbench(['report', join(runs, 'integration', 'results.json'), '--baseline', join(runs, 'fast-baseline', 'results.json'), '--out', join(runs, 'compared')]);
    expect(rep.stderr).toBe('');
    write(join(runs, 'quick', 'results.json'), JSON.stringify(QUICK));
    write(join(runs, 'broken', 'results.json'), '{"kind": "BenchmarkResult", "tests": [');
    const hostile: Doc = {
      ...QUICK,
      run: { ...QUICK.run, name: '<b>bold</b>', startedAt: '2026-11-20T00:00:00.000Z', finishedAt: '2026-11-20T00:03:08.401Z' },
      tests: QUICK.tests.map((t) => (t.id === '1.1' ? { ...t, name: '<img src=x onerror="window.__pwned=1">', result: 'Failed', reason: '<script>window.__pwned=2</script>' } : t)),
    };
    write(join(runs, 'hostile', 'results.json'), JSON.stringify(hostile));
    // 100 nights of the fixture run, 1.3 40 % slower from night 80 on; 5.2 50 % slower from
    // night 40 on, where other processes went from 3 to 5 % of the host's CPUs to 20 to 22 %
    // (the machine changed: report/trend.ts).
    const v13 = noisySeries(7, 100, 0.1, 0.03, { from: 80, factor: 1.4 });
    const v52 = noisySeries(8, 100, 70, 0.03, { from: 40, factor: 1.5 });
    for (let i = 0; i < 100; i++) {
      const d = nightly(i, { '1.3': v13[i]!, '5.2': v52[i]! }, 'night');
      const otherPct = (i < 40 ? 3 : 20) + (i % 3);
      const doc = { ...d, environment: { ...d.environment, platform: 'local' as const, hostLoad: { wallSeconds: 190, hostCpus: 2, busyCpus: 1, ownCpus: 0.9, otherCpus: otherPct / 50, otherPct, loadavg1: { start: 1, end: 1 } } } };
      write(join(hundred, `night-${String(i).padStart(3, '0')}`, 'results.json'), JSON.stringify(doc));
    }

    if (SCREENSHOTS) mkdirSync(join(REPO_ROOT, 'docs', 'ui'), { recursive: true });
    browser = await chromium.launch({ executablePath: exe!, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
    ui = await serve(['ui', runs, '--port', '0'], 'stdout');
    // The runs by their folder's name.
    ids = Object.fromEntries((await rowsOf(ui.url)).map((r) => [basename(dirname(r.source)), r.id]));
  });

  afterAll(async () => {
    await browser?.close();
    ui?.child.kill('SIGINT');
    if (ui) expect(await ui.exited).toBe(0);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the run page shows all 27 tests with the values of results.json, the headline, and an escaped hostile document', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${ui.url}#/run/${ids.quick}`);
    await page.locator('table.tests').first().waitFor();
    const rows = await page.locator('table.tests tbody tr').evaluateAll((trs) =>
      trs.map((tr) => ({ id: tr.getAttribute('data-test'), result: tr.getAttribute('data-result'), raw: tr.querySelector('td.value')!.getAttribute('data-value'), text: tr.querySelector('td.value')!.textContent })),
    );
    expect(rows).toHaveLength(27);
    expect(rows.map((r) => r.id)).toEqual(QUICK.tests.map((t) => t.id));
    for (const t of QUICK.tests) {
      const row = rows.find((r) => r.id === t.id)!;
      expect(row.raw, t.id).toBe(t.value === null ? 'null' : String(t.value));
      expect(row.text, t.id).toBe(valueText(t));
      expect(row.result, t.id).toBe(t.result);
    }
    await expect.poll(() => page.locator('.card').count()).toBe(4);
    await shot(page, 'run.png');
    // The theme: the system's, then light, then dark, by the button; the charts are drawn again.
    expect(await page.locator('html').getAttribute('data-theme')).toBeNull();
    await page.locator('#theme').click();
    expect(await page.locator('html').getAttribute('data-theme')).toBe('light');
    await page.locator('#theme').click();
    expect(await page.locator('html').getAttribute('data-theme')).toBe('dark');
    expect(await page.locator('body').evaluate((b) => b.ownerDocument.defaultView!.getComputedStyle(b).backgroundColor)).toBe('rgb(13, 17, 23)');
    expect(await page.locator('figure.chart canvas').count()).toBe(4);

    // The same document, another route: wait for this run's heading, not any table.
    await page.goto(`${ui.url}#/run/${ids.hostile}`);
    await page.locator('h1', { hasText: '<b>bold</b>' }).waitFor();
    await page.locator('tr[data-test="1.1"]').waitFor();
    expect(await page.locator('tr[data-test="1.1"] th').textContent()).toBe('1.1 <img src=x onerror="window.__pwned=1">');
    expect(await page.locator('tr[data-test="1.1"] td.reason').textContent()).toBe('<script>window.__pwned=2</script>');
    expect(await page.locator('main img, main script, main b').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(errors).toEqual([]);
    await page.close();
  });

  it('the charts render (in the dark theme): a drawn canvas and the expected series for each', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' });
    await page.goto(`${ui.url}#/run/${ids.quick}`);
    await page.locator('figure.chart canvas').first().waitFor();
    const charts = await page.locator('figure.chart').evaluateAll((figs) =>
      figs.map((f) => {
        const canvas = f.querySelector('canvas')!;
        const px = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i]! > 0) painted++;
        return { id: f.getAttribute('data-chart'), series: Number(f.getAttribute('data-series')), legend: f.querySelectorAll('.u-legend .u-series').length, painted, pixels: px.length / 4 };
      }),
    );
    expect(charts.map((c) => [c.id, c.series])).toEqual([
      ['throughput-agents', 2],
      ['latency-agents', 3],
      ['throughput-batch', 1],
      ['latency-tests', 3],
    ]);
    for (const c of charts) {
      // The legend (static: no x row) has one row per series; the canvas has something drawn on it.
      expect(c.legend, c.id!).toBe(c.series);
      expect(c.painted, c.id!).toBeGreaterThan(c.pixels * 0.002);
    }
    if (SCREENSHOTS) await page.locator('.charts').screenshot({ path: join(REPO_ROOT, 'docs', 'ui', 'charts-dark.png') });
    await page.close();
  });

  it('the comparison view shows the planted regression as regressed, in the compare page and on the run page of the compared result', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${ui.url}#/compare/${ids.integration}/${ids['fast-baseline']}`);
    await page.locator('table.comparison').waitFor();
    expect(await page.locator('tr[data-test="5.1"]').getAttribute('data-verdict')).toBe('Regressed');
    expect(await page.locator('tr[data-test="5.1"] .badge').textContent()).toBe('▼ Regressed');
    expect(await page.locator('tr[data-verdict="Regressed"]').count()).toBe(1);
    await shot(page, 'compare.png');
    // `report --baseline --out` wrote the comparison into the document: its run page shows it.
    const compared = readDoc(join(runs, 'compared', 'results.json'));
    expect(compared.comparison?.regressed).toEqual(['5.1']);
    await page.goto(`${ui.url}#/run/${ids.compared}`);
    await page.locator('h2#comparison').waitFor();
    expect(await page.locator('table.comparison tr[data-test="5.1"]').getAttribute('data-verdict')).toBe('Regressed');
    await page.close();
  });

  it('a malformed or missing result shows an error naming it, not a blank page', async () => {
    const page = await browser.newPage();
    await page.goto(`${ui.url}#/run/${ids.broken}`);
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toContain(`${join(runs, 'broken', 'results.json')}: not JSON`);
    await page.goto(`${ui.url}#/run/rnothere`);
    await expect.poll(async () => page.getByRole('alert').textContent()).toContain('no run rnothere');
    // The runs table names the file too.
    await page.goto(ui.url);
    await page.locator('tr[data-phase="Unreadable"]').waitFor();
    expect(await page.locator('tr[data-phase="Unreadable"]').textContent()).toContain(join(runs, 'broken', 'results.json'));
    await page.close();
  });

  it('the runs table lists a finished run and a running one (swarmbench run --ui), whose progress changes without a reload', async () => {
    const live = await serve(['run', '-f', manifest('live'), '--categories', 'integration,monitoring', '--out', join(work, 'live'), '--ui', '--ui-port', '0', '--ui-dir', runs], 'stderr');
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(live.url);
    const liveRow = page.locator('tr[data-run-id="live"]');
    await expect.poll(() => liveRow.getAttribute('data-phase'), { timeout: 30_000 }).toBe('Running');
    expect(await page.locator('tr[data-phase="Succeeded"], tr[data-phase="Failed"]').count()).toBeGreaterThan(0);
    // Marks this document: a reload would lose the mark.
    await page.evaluate(() => ((globalThis as unknown as { __mark?: number }).__mark = 1));
    const first = await liveRow.locator('td.progress').textContent();
    await expect.poll(() => liveRow.locator('td.progress').textContent(), { timeout: 60_000, interval: 100 }).not.toBe(first);
    await shot(page, 'runs.png');
    await expect.poll(() => liveRow.locator('td.progress').getAttribute('data-completed'), { timeout: 120_000, interval: 250 }).toBe('1');
    // The run page of the running run: its steps, and the tests of the finished step.
    await page.goto(`${live.url}#/run/live`);
    await page.locator('#live-steps').waitFor();
    await page.evaluate(() => ((globalThis as unknown as { __mark?: number }).__mark = 2));
    await expect.poll(() => page.locator('#live table.tests tbody tr').count(), { timeout: 60_000 }).toBeGreaterThanOrEqual(3);
    await shot(page, 'live.png');
    // The run ends: its page becomes its result without a reload.
    await expect.poll(() => page.locator('table.tests tbody tr').count(), { timeout: 180_000, interval: 500 }).toBe(8);
    await page.locator('h1 .badge').filter({ hasText: /Succeeded|Failed/ }).waitFor({ timeout: 30_000 });
    expect(await page.evaluate(() => (globalThis as unknown as { __mark?: number }).__mark)).toBe(2);
    const doc = readDoc(join(work, 'live', 'results.json'));
    live.child.kill('SIGINT');
    expect(await live.exited).toBe(doc.summary.verdict === 'Passed' ? 0 : 1);
    expect(live.stdout()).toMatch(/VERDICT: (PASSED|FAILED)/);
    await page.close();
  });

  it('the trends page marks the planted shift, and the first load with 100 runs listed is measured', async () => {
    const many = await serve(['ui', hundred, '--port', '0'], 'stdout');
    try {
      const loads: number[] = [];
      for (let i = 0; i < 5; i++) {
        const context = await browser.newContext();
        const page = await context.newPage();
        await page.goto(many.url);
        await expect.poll(() => page.locator('table#runs tbody tr').count()).toBe(100);
        loads.push(await page.evaluate(() => performance.getEntriesByName('runs-rendered')[0]!.startTime));
        await context.close();
      }
      const sorted = [...loads].sort((a, b) => a - b);
      // A figure, not an assertion: how long the first load of the page took, navigation start to the table of 100 runs drawn.
      process.stderr.write(`ui first load with 100 runs over loopback: median ${sorted[2]!.toFixed(0)} ms, min ${sorted[0]!.toFixed(0)} ms, max ${sorted[4]!.toFixed(0)} ms (n=5, each a new browser context)\n`);
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${many.url}#/trends`);
      await page.locator('figure[data-chart="trend-1.3"] canvas').waitFor({ timeout: 60_000 });
      expect(await page.locator('figure[data-chart="trend-1.3"]').getAttribute('data-shift')).toBe('worse');
      expect(await page.locator('figure[data-chart="trend-1.3"] figcaption').textContent()).toMatch(/regression from night-8\d/);
      expect(await page.locator('figure[data-shift="worse"]').count()).toBe(1);
      expect(await page.locator('figure[data-chart="trend-5.1"]').getAttribute('data-shift')).toBe('none');
      // 5.2's step came with the host's load: shown as the machine's, not as a regression.
      expect(await page.locator('figure[data-chart="trend-5.2"]').getAttribute('data-shift')).toBe('machine');
      expect(await page.locator('figure[data-chart="trend-5.2"] figcaption').textContent()).toMatch(/shift from night-[34]\d: \+\d\d.*the machine changed: other processes 4\.0 % → 21\.0 % of the CPUs.*Machine changed/);
      await shot(page, 'trends.png');
      await page.close();
    } finally {
      many.child.kill('SIGINT');
      await many.exited;
    }
  });
});
