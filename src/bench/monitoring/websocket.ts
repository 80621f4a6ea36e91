/**
 * Test 3.1, WebSocket latency (p50, ms), trigger-based on one clock: `POST /v1/events/mark
 * {token}` to a probe agent, timed on the runner's monotonic clock until the `mark` event with that
 * token arrives on the runner's subscription to the agent's `/v1/events`. An NTP-style one-way
 * estimate is reported beside it (`details.ntp`); see the category comment in `index.ts`.
 */
import type { AgentClient } from '../../agent/client.ts';
import type { Measurement } from '../../api/schema.ts';
import type { AgentHandle } from '../../platform/types.ts';
import { describe as distribution, median, percentile, round } from '../../stats.ts';
import { checkAbort, elapsed, measured } from '../measure.ts';
import type { BenchContext } from '../types.ts';
import { AgentEventStream, type AgentEventMessage } from './dashboard.ts';
import { deferred, EVENT_DEADLINE_MS, now } from './wait.ts';

/** Marks sent to each probe agent per trial. */
const MARKS_PER_TRIAL = 10;

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

/** Runs 3.1 on the probe agents (`trials` trials of MARKS_PER_TRIAL marks per probe). */
export async function measureWsLatency(ctx: BenchContext, client: AgentClient, probes: AgentHandle[]): Promise<Measurement> {
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
            respMs.push(elapsed(sent));
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
