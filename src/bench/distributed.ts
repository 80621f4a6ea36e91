/**
 * Category 1, distributed coordination: six tests against a pool of `params.agents.poolSize`
 * agents (see docs/tests.md for what each measures and why).
 *
 * - 1.1 Cluster formation: from asking the platform for N agents until every agent's membership
 *   view holds N alive members (readiness alone is not formation). One fresh pool per trial.
 * - 1.2 Spawn latency: grow a formed pool by K agents; time until the K new agents are ready
 *   (readiness probe passes: they joined through a seed), divided by K. The time until every
 *   member's view also holds N+K is reported beside it (details). Shrunk back between trials.
 * - 1.3 Cross-node latency: agent-to-agent round trips over the agents' own coordination
 *   channel (`/v1/ping`, measured by the agents), each agent to its ring successor and to the
 *   agent half-way round, p50 over all round trips.
 * - 1.4 State synchronisation: a write at one agent until every agent reads that version,
 *   watched by polling every agent (resolution: the poll round, about 2 ms here). Consistency
 *   violations (an agent returning an older version after it returned a newer one) fail the test.
 * - 1.5 Load balancing: M tasks through the system's own dispatch (spread over coordinators);
 *   the spread of executed tasks per agent as mean absolute relative deviation. Lost or failed
 *   tasks fail the test.
 * - 1.6 Failure recovery: under dispatch load through one coordinator, SIGKILL one worker (its
 *   own process, as a pod); the platform replaces it (auto-heal, as a ReplicaSet). Recovery is
 *   the time until every alive agent's view holds N alive members without the dead one and
 *   every member answers a task. Accepted tasks never done are data-loss events and fail the test.
 */
import { AgentClient } from '../agent/client.ts';
import type { DispatchTask, MembersResult, PingResult, StateEntry } from '../agent/types.ts';
import { startLoad } from './load/index.ts';
import type { AgentHandle, Pool } from '../platform/types.ts';
import { describe, meanAbsRelDeviation } from '../stats.ts';
import type { BenchContext } from './types.ts';
import type { Measurement } from '../api/schema.ts';
import { elapsed, guard } from './measure.ts';

const POLL_MS = 20;

async function until<T>(what: string, deadlineMs: number, signal: AbortSignal, probe: () => Promise<T | undefined>): Promise<T> {
  const end = performance.now() + deadlineMs;
  for (;;) {
    signal.throwIfAborted();
    const v = await probe();
    if (v !== undefined) return v;
    if (performance.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** True when every agent answers its view with exactly the expected ids alive. */
async function viewsHold(client: AgentClient, agents: AgentHandle[], excluded: ReadonlySet<string> = new Set()): Promise<boolean> {
  const ids = new Set(agents.map((a) => a.id));
  const views = await Promise.all(
    agents.map((a) =>
      client.members(a.url).then(
        (r) => (r.status === 200 ? r.body : undefined),
        () => undefined,
      ),
    ),
  );
  return views.every((v: MembersResult | undefined) => {
    if (!v) return false;
    const alive = v.members.filter((m) => m.status === 'alive').map((m) => m.id);
    if (!alive.includes(v.self)) alive.push(v.self);
    const set = new Set(alive);
    for (const x of excluded) if (set.has(x)) return false;
    return set.size === ids.size && [...ids].every((id) => set.has(id));
  });
}

function poolOpts(ctx: BenchContext, name: string, size: number, agentsPerProcess: number, autoHeal = false) {
  const a = ctx.params.agents;
  return {
    name,
    size,
    capacity: a.capacity,
    agentsPerProcess,
    autoHeal,
    gossipIntervalMs: a.gossipIntervalMs,
    failureTimeoutMs: a.failureTimeoutMs,
    defects: a.defects,
  };
}

async function withPool<T>(ctx: BenchContext, opts: ReturnType<typeof poolOpts>, fn: (pool: Pool) => Promise<T>): Promise<T> {
  const pool = await ctx.platform.createPool(opts);
  try {
    return await fn(pool);
  } finally {
    await pool.close();
  }
}

export async function run(ctx: BenchContext): Promise<Measurement[]> {
  const client = new AgentClient({ maxSockets: 32, timeoutMs: 10_000 });
  try {
    const out: Measurement[] = [];
    out.push(await formation(ctx, client));
    // 1.2–1.5 share one formed pool.
    const n = ctx.params.agents.poolSize;
    const shared = await withPool(ctx, poolOpts(ctx, 'dist', 0, ctx.params.agents.agentsPerProcess), async (pool) => {
      await pool.scaleTo(n);
      await until('the pool to form', 30_000, ctx.signal, async () => ((await viewsHold(client, pool.agents())) ? true : undefined));
      const res: Measurement[] = [];
      res.push(await spawnLatency(ctx, client, pool));
      res.push(await crossNodeLatency(ctx, client, pool));
      res.push(await stateSync(ctx, client, pool));
      res.push(await loadBalance(ctx, client, pool));
      return res;
    });
    out.push(...shared);
    out.push(await failover(ctx, client));
    return out;
  } finally {
    client.close();
  }
}

function formation(ctx: BenchContext, client: AgentClient): Promise<Measurement> {
  return guard('1.1', async () => {
    const n = ctx.params.agents.poolSize;
    const samples: number[] = [];
    for (let t = 0; t < ctx.params.trials; t++) {
      ctx.progress('1.1 cluster formation', `trial ${t + 1}/${ctx.params.trials}, ${n} agents`);
      await withPool(ctx, poolOpts(ctx, `form${t}`, 0, ctx.params.agents.agentsPerProcess), async (pool) => {
        const t0 = performance.now();
        await pool.scaleTo(n);
        await until('every view to hold all agents', 60_000, ctx.signal, async () =>
          (await viewsHold(client, pool.agents())) ? true : undefined,
        );
        samples.push(elapsed(t0));
      });
    }
    const d = describe(samples);
    return { id: '1.1', value: d.p50, samples: samples.length, raw: samples, distribution: d, details: { agents: n } };
  });
}

function spawnLatency(ctx: BenchContext, client: AgentClient, pool: Pool): Promise<Measurement> {
  return guard('1.2', async () => {
    const n = ctx.params.agents.poolSize;
    const k = ctx.params.agents.spawnBatch;
    const perAgent: number[] = [];
    const readyOnly: number[] = [];
    for (let t = 0; t < ctx.params.trials; t++) {
      ctx.progress('1.2 spawn latency', `trial ${t + 1}/${ctx.params.trials}, +${k} agents`);
      const t0 = performance.now();
      await pool.scaleTo(n + k);
      readyOnly.push(elapsed(t0) / k);
      await until(`views to hold ${n + k} agents`, 30_000, ctx.signal, async () =>
        (await viewsHold(client, pool.agents())) ? true : undefined,
      );
      perAgent.push(elapsed(t0) / k);
      await pool.scaleTo(n);
      await until(`views to settle back to ${n}`, 30_000, ctx.signal, async () =>
        (await viewsHold(client, pool.agents())) ? true : undefined,
      );
    }
    const d = describe(readyOnly);
    return {
      id: '1.2',
      value: d.p50,
      samples: readyOnly.length,
      raw: readyOnly,
      distribution: d,
      details: { batch: k, poolSize: n, viewsConvergedMsPerAgentP50: describe(perAgent).p50 },
    };
  });
}

function crossNodeLatency(ctx: BenchContext, client: AgentClient, pool: Pool): Promise<Measurement> {
  return guard('1.3', async () => {
    ctx.progress('1.3 cross-node latency');
    const agents = pool.agents();
    const count = Math.max(10, ctx.params.trials * 4);
    const rtts: number[] = [];
    const pairs: [AgentHandle, AgentHandle][] = [];
    for (let i = 0; i < agents.length; i++) {
      pairs.push([agents[i]!, agents[(i + 1) % agents.length]!]);
      const far = (i + Math.floor(agents.length / 2)) % agents.length;
      if (far !== i && far !== (i + 1) % agents.length) pairs.push([agents[i]!, agents[far]!]);
    }
    const nodes = new Set<string>();
    for (const [from, to] of pairs) {
      const r = await client.ping(from.url, to.id, count);
      if (r.status !== 200 || !('rttMs' in r.body)) throw new Error(`ping ${from.id} -> ${to.id} answered ${r.status}`);
      const got = (r.body as PingResult).rttMs;
      if (got.length !== count) throw new Error(`ping ${from.id} -> ${to.id} returned ${got.length} of ${count} round trips`);
      rtts.push(...got);
      nodes.add(from.node).add(to.node);
    }
    const d = describe(rtts);
    return { id: '1.3', value: d.p50, samples: rtts.length, raw: rtts, distribution: d, details: { pairs: pairs.length, nodes: nodes.size } };
  });
}

function stateSync(ctx: BenchContext, client: AgentClient, pool: Pool): Promise<Measurement> {
  return guard('1.4', async () => {
    const agents = pool.agents();
    const writes = Math.max(ctx.params.trials * 2, 10);
    const samples: number[] = [];
    let violations = 0;
    let reads = 0;
    const key = `bench-sync-${Date.now().toString(36)}`;
    const lastSeen = new Map<string, number>();
    for (let w = 0; w < writes; w++) {
      ctx.progress('1.4 state synchronisation', `write ${w + 1}/${writes}`);
      const writer = agents[w % agents.length]!;
      const t0 = performance.now();
      const put = await client.putState(writer.url, key, { w });
      if (put.status !== 200 || !('version' in put.body)) throw new Error(`write at ${writer.id} answered ${put.status}`);
      const version = (put.body as StateEntry).version;
      const pending = new Set(agents.map((a) => a.id));
      await until(`version ${version} at every agent`, 10_000, ctx.signal, async () => {
        await Promise.all(
          agents
            .filter((a) => pending.has(a.id))
            .map(async (a) => {
              const r = await client.getState(a.url, key);
              reads++;
              if (r.status !== 200 || !('version' in r.body)) return;
              const v = (r.body as StateEntry).version;
              const prev = lastSeen.get(a.id) ?? 0;
              if (v < prev) violations++;
              lastSeen.set(a.id, Math.max(prev, v));
              if (v >= version) pending.delete(a.id);
            }),
        );
        return pending.size === 0 ? true : undefined;
      });
      samples.push(elapsed(t0));
    }
    const d = describe(samples);
    return {
      id: '1.4',
      value: d.p95,
      samples: samples.length,
      raw: samples,
      distribution: d,
      details: { agents: agents.length, writes, reads, consistencyViolations: violations },
      ...(violations > 0 ? { fail: `${violations} consistency violation(s): an agent returned an older version after a newer one` } : {}),
    };
  });
}

async function awaitDispatch(client: AgentClient, coordinatorOf: Map<string, string>, signal: AbortSignal, deadlineMs: number): Promise<DispatchTask[]> {
  const byCoord = new Map<string, string[]>();
  for (const [id, url] of coordinatorOf) byCoord.set(url, [...(byCoord.get(url) ?? []), id]);
  const final = new Map<string, DispatchTask>();
  const end = performance.now() + deadlineMs;
  for (;;) {
    signal.throwIfAborted();
    for (const [url, ids] of byCoord) {
      const open = ids.filter((id) => !final.has(id));
      for (let i = 0; i < open.length; i += 500) {
        const r = await client.dispatchQuery(url, open.slice(i, i + 500));
        if (r.status !== 200) continue;
        for (const t of r.body.tasks) if (t.state === 'done' || t.state === 'failed') final.set(t.id, t);
      }
    }
    if (final.size === coordinatorOf.size || performance.now() > end) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return [...final.values()];
}

function loadBalance(ctx: BenchContext, client: AgentClient, pool: Pool): Promise<Measurement> {
  return guard('1.5', async () => {
    const agents = pool.agents();
    const m = ctx.params.agents.balanceTasks;
    ctx.progress('1.5 load balancing', `${m} tasks through dispatch`);
    const coordinatorOf = new Map<string, string>();
    const prefix = `lb-${Date.now().toString(36)}`;
    let rejected = 0;
    // Submit in waves of one task per coordinator so the dispatchers see each other's load through gossip.
    const wave = agents.length * 4;
    for (let i = 0; i < m; i += wave) {
      await Promise.all(
        Array.from({ length: Math.min(wave, m - i) }, async (_, j) => {
          const id = `${prefix}-${i + j}`;
          const coord = agents[(i + j) % agents.length]!;
          const r = await client.dispatch(coord.url, { id, kind: 'io', ioMs: ctx.params.agents.ioTaskMs });
          if (r.status === 202) coordinatorOf.set(id, coord.url);
          else rejected++;
        }),
      );
    }
    const done = await awaitDispatch(client, coordinatorOf, ctx.signal, 30_000);
    const perAgent = new Map<string, number>(agents.map((a) => [a.id, 0]));
    let failed = 0;
    for (const t of done) {
      if (t.state !== 'done' || !t.executor) {
        failed++;
        continue;
      }
      perAgent.set(t.executor, (perAgent.get(t.executor) ?? 0) + 1);
    }
    const counts = [...perAgent.values()];
    const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
    const lost = coordinatorOf.size - done.length;
    const value = meanAbsRelDeviation(counts);
    const problems = [
      rejected ? `${rejected} task(s) rejected at dispatch` : '',
      failed ? `${failed} task(s) failed` : '',
      lost ? `${lost} accepted task(s) never completed (data loss)` : '',
    ].filter(Boolean);
    return {
      id: '1.5',
      value: Number.isFinite(value) ? value : null,
      samples: done.length,
      // One sample per agent: its relative deviation |x - mean| / mean (their mean is the value).
      raw: mean > 0 ? counts.map((c) => Math.abs(c - mean) / mean) : [],
      details: { tasks: m, accepted: coordinatorOf.size, perAgent: Object.fromEntries(perAgent), rejected, failed, lost },
      ...(problems.length ? { fail: problems.join('; ') } : {}),
    };
  });
}

function failover(ctx: BenchContext, client: AgentClient): Promise<Measurement> {
  return guard('1.6', async () => {
    const n = Math.min(ctx.params.agents.poolSize, 8);
    const trials = Math.min(ctx.params.trials, 5);
    const recovery: number[] = [];
    const detection: number[] = [];
    return withPool(ctx, poolOpts(ctx, 'failover', 0, 1, true), async (pool) => {
      await pool.scaleTo(n);
      await until('the pool to form', 30_000, ctx.signal, async () => ((await viewsHold(client, pool.agents())) ? true : undefined));
      const coordinator = pool.agents()[0]!;
      // Background load through the coordinator's dispatch for the whole test.
      const load = startLoad({
        targets: [coordinator.url],
        rate: Math.max(20, n * ctx.params.agents.ratePerAgent),
        durationMs: 3_600_000,
        mode: 'dispatch',
        mix: ctx.params.agents.taskMix,
        ioMs: ctx.params.agents.ioTaskMs,
        cpuRounds: ctx.params.agents.cpuTaskRounds,
        drainMs: 20_000,
        idPrefix: `fo-${Date.now().toString(36)}`,
        signal: ctx.signal,
      });
      try {
        for (let t = 0; t < trials; t++) {
          ctx.progress('1.6 failure recovery', `trial ${t + 1}/${trials}: kill one of ${n} agents under load`);
          const agents = pool.agents();
          const victim = agents[1 + (t % (agents.length - 1))]!;
          const t0 = performance.now();
          await pool.kill(victim.id);
          const dead = new Set([victim.id]);
          // Detected: the coordinator no longer lists the victim as alive.
          await until(`the coordinator to detect ${victim.id}'s death`, 30_000, ctx.signal, async () => {
            const r = await client.members(coordinator.url).catch(() => undefined);
            if (!r || r.status !== 200) return undefined;
            const v = r.body.members.find((m) => m.id === victim.id);
            return !v || v.status !== 'alive' ? true : undefined;
          });
          detection.push(elapsed(t0));
          // Recovered: N alive everywhere without the victim, and every member runs a task.
          await until('the pool to recover', 60_000, ctx.signal, async () => {
            const now = pool.agents();
            if (now.length !== n) return undefined;
            if (!(await viewsHold(client, now, dead))) return undefined;
            const answers = await Promise.all(
              now.map((a) => client.task(a.url, { id: `probe-${t}-${a.id}-${Math.round(performance.now())}`, kind: 'io', ioMs: 0 }).catch(() => undefined)),
            );
            return answers.every((r) => r?.status === 200) ? true : undefined;
          });
          recovery.push(elapsed(t0));
        }
      } finally {
        load.stop();
      }
      const run = await load.done;
      const c = run.counts;
      const d = describe(recovery.map((ms) => ms / 1000));
      const problems = [
        c.lost ? `${c.lost} accepted task(s) never completed (data-loss events)` : '',
        c.accepted === 0 ? 'no task was accepted under load' : '',
      ].filter(Boolean);
      return {
        id: '1.6',
        value: d.p50,
        samples: recovery.length,
        raw: recovery.map((ms) => ms / 1000),
        distribution: d,
        details: {
          agents: n,
          detectionMsP50: describe(detection).p50,
          accepted: c.accepted,
          done: c.ok,
          lost: c.lost,
          rejected: c.rejected,
          errors: c.error + c.timeout,
          lostDetail: run.lostDetail,
        },
        ...(problems.length ? { fail: problems.join('; ') } : {}),
      };
    });
  });
}
