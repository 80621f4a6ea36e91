/**
 * Starting an attempt and its steps, and the runner's access (docs/operator.md "Attempts",
 * "Steps", "Who may do what"):
 *
 * - `startAttempt`: the attempt's params ConfigMap `<run>-a<n>-params` (the spec resolved now and
 *   frozen for the attempt), the previous attempt into the bounded history, and the status of a
 *   running attempt (phase Running, progress 0, conditions, an AttemptStarted event).
 * - `attemptParams`: the frozen params, parsed with the Params schema. A ConfigMap someone replaced
 *   with something that does not parse is reported (`invalid`), not thrown: the caller fails the
 *   attempt (ParamsInvalid) instead of retrying forever. One someone deleted is recreated from the
 *   current spec.
 * - `startStep`: before a step's Job, the run's runner identity (ServiceAccount, the Role naming
 *   exactly this attempt's result and seeds ConfigMaps, both RoleBindings) and the step's empty
 *   result and seeds ConfigMaps (the runner may update them, never create); then the Job, with the
 *   GPU placement for the GPU step (no matching node: an ordinary Job and a NoGpuNode warning).
 *   Every create is create-or-get on a deterministic name, so a retry never makes a second one.
 * - `ownerProblem`: an object with our name that another owner controls is never used; when that
 *   owner is an earlier run of the same name (deleted, its children not yet garbage-collected) the
 *   caller waits for the collector instead of failing.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseParams, resolveParams, type Params } from '../plan/params.ts';
import { buildPlan, type Step } from '../plan/plan.ts';
import { RUNNER_CLUSTER_ROLE } from '../platform/kubernetes/rbac.ts';
import { BENCHMARKRUN_KIND, paramsName, type RunRef } from '../kube/names.ts';
import { errorMessage } from '../errors.ts';
import { ensure } from './cluster.ts';
import { nowIso, type Deps, type ReconcileResult, type RunCtx } from './context.ts';
import { conditionsFor, gpuScheduling, paramsConfigMap, runnerIdentity, stepConfigMaps, stepJob, type GpuScheduling } from './desired.ts';
import { conditionsOf, recordEvent, sameJson, writeStatus } from './status.ts';

export const HISTORY_MAX = 10;

/** Why an object cannot be taken as the run's; undefined when the run controls it or nothing does. */
export function ownerProblem(obj: KubernetesObject, ref: RunRef, what: string): { predecessor: boolean; message: string } | undefined {
  const c = obj.metadata?.ownerReferences?.find((r) => r.controller);
  if (!c || c.uid === ref.uid) return undefined;
  return {
    predecessor: c.kind === BENCHMARKRUN_KIND && c.name === ref.name,
    message: `${what} ${obj.metadata?.name} belongs to another owner (${c.kind} ${c.name}, uid ${c.uid})`,
  };
}

/** Waits for the garbage collector to remove an earlier run's object of the same name. */
export function waitForCollector(deps: Deps, rc: RunCtx, message: string): ReconcileResult {
  deps.log.info('waiting for the garbage collector', { run: rc.ref.name, why: message });
  return { requeueAfterMs: 2000 };
}

export async function startAttempt(deps: Deps, rc: RunCtx, attempt: number, rerun: string | undefined): Promise<ReconcileResult> {
  const { run, ref, spec } = rc;
  const status = run.status ?? {};
  const generation = run.metadata.generation ?? 1;
  const params = resolveParams(spec);
  const plan = buildPlan(params);
  const history = [...(status.history ?? [])];
  if (status.attempt && status.phase) {
    history.unshift({
      attempt: status.attempt,
      phase: status.phase,
      ...(status.summary?.verdict ? { verdict: status.summary.verdict } : {}),
      ...(status.summary ? { successRate: status.summary.successRate ?? null } : {}),
      ...(status.finishedAt ? { finishedAt: status.finishedAt } : {}),
    });
  }
  await ensure(deps.cluster, 'ConfigMap', paramsConfigMap(ref, attempt, params));
  const message = `attempt ${attempt}: ${plan.length} steps (${plan.map((s) => s.name).join(', ')})`;
  const now = nowIso(deps);
  await writeStatus(
    deps,
    run,
    {
      phase: 'Running',
      attempt,
      observedGeneration: generation,
      startedAt: now,
      finishedAt: null,
      progress: { completedSteps: 0, totalSteps: plan.length, currentStep: plan[0]?.name ?? '' },
      summary: null,
      tests: null,
      recommendations: null,
      comparison: null,
      export: null,
      ...(rerun !== undefined ? { lastRerun: rerun } : {}),
      history: history.slice(0, HISTORY_MAX),
      conditions: conditionsFor(conditionsOf(run), generation, 'Running', 'Running', message, now),
    },
    { type: 'Normal', reason: 'AttemptStarted', message },
  );
  deps.log.info('attempt started', { run: ref.name, attempt, steps: plan.length });
  return { requeueAfterMs: 0 };
}

export type ParamsOutcome = { params: Params } | { invalid: string } | { wait: string };

/** The params frozen for the attempt (read through the cache: they do not change). */
export async function attemptParams(deps: Deps, rc: RunCtx, attempt: number): Promise<ParamsOutcome> {
  const { ref } = rc;
  const name = paramsName(ref.name, attempt);
  let cm = await deps.cluster.read('ConfigMap', ref.namespace, name);
  if (!cm) {
    deps.log.warn('params ConfigMap missing: recreated from the current spec', { run: ref.name, attempt });
    cm = (await ensure(deps.cluster, 'ConfigMap', paramsConfigMap(ref, attempt, resolveParams(rc.spec)))).object;
  }
  const foreign = ownerProblem(cm, ref, 'params ConfigMap');
  if (foreign) return foreign.predecessor ? { wait: foreign.message } : { invalid: foreign.message };
  try {
    return { params: parseParams(cm.data?.['params.json'] ?? '', `ConfigMap ${name} (params.json)`) };
  } catch (e) {
    return { invalid: errorMessage(e) };
  }
}

export type StepStart = { started: boolean } | { failed: string } | { wait: string };

/** The runner's access and the step's Job (create-or-get); `started` when this call created the Job. */
export async function startStep(deps: Deps, rc: RunCtx, attempt: number, plan: Step[], index: number): Promise<StepStart> {
  const { ref, run, spec } = rc;
  const step = plan[index]!;
  const problem = await runnerAccess(deps, ref, attempt, plan, step);
  if (problem) return problem;
  const gpu = step.fixture.gpu ? await gpuPlacement(deps, spec) : undefined;
  const job = await ensure(deps.cluster, 'Job', stepJob(ref, attempt, step, spec, deps.images, gpu ? gpu.sched : null));
  if (!job.created) return { started: false };
  deps.log.info('step started', { run: ref.name, attempt, step: step.name });
  if (gpu && !gpu.sched) {
    await recordEvent(deps, run, {
      type: 'Warning',
      reason: 'NoGpuNode',
      message: `attempt ${attempt}: no node matches ${gpu.selector}; the gpu step runs on an ordinary node and the GPU-only tests report Skipped`,
    });
  }
  return { started: true };
}

/** The GPU step's scheduling, or null when no node matches it (it then runs as an ordinary step). */
async function gpuPlacement(deps: Deps, spec: RunCtx['spec']): Promise<{ sched: GpuScheduling | null; selector: string }> {
  const sched = gpuScheduling(spec, deps.gpuDefaults);
  const selector = Object.entries(sched.nodeSelector).map(([k, v]) => `${k}=${v}`).join(',');
  const nodes = await deps.cluster.listNodes(selector);
  return { sched: nodes.length > 0 ? sched : null, selector };
}

/**
 * The run's runner identity and the step's empty ConfigMaps. Idempotent: reads what exists, fixes
 * a Role of an older attempt, recreates a RoleBinding whose roleRef changed (roleRef is
 * immutable). An object of these names that another owner controls is not ours to hand to the
 * runner: the step fails naming it (or waits, for an earlier run of the same name).
 */
async function runnerAccess(deps: Deps, ref: RunRef, attempt: number, plan: Step[], step: Step): Promise<{ failed: string } | { wait: string } | undefined> {
  const c = deps.cluster;
  const want = runnerIdentity(ref, attempt, plan, deps.runnerClusterRole || RUNNER_CLUSTER_ROLE);
  const foreign = (obj: KubernetesObject, what: string) => {
    const p = ownerProblem(obj, ref, what);
    return p && (p.predecessor ? { wait: p.message } : { failed: `the ${step.name} step cannot run: ${p.message}` });
  };
  const sa = await ensure(c, 'ServiceAccount', want.serviceAccount);
  const role = await ensure(c, 'Role', want.role);
  const problem = foreign(sa.object, 'ServiceAccount') ?? foreign(role.object, 'Role');
  if (problem) return problem;
  if (!role.created && !sameJson(role.object.rules, want.role.rules)) {
    await c.replace('Role', { ...want.role, metadata: { ...want.role.metadata, resourceVersion: role.object.metadata?.resourceVersion } });
  }
  for (const b of want.bindings) {
    const got = await ensure(c, 'RoleBinding', b);
    const p = foreign(got.object, 'RoleBinding');
    if (p) return p;
    if (!got.created && !sameJson(got.object.roleRef, b.roleRef)) {
      await c.deleteRoleBinding(ref.namespace, b.metadata!.name!);
      await c.create('RoleBinding', b);
    }
  }
  for (const cm of stepConfigMaps(ref, attempt, step)) {
    const p = foreign((await ensure(c, 'ConfigMap', cm)).object, 'ConfigMap');
    if (p) return p;
  }
  return undefined;
}
