/**
 * Reading BenchmarkRuns and what belongs to them through a CLI connection (client.ts): one run,
 * the runs of a namespace, the export ConfigMap (the files `swarmbench run` writes, results.json
 * parsed and checked), the run's events. Sizes are bounded: a list asks for at most 500 items a
 * page and 20 pages; an export file over 4 MiB is refused.
 */
import type { CoreV1Event, V1ConfigMap } from '@kubernetes/client-node';
import type { BenchmarkRunSpec, BenchmarkRunStatus, ResultDocument } from '../../api/schema.ts';
import { API_GROUP, API_VERSION, BENCHMARKRUN_KIND, BENCHMARKRUN_PLURAL, exportName } from '../../kube/names.ts';
import { parseResultDocument, ResultFileError } from '../../report/document.ts';
import { EXPORT_FILES } from '../../report/exports.ts';
import { prog } from './args.ts';
import type { Cluster } from './client.ts';
import { CliError } from './errors.ts';
import { EXIT } from './exit.ts';

export interface RunObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    creationTimestamp?: string | Date;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    deletionTimestamp?: string | Date;
  };
  spec?: BenchmarkRunSpec;
  status?: BenchmarkRunStatus;
}

const CR = { group: API_GROUP, version: API_VERSION, plural: BENCHMARKRUN_PLURAL } as const;
const MAX_FILE_BYTES = 4 * 1024 * 1024;
const PAGE = 500;
const MAX_PAGES = 20;

export async function getRun(c: Cluster, name: string, namespace = c.namespace): Promise<RunObject> {
  return (await c.call({ verb: 'get', resource: BENCHMARKRUN_PLURAL, group: API_GROUP, namespace, name }, () =>
    c.custom.getNamespacedCustomObject({ ...CR, namespace, name }),
  )) as RunObject;
}

/** The runs of the namespace, or of every namespace. */
export async function listRuns(c: Cluster, allNamespaces = false): Promise<RunObject[]> {
  const out: RunObject[] = [];
  let cont: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const op = { verb: 'list', resource: BENCHMARKRUN_PLURAL, group: API_GROUP, ...(allNamespaces ? {} : { namespace: c.namespace }) } as const;
    const res = (await c.call(op, () =>
      allNamespaces
        ? c.custom.listClusterCustomObject({ ...CR, limit: PAGE, ...(cont ? { _continue: cont } : {}) })
        : c.custom.listNamespacedCustomObject({ ...CR, namespace: c.namespace, limit: PAGE, ...(cont ? { _continue: cont } : {}) }),
    )) as { items?: RunObject[]; metadata?: { _continue?: string; continue?: string } };
    out.push(...(res.items ?? []));
    cont = res.metadata?._continue ?? res.metadata?.continue;
    if (!cont) break;
  }
  return out;
}

export interface RunExport {
  configMapName: string;
  /** The files as the operator wrote them (the ones of EXPORT_FILES that are there). */
  files: Partial<Record<(typeof EXPORT_FILES)[number], string>>;
  doc: ResultDocument;
}

/** The export ConfigMap's name: the status's, else the spec's, else `<run>-results`. */
export function exportNameOf(run: RunObject): string {
  return run.status?.export?.configMapName ?? exportName(run.metadata.name, run.spec?.export?.configMapName);
}

/**
 * The run's export: every file of EXPORT_FILES the ConfigMap holds, and results.json parsed.
 * Throws a CliError when the run has none yet (exit 3: nothing to report), or when results.json
 * is not a valid result document.
 */
export async function readExport(c: Cluster, run: RunObject): Promise<RunExport> {
  const namespace = run.metadata.namespace ?? c.namespace;
  const name = exportNameOf(run);
  let cm: V1ConfigMap;
  try {
    cm = await c.call({ verb: 'get', resource: 'configmaps', group: '', namespace, name }, () => c.core.readNamespacedConfigMap({ namespace, name }));
  } catch (e) {
    if (e instanceof CliError && e.code === EXIT.invalid && /not found/.test(e.message)) {
      const phase = run.status?.phase ?? 'Pending';
      throw new CliError(
        `run ${run.metadata.name} has no export yet (ConfigMap ${name} not found; phase ${phase}${run.status?.progress?.currentStep ? `, step ${run.status.progress.currentStep}` : ''}); wait until it finishes (${prog()} get ${run.metadata.name} -n ${namespace})`,
        EXIT.infrastructure,
      );
    }
    throw e;
  }
  const files: RunExport['files'] = {};
  for (const f of EXPORT_FILES) {
    const text = cm.data?.[f];
    if (text === undefined) continue;
    if (Buffer.byteLength(text) > MAX_FILE_BYTES) throw new CliError(`ConfigMap ${name}: ${f} is larger than 4 MiB; refusing to read it`, EXIT.infrastructure);
    files[f] = text;
  }
  const json = files['results.json'];
  if (json === undefined) throw new CliError(`ConfigMap ${name} holds no results.json: it is not a SwarmBench export (keys: ${Object.keys(cm.data ?? {}).slice(0, 10).join(', ') || 'none'})`, EXIT.infrastructure);
  let doc: ResultDocument;
  try {
    doc = parseResultDocument(json, `ConfigMap ${name} (results.json)`);
  } catch (e) {
    if (e instanceof ResultFileError) throw new CliError(e.message.replace(/\n\s*/g, '; '), EXIT.infrastructure);
    throw e;
  }
  if (doc.run.name !== run.metadata.name) {
    throw new CliError(
      `ConfigMap ${name} holds the result of run ${doc.run.name}, not of ${run.metadata.name}: another run with the same spec.export.configMapName wrote it; give each run its own export name`,
      EXIT.infrastructure,
    );
  }
  return { configMapName: name, files, doc };
}

/** The events about the run itself (the operator's: AttemptStarted, StepStarted, StepFailed, NoGpuNode…). */
export async function runEvents(c: Cluster, run: RunObject): Promise<CoreV1Event[]> {
  const namespace = run.metadata.namespace ?? c.namespace;
  const res = await c.call({ verb: 'list', resource: 'events', group: '', namespace }, () =>
    c.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.kind=${BENCHMARKRUN_KIND},involvedObject.name=${run.metadata.name}`, limit: PAGE }),
  );
  return res.items;
}

/** The time of an event: its series, last or first timestamp, or the creation time. */
export function eventTime(e: CoreV1Event): number {
  const t = e.series?.lastObservedTime ?? e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp;
  return t ? new Date(t as unknown as string).getTime() : 0;
}
