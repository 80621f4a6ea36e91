/**
 * Resolves a spec into concrete parameters: mode defaults, then the user's overrides.
 *
 * Quick mode is sized to finish all 27 tests within 5 minutes on a 2-core machine; full mode uses
 * the suite's sizes (pools up to 1000 agents, 10 minutes of sustained load). Mode changes sizes
 * and durations, never which tests run.
 */
import { CATEGORIES, parseDuration, type BenchmarkRunSpec, type Category, type Mode } from '../api/schema.ts';
import { DEFAULT_TARGETS } from './catalogue.ts';
import type { Targets } from '../api/schema.ts';

export interface Params {
  mode: Mode;
  categories: Category[];
  trials: number;
  targets: Required<Targets>;
  agents: {
    image: string;
    poolSize: number;
    steps: number[];
    taskMix: { io: number; cpu: number };
    ioTaskMs: number;
    cpuTaskRounds: number;
    capacity: number;
    ratePerAgent: number;
    agentsPerProcess: number;
    /** Seconds of offered load per scalability step (after a warm-up of a quarter of it). */
    stepSeconds: number;
    /** Agents added in the spawn-latency test (1.2). */
    spawnBatch: number;
    /** Tasks dispatched in the load-balancing test (1.5). */
    balanceTasks: number;
    gossipIntervalMs: number;
    failureTimeoutMs: number;
  };
  gpu: {
    model: 'small' | 'medium' | 'large';
    batchSizes: number[];
    backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
    /** Iterations of the memory test (2.3) and seconds of the sustained test (2.5). */
    memoryIterations: number;
    sustainedSeconds: number;
  };
  monitoring: {
    prometheusUrl: string | null;
    scrapeIntervalMs: number;
    /** Seconds the dashboard stream and the metrics volume are observed. */
    observeSeconds: number;
    extraQueries: { name: string; query: string; unit?: string | undefined }[];
  };
  integration: { workflowSteps: number; concurrentWorkflows: number };
  stress: {
    sustainedMs: number;
    sustainedAgents: number;
    spikeFrom: number;
    spikeTo: number;
    overloadFactor: number;
    /** Window length for drift (first vs last window) in the sustained test. */
    windowMs: number;
  };
}

const QUICK = {
  trials: 5,
  agents: {
    poolSize: 8,
    steps: [4, 8, 16, 32, 64],
    stepSeconds: 4,
    spawnBatch: 8,
    balanceTasks: 400,
    agentsPerProcess: 8,
  },
  gpu: { model: 'small' as const, batchSizes: [1, 8, 32, 128], memoryIterations: 200, sustainedSeconds: 6 },
  monitoring: { observeSeconds: 4 },
  integration: { workflowSteps: 5, concurrentWorkflows: 20 },
  stress: { sustainedMs: 20_000, sustainedAgents: 20, spikeFrom: 4, spikeTo: 20, overloadFactor: 4 },
};

const FULL = {
  trials: 10,
  agents: {
    poolSize: 50,
    steps: [10, 50, 100, 500, 1000],
    stepSeconds: 20,
    spawnBatch: 10,
    balanceTasks: 5000,
    agentsPerProcess: 25,
  },
  gpu: { model: 'small' as const, batchSizes: [1, 8, 32, 128, 512], memoryIterations: 2000, sustainedSeconds: 60 },
  monitoring: { observeSeconds: 30 },
  integration: { workflowSteps: 8, concurrentWorkflows: 100 },
  stress: { sustainedMs: 600_000, sustainedAgents: 100, spikeFrom: 10, spikeTo: 100, overloadFactor: 4 },
};

export function resolveParams(spec: BenchmarkRunSpec, overrideCategories?: Category[]): Params {
  const mode = spec.mode ?? 'quick';
  const d = mode === 'quick' ? QUICK : FULL;
  const a = spec.agents ?? {};
  const g = spec.gpu ?? {};
  const s = spec.stress ?? {};
  const sustainedMs = s.sustainedDuration ? parseDuration(s.sustainedDuration) : d.stress.sustainedMs;
  const categories = overrideCategories ?? spec.categories ?? [...CATEGORIES];
  return {
    mode,
    categories: CATEGORIES.filter((c) => categories.includes(c)),
    trials: spec.trials ?? d.trials,
    targets: { ...DEFAULT_TARGETS, ...(spec.targets ?? {}) },
    agents: {
      image: a.image ?? 'local',
      poolSize: a.poolSize ?? d.agents.poolSize,
      steps: a.steps ?? d.agents.steps,
      taskMix: a.taskMix ?? { io: 0.8, cpu: 0.2 },
      ioTaskMs: a.ioTaskMs ?? 20,
      cpuTaskRounds: a.cpuTaskRounds ?? 200,
      capacity: a.capacity ?? 64,
      ratePerAgent: a.ratePerAgent ?? 10,
      agentsPerProcess: a.agentsPerProcess ?? d.agents.agentsPerProcess,
      stepSeconds: d.agents.stepSeconds,
      spawnBatch: d.agents.spawnBatch,
      balanceTasks: d.agents.balanceTasks,
      gossipIntervalMs: 100,
      failureTimeoutMs: 1500,
    },
    gpu: {
      model: g.model ?? d.gpu.model,
      batchSizes: g.batchSizes ?? d.gpu.batchSizes,
      backend: g.backend ?? 'auto',
      memoryIterations: d.gpu.memoryIterations,
      sustainedSeconds: d.gpu.sustainedSeconds,
    },
    monitoring: {
      prometheusUrl: spec.prometheus?.url ?? null,
      scrapeIntervalMs: spec.prometheus?.scrapeInterval ? parseDuration(spec.prometheus.scrapeInterval) : 1000,
      observeSeconds: d.monitoring.observeSeconds,
      extraQueries: spec.prometheus?.queries ?? [],
    },
    integration: d.integration,
    stress: {
      sustainedMs,
      sustainedAgents: s.sustainedAgents ?? d.stress.sustainedAgents,
      spikeFrom: s.spikeFrom ?? d.stress.spikeFrom,
      spikeTo: s.spikeTo ?? d.stress.spikeTo,
      overloadFactor: s.overloadFactor ?? d.stress.overloadFactor,
      windowMs: Math.max(2000, Math.min(60_000, Math.floor(sustainedMs / 5))),
    },
  };
}
