/**
 * Test 3.1, WebSocket latency (p50, ms), trigger-based on one clock: `POST /v1/events/mark
 * {token}` to a probe agent, timed on the runner's monotonic clock until the `mark` event with that
 * token arrives on the runner's subscription to the agent's `/v1/events`. An NTP-style one-way
 * estimate is reported beside it (`details.ntp`); see the category comment in `index.ts`.
 *
 * Each trial sends MARKS_PER_TRIAL marks to every probe, all probes at once, a probe's marks
 * MARK_SPACING_MS apart whatever the previous one did (open loop: a lagging stream costs its lag
 * once per trial, not once per mark). The first WARMUP_MARKS per probe are not counted. A mark not
 * received within MARK_DEADLINE_MS is lost: any lost mark fails the test with the count (an event
 * that never arrives has no latency to take a median of), and the trials stop at the first trial
 * with a loss. Samples: the marks received (`sampleUnit: marks`).
 */
import type { AgentClient } from '../../agent/client.ts';
import type { Measurement } from '../../api/schema.ts';
import { CLOCK_SAMPLES, MARK_DEADLINE_MS, MARK_SPACING_MS, MARKS_PER_TRIAL } from '../../plan/deadlines.ts';
import type { AgentHandle } from '../../platform/types.ts';
import { describe as distribution, median, percentile, round } from '../../stats.ts';
import { checkAbort, elapsed, failed, measured } from '../measure.ts';
import type { BenchContext } from '../types.ts';
import { AgentEventStream, type AgentEventMessage } from './dashboard.ts';
import { deferred, EVENT_DEADLINE_MS, now } from './wait.ts';

/**
 * Held by plan/deadlines.ts, for the step's deadline: MARKS_PER_TRIAL (marks sent to each probe
 * agent per trial, one every MARK_SPACING_MS: open loop), MARK_DEADLINE_MS (a mark that has not
 * arrived this long after its trigger was sent is lost) and CLOCK_SAMPLES (`/v1/time` round trips
 * per clock estimate).
 */
export { MARK_DEADLINE_MS } from '../../plan/deadlines.ts';
/** Marks per probe before the first trial that are not counted (the streams' and connections' warm-up). */
const WARMUP_MARKS = 2;

function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

interface ClockEstimate {
  /** agent clock − runner clock, ms. */
  offsetMs: number;
  /** Round trip of the sample the offset came from (its uncertainty is half of it). */
  minRttMs: number;
}

/** NTP-style: several `/v1/time` round trips; the one with the smallest round trip gives the offset. */
async function estimateOffset(client: AgentClient, url: string, samples = CLOCK_SAMPLES): Promise<ClockEstimate> {
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

interface MarkResult {
  agent: string;
  sent: number;
  got: { ev: AgentEventMessage; recv: number } | null;
  offsetMs: number;
}

/** Runs 3.1 on the probe agents (`trials` trials of MARKS_PER_TRIAL marks per probe, probes at once). */
export async function measureWsLatency(ctx: BenchContext, client: AgentClient, probes: AgentHandle[]): Promise<Measurement> {
  const trials = ctx.params.trials;
  const streams = new Map<string, AgentEventStream>();
  const waiters = new Map<string, (ev: AgentEventMessage, recv: number) => void>();
  const trigger: number[] = [];
  const oneWay: number[] = [];
  const perTrialP50: number[] = [];
  const ntp: Record<string, { offsetMs: number; uncertaintyMs: number; oneWayP50Ms?: number }> = {};
  const respMs: number[] = [];
  const perAgentOneWay = new Map<string, number[]>();
  const lostTokens: string[] = [];
  let sentN = 0;
  let warmup = 0;
  let trialsRun = 0;
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
    // Open loop: a probe's marks go out every MARK_SPACING_MS whether or not the previous one arrived.
    const marks = async (a: AgentHandle, prefix: string, n: number, offsetMs: number): Promise<MarkResult[]> => {
      const t0 = now();
      const out: Promise<MarkResult>[] = [];
      for (let i = 0; i < n; i++) {
        const wait = t0 + i * MARK_SPACING_MS - now();
        if (wait >= 1) await new Promise((r) => setTimeout(r, wait));
        const token = `${prefix}-${a.id}-${i}`;
        const d = deferred<{ ev: AgentEventMessage; recv: number }>(MARK_DEADLINE_MS, `mark ${token} from ${a.id}`);
        waiters.set(token, (ev, recv) => d.resolve({ ev, recv }));
        const sent = now();
        const reply = client.mark(a.url, token).then((r) => {
          respMs.push(elapsed(sent));
          if (r.status !== 200) throw new Error(`POST ${a.url}/v1/events/mark answered ${r.status}`);
        });
        out.push(
          Promise.all([d.promise, reply])
            .then(([got]) => ({ agent: a.id, sent, got, offsetMs }))
            .catch(async (e: unknown) => {
              await reply; // a refused trigger is an error of its own, not a lost event
              if (!String(e).includes('nothing within')) throw e;
              lostTokens.push(token);
              return { agent: a.id, sent, got: null, offsetMs };
            })
            .finally(() => waiters.delete(token)),
        );
      }
      return Promise.all(out);
    };
    // Warm-up, not counted: the first marks on each stream.
    warmup = (await Promise.all(probes.map((a) => marks(a, 'mon-warmup', WARMUP_MARKS, 0)))).flat().length;
    lostTokens.length = 0;
    for (let t = 0; t < trials; t++) {
      checkAbort(ctx.signal);
      // Clock offsets re-estimated per trial so clock drift over the test does not accumulate.
      for (const a of probes) {
        const clock = await estimateOffset(client, a.url);
        ntp[a.id] = { offsetMs: round(clock.offsetMs, 3), uncertaintyMs: round(clock.minRttMs / 2, 3) };
      }
      const results = (await Promise.all(probes.map((a) => marks(a, `mon-${t}`, MARKS_PER_TRIAL, ntp[a.id]!.offsetMs)))).flat();
      trialsRun++;
      sentN += results.length;
      const trialSamples: number[] = [];
      for (const r of results) {
        if (!r.got) continue;
        const lat = r.got.recv - r.sent;
        trigger.push(lat);
        trialSamples.push(lat);
        const ow = performance.timeOrigin + r.got.recv - (r.got.ev.ts - r.offsetMs);
        oneWay.push(ow);
        const list = perAgentOneWay.get(r.agent) ?? [];
        list.push(ow);
        perAgentOneWay.set(r.agent, list);
      }
      if (trialSamples.length) perTrialP50.push(median(trialSamples));
      ctx.progress('monitoring', `3.1 trial ${t + 1}/${trials}: p50 ${trialSamples.length ? round(median(trialSamples), 2) : '-'} ms${lostTokens.length ? `, ${lostTokens.length} marks lost so far` : ''}`);
      // Lost events fail the test; one trial with losses is evidence enough, the rest would only wait.
      if (lostTokens.length > 0) break;
    }
    for (const [id, l] of perAgentOneWay) if (ntp[id]) ntp[id].oneWayP50Ms = round(median(l), 3);
    const gaps = [...streams.values()].reduce((s, x) => s + x.seqGaps, 0);
    const details = {
      method: 'trigger-based: POST /v1/events/mark until the mark event arrives on a /v1/events subscription, one clock',
      agents: probes.map((a) => a.id),
      marksPerTrial: MARKS_PER_TRIAL * probes.length,
      markSpacingMs: MARK_SPACING_MS,
      trials: trialsRun,
      warmupMarksExcluded: warmup,
      marksSent: sentN,
      marksLost: lostTokens.length,
      ...(lostTokens.length ? { lostAfterMs: MARK_DEADLINE_MS, firstLost: lostTokens.slice(0, 5) } : {}),
      perTrialP50Ms: perTrialP50.map((v) => round(v, 3)),
      markRequestP50Ms: respMs.length ? round(median(respMs), 3) : null,
      seqGaps: gaps,
      ntp: {
        note: 'one-way estimate = receive time − (event ts − clock offset); offset from /v1/time (min round trip)',
        oneWayP50Ms: oneWay.length ? round(median(oneWay), 3) : null,
        oneWayP95Ms: oneWay.length >= 20 ? round(percentile([...oneWay].sort((x, y) => x - y), 95), 3) : null,
        perAgent: ntp,
      },
    };
    if (trigger.length === 0) return failed('3.1', `no mark arrived: ${lostTokens.length} of ${sentN} lost (not within ${MARK_DEADLINE_MS} ms)`, details);
    const fail = lostTokens.length
      ? `${lostTokens.length} of ${sentN} marks never arrived on the event stream (not within ${MARK_DEADLINE_MS} ms; ${gaps} sequence gaps): the stream loses events`
      : undefined;
    const d = distribution(trigger);
    return measured('3.1', trigger, d.p50, { sampleUnit: 'marks', details, ...(fail ? { fail } : {}) });
  } finally {
    for (const s of streams.values()) s.close();
  }
}
