/**
 * The scrape source of 3.2 and 3.5 with `spec.prometheus.url`: waits (bounded) until Prometheus
 * scrapes every agent of the pool, then reads Prometheus's own `scrape_duration_seconds` and
 * `scrape_samples_scraped` of those targets over the window (a range selector evaluated at the
 * window's end on Prometheus's clock, so each scrape counts once), and evaluates
 * `spec.prometheus.queries` (`details.extraQueries` of 3.2). The bearer token comes from
 * `SWARMBENCH_PROMETHEUS_TOKEN`.
 *
 * Bounded (docs/monitoring.md "The Prometheus client"): every request has the client's 10 s
 * timeout and 16 MiB body cap and follows the run's signal; the queries of `finish()` after the
 * wait for enough scrapes (the window's end, `up`, 3.2, 3.5 and the up to 64 extra queries) run
 * at most `QUERY_CONCURRENCY` at a time under ONE deadline (`FINISH_QUERY_DEADLINE_MS`), so a
 * Prometheus that stalls costs one deadline, and an extra query not answered by then reports the
 * deadline as its `error` (never a value).
 */
import { AgentClient } from '../../agent/client.ts';
import type { Measurement } from '../../api/schema.ts';
import { errorMessage } from '../../errors.ts';
import { PROM_FINISH_QUERY_MS } from '../../plan/deadlines.ts';
import type { AgentHandle } from '../../platform/types.ts';
import { PrometheusClient, promDuration, type Series } from '../../prometheus/client.ts';
import { QueryBounds } from '../../prometheus/bounded.ts';
import { median, percentile, round } from '../../stats.ts';
import { elapsed, failed, measured } from '../measure.ts';
import type { BenchContext } from '../types.ts';
import { countExpositionSamples, ingestionRate, instanceOf, instanceSelector } from './exposition.ts';
import { scrapeFailure, type ScrapeResults, type ScrapeSource } from './scrape.ts';
import { now, waitUntil } from './wait.ts';

/** Bounds the wait for Prometheus to scrape every agent: the longest of half this, 10 intervals, 30 s. */
const TARGETS_UP_DEADLINE_MS = 60_000;
/** The one deadline of the queries of `finish()` once the window has its scrapes: 60 s (plan/deadlines.ts holds it, for the step's deadline). */
export const FINISH_QUERY_DEADLINE_MS = PROM_FINISH_QUERY_MS;
/** Queries of `finish()` in flight at most: 4. */
export const QUERY_CONCURRENCY = 4;

/** Overrides of the bounds (tests). */
export interface PrometheusSourceBounds {
  deadlineMs?: number | undefined;
  concurrency?: number | undefined;
  maxBodyBytes?: number | undefined;
}

/** A Prometheus that scrapes the pool: waits for the targets, then queries the window. */
export class PrometheusSource implements ScrapeSource {
  readonly mode = 'prometheus' as const;
  readonly #ctx: BenchContext;
  readonly #prom: PrometheusClient;
  readonly #agents: AgentHandle[];
  readonly #sel: string;
  readonly #minScrapes: number;
  /** Window start on Prometheus's clock (epoch s). */
  #start = 0;
  #waitedMs = 0;
  readonly #bounds: PrometheusSourceBounds;

  private constructor(ctx: BenchContext, prom: PrometheusClient, agents: AgentHandle[], minScrapes: number, bounds: PrometheusSourceBounds) {
    this.#ctx = ctx;
    this.#bounds = bounds;
    this.#prom = prom;
    this.#agents = agents;
    this.#sel = instanceSelector(agents);
    this.#minScrapes = minScrapes;
  }

  get url(): string {
    return this.#prom.baseUrl;
  }

  /** Connects, and waits (bounded) until Prometheus scrapes every agent with `up == 1`. */
  static async begin(ctx: BenchContext, agents: AgentHandle[], minScrapes: number, bounds: PrometheusSourceBounds = {}): Promise<PrometheusSource> {
    const p = ctx.params.monitoring;
    const prom = new PrometheusClient({
      url: p.prometheusUrl!,
      bearerToken: process.env.SWARMBENCH_PROMETHEUS_TOKEN || undefined,
      timeoutMs: 10_000,
      maxBodyBytes: bounds.maxBodyBytes,
    });
    const src = new PrometheusSource(ctx, prom, agents, minScrapes, bounds);
    await src.#waitTargetsUp(Math.max(TARGETS_UP_DEADLINE_MS / 2, 10 * p.scrapeIntervalMs, 30_000));
    return src;
  }

  async #waitTargetsUp(deadlineMs: number): Promise<void> {
    const t0 = now();
    const want = new Set(this.#agents.map((a) => instanceOf(a.url)));
    // The first query also proves Prometheus answers at all (an unreachable URL throws here).
    let up = new Map<string, number>();
    const check = async (): Promise<boolean> => {
      const r = await this.#prom.query(`up${this.#sel}`, undefined, this.#ctx.signal);
      up = new Map(r.series.map((s) => [s.metric.instance ?? '', s.points[0]?.v ?? 0]));
      return [...want].every((i) => up.get(i) === 1);
    };
    const ok = await waitUntil(check, deadlineMs, this.#ctx.signal, 250);
    this.#waitedMs = elapsed(t0);
    if (!ok) {
      const missing = [...want].filter((i) => !up.has(i));
      const down = [...want].filter((i) => up.has(i) && up.get(i) !== 1);
      let why = '';
      if (down.length) {
        const targets = await this.#prom.targets(this.#ctx.signal).catch(() => []);
        const errs = targets.filter((t) => down.includes(t.labels.instance ?? '')).map((t) => `${t.labels.instance}: ${t.lastError}`);
        why = errs.length ? ` (last errors: ${errs.slice(0, 3).join('; ')})` : '';
      }
      throw new Error(
        `Prometheus at ${this.#prom.baseUrl} did not scrape the agents within ${Math.round(deadlineMs / 1000)} s: ` +
          `${missing.length} of ${want.size} targets unknown (is the pool in its scrape config / file_sd?)` +
          `${down.length ? `, ${down.length} down${why}` : ''}`,
      );
    }
    this.#start = await this.#prom.scalar('time()', undefined, this.#ctx.signal);
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
    const sig = this.#ctx.signal;
    let counts: number[] = [];
    await waitUntil(
      async () => {
        const end = await this.#prom.scalar('time()', undefined, sig);
        const r = await this.#prom.query(`count_over_time(${this.#rangeSel('scrape_duration_seconds', end)})`, end, sig);
        counts = r.series.map((s) => s.points[0]?.v ?? 0);
        return counts.length >= this.#agents.length && counts.every((c) => c >= this.#minScrapes);
      },
      this.#minScrapes * intervalMs + 30_000,
      sig,
      500,
    );
    const b = new QueryBounds({
      concurrency: this.#bounds.concurrency ?? QUERY_CONCURRENCY,
      deadlineMs: this.#bounds.deadlineMs ?? FINISH_QUERY_DEADLINE_MS,
      what: 'the Prometheus queries of 3.2/3.5',
      signal: sig,
    });
    try {
      return await this.#queries(b);
    } finally {
      b.close();
    }
  }

  /** The queries of `finish()` once the window has its scrapes, all under `b`. */
  async #queries(b: QueryBounds): Promise<ScrapeResults> {
    const intervalMs = this.#ctx.params.monitoring.scrapeIntervalMs;
    const end = await b.run((signal) => this.#prom.scalar('time()', undefined, signal));
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
      const up = await b.run((signal) => this.#prom.query(this.#rangeSel('up', end), end, signal));
      const all = up.series.flatMap((x) => x.points);
      const down = up.series.flatMap((x) => x.points.filter((pt) => pt.v !== 1).map(() => x.metric.instance ?? '?'));
      base.scrapes = all.length;
      base.failedScrapes = down.length;
      upFail = scrapeFailure(down.length, all.length, down[0] ? `${down[0]} down` : '');
    } catch (e) {
      base.failedScrapes = { error: errorMessage(e) };
    }
    const [m32, m35, extra] = await Promise.all([
      this.#scrapeDuration(b, end, base).catch((e: unknown) => failed('3.2', `Prometheus query failed: ${errorMessage(e)}`, base)),
      this.#volume(b, end, base).catch((e: unknown) => failed('3.5', `Prometheus query failed: ${errorMessage(e)}`, base)),
      this.#extraQueries(b, end),
    ]);
    if (extra) m32.details = { ...(m32.details ?? {}), extraQueries: extra };
    for (const m of [m32, m35]) if (upFail && m.value !== null && !m.fail) m.fail = upFail;
    return { m32, m35 };
  }

  /** What the agents expose now; stops (an error) once `b`'s deadline passed. */
  async #exposedNow(b: QueryBounds): Promise<number | { error: string }> {
    const c = new AgentClient({ maxSockets: 4, timeoutMs: 5000 });
    try {
      let n = 0;
      for (const a of this.#agents) {
        if (b.expired) return { error: `not counted: ${b.reason}` };
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

  async #scrapeDuration(b: QueryBounds, end: number, base: Record<string, unknown>): Promise<Measurement> {
    const r = await b.run((signal) => this.#prom.query(this.#rangeSel('scrape_duration_seconds', end), end, signal));
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
    return measured('3.2', finite, percentile(sorted, 95), { sampleUnit: 'scrapes', details, ...(cov ? { fail: cov } : {}) });
  }

  async #volume(b: QueryBounds, end: number, base: Record<string, unknown>): Promise<Measurement> {
    const r = await b.run((signal) => this.#prom.query(this.#rangeSel('scrape_samples_scraped', end), end, signal));
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
      const q = `sum(rate(prometheus_tsdb_head_samples_appended_total[${dur}]))`;
      details.prometheusHeadSamplesAppendedPerSec = round(await b.run((signal) => this.#prom.scalar(q, end, signal)), 2);
    } catch (e) {
      details.prometheusHeadSamplesAppendedPerSec = { error: errorMessage(e) };
    }
    if (ing.perTarget.length === 0 || ing.perRound.length === 0) {
      return failed('3.5', `Prometheus returned fewer than two scrape_samples_scraped samples per target for ${this.#shortSel()}`, details);
    }
    // What the agents expose now against Prometheus's count of the last scrape of each.
    details.lastScrapeSamples = r.series.reduce((a, s) => a + (s.points.at(-1)?.v ?? 0), 0);
    details.agentsExposeSamplesNow = await this.#exposedNow(b);
    const cov = this.#coverage(r.series);
    // Samples: the scrapes behind the rate (the distribution is over scrape rounds).
    return measured('3.5', ing.perRound, ing.rate, { samples: ing.scrapes, sampleUnit: 'scrapes', details, ...(cov ? { fail: cov } : {}) });
  }

  /**
   * The spec's extra queries, through `b` (at most its concurrency at once, under its deadline);
   * each answer is reduced as it arrives. A query not answered by the deadline has the deadline
   * as its `error`.
   */
  async #extraQueries(b: QueryBounds, end: number): Promise<Record<string, unknown> | undefined> {
    const qs = this.#ctx.params.monitoring.extraQueries;
    if (qs.length === 0) return undefined;
    const stepS = Math.max(1, this.#ctx.params.monitoring.scrapeIntervalMs / 1000);
    const one = async (q: (typeof qs)[number]): Promise<unknown> => {
      try {
        const r = await b.run((signal) => this.#prom.queryRange(q.query, this.#start, end, stepS, signal));
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
        return series.length === 0
          ? { query: q.query, error: 'no data: the query matched no series in the window' }
          : { query: q.query, ...(q.unit ? { unit: q.unit } : {}), series, ...(r.series.length > 20 ? { seriesTotal: r.series.length } : {}) };
      } catch (e) {
        return { query: q.query, error: b.expired ? `not answered: ${b.reason}` : errorMessage(e) };
      }
    };
    const answers = await Promise.all(qs.map(one));
    const out: Record<string, unknown> = {};
    qs.forEach((q, i) => (out[q.name] = answers[i]));
    return out;
  }

  stop(): void {
    /* nothing runs between calls */
  }
}
