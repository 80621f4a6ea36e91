/**
 * The `BenchmarkSchedule` resource (docs/schedules.md): BenchmarkRuns made from a template on a
 * cron schedule, as a CronJob makes Jobs. Same group and version as BenchmarkRun (kube/names.ts);
 * its CRD is generated from these schemas (`schedule-crd.ts`, `npm run gen:crd`), and the
 * scheduling decisions are operator/schedule-plan.ts's.
 *
 * Conventions of schema.ts, kept here:
 * - the schema carries no `default`s (the API server never rewrites what a user applied):
 *   `SCHEDULE_DEFAULTS` and `resolveScheduleSpec` give them, the reference documents them;
 * - every bound is tight and named, and a value that breaks one is an error naming the field;
 * - what the CRD cannot express (a cron expression croner cannot parse or that never fires, a
 *   time zone that is not an IANA name, a baseline policy without its run, template fields that
 *   would make the runs of one schedule collide) is a zod refinement: the operator reports it as
 *   Ready=False/SpecInvalid, the field named.
 *
 * Cron expressions are parsed by croner (npm `croner`): five fields (minute hour day-of-month
 * month day-of-week; names, ranges, steps, lists, `L`, `W`, `#` and `?`) or a nickname
 * (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`), evaluated in
 * `spec.timeZone` (default UTC) with croner's DST rules: a fixed-time schedule (`30 2 * * *`) whose
 * time falls in a spring-forward gap runs when the clock has jumped, and once when the time occurs
 * twice; an interval schedule (`30 * * * *`) skips the gap and runs on both occurrences.
 */
import { Cron } from 'croner';
import { z } from 'zod';
import { API_VERSION_FULL, BENCHMARKSCHEDULE_KIND, BENCHMARKSCHEDULE_PLURAL, DNS_SUBDOMAIN, LABEL_VALUE, qualifiedNameProblem } from '../kube/names.ts';
import { BenchmarkRunSpec, Condition, MAX_BASELINE_POOL, ObjectMeta, Verdict } from './schema.ts';
import { checkManifest, shapeProblem, zodErrors, type Validated } from './validate.ts';

// ---------------------------------------------------------------------------------------------
// Identity, labels and annotations

export { BENCHMARKSCHEDULE_KIND, BENCHMARKSCHEDULE_PLURAL };
/** On every run a schedule creates: the schedule's name (list a schedule's runs with it). */
export const SCHEDULE_LABEL = 'swarmbench.io/schedule';
/** On every run a schedule creates: the scheduled time it stands for (RFC 3339, UTC), or when a run-now trigger was handled. */
export const SCHEDULED_TIME_ANNOTATION = 'swarmbench.io/scheduled-time';
/** On every run a schedule creates: `scheduled` or `manual` (a run-now trigger). */
export const TRIGGER_ANNOTATION = 'swarmbench.io/trigger';
/**
 * On a schedule: a new non-empty value starts a run now (once per value; the value handled is
 * `status.lastRunNow`). Any token: a timestamp, a commit, a counter.
 */
export const RUN_NOW_ANNOTATION = 'swarmbench.io/run-now';
/** Label and annotation keys under this prefix are SwarmBench's: a run template may not set them. */
export const RESERVED_PREFIX = 'swarmbench.io/';

// ---------------------------------------------------------------------------------------------
// Bounds and defaults

export const CRON_MAX_LENGTH = 128;
export const TEMPLATE_MAX_LABELS = 32;
export const TEMPLATE_MAX_ANNOTATIONS = 32;
export const TEMPLATE_ANNOTATION_MAX_LENGTH = 4096;
export const HISTORY_LIMIT_MAX = 100;
export const DEADLINE_MIN_SECONDS = 10;
export const DEADLINE_MAX_SECONDS = 31_536_000;
/** A `pooled` policy's most runs: the most a run's spec.baseline.pool names. */
export const POOL_MAX = MAX_BASELINE_POOL;
/** Runs of one schedule active at once (concurrencyPolicy Allow): more wait. */
export const MAX_ACTIVE_RUNS = 10;
/** Missed times kept in `status.missed`, newest last. */
export const MAX_MISSED_RECORDS = 10;
/** Characters of a missed record's message. */
export const MISSED_MESSAGE_MAX = 256;
/** A run-now token longer than this is recorded by its SHA-256 (schedule-plan.ts `runNowKey`). */
export const RUN_NOW_MAX_LENGTH = 253;
/** Tests with a lasting shift named in `status.history.shifts` (the rest are counted). */
export const HISTORY_STATUS_MAX_SHIFTS = 8;

export const SCHEDULE_DEFAULTS = {
  timeZone: 'UTC',
  suspend: false,
  concurrencyPolicy: 'Forbid',
  successfulRunsHistoryLimit: 3,
  failedRunsHistoryLimit: 1,
  baselinePolicy: 'none',
  pooledCount: 5,
} as const;

// ---------------------------------------------------------------------------------------------
// Cron and time zone

const CRON_OPTIONS = { mode: '5-part', paused: true } as const;
/** A fixed reference for "does it ever fire" (validation reads no clock). */
const FIRES_FROM = new Date('2000-01-01T00:00:00Z');

/** The schedule's cron in its time zone (croner, no timer: nothing runs, it only computes times). */
export function scheduleCron(schedule: string, timeZone: string = SCHEDULE_DEFAULTS.timeZone): Cron {
  return new Cron(schedule.trim(), { ...CRON_OPTIONS, timezone: timeZone });
}

/** Why `expr` is not a cron expression of five fields croner accepts, or one that never fires; undefined if it is fine. */
export function cronProblem(expr: string): string | undefined {
  let cron: Cron;
  try {
    cron = new Cron(expr.trim(), { ...CRON_OPTIONS, timezone: 'UTC' });
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).replace(/^CronPattern: /, '').slice(0, 200);
    return `must be a cron expression of 5 fields (minute hour day-of-month month day-of-week) or a nickname such as @daily: ${why}`;
  }
  if (cron.nextRun(FIRES_FROM) === null) return 'never fires: no date matches it';
  return undefined;
}

/** The shape of a cron expression (five fields or a nickname), for the CRD; croner decides the rest. */
const CRON_SHAPE = /^\s*(@[a-z]+|\S+(\s+\S+){4})\s*$/;

/** An IANA name's shape (`Area/Location`, `UTC`, `Etc/GMT+5`): no offsets (`+01:00`), no `Local`. */
const IANA_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+){0,2}$/;

/** Why `tz` is not an IANA time zone name this runtime knows, or undefined. */
const IANA_MESSAGE = 'must be an IANA time zone name such as Europe/Berlin or UTC';

export function timeZoneProblem(tz: string): string | undefined {
  const what = IANA_MESSAGE;
  if (!IANA_NAME.test(tz) || tz === 'Local') return what;
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    return `${what} (unknown zone)`;
  }
  // Intl reads names case-insensitively; IANA names (and the API server's tools) do not.
  if (resolved !== tz && resolved.toLowerCase() === tz.toLowerCase()) return `${what} (spelled ${resolved})`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Spec

const objectName = (what: string) => z.string().min(1).max(253).regex(DNS_SUBDOMAIN, `must be a ${what} name: a DNS-1123 subdomain`);
const labelValue = z.string().max(63).regex(LABEL_VALUE, "must be a label value: at most 63 of letters, digits, '-', '_' and '.', starting and ending with a letter or digit");

/** The keys of a template's labels or annotations: label keys, not SwarmBench's, at most `max`. */
function templateKeys(max: number) {
  return (m: Record<string, unknown>, ctx: z.RefinementCtx<Record<string, unknown>>) => {
    const keys = Object.keys(m);
    if (keys.length > max) ctx.addIssue({ code: 'custom', message: `must have at most ${max} entries (has ${keys.length})` });
    for (const k of keys.slice(0, 200)) {
      const problem = qualifiedNameProblem(k);
      if (problem) ctx.addIssue({ code: 'custom', message: problem, path: [k] });
      else if (k.startsWith(RESERVED_PREFIX)) ctx.addIssue({ code: 'custom', message: `keys under ${RESERVED_PREFIX} are set by SwarmBench`, path: [k] });
    }
  };
}

export const RunTemplate = z
  .object({
    metadata: z
      .object({
        labels: z.record(z.string(), labelValue).superRefine(templateKeys(TEMPLATE_MAX_LABELS)).optional(),
        annotations: z.record(z.string(), z.string().max(TEMPLATE_ANNOTATION_MAX_LENGTH)).superRefine(templateKeys(TEMPLATE_MAX_ANNOTATIONS)).optional(),
      })
      .strict()
      .optional(),
    /** The spec of each run (a BenchmarkRun spec: docs/reference.md). */
    spec: BenchmarkRunSpec,
  })
  .strict();

export const ConcurrencyPolicy = z.enum(['Forbid', 'Replace', 'Allow']);
export type ConcurrencyPolicy = z.infer<typeof ConcurrencyPolicy>;

export const BaselinePolicyName = z.enum(['none', 'previous', 'pinned', 'pooled']);
export type BaselinePolicyName = z.infer<typeof BaselinePolicyName>;

export const BaselinePolicy = z
  .object({
    policy: BaselinePolicyName,
    /** `pinned`: the BenchmarkRun every run is compared with. */
    run: objectName('BenchmarkRun').optional(),
    /** `pooled`: how many of the latest successful runs make the pool. */
    count: z.number().int().min(1).max(POOL_MAX).optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.policy === 'pinned' && b.run === undefined) ctx.addIssue({ code: 'custom', message: "is required with policy 'pinned'", path: ['run'] });
    if (b.policy !== 'pinned' && b.run !== undefined) ctx.addIssue({ code: 'custom', message: "is only for policy 'pinned'", path: ['run'] });
    if (b.policy !== 'pooled' && b.count !== undefined) ctx.addIssue({ code: 'custom', message: "is only for policy 'pooled'", path: ['count'] });
  });
export type BaselinePolicy = z.infer<typeof BaselinePolicy>;

const historyLimit = z.number().int().min(0).max(HISTORY_LIMIT_MAX);

export const BenchmarkScheduleSpec = z
  .object({
    /** When runs start: 5 cron fields or a nickname, in `timeZone`. */
    schedule: z
      .string()
      .min(1)
      .max(CRON_MAX_LENGTH)
      .regex(CRON_SHAPE, 'must be a cron expression of 5 fields or a nickname such as @daily')
      .superRefine((s, ctx) => {
        const p = CRON_SHAPE.test(s) ? cronProblem(s) : undefined;
        if (p) ctx.addIssue({ code: 'custom', message: p });
      }),
    timeZone: z
      .string()
      .min(1)
      .max(64)
      .regex(IANA_NAME, IANA_MESSAGE)
      .superRefine((s, ctx) => {
        const p = IANA_NAME.test(s) ? timeZoneProblem(s) : undefined;
        if (p) ctx.addIssue({ code: 'custom', message: p });
      })
      .optional(),
    suspend: z.boolean().optional(),
    concurrencyPolicy: ConcurrencyPolicy.optional(),
    startingDeadlineSeconds: z.number().int().min(DEADLINE_MIN_SECONDS).max(DEADLINE_MAX_SECONDS).optional(),
    runTemplate: RunTemplate,
    successfulRunsHistoryLimit: historyLimit.optional(),
    failedRunsHistoryLimit: historyLimit.optional(),
    baseline: BaselinePolicy.optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const run = s.runTemplate.spec;
    const at = (...p: string[]) => ['runTemplate', 'spec', ...p];
    if (run.export?.configMapName !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'must not be set in a schedule: each run exports to its own <run>-results', path: at('export', 'configMapName') });
    }
    if (run.suspend !== undefined) ctx.addIssue({ code: 'custom', message: 'must not be set in a schedule: suspend the schedule (spec.suspend)', path: at('suspend') });
    const policy = s.baseline?.policy ?? 'none';
    if (policy !== 'none') {
      for (const k of ['runRef', 'configMapRef', 'pool'] as const) {
        if (run.baseline?.[k] !== undefined) ctx.addIssue({ code: 'custom', message: `must not be set with baseline policy '${policy}' (the schedule chooses the baseline)`, path: at('baseline', k) });
      }
    }
  });
export type BenchmarkScheduleSpec = z.infer<typeof BenchmarkScheduleSpec>;

/** A spec with its defaults applied (what the scheduling logic reads). */
export interface ResolvedScheduleSpec {
  schedule: string;
  timeZone: string;
  suspend: boolean;
  concurrencyPolicy: ConcurrencyPolicy;
  startingDeadlineSeconds?: number;
  runTemplate: z.infer<typeof RunTemplate>;
  successfulRunsHistoryLimit: number;
  failedRunsHistoryLimit: number;
  baseline: { policy: BaselinePolicyName; run?: string; count: number };
}

export function resolveScheduleSpec(s: BenchmarkScheduleSpec): ResolvedScheduleSpec {
  const d = SCHEDULE_DEFAULTS;
  return {
    schedule: s.schedule.trim(),
    timeZone: s.timeZone ?? d.timeZone,
    suspend: s.suspend ?? d.suspend,
    concurrencyPolicy: s.concurrencyPolicy ?? d.concurrencyPolicy,
    ...(s.startingDeadlineSeconds !== undefined ? { startingDeadlineSeconds: s.startingDeadlineSeconds } : {}),
    runTemplate: s.runTemplate,
    successfulRunsHistoryLimit: s.successfulRunsHistoryLimit ?? d.successfulRunsHistoryLimit,
    failedRunsHistoryLimit: s.failedRunsHistoryLimit ?? d.failedRunsHistoryLimit,
    baseline: {
      policy: s.baseline?.policy ?? d.baselinePolicy,
      ...(s.baseline?.run !== undefined ? { run: s.baseline.run } : {}),
      count: s.baseline?.count ?? d.pooledCount,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Status (written by the operator through /status)

const time = z.string().max(40).regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'must be an RFC 3339 time in UTC');
const runName = z.string().max(253);

export const MissedSchedule = z.object({
  /** The scheduled time that did not start a run. */
  time,
  /** StartingDeadlineExceeded, Superseded (a later time came first), TooManyMissed or NameTaken (operator/schedule.ts). */
  reason: z.string().max(64),
  message: z.string().max(MISSED_MESSAGE_MAX),
});
export type MissedSchedule = z.infer<typeof MissedSchedule>;

/** A test of the history whose figures moved to a new level and stayed there (report/trend.ts `detectShift`). */
export const ScheduleShift = z.object({
  /** The test (1.1 … 6.3). */
  test: z.string().max(16),
  direction: z.enum(['worse', 'better']),
  /** The shift in % of the level before it (absent when that level is 0). */
  changePct: z.number().optional(),
  /** The first run of the new level. */
  since: runName,
});
export type ScheduleShift = z.infer<typeof ScheduleShift>;

/** The history of figures the schedule keeps (docs/schedules.md "The history of figures"). */
export const ScheduleHistoryStatus = z.object({
  /** The ConfigMap that holds it (`<schedule>-history`, key `history.json`). */
  configMapName: z.string().max(253),
  /** Runs in it. */
  runs: z.number().int().min(0),
  /** The newest run in it. */
  lastRun: runName.optional(),
  /** Tests with a lasting shift, worse first, at most HISTORY_STATUS_MAX_SHIFTS. */
  shifts: z.array(ScheduleShift).max(HISTORY_STATUS_MAX_SHIFTS),
  /** Tests with a shift beyond those named. */
  moreShifts: z.number().int().min(0).optional(),
});
export type ScheduleHistoryStatus = z.infer<typeof ScheduleHistoryStatus>;

export const BenchmarkScheduleStatus = z
  .object({
    observedGeneration: z.number().int(),
    /** The scheduled time of the latest run the schedule started. */
    lastScheduleTime: time,
    /** The next scheduled time (absent while suspended). */
    nextScheduleTime: time,
    /** The schedule's runs that have not finished, oldest first. */
    active: z.array(runName).max(MAX_ACTIVE_RUNS * 2),
    /** How many (the printer column). */
    activeCount: z.number().int().min(0),
    /** The latest run the schedule started. */
    lastRun: runName,
    /** The verdict of the latest finished run with one. */
    lastVerdict: Verdict,
    /** The latest finished run that regressed against its baseline, and the tests that did. */
    lastRegression: z.object({ run: runName, tests: z.array(z.string().max(16)).max(64) }),
    /** Scheduled times that started no run, newest last. */
    missed: z.array(MissedSchedule).max(MAX_MISSED_RECORDS),
    /** The `swarmbench.io/run-now` value handled last (a long one by its SHA-256). */
    lastRunNow: z.string().max(RUN_NOW_MAX_LENGTH),
    /** The history of figures of the schedule's finished runs, and the tests whose figures shifted. */
    history: ScheduleHistoryStatus,
    conditions: z.array(Condition).max(8),
  })
  .partial();
export type BenchmarkScheduleStatus = z.infer<typeof BenchmarkScheduleStatus>;

// ---------------------------------------------------------------------------------------------
// Manifest

/** A `BenchmarkSchedule` manifest as `kubectl apply` takes it. */
export const BenchmarkScheduleManifest = z.object({
  apiVersion: z.literal(API_VERSION_FULL),
  kind: z.literal(BENCHMARKSCHEDULE_KIND),
  metadata: ObjectMeta,
  spec: BenchmarkScheduleSpec,
  status: z.unknown().optional(),
});
export type BenchmarkScheduleManifest = z.infer<typeof BenchmarkScheduleManifest>;


/** A schedule manifest object, checked as validate.ts checks a run's: unknown fields, shape, schema; `status` dropped. */
export function validateScheduleManifest(doc: unknown): Validated<BenchmarkScheduleManifest> {
  return checkManifest(doc, BenchmarkScheduleManifest, 'BenchmarkSchedule');
}

/** A schedule's spec as the operator reads it: errors name `spec.…`. */
export function validateScheduleSpec(spec: unknown): Validated<BenchmarkScheduleSpec> {
  const shape = shapeProblem(spec);
  if (shape) return { ok: false, errors: [{ ...shape, path: shape.path === '(root)' ? 'spec' : `spec.${shape.path}` }] };
  const r = BenchmarkScheduleSpec.safeParse(spec);
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, errors: zodErrors(r.error, ['spec']) };
}
