/**
 * The BenchmarkSchedule CustomResourceDefinition, generated from the zod schemas of schedule.ts
 * with the same structural rules as the BenchmarkRun CRD (crd.ts `openApiOf`). `npm run gen:crd`
 * writes it to `crds/` and to the Helm chart's `charts/swarmbench/crds/`, the same bytes
 * (test/unit/schedule-api.test.ts fails when either drifts). Cross-field rules (a cron expression
 * croner cannot parse, a baseline policy without its run) are refinements the operator checks
 * (Ready=False/SpecInvalid).
 */
import { crdOf, renderCrdText } from './crd.ts';
import { API_GROUP } from './schema.ts';
import { BENCHMARKSCHEDULE_KIND, BENCHMARKSCHEDULE_PLURAL, BenchmarkScheduleSpec, BenchmarkScheduleStatus } from './schedule.ts';

type Json = Record<string, unknown>;

export const SCHEDULE_CRD_FILE = `${API_GROUP}_${BENCHMARKSCHEDULE_PLURAL}.yaml`;
export const SCHEDULE_CRD_PATH = `crds/${SCHEDULE_CRD_FILE}`;
export const SCHEDULE_CHART_CRD_PATH = `charts/swarmbench/crds/${SCHEDULE_CRD_FILE}`;

export function buildScheduleCrd(): Json {
  return crdOf({
    kind: BENCHMARKSCHEDULE_KIND,
    plural: BENCHMARKSCHEDULE_PLURAL,
    singular: 'benchmarkschedule',
    shortName: 'bs',
    description: 'BenchmarkSchedule starts BenchmarkRuns from a template on a cron schedule, keeps a bounded history of them and follows their verdicts.',
    columns: [
      { name: 'Schedule', type: 'string', jsonPath: '.spec.schedule' },
      { name: 'Timezone', type: 'string', jsonPath: '.spec.timeZone', priority: 1 },
      { name: 'Suspend', type: 'boolean', jsonPath: '.spec.suspend' },
      { name: 'Active', type: 'integer', jsonPath: '.status.activeCount' },
      { name: 'Last Schedule', type: 'date', jsonPath: '.status.lastScheduleTime' },
      // A date column shows a future time as <invalid>: the next time is printed as it is.
      { name: 'Next', type: 'string', jsonPath: '.status.nextScheduleTime' },
      { name: 'Last Verdict', type: 'string', jsonPath: '.status.lastVerdict' },
      { name: 'Last Run', type: 'string', jsonPath: '.status.lastRun', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
    spec: BenchmarkScheduleSpec,
    status: BenchmarkScheduleStatus,
  });
}

export function renderScheduleCrd(): string {
  return renderCrdText(buildScheduleCrd(), 'src/api/schedule.ts');
}
