/**
 * The monitoring category end to end on real agent processes (LocalPlatform on loopback):
 * direct-scrape mode, a latency fault that must show up in 3.1, an unreachable Prometheus that
 * must fail 3.2/3.5 with a reason, and a real Prometheus (Debian binary) scraping the pool through
 * the platform's file_sd file. Each defect profile of category 3 against the default targets is
 * `sensitivity-monitoring.test.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.ts';
import { run } from '../../src/bench/monitoring/index.ts';
import type { BenchContext } from '../../src/bench/types.ts';
import type { Measurement } from '../../src/api/schema.ts';
import { resolveParams, type Params } from '../../src/plan/params.ts';
import { LocalPlatform } from '../../src/platform/local/index.ts';
import type { Platform, Pool, PoolOptions } from '../../src/platform/types.ts';
import { prometheusBinary, startPrometheus, type PrometheusInstance } from '../support/prometheus.ts';

const POOL = 4;

function params(over: (p: Params) => void = () => {}): Params {
  const p = resolveParams({ mode: 'quick', categories: ['monitoring'], trials: 3, agents: { poolSize: POOL, agentsPerProcess: POOL } });
  over(p);
  return p;
}

const quiet = { info: () => {}, warn: () => {}, debug: () => {} };

function ctx(platform: Platform, p: Params): BenchContext {
  return { params: p, platform, log: quiet, progress: () => {}, signal: new AbortController().signal };
}

function byId(ms: Measurement[]): Record<string, Measurement> {
  expect(ms.map((m) => m.id)).toEqual(['3.1', '3.2', '3.3', '3.4', '3.5']);
  return Object.fromEntries(ms.map((m) => [m.id, m]));
}

/** Shows a measurement in a failure message. */
function show(m: Measurement): string {
  return JSON.stringify({ value: m.value, fail: m.fail, samples: m.samples, details: m.details }).slice(0, 2000);
}

interface Vol {
  samplesPerScrapeMin: number;
  samplesPerScrapeMax: number;
  measuredIntervalP50Ms: number;
  scrapes: number;
}

interface LadderStep {
  kept: boolean;
  behind?: string;
  why?: string;
}

/**
 * The window's ingestion lies between agents x the fewest and agents x the most samples per
 * scrape, per measured interval (series grow while the window runs: tasks create histogram series).
 */
function windowWithin(rate: number, d: Vol, agents: number, m: Measurement): void {
  const perS = 1000 / d.measuredIntervalP50Ms;
  expect(rate, show(m)).toBeGreaterThanOrEqual(agents * d.samplesPerScrapeMin * perS * 0.9);
  expect(rate, show(m)).toBeLessThanOrEqual(agents * d.samplesPerScrapeMax * perS * 1.1);
}

/**
 * 3.5's ladder: the window kept, steps at 4x the configured rate and up (x4, then x2 between),
 * the value the highest kept step's measured rate (or the window's), every kept step's rate
 * = its kept scrapes' samples over its length.
 */
function volumeLadder(m: Measurement, agents: number): void {
  const d = m.details as {
    window: { intervalMs: number; samplesPerSec: number; kept: boolean };
    steps: (LadderStep & { intervalMs: number; samplesPerSec: number; slots: number; keptSlots: number; samplesPerScrapeP50: number })[];
    fellBehind: { intervalMs: number; why: string } | null;
    lowerBound: string | null;
  };
  expect(d.window.kept, show(m)).toBe(true);
  expect(d.steps.length, show(m)).toBeGreaterThanOrEqual(1);
  expect(d.steps[0]!.intervalMs).toBe(d.window.intervalMs / 4);
  for (const s of d.steps) {
    expect(s.slots % agents).toBe(0);
    if (s.kept) {
      expect(s.keptSlots).toBeGreaterThanOrEqual(0.95 * s.slots);
      // Kept slots x samples per scrape over the step, within the samples' spread.
      const expected = (s.keptSlots * s.samplesPerScrapeP50) / ((s.slots / agents) * (s.intervalMs / 1000));
      expect(s.samplesPerSec, show(m)).toBeGreaterThan(expected * 0.7);
      expect(s.samplesPerSec, show(m)).toBeLessThan(expected * 1.5);
    } else expect(s.why).toMatch(/slots not kept/);
  }
  const kept = d.steps.filter((s) => s.kept).map((s) => s.samplesPerSec);
  expect(m.value).toBe(Math.max(d.window.samplesPerSec, ...kept));
  // Either it fell behind at a named step, or the value is labelled a lower bound.
  expect(d.fellBehind !== null || d.lowerBound !== null, show(m)).toBe(true);
  expect(m.sampleUnit).toBe('scrapes');
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 1;
      s.close(() => resolve(port));
    });
  });
}

/** A platform whose pools start with a fault already set on every agent. */
function withFault(inner: Platform, faults: Record<string, unknown>): Platform {
  const client = new AgentClient();
  return {
    kind: inner.kind,
    async createPool(opts: PoolOptions): Promise<Pool> {
      const pool = await inner.createPool(opts);
      for (const a of pool.agents()) {
        const r = await client.putFaults(a.url, faults);
        if (r.status !== 200) throw new Error(`fault not set on ${a.id}: ${r.status}`);
      }
      return pool;
    },
    close: async () => {
      client.close();
      await inner.close();
    },
  };
}

describe('monitoring category, direct-scrape mode (no Prometheus)', () => {
  let platform: LocalPlatform;
  let baseline: Record<string, Measurement>;
  beforeAll(() => {
    platform = new LocalPlatform();
  });
  afterAll(async () => {
    await platform?.close();
  });

  it('measures all five tests on real agents', async () => {
    const p = params();
    baseline = byId(await run(ctx(platform, p)));
    const { '3.1': m31, '3.2': m32, '3.3': m33, '3.4': m34, '3.5': m35 } = baseline;
    for (const m of Object.values(baseline)) expect(m.fail, `${m.id}: ${show(m)}`).toBeUndefined();

    // 3.1: trials x probes x marks samples (the warm-up marks not among them); loopback event latency is milliseconds, not tens.
    expect(m31!.samples).toBe(3 * POOL * 10);
    expect(m31!.sampleUnit).toBe('marks');
    expect(m31!.details!.warmupMarksExcluded).toBe(2 * POOL);
    expect(m31!.value!).toBeGreaterThan(0);
    expect(m31!.value!, show(m31!)).toBeLessThan(50);
    expect(m31!.distribution!.p50).toBe(m31!.value);
    const ntp = (m31!.details!.ntp as { oneWayP50Ms: number }).oneWayP50Ms;
    // The one-way estimate is below the trigger-based figure (which adds the trigger's trip), within clock uncertainty.
    expect(ntp).toBeLessThan(m31!.value! + 5);

    // 3.2: direct scrapes, said so, at least minScrapes (5) per agent, the first of each not counted.
    expect(m32!.details!.mode).toBe('direct-scrape');
    expect(m32!.details!.warmupExcluded).toBe(POOL);
    expect(m32!.samples).toBeGreaterThanOrEqual(4 * POOL);
    expect(m32!.sampleUnit).toBe('scrapes');
    expect(m32!.value!).toBeGreaterThan(0);
    expect(m32!.value!, show(m32!)).toBeLessThan(500);

    // 3.3: the marks ladder: kept from 16 updates/s up, each step complete and in time.
    const d33 = m33!.details as {
      steps: (LadderStep & { askedPerSec: number; deliveredInTimePerSec: number; updates: number; delivered: number; lost: number })[];
      fellBehind: { askedPerSec: number } | null;
      lowerBound: string | null;
    };
    expect(d33.steps[0]!.askedPerSec).toBe(16);
    expect(d33.steps[0]!.kept, show(m33!)).toBe(true);
    for (const s of d33.steps.filter((x) => x.kept)) {
      expect(s.delivered).toBe(s.updates);
      expect(s.lost).toBe(0);
      expect(s.deliveredInTimePerSec).toBeGreaterThan(s.askedPerSec * 0.9);
    }
    const best = Math.max(...d33.steps.filter((x) => x.kept).map((x) => x.deliveredInTimePerSec));
    expect(m33!.value).toBe(best);
    expect(m33!.value!, show(m33!)).toBeGreaterThanOrEqual(60);
    expect(m33!.sampleUnit).toBe('updates');
    expect(d33.fellBehind !== null || d33.lowerBound !== null).toBe(true);

    // 3.4: one alert per trial; loopback alert latency is milliseconds.
    expect(m34!.samples).toBe(3);
    expect(m34!.value!).toBeGreaterThan(0);
    expect(m34!.value!, show(m34!)).toBeLessThan(500);

    // 3.5: the window at 1 s, then the runner's ladder above it.
    expect(m35!.details!.mode).toBe('direct-scrape');
    const d35 = m35!.details as unknown as Vol;
    expect(d35.samplesPerScrapeMin).toBeGreaterThan(10);
    expect(d35.measuredIntervalP50Ms).toBeGreaterThan(900);
    expect(d35.measuredIntervalP50Ms).toBeLessThan(1200);
    windowWithin((m35!.details!.window as { samplesPerSec: number }).samplesPerSec, d35, POOL, m35!);
    volumeLadder(m35!, POOL);
    // 4 agents scraped every 62.5 ms offer about 1400 samples/s: a loopback pool keeps that up.
    expect(m35!.value!, show(m35!)).toBeGreaterThan(1000);
  });

  it('an injected 60 ms event latency shows up in 3.1 by at least 60 ms', async () => {
    expect(baseline, 'the first test ran').toBeDefined();
    const faulty = withFault(platform, { latencyMs: 60 });
    const m = byId(await run(ctx(faulty, params())));
    const m31 = m['3.1']!;
    expect(m31.fail, show(m31)).toBeUndefined();
    expect(m31.value! - baseline['3.1']!.value!, show(m31)).toBeGreaterThanOrEqual(60);
    // ...and fails the 50 ms target, as it must.
    expect(m31.value!).toBeGreaterThanOrEqual(60);
    // The other faults survive the alert test's breach/clear cycles (3.4 still measured).
    expect(m['3.4']!.fail, show(m['3.4']!)).toBeUndefined();
  });

  it('an unreachable Prometheus fails 3.2 and 3.5 with a reason, never a zero', async () => {
    const port = await closedPort();
    const m = byId(await run(ctx(platform, params((p) => (p.monitoring.prometheusUrl = `http://127.0.0.1:${port}`)))));
    for (const id of ['3.2', '3.5']) {
      expect(m[id]!.value).toBeNull();
      expect(m[id]!.samples).toBe(0);
      expect(m[id]!.fail).toMatch(/Prometheus unavailable: .*unreachable: ECONNREFUSED/);
    }
    // The tests that do not need Prometheus are still measured.
    expect(m['3.1']!.value).toBeGreaterThan(0);
    expect(m['3.3']!.value).toBeGreaterThan(0);
  });
});

const bin = prometheusBinary();

describe.skipIf(!bin)('monitoring category with a real Prometheus (file_sd)', () => {
  let dir: string;
  let prom: PrometheusInstance;
  let platform: LocalPlatform;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'swarmbench-mon-'));
    const sd = join(dir, 'agents.json');
    prom = await startPrometheus({ fileSdPath: sd, scrapeInterval: '1s' });
    platform = new LocalPlatform({ fileSdPath: sd });
  });
  afterAll(async () => {
    await platform?.close();
    await prom?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('3.2 and the window of 3.5 come from Prometheus, extra queries are reported', async () => {
    const p = params((x) => {
      x.monitoring.prometheusUrl = prom.url;
      x.monitoring.extraQueries = [
        { name: 'agents_up', query: `sum(up{job="${prom.agentJob}",pool="monitoring"})` },
        { name: 'health', query: 'min(swarmbench_agent_health_score)' },
        { name: 'broken', query: 'sum(up' },
        { name: 'nothing', query: 'no_such_metric_anywhere' },
      ];
    });
    const m = byId(await run(ctx(platform, p)));
    const { '3.2': m32, '3.5': m35 } = m;
    for (const x of Object.values(m)) expect(x.fail, `${x.id}: ${show(x)}\n${prom.logTail()}`).toBeUndefined();

    expect(m32!.details!.mode).toBe('prometheus');
    // Every scrape of every target in the window, at least 5 each.
    expect(m32!.samples).toBeGreaterThanOrEqual(5 * POOL);
    expect(m32!.value!).toBeGreaterThan(0);
    expect(m32!.value!, show(m32!)).toBeLessThan(1000);
    expect(m32!.details!.targets).toBe(POOL);
    expect(Object.keys(m32!.details!.perTargetP95Ms as object)).toHaveLength(POOL);

    // The window of 3.5 is Prometheus's ingestion of the pool (never grown) at its 1 s interval.
    expect(m35!.details!.mode).toBe('prometheus');
    const d35 = m35!.details as unknown as Vol;
    expect(d35.measuredIntervalP50Ms).toBeGreaterThan(900);
    expect(d35.measuredIntervalP50Ms).toBeLessThan(1100);
    expect(d35.scrapes).toBeGreaterThanOrEqual(5 * POOL);
    const w = m35!.details!.window as { samplesPerSec: number; source: string };
    expect(w.source).toBe('prometheus');
    windowWithin(w.samplesPerSec, d35, POOL, m35!);
    // Prometheus's count of the last scrapes is what the agents expose (no load runs at the end).
    const d = m35!.details as { lastScrapeSamples: number; agentsExposeSamplesNow: number };
    expect(d.lastScrapeSamples).toBeGreaterThan(0);
    expect(Math.abs(d.lastScrapeSamples - d.agentsExposeSamplesNow)).toBeLessThanOrEqual(d.agentsExposeSamplesNow * 0.02);
    // Above the window, the runner's own scrapes raise the rate.
    volumeLadder(m35!, POOL);
    expect(m35!.value!, show(m35!)).toBeGreaterThan(w.samplesPerSec);

    const extra = m32!.details!.extraQueries as Record<string, { series?: { last: number }[]; error?: string }>;
    expect(extra.agents_up!.series![0]!.last).toBe(POOL);
    expect(extra.health!.series![0]!.last).toBe(1);
    expect(extra.broken!.error).toMatch(/parse error/);
    expect(extra.broken!.series).toBeUndefined();
    expect(extra.nothing!.error).toMatch(/no data/);
  });

  it('a Prometheus that does not scrape the pool fails 3.2 and 3.5 with the reason', async () => {
    // A platform that does not write the file_sd file: Prometheus never learns of these agents.
    const hidden = new LocalPlatform();
    try {
      const m = byId(await run(ctx(hidden, params((x) => (x.monitoring.prometheusUrl = prom.url)))));
      for (const id of ['3.2', '3.5']) {
        expect(m[id]!.value).toBeNull();
        expect(m[id]!.fail).toMatch(/did not scrape the agents within \d+ s: 4 of 4 targets unknown/);
      }
      expect(m['3.1']!.value).toBeGreaterThan(0);
    } finally {
      await hidden.close();
    }
  });
});
