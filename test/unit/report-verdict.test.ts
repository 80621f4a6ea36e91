/**
 * The verdict as the report states it: every failed test named with its value and target, a
 * category without a result failed with a reason (never passed), skipped never counted as passed.
 */
import { describe, expect, it } from 'vitest';
import type { ResultDocument, TestResult } from '../../src/api/schema.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { failedTestLine, judgeAll, summarize, summarizeDocument, verdictReasons } from '../../src/report/verdict.ts';

describe('verdict lines', () => {
  it('name each failed test with its statistic, value and target, and a reason that is not the target miss', () => {
    const p = resolveParams({ mode: 'quick', categories: ['integration'], targets: { workflowLatencyMs: 1 } });
    const tests = judgeAll(
      [
        { id: '5.1', value: 6.2, samples: 20 },
        { id: '5.2', value: 40, samples: 5, fail: '1 workflow returned a wrong output' },
      ],
      p,
    );
    expect(failedTestLine(tests[0]!)).toBe('5.1 End-to-end workflow: p50 6.20 ms, target <1 ms');
    expect(failedTestLine(tests[1]!)).toBe('5.2 Concurrent workflows: max 40 ms, target <10000 ms — 1 workflow returned a wrong output (n=5 samples)');
    expect(failedTestLine(tests[2]!)).toBe('5.3 Resource cleanup: no value, target <50 MB — the step produced no result for this test');
  });

  it('a category that produced nothing fails all its tests with that reason', () => {
    const p = resolveParams({ mode: 'quick', categories: ['integration', 'stress'] });
    const tests = judgeAll([{ id: '5.1', value: 3, samples: 20 }], p);
    const stress = tests.filter((t) => t.category === 'stress');
    expect(stress.map((t) => t.result)).toEqual(['Failed', 'Failed', 'Failed']);
    for (const t of stress) expect(t.reason).toBe('the stress step produced no result');
    // An executor's own reason wins.
    expect(judgeAll([], p, { stress: 'runner exited with code 137' })[3]!.reason).toBe('runner exited with code 137');
  });

  it('verdictReasons lists the success rate and every failed test; skipped is never passed', () => {
    const p = resolveParams({ mode: 'quick', categories: ['integration'] });
    const tests: TestResult[] = judgeAll([{ id: '5.1', value: 3, samples: 20 }, { id: '5.2', value: 1e6, samples: 5 }, { id: '5.3', value: null, samples: 0, skip: 'n/a' }], p);
    const summary = summarize(tests, 90);
    expect(summary).toMatchObject({ passed: 1, failed: 1, skipped: 1, successRate: 50, verdict: 'Failed' });
    const doc = { tests, targets: { successRate: 90 }, summary } as unknown as ResultDocument;
    expect(verdictReasons(doc)).toEqual(['success rate 50.0 % is under the target 90 %', '5.2 Concurrent workflows: max 1000000 ms, target <10000 ms']);
    expect(summarizeDocument(doc)).toEqual(summary);
    const allSkipped = summarize([{ ...tests[2]! }], 0);
    expect(allSkipped).toMatchObject({ successRate: null, verdict: 'Failed' });
    expect(verdictReasons({ tests: [tests[2]!], targets: { successRate: 0 }, summary: allSkipped } as unknown as ResultDocument)).toEqual([
      'every test was skipped: nothing was shown to work',
    ]);
  });
});
