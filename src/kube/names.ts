/**
 * The one module that names, labels and owns what SwarmBench creates in Kubernetes. The operator,
 * the Kubernetes platform and the runner all take their names from here, so an object the
 * operator creates is the object the runner writes, and nothing is named by two algorithms.
 *
 * Names (every one a DNS-1123 label or subdomain, made by `dnsName`). `<run>` is `runBase(name)`:
 * the run's name itself when it is a short DNS label (at most 30 characters, not ending in what
 * looks like our hash), else its sanitised head and `-<8 hex of sha256(name)>`. So a lossy mapping
 * (`team.a` → `team-a`) or a truncation always adds the hash, two different run names never share
 * a base, and every name built on it differs too (a name cut by `dnsName` ends in a hash of the
 * whole composed name). A hash collision could only make two runs of one namespace meet on a name;
 * the ownership check (`belongsTo`, the run's uid) then turns it into a Conflict, never an adoption.
 *   `<run>-a<attempt>-params`          ConfigMap: the attempt's resolved Params (frozen)
 *   `<run>-a<attempt>-<step>`          the step's runner Job
 *   `<run>-a<attempt>-<step>-result`   the step's result ConfigMap (the runner writes it)
 *   `<run>-a<attempt>-<step>-seeds`    the step's agent-pool seeds ConfigMap (one key per pool)
 *   `<run>-a<attempt>-<step>-<pool>`   an agent pool's Deployment (at most 57: pods add 16)
 *   `<run>-a<attempt>-<step>-<pool>-r<r>`  the Deployment of the rest part of a pool of several
 *                                     agents per pod (one pod of r agents; same limit)
 *   `<run>-runner`                     the runners' ServiceAccount, Role and RoleBinding
 *   `<run>-runner-pools`               the RoleBinding to the runners' ClusterRole
 *   `<run>-a<attempt>-token-<5 random>`  Secret: the attempt's agent token (key `token`), by
                                     `generateName` (the API server picks the tail; the params
                                     ConfigMap's `agentTokenSecret` records it)
 *   `<run>-agents`                     NetworkPolicy: who may reach the run's agents
 *   `spec.export.configMapName` or `<run>-results`: the export ConfigMap
 * Labels (docs/architecture.md "Names, labels and owners"): managed-by, run, attempt, category, plus step, pool and component
 * where they apply; every value is made a valid label value by `labelValue`. Objects built for a
 * `RunRef` also carry `swarmbench.io/run-uid`: a re-created run (same name, new uid) never selects
 * its predecessor's objects, and the per-run NetworkPolicy selects the run's pods by it.
 * Kubernetes' own rules for what a spec names (`DNS_SUBDOMAIN`, `LABEL_VALUE`, `QUALIFIED_NAME`,
 * `CONFIG_KEY`, `qualifiedNameProblem`) are here too: api/schema.ts checks the spec with them, so a
 * name the API server would refuse is refused when the run is applied.
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
/** The schedule's identity (api/schedule.ts re-exports it with the schedule's schema). */
export const BENCHMARKSCHEDULE_KIND = 'BenchmarkSchedule';
export const BENCHMARKSCHEDULE_PLURAL = 'benchmarkschedules';

// ---------------------------------------------------------------------------------------------
// Labels and annotations

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'swarmbench';
export const APP_NAME_LABEL = 'app.kubernetes.io/name';
export const RUN_LABEL = 'swarmbench.io/run';
/** The run's uid: what recognises a run's objects (never the name alone). */
export const RUN_UID_LABEL = 'swarmbench.io/run-uid';
export const ATTEMPT_LABEL = 'swarmbench.io/attempt';
export const CATEGORY_LABEL = 'swarmbench.io/category';
export const STEP_LABEL = 'swarmbench.io/step';
export const POOL_LABEL = 'swarmbench.io/pool';
/**
 * The part of an agent pool that hosts several agents per pod (`spec.agents.agentsPerPod` > 1):
 * `full` (pods of K agents) or `r<r>` (the one pod of the remaining r agents). In the selector of
 * each part's Deployment, so the parts' selectors are disjoint; absent with one agent per pod.
 */
export const POOL_PART_LABEL = 'swarmbench.io/pool-part';
/** How many agents a pod of a multi-agent pool hosts (pod template annotation; absent: one). */
export const AGENTS_PER_POD_ANNOTATION = 'swarmbench.io/agents-per-pod';
/** What an object is for: params, runner, step-result, agent-seeds, agent, export, agent-token. */
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
  agentToken: 'agent-token',
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

// Kubernetes' own rules (what the API server checks), for what a spec names (api/schema.ts).

/** A DNS-1123 subdomain: ConfigMap, Secret and BenchmarkRun names (at most 253). */
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A label value (at most 63): also what a node selector's value must be to fit in a label selector. */
export const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** A qualified name (label key, taint key): `[<DNS subdomain>/]<name>`, the name at most 63, the prefix at most 253. */
export const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
export const QUALIFIED_NAME_MESSAGE = "must be a label key: [prefix/]name, the prefix a DNS subdomain, the name letters, digits, '-', '_' and '.' starting and ending with a letter or digit";
/** A ConfigMap or Secret data key. */
export const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

/** Why `key` is not a label key (the pattern, then the lengths it cannot check), or undefined. */
export function qualifiedNameProblem(key: string): string | undefined {
  if (!QUALIFIED_NAME.test(key)) return QUALIFIED_NAME_MESSAGE;
  const slash = key.lastIndexOf('/');
  if (key.length - slash - 1 > 63) return 'the name part of a label key must be at most 63 characters';
  if (slash > 253) return 'the prefix of a label key must be at most 253 characters';
  return undefined;
}

/** A label value (at most 63 of [A-Za-z0-9._-], alphanumeric at both ends), cut + hashed like dnsName. */
export function labelValue(v: string): string {
  if (v.length <= 63 && LABEL_VALUE.test(v)) return v;
  const clean = v.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  const head = clean.slice(0, 54).replace(/[^A-Za-z0-9]+$/g, '');
  return head ? `${head}-${hash8(v)}` : hash8(v);
}

/** The longest run name used as it is in object names (so `<run>-a<n>-<step>-` stays within 48). */
export const RUN_BASE_MAX = 30;
const SIMPLE_RUN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const HASH_TAIL = /-[0-9a-f]{8}$/;

/**
 * The part of every object name that stands for the run: the name itself when it is a DNS label
 * of at most RUN_BASE_MAX characters that does not end in `-<8 hex>`; otherwise its sanitised head
 * (at most 21 characters) and `-<8 hex of sha256(name)>`. Injective up to a hash collision: an
 * unhashed base never ends in 8 hex (those names are hashed too), a hashed one always does.
 */
export function runBase(run: string): string {
  if (run.length <= RUN_BASE_MAX && SIMPLE_RUN.test(run) && !HASH_TAIL.test(run)) return run;
  const head = cut(sanitise(run).replace(/^-+/g, ''), RUN_BASE_MAX - 9);
  return head ? `${head}-${hash8(run)}` : hash8(run);
}

export const paramsName = (run: string, attempt: number): string => dnsName(`${runBase(run)}-a${attempt}-params`, 253);
export const jobName = (run: string, attempt: number, step: string): string => dnsName(`${runBase(run)}-a${attempt}-${step}`);
export const stepResultName = (run: string, attempt: number, step: string): string => dnsName(`${runBase(run)}-a${attempt}-${step}-result`, 253);
export const stepSeedsName = (run: string, attempt: number, step: string): string => dnsName(`${runBase(run)}-a${attempt}-${step}-seeds`, 253);
/** `spec.export.configMapName` when the spec names one, else `<run>-results`. */
export const exportName = (run: string, configMapName?: string): string => configMapName ?? dnsName(`${runBase(run)}-results`, 253);
export const runnerName = (run: string): string => dnsName(`${runBase(run)}-runner`);
export const runnerPoolsBindingName = (run: string): string => dnsName(`${runBase(run)}-runner-pools`);
/**
 * The `metadata.generateName` of an attempt's agent-token Secret (key AGENT_TOKEN_KEY): the API
 * server appends 5 random characters, so each create makes a new Secret and never meets one that
 * exists. At most 53 characters, so the API server never cuts it (it cuts at 58) and the name
 * stays a DNS label. The name the server chose is recorded in the attempt's params ConfigMap
 * (PARAMS_TOKEN_SECRET_KEY) and nowhere else derived.
 */
export const agentTokenSecretPrefix = (run: string, attempt: number): string => `${dnsName(`${runBase(run)}-a${attempt}-token`, 52)}-`;
/** Whether `name` is one the API server can have generated from the attempt's prefix (prefix + 5 of [a-z0-9]). */
export function isAgentTokenSecretName(run: string, attempt: number, name: string): boolean {
  const prefix = agentTokenSecretPrefix(run, attempt);
  return name.startsWith(prefix) && /^[a-z0-9]{5}$/.test(name.slice(prefix.length));
}
/** The key of the params ConfigMap that holds the name of the attempt's agent-token Secret. */
export const PARAMS_TOKEN_SECRET_KEY = 'agentTokenSecret';
/** The key of the params ConfigMap that holds the attempt's resolved Params. */
export const PARAMS_KEY = 'params.json';
/** The environment variable that tells the runner the name of its attempt's agent-token Secret. */
export const AGENT_TOKEN_SECRET_ENV = 'SWARMBENCH_AGENT_TOKEN_SECRET';
/** The key of the token in the agent-token Secret. */
export const AGENT_TOKEN_KEY = 'token';
/** The environment variable the runner and the agents read the token from. */
export const AGENT_TOKEN_ENV = 'SWARMBENCH_AGENT_TOKEN';
/**
 * The key of the administrator's metrics scrape token in the agent-token Secret (present only when
 * the operator has one: `--metrics-token-file`), and the variable the agents read it from. The
 * scrape token opens an agent's `/metrics` and nothing else (src/agent/auth.ts).
 */
export const METRICS_TOKEN_KEY = 'metrics-token';
export const METRICS_TOKEN_ENV = 'SWARMBENCH_METRICS_TOKEN';
/** The run's NetworkPolicy over its agent pods. */
export const networkPolicyName = (run: string): string => dnsName(`${runBase(run)}-agents`, 253);

/** An agent pool's Deployment: at most 57 characters, so its pods' names (+ 16) stay labels. */
export const poolDeploymentName = (run: string, attempt: number, step: string, pool: string): string =>
  dnsName(`${runBase(run)}-a${attempt}-${step}-${pool}`, 57);

/**
 * The prefix every agent pod name of a step starts with, whatever the pool: `poolDeploymentName`
 * keeps names that fit whole and the first 48 characters of longer ones, so the common prefix is
 * the step's part, cut to 48 characters.
 */
export function agentNamePrefix(run: string, attempt: number, step: string): string {
  const p = sanitise(`${runBase(run)}-a${attempt}-${step}-`);
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
 * and `extra` (category, step, pool, component); values made valid label values. Given the run's
 * `RunRef`, also its uid (`swarmbench.io/run-uid`).
 */
export function runLabels(run: string | Pick<RunRef, 'name' | 'uid'>, attempt?: number, extra: Record<string, string> = {}): Record<string, string> {
  const name = typeof run === 'string' ? run : run.name;
  const l: Record<string, string> = { [MANAGED_BY_LABEL]: MANAGED_BY, [RUN_LABEL]: labelValue(name) };
  if (typeof run !== 'string' && run.uid) l[RUN_UID_LABEL] = labelValue(run.uid);
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
 * Whether `obj` is the run's own: its controller ownerReference is the run with this uid. The one
 * rule before every write (docs/operator.md "Ownership"): an object without a controller (made by
 * a person), or controlled by anything else (another run, an earlier run of the same name), is
 * never read as the run's, replaced, adopted or deleted.
 */
export function belongsTo(obj: KubernetesObject, ownerUid: string): boolean {
  return !!ownerUid && isControlledBy(obj, ownerUid);
}

/** Who controls `obj`, in words (for Conflict messages): `BenchmarkRun x (uid u)` or `no controller`. */
export function controllerOf(obj: KubernetesObject): string {
  const c = obj.metadata?.ownerReferences?.find((r) => r.controller);
  return c ? `${c.kind} ${c.name} (uid ${c.uid})` : 'no controller (not created by this run)';
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

/**
 * The key of the BenchmarkSchedule that controls `obj` (a run it created): its controller
 * ownerReference to a `swarmbench.io/*` BenchmarkSchedule, in the object's namespace. Undefined
 * for anything else (a run applied by hand, a child of a run).
 */
export function ownerScheduleKey(obj: KubernetesObject): string | undefined {
  const ns = obj.metadata?.namespace;
  if (!ns) return undefined;
  const ref = obj.metadata?.ownerReferences?.find((r) => r.controller && r.kind === BENCHMARKSCHEDULE_KIND && r.apiVersion.startsWith(`${API_GROUP}/`));
  return ref ? `${ns}/${ref.name}` : undefined;
}
