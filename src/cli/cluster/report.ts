/**
 * `swarmbench report RUN [--format F] [--out DIR]`: the report of a run in the cluster, from its
 * export ConfigMap (the files the operator wrote; docs/operator.md "Finish"). Without options it
 * prints the terminal report; `--format markdown|csv|junit|json` prints that file as the operator
 * wrote it; `--out DIR` writes every file into DIR, byte for byte what the ConfigMap holds, which
 * is what `swarmbench run --out DIR` writes for the same result document.
 *
 * The exit code is the verdict's (exit.ts): 0 passed, 1 failed, 3 no export yet or
 * could not be carried out, 4 regressed against the baseline with the gate on.
 */
import { EXPORT_FILES, renderExports } from '../../report/exports.ts';
import { renderReport, styleFor } from '../../report/terminal.ts';
import { CONNECTION_HELP, parseCommand, prog, runNameArg } from './args.ts';
import { connect } from './client.ts';
import { writeExportFiles } from './conclude.ts';
import { CliError } from './errors.ts';
import { decideExit, EXIT, outcomeFromDocument } from './exit.ts';
import { getRun, readExport } from './runs.ts';

const FORMATS = { terminal: undefined, markdown: 'report.md', csv: 'summary.csv', junit: 'junit.xml', json: 'results.json' } as const;
type Format = keyof typeof FORMATS;

export const OPTIONS = {
  format: { type: 'string', short: 'f' },
  out: { type: 'string', short: 'o' },
  // The options of `report FILE` that have no meaning for a run: refused with the way to do it.
  baseline: { type: 'string', short: 'b' },
  'fail-on-regression': { type: 'boolean' },
  alpha: { type: 'string' },
  'min-effect': { type: 'string' },
  'min-samples': { type: 'string' },
  'force-compare': { type: 'boolean' },
  rules: { type: 'boolean' },
} as const;

export const usage = (): string => `usage: ${prog()} report RUN [--format F] [--out DIR] [options]
       ${prog()} report RESULTS.json [...]     (a result document on disk)

RUN is a run in the cluster; an argument that is an existing file, ends in .json or holds a /
is a result document on disk, read as it always was.

  -f, --format F             print ${Object.keys(FORMATS).join(' | ')} (default terminal)
  -o, --out DIR              write ${EXPORT_FILES.join(', ')} into DIR

${CONNECTION_HELP}
exit: 0 passed, 1 failed, 3 no export yet or the run could not be carried out, 4 regressed (gate on)
`;

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand('report', argv, OPTIONS, 1);
  const v = p.values;
  if (v.help) {
    process.stdout.write(usage());
    return 0;
  }
  for (const o of ['baseline', 'fail-on-regression', 'alpha', 'min-effect', 'min-samples', 'force-compare', 'rules'] as const) {
    if (v[o] !== undefined) {
      throw new CliError(
        `report: --${o} applies to a result document on disk; for a run, write its files with --out DIR, then: ${prog()} report DIR/results.json --${o}${o === 'fail-on-regression' || o === 'force-compare' || o === 'rules' ? '' : ' …'}`,
        EXIT.invalid,
      );
    }
  }
  const format = (v.format ?? 'terminal') as Format;
  if (!(format in FORMATS)) throw new CliError(`--format ${v.format}: unknown format (known: ${Object.keys(FORMATS).join(', ')})`, EXIT.invalid);
  const name = runNameArg(p.positionals[0]);
  const c = connect(p.connection);
  const run = await getRun(c, name);
  const exp = await readExport(c, run);
  const st = run.status ?? {};
  if (st.attempt !== undefined && exp.doc.run.attempt !== st.attempt) {
    process.stderr.write(`${prog()} report: note: this is the export of attempt ${exp.doc.run.attempt}; attempt ${st.attempt} is ${st.phase ?? 'Pending'}\n`);
  }
  if (v.out !== undefined) {
    const files = writeExportFiles(v.out, exp);
    process.stderr.write(`${prog()} report: wrote ${files.length} files into ${v.out}\n`);
  }
  const file = FORMATS[format];
  if (file === undefined) process.stdout.write(renderReport(exp.doc, styleFor(process.stdout)));
  // A file an older operator did not write is rendered from results.json, as `swarmbench run` would.
  else process.stdout.write(exp.files[file] ?? renderExports(exp.doc)[file]);
  return decideExit(outcomeFromDocument(name, exp.doc, st.phase)).code;
}
