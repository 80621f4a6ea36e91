/**
 * The BenchmarkSchedule reconcile (docs/schedules.md): it reads the schedule and the runs it
 * controls, asks schedule-plan.ts what to do (`planSchedule`, pure), and does it, in this order:
 *
 *  1. Read the schedule, live (its status must include what the last reconcile wrote). Gone, or
 *     being deleted: nothing to do (its runs and its history ConfigMap carry its controller
 *     ownerReference; the garbage collector removes them).
 *  2. The runs it controls (their controller ownerReference is the schedule's uid), from the
 *     BenchmarkRun informer (schedule-cluster.ts), with what this reconciler created or deleted
 *     and the cache does not show yet (`Expectations`, as client-go's controllers keep them), and
 *     the plan with the real clock (`now`, injectable for the tests).
 *  3. `deleteActive` (concurrencyPolicy Replace), each run by its uid.
 *  4. `create`: the run, with its predictable name. A 409 is no harm when the run of that name is
 *     the schedule's own (an earlier pass made it and its status write was lost); a run of that
 *     name the schedule does not control is never touched: the time is recorded as missed
 *     (reason `NameTaken`) with a Warning event.
 *  5. The history of figures (schedule-history.ts): the runs that finished since, from their
 *     exports into `<schedule>-history`; before 6., so a run pruned in the pass it finished in is
 *     in the history first.
 *  6. `prune`: the finished runs beyond the history limits, oldest first. Their exports, their
 *     Jobs and their other ConfigMaps are controlled by them (operator/desired.ts) and go by
 *     garbage collection.
 *  7. The status: `statusPatch(previous, decision)` plus the history's summary, one JSON merge
 *     patch through `/status`, guarded by the resourceVersion read in 1. (a schedule changed in
 *     between is a 409: planned again). Nothing when nothing changed.
 *  8. The events (core/v1 Events on the schedule, as the run's: status.ts), best-effort.
 *  9. Come back after `requeueAfterMs` (the next scheduled time, at most a day), and whenever the
 *     schedule or one of its runs changes (main.ts maps a run's events to its schedule).
 *
 * A create or a delete that fails throws before 7.: no status is written and the work queue
 * retries with backoff; the next plan recomputes everything from the runs and the previous
 * status, so nothing is lost or done twice (schedule-plan.ts's header). An invalid spec gets its
 * condition from the plan and nothing is created or deleted.
 */
import type { CoreV1Event, KubeConfig } from '@kubernetes/client-node';
import { SCHEDULE_LABEL, ScheduleHistoryStatus, MAX_MISSED_RECORDS, MISSED_MESSAGE_MAX, type BenchmarkScheduleStatus } from '../api/schedule.ts';
import { errorMessage } from '../errors.ts';
import { isAlreadyExists, splitKey } from '../kube/client.ts';
import { benchmarkScheduleInformer, type BenchmarkRunObject, type BenchmarkScheduleObject, type Informer, type ScopeOptions } from '../kube/informer.ts';
import { API_VERSION_FULL, BENCHMARKSCHEDULE_KIND, isControlledBy, labelValue, MANAGED_BY, MANAGED_BY_LABEL, ownerScheduleKey } from '../kube/names.ts';
import { WorkQueue, type RunOptions } from '../kube/queue.ts';
import type { Logger } from '../log.ts';
import type { ReconcileResult } from './context.ts';
import { KubeScheduleCluster, type LiveSchedule, type ScheduleCluster } from './schedule-cluster.ts';
import { HistoryMemory, recordHistory, shiftEvents } from './schedule-history.ts';
import { ownedRunOf, planSchedule, statusPatch, type OwnedRun, type RunLike, type RunToCreate, type ScheduleEvent } from './schedule-plan.ts';
import { operatorEvent } from './status.ts';

/** How long a run this reconciler created (or deleted) counts as such while the cache does not show it (ms). */
export const EXPECTATION_MS = 60_000;
/** After a pass that left finished runs for the history's next pass, come back this soon (ms). */
export const HISTORY_CATCH_UP_MS = 1000;

/**
 * What this reconciler created and deleted that the run cache may not show yet, per schedule key:
 * a created run counts as active, a deleted one as being deleted, until the cache agrees or
 * EXPECTATION_MS passed. Bounded: one create per pass, deletes of the schedule's own runs, every
 * entry expiring, a schedule's entries dropped with it.
 */
export class Expectations {
  private readonly created = new Map<string, Map<string, { run: OwnedRun; uid?: string; at: number }>>();
  private readonly deleted = new Map<string, Map<string, number>>();
  private readonly ttlMs: number;

  constructor(ttlMs = EXPECTATION_MS) {
    this.ttlMs = ttlMs;
  }

  create(key: string, run: OwnedRun, uid: string | undefined, nowMs: number): void {
    const m = this.created.get(key) ?? new Map();
    m.set(run.name, { run, ...(uid ? { uid } : {}), at: nowMs });
    this.created.set(key, m);
  }

  delete(key: string, name: string, nowMs: number): void {
    const m = this.deleted.get(key) ?? new Map<string, number>();
    m.set(name, nowMs);
    this.deleted.set(key, m);
    this.created.get(key)?.delete(name);
  }

  /** The uid of a run created here that the cache does not show yet. */
  uidOf(key: string, name: string): string | undefined {
    return this.created.get(key)?.get(name)?.uid;
  }

  /** The runs as the cache shows them, with the expectations applied; settled and expired ones are dropped. */
  apply(key: string, runs: readonly OwnedRun[], nowMs: number): OwnedRun[] {
    const seen = new Set(runs.map((r) => r.name));
    const created = this.created.get(key);
    const deleted = this.deleted.get(key);
    for (const [name, e] of created ?? []) if (seen.has(name) || nowMs - e.at > this.ttlMs) created!.delete(name);
    for (const [name, at] of deleted ?? []) if (!seen.has(name) || nowMs - at > this.ttlMs) deleted!.delete(name);
    if (created?.size === 0) this.created.delete(key);
    if (deleted?.size === 0) this.deleted.delete(key);
    const out = runs.map((r) => (this.deleted.get(key)?.has(r.name) && !r.deleting ? { ...r, deleting: true } : r));
    for (const e of this.created.get(key)?.values() ?? []) out.push(e.run);
    return out;
  }

  forget(key: string): void {
    this.created.delete(key);
    this.deleted.delete(key);
  }

  /** Entries held in all (for tests and bounds). */
  size(): number {
    let n = 0;
    for (const m of [...this.created.values(), ...this.deleted.values()]) n += m.size;
    return n;
  }
}

export interface ScheduleReconcilerOptions {
  cluster: ScheduleCluster;
  log: Logger;
  now?: () => Date;
  /** EXPECTATION_MS unless given (tests). */
  expectationMs?: number;
  /** schedule-history.ts bounds (tests make them small). */
  history?: { maxBytes?: number; maxPoints?: number; samples?: number };
}

/** The core/v1 Event of a schedule's event (status.ts `operatorEvent`, as the run's). */
export function scheduleEvent(s: LiveSchedule, ev: ScheduleEvent, now: Date): CoreV1Event {
  const m = s.metadata;
  return operatorEvent(
    { generateName: `${m.name}.`, namespace: m.namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [SCHEDULE_LABEL]: labelValue(m.name) } },
    { apiVersion: API_VERSION_FULL, kind: BENCHMARKSCHEDULE_KIND, name: m.name, namespace: m.namespace, uid: m.uid },
    ev,
    now,
  );
}

/**
 * The status when the run to create could not be: its name belongs to a run the schedule does not
 * control. The time counts as handled (it is not tried again) and is recorded as missed.
 */
export function nameTakenStatus(status: BenchmarkScheduleStatus, prev: BenchmarkScheduleStatus, create: RunToCreate, owner: string): { status: BenchmarkScheduleStatus; event: ScheduleEvent } {
  const message = `run ${create.name} exists and is not controlled by this schedule (its controller: ${owner}): ${create.trigger === 'manual' ? 'the run-now' : `scheduled time ${create.scheduledTime}`} started no run`.slice(0, MISSED_MESSAGE_MAX);
  const active = (status.active ?? []).filter((n) => n !== create.name);
  const missed = [...(status.missed ?? []), { time: create.scheduledTime, reason: 'NameTaken', message }].slice(-MAX_MISSED_RECORDS);
  const next: BenchmarkScheduleStatus = { ...status, active, activeCount: Math.max(0, (status.activeCount ?? 0) - 1), missed };
  if (status.lastRun === create.name) {
    if (prev.lastRun !== undefined) next.lastRun = prev.lastRun;
    else delete next.lastRun;
  }
  return { status: next, event: { type: 'Warning', reason: 'RunNameTaken', message } };
}

export class ScheduleReconciler {
  private readonly cluster: ScheduleCluster;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly memory = new HistoryMemory();
  private readonly expect: Expectations;
  /** The uid of each schedule key seen: what is forgotten when the schedule goes (or comes back as another). */
  private readonly uids = new Map<string, string>();
  private readonly historyOpts: ScheduleReconcilerOptions['history'];

  constructor(opts: ScheduleReconcilerOptions) {
    this.cluster = opts.cluster;
    this.log = opts.log;
    this.now = opts.now ?? (() => new Date());
    this.expect = new Expectations(opts.expectationMs);
    this.historyOpts = opts.history;
  }

  /** What the reconciler remembers, in entries (bounded by the schedules and their runs; tests read it). */
  held(): { expectations: number; history: number; schedules: number } {
    return { expectations: this.expect.size(), history: this.memory.size(), schedules: this.uids.size };
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const c = this.cluster;
    const { namespace, name } = splitKey(key);
    // 1. The schedule, live.
    const schedule = await c.getSchedule(namespace, name);
    const uid = schedule?.metadata.uid;
    const known = this.uids.get(key);
    if (known !== undefined && known !== uid) {
      // Gone, or deleted and created again: what was remembered of it goes.
      this.expect.forget(key);
      this.memory.forget(known);
      this.uids.delete(key);
    }
    if (!schedule || !uid) return;
    this.uids.set(key, uid);
    if (schedule.metadata.deletionTimestamp) return;

    // 2. Its runs, and the plan.
    const raw = await c.ownedRuns(namespace, name, uid);
    const now = this.now();
    const nowMs = now.getTime();
    const runs = this.expect.apply(key, raw.map(ownedRunOf), nowMs);
    const decision = planSchedule({ schedule, runs, now });
    const prev = (schedule.status ?? {}) as BenchmarkScheduleStatus & Record<string, unknown>;
    let status = decision.status;
    const events: ScheduleEvent[] = [...decision.events];
    const uidOf = (run: string): string | undefined => raw.find((r) => r.metadata?.name === run)?.metadata?.uid ?? this.expect.uidOf(key, run);

    // 3. Replace: the active runs go first.
    for (const run of decision.deleteActive) await this.deleteRun(key, namespace, run, uidOf(run), nowMs);

    // 4. The new run.
    if (decision.create) {
      const taken = await this.createRun(key, decision.create, uid, nowMs);
      if (taken) {
        const t = nameTakenStatus(status, prev, decision.create, taken);
        status = t.status;
        const i = events.findIndex((e) => e.reason === 'SuccessfulCreate');
        if (i >= 0) events.splice(i, 1, t.event);
        else events.push(t.event);
      }
    }

    // 5. The history of figures, before the history limits delete anything.
    const history = await recordHistory(c, this.memory, { name, namespace, uid }, raw, this.historyOpts);

    // 6. The history limits.
    for (const run of decision.prune) await this.deleteRun(key, namespace, run, uidOf(run), nowMs);

    // 7. The status, with the history's summary (the plan does not compute it: carried over when this pass did not look).
    const before = ScheduleHistoryStatus.safeParse(prev.history);
    const summary = history.status ?? (before.success ? before.data : undefined);
    if (summary) status = { ...status, history: summary };
    if (history.status) events.push(...history.events, ...shiftEvents(before.success ? before.data : undefined, history.status));
    else events.push(...history.events);
    const patch = statusPatch(prev, status);
    if (Object.keys(patch).length > 0) await c.patchScheduleStatus(namespace, name, patch, schedule.metadata.resourceVersion);
    this.memory.add(uid, history.looked);

    // 8. The events.
    for (const ev of events) {
      try {
        await c.createEvent(scheduleEvent(schedule, ev, now));
      } catch (e) {
        this.log.warn('event not recorded', { schedule: key, reason: ev.reason, error: errorMessage(e) });
      }
    }
    if (decision.create || decision.deleteActive.length || decision.prune.length || history.added.length) {
      this.log.info('schedule reconciled', {
        schedule: key, ...(decision.create ? { created: decision.create.name } : {}),
        ...(decision.deleteActive.length ? { replaced: decision.deleteActive.join(',') } : {}),
        ...(decision.prune.length ? { pruned: decision.prune.join(',') } : {}),
        ...(history.added.length ? { history: history.added.join(',') } : {}),
      });
    }

    // 9. When to look again.
    const after = history.pending > 0 ? Math.min(HISTORY_CATCH_UP_MS, decision.requeueAfterMs ?? HISTORY_CATCH_UP_MS) : decision.requeueAfterMs;
    return after !== undefined ? { requeueAfterMs: after } : undefined;
  }

  /** Creates the run; undefined when it exists now as the schedule's, else the name's owner in words. */
  private async createRun(key: string, create: RunToCreate, scheduleUid: string, nowMs: number): Promise<string | undefined> {
    const { namespace } = create.object.metadata;
    const owned: OwnedRun = { name: create.name, scheduledTime: create.scheduledTime, trigger: create.trigger, creationTimestamp: new Date(nowMs).toISOString() };
    try {
      await this.cluster.createRun(create.object);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
      const got = await this.cluster.readRun(namespace, create.name);
      // Deleted in between: the next pass plans again (thrown: the queue backs off).
      if (!got) throw new Error(`run ${namespace}/${create.name}: create answered AlreadyExists, and it is gone now`, { cause: e });
      if (!isControlledBy(got, scheduleUid)) {
        const c = got.metadata?.ownerReferences?.find((r) => r.controller);
        return c ? `${c.kind} ${c.name}` : 'none';
      }
      this.expect.create(key, { ...ownedRunOf(got as RunLike) }, got.metadata?.uid, nowMs);
      return undefined;
    }
    this.expect.create(key, owned, undefined, nowMs);
    return undefined;
  }

  private async deleteRun(key: string, namespace: string, run: string, uid: string | undefined, nowMs: number): Promise<void> {
    if (uid === undefined) {
      // A run created by this reconciler moments ago (its uid not seen yet): read it to delete exactly it.
      const got = await this.cluster.readRun(namespace, run);
      uid = got?.metadata?.uid;
      if (uid === undefined) return;
    }
    await this.cluster.deleteRun(namespace, run, uid);
    this.expect.delete(key, run, nowMs);
  }
}

// ---------------------------------------------------------------------------------------------
// The operator's wiring (main.ts)

export interface ScheduleWiring {
  /** One per scope: to start, stop and wait for with the run informers. */
  informers: Informer<BenchmarkScheduleObject>[];
  /** The `benchmarkschedule` queue (main.ts gives it to the metrics). */
  queue: WorkQueue;
  /** Runs the workers for one leadership term (its signal stops the queue and every request). */
  run(signal: AbortSignal, opts: Omit<RunOptions, 'signal'>): Promise<void>;
}

/**
 * The schedule informers of the operator's scopes (one per watched namespace, or one for all),
 * the `benchmarkschedule` queue they feed, and a run informer's events mapped to the schedule that
 * controls the run (`ownerScheduleKey`), so a finished run lets a postponed time start at once.
 * `runInformers[i]` is the run informer of `scopes[i]`.
 */
export function scheduleWiring(
  kc: KubeConfig,
  scopes: readonly (Omit<ScopeOptions, 'labelSelector'> & { namespace?: string | undefined })[],
  runInformers: readonly Informer<BenchmarkRunObject>[],
  opts: { log: Logger; resyncMs?: number },
): ScheduleWiring {
  const queue = new WorkQueue({ name: 'benchmarkschedule', maxDelayMs: 120_000 });
  const informers = scopes.map((scope, i) => {
    runInformers[i]!.enqueue(queue, ownerScheduleKey);
    return benchmarkScheduleInformer(kc, { ...scope, ...(opts.resyncMs ? { resyncMs: opts.resyncMs } : {}) }).enqueue(queue);
  });
  const runCache = (ns: string) => runInformers[scopes.findIndex((s) => s.namespace === undefined || s.namespace === ns)];
  return {
    informers,
    queue,
    run: (signal, o) => {
      const reconciler = new ScheduleReconciler({ cluster: new KubeScheduleCluster(kc, runCache, { signal }), log: opts.log });
      return queue.run((key) => reconciler.reconcile(key).then((r) => r ?? undefined), { ...o, signal });
    },
  };
}
