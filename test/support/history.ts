/**
 * Result documents for the trend tests (test/unit/trend.test.ts, test/e2e/history-cli.test.ts):
 * the fixture quick run (test/fixtures/results-quick.json, a real run) started on another day,
 * under another name, with some tests' values replaced. A replaced value scales the test's raw
 * samples by the same factor (so the samples follow the value) and recomputes their distribution.
 */
import { readFileSync } from 'node:fs';
import { ResultDocument } from '../../src/api/schema.ts';
import { mulberry32 } from '../../src/prng.ts';
import { describe } from '../../src/stats.ts';

export const QUICK: ResultDocument = ResultDocument.parse(JSON.parse(readFileSync(new URL('../fixtures/results-quick.json', import.meta.url), 'utf8')));

const DAY = 24 * 3600 * 1000;
export const DAY0 = Date.parse('2026-01-01T03:00:00.000Z');

/** Run `i` of a nightly series: named `${prefix}-NN`, started `i` days after DAY0, with these values. */
export function nightly(i: number, values: Record<string, number> = {}, prefix = 'nightly'): ResultDocument {
  const start = DAY0 + i * DAY;
  return {
    ...QUICK,
    run: { ...QUICK.run, name: `${prefix}-${String(i).padStart(2, '0')}`, startedAt: new Date(start).toISOString(), finishedAt: new Date(start + 190_000).toISOString() },
    tests: QUICK.tests.map((t) => {
      const v = values[t.id];
      if (v === undefined) return t;
      const f = t.value ? v / t.value : 1;
      const raw = t.rawSamples?.map((x) => x * f);
      return { ...t, value: v, ...(raw?.length ? { rawSamples: raw, distribution: describe(raw) } : {}) };
    }),
  };
}

/** A standard normal draw (Box–Muller) from a seeded uniform stream. */
export function gauss(rand: () => number): number {
  let u = 0;
  while (u === 0) u = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/**
 * `runs` values of a metric around `base`, each run off by a lognormal factor (σ = `noise`),
 * multiplied by `factor` from run `from` on (a planted shift). Seeded.
 */
export function noisySeries(seed: number, runs: number, base: number, noise: number, shift?: { from: number; factor: number }): number[] {
  const rand = mulberry32(seed);
  return Array.from({ length: runs }, (_, i) => base * Math.exp(noise * gauss(rand)) * (shift && i >= shift.from ? shift.factor : 1));
}
