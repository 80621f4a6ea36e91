/**
 * Real nodes (test/cluster/lib/nodes.ts): kubelets with containerd and runc run the project's image
 * built by images/build.sh. What a user's cluster does: the container runtime named on each node, pod-to-pod traffic across nodes by pod IP and
 * by Service name (kube-proxy, CoreDNS), the image's user and read-only root enforced by the
 * runtime, and a memory limit enforced by the kernel (OOMKilled).
 *
 * Skipped, with the reason in the suite's name, when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig, type V1Container, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KUBECONFIG, NODES, TOOLS_BIN } from './lib/config.ts';
import { clusterGate, until } from './lib/itest.ts';

const run = promisify(execFile);
const IMAGE = 'ghcr.io/swarmbench/swarmbench:dev';
const CPU = NODES.filter((n) => n.gpu === 0).map((n) => n.name);

const gate = await clusterGate('real nodes');

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run(join(TOOLS_BIN, 'kubectl'), args, { env: { ...process.env, KUBECONFIG }, maxBuffer: 16 << 20 });
  return stdout;
}

/** A Node program run in the project's image (its `node`, not its entrypoint). */
const nodeScript = (name: string, script: string, extra: Partial<V1Container> = {}): V1Container => ({
  name, image: IMAGE, imagePullPolicy: 'IfNotPresent', command: ['node', '-e', script], ...extra,
});

describe.skipIf(!!gate.notUp)(gate.title, () => {
  const kc = new KubeConfig();
  let core: CoreV1Api;
  const ns = `realnodes-${Date.now().toString(36)}`;

  const finished = (name: string, timeoutMs = 120_000): Promise<V1Pod> =>
    until(`pod ${name} to finish`, async () => {
      const p = await core.readNamespacedPod({ name, namespace: ns });
      return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
    }, timeoutMs, 500);

  beforeAll(async () => {
    kc.loadFromFile(KUBECONFIG);
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await until('default ServiceAccount', () => core.readNamespacedServiceAccount({ name: 'default', namespace: ns }), 60_000);
  });
  afterAll(async () => {
    if (core && process.env.SWARMBENCH_CLUSTER_TEST_KEEP !== '1') await core.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('kubectl get nodes -o wide: every node Ready, its container runtime containerd://…, its own InternalIP', async () => {
    const wide = await kubectl('get', 'nodes', '-o', 'wide');
    for (const n of NODES) expect(wide).toMatch(new RegExp(`${n.name}\\s+Ready\\s.*containerd://\\d`));
    const nodes = JSON.parse(await kubectl('get', 'nodes', '-o', 'json')) as { items: Array<{ status: { addresses: Array<{ type: string; address: string }>; nodeInfo: { containerRuntimeVersion: string; kubeletVersion: string } } }> };
    const ips = nodes.items.map((n) => n.status.addresses.find((a) => a.type === 'InternalIP')?.address);
    expect(new Set(ips).size).toBe(NODES.length);
    for (const n of nodes.items) expect(n.status.nodeInfo.kubeletVersion).toMatch(/^v1\.\d+\.\d+$/);
  });

  it('a pod on each CPU node reaches a pod on the other by pod IP and by Service name', async () => {
    // One server per CPU node (pinned), each answering with its own pod and node name.
    const server = `require('http').createServer((q, s) => s.end(JSON.stringify({ pod: process.env.HOSTNAME, node: process.env.NODE_NAME }))).listen(8080)`;
    for (const [i, node] of CPU.entries()) {
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: `server-${i}`, labels: { app: `server-${i}`, role: 'server' } },
          spec: {
            nodeName: node,
            containers: [nodeScript('server', server, {
              ports: [{ containerPort: 8080 }],
              env: [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
              readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
            })],
          },
        },
      });
      await core.createNamespacedService({ namespace: ns, body: { metadata: { name: `server-${i}` }, spec: { selector: { app: `server-${i}` }, ports: [{ port: 80, targetPort: 8080 }] } } });
    }
    const servers = await Promise.all(CPU.map((_, i) => until(`server-${i} Ready`, async () => {
      const p = await core.readNamespacedPod({ name: `server-${i}`, namespace: ns });
      return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p : undefined;
    }, 120_000, 500)));
    expect(new Set(servers.map((p) => p.status?.podIP)).size).toBe(CPU.length);
    // A client on each node asks the server on the other node, by pod IP and by Service name.
    const client = (urls: string[]): string =>
      `(async () => { const out = []; for (const u of ${JSON.stringify(urls)}) { const r = await fetch(u, { signal: AbortSignal.timeout(10000) }); out.push(await r.json()); } console.log(JSON.stringify(out)); })().catch((e) => { console.error(String(e), e.cause); process.exit(1); })`;
    for (const [i, node] of CPU.entries()) {
      const other = (i + 1) % CPU.length;
      const ip = servers[other]!.status!.podIP!;
      await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: `client-${i}` },
          spec: { nodeName: node, restartPolicy: 'Never', containers: [nodeScript('client', client([`http://${ip}:8080/`, `http://server-${other}/`, `http://server-${other}.${ns}.svc.cluster.local/`]))] },
        },
      });
    }
    for (const [i] of CPU.entries()) {
      const p = await finished(`client-${i}`);
      const logs = await kubectl('logs', '-n', ns, `client-${i}`);
      expect(p.status?.phase, logs).toBe('Succeeded');
      const answers = JSON.parse(logs.trim().split('\n').pop()!) as Array<{ pod: string; node: string }>;
      const other = (i + 1) % CPU.length;
      expect(answers).toEqual([0, 1, 2].map(() => ({ pod: `server-${other}`, node: CPU[other] })));
      expect(p.spec?.nodeName).not.toBe(CPU[other]);
    }
  });

  // The kubelet passes only the image's numeric user to the runtime (the group is then 0, the
  // passwd-less default), and containerd 1.6 refuses a group without a user: the project's pods set
  // both (src/operator/desired.ts, src/platform/kubernetes/manifests.ts, the chart), as `pinned` does.
  it("the image's user, the pods' user and group, and a read-only root filesystem are enforced by the runtime", async () => {
    const script = `const fs = require('fs'); let write; try { fs.writeFileSync('/x', 'y'); write = 'allowed'; } catch (e) { write = e.code; } console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), write }));`;
    const locked = { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'locked' },
        spec: {
          restartPolicy: 'Never',
          securityContext: { runAsNonRoot: true },
          containers: [
            nodeScript('image-user', script, { securityContext: locked }),
            nodeScript('pinned', script, { securityContext: { ...locked, runAsUser: 65532, runAsGroup: 65532 } }),
          ],
        },
      },
    });
    const p = await finished('locked');
    const logs = async (c: string): Promise<unknown> => JSON.parse((await kubectl('logs', '-n', ns, 'locked', '-c', c)).trim());
    expect(p.status?.phase, JSON.stringify(p.status?.containerStatuses)).toBe('Succeeded');
    expect(await logs('image-user')).toEqual({ uid: 65532, gid: 0, write: 'EROFS' });
    expect(await logs('pinned')).toEqual({ uid: 65532, gid: 65532, write: 'EROFS' });
  });

  it('a container that exceeds its memory limit is OOMKilled by the kernel', async () => {
    // Grows its heap past 64 MiB in 1-MiB buffers it keeps.
    const hog = `const keep = []; setInterval(() => { for (let i = 0; i < 16; i++) keep.push(Buffer.alloc(1 << 20, 1)); console.log(keep.length + ' MiB'); }, 50);`;
    await core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: 'hog' }, spec: { restartPolicy: 'Never', containers: [nodeScript('hog', hog, { resources: { limits: { memory: '64Mi' }, requests: { memory: '64Mi' } } })] } },
    });
    const p = await finished('hog');
    const t = p.status?.containerStatuses?.[0]?.state?.terminated;
    expect(p.status?.phase).toBe('Failed');
    expect(t?.reason).toBe('OOMKilled');
    expect(t?.exitCode).toBe(137);
  });
});
