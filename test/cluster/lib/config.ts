/**
 * Where the test cluster lives: versions (from versions.env), cache and state directories, ports,
 * node names. Shared by up/down/env, the node helpers (lib/nodes.ts) and the cluster tests.
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
  prometheus: base + 90,
  /** kube-proxy's health and metrics, CoreDNS's health and readiness (all on loopback; each kubelet listens on its node's IP). */
  kubeProxyHealthz: base + 256,
  kubeProxyMetrics: base + 249,
  corednsHealth: base + 181,
  corednsReady: base + 182,
} as const;

export const HOST = '127.0.0.1';

/**
 * The nodes' network: the host network, a /24 on a port-less bridge (SWARMBENCH_NODE_NET, default
 * 10.250.0; a second cluster on this machine needs its own). `.1` is the machine as the pods see
 * it (the API server and CoreDNS listen there), `.11`, `.12`, ... are the nodes' IPs.
 */
export const NODE_NET: string = process.env.SWARMBENCH_NODE_NET || '10.250.0';
if (!/^\d+\.\d+\.\d+$/.test(NODE_NET)) throw new Error(`SWARMBENCH_NODE_NET must be three octets like 10.250.0, got ${NODE_NET}`);
export const HOST_IP = `${NODE_NET}.1`;
/** Where the API server listens: the host IP (pods must reach it). */
export const APISERVER_HOST: string = HOST_IP;
export const APISERVER_URL = `https://${APISERVER_HOST}:${PORTS.apiserver}`;
/**
 * Where Prometheus listens: the host IP (pods reach it there: the operator in its pod queries it,
 * and a pod's 127.0.0.1 is its own).
 */
export const PROMETHEUS_HOST: string = HOST_IP;
export const PROMETHEUS_URL = `http://${PROMETHEUS_HOST}:${PORTS.prometheus}`;

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
export const ALL_PORTS: number[] = Object.values(PORTS);

/**
 * The pods' addresses, a /24 of it per node (lib/nodes.ts). A /16; SWARMBENCH_POD_CIDR moves it (a
 * second cluster on this machine needs its own, and its own port base).
 */
export const POD_CIDR: string = process.env.SWARMBENCH_POD_CIDR || '10.244.0.0/16';
if (!/^\d+\.\d+\.0\.0\/16$/.test(POD_CIDR)) throw new Error(`SWARMBENCH_POD_CIDR must be a /16 like 10.244.0.0/16, got ${POD_CIDR}`);

