/**
 * Finishing an attempt whose steps are all done (docs/operator.md "Finish"):
 *
 * 1. the Prometheus observations over each step's window (observe.ts; the run's own Prometheus,
 *    its token from `bearerTokenSecretRef`, else the operator's; unavailable is a reason, never a
 *    zero);
 * 2. the baseline: another run's export (`spec.baseline.runRef`) or a ConfigMap holding an
 *    earlier results.json (`configMapRef`); a missing or unreadable one is a note, not an error;
 * 3. the result document from src/report/assemble.ts (the assembly `swarmbench run` uses);
 * 4. the export ConfigMap with every file of `EXPORT_FILES` (created, or replaced when it differs),
 *    controlled by the run. An existing ConfigMap of that name that the run does not control
 *    (`spec.export.configMapName` naming someone's ConfigMap, an earlier run's export) is never
 *    overwritten: a Conflict, checked before the observations are gathered and again at the write;
 * 5. the final status: phase Succeeded (verdict Passed) or Failed, summary, tests,
 *    recommendations, comparison, export, the observations in short (`observations`:
 *    report/observations.ts `observationStatus`, with this attempt's number), conditions; and
 *    the Succeeded / Failed event.
 *
 * The result's `environment` is the runners' (each step's `environment`, assemble.ts
 * `environmentOf`), never this operator's process.
 *
 * Done once per attempt: when the run's export ConfigMap already holds this attempt's document (a
 * finish whose status write failed, or whose operator died after the export), 1. to 4. are not
 * done again: that document gives the status, so Prometheus is queried once per attempt and the
 * result does not change between two looks. An export the API server refuses (a 422: larger than
 * a ConfigMap may be) is a refusal (reconcile.ts 9.): the attempt fails once with the reason.
 */
import type { V1ConfigMap } from '@kubernetes/client-node';
import { MAX_BASELINE_POOL, type BenchmarkRunSpec, type ResultDocument, type StepResult } from '../api/schema.ts';
import { errorMessage } from '../errors.ts';
import { ATTEMPT_LABEL, belongsTo, exportName, type RunRef } from '../kube/names.ts';
import type { Params } from '../plan/params.ts';
import { buildPlan } from '../plan/plan.ts';
import { assembleResult, environmentOf } from '../report/assemble.ts';
import { comparisonRefusal, differenceText } from '../report/fingerprint.ts';
import { parseResultDocument } from '../report/document.ts';
import { renderExports } from '../report/exports.ts';
import { observationStatus } from '../report/observations.ts';
import { ownerProblem, waitOnConflict, type Conflict } from './attempt.ts';
import { ensure, idOf } from './cluster.ts';
import { nowIso, type Deps, type ReconcileResult, type RunCtx } from './context.ts';
import { conditionsFor, exportConfigMap } from './desired.ts';
import { observeSteps } from './observe.ts';
import { conditionsOf, sameJson, withoutNull, writeStatus } from './status.ts';

/** What a finished run's status says of its result document: the summary, each test, the recommendations. Pure. */
export function resultStatus(doc: ResultDocument): { summary: Record<string, unknown>; tests: Record<string, unknown>[]; recommendations: Record<string, unknown>[] } {
  const s = doc.summary;
  return {
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
  };
}

export async function finishAttempt(
  deps: Deps,
  rc: RunCtx,
  params: Params,
  attempt: number,
  steps: StepResult[],
  failures: Record<string, string>,
): Promise<ReconcileResult> {
  const { run, ref, spec } = rc;
  const status = run.status ?? {};
  const cmName = exportName(ref.name, spec.export?.configMapName);
  const existing = await deps.cluster.read('ConfigMap', ref.namespace, cmName, { live: true });
  const early = existing && ownerProblem(existing, ref, 'ConfigMap');
  if (early) return waitOnConflict(deps, rc, early);
  // The export of this attempt, written by an earlier finish whose status write did not happen:
  // its document is the attempt's result, nothing is observed (Prometheus) or assembled again.
  const written = existing ? exportedDocument(existing, ref, attempt) : undefined;
  let doc: ResultDocument;
  let baseline: { name?: string | undefined; note?: string | undefined };
  if (written) {
    doc = written;
    const b = !doc.comparison && spec.baseline ? await baselineOf(deps, ref, spec) : undefined;
    baseline = { name: doc.comparison?.baseline.source, ...(b ? { note: b.note ?? refusalNote(doc, b) } : {}) };
    deps.log.info('export of this attempt found: its result is used, not assembled again', { run: ref.name, attempt, configMap: cmName });
  } else {
    const times = [...steps].sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    const observations = await observeSteps({
      ...(await prometheusFor(deps, ref, spec, params)),
      namespace: ref.namespace,
      run: ref.name,
      attempt,
      steps: steps.map((x) => ({ step: x.step, category: x.category, startedAt: x.startedAt, finishedAt: x.finishedAt })),
      extraQueries: params.monitoring.extraQueries,
      timeoutMs: 10_000,
    });
    const base = await baselineOf(deps, ref, spec);
    baseline = base;
    doc = assembleResult({
      run: { name: ref.name, namespace: ref.namespace, attempt },
      params,
      startedAt: status.startedAt ?? times[0]?.startedAt ?? nowIso(deps),
      finishedAt: nowIso(deps),
      steps,
      failures,
      environment: environmentOf('kubernetes', { params, steps, version: deps.version, ownAgentImage: deps.images.image }),
      observations,
      baseline: { doc: base.doc, pool: base.pool, source: base.name, failOnRegression: spec.baseline?.failOnRegression === true },
    });
    const refused = refusalNote(doc, base);
    if (refused) baseline = { ...base, note: refused };
    const conflict = await upsertConfigMap(deps, ref, exportConfigMap(ref, cmName, attempt, renderExports(doc)));
    if (conflict) return waitOnConflict(deps, rc, conflict);
  }

  const s = doc.summary;
  const phase = s.verdict === 'Passed' ? 'Succeeded' : 'Failed';
  const failed = doc.tests.filter((t) => t.result === 'Failed').map((t) => t.id);
  const message =
    `${s.passed}/${s.total} passed, ${s.skipped} skipped, success rate ${s.successRate ?? 'n/a'}%` +
    (failed.length ? `; failed: ${failed.join(', ')}` : '') +
    (baseline.note ? `; ${baseline.note}` : '');
  const regressed = doc.comparison ? { count: doc.comparison.regressed.length, names: doc.comparison.regressed } : undefined;
  // The conditions speak for the generation this attempt ran (a spec changed mid-run is not yet observed).
  const generation = status.observedGeneration ?? run.metadata.generation ?? 1;
  const conditions = conditionsFor(conditionsOf(run), generation, phase, phase === 'Succeeded' ? 'TargetsMet' : 'TargetsMissed', message, nowIso(deps), regressed);
  const total = buildPlan(params).length;
  const observed = doc.observations ? observationStatus(doc.observations, attempt) : undefined;
  await writeStatus(
    deps,
    run,
    {
      phase,
      finishedAt: doc.run.finishedAt,
      progress: { completedSteps: total, totalSteps: total, currentStep: '' },
      ...resultStatus(doc),
      comparison: doc.comparison ? { baseline: baseline.name ?? 'baseline', regressed: doc.comparison.regressed, improved: doc.comparison.improved } : null,
      export: { configMapName: cmName },
      // A merge patch keeps nested fields it does not name: an earlier attempt's reason is deleted.
      observations: observed ? { ...observed, reason: observed.reason ?? null } : null,
      conditions,
    },
    { type: phase === 'Succeeded' ? 'Normal' : 'Warning', reason: phase, message: `attempt ${attempt}: ${message}` },
  );
  deps.log.info('attempt finished', { run: ref.name, attempt, phase, passed: s.passed, total: s.total });
  return { requeueAfterMs: 0 };
}

/**
 * The result document of `attempt` in the run's own export ConfigMap (labelled with the attempt,
 * results.json a valid document of this run and attempt), else undefined: an export of another
 * attempt, or one that does not parse, is assembled and written anew.
 */
export function exportedDocument(cm: V1ConfigMap, ref: RunRef, attempt: number): ResultDocument | undefined {
  if (!belongsTo(cm, ref.uid) || cm.metadata?.labels?.[ATTEMPT_LABEL] !== String(attempt)) return undefined;
  const text = cm.data?.['results.json'];
  if (!text) return undefined;
  try {
    const doc = parseResultDocument(text, `ConfigMap ${cm.metadata?.name}/results.json`);
    return doc.run.attempt === attempt && doc.run.name === ref.name ? doc : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Creates the ConfigMap, or replaces it (with the resourceVersion read live, so an object swapped
 * in between is a 409, never overwritten) when its data or labels differ; only one the run
 * controls. One it does not control: the Conflict, nothing written.
 */
async function upsertConfigMap(deps: Deps, ref: RunRef, body: V1ConfigMap): Promise<Conflict | undefined> {
  const { object: cur, created } = await ensure(deps.cluster, 'ConfigMap', body);
  if (created) return undefined;
  const problem = ownerProblem(cur, ref, 'ConfigMap');
  if (problem) return problem;
  if (sameJson(cur.data, body.data) && sameJson(cur.metadata?.labels, body.metadata?.labels)) return undefined;
  const { name } = idOf(body);
  deps.log.info('export ConfigMap replaced', { name });
  await deps.cluster.replace('ConfigMap', { ...body, metadata: { ...body.metadata, resourceVersion: cur.metadata?.resourceVersion } });
  return undefined;
}

/**
 * The Prometheus of the observations: the run's own (`spec.prometheus.url`, token from its
 * `bearerTokenSecretRef`), else the operator's (`--prometheus-url`), else none (a reason).
 */
async function prometheusFor(deps: Deps, ref: RunRef, spec: BenchmarkRunSpec, params: Params): Promise<{ url: string | null; token?: string }> {
  if (params.monitoring.prometheusUrl) return { url: params.monitoring.prometheusUrl, ...(await prometheusToken(deps, ref, spec)) };
  const own = deps.prometheus;
  if (own) return { url: own.url, ...(own.token ? { token: own.token } : {}) };
  return { url: null };
}

/**
 * The bearer token of spec.prometheus.bearerTokenSecretRef: the only Secret the operator reads,
 * and only where the chart granted it by name (`rbac.prometheusTokenSecrets`); a refusal leaves
 * the queries unauthenticated and is logged (the runner gets the token through a secretKeyRef).
 */
async function prometheusToken(deps: Deps, ref: RunRef, spec: BenchmarkRunSpec): Promise<{ token?: string }> {
  const sel = spec.prometheus?.bearerTokenSecretRef;
  if (!sel) return {};
  try {
    const b64 = (await deps.cluster.readSecret(ref.namespace, sel.name))?.data?.[sel.key];
    return b64 ? { token: Buffer.from(b64, 'base64').toString('utf8').trim() } : {};
  } catch (e) {
    deps.log.warn('prometheus token unreadable', { run: ref.name, secret: sel.name, error: errorMessage(e) });
    return {};
  }
}

/**
 * Why a baseline that was read was not compared: its fingerprint differs from this run's in
 * something that matters (src/report/fingerprint.ts), named in the run's message (bounded).
 */
function refusalNote(doc: ResultDocument, base: Baseline): string | undefined {
  if (!base.doc || doc.comparison) return undefined;
  const r = comparisonRefusal(doc, base.doc);
  if (!r) return undefined;
  const text = `baseline ${base.name ?? ''} not compared, it was not measured like this run: ${r.differences.map(differenceText).join('; ')}`;
  return text.length > 1000 ? `${text.slice(0, 999)}…` : text;
}

/**
 * spec.baseline: another run's export (runRef; that run is read live, like our own), the exports
 * of several runs (pool: their samples are pooled; those unreadable are named in the note and the
 * rest compared), or a ConfigMap holding an earlier results.json. The ConfigMap may come from the
 * cache: an export is written once per attempt, and a user's ConfigMap (not labelled for the
 * cache) is read live.
 */
async function baselineOf(deps: Deps, ref: RunRef, spec: BenchmarkRunSpec): Promise<Baseline> {
  const b = spec.baseline;
  if (!b) return {};
  if (b.configMapRef) return readBaseline(deps, ref, b.configMapRef.name, b.configMapRef.key ?? 'results.json', `configmap/${b.configMapRef.name}`);
  const names = b.runRef ? [b.runRef] : (b.pool ?? []).slice(0, MAX_BASELINE_POOL);
  if (names.length === 0) return {};
  const read: Baseline[] = [];
  for (const name of names) read.push(await runExport(deps, ref, name));
  const docs = read.flatMap((r) => (r.doc ? [{ doc: r.doc, name: r.name! }] : []));
  const notes = read.flatMap((r) => (r.note ? [r.note] : []));
  const note = notes.length ? notes.join('; ').slice(0, 1000) : undefined;
  const first = docs[0];
  if (!first) return note ? { note } : {};
  const pool = docs.slice(1);
  return {
    doc: first.doc,
    name: pool.length ? `pool of ${docs.length}: ${docs.map((d) => d.name).join(', ')}` : first.name,
    ...(pool.length ? { pool: pool.map((d) => d.doc) } : {}),
    ...(note ? { note } : {}),
  };
}

interface Baseline {
  doc?: ResultDocument;
  /** The pooled baseline's other documents (spec.baseline.pool). */
  pool?: ResultDocument[];
  name?: string;
  note?: string;
}

/** A run's export: the run read live, its export ConfigMap controlled by it. */
async function runExport(deps: Deps, ref: RunRef, name: string): Promise<Baseline> {
  const other = await deps.cluster.getRun(ref.namespace, name);
  if (!other) return { note: `baseline run ${name} not found: no comparison with it` };
  const cmName = other.status?.export?.configMapName ?? exportName(name, ((other.spec ?? {}) as BenchmarkRunSpec).export?.configMapName);
  return readBaseline(deps, ref, cmName, 'results.json', name, other.metadata.uid);
}

/** A results.json in a ConfigMap of the run's namespace; with `ownerUid`, only one that uid controls. */
async function readBaseline(deps: Deps, ref: RunRef, cmName: string, key: string, label: string, ownerUid?: string): Promise<Baseline> {
  try {
    const cm = await deps.cluster.read('ConfigMap', ref.namespace, cmName);
    if (!cm) return { note: `baseline ConfigMap ${cmName} not found: no comparison` };
    if (ownerUid !== undefined && !belongsTo(cm, ownerUid)) return { note: `baseline ConfigMap ${cmName} is not controlled by run ${label}: no comparison` };
    const text = cm.data?.[key];
    if (!text) return { note: `baseline ${label} has no ${key}: no comparison` };
    return { doc: parseResultDocument(text, `${cmName}/${key}`), name: label };
  } catch (e) {
    return { note: `baseline ${label} unreadable: ${errorMessage(e)}` };
  }
}
