import { describe, expect, it } from 'vitest';
import { chooseExecutor, Ledger, type Candidate } from '../../src/agent/dispatch.ts';
import { errorAt, FaultState, parseFaults } from '../../src/agent/faults.ts';
import { LimitExceeded } from '../../src/agent/limits.ts';
import { applyStep, cpuTaskResult, expectedWorkflowOutput } from '../../src/agent/work.ts';
import { createHash } from 'node:crypto';

const c = (id: string, load: number, capacity = 10): Candidate => ({ id, load, capacity });

describe('chooseExecutor', () => {
  it('picks the least loaded', () => {
    expect(chooseExecutor([c('a', 3), c('b', 1), c('c', 2)], 0)).toBe('b');
  });

  it('breaks ties round robin over the tied ids, sorted', () => {
    const cands = [c('c', 0), c('a', 0), c('b', 5), c('d', 0)];
    expect([0, 1, 2, 3].map((rr) => chooseExecutor(cands, rr))).toEqual(['a', 'c', 'd', 'a']);
  });

  it('skips saturated members and returns null when all are', () => {
    expect(chooseExecutor([c('a', 10), c('b', 9)], 0)).toBe('b');
    expect(chooseExecutor([c('a', 10), c('b', 12)], 0)).toBeNull();
  });

  it('avoids excluded members unless nothing else is left', () => {
    expect(chooseExecutor([c('a', 0), c('b', 5)], 0, new Set(['a']))).toBe('b');
    expect(chooseExecutor([c('a', 0)], 0, new Set(['a']))).toBe('a');
  });

  it('keeps in-flight counts within one of each other under a stream of tasks', () => {
    const loads = new Map([['a', 0], ['b', 0], ['c', 0], ['d', 0]]);
    for (let i = 0; i < 400; i++) {
      const pick = chooseExecutor([...loads].map(([id, l]) => c(id, l, 1000)), i)!;
      loads.set(pick, loads.get(pick)! + 1);
      const v = [...loads.values()];
      expect(Math.max(...v) - Math.min(...v)).toBeLessThanOrEqual(1);
      // Every fifth step one task finishes somewhere, as in a real run.
      if (i % 5 === 4) loads.set('c', Math.max(0, loads.get('c')! - 1));
    }
  });
});

describe('Ledger', () => {
  it('tracks pending, done and failed; unknown ids are unknown', () => {
    let t = 0;
    const l = new Ledger({ retentionMs: 100, now: () => t });
    const e1 = l.accept({ id: '1', kind: 'io' });
    const e2 = l.accept({ id: '2', kind: 'io' });
    l.accept({ id: '3', kind: 'io' });
    expect(l.pending).toBe(3);
    l.finish(e1, 'done', 'r', null);
    l.finish(e2, 'failed', null, 'boom');
    l.finish(e1, 'failed', null, 'late'); // a finished task stays finished
    expect(l.view('1')).toMatchObject({ state: 'done', result: 'r' });
    expect(l.view('2')).toMatchObject({ state: 'failed', error: 'boom' });
    expect(l.view('3').state).toBe('pending');
    expect(l.view('4').state).toBe('unknown');
    expect(l.pending).toBe(1);
    t = 1000;
    l.sweep();
    // Finished entries expire; the pending one is kept (it is evidence of a lost task).
    expect(l.view('1').state).toBe('unknown');
    expect(l.view('3').state).toBe('pending');
  });

  it('keeps at most maxEntries entries: a new one evicts the entry that finished first, never a pending one', () => {
    let t = 0;
    const l = new Ledger({ maxEntries: 4, now: () => t++ });
    const es = ['a', 'b', 'c', 'd'].map((id) => l.accept({ id, kind: 'io' }));
    l.finish(es[2]!, 'done', 'x', null);
    l.finish(es[1]!, 'done', 'x', null);
    l.finish(es[3]!, 'done', 'x', null);
    l.accept({ id: 'e', kind: 'io' });
    // 'c' finished first: it makes room, though 'b' was accepted earlier.
    expect(['a', 'b', 'c', 'd', 'e'].map((id) => l.view(id).state)).toEqual(['pending', 'done', 'unknown', 'done', 'pending']);
    expect(l.size).toBe(4);
    expect(l.view('b')).toMatchObject({ acceptedAt: 1 });
    expect(l.view('b').finishedAt).toBeGreaterThan(3);
    expect(l.view('a').finishedAt).toBeNull();
  });

  it('answers 429 (LimitExceeded, nothing recorded) when every entry is pending', () => {
    const l = new Ledger({ maxEntries: 3 });
    const es = ['a', 'b', 'c'].map((id) => l.accept({ id, kind: 'io' }));
    let err: unknown;
    try {
      l.accept({ id: 'd', kind: 'io' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LimitExceeded);
    expect(err).toMatchObject({ status: 429, limit: 'ledgerEntries', value: 4, max: 3 });
    expect(l.view('d').state).toBe('unknown');
    expect(l.pending).toBe(3);
    l.finish(es[0]!, 'done', 'r', null);
    expect(l.accept({ id: 'd', kind: 'io' }).state).toBe('pending');
    expect(l.view('a').state).toBe('unknown');
  });

  it('bounds characters: payloads of pending tasks and results count; an oversized result fails the task', () => {
    const l = new Ledger({ maxTotalChars: 200, maxResultChars: 20 });
    const a = l.accept({ id: 'a', kind: 'io', payload: 'x'.repeat(80) });
    const b = l.accept({ id: 'b', kind: 'io', payload: 'y'.repeat(80) });
    expect(l.totalChars).toBe(162);
    expect(() => l.accept({ id: 'c', kind: 'io', payload: 'z'.repeat(80) })).toThrow(/ledgerTotalChars/);
    l.finish(a, 'done', 'r'.repeat(21), null);
    expect(l.view('a')).toMatchObject({ state: 'failed', result: null });
    expect(l.view('a').error).toMatch(/result too large: 21 .*ledgerResultChars = 20/);
    l.finish(b, 'done', 'ok', null);
    // Both finished: the new task evicts what it needs, the entry that finished first first.
    expect(l.accept({ id: 'c', kind: 'io', payload: 'z'.repeat(190) }).state).toBe('pending');
    expect(l.view('a').state).toBe('unknown');
    expect(l.view('b').state).toBe('done');
    expect(l.totalChars).toBe(3 + 191);
  });

  it('stays O(1) per task: 200 000 tasks through a ledger of 1000', () => {
    const l = new Ledger({ maxEntries: 1000 });
    const t0 = performance.now();
    for (let i = 0; i < 200_000; i++) {
      const e = l.accept({ id: `t${i}`, kind: 'cpu' });
      if (i % 10 !== 0) l.finish(e, 'done', 'r', null);
      else if (l.pending > 500) l.finish(e, 'failed', null, 'x');
    }
    expect(l.size).toBeLessThanOrEqual(1000);
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});

describe('fault schedule', () => {
  it('errorAt fails exactly round(n * rate) of n tasks, spread evenly', () => {
    for (const rate of [0.1, 0.25, 0.5, 1 / 3, 0.01]) {
      const n = 300;
      let fails = 0;
      for (let i = 1; i <= n; i++) if (errorAt(i, rate)) fails++;
      expect(fails).toBe(Math.floor(n * rate));
    }
    expect([1, 2, 3, 4, 5, 6, 7, 8].filter((i) => errorAt(i, 0.25))).toEqual([4, 8]);
    expect(errorAt(1, 0)).toBe(false);
    expect(errorAt(1, 1)).toBe(true);
  });

  it('FaultState counts tasks since the faults were set, and consumes planted losses', () => {
    const f = new FaultState();
    f.set({ latencyMs: 0, errorRate: 0.5, breach: null, loseAccepted: 2 });
    expect([1, 2, 3, 4].map(() => f.nextTaskErrors())).toEqual([false, true, false, true]);
    expect([f.takeLoss(), f.takeLoss(), f.takeLoss()]).toEqual([true, true, false]);
    f.clear();
    expect(f.nextTaskErrors()).toBe(false);
    expect(f.toJSON()).toEqual({});
  });

  it('parseFaults validates', () => {
    expect(parseFaults({ latencyMs: 5, errorRate: 0.1, breach: { healthScore: 0.2 }, loseAccepted: 2 })).toEqual({
      latencyMs: 5,
      errorRate: 0.1,
      breach: { healthScore: 0.2 },
      loseAccepted: 2,
    });
    expect(typeof parseFaults({ errorRate: 2 })).toBe('string');
    expect(typeof parseFaults({ nonsense: 1 })).toBe('string');
    expect(typeof parseFaults({ breach: { cpu: 1 } })).toBe('string');
    expect(typeof parseFaults({ loseAccepted: 1.5 })).toBe('string');
    expect(parseFaults({ loseAccepted: 1_000_001 })).toMatch(/loseAccepted must be an integer 0..1000000/);
  });
});

describe('work', () => {
  it('cpu task: rounds of SHA-256 over a 1 KiB buffer seeded by the payload', () => {
    const h = (b: Buffer | string): Buffer => createHash('sha256').update(b).digest();
    expect(cpuTaskResult('x', 0)).toBe(h('x').toString('hex'));
    const buf = Buffer.concat(Array.from({ length: 32 }, () => h('x')));
    const r1 = h(buf);
    expect(cpuTaskResult('x', 1)).toBe(r1.toString('hex'));
    r1.copy(buf, 0);
    expect(cpuTaskResult('x', 2)).toBe(h(buf).toString('hex'));
    expect(cpuTaskResult('x', 200)).not.toBe(cpuTaskResult('y', 200));
  });

  it('workflow steps compose', () => {
    expect(applyStep('reverse', 'añb😀')).toBe('😀bña');
    expect(expectedWorkflowOutput('ab', [{ op: 'upper' }, { op: 'append', arg: 'c' }, { op: 'reverse' }])).toBe('cBA');
  });
});
