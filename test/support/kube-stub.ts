/**
 * A KubeConfig that points at a local stand-in API server (a `node:http` server the test listens
 * with), as the unit tests of the Kubernetes clients use it (test/unit/kube-*.test.ts,
 * operator-cluster.test.ts).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

/** Listens `server` on a free loopback port and returns a KubeConfig for it (token auth, plain HTTP). */
export async function listenKube(server: Server): Promise<KubeConfig> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}
