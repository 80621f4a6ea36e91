/**
 * The runner's per-run identity and the operator's flags: pure builders and parsers. The real
 * RBAC (kubectl auth can-i as these service accounts) is checked on the test control plane
 * (test/cluster/helm.itest.ts); these pin what the builders produce.
 */
import { describe, expect, it } from 'vitest';
import type { V1PodSpec } from '@kubernetes/client-node';
import { resolveParams } from '../../src/plan/params.ts';
import { buildPlan } from '../../src/plan/plan.ts';
import { stepResultName as resultName, stepSeedsName as seedsName } from '../../src/kube/names.ts';
import { gpuScheduling, runnerIdentity, stepConfigMaps, stepJob } from '../../src/operator/desired.ts';
import { parseGpuDefaults, parseNamespaces, parsePrometheusUrl } from '../../src/operator/main.ts';
import { agentDeployment } from '../../src/platform/kubernetes/manifests.ts';

const run = { name: 'nightly', namespace: 'bench', uid: 'u-1' };
const images = { image: 'reg/swarmbench:1', gpuImage: 'reg/swarmbench-gpu:1' };
const plan = buildPlan(resolveParams({ mode: 'quick' }));

/** The restricted Pod Security Standard's pod-level rules (v1.34), checked on a pod spec. */
function restrictedViolations(p: V1PodSpec): string[] {
  const out: string[] = [];
  if (p.hostNetwork || p.hostPID || p.hostIPC) out.push('host namespaces');
  for (const v of p.volumes ?? []) if (v.hostPath) out.push(`hostPath volume ${v.name}`);
  const podNonRoot = p.securityContext?.runAsNonRoot === true;
  const podSeccomp = p.securityContext?.seccompProfile?.type;
  for (const c of [...(p.initContainers ?? []), ...p.containers]) {
    const sc = c.securityContext ?? {};
    if (sc.privileged) out.push(`${c.name}: privileged`);
    if (sc.allowPrivilegeEscalation !== false) out.push(`${c.name}: allowPrivilegeEscalation not false`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) out.push(`${c.name}: capabilities not dropped`);
    if ((sc.capabilities?.add ?? []).some((x) => x !== 'NET_BIND_SERVICE')) out.push(`${c.name}: capabilities added`);
    if (!(sc.runAsNonRoot === true || (podNonRoot && sc.runAsNonRoot !== false))) out.push(`${c.name}: runAsNonRoot`);
    if ((sc.runAsUser ?? p.securityContext?.runAsUser) === 0) out.push(`${c.name}: runAsUser 0`);
    const seccomp = sc.seccompProfile?.type ?? podSeccomp;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') out.push(`${c.name}: seccompProfile`);
    for (const port of c.ports ?? []) if (port.hostPort) out.push(`${c.name}: hostPort`);
  }
  return out;
}

describe('the runner identity of a run', () => {
  it('a ServiceAccount per run; its Role may update only the attempt’s own ConfigMaps, by name, and create none', () => {
    const id = runnerIdentity(run, 2, plan, 'sb-swarmbench-runner');
    expect(id.serviceAccount.metadata).toMatchObject({ name: 'nightly-runner', namespace: 'bench' });
    expect(id.serviceAccount.metadata!.ownerReferences![0]).toMatchObject({ uid: 'u-1', controller: true });
    expect(id.role.rules).toHaveLength(1);
    const rule = id.role.rules![0]!;
    expect(rule.resources).toEqual(['configmaps']);
    expect(rule.verbs).toEqual(['get', 'update', 'patch']);
    const want = plan.flatMap((s) => [resultName('nightly', 2, s.name), seedsName('nightly', 2, s.name)]).sort();
    expect(rule.resourceNames).toEqual(want);
    expect(rule.resourceNames).toHaveLength(2 * plan.length);
    expect(rule.resourceNames).not.toContain('nightly-a2-params');
    expect(rule.resourceNames!.some((n) => n.includes('-a1-'))).toBe(false);
    const [own, pools] = id.bindings;
    expect(own!.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'nightly-runner' });
    expect(pools!.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'sb-swarmbench-runner' });
    for (const b of id.bindings) expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'nightly-runner', namespace: 'bench' }]);
  });

  it('the step ConfigMaps the runner writes are created empty first, with the names its Role grants', () => {
    const step = plan[0]!;
    const [result, seeds] = stepConfigMaps(run, 2, step);
    expect(result!.metadata!.name).toBe(resultName('nightly', 2, step.name));
    expect(result!.data).toEqual({});
    expect(seeds!.metadata!.name).toBe(seedsName('nightly', 2, step.name));
    const granted = runnerIdentity(run, 2, plan, 'r').role.rules![0]!.resourceNames!;
    expect(granted).toContain(result!.metadata!.name);
    expect(granted).toContain(seeds!.metadata!.name);
  });

  it('step Jobs run as the run’s runner and pass the restricted Pod Security Standard', () => {
    for (const step of plan) {
      const pod = stepJob(run, 2, step, {}, images, 'nightly-a2-token-x7k2p').spec!.template.spec!;
      expect(pod.serviceAccountName).toBe('nightly-runner');
      expect(restrictedViolations(pod)).toEqual([]);
    }
  });

  it('agent pods pass the restricted Pod Security Standard (own image and a user image)', () => {
    const ctx = { run: { namespace: 'bench', name: 'nightly', uid: 'u-1' }, attempt: 2, step: 'distributed', category: 'distributed' };
    const pool = { name: 'coord', size: 3, capacity: 16, agentsPerProcess: 1 };
    for (const ownImage of [true, false]) {
      const d = agentDeployment({ ctx, pool, replicas: 1, image: ownImage ? 'swarmbench:dev' : 'example/agent:1', ownImage });
      const pod = d.spec!.template.spec!;
      expect(restrictedViolations(pod)).toEqual([]);
      expect(pod.automountServiceAccountToken).toBe(false);
    }
  });

  it('the checker itself finds violations (it is not vacuous)', () => {
    const pod = stepJob(run, 2, plan[0]!, {}, images, 'nightly-a2-token-x7k2p').spec!.template.spec!;
    const bad: V1PodSpec = { ...pod, containers: pod.containers.map((c) => ({ ...c, securityContext: { privileged: true } })) };
    expect(restrictedViolations(bad).length).toBeGreaterThanOrEqual(3);
    expect(restrictedViolations({ ...pod, securityContext: {} })).toContain('runner: seccompProfile');
  });
});

describe('operator flags', () => {
  it('--gpu-defaults: fields default to NVIDIA’s, a run’s spec.gpu wins, bad input names the field', () => {
    const d = parseGpuDefaults('{"nodeSelector":{"accelerator":"h200"}}');
    expect(d.nodeSelector).toEqual({ accelerator: 'h200' });
    expect(d.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(gpuScheduling({}, d).nodeSelector).toEqual({ accelerator: 'h200' });
    expect(gpuScheduling({ gpu: { nodeSelector: { pool: 'gpu' } } }, d).nodeSelector).toEqual({ pool: 'gpu' });
    expect(() => parseGpuDefaults('{nodeSelector')).toThrow(/--gpu-defaults is not JSON/);
    expect(() => parseGpuDefaults('{"tolerations":[{"operator":"Maybe"}]}')).toThrow(/--gpu-defaults: tolerations\.0\.operator/);
    expect(() => parseGpuDefaults('{"nodeSelectors":{}}')).toThrow(/--gpu-defaults/);
  });

  it('--namespaces and --prometheus-url are checked', () => {
    expect(parseNamespaces('a, b,a')).toEqual(['a', 'b']);
    expect(parseNamespaces('')).toEqual([]);
    expect(() => parseNamespaces('Bench_1')).toThrow(/"Bench_1" is not a namespace name/);
    expect(parsePrometheusUrl('http://prometheus.monitoring:9090')).toBe('http://prometheus.monitoring:9090');
    expect(parsePrometheusUrl('')).toBeUndefined();
    expect(() => parsePrometheusUrl('ftp://x')).toThrow(/not http/);
    expect(() => parsePrometheusUrl('prometheus:9090x y')).toThrow(/--prometheus-url/);
  });
});
