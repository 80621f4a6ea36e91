import { describe as group, expect, it } from 'vitest';
import { capSamples, describe, meanAbsRelDeviation, percentile } from '../../src/stats.ts';

group('statistics', () => {
  it('percentiles interpolate between ranks (NumPy linear)', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95)).toBeCloseTo(9.55, 10);
    expect(percentile([7], 99)).toBe(7);
  });

  it('describes a sample set', () => {
    const d = describe([5, 1, 4, 2, 3]);
    expect(d).toMatchObject({ n: 5, min: 1, max: 5, mean: 3, p50: 3 });
    expect(d.stddev).toBeCloseTo(Math.sqrt(2.5), 10);
  });

  it('refuses empty and non-finite samples', () => {
    expect(() => describe([])).toThrow(/no samples/);
    expect(() => describe([1, Number.NaN])).toThrow(/non-finite/);
  });

  it('mean absolute relative deviation is 0 for an even spread and grows with skew', () => {
    expect(meanAbsRelDeviation([10, 10, 10, 10])).toBe(0);
    expect(meanAbsRelDeviation([0, 0, 0, 40])).toBeCloseTo(1.5, 10);
  });

  it('caps stored samples evenly', () => {
    const s = Array.from({ length: 1000 }, (_, i) => i);
    const c = capSamples(s, 100);
    expect(c).toHaveLength(100);
    expect(c[0]).toBe(0);
    expect(c[99]).toBe(990);
  });
});
