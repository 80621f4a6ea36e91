/**
 * The four headline figures of the suite, each against its target: GPU speedup (2.1),
 * distributed latency (1.3), scaling efficiency (the lowest of 4.1–4.5) and monitoring latency
 * (3.1). Read from a document once; the terminal and Markdown reports and the results UI
 * (src/ui/views.ts) each print them their own way.
 */
import type { ResultDocument, TestOutcome, TestResult } from '../api/schema.ts';

export type HeadlineFigure =
  | { kind: 'test'; label: string; test: TestResult }
  | {
      kind: 'scaling';
      label: string;
      /** Failed when a step failed, Skipped when every step was, else Passed. */
      result: TestOutcome;
      /** The measured step with the lowest efficiency, its pool size and how many steps were measured. */
      worst?: TestResult;
      agents?: number;
      measured: number;
      /** The first step (its target is every step's). */
      first: TestResult;
    };

export function headlineFigures(doc: Pick<ResultDocument, 'tests'>): HeadlineFigure[] {
  const out: HeadlineFigure[] = [];
  const one = (id: string, label: string) => {
    const t = doc.tests.find((x) => x.id === id);
    if (t) out.push({ kind: 'test', label, test: t });
  };
  one('2.1', 'GPU speedup');
  one('1.3', 'Distributed latency');
  const steps = doc.tests.filter((t) => t.category === 'scalability');
  if (steps.length) {
    const measured = steps.filter((t) => t.value !== null && t.result !== 'Skipped');
    const worst = measured.reduce<TestResult | undefined>((a, b) => (a === undefined || b.value! < a.value! ? b : a), undefined);
    const agents = worst?.details?.agents;
    out.push({
      kind: 'scaling',
      label: 'Scaling efficiency',
      result: steps.some((t) => t.result === 'Failed') ? 'Failed' : steps.every((t) => t.result === 'Skipped') ? 'Skipped' : 'Passed',
      ...(worst ? { worst } : {}),
      ...(typeof agents === 'number' ? { agents } : {}),
      measured: measured.length,
      first: steps[0]!,
    });
  }
  one('3.1', 'Monitoring latency');
  return out;
}
