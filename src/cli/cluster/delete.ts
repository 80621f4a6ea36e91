/**
 * `swarmbench delete RUN [--with-export] [--no-wait] [--timeout 60s]`: deletes a run; the
 * garbage collector removes what it owns (Jobs, pods, agent pools, step results, its runner
 * identity, a baseline ConfigMap `submit` made). The export ConfigMap is not owned by the run and
 * stays, unless `--with-export` (and only when it is labelled as this run's). It waits until the
 * run is gone, as `kubectl delete` does.
 */
import { API_GROUP, API_VERSION, BENCHMARKRUN_PLURAL, MANAGED_BY, MANAGED_BY_LABEL, RUN_LABEL, labelValue } from '../../kube/names.ts';
import { CONNECTION_HELP, parseCommand, parseDurationOption, prog, runNameArg } from './args.ts';
import { connect } from './client.ts';
import { CliError } from './errors.ts';
import { EXIT } from './exit.ts';
import { exportNameOf, getRun } from './runs.ts';

export const OPTIONS = {
  'with-export': { type: 'boolean', default: false },
  'no-wait': { type: 'boolean', default: false },
  timeout: { type: 'string' },
} as const;

export const usage = (): string => `usage: ${prog()} delete RUN [--with-export] [--no-wait] [--timeout 60s] [options]

Deletes a run and, through owner references, what it created. Its export ConfigMap stays.

      --with-export          delete the export ConfigMap too (when it is labelled as this run's)
      --no-wait              do not wait until the run is gone
      --timeout D            how long to wait (default 60s; exit 3 after it)

${CONNECTION_HELP}`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand('delete', argv, OPTIONS, 1);
  const v = p.values;
  if (v.help) {
    process.stdout.write(usage());
    return 0;
  }
  const timeoutMs = v.timeout !== undefined ? parseDurationOption('timeout', v.timeout) : 60_000;
  const name = runNameArg(p.positionals[0]);
  const c = connect(p.connection);
  const run = await getRun(c, name);
  const exportName = exportNameOf(run);
  await c.call({ verb: 'delete', resource: BENCHMARKRUN_PLURAL, group: API_GROUP, namespace: c.namespace, name }, () =>
    c.custom.deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: BENCHMARKRUN_PLURAL, namespace: c.namespace, name, propagationPolicy: 'Background' }),
  );
  process.stdout.write(`benchmarkrun.${API_GROUP}/${name} deleted\n`);

  if (v['with-export']) {
    try {
      const cm = await c.call({ verb: 'get', resource: 'configmaps', group: '', namespace: c.namespace, name: exportName }, () => c.core.readNamespacedConfigMap({ namespace: c.namespace, name: exportName }));
      const l = cm.metadata?.labels ?? {};
      if (l[MANAGED_BY_LABEL] !== MANAGED_BY || l[RUN_LABEL] !== labelValue(name)) {
        process.stderr.write(`${prog()} delete: ConfigMap ${exportName} is not labelled as run ${name}'s export; left alone\n`);
      } else {
        await c.call({ verb: 'delete', resource: 'configmaps', group: '', namespace: c.namespace, name: exportName }, () => c.core.deleteNamespacedConfigMap({ namespace: c.namespace, name: exportName }));
        process.stdout.write(`configmap/${exportName} deleted\n`);
      }
    } catch (e) {
      if (!(e instanceof CliError && e.code === EXIT.invalid)) throw e;
      process.stderr.write(`${prog()} delete: the export ConfigMap ${exportName} does not exist\n`);
    }
  } else {
    process.stderr.write(`${prog()} delete: the export ConfigMap ${exportName} is kept (--with-export deletes it)\n`);
  }

  if (v['no-wait']) return 0;
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      await getRun(c, name);
    } catch (e) {
      if (e instanceof CliError && e.code === EXIT.invalid) return 0; // gone
      throw e;
    }
    await sleep(500);
  }
  throw new CliError(`run ${name} is still there after ${Math.round(timeoutMs / 1000)} s (a finalizer?); see ${prog()} get ${name} -n ${c.namespace} -o yaml`, EXIT.infrastructure);
}
