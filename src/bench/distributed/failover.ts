/**
 * 1.6 Failure recovery: under dispatch load through one coordinator, SIGKILL one worker (its own
 * process, as a pod dies); the platform replaces it (auto-heal, as a ReplicaSet does).
 *
 * Recovery ends when both hold at one poll (every POLL_MS): the kill is CONFIRMED (every live
 * member's membership view has the killed agent removed: dead, left or gone; merely suspected
 * does not count) AND a replacement is SERVING (the pool has N agents again, every view holds
 * exactly those N alive, and every member answers a task). The time of the first suspicion at
 * the coordinator, of the confirmed removal and of the replacement's arrival are in the details.
 *
 * A trial has a deadline, twice the target: a pool not recovered by then is censored at the
 * deadline, the test fails saying which condition was still unmet, and no further trial runs (no
 * unbounded waits). Accepted tasks never done are data-loss events and fail the test.
 */
import type { AgentClient } from '../../agent/client.ts';
import type { MembersResult } from '../../agent/types.ts';
import type { Measurement } from '../../api/schema.ts';
import { FAILOVER_DRAIN_MS, FAILOVER_MAX_AGENTS, FAILOVER_MAX_TRIALS } from '../../plan/deadlines.ts';
import type { AgentHandle } from '../../platform/types.ts';
import { describe, round } from '../../stats.ts';
import { startLoad } from '../load/index.ts';
import { elapsed, guard } from '../measure.ts';
import type { BenchContext } from '../types.ts';
import { aliveIn, formPool, POLL_MS, poolOpts, views, withPool } from './common.ts';

/** Where one poll found the pool, after the kill of `victim`. */
export interface RecoveryState {
  /** Live members whose view still holds the victim as alive or suspect (or that did not answer). */
  notConfirmed: number;
  members: number;
  /** The pool has N agents again, none of them the victim. */
  replaced: boolean;
  /** Every view holds exactly the live members alive. */
  viewsAgree: boolean;
}

/** Has the victim been removed (dead, left or gone) in this view? */
export function removedIn(v: MembersResult | undefined, victim: string): boolean {
  if (!v) return false;
  const m = v.members.find((x) => x.id === victim);
  return !m || m.status === 'dead' || m.status === 'left';
}

export function recoveryState(now: readonly AgentHandle[], vs: readonly (MembersResult | undefined)[], victim: string, n: number): RecoveryState {
  const ids = new Set(now.map((a) => a.id));
  const notConfirmed = vs.filter((v) => !removedIn(v, victim)).length;
  const viewsAgree = vs.every((v) => {
    if (!v) return false;
    const alive = aliveIn(v);
    return alive.size === ids.size && [...ids].every((id) => alive.has(id));
  });
  return { notConfirmed, members: now.length, replaced: now.length === n && !ids.has(victim), viewsAgree };
}

function unmet(s: RecoveryState, victim: string, n: number): string {
  const parts: string[] = [];
  if (s.notConfirmed > 0) parts.push(`${s.notConfirmed} of ${s.members} live members still listed ${victim} as alive or suspect (or did not answer)`);
  if (!s.replaced) parts.push(`the pool had ${s.members} of ${n} agents`);
  else if (!s.viewsAgree) parts.push(`not every view held the ${n} live members alive`);
  if (parts.length === 0) parts.push('not every member answered a task');
  return parts.join('; ');
}

export function failover(ctx: BenchContext, client: AgentClient): Promise<Measurement> {
  return guard('1.6', async () => {
    const n = Math.min(ctx.params.agents.poolSize, FAILOVER_MAX_AGENTS);
    if (n < 2) throw new Error('1.6 needs a pool of at least 2 agents (one coordinator, one to kill)');
    const trials = Math.min(ctx.params.trials, FAILOVER_MAX_TRIALS);
    const deadlineMs = 2 * ctx.params.targets.failoverSeconds * 1000;
    const recovery: number[] = [];
    const suspected: number[] = [];
    const confirmed: number[] = [];
    const replaced: number[] = [];
    let censored: string | null = null;
    return withPool(ctx, poolOpts(ctx, 'failover', 1, true), async (pool) => {
      await formPool(ctx, client, pool, n);
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
        drainMs: FAILOVER_DRAIN_MS,
        idPrefix: `fo-${Date.now().toString(36)}`,
        signal: ctx.signal,
      });
      try {
        for (let t = 0; t < trials && !censored; t++) {
          ctx.progress('1.6 failure recovery', `trial ${t + 1}/${trials}: kill one of ${n} agents under load`);
          const agents = pool.agents();
          const victim = agents[1 + (t % (agents.length - 1))]!;
          const t0 = performance.now();
          await pool.kill(victim.id);
          let suspectedAt: number | null = null;
          let confirmedAt: number | null = null;
          let replacedAt: number | null = null;
          let last: RecoveryState | null = null;
          for (;;) {
            ctx.signal.throwIfAborted();
            const now = pool.agents();
            const vs = await views(client, now);
            const at = elapsed(t0);
            const coord = vs[now.findIndex((a) => a.id === coordinator.id)];
            if (suspectedAt === null && coord && coord.members.find((m) => m.id === victim.id)?.status !== 'alive') suspectedAt = at;
            const s = recoveryState(now, vs, victim.id, n);
            last = s;
            if (confirmedAt === null && s.notConfirmed === 0) confirmedAt = at;
            if (replacedAt === null && s.replaced) replacedAt = at;
            if (s.notConfirmed === 0 && s.replaced && s.viewsAgree) {
              const answers = await Promise.all(
                now.map((a) => client.task(a.url, { id: `probe-${t}-${a.id}-${Math.round(performance.now())}`, kind: 'io', ioMs: 0 }).catch(() => undefined)),
              );
              // Recovered, unless only past the deadline (the views or the probes came late): that
              // trial is censored at the deadline like one that never recovered.
              const took = elapsed(t0);
              if (answers.every((r) => r?.status === 200) && took <= deadlineMs) {
                recovery.push(took);
                break;
              }
            }
            if (elapsed(t0) > deadlineMs) {
              censored = `trial ${t + 1}: not recovered ${deadlineMs / 1000} s (twice the target) after the kill of ${victim.id}, censored at the deadline: ${unmet(last, victim.id, n)}`;
              recovery.push(deadlineMs);
              break;
            }
            await new Promise((r) => setTimeout(r, POLL_MS));
          }
          if (suspectedAt !== null) suspected.push(suspectedAt);
          if (confirmedAt !== null) confirmed.push(confirmedAt);
          if (replacedAt !== null) replaced.push(replacedAt);
        }
      } finally {
        load.stop();
      }
      const run = await load.done;
      const c = run.counts;
      const seconds = recovery.map((ms) => ms / 1000);
      const d = describe(seconds);
      const p50 = (xs: number[]) => (xs.length > 0 ? round(describe(xs).p50, 1) : null);
      const problems = [
        censored ?? '',
        c.lost ? `${c.lost} accepted task(s) never completed (data-loss events)` : '',
        c.accepted === 0 ? 'no task was accepted under load' : '',
      ].filter(Boolean);
      return {
        id: '1.6',
        value: d.p50,
        samples: seconds.length,
        sampleUnit: 'trials',
        raw: seconds,
        distribution: d,
        details: {
          agents: n,
          recoveryEnds: 'the kill confirmed in every live view (dead or gone, not suspect) and a replacement serving (N agents, every view holds them alive, every member answers a task)',
          deadlineS: deadlineMs / 1000,
          failureTimeoutMs: ctx.params.agents.failureTimeoutMs,
          suspectedMsP50: p50(suspected),
          confirmedMsP50: p50(confirmed),
          replacementMsP50: p50(replaced),
          censoredTrials: censored ? 1 : 0,
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
