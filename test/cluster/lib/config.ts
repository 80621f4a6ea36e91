/**
 * Where the test cluster lives: versions (from versions.env), cache and state directories, ports,
 * node names. Shared by up/down/env, the node agent and the cluster tests.
 *
 * Environment overrides: SWARMBENCH_CACHE (default ~/.cache/swarmbench), SWARMBENCH_CLUSTER_DIR
 * (default <repo>/.tmp/cluster), SWARMBENCH_CLUSTER_PORT_BASE (default 16000).
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLUSTER_SRC: string = fileURLToPath(new URL('../', import.meta.url));
export const REPO: string = fileURLToPath(new URL('../../../', import.meta.url));

export function readVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(CLUSTER_SRC, 'versions.env'), 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

const versions = readVersions();
export const KUBERNETES_VERSION: string = versions.KUBERNETES_VERSION!;
export const ETCD_VERSION: string = versions.ETCD_VERSION!;
export const KUBECTL_LAYER_VERSION: string = versions.KUBECTL_LAYER_VERSION!;

export const CACHE: string = process.env.SWARMBENCH_CACHE || join(homedir(), '.cache', 'swarmbench');
export const CONTROLPLANE_BIN: string = join(CACHE, 'controlplane', `${KUBERNETES_VERSION}-etcd-${ETCD_VERSION}`, 'bin');
export const TOOLS_BIN: string = join(CACHE, 'tools', `kubectl-layer-${KUBECTL_LAYER_VERSION}`, 'bin');
/** Helm 3 (the chart supports Helm 3 and 4; TOOLS_BIN's helm is 4), built by `build.sh helm3`. */
export const HELM3_VERSION: string = versions.HELM3_VERSION ?? 'v3.22.0';
export const HELM3_BIN: string = join(CACHE, 'tools', `helm-${HELM3_VERSION}`, 'bin');

export const STATE: string = process.env.SWARMBENCH_CLUSTER_DIR || join(REPO, '.tmp', 'cluster');
export const PKI: string = join(STATE, 'pki');
export const PIDS: string = join(STATE, 'pids');
export const LOGS: string = join(STATE, 'logs');
export const PODS: string = join(STATE, 'pods');
export const KUBECONFIG: string = join(STATE, 'admin.kubeconfig');
export const PROM_TARGETS: string = join(STATE, 'prometheus', 'targets', 'pods.json');
/**
 * The test Prometheus's read-only scrape token (docs/agent-contract.md, "Authentication": agents
 * accept it on `GET /metrics` only, besides their run's token). Fixed, so tests can give it to
 * the agents they start (`SWARMBENCH_METRICS_TOKEN`) and to the operator started by
 * test/cluster/lib/itest.ts `startOperator`, which copies it into each run's token Secret.
 */
export const TEST_SCRAPE_TOKEN = 'swarmbench-test-scrape-token-0123456789';
/**
 * The file holding TEST_SCRAPE_TOKEN (mode 0600), written by `cluster:up`: the `credentials_file`
 * of the Prometheus `pods` job, and the file to give the operator.
 */
export const SCRAPE_TOKEN_FILE: string = join(STATE, 'prometheus', 'scrape-token');

const base = Number(process.env.SWARMBENCH_CLUSTER_PORT_BASE || 16000);
export const PORTS = {
  etcdClient: base + 379,
  etcdPeer: base + 380,
  apiserver: base + 443,
  controllerManager: base + 257,
  scheduler: base + 259,
  nodeAgent: base + 250,
  /** The node agent's kubelet API (container logs) for node i listens on kubelet + i. */
  kubelet: base + 251,
  prometheus: base + 90,
  /** Real nodes: kube-proxy's health and metrics, CoreDNS's health and readiness (all on loopback). */
  kubeProxyHealthz: base + 256,
  kubeProxyMetrics: base + 249,
  corednsHealth: base + 181,
  corednsReady: base + 182,
} as const;

export const HOST = '127.0.0.1';

/**
 * How pods run: `real` (kubelets with containerd and runc, test/cluster/lib/nodes.ts; needs root)
 * or `agent` (the older test node agent, pods as local processes: kept only until it is removed,
 * docs/cluster.md). SWARMBENCH_NODES chooses (default: the started cluster's, <state>/node-mode,
 * else `real`).
 */
export const NODE_MODE: 'real' | 'agent' = nodeMode();
function nodeMode(): 'real' | 'agent' {
  const want = process.env.SWARMBENCH_NODES;
  if (want === 'real' || want === 'agent') return want;
  if (want) throw new Error(`SWARMBENCH_NODES must be real or agent, got ${want.slice(0, 40)}`);
  // A started cluster says which it is (cluster:up writes it), so status, env, down and the tests
  // need no variable.
  try {
    const m = readFileSync(join(STATE, 'node-mode'), 'utf8').trim();
    if (m === 'real' || m === 'agent') return m;
  } catch {
    /* not started */
  }
  return 'real';
}
/**
 * Real nodes: the host network, a /24 on a port-less bridge (SWARMBENCH_NODE_NET, default
 * 10.250.0; a second cluster on this machine needs its own). `.1` is the machine as the pods see
 * it (the API server and CoreDNS listen there), `.11`, `.12`, ... are the nodes' IPs.
 */
export const NODE_NET: string = process.env.SWARMBENCH_NODE_NET || '10.250.0';
if (!/^\d+\.\d+\.\d+$/.test(NODE_NET)) throw new Error(`SWARMBENCH_NODE_NET must be three octets like 10.250.0, got ${NODE_NET}`);
export const HOST_IP = `${NODE_NET}.1`;
/** Where the API server listens: the host IP with real nodes (pods must reach it), loopback otherwise. */
export const APISERVER_HOST: string = NODE_MODE === 'real' ? HOST_IP : HOST;
export const APISERVER_URL = `https://${APISERVER_HOST}:${PORTS.apiserver}`;
/**
 * Where Prometheus listens: the host IP with real nodes (pods reach it there: the operator in its
 * pod queries it, and a pod's 127.0.0.1 is its own), loopback otherwise (the node agent's pods are
 * host processes).
 */
export const PROMETHEUS_HOST: string = NODE_MODE === 'real' ? HOST_IP : HOST;
export const PROMETHEUS_URL = `http://${PROMETHEUS_HOST}:${PORTS.prometheus}`;
export const NODE_AGENT_URL = `http://${HOST}:${PORTS.nodeAgent}`;

export interface NodeSpec {
  name: string;
  gpu: number;
}
export const NODES: NodeSpec[] = [
  { name: 'swarmbench-cpu-1', gpu: 0 },
  { name: 'swarmbench-cpu-2', gpu: 0 },
  { name: 'swarmbench-gpu-1', gpu: 2 },
];

/** Every port the cluster listens on (what cluster:down checks is free again). */
export const ALL_PORTS: number[] = [...Object.values(PORTS), ...NODES.map((_, i) => PORTS.kubelet + i)];

/**
 * Pod IPs. Preferred: 10.244.0.0/16 made local with `ip route replace local 10.244.0.0/16 dev lo`
 * (the "AnyIP" trick: every address in it is on the loopback device, nothing leaves the machine,
 * and unlike 127.0.0.0/8 the API server accepts these addresses in EndpointSlices). Without the
 * right to add that route (not root), or with SWARMBENCH_POD_NETWORK=loopback, pods get addresses
 * from 127.100.0.0/16 instead, and Services get no EndpointSlice endpoints.
 * `cluster:up` decides and writes the choice to <state>/pod-network.json for the node agent.
 */
export const POD_NETWORK_FILE: string = join(STATE, 'pod-network.json');
/** A /16; SWARMBENCH_POD_CIDR moves it (a second cluster on this machine needs its own, and its own port base). */
export const POD_CIDR: string = process.env.SWARMBENCH_POD_CIDR || '10.244.0.0/16';
if (!/^\d+\.\d+\.0\.0\/16$/.test(POD_CIDR)) throw new Error(`SWARMBENCH_POD_CIDR must be a /16 like 10.244.0.0/16, got ${POD_CIDR}`);

export interface PodNetwork {
  prefix: string; // first two octets
  cidr: string;
  route: boolean; // whether cluster:up added the local route (and cluster:down removes it)
}

export function podNetwork(): PodNetwork {
  try {
    return JSON.parse(readFileSync(POD_NETWORK_FILE, 'utf8')) as PodNetwork;
  } catch {
    return { prefix: '127.100', cidr: '127.100.0.0/16', route: false };
  }
}
