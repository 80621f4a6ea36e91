/**
 * The local executor: walks the plan on this machine. Each step runs in its own runner process
 * (`swarmbench runner`), as a Job does in Kubernetes, so a crash, a leak or a hung step cannot
 * take the executor or the other steps with it, and the local and Kubernetes paths stay alike.
 *
 * A step whose runner exits without a result document, or with one that does not validate, or
 * that runs past its timeout, fails every test of its category with the reason.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { StepResult, type StepResult as StepResultT } from '../api/schema.ts';
import type { Logger } from '../log.ts';
import type { Measurement } from '../api/schema.ts';
import type { Params } from '../plan/params.ts';
import type { Step } from '../plan/plan.ts';
import { CLI_ENTRY } from '../paths.ts';
import { sourceArgs, type AgentSource } from '../platform/local/source.ts';

export interface ExecuteOptions {
  attempt: number;
  log: Logger;
  onProgress?: (stepIndex: number, totalSteps: number, step: string, detail?: string) => void;
  onStepDone?: (result: StepResultT) => void;
  /** Prometheus file_sd path the local platform keeps up to date. */
  fileSdPath?: string;
  signal?: AbortSignal;
  /** Where runner logs go (one file per step); default: discarded after a successful step. */
  logDir?: string;
  /** What runs as the agents (default: the reference agent); every runner is told. */
  agents?: AgentSource;
}

export interface Execution {
  steps: StepResultT[];
  measurements: Measurement[];
  /** Reasons by category for categories whose step failed as a whole. */
  categoryFailures: Record<string, string>;
}

export async function executeLocal(plan: Step[], params: Params, opts: ExecuteOptions): Promise<Execution> {
  const work = mkdtempSync(join(tmpdir(), 'swarmbench-'));
  const paramsFile = join(work, 'params.json');
  writeFileSync(paramsFile, JSON.stringify(params));
  const out: Execution = { steps: [], measurements: [], categoryFailures: {} };
  try {
    for (const [i, step] of plan.entries()) {
      if (opts.signal?.aborted) {
        out.categoryFailures[step.category] = 'the run was cancelled before this step';
        continue;
      }
      opts.onProgress?.(i, plan.length, step.name);
      const result = await runStepProcess(step, paramsFile, work, opts, (s, d) => opts.onProgress?.(i, plan.length, s, d));
      if (!result.ok) {
        out.categoryFailures[step.category] = result.error;
        opts.log.warn('step produced no result', { step: step.name, reason: result.error });
        continue;
      }
      const doc = result.doc;
      out.steps.push(doc);
      out.measurements.push(...doc.measurements);
      if (doc.error) out.categoryFailures[step.category] = doc.error;
      opts.onStepDone?.(doc);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}

async function runStepProcess(
  step: Step,
  paramsFile: string,
  work: string,
  opts: ExecuteOptions,
  progress: (step: string, detail?: string) => void,
): Promise<{ ok: true; doc: StepResultT } | { ok: false; error: string }> {
  const outFile = join(work, `${step.name}.json`);
  const args = [CLI_ENTRY, 'runner', '--step', step.name, '--params', paramsFile, '--out', outFile, '--attempt', String(opts.attempt)];
  if (opts.fileSdPath) args.push('--file-sd', opts.fileSdPath);
  if (opts.agents) args.push(...sourceArgs(opts.agents));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const stderrTail: string[] = [];
  const logFile = opts.logDir ? join(opts.logDir, `runner-${step.name}.log`) : undefined;
  const logLines: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderrTail.push(line);
    if (stderrTail.length > 20) stderrTail.shift();
    if (logFile) logLines.push(line);
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      const ev = JSON.parse(line) as { event?: string; step?: string; detail?: string };
      if (ev.event === 'progress') progress(ev.step ?? step.name, ev.detail);
    } catch {
      stderrTail.push(line);
    }
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  }, step.timeoutMs);
  const onAbort = () => child.kill('SIGTERM');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  opts.signal?.removeEventListener('abort', onAbort);
  if (logFile) writeFileSync(logFile, logLines.join('\n') + '\n');
  const tail = stderrTail.slice(-5).join(' | ');
  if (timedOut) return { ok: false, error: `step ${step.name} ran past its timeout of ${Math.round(step.timeoutMs / 1000)} s` };
  if (!existsSync(outFile)) {
    return { ok: false, error: `runner of step ${step.name} exited (${signal ?? `code ${code}`}) without a result${tail ? `: ${tail}` : ''}` };
  }
  const parsed = StepResult.safeParse(JSON.parse(readFileSync(outFile, 'utf8')));
  if (!parsed.success) return { ok: false, error: `runner of step ${step.name} wrote an invalid result: ${parsed.error.message}` };
  return { ok: true, doc: parsed.data };
}
