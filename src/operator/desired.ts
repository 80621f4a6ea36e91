/**
 * Pure builders of what the operator creates for a BenchmarkRun attempt, and of its status
 * conditions. No I/O: unit-tested, and the reconcile only compares and applies them.
 *
 * Names are deterministic (kube/names.ts), so a create retried after a crash finds what exists
 * (409): the params ConfigMap (the resolved Params, frozen for the attempt), each step's Job
 * (`swarmbench runner ...`), its result and seeds ConfigMaps (created empty before the Job and
 * updated by the runner), the runners' ServiceAccount, Role (the attempt's ConfigMaps by name) and
 * RoleBindings (one binds the chart's runner ClusterRole, platform/kubernetes/rbac.ts), and the
 * export ConfigMap. The one exception is the attempt's agent-token Secret (`agentTokenSecret`): it
 * is made by `generateName`, so its create never meets an existing Secret. Every object is labelled (managed-by, run, run-uid,
 * attempt, category) and controlled by the run (ownerReference with its uid): the export too, so a
 * run's export goes with the run, and a re-created run of the same name waits for the garbage
 * collector instead of adopting it (docs/operator.md "Ownership"). The NetworkPolicy is netpol.ts.
 */
import type { V1ConfigMap, V1Job, V1Role, V1RoleBinding, V1Secret, V1ServiceAccount } from '@kubernetes/client-node';
import type { BenchmarkRunSpec } from '../api/schema.ts';
import {
  AGENT_TOKEN_ENV, AGENT_TOKEN_KEY, CATEGORY_LABEL, COMPONENT, COMPONENT_LABEL, STEP_LABEL,
  METRICS_TOKEN_KEY, PARAMS_KEY, PARAMS_TOKEN_SECRET_KEY, AGENT_TOKEN_SECRET_ENV, agentTokenSecretPrefix, jobName, ownerReference, paramsName, runLabels, runnerName, runnerPoolsBindingName, stepResultName, stepSeedsName,
  type RunRef,
} from '../kube/names.ts';
import type { Params } from '../plan/params.ts';
import type { Step } from '../plan/plan.ts';
import { stepResultConfigMap, stepSeedsConfigMap } from '../platform/kubernetes/manifests.ts';
import { runnerRunRules, type PolicyRule } from '../platform/kubernetes/rbac.ts';

export interface OperatorImages {
  /** The project's image (runner and reference agent). */
  image: string;
  /** The GPU runner image (CUDA, tfjs-node-gpu). */
  gpuImage: string;
}

/**
 * The attempt's params ConfigMap: the resolved Params (`params.json`) and the name of the
 * attempt's agent-token Secret (`agentTokenSecret`, the name the API server generated).
 */
export function paramsConfigMap(run: RunRef, attempt: number, params: Params, tokenSecret: string): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: paramsName(run.name, attempt),
      namespace: run.namespace,
      labels: runLabels(run, attempt, { [COMPONENT_LABEL]: COMPONENT.params }),
      ownerReferences: [ownerReference(run)],
    },
    data: { [PARAMS_KEY]: JSON.stringify(params), [PARAMS_TOKEN_SECRET_KEY]: tokenSecret },
  };
}

/**
 * The Job of one step. The runner gets its parameters from the params ConfigMap (an env var, which
 * works everywhere), writes its result into the step's result ConfigMap, and manages its agent
 * pools through the API as the run's own `<run>-runner` service account (runnerIdentity).
 * backoffLimit 1: a runner that died (node lost) is retried once; its result ConfigMap is
 * replaced, never added twice.
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

/**
 * `tokenSecret`: the attempt's agent-token Secret (the name recorded in its params ConfigMap).
 * `gpu`: the scheduling of a GPU step, or null to run it like any other step (no GPU node).
 */
export function stepJob(run: RunRef, attempt: number, step: Step, spec: BenchmarkRunSpec, images: OperatorImages, tokenSecret: string, gpuSched: GpuScheduling | null = step.fixture.gpu ? gpuScheduling(spec) : null): V1Job {
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
      labels: runLabels(run, attempt, { [CATEGORY_LABEL]: step.category, [STEP_LABEL]: step.name, [COMPONENT_LABEL]: COMPONENT.runner }),
      ownerReferences: [ownerReference(run)],
    },
    spec: {
      backoffLimit: 1,
      activeDeadlineSeconds: Math.ceil(step.timeoutMs / 1000),
      template: {
        metadata: {
          labels: runLabels(run, attempt, { [CATEGORY_LABEL]: step.category, [STEP_LABEL]: step.name, [COMPONENT_LABEL]: COMPONENT.runner }),
        },
        spec: {
          restartPolicy: 'Never',
          serviceAccountName: runnerName(run.name),
          automountServiceAccountToken: true,
          ...(gpu ? { nodeSelector: gpuSched.nodeSelector, tolerations: gpuSched.tolerations } : {}),
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'runner',
              image,
              command: ['swarmbench'],
              args: [
                'runner',
                '--step', step.name,
                '--platform', 'kubernetes',
                '--result-configmap', stepResultName(run.name, attempt, step.name),
                '--attempt', String(attempt),
              ],
              env: [
                { name: 'SWARMBENCH_PARAMS', valueFrom: { configMapKeyRef: { name: paramsName(run.name, attempt), key: PARAMS_KEY } } },
                { name: 'SWARMBENCH_RUN_NAME', value: run.name },
                { name: 'SWARMBENCH_RUN_UID', value: run.uid },
                // The attempt's agent token (agentTokenSecret): the runner sends it to its agents
                // and hands the Secret's name (SWARMBENCH_AGENT_TOKEN_SECRET) to the agent pools
                // it creates.
                { name: AGENT_TOKEN_ENV, valueFrom: { secretKeyRef: { name: tokenSecret, key: AGENT_TOKEN_KEY } } },
                { name: AGENT_TOKEN_SECRET_ENV, value: tokenSecret },
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
  return [
    stepResultConfigMap({ name: stepResultName(run.name, attempt, step.name), run, attempt, step: step.name, category: step.category }),
    stepSeedsConfigMap({ run, attempt, step: step.name, category: step.category }),
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
  const meta = (n: string) => ({ name: n, namespace: run.namespace, labels: runLabels(run, undefined, { [COMPONENT_LABEL]: COMPONENT.runner }), ownerReferences: [ownerReference(run)] });
  const subjects = [{ kind: 'ServiceAccount', name, namespace: run.namespace }];
  const names = steps.flatMap((s) => [stepResultName(run.name, attempt, s.name), stepSeedsName(run.name, attempt, s.name)]);
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
      // Owned like everything else: the operator writes only what its run controls, so an
      // existing ConfigMap of this name that the run does not control is a Conflict, never
      // overwritten; the export goes with the run (copy it to keep it).
      labels: runLabels(run, attempt, { [COMPONENT_LABEL]: COMPONENT.export }),
      ownerReferences: [ownerReference(run)],
    },
    data: files,
  };
}

/**
 * The attempt's agent token (docs/operator.md "Agents authenticate"): an Opaque Secret, key
 * `token`, with `metadata.generateName` `<run>-a<attempt>-token-` (kube/names.ts
 * `agentTokenSecretPrefix`) and no name: the API server picks a fresh one, so the create never
 * meets someone else's Secret (no 409, nothing to read back) and the operator needs no `get` on
 * Secrets. Created once per attempt (attempt.ts) and never overwritten; owned by the run, so the
 * garbage collector removes it with the run. `token` is made by the caller (32 random bytes,
 * base64url: attempt.ts), so this builder stays pure. The runner Job and the agent pods read it
 * through a secretKeyRef as SWARMBENCH_AGENT_TOKEN. With the administrator's scrape token
 * (`--metrics-token-file`), key `metrics-token` holds a copy of it: the agent pods read it as
 * SWARMBENCH_METRICS_TOKEN, which opens their `/metrics` (and nothing else) to the Prometheus that
 * scrapes every run's agents with that one credential. Copied when the Secret is created: a new
 * scrape token reaches attempts started after the operator restarts with it.
 */
export function agentTokenSecret(run: RunRef, attempt: number, token: string, metricsToken?: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      generateName: agentTokenSecretPrefix(run.name, attempt),
      namespace: run.namespace,
      labels: runLabels(run, attempt, { [COMPONENT_LABEL]: COMPONENT.agentToken }),
      ownerReferences: [ownerReference(run)],
    },
    data: {
      [AGENT_TOKEN_KEY]: Buffer.from(token, 'utf8').toString('base64'),
      ...(metricsToken ? { [METRICS_TOKEN_KEY]: Buffer.from(metricsToken, 'utf8').toString('base64') } : {}),
    },
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

export const CONDITION_ORDER = ['Ready', 'Progressing', 'Reconciling', 'Complete', 'Degraded', 'Regressed', 'Conflict'];

/**
 * The Conflict condition (docs/operator.md "Ownership"): True, reason ObjectNotOwned, while an
 * object the run needs exists under its name but is not controlled by the run (nothing was
 * modified; the run waits and checks again); set False (reason Resolved) by `conditionsFor` once
 * the run moves on. Never added to a run that never had one.
 */
/** The conditions with a True Conflict set False (Resolved); undefined when there is none to resolve. */
export function resolvedConflict(prev: readonly Condition[], now: string): Condition[] | undefined {
  const c = prev.find((x) => x.type === 'Conflict');
  if (!c || c.status !== 'True') return undefined;
  return setCondition(prev, { ...c, status: 'False', reason: 'Resolved', message: 'every object the run uses is controlled by it' }, now);
}

export function conflictCondition(prev: readonly Condition[], generation: number, message: string, now: string): Condition[] {
  return setCondition(prev, { type: 'Conflict', status: 'True', reason: 'ObjectNotOwned', message, observedGeneration: generation }, now);
}

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
  if (list.some((c) => c.type === 'Conflict' && c.status === 'True')) set('Conflict', 'False', 'Resolved', 'every object the run uses is controlled by it');
  if (regressed) {
    set('Regressed', regressed.count > 0 ? 'True' : 'False', regressed.count > 0 ? 'Regressions' : 'NoRegressions', regressed.count > 0 ? regressed.names.join(', ') : 'no metric regressed against the baseline');
  }
  return list;
}
