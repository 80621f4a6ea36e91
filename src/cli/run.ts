/**
 * `swarmbench run -f <file.yaml> [--out DIR] [--categories a,b] [--baseline OLD.json [--force-compare]] [--prometheus-file-sd PATH] [--quiet]
 *                 [--agent-command CMD | --agent-url URL,...] [--agent-token-file PATH] [--ui [--ui-host H] [--ui-port N] [--ui-dir DIR]]`
 *
 * Runs a BenchmarkRun manifest on this machine (the embedded default): validates it, runs the
 * plan step by step in runner processes against local agent processes, compares the run with a
 * baseline result document when one is given, writes the exports into DIR (results.json,
 * summary.csv, junit.xml, report.md, report.txt; DIR defaults to ./swarmbench-out) and prints
 * the report (the same that `swarmbench report DIR/results.json` prints).
 *
 * The agents are the reference agent, or the user's own (platform/local/source.ts): a command
 * that starts one agent (`--agent-command`, one process per agent with the agent contract's
 * environment) or agents the user started (`--agent-url`, fixed: the tests that must start, grow
 * or kill agents are Skipped, runner/fixed.ts). A spec naming a container image runs only with
 * one of the two (else exit 2: the local platform cannot run an image); results.json records
 * what ran (`environment.agents`), the CPU set of the run (`environment.cpuSet`) and what else
 * the host did meanwhile (`environment.hostLoad`: CPUs other processes used, report/hostload.ts).
 *
 * The agents' bearer token (docs/agent-contract.md, "Authentication"): `--agent-token-file PATH`,
 * else SWARMBENCH_AGENT_TOKEN, else one generated for the run; it becomes this process's token
 * (`useAgentToken`) before any runner process starts, so every runner, agent and client of the run
 * shares it. Fixed agents (`--agent-url`) need their own token given this way.
 *
 * A baseline not measured like this run (src/report/fingerprint.ts: another machine, kernel series,
 * workload size...) is refused unless `--force-compare`: before anything starts when this machine
 * and the spec already differ from it (exit 2), else after the run (only the inference backend is
 * known late), with the results written without the comparison (exit 2).
 *
 * With `--ui` the results UI (src/ui/server.ts, docs/ui.md) serves the run as it runs: its
 * progress and each step's tests as they finish, over a WebSocket; then its result, until Ctrl-C
 * (the exit code is still the verdict's). `--ui-dir DIR` lists earlier runs beside it.
 *
 * Exit codes: 0 the verdict passed; 1 it failed; 2 invalid input (nothing was started, or a
 * baseline refused after the run); 130 interrupted.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CATEGORIES, MAX_BASELINE_POOL, type BenchmarkRunManifest as Manifest, type Category, type ResultDocument, type StepResult } from '../api/schema.ts';
import { InputError, MANIFEST_MAX_BYTES, readBounded, RESULT_MAX_BYTES } from '../api/input.ts';
import { formatErrors, parseManifestText } from '../api/validate.ts';
import { agentToken, readTokenFile, useAgentToken } from '../agent/auth.ts';
import { executeLocal } from '../executor/local.ts';
import { createLogger } from '../log.ts';
import { resolveParams, type Params } from '../plan/params.ts';
import { buildPlan } from '../plan/plan.ts';
import { agentsRan, checkAgentUrls, describeAgentSource, imageProblem, parseAgentSource, type AgentSource } from '../platform/local/source.ts';
import { assembleResult, environmentOf } from '../report/assemble.ts';
import { parseResultDocument, ResultFileError } from '../report/document.ts';
import { comparisonRefusal, ComparisonRefusedError, fingerprintDiff, fingerprintFor, fingerprintOf } from '../report/fingerprint.ts';
import { hostLoadBetween, readCpu } from '../report/hostload.ts';
import { EXPORT_FILES, writeExports } from '../report/exports.ts';
import { renderReport, styleFor } from '../report/terminal.ts';
import { VERSION } from '../version.ts';
import { collectFiles } from '../report/files.ts';
import { LiveRun, LocalSource } from '../ui/local.ts';
import { DEFAULT_HOST, DEFAULT_PORT, startUiServer, type UiServer } from '../ui/server.ts';
import { exposedNote, listen, parsePort, untilInterrupted } from './ui.ts';

const USAGE = `usage: swarmbench run -f FILE [--out DIR] [--categories a,b] [--baseline OLD.json [--force-compare]] [--prometheus-file-sd PATH] [--quiet]
                      [--agent-command CMD | --agent-url URL,...] [--agent-token-file PATH] [--ui [--ui-host H] [--ui-port N] [--ui-dir DIR]]

  -f, --file FILE            BenchmarkRun manifest (YAML or JSON), the same file kubectl applies
  -o, --out DIR              where the exports (${EXPORT_FILES.join(', ')}) and runner logs go
                             (default ./swarmbench-out)
  -c, --categories a,b       run only these categories (${CATEGORIES.join(', ')})
  -b, --baseline FILE        compare with an earlier result document; with spec.baseline.failOnRegression
                             a regressed test fails the verdict. Given more than once (at most ${MAX_BASELINE_POOL}):
                             a pooled baseline, the files' samples joined test by test
      --force-compare        compare with the baseline even when it was not measured alike (machine,
                             kernel, inference backend, sizes...); the differences become warnings
      --prometheus-file-sd P file_sd JSON the local agents are written to, for the Prometheus
                             named in spec.prometheus.url to scrape
  -q, --quiet                no progress, no summary (results.json only)
      --agent-command CMD    benchmark your own agent: CMD starts one agent (run by /bin/sh, one process per
                             agent, configured by the agent contract's environment: POD_IP, PORT, SWARMBENCH_*)
      --agent-url URL,...    benchmark agents you started (http://HOST:PORT, comma-separated or repeated); tests
                             that must start, grow or kill agents are Skipped
      --agent-token-file PATH the agents' bearer token (the file holds only the token); required by agents you
                             started (--agent-url) unless SWARMBENCH_AGENT_TOKEN holds it; otherwise the agents
                             SwarmBench starts get it (default: SWARMBENCH_AGENT_TOKEN, else a new one per run)
      --ui                   serve the results UI in the browser (read-only): the run live, then its result,
                             until Ctrl-C (docs/ui.md)
      --ui-host HOST         with --ui: the address to listen on (default ${DEFAULT_HOST}: this machine only)
      --ui-port N            with --ui: the port (default ${DEFAULT_PORT}; 0 picks a free one)
      --ui-dir DIR           with --ui: also list the runs in DIR (DIR/results.json, DIR/*/results.json); repeat
`;


/**
 * A BenchmarkRun manifest read from FILE, or the problem (`cannot read F: ENOENT`, `F is larger
 * than 1 MB …`, `invalid BenchmarkRun in F:` and each field's error) for the command to print
 * (run, calibrate; both exit 2). FILE is read with the 1 MB bound while reading (api/input.ts).
 */
export function readManifestFile(file: string): Manifest | string {
  let text: string;
  try {
    text = readBounded(file, MANIFEST_MAX_BYTES, { what: 'a manifest' });
  } catch (err) {
    return err instanceof InputError ? err.message : `cannot read ${file}: ${(err as Error).message}`;
  }
  const parsed = parseManifestText(text, file);
  if (!parsed.ok) return `invalid BenchmarkRun in ${file}:\n${formatErrors(parsed.errors)}`;
  return parsed.value;
}

function fail(message: string): number {
  process.stderr.write(`swarmbench run: ${message}\n`);
  return 2;
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        file: { type: 'string', short: 'f' },
        out: { type: 'string', short: 'o', default: 'swarmbench-out' },
        categories: { type: 'string', short: 'c' },
        baseline: { type: 'string', short: 'b', multiple: true },
        'force-compare': { type: 'boolean', default: false },
        'prometheus-file-sd': { type: 'string' },
        quiet: { type: 'boolean', short: 'q', default: false },
        'agent-command': { type: 'string' },
        'agent-url': { type: 'string', multiple: true },
        'agent-token-file': { type: 'string' },
        ui: { type: 'boolean', default: false },
        'ui-host': { type: 'string' },
        'ui-port': { type: 'string' },
        'ui-dir': { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    return fail(`${(err as Error).message}\n\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.file) return fail(`-f FILE is required\n\n${USAGE}`);

  const uiAsked = values['ui-host'] !== undefined || values['ui-port'] !== undefined || values['ui-dir'] !== undefined;
  if (uiAsked && !values.ui) return fail('--ui-host, --ui-port and --ui-dir need --ui');
  const uiPort = parsePort(values['ui-port'] ?? String(DEFAULT_PORT), '--ui-port');
  if (uiPort instanceof Error) return fail(uiPort.message);
  const uiDirs = values['ui-dir'] ?? [];
  if (uiDirs.length) {
    const found = collectFiles(uiDirs);
    if (found instanceof Error) return fail(`--ui-dir: ${found.message}`);
  }

  const read = readManifestFile(values.file);
  if (typeof read === 'string') return fail(read);
  const manifest = read;

  // What runs as the agents: checked before anything starts.
  const chosen = parseAgentSource({ command: values['agent-command'], urls: values['agent-url'] });
  if (!chosen.ok) return fail(chosen.problems.map((p) => `${p.field}: ${p.message}`).join('\n'));
  const source = chosen.source;
  const image = manifest.spec.agents?.image ?? 'local';
  const problem = imageProblem(image, source);
  if (problem) return fail(`${problem.field}: ${problem.message}`);
  const defects = manifest.spec.agents?.defects;
  if (source.kind !== 'reference' && Array.isArray(defects) && defects.length > 0) {
    return fail(`spec.agents.defects: defect profiles are the reference agent's; ${describeAgentSource(source)} cannot take them (remove the field, or run without --agent-command/--agent-url)`);
  }
  // The agents' token, before anything asks an agent or starts a runner process.
  try {
    if (values['agent-token-file'] !== undefined) useAgentToken(readTokenFile(values['agent-token-file'], '--agent-token-file'), '--agent-token-file');
    else agentToken();
  } catch (err) {
    return fail((err as Error).message);
  }
  if (source.kind !== 'reference') {
    if (image !== 'local') process.stderr.write(`swarmbench run: note: spec.agents.image "${image}" is not run here; the agents are ${describeAgentSource(source)}\n`);
    if (source.kind === 'urls') process.stderr.write(`swarmbench run: note: the agents are fixed; the tests that must start, grow or kill agents are Skipped\n`);
  }

  let categories: Category[] | undefined;
  if (values.categories !== undefined) {
    const list = values.categories.split(',').map((c) => c.trim()).filter(Boolean);
    const unknown = list.filter((c) => !(CATEGORIES as readonly string[]).includes(c));
    if (list.length === 0) return fail('--categories: give at least one category');
    if (unknown.length) return fail(`--categories: unknown category ${unknown.map((u) => `"${u}"`).join(', ')} (known: ${CATEGORIES.join(', ')})`);
    categories = list as Category[];
  }

  const baselineFiles = values.baseline ?? [];
  if (baselineFiles.length > MAX_BASELINE_POOL) return fail(`--baseline: at most ${MAX_BASELINE_POOL} files make a pooled baseline, got ${baselineFiles.length}`);
  const baselines: ResultDocument[] = [];
  for (const f of baselineFiles) {
    try {
      baselines.push(parseResultDocument(readBounded(f, RESULT_MAX_BYTES, { what: 'a result document' }), f));
    } catch (err) {
      // Every problem of the file, whatever threw it, is invalid input (exit 2).
      if (err instanceof ResultFileError || err instanceof InputError) return fail(`--baseline: ${err.message}`);
      return fail(`--baseline: ${f}: cannot parse: ${(err as Error).message}`);
    }
  }
  const baseline = baselines[0];
  const baselineName = baselineFiles.join(', ');
  if (!baseline && values['force-compare']) {
    return fail('--force-compare needs --baseline');
  } else if (!baseline && (manifest.spec.baseline?.runRef || manifest.spec.baseline?.configMapRef || manifest.spec.baseline?.pool)) {
    process.stderr.write('swarmbench run: note: spec.baseline names runs or a ConfigMap, which the operator resolves; locally pass --baseline FILE (more than once for a pool)\n');
  }

  if (source.kind === 'urls') {
    // Last of the checks (it asks the agents): each answers, with its own id.
    const down = await checkAgentUrls(source.urls);
    if (down.length) return fail(`${down.map((p) => `${p.field}: ${p.message}`).join('\n')}\nnothing was started`);
  }

  const params = resolveParams(manifest.spec, categories);
  const force = values['force-compare'];
  if (baseline && !force) {
    // This machine and the spec against the baseline, before anything starts (the inference
    // backend, known only after the GPU step, is compared at the end).
    const here = fingerprintOf({ environment: environmentOf('local', { params, steps: [], version: VERSION, agents: agentsRan(source) }), run: { mode: params.mode } }, { params });
    // A pooled baseline keeps the files measured alike (the others are named in its warnings).
    const differences = baselines.map((b) => fingerprintDiff(here, fingerprintFor(b)));
    if (differences.every((d) => d.length > 0)) return fail(`--baseline ${baselineFiles[0]}: ${new ComparisonRefusedError(differences[0]!).message}; nothing was started`);
  }
  if (params.monitoring.prometheusUrl && !values['prometheus-file-sd'] && params.categories.includes('monitoring')) {
    process.stderr.write(
      'swarmbench run: note: spec.prometheus.url is set but --prometheus-file-sd is not; Prometheus must already know the agents\n',
    );
  }
  const outDir = resolve(values.out);
  let ui: { server: UiServer; source: LocalSource; live: LiveRun } | undefined;
  if (values.ui) {
    const host = values['ui-host'] ?? DEFAULT_HOST;
    const live = new LiveRun({ name: manifest.metadata.name, namespace: manifest.metadata.namespace, outDir });
    const source = new LocalSource({ paths: uiDirs, live });
    const server = await listen(() => startUiServer({ source, host, port: uiPort, title: `swarmbench run --ui: ${manifest.metadata.name}` }), host, uiPort);
    if (server instanceof Error) {
      source.close();
      return fail(`--ui: ${server.message}; nothing was started`);
    }
    const note = exposedNote(host);
    if (note) process.stderr.write(`swarmbench run: ${note}\n`);
    process.stderr.write(`swarmbench run: the results UI, live: ${server.url}\n`);
    ui = { server, source, live };
  }
  const progress = values.quiet ? undefined : new Progress(process.stderr);
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const t0 = performance.now();
  const closeUi = async () => {
    if (!ui) return;
    await ui.server.close();
    ui.source.close();
  };
  let doc: ResultDocument;
  try {
    ({ doc } = await runLocally({
      manifest,
      params,
      outDir,
      source,
      signal: ac.signal,
      ...(progress ? { progress } : {}),
      ...(ui ? { live: ui.live } : {}),
      ...(values['prometheus-file-sd'] ? { fileSdPath: resolve(values['prometheus-file-sd']) } : {}),
      // Recommendations, the baseline comparison and the verdict that follows from it.
      ...(baseline
        ? { baseline: { doc: baseline, pool: baselines.slice(1), source: baselineName, failOnRegression: manifest.spec.baseline?.failOnRegression ?? false, force } }
        : {}),
    }));
  } catch (err) {
    // The UI's server would keep the process alive: it goes with the run.
    await closeUi();
    throw err;
  }
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  const file = join(outDir, 'results.json');
  if (!values.quiet) {
    process.stdout.write(renderReport(doc, styleFor(process.stdout)));
    process.stdout.write(`results: ${file} (${((performance.now() - t0) / 1000).toFixed(0)} s); ${EXPORT_FILES.filter((f) => f !== 'results.json').join(', ')} beside it\n`);
  }
  if (ui && !ac.signal.aborted) {
    process.stderr.write(`swarmbench run: the results UI stays at ${ui.server.url} until Ctrl-C\n`);
    await untilInterrupted();
  }
  await closeUi();
  if (ac.signal.aborted) return 130;
  const refused = baseline && !force && !doc.comparison ? comparisonRefusal(doc, baseline) : undefined;
  if (refused) return fail(`--baseline ${baselineFiles[0]}: ${refused.message}; ${file} holds the results without the comparison`);
  return doc.summary.verdict === 'Passed' ? 0 : 1;
}

export interface LocalRun {
  manifest: Manifest;
  /** The run's parameters (resolveParams of the manifest's spec, with any category override). */
  params: Params;
  /** Where the exports and runner logs go (created). */
  outDir: string;
  source: AgentSource;
  signal: AbortSignal;
  progress?: Progress;
  fileSdPath?: string;
  baseline?: { doc: ResultDocument; pool?: readonly ResultDocument[]; source?: string; failOnRegression: boolean; force?: boolean };
  /** Each step's timeout multiplied by this (default 1: the plan's own). */
  timeoutFactor?: number;
  /** The results UI's view of this run (`--ui`): told of the plan, the progress, each step and the result. */
  live?: LiveRun;
}

/**
 * One local run of a checked manifest, shared by `run` and `calibrate`: the plan, each step in a
 * runner process, the result document (judged, with its environment), the exports written into
 * `outDir`. Returns the document and the wall time in ms; the caller prints and decides the exit.
 */
export async function runLocally(o: LocalRun): Promise<{ doc: ResultDocument; ms: number }> {
  const { manifest, params, outDir, source, progress } = o;
  const factor = o.timeoutFactor ?? 1;
  const plan = buildPlan(params).map((step) => (factor === 1 ? step : { ...step, timeoutMs: step.timeoutMs * factor }));
  // One agent token for the whole run: fixed now (and exported) so the runner processes inherit it.
  agentToken();
  mkdirSync(outDir, { recursive: true });
  const log = createLogger({ run: manifest.metadata.name, attempt: 1, role: 'run' }, process.env.SWARMBENCH_LOG_LEVEL ?? 'warn');
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const cpuAtStart = readCpu();
  const live = o.live;
  live?.start(plan, params, startedAt);
  const exec = await executeLocal(plan, params, {
    attempt: 1,
    log,
    signal: o.signal,
    logDir: outDir,
    agents: source,
    ...(o.fileSdPath ? { fileSdPath: o.fileSdPath } : {}),
    ...(progress || live
      ? {
          onProgress: (i: number, n: number, step: string, detail?: string) => {
            progress?.update(i, n, step, detail, performance.now() - t0);
            live?.progress(i, n, step, detail);
          },
          onStepDone: (s: StepResult) => {
            progress?.done(s.step, s.measurements.length);
            live?.stepDone(s);
          },
        }
      : {}),
  });
  progress?.clear();
  const hostLoad = hostLoadBetween(cpuAtStart, readCpu());
  const doc = assembleResult({
    run: { name: manifest.metadata.name, namespace: manifest.metadata.namespace, attempt: 1 },
    params,
    startedAt,
    finishedAt: new Date().toISOString(),
    steps: exec.steps,
    failures: exec.categoryFailures,
    environment: environmentOf('local', { params, steps: exec.steps, version: VERSION, agents: agentsRan(source), ...(hostLoad ? { hostLoad } : {}) }),
    ...(o.baseline ? { baseline: o.baseline } : {}),
  });
  writeExports(outDir, doc);
  live?.finish(doc, join(outDir, 'results.json'), o.signal.aborted);
  return { doc, ms: performance.now() - t0 };
}

/** Progress on stderr: one rewritten line on a terminal, a line per event otherwise. */
export class Progress {
  private readonly tty: boolean;
  private readonly stream: NodeJS.WriteStream;
  private last = '';
  private readonly prefix: string;
  /** `prefix` starts every line (calibrate: which run of several). */
  constructor(stream: NodeJS.WriteStream, prefix = '') {
    this.stream = stream;
    this.tty = Boolean(stream.isTTY);
    this.prefix = prefix;
  }
  update(i: number, n: number, step: string, detail: string | undefined, elapsedMs: number): void {
    const line = `${this.prefix}[${i + 1}/${n}] ${step}${detail ? `: ${detail}` : ''}  (${(elapsedMs / 1000).toFixed(0)} s)`;
    if (this.tty) {
      const width = this.stream.columns ?? 100;
      this.stream.write(`\r\x1b[2K${line.slice(0, width - 1)}`);
    } else if (line.replace(/\(\d+ s\)$/, '') !== this.last) {
      this.stream.write(`${line}\n`);
    }
    this.last = line.replace(/\(\d+ s\)$/, '');
  }
  done(step: string, count: number): void {
    if (this.tty) this.stream.write(`\r\x1b[2K`);
    this.stream.write(`${this.prefix}done ${step}: ${count} measurements\n`);
  }
  clear(): void {
    if (this.tty) this.stream.write('\r\x1b[2K');
  }
}
