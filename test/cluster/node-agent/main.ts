/**
 * The test node agent: registers the test cluster's nodes (two CPU nodes, one GPU node), keeps them
 * Ready (node status + Leases in kube-node-lease), and runs the pods bound to them whose image is
 * the project's own as local processes of the project's CLI (see pod.ts and docs/cluster.md); any
 * other image fails to pull (ErrImagePull, ImagePullBackOff), as no registry is reachable.
 *
 * Each node talks to the API server with its own client certificate (system:node:<name> in
 * system:nodes), so the Node authorizer and the NodeRestriction admission plugin apply as to a
 * real kubelet. Started by `npm run cluster:up`; SIGTERM stops every pod process it started.
 */
import { createServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import {
  CoordinationV1Api, CoreV1Api, KubeConfig, ListWatch, PatchStrategy, Watch, setHeaderOptions,
  type V1Lease, type V1Node, type V1Pod, type V1PodList,
} from '@kubernetes/client-node';
import { HOST, KUBERNETES_VERSION, NODES, PKI, PODS, PORTS, podNetwork, PROM_TARGETS, STATE, type NodeSpec } from '../lib/config.ts';
import { readPidFiles, stopProcess } from '../lib/proc.ts';
import { PodRunner, type NodeHooks } from './pod.ts';
import { scrapeTarget, type ScrapeTarget } from './pure.ts';

const log = (m: string): void => console.log(`${new Date().toISOString()} ${m}`);
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const caPem = readFileSync(join(PKI, 'ca.crt'), 'utf8');
const iso = (d: Date): string => d.toISOString().replace(/\.\d+Z$/, 'Z');

// ---- shared allocators ----
const ips = new Map<string, string>(); // uid -> ip
const POD_IP_PREFIX = podNetwork().prefix;
function allocateIP(uid: string): string {
  const have = ips.get(uid);
  if (have) return have;
  const used = new Set(ips.values());
  for (let i = 2; i < 65_000; i++) {
    const ip = `${POD_IP_PREFIX}.${Math.floor(i / 254)}.${(i % 254) + 1}`;
    if (!used.has(ip)) {
      ips.set(uid, ip);
      return ip;
    }
  }
  throw new Error('pod IP range exhausted');
}

let promTimer: NodeJS.Timeout | undefined;
const agents: NodeAgent[] = [];
function changed(): void {
  if (promTimer) return;
  promTimer = setTimeout(() => {
    promTimer = undefined;
    const targets: ScrapeTarget[] = [];
    for (const a of agents)
      for (const r of a.runners.values()) {
        if (!r.running() || !r.ip) continue;
        const t = scrapeTarget(r.pod, r.ip, a.spec.name);
        if (t) targets.push(t);
      }
    mkdirSync(dirname(PROM_TARGETS), { recursive: true });
    writeFileSync(`${PROM_TARGETS}.tmp`, JSON.stringify(targets, null, 2));
    renameSync(`${PROM_TARGETS}.tmp`, PROM_TARGETS);
  }, 100);
}

class NodeAgent {
  readonly spec: NodeSpec;
  readonly kc = new KubeConfig();
  readonly core: CoreV1Api;
  readonly coord: CoordinationV1Api;
  readonly runners = new Map<string, PodRunner>();
  private gpusInUse = new Map<string, number[]>();
  private informer?: ListWatch<V1Pod>;
  registered = false;
  /** The node was removed (`POST /nodes/<name>/remove`): no heartbeat, no Lease, no pod, no report. */
  removed = false;
  private resync?: NodeJS.Timeout;
  private hooks: NodeHooks;

  readonly index: number;
  private kubeletServer?: HttpsServer;

  constructor(spec: NodeSpec, index: number) {
    this.spec = spec;
    this.index = index;
    this.kc.loadFromFile(join(STATE, 'nodes', `${spec.name}.kubeconfig`));
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.coord = this.kc.makeApiClient(CoordinationV1Api);
    this.hooks = {
      nodeName: spec.name,
      podsDir: PODS,
      caPem,
      allocateIP,
      releaseIP: (uid) => ips.delete(uid),
      allocateGPUs: (uid, n) => {
        const used = new Set([...this.gpusInUse.values()].flat());
        const free = [...Array(spec.gpu).keys()].filter((i) => !used.has(i)).slice(0, n);
        this.gpusInUse.set(uid, free);
        return free;
      },
      releaseGPUs: (uid) => this.gpusInUse.delete(uid),
      requestToken: async (pod) => {
        const tr = await this.core.createNamespacedServiceAccountToken({
          name: pod.spec?.serviceAccountName || 'default',
          namespace: pod.metadata!.namespace!,
          body: {
            apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
            // 3607 s is what the kubelet asks for; the API server extends it (bound to the pod).
            spec: { audiences: [], expirationSeconds: 3607, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata!.name!, uid: pod.metadata!.uid! } },
          },
        });
        if (!tr.status?.token) throw new Error('TokenRequest returned no token');
        return { token: tr.status.token, expiresAt: new Date(tr.status.expirationTimestamp ?? Date.now() + 3600_000) };
      },
      lookup: async (ns, kind, name) => {
        try {
          if (kind === 'ConfigMap') return (await this.core.readNamespacedConfigMap({ name, namespace: ns })).data ?? {};
          const s = await this.core.readNamespacedSecret({ name, namespace: ns });
          return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
        } catch (e) {
          if ((e as { code?: number }).code === 404) return undefined;
          throw e;
        }
      },
      patchStatus: async (pod, status) => {
        if (this.removed) return; // a machine that is gone reports nothing
        await this.core.patchNamespacedPodStatus({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: { status } }, merge);
      },
      finalDelete: async (pod) => {
        try {
          await this.core.deleteNamespacedPod({
            name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, gracePeriodSeconds: 0,
            body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata!.uid! } },
          });
        } catch (e) {
          const code = (e as { code?: number }).code;
          if (code !== 404 && code !== 409) throw e;
        }
      },
      changed,
      log: (m) => log(`[${spec.name}] ${m}`),
    };
  }

  private readonly since = iso(new Date());

  private nodeStatus(): object {
    const now = iso(new Date());
    const since = this.since;
    const cap: Record<string, string> = { cpu: '8', memory: '16Gi', pods: '110', 'ephemeral-storage': '100Gi' };
    if (this.spec.gpu) cap['nvidia.com/gpu'] = String(this.spec.gpu);
    const cond = (type: string, status: string, reason: string, message: string): object => ({ type, status, reason, message, lastHeartbeatTime: now, lastTransitionTime: since });
    return {
      capacity: cap,
      allocatable: cap,
      addresses: [{ type: 'InternalIP', address: HOST }, { type: 'Hostname', address: this.spec.name }],
      daemonEndpoints: { kubeletEndpoint: { Port: PORTS.kubelet + this.index } },
      nodeInfo: {
        machineID: this.spec.name, systemUUID: this.spec.name, bootID: String(process.pid), kernelVersion: 'test', osImage: `swarmbench test node on ${hostname()}`,
        containerRuntimeVersion: 'swarmbench-node-agent://0.1.0', kubeletVersion: KUBERNETES_VERSION, kubeProxyVersion: '', operatingSystem: 'linux', architecture: 'amd64',
      },
      conditions: [
        cond('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'test node agent'),
        cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'test node agent'),
        cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'test node agent'),
        cond('Ready', 'True', 'KubeletReady', 'swarmbench test node agent is posting ready status'),
      ],
    };
  }

  async register(): Promise<void> {
    const labels: Record<string, string> = {
      'kubernetes.io/hostname': this.spec.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64',
      'beta.kubernetes.io/os': 'linux', 'beta.kubernetes.io/arch': 'amd64', 'swarmbench.dev/test-node': 'true',
    };
    if (this.spec.gpu) {
      labels['nvidia.com/gpu.present'] = 'true';
      labels['nvidia.com/gpu.count'] = String(this.spec.gpu);
      labels['nvidia.com/gpu.product'] = 'swarmbench-test-gpu';
    }
    const node: V1Node = {
      apiVersion: 'v1', kind: 'Node',
      metadata: { name: this.spec.name, labels },
      spec: this.spec.gpu ? { taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }] } : {},
    };
    try {
      await this.core.createNode({ body: node });
      log(`[${this.spec.name}] registered`);
    } catch (e) {
      if ((e as { code?: number }).code !== 409) throw e;
      log(`[${this.spec.name}] already registered`);
    }
    await this.heartbeat();
    this.registered = true;
  }

  async heartbeat(): Promise<void> {
    await this.core.patchNodeStatus({ name: this.spec.name, body: { status: this.nodeStatus() } }, merge);
  }

  async renewLease(): Promise<void> {
    const name = this.spec.name;
    // MicroTime wants exactly six fractional digits; send strings, never Dates, for these fields.
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    const spec = { holderIdentity: name, leaseDurationSeconds: 40, renewTime: now };
    try {
      await this.coord.patchNamespacedLease({ name, namespace: 'kube-node-lease', body: { spec } }, merge);
      return;
    } catch (e) {
      if ((e as { code?: number }).code !== 404) throw e;
    }
    const node = await this.core.readNode({ name });
    await this.coord.createNamespacedLease({
      namespace: 'kube-node-lease',
      body: {
        metadata: { name, namespace: 'kube-node-lease', ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name, uid: node.metadata!.uid! }] },
        spec: spec as unknown as V1Lease['spec'],
      },
    });
  }

  startPods(): void {
    const fieldSelector = `spec.nodeName=${this.spec.name}`;
    const listFn = (): Promise<V1PodList> => this.core.listPodForAllNamespaces({ fieldSelector });
    const inf = new ListWatch<V1Pod>('/api/v1/pods', new Watch(this.kc), listFn, false, undefined, fieldSelector);
    const onPod = (pod: V1Pod): void => this.reconcile(pod);
    inf.on('add', onPod);
    inf.on('update', onPod);
    inf.on('delete', (pod) => this.gone(pod.metadata!.uid!));
    inf.on('error', (err) => {
      log(`[${this.spec.name}] pod watch error: ${String(err)}; restarting in 2 s`);
      setTimeout(() => void inf.start().catch((e: unknown) => log(`[${this.spec.name}] restart failed: ${String(e)}`)), 2000);
    });
    this.informer = inf;
    void inf.start().catch((e: unknown) => log(`[${this.spec.name}] pod watch start failed: ${String(e)}`));
    // Resync: heal missed events (a runner whose pod is gone is stopped).
    clearInterval(this.resync);
    this.resync = setInterval(() => {
      const live = new Set(inf.list().map((p) => p.metadata!.uid!));
      for (const p of inf.list()) this.reconcile(p);
      for (const uid of this.runners.keys()) if (!live.has(uid)) this.gone(uid);
    }, 5000).unref();
  }

  private reconcile(pod: V1Pod): void {
    const uid = pod.metadata!.uid!;
    const r = this.runners.get(uid);
    if (r) {
      r.update(pod);
      return;
    }
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') return; // finished before we saw it (agent restart)
    if (pod.metadata?.deletionTimestamp) {
      void this.hooks.finalDelete(pod).catch(() => undefined);
      return;
    }
    const runner = new PodRunner(pod, this.hooks);
    this.runners.set(uid, runner);
    log(`[${this.spec.name}] pod ${runner.key} (${uid})`);
    runner.start();
  }

  private gone(uid: string): void {
    const r = this.runners.get(uid);
    if (!r) return;
    this.runners.delete(uid);
    void r.terminate(2000, false);
  }

  /**
   * The part of the kubelet API that `kubectl logs` needs: GET /containerLogs/{ns}/{pod}/{container}
   * (tailLines, limitBytes, follow), over TLS, for clients with a certificate from the cluster CA
   * (the API server's --kubelet-client-certificate).
   */
  serveKubeletApi(): void {
    const server = createHttpsServer(
      { cert: readFileSync(join(PKI, 'kubelet-serving.crt')), key: readFileSync(join(PKI, 'kubelet-serving.key')), ca: caPem, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const url = new URL(req.url ?? '/', 'https://node');
        if (url.pathname === '/healthz') {
          res.writeHead(200).end('ok');
          return;
        }
        const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
        if (req.method !== 'GET' || !m) {
          res.writeHead(404).end('the test node agent serves only /containerLogs\n');
          return;
        }
        const [ns, name, container] = m.slice(1).map(decodeURIComponent) as [string, string, string];
        const r = [...this.runners.values()].find((x) => x.pod.metadata?.namespace === ns && x.pod.metadata?.name === name);
        const file = r && join(r.dir, 'logs', `${container}.log`);
        if (!file || !existsSync(file)) {
          res.writeHead(404).end(`no logs for container ${container} of pod ${ns}/${name} on node ${this.spec.name}\n`);
          return;
        }
        let text = readFileSync(file, 'utf8');
        const tailLines = url.searchParams.get('tailLines');
        if (tailLines !== null) {
          const lines = text.split('\n');
          if (lines[lines.length - 1] === '') lines.pop();
          text = lines.slice(-Number(tailLines)).join('\n') + (lines.length && Number(tailLines) > 0 ? '\n' : '');
        }
        const limit = Number(url.searchParams.get('limitBytes') ?? 0);
        if (limit > 0) text = text.slice(0, limit);
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write(text);
        if (url.searchParams.get('follow') !== 'true') {
          res.end();
          return;
        }
        let pos = statSync(file).size;
        const timer = setInterval(() => {
          try {
            const size = statSync(file).size;
            if (size > pos) {
              const buf = Buffer.alloc(size - pos);
              const fd = openSync(file, 'r');
              readSync(fd, buf, 0, buf.length, pos);
              closeSync(fd);
              pos = size;
              res.write(buf);
            }
            if (!this.runners.has(r.uid) || !r.running()) {
              clearInterval(timer);
              res.end();
            }
          } catch {
            clearInterval(timer);
            res.end();
          }
        }, 300);
        req.on('close', () => clearInterval(timer));
      },
    );
    server.listen(PORTS.kubelet + this.index, HOST);
    this.kubeletServer = server;
  }

  /**
   * The machine is gone, as when a cloud deletes a VM: its pods' processes die at once (SIGKILL, no
   * grace, nothing reported), heartbeats and Lease renewals stop, the pod watch ends. Deleting the
   * Node object is the cloud node controller's part (the test does it as an administrator); the
   * pod garbage collector then deletes the node's pods.
   */
  async remove(): Promise<void> {
    this.removed = true;
    this.registered = false;
    const inf = this.informer;
    this.informer = undefined;
    clearInterval(this.resync);
    await inf?.stop().catch(() => undefined);
    for (const r of this.runners.values()) r.crash();
    this.runners.clear();
    log(`[${this.spec.name}] removed: its pods were killed; it reports nothing until restored`);
  }

  /** A new machine of the same name joins: registers the Node again and runs the pods bound to it. */
  async restore(): Promise<void> {
    if (!this.removed) return;
    this.removed = false;
    await this.register();
    await this.renewLease();
    this.startPods();
    log(`[${this.spec.name}] restored`);
  }

  async stop(): Promise<void> {
    this.kubeletServer?.close();
    this.kubeletServer?.closeAllConnections();
    await this.informer?.stop().catch(() => undefined);
    await Promise.all([...this.runners.values()].map((r) => r.terminate(5000, false)));
  }
}

async function main(): Promise<void> {
  // Pod processes of an earlier agent that crashed are orphans now: stop them first.
  for (const p of readPidFiles(PODS)) if (await stopProcess(p, 2000)) log(`stopped leftover pod process ${p.name} (${p.pid})`);
  mkdirSync(PODS, { recursive: true });
  changed();

  NODES.forEach((spec, i) => agents.push(new NodeAgent(spec, i)));
  let shuttingDown = false;
  const server = createServer((req, res) => {
    if (req.url === '/healthz') {
      const okNow = agents.every((a) => a.registered || a.removed);
      res.writeHead(okNow ? 200 : 503).end(okNow ? 'ok' : 'registering');
    } else if (req.url === '/pods') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(agents.flatMap((a) => [...a.runners.values()].map((r) => r.describe())), null, 2));
    } else if (req.method === 'POST' && /^\/nodes\/[^/]+\/(remove|restore)$/.test(req.url ?? '')) {
      // Test faults: a node's machine removed, or a new one of the same name joining (docs/cluster.md).
      const [, , name, op] = (req.url ?? '').split('/');
      const a = agents.find((x) => x.spec.name === name);
      if (!a) {
        res.writeHead(404).end(`no node ${name}\n`);
        return;
      }
      (op === 'remove' ? a.remove() : a.restore()).then(
        () => res.writeHead(200).end(`${op}d ${name}\n`),
        (e: unknown) => res.writeHead(500).end(`${String(e)}\n`),
      );
    } else res.writeHead(404).end();
  });
  server.listen(PORTS.nodeAgent, HOST);

  const shutdown = async (sig: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    log(`${sig}: stopping pods`);
    server.close();
    await Promise.all(agents.map((a) => a.stop()));
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  for (const a of agents) {
    a.serveKubeletApi();
    for (;;) {
      try {
        await a.register();
        await a.renewLease();
        break;
      } catch (e) {
        log(`[${a.spec.name}] registration failed: ${String(e)}; retrying`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    a.startPods();
  }
  setInterval(() => {
    for (const a of agents) if (!a.removed) a.renewLease().catch((e: unknown) => log(`[${a.spec.name}] lease: ${String(e)}`));
  }, 10_000);
  setInterval(() => {
    for (const a of agents) if (!a.removed) a.heartbeat().catch((e: unknown) => log(`[${a.spec.name}] status: ${String(e)}`));
  }, 30_000);
  log(`node agent up: ${NODES.map((n) => n.name).join(', ')}`);
}

await main();
