/**
 * A stand-in API server for the Kubernetes platform's pools (src/platform/kubernetes/index.ts),
 * over HTTP as the client library speaks it, with just enough of a Deployment controller: a
 * Deployment's pods follow its replicas (the newest go first on a scale-down), a pod is Ready a
 * moment after it is created, a deleted pod or Deployment's pods terminate a moment later. It
 * reads nothing but what the pool sends: the Deployments it creates, patches and deletes, the
 * seeds ConfigMap it patches, the pods it deletes; the pod list and watch follow label selectors.
 *
 * What it checks (the agents would depend on it in a cluster): every pod that starts with seeds
 * must find at least one of them alive (an agent of a pod that is Ready and not terminating) when
 * it becomes Ready; otherwise `violations` says which. `ops` records the writes in order.
 * Agents' /readyz answers come from `agentAlive(url)` (the test mocks the agent client with it).
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { KubeConfig, V1ConfigMap, V1Deployment, V1Pod } from '@kubernetes/client-node';
import { selectorMatches } from '../../src/operator/cluster.ts';
import { listenKube } from './kube-stub.ts';

const NS = 'bench';
const STEP_MS = 15;

export class PoolApiStub {
  kc!: KubeConfig;
  readonly ops: string[] = [];
  readonly violations: string[] = [];
  readonly deployments = new Map<string, V1Deployment>();
  readonly pods = new Map<string, V1Pod>();
  /** Every pod created: its Deployment, the seeds it started with, its agents per pod annotation. */
  readonly started: { pod: string; deployment: string; seeds: string }[] = [];
  private readonly ownerOf = new Map<string, string>();
  private readonly watchers = new Set<{ res: ServerResponse; selector: string }>();
  private server!: Server;
  private rv = 1;
  private serial = 0;
  private ip = 0;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();

  private readonly seeds: V1ConfigMap;

  constructor(seeds: V1ConfigMap) {
    this.seeds = seeds;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => this.handle(req.method ?? 'GET', new URL(req.url ?? '/', 'http://x'), body, res));
    });
    this.kc = await listenKube(this.server);
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const w of this.watchers) w.res.end();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** The agent URLs of a pod, as its process would listen: 8080 + i on the pod IP. */
  static urlsOf(pod: V1Pod): string[] {
    const c = Number(pod.metadata?.annotations?.['swarmbench.io/agents-per-pod'] ?? '1');
    return Array.from({ length: c }, (_, i) => `http://${pod.status?.podIP}:${8080 + i}`);
  }

  /** An agent of a Ready pod that is not terminating. */
  agentAlive(url: string): boolean {
    return [...this.pods.values()].some((p) => this.isLive(p) && PoolApiStub.urlsOf(p).includes(url));
  }

  seedsValue(): Record<string, string> {
    return { ...(this.seeds.data ?? {}) };
  }

  /** Pods that are not terminating, by Deployment. */
  livePodsOf(deployment: string): V1Pod[] {
    return [...this.pods.values()].filter((p) => this.ownerOf.get(p.metadata!.name!) === deployment && !p.metadata?.deletionTimestamp);
  }

  private isLive(p: V1Pod): boolean {
    return !p.metadata?.deletionTimestamp && !!p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  }

  private later(fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, STEP_MS);
    this.timers.add(t);
  }

  private emit(type: 'ADDED' | 'MODIFIED' | 'DELETED', pod: V1Pod): void {
    pod.metadata!.resourceVersion = String(++this.rv);
    const line = `${JSON.stringify({ type, object: pod })}\n`;
    for (const w of this.watchers) if (selectorMatches(pod.metadata?.labels, w.selector)) w.res.write(line);
  }

  private reconcile(name: string): void {
    const d = this.deployments.get(name);
    const live = this.livePodsOf(name).sort((a, b) => Number(a.metadata!.uid!.slice(4)) - Number(b.metadata!.uid!.slice(4)));
    const want = d ? (d.spec?.replicas ?? 0) : 0;
    for (let i = live.length; i < want; i++) this.createPod(d!);
    for (const p of live.slice(want).reverse()) this.terminate(p);
  }

  private createPod(d: V1Deployment): void {
    const n = ++this.serial;
    const name = `${d.metadata!.name}-${n.toString(36).padStart(5, 'x')}`;
    const tpl = d.spec!.template;
    const env = tpl.spec!.containers[0]!.env ?? [];
    const ref = env.find((e) => e.name === 'SWARMBENCH_SEEDS')?.valueFrom?.configMapKeyRef;
    const seeds = ref ? (this.seeds.data?.[ref.key] ?? '') : '';
    const pod: V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS, uid: `pod-${n}`, labels: { ...tpl.metadata!.labels }, annotations: { ...tpl.metadata!.annotations }, creationTimestamp: new Date(Date.now() + n) },
      spec: { nodeName: `node-${n % 2}`, containers: tpl.spec!.containers },
      status: { phase: 'Pending' },
    };
    this.pods.set(name, pod);
    this.ownerOf.set(name, d.metadata!.name!);
    this.started.push({ pod: name, deployment: d.metadata!.name!, seeds });
    this.emit('ADDED', pod);
    this.later(() => {
      if (pod.metadata?.deletionTimestamp || !this.pods.has(name)) return;
      const urls = seeds ? seeds.split(',') : [];
      if (urls.length > 0 && !urls.some((u) => this.agentAlive(u))) this.violations.push(`${name} started with seeds ${seeds}, none of them alive when it came up`);
      const ip = ++this.ip;
      pod.status = { phase: 'Running', podIP: `10.9.${ip >> 8}.${ip & 255}`, conditions: [{ type: 'Ready', status: 'True' }] };
      this.emit('MODIFIED', pod);
    });
  }

  private terminate(p: V1Pod): void {
    if (p.metadata!.deletionTimestamp) return;
    p.metadata!.deletionTimestamp = new Date();
    p.status = { ...p.status, conditions: [{ type: 'Ready', status: 'False' }] };
    this.emit('MODIFIED', p);
    this.later(() => {
      this.pods.delete(p.metadata!.name!);
      this.emit('DELETED', p);
    });
  }

  private removeDeployment(name: string): void {
    this.deployments.delete(name);
    for (const p of this.livePodsOf(name)) this.terminate(p);
  }

  private send(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private status(res: ServerResponse, code: number, reason: string): void {
    this.send(res, code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message: reason });
  }

  private handle(method: string, url: URL, body: string, res: ServerResponse): void {
    const q = url.searchParams;
    const path = url.pathname;
    const json = body ? (JSON.parse(body) as Record<string, unknown>) : {};
    if (path === `/api/v1/namespaces/${NS}/pods` && method === 'GET') {
      const selector = q.get('labelSelector') ?? '';
      if (q.get('watch') === 'true') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        const w = { res, selector };
        this.watchers.add(w);
        res.on('close', () => this.watchers.delete(w));
        return;
      }
      const items = [...this.pods.values()].filter((p) => selectorMatches(p.metadata?.labels, selector));
      return this.send(res, 200, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items });
    }
    const pod = new RegExp(`^/api/v1/namespaces/${NS}/pods/([^/]+)$`).exec(path);
    if (pod && method === 'DELETE') {
      const p = this.pods.get(pod[1]!);
      if (!p) return this.status(res, 404, 'NotFound');
      this.ops.push(`delete pod ${pod[1]}`);
      this.terminate(p);
      return this.send(res, 200, p);
    }
    if (path === `/apis/apps/v1/namespaces/${NS}/deployments`) {
      if (method === 'DELETE') {
        const selector = q.get('labelSelector') ?? '';
        for (const [name, d] of this.deployments) if (selectorMatches(d.metadata?.labels, selector)) this.removeDeployment(name);
        return this.send(res, 200, { kind: 'Status', apiVersion: 'v1', status: 'Success' });
      }
      if (method === 'POST') {
        const d = json as V1Deployment;
        const name = d.metadata!.name!;
        if (this.deployments.has(name)) return this.status(res, 409, 'AlreadyExists');
        d.metadata!.uid = `dep-${++this.serial}`;
        this.deployments.set(name, d);
        this.ops.push(`create ${name} ${d.spec?.replicas ?? 0}`);
        this.reconcile(name);
        return this.send(res, 201, d);
      }
    }
    const dep = new RegExp(`^/apis/apps/v1/namespaces/${NS}/deployments/([^/]+)$`).exec(path);
    if (dep) {
      const name = dep[1]!;
      const d = this.deployments.get(name);
      if (!d) return this.status(res, 404, 'NotFound');
      if (method === 'GET') return this.send(res, 200, d);
      if (method === 'PATCH') {
        const replicas = (json.spec as { replicas?: number } | undefined)?.replicas;
        if (replicas !== undefined) d.spec!.replicas = replicas;
        this.ops.push(`scale ${name} ${replicas}`);
        this.reconcile(name);
        return this.send(res, 200, d);
      }
      if (method === 'DELETE') {
        const uid = (json.preconditions as { uid?: string } | undefined)?.uid;
        if (uid !== undefined && uid !== d.metadata!.uid) return this.status(res, 409, 'Conflict');
        this.ops.push(`delete ${name}`);
        this.removeDeployment(name);
        return this.send(res, 200, { kind: 'Status', apiVersion: 'v1', status: 'Success' });
      }
    }
    if (path === `/api/v1/namespaces/${NS}/configmaps/${this.seeds.metadata!.name}`) {
      if (method === 'GET') return this.send(res, 200, this.seeds);
      if (method === 'PATCH') {
        const data = (json.data ?? {}) as Record<string, string | null>;
        const next = { ...(this.seeds.data ?? {}) };
        for (const [k, v] of Object.entries(data)) {
          if (v === null) delete next[k];
          else next[k] = v;
        }
        this.seeds.data = next;
        return this.send(res, 200, this.seeds);
      }
    }
    this.ops.push(`unexpected ${method} ${path}`);
    this.status(res, 404, 'NotFound');
  }
}
