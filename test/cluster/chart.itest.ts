/**
 * The Helm chart charts/swarmbench (issue 6), under Helm 4 (the tools cache) and Helm 3 (built by
 * `npm run cluster:build`, HELM3_BIN):
 * - `helm lint --strict` with the default values and with the namespaced-mode values file;
 * - bad values fail `helm template` with a message naming the field (values.schema.json);
 * - the rendered RBAC rules are exactly the constants of src/platform/kubernetes/rbac.ts, cluster-wide
 *   and per namespace; no `*`; no Secret access unless rbac.prometheusTokenSecrets or rbac.notifySecrets,
 *   then by name only;
 * - the operator's flags and env, and `--gpu-defaults` accepted by the operator's own parser;
 * - the ServiceMonitor/PodMonitor only where the cluster serves monitoring.coreos.com/v1;
 * - manifests/install.yaml is a fresh rendering (test/cluster/gen-install.ts; `npm run gen:install`);
 * - every pod template has the restricted Pod Security Standard's fields;
 * and, with the test cluster up (`npm run cluster:up`):
 * - `kubectl apply --dry-run=server` of the whole rendering into a namespace that enforces
 *   "restricted" is accepted without a PodSecurity warning, while a privileged Pod is rejected
 *   there and a privileged Deployment warned about (the control: enforcement is on);
 * - the monitors validate server-side against the real Prometheus Operator CRDs
 *   (test/fixtures/prometheus-operator, v0.85.0).
 *
 * The static tests are skipped (reason in the suite's name) when a helm binary is missing; the
 * cluster tests when the cluster is down (SWARMBENCH_REQUIRE_CLUSTER=1 fails instead).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HELM3_BIN, REPO, TOOLS_BIN } from './lib/config.ts';
import { clusterGate, kubectl } from './lib/itest.ts';
import { CHART_DIR, INSTALL_PATH, renderInstall } from './gen-install.ts';
import { parseGpuDefaults } from '../../src/operator/main.ts';
import { parseIngressPeers } from '../../src/operator/netpol.ts';
import { STUCK_AFTER_MS } from '../../src/operator/forensics.ts';
import { DEFAULT_ADMISSION, parseAdmission } from '../../src/operator/policy.ts';
import {
  OPERATOR_CLUSTER_RULES, OPERATOR_NAMESPACED_RULES, RUNNER_POOL_RULES, operatorBindRule, operatorLeaseRules, operatorSecretRule,
  type PolicyRule,
} from '../../src/platform/kubernetes/rbac.ts';

const CHART = join(REPO, CHART_DIR);
const HELMS: { name: string; bin: string }[] = [
  { name: 'Helm 4', bin: join(TOOLS_BIN, 'helm') },
  { name: 'Helm 3', bin: join(HELM3_BIN, 'helm') },
];
const HELM4 = HELMS[0]!.bin;
/** The image names the test cluster's nodes hold (cluster.ts PROJECT_IMAGE_NAMES). */
const TEST_IMAGES = ['--set', 'image.repository=swarmbench,image.tag=dev,gpuImage.repository=swarmbench-gpu,gpuImage.tag=dev'];
const MONITOR_APIS = ['--api-versions', 'monitoring.coreos.com/v1/ServiceMonitor', '--api-versions', 'monitoring.coreos.com/v1/PodMonitor'];

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered Kubernetes objects, checked field by field
type Obj = Record<string, any>;

function helm(bin: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(bin, args, {
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HELM_CACHE_HOME: '/nonexistent/cache', HELM_CONFIG_HOME: '/nonexistent/config', HELM_DATA_HOME: '/nonexistent/data' },
  });
  return { code: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/** `helm template swarmbench <chart> -n <ns> ...args` parsed into objects; throws when helm fails. */
function render(args: string[] = [], ns = 'swarmbench-system', bin = HELM4): Obj[] {
  const r = helm(bin, ['template', 'swarmbench', CHART, '--namespace', ns, ...args]);
  if (r.code !== 0) throw new Error(`helm template ${args.join(' ')} failed: ${r.stderr}`);
  return (loadAll(r.stdout) as Obj[]).filter((d) => d && typeof d === 'object');
}

const find = (objs: Obj[], kind: string, name: string, namespace?: string): Obj | undefined =>
  objs.find((o) => o.kind === kind && o.metadata?.name === name && (namespace === undefined || o.metadata?.namespace === namespace));

/** A rule as rbac.ts writes it (resourceNames only when present). */
const norm = (rules: PolicyRule[]): PolicyRule[] =>
  rules.map((r) => ({ apiGroups: r.apiGroups, resources: r.resources, verbs: r.verbs, ...(r.resourceNames ? { resourceNames: r.resourceNames } : {}) }));

const rulesOf = (o: Obj | undefined): PolicyRule[] => {
  if (!o) throw new Error('RBAC object not rendered');
  return norm(o.rules as PolicyRule[]);
};

function allRules(objs: Obj[]): PolicyRule[] {
  return objs.filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole').flatMap((o) => rulesOf(o));
}

/** The arguments of the operator container as a map flag -> value (flags all take a value). */
function operatorArgs(objs: Obj[]): { args: string[]; flags: Map<string, string> } {
  const d = find(objs, 'Deployment', 'swarmbench')!;
  const c = (d.spec.template.spec.containers as Obj[]).find((x) => x.name === 'operator')!;
  const args = c.args as string[];
  const flags = new Map<string, string>();
  for (let i = 1; i < args.length; i += 2) flags.set(args[i]!, args[i + 1]!);
  return { args, flags };
}

/** What the restricted Pod Security Standard asks of a pod spec (checked statically). */
function restrictedViolations(spec: Obj): string[] {
  const out: string[] = [];
  const psc = spec.securityContext ?? {};
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) out.push('host namespaces');
  for (const v of (spec.volumes ?? []) as Obj[]) {
    const types = Object.keys(v).filter((k) => k !== 'name');
    const allowed = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];
    if (!types.every((t) => allowed.includes(t))) out.push(`volume ${v.name} of type ${types.join(',')}`);
  }
  for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])] as Obj[]) {
    const sc = c.securityContext ?? {};
    if (sc.privileged) out.push(`${c.name}: privileged`);
    if (sc.allowPrivilegeEscalation !== false) out.push(`${c.name}: allowPrivilegeEscalation is not false`);
    if (!(sc.runAsNonRoot === true || (sc.runAsNonRoot === undefined && psc.runAsNonRoot === true))) out.push(`${c.name}: runAsNonRoot is not true`);
    if ((sc.runAsUser ?? psc.runAsUser) === 0) out.push(`${c.name}: runAsUser 0`);
    const seccomp = sc.seccompProfile?.type ?? psc.seccompProfile?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') out.push(`${c.name}: seccompProfile ${String(seccomp)}`);
    const drop = (sc.capabilities?.drop ?? []) as string[];
    if (!drop.includes('ALL')) out.push(`${c.name}: capabilities do not drop ALL`);
    const add = (sc.capabilities?.add ?? []) as string[];
    if (add.some((a) => a !== 'NET_BIND_SERVICE')) out.push(`${c.name}: adds capabilities ${add.join(',')}`);
    if (sc.readOnlyRootFilesystem !== true) out.push(`${c.name}: readOnlyRootFilesystem is not true (the chart's own rule)`);
    for (const p of (c.ports ?? []) as Obj[]) if (p.hostPort) out.push(`${c.name}: hostPort`);
  }
  return out;
}

const podTemplates = (objs: Obj[]): Obj[] =>
  objs.filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(o.kind as string)).map((o) => o.spec.template.spec as Obj);

// ---------------------------------------------------------------------------------------------
// With each helm: lint, schema errors.

for (const { name, bin } of HELMS) {
  const missing = existsSync(bin) ? undefined : `no ${name} at ${bin}; run npm run cluster:build`;
  // CI (test/cluster/ci.sh) builds every tool first: there a missing helm is a failure, not a skip.
  if (missing && process.env.SWARMBENCH_REQUIRE_CLUSTER === '1') throw new Error(`chart (${name}): ${missing}`);
  if (missing) process.stderr.write(`chart (${name}): SKIPPED, ${missing}\n`);
  describe.skipIf(!!missing)(missing ? `chart with ${name} [SKIPPED: ${missing}]` : `chart with ${name}`, () => {
    it('helm lint --strict passes with the default values and with the namespaced-mode values', () => {
      for (const values of ['ci/default-values.yaml', 'ci/namespaced-values.yaml']) {
        const r = helm(bin, ['lint', '--strict', CHART, '-f', join(CHART, values)]);
        expect(r.code, `${values}: ${r.stdout}${r.stderr}`).toBe(0);
        expect(r.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
      }
    });

    it.each([
      [['--set', 'notAValue=1'], /additional propert(y|ies) 'notAValue' not allowed/],
      [['--set', 'replicaCount=0'], /\/?replicaCount.*minimum|replicaCount.*must be >= 1/],
      [['--set', 'logLevel=loud'], /\/?logLevel.*(one of|enum)/],
      [['--set', 'watchNamespaces={Not_A_Namespace}'], /\/?watchNamespaces\/0.*pattern/],
      [['--set', 'leaderElection.leaseSeconds=1'], /\/?leaderElection\/leaseSeconds.*minimum/],
      [['--set', 'concurrency=0'], /\/?concurrency.*minimum/],
      [['--set', 'prometheus.url=ftp://x'], /\/?prometheus\/url.*pattern/],
      [['--set', 'image.pulPolicy=Always'], /additional propert(y|ies) 'pulPolicy' not allowed/],
    ])('helm template %j fails naming the field', (args, message) => {
      const r = helm(bin, ['template', 'swarmbench', CHART, ...args]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(message);
    });

    it('renders the same objects as Helm 4', () => {
      const a = render(['--include-crds', ...MONITOR_APIS, '-f', join(CHART, 'ci/namespaced-values.yaml')], 'sb', bin);
      const b = render(['--include-crds', ...MONITOR_APIS, '-f', join(CHART, 'ci/namespaced-values.yaml')], 'sb', HELM4);
      expect(a).toEqual(b);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// What the chart renders (Helm 4).

const noHelm = existsSync(HELM4) ? undefined : `no helm at ${HELM4}; run npm run cluster:build`;
describe.skipIf(!!noHelm)(noHelm ? `chart rendering [SKIPPED: ${noHelm}]` : 'chart rendering', () => {
  it('cluster-wide (default): one ClusterRole with the namespaced + bind + cluster rules, the lease Role, the runner ClusterRole', () => {
    const objs = render();
    expect(rulesOf(find(objs, 'ClusterRole', 'swarmbench'))).toEqual(
      norm([...OPERATOR_NAMESPACED_RULES, operatorBindRule('swarmbench-runner'), ...OPERATOR_CLUSTER_RULES]),
    );
    expect(rulesOf(find(objs, 'ClusterRole', 'swarmbench-runner'))).toEqual(norm(RUNNER_POOL_RULES));
    expect(rulesOf(find(objs, 'Role', 'swarmbench-leader-election', 'swarmbench-system'))).toEqual(norm(operatorLeaseRules('swarmbench')));
    expect(objs.filter((o) => o.kind === 'Role').map((o) => o.metadata.name)).toEqual(['swarmbench-leader-election']);
    const crb = find(objs, 'ClusterRoleBinding', 'swarmbench')!;
    expect(crb.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'swarmbench' });
    expect(crb.subjects).toEqual([{ kind: 'ServiceAccount', name: 'swarmbench', namespace: 'swarmbench-system' }]);
    const rb = find(objs, 'RoleBinding', 'swarmbench-leader-election', 'swarmbench-system')!;
    expect(rb.roleRef.name).toBe('swarmbench-leader-election');
    expect(rb.subjects).toEqual(crb.subjects);
    // No runner ServiceAccount: the operator creates <run>-runner per run.
    expect(objs.filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata.name)).toEqual(['swarmbench']);
    expect(operatorArgs(objs).flags.has('--namespaces')).toBe(false);
  });

  it('watched namespaces: a Role + RoleBinding in each, the ClusterRole with only the cluster rules, --namespaces a,b', () => {
    const objs = render(['--set', 'watchNamespaces={bench-a,bench-b}']);
    for (const ns of ['bench-a', 'bench-b']) {
      expect(rulesOf(find(objs, 'Role', 'swarmbench', ns))).toEqual(norm([...OPERATOR_NAMESPACED_RULES, operatorBindRule('swarmbench-runner')]));
      const rb = find(objs, 'RoleBinding', 'swarmbench', ns)!;
      expect(rb.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'swarmbench' });
      expect(rb.subjects).toEqual([{ kind: 'ServiceAccount', name: 'swarmbench', namespace: 'swarmbench-system' }]);
    }
    expect(rulesOf(find(objs, 'ClusterRole', 'swarmbench'))).toEqual(norm(OPERATOR_CLUSTER_RULES));
    expect(rulesOf(find(objs, 'ClusterRole', 'swarmbench-runner'))).toEqual(norm(RUNNER_POOL_RULES));
    expect(rulesOf(find(objs, 'Role', 'swarmbench-leader-election', 'swarmbench-system'))).toEqual(norm(operatorLeaseRules('swarmbench')));
    expect(objs.filter((o) => o.kind === 'Role').length).toBe(3);
    expect(operatorArgs(objs).flags.get('--namespaces')).toBe('bench-a,bench-b');
  });

  it('names follow the release: <fullname>-runner in the bind rule and the flag, the lease name', () => {
    const r = helm(HELM4, ['template', 'perf', CHART, '--namespace', 'ops']);
    expect(r.code, r.stderr).toBe(0);
    const objs = (loadAll(r.stdout) as Obj[]).filter(Boolean);
    expect(rulesOf(find(objs, 'ClusterRole', 'perf-swarmbench'))).toContainEqual(norm([operatorBindRule('perf-swarmbench-runner')])[0]);
    expect(find(objs, 'ClusterRole', 'perf-swarmbench-runner')).toBeDefined();
    expect(rulesOf(find(objs, 'Role', 'perf-swarmbench-leader-election', 'ops'))).toEqual(norm(operatorLeaseRules('perf-swarmbench')));
    const d = find(objs, 'Deployment', 'perf-swarmbench')!;
    const args = d.spec.template.spec.containers[0].args as string[];
    expect(args[args.indexOf('--runner-cluster-role') + 1]).toBe('perf-swarmbench-runner');
    expect(args[args.indexOf('--lease-name') + 1]).toBe('perf-swarmbench');
    expect(args[args.indexOf('--lease-namespace') + 1]).toBe('ops');
  });

  it('no rule has * in verbs, resources or apiGroups (both modes, with secrets)', () => {
    for (const extra of [[], ['--set', 'watchNamespaces={a,b}'], ['--set', 'rbac.prometheusTokenSecrets={t1}']]) {
      for (const r of allRules(render(extra))) {
        expect([...r.verbs, ...r.resources, ...r.apiGroups].filter((x) => x.includes('*')), JSON.stringify(r)).toEqual([]);
      }
    }
  });

  it('Secrets: only create (each attempt\'s agent-token Secret, by generateName) by default; with rbac.prometheusTokenSecrets also get on those names (operatorSecretRule), in each mode', () => {
    // create on Secrets is in OPERATOR_NAMESPACED_RULES (each attempt's agent token, never read back);
    // never get (but the named Prometheus token Secrets), list, watch, update, patch or delete. Which
    // Secrets a run may use is the admission policy's (src/operator/policy.ts).
    for (const extra of [[], ['--set', 'watchNamespaces={a,b}']]) {
      for (const r of allRules(render(extra)).filter((x) => x.resources.some((y) => y.startsWith('secrets')))) {
        expect(r.verbs).toEqual(['create']);
        expect(r.resources).toEqual(['secrets']);
      }
    }
    const cw = render(['--set', 'rbac.prometheusTokenSecrets={tok-b,tok-a}']);
    expect(rulesOf(find(cw, 'ClusterRole', 'swarmbench'))).toEqual(
      norm([...OPERATOR_NAMESPACED_RULES, operatorBindRule('swarmbench-runner'), operatorSecretRule(['tok-b', 'tok-a']), ...OPERATOR_CLUSTER_RULES]),
    );
    const nsd = render(['--set', 'rbac.prometheusTokenSecrets={tok-b,tok-a}', '--set', 'watchNamespaces={a,b}']);
    for (const ns of ['a', 'b']) {
      expect(rulesOf(find(nsd, 'Role', 'swarmbench', ns))).toEqual(
        norm([...OPERATOR_NAMESPACED_RULES, operatorBindRule('swarmbench-runner'), operatorSecretRule(['tok-b', 'tok-a'])]),
      );
    }
    for (const objs of [cw, nsd]) {
      const secretRules = allRules(objs).filter((r) => r.resources.includes('secrets') && r.resourceNames);
      expect(secretRules.length).toBeGreaterThan(0);
      for (const r of secretRules) {
        expect(r.verbs).toEqual(['get']);
        expect(r.resourceNames).toEqual(['tok-a', 'tok-b']);
      }
    }
    // rbac.notifySecrets (webhook URLs, docs/notifications.md) joins the same rule, each name once.
    const both = render(['--set', 'rbac.prometheusTokenSecrets={tok-a}', '--set', 'rbac.notifySecrets={hook-b,tok-a}']);
    expect(rulesOf(find(both, 'ClusterRole', 'swarmbench'))).toEqual(
      norm([...OPERATOR_NAMESPACED_RULES, operatorBindRule('swarmbench-runner'), operatorSecretRule(['tok-a', 'hook-b', 'tok-a']), ...OPERATOR_CLUSTER_RULES]),
    );
    const hooks = render(['--set', 'rbac.notifySecrets={hook-a}', '--set', 'watchNamespaces={a}']);
    expect(allRules(hooks).filter((r) => r.resources.includes('secrets') && r.resourceNames).map((r) => [r.verbs, r.resourceNames])).toEqual([[['get'], ['hook-a']]]);
  });

  it('rbac.create false renders no RBAC at all', () => {
    const objs = render(['--set', 'rbac.create=false']);
    expect(objs.filter((o) => /Role/.test(o.kind as string))).toEqual([]);
  });

  it('the operator: command, flags, env, probes, replicas, PDB, Service', () => {
    const objs = render(['--set', 'prometheus.url=http://prom:9090,prometheus.bearerTokenSecret.name=prom-token', ...TEST_IMAGES]);
    const d = find(objs, 'Deployment', 'swarmbench')!;
    expect(d.spec.replicas).toBe(2);
    expect(d.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    const pod = d.spec.template.spec as Obj;
    expect(pod.serviceAccountName).toBe('swarmbench');
    expect(pod.automountServiceAccountToken).toBe(true);
    const c = pod.containers[0] as Obj;
    expect(c.image).toBe('swarmbench:dev');
    expect(c.command).toEqual(['swarmbench']);
    const { args, flags } = operatorArgs(objs);
    expect(args[0]).toBe('operator');
    // --gpu-defaults, --admission and --agent-ingress-from: JSON, checked with the operator's parsers below
    // (and in test/unit/chart-security.test.ts).
    expect(Object.fromEntries([...flags].filter(([k]) => !['--gpu-defaults', '--admission', '--agent-ingress-from'].includes(k)))).toEqual({
      '--image': 'swarmbench:dev',
      '--gpu-image': 'swarmbench-gpu:dev',
      '--runner-cluster-role': 'swarmbench-runner',
      '--prometheus-url': 'http://prom:9090',
      '--port': '8080',
      '--concurrency': '4',
      '--resync-seconds': '300',
      // The chart's default is the operator's own (forensics.ts).
      '--stuck-after-seconds': String(STUCK_AFTER_MS / 1000),
      '--leader-elect': 'true',
      '--lease-namespace': 'swarmbench-system',
      '--lease-name': 'swarmbench',
      '--lease-seconds': '15',
    });
    // The operator's own parser accepts the chart's --gpu-defaults and gets the values back.
    expect(parseGpuDefaults(flags.get('--gpu-defaults'))).toEqual({
      nodeSelector: { 'nvidia.com/gpu.present': 'true' },
      tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
      resources: { limits: { 'nvidia.com/gpu': 1 } },
    });
    // The admission policy: the chart's defaults are the operator's defaults (src/operator/policy.ts).
    expect(parseAdmission(flags.get('--admission'))).toEqual({ ...DEFAULT_ADMISSION, tokenSecrets: [], notifySecrets: [] });
    expect(parseIngressPeers(flags.get('--agent-ingress-from'))).toHaveLength(1);
    const env = Object.fromEntries((c.env as Obj[]).map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toEqual({
      POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      POD_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
      SWARMBENCH_LOG_LEVEL: 'info',
      SWARMBENCH_PROMETHEUS_TOKEN: { secretKeyRef: { name: 'prom-token', key: 'token' } },
    });
    expect(c.ports).toEqual([{ name: 'http-metrics', containerPort: 8080, protocol: 'TCP' }]);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http-metrics' });
    // Liveness only once the process answers: a slow start (a busy node) is waited for, up to 3 minutes.
    expect(c.startupProbe).toMatchObject({ httpGet: { path: '/healthz', port: 'http-metrics' }, periodSeconds: 2, failureThreshold: 90 });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http-metrics' });
    expect(c.resources).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } });
    expect(find(objs, 'PodDisruptionBudget', 'swarmbench')!.spec.minAvailable).toBe(1);
    const svc = find(objs, 'Service', 'swarmbench-metrics')!;
    expect(svc.spec.ports).toEqual([{ name: 'http-metrics', port: 8080, targetPort: 'http-metrics', protocol: 'TCP' }]);
    expect(svc.spec.selector).toEqual(d.spec.selector.matchLabels);
    for (const [k, v] of Object.entries(d.spec.selector.matchLabels as Record<string, string>)) expect(d.spec.template.metadata.labels[k]).toBe(v);

    const one = render(['--set', 'replicaCount=1,leaderElection.enabled=false']);
    expect(find(one, 'PodDisruptionBudget', 'swarmbench')).toBeUndefined();
    expect(operatorArgs(one).flags.get('--leader-elect')).toBe('false');
    expect(operatorArgs(one).flags.has('--prometheus-url')).toBe(false);
    expect((find(one, 'Deployment', 'swarmbench')!.spec.template.spec.containers[0].env as Obj[]).map((e) => e.name)).not.toContain('SWARMBENCH_PROMETHEUS_TOKEN');
  });

  it('every pod template has the restricted Pod Security Standard fields (both modes, test images)', () => {
    for (const extra of [[], ['-f', join(CHART, 'ci/namespaced-values.yaml')]]) {
      const templates = podTemplates(render([...extra, ...TEST_IMAGES]));
      expect(templates.length).toBe(1);
      for (const spec of templates) {
        expect(restrictedViolations(spec)).toEqual([]);
        expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
      }
    }
  });

  it('ServiceMonitor and PodMonitor only where the cluster serves monitoring.coreos.com/v1, and only when enabled', () => {
    const kinds = (objs: Obj[]): string[] => objs.filter((o) => /Monitor$/.test(o.kind as string)).map((o) => o.kind as string).sort();
    expect(kinds(render())).toEqual([]);
    const objs = render([...MONITOR_APIS, '--set', 'metrics.serviceMonitor.labels.release=prom']);
    // All namespaces and no metrics.podMonitor.namespaces: no PodMonitor (it would select every namespace).
    expect(kinds(objs)).toEqual(['ServiceMonitor']);
    const sm = find(objs, 'ServiceMonitor', 'swarmbench')!;
    expect(sm.metadata.labels.release).toBe('prom');
    // It selects the operator's metrics Service (whose labels include the operator's selector labels).
    const svcLabels = find(objs, 'Service', 'swarmbench-metrics')!.metadata.labels as Record<string, string>;
    expect(Object.keys(sm.spec.selector.matchLabels as object).length).toBeGreaterThan(0);
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels as Record<string, string>)) expect(svcLabels[k]).toBe(v);
    expect(sm.spec.namespaceSelector).toEqual({ matchNames: ['swarmbench-system'] });
    expect(sm.spec.endpoints[0]).toMatchObject({ port: 'http-metrics', path: '/metrics' });
    const pm = find(render([...MONITOR_APIS, '--set', 'metrics.podMonitor.anyNamespace=true']), 'PodMonitor', 'swarmbench-agents')!;
    // The labels and port of the agent pods (src/platform/kubernetes/manifests.ts poolLabels, port "http").
    expect(pm.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/managed-by': 'swarmbench', 'swarmbench.io/component': 'agent' });
    expect(pm.spec.namespaceSelector).toEqual({ any: true });
    expect(pm.spec.sampleLimit).toBe(5000);
    expect(pm.spec.podMetricsEndpoints[0]).toMatchObject({ port: 'http', path: '/metrics' });
    const nsd = render([...MONITOR_APIS, '--set', 'watchNamespaces={a,b}']);
    expect(find(nsd, 'PodMonitor', 'swarmbench-agents')!.spec.namespaceSelector).toEqual({ matchNames: ['a', 'b'] });
    expect(kinds(render([...MONITOR_APIS, '--set', 'metrics.serviceMonitor.enabled=false,metrics.podMonitor.enabled=false']))).toEqual([]);
    expect(kinds(render(['--api-versions', 'monitoring.coreos.com/v1/PodMonitor', '--set', 'metrics.podMonitor.namespaces={x}']))).toEqual(['PodMonitor']);
  });

  it('manifests/install.yaml is a fresh rendering (run `npm run gen:install` after changing the chart)', () => {
    const committed = readFileSync(join(REPO, INSTALL_PATH), 'utf8');
    expect(committed).toBe(renderInstall(HELM4));
    const objs = (loadAll(committed) as Obj[]).filter(Boolean);
    expect(objs[0]).toMatchObject({ kind: 'Namespace', metadata: { name: 'swarmbench-system', labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } });
    expect(objs[1]).toMatchObject({ kind: 'CustomResourceDefinition', metadata: { name: 'benchmarkruns.swarmbench.io' } });
    expect(readFileSync(join(CHART, 'crds', 'swarmbench.io_benchmarkruns.yaml'), 'utf8')).toBe(readFileSync(join(REPO, 'crds', 'swarmbench.io_benchmarkruns.yaml'), 'utf8'));
  });
});

// ---------------------------------------------------------------------------------------------
// Against the test cluster's API server.

const gate = await clusterGate('chart on the test cluster (server-side dry-run, Pod Security, monitor CRDs)');
const skipCluster = !!gate.notUp || !!noHelm;
describe.skipIf(skipCluster)(noHelm && !gate.notUp ? `chart on the test cluster [SKIPPED: ${noHelm}]` : gate.title, () => {
  const suffix = Date.now().toString(36);
  const ns = `chart-pss-${suffix}`;
  const watched = [`chart-wa-${suffix}`, `chart-wb-${suffix}`];
  const createdCrds: string[] = [];

  const must = (r: { code: number | null; stdout: string; stderr: string }, what: string): string => {
    if (r.code !== 0) throw new Error(`${what}: ${r.stderr}`);
    return r.stdout;
  };
  const helmOut = (args: string[]): string => must(helm(HELM4, ['template', 'swarmbench', CHART, '--namespace', ns, ...args]), 'helm template');

  beforeAll(() => {
    must(kubectl(['apply', '-f', join(REPO, 'crds')]), 'apply the BenchmarkRun CRD');
    const nsYaml = (name: string): string =>
      `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n  labels:\n    pod-security.kubernetes.io/enforce: restricted\n    pod-security.kubernetes.io/enforce-version: latest\n    pod-security.kubernetes.io/warn: restricted\n`;
    for (const n of [ns, ...watched]) must(kubectl(['apply', '-f', '-'], nsYaml(n)), `namespace ${n}`);
    must(kubectl(['wait', '--for=condition=Established', 'crd/benchmarkruns.swarmbench.io', '--timeout=30s']), 'CRD established');
  });

  afterAll(() => {
    for (const n of [ns, ...watched]) kubectl(['delete', 'namespace', n, '--wait=false', '--ignore-not-found']);
    for (const crd of createdCrds) kubectl(['delete', 'crd', crd, '--wait=false', '--ignore-not-found']);
  });

  it.each([
    ['default values', []],
    ['watched namespaces + Prometheus token', ['--set', `watchNamespaces={${watched.join(',')}}`, '--set', 'rbac.prometheusTokenSecrets={tok}', '--set', 'prometheus.url=http://prom:9090,prometheus.bearerTokenSecret.name=tok']],
  ])('kubectl apply --dry-run=server of the rendering (%s) is accepted, with no PodSecurity warning', (_, extra) => {
    const out = helmOut(['--include-crds', ...TEST_IMAGES, ...(extra as string[])]);
    const r = kubectl(['apply', '--dry-run=server', '-f', '-'], out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/would violate PodSecurity|violates PodSecurity/);
    expect(r.stdout).toMatch(/deployment\.apps\/swarmbench (created|configured|unchanged) \(server dry run\)/);
    expect(r.stdout).toMatch(/clusterrole\.rbac\.authorization\.k8s\.io\/swarmbench-runner (created|configured|unchanged) \(server dry run\)/);
  });

  it('the control: the namespace rejects a privileged Pod and warns about a Deployment that may escalate (enforcement is on)', () => {
    const pod = `apiVersion: v1\nkind: Pod\nmetadata:\n  name: privileged\n  namespace: ${ns}\nspec:\n  containers:\n    - name: c\n      image: swarmbench:dev\n      command: ["swarmbench"]\n      securityContext:\n        privileged: true\n`;
    const r = kubectl(['apply', '--dry-run=server', '-f', '-'], pod);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/violates PodSecurity "restricted/);
    // The operator's own Deployment, allowed to escalate privileges: kubectl prints the warning the test above looks for.
    const bad = helmOut([...TEST_IMAGES, '-s', 'templates/deployment.yaml']).replace('allowPrivilegeEscalation: false', 'allowPrivilegeEscalation: true');
    expect(bad).toMatch(/allowPrivilegeEscalation: true/);
    const w = kubectl(['apply', '--dry-run=server', '-f', '-'], bad);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stderr).toMatch(/would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false/);
  });

  it('the ServiceMonitor and PodMonitor validate against the real Prometheus Operator CRDs (v0.85.0), both modes', () => {
    const fixtures = join(REPO, 'test', 'fixtures', 'prometheus-operator');
    for (const [crd, file] of [
      ['servicemonitors.monitoring.coreos.com', 'monitoring.coreos.com_servicemonitors.yaml'],
      ['podmonitors.monitoring.coreos.com', 'monitoring.coreos.com_podmonitors.yaml'],
    ] as const) {
      if (kubectl(['get', 'crd', crd]).code !== 0) {
        must(kubectl(['create', '-f', join(fixtures, file)]), `create CRD ${crd}`);
        createdCrds.push(crd);
      }
      must(kubectl(['wait', '--for=condition=Established', `crd/${crd}`, '--timeout=30s']), `${crd} established`);
    }
    for (const extra of [['--set', 'metrics.podMonitor.anyNamespace=true'], ['--set', `watchNamespaces={${watched.join(',')}}`, '--set', 'metrics.serviceMonitor.labels.release=prom,metrics.serviceMonitor.scrapeTimeout=10s', '--set-json', 'metrics.podMonitor.authorization={"credentials":{"name":"scrape","key":"token"}}']]) {
      const out = helmOut([...MONITOR_APIS, '-s', 'templates/servicemonitor.yaml', '-s', 'templates/podmonitor.yaml', ...extra]);
      const r = kubectl(['apply', '--dry-run=server', '-f', '-'], out);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/servicemonitor\.monitoring\.coreos\.com\/swarmbench created \(server dry run\)/);
      expect(r.stdout).toMatch(/podmonitor\.monitoring\.coreos\.com\/swarmbench-agents created \(server dry run\)/);
      // A field the CRD does not know is refused (the validation is real): kubectl's field validation is strict.
      const typo = kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], out.replace('podMetricsEndpoints:', 'podMetricEndpoints:'));
      expect(typo.code).not.toBe(0);
      expect(typo.stderr).toMatch(/unknown field "spec\.podMetricEndpoints"/);
    }
  });
});
