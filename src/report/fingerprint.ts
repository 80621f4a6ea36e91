/**
 * The fingerprint of a result (schema: src/api/fingerprint.ts) and the differences between two
 * that matter: a baseline comparison (baseline.ts `compareRuns`) is refused when there is one,
 * unless forced (`--force-compare`), and then its warnings name them.
 *
 * `fingerprintOf` builds it from what a result document holds (environment, runners, agents,
 * inference, run) and, where the caller has them, the run's parameters (their sizes and hash) and
 * the nodes' labels. Pure and bounded: at most 64 nodes (runners) of at most 32 steps, strings
 * cut at 256 characters, whatever the document holds. The runners do not know their node's
 * labels (the downward API gives a pod its own fields, not the node's), so a cluster run records
 * labels only when the assembling caller passes them (`nodeLabels`); otherwise they are unknown.
 *
 * What matters (`fingerprintDiff`), each compared on a normalised value:
 * - the platform, the architecture, the CPU model and count, the effective CPUs, the memory in
 *   whole GiB;
 * - the OS and kernel series (`linux 6.8`: the patch and the distribution's suffix do not count),
 *   the Node.js major version, SwarmBench's major.minor version (the instrument);
 * - the inference backend and whether it used a GPU;
 * - the mode, and each size of the workload (the parameters the figures depend on: pool sizes,
 *   durations, rates, batch sizes...);
 * - in a cluster, per step, the machine its runner ran on (figures as above, and the node labels
 *   of FINGERPRINT_LABELS: instance type, GPU product, CUDA driver major); the run-wide machine
 *   figures are then not compared again.
 * Not: names (host, node, pod), times, the targets (they judge, they do not measure), the trials
 * (how many samples, not what one is), the categories (a test in one run only is not compared),
 * and what ran as the agents (the image, its digest, the defects): that is the system under test,
 * the thing a comparison is for. A value unknown on either side (a document written before the
 * fingerprint, a run without the GPU step, a step without its environment) is no difference.
 */
import { createHash } from 'node:crypto';
import {
  FINGERPRINT_LABELS,
  FINGERPRINT_MAX_IMAGES,
  FINGERPRINT_MAX_NODES,
  FINGERPRINT_MAX_STEPS,
  FINGERPRINT_MAX_STRING,
  type Fingerprint,
  type FingerprintNode,
} from '../api/fingerprint.ts';
import type { Environment, ResultDocument } from '../api/schema.ts';
import type { Params } from '../plan/params.ts';

export interface FingerprintExtras {
  /** The run's resolved parameters: the workload's sizes and their hash. */
  params?: Params;
  /** Labels by node name, where the caller knows them (only FINGERPRINT_LABELS are kept). */
  nodeLabels?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/** One difference that matters: the field and both values as shown. */
export interface FingerprintDifference {
  field: string;
  current: string;
  baseline: string;
}

/** The most differences a refusal or its warnings name one by one (the rest are counted). */
export const MAX_NAMED_DIFFERENCES = 50;

/** A comparison refused: the two results were not measured alike (`differences`). */
export class ComparisonRefusedError extends Error {
  readonly differences: readonly FingerprintDifference[];
  constructor(differences: readonly FingerprintDifference[]) {
    super(
      `the baseline was not measured like this run, so they are not compared: ${namedList(differences)}. ` +
        'Compare them anyway with --force-compare (the differences then become warnings of the comparison)',
    );
    this.name = 'ComparisonRefusedError';
    this.differences = differences;
  }
}

export function differenceText(d: FingerprintDifference): string {
  return `${d.field}: baseline ${d.baseline}, this run ${d.current}`;
}

function namedList(ds: readonly FingerprintDifference[]): string {
  const named = ds.slice(0, MAX_NAMED_DIFFERENCES).map(differenceText).join('; ');
  return ds.length > MAX_NAMED_DIFFERENCES ? `${named}; and ${ds.length - MAX_NAMED_DIFFERENCES} more` : named;
}

/** The warnings of a forced comparison: one per difference (the rest counted in one more). */
export function forcedWarnings(ds: readonly FingerprintDifference[]): string[] {
  const out = ds.slice(0, MAX_NAMED_DIFFERENCES).map((d) => `compared although not measured alike (--force-compare): ${differenceText(d)}`);
  if (ds.length > MAX_NAMED_DIFFERENCES) out.push(`compared although not measured alike (--force-compare): and ${ds.length - MAX_NAMED_DIFFERENCES} more differences`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Building

const cut = (s: string): string => (s.length > FINGERPRINT_MAX_STRING ? `${s.slice(0, FINGERPRINT_MAX_STRING - 1)}…` : s);
/** A string, or undefined when it says nothing (`unknown…`, empty). */
const known = (s: string | undefined): string | undefined => (s === undefined || s.trim() === '' || /^unknown\b/.test(s) ? undefined : cut(s));
/** A count or size, or undefined when it was not measured (0). */
const knownNumber = (n: number | undefined): number | undefined => (n !== undefined && Number.isFinite(n) && n > 0 ? n : undefined);

/** An image reference's pinned digest (`name@sha256:...`), if it has one. */
function digestOf(image: string): string | undefined {
  return /@(sha256:[0-9a-f]{64})$/.exec(image)?.[1];
}

/** JSON with every object's keys sorted: the same value gives the same text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * The sizes of the workload that its figures depend on, flat (`agents.poolSize`), lists as
 * `4,8,16`: not the targets, the trials, the categories, the agents' image and defects, the
 * inference backend's defects, Prometheus's URL or extra queries (only whether it is used).
 */
export function workloadSizes(p: Params): Record<string, number | string> {
  const a = p.agents;
  const g = p.gpu;
  const m = p.monitoring;
  const s = p.stress;
  const sizes: Record<string, number | string> = {
    'agents.poolSize': a.poolSize,
    'agents.steps': a.steps.join(','),
    'agents.taskMix.io': a.taskMix.io,
    'agents.taskMix.cpu': a.taskMix.cpu,
    'agents.ioTaskMs': a.ioTaskMs,
    'agents.cpuTaskRounds': a.cpuTaskRounds,
    'agents.capacity': a.capacity,
    'agents.ratePerAgent': a.ratePerAgent,
    'agents.agentsPerProcess': a.agentsPerProcess,
    'agents.agentsPerPod': a.agentsPerPod,
    'agents.stepSeconds': a.stepSeconds,
    'agents.spawnBatch': a.spawnBatch,
    'agents.balanceTasks': a.balanceTasks,
    'agents.gossipIntervalMs': a.gossipIntervalMs,
    'agents.failureTimeoutMs': a.failureTimeoutMs,
    'agents.resources': a.resources ? canonicalJson(a.resources) : 'none',
    'gpu.model': g.model,
    'gpu.batchSizes': g.batchSizes.join(','),
    'gpu.backend': g.backend,
    'gpu.memoryIterations': g.memoryIterations,
    'gpu.sustainedSeconds': g.sustainedSeconds,
    'monitoring.source': m.prometheusUrl ? 'prometheus' : 'direct-scrape',
    'monitoring.scrapeIntervalMs': m.scrapeIntervalMs,
    'monitoring.observeSeconds': m.observeSeconds,
    'integration.workflowSteps': p.integration.workflowSteps,
    'integration.concurrentWorkflows': p.integration.concurrentWorkflows,
    'stress.sustainedMs': s.sustainedMs,
    'stress.sustainedAgents': s.sustainedAgents,
    'stress.spikeFrom': s.spikeFrom,
    'stress.spikeTo': s.spikeTo,
    'stress.overloadFactor': s.overloadFactor,
    'stress.windowMs': s.windowMs,
  };
  return Object.fromEntries(Object.entries(sizes).map(([k, v]) => [k, typeof v === 'string' ? cut(v) : v]));
}

function labelsOf(name: string, extras: FingerprintExtras): FingerprintNode['labels'] {
  const all = extras.nodeLabels && Object.hasOwn(extras.nodeLabels, name) ? extras.nodeLabels[name] : undefined;
  if (!all) return undefined;
  const kept = FINGERPRINT_LABELS.filter((k) => Object.hasOwn(all, k) && typeof all[k] === 'string').map((k) => [k, cut(all[k]!)] as const);
  return Object.fromEntries(kept);
}

/** Names of a comma-separated list (an environment's `hostname` in a cluster), at most `max`, and how many in all. */
function namesOf(list: string, max: number): { names: string[]; count: number } {
  const names: string[] = [];
  let count = 0;
  let from = 0;
  while (from <= list.length) {
    const comma = list.indexOf(',', from);
    const end = comma < 0 ? list.length : comma;
    if (end > from) {
      count++;
      if (names.length < max) names.push(list.slice(from, Math.min(end, from + FINGERPRINT_MAX_STRING)));
    }
    if (comma < 0) break;
    from = comma + 1;
  }
  return { names, count };
}

type Machine = Pick<Environment, 'node' | 'os' | 'arch' | 'cpus' | 'cpuModel' | 'memoryBytes'>;

function machineFields(m: Machine, effectiveCpus: number | undefined): Omit<FingerprintNode, 'name' | 'steps' | 'labels'> {
  const cpus = knownNumber(m.cpus);
  const cpuModel = known(m.cpuModel);
  const effective = knownNumber(effectiveCpus);
  const memoryBytes = knownNumber(m.memoryBytes);
  const node = known(m.node);
  const os = known(m.os);
  const arch = known(m.arch);
  return {
    ...(cpus !== undefined ? { cpus } : {}),
    ...(cpuModel !== undefined ? { cpuModel } : {}),
    ...(effective !== undefined ? { effectiveCpus: effective } : {}),
    ...(memoryBytes !== undefined ? { memoryBytes } : {}),
    ...(node !== undefined ? { node } : {}),
    ...(os !== undefined ? { os } : {}),
    ...(arch !== undefined ? { arch } : {}),
  };
}

/**
 * The fingerprint of a result document (or of a run about to start: an environment and the
 * mode). Bounded whatever the document holds.
 */
export function fingerprintOf(doc: { environment: Environment; run: Pick<ResultDocument['run'], 'mode'> }, extras: FingerprintExtras = {}): Fingerprint {
  const env = doc.environment;
  const runners = env.runners ?? [];
  let nodes: FingerprintNode[];
  let nodeCount: number;
  if (runners.length > 0) {
    nodes = runners.slice(0, FINGERPRINT_MAX_NODES).map((r) => {
      const labels = labelsOf(r.nodeName, extras);
      return {
        name: cut(r.nodeName),
        steps: r.steps.slice(0, FINGERPRINT_MAX_STEPS).map(cut),
        ...machineFields(r, r.cpuSet?.effectiveCpus),
        ...(knownNumber(r.memoryLimitBytes) !== undefined ? { memoryLimitBytes: r.memoryLimitBytes } : {}),
        ...(labels ? { labels } : {}),
      };
    });
    nodeCount = runners.length;
  } else if (env.platform === 'local') {
    const labels = labelsOf(env.hostname, extras);
    nodes = [{ name: cut(env.hostname), ...machineFields(env, env.cpuSet?.effectiveCpus), ...(labels ? { labels } : {}) }];
    nodeCount = 1;
  } else {
    // A cluster run whose steps did not report their environment: only the node names are known.
    const { names, count } = namesOf(env.hostname === 'unknown' ? '' : env.hostname, FINGERPRINT_MAX_NODES);
    nodes = names.map((name) => {
      const labels = labelsOf(name, extras);
      return { name, ...(labels ? { labels } : {}) };
    });
    nodeCount = count;
  }
  const image = env.agents?.image ?? (env.agentImage !== 'none' ? env.agentImage : undefined);
  const digest = env.agents?.digest ?? (image ? digestOf(image) : undefined);
  const sizes = extras.params ? workloadSizes(extras.params) : undefined;
  const fp: Omit<Fingerprint, 'id'> = {
    swarmbenchVersion: cut(env.swarmbenchVersion),
    platform: env.platform,
    ...machineFields(env, env.cpuSet?.effectiveCpus),
    ...(env.inference ? { inference: { backend: cut(env.inference.backend), gpuInUse: env.inference.gpuInUse } } : {}),
    agents: {
      kind: cut(env.agents?.kind ?? (env.agentImage === 'local' ? 'reference' : 'image')),
      images: image ? [{ image: cut(image), ...(digest ? { digest: cut(digest) } : {}) }].slice(0, FINGERPRINT_MAX_IMAGES) : [],
    },
    nodes,
    nodeCount,
    spec: { mode: doc.run.mode, ...(sizes ? { hash: sha256(canonicalJson(sizes)), sizes } : {}) },
  };
  return { id: sha256(canonicalJson(mattering(fp))).slice(0, 16), ...fp };
}

/** The document's own fingerprint, or (written before it was recorded) one from its environment. */
export function fingerprintFor(doc: ResultDocument): Fingerprint {
  return doc.fingerprint ?? fingerprintOf(doc);
}

// ---------------------------------------------------------------------------------------------
// Comparing

/** One compared value: the normalised key (undefined: unknown) and what a message shows. */
interface Part {
  key: string | undefined;
  show: string;
}

const q = (s: string | undefined): string => (s === undefined ? 'unknown' : JSON.stringify(s));
const gib = (b: number): string => `${Math.round((b / 2 ** 30) * 10) / 10} GiB`;
/** `linux 6.8.0-45-generic` → `linux 6.8`; anything else as it is. */
function kernelSeries(os: string): string {
  const m = /^(\S+)\s+(\d+)\.(\d+)/.exec(os);
  return m ? `${m[1]} ${m[2]}.${m[3]}` : os;
}
/** `v24.1.0` → `v24`. */
const nodeMajor = (v: string): string => /^v?(\d+)/.exec(v)?.[1] ?? v;
/** `0.1.0` → `0.1`. */
const versionSeries = (v: string): string => /^(\d+)\.(\d+)/.exec(v)?.slice(1, 3).join('.') ?? v;
const str = (s: string | undefined, norm: (s: string) => string = (x) => x.replace(/\s+/g, ' ').trim()): Part => ({ key: s === undefined ? undefined : norm(s), show: q(s) });
const int = (n: number | undefined): Part => ({ key: n === undefined ? undefined : String(n), show: n === undefined ? 'unknown' : String(n) });
const mem = (b: number | undefined): Part => ({ key: b === undefined ? undefined : String(Math.round(b / 2 ** 30)), show: b === undefined ? 'unknown' : gib(b) });

/** The machine fields of a fingerprint or node, by name. */
function machineParts(m: Omit<FingerprintNode, 'name' | 'steps'>): Record<string, Part> {
  return {
    arch: str(m.arch),
    cpuModel: str(m.cpuModel),
    cpus: int(m.cpus),
    effectiveCpus: int(m.effectiveCpus),
    memoryBytes: mem(m.memoryBytes),
    os: str(m.os, kernelSeries),
    node: str(m.node, nodeMajor),
  };
}

/** A node's machine in one line, for messages: `node-a (8 × Xeon, 31 GiB, x64, linux 6.8.0, Node v24.1.0)`. */
function nodeText(n: FingerprintNode): string {
  const parts = [
    n.cpus !== undefined || n.cpuModel !== undefined ? `${n.cpus ?? '?'} × ${n.cpuModel ?? 'unknown CPU'}` : undefined,
    n.effectiveCpus !== undefined ? `${n.effectiveCpus} effective CPUs` : undefined,
    n.memoryBytes !== undefined ? gib(n.memoryBytes) : undefined,
    n.memoryLimitBytes !== undefined ? `limit ${gib(n.memoryLimitBytes)}` : undefined,
    n.arch,
    n.os,
    n.node ? `Node ${n.node}` : undefined,
  ].filter((x) => x !== undefined);
  return JSON.stringify(`${n.name}${parts.length ? ` (${parts.join(', ')})` : ''}`);
}

/** Per step, the node that ran it (the first that names the step). */
function stepNodes(fp: Omit<Fingerprint, 'id'>): Map<string, FingerprintNode> {
  const out = new Map<string, FingerprintNode>();
  for (const n of fp.nodes) for (const s of n.steps ?? []) if (!out.has(s)) out.set(s, n);
  return out;
}

/**
 * Every value that matters, by field name, normalised: what `fingerprintDiff` compares and the id
 * hashes. Per step (cluster runs): its node's machine and its labels.
 */
function parts(fp: Omit<Fingerprint, 'id'>): Map<string, Part> {
  const out = new Map<string, Part>();
  out.set('platform', str(fp.platform));
  out.set('swarmbenchVersion', str(fp.swarmbenchVersion, versionSeries));
  for (const [k, p] of Object.entries(machineParts(fp))) out.set(k, p);
  const inf = fp.inference ? `${fp.inference.backend} (${fp.inference.gpuInUse ? 'GPU' : 'no GPU'})` : undefined;
  out.set('inference', { key: inf, show: q(inf) });
  out.set('spec.mode', str(fp.spec.mode));
  if (fp.spec.sizes) {
    for (const [k, v] of Object.entries(fp.spec.sizes)) out.set(`spec.sizes.${k}`, typeof v === 'number' ? { key: String(v), show: String(v) } : str(v));
  } else if (fp.spec.hash) {
    out.set('spec.hash', str(fp.spec.hash));
  }
  for (const [step, n] of stepNodes(fp)) {
    const m = machineParts(n);
    const limit = n.memoryLimitBytes !== undefined ? String(Math.round(n.memoryLimitBytes / 2 ** 20)) : '-';
    const key = [m.arch, m.cpuModel, m.cpus, m.effectiveCpus, m.memoryBytes, m.os, m.node].map((p) => p!.key ?? '?').join('|') + `|${limit}`;
    out.set(`nodes[${step}]`, { key, show: nodeText(n) });
    if (n.labels) {
      const labels = canonicalJson(n.labels);
      out.set(`nodes[${step}].labels`, { key: labels, show: `${JSON.stringify(n.name)} ${labels}` });
    }
  }
  return out;
}

const MACHINE_FIELDS = new Set(Object.keys(machineParts({})));
const hasSteps = (fp: Omit<Fingerprint, 'id'>) => fp.nodes.some((n) => (n.steps?.length ?? 0) > 0);

/** What the id hashes: the normalised values that matter (unknown ones left out). */
function mattering(fp: Omit<Fingerprint, 'id'>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, p] of parts(fp)) if (p.key !== undefined) out[k] = p.key;
  return out;
}

/**
 * The differences that matter between two fingerprints (none: they compare), each naming the
 * field and both values, in a fixed order. A value unknown on either side is no difference; when
 * both runs list the node of each step, the steps' machines are compared, not the run-wide ones.
 */
export function fingerprintDiff(current: Fingerprint, baseline: Fingerprint): FingerprintDifference[] {
  const a = parts(current);
  const b = parts(baseline);
  const perStep = hasSteps(current) && hasSteps(baseline);
  const out: FingerprintDifference[] = [];
  for (const [field, pb] of b) {
    const pa = a.get(field);
    if (!pa || pa.key === undefined || pb.key === undefined || pa.key === pb.key) continue;
    if (perStep && MACHINE_FIELDS.has(field)) continue;
    out.push({ field, current: pa.show, baseline: pb.show });
  }
  return out;
}

/** Why `current` must not be compared with `baseline` unless forced, or undefined when it may be. */
export function comparisonRefusal(current: ResultDocument, baseline: ResultDocument): ComparisonRefusedError | undefined {
  const d = fingerprintDiff(fingerprintFor(current), fingerprintFor(baseline));
  return d.length ? new ComparisonRefusedError(d) : undefined;
}
