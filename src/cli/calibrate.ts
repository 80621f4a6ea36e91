/**
 * `swarmbench calibrate -f FILE [--out DIR] [--profiles a,b] [--categories a,b] [--all-cells] [--quiet]`
 *
 * The sensitivity matrix: runs the manifest on this machine with the clean reference agent (every
 * selected category), then once per defect profile (docs/defects.md; agent profiles through
 * `spec.agents.defects`, inference profiles through `spec.gpu.defects`, one profile per run, at its
 * default value unless `--profiles` gives NAME:VALUE), each profile only on the categories of the
 * tests its `breaks` list names (every selected category with `--all-cells`). Each run is what
 * `swarmbench run` does (`runLocally` in run.ts), with the manifest's own targets; a profile's run
 * gives every step three times its usual timeout, since a defect that slows the system must show
 * in the figures, not as a step killed.
 *
 * Writes into DIR: runs/<run>/ (each run's exports), sensitivity.json and sensitivity.md, and
 * prints the matrix. The matrix, the exit rule and the renderings are pure logic in
 * calibrate/matrix.ts.
 *
 * Exit codes: 0 every test passed on the clean agent (Skipped allowed) and every test with a
 * profile meant to break it failed under at least one of them; 1 otherwise (each problem printed);
 * 2 invalid input (nothing was started); 130 interrupted (the files hold the runs so far).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { arch, cpus, platform as osPlatform, release } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFECTS, defectProfile, defectNames, formatDefect, parseDefectList, type Defect } from '../agent/defects.ts';
import { CATEGORIES, type BenchmarkRunManifest, type Category } from '../api/schema.ts';
import { errorMessage } from '../errors.ts';
import { defOf } from '../plan/catalogue.ts';
import { resolveParams } from '../plan/params.ts';
import { VERSION } from '../version.ts';
import { buildMatrix, conditionsOf, exitCodeOf, renderMarkdown, renderTerminal, sensitivityJson, type ProfileRun } from './calibrate/matrix.ts';
import { Progress, readManifestFile, runLocally } from './run.ts';

/** A profile's run: each step gets this many times its plan timeout. */
export const PROFILE_TIMEOUT_FACTOR = 3;

const USAGE = `usage: swarmbench calibrate -f FILE [--out DIR] [--profiles a,b] [--categories a,b] [--all-cells] [--quiet]

  -f, --file FILE          BenchmarkRun manifest (YAML or JSON), run with the reference agent
  -o, --out DIR            where runs/<run>/, sensitivity.json and sensitivity.md go
                           (default ./swarmbench-calibration)
  -p, --profiles a,b       only these defect profiles, NAME or NAME:VALUE (default: every profile,
                           at its default value): ${defectNames().join(', ')}
  -c, --categories a,b     only these categories (${CATEGORIES.join(', ')}; default: the manifest's)
      --all-cells          run every profile on every selected category (default: only on the
                           categories of the tests it is meant to break)
  -q, --quiet              no progress and no matrix on the terminal (the files only)

exit codes: 0 every test passed on the clean agent and failed under a profile meant to break it;
1 otherwise (each problem printed); 2 invalid input; 130 interrupted.
`;

function fail(message: string): number {
  process.stderr.write(`swarmbench calibrate: ${message}\n`);
  return 2;
}

/** The categories of the tests a profile is meant to break. */
export function categoriesOfBreaks(breaks: readonly string[]): Category[] {
  const set = new Set(breaks.map((id) => defOf(id).category));
  return CATEGORIES.filter((c) => set.has(c));
}

/** The manifest with one profile switched on (or none), for one run. */
export function manifestFor(m: BenchmarkRunManifest, defect: Defect | null): BenchmarkRunManifest {
  if (!defect) return m;
  const site = defectProfile(defect.name)!.site;
  const spec =
    site === 'agent'
      ? { ...m.spec, agents: { ...m.spec.agents, defects: [formatDefect(defect)] } }
      : { ...m.spec, gpu: { ...m.spec.gpu, defects: [formatDefect(defect)] } };
  return { ...m, metadata: { ...m.metadata, name: `${m.metadata.name}-${defect.name}`.slice(0, 253) }, spec };
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        file: { type: 'string', short: 'f' },
        out: { type: 'string', short: 'o', default: 'swarmbench-calibration' },
        profiles: { type: 'string', short: 'p', multiple: true },
        categories: { type: 'string', short: 'c' },
        'all-cells': { type: 'boolean', default: false },
        quiet: { type: 'boolean', short: 'q', default: false },
        // Refused below with the reason (they are `run`'s): calibrate needs the reference agent.
        'agent-command': { type: 'string' },
        'agent-url': { type: 'string', multiple: true },
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
  for (const flag of ['agent-command', 'agent-url'] as const) {
    if (values[flag] !== undefined) {
      return fail(`--${flag}: calibrate switches the reference agent's defect profiles on, which a user's agent does not have; calibrate runs the reference agent only (run your agent with "swarmbench run --${flag}")`);
    }
  }

  const read = readManifestFile(values.file);
  if (typeof read === 'string') return fail(read);
  const manifest = read;
  const image = manifest.spec.agents?.image ?? 'local';
  if (image !== 'local') {
    return fail(`spec.agents.image: "${image}" is not the reference agent; calibrate switches the reference agent's defect profiles on, so it runs the reference agent only (remove the field or set it to local)`);
  }
  for (const [field, list] of [['spec.agents.defects', manifest.spec.agents?.defects], ['spec.gpu.defects', manifest.spec.gpu?.defects]] as const) {
    if (list && list.length > 0) return fail(`${field}: calibrate switches the profiles on itself, one per run, after a clean run; remove the field`);
  }

  let categories: Category[] = manifest.spec.categories ? CATEGORIES.filter((c) => manifest.spec.categories!.includes(c)) : [...CATEGORIES];
  if (values.categories !== undefined) {
    const list = values.categories.split(',').map((c) => c.trim()).filter(Boolean);
    const unknown = list.filter((c) => !(CATEGORIES as readonly string[]).includes(c));
    if (list.length === 0) return fail('--categories: give at least one category');
    if (unknown.length) return fail(`--categories: unknown category ${unknown.map((u) => `"${u}"`).join(', ')} (known: ${CATEGORIES.join(', ')})`);
    categories = CATEGORIES.filter((c) => list.includes(c));
  }

  let defects: Defect[];
  if (values.profiles !== undefined) {
    const list = values.profiles.flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean);
    if (list.length === 0) return fail(`--profiles: give at least one profile (known: ${defectNames().join(', ')})`);
    const r = parseDefectList(list);
    if (r.errors.length) return fail(r.errors.map((e) => `--profiles: ${e.message}`).join('\n'));
    defects = r.defects;
  } else {
    defects = DEFECTS.map((d) => ({ name: d.name, value: d.param?.default ?? null }));
  }

  const allCells = values['all-cells'];
  const planned: { defect: Defect; categories: Category[] }[] = [];
  const dropped: string[] = [];
  for (const d of defects) {
    const cats = allCells ? categories : categoriesOfBreaks(defectProfile(d.name)!.breaks).filter((c) => categories.includes(c));
    if (cats.length === 0) dropped.push(d.name);
    else planned.push({ defect: d, categories: cats });
  }
  const quiet = values.quiet;
  const say = (line: string): void => {
    if (!quiet) process.stderr.write(`swarmbench calibrate: ${line}\n`);
  };
  if (dropped.length) say(`not run (none of the tests they are meant to break is in ${categories.join(', ')}): ${dropped.join(', ')}`);

  const outDir = resolve(values.out);
  mkdirSync(join(outDir, 'runs'), { recursive: true });
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const runs: ProfileRun[] = [];
  const total = planned.length + 1;
  const jobs: { defect: Defect | null; categories: Category[] }[] = [{ defect: null, categories }, ...planned];
  for (const [k, job] of jobs.entries()) {
    if (ac.signal.aborted) break;
    const name = job.defect ? job.defect.name : 'clean';
    const runDir = join(outDir, 'runs', name);
    const m = manifestFor(manifest, job.defect);
    const label = job.defect ? formatDefect(job.defect) : 'clean';
    say(`run ${k + 1}/${total}: ${label} on ${job.categories.join(', ')}`);
    const run: ProfileRun = {
      name,
      defect: job.defect ? formatDefect(job.defect) : null,
      site: job.defect ? defectProfile(job.defect.name)!.site : null,
      breaks: job.defect ? defectProfile(job.defect.name)!.breaks : [],
      categories: job.categories,
      doc: null,
      seconds: 0,
      results: relative(outDir, join(runDir, 'results.json')),
    };
    const r0 = performance.now();
    try {
      const { doc } = await runLocally({
        manifest: m,
        params: resolveParams(m.spec, job.categories),
        outDir: runDir,
        source: { kind: 'reference' },
        signal: ac.signal,
        ...(quiet ? {} : { progress: new Progress(process.stderr, `[${k + 1}/${total} ${name}] `) }),
        ...(job.defect ? { timeoutFactor: PROFILE_TIMEOUT_FACTOR } : {}),
      });
      run.doc = doc;
    } catch (err) {
      run.error = `the run ended without a result: ${errorMessage(err)}`;
      delete run.results;
    }
    run.seconds = (performance.now() - r0) / 1000;
    if (ac.signal.aborted) run.error = 'interrupted';
    runs.push(run);
    const s = run.doc?.summary;
    say(`run ${k + 1}/${total}: ${label}: ${s ? `${s.verdict}, ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped` : run.error} (${run.seconds.toFixed(0)} s)`);
  }
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);

  const matrix = buildMatrix(runs, categories);
  const cond = conditionsOf(runs[0]?.doc ?? null, {
    host: { version: VERSION, node: process.version, os: `${osPlatform()} ${release()}`, arch: arch(), cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown' },
    mode: manifest.spec.mode ?? 'quick',
    manifest: values.file,
    options: argv,
    categories,
    allCells,
    startedAt,
    finishedAt: new Date().toISOString(),
    durationSeconds: Math.round((performance.now() - t0) / 100) / 10,
  });
  const jsonFile = join(outDir, 'sensitivity.json');
  const mdFile = join(outDir, 'sensitivity.md');
  writeFileSync(jsonFile, `${JSON.stringify(sensitivityJson(matrix, runs, cond), null, 2)}\n`);
  writeFileSync(mdFile, renderMarkdown(matrix, runs, cond, { command: `swarmbench calibrate ${argv.join(' ')}` }));
  if (!quiet) {
    process.stdout.write(renderTerminal(matrix, process.stdout.columns ?? 120));
    process.stdout.write(`sensitivity: ${mdFile}, ${jsonFile}; each run's exports under ${join(outDir, 'runs')} (${runs.length} runs, ${cond.durationSeconds.toFixed(0)} s)\n`);
  } else if (!matrix.ok) {
    // The problems are the answer to "why 1": printed even when quiet.
    for (const p of matrix.problems) process.stderr.write(`swarmbench calibrate: ${p}\n`);
  }
  if (ac.signal.aborted) return 130;
  return exitCodeOf(matrix);
}
