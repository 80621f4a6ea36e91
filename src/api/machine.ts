/**
 * What a result document says of the machine a run ran on: the CPUs a process could use, the
 * process that ran each step, and what else the host did meanwhile. Part of the API, kept apart
 * from schema.ts (which re-exports it) to keep files small; depends on nothing but zod.
 */
import { z } from 'zod';

/**
 * The CPUs a process could use (src/report/cpuset.ts): Node's availableParallelism, the process's
 * CPU affinity (Linux `Cpus_allowed_list`) and its count, the cgroup CPU quota in CPUs where one
 * is set and readable, and the effective figure, the smallest of them.
 */
export const CpuSetSchema = z.object({
  availableParallelism: z.number().int().min(0),
  affinity: z.string().optional(),
  affinityCpus: z.number().int().min(0).optional(),
  quotaCpus: z.number().min(0).optional(),
  quotaSource: z.string().optional(),
  effectiveCpus: z.number().min(0),
});

/**
 * The process that ran one step (src/report/machine.ts `thisMachine`, written by
 * src/runner/step.ts into its StepResult): the Kubernetes node (`NODE_NAME`) or, locally, the
 * hostname; the process's own hostname (the pod's name in a cluster); Node.js version, OS, CPUs
 * and memory as that process saw them; its CPU set and cgroup memory limit where readable.
 */
export const RunnerEnvironment = z.object({
  nodeName: z.string(),
  hostname: z.string(),
  /** Node.js version (as `Environment.node`). */
  node: z.string(),
  os: z.string(),
  arch: z.string(),
  cpus: z.number().int().min(0),
  cpuModel: z.string(),
  /** The machine's memory (os.totalmem: in a container, the node's). */
  memoryBytes: z.number().min(0),
  /** The cgroup memory limit of the process, where one is set and readable. */
  memoryLimitBytes: z.number().min(0).optional(),
  cpuSet: CpuSetSchema.optional(),
});
export type RunnerEnvironment = z.infer<typeof RunnerEnvironment>;

/**
 * What the host did during a local run (src/report/hostload.ts): CPUs busy in all, the run's
 * own share, what other processes used (`otherCpus`, `otherPct` of the host's CPUs; on a
 * virtual machine the hypervisor's steal is part of it and also given alone, `stealCpus`,
 * `stealPct`), and the one-minute load average at the start and end.
 * Contention shows here, not only in the figures.
 */
export const HostLoadSchema = z.object({
  wallSeconds: z.number().min(0),
  hostCpus: z.number().int().min(0),
  busyCpus: z.number().min(0),
  ownCpus: z.number().min(0),
  otherCpus: z.number().min(0),
  otherPct: z.number().min(0),
  loadavg1: z.object({ start: z.number().min(0), end: z.number().min(0) }),
  /** Of `otherCpus`, the hypervisor's steal (virtual machines; absent where /proc/stat has no such field). */
  stealCpus: z.number().min(0).optional(),
  stealPct: z.number().min(0).optional(),
});
