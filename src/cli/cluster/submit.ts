/**
 * `swarmbench submit -f run.yaml [--wait] [--timeout 30m] [--baseline RUN|FILE] [--out DIR] …`
 *
 * Creates a BenchmarkRun in the cluster from a manifest (the file `kubectl apply` and
 * `swarmbench run -f` take), checked here first with the project's schema (exit 2 naming the
 * field). The run gets a generated name, `<metadata.name>-<5 characters>`, so the same manifest
 * can be submitted again and again (CI); `--name` gives an exact one. With `--wait` it follows the
 * run's progress on stderr, prints the terminal report from the run's export when it ends, writes
 * the export's files into `--out DIR`, and exits with the verdict's code (exit.ts).
 *
 * `--baseline RUN` compares with another run's export (`spec.baseline.runRef`); `--baseline
 * FILE` (an earlier results.json) is put into a ConfigMap `<run>-baseline` owned by the run
 * (`spec.baseline.configMapRef`). Either turns the regression gate on
 * (`spec.baseline.failOnRegression: true`) unless the manifest sets it to false: a regression
 * then ends with exit 4.
 */
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { PatchStrategy, setHeaderOptions, type V1ConfigMap, type V1OwnerReference } from '@kubernetes/client-node';
import { CATEGORIES, type BenchmarkRunManifest, type Category } from '../../api/schema.ts';
import { InputError, MANIFEST_MAX_BYTES, readBounded } from '../../api/input.ts';
import { formatErrors, parseManifestText } from '../../api/validate.ts';
import {
  API_GROUP, API_VERSION, API_VERSION_FULL, BENCHMARKRUN_KIND, BENCHMARKRUN_PLURAL, COMPONENT_LABEL, dnsName, runLabels,
} from '../../kube/names.ts';
import { parseResultDocument, ResultFileError } from '../../report/document.ts';
import { CONNECTION_HELP, parseCommand, parseDurationOption, prog, runNameArg } from './args.ts';
import { connect, type Cluster } from './client.ts';
import { waitAndConclude } from './conclude.ts';
import { defaultWaitMs } from './wait-default.ts';
import { CliError } from './errors.ts';
import { EXIT } from './exit.ts';
import { getRun, type RunObject } from './runs.ts';

export const SUBMIT_OPTIONS = {
  file: { type: 'string', short: 'f' },
  name: { type: 'string' },
  wait: { type: 'boolean', short: 'w', default: false },
  timeout: { type: 'string' },
  'stuck-after': { type: 'string' },
  baseline: { type: 'string', short: 'b' },
  categories: { type: 'string', short: 'c' },
  out: { type: 'string', short: 'o' },
  quiet: { type: 'boolean', short: 'q', default: false },
} as const;

export const usage = (): string => `usage: ${prog()} submit -f FILE [--wait] [--timeout 30m] [--baseline RUN|FILE] [--out DIR] [options]

Creates a BenchmarkRun in the cluster; with --wait follows it, prints its report and exits with
its verdict: 0 passed, 1 failed, 2 invalid input, 3 could not be carried out, 4 regressed.

  -f, --file FILE            the BenchmarkRun manifest (YAML or JSON; - reads stdin)
      --name NAME            the run's exact name (default: <metadata.name>-<5 random characters>)
  -c, --categories a,b       run only these categories (${CATEGORIES.join(', ')})
  -b, --baseline RUN|FILE    compare with another run's export, or with an earlier results.json
                             (a FILE is an existing path or ends in .json); turns on the
                             regression gate unless the manifest sets failOnRegression: false
  -w, --wait                 follow the run to its end, print the report, exit with the verdict
      --timeout D            with --wait: give up after D (exit 3; default: the sum of the
                             plan's step deadlines + 5m, docs/operator.md "Step deadlines")
      --stuck-after D        with --wait: a pod of the run that cannot start (image, scheduling,
                             configuration) for D ends the wait with exit 3 (default 2m; 0: never)
  -o, --out DIR              with --wait: write ${'results.json, summary.csv, junit.xml, report.md, report.txt'} into DIR
  -q, --quiet                with --wait: no progress and no report (the exit code and the last line)

${CONNECTION_HELP}`;

const SUFFIX = 'bcdfghjklmnpqrstvwxz2456789'; // Kubernetes' generateName alphabet: no vowels, no look-alikes
export function generatedName(base: string, rand: (n: number) => number = randomInt): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += SUFFIX[rand(SUFFIX.length)];
  return `${dnsName(base, 57)}-${s}`;
}

/** A --baseline argument: a file (exists, or ends in .json) or a run name. */
export function baselineKind(arg: string, exists: (p: string) => boolean = existsSync): 'file' | 'run' {
  return exists(arg) || /\.json$/i.test(arg) || arg.includes('/') ? 'file' : 'run';
}

/** A results.json that fits a ConfigMap (1 MiB in all, less room for the metadata). */
const MAX_BASELINE_BYTES = 1_000_000;

export interface SubmitPlan {
  manifest: BenchmarkRunManifest;
  notes: string[];
}

/** The manifest as submitted: categories overridden, a shared export name dropped for generated names. Pure. */
export function prepareManifest(manifest: BenchmarkRunManifest, o: { categories?: Category[]; generated: boolean }): SubmitPlan {
  const notes: string[] = [];
  const spec = { ...manifest.spec };
  if (o.categories) spec.categories = o.categories;
  if (o.generated && spec.export?.configMapName) {
    notes.push(`spec.export.configMapName (${spec.export.configMapName}) is left out so that each submission keeps its own export, <run>-results; give --name to keep it`);
    delete spec.export;
  }
  return { manifest: { ...manifest, spec }, notes };
}

function parseCategories(text: string): Category[] {
  const list = text.split(',').map((c) => c.trim()).filter(Boolean);
  const unknown = list.filter((c) => !(CATEGORIES as readonly string[]).includes(c));
  if (list.length === 0) throw new CliError('--categories: give at least one category', EXIT.invalid);
  if (unknown.length) throw new CliError(`--categories: unknown category ${unknown.map((u) => `"${u.slice(0, 30)}"`).join(', ')} (known: ${CATEGORIES.join(', ')})`, EXIT.invalid);
  if (new Set(list).size !== list.length) throw new CliError('--categories: a category is repeated', EXIT.invalid);
  return list as Category[];
}

/** The manifest of `-f FILE` (`-`: stdin), read with the 1 MB bound while reading (api/input.ts). */
function readManifest(file: string): BenchmarkRunManifest {
  let text: string;
  try {
    text = readBounded(file, MANIFEST_MAX_BYTES, { what: 'a manifest', stdin: true });
  } catch (e) {
    throw new CliError(`-f: ${e instanceof InputError ? e.message : `${file}: cannot read it: ${(e as Error).message}`}`, EXIT.invalid);
  }
  const parsed = parseManifestText(text, file === '-' ? 'stdin' : file);
  if (!parsed.ok) throw new CliError(`invalid BenchmarkRun in ${file === '-' ? 'stdin' : file}:\n${formatErrors(parsed.errors)}`, EXIT.invalid);
  return parsed.value;
}

/** A --baseline FILE, read with the ConfigMap's bound while reading (api/input.ts); any problem exits 2. */
function readBaselineFile(file: string): string {
  let text: string;
  try {
    text = readBounded(file, MAX_BASELINE_BYTES, { what: 'a baseline in a ConfigMap' });
  } catch (e) {
    if (e instanceof InputError && e.reason === 'too-large') {
      throw new CliError(`--baseline: ${e.message}; submit the baseline as a run and give --baseline RUN`, EXIT.invalid);
    }
    throw new CliError(`--baseline: ${e instanceof InputError ? e.message : `${file}: cannot read it: ${(e as Error).message}`}`, EXIT.invalid);
  }
  try {
    parseResultDocument(text, file);
  } catch (e) {
    const message = e instanceof ResultFileError ? e.message : `${file}: cannot parse: ${(e as Error).message}`;
    throw new CliError(`--baseline: ${message.replace(/\n\s*/g, '; ')}`, EXIT.invalid);
  }
  return text;
}

/**
 * The baseline ConfigMap's owner: the run, for the garbage collector only. Not a controller and
 * not blocking the owner's deletion: that would need the finalizers subresource, which a CI
 * identity should not need.
 */
export function baselineOwner(run: string, uid: string): V1OwnerReference {
  return { apiVersion: API_VERSION_FULL, kind: BENCHMARKRUN_KIND, name: run, uid };
}

const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const CR = { group: API_GROUP, version: API_VERSION, plural: BENCHMARKRUN_PLURAL } as const;

async function createRun(c: Cluster, body: Record<string, unknown>, name: string): Promise<RunObject> {
  return (await c.call({ verb: 'create', resource: BENCHMARKRUN_PLURAL, group: API_GROUP, namespace: c.namespace, name }, () =>
    c.custom.createNamespacedCustomObject({ ...CR, namespace: c.namespace, body }),
  )) as RunObject;
}

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand('submit', argv, SUBMIT_OPTIONS, 0);
  const v = p.values;
  if (v.help) {
    process.stdout.write(usage());
    return 0;
  }
  if (!v.file) throw new CliError(`-f FILE is required; see ${prog()} submit --help`, EXIT.invalid);
  if (!v.wait) {
    for (const o of ['timeout', 'stuck-after', 'out'] as const) if (v[o] !== undefined) throw new CliError(`--${o} needs --wait`, EXIT.invalid);
  }
  const timeoutOption = v.timeout !== undefined ? parseDurationOption('timeout', v.timeout) : undefined;
  const stuckAfterMs = v['stuck-after'] !== undefined ? parseDurationOption('stuck-after', v['stuck-after'], true) : 120_000;
  const categories = v.categories !== undefined ? parseCategories(v.categories) : undefined;
  const exactName = v.name !== undefined ? runNameArg(v.name, '--name') : undefined;
  const baseline = v.baseline !== undefined ? { arg: v.baseline, kind: baselineKind(v.baseline) } : undefined;
  const baselineText = baseline?.kind === 'file' ? readBaselineFile(baseline.arg) : undefined;
  if (baseline?.kind === 'run') runNameArg(baseline.arg, '--baseline');

  const read = readManifest(v.file);
  const { manifest, notes } = prepareManifest(read, { ...(categories ? { categories } : {}), generated: exactName === undefined });
  const wait = timeoutOption !== undefined ? { ms: timeoutOption, how: '--timeout' } : defaultWaitMs(manifest.spec);
  const timeoutMs = wait.ms;
  const c = connect(p.connection, manifest.metadata.namespace);
  const err = process.stderr;
  for (const n of notes) err.write(`${prog()} submit: note: ${n}\n`);

  if (baseline?.kind === 'run') await getRun(c, baseline.arg).catch((e: unknown) => {
    if (e instanceof CliError && e.code === EXIT.invalid) throw new CliError(`--baseline ${baseline.arg}: ${e.message}`, EXIT.invalid);
    throw e;
  });

  // The run, under a name that is free (a generated name is tried again on the rare collision).
  let run: RunObject | undefined;
  let baselineCm: string | undefined;
  for (let i = 0; !run; i++) {
    const name = exactName ?? generatedName(manifest.metadata.name);
    const gate = manifest.spec.baseline?.failOnRegression ?? true;
    if (baselineText !== undefined) {
      baselineCm = dnsName(`${name}-baseline`, 253);
      const cm: V1ConfigMap = {
        metadata: { name: baselineCm, namespace: c.namespace, labels: runLabels(name, undefined, { [COMPONENT_LABEL]: 'baseline' }) },
        data: { 'results.json': baselineText },
      };
      try {
        await c.call({ verb: 'create', resource: 'configmaps', group: '', namespace: c.namespace, name: baselineCm }, () => c.core.createNamespacedConfigMap({ namespace: c.namespace, body: cm }));
      } catch (e) {
        if (exactName === undefined && i < 3 && e instanceof CliError && /already exists/.test(e.message)) continue;
        throw e;
      }
    }
    const spec = {
      ...manifest.spec,
      ...(baseline
        ? { baseline: { ...(baseline.kind === 'run' ? { runRef: baseline.arg } : { configMapRef: { name: baselineCm!, key: 'results.json' } }), failOnRegression: gate } }
        : {}),
    };
    const { name: _n, namespace: _ns, uid: _u, resourceVersion: _rv, generation: _g, creationTimestamp: _ct, ...meta } = manifest.metadata;
    const body = { apiVersion: API_VERSION_FULL, kind: BENCHMARKRUN_KIND, metadata: { ...meta, name, namespace: c.namespace }, spec };
    try {
      run = await createRun(c, body, name);
    } catch (e) {
      if (baselineCm) await c.core.deleteNamespacedConfigMap({ namespace: c.namespace, name: baselineCm }).catch(() => undefined);
      if (exactName === undefined && i < 3 && e instanceof CliError && /already exists/.test(e.message)) continue;
      if (exactName !== undefined && e instanceof CliError && /already exists/.test(e.message)) {
        throw new CliError(`run ${exactName} already exists in namespace ${c.namespace}: choose another --name, omit --name for a generated one, or start it again with ${prog()} rerun ${exactName}`, EXIT.invalid);
      }
      throw e;
    }
  }
  const name = run.metadata.name;
  if (baselineCm && run.metadata.uid) {
    // The baseline ConfigMap goes with the run (garbage collection on delete).
    await c.call({ verb: 'patch', resource: 'configmaps', group: '', namespace: c.namespace, name: baselineCm }, () =>
      c.core.patchNamespacedConfigMap({ namespace: c.namespace, name: baselineCm!, body: { metadata: { ownerReferences: [baselineOwner(name, run.metadata.uid!)] } } }, MERGE),
    ).catch((e: unknown) => err.write(`${prog()} submit: warning: ConfigMap ${baselineCm} stays after the run is deleted: ${(e as Error).message}\n`));
  }
  const created = `benchmarkrun.${API_GROUP}/${name} created in namespace ${c.namespace}`;
  if (!v.wait) {
    process.stdout.write(`${created}\n`);
    err.write(`${prog()} submit: follow it with \`${prog()} get ${name} -n ${c.namespace}\`; read its report with \`${prog()} report ${name} -n ${c.namespace}\` when it has finished\n`);
    return 0;
  }
  err.write(`${created}\n`);
  if (v.quiet !== true) err.write(`${prog()} submit: waiting up to ${Math.ceil(timeoutMs / 60_000)} min (${wait.how})\n`);

  return waitAndConclude(c, name, 'submit', { timeoutMs, stuckAfterMs, minAttempt: 1 }, { quiet: v.quiet === true, out: v.out }, err);
}
