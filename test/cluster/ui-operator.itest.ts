/**
 * The results UI served by the operator (src/operator/ui-server.ts over ui-source.ts) on the real
 * control plane (`npm run cluster:up`, then `npm run test:cluster`), in a real headless Chromium
 * (Debian's `chromium` through playwright-core: test/support/browser.ts).
 *
 * `swarmbench operator --ui-port N` runs as a process against the API server, watching one
 * namespace. In it: a Secret with a marked value; a BenchmarkSchedule, suspended, with a run-now
 * trigger, whose run (integration only, a pool of 3, about a minute) finishes and goes into the
 * schedule's history; then a run of two steps (integration, then stress) that is watched while it
 * runs, until its second step starts. Checked in the browser: the runs table lists the finished run (with its schedule's link)
 * and the running one, whose progress changes without a reload; the finished run's page shows
 * every test with the values of its export's results.json; the schedule's page charts each
 * test's trend from the history ConfigMap. Checked by plain HTTP: a Host not allowed is refused
 * (421), and no response, page or WebSocket message holds the Secret's value.
 *
 * Skipped (reason in the suite's name) when the cluster is down or there is no Chromium;
 * SWARMBENCH_REQUIRE_CLUSTER=1 fails instead when the cluster is down.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResultDocument } from '../../src/api/schema.ts';
import { valueText } from '../../src/report/format.ts';
import { chromiumExecutable, hostGet } from '../support/browser.ts';
import { PROMETHEUS_URL } from './lib/config.ts';
import { adminClients, clusterGate, freePort, kill9, kubectl, prepareNamespace, startOperator, until, type OperatorProcess } from './lib/itest.ts';

const gate = await clusterGate('the results UI served by the operator');
const exe = chromiumExecutable();
const skip = gate.notUp ? gate.title : !exe ? 'the results UI served by the operator [SKIPPED: no Chromium; install Debian\'s chromium or set SWARMBENCH_CHROMIUM]' : undefined;

const ns = `ui-op-${Date.now().toString(36)}`;
const GROUP = 'swarmbench.io';
const VERSION = 'v1alpha1';
/** Nothing the UI serves may hold this (nor its base64): the value of a Secret in the namespace. */
const MARK = `uiop-secret-${randomBytes(8).toString('hex')}`;
const SMALL = { mode: 'quick', categories: ['integration'], trials: 3, agents: { poolSize: 3 }, cleanup: { policy: 'Never' }, prometheus: { url: PROMETHEUS_URL } };
/** Integration (about half a minute) then stress: the progress moves when stress starts. */
const TWO_STEPS = { ...SMALL, categories: ['integration', 'stress'] };
const FINISHED = ['Succeeded', 'Failed'];

interface Run {
  metadata: { name: string; uid: string; labels?: Record<string, string> };
  status?: { phase?: string; progress?: { completedSteps?: number }; export?: { configMapName: string } };
}
interface Row {
  id: string;
  name: string;
  phase: string;
  schedule?: { id: string; name: string };
}

/** A raw GET (the Host header as given), with the body. */
const get = (port: number, path: string, host: string) => hostGet(port, path, host);

describe.skipIf(!!skip)(skip ?? 'the results UI served by the operator', () => {
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let op: OperatorProcess;
  let port = 0;
  let url = '';
  let browser: Browser;
  /** Every body the UI sent: HTTP responses here and in the browser, WebSocket messages. */
  const seen: string[] = [];
  let finished: Run;
  const opLog = () => op.log.join('').slice(-4000);
  const readRun = async (name: string) => (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'benchmarkruns', name })) as Run;
  const api = async <T>(path: string): Promise<T> => {
    const r = await get(port, path, `127.0.0.1:${port}`);
    seen.push(r.body);
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.body}`);
    return JSON.parse(r.body) as T;
  };
  const rows = async () => (await api<{ runs: Row[] }>('/api/runs')).runs;

  beforeAll(async () => {
    ({ core, custom } = adminClients());
    prepareNamespace(ns);
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'ui-secret' }, stringData: { token: MARK } } });
    port = await freePort();
    op = startOperator(ns, ['--leader-elect', 'false', '--ui-port', String(port), '--ui-bind-address', '127.0.0.1']);
    url = `http://127.0.0.1:${port}/`;
    await until('the UI answers', async () => (await get(port, '/api/runs', `127.0.0.1:${port}`).catch(() => ({ status: 0 }))).status === 200, 60_000, 250);
    browser = await chromium.launch({ executablePath: exe!, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });

    // The schedule's run: started at once by run-now, though the schedule is suspended.
    await custom.createNamespacedCustomObject({
      group: GROUP, version: VERSION, namespace: ns, plural: 'benchmarkschedules',
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'BenchmarkSchedule', metadata: { name: 'nightly', annotations: { 'swarmbench.io/run-now': 'ui' } }, spec: { schedule: '0 0 1 1 *', suspend: true, runTemplate: { spec: SMALL } } },
    });
    const started = Date.now();
    finished = await until('the schedule\'s run finished', async () => {
      const list = (await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'benchmarkruns', labelSelector: 'swarmbench.io/schedule=nightly' })) as { items: Run[] };
      return list.items.find((r) => FINISHED.includes(r.status?.phase ?? '') && r.status?.export);
    }, 240_000, 1000).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${opLog()}`);
    });
    process.stderr.write(`ui-operator: the schedule's run ${finished.metadata.name} finished (${finished.status?.phase}) in ${Math.round((Date.now() - started) / 1000)} s\n`);
    await until('the history has the run', async () => {
      const s = (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'benchmarkschedules', name: 'nightly' })) as { status?: { history?: { runs?: number } } };
      return (s.status?.history?.runs ?? 0) >= 1;
    }, 60_000, 500);
  });

  afterAll(async () => {
    await browser?.close();
    if (op) await kill9(op.proc);
    kubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  it('the runs table lists the finished run and a running one whose progress changes without a reload', async () => {
    await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'benchmarkruns', body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'BenchmarkRun', metadata: { name: 'two' }, spec: TWO_STEPS } });
    await until('two is running its first step', async () => {
      const r = await readRun('two');
      return r.status?.phase === 'Running' && (r.status.progress?.completedSteps ?? 0) === 0;
    }, 60_000, 250);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('response', (r) => void r.text().then((t) => seen.push(t), () => undefined));
    page.on('websocket', (ws) => ws.on('framereceived', (f) => seen.push(String(f.payload))));
    await page.goto(url);
    const two = page.locator('#runs tr', { has: page.locator('a', { hasText: /^two$/ }) });
    await two.waitFor();
    await page.evaluate(() => ((globalThis as unknown as { __mark?: number }).__mark = 1));
    const before = { phase: await two.getAttribute('data-phase'), completed: await two.locator('td.progress').getAttribute('data-completed') };
    expect(before.phase).toBe('Running');
    // The finished run is listed beside it, with its schedule's link.
    const done = page.locator(`#runs tr[data-run-id]`, { has: page.locator('a', { hasText: finished.metadata.name }) });
    expect(FINISHED).toContain(await done.getAttribute('data-phase'));
    expect(await done.locator('a.schedule-link').textContent()).toBe('schedule nightly');
    expect(await page.locator('#schedules li a').allTextContents()).toEqual([`${ns}/nightly`]);
    const rendered = await page.evaluate(() => performance.getEntriesByName('runs-rendered')[0]?.startTime);
    // Its own page while it runs: the steps from the attempt's params, the first one running.
    const id = (await rows()).find((r) => r.name === 'two')!.id;
    const live = await browser.newPage();
    await live.goto(`${url}#/run/${id}`);
    await live.locator('#live-steps li').first().waitFor();
    expect(await live.locator('#live-steps li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-step')))).toEqual(['integration', 'stress']);
    await live.close();
    const t0 = Date.now();
    // The progress moves (the second step starts, or the run ends) with no navigation.
    await expect
      .poll(async () => {
        const phase = await two.getAttribute('data-phase');
        const completed = await two.locator('td.progress').getAttribute('data-completed');
        return phase !== 'Running' || completed !== before.completed;
      }, { timeout: 180_000, interval: 250 })
      .toBe(true);
    process.stderr.write(`ui-operator: the running run's progress changed on the page ${Math.round((Date.now() - t0) / 1000)} s after it was opened (from ${before.completed} steps done); the table was drawn ${Math.round(rendered ?? -1)} ms after navigation\n`);
    expect(await page.evaluate(() => (globalThis as unknown as { __mark?: number }).__mark)).toBe(1);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("the finished run's page shows every test with the values of its export's results.json", async () => {
    const cm = await core.readNamespacedConfigMap({ namespace: ns, name: finished.status!.export!.configMapName });
    const doc = ResultDocument.parse(JSON.parse(cm.data!['results.json']!));
    const row = (await rows()).find((r) => r.name === finished.metadata.name)!;
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('response', (r) => void r.text().then((t) => seen.push(t), () => undefined));
    await page.goto(`${url}#/run/${row.id}`);
    await page.locator('table.tests').first().waitFor();
    const shown = await page.locator('table.tests tbody tr').evaluateAll((trs) =>
      trs.map((tr) => ({ id: tr.getAttribute('data-test'), result: tr.getAttribute('data-result'), raw: tr.querySelector('td.value')!.getAttribute('data-value'), text: tr.querySelector('td.value')!.textContent })),
    );
    expect(shown.map((r) => r.id)).toEqual(doc.tests.map((t) => t.id));
    expect(doc.tests.length).toBeGreaterThan(0);
    expect([...new Set(doc.tests.map((t) => t.category))]).toEqual(['integration']);
    for (const t of doc.tests) {
      const r = shown.find((x) => x.id === t.id)!;
      expect(r.raw, t.id).toBe(t.value === null ? 'null' : String(t.value));
      expect(r.text, t.id).toBe(valueText(t));
      expect(r.result, t.id).toBe(t.result);
    }
    // Its exports, as the ConfigMap holds them.
    const csv = await get(port, `/api/runs/${row.id}/exports/summary.csv`, `localhost:${port}`);
    expect(csv.status).toBe(200);
    expect(csv.body).toBe(cm.data!['summary.csv']);
    await page.close();
  });

  it("the schedule's page charts each test's trend from its history", async () => {
    const row = (await rows()).find((r) => r.name === finished.metadata.name)!;
    expect(row.schedule?.name).toBe('nightly');
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('response', (r) => void r.text().then((t) => seen.push(t), () => undefined));
    await page.goto(`${url}#/run/${row.id}`);
    await page.goto(`${url}#/schedule/${row.schedule!.id}`);
    await page.locator('h1', { hasText: `Schedule ${ns}/nightly` }).waitFor();
    const sched = await api<{ runs: number; trends: { id: string; points: unknown[] }[]; runRows: Row[] }>(`/api/schedules/${row.schedule!.id}`);
    expect(sched.runs).toBe(1);
    expect(sched.runRows.map((r) => r.name)).toEqual([finished.metadata.name]);
    expect(sched.trends.length).toBeGreaterThan(0);
    await expect.poll(() => page.locator('figure.chart').count()).toBe(sched.trends.length);
    await expect.poll(() => page.locator('figure.chart canvas').count()).toBe(sched.trends.length);
    expect(await page.locator('#schedule-runs tbody tr').count()).toBe(1);
    await page.close();
  });

  it('a Host not allowed is refused (421); the UI is read-only (405)', async () => {
    const bad = await get(port, '/api/runs', `rebind.attacker.example:${port}`);
    expect(bad.status).toBe(421);
    expect(bad.body).toContain('allowed hosts');
    expect((await get(port, '/', `localhost:${port}`)).status).toBe(200);
    const post = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/api/runs', method: 'DELETE', headers: { host: `127.0.0.1:${port}` } }, (res) => (res.resume(), resolve(res.statusCode!)));
      req.on('error', reject);
      req.end();
    });
    expect(post).toBe(405);
  });

  it("no response of the UI holds the Secret's value", async () => {
    // Every route once more, directly: runs, each run's page and exports, schedules, trends.
    for (const r of await rows()) {
      await api(`/api/runs/${r.id}`);
      for (const f of ['results.json', 'summary.csv', 'junit.xml', 'report.md', 'report.txt']) seen.push((await get(port, `/api/runs/${r.id}/exports/${f}`, `127.0.0.1:${port}`)).body);
    }
    const { schedules } = await api<{ schedules: { id: string }[] }>('/api/schedules');
    for (const s of schedules) await api(`/api/schedules/${s.id}`);
    await api('/api/trends');
    expect(seen.length).toBeGreaterThan(20);
    const all = seen.join('\n');
    expect(all).toContain(finished.metadata.name);
    expect(all).not.toContain(MARK);
    expect(all).not.toContain(Buffer.from(MARK).toString('base64'));
    process.stderr.write(`ui-operator: ${seen.length} responses and messages, ${all.length} characters, none with the Secret's value\n`);
  });
});
