/**
 * Test 3.5, metrics volume (samples/s): the highest ingestion rate of the pool's metrics that
 * scraping sustains, raised until it falls behind (ladder.ts).
 *
 * The first step is the category's window at the configured scrape interval, as its scrape source
 * measured it (Prometheus's `scrape_samples_scraped`, or the runner's direct scrapes). The
 * interval is the only knob that raises the volume of a given pool (the series are the system's,
 * and growing the pool would only multiply them), and a Prometheus's interval is its own
 * configuration, so the steps above it are the runner's own scrapes: every agent of the pool is
 * scraped at 4×, 16×, 64×... the configured rate (then 2× between the last kept step and the one
 * that fell behind), one scrape at a time per target as Prometheus does, each with a timeout of
 * one interval.
 *
 * A slot (a target's turn in an interval) is kept when its scrape started on time (the previous
 * one had finished), answered 200 with a valid exposition, and completed (request, body and
 * text-format parse) within the interval. A step keeps up when at least KEPT_FRACTION of its
 * slots were kept; its rate is the samples of the kept scrapes over the step's length. The value
 * is the highest such rate; its samples are that step's scrapes. A step that falls behind while
 * the runner was saturated is the harness's ceiling (the value is then a lower bound, said so).
 */
import { AgentClient } from '../../agent/client.ts';
import type { Measurement } from '../../api/schema.ts';
import { errorMessage } from '../../errors.ts';
import type { AgentHandle } from '../../platform/types.ts';
import { median, percentile, round } from '../../stats.ts';
import type { BenchContext } from '../types.ts';
import { countExpositionSamples } from './exposition.ts';
import { climb, RUNNER_SATURATED, runnerLoad, saturated, stepLengthMs, type RunnerLoad, type StepOutcome } from './ladder.ts';
import { now } from './wait.ts';

/** A step lasts its length (ladder.ts: 1 s quick, 5 s full) and gives every target at least MIN_SLOTS turns. */
const MIN_SLOTS = 4;
/** Share of a step's slots that must be kept. */
const KEPT_FRACTION = 0.95;
/** The shortest interval the runner's timers schedule (its ceiling). */
export const MIN_INTERVAL_MS = 2;

export interface ScrapeStep extends StepOutcome {
  intervalMs: number;
  slots: number;
  keptSlots: number;
  /** Slots skipped because the target's previous scrape still ran. */
  missed: number;
  /** Scrapes that failed (an error, a timeout of one interval, a bad exposition). */
  failed: number;
  /** Scrapes that answered but completed after their interval. */
  overran: number;
  samples: number;
  /** Scrapes made (kept, failed or over the interval). */
  scrapes: number;
  samplesPerScrapeP50: number | null;
  durationMs: { n: number; p50: number | null; p95: number | null; max: number | null };
  firstError?: string;
  runner: RunnerLoad;
}

/** The window's figure (the first step), as the category's scrape source measured it. */
export interface WindowStep {
  intervalMs: number;
  rate: number;
  scrapes: number;
  /** Null when it kept up; otherwise why not. */
  fail: string | null;
  source: 'prometheus' | 'direct-scrape';
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One step: every target scraped at `intervalMs` for the step's length. */
async function scrapeStep(agents: readonly AgentHandle[], intervalMs: number, stepMs: number, signal: AbortSignal): Promise<ScrapeStep> {
  const slotsPer = Math.max(MIN_SLOTS, Math.round(stepMs / intervalMs));
  const lengthMs = slotsPer * intervalMs;
  const client = new AgentClient({ maxSockets: 1, maxFreeSockets: 1, timeoutMs: intervalMs });
  const durations: number[] = [];
  const perScrape: number[] = [];
  let keptSlots = 0;
  let missed = 0;
  let failedN = 0;
  let overran = 0;
  let samples = 0;
  let firstError: string | undefined;
  const scrape = async (a: AgentHandle): Promise<void> => {
    const t0 = now();
    try {
      const r = await client.request<string>('GET', a.url, '/metrics', undefined, intervalMs);
      if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
      if (typeof r.body !== 'string') throw new Error('body is not text');
      const n = countExpositionSamples(r.body);
      const d = now() - t0;
      durations.push(d);
      perScrape.push(n);
      if (d <= intervalMs) {
        keptSlots++;
        samples += n;
      } else overran++;
    } catch (e) {
      durations.push(now() - t0);
      failedN++;
      firstError ??= `${a.id}: ${errorMessage(e)}`;
    }
  };
  const load = runnerLoad();
  const start = now() + 5;
  // One loop per target, its slots spread over the interval as Prometheus spreads targets.
  const loops = agents.map(async (a, idx) => {
    let running: Promise<void> | null = null;
    for (let k = 0; k < slotsPer; k++) {
      if (signal.aborted) break;
      const due = start + (idx / agents.length) * intervalMs + k * intervalMs;
      const wait = due - now();
      if (wait >= 1) await sleep(Math.floor(wait));
      if (running) {
        missed++;
        continue;
      }
      const p: Promise<void> = scrape(a).finally(() => {
        if (running === p) running = null;
      });
      running = p;
    }
    await running;
  });
  await Promise.all(loops);
  const runner = load();
  client.close();
  const slots = slotsPer * agents.length;
  const sorted = [...durations].sort((x, y) => x - y);
  const kept = keptSlots >= KEPT_FRACTION * slots;
  const rate = round(samples / (lengthMs / 1000), 1);
  const out: ScrapeStep = {
    level: round(1000 / intervalMs, 3),
    rate,
    kept,
    intervalMs: round(intervalMs, 3),
    slots,
    keptSlots,
    missed,
    failed: failedN,
    overran,
    samples,
    scrapes: durations.length,
    samplesPerScrapeP50: perScrape.length ? median(perScrape) : null,
    durationMs: {
      n: sorted.length,
      p50: sorted.length ? round(percentile(sorted, 50), 3) : null,
      // A p95 only with the samples it needs (20).
      p95: sorted.length >= 20 ? round(percentile(sorted, 95), 3) : null,
      max: sorted.length ? round(sorted.at(-1)!, 3) : null,
    },
    ...(firstError ? { firstError } : {}),
    runner,
  };
  if (!kept) {
    const what = `${slots - keptSlots} of ${slots} slots not kept at a ${round(intervalMs, 2)} ms interval (${missed} missed while the previous scrape ran, ${failedN} failed, ${overran} over the interval; scrape p50 ${out.durationMs.p50} ms)`;
    out.behind = runner.elu >= RUNNER_SATURATED ? 'harness' : 'late';
    out.why = out.behind === 'harness' ? `${what}; ${saturated(runner)}` : what;
  }
  return out;
}

/** Runs the 3.5 ladder above the window's step and builds the measurement. */
export async function measureVolume(ctx: BenchContext, agents: readonly AgentHandle[], window: WindowStep, windowDetails: Record<string, unknown>): Promise<Measurement> {
  const configured = window.intervalMs;
  const stepMs = stepLengthMs(ctx.params.monitoring.observeSeconds);
  const startLevel = (4 * 1000) / configured;
  const maxLevel = 1000 / MIN_INTERVAL_MS;
  const r =
    window.fail === null
      ? await climb<ScrapeStep>({
          start: startLevel,
          max: Math.max(startLevel, startLevel * 4 ** Math.floor(Math.log(maxLevel / startLevel) / Math.log(4))),
          // Never below the window's rate: the window itself is that step.
          min: startLevel,
          keptBelow: 1000 / configured,
          signal: ctx.signal,
          step: async (level) => {
            const s = await scrapeStep(agents, 1000 / level, stepMs, ctx.signal);
            ctx.progress('monitoring', `3.5 scrapes every ${s.intervalMs} ms: ${s.kept ? `kept, ${s.rate} samples/s` : `behind (${s.why})`}`);
            return s;
          },
        })
      : null;
  const steps = (r?.steps ?? []).map((s) => ({
    intervalMs: s.intervalMs,
    samplesPerSec: s.rate,
    kept: s.kept,
    ...(s.behind ? { behind: s.behind, why: s.why } : {}),
    slots: s.slots,
    keptSlots: s.keptSlots,
    scrapes: s.scrapes,
    missed: s.missed,
    failed: s.failed,
    overran: s.overran,
    samplesPerScrapeP50: s.samplesPerScrapeP50,
    scrapeDurationMs: s.durationMs,
    ...(s.firstError ? { firstError: s.firstError } : {}),
    runner: s.runner,
  }));
  const best = r?.best && r.best.rate > window.rate ? r.best : null;
  const fell = r ? r.fellBehind : null;
  const details: Record<string, unknown> = {
    ...windowDetails,
    method:
      'the window at the configured interval, then the runner scraping every agent at 4x, 16x... that rate (then 2x between) until fewer than 95 % of the slots are kept',
    keptFraction: KEPT_FRACTION,
    stepMs,
    minSlotsPerTarget: MIN_SLOTS,
    window: { intervalMs: configured, samplesPerSec: round(window.rate, 1), scrapes: window.scrapes, source: window.source, kept: window.fail === null },
    steps,
    fellBehind: fell ? { intervalMs: fell.intervalMs, behind: fell.behind, why: fell.why } : null,
    lowerBound: r?.lowerBound ?? null,
    valueFrom: best ? `the runner's scrapes every ${best.intervalMs} ms` : `the window (${window.source}, every ${configured} ms)`,
  };
  if (window.fail !== null) return { id: '3.5', value: null, samples: window.scrapes, sampleUnit: 'scrapes', fail: window.fail, details };
  if (best) return { id: '3.5', value: best.rate, samples: best.scrapes, sampleUnit: 'scrapes', details };
  return { id: '3.5', value: round(window.rate, 1), samples: window.scrapes, sampleUnit: 'scrapes', details };
}
