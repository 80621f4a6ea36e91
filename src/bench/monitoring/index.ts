/**
 * Category 3, monitoring: tests 3.1–3.5, measured on a pool of reference (or user) agents that
 * this category creates itself. `docs/monitoring.md` explains each test; in short:
 *
 * - 3.1 WebSocket latency (p50, ms): trigger-based, on one clock. The runner sends
 *   `POST /v1/events/mark {token}` to an agent and times, on its own monotonic clock, until the
 *   `mark` event with that token arrives on its WebSocket subscription to the agent's
 *   `/v1/events`. No clock of another machine enters the figure, so it is immune to clock skew
 *   and to asymmetric delays; it includes the trigger request's one-way trip, so it can only
 *   overstate the event latency, never understate it. An NTP-style one-way estimate (offset from
 *   `/v1/time`, the sample with the smallest round trip, uncertainty = that round trip / 2) is
 *   reported beside it in `details.ntp` for comparison; it is not the verdict's figure because an
 *   asymmetric delay (for example an agent that stamps events only when it sends them) biases it.
 * - 3.2 Prometheus scrape duration (p95, ms): with `spec.prometheus.url`, Prometheus's own
 *   `scrape_duration_seconds` of the pool's targets: every raw sample in the category's window
 *   (a range selector evaluated at the window's end on Prometheus's clock, so each scrape counts
 *   once; a `query_range` at a step would repeat or skip scrapes). Without Prometheus, the
 *   runner scrapes every agent's `/metrics` itself at the configured interval for the whole
 *   window, timing request + body + text-format parse, and says so (`details.mode`).
 * - 3.3 Dashboard update rate (updates/s): a WebSocket subscriber of the live dashboard
 *   (dashboard.ts) counts, over `observeSeconds`, the updates that carry live data (every agent's
 *   stream open with an event in the last 2.5 s) while a light task load runs; the dashboard's
 *   task counter must account for every task the load completed.
 * - 3.4 Alert latency (p50, ms): `PUT /v1/faults {breach:{healthScore:0.1}}` on an agent until the
 *   dashboard's alert evaluator raises the alert for that agent, on the runner's clock; the fault
 *   is cleared and the alert must resolve between trials.
 * - 3.5 Metrics volume (samples/s): samples ingested from the pool's targets over the window.
 *   Prometheus: `scrape_samples_scraped` of each target; direct: the samples parsed by the direct
 *   scrapes. Per target, the samples of every scrape after the first divided by the time between
 *   its first and last scrape in the window, summed over the targets. Since the target is a
 *   throughput, the pool is first grown until it offers 1.25 x the target (up to 256 agents).
 *
 * With Prometheus, `spec.prometheus.queries` are evaluated over the window (`query_range`) and
 * reported in 3.2's `details.extraQueries`; a failing query reports its error, never a zero.
 * A bearer token for Prometheus is read from `SWARMBENCH_PROMETHEUS_TOKEN` (in Kubernetes, the
 * executor maps `spec.prometheus.bearerTokenSecretRef` into that variable).
 */
import { AgentClient } from '../agent/client.ts';
import type { Faults } from '../agent/types.ts';
import type { Params } from '../plan/params.ts';
import type { AgentHandle, Pool } from '../platform/types.ts';
import { PrometheusClient, escapeRegex, promDuration, type Series } from '../prometheus/client.ts';
import { AgentEventStream, Dashboard, subscribeDashboard, type AgentEventMessage, type DashboardUpdate } from './dashboard.ts';
import { capSamples, describe as distribution, median, percentile, round } from '../stats.ts';
import type { BenchContext, CategoryRunner } from './types.ts';
import type { Logger } from '../log.ts';
import type { Measurement } from '../api/schema.ts';
import { errorMessage } from '../errors.ts';

/** Agents that 3.1 and 3.4 probe (the dashboard and the scrapes cover the whole pool). */
const PROBE_AGENTS = 4;
/** Marks sent to each probe agent per trial of 3.1. */
const MARKS_PER_TRIAL = 10;
/** Cadence of the dashboard stream. */
const DASHBOARD_INTERVAL_MS = 250;
/** An agent whose last event is older than this makes a dashboard update stale (heartbeats are 1/s). */
const LIVE_WINDOW_MS = 2500;
/** Deadlines of single waits. */
const EVENT_DEADLINE_MS = 5000;
const ALERT_DEADLINE_MS = 10_000;
const RESOLVE_DEADLINE_MS = 3000;
const TARGETS_UP_DEADLINE_MS = 60_000;
const SETTLE_DEADLINE_MS = 20_000;

/**
 * 3.5 is a throughput target: the pool must offer at least the target volume, or the test could
 * only fail for want of load. The pool grows until agents x samples per scrape / interval reaches
 * the target with this headroom, up to MAX_VOLUME_AGENTS.
 */
const VOLUME_HEADROOM = 1.25;
export const MAX_VOLUME_AGENTS = 256;

export const BREACH_HEALTH_SCORE = 0.1;
export const ALERT_THRESHOLD = 0.5;

// ---------------------------------------------------------------------------------------------
// Small helpers

function now(): number {
  return performance.now();
}

function epochNow(): number {
  return performance.timeOrigin + performance.now();
}


function checkAbort(signal: AbortSignal): void {
  if (signal.aborted) throw new Error('cancelled');
}

/** Waits for `cond` with a deadline, checking every `pollMs`. Returns whether it held. */
async function waitUntil(cond: () => boolean | Promise<boolean>, deadlineMs: number, signal: AbortSignal, pollMs = 20): Promise<boolean> {
  const end = now() + deadlineMs;
  for (;;) {
    if (await cond()) return true;
    if (now() >= end || signal.aborted) return false;
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(1, end - now()))));
  }
}

/** A promise resolved by a later call, with a deadline. */
function deferred<T>(deadlineMs: number, what: string): { promise: Promise<T>; resolve(v: T): void } {
  let resolve!: (v: T) => void;
  let timer: NodeJS.Timeout;
  const promise = new Promise<T>((res, rej) => {
    resolve = (v: T) => {
      clearTimeout(timer);
      res(v);
    };
    timer = setTimeout(() => rej(new Error(`${what}: nothing within ${deadlineMs} ms`)), deadlineMs);
  });
  // A caller that gave up waiting (its request failed first) must not leave an unhandled rejection.
  promise.catch(() => {});
  return { promise, resolve };
}

function measured(id: string, raw: number[], value: number, extra: Partial<Measurement> = {}): Measurement {
  return {
    id,
    value,
    samples: raw.length,
    raw: capSamples(raw.map((v) => round(v, 4))),
    distribution: distribution(raw),
    ...extra,
  };
}

function failed(id: string, reason: string, details?: Record<string, unknown>, durationMs?: number): Measurement {
  return { id, value: null, samples: 0, fail: reason, ...(details ? { details } : {}), ...(durationMs !== undefined ? { durationMs } : {}) };
}

async function guard(id: string, log: Logger, fn: () => Promise<Measurement>): Promise<Measurement> {
  const t0 = now();
  try {
    const m = await fn();
    return { ...m, durationMs: m.durationMs ?? Math.round(now() - t0) };
  } catch (e) {
    log.warn(`monitoring ${id} failed`, { error: errorMessage(e) });
    return failed(id, errorMessage(e), undefined, Math.round(now() - t0));
  }
}

/** `host:port` of an agent URL: the `instance` label Prometheus gives a target by default. */
export function instanceOf(agentUrl: string): string {
  const u = new URL(agentUrl);
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return `${u.hostname}:${port}`;
}

/** `{instance=~"a|b"}` selecting the given agents' targets. */
export function instanceSelector(agents: readonly { url: string }[]): string {
  const alts = [...new Set(agents.map((a) => escapeRegex(instanceOf(a.url))))].sort();
  return `{instance=~"${alts.join('|')}"}`;
}

/**
 * Counts the samples of a Prometheus text-format exposition and checks each sample line the way a
 * scraper must (metric name, optional labels, a float value). Throws on a malformed line.
 */
export function countExpositionSamples(text: string): number {
  let n = 0;
  let lineNo = 0;
  for (const line of text.split('\n')) {
    lineNo++;
    const l = line.trim();
    if (l === '' || l.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?\s+(\S+)(?:\s+-?\d+)?$/.exec(l);
    if (!m) throw new Error(`malformed exposition line ${lineNo}: ${l.slice(0, 120)}`);
    const v = m[3]!;
    if (!/^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$/.test(v)) {
      throw new Error(`malformed sample value on line ${lineNo}: ${v}`);
    }
    n++;
  }
  return n;
}

/**
 * Ingestion rate of scrape series (one per target, points = per-scrape sample counts at the
 * scrape times in seconds): per target, the samples of every scrape after the first over the
 * time from its first to its last scrape; summed over targets. Also the per-round totals (round
 * k: the k-th interval of every target that has one), as the distribution of the rate.
 */
export function ingestionRate(series: readonly { points: readonly { t: number; v: number }[] }[]): {
  rate: number;
  perTarget: number[];
  perRound: number[];
  scrapes: number;
  intervalsS: number[];
} {
  const perTarget: number[] = [];
  const roundSums: number[] = [];
  const roundCounts: number[] = [];
  const intervals: number[] = [];
  let scrapes = 0;
  let usable = 0;
  for (const s of series) {
    const p = s.points;
    scrapes += p.length;
    if (p.length < 2) continue;
    usable++;
    let sum = 0;
    for (let i = 1; i < p.length; i++) {
      sum += p[i]!.v;
      const dt = p[i]!.t - p[i - 1]!.t;
      intervals.push(dt);
      if (dt > 0) {
        roundSums[i - 1] = (roundSums[i - 1] ?? 0) + p[i]!.v / dt;
        roundCounts[i - 1] = (roundCounts[i - 1] ?? 0) + 1;
      }
    }
    perTarget.push(sum / (p[p.length - 1]!.t - p[0]!.t));
  }
  // A round counts only when every usable target contributed to it.
  const perRound: number[] = [];
  for (let k = 0; k < roundSums.length; k++) if (roundCounts[k] === usable) perRound.push(roundSums[k]!);
  return { rate: perTarget.reduce((a, b) => a + b, 0), perTarget, perRound, scrapes, intervalsS: intervals };
}

// ---------------------------------------------------------------------------------------------
// 3.1 WebSocket latency

interface ClockEstimate {
  /** agent clock − runner clock, ms. */
  offsetMs: number;
  /** Round trip of the sample the offset came from (its uncertainty is half of it). */
  minRttMs: number;
}

/** NTP-style: several `/v1/time` round trips; the one with the smallest round trip gives the offset. */
async function estimateOffset(client: AgentClient, url: string, samples = 8): Promise<ClockEstimate> {
  let best: ClockEstimate | null = null;
  for (let i = 0; i < samples; i++) {
    const a = epochNow();
    const r = await client.time(url);
    const b = epochNow();
    if (r.status !== 200 || typeof r.body?.now !== 'number') throw new Error(`GET ${url}/v1/time answered ${r.status}`);
    const rtt = b - a;
    const off = r.body.now - (a + b) / 2;
    if (!best || rtt < best.minRttMs) best = { offsetMs: off, minRttMs: rtt };
  }
  return best!;
}

async function measureWsLatency(ctx: BenchContext, client: AgentClient, probes: AgentHandle[]): Promise<Measurement> {
  const trials = ctx.params.trials;
  const streams = new Map<string, AgentEventStream>();
  const waiters = new Map<string, (ev: AgentEventMessage, recv: number) => void>();
  const trigger: number[] = [];
  const oneWay: number[] = [];
  const perTrialP50: number[] = [];
  const ntp: Record<string, { offsetMs: number; uncertaintyMs: number; oneWayP50Ms?: number }> = {};
  const respMs: number[] = [];
  try {
    for (const a of probes) {
      const s = new AgentEventStream(a, {
        reconnect: false,
        onEvent: (ev, recv) => {
          if (ev.type !== 'mark') return;
          const tok = typeof ev.data.token === 'string' ? ev.data.token : '';
          const w = waiters.get(tok);
          if (w) {
            waiters.delete(tok);
            w(ev, recv);
          }
        },
      });
      streams.set(a.id, s);
    }
    await Promise.all([...streams.values()].map((s) => s.ready(EVENT_DEADLINE_MS)));
    const perAgentOneWay = new Map<string, number[]>();
    for (let t = 0; t < trials; t++) {
      checkAbort(ctx.signal);
      const trialSamples: number[] = [];
      for (const a of probes) {
        // Re-estimated per trial so clock drift over the test does not accumulate.
        const clock = await estimateOffset(client, a.url);
        ntp[a.id] = { offsetMs: round(clock.offsetMs, 3), uncertaintyMs: round(clock.minRttMs / 2, 3) };
        for (let i = 0; i < MARKS_PER_TRIAL; i++) {
          const token = `mon-${t}-${a.id}-${i}`;
          const d = deferred<{ ev: AgentEventMessage; recv: number }>(EVENT_DEADLINE_MS, `mark ${token} from ${a.id}`);
          waiters.set(token, (ev, recv) => d.resolve({ ev, recv }));
          const sent = now();
          const reply = client.mark(a.url, token).then((r) => {
            respMs.push(now() - sent);
            if (r.status !== 200) throw new Error(`POST ${a.url}/v1/events/mark answered ${r.status}`);
          });
          let got: { ev: AgentEventMessage; recv: number };
          try {
            [got] = await Promise.all([d.promise, reply]);
          } finally {
            waiters.delete(token);
          }
          const lat = got.recv - sent;
          trigger.push(lat);
          trialSamples.push(lat);
          const recvEpoch = performance.timeOrigin + got.recv;
          const ow = recvEpoch - (got.ev.ts - clock.offsetMs);
          oneWay.push(ow);
          const list = perAgentOneWay.get(a.id) ?? [];
          list.push(ow);
          perAgentOneWay.set(a.id, list);
        }
      }
      perTrialP50.push(median(trialSamples));
      ctx.progress('monitoring', `3.1 trial ${t + 1}/${trials}: p50 ${round(median(trialSamples), 2)} ms`);
    }
    for (const [id, l] of perAgentOneWay) if (ntp[id]) ntp[id].oneWayP50Ms = round(median(l), 3);
    const gaps = [...streams.values()].reduce((s, x) => s + x.seqGaps, 0);
    const d = distribution(trigger);
    return measured('3.1', trigger, d.p50, {
      details: {
        method: 'trigger-based: POST /v1/events/mark until the mark event arrives on a /v1/events subscription, one clock',
        agents: probes.map((a) => a.id),
        marksPerTrial: MARKS_PER_TRIAL * probes.length,
        trials,
        perTrialP50Ms: perTrialP50.map((v) => round(v, 3)),
        markRequestP50Ms: round(median(respMs), 3),
        seqGaps: gaps,
        ntp: {
          note: 'one-way estimate = receive time − (event ts − clock offset); offset from /v1/time (min round trip)',
          oneWayP50Ms: round(median(oneWay), 3),
          oneWayP95Ms: round(percentile([...oneWay].sort((x, y) => x - y), 95), 3),
          perAgent: ntp,
        },
      },
    });
  } finally {
    for (const s of streams.values()) s.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 3.3 Dashboard update rate

async function measureDashboardRate(
  ctx: BenchContext,
  client: AgentClient,
  dash: Dashboard,
  agents: AgentHandle[],
): Promise<Measurement> {
  const observeMs = ctx.params.monitoring.observeSeconds * 1000;
  const expected = agents.length;
  const got: { u: DashboardUpdate; recv: number }[] = [];
  const sub = await subscribeDashboard(dash.url, (m, recv) => {
    if (m.type === 'update') got.push({ u: m, recv });
  });
  let ok = 0;
  let notOk = 0;
  try {
    // A first update shows the subscription works and gives the task counter to start from.
    if (!(await waitUntil(() => got.length > 0, EVENT_DEADLINE_MS, ctx.signal))) throw new Error('the dashboard sent nothing to a new subscriber');
    const tasksBefore = dash.snapshot('tick', false).tasks.total;
    const t0 = now();
    const t1 = t0 + observeMs;
    // Light load so the dashboard has changing data: one short I/O task at a time, round robin.
    let i = 0;
    const load = (async () => {
      while (now() < t1 && !ctx.signal.aborted) {
        const a = agents[i % agents.length]!;
        i++;
        const r = await client.task(a.url, { id: `mon-dash-${i}`, kind: 'io', ioMs: 10 });
        if (r.status === 200) ok++;
        else notOk++;
      }
    })();
    await waitUntil(() => now() >= t1, observeMs + 1000, ctx.signal, 50);
    await load;
    checkAbort(ctx.signal);
    const window = got.filter((g) => g.recv >= t0 && g.recv < t1);
    const isLive = (u: DashboardUpdate): boolean => u.agents.total === expected && u.agents.live === expected;
    const live = window.filter((g) => isLive(g.u));
    // Per-second buckets of live updates: the distribution of the rate.
    const buckets = Math.max(1, Math.floor(observeMs / 1000));
    const perSec = new Array<number>(buckets).fill(0);
    for (const g of live) {
      const b = Math.floor((g.recv - t0) / 1000);
      if (b < buckets) perSec[b]!++;
    }
    const rate = live.length / (observeMs / 1000);
    const gaps = window.slice(1).map((g, k) => g.recv - window[k]!.recv);
    // Every task the load completed must reach the dashboard's counter (events can trail the answers a little).
    const counted = await waitUntil(() => dash.snapshot('tick', false).tasks.total - tasksBefore >= ok, 3000, ctx.signal);
    const seen = dash.snapshot('tick', false).tasks.total - tasksBefore;
    const withTasks = window.filter((g) => g.u.tasks.perSec > 0).length;
    const details = {
      updates: window.length,
      liveUpdates: live.length,
      allUpdatesPerSec: round(window.length / (observeMs / 1000), 3),
      cadenceMs: dash.updateIntervalMs,
      gapP50Ms: gaps.length ? round(median(gaps), 2) : null,
      gapMaxMs: gaps.length ? round(Math.max(...gaps), 2) : null,
      observeSeconds: observeMs / 1000,
      agents: expected,
      loadTasksCompleted: ok,
      loadTasksNotCompleted: notOk,
      dashboardTasksCounted: seen,
      updatesShowingTaskRate: withTasks,
      lastUpdate: window.length ? { agents: window.at(-1)!.u.agents, tasks: window.at(-1)!.u.tasks } : null,
      droppedSends: dash.dropped,
    };
    if (live.length === 0) return failed('3.3', `no update carried live data (${window.length} updates, none with all ${expected} agents live)`, details);
    let fail: string | undefined;
    if (ok === 0) fail = 'the task load completed no task, so the dashboard had nothing live to show';
    else if (!counted) fail = `the dashboard counted ${seen} task events but the load completed ${ok} tasks`;
    else if (withTasks === 0) fail = 'no update showed a task rate while tasks ran';
    // Samples: the live updates counted (the distribution is over per-second buckets).
    return measured('3.3', perSec, rate, { samples: live.length, details, ...(fail ? { fail } : {}) });
  } finally {
    sub.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 3.4 Alert latency

/** The agent's active faults other than a breach (`GET /v1/faults`; none when it does not answer 200). */
async function otherFaults(client: AgentClient, url: string): Promise<Faults> {
  const r = await client.request<Faults>('GET', url, '/v1/faults').catch(() => null);
  if (!r || r.status !== 200 || typeof r.body !== 'object' || r.body === null) return {};
  const { breach: _breach, loseAccepted: _lose, ...rest } = r.body;
  return rest;
}

async function measureAlertLatency(ctx: BenchContext, client: AgentClient, dash: Dashboard, probes: AgentHandle[]): Promise<Measurement> {
  const trials = ctx.params.trials;
  const lat: number[] = [];
  const delivered: number[] = [];
  const problems: string[] = [];
  const received = new Map<string, number>();
  const sub = await subscribeDashboard(dash.url, (m, recv) => {
    if (m.type === 'alert' && m.alert.state === 'firing' && !received.has(m.alert.id)) received.set(m.alert.id, recv);
  });
  try {
    const pre = dash.evaluator.active();
    if (pre.length > 0) problems.push(`alerts firing before any breach: ${pre.map((a) => a.id).join(', ')}`);
    for (let t = 0; t < trials; t++) {
      checkAbort(ctx.signal);
      const a = probes[t % probes.length]!;
      const id = `AgentUnhealthy/${a.id}`;
      if (dash.evaluator.active().some((x) => x.id === id)) {
        problems.push(`trial ${t + 1}: alert for ${a.id} still firing before the breach`);
        continue;
      }
      received.delete(id);
      const raised = deferred<number>(ALERT_DEADLINE_MS, `alert for ${a.id}`);
      const onAlert = (al: { id: string; state: string; raisedAtMono: number }): void => {
        if (al.id === id && al.state === 'firing') raised.resolve(al.raisedAtMono);
      };
      dash.on('alert', onAlert);
      // Faults already set on the agent (a latency fault, say) stay as they are around the breach.
      const others = await otherFaults(client, a.url);
      const t0 = now();
      try {
        const r = await client.putFaults(a.url, { ...others, breach: { healthScore: BREACH_HEALTH_SCORE } });
        if (r.status !== 200) throw new Error(`PUT ${a.url}/v1/faults answered ${r.status}: ${JSON.stringify(r.body)}`);
        const at = await raised.promise;
        lat.push(at - t0);
        if (await waitUntil(() => received.has(id), 2000, ctx.signal, 5)) delivered.push(received.get(id)! - t0);
      } catch (e) {
        problems.push(`trial ${t + 1} (${a.id}): ${errorMessage(e)}`);
      } finally {
        dash.off('alert', onAlert);
      }
      // Clear the breach; the agent reports its health back and the alert must resolve.
      const cleared = Object.keys(others).length ? await client.putFaults(a.url, others) : await client.clearFaults(a.url);
      if (cleared.status !== 200) problems.push(`clearing the breach on ${a.url} answered ${cleared.status}`);
      const resolved = () => !dash.evaluator.active().some((x) => x.id === id);
      if (!(await waitUntil(resolved, RESOLVE_DEADLINE_MS, ctx.signal, 5))) {
        problems.push(`trial ${t + 1}: the alert for ${a.id} did not resolve after the fault was cleared`);
        await client.putFaults(a.url, { ...others, breach: { healthScore: 1 } });
        await waitUntil(resolved, RESOLVE_DEADLINE_MS, ctx.signal, 5);
        if (Object.keys(others).length) await client.putFaults(a.url, others);
        else await client.clearFaults(a.url);
      }
    }
    const details = {
      method: 'PUT /v1/faults {breach:{healthScore:0.1}} until the dashboard evaluator raises AgentUnhealthy (health < 0.5), one clock',
      rule: { metric: 'swarmbench_agent_health_score', op: '<', threshold: ALERT_THRESHOLD },
      trials,
      raised: lat.length,
      deliveredToSubscriberP50Ms: delivered.length ? round(median(delivered), 3) : null,
      problems,
    };
    if (lat.length === 0) return failed('3.4', `no alert raised: ${problems.join('; ') || 'unknown'}`, details);
    const fail = lat.length < trials || problems.length > 0 ? `${trials - lat.length} of ${trials} trials without an alert; ${problems.join('; ')}` : undefined;
    return measured('3.4', lat, median(lat), { details, ...(fail ? { fail } : {}) });
  } finally {
    sub.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 3.2 and 3.5: scraping, by Prometheus or directly

/** More than this fraction of failed scrapes in the window fails 3.2 and 3.5. */
export const MAX_FAILED_SCRAPE_FRACTION = 0.01;

function scrapeFailure(failedN: number, total: number, first: string): string | undefined {
  if (total === 0 || failedN / total <= MAX_FAILED_SCRAPE_FRACTION) return undefined;
  return `${failedN} of ${total} scrapes failed (more than ${MAX_FAILED_SCRAPE_FRACTION * 100}%)${first ? `; first: ${first}` : ''}`;
}

interface ScrapeResults {
  m32: Measurement;
  m35: Measurement;
}

interface ScrapeSource {
  readonly mode: 'prometheus' | 'direct-scrape';
  /** Ends the window and computes 3.2 and 3.5. */
  finish(): Promise<ScrapeResults>;
  stop(): void;
}

interface DirectScrape {
  agent: string;
  /** performance.now() at the start of the scrape (ms). */
  at: number;
  durationMs: number;
  samples: number;
  error?: string;
}

/** The runner scrapes each agent's /metrics itself, at the configured interval, like a Prometheus would. */
class DirectScraper implements ScrapeSource {
  readonly mode = 'direct-scrape' as const;
  readonly scrapes: DirectScrape[] = [];
  readonly #client: AgentClient;
  readonly #agents: AgentHandle[];
  readonly #intervalMs: number;
  readonly #ctx: BenchContext;
  readonly #minScrapes: number;
  #timers: NodeJS.Timeout[] = [];
  #inflight = new Set<Promise<void>>();
  #stopped = false;
  readonly #startedAt: number;

  constructor(ctx: BenchContext, agents: AgentHandle[], intervalMs: number, minScrapes: number) {
    this.#ctx = ctx;
    this.#agents = agents;
    this.#intervalMs = intervalMs;
    this.#minScrapes = minScrapes;
    // Its own connections, so scrapes never queue behind the benchmark's other requests.
    this.#client = new AgentClient({ maxSockets: 2, timeoutMs: intervalMs });
    this.#startedAt = now();
    // Spread the targets over the interval, as Prometheus does.
    agents.forEach((a, i) => this.#schedule(a, this.#startedAt + (i * intervalMs) / agents.length));
  }

  #schedule(a: AgentHandle, at: number): void {
    if (this.#stopped) return;
    const timer = setTimeout(() => {
      this.#timers = this.#timers.filter((t) => t !== timer);
      const p = this.#scrape(a).finally(() => this.#inflight.delete(p));
      this.#inflight.add(p);
      // Next tick on the grid; ticks missed while a scrape ran long are skipped.
      let next = at + this.#intervalMs;
      const t = now();
      while (next <= t) next += this.#intervalMs;
      this.#schedule(a, next);
    }, Math.max(0, at - now()));
    this.#timers.push(timer);
  }

  async #scrape(a: AgentHandle): Promise<void> {
    const t0 = now();
    try {
      const r = await this.#client.request<string>('GET', a.url, '/metrics', undefined, this.#intervalMs);
      if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
      if (typeof r.body !== 'string') throw new Error('body is not text');
      const samples = countExpositionSamples(r.body);
      this.scrapes.push({ agent: a.id, at: t0, durationMs: now() - t0, samples });
    } catch (e) {
      this.scrapes.push({ agent: a.id, at: t0, durationMs: now() - t0, samples: 0, error: errorMessage(e) });
    }
  }

  async finish(): Promise<ScrapeResults> {
    const enough = () => this.#agents.every((a) => this.scrapes.filter((s) => s.agent === a.id).length >= this.#minScrapes);
    await waitUntil(enough, this.#minScrapes * this.#intervalMs + 10_000, this.#ctx.signal, 50);
    // Stop scheduling, let the scrapes in flight finish, then close the connections.
    this.#halt();
    await Promise.all([...this.#inflight]);
    this.#client.close();
    const window = (now() - this.#startedAt) / 1000;
    const okScrapes = this.scrapes.filter((s) => !s.error);
    const errors = this.scrapes.filter((s) => s.error);
    const base = {
      mode: this.mode,
      note: 'no spec.prometheus.url: the runner scraped each agent /metrics itself (request, body and text-format parse timed)',
      targets: this.#agents.length,
      scrapeIntervalMs: this.#intervalMs,
      windowSeconds: round(window, 3),
      scrapes: this.scrapes.length,
      failedScrapes: errors.length,
      ...(errors.length ? { firstErrors: errors.slice(0, 5).map((s) => `${s.agent}: ${s.error}`) } : {}),
    };
    const errFail = scrapeFailure(errors.length, this.scrapes.length, errors[0] ? `${errors[0].agent}: ${errors[0].error}` : '');
    let m32: Measurement;
    if (okScrapes.length === 0) m32 = failed('3.2', errFail ?? 'no scrape completed', base);
    else {
      // Failed scrapes keep their duration, as Prometheus's scrape_duration_seconds does.
      const d = this.scrapes.map((s) => s.durationMs);
      const sorted = [...d].sort((x, y) => x - y);
      m32 = measured('3.2', d, percentile(sorted, 95), {
        details: { ...base, p50Ms: round(percentile(sorted, 50), 3) },
        ...(errFail ? { fail: errFail } : {}),
      });
    }
    const series = this.#agents.map((a) => ({
      points: okScrapes.filter((s) => s.agent === a.id).map((s) => ({ t: s.at / 1000, v: s.samples })),
    }));
    const ing = ingestionRate(series);
    const perScrape = okScrapes.map((s) => s.samples);
    const d35 = {
      ...base,
      samplesPerScrapeP50: perScrape.length ? median(perScrape) : null,
      samplesPerScrapeMin: perScrape.length ? Math.min(...perScrape) : null,
      samplesPerScrapeMax: perScrape.length ? Math.max(...perScrape) : null,
      perTargetSamplesPerSec: ing.perTarget.map((v) => round(v, 2)),
      measuredIntervalP50Ms: ing.intervalsS.length ? round(median(ing.intervalsS) * 1000, 2) : null,
    };
    let m35: Measurement;
    if (ing.perTarget.length === 0 || ing.perRound.length === 0) m35 = failed('3.5', errFail ?? 'fewer than two scrapes per target', d35);
    else m35 = measured('3.5', ing.perRound, ing.rate, { samples: ing.scrapes, details: d35, ...(errFail ? { fail: errFail } : {}) });
    return { m32, m35 };
  }

  #halt(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers = [];
  }

  stop(): void {
    this.#halt();
    this.#client.close();
  }
}

/** A Prometheus that scrapes the pool: waits for the targets, then queries the window. */
class PrometheusSource implements ScrapeSource {
  readonly mode = 'prometheus' as const;
  readonly #ctx: BenchContext;
  readonly #prom: PrometheusClient;
  readonly #agents: AgentHandle[];
  readonly #sel: string;
  readonly #minScrapes: number;
  /** Window start on Prometheus's clock (epoch s). */
  #start = 0;
  #waitedMs = 0;

  private constructor(ctx: BenchContext, prom: PrometheusClient, agents: AgentHandle[], minScrapes: number) {
    this.#ctx = ctx;
    this.#prom = prom;
    this.#agents = agents;
    this.#sel = instanceSelector(agents);
    this.#minScrapes = minScrapes;
  }

  get url(): string {
    return this.#prom.baseUrl;
  }

  /** Connects, and waits (bounded) until Prometheus scrapes every agent with `up == 1`. */
  static async begin(ctx: BenchContext, agents: AgentHandle[], minScrapes: number): Promise<PrometheusSource> {
    const p = ctx.params.monitoring;
    const prom = new PrometheusClient({
      url: p.prometheusUrl!,
      bearerToken: process.env.SWARMBENCH_PROMETHEUS_TOKEN || undefined,
      timeoutMs: 10_000,
    });
    const src = new PrometheusSource(ctx, prom, agents, minScrapes);
    await src.#waitTargetsUp(Math.max(TARGETS_UP_DEADLINE_MS / 2, 10 * p.scrapeIntervalMs, 30_000));
    return src;
  }

  async #waitTargetsUp(deadlineMs: number): Promise<void> {
    const t0 = now();
    const want = new Set(this.#agents.map((a) => instanceOf(a.url)));
    // The first query also proves Prometheus answers at all (an unreachable URL throws here).
    let up = new Map<string, number>();
    const check = async (): Promise<boolean> => {
      const r = await this.#prom.query(`up${this.#sel}`);
      up = new Map(r.series.map((s) => [s.metric.instance ?? '', s.points[0]?.v ?? 0]));
      return [...want].every((i) => up.get(i) === 1);
    };
    const ok = await waitUntil(check, deadlineMs, this.#ctx.signal, 250);
    this.#waitedMs = now() - t0;
    if (!ok) {
      const missing = [...want].filter((i) => !up.has(i));
      const down = [...want].filter((i) => up.has(i) && up.get(i) !== 1);
      let why = '';
      if (down.length) {
        const targets = await this.#prom.targets().catch(() => []);
        const errs = targets.filter((t) => down.includes(t.labels.instance ?? '')).map((t) => `${t.labels.instance}: ${t.lastError}`);
        why = errs.length ? ` (last errors: ${errs.slice(0, 3).join('; ')})` : '';
      }
      throw new Error(
        `Prometheus at ${this.#prom.baseUrl} did not scrape the agents within ${Math.round(deadlineMs / 1000)} s: ` +
          `${missing.length} of ${want.size} targets unknown (is the pool in its scrape config / file_sd?)` +
          `${down.length ? `, ${down.length} down${why}` : ''}`,
      );
    }
    this.#start = await this.#prom.scalar('time()');
  }

  /** The selector for documents: in full when short, else the number of targets it names. */
  #shortSel(): string {
    return this.#sel.length <= 240 ? this.#sel : `{instance=~<${this.#agents.length} agent targets>}`;
  }

  #shortRange(metric: string, end: number): string {
    return `${metric}${this.#shortSel()}[${promDuration((end - this.#start) * 1000)}]`;
  }

  #rangeSel(metric: string, end: number): string {
    return `${metric}${this.#sel}[${promDuration((end - this.#start) * 1000)}]`;
  }

  async finish(): Promise<ScrapeResults> {
    // Enough scrapes of every target in the window (a condition with a deadline).
    const intervalMs = this.#ctx.params.monitoring.scrapeIntervalMs;
    let counts: number[] = [];
    await waitUntil(
      async () => {
        const end = await this.#prom.scalar('time()');
        const r = await this.#prom.query(`count_over_time(${this.#rangeSel('scrape_duration_seconds', end)})`, end);
        counts = r.series.map((s) => s.points[0]?.v ?? 0);
        return counts.length >= this.#agents.length && counts.every((c) => c >= this.#minScrapes);
      },
      this.#minScrapes * intervalMs + 30_000,
      this.#ctx.signal,
      500,
    );
    const end = await this.#prom.scalar('time()');
    const windowS = end - this.#start;
    const base: Record<string, unknown> = {
      mode: this.mode,
      prometheus: this.#prom.baseUrl,
      selector: this.#shortSel(),
      targets: this.#agents.length,
      window: { start: round(this.#start, 3), end: round(end, 3), seconds: round(windowS, 3) },
      targetsUpAfterMs: Math.round(this.#waitedMs),
      configuredScrapeIntervalMs: intervalMs,
    };
    // Failed scrapes in the window: raw `up` samples that are 0.
    let upFail: string | undefined;
    try {
      const up = await this.#prom.query(this.#rangeSel('up', end), end);
      const all = up.series.flatMap((x) => x.points);
      const down = up.series.flatMap((x) => x.points.filter((pt) => pt.v !== 1).map(() => x.metric.instance ?? '?'));
      base.scrapes = all.length;
      base.failedScrapes = down.length;
      upFail = scrapeFailure(down.length, all.length, down[0] ? `${down[0]} down` : '');
    } catch (e) {
      base.failedScrapes = { error: errorMessage(e) };
    }
    const [m32, m35, extra] = await Promise.all([
      this.#scrapeDuration(end, base).catch((e: unknown) => failed('3.2', `Prometheus query failed: ${errorMessage(e)}`, base)),
      this.#volume(end, base).catch((e: unknown) => failed('3.5', `Prometheus query failed: ${errorMessage(e)}`, base)),
      this.#extraQueries(end),
    ]);
    if (extra) m32.details = { ...(m32.details ?? {}), extraQueries: extra };
    for (const m of [m32, m35]) if (upFail && m.value !== null && !m.fail) m.fail = upFail;
    return { m32, m35 };
  }

  async #exposedNow(): Promise<number | { error: string }> {
    const c = new AgentClient({ maxSockets: 4, timeoutMs: 5000 });
    try {
      let n = 0;
      for (const a of this.#agents) {
        const r = await c.metrics(a.url);
        if (r.status !== 200 || typeof r.body !== 'string') return { error: `GET ${a.url}/metrics answered ${r.status}` };
        n += countExpositionSamples(r.body);
      }
      return n;
    } catch (e) {
      return { error: errorMessage(e) };
    } finally {
      c.close();
    }
  }

  #coverage(series: Series[]): string | undefined {
    const have = new Set(series.filter((s) => s.points.length > 0).map((s) => s.metric.instance));
    const missing = this.#agents.filter((a) => !have.has(instanceOf(a.url))).map((a) => instanceOf(a.url));
    return missing.length ? `no samples in the window for ${missing.length} of ${this.#agents.length} targets (${missing.slice(0, 3).join(', ')})` : undefined;
  }

  async #scrapeDuration(end: number, base: Record<string, unknown>): Promise<Measurement> {
    const r = await this.#prom.query(this.#rangeSel('scrape_duration_seconds', end), end);
    const ms = r.series.flatMap((s) => s.points.map((p) => p.v * 1000));
    const finite = ms.filter((v) => Number.isFinite(v));
    const perTarget: Record<string, number> = {};
    for (const s of r.series) {
      const v = s.points.map((p) => p.v * 1000).sort((x, y) => x - y);
      if (v.length) perTarget[s.metric.instance ?? '?'] = round(percentile(v, 95), 3);
    }
    const details = {
      ...base,
      query: this.#shortRange('scrape_duration_seconds', end),
      p50Ms: finite.length ? round(median(finite), 3) : null,
      perTargetP95Ms: perTarget,
      ...(r.warnings.length ? { warnings: r.warnings } : {}),
    };
    if (finite.length === 0) return failed('3.2', `Prometheus returned no scrape_duration_seconds samples for ${this.#shortSel()}`, details);
    const cov = this.#coverage(r.series);
    const sorted = [...finite].sort((x, y) => x - y);
    return measured('3.2', finite, percentile(sorted, 95), { details, ...(cov ? { fail: cov } : {}) });
  }

  async #volume(end: number, base: Record<string, unknown>): Promise<Measurement> {
    const r = await this.#prom.query(this.#rangeSel('scrape_samples_scraped', end), end);
    const ing = ingestionRate(r.series.map((s) => ({ points: s.points })));
    // Successful scrapes only (a failed scrape reports 0 samples).
    const perScrape = r.series.flatMap((s) => s.points.map((p) => p.v)).filter((v) => v > 0);
    const details: Record<string, unknown> = {
      ...base,
      query: this.#shortRange('scrape_samples_scraped', end),
      scrapes: ing.scrapes,
      samplesPerScrapeP50: ing.scrapes ? median(perScrape) : null,
      samplesPerScrapeMin: ing.scrapes ? Math.min(...perScrape) : null,
      samplesPerScrapeMax: ing.scrapes ? Math.max(...perScrape) : null,
      perTargetSamplesPerSec: ing.perTarget.map((v) => round(v, 2)),
      measuredIntervalP50Ms: ing.intervalsS.length ? round(median(ing.intervalsS) * 1000, 2) : null,
    };
    // Cross-checks from Prometheus's own counters (may be absent when it does not scrape itself).
    const dur = promDuration((end - this.#start) * 1000);
    try {
      details.prometheusHeadSamplesAppendedPerSec = round(await this.#prom.scalar(`sum(rate(prometheus_tsdb_head_samples_appended_total[${dur}]))`, end), 2);
    } catch (e) {
      details.prometheusHeadSamplesAppendedPerSec = { error: errorMessage(e) };
    }
    if (ing.perTarget.length === 0 || ing.perRound.length === 0) {
      return failed('3.5', `Prometheus returned fewer than two scrape_samples_scraped samples per target for ${this.#shortSel()}`, details);
    }
    // What the agents expose now against Prometheus's count of the last scrape of each.
    details.lastScrapeSamples = r.series.reduce((a, s) => a + (s.points.at(-1)?.v ?? 0), 0);
    details.agentsExposeSamplesNow = await this.#exposedNow();
    const cov = this.#coverage(r.series);
    // Samples: the scrapes behind the rate (the distribution is over scrape rounds).
    return measured('3.5', ing.perRound, ing.rate, { samples: ing.scrapes, details, ...(cov ? { fail: cov } : {}) });
  }

  async #extraQueries(end: number): Promise<Record<string, unknown> | undefined> {
    const qs = this.#ctx.params.monitoring.extraQueries;
    if (qs.length === 0) return undefined;
    const stepS = Math.max(1, this.#ctx.params.monitoring.scrapeIntervalMs / 1000);
    const out: Record<string, unknown> = {};
    for (const q of qs) {
      try {
        const r = await this.#prom.queryRange(q.query, this.#start, end, stepS);
        const series = r.series
          .map((s) => {
            const v = s.points.map((p) => p.v).filter((x) => Number.isFinite(x));
            return {
              labels: s.metric,
              points: s.points.length,
              last: v.length ? round(v.at(-1)!, 6) : null,
              min: v.length ? round(Math.min(...v), 6) : null,
              max: v.length ? round(Math.max(...v), 6) : null,
              mean: v.length ? round(v.reduce((a, b) => a + b, 0) / v.length, 6) : null,
            };
          })
          .slice(0, 20);
        out[q.name] =
          series.length === 0
            ? { query: q.query, error: 'no data: the query matched no series in the window' }
            : { query: q.query, ...(q.unit ? { unit: q.unit } : {}), series, ...(r.series.length > 20 ? { seriesTotal: r.series.length } : {}) };
      } catch (e) {
        out[q.name] = { query: q.query, error: errorMessage(e) };
      }
    }
    return out;
  }

  stop(): void {
    /* nothing runs between calls */
  }
}

// ---------------------------------------------------------------------------------------------

export interface VolumeSizing {
  samplesPerAgent: number;
  targetSamplesPerSec: number;
  offeredSamplesPerSec: number;
  agentsNeeded: number;
  agents: number;
  capped: boolean;
}

/** Grows the pool so that it offers the 3.5 target volume (see VOLUME_HEADROOM). */
async function sizeForVolume(ctx: BenchContext, client: AgentClient, pool: Pool): Promise<VolumeSizing> {
  const p = ctx.params;
  const first = pool.agents()[0];
  if (!first) throw new Error('the pool has no agent');
  const r = await client.metrics(first.url);
  if (r.status !== 200 || typeof r.body !== 'string') throw new Error(`GET ${first.url}/metrics answered ${r.status}`);
  const samplesPerAgent = countExpositionSamples(r.body);
  if (samplesPerAgent === 0) throw new Error(`${first.url}/metrics exposes no samples`);
  const intervalS = p.monitoring.scrapeIntervalMs / 1000;
  const target = p.targets.metricsSamplesPerSec;
  const agentsNeeded = Math.ceil((VOLUME_HEADROOM * target * intervalS) / samplesPerAgent);
  const have = pool.agents().length;
  const n = Math.min(MAX_VOLUME_AGENTS, Math.max(have, agentsNeeded));
  if (n > have) {
    ctx.progress('monitoring', `growing the pool to ${n} agents to offer ${target} samples/s`);
    await pool.scaleTo(n);
  }
  const agents = pool.agents().length;
  return {
    samplesPerAgent,
    targetSamplesPerSec: target,
    offeredSamplesPerSec: round((agents * samplesPerAgent) / intervalS, 1),
    agentsNeeded,
    agents,
    capped: agentsNeeded > MAX_VOLUME_AGENTS,
  };
}

function poolOptions(p: Params) {
  const size = Math.max(2, p.agents.poolSize);
  return {
    size,
    capacity: p.agents.capacity,
    agentsPerProcess: Math.max(1, Math.min(size, p.agents.agentsPerProcess)),
    name: 'monitoring',
    gossipIntervalMs: p.agents.gossipIntervalMs,
    failureTimeoutMs: p.agents.failureTimeoutMs,
  };
}

export const run: CategoryRunner = async (ctx) => {
  const p = ctx.params;
  const ids = ['3.1', '3.2', '3.3', '3.4', '3.5'];
  const minScrapes = Math.max(5, p.trials);
  let pool: Pool | null = null;
  let dash: Dashboard | null = null;
  let source: ScrapeSource | null = null;
  const client = new AgentClient({ maxSockets: 16, timeoutMs: 10_000 });
  try {
    ctx.progress('monitoring', `starting a pool of ${poolOptions(p).size} agents`);
    try {
      pool = await ctx.platform.createPool(poolOptions(p));
    } catch (e) {
      return ids.map((id) => failed(id, `could not start the monitoring pool: ${errorMessage(e)}`));
    }
    let sizing: VolumeSizing;
    try {
      sizing = await sizeForVolume(ctx, client, pool);
    } catch (e) {
      return ids.map((id) => failed(id, `could not size the monitoring pool: ${errorMessage(e)}`));
    }
    const agents = [...pool.agents()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const probes = agents.slice(0, Math.min(PROBE_AGENTS, agents.length));
    const thePool = pool;
    dash = new Dashboard({
      agents: () => thePool.agents(),
      updateIntervalMs: DASHBOARD_INTERVAL_MS,
      staleAfterMs: LIVE_WINDOW_MS,
      rules: [{ name: 'AgentUnhealthy', metric: 'swarmbench_agent_health_score', op: '<', threshold: ALERT_THRESHOLD }],
    });
    await dash.start();
    await dash.ready(EVENT_DEADLINE_MS * 2);
    // Let the pool settle (every agent sees every member, as its heartbeats report) before
    // measuring, so the figures are of a formed cluster rather than of one still gossiping its
    // membership. Bounded: a pool that does not converge is measured as it is, and said so.
    const settleStart = now();
    const settled = await waitUntil(
      () => {
        const s = dash!.snapshot('tick', false);
        return s.agents.live === agents.length && s.panels.every((x) => x.members === agents.length);
      },
      SETTLE_DEADLINE_MS,
      ctx.signal,
      100,
    );
    const settle = { settled, settleMs: Math.round(now() - settleStart) };
    if (!settled) ctx.log.warn('monitoring: the pool did not converge before measuring', settle);

    // The scraping source runs through the whole window (3.1, 3.3 and 3.4 happen inside it).
    let sourceError: string | null = null;
    const srcStart = now();
    if (p.monitoring.prometheusUrl) {
      ctx.progress('monitoring', `waiting for Prometheus at ${p.monitoring.prometheusUrl} to scrape ${agents.length} agents`);
      try {
        source = await PrometheusSource.begin(ctx, agents, minScrapes);
      } catch (e) {
        sourceError = errorMessage(e);
        ctx.log.warn('monitoring: Prometheus unavailable', { error: sourceError });
      }
    } else {
      source = new DirectScraper(ctx, agents, p.monitoring.scrapeIntervalMs, minScrapes);
    }
    const sourceMs = now() - srcStart;

    ctx.progress('monitoring', '3.1 WebSocket latency');
    const m31 = await guard('3.1', ctx.log, () => measureWsLatency(ctx, client, probes));
    ctx.progress('monitoring', '3.3 dashboard update rate');
    const m33 = await guard('3.3', ctx.log, () => measureDashboardRate(ctx, client, dash!, agents));
    ctx.progress('monitoring', '3.4 alert latency');
    const m34 = await guard('3.4', ctx.log, () => measureAlertLatency(ctx, client, dash!, probes));

    ctx.progress('monitoring', '3.2/3.5 scrape duration and metrics volume');
    let m32: Measurement;
    let m35: Measurement;
    if (source) {
      const t0 = now();
      const r = await source.finish().catch((e: unknown) => {
        const why = `scrape measurement failed: ${errorMessage(e)}`;
        return { m32: failed('3.2', why), m35: failed('3.5', why) };
      });
      const ms = Math.round(now() - t0 + sourceMs);
      m32 = { ...r.m32, durationMs: ms };
      m35 = { ...r.m35, durationMs: ms, details: { ...(r.m35.details ?? {}), sizing } };
    } else {
      const details = { mode: 'prometheus', prometheus: p.monitoring.prometheusUrl, unavailable: true };
      m32 = failed('3.2', `Prometheus unavailable: ${sourceError}`, details, Math.round(sourceMs));
      m35 = failed('3.5', `Prometheus unavailable: ${sourceError}`, { ...details, sizing }, Math.round(sourceMs));
    }
    const pool0 = { agents: agents.length, probes: probes.map((a) => a.id), ...settle };
    return [m31, m32, m33, m34, m35].map((m) => ({ ...m, details: { ...(m.details ?? {}), pool: pool0 } }));
  } finally {
    source?.stop();
    await dash?.close();
    client.close();
    await pool?.close();
  }
};
