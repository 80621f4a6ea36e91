/**
 * observeSteps against the test cluster's real Prometheus (`npm run cluster:up`): a namespace, a
 * BenchmarkRun as the owner, an agent pool of 2 run by KubernetesPlatform (step `distributed`)
 * for ~15 s while Prometheus scrapes it (file_sd written by pod-sd.ts every 2 s); then the step's
 * window observed:
 * - agent memory (5–500 MB per agent, and close to what the agents' own /metrics say), CPU ≥ 0,
 *   pool size 2, scrape p95 > 0, samples ingested > 0, no DCGM metrics (a reason, not a zero);
 * - the spec's extra queries: one that works, one that Prometheus rejects (its error as the
 *   reason), one that matches nothing (`no data`);
 * - a run with no agents in the window: every agent figure null with a reason;
 * - an unreachable URL and a URL that is not Prometheus: `available: false` with the reason.
 *
 * Skipped (reason in the suite's name) when the cluster is down; SWARMBENCH_REQUIRE_CLUSTER=1 fails instead.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KUBECONFIG, PROMETHEUS_URL, TEST_SCRAPE_TOKEN } from './lib/config.ts';
import { Observations, type ObservedMetric, type StepObservation } from '../../src/api/schema.ts';
import { observeSteps } from '../../src/operator/observe.ts';
import { KubernetesPlatform } from '../../src/platform/kubernetes/index.ts';
import { PrometheusClient } from '../../src/prometheus/client.ts';
import { clusterNotUp, createOwnerRun, prepareNamespace, until as untilBase } from './lib/itest.ts';

const notUp = await clusterNotUp();
if (notUp && process.env.SWARMBENCH_REQUIRE_CLUSTER === '1') throw new Error(`the test cluster is not up (${notUp}); run npm run cluster:up`);
if (notUp) process.stderr.write(`observe cluster tests SKIPPED: the test cluster is not up (${notUp})\n`);
const title = notUp ? `observations [SKIPPED: cluster not up: ${notUp}; run npm run cluster:up]` : 'observations from the real Prometheus over a step window';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** The shared poll-until-deadline, with this file's defaults (60_000 ms, every 500 ms). */
const until = <T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 500): Promise<T> =>
  untilBase(what, fn, timeoutMs, everyMs);

const IMAGE = 'ghcr.io/swarmbench/swarmbench:dev';
const quiet = { info: () => {}, warn: () => {}, debug: () => {} };
const m = (s: StepObservation, name: string): ObservedMetric => {
  const x = s.metrics.find((y) => y.name === name);
  if (!x) throw new Error(`no metric ${name}`);
  return x;
};

describe.skipIf(!!notUp)(title, () => {
  const kc = new KubeConfig();
  let core: CoreV1Api;
  const ns = `obs-${Date.now().toString(36)}`;
  const runName = 'obs-run';
  let runUid = '';
  let platform: KubernetesPlatform | undefined;
  const prom = new PrometheusClient({ url: PROMETHEUS_URL });

  beforeAll(async () => {
    kc.loadFromFile(KUBECONFIG);
    core = kc.makeApiClient(CoreV1Api);
    prepareNamespace(ns);
    runUid = await createOwnerRun(ns, runName, { mode: 'quick', categories: ['distributed'] });
  });

  afterAll(async () => {
    await platform?.close().catch(() => undefined);
    await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('a pool of 2 scraped for ~15 s: memory, CPU, pool size, scrapes; extra queries; no DCGM', async () => {
    // No operator here: the platform gives the agents this process's tokens as plain values; the
    // cluster's Prometheus scrapes with the test scrape token, so the agents must accept it.
    process.env.SWARMBENCH_METRICS_TOKEN = TEST_SCRAPE_TOKEN;
    platform = new KubernetesPlatform({ kc, run: { namespace: ns, name: runName, uid: runUid }, attempt: 1, step: 'distributed', agentImage: IMAGE, log: quiet, readyTimeoutMs: 90_000 });
    const pool = await platform.createPool({ name: 'obs', size: 2, capacity: 16, agentsPerProcess: 1 });
    const ids = pool.agents().map((a) => a.id).sort();
    expect(ids).toHaveLength(2);
    // Both targets up in Prometheus before the window opens.
    await until('both agent targets up in Prometheus', async () => {
      const r = await prom.query(`up{job="pods",namespace="${ns}"} == 1`);
      return r.series.length === 2;
    }, 60_000, 1000);
    const startedAt = new Date().toISOString();
    const stats: number[] = [];
    for (let i = 0; i < 3; i++) {
      await sleep(5000);
      stats.push(...(await pool.stats()).map((s) => s.rssBytes));
    }
    const finishedAt = new Date().toISOString();
    // Let the scrapes of the window's end land.
    await sleep(6000);

    const o = await observeSteps({
      url: PROMETHEUS_URL,
      namespace: ns,
      run: runName,
      attempt: 1,
      steps: [{ step: 'distributed', category: 'distributed', startedAt, finishedAt }],
      extraQueries: [
        { name: 'targets_up', query: `sum(up{namespace="${ns}"})`, unit: 'targets' },
        { name: 'broken', query: 'rate(process_cpu_seconds_total[' },
        { name: 'nothing', query: `swarmbench_no_such_metric{namespace="${ns}"}` },
      ],
    });
    process.stderr.write(`observations: ${JSON.stringify(o.steps[0]?.metrics.map((x) => [x.name, x.value, x.reason ?? '']))} byPoolSize ${JSON.stringify(o.steps[0]?.byPoolSize)}\n`);
    Observations.parse(o);
    expect(o.prometheus).toEqual({ url: PROMETHEUS_URL, available: true });
    const s = o.steps[0]!;
    // The test cluster has no kubelet container metrics: the agents' own.
    expect(s.resourceSource).toBe('agent');
    expect(s.agentSelector).toBe(`agent=~"${runName}-a1-distributed-.+",namespace="${ns}"`);
    const mem = m(s, 'agent_memory_bytes');
    expect(mem.value, mem.reason).not.toBeNull();
    expect(mem.value!).toBeGreaterThan(5e6);
    expect(mem.value!).toBeLessThan(500e6);
    // Within a factor of two of what the agents' /metrics said during the window.
    const direct = stats.reduce((a, b) => a + b, 0) / stats.length;
    expect(mem.value! / direct).toBeGreaterThan(0.5);
    expect(mem.value! / direct).toBeLessThan(2);
    expect(m(s, 'agent_memory_peak_bytes').value!).toBeGreaterThanOrEqual(mem.value!);
    const cpu = m(s, 'agent_cpu_cores');
    expect(cpu.value, cpu.reason).not.toBeNull();
    expect(cpu.value!).toBeGreaterThanOrEqual(0);
    expect(cpu.value!).toBeLessThan(2);
    expect(m(s, 'pool_size').value).toBe(2);
    expect(s.byPoolSize?.find((g) => g.agents === 2)?.points).toBeGreaterThan(0);
    const scrape = m(s, 'scrape_duration_p95_seconds');
    expect(scrape.value, scrape.reason).not.toBeNull();
    expect(scrape.value!).toBeGreaterThan(0);
    expect(scrape.value!).toBeLessThan(5);
    expect(m(s, 'samples_ingested_per_second').value!).toBeGreaterThan(0);
    expect(m(s, 'gpu_utilization_percent')).toMatchObject({ value: null, reason: expect.stringMatching(/no DCGM metrics/) });
    expect(m(s, 'targets_up').value).toBe(2);
    expect(m(s, 'broken')).toMatchObject({ value: null, reason: expect.stringMatching(/^Prometheus bad_data \(HTTP 400\): .*parse error/) });
    expect(m(s, 'nothing')).toMatchObject({ value: null, reason: expect.stringMatching(/no data/) });

    // Another run's step over the same window: no agents, reasons instead of zeros.
    const other = await observeSteps({
      url: PROMETHEUS_URL, namespace: ns, run: 'not-this-run', attempt: 1,
      steps: [{ step: 'distributed', category: 'distributed', startedAt, finishedAt }], extraQueries: [],
    });
    for (const name of ['agent_memory_bytes', 'agent_cpu_cores', 'pool_size', 'scrape_duration_p95_seconds', 'samples_ingested_per_second']) {
      expect(m(other.steps[0]!, name), name).toMatchObject({ value: null, reason: expect.stringMatching(/no agent of this step was scraped/) });
    }
  });

  it('an unreachable URL, and one that is not Prometheus: unavailable with the reason', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const steps = [{ step: 'distributed', category: 'distributed', startedAt: new Date(Date.now() - 20_000).toISOString(), finishedAt: new Date().toISOString() }];
    const down = await observeSteps({ url: `http://127.0.0.1:${port}`, namespace: ns, run: runName, attempt: 1, steps, extraQueries: [] });
    expect(down.prometheus.available).toBe(false);
    expect(down.prometheus.reason).toMatch(/unreachable: ECONNREFUSED/);
    expect(down.steps).toEqual([]);
    // A server that answers, but not as Prometheus: a plain one that answers every request with an HTML 404.
    const other = createServer((_req, res) => res.writeHead(404, { 'content-type': 'text/html' }).end('<html>not here</html>'));
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      const wrong = await observeSteps({ url: `http://127.0.0.1:${(other.address() as AddressInfo).port}`, namespace: ns, run: runName, attempt: 1, steps, extraQueries: [] });
      expect(wrong.prometheus.available).toBe(false);
      expect(wrong.prometheus.reason).toMatch(/Prometheus unavailable: /);
      expect(wrong.prometheus.reason).not.toMatch(/unreachable/);
      expect(wrong.steps).toEqual([]);
    } finally {
      await new Promise<void>((r) => other.close(() => r()));
    }
  });
});
