/**
 * platform/kubernetes/result.ts: the runner writes its step result only into a ConfigMap its own
 * run controls (uid from SWARMBENCH_RUN_UID). A tiny HTTP server stands in for the API server.
 */
import { createServer, type Server } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownerReference } from '../../src/kube/names.ts';
import { writeStepResult } from '../../src/platform/kubernetes/result.ts';

const run = { namespace: 'bench', name: 'nightly', uid: 'uid-1' };
let owner = ownerReference({ name: 'nightly', uid: 'old-uid' });
const writes: string[] = [];
let server: Server;
let kc: KubeConfig;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.method === 'GET') {
        res.end(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'r', namespace: 'bench', resourceVersion: '5', ownerReferences: [owner] }, data: {} }));
        return;
      }
      writes.push(`${req.method} ${req.url}`);
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('writeStepResult', () => {
  it('refuses a result ConfigMap another run controls (an earlier run of the same name), writing nothing', async () => {
    owner = ownerReference({ name: 'nightly', uid: 'old-uid' });
    await expect(writeStepResult({ kc, name: 'r', run, attempt: 1, step: 's', category: 's', result: {}, timeoutMs: 2000 }))
      .rejects.toThrow(/ConfigMap bench\/r is not controlled by run nightly \(uid uid-1\); its controller: BenchmarkRun nightly \(uid old-uid\)/);
    expect(writes).toEqual([]);
  });

  it('replaces the run\'s own ConfigMap', async () => {
    owner = ownerReference(run);
    const got = await writeStepResult({ kc, name: 'r', run, attempt: 1, step: 's', category: 's', result: { ok: true }, timeoutMs: 2000 });
    expect(got.configMap.data).toEqual({ 'result.json': '{"ok":true}' });
    expect(writes).toEqual(['PUT /api/v1/namespaces/bench/configmaps/r']);
  });
});
