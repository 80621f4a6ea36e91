/**
 * Prometheus observations over each step's window (docs/operator.md "Observations"): what the
 * agents cost (CPU, memory) by pool size, what scraping them cost (scrape duration, samples
 * ingested), GPU use where DCGM metrics exist, and the spec's extra queries.
 *
 * - No URL: `prometheus.available: false` with the reason, and no steps (no figure is invented).
 * - A Prometheus that does not answer the first query (`time()`): the same with its error.
 * - A query that fails or matches nothing later: that figure is `value: null` with the reason;
 *   never a zero. After a network error or a timeout the remaining queries are not sent (each
 *   would wait out its own timeout) and report that error.
 * - Bounded (`src/prometheus/bounded.ts`): at most `OBSERVE_CONCURRENCY` queries in flight, and ONE
 *   total deadline for the whole finish (`OBSERVE_DEADLINE_MS`, every step and every extra query
 *   together), on top of the client's per-request timeout and 16 MiB body cap. A query not
 *   answered by the deadline is aborted (or, still queued, never sent) and its figure is
 *   `value: null` with the deadline as its reason; `prometheus.reason` counts them. So a
 *   Prometheus that never answers, or streams an endless body, costs one deadline per finish.
 *
 * Agent selection (docs/kubernetes-platform.md): agent pods are named
 * `<run>-a<attempt>-<step>-<pool>-…` and each agent labels its series `agent="<pod name>"`, so a
 * step's agents are `{agent=~"<run>-a<attempt>-<step>-.+"}`, narrowed by `namespace="<ns>"` when
 * the scrape config attaches a namespace label. Their scrape targets (`job`, `instance`) are read
 * off those series. CPU and memory come from the kubelet's container metrics
 * (`container_*{namespace, pod, container="agent"}`) when the cluster has them for these pods,
 * from the agents' own process metrics otherwise.
 */
import type { ObservedMetric, Observations, StepObservation } from '../api/schema.ts';
import { percentile } from '../stats.ts';
import { PrometheusClient, PrometheusError, escapeRegex, promDuration, type QueryResult, type Series } from '../prometheus/client.ts';
import { QueryBounds, formatMs } from '../prometheus/bounded.ts';
import { errorMessage } from '../errors.ts';
import { AGENT_CONTAINER, agentNamePrefix } from '../kube/names.ts';

export interface ObserveStep {
  step: string;
  category: string;
  startedAt: string;
  finishedAt: string;
}

export interface ObserveInput {
  /** spec.prometheus.url, else the operator's --prometheus-url; null when neither is set. */
  url: string | null;
  /** Bearer token (the Secret of spec.prometheus.bearerTokenSecretRef). */
  token?: string | undefined;
  namespace: string;
  run: string;
  attempt: number;
  steps: ObserveStep[];
  extraQueries: { name: string; query: string; unit?: string | undefined }[];
  /** Per request (default 10000 ms). */
  timeoutMs?: number | undefined;
  /** The one deadline of all the queries of this call (default `OBSERVE_DEADLINE_MS`). */
  deadlineMs?: number | undefined;
  /** Queries in flight at most (default `OBSERVE_CONCURRENCY`). */
  concurrency?: number | undefined;
  /** Cap of one response body (bytes; default the client's 16 MiB). */
  maxBodyBytes?: number | undefined;
  /** Injected fetch (tests). */
  fetch?: typeof fetch | undefined;
}

/**
 * The one deadline of all the Prometheus queries of one finish (every step, every extra query):
 * 60 s. It holds an operator worker at most this long (plus the last request's cleanup) for
 * Prometheus's sake; 64 extra queries × 8 steps of a healthy Prometheus answer well inside it.
 */
export const OBSERVE_DEADLINE_MS = 60_000;
/** Queries of one finish in flight at most: 4 (a step's discovery pair, then its four agent figures). */
export const OBSERVE_CONCURRENCY = 4;

/** Above this many raw scrape samples the scrape p95 is computed by Prometheus (per-target p95s). */
const MAX_RAW_SAMPLES = 50_000;

const finite = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v);
const round = (v: number, digits = 6): number => Number(v.toPrecision(digits));
const finiteOrNull = (v: number | undefined): number | null => (finite(v) ? round(v) : null);

/** A PromQL string literal's content (for `=` matchers). */
const quote = (s: string): string => s.replace(/[\\"]/g, (c) => `\\${c}`);


interface Ctx {
  client: PrometheusClient;
  /** The finish's concurrency limit and its one deadline. */
  bounds: QueryBounds;
  /** Set after a network error or timeout: later queries are not sent. */
  dead?: string;
  /** Queries cut or never sent because the deadline passed. */
  late: number;
}

type Answer = { ok: true; r: QueryResult } | { ok: false; reason: string };

/** The reason of a query the deadline stopped (sent and aborted, or never sent). */
function lateReason(ctx: Ctx): string {
  ctx.late++;
  return `not answered: ${ctx.bounds.reason ?? 'the deadline passed'}`;
}

/**
 * One query under the finish's bounds. Never throws: a failure is `{ok: false, reason}`; once the
 * deadline passed, or after Prometheus stopped answering, the query is not sent.
 */
async function ask(ctx: Ctx, fn: (signal: AbortSignal) => Promise<QueryResult>): Promise<Answer> {
  try {
    return await ctx.bounds.run(async (signal): Promise<Answer> => {
      if (ctx.dead) return { ok: false, reason: `not sent: Prometheus stopped answering (${ctx.dead})` };
      try {
        return { ok: true, r: await fn(signal) };
      } catch (e) {
        if (ctx.bounds.expired) return { ok: false, reason: lateReason(ctx) };
        const reason = errorMessage(e);
        if (e instanceof PrometheusError && (e.kind === 'network' || e.kind === 'timeout')) ctx.dead ??= reason;
        return { ok: false, reason };
      }
    });
  } catch {
    // Refused by the bounds: the deadline passed before a slot was free.
    return { ok: false, reason: lateReason(ctx) };
  }
}

/** Finite points of every series. */
function values(series: Series[]): number[] {
  return series.flatMap((s) => s.points.map((p) => p.v)).filter(finite);
}

function reduce(vs: number[], stat: 'max' | 'avg' | 'min' | 'last'): number | undefined {
  if (vs.length === 0) return undefined;
  switch (stat) {
    case 'max':
      return Math.max(...vs);
    case 'min':
      return Math.min(...vs);
    case 'last':
      return vs[vs.length - 1];
    case 'avg':
      return vs.reduce((a, b) => a + b, 0) / vs.length;
  }
}

interface Window {
  startMs: number;
  endMs: number;
  /** Seconds. */
  start: number;
  end: number;
  /** A PromQL range covering the window. */
  range: string;
  seconds: number;
  stepSeconds: number;
}

function windowOf(s: ObserveStep): Window | string {
  const startMs = Date.parse(s.startedAt);
  const endMs = Date.parse(s.finishedAt);
  if (!Number.isFinite(startMs) || !Number.isFinite(endMs)) return `the step's window is not a pair of times (${s.startedAt} … ${s.finishedAt})`;
  if (endMs <= startMs) return `the step's window is empty (${s.startedAt} … ${s.finishedAt})`;
  const seconds = (endMs - startMs) / 1000;
  return {
    startMs, endMs, start: startMs / 1000, end: endMs / 1000, seconds,
    range: promDuration(endMs - startMs),
    stepSeconds: Math.max(1, Math.round((seconds / 200) * 1000) / 1000),
  };
}

const metric = (m: Omit<ObservedMetric, 'value' | 'reason'>, value: number | undefined, reason: string): ObservedMetric => {
  const v = finiteOrNull(value);
  return v === null ? { ...m, value: null, reason } : { ...m, value: v };
};

/** Observes every step's window. Never throws for Prometheus's sake: failures become reasons. */
export async function observeSteps(input: ObserveInput): Promise<Observations> {
  if (!input.url) {
    return { prometheus: { url: null, available: false, reason: "neither spec.prometheus.url nor the operator's --prometheus-url is set" }, steps: [] };
  }
  let client: PrometheusClient;
  try {
    client = new PrometheusClient({ url: input.url, bearerToken: input.token, timeoutMs: input.timeoutMs ?? 10_000, maxBodyBytes: input.maxBodyBytes, fetch: input.fetch });
  } catch (e) {
    return { prometheus: { url: input.url, available: false, reason: errorMessage(e) }, steps: [] };
  }
  const bounds = new QueryBounds({
    concurrency: input.concurrency ?? OBSERVE_CONCURRENCY,
    deadlineMs: input.deadlineMs ?? OBSERVE_DEADLINE_MS,
    what: `the observations of ${input.run} attempt ${input.attempt}`,
  });
  try {
    const ctx: Ctx = { client, bounds, late: 0 };
    const probe = await ask(ctx, (signal) => client.query('time()', undefined, signal));
    if (!probe.ok) return { prometheus: { url: input.url, available: false, reason: `Prometheus unavailable: ${probe.reason}` }, steps: [] };
    // Steps one after the other (a dead Prometheus is noticed after one step's first queries);
    // within a step its independent queries together, all through the one limiter.
    const steps: StepObservation[] = [];
    for (const s of input.steps) steps.push(await observeStep(ctx, input, s));
    const reasons = [
      ...(ctx.late > 0 ? [`${ctx.late} queries not answered within the ${formatMs(bounds.deadlineMs)} deadline of this finish`] : []),
      ...(ctx.dead ? [`Prometheus stopped answering during the queries: ${ctx.dead}`] : []),
    ];
    return { prometheus: { url: input.url, available: true, ...(reasons.length ? { reason: reasons.join('; ') } : {}) }, steps };
  } finally {
    bounds.close();
  }
}

async function observeStep(ctx: Ctx, input: ObserveInput, s: ObserveStep): Promise<StepObservation> {
  const base = { step: s.step, category: s.category };
  const w = windowOf(s);
  if (typeof w === 'string') {
    return { ...base, window: { start: s.startedAt, end: s.finishedAt }, reason: w, metrics: [] };
  }
  const { client } = ctx;
  const ns = input.namespace;
  const prefix = agentNamePrefix(input.run, input.attempt, s.step);
  const nameRe = `${escapeRegex(prefix)}.+`;
  const instant = (q: string) => ask(ctx, (signal) => client.query(q, w.end, signal));
  const range = (q: string, step = w.stepSeconds) => ask(ctx, (signal) => client.queryRange(q, w.start, w.end, step, signal));

  // 1. The agents scraped in the window, and whether their series carry our namespace.
  const agentNameSel = `agent=~"${nameRe}"`;
  const discoveryQ = `count_over_time(process_resident_memory_bytes{${agentNameSel}}[${w.range}])`;
  const kubeletSel = `namespace="${quote(ns)}",pod=~"${nameRe}",container="${AGENT_CONTAINER}"`;
  const kubeletQ = `count(count_over_time(container_memory_working_set_bytes{${kubeletSel}}[${w.range}]))`;
  const [disc, kub] = await Promise.all([instant(discoveryQ), instant(kubeletQ)]);
  let agentSeries: Series[] = [];
  let nsNote: string | undefined;
  let agentSel = agentNameSel;
  if (disc.ok) {
    const all = disc.r.series;
    const ours = all.filter((x) => x.metric.namespace === ns);
    if (ours.length > 0) {
      agentSeries = ours;
      agentSel = `${agentNameSel},namespace="${quote(ns)}"`;
    } else if (all.length > 0 && all.every((x) => x.metric.namespace === undefined)) {
      agentSeries = all;
      nsNote = 'the agent series carry no namespace label; matched by agent name only';
    }
  }
  const noAgents = disc.ok
    ? `no agent of this step was scraped in the window (no process_resident_memory_bytes{${agentNameSel}} series${disc.r.series.length > 0 ? ` in namespace ${ns}` : ''})`
    : disc.reason;
  const kubelet = kub.ok && kub.r.series.some((x) => x.points.some((p) => p.v > 0));
  const maxCount = Math.max(0, ...agentSeries.map((x) => x.points[0]?.v ?? 0));
  /** Scrape interval estimate (s): the window over the most samples one agent had in it. */
  const interval = maxCount >= 1 ? w.seconds / maxCount : undefined;

  // 2. Agent memory and CPU (kubelet or agent), pool size, by pool size.
  const src = kubelet ? ('kubelet' as const) : ('agent' as const);
  const memExpr = kubelet
    ? `max by (namespace, pod) (container_memory_working_set_bytes{${kubeletSel}})`
    : `process_resident_memory_bytes{${agentSel}}`;
  // irate: the rate between an agent's last two scrapes, so an agent that started or stopped
  // inside the range is not diluted by rate()'s division by the whole range.
  const cpuExpr = (r: string) =>
    kubelet
      ? `sum by (namespace, pod) (irate(container_cpu_usage_seconds_total{${kubeletSel}}[${r}]))`
      : `irate(process_cpu_seconds_total{${agentSel}}[${r}])`;
  // The range must hold at least two scrapes.
  const rateRange = promDuration(1000 * Math.max(2 * w.stepSeconds, 2.5 * (interval ?? 15)));
  const poolQ = `count(${memExpr})`;
  const memAvgQ = `avg(${memExpr})`;
  const memMaxQ = `max(${memExpr})`;
  const cpuQ = `avg(${cpuExpr(rateRange)})`;
  const haveAgents = kubelet || agentSeries.length > 0;
  const skip: Answer = { ok: false, reason: noAgents };
  const [pool, memAvg, memMax, cpu] = haveAgents
    ? await Promise.all([range(poolQ), range(memAvgQ), range(memMaxQ), range(cpuQ)])
    : [skip, skip, skip, skip];
  const why = (a: Answer, empty: string): string => (a.ok ? empty : a.reason);
  const metrics: ObservedMetric[] = [];
  const resNote = kubelet ? 'kubelet container metrics (container="agent")' : (nsNote ?? 'the agents\' own process metrics');
  metrics.push(
    metric({ name: 'agent_memory_bytes', unit: 'bytes', statistic: 'max', source: src, query: memAvgQ, note: `max over the window of the per-agent average; ${resNote}` },
      memAvg.ok ? reduce(values(memAvg.r.series), 'max') : undefined, why(memAvg, `no data: ${memAvgQ}`)),
    metric({ name: 'agent_memory_peak_bytes', unit: 'bytes', statistic: 'max', source: src, query: memMaxQ, note: 'the largest single agent at any time in the window' },
      memMax.ok ? reduce(values(memMax.r.series), 'max') : undefined, why(memMax, `no data: ${memMaxQ}`)),
    metric({ name: 'agent_cpu_cores', unit: 'cores', statistic: 'avg', source: src, query: cpuQ, note: 'per agent (mean over the agents up), averaged over the window\'s evaluation steps' },
      cpu.ok ? reduce(values(cpu.r.series), 'avg') : undefined,
      why(cpu, 'no data: no agent was scraped at least twice in the window (a rate needs two samples)')),
    metric({ name: 'pool_size', unit: 'agents', statistic: 'max', source: src, query: poolQ, note: 'the most agents with series at one evaluation step' },
      pool.ok ? reduce(values(pool.r.series), 'max') : undefined, why(pool, `no data: ${poolQ}`)),
  );
  const byPoolSize = poolBreakdown(pool, memAvg, cpu);

  // 3. Scrapes of the agents' targets.
  const targets = new Map<string, Set<string>>();
  for (const x of agentSeries) {
    const job = x.metric.job ?? '';
    if (!targets.has(job)) targets.set(job, new Set());
    if (x.metric.instance) targets.get(job)!.add(x.metric.instance);
  }
  const instances = [...targets.values()].flatMap((v) => [...v]);
  const jobs = [...targets.keys()];
  const targetSel = instances.length === 0
    ? 'instance=~"<no agent targets>"'
    : `${jobs.length === 1 ? `job="${quote(jobs[0]!)}"` : `job=~"${jobs.map(escapeRegex).join('|')}"`},instance=~"${[...new Set(instances)].map(escapeRegex).join('|')}"`;
  const noTargets = agentSeries.length > 0 ? 'the agent series carry no instance label' : noAgents;
  const rawSamples = instances.length * (interval ? w.seconds / interval : 1);
  const scrapeRaw = rawSamples <= MAX_RAW_SAMPLES;
  const scrapeQ = scrapeRaw
    ? `scrape_duration_seconds{${targetSel}}[${w.range}]`
    : `quantile(0.95, quantile_over_time(0.95, scrape_duration_seconds{${targetSel}}[${w.range}]))`;
  const samplesQ = `sum(sum_over_time(scrape_samples_post_metric_relabeling{${targetSel}}[${w.range}])) / ${round(w.seconds)}`;
  const tSkip: Answer = { ok: false, reason: noTargets };
  const [scr, smp] = instances.length > 0 ? await Promise.all([instant(scrapeQ), instant(samplesQ)]) : [tSkip, tSkip];
  let scrapeP95: number | undefined;
  let scrapeN = 0;
  if (scr.ok) {
    const vs = values(scr.r.series).sort((a, b) => a - b);
    scrapeN = vs.length;
    if (vs.length > 0) scrapeP95 = scrapeRaw ? percentile(vs, 95) : vs[0];
  }
  metrics.push(
    metric({
      name: 'scrape_duration_p95_seconds', unit: 's', statistic: 'p95', source: 'prometheus', query: scrapeQ,
      note: scrapeRaw ? `p95 of every scrape of the ${instances.length} agent targets in the window (${scrapeN} scrapes)` : 'p95 over the targets of each target\'s p95 (too many scrapes to fetch raw)',
    }, scrapeP95 === undefined ? undefined : scrapeP95, why(scr, 'no data: no scrape of the agent targets in the window')),
    metric({ name: 'samples_ingested_per_second', unit: 'samples/s', statistic: 'rate', source: 'prometheus', query: samplesQ, note: 'samples stored from the agent targets in the window / window seconds' },
      smp.ok ? reduce(values(smp.r.series), 'last') : undefined, why(smp, 'no data: no scrape of the agent targets in the window')),
  );

  // 4. GPU utilisation where DCGM metrics exist.
  const dcgmAnyQ = `count(count_over_time(DCGM_FI_DEV_GPU_UTIL[${w.range}]))`;
  const podRe = `${escapeRegex(prefix)}.+`;
  const gpuQ = `avg(DCGM_FI_DEV_GPU_UTIL{namespace="${quote(ns)}",pod=~"${podRe}"} or DCGM_FI_DEV_GPU_UTIL{exported_namespace="${quote(ns)}",exported_pod=~"${podRe}"})`;
  const dcgmAny = await instant(dcgmAnyQ);
  let gpu: Answer;
  let gpuEmpty = 'no DCGM metrics (no DCGM_FI_DEV_GPU_UTIL series in the window)';
  if (!dcgmAny.ok) gpu = dcgmAny;
  else if (values(dcgmAny.r.series).every((v) => v <= 0)) gpu = { ok: false, reason: gpuEmpty };
  else {
    gpu = await range(gpuQ);
    gpuEmpty = 'DCGM metrics exist but none is attributed to this step\'s pods (is dcgm-exporter\'s pod mapping on?)';
  }
  metrics.push(metric({ name: 'gpu_utilization_percent', unit: '%', statistic: 'avg', source: 'dcgm', query: gpuQ, note: 'average over the window of the mean utilisation of the GPUs the step\'s pods used' },
    gpu.ok ? reduce(values(gpu.r.series), 'avg') : undefined, why(gpu, gpuEmpty)));

  // 5. The spec's extra queries, through the limiter; each answer is reduced to its figure as it
  // arrives, so at most `concurrency` raw answers are held at once.
  const extraMetric = (q: ObserveInput['extraQueries'][number], a: Answer): ObservedMetric => {
    const m = metric({ name: q.name, unit: q.unit ?? '', statistic: 'avg', source: 'spec', query: q.query, note: `query_range every ${w.stepSeconds} s; value = mean of every finite point of every series` },
      a.ok ? reduce(values(a.r.series), 'avg') : undefined, why(a, 'no data: the query matched nothing in the window'));
    if (a.ok && a.r.series.length > 1) {
      m.series = a.r.series.slice(0, 20).map((x) => {
        const vs = x.points.map((p) => p.v).filter(finite);
        return { labels: x.metric, points: x.points.length, avg: finiteOrNull(reduce(vs, 'avg')), max: finiteOrNull(reduce(vs, 'max')), last: finiteOrNull(reduce(vs, 'last')) };
      });
    }
    return m;
  };
  metrics.push(...(await Promise.all(input.extraQueries.map(async (q) => extraMetric(q, await range(q.query))))));

  return {
    ...base,
    window: { start: new Date(w.startMs).toISOString(), end: new Date(w.endMs).toISOString(), stepSeconds: w.stepSeconds },
    resourceSource: src,
    agentSelector: kubelet ? kubeletSel : agentSel,
    metrics,
    ...(byPoolSize.length > 0 ? { byPoolSize } : {}),
  };
}

/** Agent memory and CPU at each evaluation step, grouped by the number of agents up then. */
function poolBreakdown(pool: Answer, mem: Answer, cpu: Answer): NonNullable<StepObservation['byPoolSize']> {
  if (!pool.ok) return [];
  const at = (a: Answer): Map<number, number> => {
    const m = new Map<number, number>();
    if (a.ok) for (const p of a.r.series[0]?.points ?? []) if (finite(p.v)) m.set(p.t, p.v);
    return m;
  };
  const memAt = at(mem);
  const cpuAt = at(cpu);
  const groups = new Map<number, { points: number; mem: number[]; cpu: number[] }>();
  for (const p of pool.r.series[0]?.points ?? []) {
    if (!finite(p.v) || p.v < 1) continue;
    const g = groups.get(p.v) ?? { points: 0, mem: [], cpu: [] };
    g.points++;
    const mv = memAt.get(p.t);
    const cv = cpuAt.get(p.t);
    if (mv !== undefined) g.mem.push(mv);
    if (cv !== undefined) g.cpu.push(cv);
    groups.set(p.v, g);
  }
  return [...groups.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([agents, g]) => ({ agents, points: g.points, memoryBytes: finiteOrNull(reduce(g.mem, 'avg')), cpuCores: finiteOrNull(reduce(g.cpu, 'avg')) }));
}
