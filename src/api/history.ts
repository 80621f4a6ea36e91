/**
 * The history of a benchmark, test by test: one compact point per run and test, enough to draw
 * the trend, find a lasting shift (src/report/trend.ts) and run a rank test on samples later,
 * without keeping whole result documents. `swarmbench history` builds it from results.json files;
 * the operator keeps the same object for each BenchmarkSchedule (operator/schedule-history.ts, a
 * ConfigMap), so every size is bounded here:
 *
 * - at most HISTORY_MAX_SAMPLES (64) samples per point: evenly spaced order statistics of the
 *   test's compared samples (report/baseline.ts `orderStatisticSubset`), rounded to 6 significant
 *   digits;
 * - at most HISTORY_MAX_POINTS (500) points per test; the default kept is
 *   HISTORY_DEFAULT_POINTS (60), the most recent;
 * - at most HISTORY_MAX_TESTS (64) tests (the suite has 27).
 *
 * A point with 32 samples is 400 to 500 bytes of JSON. 60 runs of the quick run's 27 tests (most
 * keep fewer than 32 samples) are 435 kB (test/unit/trend.test.ts); if every test kept 32, 27 × 60
 * points would be about 800 kB: under a ConfigMap's 1 MiB, but not by much. Keep fewer points or
 * samples when other data shares the object.
 */
import { z } from 'zod';
import { Mode, TestOutcome } from './schema.ts';

export const HISTORY_KIND = 'SwarmBenchHistory';
export const HISTORY_VERSION = 1;
/** The most samples one point may hold. */
export const HISTORY_MAX_SAMPLES = 64;
/** Samples kept per point unless asked otherwise (half the cap: a ConfigMap holds 60 runs of 27 tests). */
export const HISTORY_DEFAULT_SAMPLES = 32;
/** The most points one test's history may hold. */
export const HISTORY_MAX_POINTS = 500;
/** Points kept per test unless asked otherwise: the most recent 60 runs. */
export const HISTORY_DEFAULT_POINTS = 60;
/** The most tests a history may hold (the suite has 27). */
export const HISTORY_MAX_TESTS = 64;

const TestId = z.string().regex(/^[1-6]\.[1-6]$/, 'must be a test id such as 1.3');
/** zod 4's number refuses NaN and ±Infinity. */
const finite = z.number();

/** One run's figures of one test. */
export const HistoryPoint = z
  .object({
    /** The test (1.1 … 6.3). */
    id: TestId,
    /** When the run started (ISO 8601, the result document's run.startedAt). */
    time: z.iso.datetime({ offset: true }),
    /** The run's name and attempt. */
    run: z.string().min(1).max(253),
    attempt: z.number().int().min(1),
    mode: Mode.optional(),
    /** The test's outcome in that run. */
    result: TestOutcome,
    /** The test's judged statistic (the result document's `value`); null when none was measured. */
    value: finite.nullable(),
    unit: z.string().max(64),
    /** Median and 95th percentile of the test's samples, when the document carries their distribution. */
    p50: finite.nullable(),
    p95: finite.nullable(),
    /** How many samples are behind `value`. */
    n: z.number().int().min(0),
    /** What the run ran on (a fingerprint id), when the result recorded one. */
    fingerprint: z.string().min(1).max(128).optional(),
    /**
     * The share of the host's CPUs (%) that processes other than the run's own used during it
     * (the result document's `environment.hostLoad.otherPct`, the hypervisor's steal included on
     * a virtual machine: neighbours that take the CPU either way): kept only for runs on the local
     * platform, where the agents are the run's own processes. On a cluster the runner's host
     * figure counts the agents' pods as "other", so it would mix the system under test with
     * its neighbours; it is not kept there (report/trend.ts "The machine changed").
     */
    hostOtherPct: z.number().min(0).max(1000).optional(),
    /** At most 64 of the test's compared samples (evenly spaced order statistics). */
    samples: z.array(finite).max(HISTORY_MAX_SAMPLES),
  })
  .strict();
export type HistoryPoint = z.infer<typeof HistoryPoint>;

/** One test's points, oldest first. */
export const TestHistory = z
  .object({
    id: TestId,
    name: z.string().max(120),
    /** Which direction is an improvement (from the test's target, report/baseline.ts `betterOf`). */
    better: z.enum(['lower', 'higher']),
    points: z.array(HistoryPoint).max(HISTORY_MAX_POINTS),
  })
  .strict()
  .superRefine((t, ctx) => {
    t.points.forEach((p, i) => {
      if (p.id !== t.id) ctx.addIssue({ code: 'custom', path: ['points', i, 'id'], message: `is ${p.id}, in the history of test ${t.id}` });
      if (i > 0 && Date.parse(p.time) < Date.parse(t.points[i - 1]!.time)) {
        ctx.addIssue({ code: 'custom', path: ['points', i, 'time'], message: 'points must be oldest first' });
      }
    });
  });
export type TestHistory = z.infer<typeof TestHistory>;

/** The history of every test. */
export const History = z
  .object({
    kind: z.literal(HISTORY_KIND),
    version: z.literal(HISTORY_VERSION),
    tests: z.array(TestHistory).max(HISTORY_MAX_TESTS),
  })
  .strict()
  .superRefine((h, ctx) => {
    const seen = new Set<string>();
    h.tests.forEach((t, i) => {
      if (seen.has(t.id)) ctx.addIssue({ code: 'custom', path: ['tests', i, 'id'], message: `test ${t.id} appears twice` });
      seen.add(t.id);
    });
  });
export type History = z.infer<typeof History>;
