/** `npm run gen:rbac`: writes manifests/runner-rbac.yaml from RUNNER_ROLE_RULES (a test keeps them in sync). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../paths.ts';
import { renderRunnerRbac } from './rbac.ts';

writeFileSync(join(REPO_ROOT, 'manifests', 'runner-rbac.yaml'), renderRunnerRbac());
process.stdout.write('wrote manifests/runner-rbac.yaml\n');
