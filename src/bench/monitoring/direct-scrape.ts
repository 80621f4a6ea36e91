/**
 * The scrape source of 3.2 and 3.5 without Prometheus: the runner scrapes every agent's `/metrics`
 * itself at the configured interval for the whole window, timing request + body + text-format
 * parse, and says so (`details.mode: direct-scrape`).
 */
import { AgentClient } from '../../agent/client.ts';
import type { Measurement } from '../../api/schema.ts';
import { errorMessage } from '../../errors.ts';
import type { AgentHandle } from '../../platform/types.ts';
import { median, percentile, round } from '../../stats.ts';
import { elapsed, failed, measured } from '../measure.ts';
import type { BenchContext } from '../types.ts';
import { countExpositionSamples, ingestionRate } from './exposition.ts';
import { scrapeFailure, type ScrapeResults, type ScrapeSource } from './scrape.ts';
import { now, waitUntil } from './wait.ts';

interface DirectScrape {
  agent: string;
  /** performance.now() at the start of the scrape (ms). */
  at: number;
  durationMs: number;
  samples: number;
  error?: string;
}

/** The runner scrapes each agent's /metrics itself, at the configured interval, like a Prometheus would. */
export class DirectScraper implements ScrapeSource {
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
      this.scrapes.push({ agent: a.id, at: t0, durationMs: elapsed(t0), samples });
    } catch (e) {
      this.scrapes.push({ agent: a.id, at: t0, durationMs: elapsed(t0), samples: 0, error: errorMessage(e) });
    }
  }

  async finish(): Promise<ScrapeResults> {
    const enough = () => this.#agents.every((a) => this.scrapes.filter((s) => s.agent === a.id).length >= this.#minScrapes);
    await waitUntil(enough, this.#minScrapes * this.#intervalMs + 10_000, this.#ctx.signal, 50);
    // Stop scheduling, let the scrapes in flight finish, then close the connections.
    this.#halt();
    await Promise.all([...this.#inflight]);
    this.#client.close();
    const window = elapsed(this.#startedAt) / 1000;
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
    // Warm-up: each target's first scrape opens its connection; it is not among 3.2's samples.
    const seen = new Set<string>();
    const judged = this.scrapes.filter((s) => (seen.has(s.agent) ? true : (seen.add(s.agent), false)));
    let m32: Measurement;
    if (okScrapes.length === 0 || judged.length === 0) m32 = failed('3.2', errFail ?? 'no scrape completed', base);
    else {
      // Failed scrapes keep their duration, as Prometheus's scrape_duration_seconds does.
      const d = judged.map((s) => s.durationMs);
      const sorted = [...d].sort((x, y) => x - y);
      m32 = measured('3.2', d, percentile(sorted, 95), {
        sampleUnit: 'scrapes',
        details: { ...base, warmupExcluded: this.scrapes.length - judged.length, p50Ms: round(percentile(sorted, 50), 3) },
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
    else m35 = measured('3.5', ing.perRound, ing.rate, { samples: ing.scrapes, sampleUnit: 'scrapes', details: d35, ...(errFail ? { fail: errFail } : {}) });
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
