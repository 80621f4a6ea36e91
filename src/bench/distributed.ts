/**
 * Category 1, distributed coordination: six tests against pools of `params.agents.poolSize`
 * agents. Each test's method is in its own module under `distributed/` and in docs/tests.md:
 *
 * - 1.1 Cluster formation (`formation.ts`): one fresh pool per trial, until every view holds N.
 * - 1.2 Spawn latency (`formation.ts`): a batch of K agents grows a formed pool, time until ready
 *   divided by K (warm spare, judged); the cold start from 1.1's trials beside it.
 * - 1.3 Cross-node latency (`latency.ts`): agent-to-agent round trips timed by the harness.
 * - 1.4 State synchronisation (`sync.ts`): a write until every agent reads it, polled back to
 *   back; stale reads fail it.
 * - 1.5 Load balancing (`balance.ts`): batches through two coordinators, judged against random
 *   placement for the same counts; every result checked.
 * - 1.6 Failure recovery (`failover.ts`): until the kill is confirmed everywhere and a
 *   replacement serves, with a deadline.
 *
 * 1.3, 1.4, 1.5 and 1.2 share one formed pool (1.2 last, so the platform's spare host process has
 * had time to start); the measurements come back in catalogue order.
 */
import { AgentClient } from '../agent/client.ts';
import type { Measurement } from '../api/schema.ts';
import { DIST_REQUEST_TIMEOUT_MS } from '../plan/deadlines.ts';
import type { BenchContext } from './types.ts';
import { loadBalance } from './distributed/balance.ts';
import { formPool, withPool, poolOpts } from './distributed/common.ts';
import { failover } from './distributed/failover.ts';
import { formation, spawnLatency, type ColdStarts } from './distributed/formation.ts';
import { crossNodeLatency } from './distributed/latency.ts';
import { stateSync } from './distributed/sync.ts';

export async function run(ctx: BenchContext): Promise<Measurement[]> {
  const client = new AgentClient({ maxSockets: 32, timeoutMs: DIST_REQUEST_TIMEOUT_MS });
  try {
    // Each test's measurement goes to the runner as it finishes (kept if the step is interrupted).
    const done = (m: Measurement): Measurement => (ctx.finished?.(m), m);
    const cold: ColdStarts = { agents: 0, readyMs: [] };
    const out: Measurement[] = [done(await formation(ctx, client, cold))];
    const n = ctx.params.agents.poolSize;
    const shared = await withPool(ctx, poolOpts(ctx, 'dist', ctx.params.agents.agentsPerProcess), async (pool) => {
      await formPool(ctx, client, pool, n);
      const m13 = done(await crossNodeLatency(ctx, client, pool));
      const m14 = done(await stateSync(ctx, client, pool));
      const m15 = done(await loadBalance(ctx, client, pool));
      const m12 = done(await spawnLatency(ctx, client, pool, cold));
      return [m12, m13, m14, m15];
    });
    out.push(...shared);
    out.push(done(await failover(ctx, client)));
    return out;
  } finally {
    client.close();
  }
}
