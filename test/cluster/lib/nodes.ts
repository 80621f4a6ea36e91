/**
 * Real nodes for the test cluster: per node a containerd (Debian's) and a kubelet (built from the
 * same Go module as the control plane, test/cluster/build.sh), runc underneath; pods on a CNI
 * bridge per node with real pod IPs; one kube-proxy (iptables) for Services; CoreDNS for Service
 * names; and a small Prometheus target writer (test/cluster/pod-sd.ts). See docs/cluster.md.
 *
 * The nodes share the machine's network namespace (as several kubelets on one host do): each has
 * its own IP on a host interface (a bridge without ports), its own bridge and pod /24, its own containerd root, state and
 * socket, kubelet root directory and cgroup parent. Routes between the nodes' pod networks are the
 * host's own connected routes (each bridge is an interface of the same host), so one kube-proxy
 * serves all of them: two would write the same iptables chains.
 *
 * `tearDownNodes` leaves no process, mount, interface, iptables rule, network namespace or cgroup
 * behind; containerd's content store (`<state>/containerd/<node>`) is kept so that the next `up`
 * does not unpack the images again.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import {
  CACHE, CLUSTER_SRC, HOST, HOST_IP, KUBERNETES_VERSION, LOGS, NODE_NET, NODES, PIDS, PORTS, POD_CIDR, STATE, type NodeSpec,
} from './config.ts';
import { isOurs, readPidFiles, sleep, startDaemon, stopProcess } from './proc.ts';

const log = (m: string): void => console.error(`cluster: ${m}`);

/** Where build.sh puts the node binaries (kubelet, kube-proxy, coredns, crictl) and the pause image. */
export function nodeBinDir(k8sVersion: string): string {
  return join(CACHE, 'nodes', k8sVersion, 'bin');
}
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10.1';
export const CNI_BIN = process.env.SWARMBENCH_CNI_BIN || '/usr/lib/cni';
export const CLUSTER_DOMAIN = 'cluster.local';

const base = Number(process.env.SWARMBENCH_CLUSTER_PORT_BASE || 16000);
/** Short tag for names the kernel limits to 15 characters (interfaces) and for cgroups. */
const TAG = `sb${Math.floor(base / 1000)}`;
export const DUMMY_IF = `${TAG}host`;
export const RUN_DIR = `/run/swarmbench-${TAG}`;

export interface RealNode extends NodeSpec {
  index: number;
  ip: string;
  podSubnet: string;
  gateway: string;
  bridge: string;
  cgroupRoot: string;
  dir: string; // <state>/nodes/<name>
  containerdRoot: string;
  containerdState: string;
  socket: string;
}

export function realNodes(): RealNode[] {
  const prefix = POD_CIDR.split('.').slice(0, 2).join('.');
  return NODES.map((n, i) => ({
    ...n,
    index: i,
    ip: `${NODE_NET}.${11 + i}`,
    podSubnet: `${prefix}.${i + 1}.0/24`,
    gateway: `${prefix}.${i + 1}.1`,
    bridge: `${TAG}n${i}`,
    cgroupRoot: `/${TAG}-${n.name}`,
    dir: join(STATE, 'nodes', n.name),
    containerdRoot: join(STATE, 'containerd', n.name),
    containerdState: join(RUN_DIR, n.name),
    socket: join(RUN_DIR, n.name, 'containerd.sock'),
  }));
}

function sh(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input: opts.input, timeout: opts.timeoutMs ?? 120_000 });
}
function trySh(cmd: string, args: string[], timeoutMs = 60_000): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

// ---- host network ----

const SYSCTLS = ['net/ipv4/ip_forward', 'net/bridge/bridge-nf-call-iptables'];
const sysctlFile = (): string => join(STATE, 'sysctl-before.json');

export function setupHostNetwork(): void {
  if (!existsSync(sysctlFile())) {
    const before: Record<string, string> = {};
    for (const k of SYSCTLS) before[k] = readFileSync(`/proc/sys/${k}`, 'utf8').trim();
    writeFileSync(sysctlFile(), JSON.stringify(before));
  }
  // Routed pod traffic between the nodes' bridges, and bridged traffic through iptables so that a
  // pod reaching a Service whose endpoint is on its own bridge gets its answer un-NATed.
  for (const k of SYSCTLS) writeFileSync(`/proc/sys/${k}`, '1');
  // A port-less bridge holds the addresses (this kernel has no `dummy` links): local delivery only.
  if (!trySh('ip', ['link', 'show', DUMMY_IF]).ok) sh('ip', ['link', 'add', DUMMY_IF, 'type', 'bridge']);
  for (const ip of [HOST_IP, ...realNodes().map((n) => n.ip)]) sh('ip', ['addr', 'replace', `${ip}/32`, 'dev', DUMMY_IF]);
  sh('ip', ['link', 'set', DUMMY_IF, 'up']);
  // The nodes' pod networks, made by the CNI bridge plugin on the first pod; made here already so
  // that every node's pods are routable from the start and `down` knows what to remove.
  for (const n of realNodes()) {
    if (!trySh('ip', ['link', 'show', n.bridge]).ok) sh('ip', ['link', 'add', n.bridge, 'type', 'bridge']);
    sh('ip', ['addr', 'replace', `${n.gateway}/24`, 'dev', n.bridge]);
    sh('ip', ['link', 'set', n.bridge, 'up']);
  }
}

function teardownHostNetwork(): void {
  for (const n of realNodes()) if (trySh('ip', ['link', 'show', n.bridge]).ok) trySh('ip', ['link', 'del', n.bridge]);
  if (trySh('ip', ['link', 'show', DUMMY_IF]).ok) trySh('ip', ['link', 'del', DUMMY_IF]);
  if (existsSync(sysctlFile())) {
    const before = JSON.parse(readFileSync(sysctlFile(), 'utf8')) as Record<string, string>;
    for (const [k, v] of Object.entries(before)) {
      try {
        writeFileSync(`/proc/sys/${k}`, v);
      } catch {
        /* best effort */
      }
    }
    rmSync(sysctlFile(), { force: true });
  }
}

// ---- containerd ----

function containerdConfig(n: RealNode): string {
  return `version = 2
root = ${JSON.stringify(n.containerdRoot)}
state = ${JSON.stringify(n.containerdState)}
oom_score = 0
[grpc]
  address = ${JSON.stringify(n.socket)}
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${JSON.stringify(PAUSE_IMAGE)}
  # Root in this VM cannot lower oom_score_adj, and the pause sandbox asks for -998.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${JSON.stringify(CNI_BIN)}
    conf_dir = ${JSON.stringify(join(n.dir, 'cni'))}
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
`;
}

function cniConfig(n: RealNode): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: `swarmbench-${n.name}`,
      plugins: [
        {
          type: 'bridge',
          bridge: n.bridge,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: n.podSubnet, gateway: n.gateway }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(n.dir, 'ipam') },
        },
        { type: 'loopback' },
      ],
    },
    null,
    2,
  );
}

export async function startContainerd(n: RealNode): Promise<void> {
  for (const d of [n.dir, join(n.dir, 'cni'), n.containerdRoot, n.containerdState]) mkdirSync(d, { recursive: true });
  writeFileSync(join(n.dir, 'containerd.toml'), containerdConfig(n));
  writeFileSync(join(n.dir, 'cni', '10-swarmbench.conflist'), cniConfig(n));
  startDaemon({ name: `containerd-${n.name}`, exe: '/usr/bin/containerd', args: ['--config', join(n.dir, 'containerd.toml')], pidDir: PIDS, logDir: LOGS, cwd: n.dir });
  const t0 = Date.now();
  while (!trySh('ctr', ['--address', n.socket, 'version'], 5000).ok) {
    if (Date.now() - t0 > 60_000) throw new Error(`containerd for ${n.name} did not answer on ${n.socket} within 60 s (logs/containerd-${n.name}.log)`);
    await sleep(200);
  }
}

/** The image an OCI archive holds: its manifest digest and the name it was saved under. */
export function archiveImage(archive: string): { digest: string; name: string } {
  const index = JSON.parse(sh('tar', ['-xOf', archive, 'index.json'])) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const m = index.manifests[0];
  const name = m?.annotations?.['io.containerd.image.name'] ?? m?.annotations?.['org.opencontainers.image.ref.name'];
  if (!m || !name || !name.includes('/')) throw new Error(`${archive}: no image with a full name in its index.json`);
  return { digest: m.digest, name };
}

/**
 * Imports an OCI archive into a node's containerd (namespace k8s.io) and names it `names` too,
 * unless every name already points at the archive's digest.
 */
export function importImage(n: RealNode, archive: string, names: string[]): void {
  const img = archiveImage(archive);
  const ctr = (...a: string[]): string => sh('ctr', ['--address', n.socket, '-n', 'k8s.io', ...a], { timeoutMs: 600_000 });
  const listed = ctr('images', 'ls').split('\n');
  const has = (x: string): boolean => listed.some((l) => l.startsWith(`${x} `) && l.includes(img.digest));
  if ([img.name, ...names].every(has)) return;
  ctr('images', 'import', archive);
  for (const x of names) if (x !== img.name) ctr('images', 'tag', '--force', img.name, x);
}

// ---- kubelet ----

function kubeletConfig(n: RealNode, pki: { ca: string; serving: { cert: string; key: string } }): string {
  return dump({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: n.ip,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: n.ip,
    healthzPort: 10248,
    tlsCertFile: pki.serving.cert,
    tlsPrivateKeyFile: pki.serving.key,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: pki.ca } },
    authorization: { mode: 'Webhook' },
    containerRuntimeEndpoint: `unix://${n.socket}`,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: n.cgroupRoot,
    cgroupsPerQOS: true,
    enforceNodeAllocatable: ['pods'],
    failCgroupV1: false,
    failSwapOn: false,
    clusterDNS: [HOST_IP],
    clusterDomain: CLUSTER_DOMAIN,
    resolvConf: join(n.dir, 'resolv.conf'),
    podLogsDir: join(n.dir, 'pod-logs'),
    maxPods: 110,
    // The machine's disk is shared by every node and by other work: no eviction or image GC on
    // its fill level (the project's images are imported, never pulled again).
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    // A container's ConfigMap and Secret env read straight from the API server. The default
    // (Watch) waits at most 1 s for a new watch to sync and fails the container otherwise
    // (CreateContainerConfigError "failed to sync configmap cache", retried 10 s later): on a busy
    // 2-core machine that delayed about one agent pod in twenty of a quick run, and with it its pool.
    configMapAndSecretChangeDetectionStrategy: 'Get',
    registerWithTaints: n.gpu > 0 ? [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }] : [],
    nodeStatusReportFrequency: '30s',
    nodeStatusUpdateFrequency: '10s',
    syncFrequency: '10s',
    fileCheckFrequency: '20s',
    shutdownGracePeriod: '0s',
    containerLogMaxSize: '10Mi',
    containerLogMaxFiles: 3,
    localStorageCapacityIsolation: true,
    protectKernelDefaults: false,
  });
}

export function nodeLabels(n: NodeSpec): string[] {
  const l = ['swarmbench.dev/test-node=true'];
  if (n.gpu > 0) l.push('nvidia.com/gpu.present=true', `nvidia.com/gpu.count=${n.gpu}`, 'nvidia.com/gpu.product=swarmbench-test-gpu');
  return l;
}

/** The cgroup v1 hierarchies under /sys/fs/cgroup (the kubelet wants its root in each, name=systemd too). */
function cgroupControllers(): string[] {
  try {
    return readdirSync('/sys/fs/cgroup').filter((d) => d !== 'unified' && existsSync(join('/sys/fs/cgroup', d, 'cgroup.procs')));
  } catch {
    return [];
  }
}

export function startKubelet(n: RealNode, opts: { bin: string; kubeconfig: string; ca: string; serving: { cert: string; key: string } }): void {
  for (const d of [join(n.dir, 'kubelet'), join(n.dir, 'pod-logs')]) mkdirSync(d, { recursive: true });
  // Pods with dnsPolicy Default get the host's resolver; none is reachable from here anyway.
  writeFileSync(join(n.dir, 'resolv.conf'), readFileSync('/etc/resolv.conf', 'utf8'));
  for (const c of cgroupControllers()) mkdirSync(join('/sys/fs/cgroup', c, n.cgroupRoot), { recursive: true });
  // The node's CPU weight. A new cgroup weighs 1024, as much as ONE busy process of the host's
  // root group, so all of a node's pods together weighed what one host process weighs against the
  // machine's other work (other tests, compilers), less than the kubepods group inside it, which
  // the kubelet weighs 1024 per CPU of capacity. The node gets that weight too.
  for (const c of cgroupControllers()) {
    const shares = join('/sys/fs/cgroup', c, n.cgroupRoot, 'cpu.shares');
    if (existsSync(shares)) writeFileSync(shares, String(1024 * Math.max(1, availableParallelism())));
  }
  writeFileSync(join(n.dir, 'kubelet.yaml'), kubeletConfig(n, { ca: opts.ca, serving: opts.serving }));
  startDaemon({
    name: `kubelet-${n.name}`,
    exe: join(opts.bin, 'kubelet'),
    args: [
      `--config=${join(n.dir, 'kubelet.yaml')}`, `--kubeconfig=${opts.kubeconfig}`, `--root-dir=${join(n.dir, 'kubelet')}`,
      `--hostname-override=${n.name}`, `--node-ip=${n.ip}`, `--node-labels=${nodeLabels(n).join(',')}`, '--v=1',
    ],
    pidDir: PIDS,
    logDir: LOGS,
    cwd: n.dir,
  });
}

/**
 * Every hierarchy a node's cgroups can be in: the v1 controllers and, on a hybrid host, the v2
 * `unified` tree, where the kubelet makes its cgroup root too (`down` removes them from each).
 */
function cgroupHierarchies(): string[] {
  return [...cgroupControllers(), ...(existsSync('/sys/fs/cgroup/unified/cgroup.procs') ? ['unified'] : [])];
}

// ---- kube-proxy, CoreDNS, Prometheus targets ----

export function startKubeProxy(bin: string, kubeconfig: string): void {
  const dir = join(STATE, 'kube-proxy');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'config.yaml'),
    dump({
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      clientConnection: { kubeconfig },
      mode: 'iptables',
      clusterCIDR: POD_CIDR,
      hostnameOverride: NODES[0]!.name,
      bindAddress: HOST_IP,
      healthzBindAddress: `${HOST}:${PORTS.kubeProxyHealthz}`,
      metricsBindAddress: `${HOST}:${PORTS.kubeProxyMetrics}`,
      // The VM's conntrack sysctls are left as they are.
      conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      iptables: { syncPeriod: '10s', minSyncPeriod: '1s', masqueradeAll: false },
    }),
  );
  startDaemon({ name: 'kube-proxy', exe: join(bin, 'kube-proxy'), args: [`--config=${join(dir, 'config.yaml')}`, '--v=1'], pidDir: PIDS, logDir: LOGS, cwd: dir });
}

export function startCoreDns(bin: string, kubeconfig: string): void {
  const dir = join(STATE, 'coredns');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'Corefile'),
    `.:53 {
    bind ${HOST_IP}
    errors
    health ${HOST}:${PORTS.corednsHealth}
    ready ${HOST}:${PORTS.corednsReady}
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        kubeconfig ${kubeconfig} swarmbench
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
}
`,
  );
  startDaemon({ name: 'coredns', exe: join(bin, 'coredns'), args: ['-conf', join(dir, 'Corefile')], pidDir: PIDS, logDir: LOGS, cwd: dir });
}

export function startPodSd(): void {
  startDaemon({
    name: 'pod-sd',
    exe: process.execPath,
    args: [join(CLUSTER_SRC, 'pod-sd.ts')],
    pidDir: PIDS,
    logDir: LOGS,
    cwd: STATE,
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  });
}

// ---- teardown ----

function mountsUnder(prefixes: string[]): string[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const p = mp.replace(/\\040/g, ' ');
    if (prefixes.some((x) => p === x || p.startsWith(`${x}/`))) out.push(p);
  }
  // Deepest first.
  return out.sort((a, b) => b.length - a.length);
}

function processesMatching(test: (cmdline: string[]) => boolean): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (test(argv)) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

function cgroupProcs(root: string): number[] {
  const pids: number[] = [];
  for (const c of cgroupHierarchies()) {
    const top = join('/sys/fs/cgroup', c, root);
    if (!existsSync(top)) continue;
    const walk = (d: string): void => {
      try {
        for (const p of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (p.trim()) pids.push(Number(p));
        for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
      } catch {
        /* gone */
      }
    };
    walk(top);
  }
  return [...new Set(pids)];
}

function kill9(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** SIGKILLs every process in a node's cgroups until none is left (about 5 s at most); true when empty. */
async function emptyCgroups(root: string): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    const pids = cgroupProcs(root);
    if (!pids.length) return true;
    for (const pid of pids) kill9(pid);
    await sleep(100);
  }
  return cgroupProcs(root).length === 0;
}

function removeCgroupTree(root: string): string[] {
  const left: string[] = [];
  for (const c of cgroupHierarchies()) {
    const top = join('/sys/fs/cgroup', c, root);
    if (!existsSync(top)) continue;
    const walk = (d: string): void => {
      try {
        for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
        rmdirSync(d);
      } catch {
        left.push(d);
      }
    };
    walk(top);
  }
  return left;
}

/** Network namespaces made by the CNI for our pods: `cni-*` with an address in POD_CIDR. */
function ourNetns(): string[] {
  const prefix = `${POD_CIDR.split('.').slice(0, 2).join('.')}.`;
  let names: string[] = [];
  try {
    names = readdirSync('/run/netns').filter((n) => n.startsWith('cni-'));
  } catch {
    return [];
  }
  return names.filter((n) => trySh('ip', ['-n', n, '-o', '-4', 'addr']).out.includes(` ${prefix}`));
}

/**
 * Stops the nodes and removes every trace: kubelets, the pods (through the CRI, which tears down
 * their networks), containerd and leftover shims and container processes, mounts, network
 * namespaces, cgroups, the bridges and the dummy interface, kube-proxy's iptables rules, and the
 * sysctls as they were. Returns what could not be removed (empty when clean).
 */
export async function tearDownNodes(k8sVersion: string): Promise<string[]> {
  const bin = nodeBinDir(k8sVersion);
  const recs = readPidFiles(PIDS);
  const stop = async (name: string, grace: number): Promise<void> => {
    for (const r of recs.filter((x) => x.name === name)) if (await stopProcess(r, grace)) log(`stopped ${name}`);
  };
  for (const d of ['pod-sd', 'coredns', 'kube-proxy']) await stop(d, 10_000);
  const nodes = realNodes();
  for (const n of nodes) await stop(`kubelet-${n.name}`, 15_000);
  for (const n of nodes) {
    const rec = recs.find((x) => x.name === `containerd-${n.name}`);
    if (rec && isOurs(rec) && existsSync(join(bin, 'crictl'))) {
      const r = trySh(join(bin, 'crictl'), ['--runtime-endpoint', `unix://${n.socket}`, '--timeout', '20s', 'rmp', '--all', '--force'], 90_000);
      if (!r.ok) log(`crictl rmp on ${n.name}: ${r.out.trim().slice(0, 300)}`);
    }
  }
  for (const n of nodes) await stop(`containerd-${n.name}`, 10_000);
  // Shims of our containerds (a crashed containerd leaves them), then anything left in our cgroups.
  const sockets = nodes.map((n) => n.socket);
  for (const pid of processesMatching((a) => a[0]?.endsWith('containerd-shim-runc-v2') === true && a.some((x) => sockets.includes(x)))) kill9(pid);
  for (const n of nodes) await emptyCgroups(n.cgroupRoot);
  if (existsSync(join(bin, 'kube-proxy'))) {
    const r = trySh(join(bin, 'kube-proxy'), ['--cleanup'], 60_000);
    if (!r.ok) log(`kube-proxy --cleanup: ${r.out.trim().slice(-300)}`);
  }
  removeKubeChains();
  const left: string[] = [];
  for (const ns of ourNetns()) if (!trySh('ip', ['netns', 'delete', ns]).ok) left.push(`netns ${ns}`);
  for (const mp of mountsUnder([join(STATE, 'nodes'), join(STATE, 'containerd'), RUN_DIR])) {
    const r = trySh('umount', ['-l', mp]);
    if (!r.ok) left.push(`mount ${mp}`);
  }
  for (const n of nodes) left.push(...removeCgroupTree(n.cgroupRoot).map((d) => `cgroup ${d}`));
  teardownHostNetwork();
  const chains = leftoverIptables();
  if (chains.length) left.push(`iptables: ${chains.join(', ')}`);
  rmSync(RUN_DIR, { recursive: true, force: true });
  rmSync(join(STATE, 'nodes'), { recursive: true, force: true });
  return left;
}

/**
 * The kubelet's own chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT), which
 * `kube-proxy --cleanup` leaves, and anything KUBE-* a crashed kube-proxy left: the jumps into them
 * from the built-in chains first, then the chains. Real nodes are one cluster per machine (they
 * share its network namespace and iptables), so every KUBE-* chain is ours.
 */
function removeKubeChains(): void {
  for (const [save, tool] of [['iptables-save', 'iptables'], ['ip6tables-save', 'ip6tables']] as const) {
    const r = trySh(save, []);
    if (!r.ok) continue;
    let table = '';
    const jumps: Array<[string, string[]]> = [];
    const chains: Array<[string, string]> = [];
    for (const line of r.out.split('\n')) {
      if (line.startsWith('*')) table = line.slice(1);
      else if (/^:KUBE-\S+/.test(line)) chains.push([table, line.slice(1).split(' ')[0]!]);
      else if (/^-A (?!KUBE-)\S+ .*-j KUBE-/.test(line)) jumps.push([table, ['-D', ...splitRule(line.slice(3))]]);
    }
    for (const [t, args] of jumps) trySh(tool, ['-w', '-t', t, ...args]);
    for (const [t, c] of chains) trySh(tool, ['-w', '-t', t, '-F', c]);
    for (const [t, c] of chains) trySh(tool, ['-w', '-t', t, '-X', c]);
  }
}

/** An iptables-save rule split into arguments (double-quoted parts kept whole). */
function splitRule(rule: string): string[] {
  return [...rule.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

/** iptables rules or chains kube-proxy or the kubelet made (KUBE-*), in any table. */
export function leftoverIptables(): string[] {
  const out: string[] = [];
  for (const save of ['iptables-save', 'ip6tables-save']) {
    const r = trySh(save, []);
    if (r.ok) out.push(...r.out.split('\n').filter((l) => /KUBE-/.test(l)).map((l) => `${save.replace('-save', '')} ${l}`));
  }
  return out.slice(0, 20);
}

/** Gives the GPU node its `nvidia.com/gpu` capacity, as a device plugin would (docs/cluster.md). */
export function gpuCapacityPatch(n: NodeSpec): object {
  return [
    { op: 'add', path: '/status/capacity/nvidia.com~1gpu', value: String(n.gpu) },
    { op: 'add', path: '/status/allocatable/nvidia.com~1gpu', value: String(n.gpu) },
  ];
}

/**
 * The host pid of a pod's container, as the container runtime says it (`crictl inspect` on the
 * pod's node: `info.pid`). Undefined when the container is not running or not found.
 */
export function containerHostPid(pod: { spec?: { nodeName?: string }; status?: { containerStatuses?: Array<{ containerID?: string }> } }, index = 0): number | undefined {
  const id = pod.status?.containerStatuses?.[index]?.containerID ?? '';
  const m = /^containerd:\/\/([0-9a-f]{64})$/.exec(id);
  const node = realNodes().find((n) => n.name === pod.spec?.nodeName);
  if (!m || !node) return undefined;
  // stdout only: crictl warns on stderr that it has no /etc/crictl.yaml.
  const r = spawnSync(join(nodeBinDir(KUBERNETES_VERSION), 'crictl'), ['--runtime-endpoint', `unix://${node.socket}`, 'inspect', '-o', 'json', m[1]!], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) return undefined;
  try {
    const pid = (JSON.parse(r.stdout) as { info?: { pid?: number } }).info?.pid;
    return pid && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}


/**
 * A node's machine goes away: its kubelet is SIGKILLed, then every process in the node's cgroups (its pods'
 * containers) — no SIGTERM, no grace, nothing reported any more. Its command line is kept for
 * `restoreNode`. Deleting the Node object is the caller's part, as the cloud's node controller's.
 */
export async function removeNode(name: string): Promise<void> {
  const n = realNodes().find((x) => x.name === name);
  const rec = readPidFiles(PIDS).find((r) => r.name === `kubelet-${name}`);
  if (!n || !rec || !isOurs(rec)) throw new Error(`removeNode: ${name} has no running kubelet`);
  const args = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(1);
  writeFileSync(join(n.dir, 'kubelet.args.json'), JSON.stringify({ exe: rec.exe, args }));
  process.kill(rec.pid, 'SIGKILL');
  for (let i = 0; i < 100 && isOurs(rec); i++) await sleep(50);
  rmSync(rec.file, { force: true });
  if (!(await emptyCgroups(n.cgroupRoot))) throw new Error(`removeNode: processes of ${name}'s pods survived SIGKILL`);
}

/** A new machine of the same name joins: the kubelet removed by `removeNode` starts again. */
export function restoreNode(name: string): void {
  const n = realNodes().find((x) => x.name === name);
  if (!n) throw new Error(`restoreNode: no node ${name}`);
  const { exe, args } = JSON.parse(readFileSync(join(n.dir, 'kubelet.args.json'), 'utf8')) as { exe: string; args: string[] };
  startDaemon({ name: `kubelet-${name}`, exe, args, pidDir: PIDS, logDir: LOGS, cwd: n.dir });
}
