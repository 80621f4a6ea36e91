/**
 * Recommendations: a small rule set over the measurements of a result document (the tests'
 * values, distributions and details), not over the verdict alone. Each rule looks for one
 * pattern, and when it finds it says what it saw (the evidence, as measured), where (category
 * and tests), how much it matters (HIGH, MEDIUM, INFO) and what to do about it.
 *
 * A rule fires only on a finding: a healthy run gets no recommendation. docs/report.md lists the
 * rules with their triggers; the thresholds are the constants below.
 *
 * | rule                  | category     | fires when                                                                  |
 * |-----------------------|--------------|-----------------------------------------------------------------------------|
 * | scaling-knee          | scalability  | a pool size's efficiency is under its target (the first one is named)        |
 * | gpu-batch-crossover   | gpu          | the GPU backend is slower than the CPU backend at some measured batch size   |
 * | latency-tail          | any          | p99 >= 10 × p50 over >= 20 samples and the tail is large against the target  |
 * | p95-drift             | stress       | 6.1's worst window rose above the run and the windows before by > its target |
 * | memory-per-agent      | scalability  | memory per agent at the largest pool >= 1.2 × the smallest figure (+>= 1 MB) |
 * | early-shedding        | stress, scal.| 429s at a load the step is meant to serve (>= 1 %), or under overload the   |
 * |                       |              | pool accepts < 80 % of its own capacity before it sheds                      |
 * | scrape-near-interval  | monitoring   | the scrape duration p95 is >= 50 % of the scrape interval                     |
 * | gpu-not-used          | gpu          | 2.1 was skipped because no GPU was really used                               |
 * | runner-saturated      | scal., stress| the load generator lagged (p50 > 10 ms or p99 > 100 ms): figures include it  |
 */
import type { Category, Priority, Recommendation, ResultDocument, TestResult } from '../api/schema.ts';
import { CATEGORIES } from '../api/schema.ts';
import { num } from './format.ts';

/** latency-tail: p99 / p50 at least this, over at least TAIL_MIN_SAMPLES samples. */
export const TAIL_RATIO = 10;
export const TAIL_MIN_SAMPLES = 20;
/** latency-tail: the tail (p99 − p50) must also be >= this share of the test's latency target… */
export const TAIL_MIN_SHARE_OF_TARGET = 0.1;
/** …and at least this many ms (below, scheduler jitter on a shared host dominates). */
export const TAIL_MIN_EXCESS_MS = 1;
/** latency-tail for figures without a latency target (scaling steps, sustained load): ms. */
export const TAIL_MIN_EXCESS_UNTARGETED_MS = 10;
/** memory-per-agent: growth factor and absolute growth per agent. */
export const MEMORY_GROWTH_FACTOR = 1.2;
export const MEMORY_GROWTH_MIN_MB = 1;
/** early-shedding: share of offered tasks answered 429 at a load the step is meant to serve. */
export const SHED_MIN_FRACTION = 0.01;
/** early-shedding: accepted throughput under overload as a share of the pool's capacity. */
export const SHED_MIN_CAPACITY_SHARE = 0.8;
/** scrape-near-interval: p95 scrape duration as a share of the scrape interval (MEDIUM, HIGH). */
export const SCRAPE_SHARE_MEDIUM = 0.5;
export const SCRAPE_SHARE_HIGH = 0.8;
/** runner-saturated: generator lag thresholds (the same as the bench's lag warning). */
export const LAG_P50_MS = 10;
export const LAG_P99_MS = 100;

export interface Rule {
  name: string;
  category: Category | 'any';
  /** What the rule looks for, for docs and `swarmbench report --rules`. */
  description: string;
  evaluate(doc: ResultDocument): Recommendation[];
}

// ---------------------------------------------------------------------------------------------
// Reading details (they are `Record<string, unknown>`: each figure is checked before use)

type Obj = Record<string, unknown>;
function obj(v: unknown): Obj | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}
function n(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function test(doc: ResultDocument, id: string): TestResult | undefined {
  return doc.tests.find((t) => t.id === id);
}
function details(t: TestResult | undefined): Obj {
  return t?.details ?? {};
}

// ---------------------------------------------------------------------------------------------
// Rules

interface ScalingStep {
  test: TestResult;
  agents: number;
  efficiency: number;
  throughput?: number;
  offered?: number;
  /** `offered` is N × T(1) (saturation steps), not the offered rate of older documents. */
  ideal: boolean;
  p95?: number;
  memoryPerAgentMB?: number;
  cpuPerAgentPct?: number;
}

function scalingSteps(doc: ResultDocument): ScalingStep[] {
  const out: ScalingStep[] = [];
  for (const t of doc.tests) {
    if (t.category !== 'scalability' || t.value === null || t.result === 'Skipped') continue;
    const d = details(t);
    const agents = n(d.agents);
    if (agents === undefined) continue;
    out.push({
      test: t,
      agents,
      efficiency: t.value,
      throughput: n(d.throughput),
      // What the step should have reached: N × the one-agent throughput (older documents: the offered rate).
      offered: n(d.idealThroughput) ?? n(d.offeredRate),
      ideal: n(d.idealThroughput) !== undefined,
      p95: n(obj(d.latencyMs)?.p95),
      memoryPerAgentMB: n(d.memoryPerAgentMB),
      cpuPerAgentPct: n(d.cpuPerAgentPct),
    });
  }
  return out.sort((a, b) => a.agents - b.agents);
}

const scalingKnee: Rule = {
  name: 'scaling-knee',
  category: 'scalability',
  description: 'the first pool size whose scaling efficiency is under the target',
  evaluate(doc) {
    const steps = scalingSteps(doc);
    const i = steps.findIndex((s) => s.efficiency < s.test.target.value);
    if (i < 0) return [];
    const s = steps[i]!;
    const prev = i > 0 ? steps[i - 1] : undefined;
    const base = obj(obj(details(s.test).base)?.latencyMs) ?? obj(details(s.test).baseLatencyMs);
    const evidence = [
      `${s.test.id}: efficiency ${num(s.efficiency)} % at ${s.agents} agents (target ${s.test.target.op}${s.test.target.value} %)`,
    ];
    if (s.throughput !== undefined && s.offered !== undefined) {
      evidence.push(`throughput ${num(s.throughput)} of ${num(s.offered)} tasks/s ${s.ideal ? '(N × T(1))' : 'offered'} at ${s.agents} agents`);
    }
    if (prev) evidence.push(`${prev.test.id}: ${num(prev.efficiency)} % at ${prev.agents} agents`);
    if (s.p95 !== undefined) {
      const from = prev?.p95 ?? n(base?.p95);
      evidence.push(`latency p95 ${num(s.p95)} ms at ${s.agents} agents${from !== undefined ? ` (${num(from)} ms at ${prev ? prev.agents : 1})` : ''}`);
    }
    const later = steps.slice(i + 1).filter((x) => x.efficiency < x.test.target.value);
    if (later.length) evidence.push(`also under target: ${later.map((x) => `${x.agents} agents (${num(x.efficiency)} %)`).join(', ')}`);
    const lag = obj(details(s.test).generatorLagMs);
    const lagged = lagging(lag);
    if (lagged) evidence.push(`the load generator lagged at this step (p99 ${num(n(lag?.p99))} ms): the runner's machine was saturated too`);
    const suggestion = prev
      ? `Plan for at most ${prev.agents} agents per pool on this platform, or find what saturates between ${prev.agents} and ${s.agents} agents` +
        (s.throughput !== undefined && s.offered !== undefined && s.p95 !== undefined
          ? ` (${s.ideal ? 'completed throughput stayed below N × T(1)' : 'served throughput stalled below the offered load'} while p95 latency grew, so tasks queue: CPU of the host, the agents' event loops, the dispatch path)`
          : '') +
        (lagged ? '; rerun with the runner on its own node to tell the system\'s limit from the host\'s.' : '.')
      : `Efficiency is under target from the smallest pool (${s.agents} agents): compare the step with the single-agent reference in ${s.test.id}'s details (base) to see where the pool loses work.`;
    return [
      {
        rule: 'scaling-knee',
        priority: 'HIGH',
        category: 'scalability',
        tests: [s.test.id, ...later.map((x) => x.test.id)],
        message: `Scaling efficiency falls under ${s.test.target.value} % at ${s.agents} agents${prev ? ` (${num(prev.efficiency)} % at ${prev.agents})` : ''}`,
        evidence,
        suggestion,
      },
    ];
  },
};

const gpuBatchCrossover: Rule = {
  name: 'gpu-batch-crossover',
  category: 'gpu',
  description: 'the batch size from which the GPU backend beats the CPU backend, or that it never does',
  evaluate(doc) {
    const t = test(doc, '2.1');
    if (!t || t.result === 'Skipped') return [];
    const rows = arr(details(t).perBatch)
      .map(obj)
      .map((r) => ({ batch: n(r?.batch), speedup: n(r?.speedup), gpu: n(r?.gpuP50Ms), cpu: n(r?.cpuP50Ms) }))
      .filter((r): r is { batch: number; speedup: number; gpu: number | undefined; cpu: number | undefined } => r.batch !== undefined && r.speedup !== undefined)
      .sort((a, b) => a.batch - b.batch);
    if (rows.length === 0) return [];
    const line = rows.map((r) => `batch ${r.batch}: ${num(r.speedup)}×`).join(', ');
    // The first batch from which the GPU wins at this and every larger batch.
    let from: number | null = null;
    for (let i = rows.length - 1; i >= 0 && rows[i]!.speedup > 1; i--) from = rows[i]!.batch;
    if (from === rows[0]!.batch) return [];
    const best = rows.reduce((a, b) => (b.speedup > a.speedup ? b : a));
    if (from === null) {
      return [
        {
          rule: 'gpu-batch-crossover',
          priority: 'HIGH',
          category: 'gpu',
          tests: ['2.1'],
          message: `The GPU backend never beats the CPU backend (best ${num(best.speedup)}× at batch ${best.batch})`,
          evidence: [`CPU p50 / GPU p50 by batch: ${line}`],
          suggestion: `Serve this model on the CPU backend, or measure larger batches (spec.gpu.batchSizes up to ${rows.at(-1)!.batch} so far) and a larger model (spec.gpu.model): transfers and kernel launches dominate a model this small.`,
        },
      ];
    }
    const below = rows.filter((r) => r.batch < from!);
    return [
      {
        rule: 'gpu-batch-crossover',
        priority: 'INFO',
        category: 'gpu',
        tests: ['2.1'],
        message: `The GPU backend beats the CPU backend from batch ${from}; below it the CPU is faster`,
        evidence: [`CPU p50 / GPU p50 by batch: ${line}`],
        suggestion: `Batch inference requests to at least ${from} before sending them to the GPU, or serve batches of ${below.map((r) => r.batch).join(', ')} on the CPU backend.`,
      },
    ];
  },
};

const LATENCY_UNITS: Record<string, number> = { ms: 1, 'ms/agent': 1, s: 1000 };

interface TailFinding {
  id: string;
  category: Category;
  label: string;
  n: number;
  p50: number;
  p99: number;
  unit: string;
  /** The p99 misses a latency target (`<`) that the judged statistic meets or not. */
  breaches: boolean;
}

const latencyTail: Rule = {
  name: 'latency-tail',
  category: 'any',
  description: `p99 at least ${TAIL_RATIO} × p50 (>= ${TAIL_MIN_SAMPLES} samples), with a tail that matters against the target`,
  evaluate(doc) {
    const found: TailFinding[] = [];
    for (const t of doc.tests) {
      const scale = LATENCY_UNITS[t.unit];
      const d = t.distribution;
      // Tests whose value is a latency, judged against an upper bound.
      if (scale !== undefined && d && (t.target.op === '<' || t.target.op === '<=')) {
        if (d.n < TAIL_MIN_SAMPLES || !(d.p50 > 0) || d.p99 / d.p50 < TAIL_RATIO) continue;
        const excessMs = (d.p99 - d.p50) * scale;
        const floor = Math.max(TAIL_MIN_EXCESS_MS, TAIL_MIN_SHARE_OF_TARGET * t.target.value * scale);
        if (excessMs < floor) continue;
        found.push({ id: t.id, category: t.category, label: `${t.id} ${t.name}`, n: d.n, p50: d.p50, p99: d.p99, unit: t.unit, breaches: d.p99 >= t.target.value });
        continue;
      }
      // Latency reported in the details of throughput tests (scaling steps, sustained load).
      const lat = obj(details(t).latencyMs);
      const p50 = n(lat?.p50);
      const p99 = n(lat?.p99);
      const count = n(lat?.n) ?? n(obj(details(t).counts)?.ok);
      if (p50 === undefined || p99 === undefined || count === undefined) continue;
      if (count < TAIL_MIN_SAMPLES || !(p50 > 0) || p99 / p50 < TAIL_RATIO || p99 - p50 < TAIL_MIN_EXCESS_UNTARGETED_MS) continue;
      const agents = n(details(t).agents);
      found.push({ id: t.id, category: t.category, label: `${t.id} task latency${agents !== undefined ? ` at ${agents} agents` : ''}`, n: count, p50, p99, unit: 'ms', breaches: false });
    }
    const byCat = new Map<Category, TailFinding[]>();
    for (const f of found) byCat.set(f.category, [...(byCat.get(f.category) ?? []), f]);
    return [...byCat].map(([category, fs]) => ({
      rule: 'latency-tail',
      priority: (fs.some((f) => f.breaches) ? 'HIGH' : 'MEDIUM') as Priority,
      category,
      tests: fs.map((f) => f.id),
      message: `Latency tails out of proportion in ${category}: ${fs.map((f) => f.id).join(', ')}`,
      evidence: fs.map(
        (f) =>
          `${f.label}: p50 ${num(f.p50)} ${f.unit}, p99 ${num(f.p99)} ${f.unit} (${num(f.p99 / f.p50)}× p50, n=${f.n})` +
          (f.breaches ? ': the p99 misses the target' : ''),
      ),
      suggestion:
        'A p99 this far above the median comes from pauses, not from the work: look for event-loop blocking and GC pauses in the agents ' +
        '(node --trace-gc, perf_hooks.monitorEventLoopDelay) and for CPU contention on the host (the load generator lag in the details); ' +
        'if users see p99, judge it: override the target on the p99 or lower the load.',
    }));
  },
};

const p95Drift: Rule = {
  name: 'p95-drift',
  category: 'stress',
  description: 'a window of the sustained-load test rose above the run\'s reference and the windows before it by more than its target',
  evaluate(doc) {
    const t = test(doc, '6.1');
    const d = details(t);
    const drift = n(d.driftPct);
    const target = n(d.driftTargetPct) ?? doc.targets.sustainedP95DriftPct;
    if (!t || drift === undefined || target === undefined || drift <= target) return [];
    const windows = arr(d.windows).map(obj).map((w) => n(w?.p95));
    const series = windows.filter((v): v is number => v !== undefined);
    const windowS = n(d.windowMs) !== undefined ? n(d.windowMs)! / 1000 : undefined;
    const rising = series.length >= 3 && series.every((v, i) => i === 0 || v >= series[i - 1]!);
    const evidence = [
      `p95 drift ${drift > 0 ? '+' : ''}${num(drift)} % in the worst window, against the run's reference and the windows before it (target < ${target} %)`,
      `p95 per ${windowS !== undefined ? `${num(windowS)} s ` : ''}window: ${series.map((v) => num(v)).join(', ')} ms`,
    ];
    const lo = Math.min(...series);
    const hi = Math.max(...series);
    const suggestion = rising
      ? 'The p95 rises window after window: something accumulates under constant load (queues, memory, connections, timers). ' +
        'Run 6.1 longer (spec.stress.sustainedDuration) while watching the agents\' memory and queue depth to find it.'
      : `The p95 goes up and down between windows (${num(lo)}–${num(hi)} ms) rather than climbing: the drift is variance (GC pauses, a busy host), not a trend. ` +
        'Lengthen the windows (longer sustainedDuration) so that each p95 has more samples, and check the host\'s load during the run.';
    return [
      {
        rule: 'p95-drift',
        priority: 'HIGH',
        category: 'stress',
        tests: ['6.1'],
        message: `p95 latency drifted ${drift > 0 ? '+' : ''}${num(drift)} % over the sustained load${rising ? ', rising in every window' : ''}`,
        evidence,
        suggestion,
      },
    ];
  },
};

const memoryPerAgent: Rule = {
  name: 'memory-per-agent',
  category: 'scalability',
  description: `memory per agent at the largest pool at least ${MEMORY_GROWTH_FACTOR} × the smallest per-agent figure (and ${MEMORY_GROWTH_MIN_MB} MB more)`,
  evaluate(doc) {
    const steps = scalingSteps(doc).filter((s) => s.memoryPerAgentMB !== undefined);
    if (steps.length < 2) return [];
    const last = steps.at(-1)!;
    const min = steps.reduce((a, b) => (b.memoryPerAgentMB! < a.memoryPerAgentMB! ? b : a));
    if (min === last) return [];
    const growth = last.memoryPerAgentMB! - min.memoryPerAgentMB!;
    if (last.memoryPerAgentMB! < MEMORY_GROWTH_FACTOR * min.memoryPerAgentMB! || growth < MEMORY_GROWTH_MIN_MB) return [];
    const from = steps.slice(steps.indexOf(min));
    const perPeerKB = (growth * 1024) / (last.agents - min.agents);
    return [
      {
        rule: 'memory-per-agent',
        priority: last.memoryPerAgentMB! >= 2 * min.memoryPerAgentMB! ? 'HIGH' : 'MEDIUM',
        category: 'scalability',
        tests: from.map((s) => s.test.id),
        message: `Memory per agent grows with the pool: ${num(min.memoryPerAgentMB)} MB at ${min.agents} agents, ${num(last.memoryPerAgentMB)} MB at ${last.agents}`,
        evidence: [
          `memory per agent by pool size: ${steps.map((s) => `${s.agents}: ${num(s.memoryPerAgentMB)} MB`).join(', ')}`,
          `+${num(perPeerKB)} KB per agent for each agent added to the pool, so the pool's memory grows with the square of its size`,
        ],
        suggestion:
          'Each agent keeps state per peer (membership entries, connections, buffers): bound it (partial membership views, pooled connections) ' +
          'or size nodes for the largest pool you plan, since per-agent memory will keep rising with it.',
      },
    ];
  },
};

const earlyShedding: Rule = {
  name: 'early-shedding',
  category: 'stress',
  description: 'load shedding (429) at a load the pool is meant to serve, or before it reaches its own capacity under overload',
  evaluate(doc) {
    const out: Recommendation[] = [];
    // (a) 429s in steps whose offered load is the normal one (sustained load). Scaling steps drive
    // the pool to saturation and the spike goes beyond the small pool on purpose: there 429s are
    // what saturation looks like, not early shedding.
    const seen: { t: TestResult; rejected: number; offered: number; rate?: number }[] = [];
    for (const t of doc.tests) {
      if (t.id !== '6.1') continue;
      const d = details(t);
      const counts = [obj(d.counts), ...arr(d.trials).map((x) => obj(obj(x)?.counts))].filter((c): c is Obj => c !== undefined);
      const rejected = counts.reduce((a, c) => a + (n(c.rejected) ?? 0), 0);
      const offered = counts.reduce((a, c) => a + (n(c.offered) ?? 0), 0);
      if (offered > 0 && rejected / offered >= SHED_MIN_FRACTION) seen.push({ t, rejected, offered, rate: n(d.offeredRate) });
    }
    if (seen.length) {
      const cats = [...new Set(seen.map((s) => s.t.category))];
      out.push({
        rule: 'early-shedding',
        priority: seen.some((s) => s.t.category === 'stress') ? 'HIGH' : 'MEDIUM',
        category: cats.includes('stress') ? 'stress' : 'scalability',
        tests: seen.map((s) => s.t.id),
        message: `Load shedding sets in below the offered load: ${seen.map((s) => s.t.id).join(', ')} answered 429 at loads they are sized to serve`,
        evidence: seen.map(
          (s) => `${s.t.id}: ${s.rejected} of ${s.offered} tasks (${num((100 * s.rejected) / s.offered)} %) answered 429${s.rate !== undefined ? ` at ${num(s.rate)} tasks/s offered` : ''}`,
        ),
        suggestion:
          'The agents reject work they should accept: raise spec.agents.capacity (concurrent tasks per agent) or check that the agents\' admission limit counts only running tasks; ' +
          'if the dispatch path sends everything to a few agents, 1.5\'s per-agent spread shows it.',
      });
    }
    // (b) Under overload (6.3): accepted work per second against the pool's own capacity.
    const t = test(doc, '6.3');
    const d = details(t);
    const counts = obj(d.counts);
    const accepted = n(counts?.accepted);
    const seconds = n(d.overloadSeconds);
    const capacityRate = n(d.capacityRate);
    if (t && accepted !== undefined && seconds && capacityRate && n(counts?.rejected)) {
      const acceptedRate = accepted / seconds;
      if (acceptedRate < SHED_MIN_CAPACITY_SHARE * capacityRate) {
        out.push({
          rule: 'early-shedding',
          priority: 'HIGH',
          category: 'stress',
          tests: ['6.3'],
          message: `Under overload the pool sheds before it is full: it accepted ${num(acceptedRate)} tasks/s of a capacity of ${num(capacityRate)} tasks/s`,
          evidence: [
            `6.3: ${accepted} tasks accepted in ${num(seconds)} s of overload (${num(acceptedRate)} tasks/s), ${n(counts?.rejected)} answered 429, offered ${num(n(d.offeredRate))} tasks/s`,
            `capacity ${num(capacityRate)} tasks/s = ${num(n(d.agents))} agents × ${num(n(d.capacityPerAgent))} concurrent tasks / ${num(n(d.taskMs))} ms per task`,
          ],
          suggestion:
            'The admission limit trips below the configured concurrency: check how the agents count in-flight tasks (finished tasks released late, retries counted twice) ' +
            'and that the limit matches spec.agents.capacity.',
        });
      }
    }
    return out;
  },
};

const scrapeNearInterval: Rule = {
  name: 'scrape-near-interval',
  category: 'monitoring',
  description: `Prometheus scrape duration p95 at least ${SCRAPE_SHARE_MEDIUM * 100} % of the scrape interval`,
  evaluate(doc) {
    const t = test(doc, '3.2');
    const d = details(t);
    const interval = n(d.scrapeIntervalMs);
    if (!t || t.value === null || !interval) return [];
    const share = t.value / interval;
    const max = t.distribution?.max;
    const overran = max !== undefined && max >= interval;
    if (share < SCRAPE_SHARE_MEDIUM && !overran) return [];
    const samples = n(details(test(doc, '3.5')).samplesPerScrapeP50);
    const evidence = [
      `3.2: scrape duration p95 ${num(t.value)} ms of a ${num(interval)} ms interval (${num(share * 100)} %)${max !== undefined ? `, max ${num(max)} ms` : ''}`,
    ];
    if (n(d.targets) !== undefined) evidence.push(`${n(d.targets)} targets${samples !== undefined ? `, ${num(samples)} samples per scrape (p50)` : ''}`);
    return [
      {
        rule: 'scrape-near-interval',
        priority: share >= SCRAPE_SHARE_HIGH || overran ? 'HIGH' : 'MEDIUM',
        category: 'monitoring',
        tests: ['3.2'],
        message: `Scrapes take ${num(share * 100)} % of the scrape interval: they will start to overlap or time out`,
        evidence,
        suggestion: `Lengthen the scrape interval to at least ${(Math.ceil((2 * t.value) / 100) / 10).toFixed(1)} s (twice the p95; spec.prometheus.scrapeInterval) or make /metrics cheaper (fewer series and labels per agent, no per-request histograms).`,
      },
    ];
  },
};

const gpuNotUsed: Rule = {
  name: 'gpu-not-used',
  category: 'gpu',
  description: 'the neural speedup test was skipped because no GPU was really used',
  evaluate(doc) {
    const t = test(doc, '2.1');
    if (!t || t.result !== 'Skipped') return [];
    const d = details(t);
    const inUse = d.gpuInUse ?? doc.environment.inference?.gpuInUse;
    if (inUse === true) return [];
    const backend = typeof d.backend === 'string' ? d.backend : doc.environment.inference?.backend;
    const attempts = arr(d.backendAttempts).map(obj).filter((a): a is Obj => a !== undefined);
    const gpuAttempt = attempts.find((a) => a.name === 'tensorflow-gpu');
    const notInstalled = gpuAttempt === undefined || (gpuAttempt.ok !== true && /not installed/.test(String(gpuAttempt.reason ?? '')));
    const evidence = [`2.1 skipped: ${t.reason ?? 'no GPU in use'}`];
    for (const a of attempts) evidence.push(`backend ${String(a.name)}: ${a.ok === true ? 'loaded' : `not used (${String(a.reason ?? 'unknown')})`}`);
    if (notInstalled) {
      return [
        {
          rule: 'gpu-not-used',
          priority: 'INFO',
          category: 'gpu',
          tests: ['2.1'],
          message: `No GPU backend on this machine: the neural speedup (2.1) was not measured; 2.2–2.5 measured ${backend ?? 'the CPU backend'}`,
          evidence,
          suggestion:
            'To measure 2.1, run the gpu category on a GPU node with the GPU image (tfjs-node-gpu, CUDA 11.x, cuDNN 8): set spec.gpu.nodeSelector and resources.limits nvidia.com/gpu.',
        },
      ];
    }
    return [
      {
        rule: 'gpu-not-used',
        priority: 'HIGH',
        category: 'gpu',
        tests: ['2.1'],
        message: 'A GPU backend was there but inference did not run on the GPU',
        evidence,
        suggestion:
          'tfjs-node-gpu falls back to the CPU silently: check that the image has CUDA 11.x and cuDNN 8 on its library path, that the pod got the device (nvidia.com/gpu limit, device plugin) ' +
          'and that nvidia-smi works in the container.',
      },
    ];
  },
};

const runnerSaturated: Rule = {
  name: 'runner-saturated',
  category: 'any',
  description: `the load generator lagged behind its schedule (p50 > ${LAG_P50_MS} ms or p99 > ${LAG_P99_MS} ms), so figures include the runner's own delay`,
  evaluate(doc) {
    const hits: { t: TestResult; p50: number; p99: number }[] = [];
    for (const t of doc.tests) {
      const d = details(t);
      const lags = [obj(d.generatorLagMs), ...arr(d.trials).map((x) => obj(obj(x)?.generatorLagMs))].filter((l): l is Obj => l !== undefined);
      const worst = lags.filter(lagging).sort((a, b) => (n(b.p99) ?? 0) - (n(a.p99) ?? 0))[0];
      if (worst) hits.push({ t, p50: n(worst.p50) ?? 0, p99: n(worst.p99) ?? 0 });
    }
    if (!hits.length) return [];
    const cats = [...new Set(hits.map((h) => h.t.category))];
    return [
      {
        rule: 'runner-saturated',
        priority: 'MEDIUM',
        category: cats[0]!,
        tests: hits.map((h) => h.t.id),
        message: `The load generator fell behind in ${hits.map((h) => h.t.id).join(', ')}: those figures include the runner machine's own delay`,
        evidence: hits.map((h) => `${h.t.id}: generator lag p50 ${num(h.p50)} ms, p99 ${num(h.p99)} ms`),
        suggestion:
          `The machine running the load was saturated (${doc.environment.cpus} CPUs shared by the runner and the agents here). ` +
          'Run the runner on a node of its own, or lower the offered load (spec.agents.ratePerAgent, the largest spec.agents.steps) so that one generator keeps its schedule.',
      },
    ];
  },
};

function lagging(l: Obj | undefined): boolean {
  if (!l) return false;
  return (n(l.p50) ?? 0) > LAG_P50_MS || (n(l.p99) ?? 0) > LAG_P99_MS;
}

export const RULES: readonly Rule[] = [
  scalingKnee,
  gpuBatchCrossover,
  latencyTail,
  p95Drift,
  memoryPerAgent,
  earlyShedding,
  scrapeNearInterval,
  gpuNotUsed,
  runnerSaturated,
];

const PRIORITY_ORDER: Record<Priority, number> = { HIGH: 0, MEDIUM: 1, INFO: 2 };

/** Runs every rule over the document: recommendations by priority, then category, then test. */
export function recommend(doc: ResultDocument, rules: readonly Rule[] = RULES): Recommendation[] {
  const out = rules.flatMap((r) => r.evaluate(doc));
  const catIndex = (c: Category) => CATEGORIES.indexOf(c);
  return out.sort(
    (a, b) =>
      PRIORITY_ORDER[a.priority] - PRIORITY_ORDER[b.priority] ||
      catIndex(a.category) - catIndex(b.category) ||
      (a.tests[0] ?? '').localeCompare(b.tests[0] ?? '', 'en', { numeric: true }),
  );
}
