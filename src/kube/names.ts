/**
 * The one module that names, labels and owns what SwarmBench creates in Kubernetes. The operator,
 * the Kubernetes platform and the runner all take their names from here, so an object the
 * operator creates is the object the runner writes, and nothing is named by two algorithms.
 *
 * Names (every one a DNS-1123 label or subdomain, made by `dnsName`):
 *   `<run>-a<attempt>-params`          ConfigMap: the attempt's resolved Params (frozen)
 *   `<run>-a<attempt>-<step>`          the step's runner Job
 *   `<run>-a<attempt>-<step>-result`   the step's result ConfigMap (the runner writes it)
 *   `<run>-a<attempt>-<step>-seeds`    the step's agent-pool seeds ConfigMap (one key per pool)
 *   `<run>-a<attempt>-<step>-<pool>`   an agent pool's Deployment (at most 57: pods add 16)
 *   `<run>-runner`                     the runners' ServiceAccount, Role and RoleBinding
 *   `<run>-runner-pools`               the RoleBinding to the runners' ClusterRole
 *   `spec.export.configMapName` or `<run>-results`: the export ConfigMap
 * Labels (docs/architecture.md "Names, labels and owners"): managed-by, run, attempt, category, plus step, pool and component
 * where they apply; every value is made a valid label value by `labelValue`.
 */
import { createHash } from 'node:crypto';
import type { KubernetesObject, V1OwnerReference } from '@kubernetes/client-node';

// ---------------------------------------------------------------------------------------------
// The resource's identity (api/schema.ts re-exports these for the schema)

export const API_GROUP = 'swarmbench.io';
export const API_VERSION = 'v1alpha1';
export const API_VERSION_FULL = `${API_GROUP}/${API_VERSION}`;
export const BENCHMARKRUN_KIND = 'BenchmarkRun';
export const BENCHMARKRUN_PLURAL = 'benchmarkruns';

// ---------------------------------------------------------------------------------------------
// Labels and annotations

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'swarmbench';
export const APP_NAME_LABEL = 'app.kubernetes.io/name';
export const RUN_LABEL = 'swarmbench.io/run';
export const ATTEMPT_LABEL = 'swarmbench.io/attempt';
export const CATEGORY_LABEL = 'swarmbench.io/category';
export const STEP_LABEL = 'swarmbench.io/step';
export const POOL_LABEL = 'swarmbench.io/pool';
/** What an object is for: params, runner, step-result, agent-seeds, agent, export. */
export const COMPONENT_LABEL = 'swarmbench.io/component';
/** A new value after a finished attempt starts another attempt (GitOps reruns). */
export const RERUN_ANNOTATION = 'swarmbench.io/rerun';

export const COMPONENT = {
  params: 'params',
  runner: 'runner',
  stepResult: 'step-result',
  seeds: 'agent-seeds',
  agent: 'agent',
  export: 'export',
} as const;

/** The container name of agent pods (Prometheus queries select it). */
export const AGENT_CONTAINER = 'agent';

// ---------------------------------------------------------------------------------------------
// The run reference

/** The BenchmarkRun an object belongs to: the one run reference of every layer. */
export interface RunRef {
  namespace: string;
  name: string;
  uid: string;
}

// ---------------------------------------------------------------------------------------------
// Names

const hash8 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 8);
const sanitise = (s: string): string => s.toLowerCase().replace(/[^a-z0-9-]+/g, '-');
const cut = (s: string, n: number): string => s.slice(0, n).replace(/-+$/g, '');

/**
 * The one truncate-and-hash: a DNS-1123 label (lower-case alphanumerics and '-', alphanumeric at
 * both ends) of at most `max` characters. `name` itself when it already is one and fits;
 * otherwise sanitised, cut to `max - 9`, and ended with `-<8 hex of sha256(name)>`, so distinct
 * names stay distinct (`my.run` and `my-run` do not collide). `max` 253 gives ConfigMap names.
 */
export function dnsName(name: string, max = 63): string {
  const clean = sanitise(name).replace(/^-+|-+$/g, '') || 'x';
  if (clean === name && clean.length <= max) return clean;
  const head = cut(clean, max - 9);
  return head ? `${head}-${hash8(name)}` : hash8(name);
}

/** A label value (at most 63 of [A-Za-z0-9._-], alphanumeric at both ends), cut + hashed like dnsName. */
export function labelValue(v: string): string {
  const ok = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
  if (v.length <= 63 && ok.test(v)) return v;
  const clean = v.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  const head = clean.slice(0, 54).replace(/[^A-Za-z0-9]+$/g, '');
  return head ? `${head}-${hash8(v)}` : hash8(v);
}

export const paramsName = (run: string, attempt: number): string => dnsName(`${run}-a${attempt}-params`, 253);
export const jobName = (run: string, attempt: number, step: string): string => dnsName(`${run}-a${attempt}-${step}`);
export const stepResultName = (run: string, attempt: number, step: string): string => dnsName(`${run}-a${attempt}-${step}-result`, 253);
export const stepSeedsName = (run: string, attempt: number, step: string): string => dnsName(`${run}-a${attempt}-${step}-seeds`, 253);
/** `spec.export.configMapName` when the spec names one, else `<run>-results`. */
export const exportName = (run: string, configMapName?: string): string => configMapName ?? dnsName(`${run}-results`, 253);
export const runnerName = (run: string): string => dnsName(`${run}-runner`);
export const runnerPoolsBindingName = (run: string): string => dnsName(`${run}-runner-pools`);

/** An agent pool's Deployment: at most 57 characters, so its pods' names (+ 16) stay labels. */
export const poolDeploymentName = (run: string, attempt: number, step: string, pool: string): string =>
  dnsName(`${run}-a${attempt}-${step}-${pool}`, 57);

/**
 * The prefix every agent pod name of a step starts with, whatever the pool: `poolDeploymentName`
 * keeps names that fit whole and the first 48 characters of longer ones, so the common prefix is
 * the step's part, cut to 48 characters.
 */
export function agentNamePrefix(run: string, attempt: number, step: string): string {
  const p = sanitise(`${run}-a${attempt}-${step}-`);
  return p.length <= 48 ? p : cut(p, 48);
}

/** A pool's key in the step's seeds ConfigMap: a valid ConfigMap key ([-._a-zA-Z0-9], at most 253). */
export function seedsKey(pool: string): string {
  const clean = pool.replace(/[^-._a-zA-Z0-9]+/g, '_');
  return clean === pool && clean.length <= 253 && clean !== '.' && clean !== '..' ? clean : `${clean.slice(0, 240)}_${hash8(pool)}`;
}

// ---------------------------------------------------------------------------------------------
// Labels and owners

/**
 * The labels on everything of a run (docs/architecture.md "Names, labels and owners"): managed-by, run, the attempt when given,
 * and `extra` (category, step, pool, component); values made valid label values.
 */
export function runLabels(run: string, attempt?: number, extra: Record<string, string> = {}): Record<string, string> {
  const l: Record<string, string> = { [MANAGED_BY_LABEL]: MANAGED_BY, [RUN_LABEL]: labelValue(run) };
  if (attempt !== undefined) l[ATTEMPT_LABEL] = String(attempt);
  for (const [k, v] of Object.entries(extra)) l[k] = labelValue(v);
  return l;
}

/** A label selector string (`k=v,k2=v2`) for list and delete-collection calls. */
export function selectorString(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** The ownerReference every child of a run carries: controller, blocks the run's deletion. */
export function ownerReference(run: Pick<RunRef, 'name' | 'uid'>): V1OwnerReference {
  if (!run.uid || !run.name) throw new Error('ownerReference: the owner needs a name and a uid');
  return { apiVersion: API_VERSION_FULL, kind: BENCHMARKRUN_KIND, name: run.name, uid: run.uid, controller: true, blockOwnerDeletion: true };
}

/** Whether `obj` is controlled by the owner with this uid (its controller ownerReference). */
export function isControlledBy(obj: KubernetesObject, ownerUid: string): boolean {
  return !!obj.metadata?.ownerReferences?.some((r) => r.controller && r.uid === ownerUid);
}

/**
 * Whether the operator may treat `obj` as the run's own: it has no controller, or the run is its
 * controller. An object controlled by anything else is someone else's, and is never read as the
 * run's result, replaced or deleted.
 */
export function belongsTo(obj: KubernetesObject, ownerUid: string): boolean {
  const controllers = obj.metadata?.ownerReferences?.filter((r) => r.controller) ?? [];
  return controllers.every((r) => r.uid === ownerUid);
}

/**
 * The key of the BenchmarkRun a child belongs to: its controller ownerReference to a
 * `swarmbench.io/*` BenchmarkRun, else its `swarmbench.io/run` label; both in the child's
 * namespace (owners are never in another namespace). Undefined for anything else.
 */
export function ownerRunKey(obj: KubernetesObject): string | undefined {
  const ns = obj.metadata?.namespace;
  if (!ns) return undefined;
  const ref = obj.metadata?.ownerReferences?.find((r) => r.controller && r.kind === BENCHMARKRUN_KIND && r.apiVersion.startsWith(`${API_GROUP}/`));
  if (ref) return `${ns}/${ref.name}`;
  const run = obj.metadata?.labels?.[RUN_LABEL];
  return run ? `${ns}/${run}` : undefined;
}
