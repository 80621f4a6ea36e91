/**
 * The real RunCluster (src/operator/cluster.ts) against a small HTTP stand-in for the API server:
 * which reads the informer caches answer and which go to the server, how 404 and 409 come back,
 * and the requests behind list, delete-collection and the status patch. Also: the operator's label
 * selector agrees with the fake cluster's.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type KubeConfig, type V1ConfigMap, type V1Job } from '@kubernetes/client-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isConflict } from '../../src/kube/client.ts';
import { KubeRunCluster, scopedCaches, selectorMatches, selectorValues, type CacheView } from '../../src/operator/cluster.ts';
import { matches } from '../support/fake-cluster.ts';
import { listenKube } from '../support/kube-stub.ts';

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  contentType: string | undefined;
  body: string;
}

let server: Server;
let kc: KubeConfig;
const seen: Seen[] = [];
/** Objects the stand-in serves by path (GET), e.g. `/api/v1/namespaces/ns/configmaps/a`. */
const objects = new Map<string, unknown>();

const body = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve) => {
    let s = '';
    req.on('data', (c: Buffer) => (s += c.toString()));
    req.on('end', () => resolve(s));
  });

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const b = await body(req);
    seen.push({ method: req.method ?? '', path: url.pathname, query: url.searchParams, contentType: req.headers['content-type'], body: b });
    const send = (code: number, o: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(o));
    };
    const status = (code: number, reason: string) => send(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message: reason });
    if (req.method === 'GET' && url.pathname.endsWith('/configmaps')) return send(200, { kind: 'ConfigMapList', apiVersion: 'v1', metadata: {}, items: [{ metadata: { name: 'live', namespace: 'ns' } }] });
    if (req.method === 'GET') return objects.has(url.pathname) ? send(200, objects.get(url.pathname)) : status(404, 'NotFound');
    if (req.method === 'POST') return objects.has(`${url.pathname}/${(JSON.parse(b) as V1ConfigMap).metadata?.name}`) ? status(409, 'AlreadyExists') : send(201, JSON.parse(b));
    if (req.method === 'DELETE') return send(200, { kind: 'Status', apiVersion: 'v1', status: 'Success' });
    if (req.method === 'PATCH') {
      // The API server's precondition: a resourceVersion in the patch must be the object's.
      const run = objects.get(url.pathname.replace(/\/status$/, '')) as { metadata: { resourceVersion: string } } | undefined;
      const asked = (JSON.parse(b) as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
      if (run && asked !== undefined && asked !== run.metadata.resourceVersion) return status(409, 'Conflict');
      if (run) run.metadata.resourceVersion = String(Number(run.metadata.resourceVersion) + 1);
      return send(200, { apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name: 'r', namespace: 'ns', uid: 'u', ...(run ? { resourceVersion: run.metadata.resourceVersion } : {}) }, status: JSON.parse(b).status });
    }
    return status(405, 'MethodNotAllowed');
  });
  kc = await listenKube(server);
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

beforeEach(() => {
  seen.length = 0;
  objects.clear();
});

function cache<T extends { metadata?: { name?: string; namespace?: string } }>(items: T[], synced = true): CacheView<T> {
  const m = new Map(items.map((o) => [`${o.metadata?.namespace}/${o.metadata?.name}`, o]));
  return { get: (k) => m.get(k), list: () => [...m.values()], hasSynced: () => synced };
}

const cm = (name: string, namespace = 'ns', labels: Record<string, string> = {}): V1ConfigMap => ({ metadata: { name, namespace, labels }, data: { from: 'cache' } });

describe('KubeRunCluster', () => {
  it('reads a cached Job or ConfigMap from the synced cache of its namespace, without a request', async () => {
    const c = new KubeRunCluster(kc, scopedCaches([{ namespace: 'ns', jobs: cache<V1Job>([{ metadata: { name: 'j', namespace: 'ns' } }]), configMaps: cache([cm('a')]) }]));
    expect((await c.read('ConfigMap', 'ns', 'a'))?.data).toEqual({ from: 'cache' });
    expect((await c.read('Job', 'ns', 'j'))?.metadata?.name).toBe('j');
    expect(seen).toEqual([]);
  });

  it('asks the API server on a miss, with live, for a cache not synced, and for a namespace without a cache; a 404 is undefined', async () => {
    objects.set('/api/v1/namespaces/ns/configmaps/a', { metadata: { name: 'a', namespace: 'ns' }, data: { from: 'server' } });
    const c = new KubeRunCluster(kc, scopedCaches([{ namespace: 'ns', jobs: cache<V1Job>([], false), configMaps: cache([cm('a')]) }]));
    expect((await c.read('ConfigMap', 'ns', 'a', { live: true }))?.data).toEqual({ from: 'server' });
    expect(await c.read('ConfigMap', 'ns', 'missing')).toBeUndefined();
    expect(await c.read('Job', 'ns', 'j')).toBeUndefined();
    expect(await c.read('ConfigMap', 'other', 'a')).toBeUndefined();
    expect(await c.read('Role', 'ns', 'r')).toBeUndefined();
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual([
      'GET /api/v1/namespaces/ns/configmaps/a',
      'GET /api/v1/namespaces/ns/configmaps/missing',
      'GET /apis/batch/v1/namespaces/ns/jobs/j',
      'GET /api/v1/namespaces/other/configmaps/a',
      'GET /apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles/r',
    ]);
  });

  it('a create of a taken name rejects with the 409 createOrGet reads', async () => {
    objects.set('/api/v1/namespaces/ns/configmaps/a', {});
    const c = new KubeRunCluster(kc);
    const err = await c.create('ConfigMap', cm('a')).catch((e: unknown) => e);
    expect(isConflict(err)).toBe(true);
  });

  it('lists from a synced cache by namespace and selector, else from the server; deletes collections by selector in the background', async () => {
    const all = [cm('a', 'ns', { run: 'x', c: 'p' }), cm('b', 'ns', { run: 'y', c: 'p' }), cm('a', 'ns2', { run: 'x', c: 'p' })];
    const c = new KubeRunCluster(kc, { jobs: () => undefined, configMaps: () => cache(all) });
    expect((await c.list('ConfigMap', 'ns', 'run=x,c in (p,q)')).map((o) => `${o.metadata?.namespace}/${o.metadata?.name}`)).toEqual(['ns/a']);
    expect(seen).toEqual([]);
    const plain = new KubeRunCluster(kc);
    expect((await plain.list('ConfigMap', 'ns', 'run=x')).map((o) => o.metadata?.name)).toEqual(['live']);
    await plain.deleteCollection('Deployment', 'ns', 'run=x,attempt=2');
    expect(seen.map((s) => `${s.method} ${s.path} ${s.query.get('labelSelector')} ${s.query.get('propagationPolicy') ?? ''}`)).toEqual([
      'GET /api/v1/namespaces/ns/configmaps run=x ',
      'DELETE /apis/apps/v1/namespaces/ns/deployments run=x,attempt=2 Background',
    ]);
  });

  it('patches the status through /status as a JSON merge patch', async () => {
    const c = new KubeRunCluster(kc);
    const r = await c.patchRunStatus('ns', 'r', { phase: 'Running', summary: null });
    expect(r.status).toEqual({ phase: 'Running', summary: null });
    expect(seen[0]).toMatchObject({ method: 'PATCH', path: '/apis/swarmbench.io/v1alpha1/namespaces/ns/benchmarkruns/r/status', contentType: 'application/merge-patch+json' });
  });
});

describe('KubeRunCluster: guarded status patches', () => {
  const runPath = '/apis/swarmbench.io/v1alpha1/namespaces/ns/benchmarkruns/r';

  it('patches with the resourceVersion of its last read, then of its own last patch', async () => {
    objects.set(runPath, { metadata: { name: 'r', namespace: 'ns', uid: 'u', resourceVersion: '3' } });
    const c = new KubeRunCluster(kc);
    await c.getRun('ns', 'r');
    await c.patchRunStatus('ns', 'r', { phase: 'Running' });
    await c.patchRunStatus('ns', 'r', { phase: 'Succeeded' });
    const patches = seen.filter((s) => s.method === 'PATCH').map((s) => JSON.parse(s.body) as Record<string, unknown>);
    expect(patches).toEqual([
      { metadata: { resourceVersion: '3' }, status: { phase: 'Running' } },
      { metadata: { resourceVersion: '4' }, status: { phase: 'Succeeded' } },
    ]);
  });

  it('a run changed since it was read is refused with the 409 the reconcile retries on', async () => {
    const run = { metadata: { name: 'r', namespace: 'ns', uid: 'u', resourceVersion: '3' } };
    objects.set(runPath, run);
    const c = new KubeRunCluster(kc);
    await c.getRun('ns', 'r');
    run.metadata.resourceVersion = '9'; // a spec edit in between
    const err = await c.patchRunStatus('ns', 'r', { phase: 'Succeeded' }).catch((e: unknown) => e);
    expect(isConflict(err)).toBe(true);
    // The retry reads the run again and goes through.
    await c.getRun('ns', 'r');
    await expect(c.patchRunStatus('ns', 'r', { phase: 'Succeeded' })).resolves.toMatchObject({ status: { phase: 'Succeeded' } });
  });
});

describe('label selectors', () => {
  const labels = { 'swarmbench.io/run': 'a', 'swarmbench.io/attempt': '2', 'swarmbench.io/component': 'params' };
  const table: [string, boolean][] = [
    ['swarmbench.io/run=a', true],
    ['swarmbench.io/run==a,swarmbench.io/attempt=2', true],
    ['swarmbench.io/run=a,swarmbench.io/attempt=1', false],
    ['swarmbench.io/component in (step-result,agent-seeds,params)', true],
    ['swarmbench.io/run=a,swarmbench.io/component in (step-result, agent-seeds)', false],
    ['swarmbench.io/component notin (export)', true],
    ['swarmbench.io/component!=params', false],
    ['swarmbench.io/category', false],
    ['!swarmbench.io/category', true],
    ['swarmbench.io/run', true],
    ['', true],
  ];
  it.each(table)('%s → %s (the operator and the fake agree)', (selector, want) => {
    expect(selectorMatches(labels, selector)).toBe(want);
    expect(matches(labels, selector)).toBe(want);
  });

  it('the values a selector allows for a key (what decides whether the ConfigMap cache can answer a list)', () => {
    const c = 'swarmbench.io/component';
    expect(selectorValues(`swarmbench.io/run=a,${c} in (step-result, params)`, c)).toEqual(['step-result', 'params']);
    expect(selectorValues(`${c}==export`, c)).toEqual(['export']);
    expect(selectorValues(`${c} in (a,b),${c}=b`, c)).toEqual(['b']);
    expect(selectorValues(`${c} notin (export)`, c)).toBeUndefined();
    expect(selectorValues(`${c}!=export`, c)).toBeUndefined();
    expect(selectorValues('swarmbench.io/run=a', c)).toBeUndefined();
  });
});
