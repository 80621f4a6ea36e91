/**
 * The pure parts of the stress tests: spike recovery from live buckets, the clean probe run after
 * an overload, the exhaustion plan, and the 6.1 verdict inputs of a dispatch run.
 */
import { describe, expect, it } from 'vitest';
import { cleanSuffixStart, exhaustionPlan, spikeRecoveryMs, sustainedMeasurement } from '../../src/bench/stress.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { LoadRun, OUTCOME } from '../../src/bench/load/index.ts';

/** Buckets of 50 ms holding `perSec` tasks/s over [fromMs, toMs). */
function fill(b: number[], fromMs: number, toMs: number, perSec: number): void {
  for (let t = fromMs; t < toMs; t += 50) b[t / 50] = (perSec * 50) / 1000;
}

describe('spikeRecoveryMs', () => {
  const thr = 180; // 90 % of 200/s

  it('is the end of the first good 250 ms window when the rate then holds', () => {
    const b: number[] = [];
    fill(b, 0, 2000, 40); // steady before the spike at 2000
    fill(b, 2000, 2600, 100); // struggling
    fill(b, 2600, 6000, 200); // back
    // The window [2550, 2800) holds 5 + 4 × 10 = 45 tasks = 180/s: the first good one.
    expect(spikeRecoveryMs(b, 50, 2000, 6000, 250, 1000, thr)).toBe(800);
    // One task less in that window and it is the next one.
    b[51] = 4;
    expect(spikeRecoveryMs(b, 50, 2000, 6000, 250, 1000, thr)).toBe(850);
  });

  it('is null while the observation after the return is shorter than the hold', () => {
    const b: number[] = [];
    fill(b, 2000, 2600, 100);
    fill(b, 2600, 3400, 200);
    expect(spikeRecoveryMs(b, 50, 2000, 3400, 250, 1000, thr)).toBeNull();
    expect(spikeRecoveryMs(b, 50, 2000, 3650, 250, 1000, thr)).toBeNull(); // 3400..3650 empty
  });

  it('does not take a lucky window in a stalling system for a recovery', () => {
    const b: number[] = [];
    // Alternating 250 ms bursts and stalls: every other window is "good", no second is (150/s).
    for (let t = 2000; t < 8000; t += 500) {
      fill(b, t, t + 250, 300);
      fill(b, t + 250, t + 500, 0);
    }
    expect(spikeRecoveryMs(b, 50, 2000, 8000, 250, 1000, thr)).toBeNull();
  });

  it('a short dip in an otherwise steady recovered system does not undo the recovery', () => {
    const b: number[] = [];
    fill(b, 2000, 2500, 50);
    fill(b, 2500, 8000, 205);
    b[100] = 5; // one 50 ms bucket at 100/s at t = 5000
    expect(spikeRecoveryMs(b, 50, 2000, 8000, 250, 1000, thr)).toBe(750);
  });

  it('a later collapse moves the recovery after it (or removes it)', () => {
    const b: number[] = [];
    fill(b, 2000, 4000, 200);
    fill(b, 4000, 5000, 50); // collapse
    fill(b, 5000, 7000, 200);
    expect(spikeRecoveryMs(b, 50, 2000, 7000, 250, 1000, thr)).toBe(3000 + 250);
    expect(spikeRecoveryMs(b, 50, 2000, 5000, 250, 1000, thr)).toBeNull();
  });

  it('aligns a spike between buckets up to the next bucket', () => {
    const b: number[] = [];
    fill(b, 2000, 6000, 200);
    expect(spikeRecoveryMs(b, 50, 2010, 6000, 250, 1000, thr)).toBe(2300 - 2010);
  });
});

function fakeRun(outcomes: number[], stepMs = 100): LoadRun {
  const r = new LoadRun('tasks', outcomes.length * stepMs, outcomes.length, 50, 't');
  r.n = outcomes.length;
  outcomes.forEach((o, i) => {
    r.outcome[i] = o;
    r.schedMs[i] = i * stepMs;
    r.doneMs[i] = i * stepMs + 10;
  });
  r.scheduleEndMs = outcomes.length * stepMs;
  return r;
}

describe('cleanSuffixStart (recovery of the probe after an overload)', () => {
  const { ok, rejected, error, pending } = OUTCOME;
  it('finds the first task of a clean run spanning the hold and enough tasks', () => {
    const run = fakeRun([rejected, rejected, ok, rejected, ...Array(12).fill(ok)]);
    expect(cleanSuffixStart(run, 1000, 4)).toBe(400);
  });
  it('is null until the clean run is long enough, or when a task is still open', () => {
    expect(cleanSuffixStart(fakeRun([rejected, ...Array(5).fill(ok)]), 1000, 4)).toBeNull();
    expect(cleanSuffixStart(fakeRun([rejected, ok, pending, ...Array(20).fill(ok)]), 1000, 4)).toBeNull();
    expect(cleanSuffixStart(fakeRun([error, ...Array(30).fill(ok)]), 1000, 40)).toBeNull();
  });
  it('is 0 when the probe was clean from the start', () => {
    expect(cleanSuffixStart(fakeRun(Array(20).fill(ok)), 1000, 4)).toBe(0);
  });
});

describe('exhaustionPlan', () => {
  it('offers overloadFactor × capacity throughput, lengthening tasks to stay within the generator', () => {
    const p = resolveParams({ mode: 'quick' });
    const plan = exhaustionPlan(p, 4);
    expect(plan.rate).toBeCloseTo(p.stress.overloadFactor * plan.capacityRate, 6);
    expect(plan.rate).toBeLessThanOrEqual(400 + 1e-6);
    expect(plan.capacityRate).toBeCloseTo((4 * p.agents.capacity * 1000) / plan.taskMs, 6);
    expect(plan.taskMs).toBeGreaterThanOrEqual(p.agents.ioTaskMs);
  });
  it('keeps the configured task length when that already overloads within the limit', () => {
    const p = resolveParams({ mode: 'quick', agents: { capacity: 2, ioTaskMs: 100 } });
    const plan = exhaustionPlan(p, 4);
    expect(plan.taskMs).toBe(100);
    expect(plan.rate).toBeCloseTo(4 * ((4 * 2 * 1000) / 100), 6);
  });
});

describe('sustainedMeasurement', () => {
  const p = resolveParams({ mode: 'quick' });
  function dispatchRun(lost: number, lateSlow: boolean): LoadRun {
    const n = 2000;
    const r = new LoadRun('dispatch', 20_000, n, 50, 'd');
    r.n = n;
    r.targets.push('http://127.0.0.1:1');
    for (let i = 0; i < n; i++) {
      r.schedMs[i] = i * 10;
      const lat = lateSlow && i * 10 >= 16_000 ? 20 : 10;
      r.doneMs[i] = i * 10 + lat;
      r.outcome[i] = i < lost ? OUTCOME.lost : OUTCOME.ok;
    }
    r.counts.offered = n;
    r.counts.sent = n;
    r.counts.accepted = n;
    r.counts.ok = n - lost;
    r.counts.lost = lost;
    r.lostDetail.unknown = lost;
    r.scheduleEndMs = 20_000;
    r.endMs = 20_100;
    return r;
  }
  it('a clean steady run has no failure and a 0 % error rate', () => {
    const m = sustainedMeasurement(dispatchRun(0, false), p, 0, 1);
    expect(m.value).toBe(0);
    expect(m.fail).toBeUndefined();
    expect((m.details as { driftPct: number }).driftPct).toBe(0);
  });
  it('a lost task is a data-loss failure and counts in the error rate', () => {
    const m = sustainedMeasurement(dispatchRun(2, false), p, 0, 1);
    expect(m.value).toBeCloseTo(0.1, 6);
    expect(m.fail).toMatch(/2 accepted task\(s\) never done/);
  });
  it('a p95 that doubles from the first window to the last fails the drift check', () => {
    const m = sustainedMeasurement(dispatchRun(0, true), p, 0, 1);
    expect((m.details as { driftPct: number }).driftPct).toBeCloseTo(100, 6);
    expect(m.fail).toMatch(/drifted \+100/);
  });
});
