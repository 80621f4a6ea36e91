/**
 * The exit code of a run in a cluster (src/cli/cluster/exit.ts), decided from real result
 * documents (test/fixtures: a real quick run, and its baseline with a planted 2× regression of
 * 1.3) and from statuses as the operator writes them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BenchmarkRunStatus, ResultDocument } from '../../src/api/schema.ts';
import { decideExit, EXIT, noResultReasons, outcomeFromDocument, outcomeFromStatus, type Outcome } from '../../src/cli/cluster/exit.ts';
import { REPO_ROOT } from '../../src/paths.ts';
import { completeDocument, parseResultDocument } from '../../src/report/document.ts';
import { summarizeDocument } from '../../src/report/verdict.ts';

const fixture = (f: string): ResultDocument => parseResultDocument(readFileSync(join(REPO_ROOT, 'test', 'fixtures', f), 'utf8'), f);
const quick = fixture('results-quick.json'); // 23/27 passed, 88.5 % < 90 %: Failed (3.2, 4.5, 6.1 missed)
const baseline = fixture('results-baseline.json'); // 1.3 half the current samples: 1.3 regresses

/** The document with its verdict recomputed after a change of tests or targets. */
const resummarize = (d: ResultDocument): ResultDocument => ({ ...d, summary: summarizeDocument(d) });
/** Every failing measured test made to pass (its target moved to its value): a passing run. */
const passing = (d: ResultDocument): ResultDocument =>
  resummarize({ ...d, tests: d.tests.map((t) => (t.result === 'Failed' ? { ...t, result: 'Passed' as const, reason: undefined } : t)) });

const empty = (extra: Partial<Outcome>): Outcome => ({ run: 'r', noResult: [], failed: [], regressed: [], regressionGate: false, ...extra });

describe('exit codes from a result document', () => {
  it('a failed verdict with targets missed is 1, and names the failed tests', () => {
    const d = decideExit(outcomeFromDocument('quick', quick));
    expect(d.code).toBe(EXIT.failed);
    expect(d.reason).toBe('run quick failed (success rate 88.5% < 90%): 3.2, 4.5, 6.1');
  });

  it('a passing verdict is 0, even with skipped tests', () => {
    const d = decideExit(outcomeFromDocument('quick', passing(quick)));
    expect(passing(quick).summary.verdict).toBe('Passed');
    expect(d).toEqual({ code: EXIT.passed, reason: 'run quick passed (success rate 100%)' });
  });

  it('a regression with the gate on, where the targets alone pass, is 4', () => {
    const doc = completeDocument(passing(quick), { baseline, compare: { failOnRegression: true } });
    expect(doc.summary.verdict).toBe('Failed');
    expect(doc.comparison!.regressed).toContain('1.3');
    const d = decideExit(outcomeFromDocument('quick', doc));
    expect(d.code).toBe(EXIT.regression);
    expect(d.reason).toMatch(/regressed against the baseline: .*1\.3.* \(the targets alone pass\)/);
  });

  it('the same regression without the gate passes (0): a report, not a verdict', () => {
    const doc = completeDocument(passing(quick), { baseline, compare: { failOnRegression: false } });
    expect(doc.comparison!.regressed).toContain('1.3');
    expect(decideExit(outcomeFromDocument('quick', doc)).code).toBe(EXIT.passed);
  });

  it('missed targets win over a gated regression (1, not 4): the verdict fails whatever the baseline says', () => {
    const doc = completeDocument(quick, { baseline, compare: { failOnRegression: true } });
    expect(doc.comparison!.regressed.length).toBeGreaterThan(0);
    expect(decideExit(outcomeFromDocument('quick', doc)).code).toBe(EXIT.failed);
  });

  it('a category that produced no result is 3 (could not be carried out), and wins over missed targets', () => {
    const reason = 'the stress runner Job failed (DeadlineExceeded: Job was active longer than specified deadline) without a result';
    const doc = resummarize({
      ...quick,
      tests: quick.tests.map((t) => {
        if (t.category !== 'stress') return t;
        const { distribution: _d, rawSamples: _r, details: _x, ...rest } = t;
        return { ...rest, result: 'Failed' as const, value: null, samples: 0, reason };
      }),
    });
    const o = outcomeFromDocument('quick', doc);
    expect(o.noResult.map((t) => t.id)).toEqual(['6.1', '6.2', '6.3']);
    expect(o.failed.map((t) => t.id)).toEqual(['3.2', '4.5']);
    const d = decideExit(o);
    expect(d.code).toBe(EXIT.infrastructure);
    expect(d.reason).toBe(`run quick could not be carried out: 6.1, 6.2, 6.3: ${reason}`);
  });

  it('a test measured as null with samples is a failure of the system (1), not of the infrastructure', () => {
    const doc = resummarize({ ...quick, tests: quick.tests.map((t) => (t.id === '1.1' ? { ...t, result: 'Failed' as const, value: null, samples: 5, reason: 'no value was measured' } : t)) });
    const o = outcomeFromDocument('quick', doc);
    expect(o.noResult).toEqual([]);
    expect(decideExit(o).code).toBe(EXIT.failed);
  });

  it('a verdict that passes with a category missing still passes (0): the success-rate target allows it', () => {
    const doc = resummarize({
      ...passing(quick),
      tests: passing(quick).tests.map((t) => (t.id === '6.3' ? { ...t, result: 'Failed' as const, value: null, samples: 0, reason: 'the stress step produced no result' } : t)),
    });
    expect(doc.summary.verdict).toBe('Passed');
    expect(decideExit(outcomeFromDocument('quick', doc)).code).toBe(EXIT.passed);
  });
});

describe('exit codes from what the wait saw', () => {
  it('the spec refused is 2; deleted, stuck, timed out, cancelled are 3; no verdict is 3', () => {
    expect(decideExit(empty({ specInvalid: 'spec.agents.taskMix: io + cpu must equal 1' }))).toEqual({
      code: EXIT.invalid,
      reason: 'the operator refused the spec of r: spec.agents.taskMix: io + cpu must equal 1',
    });
    expect(decideExit(empty({ deleted: true })).code).toBe(EXIT.infrastructure);
    expect(decideExit(empty({ stuck: 'pod p: ImagePullBackOff' })).reason).toBe('run r cannot be carried out: pod p: ImagePullBackOff');
    expect(decideExit(empty({ timedOut: 'still Running after 3 s' })).reason).toBe('run r did not finish in time: still Running after 3 s');
    expect(decideExit(empty({ phase: 'Cancelled', verdict: 'Passed' })).code).toBe(EXIT.infrastructure);
    expect(decideExit(empty({ phase: 'Failed' })).code).toBe(EXIT.infrastructure);
    // A timeout wins over a verdict seen earlier (the attempt waited for did not finish).
    expect(decideExit(empty({ timedOut: 'x', verdict: 'Passed' })).code).toBe(EXIT.infrastructure);
  });

  it('every test skipped fails (1) and says so', () => {
    expect(decideExit(empty({ verdict: 'Failed', successRate: null, successRateTarget: 90 })).reason).toBe('run r failed (every test was skipped)');
  });

  it('groups tests without a result by their reason', () => {
    expect(noResultReasons([{ id: '6.1', reason: 'a' }, { id: '6.2', reason: 'a' }, { id: '2.1', reason: 'b' }, { id: '3.1' }])).toEqual(['6.1, 6.2: a', '2.1: b', '3.1: no result']);
  });
});

describe('exit codes from a status (the export unreadable)', () => {
  const status = (s: Partial<BenchmarkRunStatus>): BenchmarkRunStatus => ({ phase: 'Failed', attempt: 1, ...s });
  it('SpecInvalid in the Ready condition is 2', () => {
    const st = status({ conditions: [{ type: 'Ready', status: 'False', reason: 'SpecInvalid', message: 'the spec cannot run:\n  spec.agents.taskMix: io + cpu must equal 1', lastTransitionTime: 'x' }] });
    expect(decideExit(outcomeFromStatus('r', st, 90, false)).code).toBe(EXIT.invalid);
  });

  it('a failed test without a value (the status drops null values) counts as no result: 3', () => {
    const st = status({
      summary: { total: 3, passed: 2, failed: 1, skipped: 0, successRate: 66.7, verdict: 'Failed' },
      tests: [
        { id: '5.1', name: 'End-to-end workflow', category: 'integration', result: 'Failed', unit: 'ms', target: '<5000', reason: 'the integration step produced no result' },
        { id: '5.2', name: 'Concurrent workflows', category: 'integration', result: 'Passed', unit: 'ms', target: '<10000', value: 5 },
      ],
    });
    expect(decideExit(outcomeFromStatus('r', st, 90, false)).code).toBe(EXIT.infrastructure);
  });

  it('a gated regression with the success rate over the target is 4; under it 1', () => {
    const st = (rate: number) =>
      status({
        summary: { total: 3, passed: 3, failed: 0, skipped: 0, successRate: rate, verdict: 'Failed', regressions: 1, regressionGate: true },
        tests: [{ id: '5.1', name: 'End-to-end workflow', category: 'integration', result: 'Passed', unit: 'ms', target: '<5000', value: 9 }],
        comparison: { baseline: 'configmap/b', regressed: ['5.1'], improved: [] },
      });
    expect(decideExit(outcomeFromStatus('r', st(100), 90, false)).code).toBe(EXIT.regression);
    expect(decideExit(outcomeFromStatus('r', st(80), 90, false)).code).toBe(EXIT.failed);
  });
});
