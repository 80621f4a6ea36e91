/** The rate ladder of tests 3.3 and 3.5 (src/bench/monitoring/ladder.ts) on scripted steps. */
import { describe, expect, it } from 'vitest';
import { climb, runnerLoad, type Behind, type StepOutcome } from '../../src/bench/monitoring/ladder.ts';

/** A system that keeps up to `limit` and falls behind above it, for the reason `above` says. */
function system(limit: number, above: Behind = 'late', floorBehind?: Behind) {
  const asked: number[] = [];
  const step = async (level: number): Promise<StepOutcome> => {
    asked.push(level);
    if (floorBehind) return { level, rate: level * 0.5, kept: false, behind: floorBehind, why: floorBehind };
    const kept = level <= limit;
    return { level, rate: level, kept, ...(kept ? {} : { behind: above, why: `${above} at ${level}` }) };
  };
  return { asked, step };
}

const signal = new AbortController().signal;

describe('climb', () => {
  it('raises x4 until a step falls behind, then tries the level between (x2)', async () => {
    const s = system(700);
    const r = await climb({ start: 16, max: 16_384, min: 1, step: s.step, signal });
    expect(s.asked).toEqual([16, 64, 256, 1024, 512]);
    expect(r.best?.level).toBe(512);
    expect(r.fellBehind?.level).toBe(1024);
    expect(r.lowerBound).toBeNull();
  });

  it('the refined level falling behind is the one reported', async () => {
    const s = system(300);
    const r = await climb({ start: 16, max: 16_384, min: 1, step: s.step, signal });
    expect(s.asked).toEqual([16, 64, 256, 1024, 512]);
    expect(r.best?.level).toBe(256);
    expect(r.fellBehind?.level).toBe(512);
  });

  it('a lost update ends the ladder at once: no refinement, no lower rate', async () => {
    const lossy = system(0, 'lost');
    const r = await climb({ start: 16, max: 16_384, min: 1, step: lossy.step, signal });
    expect(lossy.asked).toEqual([16]);
    expect(r.best).toBeNull();
    expect(r.fellBehind?.behind).toBe('lost');
    const later = system(100, 'lost');
    const r2 = await climb({ start: 16, max: 16_384, min: 1, step: later.step, signal });
    expect(later.asked).toEqual([16, 64, 256]);
    expect(r2.best?.level).toBe(64);
  });

  it('late at the start: steps down (/4) to the floor, and stops at the first kept level', async () => {
    const s = system(5);
    const r = await climb({ start: 16, max: 16_384, min: 1, step: s.step, signal });
    expect(s.asked).toEqual([16, 4]);
    expect(r.best?.level).toBe(4);
    expect(r.fellBehind?.level).toBe(16);
    const never = system(0, 'late', 'late');
    const r2 = await climb({ start: 16, max: 16_384, min: 1, step: never.step, signal });
    expect(never.asked).toEqual([16, 4, 1]);
    expect(r2.best).toBeNull();
    expect(r2.fellBehind?.level).toBe(1);
  });

  it('a level known to be kept below the start is refined against, never stepped under', async () => {
    const s = system(6);
    const r = await climb({ start: 4, max: 256, min: 4, keptBelow: 1, step: s.step, signal });
    expect(s.asked).toEqual([4, 16, 8]);
    expect(r.best?.level).toBe(4);
    const none = system(1.5);
    const r2 = await climb({ start: 4, max: 256, min: 4, keptBelow: 1, step: none.step, signal });
    expect(none.asked).toEqual([4, 2]);
    expect(r2.best).toBeNull();
    expect(r2.fellBehind?.level).toBe(2);
  });

  it('the harness ceiling and the top of the ladder make the value a lower bound', async () => {
    const h = system(300, 'harness');
    const r = await climb({ start: 16, max: 16_384, min: 1, step: h.step, signal });
    expect(r.best?.level).toBe(256);
    expect(r.lowerBound).toMatch(/harness reached its own ceiling first \(harness at 512\)/);
    const top = system(Infinity);
    const r2 = await climb({ start: 16, max: 1024, min: 1, step: top.step, signal });
    expect(top.asked).toEqual([16, 64, 256, 1024]);
    expect(r2.fellBehind).toBeNull();
    expect(r2.lowerBound).toMatch(/ladder's top \(1024\) was kept/);
  });

  it('runnerLoad reads a busy loop as busy and an idle wait as idle', async () => {
    const busy = runnerLoad();
    const end = performance.now() + 150;
    while (performance.now() < end) {
      /* spin */
    }
    expect(busy().elu).toBeGreaterThan(0.8);
    const idle = runnerLoad();
    await new Promise((r) => setTimeout(r, 150));
    expect(idle().elu).toBeLessThan(0.5);
  });
});
