/**
 * 1.3 Cross-node latency: agent-to-agent round trips over the agents' own coordination channel,
 * timed by the harness (an agent could report anything).
 *
 * The harness asks agent A to ping peer B (`POST /v1/ping`) twice in a row, once with 1 round
 * trip and once with 11 (the order alternates), and times both requests itself. Everything but
 * the ten extra round trips is the same in both (the harness's request to A, A's unmeasured
 * connection-opening echo, A's handler), so (T11 − T1) / 10 is the mean of ten agent-to-agent
 * round trips measured by the harness's own clock: one sample. The judged figure is the p50 of
 * these samples.
 *
 * Samples are spread honestly: each agent pings its ring successor and the agent half-way
 * round (P pairs), and the rounds visit every pair once in turn (pair 1, 2, ... P, then again);
 * n is the number of samples (P × rounds), each the mean of ten round trips, not the number of
 * round trips behind them. Rounds stop after a time budget (at least one round).
 * The details say how many pairs cross a host process boundary (agents of one process still talk
 * over loopback TCP, as separate hosts would).
 *
 * Checked, not trusted: the agents' own figures (`rttMs`) are kept beside the harness's
 * (agentReportedMsP50); a relay whose reported round trips add up to more than the whole relay
 * took by the harness's clock is impossible and fails the test, with the count. The harness's own
 * round trip to an agent (`GET /healthz`, interleaved) is in the details as the floor of what a
 * round trip costs on this network.
 */
import type { AgentClient } from '../../agent/client.ts';
import type { PingResult } from '../../agent/types.ts';
import type { Measurement } from '../../api/schema.ts';
import { LATENCY_BUDGET_MS, LATENCY_LONG } from '../../plan/deadlines.ts';
import type { AgentHandle, Pool } from '../../platform/types.ts';
import { describe, round } from '../../stats.ts';
import { elapsed, guard, storedMeasurement } from '../measure.ts';
import type { BenchContext } from '../types.ts';

/**
 * Round trips in the long relay (the short one has 1): the difference holds LONG − 1 of them, so
 * one sample is their mean, which keeps the harness's own timing noise (two requests' jitter) a
 * tenth of what a single round trip would carry. Held by plan/deadlines.ts, for the step's deadline.
 */
const LONG = LATENCY_LONG;
/** Rounds over all pairs stop once this much time has gone by (at least one round runs; plan/deadlines.ts holds it). */
const BUDGET_MS = LATENCY_BUDGET_MS;
/** A relay's reported round trips may exceed the harness's time for it by this much (rounding). */
const TOLERANCE_MS = 0.05;

/** Each agent with its ring successor and with the agent half-way round (no pair twice). */
export function pingPairs(agents: readonly AgentHandle[]): [AgentHandle, AgentHandle][] {
  const pairs: [AgentHandle, AgentHandle][] = [];
  const n = agents.length;
  for (let i = 0; i < n; i++) {
    const next = (i + 1) % n;
    if (next !== i) pairs.push([agents[i]!, agents[next]!]);
    const far = (i + Math.floor(n / 2)) % n;
    if (far !== i && far !== next) pairs.push([agents[i]!, agents[far]!]);
  }
  return pairs;
}

interface Relay {
  ms: number;
  reported: number[];
}

async function relay(client: AgentClient, from: AgentHandle, to: AgentHandle, count: number): Promise<Relay> {
  const t0 = performance.now();
  const r = await client.ping(from.url, to.id, count);
  const ms = elapsed(t0);
  if (r.status !== 200 || !('rttMs' in r.body)) throw new Error(`ping ${from.id} -> ${to.id} answered ${r.status}`);
  const got = (r.body as PingResult).rttMs;
  if (!Array.isArray(got) || got.length !== count || !got.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new Error(`ping ${from.id} -> ${to.id}: rttMs must hold ${count} numbers`);
  }
  return { ms, reported: got };
}

export function crossNodeLatency(ctx: BenchContext, client: AgentClient, pool: Pool): Promise<Measurement> {
  return guard('1.3', async () => {
    ctx.progress('1.3 cross-node latency');
    const agents = pool.agents();
    const pairs = pingPairs(agents);
    if (pairs.length === 0) throw new Error('1.3 needs at least 2 agents');
    const maxRounds = Math.max(3, Math.ceil(ctx.params.trials / 2));
    const harness: number[] = [];
    const reported: number[] = [];
    const short: number[] = [];
    const long: number[] = [];
    const direct: number[] = [];
    let impossible = 0;
    let rounds = 0;
    const t0 = performance.now();
    // Open every relay's connections once, unmeasured (warm-up, not in n).
    for (const [from, to] of pairs) await relay(client, from, to, 1);
    while (rounds < maxRounds && (rounds === 0 || elapsed(t0) < BUDGET_MS)) {
      ctx.signal.throwIfAborted();
      for (let p = 0; p < pairs.length; p++) {
        const [from, to] = pairs[p]!;
        const s = rounds * pairs.length + p;
        const d0 = performance.now();
        await client.healthz(to.url);
        direct.push(elapsed(d0));
        const first = await relay(client, from, to, s % 2 === 0 ? 1 : LONG);
        const second = await relay(client, from, to, s % 2 === 0 ? LONG : 1);
        const [one, many] = s % 2 === 0 ? [first, second] : [second, first];
        for (const r of [one, many]) {
          reported.push(...r.reported);
          if (r.reported.reduce((a, b) => a + b, 0) > r.ms + TOLERANCE_MS) impossible++;
        }
        short.push(one.ms);
        long.push(many.ms);
        harness.push((many.ms - one.ms) / (LONG - 1));
      }
      rounds++;
    }
    const d = describe(harness);
    const processes = new Set(agents.map((a) => a.node));
    const crossProcessPairs = pairs.filter(([a, b]) => a.node !== b.node).length;
    const agentP50 = describe(reported).p50;
    // Large pools give tens of thousands of samples: the stored raw ones are capped and rounded
    // (storedMeasurement: details.rawStored), the distribution is over every one.
    return storedMeasurement({
      id: '1.3',
      value: d.p50,
      samples: harness.length,
      sampleUnit: `harness-timed means of ${LONG - 1} round trips`,
      raw: harness.map((v) => round(v, 4)),
      distribution: d,
      details: {
        method: `per sample: the harness times a ${LONG}-round-trip and a 1-round-trip /v1/ping relay of the same pair; (T${LONG} - T1) / ${LONG - 1} is the mean of ${LONG - 1} agent-to-agent round trips`,
        pairs: pairs.length,
        rounds,
        agents: agents.length,
        hostProcesses: processes.size,
        crossProcessPairs,
        agentReportedMsP50: round(agentP50, 4),
        agentReportedRoundTrips: reported.length,
        relay1MsP50: round(describe(short).p50, 4),
        [`relay${LONG}MsP50`]: round(describe(long).p50, 4),
        harnessDirectRttMsP50: round(describe(direct).p50, 4),
        impossibleReports: impossible,
      },
      ...(impossible > 0
        ? { fail: `${impossible} of ${harness.length * 2} relays reported round trips adding up to more than the harness timed for the whole relay (the agents' figures are not real)` }
        : {}),
    });
  });
}
