/**
 * `npm run bench`: SwarmBench's own benchmarks, each figure beside its reference in the same run
 * (bench/lib.ts). Not part of `npm test`; test/e2e/bench-script.test.ts runs it with `--tiny` so it
 * does not rot.
 *
 *   npm run bench -- [--tiny] [--only a,b] [--trials N] [--out DIR]
 *
 * Sections: loadgen (the load generator against autocannon), roundtrip (test 1.3 against a bare
 * HTTP echo and a bare WebSocket ping-pong), embedded (the embedded run's wall time and peak memory
 * as the pools grow), report (rendering and the baseline comparison at full-mode sample counts),
 * operator (on the test cluster: apply → first Job, the queue, the operator's memory; skipped
 * without a cluster). Writes results.json and results.md under --out (default
 * bench-results/<time>/) and prints the Markdown.
 *
 * Exit codes: 0 every section ran (goals met or not: a missed goal is a finding, written down),
 * 1 a section crashed, 2 bad arguments.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { conditions, markdown, type RunOptions, type Section } from './lib.ts';

type SectionModule = { run: (o: RunOptions) => Promise<Section> };
const SECTIONS: Record<string, () => Promise<SectionModule>> = {
  loadgen: () => import('./loadgen.ts'),
  roundtrip: () => import('./roundtrip.ts'),
  embedded: () => import('./embedded.ts'),
  report: () => import('./report.ts'),
  operator: () => import('./operator.ts'),
};

function usage(msg: string): never {
  process.stderr.write(`bench: ${msg}\nusage: npm run bench -- [--tiny] [--only ${Object.keys(SECTIONS).join(',')}] [--trials N] [--out DIR]\n`);
  process.exit(2);
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: { tiny: { type: 'boolean', default: false }, only: { type: 'string' }, trials: { type: 'string' }, out: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    usage((e as Error).message);
  }
  const only = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : Object.keys(SECTIONS);
  for (const s of only) if (!(s in SECTIONS)) usage(`--only: unknown section "${s}"`);
  let trials: number | undefined;
  if (values.trials !== undefined) {
    trials = Number(values.trials);
    if (!Number.isInteger(trials) || trials < 1 || trials > 100) usage(`--trials: an integer 1..100, got "${values.trials}"`);
  }
  const startedAt = new Date().toISOString();
  const out = resolve(values.out ?? join('bench-results', startedAt.replace(/[:.]/g, '-')));
  mkdirSync(out, { recursive: true });
  const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
  const sections: Section[] = [];
  let crashed = 0;
  for (const id of only) {
    const t0 = performance.now();
    log(`${id}: start`);
    try {
      const mod = await SECTIONS[id]!();
      sections.push(await mod.run({ tiny: values.tiny ?? false, ...(trials !== undefined ? { trials } : {}), log: (l) => log(`${id}: ${l}`) }));
    } catch (e) {
      crashed++;
      const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
      log(`${id}: crashed: ${msg}`);
      sections.push({ id, title: id, method: '', figures: [], skipped: `crashed: ${e instanceof Error ? e.message : String(e)}`, wallSeconds: (performance.now() - t0) / 1000 });
    }
    log(`${id}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const report = { startedAt, tiny: values.tiny ?? false, conditions: conditions(), sections };
  writeFileSync(join(out, 'results.json'), JSON.stringify(report, null, 2) + '\n');
  const md = markdown(report);
  writeFileSync(join(out, 'results.md'), md + '\n');
  process.stdout.write(md + '\n');
  log(`wrote ${join(out, 'results.json')} and results.md`);
  return crashed > 0 ? 1 : 0;
}

process.exitCode = await main();
