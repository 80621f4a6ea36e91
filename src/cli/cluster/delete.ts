/**
 * `swarmbench delete RUN [--keep-export] [--no-wait] [--timeout 60s]`: deletes a run; the
 * garbage collector removes what it owns (Jobs, pods, agent pools, step results, its runner
 * identity, its agent token and NetworkPolicy, a baseline ConfigMap `submit` made, and its export
 * ConfigMap: every object the operator makes is owned by its run, docs/security.md). With
 * `--keep-export`, the export is first released from the run (its owner reference removed, with
 * the read resourceVersion, only when this run's uid controls it) so that it outlives the run;
 * it then belongs to no run, and a new run of the same name and export name meets it as a
 * Conflict until it is deleted or the new run exports elsewhere. It waits until the run is gone,
 * as `kubectl delete` does.
 */
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, BENCHMARKRUN_PLURAL, belongsTo } from '../../kube/names.ts';
import { CONNECTION_HELP, parseCommand, parseDurationOption, prog, runNameArg } from './args.ts';
import { connect } from './client.ts';
import { CliError } from './errors.ts';
import { EXIT } from './exit.ts';
import { exportNameOf, getRun } from './runs.ts';

export const OPTIONS = {
  'keep-export': { type: 'boolean', default: false },
  'no-wait': { type: 'boolean', default: false },
  timeout: { type: 'string' },
} as const;

export const usage = (): string => `usage: ${prog()} delete RUN [--keep-export] [--no-wait] [--timeout 60s] [options]

Deletes a run and, through owner references, what it created, its export ConfigMap included.

      --keep-export          release the export ConfigMap from the run first, so that it stays
      --no-wait              do not wait until the run is gone
      --timeout D            how long to wait (default 60s; exit 3 after it)

${CONNECTION_HELP}`;

const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
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
  const uid = (run as { metadata?: { uid?: string } }).metadata?.uid ?? '';
  if (v['keep-export']) await releaseExport(c, exportName, name, uid);
  await c.call({ verb: 'delete', resource: BENCHMARKRUN_PLURAL, group: API_GROUP, namespace: c.namespace, name }, () =>
    c.custom.deleteNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, plural: BENCHMARKRUN_PLURAL, namespace: c.namespace, name, propagationPolicy: 'Background' }),
  );
  process.stdout.write(`benchmarkrun.${API_GROUP}/${name} deleted\n`);
  if (!v['keep-export']) process.stderr.write(`${prog()} delete: the export ConfigMap ${exportName} goes with the run (--keep-export keeps it)\n`);

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

/**
 * Release the run's export ConfigMap from the run (remove its owner references) so that the
 * garbage collector leaves it. Only an export this run's uid controls is touched; a missing one,
 * or one the run does not control, is said and left alone.
 */
async function releaseExport(c: ReturnType<typeof connect>, exportName: string, run: string, uid: string): Promise<void> {
  let cm;
  try {
    cm = await c.call({ verb: 'get', resource: 'configmaps', group: '', namespace: c.namespace, name: exportName }, () => c.core.readNamespacedConfigMap({ namespace: c.namespace, name: exportName }));
  } catch (e) {
    if (!(e instanceof CliError && e.code === EXIT.invalid)) throw e;
    process.stderr.write(`${prog()} delete: the export ConfigMap ${exportName} does not exist\n`);
    return;
  }
  if (!belongsTo(cm, uid)) {
    process.stderr.write(`${prog()} delete: ConfigMap ${exportName} is not controlled by run ${run}; left alone\n`);
    return;
  }
  // A merge patch carrying the read resourceVersion: a concurrent change fails (409) rather than being lost.
  const body = { metadata: { resourceVersion: cm.metadata?.resourceVersion, ownerReferences: (cm.metadata?.ownerReferences ?? []).filter((r) => r.uid !== uid) } };
  await c.call({ verb: 'patch', resource: 'configmaps', group: '', namespace: c.namespace, name: exportName }, () => c.core.patchNamespacedConfigMap({ namespace: c.namespace, name: exportName, body }, MERGE));
  process.stdout.write(`configmap/${exportName} kept (released from the run)\n`);
}
