/**
 * The API clients of src/kube/client.ts against a small HTTP stand-in that can hang: every request
 * has a time limit (a longer one on collections), the client's signal aborts a request in flight
 * and refuses the next one without sending it, a call's own signal (`withSignal`) aborts that
 * call, and the status merge-patch carries the resourceVersion it is guarded by.
 */
import { createServer, type Server } from 'node:http';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isCollectionPath, isRefused, makeApiClient, patchRunStatus, withSignal } from '../../src/kube/client.ts';
import { listenKube } from '../support/kube-stub.ts';

let server: Server;
let kc: KubeConfig;
/** Requests that reached the stand-in: method, path, body; `closed` once the client went away. */
const seen: { method: string; path: string; body: string; closed: boolean }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const entry = { method: req.method ?? '', path: url.pathname, body, closed: false };
      seen.push(entry);
      res.on('close', () => (entry.closed = true));
      if (url.pathname.includes('hang')) return; // never answers
      res.writeHead(200, { 'content-type': 'application/json' });
      if (req.method === 'PATCH') res.end(JSON.stringify({ apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', metadata: { name: 'r', namespace: 'ns', resourceVersion: '8' }, ...JSON.parse(body) }));
      else res.end(JSON.stringify({ metadata: { name: 'x', namespace: 'ns' } }));
    });
  });
  kc = await listenKube(server);
});

afterAll(() => new Promise<void>((r) => {
  server.closeAllConnections();
  server.close(() => r());
}));

beforeEach(() => {
  seen.length = 0;
});

const elapsed = async (p: Promise<unknown>): Promise<{ ms: number; err: unknown }> => {
  const t0 = Date.now();
  const err = await p.then(() => undefined, (e: unknown) => e);
  return { ms: Date.now() - t0, err };
};

describe('isCollectionPath', () => {
  it.each([
    ['/api/v1/namespaces/ns/configmaps', true],
    ['/api/v1/configmaps', true],
    ['/api/v1/nodes', true],
    ['/apis/batch/v1/namespaces/ns/jobs', true],
    ['/apis/swarmbench.io/v1alpha1/benchmarkruns', true],
    ['/api/v1/namespaces', true],
    ['/api/v1/namespaces/ns', false],
    ['/api/v1/namespaces/ns/configmaps/a', false],
    ['/apis/swarmbench.io/v1alpha1/namespaces/ns/benchmarkruns/r/status', false],
    ['/api/v1/nodes/n1', false],
    ['/healthz', false],
  ])('%s → %s', (path, want) => {
    expect(isCollectionPath(path)).toBe(want);
  });
});

describe('makeApiClient', () => {
  it('ends a request that gets no answer at its time limit; a collection gets the longer one', async () => {
    const core = makeApiClient(kc, CoreV1Api, { timeoutMs: 150, listTimeoutMs: 600 });
    const one = await elapsed(core.readNamespacedConfigMap({ namespace: 'ns', name: 'hang' }));
    expect((one.err as Error).name).toBe('TimeoutError');
    expect(one.ms).toBeGreaterThanOrEqual(140);
    expect(one.ms).toBeLessThan(550);
    const list = await elapsed(core.listNamespacedConfigMap({ namespace: 'hang' }));
    expect((list.err as Error).name).toBe('TimeoutError');
    expect(list.ms).toBeGreaterThanOrEqual(590);
    await expect(core.readNamespacedConfigMap({ namespace: 'ns', name: 'fine' })).resolves.toMatchObject({ metadata: { name: 'x' } });
    expect(seen.map((s) => `${s.method} ${s.path} ${s.closed}`)).toEqual([
      'GET /api/v1/namespaces/ns/configmaps/hang true',
      'GET /api/v1/namespaces/hang/configmaps true',
      'GET /api/v1/namespaces/ns/configmaps/fine true',
    ]);
  });

  it("the client's signal aborts a request in flight and refuses every later one, which never reaches the server", async () => {
    const stop = new AbortController();
    const core = makeApiClient(kc, CoreV1Api, { signal: stop.signal });
    const inFlight = elapsed(core.readNamespacedConfigMap({ namespace: 'ns', name: 'hang' }));
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 5));
    stop.abort(new Error('leadership lost'));
    const r = await inFlight;
    expect(r.ms).toBeLessThan(5000);
    expect((r.err as Error).message).toBe('leadership lost'); // fetch rejects with the signal's reason
    const refused = await core.createNamespacedConfigMap({ namespace: 'ns', body: { metadata: { name: 'late' } } }).catch((e: unknown) => e);
    expect(isRefused(refused)).toBe(true);
    expect((refused as Error).message).toMatch(/POST \/api\/v1\/namespaces\/ns\/configmaps: not sent.*leadership lost/);
    await new Promise((res) => setTimeout(res, 50));
    expect(seen.map((s) => s.method)).toEqual(['GET']); // the POST never left
  });

  it('withSignal aborts one call; the client and its other calls go on', async () => {
    const core = makeApiClient(kc, CoreV1Api);
    const one = new AbortController();
    const p = core.readNamespacedConfigMap({ namespace: 'ns', name: 'hang' }, withSignal(one.signal)).catch((e: unknown) => e);
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 5));
    one.abort();
    expect(((await p) as Error).name).toBe('AbortError');
    await expect(core.readNamespacedConfigMap({ namespace: 'ns', name: 'fine' }, withSignal(new AbortController().signal))).resolves.toBeTruthy();
  });
});

describe('patchRunStatus', () => {
  it('sends metadata.resourceVersion with the status when guarded, only the status otherwise', async () => {
    const custom = makeApiClient(kc, CustomObjectsApi);
    const r = await patchRunStatus(custom, 'ns', 'r', { phase: 'Running' }, { resourceVersion: '7' });
    expect(JSON.parse(seen[0]!.body)).toEqual({ metadata: { resourceVersion: '7' }, status: { phase: 'Running' } });
    expect(r.status).toEqual({ phase: 'Running' });
    await patchRunStatus(custom, 'ns', 'r', { phase: 'Running' });
    expect(JSON.parse(seen[1]!.body)).toEqual({ status: { phase: 'Running' } });
  });
});
