/**
 * Step deadlines (src/plan/deadlines.ts): each step's timeoutMs is the sum of its tests' worst
 * cases, its pools, the runner and a margin; the bounds it uses are the benches' own: defined once
 * in src/plan/deadlines.ts and imported by the benches (checked here from their source), and where
 * a copy remains (a function, a public option's default), checked here against the bench.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CATEGORIES, type BenchmarkRunSpec, type Category } from '../../src/api/schema.ts';
import * as balance from '../../src/bench/distributed/balance.ts';
import { POLL_MS } from '../../src/bench/distributed/common.ts';
import { fallbackDeadlineMs as benchFallback } from '../../src/bench/gpu/fallback.ts';
import { MAX_SPAN } from '../../src/bench/gpu/sustained.ts';
import { IN_TIME_MS } from '../../src/bench/monitoring/dashboard-rate.ts';
import { stepLengthMs } from '../../src/bench/monitoring/ladder.ts';
import { FINISH_QUERY_DEADLINE_MS } from '../../src/bench/monitoring/prometheus-source.ts';
import { EVENT_DEADLINE_MS as BENCH_EVENT_DEADLINE } from '../../src/bench/monitoring/wait.ts';
import { MARK_DEADLINE_MS as BENCH_MARK_DEADLINE } from '../../src/bench/monitoring/websocket.ts';
import { scalingPlan } from '../../src/bench/scalability/plan.ts';
import { EXHAUSTION_MAX_RATE as BENCH_EXH_RATE, exhaustionPlan } from '../../src/bench/stress/exhaustion.ts';
import { SCALE_WAIT_MS as BENCH_SCALE_WAIT, SPIKE_HOLD_MS as BENCH_HOLD, SPIKE_MAX_RATE as BENCH_SPIKE_RATE, SPIKE_MULTIPLE as BENCH_MULTIPLE, spikePlan } from '../../src/bench/stress/spike.ts';
import { SUSTAINED_DRAIN_MS as BENCH_DRAIN, WARMUP_MAX_MS as BENCH_WARMUP_MAX, warmupBounds } from '../../src/bench/stress/sustained.ts';
import * as d from '../../src/plan/deadlines.ts';
import { resolveParams, type Params } from '../../src/plan/params.ts';
import { buildPlan } from '../../src/plan/plan.ts';

const quick = () => resolveParams({ mode: 'quick' } as BenchmarkRunSpec);
const full = () => resolveParams({ mode: 'full' } as BenchmarkRunSpec);
const total = (c: Category, p: Params) => d.stepDeadline(c, p).totalMs;
const part = (c: Category, p: Params, name: string) => {
  const x = d.stepDeadline(c, p).parts.find((y) => y.name === name);
  if (!x) throw new Error(`no part ${name} in ${c}`);
  return x.ms;
};
const src = (file: string) => readFileSync(new URL(`../../src/${file}`, import.meta.url), 'utf8');
/** The names a source file imports from plan/deadlines.ts. */
const fromDeadlines = (file: string): string[] =>
  [...src(file).matchAll(/import \{([^}]*)\} from '(?:\.\.\/)+plan\/deadlines\.ts';/g)].flatMap((m) => m[1]!.split(',').map((x) => x.trim()).filter(Boolean));

/** Today's figures before this change (src/plan/plan.ts timeoutOf at 52a6710), for the report. */
const BEFORE: Record<'quick' | 'full', Record<Category, number>> = {
  quick: { distributed: 181.6, integration: 555, monitoring: 181.6, gpu: 204, scalability: 520, stress: 330 },
  full: { distributed: 190, integration: 930, monitoring: 190, gpu: 420, scalability: 680, stress: 1200 },
};

describe('stepDeadline', () => {
  for (const [mode, make] of [['quick', quick], ['full', full]] as const) {
    for (const c of CATEGORIES) {
      it(`${mode} ${c}: the total is the sum of its parts, within the floor and the cap, and is the step's timeoutMs`, () => {
        const p = make();
        const dl = d.stepDeadline(c, p);
        expect(dl.parts.length).toBeGreaterThan(3);
        expect(dl.parts.reduce((a, x) => a + x.ms, 0)).toBe(dl.totalMs);
        for (const x of dl.parts) {
          expect(Number.isInteger(x.ms), x.name).toBe(true);
          expect(x.covers.length, x.name).toBeGreaterThan(0);
        }
        expect(dl.totalMs).toBeGreaterThanOrEqual(d.DEADLINE_FLOOR_MS);
        expect(dl.totalMs).toBeLessThanOrEqual(d.DEADLINE_CAP_MS);
        expect(buildPlan(p).find((s) => s.category === c)!.timeoutMs).toBe(dl.totalMs);
        // Longer than before in every step but quick scalability (whose pool growth was over-allowed).
        console.log(`deadline ${mode} ${c}: before ${BEFORE[mode][c]} s, now ${dl.totalMs / 1000} s`);
      });
    }
  }

  it('full distributed covers 1.1: every trial a pool grown and the 60 s formation wait (formation.ts)', () => {
    const p = full();
    expect(p.trials).toBe(10);
    expect(src('bench/distributed/formation.ts')).toContain(`until('every view to hold all agents', FORMATION_WAIT_MS,`);
    const perTrial = d.grow(0, p.agents.poolSize) + d.FORMATION_WAIT_MS;
    expect(part('distributed', p, '1.1 formation')).toBeGreaterThanOrEqual(p.trials * perTrial);
    // 1.2: two 60 s waits per trial; 1.6: five trials of twice the failover target.
    expect(part('distributed', p, '1.2 spawn latency')).toBeGreaterThanOrEqual(p.trials * 2 * d.FORMATION_WAIT_MS);
    expect(part('distributed', p, '1.6 failure recovery')).toBeGreaterThanOrEqual(5 * 2 * p.targets.failoverSeconds * 1000);
    expect(total('distributed', p)).toBeGreaterThan(p.trials * perTrial + p.trials * 2 * d.FORMATION_WAIT_MS);
    expect(total('distributed', p)).toBeGreaterThan(190_000 * 10);
  });

  it('grows with the pool, the trials, the sustained phase, the step length and the targets it waits on', () => {
    const base = full();
    const more = (f: (p: Params) => void): Params => {
      const p = structuredClone(base);
      f(p);
      return p;
    };
    expect(total('distributed', more((p) => (p.agents.poolSize = 100)))).toBeGreaterThan(total('distributed', base));
    expect(total('distributed', more((p) => (p.trials = 12)))).toBeGreaterThan(total('distributed', base));
    expect(total('distributed', more((p) => (p.targets.failoverSeconds = 60)))).toBeGreaterThan(total('distributed', base));
    expect(total('stress', more((p) => (p.stress.sustainedMs = 1_200_000)))).toBeGreaterThan(total('stress', base));
    expect(total('stress', more((p) => (p.stress.sustainedAgents = 150)))).toBeGreaterThan(total('stress', base));
    expect(total('scalability', more((p) => (p.agents.stepSeconds = 30)))).toBeGreaterThan(total('scalability', base));
    expect(total('scalability', more((p) => (p.agents.steps = [10, 50, 100, 200, 400])))).toBeLessThan(total('scalability', base));
    expect(total('integration', more((p) => (p.trials = 20)))).toBeGreaterThan(total('integration', base));
    expect(total('monitoring', more((p) => (p.monitoring.observeSeconds = 60)))).toBeGreaterThan(total('monitoring', base));
    expect(total('gpu', more((p) => (p.gpu.sustainedSeconds = 120)))).toBeGreaterThan(total('gpu', base));
    for (const c of CATEGORIES) expect(total(c, full()), c).toBeGreaterThanOrEqual(total(c, quick()));
  });

  it('a pool\'s growth: per agent, never past the Kubernetes platform\'s readiness wait', () => {
    expect(d.grow(5, 5)).toBe(0);
    expect(d.grow(0, 10)).toBe(d.GROW_BASE_MS + 10 * d.AGENT_START_MS);
    expect(d.grow(0, 1000)).toBe(d.KUBE_READY_TIMEOUT_MS);
    expect(src('platform/kubernetes/index.ts')).toContain(`readyTimeoutMs ?? ${d.KUBE_READY_TIMEOUT_MS.toLocaleString('en').replace(',', '_')}`);
    expect(src('platform/kubernetes/manifests.ts')).toContain('terminationGracePeriodSeconds: 10,');
  });

  it('the floor and the cap are parts of their own, so the parts still sum to the total', () => {
    const tiny = quick();
    tiny.trials = 1;
    tiny.monitoring.observeSeconds = 1;
    const floor = d.stepDeadline('monitoring', { ...tiny, agents: { ...tiny.agents, poolSize: 2 } });
    const huge = full();
    huge.targets.failoverSeconds = 3600;
    huge.targets.stateSyncMs = 600_000;
    const cap = d.stepDeadline('distributed', huge);
    expect(cap.totalMs).toBe(d.DEADLINE_CAP_MS);
    expect(cap.parts.at(-1)!.name).toBe('cap');
    expect(cap.parts.at(-1)!.ms).toBeLessThan(0);
    expect(cap.parts.reduce((a, x) => a + x.ms, 0)).toBe(cap.totalMs);
    expect(floor.totalMs).toBeGreaterThanOrEqual(d.DEADLINE_FLOOR_MS);
    expect(floor.parts.reduce((a, x) => a + x.ms, 0)).toBe(floor.totalMs);
  });

  it('refuses a bound that is not a number, naming the part', () => {
    const p = quick();
    p.agents.stepSeconds = Number.NaN;
    expect(() => d.stepDeadline('scalability', p)).toThrow(/stepDeadline\(scalability\): part "4.x saturation windows"/);
  });

  it('quick deadlines stay within an hour each', () => {
    for (const c of CATEGORIES) expect(total(c, quick()), c).toBeLessThanOrEqual(3_600_000);
  });
});

describe('the bounds are the benches\' own', () => {
  it('exported bench constants', () => {
    expect(d.BALANCE_BATCHES).toBe(balance.WARMUP_BATCHES + balance.MAX_BATCHES);
    expect(d.BALANCE_QUIET_MS).toBe(balance.QUIET_MS);
    expect(POLL_MS).toBeLessThan(1000);
    expect(d.SUSTAINED_MAX_SPAN).toBe(MAX_SPAN);
    expect(d.EVENT_DEADLINE_MS).toBe(BENCH_EVENT_DEADLINE);
    expect(d.MARK_DEADLINE_MS).toBe(BENCH_MARK_DEADLINE);
    expect(d.PROM_FINISH_QUERY_MS).toBe(FINISH_QUERY_DEADLINE_MS);
    expect(d.LADDER_STEP_GRACE_MS).toBe(IN_TIME_MS + 2000);
    expect(d.SUSTAINED_DRAIN_MS).toBe(BENCH_DRAIN);
    expect(d.WARMUP_MAX_MS).toBe(BENCH_WARMUP_MAX);
    expect(d.SPIKE_HOLD_MS).toBe(BENCH_HOLD);
    expect(d.SCALE_WAIT_MS).toBe(BENCH_SCALE_WAIT);
    expect(d.SPIKE_MAX_RATE).toEqual(BENCH_SPIKE_RATE);
    expect(d.SPIKE_MULTIPLE).toBe(BENCH_MULTIPLE);
    expect(d.EXHAUSTION_MAX_RATE).toEqual(BENCH_EXH_RATE);
    for (const t of [0, 5, 100, 1000, 5000]) expect(d.fallbackDeadlineMs(t)).toBe(benchFallback(t));
    for (const s of [0.5, 4, 30, 600]) expect(d.ladderStepMs(s)).toBe(stepLengthMs(s));
    for (const ms of [1000, 20_000, 600_000]) expect(d.warmupMaxMs(ms)).toBe(warmupBounds(ms).maxMs);
  });

  it('the plans of the stress and scalability tests', () => {
    for (const p of [quick(), full()]) {
      for (const from of [1, 4, 10, 40]) {
        const q = structuredClone(p);
        q.stress.spikeFrom = from;
        q.stress.spikeTo = from * 5;
        const sp = spikePlan(q);
        if (typeof sp !== 'string') {
          const mine = d.spikeTiming(q);
          expect(mine).toEqual({ taskMs: sp.taskMs, spikeAtMs: sp.spikeAtMs, boundMs: sp.boundMs });
        }
        expect(d.exhaustionTaskMs(q, from)).toBe(exhaustionPlan(q, from).taskMs);
      }
      const sc = scalingPlan(p);
      const perMeasure = sc.windowStartMs + sc.windowMs;
      expect(part('scalability', p, '4.x saturation windows')).toBeGreaterThanOrEqual((1 + p.agents.steps.length) * perMeasure);
      expect(part('scalability', p, 'last drain')).toBeGreaterThanOrEqual(sc.drainMs);
    }
  });

  it('the benches import the bounds the deadline counts, and use them where they wait', () => {
    const imports: Record<string, string[]> = {
      'bench/distributed.ts': ['DIST_REQUEST_TIMEOUT_MS'],
      'bench/distributed/common.ts': ['FORMATION_WAIT_MS'],
      'bench/distributed/formation.ts': ['FORMATION_WAIT_MS'],
      'bench/distributed/latency.ts': ['LATENCY_BUDGET_MS', 'LATENCY_LONG'],
      'bench/distributed/sync.ts': ['SYNC_BUDGET_MS', 'SYNC_MIN_WRITES', 'SYNC_WARMUP_WRITES'],
      'bench/distributed/balance.ts': ['BALANCE_DRAIN_MS', 'BALANCE_MAX_BATCHES', 'BALANCE_QUIET_MS', 'BALANCE_WARMUP_BATCHES'],
      'bench/distributed/failover.ts': ['FAILOVER_DRAIN_MS', 'FAILOVER_MAX_AGENTS', 'FAILOVER_MAX_TRIALS'],
      'bench/integration.ts': ['CLEANUP_EXIT_WAIT_MS', 'CLEANUP_PAUSE_MS', 'PORT_PROBE_TIMEOUT_MS', 'WORKFLOW_TIMEOUT_MS'],
      'bench/monitoring/index.ts': ['SETTLE_DEADLINE_MS'],
      'bench/monitoring/websocket.ts': ['CLOCK_SAMPLES', 'MARK_DEADLINE_MS', 'MARK_SPACING_MS', 'MARKS_PER_TRIAL'],
      'bench/monitoring/alert-latency.ts': ['ALERT_DEADLINE_MS', 'ALERT_DELIVERY_WAIT_MS', 'ALERT_RESOLVE_DEADLINE_MS'],
      'bench/monitoring/prometheus-source.ts': ['PROM_FINISH_QUERY_MS'],
      'bench/monitoring/dashboard-rate.ts': ['DASHBOARD_IN_TIME_MS', 'DASHBOARD_LATE_GRACE_MS', 'DASHBOARD_MIN_RATE', 'DASHBOARD_MIN_UPDATES'],
      'bench/gpu/batch.ts': ['BATCH_BUDGET_MS', 'BATCH_WARMUP'],
      'bench/gpu/sustained.ts': ['SUSTAINED_MAX_SPAN'],
      'bench/scalability/step.ts': ['SCALING_REQUEST_TIMEOUT_MS'],
    };
    for (const [file, names] of Object.entries(imports)) {
      const got = fromDeadlines(file);
      for (const n of names) {
        expect(got, `${file} imports ${n}`).toContain(n);
        expect(n in d, n).toBe(true);
      }
    }
    expect(src('bench/monitoring/wait.ts')).toContain(`export { EVENT_DEADLINE_MS } from '../../plan/deadlines.ts';`);
    // Where they wait: the constant, not a literal beside it.
    expect(src('bench/distributed/formation.ts').match(/, FORMATION_WAIT_MS, ctx\.signal/g)).toHaveLength(3);
    expect(src('bench/distributed/common.ts')).toContain(', FORMATION_WAIT_MS, ctx.signal');
    expect(src('bench/distributed.ts')).toContain('timeoutMs: DIST_REQUEST_TIMEOUT_MS');
    expect(src('bench/distributed/balance.ts')).toContain('const DRAIN_MS = BALANCE_DRAIN_MS;');
    const failover = src('bench/distributed/failover.ts');
    expect(failover).toContain('Math.min(ctx.params.trials, FAILOVER_MAX_TRIALS)');
    expect(failover).toContain('Math.min(ctx.params.agents.poolSize, FAILOVER_MAX_AGENTS)');
    expect(failover).toContain('drainMs: FAILOVER_DRAIN_MS');
    const integration = src('bench/integration.ts');
    expect(integration).toContain('timeoutMs: WORKFLOW_TIMEOUT_MS');
    expect(integration).toContain('setTimeout(r, CLEANUP_PAUSE_MS)');
    expect(integration).toContain('performance.now() + CLEANUP_EXIT_WAIT_MS');
    expect(integration).toContain('s.setTimeout(PORT_PROBE_TIMEOUT_MS,');
    expect(src('bench/monitoring/websocket.ts')).toContain('samples = CLOCK_SAMPLES)');
    const alert = src('bench/monitoring/alert-latency.ts');
    expect(alert).toContain('deferred<number>(ALERT_DEADLINE_MS,');
    expect(alert).toContain('received.has(id), ALERT_DELIVERY_WAIT_MS,');
    expect(alert.match(/waitUntil\(resolved, ALERT_RESOLVE_DEADLINE_MS,/g)).toHaveLength(2);
    expect(src('bench/gpu/batch.ts')).toContain('const budgetMs = BATCH_BUDGET_MS[p.mode];');
    expect(src('bench/scalability/step.ts')).toContain('timeoutMs: SCALING_REQUEST_TIMEOUT_MS');
    // A copy that stays (a default of an exported function's option): the driver query's timeout.
    expect(src('bench/gpu/memory.ts')).toContain(`timeoutMs = ${d.MEMORY_CHECKPOINT_MS}`);
  });
});
