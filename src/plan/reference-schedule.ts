/**
 * The BenchmarkSchedule resource reference (`docs/reference-schedule.md`), rendered from the
 * generated CRD's openAPIV3Schema (api/schedule-crd.ts) with the tables of reference.ts, so types,
 * required fields, enums and bounds are the ones the API server enforces. The run template's spec
 * is a BenchmarkRun spec: it links to docs/reference.md instead of repeating it.
 * `node src/plan/gen-reference.ts` writes it; test/unit/schedule-api.test.ts fails when the
 * committed file drifts, when a field has no note, or when a note names no field.
 */
import { buildScheduleCrd } from '../api/schedule-crd.ts';
import {
  DEADLINE_MAX_SECONDS,
  HISTORY_LIMIT_MAX,
  MAX_ACTIVE_RUNS,
  MAX_MISSED_RECORDS,
  RUN_NOW_ANNOTATION,
  SCHEDULE_DEFAULTS,
  SCHEDULE_LABEL,
  SCHEDULED_TIME_ANNOTATION,
  TEMPLATE_MAX_ANNOTATIONS,
  TEMPLATE_MAX_LABELS,
} from '../api/schedule.ts';
import { CONDITION_FIELD_DOCS, renderTable, tables, type Lookup } from './reference.ts';

type Json = Record<string, unknown>;

export const SCHEDULE_REFERENCE_PATH = 'docs/reference-schedule.md';

/** Below these the tables stop (a BenchmarkRun spec, documented in docs/reference.md). */
const STOP = new Set(['spec.runTemplate.spec']);

/** What each field means. Keys are field paths; `[]` is an array's element. */
export const SCHEDULE_NOTES: Record<string, string> = {
  'spec': 'When runs start, what they run, how many are kept and what they are compared with.',
  'spec.schedule': 'Cron expression of 5 fields (minute hour day-of-month month day-of-week; names, ranges, steps, lists, `L`, `W`, `#`, `?`) or a nickname (`@yearly`, `@monthly`, `@weekly`, `@daily`, `@hourly`), parsed by croner. One that never fires is refused.',
  'spec.timeZone': 'IANA time zone the schedule is read in (`Europe/Berlin`). Daylight saving: a fixed time in the spring gap runs when the clock has jumped, a repeated time once; an interval schedule skips the gap and runs on both occurrences.',
  'spec.suspend': 'No scheduled runs while true (missed times count as missed; a run-now still starts a run).',
  'spec.concurrencyPolicy': `While a run of the schedule is active: \`Forbid\` postpones the next one until it finishes, \`Replace\` deletes it and starts the new one, \`Allow\` runs them side by side (at most ${MAX_ACTIVE_RUNS}).`,
  'spec.startingDeadlineSeconds': 'A scheduled time older than this when it could start starts no run (recorded in `status.missed`). Without it a late time always starts.',
  'spec.runTemplate': 'The run each scheduled time creates.',
  'spec.runTemplate.metadata': 'Labels and annotations of each run.',
  'spec.runTemplate.metadata.labels': `At most ${TEMPLATE_MAX_LABELS}; keys under \`swarmbench.io/\` are SwarmBench's (\`${SCHEDULE_LABEL}\` is set on every run).`,
  'spec.runTemplate.metadata.annotations': `At most ${TEMPLATE_MAX_ANNOTATIONS}; keys under \`swarmbench.io/\` are SwarmBench's (\`${SCHEDULED_TIME_ANNOTATION}\` is set on every run).`,
  'spec.runTemplate.spec': 'A BenchmarkRun spec ([reference.md](reference.md#spec)), except `export.configMapName` (each run exports to its own `<run>-results`) and `suspend`.',
  'spec.successfulRunsHistoryLimit': 'Succeeded runs kept; older ones are deleted (not those the baseline policy compares with).',
  'spec.failedRunsHistoryLimit': 'Failed and Cancelled runs kept; older ones are deleted.',
  'spec.baseline': 'What each run is compared with. With a policy other than `none`, the template may not set `baseline.runRef` or `baseline.configMapRef` (`failOnRegression` stays the template\'s).',
  'spec.baseline.policy': '`none`; `previous`: the latest Succeeded run of the schedule; `pinned`: the run named in `run`; `pooled`: the latest `count` Succeeded runs (recorded on the run; the pooled comparison is not built yet, docs/schedules.md).',
  'spec.baseline.run': 'With `pinned`: the BenchmarkRun in this namespace.',
  'spec.baseline.count': 'With `pooled`: how many of the latest Succeeded runs.',
  'status': 'Written by the operator through the /status subresource.',
  'status.observedGeneration': 'The `metadata.generation` the status was written for.',
  'status.lastScheduleTime': 'The scheduled time of the latest run the schedule started.',
  'status.nextScheduleTime': 'The next scheduled time; absent while suspended.',
  'status.active': 'The runs of the schedule that have not finished, oldest first.',
  'status.activeCount': 'How many (the Active column).',
  'status.lastRun': 'The latest run the schedule started.',
  'status.lastVerdict': 'The verdict of the latest finished run that has one.',
  'status.lastRegression': 'The latest finished run that regressed against its baseline.',
  'status.lastRegression.run': 'The run.',
  'status.lastRegression.tests': 'Ids of its Regressed tests.',
  'status.missed': `Scheduled times that started no run, the newest ${MAX_MISSED_RECORDS}.`,
  'status.missed[].time': 'The scheduled time (RFC 3339, UTC).',
  'status.missed[].reason': '`StartingDeadlineExceeded`, `Superseded` (later times came first: only the latest of several missed times starts), `TooManyMissed` (more than 100) or `NameTaken` (a run of the name the time gives exists and is not the schedule\'s).',
  'status.missed[].message': 'What happened, with the figures.',
  'status.lastRunNow': `The \`${RUN_NOW_ANNOTATION}\` value handled last (a value over 253 characters by its SHA-256): each new value starts one run.`,
  'status.history': 'The history of figures the schedule keeps of its finished runs (docs/schedules.md, "The history of figures"), and the tests whose figures moved to a lasting new level.',
  'status.history.configMapName': 'The ConfigMap that holds it (`<schedule>-history`, key `history.json`), controlled by the schedule.',
  'status.history.runs': 'Runs in it (each test keeps its 60 most recent, within 512 KiB).',
  'status.history.lastRun': 'The newest run in it.',
  'status.history.shifts': 'Tests with a lasting shift (docs/trends.md), worse first, at most 8.',
  'status.history.shifts[].test': 'The test id.',
  'status.history.shifts[].direction': '`worse` or `better`, by the test\'s target.',
  'status.history.shifts[].changePct': 'The shift in % of the level before it (absent when that level is 0).',
  'status.history.shifts[].since': 'The first run of the new level.',
  'status.history.moreShifts': 'Tests with a shift beyond the 8 named.',
  'status.conditions': '`Ready` (True: scheduling, the message names the next time and what waits; False: `Suspended` or `SpecInvalid` naming the fields) and `Regressed` (the latest finished run against its baseline).',
  ...CONDITION_FIELD_DOCS,
};

const d = SCHEDULE_DEFAULTS;
const SCHEDULE_FIXED_DEFAULTS: Record<string, string> = {
  'spec.timeZone': `\`${d.timeZone}\``,
  'spec.suspend': `\`${String(d.suspend)}\``,
  'spec.concurrencyPolicy': `\`${d.concurrencyPolicy}\``,
  'spec.startingDeadlineSeconds': 'none',
  'spec.successfulRunsHistoryLimit': `\`${d.successfulRunsHistoryLimit}\``,
  'spec.failedRunsHistoryLimit': `\`${d.failedRunsHistoryLimit}\``,
  'spec.baseline.policy': `\`${d.baselinePolicy}\``,
  'spec.baseline.count': `\`${d.pooledCount}\``,
};

const LOOKUP: Lookup = { note: (p) => SCHEDULE_NOTES[p] ?? '', default: (p) => SCHEDULE_FIXED_DEFAULTS[p] ?? '' };

function specAndStatus(): { spec: Json; status: Json } {
  const crd = buildScheduleCrd() as { spec: { versions: { schema: { openAPIV3Schema: { properties: { spec: Json; status: Json } } } }[] } };
  const props = crd.spec.versions[0]!.schema.openAPIV3Schema.properties;
  return { spec: props.spec, status: props.status };
}

/** Every documented field path of the schedule (the keys `SCHEDULE_NOTES` may use). */
export function scheduleFieldPaths(): string[] {
  const { spec, status } = specAndStatus();
  const out: string[] = [];
  for (const t of [...tables(spec, 'spec', [], STOP), ...tables(status, 'status', [], STOP)]) {
    if (!t.path.endsWith('[]')) out.push(t.path);
    for (const k of Object.keys(t.node.properties as Json)) out.push(`${t.path}.${k}`);
  }
  return [...new Set(out)];
}

export function renderScheduleReference(): string {
  const { spec, status } = specAndStatus();
  const specTables = tables(spec, 'spec', [], STOP);
  const statusTables = tables(status, 'status', [], STOP);
  const linked = new Set([...specTables, ...statusTables].map((t) => t.path));
  return [
    '<!-- Generated by `node src/plan/gen-reference.ts` (npm run gen:reference) from src/api/schedule.ts. Do not edit by hand. -->',
    '# BenchmarkSchedule reference',
    '',
    '`apiVersion: swarmbench.io/v1alpha1`, `kind: BenchmarkSchedule` (plural `benchmarkschedules`, short name `bs`, category `swarmbench`), namespaced.',
    '',
    'Types, required fields, enums and bounds are those of the CRD (`crds/swarmbench.io_benchmarkschedules.yaml`), which the API server enforces.',
    'What it cannot express (a cron expression croner refuses or that never fires, a time zone that is not an IANA name, a baseline policy',
    'without its run, template fields that would make a schedule\'s runs collide) is checked by the operator (Ready=False, `SpecInvalid`).',
    `Defaults are applied when the schedule is read, never written into the object. History limits are at most ${HISTORY_LIMIT_MAX},`,
    `\`startingDeadlineSeconds\` at most ${DEADLINE_MAX_SECONDS}.`,
    '',
    'How scheduling works, and what is built so far: [schedules.md](schedules.md). Example: [examples/nightly-schedule.yaml](../examples/nightly-schedule.yaml).',
    '',
    '## Spec',
    '',
    ...specTables.map((t) => renderTable(t, linked, LOOKUP)),
    '## Status',
    '',
    ...statusTables.map((t) => renderTable(t, linked, LOOKUP)),
  ].join('\n');
}
