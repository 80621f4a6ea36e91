/**
 * Removing what an attempt made (docs/operator.md "Cleanup", "Suspend"):
 *
 * - `cleanupFinished`: per `cleanup.policy`, the finished attempt's Jobs (their pods with them),
 *   agent pools and step ConfigMaps (results, seeds, params) are deleted: with `OnSuccess` (the
 *   default) a Succeeded attempt after `ttlSecondsAfterFinished` (default 0) and a Failed or
 *   Cancelled one after `ttlSecondsAfterFailure` (default `FAILURE_TTL_SECONDS`, a day: kept for
 *   inspection, then cleaned, so failed runs do not hold pods and ConfigMaps for ever); with
 *   `Always` every finished attempt after `ttlSecondsAfterFinished`; with `Never` none. Nothing
 *   is sent when none of its Jobs and ConfigMaps is left (as the cache sees it: a late one
 *   brings its own event), so a resync of a finished run costs no write. The export
 *   ConfigMap is always kept (it goes with the run, through the garbage collector).
 * - `endAttempt`: an attempt that ends before its steps did: `spec.suspend` (phase Cancelled),
 *   params that cannot be read (ParamsInvalid), a spec that became invalid (SpecInvalid) or a
 *   request the API server refused for good (Rejected, Forbidden: status.ts `refusalOf`), all but
 *   the first phase Failed. Its Jobs and pools are deleted, its ConfigMaps kept (cleanup decides
 *   those), and the status and event say why. With `bestEffort` (a refusal: the deletes may be
 *   refused too) a delete that fails is logged and the status is written all the same, so the
 *   attempt ends once instead of failing the reconcile again and again.
 *
 * Only what the run controls is deleted (docs/operator.md "Ownership"): Jobs and ConfigMaps are
 * listed by the run's labels, and each one whose controller is the run's uid is deleted by name
 * with that uid as precondition; an object that merely carries the labels (someone else's, an
 * earlier run's of the same name) is left alone. Agent pools (which the operator may only delete
 * as a collection: it has no list on Deployments) are selected by the run's uid label
 * (`swarmbench.io/run-uid`), which only the run's runner sets on the Deployments it creates.
 */
import type { V1Job } from '@kubernetes/client-node';
import { errorMessage } from '../errors.ts';
import { ATTEMPT_LABEL, COMPONENT, COMPONENT_LABEL, RUN_LABEL, RUN_UID_LABEL, belongsTo, labelValue, type RunRef } from '../kube/names.ts';
import { nowIso, type Deps, type ReconcileResult, type RunCtx } from './context.ts';
import { conditionsFor } from './desired.ts';
import { POD_PAGE } from './forensics.ts';
import { conditionsOf, writeStatus, type RunEvent } from './status.ts';

const attemptSelector = (ref: RunRef, attempt: number): string => `${RUN_LABEL}=${labelValue(ref.name)},${ATTEMPT_LABEL}=${attempt}`;
const configMapsSelector = (ref: RunRef, attempt: number): string =>
  `${attemptSelector(ref, attempt)},${COMPONENT_LABEL} in (${COMPONENT.stepResult},${COMPONENT.seeds},${COMPONENT.params})`;

/** With `OnSuccess`: how long a Failed or Cancelled attempt is kept for inspection by default (s). */
export const FAILURE_TTL_SECONDS = 86_400;

/** Seconds after the attempt finished before its cleanup, or null when the policy keeps it. */
export function cleanupTtlSeconds(cleanup: RunCtx['spec']['cleanup'], phase: string | undefined): number | null {
  const policy = cleanup?.policy ?? 'OnSuccess';
  if (policy === 'Never') return null;
  if (policy === 'OnSuccess' && phase !== 'Succeeded') return cleanup?.ttlSecondsAfterFailure ?? FAILURE_TTL_SECONDS;
  return cleanup?.ttlSecondsAfterFinished ?? 0;
}

export async function cleanupFinished(deps: Deps, rc: RunCtx, attempt: number): Promise<ReconcileResult> {
  const { run, ref, spec } = rc;
  const policy = spec.cleanup?.policy ?? 'OnSuccess';
  const ttl = cleanupTtlSeconds(spec.cleanup, run.status?.phase);
  if (ttl === null) return;
  const ttlMs = ttl * 1000;
  const finishedAt = run.status?.finishedAt ? Date.parse(run.status.finishedAt) : 0;
  const left = finishedAt + ttlMs - deps.now().getTime();
  if (left > 0) return { requeueAfterMs: Math.min(left + 100, 3_600_000) };
  const jobs = (await deps.cluster.list('Job', ref.namespace, attemptSelector(ref, attempt))).filter((o) => belongsTo(o, ref.uid));
  const cms = (await deps.cluster.list('ConfigMap', ref.namespace, configMapsSelector(ref, attempt))).filter((o) => belongsTo(o, ref.uid));
  if (jobs.length === 0 && cms.length === 0) return;
  deps.log.info('cleanup', { run: ref.name, attempt, policy, jobs: jobs.length, configMaps: cms.length });
  await deleteAttemptObjects(deps, ref, attempt, { results: true });
}

/**
 * A runner pod being stopped has until its `deletionTimestamp` (the deletion's time plus its grace
 * period) to write what it finished and close its own pools; the operator deletes what is left
 * this long after that.
 */
export const RUNNER_STOP_SLACK_MS = 10_000;
/**
 * The Jobs and pools of an attempt that ended early are deleted this long after its end whatever
 * its runner pods are doing (a node that does not stop them).
 */
export const RUNNER_STOP_MS = 300_000;
/** How often the sweep looks while the runners are still stopping (ms). */
const SWEEP_POLL_MS = 5_000;
/**
 * What an attempt that ended early left is looked for this long after its end (ms): past
 * `RUNNER_STOP_MS` it is deleted on the first look, so later resyncs list nothing. (An operator
 * down all that time leaves it to the cleanup, which deletes the attempt's Jobs and pools.)
 */
export const SWEEP_WINDOW_MS = RUNNER_STOP_MS + 12 * SWEEP_POLL_MS;

/** Whether a Job has ended (its Complete or Failed condition is True). */
const jobFinished = (job: V1Job): boolean => !!job.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');

const attemptPods = (ref: RunRef, attempt: number): string => `${RUN_UID_LABEL}=${labelValue(ref.uid ?? '')},${ATTEMPT_LABEL}=${attempt}`;

/**
 * The Jobs and pools of an attempt that ended early (Failed, Cancelled), once its runners have
 * stopped. `endAttempt` suspends the Jobs: the Job controller stops each runner (SIGTERM) at once
 * while its agents still answer, and the runner writes the measurements it finished and the
 * interruption, then closes its own pools. (Deleting the Jobs and pools together made the
 * runner's last request fail with ECONNREFUSED, which its result then reported instead of the
 * interruption; and a deleted Job's pods wait for the garbage collector, which a busy cluster
 * took more than a minute to get to.) The Jobs, and the pools still running, are deleted once no
 * runner pod is left, or every runner pod is `RUNNER_STOP_SLACK_MS` past its deletionTimestamp
 * (the end of its grace period), or `RUNNER_STOP_MS` after the end. Looked for only during
 * `SWEEP_WINDOW_MS` after the end (the Jobs from the cache, one page of pods), so a finished
 * run's resyncs cost nothing after it. Returns a requeue while runners are still stopping.
 */
export async function sweepPools(deps: Deps, rc: RunCtx, attempt: number): Promise<ReconcileResult> {
  const { run, ref } = rc;
  const st = run.status ?? {};
  if (st.phase === 'Succeeded' || !st.finishedAt) return;
  const now = deps.now().getTime();
  const since = now - Date.parse(st.finishedAt);
  if (!(since >= 0 && since < SWEEP_WINDOW_MS)) return;
  // Only an attempt `endAttempt` stopped has suspended Jobs (a finished one's Jobs are complete).
  const jobs = (await deps.cluster.list('Job', ref.namespace, attemptSelector(ref, attempt))).filter((o) => belongsTo(o, ref.uid) && !o.metadata?.deletionTimestamp && o.spec?.suspend === true);
  if (jobs.length === 0) return;
  const pods = await deps.cluster.listPods(ref.namespace, attemptPods(ref, attempt), POD_PAGE);
  const runners = pods.filter((p) => p.metadata?.labels?.[COMPONENT_LABEL] === COMPONENT.runner);
  const agents = pods.filter((p) => p.metadata?.labels?.[COMPONENT_LABEL] === COMPONENT.agent && !p.metadata?.deletionTimestamp);
  const stopped = (p: (typeof pods)[number]): boolean => !!p.metadata?.deletionTimestamp && now >= new Date(p.metadata.deletionTimestamp).getTime() + RUNNER_STOP_SLACK_MS;
  if (runners.every(stopped) || since >= RUNNER_STOP_MS) {
    deps.log.info('deleting what an ended attempt left', { run: ref.name, attempt, jobs: jobs.length, agents: agents.length, runnersLeft: runners.length });
    await deleteAttemptObjects(deps, ref, attempt, { results: false });
    return;
  }
  return { requeueAfterMs: SWEEP_POLL_MS };
}

/**
 * Ends a running attempt early: stops its runners, deletes its Jobs and pools, writes the phase
 * and conditions, tells why. Where a runner pod runs, its Jobs are suspended here (the runner
 * writes what it finished) and deleted with the pools once the runners stopped (`sweepPools`);
 * with `bestEffort` (a refusal: the calls may be refused too), or without a runner pod, all is
 * deleted at once.
 */
export async function endAttempt(
  deps: Deps,
  rc: RunCtx,
  attempt: number,
  end: { phase: 'Cancelled' | 'Failed'; reason: string; message: string; event: RunEvent; observedGeneration?: number; bestEffort?: boolean },
): Promise<ReconcileResult> {
  const { run, ref } = rc;
  let deferred = false;
  try {
    if (!end.bestEffort) {
      const pods = await deps.cluster.listPods(ref.namespace, `${attemptPods(ref, attempt)},${COMPONENT_LABEL}=${COMPONENT.runner}`, POD_PAGE);
      deferred = pods.some((p) => !p.metadata?.deletionTimestamp);
    }
    if (deferred) {
      // Only a Job still running is suspended (a finished one has nothing to stop); without one
      // (the step ended meanwhile), everything goes at once.
      let suspended = 0;
      for (const job of await deps.cluster.list('Job', ref.namespace, attemptSelector(ref, attempt))) {
        if (!belongsTo(job, ref.uid) || jobFinished(job)) continue;
        await deps.cluster.suspendJob(ref.namespace, job.metadata!.name!, job.metadata!.uid!);
        suspended++;
      }
      deferred = suspended > 0;
    }
    if (!deferred) await deleteAttemptObjects(deps, ref, attempt, { results: false });
  } catch (e) {
    if (!end.bestEffort) throw e;
    deps.log.warn('attempt ended: its Jobs and pools could not all be deleted', { run: ref.name, attempt, error: errorMessage(e) });
  }
  const generation = end.observedGeneration ?? run.status?.observedGeneration ?? run.metadata.generation ?? 1;
  const now = nowIso(deps);
  await writeStatus(
    deps,
    run,
    {
      phase: end.phase,
      observedGeneration: generation,
      finishedAt: now,
      conditions: conditionsFor(conditionsOf(run), generation, end.phase, end.reason, end.message, now),
    },
    end.event,
  );
  deps.log.info('attempt ended', { run: ref.name, attempt, phase: end.phase, reason: end.reason, ...(deferred ? { jobs: 'suspended; deleted with the pools once the runners stopped' } : {}) });
  return deferred ? { requeueAfterMs: SWEEP_POLL_MS } : undefined;
}

/** Deletes an attempt's Jobs (with their pods), agent pools and, if asked, its step ConfigMaps: only what the run controls. */
async function deleteAttemptObjects(deps: Deps, ref: RunRef, attempt: number, what: { results: boolean; pools?: boolean }): Promise<void> {
  const c = deps.cluster;
  for (const job of await c.list('Job', ref.namespace, attemptSelector(ref, attempt))) {
    if (belongsTo(job, ref.uid)) await c.delete('Job', ref.namespace, job.metadata!.name!, job.metadata!.uid!);
  }
  if (what.pools !== false) await c.deleteCollection('Deployment', ref.namespace, attemptPods(ref, attempt));
  if (!what.results) return;
  for (const cm of await c.list('ConfigMap', ref.namespace, configMapsSelector(ref, attempt))) {
    if (belongsTo(cm, ref.uid)) await c.delete('ConfigMap', ref.namespace, cm.metadata!.name!, cm.metadata!.uid!);
  }
}
