/**
 * What a BenchmarkSchedule should do now (docs/schedules.md): pure, no I/O, no clock of its own.
 * A reconcile hands `planSchedule` the schedule object, the BenchmarkRuns it controls (each read
 * with `ownedRunOf`) and `now`, and carries out the decision: delete `deleteActive` (Replace),
 * create `create.object` (its name is predictable, so a create that meets its own run is no
 * harm), delete `prune`, write `status` (a complete status: `statusPatch` makes the merge patch
 * that also removes what it dropped), record `events`, and come back after `requeueAfterMs`, and
 * whenever a run it controls changes (a finished run lets a postponed time or run-now start).
 * The status assumes the create and the deletes succeed: when one fails, write nothing and plan
 * again (every figure is recomputed from the runs and the previous status, so nothing is lost).
 *
 * The rules, as the CronJob controller's (kubernetes pkg/controller/cronjob), with these choices:
 * - Due: the most recent scheduled time after the last one started (`status.lastScheduleTime`,
 *   or the newest `swarmbench.io/scheduled-time` of the runs when the status lags; else the
 *   schedule's creation) and at or before now. Earlier missed times never start a run; they are
 *   recorded (`Superseded`). The walk looks at most MAX_MISSED_LOOKBACK times ahead: with more,
 *   it records `TooManyMissed` and starts the latest (croner's `previousRuns`).
 * - `startingDeadlineSeconds`: a due time older than that starts nothing (`StartingDeadlineExceeded`).
 * - `concurrencyPolicy`: Forbid postpones a due time while a run of the schedule is active (the
 *   Ready message and a `RunPostponed` event say so; it starts when the active run finishes, if
 *   the deadline still allows, as a CronJob's does; when the next time comes first, it is
 *   `Superseded`); Replace deletes the active runs and creates; Allow creates while fewer than
 *   MAX_ACTIVE_RUNS are active (else postponed the same way).
 * - `suspend`: no scheduled runs, no next time; missed times while suspended count as missed
 *   (without a deadline the latest starts on resume, as a CronJob's does).
 * - Run now (`swarmbench.io/run-now`): each new value starts one run (`<schedule>-manual-<hash>`),
 *   also while suspended, under the same concurrency policy (Forbid: it waits for the active run);
 *   a scheduled run created in the same pass serves it.
 * - History: finished runs beyond `successfulRunsHistoryLimit` (Succeeded) and
 *   `failedRunsHistoryLimit` (Failed or Cancelled) are deleted oldest first, except the runs the
 *   baseline policy compares with (the previous success, the pinned run, the pool).
 * - Names: `<schedule>-<unix minutes of the scheduled time>`, the schedule's part cut and hashed
 *   (kube/names.ts `dnsName`) so the whole stays a DNS label of at most 63.
 */
import { createHash } from 'node:crypto';
import type { KubernetesObject, V1OwnerReference } from '@kubernetes/client-node';
import { API_VERSION_FULL, BENCHMARKRUN_KIND, dnsName, labelValue, MANAGED_BY, MANAGED_BY_LABEL } from '../kube/names.ts';
import {
  BENCHMARKSCHEDULE_KIND,
  BenchmarkScheduleStatus,
  MAX_ACTIVE_RUNS,
  MAX_MISSED_RECORDS,
  MISSED_MESSAGE_MAX,
  resolveScheduleSpec,
  RUN_NOW_ANNOTATION,
  RUN_NOW_MAX_LENGTH,
  SCHEDULE_LABEL,
  SCHEDULED_TIME_ANNOTATION,
  scheduleCron,
  TRIGGER_ANNOTATION,
  validateScheduleSpec,
  type MissedSchedule,
  type ResolvedScheduleSpec,
} from '../api/schedule.ts';
import { MAX_BASELINE_POOL, type BenchmarkRunSpec } from '../api/schema.ts';
import type { FieldError } from '../api/validate.ts';
import { setCondition, type Condition } from './desired.ts';
import { sameJson } from './status.ts';

/** Scheduled times the walk from the last one looks at; more are `TooManyMissed`. */
export const MAX_MISSED_LOOKBACK = 100;
/**
 * The longest wait the plan asks for: a time years away (`0 0 29 2 1`) is planned again daily, and
 * a timer never overflows (Node's setTimeout fires at once past 2^31 - 1 ms).
 */
export const MAX_REQUEUE_MS = 24 * 3600 * 1000;
/** The longest name a run gets (a DNS label). */
export const RUN_NAME_MAX = 63;

export type RunPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Cancelled';
const FINISHED: ReadonlySet<string> = new Set(['Succeeded', 'Failed', 'Cancelled']);

/** One BenchmarkRun the schedule controls, as the plan reads it (`ownedRunOf`). */
export interface OwnedRun {
  name: string;
  creationTimestamp?: string | Date;
  /** Absent: not reconciled yet (counted as active). */
  phase?: RunPhase | string;
  verdict?: 'Passed' | 'Failed' | string;
  /** Its `swarmbench.io/scheduled-time` annotation. */
  scheduledTime?: string;
  /** Its `swarmbench.io/trigger` annotation: `scheduled` or `manual`. */
  trigger?: string;
  /** Tests Regressed against its baseline; undefined when it was not compared. */
  regressed?: string[];
  /** It has a deletionTimestamp: neither active nor history. */
  deleting?: boolean;
}

/** A BenchmarkRun object as the API server returns it (only what `ownedRunOf` reads). */
export interface RunLike extends KubernetesObject {
  status?: { phase?: string; summary?: { verdict?: string }; comparison?: { regressed?: string[] } };
}

/** What the plan reads of a run the schedule controls. */
export function ownedRunOf(run: RunLike): OwnedRun {
  const m = run.metadata ?? {};
  const a = m.annotations ?? {};
  const out: OwnedRun = { name: m.name ?? '' };
  if (m.creationTimestamp !== undefined) out.creationTimestamp = m.creationTimestamp;
  if (run.status?.phase !== undefined) out.phase = run.status.phase;
  if (run.status?.summary?.verdict !== undefined) out.verdict = run.status.summary.verdict;
  if (a[SCHEDULED_TIME_ANNOTATION] !== undefined) out.scheduledTime = a[SCHEDULED_TIME_ANNOTATION];
  if (a[TRIGGER_ANNOTATION] !== undefined) out.trigger = a[TRIGGER_ANNOTATION];
  if (run.status?.comparison !== undefined) out.regressed = [...(run.status.comparison.regressed ?? [])];
  if (m.deletionTimestamp !== undefined && m.deletionTimestamp !== null) out.deleting = true;
  return out;
}

/** The schedule as the plan reads it. */
export interface ScheduleObject {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    generation?: number;
    creationTimestamp?: string | Date;
    annotations?: Record<string, string>;
  };
  spec?: unknown;
  status?: unknown;
}

export interface ScheduleEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** A BenchmarkRun to create. */
export interface RunObjectToCreate {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    ownerReferences: V1OwnerReference[];
  };
  spec: BenchmarkRunSpec;
}

export interface RunToCreate {
  name: string;
  trigger: 'scheduled' | 'manual';
  /** The scheduled time (a manual run: when the trigger was handled), RFC 3339 UTC. */
  scheduledTime: string;
  object: RunObjectToCreate;
}

export interface ScheduleDecision {
  /** The spec's field errors: nothing is created or deleted. */
  invalid?: FieldError[];
  create?: RunToCreate;
  /** Active runs to delete before the create (concurrencyPolicy Replace). */
  deleteActive: string[];
  /** Finished runs beyond the history limits, oldest first. */
  prune: string[];
  /** The whole status (fields it lacks are to be removed: `statusPatch`). */
  status: BenchmarkScheduleStatus;
  /** When to plan again: the next scheduled time, at most MAX_REQUEUE_MS away; undefined: on a change only. */
  requeueAfterMs?: number;
  events: ScheduleEvent[];
}

export interface PlanInput {
  schedule: ScheduleObject;
  /** The runs the schedule controls (their controller ownerReference is the schedule's uid). */
  runs: readonly OwnedRun[];
  now: Date;
}

// ---------------------------------------------------------------------------------------------
// Names

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

/** `<schedule>-<unix minutes of the time>`: the same time always gives the same name, at most 63. */
export function scheduledRunName(schedule: string, time: Date): string {
  const suffix = String(Math.floor(time.getTime() / 60_000));
  return `${dnsName(schedule, RUN_NAME_MAX - 1 - suffix.length)}-${suffix}`;
}

/** `<schedule>-manual-<8 hex of sha256(token key)>`: one name per run-now token, at most 63. */
export function manualRunName(schedule: string, key: string): string {
  const suffix = `manual-${sha(key).slice(0, 8)}`;
  return `${dnsName(schedule, RUN_NAME_MAX - 1 - suffix.length)}-${suffix}`;
}

/** How a run-now token is recorded in `status.lastRunNow`: itself, or a long one by its SHA-256. */
export function runNowKey(token: string): string {
  return token.length <= RUN_NOW_MAX_LENGTH ? token : `sha256:${sha(token)}`;
}

// ---------------------------------------------------------------------------------------------
// The run to create

/** The runs a new run is compared with, by the schedule's baseline policy (newest first). */
export function baselineRuns(policy: ResolvedScheduleSpec['baseline'], runs: readonly OwnedRun[]): string[] {
  if (policy.policy === 'pinned') return policy.run ? [policy.run] : [];
  if (policy.policy === 'none') return [];
  const succeeded = runs.filter((r) => !r.deleting && r.phase === 'Succeeded').sort(newestFirst);
  return succeeded.slice(0, policy.policy === 'previous' ? 1 : policy.count).map((r) => r.name);
}

export interface BuildRunInput {
  schedule: Pick<ScheduleObject['metadata'], 'name' | 'namespace' | 'uid'>;
  spec: ResolvedScheduleSpec;
  name: string;
  trigger: 'scheduled' | 'manual';
  scheduledTime: string;
  /** `baselineRuns` of the policy. */
  baseline: string[];
}

/**
 * The BenchmarkRun a schedule creates: the template's spec and metadata, the labels
 * `swarmbench.io/schedule` and managed-by, the scheduled time and trigger, and a controller
 * ownerReference to the schedule (deleting the schedule deletes its runs). Baseline `previous`
 * and `pinned` set `spec.baseline.runRef` (the operator compares with that run's export);
 * `pooled` sets `spec.baseline.pool`, the runs whose samples are pooled (report/baseline.ts).
 */
export function buildScheduledRun(input: BuildRunInput): RunObjectToCreate {
  const { schedule, spec } = input;
  if (!schedule.uid || !schedule.name || !schedule.namespace) throw new Error('buildScheduledRun: the schedule needs a name, a namespace and a uid');
  const tmpl = spec.runTemplate;
  const runSpec = structuredClone(tmpl.spec) as BenchmarkRunSpec;
  const annotations: Record<string, string> = { ...(tmpl.metadata?.annotations ?? {}), [SCHEDULED_TIME_ANNOTATION]: input.scheduledTime, [TRIGGER_ANNOTATION]: input.trigger };
  const policy = spec.baseline.policy;
  if ((policy === 'previous' || policy === 'pinned') && input.baseline[0] !== undefined) {
    runSpec.baseline = { ...(runSpec.baseline ?? {}), runRef: input.baseline[0] };
  } else if (policy === 'pooled' && input.baseline.length > 0) {
    runSpec.baseline = { ...(runSpec.baseline ?? {}), pool: input.baseline.slice(0, MAX_BASELINE_POOL) };
  }
  return {
    apiVersion: API_VERSION_FULL,
    kind: BENCHMARKRUN_KIND,
    metadata: {
      name: input.name,
      namespace: schedule.namespace,
      labels: { ...(tmpl.metadata?.labels ?? {}), [MANAGED_BY_LABEL]: MANAGED_BY, [SCHEDULE_LABEL]: labelValue(schedule.name) },
      annotations,
      ownerReferences: [{ apiVersion: API_VERSION_FULL, kind: BENCHMARKSCHEDULE_KIND, name: schedule.name, uid: schedule.uid, controller: true, blockOwnerDeletion: true }],
    },
    spec: runSpec,
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers

const msOf = (v: string | Date | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const t = v instanceof Date ? v.getTime() : Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
};
const iso = (ms: number): string => new Date(ms).toISOString();
/** When a run stands for: its scheduled time, else its creation. */
const runTime = (r: OwnedRun): number => msOf(r.scheduledTime) ?? msOf(r.creationTimestamp) ?? 0;
const oldestFirst = (a: OwnedRun, b: OwnedRun): number => runTime(a) - runTime(b) || a.name.localeCompare(b.name);
const newestFirst = (a: OwnedRun, b: OwnedRun): number => oldestFirst(b, a);
const isFinished = (r: OwnedRun): boolean => r.phase !== undefined && FINISHED.has(r.phase);
const cap = (s: string, n = MISSED_MESSAGE_MAX): string => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);
const names = (runs: readonly OwnedRun[]): string => {
  const shown = runs.slice(0, 3).map((r) => r.name).join(', ');
  return runs.length > 3 ? `${shown} and ${runs.length - 3} more` : shown;
};

/** The missed list with `add` appended (a time and reason already there is not repeated), the newest MAX_MISSED_RECORDS. */
function withMissed(prev: readonly MissedSchedule[], add: readonly MissedSchedule[]): MissedSchedule[] {
  const out = [...prev];
  for (const m of add) if (!out.some((x) => x.time === m.time && x.reason === m.reason)) out.push(m);
  return out.slice(-MAX_MISSED_RECORDS);
}

/** The previous status as far as it is readable (the operator wrote it; a bad one is ignored, not trusted). */
function previousStatus(status: unknown): BenchmarkScheduleStatus {
  const r = BenchmarkScheduleStatus.safeParse(status ?? {});
  return r.success ? r.data : {};
}

/** Which finished runs go: beyond each limit, oldest first, never a protected one. */
export function pruneRuns(runs: readonly OwnedRun[], successLimit: number, failedLimit: number, keep: ReadonlySet<string>): string[] {
  const finished = runs.filter((r) => !r.deleting && isFinished(r)).sort(oldestFirst);
  const pick = (list: OwnedRun[], limit: number): OwnedRun[] => {
    let excess = list.length - limit;
    const out: OwnedRun[] = [];
    for (const r of list) {
      if (excess <= 0) break;
      if (keep.has(r.name)) continue;
      out.push(r);
      excess--;
    }
    return out;
  };
  const gone = [...pick(finished.filter((r) => r.phase === 'Succeeded'), successLimit), ...pick(finished.filter((r) => r.phase !== 'Succeeded'), failedLimit)];
  return gone.sort(oldestFirst).map((r) => r.name);
}

/**
 * The merge patch from `prev` to `next`: changed fields, and null for each field `next` dropped.
 * Compared as JSON with keys in any order (status.ts `sameJson`): the API server returns a custom
 * object with its keys sorted, so a plain JSON.stringify would see every object field (the
 * conditions, the history) as changed and send a patch on every pass (one the API server then
 * finds changes nothing).
 */
export function statusPatch(prev: Record<string, unknown> | undefined, next: BenchmarkScheduleStatus): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const k of Object.keys(prev ?? {})) if (!(k in next)) patch[k] = null;
  for (const [k, v] of Object.entries(next)) if (v !== undefined && (prev?.[k] === undefined || !sameJson(prev[k], v))) patch[k] = v;
  return patch;
}

// ---------------------------------------------------------------------------------------------
// The due time

interface Due {
  /** The most recent scheduled time at or before now since the last one started. */
  time?: number;
  /** Times before it that were passed over (at most MAX_MISSED_LOOKBACK). */
  passedOver: number;
  /** The first passed-over time. */
  firstPassedOver?: number;
  /** More than MAX_MISSED_LOOKBACK times were missed. */
  tooMany: boolean;
}

/** The due time after `earliestMs` (exclusive) at or before `nowMs`, walking at most MAX_MISSED_LOOKBACK + 1 times. */
export function dueTime(spec: Pick<ResolvedScheduleSpec, 'schedule' | 'timeZone'>, earliestMs: number, nowMs: number): Due {
  const cron = scheduleCron(spec.schedule, spec.timeZone);
  const times: number[] = [];
  let t = new Date(earliestMs);
  while (times.length <= MAX_MISSED_LOOKBACK) {
    const n = cron.nextRun(t);
    if (!n || n.getTime() > nowMs) break;
    times.push(n.getTime());
    t = n;
  }
  if (times.length === 0) return { passedOver: 0, tooMany: false };
  if (times.length > MAX_MISSED_LOOKBACK) {
    // The latest time at or before now (croner counts a run in the reference's second; +1 ms makes now itself count).
    const latest = cron.previousRuns(1, new Date(nowMs + 1))[0]?.getTime();
    const time = latest !== undefined && latest > times.at(-1)! && latest <= nowMs ? latest : times.at(-1)!;
    return { time, passedOver: times.length, firstPassedOver: times[0], tooMany: true };
  }
  return { time: times.at(-1)!, passedOver: times.length - 1, ...(times.length > 1 ? { firstPassedOver: times[0] } : {}), tooMany: false };
}

// ---------------------------------------------------------------------------------------------
// The plan

/** The event reason of each missed-time reason. */
const MISSED_EVENT: Record<string, string> = { StartingDeadlineExceeded: 'MissSchedule', TooManyMissed: 'TooManyMissedTimes', Superseded: 'MissedTimesSkipped' };

export function planSchedule(input: PlanInput): ScheduleDecision {
  const { schedule, now } = input;
  const meta = schedule.metadata;
  const nowMs = now.getTime();
  const nowIso = now.toISOString();
  const prev = previousStatus(schedule.status);
  const generation = meta.generation ?? 0;
  const events: ScheduleEvent[] = [];
  const live = input.runs.filter((r) => !r.deleting);
  const active = live.filter((r) => !isFinished(r)).sort(oldestFirst);
  let conditions = (prev.conditions ?? []) as Condition[];
  const cond = (type: string, status: Condition['status'], reason: string, message: string) => {
    conditions = setCondition(conditions, { type, status, reason, message: cap(message, 1024), observedGeneration: generation }, nowIso);
  };

  const v = validateScheduleSpec(schedule.spec);
  if (!v.ok) {
    const msg = v.errors.slice(0, 5).map((e) => `${e.path}: ${e.message}`).join('; ') + (v.errors.length > 5 ? `; and ${v.errors.length - 5} more` : '');
    cond('Ready', 'False', 'SpecInvalid', msg);
    const status: BenchmarkScheduleStatus = { ...prev, observedGeneration: generation, active: active.map((r) => r.name).slice(0, MAX_ACTIVE_RUNS * 2), activeCount: active.length, conditions };
    delete status.nextScheduleTime;
    return { invalid: v.errors, deleteActive: [], prune: [], status, events: [{ type: 'Warning', reason: 'SpecInvalid', message: cap(msg, 1024) }] };
  }
  const spec = resolveScheduleSpec(v.value);

  // The last scheduled time started: the status's, or a newer one a run carries (a status write that was lost).
  let lastScheduled = msOf(prev.lastScheduleTime);
  for (const r of input.runs) {
    const t = r.trigger === 'manual' ? undefined : msOf(r.scheduledTime);
    if (t !== undefined && (lastScheduled === undefined || t > lastScheduled)) lastScheduled = t;
  }
  const earliest = lastScheduled ?? msOf(meta.creationTimestamp) ?? nowMs;

  const missed: MissedSchedule[] = [];
  const miss = (time: number, reason: string, message: string) => missed.push({ time: iso(time), reason, message: cap(message) });
  let create: RunToCreate | undefined;
  let deleteActive: string[] = [];
  let newLastScheduled = lastScheduled;
  const waiting: string[] = [];
  const baseline = baselineRuns(spec.baseline, live);
  const build = (name: string, trigger: 'scheduled' | 'manual', at: string): RunToCreate => ({
    name,
    trigger,
    scheduledTime: at,
    object: buildScheduledRun({ schedule: meta, spec, name, trigger, scheduledTime: at, baseline }),
  });
  /** Whether the concurrency policy lets a run start now; sets deleteActive for Replace; else why not. */
  const admit = (): { ok: true } | { ok: false; message: string } => {
    if (active.length === 0) return { ok: true };
    if (spec.concurrencyPolicy === 'Replace') {
      deleteActive = active.map((r) => r.name);
      return { ok: true };
    }
    if (spec.concurrencyPolicy === 'Forbid') return { ok: false, message: `run ${names(active)} still active (concurrencyPolicy Forbid): postponed until it finishes` };
    if (active.length >= MAX_ACTIVE_RUNS) return { ok: false, message: `${active.length} runs active, the most a schedule may have (${MAX_ACTIVE_RUNS}): postponed` };
    return { ok: true };
  };

  if (!spec.suspend) {
    const due = dueTime(spec, earliest, nowMs);
    if (due.time !== undefined) {
      const dueIso = iso(due.time);
      const name = scheduledRunName(meta.name, new Date(due.time));
      if (due.tooMany) {
        miss(due.time, 'TooManyMissed', `more than ${MAX_MISSED_LOOKBACK} scheduled times missed since ${iso(earliest)}: only the latest, ${dueIso}, may start`);
      } else if (due.passedOver > 0) {
        miss(due.time, 'Superseded', `${due.passedOver} earlier scheduled time(s) from ${iso(due.firstPassedOver!)} started no run: only the latest, ${dueIso}, may start`);
      }
      const lateS = Math.floor((nowMs - due.time) / 1000);
      if (input.runs.some((r) => r.name === name)) {
        // Created by an earlier pass whose status write was lost.
        newLastScheduled = Math.max(newLastScheduled ?? 0, due.time);
      } else if (spec.startingDeadlineSeconds !== undefined && due.time + spec.startingDeadlineSeconds * 1000 < nowMs) {
        miss(due.time, 'StartingDeadlineExceeded', `scheduled time ${dueIso} started no run: ${lateS}s late, past startingDeadlineSeconds ${spec.startingDeadlineSeconds}`);
      } else {
        const ok = admit();
        if (ok.ok) {
          create = build(name, 'scheduled', dueIso);
          newLastScheduled = due.time;
        } else {
          waiting.push(`scheduled time ${dueIso} waits: ${ok.message}`);
        }
      }
    }
  }

  // Run now: a new token starts one run (a scheduled run created in this pass serves it).
  const token = meta.annotations?.[RUN_NOW_ANNOTATION]?.trim();
  let lastRunNow = prev.lastRunNow;
  if (token) {
    const key = runNowKey(token);
    if (key !== prev.lastRunNow) {
      const name = manualRunName(meta.name, key);
      if (create) {
        lastRunNow = key;
        events.push({ type: 'Normal', reason: 'RunNow', message: cap(`run-now ${key}: served by scheduled run ${create.name}`) });
      } else if (input.runs.some((r) => r.name === name)) {
        lastRunNow = key;
      } else {
        const ok = admit();
        if (ok.ok) {
          create = build(name, 'manual', nowIso);
          lastRunNow = key;
        } else {
          waiting.push(cap(`run-now ${key} waits: ${ok.message}`));
        }
      }
    }
  }

  if (create) {
    events.push({ type: 'Normal', reason: 'SuccessfulCreate', message: cap(`created run ${create.name}${create.trigger === 'manual' ? ' (run now)' : ` for ${create.scheduledTime}`}`, 1024) });
    if (deleteActive.length > 0) events.push({ type: 'Normal', reason: 'Replaced', message: cap(`deleted active run ${deleteActive.join(', ')} (concurrencyPolicy Replace)`, 1024) });
  }
  // Events once: a missed time not recorded before, a wait the Ready condition did not tell yet.
  const prevMissed = prev.missed ?? [];
  for (const m of missed) {
    if (prevMissed.some((x) => x.time === m.time && x.reason === m.reason)) continue;
    events.push({ type: m.reason === 'Superseded' ? 'Normal' : 'Warning', reason: MISSED_EVENT[m.reason] ?? 'MissSchedule', message: m.message });
  }
  const prevReady = (prev.conditions ?? []).find((c) => c.type === 'Ready')?.message ?? '';
  for (const w of waiting) if (!prevReady.includes(w)) events.push({ type: 'Normal', reason: 'RunPostponed', message: w });

  // History: what goes, and never the baseline's runs (nor the run just created).
  const keep = new Set<string>(baseline);
  if (create) keep.add(create.name);
  const prune = pruneRuns(live, spec.successfulRunsHistoryLimit, spec.failedRunsHistoryLimit, keep);
  if (prune.length > 0) events.push({ type: 'Normal', reason: 'SuccessfulDelete', message: cap(`deleted finished run ${prune.join(', ')} (history limits)`, 1024) });

  // The status.
  const stillActive = active.filter((r) => !deleteActive.includes(r.name)).map((r) => r.name);
  if (create) stillActive.push(create.name);
  const newest = [...live].sort(newestFirst)[0];
  const lastRun = create?.name ?? newest?.name ?? prev.lastRun;
  const finished = live.filter(isFinished).sort(newestFirst);
  const withVerdict = finished.find((r) => r.verdict === 'Passed' || r.verdict === 'Failed');
  const lastVerdict = (withVerdict?.verdict as 'Passed' | 'Failed' | undefined) ?? prev.lastVerdict;
  let lastRegression = prev.lastRegression;
  const latestJudged = finished.find((r) => r.phase === 'Succeeded' || r.phase === 'Failed');
  if (latestJudged) {
    const tests = (latestJudged.regressed ?? []).slice(0, 64).map((t) => t.slice(0, 16));
    if (latestJudged.regressed === undefined) cond('Regressed', 'False', 'NotCompared', `the latest finished run, ${latestJudged.name}, was not compared with a baseline`);
    else if (tests.length === 0) cond('Regressed', 'False', 'NoRegressions', `the latest finished run, ${latestJudged.name}, did not regress against its baseline`);
    else {
      lastRegression = { run: latestJudged.name, tests };
      cond('Regressed', 'True', 'Regressions', `run ${latestJudged.name} regressed against its baseline in ${tests.join(', ')}`);
    }
  }

  let next: number | undefined;
  if (!spec.suspend) next = scheduleCron(spec.schedule, spec.timeZone).nextRun(now)?.getTime();
  const waitNote = waiting.length > 0 ? `; ${waiting.join('; ')}` : '';
  if (spec.suspend) cond('Ready', 'False', 'Suspended', `spec.suspend is true: no scheduled runs (a run-now still starts one)${waitNote}`);
  else cond('Ready', 'True', 'Scheduled', `${next !== undefined ? `next run at ${iso(next)}` : 'no further scheduled time'}${waitNote}`);

  const status: BenchmarkScheduleStatus = {
    observedGeneration: generation,
    ...(newLastScheduled !== undefined ? { lastScheduleTime: iso(newLastScheduled) } : {}),
    ...(next !== undefined ? { nextScheduleTime: iso(next) } : {}),
    active: stillActive.slice(0, MAX_ACTIVE_RUNS * 2),
    activeCount: stillActive.length,
    ...(lastRun !== undefined ? { lastRun } : {}),
    ...(lastVerdict !== undefined ? { lastVerdict } : {}),
    ...(lastRegression !== undefined ? { lastRegression } : {}),
    missed: withMissed(prev.missed ?? [], missed),
    ...(lastRunNow !== undefined ? { lastRunNow } : {}),
    conditions,
  };
  if (status.missed!.length === 0) delete status.missed;
  return {
    ...(create ? { create } : {}),
    deleteActive,
    prune,
    status,
    ...(next !== undefined ? { requeueAfterMs: Math.min(MAX_REQUEUE_MS, Math.max(0, next - nowMs)) } : {}),
    events,
  };
}
