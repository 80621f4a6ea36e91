/**
 * What the distributed-coordination tests (category 1) share: polling with a deadline, reading
 * every member's membership view, and the pools they create.
 */
import type { AgentClient } from '../../agent/client.ts';
import type { MembersResult } from '../../agent/types.ts';
import { FORMATION_WAIT_MS } from '../../plan/deadlines.ts';
import type { AgentHandle, Pool, PoolOptions } from '../../platform/types.ts';
import type { BenchContext } from '../types.ts';

/** Pause between two probes of `until` (a wait for convergence, not a measured resolution). */
export const POLL_MS = 20;

/** Thrown by `until` when its deadline passes; carries how long it waited. */
export class DeadlineError extends Error {
  readonly waitedMs: number;
  constructor(what: string, waitedMs: number) {
    super(`timed out after ${Math.round(waitedMs)} ms waiting for ${what}`);
    this.name = 'DeadlineError';
    this.waitedMs = waitedMs;
  }
}

/** Probe every POLL_MS until `probe` returns a value; DeadlineError after `deadlineMs`. */
export async function until<T>(what: string, deadlineMs: number, signal: AbortSignal, probe: () => Promise<T | undefined>, pollMs = POLL_MS): Promise<T> {
  const t0 = performance.now();
  for (;;) {
    signal.throwIfAborted();
    const v = await probe();
    if (v !== undefined) return v;
    const waited = performance.now() - t0;
    if (waited > deadlineMs) throw new DeadlineError(what, waited);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Every agent's membership view (undefined where it did not answer 200). */
export function views(client: AgentClient, agents: readonly AgentHandle[]): Promise<(MembersResult | undefined)[]> {
  return Promise.all(
    agents.map((a) =>
      client.members(a.url).then(
        (r) => (r.status === 200 ? r.body : undefined),
        () => undefined,
      ),
    ),
  );
}

/** The ids a view holds as alive (its own id included). */
export function aliveIn(v: MembersResult): Set<string> {
  const set = new Set(v.members.filter((m) => m.status === 'alive').map((m) => m.id));
  set.add(v.self);
  return set;
}

/** True when every agent answers its view with exactly the ids of `agents` alive. */
export async function viewsHold(client: AgentClient, agents: readonly AgentHandle[]): Promise<boolean> {
  const ids = new Set(agents.map((a) => a.id));
  return (await views(client, agents)).every((v) => {
    if (!v) return false;
    const alive = aliveIn(v);
    return alive.size === ids.size && [...ids].every((id) => alive.has(id));
  });
}

export function poolOpts(ctx: BenchContext, name: string, agentsPerProcess: number, autoHeal = false): PoolOptions {
  const a = ctx.params.agents;
  return {
    name,
    size: 0,
    capacity: a.capacity,
    agentsPerProcess,
    autoHeal,
    gossipIntervalMs: a.gossipIntervalMs,
    failureTimeoutMs: a.failureTimeoutMs,
    defects: a.defects,
  };
}

export async function withPool<T>(ctx: BenchContext, opts: PoolOptions, fn: (pool: Pool) => Promise<T>): Promise<T> {
  const pool = await ctx.platform.createPool(opts);
  try {
    return await fn(pool);
  } finally {
    await pool.close();
  }
}

/** Form a pool of `n` agents: scale, then wait until every view holds all of them (FORMATION_WAIT_MS at most: the step's deadline counts it). */
export async function formPool(ctx: BenchContext, client: AgentClient, pool: Pool, n: number): Promise<void> {
  await pool.scaleTo(n);
  await until(`the pool of ${n} to form`, FORMATION_WAIT_MS, ctx.signal, async () => ((await viewsHold(client, pool.agents())) ? true : undefined));
}
