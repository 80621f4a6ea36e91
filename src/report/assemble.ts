/**
 * The one result assembly, used by `swarmbench run` (cli/run.ts) and by the operator
 * (operator/finish.ts): step results → judged tests (verdict.ts) → the result document
 * (document.ts) with its environment and, in a cluster, the Prometheus observations → the
 * baseline comparison, summary and recommendations → the export files (exports.ts). Pure: every
 * input is given, nothing is read here, so both modes produce the same document from the same
 * measurements. Every document carries its fingerprint (fingerprint.ts). A baseline that was not
 * measured alike is not compared unless `baseline.force`: the document is then complete without
 * the comparison, and `comparisonRefusal(doc, baseline)` says why.
 */
import type { Environment, Observations, ResultDocument, RunnerEnvironment, StepResult } from '../api/schema.ts';
import type { Params } from '../plan/params.ts';
import type { CpuSet } from './cpuset.ts';
import type { HostLoad } from './hostload.ts';
import { buildResultDocument, completeDocument } from './document.ts';
import { ComparisonRefusedError, fingerprintOf } from './fingerprint.ts';
import { thisMachine } from './machine.ts';
import { judgeAll } from './verdict.ts';

export interface AssembleInput {
  run: { name: string; namespace?: string | undefined; attempt: number };
  params: Params;
  startedAt: string;
  finishedAt: string;
  /** The result documents of the steps that wrote one. */
  steps: readonly StepResult[];
  /** Per category: why it has no (complete) result. Its tests without a measurement fail with it. */
  failures: Record<string, string>;
  environment: Environment;
  /** Prometheus over each step's window (the operator's; absent locally). */
  observations?: Observations;
  /** An earlier result document to compare with, whether a regression fails the verdict, and whether to compare one not measured alike. */
  baseline?: { doc?: ResultDocument | undefined; pool?: readonly ResultDocument[] | undefined; source?: string | undefined; failOnRegression: boolean; force?: boolean | undefined };
  /** The runner nodes' labels by node name, where the caller knows them (for the fingerprint). */
  nodeLabels?: Record<string, Record<string, string>>;
}

export function assembleResult(input: AssembleInput): ResultDocument {
  const measurements = input.steps.flatMap((s) => s.measurements);
  // A step that wrote a result but could not finish its category says why in `error`.
  const stepErrors = Object.fromEntries(input.steps.filter((s) => s.error).map((s) => [s.category, s.error!]));
  const tests = judgeAll(measurements, input.params, { ...stepErrors, ...input.failures });
  const built = buildResultDocument({
    name: input.run.name,
    ...(input.run.namespace ? { namespace: input.run.namespace } : {}),
    attempt: input.run.attempt,
    params: input.params,
    startedAt: input.startedAt,
    finishedAt: input.finishedAt,
    tests,
    environment: input.environment,
  });
  const fingerprint = fingerprintOf(built, { params: input.params, ...(input.nodeLabels ? { nodeLabels: input.nodeLabels } : {}) });
  const doc = { ...built, ...(input.observations ? { observations: input.observations } : {}), fingerprint };
  const b = input.baseline;
  try {
    return completeDocument(doc, {
      ...(b?.doc ? { baseline: b.doc } : {}),
      ...(b ? { compare: { failOnRegression: b.failOnRegression, ...(b.source ? { source: b.source } : {}), ...(b.force ? { force: true } : {}), ...(b.pool?.length ? { pool: b.pool } : {}) } } : {}),
    });
  } catch (err) {
    if (err instanceof ComparisonRefusedError) return completeDocument(doc);
    throw err;
  }
}

export interface EnvironmentInput {
  params: Params;
  steps: readonly StepResult[];
  /** SwarmBench's version (version.ts). */
  version: string;
  /** The image the agents ran when the spec says `local` (the operator's own image); locally `local`. */
  ownAgentImage?: string;
  /**
   * What ran as the agents when it was not the spec's image (`swarmbench run --agent-command` or
   * `--agent-url`: platform/local/source.ts `agentsRan`). Default: from the spec's image.
   */
  agents?: NonNullable<Environment['agents']>;
  /** The run's CPU set (cpuset.ts); a local run reads its own when none is given. */
  cpuSet?: CpuSet;
  /** What the host did during the run (hostload.ts), where the caller measured it. */
  hostLoad?: HostLoad;
}

/** An image reference's pinned digest (`name@sha256:...`), if it has one. */
export function imageDigest(image: string): string | undefined {
  const m = /@(sha256:[0-9a-f]{64})$/.exec(image);
  return m ? m[1] : undefined;
}

/**
 * Where a run ran. Locally: this machine (machine.ts: OS, CPUs, memory). In a cluster: the runner
 * processes, never the operator's own: `hostname` lists the distinct nodes the steps name, the
 * machine figures (Node version, OS, CPUs, memory) are those of the runner environment most steps
 * reported (the first such step's on a tie), and `runners` lists every distinct runner
 * environment with its steps. Step results without an environment (written before it was
 * recorded) leave those figures unknown (`unknown`, 0), not the operator's. Both: the agents'
 * image as deployed and what ran as the agents (`agents`: the reference agent, an image with its
 * digest where the reference pins one, or locally the user's command or URLs), the inference
 * backend the GPU step really used, and how monitoring was observed. Locally also the run's CPU
 * set (cpuset.ts).
 */
export function environmentOf(platform: 'local' | 'kubernetes', input: EnvironmentInput): Environment {
  const { params, steps } = input;
  const image = params.agents.image === 'local' && input.ownAgentImage ? input.ownAgentImage : params.agents.image;
  const machine = platform === 'local' ? thisMachine() : undefined;
  const runners = platform === 'kubernetes' ? runnersOf(steps) : [];
  const main = machine ?? mostCommon(runners);
  const host: Omit<Environment, 'platform' | 'agentImage' | 'swarmbenchVersion'> = {
    node: main?.node ?? 'unknown',
    os: main?.os ?? 'unknown',
    arch: main?.arch ?? 'unknown',
    hostname: machine ? machine.hostname : [...new Set(steps.map((s) => s.environment?.nodeName ?? s.node))].join(',') || 'unknown',
    cpus: main?.cpus ?? 0,
    cpuModel: main?.cpuModel ?? 'unknown (the steps did not report their environment)',
    memoryBytes: main?.memoryBytes ?? 0,
  };
  const inference = inferenceOf(steps);
  const digest = imageDigest(image);
  const agents: NonNullable<Environment['agents']> =
    input.agents ??
    (params.agents.image === 'local'
      ? { kind: 'reference', image, ...(digest ? { digest } : {}) }
      : { kind: 'image', image, ...(digest ? { digest } : {}) });
  const cpuSet = input.cpuSet ?? machine?.cpuSet;
  return {
    platform,
    ...host,
    // A command or URLs ran no image: `agents` says what did.
    agentImage: agents.kind === 'command' || agents.kind === 'urls' ? 'none' : image,
    swarmbenchVersion: input.version,
    agents,
    ...(cpuSet ? { cpuSet } : {}),
    ...(runners.length > 0 ? { runners } : {}),
    ...(input.hostLoad ? { hostLoad: input.hostLoad } : {}),
    ...(inference ? { inference } : {}),
    ...(params.categories.includes('monitoring')
      ? { prometheus: { url: params.monitoring.prometheusUrl, mode: params.monitoring.prometheusUrl ? ('prometheus' as const) : ('direct-scrape' as const) } }
      : {}),
  };
}

type Runner = NonNullable<Environment['runners']>[number];

/**
 * The distinct runner environments of the steps that reported one, each with its steps, in the
 * order of their first step. Two steps share an entry when every figure but the hostname (the
 * pod's name, one per Job) is the same; the entry's hostname is its first step's.
 */
function runnersOf(steps: readonly StepResult[]): Runner[] {
  const byKey = new Map<string, Runner>();
  for (const s of steps) {
    const e = s.environment;
    if (!e) continue;
    const key = JSON.stringify({ ...e, hostname: '' }, (_k, v: unknown) =>
      v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v,
    );
    const cur = byKey.get(key);
    if (cur) cur.steps.push(s.step);
    else byKey.set(key, { ...e, steps: [s.step] });
  }
  return [...byKey.values()];
}

/** The runner environment most steps ran in; the first of them on a tie. */
function mostCommon(runners: readonly Runner[]): RunnerEnvironment | undefined {
  return runners.reduce<Runner | undefined>((best, r) => (best === undefined || r.steps.length > best.steps.length ? r : best), undefined);
}

/** The inference backend the GPU step reports in its measurements' details, if it ran. */
function inferenceOf(steps: readonly StepResult[]): Environment['inference'] | undefined {
  for (const s of steps) {
    if (s.category !== 'gpu') continue;
    for (const m of s.measurements) {
      const d = m.details;
      if (d && typeof d.backend === 'string') {
        return { backend: d.backend, gpuInUse: d.gpuInUse === true, ...(typeof d.backendDetail === 'string' ? { detail: d.backendDetail } : {}) };
      }
    }
  }
  return undefined;
}
