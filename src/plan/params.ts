/**
 * Resolves a spec into concrete parameters: mode defaults, then the user's overrides.
 *
 * Quick mode is sized to finish all 27 tests within 5 minutes on a 2-core machine; full mode uses
 * the suite's sizes (pools up to 1000 agents, 10 minutes of sustained load). Mode changes sizes
 * and durations, never which tests run.
 */
import { z } from 'zod';
import { CATEGORIES, Category, defectList, Mode, parseDuration, ResourceRequirements, Targets, type BenchmarkRunSpec } from '../api/schema.ts';
import { formatErrors, zodErrors } from '../api/validate.ts';
import { errorMessage } from '../errors.ts';
import { DEFAULT_TARGETS } from './catalogue.ts';

/**
 * The resolved parameters of an attempt: what crosses from the operator to each runner (the params
 * ConfigMap, `SWARMBENCH_PARAMS`) and from `swarmbench run` to its runner processes (a file). The
 * zod schema is the one definition: the type is inferred from it, and every reader parses with
 * `parseParams`, so a truncated or foreign document is refused naming the field, never half-used.
 */
const int = (min: number) => z.number().int().min(min);
export const Params = z
  .object({
    mode: Mode,
    categories: z.array(Category),
    trials: int(1),
    targets: Targets.required(),
    agents: z.object({
      image: z.string().min(1),
      poolSize: int(1),
      steps: z.array(int(1)),
      taskMix: z.object({ io: z.number().min(0), cpu: z.number().min(0) }),
      ioTaskMs: z.number().min(0),
      cpuTaskRounds: int(0),
      capacity: int(1),
      ratePerAgent: z.number().min(0),
      agentsPerProcess: int(1),
      /**
       * Kubernetes: agents per pod (`spec.agents.agentsPerPod`, 1..100). Defaults to 1 when absent,
       * so the params an older operator froze for an attempt still parse.
       */
      agentsPerPod: int(1).max(100).default(1),
      /** Seconds of offered load per scalability step (after a warm-up of a quarter of it). */
      stepSeconds: z.number().positive(),
      /** Agents added in the spawn-latency test (1.2). */
      spawnBatch: int(1),
      /** Upper bound on the tasks of one 1.5 batch (1.5 sends 4 per agent per batch, so chance placement fails; bench/distributed/balance.ts). */
      balanceTasks: int(1),
      gossipIntervalMs: z.number().positive(),
      failureTimeoutMs: z.number().positive(),
      /** Defect profiles every agent of every pool runs with (`spec.agents.defects`; none by default). */
      defects: defectList('agent').default([]),
      /** The agent container's resources (`spec.agents.resources`): requests and limits of each agent pod. */
      resources: ResourceRequirements.optional(),
    }),
    gpu: z.object({
      model: z.enum(['small', 'medium', 'large']),
      batchSizes: z.array(int(1)),
      backend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']),
      /** Iterations of the memory test (2.3) and seconds of the sustained test (2.5). */
      memoryIterations: int(1),
      sustainedSeconds: z.number().positive(),
      /** Defect profiles of the inference backend (`spec.gpu.defects`; none by default). */
      defects: defectList('inference').default([]),
    }),
    monitoring: z.object({
      prometheusUrl: z.string().nullable(),
      scrapeIntervalMs: z.number().positive(),
      /** Seconds the dashboard stream and the metrics volume are observed. */
      observeSeconds: z.number().positive(),
      extraQueries: z.array(z.object({ name: z.string(), query: z.string(), unit: z.string().optional() })),
    }),
    integration: z.object({ workflowSteps: int(1), concurrentWorkflows: int(1) }),
    stress: z.object({
      sustainedMs: z.number().positive(),
      sustainedAgents: int(1),
      spikeFrom: int(1),
      spikeTo: int(1),
      overloadFactor: z.number().positive(),
      /** Window length for drift (first vs last window) in the sustained test. */
      windowMs: z.number().positive(),
    }),
  });
export type Params = z.infer<typeof Params>;

/**
 * Reads parameters that crossed a process or API boundary (JSON text). Throws an Error whose
 * message names `source` and every bad field; a valid document comes back as `Params`.
 */
export function parseParams(text: string, source: string): Params {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${source}: the parameters are not JSON: ${errorMessage(err)}`);
  }
  const r = Params.safeParse(json);
  if (!r.success) throw new Error(`${source}: invalid parameters:\n${formatErrors(zodErrors(r.error, ['params']))}`);
  return r.data;
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
    agentsPerPod: 1,
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
    agentsPerPod: 1,
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
      agentsPerPod: a.agentsPerPod ?? d.agents.agentsPerPod,
      stepSeconds: d.agents.stepSeconds,
      spawnBatch: d.agents.spawnBatch,
      balanceTasks: d.agents.balanceTasks,
      gossipIntervalMs: 100,
      failureTimeoutMs: 1500,
      defects: a.defects ?? [],
      ...(a.resources ? { resources: a.resources } : {}),
    },
    gpu: {
      model: g.model ?? d.gpu.model,
      batchSizes: g.batchSizes ?? d.gpu.batchSizes,
      backend: g.backend ?? 'auto',
      memoryIterations: d.gpu.memoryIterations,
      sustainedSeconds: d.gpu.sustainedSeconds,
      defects: g.defects ?? [],
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
