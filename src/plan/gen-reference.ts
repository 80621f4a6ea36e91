/** `npm run gen:reference` (`node src/plan/gen-reference.ts`): writes docs/reference.md from the schema. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../paths.ts';
import { REFERENCE_PATH, renderReference } from './reference.ts';

writeFileSync(join(REPO_ROOT, REFERENCE_PATH), renderReference());
process.stdout.write(`wrote ${REFERENCE_PATH}\n`);
