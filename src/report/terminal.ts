/**
 * The terminal summary printed at the end of `swarmbench run`: one line per test, then the
 * verdict. Fits 100 columns; colour only on a TTY and when NO_COLOR is not set.
 */
import type { ResultDocument, TestResult } from '../api/schema.ts';

export interface Style {
  color: boolean;
}

export function styleFor(stream: NodeJS.WriteStream): Style {
  return { color: Boolean(stream.isTTY) && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb' };
}

const C = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;
function paint(s: Style, code: keyof typeof C, text: string): string {
  return s.color ? `\x1b[${C[code]}m${text}\x1b[0m` : text;
}

export function formatValue(v: number | null, unit: string): string {
  if (v === null) return '—';
  const a = Math.abs(v);
  const n = a >= 1000 ? v.toFixed(0) : a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : a === 0 ? '0' : v.toPrecision(3);
  return `${n} ${unit}`;
}

function mark(s: Style, t: TestResult): string {
  if (t.result === 'Passed') return paint(s, 'green', 'PASS');
  if (t.result === 'Failed') return paint(s, 'red', 'FAIL');
  return paint(s, 'yellow', 'SKIP');
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

export function renderSummary(doc: ResultDocument, s: Style): string {
  const lines: string[] = [];
  const env = doc.environment;
  lines.push(paint(s, 'bold', `SwarmBench ${doc.run.name} · ${doc.run.mode} · attempt ${doc.run.attempt}`));
  lines.push(
    paint(
      s,
      'dim',
      `${env.platform} · node ${env.node} · ${env.cpus} × ${truncate(env.cpuModel, 40)} · ${(env.memoryBytes / 2 ** 30).toFixed(0)} GiB` +
        (env.inference ? ` · inference ${env.inference.backend}${env.inference.gpuInUse ? ' (GPU)' : ''}` : ''),
    ),
  );
  let category = '';
  for (const t of doc.tests) {
    if (t.category !== category) {
      category = t.category;
      lines.push('', paint(s, 'bold', category));
    }
    const value = formatValue(t.value, t.unit);
    const target = `${t.target.op}${t.target.value}`;
    const n = t.samples > 0 ? `n=${t.samples}` : '';
    const head = `  ${mark(s, t)} ${t.id.padEnd(4)} ${truncate(t.name, 28).padEnd(28)} ${t.statistic.padEnd(5)} ${truncate(value, 18).padStart(18)}  ${truncate(target, 10).padEnd(10)} ${n}`;
    lines.push(head);
    if (t.reason && t.result !== 'Passed') lines.push(paint(s, 'dim', `       ${truncate(t.reason, 92)}`));
  }
  const sum = doc.summary;
  lines.push('');
  const rate = sum.successRate === null ? 'n/a' : `${sum.successRate.toFixed(1)}%`;
  lines.push(
    `${sum.passed} passed, ${sum.failed} failed, ${sum.skipped} skipped of ${sum.total} · success rate ${rate} (target ${doc.targets.successRate}%)`,
  );
  const failed = doc.tests.filter((t) => t.result === 'Failed').map((t) => t.id);
  const verdict = sum.verdict === 'Passed' ? paint(s, 'green', 'VERDICT: PASSED') : paint(s, 'red', 'VERDICT: FAILED');
  lines.push(`${verdict}${failed.length ? ` · failed: ${failed.join(', ')}` : ''}`);
  return lines.join('\n') + '\n';
}
