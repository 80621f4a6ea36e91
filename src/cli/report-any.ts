/**
 * `swarmbench report X`: X is a result document on disk or a run in the cluster.
 *
 * The rule: X is a FILE when it exists as a path, ends in `.json`, or holds a `/` (report.ts,
 * what `report` always did); otherwise X is the name of a run in the cluster
 * (cluster/report.ts). With no argument (`--rules`, `--help`) it is report.ts.
 */
import { existsSync } from 'node:fs';
import { guarded } from './cluster/guard.ts';

/** Options of either form that take a value (the next argument is not X). */
const VALUE_OPTIONS = new Set([
  '-b', '--baseline', '-o', '--out', '-f', '--format', '--alpha', '--min-effect', '--min-samples',
  '--kubeconfig', '--context', '-n', '--namespace', '--request-timeout',
]);

/** The first argument that is not an option nor an option's value. */
export function firstPositional(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return argv[i + 1];
    if (a.startsWith('-') && a !== '-') {
      if (!a.includes('=') && VALUE_OPTIONS.has(a)) i++;
      continue;
    }
    return a;
  }
  return undefined;
}

/** `file` or `run`: the rule in the header. */
export function reportTarget(arg: string | undefined, exists: (p: string) => boolean = existsSync): 'file' | 'run' {
  if (arg === undefined) return 'file';
  return exists(arg) || /\.json$/i.test(arg) || arg.includes('/') ? 'file' : 'run';
}

export async function main(argv: string[]): Promise<number> {
  const first = firstPositional(argv);
  if (first === undefined && (argv.includes('-h') || argv.includes('--help'))) {
    // Both forms: the run in the cluster, then the result document on disk.
    process.stdout.write((await import('./cluster/report.ts')).usage());
    process.stdout.write('\nFor a result document on disk:\n');
    return (await import('./report.ts')).main(['--help']);
  }
  if (reportTarget(first) === 'file') return (await import('./report.ts')).main(argv);
  const { main: runMain } = await import('./cluster/report.ts');
  return guarded('report', runMain).main(argv);
}
