/**
 * `npm run gen:reference` (`node src/plan/gen-reference.ts`): writes docs/reference.md
 * (BenchmarkRun) and docs/reference-schedule.md (BenchmarkSchedule) from the schemas.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../paths.ts';
import { REFERENCE_PATH, renderReference } from './reference.ts';
import { SCHEDULE_REFERENCE_PATH, renderScheduleReference } from './reference-schedule.ts';

for (const [path, text] of [[REFERENCE_PATH, renderReference()], [SCHEDULE_REFERENCE_PATH, renderScheduleReference()]] as const) {
  writeFileSync(join(REPO_ROOT, path), text);
  process.stdout.write(`wrote ${path}\n`);
}
