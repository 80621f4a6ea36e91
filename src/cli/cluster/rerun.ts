/**
 * `swarmbench rerun RUN [--wait] [--timeout 30m] [--out DIR]`: starts a new attempt of a run by
 * giving its `swarmbench.io/rerun` annotation a new value (the way GitOps reruns it too:
 * docs/operator.md "Attempts"); no delete and recreate. A run whose attempt is still going gets
 * its new attempt when that one has finished. With `--wait`, the same as `submit --wait`: follows
 * the new attempt, prints its report and exits with its verdict's code.
 */
import { randomBytes } from 'node:crypto';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, BENCHMARKRUN_PLURAL, RERUN_ANNOTATION } from '../../kube/names.ts';
import { CONNECTION_HELP, parseCommand, parseDurationOption, prog, runNameArg } from './args.ts';
import { connect } from './client.ts';
import { waitAndConclude } from './conclude.ts';
import { CliError } from './errors.ts';
import { EXIT } from './exit.ts';
import { defaultWaitMs } from './wait-default.ts';
import { getRun } from './runs.ts';

export const OPTIONS = {
  wait: { type: 'boolean', short: 'w', default: false },
  timeout: { type: 'string' },
  'stuck-after': { type: 'string' },
  out: { type: 'string', short: 'o' },
  quiet: { type: 'boolean', short: 'q', default: false },
} as const;

const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export const usage = (): string => `usage: ${prog()} rerun RUN [--wait] [--timeout 30m] [--out DIR] [options]

Starts a new attempt of a run (a new value of its ${RERUN_ANNOTATION} annotation). A run that is
still going gets it when its attempt has finished.

  -w, --wait                 follow the new attempt, print its report, exit with its verdict
      --timeout D            with --wait: give up after D (exit 3; default: the sum of the
                             run's step deadlines + 5m, docs/operator.md "Step deadlines")
      --stuck-after D        with --wait: a pod that cannot start for D ends the wait (default 2m; 0: never)
  -o, --out DIR              with --wait: write the export's files into DIR
  -q, --quiet                with --wait: no progress and no report

${CONNECTION_HELP}`;

/** A new annotation value: the time and a random part, so two reruns in one second differ. */
export function rerunValue(now = new Date(), rand = randomBytes(3).toString('hex')): string {
  return `${now.toISOString()}-${rand}`;
}

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand('rerun', argv, OPTIONS, 1);
  const v = p.values;
  if (v.help) {
    process.stdout.write(usage());
    return 0;
  }
  if (!v.wait) for (const o of ['timeout', 'stuck-after', 'out'] as const) if (v[o] !== undefined) throw new CliError(`--${o} needs --wait`, EXIT.invalid);
  const timeoutOption = v.timeout !== undefined ? parseDurationOption('timeout', v.timeout) : undefined;
  const stuckAfterMs = v['stuck-after'] !== undefined ? parseDurationOption('stuck-after', v['stuck-after'], true) : 120_000;
  const name = runNameArg(p.positionals[0]);
  const c = connect(p.connection);
  const run = await getRun(c, name);
  const timeoutMs = timeoutOption ?? defaultWaitMs(run.spec).ms;
  const st = run.status ?? {};
  const err = process.stderr;
  if (run.spec?.suspend) throw new CliError(`run ${name} is suspended (spec.suspend: true): no attempt starts until it is set to false`, EXIT.invalid);
  const value = rerunValue();
  await c.call({ verb: 'patch', resource: BENCHMARKRUN_PLURAL, group: API_GROUP, namespace: c.namespace, name }, () =>
    c.custom.patchNamespacedCustomObject(
      { group: API_GROUP, version: API_VERSION, plural: BENCHMARKRUN_PLURAL, namespace: c.namespace, name, body: { metadata: { annotations: { [RERUN_ANNOTATION]: value } } } },
      MERGE,
    ),
  );
  const running = st.phase === 'Running' || (st.phase === 'Pending' && st.attempt !== undefined);
  const next = (st.attempt ?? 0) + 1;
  const line = `benchmarkrun.${API_GROUP}/${name}: rerun requested (${RERUN_ANNOTATION}=${value}); attempt ${next} ${running ? `starts when attempt ${st.attempt} has finished` : 'starts now'}`;
  if (!v.wait) {
    process.stdout.write(`${line}\n`);
    return 0;
  }
  err.write(`${line}\n`);
  return waitAndConclude(c, name, 'rerun', { timeoutMs, stuckAfterMs, minAttempt: next, rerun: value, ignoreExistingEvents: true }, { quiet: v.quiet === true, out: v.out }, err);
}
