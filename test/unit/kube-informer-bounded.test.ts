/**
 * The informer's bounded memory (src/kube/informer.ts "Bounded memory", docs/operator.md "The
 * Kubernetes foundation") against a small HTTP stand-in for the API server's ConfigMap list and
 * watch: lists are paged; the operator's selector leaves exports out; an export the server sends
 * anyway is held as metadata only, by our cache and by the library's store alike; step results
 * and params keep their data within the byte budget, the least recently updated slimmed first;
 * a watch event's data is kept or dropped by the same rule; and the operator's reads of a slim
 * ConfigMap go to the API server (operator/cluster.ts).
 */
import { createServer, type ServerResponse, type Server } from 'node:http';
import { type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { benchmarkRunInformer, configMapInformer, isSlimmed, type Informer } from '../../src/kube/informer.ts';
import { COMPONENT_LABEL } from '../../src/kube/names.ts';
import {
  CONFIGMAP_CACHED_COMPONENTS, KubeRunCluster, OPERATOR_CONFIGMAP_SELECTOR, keepsConfigMapData, scopedCaches, selectorMatches,
} from '../../src/operator/cluster.ts';
import { listenKube } from '../support/kube-stub.ts';

const quiet = { info: () => {}, warn: () => {}, debug: () => {}, error: () => {} } as never;

let server: Server;
let kc: KubeConfig;
/** The ConfigMaps the stand-in holds, in list order. */
let store: V1ConfigMap[] = [];
/** The BenchmarkRuns the stand-in holds. */
let runs: object[] = [];
/** Whether the stand-in applies the label selector (a real API server does). */
let honourSelector = true;
const lists: URLSearchParams[] = [];
const gets: string[] = [];
const watchers = new Set<ServerResponse>();
let rv = 100;

const cm = (name: string, component: string, bytes: number, extra: Partial<V1ConfigMap['metadata']> = {}): V1ConfigMap => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: {
    name, namespace: 'ns', resourceVersion: String(++rv), uid: `uid-${name}`,
    labels: { 'app.kubernetes.io/managed-by': 'swarmbench', 'swarmbench.io/run': 'r', [COMPONENT_LABEL]: component },
    managedFields: [{ manager: 'x', operation: 'Update' }],
    ...extra,
  },
  data: { 'results.json': 'x'.repeat(bytes) },
});

/** Watch events so far: a watch from resourceVersion N is sent those after N first, as the API server does. */
const history: { rv: number; line: string }[] = [];

/** Records a watch event and sends it to every open watch. */
function emit(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: V1ConfigMap): void {
  const line = `${JSON.stringify({ type, object: { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++rv) } } })}\n`;
  history.push({ rv, line });
  for (const w of watchers) w.write(line);
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    if (url.pathname === '/api/v1/namespaces/ns/configmaps' && q.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      const from = Number(q.get('resourceVersion') ?? '0');
      for (const h of history) if (h.rv > from) res.write(h.line);
      watchers.add(res);
      res.on('close', () => watchers.delete(res));
      return;
    }
    if (url.pathname === '/api/v1/namespaces/ns/configmaps') {
      lists.push(q);
      const sel = q.get('labelSelector') ?? '';
      const all = store.filter((o) => !honourSelector || selectorMatches(o.metadata?.labels, sel));
      const from = Number(q.get('continue') ?? '0');
      const limit = Number(q.get('limit') ?? '0') || all.length;
      const items = all.slice(from, from + limit);
      const next = from + limit < all.length ? String(from + limit) : undefined;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'ConfigMapList', apiVersion: 'v1', metadata: { resourceVersion: String(rv), ...(next ? { continue: next } : {}) }, items }));
      return;
    }
    if (url.pathname === '/apis/swarmbench.io/v1alpha1/namespaces/ns/benchmarkruns') {
      if (q.get('watch') === 'true') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        watchers.add(res);
        res.on('close', () => watchers.delete(res));
        return;
      }
      lists.push(q);
      // As the API server answers a custom resource list: plain JSON, the token in `metadata.continue`.
      const from = Number(q.get('continue') ?? '0');
      const limit = Number(q.get('limit') ?? '0') || runs.length;
      const next = from + limit < runs.length ? String(from + limit) : undefined;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'BenchmarkRunList', apiVersion: 'swarmbench.io/v1alpha1', metadata: { resourceVersion: String(rv), ...(next ? { continue: next } : {}) }, items: runs.slice(from, from + limit) }));
      return;
    }
    const m = /^\/api\/v1\/namespaces\/ns\/configmaps\/([^/]+)$/.exec(url.pathname);
    if (m && req.method === 'GET') {
      gets.push(m[1]!);
      const o = store.find((x) => x.metadata?.name === m[1]);
      res.writeHead(o ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(o ?? { kind: 'Status', code: 404, reason: 'NotFound' }));
      return;
    }
    res.writeHead(405).end();
  });
  kc = await listenKube(server);
});

afterAll(() => new Promise<void>((r) => {
  for (const w of watchers) w.destroy();
  server.close(() => r());
}));

let informer: Informer<V1ConfigMap> | undefined;
beforeEach(() => {
  store = [];
  honourSelector = true;
  lists.length = 0;
  gets.length = 0;
  history.length = 0;
  for (const w of watchers) w.destroy();
  watchers.clear();
});
afterEach(async () => {
  await informer?.stop();
  informer = undefined;
});

/** The operator's ConfigMap informer (main.ts), with a budget given here. */
function operatorInformer(budget?: number): Informer<V1ConfigMap> {
  informer = configMapInformer(kc, {
    namespace: 'ns', labelSelector: OPERATOR_CONFIGMAP_SELECTOR, keepData: keepsConfigMapData, log: quiet,
    ...(budget !== undefined ? { dataBudgetBytes: budget } : {}),
  });
  informer.start();
  return informer;
}

/** What the library's own store (ListWatch) holds: the informer's current generation. */
const libraryStore = (i: Informer<V1ConfigMap>): V1ConfigMap[] => (i as unknown as { current: { list(): V1ConfigMap[] } }).current.list();

const heldChars = (objs: V1ConfigMap[]): number => objs.reduce((n, o) => n + JSON.stringify(o).length, 0);

async function until(what: string, fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('the BenchmarkRun informer: paged, and held slim', () => {
  it('reads every page of a custom resource list (its continue token is `metadata.continue`, not the typed lists\' `_continue`)', async () => {
    runs = Array.from({ length: 7 }, (_, n) => ({
      apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun',
      metadata: {
        name: `run-${n}`, namespace: 'ns', uid: `u${n}`, resourceVersion: String(++rv), managedFields: [{ manager: 'kubectl' }],
        annotations: { team: 'perf', 'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(5000) },
      },
      spec: { mode: 'quick' },
      status: { phase: 'Succeeded', tests: Array.from({ length: 27 }, (_, k) => ({ id: String(k), value: k })) },
    }));
    const i = benchmarkRunInformer(kc, { namespace: 'ns', listPageSize: 3, log: quiet });
    try {
      i.start();
      await i.synced;
      expect(lists.map((q) => q.get('continue'))).toEqual([null, '3', '6']);
      expect(i.keys().sort()).toEqual(runs.map((_, n) => `ns/run-${n}`).sort());
      // Held slim: metadata without managedFields or kubectl's last-applied copy, and the phase only.
      const r0 = i.get('ns/run-0') as { metadata: { managedFields?: unknown; annotations?: Record<string, string> }; spec?: unknown; status?: unknown };
      expect(r0.spec).toBeUndefined();
      expect(r0.status).toEqual({ phase: 'Succeeded' });
      expect(r0.metadata.managedFields).toBeUndefined();
      expect(r0.metadata.annotations).toEqual({ team: 'perf' });
    } finally {
      await i.stop();
    }
  });
});

describe('the operator ConfigMap informer: bounded', () => {
  it('asks only for the components an attempt makes: exports and baselines are not listed', async () => {
    store = [cm('r-export', 'export', 10), cm('r-baseline', 'baseline', 10), cm('r-result', 'step-result', 10), cm('r-params', 'params', 10), cm('r-seeds', 'agent-seeds', 10)];
    const i = operatorInformer();
    await i.synced;
    expect(lists[0]!.get('labelSelector')).toBe(OPERATOR_CONFIGMAP_SELECTOR);
    expect(i.keys().sort()).toEqual(['ns/r-params', 'ns/r-result', 'ns/r-seeds']);
    expect(CONFIGMAP_CACHED_COMPONENTS).not.toContain('export');
  });

  it('100 export ConfigMaps of 500 KB sent anyway (a server that ignores the selector), in pages of 50: none of their data is held, by the cache or the library', async () => {
    honourSelector = false;
    const big = 'y'.repeat(500 * 1024);
    store = Array.from({ length: 100 }, (_, n) => ({ ...cm(`run-${n}-export`, 'export', 0), data: { 'results.json': big } }));
    const i = operatorInformer();
    await i.synced;
    expect(lists.map((q) => q.get('limit'))).toEqual(['50', '50']);
    expect(lists.map((q) => q.get('continue'))).toEqual([null, '50']);
    expect(i.list()).toHaveLength(100);
    expect(i.list().every((o) => o.data === undefined && isSlimmed(o) && o.metadata?.managedFields === undefined)).toBe(true);
    await until('the library store', () => libraryStore(i).length === 100);
    expect(libraryStore(i).every((o) => o.data === undefined)).toBe(true);
    // 50 MB went through; what is held is metadata, well under 1 KB an object.
    expect(heldChars(i.list())).toBeLessThan(100 * 1024);
    expect(heldChars(libraryStore(i))).toBeLessThan(100 * 1024);
    expect(i.wholeBytesHeld()).toBe(0);
  });

  it('keeps step results and params whole within the budget, the least recently updated slimmed first; seeds never', async () => {
    store = [cm('a-result', 'step-result', 400), cm('b-params', 'params', 400), cm('c-seeds', 'agent-seeds', 400), cm('d-result', 'step-result', 5000)];
    const i = operatorInformer(1000);
    await i.synced;
    const held = (k: string) => i.get(`ns/${k}`)!;
    expect(held('a-result').data?.['results.json']).toHaveLength(400);
    expect(held('b-params').data?.['results.json']).toHaveLength(400);
    expect(isSlimmed(held('c-seeds'))).toBe(true); // not a data component
    expect(isSlimmed(held('d-result'))).toBe(true); // alone over the budget
    expect(i.wholeBytesHeld()).toBe(2 * (400 + 'results.json'.length));
    // The library's store holds every one slim, kept or not.
    expect(libraryStore(i).every((o) => o.data === undefined)).toBe(true);

    // A new step result over the budget with the others: the oldest whole one (a-result) is slimmed.
    const whole = held('a-result');
    const e = cm('e-result', 'step-result', 400);
    store.push(e);
    emit('ADDED', e);
    await until('the new result', () => i.get('ns/e-result') !== undefined);
    expect(i.get('ns/e-result')!.data?.['results.json']).toHaveLength(400);
    expect(isSlimmed(held('a-result'))).toBe(true);
    expect(held('b-params').data).toBeDefined();
    expect(i.wholeBytesHeld()).toBeLessThanOrEqual(1000);
    // A reader holding the whole object before it was slimmed keeps it whole (a new object was cached).
    expect(whole.data?.['results.json']).toHaveLength(400);
    expect(libraryStore(i).find((o) => o.metadata?.name === 'e-result')!.data).toBeUndefined();

    // A delete gives the budget back.
    emit('DELETED', e);
    await until('the delete', () => i.get('ns/e-result') === undefined);
    expect(i.wholeBytesHeld()).toBe(400 + 'results.json'.length);
  });

  it("the operator's reads: a whole cached result from the cache, a slim one from the API server; lists from the cache only for cached components", async () => {
    store = [cm('r-result', 'step-result', 10), cm('r-seeds', 'agent-seeds', 10), cm('r-export', 'export', 10)];
    const i = operatorInformer();
    await i.synced;
    const cluster = new KubeRunCluster(kc, scopedCaches([{ namespace: 'ns', jobs: { get: () => undefined, list: () => [], hasSynced: () => true }, configMaps: i }], CONFIGMAP_CACHED_COMPONENTS));
    expect((await cluster.read('ConfigMap', 'ns', 'r-result'))?.data).toEqual({ 'results.json': 'x'.repeat(10) });
    expect(gets).toEqual([]);
    expect((await cluster.read('ConfigMap', 'ns', 'r-seeds'))?.data).toEqual({ 'results.json': 'x'.repeat(10) });
    expect((await cluster.read('ConfigMap', 'ns', 'r-export'))?.data).toEqual({ 'results.json': 'x'.repeat(10) });
    expect(gets).toEqual(['r-seeds', 'r-export']);

    const listsBefore = lists.length;
    const cleanupSelector = 'swarmbench.io/run=r,swarmbench.io/attempt=1,swarmbench.io/component in (step-result,agent-seeds,params)';
    expect((await cluster.list('ConfigMap', 'ns', cleanupSelector)).map((o) => o.metadata?.name).sort()).toEqual([]);
    expect(lists.length).toBe(listsBefore); // from the cache (no attempt label on these: none match)
    expect((await cluster.list('ConfigMap', 'ns', 'swarmbench.io/run=r')).map((o) => o.metadata?.name).sort()).toEqual(['r-export', 'r-result', 'r-seeds']);
    expect(lists.length).toBe(listsBefore + 1); // exports are not cached: live
    expect((await cluster.list('ConfigMap', 'ns', 'swarmbench.io/component=export')).map((o) => o.metadata?.name)).toEqual(['r-export']);
    expect(lists.length).toBe(listsBefore + 2);
  });
});
