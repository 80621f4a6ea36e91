/**
 * Waiting for a run to finish (`submit --wait`, `rerun --wait`): polls the run every two seconds,
 * prints its progress (progress.ts), its new Warning events, and watches its pods for the ones
 * that cannot start. It stops when the attempt it waits for has finished, when the run was
 * deleted, at the timeout, when a pod of the run has been stuck for `stuckAfterMs` (its image
 * cannot be pulled, it cannot be scheduled, its configuration is missing), or on an abort
 * (Ctrl-C). A passing API error (a restart of the API server) is retried for two minutes.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { validateSpec } from '../../api/validate.ts';
import { RUN_LABEL, labelValue, stepResultName } from '../../kube/names.ts';
import { podProblems as readPodProblems } from '../../kube/pods.ts';
import { resolveParams } from '../../plan/params.ts';
import { buildPlan } from '../../plan/plan.ts';
import type { Cluster } from './client.ts';
import { CliError } from './errors.ts';
import { EXIT } from './exit.ts';
import { doneLine, eventLine, progressLine, stepsFinished, type ProgressPrinter, type ProgressState } from './progress.ts';
import { getRun, runEvents, type RunObject } from './runs.ts';

export interface FollowOptions {
  /** Give up after this long (exit 3). */
  timeoutMs: number;
  /** A pod stuck this long ends the wait (exit 3); 0: never. */
  stuckAfterMs: number;
  /** The attempt waited for: the run's status.attempt must reach it. */
  minAttempt: number;
  /** For a rerun: the annotation value whose attempt is waited for. */
  rerun?: string;
  /** Events that exist already are not printed (a rerun of a run with a history). */
  ignoreExistingEvents?: boolean;
  printer?: ProgressPrinter;
  pollMs?: number;
  signal?: AbortSignal;
  now?: () => number;
}

export type FollowEnd =
  | { kind: 'finished'; run: RunObject }
  | { kind: 'deleted' }
  | { kind: 'timeout'; run?: RunObject; seen: string }
  | { kind: 'stuck'; run?: RunObject; problem: string }
  | { kind: 'aborted'; run?: RunObject };

/** A problem of one pod that keeps it from starting; `key` groups the same problem across pods. */
export interface PodProblem {
  key: string;
  text: string;
}

/**
 * The problems that keep pods of a run from starting (src/kube/pods.ts: the stuck ones). Containers
 * that ended (OOMKilled, evicted) are the Job's to retry and the operator's to report, not a
 * reason to stop waiting. Pure.
 */
export function podProblems(pods: readonly V1Pod[]): PodProblem[] {
  return readPodProblems(pods)
    .filter((p) => p.kind === 'stuck')
    .map((p) => ({ key: p.key, text: p.text }));
}

/** Remembers since when each problem has been seen without a break; reports one older than the grace. */
export class StuckTracker {
  private readonly since = new Map<string, number>();
  private readonly graceMs: number;
  constructor(graceMs: number) {
    this.graceMs = graceMs;
  }
  /** The text of a problem seen continuously for at least the grace, else undefined. */
  observe(problems: readonly PodProblem[], now: number): string | undefined {
    const keys = new Set(problems.map((p) => p.key));
    for (const k of [...this.since.keys()]) if (!keys.has(k)) this.since.delete(k);
    for (const p of problems) if (!this.since.has(p.key)) this.since.set(p.key, now);
    if (this.graceMs <= 0) return undefined;
    for (const p of problems) {
      const t = this.since.get(p.key)!;
      if (now - t >= this.graceMs) return `${p.text} (for ${Math.round((now - t) / 1000)} s)`;
    }
    return undefined;
  }
}

const TERMINAL = new Set(['Succeeded', 'Failed', 'Cancelled']);
/** A run with no status after this long: the operator is probably not there (a note, not an end). */
const NO_STATUS_HINT_MS = 30_000;

/** Whether the run's status shows the attempt waited for as finished (or the spec refused). */
export function isFinished(run: RunObject, minAttempt: number, rerun?: string): boolean {
  const st = run.status;
  if (!st?.phase) return false;
  if (st.phase === 'Failed' && st.conditions?.some((c) => c.type === 'Ready' && c.reason === 'SpecInvalid') && st.observedGeneration === run.metadata.generation) return true;
  if (!TERMINAL.has(st.phase)) return false;
  if ((st.attempt ?? 0) < minAttempt) return false;
  if (rerun !== undefined && st.lastRerun !== rerun) return false;
  return true;
}

/** The plan's step names of a run (the order of status.progress), or [] when the spec cannot be read. */
export function planOf(run: RunObject): string[] {
  const v = validateSpec(run.spec ?? {});
  if (!v.ok) return [];
  return buildPlan(resolveParams(v.value)).map((s) => s.name);
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });

/** A CliError that may pass (the API server restarting, a timeout of one request). */
const transient = (e: unknown): boolean => e instanceof CliError && e.code === EXIT.infrastructure && !/no permission|CRD|credentials/.test(e.message);

export async function followRun(c: Cluster, name: string, o: FollowOptions): Promise<FollowEnd> {
  const now = o.now ?? Date.now;
  const start = now();
  const pollMs = o.pollMs ?? 2000;
  const seen = new Set<string>();
  const stuck = new StuckTracker(o.stuckAfterMs);
  let prev: ProgressState = {};
  let plan: string[] = [];
  let last: RunObject | undefined;
  let failingSince: number | undefined;
  let first = true;
  let warnedNoStatus = false;
  for (;;) {
    if (o.signal?.aborted) return { kind: 'aborted', ...(last ? { run: last } : {}) };
    let run: RunObject;
    try {
      run = await getRun(c, name);
      failingSince = undefined;
    } catch (e) {
      if (e instanceof CliError && e.code === EXIT.invalid && /not found/.test(e.message)) return { kind: 'deleted' };
      if (!transient(e)) throw e;
      failingSince ??= now();
      if (now() - failingSince > 120_000) throw e;
      o.printer?.note(`note: ${(e as Error).message} (retrying)`);
      await sleep(pollMs, o.signal);
      continue;
    }
    last = run;
    const st = run.status ?? {};
    if (plan.length === 0) plan = planOf(run);
    const cur: ProgressState = {
      ...(st.attempt !== undefined ? { attempt: st.attempt } : {}),
      ...(st.progress ?? {}),
    };
    if (st.attempt !== undefined && st.attempt >= o.minAttempt && st.attempt !== prev.attempt) {
      const msg = st.conditions?.find((x) => x.type === 'Progressing')?.message;
      o.printer?.note(`attempt ${st.attempt}${msg && st.phase === 'Running' ? `: ${msg.replace(/^attempt \d+: /, '')}` : ''}`);
    }
    if (st.attempt !== undefined && st.attempt >= o.minAttempt) {
      for (const step of stepsFinished(plan, prev, cur)) o.printer?.note(doneLine(step, await measurementCount(c, run, step)));
      prev = cur;
    }
    if (o.printer) await printEvents(c, run, seen, o.printer, first && o.ignoreExistingEvents === true);
    first = false;
    if (isFinished(run, o.minAttempt, o.rerun)) {
      o.printer?.clear();
      return { kind: 'finished', run };
    }
    if (o.stuckAfterMs > 0) {
      const problem = stuck.observe(podProblems(await runPods(c, run)), now());
      if (problem) {
        o.printer?.clear();
        return { kind: 'stuck', run, problem };
      }
    }
    const elapsed = now() - start;
    if (!st.phase && !warnedNoStatus && elapsed >= NO_STATUS_HINT_MS) {
      warnedNoStatus = true;
      o.printer?.note(
        `note: run ${name} has no status after ${Math.round(elapsed / 1000)} s: is the SwarmBench operator running and watching namespace ${run.metadata.namespace ?? c.namespace}? (docs/install.md)`,
      );
    }
    if (elapsed >= o.timeoutMs) {
      o.printer?.clear();
      const where = st.progress?.currentStep ? `, step ${st.progress.currentStep} (${(st.progress.completedSteps ?? 0) + 1}/${st.progress.totalSteps ?? '?'})` : '';
      return { kind: 'timeout', run, seen: `still ${st.phase ?? 'Pending'}${where} after ${Math.round(elapsed / 1000)} s` };
    }
    const line = progressLine(cur, elapsed);
    // A rerun of a run still going: the attempt before it is shown as such.
    o.printer?.update(line && st.attempt !== undefined && st.attempt < o.minAttempt ? `attempt ${st.attempt} (before the rerun): ${line}` : line);
    await sleep(Math.min(pollMs, Math.max(0, o.timeoutMs - elapsed)), o.signal);
  }
}

async function runPods(c: Cluster, run: RunObject): Promise<V1Pod[]> {
  const namespace = run.metadata.namespace ?? c.namespace;
  try {
    const res = await c.call({ verb: 'list', resource: 'pods', group: '', namespace }, () =>
      c.core.listNamespacedPod({ namespace, labelSelector: `${RUN_LABEL}=${labelValue(run.metadata.name)}`, limit: 500 }),
    );
    return res.items;
  } catch {
    return []; // Without the right to list pods, the wait still ends at the run's end or the timeout.
  }
}

async function printEvents(c: Cluster, run: RunObject, seen: Set<string>, printer: ProgressPrinter, silent: boolean): Promise<void> {
  let events;
  try {
    events = await runEvents(c, run);
  } catch {
    return; // Events are a courtesy: without the right to list them, the progress goes on.
  }
  for (const e of events.sort((a, b) => (a.metadata?.creationTimestamp?.valueOf() ?? 0) - (b.metadata?.creationTimestamp?.valueOf() ?? 0))) {
    const key = `${e.metadata?.uid ?? e.metadata?.name}/${e.count ?? 1}`;
    if (seen.has(key)) continue;
    seen.add(key);
    // The verdict's own event (Failed) is said by the last line; the other warnings are news.
    if (!silent && e.type === 'Warning' && e.reason !== 'Failed') printer.note(eventLine(e));
  }
}

/** The number of measurements in a step's result ConfigMap, or undefined when it cannot be read. */
async function measurementCount(c: Cluster, run: RunObject, step: string): Promise<number | undefined> {
  const namespace = run.metadata.namespace ?? c.namespace;
  const name = stepResultName(run.metadata.name, run.status?.attempt ?? 1, step);
  try {
    const cm = await c.call({ verb: 'get', resource: 'configmaps', group: '', namespace, name }, () => c.core.readNamespacedConfigMap({ namespace, name }));
    const text = cm.data?.['result.json'];
    if (!text || text.length > 4 * 1024 * 1024) return undefined;
    const m = (JSON.parse(text) as { measurements?: unknown[] }).measurements;
    return Array.isArray(m) ? m.length : undefined;
  } catch {
    return undefined;
  }
}
