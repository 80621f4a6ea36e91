/**
 * The monitoring category end to end on real agent processes (LocalPlatform on loopback):
 * direct-scrape mode, a latency fault that must show up in 3.1, an unreachable Prometheus that
 * must fail 3.2/3.5 with a reason, and a real Prometheus (Debian binary) scraping the pool through
 * the platform's file_sd file.
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
  p.monitoring.observeSeconds = 3;
  // A volume target the 4-agent pool offers as it is (the growth to a larger target is tested with Prometheus).
  p.targets.metricsSamplesPerSec = 50;
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

/**
 * 3.5 lies between agents x the fewest and agents x the most samples per scrape, per measured
 * interval (series grow while the window runs: the task load creates histogram series).
 */
function volumeWithin(m: Measurement, agents: number): void {
  const d = m.details as unknown as Vol;
  const perS = 1000 / d.measuredIntervalP50Ms;
  expect(m.value!, show(m)).toBeGreaterThanOrEqual(agents * d.samplesPerScrapeMin * perS * 0.9);
  expect(m.value!, show(m)).toBeLessThanOrEqual(agents * d.samplesPerScrapeMax * perS * 1.1);
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

    // 3.1: trials x probes x marks samples; loopback event latency is milliseconds, not tens.
    expect(m31!.samples).toBe(3 * POOL * 10);
    expect(m31!.value!).toBeGreaterThan(0);
    expect(m31!.value!, show(m31!)).toBeLessThan(50);
    expect(m31!.distribution!.p50).toBe(m31!.value);
    const ntp = (m31!.details!.ntp as { oneWayP50Ms: number }).oneWayP50Ms;
    // The one-way estimate is below the trigger-based figure (which adds the trigger's trip), within clock uncertainty.
    expect(ntp).toBeLessThan(m31!.value! + 5);

    // 3.2: direct scrapes, said so, at least minScrapes (5) per agent.
    expect(m32!.details!.mode).toBe('direct-scrape');
    expect(m32!.samples).toBeGreaterThanOrEqual(5 * POOL);
    expect(m32!.value!).toBeGreaterThan(0);
    expect(m32!.value!, show(m32!)).toBeLessThan(500);

    // 3.3: the dashboard pushes every 250 ms: about 4 live updates/s; its task counter saw the load.
    expect(m33!.value!, show(m33!)).toBeGreaterThanOrEqual(2);
    expect(m33!.value!).toBeLessThanOrEqual(6);
    const d33 = m33!.details as { loadTasksCompleted: number; dashboardTasksCounted: number };
    expect(d33.loadTasksCompleted).toBeGreaterThan(10);
    expect(d33.dashboardTasksCounted).toBeGreaterThanOrEqual(d33.loadTasksCompleted);

    // 3.4: one alert per trial; loopback alert latency is milliseconds.
    expect(m34!.samples).toBe(3);
    expect(m34!.value!).toBeGreaterThan(0);
    expect(m34!.value!, show(m34!)).toBeLessThan(500);

    // 3.5: samples/s = agents x samples per scrape / interval (1 s), measured.
    expect(m35!.details!.mode).toBe('direct-scrape');
    const d35 = m35!.details as unknown as Vol;
    expect(d35.samplesPerScrapeMin).toBeGreaterThan(10);
    expect(d35.measuredIntervalP50Ms).toBeGreaterThan(900);
    expect(d35.measuredIntervalP50Ms).toBeLessThan(1200);
    volumeWithin(m35!, POOL);
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

  it('3.2 and 3.5 come from Prometheus, extra queries are reported', async () => {
    const p = params((x) => {
      x.targets.metricsSamplesPerSec = 300;
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

    expect(m35!.details!.mode).toBe('prometheus');
    const d35 = m35!.details as unknown as Vol;
    expect(d35.measuredIntervalP50Ms).toBeGreaterThan(900);
    expect(d35.measuredIntervalP50Ms).toBeLessThan(1100);
    // The pool grew to offer 1.25 x the 300 samples/s target; Prometheus ingested all of it.
    const sizing = m35!.details!.sizing as { agents: number; agentsNeeded: number; samplesPerAgent: number; offeredSamplesPerSec: number };
    expect(sizing.agents).toBe(sizing.agentsNeeded);
    expect(sizing.agents).toBeGreaterThan(POOL);
    expect(m32!.details!.targets).toBe(sizing.agents);
    expect(Object.keys(m32!.details!.perTargetP95Ms as object)).toHaveLength(sizing.agents);
    expect(d35.scrapes).toBeGreaterThanOrEqual(5 * sizing.agents);
    expect(m35!.value!, show(m35!)).toBeGreaterThanOrEqual(300);
    // Prometheus's count of the last scrapes is what the agents expose (no load runs at the end).
    const d = m35!.details as { lastScrapeSamples: number; agentsExposeSamplesNow: number };
    expect(d.lastScrapeSamples).toBeGreaterThan(0);
    expect(Math.abs(d.lastScrapeSamples - d.agentsExposeSamplesNow)).toBeLessThanOrEqual(d.agentsExposeSamplesNow * 0.02);
    volumeWithin(m35!, sizing.agents);

    const extra = m32!.details!.extraQueries as Record<string, { series?: { last: number }[]; error?: string }>;
    expect(extra.agents_up!.series![0]!.last).toBe(sizing.agents);
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
