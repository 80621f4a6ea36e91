/**
 * `swarmbench describe RUN`: one run in full, for a person: what its spec asks, where it is
 * (phase, attempt, generation), the summary, the conditions with their reasons, the steps of the
 * current attempt (each with its Job and whether its result was written), the tests, the
 * recommendations, the earlier attempts and the events of the run and of what it created. What
 * the user may not read (jobs, configmaps, events) is said in its section, and the rest is shown.
 */
import type { CoreV1Event, V1ConfigMap, V1Job } from '@kubernetes/client-node';
import { validateSpec } from '../../api/validate.ts';
import { ATTEMPT_LABEL, COMPONENT, COMPONENT_LABEL, RUN_LABEL, STEP_LABEL, jobName, labelValue } from '../../kube/names.ts';
import { jobState } from '../../operator/desired.ts';
import { resolveParams } from '../../plan/params.ts';
import { num } from '../../report/format.ts';
import { buildPlan } from '../../plan/plan.ts';
import { CONNECTION_HELP, parseCommand, prog, runNameArg } from './args.ts';
import { connect, type Cluster } from './client.ts';
import { CliError } from './errors.ts';
import { age, cell, table, toMs } from './format.ts';
import { eventTime, exportNameOf, getRun, type RunObject } from './runs.ts';

export const usage = (): string => `usage: ${prog()} describe RUN [options]

Shows one run: spec, phase, summary, conditions with reasons, the steps of the current attempt
(Job and result), tests, recommendations, earlier attempts and events.

${CONNECTION_HELP}`;

export interface StepRow {
  step: string;
  state: string;
  job: string;
  detail: string;
}

/**
 * The state of each step of the attempt, from its Job and its result ConfigMap. Pure.
 * done: the result is written; running / failed: the Job's state; pending: nothing yet;
 * cleaned up: the run finished and the cleanup policy removed the Job and the result.
 */
export function stepRows(plan: readonly string[], run: RunObject, jobs: readonly V1Job[] | undefined, results: readonly V1ConfigMap[] | undefined): StepRow[] {
  const st = run.status ?? {};
  const attempt = st.attempt ?? 0;
  const finished = st.phase === 'Succeeded' || st.phase === 'Failed' || st.phase === 'Cancelled';
  return plan.map((step, i) => {
    const jn = jobName(run.metadata.name, attempt, step);
    const job = jobs?.find((j) => j.metadata?.name === jn);
    const result = results?.find((r) => r.metadata?.labels?.[STEP_LABEL] === labelValue(step));
    const written = result?.data?.['result.json'] !== undefined;
    let state: string;
    let detail = '';
    if (written) {
      state = 'done';
      try {
        const doc = JSON.parse(result!.data!['result.json']!) as { measurements?: unknown[]; error?: string };
        detail = doc.error ? `error: ${doc.error}` : `${doc.measurements?.length ?? 0} measurements`;
      } catch {
        detail = 'result is not JSON';
      }
    } else if (job) {
      const js = jobState(job);
      state = js.state === 'Running' ? 'running' : js.state === 'Failed' ? 'failed' : 'completed without a result';
      detail = js.message ?? (job.status?.active ? `${job.status.active} pod(s) active` : '');
    } else if (jobs === undefined) {
      state = '?';
    } else if (finished) {
      state = 'finished (cleaned up)';
    } else {
      state = i < (st.progress?.completedSteps ?? 0) ? 'done' : 'pending';
    }
    return { step, state, job: job ? jn : '', detail };
  });
}

async function maybe<T>(what: string, fn: () => Promise<T>, notes: string[]): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    notes.push(`(${what}: ${e instanceof CliError ? e.message : (e as Error).message})`);
    return undefined;
  }
}

/** The events of the run and of every object named after it (`<run>-…`: Jobs, pods, pools). */
export function runRelatedEvents(events: readonly CoreV1Event[], run: string): CoreV1Event[] {
  return events
    .filter((e) => e.involvedObject?.name === run || (e.involvedObject?.name ?? '').startsWith(`${run}-`))
    .sort((a, b) => eventTime(a) - eventTime(b));
}

/**
 * The events worth a look, in time order: the last 10 about the run itself (the operator's:
 * AttemptStarted, StepStarted, StepFailed…), the last 10 Warnings however old, and the last 15
 * of all (the Jobs', pods' and pools').
 */
export function recentEvents(sorted: readonly CoreV1Event[], run: string): CoreV1Event[] {
  const own = sorted.filter((e) => e.involvedObject?.name === run).slice(-10);
  const keep = new Set([...own, ...sorted.filter((e) => e.type === 'Warning').slice(-10), ...sorted.slice(-15)]);
  return sorted.filter((e) => keep.has(e));
}

export async function describeRun(c: Cluster, run: RunObject, nowMs: number): Promise<string> {
  const ns = run.metadata.namespace ?? c.namespace;
  const st = run.status ?? {};
  const name = run.metadata.name;
  const out: string[] = [];
  const kv = (k: string, v: string) => out.push(`${`${k}:`.padEnd(16)}${v}`);
  const created = toMs(run.metadata.creationTimestamp);
  kv('Name', name);
  kv('Namespace', ns);
  if (created !== undefined) kv('Created', `${new Date(created).toISOString()} (${age(created, nowMs)} ago)`);
  const v = validateSpec(run.spec ?? {});
  const plan = v.ok ? buildPlan(resolveParams(v.value)).map((s) => s.name) : [];
  if (v.ok) {
    const s = v.value;
    const params = resolveParams(s);
    const baseline = s.baseline?.runRef ? `run ${s.baseline.runRef}` : s.baseline?.configMapRef ? `ConfigMap ${s.baseline.configMapRef.name}` : undefined;
    kv('Spec', `mode ${params.mode}, categories ${params.categories.join(', ')}${s.trials ? `, trials ${s.trials}` : ''}${s.agents?.image ? `, agent image ${s.agents.image}` : ''}${s.suspend ? ', suspended' : ''}`);
    if (baseline) kv('Baseline', `${baseline}${s.baseline?.failOnRegression ? ' (a regression fails the verdict)' : ''}`);
  } else {
    kv('Spec', `invalid: ${v.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
  }
  kv('Phase', `${st.phase ?? 'Pending'}${st.attempt ? `, attempt ${st.attempt}` : ''} (generation ${run.metadata.generation ?? '?'}, observed ${st.observedGeneration ?? '-'})`);
  if (st.startedAt) kv('Started', st.startedAt);
  if (st.finishedAt) kv('Finished', st.finishedAt);
  const s = st.summary;
  if (s) kv('Summary', `${s.passed}/${s.total} passed, ${s.failed} failed, ${s.skipped} skipped, success rate ${s.successRate ?? 'n/a'}%, verdict ${s.verdict}${s.regressions !== undefined ? `, ${s.regressions} regressed` : ''}`);
  if (st.export?.configMapName || s) kv('Export', `ConfigMap ${exportNameOf(run)} (${prog()} report ${name} -n ${ns})`);

  const conds = st.conditions ?? [];
  if (conds.length) {
    out.push('', 'Conditions:');
    out.push(indent(table(['TYPE', 'STATUS', 'REASON', 'AGE', 'MESSAGE'], conds.map((x) => [x.type, x.status, x.reason, x.lastTransitionTime ? age(new Date(x.lastTransitionTime).getTime(), nowMs) : '', cell(x.message, 100)]))));
  }

  const notes: string[] = [];
  if (st.attempt && plan.length) {
    const sel = `${RUN_LABEL}=${labelValue(name)},${ATTEMPT_LABEL}=${st.attempt}`;
    const jobs = await maybe('jobs', () => c.call({ verb: 'list', resource: 'jobs', group: 'batch', namespace: ns }, () => c.batch.listNamespacedJob({ namespace: ns, labelSelector: sel, limit: 100 })), notes);
    const results = await maybe('results', () => c.call({ verb: 'list', resource: 'configmaps', group: '', namespace: ns }, () => c.core.listNamespacedConfigMap({ namespace: ns, labelSelector: `${sel},${COMPONENT_LABEL}=${COMPONENT.stepResult}`, limit: 100 })), notes);
    const rows = stepRows(plan, run, jobs?.items, results?.items);
    out.push('', `Steps (attempt ${st.attempt}):`);
    out.push(indent(table(['STEP', 'STATE', 'JOB', 'DETAIL'], rows.map((r) => [r.step, r.state, r.job, cell(r.detail, 100)]))));
    for (const n of notes.splice(0)) out.push(`  ${n}`);
  }

  if (st.tests?.length) {
    out.push('', 'Tests:');
    out.push(indent(table(['ID', 'NAME', 'RESULT', 'VALUE', 'TARGET', 'REASON'], st.tests.map((t) => [t.id, cell(t.name, 32), t.result, t.value !== undefined ? `${num(t.value)} ${t.unit}` : '-', `${t.target} ${t.unit}`, cell(t.reason, 90)]))));
  }
  if (st.recommendations?.length) {
    out.push('', 'Recommendations:');
    for (const r of st.recommendations) out.push(`  [${r.priority}] ${r.category}: ${cell(r.message, 200)}`);
  }
  if (st.comparison) {
    out.push('', `Baseline comparison (${st.comparison.baseline}): regressed ${st.comparison.regressed.join(', ') || 'none'}; improved ${st.comparison.improved.join(', ') || 'none'}`);
  }
  if (st.history?.length) {
    out.push('', 'Earlier attempts:');
    out.push(indent(table(['ATTEMPT', 'PHASE', 'VERDICT', 'SUCCESS', 'FINISHED'], st.history.map((h) => [String(h.attempt), h.phase, h.verdict ?? '', h.successRate !== undefined && h.successRate !== null ? `${h.successRate}%` : '', h.finishedAt ?? '']))));
  }

  const events = await maybe('events', () => c.call({ verb: 'list', resource: 'events', group: '', namespace: ns }, () => c.core.listNamespacedEvent({ namespace: ns, limit: 500 })), notes);
  out.push('', 'Events:');
  if (events) {
    const mine = recentEvents(runRelatedEvents(events.items, name), name);
    if (mine.length === 0) out.push('  <none>');
    else {
      out.push(indent(table(['AGE', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'], mine.map((e) => [age(eventTime(e), nowMs), e.type ?? '', e.reason ?? '', `${(e.involvedObject?.kind ?? '').toLowerCase()}/${cell(e.involvedObject?.name, 60)}`, cell(e.message, 120)]))));
    }
  }
  for (const n of notes) out.push(`  ${n}`);
  return `${out.join('\n')}\n`;
}

function indent(s: string): string {
  return s.replace(/\n$/, '').split('\n').map((l) => `  ${l}`).join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand('describe', argv, {}, 1);
  if (p.values.help) {
    process.stdout.write(usage());
    return 0;
  }
  const name = runNameArg(p.positionals[0]);
  const c = connect(p.connection);
  const run = await getRun(c, name);
  process.stdout.write(await describeRun(c, run, Date.now()));
  return 0;
}
