/**
 * The observations of a result document: what Prometheus saw during each step's window
 * (src/operator/observe.ts). Part of the API, kept apart from schema.ts (which re-exports it) to
 * keep files small; depends on nothing but zod.
 */
import { z } from 'zod';


export const ObservationSource = z.enum(['kubelet', 'agent', 'prometheus', 'dcgm', 'spec']);
export const ObservationStatistic = z.enum(['max', 'avg', 'p95', 'rate', 'last', 'min']);

/** One figure over a step's window. `value` is null exactly when `reason` says why: never a made-up zero. */
export const ObservedMetric = z.object({
  name: z.string(),
  unit: z.string(),
  value: z.number().nullable(),
  /** How the samples of the window were reduced to `value` (docs/operator.md "Observations"). */
  statistic: ObservationStatistic,
  source: ObservationSource,
  /** The PromQL sent (instant queries are evaluated at the window's end). */
  query: z.string(),
  reason: z.string().optional(),
  /** How the figure was obtained where it is not obvious (fallbacks, approximations). */
  note: z.string().optional(),
  /** Per series (extra queries with several series; at most 20). */
  series: z
    .array(z.object({ labels: z.record(z.string(), z.string()), points: z.number().int(), avg: z.number().nullable(), max: z.number().nullable(), last: z.number().nullable() }))
    .optional(),
});
export type ObservedMetric = z.infer<typeof ObservedMetric>;

export const StepObservation = z.object({
  step: z.string(),
  category: z.string(),
  window: z.object({ start: z.string(), end: z.string(), stepSeconds: z.number().positive().optional() }),
  /** Why the step has no figures at all (e.g. its window is not valid). */
  reason: z.string().optional(),
  /** Where the agent CPU and memory figures came from: the kubelet's container metrics or the agents' own. */
  resourceSource: z.enum(['kubelet', 'agent']).optional(),
  /** The label matchers that select this step's agents. */
  agentSelector: z.string().optional(),
  metrics: z.array(ObservedMetric),
  /** Agent memory and CPU grouped by how many agents were up at each evaluation step of the window. */
  byPoolSize: z
    .array(z.object({ agents: z.number().int().min(1), points: z.number().int().min(1), memoryBytes: z.number().nullable(), cpuCores: z.number().nullable() }))
    .optional(),
});
export type StepObservation = z.infer<typeof StepObservation>;

export const Observations = z.object({
  prometheus: z.object({ url: z.string().nullable(), available: z.boolean(), reason: z.string().optional() }),
  /** Empty when Prometheus is not available (the reason is in `prometheus.reason`). */
  steps: z.array(StepObservation),
});
export type Observations = z.infer<typeof Observations>;

