/**
 * observeSteps against a tiny local HTTP server answering with Prometheus-shaped bodies (the
 * shapes of a 2.42 server: vector/matrix/scalar results, `status: error` with errorType, an HTML
 * 503 from a proxy, empty results, a server that does not answer in time).
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Observations, type ObservedMetric, type StepObservation } from '../../src/api/schema.ts';
import { agentNamePrefix, poolDeploymentName } from '../../src/kube/names.ts';
import { observeSteps, type ObserveInput } from '../../src/operator/observe.ts';

interface Req {
  path: string;
  query: string;
  form: URLSearchParams;
}
type Handler = (req: Req, res: ServerResponse) => void;

let server: Server;
let base: string;
let handler: Handler;
let seen: Req[] = [];

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};
const vector = (res: ServerResponse, result: { metric: Record<string, string>; value: [number, string] }[]): void =>
  json(res, 200, { status: 'success', data: { resultType: 'vector', result } });
const matrix = (res: ServerResponse, result: { metric: Record<string, string>; values: [number, string][] }[]): void =>
  json(res, 200, { status: 'success', data: { resultType: 'matrix', result } });

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const u = new URL(req.url!, 'http://x');
      const form = new URLSearchParams(body || u.search);
      const r: Req = { path: u.pathname, query: form.get('query') ?? '', form };
      seen.push(r);
      handler(r, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(() => {
  seen = [];
});

const START = '2026-01-01T00:00:00.000Z';
const END = '2026-01-01T00:00:20.000Z';
const T0 = Date.parse(START) / 1000;
const input = (over: Partial<ObserveInput> = {}): ObserveInput => ({
  url: base,
  namespace: 'bench',
  run: 'nightly',
  attempt: 2,
  steps: [{ step: 'distributed', category: 'distributed', startedAt: START, finishedAt: END }],
  extraQueries: [],
  timeoutMs: 2000,
  ...over,
});
const m = (s: StepObservation, name: string): ObservedMetric => {
  const x = s.metrics.find((y) => y.name === name);
  if (!x) throw new Error(`no metric ${name}`);
  return x;
};
const pts = (vs: (number | string)[], step = 1): [number, string][] => vs.map((v, i) => [T0 + i * step, String(v)]);
const agentLabels = (i: number, ns = 'bench'): Record<string, string> => ({
  agent: `nightly-a2-distributed-main-abc-${i}`, job: 'pods', instance: `10.244.0.${i}:8080`, namespace: ns, pod: `nightly-a2-distributed-main-abc-${i}`,
});

/** A Prometheus with two agents of the step in namespace `bench`, no kubelet and no DCGM metrics. */
function agentsPrometheus(over: (r: Req, res: ServerResponse) => boolean = () => false): Handler {
  return (r, res) => {
    if (over(r, res)) return;
    const q = r.query;
    if (q === 'time()') return json(res, 200, { status: 'success', data: { resultType: 'scalar', result: [T0 + 20, `${T0 + 20}`] } });
    if (q.startsWith('count_over_time(process_resident_memory_bytes')) {
      return vector(res, [1, 2].map((i) => ({ metric: agentLabels(i), value: [T0 + 20, '4'] as [number, string] })));
    }
    if (q.startsWith('count(count_over_time(container_memory_working_set_bytes')) return vector(res, []);
    if (q.startsWith('count(count_over_time(DCGM_FI_DEV_GPU_UTIL')) return vector(res, []);
    if (q.startsWith('count(process_resident_memory_bytes')) return matrix(res, [{ metric: {}, values: pts([1, 1, 2, 2, 2]) }]);
    if (q.startsWith('avg(process_resident_memory_bytes')) return matrix(res, [{ metric: {}, values: pts([50e6, 52e6, 60e6, 61e6, 'NaN']) }]);
    if (q.startsWith('max(process_resident_memory_bytes')) return matrix(res, [{ metric: {}, values: pts([50e6, 52e6, 70e6, 71e6, 72e6]) }]);
    if (q.startsWith('avg(irate(process_cpu_seconds_total')) return matrix(res, [{ metric: {}, values: pts([0.1, 0.3, 0.2, 0.2, 0.2]) }]);
    if (q.startsWith('scrape_duration_seconds{')) {
      return matrix(res, [
        { metric: { __name__: 'scrape_duration_seconds', ...agentLabels(1) }, values: pts([0.01, 0.02, 0.03, 0.04], 5) },
        { metric: { __name__: 'scrape_duration_seconds', ...agentLabels(2) }, values: pts([0.05, 0.06, 0.07, 0.2], 5) },
      ]);
    }
    if (q.startsWith('sum(sum_over_time(scrape_samples_post_metric_relabeling')) return vector(res, [{ metric: {}, value: [T0 + 20, '41.5'] }]);
    if (q === 'sum(agent_tasks_total)') return matrix(res, [{ metric: {}, values: pts([10, 20, 30]) }]);
    if (q === 'agent_tasks_total') {
      return matrix(res, [
        { metric: { agent: 'a' }, values: pts([1, 3]) },
        { metric: { agent: 'b' }, values: pts([5, 'NaN']) },
      ]);
    }
    if (q === 'absent_metric') return matrix(res, []);
    if (q === 'sum(rate(x[') return json(res, 400, { status: 'error', errorType: 'bad_data', error: '1:12: parse error: unexpected end of input' });
    return json(res, 422, { status: 'error', errorType: 'execution', error: `unexpected query in the test: ${q}` });
  };
}

describe('agentNamePrefix', () => {
  it('is the pool Deployment name up to the pool, cut like dnsName(…, 57) for long names', () => {
    expect(agentNamePrefix('nightly', 2, 'distributed')).toBe('nightly-a2-distributed-');
    // A long run name is shortened with a hash of it (kube/names.ts runBase), so the prefix of
    // each run stays whole (and distinct) within 48 characters.
    const long = 'a-very-long-benchmark-run-name-that-goes-on-and-on';
    const p = agentNamePrefix(long, 1, 'scalability');
    expect(p.length).toBeLessThanOrEqual(48);
    expect(p).toMatch(/^a-very-long-benchmark-[0-9a-f]{8}-a1-scalability-$/);
    expect(poolDeploymentName(long, 1, 'scalability', 'main').startsWith(p)).toBe(true);
    expect(agentNamePrefix(`${long}-2`, 1, 'scalability')).not.toBe(p);
  });
});

describe('observeSteps', () => {
  it('without a URL: unavailable with the reason and no figures at all', async () => {
    const o = await observeSteps(input({ url: null }));
    expect(o).toEqual({ prometheus: { url: null, available: false, reason: "neither spec.prometheus.url nor the operator's --prometheus-url is set" }, steps: [] });
    expect(seen).toHaveLength(0);
    Observations.parse(o);
  });

  it('an unreachable Prometheus: unavailable with the network error, no step figures', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const o = await observeSteps(input({ url: `http://127.0.0.1:${port}` }));
    expect(o.prometheus.available).toBe(false);
    expect(o.prometheus.reason).toMatch(/Prometheus unavailable: .*unreachable: ECONNREFUSED/);
    expect(o.steps).toEqual([]);
    Observations.parse(o);
  });

  it('a Prometheus answering errors to its first query: unavailable with its message', async () => {
    handler = (_r, res) => {
      res.writeHead(503, { 'content-type': 'text/html' });
      res.end('<html><body>503 Service Temporarily Unavailable</body></html>');
    };
    const o = await observeSteps(input());
    expect(o.prometheus).toMatchObject({ available: false });
    expect(o.prometheus.reason).toMatch(/HTTP 503.*Service Temporarily Unavailable/);
  });

  it('agent figures from the agents\' own metrics, scrapes, no DCGM, and the spec\'s queries', async () => {
    handler = agentsPrometheus();
    const o = await observeSteps(input({
      token: 's3cret',
      extraQueries: [
        { name: 'tasks', query: 'sum(agent_tasks_total)', unit: 'tasks' },
        { name: 'per_agent', query: 'agent_tasks_total' },
        { name: 'absent', query: 'absent_metric' },
        { name: 'broken', query: 'sum(rate(x[' },
      ],
    }));
    Observations.parse(o);
    expect(o.prometheus).toEqual({ url: base, available: true });
    const s = o.steps[0]!;
    expect(s.window).toEqual({ start: START, end: END, stepSeconds: 1 });
    expect(s.resourceSource).toBe('agent');
    expect(s.agentSelector).toBe('agent=~"nightly-a2-distributed-.+",namespace="bench"');
    // Memory: the max over the window of the per-agent average (the NaN point ignored).
    expect(m(s, 'agent_memory_bytes')).toMatchObject({ value: 61e6, unit: 'bytes', statistic: 'max', source: 'agent' });
    expect(m(s, 'agent_memory_peak_bytes').value).toBe(72e6);
    expect(m(s, 'agent_cpu_cores')).toMatchObject({ value: 0.2, unit: 'cores', statistic: 'avg' });
    expect(m(s, 'pool_size')).toMatchObject({ value: 2, statistic: 'max' });
    expect(s.byPoolSize).toEqual([
      { agents: 1, points: 2, memoryBytes: 51e6, cpuCores: 0.2 },
      { agents: 2, points: 3, memoryBytes: 60.5e6, cpuCores: 0.2 },
    ]);
    // p95 of the 8 raw scrape durations: 0.07 + 0.65 * (0.2 - 0.07).
    expect(m(s, 'scrape_duration_p95_seconds').value).toBeCloseTo(0.1545, 6);
    expect(m(s, 'scrape_duration_p95_seconds').note).toMatch(/2 agent targets.*8 scrapes/);
    expect(m(s, 'samples_ingested_per_second')).toMatchObject({ value: 41.5, unit: 'samples/s', statistic: 'rate' });
    expect(m(s, 'gpu_utilization_percent')).toMatchObject({ value: null, reason: expect.stringMatching(/no DCGM metrics/) });
    expect(m(s, 'tasks')).toMatchObject({ value: 20, unit: 'tasks', statistic: 'avg', source: 'spec' });
    expect(m(s, 'per_agent').value).toBe(3);
    expect(m(s, 'per_agent').series).toEqual([
      { labels: { agent: 'a' }, points: 2, avg: 2, max: 3, last: 3 },
      { labels: { agent: 'b' }, points: 2, avg: 5, max: 5, last: 5 },
    ]);
    expect(m(s, 'absent')).toMatchObject({ value: null, reason: expect.stringMatching(/no data/) });
    expect(m(s, 'broken')).toMatchObject({ value: null, reason: 'Prometheus bad_data (HTTP 400): 1:12: parse error: unexpected end of input (query: sum(rate(x[)' });

    // What was asked: the agents by name and namespace, their targets by job and instance, windows.
    const q = (start: string) => seen.find((r) => r.query.startsWith(start))!;
    const scr = q('scrape_duration_seconds{');
    expect(scr.query).toBe('scrape_duration_seconds{job="pods",instance=~"10\\\\.244\\\\.0\\\\.1:8080|10\\\\.244\\\\.0\\\\.2:8080"}[20000ms]');
    expect(scr.path).toBe('/api/v1/query');
    expect(Number(scr.form.get('time'))).toBe(T0 + 20);
    const mem = q('avg(process_resident_memory_bytes');
    expect(mem.path).toBe('/api/v1/query_range');
    expect([Number(mem.form.get('start')), Number(mem.form.get('end')), mem.form.get('step')]).toEqual([T0, T0 + 20, '1']);
    expect(q('avg(irate(process_cpu_seconds_total').query).toBe('avg(irate(process_cpu_seconds_total{agent=~"nightly-a2-distributed-.+",namespace="bench"}[12500ms]))');
  });

  it('sends the bearer token', async () => {
    let auth: string | undefined;
    const h = agentsPrometheus();
    handler = (r, res) => h(r, res);
    server.once('request', (req) => (auth = req.headers.authorization));
    await observeSteps(input({ token: 'tok-1' }));
    expect(auth).toBe('Bearer tok-1');
  });

  it('prefers the kubelet\'s container metrics where the cluster has them', async () => {
    handler = agentsPrometheus((r, res) => {
      if (r.query.startsWith('count(count_over_time(container_memory_working_set_bytes')) {
        vector(res, [{ metric: {}, value: [T0 + 20, '2'] }]);
        return true;
      }
      if (r.query.startsWith('count(max by (namespace, pod) (container_memory_working_set_bytes')) {
        matrix(res, [{ metric: {}, values: pts([2, 2]) }]);
        return true;
      }
      if (r.query.startsWith('avg(max by (namespace, pod) (container_memory_working_set_bytes')) {
        matrix(res, [{ metric: {}, values: pts([40e6, 45e6]) }]);
        return true;
      }
      if (r.query.startsWith('max(max by (namespace, pod) (container_memory_working_set_bytes')) {
        matrix(res, [{ metric: {}, values: pts([41e6, 46e6]) }]);
        return true;
      }
      if (r.query.startsWith('avg(sum by (namespace, pod) (irate(container_cpu_usage_seconds_total')) {
        matrix(res, [{ metric: {}, values: pts([0.5, 0.7]) }]);
        return true;
      }
      return false;
    });
    const o = await observeSteps(input());
    const s = o.steps[0]!;
    expect(s.resourceSource).toBe('kubelet');
    expect(s.agentSelector).toBe('namespace="bench",pod=~"nightly-a2-distributed-.+",container="agent"');
    expect(m(s, 'agent_memory_bytes')).toMatchObject({ value: 45e6, source: 'kubelet' });
    expect(m(s, 'agent_cpu_cores')).toMatchObject({ value: 0.6, source: 'kubelet' });
    expect(m(s, 'pool_size').value).toBe(2);
    // Scrapes are still those of the agent targets.
    expect(m(s, 'scrape_duration_p95_seconds').value).toBeGreaterThan(0);
  });

  it('no agent of the step scraped: every agent figure null with the reason, never zero', async () => {
    handler = agentsPrometheus((r, res) => {
      if (r.query.startsWith('count_over_time(process_resident_memory_bytes')) {
        // Agents of the same run name, but in another namespace.
        vector(res, [{ metric: agentLabels(1, 'other'), value: [T0 + 20, '4'] }]);
        return true;
      }
      return false;
    });
    const o = await observeSteps(input());
    const s = o.steps[0]!;
    for (const name of ['agent_memory_bytes', 'agent_memory_peak_bytes', 'agent_cpu_cores', 'pool_size', 'scrape_duration_p95_seconds', 'samples_ingested_per_second']) {
      expect(m(s, name).value, name).toBeNull();
      expect(m(s, name).reason, name).toMatch(/no agent of this step was scraped in the window .* in namespace bench/);
    }
    expect(s.byPoolSize).toBeUndefined();
    expect(seen.some((r) => r.query.startsWith('scrape_duration_seconds'))).toBe(false);
  });

  it('agent series without a namespace label are matched by agent name alone, with a note', async () => {
    handler = agentsPrometheus((r, res) => {
      if (r.query.startsWith('count_over_time(process_resident_memory_bytes')) {
        const { namespace: _ns, ...l } = agentLabels(1);
        vector(res, [{ metric: l, value: [T0 + 20, '4'] }]);
        return true;
      }
      return false;
    });
    const s = (await observeSteps(input())).steps[0]!;
    expect(s.agentSelector).toBe('agent=~"nightly-a2-distributed-.+"');
    expect(m(s, 'agent_memory_bytes').note).toMatch(/no namespace label/);
    expect(m(s, 'agent_memory_bytes').value).toBe(61e6);
  });

  it('a query that fails after the first: that figure has Prometheus\'s error, the others are kept', async () => {
    handler = agentsPrometheus((r, res) => {
      if (r.query.startsWith('max(process_resident_memory_bytes')) {
        json(res, 503, { status: 'error', errorType: 'timeout', error: 'query timed out in expression evaluation' });
        return true;
      }
      if (r.query.startsWith('avg(irate(')) {
        matrix(res, [{ metric: {}, values: pts(['NaN', 'NaN']) }]);
        return true;
      }
      return false;
    });
    const o = await observeSteps(input());
    const s = o.steps[0]!;
    expect(o.prometheus).toEqual({ url: base, available: true });
    expect(m(s, 'agent_memory_peak_bytes')).toMatchObject({ value: null, reason: 'Prometheus timeout (HTTP 503): query timed out in expression evaluation (query: max(process_resident_memory_bytes{agent=~"nightly-a2-distributed-.+",namespace="bench"}))' });
    expect(m(s, 'agent_cpu_cores')).toMatchObject({ value: null, reason: expect.stringMatching(/no data/) });
    expect(m(s, 'agent_memory_bytes').value).toBe(61e6);
  });

  it('a Prometheus that stops answering: the later figures carry the timeout, the rest are not sent', async () => {
    const h = agentsPrometheus();
    let held: ServerResponse[] = [];
    handler = (r, res) => {
      if (r.query === 'time()') return h(r, res);
      held.push(res); // never answered
    };
    const t0 = Date.now();
    const o = await observeSteps(input({
      timeoutMs: 300,
      steps: [
        { step: 'distributed', category: 'distributed', startedAt: START, finishedAt: END },
        { step: 'monitoring', category: 'monitoring', startedAt: START, finishedAt: END },
      ],
      extraQueries: [{ name: 'q', query: 'up' }],
    }));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(o.prometheus.available).toBe(true);
    expect(o.prometheus.reason).toMatch(/stopped answering.*did not answer within 300 ms/);
    for (const s of o.steps) {
      for (const x of s.metrics) {
        expect(x.value, `${s.step}/${x.name}`).toBeNull();
        expect(x.reason, `${s.step}/${x.name}`).toMatch(/did not answer within 300 ms/);
      }
    }
    // time() + the two discovery probes sent together; nothing after the first timeout.
    expect(seen.length).toBeLessThanOrEqual(3);
    for (const res of held) res.destroy();
    held = [];
    Observations.parse(o);
  });

  it('GPU utilisation from DCGM series of the step\'s pods; DCGM without pod mapping gives a reason', async () => {
    let attributed = true;
    handler = agentsPrometheus((r, res) => {
      if (r.query.startsWith('count(count_over_time(DCGM_FI_DEV_GPU_UTIL')) {
        vector(res, [{ metric: {}, value: [T0 + 20, '2'] }]);
        return true;
      }
      if (r.query.startsWith('avg(DCGM_FI_DEV_GPU_UTIL{namespace="bench",pod=~"nightly-a2-gpu-.+"} or DCGM_FI_DEV_GPU_UTIL{exported_namespace="bench",exported_pod=~"nightly-a2-gpu-.+"})')) {
        matrix(res, attributed ? [{ metric: {}, values: pts([80, 90, 100]) }] : []);
        return true;
      }
      return false;
    });
    const steps = [{ step: 'gpu', category: 'gpu', startedAt: START, finishedAt: END }];
    const s = (await observeSteps(input({ steps }))).steps[0]!;
    expect(m(s, 'gpu_utilization_percent')).toMatchObject({ value: 90, unit: '%', source: 'dcgm', statistic: 'avg' });
    attributed = false;
    const s2 = (await observeSteps(input({ steps }))).steps[0]!;
    expect(m(s2, 'gpu_utilization_percent')).toMatchObject({ value: null, reason: expect.stringMatching(/none is attributed to this step's pods/) });
  });

  it('a step without a valid window has a reason and no figures; the query step fits long windows', async () => {
    handler = agentsPrometheus();
    const o = await observeSteps(input({
      steps: [
        { step: 'distributed', category: 'distributed', startedAt: END, finishedAt: START },
        { step: 'stress', category: 'stress', startedAt: START, finishedAt: 'not a time' },
        { step: 'scalability', category: 'scalability', startedAt: START, finishedAt: '2026-01-01T01:00:00.000Z' },
      ],
    }));
    expect(o.steps[0]).toMatchObject({ reason: expect.stringMatching(/window is empty/), metrics: [] });
    expect(o.steps[1]).toMatchObject({ reason: expect.stringMatching(/not a pair of times/), metrics: [] });
    expect(o.steps[2]!.window.stepSeconds).toBe(18);
    const r = seen.find((x) => x.path === '/api/v1/query_range' && x.query.includes('scalability'))!;
    expect(r.form.get('step')).toBe('18');
    Observations.parse(o);
  });
});
