/**
 * `npm run gen:crd`: writes the CRDs generated from the zod schemas (BenchmarkRun: crd.ts;
 * BenchmarkSchedule: schedule-crd.ts), to `crds/` and to the Helm chart's
 * `charts/swarmbench/crds/` (the same bytes; test/unit/schema.test.ts and
 * test/unit/schedule-api.test.ts check both).
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from '../paths.ts';
import { CRD_PATH, renderCrd } from './crd.ts';
import { SCHEDULE_CHART_CRD_PATH, SCHEDULE_CRD_PATH, renderScheduleCrd } from './schedule-crd.ts';

/** The chart's copy of the CRD (Helm installs what is in a chart's crds/ before the templates). */
const CHART_CRD_PATH = 'charts/swarmbench/crds/swarmbench.io_benchmarkruns.yaml';

const files: [string, string][] = [
  [CRD_PATH, renderCrd()],
  [CHART_CRD_PATH, renderCrd()],
  [SCHEDULE_CRD_PATH, renderScheduleCrd()],
  [SCHEDULE_CHART_CRD_PATH, renderScheduleCrd()],
];
for (const [path, text] of files) {
  const target = join(REPO_ROOT, path);
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, text);
  process.stdout.write(`wrote ${path}\n`);
}
