/**
 * Why a step fails or does not start (docs/operator.md "Failure forensics"). While a step's Job
 * runs, the reconcile reads the step's pods (its runner's and its agent pools': the run's uid,
 * attempt and step labels; one page of at most `POD_PAGE` pods, enough since a pool's pods share
 * their problems) and reads them with src/kube/pods.ts:
 *
 * - A pod stuck for `stuckAfterMs` (default 90 s, the operator's `--stuck-after-seconds`; raise it
 *   where a cluster autoscaler adds nodes for Unschedulable pods): an image that cannot be pulled
 *   (ImagePullBackOff, InvalidImageName), a missing Secret or ConfigMap
 *   (CreateContainerConfigError), a pod no node can take (Unschedulable, with the scheduler's
 *   message): the step fails at once instead of at its deadline. The operator writes the step's
 *   result itself (no measurement, `error` naming the reason, so its tests fail with it), deletes
 *   the step's Job and pools, sets the run's Progressing condition to the reason, and records a
 *   Warning Event with that reason. The time counts from the pod's creation (from the
 *   PodScheduled condition's transition for Unschedulable), so it needs no memory between reconciles.
 * - A Job that ended without a result: its failure names what ended its pods (OOMKilled with the
 *   container's memory limit, Evicted with the kubelet's message, NodeLost, an image the node
 *   cannot run) and the Job's own condition (DeadlineExceeded, BackoffLimitExceeded).
 *
 * Before a step's Job is created, the pools of the attempt's other steps are deleted (a runner
 * killed or failed leaves them; a dead step's agents must not load the next step's nodes).
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { API_VERSION_FULL, type StepResult } from '../api/schema.ts';
import { ATTEMPT_LABEL, RUN_UID_LABEL, STEP_LABEL, labelValue, stepResultName, type RunRef } from '../kube/names.ts';
import { createRefusals, podProblems, type PodProblem } from '../kube/pods.ts';
import type { Step } from '../plan/plan.ts';
import { RESULT_KEY } from '../platform/kubernetes/manifests.ts';
import { ownerProblem } from './attempt.ts';
import { nowIso, type Deps, type RunCtx } from './context.ts';
import { setCondition } from './desired.ts';
import { conditionsOf, recordEvent, writeStatus } from './status.ts';

/** A pod stuck this long fails its step (ms); the operator's `--stuck-after-seconds` changes it. */
export const STUCK_AFTER_MS = 90_000;
/** At most this many of a step's pods are read per look. */
export const POD_PAGE = 200;

const stepSelector = (ref: RunRef, attempt: number, step: string): string =>
  `${RUN_UID_LABEL}=${labelValue(ref.uid ?? '')},${ATTEMPT_LABEL}=${attempt},${STEP_LABEL}=${labelValue(step)}`;

/**
 * The problems of a step now: its pods' (one page), and the pods its controllers are refused to
 * create (kube/pods.ts `createRefusals`: a pool Deployment's ReplicaFailure condition; the Job's
 * FailedCreate Events, read only while the Job has no active pod).
 */
export async function stepProblems(deps: Deps, ref: RunRef, attempt: number, step: string, job?: V1Job): Promise<PodProblem[]> {
  const sel = stepSelector(ref, attempt, step);
  const pods: V1Pod[] = await deps.cluster.listPods(ref.namespace, sel, POD_PAGE);
  const deployments = await deps.cluster.listDeployments(ref.namespace, sel, POD_PAGE);
  const uid = job?.metadata?.uid;
  const jobEvents = uid && (job.status?.active ?? 0) === 0 ? await deps.cluster.listEvents(ref.namespace, `involvedObject.uid=${uid},reason=FailedCreate`, 20) : [];
  return [...podProblems(pods), ...createRefusals({ deployments, ...(job ? { job } : {}), jobEvents, step, nowMs: deps.now().getTime() })];
}

/** The problem that has kept a pod from starting for at least `stuckAfterMs`, the oldest first; else undefined. Pure. */
export function stuckProblem(problems: readonly PodProblem[], nowMs: number, stuckAfterMs: number): PodProblem | undefined {
  return problems
    .filter((p) => p.kind === 'stuck' && p.sinceMs !== null && nowMs - p.sinceMs >= stuckAfterMs)
    .sort((a, b) => a.sinceMs! - b.sinceMs!)[0];
}

/**
 * Why a Job ended without a result: the Job's failure condition and what ended its pods (each
 * reason once, the first pod's text), as `reason` (the pods' first reason, else the Job's) and one message. Pure.
 */
export function endedExplanation(job: V1Job, problems: readonly PodProblem[]): { reason: string; message: string } | undefined {
  const failed = job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
  const seen = new Set<string>();
  const parts: string[] = [];
  let reason: string | undefined;
  for (const p of problems) {
    if (seen.has(p.reason)) continue;
    seen.add(p.reason);
    reason ??= p.reason;
    parts.push(p.text);
  }
  if (!failed && parts.length === 0) return undefined;
  const jobPart = failed ? `${failed.reason ?? 'Failed'}${failed.message ? `: ${failed.message}` : ''}` : '';
  return { reason: reason ?? failed?.reason ?? 'Failed', message: [jobPart, ...parts].filter(Boolean).join('; ').slice(0, 1500) };
}

/**
 * Fails a step whose pods are stuck: the step's result (no measurement, `error` with the reason),
 * then its Job and pools deleted, the Progressing condition and a Warning Event. Returns the
 * failure's message, or undefined when the step's result ConfigMap already holds a result (or is
 * absent, or not the run's): the caller reads what is there. A result the runner writes in the
 * meantime makes the replace a 409, and the next reconcile reads it.
 */
export async function failStuckStep(deps: Deps, rc: RunCtx, attempt: number, step: Step, job: V1Job, problem: PodProblem): Promise<string | undefined> {
  const { ref, run } = rc;
  const forS = Math.round((deps.now().getTime() - problem.sinceMs!) / 1000);
  const message = `${problem.reason}: ${problem.text} (for ${forS} s); the step was stopped`;
  const name = stepResultName(ref.name, attempt, step.name);
  const cm = await deps.cluster.read('ConfigMap', ref.namespace, name, { live: true });
  // A result is there already (the runner's, or ours from a look whose Job the cache still shows): read that.
  if (!cm || ownerProblem(cm, ref, 'ConfigMap') || cm.data?.[RESULT_KEY] !== undefined) return undefined;
  {
    const now = nowIso(deps);
    const result: StepResult = {
      apiVersion: API_VERSION_FULL,
      kind: 'StepResult',
      step: step.name,
      category: step.category,
      attempt,
      startedAt: typeof job.metadata?.creationTimestamp === 'string' ? job.metadata.creationTimestamp : (job.metadata?.creationTimestamp?.toISOString() ?? now),
      finishedAt: now,
      node: '',
      measurements: [],
      error: message,
    };
    await deps.cluster.replace('ConfigMap', { ...cm, data: { ...cm.data, [RESULT_KEY]: JSON.stringify(result) } });
  }
  await deps.cluster.delete('Job', ref.namespace, job.metadata!.name!, job.metadata!.uid ?? '');
  await deps.cluster.deleteCollection('Deployment', ref.namespace, stepSelector(ref, attempt, step.name));
  deps.log.warn('step stuck', { run: ref.name, attempt, step: step.name, reason: problem.reason, message });
  const conditions = setCondition(
    conditionsOf(run),
    { type: 'Progressing', status: 'True', reason: problem.reason, message: `attempt ${attempt}: step ${step.name}: ${message}`.slice(0, 1024), observedGeneration: run.metadata.generation ?? 1 },
    nowIso(deps),
  );
  await writeStatus(deps, run, { conditions });
  await recordEvent(deps, run, { type: 'Warning', reason: problem.reason, message: `attempt ${attempt}: step ${step.name}: ${message}` });
  return message;
}

/** Deletes the pools of an attempt's steps other than `step` (a failed or dead step's agents). */
export async function deleteOtherPools(deps: Deps, ref: RunRef, attempt: number, step: string): Promise<void> {
  await deps.cluster.deleteCollection('Deployment', ref.namespace, `${RUN_UID_LABEL}=${labelValue(ref.uid ?? '')},${ATTEMPT_LABEL}=${attempt},${STEP_LABEL}!=${labelValue(step)}`);
}
