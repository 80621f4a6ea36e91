/**
 * The end of a wait (`submit --wait`, `rerun --wait`) and `report RUN`: read the run's export,
 * write its files into `--out DIR` exactly as the operator wrote them, print the terminal report,
 * and decide the exit code (exit.ts) from the result document, or from the status when the
 * export cannot be read.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ResultDocument } from '../../api/schema.ts';
import { validateSpec } from '../../api/validate.ts';
import { resolveParams } from '../../plan/params.ts';
import { EXPORT_FILES, renderExports } from '../../report/exports.ts';
import { num } from '../../report/format.ts';
import { renderReport, styleFor } from '../../report/terminal.ts';
import { prog } from './args.ts';
import type { Cluster } from './client.ts';
import { CliError } from './errors.ts';
import { decideExit, EXIT, outcomeFromDocument, outcomeFromStatus, type Decision } from './exit.ts';
import { followRun, type FollowEnd, type FollowOptions } from './follow.ts';
import { ProgressPrinter } from './progress.ts';
import { readExport, type RunExport, type RunObject } from './runs.ts';

/**
 * Writes the export's files into `dir`, each atomically (beside, then renamed). A file the
 * ConfigMap lacks (an older operator) is rendered from results.json, as `swarmbench run` would.
 */
export function writeExportFiles(dir: string, exp: RunExport): string[] {
  const out = resolve(dir);
  try {
    mkdirSync(out, { recursive: true });
  } catch (e) {
    throw new CliError(`--out ${dir}: cannot create the folder: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.invalid);
  }
  let rendered: Record<string, string> | undefined;
  const written: string[] = [];
  for (const f of EXPORT_FILES) {
    const text = exp.files[f] ?? (rendered ??= renderExports(exp.doc))[f]!;
    const path = join(out, f);
    try {
      writeFileSync(`${path}.tmp`, text);
      renameSync(`${path}.tmp`, path);
    } catch (e) {
      throw new CliError(`--out ${dir}: cannot write ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.invalid);
    }
    written.push(path);
  }
  return written;
}

/** The success-rate target and regression gate of a run's spec (for a decision from the status). */
function specTargets(run: RunObject): { successRate: number; gate: boolean } {
  const v = validateSpec(run.spec ?? {});
  const successRate = v.ok ? resolveParams(v.value).targets.successRate : 90;
  return { successRate, gate: v.ok && v.value.baseline?.failOnRegression === true };
}

export interface ConcludeOptions {
  /** The command, for the prefix of its notes (`swarmbench submit: …`). */
  command: string;
  out?: string;
  /** Print the terminal report (stdout). */
  report: boolean;
  stderr?: { write(s: string): unknown };
  stdout?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
}

/** Reads the export of a finished run, writes and prints it, and decides the exit code. */
export async function concludeRun(c: Cluster, run: RunObject, o: ConcludeOptions): Promise<Decision> {
  const err = o.stderr ?? process.stderr;
  const out = o.stdout ?? process.stdout;
  const name = run.metadata.name;
  const st = run.status ?? {};
  const targets = specTargets(run);
  const fromStatus = outcomeFromStatus(name, st, targets.successRate, targets.gate);
  if (fromStatus.specInvalid !== undefined || st.phase === 'Cancelled') return decideExit(fromStatus);

  let exp: RunExport | undefined;
  try {
    exp = await readExport(c, run);
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    err.write(`${prog()} ${o.command}: warning: ${e.message}; the verdict below is from the run's status\n`);
  }
  let doc: ResultDocument | undefined = exp?.doc;
  if (doc && st.attempt !== undefined && doc.run.attempt !== st.attempt) {
    err.write(`${prog()} ${o.command}: warning: the export ${exp!.configMapName} is of attempt ${doc.run.attempt}, the run's status of attempt ${st.attempt}; the verdict below is from the status\n`);
    doc = undefined;
  }
  if (exp && doc) {
    if (o.out !== undefined) {
      const files = writeExportFiles(o.out, exp);
      err.write(`${prog()} ${o.command}: wrote ${files.length} files into ${resolve(o.out)} (${EXPORT_FILES.join(', ')})\n`);
    }
    if (o.report) out.write(renderReport(doc, styleFor(out as { isTTY?: boolean })));
    return decideExit(outcomeFromDocument(name, doc, st.phase));
  }
  if (o.out !== undefined) err.write(`${prog()} ${o.command}: warning: nothing written into ${o.out}: the export could not be read\n`);
  if (o.report) out.write(statusSummary(run));
  return decideExit(fromStatus);
}

/** A short report from the status alone: the summary and the failed tests with their reasons. */
export function statusSummary(run: RunObject): string {
  const st = run.status ?? {};
  const s = st.summary;
  const lines = [`run ${run.metadata.name}: ${st.phase ?? 'Pending'}${st.attempt ? `, attempt ${st.attempt}` : ''}`];
  if (s) lines.push(`${s.passed}/${s.total} passed, ${s.failed} failed, ${s.skipped} skipped, success rate ${s.successRate ?? 'n/a'}%, verdict ${s.verdict}`);
  for (const t of st.tests ?? []) {
    if (t.result !== 'Passed') lines.push(`  ${t.id} ${t.name}: ${t.result}${t.value !== undefined ? ` ${`${num(t.value)} ${t.unit}`} (target ${t.target} ${t.unit})` : ''}${t.reason ? `: ${t.reason}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The decision for a wait that did not see the run finish. */
export function decideEnd(name: string, end: Exclude<FollowEnd, { kind: 'finished' }>): Decision {
  const base = { run: name, noResult: [], failed: [], regressed: [], regressionGate: false };
  switch (end.kind) {
    case 'deleted':
      return decideExit({ ...base, deleted: true });
    case 'timeout':
      return decideExit({ ...base, timedOut: end.seen });
    case 'stuck':
      return decideExit({ ...base, stuck: end.problem });
    case 'aborted':
      return { code: EXIT.interrupted, reason: `stopped waiting for ${name}; the run goes on in the cluster` };
  }
}

/** What to say after a wait that did not end with the run's verdict: where the run is now. */
export function afterword(c: Cluster, name: string, end: FollowEnd): string {
  if (end.kind === 'finished' || end.kind === 'deleted') return '';
  return `the run goes on in the cluster: follow it with \`${prog()} get ${name} -n ${c.namespace}\`, or remove it with \`${prog()} delete ${name} -n ${c.namespace}\``;
}

/**
 * `submit --wait` and `rerun --wait`: follow the run until it ends (Ctrl-C stops waiting, not the
 * run), conclude it (report, `--out` files, exit code) and say why on stderr.
 */
export async function waitAndConclude(
  c: Cluster,
  name: string,
  command: 'submit' | 'rerun',
  follow: Omit<FollowOptions, 'signal' | 'printer'>,
  o: { quiet: boolean; out?: string | undefined },
  err: NodeJS.WritableStream,
): Promise<number> {
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const end = await followRun(c, name, { ...follow, signal: ac.signal, ...(o.quiet ? {} : { printer: new ProgressPrinter(err) }) });
    const decision = end.kind === 'finished' ? await concludeRun(c, end.run, { command, report: !o.quiet, ...(o.out !== undefined ? { out: o.out } : {}) }) : decideEnd(name, end);
    err.write(`${prog()} ${command}: ${decision.reason} (exit ${decision.code})\n`);
    const after = afterword(c, name, end);
    if (after) err.write(`${prog()} ${command}: ${after}\n`);
    return decision.code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
