/**
 * The program's name as the user typed it: `kubectl swarmbench` when started through the kubectl
 * plugin's executable (bin/kubectl-swarmbench.js), else `swarmbench`. Every message and usage
 * line of the cluster commands names the program this way, so its advice can be pasted.
 */
import { basename } from 'node:path';

export function prog(argv1: string | undefined = process.argv[1]): string {
  return argv1 && basename(argv1).startsWith('kubectl-') ? 'kubectl swarmbench' : 'swarmbench';
}
