/**
 * `npm run gen:crd`: writes the CRD generated from the zod schemas, to `crds/` and to the Helm
 * chart's `charts/swarmbench/crds/` (the same bytes; test/unit/schema.test.ts checks both).
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from '../paths.ts';
import { CRD_PATH, renderCrd } from './crd.ts';

/** The chart's copy of the CRD (Helm installs what is in a chart's crds/ before the templates). */
const CHART_CRD_PATH = 'charts/swarmbench/crds/swarmbench.io_benchmarkruns.yaml';

const text = renderCrd();
for (const path of [CRD_PATH, CHART_CRD_PATH]) {
  const target = join(REPO_ROOT, path);
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, text);
  process.stdout.write(`wrote ${path}\n`);
}
