/**
 * `swarmbench get [RUN] [-A] [-o table|json|yaml|name]`: the runs of a namespace (or of every
 * namespace), or one run, as a table of phase, attempt, passed/total, success rate, verdict, the
 * step running now and age; `-o json|yaml` prints the objects as the API server returns them,
 * `-o name` one `benchmarkrun.swarmbench.io/NAME` per line (for scripts and shell completion).
 * Exit 0 when it could list, 2 for a run that does not exist, 3 when the cluster cannot be read.
 */
import { dump } from 'js-yaml';
import { API_GROUP } from '../../kube/names.ts';
import { CONNECTION_HELP, parseCommand, prog, runNameArg } from './args.ts';
import { connect } from './client.ts';
import { CliError } from './errors.ts';
import { EXIT } from './exit.ts';
import { runsTable } from './format.ts';
import { getRun, listRuns, type RunObject } from './runs.ts';

export const OPTIONS = {
  'all-namespaces': { type: 'boolean', short: 'A', default: false },
  output: { type: 'string', short: 'o' },
} as const;

const OUTPUTS = ['table', 'json', 'yaml', 'name'] as const;

export const usage = (): string => `usage: ${prog()} get [RUN] [-A] [-o ${OUTPUTS.join('|')}] [options]

Lists the BenchmarkRuns of the namespace (or one run): phase, attempt, passed/total, success
rate, verdict, the step running now, age.

  -A, --all-namespaces       the runs of every namespace
  -o, --output F             ${OUTPUTS.join(', ')} (default table)

${CONNECTION_HELP}`;

export function formatRuns(runs: RunObject[], output: (typeof OUTPUTS)[number], nowMs: number, single: boolean, withNamespace: boolean): string {
  switch (output) {
    case 'name':
      return runs.map((r) => `benchmarkrun.${API_GROUP}/${r.metadata.name}\n`).join('');
    case 'json':
      return `${JSON.stringify(single ? runs[0] : { apiVersion: 'v1', kind: 'List', items: runs }, null, 2)}\n`;
    case 'yaml':
      return dump(single ? runs[0] : { apiVersion: 'v1', kind: 'List', items: runs }, { noRefs: true, lineWidth: -1 });
    case 'table':
      return runsTable(runs, nowMs, withNamespace);
  }
}

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand('get', argv, OPTIONS, 1);
  const v = p.values;
  if (v.help) {
    process.stdout.write(usage());
    return 0;
  }
  const output = (v.output ?? 'table') as (typeof OUTPUTS)[number];
  if (!OUTPUTS.includes(output)) throw new CliError(`--output ${v.output}: unknown format (known: ${OUTPUTS.join(', ')})`, EXIT.invalid);
  const name = p.positionals[0] !== undefined ? runNameArg(p.positionals[0]) : undefined;
  if (name && v['all-namespaces']) throw new CliError('get: a run name and --all-namespaces do not go together; give -n NAMESPACE', EXIT.invalid);
  const c = connect(p.connection);
  const runs = name ? [await getRun(c, name)] : await listRuns(c, v['all-namespaces'] === true);
  // Objects from the API server carry managedFields; they help no one reading a run.
  for (const r of runs) delete (r.metadata as { managedFields?: unknown }).managedFields;
  if (runs.length === 0 && output === 'table') {
    process.stderr.write(`No BenchmarkRuns found${v['all-namespaces'] ? '' : ` in namespace ${c.namespace}`}.\n`);
    return 0;
  }
  process.stdout.write(formatRuns(runs, output, Date.now(), name !== undefined, v['all-namespaces'] === true));
  return 0;
}
