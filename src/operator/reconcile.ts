/**
 * The BenchmarkRun reconcile: the decisions. Level-triggered and idempotent: it reads the run and
 * what exists for its current attempt, decides, and hands the doing to attempt.ts, finish.ts,
 * cleanup.ts and status.ts; every API call goes through `RunCluster` (cluster.ts). In the order
 * the code runs them:
 *
 *  1. Read the run, live (not from the cache: the status it decides on must include what the
 *     last reconcile wrote, or it would start an attempt twice). Gone: nothing to do (owner
 *     references and the garbage collector remove its children).
 *  2. Validate the spec (what the CRD schema cannot catch: cross-field rules). Invalid is
 *     terminal: phase Failed, Ready=False/SpecInvalid naming the fields, a running attempt
 *     cancelled, no retry. A fixed spec is a new generation and starts an attempt.
 *  3. `spec.suspend`: a running attempt is cancelled (its Jobs and pools deleted, phase
 *     Cancelled); with no attempt yet the run waits as Pending.
 *  4. A new attempt starts when there is none yet, or when the last one finished and the spec
 *     has a new generation or the `swarmbench.io/rerun` annotation a new value. A spec change
 *     during a running attempt does not disturb it: it runs on its frozen params, and the new
 *     generation gets its own attempt afterwards. The previous attempt goes into the history.
 *  5. A finished attempt with nothing new: cleanup per policy and ttl.
 *  6. The attempt's frozen params and its agent-token Secret's name; a params ConfigMap that does
 *     not parse, or names a Secret the API server did not generate for the attempt, fails the
 *     attempt (ParamsInvalid) instead of failing the reconcile forever. Params the run does not control
 *     (an earlier run of the same name) are never read: Conflict, wait.
 *  7. Walk the steps in plan order, one at a time: a step is done when its result ConfigMap holds
 *     a valid result of this attempt; a step with neither result nor Job gets its runner access and
 *     Job (the pools of the attempt's other steps deleted first); a running Job waits (requeue
 *     after `pollMs`, and the Job's and ConfigMap's events wake it sooner) unless a pod of its step
 *     has been stuck for `stuckAfterMs` (forensics.ts: the step fails now with the reason); a Job
 *     that ended without a usable result fails its category's tests with the reason, naming what
 *     ended its pods (a StepFailed warning, once). An object of the run's names that the run does not
 *     control (its uid is not the controller) is never read, changed or deleted: the run gets the
 *     Conflict condition and waits (attempt.ts `waitOnConflict`).
 *  8. Every step done: finish (observations, baseline, result assembly, export, final status). A
 *     step failure is told once (StepFailed): the progress written after the event moves past it,
 *     also before a finish, and a finish whose export was already written is not done again
 *     (finish.ts: the export's document is reused, Prometheus is not queried twice).
 *  9. A request the API server refused for good (400, 413, 422, a 403 other than an exceeded
 *     quota: status.ts `refusalOf`) ends the attempt once: phase Failed, Degraded with the reason
 *     (`Rejected` or `Forbidden`) and the server's message, one Warning event, no requeue. The run
 *     is then finished and costs no write until it changes (a new generation or rerun annotation).
 *     Anything else (a 409, a 5xx, a lost connection) is thrown: the work queue retries it with backoff.
 * 10. A finished attempt (Succeeded or Failed) of a run with `spec.notify`: its notifications are
 *     handed to the Notifier's queue, and those that settled are recorded in
 *     `status.notifications` (notify.ts `notifyFinished`, docs/notifications.md). This runs before
 *     3. to 9. on every reconcile of a finished run, so an operator that restarts sends what was not
 *     recorded. `spec.notify`'s Secrets are admitted with the rest of the spec in 2. (`admitNotify`).
 */
import type { KubeConfig, V1ConfigMap } from '@kubernetes/client-node';
import { StepResult } from '../api/schema.ts';
import { formatErrors, validateSpec } from '../api/validate.ts';
import { splitKey } from '../kube/client.ts';
import { RERUN_ANNOTATION, jobName, stepResultName } from '../kube/names.ts';
import type { Logger } from '../log.ts';
import type { Params } from '../plan/params.ts';
import { buildPlan, type Step } from '../plan/plan.ts';
import { RESULT_KEY } from '../platform/kubernetes/manifests.ts';
import { RUNNER_CLUSTER_ROLE } from '../platform/kubernetes/rbac.ts';
import { attemptParams, ownerProblem, refuseAttempt, startAttempt, startStep, waitOnConflict, type Conflict } from './attempt.ts';
import { cleanupFinished, endAttempt, sweepPools } from './cleanup.ts';
import { KubeRunCluster, type ClusterCaches, type RunCluster } from './cluster.ts';
import type { Deps, ReconcileResult, RunCtx } from './context.ts';
import { conditionsFor, jobState, resolvedConflict, type GpuScheduling, type OperatorImages } from './desired.ts';
import type { IngressPeer } from './netpol.ts';
import { finishAttempt } from './finish.ts';
import { deleteOtherPools, endedExplanation, failStuckStep, STUCK_AFTER_MS, stepProblems, stuckProblem } from './forensics.ts';
import { admitNotify, notifyFinished, notifySettingsOf } from './notify.ts';
import { DEFAULT_ADMISSION, admitSpec, type AdmissionSettings } from './policy.ts';
import type { RunnerTries } from './tries.ts';
import { conditionsOf, recordEvent, refusalOf, writeStatus, type Refusal, type RunEvent } from './status.ts';

export type { RunObject } from './cluster.ts';
export type { ReconcileResult } from './context.ts';

export interface ReconcilerOptions {
  /** The cluster to talk to: `cluster` when given (tests pass a fake), else one built over `kc`. */
  kc?: KubeConfig;
  cluster?: RunCluster;
  /** The informer caches of Jobs and ConfigMaps the real cluster reads first (cluster.ts). */
  caches?: ClusterCaches;
  images: OperatorImages;
  log: Logger;
  version: string;
  /** The ClusterRole bound to each run's runner ServiceAccount (default `swarmbench-runner`). */
  runnerClusterRole?: string;
  /** GPU scheduling for runs without `spec.gpu` (default: the NVIDIA labels, taint and resource). */
  gpuDefaults?: GpuScheduling;
  /**
   * The operator's Prometheus (`--prometheus-url`, token from SWARMBENCH_PROMETHEUS_TOKEN): used for
   * the observations of runs that name no `spec.prometheus.url`. A run's own Prometheus wins.
   */
  prometheus?: { url: string; token?: string };
  /** Peers besides the run's own pods that may reach its agents (the scraping Prometheus; netpol.ts). */
  agentIngressFrom?: IngressPeer[];
  /** The administrator's metrics scrape token (`--metrics-token-file`), copied into new runs' token Secrets. */
  metricsToken?: string;
  /** The admission policy (policy.ts, `--admission`); default DEFAULT_ADMISSION (the chart's defaults). */
  admission?: AdmissionSettings;
  /** Re-check a running attempt at least this often even without events (ms). */
  pollMs?: number;
  /** A step's pod stuck this long (image, configuration, scheduling) fails the step (ms; default STUCK_AFTER_MS, forensics.ts). */
  stuckAfterMs?: number;
  /** What ended runner tries, from the operator's pod watch (tries.ts): told as Events while the Job goes on. */
  tries?: RunnerTries;
  /** Notifications (notify.ts): the process's Notifier and the chart's settings; absent: `spec.notify` is not acted on. */
  notify?: Deps['notify'];
  now?: () => Date;
}

/** Where a reconcile is, for a refusal (9.): starting a new attempt (with the rerun value it records), or not. */
interface Stage {
  starting: false | { rerun: string | undefined };
}

/** What a step is: done (its result), failed (why), running (requeue), or blocked by an object the run does not control. */
type StepState = { done: StepResult } | { failed: string } | { running: true; started: boolean; recheckMs?: number } | Conflict;

export class Reconciler {
  private readonly deps: Deps;

  constructor(opts: ReconcilerOptions) {
    const cluster = opts.cluster ?? (opts.kc ? new KubeRunCluster(opts.kc, opts.caches) : undefined);
    if (!cluster) throw new Error('Reconciler: give a cluster or a kc');
    this.deps = {
      cluster,
      log: opts.log,
      images: opts.images,
      version: opts.version,
      runnerClusterRole: opts.runnerClusterRole ?? RUNNER_CLUSTER_ROLE,
      gpuDefaults: opts.gpuDefaults,
      prometheus: opts.prometheus,
      agentIngressFrom: opts.agentIngressFrom,
      metricsToken: opts.metricsToken,
      admission: opts.admission,
      pollMs: opts.pollMs ?? 30_000,
      stuckAfterMs: opts.stuckAfterMs ?? STUCK_AFTER_MS,
      tries: opts.tries,
      notify: opts.notify,
      now: opts.now ?? (() => new Date()),
    };
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const deps = this.deps;
    const { namespace, name } = splitKey(key);
    // 1. The run, live.
    const run = await deps.cluster.getRun(namespace, name);
    if (!run) return;
    const status = run.status ?? {};
    const generation = run.metadata.generation ?? 1;
    const ref = { name, namespace, uid: run.metadata.uid };
    const attempt = status.attempt ?? 0;
    const finished = status.phase === 'Succeeded' || status.phase === 'Failed' || status.phase === 'Cancelled';
    const running = attempt > 0 && !finished;

    // 2. The spec.
    // The admission policy (policy.ts) after the schema: a violation is SpecInvalid too, naming the
    // field; an admitted spec carries the effective agents.resources (chart defaults applied). A
    // finished attempt with nothing new to start is not judged again (a policy tightened later, or a
    // Secret's consent withdrawn, does not rewrite a finished run's results).
    const settled = finished && attempt > 0 && status.observedGeneration === generation && (run.metadata.annotations?.[RERUN_ANNOTATION] ?? status.lastRerun ?? undefined) === (status.lastRerun ?? undefined);
    const schema = validateSpec(run.spec ?? {});
    const admission = deps.admission ?? DEFAULT_ADMISSION;
    // spec.notify's Secrets by the same consent rule (notify.ts `admitNotify`: after the policy, so that policy.ts need not import notify.ts).
    const v = settled ? schema : await admitNotify(await admitSpec(schema, run, admission, deps.cluster), run, notifySettingsOf(admission), deps.cluster);
    if (!v.ok) {
      const message = `the spec cannot run:\n${formatErrors(v.errors)}`;
      const event: RunEvent = { type: 'Warning', reason: 'SpecInvalid', message };
      const rc: RunCtx = { run, ref, spec: {} };
      if (running) return endAttempt(deps, rc, attempt, { phase: 'Failed', reason: 'SpecInvalid', message, event, observedGeneration: generation });
      const conditions = conditionsFor(conditionsOf(run), generation, 'Failed', 'SpecInvalid', message, deps.now().toISOString());
      await writeStatus(deps, run, { phase: 'Failed', observedGeneration: generation, conditions }, event);
      return;
    }
    const rc: RunCtx = { run, ref, spec: v.value };
    // 9. A refusal of the API server that a retry would meet again ends the attempt, once.
    const stage: Stage = { starting: false };
    try {
      // 10. The notifications of a finished attempt (notify.ts): queued, never waited on; what
      // settled is recorded in the status. Before 4., so a new attempt does not lose them.
      const notified = finished ? await notifyFinished(deps, rc) : undefined;
      return sooner(await this.decide(rc, attempt, finished, running, stage), notified);
    } catch (e) {
      const refusal = refusalOf(e);
      if (!refusal) throw e;
      return this.refused(rc, attempt, finished, stage, refusal);
    }
  }

  /** 3. to 8. for a run whose spec is valid. */
  private async decide(rc: RunCtx, attempt: number, finished: boolean, running: boolean, stage: Stage): Promise<ReconcileResult> {
    const deps = this.deps;
    const { run } = rc;
    const status = run.status ?? {};
    const generation = run.metadata.generation ?? 1;

    // 3. Suspend.
    if (rc.spec.suspend) {
      if (running) {
        return endAttempt(deps, rc, attempt, {
          phase: 'Cancelled',
          reason: 'Suspended',
          message: 'spec.suspend is true: the running attempt was cancelled',
          event: { type: 'Normal', reason: 'Cancelled', message: `attempt ${attempt} cancelled (spec.suspend)` },
          observedGeneration: generation,
        });
      }
      // Cancelled: the pools its runners may have left once they stopped.
      if (finished) return await sweepPools(deps, rc, attempt);
      if (attempt === 0 && status.phase !== 'Pending') {
        const conditions = conditionsFor(conditionsOf(run), generation, 'Pending', 'Suspended', 'spec.suspend is true: no attempt starts', deps.now().toISOString());
        await writeStatus(deps, run, { phase: 'Pending', observedGeneration: generation, conditions });
      }
      return;
    }

    // 4. A new attempt?
    const rerun = run.metadata.annotations?.[RERUN_ANNOTATION];
    const newGeneration = status.observedGeneration !== generation;
    const newRerun = rerun !== undefined && rerun !== (status.lastRerun ?? undefined);
    if (attempt === 0 || (finished && (newGeneration || newRerun))) {
      stage.starting = { rerun };
      return await startAttempt(deps, rc, attempt + 1, rerun);
    }

    // 5. Finished: the pools an attempt ended early left (once its runners stopped), then cleanup.
    if (finished) return (await sweepPools(deps, rc, attempt)) ?? (await cleanupFinished(deps, rc, attempt));

    // 6. The attempt's frozen params.
    const p = await attemptParams(deps, rc, attempt);
    if ('conflict' in p) return waitOnConflict(deps, rc, p);
    if ('invalid' in p) {
      const message = `attempt ${attempt} cannot go on: ${p.invalid}`;
      return endAttempt(deps, rc, attempt, { phase: 'Failed', reason: 'ParamsInvalid', message, event: { type: 'Warning', reason: 'ParamsInvalid', message } });
    }

    // 7. and 8.
    return await this.walk(rc, attempt, p.params, p.tokenSecret);
  }

  /**
   * 9. The API server refused a request for good (status.ts `refusalOf`: 400, 413, 422, a 403 that
   * is no exceeded quota): retrying would send the same request and meet the same answer, so the
   * attempt ends here, once. An attempt being started is recorded as a Failed one (attempt.ts
   * `refuseAttempt`); a running one ends Failed (its Jobs and pools deleted as far as the API server
   * lets us); both set Degraded with the reason and the server's message and record one Warning
   * event. Nothing is requeued: the run is finished, and a finished run is looked at again only
   * when it changes (a new generation or rerun annotation starts the next attempt). A finished
   * run whose cleanup is refused keeps its phase; the refusal is logged and the cleanup tried again
   * on the next event or resync only.
   */
  private async refused(rc: RunCtx, attempt: number, finished: boolean, stage: Stage, refusal: Refusal): Promise<ReconcileResult> {
    const deps = this.deps;
    const n = stage.starting ? attempt + 1 : attempt;
    const message = `attempt ${n}: the API server refused a request, and would refuse it again (${refusal.detail}); nothing more is tried until the run changes (a new spec generation or a new ${RERUN_ANNOTATION} annotation)`;
    if (stage.starting) return refuseAttempt(deps, rc, n, stage.starting.rerun, refusal.reason, message);
    if (finished) {
      deps.log.warn('cleanup of a finished attempt refused', { run: rc.ref.name, attempt, error: refusal.detail });
      return;
    }
    return endAttempt(deps, rc, attempt, { phase: 'Failed', reason: refusal.reason, message, event: { type: 'Warning', reason: refusal.reason, message }, bestEffort: true });
  }

  /** 7. The steps in plan order; 8. finish when every one is done. */
  private async walk(rc: RunCtx, attempt: number, params: Params, tokenSecret: string): Promise<ReconcileResult> {
    const deps = this.deps;
    const { run } = rc;
    const plan = buildPlan(params);
    // Steps before this index were already passed (and their failures told) by an earlier reconcile.
    const counted = run.status?.attempt === attempt ? (run.status.progress?.completedSteps ?? 0) : 0;
    const steps: StepResult[] = [];
    const failures: Record<string, string> = {};
    const told: RunEvent[] = [];
    for (const [i, step] of plan.entries()) {
      const s = await this.stepState(rc, attempt, plan, i, tokenSecret);
      if ('done' in s) {
        steps.push(s.done);
        continue;
      }
      if ('failed' in s) {
        failures[step.category] = s.failed;
        if (i >= counted) told.push({ type: 'Warning', reason: 'StepFailed', message: `attempt ${attempt}: ${s.failed}` });
        continue;
      }
      if ('conflict' in s) return waitOnConflict(deps, rc, s);
      // The events go out before the progress write moves `counted` past them: StepStarted only
      // from the call that created the Job, StepFailed at least once (again only if that write fails).
      if (s.started) told.push({ type: 'Normal', reason: 'StepStarted', message: `attempt ${attempt}: step ${step.name} (${i + 1}/${plan.length}) started` });
      for (const ev of told) await recordEvent(deps, run, ev);
      const conditions = resolvedConflict(conditionsOf(run), deps.now().toISOString());
      await writeStatus(deps, run, { progress: { completedSteps: i, totalSteps: plan.length, currentStep: step.name }, ...(conditions ? { conditions } : {}) });
      return { requeueAfterMs: Math.min(deps.pollMs, s.recheckMs ?? deps.pollMs) };
    }
    // Every step done: the failures not yet told go out once, and the progress moves past them
    // before the finish, which may wait (an export Conflict) or be retried (its status write failed):
    // a finish looked at again does not tell them again.
    if (told.length) {
      for (const ev of told) await recordEvent(deps, run, ev);
      await writeStatus(deps, run, { progress: { completedSteps: plan.length, totalSteps: plan.length, currentStep: '' } });
    }
    return finishAttempt(deps, rc, params, attempt, steps, failures);
  }

  private async stepState(rc: RunCtx, attempt: number, plan: Step[], i: number, tokenSecret: string): Promise<StepState> {
    const { cluster } = this.deps;
    const { ref } = rc;
    const step = plan[i]!;
    const resultName = stepResultName(ref.name, attempt, step.name);
    // The result while the Job may still run: from the cache (its update event wakes the run).
    const first = readResult(await cluster.read('ConfigMap', ref.namespace, resultName), rc, attempt, step.name);
    if ('result' in first) return { done: first.result };
    if ('conflict' in first) return first;
    const job = await cluster.read('Job', ref.namespace, jobName(ref.name, attempt, step.name));
    if (!job) {
      // The pools an earlier step of the attempt left (its runner killed or failed) go first.
      if (i > 0) await deleteOtherPools(this.deps, ref, attempt, step.name);
      const started = await startStep(this.deps, rc, attempt, plan, i, tokenSecret);
      return 'started' in started ? { running: true, started: started.started } : started;
    }
    const foreignJob = ownerProblem(job, ref, 'Job');
    if (foreignJob) return foreignJob;
    const st = jobState(job);
    if (st.state === 'Running') {
      // A try of the runner that ended (its node lost, OOMKilled, killed) while the Job goes on: told once (tries.ts).
      for (const t of this.deps.tries?.takeUntold(job.metadata?.uid ?? '') ?? []) {
        this.deps.log.warn('runner try ended', { run: ref.name, attempt, step: step.name, reason: t.reason, message: t.text });
        await recordEvent(this.deps, rc.run, {
          type: 'Warning', reason: t.reason, name: `${ref.name}.try-${t.podUid}`,
          message: `attempt ${attempt}: step ${step.name}: a try of the runner ended: ${t.text}; the Job retries the step`,
        });
      }
      // Forensics (forensics.ts): a pod of the step stuck for long fails the step now, not at its
      // deadline; one stuck for less is looked at again when its time is up (no pod event wakes the run).
      const problems = await stepProblems(this.deps, ref, attempt, step.name, job);
      const after = this.deps.stuckAfterMs ?? STUCK_AFTER_MS;
      const now = this.deps.now().getTime();
      const stuck = stuckProblem(problems, now, after);
      const failed = stuck ? await failStuckStep(this.deps, rc, attempt, step, job, stuck) : undefined;
      if (failed) return { failed };
      if (!stuck) {
        const next = problems.filter((p) => p.kind === 'stuck' && p.sinceMs !== null).map((p) => p.sinceMs! + after - now);
        return { running: true, started: false, ...(next.length ? { recheckMs: Math.max(1000, Math.min(...next) + 1000) } : {}) };
      }
    }
    // The Job ended (or was stopped): read the result once more, live (the cache may not have its last write yet).
    const again = readResult(await cluster.read('ConfigMap', ref.namespace, resultName, { live: true }), rc, attempt, step.name);
    if ('result' in again) return { done: again.result };
    if ('conflict' in again) return again;
    if ('problem' in again) return { failed: again.problem };
    if (st.state === 'Running') return { running: true, started: false };
    const why = endedExplanation(job, await stepProblems(this.deps, ref, attempt, step.name, job));
    return {
      failed:
        st.state === 'Failed'
          ? `the ${step.name} runner Job failed (${why?.message ?? st.message ?? 'no message'}) without a result`
          : `the ${step.name} runner Job completed without writing its result${why ? ` (${why.message})` : ''}`,
    };
  }
}

/** The earlier of two reconcile results (no requeue counts as never). */
function sooner(a: ReconcileResult, b: ReconcileResult): ReconcileResult {
  if (!a) return b;
  if (!b) return a;
  return a.requeueAfterMs <= b.requeueAfterMs ? a : b;
}

type ReadResult = { result: StepResult } | Conflict | { problem: string } | { none: true };

/**
 * What a step's result ConfigMap holds: a valid result of this attempt; nothing yet (absent, or
 * the empty one made for the runner); a document that cannot be used (not JSON, not a StepResult,
 * another attempt's: a problem, which fails the step only once its Job has ended, since the
 * runner replaces it); or a ConfigMap another owner controls (never read).
 */
function readResult(cm: V1ConfigMap | undefined, rc: RunCtx, attempt: number, step: string): ReadResult {
  if (!cm) return { none: true };
  const foreign = ownerProblem(cm, rc.ref, 'ConfigMap');
  if (foreign) return foreign;
  const text = cm.data?.[RESULT_KEY];
  if (text === undefined) return { none: true };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { problem: `the ${step} result is not JSON` };
  }
  const parsed = StepResult.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { problem: `the ${step} result is invalid: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'schema mismatch'}` };
  }
  if (parsed.data.attempt !== attempt) return { problem: `the ${step} result is of attempt ${parsed.data.attempt}, not of attempt ${attempt}: not used` };
  return { result: parsed.data };
}
