/** The default wait of `submit --wait` / `rerun --wait` (src/cli/cluster/wait-default.ts): the plan's deadlines, not a fixed 30 min. */
import { describe, expect, it } from 'vitest';
import { defaultWaitMs, FALLBACK_WAIT_MS, WAIT_SLACK_MS } from '../../src/cli/cluster/wait-default.ts';
import { stepDeadline } from '../../src/plan/deadlines.ts';
import { resolveParams } from '../../src/plan/params.ts';
import { BenchmarkRunSpec } from '../../src/api/schema.ts';

describe('defaultWaitMs', () => {
  it('is the sum of the steps\' deadlines plus the slack, and outlasts the steps a full run holds', () => {
    const full = defaultWaitMs({ mode: 'full' });
    const p = resolveParams(BenchmarkRunSpec.parse({ mode: 'full' }));
    const sum = p.categories.reduce((a, c) => a + stepDeadline(c, p).totalMs, 0);
    expect(full.ms).toBe(sum + WAIT_SLACK_MS);
    // Full mode holds a 10-minute sustained load and pools of 1000: far past the old 30 min.
    expect(full.ms).toBeGreaterThan(2 * FALLBACK_WAIT_MS);
    expect(full.how).toMatch(/^the 6 steps' deadlines \(\d+ min\) \+ 5 min$/);
  });

  it('follows the categories, and falls back to 30 min (saying so) for a spec it cannot plan', () => {
    const one = defaultWaitMs({ mode: 'quick', categories: ['gpu'] });
    const all = defaultWaitMs({ mode: 'quick' });
    expect(one.ms).toBeLessThan(all.ms);
    expect(one.how).toMatch(/^the 1 step's deadline/);
    expect(defaultWaitMs({ mode: 'bogus' })).toEqual({ ms: FALLBACK_WAIT_MS, how: '30 min (the spec could not be planned here)' });
  });
});
