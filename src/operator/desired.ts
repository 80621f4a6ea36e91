/**
 * Pure builders of what the operator creates for a BenchmarkRun attempt, and of its status
 * conditions. No I/O: unit-tested, and the reconcile only compares and applies them.
 *
 * Names are deterministic, so a create retried after a crash finds what exists (409):
 *   `<run>-a<attempt>-params`        ConfigMap with the resolved Params (frozen for the attempt)
 *   `<run>-a<attempt>-<step>`        the step's Job (`swarmbench runner ...`)
 *   `<run>-a<attempt>-<step>-result` the step's result ConfigMap, created empty before the Job and
 *                                    written (updated) by the runner
 *   `<run>-a<attempt>-<step>-seeds`  the step's agent-pool seeds ConfigMap (the same way)
 *   `<run>-runner`                   the runners' ServiceAccount, their Role (the attempt's
 *                                    ConfigMaps by name) and RoleBinding; `<run>-runner-pools`
 *                                    binds the chart's runner ClusterRole (src/platform/kubernetes/rbac.ts)
 *   `spec.export.configMapName` or `<run>-results`: the export ConfigMap
 * Every object is labelled (managed-by, run, attempt, category) and owned by the run.
 */
import { createHash } from 'node:crypto';
import type { V1ConfigMap, V1Job, V1OwnerReference, V1Role, V1RoleBinding, V1ServiceAccount } from '@kubernetes/client-node';
import type { BenchmarkRunSpec } from '../api/schema.ts';
import type { Params } from '../plan/params.ts';
import type { Step } from '../plan/plan.ts';
import { stepResultConfigMap, stepSeedsConfigMap, stepSeedsName } from '../platform/kubernetes/manifests.ts';
import { runnerRunRules, type PolicyRule } from '../platform/kubernetes/rbac.ts';

export const MANAGED_BY = 'swarmbench';
export const COMPONENT_LABEL = 'swarmbench.io/component';
export const RERUN_ANNOTATION = 'swarmbench.io/rerun';

export interface RunRef {
  name: string;
  namespace: string;
  uid: string;
  generation: number;
}

export interface OperatorImages {
  /** The project's image (runner and reference agent). */
  image: string;
  /** The GPU runner image (CUDA, tfjs-node-gpu). */
  gpuImage: string;
}

/** A Kubernetes name: at most `max` characters, lower case; long ones keep a hash suffix. */
export function kubeName(parts: string[], max = 63): string {
  const raw = parts.join('-').toLowerCase().replace(/[^a-z0-9-]/g, '-');
  if (raw.length <= max) return raw;
  const hash = createHash('sha256').update(raw).digest('hex').slice(0, 8);
  return `${raw.slice(0, max - 9).replace(/-+$/, '')}-${hash}`;
}

export const paramsName = (run: string, attempt: number) => kubeName([run, `a${attempt}`, 'params'], 253);
export const jobName = (run: string, attempt: number, step: string) => kubeName([run, `a${attempt}`, step]);
export const resultName = (run: string, attempt: number, step: string) => kubeName([run, `a${attempt}`, step, 'result'], 253);
export const seedsName = (run: string, attempt: number, step: string) => stepSeedsName(run, attempt, step);
export const exportName = (run: string, spec: BenchmarkRunSpec) => spec.export?.configMapName ?? kubeName([run, 'results'], 253);
export const runnerName = (run: string) => kubeName([run, 'runner']);
export const runnerPoolsBindingName = (run: string) => kubeName([run, 'runner-pools']);

export function ownerRef(run: RunRef): V1OwnerReference {
  return { apiVersion: 'swarmbench.io/v1alpha1', kind: 'BenchmarkRun', name: run.name, uid: run.uid, controller: true, blockOwnerDeletion: true };
}

export function labels(run: string, attempt?: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'app.kubernetes.io/managed-by': MANAGED_BY,
    'swarmbench.io/run': run,
    ...(attempt !== undefined ? { 'swarmbench.io/attempt': String(attempt) } : {}),
    ...extra,
  };
}

export function paramsConfigMap(run: RunRef, attempt: number, params: Params): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: paramsName(run.name, attempt),
      namespace: run.namespace,
      labels: labels(run.name, attempt, { [COMPONENT_LABEL]: 'params' }),
      ownerReferences: [ownerRef(run)],
    },
    data: { 'params.json': JSON.stringify(params) },
  };
}

/**
 * The Job of one step. The runner gets its parameters from the params ConfigMap (an env var: the
 * test cluster's node agent has no volumes, and env works everywhere), writes its result into
 * the step's result ConfigMap, and manages its agent pools through the API as the
 * run's own `<run>-runner` service account (runnerIdentity). backoffLimit 1: a runner that died (node lost) is retried
 * once; its result ConfigMap is replaced, never added twice.
 */
export interface GpuScheduling {
  nodeSelector: Record<string, string>;
  tolerations: NonNullable<NonNullable<BenchmarkRunSpec['gpu']>['tolerations']>;
  resources?: NonNullable<BenchmarkRunSpec['gpu']>['resources'];
}

/**
 * Where the GPU step goes: the spec's `gpu` scheduling, or the operator's defaults (the chart's
 * `gpu` values; without them the usual NVIDIA ones: a node labelled `nvidia.com/gpu.present=true`,
 * tolerating the `nvidia.com/gpu` taint, one `nvidia.com/gpu`). The reconcile checks that some node matches; when none does, the step runs
 * on an ordinary node with the ordinary image and the GPU-only tests report Skipped.
 */
export const NVIDIA_GPU_DEFAULTS: GpuScheduling = {
  nodeSelector: { 'nvidia.com/gpu.present': 'true' },
  tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
  resources: { limits: { 'nvidia.com/gpu': 1 } },
};

/** Each field of `spec.gpu` that is set wins; the rest come from the operator's defaults (`--gpu-defaults`). */
export function gpuScheduling(spec: BenchmarkRunSpec, defaults: GpuScheduling = NVIDIA_GPU_DEFAULTS): GpuScheduling {
  const g = spec.gpu ?? {};
  const resources = g.resources ?? defaults.resources;
  return {
    nodeSelector: g.nodeSelector ?? defaults.nodeSelector,
    tolerations: g.tolerations ?? defaults.tolerations,
    ...(resources ? { resources } : {}),
  };
}

/** `gpu`: the scheduling of a GPU step, or null to run it like any other step (no GPU node). */
export function stepJob(run: RunRef, attempt: number, step: Step, spec: BenchmarkRunSpec, images: OperatorImages, gpuSched: GpuScheduling | null = step.fixture.gpu ? gpuScheduling(spec) : null): V1Job {
  const gpu = step.fixture.gpu && gpuSched !== null;
  const image = gpu ? images.gpuImage : images.image;
  const name = jobName(run.name, attempt, step.name);
  const field = (path: string) => ({ valueFrom: { fieldRef: { fieldPath: path } } });
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace: run.namespace,
      labels: labels(run.name, attempt, { 'swarmbench.io/category': step.category, 'swarmbench.io/step': step.name, [COMPONENT_LABEL]: 'runner' }),
      ownerReferences: [ownerRef(run)],
    },
    spec: {
      backoffLimit: 1,
      activeDeadlineSeconds: Math.ceil(step.timeoutMs / 1000),
      template: {
        metadata: {
          labels: labels(run.name, attempt, { 'swarmbench.io/category': step.category, 'swarmbench.io/step': step.name, [COMPONENT_LABEL]: 'runner' }),
        },
        spec: {
          restartPolicy: 'Never',
          serviceAccountName: runnerName(run.name),
          automountServiceAccountToken: true,
          ...(gpu ? { nodeSelector: gpuSched.nodeSelector, tolerations: gpuSched.tolerations } : {}),
          securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'runner',
              image,
              command: ['swarmbench'],
              args: [
                'runner',
                '--step', step.name,
                '--platform', 'kubernetes',
                '--result-configmap', resultName(run.name, attempt, step.name),
                '--attempt', String(attempt),
              ],
              env: [
                { name: 'SWARMBENCH_PARAMS', valueFrom: { configMapKeyRef: { name: paramsName(run.name, attempt), key: 'params.json' } } },
                { name: 'SWARMBENCH_RUN_NAME', value: run.name },
                { name: 'SWARMBENCH_RUN_UID', value: run.uid },
                { name: 'SWARMBENCH_NAMESPACE', ...field('metadata.namespace') },
                { name: 'SWARMBENCH_IMAGE', value: images.image },
                { name: 'POD_NAME', ...field('metadata.name') },
                { name: 'NODE_NAME', ...field('spec.nodeName') },
                ...(spec.prometheus?.bearerTokenSecretRef
                  ? [{ name: 'SWARMBENCH_PROMETHEUS_TOKEN', valueFrom: { secretKeyRef: { name: spec.prometheus.bearerTokenSecretRef.name, key: spec.prometheus.bearerTokenSecretRef.key } } }]
                  : []),
              ],
              ...(gpu && gpuSched.resources ? { resources: gpuSched.resources as never } : {}),
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
            },
          ],
        },
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The runners' identity and the ConfigMaps they may write

/** The empty result and seeds ConfigMaps of a step, created before its Job (the runner updates them). */
export function stepConfigMaps(run: RunRef, attempt: number, step: Step): V1ConfigMap[] {
  const r = { name: run.name, uid: run.uid, attempt };
  return [
    stepResultConfigMap({ name: resultName(run.name, attempt, step.name), namespace: run.namespace, run: r, step: step.name, category: step.category }),
    stepSeedsConfigMap({ namespace: run.namespace, run: r, step: step.name, category: step.category }),
  ];
}

/**
 * The run's runner identity for an attempt: a ServiceAccount, a Role that may get/update/patch
 * exactly the attempt's result and seeds ConfigMaps (by name), its RoleBinding, and a RoleBinding
 * to the runners' ClusterRole (agent pools: RUNNER_POOL_RULES). All owned by the run; the Role's
 * names change with each attempt, so an old attempt's runner cannot write the new one's results.
 */
export function runnerIdentity(run: RunRef, attempt: number, steps: Step[], runnerClusterRole: string): { serviceAccount: V1ServiceAccount; role: V1Role; bindings: V1RoleBinding[] } {
  const name = runnerName(run.name);
  const meta = (n: string) => ({ name: n, namespace: run.namespace, labels: labels(run.name, undefined, { [COMPONENT_LABEL]: 'runner' }), ownerReferences: [ownerRef(run)] });
  const subjects = [{ kind: 'ServiceAccount', name, namespace: run.namespace }];
  const names = steps.flatMap((s) => [resultName(run.name, attempt, s.name), seedsName(run.name, attempt, s.name)]);
  return {
    serviceAccount: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(name), automountServiceAccountToken: false },
    role: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(name), rules: runnerRunRules(names) as PolicyRule[] },
    bindings: [
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: meta(name), roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: meta(runnerPoolsBindingName(run.name)),
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: runnerClusterRole },
        subjects,
      },
    ],
  };
}

export function exportConfigMap(run: RunRef, name: string, attempt: number, files: Record<string, string>): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace: run.namespace,
      // Not owned by the run: the export outlives it (deleting the run keeps its last results).
      labels: labels(run.name, attempt, { [COMPONENT_LABEL]: 'export' }),
    },
    data: files,
  };
}

// ---------------------------------------------------------------------------------------------
// Job state

export type JobState = 'Running' | 'Complete' | 'Failed';

/** Finished detection from the Job's conditions, never from completionTime (a failed Job has none). */
export function jobState(job: V1Job): { state: JobState; message?: string } {
  for (const c of job.status?.conditions ?? []) {
    if (c.status !== 'True') continue;
    if (c.type === 'Complete') return { state: 'Complete' };
    if (c.type === 'Failed') return { state: 'Failed', message: `${c.reason ?? 'Failed'}: ${c.message ?? ''}`.trim() };
  }
  return { state: 'Running' };
}

// ---------------------------------------------------------------------------------------------
// Conditions (metav1.Condition)

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/**
 * Sets a condition in a list: lastTransitionTime changes only when the status changes (as
 * apimachinery's meta.SetStatusCondition does). Returns a new list.
 */
export function setCondition(list: readonly Condition[], c: Omit<Condition, 'lastTransitionTime'>, now: string): Condition[] {
  const prev = list.find((x) => x.type === c.type);
  const next: Condition = { ...c, lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : now };
  return [...list.filter((x) => x.type !== c.type), next].sort((a, b) => CONDITION_ORDER.indexOf(a.type) - CONDITION_ORDER.indexOf(b.type));
}

export const CONDITION_ORDER = ['Ready', 'Progressing', 'Reconciling', 'Complete', 'Degraded', 'Regressed'];

/**
 * The conditions of a run in a phase. Ready is what Flux (kstatus) and Argo CD read for health:
 * True once the attempt finished with a passing verdict; False with a reason otherwise.
 * Complete becomes True when the attempt finished, whatever the verdict (`kubectl wait
 * --for=condition=Complete` returns on every finished attempt); Degraded says why it did not pass.
 * Reconciling mirrors Progressing under kstatus's name (True while an attempt runs; absent-or-False
 * otherwise), so tools with kstatus's generic rules (Flux `wait: true`, `kubectl` plugins, cli-utils)
 * see a running benchmark as in progress without a custom health check.
 */
export function conditionsFor(
  prev: readonly Condition[],
  generation: number,
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Cancelled',
  reason: string,
  message: string,
  now: string,
  regressed?: { count: number; names: string[] },
): Condition[] {
  const g = generation;
  let list = [...prev];
  const set = (type: string, status: Condition['status'], r: string, m: string) => {
    list = setCondition(list, { type, status, reason: r, message: m, observedGeneration: g }, now);
  };
  const running = phase === 'Pending' || phase === 'Running';
  set('Ready', phase === 'Succeeded' ? 'True' : 'False', reason, message);
  set('Progressing', running ? 'True' : 'False', running ? reason : 'Finished', running ? message : `attempt ended: ${phase}`);
  set('Reconciling', running ? 'True' : 'False', running ? reason : 'Finished', running ? message : `attempt ended: ${phase}`);
  set('Complete', phase === 'Succeeded' || phase === 'Failed' ? 'True' : 'False', reason, message);
  set('Degraded', phase === 'Failed' || phase === 'Cancelled' ? 'True' : 'False', phase === 'Failed' || phase === 'Cancelled' ? reason : 'AsExpected', phase === 'Failed' || phase === 'Cancelled' ? message : '');
  if (regressed) {
    set('Regressed', regressed.count > 0 ? 'True' : 'False', regressed.count > 0 ? 'Regressions' : 'NoRegressions', regressed.count > 0 ? regressed.names.join(', ') : 'no metric regressed against the baseline');
  }
  return list;
}
