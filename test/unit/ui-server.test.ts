/**
 * The results UI's server (src/ui/server.ts) over the local source (src/ui/local.ts), in this
 * process, over real folders: what it serves, what it refuses (writes, bodies, foreign hosts and
 * origins, long URLs, paths out of its list), its headers, the live run's events. The pages in a
 * browser: test/e2e/ui-browser.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StepResult } from '../../src/api/schema.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { buildPlan } from '../../src/plan/plan.ts';
import { writeExports } from '../../src/report/exports.ts';
import { LiveRun, LocalSource } from '../../src/ui/local.ts';
import { CSP, MAX_URL, startUiServer, type UiServer } from '../../src/ui/server.ts';
import type { RunPage, RunRow, UiEvent } from '../../src/ui/source.ts';
import { CLI_ENTRY, REPO_ROOT } from '../../src/paths.ts';
import { serve } from '../support/browser.ts';
import { QUICK } from '../support/history.ts';

const work = mkdtempSync(join(tmpdir(), 'swarmbench-ui-unit-'));
let ui: UiServer;
let source: LocalSource;
let port: number;

/** A raw HTTP request (no URL normalisation), with the headers given. */
function raw(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const getJson = async <T>(path: string): Promise<T> => JSON.parse((await raw('GET', path)).body) as T;

beforeAll(async () => {
  writeExports(join(work, 'runs', 'quick'), QUICK);
  mkdirSync(join(work, 'runs', 'broken'), { recursive: true });
  writeFileSync(join(work, 'runs', 'broken', 'results.json'), '{"kind": "BenchmarkResult"');
  source = new LocalSource({ paths: [join(work, 'runs')] });
  ui = await startUiServer({ source, port: 0 });
  port = Number(new URL(ui.url).port);
});
afterAll(async () => {
  await ui.close();
  source.close();
  rmSync(work, { recursive: true, force: true });
});

describe('the UI server serves', () => {
  it('the page, with a strict CSP, no inline script or style, and uPlot from the package', async () => {
    const r = await raw('GET', '/');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['content-security-policy']).toBe(CSP);
    expect(CSP).toContain("script-src 'self'");
    expect(CSP).not.toContain('unsafe');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['x-frame-options']).toBe('DENY');
    // Every script has a src on this server; no inline script, no style attribute or element.
    const scripts = [...r.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const s of scripts) {
      expect(s[1]).toMatch(/src="\/(static|vendor)\//);
      expect(s[2]).toBe('');
    }
    expect(r.body).not.toMatch(/<style|style=|https?:\/\//);
    const uplot = await raw('GET', '/vendor/uplot.js');
    expect(uplot.status).toBe(200);
    expect(uplot.body).toBe(readFileSync(join(import.meta.dirname, '../../node_modules/uplot/dist/uPlot.iife.min.js'), 'utf8'));
    const head = await raw('HEAD', '/static/app.js');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('the runs, an unreadable one with the file and the problem, and a run page with its charts and headline', async () => {
    const { runs, problems } = await getJson<{ runs: RunRow[]; problems: string[] }>('/api/runs');
    expect(problems).toEqual([]);
    expect(runs.map((r) => [r.name, r.phase])).toEqual([
      ['quick', 'Failed'],
      ['broken', 'Unreadable'],
    ]);
    expect(runs[1]!.error?.startsWith(`${join(work, 'runs', 'broken', 'results.json')}: not JSON: `)).toBe(true);
    expect(runs[0]).toMatchObject({ verdict: 'Failed', successRate: 88.5, passed: 23, total: 27, durationMs: 188401, mode: 'quick' });
    const page = await getJson<RunPage & { charts: { id: string; series: unknown[] }[]; headline: unknown[] }>(`/api/runs/${runs[0]!.id}`);
    expect(page.doc?.tests).toHaveLength(27);
    expect(page.exports).toEqual(['results.json', 'summary.csv', 'junit.xml', 'report.md', 'report.txt']);
    expect(page.charts.map((c) => [c.id, c.series.length])).toEqual([
      ['throughput-agents', 2],
      ['latency-agents', 3],
      ['throughput-batch', 1],
      ['latency-tests', 3],
    ]);
    expect(page.headline).toHaveLength(4);
    const bad = await getJson<RunPage>(`/api/runs/${runs[1]!.id}`);
    expect(bad.doc).toBeUndefined();
    expect(bad.row.error).toContain('not JSON');
  });

  it('the exports as text, sandboxed, by their five names only', async () => {
    const { runs } = await getJson<{ runs: RunRow[] }>('/api/runs');
    const md = await raw('GET', `/api/runs/${runs[0]!.id}/exports/report.md`);
    expect(md.status).toBe(200);
    expect(md.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(md.headers['content-security-policy']).toBe(`${CSP}; sandbox`);
    expect(md.body).toBe(readFileSync(join(work, 'runs', 'quick', 'report.md'), 'utf8'));
    expect((await raw('GET', `/api/runs/${runs[0]!.id}/exports/results.json`)).headers['content-type']).toBe('application/json; charset=utf-8');
    expect((await raw('GET', `/api/runs/${runs[0]!.id}/exports/package.json`)).status).toBe(404);
    expect((await raw('GET', `/api/runs/${runs[1]!.id}/exports/report.md`)).status).toBe(404);
  });

  it('a comparison of two runs, and a bad id as the field it is', async () => {
    const { runs } = await getJson<{ runs: RunRow[] }>('/api/runs');
    const same = await getJson<{ ok: boolean; comparison: { regressed: string[]; metrics: unknown[] } }>(`/api/compare?run=${runs[0]!.id}&baseline=${runs[0]!.id}`);
    expect(same.ok).toBe(true);
    expect(same.comparison.metrics).toHaveLength(27);
    expect(same.comparison.regressed).toEqual([]);
    const bad = await raw('GET', `/api/compare?run=${runs[0]!.id}&baseline=../x`);
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toEqual({ error: 'baseline: give the id of a run' });
    const unreadable = await raw('GET', `/api/compare?run=${runs[0]!.id}&baseline=${runs[1]!.id}`);
    expect(unreadable.status).toBe(422);
    expect(JSON.parse(unreadable.body).error).toMatch(/^baseline: .*broken\/results\.json: not JSON/);
  });
});

describe('the UI server refuses', () => {
  it('every method but GET and HEAD (405, Allow), and a request body (413)', async () => {
    for (const m of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      const r = await raw(m, '/api/runs');
      expect(r.status, m).toBe(405);
      expect(r.headers.allow).toBe('GET, HEAD');
    }
    expect((await raw('GET', '/api/runs', { 'content-length': '5' }, 'hello')).status).toBe(413);
  });

  it('paths out of its list: traversal, encoded or not, and anything else is 404', async () => {
    for (const p of ['/static/../../package.json', '/vendor/../package.json', '/static/..%2f..%2fpackage.json', '//etc/passwd', '/api/runs/..%2F..%2Fetc', '/api/runs/x/exports/..%2fresults.json', '/src/ui/server.ts']) {
      const r = await raw('GET', p);
      expect(r.status, p).toBe(404);
      expect(r.body, p).not.toContain('"dependencies"');
    }
    expect((await raw('GET', `/${'a'.repeat(MAX_URL)}`)).status).toBe(414);
  });

  it('a Host that is not a loopback name (DNS rebinding) and a WebSocket from another origin', async () => {
    expect((await raw('GET', '/api/runs', { host: 'evil.example' })).status).toBe(421);
    expect((await raw('GET', '/api/runs', { host: `localhost:${port}` })).status).toBe(200);
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/api/events`, { origin: 'http://evil.example' });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode!));
      ws.on('open', () => resolve(101));
    });
    expect(status).toBe(403);
  });
});

describe('the events', () => {
  it('a page is told when a run appears in a folder', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/events`, { origin: `http://127.0.0.1:${port}` });
    const got = new Promise<UiEvent>((resolve) => ws.on('message', (d) => resolve(JSON.parse(String(d)) as UiEvent)));
    await new Promise((r) => ws.on('open', r));
    writeExports(join(work, 'runs', 'later'), { ...QUICK, run: { ...QUICK.run, name: 'later' } });
    expect(await got).toEqual({ type: 'list' });
    ws.close();
    const { runs } = await getJson<{ runs: RunRow[] }>('/api/runs');
    expect(runs.map((r) => r.name).sort()).toEqual(['broken', 'later', 'quick']);
  });

  it('a live run: its row, each step, the tests judged as a step finishes, then its result', async () => {
    const live = new LiveRun({ name: 'live', outDir: join(work, 'live') });
    const src = new LocalSource({ live });
    const events: UiEvent[] = [];
    const stop = src.subscribe((e) => events.push(e));
    const params = resolveParams({ mode: 'quick' }, ['integration', 'stress']);
    live.start(buildPlan(params), params, '2026-12-01T00:00:00.000Z');
    expect((await src.list()).runs[0]).toMatchObject({ id: 'live', phase: 'Running', progress: { completed: 0, total: 2 }, total: 6 });
    live.progress(0, 2, 'integration', '5.1 workflows');
    expect((await src.list()).runs[0]!.progress).toEqual({ completed: 0, total: 2, current: 'integration', detail: '5.1 workflows' });
    const measurements = QUICK.tests
      .filter((t) => t.category === 'integration')
      .map((t) => ({ id: t.id, value: t.value, samples: t.samples, ...(t.rawSamples ? { raw: t.rawSamples } : {}), ...(t.details ? { details: t.details } : {}) }));
    const step: StepResult = { apiVersion: 'swarmbench.io/v1alpha1', kind: 'StepResult', step: 'integration', category: 'integration', attempt: 1, startedAt: '2026-12-01T00:00:00.000Z', finishedAt: '2026-12-01T00:00:10.000Z', node: 'here', measurements };
    live.stepDone(step);
    const page = (await src.page('live'))!;
    expect(page.live!.steps.map((s) => [s.name, s.state])).toEqual([
      ['integration', 'done'],
      ['stress', 'pending'],
    ]);
    expect(page.live!.tests.map((t) => [t.id, t.value])).toEqual(QUICK.tests.filter((t) => t.category === 'integration').map((t) => [t.id, t.value]));
    expect(page.row.progress).toMatchObject({ completed: 1, total: 2 });
    // The next step never reports done: it failed when the run ends.
    live.progress(1, 2, 'stress');
    live.finish({ ...QUICK, run: { ...QUICK.run, name: 'live' } }, join(work, 'runs', 'quick', 'results.json'));
    const done = (await src.page('live'))!;
    expect(done.row.phase).toBe('Failed');
    expect(done.doc?.tests).toHaveLength(27);
    expect(done.live!.steps.map((s) => s.state)).toEqual(['done', 'failed']);
    expect(events.filter((e) => e.type === 'live').length).toBeGreaterThanOrEqual(4);
    expect(events.at(-1)).toMatchObject({ type: 'row', row: { id: 'live', phase: 'Failed' } });
    stop();
    src.close();
  });
});

describe('the commands', () => {
  const cli = (args: string[]) => spawnSync(process.execPath, [CLI_ENTRY, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });

  it('`swarmbench ui` serves until SIGTERM (exit 0) and says how many runs it found', async () => {
    const s = await serve(['ui', join(work, 'runs'), '--port', '0'], 'stdout');
    expect(s.stdout()).toMatch(/^swarmbench ui: \d runs from .*, read-only, until Ctrl-C: http:\/\/127\.0\.0\.1:\d+\/\n$/);
    expect((await fetch(`${s.url}api/runs`)).status).toBe(200);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  });

  it('refuse bad input with exit 2, naming the option or path', async () => {
    const missing = cli(['ui', join(work, 'nothere')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe(`swarmbench ui: cannot read ${join(work, 'nothere')}: ENOENT\n`);
    const port = cli(['ui', work, '--port', '70000']);
    expect(port.status).toBe(2);
    expect(port.stderr).toBe('swarmbench ui: --port: "70000" is not a port (0 to 65535)\n');
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const taken = (busy.address() as AddressInfo).port;
    const inUse = cli(['ui', work, '--port', String(taken)]);
    busy.close();
    expect(inUse.status).toBe(2);
    expect(inUse.stderr).toBe(`swarmbench ui: cannot listen on 127.0.0.1:${taken}: the port is in use (give another, or --port 0)\n`);
    const alone = cli(['run', '-f', 'x.yaml', '--ui-port', '0']);
    expect(alone.status).toBe(2);
    expect(alone.stderr).toBe('swarmbench run: --ui-host, --ui-port and --ui-dir need --ui\n');
    const dir = cli(['run', '-f', 'x.yaml', '--ui', '--ui-dir', join(work, 'nothere')]);
    expect(dir.status).toBe(2);
    expect(dir.stderr).toBe(`swarmbench run: --ui-dir: cannot read ${join(work, 'nothere')}: ENOENT\n`);
  });
});
