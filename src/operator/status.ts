/**
 * The run's status and events: written only when something really changed, so a reconcile that
 * runs twice writes and tells nothing the second time.
 *
 * - `writeStatus` compares each field of the patch with the status the run holds (JSON equality,
 *   `null` meaning absent) and sends nothing when all are equal; otherwise one JSON merge patch
 *   through `/status` (only the status; objects merge, arrays are replaced, null deletes). The run
 *   object then holds the status the API server returned.
 * - The event that goes with a change is recorded after the status write succeeded, and only when
 *   the write happened. Events are best-effort: a refused event is logged, never an error.
 * - `refusalOf` tells a permanent refusal of the API server (the same request would be refused the
 *   same way again: 400 BadRequest, 413 RequestEntityTooLarge, 422 Invalid, 403 Forbidden other than
 *   an exceeded quota) from a passing failure; the reconcile ends the attempt on the first (reason
 *   `Rejected` or `Forbidden`, once), and leaves the second to the work queue's backoff. Decided: a
 *   quota that is exceeded (403 "exceeded quota") frees up when other work ends, so it is retried.
 */
import type { CoreV1Event } from '@kubernetes/client-node';
import type { BenchmarkRunStatus } from '../api/schema.ts';
import { errorMessage } from '../errors.ts';
import { describeError, statusBody, statusCode } from '../kube/client.ts';
import { API_VERSION_FULL, BENCHMARKRUN_KIND, runLabels } from '../kube/names.ts';
import type { RunObject } from './cluster.ts';
import type { Deps } from './context.ts';
import type { Condition } from './desired.ts';

export interface RunEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  /**
   * A fixed name (within the run's namespace) for an Event that must be told once across operator
   * restarts: a second create is refused (409 AlreadyExists) and counts as told. Without it the
   * name is generated.
   */
  name?: string;
}

/** The conditions the run holds now. */
export const conditionsOf = (run: RunObject): Condition[] => (run.status?.conditions ?? []) as Condition[];

/** Merge-patches the status when a field of `patch` differs; then records `event`. Returns whether it wrote. */
export async function writeStatus(deps: Deps, run: RunObject, patch: Record<string, unknown>, event?: RunEvent): Promise<boolean> {
  const cur = (run.status ?? {}) as Record<string, unknown>;
  const changed = Object.entries(patch).some(([k, v]) => !sameJson(cur[k], v));
  if (!changed) return false;
  const updated = await deps.cluster.patchRunStatus(run.metadata.namespace, run.metadata.name, patch);
  run.status = (updated.status ?? run.status) as BenchmarkRunStatus;
  if (event) await recordEvent(deps, run, event);
  return true;
}

/** A core/v1 Event the operator records on one of its objects (a run's, a schedule's). */
export function operatorEvent(metadata: CoreV1Event['metadata'], involvedObject: CoreV1Event['involvedObject'], ev: { type: string; reason: string; message: string }, now: Date): CoreV1Event {
  return {
    metadata,
    involvedObject,
    type: ev.type,
    reason: ev.reason,
    message: ev.message.slice(0, 1024),
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
    source: { component: 'swarmbench-operator' },
    reportingComponent: 'swarmbench.io/operator',
    reportingInstance: process.env.POD_NAME ?? 'swarmbench-operator',
  };
}

/** Records an event on the run (callers decide that something really happened). */
export async function recordEvent(deps: Deps, run: RunObject, ev: RunEvent): Promise<void> {
  const body = operatorEvent(
    { ...(ev.name ? { name: ev.name } : { generateName: `${run.metadata.name}.` }), namespace: run.metadata.namespace, labels: runLabels(run.metadata.name, run.status?.attempt) },
    { apiVersion: API_VERSION_FULL, kind: BENCHMARKRUN_KIND, name: run.metadata.name, namespace: run.metadata.namespace, uid: run.metadata.uid },
    ev,
    deps.now(),
  );
  try {
    await deps.cluster.createEvent(body);
  } catch (e) {
    if (ev.name && statusCode(e) === 409) return; // told before (by this operator or an earlier leader)
    deps.log.warn('event not recorded', { reason: ev.reason, error: errorMessage(e) });
  }
}

/** The object without its null fields (a merge patch would delete them: absent is what we mean). */
export function withoutNull<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null)) as T;
}

/** JSON equality for status comparison (key order and undefined fields ignored); null in a merge patch means "absent". */
export function sameJson(a: unknown, b: unknown): boolean {
  if (b === null) return a === undefined || a === null;
  return JSON.stringify(normalise(a)) === JSON.stringify(normalise(b));
}

function normalise(v: unknown): unknown {
  if (v instanceof Date) return v.toISOString();
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

/** A refusal of the API server that a retry would meet again: the reason the run's status and event give, and the server's words. */
export interface Refusal {
  reason: 'Rejected' | 'Forbidden';
  /** The HTTP status, reason and message of the API server (one line). */
  detail: string;
}

/** The permanent refusal `err` is (see the header), or undefined for anything else (retried with backoff). */
export function refusalOf(err: unknown): Refusal | undefined {
  const code = statusCode(err);
  if (code === 400 || code === 413 || code === 422) return { reason: 'Rejected', detail: describeError(err).slice(0, 800) };
  if (code === 403 && !/exceeded quota/i.test(statusBody(err)?.message ?? (err as Error).message ?? '')) return { reason: 'Forbidden', detail: describeError(err).slice(0, 800) };
  return undefined;
}
