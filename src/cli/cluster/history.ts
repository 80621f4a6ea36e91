/**
 * `swarmbench history --schedule NAME [-n NS] [--test ID] [--json] [--window N] [--looks N] [--last N] [--width N]`:
 * the trend of each test over a BenchmarkSchedule's runs in the cluster, from the history the
 * operator keeps for it (the ConfigMap `<schedule>-history`, key `history.json`:
 * docs/schedules.md), printed as `swarmbench history DIR` prints a folder of results
 * (history.ts `printTrends`: sparklines, the lasting shift per test by report/trend.ts).
 *
 * What it reads: the schedule (its uid) and that ConfigMap, nothing else; only a ConfigMap the
 * schedule controls (an ownerReference with its uid), so a ConfigMap of that name someone else
 * made is never printed as the schedule's history. The history is validated (api/history.ts: at
 * most 64 tests × 500 points, each bounded) before anything is computed.
 *
 * Exit codes (docs/cli.md): 0 printed; 2 invalid input (an option, the schedule not found);
 * 3 the history could not be read (no access, not the schedule's, not a valid history).
 */
import type { V1ConfigMap } from '@kubernetes/client-node';
import type { History } from '../../api/history.ts';
import { API_GROUP, API_VERSION, BENCHMARKSCHEDULE_PLURAL, belongsTo, DNS_SUBDOMAIN } from '../../kube/names.ts';
import { historyConfigMapName, historyOf, HISTORY_KEY } from '../../operator/schedule-history.ts';
import { OPTIONS as FILE_OPTIONS, printTrends, trendOptions, type RunRead } from '../history.ts';
import { CONNECTION_HELP, parseCommand, prog } from './args.ts';
import { connect } from './client.ts';
import { CliError } from './errors.ts';
import { EXIT } from './exit.ts';

export const OPTIONS = { ...FILE_OPTIONS, schedule: { type: 'string', short: 's' } } as const;

export const usage = (): string => `usage: ${prog()} history --schedule NAME [-n NS] [--test ID] [--json] [--window N] [--looks N] [--last N] [--width N]

The trend of each test over the schedule's runs, from the history the operator keeps for it
(ConfigMap NAME-history): per test the latest value, a sparkline and the lasting shift, if any
(docs/trends.md).

  -s, --schedule NAME  the BenchmarkSchedule
  -t, --test ID        only this test (1.3); repeat for more
      --json           print the history and the trends as JSON
  -w, --window N       compare the runs after a split with at most N runs before it
      --looks N        report a shift once N consecutive looks find it (default 2; 1: no confirmation)
      --last N         keep the last N runs of each test
      --width N        the sparkline's width in characters

${CONNECTION_HELP}
exit: 0 printed, 2 invalid input or no such schedule, 3 the history could not be read
`;

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand('history', argv, OPTIONS, 0);
  const v = p.values;
  if (v.help) {
    process.stdout.write(usage());
    return 0;
  }
  const name = v.schedule ?? '';
  if (!DNS_SUBDOMAIN.test(name) || name.length > 253) {
    throw new CliError(`--schedule: ${JSON.stringify(name.slice(0, 70))} is not a schedule name (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)`, EXIT.invalid);
  }
  const o = trendOptions(v);
  if (o instanceof Error) throw new CliError(o.message, EXIT.invalid);
  const c = connect(p.connection);
  const namespace = c.namespace;
  const schedule = (await c.call({ verb: 'get', resource: BENCHMARKSCHEDULE_PLURAL, group: API_GROUP, namespace, name }, () =>
    c.custom.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: BENCHMARKSCHEDULE_PLURAL, namespace, name }),
  )) as { metadata?: { uid?: string } };
  const uid = schedule.metadata?.uid;
  if (!uid) throw new CliError(`BenchmarkSchedule ${namespace}/${name} has no uid: not a stored object`, EXIT.infrastructure);
  const cmName = historyConfigMapName(name);
  let cm: V1ConfigMap | undefined;
  try {
    cm = await c.call({ verb: 'get', resource: 'configmaps', group: '', namespace, name: cmName }, () => c.core.readNamespacedConfigMap({ namespace, name: cmName }));
  } catch (e) {
    // No history yet (no run has finished): printed as such, not an error.
    if (!(e instanceof CliError && e.code === EXIT.invalid && /not found/.test(e.message))) throw e;
  }
  if (cm && !belongsTo(cm, uid)) {
    throw new CliError(`ConfigMap ${namespace}/${cmName} is not controlled by BenchmarkSchedule ${name} (uid ${uid}): not read as its history`, EXIT.infrastructure);
  }
  const { history: read, problem } = historyOf(cm);
  if (problem) throw new CliError(`ConfigMap ${namespace}/${cmName}: ${problem}`, EXIT.infrastructure);
  const history: History = o.last === undefined ? read : { ...read, tests: read.tests.map((t) => ({ ...t, points: t.points.slice(-o.last!) })) };
  const runs = new Map<string, RunRead>();
  for (const t of history.tests) {
    for (const pt of t.points) runs.set(`${pt.run}/${pt.attempt}`, { file: `configmap/${cmName}#${HISTORY_KEY}`, run: pt.run, attempt: pt.attempt, startedAt: pt.time });
  }
  const printed = printTrends(history, [...runs.values()], [], o, { json: v.json === true, title: `schedule ${namespace}/${name}` });
  if (printed) throw new CliError(printed.message, EXIT.invalid);
  return 0;
}
