/**
 * The BenchmarkRun reconcile: level-triggered, idempotent. It reads the run and what exists for
 * its current attempt (params ConfigMap, step Jobs, step result ConfigMaps) and converges:
 *
 *  1. An invalid spec (what the CRD schema cannot catch: cross-field rules) is terminal: status
 *     phase Failed, Ready=False/SpecInvalid with the field messages; never retried. A fixed spec
 *     is a new generation and starts an attempt.
 *  2. A new attempt starts when there is none yet, or when the last one finished and the spec has
 *     a new generation or the `swarmbench.io/rerun` annotation has a new value. (A spec change
 *     during a running attempt does not disturb it: the attempt runs on the params frozen in its
 *     ConfigMap, and the new generation gets its own attempt afterwards.) The previous attempt's
 *     outcome goes into a bounded history (10).
 *  3. `spec.suspend` cancels a running attempt: its Jobs and agent pools are deleted, phase
 *     Cancelled.
 *  4. Steps run one at a time, in plan order: a step is done when its result ConfigMap holds a
 *     result; before its Job the run's runner identity and the step's empty result and seeds
 *     ConfigMaps are made (runnerAccess: the runner may update only those, by name); the Job is
 *     created (deterministic name: a retried create finds it) when there is neither; a
 *     Job that failed, or completed without a result, fails its category's tests with the reason.
 *  5. When every step is done: the verdict, recommendations and baseline comparison (from the
 *     report module), the export ConfigMap (results.json, summary.csv, junit.xml, report.md),
 *     and the status: phase Succeeded (verdict passed) or Failed, conditions, summary, tests.
 *  6. Cleanup after `cleanup.ttlSecondsAfterFinished` (default 0) per `cleanup.policy` (default
 *     OnSuccess): the attempt's Jobs, their pods and the step result ConfigMaps are deleted; the
 *     export ConfigMap is always kept (it is not owned by the run, so it outlives it).
 * The status is written only through /status and only when it changed.
 */
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  type KubeConfig,
  type V1ConfigMap,
  type V1Job,
} from '@kubernetes/client-node';
import {
  API_GROUP,
  API_VERSION,
  StepResult,
  type BenchmarkRunSpec,
  type BenchmarkRunStatus,
  type ResultDocument,
  type StepResult as StepResultT,
} from '../api/schema.ts';
import { formatErrors, validateSpec } from '../api/validate.ts';
import type { Logger } from '../log.ts';
import { parseParams, resolveParams, type Params } from '../plan/params.ts';
import { buildPlan, type Step } from '../plan/plan.ts';
import { RESULT_KEY } from '../platform/kubernetes/manifests.ts';
import { RUNNER_CLUSTER_ROLE } from '../platform/kubernetes/rbac.ts';
import { assembleResult, environmentOf } from '../report/assemble.ts';
import { parseResultDocument } from '../report/document.ts';
import { renderExports } from '../report/exports.ts';
import {
  conditionsFor,
  exportConfigMap,
  gpuScheduling,
  jobState,
  paramsConfigMap,
  runnerIdentity,
  stepConfigMaps,
  stepJob,
  type Condition,
  type GpuScheduling,
  type OperatorImages,
} from './desired.ts';
import { createOrGet, isNotFound, patchRunStatus, splitKey } from '../kube/client.ts';
import {
  BENCHMARKRUN_PLURAL, RERUN_ANNOTATION, exportName, jobName, paramsName, runLabels, stepResultName, type RunRef,
} from '../kube/names.ts';
import { observeSteps } from './observe.ts';
import { errorMessage } from '../errors.ts';

export interface RunObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; uid: string; generation?: number; annotations?: Record<string, string>; creationTimestamp?: string | Date };
  spec?: unknown;
  status?: BenchmarkRunStatus;
}

export interface ReconcilerOptions {
  kc: KubeConfig;
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
  /** Re-check a running attempt at least this often even without events (ms). */
  pollMs?: number;
  now?: () => Date;
}

export type ReconcileResult = void | { requeueAfterMs: number };

const HISTORY_MAX = 10;

export class Reconciler {
  private readonly core: CoreV1Api;
  private readonly batch: BatchV1Api;
  private readonly apps: AppsV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly rbac: RbacAuthorizationV1Api;
  private readonly opts: ReconcilerOptions;

  constructor(opts: ReconcilerOptions) {
    this.opts = opts;
    this.core = opts.kc.makeApiClient(CoreV1Api);
    this.batch = opts.kc.makeApiClient(BatchV1Api);
    this.apps = opts.kc.makeApiClient(AppsV1Api);
    this.custom = opts.kc.makeApiClient(CustomObjectsApi);
    this.rbac = opts.kc.makeApiClient(RbacAuthorizationV1Api);
  }

  private now(): string {
    return (this.opts.now?.() ?? new Date()).toISOString();
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    let run: RunObject;
    try {
      run = (await this.custom.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace, plural: BENCHMARKRUN_PLURAL, name })) as RunObject;
    } catch (e) {
      if (isNotFound(e)) return; // deleted: owner references and the garbage collector clean up.
      throw e;
    }
    const status: BenchmarkRunStatus = run.status ?? {};
    const generation = run.metadata.generation ?? 1;
    const ref: RunRef = { name, namespace, uid: run.metadata.uid };
    const log = this.opts.log;

    // 1. Spec validation (what the CRD cannot express).
    const v = validateSpec(run.spec ?? {});
    if (!v.ok) {
      const message = `the spec cannot run:\n${formatErrors(v.errors)}`;
      const conditions = conditionsFor((status.conditions ?? []) as Condition[], generation, 'Failed', 'SpecInvalid', message, this.now());
      await this.writeStatus(run, { phase: 'Failed', observedGeneration: generation, conditions }, 'SpecInvalid', message);
      return;
    }
    const spec = v.value;
    const attempt = status.attempt ?? 0;
    const phase = status.phase;
    const finished = phase === 'Succeeded' || phase === 'Failed' || phase === 'Cancelled';
    const rerun = run.metadata.annotations?.[RERUN_ANNOTATION];

    // 3. Suspend.
    if (spec.suspend) {
      if (attempt > 0 && !finished) {
        await this.deleteAttemptObjects(ref, attempt, { pools: true, results: false });
        const conditions = conditionsFor((status.conditions ?? []) as Condition[], generation, 'Cancelled', 'Suspended', 'spec.suspend is true: the running attempt was cancelled', this.now());
        await this.writeStatus(run, { phase: 'Cancelled', observedGeneration: generation, finishedAt: this.now(), conditions }, 'Cancelled', `attempt ${attempt} cancelled (spec.suspend)`);
      } else if (attempt === 0 && phase !== 'Pending') {
        const conditions = conditionsFor((status.conditions ?? []) as Condition[], generation, 'Pending', 'Suspended', 'spec.suspend is true: no attempt starts', this.now());
        await this.writeStatus(run, { phase: 'Pending', observedGeneration: generation, conditions });
      }
      return;
    }

    // 2. A new attempt?
    const newGeneration = status.observedGeneration !== generation;
    const newRerun = rerun !== undefined && rerun !== (status.lastRerun ?? undefined);
    if (attempt === 0 || (finished && (newGeneration || newRerun))) {
      return this.startAttempt(run, ref, spec, attempt + 1, rerun);
    }
    if (finished) return this.cleanup(run, ref, spec, attempt);

    // 4. Walk the plan.
    const params = await this.attemptParams(ref, attempt, spec);
    const plan = buildPlan(params);
    const steps: StepResultT[] = [];
    const failures: Record<string, string> = {};
    for (const [i, step] of plan.entries()) {
      const result = await this.readResult(ref, attempt, step.name);
      if (result && 'error' in result && !('measurements' in result)) {
        failures[step.category] = result.error;
        continue;
      }
      if (result) {
        steps.push(result as StepResultT);
        continue;
      }
      const job = await this.readJob(ref, attempt, step.name);
      if (!job) {
        await this.runnerAccess(ref, attempt, plan, step);
        const sched = step.fixture.gpu ? await this.gpuPlacement(run, spec, attempt) : null;
        const created = await createOrGet(
          () => this.batch.createNamespacedJob({ namespace: ref.namespace, body: stepJob(ref, attempt, step, spec, this.opts.images, sched) }),
          () => this.batch.readNamespacedJob({ namespace: ref.namespace, name: jobName(ref.name, attempt, step.name) }),
        );
        if (created.created) {
          log.info('step started', { run: ref.name, attempt, step: step.name });
          await this.event(run, 'Normal', 'StepStarted', `attempt ${attempt}: step ${step.name} (${i + 1}/${plan.length}) started`);
        }
        await this.writeStatus(run, { progress: { completedSteps: i, totalSteps: plan.length, currentStep: step.name } });
        return { requeueAfterMs: this.opts.pollMs ?? 30_000 };
      }
      const st = jobState(job);
      if (st.state === 'Running') {
        await this.writeStatus(run, { progress: { completedSteps: i, totalSteps: plan.length, currentStep: step.name } });
        return { requeueAfterMs: this.opts.pollMs ?? 30_000 };
      }
      // The Job ended; read the result once more (the informer may have been behind).
      const again = await this.readResult(ref, attempt, step.name);
      if (again && 'measurements' in again) {
        steps.push(again);
        continue;
      }
      failures[step.category] =
        st.state === 'Failed'
          ? `the ${step.name} runner Job failed (${st.message ?? 'no message'}) without a result`
          : `the ${step.name} runner Job completed without writing its result`;
      await this.event(run, 'Warning', 'StepFailed', `attempt ${attempt}: ${failures[step.category]}`);
    }

    // 5. Every step is done.
    return this.finish(run, ref, spec, params, attempt, steps, failures);
  }

  /** The GPU step's scheduling, or null (with a Warning event) when no node matches it. */
  private async gpuPlacement(run: RunObject, spec: BenchmarkRunSpec, attempt: number): Promise<GpuScheduling | null> {
    const sched = gpuScheduling(spec, this.opts.gpuDefaults);
    const selector = Object.entries(sched.nodeSelector).map(([k, v]) => `${k}=${v}`).join(',');
    const nodes = await this.core.listNode({ labelSelector: selector });
    if (nodes.items.length > 0) return sched;
    await this.event(run, 'Warning', 'NoGpuNode', `attempt ${attempt}: no node matches ${selector}; the gpu step runs on an ordinary node and the GPU-only tests report Skipped`);
    return null;
  }

  /**
   * Before a step's Job: the run's runner identity (ServiceAccount, the Role naming this attempt's
   * ConfigMaps, both RoleBindings) and the step's empty result and seeds ConfigMaps, which the
   * runner may update but not create. Idempotent: reads what exists, fixes a Role of an older
   * attempt, recreates a RoleBinding whose roleRef changed (roleRef is immutable).
   */
  private async runnerAccess(ref: RunRef, attempt: number, plan: Step[], step: Step): Promise<void> {
    const ns = ref.namespace;
    const want = runnerIdentity(ref, attempt, plan, this.opts.runnerClusterRole ?? RUNNER_CLUSTER_ROLE);
    await createOrGet(
      () => this.core.createNamespacedServiceAccount({ namespace: ns, body: want.serviceAccount }),
      () => this.core.readNamespacedServiceAccount({ namespace: ns, name: want.serviceAccount.metadata!.name! }),
    );
    const role = await createOrGet(
      () => this.rbac.createNamespacedRole({ namespace: ns, body: want.role }),
      () => this.rbac.readNamespacedRole({ namespace: ns, name: want.role.metadata!.name! }),
    );
    if (!role.created && !sameJson(role.object.rules, want.role.rules)) {
      await this.rbac.replaceNamespacedRole({
        namespace: ns,
        name: want.role.metadata!.name!,
        body: { ...want.role, metadata: { ...want.role.metadata, resourceVersion: role.object.metadata?.resourceVersion } },
      });
    }
    for (const b of want.bindings) {
      const name = b.metadata!.name!;
      const got = await createOrGet(
        () => this.rbac.createNamespacedRoleBinding({ namespace: ns, body: b }),
        () => this.rbac.readNamespacedRoleBinding({ namespace: ns, name }),
      );
      if (!got.created && !sameJson(got.object.roleRef, b.roleRef)) {
        await this.rbac.deleteNamespacedRoleBinding({ namespace: ns, name });
        await this.rbac.createNamespacedRoleBinding({ namespace: ns, body: b });
      }
    }
    for (const cm of stepConfigMaps(ref, attempt, step)) {
      await createOrGet(
        () => this.core.createNamespacedConfigMap({ namespace: ns, body: cm }),
        () => this.core.readNamespacedConfigMap({ namespace: ns, name: cm.metadata!.name! }),
      );
    }
  }

  private async startAttempt(run: RunObject, ref: RunRef, spec: BenchmarkRunSpec, attempt: number, rerun: string | undefined): Promise<ReconcileResult> {
    const status = run.status ?? {};
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
    await createOrGet(
      () => this.core.createNamespacedConfigMap({ namespace: ref.namespace, body: paramsConfigMap(ref, attempt, params) }),
      () => this.core.readNamespacedConfigMap({ namespace: ref.namespace, name: paramsName(ref.name, attempt) }),
    );
    const message = `attempt ${attempt}: ${plan.length} steps (${plan.map((s) => s.name).join(', ')})`;
    const conditions = conditionsFor((status.conditions ?? []) as Condition[], (run.metadata.generation ?? 1), 'Running', 'Running', message, this.now());
    await this.writeStatus(
      run,
      {
        phase: 'Running',
        attempt,
        observedGeneration: (run.metadata.generation ?? 1),
        startedAt: this.now(),
        finishedAt: null,
        progress: { completedSteps: 0, totalSteps: plan.length, currentStep: plan[0]?.name ?? '' },
        summary: null,
        tests: null,
        recommendations: null,
        comparison: null,
        export: null,
        ...(rerun !== undefined ? { lastRerun: rerun } : {}),
        history: history.slice(0, HISTORY_MAX),
        conditions,
      },
      'AttemptStarted',
      message,
    );
    this.opts.log.info('attempt started', { run: ref.name, attempt, steps: plan.length });
    return { requeueAfterMs: 0 };
  }

  /** The params frozen for the attempt; recreated from the current spec if someone deleted them. */
  private async attemptParams(ref: RunRef, attempt: number, spec: BenchmarkRunSpec): Promise<Params> {
    const { object } = await createOrGet(
      () => this.core.createNamespacedConfigMap({ namespace: ref.namespace, body: paramsConfigMap(ref, attempt, resolveParams(spec)) }),
      () => this.core.readNamespacedConfigMap({ namespace: ref.namespace, name: paramsName(ref.name, attempt) }),
    );
    return parseParams((object as V1ConfigMap).data?.['params.json'] ?? '', `ConfigMap ${paramsName(ref.name, attempt)} (params.json)`);
  }

  private async readResult(ref: RunRef, attempt: number, step: string): Promise<StepResultT | { error: string } | undefined> {
    let cm: V1ConfigMap;
    try {
      cm = await this.core.readNamespacedConfigMap({ namespace: ref.namespace, name: stepResultName(ref.name, attempt, step) });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    if (cm.metadata?.ownerReferences?.some((o) => o.controller && o.uid !== ref.uid)) {
      return { error: `result ConfigMap ${cm.metadata?.name} belongs to another owner` };
    }
    if (cm.data?.[RESULT_KEY] === undefined) return undefined; // created empty for the runner: not written yet
    try {
      const parsed = StepResult.safeParse(JSON.parse(cm.data?.['result.json'] ?? 'null'));
      if (!parsed.success) return { error: `the ${step} result is invalid: ${parsed.error.issues[0]?.message ?? 'schema mismatch'}` };
      if (parsed.data.attempt !== attempt) return { error: `the ${step} result is of attempt ${parsed.data.attempt}, not ${attempt}` };
      return parsed.data;
    } catch {
      return { error: `the ${step} result is not JSON` };
    }
  }

  private async readJob(ref: RunRef, attempt: number, step: string): Promise<V1Job | undefined> {
    try {
      return await this.batch.readNamespacedJob({ namespace: ref.namespace, name: jobName(ref.name, attempt, step) });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  private async finish(
    run: RunObject,
    ref: RunRef,
    spec: BenchmarkRunSpec,
    params: Params,
    attempt: number,
    steps: StepResultT[],
    failures: Record<string, string>,
  ): Promise<ReconcileResult> {
    const status = run.status ?? {};
    const times = steps.map((s) => s).sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    // Prometheus over each step's window (unavailable with a reason, never zero).
    const observations = await observeSteps({
      ...(await this.prometheusFor(ref, spec, params)),
      namespace: ref.namespace,
      run: ref.name,
      attempt,
      steps: steps.map((x) => ({ step: x.step, category: x.category, startedAt: x.startedAt, finishedAt: x.finishedAt })),
      extraQueries: params.monitoring.extraQueries,
      timeoutMs: 10_000,
    });
    const baseline = await this.baseline(ref, spec);
    const doc = assembleResult({
      run: { name: ref.name, namespace: ref.namespace, attempt },
      params,
      startedAt: status.startedAt ?? times[0]?.startedAt ?? this.now(),
      finishedAt: this.now(),
      steps,
      failures,
      environment: environmentOf('kubernetes', { params, steps, version: this.opts.version, ownAgentImage: this.opts.images.image }),
      observations,
      baseline: { doc: baseline.doc, source: baseline.name, failOnRegression: spec.baseline?.failOnRegression === true },
    });
    const files = renderExports(doc);
    const cmName = exportName(ref.name, spec.export?.configMapName);
    await this.upsertConfigMap(exportConfigMap(ref, cmName, attempt, files));
    const s = doc.summary;
    const phase = s.verdict === 'Passed' ? 'Succeeded' : 'Failed';
    const failed = doc.tests.filter((t) => t.result === 'Failed').map((t) => t.id);
    const message =
      `${s.passed}/${s.total} passed, ${s.skipped} skipped, success rate ${s.successRate ?? 'n/a'}%` +
      (failed.length ? `; failed: ${failed.join(', ')}` : '') +
      (baseline.note ? `; ${baseline.note}` : '');
    const regressed = doc.comparison ? { count: doc.comparison.regressed.length, names: doc.comparison.regressed } : undefined;
    const conditions = conditionsFor((status.conditions ?? []) as Condition[], (run.metadata.generation ?? 1), phase, phase === 'Succeeded' ? 'TargetsMet' : 'TargetsMissed', message, this.now(), regressed);
    await this.writeStatus(
      run,
      {
        phase,
        finishedAt: doc.run.finishedAt,
        progress: { completedSteps: buildPlan(params).length, totalSteps: buildPlan(params).length, currentStep: '' },
        summary: { ...withoutNull(s), passedOfTotal: `${s.passed}/${s.total}` },
        tests: doc.tests.map((t) => ({
          id: t.id,
          name: t.name,
          category: t.category,
          result: t.result,
          ...(t.value !== null ? { value: t.value } : {}),
          unit: t.unit,
          target: `${t.target.op}${t.target.value}`,
          ...(t.reason ? { reason: t.reason } : {}),
          ...(t.distribution ? { p95: t.distribution.p95 } : {}),
        })),
        recommendations: (doc.recommendations ?? []).map((r) => ({ priority: r.priority, category: r.category, message: `${r.message} ${r.suggestion}`.slice(0, 1000) })),
        comparison: doc.comparison
          ? {
              baseline: baseline.name ?? 'baseline',
              regressed: doc.comparison.regressed,
              improved: doc.comparison.improved,
            }
          : null,
        export: { configMapName: cmName },
        conditions,
      },
      phase === 'Succeeded' ? 'Succeeded' : 'Failed',
      `attempt ${attempt}: ${message}`,
      phase === 'Succeeded' ? 'Normal' : 'Warning',
    );
    this.opts.log.info('attempt finished', { run: ref.name, attempt, phase, passed: s.passed, total: s.total });
    return { requeueAfterMs: 0 };
  }


  /**
   * The Prometheus of the observations: the run's own (`spec.prometheus.url`, token from its
   * `bearerTokenSecretRef`), else the operator's (`--prometheus-url`), else none (a reason).
   */
  private async prometheusFor(ref: RunRef, spec: BenchmarkRunSpec, params: Params): Promise<{ url: string | null; token?: string }> {
    if (params.monitoring.prometheusUrl) return { url: params.monitoring.prometheusUrl, ...(await this.prometheusToken(ref, spec)) };
    const own = this.opts.prometheus;
    if (own) return { url: own.url, ...(own.token ? { token: own.token } : {}) };
    return { url: null };
  }

  /**
   * The bearer token of spec.prometheus.bearerTokenSecretRef: the only Secret the operator reads,
   * and only where the chart granted it by name (`rbac.prometheusTokenSecrets`); a refusal leaves
   * the queries unauthenticated and is logged (the runner gets the token through a secretKeyRef).
   */
  private async prometheusToken(ref: RunRef, spec: BenchmarkRunSpec): Promise<{ token?: string }> {
    const sel = spec.prometheus?.bearerTokenSecretRef;
    if (!sel) return {};
    try {
      const secret = await this.core.readNamespacedSecret({ namespace: ref.namespace, name: sel.name });
      const b64 = secret.data?.[sel.key];
      return b64 ? { token: Buffer.from(b64, 'base64').toString('utf8').trim() } : {};
    } catch (e) {
      this.opts.log.warn('prometheus token unreadable', { run: ref.name, secret: sel.name, error: errorMessage(e) });
      return {};
    }
  }

  /** spec.baseline: another run's export (runRef) or a ConfigMap holding an earlier results.json. */
  private async baseline(ref: RunRef, spec: BenchmarkRunSpec): Promise<{ doc?: ResultDocument; name?: string; note?: string }> {
    const b = spec.baseline;
    if (!b || (!b.runRef && !b.configMapRef)) return {};
    let cmName: string;
    let key = 'results.json';
    let label: string;
    if (b.configMapRef) {
      cmName = b.configMapRef.name;
      key = b.configMapRef.key ?? key;
      label = `configmap/${cmName}`;
    } else {
      try {
        const other = (await this.custom.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: ref.namespace, plural: BENCHMARKRUN_PLURAL, name: b.runRef! })) as RunObject;
        cmName = other.status?.export?.configMapName ?? exportName(b.runRef!, ((other.spec ?? {}) as BenchmarkRunSpec).export?.configMapName);
      } catch (e) {
        if (isNotFound(e)) return { note: `baseline run ${b.runRef} not found: no comparison` };
        throw e;
      }
      label = b.runRef!;
    }
    try {
      const cm = await this.core.readNamespacedConfigMap({ namespace: ref.namespace, name: cmName });
      const text = cm.data?.[key];
      if (!text) return { note: `baseline ${label} has no ${key}: no comparison` };
      return { doc: parseResultDocument(text, `${cmName}/${key}`), name: label };
    } catch (e) {
      if (isNotFound(e)) return { note: `baseline ConfigMap ${cmName} not found: no comparison` };
      return { note: `baseline ${label} unreadable: ${errorMessage(e)}` };
    }
  }

  private async cleanup(run: RunObject, ref: RunRef, spec: BenchmarkRunSpec, attempt: number): Promise<ReconcileResult> {
    const policy = spec.cleanup?.policy ?? 'OnSuccess';
    const phase = run.status?.phase;
    if (policy === 'Never' || (policy === 'OnSuccess' && phase !== 'Succeeded')) return;
    const ttlMs = (spec.cleanup?.ttlSecondsAfterFinished ?? 0) * 1000;
    const finishedAt = run.status?.finishedAt ? Date.parse(run.status.finishedAt) : 0;
    const left = finishedAt + ttlMs - (this.opts.now?.() ?? new Date()).getTime();
    if (left > 0) return { requeueAfterMs: Math.min(left + 100, 3_600_000) };
    await this.deleteAttemptObjects(ref, attempt, { pools: true, results: true });
  }

  /** Deletes an attempt's Jobs (with their pods), agent pools and, if asked, its result ConfigMaps. */
  private async deleteAttemptObjects(ref: RunRef, attempt: number, what: { pools: boolean; results: boolean }): Promise<void> {
    const selector = `swarmbench.io/run=${ref.name},swarmbench.io/attempt=${attempt}`;
    const ns = ref.namespace;
    await this.batch.deleteCollectionNamespacedJob({ namespace: ns, labelSelector: selector, propagationPolicy: 'Background' });
    if (what.pools) await this.apps.deleteCollectionNamespacedDeployment({ namespace: ns, labelSelector: selector, propagationPolicy: 'Background' });
    if (what.results) {
      await this.core.deleteCollectionNamespacedConfigMap({ namespace: ns, labelSelector: `${selector},swarmbench.io/component in (step-result,agent-seeds,params)` });
    }
  }

  private async upsertConfigMap(body: V1ConfigMap): Promise<void> {
    const ns = body.metadata!.namespace!;
    const name = body.metadata!.name!;
    const { object, created } = await createOrGet(
      () => this.core.createNamespacedConfigMap({ namespace: ns, body }),
      () => this.core.readNamespacedConfigMap({ namespace: ns, name }),
    );
    if (created) return;
    const cur = object as V1ConfigMap;
    if (JSON.stringify(cur.data) === JSON.stringify(body.data) && JSON.stringify(cur.metadata?.labels) === JSON.stringify(body.metadata?.labels)) return;
    await this.core.replaceNamespacedConfigMap({
      namespace: ns,
      name,
      body: { ...body, metadata: { ...body.metadata, resourceVersion: cur.metadata?.resourceVersion } },
    });
  }

  /**
   * Merge-patches the status when something in `patch` differs from what is there, and emits the
   * event that goes with the change (only when the patch really changed something, so a reconcile
   * run twice does not emit twice).
   */
  private async writeStatus(
    run: RunObject,
    patch: Record<string, unknown>,
    reason?: string,
    message?: string,
    type: 'Normal' | 'Warning' = reason === 'SpecInvalid' ? 'Warning' : 'Normal',
  ): Promise<void> {
    const cur = (run.status ?? {}) as Record<string, unknown>;
    const changed = Object.entries(patch).some(([k, v]) => !sameJson(cur[k], v));
    if (!changed) return;
    const updated = await patchRunStatus<BenchmarkRunStatus>(this.custom, run.metadata.namespace, run.metadata.name, patch);
    run.status = updated.status ?? run.status;
    if (reason && message) await this.event(run, type, reason, message);
  }

  private async event(run: RunObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = new Date();
    try {
      await this.core.createNamespacedEvent({
        namespace: run.metadata.namespace,
        body: {
          metadata: { generateName: `${run.metadata.name}.`, namespace: run.metadata.namespace, labels: runLabels(run.metadata.name, run.status?.attempt) },
          involvedObject: { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'BenchmarkRun', name: run.metadata.name, namespace: run.metadata.namespace, uid: run.metadata.uid },
          type,
          reason,
          message: message.slice(0, 1024),
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
          source: { component: 'swarmbench-operator' },
          reportingComponent: 'swarmbench.io/operator',
          reportingInstance: process.env.POD_NAME ?? 'swarmbench-operator',
        },
      });
    } catch (e) {
      this.opts.log.warn('event not recorded', { reason, error: errorMessage(e) });
    }
  }
}


/** The object without its null fields (a merge patch would delete them: absent is what we mean). */
function withoutNull<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null)) as T;
}

/** JSON equality for status comparison; null in a merge patch means "absent". */
function sameJson(a: unknown, b: unknown): boolean {
  if (b === null) return a === undefined || a === null;
  return JSON.stringify(normalise(a)) === JSON.stringify(normalise(b));
}

function normalise(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalise);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => x !== undefined)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, x]) => [k, normalise(x)]),
    );
  }
  return v;
}
