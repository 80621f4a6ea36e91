/**
 * Category 3, monitoring: tests 3.1–3.5, measured on a pool of reference (or user) agents that
 * this category creates itself (`agents.poolSize`, never grown). `docs/monitoring.md` explains
 * each test; in short:
 *
 * - 3.1 WebSocket latency (p50, ms): trigger-based, on one clock. The runner sends
 *   `POST /v1/events/mark {token}` to an agent and times, on its own monotonic clock, until the
 *   `mark` event with that token arrives on its WebSocket subscription to the agent's
 *   `/v1/events`. No clock of another machine enters the figure, so it is immune to clock skew
 *   and to asymmetric delays; it includes the trigger request's one-way trip, so it can only
 *   overstate the event latency, never understate it. An NTP-style one-way estimate is reported
 *   beside it in `details.ntp`. A mark that never arrives fails the test (websocket.ts).
 * - 3.2 Prometheus scrape duration (p95, ms): with `spec.prometheus.url`, Prometheus's own
 *   `scrape_duration_seconds` of the pool's targets: every raw sample in the category's window
 *   (a range selector evaluated at the window's end on Prometheus's clock, so each scrape counts
 *   once). Without Prometheus, the runner scrapes every agent's `/metrics` itself at the
 *   configured interval for the whole window, timing request + body + text-format parse, and says
 *   so (`details.mode`); each target's first scrape is its warm-up, not counted.
 * - 3.3 Dashboard update rate (updates/s): the highest rate of updates (agents' `mark` events,
 *   triggered by the runner) that the dashboard path delivers to a dashboard subscriber
 *   completely and in time, raised until it falls behind (dashboard-rate.ts, ladder.ts).
 * - 3.4 Alert latency (p50, ms): `PUT /v1/faults {breach:{healthScore:0.1}}` on an agent until the
 *   dashboard's alert evaluator raises the alert for that agent, on the runner's clock; the fault
 *   is cleared and the alert must resolve between trials.
 * - 3.5 Metrics volume (samples/s): the highest ingestion rate of the pool's metrics that keeps
 *   up, raised until it falls behind: the window at the configured interval, then the runner's
 *   own scrapes of every agent at shorter and shorter intervals (volume.ts, ladder.ts).
 *
 * The window: it opens when the scrape source (Prometheus or direct) covers every agent; 3.1 and
 * 3.4 run inside it; it closes once every target has been scraped `max(5, trials)` times, and 3.2
 * and the first step of 3.5 are computed over it. The ladders of 3.3 and 3.5 run after it, so the
 * load they raise does not enter 3.2's scrape durations.
 *
 * With Prometheus, `spec.prometheus.queries` are evaluated over the window (`query_range`) and
 * reported in 3.2's `details.extraQueries`; a failing query reports its error, never a zero.
 * A bearer token for Prometheus is read from `SWARMBENCH_PROMETHEUS_TOKEN` (in Kubernetes, the
 * executor maps `spec.prometheus.bearerTokenSecretRef` into that variable).
 *
 * The files of this folder: this one runs the category (the pool, the dashboard, the order of the
 * tests); `websocket.ts` (3.1), `dashboard-rate.ts` (3.3), `alert-latency.ts` (3.4), `volume.ts`
 * (3.5 above the window), `ladder.ts` (the rate ladder of 3.3 and 3.5); 3.2 and the window of 3.5
 * come from a scrape source (`scrape.ts`, `direct-scrape.ts`, `prometheus-source.ts`) over
 * `exposition.ts`; `dashboard.ts` and `alerts.ts` are the live dashboard and its alert evaluator;
 * `wait.ts` holds the waits with deadlines.
 */
import { AgentClient } from '../../agent/client.ts';
import type { Measurement } from '../../api/schema.ts';
import { errorMessage } from '../../errors.ts';
import { SETTLE_DEADLINE_MS } from '../../plan/deadlines.ts';
import type { Params } from '../../plan/params.ts';
import type { Pool } from '../../platform/types.ts';
import { durationSince, elapsed, failed, guard } from '../measure.ts';
import type { CategoryRunner } from '../types.ts';
import { ALERT_THRESHOLD, measureAlertLatency } from './alert-latency.ts';
import { Dashboard } from './dashboard.ts';
import { measureDashboardRate } from './dashboard-rate.ts';
import { DirectScraper } from './direct-scrape.ts';
import { PrometheusSource } from './prometheus-source.ts';
import type { ScrapeSource } from './scrape.ts';
import { measureVolume } from './volume.ts';
import { EVENT_DEADLINE_MS, now, waitUntil } from './wait.ts';
import { measureWsLatency } from './websocket.ts';

/** Agents that 3.1 and 3.4 probe (the dashboard and the scrapes cover the whole pool). */
const PROBE_AGENTS = 4;
/** Cadence of the dashboard stream. */
const DASHBOARD_INTERVAL_MS = 250;
/** An agent whose last event is older than this makes a dashboard update stale (heartbeats are 1/s). */
const LIVE_WINDOW_MS = 2500;

function poolOptions(p: Params) {
  const size = Math.max(2, p.agents.poolSize);
  return {
    size,
    capacity: p.agents.capacity,
    agentsPerProcess: Math.max(1, Math.min(size, p.agents.agentsPerProcess)),
    name: 'monitoring',
    gossipIntervalMs: p.agents.gossipIntervalMs,
    failureTimeoutMs: p.agents.failureTimeoutMs,
    defects: p.agents.defects,
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
    // membership. Bounded by SETTLE_DEADLINE_MS (plan/deadlines.ts, which counts it in the step's
    // deadline): a pool that does not converge is measured as it is, and said so.
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
    const settle = { settled, settleMs: durationSince(settleStart) };
    if (!settled) ctx.log.warn('monitoring: the pool did not converge before measuring', settle);

    // The scraping source runs through the whole window (3.1 and 3.4 happen inside it).
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
    const sourceMs = elapsed(srcStart);

    // A test that throws is a failed measurement with the reason, and a warning in the log.
    const warn = (id: string) => (error: string) => ctx.log.warn(`monitoring ${id} failed`, { error });
    ctx.progress('monitoring', '3.1 WebSocket latency');
    // Each test's measurement goes to the runner as it finishes (kept if the step is interrupted).
    const m31 = await guard('3.1', () => measureWsLatency(ctx, client, probes), warn('3.1'));
    ctx.finished?.(m31);
    ctx.progress('monitoring', '3.4 alert latency');
    const m34 = await guard('3.4', () => measureAlertLatency(ctx, client, dash!, probes), warn('3.4'));
    ctx.finished?.(m34);

    // The window closes here: 3.2 and the first step of 3.5 are the scrapes at the configured
    // interval, away from the load the ladders of 3.3 and 3.5 put on the host.
    ctx.progress('monitoring', '3.2 scrape duration');
    let m32: Measurement;
    let window: Measurement;
    if (source) {
      const r = await source.finish().catch((e: unknown) => {
        const why = `scrape measurement failed: ${errorMessage(e)}`;
        return { m32: failed('3.2', why), m35: failed('3.5', why) };
      });
      // The window: from the source's start to its end.
      const ms = Math.round(elapsed(srcStart));
      m32 = { ...r.m32, durationMs: ms };
      window = { ...r.m35, durationMs: ms };
    } else {
      const details = { mode: 'prometheus', prometheus: p.monitoring.prometheusUrl, unavailable: true };
      m32 = failed('3.2', `Prometheus unavailable: ${sourceError}`, details, Math.round(sourceMs));
      window = failed('3.5', `Prometheus unavailable: ${sourceError}`, details, Math.round(sourceMs));
    }
    source?.stop();
    ctx.finished?.(m32);

    ctx.progress('monitoring', '3.3 dashboard update rate');
    const m33 = await guard('3.3', () => measureDashboardRate(ctx, dash!, agents), warn('3.3'));
    ctx.finished?.(m33);

    ctx.progress('monitoring', '3.5 metrics volume');
    const t35 = now();
    const m35 = await guard(
      '3.5',
      () =>
        measureVolume(
          ctx,
          agents,
          {
            intervalMs: p.monitoring.scrapeIntervalMs,
            rate: window.value ?? 0,
            scrapes: window.samples,
            fail: window.value === null ? (window.fail ?? 'no value') : (window.fail ?? null),
            source: p.monitoring.prometheusUrl ? 'prometheus' : 'direct-scrape',
          },
          window.details ?? {},
        ),
      warn('3.5'),
    );
    m35.durationMs = Math.round((window.durationMs ?? 0) + elapsed(t35));
    ctx.finished?.(m35);
    const pool0 = { agents: agents.length, probes: probes.map((a) => a.id), ...settle };
    return [m31, m32, m33, m34, m35].map((m) => ({ ...m, details: { ...(m.details ?? {}), pool: pool0 } }));
  } finally {
    source?.stop();
    await dash?.close();
    client.close();
    await pool?.close();
  }
};
