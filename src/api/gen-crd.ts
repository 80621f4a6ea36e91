/** `npm run gen:crd`: writes the CRD generated from the zod schemas. */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from '../paths.ts';
import { CRD_PATH, renderCrd } from './crd.ts';

const target = join(REPO_ROOT, CRD_PATH);
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, renderCrd());
process.stdout.write(`wrote ${CRD_PATH}\n`);
