/**
 * 1.5 Load balancing: the system's own placement of tasks submitted through a few coordinators.
 *
 * Method: batches of tasks (4 per agent each; one unmeasured warm-up batch first) enter through COORDINATORS agents of the pool only
 * (alternately), with the system's own `POST /v1/dispatch`, all of a batch at once: the system
 * chooses every executor. A batch mixes costs: I/O tasks of 200, 400 and 600 ms in a seeded
 * order, then CPU tasks of 300 and 3000 SHA-256 rounds (1 task in 4; `planBatch` says why they
 * come last). The next batch starts when the previous one is done and QUIET_MS have passed. The
 * harness reads which agent executed each task from the coordinators' dispatch results.
 *
 * Value: the MARD of the number of tasks each agent executed in a batch (mean absolute relative
 * deviation over the agents), averaged over the batches; raw holds each agent's deviation
 * averaged over the batches, so n is the number of agents. Judged against what chance would do
 * for the same counts, in the details: the expected MARD of random placement (exact, binomial),
 * the share of seeded Monte-Carlo draws of random placement that would pass the target, and the
 * MARD of "each coordinator runs what it accepted". When random placement would pass the target
 * in 5 % of draws or more, the counts cannot tell balancing from chance and the test is Skipped
 * with the figures. The cost-weighted MARD (I/O: its ms; CPU: the harness's own time for its
 * digest) and its random expectation are in the details too, not judged: a balancer that
 * balances what is in flight cannot see a task's cost while a batch arrives at once.
 *
 * Checked, not trusted: every dispatched task's result is checked (a CPU task's digest recomputed
 * by the harness, an I/O task's echo compared); wrong results, tasks rejected, failed, never
 * completed (lost) or done without a known executor fail the test with their counts.
 */
import type { AgentClient } from '../../agent/client.ts';
import type { DispatchTask, TaskRequest } from '../../agent/types.ts';
import { cpuTaskResult } from '../../agent/work.ts';
import type { Measurement } from '../../api/schema.ts';
import { BALANCE_DRAIN_MS, BALANCE_MAX_BATCHES, BALANCE_QUIET_MS, BALANCE_WARMUP_BATCHES } from '../../plan/deadlines.ts';
import type { AgentHandle, Pool } from '../../platform/types.ts';
import { deriveSeed, mulberry32 } from '../../prng.ts';
import { mean, meanAbsRelDeviation, median, round } from '../../stats.ts';
import { guard } from '../measure.ts';
import type { BenchContext } from '../types.ts';
import { ownRunMard, randomMardExpected, randomPlacement } from './placement.ts';

/** Coordinators the tasks enter through (fewer when the pool is smaller). */
export const COORDINATORS = 2;
/** Tasks per agent in one batch: few enough that random placement scores far above the target. */
export const PER_AGENT = 4;
/** Measured batches at most (MAX_BATCHES, WARMUP_BATCHES, QUIET_MS and DRAIN_MS: plan/deadlines.ts holds them, for the step's deadline). */
export const MAX_BATCHES = BALANCE_MAX_BATCHES;
/** Unmeasured batches first (connections opened, code warmed): not in n, their results still checked. */
export const WARMUP_BATCHES = BALANCE_WARMUP_BATCHES;
/** Quiet time between batches (what a balancer learnt of the last batch's load goes stale). */
export const QUIET_MS = BALANCE_QUIET_MS;
const IO_MS = [200, 400, 600];
const CPU_ROUNDS = [300, 3000];
/**
 * An accepted task still not done when no task of its batch has finished for STALL_MS (or
 * DRAIN_MS after the batch was sent) is lost; a slow but working system keeps finishing tasks.
 */
const STALL_MS = 5_000;
const DRAIN_MS = BALANCE_DRAIN_MS;
/** Random placement passing this often means the counts cannot tell balancing from chance. */
export const CHANCE_PASS_SHARE = 0.05;
const DRAWS = 2000;

interface Planned {
  task: TaskRequest;
  coordinator: AgentHandle;
  accepted: boolean;
}

/**
 * One batch: `m` tasks, 1 in 4 CPU, sizes in turn; the I/O tasks first in a seeded order, then the
 * CPU tasks (a CPU task is done in milliseconds: sent among the I/O tasks, each one done frees
 * its executor, which a balancer of what is in flight then rightly picks again, so the counts
 * would differ for a good reason; sent last, they find every agent at the same level).
 */
export function planBatch(m: number, prefix: string, rand: () => number): TaskRequest[] {
  const io: TaskRequest[] = [];
  const cpu: TaskRequest[] = [];
  for (let i = 0; i < m; i++) {
    const payload = `${prefix}-${i}-${Math.floor(rand() * 2 ** 32).toString(36)}`;
    if (i % 4 === 3) cpu.push({ id: payload, kind: 'cpu', cpuRounds: CPU_ROUNDS[cpu.length % CPU_ROUNDS.length]!, payload });
    else io.push({ id: payload, kind: 'io', ioMs: IO_MS[io.length % IO_MS.length]!, payload });
  }
  const shuffle = (xs: TaskRequest[]): TaskRequest[] => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  };
  return [...shuffle(io), ...shuffle(cpu)];
}

/** Query each coordinator until every accepted task is done or failed, or the deadline passes. */
async function collect(client: AgentClient, planned: readonly Planned[], signal: AbortSignal): Promise<Map<string, DispatchTask>> {
  const byCoord = new Map<string, string[]>();
  for (const p of planned) if (p.accepted) byCoord.set(p.coordinator.url, [...(byCoord.get(p.coordinator.url) ?? []), p.task.id]);
  const want = [...byCoord.values()].reduce((a, ids) => a + ids.length, 0);
  const final = new Map<string, DispatchTask>();
  const end = performance.now() + DRAIN_MS;
  let progressAt = performance.now();
  for (;;) {
    const before = final.size;
    signal.throwIfAborted();
    await Promise.all(
      [...byCoord].map(async ([url, ids]) => {
        const open = ids.filter((id) => !final.has(id));
        if (open.length === 0) return;
        const r = await client.dispatchQuery(url, open).catch(() => undefined);
        if (!r || r.status !== 200 || !Array.isArray(r.body.tasks)) return;
        for (const t of r.body.tasks) if (t.state === 'done' || t.state === 'failed') final.set(t.id, t);
      }),
    );
    const now = performance.now();
    if (final.size > before) progressAt = now;
    if (final.size >= want || now > end || now - progressAt > STALL_MS) return final;
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function loadBalance(ctx: BenchContext, client: AgentClient, pool: Pool): Promise<Measurement> {
  return guard('1.5', async () => {
    const agents = pool.agents();
    const n = agents.length;
    const coordinators = agents.slice(0, Math.min(COORDINATORS, n));
    const perBatch = Math.min(PER_AGENT * n, ctx.params.agents.balanceTasks);
    const batches = Math.max(1, Math.min(MAX_BATCHES, Math.floor(ctx.params.agents.balanceTasks / perBatch)));
    const rand = mulberry32(deriveSeed(0x15, `balance-${n}`));
    const runId = Date.now().toString(36);
    const ids = agents.map((a) => a.id);
    const index = new Map(ids.map((id, i) => [id, i]));
    const perAgentTotal = new Array<number>(n).fill(0);
    const devSum = new Array<number>(n).fill(0);
    const batchMard: number[] = [];
    const batchCounts: number[][] = [];
    const ownRun: number[] = [];
    const costWeights: number[][] = [];
    const costMard: number[] = [];
    // A CPU task's cost: the median of the harness's own times for a digest of its size.
    const cpuCostMs = new Map(
      CPU_ROUNDS.map((r) => {
        const ms: number[] = [];
        for (let i = 0; i < 3; i++) {
          const t0 = performance.now();
          cpuTaskResult(`calibrate-${i}`, r);
          ms.push(performance.now() - t0);
        }
        return [r, median(ms)];
      }),
    );
    let rejected = 0;
    let failed = 0;
    let lost = 0;
    let wrong = 0;
    let noExecutor = 0;
    let submitted = 0;
    for (let b = 0; b < WARMUP_BATCHES + batches; b++) {
      if (b > 0) await new Promise((r) => setTimeout(r, QUIET_MS));
      ctx.signal.throwIfAborted();
      ctx.progress('1.5 load balancing', `batch ${b + 1}/${WARMUP_BATCHES + batches}: ${perBatch} tasks through ${coordinators.length} coordinator(s)`);
      const planned: Planned[] = planBatch(perBatch, `lb-${runId}-${b}`, rand).map((task, i) => ({
        task,
        coordinator: coordinators[i % coordinators.length]!,
        accepted: false,
      }));
      submitted += planned.length;
      await Promise.all(
        planned.map(async (p) => {
          const r = await client.dispatch(p.coordinator.url, p.task).catch(() => undefined);
          if (r?.status === 202) p.accepted = true;
          else rejected++;
        }),
      );
      const final = await collect(client, planned, ctx.signal);
      const counts = new Array<number>(n).fill(0);
      const costs = new Array<number>(n).fill(0);
      const weights: number[] = [];
      const accepted = coordinators.map((c) => planned.filter((p) => p.accepted && p.coordinator === c).length);
      for (const p of planned) {
        if (!p.accepted) continue;
        const t = final.get(p.task.id);
        if (!t) {
          lost++;
          continue;
        }
        if (t.state !== 'done') {
          failed++;
          continue;
        }
        const cpu = p.task.kind === 'cpu';
        const rounds = p.task.cpuRounds ?? 200;
        const expected = cpu ? cpuTaskResult(p.task.payload ?? '', rounds) : (p.task.payload ?? '');
        const cost = cpu ? (cpuCostMs.get(rounds) ?? 0) : (p.task.ioMs ?? 20);
        if (t.result !== expected) wrong++;
        const at = t.executor === null ? undefined : index.get(t.executor);
        if (at === undefined) {
          noExecutor++;
          continue;
        }
        counts[at]!++;
        costs[at]! += cost;
        weights.push(cost);
      }
      const m = counts.reduce((a, c) => a + c, 0);
      if (b < WARMUP_BATCHES || m === 0) continue;
      const mu = m / n;
      counts.forEach((c, i) => {
        perAgentTotal[i]! += c;
        devSum[i]! += Math.abs(c - mu) / mu;
      });
      batchCounts.push(counts);
      batchMard.push(meanAbsRelDeviation(counts));
      costMard.push(meanAbsRelDeviation(costs));
      costWeights.push(weights);
      ownRun.push(ownRunMard(accepted, n));
    }
    if (batchMard.length === 0) throw new Error(`no dispatched task was executed (${rejected} rejected, ${failed} failed, ${lost} lost of ${submitted})`);
    const value = mean(batchMard);
    const target = ctx.params.targets.loadBalanceDeviation;
    const sizes = batchCounts.map((c) => c.reduce((a, x) => a + x, 0));
    const chance = randomPlacement(
      sizes.map((m) => new Array<number>(m).fill(1)),
      n,
      target,
      DRAWS,
      deriveSeed(0x15, 'random-placement'),
    );
    const chanceCost = randomPlacement(costWeights, n, target, DRAWS, deriveSeed(0x15, 'random-placement-cost'));
    const problems = [
      wrong ? `${wrong} of ${submitted} task result(s) wrong (CPU digests recomputed by the harness, I/O echoes compared)` : '',
      rejected ? `${rejected} task(s) rejected at dispatch` : '',
      failed ? `${failed} task(s) failed` : '',
      lost ? `${lost} accepted task(s) never completed (none of their batch finished for ${STALL_MS / 1000} s; data loss)` : '',
      noExecutor ? `${noExecutor} task(s) done by no agent of the pool (executor missing or unknown)` : '',
    ].filter(Boolean);
    const details = {
      method: `${batches} batch(es) of ${perBatch} tasks (I/O ${IO_MS.join('/')} ms in a seeded order, then 1 in 4 CPU of ${CPU_ROUNDS.join('/')} rounds) through ${coordinators.length} of ${n} agents' /v1/dispatch, each batch at once, after ${WARMUP_BATCHES} unmeasured warm-up batch, ${QUIET_MS} ms quiet between batches`,
      batches: batchMard.length,
      warmupBatches: WARMUP_BATCHES,
      tasksPerBatch: perBatch,
      coordinators: coordinators.map((c) => c.id),
      batchMard: batchMard.map((v) => round(v, 4)),
      perAgent: Object.fromEntries(ids.map((id, i) => [id, perAgentTotal[i]!])),
      randomExpectedMard: round(mean(sizes.map((m) => randomMardExpected(m, n))), 4),
      randomPassShare: round(chance.passShare, 4),
      randomDraws: chance.draws,
      eachCoordinatorRunsItsOwnMard: round(mean(ownRun), 4),
      costWeightedMard: round(mean(costMard), 4),
      cpuTaskCostMs: Object.fromEntries([...cpuCostMs].map(([r, ms]) => [`${r} rounds`, round(ms, 3)])),
      costWeightedRandomExpectedMard: round(chanceCost.mean, 4),
      submitted,
      wrongResults: wrong,
      rejected,
      failed,
      lost,
    };
    const base = {
      id: '1.5',
      value: Number.isFinite(value) ? value : null,
      samples: n,
      sampleUnit: `agents, mean of ${batchMard.length} batches`,
      raw: devSum.map((s) => s / batchMard.length),
      details,
    };
    if (problems.length > 0) return { ...base, fail: problems.join('; ') };
    if (!(chance.passShare < CHANCE_PASS_SHARE)) {
      return {
        ...base,
        skip:
          `random placement of the same ${sizes.join('/')} tasks on ${n} agents would pass the target <${target} in ${round(chance.passShare * 100, 1)} % of draws ` +
          `(expected MARD ${details.randomExpectedMard}): at these counts the test cannot tell balancing from chance (measured ${round(value, 4)})`,
      };
    }
    return base;
  });
}
