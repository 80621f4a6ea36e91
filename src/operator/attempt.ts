/**
 * Starting an attempt and its steps, and the runner's access (docs/operator.md "Attempts",
 * "Steps", "Who may do what"):
 *
 * - `startAttempt`: the attempt's agent-token Secret, then its params ConfigMap `<run>-a<n>-params`
 *   (the spec resolved now and frozen for the attempt, and the token Secret's name), the previous
 *   attempt into the bounded history, and the status of a running attempt (phase Running,
 *   progress 0, conditions, an AttemptStarted event). `refuseAttempt`: one whose start the API
 *   server refused for good is recorded as a finished attempt (phase Failed, reason Rejected or
 *   Forbidden, one Warning event), so it is not tried again until the run changes.
 * - The agent token (docs/operator.md "Agents authenticate"): one Secret per attempt, created with
 *   `generateName` (desired.ts `agentTokenSecret`), so the API server picks a fresh name and the
 *   create can never meet a Secret someone else made: no 409, nothing to read back, and the
 *   operator never reads a token Secret (its RBAC has `create` on Secrets and `get` only on the
 *   named Prometheus token Secrets). The name the server returned is recorded in the params
 *   ConfigMap (`agentTokenSecret`), which is create-or-get and owner-checked like everything else;
 *   the Jobs take the name from there. Decided: a crash (or a failed ConfigMap create) between the
 *   Secret's create and the ConfigMap's leaves a Secret nobody uses; the retry creates another.
 *   Such an orphan is owned by the run and labelled with it, so the garbage collector removes it
 *   with the run. A params ConfigMap that exists already is never given a second Secret.
 * - `attemptParams`: the frozen params, parsed with the Params schema, and the token Secret's
 *   name. A ConfigMap someone replaced with something that does not parse, or whose recorded name
 *   is not one the API server can have generated for this attempt (`<run>-a<n>-token-` and 5 of
 *   [a-z0-9]: a ConfigMap edited to point the Jobs at another Secret), is reported (`invalid`), not
 *   thrown: the caller fails the attempt (ParamsInvalid) instead of retrying forever. One someone
 *   deleted is recreated from the current spec, with a new token Secret. Params that the run does
 *   not control (an earlier run of the same name) are never read: a Conflict, and the run waits
 *   until the garbage collector removed them. Decided for a params ConfigMap of ours without the
 *   name (an attempt started by an operator older than per-attempt tokens): the attempt goes on
 *   with a new token Secret whose name is added to the ConfigMap (a replace with the
 *   resourceVersion read live, so a concurrent write is a 409 and a retry, never lost); steps
 *   started before keep the token they have (each step's runner gives its own agents its token).
 * - `startStep`: before a step's Job, the run's NetworkPolicy (once per run uid, never
 *   overwritten), its runner identity (ServiceAccount, the Role naming exactly this attempt's
 *   result and seeds ConfigMaps, both RoleBindings) and the step's empty result and seeds
 *   ConfigMaps (the runner may update them, never create); then the Job, with the GPU placement for
 *   the GPU step (no matching node: an ordinary Job and a NoGpuNode warning). Each of these creates
 *   is create-or-get on a deterministic name, so a retry never makes a second one.
 * - Ownership (docs/operator.md "Ownership"): whatever create-or-get answers with is used, changed
 *   or deleted only when the run controls it (`belongsTo`: its controller ownerReference has the
 *   run's uid). Anything else (no controller, another controller, an earlier run of the same name
 *   not yet garbage-collected) is a `Conflict` (`ownerProblem`): nothing is modified, the run gets
 *   the Conflict condition (True, ObjectNotOwned, naming the object and its controller) and looks
 *   again later (`waitOnConflict`: after 2 s for an earlier run's leftovers, after the poll interval
 *   otherwise, and on every event or resync). Decided: the run waits rather than fails, so removing
 *   the object (or the collector doing so) lets it go on without a new generation.
 */
import { randomBytes } from 'node:crypto';
import type { KubernetesObject, V1ConfigMap, V1NetworkPolicy } from '@kubernetes/client-node';
import { parseParams, resolveParams, type Params } from '../plan/params.ts';
import { buildPlan, type Step } from '../plan/plan.ts';
import { RUNNER_CLUSTER_ROLE } from '../platform/kubernetes/rbac.ts';
import {
  BENCHMARKRUN_KIND, PARAMS_KEY, PARAMS_TOKEN_SECRET_KEY, agentTokenSecretPrefix, belongsTo, controllerOf, isAgentTokenSecretName, paramsName, type RunRef,
} from '../kube/names.ts';
import { errorMessage } from '../errors.ts';
import { ensure } from './cluster.ts';
import { nowIso, type Deps, type ReconcileResult, type RunCtx } from './context.ts';
import { agentTokenSecret, conditionsFor, conflictCondition, gpuScheduling, paramsConfigMap, runnerIdentity, stepConfigMaps, stepJob, type GpuScheduling } from './desired.ts';
import { agentNetworkPolicy } from './netpol.ts';
import { conditionsOf, recordEvent, sameJson, writeStatus } from './status.ts';

export const HISTORY_MAX = 10;

/** An object the run needs that it does not control: never used, changed or deleted. */
export interface Conflict {
  conflict: string;
  /** Controlled by an earlier BenchmarkRun of the same name: the garbage collector will remove it. */
  predecessor: boolean;
}

/** Why an object cannot be taken as the run's (a Conflict); undefined when the run controls it. */
export function ownerProblem(obj: KubernetesObject, ref: RunRef, kind: string): Conflict | undefined {
  if (belongsTo(obj, ref.uid)) return undefined;
  const c = obj.metadata?.ownerReferences?.find((r) => r.controller);
  return {
    predecessor: !!c && c.kind === BENCHMARKRUN_KIND && c.name === ref.name,
    conflict: `${kind} ${obj.metadata?.namespace ?? ref.namespace}/${obj.metadata?.name} is not controlled by this run (uid ${ref.uid}); its controller: ${controllerOf(obj)}`,
  };
}

/**
 * Sets the Conflict condition (once: the status is written only when it changes, with a Conflict
 * warning event) and looks again later. Nothing else is written.
 */
export async function waitOnConflict(deps: Deps, rc: RunCtx, c: Conflict): Promise<ReconcileResult> {
  const { run } = rc;
  const generation = run.status?.observedGeneration ?? run.metadata.generation ?? 1;
  const message = c.predecessor ? `${c.conflict}: waiting until the garbage collector removes it` : `${c.conflict}: nothing was modified; remove it or rename the run's object`;
  await writeStatus(deps, run, { conditions: conflictCondition(conditionsOf(run), generation, message, nowIso(deps)) }, { type: 'Warning', reason: 'Conflict', message });
  deps.log.warn('object not owned by the run', { run: rc.ref.name, conflict: c.conflict });
  return { requeueAfterMs: c.predecessor ? 2000 : deps.pollMs };
}

/** The status of a new attempt (the previous one into the history, the last one's results cleared), in `phase`. */
function newAttemptStatus(rc: RunCtx, attempt: number, rerun: string | undefined, now: string, plan: Step[], phase: 'Running' | 'Failed'): Record<string, unknown> {
  const status = rc.run.status ?? {};
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
  return {
    phase,
    attempt,
    observedGeneration: rc.run.metadata.generation ?? 1,
    startedAt: now,
    finishedAt: phase === 'Running' ? null : now,
    progress: { completedSteps: 0, totalSteps: plan.length, currentStep: phase === 'Running' ? (plan[0]?.name ?? '') : '' },
    summary: null,
    tests: null,
    recommendations: null,
    comparison: null,
    observations: null,
    export: null,
    ...(rerun !== undefined ? { lastRerun: rerun } : {}),
    history: history.slice(0, HISTORY_MAX),
  };
}

export async function startAttempt(deps: Deps, rc: RunCtx, attempt: number, rerun: string | undefined): Promise<ReconcileResult> {
  const { run, ref, spec } = rc;
  const generation = run.metadata.generation ?? 1;
  const params = resolveParams(spec);
  const plan = buildPlan(params);
  // A params ConfigMap that exists (a retry after the status write failed) keeps its token Secret.
  if (!(await deps.cluster.read('ConfigMap', ref.namespace, paramsName(ref.name, attempt)))) {
    const tokenSecret = await createTokenSecret(deps, ref, attempt);
    await ensure(deps.cluster, 'ConfigMap', paramsConfigMap(ref, attempt, params, tokenSecret));
  }
  const message = `attempt ${attempt}: ${plan.length} steps (${plan.map((s) => s.name).join(', ')})`;
  const now = nowIso(deps);
  await writeStatus(
    deps,
    run,
    { ...newAttemptStatus(rc, attempt, rerun, now, plan, 'Running'), conditions: conditionsFor(conditionsOf(run), generation, 'Running', 'Running', message, now) },
    { type: 'Normal', reason: 'AttemptStarted', message },
  );
  deps.log.info('attempt started', { run: ref.name, attempt, steps: plan.length });
  return { requeueAfterMs: 0 };
}

/**
 * An attempt that could not start because the API server refused one of its requests for good
 * (status.ts `refusalOf`): recorded as a finished attempt (phase Failed, Degraded with the
 * refusal's reason, one Warning event), so it is not started again until the run changes (a new
 * generation or rerun annotation), and the attempt before it goes into the history as usual.
 */
export async function refuseAttempt(deps: Deps, rc: RunCtx, attempt: number, rerun: string | undefined, reason: string, message: string): Promise<ReconcileResult> {
  const { run, ref } = rc;
  const now = nowIso(deps);
  const plan = buildPlan(resolveParams(rc.spec));
  await writeStatus(
    deps,
    run,
    { ...newAttemptStatus(rc, attempt, rerun, now, plan, 'Failed'), conditions: conditionsFor(conditionsOf(run), run.metadata.generation ?? 1, 'Failed', reason, message, now) },
    { type: 'Warning', reason, message },
  );
  deps.log.warn('attempt refused', { run: ref.name, attempt, reason, message });
}

/**
 * A new agent-token Secret for the attempt (generateName: the API server picks its name, so this
 * never answers 409) and the name it got. Never read back: the caller records the name.
 */
async function createTokenSecret(deps: Deps, ref: RunRef, attempt: number): Promise<string> {
  const made = await deps.cluster.create('Secret', agentTokenSecret(ref, attempt, randomBytes(32).toString('base64url'), deps.metricsToken));
  const name = made.metadata?.name;
  if (!name) throw new Error(`Secret ${ref.namespace}/${agentTokenSecretPrefix(ref.name, attempt)}...: the API server answered the create without metadata.name`);
  deps.log.info('agent token Secret created', { run: ref.name, attempt, secret: name });
  return name;
}

/** The params frozen for the attempt and the name of its agent-token Secret; or why not. */
export type ParamsOutcome = { params: Params; tokenSecret: string } | { invalid: string } | Conflict;

/** The params frozen for the attempt (read through the cache: they do not change). */
export async function attemptParams(deps: Deps, rc: RunCtx, attempt: number): Promise<ParamsOutcome> {
  const { ref } = rc;
  const name = paramsName(ref.name, attempt);
  let cm = await deps.cluster.read('ConfigMap', ref.namespace, name);
  if (!cm) {
    deps.log.warn('params ConfigMap missing: recreated from the current spec, with a new agent token', { run: ref.name, attempt });
    const tokenSecret = await createTokenSecret(deps, ref, attempt);
    cm = (await ensure(deps.cluster, 'ConfigMap', paramsConfigMap(ref, attempt, resolveParams(rc.spec), tokenSecret))).object;
  }
  const foreign = ownerProblem(cm, ref, 'ConfigMap');
  if (foreign) return foreign;
  let params: Params;
  try {
    params = parseParams(cm.data?.[PARAMS_KEY] ?? '', `ConfigMap ${name} (${PARAMS_KEY})`);
  } catch (e) {
    return { invalid: errorMessage(e) };
  }
  let tokenSecret = cm.data?.[PARAMS_TOKEN_SECRET_KEY];
  if (tokenSecret === undefined) {
    const added = await recordTokenSecret(deps, ref, attempt, name);
    if (typeof added !== 'string') return added;
    tokenSecret = added;
  }
  if (!isAgentTokenSecretName(ref.name, attempt, tokenSecret)) {
    const shown = JSON.stringify(tokenSecret.length > 80 ? `${tokenSecret.slice(0, 80)}...` : tokenSecret);
    return { invalid: `ConfigMap ${name} (${PARAMS_TOKEN_SECRET_KEY}): ${shown} is not a name the API server generated for this attempt's agent-token Secret (${agentTokenSecretPrefix(ref.name, attempt)} and 5 of [a-z0-9])` };
  }
  return { params, tokenSecret };
}

/**
 * An attempt started by an older operator: its params ConfigMap (ours) names no token Secret. Read
 * live (the cache may lag behind an earlier call of this), then a new token Secret and its name
 * added to the ConfigMap by a replace with that resourceVersion (a 409 throws: the reconcile is
 * retried and reads the ConfigMap again). Gone or no longer ours in between: a Conflict or a throw.
 */
async function recordTokenSecret(deps: Deps, ref: RunRef, attempt: number, name: string): Promise<string | Conflict> {
  const live = await deps.cluster.read('ConfigMap', ref.namespace, name, { live: true });
  if (!live) throw new Error(`ConfigMap ${ref.namespace}/${name}: deleted while the attempt's agent token was being recorded`);
  const foreign = ownerProblem(live, ref, 'ConfigMap');
  if (foreign) return foreign;
  const recorded = live.data?.[PARAMS_TOKEN_SECRET_KEY];
  if (recorded !== undefined) return recorded;
  const tokenSecret = await createTokenSecret(deps, ref, attempt);
  const next: V1ConfigMap = { ...live, data: { ...live.data, [PARAMS_TOKEN_SECRET_KEY]: tokenSecret } };
  await deps.cluster.replace('ConfigMap', next);
  deps.log.warn('params ConfigMap of an older operator: the attempt\'s new agent token Secret recorded in it', { run: ref.name, attempt, secret: tokenSecret });
  return tokenSecret;
}

export type StepStart = { started: boolean } | Conflict;

/**
 * The runner's access and the step's Job (create-or-get); `started` when this call created the Job.
 * `tokenSecret`: the attempt's agent-token Secret, as its params ConfigMap records it.
 */
export async function startStep(deps: Deps, rc: RunCtx, attempt: number, plan: Step[], index: number, tokenSecret: string): Promise<StepStart> {
  const { ref, run, spec } = rc;
  const step = plan[index]!;
  const problem = await runnerAccess(deps, ref, attempt, plan, step);
  if (problem) return problem;
  const gpu = step.fixture.gpu ? await gpuPlacement(deps, spec) : undefined;
  const job = await ensure(deps.cluster, 'Job', stepJob(ref, attempt, step, spec, deps.images, tokenSecret, gpu ? gpu.sched : null));
  if (!job.created) return ownerProblem(job.object, ref, 'Job') ?? { started: false };
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
 * The run's NetworkPolicy, its runner identity and the step's empty ConfigMaps.
 * Idempotent: each is create-or-get, and what exists is checked before anything else is done with
 * it: an object of these names that the run does not control is a Conflict (returned at once,
 * nothing of it modified or adopted). Only the run's own Role of an older attempt is replaced (the
 * attempt's ConfigMap names), and only the run's own RoleBinding whose roleRef changed is deleted
 * (with its uid as precondition) and created again (roleRef is immutable). The agent token is the
 * attempt's (startAttempt), not made here.
 */
async function runnerAccess(deps: Deps, ref: RunRef, attempt: number, plan: Step[], step: Step): Promise<Conflict | undefined> {
  const c = deps.cluster;
  const want = runnerIdentity(ref, attempt, plan, deps.runnerClusterRole || RUNNER_CLUSTER_ROLE);
  const np = await ensure(c, 'NetworkPolicy', agentNetworkPolicy(ref, deps.agentIngressFrom ?? []) as V1NetworkPolicy);
  const npProblem = ownerProblem(np.object, ref, 'NetworkPolicy');
  if (npProblem) return npProblem;
  const sa = await ensure(c, 'ServiceAccount', want.serviceAccount);
  const saProblem = ownerProblem(sa.object, ref, 'ServiceAccount');
  if (saProblem) return saProblem;
  const role = await ensure(c, 'Role', want.role);
  const roleProblem = ownerProblem(role.object, ref, 'Role');
  if (roleProblem) return roleProblem;
  if (!role.created && !sameJson(role.object.rules, want.role.rules)) {
    await c.replace('Role', { ...want.role, metadata: { ...want.role.metadata, resourceVersion: role.object.metadata?.resourceVersion } });
  }
  for (const b of want.bindings) {
    const got = await ensure(c, 'RoleBinding', b);
    const p = ownerProblem(got.object, ref, 'RoleBinding');
    if (p) return p;
    if (!got.created && !sameJson(got.object.roleRef, b.roleRef)) {
      await c.delete('RoleBinding', ref.namespace, b.metadata!.name!, got.object.metadata?.uid ?? '');
      await c.create('RoleBinding', b);
    }
  }
  for (const cm of stepConfigMaps(ref, attempt, step)) {
    const p = ownerProblem((await ensure(c, 'ConfigMap', cm)).object, ref, 'ConfigMap');
    if (p) return p;
  }
  return undefined;
}
