/**
 * 1.4 State synchronisation: a versioned write at one agent until every agent reads that version.
 *
 * After the write is acknowledged the harness reads the key at every agent that has not shown the
 * version yet, all at once, and starts the next round of reads as soon as the last answer of the
 * previous one is in (no pause; once a write is 50 ms old, a pause of 2 % of its age, at most
 * 25 ms, so a slow system is not flooded): the resolution is the time between two reads of one
 * agent, reported in the details (p50 and max; a few milliseconds here). One sample is the
 * time from sending the write until the answer of the read that showed the last agent holding it.
 * The writer rotates over the agents. Warm-up writes are not in n. Writes stop after a time budget
 * (at least MIN_WRITES); with fewer than 20 samples the verdict judges the max, not the p95.
 * A write not seen everywhere within the deadline (5× the target, at least 5 s) is censored at
 * the deadline and fails the test.
 *
 * Every read is also checked: an agent that returns an older version after it returned a newer
 * one (a stale read) is a consistency violation, and any violation fails the test with the count.
 */
import type { AgentClient } from '../../agent/client.ts';
import type { StateEntry } from '../../agent/types.ts';
import type { Measurement } from '../../api/schema.ts';
import { SYNC_BUDGET_MS, SYNC_MIN_WRITES, SYNC_WARMUP_WRITES } from '../../plan/deadlines.ts';
import type { Pool } from '../../platform/types.ts';
import { describe, round } from '../../stats.ts';
import { elapsed, guard } from '../measure.ts';
import type { BenchContext } from '../types.ts';

/** Unmeasured writes first, then at least MIN_WRITES, then writes stop once BUDGET_MS has gone by (plan/deadlines.ts holds them, for the step's deadline). */
const WARMUP_WRITES = SYNC_WARMUP_WRITES;
const MIN_WRITES = SYNC_MIN_WRITES;
const BUDGET_MS = SYNC_BUDGET_MS;

export function stateSync(ctx: BenchContext, client: AgentClient, pool: Pool): Promise<Measurement> {
  return guard('1.4', async () => {
    const agents = pool.agents();
    const target = ctx.params.targets.stateSyncMs;
    const deadlineMs = Math.max(5000, 5 * target);
    const wanted = Math.max(40, ctx.params.trials * 8);
    const samples: number[] = [];
    const rounds: number[] = [];
    let violations = 0;
    let reads = 0;
    let readErrors = 0;
    let censored: string | null = null;
    const key = `bench-sync-${Date.now().toString(36)}`;
    const lastSeen = new Map<string, number>();
    const t0All = performance.now();
    for (let w = 0; w < WARMUP_WRITES + wanted; w++) {
      if (w - WARMUP_WRITES >= MIN_WRITES && elapsed(t0All) > BUDGET_MS) break;
      ctx.signal.throwIfAborted();
      ctx.progress('1.4 state synchronisation', `write ${w + 1}/${WARMUP_WRITES + wanted}`);
      const writer = agents[w % agents.length]!;
      const t0 = performance.now();
      const put = await client.putState(writer.url, key, { w });
      if (put.status !== 200 || !('version' in put.body)) throw new Error(`write at ${writer.id} answered ${put.status}`);
      const version = (put.body as StateEntry).version;
      let pending = agents;
      let lastAt = 0;
      let lastRound: number | null = null;
      while (pending.length > 0) {
        // Back to back at first; once the write is old, a pause of 2 % of its age (at most
        // 25 ms), so a slow system is not flooded and the resolution stays within 2 % of the value.
        const age = elapsed(t0);
        if (age > 50) await new Promise((r) => setTimeout(r, Math.min(25, age * 0.02)));
        const r0 = performance.now();
        const seen = await Promise.all(
          pending.map(async (a) => {
            const r = await client.getState(a.url, key).catch(() => undefined);
            reads++;
            if (!r || r.status !== 200 || !('version' in r.body)) {
              if (!r || r.status !== 404) readErrors++;
              return false;
            }
            const v = (r.body as StateEntry).version;
            const prev = lastSeen.get(a.id) ?? 0;
            if (v < prev) violations++;
            lastSeen.set(a.id, Math.max(prev, v));
            if (v >= version) {
              lastAt = Math.max(lastAt, elapsed(t0));
              return true;
            }
            return false;
          }),
        );
        if (w >= WARMUP_WRITES) rounds.push(performance.now() - (lastRound ?? r0));
        lastRound = r0;
        pending = pending.filter((_, i) => !seen[i]);
        if (pending.length > 0 && elapsed(t0) > deadlineMs) {
          censored =
            `write ${w + 1}: version ${version} not read at ${pending.length} of ${agents.length} agents ` +
            `${Math.round(elapsed(t0))} ms after it was sent (deadline ${deadlineMs} ms; censored at the deadline)`;
          break;
        }
      }
      if (censored) {
        samples.push(deadlineMs);
        break;
      }
      if (w >= WARMUP_WRITES) samples.push(lastAt);
    }
    const d = describe(samples);
    const problems = [
      violations > 0 ? `${violations} consistency violation(s): an agent returned an older version after a newer one` : '',
      censored ?? '',
    ].filter(Boolean);
    return {
      id: '1.4',
      value: d.p95,
      samples: samples.length,
      sampleUnit: 'writes',
      raw: samples,
      distribution: d,
      details: {
        agents: agents.length,
        writes: samples.length,
        warmupWrites: WARMUP_WRITES,
        reads,
        readErrors,
        resolutionMsP50: rounds.length > 0 ? round(describe(rounds).p50, 3) : null,
        resolutionMsMax: rounds.length > 0 ? round(describe(rounds).max, 3) : null,
        resolution: 'the time between two reads of one agent: every pending agent read at once, the next round as soon as the last answer is in (after 50 ms, a pause of 2 % of the age of the write, at most 25 ms)',
        consistencyViolations: violations,
      },
      ...(problems.length > 0 ? { fail: problems.join('; ') } : {}),
    };
  });
}
