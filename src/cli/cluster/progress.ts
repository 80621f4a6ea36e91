/**
 * Progress of a run in a cluster, on the terminal, in the lines `swarmbench run` prints
 * (cli/run.ts): `[i/n] step  (N s)` while a step runs and `done step: K measurements` when it
 * ends, plus a line for each new attempt and each Warning event. On a TTY the running line is
 * rewritten in place; elsewhere (CI logs) a line is printed only when it changes, so a log has one
 * line per step, not one per poll. The formatting is pure and unit-tested.
 */

export interface ProgressState {
  attempt?: number;
  completedSteps?: number;
  totalSteps?: number;
  currentStep?: string;
}

/** `[3/6] scalability  (42 s)`: the same shape as `swarmbench run`'s line. */
export function progressLine(p: ProgressState, elapsedMs: number): string | undefined {
  if (p.totalSteps === undefined || p.totalSteps === 0 || !p.currentStep) return undefined;
  const i = Math.min((p.completedSteps ?? 0) + 1, p.totalSteps);
  return `[${i}/${p.totalSteps}] ${p.currentStep}  (${(elapsedMs / 1000).toFixed(0)} s)`;
}

/** `done integration: 3 measurements` (or without the count when it could not be read). */
export function doneLine(step: string, measurements?: number): string {
  return measurements === undefined ? `done ${step}` : `done ${step}: ${measurements} measurements`;
}

/**
 * The steps that finished between two observations of the progress: the plan's steps from the
 * old count of completed steps to the new one. A new attempt starts again from 0.
 */
export function stepsFinished(plan: readonly string[], before: ProgressState, after: ProgressState): string[] {
  const from = before.attempt === after.attempt ? (before.completedSteps ?? 0) : 0;
  const to = after.completedSteps ?? 0;
  return to > from ? plan.slice(from, to) : [];
}

/** What a Warning event reads as on the terminal. */
export function eventLine(e: { type?: string; reason?: string; message?: string }): string {
  const msg = (e.message ?? '').replace(/\s*\n\s*/g, '; ').slice(0, 500);
  return `${e.type === 'Warning' ? 'warning' : 'event'}: ${e.reason ?? 'Unknown'}: ${msg}`;
}

interface Stream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

/** The printer: one rewritten line on a TTY, a line per change otherwise. */
export class ProgressPrinter {
  private readonly tty: boolean;
  private readonly stream: Stream;
  private last = '';
  private live = false;

  constructor(stream: Stream) {
    this.stream = stream;
    this.tty = Boolean(stream.isTTY);
  }

  update(line: string | undefined): void {
    if (!line) return;
    const stable = line.replace(/\s*\(\d+ s\)$/, '');
    if (this.tty) {
      const width = this.stream.columns ?? 100;
      this.stream.write(`\r\x1b[2K${line.slice(0, width - 1)}`);
      this.live = true;
    } else if (stable !== this.last) {
      this.stream.write(`${line}\n`);
    }
    this.last = stable;
  }

  /** A line of its own (done, attempt, warning), above the running line on a TTY. */
  note(line: string): void {
    this.clear();
    this.stream.write(`${line}\n`);
  }

  clear(): void {
    if (this.tty && this.live) this.stream.write('\r\x1b[2K');
    this.live = false;
  }
}
