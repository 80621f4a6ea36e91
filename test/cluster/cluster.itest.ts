/**
 * The test cluster itself, tested on a started cluster (`npm run cluster:up`, then
 * `npm run test:cluster`): real API server, controllers and scheduler; the nodes running the
 * project's image (containers on kubelets and containerd); RBAC through a pod's service account; Prometheus scraping a pod; and
 * `cluster:down` leaving nothing behind.
 *
 * When the cluster is not up the suite is skipped, and the reason is in the suite's name. With
 * SWARMBENCH_REQUIRE_CLUSTER=1 (test/cluster/ci.sh sets it) a missing cluster fails instead.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  AppsV1Api, BatchV1Api, CoreV1Api, DiscoveryV1Api, KubeConfig, RbacAuthorizationV1Api,
  type V1Container, type V1Pod,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.ts';
import { ALL_PORTS, CLUSTER_SRC, KUBECONFIG, LOGS, NODES, PIDS, PROMETHEUS_URL, TEST_SCRAPE_TOKEN, TOOLS_BIN } from './lib/config.ts';
import { containerHostPid } from './lib/nodes.ts';
import { get } from './lib/http.ts';
import { isOurs, listeningOn, readPidFiles } from './lib/proc.ts';
import { clusterNotUp, until as untilBase } from './lib/itest.ts';

const run = promisify(execFile);
const IMAGE = 'ghcr.io/swarmbench/swarmbench:dev';
const GPU_NODE = NODES.find((n) => n.gpu > 0)!.name;
/**
 * The reference agents' bearer token in this file (32 characters, fixed): every agent route but
 * /healthz and /readyz requires it (docs/agent-contract.md, "Authentication"). Prometheus scrapes
 * them with the cluster's scrape token instead (TEST_SCRAPE_TOKEN, test/cluster/cluster.ts).
 */
const TEST_AGENT_TOKEN = 'cluster-itest-agent-token-012345';


const notUp = await clusterNotUp();
if (notUp && process.env.SWARMBENCH_REQUIRE_CLUSTER === '1') throw new Error(`the test cluster is not up (${notUp}); run npm run cluster:up`);
if (notUp) console.warn(`\n*** cluster tests SKIPPED: the test cluster is not up (${notUp}). Run: npm run cluster:up && npm run test:cluster ***\n`);
const title = notUp ? `test cluster [SKIPPED: cluster not up: ${notUp}; run npm run cluster:up]` : 'test cluster';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The shared poll-until-deadline, with this file's defaults (90_000 ms, every 500 ms). */
const until = <T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 90_000, everyMs = 500): Promise<T> =>
  untilBase(what, fn, timeoutMs, everyMs);

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run(join(TOOLS_BIN, 'kubectl'), args, { env: { ...process.env, KUBECONFIG }, maxBuffer: 16 << 20 });
  return stdout;
}

describe.skipIf(!!notUp)(title, () => {
  const kc = new KubeConfig();
  let core: CoreV1Api;
  let batch: BatchV1Api;
  let apps: AppsV1Api;
  let rbac: RbacAuthorizationV1Api;
  let discovery: DiscoveryV1Api;
  const ns = `clustertest-${Date.now().toString(36)}`;

  const container = (name: string, args: string[], extra: Partial<V1Container> = {}): V1Container => ({
    name, image: IMAGE, args,
    env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
    ],
    ...extra,
  });

  const pod = async (name: string): Promise<V1Pod> => core.readNamespacedPod({ name, namespace: ns });
  const finished = (name: string): Promise<V1Pod> =>
    until(`pod ${name} to finish`, async () => {
      const p = await pod(name);
      return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
    });

  beforeAll(async () => {
    kc.loadFromFile(KUBECONFIG);
    core = kc.makeApiClient(CoreV1Api);
    batch = kc.makeApiClient(BatchV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    discovery = kc.makeApiClient(DiscoveryV1Api);
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await until('default ServiceAccount', () => core.readNamespacedServiceAccount({ name: 'default', namespace: ns }));
  });

  afterAll(async () => {
    if (!core || process.env.SWARMBENCH_CLUSTER_TEST_KEEP === '1') return;
    await core.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('kubectl get nodes: three Ready nodes with their labels, capacity and the GPU taint', async () => {
    const nodes = JSON.parse(await kubectl('get', 'nodes', '-o', 'json')) as { items: Array<{ metadata: { name: string; labels: Record<string, string> }; spec: { taints?: Array<{ key: string; effect: string }> }; status: { capacity: Record<string, string>; conditions: Array<{ type: string; status: string }> } }> };
    expect(nodes.items.map((n) => n.metadata.name).sort()).toEqual(NODES.map((n) => n.name).sort());
    for (const n of nodes.items) {
      expect(n.status.conditions.find((c) => c.type === 'Ready')?.status, n.metadata.name).toBe('True');
      expect(n.metadata.labels['kubernetes.io/hostname']).toBe(n.metadata.name);
      expect(Number(n.status.capacity.cpu)).toBeGreaterThan(0);
      const gpu = n.metadata.name === GPU_NODE;
      expect(n.metadata.labels['nvidia.com/gpu.present'], n.metadata.name).toBe(gpu ? 'true' : undefined);
      expect(n.status.capacity['nvidia.com/gpu'], n.metadata.name).toBe(gpu ? '2' : undefined);
      expect(n.spec.taints?.some((t) => t.key === 'nvidia.com/gpu' && t.effect === 'NoSchedule') ?? false, n.metadata.name).toBe(gpu);
    }
    const table = await kubectl('get', 'nodes');
    for (const n of NODES) expect(table).toMatch(new RegExp(`${n.name}\\s+Ready`));
  });

  it('a Job of the project image completes; its pod ran as a real process that wrote a ConfigMap', async () => {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'writer' } } });
    await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: 'writer' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'update'] }] } });
    await rbac.createNamespacedRoleBinding({ namespace: ns, body: { metadata: { name: 'writer' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'writer' }, subjects: [{ kind: 'ServiceAccount', name: 'writer', namespace: ns }] } });
    await batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: { name: 'probe-job' },
        spec: {
          backoffLimit: 0,
          template: { spec: { serviceAccountName: 'writer', restartPolicy: 'Never', containers: [container('probe', ['probe', '--write-configmap', 'job-result'])] } },
        },
      },
    });
    const job = await until('Job probe-job Complete', async () => {
      const j = await batch.readNamespacedJob({ name: 'probe-job', namespace: ns });
      if (j.status?.conditions?.some((c) => c.type === 'Failed' && c.status === 'True')) throw new Error(`job failed: ${JSON.stringify(j.status)}`);
      return j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') ? j : undefined;
    });
    expect(job.status?.succeeded).toBe(1);
    const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=probe-job' });
    expect(pods.items).toHaveLength(1);
    const p = pods.items[0]!;
    expect(p.status?.phase).toBe('Succeeded');
    expect(p.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
    const cm = await core.readNamespacedConfigMap({ name: 'job-result', namespace: ns });
    expect(cm.data?.pod).toBe(p.metadata!.name);
    expect(cm.data?.namespace).toBe(ns);
    expect(cm.data?.nodeName).toBe(p.spec!.nodeName);
    expect(cm.data?.podIP).toBe(p.status!.podIP);
    // Its own pid, as the container sees it (its pid namespace's).
    expect(Number(cm.data?.pid)).toBeGreaterThanOrEqual(1);
    const seen = JSON.parse(cm.data!['probe.json']!) as { env: Record<string, string>; pid: number };
    // In-cluster config as in any cluster: the `kubernetes` Service through kube-proxy.
    expect(seen.env.KUBERNETES_SERVICE_HOST).toBe('10.96.0.1');
    expect(seen.env.KUBERNETES_SERVICE_PORT).toBe('443');
    expect(seen.env.KUBECONFIG).toBeUndefined();
    expect(seen.env.POD_NAME).toBe(p.metadata!.name);
    // kubectl logs goes API server -> the kubelet's API -> the output.
    expect(await kubectl('logs', '-n', ns, p.metadata!.name!)).toMatch(new RegExp(`probe: wrote configmap ${ns}/job-result as`));
  });

  it('a pod asking for nvidia.com/gpu with the toleration lands on the GPU node; pods without never do', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'gpu-pod' },
        spec: {
          restartPolicy: 'Never',
          tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
          containers: [container('probe', ['probe'], { resources: { limits: { 'nvidia.com/gpu': '1' } } })],
        },
      },
    });
    const cpuNames = Array.from({ length: 6 }, (_, i) => `cpu-pod-${i}`);
    for (const name of cpuNames)
      await core.createNamespacedPod({ namespace: ns, body: { metadata: { name }, spec: { restartPolicy: 'Never', containers: [container('probe', ['probe'])] } } });
    const gpu = await finished('gpu-pod');
    expect(gpu.spec?.nodeName).toBe(GPU_NODE);
    expect(gpu.status?.phase).toBe('Succeeded');
    for (const name of cpuNames) {
      const p = await finished(name);
      expect(p.spec?.nodeName, name).not.toBe(GPU_NODE);
      expect(p.status?.phase, name).toBe('Succeeded');
    }
    // A GPU request without the toleration stays Pending (unschedulable), never on the GPU node.
    await core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: 'gpu-no-toleration' }, spec: { restartPolicy: 'Never', containers: [container('probe', ['probe'], { resources: { limits: { 'nvidia.com/gpu': '1' } } })] } },
    });
    const unsched = await until('gpu-no-toleration reported unschedulable', async () => {
      const p = await pod('gpu-no-toleration');
      return p.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable') ? p : undefined;
    });
    expect(unsched.spec?.nodeName).toBeUndefined();
  });

  it('a pod of an image the nodes do not hold stays Pending with ErrImagePull, then ImagePullBackOff, as a kubelet reports a failed pull', async () => {
    await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'busybox' }, spec: { restartPolicy: 'Never', containers: [{ name: 'bb', image: 'busybox:1.36', command: ['sh', '-c', 'true'] }] } } });
    const p = await until('busybox in ImagePullBackOff', async () => {
      const x = await pod('busybox');
      return x.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ImagePullBackOff' ? x : undefined;
    });
    expect(p.status?.phase).toBe('Pending');
    expect(p.status?.containerStatuses?.[0]?.state?.waiting?.message).toMatch(/^Back-off pulling image "busybox:1\.36"/);
    await core.deleteNamespacedPod({ name: 'busybox', namespace: ns, gracePeriodSeconds: 0 });
  });

  let deployPod = '';
  it("a Deployment's deleted pod is replaced and becomes Ready again; deleting the Deployment removes its ReplicaSet and pods", async () => {
    const labels = { app: 'probe-server' };
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'probe-server', labels },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels, annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080', 'prometheus.io/path': '/metrics' } },
            spec: {
              terminationGracePeriodSeconds: 5,
              containers: [container('server', ['probe', '--serve', '8080'], {
                ports: [{ name: 'http', containerPort: 8080 }],
                readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 1 },
              })],
            },
          },
        },
      },
    });
    const readyPods = async (): Promise<V1Pod[]> =>
      (await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=probe-server' })).items.filter(
        (p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      );
    const first = await until('2 Ready pods', async () => {
      const r = await readyPods();
      return r.length === 2 ? r : undefined;
    });
    // A Service's EndpointSlice lists the pods' IPs, and they answer there (the pod IPs themselves).
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'probe-server' }, spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 'http' as unknown as number }] } } });
    const addrs = await until('EndpointSlice with both pods ready', async () => {
      const slices = await discovery.listNamespacedEndpointSlice({ namespace: ns, labelSelector: 'kubernetes.io/service-name=probe-server' });
      const a = slices.items.flatMap((sl) => (sl.endpoints ?? []).filter((e) => e.conditions?.ready).flatMap((e) => e.addresses));
      return a.length === 2 ? a.sort() : undefined;
    });
    expect(addrs).toEqual(first.map((p) => p.status!.podIP!).sort());
    for (const ip of addrs) expect((await get(`http://${ip}:8080/readyz`)).status).toBe(200);
    const victim = first[0]!;
    const victimPid = containerHostPid(victim)!;
    expect(victimPid).toBeGreaterThan(1);
    expect(existsSync(`/proc/${victimPid}`)).toBe(true);

    await core.deleteNamespacedPod({ name: victim.metadata!.name!, namespace: ns });
    const after = await until('a replacement pod Ready', async () => {
      const r = await readyPods();
      return r.length === 2 && r.every((p) => p.metadata!.uid !== victim.metadata!.uid) ? r : undefined;
    });
    expect(after.map((p) => p.metadata!.name)).not.toContain(victim.metadata!.name);
    await until('the deleted pod object to be gone', async () => {
      try {
        await pod(victim.metadata!.name!);
        return false;
      } catch (e) {
        return (e as { code?: number }).code === 404;
      }
    });
    expect(existsSync(`/proc/${victimPid}`)).toBe(false);
    deployPod = after[0]!.metadata!.name!;

    // Prometheus scrapes the pods of the project's image that ask for it (file_sd by pod-sd.ts).
    const up = await until(
      `Prometheus target for ${deployPod} up`,
      async () => {
        const r = await get(`${PROMETHEUS_URL}/api/v1/query?query=${encodeURIComponent(`up{job="pods",namespace="${ns}",pod="${deployPod}"}`)}`);
        const res = (JSON.parse(r.body) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }).data.result;
        return res.length === 1 && res[0]!.value[1] === '1' ? res[0] : undefined;
      },
      60_000,
      1000,
    );
    expect(up.metric.node).toBeDefined();
    const info = await get(`${PROMETHEUS_URL}/api/v1/query?query=${encodeURIComponent(`swarmbench_probe_info{namespace="${ns}"}`)}`);
    expect((JSON.parse(info.body) as { data: { result: unknown[] } }).data.result.length).toBeGreaterThanOrEqual(1);

    // Garbage collection: the ReplicaSet and the pods go with the Deployment.
    const pids = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=probe-server' })).items
      .map((x) => containerHostPid(x))
      .filter((x): x is number => !!x);
    expect(pids.length).toBeGreaterThanOrEqual(2);
    await apps.deleteNamespacedDeployment({ name: 'probe-server', namespace: ns, propagationPolicy: 'Background' });
    await until('ReplicaSets and pods of the Deployment gone', async () => {
      const rs = await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: 'app=probe-server' });
      const ps = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=probe-server' });
      return rs.items.length === 0 && ps.items.length === 0;
    });
    for (const pid of pids) expect(existsSync(`/proc/${pid}`), `pid ${pid}`).toBe(false);
  });

  it('a process in a pod reads a ConfigMap with its service account and is refused what its Role does not grant', async () => {
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'allowed' }, data: { greeting: 'hello' } } });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'forbidden' }, data: { secret: 'no' } } });
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'reader' } } });
    await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: 'reader' }, rules: [{ apiGroups: [''], resources: ['configmaps'], resourceNames: ['allowed'], verbs: ['get'] }] } });
    await rbac.createNamespacedRoleBinding({ namespace: ns, body: { metadata: { name: 'reader' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' }, subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns }] } });
    const mk = (name: string, args: string[]): Promise<V1Pod> =>
      core.createNamespacedPod({ namespace: ns, body: { metadata: { name }, spec: { serviceAccountName: 'reader', restartPolicy: 'Never', containers: [container('probe', ['probe', ...args])] } } });
    await mk('read-allowed', ['--read-configmap', 'allowed']);
    await mk('read-forbidden', ['--read-configmap', 'forbidden']);
    await mk('write-forbidden', ['--write-configmap', 'new-one']);
    const a = await finished('read-allowed');
    expect(a.status?.phase).toBe('Succeeded');
    for (const name of ['read-forbidden', 'write-forbidden']) {
      const p = await finished(name);
      expect(p.status?.phase, name).toBe('Failed');
      expect(p.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, name).toBe(3); // probe: refused
    }
    // The process's own output says why.
    expect(await kubectl('logs', '-n', ns, 'read-allowed')).toMatch(/"greeting":"hello"/);
    expect(await kubectl('logs', '-n', ns, 'read-forbidden')).toMatch(
      new RegExp(`refused \\(HTTP 403\\).*system:serviceaccount:${ns}:reader`),
    );
    await expect(core.readNamespacedConfigMap({ name: 'new-one', namespace: ns })).rejects.toMatchObject({ code: 404 });
  });

  it.skipIf(!existsSync(join(CLUSTER_SRC, '../../src/agent/cli.ts')))('the reference agent (swarmbench agent) runs as a Deployment: Ready, listening on its pod IP, requiring its token, scraped by Prometheus with the scrape token', async () => {
    const labels = { app: 'ref-agents' };
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'ref-agents' },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels, annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080' } },
            spec: {
              containers: [{
                name: 'agent', image: IMAGE, args: ['agent', '--host', '$(POD_IP)', '--port', '8080'],
                env: [
                  { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                  { name: 'SWARMBENCH_AGENT_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  { name: 'SWARMBENCH_AGENT_TOKEN', value: TEST_AGENT_TOKEN },
                  // What the Prometheus `pods` job sends: accepted on GET /metrics only.
                  { name: 'SWARMBENCH_METRICS_TOKEN', value: TEST_SCRAPE_TOKEN },
                ],
                ports: [{ name: 'http', containerPort: 8080 }],
                readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 1 },
              }],
            },
          },
        },
      },
    });
    await until('2 ready reference agents', async () => {
      const d = await apps.readNamespacedDeployment({ name: 'ref-agents', namespace: ns });
      return d.status?.readyReplicas === 2;
    });
    // The agents require the run token; the scrape token opens /metrics and nothing else.
    const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=ref-agents' });
    const urls = pods.items.filter((p) => p.status?.podIP).map((p) => `http://${p.status!.podIP!}:8080`);
    expect(urls.length).toBeGreaterThanOrEqual(2);
    const authed = new AgentClient({ timeoutMs: 5000, token: TEST_AGENT_TOKEN });
    const anon = new AgentClient({ timeoutMs: 5000, token: null });
    const scraper = new AgentClient({ timeoutMs: 5000, token: TEST_SCRAPE_TOKEN });
    try {
      for (const url of urls) {
        expect((await authed.info(url)).status, url).toBe(200);
        expect((await anon.info(url)).status, url).toBe(401);
        expect((await anon.readyz(url)).status, url).toBe(200);
        expect((await scraper.info(url)).status, url).toBe(401);
        expect((await scraper.metrics(url)).status, url).toBe(200);
      }
    } finally {
      for (const c of [authed, anon, scraper]) c.close();
    }
    const q = encodeURIComponent(`up{job="pods",namespace="${ns}",app="ref-agents"}`);
    await until('Prometheus: both agents up', async () => {
      const r = JSON.parse((await get(`${PROMETHEUS_URL}/api/v1/query?query=${q}`)).body) as { data: { result: Array<{ value: [number, string] }> } };
      return r.data.result.length === 2 && r.data.result.every((x) => x.value[1] === '1');
    }, 60_000, 1000);
    await apps.deleteNamespacedDeployment({ name: 'ref-agents', namespace: ns });
  });
});

describe.skipIf(!!notUp)(`${title}: lifecycle`, () => {
  const cli = (cmd: string): Promise<{ stdout: string; stderr: string }> =>
    // The same environment as this file's (SWARMBENCH_CLUSTER_DIR, ports, networks): the cluster under test.
    run(process.execPath, [join(CLUSTER_SRC, 'cluster.ts'), cmd], { env: process.env, maxBuffer: 16 << 20 });

  it('up after a crash recovers, up twice is a no-op, and down leaves no process and no listening port', async () => {
    // A crash: kill -9 the API server and etcd behind the harness's back.
    for (const r of readPidFiles(PIDS).filter((x) => x.name === 'kube-apiserver' || x.name === 'etcd')) process.kill(r.pid, 'SIGKILL');
    await sleep(500);
    const recovered = await cli('up');
    expect(recovered.stderr).toMatch(/up in/);
    const again = await cli('up');
    expect(again.stderr).toMatch(/already up/);

    // A long-running pod, so that down has a pod process to stop too.
    const kc = new KubeConfig();
    kc.loadFromFile(KUBECONFIG);
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'lifecycle-sleeper' }, spec: { containers: [{ name: 's', image: IMAGE, args: ['probe', '--serve', '9000'] }] } } });
    const podPids = await until('the sleeper pod process', async () => {
      const p = await core.readNamespacedPod({ name: 'lifecycle-sleeper', namespace: 'default' });
      const pid = containerHostPid(p);
      return pid ? [{ pid, exe: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]!, name: 'lifecycle-sleeper' }] : undefined;
    });
    const recs = [...readPidFiles(PIDS), ...podPids];
    const daemons = ['kube-proxy', 'coredns', 'pod-sd', ...NODES.flatMap((n) => [`kubelet-${n.name}`, `containerd-${n.name}`])];
    expect(recs.map((r) => r.name)).toEqual(expect.arrayContaining(['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'prometheus', ...daemons]));
    expect(recs.every((r) => isOurs(r))).toBe(true);

    await cli('down');
    for (const r of recs) expect(isOurs(r), `${r.name} (${r.pid}) still running`).toBe(false);
    expect(listeningOn(ALL_PORTS)).toEqual([]);
    expect(existsSync(KUBECONFIG)).toBe(false);

    // Leave the cluster as we found it: up.
    const back = await cli('up');
    expect(back.stderr).toMatch(/up in/);
    expect(existsSync(join(LOGS, 'kube-apiserver.log'))).toBe(true);
  });
});
