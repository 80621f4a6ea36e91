/**
 * The project's test cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, three
 * nodes and Prometheus. The nodes are real: a kubelet and containerd each (runc underneath), one
 * kube-proxy, CoreDNS (test/cluster/lib/nodes.ts). Needs root.
 *
 *   node test/cluster/cluster.ts up      (npm run cluster:up)   build if needed, start, wait healthy
 *   node test/cluster/cluster.ts down    (npm run cluster:down) stop everything it started
 *   node test/cluster/cluster.ts env     (npm run -s cluster:env) shell exports: KUBECONFIG, PATH, ...
 *   node test/cluster/cluster.ts status  exit 0 when up and healthy
 *
 * See docs/cluster.md.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ALL_PORTS, APISERVER_HOST, APISERVER_URL, CLUSTER_SRC, CONTROLPLANE_BIN, ETCD_VERSION, HOST, HOST_IP, KUBECONFIG, KUBERNETES_VERSION, LOGS,
  NODES, PIDS, PKI, PORTS, PROM_TARGETS, PROMETHEUS_HOST, PROMETHEUS_URL,
  SCRAPE_TOKEN_FILE, STATE, TEST_SCRAPE_TOKEN, TOOLS_BIN,
} from './lib/config.ts';
import { get, ok } from './lib/http.ts';
import { kubeconfig, makePki } from './lib/pki.ts';
import {
  gpuCapacityPatch, importImage, nodeBinDir, PAUSE_IMAGE, realNodes, setupHostNetwork, startContainerd, startCoreDns, startKubelet, startKubeProxy,
  startPodSd, tearDownNodes,
} from './lib/nodes.ts';
import { isOurs, listeningOn, readPidFiles, sleep, startDaemon, stopProcess, tail } from './lib/proc.ts';

const log = (m: string): void => console.error(`cluster: ${m}`);

// Order of start; stopped in reverse.
const CONTROL = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler'];
const NODE_DAEMONS = [
  ...realNodes().flatMap((n) => [`containerd-${n.name}`, `kubelet-${n.name}`]),
  'kube-proxy', 'coredns', 'pod-sd',
];
const DAEMONS: string[] = [...CONTROL, ...NODE_DAEMONS, 'prometheus'];
/**
 * The names the project's image has on real nodes: the tests' (`swarmbench:dev`, which the CRI
 * reads as docker.io/library/swarmbench:dev, and ghcr.io/swarmbench/swarmbench:dev) and the chart's
 * default (its appVersion). The GPU image (images/swarmbench-gpu) cannot be built without CUDA base
 * images, so its names point at the same image: the GPU node runs the CPU build, and the inference
 * backend each result records says which ran (docs/cluster.md).
 */
const VERSION = (JSON.parse(readFileSync(join(CLUSTER_SRC, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
export const PROJECT_IMAGE_NAMES = ['swarmbench', 'swarmbench-gpu'].flatMap((r) => [
  `docker.io/library/${r}:dev`, `ghcr.io/swarmbench/${r}:dev`, `ghcr.io/swarmbench/${r}:${VERSION}`,
]);

function prometheusBinary(): string {
  for (const p of [process.env.SWARMBENCH_PROMETHEUS, '/usr/bin/prometheus'])
    if (p && existsSync(p)) return p;
  throw new Error('prometheus not found: apt-get install -y --no-install-recommends prometheus (see docs/cluster.md), or set SWARMBENCH_PROMETHEUS');
}

async function waitFor(what: string, daemon: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const start = Date.now();
  const rec = readPidFiles(PIDS).find((r) => r.name === daemon);
  while (Date.now() - start < timeoutMs) {
    if (await check()) {
      log(`${what} ready (${((Date.now() - start) / 1000).toFixed(1)} s)`);
      return;
    }
    if (rec && !isOurs(rec)) throw new Error(`${daemon} exited while waiting for ${what}:\n${tail(join(LOGS, `${daemon}.log`))}`);
    await sleep(250);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}:\n${tail(join(LOGS, `${daemon}.log`))}`);
}

const admin = (): { ca: string; cert: string; key: string } => ({ ca: join(PKI, 'ca.crt'), cert: join(PKI, 'admin.crt'), key: join(PKI, 'admin.key') });

async function apiGet(path: string): Promise<{ status: number; body: string }> {
  return get(`${APISERVER_URL}${path}`, admin());
}

async function healthy(): Promise<string[]> {
  const problems: string[] = [];
  const recs = readPidFiles(PIDS);
  for (const d of DAEMONS) {
    const r = recs.find((x) => x.name === d);
    if (!r || !isOurs(r)) problems.push(`${d} not running`);
  }
  if (problems.length) return problems;
  if (!(await ok(`${APISERVER_URL}/readyz`, admin()))) problems.push('kube-apiserver not ready');
  if (!(await ok(`https://${HOST}:${PORTS.controllerManager}/healthz`, { insecure: true }))) problems.push('kube-controller-manager not healthy');
  if (!(await ok(`https://${HOST}:${PORTS.scheduler}/healthz`, { insecure: true }))) problems.push('kube-scheduler not healthy');
  for (const n of realNodes()) if (!(await ok(`http://${n.ip}:10248/healthz`))) problems.push(`kubelet ${n.name} not healthy`);
  if (!(await ok(`http://${HOST}:${PORTS.kubeProxyHealthz}/healthz`))) problems.push('kube-proxy not healthy');
  if (!(await ok(`http://${HOST}:${PORTS.corednsReady}/ready`))) problems.push('coredns not ready');
  if (!(await ok(`${PROMETHEUS_URL}/-/ready`))) problems.push('prometheus not ready');
  return problems;
}

async function nodesReady(): Promise<boolean> {
  try {
    const r = await apiGet('/api/v1/nodes');
    if (r.status !== 200) return false;
    const items = (JSON.parse(r.body) as { items: Array<{ metadata: { name: string }; status?: { conditions?: Array<{ type: string; status: string }> } }> }).items;
    return NODES.every((n) => items.some((i) => i.metadata.name === n.name && i.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')));
  } catch {
    return false;
  }
}

function build(): void {
  const need = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler'].map((b) => join(CONTROLPLANE_BIN, b));
  need.push(join(TOOLS_BIN, 'kubectl'), join(TOOLS_BIN, 'helm'));
  need.push(...['kubelet', 'kube-proxy', 'coredns', 'crictl'].map((b) => join(nodeBinDir(KUBERNETES_VERSION), b)));
  if (need.every((p) => existsSync(p))) return;
  log('binaries missing from the cache: running test/cluster/build.sh');
  execFileSync(join(CLUSTER_SRC, 'build.sh'), ['all'], { stdio: 'inherit' });
}

export async function down(): Promise<void> {
  // The nodes first (their pods, kubelets, containerds, network), then the rest in reverse order of start.
  const leftovers = await tearDownNodes(KUBERNETES_VERSION);
  const recs = readPidFiles(PIDS);
  for (const d of [...DAEMONS].reverse()) {
    for (const r of recs.filter((x) => x.name === d)) if (await stopProcess(r, 15_000)) log(`stopped ${d}`);
  }
  for (const r of readPidFiles(PIDS)) await stopProcess(r, 5000);
  const ports = ALL_PORTS;
  let busy = listeningOn(ports);
  for (let i = 0; busy.length && i < 50; i++) {
    await sleep(100);
    busy = listeningOn(ports);
  }
  // Drop the data (etcd, Prometheus, certificates); keep logs for a post-mortem.
  for (const d of ['etcd', 'prometheus', 'pki', 'nodes', 'pids', 'controller-manager.kubeconfig', 'scheduler.kubeconfig', 'kube-proxy.kubeconfig']) rmSync(join(STATE, d), { recursive: true, force: true });
  rmSync(KUBECONFIG, { force: true });
  if (busy.length) throw new Error(`ports still listening after cluster:down: ${busy.join(', ')} (not started by this harness?)`);
  if (leftovers.length) throw new Error(`cluster:down left these behind: ${leftovers.join('; ')}`);
  log('down');
}

async function up(): Promise<void> {
  build();
  if (existsSync(PIDS) && (await healthy()).length === 0 && (await nodesReady())) {
    log(`already up (KUBECONFIG=${KUBECONFIG})`);
    return;
  }
  // Whatever is left from an earlier run or a crash goes first.
  await down();
  const busy = listeningOn(ALL_PORTS);
  if (busy.length) throw new Error(`ports already in use by something else: ${busy.join(', ')} (set SWARMBENCH_CLUSTER_PORT_BASE)`);
  rmSync(LOGS, { recursive: true, force: true });
  for (const d of [STATE, PIDS, LOGS, join(STATE, 'nodes'), join(STATE, 'etcd'), join(STATE, 'prometheus', 'data'), join(STATE, 'prometheus', 'targets')])
    mkdirSync(d, { recursive: true });
  const t0 = Date.now();
  log(`Kubernetes ${KUBERNETES_VERSION}, etcd ${ETCD_VERSION}, state in ${STATE}`);
  setupHostNetwork();
  const pki = makePki(PKI, NODES.map((n) => n.name), { apiserverIPs: [HOST_IP], kubeletIPs: Object.fromEntries(realNodes().map((n) => [n.name, n.ip])) });
  writeFileSync(KUBECONFIG, kubeconfig({ server: APISERVER_URL, ca: pki.ca, user: 'swarmbench-admin', cert: pki.admin }), { mode: 0o600 });
  const kcmKc = join(STATE, 'controller-manager.kubeconfig');
  const schedKc = join(STATE, 'scheduler.kubeconfig');
  writeFileSync(kcmKc, kubeconfig({ server: APISERVER_URL, ca: pki.ca, user: 'system:kube-controller-manager', cert: pki.controllerManager }), { mode: 0o600 });
  writeFileSync(schedKc, kubeconfig({ server: APISERVER_URL, ca: pki.ca, user: 'system:kube-scheduler', cert: pki.scheduler }), { mode: 0o600 });
  for (const n of NODES)
    writeFileSync(join(STATE, 'nodes', `${n.name}.kubeconfig`), kubeconfig({ server: APISERVER_URL, ca: pki.ca, user: `system:node:${n.name}`, cert: pki.nodes[n.name]! }), { mode: 0o600 });

  const bin = (b: string): string => join(CONTROLPLANE_BIN, b);
  const daemon = (name: string, exe: string, args: string[], env?: NodeJS.ProcessEnv): void => {
    startDaemon({ name, exe, args, pidDir: PIDS, logDir: LOGS, cwd: STATE, ...(env ? { env } : {}) });
  };

  const etcdUrl = `http://${HOST}:${PORTS.etcdClient}`;
  daemon('etcd', bin('etcd'), [
    '--name=swarmbench', `--data-dir=${join(STATE, 'etcd')}`,
    `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
    `--listen-peer-urls=http://${HOST}:${PORTS.etcdPeer}`, `--initial-advertise-peer-urls=http://${HOST}:${PORTS.etcdPeer}`,
    `--initial-cluster=swarmbench=http://${HOST}:${PORTS.etcdPeer}`,
    // A throw-away test store on a shared disk: skip fsync (much faster; never do this in production).
    '--unsafe-no-fsync', '--log-level=warn', '--quota-backend-bytes=2147483648',
  ]);
  await waitFor('etcd', 'etcd', async () => {
    try {
      return JSON.parse((await get(`${etcdUrl}/health`)).body).health === 'true';
    } catch {
      return false;
    }
  });

  daemon('kube-apiserver', bin('kube-apiserver'), [
    `--etcd-servers=${etcdUrl}`,
    `--bind-address=${APISERVER_HOST}`, `--advertise-address=${APISERVER_HOST}`, `--secure-port=${PORTS.apiserver}`,
    `--tls-cert-file=${pki.apiserver.cert}`, `--tls-private-key-file=${pki.apiserver.key}`,
    `--client-ca-file=${pki.ca}`,
    '--authorization-mode=Node,RBAC', '--enable-admission-plugins=NodeRestriction',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${pki.saPub}`, `--service-account-signing-key-file=${pki.saKey}`,
    '--service-cluster-ip-range=10.96.0.0/16', '--allow-privileged=true',
    // The kubelets' API (kubectl logs, exec): the API server checks their serving certificates.
    `--kubelet-certificate-authority=${pki.ca}`, `--kubelet-client-certificate=${pki.apiserverKubeletClient.cert}`,
    `--kubelet-client-key=${pki.apiserverKubeletClient.key}`, '--kubelet-preferred-address-types=InternalIP',
    '--profiling=false', '--v=1',
    // The API server listens on the host IP and the `kubernetes` Service's endpoint is that
    // address (pods reach it at 10.96.0.1:443 through kube-proxy).
    // Aggregation-layer settings (front-proxy CA), so that every component finds them.
    `--requestheader-client-ca-file=${pki.frontProxyCa}`, '--requestheader-allowed-names=front-proxy-client',
    '--requestheader-username-headers=X-Remote-User', '--requestheader-group-headers=X-Remote-Group',
    '--requestheader-extra-headers-prefix=X-Remote-Extra-',
    `--proxy-client-cert-file=${pki.frontProxyClient.cert}`, `--proxy-client-key-file=${pki.frontProxyClient.key}`,
  ]);
  await waitFor('kube-apiserver /readyz', 'kube-apiserver', () => ok(`${APISERVER_URL}/readyz`, admin()), 180_000);

  daemon('kube-controller-manager', bin('kube-controller-manager'), [
    `--kubeconfig=${kcmKc}`, `--authentication-kubeconfig=${kcmKc}`, `--authorization-kubeconfig=${kcmKc}`,
    `--bind-address=${HOST}`, `--secure-port=${PORTS.controllerManager}`,
    `--service-account-private-key-file=${pki.saKey}`, `--root-ca-file=${pki.ca}`,
    '--use-service-account-credentials=true',
    `--cluster-signing-cert-file=${pki.ca}`, `--cluster-signing-key-file=${pki.caKey}`,
    '--service-cluster-ip-range=10.96.0.0/16', '--leader-elect=false', '--profiling=false', '--v=1',
    // Faster than the defaults so tests see node failures and GC quickly.
    '--node-monitor-grace-period=20s', '--concurrent-gc-syncs=5',
  ]);
  daemon('kube-scheduler', bin('kube-scheduler'), [
    `--kubeconfig=${schedKc}`, `--authentication-kubeconfig=${schedKc}`, `--authorization-kubeconfig=${schedKc}`,
    `--bind-address=${HOST}`, `--secure-port=${PORTS.scheduler}`, '--leader-elect=false', '--profiling=false', '--v=1',
  ]);
  await waitFor('kube-controller-manager /healthz', 'kube-controller-manager', () => ok(`https://${HOST}:${PORTS.controllerManager}/healthz`, { insecure: true }));
  await waitFor('kube-scheduler /healthz', 'kube-scheduler', () => ok(`https://${HOST}:${PORTS.scheduler}/healthz`, { insecure: true }));

  await startNodes(pki);

  const promDir = join(STATE, 'prometheus');
  // Agents require a bearer token on /metrics (docs/agent-contract.md, "Authentication"): the
  // `pods` job sends the fixed test scrape token, which agents accept on GET /metrics only
  // (SWARMBENCH_METRICS_TOKEN; the operator copies it into each run's token Secret when given it).
  writeFileSync(SCRAPE_TOKEN_FILE, `${TEST_SCRAPE_TOKEN}\n`, { mode: 0o600 });
  chmodSync(SCRAPE_TOKEN_FILE, 0o600);
  writeFileSync(
    join(promDir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 5s',
      '  evaluation_interval: 5s',
      'scrape_configs:',
      '  - job_name: pods',
      '    file_sd_configs:',
      `      - files: ['${PROM_TARGETS}']`,
      '        refresh_interval: 2s',
      '    authorization:',
      '      type: Bearer',
      `      credentials_file: '${SCRAPE_TOKEN_FILE}'`,
      '  - job_name: prometheus',
      '    static_configs:',
      `      - targets: ['${PROMETHEUS_HOST}:${PORTS.prometheus}']`,
      '',
    ].join('\n'),
  );
  daemon('prometheus', prometheusBinary(), [
    `--config.file=${join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(promDir, 'data')}`,
    `--web.listen-address=${PROMETHEUS_HOST}:${PORTS.prometheus}`, '--storage.tsdb.retention.time=1d', '--log.level=warn',
  ]);
  await waitFor('prometheus /-/ready', 'prometheus', () => ok(`${PROMETHEUS_URL}/-/ready`));

  // Pods need the default ServiceAccount, which the controller manager creates per namespace.
  await waitFor('default ServiceAccount', 'kube-controller-manager', async () => (await apiGet('/api/v1/namespaces/default/serviceaccounts/default')).status === 200);
  log(`up in ${((Date.now() - t0) / 1000).toFixed(1)} s: eval "$(npm run -s cluster:env)"  (KUBECONFIG=${KUBECONFIG})`);
}

/**
 * The project image's OCI archive: SWARMBENCH_IMAGE_ARCHIVE, or images/build.sh's (which builds it
 * when the sources changed since the last build, and prints its path last; seconds when nothing did).
 */
function projectImageArchive(): string {
  const p = process.env.SWARMBENCH_IMAGE_ARCHIVE;
  if (p) {
    if (!existsSync(p)) throw new Error(`SWARMBENCH_IMAGE_ARCHIVE=${p} does not exist`);
    return p;
  }
  const t0 = Date.now();
  const out = execFileSync(join(CLUSTER_SRC, '..', '..', 'images', 'build.sh'), [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 16 << 20 }).trim().split('\n').pop();
  if (!out || !existsSync(out)) throw new Error(`images/build.sh printed no archive (${out ?? 'nothing'})`);
  log(`project image ${out} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  return out;
}

async function startNodes(pki: ReturnType<typeof makePki>): Promise<void> {
  const bin = nodeBinDir(KUBERNETES_VERSION);
  const images = join(bin, '..', 'images');
  const archive = projectImageArchive();
  const nodes = realNodes();
  for (const n of nodes) await startContainerd(n);
  const t0 = Date.now();
  for (const n of nodes) {
    importImage(n, join(images, 'pause.tar'), [PAUSE_IMAGE]);
    importImage(n, archive, PROJECT_IMAGE_NAMES);
  }
  log(`images in the nodes' containerd (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  for (const n of nodes) {
    const kc = join(STATE, 'nodes', `${n.name}.kubeconfig`);
    startKubelet(n, { bin, kubeconfig: kc, ca: pki.ca, serving: pki.kubelets[n.name]! });
  }
  await waitFor(`nodes ${NODES.map((n) => n.name).join(', ')} Ready`, `kubelet-${nodes[0]!.name}`, nodesReady, 180_000);
  for (const n of nodes.filter((x) => x.gpu > 0)) {
    execFileSync(join(TOOLS_BIN, 'kubectl'), ['--kubeconfig', KUBECONFIG, 'patch', 'node', n.name, '--subresource=status', '--type=json', '-p', JSON.stringify(gpuCapacityPatch(n))], { stdio: ['ignore', 'ignore', 'pipe'] });
  }
  const kpKc = join(STATE, 'kube-proxy.kubeconfig');
  writeFileSync(kpKc, kubeconfig({ server: APISERVER_URL, ca: pki.ca, user: 'system:kube-proxy', cert: pki.kubeProxy }), { mode: 0o600 });
  startKubeProxy(bin, kpKc);
  startCoreDns(bin, KUBECONFIG);
  startPodSd();
  await waitFor('kube-proxy /healthz', 'kube-proxy', () => ok(`http://${HOST}:${PORTS.kubeProxyHealthz}/healthz`));
  await waitFor('coredns /ready', 'coredns', () => ok(`http://${HOST}:${PORTS.corednsReady}/ready`));
}

function env(): void {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const lines = [
    `export KUBECONFIG=${q(KUBECONFIG)}`,
    `export PATH=${q(`${TOOLS_BIN}:${CONTROLPLANE_BIN}`)}:"$PATH"`,
    `export SWARMBENCH_CLUSTER_DIR=${q(STATE)}`,
    `export SWARMBENCH_PROMETHEUS_URL=${q(PROMETHEUS_URL)}`,
    `export SWARMBENCH_APISERVER_URL=${q(APISERVER_URL)}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

async function status(): Promise<number> {
  const problems = existsSync(PIDS) ? await healthy() : ['not started'];
  if (problems.length === 0 && !(await nodesReady())) problems.push('nodes not Ready');
  if (problems.length) {
    console.log(`down: ${problems.join('; ')}`);
    return 1;
  }
  console.log(`up: ${APISERVER_URL} KUBECONFIG=${KUBECONFIG}`);
  return 0;
}

/**
 * `cluster.ts restart <daemon>`: kill -9 one daemon (a crash) and start it again with the same
 * command line, leaving everything else running: what the operator's robustness tests use to
 * restart the API server mid-run. Waits until the cluster is healthy again.
 */
async function restart(name: string | undefined): Promise<void> {
  const rec = readPidFiles(PIDS).find((r) => r.name === name);
  if (!name || !rec || !isOurs(rec)) throw new Error(`restart: ${name ?? '(no name)'} is not running (known: ${DAEMONS.join(', ')})`);
  const args = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(1);
  // The ports it listens on: a killed multi-threaded process shows as a zombie before its last
  // thread has closed its sockets, so "dead" is not "port free"; wait for the ports too.
  const ports = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(`pid=${rec.pid},`))
    .map((l) => Number(/:(\d+)\s/.exec(l)?.[1]))
    .filter((p) => p > 0);
  const t0 = Date.now();
  process.kill(rec.pid, 'SIGKILL');
  for (let i = 0; i < 200 && (isOurs(rec) || listeningOn(ports).length > 0); i++) await sleep(50);
  if (isOurs(rec) || listeningOn(ports).length > 0) throw new Error(`restart: ${name} (${rec.pid}) did not die or its ports ${ports.join(', ')} are still taken`);
  startDaemon({ name, exe: rec.exe, args, pidDir: PIDS, logDir: LOGS, cwd: STATE });
  for (;;) {
    const problems = await healthy();
    if (problems.length === 0) break;
    if (Date.now() - t0 > 120_000) throw new Error(`restart: not healthy after 120 s: ${problems.join('; ')}`);
    await sleep(200);
  }
  log(`restarted ${name} in ${Date.now() - t0} ms`);
}

const cmd = process.argv[2];
try {
  if (cmd === 'up') await up();
  else if (cmd === 'down') await down();
  else if (cmd === 'env') env();
  else if (cmd === 'status') process.exitCode = await status();
  else if (cmd === 'restart') await restart(process.argv[3]);
  else {
    console.error('usage: cluster.ts up|down|env|status|restart <daemon>');
    process.exitCode = 2;
  }
} catch (e) {
  log(`error: ${e instanceof Error ? e.message : String(e)}`);
  if (cmd === 'up' && process.env.SWARMBENCH_CLUSTER_KEEP_ON_FAILURE !== '1') {
    log('stopping what was started (set SWARMBENCH_CLUSTER_KEEP_ON_FAILURE=1 to keep it for debugging)');
    await down().catch((e2: unknown) => log(`down: ${String(e2)}`));
  }
  process.exitCode = 1;
}


