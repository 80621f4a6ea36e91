/**
 * The operator's host of the results UI (src/operator/ui-source.ts, src/operator/ui-server.ts)
 * over fake informer caches and a fake ConfigMap reader: the pure logic (rows from slim runs, the
 * export read once and kept within bounds, a running run's steps and tests from the cached params
 * and step results, a schedule's trends from its history ConfigMap, the informers' events as UI
 * events), the flags, and the UI server's allowed Host names. The real thing against an API
 * server and a browser: test/cluster/ui-operator.itest.ts.
 */
import type { V1ConfigMap } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { ResultDocument, StepResult } from '../../src/api/schema.ts';
import { BENCHMARKSCHEDULE_KIND, SCHEDULE_LABEL } from '../../src/api/schedule.ts';
import { runMetadata, type BenchmarkRunObject, type EventType } from '../../src/kube/informer.ts';
import { API_VERSION_FULL, paramsName, stepResultName } from '../../src/kube/names.ts';
import { exportConfigMap, paramsConfigMap } from '../../src/operator/desired.ts';
import { historyConfigMap } from '../../src/operator/schedule-history.ts';
import { ExportCache, OperatorUiSource, operatorRow, runIdOf, scheduleIdOf, type UiReader } from '../../src/operator/ui-source.ts';
import { parseUiFlags } from '../../src/operator/ui-server.ts';
import { stepResultConfigMap } from '../../src/platform/kubernetes/manifests.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { renderExports } from '../../src/report/exports.ts';
import { addRun, emptyHistory } from '../../src/report/trend.ts';
import { hostAllowed, startUiServer, type UiServer } from '../../src/ui/server.ts';
import type { UiEvent } from '../../src/ui/source.ts';
import { hostGet } from '../support/browser.ts';
import { nightly, QUICK } from '../support/history.ts';

const NS = 'team';
const NOW = Date.parse('2026-12-01T10:00:00.000Z');

class FakeCache<T extends { metadata?: { namespace?: string; name?: string } }> {
  readonly map = new Map<string, T>();
  private readonly handlers: ((o: T, t: EventType) => void)[] = [];
  synced = true;
  get(k: string) {
    return this.map.get(k);
  }
  list() {
    return [...this.map.values()];
  }
  hasSynced() {
    return this.synced;
  }
  on(h: (o: T, t: EventType) => void) {
    this.handlers.push(h);
  }
  put(o: T, type: EventType = this.map.has(`${o.metadata?.namespace}/${o.metadata?.name}`) ? 'update' : 'add') {
    this.map.set(`${o.metadata?.namespace}/${o.metadata?.name}`, o);
    for (const h of this.handlers) h(o, type);
  }
  remove(o: T) {
    this.map.delete(`${o.metadata?.namespace}/${o.metadata?.name}`);
    for (const h of this.handlers) h(o, 'delete');
  }
}

/** The ConfigMaps the API server holds, and every read asked of it. */
class FakeReader implements UiReader {
  readonly cms = new Map<string, V1ConfigMap>();
  readonly reads: string[] = [];
  async readConfigMap(namespace: string, name: string) {
    this.reads.push(`${namespace}/${name}`);
    return this.cms.get(`${namespace}/${name}`);
  }
  add(cm: V1ConfigMap) {
    this.cms.set(`${cm.metadata!.namespace}/${cm.metadata!.name}`, cm);
  }
}

const docOf = (name: string, attempt = 1): ResultDocument => ({ ...QUICK, run: { ...QUICK.run, name, attempt } });

function run(name: string, uid: string, status: Record<string, unknown>, extra: Partial<BenchmarkRunObject['metadata']> = {}): BenchmarkRunObject {
  // What the informer holds: slim (kube/informer.ts runMetadata).
  return runMetadata({ apiVersion: API_VERSION_FULL, kind: 'BenchmarkRun', metadata: { name, namespace: NS, uid, ...extra }, status: { ...status, tests: QUICK.tests } });
}

function setup() {
  const runs = new FakeCache<BenchmarkRunObject>();
  const schedules = new FakeCache<BenchmarkRunObject>();
  const configMaps = new FakeCache<V1ConfigMap>();
  const reader = new FakeReader();
  const source = new OperatorUiSource({ scopes: [{ namespace: NS, runs, schedules, configMaps }], reader, now: () => NOW });
  return { runs, schedules, configMaps, reader, source };
}

const finished = (name: string, uid: string, attempt = 1) =>
  run(name, uid, {
    phase: 'Failed', attempt, startedAt: QUICK.run.startedAt, finishedAt: QUICK.run.finishedAt, export: { configMapName: `${name}-results` },
    summary: { verdict: 'Failed', passed: 23, total: 27, failed: 3, skipped: 1, successRate: 88.5 }, progress: { completedSteps: 6, totalSteps: 6, currentStep: '' },
  });

describe('the operator UI source: rows', () => {
  it('a running run: its progress from the status, its duration so far; no verdict yet', () => {
    const r = run('live', 'u1', { phase: 'Running', attempt: 2, startedAt: '2026-12-01T09:59:00.000Z', progress: { completedSteps: 1, totalSteps: 2, currentStep: 'stress' }, summary: { verdict: 'Failed' } });
    expect(operatorRow(r, NOW)).toMatchObject({
      namespace: NS, name: 'live', attempt: 2, phase: 'Running', progress: { completed: 1, total: 2, current: 'stress' }, verdict: null, successRate: null, durationMs: 60_000, source: `BenchmarkRun ${NS}/live`,
    });
  });

  it('a finished run: verdict, counts, rate, duration and its export named; a schedule link when the schedule is known', () => {
    const owner = { apiVersion: API_VERSION_FULL, kind: BENCHMARKSCHEDULE_KIND, name: 'nightly', uid: 'sched-uid', controller: true };
    const r = run('n1', 'u2', { ...finished('x', 'y').status, export: { configMapName: 'n1-results' } }, { labels: { [SCHEDULE_LABEL]: 'nightly' }, ownerReferences: [owner] });
    const row = operatorRow(r, NOW, (k) => (k === `${NS}/nightly` ? 'sID' : undefined));
    expect(row).toMatchObject({ phase: 'Failed', verdict: 'Failed', successRate: 88.5, passed: 23, total: 27, durationMs: 188_401, progress: { completed: 6, total: 6 }, schedule: { id: 'sID', name: 'nightly' } });
    expect(row.source).toBe(`BenchmarkRun ${NS}/n1 · ConfigMap n1-results`);
    expect(row.id).toMatch(/^k[0-9a-f]{16}$/);
    // A new run of the same name is a new id.
    expect(runIdOf(run('n1', 'other', {}))).not.toBe(row.id);
  });

  it('lists running runs first, then newest first; says when the cache has not synced', async () => {
    const { runs, source } = setup();
    runs.put(finished('old', 'u1'));
    runs.put(run('new', 'u2', { phase: 'Succeeded', startedAt: '2026-12-01T09:00:00.000Z' }));
    runs.put(run('going', 'u3', { phase: 'Running', startedAt: '2026-11-01T09:00:00.000Z' }));
    expect((await source.list()).runs.map((r) => r.name)).toEqual(['going', 'new', 'old']);
    runs.synced = false;
    expect((await source.list()).problems).toEqual([`the runs of ${NS} are still being listed`]);
  });
});

describe('the operator UI source: a finished run', () => {
  it('reads its export once, through the reader, and keeps it: document, exports, files', async () => {
    const { runs, reader, source } = setup();
    const r = finished('done', 'u1');
    runs.put(r);
    reader.add(exportConfigMap({ name: 'done', namespace: NS, uid: 'u1' }, 'done-results', 1, renderExports(docOf('done'))));
    const id = runIdOf(r);
    const page = (await source.page(id))!;
    expect(page.doc!.tests.map((t) => [t.id, t.value])).toEqual(QUICK.tests.map((t) => [t.id, t.value]));
    expect(page.exports).toEqual(['results.json', 'summary.csv', 'junit.xml', 'report.md', 'report.txt']);
    expect(page.row.mode).toBe('quick');
    expect(await source.exportFile(id, 'summary.csv')).toBe(renderExports(docOf('done'))['summary.csv']);
    expect((await source.document(id))!.ok).toBe(true);
    expect(reader.reads).toEqual([`${NS}/done-results`]);
    expect(await source.page('k0000000000000000')).toBeUndefined();
  });

  it('an export it does not control, or of another attempt, is not shown: the row says why', async () => {
    const { runs, reader, source } = setup();
    const a = finished('foreign', 'u1');
    const b = finished('stale', 'u2', 2);
    runs.put(a);
    runs.put(b);
    reader.add(exportConfigMap({ name: 'someone', namespace: NS, uid: 'other' }, 'foreign-results', 1, renderExports(docOf('foreign'))));
    reader.add(exportConfigMap({ name: 'stale', namespace: NS, uid: 'u2' }, 'stale-results', 1, renderExports(docOf('stale', 1))));
    expect((await source.page(runIdOf(a)))!.row).toMatchObject({ phase: 'Unreadable', error: 'its export ConfigMap foreign-results is not controlled by it' });
    expect((await source.page(runIdOf(b)))!.row).toMatchObject({ phase: 'Unreadable', error: 'its export ConfigMap stale-results holds run stale attempt 1, not attempt 2' });
    expect(await source.exportFile(runIdOf(a), 'results.json')).toBeUndefined();
    const gone = finished('gone', 'u3');
    runs.put(gone);
    expect(await source.document(runIdOf(gone))).toMatchObject({ ok: false, error: `${NS}/gone: its export ConfigMap gone-results is gone` });
  });

  it('the export cache is bounded in entries and bytes, and drops a deleted run', async () => {
    const c = new ExportCache(2, 1000);
    const e = (bytes: number) => ({ doc: QUICK, files: {}, bytes });
    c.set('a/1/x', e(100));
    c.set('b/1/x', e(100));
    c.get('a/1/x');
    c.set('c/1/x', e(100));
    expect(c.get('b/1/x')).toBeUndefined(); // the least recently used went
    expect(c.size()).toEqual({ entries: 2, bytes: 200 });
    c.set('d/1/x', e(900)); // over the bytes: the least recently used (a) goes
    expect(c.size()).toEqual({ entries: 2, bytes: 1000 });
    expect(c.get('a/1/x')).toBeUndefined();
    c.set('e/1/x', e(2000)); // larger than the whole budget: not kept
    expect(c.get('e/1/x')).toBeUndefined();
    c.dropPrefix('d/');
    expect(c.size()).toEqual({ entries: 1, bytes: 100 });

    const { runs, reader, source } = setup();
    const r = finished('done', 'u1');
    runs.put(r);
    reader.add(exportConfigMap({ name: 'done', namespace: NS, uid: 'u1' }, 'done-results', 1, renderExports(docOf('done'))));
    await source.page(runIdOf(r));
    runs.remove(r);
    runs.put(r);
    await source.page(runIdOf(r));
    expect(reader.reads).toHaveLength(2); // the delete dropped the cached export
  });
});

describe('the operator UI source: a running run, live', () => {
  const ref = { name: 'live', namespace: NS, uid: 'u9' };
  const params = resolveParams({ mode: 'quick' }, ['integration', 'stress']);
  const measurements = QUICK.tests
    .filter((t) => t.category === 'integration')
    .map((t) => ({ id: t.id, value: t.value, samples: t.samples, ...(t.rawSamples ? { raw: t.rawSamples } : {}), ...(t.details ? { details: t.details } : {}) }));
  const step: StepResult = { apiVersion: 'swarmbench.io/v1alpha1', kind: 'StepResult', step: 'integration', category: 'integration', attempt: 1, startedAt: '2026-12-01T00:00:00.000Z', finishedAt: '2026-12-01T00:00:10.000Z', node: 'n', measurements };

  it('its steps from the params, the tests of a finished step judged; the informers\' events become row and live events', async () => {
    const { runs, configMaps, source } = setup();
    const events: UiEvent[] = [];
    const stop = source.subscribe((e) => events.push(e));
    const r = run('live', 'u9', { phase: 'Running', attempt: 1, startedAt: '2026-12-01T09:59:00.000Z', progress: { completedSteps: 0, totalSteps: 2, currentStep: 'integration' } });
    runs.put(r);
    runs.put(run('other', 'u10', { phase: 'Pending' }));
    // Two runs came: one list event.
    await until(() => events.length > 0);
    expect(events).toEqual([{ type: 'list' }]);
    configMaps.put(paramsConfigMap(ref, 1, params, 'live-a1-token-xyz'));
    const empty = stepResultConfigMap({ name: stepResultName('live', 1, 'integration'), run: ref, attempt: 1, step: 'integration', category: 'integration' });
    configMaps.put(empty);
    let page = (await source.page(runIdOf(r)))!;
    expect(page.live!.steps.map((s) => [s.name, s.state])).toEqual([['integration', 'running'], ['stress', 'pending']]);
    expect(page.live!.tests).toEqual([]);

    configMaps.put({ ...empty, data: { 'result.json': JSON.stringify(step) } }, 'update');
    // The add of the empty result ConfigMap sent one too (the step running); then the result.
    const isDone = (e: UiEvent) => e.type === 'live' && e.live.steps[0]!.state === 'done';
    await until(() => events.some(isDone));
    const live = events.find(isDone) as Extract<UiEvent, { type: 'live' }>;
    expect(live.id).toBe(runIdOf(r));
    expect(live.live.steps.map((s) => [s.name, s.state])).toEqual([['integration', 'done'], ['stress', 'pending']]);
    expect(live.live.tests.map((t) => [t.id, t.value])).toEqual(QUICK.tests.filter((t) => t.category === 'integration').map((t) => [t.id, t.value]));

    const next = run('live', 'u9', { ...r.status, progress: { completedSteps: 1, totalSteps: 2, currentStep: 'stress' } });
    runs.put(next);
    expect(events.at(-1)).toMatchObject({ type: 'row', row: { id: runIdOf(r), progress: { completed: 1, total: 2, current: 'stress' } } });
    page = (await source.page(runIdOf(r)))!;
    expect(page.live!.steps.map((s) => s.state)).toEqual(['done', 'running']);
    // Nothing of the params ConfigMap but the params goes out: not the agent-token Secret's name.
    expect(JSON.stringify(page)).not.toContain('live-a1-token-xyz');
    stop();
    configMaps.put({ ...empty, data: { 'result.json': JSON.stringify(step) } }, 'update');
    runs.put(next);
    const n = events.length;
    await new Promise((r) => setImmediate(r));
    expect(events.length).toBe(n);
  });

  it('a step result of another run (another uid) is not used; the cached ones are not read again', async () => {
    const { runs, configMaps, reader, source } = setup();
    const r = run('live', 'u9', { phase: 'Running', attempt: 1, progress: { completedSteps: 1, totalSteps: 2 } });
    runs.put(r);
    const p = paramsConfigMap(ref, 1, params, 't');
    configMaps.put(p);
    const foreign = stepResultConfigMap({ name: stepResultName('live', 1, 'integration'), run: { ...ref, uid: 'someone-else' }, attempt: 1, step: 'integration', category: 'integration', json: JSON.stringify(step) });
    configMaps.put(foreign);
    const page = (await source.page(runIdOf(r)))!;
    expect(page.live!.steps.map((s) => [s.state, s.error])).toEqual([['failed', 'ended without a result of this attempt'], ['running', undefined]]);
    expect(page.live!.tests).toEqual([]);
    expect(reader.reads).toEqual([]);
    expect(paramsName('live', 1)).toBe(p.metadata!.name);
  });
});

async function until(ok: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('the operator UI source: schedules', () => {
  const sched = { apiVersion: API_VERSION_FULL, kind: BENCHMARKSCHEDULE_KIND, metadata: { name: 'nightly', namespace: NS, uid: 'sched-uid' } };
  const owner = { apiVersion: API_VERSION_FULL, kind: BENCHMARKSCHEDULE_KIND, name: 'nightly', uid: 'sched-uid', controller: true };

  it("a schedule's page: each test's trend over its history with the shift marked, and its runs", async () => {
    const { runs, schedules, reader, source } = setup();
    schedules.put(sched);
    let h = emptyHistory();
    for (let i = 0; i < 30; i++) h = addRun(h, nightly(i, { '1.3': i >= 20 ? 0.2 + (i % 3) * 0.001 : 0.1 + (i % 3) * 0.001 }), { samples: 4 });
    reader.add(historyConfigMap({ name: 'nightly', namespace: NS, uid: 'sched-uid' }, h));
    const mine = run('nightly-1', 'r1', { phase: 'Succeeded', startedAt: '2026-12-01T03:00:00.000Z' }, { ownerReferences: [owner], labels: { [SCHEDULE_LABEL]: 'nightly' } });
    runs.put(mine);
    runs.put(run('by-hand', 'r2', { phase: 'Succeeded' }, { labels: { [SCHEDULE_LABEL]: 'nightly' } }));
    const [row] = await source.schedules();
    expect(row).toEqual({ id: scheduleIdOf(sched), namespace: NS, name: 'nightly', source: `ConfigMap ${NS}/nightly-history` });
    const page = (await source.schedule(row!.id))!;
    expect(page.runs).toBe(30);
    expect(page.problems).toEqual([]);
    expect(page.runRows.map((r) => r.name)).toEqual(['nightly-1']);
    expect(page.runRows[0]!.schedule).toEqual({ id: row!.id, name: 'nightly' });
    const shifted = page.trends.filter((t) => t.shift);
    expect(shifted.map((t) => [t.id, t.shift!.direction, t.points[t.shift!.index]!.run])).toEqual([['1.3', 'worse', 'nightly-20']]);
    expect(page.trends.find((t) => t.id === '1.3')!.points).toHaveLength(30);
    expect(await source.schedule('s0000000000000000')).toBeUndefined();
  });

  it('no history yet, or one the schedule does not control: said, not read', async () => {
    const { schedules, reader, source } = setup();
    schedules.put(sched);
    const id = scheduleIdOf(sched);
    expect((await source.schedule(id))!.problems).toEqual(['no history yet: ConfigMap nightly-history is written when a run of the schedule finishes with a result']);
    reader.add(historyConfigMap({ name: 'nightly', namespace: NS, uid: 'impostor' }, addRun(emptyHistory(), nightly(1))));
    const page = (await source.schedule(id))!;
    expect(page.problems).toEqual(['ConfigMap nightly-history is not controlled by the schedule: not read']);
    expect(page.trends).toEqual([]);
  });
});

describe('the operator UI flags and allowed hosts', () => {
  it('parses --ui-port, --ui-bind-address, --ui-allowed-hosts, naming the flag at fault', () => {
    expect(parseUiFlags('', '127.0.0.1', 'localhost')).toBeUndefined();
    expect(parseUiFlags('8765', '0.0.0.0', 'localhost, 127.0.0.1,[::1],UI.example.com:443')).toEqual({ port: 8765, host: '0.0.0.0', allowedHosts: ['localhost', '127.0.0.1', '[::1]', 'ui.example.com:443'] });
    expect(() => parseUiFlags('http', '0.0.0.0', 'localhost')).toThrow('--ui-port must be an integer from 0 to 65535, not "http"');
    expect(() => parseUiFlags('70000', '0.0.0.0', 'localhost')).toThrow('--ui-port');
    expect(() => parseUiFlags('1', 'a b', 'localhost')).toThrow('--ui-bind-address: "a b" is not an address');
    expect(() => parseUiFlags('1', '::', 'evil.com/x')).toThrow('--ui-allowed-hosts: "evil.com/x" is not a host name or address');
    expect(() => parseUiFlags('1', '::', ' , ')).toThrow('--ui-allowed-hosts: give at least one host name');
  });

  it('hostAllowed: a name without a port allows any port; with a port, that port only', () => {
    const allowed = ['localhost', '127.0.0.1', '[::1]', 'ui.example.com:443'];
    expect(hostAllowed('localhost:9000', allowed)).toBe(true);
    expect(hostAllowed('LOCALHOST', allowed)).toBe(true);
    expect(hostAllowed('[::1]:8765', allowed)).toBe(true);
    expect(hostAllowed('ui.example.com:443', allowed)).toBe(true);
    expect(hostAllowed('ui.example.com', allowed)).toBe(false);
    expect(hostAllowed('ui.example.com:8443', allowed)).toBe(false);
    expect(hostAllowed('attacker.example:8765', allowed)).toBe(false);
    expect(hostAllowed('localhost.attacker.example', allowed)).toBe(false);
    expect(hostAllowed(undefined, allowed)).toBe(false);
  });
});

describe('the UI server with allowed hosts, bound to every address', () => {
  let ui: UiServer;
  let port: number;
  const fake = setup();
  beforeAll(async () => {
    fake.runs.put(finished('done', 'u1'));
    ui = await startUiServer({ source: fake.source, host: '0.0.0.0', port: 0, allowedHosts: ['localhost', 'ui.example.com'] });
    port = Number(new URL(ui.url).port);
  });
  afterAll(() => ui.close());
  const get = (host: string, path = '/api/runs') => hostGet(port, path, host);

  it('answers the allowed names, refuses any other Host (421) though bound to 0.0.0.0', async () => {
    expect((await get(`localhost:${port}`)).status).toBe(200);
    expect((await get('ui.example.com')).status).toBe(200);
    const bad = await get(`rebind.attacker.example:${port}`);
    expect(bad.status).toBe(421);
    expect(bad.body).toContain('this server answers only to localhost, ui.example.com');
    expect((await get(`127.0.0.1:${port}`)).status).toBe(421);
  });

  it('a WebSocket: same origin over http or https (a TLS ingress); another origin 403, another Host 421', async () => {
    const open = (host: string, origin: string) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/api/events`, { headers: { host, origin } });
        ws.on('open', () => (ws.close(), resolve(101)));
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode!));
        ws.on('error', () => undefined);
      });
    expect(await open('ui.example.com', 'https://ui.example.com')).toBe(101);
    expect(await open(`localhost:${port}`, `http://localhost:${port}`)).toBe(101);
    expect(await open('ui.example.com', 'https://attacker.example')).toBe(403);
    expect(await open('attacker.example', 'https://attacker.example')).toBe(421);
  });

  it('/api/schedules lists the schedules, /api/schedules/ID is one; an unknown one is 404', async () => {
    const sched = { apiVersion: API_VERSION_FULL, kind: BENCHMARKSCHEDULE_KIND, metadata: { name: 'nightly', namespace: NS, uid: 'sched-uid' } };
    fake.schedules.put(sched);
    expect(JSON.parse((await get('localhost')).body).schedules).toEqual([{ id: scheduleIdOf(sched), namespace: NS, name: 'nightly', source: `ConfigMap ${NS}/nightly-history` }]);
    expect(JSON.parse((await get('localhost', '/api/schedules')).body)).toEqual({ schedules: [{ id: scheduleIdOf(sched), namespace: NS, name: 'nightly', source: `ConfigMap ${NS}/nightly-history` }] });
    const page = await get('localhost', `/api/schedules/${scheduleIdOf(sched)}`);
    expect(page.status).toBe(200);
    expect(JSON.parse(page.body)).toMatchObject({ row: { name: 'nightly' }, runs: 0, trends: [] });
    expect((await get('localhost', '/api/schedules/s123')).status).toBe(404);
    expect((await get('localhost', '/api/schedules/../x')).status).toBe(404);
  });
});
